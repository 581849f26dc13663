"""Smooth Gaussian noise for 3dClustSim's ``-acf`` model (spec 05 §3), on arrays.

The mixed ACF ``a*exp(-r²/(2b²)) + (1-a)*exp(-r/c)`` is made by FFT on a zero-padded copy of the
mask grid: complex white noise times the square root of the ACF's power spectrum, transformed,
cropped; the real and imaginary parts are two independent volumes. By default the transforms
are the ones AFNI_26.2.03 actually applies (:mod:`.afni_fft`: on some grids, e.g.
80×96×80, its FFT reuses another length's twiddle table along one or two axes), so that the
simulated fields — and the tables — have AFNI's statistics; ``exact_fft=True`` gives the exact
DFT instead.

Speed: the noise and the weighting are one vectorised pass (:func:`.kernels.fill_noise`);
the transform is pruned to the crop axis by axis.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft

from afni_group.programs.acf.core import acf_model_float32, afni_acf_radius
from afni_group.programs.clustsim.afni_fft import (
    AxisTransforms,
    RadixStep,
    afni_axis_transforms,
    apply_along,
)
from afni_group.programs.clustsim.kernels import fill_noise, pair_key

# --------------------------------------------------------------------------------------------
# FFT grid (spec 05 §3.1–3.3); the ACF model and its radius are :mod:`afni_group.programs.acf.core`


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
    radius = afni_acf_radius(*acf, 0.02)
    fwhm = 2 * afni_acf_radius(*acf, 0.5)
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


def grid_transforms(grid: NoiseGrid, exact_fft: bool = False) -> AxisTransforms:
    """Per-axis transforms for the weights and the noise (all exact when ``exact_fft``)."""
    if exact_fft:
        return AxisTransforms((None, None, None), (None, None, None))
    return afni_axis_transforms(grid.padded)


def transform_axis(
    volume: np.ndarray, axis: int, plan: RadixStep | None, start: int = 0, count: int = -1
) -> np.ndarray:
    """Forward transform along ``axis`` keeping outputs ``start : start + count``.

    ``plan`` ``None`` = the FFT; otherwise AFNI's transform along that axis
    (:func:`.afni_fft.apply_along`). ``volume`` may be overwritten.
    """
    n = volume.shape[axis]
    count = n if count < 0 else count
    if plan is None:
        out = scipy.fft.fft(volume, axis=axis, overwrite_x=True, workers=1)
    else:
        out = apply_along(plan, volume, axis)
    return out[(slice(None),) * axis + (slice(start, start + count),)]


def spectral_weights(
    grid: NoiseGrid, transforms: AxisTransforms | None = None
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Square root of the ACF's power spectrum on the padded grid, as a full k-space array.

    Returns the float32 weight array of shape ``grid.padded`` (the kept octant mirrored to the
    other seven; DC, Nyquist and dropped planes are 0) and the kept octant size (AFNI's "kernel
    image dimensions"). ``transforms`` (default: AFNI's, :func:`grid_transforms`) supplies the
    transform of the ACF volume.
    """
    if transforms is None:
        transforms = grid_transforms(grid)
    axes = []
    for n, d in zip(grid.padded, grid.voxel_sizes, strict=True):
        i = np.arange(n)
        axes.append(np.where(i < n // 2, i, n - i) * d)
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    w0 = acf_model_float32(np.sqrt(x * x + y * y + z * z), *grid.acf).astype(np.complex128)
    hx, hy, hz = (n // 2 for n in grid.padded)
    w0[hx, :, :] = 0
    w0[:, hy, :] = 0
    w0[:, :, hz] = 0
    spec = w0
    for axis in range(3):
        spec = transform_axis(spec, axis, transforms.weights[axis])
    spec = spec.real
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
    folds = []
    for n, k in zip(grid.padded, keep, strict=True):
        i = np.arange(n)
        folded = np.minimum(i, n - i)
        folds.append(np.where(folded < k, folded, -1))
    fx, fy, fz = np.ix_(*folds)
    valid = (fx >= 0) & (fy >= 0) & (fz >= 0)
    full = np.where(valid, w[np.maximum(fx, 0), np.maximum(fy, 0), np.maximum(fz, 0)], 0.0)
    full = full.astype(np.float32)
    full[0, 0, 0] = 0
    return full, (keep[0], keep[1], keep[2])


#: Relative cost per point of one axis transform, measured on 80×96×80 and 96×120×96 grids:
#: the FFT, AFNI's replayed transform along the first two axes (one compiled pass after the
#: sub-transforms) and along the last axis (numpy).
_AXIS_COST = {"fft": 1.0, "replayed": 1.9, "replayed_last": 2.6}


def transform_order(grid: NoiseGrid, transforms: AxisTransforms) -> tuple[int, int, int]:
    """The order of the three axis transforms of a noise pair that does the least work.

    Each transform is followed by the crop along its axis, so later transforms run on fewer
    points; AFNI's replayed (inexact) transforms cost more per point than the FFT. All orders
    give the same volumes up to float32 rounding; the choice depends only on the grid, so a
    seed gives the same result everywhere.
    """
    best, best_cost = (2, 1, 0), math.inf
    # (2, 1, 0) first: ties keep it (the last axis is contiguous at full size)
    for order in sorted(itertools.permutations(range(3)), reverse=True):
        sizes = list(grid.padded)
        cost = 0.0
        for axis in order:
            if transforms.noise[axis] is None:
                kind = "fft"
            else:
                kind = "replayed_last" if axis == 2 else "replayed"
            cost += _AXIS_COST[kind] * sizes[0] * sizes[1] * sizes[2]
            sizes[axis] = grid.shape[axis]
        if cost < best_cost * (1 - 1e-9):
            best, best_cost = order, cost
    return best


class NoiseSource:
    """Smooth noise volume pairs (real and imaginary part of one transform) on a mask grid.

    Pair ``p`` depends only on ``seed`` and ``p``, so any split of the pairs over threads gives
    the same volumes. One instance per thread (it owns a work buffer).

    Parameters
    ----------
    grid : NoiseGrid
    weights : ndarray
        From :func:`spectral_weights`.
    transforms : AxisTransforms
        From :func:`grid_transforms` (the same as for the weights).
    seed : int
    """

    def __init__(self, grid: NoiseGrid, weights: np.ndarray, transforms: AxisTransforms, seed: int):
        self.grid = grid
        self.weights = np.ascontiguousarray(weights, dtype=np.float32).ravel()
        self.transforms = transforms
        self.seed = int(seed)
        self.order = transform_order(grid, transforms)
        self._buffer = np.empty(grid.padded, dtype=np.complex64)

    def pair(self, index: int, contiguous: bool = True) -> np.ndarray:
        """Volume pair ``index`` on the crop grid (complex64; real and imaginary are the two).

        ``contiguous=False`` may return a strided view of the last transform's output (valid
        until the next call; :func:`.kernels.gather_pair` reads it as it is, without a copy).
        """
        fill_noise(
            self._buffer.view(np.float32).reshape(-1), self.weights, pair_key(self.seed, index)
        )
        out = self._buffer
        # each transform is cropped at once, which shrinks the next ones (transform_order)
        for axis in self.order:
            out = transform_axis(
                out,
                axis,
                self.transforms.noise[axis],
                self.grid.offsets[axis],
                self.grid.shape[axis],
            )
        return np.ascontiguousarray(out) if contiguous else out
