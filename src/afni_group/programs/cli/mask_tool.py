"""``afni-native 3dmask_tool``: AFNI's options around :mod:`afni_group.programs.mask_tool`."""

from __future__ import annotations

import shlex
import sys

from afni_group.errors import UsageError
from afni_group.programs.cli.argv import c_atof
from afni_group.programs.mask_tool import files as step
from afni_group.programs.mask_tool.files import DEFAULT_PREFIX

_USAGE = (
    "usage: afni-native 3dmask_tool -prefix P -input D1 D2 ... [-frac F | -inter | -union]\n"
    "       [-count]\n"
    "Native re-implementation of AFNI 3dmask_tool (-frac only: no dilation or hole filling)."
)


def cli_main(argv: list[str]) -> int:
    """``afni-native 3dmask_tool -prefix P -input D1 D2 ... -frac F``."""
    if not argv or argv[0] in ("-help", "-h", "--help"):
        print(_USAGE)
        return 0
    inputs: list[str] = []
    prefix = DEFAULT_PREFIX
    frac: float | None = None
    count = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-input":
            i += 1
            while i < len(argv) and not argv[i].startswith("-"):
                inputs.append(argv[i])
                i += 1
            continue
        if arg == "-prefix":
            if i + 1 >= len(argv):
                raise UsageError("need argument after '-prefix'")
            prefix = argv[i + 1]
            i += 2
        elif arg == "-frac":
            if i + 1 >= len(argv):
                raise UsageError("need argument after '-frac'")
            frac = c_atof(argv[i + 1])
            i += 2
        elif arg == "-inter":
            frac, i = 1.0, i + 1
        elif arg == "-union":
            frac, i = 0.0, i + 1
        elif arg == "-datum":
            if i + 1 >= len(argv) or argv[i + 1] != "byte":
                raise UsageError(
                    f"-datum '{argv[i + 1] if i + 1 < len(argv) else ''}' is not supported (only byte)"
                )
            i += 2
        elif arg == "-count":
            count, i = True, i + 1
        elif arg in ("-overwrite", "-quiet", "-verb"):
            i += 1 if arg != "-verb" else 2
        else:
            raise UsageError(
                f"unknown option '{arg}' (afni-native 3dmask_tool supports -frac only)"
            )
    if not inputs:
        raise UsageError("missing -input dataset list")
    if frac is None:
        print("++ no -frac option: defaulting to -union", file=sys.stderr)
        frac = 0.0
    if frac < 0:
        raise UsageError("have -frac < 0")
    command = shlex.join(["3dmask_tool", *argv])
    step.make_group_mask(inputs, prefix, frac, command_line=command, verbose=True, count=count)
    return 0
