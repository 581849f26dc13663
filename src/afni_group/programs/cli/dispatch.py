"""``afni-native PROGRAM [options]``: AFNI-compatible drop-in commands for the native steps.

Each native step has a command-line module in :mod:`afni_group.programs.cli` exposing
``cli_main(argv: list[str]) -> int`` that parses the AFNI program's own options. This dispatcher
maps AFNI program names to those modules so that a user script can replace ``3dClustSim`` with
``afni-native 3dClustSim`` and run unchanged.

Exit codes are the same for every program (BEP027, as the ``afni-group`` command): 0 ok,
64 usage (bad or missing option), 65 bad input data, 66 input missing, 73 output cannot be
written (disk full, read-only), 1 unexpected; AFNI itself exits 1 for all of these. Errors go to
stderr and name the dataset (and sub-brick) concerned; AFNI's message text is kept.
"""

from __future__ import annotations

import importlib
import os
import sys

from afni_group import __version__
from afni_group.errors import EXIT_FAILURE, EXIT_USAGE, AfniGroupError, from_os_error

#: AFNI program name -> (module implementing ``cli_main``, one-line description)
PROGRAMS: dict[str, tuple[str, str]] = {
    "3dMEMA": ("afni_group.programs.cli.mema", "mixed-effects meta-analysis"),
    "3dttest++": ("afni_group.programs.cli.ttest", "t-tests; -Clustsim cluster-size tables"),
    "3dmask_tool": ("afni_group.programs.cli.mask_tool", "group mask (-frac)"),
    "3dClustSim": ("afni_group.programs.cli.clustsim", "Monte Carlo cluster-size tables"),
    "1d_tool.py": ("afni_group.programs.cli.csim_lookup", "ClustSim table lookup (-csim_*)"),
    "p2dsetstat": ("afni_group.programs.cli.p2dsetstat", "p-value to statistic threshold"),
    "3dClusterize": ("afni_group.programs.cli.clusterize", "cluster maps and report"),
}


def _available() -> dict[str, str]:
    """Programs whose module is importable and defines ``cli_main``."""
    found = {}
    for name, (module, desc) in PROGRAMS.items():
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        if hasattr(mod, "cli_main"):
            found[name] = desc
    return found


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: afni-native PROGRAM [AFNI options ...]\n       afni-native --list")
        print("Runs the numpy implementation of an AFNI program with AFNI's options.")
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        print(f"afni-native {__version__}")
        return 0
    if argv[0] == "--list":
        for name, desc in _available().items():
            print(f"{name:14s} {desc}")
        return 0
    program, rest = argv[0], argv[1:]
    if program not in PROGRAMS:
        print(
            f"** ERROR: afni-native has no program '{program}'; "
            f"available: {', '.join(_available()) or 'none'} (see afni-native --list)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    module = importlib.import_module(PROGRAMS[program][0])
    if not hasattr(module, "cli_main"):
        print(f"** ERROR: afni-native {program} is not implemented yet", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(module.cli_main(rest) or 0)
    except OSError as err:  # e.g. disk full while writing: 73 naming the file
        err = from_os_error(err)
        print(f"** ERROR: {program}: {err}", file=sys.stderr)
        return err.exit_code
    except AfniGroupError as err:
        print(f"** ERROR: {program}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a bug: one line; AFNI_GROUP_DEBUG=1 shows the traceback
        if os.environ.get("AFNI_GROUP_DEBUG"):
            raise
        print(
            f"** ERROR: {program}: unexpected error: {type(err).__name__}: {err} (rerun with "
            "AFNI_GROUP_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
