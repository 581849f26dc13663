"""p-value ↔ statistic conversions for AFNI statistic codes (spec 06 b.3–b.4, 07 §3.2).

AFNI stores a per-brick statistic code (3 = t-test, 4 = F-test, 5 = z-score, ...) and its
parameters (degrees of freedom ...). ``p2dsetstat`` and ``3dClusterize p=P`` turn a p-value into
a threshold on that statistic with the rules implemented here:

- t, z and correlation are *two-sided* stats: the given p is the two-tailed probability, and
  ``-1sided`` doubles it first;
- F, chi², beta, binomial, gamma and Poisson are upper-tail only; p is never doubled;
- the p-value and the parameters are float32 in AFNI, so they are rounded to float32 here too
  (this matters at the last printed digit, spec 06 b.4);
- the result is float32.

scipy's inverse distributions are exact in double precision and reproduce AFNI's printed
``%.6f`` values for every DOF ≥ 2 (1,010 real runs in the test data). AFNI's own inverse
incomplete beta loses accuracy at DOF = 1 (e.g. two-sided p = 1e-4: AFNI 12980.69, exact 6366.20);
that case is *not* imitated here (it never occurs in a group analysis, DOF = 2N - 2 ≥ 2).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from afni_group.afni_io import (
    STAT_BETA,
    STAT_BINOM,
    STAT_CHISQ,
    STAT_CORREL,
    STAT_FTEST,
    STAT_GAMMA,
    STAT_NAMES,
    STAT_NPARAMS,
    STAT_TTEST,
    STAT_ZSCORE,
    stat_encode,
    stat_param_text,
)
from afni_group.programs.checks import check_sided

#: Codes, names and parameter counts live with the file formats, in afni_io.
STAT_SYMBOLS = STAT_NAMES

#: Codes whose p-values are two-sided in AFNI (``STAT_nsides`` = 2).
TWO_SIDED_CODES = frozenset({STAT_CORREL, STAT_TTEST, STAT_ZSCORE})


def stat_nsides(code: int) -> int:
    """Number of sides of a statistic as 3dClusterize sees it (07 §2 step 3).

    Returns 2 for t, z and correlation, 1 for the other statistics, 0 for a non-stat brick.
    """
    if code in TWO_SIDED_CODES:
        return 2
    return 1 if code in STAT_SYMBOLS else 0


def format_stat_param(value: float) -> str:
    """One statistic parameter as AFNI prints it (``NI_fval_to_char``): ``22``, ``15.49``."""
    return stat_param_text(value)


def stat_symbol(code: int, params: tuple[float, ...] | list[float]) -> str:
    """AFNI's text form of a statistic, e.g. ``Ttest(22)``, ``Zscore()``, ``Ftest(1,20)``."""
    return stat_encode(int(code), params) if int(code) in STAT_NAMES else "none"


def pval_to_stat(
    pval: float, code: int, params: tuple[float, ...] | list[float], sided: str
) -> float:
    """Statistic threshold for a p-value, as ``p2dsetstat`` computes it (06 b.4).

    Parameters
    ----------
    pval : float
        The user's p-value; rounded to float32 as AFNI's ``atof`` into a float does.
    code : int
        AFNI statistic code of the brick (2..10).
    params : sequence of float
        The brick's statistic parameters (DOF ...), rounded to float32 as stored by AFNI.
    sided : {"1sided", "2sided", "bisided"}
        ``2sided`` and ``bisided`` are the same computation.

    Returns
    -------
    float
        The float32 threshold as a Python float. ``-1.0`` when p is not inside (0, 1) (AFNI's
        error value), ``0.0`` when the effective p is ≥ 0.999999 or the parameters are invalid
        (e.g. t with DOF < 1).

    Raises
    ------
    ValueError
        For an unknown sidedness or a code that is not a statistic.
    """
    check_sided(sided)
    code = int(code)
    if code not in STAT_SYMBOLS:
        raise ValueError(f"statistic code {code} is not an AFNI statistic (2..10)")
    p32 = np.float32(pval)
    if not (0.0 < p32 < 1.0):  # checked before any doubling
        return -1.0
    if sided == "1sided" and code in TWO_SIDED_CODES:
        p32 = np.float32(p32 * np.float32(2.0))
    if p32 >= 0.999999:
        return 0.0
    p = float(p32)
    par = [float(np.float32(v)) for v in params]
    if len(par) < STAT_NPARAMS[code]:
        # AFNI quirk: a missing parameter array returns p itself (06 b.4 step 4).
        return float(np.float32(p))
    value = _inverse_upper(p, code, par)
    if not math.isfinite(value) or value < 0:
        return -1.0
    return float(np.float32(value))


def _inverse_upper(p: float, code: int, par: list[float]) -> float:
    """Threshold in double precision; p is already the tail probability AFNI uses."""
    if code == STAT_TTEST:
        dof = par[0]
        if dof < 1:
            return 0.0
        return float(stats.t.isf(p / 2.0, dof))
    if code == STAT_ZSCORE:
        return float(stats.norm.isf(p / 2.0))
    if code == STAT_CORREL:
        nsam, nfit, nort = par[:3]
        a = 0.5 * (nsam - nfit - nort)
        if nsam <= nfit + nort or nfit < 1 or nort < 1:
            return 0.0
        x = float(special.betaincinv(a, 0.5 * nfit, p))
        return math.sqrt(max(0.0, 1.0 - x))
    if code == STAT_FTEST:
        dfn, dfd = par[:2]
        if dfn <= 0 or dfd <= 0:
            return 0.0
        return float(stats.f.isf(p, dfn, dfd))
    if code == STAT_CHISQ:
        return float(stats.chi2.isf(p, par[0])) if par[0] > 0 else 0.0
    if code == STAT_BETA:
        return float(stats.beta.isf(p, par[0], par[1]))
    if code == STAT_BINOM:
        return float(stats.binom.isf(p, int(par[0]), par[1]))
    if code == STAT_GAMMA:
        return float(stats.gamma.isf(p, par[0], scale=1.0 / par[1] if par[1] else 1.0))
    return float(stats.poisson.isf(p, par[0]))


def t_to_z(t: np.ndarray | float, dof: float) -> np.ndarray:
    """The z score with the same tail probability as ``t`` with ``dof`` degrees of freedom.

    ``z = -Φ⁻¹(P(T > |t|))·sign(t)``, computed from the lower tail of ``-|t|`` so that large
    |t| keeps its precision (no ``1 - p`` cancellation). Where that probability underflows
    (|t| beyond ~1e13 at 22 DOF) its logarithm comes from the t tail's power law instead
    (``P(T > x) ~ K·ν^((ν-1)/2)·x^-ν``, K the density's constant) and ``Φ⁻¹`` from
    :func:`scipy.special.ndtri_exp`. NaN stays NaN; t = 0 gives 0.

    Parameters
    ----------
    t : array_like
        t statistics.
    dof : float
        Degrees of freedom (> 0).

    Returns
    -------
    numpy.ndarray
        float64 z scores, the shape of ``t``.
    """
    if not dof > 0:
        raise ValueError(f"degrees of freedom must be > 0, not {dof}")
    t = np.asarray(t, dtype=np.float64)
    x = np.abs(t)
    tail = special.stdtr(dof, -x)
    z = -special.ndtri(tail)
    deep = tail <= 0  # underflowed: log-tail from the asymptote
    if np.any(deep):
        log_k = (
            special.gammaln((dof + 1) / 2)
            - special.gammaln(dof / 2)
            - 0.5 * math.log(dof * math.pi)
        )
        log_tail = log_k + 0.5 * (dof + 1) * math.log(dof) - math.log(dof) - dof * np.log(x[deep])
        z[deep] = -special.ndtri_exp(log_tail)
    return np.where(np.isnan(t), np.nan, np.sign(t) * z + 0.0)  # + 0.0: no -0 at t = 0
