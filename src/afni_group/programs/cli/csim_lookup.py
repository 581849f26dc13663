"""``afni-native 1d_tool.py``: the ``-csim_*`` options, parsed into a call of :func:`csim_lookup.lookup_cluster_size`."""

from __future__ import annotations

import sys

from afni_group.errors import (
    EXIT_DATA,
    EXIT_NO_INPUT,
    EXIT_USAGE,
    InputDataError,
    MissingInputError,
    UsageError,
)
from afni_group.programs.csim_lookup.core import format_attribute_block, lookup_cluster_size


def _float_option(option: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        print(
            f"** cannot convert '{value}' to <class 'float'> for option {option}", file=sys.stderr
        )
        raise SystemExit(EXIT_USAGE) from None


def cli_main(argv: list[str]) -> int:
    """``afni-native 1d_tool.py -verb 0 -infile F -csim_pthr P -csim_alpha A``.

    Only the ``-csim_*`` use of 1d_tool.py is implemented. Output and exit status follow AFNI,
    including ``0`` + exit 0 for a failed lookup.
    """
    verb, infile, pthr, alpha, show = 1, None, 0.001, 0.05, False
    # 1d_tool.py reads -verb before anything else, wherever it is.
    if "-verb" in argv:
        pos = argv.index("-verb")
        try:
            verb = int(argv[pos + 1])
        except (IndexError, ValueError):
            print("** cannot convert option -verb to <class 'int'>", file=sys.stderr)
            return EXIT_USAGE
    pos = 0
    try:
        while pos < len(argv):
            opt = argv[pos]
            if opt == "-verb":
                pos += 2
                continue
            if opt in ("-infile", "-csim_pthr", "-csim_alpha") and pos + 1 >= len(argv):
                raise UsageError(f"option {opt} needs a value")
            if opt == "-infile":
                infile = argv[pos + 1]
            elif opt == "-csim_pthr":
                pthr, show = _float_option(opt, argv[pos + 1]), True
            elif opt == "-csim_alpha":
                alpha, show = _float_option(opt, argv[pos + 1]), True
            elif opt == "-csim_show_clustsize":
                show = True
                pos += 1
                continue
            else:
                raise UsageError(
                    f"1d_tool.py option {opt} is not supported by afni-native "
                    "(only -verb, -infile, -csim_pthr, -csim_alpha, -csim_show_clustsize)"
                )
            pos += 2
    except SystemExit as stop:
        return int(stop.code or 0)
    if infile is None:
        raise UsageError("1d_tool.py needs -infile TABLE")
    if not show:
        raise UsageError("afni-native 1d_tool.py needs -csim_pthr and/or -csim_alpha")
    try:
        result = lookup_cluster_size(infile, pthr, alpha)
    except MissingInputError:
        print(f"** failed to open 1D file '{infile}'", file=sys.stderr)
        return EXIT_NO_INPUT
    except InputDataError as err:
        print(str(err), file=sys.stderr)
        return EXIT_DATA
    out = sys.stdout
    for message in result.messages:
        out.write(message + "\n")
    if verb == 0:
        out.write(f"{result.size}\n")
        return 0
    missing = result.header is not None and bool(result.header.missing())
    if missing:
        out.write("** ClustSim attributes are missing\n\n")
    out.write(format_attribute_block(result.header, pthr, alpha, result.size))
    return 0
