"""``afni-native p2dsetstat``: AFNI's options and messages around :mod:`afni_group.programs.p2dsetstat`."""

from __future__ import annotations

import sys

from afni_group import afni_io
from afni_group.errors import EXIT_DATA, EXIT_USAGE, AfniGroupError
from afni_group.programs.cli.argv import c_atof, fatal
from afni_group.programs.p2dsetstat.formats import format_pvalue, format_stat_threshold
from afni_group.statdist import pval_to_stat, stat_symbol

EXIT_AFNI_FATAL = EXIT_USAGE  # AFNI exits 1; afni-native uses BEP027's codes (64/65/66)


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
                return fatal(f"Need argument after '{opt}'")
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
        return fatal(
            "Need to input exactly one of these sidedness options:",
            "   -1sided, -2sided, -bisided",
        )
    if len(sides) > 1:
        return fatal(
            "Can only use exactly one of these sidedness options:",
            "   -1sided, -2sided, -bisided",
        )
    if pval_text is None:
        return fatal("User must enter '-pval ..' value.")
    pval = c_atof(pval_text)
    if pval < 0 or pval > 1:
        return fatal("The pvalue can only be in range (0, 1).")
    if inset is None:
        return fatal("You need to provide an input dset with '-inset ..'")
    try:
        dset = afni_io.read_dataset(inset)
    except AfniGroupError as err:
        return fatal(f"Can't open dataset '{inset}' ({err})", exit_code=err.exit_code)
    if dset.nvals != 1:
        return fatal(
            f"Input dset '{inset}' must have exactly one volume (it has {dset.nvals}). Perhaps use",
            "   subbrick selectors, e.g., to choose DSET's [3]rd volume:",
            '   -inset DSET"[3]"',
        )
    code = int(dset.stat_codes[0]) if dset.stat_codes else 0
    if code <= 0:
        return fatal(
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
            f"++ p-value           : {format_pvalue(pval)}\n"
            f"++ stat type and par : {stat_symbol(code, params)}\n"
            f"++ sidedness         : {sides[0]}\n"
            f"++ Final stat val    : {text}\n"
        )
    sys.stdout.flush()
    return 0
