"""Everything the report template needs, built from a finished run's files.

:func:`build_context` reads params.json and each ``analysis-*/`` folder; the analyses (their
figures) are drawn by :func:`afni_group.report.pool.draw_analyses`, each set's part by
:func:`afni_group.report.sets.set_context`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

import numpy as np

from afni_group import __version__
from afni_group.atlas import labels_apply as atlas_labels_apply
from afni_group.errors import AfniGroupError
from afni_group.plan import MASK_COUNT_FILE, MASK_FILE
from afni_group.programs.acf.core import acf_fwhm
from afni_group.programs.clustsim.formats import read_clustsim_table
from afni_group.report import model
from afni_group.report.design import design_context, heterogeneity_context, with_findings
from afni_group.report.formatting import ATLAS_NAMES, SIDED_TEXT, fmt_p, slugify
from afni_group.report.methods import (
    atlas_provenance,
    methods_text,
    ordered_versions,
    references,
)
from afni_group.report.pool import draw_analyses, save_figure
from afni_group.report.readers import load_params, load_volume, read_tsv
from afni_group.report.sets import set_context

CLUSTSIM_KEYS = ("nn", "sided", "pthr", "alpha", "iterations", "seed", "table", "auto", "route")


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
    analyses = draw_analyses(
        _analysis_context,
        out,
        model.resolve(params, with_findings(params)),
        Path(figure_dir),
        n_jobs,
    )
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
        "versions": ordered_versions(params.get("versions") or {}),
        "inventory": inventory,
        "analyses": analyses,
        "n_sets": len(sets),
        "n_sets_with_clusters": sum(1 for s in sets if s["n_clusters"]),
        "clustsim": first_cs,
        "sided_text": SIDED_TEXT.get(first_cs.get("sided"), first_cs.get("sided")),
        "k_summary": _k_summary(ks),
        "methods": methods_text(params, analyses, inventory),
        "references": references(params, analyses),
        "input_qc": input_qc_context(params),
        "coverage": coverage_context(out, params, Path(figure_dir)),
        "atlases": params.get("atlases") or atlas_provenance(),
        "atlas_names": ATLAS_NAMES,
        "fmt_p": fmt_p,
    }


def _k_summary(ks: set) -> str:
    """The cluster-size thresholds of the analyses for the summary card: ``17``, ``7–8``."""
    known = sorted(k for k in ks if k is not None)
    if not known:
        return "n/a"
    # the randomise route's tables are per analysis: the thresholds often differ by a voxel
    return str(known[0]) if known[0] == known[-1] else f"{known[0]}–{known[-1]}"


def _analysis_context(out: Path, analysis: dict, figure_dir: Path) -> dict:
    """Context of one analysis: model, mask, smoothness, ClustSim settings and its sets.

    ``analysis`` is params.json's, with the model filled in
    (:func:`afni_group.report.model.resolve`).
    """
    analysis = model.resolve({}, [analysis])[0]  # already resolved by build_context: unchanged
    adir = out / analysis.get("dir", f"analysis-{analysis.get('name', 'mema')}")
    cs = dict.fromkeys(CLUSTSIM_KEYS) | (analysis.get("clustsim") or {})
    mask_info = analysis.get("mask") or {}
    mask_path = adir / (mask_info.get("file") or MASK_FILE)
    ctx: dict = {
        "name": analysis.get("name", adir.name),
        "dir": adir.name,
        "anchor": f"analysis-{slugify(analysis.get('name', adir.name))}",
        "design": analysis.get("design"),
        "correct_dof": analysis.get("correct_dof"),
        "program": analysis["program"],
        "route": cs["route"],
        "route_text": model.route_text(cs["route"]),
        "stats_file": analysis["stats_file"],
        # t, or z for 3dttest++ -toz (the randomise route): the word in every label and caption
        "stat": model.result_stat(next(iter(analysis.get("results") or []), {})),
        "set_defs": analysis.get("sets") or [],
        "clustsim": cs,
        "sided_text": SIDED_TEXT.get(cs.get("sided"), cs.get("sided")),
        "k": analysis.get("cluster_size_threshold"),
        "k_mc": analysis.get("cluster_size_mc"),  # Monte-Carlo error (native engine only)
        "mask": None,
        "acf": None,
        "warnings": [],
        "notes": [],
        "sets": [],
    }
    advice = model.acf_pthr_advice(ctx["program"], ctx["route"], cs.get("pthr"))
    if advice:
        ctx["notes"].append(advice)
    if ctx["k_mc"] and not ctx["k_mc"].get("stable", True):
        from afni_group.programs.clustsim.stability import unstable_message

        # the run's warning, with the iterations needed and the program that needs them
        randomise = ctx["route"] == "randomise"
        text = unstable_message(
            ctx["k_mc"],
            "3dttest++ -Clustsim" if randomise else "3dClustSim",
            auto_possible=not randomise,  # --clustsim-iter auto is 3dClustSim's only
        )
        ctx["warnings"].append(f"The {text}.")
    mask_vol = None
    if mask_path.exists():
        mask_vol = load_volume(mask_path)
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
    scales = colour_scales(adir / analysis["stats_file"], results, mask_vol)
    for result in results:
        ctx["sets"].append(
            set_context(adir, analysis, cs, result, table, mask_vol, figure_dir, scales)
        )
    ctx["design_info"] = design_context(analysis)
    ctx["heterogeneity"] = heterogeneity_context(adir, analysis, mask_vol, figure_dir)
    return ctx


def colour_scales(stats: Path, results: list[dict], mask_vol) -> dict:
    """One symmetric colour limit per kind of map for every set of an analysis.

    ``stats`` is the analysis's bucket (3dMEMA's or 3dttest++'s). ``t``: the t (or z) map
    figures, glass brains and viewers (largest |t| in the mask over the sets, at least 1.5 x the
    threshold: :func:`afni_group.report.figures.stat_colour_limit`);
    ``effect``: the effect estimates in the clusters. None where no set has that map.
    """
    from afni_group.report import figures as rf

    adir = stats.parent
    t_values, thresholds, effects = [], [], []
    for result in results:
        if mask_vol is not None and result.get("tbrick") and stats.exists():
            try:
                t = load_volume(stats, result["tbrick"]).data
            except AfniGroupError:
                continue  # the set's own context reports it
            t_values.append(np.nan_to_num(t)[mask_vol.data > 0])
            thresholds.append(float(result.get("voxel_threshold") or 0.0))
        if result.get("n_clusters") and result.get("ee") and (adir / result["ee"]).exists():
            effects.append(np.nan_to_num(load_volume(adir / result["ee"]).data).ravel())
    return {
        "t": rf.stat_colour_limit(t_values, thresholds) if t_values else None,
        "effect": rf.symmetric_limit(np.concatenate(effects)) if effects else None,
    }


def coverage_context(out: Path, params: dict, figure_dir: Path) -> dict | None:
    """The group-mask coverage figure and its numbers (None without ``mask_count.nii.gz``).

    Drawn once: the analyses of a run share the subjects and so the group mask.
    """
    from afni_group.programs.mask_tool.core import count_limit
    from afni_group.report.coverage import coverage_summary, plot_coverage

    for analysis in params.get("analyses") or []:
        info = analysis.get("mask") or {}
        adir = out / analysis.get("dir", f"analysis-{analysis.get('name', 'mema')}")
        count_path = adir / (info.get("count_file") or MASK_COUNT_FILE)
        mask_path = adir / (info.get("file") or MASK_FILE)
        if count_path.exists() and mask_path.exists():
            break
    else:
        return None
    count, mask = load_volume(count_path), load_volume(mask_path)
    n = int(info.get("n_masks") or np.nanmax(count.data))
    frac = info.get("frac")
    summary = coverage_summary(count.data, mask.data, n)
    limit = count_limit(float(frac), n) if frac is not None else None
    mni = atlas_labels_apply(mask.space) if mask.space else True
    outline = (
        f"at least {limit} of {n} masks (-frac {float(frac):g})" if limit else "the -frac rule"
    )
    figure = save_figure(
        plot_coverage(count, mask, n, mni=mni),
        figure_dir,
        "group_mask_coverage",
        alt=f"Axial slices of how many of the {n} subject masks cover each voxel, with the group "
        "mask outlined, and a histogram of the voxels per count.",
        caption=f"How many of the {n} subjects' masks cover each voxel: the sum of the subject "
        f"masks before the intersection ({adir.name}/{count_path.name}, 3dmask_tool -count "
        f"-frac 0), over {'the MNI152 template' if mni else 'the group mask'}. White outline: the "
        f"group mask {mask_path.name}, the voxels covered by {outline}. Right: voxels per "
        "count (log scale), solid where they are in the group mask. Voxels covered by only "
        "some subjects (the darker colours) are where a subject's field of view or signal "
        "dropout shrinks the group mask.",
    )
    return {**summary, "figure": figure, "frac": frac, "limit": limit, "dir": adir.name}


def _inventory_context(out: Path, params: dict) -> dict:
    rows = read_tsv(out / "inventory.tsv")
    dropped = {d.get("subject"): d.get("reason", "") for d in params.get("dropped") or []}
    subjects = []
    for row in rows:
        sid = row.get("participant_id") or row.get("subject") or next(iter(row.values()), "")
        if row.get("session_id") not in (None, "", "n/a"):  # per-session results
            sid = f"{sid}_{row['session_id']}"
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
        "program": params.get("program") or "3dMEMA",  # the group model the checks came before
        "group_mask_voxels": qc.get("group_mask_voxels"),
        # the randomise route reads no blur_est (no ACF): the checks did not either
        "blur_est_checked": bool(qc.get("acf")) or "acf" not in qc,
        "extreme_factor": qc.get("extreme_factor"),
        "warnings": qc.get("warnings") or [],
        "grid_mismatches": qc.get("grid_mismatches") or [],
        "sets": sets,
    }
