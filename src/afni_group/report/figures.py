"""Figures of the HTML report, drawn with nilearn's plotting over its MNI152 template.

:func:`afni_group.report.readers.load_volume` reads a brick from the output files (either
engine) into canonical (RAS+) voxel order; the figures hand nibabel images of those arrays to
``nilearn.plotting``:
:func:`plot_stat_maps` (t map, orthogonal views + axial row) and :func:`plot_cluster_maps`
(glass brain of the surviving clusters + effect estimate). The underlay is nilearn's bundled
MNI152 template (no download); data not in MNI space get the group mask as underlay and no
glass brain.

What nilearn does not do is kept here: the "highlight, don't hide" opacity (Chen, Taylor et
al., NeuroImage 2022; :func:`highlight_alpha`, passed as nilearn's ``transparency``) that keeps
surviving clusters opaque and fades every other in-mask voxel by |t|, the choice of slices
(through the clusters' peaks), cluster numbers on the glass brain and colour-bar units.

No pyplot: figures are :class:`matplotlib.figure.Figure` objects on an explicit Agg canvas
(nilearn draws into them through ``figure=``), so no GUI backend is touched.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path


def _ensure_mplconfigdir() -> None:
    """Point MPLCONFIGDIR at a writable directory before matplotlib is imported.

    Containers often run with a read-only $HOME; matplotlib would then warn and fall back to a
    temporary directory by itself. Doing it here keeps stderr clean and respects a user's choice.
    """
    current = os.environ.get("MPLCONFIGDIR")
    if current and os.path.isdir(current) and os.access(current, os.W_OK):
        return
    if current:
        try:
            os.makedirs(current, exist_ok=True)
            if os.access(current, os.W_OK):
                return
        except OSError:
            pass
    elif os.access(os.path.expanduser("~"), os.W_OK):
        return  # matplotlib's default (~/.config/matplotlib) will work
    os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="afni-group-mpl-")


_ensure_mplconfigdir()

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from afni_group import atomic  # noqa: E402
from afni_group.report.readers import Volume  # noqa: E402

DPI = 100
FIG_WIDTH_IN = 11.0
BG = "#000000"  # figure background (nilearn's black_bg panels)
FG = "#e8ecf0"  # text on the dark panels
FAINT_MAX_ALPHA = 0.6  # opacity reached by a sub-threshold voxel at |t| = threshold
THRESHOLD_ROOM = 1.5  # the colour limit is at least this many times the voxelwise threshold
# axial rows skip slices where the mask covers less than this share of its largest slice
MIN_SLICE_AREA = 0.25

# AFNI-like diverging map for statistics: blue/cyan for negative, red/yellow for positive, dark in
# the middle so that faint sub-threshold voxels stay dim on the dark background.
STAT_CMAP = LinearSegmentedColormap.from_list(
    "afni_group_cold_hot",
    [
        (0.00, "#00ffff"),
        (0.25, "#0050ff"),
        (0.50, "#1a1a40"),
        (0.75, "#ff2000"),
        (1.00, "#ffff00"),
    ],
)


# ----------------------------------------------------------------------------- pure helpers


def highlight_alpha(
    stat: np.ndarray, threshold: float, surviving: np.ndarray, inside: np.ndarray
) -> np.ndarray:
    """Per-voxel opacity for "highlight, don't hide".

    Parameters
    ----------
    stat : numpy.ndarray
        Statistic values (e.g. t).
    threshold : float
        Voxelwise threshold on |stat| (> 0).
    surviving : numpy.ndarray of bool
        Voxels in clusters that survive the cluster-size correction: fully opaque.
    inside : numpy.ndarray of bool
        The group mask; voxels outside are fully transparent.

    Returns
    -------
    numpy.ndarray
        Opacity in [0, 1]. Outside ``surviving`` it grows quadratically with |stat|/threshold up
        to :data:`FAINT_MAX_ALPHA`, so near-zero values almost vanish and voxels above threshold
        that belong to too-small clusters stay visibly "not significant".
    """
    ratio = np.clip(np.abs(stat) / float(threshold), 0.0, 1.0)
    alpha = FAINT_MAX_ALPHA * ratio**2
    alpha = np.where(surviving, 1.0, alpha)
    return np.where(inside, alpha, 0.0)


def pick_slices(present: np.ndarray, n_max: int) -> list[int]:
    """Indices of up to ``n_max`` evenly spaced slices among those where ``present`` is true.

    Parameters
    ----------
    present : numpy.ndarray of bool
        One flag per slice (e.g. "the mask has voxels in this slice").
    n_max : int
        Largest number of slices to return.

    Returns
    -------
    list of int
        Sorted, unique slice indices (empty when no slice is flagged).
    """
    idx = np.flatnonzero(present)
    if idx.size <= n_max:
        return [int(i) for i in idx]
    picks = np.round(np.linspace(0, idx.size - 1, n_max)).astype(int)
    return sorted({int(idx[p]) for p in picks})


def symmetric_limit(values: np.ndarray, floor: float = 0.0) -> float:
    """A tidy symmetric colour limit: max |value| (finite), at least ``floor``, never 0."""
    finite = np.abs(values[np.isfinite(values)])
    vmax = float(finite.max()) if finite.size else 0.0
    vmax = max(vmax, floor)
    return vmax if vmax > 0 else 1.0


def stat_colour_limit(values: list[np.ndarray], thresholds: list[float]) -> float:
    """One symmetric colour limit for every figure of the t maps of an analysis.

    The largest |t| of all of them (in the mask), so no figure saturates and the same colour
    means the same t in every set and figure; at least :data:`THRESHOLD_ROOM` x the largest
    voxelwise threshold, so the threshold marks on the colour bar stay inside it.
    """
    floor = THRESHOLD_ROOM * max((float(t) for t in thresholds), default=0.0)
    return max(symmetric_limit(np.concatenate([np.ravel(v) for v in values])), floor)


# ----------------------------------------------------------------------------- figures


def load_plotting() -> None:
    """Import nilearn's plotting and load the template now (before forking figure workers)."""
    from nilearn import plotting  # noqa: F401

    mni_template()


@functools.cache
def mni_template():
    """nilearn's MNI152 (ICBM 2009) T1 template at 2 mm; bundled in the nilearn wheel, no download.

    2 mm is nilearn's own default underlay: finer than group maps (2-3 mm), and the figures draw
    in 60 % of the time the 1 mm template takes (the report of the 3 mm demo: 7.7 s, not 12.6 s).
    """
    from nilearn import datasets

    return datasets.load_mni152_template(resolution=2)


def nifti_image(vol: Volume, data: np.ndarray | None = None) -> nib.Nifti1Image:
    """``data`` (default the volume's own) as a float32 NIfTI image on ``vol``'s grid."""
    arr = vol.data if data is None else data
    return nib.Nifti1Image(np.asarray(arr, dtype=np.float32), vol.affine)


def _world_point(vol: Volume, ijk: tuple[int, int, int]) -> tuple[float, float, float]:
    xyz = vol.affine[:3, :3] @ np.asarray(ijk, dtype=float) + vol.affine[:3, 3]
    return tuple(float(v) for v in xyz)


def focus_point(
    stat: Volume, inside: np.ndarray, clusters: Volume | None, ee: Volume | None
) -> tuple[float, float, float]:
    """Where the orthogonal views cut (mm): the peak of cluster 1, else the max |t| in the mask.

    The cluster peak follows 3dClusterize's "Max Int": the largest |effect| in the cluster.
    """
    t = np.nan_to_num(stat.data)
    if clusters is not None and np.any(np.rint(clusters.data) == 1):
        weights = np.abs(np.nan_to_num(ee.data)) if ee is not None else np.abs(t)
        score = np.where(np.rint(clusters.data) == 1, weights, -np.inf)
    elif inside.any():
        score = np.where(inside, np.abs(t), -np.inf)
    else:
        return _world_point(stat, tuple(int(n) // 2 for n in stat.shape))
    ijk = np.unravel_index(int(np.argmax(score)), score.shape)
    return _world_point(stat, tuple(int(i) for i in ijk))


def axial_cuts(mask: Volume, n_max: int, must: list[int] | None = None) -> list[float]:
    """z (mm) of up to ``n_max`` axial slices spread over the mask, including the ``must`` ones.

    ``must`` (slice indices, e.g. through cluster peaks) replace the nearest evenly spread slice.
    """
    area = (mask.data > 0).sum(axis=(0, 1))
    present = area >= max(MIN_SLICE_AREA * area.max(), 1)  # no near-empty end slices
    spread = pick_slices(present if present.any() else np.ones(mask.shape[2], bool), n_max)
    keep = sorted(set((must or [])[:n_max]))
    free = [z for z in spread if z not in keep]
    for z in keep:
        if len(free) + len(keep) <= n_max or not free:
            continue
        free.pop(int(np.argmin([abs(z - k) for k in free])))
    zs = sorted(set(free + keep))
    return [float(mask.world(2, z)) for z in zs]


def label_colorbar(display, label: str, threshold: float | None = None) -> None:
    """Put the units above the colour bar nilearn drew; readable ticks on black.

    With ``threshold``, white marks at ± the voxelwise threshold, ticked with its value.
    """
    cbar = getattr(display, "_cbar", None)
    if cbar is None:
        return
    cbar.ax.set_title(label, color=FG, fontsize=8.5, loc="right", pad=4)
    cbar.ax.tick_params(colors=FG, labelsize=8)
    if threshold:
        vmax = float(cbar.norm.vmax)
        for level in (-threshold, threshold):
            cbar.ax.axhline(level, color="white", linewidth=1.6)
        cbar.set_ticks([-vmax, -threshold, 0.0, threshold, vmax])
        cbar.set_ticklabels([f"{v:.3g}" for v in (-vmax, -threshold, 0.0, threshold, vmax)])


def _legend(fig: Figure, anchor: tuple[float, float], surviving: bool, stat: str = "t") -> None:
    handles = [
        Patch(
            facecolor=(*STAT_CMAP(0.9)[:3], 0.35),
            edgecolor="none",
            label=f"faint: not significant (fades with |{stat}|)",
        ),
    ]
    if surviving:  # no legend entry for what the figure does not show
        handles.insert(
            0,
            Patch(
                facecolor=STAT_CMAP(0.95),
                edgecolor="white",
                linewidth=1.2,
                label="opaque + white outline: surviving cluster",
            ),
        )
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=anchor,
        frameon=False,
        fontsize=8.5,
        labelcolor=FG,
    )


def plot_stat_maps(
    stat: Volume,
    mask: Volume,
    threshold: float,
    clusters: Volume | None,
    *,
    ee: Volume | None = None,
    mni: bool = True,
    stat_label: str = "t",
    n_axial: int = 8,
    vmax: float | None = None,
    statistic: str = "t",
) -> Figure:
    """The t map over the MNI template: orthogonal views at the main peak and an axial row.

    "Highlight, don't hide": nilearn's ``transparency`` gets :func:`highlight_alpha`, so voxels
    of surviving clusters are opaque (and outlined white), all other in-mask voxels faded by
    |t|. Without clusters this is the faded sub-threshold map.

    Parameters
    ----------
    stat, mask : Volume
        t map and group mask (same grid).
    threshold : float
        Voxelwise |t| threshold.
    clusters : Volume or None
        Cluster-index map (0 = none); None when nothing survived.
    ee : Volume or None
        Effect estimate in the clusters (locates the peak of cluster 1).
    mni : bool
        True: nilearn's MNI152 template underneath. False (TLRC/ORIG data): the group mask.
    stat_label : str
        The text beside the figure: the statistic, its df and threshold.
    n_axial : int
        Number of axial slices in the bottom row.
    vmax : float, optional
        Symmetric colour limit, shared by every t figure of the analysis
        (:func:`stat_colour_limit`; default: this map's own).
    statistic : str
        ``t``, or ``z`` (3dttest++ ``-toz``): the colour bar's title and the legend's word.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

    inside = mask.data > 0
    surviving = (np.rint(clusters.data) > 0) if clusters is not None else np.zeros_like(inside)
    t = np.where(inside, np.nan_to_num(stat.data), 0.0)
    vmax = stat_colour_limit([t], [threshold]) if vmax is None else float(vmax)
    alpha = nifti_image(stat, highlight_alpha(t, threshold, surviving, inside))
    t_img = nifti_image(stat, t)
    background = mni_template() if mni else nifti_image(mask, inside.astype(np.float32))
    focus = focus_point(stat, inside, clusters, ee)
    peaks = []
    if clusters is not None:
        ids = np.rint(clusters.data).astype(int)
        weights = np.abs(np.nan_to_num(ee.data if ee is not None else t))
        peaks = cluster_slices(ids, weights, n_axial // 2)
    cuts = axial_cuts(mask, n_axial, peaks)

    fig = new_figure(FIG_WIDTH_IN, 5.4)
    common = dict(
        bg_img=background,
        transparency=alpha,
        threshold=None,
        cmap=STAT_CMAP,
        vmin=-vmax,
        vmax=vmax,
        symmetric_cbar=True,
        black_bg=True,
        resampling_interpolation="nearest",
        draw_cross=False,
        dim="auto" if mni else 1.8,  # the mask underlay (0/1) as a dark silhouette
    )
    ortho = plotting.plot_stat_map(
        t_img,
        display_mode="ortho",
        cut_coords=focus,
        figure=fig,
        axes=[0.0, 0.40, 0.66, 0.57],
        colorbar=True,
        **common,
    )
    label_colorbar(ortho, statistic, threshold)
    row = plotting.plot_stat_map(
        t_img,
        display_mode="z",
        cut_coords=cuts,
        figure=fig,
        axes=[0.0, 0.0, 1.0, 0.40],
        colorbar=False,
        **common,
    )
    if surviving.any():
        outline = nifti_image(mask, surviving.astype(np.float32))
        for display in (ortho, row):
            display.add_contours(outline, levels=[0.5], colors="white", linewidths=1.0)
    _legend(fig, (0.67, 0.97), bool(surviving.any()), statistic)
    underlay = "MNI152 template (nilearn)" if mni else "group mask (data not in MNI space)"
    fig.text(
        0.68,
        0.80,
        f"{stat_label}\nunderlay: {underlay}\ncut at x, y, z = {focus[0]:g}, {focus[1]:g}, "
        f"{focus[2]:g} mm",
        color=FG,
        fontsize=8.5,
        va="top",
        linespacing=1.6,
    )
    return fig


def plot_cluster_maps(
    stat: Volume,
    ee: Volume,
    clusters: Volume,
    mask: Volume,
    cluster_info: list[dict],
    *,
    mni: bool = True,
    ee_label: str = "effect, % signal change",
    n_slices: int = 6,
    t_vmax: float | None = None,
    ee_vmax: float | None = None,
    threshold: float | None = None,
    statistic: str = "t",
) -> Figure:
    """Glass brain of the surviving clusters (t) and their effect estimate on axial slices.

    Parameters
    ----------
    stat : Volume
        t map; shown inside the clusters only.
    ee : Volume
        Effect estimate masked by the clusters (3dClusterize ``-pref_dat``).
    clusters : Volume
        Cluster-index map (1 = largest).
    mask : Volume
        Group mask (underlay when the data are not in MNI space).
    cluster_info : list of dict
        ``cluster_id`` and ``peak`` (x, y, z mm) of each cluster, to number them.
    mni : bool
        False: no glass brain (it is drawn in MNI space), the mask instead of the template.
    ee_label : str
        Colour-bar label of the effect (units).
    n_slices : int
        Largest number of axial slices (through the clusters' peaks first).
    t_vmax, ee_vmax : float, optional
        Symmetric colour limits of the t (glass brain; the t map figure's) and of the effect,
        shared by the analysis's sets (default: these clusters' own).
    threshold : float, optional
        Voxelwise |t| threshold, marked on the glass brain's colour bar.
    statistic : str
        ``t`` or ``z``: the glass brain colour bar's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

    ids = np.rint(clusters.data).astype(int)
    in_cluster = ids > 0
    ee_vals = np.where(in_cluster, np.nan_to_num(ee.data), 0.0)
    t_vals = np.where(in_cluster, np.nan_to_num(stat.data), 0.0)
    zs = cluster_slices(ids, ee_vals, n_slices) or [clusters.shape[2] // 2]
    cuts = [float(clusters.world(2, z)) for z in zs]
    height = 5.2 if mni else 2.7
    fig = new_figure(FIG_WIDTH_IN, height)
    bottom_h = 2.5 / height
    if mni:
        tmax = symmetric_limit(t_vals) if t_vmax is None else float(t_vmax)
        glass = plotting.plot_glass_brain(
            nifti_image(stat, t_vals),
            display_mode="lzry",
            figure=fig,
            axes=[0.0, bottom_h + 0.02, 1.0, 1.0 - bottom_h - 0.04],
            plot_abs=False,
            cmap=STAT_CMAP,
            vmin=-tmax,
            vmax=tmax,
            symmetric_cbar=True,
            threshold=1e-6,
            colorbar=True,
            black_bg=True,
            resampling_interpolation="nearest",
        )
        label_colorbar(glass, statistic, threshold)
        _number_clusters(glass, cluster_info)
    background = mni_template() if mni else nifti_image(mask, (mask.data > 0).astype(np.float32))
    vmax = symmetric_limit(ee_vals) if ee_vmax is None else float(ee_vmax)
    row = plotting.plot_stat_map(
        nifti_image(ee, ee_vals),
        bg_img=background,
        display_mode="z",
        cut_coords=cuts,
        figure=fig,
        axes=[0.0, 0.0, 1.0, bottom_h],
        threshold=None,
        transparency=nifti_image(ee, in_cluster.astype(np.float32)),
        cmap=STAT_CMAP,
        vmin=-vmax,
        vmax=vmax,
        symmetric_cbar=True,
        colorbar=True,
        black_bg=True,
        resampling_interpolation="nearest",
        draw_cross=False,
        dim="auto" if mni else 1.8,
    )
    row.add_contours(
        nifti_image(clusters, in_cluster.astype(np.float32)),
        levels=[0.5],
        colors="white",
        linewidths=0.8,
    )
    label_colorbar(row, ee_label)
    return fig


def _number_clusters(display, cluster_info: list[dict]) -> None:
    """Write each cluster's number beside its peak on the axial and coronal glass-brain views."""
    axes = getattr(display, "axes", {}) or {}
    for direction, plane in (("z", (0, 1)), ("y", (0, 2))):
        view = axes.get(direction)
        if view is None:
            continue
        for info in cluster_info[:20]:
            peak = info.get("peak")
            if peak is None or any(v is None for v in peak):
                continue
            view.ax.annotate(
                str(info["cluster_id"]),
                (peak[plane[0]], peak[plane[1]]),
                xytext=(4, 4),
                textcoords="offset points",
                color="white",
                fontsize=8,
                fontweight="bold",
                path_effects=[patheffects.withStroke(linewidth=2.2, foreground="black")],
            )


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure on the report's dark background with its own Agg canvas (no pyplot)."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, facecolor=BG)
    FigureCanvasAgg(fig)
    return fig


def cluster_slices(cmap: np.ndarray, ee: np.ndarray, n_max: int) -> list[int]:
    """Axial slices for the cluster figure: the peak slices of the largest clusters first.

    Parameters
    ----------
    cmap : numpy.ndarray of int
        Cluster-index map (1 = largest).
    ee : numpy.ndarray
        Effect estimate; a cluster's peak is its voxel of largest |ee| (3dClusterize "Max Int").
    n_max : int
        Largest number of slices.

    Returns
    -------
    list of int
        Sorted slice indices: one through each of the largest clusters' peaks, then evenly
        spaced slices among the remaining ones that contain cluster voxels.
    """
    chosen: list[int] = []
    weights = np.abs(np.nan_to_num(ee))
    for cid in range(1, int(cmap.max(initial=0)) + 1):
        if len(chosen) >= n_max:
            break
        members = cmap == cid
        if not members.any():
            continue
        peak = np.unravel_index(int(np.argmax(np.where(members, weights, -1.0))), cmap.shape)
        if int(peak[2]) not in chosen:
            chosen.append(int(peak[2]))
    present = (cmap > 0).any(axis=(0, 1))
    present[chosen] = False
    chosen += pick_slices(present, n_max - len(chosen))
    return sorted(chosen)


# ----------------------------------------------------------------------------- output


def save_png(fig: Figure, path: str | Path) -> tuple[int, int]:
    """Write ``fig`` as PNG (exact figure size, no tight bbox) and return (width, height) px."""
    atomic.write_bytes(
        path,
        lambda fh: fig.savefig(
            fh,
            format="png",
            dpi=DPI,
            facecolor=fig.get_facecolor(),
            metadata={"Software": "afni-group"},
        ),
    )
    width, height = fig.canvas.get_width_height()
    return int(width), int(height)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; raises ValueError if ``data`` is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
