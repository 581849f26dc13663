"""The demo's volumes: brain masks, smooth noise with AFNI's mixed ACF, planted blobs.

Model (per subject, in % signal change):

* Brain: a flattened ellipsoid (cerebrum, centre (0, -18, 12), semi-axes 70 x 86 x 66 mm) plus
  a small cerebellum ellipsoid, shifted/scaled a little per subject; its boundary is perturbed by
  a smooth subject-specific random field, so masks differ at the edges and the intersection is a
  bit smaller than each mask. The EPI coverage (non-zero stats) is the same shape grown by 18 %;
  outside it every stats brick is exactly 0 (afni_proc does not mask the stats, spec 01 §1).
* Noise: Gaussian noise with the mixed ACF of AFNI, ACF(r) = a exp(-r^2 / (2 b^2)) +
  (1 - a) exp(-r / c), made by FFT-filtering white noise with the square root of the ACF's
  spectrum on a padded periodic grid (like 3dClustSim, spec 05 §3.3, but with real white noise
  and ``numpy.fft.rfftn``). Each subject has its own (a, b, c) around (0.7, 3.0, 10.0); the
  ``err_reml ACF`` line of its blur_est file carries exactly those numbers (``%g``) and the
  effective FWHM d = 2 r where ACF(r) = 0.5 (solved by bisection; 3dFWHMx reports the per-run
  mean of that quantity, spec 01 §1.2 / 04 §2.4).
* Betas: ``left_vs_right_chx`` = +1.0 % (subject SD 0.25 %) Gaussian blob (sigma 8 mm) centred at
  MNI (12, -85, 4) (right occipital); ``left_vs_right_press`` = +0.15 % (subject SD 0.08 %) blob
  (sigma 7 mm) at (-38, -22, 56) (left motor). Blob centres jitter 2 mm per subject. Each stim
  beta is its true value + se x smooth noise; the GLT is left - right, so its se is
  se x sqrt(2). The single-condition bricks also carry a common visual/motor activation that
  cancels in the contrasts. t = beta / se, F = t^2, Full_Fstat = mean of the stim t^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import fft as sp_fft

from afni_group.demo.truth import BLOBS, GLTS, STIMS, Grid, SubjectTruth, subject_rngs
from afni_group.programs.acf.core import acf_model, acf_radius

# Cerebrum / cerebellum ellipsoids (MNI mm): centre, semi-axes.
CEREBRUM = ((0.0, -18.0, 12.0), (70.0, 86.0, 66.0))

CEREBELLUM = ((0.0, -58.0, -32.0), (48.0, 30.0, 20.0))

COVERAGE_GROWTH = 1.18  # EPI field of view relative to the brain boundary

EDGE_PERTURBATION = 0.025  # amplitude of the subject-specific boundary field (in level units)

SE_BASE = 0.08  # % signal change, stim beta standard error at the brain centre

SE_OUTSIDE_BRAIN = 2.5  # se multiplier outside the brain (low baseline -> large %)

# Common activations of the single-condition bricks (cancel in the left-vs-right GLTs).
COMMON_VISUAL = (((-12.0, -88.0, 2.0), 9.0), ((12.0, -88.0, 2.0), 9.0))

COMMON_MOTOR = (((-38.0, -22.0, 56.0), 8.0), ((38.0, -22.0, 56.0), 8.0))

COMMON_VISUAL_PCT = 1.5

COMMON_MOTOR_PCT = 0.8


def acf_filter(
    shape: Sequence[int], voxel_mm: float, acf: Sequence[float]
) -> tuple[tuple[int, int, int], np.ndarray]:
    """Padded FFT grid and ``sqrt`` of the ACF's spectrum on it (for ``rfftn``).

    The ACF is sampled with periodic (wrap-around) distances on a grid padded by the ACF's
    2 % radius on each side, so wrap-around correlations inside the crop are negligible.
    Negative spectral values (from sampling a continuous ACF) are clipped to 0.

    Returns
    -------
    padded : tuple of int
        The padded grid shape.
    root : ndarray
        sqrt of the real spectrum, shape of ``rfftn`` of the padded grid.
    """
    a, b, c = acf
    pad = int(math.ceil(acf_radius(a, b, c, 0.02) / voxel_mm))  # the 2 % radius
    padded = tuple(int(sp_fft.next_fast_len(int(n) + 2 * pad, real=True)) for n in shape)
    axes = []
    for n in padded:
        idx = np.arange(n, dtype=np.float64)
        axes.append(np.minimum(idx, n - idx) * voxel_mm)
    dx, dy, dz = np.meshgrid(*axes, indexing="ij", sparse=True)
    r = np.sqrt(dx * dx + dy * dy + dz * dz)
    spectrum = sp_fft.rfftn(acf_model(r, a, b, c)).real
    return padded, np.sqrt(np.clip(spectrum, 0.0, None))


def smooth_noise(
    rng: np.random.Generator,
    shape: Sequence[int],
    voxel_mm: float,
    acf: Sequence[float],
    count: int,
) -> np.ndarray:
    """``count`` independent unit-variance Gaussian fields with the given mixed ACF.

    White N(0, 1) noise on the padded grid is filtered with sqrt(spectrum); the covariance of
    the result is then the sampled ACF (variance ACF(0) = 1), and the crop is taken from the
    padded grid's corner.

    Returns
    -------
    ndarray, shape (count, nx, ny, nz), float64
    """
    padded, root = acf_filter(shape, voxel_mm, acf)
    nx, ny, nz = shape
    out = np.empty((count, nx, ny, nz), dtype=np.float64)
    for n in range(count):
        white = rng.standard_normal(padded)
        field_ = sp_fft.irfftn(sp_fft.rfftn(white) * root, s=padded)
        out[n] = field_[:nx, :ny, :nz]
    return out


def gaussian_blob(
    coords: tuple[np.ndarray, np.ndarray, np.ndarray],
    centre: Sequence[float],
    sigma_mm: float,
) -> np.ndarray:
    """exp(-|x - centre|^2 / (2 sigma^2)), 1 at the centre."""
    x, y, z = coords
    cx, cy, cz = centre
    r2 = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2
    return np.exp(-r2 / (2.0 * sigma_mm * sigma_mm))


def brain_level(
    coords: tuple[np.ndarray, np.ndarray, np.ndarray],
    shift_mm: Sequence[float] = (0.0, 0.0, 0.0),
    scale: float = 1.0,
) -> np.ndarray:
    """Normalised ellipsoid radius of the brain (cerebrum or cerebellum): < 1 inside."""
    x, y, z = coords
    levels = []
    for centre, axes in (CEREBRUM, CEREBELLUM):
        terms = [
            ((v - c - s) / (ax * scale)) ** 2
            for v, c, s, ax in zip((x, y, z), centre, shift_mm, axes, strict=True)
        ]
        levels.append(np.sqrt(terms[0] + terms[1] + terms[2]))
    return np.minimum(levels[0], levels[1])


def subject_volumes(
    subject: SubjectTruth, seed: int, index: int, grid: Grid, session: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask, EPI coverage and the 19-brick stats array of one subject (in one session).

    Returns
    -------
    mask : ndarray (nx, ny, nz) uint8, 0/1
    coverage : ndarray (nx, ny, nz) bool, where the stats are non-zero
    stats : ndarray (nx, ny, nz, 19) float32, bricks in :func:`stats_layout` order
    """
    rng = subject_rngs(seed, index, session)[1]
    coords = grid.mni_coords()
    shape = grid.shape
    d = grid.voxel_mm

    # Brain boundary: ellipsoid level + a smooth (Gaussian ACF, b = 12 mm) subject field.
    edge = smooth_noise(rng, shape, d, (1.0, 12.0, 1.0), 1)[0]
    level = brain_level(coords, subject.brain_shift_mm, subject.brain_scale)
    perturbed = level + EDGE_PERTURBATION * edge
    mask = perturbed < 1.0
    coverage = perturbed < COVERAGE_GROWTH

    # Betas of the four stimuli in %: common activation + planted GLT effect + se x noise.
    visual = sum(gaussian_blob(coords, c, s) for c, s in COMMON_VISUAL) * COMMON_VISUAL_PCT
    motor = sum(gaussian_blob(coords, c, s) for c, s in COMMON_MOTOR) * COMMON_MOTOR_PCT
    effect = {
        b.set_label: subject.effects_pct[b.set_label]
        * gaussian_blob(coords, subject.blob_centres[b.set_label], b.sigma_mm)
        for b in BLOBS
    }
    truth = {
        "leftchx": visual + effect["chx"],
        "rightchx": visual,
        "leftpress": motor + effect["keypress"],
        "rightpress": motor,
    }
    se = SE_BASE * subject.se_scale * (1.0 + 0.8 * np.minimum(level, 1.2) ** 2)
    se = np.where(mask, se, se * SE_OUTSIDE_BRAIN)
    noise = smooth_noise(rng, shape, d, subject.acf, len(STIMS))

    beta = {name: truth[name] + se * noise[n] for n, name in enumerate(STIMS)}
    tstat = {name: beta[name] / se for name in STIMS}
    se_glt = se * math.sqrt(2.0)  # orthogonal regressors with equal se
    for glt, (left, right) in zip(GLTS, (STIMS[:2], STIMS[2:]), strict=True):
        beta[glt] = beta[left] - beta[right]
        tstat[glt] = beta[glt] / se_glt

    bricks = [sum(tstat[name] ** 2 for name in STIMS) / len(STIMS)]
    for name in (*STIMS, *GLTS):
        bricks += [beta[name], tstat[name], tstat[name] ** 2]
    stats = np.stack(bricks, axis=-1)
    stats[~coverage] = 0.0
    return mask.astype(np.uint8), coverage, stats.astype(np.float32)
