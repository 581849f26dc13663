"""What the demo plants: grids, effects and each subject's drawn parameters (no volumes).

Grids (recorded here because tests and CI depend on them):

* ``3mm`` (default): 53 x 64 x 50 voxels of 3 mm, RAI (ORIENT_SPECIFIC 0 3 4, as afni_proc's
  tlrc outputs), ORIGIN (-78, -75, -63) in DICOM mm, i.e. MNI x from +78 (i = 0, right) to -78,
  y from +75 to -114, z from -63 to +84: the MNI brain cropped tight, x = 0 on a voxel centre.
* ``small``: the same field of view with 6 mm voxels, 27 x 32 x 26 (z to +87), for fast tests.

TEMPLATE_SPACE MNI, view tlrc. Coordinates in the demo are MNI mm (RAS+/LPI sense:
x < 0 is left, y < 0 posterior), which is what AFNI calls "LPI" coordinates.

DOF: 2 runs x 230 TRs = 460, minus 0-14 censored TRs, minus 18 regressors (4 task + 8
polort-3 baseline + 6 motion), i.e. 428-442 (fitt(dof), fift(1, dof), Full_Fstat fift(4, dof)).

Randomness: every subject has its own ``numpy.random.Generator(PCG64)`` stream seeded from
``SeedSequence([seed, subject_index])``, so subject 3 is the same whatever ``--subjects`` is, and
the same seed gives identical bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from afni_group.errors import UsageError
from afni_group.programs.acf.core import acf_fwhm

# --------------------------------------------------------------------------- constants

TR_S = 2.0

N_RUNS = 2

TRS_PER_RUN = 230

N_REGRESSORS = 18  # 4 task + 2 runs x (polort 3 + 1) + 6 motion

MAX_CENSORED = 14

STIMS = ("leftchx", "rightchx", "leftpress", "rightpress")

GLTS = ("left_vs_right_chx", "left_vs_right_press")

# Group-mean ACF and the per-subject jitter (SD) of each parameter.
ACF_MEAN = (0.7, 3.0, 10.0)

ACF_JITTER = (0.02, 0.12, 0.5)


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


# --------------------------------------------------------------------------- subjects


def subject_rngs(seed: int, index: int, session: int = 0) -> list[np.random.Generator]:
    """Independent streams for subject ``index`` (0-based): scalars, volumes, blur, idcodes.

    Separate streams keep the scalar truth computable without making volumes, and keep
    each part unchanged when another part draws more numbers. Session ``k`` > 0 (0-based) of a
    multi-session demo has its own streams; session 0 uses the single-session ones.
    """
    entropy = [int(seed), int(index)] + ([int(session)] if session else [])
    children = np.random.SeedSequence(entropy).spawn(4)
    return [np.random.Generator(np.random.PCG64(ss)) for ss in children]


def subject_truth(seed: int, index: int) -> SubjectTruth:
    """Draw the scalar parameters of subject ``index`` (0-based; label ``index + 1``)."""
    rng = subject_rngs(seed, index)[0]
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


def session_truth(
    subject: SubjectTruth, session: int, group_effect: float = 0.0, session_effect: float = 0.0
) -> SubjectTruth:
    """One session of a subject: the chx effect plus the planted group and session effects.

    ``group_effect`` (% signal change) is added for the ``patient`` group, ``session_effect``
    once per session after the first (0-based ``session``), so a two-group or a pre/post
    analysis has a known difference to find. With both 0 this is ``subject`` itself.
    """
    extra = (group_effect if subject.group == "patient" else 0.0) + session * session_effect
    if not extra:
        return subject
    effects = dict(subject.effects_pct)
    effects["chx"] = effects["chx"] + extra
    return replace(subject, effects_pct=effects)
