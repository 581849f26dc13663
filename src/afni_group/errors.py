"""Errors with an exit code and one clear line for the user.

Every module raises these at its boundary; ``cli`` and ``native_cli`` turn them into one line on
stderr and the BIDS-Apps (BEP027) exit code. Messages name the file or option and say what to do.
"""

from __future__ import annotations

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
    EXIT_NO_PARTICIPANT: "--participant-label matched no participant",
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
    """--participant-label matched nobody."""

    exit_code = EXIT_NO_PARTICIPANT


class StepError(AfniGroupError):
    """An external (AFNI) step failed; the message carries its name and last error line."""

    exit_code = EXIT_FAILURE
