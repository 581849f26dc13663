"""``afni-group-demo``: a small, realistic, deterministic afni_proc.py-shaped demo dataset.

``afni-group-demo DIR [--subjects 12] [--seed 0] [--grid 3mm|small]`` writes::

    DIR/
      README                         what the data is, the planted effects and where they are
      dataset_description.json       BIDS raw
      participants.tsv               participant_id age sex group
      task-checks_bold.json          TaskName, RepetitionTime
      sub-XX/func/sub-XX_task-checks_run-0{1,2}_bold.nii.gz   tiny all-zero placeholders
      derivatives/afni/sub-XX/sub-XX.results/
        stats.sub-XX_REML+tlrc.{HEAD,BRIK}      19-brick 3dREMLfit bucket (spec 01 §1.1)
        mask_epi_anat.sub-XX+tlrc.{HEAD,BRIK}   byte 0/1 brain mask
        blur_est.sub-XX.1D                      6 lines, exactly as afni_proc writes them (§1.2)
        out.ss_review_uvars.json                afni_proc's uvars (relative names)

Everything is synthetic. Only the files above exist; ``out.ss_review_uvars.json`` also names
files afni_proc would have written (X.xmat.1D, errts, anat_final ...) that the demo does not
write, exactly as a results directory copied without its large files would look.

Grids (recorded here because tests and CI depend on them):

* ``3mm`` (default): 53 x 64 x 50 voxels of 3 mm, RAI (ORIENT_SPECIFIC 0 3 4, as afni_proc's
  tlrc outputs), ORIGIN (-78, -75, -63) in DICOM mm, i.e. MNI x from +78 (i = 0, right) to -78,
  y from +75 to -114, z from -63 to +84: the MNI brain cropped tight, x = 0 on a voxel centre.
* ``small``: the same field of view with 6 mm voxels, 27 x 32 x 26 (z to +87), for fast tests.

TEMPLATE_SPACE MNI, view tlrc. Coordinates in this module are MNI mm (RAS+/LPI sense:
x < 0 is left, y < 0 posterior), which is what AFNI calls "LPI" coordinates.

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
  effective FWHM d = 2 r where ACF(r) = 0.5 (solved with brentq; 3dFWHMx reports the per-run
  mean of that quantity, spec 01 §1.2 / 04 §2.4).
* Betas: ``left_vs_right_chx`` = +1.0 % (subject SD 0.25 %) Gaussian blob (sigma 8 mm) centred at
  MNI (12, -85, 4) (right occipital); ``left_vs_right_press`` = +0.15 % (subject SD 0.08 %) blob
  (sigma 7 mm) at (-38, -22, 56) (left motor). Blob centres jitter 2 mm per subject. Each stim
  beta is its true value + se x smooth noise; the GLT is left - right, so its se is
  se x sqrt(2). The single-condition bricks also carry a common visual/motor activation that
  cancels in the contrasts. t = beta / se, F = t^2, Full_Fstat = mean of the stim t^2.
* DOF: 2 runs x 230 TRs = 460, minus 0-14 censored TRs, minus 18 regressors (4 task + 8
  polort-3 baseline + 6 motion), i.e. 428-442 (fitt(dof), fift(1, dof), Full_Fstat fift(4, dof)).

Randomness: every subject has its own ``numpy.random.Generator(PCG64)`` stream seeded from
``SeedSequence([seed, subject_index])``, so subject 3 is the same whatever ``--subjects`` is, and
the same seed gives identical bytes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import fft as sp_fft
from scipy.optimize import brentq

from afni_group import __version__
from afni_group.errors import AfniGroupError, OutputError, UsageError
from afni_group.programs.acf.core import acf_fwhm, acf_model

# --------------------------------------------------------------------------- constants

TR_S = 2.0
N_RUNS = 2
TRS_PER_RUN = 230
N_REGRESSORS = 18  # 4 task + 2 runs x (polort 3 + 1) + 6 motion
MAX_CENSORED = 14
TASK = "checks"
TEMPLATE = "MNI152_2009_template_SSW.nii.gz"

FIXED_DATE = "Thu Jan  1 00:00:00 1970"  # IDCODE_DATE: ctime(0) UTC, so bytes never change

# How afni_proc's datasets are typed (spec 01 §1 and the testdata): the REML bucket is a func
# bucket (3DIM_HEAD_FUNC, SCENE_DATA 2 11 1); mask_epi_anat is byte, anat "epan" (2 2 0).
STATS_ATTRS = {"TYPESTRING": "3DIM_HEAD_FUNC"}
MASK_ATTRS = {"SCENE_DATA": [2, 2, 0, -999, -999, -999, -999, -999]}

STIMS = ("leftchx", "rightchx", "leftpress", "rightpress")
GLTS = ("left_vs_right_chx", "left_vs_right_press")

# Cerebrum / cerebellum ellipsoids (MNI mm): centre, semi-axes.
CEREBRUM = ((0.0, -18.0, 12.0), (70.0, 86.0, 66.0))
CEREBELLUM = ((0.0, -58.0, -32.0), (48.0, 30.0, 20.0))
COVERAGE_GROWTH = 1.18  # EPI field of view relative to the brain boundary
EDGE_PERTURBATION = 0.025  # amplitude of the subject-specific boundary field (in level units)

# Group-mean ACF and the per-subject jitter (SD) of each parameter.
ACF_MEAN = (0.7, 3.0, 10.0)
ACF_JITTER = (0.02, 0.12, 0.5)

SE_BASE = 0.08  # % signal change, stim beta standard error at the brain centre
SE_OUTSIDE_BRAIN = 2.5  # se multiplier outside the brain (low baseline -> large %)


@dataclass(frozen=True)
class Grid:
    """A RAI grid in template space.

    Attributes
    ----------
    name : str
        ``"3mm"`` or ``"small"``.
    shape : tuple of int
        (nx, ny, nz).
    voxel_mm : float
        Isotropic voxel size.
    origin_dicom : tuple of float
        AFNI ORIGIN (DICOM/RAI mm of voxel (0, 0, 0)).
    """

    name: str
    shape: tuple[int, int, int]
    voxel_mm: float
    origin_dicom: tuple[float, float, float]

    @property
    def affine(self) -> np.ndarray:
        """Voxel -> RAS+ mm (nibabel convention): diag(-1, -1, 1) applied to IJK_TO_DICOM."""
        d = self.voxel_mm
        ox, oy, oz = self.origin_dicom
        return np.array(
            [[-d, 0.0, 0.0, -ox], [0.0, -d, 0.0, -oy], [0.0, 0.0, d, oz], [0.0, 0.0, 0.0, 1.0]]
        )

    def mni_coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """MNI (RAS+) mm coordinates of every voxel, three arrays of ``shape``."""
        d = self.voxel_mm
        ox, oy, oz = self.origin_dicom
        i, j, k = (np.arange(n, dtype=np.float64) for n in self.shape)
        x = -(ox + d * i)
        y = -(oy + d * j)
        z = oz + d * k
        return np.meshgrid(x, y, z, indexing="ij")

    def ijk_of(self, xyz_mni: Sequence[float]) -> tuple[int, int, int]:
        """Nearest voxel index of an MNI coordinate (clipped to the grid)."""
        d = self.voxel_mm
        ox, oy, oz = self.origin_dicom
        x, y, z = xyz_mni
        ijk = np.rint([(-x - ox) / d, (-y - oy) / d, (z - oz) / d]).astype(int)
        return tuple(int(np.clip(v, 0, n - 1)) for v, n in zip(ijk, self.shape, strict=True))


GRIDS: dict[str, Grid] = {
    "3mm": Grid("3mm", (53, 64, 50), 3.0, (-78.0, -75.0, -63.0)),
    "small": Grid("small", (27, 32, 26), 6.0, (-78.0, -75.0, -63.0)),
}


@dataclass(frozen=True)
class Blob:
    """One planted group effect (truth for tests and the README).

    ``effect_pct`` is the population mean of the GLT beta at the centre, ``subject_sd_pct`` the
    SD of the subjects' true effects; the profile is a Gaussian of SD ``sigma_mm``.
    """

    set_label: str
    glt: str
    region: str
    centre_mni: tuple[float, float, float]
    sigma_mm: float
    effect_pct: float
    subject_sd_pct: float
    # region at the centre in the report's atlases (Harvard-Oxford, AAL2; afni_group.atlas)
    atlas_regions: tuple[str, str] = ("", "")

    @property
    def beta_label(self) -> str:
        return f"{self.glt}#0_Coef"

    @property
    def tstat_label(self) -> str:
        return f"{self.glt}#0_Tstat"


BLOBS: tuple[Blob, ...] = (
    Blob(
        "chx",
        "left_vs_right_chx",
        "right occipital",
        (12.0, -85.0, 4.0),
        8.0,
        1.0,
        0.25,
        ("Right_Intracalcarine_Cortex", "Calcarine_R"),
    ),
    Blob(
        "keypress",
        "left_vs_right_press",
        "left motor",
        (-38.0, -22.0, 56.0),
        7.0,
        0.15,
        0.08,
        ("Left_Precentral_Gyrus", "Precentral_L"),
    ),
)
BLOB_JITTER_MM = 2.0

# Common activations of the single-condition bricks (cancel in the left-vs-right GLTs).
COMMON_VISUAL = (((-12.0, -88.0, 2.0), 9.0), ((12.0, -88.0, 2.0), 9.0))
COMMON_MOTOR = (((-38.0, -22.0, 56.0), 8.0), ((38.0, -22.0, 56.0), 8.0))
COMMON_VISUAL_PCT = 1.5
COMMON_MOTOR_PCT = 0.8


@dataclass(frozen=True)
class SubjectTruth:
    """Scalar parameters of one synthetic subject (all drawn before any volume)."""

    label: str  # "01"
    age: int
    sex: str
    group: str
    acf: tuple[float, float, float]  # err_reml a, b, c as written (%g-rounded)
    fwhm: float  # effective FWHM d as written
    n_censored: int
    dof: int
    effects_pct: dict[str, float]  # set_label -> this subject's true GLT effect
    blob_centres: dict[str, tuple[float, float, float]]  # set_label -> jittered centre
    brain_shift_mm: tuple[float, float, float]
    brain_scale: float
    se_scale: float

    @property
    def sid(self) -> str:
        return f"sub-{self.label}"


@dataclass
class DemoTruth:
    """What was planted: returned by :func:`planted_truth` and :func:`write_demo`."""

    seed: int
    grid: Grid
    blobs: tuple[Blob, ...]
    subjects: list[SubjectTruth]
    files: list[Path] = field(default_factory=list)

    @property
    def mean_acf(self) -> tuple[float, float, float]:
        """Arithmetic mean of the subjects' err_reml (a, b, c), as the group step computes it."""
        acfs = np.array([s.acf for s in self.subjects], dtype=np.float64)
        a, b, c = (float(v) for v in acfs.mean(axis=0))
        return a, b, c

    def blob(self, set_label: str) -> Blob:
        """The planted blob of a set (``chx`` or ``keypress``)."""
        for b in self.blobs:
            if b.set_label == set_label:
                return b
        raise KeyError(set_label)

    def as_dict(self) -> dict:
        """JSON-friendly summary (used by the README and tests)."""
        return {
            "seed": self.seed,
            "grid": {
                "name": self.grid.name,
                "shape": list(self.grid.shape),
                "voxel_mm": self.grid.voxel_mm,
                "origin_dicom": list(self.grid.origin_dicom),
            },
            "blobs": [
                {
                    "set": b.set_label,
                    "beta": b.beta_label,
                    "tstat": b.tstat_label,
                    "region": b.region,
                    "atlas_regions": list(b.atlas_regions),
                    "centre_mni": list(b.centre_mni),
                    "sigma_mm": b.sigma_mm,
                    "effect_pct": b.effect_pct,
                    "subject_sd_pct": b.subject_sd_pct,
                }
                for b in self.blobs
            ],
            "mean_acf": list(self.mean_acf),
            "subjects": [
                {"subject": s.label, "acf": list(s.acf), "fwhm": s.fwhm, "dof": s.dof}
                for s in self.subjects
            ],
        }


# --------------------------------------------------------------------------- pure helpers


def fmt_g(value: float) -> str:
    """C ``%g`` (6 significant digits), what 3dTstat/awk print."""
    return f"{value:g}"


def round_g(value: float) -> float:
    """``value`` rounded to what ``%g`` prints, so the file and the truth agree exactly."""
    return float(fmt_g(value))


def effective_fwhm(a: float, b: float, c: float) -> float:
    """Effective FWHM of the mixed ACF: 2 r with ACF(r) = 0.5 (3dFWHMx's 4th ACF number)."""
    return acf_fwhm(a, b, c)


def acf_radius(a: float, b: float, c: float, level: float = 0.02) -> float:
    """Distance beyond which the ACF is below ``level`` (pad size for the FFT grid)."""
    hi = 3.0 * b + 10.0 * c
    if float(acf_model(hi, a, b, c)) >= level:
        return hi
    return brentq(lambda r: float(acf_model(r, a, b, c)) - level, 0.0, hi)


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
    pad = int(math.ceil(acf_radius(a, b, c) / voxel_mm))
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


def stats_layout(dof: int) -> list[tuple[str, int, tuple[float, ...]]]:
    """The 19 (label, stat code, params) of the REML bucket (spec 01 §1.1).

    ``Full_Fstat`` fift(4, dof); per stimulus and GLT ``#0_Coef`` (none), ``#0_Tstat``
    fitt(dof), ``_Fstat`` fift(1, dof).
    """
    d = float(dof)
    layout: list[tuple[str, int, tuple[float, ...]]] = [("Full_Fstat", 4, (float(len(STIMS)), d))]
    for name in (*STIMS, *GLTS):
        layout += [
            (f"{name}#0_Coef", 0, ()),
            (f"{name}#0_Tstat", 3, (d,)),
            (f"{name}_Fstat", 4, (1.0, d)),
        ]
    return layout


def format_blur_est(
    epits: Sequence[float], errts: Sequence[float], err_reml: Sequence[float]
) -> str:
    """The 6-line ``blur_est.$subj.1D`` text (spec 01 §1.2).

    Each argument is the ACF (a, b, c, d) of that source; FWHM lines are the modern
    ``0 0 0 0``. Numbers ``%g``, single spaces, three spaces before ``#``.
    """
    lines = []
    for label, acf in (("epits", epits), ("errts", errts), ("err_reml", err_reml)):
        lines.append(f"0 0 0 0   # {label} FWHM blur estimates")
        lines.append(" ".join(fmt_g(v) for v in acf) + f"   # {label} ACF blur estimates")
    return "\n".join(lines) + "\n"


def ss_review_uvars(subject: SubjectTruth) -> dict:
    """``out.ss_review_uvars.json`` content, field names of afni's ``g_ss_uvar_fields``.

    Names are relative to the results directory, as afni_proc writes them.
    """
    sid = subject.sid
    nt_orig = N_RUNS * TRS_PER_RUN
    return {
        "subj": sid,
        "afni_ver": "afni-group-demo",
        "afni_package": "synthetic",
        "tr": TR_S,
        "mot_limit": 0.3,
        "out_limit": 0.05,
        "copy_anat": f"{sid}_T1w+orig.HEAD",
        "mask_dset": f"mask_epi_anat.{sid}+tlrc.HEAD",
        "template": TEMPLATE,
        "ss_review_dset": f"out.ss_review.{sid}.txt",
        "vlines_tcat_dir": "vlines.pb00.tcat",
        "rm_trs": 0,
        "num_stim": len(STIMS),
        "nt_orig": nt_orig,
        "nt_applied": nt_orig - subject.n_censored,
        "tcat_dset": f"pb00.{sid}.r01.tcat+orig.HEAD",
        "censor_dset": f"censor_{sid}_combined_2.1D",
        "enorm_dset": f"motion_{sid}_enorm.1D",
        "motion_dset": "dfile_rall.1D",
        "volreg_dset": f"pb02.{sid}.r01.volreg+tlrc.HEAD",
        "outlier_dset": "outcount_rall.1D",
        "gcor_dset": "out.gcor.1D",
        "mask_corr_dset": "out.mask_ae_dice.txt",
        "mask_anat_templ_corr_dset": "out.mask_at_dice.txt",
        "xmat_regress": "X.xmat.1D",
        "xmat_uncensored": "X.nocensor.xmat.1D",
        "xmat_stim": "X.stim.xmat.1D",
        "stats_dset": f"stats.{sid}_REML+tlrc.HEAD",
        "sum_ideal": "sum_ideal.1D",
        "final_anat": f"anat_final.{sid}+tlrc.HEAD",
        "vr_base_dset": "vr_base_min_outlier+orig.HEAD",
        "final_epi_dset": "final_epi_vr_base_min_outlier+tlrc.HEAD",
        "final_view": "tlrc",
        "template_warp": "nonlinear",
        "have_radcor_dirs": "yes",
        "flip_check_dset": "aea_checkflip_results.txt",
        "flip_guess": "NO_FLIP",
        "tsnr_dset": f"TSNR.{sid}+tlrc.HEAD",
        "errts_dset": f"errts.{sid}_REML+tlrc.HEAD",
        "df_info_dset": "out.df_info.txt",
        "cormat_warn_dset": "out.cormat_warn.txt",
        "pre_ss_warn_dset": "out.pre_ss_warn.txt",
        "decon_err_dset": "3dDeconvolve.err",
    }


# --------------------------------------------------------------------------- subjects


def _subject_rngs(seed: int, index: int) -> list[np.random.Generator]:
    """Independent streams for subject ``index`` (0-based): scalars, volumes, blur, idcodes.

    Separate streams keep the scalar truth computable without making volumes, and keep
    each part unchanged when another part draws more numbers.
    """
    children = np.random.SeedSequence([int(seed), int(index)]).spawn(4)
    return [np.random.Generator(np.random.PCG64(ss)) for ss in children]


def subject_truth(seed: int, index: int) -> SubjectTruth:
    """Draw the scalar parameters of subject ``index`` (0-based; label ``index + 1``)."""
    rng = _subject_rngs(seed, index)[0]
    label = f"{index + 1:02d}"
    age = int(rng.integers(19, 41))
    sex = "F" if rng.random() < 0.5 else "M"
    group = "control" if index % 2 == 0 else "patient"  # balanced, for two-group demos
    a = round_g(float(np.clip(ACF_MEAN[0] + ACF_JITTER[0] * rng.standard_normal(), 0.5, 0.9)))
    b = round_g(ACF_MEAN[1] + ACF_JITTER[1] * rng.standard_normal())
    c = round_g(ACF_MEAN[2] + ACF_JITTER[2] * rng.standard_normal())
    fwhm = round_g(effective_fwhm(a, b, c))
    n_censored = int(rng.integers(0, MAX_CENSORED + 1))
    dof = N_RUNS * TRS_PER_RUN - n_censored - N_REGRESSORS
    effects = {}
    centres = {}
    for blob in BLOBS:
        effects[blob.set_label] = blob.effect_pct + blob.subject_sd_pct * rng.standard_normal()
        jitter = BLOB_JITTER_MM * rng.standard_normal(3)
        centres[blob.set_label] = tuple(float(v) for v in np.asarray(blob.centre_mni) + jitter)
    shift = tuple(float(v) for v in 0.7 * rng.standard_normal(3))
    scale = float(1.0 + 0.006 * rng.standard_normal())
    se_scale = float(np.exp(0.12 * rng.standard_normal()))
    return SubjectTruth(
        label=label,
        age=age,
        sex=sex,
        group=group,
        acf=(a, b, c),
        fwhm=fwhm,
        n_censored=n_censored,
        dof=dof,
        effects_pct=effects,
        blob_centres=centres,
        brain_shift_mm=shift,  # type: ignore[arg-type]
        brain_scale=scale,
        se_scale=se_scale,
    )


def planted_truth(n_subjects: int = 12, seed: int = 0, grid: str = "3mm") -> DemoTruth:
    """What ``afni-group-demo`` plants for these options (cheap: no volumes are made).

    Parameters
    ----------
    n_subjects : int
        Number of subjects (labels ``01`` ... ``NN``).
    seed : int
        The ``--seed``.
    grid : str
        ``"3mm"`` or ``"small"``.
    """
    if grid not in GRIDS:
        raise UsageError(f"--grid must be one of {', '.join(GRIDS)}, not '{grid}'")
    subjects = [subject_truth(seed, i) for i in range(n_subjects)]
    return DemoTruth(seed=int(seed), grid=GRIDS[grid], blobs=BLOBS, subjects=subjects)


def _other_blur_sources(
    rng: np.random.Generator, acf: Sequence[float]
) -> tuple[list[float], list[float]]:
    """Plausible epits and errts ACF lines next to a subject's err_reml values.

    epits (the EPI before regression, still containing signal) is smoother; errts (OLS) is
    within a fraction of a percent of err_reml.
    """
    a, b, c = acf
    ep = (min(a + 0.06, 0.95), b * 1.09, c * 1.3)
    ep = tuple(v * (1.0 + 0.01 * rng.standard_normal()) for v in ep)
    er = tuple(v * (1.0 + 0.004 * rng.standard_normal()) for v in acf)
    out = []
    for p in (ep, er):
        p = (min(p[0], 0.99), p[1], p[2])
        vals = [round_g(v) for v in p]
        vals.append(round_g(effective_fwhm(*vals)))
        out.append(vals)
    return out[0], out[1]


def subject_volumes(
    subject: SubjectTruth, seed: int, index: int, grid: Grid
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask, EPI coverage and the 19-brick stats array of one subject.

    Returns
    -------
    mask : ndarray (nx, ny, nz) uint8, 0/1
    coverage : ndarray (nx, ny, nz) bool, where the stats are non-zero
    stats : ndarray (nx, ny, nz, 19) float32, bricks in :func:`stats_layout` order
    """
    rng = _subject_rngs(seed, index)[1]
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


# --------------------------------------------------------------------------- writing


def _placeholder_bold(grid: Grid) -> bytes:
    """A tiny valid 4-D NIfTI (2x2x2x230 int16 zeros, TR 2 s), gzip'd with mtime 0."""
    import nibabel as nib

    img = nib.Nifti1Image(np.zeros((2, 2, 2, TRS_PER_RUN), dtype=np.int16), grid.affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = TR_S
    return gzip.compress(img.to_bytes(), mtime=0)


def _write_text(path: Path, text: str, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    written.append(path)


def _readme(truth: DemoTruth, n_subjects: int) -> str:
    g = truth.grid
    a, b, c = truth.mean_acf
    lines = [
        "afni-group demo dataset (synthetic)",
        "====================================",
        "",
        f"Written by afni-group-demo {__version__} with --subjects {n_subjects} "
        f"--seed {truth.seed} --grid {g.name}. Same options -> identical bytes.",
        "Nothing here comes from a scanner: sub-*/func/*_bold.nii.gz are 2x2x2 all-zero",
        "placeholders; derivatives/afni/sub-*/sub-*.results/ hold what the group analysis reads",
        "(stats.sub-XX_REML+tlrc, mask_epi_anat.sub-XX+tlrc, blur_est.sub-XX.1D,",
        "out.ss_review_uvars.json). Other files named in the uvars were not written.",
        "",
        f"Grid: {g.shape[0]}x{g.shape[1]}x{g.shape[2]} voxels of {g.voxel_mm:g} mm, RAI, "
        "TEMPLATE_SPACE MNI, view tlrc.",
        "",
        "Planted effects (GLT betas in % signal change; MNI mm, x<0 = left):",
    ]
    for blob in truth.blobs:
        x, y, z = blob.centre_mni
        lines.append(
            f"  {blob.set_label:9s} {blob.beta_label:28s} {blob.effect_pct:+g} % "
            f"(subject SD {blob.subject_sd_pct:g} %) at ({x:g}, {y:g}, {z:g}), "
            f"{blob.region}, Gaussian sigma {blob.sigma_mm:g} mm"
        )
        lines.append(
            f"{'':12s}atlas regions at the centre: Harvard-Oxford {blob.atlas_regions[0]}, "
            f"AAL2 {blob.atlas_regions[1]}"
        )
    lines += [
        "",
        "With 12 subjects the chx blob is found by the tutorial pipeline (p 0.001, alpha 0.05);",
        "the keypress effect is deliberately weak and is usually not significant.",
        "",
        f"Noise ACF (err_reml, per subject in blur_est.sub-XX.1D): mean a b c = "
        f"{a:.6g} {b:.6g} {c:.6g}.",
        "t-stat DOF = 460 TRs - censored TRs (0-14) - 18 regressors.",
        "",
    ]
    return "\n".join(lines)


def write_demo(
    out_dir: str | Path,
    n_subjects: int = 12,
    seed: int = 0,
    grid: str = "3mm",
    force: bool = False,
) -> DemoTruth:
    """Write the demo dataset to ``out_dir`` and return what was planted.

    Parameters
    ----------
    out_dir : path
        Target directory; created if needed. Must be empty unless ``force``.
    n_subjects : int
        At least 2.
    seed : int
        Non-negative seed; the same options give identical bytes.
    grid : str
        ``"3mm"`` (default) or ``"small"``.
    force : bool
        Write into a non-empty directory (files of the same name are replaced).

    Raises
    ------
    UsageError
        Bad ``n_subjects``/``seed``/``grid``.
    OutputError
        ``out_dir`` is a file, is not empty (without ``force``) or cannot be written.
    """
    from afni_group import afni_io

    if n_subjects < 2:
        raise UsageError(f"--subjects must be at least 2, not {n_subjects}")
    if n_subjects > 99:
        raise UsageError(f"--subjects must be at most 99 (two-digit labels), not {n_subjects}")
    if seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, not {seed}")
    truth = planted_truth(n_subjects, seed, grid)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"{out} is not empty: choose an empty directory or pass --force")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror}") from exc

    g = truth.grid
    written: list[Path] = []
    try:
        _write_text(out / "README", _readme(truth, n_subjects), written)
        description = {
            "Name": "afni-group demo (synthetic afni_proc.py results)",
            "BIDSVersion": "1.8.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["afni-group-demo"],
            "GeneratedBy": [{"Name": "afni-group-demo", "Version": __version__}],
        }
        _write_text(
            out / "dataset_description.json", json.dumps(description, indent=4) + "\n", written
        )
        rows = ["participant_id\tage\tsex\tgroup"]
        rows += [f"{s.sid}\t{s.age}\t{s.sex}\t{s.group}" for s in truth.subjects]
        _write_text(out / "participants.tsv", "\n".join(rows) + "\n", written)
        sidecar = {"TaskName": TASK, "RepetitionTime": TR_S}
        _write_text(out / f"task-{TASK}_bold.json", json.dumps(sidecar, indent=4) + "\n", written)
        bold = _placeholder_bold(g)

        for index, subject in enumerate(truth.subjects):
            sid = subject.sid
            func = out / sid / "func"
            func.mkdir(parents=True, exist_ok=True)
            for run in range(1, N_RUNS + 1):
                path = func / f"{sid}_task-{TASK}_run-{run:02d}_bold.nii.gz"
                path.write_bytes(bold)
                written.append(path)

            results = out / "derivatives" / "afni" / sid / f"{sid}.results"
            results.mkdir(parents=True, exist_ok=True)
            mask, _, stats = subject_volumes(subject, seed, index, g)
            layout = stats_layout(subject.dof)
            history = f"afni-group-demo --seed {seed} --grid {g.name}: synthetic {sid}"
            stats_dset = afni_io.AfniDataset(
                data=stats,
                affine=g.affine,
                labels=[lab for lab, _, _ in layout],
                stat_codes=[code for _, code, _ in layout],
                stat_params=[params for _, _, params in layout],
                space="MNI",
                view="tlrc",
                history=history,
            )
            written.extend(
                _write_afni(
                    afni_io,
                    stats_dset,
                    results / f"stats.{sid}_REML+tlrc",
                    _idcode(seed, index, 0),
                    STATS_ATTRS,
                )
            )
            mask_dset = afni_io.AfniDataset(
                data=mask[..., np.newaxis],
                affine=g.affine,
                labels=["#0"],
                stat_codes=[0],
                stat_params=[()],
                space="MNI",
                view="tlrc",
                history=history,
            )
            written.extend(
                _write_afni(
                    afni_io,
                    mask_dset,
                    results / f"mask_epi_anat.{sid}+tlrc",
                    _idcode(seed, index, 1),
                    MASK_ATTRS,
                )
            )

            blur_rng = _subject_rngs(seed, index)[2]
            epits, errts = _other_blur_sources(blur_rng, subject.acf)
            err_reml = [*subject.acf, subject.fwhm]
            _write_text(
                results / f"blur_est.{sid}.1D", format_blur_est(epits, errts, err_reml), written
            )
            _write_text(
                results / "out.ss_review_uvars.json",
                json.dumps(ss_review_uvars(subject), indent=4) + "\n",
                written,
            )
    except OSError as exc:
        raise OutputError(f"cannot write the demo dataset in {out}: {exc}") from exc
    truth.files = written
    return truth


def _idcode(seed: int, index: int, which: int) -> str:
    """Deterministic AFNI-style id code (``DEM_`` + 22 characters) of dataset ``which``."""
    from afni_group.afni_io.ids import idcode_from_indices

    rng = _subject_rngs(seed, index)[3]
    draws = rng.integers(0, 64, size=(which + 1, 22))[which]
    return idcode_from_indices("DEM", draws)


def _write_afni(afni_io, dset, prefix: Path, idcode: str, attributes: dict) -> list[Path]:
    """Write HEAD/BRIK through afni_io with a fixed id code and date (byte-stable).

    Returns the HEAD and BRIK paths.
    """
    head = afni_io.write_dataset(
        dset, str(prefix), idcode=idcode, date=FIXED_DATE, attributes=attributes
    )
    return [head, head.with_suffix(".BRIK")]


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``afni-group-demo``."""
    p = argparse.ArgumentParser(
        prog="afni-group-demo",
        description=(
            "Write a small synthetic BIDS dataset with afni_proc.py-shaped results "
            "(derivatives/afni/sub-*/sub-*.results/) for trying afni-group."
        ),
    )
    p.add_argument("out_dir", metavar="DIR", help="directory to create (must be empty)")
    p.add_argument("--subjects", type=int, default=12, help="number of subjects (>= 2, default 12)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--grid",
        choices=sorted(GRIDS),
        default="3mm",
        help="3mm: 53x64x50 MNI grid (default); small: 6 mm voxels for quick tests",
    )
    p.add_argument("--force", action="store_true", help="write into a non-empty DIR")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``afni-group-demo``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error argparse already printed
        return 0 if not exc.code else UsageError.exit_code
    try:
        truth = write_demo(args.out_dir, args.subjects, args.seed, args.grid, args.force)
    except AfniGroupError as exc:
        print(f"afni-group-demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    out = Path(args.out_dir)
    g = truth.grid
    print(
        f"afni-group-demo: wrote {len(truth.files)} files for {len(truth.subjects)} subjects "
        f"to {out} (grid {g.name}: {'x'.join(map(str, g.shape))} x {g.voxel_mm:g} mm, "
        f"seed {truth.seed})"
    )
    print(f"  raw BIDS:   {out}/dataset_description.json, participants.tsv, sub-*/func/")
    print(f"  afni_proc:  {out}/derivatives/afni/sub-*/sub-*.results/")
    for blob in truth.blobs:
        x, y, z = blob.centre_mni
        print(
            f"  planted:    {blob.set_label} {blob.effect_pct:+g} % at MNI "
            f"({x:g}, {y:g}, {z:g}) ({blob.region})"
        )
    print(f"  see {out}/README; next: afni-group {out} OUTPUT_DIR group")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
