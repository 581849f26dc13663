"""BIDS column descriptions (the ``.json`` beside a ``.tsv``) of afni-group's tables.

BIDS describes a tabular file's columns in a JSON file of the same name: one object per column
with ``LongName``, ``Description``, ``Units`` and, for categorical columns, ``Levels``.
:func:`clusters_columns` covers ``clust_*_clusters_*.tsv`` (3dClusterize's columns and those
:mod:`afni_group.cluster_table` appends), :func:`inventory_columns` ``inventory.tsv``.
"""

from __future__ import annotations

from afni_group.atlas import ATLASES, DEFAULT_ATLASES

_AXES = {"x": "x", "y": "y", "z": "z"}
_FRAMES = {
    "rai": "RAI/DICOM mm (x right-to-left, y anterior-to-posterior; as 3dClusterize prints)",
    "lpi": "LPI/RAS+ mm (x left-to-right, y posterior-to-anterior; the MNI/NIfTI convention)",
}


def _column(long_name: str, description: str, units: str | None = None, **extra) -> dict:
    entry = {"LongName": long_name, "Description": description}
    if units is not None:
        entry["Units"] = units
    entry.update(extra)
    return entry


def _coordinates(prefix: str, what: str, frame: str) -> dict[str, dict]:
    return {
        f"{prefix}_{axis}_{frame}": _column(
            f"{what}, {axis} ({frame.upper()})",
            f"{axis} coordinate of the {what}, {_FRAMES[frame]}.",
            "mm",
        )
        for axis in _AXES
    }


def clusters_columns(
    effect_units: str, stat: str = "t", dof: float | None = None, space: str | None = None
) -> dict[str, dict]:
    """Column descriptions of a clusters table.

    Parameters
    ----------
    effect_units : str
        Units of the effect brick (mean, sem, peak_value).
    stat : str
        The clustered statistic.
    dof : float, optional
        Its degrees of freedom, named in the descriptions.
    space : str, optional
        The ``space-`` label of the coordinates.
    """
    where = f" Coordinates are in {space} space." if space else ""
    of_stat = f"{stat} ({dof:g} degrees of freedom)" if dof else stat
    columns = {
        "cluster_id": _column(
            "Cluster index",
            "Cluster number, largest first; the value of the cluster's voxels in the cluster map.",
        ),
        "n_voxels": _column("Voxels", "Number of voxels in the cluster.", "voxels"),
        "volume_mm3": _column("Volume", "Cluster volume.", "mm^3"),
        "tail": _column(
            "Sign",
            "Sign of the statistic in the cluster.",
            Levels={
                "pos": "positive statistic",
                "neg": "negative statistic",
                "both": "both signs (1-sided/2-sided clustering over |statistic|)",
            },
        ),
    }
    for frame in ("rai", "lpi"):
        columns.update(_coordinates("cm", "centre of mass (|effect|-weighted)", frame))
        columns.update(
            _coordinates("peak", "peak: the voxel of largest |effect| (3dClusterize)", frame)
        )
    columns.update(
        {
            "mean": _column(
                "Mean effect", "Mean of the effect over the cluster's voxels.", effect_units
            ),
            "sem": _column(
                "SEM of the effect",
                "Standard error of the mean of the effect over the cluster's voxels.",
                effect_units,
            ),
            "peak_value": _column("Peak effect", "Effect at the peak voxel.", effect_units),
            "peak_t": _column(
                f"{stat} at the peak",
                f"{of_stat} at the peak voxel (the voxel of largest |effect|, AFNI's peak): not "
                "the cluster's largest statistic (see max_t).",
            ),
            "max_t": _column(
                f"Maximum {stat}",
                f"The cluster's {of_stat} of largest absolute value, with its sign.",
            ),
        }
    )
    columns.update(_coordinates("max_t", f"voxel of the cluster's largest |{stat}|", "lpi"))
    columns.update(
        {
            "p_fwe": _column(
                "Corrected p",
                "Cluster-level family-wise-error p: the cluster's size interpolated in the "
                "3dClustSim table at the voxelwise p (linear in size against log(-log(1-alpha))). "
                "Beyond the table it is the table's bound: see p_fwe_bound.",
            ),
            "p_fwe_bound": _column(
                "Bound of the corrected p",
                "Whether p_fwe is a value or a bound.",
                Levels={
                    "=": "interpolated inside the 3dClustSim table",
                    "<": "the cluster is larger than the table's largest size: the p is below p_fwe",
                    ">": "the cluster is smaller than the table's smallest size: the p is above p_fwe",
                },
            ),
        }
    )
    texts = {  # kind -> (long name, description) of an atlas's column; as cluster_table orders
        "peak": (
            "{name} at the peak",
            "Region of the {name} at the peak voxel (probabilistic atlases: the most probable "
            "label and its probability in %); no_label outside every region; n/a when the data "
            "are not in MNI space." + where,
        ),
        "cm": ("{name} at the centre of mass", "Region of the {name} at the centre of mass."),
        "composition": (
            "{name} composition",
            "Regions of the {name} covering at least 5 % of the cluster's voxels, with their "
            "share, largest first, separated by '; '.",
        ),
    }
    for kind, (long_name, description) in texts.items():
        for key in DEFAULT_ATLASES:
            name = ATLASES[key].name
            columns[f"{kind}_{key}"] = _column(
                long_name.format(name=name), description.format(name=name)
            )
    return columns


def inventory_columns(sessions: bool = False) -> dict[str, dict]:
    """Column descriptions of ``inventory.tsv`` (one row per discovered subject, or per subject
    and session with per-session results: then a ``session_id`` column follows)."""
    session = {"session_id": _column("Session", "BIDS session label (ses-<label>).")}
    return {
        "participant_id": _column("Participant", "BIDS participant label (sub-<label>)."),
        **(session if sessions else {}),
        "status": _column(
            "Status",
            "Whether the subject is in the analysis.",
            Levels={"included": "in the analysis", "dropped": "left out (see reason)"},
        ),
        "stats": _column("Stats dataset", "afni_proc.py's REML stats bucket read (or MISSING)."),
        "mask": _column("Mask", "The subject's EPI-anatomy mask (or MISSING)."),
        "blur_est": _column(
            "Smoothness file", "blur_est.<sub>.1D with the ACF estimates (or MISSING)."
        ),
        "found_with": _column(
            "Found with",
            "How the files were found: out.ss_review_uvars.json or afni_proc's standard names.",
        ),
        "n_bricks": _column("Sub-bricks", "Number of sub-bricks in the stats dataset."),
        "coef_tstat_labels": _column(
            "Coef and Tstat labels",
            "The stats dataset's *_Coef and *_Tstat sub-brick labels, comma-separated.",
        ),
        "reason": _column("Reason", "Why a subject was dropped (empty when included)."),
    }
