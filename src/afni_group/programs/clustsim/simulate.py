"""3dClustSim's Monte Carlo on arrays: noise, thresholds, the largest cluster per iteration.

:func:`clustsim` takes a boolean mask, voxel sizes and the ACF, runs the simulation
(:mod:`.noise` makes the smooth noise, :mod:`.kernels` finds the clusters) and returns a
:class:`~.core.ClustSimTables` (all NN × sidedness tables in memory, the per-iteration maxima,
and their Monte-Carlo error), built by :mod:`.core`. Bad values raise :class:`ValueError`;
nothing is read or written here (files: :mod:`.files`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from afni_group.programs.checks import check_acf, check_probabilities
from afni_group.programs.clustsim.core import (
    DEFAULT_ATHR,
    DEFAULT_PTHR,
    LOTS_ATHR,
    LOTS_PTHR,
    AlphaWarning,
    ClustSimTables,
    cluster_table,
)
from afni_group.programs.clustsim.kernels import ClusterWork, gather_pair
from afni_group.programs.clustsim.noise import (
    NoiseSource,
    grid_transforms,
    noise_grid,
    spectral_weights,
)
from afni_group.progress import Progress

# simulation parameters (spec 05 §1)
DEFAULT_SEED = 123456789
DEFAULT_ITERATIONS = 10000
MIN_ITERATIONS = 2000
MIN_MASK_VOXELS = 128
MIN_GRID_VOXELS = 256
#: volume pairs per work item: the unit the threads share (results do not depend on it)
CHUNK_PAIRS = 16


# --------------------------------------------------------------------------------------------
# checks (ValueError; the file level turns them into the CLI's errors)


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
    first_iteration: int = 0,
    label: str = "3dClustSim",
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
    first_iteration : int
        Even index of the first iteration: a later batch of the same simulation. Batches
        ``[0, n)`` and ``[n, n + m)`` together equal one run of ``n + m`` iterations (volume
        pair ``k`` depends only on the seed and ``k``).
    label : str
        Name on the progress lines.

    Returns
    -------
    ndarray of int32, shape (iterations, 3, 3, len(pthr))
        Axes: iteration, sidedness (1sided, 2sided, bisided), NN (1, 2, 3), p. Iterations
        2k and 2k+1 are the real and imaginary part of volume pair k.
    """
    if first_iteration % 2:
        raise ValueError(f"a batch starts at an even iteration, not {first_iteration}")
    first_pair = int(first_iteration) // 2
    mask = np.asarray(mask, dtype=bool)
    grid = noise_grid(mask.shape, voxel_sizes, acf)
    transforms = grid_transforms(grid, exact_fft)
    weights, _ = spectral_weights(grid, transforms)
    in_mask = np.ascontiguousarray(mask).ravel()
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
            per_thread.values = np.empty((2, int(np.count_nonzero(in_mask))), dtype=np.float32)
        source, work, values = per_thread.source, per_thread.work, per_thread.values
        spent = SimulationTiming()
        done = 0
        for p in range(first, last):
            t0 = time.perf_counter()
            pair = source.pair(first_pair + p, contiguous=False)
            t1 = time.perf_counter()
            gather_pair(pair, in_mask, values)
            for part in range(2):
                it = 2 * p + part
                if it >= iterations:
                    break
                work.max_sizes(values[part], result[it])
                done += 1
            spent.fft += t1 - t0
            spent.clustering += time.perf_counter() - t1
        timings.append(spent)
        return done

    t_start = time.perf_counter()
    bar = Progress(label, iterations, "iterations", enabled=progress)
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
    return tables_from_sizes(sizes, p_list, a_list, nodec, count)


def tables_from_sizes(
    sizes: np.ndarray,
    pthr: Sequence[float],
    athr: Sequence[float],
    nodec: bool = False,
    mask_count: int = 0,
) -> ClustSimTables:
    """Every NN × sidedness table from the per-iteration maxima of
    :func:`simulate_max_cluster_sizes` (shape (iterations, 3, 3, len(pthr)))."""
    iterations = int(sizes.shape[0])
    warnings: list[AlphaWarning] = []
    tables = np.zeros((3, 3, len(pthr), len(athr)), dtype=np.float32)
    for s in range(3):
        for n in range(3):
            tables[s, n] = cluster_table(sizes[:, s, n, :], athr, iterations, nodec, warnings, pthr)
    return ClustSimTables(
        tuple(pthr), tuple(athr), iterations, tables, sizes, warnings, nodec, mask_count
    )
