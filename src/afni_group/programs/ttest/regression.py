"""3dttest++'s covariate designs (``-covariates``, spec 08 §4), in AFNI's float32 arithmetic.

Per set a design matrix X = [1, centred covariates], AFNI's pseudo-inverse P = inv(X'X)X' and
Q = inv(X'X) (computed in double, stored as float32), and the per-voxel regression of
``regress_toz``: β = P·z, residuals z - Xβ, and the t of each coefficient for A-B, A and B.
Used by :mod:`.core` (which owns the design and the output layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from afni_group.programs.ttest.core import TTestDesign

F32 = np.float32
#: variance used when a regression's residual variance is <= 0, and the diagonal of inv(X'X)
#: used when it is <= 0
VBIG = np.float32(1.0e24)
QBIG = np.float32(1.0e9)
CENTERS = ("DIFF", "SAME", "NONE")
CENTER_METHODS = ("MEAN", "MEDIAN")
MAX_COVARIATES = 31
#: pseudo-inverse regularisation (AFNI's PSINV_EPS)
PSINV_EPS = 1.0e-12

#: (effect, t, DOF) of one test over the voxels
Test = tuple[np.ndarray, np.ndarray, "float | np.ndarray"]


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` without warnings (0/0 and x/0 are handled by the callers)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / den


def pseudo_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AFNI's ``mri_matrix_psinv_pair``: ``P = inv(X'X) X'`` and ``Q = inv(X'X)`` as float32.

    Columns scaled to unit norm, SVD in double, singular values s -> s/(s² + δ) with
    δ = max(1e-12·s_max², 1e-12), rescaled; sums in AFNI's order.
    """
    a = np.asarray(x, dtype=np.float64)
    norms = np.sqrt(np.sum(a * a, axis=0))
    scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
    u, s, vt = np.linalg.svd(a * scale, full_matrices=False)
    smax = float(s.max())
    if smax <= 0:
        raise ValueError("covariate matrix has no non-zero singular value")
    delta = max(PSINV_EPS * smax * smax, PSINV_EPS)
    s = s / (s * s + delta)
    v = vt.T
    # P[i, j] = sum_k s_k V[i, k] U[j, k] in k order, then times the column scale of row i
    p = np.zeros((a.shape[1], a.shape[0]))
    q = np.zeros((a.shape[1], a.shape[1]))
    for k in range(s.size):
        p += np.outer(s[k] * v[:, k], u[:, k])
        q += np.outer(s[k] * s[k] * v[:, k], v[:, k])
    p = (p * scale[:, None]).astype(np.float32)
    q = (q * scale[:, None] * scale[None, :]).astype(np.float32)
    return p, q


def center_value(values: np.ndarray, method: str) -> np.float32:
    """AFNI's ``qmean_float`` (sum in order / n) or ``qmed_float`` (median) of float32 values."""
    v = np.asarray(values, dtype=np.float32)
    if method == "MEDIAN":
        s = np.sort(v)
        n = s.size
        if n % 2:
            return s[n // 2]
        return F32(0.5 * (float(s[n // 2 - 1]) + float(s[n // 2])))
    total = F32(0)
    for x in v:
        total += x
    return total / F32(v.size)


@dataclass(frozen=True)
class Covariates:
    """Subject-level covariates of a design (``-covariates``; spec 08 §4).

    Attributes
    ----------
    names : tuple of str
        Column names (the covariate file's header).
    a, b : ndarray of float32, shape (n_subjects, n_covariates)
        Values of setA's and setB's subjects, in dataset order (``b`` is ``None`` for one set;
        for ``-paired`` it is not used: setB takes setA's matrix).
    center : {"DIFF", "SAME", "NONE"}
        ``-center``: each set on its own mean (default), on the mean over both sets
        (unpaired two-sample only; otherwise DIFF), or not at all.
    method : {"MEAN", "MEDIAN"}
        ``-cmeth``.
    """

    names: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray | None = None
    center: str = "DIFF"
    method: str = "MEAN"


@dataclass(frozen=True)
class Regression:
    """Design matrix X (n, m+1) of one set with AFNI's P = inv(X'X)X' and Q = inv(X'X)."""

    x: np.ndarray
    p: np.ndarray
    q: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> Regression:
        x = np.asarray(x, dtype=np.float32)
        p, q = pseudo_inverse(x)
        return cls(x, p, q)


def fit(z: np.ndarray, reg: Regression) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AFNI's per-set regression (``regress_toz``): betas, residuals ``z - Xβ`` and their SS.

    ``β_k = Σ_j P[k, j]·z_j`` and the residual ``-(-z_j + Σ_k X[j, k]·β_k)``, float32 in
    index order.
    """
    n_coef, n = reg.p.shape
    beta = np.zeros((n_coef,) + z.shape[1:], dtype=np.float32)
    for k in range(n_coef):
        for j in range(n):
            beta[k] += reg.p[k, j] * z[j]
    zdif = np.empty_like(z)
    ss = np.zeros(z.shape[1:], dtype=np.float32)
    for j in range(n):
        val = -z[j]
        for k in range(n_coef):
            val = val + reg.x[j, k] * beta[k]
        zdif[j] = val
        ss += val * val
    return beta, -zdif, ss


def qdiag(q: np.ndarray, k: int) -> np.float32:
    d = F32(q[k, k])
    return d if d > 0 else QBIG


def positive(var: np.ndarray) -> np.ndarray:
    return np.where(var > 0, var, VBIG).astype(np.float32)


def check_covariates(kind: str, n_a: int, n_b: int, cov: Covariates) -> None:
    """3dttest++'s checks of a covariate table against a design (ValueError)."""
    m = len(cov.names)
    if m == 0:
        raise ValueError("covariates table has no covariate columns")
    if m > MAX_COVARIATES:
        raise ValueError(f"Too many covariates ({m} > {MAX_COVARIATES})")
    if cov.center not in CENTERS:
        raise ValueError(f"-center must be NONE, DIFF or SAME, not {cov.center!r}")
    if cov.method not in CENTER_METHODS:
        raise ValueError(f"-cmeth must be MEAN or MEDIAN, not {cov.method!r}")
    if np.shape(cov.a) != (n_a, m):
        raise ValueError(f"covariates of setA have shape {np.shape(cov.a)}, need ({n_a}, {m})")
    if n_a - m < 2 or (kind != "one" and n_b - m < 2):
        raise ValueError(
            f"Too many covariates ({m}) for the number of values (setA {n_a}"
            + (f", setB {n_b})" if kind != "one" else ")")
        )
    if kind in ("pooled", "unpooled") and np.shape(cov.b) != (n_b, m):
        raise ValueError(f"covariates of setB have shape {np.shape(cov.b)}, need ({n_b}, {m})")
    values = np.asarray(cov.a) if kind in ("one", "paired") else np.vstack([cov.a, cov.b])
    for j, name in enumerate(cov.names):
        if np.all(values[:, j] == values[0, j]):
            raise ValueError(f"covariate '{name}' is constant: remove it")


def design_regressions(
    cov: Covariates,
    kind: str,
    n_a: int,
    n_b: int,
    permutation: np.ndarray | None = None,
) -> tuple[Regression, Regression | None]:
    """setA's and setB's centred design matrices and pseudo-inverses.

    setB's is setA's for ``-paired`` and None for one set. ``permutation`` (length
    n_a + n_b) reorders the covariate rows across both sets first, as ``-permute`` does in
    each randomisation (AFNI permutes the original, uncentred values, then centres).
    """
    ca = np.asarray(cov.a, dtype=np.float32)
    cb = None
    if kind in ("pooled", "unpooled"):
        cb = np.asarray(cov.b, dtype=np.float32)
    if permutation is not None and cb is not None:
        both = np.concatenate([ca, cb])[np.asarray(permutation)]
        ca, cb = both[:n_a], both[n_a:]
    ca, cb = ca.copy(), None if cb is None else cb.copy()
    if cov.center != "NONE":
        for j in range(ca.shape[1]):
            if cov.center == "SAME" and cb is not None:
                c = center_value(np.concatenate([ca[:, j], cb[:, j]]), cov.method)
                ca[:, j] -= c
                cb[:, j] -= c
                continue
            ca[:, j] -= center_value(ca[:, j], cov.method)
            if cb is not None:
                cb[:, j] -= center_value(cb[:, j], cov.method)
    reg_a = Regression.of(np.hstack([np.ones((n_a, 1), dtype=np.float32), ca]))
    if cb is None:
        return reg_a, (reg_a if kind == "paired" else None)
    return reg_a, Regression.of(np.hstack([np.ones((n_b, 1), dtype=np.float32), cb]))


def regression_tests(
    design: TTestDesign,
    a: np.ndarray,
    b: np.ndarray | None,
    regs: tuple[Regression, Regression | None],
    first_only: bool = False,
) -> tuple[list[Test], list[np.ndarray]]:
    """AFNI's ``regress_toz`` over voxels: (effect, t, DOF) per coefficient for A-B, then A,
    then B (``first_only``: the A-B, or A, intercept only), and the residuals per set."""
    mm = design.n_cov + 1
    n_coef = 1 if first_only else mm
    reg_a, reg_b = regs
    beta_a, res_a, ss_a = fit(a, reg_a)
    tests: list[Test] = []
    res = [res_a]
    sets = [(beta_a, ss_a, reg_a, design.n_a)]
    if design.two_sample:
        assert b is not None and reg_b is not None
        beta_b, res_b, ss_b = fit(b, reg_b)
        res.append(res_b)
        sets.append((beta_b, ss_b, reg_b, design.n_b))
        if design.kind == "paired":
            var_ab = np.zeros_like(ss_a)
            for ra, rb in zip(res_a, res_b, strict=True):
                d = (-ra) - (-rb)
                var_ab += d * d
            var_ab = positive(var_ab / F32(design.n_a - mm))
        else:
            var_ab = positive((ss_a + ss_b) / F32(design.n_a + design.n_b - 2 * mm))
        for k in range(n_coef):
            diff = beta_a[k] - beta_b[k]
            den = (
                F32(reg_a.q[k, k])
                if design.kind == "paired"
                else F32(reg_a.q[k, k] + reg_b.q[k, k])
            )
            den = den if den > 0 else QBIG
            tests.append((diff, ratio(diff, np.sqrt(var_ab * den)), float(design.dofs[0])))
        if first_only:
            return tests, res
    for beta, ss, reg, n in sets:
        var = positive(ss / F32(n - mm))
        for k in range(n_coef):
            t = ratio(beta[k], np.sqrt(var * qdiag(reg.q, k)))
            tests.append((beta[k], t, float(n - mm)))
    return tests, res
