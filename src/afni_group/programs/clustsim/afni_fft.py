"""AFNI's FFT as 3dClustSim actually applies it, including its twiddle-table reuse.

3dClustSim (AFNI_26.2.03) makes its noise with ``csfft_cox_OMP``, a mixed-radix FFT whose
radix-3, radix-4 and radix-5 steps keep their cosine/sine ("twiddle") tables in one slot per
recursion level and thread. Each radix remembers which sub-length ``M`` it last computed and
recomputes the table only when ``M`` changes, but the slot is shared by the three radices. So
when two lengths that use different radices at the same level alternate — 80 (5·16) and 96
(3·32) on an 80×96×80 padded grid, or 128 (4·32) and 160 (5·32) — the later radix finds "its" M
unchanged and reuses a table that the other radix has since overwritten with the twiddles of
another length. That axis is then transformed with the wrong twiddles: a fixed, invertible but
wrong linear map, applied both to the ACF when the spectral weights are made and to every noise
volume. The fields AFNI simulates on such grids have a spectrum (and ACF) that differs from the
model along those axes (measured on the 3 mm demo grid: the lag-1..3 correlation along z is
0.686/0.320/0.174 instead of the model's 0.652/0.258/0.132), which moves every cluster-size
threshold by a few per cent. Grids whose padded lengths use one radix per level (96×120×96,
128×128×128) are transformed exactly.

To give the same statistics as real AFNI, the native noise generator replays the table state
machine here (:class:`CsfftCache`, in the order AFNI calls the transforms: x, y, z, first for
the ACF, then for each pair of volumes) and applies the resulting per-axis linear maps. Axes
whose replayed transform is exact use the ordinary FFT.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from numba import njit

#: AFNI's recursion depth limit for the radix-3/4/5 steps
MAX_LEVELS = 7
#: lengths AFNI transforms with fully unrolled (table-free, exact) code
_UNROLLED = (1, 2, 4, 8, 16, 32, 64)


@dataclass
class RadixStep:
    """One radix-r decimation step: ``r`` sub-transforms of length ``m``, twiddles, recombination.

    ``twiddles[j, k]`` multiplies output ``k`` of sub-sequence ``j`` (``x[j::r]``) before the
    exact r-point DFT across ``j``; ``inner`` is the plan of the length-``m`` sub-transform
    (``None`` = exact).
    """

    radix: int
    m: int
    twiddles: np.ndarray
    inner: RadixStep | None

    @functools.cached_property
    def combine(self) -> np.ndarray:
        """``[k, q, j]``: the twiddles times the r-point DFT, the matrix per output ``k``."""
        j = np.arange(self.radix)
        dft = np.exp(-2j * np.pi * np.outer(j, j) / self.radix)  # [q, j]
        return dft[None, :, :] * self.twiddles.T[:, None, :]


@dataclass
class _Slot:
    table: np.ndarray = field(default_factory=lambda: np.zeros(0, np.complex128))
    last_m: dict = field(default_factory=lambda: {3: 0, 4: 0, 5: 0})


class CsfftCache:
    """Replays the twiddle-table state of one AFNI thread over a sequence of transform lengths."""

    def __init__(self) -> None:
        self.slots = [_Slot() for _ in range(MAX_LEVELS)]

    def transform(self, n: int) -> RadixStep | None:
        """Plan of the next length-``n`` transform (every row of one axis pass gets the same)."""
        return self._call(int(n), 0)

    def _call(self, n: int, level: int) -> RadixStep | None:
        if n in _UNROLLED:
            return None
        if n & (n - 1) == 0:
            return self._decimate(4, n, level) if n <= 65536 else None
        if n % 3 == 0:
            return self._decimate(3, n, level)
        if n % 5 == 0:
            return self._decimate(5, n, level)
        return None  # general power-of-2 routine: its own table, keyed by the length

    def _decimate(self, radix: int, n: int, level: int) -> RadixStep:
        if level >= MAX_LEVELS:
            raise ValueError(f"FFT length {n} needs more than {MAX_LEVELS} decimation levels")
        m = n // radix
        need = (radix - 1) * m
        slot = self.slots[level]
        if slot.table.size < need:  # the slot grows; what it held is kept, the rest is unset
            grown = np.full(need, np.nan + 0j, np.complex128)
            grown[: slot.table.size] = slot.table
            slot.table = grown
        if slot.last_m[radix] != m:
            k = np.arange(need)
            slot.table[:need] = np.exp(2j * np.pi * k / n).astype(np.complex64)
            slot.last_m[radix] = m
        table = slot.table[:need].copy()
        inner = self._call(m, level + 1)
        j = np.arange(1, radix)[:, None]
        k = np.arange(m)[None, :]
        used = table[j * k]
        if np.isnan(used).any():
            raise ValueError(f"length-{n} transform would read an unset twiddle table")
        twiddles = np.ones((radix, m), np.complex128)
        twiddles[1:] = np.conj(used)  # forward transform: exp(-i·angle)
        return RadixStep(radix, m, twiddles, inner)


def is_exact(plan: RadixStep | None, n: int) -> bool:
    """Whether a plan computes the ordinary DFT (to float32 rounding)."""
    if plan is None:
        return True
    j = np.arange(plan.radix)[:, None]
    k = np.arange(plan.m)[None, :]
    exact = np.exp(-2j * np.pi * j * k / n)
    return bool(np.allclose(plan.twiddles, exact, atol=1e-6)) and is_exact(plan.inner, plan.m)


def apply_plan(plan: RadixStep | None, x: np.ndarray) -> np.ndarray:
    """Forward transform of ``x`` along its last axis with a replayed plan (complex128)."""
    if plan is None:
        return scipy.fft.fft(x, axis=-1)
    r, m = plan.radix, plan.m
    parts = np.swapaxes(x.reshape(*x.shape[:-1], m, r), -1, -2)  # parts[..., j, :] = x[j::r]
    y = apply_plan(plan.inner, parts) * plan.twiddles
    return scipy.fft.fft(y, axis=-2).reshape(x.shape)  # output index q·m + k


def plan_matrix(plan: RadixStep | None, n: int) -> np.ndarray:
    """The n×n matrix ``T`` of a plan (``y = T @ x``)."""
    return apply_plan(plan, np.eye(n, dtype=np.complex128)).T


@njit(nogil=True, cache=True)
def _radix_combine(y, coef, out):
    """``out[a, q·m + k, b] = Σ_j coef[k, q, j] · y[a, k, j, b]`` (twiddles and r-point DFT).

    Whole rows along ``b`` (contiguous) at a time, which vectorises.
    """
    n_a, m, r, n_b = y.shape
    for a in range(n_a):
        for k in range(m):
            for q in range(r):
                c = coef[k, q, 0]
                row = q * m + k
                for b in range(n_b):
                    out[a, row, b] = c * y[a, k, 0, b]
                for j in range(1, r):
                    c = coef[k, q, j]
                    for b in range(n_b):
                        out[a, row, b] += c * y[a, k, j, b]


def apply_along(plan: RadixStep | None, x: np.ndarray, axis: int) -> np.ndarray:
    """Forward transform of ``x`` along ``axis`` with a replayed plan, in ``x``'s precision.

    Exact plans are one FFT; a decimation step is the sub-transforms (along the sub-length
    axis), its twiddles, and the ``r``-point DFT across the sub-sequences: for the last axis
    with numpy (twiddle product, FFT of length r, transposition), for the others in one
    compiled pass over contiguous rows (:func:`_radix_combine`; measured faster each way).
    """
    if plan is None:
        return scipy.fft.fft(x, axis=axis, workers=1)
    r, m = plan.radix, plan.m
    shape = x.shape
    parts = x.reshape(shape[:axis] + (m, r) + shape[axis + 1 :])  # [.., k, j, ..] = x[k·r + j]
    y = apply_along(plan.inner, parts, axis)
    if axis == x.ndim - 1:
        y *= plan.twiddles.T.astype(x.dtype)
        z = scipy.fft.fft(y, axis=axis + 1, overwrite_x=True, workers=1)  # [.., k, q]
        return np.swapaxes(z, axis, axis + 1).reshape(shape)  # output index q·m + k
    y = np.ascontiguousarray(y)
    n_a = int(np.prod(shape[:axis], dtype=np.int64))
    n_b = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    out = np.empty((n_a, r * m, n_b), dtype=y.dtype)
    _radix_combine(y.reshape(n_a, m, r, n_b), plan.combine.astype(y.dtype), out)
    return out.reshape(shape)


@dataclass(frozen=True)
class AxisTransforms:
    """Per-axis forward transforms of a padded grid as AFNI applies them.

    ``weights[axis]`` / ``noise[axis]`` are ``None`` where AFNI's transform is exact (the
    FFT), else the replayed plan of the transform AFNI applies along that axis.
    """

    weights: tuple[RadixStep | None, RadixStep | None, RadixStep | None]
    noise: tuple[RadixStep | None, RadixStep | None, RadixStep | None]

    @property
    def exact(self) -> bool:
        return all(m is None for m in self.weights + self.noise)


def afni_axis_transforms(padded: tuple[int, int, int]) -> AxisTransforms:
    """Replay 3dClustSim's calls: x, y, z for the ACF, then x, y, z per noise pair.

    The noise transforms are those of the steady state (from the second pair on; the first pair
    of each AFNI thread can differ, one volume pair in thousands).
    """
    cache = CsfftCache()
    weight_plans = [cache.transform(n) for n in padded]
    for n in padded:  # the first noise pair of the main thread
        cache.transform(n)
    noise_plans = [cache.transform(n) for n in padded]

    def inexact(plans):
        return tuple(None if is_exact(p, n) else p for p, n in zip(plans, padded, strict=True))

    return AxisTransforms(inexact(weight_plans), inexact(noise_plans))
