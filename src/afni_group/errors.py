"""Errors with an exit code and one clear line for the user.

Every module raises these at its boundary; ``cli`` and ``programs.cli.dispatch`` turn them into one line on
stderr and the BIDS-Apps (BEP027) exit code. Messages name the file or option and say what to do.
"""

from __future__ import annotations

import errno
import os

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_UNKNOWN_LEVEL = 17
EXIT_NO_PARTICIPANT = 18
EXIT_USAGE = 64
EXIT_DATA = 65
EXIT_NO_INPUT = 66
EXIT_CANT_CREATE = 73

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILURE: "unexpected failure",
    EXIT_UNKNOWN_LEVEL: "unknown analysis level",
    EXIT_NO_PARTICIPANT: "a --participant-label matched no participant",
    EXIT_USAGE: "command-line usage error",
    EXIT_DATA: "bad input data",
    EXIT_NO_INPUT: "required input files missing",
    EXIT_CANT_CREATE: "cannot create output",
}


class AfniGroupError(Exception):
    """Base class: a user-facing error with an exit code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(AfniGroupError):
    """Bad command-line options or option values."""

    exit_code = EXIT_USAGE


class InputDataError(AfniGroupError):
    """Input files exist but their content is unusable (bad header, NaN, grid mismatch...)."""

    exit_code = EXIT_DATA


class MissingInputError(AfniGroupError):
    """A required input file does not exist."""

    exit_code = EXIT_NO_INPUT


class OutputError(AfniGroupError):
    """The output cannot be created (exists, not writable, inside the input...)."""

    exit_code = EXIT_CANT_CREATE


class ParticipantError(AfniGroupError):
    """A --participant-label matched nobody (whatever the other labels matched)."""

    exit_code = EXIT_NO_PARTICIPANT


class StepError(AfniGroupError):
    """An external (AFNI) step failed; the message carries its name and last error line."""

    exit_code = EXIT_FAILURE


#: OSError numbers that mean "the output cannot be created here" (exit 73), not a bug
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def os_error_reason(err: OSError) -> str:
    """The reason part of a message about ``err``; a full disk says "no space left on device"."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on device (free some space or write elsewhere)"
    return err.strerror or str(err)


def output_error(path: str | os.PathLike | None, err: OSError) -> OutputError:
    """:class:`OutputError` naming ``path`` (or the file ``err`` names) and why it failed."""
    target = path if path is not None else (err.filename or "an output file")
    return OutputError(f"cannot write {target}: {os_error_reason(err)}")


def from_os_error(err: OSError) -> AfniGroupError:
    """The user-facing error for an ``OSError`` that escaped: exit 73 when the output cannot be
    written (disk full, read-only, permission), else exit 1 (unexpected)."""
    if err.errno in _OUTPUT_ERRNOS:
        return output_error(None, err)
    return AfniGroupError(
        f"unexpected error: {type(err).__name__}: {err} (rerun with -v for the traceback and "
        "report it)",
        EXIT_FAILURE,
    )
