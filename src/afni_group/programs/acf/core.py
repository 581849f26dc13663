"""The mixed ACF model of 3dFWHMx/3dClustSim on numbers: its value, radii, FWHM, group mean.

``ACF(r) = a exp(-r^2 / (2 b^2)) + (1 - a) exp(-r / c)`` (r in mm). Two evaluations and two
radius solvers live here, for two different needs:

* :func:`acf_model`, :func:`acf_radius` and :func:`acf_fwhm`: double precision, the exact
  crossing (bisection); the effective FWHM 3dFWHMx reports and the report and demo use.
* :func:`acf_model_float32` and :func:`afni_acf_radius`: 3dClustSim's own float32 arithmetic
  and its approximate root (a march plus two regula-falsi steps); they size 3dClustSim's noise
  grid exactly as AFNI does, which the exact root would not.

The group mean over subjects is :func:`mean_of_rows` (lines: :mod:`.formats`; files:
:mod:`.files`). Bad values raise ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mean_of_rows(rows: Sequence[Sequence[float]]) -> tuple[float, float, float]:
    """Column means of (a, b, c) rows, summed in row order as awk does (the tutorial's mean).

    Raises
    ------
    ValueError
        No rows.
    """
    if not rows:
        raise ValueError("no ACF rows to average")
    n = len(rows)
    sums = [0.0, 0.0, 0.0]
    for row in rows:  # summed in line order, as awk does
        for k in range(3):
            sums[k] += float(row[k])
    return sums[0] / n, sums[1] / n, sums[2] / n


# ----------------------------------------------------------------------------------------------
# double precision: the exact model
# ----------------------------------------------------------------------------------------------


def acf_model(r: np.ndarray | float, a: float, b: float, c: float) -> np.ndarray:
    """AFNI's mixed ACF at radius ``r`` (mm), in double precision."""
    r = np.asarray(r, dtype=np.float64)
    return a * np.exp(-(r * r) / (2.0 * b * b)) + (1.0 - a) * np.exp(-r / c)


def acf_radius(a: float, b: float, c: float, level: float) -> float:
    """Radius (mm) where the ACF falls to ``level`` (0 < level < 1), to full double precision.

    Bisection on [0, 3b + 6c + 1]: the ACF decreases strictly in r and is below 0.012 at
    3b + 6c, so every larger level is bracketed; for a level the bracket does not reach, its
    top is returned.
    """

    def acf(r: float) -> float:
        return a * math.exp(-0.5 * r * r / (b * b)) + (1.0 - a) * math.exp(-r / c)

    lo, hi = 0.0, 3.0 * b + 6.0 * c + 1.0
    if acf(hi) >= level:
        return hi
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if acf(mid) > level else (lo, mid)
    return 0.5 * (lo + hi)


def acf_fwhm(a: float, b: float, c: float) -> float:
    """Effective FWHM (mm) of the mixed ACF: ``2 r`` where ACF(r) = 1/2 (3dFWHMx's 4th number)."""
    return 2.0 * acf_radius(a, b, c, 0.5)


# ----------------------------------------------------------------------------------------------
# float32: 3dClustSim's arithmetic
# ----------------------------------------------------------------------------------------------


def acf_model_float32(r: float | np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """The mixed ACF at radius ``r`` (mm) in float32, as 3dClustSim evaluates it."""
    a, b, c = np.float32(a), np.float32(b), np.float32(c)
    r = np.asarray(r, dtype=np.float32)
    with np.errstate(over="ignore", under="ignore"):
        return a * np.exp(np.float32(-0.5) * r * r / (b * b)) + (np.float32(1) - a) * np.exp(-r / c)


def afni_acf_radius(a: float, b: float, c: float, level: float) -> float:
    """3dClustSim's radius (mm) where the ACF falls to ``level``: a march in steps of
    ``0.02 min(b, c)`` up to ``3b + 6c``, then two regula-falsi steps, all in float32."""
    a, b, c = np.float32(a), np.float32(b), np.float32(c)
    v = np.float32(level)
    if v >= 1:
        return 0.0
    rtop = np.float32(3) * b + np.float32(6) * c
    if v <= 0.0001:
        return float(rtop)
    dr = min(np.float32(0.02) * b, np.float32(0.02) * c)

    def f(r):
        return acf_model_float32(r, a, b, c)

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
