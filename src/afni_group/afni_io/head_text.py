"""HEAD file text: parsing and byte-exact formatting of AFNI attributes (spec 01 §3)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

_ATR_HDR = re.compile(rb"type\s*=\s*(\S+)\s*name\s*=\s*(\S+)\s*count\s*=\s*(\d+)", re.S)


def parse_head_text(raw: bytes | str, *, source: str = "HEAD") -> dict[str, Any]:
    """Parse HEAD text into ``{name: value}`` (int list, float list, or str with NULs).

    Tolerant like AFNI: whitespace around ``type``/``name``/``count``/``=`` is free; a parse
    failure stops reading (attributes read so far are kept); ``count = 0`` is skipped. AFNI's
    own writer can give a ``count`` larger than the text actually written (the text stops at
    the end of the line), so a string value never extends past the end of its line.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    attrs: dict[str, Any] = {}
    pos = 0
    n = len(raw)
    while pos < n:
        m = _ATR_HDR.search(raw, pos)
        if not m:
            break
        atype = m.group(1).decode("latin-1")
        name = m.group(2).decode("latin-1")
        count = int(m.group(3))
        pos = m.end()
        if atype == "string-attribute":
            while pos < n and raw[pos : pos + 1].isspace():
                pos += 1
            if pos >= n or raw[pos : pos + 1] != b"'":
                break
            pos += 1
            end = min(pos + count, n)
            nl = raw.find(b"\n", pos, end)
            if nl >= 0:
                end = nl
            chunk = raw[pos:end].decode("utf-8", errors="replace")
            pos = end
            if count == 0:
                continue
            chunk = chunk.replace("~", "\0")
            if len(chunk) < count:  # truncated/short text: it ends where the line ended
                chunk = chunk + "\0"
            else:
                chunk = chunk[: count - 1] + "\0"
            attrs[name] = chunk
        elif atype in ("float-attribute", "integer-attribute"):
            vals: list[Any] = []
            ok = True
            for _ in range(count):
                mm = re.compile(rb"\s*(\S+)").match(raw, pos)
                if not mm:
                    ok = False
                    break
                tok = mm.group(1).decode("latin-1")
                try:
                    if atype == "float-attribute":
                        vals.append(float(tok))
                    else:
                        vals.append(int(tok))
                except ValueError:
                    ok = False
                    break
                pos = mm.end()
            if not ok:
                break
            if count:
                attrs[name] = vals
        else:
            break
    return attrs


def _fmt_g(v: float) -> str:
    return "%14.7g" % float(np.float32(v))


def _head_attr_text(name: str, value: Any) -> str:
    if isinstance(value, str):
        s = value if value.endswith("\0") else value + "\0"
        body = s.replace("~", "*").replace("\0", "~")
        count = len(s.encode("utf-8"))
        return f"\ntype = string-attribute\nname = {name}\ncount = {count}\n'{body}\n"
    kind, vals = _attr_kind(name, value)
    if kind == "int":
        out = [f"\ntype = integer-attribute\nname = {name}\ncount = {len(vals)}\n"]
        for i, v in enumerate(vals):
            out.append(" %d" % int(v))
            if i % 5 == 4 and i < len(vals) - 1:
                out.append("\n")
        out.append("\n")
        return "".join(out)
    out = [f"\ntype  = float-attribute\nname  = {name}\ncount = {len(vals)}\n"]
    for i, v in enumerate(vals):
        out.append(" " + _fmt_g(v))
        if i % 5 == 4 and i < len(vals) - 1:
            out.append("\n")
    out.append("\n")
    return "".join(out)


class _Float(list):
    """Marks a list of numbers as a float attribute even if all values are integers."""


class _Int(list):
    """Marks a list of numbers as an int attribute."""


_INT_ATTRS = {
    "DATASET_RANK",
    "DATASET_DIMENSIONS",
    "SCENE_DATA",
    "ORIENT_SPECIFIC",
    "BRICK_TYPES",
    "INT_CMAP",
    "TAXIS_NUMS",
    "MARKS_FLAGS",
    "WARP_TYPE",
    "NOTES_COUNT",
    "LUT_RANGE",
}


def _attr_kind(name: str, value: Any) -> tuple[str, list]:
    if isinstance(value, str):
        return "String", [value]
    if isinstance(value, _Float):
        return "float", list(value)
    if isinstance(value, _Int):
        return "int", list(value)
    if isinstance(value, np.ndarray):
        vals = value.ravel().tolist()
        if np.issubdtype(value.dtype, np.integer) and name not in _FLOAT_ATTRS:
            return "int", vals
        return ("int" if name in _INT_ATTRS else "float"), vals
    if isinstance(value, (int, float, np.number)):
        value = [value]
    vals = list(value)
    if name in _INT_ATTRS:
        return "int", vals
    if name in _FLOAT_ATTRS:
        return "float", vals
    if vals and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
        return "int", vals
    return "float", vals


_FLOAT_ATTRS = {
    "ORIGIN",
    "DELTA",
    "IJK_TO_DICOM",
    "IJK_TO_DICOM_REAL",
    "BRICK_STATS",
    "BRICK_FLOAT_FACS",
    "BRICK_STATAUX",
    "TAXIS_FLOATS",
    "TAXIS_OFFSETS",
    "STAT_AUX",
}


def format_head_text(attrs: Sequence[tuple[str, Any]]) -> bytes:
    """HEAD file text for ``[(name, value), ...]`` in that order, byte-exact AFNI style."""
    return "".join(_head_attr_text(k, v) for k, v in attrs).encode("utf-8")
