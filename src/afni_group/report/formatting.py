"""How numbers, names and options are written in the report (shared by its sections)."""

from __future__ import annotations

import re

ATLAS_NAMES = {"harvard_oxford": "Harvard-Oxford", "aal": "AAL2"}

SIDED_TEXT = {
    "bisided": "bi-sided (positive and negative tails clustered separately)",
    "2sided": "2-sided (both tails clustered together)",
    "1sided": "1-sided (positive tail)",
}


def slugify(text: str) -> str:
    """``text`` as an HTML anchor / file-name part (letters, digits, ``_`` and ``-``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "set"


def fmt(value: float | None, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals (no negative zero); ``n/a`` for None."""
    return "n/a" if value is None else f"{value + 0.0:.{digits}f}"


def fmt_p(p: float | None) -> str:
    """A probability as the user gave it (``%g``); ``n/a`` for None."""
    return "n/a" if p is None else f"{p:g}"
