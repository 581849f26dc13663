"""AFNI statistic codes and BRICK_STATSYM / BRICK_STATAUX text (spec 01 §5)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

STAT_NONE = 0
STAT_CORREL = 2
STAT_TTEST = 3
STAT_FTEST = 4
STAT_ZSCORE = 5
STAT_CHISQ = 6
STAT_BETA = 7
STAT_BINOM = 8
STAT_GAMMA = 9
STAT_POISSON = 10

#: number of auxiliary parameters per AFNI stat code (FUNC_need_stat_aux)
STAT_NPARAMS: dict[int, int] = {0: 0, 2: 3, 3: 1, 4: 2, 5: 0, 6: 1, 7: 2, 8: 2, 9: 2, 10: 1}
#: BRICK_STATSYM / NIML distribution names
STAT_NAMES: dict[int, str] = {
    2: "Correl",
    3: "Ttest",
    4: "Ftest",
    5: "Zscore",
    6: "Chisq",
    7: "Beta",
    8: "Binom",
    9: "Gamma",
    10: "Poisson",
}
#: AFNI short names (3drefit -substatpar, 3dinfo)
STAT_SHORT_NAMES: dict[int, str] = {
    0: "fim",
    2: "fico",
    3: "fitt",
    4: "fift",
    5: "fizt",
    6: "fict",
    7: "fibt",
    8: "fibn",
    9: "figt",
    10: "fipt",
}
_FIRST_STAT, _LAST_STAT = 2, 10

# NIML's full distribution-name table (codes 2..24); only 2..10 are AFNI brick stat codes.
_NIML_DISTNAMES = [
    "none",
    "none",
    "Correl",
    "Ttest",
    "Ftest",
    "Zscore",
    "Chisq",
    "Beta",
    "Binom",
    "Gamma",
    "Poisson",
    "Normal",
    "Ftest_nonc",
    "Chisq_nonc",
    "Logistic",
    "Laplace",
    "Uniform",
    "Ttest_nonc",
    "Weibull",
    "Chi",
    "Invgauss",
    "Extval",
    "Pval",
    "LogPval",
    "Log10Pval",
]
_NIML_NUMPARAM = [0, 0, 3, 1, 2, 0, 1, 2, 2, 2, 1, 2, 3, 2, 2, 2, 2, 2, 3, 1, 2, 2, 0, 0, 0]


def stat_param_text(q: float) -> str:
    """NI_fval_to_char: how AFNI prints one stat parameter (BRICK_STATSYM, reports)."""
    q = float(np.float32(q))
    if q == 0.0:
        return "0"
    lv = int(q) if abs(q) < 99999999.0 else 100000001
    if q == lv and abs(lv) < 100000000:
        return "%d" % lv

    def bstrip(s: str) -> str:
        il = len(s) - 1
        while il > 1 and s[il] in "0 ":
            il -= 1
        return s[: il + 1]

    # decimals by decade: 1e-4..10 -> 6, then one fewer per decade; 1e6..1e7 -> "%-9.0f"
    lvl = int(10.0001 + np.log10(abs(q)))
    if 6 <= lvl <= 15:
        return bstrip("%-9.*f" % (min(6, 16 - lvl), q))
    if lvl == 16:
        return "%-9.0f" % q
    return ("%-12.6e" % q) if q > 0 else ("%-12.5e" % q)


def stat_encode(code: int, params: Sequence[float] = ()) -> str:
    """BRICK_STATSYM entry for one brick, e.g. ``Ttest(10)``; ``none`` for non-stat bricks."""
    if code < _FIRST_STAT or code > len(_NIML_DISTNAMES) - 1:
        return "none"
    np_ = _NIML_NUMPARAM[code]
    p = list(params)[:3] + [0.0] * (3 - min(3, len(params)))
    if np_ == 0:
        return f"{_NIML_DISTNAMES[code]}()"
    return f"{_NIML_DISTNAMES[code]}({','.join(stat_param_text(v) for v in p[:np_])})"


def stat_decode(text: str) -> tuple[int, tuple[float, ...]]:
    """Parse one BRICK_STATSYM entry (NI_stat_decode); unknown text gives ``(0, ())``."""
    s = text.strip()
    if not s:
        return 0, ()
    for code in range(2, len(_NIML_DISTNAMES)):
        name = _NIML_DISTNAMES[code] + "("
        if s[: len(name)].lower() == name.lower():
            nparam = _NIML_NUMPARAM[code]
            parm = [1.0, 1.0, 1.0]
            rest = s[len(name) :]
            for k in range(nparam):
                m = re.match(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", rest)
                if not m:
                    break
                parm[k] = float(np.float32(float(m.group(1))))
                rest = rest[m.end() + 1 :]
            if code > _LAST_STAT:  # not an AFNI brick stat code
                return 0, ()
            return code, tuple(parm[: STAT_NPARAMS[code]])
    # AFNI short names are not valid here (NI_stat_decode only knows NIML names)
    return 0, ()


def _stats_from_statsym(text: str, nvals: int) -> tuple[list[int], list[tuple[float, ...]]]:
    codes = [0] * nvals
    params: list[tuple[float, ...]] = [()] * nvals
    for i, part in enumerate(text.split(";")[:nvals]):
        codes[i], params[i] = stat_decode(part)
    return codes, params


def _stats_from_stataux(
    vals: Sequence[float], nvals: int
) -> tuple[list[int], list[tuple[float, ...]]]:
    """Decode BRICK_STATAUX units ``[brick, code, nparams, p...]`` (thd_initdblk rules)."""
    codes = [0] * nvals
    params: list[tuple[float, ...]] = [()] * nvals
    v = list(vals)
    ipos = 0
    while ipos + 2 < len(v):
        ibr = int(v[ipos])
        code = int(v[ipos + 1])
        nv = int(v[ipos + 2])
        ipos += 3
        vals_here = v[ipos : ipos + max(nv, 0)]
        ipos += max(nv, 0)
        if 0 <= ibr < nvals and _FIRST_STAT <= code <= _LAST_STAT:
            need = STAT_NPARAMS[code]
            p = [float(np.float32(x)) for x in vals_here[:need]]
            p += [0.0] * (need - len(p))
            codes[ibr] = code
            params[ibr] = tuple(p)
    return codes, params


def _stataux_values(codes: Sequence[int], params: Sequence[Sequence[float]]) -> list[float]:
    out: list[float] = []
    for i, (c, p) in enumerate(zip(codes, params, strict=True)):
        if _FIRST_STAT <= c <= _LAST_STAT:
            need = STAT_NPARAMS[c]
            pp = list(p)[:need] + [0.0] * (need - min(need, len(p)))
            out += [float(i), float(c), float(need)] + [float(x) for x in pp]
    return out
