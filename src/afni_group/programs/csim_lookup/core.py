"""Cluster-size threshold from a 3dClustSim table, as ``1d_tool.py -csim_pthr P -csim_alpha A``.

Spec 06 (a). The lookup is exact: the row whose first column equals ``pthr`` as a Python float and
the column whose header alpha equals ``alpha``; the answer is the ceiling of the value *as printed*
in the table (``3.1`` → 4). There is no interpolation.

AFNI prints ``0`` and exits 0 when the lookup fails (``afni-native 1d_tool.py``, in
:mod:`.cli.csim_lookup`, imitates that for drop-in use; unreadable files and bad options go to
stderr with exit 66/65/64, where AFNI prints to stdout and exits 1); the pipeline entry point
:func:`cluster_size_threshold` raises :class:`InputDataError` instead, because a cluster-size
threshold of 0 silently disables the correction. The table is read by
:mod:`afni_group.programs.clustsim.formats` (the one reader of 3dClustSim's files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from afni_group.errors import InputDataError
from afni_group.programs.clustsim.formats import (
    ClustSimHeader,
    is_clustsim_table,
    parse_clustsim_header,
    read_text_table,
)


@dataclass
class CsimLookup:
    """Outcome of a lookup: ``size`` is 0 on failure; ``messages`` are AFNI's stdout lines."""

    size: int
    ok: bool
    messages: list[str] = field(default_factory=list)
    header: ClustSimHeader | None = None
    cell: float | None = None  # the table cell as printed (before the ceiling)


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
