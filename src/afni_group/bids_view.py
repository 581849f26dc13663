"""The BIDS view of a finished run: single-map NIfTIs with JSON sidecars beside AFNI's files.

AFNI's files stay as they are (``analysis-<name>/mema_results.nii.gz`` with its 9 bricks,
``clust_*``...). After either engine ran, this module writes at the top of OUTPUT_DIR, named as
nilearn's ``save_glm_to_bids`` and FitLins name group-level maps (docs/outputs.md)::

    space-<T>_desc-group_mask.nii.gz                          the group mask
    space-<T>_contrast-<C>_stat-effect_statmap.nii.gz         3dMEMA's effect (beta) brick
    space-<T>_contrast-<C>_stat-t_statmap.nii.gz              its t brick
    space-<T>_contrast-<C>_stat-z_statmap.nii.gz              z with the t's tail probability
    space-<T>_contrast-<C>_desc-clusters_dseg.nii.gz          cluster index map (if clusters)
    space-<T>_contrast-<C>_stat-effect_desc-clusters_statmap.nii.gz   effect inside clusters
    space-<T>_contrast-<C>_clusters.tsv                       the cluster table

each with a ``.json`` sidecar (statistic, df, sidedness, units, thresholds, cluster-size
threshold and its Monte-Carlo s.e., NN, mask, software, the AFNI file and sub-brick it
mirrors), a column-description ``.json`` beside every table (also AFNI's ``clust_*.tsv`` and
``inventory.tsv``), and a ``.bidsignore`` for the files BIDS has no rule for yet.
"""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import numpy as np

from afni_group import atomic, bids_columns, statdist
from afni_group.atomic import write_json
from afni_group.plan import MASK_FILE, MEMA_FILE, AnalysisPlan

LOG = logging.getLogger(__name__)

#: Files of OUTPUT_DIR the BIDS validator has no rule for: AFNI's files and afni-group's own,
#: and the statistical maps (the BIDS statistical-model derivatives are not in the
#: specification yet). Patterns as in .gitignore.
BIDSIGNORE = (  # folders without a trailing "/": the validator matches the folder itself too
    "analysis-*",
    "logs",
    "report",
    "report.html",
    "params.json",
    "plan.json",
    "group_analysis.sh",
    "inventory.tsv",
    "inventory.json",
    "*_statmap.nii.gz",
    "*_statmap.json",
    "*_dseg.nii.gz",
    "*_dseg.json",
    "*_clusters.tsv",
    "*_clusters.json",
)
#: Names of the BIDS view in OUTPUT_DIR (removed by --overwrite with the other results).
VIEW_GLOB = "space-*"
EFFECT_UNITS = "percent signal change"


def _effect_units_note(program: str) -> str:
    return (
        f"{program}'s effect is in the units of the subjects' betas: percent of the voxel's mean "
        "signal when afni_proc.py's scale block ran (its default)."
    )


#: the group model of each --program, as the sidecars name it
MODELS = {
    "3dMEMA": "3dMEMA (mixed-effects meta-analysis of the subjects' betas and t statistics)",
    "3dttest++": "3dttest++ (t-test of the subjects' betas)",
}
_NEIGHBOURS = {1: "faces", 2: "faces and edges", 3: "faces, edges and corners"}
_XFORM_CODES = {"MNI": 4, "Talairach": 3}  # NIfTI sform/qform: MNI_152, TALAIRACH; else ALIGNED


def clean_label(text: str) -> str:
    """A BIDS label (letters and digits) in nilearn's camelCase style (``S2-S1`` ->
    ``s2MinusS1``, ``left_vs_right`` -> ``leftVsRight``)."""
    words = {"-": " Minus ", "+": " Plus ", ">": " Gt ", "<": " Lt ", "_": " "}
    for char, word in words.items():
        text = text.replace(char, word)
    parts = text.split(" ")
    parts = [parts[0][:1].lower() + parts[0][1:], *(p[:1].upper() + p[1:] for p in parts[1:])]
    return re.sub(r"[^A-Za-z0-9]", "", "".join(parts)) or "contrast"


def contrast_labels(plan: AnalysisPlan) -> dict[tuple[str, str], str]:
    """``(analysis name, tested label) -> contrast label``, unique across the run.

    The tested label alone when that is unique; otherwise the analysis's session
    (``sesB...``) or name is put in front.
    """
    pairs = [(a, label) for a in plan.analyses for label in a.tested_labels()]
    plain = [clean_label(label) for _, label in pairs]
    out = {}
    for (analysis, label), simple in zip(pairs, plain, strict=True):
        prefix = f"ses_{analysis.session}" if analysis.session else analysis.name
        out[(analysis.name, label)] = (
            simple
            if plain.count(simple) == 1
            else clean_label(prefix) + simple[:1].upper() + simple[1:]
        )
    return out


def _analysis_units(plan: AnalysisPlan, name: str) -> list:
    """The results an analysis read (all the plan's subjects if it is not in the plan)."""
    analysis = next((a for a in plan.analyses if a.name == name), None)
    return plan.subjects if analysis is None else plan.analysis_units(analysis)


def _mask_names(plan: AnalysisPlan, analyses: list[dict]) -> dict[str, str]:
    """``analysis name -> desc`` of its group mask: ``group`` for the first analysis's subjects,
    ``groupSes<S>`` for another session's, else ``group<Name>`` (the first analysis of each other
    set of subjects)."""
    by_name = {a.name: a for a in plan.analyses}
    keys: dict[tuple, str] = {}
    out = {}
    for entry in analyses:
        analysis = by_name.get(entry["name"])
        key = plan.shared_key(analysis) if analysis is not None else ()
        if key not in keys:
            session = getattr(analysis, "session", None)
            name = clean_label(f"ses_{session}" if session else entry["name"])
            keys[key] = "group" if not keys else "group" + name[:1].upper() + name[1:]
        out[entry["name"]] = keys[key]
    return out


def _nifti_bytes(data: np.ndarray, affine: np.ndarray, space: str, intent=None) -> bytes:
    """A gzipped single-volume NIfTI-1 (mtime 0: the same bytes for the same data)."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(data), np.asarray(affine, dtype=float))
    family = "MNI" if space.startswith("MNI") else "Talairach" if space == "Talairach" else ""
    code = _XFORM_CODES.get(family, 2)
    img.set_sform(img.affine, code=code)
    img.set_qform(img.affine, code=code)
    img.header.set_xyzt_units("mm", "sec")
    if intent is not None:
        img.header.set_intent(*intent)
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def _write_nifti(path: Path, data, affine, space: str, intent=None) -> Path:
    blob = _nifti_bytes(data, affine, space, intent)
    return atomic.write_bytes(path, lambda fh: fh.write(blob))


class _Writer:
    """Writes the view of one run; holds what every sidecar shares."""

    def __init__(self, plan: AnalysisPlan, params: dict):
        self.plan, self.params, self.out = plan, params, plan.output_dir
        self.template = params.get("template") or {}
        self.data_space = self.template.get("data") or {}
        self.space = self.data_space.get("space") or "unknown"
        self.written: list[Path] = []
        versions = {k: v for k, v in (params.get("versions") or {}).items() if v}
        self.software = {
            "Name": "afni-group",
            "Version": params.get("afni_group_version"),
            "Engine": params.get("engine"),
            "Versions": versions,
        }

    def name(self, *entities: str, suffix: str) -> str:
        return "_".join((f"space-{self.space}", *entities, suffix))

    def spatial_reference(self) -> str:
        d = self.data_space
        afni = d.get("afni_template") or f"TEMPLATE_SPACE {d.get('afni_space')}"
        return f"{self.space} ({'BIDS standard template' if d.get('standard') else 'AFNI space'}; afni_proc.py: {afni})"

    def common(self, afni_file: str, brick: str | None = None) -> dict:
        entry = {
            "SpatialReference": self.spatial_reference(),
            "Sources": [f"bids::{afni_file}"],
            "AFNIFile": afni_file,
        }
        if brick is not None:
            entry["AFNISubBrick"] = brick
        # the data's template, the atlases' and the underlay's, and where they differ
        entry["Template"] = self.template
        entry["Software"] = self.software
        return entry

    def json(self, path: Path, data: dict) -> None:
        self.written.append(write_json(path, data))

    def nifti(self, name: str, data, affine, sidecar: dict, intent=None) -> str:
        path = self.out / f"{name}.nii.gz"
        self.written.append(_write_nifti(path, data, affine, self.space, intent))
        self.json(self.out / f"{name}.json", sidecar)
        return path.name

    # ---- files --------------------------------------------------------------------------
    def mask(self, entry: dict, desc: str = "group") -> str:
        """The group mask of ``entry``'s analysis as ``desc-<desc>_mask`` (its own subjects)."""
        from afni_group import afni_io

        adir = self.out / entry["dir"]
        dset = afni_io.read_dataset(adir / MASK_FILE)
        plan, frac = self.plan, entry["mask"]["frac"]
        units = _analysis_units(plan, entry["name"])
        n = len(units)
        rule = (
            f"all {n}"
            if frac == 1
            else f"at least {frac * 100:g} % of the {n}"
            if frac < 1
            else f"at least {frac:g} of the {n}"
        )
        sources = [_source_uri(plan, s.mask) for s in units if s.mask is not None]
        sidecar = {
            "Description": (
                f"Group mask (3dmask_tool -frac {frac:g}): voxels inside the masks of {rule} "
                "participants; the cluster inference is restricted to it."
            ),
            "Type": "Brain",
            **self.common(f"{entry['dir']}/{MASK_FILE}"),
            "Sources": sources,
            "NumberOfVoxels": entry["mask"]["n_voxels"],
            "FractionOfParticipants": frac,
        }
        data = (dset.brick(0) != 0).astype(np.uint8)
        return self.nifti(self.name(f"desc-{desc}", suffix="mask"), data, dset.affine, sidecar)

    def thresholds(self, entry: dict, result: dict, stat: str, threshold: float | None) -> dict:
        cs, mc = entry["clustsim"], entry.get("cluster_size_mc")
        route = {}
        if cs.get("route") == "randomise":  # 3dttest++ -Clustsim: no ACF, its own seeds
            route = {"ClustSimRoute": "3dttest++ -Clustsim", "ClustSimSeeds": cs.get("seeds")}
        return {
            **route,
            "Sidedness": cs["sided"],
            "VoxelwiseP": cs["pthr"],
            "VoxelwiseThreshold": threshold,
            "VoxelwiseThresholdStatistic": stat,
            "ClusterAlpha": cs["alpha"],
            "ClusterSizeThreshold": entry.get("cluster_size_threshold"),
            "ClusterSizeUnits": "voxels",
            "ClusterSizeMonteCarloSE": mc.get("mc_se") if mc else None,
            "ClusterSizeMonteCarlo": mc,
            "NN": cs["nn"],
            "Neighbourhood": f"NN{cs['nn']}: voxels touching at {_NEIGHBOURS[int(cs['nn'])]}",
            "ClustSimTable": f"{entry['dir']}/{cs['table']}",
            "ClustSimIterations": cs["iterations"],
            "ACF": entry.get("acf"),
        }

    def contrast(self, entry, result, label, mask_name, bucket) -> dict:
        """The maps and tables of one tested set; returns their names.

        3dMEMA (and 3dttest++ without ``-toz``) write t: ``stat-t`` with its df, and
        ``stat-z`` converted from it; 3dttest++ ``-Clustsim`` writes z (``-toz``): ``stat-z``
        straight from its ``_Zscr`` brick, and no ``stat-t``.
        """
        rel = entry["dir"]
        program = entry.get("program") or "3dMEMA"
        source = f"{rel}/{entry.get('stats_file') or MEMA_FILE}"
        stat = result.get("stat") or "t"
        dof = result.get("dof")
        t_index, b_index = bucket.index_of(result["tbrick"]), bucket.index_of(result["bbrick"])
        t = bucket.brick(t_index).astype(np.float32)
        base = {
            "Contrast": _contrast_info(entry, result, label),
            "Mask": mask_name,
            # 3dMEMA writes every voxel of the grid; only those in the mask were clustered
            "MaskApplied": False,
            "NumberOfClusters": result.get("n_clusters"),
        }
        files = {}
        threshold = result.get("voxel_threshold")
        files["effect"] = self.nifti(
            self.name(f"contrast-{label}", "stat-effect", suffix="statmap"),
            bucket.brick(b_index).astype(np.float32),
            bucket.affine,
            {
                "Description": f"{program} group effect (beta) of {result['set']}",
                "Statistic": "effect",
                "Units": EFFECT_UNITS,
                "UnitsNote": _effect_units_note(program),
                **base,
                "Thresholds": self.thresholds(entry, result, stat, threshold),
                **self.common(source, result["bbrick"]),
            },
            intent=("estimate", (), "effect"),
        )
        if stat == "z":
            files["z"] = self.nifti(
                self.name(f"contrast-{label}", "stat-z", suffix="statmap"),
                t,
                bucket.affine,
                {
                    "Description": f"{program} group z score of {result['set']} (-toz: the "
                    "t statistic converted to z with the same tail probability)",
                    "Statistic": "z",
                    "Units": "z",
                    **base,
                    "Thresholds": self.thresholds(entry, result, "z", threshold),
                    **self.common(source, result["tbrick"]),
                },
                intent=("z score", (), "z"),
            )
            files.update(self.cluster_files(entry, result, label, base, None, "z"))
            return files
        t_sidecar = {
            "Description": f"{program} group t statistic of {result['set']}",
            "Statistic": "t",
            "DegreesOfFreedom": dof,
            "Units": "t",
            **base,
            "Thresholds": self.thresholds(entry, result, "t", threshold),
            **self.common(source, result["tbrick"]),
        }
        t_intent = ("t test", (dof,), "t") if dof else None
        files["t"] = self.nifti(
            self.name(f"contrast-{label}", "stat-t", suffix="statmap"),
            t,
            bucket.affine,
            t_sidecar,
            t_intent,
        )
        if dof:
            z = statdist.t_to_z(t, dof).astype(np.float32)
            z_threshold = float(statdist.t_to_z(threshold, dof)) if threshold else None
            files["z"] = self.nifti(
                self.name(f"contrast-{label}", "stat-z", suffix="statmap"),
                z,
                bucket.affine,
                {
                    "Description": f"z score of the {program} t statistic of {result['set']}",
                    "Statistic": "z",
                    "Units": "z",
                    "ConvertedFrom": (
                        f"t with {dof:g} degrees of freedom: z = the standard normal quantile "
                        "of the t's tail probability (same p)"
                    ),
                    **base,
                    "Thresholds": self.thresholds(entry, result, "z", z_threshold),
                    **self.common(source, result["tbrick"]),
                },
                intent=("z score", (), "z"),
            )
        files.update(self.cluster_files(entry, result, label, base, dof))
        return files

    def cluster_files(self, entry, result, label, base, dof, stat: str = "t") -> dict:
        from afni_group import afni_io

        adir, rel, files = self.out / entry["dir"], entry["dir"], {}
        program = entry.get("program") or "3dMEMA"
        inference = {
            **base,
            "Thresholds": self.thresholds(entry, result, stat, result.get("voxel_threshold")),
        }
        for key, desc in (("map", "clusters"), ("ee", "clusters")):
            name = result.get(key)
            if not name or not (adir / name).is_file():
                continue
            dset = afni_io.read_dataset(adir / name)
            if key == "map":
                files["clusters_map"] = self.nifti(
                    self.name(f"contrast-{label}", f"desc-{desc}", suffix="dseg"),
                    np.rint(dset.brick(0)).astype(np.int16),
                    dset.affine,
                    {
                        "Description": f"Surviving clusters of {result['set']}: each voxel holds "
                        "its cluster's number (cluster_id of the clusters table), 0 elsewhere",
                        **inference,
                        **self.common(f"{rel}/{name}"),
                    },
                )
            else:
                files["clusters_effect"] = self.nifti(
                    self.name(f"contrast-{label}", "stat-effect", f"desc-{desc}", suffix="statmap"),
                    dset.brick(0).astype(np.float32),
                    dset.affine,
                    {
                        "Description": f"{program} effect of {result['set']} inside the "
                        "surviving clusters (0 elsewhere)",
                        "Statistic": "effect",
                        "Units": EFFECT_UNITS,
                        "UnitsNote": _effect_units_note(program),
                        **inference,
                        **self.common(f"{rel}/{name}"),
                    },
                )
        tsv = adir / result["clusters_tsv"] if result.get("clusters_tsv") else None
        if tsv is not None and tsv.is_file():
            columns = bids_columns.clusters_columns(EFFECT_UNITS, stat, dof, self.space)
            self.json(tsv.with_suffix(".json"), columns)  # beside AFNI's name too
            name = self.name(f"contrast-{label}", suffix="clusters")
            self.written.append(atomic.copy_file(tsv, self.out / f"{name}.tsv"))
            self.json(self.out / f"{name}.json", columns)
            files["clusters_tsv"] = f"{name}.tsv"
        return files


def _contrast_info(entry: dict, result: dict, label: str) -> dict:
    sets = {s["label"]: s for s in entry.get("sets") or []}
    info = {
        "Label": label,
        "Set": result["set"],
        "Analysis": entry["name"],
        "Design": entry.get("design"),
        "Model": MODELS.get(entry.get("program") or "3dMEMA"),
    }
    if result["set"] in sets:
        info["Beta"] = sets[result["set"]]["beta"]
        info["Tstat"] = sets[result["set"]]["tstat"]
    else:  # a difference of two sets (paired design)
        info["Of"] = [s["label"] for s in entry.get("sets") or []]
    return info


def _source_uri(plan: AnalysisPlan, path: Path) -> str:
    """A BIDS URI of an input file under the afni_proc results (``bids:afni:...``)."""
    try:
        return f"bids:afni:{Path(path).resolve().relative_to(plan.afni_dir.resolve()).as_posix()}"
    except ValueError:
        return Path(path).resolve().as_uri()


def readme_text(index: dict) -> str:
    """OUTPUT_DIR/README.md: what is where (the BIDS derivative's README)."""
    lines = [
        "# afni-group outputs",
        "",
        "A BIDS derivative dataset written by afni-group (an AFNI-style group analysis of",
        "afni_proc.py results: 3dMEMA, 3dClustSim, 3dClusterize).",
        "",
        f"- `space-{index['space']}_*`: the BIDS view, named as nilearn's `save_glm_to_bids` and",
        "  FitLins name group-level maps: one map per file (`stat-effect`, `stat-t`, `stat-z`),",
        "  the group mask, the cluster map and table of each contrast, each with a JSON sidecar.",
        "- `analysis-<name>/`: AFNI's own files (`mema_results.nii.gz`, `ClustSim.*`, `clust_*`),",
        "  as the AFNI group-analysis tutorial names them.",
        "- `report.html`: the report; `params.json`: every parameter, version and result;",
        "  `group_analysis.sh`: the same analysis as an AFNI script; `logs/`: the run's logs.",
        "",
        "Contrasts: "
        + (
            ", ".join(
                f"`{c['contrast']}` ({c['analysis']}: {c['set']})" for c in index["contrasts"]
            )
            or "none"
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def remove_view(output_dir: Path) -> None:
    """Remove an earlier run's BIDS view (``--overwrite``)."""
    for path in Path(output_dir).glob(VIEW_GLOB):
        if path.is_file():
            path.unlink()
    for name in ("inventory.json", "README.md", ".bidsignore"):
        (Path(output_dir) / name).unlink(missing_ok=True)


def write_bids_view(plan: AnalysisPlan, params: dict) -> dict:
    """Write the BIDS view of a finished run (both engines); returns its index for params.json.

    Returns
    -------
    dict
        ``{"space": label, "mask": name, "contrasts": [{"analysis", "set", "contrast",
        "files": {kind: name}}]}`` with names relative to OUTPUT_DIR.
    """
    from afni_group import afni_io

    out = plan.output_dir
    remove_view(out)  # a contrast renamed since the last run must not leave its old maps
    writer = _Writer(plan, params)
    atomic.write_text(out / ".bidsignore", "\n".join(BIDSIGNORE) + "\n")
    sessions = any(s.session for s in plan.inventory or plan.subjects)
    writer.json(out / "inventory.json", bids_columns.inventory_columns(sessions))
    analyses = params.get("analyses") or []
    index: dict = {"space": writer.space, "mask": None, "contrasts": []}
    if not analyses:
        return index
    masks = _mask_names(plan, analyses)
    mask_files = {"group": writer.mask(analyses[0])}
    for entry in analyses:  # analyses of other subjects (e.g. per session) have their own mask
        desc = masks[entry["name"]]
        if desc not in mask_files:
            mask_files[desc] = writer.mask(entry, desc)
    index["mask"] = mask_files["group"]
    if len(mask_files) > 1:
        index["masks"] = {name: mask_files[desc] for name, desc in masks.items()}
    labels = contrast_labels(plan)
    for entry in analyses:
        mask_name = mask_files[masks[entry["name"]]]
        bucket = afni_io.read_dataset(out / entry["dir"] / (entry.get("stats_file") or MEMA_FILE))
        for result in entry.get("results") or []:
            label = labels.get((entry["name"], result["set"])) or clean_label(result["set"])
            files = writer.contrast(entry, result, label, mask_name, bucket)
            index["contrasts"].append(
                {"analysis": entry["name"], "set": result["set"], "contrast": label, "files": files}
            )
    atomic.write_text(out / "README.md", readme_text(index))
    LOG.info("++ BIDS view: %d files (space-%s) in %s", len(writer.written), writer.space, out)
    return index
