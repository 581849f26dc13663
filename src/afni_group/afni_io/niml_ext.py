"""The AFNI NIfTI extension (NIML group ``AFNI_attributes``, code 4; spec 01 §6.2)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from afni_group.afni_io.head_text import _attr_kind, _fmt_g

_NIML_ESC = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&apos;",
    "\r": "&#x0d;",
    "\n": "&#x0a;",
}
_NIML_ESC_RE = re.compile("[&<>\"'\r\n]")


def _niml_escape(s: str) -> str:
    return _NIML_ESC_RE.sub(lambda m: _NIML_ESC[m.group(0)], s)


def _niml_unescape(s: str) -> str:
    def rep(m: re.Match) -> str:
        ent = m.group(1)
        table = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
        if ent in table:
            return table[ent]
        if ent.startswith("#x") or ent.startswith("#X"):
            return chr(int(ent[2:], 16))
        if ent.startswith("#"):
            return chr(int(ent[1:]))
        return m.group(0)

    return re.sub(r"&(#[xX][0-9a-fA-F]+|#\d+|[a-zA-Z]+);", rep, s)


def _ext_string_body(value: str) -> list[str]:
    s = value if value.endswith("\0") else value + "\0"
    z = s.replace("~", "*").replace("\0", "~")
    if len(z) > 1 and z.endswith("~"):
        z = z[:-1]  # only the one terminating NUL is dropped
    pieces = [z[i : i + 1000] for i in range(0, len(z), 1000)] or [""]
    return pieces


def format_afni_extension(
    attrs: Sequence[tuple[str, Any]], *, idcode: str, nifti_nums: Sequence[int]
) -> str:
    """The AFNI extension text (NIML group ``AFNI_attributes``), exactly as AFNI writes it."""
    out = [
        "<?xml version='1.0' ?>\n<AFNI_attributes\n"
        f'  self_idcode="{_niml_escape(idcode)}"\n'
        f'  NIfTI_nums="{",".join(str(int(x)) for x in nifti_nums)}"\n'
        '  ni_form="ni_group" >\n'
    ]
    for name, value in attrs:
        kind, vals = _attr_kind(name, value)
        if kind == "String":
            pieces = _ext_string_body(vals[0])
            body = "".join(f' "{_niml_escape(p)}"\n' for p in pieces)
            dimen = len(pieces)
        elif kind == "int":
            body = "".join(" %d\n" % int(v) for v in vals)
            dimen = len(vals)
        else:
            body = "".join(" " + _fmt_g(v).strip() + "\n" for v in vals)
            dimen = len(vals)
        out.append(
            f'<AFNI_atr\n  ni_type="{kind}"\n  ni_dimen="{dimen}"\n  atr_name="{name}" >\n'
            f"{body}</AFNI_atr>\n\n"
        )
    out.append("</AFNI_attributes>\n")
    return "".join(out)


_ELEM_RE = re.compile(r"<AFNI_atr\b(.*?)>(.*?)</AFNI_atr>", re.S)
_XATTR_RE = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")


def parse_afni_extension(text: bytes | str) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse AFNI extension text -> (``{atr_name: value}``, root XML attributes).

    Strings come back with NUL separators and a terminating NUL (like HEAD strings)."""
    if isinstance(text, bytes):
        z = text.find(b"\0")
        text = (text if z < 0 else text[:z]).decode("utf-8", errors="replace")
    root: dict[str, str] = {}
    m = re.search(r"<AFNI_attributes\b(.*?)>", text, re.S)
    if m:
        for a in _XATTR_RE.finditer(m.group(1)):
            root[a.group(1)] = _niml_unescape(a.group(2) or a.group(3) or a.group(4) or "")
    attrs: dict[str, Any] = {}
    for em in _ELEM_RE.finditer(text):
        head, body = em.group(1), em.group(2)
        xa = {
            a.group(1): (a.group(2) or a.group(3) or a.group(4) or "")
            for a in _XATTR_RE.finditer(head)
        }
        name = xa.get("atr_name") or xa.get("AFNI_name")
        if not name:
            continue
        ntype = xa.get("ni_type", "String")
        if ntype.lower() == "string":
            pieces = re.findall(r'"([^"]*)"', body, re.S)
            if not pieces:
                pieces = re.findall(r"'([^']*)'", body, re.S)
            if not pieces:
                pieces = [body.strip()]
            s = _niml_unescape("".join(pieces)).replace("~", "\0")
            attrs[name] = s + "\0"
        else:
            toks = body.split()
            try:
                if ntype == "int":
                    attrs[name] = [int(float(t)) for t in toks]
                else:
                    attrs[name] = [float(t) for t in toks]
            except ValueError:
                continue
    return attrs, root
