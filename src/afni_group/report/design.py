"""The report's design part of an analysis: what the model means, the same-subjects callout, and
the heterogeneity maps 3dMEMA writes (I2, tau, QE), each with one sentence on how to read it
(3dttest++ writes none)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afni_group.errors import AfniGroupError
from afni_group.plan import MEMA_FILE
from afni_group.report.model import result_stat
from afni_group.report.pool import save_figure
from afni_group.report.readers import Volume, load_volume

#: 3dMEMA's heterogeneity bricks (spec 02 §8.2), the colour map and how to read each
HETEROGENEITY = (
    (
        "I2",
        "viridis",
        "I\u00b2 (0 to 1): the share of the spread of the subjects' effects that is real "
        "between-subject variation rather than each subject's own measurement error; near 0 the "
        "subjects agree within their noise, near 1 they truly differ.",
    ),
    (
        "tau",
        "magma",
        "\u03c4: the estimated standard deviation of the subjects' true effects around the group "
        "mean, in the betas' units (% signal change); compare it with the effect itself.",
    ),
    (
        "QE:Chisq",
        "cividis",
        "QE: Cochran's Q, a \u03c7\u00b2 test of \u2018all subjects share one effect\u2019; "
        "large values mean the subjects differ more than their t statistics explain, which is "
        "what the mixed-effects model (\u03c4 > 0) accounts for.",
    ),
)


def with_findings(params: dict) -> list[dict]:
    """params.json's analyses, each with the input-QC design findings about it (``findings``)."""
    found = (params.get("input_qc") or {}).get("design") or []
    return [
        {**a, "findings": [f for f in found if f.get("analysis") == a.get("name")]}
        for a in params.get("analyses") or []
    ]


def _sizes(analysis: dict) -> list[int | None]:
    members = analysis.get("set_subjects") or {}
    return [
        len(members[s["label"]]) if s["label"] in members else None
        for s in analysis.get("sets") or []
    ]


def design_context(analysis: dict) -> dict:
    """What the analysis' design means (one or two sentences), and the callout of a finding.

    ``analysis`` is params.json's, its ``program`` filled in (the model's words and brick names).
    """
    sets = [s["label"] for s in analysis.get("sets") or []]
    program = analysis.get("program") or "3dMEMA"
    sizes = _sizes(analysis)
    design = analysis.get("design")
    ctx: dict = {"text": "", "callout": None, "session": analysis.get("session")}
    n = [f" (n = {k})" if k else "" for k in sizes]
    if design == "one" and sets:
        ctx["text"] = (
            f"One-sample test: is the mean of {sets[0]}{n[0]} different from 0 across subjects? "
            "df = n \u2212 1."
        )
    elif design == "groups" and len(sets) == 2:
        ctx["text"] = (
            f"Two independent groups (unpaired): {sets[0]}{n[0]} and {sets[1]}{n[1]}, each "
            f"group's mean and their difference {sets[1]}\u2212{sets[0]} "
            f"(<code>{sets[1]}-{sets[0]}</code>, as {program} names it); df = n1 + n2 \u2212 2."
        )
    elif design == "conditions" and len(sets) == 2:
        ctx["text"] = (
            f"Paired (within-subject): each subject's {sets[1]} minus {sets[0]}{n[0]}, tested "
            "against 0; df = n \u2212 1. The paired model gives only this difference: for each "
            "condition's own map run it with <code>--design one</code>."
        )
    results = analysis.get("results") or [{}]
    if ctx["text"] and program == "3dttest++":
        ctx["text"] += (
            " Ordinary least-squares t-test of the subjects' \u03b2 (3dttest++; the subjects' t "
            "statistics are not used)."
        )
        if result_stat(results[0]) == "z":
            ctx["text"] += (
                " The t statistics are converted to z (<code>-toz</code>, which "
                "<code>-Clustsim</code> turns on): z maps have no df, the threshold is a normal "
                "quantile."
            )
    for finding in analysis.get("findings") or []:
        if finding.get("check") == "same_subjects_in_groups":
            ctx["callout"] = (
                f"The same {finding['n_shared']} subjects are in both sets: the unpaired model "
                f"treats {finding['sets'][0]} and {finding['sets'][1]} as independent groups, "
                f"so its df (n1 + n2 \u2212 2 = {finding['df']}) counts every subject twice and "
                "the difference ignores the pairing. For two conditions of the same subjects "
                f"use <code>--design conditions</code> (paired, df = {finding['paired_df']}); "
                "for each set alone, <code>--design one</code>."
            )
    return ctx


def _montage(fig, row: int, n_rows: int, vol: Volume, inside: np.ndarray, cmap: str, label: str):
    """One row of axial slices of ``vol`` inside the mask, with its colour bar."""
    from afni_group.report.figures import FG, pick_slices

    area = inside.sum(axis=(0, 1))
    present = area >= 0.3 * area.max() if area.any() else np.ones(inside.shape[2], bool)
    zs = pick_slices(present, 7)  # slices through the bulk of the mask, not its tips
    data = np.where(inside, np.nan_to_num(vol.data), np.nan)
    finite = data[np.isfinite(data)]
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    if label == "I2":
        vmax = 1.0
    width = 1.0 / (len(zs) + 1)
    image = None
    for k, z in enumerate(zs):
        ax = fig.add_axes((k * width, 1 - (row + 1) / n_rows, width, 0.92 / n_rows))
        ax.set_facecolor("black")
        image = ax.imshow(data[:, :, z].T, origin="lower", cmap=cmap, vmin=0, vmax=vmax)
        ax.set_axis_off()
        ax.text(
            0.03, 0.03, f"z={vol.world(2, z):.0f}", color=FG, fontsize=7, transform=ax.transAxes
        )
    cax = fig.add_axes(
        (len(zs) * width + 0.02 * width, 1 - (row + 0.85) / n_rows, 0.12 * width, 0.7 / n_rows)
    )
    bar = fig.colorbar(image, cax=cax)
    bar.ax.tick_params(colors=FG, labelsize=7)
    bar.ax.set_title(label, color=FG, fontsize=8)


def heterogeneity_context(
    adir: Path, analysis: dict, mask_vol: Volume | None, figure_dir: Path
) -> dict:
    """The I2, tau and QE maps of an analysis (one figure) and a sentence on each."""
    from afni_group.report import figures as rf
    from afni_group.report.formatting import slugify

    mema = adir / (analysis.get("stats_file") or MEMA_FILE)
    ctx: dict = {"figure": None, "items": [], "warning": None}
    if analysis.get("program", "3dMEMA") != "3dMEMA" or not mema.exists() or mask_vol is None:
        return ctx  # 3dttest++ writes no heterogeneity maps
    vols = []
    for label, cmap, sentence in HETEROGENEITY:
        try:
            vols.append((label, cmap, load_volume(mema, label)))
        except AfniGroupError:
            continue  # e.g. -unequal_variance or an older 3dMEMA layout: no such brick
        ctx["items"].append({"label": label, "text": sentence})
    if not vols:
        return ctx
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    inside = mask_vol.data > 0
    fig = Figure(figsize=(rf.FIG_WIDTH_IN, 1.45 * len(vols)), dpi=rf.DPI, facecolor=rf.BG)
    FigureCanvasAgg(fig)
    for row, (label, cmap, vol) in enumerate(vols):
        _montage(fig, row, len(vols), vol, inside, cmap, label)
    name = slugify(analysis.get("name") or adir.name)
    ctx["figure"] = save_figure(
        fig,
        figure_dir,
        f"{name}_heterogeneity",
        alt=f"Axial slices of 3dMEMA's {', '.join(v[0] for v in vols)} maps inside the group mask.",
        caption=f"{', '.join(v[0] for v in vols)} of {mema.name} inside the group mask, on axial "
        "slices (neurological convention, left is left). Colour scales from 0 "
        "to the 99th percentile in the mask; I\u00b2 from 0 to 1.",
    )
    return ctx
