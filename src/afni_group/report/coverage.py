"""The report's group-mask coverage figure: how many subjects have data at each voxel.

The group mask keeps the voxels covered by at least ``-frac`` of the subject masks (with the
tutorial's ``-frac 1.0``: by every subject), so one subject with a short field of view or signal
dropout removes those voxels for everybody. The figure shows the sum of the subject masks
(``analysis-*/mask_count.nii.gz``, ``3dmask_tool -count -frac 0``) on axial slices with the group
mask outlined, and how many voxels each coverage count has.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap

from afni_group.report import figures as rf
from afni_group.report.readers import Volume


def coverage_cmap(n_masks: int) -> ListedColormap:
    """One colour per count 1..n (viridis; the full count brightest)."""
    return ListedColormap(colormaps["viridis"](np.linspace(0.08, 1.0, max(n_masks, 1))))


def coverage_summary(count: np.ndarray, mask: np.ndarray, n_masks: int) -> dict:
    """Voxels per coverage count and what the group mask keeps (for the caption and tests)."""
    count = np.asarray(count).astype(int)
    covered = count > 0
    return {
        "n_masks": int(n_masks),
        "histogram": np.bincount(count[covered], minlength=n_masks + 1)[1:].tolist(),
        "any": int(covered.sum()),
        "all": int((count >= n_masks).sum()),
        "group_mask": int((np.asarray(mask) > 0).sum()),
    }


def plot_coverage(count: Volume, mask: Volume, n_masks: int, *, mni: bool = True, n_axial: int = 7):
    """Subject-mask coverage on axial slices, the group mask outlined, and its histogram.

    Parameters
    ----------
    count : Volume
        Number of subject masks covering each voxel.
    mask : Volume
        The group mask (same grid).
    n_masks : int
        Number of subject masks.
    mni : bool
        True: nilearn's MNI152 template underneath; False: the group mask (data not in MNI).
    n_axial : int
        Largest number of axial slices.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

    counts = np.rint(np.nan_to_num(count.data)).astype(int)
    inside = mask.data > 0
    cmap = coverage_cmap(n_masks)
    covered = replace(count, data=(counts > 0).astype(np.uint8))
    cuts = rf.axial_cuts(covered, n_axial)
    fig = rf.new_figure(rf.FIG_WIDTH_IN, 2.9)
    row = plotting.plot_stat_map(
        rf.nifti_image(count, np.where(counts > 0, counts, 0).astype(np.float32)),
        bg_img=rf.mni_template() if mni else rf.nifti_image(mask, inside.astype(np.float32)),
        display_mode="z",
        cut_coords=cuts,
        figure=fig,
        axes=[0.0, 0.0, 0.76, 1.0],
        threshold=0.5,
        cmap=cmap,
        vmin=0.5,
        vmax=n_masks + 0.5,
        symmetric_cbar=False,
        colorbar=True,
        black_bg=True,
        resampling_interpolation="nearest",
        draw_cross=False,
        dim="auto" if mni else 1.8,  # the group mask as a dark silhouette (as figures.py does)
    )
    if inside.any():
        row.add_contours(
            rf.nifti_image(mask, inside.astype(np.float32)), levels=[0.5], colors="white",
            linewidths=1.0,
        )  # fmt: skip
    rf.label_colorbar(row, "subjects")
    cbar = getattr(row, "_cbar", None)
    if cbar is not None:
        ticks = sorted({1, n_masks, *range(1, n_masks + 1, max(1, n_masks // 6))})
        cbar.set_ticks(ticks)
        cbar.set_ticklabels([str(t) for t in ticks])
    _histogram(fig, counts, inside, n_masks, cmap)
    return fig


def _histogram(fig, counts: np.ndarray, inside: np.ndarray, n_masks: int, cmap) -> None:
    """Voxels per coverage count (log scale), the part the group mask keeps drawn solid."""
    ax = fig.add_axes([0.82, 0.2, 0.16, 0.62], facecolor=rf.BG)
    levels = np.arange(1, n_masks + 1)
    total = np.bincount(counts[counts > 0], minlength=n_masks + 1)[1:]
    kept = np.bincount(counts[inside & (counts > 0)], minlength=n_masks + 1)[1:]
    colours = [cmap(i) for i in range(n_masks)]
    ax.bar(levels, total, color=colours, alpha=0.35, width=0.85)
    ax.bar(levels, kept, color=colours, width=0.85, edgecolor="white", linewidth=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("subjects covering a voxel", color=rf.FG, fontsize=8)
    ax.set_title("voxels (solid: in group mask)", color=rf.FG, fontsize=8, loc="left")
    ax.tick_params(colors=rf.FG, labelsize=7)
    for side in ax.spines.values():
        side.set_color("#5b6673")
    ax.set_xticks(sorted({1, n_masks, (n_masks + 1) // 2}))
