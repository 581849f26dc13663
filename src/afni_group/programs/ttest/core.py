"""3dttest++'s t-tests on arrays, in AFNI's float32 arithmetic (spec 08 §2–§5).

Every test runs over all voxels at once (arrays ``(n_subjects, n_voxels)``), with the
arithmetic of AFNI's per-voxel C code: float32 values accumulated subject by subject in
order, each difference rounded to float32 before it is squared, so the bricks match AFNI's bit
for bit. ``-toz`` converts t to z with AFNI's own recipe (:func:`t2z`), including its loss of
precision for large positive t.

:func:`make_design` checks a design and gives its sub-brick layout (labels, stat codes, DOFs);
:func:`ttest` computes the bricks and, optionally, the residuals that ``-Clustsim`` randomises.
Bad designs raise :class:`ValueError`; nothing is read or written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from afni_group.programs.ttest import regression
from afni_group.programs.ttest.regression import Covariates, Regression, ratio

#: largest |z| (one-sided p ~ 6e-36) and largest |t| stored without -toz
ZMAX = 13.0
TMAX = np.float32(99.0)
#: t given to a test whose sum of squares is 0 (mean > 0: +19, < 0: -19)
DEGENERATE_T = np.float32(19.0)
KINDS = ("one", "pooled", "unpooled", "paired")
STAT_TTEST = 3
STAT_ZSCORE = 5
F32 = np.float32


# --------------------------------------------------------------------------------------------
# t -> z (spec 08 §3)


def qginv(p: np.ndarray) -> np.ndarray:
    """AFNI's ``GIC_qginv``: the N(0,1) quantile of upper-tail probability ``p`` (double).

    A&S 26.2.23 followed by three Newton steps on ``erfc``; |result| capped at 13; p and 1 - p
    at or below 1e-37 give ±13. Positive for p <= 0.5.
    """
    p = np.asarray(p, dtype=np.float64)
    dp = np.where(p <= 0.5, p, 1.0 - p)
    tiny = dp <= 1.0e-37
    safe = np.where(tiny, 0.5, dp)
    dt = np.sqrt(-2.0 * np.log(safe))
    dx = dt - ((0.010328 * dt + 0.802853) * dt + 2.515517) / (
        ((0.001308 * dt + 0.189269) * dt + 1.432788) * dt + 1.0
    )
    for _ in range(3):
        dq = 0.5 * special.erfc(dx / 1.414213562373095) - safe
        ddq = np.exp(-0.5 * dx * dx) / 2.506628274631000
        dx = dx + dq / ddq
    dx = np.where(tiny, ZMAX, np.minimum(dx, ZMAX))
    return np.where(p <= 0.5, dx, -dx)


def t2z(t: np.ndarray, dof: float | np.ndarray) -> np.ndarray:
    """AFNI's ``GIC_student_t2z`` on float32 t: z as float32, clipped to ±13.

    The upper tail of a positive t is taken as ``1 - (1 - I/2)`` in double, as AFNI does, so
    z loses precision above ~7.4 and jumps to 13 once the one-sided p is below ~1.1e-16.
    """
    tt = np.asarray(t, dtype=np.float64)
    dof = np.asarray(dof, dtype=np.float64)
    x = dof / (dof + tt * tt)
    ibeta = special.betainc(0.5 * dof, 0.5, x)
    pp = np.where(tt > 0.0, 1.0 - 0.5 * ibeta, 0.5 * ibeta)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = -qginv(pp)
    return np.clip(z, -ZMAX, ZMAX).astype(np.float32)


def store_stat(t: np.ndarray, dof: float | np.ndarray, toz: bool) -> np.ndarray:
    """The stored statistic: z (``-toz``) or t clipped to ±99."""
    if toz:
        return t2z(t, dof)
    return np.clip(np.asarray(t, dtype=np.float32), -TMAX, TMAX)


# --------------------------------------------------------------------------------------------
# float32 helpers: sums in subject order


def seq_sum(rows: np.ndarray) -> np.ndarray:
    """Sum over axis 0, one row after the other in float32 (AFNI's loop order)."""
    total = np.zeros(rows.shape[1:], dtype=np.float32)
    for row in rows:
        total += row
    return total


def mean_ss(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 mean and sum of squared deviations, accumulated in subject order."""
    n = x.shape[0]
    mean = seq_sum(x) / F32(n)
    ss = np.zeros_like(mean)
    for row in x:
        d = row - mean
        ss += d * d
    return mean, ss


def _degenerate(effect: np.ndarray, t: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """t where the sum of squares is 0: ±19 by the sign of the effect, else 0."""
    zero = ss == 0
    if np.any(zero):
        t = np.where(zero, np.sign(effect).astype(np.float32) * DEGENERATE_T, t)
    return t


# --------------------------------------------------------------------------------------------
# simple tests (AFNI's ttest_toz)


def one_sample(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, t and residuals (x - mean) of a one-sample test; DOF n - 1."""
    n = x.shape[0]
    mean, ss = mean_ss(x)
    t = ratio(mean, np.sqrt(ss / ((F32(n) - F32(1)) * F32(n))))
    return mean, _degenerate(mean, t, ss), x - mean


def two_sample(
    x: np.ndarray, y: np.ndarray, pooled: bool = True
) -> tuple[np.ndarray, np.ndarray, float | np.ndarray, np.ndarray, np.ndarray]:
    """Difference of means, t, DOF and per-set residuals of an unpaired test.

    Pooled: DOF nA + nB - 2. Unpooled (Welch): the DOF is per voxel (float32).
    """
    nx, ny = F32(x.shape[0]), F32(y.shape[0])
    mx, sx = mean_ss(x)
    my, sy = mean_ss(y)
    delta = mx - my
    both = sx + sy
    if pooled:
        var = both / (nx + ny - F32(2))
        t = ratio(delta, np.sqrt(var * (F32(1) / nx + F32(1) / ny)))
        dof: float | np.ndarray = float(x.shape[0] + y.shape[0] - 2)
    else:
        a = sx / ((nx - F32(1)) * nx)
        b = sy / ((ny - F32(1)) * ny)
        val = a + b
        t = ratio(delta, np.sqrt(val))
        dof = ratio(val * val, a * a / (nx - F32(1)) + b * b / (ny - F32(1)))
        # AFNI: the DOF of an all-zero variance voxel is nA + nB - 2
        dof = np.where(both == 0, nx + ny - F32(2), dof).astype(np.float32)
    return delta, _degenerate(delta, t, both), dof, x - mx, y - my


def paired(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean difference and t of a paired test (DOF n - 1)."""
    n = x.shape[0]
    total = np.zeros(x.shape[1:], dtype=np.float32)
    for a, b in zip(x, y, strict=True):
        total += a - b
    mean = total / F32(n)
    ss = np.zeros_like(mean)
    for a, b in zip(x, y, strict=True):
        d = (a - b) - mean
        ss += d * d
    t = ratio(mean, np.sqrt(ss / ((F32(n) - F32(1)) * F32(n))))
    return mean, _degenerate(mean, t, ss)


# --------------------------------------------------------------------------------------------
# designs and their output layout


@dataclass(frozen=True)
class Brick:
    """One output sub-brick: label and AFNI statistic code/parameters (0, () for an effect)."""

    label: str
    code: int = 0
    params: tuple[float, ...] = ()


@dataclass(frozen=True)
class TTestDesign:
    """A checked 3dttest++ design (build it with :func:`make_design`).

    Attributes
    ----------
    kind : {"one", "pooled", "unpooled", "paired"}
    n_a, n_b : int
        Values in setA and setB (n_b = 0 for one set).
    names : (str, str)
        Set names (``-labelA``/``-labelB`` or the LONG-form names; ``SetA``/``SetB``).
    toz : bool
        Output z instead of t (forced by ``-unpooled``).
    covariates : Covariates or None
    """

    kind: str
    n_a: int
    n_b: int = 0
    names: tuple[str, str] = ("SetA", "SetB")
    toz: bool = False
    covariates: Covariates | None = None

    @property
    def two_sample(self) -> bool:
        return self.kind != "one"

    @property
    def n_cov(self) -> int:
        return 0 if self.covariates is None else len(self.covariates.names)

    @property
    def dofs(self) -> tuple[int, int, int]:
        """DOF of the A-B test, of setA's and of setB's one-set tests (AFNI's dof_AB/A/B)."""
        mm = self.n_cov + 1
        dof_a = self.n_a - mm
        dof_b = self.n_b - mm if self.two_sample else 0
        dof_ab = dof_a if self.kind == "paired" else dof_a + dof_b
        return dof_ab, dof_a, dof_b

    def bricks(self) -> list[Brick]:
        """Sub-brick labels and stat codes in AFNI's order (spec 08 §5.1)."""
        stat = "Zscr" if self.toz else "Tstat"
        dof_ab, dof_a, dof_b = self.dofs
        a, b = self.names[0][:12], self.names[1][:12]
        covs = [c[:12] for c in (self.covariates.names if self.covariates else ())]

        def test(label: str, dof: int) -> Brick:
            if self.toz:
                return Brick(label, STAT_ZSCORE)
            return Brick(label, STAT_TTEST, (float(dof),))

        def block(name: str, dof: int) -> list[Brick]:
            out = [Brick(f"{name}_mean"), test(f"{name}_{stat}", dof)]
            for c in covs:
                out += [Brick(f"{name}_{c}"), test(f"{name}_{c}_{stat}", dof)]
            return out

        if not self.two_sample:
            return block(a, dof_a)
        return block(f"{a}-{b}", dof_ab) + block(a, dof_a) + block(b, dof_b)

    def regressions(
        self, permutation: np.ndarray | None = None
    ) -> tuple[Regression, Regression | None]:
        """setA's and setB's centred design matrices and pseudo-inverses (setB's is setA's for
        ``-paired``, None for one set); ``permutation`` reorders the covariate rows across the
        sets first, as each ``-permute`` randomisation does.
        """
        if self.covariates is None:
            raise ValueError("design has no covariates")
        return regression.design_regressions(
            self.covariates, self.kind, self.n_a, self.n_b, permutation
        )


def make_design(
    kind: str,
    n_a: int,
    n_b: int = 0,
    names: Sequence[str] = ("SetA", "SetB"),
    toz: bool = False,
    covariates: Covariates | None = None,
) -> TTestDesign:
    """Check a design as 3dttest++ does; ``-unpooled`` turns on ``-toz``.

    Raises
    ------
    ValueError
        Fewer than 2 values in a set, ``-paired`` with unequal sets, too many covariates,
        a constant covariate, bad ``-center``/``-cmeth``.
    """
    if kind not in KINDS:
        raise ValueError(f"design must be one of {', '.join(KINDS)}, not {kind!r}")
    two = kind != "one"
    if n_a < 2 or (two and n_b < 2):
        raise ValueError(
            f"need at least 2 values in each set (setA has {n_a}"
            + (f", setB has {n_b})" if two else ")")
        )
    if kind == "paired" and n_a != n_b:
        raise ValueError(f"Cannot do '-paired' with unequal set sizes: #A={n_a} #B={n_b}")
    names = (str(names[0]), str(names[1]) if len(names) > 1 else "SetB")
    if covariates is not None:
        regression.check_covariates(kind, n_a, n_b, covariates)
    return TTestDesign(kind, int(n_a), int(n_b) if two else 0, names, toz or kind == "unpooled",
                       covariates)  # fmt: skip


# --------------------------------------------------------------------------------------------
# the test over all voxels


@dataclass
class TTestResult:
    """Output of :func:`ttest`.

    Attributes
    ----------
    bricks : ndarray of float32, shape (n_voxels, n_bricks)
    layout : list of Brick
        Labels and stat codes, one per brick.
    residuals : ndarray of float32, shape (n_a + n_b, n_voxels) or None
        setA's then setB's residuals (0 where the voxel was skipped).
    skipped : int
        Voxels skipped for constant data (outside the mask not counted).
    """

    bricks: np.ndarray
    layout: list[Brick]
    residuals: np.ndarray | None = None
    skipped: int = 0
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = [b.label for b in self.layout]


def constant_voxels(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Voxels where every setA value (or every setB value) equals the first one."""
    const = np.all(a == a[0], axis=0)
    if b is not None:
        const |= np.all(b == b[0], axis=0)
    return const


Test = regression.Test


def design_tests(
    design: TTestDesign,
    a: np.ndarray,
    b: np.ndarray | None,
    permutation: np.ndarray | None = None,
    first_only: bool = False,
) -> tuple[list[Test], list[np.ndarray]]:
    """Every test of a design, as (effect, t, DOF), in brick order, and the residuals.

    Without covariates: the A-B test, then the plain one-sample tests of A and of B (or the
    one-sample test of A). With covariates (AFNI's ``regress_toz``): one test per coefficient
    for A-B, then A, then B. ``first_only``: the first test only (the randomisation's
    statistic); ``permutation`` permutes the covariate rows first (:meth:`TTestDesign.regressions`).
    """
    if design.covariates is not None:
        regs = design.regressions(permutation)
        return regression.regression_tests(design, a, b, regs, first_only)
    if not design.two_sample:
        mean, t, res = one_sample(a)
        return [(mean, t, float(design.n_a - 1))], [res]
    assert b is not None
    if design.kind == "paired":
        delta, t = paired(a, b)
        tests: list[Test] = [(delta, t, float(design.n_a - 1))]
        res = [a - mean_ss(a)[0], b - mean_ss(b)[0]] if not first_only else []
    else:
        delta, t, dof, ra, rb = two_sample(a, b, pooled=design.kind == "pooled")
        tests, res = [(delta, t, dof)], [ra, rb]
    if not first_only:
        for x, n in ((a, design.n_a), (b, design.n_b)):
            mean, tx, _ = one_sample(x)
            tests.append((mean, tx, float(n - 1)))
    return tests, res


def ttest(
    a: np.ndarray,
    b: np.ndarray | None,
    design: TTestDesign,
    *,
    mask: np.ndarray | None = None,
    residuals: bool = False,
) -> TTestResult:
    """3dttest++ on arrays.

    Parameters
    ----------
    a, b : ndarray, shape (n_a, n_voxels) and (n_b, n_voxels)
        setA's and setB's values (``b`` None for one set). Non-finite values count as 0, as
        when AFNI loads its datasets.
    design : TTestDesign
    mask : ndarray of bool, shape (n_voxels,), optional
        Voxels to test; the others are 0 in every brick.
    residuals : bool
        Also return the residuals (as ``-resid`` and ``-Clustsim`` do).

    Returns
    -------
    TTestResult
        Voxels with constant data in a set (spec 08 §2.3) are 0 in every brick and residual.
    """
    a = _finite(a)
    b = None if b is None else _finite(b)
    if a.shape[0] != design.n_a or (design.two_sample and (b is None or b.shape[0] != design.n_b)):
        raise ValueError("data do not match the design's set sizes")
    n_vox = a.shape[1]
    active = ~constant_voxels(a, b if design.two_sample else None)
    inside = np.ones(n_vox, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    skipped = int(np.count_nonzero(inside & ~active))
    active &= inside
    idx = np.flatnonzero(active)
    sub_a = a[:, idx]
    sub_b = None if b is None or not design.two_sample else b[:, idx]
    tests, res = design_tests(design, sub_a, sub_b)
    layout = design.bricks()
    bricks = np.zeros((n_vox, len(layout)), dtype=np.float32)
    for j, (effect, t, dof) in enumerate(tests):
        bricks[idx, 2 * j] = effect
        bricks[idx, 2 * j + 1] = store_stat(t, dof, design.toz)
    resid = None
    if residuals:
        resid = np.zeros((design.n_a + design.n_b, n_vox), dtype=np.float32)
        resid[:, idx] = np.concatenate(res)
    return TTestResult(bricks, layout, resid, skipped)


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    return np.where(bad, np.float32(0), x) if bad.any() else x
