"""Pure pieces of the false-positive-rate benchmark (``bench_fpr.py``); no files are written.

* :func:`null_maps`: one null group analysis's subject maps from the demo generator
  (:mod:`afni_group.demo`): each subject's drawn parameters (ACF a, b, c around (0.7, 3, 10),
  se scale) and its own random stream, the demo's brain-shaped se profile times smooth
  Gaussian noise with the subject's mixed ACF, and no planted effect. ``"stationary"`` is the
  demo's noise; ``"nonstationary"`` mixes a rough and a smooth field (both from the subject's
  ACF, scaled) with weights that change along the anterior-posterior axis, so the local FWHM
  goes from ~5 mm at the front of the brain to ~13 mm at the back.
* :func:`estimate_acf`: the mixed-ACF fit of ``3dFWHMx -acf`` (what afni_proc.py runs on each
  subject's residuals): the empirical spatial autocorrelation in the mask out to
  2.999 × the Gaussian FWHM from the lag-1 correlations (at least 3.999 voxels), radii within
  1 % averaged, then a*exp(-r²/2b²) + (1-a)*exp(-r/c) fitted by least squares from 3dFWHMx's
  starting point and bounds. Not AFNI's bit-for-bit optimiser; an estimate of the same thing.
* :func:`max_cluster_sizes`: largest positive and negative cluster of a thresholded map (NN1
  faces, bi-sided as 3dClusterize ``-bisided``), and :func:`csim_size` the ``1d_tool.py -csim``
  lookup (ceiling of the cell as 3dClustSim prints it).
* :func:`clopper_pearson`: exact binomial interval of a false-positive rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage, optimize, stats

from afni_group.demo.noise import SE_BASE, brain_level, smooth_noise
from afni_group.demo.truth import Grid, subject_rngs, subject_truth

#: the demo's field of view on a 4 mm grid: 26,452 voxels in the brain-shaped mask
GRID_4MM = Grid("4mm", (40, 48, 38), 4.0, (-78.0, -75.0, -63.0))
NOISE_TYPES = ("stationary", "nonstationary")
#: non-stationary noise: the rough and smooth fields' (a, b, c) relative to the subject's ACF
#: (the demo's mean (0.7, 3, 10) gives (0.7, 2, 6), FWHM 5.2 mm, and (0.7, 5, 14), 12.8 mm)
ROUGH_SCALE = (1.0, 2.0 / 3.0, 0.6)
SMOOTH_SCALE = (1.0, 5.0 / 3.0, 1.4)


def brain_mask(grid: Grid = GRID_4MM) -> np.ndarray:
    """The demo's brain shape (cerebrum + cerebellum ellipsoids, no per-subject edge)."""
    return brain_level(grid.mni_coords()) < 1.0


def smooth_weight(grid: Grid, mask: np.ndarray) -> np.ndarray:
    """Share of the smooth field's variance: 0 at the brain's front, 1 at its back (linear in y)."""
    y = grid.mni_coords()[1]
    front, back = float(y[mask].max()), float(y[mask].min())
    return np.clip((front - y) / (front - back), 0.0, 1.0)


def _scaled(acf: Sequence[float], scale: Sequence[float]) -> tuple[float, float, float]:
    a, b, c = (float(v) * s for v, s in zip(acf, scale, strict=True))
    return a, b, c


def subject_noise(
    rng: np.random.Generator, acf: Sequence[float], kind: str, grid: Grid, weight: np.ndarray
) -> np.ndarray:
    """One unit-variance noise field: the demo's (stationary) or the rough/smooth mixture."""
    if kind == "stationary":
        return smooth_noise(rng, grid.shape, grid.voxel_mm, acf, 1)[0]
    if kind != "nonstationary":
        raise ValueError(f"noise type must be one of {NOISE_TYPES}, not {kind!r}")
    rough = smooth_noise(rng, grid.shape, grid.voxel_mm, _scaled(acf, ROUGH_SCALE), 1)[0]
    smooth = smooth_noise(rng, grid.shape, grid.voxel_mm, _scaled(acf, SMOOTH_SCALE), 1)[0]
    # independent fields with variance shares 1 - w and w: unit variance everywhere, local
    # ACF (1 - w)·ACF_rough + w·ACF_smooth
    return np.sqrt(1.0 - weight) * rough + np.sqrt(weight) * smooth


def null_maps(
    seed: int, n_subjects: int, kind: str, grid: Grid = GRID_4MM, mask: np.ndarray | None = None
) -> np.ndarray:
    """Subject maps of one null analysis, float32 (n_subjects, nx, ny, nz).

    Subject ``i`` is the demo's subject ``i`` for demo seed ``seed`` (its ACF, se scale and
    volume stream); its map is se × noise with the demo's se profile and no effect.
    """
    mask = brain_mask(grid) if mask is None else mask
    level = brain_level(grid.mni_coords())
    se = SE_BASE * (1.0 + 0.8 * np.minimum(level, 1.2) ** 2)
    weight = smooth_weight(grid, mask)
    out = np.empty((n_subjects, *grid.shape), dtype=np.float32)
    for i in range(n_subjects):
        truth = subject_truth(seed, i)
        rng = subject_rngs(seed, i)[1]
        out[i] = truth.se_scale * se * subject_noise(rng, truth.acf, kind, grid, weight)
    return out


# --------------------------------------------------------------------------------------------
# 3dFWHMx -acf on one volume


@dataclass
class EmpiricalAcf:
    """Radii (mm, increasing) and the mean autocorrelation at each."""

    radius: np.ndarray
    acf: np.ndarray


def _autocorrelation(volume: np.ndarray, mask: np.ndarray, reach: int) -> np.ndarray:
    """Correlation of the demeaned masked volume with itself shifted by every offset."""
    x = np.where(mask, volume - volume[mask].mean(), 0.0)
    shape = [int(sp_fft.next_fast_len(n + reach, real=True)) for n in x.shape]
    prod = sp_fft.irfftn(np.abs(sp_fft.rfftn(x, shape)) ** 2, shape)
    pairs = sp_fft.irfftn(np.abs(sp_fft.rfftn(mask.astype(float), shape)) ** 2, shape)
    cov = prod / np.maximum(np.rint(pairs), 1.0)
    return cov / cov[0, 0, 0]


def empirical_acf(
    volume: np.ndarray, mask: np.ndarray, voxel_mm: float, reach: int = 12
) -> EmpiricalAcf:
    """The ACF out to 3dFWHMx's default radius (at most ``reach`` voxels), radii within 1 %
    averaged (as 3dFWHMx does)."""
    corr = _autocorrelation(volume, mask, reach)
    rho = float(np.mean([corr[1, 0, 0], corr[0, 1, 0], corr[0, 0, 1]]))
    # Gaussian FWHM from the lag-1 correlation, AFNI's 2.999 × FWHM (at least 3.999 voxels)
    sigma = voxel_mm / math.sqrt(-2.0 * math.log(min(max(rho, 1e-6), 0.999999)))
    radius = min(max(2.999 * 2.354820 * sigma, 3.999 * voxel_mm), reach * voxel_mm)
    reach = int(radius // voxel_mm)
    k = np.arange(-reach, reach + 1)
    di, dj, dk = np.meshgrid(k, k, k, indexing="ij")
    r = voxel_mm * np.sqrt(di * di + dj * dj + dk * dk)
    keep = (r > 0) & (r <= radius)
    values = corr[di[keep], dj[keep], dk[keep]]  # negative offsets wrap around
    order = np.argsort(r[keep], kind="stable")
    rr, vv = r[keep][order], values[order]
    radii, means = [], []
    start = 0
    while start < rr.size:
        stop = int(np.searchsorted(rr, rr[start] * 1.01, side="right"))
        radii.append(float(rr[start:stop].mean()))
        means.append(float(vv[start:stop].mean()))
        start = stop
    return EmpiricalAcf(np.array(radii), np.array(means))


def fit_acf(emp: EmpiricalAcf) -> tuple[float, float, float]:
    """Least-squares fit of the mixed model from 3dFWHMx's starting point and bounds."""
    below = np.flatnonzero(emp.acf <= 0.5)
    if below.size == 0:
        raise ValueError(f"largest ACF found is {emp.acf[-1]:g} -- too big for model fit")
    p = int(below[0])
    start = 1.0 / math.log(max(emp.acf[p], 1e-6))
    b0 = math.sqrt(-0.5 * start) * emp.radius[p]
    c0 = -emp.radius[p] * start
    lo, hi = [0.006, 0.05 * b0, 0.05 * c0], [0.994, 5.55 * b0, 5.55 * c0]

    def resid(x: np.ndarray) -> np.ndarray:
        a, b, c = x
        r = emp.radius
        return a * np.exp(-0.5 * r * r / (b * b)) + (1.0 - a) * np.exp(-r / c) - emp.acf

    fit = optimize.least_squares(resid, [0.5, b0, c0], bounds=(lo, hi))
    a, b, c = (float(v) for v in fit.x)
    return a, b, c


def estimate_acf(
    volume: np.ndarray, mask: np.ndarray, voxel_mm: float
) -> tuple[float, float, float]:
    """(a, b, c) of one volume's noise, as ``3dFWHMx -acf`` estimates it (see module doc)."""
    return fit_acf(empirical_acf(np.asarray(volume, dtype=np.float64), mask, voxel_mm))


# --------------------------------------------------------------------------------------------
# clusters, lookups, intervals


def max_cluster_sizes(stat: np.ndarray, mask: np.ndarray, threshold: float) -> tuple[int, int]:
    """Largest NN1 cluster of ``stat > threshold`` and of ``stat < -threshold`` in the mask."""
    faces = ndimage.generate_binary_structure(3, 1)
    out = []
    for side in (stat > threshold, stat < -threshold):
        labels, count = ndimage.label(side & mask, structure=faces)
        out.append(int(np.bincount(labels.ravel())[1:].max()) if count else 0)
    return out[0], out[1]


def csim_size(cell: float, nodec: bool) -> int:
    """``1d_tool.py -csim_show_clustsize``: ceiling of the cell as printed (``%.1f``, or whole)."""
    return int(cell) if nodec else int(math.ceil(float("%.1f" % cell)))


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial proportion ``k / n``."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, not k={k}, n={n}")
    tail = (1.0 - level) / 2.0
    lo = 0.0 if k == 0 else float(stats.beta.ppf(tail, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1.0 - tail, k + 1, n - k))
    return lo, hi
