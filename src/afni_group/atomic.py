"""Atomic file writes: a temporary name in the target folder, renamed when complete.

Every output of afni-group (datasets, tables, reports, JSON) goes through here, so an
interrupted run never leaves a file that looks finished under its final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from afni_group.errors import OutputError, output_error


def default_mode() -> int:
    """File mode a plain ``open()`` would give under the current umask (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it replaces ``final``.

    The caller writes the temporary file; if the block raises, the file is removed and the
    final name is untouched. ``OSError`` becomes :class:`OutputError` naming the file.
    """
    final = Path(final)
    if not final.parent.is_dir():
        raise OutputError(f"cannot write {final}: folder {final.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    except OSError as err:
        raise output_error(final, err) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, default_mode())
        os.replace(tmp_path, final)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(err, OSError):
            raise output_error(final, err) from None
        raise


def write_bytes(final: str | os.PathLike, fill: Callable[[BinaryIO], object]) -> Path:
    """Write a file atomically; ``fill(fh)`` writes the content to a binary handle."""
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(final)


def write_text(final: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically, newlines exactly as given."""
    data = text.encode("utf-8")
    return write_bytes(final, lambda fh: fh.write(data))


def write_json(final: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as indented JSON (creating the folder), atomically."""
    Path(final).parent.mkdir(parents=True, exist_ok=True)
    return write_text(final, json.dumps(data, indent=2, sort_keys=False) + "\n")


def copy_file(src: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Copy ``src`` to ``final`` atomically."""
    with atomic_path(final) as tmp:
        shutil.copyfile(src, tmp)
    return Path(final)
