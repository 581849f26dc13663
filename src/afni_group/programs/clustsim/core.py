"""3dClustSim's core on arrays: simulation, cluster-size tables and their Monte-Carlo error.

:func:`clustsim` takes a boolean mask, voxel sizes and the ACF and returns a
:class:`ClustSimTables` (all NN × sidedness tables in memory, the per-iteration maxima, and
:meth:`ClustSimTables.threshold_uncertainty`). Bad values raise :class:`ValueError`; nothing is
read or written here (files: :mod:`.files`, text: :mod:`.formats`).

Tables (spec 05 §5.2): per (sidedness, NN, p) the largest cluster of every iteration gives the
tail curve ``alpha[s] = P(max >= s)``; the size for a target alpha is interpolated in
``log(-log(1-alpha))``, then the table is made monotone as AFNI does.

Monte-Carlo error (beyond AFNI): a table cell is the (1 - alpha) quantile of the largest cluster
size estimated from N iterations. The number of iterations above it is Binomial(N, alpha), so
the distribution-free 95 % interval of the quantile is the same interpolation at
``alpha ± 1.96·sqrt(alpha(1-alpha)/N)``; the standard error is the interval's half width / 1.96.
A threshold is "stable" when ``size ± 1.96·se`` rounds up (as 1d_tool.py does) to one integer.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri

from afni_group.programs.clustsim.kernels import ClusterWork, gather_scaled
from afni_group.programs.clustsim.noise import (
    NoiseSource,
    grid_transforms,
    noise_grid,
    spectral_weights,
)
from afni_group.progress import Progress

# --------------------------------------------------------------------------------------------
# constants (spec 05 §1)

DEFAULT_PTHR = (0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001)
DEFAULT_ATHR = (0.10, 0.05, 0.02, 0.01)
LOTS_PTHR = (
    0.10, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02, 0.015, 0.01, 0.007, 0.005, 0.003,
    0.002, 0.0015, 0.001, 0.0007, 0.0005, 0.0003, 0.0002, 0.00015, 0.0001, 0.00007, 0.00005,
    0.00003, 0.00002, 0.000015, 0.00001,
)  # fmt: skip
LOTS_ATHR = (0.10, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01)

DEFAULT_SEED = 123456789
DEFAULT_ITERATIONS = 10000
MIN_ITERATIONS = 2000
MAX_CLUSTER = 99999
MIN_MASK_VOXELS = 128
MIN_GRID_VOXELS = 256
SIDEDNESS = ("1sided", "2sided", "bisided")
#: volume pairs per work item: the unit the threads share (results do not depend on it)
CHUNK_PAIRS = 16
#: two-sided 95 % normal quantile, for the Monte-Carlo interval
Z95 = 1.959963984540054


# --------------------------------------------------------------------------------------------
# checks (ValueError; the file level turns them into the CLI's errors)


def check_acf(acf: Sequence[float]) -> tuple[float, float, float]:
    """AFNI's -acf ranges: 0 <= a <= 1, b > 0, c > 0."""
    if len(acf) != 3:
        raise ValueError("need 3 ACF parameters (a b c)")
    try:
        a, b, c = (float(v) for v in acf)
    except (TypeError, ValueError) as err:
        raise ValueError(f"ACF values {list(acf)} are not numbers") from err
    if not 0 <= a <= 1:
        raise ValueError(f"'a' value should be between 0 and 1 (got {a})")
    if not b > 0:
        raise ValueError(f"'b' value should be positive (got {b})")
    if not c > 0:
        raise ValueError(f"'c' value should be positive (got {c})")
    return a, b, c


def check_probabilities(values: Sequence[float], what: str) -> tuple[float, ...]:
    """0 < value <= 0.5 each; returned sorted in decreasing order (AFNI's -pthr/-athr)."""
    out = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            x = float("nan")
        if not 0 < x <= 0.5:
            raise ValueError(f"value '{v}' after '{what}' is illegal! (need 0 < value <= 0.5)")
        out.append(x)
    if not out:
        raise ValueError(f"need at least one value after '{what}'")
    return tuple(sorted(out, reverse=True))


def check_grid(mask: np.ndarray, ok_small_mask: bool = False) -> int:
    """AFNI's grid and mask-size checks; returns the mask voxel count."""
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3-D, not {mask.ndim}-D")
    nx, ny, nz = mask.shape
    if nx < 4 or ny < 4 or nz < 4:
        raise ValueError(f"-acf option: minimum grid is 4x4x4, but you have {nx}x{ny}x{nz}")
    if mask.size < MIN_GRID_VOXELS:
        raise ValueError(
            f"Only {mask.size} voxels in simulation?! Need at least {MIN_GRID_VOXELS}."
        )
    count = int(np.count_nonzero(mask))
    if count == 0:
        raise ValueError("-mask has no nonzero voxels -- cannot use this at all")
    minimum = 2 if ok_small_mask else MIN_MASK_VOXELS
    if count < minimum:
        raise ValueError(
            f"-mask has only {count} nonzero voxels; 3dClustSim needs at least {minimum}"
            + ("" if ok_small_mask else " (-OKsmallmask lowers this to 2)")
        )
    return count


# --------------------------------------------------------------------------------------------
# thresholds and simulation (spec 05 §4–5.1)


def z_thresholds(pthr: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Upper-tail N(0,1) thresholds (float32, capped at 13): 1-sided ``z(p)``, 2-sided ``z(p/2)``."""
    p = np.asarray(pthr, dtype=np.float64)
    z1 = np.minimum(-ndtri(p), 13.0).astype(np.float32)
    z2 = np.minimum(-ndtri(p / 2), 13.0).astype(np.float32)
    return z1, z2


@dataclass
class SimulationTiming:
    """Seconds spent per stage, summed over threads."""

    noise: float = 0.0
    fft: float = 0.0
    clustering: float = 0.0
    wall: float = 0.0


def simulate_max_cluster_sizes(
    mask: np.ndarray,
    voxel_sizes: Sequence[float],
    acf: Sequence[float],
    pthr: Sequence[float],
    iterations: int,
    seed: int = DEFAULT_SEED,
    n_jobs: int = 1,
    progress: bool = False,
    timing: SimulationTiming | None = None,
    exact_fft: bool = False,
) -> np.ndarray:
    """Largest cluster per iteration for every sidedness, NN and p.

    Parameters
    ----------
    mask : ndarray of bool, shape (nx, ny, nz)
        Search region; noise is made on the whole grid.
    voxel_sizes : sequence of 3 floats
        Voxel size in mm (absolute values are used).
    acf : (a, b, c)
    pthr : sequence of float
        Voxel-wise p values.
    iterations : int
    seed : int
        Random seed; the result depends only on it (not on ``n_jobs``).
    n_jobs : int
        Worker threads.
    progress : bool
        Progress lines on stderr.
    timing : SimulationTiming, optional
        Filled with the time spent per stage.
    exact_fft : bool
        Exact DFTs instead of AFNI's transforms (:mod:`.afni_fft`).

    Returns
    -------
    ndarray of int32, shape (iterations, 3, 3, len(pthr))
        Axes: iteration, sidedness (1sided, 2sided, bisided), NN (1, 2, 3), p. Iterations
        2k and 2k+1 are the real and imaginary part of volume pair k.
    """
    mask = np.asarray(mask, dtype=bool)
    grid = noise_grid(mask.shape, voxel_sizes, acf)
    transforms = grid_transforms(grid, exact_fft)
    weights, _ = spectral_weights(grid, transforms)
    mask_index = np.flatnonzero(mask).astype(np.int64)
    z1, z2 = z_thresholds(pthr)
    iterations = int(iterations)
    result = np.zeros((iterations, 3, 3, len(pthr)), dtype=np.int32)
    n_pairs = (iterations + 1) // 2
    chunks = [(p, min(p + CHUNK_PAIRS, n_pairs)) for p in range(0, n_pairs, CHUNK_PAIRS)]
    seed = int(seed) & 0xFFFFFFFF
    timings: list[SimulationTiming] = []
    # work buffers (k-space, union-find) are made once per thread, not per chunk
    per_thread = threading.local()

    def run_chunk(chunk: int) -> int:
        first, last = chunks[chunk]
        if not hasattr(per_thread, "source"):
            per_thread.source = NoiseSource(grid, weights, transforms, seed)
            per_thread.work = ClusterWork(mask, z1, z2)
        source, work = per_thread.source, per_thread.work
        spent = SimulationTiming()
        done = 0
        for p in range(first, last):
            t0 = time.perf_counter()
            pair = source.pair(p)
            t1 = time.perf_counter()
            for part in range(2):
                it = 2 * p + part
                if it >= iterations:
                    break
                values = gather_scaled(pair, part == 1, mask_index)
                work.max_sizes(values, result[it])
                done += 1
            spent.fft += t1 - t0
            spent.clustering += time.perf_counter() - t1
        timings.append(spent)
        return done

    t_start = time.perf_counter()
    bar = Progress("3dClustSim", iterations, "iterations", enabled=progress)
    with bar:
        if n_jobs <= 1 or len(chunks) == 1:
            for c in range(len(chunks)):
                bar.update(run_chunk(c))
        else:
            with ThreadPoolExecutor(max_workers=int(n_jobs)) as pool:
                for done in pool.map(run_chunk, range(len(chunks))):
                    bar.update(done)
    if timing is not None:
        timing.noise = 0.0  # generated inside the transform stage (one fused pass)
        timing.fft = sum(t.fft for t in timings)
        timing.clustering = sum(t.clustering for t in timings)
        timing.wall = time.perf_counter() - t_start
    return result


# --------------------------------------------------------------------------------------------
# tables (spec 05 §5.2)


def tail_probabilities(max_sizes: np.ndarray, iterations: int) -> np.ndarray:
    """``alpha[s] = P(max cluster >= s)`` for s = 0..itop+1 (index 0 unused, last is 0)."""
    sizes = np.minimum(np.asarray(max_sizes, dtype=np.int64), MAX_CLUSTER)
    counts = np.bincount(sizes, minlength=2)
    positive = np.flatnonzero(counts[1:]) + 1
    itop = int(positive[-1]) if positive.size else 1
    alpha = np.zeros(itop + 2, dtype=np.float64)
    alpha[1 : itop + 1] = counts[1 : itop + 1] / float(iterations)
    # running sum from the top, sequential (cumsum), in the same order as AFNI
    alpha[1 : itop + 1] = np.cumsum(alpha[itop:0:-1])[::-1]
    return alpha


def _gumbel(x: float) -> float:
    return math.log(-math.log(1.0 - x))


def cluster_size_for_alpha(
    alpha_curve: np.ndarray, target: float, iterations: int
) -> tuple[np.float32, bool]:
    """Interpolated cluster size where the tail probability crosses ``target``.

    Returns the float32 size and whether ``target`` exceeded the largest simulated alpha
    (AFNI then prints a warning and uses size 1).
    """
    itop = alpha_curve.size - 2
    too_rare = target > alpha_curve[1]
    # AFNI's bracket (the first s in 1..itop-1 with alpha[s] >= A >= alpha[s+1], else itop) is,
    # alpha being non-increasing, the number of sizes with alpha > A, within 1..itop
    above = int(np.count_nonzero(alpha_curve[1 : itop + 1] > target))
    s = 1 if too_rare else min(max(above, 1), itop)
    lo, hi = alpha_curve[s], alpha_curve[s + 1]
    if lo >= 1:
        lo = 1.0 - 0.1 / iterations
    if hi <= 0:
        hi = 0.1 / iterations
    if hi >= lo:
        hi = 0.1 * lo
    size = s + (_gumbel(target) - _gumbel(lo)) / (_gumbel(hi) - _gumbel(lo))
    return np.float32(max(size, 1.0)), bool(too_rare)


def monotone_table(table: np.ndarray) -> np.ndarray:
    """AFNI's fix-ups: non-increasing down each alpha column, non-decreasing along each p row."""
    t = np.array(table, dtype=np.float32, copy=True)
    n_p, n_a = t.shape
    for j in range(n_a):
        for i in range(n_p - 2, -1, -1):
            if t[i, j] < t[i + 1, j]:
                t[i, j] = t[i + 1, j]
    for i in range(n_p):
        for j in range(1, n_a):
            if t[i, j] < t[i, j - 1]:
                t[i, j] = t[i, j - 1]
    return t


@dataclass
class AlphaWarning:
    pthr: float
    alpha: float
    max_alpha: float


def cluster_table(
    max_sizes: np.ndarray,
    athr: Sequence[float],
    iterations: int,
    nodec: bool = False,
    warnings: list[AlphaWarning] | None = None,
    pthr: Sequence[float] | None = None,
) -> np.ndarray:
    """Cluster-size table (n_p, n_alpha) from per-iteration maxima of shape (iterations, n_p)."""
    max_sizes = np.asarray(max_sizes)
    n_p = max_sizes.shape[1]
    table = np.zeros((n_p, len(athr)), dtype=np.float32)
    for i in range(n_p):
        curve = tail_probabilities(max_sizes[:, i], iterations)
        for j, a in enumerate(athr):
            size, too_rare = cluster_size_for_alpha(curve, float(a), iterations)
            if too_rare and warnings is not None:
                warnings.append(AlphaWarning(pthr[i] if pthr else float("nan"), a, curve[1]))
            if nodec:
                size = np.float32(int(size + np.float32(0.951)))
            table[i, j] = size
    return monotone_table(table)


# --------------------------------------------------------------------------------------------
# Monte-Carlo error of a cell


def ceil_threshold(size: float) -> int:
    """The whole-voxel threshold 1d_tool.py takes from a cell: the ceiling of its ``%.1f`` text."""
    return math.ceil(float("%.1f" % size))


@dataclass(frozen=True)
class ThresholdUncertainty:
    """Monte-Carlo error of one cluster-size threshold.

    Attributes
    ----------
    size : float
        The table cell (voxels, fractional).
    se : float
        Standard error (voxels).
    interval : (float, float)
        95 % interval, ``size ± 1.96·se``.
    threshold : int
        The whole-voxel threshold (ceiling of the cell as printed).
    stable : bool
        Whether both ends of the interval give the same whole-voxel threshold.
    """

    size: float
    se: float
    interval: tuple[float, float]
    threshold: int
    stable: bool

    def as_dict(self) -> dict:
        """JSON-ready (params.json)."""
        return {
            "size": round(float(self.size), 4),
            "mc_se": round(float(self.se), 4),
            "ci95": [round(float(v), 4) for v in self.interval],
            "threshold": int(self.threshold),
            "stable": bool(self.stable),
            "method": "binomial interval of the tail count (distribution-free quantile CI)",
        }


def threshold_uncertainty(
    max_sizes: np.ndarray, alpha: float, iterations: int, size: float | None = None
) -> ThresholdUncertainty:
    """Monte-Carlo error of the cluster size at ``alpha`` from one column of maxima.

    ``size`` is the table's value for the cell (default: the unadjusted interpolation).
    """
    curve = tail_probabilities(max_sizes, iterations)
    if size is None:
        size = float(cluster_size_for_alpha(curve, alpha, iterations)[0])
    half = Z95 * math.sqrt(alpha * (1.0 - alpha) / iterations)
    floor = 0.1 / iterations
    upper = float(cluster_size_for_alpha(curve, max(alpha - half, floor), iterations)[0])
    lower = float(cluster_size_for_alpha(curve, min(alpha + half, 0.5), iterations)[0])
    se = max(upper - lower, 0.0) / (2 * Z95)
    return uncertainty_from_se(float(size), se)


def uncertainty_from_se(size: float, se: float) -> ThresholdUncertainty:
    """Interval ``size ± 1.96 se`` and whether it gives one whole-voxel threshold."""
    lower, upper = size - Z95 * se, size + Z95 * se
    stable = ceil_threshold(max(lower, 0.0)) == ceil_threshold(upper)
    return ThresholdUncertainty(size, se, (lower, upper), ceil_threshold(size), stable)


# --------------------------------------------------------------------------------------------
# in-memory result


@dataclass
class ClustSimTables:
    """All cluster-size tables of one simulation.

    Attributes
    ----------
    pthr, athr : tuple of float
        Row (p) and column (alpha) labels.
    iterations : int
    tables : ndarray of float32, shape (3, 3, n_p, n_alpha)
        Sidedness (1sided, 2sided, bisided) × NN (1, 2, 3) tables, as AFNI prints them.
    max_sizes : ndarray of int32, shape (iterations, 3, 3, n_p)
        Largest cluster per iteration.
    warnings : list of AlphaWarning
        Cells whose alpha was never reached (AFNI's "max simulated alpha" warning).
    nodec : bool
    mask_count : int
    """

    pthr: tuple[float, ...]
    athr: tuple[float, ...]
    iterations: int
    tables: np.ndarray
    max_sizes: np.ndarray
    warnings: list[AlphaWarning] = field(default_factory=list)
    nodec: bool = False
    mask_count: int = 0

    def _index(self, pthr: float, alpha: float, nn: int, sided: str) -> tuple[int, int, int, int]:
        if sided not in SIDEDNESS:
            raise ValueError(f"sidedness must be one of {', '.join(SIDEDNESS)}, not {sided!r}")
        if nn not in (1, 2, 3):
            raise ValueError(f"NN must be 1, 2 or 3, not {nn!r}")
        try:
            i = [float(p) for p in self.pthr].index(float(pthr))
            j = [float(a) for a in self.athr].index(float(alpha))
        except ValueError as err:
            raise ValueError(f"no table cell for pthr={pthr}, alpha={alpha}") from err
        return SIDEDNESS.index(sided), nn - 1, i, j

    def table(self, nn: int, sided: str) -> np.ndarray:
        """The (n_p, n_alpha) table for one NN and sidedness."""
        return self.tables[SIDEDNESS.index(sided), nn - 1]

    def threshold(self, pthr: float, alpha: float, nn: int, sided: str) -> float:
        """Cluster size (voxels, fractional) for one cell."""
        s, n, i, j = self._index(pthr, alpha, nn, sided)
        return float(self.tables[s, n, i, j])

    def threshold_uncertainty(
        self, pthr: float, alpha: float, nn: int, sided: str
    ) -> ThresholdUncertainty:
        """Monte-Carlo standard error and 95 % interval of one cell."""
        s, n, i, j = self._index(pthr, alpha, nn, sided)
        return threshold_uncertainty(
            self.max_sizes[:, s, n, i], float(self.athr[j]), self.iterations,
            float(self.tables[s, n, i, j]),
        )  # fmt: skip

    def standard_errors(self) -> np.ndarray:
        """Monte-Carlo standard error of every cell, same shape as :attr:`tables`."""
        out = np.zeros(self.tables.shape, dtype=np.float64)
        for s in range(3):
            for n in range(3):
                for i in range(len(self.pthr)):
                    for j, a in enumerate(self.athr):
                        out[s, n, i, j] = threshold_uncertainty(
                            self.max_sizes[:, s, n, i], float(a), self.iterations,
                            float(self.tables[s, n, i, j]),
                        ).se  # fmt: skip
        return out


def clustsim(
    mask: np.ndarray,
    voxel_sizes: Sequence[float],
    acf: Sequence[float],
    *,
    iterations: int = DEFAULT_ITERATIONS,
    seed: int = DEFAULT_SEED,
    pthr: Sequence[float] | None = None,
    athr: Sequence[float] | None = None,
    both: bool = True,
    nodec: bool = False,
    n_jobs: int = 1,
    progress: bool = False,
    ok_small_mask: bool = False,
    exact_fft: bool = False,
) -> ClustSimTables:
    """3dClustSim ``-acf`` on arrays: every NN × sidedness cluster-size table, in memory.

    Parameters
    ----------
    mask : ndarray, shape (nx, ny, nz)
        Non-zero = in the search region; noise is made on the whole grid.
    voxel_sizes : sequence of 3 floats
        mm (absolute values are used).
    acf : (a, b, c)
        Mixed-ACF parameters (0 <= a <= 1, b > 0, c > 0).
    iterations : int
        At least 2000 (AFNI's minimum).
    seed : int
        The result depends only on the seed (not on ``n_jobs``).
    pthr, athr : sequence of float, optional
        p and alpha lists (0 < value <= 0.5); default AFNI's LOTS lists when ``both`` else its
        default lists.
    both : bool
        Default lists of ``-both`` (29 p × 10 alpha) rather than 9 × 4.
    nodec : bool
        Round sizes up to whole voxels (``-nodec``).
    n_jobs : int
        Threads.
    progress : bool
        Progress lines on stderr.
    ok_small_mask : bool
        Accept masks of 2..127 voxels.
    exact_fft : bool
        Exact DFTs instead of the transforms AFNI_26.2.03 applies.

    Returns
    -------
    ClustSimTables

    Raises
    ------
    ValueError
        Bad ACF, p/alpha values, grid or mask size, or fewer than 2000 iterations.
    """
    mask = np.asarray(mask) != 0
    a, b, c = check_acf(acf)
    count = check_grid(mask, ok_small_mask)
    if len(voxel_sizes) != 3 or not all(abs(float(v)) > 0 for v in voxel_sizes):
        raise ValueError(f"voxel sizes must be 3 non-zero numbers, not {list(voxel_sizes)}")
    if int(iterations) < MIN_ITERATIONS:
        raise ValueError(f"need at least {MIN_ITERATIONS} iterations, not {iterations}")
    p_list = check_probabilities(pthr, "-pthr") if pthr is not None else (
        LOTS_PTHR if both else DEFAULT_PTHR
    )  # fmt: skip
    a_list = check_probabilities(athr, "-athr") if athr is not None else (
        LOTS_ATHR if both else DEFAULT_ATHR
    )  # fmt: skip
    iterations = int(iterations)
    sizes = simulate_max_cluster_sizes(
        mask, voxel_sizes, (a, b, c), p_list, iterations,
        seed=seed, n_jobs=n_jobs, progress=progress, exact_fft=exact_fft,
    )  # fmt: skip
    warnings: list[AlphaWarning] = []
    tables = np.zeros((3, 3, len(p_list), len(a_list)), dtype=np.float32)
    for s in range(3):
        for n in range(3):
            tables[s, n] = cluster_table(
                sizes[:, s, n, :], a_list, iterations, nodec, warnings, p_list
            )
    return ClustSimTables(
        tuple(p_list), tuple(a_list), iterations, tables, sizes, warnings, nodec, count
    )
