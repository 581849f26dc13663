"""AFNI dataset I/O: HEAD/BRIK(.gz) and NIfTI-1 with the AFNI extension, sub-brick selectors.

Everything that knows AFNI file formats lives here (spec 01-inputs.md §2-§7):

* :func:`read_dataset` reads ``PREFIX+VIEW[.HEAD|.BRIK|.BRIK.gz]`` or ``.nii``/``.nii.gz``, with an
  optional AFNI sub-brick selector (``'file[chx:t]'``), and always returns 4-D data
  ``(nx, ny, nz, nvals)``.
* :func:`write_dataset` writes NIfTI-1 (+ AFNI extension, code 4) or HEAD/BRIK, formatted the way
  AFNI itself formats them (byte-exact HEAD text, extension XML text), atomically.
* :func:`split_selector` / :func:`parse_selector` implement AFNI's ``[...]`` sub-brick selectors.
* Geometry helpers convert between the NIfTI/nibabel RAS+ affine and AFNI's DICOM/RAI
  ``ORIENT_SPECIFIC`` / ``ORIGIN`` / ``DELTA`` / ``IJK_TO_DICOM_REAL`` attributes.

Deterministic output: pass ``idcode=`` and ``date=`` to :func:`write_dataset`, or set the
environment variable ``AFNI_GROUP_DETERMINISTIC=1`` (the id code is then derived from a hash of
the dataset, and the date from ``SOURCE_DATE_EPOCH``, default 0).
"""

from __future__ import annotations

import bz2
import contextlib
import getpass
import gzip
import hashlib
import io
import os
import platform
import re
import secrets
import socket
import struct
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from afni_group import atomic
from afni_group.errors import InputDataError, MissingInputError, OutputError

__all__ = [
    "STAT_NONE",
    "STAT_CORREL",
    "STAT_TTEST",
    "STAT_FTEST",
    "STAT_ZSCORE",
    "STAT_CHISQ",
    "STAT_BETA",
    "STAT_BINOM",
    "STAT_GAMMA",
    "STAT_POISSON",
    "STAT_NPARAMS",
    "STAT_NAMES",
    "STAT_SHORT_NAMES",
    "AfniDataset",
    "read_dataset",
    "read_labels",
    "write_dataset",
    "split_selector",
    "parse_selector",
    "ijk_to_dicom",
    "affine_from_ijk_to_dicom",
    "afni_geometry",
    "affine_from_afni_geometry",
    "orientation_string",
    "same_grid",
    "stat_encode",
    "stat_param_text",
    "stat_decode",
    "history_entry",
    "parse_head_text",
    "format_head_text",
    "format_afni_extension",
    "parse_afni_extension",
    "new_idcode",
]

# --------------------------------------------------------------------------------------------
# statistic codes (spec 01 §5)
# --------------------------------------------------------------------------------------------

STAT_NONE = 0
STAT_CORREL = 2
STAT_TTEST = 3
STAT_FTEST = 4
STAT_ZSCORE = 5
STAT_CHISQ = 6
STAT_BETA = 7
STAT_BINOM = 8
STAT_GAMMA = 9
STAT_POISSON = 10

#: number of auxiliary parameters per AFNI stat code (FUNC_need_stat_aux)
STAT_NPARAMS: dict[int, int] = {0: 0, 2: 3, 3: 1, 4: 2, 5: 0, 6: 1, 7: 2, 8: 2, 9: 2, 10: 1}
#: BRICK_STATSYM / NIML distribution names
STAT_NAMES: dict[int, str] = {
    2: "Correl",
    3: "Ttest",
    4: "Ftest",
    5: "Zscore",
    6: "Chisq",
    7: "Beta",
    8: "Binom",
    9: "Gamma",
    10: "Poisson",
}
#: AFNI short names (3drefit -substatpar, 3dinfo)
STAT_SHORT_NAMES: dict[int, str] = {
    0: "fim",
    2: "fico",
    3: "fitt",
    4: "fift",
    5: "fizt",
    6: "fict",
    7: "fibt",
    8: "fibn",
    9: "figt",
    10: "fipt",
}
_FIRST_STAT, _LAST_STAT = 2, 10

# NIML's full distribution-name table (codes 2..24); only 2..10 are AFNI brick stat codes.
_NIML_DISTNAMES = [
    "none",
    "none",
    "Correl",
    "Ttest",
    "Ftest",
    "Zscore",
    "Chisq",
    "Beta",
    "Binom",
    "Gamma",
    "Poisson",
    "Normal",
    "Ftest_nonc",
    "Chisq_nonc",
    "Logistic",
    "Laplace",
    "Uniform",
    "Ttest_nonc",
    "Weibull",
    "Chi",
    "Invgauss",
    "Extval",
    "Pval",
    "LogPval",
    "Log10Pval",
]
_NIML_NUMPARAM = [0, 0, 3, 1, 2, 0, 1, 2, 2, 2, 1, 2, 3, 2, 2, 2, 2, 2, 3, 1, 2, 2, 0, 0, 0]

# BRICK_TYPES codes <-> numpy dtypes; NIfTI datatype codes
_AFNI_TYPES: dict[int, np.dtype] = {
    0: np.dtype(np.uint8),
    1: np.dtype(np.int16),
    2: np.dtype(np.int32),
    3: np.dtype(np.float32),
    4: np.dtype(np.float64),
    5: np.dtype(np.complex64),
}
_AFNI_TYPE_OF = {dt: code for code, dt in _AFNI_TYPES.items()}
_NIFTI_TYPE_OF = {
    np.dtype(np.uint8): (2, 8),
    np.dtype(np.int16): (4, 16),
    np.dtype(np.int32): (8, 32),
    np.dtype(np.float32): (16, 32),
    np.dtype(np.float64): (64, 64),
    np.dtype(np.complex64): (32, 64),
}

_VIEWS = ("orig", "acpc", "tlrc")
_TYPESTRINGS = ("3DIM_HEAD_ANAT", "3DIM_HEAD_FUNC", "3DIM_GEN_ANAT", "3DIM_GEN_FUNC")
_FUNC_BUCK_TYPE = 11
_LABEL_MAX = 64

# --------------------------------------------------------------------------------------------
# the dataset
# --------------------------------------------------------------------------------------------

# attributes that describe individual sub-bricks: dropped by select() (they would be wrong)
_PER_BRICK_ATTRS = re.compile(
    r"^(BRICK_\w+|FDRCURVE_\d+|MDFCURVE_\d+|STAT_AUX|DATASET_RANK|TAXIS_\w+)$"
)


@dataclass
class AfniDataset:
    """One AFNI dataset in memory.

    ``data`` is always 4-D ``(nx, ny, nz, nvals)`` (a 3-D array given to the constructor gets a
    4th axis of length 1); ``affine`` maps voxel (i, j, k) to RAS+ mm (NIfTI convention).
    """

    data: np.ndarray
    affine: np.ndarray
    labels: list[str] = field(default_factory=list)
    stat_codes: list[int] = field(default_factory=list)
    stat_params: list[tuple[float, ...]] = field(default_factory=list)
    space: str = "ORIG"
    view: str = ""  # orig / acpc / tlrc; empty: derived from space
    history: str = ""
    path: Path | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = np.asanyarray(self.data)
        if data.ndim == 3:
            data = data[..., np.newaxis]
        elif data.ndim != 4:
            raise InputDataError(
                f"dataset{self._where()} has {data.ndim}-D data; expected 3-D or 4-D"
            )
        self.data = data
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape == (3, 4):
            aff = np.vstack([aff, [0.0, 0.0, 0.0, 1.0]])
        if aff.shape != (4, 4):
            raise InputDataError(f"dataset{self._where()}: affine must be 4x4, got {aff.shape}")
        self.affine = aff
        n = data.shape[3]
        labels = [str(x) for x in (self.labels or [])]
        if len(labels) < n:
            labels += [f"#{i}" for i in range(len(labels), n)]
        self.labels = labels[:n]
        codes = [int(c) for c in (self.stat_codes or [])]
        codes += [0] * (n - len(codes))
        self.stat_codes = codes[:n]
        params = [tuple(float(v) for v in p) for p in (self.stat_params or [])]
        params += [()] * (n - len(params))
        self.stat_params = params[:n]
        if self.path is not None:
            self.path = Path(self.path)
        self.space = (self.space or "ORIG").upper()
        self.view = (self.view or _view_of_space(self.space)).lower()

    def _where(self) -> str:
        return f" {self.path}" if getattr(self, "path", None) else ""

    # -- helpers ------------------------------------------------------------------------------
    @property
    def nvals(self) -> int:
        """Number of sub-bricks."""
        return int(self.data.shape[3])

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial grid (nx, ny, nz)."""
        return tuple(int(s) for s in self.data.shape[:3])  # type: ignore[return-value]

    @property
    def voxel_sizes(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in mm (lengths of the affine's columns)."""
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]

    def brick(self, i: int) -> np.ndarray:
        """Sub-brick ``i`` as a 3-D array (a view, not a copy)."""
        if not -self.nvals <= i < self.nvals:
            raise InputDataError(
                f"sub-brick index {i} out of range: dataset{self._where()} has "
                f"{self.nvals} sub-brick(s) (0..{self.nvals - 1})"
            )
        return self.data[..., i]

    def stat_dof(self, i: int) -> tuple[float, ...]:
        """Stat parameters of brick ``i`` (empty if it is not a statistic)."""
        return self.stat_params[i] if self.stat_codes[i] else ()

    def index_of(self, label: str) -> int:
        """Index of the brick whose label equals ``label`` exactly (last match wins, as in
        3dClusterize); raises InputDataError when no brick has that label."""
        found = -1
        for i, lab in enumerate(self.labels):
            if lab == label:
                found = i
        if found < 0:
            raise InputDataError(
                f"no sub-brick labelled '{label}' in {self.path or 'dataset'}; "
                f"labels are: {', '.join(self.labels)}"
            )
        return found

    def select(self, indices: Sequence[int] | str) -> AfniDataset:
        """New dataset holding bricks ``indices`` (a list, or a selector string such as
        ``'[chx:t]'``), keeping labels and stat codes/parameters."""
        if isinstance(indices, str):
            indices = parse_selector(indices, self.labels, source=self.path)
        idx = [int(i) for i in indices]
        for i in idx:
            if not 0 <= i < self.nvals:
                raise InputDataError(
                    f"sub-brick index {i} out of range: {self.path or 'dataset'} has "
                    f"{self.nvals} sub-brick(s) (0..{self.nvals - 1})"
                )
        attrs = {k: v for k, v in self.attributes.items() if not _PER_BRICK_ATTRS.match(k)}
        return AfniDataset(
            data=np.ascontiguousarray(self.data[..., idx]) if idx else self.data[..., :0].copy(),
            affine=self.affine.copy(),
            labels=[self.labels[i] for i in idx],
            stat_codes=[self.stat_codes[i] for i in idx],
            stat_params=[self.stat_params[i] for i in idx],
            space=self.space,
            view=self.view,
            history=self.history,
            path=self.path,
            attributes=attrs,
        )

    def __repr__(self) -> str:  # short: never print the data
        return (
            f"AfniDataset(path={str(self.path) if self.path else None!r}, shape={self.shape}, "
            f"nvals={self.nvals}, dtype={self.data.dtype}, labels={self.labels!r}, "
            f"space={self.space!r})"
        )


# --------------------------------------------------------------------------------------------
# stat symbols (BRICK_STATSYM, NI_stat_encode / NI_stat_decode)
# --------------------------------------------------------------------------------------------


def stat_param_text(q: float) -> str:
    """NI_fval_to_char: how AFNI prints one stat parameter (BRICK_STATSYM, reports)."""
    q = float(np.float32(q))
    if q == 0.0:
        return "0"
    lv = int(q) if abs(q) < 99999999.0 else 100000001
    if q == lv and abs(lv) < 100000000:
        return "%d" % lv

    def bstrip(s: str) -> str:
        il = len(s) - 1
        while il > 1 and s[il] in "0 ":
            il -= 1
        return s[: il + 1]

    # decimals by decade: 1e-4..10 -> 6, then one fewer per decade; 1e6..1e7 -> "%-9.0f"
    lvl = int(10.0001 + np.log10(abs(q)))
    if 6 <= lvl <= 15:
        return bstrip("%-9.*f" % (min(6, 16 - lvl), q))
    if lvl == 16:
        return "%-9.0f" % q
    return ("%-12.6e" % q) if q > 0 else ("%-12.5e" % q)


def stat_encode(code: int, params: Sequence[float] = ()) -> str:
    """BRICK_STATSYM entry for one brick, e.g. ``Ttest(10)``; ``none`` for non-stat bricks."""
    if code < _FIRST_STAT or code > len(_NIML_DISTNAMES) - 1:
        return "none"
    np_ = _NIML_NUMPARAM[code]
    p = list(params)[:3] + [0.0] * (3 - min(3, len(params)))
    if np_ == 0:
        return f"{_NIML_DISTNAMES[code]}()"
    return f"{_NIML_DISTNAMES[code]}({','.join(stat_param_text(v) for v in p[:np_])})"


def stat_decode(text: str) -> tuple[int, tuple[float, ...]]:
    """Parse one BRICK_STATSYM entry (NI_stat_decode); unknown text gives ``(0, ())``."""
    s = text.strip()
    if not s:
        return 0, ()
    for code in range(2, len(_NIML_DISTNAMES)):
        name = _NIML_DISTNAMES[code] + "("
        if s[: len(name)].lower() == name.lower():
            nparam = _NIML_NUMPARAM[code]
            parm = [1.0, 1.0, 1.0]
            rest = s[len(name) :]
            for k in range(nparam):
                m = re.match(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", rest)
                if not m:
                    break
                parm[k] = float(np.float32(float(m.group(1))))
                rest = rest[m.end() + 1 :]
            if code > _LAST_STAT:  # not an AFNI brick stat code
                return 0, ()
            return code, tuple(parm[: STAT_NPARAMS[code]])
    # AFNI short names are not valid here (NI_stat_decode only knows NIML names)
    return 0, ()


def _stats_from_statsym(text: str, nvals: int) -> tuple[list[int], list[tuple[float, ...]]]:
    codes = [0] * nvals
    params: list[tuple[float, ...]] = [()] * nvals
    for i, part in enumerate(text.split(";")[:nvals]):
        codes[i], params[i] = stat_decode(part)
    return codes, params


def _stats_from_stataux(
    vals: Sequence[float], nvals: int
) -> tuple[list[int], list[tuple[float, ...]]]:
    """Decode BRICK_STATAUX units ``[brick, code, nparams, p...]`` (thd_initdblk rules)."""
    codes = [0] * nvals
    params: list[tuple[float, ...]] = [()] * nvals
    v = list(vals)
    ipos = 0
    while ipos + 2 < len(v):
        ibr = int(v[ipos])
        code = int(v[ipos + 1])
        nv = int(v[ipos + 2])
        ipos += 3
        vals_here = v[ipos : ipos + max(nv, 0)]
        ipos += max(nv, 0)
        if 0 <= ibr < nvals and _FIRST_STAT <= code <= _LAST_STAT:
            need = STAT_NPARAMS[code]
            p = [float(np.float32(x)) for x in vals_here[:need]]
            p += [0.0] * (need - len(p))
            codes[ibr] = code
            params[ibr] = tuple(p)
    return codes, params


def _stataux_values(codes: Sequence[int], params: Sequence[Sequence[float]]) -> list[float]:
    out: list[float] = []
    for i, (c, p) in enumerate(zip(codes, params, strict=True)):
        if _FIRST_STAT <= c <= _LAST_STAT:
            need = STAT_NPARAMS[c]
            pp = list(p)[:need] + [0.0] * (need - min(need, len(p)))
            out += [float(i), float(c), float(need)] + [float(x) for x in pp]
    return out


# --------------------------------------------------------------------------------------------
# selectors (spec 01 §7)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# HEAD text (spec 01 §3)
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# AFNI NIfTI extension (spec 01 §6.2)
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# geometry (spec 01 §3.4)
# --------------------------------------------------------------------------------------------

_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])
_ORIENT_LETTERS = "RLPAIS"  # code -> first letter of x2y (R2L=0 -> 'R', L2R=1 -> 'L', ...)


def ijk_to_dicom(affine: np.ndarray) -> np.ndarray:
    """4x4 voxel -> DICOM/RAI mm matrix (what AFNI reports) from a RAS+ affine."""
    aff = np.asarray(affine, dtype=np.float64)
    if aff.shape == (3, 4):
        aff = np.vstack([aff, [0, 0, 0, 1]])
    return _FLIP @ aff


def affine_from_ijk_to_dicom(mat: np.ndarray | Sequence[float]) -> np.ndarray:
    """RAS+ affine from IJK_TO_DICOM(_REAL) (12 values row-major, or a 3x4/4x4 matrix)."""
    m = np.asarray(mat, dtype=np.float64)
    if m.size == 12:
        m = m.reshape(3, 4)
    if m.shape == (3, 4):
        m = np.vstack([m, [0, 0, 0, 1]])
    return _FLIP @ m


def _axis_map(m3: np.ndarray) -> list[int]:
    """DICOM axis (row) of each voxel axis (column): the dominant entry, all distinct."""
    a = np.abs(m3)
    rows = [-1, -1, -1]
    used: set[int] = set()
    # assign the most dominant columns first so ties in oblique data stay a permutation
    order = sorted(range(3), key=lambda c: -a[:, c].max() / max(np.linalg.norm(a[:, c]), 1e-30))
    for c in order:
        for r in np.argsort(-a[:, c]):
            if int(r) not in used:
                rows[c] = int(r)
                used.add(int(r))
                break
    return rows


def afni_geometry(affine: np.ndarray) -> tuple[list[int], list[float], list[float]]:
    """``(ORIENT_SPECIFIC, ORIGIN, DELTA)`` for a RAS+ affine (cardinal part of oblique data)."""
    m = ijk_to_dicom(affine)[:3]
    rows = _axis_map(m[:, :3])
    orient, origin, delta = [], [], []
    for c in range(3):
        r = rows[c]
        size = float(np.linalg.norm(m[:, c]))
        sign = 1.0 if m[r, c] >= 0 else -1.0
        d = sign * size
        # x: R2L(0) if positive else L2R(1); y: A2P(3) if positive else P2A(2);
        # z: I2S(4) if positive else S2I(5)
        if r == 0:
            code = 0 if d > 0 else 1
        elif r == 1:
            code = 3 if d > 0 else 2
        else:
            code = 4 if d > 0 else 5
        orient.append(code)
        origin.append(float(m[r, 3]))
        delta.append(d)
    return orient, origin, delta


def affine_from_afni_geometry(
    orient: Sequence[int], origin: Sequence[float], delta: Sequence[float]
) -> np.ndarray:
    """RAS+ affine from ORIENT_SPECIFIC / ORIGIN / DELTA (cardinal grid)."""
    return affine_from_ijk_to_dicom(_cardinal_ijk_to_dicom(orient, origin, delta))


def _cardinal_ijk_to_dicom(orient, origin, delta) -> np.ndarray:
    m = np.zeros((3, 4))
    for a in range(3):
        r = int(orient[a]) // 2
        m[r, a] = float(delta[a])
        m[r, 3] = float(origin[a])
    return m


def orientation_string(affine: np.ndarray) -> str:
    """AFNI orientation code such as ``'RAI'`` or ``'LPI'`` (first letter of each axis' x2y)."""
    orient, _, _ = afni_geometry(affine)
    return "".join(_ORIENT_LETTERS[o] for o in orient)


def _is_oblique(affine: np.ndarray, tol: float = 1e-5) -> bool:
    m = ijk_to_dicom(affine)[:3, :3]
    rows = _axis_map(m)
    for c in range(3):
        for r in range(3):
            if r != rows[c] and abs(m[r, c]) > tol * max(1.0, abs(m[rows[c], c])):
                return True
    return False


def _shape_affine(x: Any) -> tuple[tuple[int, ...], np.ndarray]:
    if isinstance(x, AfniDataset):
        return x.shape, x.affine
    if hasattr(x, "affine") and hasattr(x, "shape"):
        return tuple(int(s) for s in x.shape[:3]), np.asarray(x.affine, dtype=float)
    if isinstance(x, tuple) and len(x) == 2:
        return tuple(int(s) for s in x[0][:3]), np.asarray(x[1], dtype=float)
    raise TypeError(f"same_grid: cannot get a grid from {type(x).__name__}")


def same_grid(a: Any, b: Any, *, atol: float = 1e-3) -> bool:
    """True when two datasets (AfniDataset, nibabel image, or ``(shape, affine)``) share the
    voxel grid: same (nx, ny, nz) and affines equal within ``atol`` mm."""
    sa, aa = _shape_affine(a)
    sb, ab = _shape_affine(b)
    return sa == sb and bool(np.allclose(aa, ab, atol=atol, rtol=0))


# --------------------------------------------------------------------------------------------
# locating files
# --------------------------------------------------------------------------------------------

_BRIK_SUFFIXES = (".BRIK", ".BRIK.gz", ".BRIK.bz2", ".BRIK.Z")
_AFNI_NAME = re.compile(
    r"^(?P<prefix>.*)\+(?P<view>orig|acpc|tlrc)(?:\.|\.HEAD|\.BRIK(?:\.gz|\.bz2|\.Z)?)?$"
)


def _is_nifti(name: str) -> bool:
    return name.endswith(".nii") or name.endswith(".nii.gz")


def _resolve(path_text: str) -> tuple[str, Path, Path | None, str | None]:
    """-> (kind 'afni'|'nifti', header path, BRIK path or None, view)."""
    if _is_nifti(path_text):
        p = Path(path_text)
        if not p.is_file():
            raise MissingInputError(f"dataset not found: {p}")
        return "nifti", p, None, None
    m = _AFNI_NAME.match(path_text)
    if not m:
        # plain prefix: try the views (AFNI does), then NIfTI names
        for view in _VIEWS:
            if Path(f"{path_text}+{view}.HEAD").is_file():
                return _resolve(f"{path_text}+{view}.HEAD")
        for ext in (".nii", ".nii.gz"):
            if Path(path_text + ext).is_file():
                return "nifti", Path(path_text + ext), None, None
        if Path(path_text).is_file():
            raise InputDataError(
                f"{path_text}: not a dataset name AFNI understands "
                "(expected PREFIX+VIEW.HEAD/.BRIK, .nii or .nii.gz)"
            )
        raise MissingInputError(f"dataset not found: {path_text}")
    base = f"{m.group('prefix')}+{m.group('view')}"
    head = Path(base + ".HEAD")
    if not head.is_file():
        raise MissingInputError(f"dataset header not found: {head}")
    brik = None
    for suf in _BRIK_SUFFIXES:
        if Path(base + suf).is_file():
            brik = Path(base + suf)
            break
    return "afni", head, brik, m.group("view")


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def _attr_str(attrs: Mapping[str, Any], name: str) -> str | None:
    v = attrs.get(name)
    if isinstance(v, str):
        return v.split("\0")[0] if name not in ("BRICK_LABS", "BRICK_KEYWORDS") else v
    return None


def _view_of_space(space: str | None) -> str:
    sp = (space or "ORIG").upper()
    return "orig" if sp == "ORIG" else "acpc" if sp == "ACPC" else "tlrc"


def _labels_from(attrs: Mapping[str, Any], nvals: int) -> list[str]:
    raw = attrs.get("BRICK_LABS")
    labels: list[str] = []
    if isinstance(raw, str):
        s = raw[:-1] if raw.endswith("\0") else raw
        labels = [x[:_LABEL_MAX] for x in s.split("\0")][:nvals]
    out = []
    for i in range(nvals):
        lab = labels[i] if i < len(labels) else ""
        out.append(lab if lab else f"#{i}")
    return out


def _read_compressed(path: Path) -> bytes:
    name = path.name
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        if name.endswith(".bz2"):
            with bz2.open(path, "rb") as f:
                return f.read()
        if name.endswith(".Z"):
            import subprocess

            res = subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=False)
            if res.returncode != 0:
                raise InputDataError(f"cannot decompress {path} (.Z needs 'gzip -d')")
            return res.stdout
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise InputDataError(f"cannot read {path}: {err}") from None


def _read_afni(head: Path, brik: Path | None, view: str | None) -> AfniDataset:
    try:
        raw = head.read_bytes()
    except OSError as err:
        raise InputDataError(f"cannot read AFNI header {head}: {err}") from None
    attrs = parse_head_text(raw, source=str(head))
    for req in ("DATASET_RANK", "DATASET_DIMENSIONS"):
        if req not in attrs:
            raise InputDataError(
                f"unreadable AFNI header {head}: attribute {req} is missing "
                "(not an AFNI .HEAD file, or it is damaged)"
            )
    rank = attrs["DATASET_RANK"]
    dims = attrs["DATASET_DIMENSIONS"]
    if len(rank) < 2 or len(dims) < 3 or rank[0] != 3 or rank[1] < 1 or min(dims[:3]) < 1:
        raise InputDataError(
            f"unreadable AFNI header {head}: DATASET_RANK {rank} / DATASET_DIMENSIONS {dims}"
        )
    nx, ny, nz = (int(d) for d in dims[:3])
    nvals = int(rank[1])
    types = list(attrs.get("BRICK_TYPES", [1] * nvals))
    if len(types) < nvals:
        types += [types[-1] if types else 1] * (nvals - len(types))
    types = types[:nvals]
    for t in types:
        if t not in _AFNI_TYPES:
            raise InputDataError(f"{head}: unsupported BRICK_TYPES value {t}")
    facs = list(attrs.get("BRICK_FLOAT_FACS", [0.0] * nvals))
    facs = (facs + [0.0] * nvals)[:nvals]
    order = _attr_str(attrs, "BYTEORDER_STRING")
    endian = ">" if order == "MSB_FIRST" else "<" if order == "LSB_FIRST" else "="

    if brik is None:
        raise MissingInputError(
            f"dataset data file not found: {head.with_suffix('.BRIK')} (or .BRIK.gz) for {head}"
        )
    blob = _read_compressed(brik)
    nvox = nx * ny * nz
    sizes = [nvox * _AFNI_TYPES[t].itemsize for t in types]
    expected = sum(sizes)
    if len(blob) != expected:
        raise InputDataError(
            f"{brik}: data size does not match its header {head.name}: expected {expected} bytes "
            f"({nvals} sub-brick(s) of {nx}x{ny}x{nz}), found {len(blob)} bytes"
        )
    bricks = []
    off = 0
    for t, size in zip(types, sizes, strict=True):
        dt = _AFNI_TYPES[t].newbyteorder(endian)
        arr = np.frombuffer(blob, dtype=dt, count=nvox, offset=off)
        bricks.append(arr.reshape(nz, ny, nx).transpose(2, 1, 0))
        off += size
    scaled = any(f > 0 and f != 1.0 for f in facs)
    if scaled:
        out_dtype = np.dtype(np.float32)
        if any(_AFNI_TYPES[t] in (np.dtype(np.float64), np.dtype(np.complex64)) for t in types):
            out_dtype = np.result_type(*[_AFNI_TYPES[t] for t in types], np.float32)
    else:
        out_dtype = np.result_type(*[_AFNI_TYPES[t] for t in types])
    data = np.empty((nx, ny, nz, nvals), dtype=out_dtype, order="F")  # AFNI layout
    for b, (arr, f) in enumerate(zip(bricks, facs, strict=True)):
        if f > 0 and f != 1.0:
            data[..., b] = (arr.astype(np.float32) * np.float32(f)).astype(out_dtype)
        else:
            data[..., b] = arr

    # geometry: IJK_TO_DICOM_REAL (what nibabel uses) else ORIENT/ORIGIN/DELTA
    if "IJK_TO_DICOM_REAL" in attrs and len(attrs["IJK_TO_DICOM_REAL"]) >= 12:
        affine = affine_from_ijk_to_dicom(attrs["IJK_TO_DICOM_REAL"][:12])
    else:
        for req in ("ORIENT_SPECIFIC", "ORIGIN", "DELTA"):
            if req not in attrs:
                raise InputDataError(f"unreadable AFNI header {head}: attribute {req} is missing")
        affine = affine_from_afni_geometry(
            attrs["ORIENT_SPECIFIC"], attrs["ORIGIN"], attrs["DELTA"]
        )

    labels = _labels_from(attrs, nvals)
    if isinstance(attrs.get("BRICK_STATSYM"), str):
        codes, params = _stats_from_statsym(attrs["BRICK_STATSYM"].split("\0")[0], nvals)
    elif "BRICK_STATAUX" in attrs:
        codes, params = _stats_from_stataux(attrs["BRICK_STATAUX"], nvals)
    else:
        codes, params = [0] * nvals, [()] * nvals
    # legacy 2-brick fitt/fift... datasets: STAT_AUX + func_type
    scene = attrs.get("SCENE_DATA")
    if not any(codes) and "STAT_AUX" in attrs and scene and len(scene) > 1 and nvals == 2:
        ft = int(scene[1])
        ts = _attr_str(attrs, "TYPESTRING") or ""
        if "FUNC" in ts and _FIRST_STAT <= ft <= _LAST_STAT:
            codes[1] = ft
            need = STAT_NPARAMS[ft]
            params[1] = tuple(float(x) for x in (list(attrs["STAT_AUX"]) + [0.0] * 3)[:need])

    space = _attr_str(attrs, "TEMPLATE_SPACE")
    if view is None and scene:
        view = _VIEWS[int(scene[0])] if 0 <= int(scene[0]) < 3 else "orig"
    view = view or "orig"
    if not space:
        space = {"orig": "ORIG", "acpc": "ACPC", "tlrc": "TLRC"}[view]
    history = _attr_str(attrs, "HISTORY_NOTE") or ""
    return AfniDataset(
        data=data,
        affine=affine,
        labels=labels,
        stat_codes=codes,
        stat_params=params,
        space=space,
        view=view,
        history=history,
        path=head,
        attributes=dict(attrs),
    )


_SPACE_OF_XFORM = {1: "ORIG", 2: "ORIG", 3: "TLRC", 4: "MNI", 5: "TLRC"}


def _read_nifti(path: Path) -> AfniDataset:
    import nibabel as nib

    try:
        img = nib.load(str(path), mmap=False)
    except Exception as err:  # nibabel raises many kinds
        raise InputDataError(f"unreadable NIfTI file {path}: {err}") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputDataError(f"{path}: not a NIfTI-1/2 file")
    hdr = img.header
    try:
        raw = np.asanyarray(img.dataobj)
        if raw.dtype == np.float64 and img.get_data_dtype() != np.float64:
            raw = raw.astype(np.float32)  # scaled integers: float32, as AFNI
    except Exception as err:
        raise InputDataError(f"cannot read the data of {path}: {err}") from None
    shp = raw.shape
    dim = [int(x) for x in hdr["dim"]]
    if raw.ndim <= 3:
        data = raw.reshape(tuple(shp) + (1,) * (3 - raw.ndim) + (1,))
    elif raw.ndim == 4:
        data = raw
    else:
        nt = shp[3]
        rest = int(np.prod(shp[4:]))
        if nt == 1 or rest == 1:
            data = raw.reshape(shp[:3] + (nt * rest,))
        else:  # time x bricks: AFNI flattens t fastest
            data = raw.reshape(shp[:3] + (nt * rest,), order="F")
    nvals = data.shape[3]

    # AFNI extension
    ext_attrs: dict[str, Any] = {}
    root: dict[str, str] = {}
    for ext in hdr.extensions:
        if int(ext.get_code()) == 4:
            try:
                content = ext.get_content()
            except Exception:
                content = getattr(ext, "_content", b"")
            if isinstance(content, str):
                content = content.encode("utf-8")
            ext_attrs, root = parse_afni_extension(bytes(content))
            break

    # geometry always comes from the header (sform if set, else qform: nibabel's choice); the
    # extension's copy of IJK_TO_DICOM_REAL is informational
    affine = np.asarray(img.affine, dtype=np.float64)

    labels = _labels_from(ext_attrs, nvals)
    codes: list[int] = [0] * nvals
    params: list[tuple[float, ...]] = [()] * nvals
    intent = int(hdr["intent_code"])
    if _FIRST_STAT <= intent <= _LAST_STAT and (len(dim) < 6 or dim[5] <= 1):
        need = STAT_NPARAMS[intent]
        p = tuple(float(hdr[f"intent_p{k + 1}"]) for k in range(need))
        codes, params = [intent] * nvals, [p] * nvals
    if "BRICK_STATAUX" in ext_attrs:
        # AFNI applies BRICK_STATAUX from the extension (BRICK_STATSYM is informational there)
        codes, params = _stats_from_stataux(ext_attrs["BRICK_STATAUX"], nvals)

    space = _attr_str(ext_attrs, "TEMPLATE_SPACE")
    scode = int(hdr["sform_code"]) or int(hdr["qform_code"])
    if not space:
        space = _SPACE_OF_XFORM.get(scode, "ORIG")
    view = _view_of_space(space)
    history = _attr_str(ext_attrs, "HISTORY_NOTE") or ""
    attrs = dict(ext_attrs)
    if dim[0] == 4 and dim[4] > 1 and "TAXIS_NUMS" not in attrs:
        units = int(hdr["xyzt_units"]) & 0x38
        tr = float(hdr["pixdim"][4])
        if units == 16:  # ms
            tr /= 1000.0
        attrs["TAXIS_NUMS"] = [dim[4], 0, 77002, -999, -999, -999, -999, -999]
        attrs["TAXIS_FLOATS"] = [0.0, tr, 0.0, 0.0, 0.0, -999999.0, -999999.0, -999999.0]
    if root.get("self_idcode"):
        attrs.setdefault("IDCODE_STRING", root["self_idcode"] + "\0")
    return AfniDataset(
        data=data,
        affine=affine,
        labels=labels,
        stat_codes=codes,
        stat_params=params,
        space=space.upper(),
        view=view,
        history=history,
        path=path,
        attributes=attrs,
    )


def read_dataset(spec: str | os.PathLike) -> AfniDataset:
    """Read an AFNI dataset (``PREFIX+VIEW[.HEAD|.BRIK[.gz]]``, ``.nii``, ``.nii.gz``) with an
    optional sub-brick selector (``'file[chx:t]'``). Data are always 4-D (nx, ny, nz, nvals)."""
    path_text, selector = split_selector(spec)
    kind, head, brik, view = _resolve(path_text)
    dset = _read_afni(head, brik, view) if kind == "afni" else _read_nifti(head)
    if selector is not None:
        idx = parse_selector(selector, dset.labels, source=head)
        dset = dset.select(idx)
    return dset


def read_labels(spec: str | os.PathLike) -> list[str]:
    """Sub-brick labels of a dataset without reading its data (HEAD/BRIK: the header only).

    Used by discovery, which looks at every subject before anything is analysed. A missing
    data file still counts as a missing dataset, as in :func:`read_dataset`.
    """
    path_text, _ = split_selector(spec)
    kind, head, brik, _view = _resolve(path_text)
    if kind != "afni":
        return read_dataset(path_text).labels
    if brik is None:
        raise MissingInputError(
            f"dataset data file not found: {head.with_suffix('.BRIK')} (or .BRIK.gz) for {head}"
        )
    try:
        attrs = parse_head_text(head.read_bytes(), source=str(head))
    except OSError as err:
        raise InputDataError(f"cannot read AFNI header {head}: {err}") from None
    rank = attrs.get("DATASET_RANK")
    if not rank or len(rank) < 2 or rank[1] < 1:
        raise InputDataError(
            f"unreadable AFNI header {head}: DATASET_RANK is missing or invalid "
            "(not an AFNI .HEAD file, or it is damaged)"
        )
    return _labels_from(attrs, int(rank[1]))


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def _deterministic() -> bool:
    return os.environ.get("AFNI_GROUP_DETERMINISTIC", "").strip().lower() in ("1", "yes", "true")


def new_idcode(prefix: str = "AFN", seed: bytes | None = None) -> str:
    """AFNI-style id code: ``PREFIX_`` + 22 characters (random, or derived from ``seed``)."""
    if seed is None:
        body = "".join(secrets.choice(_ID_CHARS) for _ in range(22))
    else:
        digest = hashlib.sha256(seed).digest()
        body = "".join(_ID_CHARS[b % 64] for b in digest[:22])
    return f"{prefix}_{body}"


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


_C_ORDER = [
    "HISTORY_NOTE",
    "TYPESTRING",
    "IDCODE_STRING",
    "IDCODE_DATE",
    "SCENE_DATA",
    "LABEL_1",
    "LABEL_2",
    "DATASET_NAME",
    "ORIENT_SPECIFIC",
    "ORIGIN",
    "DELTA",
    "IJK_TO_DICOM",
    "IJK_TO_DICOM_REAL",
    "BRICK_STATS",
    "DATASET_RANK",
    "DATASET_DIMENSIONS",
    "TAXIS_NUMS",
    "TAXIS_FLOATS",
    "BRICK_TYPES",
    "BRICK_FLOAT_FACS",
    "BRICK_LABS",
    "BRICK_KEYWORDS",
    "BRICK_STATAUX",
    "BRICK_STATSYM",
    "TEMPLATE_SPACE",
    "INT_CMAP",
]
_MEMA_ORDER = [
    "IDCODE_STRING",
    "ORIGIN",
    "DELTA",
    "ORIENT_SPECIFIC",
    "DATASET_DIMENSIONS",
    "DATASET_RANK",
    "TYPESTRING",
    "SCENE_DATA",
    "IJK_TO_DICOM_REAL",
    "BRICK_LABS",
    "TEMPLATE_SPACE",
    "BRICK_TYPES",
    "BRICK_STATSYM",
    "HISTORY_NOTE",
    "IDCODE_DATE",
    "LABEL_1",
    "LABEL_2",
    "DATASET_NAME",
    "IJK_TO_DICOM",
    "BRICK_STATS",
    "BRICK_FLOAT_FACS",
    "BRICK_KEYWORDS",
    "BRICK_STATAUX",
    "INT_CMAP",
]


def _output_dtype(data: np.ndarray) -> np.ndarray:
    dt = data.dtype
    if dt == np.bool_:
        return data.astype(np.uint8)
    if dt in _NIFTI_TYPE_OF and dt != np.float64:
        return data
    if dt == np.float64 or np.issubdtype(dt, np.floating):
        return data.astype(np.float32)
    if dt == np.int8:
        return data.astype(np.int16)
    if np.issubdtype(dt, np.integer):
        if data.size and (
            data.min() < np.iinfo(np.int32).min or data.max() > np.iinfo(np.int32).max
        ):
            return data.astype(np.float32)
        return data.astype(np.int32)
    if np.issubdtype(dt, np.complexfloating):
        return data.astype(np.complex64)
    raise OutputError(f"cannot write data of type {dt} as an AFNI dataset")


def _brick_stats(data: np.ndarray) -> list[float]:
    out: list[float] = []
    for b in range(data.shape[3]):
        a = data[..., b]
        if np.iscomplexobj(a):
            a = np.abs(a)
        if a.size == 0:
            out += [0.0, 0.0]
            continue
        with np.errstate(invalid="ignore"):
            fin = a[np.isfinite(a)] if np.issubdtype(a.dtype, np.floating) else a
        if fin.size == 0:
            out += [0.0, 0.0]
        else:
            out += [float(fin.min()), float(fin.max())]
    return out


def _build_attributes(
    dset: AfniDataset,
    data: np.ndarray,
    *,
    style: str,
    idcode: str,
    date: str,
    history: str,
    extra: Mapping[str, Any] | None,
    omit: Iterable[str],
    for_head: bool,
) -> list[tuple[str, Any]]:
    nx, ny, nz, nvals = data.shape
    view_code = {"orig": 0, "acpc": 1, "tlrc": 2}.get(dset.view, 2 if dset.space != "ORIG" else 0)
    orient, origin, delta = afni_geometry(dset.affine)
    if _is_oblique(dset.affine):
        # AFNI negates the NIfTI sform rows: reproduce its -0.0 entries the same way
        real = np.vstack([-1.0 * dset.affine[0], -1.0 * dset.affine[1], dset.affine[2]])[:3]
    else:
        real = _cardinal_ijk_to_dicom(orient, origin, delta)
    cardinal = _cardinal_ijk_to_dicom(orient, origin, delta)
    atype = _AFNI_TYPE_OF.get(data.dtype)
    if atype is None:
        raise OutputError(f"cannot write data of type {data.dtype} as an AFNI dataset")
    label_text = "\0".join(dset.labels) + "\0"
    has_stat = any(_FIRST_STAT <= c <= _LAST_STAT for c in dset.stat_codes)
    if style == "mema":
        typestring, func_type, label_name = "3DIM_GEN_FUNC", _FUNC_BUCK_TYPE, "Viggo!"
    else:
        typestring, func_type, label_name = "3DIM_HEAD_ANAT", _FUNC_BUCK_TYPE, "zyxt"
    if extra and extra.get("TYPESTRING"):
        typestring = str(extra["TYPESTRING"]).rstrip("\0")
    ts_index = _TYPESTRINGS.index(typestring) if typestring in _TYPESTRINGS else 0
    values: dict[str, Any] = {
        "HISTORY_NOTE": history if history else None,
        "TYPESTRING": typestring,
        "IDCODE_STRING": idcode,
        "IDCODE_DATE": date,
        "SCENE_DATA": _Int([view_code, func_type, ts_index, -999, -999, -999, -999, -999]),
        "LABEL_1": label_name,
        "LABEL_2": label_name,
        "DATASET_NAME": label_name,
        "ORIENT_SPECIFIC": _Int(orient),
        "ORIGIN": _Float(origin),
        "DELTA": _Float(delta),
        "IJK_TO_DICOM": _Float(cardinal.ravel().tolist()),
        "IJK_TO_DICOM_REAL": _Float(real.ravel().tolist()),
        "BRICK_STATS": _Float(_brick_stats(data)),
        "DATASET_RANK": _Int([3, nvals, 0, 0, 0, 0, 0, 0]),
        "DATASET_DIMENSIONS": _Int([nx, ny, nz, 0, 0]),
        "BRICK_TYPES": _Int([atype] * nvals),
        "BRICK_FLOAT_FACS": _Float([0.0] * nvals),
        "BRICK_LABS": label_text,
        "BRICK_KEYWORDS": "\0" * nvals,
        "BRICK_STATAUX": _Float(_stataux_values(dset.stat_codes, dset.stat_params))
        if has_stat
        else None,
        "BRICK_STATSYM": ";".join(
            stat_encode(c, p) if _FIRST_STAT <= c <= _LAST_STAT else "none"
            for c, p in zip(dset.stat_codes, dset.stat_params, strict=True)
        )
        if has_stat
        else None,
        "TEMPLATE_SPACE": dset.space,
        "INT_CMAP": _Int([0]),
    }
    order = list(_MEMA_ORDER if style == "mema" else _C_ORDER)
    if for_head:
        values["BYTEORDER_STRING"] = "LSB_FIRST"
        if style == "mema":
            order.append("BYTEORDER_STRING")
        else:  # AFNI C programs' HEAD files: BYTEORDER_STRING, then BRICK_KEYWORDS, last
            order.remove("BRICK_KEYWORDS")
            order += ["BYTEORDER_STRING", "BRICK_KEYWORDS"]
    if extra:
        for k, v in extra.items():
            if k == "TYPESTRING":
                continue
            if v is None:
                values[k] = None
                continue
            if isinstance(v, str):
                values[k] = v
            elif k in _INT_ATTRS:
                values[k] = _Int(np.atleast_1d(v).tolist())
            elif k in _FLOAT_ATTRS:
                values[k] = _Float(np.atleast_1d(v).tolist())
            else:
                values[k] = v
            if k not in order:
                order.append(k)
    drop = set(omit)
    return [(k, values[k]) for k in order if k not in drop and values.get(k) is not None]


def _m33_det(r) -> float:
    return (
        r[0][0] * r[1][1] * r[2][2]
        - r[0][0] * r[2][1] * r[1][2]
        - r[1][0] * r[0][1] * r[2][2]
        + r[1][0] * r[2][1] * r[0][2]
        + r[2][0] * r[0][1] * r[1][2]
        - r[2][0] * r[1][1] * r[0][2]
    )


def _m33_inv(r) -> list[list[float]]:
    (r11, r12, r13), (r21, r22, r23), (r31, r32, r33) = r
    deti = _m33_det(r)
    if deti != 0.0:
        deti = 1.0 / deti
    f = _f32
    return [
        [
            f(deti * (r22 * r33 - r32 * r23)),
            f(deti * (-r12 * r33 + r32 * r13)),
            f(deti * (r12 * r23 - r22 * r13)),
        ],
        [
            f(deti * (-r21 * r33 + r31 * r23)),
            f(deti * (r11 * r33 - r31 * r13)),
            f(deti * (-r11 * r23 + r21 * r13)),
        ],
        [
            f(deti * (r21 * r32 - r31 * r22)),
            f(deti * (-r11 * r32 + r31 * r12)),
            f(deti * (r11 * r22 - r21 * r12)),
        ],
    ]


def _f32(v: float) -> float:
    return float(np.float32(v))


def _m33_rownorm(a) -> float:
    return max(sum(abs(x) for x in row) for row in a)


def _m33_colnorm(a) -> float:
    return max(sum(abs(a[i][j]) for i in range(3)) for j in range(3))


def _m33_polar(a) -> list[list[float]]:
    """nifti_mat33_polar (Higham's iteration), including its signed-zero behaviour."""
    x = [list(row) for row in a]
    gam = _m33_det(x)
    while gam == 0.0:
        gam = _f32(0.00001 * (0.001 + _m33_rownorm(x)))
        for i in range(3):
            x[i][i] = _f32(x[i][i] + gam)
        gam = _m33_det(x)
    dif = 1.0
    k = 0
    while True:
        y = _m33_inv(x)
        if dif > 0.3:
            alp = _f32(np.sqrt(_m33_rownorm(x) * _m33_colnorm(x)))
            bet = _f32(np.sqrt(_m33_rownorm(y) * _m33_colnorm(y)))
            gam = _f32(np.sqrt(bet / alp))
            gmi = _f32(1.0 / gam)
        else:
            gam = gmi = 1.0
        z = [[_f32(0.5 * (gam * x[i][j] + gmi * y[j][i])) for j in range(3)] for i in range(3)]
        dif = sum(abs(z[i][j] - x[i][j]) for i in range(3) for j in range(3))
        k += 1
        if k > 100 or dif < 3.0e-6:
            break
        x = z
    return z


def _mat44_to_quatern(m: np.ndarray) -> tuple[float, float, float, float, float, float, float]:
    """nifti_mat44_to_quatern -> (qb, qc, qd, qx, qy, qz, qfac)."""
    r = [[float(m[i][j]) for j in range(3)] for i in range(3)]
    qx, qy, qz = float(m[0][3]), float(m[1][3]), float(m[2][3])
    d = [np.sqrt(sum(r[i][j] ** 2 for i in range(3))) for j in range(3)]
    for j in range(3):
        if d[j] == 0.0:
            for i in range(3):
                r[i][j] = 1.0 if i == j else 0.0
            d[j] = 1.0
    for j in range(3):
        for i in range(3):
            r[i][j] = r[i][j] / d[j]
    q = [[_f32(r[i][j]) for j in range(3)] for i in range(3)]
    p = _m33_polar(q)
    (r11, r12, r13), (r21, r22, r23), (r31, r32, r33) = p
    zd = _m33_det(p)
    if zd > 0:
        qfac = 1.0
    else:
        qfac = -1.0
        r13, r23, r33 = -r13, -r23, -r33
    a = r11 + r22 + r33 + 1.0
    if a > 0.5:
        a = 0.5 * np.sqrt(a)
        b = 0.25 * (r32 - r23) / a
        c = 0.25 * (r13 - r31) / a
        dd = 0.25 * (r21 - r12) / a
    else:
        xd = 1.0 + r11 - (r22 + r33)
        yd = 1.0 + r22 - (r11 + r33)
        zd = 1.0 + r33 - (r11 + r22)
        if xd > 1.0:
            b = 0.5 * np.sqrt(xd)
            c = 0.25 * (r12 + r21) / b
            dd = 0.25 * (r13 + r31) / b
            a = 0.25 * (r32 - r23) / b
        elif yd > 1.0:
            c = 0.5 * np.sqrt(yd)
            b = 0.25 * (r12 + r21) / c
            dd = 0.25 * (r23 + r32) / c
            a = 0.25 * (r13 - r31) / c
        else:
            dd = 0.5 * np.sqrt(zd)
            b = 0.25 * (r13 + r31) / dd
            c = 0.25 * (r23 + r32) / dd
            a = 0.25 * (r21 - r12) / dd
        if a < 0.0:
            b, c, dd = -b, -c, -dd
    return float(b), float(c), float(dd), qx, qy, qz, qfac


def _time_axis_of(dset: AfniDataset):
    """(TAXIS_NUMS, TAXIS_FLOATS) when the dataset has a time axis matching its bricks."""
    nums = dset.attributes.get("TAXIS_NUMS")
    floats = dset.attributes.get("TAXIS_FLOATS")
    if isinstance(nums, list) and len(nums) >= 3 and int(nums[0]) == dset.nvals and dset.nvals > 1:
        fl = list(floats) if isinstance(floats, list) and len(floats) >= 2 else [0.0, 1.0]
        return list(nums), fl
    return None


def _nifti_header(
    data: np.ndarray,
    dset: AfniDataset,
    esize: int,
    time_axis: bool,
    tr: float = 0.0,
    is_func: bool = True,
) -> bytes:
    import nibabel as nib

    nx, ny, nz, nvals = data.shape
    code, bitpix = _NIFTI_TYPE_OF[data.dtype]
    hdr = np.zeros((), dtype=nib.nifti1.header_dtype.newbyteorder("<"))
    hdr["sizeof_hdr"] = 348
    hdr["regular"] = b"r"
    if nvals > 1 and time_axis:
        dim = [4, nx, ny, nz, nvals, 1, 1, 1]
    elif nvals > 1:
        dim = [5, nx, ny, nz, 1, nvals, 1, 1]
    else:
        nd = 3 if nz > 1 else (2 if ny > 1 else 1)
        dim = [nd, nx, ny, nz, 1, 1, 1, 1]
    hdr["dim"] = dim
    hdr["datatype"] = code
    hdr["bitpix"] = bitpix
    # intent only for a single stat brick of a functional dataset (AFNI: ISFUNC); a caller that
    # passes an ANAT TYPESTRING gets none
    if nvals == 1 and _FIRST_STAT <= dset.stat_codes[0] <= _LAST_STAT and is_func:
        hdr["intent_code"] = dset.stat_codes[0]
        p = list(dset.stat_params[0]) + [0.0, 0.0, 0.0]
        hdr["intent_p1"], hdr["intent_p2"], hdr["intent_p3"] = p[0], p[1], p[2]
    real = _FLIP @ dset.affine if _is_oblique(dset.affine) else None
    orient, origin, delta = afni_geometry(dset.affine)
    m = (
        _cardinal_ijk_to_dicom(orient, origin, delta)
        if real is None
        else np.vstack([-1.0 * dset.affine[0], -1.0 * dset.affine[1], dset.affine[2]])[:3]
    )
    sform = np.vstack([-1.0 * m[0], -1.0 * m[1], m[2]])  # -0.0 zeros, as AFNI
    pix = np.zeros(8, dtype=np.float32)
    pix[1:4] = np.abs(np.asarray(delta, dtype=np.float32))
    qb, qc, qd, qx, qy, qz, qfac = _mat44_to_quatern(sform)
    pix[0] = qfac
    if time_axis and nvals > 1:
        pix[4] = tr
    hdr["pixdim"] = pix
    hdr["vox_offset"] = 352 + esize
    hdr["scl_slope"] = 0.0
    hdr["scl_inter"] = 0.0
    hdr["xyzt_units"] = 2 + (8 if time_axis and nvals > 1 else 0)
    space = dset.space.upper()
    xcode = 1 if space in ("ORIG", "ACPC") else 3 if space == "TLRC" else 4 if space == "MNI" else 5
    hdr["qform_code"] = xcode
    hdr["sform_code"] = xcode
    hdr["quatern_b"], hdr["quatern_c"], hdr["quatern_d"] = qb, qc, qd
    hdr["qoffset_x"], hdr["qoffset_y"], hdr["qoffset_z"] = qx, qy, qz
    hdr["srow_x"] = sform[0].astype(np.float32)
    hdr["srow_y"] = sform[1].astype(np.float32)
    hdr["srow_z"] = sform[2].astype(np.float32)
    hdr["magic"] = b"n+1"
    return hdr.tobytes()


def write_dataset(
    dset: AfniDataset,
    path: str | os.PathLike,
    *,
    history: str | None = None,
    style: str = "c",
    idcode: str | None = None,
    date: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    omit: Iterable[str] = (),
    time_axis: bool | None = None,
) -> Path:
    """Write ``dset`` as NIfTI-1 + AFNI extension (``.nii``/``.nii.gz``) or HEAD/BRIK
    (``prefix+view``, ``prefix+view.HEAD``, ...). Returns the written path (the ``.HEAD`` for
    AFNI format).

    ``history``: a new HISTORY_NOTE entry (see :func:`history_entry`) appended to
    ``dset.history`` with AFNI's literal ``\\n`` separator. ``style``: ``"c"`` (attribute order
    of AFNI's C programs) or ``"mema"`` (3dMEMA's order, ``3DIM_GEN_FUNC``, ``Viggo!``).
    ``attributes``: extra or replacement attributes (``{"INT_CMAP": 1}``; value ``None`` drops
    one); ``omit``: attribute names not to write (e.g. ``("BRICK_KEYWORDS",)``).
    ``idcode``/``date``: fixed id code and IDCODE_DATE text (byte-stable output).
    ``time_axis``: write the bricks as a time series (NIfTI dim[4], TAXIS_* in HEAD); default:
    only if the dataset came with a time axis (TAXIS_NUMS) and has more than one brick.
    """
    if style not in ("c", "mema"):
        raise ValueError(f"style must be 'c' or 'mema', not {style!r}")
    path_text = os.fspath(path)
    data = _output_dtype(np.asarray(dset.data))
    if data.ndim == 3:
        data = data[..., np.newaxis]
    if not data.flags.c_contiguous and not data.flags.f_contiguous:
        data = np.ascontiguousarray(data)
    if idcode is None:
        if _deterministic():
            h = hashlib.sha256()
            h.update(os.path.basename(path_text).encode())
            h.update("\0".join(dset.labels).encode())
            h.update(np.ascontiguousarray(data).tobytes())
            idcode = new_idcode(seed=h.digest())
        else:
            idcode = new_idcode()
    if date is None:
        date = _ctime()
    hist = dset.history or ""
    if history:
        entry = _escape_history(history)
        hist = f"{hist}\\n{entry}" if hist else entry

    taxis = _time_axis_of(dset)
    if time_axis is None:
        time_axis = taxis is not None and data.shape[3] > 1
    if time_axis and data.shape[3] > 1:
        nums, floats = taxis if taxis is not None else ([data.shape[3], 0, 77002], [0.0, 1.0, 0.0])
        extra_t = {
            "TAXIS_NUMS": _Int([data.shape[3], 0, int(nums[2]), -999, -999, -999, -999, -999]),
            "TAXIS_FLOATS": _Float(
                [float(floats[0]), float(floats[1]), 0.0, 0.0, 0.0, -999999.0, -999999.0, -999999.0]
            ),
        }
        attributes = {**extra_t, **dict(attributes or {})}
    else:
        time_axis = False

    nifti = _is_nifti(path_text)
    attrs = _build_attributes(
        dset,
        data,
        style=style,
        idcode=idcode,
        date=date,
        history=hist,
        extra=attributes,
        omit=omit,
        for_head=not nifti,
    )
    if nifti:
        final = Path(path_text)
        nx, ny, nz, nvals = data.shape
        code = _NIFTI_TYPE_OF[data.dtype][0]
        nums = [
            nx,
            ny,
            nz,
            nvals if time_axis and nvals > 1 else 1,
            1 if (time_axis or nvals == 1) else nvals,
            code,
        ]
        text = format_afni_extension(attrs, idcode=idcode, nifti_nums=nums).encode("utf-8")
        esize = 8 + len(text) + 1
        esize = (esize + 15) // 16 * 16
        ext = struct.pack("<ii", esize, 4) + text + b"\0" * (esize - 8 - len(text))
        tr = float(taxis[1][1]) if (time_axis and taxis is not None) else 0.0
        if time_axis and taxis is not None and int(taxis[0][2]) == 77001:
            tr /= 1000.0  # ms -> s
        ts = str((attributes or {}).get("TYPESTRING") or "3DIM_HEAD_FUNC").rstrip("\0")
        header = _nifti_header(data, dset, esize, time_axis, tr, is_func="FUNC" in ts)
        body = np.asarray(data, dtype=data.dtype.newbyteorder("<")).tobytes(order="F")
        payload = header + b"\x01\x00\x00\x00" + ext + body

        def writer(f):
            if final.name.endswith(".gz"):
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=f, mtime=0, compresslevel=6
                ) as gz:
                    gz.write(payload)
            else:
                f.write(payload)

        atomic.write_bytes(final, writer)
        return final

    m = _AFNI_NAME.match(path_text)
    if m:
        prefix, view = m.group("prefix"), m.group("view")
    else:
        prefix, view = path_text, dset.view if dset.view in _VIEWS else "orig"
    if view != dset.view:
        # the view in the file name must agree with SCENE_DATA[0]
        vcode = _VIEWS.index(view)
        attrs = [(k, _Int([vcode] + list(v)[1:]) if k == "SCENE_DATA" else v) for k, v in attrs]
    head = Path(f"{prefix}+{view}.HEAD")
    brik = Path(f"{prefix}+{view}.BRIK")
    head_text = format_head_text(attrs)
    body = np.asarray(data, dtype=data.dtype.newbyteorder("<")).tobytes(order="F")
    atomic.write_bytes(brik, lambda f: f.write(body))
    # a stale compressed BRIK would be found first by readers? (.BRIK is tried first) - remove
    for suf in (".BRIK.gz", ".BRIK.bz2", ".BRIK.Z"):
        stale = Path(f"{prefix}+{view}{suf}")
        if stale.exists():
            with contextlib.suppress(OSError):
                stale.unlink()
    atomic.write_bytes(head, lambda f: f.write(head_text))
    return head


def _debug_dump(dset: AfniDataset) -> str:  # pragma: no cover - developer aid
    buf = io.StringIO()
    print(repr(dset), file=buf)
    for i, (lab, c, p) in enumerate(
        zip(dset.labels, dset.stat_codes, dset.stat_params, strict=True)
    ):
        print(f"  [{i}] {lab!r} {STAT_SHORT_NAMES.get(c, c)} {p}", file=buf)
    return buf.getvalue()
