"""Threshold, cluster and report a statistic map, as AFNI's ``3dClusterize`` (spec 07).

The work is split into small array functions that follow 3dClusterize's order of operations:

1. :func:`threshold_masks` — which voxels pass the (inclusive, float32) threshold test, per tail;
2. :func:`find_clusters` — connected components of the non-zero data voxels (NN1/NN2/NN3), in
   AFNI's discovery order and with each cluster's voxels in AFNI's breadth-first order (the order
   decides ties for "Max Int" and the last bit of the sums);
3. :func:`sort_clusters` — stable sort by size, positive tail first;
4. :func:`cluster_table_row` / :func:`format_report` — the text report, byte-identical to AFNI's.

:func:`run_clusterize` does all of it for files (reading and writing through ``afni_io``) and
:func:`cli_main` is the drop-in ``afni-native 3dClusterize``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from afni_group import afni_io, atomic
from afni_group.engines.native.argv import c_atof
from afni_group.errors import EXIT_USAGE, AfniGroupError, InputDataError, OutputError, UsageError
from afni_group.statdist import pval_to_stat, stat_nsides

#: AFNI's "infinity" for one-sided zeroing ranges (mri_threshold).
BIG = np.float32(1e9)
#: Above this many clusters AFNI does not sort them.
MAX_SORTED_CLUSTERS = 3333
NO_CLUSTERS_LINE = "** NO CLUSTERS FOUND ***"
#: Squared neighbour radius per NN level (r = 1.11, 1.44, 1.77 in index units).
_NN_RADIUS2 = {1: 1.11**2, 2: 1.44**2, 3: 1.77**2}
_SIDED_MODES = ("1sided", "2sided", "bisided", "within_range")
_TAIL_WORDS = {"RIGHT_TAIL": "RIGHT", "RIGHT": "RIGHT", "LEFT_TAIL": "LEFT", "LEFT": "LEFT"}
_DATUM_NAMES = {0: "byte", 1: "short", 2: "int", 3: "float", 4: "double", 5: "complex", 6: "rgb"}
_DTYPE_DATUM = {
    np.dtype(np.uint8): "byte",
    np.dtype(np.int16): "short",
    np.dtype(np.int32): "int",
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.complex64): "complex",
}
#: ``FUNC_label_stat_aux``-style labels for the "Aux. stat. info." header line.
_AUX_LABELS = {
    2: "SAMPLES  FIT-PARAMETERS  ORT-PARAMETERS",
    3: "DEGREES-of-FREEDOM",
    4: "NUMERATOR and DENOMINATOR DEGREES-of-FREEDOM",
    6: "DEGREES-of-FREEDOM",
    7: "A_PARAMETER  B_PARAMETER",
    8: "NUMBER-of-TRIALS  PROBABILITY-per-TRIAL",
    9: "SHAPE  SCALE",
    10: "MEAN",
}
_ORIENT_PAIRS = {"R": "RL", "L": "LR", "A": "AP", "P": "PA", "I": "IS", "S": "SI"}
_ORIENT_AXIS = {"R": 0, "L": 0, "A": 1, "P": 1, "I": 2, "S": 2}
_SEPARATOR = "------" + "  -----" * 9 + "  -------" * 3 + "  -----" * 3

TSV_COLUMNS = (
    "cluster_id n_voxels volume_mm3 tail cm_x_rai cm_y_rai cm_z_rai peak_x_rai peak_y_rai "
    "peak_z_rai cm_x_lpi cm_y_lpi cm_z_lpi peak_x_lpi peak_y_lpi peak_z_lpi mean sem peak_value"
).split()


# ------------------------------------------------------------------------------------------------
# thresholding and clustering (array level)
# ------------------------------------------------------------------------------------------------


def _keep_outside(thr: np.ndarray, low: np.float32, high: np.float32) -> np.ndarray:
    """Voxels that ``mri_threshold(low, high)`` keeps: not strictly inside (low, high).

    Nothing is removed when low ≥ high (AFNI quirk). NaN compares false, so NaN voxels are kept.
    """
    if not low < high:
        return np.ones(thr.shape, dtype=bool)
    return ~((thr > low) & (thr < high))


def threshold_masks(
    thr: np.ndarray, sided: str, low: float, high: float, tail: str = "RIGHT"
) -> list[np.ndarray]:
    """Boolean maps of the voxels that pass the threshold test, one per clustered image.

    Parameters
    ----------
    thr : ndarray
        Threshold brick (values compared in float32, as AFNI does).
    sided : {"1sided", "2sided", "bisided", "within_range"}
    low, high : float
        Left-tail and right-tail thresholds (``-bisided LL RR``); for ``1sided`` the single
        threshold is ``high``; for ``within_range`` the range is [low, high].
    tail : {"RIGHT", "LEFT"}
        Tail of a 1-sided test.

    Returns
    -------
    list of ndarray
        ``bisided``: ``[thr >= high, thr <= low]`` (positive tail first, clustered separately);
        otherwise a single map. All comparisons are inclusive.
    """
    thr32 = np.asarray(thr, dtype=np.float32)
    lo, hi = np.float32(low), np.float32(high)
    if sided == "bisided":
        return [_keep_outside(thr32, -BIG, hi), _keep_outside(thr32, lo, BIG)]
    if sided == "2sided":
        return [_keep_outside(thr32, lo, hi)]
    if sided == "1sided":
        if tail == "RIGHT":
            return [_keep_outside(thr32, -BIG, hi)]
        return [_keep_outside(thr32, hi, BIG)]
    if sided == "within_range":
        return [_keep_outside(thr32, -BIG, lo) & _keep_outside(thr32, hi, BIG)]
    raise ValueError(f"sided must be one of {_SIDED_MODES}, not {sided!r}")


def neighbour_offsets(nn: int) -> list[tuple[int, int, int]]:
    """Neighbour offsets (di, dj, dk) in AFNI's visiting order: dk outer, dj, di inner."""
    if nn not in _NN_RADIUS2:
        raise ValueError(f"nn must be 1, 2 or 3, not {nn!r}")
    r2 = _NN_RADIUS2[nn]
    return [
        (di, dj, dk)
        for dk in (-1, 0, 1)
        for dj in (-1, 0, 1)
        for di in (-1, 0, 1)
        if (di, dj, dk) != (0, 0, 0) and di * di + dj * dj + dk * dk <= r2
    ]


def find_clusters(image: np.ndarray, nn: int, min_size: int = 0) -> list[np.ndarray]:
    """Connected clusters of the True voxels of a 3-D boolean image, as 3dClusterize finds them.

    Parameters
    ----------
    image : ndarray of bool, shape (nx, ny, nz)
    nn : {1, 2, 3}
        Face, face+edge or face+edge+corner connectivity (6, 18, 26 neighbours; no wrap-around).
    min_size : int
        Clusters with fewer voxels are dropped (before the breadth-first ordering, for speed).

    Returns
    -------
    list of ndarray of int, shape (n, 3)
        The (i, j, k) indices of each cluster, clusters in discovery order (by their lowest AFNI
        linear index ``i + j*nx + k*nx*ny``), voxels in AFNI's breadth-first order from that seed.
    """
    image = np.asarray(image, dtype=bool)
    nx, ny, nz = image.shape
    structure = ndimage.generate_binary_structure(3, nn)
    # Label the (k, j, i) view so that C order is AFNI's order (i fastest).
    labels, _ = ndimage.label(image.T, structure=structure)
    flat = labels.ravel()
    hits = np.flatnonzero(flat)
    if hits.size == 0:
        return []
    hit_labels = flat[hits]
    sizes = np.bincount(hit_labels)
    present, first = np.unique(hit_labels, return_index=True)
    seeds = hits[first]  # lowest linear index of each label
    keep = sizes[present] >= max(int(min_size), 1)
    order = np.argsort(seeds[keep], kind="stable")
    kept_labels, kept_seeds = present[keep][order], seeds[keep][order]
    if kept_labels.size == 0:
        return []

    # Breadth-first search on a zero-padded copy so that offsets never wrap around an edge.
    padded = np.zeros((nz + 2, ny + 2, nx + 2), dtype=labels.dtype)
    padded[1:-1, 1:-1, 1:-1] = labels
    pflat = padded.ravel()
    sj, sk = nx + 2, (nx + 2) * (ny + 2)
    deltas = np.array([di + dj * sj + dk * sk for di, dj, dk in neighbour_offsets(nn)])
    clusters = []
    for lab, seed in zip(kept_labels, kept_seeds, strict=True):
        k, rem = divmod(int(seed), nx * ny)
        j, i = divmod(rem, nx)
        start = (k + 1) * sk + (j + 1) * sj + (i + 1)
        pflat[start] = 0  # found voxels are zeroed, as AFNI does, so none is used twice
        levels = [np.array([start])]
        frontier = levels[0]
        while frontier.size:
            cand = (frontier[:, None] + deltas[None, :]).ravel()
            cand = cand[pflat[cand] == lab]
            if cand.size == 0:
                break
            # Keep the first occurrence: queue order = parent order, then offset order.
            _, first_pos = np.unique(cand, return_index=True)
            frontier = cand[np.sort(first_pos)]
            pflat[frontier] = 0
            levels.append(frontier)
        linear = np.concatenate(levels)
        kk, rem = np.divmod(linear, sk)
        jj, ii = np.divmod(rem, sj)
        clusters.append(np.stack([ii - 1, jj - 1, kk - 1], axis=1))
    return clusters


def sort_clusters(clusters: list, sizes: list[int]) -> list:
    """Stable sort by size, largest first (ties keep their order); unsorted above 3332."""
    if len(clusters) >= MAX_SORTED_CLUSTERS:
        return list(clusters)
    order = sorted(range(len(clusters)), key=lambda n: -sizes[n])
    return [clusters[n] for n in order]


# ------------------------------------------------------------------------------------------------
# coordinates
# ------------------------------------------------------------------------------------------------


def normalize_orient(code: str | None) -> str:
    """The ``-orient`` code as 3dClusterize uses it: upper case, FLI → LPI, invalid → RAI."""
    code = (code or "RAI").strip().upper()
    if code == "FLI":
        return "LPI"
    if len(code) != 3 or any(c not in _ORIENT_AXIS for c in code):
        return "RAI"
    if sorted(_ORIENT_AXIS[c] for c in code) != [0, 1, 2]:
        return "RAI"
    return code


def dicom_coordinates(
    ijk: np.ndarray, origin: np.ndarray, delta: np.ndarray, dicom_axis: np.ndarray
) -> np.ndarray:
    """DICOM/RAI mm of voxel centres, ``ORIGIN + index·DELTA`` in float32 as AFNI computes them.

    ``dicom_axis[a]`` is the DICOM axis (0 = x R→L, 1 = y A→P, 2 = z I→S) of dataset axis a.
    Exact zeros come out as +0.0 (AFNI's sign of zero, which matters after ``-orient`` flips).
    """
    ijk = np.asarray(ijk)
    out = np.empty(ijk.shape, dtype=np.float32)
    for a in range(3):
        axis_mm = np.float32(origin[a]) + ijk[:, a].astype(np.float32) * np.float32(delta[a])
        out[:, int(dicom_axis[a])] = axis_mm + np.float32(0.0)
    return out


def reorient_coordinates(dicom: np.ndarray, orient: str) -> np.ndarray:
    """RAI coordinates to the ``-orient`` order: each letter takes its axis, L/P/S flip the sign."""
    out = np.empty_like(dicom)
    for o, letter in enumerate(orient):
        column = dicom[:, _ORIENT_AXIS[letter]]
        out[:, o] = -column if letter in "LPS" else column
    return out


def grid_geometry(dset: afni_io.AfniDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AFNI's cardinal grid of a dataset: (ORIGIN, DELTA, DICOM axis of each dataset axis).

    HEAD datasets use their ORIGIN/DELTA/ORIENT_SPECIFIC attributes; NIfTI datasets the header
    affine, whose rotation AFNI ignores for oblique data (07 §5.3).
    """
    attrs = dset.attributes
    from_head = dset.path is not None and not str(dset.path).endswith((".nii", ".nii.gz"))
    if from_head and all(k in attrs for k in ("ORIGIN", "DELTA", "ORIENT_SPECIFIC")):
        orient, origin, delta = attrs["ORIENT_SPECIFIC"], attrs["ORIGIN"], attrs["DELTA"]
    else:
        orient, origin, delta = afni_geometry_of(dset.affine)
    origin = np.asarray(origin[:3], dtype=np.float32)
    delta = np.asarray(delta[:3], dtype=np.float32)
    axis = np.array([int(o) // 2 for o in orient[:3]])
    return origin, delta, axis


def afni_geometry_of(affine: np.ndarray) -> tuple[list[int], list[float], list[float]]:
    """ORIENT_SPECIFIC, ORIGIN, DELTA of a RAS+ affine (the cardinal part for oblique data)."""
    return afni_io.afni_geometry(affine)


# ------------------------------------------------------------------------------------------------
# per-cluster statistics and the text report
# ------------------------------------------------------------------------------------------------


@dataclass
class ClusterStats:
    """Sums and table values of one cluster in one coordinate order (07 §5.4)."""

    n_voxels: int
    sum_v: float
    sum_m: float
    sum_mm: float
    sum_mx: np.ndarray  # (3,) Σ |v|·coordinate
    cm: np.ndarray  # (3,) |v|-weighted centre of mass
    bbox_min: np.ndarray
    bbox_max: np.ndarray
    mean: float  # scaled by the data factor, float32
    sem: float
    peak_value: float  # signed "Max Int", scaled, float32
    peak_xyz: np.ndarray


def _sequential_sums(columns: np.ndarray) -> np.ndarray:
    """Column sums in double, accumulated in order from +0.0 like AFNI's loop.

    ``np.cumsum`` is strictly sequential (``np.sum`` is pairwise and could differ in the last
    bit); adding +0.0 turns a -0.0 total into +0.0 as AFNI's ``sum = 0; sum += ...`` does.
    """
    return 0.0 + np.cumsum(columns, axis=0, dtype=np.float64)[-1]


def _sem(sum_mm: float, mean: float, n: int) -> float:
    if n <= 1:
        return 0.0
    s2 = (sum_mm - n * mean * mean) / (n - 1)
    return math.sqrt(s2 / n) if s2 > 0 else 0.0


def cluster_stats(
    values: np.ndarray, xyz: np.ndarray, factor: float = 0.0, abs_mean: bool = False
) -> ClusterStats:
    """Table values of one cluster from its stored values and coordinates (both in BFS order).

    Products are formed in float32 and summed in double, as AFNI does. ``factor`` is the data
    brick's scale factor (0 = unscaled): it multiplies Mean and Max Int, and Σm² by factor².
    """
    v = np.asarray(values, dtype=np.float32)
    xyz = np.asarray(xyz, dtype=np.float32)
    m = np.abs(v)
    n = int(v.size)
    # products in float32, then one sequential double accumulation per column
    products = np.column_stack([v, m, m * m, m[:, None] * xyz])
    sums = _sequential_sums(products)
    sum_v, sum_m, sum_mm, sum_mx = float(sums[0]), float(sums[1]), float(sums[2]), sums[3:6]
    peak = int(np.argmax(m))  # first point with the largest |value|
    f = float(np.float32(factor))
    mean = (sum_m if abs_mean else sum_v) / n
    peak_value = float(v[peak])
    scaled_mm = sum_mm
    if f != 0.0:
        mean, peak_value, scaled_mm = mean * f, peak_value * f, sum_mm * f * f
    return ClusterStats(
        n_voxels=n,
        sum_v=sum_v,
        sum_m=sum_m,
        sum_mm=sum_mm,  # unscaled: the total line scales the global sum once
        sum_mx=sum_mx,
        cm=sum_mx / sum_m,
        bbox_min=xyz.min(axis=0),
        bbox_max=xyz.max(axis=0),
        mean=float(np.float32(mean)),
        sem=float(np.float32(_sem(scaled_mm, mean, n))),
        peak_value=float(np.float32(peak_value)),
        peak_xyz=xyz[peak].copy(),
    )


def reorient_stats(stats: ClusterStats, orient: str) -> ClusterStats:
    """The same cluster's table values in another coordinate order, from its RAI values.

    Exact: negating every product negates each partial sum (rounding is symmetric), and the
    +0.0 start keeps zeros positive, so this equals recomputing in the new order.
    """
    sum_mx, bbox_min, bbox_max, peak = (
        np.empty(3),
        np.empty(3, np.float32),
        np.empty(3, np.float32),
        np.empty(3, np.float32),
    )
    for o, letter in enumerate(orient):
        d = _ORIENT_AXIS[letter]
        if letter in "LPS":
            sum_mx[o] = -stats.sum_mx[d] + 0.0
            bbox_min[o], bbox_max[o] = -stats.bbox_max[d], -stats.bbox_min[d]
            peak[o] = -stats.peak_xyz[d]
        else:
            sum_mx[o] = stats.sum_mx[d]
            bbox_min[o], bbox_max[o] = stats.bbox_min[d], stats.bbox_max[d]
            peak[o] = stats.peak_xyz[d]
    return ClusterStats(
        n_voxels=stats.n_voxels,
        sum_v=stats.sum_v,
        sum_m=stats.sum_m,
        sum_mm=stats.sum_mm,
        sum_mx=sum_mx,
        cm=sum_mx / stats.sum_m,
        bbox_min=bbox_min,
        bbox_max=bbox_max,
        mean=stats.mean,
        sem=stats.sem,
        peak_value=stats.peak_value,
        peak_xyz=peak,
    )


def fc7(value: float) -> str:
    """AFNI's 7-character number formatter ``MCW_fc7`` (07 §5.4), before ``%7s`` alignment."""
    q = float(np.float32(value))
    if math.isfinite(q) and q == int(q) and abs(q) < 100000:
        return " %d" % q if q >= 0 else "%d" % q
    if not math.isfinite(q) or q == 0:
        return "%7.1e" % q
    lv = int(10.0001 + math.log10(abs(q)))
    if 7 <= lv <= 10:
        text = "%7.4f" % q
    elif lv == 11:
        text = "%7.3f" % q
    elif lv == 12:
        text = "%7.2f" % q
    elif lv == 13:
        text = "%7.1f" % q
    elif lv == 14:
        return "%7.0f" % q
    else:
        return "%7.1e" % q if q > 0 else "%7.0e" % q
    # Strip trailing zeros at positions 6 down to 2 (the point stays unless all decimals go).
    for pos in range(6, 1, -1):
        if pos < len(text) and text[pos] == "0":
            text = text[:pos]
        else:
            break
    return text


def cluster_table_row(stats: ClusterStats, one_d_format: bool = True) -> str:
    """One report row: ``%6.0f`` volume, ``%5.1f`` coordinates, ``fc7`` values, trailing blank."""
    fields = [stats.cm[0], stats.cm[1], stats.cm[2]]
    for a in range(3):
        fields += [stats.bbox_min[a], stats.bbox_max[a]]
    coords = "  ".join("%5.1f" % float(x) for x in fields)
    values = "  ".join("%7s" % fc7(x) for x in (stats.mean, stats.sem, stats.peak_value))
    peak = "  ".join("%5.1f" % float(x) for x in stats.peak_xyz)
    lead = " " if one_d_format else ""
    return f"{lead}{stats.n_voxels:6.0f}  {coords}  {values}  {peak} \n"


def total_line(
    stats: list[ClusterStats],
    factor: float = 0.0,
    abs_mean: bool = False,
    one_d_format: bool = True,
) -> str:
    """The total line over all reported clusters (07 §5.5)."""
    n = sum(s.n_voxels for s in stats)
    sum_v = sum_m = sum_mm = 0.0
    sum_mx = np.zeros(3)
    for s in stats:
        sum_v, sum_m, sum_mm = sum_v + s.sum_v, sum_m + s.sum_m, sum_mm + s.sum_mm
        sum_mx = sum_mx + s.sum_mx
    f = float(np.float32(factor))
    mean = (sum_m if abs_mean else sum_v) / n
    if f != 0.0:
        mean, sum_mm = mean * f, sum_mm * f * f
    sem = _sem(sum_mm, mean, n)
    cm = sum_mx / sum_m
    lead = "#" if one_d_format else ""
    return (
        f"{lead}{float(n):6.0f}  {cm[0]:5.1f}  {cm[1]:5.1f}  {cm[2]:5.1f}"
        + " " * 44
        + "%7s  %7s" % (fc7(np.float32(mean)), fc7(np.float32(sem)))
        + " " * 29
        + "\n"
    )


@dataclass
class ReportHeader:
    """The substituted values of the report header (07 §5.1–5.2)."""

    prefix: str
    threshold_vol: str
    data_vol: str
    option_label: str
    threshold_text: str
    aux_stat: str
    min_nvox: int
    voxel_dims: tuple[float, float, float]
    nn: int
    datum: str
    orient: str = "RAI"
    mask: str | None = None
    abs_mean: bool = False


def format_header(h: ReportHeader, one_d_format: bool = True) -> str:
    """The header block, from ``#`` to the first separator line, each line ending in ``\\n``."""
    dx, dy, dz = (abs(float(v)) for v in h.voxel_dims)
    voxel_volume = dx * dy * dz
    c = "#" if one_d_format else ""
    lines = [
        c,
        f"{c}  Cluster report ",
        f"{c}[ Dataset prefix      = {h.prefix} ]",
        f"{c}[ Threshold vol       = {h.threshold_vol} ]",
        f"{c}[ Supplement dat vol  = {h.data_vol} ]",
        f"{c}[ Option summary      = {h.option_label} ]",
        f"{c}[ Threshold value(s)  = {h.threshold_text} ]",
        f"{c}[ Aux. stat. info.    = {h.aux_stat} ]",
        f"{c}[ Nvoxel threshold    = {h.min_nvox:d};  Volume threshold = "
        f"{h.min_nvox * voxel_volume:.3f} ]",
        f"{c}[ Single voxel volume = {voxel_volume:.3f} (microliters) ]",
        f"{c}[ Neighbor type, NN   = {h.nn:d} ]",
        f"{c}[ Voxel datum type    = {h.datum} ]",
        f"{c}[ Voxel dimensions    = {dx:.3f} mm X {dy:.3f} mm X {dz:.3f} mm ]",
        f"{c}[ Coordinates Order   = {h.orient} ]",
    ]
    if h.mask is not None:
        lines.append(f"{c}[ Mask                = {h.mask} ]")
    if h.abs_mean:
        lines.append(f"{c}[ Mean and SEM based on absolute value of voxel intensities ]")
    else:
        lines.append(f"{c}[ Mean and SEM based on signed voxel intensities ]")
    pairs = [_ORIENT_PAIRS[letter] for letter in h.orient]
    columns = (
        "Volume  "
        + "  ".join(f"CM {p}" for p in pairs)
        + "  "
        + "  ".join(f"min{p}  max{p}" for p in pairs)
        + "    Mean     SEM    Max Int  "
        + "  ".join(f"MI {p}" for p in pairs)
    )
    lines += [c, c + columns, c + _SEPARATOR]
    return "\n".join(lines) + "\n"


def format_report(
    header: ReportHeader | None,
    stats: list[ClusterStats],
    *,
    factor: float = 0.0,
    quiet: bool = False,
    nosum: bool = False,
    one_d_format: bool = True,
    report_zero: bool = False,
    too_many: bool = False,
) -> str:
    """The whole stdout text of 3dClusterize (07 §5 and §7)."""
    c = "#" if one_d_format else ""
    if not stats:
        return f"{c}{NO_CLUSTERS_LINE}\n" + (" 0\n" if report_zero else "")
    abs_mean = header.abs_mean if header is not None else False
    parts = []
    if too_many:
        parts.append("#** TOO MANY CLUSTERS TO SORT BY VOLUME ***\n")
    if not quiet and header is not None:
        parts.append(format_header(header, one_d_format))
    parts += [cluster_table_row(s, one_d_format) for s in stats]
    if len(stats) > 1 and not nosum:
        if not quiet:
            parts.append(c + _SEPARATOR + "\n")
        parts.append(total_line(stats, factor, abs_mean, one_d_format))
    return "".join(parts)


# ------------------------------------------------------------------------------------------------
# file level
# ------------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """One reported cluster (index = its value in the cluster map; 1 = largest)."""

    index: int
    tail: str  # "pos", "neg" or "both"
    ijk: np.ndarray  # (n, 3) voxel indices, breadth-first order
    stats: ClusterStats  # in the report's coordinate order
    stats_rai: ClusterStats
    stats_lpi: ClusterStats

    @property
    def n_voxels(self) -> int:
        return int(self.ijk.shape[0])


@dataclass
class ClusterizeResult:
    """Everything one 3dClusterize run produced."""

    report_text: str
    n_clusters: int
    clusters: list[Cluster]
    map_path: Path | None
    dat_path: Path | None
    voxel_volume: float = 0.0
    thresholds: tuple[float, float] = (0.0, 0.0)
    option_label: str = ""
    orient: str = "RAI"
    cluster_map: np.ndarray | None = field(default=None, repr=False)


def _arg_text(value: str | float | int) -> str:
    """An option argument as it would be typed (strings verbatim, numbers as Python prints them)."""
    return value if isinstance(value, str) else str(value)


def _brick_index(spec: str | int, dset: afni_io.AfniDataset, what: str) -> int:
    """``-ithr``/``-idat``: all digits → index, otherwise the exact label (last match wins)."""
    text = str(spec)
    if text.isdigit():
        index = int(text)
    else:
        try:
            index = dset.index_of(text)
        except InputDataError:
            raise InputDataError(
                f"Could not find string label: {text} (in {dset.path}; labels: "
                f"{', '.join(dset.labels)}); give -{what} an existing label or index"
            ) from None
    if not 0 <= index < dset.nvals:
        raise InputDataError(
            f"Bad index for {what} volume: {index} ({dset.path} has {dset.nvals} sub-bricks)"
        )
    return index


def _dataset_prefix(path_text: str) -> str:
    """``Dataset prefix`` of the report: file name, NIfTI extension kept, ``+view`` dropped."""
    name = os.path.basename(path_text)
    if name.endswith((".nii", ".nii.gz")):
        return name
    for view in ("+orig", "+acpc", "+tlrc"):
        if view in name:
            return name[: name.index(view)]
    return name


def _brick_datum_and_factor(full: afni_io.AfniDataset, index: int) -> tuple[str, float]:
    """Datum name and scale factor of brick ``index`` of the dataset as read (not selected)."""
    types = full.attributes.get("BRICK_TYPES")
    facs = full.attributes.get("BRICK_FLOAT_FACS")
    if types is not None and index < len(types):
        datum = _DATUM_NAMES.get(int(types[index]), "float")
    else:
        datum = _DTYPE_DATUM.get(full.data.dtype, "float")
    factor = float(facs[index]) if facs is not None and index < len(facs) else 0.0
    if datum not in ("short", "byte"):
        factor = 0.0  # afni_io hands back float bricks already scaled: nothing left to apply
    return datum, factor


def _stored_values(brick: np.ndarray, datum: str, factor: float) -> np.ndarray:
    """The brick's stored (unscaled) values as float32; afni_io returns scaled data."""
    if factor > 0 and datum in ("short", "byte"):
        return np.rint(np.asarray(brick, dtype=np.float64) / factor).astype(np.float32)
    return np.asarray(brick, dtype=np.float32)


def _aux_stat_text(dset: afni_io.AfniDataset, index: int) -> str:
    if not any(c > 0 for c in dset.stat_codes):
        return "not a stat!"
    code = dset.stat_codes[index]
    label = _AUX_LABELS.get(code)
    if label is None:
        return ""
    params = dset.stat_params[index]
    return f"{label} :" + "".join(" %g " % float(np.float32(p)) for p in params)


def _brick_ref(dset: afni_io.AfniDataset, index: int, has_labels: bool) -> str:
    return f"[{index}] '{dset.labels[index]}'" if has_labels else f"[{index}]"


@dataclass
class _Thresholds:
    low: np.float32
    high: np.float32
    label_part: str
    text: str


def _resolve_thresholds(
    sided: str,
    thresholds,
    pval,
    tail: str,
    tail_text: str,
    code: int,
    params: tuple[float, ...],
) -> _Thresholds:
    """Numeric thresholds, the option-summary part and the ``Threshold value(s)`` text."""
    nsides = stat_nsides(code)
    if sided == "1sided" and tail == "LEFT" and nsides == 1:
        raise UsageError(
            "The Glen Rule applies here: can't run a left-sided test on this stat, as it only "
            "has one (positive) side"
        )
    if pval is not None:
        p = float(c_atof(str(pval)) if isinstance(pval, str) else pval)
        p_text = f"p={_arg_text(pval)}"
        if nsides == 0:
            raise UsageError(
                "Thresholding volume does *not* appear to be a stat so you can't use the "
                "'p=..' internal conversion to stat"
            )
        limit = 0.5 if sided == "1sided" else 1.0
        if not 0.0 <= p <= limit:
            raise UsageError(f"Non-valid p-value ({p:f}) entered!")
        p32 = float(np.float32(p))
        if sided == "1sided":
            value = np.float32(pval_to_stat(p, code, params, "1sided"))
            if tail == "LEFT":
                value = -value
            side = "right" if tail == "RIGHT" else "left"
            return _Thresholds(
                value,
                value,
                f"1sided,{tail_text},{p_text},",
                f"{side}-tail p={p32:f} -> thr={float(value):f}",
            )
        right = np.float32(pval_to_stat(p, code, params, "2sided"))
        return _Thresholds(
            -right,
            right,
            f"-{sided},{p_text},",
            f"left-tail p={p32:f} -> thr={float(-right):f};  "
            f"right-tail p={p32:f} -> thr={float(right):f}",
        )
    if sided == "1sided":
        values = thresholds if isinstance(thresholds, (tuple, list)) else (thresholds,)
        if len(values) != 1:
            raise UsageError("-1sided takes one threshold value")
        text = _arg_text(values[0])
        value = np.float32(c_atof(text))
        side = "right" if tail == "RIGHT" else "left"
        return _Thresholds(
            value, value, f"1sided,{tail_text},{text},", f"{side}-tail thr={float(value):f}"
        )
    if not isinstance(thresholds, (tuple, list)) or len(thresholds) != 2:
        raise UsageError(f"-{sided} takes two threshold values (left, right) or p=P")
    low_text, high_text = (_arg_text(v) for v in thresholds)
    low, high = np.float32(c_atof(low_text)), np.float32(c_atof(high_text))
    return _Thresholds(
        low,
        high,
        f"{sided},{low_text},{high_text},",
        f"left-tail thr={float(low):f};  right-tail thr={float(high):f}",
    )


def _command_line(args: dict) -> str:
    """A 3dClusterize command line for the history note when the caller gives none."""
    parts = ["3dClusterize"]
    for key, value in args.items():
        if value is None or value is False:
            continue
        parts.append(f"-{key}")
        if value is True:
            continue
        values = value if isinstance(value, (tuple, list)) else (value,)
        parts += [_arg_text(v) for v in values]
    return " ".join(shlex.quote(p) for p in parts)


def run_clusterize(
    inset: str | Path,
    ithr: str | int,
    idat: str | int | None = None,
    *,
    mask: str | Path | None = None,
    sided: str = "bisided",
    thresholds=None,
    pval: float | str | None = None,
    tail: str = "RIGHT_TAIL",
    nn: int = 1,
    clust_nvox: float | str | None = None,
    clust_vol: float | str | None = None,
    pref_map: str | Path | None = None,
    pref_dat: str | Path | None = None,
    orient: str = "RAI",
    quiet: bool = False,
    nosum: bool = False,
    one_d_format: bool = True,
    abs_table_data: bool = False,
    binary: bool = False,
    outvol_if_no_clust: bool = False,
    out_mask: str | Path | None = None,
    overwrite: bool = True,
    report_zero: bool = False,
    mask_text: str | None = None,
    command_line: str | None = None,
) -> ClusterizeResult:
    """Threshold, cluster and report one statistic map, exactly as ``3dClusterize`` does.

    Parameters
    ----------
    inset : str or Path
        Dataset (optionally with a sub-brick selector), e.g. ``mema_results.nii.gz``.
    ithr, idat : str or int
        Threshold and data sub-bricks: an index (all digits) or an exact label (last match wins).
        Without ``idat`` the threshold brick is also the data brick (and no DAT is written).
    mask : str or Path, optional
        Mask dataset (brick 0, non-zero = inside); same nx, ny, nz as ``inset``.
    sided : {"bisided", "2sided", "1sided", "within_range"}
        ``bisided``: the tails are clustered separately; ``2sided``: together.
    thresholds : (low, high) or value
        Statistic thresholds, e.g. ``("-4.586894", "4.586894")``; strings are used verbatim in the
        option summary (as AFNI prints what was typed), numbers as Python prints them. For
        ``1sided`` a single value. Comparisons are inclusive and in float32. To reproduce the
        tutorial, pass p2dsetstat's text (``format_stat_threshold(stat_threshold(...))``), not
        the float: AFNI thresholds at ``float32("4.586894")``, not at the unrounded value.
    pval : float or str, optional
        ``p=`` syntax instead of ``thresholds``: converted with the brick's stat code (07 §3.2).
    tail : {"RIGHT_TAIL", "RIGHT", "LEFT_TAIL", "LEFT"}
        Tail of a ``1sided`` test.
    nn : {1, 2, 3}
        Neighbourhood: faces, + edges, + corners.
    clust_nvox, clust_vol : float or str, optional
        Minimum cluster size in voxels (> 0, truncated to an integer). ``clust_vol`` is treated as
        a voxel count too (AFNI quirk); only the label differs.
    pref_map, pref_dat : str or Path, optional
        Output cluster-index map (int16, 1 = largest) and cluster-masked data brick. Not written
        when no cluster survives (unless ``outvol_if_no_clust``).
    orient : str
        Coordinate order of the report, ``RAI`` (default) or e.g. ``LPI``.
    quiet, nosum, one_d_format, abs_table_data, binary, outvol_if_no_clust, out_mask
        As 3dClusterize's ``-quiet``, ``-nosum``, ``-1Dformat``/``-no_1Dformat``,
        ``-abs_table_data``, ``-binary``, ``-outvol_if_no_clust``, ``-out_mask``.
    overwrite : bool
        Replace existing outputs; if False an existing output raises :class:`OutputError`
        (checked for all outputs before anything is written).
    mask_text : str, optional
        Text of the report's ``Mask`` line (AFNI echoes the ``-mask`` argument as typed, e.g.
        ``mask.nii.gz`` when run from the analysis folder); default: ``mask`` as given.
    report_zero : bool
        Add AFNI's `` 0`` line after ``NO CLUSTERS FOUND`` (env ``AFNI_3dclust_report_zero``).
    command_line : str, optional
        Recorded in the output history; rebuilt from the arguments when not given.

    Returns
    -------
    ClusterizeResult
        ``report_text`` is what AFNI prints on stdout; ``n_clusters == 0`` means no cluster
        survived (``report_text`` is then ``#** NO CLUSTERS FOUND ***\\n``).

    Raises
    ------
    UsageError, InputDataError, MissingInputError, OutputError
    """
    if sided not in _SIDED_MODES:
        raise UsageError(f"sidedness must be one of {', '.join(_SIDED_MODES)}, not '{sided}'")
    tail_key = _TAIL_WORDS.get(str(tail).upper() if tail else "")
    if tail_key is None:
        raise UsageError(f"Illegal tail '{tail}' after '-1sided': need 'RIGHT_TAIL' or 'LEFT_TAIL'")
    if (thresholds is None) == (pval is None):
        raise UsageError("give either thresholds or pval (p=P), not both or neither")
    nn = int(nn)
    if nn not in (1, 2, 3):
        raise UsageError(f"-NN must be 1, 2 or 3, not {nn}")
    size_option, size_arg = None, None
    if clust_nvox is not None and clust_vol is not None:
        raise UsageError("give -clust_nvox or -clust_vol, not both")
    if clust_nvox is not None or clust_vol is not None:
        size_option = "clust_nvox" if clust_nvox is not None else "clust_vol"
        size_arg = _arg_text(clust_nvox if clust_nvox is not None else clust_vol)
        size_value = c_atof(size_arg)
        if not size_value > 0:
            raise UsageError(
                f"Need the volume threshold to be >=0 (not {size_value:f}); "
                f"-{size_option} must be a positive number of voxels"
            )
        min_nvox = int(size_value)
    else:
        min_nvox = 0
    orient = normalize_orient(orient)

    # --- inputs --------------------------------------------------------------------------------
    inset_text = os.fspath(inset)
    path_text, selector = afni_io.split_selector(inset_text)
    full = afni_io.read_dataset(path_text)
    if selector is not None:
        selected = afni_io.parse_selector(selector, full.labels, source=path_text)
        dset = full.select(selected)
    else:
        selected = list(range(full.nvals))
        dset = full
    has_labels = not (
        path_text.endswith((".nii", ".nii.gz")) and "BRICK_LABS" not in full.attributes
    )
    ithr_index = _brick_index(ithr, dset, "ithr")
    idat_index = _brick_index(idat, dset, "idat") if idat is not None else None
    data_index = ithr_index if idat_index is None else idat_index
    code, params = dset.stat_codes[ithr_index], dset.stat_params[ithr_index]
    thr_datum, thr_factor = _brick_datum_and_factor(full, selected[ithr_index])
    datum, data_factor = _brick_datum_and_factor(full, selected[data_index])
    # Without -idat AFNI looks the data factor up at brick index -1: it is never applied.
    report_factor = data_factor if idat_index is not None else 0.0

    try:
        th = _resolve_thresholds(sided, thresholds, pval, tail_key, str(tail), code, params)
    except UsageError as err:  # name the dataset and sub-brick (issue 15)
        brick = f"[{ithr_index}] '{dset.labels[ithr_index]}'"
        raise UsageError(f"{inset_text} -ithr {brick}: {err}") from None

    thr = _stored_values(dset.brick(ithr_index), thr_datum, thr_factor)
    dat = _stored_values(dset.brick(data_index), datum, data_factor)
    mask_bool = None
    if mask is not None:
        mask_dset = afni_io.read_dataset(os.fspath(mask))
        if mask_dset.shape != dset.shape:
            raise InputDataError(
                f"mask {mask} has grid {mask_dset.shape} but {inset_text} has {dset.shape}; "
                "use a mask on the same grid"
            )
        mask_bool = mask_dset.brick(0) != 0
        thr = np.where(mask_bool, thr, np.float32(0))
        dat = np.where(mask_bool, dat, np.float32(0))
    for name, arr in (("threshold", thr), ("data", dat)):
        if np.isnan(arr).any():
            raise InputDataError(
                f"{inset_text}: the {name} sub-brick has NaN values inside the mask; "
                "replace them (e.g. with 0) before clustering"
            )
    low, high = th.low, th.high
    if thr_factor > 0:
        # Thresholds are compared with the stored integers of a scaled brick.
        low, high = (
            np.float32(low / np.float32(thr_factor)),
            np.float32(high / np.float32(thr_factor)),
        )

    # --- clusters ------------------------------------------------------------------------------
    passes = threshold_masks(thr, sided, float(low), float(high), tail_key)
    if sided == "bisided":
        tails = ["pos", "neg"]
    elif sided == "1sided":
        tails = ["pos" if tail_key == "RIGHT" else "neg"]
    else:
        tails = ["both"]
    found: list[tuple[str, np.ndarray]] = []
    for tail_name, keep in zip(tails, passes, strict=True):
        image = keep & (dat != 0)
        found += [(tail_name, c) for c in find_clusters(image, nn, min_size=min_nvox)]
    too_many = len(found) >= MAX_SORTED_CLUSTERS
    found = sort_clusters(found, [c.shape[0] for _, c in found])

    origin, delta, dicom_axis = grid_geometry(dset)
    clusters: list[Cluster] = []
    for number, (tail_name, ijk) in enumerate(found, start=1):
        values = dat[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
        rai = dicom_coordinates(ijk, origin, delta, dicom_axis)
        stats_rai = cluster_stats(values, rai, report_factor, abs_table_data)
        stats_report = stats_rai if orient == "RAI" else reorient_stats(stats_rai, orient)
        stats_lpi = reorient_stats(stats_rai, "LPI")
        clusters.append(Cluster(number, tail_name, ijk, stats_report, stats_rai, stats_lpi))

    voxel_dims = tuple(abs(float(d)) for d in delta)
    label = f"{th.label_part}{size_option + ',' + size_arg + ',' if size_option else ''}NN{nn}"
    header = ReportHeader(
        prefix=_dataset_prefix(path_text),
        threshold_vol=_brick_ref(dset, ithr_index, has_labels),
        data_vol=_brick_ref(dset, idat_index, has_labels) if idat_index is not None else "(none)",
        option_label=label,
        threshold_text=th.text,
        aux_stat=_aux_stat_text(dset, ithr_index),
        min_nvox=min_nvox,
        voxel_dims=voxel_dims,
        nn=nn,
        datum=datum,
        orient=orient,
        mask=(mask_text or os.fspath(mask)) if mask is not None else None,
        abs_mean=abs_table_data,
    )
    report = format_report(
        header,
        [c.stats for c in clusters],
        factor=report_factor,
        quiet=quiet,
        nosum=nosum,
        one_d_format=one_d_format,
        report_zero=report_zero,
        too_many=too_many,
    )

    # --- outputs -------------------------------------------------------------------------------
    cluster_map = np.zeros(dset.shape, dtype=np.int16)
    for c in clusters:
        cluster_map[c.ijk[:, 0], c.ijk[:, 1], c.ijk[:, 2]] = 1 if binary else c.index
    write_vols = bool(clusters) or outvol_if_no_clust
    map_target = Path(pref_map) if pref_map is not None and write_vols else None
    dat_target = (
        Path(pref_dat) if pref_dat is not None and idat_index is not None and write_vols else None
    )
    mask_target = Path(out_mask) if out_mask is not None and mask_bool is not None else None
    if not overwrite:
        for target in (dat_target, map_target, mask_target):
            if target is not None and _dataset_exists(target):
                raise OutputError(
                    f"Can't overwrite existing dataset '{target}'; remove it or allow overwrite"
                )
    if command_line is None:
        command_line = _command_line(
            {
                "inset": inset_text,
                "ithr": ithr,
                "idat": idat,
                "mask": mask,
                sided: (pval and f"p={pval}") or thresholds,
                "NN": nn,
                size_option or "clust_nvox": size_arg,
                "pref_map": pref_map,
                "pref_dat": pref_dat,
            }
        )
    history = afni_io.history_entry(command_line)
    dat_path = map_path = None
    if dat_target is not None:
        dat_values = np.where(cluster_map > 0, dset.brick(data_index), 0)
        dat_values = dat_values.astype(_dat_dtype(dset.brick(data_index)))
        dat_dset = afni_io.AfniDataset(
            data=dat_values,
            affine=dset.affine,
            labels=[dset.labels[data_index]],
            stat_codes=[dset.stat_codes[data_index]],
            stat_params=[dset.stat_params[data_index]],
            space=dset.space,
            view=dset.view,
            history=dset.history,
        )
        dat_path = afni_io.write_dataset(dat_dset, dat_target, history=history, style="c")
    if map_target is not None:
        map_dset = afni_io.AfniDataset(
            data=cluster_map,
            affine=dset.affine,
            labels=[label],
            space=dset.space,
            view=dset.view,
            history=dset.history,
        )
        map_path = afni_io.write_dataset(
            map_dset,
            map_target,
            history=history,
            style="c",
            attributes={"INT_CMAP": 1},
            omit=("BRICK_KEYWORDS",),
        )
    if mask_target is not None:
        mask_out = afni_io.AfniDataset(
            data=mask_bool.astype(np.uint8),
            affine=dset.affine,
            labels=["mask"],
            space=dset.space,
            view=dset.view,
            history=dset.history,
        )
        afni_io.write_dataset(mask_out, mask_target, history=history, style="c")

    return ClusterizeResult(
        report_text=report,
        n_clusters=len(clusters),
        clusters=clusters,
        map_path=map_path,
        dat_path=dat_path,
        voxel_volume=voxel_dims[0] * voxel_dims[1] * voxel_dims[2],
        thresholds=(float(th.low), float(th.high)),
        option_label=label,
        orient=orient,
        cluster_map=cluster_map,
    )


def _dat_dtype(brick: np.ndarray) -> np.dtype:
    """DAT keeps the data brick's datum; scaled integer bricks come back as float32."""
    dt = np.asarray(brick).dtype
    return dt if dt in (np.dtype(np.uint8), np.dtype(np.int16)) else np.dtype(np.float32)


def _dataset_exists(path: Path) -> bool:
    text = str(path)
    if text.endswith((".nii", ".nii.gz")):
        return path.exists()
    base = text[:-5] if text.endswith((".HEAD", ".BRIK")) else text
    if base.endswith(("+orig", "+acpc", "+tlrc")):
        return Path(base + ".HEAD").exists()
    return any(Path(f"{base}+{v}.HEAD").exists() for v in ("orig", "acpc", "tlrc"))


# ------------------------------------------------------------------------------------------------
# clusters.tsv
# ------------------------------------------------------------------------------------------------


def _tsv_number(value: float, decimals: int) -> str:
    text = f"{float(value) + 0.0:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def write_clusters_tsv(
    result: ClusterizeResult,
    path: str | Path,
    extra_columns: Sequence[str] = (),
    extra: Sequence[Mapping[str, str]] = (),
) -> Path:
    """Write one row per cluster (columns fixed in docs/design.md); header only if none.

    ``extra_columns`` are appended after them, one cell per cluster from ``extra`` (peak t,
    corrected p and atlas labels: ``afni_group.cluster_table.tsv_extra``).

    Coordinates are in mm: RAI/DICOM (as 3dClusterize prints by default) and LPI (the MNI/
    NIfTI convention, x = −RAI x, y = −RAI y). Centre of mass is |data|-weighted; the peak is the
    voxel with the largest |data| ("Max Int"); mean, SEM and peak value are of the data brick.
    """
    path = Path(path)
    rows = []
    for c in result.clusters:
        rai, lpi = c.stats_rai, c.stats_lpi
        rows.append(
            [
                str(c.index),
                str(c.n_voxels),
                _tsv_number(c.n_voxels * result.voxel_volume, 3),
                c.tail,
                *(_tsv_number(v, 2) for v in rai.cm),
                *(_tsv_number(v, 2) for v in rai.peak_xyz),
                *(_tsv_number(v, 2) for v in lpi.cm),
                *(_tsv_number(v, 2) for v in lpi.peak_xyz),
                "%.6g" % c.stats.mean,
                "%.6g" % c.stats.sem,
                "%.6g" % c.stats.peak_value,
            ]
        )
    for row, cells in zip(rows, extra, strict=False):
        row += [cells.get(k, "n/a") for k in extra_columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow([*TSV_COLUMNS, *extra_columns])
    writer.writerows(rows)
    return atomic.write_text(path, buffer.getvalue())


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------

_HELP = """\
afni-native 3dClusterize: threshold, cluster and report a statistic map (AFNI-compatible).
  3dClusterize -inset D -ithr L [-idat L] [-mask M] -bisided LL RR|p=P -NN 1|2|3
               [-clust_nvox K] [-pref_map P] [-pref_dat P] [-orient LPI] [-quiet] ...
Also: -1sided RIGHT_TAIL|LEFT_TAIL T|p=P, -2sided LL RR|p=P, -within_range A B, -clust_vol V,
      -nosum, -no_1Dformat, -abs_table_data, -binary, -outvol_if_no_clust, -out_mask M.
"""


def _fatal(message: str, exit_code: int = EXIT_USAGE) -> int:
    print(f"** FATAL ERROR: {message}", file=sys.stderr)
    return exit_code


def cli_main(argv: list[str]) -> int:
    """``afni-native 3dClusterize ...``: AFNI's options; the report goes to stdout."""
    if argv and argv[0] in ("-help", "-h"):
        print(_HELP, end="")
        return 0
    if len(argv) < 2:
        return _fatal("Too few options. Try -help for details.")
    opts: dict = {
        "ithr": None,
        "idat": None,
        "mask": None,
        "sided": None,
        "thresholds": None,
        "pval": None,
        "tail": "RIGHT_TAIL",
        "nn": None,
        "clust_nvox": None,
        "clust_vol": None,
        "pref_map": None,
        "pref_dat": None,
        "orient": os.environ.get("AFNI_ORIENT", "RAI"),
        "quiet": False,
        "nosum": False,
        "one_d_format": True,
        "abs_table_data": False,
        "binary": False,
        "outvol_if_no_clust": False,
        "out_mask": None,
    }
    inset = None
    overwrite = os.environ.get("AFNI_DECONFLICT", "").upper() == "OVERWRITE"
    flags = {
        "-quiet": ("quiet", True),
        "-nosum": ("nosum", True),
        "-1Dformat": ("one_d_format", True),
        "-no_1Dformat": ("one_d_format", False),
        "-abs_table_data": ("abs_table_data", True),
        "-noabs": ("abs_table_data", False),
        "-binary": ("binary", True),
        "-outvol_if_no_clust": ("outvol_if_no_clust", True),
    }
    single = {
        "-ithr": "ithr",
        "-idat": "idat",
        "-mask": "mask",
        "-NN": "nn",
        "-clust_nvox": "clust_nvox",
        "-clust_vol": "clust_vol",
        "-pref_map": "pref_map",
        "-pref_dat": "pref_dat",
        "-orient": "orient",
        "-out_mask": "out_mask",
    }
    pos = 0
    while pos < len(argv):
        opt = argv[pos]

        def need(count: int, opt: str = opt, pos: int = pos) -> list[str]:
            if pos + count >= len(argv):
                raise UsageError(f"Need argument(s) after '{opt}'")
            return argv[pos + 1 : pos + 1 + count]

        try:
            if opt == "-overwrite":
                overwrite, pos = True, pos + 1
            elif opt in flags:
                key, value = flags[opt]
                opts[key], pos = value, pos + 1
            elif opt == "-inset":
                inset, pos = need(1)[0], pos + 2
            elif opt in single:
                opts[single[opt]], pos = need(1)[0], pos + 2
            elif opt == "-1sided":
                tail_word, value = need(2)
                if tail_word.upper() not in _TAIL_WORDS:
                    return _fatal(
                        "Illegal immediately following '-1sided': need 'RIGHT_TAIL' or 'LEFT_TAIL'"
                    )
                opts["sided"], opts["tail"] = "1sided", tail_word
                _set_threshold_args(opts, [value])
                pos += 3
            elif opt in ("-2sided", "-bisided", "-within_range"):
                first = need(1)[0]
                opts["sided"] = opt[1:]
                if first.startswith("p="):
                    _set_threshold_args(opts, [first])
                    pos += 2
                else:
                    _set_threshold_args(opts, need(2))
                    pos += 3
            elif opt in ("-mask_from_hdr", "-summarize"):
                return _fatal(f"afni-native 3dClusterize does not support {opt}")
            else:
                print(f"** ERROR: Bad option '{opt}'", file=sys.stderr)
                return EXIT_USAGE
        except UsageError as err:
            return _fatal(str(err))

    if inset is None:
        return _fatal("Need an input dataset: -inset DSET")
    if opts["ithr"] is None:
        return _fatal("Bad index for threshold volume: -1 (give -ithr)")
    if opts["nn"] is None:
        return _fatal("Need to choose a neighborhood type: '-NN ?'")
    if opts["nn"] not in ("1", "2", "3"):
        return _fatal(f"Neighborhood type must be 1, 2 or 3 (not '{opts['nn']}')")
    if opts["sided"] is None:
        return _fatal(
            "Hey, you need to put in threshold type/value!For example, '-2sided ...', "
            "'-1sided ...', etc."
        )
    if opts["pref_dat"] is not None and opts["idat"] is None:
        print(
            "*+ WARNING: ... even though you specified an '-pref_dat ..', no cluster-masked "
            "output can be made.",
            file=sys.stderr,
        )
    command = "3dClusterize " + " ".join(shlex.quote(a) for a in argv)
    try:
        result = run_clusterize(
            inset,
            opts.pop("ithr"),
            opts.pop("idat"),
            nn=int(opts.pop("nn")),
            overwrite=overwrite,
            report_zero=os.environ.get("AFNI_3dclust_report_zero", "").upper() == "YES",
            command_line=command,
            **opts,
        )
    except AfniGroupError as err:
        return _fatal(str(err), err.exit_code)
    sys.stdout.write(result.report_text)
    sys.stdout.flush()
    if result.n_clusters == 0:
        print("*+ WARNING: No clusters found!", file=sys.stderr)
    for written in (result.dat_path, result.map_path):
        if written is not None:
            print(f"++ Output dataset {written}", file=sys.stderr)
    return 0


def _set_threshold_args(opts: dict, values: list[str]) -> None:
    """Store ``p=P`` or the statistic thresholds of a sidedness option."""
    if len(values) >= 1 and values[0].startswith("p="):
        opts["pval"], opts["thresholds"] = values[0][2:], None
    else:
        # A second 2-/bi-sided argument written p=X is used as the statistic X (AFNI quirk).
        cleaned = [v[2:] if v.startswith("p=") else v for v in values]
        opts["thresholds"] = cleaned[0] if len(cleaned) == 1 else tuple(cleaned)
        opts["pval"] = None
