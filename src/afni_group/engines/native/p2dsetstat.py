"""Voxelwise statistic threshold for a p-value, as ``p2dsetstat -quiet -pval P -bisided -inset D``.

Spec 06 (b). The threshold comes from the selected sub-brick's AFNI stat code and parameters
(``Ttest(dof)``, ``Zscore()``, ``Ftest(n,d)`` ...) through :func:`afni_group.statdist.pval_to_stat`.
With ``-quiet`` AFNI prints ``%.6f`` of the float32 value with no newline; that text is what the
tutorial passes on to 3dClusterize, so :func:`format_stat_threshold` is the value to use there.
"""

from __future__ import annotations

import sys

import numpy as np

from afni_group import afni_io
from afni_group.engines.native.argv import c_atof
from afni_group.errors import EXIT_DATA, EXIT_USAGE, AfniGroupError, InputDataError, UsageError
from afni_group.statdist import SIDEDNESS, pval_to_stat, stat_symbol

EXIT_AFNI_FATAL = EXIT_USAGE  # AFNI exits 1; afni-native uses BEP027's codes (64/65/66)


def format_stat_threshold(value: float) -> str:
    """The text p2dsetstat prints with ``-quiet``: ``%.6f`` of the float32 value, no newline."""
    return "%.6f" % float(np.float32(value))


def _format_pvalue(pval: float) -> str:
    """p as on the ``++ p-value`` line: ``%.8f``, or ``%e`` at or below 1e-6 (float32 p)."""
    p32 = float(np.float32(pval))
    return "%e" % p32 if p32 <= 1e-6 else "%.8f" % p32


def _select_stat_brick(dset_spec: str) -> tuple[str, int, tuple[float, ...]]:
    """Open ``dset[sel]`` and return (label, stat code, params) of its single sub-brick."""
    dset = afni_io.read_dataset(dset_spec)
    if dset.nvals != 1:
        raise InputDataError(
            f"{dset_spec}: p2dsetstat needs exactly one sub-brick but the selection has "
            f"{dset.nvals}; add a selector such as '[chx:t]' or '[3]'"
        )
    code = int(dset.stat_codes[0]) if dset.stat_codes else 0
    if code <= 0:
        raise InputDataError(
            f"{dset_spec}: sub-brick '{dset.labels[0]}' has no statistic code (it is not a t, z, "
            "F... brick); select a statistic sub-brick"
        )
    params = tuple(float(v) for v in dset.stat_params[0]) if dset.stat_params else ()
    return dset.labels[0], code, params


def stat_threshold(dset_spec: str, pval: float, sided: str) -> float:
    """Statistic threshold for ``pval`` on the sub-brick ``dset_spec`` (e.g. ``'mema.nii.gz[chx:t]'``).

    Parameters
    ----------
    dset_spec : str
        Dataset path with a sub-brick selector that picks exactly one statistic sub-brick.
    pval : float
        Voxelwise p-value, 0 < p < 1.
    sided : {"1sided", "2sided", "bisided"}
        With ``2sided``/``bisided`` a t, z or correlation threshold uses p as the two-tailed
        probability; ``1sided`` doubles p first. F, chi² ... are upper-tail and never doubled.

    Returns
    -------
    float
        The float32 threshold as a Python float (``3.792131...`` for Ttest(22) at p = 0.001).

    Raises
    ------
    UsageError
        For p outside (0, 1) or an unknown sidedness (AFNI would print ``-1.000000``).
    InputDataError
        If the selection is not exactly one statistic sub-brick.
    """
    if sided not in SIDEDNESS:
        raise UsageError(f"sidedness must be one of {', '.join(SIDEDNESS)}, not '{sided}'")
    if not (0.0 < float(np.float32(pval)) < 1.0):
        raise UsageError(f"p-value {pval} for {dset_spec} must be strictly between 0 and 1")
    _, code, params = _select_stat_brick(dset_spec)
    value = pval_to_stat(pval, code, params, sided)
    if value < 0:
        raise InputDataError(
            f"{dset_spec}: cannot convert p = {pval} to a {stat_symbol(code, params)} threshold"
        )
    return value


def _fatal(*lines: str, exit_code: int = EXIT_AFNI_FATAL) -> int:
    print("** FATAL ERROR: " + "\n".join(lines), file=sys.stderr)
    return exit_code


def _usage() -> str:
    return (
        "p2dsetstat (afni-native): convert a p-value to a statistic threshold.\n"
        "  p2dsetstat -inset DSET'[sel]' -pval P {-1sided|-2sided|-bisided} [-quiet]\n"
    )


def cli_main(argv: list[str]) -> int:
    """``afni-native p2dsetstat -inset D[sel] -pval P -bisided|-2sided|-1sided [-quiet]``."""
    if not argv or argv[0] in ("-help", "-h"):
        print(_usage(), end="")
        return 0
    inset: str | None = None
    pval_text: str | None = None
    sides: list[str] = []
    quiet = False
    pos = 0
    # Options are scanned while the argument starts with '-'; the rest is ignored, as in AFNI.
    while pos < len(argv) and argv[pos].startswith("-"):
        opt = argv[pos]
        if opt in ("-help", "-h"):
            print(_usage(), end="")
            return 0
        if opt in ("-inset", "-pval"):
            if pos + 1 >= len(argv):
                return _fatal(f"Need argument after '{opt}'")
            if opt == "-inset":
                inset = argv[pos + 1]
            else:
                pval_text = argv[pos + 1]
            pos += 2
            continue
        if opt in ("-1sided", "-2sided", "-bisided"):
            sides.append(opt[1:])
        elif opt == "-quiet":
            quiet = True
        else:
            print(f"** ERROR: Bad option '{opt}'", file=sys.stderr)
            return EXIT_AFNI_FATAL
        pos += 1

    if not sides:
        return _fatal(
            "Need to input exactly one of these sidedness options:",
            "   -1sided, -2sided, -bisided",
        )
    if len(sides) > 1:
        return _fatal(
            "Can only use exactly one of these sidedness options:",
            "   -1sided, -2sided, -bisided",
        )
    if pval_text is None:
        return _fatal("User must enter '-pval ..' value.")
    pval = c_atof(pval_text)
    if pval < 0 or pval > 1:
        return _fatal("The pvalue can only be in range (0, 1).")
    if inset is None:
        return _fatal("You need to provide an input dset with '-inset ..'")
    try:
        dset = afni_io.read_dataset(inset)
    except AfniGroupError as err:
        return _fatal(f"Can't open dataset '{inset}' ({err})", exit_code=err.exit_code)
    if dset.nvals != 1:
        return _fatal(
            f"Input dset '{inset}' must have exactly one volume (it has {dset.nvals}). Perhaps use",
            "   subbrick selectors, e.g., to choose DSET's [3]rd volume:",
            '   -inset DSET"[3]"',
        )
    code = int(dset.stat_codes[0]) if dset.stat_codes else 0
    if code <= 0:
        return _fatal(
            f"Checked statcode for input dset '{inset}', sub-brick '{dset.labels[0]}', but it "
            "does not look like a recognized statistical volume.",
            exit_code=EXIT_DATA,
        )
    params = tuple(float(v) for v in dset.stat_params[0]) if dset.stat_params else ()
    value = pval_to_stat(pval, code, params, sides[0])
    text = format_stat_threshold(value)
    if quiet:
        sys.stdout.write(text)
    else:
        sys.stdout.write(
            f"++ Found input file  : {inset}\n"
            f"++ Subbrick label    : {dset.labels[0]}\n"
            f"++ p-value           : {_format_pvalue(pval)}\n"
            f"++ stat type and par : {stat_symbol(code, params)}\n"
            f"++ sidedness         : {sides[0]}\n"
            f"++ Final stat val    : {text}\n"
        )
    sys.stdout.flush()
    return 0
