"""3dClusterize's computation on arrays: threshold, cluster, measure (spec 07).

Pure functions, numpy in and numpy/dataclasses out; bad values raise ``ValueError``. They follow
3dClusterize's order of operations:

1. :func:`threshold_masks` — which voxels pass the (inclusive, float32) threshold test, per tail;
2. :func:`find_clusters` — connected components of the non-zero data voxels (NN1/NN2/NN3), in
   AFNI's discovery order and with each cluster's voxels in AFNI's breadth-first order (the order
   decides ties for "Max Int" and the last bit of the sums);
3. :func:`sort_clusters` — stable sort by size, positive tail first;
4. :func:`cluster_stats` — each cluster's sums, centre of mass, extent, mean, SEM and peak.

:func:`clusterize` runs all of it and returns a :class:`ClusterResult` (clusters, a table of
:class:`ClusterRow` and the cluster-index map). The AFNI report text is in
:mod:`.formats`, files in :mod:`.files`, the ``afni-native 3dClusterize`` options
in :mod:`.cli.clusterize`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from afni_group.programs.checks import SIDEDNESS, check_nn, check_sided
from afni_group.programs.clusterize.coordinates import (
    ORIENT_AXIS,
    dicom_coordinates,
    grid_from_affine,
    normalize_orient,
)

#: AFNI's "infinity" for one-sided zeroing ranges (mri_threshold).
BIG = np.float32(1e9)

#: Above this many clusters AFNI does not sort them.
MAX_SORTED_CLUSTERS = 3333

#: Squared neighbour radius per NN level (r = 1.11, 1.44, 1.77 in index units).
_NN_RADIUS2 = {1: 1.11**2, 2: 1.44**2, 3: 1.77**2}

_SIDED_MODES = (*SIDEDNESS, "within_range")


#: tail words accepted for a 1-sided test
_TAIL_WORDS = {"RIGHT_TAIL": "RIGHT", "RIGHT": "RIGHT", "LEFT_TAIL": "LEFT", "LEFT": "LEFT"}


# ------------------------------------------------------------------------------------------------
# thresholding and clustering
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


def _structure(nn: int) -> np.ndarray:
    """The 3x3x3 connectivity of :func:`neighbour_offsets` (for ``scipy.ndimage.label``)."""
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1, 1, 1] = True
    for di, dj, dk in neighbour_offsets(nn):
        structure[dk + 1, dj + 1, di + 1] = True
    return structure


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
    structure = _structure(nn)
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
        d = ORIENT_AXIS[letter]
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


# ------------------------------------------------------------------------------------------------
# the whole computation
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRow:
    """One row of the cluster table (the columns of ``clusters.tsv``; mm, RAI and LPI)."""

    cluster_id: int
    n_voxels: int
    volume_mm3: float
    tail: str  # "pos", "neg" or "both"
    cm_rai: tuple[float, float, float]
    peak_rai: tuple[float, float, float]
    cm_lpi: tuple[float, float, float]
    peak_lpi: tuple[float, float, float]
    mean: float
    sem: float
    peak_value: float


@dataclass
class ClusterResult:
    """What :func:`clusterize` found.

    ``clusters`` are in report order (1 = largest); ``cluster_map`` is int16 with each voxel's
    cluster number (0 outside clusters); ``table`` has one :class:`ClusterRow` per cluster.
    """

    clusters: list[Cluster]
    cluster_map: np.ndarray = field(repr=False)
    voxel_volume: float
    thresholds: tuple[float, float]
    orient: str = "RAI"
    too_many: bool = False

    @property
    def n_clusters(self) -> int:
        """Number of clusters found."""
        return len(self.clusters)

    @property
    def table(self) -> list[ClusterRow]:
        """One row per cluster, in cluster order."""
        rows = []
        for c in self.clusters:
            rai, lpi = c.stats_rai, c.stats_lpi
            rows.append(
                ClusterRow(
                    cluster_id=c.index,
                    n_voxels=c.n_voxels,
                    volume_mm3=c.n_voxels * self.voxel_volume,
                    tail=c.tail,
                    cm_rai=tuple(float(v) for v in rai.cm),
                    peak_rai=tuple(float(v) for v in rai.peak_xyz),
                    cm_lpi=tuple(float(v) for v in lpi.cm),
                    peak_lpi=tuple(float(v) for v in lpi.peak_xyz),
                    mean=c.stats.mean,
                    sem=c.stats.sem,
                    peak_value=c.stats.peak_value,
                )
            )
        return rows

    def data_map(self, data: np.ndarray) -> np.ndarray:
        """``data`` inside the clusters, 0 elsewhere (3dClusterize's ``-pref_dat`` map)."""
        return np.where(self.cluster_map > 0, data, 0)


def _threshold_pair(thresholds: float | Sequence[float], sided: str) -> tuple[float, float]:
    values = (
        tuple(thresholds) if isinstance(thresholds, (tuple, list, np.ndarray)) else (thresholds,)
    )
    if sided == "1sided":
        if len(values) != 1:
            raise ValueError("a 1-sided test takes one threshold")
        return float(values[0]), float(values[0])
    if len(values) == 1:
        return -abs(float(values[0])), abs(float(values[0]))
    if len(values) != 2:
        raise ValueError(f"a {sided} test takes two thresholds (low, high)")
    return float(values[0]), float(values[1])


def clusterize(
    stat: np.ndarray,
    data: np.ndarray | None = None,
    affine: np.ndarray | None = None,
    *,
    thresholds: float | Sequence[float],
    sided: str = "bisided",
    tail: str = "RIGHT",
    nn: int = 1,
    min_nvox: int = 0,
    mask: np.ndarray | None = None,
    orient: str = "RAI",
    abs_table_data: bool = False,
    data_factor: float = 0.0,
    grid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> ClusterResult:
    """Threshold, cluster and measure a statistic map as ``3dClusterize`` does.

    Parameters
    ----------
    stat : ndarray, shape (nx, ny, nz)
        Threshold brick (compared in float32, inclusive).
    data : ndarray, optional
        Data brick reported and clustered where non-zero (default: ``stat``).
    affine : ndarray (4, 4), optional
        Voxel -> RAS+ mm (NIfTI convention); coordinates are reported in AFNI's DICOM/RAI mm
        (default: 1 mm voxels at the origin). ``grid`` (ORIGIN, DELTA, DICOM axis) overrides it.
    thresholds : float or (low, high)
        Statistic thresholds: ``(low, high)`` for ``bisided``/``2sided``/``within_range`` (a
        single value t means ``(-t, t)``), one value for ``1sided``.
    sided : {"bisided", "2sided", "1sided", "within_range"}
        ``bisided``: the tails are clustered separately; ``2sided``: together.
    tail : {"RIGHT", "LEFT"}
        Tail of a ``1sided`` test.
    nn : {1, 2, 3}
        Neighbourhood: faces, + edges, + corners.
    min_nvox : int
        Smallest cluster kept, in voxels.
    mask : ndarray of bool, optional
        Voxels outside are set to 0 before clustering.
    orient : str
        Coordinate order of ``Cluster.stats`` (``RAI``, ``LPI``, ...).
    abs_table_data : bool
        Mean and SEM of |data| (``-abs_table_data``).
    data_factor : float
        Scale factor of a stored integer data brick (0 = none).

    Returns
    -------
    ClusterResult

    Raises
    ------
    ValueError
        Unknown ``sided``/``tail``/``nn``, arrays of different shapes, or NaN inside the mask.
    """
    check_sided(sided, _SIDED_MODES)
    tail_key = _TAIL_WORDS.get(str(tail).upper())
    if tail_key is None:
        raise ValueError(f"tail must be RIGHT or LEFT, not {tail!r}")
    nn = check_nn(nn)
    thr = np.asarray(stat, dtype=np.float32)
    dat = thr if data is None else np.asarray(data, dtype=np.float32)
    if thr.ndim != 3 or dat.shape != thr.shape:
        raise ValueError(
            f"stat and data must be 3-D arrays of one shape, got {thr.shape} and {dat.shape}"
        )
    if mask is not None:
        inside = np.asarray(mask, dtype=bool)
        if inside.shape != thr.shape:
            raise ValueError(f"mask has shape {inside.shape}, the data {thr.shape}")
        thr = np.where(inside, thr, np.float32(0))
        dat = np.where(inside, dat, np.float32(0))
    for name, arr in (("threshold", thr), ("data", dat)):
        if np.isnan(arr).any():
            raise ValueError(
                f"the {name} sub-brick has NaN values inside the mask; "
                "replace them (e.g. with 0) before clustering"
            )
    low, high = _threshold_pair(thresholds, sided)
    orient = normalize_orient(orient)

    passes = threshold_masks(thr, sided, low, high, tail_key)
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

    if grid is None:
        grid = grid_from_affine(np.eye(4) if affine is None else affine)
    origin, delta, dicom_axis = grid
    clusters: list[Cluster] = []
    for number, (tail_name, ijk) in enumerate(found, start=1):
        values = dat[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
        rai = dicom_coordinates(ijk, origin, delta, dicom_axis)
        stats_rai = cluster_stats(values, rai, data_factor, abs_table_data)
        stats_report = stats_rai if orient == "RAI" else reorient_stats(stats_rai, orient)
        stats_lpi = reorient_stats(stats_rai, "LPI")
        clusters.append(Cluster(number, tail_name, ijk, stats_report, stats_rai, stats_lpi))

    cluster_map = np.zeros(thr.shape, dtype=np.int16)
    for c in clusters:
        cluster_map[c.ijk[:, 0], c.ijk[:, 1], c.ijk[:, 2]] = c.index
    dx, dy, dz = (abs(float(d)) for d in delta)
    return ClusterResult(
        clusters=clusters,
        cluster_map=cluster_map,
        voxel_volume=dx * dy * dz,
        thresholds=(low, high),
        orient=orient,
        too_many=too_many,
    )


def largest_cluster_size(
    stat: np.ndarray,
    threshold: float,
    *,
    sided: str = "bisided",
    nn: int = 1,
    mask: np.ndarray | None = None,
) -> int:
    """Voxels in the largest cluster passing ``|stat| >= threshold`` (any size; 0 if none).

    ``1sided`` counts only ``stat >= threshold``; ``bisided`` clusters the two tails
    separately, ``2sided`` together. Same thresholding and neighbourhoods as :func:`clusterize`.
    """
    check_sided(sided, _SIDED_MODES)
    nn = check_nn(nn)
    thr = np.asarray(stat, dtype=np.float32)
    inside = np.ones(thr.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    t = abs(float(threshold))
    low, high = (t, t) if sided == "1sided" else (-t, t)
    best = 0
    for keep in threshold_masks(thr, sided, low, high, "RIGHT"):
        labels, n = ndimage.label(keep & inside, structure=_structure(int(nn)))
        if n:
            best = max(best, int(np.bincount(labels.ravel())[1:].max()))
    return best
