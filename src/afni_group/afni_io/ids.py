"""AFNI id codes, dates and HISTORY_NOTE entries (deterministic with AFNI_GROUP_DETERMINISTIC=1)."""

from __future__ import annotations

import getpass
import hashlib
import os
import platform
import re
import secrets
import socket
import sys
import time
from collections.abc import Sequence

_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def _deterministic() -> bool:
    return os.environ.get("AFNI_GROUP_DETERMINISTIC", "").strip().lower() in ("1", "yes", "true")


def idcode_from_indices(prefix: str, indices: Sequence[int]) -> str:
    """``PREFIX_`` + one id character per index (taken modulo 64): the one id-code layout."""
    return f"{prefix}_" + "".join(_ID_CHARS[int(i) % 64] for i in indices)


def new_idcode(prefix: str = "AFN", seed: bytes | None = None) -> str:
    """AFNI-style id code: ``PREFIX_`` + 22 characters (random, or derived from ``seed``).

    The alphabet is AFNI's 64 characters (``_`` and ``-`` included, e.g. the
    ``XYZ_Y-_nScfZFtw2sx0Y2uTKkQ`` AFNI_26.2.03 writes); 3dClustSim's ``mask_dset_idcode`` for a
    mask without one is ``new_idcode("XYZ")``."""
    if seed is None:
        return idcode_from_indices(prefix, [secrets.randbelow(64) for _ in range(22)])
    return idcode_from_indices(prefix, hashlib.sha256(seed).digest()[:22])


def _ctime(t: float | None = None) -> str:
    if t is None:
        if _deterministic():
            t = float(os.environ.get("SOURCE_DATE_EPOCH", "0") or 0)
            return time.asctime(time.gmtime(t))
        t = time.time()
    return time.ctime(t)


def history_entry(command: str | Sequence[str], *, date: str | None = None) -> str:
    """One HISTORY_NOTE entry like AFNI's C programs write it:
    ``[user@host: <ctime>] {afni_group_<version>:<platform>} <command line>``."""
    from afni_group import __version__

    if not isinstance(command, str):
        command = " ".join(_shell_quote(a) for a in command)
    try:
        user = getpass.getuser()
    except Exception:
        user = "user"
    host = socket.gethostname().split(".")[0] or "host"
    plat = f"{sys.platform}_{platform.machine()}"
    return f"[{user}@{host}: {date or _ctime()}] {{afni_group_{__version__}:{plat}}} {command}"


def _shell_quote(a: str) -> str:
    if a and re.fullmatch(r"[\w@%+=:,./-]+", a):
        return a
    return "'" + a.replace("'", "'\\''") + "'"


def _escape_history(s: str) -> str:
    """tross_Encode_String-style escaping for a new history entry."""
    return s.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t").replace('"', '\\"')
