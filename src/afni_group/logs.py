"""How afni-group's messages reach the terminal and the run's log file.

Three levels matter: warnings (always shown, tagged ``WARNING``), the step lines at INFO
(shown by default) and :data:`DETAIL`, a level between DEBUG and INFO for program internals a
user does not act on (3dClustSim's kernel sizes, AFNI's ``3drefit`` scripting fragment): those
reach the terminal only with ``-v`` but always the log file ``OUTPUT_DIR/logs/afni-group.log``.

A leaf module: the AFNI program modules import :data:`DETAIL` from here.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

#: Program internals: on the terminal with ``-v``, always in the log file.
DETAIL = 15
logging.addLevelName(DETAIL, "DETAIL")

ROOT = "afni_group"
# the AFNI markers a message may start with; a tagged line keeps the text after them
_MARKERS = ("++ ", "!! ", "** ", " + ")


def tag(record: logging.LogRecord, text: str) -> str:
    """``text`` with a ``WARNING:``/``ERROR:`` tag when the record is one and has none yet.

    AFNI's own ``*+ WARNING:`` / ``** ERROR:`` lines are already tagged and stay as they are.
    """
    if record.levelno < logging.WARNING:
        return text
    word = "WARNING" if record.levelno < logging.ERROR else "ERROR"
    if text.lstrip(" *+!").startswith(word):
        return text
    for marker in _MARKERS:
        if text.startswith(marker):
            text = text[len(marker) :].lstrip()
            break
    return f"{word}: {text}"


class TaggingFormatter(logging.Formatter):
    """A formatter whose warnings and errors always carry the word WARNING or ERROR."""

    def format(self, record: logging.LogRecord) -> str:
        # tag the message, not the whole line: a time stamp or level prefix stays in front
        original_msg, original_args = record.msg, record.args
        record.msg, record.args = tag(record, record.getMessage()), None
        try:
            return super().format(record)
        finally:
            record.msg, record.args = original_msg, original_args


def configure_console(verbose: int) -> logging.Handler:
    """Send the ``afni_group`` loggers' messages to the current stderr, one plain line each.

    ``verbose`` 0 shows INFO and above, 1 (``-v``) adds :data:`DETAIL`, 2 (``-vv``) DEBUG. The
    logger itself passes :data:`DETAIL` (DEBUG with ``-vv``) so the log file gets the internals.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        TaggingFormatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s")
    )
    handler.setLevel(logging.INFO if not verbose else DETAIL if verbose == 1 else logging.DEBUG)
    logger = logging.getLogger(ROOT)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose > 1 else DETAIL)
    logger.propagate = False
    return handler


def log_to_file(path: Path) -> logging.Handler:
    """Also keep every message of the ``afni_group`` loggers (with :data:`DETAIL`) in ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(TaggingFormatter("%(asctime)s %(message)s"))
    logging.getLogger(ROOT).addHandler(handler)
    return handler


class HeldMessages(logging.Handler):
    """The messages :func:`holding` keeps back; :meth:`drop` forgets them."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def drop(self) -> None:
        self.records.clear()


@contextlib.contextmanager
def holding() -> Iterator[HeldMessages]:
    """Keep the ``afni_group`` loggers' messages back until the block ends, then pass them on.

    For work done while a check that may still refuse the run is pending: when it refuses, the
    caller drops them (:meth:`HeldMessages.drop`) and the refusal is the only line printed.
    """
    logger = logging.getLogger(ROOT)
    holder = HeldMessages()
    saved = list(logger.handlers)
    logger.handlers = [holder]
    try:
        yield holder
    finally:
        logger.handlers = saved
        for record in holder.records:
            logger.handle(record)
