"""AFNI's 3dClustSim text formats, byte for byte (spec 05 §6): ``.1D`` and ``.niml`` tables,
``PREFIX.mask`` and the ``3dClustSim.cmd`` fragment, plus AFNI's command-line echo.

Pure text: numbers in, ``str`` out (:mod:`clustsim` writes the files).
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from afni_group.afni_io.ids import new_idcode
from afni_group.programs.clustsim.core import SIDEDNESS

SIDED_TEXT = {"1sided": "1-sided", "2sided": "2-sided", "bisided": "bi-sided"}
#: characters AFNI's THD_filename_ok rejects (plus control, blanks and bytes >= 128)
_BAD_NAME_CHARS = set(";*?&|\"><'[](){}!")


def _prob6(x: float) -> str:
    if np.float32(x) >= np.float32(0.0001):
        return ("%7.5f" % x)[1:]
    dec = int(0.9999 - math.log10(x))
    return ("%4.1fe-%1d" % (x * 10**dec, dec))[1:]


def _prob9(x: float) -> str:
    if np.float32(x) >= np.float32(0.0001):
        return "%9.6f" % x
    dec = int(0.9999 - math.log10(x))
    return "%6.3fe-%1d" % (x * 10**dec, dec)


def _cell(value: float, nodec: bool) -> str:
    if nodec:
        return "%7d" % int(value)
    return ("%7.1f" if value <= 9999.9 else "%7.0f") % value


def quote_command_line(argv: Sequence[str]) -> str:
    """AFNI's command-line echo: ``3dClustSim`` + args, quoting ones with forbidden characters."""
    words = ["3dClustSim"]
    for arg in argv:
        if not arg:
            continue
        if filename_ok(arg):
            words.append(arg)
        else:
            clean = "".join(" " if (ord(ch) < 33 or ord(ch) >= 127) else ch for ch in arg)
            words.append(f"'{clean}'")
    return " ".join(words)


def filename_ok(name: str) -> bool:
    """AFNI's ``THD_filename_ok``: no control, blank, high-bit or shell-special characters."""
    return bool(name) and all(33 <= ord(ch) < 127 and ch not in _BAD_NAME_CHARS for ch in name)


@dataclass
class TableInfo:
    """What the table headers need to say."""

    command_line: str
    shape: tuple[int, int, int]
    voxel_sizes: tuple[float, float, float]
    mask_count: int
    iterations: int
    pthr: tuple[float, ...]
    athr: tuple[float, ...]
    nodec: bool = False
    mask_idcode: str | None = None
    mask_name: str | None = None
    extra: dict = field(default_factory=dict)


def format_1d_table(table: np.ndarray, nn: int, sided: str, info: TableInfo) -> str:
    """The ``PREFIX.NNk_SIDED.1D`` text."""
    nx, ny, nz = info.shape
    dx, dy, dz = info.voxel_sizes
    in_mask = " in mask" if info.mask_count < nx * ny * nz else ""
    lines = [
        f"# {info.command_line}",
        f"# {SIDED_TEXT[sided]} thresholding",
        f"# Grid: {nx}x{ny}x{nz} {dx:.2f}x{dy:.2f}x{dz:.2f} mm^3 "
        f"({info.mask_count} voxels{in_mask})",
        "#",
        "# CLUSTER SIZE THRESHOLD(pthr,alpha) in Voxels",
        f"# -NN {nn}  | alpha = Prob(Cluster >= given size)",
        "#  pthr  |" + "".join(" " + _prob6(a) for a in info.athr),
        "# ------ |" + " ------" * len(info.athr),
    ]
    for p, row in zip(info.pthr, table, strict=True):
        lines.append(_prob9(p) + " " + "".join(_cell(float(v), info.nodec) for v in row))
    return "\n".join(lines) + "\n"


def _niml_escape(text: str) -> str:
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&apos;"),
                 ("\r", "&#x0d;"), ("\n", "&#x0a;")):  # fmt: skip
        text = text.replace(a, b)
    return text


def _niml_number(x: float) -> str:
    v = float(np.float32(x))
    if v == int(v):
        return "%d" % int(v)
    return ("%12.6g" % v).strip()


def _niml_list(values: Sequence[float]) -> str:
    out: list[str] = []
    items = [_niml_number(v) for v in values]
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[i]:
            j += 1
        n = j - i + 1
        out.append(f"{n}@{items[i]}" if n > 1 else items[i])
        i = j + 1
    return ",".join(out)


def format_niml_table(table: np.ndarray, nn: int, sided: str, info: TableInfo) -> str:
    """The ``PREFIX.NNk_SIDED.niml`` text."""
    n_a = len(info.athr)
    nx, ny, nz = info.shape
    dx, dy, dz = info.voxel_sizes
    attrs = [
        ("ni_type", f"{n_a}*float" if n_a > 1 else "float"),
        ("ni_dimen", str(len(info.pthr))),
        ("commandline", info.command_line),
        ("thresholding", SIDED_TEXT[sided]),
        ("nxyz", f"{nx},{ny},{nz}"),
        ("dxyz", f"{dx:.3f},{dy:.3f},{dz:.3f}"),
        ("fwhmxyz", "0.00,0.00,0.00"),
        ("iter", str(info.iterations)),
        ("pthr", _niml_list(info.pthr)),
        ("athr", _niml_list(info.athr)),
    ]
    if info.mask_name is not None:
        attrs += [
            ("mask_dset_idcode", info.mask_idcode or new_idcode("XYZ")),
            ("mask_dset_name", info.mask_name),
            ("mask_count", str(info.mask_count)),
        ]
    text = f"<3dClustSim_NN{nn}"
    text += "".join(f'\n  {k}="{_niml_escape(v)}"' for k, v in attrs) + " >\n"
    for row in table:
        text += "".join(" " + ("%14.7g" % float(np.float32(v))).strip() for v in row) + "\n"
    return text + f"</3dClustSim_NN{nn}>\n\n"


def encode_mask(mask: np.ndarray) -> str:
    """AFNI's ``PREFIX.mask`` text: bit-packed (i fastest), zlib level 9, base64, ``===nvox``."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    packed = np.packbits(flat, bitorder="little").tobytes()
    b64 = base64.b64encode(zlib.compress(packed, 9)).decode("ascii")
    lines = [b64[i : i + 72] for i in range(0, len(b64), 72)]
    return "\n".join(lines) + f"==={flat.size}\n"


def decode_mask(text: str, shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`encode_mask` (for tests and for reading AFNI's files)."""
    body, _, nvox = text.strip().rpartition("===")
    packed = zlib.decompress(base64.b64decode("".join(body.split())))
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), bitorder="little")
    return bits[: int(nvox)].astype(bool).reshape(tuple(shape), order="F")


def format_cmd(prefix_text: str, with_mask: bool = True, niml: bool = True) -> str:
    """The ``3dClustSim.cmd`` line (3drefit fragment), with its trailing blank."""
    parts = ["3drefit "]
    first = True
    for sided in SIDEDNESS:
        for nn in (1, 2, 3):
            name = f"NN{nn}_{sided}"
            parts.append(f"-atrstring AFNI_CLUSTSIM_{name} file:{prefix_text}.{name}.niml ")
            if first and with_mask:
                parts.append(f"-atrstring AFNI_CLUSTSIM_MASK file:{prefix_text}.mask ")
            first = False
    return "".join(parts) + "\n"
