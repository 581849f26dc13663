"""Group ACF parameters from afni_proc.py's ``blur_est*`` files (spec 04 §2).

The tutorial greps ``err_reml ACF`` in every ``blur_est*`` file, keeps the first three numbers
(a, b, c; the 4th, the effective FWHM, is dropped), averages each column over the matched lines and
prints the means with awk's ``%.6g``. Unlike the tutorial's shell code, one subject works here (the
shell version fails when grep sees a single file, because grep then prints no file-name prefix).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from afni_group.errors import InputDataError, MissingInputError
from afni_group.programs.acf.core import mean_of_rows
from afni_group.programs.acf.formats import REML_ACF_TAG, parse_acf_line
from afni_group.programs.checks import check_acf


def read_acf_lines(
    blur_file: str | Path, *, check: bool = False
) -> list[tuple[float, float, float]]:
    """All ``err_reml ACF`` lines of one blur_est file, as (a, b, c) tuples (possibly none).

    Parameters
    ----------
    blur_file : path
        afni_proc's ``blur_est.$subj.1D``.
    check : bool
        Also check each line's ranges (:func:`~afni_group.programs.checks.check_acf`).

    Returns
    -------
    list of (a, b, c)
        One tuple per matching line, in file order.

    Raises
    ------
    MissingInputError
        The file cannot be read.
    InputDataError
        A malformed line, or (``check``) values out of range; the message names file and line.
    """
    path = Path(blur_file)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as err:
        raise MissingInputError(f"blur estimate file {path} does not exist") from err
    except OSError as err:
        raise MissingInputError(f"cannot read blur estimate file {path}: {err.strerror}") from err
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if REML_ACF_TAG not in line:
            continue
        source = f"{path} line {number}"
        row = parse_acf_line(line, source=source)
        if check:
            try:
                row = check_acf(row)
            except ValueError as err:
                raise InputDataError(
                    f"{source}: ACF {err}; rerun that subject's blur estimation "
                    "(3dFWHMx -acf) or leave the subject out"
                ) from None
        rows.append(row)
    return rows


def mean_acf(blur_files: Sequence[str | Path]) -> tuple[float, float, float]:
    """Plain mean of the REML ACF (a, b, c) over all matched lines of all files, in order.

    Parameters
    ----------
    blur_files : list of path
        Every subject's ``blur_est*`` file.

    Returns
    -------
    (a, b, c)
        Double-precision means (format them with :func:`.formats.format_acf` for 3dClustSim).

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
