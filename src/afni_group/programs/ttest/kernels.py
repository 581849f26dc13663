"""Compiled per-voxel kernels of the ``3dttest++ -Clustsim`` null (:mod:`.clustsim`).

The inputs are matrix products of the randomised sign (and permutation) patterns with the
residuals scaled to unit sum of squares per voxel: the regression coefficients β of each set
in each iteration. From them the kernels give the t statistic of the first test (A-B or setA)
(:func:`simple_t` without covariates, :func:`regression_t` with them), or, for ``-unpooled``
whose DOF differs per voxel, z itself (:func:`unpooled_z`, with AFNI's t -> z recipe:
:func:`t2z` here agrees with :func:`afni_group.programs.ttest.core.t2z` to double rounding).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: continued-fraction tolerance and floor of the incomplete beta function
_CF_EPS = 1.0e-16
_CF_TINY = 1.0e-300
_CF_MAX_TERMS = 500


@njit(nogil=True, cache=True, error_model="numpy")
def regression_t(y, first, n_iter, mm, n_sets, two, gram, scale, cross, out):
    """t of the first coefficient from the regression coefficients of each iteration.

    ``y[(b·n_sets + s)·mm + k]`` is coefficient k of set s in iteration b (residuals scaled to
    unit sum of squares); the residual SS is ``total - Σ_s β_s' G_s β_s`` with ``total`` 1, or
    ``1 - 2·cross`` for paired designs (the SS of A - B). ``scale[b]`` is Q00/DOF.
    """
    n_vox = y.shape[1]
    has_cross = cross.shape[0] > 0
    for b in range(n_iter):
        base = (first + b) * n_sets * mm
        g = gram[first + b]
        sc = scale[first + b]
        for v in range(n_vox):
            quad = 0.0
            for s in range(n_sets):
                for k in range(mm):
                    bk = np.float64(y[base + s * mm + k, v])
                    acc = 0.0
                    for m in range(mm):
                        acc += g[s, k, m] * np.float64(y[base + s * mm + m, v])
                    quad += bk * acc
            eff = np.float64(y[base, v])
            if two:
                eff -= np.float64(y[base + mm, v])
            total = 1.0 - 2.0 * np.float64(cross[first + b, v]) if has_cross else 1.0
            ss = total - quad
            out[b, v] = eff / np.sqrt(ss * sc) if ss > 0.0 else 0.0


@njit(nogil=True, cache=True, error_model="numpy")
def simple_t(y, first, n_iter, n_sets, n_a, n_b, scale, cross, out):
    """:func:`regression_t` without covariates (β = set means, X'X = n), in float32.

    Branch-free and without Python's division checks, so that LLVM vectorises it (exact IEEE
    division and square root, no fast-math: the same values on every CPU); ``out`` is 0 where
    the residual SS is not positive.
    """
    n_vox = y.shape[1]
    has_cross = cross.shape[0] > 0
    na = np.float32(n_a)
    nb = np.float32(n_b)
    one = np.float32(1.0)
    two = np.float32(2.0)
    zero = np.float32(0.0)
    for b in range(n_iter):
        base = (first + b) * n_sets
        sc = np.float32(scale[first + b])
        ya = y[base]
        yb = y[base + 1] if n_sets == 2 else y[base]
        cr = cross[first + b] if has_cross else y[base]
        o = out[b]
        for v in range(n_vox):
            ma = ya[v]
            mb = yb[v] if n_sets == 2 else zero
            total = one - two * cr[v] if has_cross else one
            ss = total - na * ma * ma - nb * mb * mb
            good = ss > zero
            val = (ma - mb) / np.sqrt((ss if good else one) * sc)
            o[v] = val if good else zero


@njit(nogil=True, cache=True)
def _beta_fraction(a, b, x):
    """Continued fraction of the regularised incomplete beta (modified Lentz method)."""
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _CF_TINY:
        d = _CF_TINY
    d = 1.0 / d
    h = d
    for m in range(1, _CF_MAX_TERMS + 1):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = _CF_TINY if abs(d) < _CF_TINY else d
        c = 1.0 + aa / c
        c = _CF_TINY if abs(c) < _CF_TINY else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = _CF_TINY if abs(d) < _CF_TINY else d
        c = 1.0 + aa / c
        c = _CF_TINY if abs(c) < _CF_TINY else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < _CF_EPS:
            break
    return h


@njit(nogil=True, cache=True)
def betainc(a, b, x):
    """Regularised incomplete beta I_x(a, b) (a, b > 0), to double precision."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
        + b * math.log1p(-x)
    )  # fmt: skip
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


@njit(nogil=True, cache=True)
def qginv(p):
    """AFNI's ``GIC_qginv`` (see :func:`afni_group.programs.ttest.core.qginv`), one value."""
    dp = p if p <= 0.5 else 1.0 - p
    if dp <= 1.0e-37:
        return 13.0 if p <= 0.5 else -13.0
    dt = math.sqrt(-2.0 * math.log(dp))
    dx = dt - ((0.010328 * dt + 0.802853) * dt + 2.515517) / (
        ((0.001308 * dt + 0.189269) * dt + 1.432788) * dt + 1.0
    )
    for _ in range(3):
        dq = 0.5 * math.erfc(dx / 1.414213562373095) - dp
        ddq = math.exp(-0.5 * dx * dx) / 2.506628274631000
        dx = dx + dq / ddq
    dx = min(dx, 13.0)
    return dx if p <= 0.5 else -dx


@njit(nogil=True, cache=True)
def t2z(t, dof):
    """AFNI's ``GIC_student_t2z`` of one t (its 1 - (1 - I/2) for positive t included)."""
    x = dof / (dof + t * t)
    ib = betainc(0.5 * dof, 0.5, x)
    pp = 1.0 - 0.5 * ib if t > 0.0 else 0.5 * ib
    z = -qginv(pp)
    return min(max(z, -13.0), 13.0)


@njit(nogil=True, cache=True, error_model="numpy")
def unpooled_z(y, first, n_iter, q_a, n_a, n_b, floor, out):
    """z of Welch's test from the set means (residuals scaled to unit sum of squares).

    ``q_a`` is setA's share of each voxel's sum of squares. |z| is only needed where it can
    pass a threshold: where |t| is below ``floor`` (the smallest t threshold at the largest
    possible DOF) t/floor·|z(floor)| stands in for z, which keeps the order of the values
    and stays below every threshold (the exact z of such values is not used).
    Returns the number of exact conversions.
    """
    exact = 0
    z_floor = t2z(floor, n_a + n_b - 2.0)
    for b in range(n_iter):
        row = 2 * (first + b)
        for v in range(y.shape[1]):
            ma = np.float64(y[row, v])
            mb = np.float64(y[row + 1, v])
            a = (q_a[v] - n_a * ma * ma) / ((n_a - 1.0) * n_a)
            c = ((1.0 - q_a[v]) - n_b * mb * mb) / ((n_b - 1.0) * n_b)
            val = a + c
            if val <= 0.0:
                out[b, v] = 0.0
                continue
            t = (ma - mb) / math.sqrt(val)
            if abs(t) < floor:
                out[b, v] = t / floor * z_floor
                continue
            dof = val * val / (a * a / (n_a - 1.0) + c * c / (n_b - 1.0))
            out[b, v] = t2z(t, dof)
            exact += 1
    return exact
