"""Figures of the HTML report: slice montages drawn with matplotlib's Agg canvas.

Everything here works on plain arrays in *canonical* (RAS+) voxel order, so the same code serves
both engines: :func:`load_volume` reads a brick from the output files and reorients it.

The t map is drawn "highlight, don't hide" (Chen, Taylor et al., NeuroImage 2022): voxels in
clusters that survive correction are opaque and outlined, every other in-mask voxel keeps its
colour but fades with decreasing |t|, so the reader sees what was *not* significant too.

No pyplot: figures are built with :class:`matplotlib.figure.Figure` on an explicit Agg canvas,
so no GUI backend is ever touched and no global state leaks between reports.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
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

import matplotlib  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from afni_group import atomic  # noqa: E402

DPI = 100
FIG_WIDTH_IN = 11.0
BG = "#101418"  # panel background (outside the brain)
BRAIN = "#3b4148"  # in-mask underlay when no anatomical underlay is given
OUTLINE = "#9aa3ad"  # mask outline
FG = "#e8ecf0"  # text on the dark panels
FAINT_MAX_ALPHA = 0.6  # opacity reached by a sub-threshold voxel at |t| = threshold

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


# ----------------------------------------------------------------------------- reading images


@dataclass
class Volume:
    """A 3-D brick in canonical RAS+ voxel order.

    Attributes
    ----------
    data : numpy.ndarray
        3-D array, axis 0 runs left to right, axis 1 posterior to anterior, axis 2 inferior to
        superior.
    affine : numpy.ndarray
        4x4 voxel-to-RAS+ mm matrix of ``data`` (mm values equal MNI / LPI coordinates).
    """

    data: np.ndarray
    affine: np.ndarray
    stat_params: tuple[float, ...] = ()

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape[:3])

    @property
    def voxel_sizes(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    def world(self, axis: int, index: int | np.ndarray) -> np.ndarray:
        """RAS+ mm coordinate along ``axis`` of voxel centres (cardinal approximation)."""
        return self.affine[axis, axis] * np.asarray(index) + self.affine[axis, 3]

    def extent(self, axes: tuple[int, int]) -> list[float]:
        """imshow extent (left, right, bottom, top) in mm for a slice spanning ``axes``."""
        out: list[float] = []
        for ax in axes:
            n = self.shape[ax]
            lo, hi = float(self.world(ax, 0)), float(self.world(ax, n - 1))
            half = abs(float(self.affine[ax, ax])) / 2.0
            out += [lo - half, hi + half]
        return out


def load_volume(path: str | Path, brick: str | int | None = None) -> Volume:
    """Read one sub-brick of a NIfTI (or AFNI) dataset, reoriented to canonical RAS+.

    Parameters
    ----------
    path : str or Path
        Dataset file.
    brick : str, int or None
        Sub-brick label (exact match, last wins, as in AFNI), index, or None for the first.

    Returns
    -------
    Volume

    Raises
    ------
    afni_group.errors.InputDataError
        When the file cannot be read or has no brick with that label.
    """
    from afni_group import afni_io

    dset = afni_io.read_dataset(Path(path))
    index = dset.index_of(brick) if isinstance(brick, str) else int(brick or 0)
    data = np.asarray(dset.brick(index), dtype=np.float32)
    vol = _to_canonical(data, np.asarray(dset.affine, dtype=float))
    vol.stat_params = tuple(dset.stat_dof(index))
    return vol


def _to_canonical(data: np.ndarray, affine: np.ndarray) -> Volume:
    ornt = nib.orientations.io_orientation(affine)
    canon = nib.orientations.apply_orientation(data, ornt)
    new_affine = affine @ nib.orientations.inv_ornt_aff(ornt, data.shape[:3])
    return Volume(np.ascontiguousarray(canon), new_affine)


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


def edge_segments(mask2d: np.ndarray, extent: list[float]) -> np.ndarray:
    """Line segments along the voxel edges that separate ``mask2d`` from its complement.

    Unlike a contour through voxel centres this draws the exact voxel boundary (AFNI-style boxes).

    Parameters
    ----------
    mask2d : numpy.ndarray of bool
        Slice in display order: rows = vertical axis (bottom first), columns = horizontal axis.
    extent : list of float
        (left, right, bottom, top) in mm, as given to imshow.

    Returns
    -------
    numpy.ndarray
        (n, 2, 2) array of segments ((x0, y0), (x1, y1)) in mm.
    """
    m = np.pad(np.asarray(mask2d, dtype=bool), 1)
    nrow, ncol = mask2d.shape
    x_edges = np.linspace(extent[0], extent[1], ncol + 1)
    y_edges = np.linspace(extent[2], extent[3], nrow + 1)
    segs = []
    # vertical edges: between column c-1 and c (padded index c, c+1)
    r, c = np.nonzero(m[1:-1, :-1] != m[1:-1, 1:])
    for rr, cc in zip(r, c, strict=True):
        segs.append(((x_edges[cc], y_edges[rr]), (x_edges[cc], y_edges[rr + 1])))
    r, c = np.nonzero(m[:-1, 1:-1] != m[1:, 1:-1])
    for rr, cc in zip(r, c, strict=True):
        segs.append(((x_edges[cc], y_edges[rr]), (x_edges[cc + 1], y_edges[rr])))
    return np.asarray(segs, dtype=float).reshape(-1, 2, 2)


def symmetric_limit(values: np.ndarray, floor: float = 0.0) -> float:
    """A tidy symmetric colour limit: max |value| (finite), at least ``floor``, never 0."""
    finite = np.abs(values[np.isfinite(values)])
    vmax = float(finite.max()) if finite.size else 0.0
    vmax = max(vmax, floor)
    return vmax if vmax > 0 else 1.0


def stat_colour_limit(values: np.ndarray, threshold: float) -> float:
    """Colour limit of a statistic map: max |value|, kept within [2, 3] x threshold.

    A fixed relation to the threshold keeps the faint/opaque boundary at a readable place on the
    colour bar (very strong effects would otherwise squeeze it to the centre); larger values
    saturate at the end colour.
    """
    return float(np.clip(symmetric_limit(values), 2.0 * threshold, 3.0 * threshold))


def cluster_colours(n: int) -> list[tuple[float, float, float, float]]:
    """One distinct RGBA colour per cluster index 1..n (tab10, then tab20, cycling)."""
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ----------------------------------------------------------------------------- slicing


_AXES = {"axial": (0, 1, 2), "coronal": (0, 2, 1), "sagittal": (1, 2, 0)}


def _slice(arr: np.ndarray, view: str, index: int) -> np.ndarray:
    """2-D slice in display order (rows = vertical axis from bottom, cols = horizontal axis)."""
    h, v, n = _AXES[view]
    sl = [slice(None)] * 3
    sl[n] = index
    s = arr[tuple(sl)]
    # after removing axis n the remaining axes are in increasing order; h < v in every view
    return s.T


def _coord_label(vol: Volume, view: str, index: int) -> str:
    axis = _AXES[view][2]
    name = "xyz"[axis]
    return f"{name} = {float(vol.world(axis, index)):+.0f}"


# ----------------------------------------------------------------------------- drawing


def _new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, facecolor=BG)
    FigureCanvasAgg(fig)
    return fig


def _prepare_axes(ax, extent: list[float]) -> None:
    ax.set_facecolor(BG)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _draw_underlay(ax, vol_mask: Volume, view: str, index: int, underlay: Volume | None) -> None:
    axes2 = _AXES[view][:2]
    extent = vol_mask.extent(axes2)
    _prepare_axes(ax, extent)
    inside = _slice(vol_mask.data, view, index) > 0
    if underlay is not None:
        u = _slice(underlay.data, view, index)
        lo, hi = (
            np.percentile(underlay.data[underlay.data != 0], [2, 98])
            if np.any(underlay.data)
            else (0.0, 1.0)
        )
        ax.imshow(
            u,
            cmap="gray",
            vmin=lo,
            vmax=hi,
            origin="lower",
            extent=extent,
            interpolation="nearest",
        )
    else:
        rgba = np.zeros(inside.shape + (4,))
        rgba[inside] = matplotlib.colors.to_rgba(BRAIN)
        ax.imshow(rgba, origin="lower", extent=extent, interpolation="nearest")
    segs = edge_segments(inside, extent)
    if len(segs):
        ax.add_collection(LineCollection(segs, colors=OUTLINE, linewidths=0.8))


def _draw_rgba(ax, rgba: np.ndarray, extent: list[float]) -> None:
    ax.imshow(rgba, origin="lower", extent=extent, interpolation="nearest")


def _outline(ax, mask2d: np.ndarray, extent: list[float], colour: str, width: float) -> None:
    segs = edge_segments(mask2d, extent)
    if len(segs):
        ax.add_collection(LineCollection(segs, colors=colour, linewidths=width))


def _stat_rgba(
    stat: np.ndarray, vmax: float, threshold: float, surviving: np.ndarray, inside: np.ndarray
) -> np.ndarray:
    rgba = STAT_CMAP(Normalize(-vmax, vmax, clip=True)(stat))
    rgba[..., 3] = highlight_alpha(stat, threshold, surviving, inside)
    return rgba


def _panel_title(ax, text: str) -> None:
    ax.text(0.02, 0.98, text, transform=ax.transAxes, color=FG, fontsize=8, va="top", ha="left")


def _stat_colourbar(
    fig: Figure, rect, vmax: float, threshold: float, label: str, saturated: bool = False
) -> None:
    """Horizontal colour bar that shows the fading itself: faint below |t| < threshold."""
    cax = fig.add_axes(rect)
    values = np.linspace(-vmax, vmax, 512)
    rgba = STAT_CMAP(Normalize(-vmax, vmax)(values))
    ratio = np.clip(np.abs(values) / threshold, 0, 1)
    rgba[:, 3] = np.where(np.abs(values) >= threshold, 1.0, FAINT_MAX_ALPHA * ratio**2)
    cax.set_facecolor(BG)
    cax.imshow(
        rgba[np.newaxis, :, :],
        extent=[-vmax, vmax, 0, 1],
        aspect="auto",
        origin="lower",
        interpolation="bilinear",
    )
    for t in (-threshold, threshold):
        if abs(t) < vmax:
            cax.axvline(t, color=FG, linewidth=1.0, linestyle="--")
    ticks = [-vmax, -threshold, 0.0, threshold, vmax]
    cax.set_xticks(ticks)
    labels = [f"{t:.1f}" for t in ticks]
    labels[1], labels[3] = f"{-threshold:.2f}", f"{threshold:.2f}"
    if saturated:  # values beyond the limit exist and take the end colours
        labels[0], labels[-1] = f"\u2264{labels[0]}", f"\u2265{labels[-1]}"
    cax.set_xticklabels(labels, color=FG, fontsize=8)
    cax.set_yticks([])
    cax.tick_params(colors=FG, length=3)
    for spine in cax.spines.values():
        spine.set_edgecolor(OUTLINE)
    cax.set_xlabel(label, color=FG, fontsize=9)


def _plain_colourbar(fig: Figure, rect, vmax: float, label: str) -> None:
    cax = fig.add_axes(rect)
    values = np.linspace(-vmax, vmax, 512)
    cax.imshow(
        STAT_CMAP(Normalize(-vmax, vmax)(values))[np.newaxis],
        extent=[-vmax, vmax, 0, 1],
        aspect="auto",
        origin="lower",
    )
    ticks = [-vmax, -vmax / 2, 0.0, vmax / 2, vmax]
    cax.set_xticks(ticks)
    cax.set_xticklabels([f"{t:.2g}" for t in ticks], color=FG, fontsize=8)
    cax.set_yticks([])
    cax.tick_params(colors=FG, length=3)
    for spine in cax.spines.values():
        spine.set_edgecolor(OUTLINE)
    cax.set_xlabel(label, color=FG, fontsize=9)


def _lr_marks(ax, letters: tuple[str, str] = ("L", "R")) -> None:
    """Mark the sides of a panel: images are in neurological convention (left is left)."""
    kw = dict(transform=ax.transAxes, color=FG, fontsize=8, fontweight="bold", va="bottom")
    ax.text(0.02, 0.02, letters[0], ha="left", **kw)
    ax.text(0.98, 0.02, letters[1], ha="right", **kw)


def _focus_voxel(
    stat: np.ndarray, inside: np.ndarray, cmap: np.ndarray | None, ee: np.ndarray | None
) -> tuple[int, int, int]:
    """Voxel for the sagittal/coronal views: the peak of cluster 1, else the max |t| in the mask.

    The cluster peak follows 3dClusterize's "Max Int": the largest |data| value in the cluster.
    """
    if cmap is not None and np.any(cmap == 1):
        weights = np.abs(ee) if ee is not None else np.abs(stat)
        score = np.where(cmap == 1, weights, -np.inf)
    else:
        score = np.where(inside, np.abs(np.nan_to_num(stat)), -np.inf)
        if not np.isfinite(score).any():
            return tuple(int(n) // 2 for n in stat.shape)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(score)), stat.shape))


def plot_stat_montage(
    stat: Volume,
    mask: Volume,
    threshold: float,
    clusters: Volume | None,
    *,
    ee: Volume | None = None,
    underlay: Volume | None = None,
    stat_label: str = "t",
    n_axial: int = 12,
    ncols: int = 6,
) -> Figure:
    """Axial montage plus one sagittal and one coronal slice of a statistic map.

    Parameters
    ----------
    stat : Volume
        Statistic (t) map.
    mask : Volume
        Group mask (same grid); drawn as a grey silhouette with an outline when there is no
        ``underlay``.
    threshold : float
        Voxelwise threshold on |stat|.
    clusters : Volume or None
        Cluster-index map (0 = none); its voxels are opaque and outlined. None: nothing survived.
    ee : Volume or None
        Effect estimate inside the clusters, used to find the peak of cluster 1.
    underlay : Volume or None
        Optional anatomical underlay on the same grid.
    stat_label : str
        Colour-bar label.
    n_axial, ncols : int
        Largest number of axial slices and panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        Figure with an Agg canvas; size ``FIG_WIDTH_IN`` x (rows + 1.35) panel heights.
    """
    inside = mask.data > 0
    surviving = (clusters.data > 0) if clusters is not None else np.zeros_like(inside)
    t = np.nan_to_num(stat.data)
    vmax = stat_colour_limit(np.where(inside, t, 0.0), threshold)
    rgba_all = _stat_rgba(t, vmax, threshold, surviving, inside)

    fx, fy, fz = _focus_voxel(
        t,
        inside,
        clusters.data if clusters is not None else None,
        ee.data if ee is not None else None,
    )
    zs = pick_slices(inside.any(axis=(0, 1)), n_axial) or [stat.shape[2] // 2]
    if fz not in zs:  # always show the slice through the peak of the largest cluster
        zs[int(np.argmin([abs(z - fz) for z in zs]))] = fz
        zs = sorted(set(zs))
    nrows = int(np.ceil(len(zs) / ncols))
    panel = FIG_WIDTH_IN / ncols
    height = panel * nrows + panel * 1.35
    fig = _new_figure(FIG_WIDTH_IN, height)

    def add_panel(left, bottom, w, h, view, index, title):
        ax = fig.add_axes([left, bottom, w, h])
        _draw_underlay(ax, mask, view, index, underlay)
        ext = mask.extent(_AXES[view][:2])
        _draw_rgba(ax, _slice_rgba(rgba_all, view, index), ext)
        _outline(ax, _slice(surviving, view, index), ext, "white", 1.2)
        _panel_title(ax, title)
        return ax

    row_h = panel / height
    col_w = 1.0 / ncols
    pad = 0.01
    for n, z in enumerate(zs):
        r, c = divmod(n, ncols)
        bottom = 1.0 - (r + 1) * row_h
        ax = add_panel(
            c * col_w + pad / 2,
            bottom + pad / 2,
            col_w - pad,
            row_h - pad,
            "axial",
            z,
            _coord_label(mask, "axial", z),
        )
        if n == 0:
            _lr_marks(ax)

    bottom_h = 1.25 * panel / height
    ax = add_panel(
        pad / 2,
        pad / 2,
        col_w * 1.5 - pad,
        bottom_h - pad,
        "sagittal",
        fx,
        _coord_label(mask, "sagittal", fx),
    )
    _lr_marks(ax, ("P", "A"))
    ax = add_panel(
        col_w * 1.5 + pad / 2,
        pad / 2,
        col_w * 1.5 - pad,
        bottom_h - pad,
        "coronal",
        fy,
        _coord_label(mask, "coronal", fy),
    )
    _lr_marks(ax)

    # legend block: colour bar and what faint / opaque mean
    lx = col_w * 3 + 0.03
    saturated = bool(np.any(np.abs(t[inside]) > vmax))
    _stat_colourbar(
        fig,
        [lx, bottom_h * 0.62, 0.94 - lx, bottom_h * 0.16],
        vmax,
        threshold,
        stat_label,
        saturated=saturated,
    )
    handles = [
        Patch(
            facecolor=STAT_CMAP(0.95),
            edgecolor="white",
            linewidth=1.2,
            label="opaque + outline: surviving cluster",
        ),
        Patch(
            facecolor=(*STAT_CMAP(0.9)[:3], 0.35),
            edgecolor="none",
            label="faint: not significant (fades with |t|)",
        ),
    ]
    fig.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(lx, bottom_h * 0.02),
        frameon=False,
        fontsize=8.5,
        labelcolor=FG,
        ncols=1,
    )
    return fig


def _slice_rgba(rgba: np.ndarray, view: str, index: int) -> np.ndarray:
    h, v, n = _AXES[view]
    sl = [slice(None)] * 4
    sl[n] = index
    s = rgba[tuple(sl)]  # (h, v, 4)
    return np.transpose(s, (1, 0, 2))


def plot_cluster_maps(
    clusters: Volume,
    ee: Volume,
    mask: Volume,
    cluster_info: list[dict],
    *,
    underlay: Volume | None = None,
    ee_label: str = "effect estimate (% signal change)",
    n_slices: int = 6,
) -> Figure:
    """Cluster-index map (top row) and effect-estimate map (bottom row) on the same slices.

    Parameters
    ----------
    clusters : Volume
        Cluster-index map (1 = largest cluster).
    ee : Volume
        Effect estimate masked by the clusters (3dClusterize ``-pref_dat``).
    mask : Volume
        Group mask (underlay silhouette).
    cluster_info : list of dict
        One dict per cluster (``cluster_id``, ``n_voxels``, ``tail``) for the legend.
    underlay : Volume or None
        Optional anatomical underlay on the same grid.
    ee_label : str
        Colour-bar label (with units).
    n_slices : int
        Largest number of axial slices (chosen among those that contain cluster voxels).

    Returns
    -------
    matplotlib.figure.Figure
    """
    cmap_data = np.rint(clusters.data).astype(int)
    n_clusters = int(cmap_data.max()) if cmap_data.size else 0
    in_cluster = cmap_data > 0
    zs = cluster_slices(cmap_data, ee.data, n_slices) or [clusters.shape[2] // 2]
    ncols = max(len(zs), 4)
    legend_w = 2.3  # inches, right-hand column: cluster legend
    bar_h = 0.75  # inches, bottom strip: colour bar
    panel = (FIG_WIDTH_IN - legend_w) / ncols
    height = 2 * panel + bar_h
    fig = _new_figure(FIG_WIDTH_IN, height)

    colours = np.zeros((max(n_clusters, 1) + 1, 4))
    colours[1:] = cluster_colours(max(n_clusters, 1))
    rgba_map = colours[np.clip(cmap_data, 0, n_clusters)]
    rgba_map[~in_cluster, 3] = 0.0

    ee_vals = np.where(in_cluster, np.nan_to_num(ee.data), 0.0)
    vmax = symmetric_limit(ee_vals)
    rgba_ee = STAT_CMAP(Normalize(-vmax, vmax, clip=True)(ee_vals))
    rgba_ee[..., 3] = np.where(in_cluster, 1.0, 0.0)

    map_w = 1.0 - legend_w / FIG_WIDTH_IN
    col_w = map_w / ncols
    row_h = panel / height
    pad = 0.006
    ext = mask.extent((0, 1))
    for row, (rgba, name) in enumerate(((rgba_map, "cluster map"), (rgba_ee, "effect estimate"))):
        bottom = 1.0 - (row + 1) * row_h
        for c, z in enumerate(zs):
            ax = fig.add_axes([c * col_w + pad / 2, bottom + pad / 2, col_w - pad, row_h - pad])
            _draw_underlay(ax, mask, "axial", z, underlay)
            _draw_rgba(ax, _slice_rgba(rgba, "axial", z), ext)
            # thin outline on the colour-coded map (the colour is the message), white on the EE
            _outline(ax, _slice(in_cluster, "axial", z), ext, "white", 0.6 if row == 0 else 1.0)
            label = _coord_label(mask, "axial", z)
            _panel_title(ax, f"{name}\n{label}" if c == 0 else label)
            if c == 0 and row == 0:
                _lr_marks(ax)
            if row == 0:
                _annotate_clusters(ax, cmap_data, z, mask)

    # legend: as many entries as fit beside the two rows of panels (about 0.19 in each)
    max_entries = max(int((2 * panel - 0.35) / 0.19) - 1, 3)
    shown = cluster_info[:max_entries]
    handles = [
        Patch(
            facecolor=colours[i["cluster_id"]] if i["cluster_id"] <= n_clusters else "grey",
            edgecolor="white",
            label=f"{i['cluster_id']}: {i['n_voxels']} vox, {i['tail']}",
        )
        for i in shown
    ]
    if len(cluster_info) > len(shown):
        handles.append(
            Patch(
                facecolor="none",
                edgecolor="none",
                label=f"+ {len(cluster_info) - len(shown)} more (see table)",
            )
        )
    legend = fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(map_w + 0.01, 0.99),
        frameon=False,
        fontsize=8,
        labelcolor=FG,
        title="clusters (number: size, sign)",
        title_fontsize=8,
        alignment="left",
    )
    legend.get_title().set_color(FG)
    bar_frac = bar_h / height
    _plain_colourbar(fig, [0.25, bar_frac * 0.62, 0.5 * map_w, bar_frac * 0.2], vmax, ee_label)
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


def _annotate_clusters(ax, cmap_data: np.ndarray, z: int, mask: Volume) -> None:
    """Number each cluster beside its in-slice centroid (offset, so small clusters stay visible)."""
    sl = cmap_data[:, :, z]
    for cid in np.unique(sl[sl > 0]):
        ii, jj = np.nonzero(sl == cid)
        x = float(mask.world(0, ii.mean()))
        y = float(mask.world(1, jj.mean()))
        ax.annotate(
            str(int(cid)),
            (x, y),
            xytext=(5, 5),
            textcoords="offset points",
            color="white",
            fontsize=7.5,
            fontweight="bold",
            path_effects=[patheffects.withStroke(linewidth=2.2, foreground="black")],
        )


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
