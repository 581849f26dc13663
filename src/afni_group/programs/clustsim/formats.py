"""AFNI's 3dClustSim text formats, byte for byte, both directions (spec 05 §6, 06 a).

Writers (numbers in, ``str`` out; :mod:`.files` writes the files): the ``.1D`` and ``.niml``
tables, ``PREFIX.mask`` and the ``3dClustSim.cmd`` fragment, plus AFNI's command-line echo.

Readers: the ``.1D`` table as ``1d_tool.py`` reads it (:func:`parse_text_table`,
:func:`parse_clustsim_header`), and whole tables (:func:`parse_clustsim_1d`,
:func:`parse_clustsim_niml`, :func:`read_clustsim_table`) as a :class:`~.core.ClustSimTable`.

The table file names ``PREFIX.NNk_SIDED.{1D,niml}``: :func:`clustsim_table_name` builds them,
:func:`parse_clustsim_table_name` takes them apart.
"""

from __future__ import annotations

import base64
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from afni_group.afni_io.ids import new_idcode
from afni_group.errors import InputDataError, MissingInputError
from afni_group.programs.checks import NEIGHBOURHOODS, SIDEDNESS
from afni_group.programs.clustsim.core import ClustSimTable

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
        for nn in NEIGHBOURHOODS:
            key, name = (
                clustsim_table_key(nn, sided),
                clustsim_table_name(prefix_text, nn, sided, "niml"),
            )
            parts.append(f"-atrstring AFNI_CLUSTSIM_{key} file:{name} ")
            if first and with_mask:
                parts.append(f"-atrstring AFNI_CLUSTSIM_MASK file:{prefix_text}.mask ")
            first = False
    return "".join(parts) + "\n"


# ---------------------------------------------------------------- readers (1d_tool.py, whole tables)

#: Attributes a ClustSim header must provide for a lookup (``csim_has_all_attrs``), in order.
REQUIRED_ATTRIBUTES = (
    "command",
    "btype",
    "bvals",
    "sided",
    "grid_nvox",
    "grid_vsize",
    "mask",
    "mask_nvox",
    "NN",
    "avals",
)


@dataclass
class TextTable:
    """A 1D text file split as AFNI's ``lib_textdata.read_data_file`` does.

    ``columns[c][r]`` is row ``r`` of column ``c`` (column-major, like AFNI's ``mat``).
    """

    header: list[str]
    columns: list[list[float]]


@dataclass
class ClustSimHeader:
    """What ``1d_tool.py`` reads from a 3dClustSim table header (06 a.2 step 3)."""

    command: str | None = None
    btype: str | None = None
    bvals: list[float] | None = None
    sided: str | None = None
    grid_nvox: str | None = None
    grid_vsize: str | None = None
    mask: str | None = None
    mask_nvox: int | None = None
    NN: int | None = None
    avals: list[float] | None = None

    def missing(self) -> list[str]:
        """Names of the required attributes that the header did not provide."""
        return [name for name in REQUIRED_ATTRIBUTES if getattr(self, name) is None]


def read_text_table(path: str | Path) -> TextTable:
    """Read a ``#``-commented numeric text file into header lines and columns.

    Raises
    ------
    MissingInputError
        If the file cannot be read.
    InputDataError
        If a value is not a number or the rows are not all the same length
        (AFNI: ``** data is not rectangular in F``).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise MissingInputError(f"cannot read ClustSim table {path}: {err.strerror}") from err
    except UnicodeDecodeError:
        raise InputDataError(f"** {path} is not a text table (binary data)") from None
    return parse_text_table(text, path)


def parse_text_table(text: str, source: str | Path = "<text>") -> TextTable:
    """:func:`read_text_table` on text already read (``source`` names it in messages)."""
    header: list[str] = []
    rows: list[list[float]] = []
    for line in text.splitlines():  # splitlines also drops the \r of CRLF files
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if not _is_label_comment(stripped):
                header.append(stripped)
            continue
        try:
            rows.append([float(token) for token in stripped.split()])
        except ValueError as err:
            raise InputDataError(f"** non-numeric data in {source}: {stripped!r}") from err
    if rows and any(len(row) != len(rows[0]) for row in rows):
        raise InputDataError(f"** data is not rectangular in {source}")
    columns = [list(col) for col in zip(*rows, strict=True)] if rows else []
    return TextTable(header=header, columns=columns)


def _is_label_comment(line: str) -> bool:
    """``# LABEL = "DATA"`` lines are attributes in AFNI's reader, not header text."""
    tokens = line.split()
    if len(tokens) < 4 or tokens[2] != "=":
        return False
    data = line.split("=", 1)[1].strip()
    return len(data) >= 2 and data[0] == data[-1] and data[0] in "\"'"


def is_clustsim_table(table: TextTable) -> bool:
    """True when the first header line starts with ``# 3dClustSim `` and there are ≥ 2 columns."""
    return (
        bool(table.header)
        and table.header[0].startswith("# 3dClustSim ")
        and len(table.columns) >= 2
    )


def parse_clustsim_header(header: list[str]) -> ClustSimHeader:
    """Fill the ClustSim attributes from the header lines.

    Raises
    ------
    ValueError
        When a value cannot be converted (e.g. ``-fwhm 6 -iter 2000``: ``-iter`` is read as one
        of the up to 3 FWHM values, as AFNI does).
    """
    attrs = ClustSimHeader()
    attrs.command = header[0][2:]
    tokens = attrs.command.split()
    for pos, token in enumerate(tokens):
        following = tokens[pos + 1 :]
        if token == "-acf":
            attrs.btype = "ACF"
            attrs.bvals = [float(v) for v in following[:3]]
            if len(attrs.bvals) != 3:
                raise ValueError("-acf needs 3 values")
        elif token == "-fwhm":
            attrs.btype = "FWHM"
            attrs.bvals = [float(v) for v in following[:3]]
        elif token == "-fwhmxyz":
            attrs.btype = "acf"
            attrs.bvals = [float(following[0])] * 3
        elif token == "-insdat":  # 3dttest++ -Clustsim's tables: no blur model
            attrs.btype = "NONE"
            attrs.bvals = []
            if attrs.mask is None and following:
                attrs.mask = following[0]
        elif token == "-mask" and following:
            attrs.mask = following[0]
    for line in header[1:]:
        words = line.split()
        if "thresholding" in line and attrs.sided is None:
            attrs.sided = words[1]
        elif line.startswith("# Grid: "):
            attrs.grid_nvox = words[2]
            attrs.grid_vsize = f"{words[3]} {words[4]}"
            attrs.mask_nvox = int(line.split("(", 1)[1].split()[0])
        elif line.startswith("# -NN "):
            attrs.NN = int(words[2])
        elif line.startswith("#  pthr "):
            attrs.avals = [float(v) for v in words[3:]]
    return attrs


def parse_clustsim_1d(text: str) -> ClustSimTable:
    """The whole table of a ``ClustSim.NN?_*.1D`` text (values as printed, 1 decimal): rows from
    :func:`parse_text_table`, alphas from the ``#  pthr |`` header line
    (:func:`parse_clustsim_header`). ``ValueError`` when it is not such a table."""
    try:
        table = parse_text_table(text)
        alphas = parse_clustsim_header(table.header).avals if table.header else None
    except (InputDataError, ValueError, IndexError) as err:
        raise ValueError(str(err)) from err
    if alphas is None or not table.columns:
        raise ValueError("no 'pthr | alpha' header or no table rows")
    if len(table.columns) != len(alphas) + 1:
        raise ValueError("row length does not match the alpha header")
    columns = np.asarray(table.columns, dtype=float)
    return ClustSimTable(columns[0], np.asarray(alphas, dtype=float), columns[1:].T)


def parse_niml_attributes(text: str) -> dict[str, str]:
    """The ``name="value"`` attributes of a ``.niml`` table's element header, as written."""
    head = text.split(">", 1)[0]
    return dict(re.findall(r'\b(\w+)="([^"]*)"', head))


def parse_clustsim_niml(text: str) -> ClustSimTable:
    """The whole table of a ``PREFIX.NNk_SIDED.niml`` text (values unrounded, ``%.7g``), with its
    ``iter`` count; ``n@v`` runs in the ``pthr``/``athr`` lists are expanded, as AFNI's NIML
    reader does. ``ValueError`` when it is not such a table."""
    attrs = parse_niml_attributes(text)

    def numbers(name: str) -> list[float]:
        if name not in attrs:
            raise ValueError(f"no {name} attribute")
        values: list[float] = []
        for item in attrs[name].split(","):
            count, _, value = item.rpartition("@")
            values += [float(value)] * (int(count) if count else 1)
        return values

    pthr, alpha = numbers("pthr"), numbers("athr")
    body = re.search(r">\s*(.*?)\s*</", text, re.S)
    if not body:
        raise ValueError("no table body")
    values = np.asarray(body.group(1).split(), dtype=float)
    if values.size != len(pthr) * len(alpha):
        raise ValueError("table body does not match pthr x athr")
    iterations = attrs.get("iter", "")
    return ClustSimTable(
        np.asarray(pthr),
        np.asarray(alpha),
        values.reshape(len(pthr), -1),
        int(iterations) if iterations.isdigit() else None,
    )


def read_clustsim_table(path: str | Path) -> ClustSimTable:
    """Read a 3dClustSim table, preferring the unrounded ``.niml`` twin of a ``.1D`` file.

    Parameters
    ----------
    path : str or Path
        ``ClustSim.NN?_*.1D`` or ``.niml``.

    Returns
    -------
    ClustSimTable

    Raises
    ------
    MissingInputError, InputDataError
    """
    path = Path(path)
    niml = path.with_suffix(".niml")
    candidates = [niml, path] if path.suffix == ".1D" else [path]
    for candidate in candidates:
        if not candidate.exists():
            continue
        text = candidate.read_text(errors="replace")
        try:
            if candidate.suffix == ".niml":
                return parse_clustsim_niml(text)
            return parse_clustsim_1d(text)
        except ValueError as err:
            raise InputDataError(f"{candidate}: not a 3dClustSim table ({err})") from err
    raise MissingInputError(f"ClustSim table {path} not found")


# ---------------------------------------------------------------- table file names


def clustsim_table_key(nn: int, sided: str) -> str:
    """``NNk_SIDED``: a table's name inside 3dClustSim's outputs (file names, attributes)."""
    return f"NN{nn}_{sided}"


def clustsim_table_name(prefix: str, nn: int, sided: str, ext: str = "1D") -> str:
    """``PREFIX.NNk_SIDED.EXT``: the file 3dClustSim writes one table to (EXT ``1D``/``niml``)."""
    return f"{prefix}.{clustsim_table_key(nn, sided)}.{ext}"


_TABLE_NAME = re.compile(
    rf"^(?P<prefix>.*)\.NN(?P<nn>[{''.join(map(str, NEIGHBOURHOODS))}])"
    rf"_(?P<sided>{'|'.join(SIDEDNESS)})\.(?P<ext>1D|niml)$"
)


@dataclass(frozen=True)
class TableName:
    """The parts of a table file name (:func:`parse_clustsim_table_name`)."""

    prefix: str
    nn: int
    sided: str
    ext: str


def parse_clustsim_table_name(name: str | Path) -> TableName | None:
    """The parts of ``PREFIX.NNk_SIDED.{1D,niml}`` (file name only), or None for other names."""
    m = _TABLE_NAME.match(Path(name).name)
    if m is None:
        return None
    return TableName(m.group("prefix"), int(m.group("nn")), m.group("sided"), m.group("ext"))
