"""Native 3dClustSim (``-acf`` noise model, all NN and sidedness tables).

Monte-Carlo cluster-size thresholds as AFNI's 3dClustSim computes them (spec 05): smooth Gaussian
noise with the mixed ACF ``a*exp(-r²/(2b²)) + (1-a)*exp(-r/c)`` made by FFT on a zero-padded copy
of the mask dataset's grid, unit-RMS scaled and masked; analytic z thresholds per p; the largest
cluster per iteration for NN1/NN2/NN3 and the 1-sided, 2-sided and bi-sided rules; tail
probabilities turned into cluster sizes by interpolation in ``log(-log(1-alpha))``.

The results agree with AFNI statistically (the random streams differ); the output files follow
AFNI's text layouts byte for byte.

Speed: complex white noise gives two volumes per inverse transform; the transform is pruned to
the cropped output region axis by axis; all thresholds of a volume are handled in one union-find
pass (:mod:`clustsim_kernels`); iterations are split into fixed-size chunks with their own random
streams (so a seed gives the same tables whatever the number of threads) run on a thread pool.
"""

from __future__ import annotations

import base64
import math
import os
import secrets
import string
import sys
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft
from scipy.special import ndtri

from afni_group import atomic
from afni_group.engines.native.argv import is_number
from afni_group.engines.native.clustsim_kernels import (
    gather_scaled,
    neighbour_table,
    volume_max_sizes,
)
from afni_group.errors import InputDataError, MissingInputError, OutputError, UsageError
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
SIDED_TEXT = {"1sided": "1-sided", "2sided": "2-sided", "bisided": "bi-sided"}
#: iterations per random stream: fixed, so the tables do not depend on the thread count
CHUNK_ITERATIONS = 64
#: characters AFNI's THD_filename_ok rejects (plus control, blanks and bytes >= 128)
_BAD_NAME_CHARS = set(";*?&|\"><'[](){}!")


# --------------------------------------------------------------------------------------------
# ACF model and FFT grid (spec 05 §3.1–3.3)


def acf_value(r: float | np.ndarray, acf: Sequence[float]) -> np.ndarray:
    """Mixed ACF ``a*exp(-r²/(2b²)) + (1-a)*exp(-r/c)`` at radius ``r`` (mm), in float32."""
    a, b, c = (np.float32(v) for v in acf)
    r = np.asarray(r, dtype=np.float32)
    with np.errstate(over="ignore", under="ignore"):
        return a * np.exp(np.float32(-0.5) * r * r / (b * b)) + (np.float32(1) - a) * np.exp(-r / c)


def acf_radius(value: float, acf: Sequence[float]) -> float:
    """Radius (mm) at which the ACF falls to ``value`` (AFNI's march + two regula-falsi steps)."""
    a, b, c = (np.float32(v) for v in acf)
    v = np.float32(value)
    if v >= 1:
        return 0.0
    rtop = np.float32(3) * b + np.float32(6) * c
    if v <= 0.0001:
        return float(rtop)
    dr = min(np.float32(0.02) * b, np.float32(0.02) * c)

    def f(r):
        return acf_value(r, (a, b, c))

    r = np.float32(0)
    while r < rtop and not f(r + dr) < v:
        r = np.float32(r + dr)
    if r >= rtop:
        return float(rtop)
    rlo, rhi = r, np.float32(r + dr)

    def falsi(lo, hi):
        v0, v1 = f(lo), f(hi)
        dv = v0 - v1
        if dv == 0 or abs(dv) < 0.005 * (abs(v - v0) + abs(v - v1)):
            return lo
        return np.float32(lo + (v0 - v) / dv * (hi - lo))

    x = falsi(rlo, rhi)
    if f(x) > v:
        rlo = x
    else:
        rhi = x
    return float(falsi(rlo, rhi))


def fft_length(n: int) -> int:
    """Smallest even length >= n of the form 2^k·m, k >= 1, m in {1, 3, 5, 15}."""
    n = max(int(n), 2)
    best = None
    for m in (1, 3, 5, 15):
        length = 2 * m
        while length < n:
            length *= 2
        best = length if best is None else min(best, length)
    return best


@dataclass(frozen=True)
class NoiseGrid:
    """Geometry of the padded FFT grid for one mask grid and ACF."""

    shape: tuple[int, int, int]  # nx, ny, nz of the mask grid
    voxel_sizes: tuple[float, float, float]
    acf: tuple[float, float, float]
    radius: float  # kernel radius rinv(0.02), mm
    fwhm: float  # 2·rinv(0.5), mm
    padded: tuple[int, int, int]
    offsets: tuple[int, int, int]  # crop start per axis


def noise_grid(
    shape: Sequence[int], voxel_sizes: Sequence[float], acf: Sequence[float]
) -> NoiseGrid:
    """Padded FFT grid: ``n + 2·ceil(R/d)`` (at least 16) rounded up to :func:`fft_length`."""
    radius = acf_radius(0.02, acf)
    fwhm = 2 * acf_radius(0.5, acf)
    padded = []
    for n, d in zip(shape, voxel_sizes, strict=True):
        n_pad = max(int(n) + 2 * math.ceil(np.float32(radius) / np.float32(abs(d))), 16)
        padded.append(fft_length(n_pad))
    offsets = tuple((p - int(n)) // 2 for p, n in zip(padded, shape, strict=True))
    return NoiseGrid(
        tuple(int(n) for n in shape),
        tuple(abs(float(d)) for d in voxel_sizes),
        tuple(float(v) for v in acf),
        radius,
        fwhm,
        tuple(padded),
        offsets,
    )


def spectral_weights(grid: NoiseGrid) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Square root of the ACF's power spectrum on the padded grid, as a full k-space array.

    Returns the float32 weight array of shape ``grid.padded`` (the kept octant mirrored to the
    other seven; DC, Nyquist and dropped planes are 0) and the kept octant size (AFNI's "kernel
    image dimensions").
    """
    axes = []
    for n, d in zip(grid.padded, grid.voxel_sizes, strict=True):
        i = np.arange(n)
        dist = np.where(i < n // 2, i, n - i) * d
        axes.append(dist)
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    w0 = acf_value(np.sqrt(x * x + y * y + z * z), grid.acf).astype(np.float64)
    hx, hy, hz = (n // 2 for n in grid.padded)
    w0[hx, :, :] = 0
    w0[:, hy, :] = 0
    w0[:, :, hz] = 0
    spec = np.fft.fftn(w0).real
    dc = abs(spec[0, 0, 0])
    octant = spec[:hx, :hy, :hz]
    octant = np.where(octant < 1e-5 * dc, 0.0, np.sqrt(np.maximum(octant, 0.0)))
    # AFNI shrinks the octant with MRI_autobbox; in practice that drops the last index plane
    # (h-1) of each axis when the octant is non-zero out to it (spec 05 §3.3).
    keep = []
    for axis, h in enumerate((hx, hy, hz)):
        other = tuple(a for a in range(3) if a != axis)
        nonzero = np.flatnonzero(np.any(octant != 0, axis=other))
        top = int(nonzero[-1]) if nonzero.size else 0
        keep.append(top + 1 if top < h - 1 else h - 1)
    w = octant[: keep[0], : keep[1], : keep[2]]
    full = np.zeros(grid.padded, dtype=np.float32)
    folds = []
    for n, k in zip(grid.padded, keep, strict=True):
        i = np.arange(n)
        folded = np.minimum(i, n - i)
        folds.append(np.where(folded < k, folded, -1))
    fx, fy, fz = folds
    valid = (fx[:, None, None] >= 0) & (fy[None, :, None] >= 0) & (fz[None, None, :] >= 0)
    full[valid] = w[
        np.broadcast_to(fx[:, None, None], valid.shape)[valid],
        np.broadcast_to(fy[None, :, None], valid.shape)[valid],
        np.broadcast_to(fz[None, None, :], valid.shape)[valid],
    ]
    full[0, 0, 0] = 0
    return full, (keep[0], keep[1], keep[2])


class NoiseSource:
    """Smooth unit-variance noise volumes (pairs from one complex transform) on a mask grid.

    Parameters
    ----------
    grid : NoiseGrid
    weights : ndarray
        From :func:`spectral_weights`.
    rng : numpy.random.Generator
    """

    def __init__(self, grid: NoiseGrid, weights: np.ndarray, rng: np.random.Generator):
        self.grid = grid
        self.weights = weights[..., None]  # broadcast over (real, imag)
        self.rng = rng
        self._buffer = np.empty(grid.padded, dtype=np.complex64)
        self.time_noise = 0.0
        self.time_fft = 0.0

    def pair(self) -> np.ndarray:
        """One complex volume on the crop grid; real and imaginary parts are two noise fields."""
        t0 = time.perf_counter()
        floats = self._buffer.view(np.float32).reshape(*self.grid.padded, 2)
        self.rng.standard_normal(out=floats.reshape(-1), dtype=np.float32)
        floats *= self.weights
        t1 = time.perf_counter()
        out = pruned_fft(self._buffer, self.grid.offsets, self.grid.shape)
        self.time_noise += t1 - t0
        self.time_fft += time.perf_counter() - t1
        return out


def pruned_fft(volume: np.ndarray, offsets: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Forward 3-D FFT of ``volume`` keeping only the crop ``offsets : offsets + shape``.

    One axis at a time, dropping the rows outside the crop after each axis, which saves about a
    third of a full transform. ``volume`` is overwritten.
    """
    ox, oy, oz = offsets
    nx, ny, nz = shape
    out = scipy.fft.fft(volume, axis=2, overwrite_x=True, workers=1)[:, :, oz : oz + nz]
    out = scipy.fft.fft(out, axis=1, overwrite_x=True, workers=1)[:, oy : oy + ny, :]
    out = scipy.fft.fft(out, axis=0, overwrite_x=True, workers=1)[ox : ox + nx]
    return np.ascontiguousarray(out)


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


class _ClusterWork:
    """Per-thread workspace for :func:`volume_max_sizes`."""

    def __init__(self, mask_index: np.ndarray, neighbours: np.ndarray):
        n = mask_index.size
        self.mask_index = mask_index
        self.neighbours = neighbours
        self.parent = np.empty((3, n), dtype=np.int32)
        self.size = np.empty((3, n), dtype=np.int32)
        self.stamp = np.zeros(n, dtype=np.int32)
        self.stamp_base = 1

    def max_sizes(self, values: np.ndarray, z1, z2, out: np.ndarray) -> None:
        """Fill ``out`` (3 sidedness, 3 NN, n_p) for one volume's in-mask ``values``."""
        if self.stamp_base > 2**31 - 8:
            self.stamp[:] = 0
            self.stamp_base = 1
        volume_max_sizes(
            values, self.neighbours, z1, z2, self.parent, self.size, self.stamp,
            self.stamp_base, out[0], out[1], out[2],
        )  # fmt: skip
        self.stamp_base += 3


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

    Returns
    -------
    ndarray of int32, shape (iterations, 3, 3, len(pthr))
        Axes: iteration, sidedness (1sided, 2sided, bisided), NN (1, 2, 3), p.
    """
    mask = np.asarray(mask, dtype=bool)
    grid = noise_grid(mask.shape, voxel_sizes, acf)
    weights, _ = spectral_weights(grid)
    mask_index = np.flatnonzero(mask).astype(np.int64)
    neighbours = neighbour_table(mask)
    z1, z2 = z_thresholds(pthr)
    iterations = int(iterations)
    result = np.zeros((iterations, 3, 3, len(pthr)), dtype=np.int32)
    chunks = [
        (start, min(start + CHUNK_ITERATIONS, iterations))
        for start in range(0, iterations, CHUNK_ITERATIONS)
    ]
    seed = int(seed) & 0xFFFFFFFF
    timings: list[SimulationTiming] = []

    def run_chunk(chunk: int) -> int:
        start, stop = chunks[chunk]
        stream = np.random.SeedSequence(seed, spawn_key=(chunk,))
        rng = np.random.Generator(np.random.SFC64(stream))
        source = NoiseSource(grid, weights, rng)
        work = _ClusterWork(mask_index, neighbours)
        tcl = 0.0
        pair = None
        for it in range(start, stop):
            k = it - start
            if k % 2 == 0:
                pair = source.pair()
            t0 = time.perf_counter()
            values = gather_scaled(pair, k % 2 == 1, mask_index)
            work.max_sizes(values, z1, z2, result[it])
            tcl += time.perf_counter() - t0
        timings.append(SimulationTiming(source.time_noise, source.time_fft, tcl))
        return stop - start

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
        timing.noise = sum(t.noise for t in timings)
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
    if too_rare:
        s = 1
    else:
        s = itop
        for k in range(1, itop):
            if alpha_curve[k] >= target and alpha_curve[k + 1] <= target:
                s = k
                break
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
# text formats (spec 05 §6)


def _prob6(x: float) -> str:
    if np.float32(x) >= np.float32(0.0001):
        return ("%7.5f" % x)[1:]
    dec = int(0.9999 - math.log10(x))
    return ("%4.1fe-%1d" % (x * 10**dec, dec))[1:]


def _prob9(x: float) -> str:
    if np.float32(x) >= np.float32(0.0001):
        return "%9.6f" % x
    dec = int(0.9999 - math.log10(x))
    return "%6.3fe-%1d" % (x * 10**dec, dec)


def _cell(value: float, nodec: bool) -> str:
    if nodec:
        return "%7d" % int(value)
    return ("%7.1f" if value <= 9999.9 else "%7.0f") % value


def quote_command_line(argv: Sequence[str]) -> str:
    """AFNI's command-line echo: ``3dClustSim`` + args, quoting ones with forbidden characters."""
    words = ["3dClustSim"]
    for arg in argv:
        if not arg:
            continue
        if filename_ok(arg):
            words.append(arg)
        else:
            clean = "".join(" " if (ord(ch) < 33 or ord(ch) >= 127) else ch for ch in arg)
            words.append(f"'{clean}'")
    return " ".join(words)


def filename_ok(name: str) -> bool:
    """AFNI's ``THD_filename_ok``: no control, blank, high-bit or shell-special characters."""
    return bool(name) and all(33 <= ord(ch) < 127 and ch not in _BAD_NAME_CHARS for ch in name)


@dataclass
class TableInfo:
    """What the table headers need to say."""

    command_line: str
    shape: tuple[int, int, int]
    voxel_sizes: tuple[float, float, float]
    mask_count: int
    iterations: int
    pthr: tuple[float, ...]
    athr: tuple[float, ...]
    nodec: bool = False
    mask_idcode: str | None = None
    mask_name: str | None = None
    extra: dict = field(default_factory=dict)


def format_1d_table(table: np.ndarray, nn: int, sided: str, info: TableInfo) -> str:
    """The ``PREFIX.NNk_SIDED.1D`` text."""
    nx, ny, nz = info.shape
    dx, dy, dz = info.voxel_sizes
    in_mask = " in mask" if info.mask_count < nx * ny * nz else ""
    lines = [
        f"# {info.command_line}",
        f"# {SIDED_TEXT[sided]} thresholding",
        f"# Grid: {nx}x{ny}x{nz} {dx:.2f}x{dy:.2f}x{dz:.2f} mm^3 "
        f"({info.mask_count} voxels{in_mask})",
        "#",
        "# CLUSTER SIZE THRESHOLD(pthr,alpha) in Voxels",
        f"# -NN {nn}  | alpha = Prob(Cluster >= given size)",
        "#  pthr  |" + "".join(" " + _prob6(a) for a in info.athr),
        "# ------ |" + " ------" * len(info.athr),
    ]
    for p, row in zip(info.pthr, table, strict=True):
        lines.append(_prob9(p) + " " + "".join(_cell(float(v), info.nodec) for v in row))
    return "\n".join(lines) + "\n"


def _niml_escape(text: str) -> str:
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&apos;"),
                 ("\r", "&#x0d;"), ("\n", "&#x0a;")):  # fmt: skip
        text = text.replace(a, b)
    return text


def _niml_number(x: float) -> str:
    v = float(np.float32(x))
    if v == int(v):
        return "%d" % int(v)
    return ("%12.6g" % v).strip()


def _niml_list(values: Sequence[float]) -> str:
    out: list[str] = []
    items = [_niml_number(v) for v in values]
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[i]:
            j += 1
        n = j - i + 1
        out.append(f"{n}@{items[i]}" if n > 1 else items[i])
        i = j + 1
    return ",".join(out)


def format_niml_table(table: np.ndarray, nn: int, sided: str, info: TableInfo) -> str:
    """The ``PREFIX.NNk_SIDED.niml`` text."""
    n_a = len(info.athr)
    nx, ny, nz = info.shape
    dx, dy, dz = info.voxel_sizes
    attrs = [
        ("ni_type", f"{n_a}*float" if n_a > 1 else "float"),
        ("ni_dimen", str(len(info.pthr))),
        ("commandline", info.command_line),
        ("thresholding", SIDED_TEXT[sided]),
        ("nxyz", f"{nx},{ny},{nz}"),
        ("dxyz", f"{dx:.3f},{dy:.3f},{dz:.3f}"),
        ("fwhmxyz", "0.00,0.00,0.00"),
        ("iter", str(info.iterations)),
        ("pthr", _niml_list(info.pthr)),
        ("athr", _niml_list(info.athr)),
    ]
    if info.mask_name is not None:
        attrs += [
            ("mask_dset_idcode", info.mask_idcode or random_idcode()),
            ("mask_dset_name", info.mask_name),
            ("mask_count", str(info.mask_count)),
        ]
    text = f"<3dClustSim_NN{nn}"
    text += "".join(f'\n  {k}="{_niml_escape(v)}"' for k, v in attrs) + " >\n"
    for row in table:
        text += "".join(" " + ("%14.7g" % float(np.float32(v))).strip() for v in row) + "\n"
    return text + f"</3dClustSim_NN{nn}>\n\n"


def random_idcode() -> str:
    """A fresh AFNI-shaped idcode ``XYZ_`` + 22 characters (for masks that carry none)."""
    alphabet = string.ascii_letters + string.digits
    return "XYZ_" + "".join(secrets.choice(alphabet) for _ in range(22))


def encode_mask(mask: np.ndarray) -> str:
    """AFNI's ``PREFIX.mask`` text: bit-packed (i fastest), zlib level 9, base64, ``===nvox``."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    packed = np.packbits(flat, bitorder="little").tobytes()
    b64 = base64.b64encode(zlib.compress(packed, 9)).decode("ascii")
    lines = [b64[i : i + 72] for i in range(0, len(b64), 72)]
    return "\n".join(lines) + f"==={flat.size}\n"


def decode_mask(text: str, shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`encode_mask` (for tests and for reading AFNI's files)."""
    body, _, nvox = text.strip().rpartition("===")
    packed = zlib.decompress(base64.b64decode("".join(body.split())))
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), bitorder="little")
    return bits[: int(nvox)].astype(bool).reshape(tuple(shape), order="F")


def format_cmd(prefix_text: str, with_mask: bool = True, niml: bool = True) -> str:
    """The ``3dClustSim.cmd`` line (3drefit fragment), with its trailing blank."""
    parts = ["3drefit "]
    first = True
    for sided in SIDEDNESS:
        for nn in (1, 2, 3):
            name = f"NN{nn}_{sided}"
            parts.append(f"-atrstring AFNI_CLUSTSIM_{name} file:{prefix_text}.{name}.niml ")
            if first and with_mask:
                parts.append(f"-atrstring AFNI_CLUSTSIM_MASK file:{prefix_text}.mask ")
            first = False
    return "".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# validation and input


def validate_acf(acf: Sequence[float]) -> tuple[float, float, float]:
    """AFNI's -acf checks: 0 <= a <= 1, b > 0, c > 0."""
    if len(acf) != 3:
        raise UsageError("-acf: need 3 arguments after -acf (a b c)")
    try:
        a, b, c = (float(v) for v in acf)
    except (TypeError, ValueError) as err:
        raise UsageError(f"-acf: values {list(acf)} are not numbers") from err
    if not 0 <= a <= 1:
        raise UsageError(f"-acf: 'a' value should be between 0 and 1 (got {a})")
    if not b > 0:
        raise UsageError(f"-acf: 'b' value should be positive (got {b})")
    if not c > 0:
        raise UsageError(f"-acf: 'c' value should be positive (got {c})")
    return a, b, c


def _validate_plist(values: Sequence[float], option: str) -> tuple[float, ...]:
    out = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            x = float("nan")
        if not 0 < x <= 0.5:
            raise UsageError(f"value '{v}' after '{option}' is illegal! (need 0 < value <= 0.5)")
        out.append(x)
    if not out:
        raise UsageError(f"need at least one value after '{option}'")
    return tuple(sorted(out, reverse=True))


@dataclass
class MaskInfo:
    mask: np.ndarray  # bool (nx, ny, nz)
    voxel_sizes: tuple[float, float, float]
    idcode: str | None
    name: str


def load_mask(spec: str | Path) -> MaskInfo:
    """Sub-brick 0 of the mask dataset, non-zero = in mask; grid, idcode, header name."""
    spec = str(spec)
    base, selector = (spec.split("[", 1)[0], True) if spec.endswith("]") else (spec, False)
    try:
        from afni_group import afni_io
    except ImportError:  # afni_io not available yet: NIfTI only
        afni_io = None
    if afni_io is not None:
        dset = afni_io.read_dataset(spec if selector else base)
        data = np.asarray(dset.data)
        data = data[..., 0] if data.ndim == 4 else data
        sizes = tuple(abs(float(v)) for v in dset.voxel_sizes)
        idcode = dset.attributes.get("IDCODE_STRING") if dset.attributes else None
        if isinstance(idcode, list | tuple):
            idcode = idcode[0] if idcode else None
        idcode = str(idcode).rstrip("\0").strip() if idcode else None
    else:
        import nibabel as nib

        if not Path(base).exists():
            raise MissingInputError(f"-mask: can't open dataset {base}; check the path")
        img = nib.load(base)
        data = np.asanyarray(img.dataobj)
        while data.ndim > 3:
            data = data[..., 0]
        sizes = tuple(abs(float(v)) for v in img.header.get_zooms()[:3])
        idcode = None
    mask = np.asarray(data) != 0
    return MaskInfo(mask, sizes, idcode or None, mask_header_name(base))


def mask_header_name(path: str) -> str:
    """``mask_dset_name``: real path for NIfTI; ``dir/PREFIX+VIEW.HEAD`` as given for HEAD/BRIK."""
    p = str(path)
    low = p.lower()
    if low.endswith((".nii", ".nii.gz")):
        return os.path.realpath(p)
    for ext in (".HEAD", ".BRIK", ".BRIK.gz", "."):
        if p.endswith(ext):
            p = p[: -len(ext)]
            break
    head, tail = os.path.split(p)
    return f"{head or '.'}/{tail}.HEAD"


def check_simulation_grid(mask: np.ndarray, ok_small_mask: bool = False) -> int:
    """AFNI's grid and mask-size checks; returns the mask voxel count."""
    nx, ny, nz = mask.shape
    if nx < 4 or ny < 4 or nz < 4:
        raise InputDataError(f"-acf option: minimum grid is 4x4x4, but you have {nx}x{ny}x{nz}")
    if mask.size < MIN_GRID_VOXELS:
        raise InputDataError(
            f"Only {mask.size} voxels in simulation?! Need at least {MIN_GRID_VOXELS}."
        )
    count = int(mask.sum())
    if count == 0:
        raise InputDataError("-mask has no nonzero voxels -- cannot use this at all")
    minimum = 2 if ok_small_mask else MIN_MASK_VOXELS
    if count < minimum:
        raise InputDataError(
            f"-mask has only {count} nonzero voxels; 3dClustSim needs at least {minimum}"
            + ("" if ok_small_mask else " (-OKsmallmask lowers this to 2)")
        )
    return count


# --------------------------------------------------------------------------------------------
# file-level entry point


def _format_acf_arg(v: float) -> str:
    return "%.6g" % v


def run_clustsim(
    mask: str | Path,
    acf: tuple[float, float, float],
    prefix: str | Path,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    seed: int | None = None,
    both: bool = True,
    pthr: list[float] | None = None,
    athr: list[float] | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    command_line: str | None = None,
    nodec: bool = False,
    niml: bool | None = None,
    write_1d: bool = True,
    cmd_file: str | Path | None = None,
    prefix_text: str | None = None,
    ok_small_mask: bool = False,
    verbose: bool | None = None,
) -> list[Path]:
    """Run the simulation and write the tables, ``PREFIX.mask`` and ``3dClustSim.cmd``.

    Parameters
    ----------
    mask : path
        Mask dataset (grid and search region); non-zero voxels of sub-brick 0.
    acf : (a, b, c)
        Mixed-ACF parameters (0 <= a <= 1, b > 0, c > 0).
    prefix : path
        Output stem; files are ``PREFIX.NN{1,2,3}_{1sided,2sided,bisided}.{1D,niml}`` and
        ``PREFIX.mask``.
    iterations : int
        Monte-Carlo iterations (fewer than 2000 are raised to 2000, as AFNI does).
    seed : int, optional
        ``None`` = AFNI's default 123456789; 0 = from the clock.
    both : bool
        ``-both``: LOTS p/alpha lists (29 × 10) and .niml tables in addition to .1D.
    pthr, athr : list of float, optional
        Override the p / alpha lists (0 < value <= 0.5; sorted in decreasing order).
    n_jobs : int
        Threads.
    progress : bool
        Progress lines and AFNI-style INFO lines on stderr.
    command_line : str, optional
        Text for the table headers (must start with ``3dClustSim``); default: the equivalent
        AFNI command run in the prefix's folder.
    nodec : bool
        ``-nodec``: round sizes up to integers.
    niml : bool, optional
        Write .niml tables (default: ``both``).
    write_1d : bool
        Write .1D tables.
    cmd_file : path, optional
        Where to write the 3drefit fragment; default ``3dClustSim.cmd`` next to the prefix.
    prefix_text : str, optional
        How the prefix is spelt inside the .cmd file; default the prefix's file name (as when
        AFNI runs inside the output folder).
    ok_small_mask : bool
        ``-OKsmallmask``: accept masks of 2..127 voxels.

    Returns
    -------
    list of Path
        Files written, in AFNI's order.
    """
    verbose = progress if verbose is None else verbose
    a, b, c = validate_acf(acf)
    prefix = Path(prefix)
    if not filename_ok(prefix.name):
        raise UsageError(f"bad -prefix option '{prefix}': it contains a forbidden character")
    if not prefix.parent.is_dir():
        raise OutputError(f"output folder {prefix.parent} does not exist; create it first")
    niml = both if niml is None else niml
    p_list = tuple(LOTS_PTHR) if both or niml else tuple(DEFAULT_PTHR)
    a_list = tuple(LOTS_ATHR) if both or niml else tuple(DEFAULT_ATHR)
    if pthr is not None:
        p_list = _validate_plist(pthr, "-pthr")
    if athr is not None:
        a_list = _validate_plist(athr, "-athr")
    iterations = int(iterations)
    if iterations < MIN_ITERATIONS:
        if verbose:
            _warn(f"-iter {iterations} replaced by {MIN_ITERATIONS}")
        iterations = MIN_ITERATIONS
    if seed is None:
        seed = DEFAULT_SEED
    seed = int(seed) & 0xFFFFFFFF
    if seed == 0:
        seed = (int(time.time()) + 17 * os.getpid()) & 0xFFFFFFFF
        if verbose:
            print(f"++ -seed 0 resets to {seed}", file=sys.stderr)

    info_mask = load_mask(mask)
    count = check_simulation_grid(info_mask.mask, ok_small_mask)
    shape = info_mask.mask.shape
    grid = noise_grid(shape, info_mask.voxel_sizes, (a, b, c))
    if verbose:
        _, kernel = spectral_weights(grid)
        print(
            f"++ {count} voxels in mask ({100.0 * count / info_mask.mask.size:.2f}% of total)\n"
            f"++ Kernel function radius = {grid.radius:.2f} mm\n"
            f"++ ACF({a:.2f},{b:.2f},{c:.2f}) => FWHM={grid.fwhm:.2f} => "
            f"{shape[0]}x{shape[1]}x{shape[2]} pads to "
            f"{grid.padded[0]}x{grid.padded[1]}x{grid.padded[2]}\n"
            f" + Kernel image dimensions {kernel[0]} x {kernel[1]} x {kernel[2]}\n"
            f"++ Using {n_jobs} threads",
            file=sys.stderr,
        )
    if min(a_list) * iterations < 10 and verbose:
        _warn(
            f"Smallest athr={min(a_list):.6f} ==> should have at least "
            f"{int(10 / min(a_list))} iterations instead of {iterations}"
        )
    if command_line is None:
        words = ["-both"] if both else (["-niml"] if niml else [])
        words += ["-mask", Path(mask).name, "-acf"] + [_format_acf_arg(v) for v in (a, b, c)]
        if iterations != DEFAULT_ITERATIONS:
            words += ["-iter", str(iterations)]
        if seed != DEFAULT_SEED:
            words += ["-seed", str(seed)]
        if pthr is not None:
            words += ["-pthr"] + [_niml_number(v) for v in p_list]
        if athr is not None:
            words += ["-athr"] + [_niml_number(v) for v in a_list]
        if nodec:
            words.append("-nodec")
        words += ["-prefix", prefix.name]
        command_line = quote_command_line(words)

    sizes = simulate_max_cluster_sizes(
        info_mask.mask, info_mask.voxel_sizes, (a, b, c), p_list, iterations,
        seed=seed, n_jobs=n_jobs, progress=progress,
    )  # fmt: skip

    info = TableInfo(
        command_line=command_line,
        shape=tuple(int(n) for n in shape),
        voxel_sizes=info_mask.voxel_sizes,
        mask_count=count,
        iterations=iterations,
        pthr=p_list,
        athr=a_list,
        nodec=nodec,
        mask_idcode=info_mask.idcode or random_idcode(),
        mask_name=info_mask.name,
    )
    warnings: list[AlphaWarning] = []
    written: list[Path] = []
    for s, sided in enumerate(SIDEDNESS):
        for nn in (1, 2, 3):
            table = cluster_table(
                sizes[:, s, nn - 1, :], a_list, iterations, nodec, warnings, p_list
            )
            stem = f"{prefix}.NN{nn}_{sided}"
            if write_1d:
                written.append(
                    atomic.write_text(Path(stem + ".1D"), format_1d_table(table, nn, sided, info))
                )
            if niml:
                written.append(
                    atomic.write_text(
                        Path(stem + ".niml"), format_niml_table(table, nn, sided, info)
                    )
                )
                if s == 0 and nn == 1:
                    written.append(
                        atomic.write_text(Path(f"{prefix}.mask"), encode_mask(info_mask.mask))
                    )
    if verbose:
        for w in warnings[:2]:
            _warn(
                f"pthr={w.pthr:.6f} ; desired alpha={w.alpha:.6f} -- "
                f"but max simulated alpha={w.max_alpha:.6f}]"
            )
        if len(warnings) > 2:
            print(" +        [further messages about alpha are suppressed]", file=sys.stderr)
    if niml:
        cmd_path = Path(cmd_file) if cmd_file is not None else prefix.parent / "3dClustSim.cmd"
        cmd = format_cmd(prefix.name if prefix_text is None else prefix_text)
        written.append(atomic.write_text(cmd_path, cmd))
        if verbose:
            print(
                "++ Command fragment to put cluster results into a dataset header;\n"
                f" + (also echoed to file {cmd_path.name} for your scripting pleasure)\n"
                " + Append the name of the datasets to be patched to this command:\n"
                f" {cmd}",
                file=sys.stderr,
                end="",
            )
    return written


def _warn(text: str) -> None:
    print(f"*+ WARNING: {text}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# afni-native 3dClustSim


_USAGE = (
    "usage: afni-native 3dClustSim -mask M -acf a b c [-both|-niml] [-prefix P] [-iter N]\n"
    "       [-seed S] [-pthr p ...] [-athr a ...] [-nodec] [-quiet] [-cmd FILE]\n"
    "       [-OKsmallmask] [-LOTS] [--n-cpus N]\n"
    "Native re-implementation of AFNI 3dClustSim (-acf model, all NN and sidedness tables)."
)


def _values_after(argv: list[str], i: int) -> tuple[list[str], int]:
    vals = []
    while i < len(argv) and not (argv[i].startswith("-") and not is_number(argv[i])):
        vals.append(argv[i])
        i += 1
    return vals, i


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 15))
    except AttributeError:
        return max(1, min(os.cpu_count() or 1, 15))


def cli_main(argv: list[str]) -> int:
    """``afni-native 3dClustSim`` with AFNI's options (the subset the pipeline uses)."""
    argv = [a for a in argv if a != "-overwrite"]
    if not argv or argv[0] in ("-help", "-h", "--help"):
        print(_USAGE)
        return 0
    opts: dict = {"both": False, "niml": False, "nodec": False, "quiet": False, "okmask": False}
    mask = acf = prefix = None
    iterations, seed, pthr, athr = DEFAULT_ITERATIONS, None, None, None
    cmd_name, n_jobs, lots = "3dClustSim.cmd", None, False
    # the table headers echo AFNI's own arguments only
    echoed = [
        a
        for k, a in enumerate(argv)
        if a not in ("--n-cpus", "-n_cpus")
        and (k == 0 or argv[k - 1] not in ("--n-cpus", "-n_cpus"))
    ]
    i = 0
    while i < len(argv):
        arg = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if arg == "-mask":
            if mask is not None:
                raise UsageError("Can't use -mask twice!")
            if nxt is None:
                raise UsageError("need argument after -mask")
            mask, i = nxt, i + 2
        elif arg == "-acf":
            vals = argv[i + 1 : i + 4]
            if len(vals) < 3:
                raise UsageError("need 3 arguments after -acf")
            acf, i = vals, i + 4
        elif arg in ("-both", "-niml"):
            if pthr is not None:
                raise UsageError(
                    "-both or -niml cannot follow -pthr, as they override it "
                    "(put -pthr after -both or -niml)"
                )
            opts["both" if arg == "-both" else "niml"] = True
            i += 1
        elif arg == "-prefix":
            if nxt is None or not filename_ok(nxt):
                raise UsageError(f"bad -prefix option '{nxt}'")
            prefix, i = nxt, i + 2
        elif arg.startswith("-niter") or arg == "-iter":
            try:
                iterations = int(float(nxt))
            except (TypeError, ValueError) as err:
                raise UsageError(f"need a number after {arg}") from err
            i += 2
        elif arg == "-seed":
            try:
                seed = int(nxt, 10) & 0xFFFFFFFF
            except (TypeError, ValueError) as err:
                raise UsageError("need an integer after -seed") from err
            i += 2
        elif arg in ("-pthr", "-pval", "-athr", "-aval"):
            vals, i = _values_after(argv, i + 1)
            is_p = arg in ("-pthr", "-pval")
            if vals == ["LOTS"]:
                chosen = list(LOTS_PTHR if is_p else LOTS_ATHR)
            else:
                chosen = list(_validate_plist(vals, arg))
            if is_p:
                pthr = chosen
            else:
                athr = chosen
        elif arg == "-LOTS":
            lots, i = True, i + 1
        elif arg == "-nodec":
            opts["nodec"], i = True, i + 1
        elif arg == "-quiet":
            opts["quiet"], i = True, i + 1
        elif arg == "-OKsmallmask":
            opts["okmask"], i = True, i + 1
        elif arg == "-cmd":
            if nxt is None or not filename_ok(Path(nxt).name):
                raise UsageError("bad -cmd option!")
            cmd_name, i = nxt, i + 2
        elif arg == "-NN":
            print(
                "*+ WARNING: -NN option is no longer supported! All NN cases are computed now",
                file=sys.stderr,
            )
            i += 2 if nxt is not None and nxt[:1].isdigit() else 1
        elif arg in ("--n-cpus", "-n_cpus"):
            try:
                n_jobs = max(1, int(nxt))
            except (TypeError, ValueError) as err:
                raise UsageError(f"need an integer after {arg}") from err
            i += 2
        else:
            raise UsageError(f"3dClustSim -- unknown or unsupported option '{arg}'")
    if mask is None:
        raise UsageError("afni-native 3dClustSim needs -mask (the grid comes from the mask)")
    if acf is None:
        raise UsageError("afni-native 3dClustSim needs -acf a b c")
    try:
        acf_values = tuple(float(v) for v in acf)
    except ValueError as err:
        raise UsageError(f"-acf: values {acf} are not numbers") from err
    if lots:
        pthr = list(LOTS_PTHR) if pthr is None else pthr
        athr = list(LOTS_ATHR) if athr is None else athr
    if prefix is None:
        raise UsageError("afni-native 3dClustSim needs -prefix (tables are written to files)")
    if n_jobs is None:
        n_jobs = _default_threads()
    run_clustsim(
        mask,
        acf_values,
        prefix,
        iterations=iterations,
        seed=seed,
        both=opts["both"],
        niml=opts["both"] or opts["niml"],
        write_1d=not opts["niml"] or opts["both"],
        pthr=pthr,
        athr=athr,
        n_jobs=n_jobs,
        progress=not opts["quiet"],
        command_line=quote_command_line(echoed),
        nodec=opts["nodec"],
        cmd_file=cmd_name,
        prefix_text=prefix,
        ok_small_mask=opts["okmask"],
    )
    return 0
