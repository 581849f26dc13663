"""AFNI sub-brick selectors: ``file[...]`` splitting and ``[1..3]``/label parsing (spec 01 §7)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from afni_group.errors import InputDataError


def split_selector(spec: str | os.PathLike) -> tuple[str, str | None]:
    """``'file.nii.gz[chx:t]'`` -> ``('file.nii.gz', 'chx:t')``; no selector -> ``(spec, None)``.

    The returned selector has no brackets (``parse_selector`` accepts both forms). A file that
    exists under the full name (brackets included) is not split.
    """
    s = os.fspath(spec)
    if not s.endswith("]"):
        return s, None
    i = s.rfind("[")
    if i <= 0:
        return s, None
    if os.path.exists(s):
        return s, None
    return s[:i], s[i + 1 : -1]


class _SelectorError(Exception):
    pass


def parse_selector(
    selector: str | None, labels: Sequence[str], *, source: str | os.PathLike | None = None
) -> list[int]:
    """Indices selected by an AFNI sub-brick selector (AFNI semantics, spec 01 §7).

    ``selector`` may carry its brackets or not: ``'[1..3]'``, ``'1,3,$'``, ``'chx:t'``,
    ``'3..$(2)'``, ``'lab1..lab2'``. ``labels`` gives the brick labels (and the number of
    bricks). ``None`` or an empty selector selects every brick.
    """
    nvals = len(labels)
    where = f" of {source}" if source is not None else ""
    if selector is None:
        return list(range(nvals))
    text = selector.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text.strip():
        return list(range(nvals))
    labs = [str(x) for x in labels]
    labs_us = [x.replace(" ", "_") for x in labs]

    pos = 0
    n = len(text)

    def skip_ws() -> None:
        nonlocal pos
        while pos < n and text[pos].isspace():
            pos += 1

    def value() -> int:
        """one index: '$', a label (longest prefix) or a non-negative integer"""
        nonlocal pos
        skip_ws()
        if pos >= n:
            raise _SelectorError("missing index")
        if text[pos] == "$":
            pos += 1
            return nvals - 1
        rest = text[pos:]
        for table in (labs, labs_us):
            best = -1
            best_len = 0
            for i, lab in enumerate(table):
                if lab and len(lab) >= best_len and rest.startswith(lab):
                    after = rest[len(lab) :].lstrip()
                    ok = (
                        (not after)
                        or after[0] in ",]"
                        or after.startswith("..")
                        or after[0] in "-:("
                    )
                    if ok and (len(lab) > best_len or best < 0):
                        best, best_len = i, len(lab)
                    elif ok and len(lab) == best_len:
                        best = min(best, i)  # first of equal labels (AFNI scans in order)
            if best >= 0:
                pos += best_len
                return best
        m = re.match(r"\d+", rest)
        if not m:
            raise _SelectorError(f"'{rest}' is neither a brick index nor a label")
        pos += m.end()
        return int(m.group(0))

    def check(i: int) -> int:
        if not 0 <= i < nvals:
            raise InputDataError(
                f"sub-brick selector [{selector.strip().strip('[]')}]{where}: index {i} is out of "
                f"range (the dataset has {nvals} sub-brick(s), 0..{nvals - 1})"
            )
        return i

    out: list[int] = []
    try:
        while True:
            a = value()
            skip_ws()
            b = None
            if text.startswith("..", pos):
                pos += 2
                b = value()
            elif pos < n and text[pos] in "-:":
                pos += 1
                b = value()
            if b is None:
                out.append(check(a))
            else:
                skip_ws()
                step = 1
                if pos < n and text[pos] == "(":
                    m = re.match(r"\(\s*([-+]?\d+)\s*\)", text[pos:])
                    if not m:
                        raise _SelectorError("bad step '(...)'")
                    step = abs(int(m.group(1)))
                    pos += m.end()
                    if step == 0:
                        raise _SelectorError("step 0")
                check(a)
                check(b)
                if b >= a:
                    out.extend(range(a, b + 1, step))
                else:
                    out.extend(range(a, b - 1, -step))
            skip_ws()
            if pos >= n:
                break
            if text[pos] != ",":
                raise _SelectorError(f"unexpected '{text[pos:]}'")
            pos += 1
    except _SelectorError as err:
        shown = ", ".join(labs) if labs else "(none)"
        raise InputDataError(
            f"bad sub-brick selector [{text}]{where}: {err}; "
            f"the dataset has {nvals} sub-brick(s) with labels: {shown}"
        ) from None
    return out
