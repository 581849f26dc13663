"""Template context of one set of an analysis: its cluster table and its two figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afni_group.atlas import labels_apply as atlas_labels_apply
from afni_group.errors import AfniGroupError
from afni_group.programs.clusterize.formats import parse_clusterize_report
from afni_group.programs.clustsim.core import ClustSimTable, corrected_alpha
from afni_group.report.formatting import ATLAS_NAMES, fmt, fmt_p, slugify
from afni_group.report.model import result_stat
from afni_group.report.pool import save_figure
from afni_group.report.readers import load_volume, read_clusters_tsv, to_number


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


def _p_fwe_cell(cluster: dict) -> str:
    """The tsv's corrected p for people: ``0.0123``, or ``<0.01`` with its bound flag."""
    value = cluster.get("p_fwe") or "n/a"
    bound = cluster.get("p_fwe_bound")
    return f"{bound}{value}" if bound in ("<", ">") else value


def _cluster_rows(clusters: list[dict], table: ClustSimTable | None, pthr: float) -> list[dict]:
    """The cluster table's cells (corrected alpha from the ClustSim table when there is one)."""
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
            "mean": fmt(c.get("mean"), 4),
            "sem": fmt(c.get("sem"), 4),
            "peak_value": fmt(c.get("peak_value"), 4),
            "peak_t": fmt(to_number(c.get("peak_t")), 2),
            "max_t": fmt(to_number(c.get("max_t")), 2),
            "max_t_lpi": [fmt(to_number(c.get(f"max_t_{a}_lpi"))) for a in "xyz"],
            "alpha": str(alpha) if alpha is not None else _p_fwe_cell(c),
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
            row[f"cm_{space}"] = [fmt(c.get(f"cm_{a}_{space}")) for a in "xyz"]
            row[f"peak_{space}"] = [fmt(c.get(f"peak_{a}_{space}")) for a in "xyz"]
        out.append(row)
    return out


def _add_missing_annotations(
    clusters: list[dict], adir: Path, stats_file: str, result: dict, warnings: list[str]
) -> None:
    """Peak t and atlas labels for a tsv written without them (older runs, 3dClusterize text)."""
    if not clusters or all("peak_t" in c for c in clusters):
        return
    map_path = adir / result["map"] if result.get("map") else None
    stats = adir / stats_file
    if map_path is None or not map_path.exists() or not stats.exists():
        return
    from afni_group import afni_io, cluster_table

    try:
        maps = afni_io.read_dataset(stats)
        t = maps.brick(maps.index_of(result.get("tbrick") or ""))
        ids = afni_io.read_dataset(map_path).brick(0)
        geoms = cluster_table.geometry_from_map(ids, t, maps.affine, clusters)
        cells = cluster_table.annotate(geoms, maps.space)
    except (AfniGroupError, KeyError, ValueError) as err:
        warnings.append(f"atlas labels not computed: {err}")
        return
    by_id = {g.cluster_id: cell for g, cell in zip(geoms, cells, strict=True)}
    for c in clusters:
        c.update({k: v for k, v in by_id.get(c["cluster_id"], {}).items() if k not in c})


def set_context(
    adir: Path,
    analysis: dict,
    cs: dict,
    result: dict,
    table: ClustSimTable | None,
    mask_vol,
    figure_dir: Path,
    scales: dict | None = None,
) -> dict:
    """Context of one set: its cluster table, atlas labels, figures and interactive viewer
    (written into figure_dir).

    ``analysis`` carries ``stats_file`` (:func:`afni_group.report.model.resolve`); the statistic
    is t, or z for a 3dttest++ ``-toz`` brick (no degrees of freedom).

    ``scales`` holds the analysis's shared colour limits (``t``, ``effect``; see
    :func:`afni_group.report.context.colour_scales`); missing ones are this set's own.
    """
    from afni_group.report import figures as rf

    label = result.get("set", "?")
    stats_file = analysis.get("stats_file") or "mema_results.nii.gz"
    stat = result_stat(result)
    sided, nn = cs.get("sided") or "bisided", int(cs.get("nn") or 1)
    pthr = cs.get("pthr")
    threshold = result.get("voxel_threshold")
    name = analysis.get("name", "analysis")
    slug = slugify(label) if name == label else f"{slugify(name)}_{slugify(label)}"
    set_labels = [s.get("label") for s in analysis.get("sets") or []]
    ctx: dict = {
        "label": label,
        # the model's B-A of two groups or conditions, not one set's own map
        "kind": "set" if label in set_labels or not set_labels else "difference",
        "anchor": f"set-{slug}",
        "tbrick": result.get("tbrick"),
        "bbrick": result.get("bbrick"),
        "stat": stat,
        "dof": result.get("dof") if stat == "t" else None,
        "threshold": fmt(threshold, 3) if threshold is not None else "n/a",
        "figures": [],
        "viewer": None,
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
        clusters = parse_clusterize_report(report_txt.read_text(errors="replace")).table_rows(sided)
        ctx["warnings"].append(
            f"{tsv.name if tsv else 'clusters.tsv'} not found; table read from {report_txt.name}."
        )
    _add_missing_annotations(clusters, adir, stats_file, result, ctx["warnings"])
    n_clusters = int(result.get("n_clusters") or len(clusters))
    ctx["n_clusters"] = n_clusters
    ctx["clusters"] = _cluster_rows(clusters, table, pthr) if pthr is not None else []
    ctx["rai_available"] = any(c.get("cm_x_rai") is not None for c in clusters)
    if table is None and clusters:
        ctx["warnings"].append("ClustSim table not found: corrected alphas are not available.")

    # figures ---------------------------------------------------------------------------
    stats = adir / stats_file
    stat_vol = None
    if stats.exists() and result.get("tbrick") and threshold:
        try:
            stat_vol = load_volume(stats, result["tbrick"])
        except AfniGroupError as err:
            ctx["warnings"].append(str(err))
    map_vol = ee_vol = None
    if n_clusters and result.get("map") and (adir / result["map"]).exists():
        map_vol = load_volume(adir / result["map"])
        if result.get("ee") and (adir / result["ee"]).exists():
            ee_vol = load_volume(adir / result["ee"])
    elif n_clusters:
        ctx["warnings"].append("cluster map file missing: the figures show no clusters.")

    if stat_vol is not None and stat == "t" and not ctx["dof"] and stat_vol.stat_params:
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
    scales = scales or {}
    t_vmax = scales.get("t")
    if stat_vol is not None and mask_vol is not None:
        dof = ctx["dof"]
        # z (3dttest++ -toz) has no degrees of freedom: its threshold is a normal quantile
        stat_label = f"t (df = {dof:g})" if dof else stat
        inside = mask_vol.data > 0
        if t_vmax is None:
            t_vmax = rf.stat_colour_limit([np.nan_to_num(stat_vol.data)[inside]], [threshold])
        fig = rf.plot_stat_maps(
            stat_vol,
            mask_vol,
            float(threshold),
            map_vol,
            ee=ee_vol,
            mni=mni,
            stat_label=f"{stat_label}, shown at |{stat}| \u2265 {float(threshold):.3f} "
            f"(p < {fmt_p(pthr)}, {sided})",
            vmax=t_vmax,
            statistic=stat,
        )
        ctx["figures"].append(
            save_figure(
                fig,
                figure_dir,
                f"{slug}_tmap",
                alt=f"Orthogonal and axial slices of the {label} {stat} map "
                f"({result.get('tbrick')}) over {underlay}; {n_clusters} surviving cluster(s) "
                f"opaque and outlined, other voxels faded by |{stat}|.",
                caption=f"{stat} map {result.get('tbrick')} over {underlay}, inside the group "
                "mask. Highlight, don't hide: voxels in surviving clusters are opaque with white "
                "outlines; every other in-mask voxel keeps its colour but is faded, the more the "
                f"smaller |{stat}| (at most {int(rf.FAINT_MAX_ALPHA * 100)} % opaque, reached at "
                f"the voxelwise threshold |{stat}| = {float(threshold):.3f}). Top: cut through "
                f"the peak of cluster 1 (or the largest |{stat}|); bottom: axial slices, through "
                f"the cluster peaks first. Colours span \u00b1{t_vmax:.3g}, the same in every "
                f"{stat} figure and set of this analysis; the white marks on the colour bar are "
                "the threshold. "
                f"Neurological convention (left is left); mm ({ctx['coord_space']}, RAS+/LPI).",
            )
        )
        from afni_group.report.pool import FIGURE_DIR
        from afni_group.report.viewer import write_viewer

        viewer = write_viewer(
            stat_vol, mask_vol, float(threshold), t_vmax, figure_dir / f"{slug}_viewer.html",
            title=f"{label}: {stat}", mni=mni,
            cut_coords=rf.focus_point(stat_vol, inside, map_vol, ee_vol),
        )  # fmt: skip
        ctx["viewer"] = {
            "file": f"{FIGURE_DIR}/{viewer.name}",
            "title": f"Interactive view of the {label} {stat} map ({stat_label})",
            "threshold": f"{float(threshold):.3f}",
            "underlay": underlay,
        }
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
        fig = rf.plot_cluster_maps(
            t_vol, ee_vol, map_vol, mask_vol, info, mni=mni,
            t_vmax=t_vmax if stat_vol is not None else None, ee_vmax=scales.get("effect"),
            threshold=float(threshold) if stat_vol is not None and threshold else None,
            statistic=stat,
        )  # fmt: skip
        first = (
            f"Top: glass brain (left, top, right, front) of the {stat} values in the surviving "
            f"clusters ({result.get('map')}), numbered as in the table, on the {stat} map's "
            "colour scale. Bottom: "
            if mni
            else "(No glass brain: it is drawn in MNI space.) "
        )
        ctx["figures"].append(
            save_figure(
                fig,
                figure_dir,
                f"{slug}_clusters",
                alt=f"Glass brain of the {label} clusters and their effect estimate on axial "
                "slices through the cluster peaks.",
                caption=f"{first}effect estimate {result.get('bbrick')} inside the clusters "
                f"({result.get('ee')}), in percent signal change (afni_proc.py scaled betas), "
                f"over {underlay} on axial slices through the cluster peaks (colours shared "
                "by the sets of this analysis).",
            )
        )
    return ctx
