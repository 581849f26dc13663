"""Reading AFNI-style command-line words the way AFNI's C and R option parsers do."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from afni_group.errors import EXIT_USAGE


def c_atof(text: str) -> float:
    """C ``atof``: the longest leading number, 0.0 when there is none (``abc`` → 0)."""
    text = text.strip()
    for end in range(len(text), 0, -1):
        try:
            return float(text[:end])
        except ValueError:
            continue
    return 0.0


def is_number(text: str) -> bool:
    """Whether a word is a number (so ``-3.5`` is a value, not an option)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def fatal(*lines: str, exit_code: int = EXIT_USAGE) -> int:
    """Print AFNI's ``** FATAL ERROR:`` message on stderr; return the exit code to use."""
    print("** FATAL ERROR: " + "\n".join(lines), file=sys.stderr)
    return exit_code


@contextlib.contextmanager
def messages_to_stderr(
    logger_name: str, quiet: bool = False, level: int = logging.INFO
) -> Iterator[None]:
    """Print a program's log lines from ``level`` up on stderr, bare (``quiet``: warnings only).

    AFNI programs talk on stderr; the native ones log through :mod:`logging`, so the drop-in
    attaches a plain handler to the program's logger for the duration of the call.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.WARNING if quiet else level)
    logger = logging.getLogger(logger_name)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
