"""Group ACF parameters: the mean of every subject's REML ACF estimate (spec 04 §2).

The tutorial greps ``err_reml ACF`` in every ``blur_est*`` file, keeps the first three numbers
(a, b, c; the 4th, the effective FWHM, is dropped), averages each column over the matched lines and
prints the means with awk's ``%.6g``. Unlike the tutorial's shell code, one subject works here (the
shell version fails when grep sees a single file, because grep then prints no file-name prefix).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from afni_group.errors import InputDataError, MissingInputError

#: Text that marks the REML ACF line of afni_proc's blur_est.$subj.1D.
REML_ACF_TAG = "err_reml ACF"


def parse_acf_line(line: str, *, source: str = "<line>") -> tuple[float, float, float]:
    """First three numbers of one ``... # err_reml ACF blur estimates`` line.

    Raises
    ------
    InputDataError
        Fewer than three tokens, or a token that is not a number (``source`` names the place).
    """
    tokens = line.split("#", 1)[0].split()
    if len(tokens) < 3:
        raise InputDataError(
            f"{source}: expected 3 ACF numbers before '#' in {line.strip()!r}; "
            "re-run afni_proc.py's blur estimation"
        )
    try:
        a, b, c = (float(t) for t in tokens[:3])
    except ValueError as err:
        raise InputDataError(f"{source}: malformed ACF number in {line.strip()!r} ({err})") from err
    return a, b, c


def read_acf_lines(blur_file: str | Path) -> list[tuple[float, float, float]]:
    """All ``err_reml ACF`` lines of one blur_est file, as (a, b, c) tuples (possibly none).

    Parameters
    ----------
    blur_file : path
        afni_proc's ``blur_est.$subj.1D``.

    Returns
    -------
    list of (a, b, c)
        One tuple per matching line, in file order.
    """
    path = Path(blur_file)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as err:
        raise MissingInputError(f"blur estimate file {path} does not exist") from err
    except OSError as err:
        raise MissingInputError(f"cannot read blur estimate file {path}: {err.strerror}") from err
    return [
        parse_acf_line(line, source=f"{path} line {n}")
        for n, line in enumerate(text.splitlines(), start=1)
        if REML_ACF_TAG in line
    ]


def mean_acf(blur_files: Sequence[str | Path]) -> tuple[float, float, float]:
    """Plain mean of the REML ACF (a, b, c) over all matched lines of all files, in order.

    Parameters
    ----------
    blur_files : list of path
        Every subject's ``blur_est*`` file.

    Returns
    -------
    (a, b, c)
        Double-precision means (format them with :func:`format_acf` for 3dClustSim).

    Raises
    ------
    InputDataError
        A file has no ``err_reml ACF`` line (the tutorial's message when none has), or a
        line has a malformed number.
    """
    rows: list[tuple[float, float, float]] = []
    lacking: list[str] = []
    for f in blur_files:
        found = read_acf_lines(f)
        if not found:
            lacking.append(str(f))
        rows.extend(found)
    if not rows:
        names = ", ".join(str(f) for f in blur_files) or "(no files)"
        raise InputDataError(
            f"No REML ACF lines found in blur_est files ({names}); run afni_proc.py with "
            "-regress_est_blur_errts and -regress_reml_exec"
        )
    if lacking:
        # unlike the tutorial's grep, a subject without the line is an error, not silently
        # left out of the mean: its smoothness would be missing from the cluster threshold
        raise InputDataError(
            f"no 'err_reml ACF' line in {', '.join(lacking)}: rerun that subject's "
            "blur estimation (afni_proc.py -regress_est_blur_errts with -regress_reml_exec) or "
            "leave the subject out with --participant-label"
        )
    return mean_of_rows(rows)


def mean_of_rows(rows: Sequence[Sequence[float]]) -> tuple[float, float, float]:
    """Column means of (a, b, c) rows, summed in row order as awk does (the array core).

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


def format_acf(acf: Sequence[float]) -> list[str]:
    """The three strings awk prints (``%.6g``) and the tutorial passes to ``3dClustSim -acf``."""
    out = []
    for v in acf:
        v = float(v)
        # awk prints integral values as integers, everything else with OFMT "%.6g"
        out.append("%d" % v if v == int(v) and abs(v) < 1e16 else "%.6g" % v)
    return out


# ----------------------------------------------------------------------------------------------
# the mixed ACF model (3dFWHMx -acf; what 3dClustSim -acf simulates)
# ----------------------------------------------------------------------------------------------


def acf_model(r: np.ndarray | float, a: float, b: float, c: float) -> np.ndarray:
    """AFNI's mixed ACF ``a exp(-r^2 / (2 b^2)) + (1 - a) exp(-r / c)`` at radius ``r`` (mm),
    in double precision (3dClustSim's own float32 evaluation is ``clustsim.acf_value``)."""
    r = np.asarray(r, dtype=np.float64)
    return a * np.exp(-(r * r) / (2.0 * b * b)) + (1.0 - a) * np.exp(-r / c)


def acf_fwhm(a: float, b: float, c: float) -> float:
    """Effective FWHM (mm) of the mixed ACF: ``2 r`` where ACF(r) = 1/2 (3dFWHMx's 4th number).

    Bisection to full double precision (the ACF decreases strictly in r).
    """

    def acf(r: float) -> float:
        return a * math.exp(-0.5 * r * r / (b * b)) + (1.0 - a) * math.exp(-r / c)

    lo, hi = 0.0, 3.0 * b + 6.0 * c + 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if acf(mid) > 0.5 else (lo, mid)
    return 2.0 * 0.5 * (lo + hi)
