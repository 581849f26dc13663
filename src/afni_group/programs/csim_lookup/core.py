"""Cluster-size threshold from a 3dClustSim table, as ``1d_tool.py -csim_pthr P -csim_alpha A``.

Spec 06 (a). The lookup is exact: the row whose first column equals ``pthr`` as a Python float and
the column whose header alpha equals ``alpha``; the answer is the ceiling of the value *as printed*
in the table (``3.1`` → 4). There is no interpolation.

AFNI prints ``0`` and exits 0 when the lookup fails (``afni-native 1d_tool.py``, in
:mod:`.cli.csim_lookup`, imitates that for drop-in use; unreadable files and bad options go to
stderr with exit 66/65/64, where AFNI prints to stdout and exits 1); the pipeline entry point :func:`cluster_size_threshold` raises :class:`InputDataError`
instead, because a cluster-size threshold of 0 silently disables the correction.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from afni_group.errors import InputDataError, MissingInputError

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


@dataclass
class CsimLookup:
    """Outcome of a lookup: ``size`` is 0 on failure; ``messages`` are AFNI's stdout lines."""

    size: int
    ok: bool
    messages: list[str] = field(default_factory=list)
    header: ClustSimHeader | None = None
    cell: float | None = None  # the table cell as printed (before the ceiling)


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
        elif token == "-insdat":
            attrs.btype = "NONE"
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


# ---------------------------------------------------------------- whole tables (report)


@dataclass
class ClustSimTable:
    """One 3dClustSim cluster-size table (one NN and sidedness).

    Attributes
    ----------
    pthr : numpy.ndarray
        Voxelwise p values, one per row.
    alpha : numpy.ndarray
        Corrected alpha values, one per column, in the file's (descending) order.
    sizes : numpy.ndarray
        (len(pthr), len(alpha)) minimum cluster sizes in voxels (fractional).
    """

    pthr: np.ndarray
    alpha: np.ndarray
    sizes: np.ndarray


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


def parse_clustsim_niml(text: str) -> ClustSimTable:
    def attr(name: str) -> list[float]:
        m = re.search(rf'\b{name}="([^"]*)"', text)
        if not m:
            raise ValueError(f"no {name} attribute")
        return [float(v) for v in m.group(1).split(",")]

    pthr, alpha = attr("pthr"), attr("athr")
    body = re.search(r">\s*(.*?)\s*</", text, re.S)
    if not body:
        raise ValueError("no table body")
    values = np.asarray(body.group(1).split(), dtype=float)
    if values.size != len(pthr) * len(alpha):
        raise ValueError("table body does not match pthr x athr")
    return ClustSimTable(np.asarray(pthr), np.asarray(alpha), values.reshape(len(pthr), -1))


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


def lookup_cluster_size(path: str | Path, pthr: float, alpha: float) -> CsimLookup:
    """Look up the minimum cluster size exactly as ``1d_tool.py -csim_*`` does, failures included.

    Returns
    -------
    CsimLookup
        ``size`` = ``ceil`` of the table cell; on failure ``size`` = 0, ``ok`` = False and
        ``messages`` hold AFNI's ``** ...`` lines (which it prints on stdout).

    Raises
    ------
    MissingInputError, InputDataError
        For an unreadable or non-rectangular file (AFNI exits 1 in those cases).
    """
    table = read_text_table(path)
    if not is_clustsim_table(table):
        return CsimLookup(0, False, [])
    try:
        attrs = parse_clustsim_header(table.header)
    except (ValueError, IndexError):
        return CsimLookup(0, False, ["** failed to convert 3dClustSim header to object"])
    missing = attrs.missing()
    if missing:
        messages = [f"** csim obj, missing attribute {name}" for name in missing]
        return CsimLookup(0, False, messages, attrs)
    pthr, alpha = float(pthr), float(alpha)
    # Exact float equality, as list.index does in AFNI: 0.001 matches " 0.001000".
    if pthr not in table.columns[0]:
        return CsimLookup(0, False, [f"** uncorrected pthr = {pthr} not in ClustSim table"], attrs)
    if alpha not in attrs.avals:
        return CsimLookup(0, False, [f"** corrected alpha = {alpha} not in ClustSim table"], attrs)
    row = table.columns[0].index(pthr)
    col = attrs.avals.index(alpha) + 1
    try:
        cell = table.columns[col][row]
    except IndexError:
        return CsimLookup(0, False, ["** csim_clust_size: unknown index error"], attrs)
    return CsimLookup(int(math.ceil(cell)), True, [], attrs, cell)


def cluster_size_threshold(table: str | Path, pthr: float, alpha: float) -> int:
    """Minimum cluster size in voxels for voxelwise ``pthr`` and corrected ``alpha``.

    Parameters
    ----------
    table : str or Path
        A 3dClustSim ``.1D`` table, e.g. ``ClustSim.NN1_bisided.1D``.
    pthr : float
        Uncorrected voxelwise p; must be one of the table's rows exactly (e.g. 0.001).
    alpha : float
        Corrected family-wise alpha; must be one of the table's columns exactly (e.g. 0.05).

    Returns
    -------
    int
        ``ceil`` of the table value as printed (``3.1`` → 4).

    Raises
    ------
    InputDataError
        When the lookup fails (AFNI would print 0); the message says why and what to change.
    MissingInputError
        When the table does not exist.
    """
    result = lookup_cluster_size(table, pthr, alpha)
    if result.ok:
        return result.size
    if result.messages:
        why = "; ".join(m.lstrip("* ") for m in result.messages)
    else:
        why = "not a 3dClustSim table (first line must start with '# 3dClustSim ')"
    raise InputDataError(
        f"cluster-size lookup failed in {table} (pthr={pthr}, alpha={alpha}): {why}; "
        "use a pthr/alpha that the table lists or re-run 3dClustSim with them"
    )


def format_attribute_block(
    attrs: ClustSimHeader | None, pthr: float, alpha: float, size: int
) -> str:
    """The ``ClustSim attributes:`` block that ``1d_tool.py -verb 1`` prints (06 a.3)."""
    attrs = attrs or ClustSimHeader()
    nn = f"NN-{attrs.NN}" if attrs.NN is not None else "None"
    bvals = ", ".join(str(v) for v in attrs.bvals) if attrs.bvals is not None else "None"
    rows = [
        ("neighbors", nn),
        ("sidedness", attrs.sided),
        ("blur est type", attrs.btype),
        ("blur params", bvals),
        ("grid voxels", attrs.grid_nvox),
        ("grid vox size", attrs.grid_vsize),
        ("mask", attrs.mask),
        ("mask N voxels", attrs.mask_nvox),
    ]
    lines = ["", "ClustSim attributes:"]
    lines += [f"    {name:<15s}: {value}" for name, value in rows]
    lines.append("")
    lines += [f"    {'pthr':<15s}: {pthr}", f"    {'alpha':<15s}: {alpha}"]
    lines.append(f"    {'min clust nvox':<15s}: {size}")
    return "\n".join(lines) + "\n"
