"""Engine parity, the ClustSim half: the checks' record (:class:`Check`) and the comparison of
two runs' ClustSim tables (the mean ACF handed to 3dClustSim, and the table cells within
Monte-Carlo error). :mod:`afni_group.parity` runs these with the other checks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from afni_group.plan import CLUSTSIM_PREFIX
from afni_group.programs.checks import NEIGHBOURHOODS, SIDEDNESS
from afni_group.programs.clustsim.core import ClustSimTable
from afni_group.programs.clustsim.formats import (
    clustsim_table_name,
    parse_clustsim_1d,
    parse_niml_attributes,
    read_text_table,
)

PASS, FAIL, SKIP, INFO = "PASS", "FAIL", "SKIP", "INFO"

#: ClustSim cells: largest allowed |z| of the exceedance-probability difference.
DEFAULT_Z_MAX = 5.0
#: ClustSim cells: largest allowed fraction of cells with |z| > 3 (0.27 % expected by chance).
MAX_FRACTION_OVER_3 = 0.01


@dataclass
class Check:
    """One comparison: a name, PASS/FAIL/SKIP/INFO, one line of detail and the figures."""

    name: str
    status: str
    detail: str
    values: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.status} {self.name}: {self.detail}"


# ----------------------------------------------------------------------------------------------
# ACF and 3dClustSim
# ----------------------------------------------------------------------------------------------


def clustsim_command(table_1d: Path) -> str:
    """The 3dClustSim command line a .1D table records in its first line."""
    return read_text_table(table_1d).header[0].lstrip("#").strip()


def acf_of(command: str) -> list[str] | None:
    """The three ``-acf`` numbers of a 3dClustSim command line, as written."""
    match = re.search(r"-acf\s+(\S+)\s+(\S+)\s+(\S+)", command)
    return list(match.groups()) if match else None


def compare_acf(native: Path, afni: Path, name: str) -> Check:
    """Mean ACF handed to 3dClustSim: the same three numbers, digit for digit."""
    cmd_a, cmd_b = clustsim_command(native), clustsim_command(afni)
    acf_a, acf_b = acf_of(cmd_a), acf_of(cmd_b)
    values = {"native": acf_a, "afni": acf_b, "same_command": cmd_a == cmd_b}
    if acf_a is None or acf_a != acf_b:
        return Check(name, FAIL, f"ACF differs: {acf_a} vs {acf_b}", values)
    same = "identical 3dClustSim command" if cmd_a == cmd_b else "3dClustSim commands differ"
    return Check(name, PASS, f"identical: {' '.join(acf_a)} ({same})", values)


def read_table(path: Path) -> ClustSimTable:
    """A 3dClustSim .1D table as printed (pthr rows, alpha columns, sizes)."""
    try:
        return parse_clustsim_1d(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not a 3dClustSim table ({err})") from err


def iterations_of(niml: Path, default: int = 10000) -> int:
    """Number of simulated volumes behind a table (the ``iter`` of its .niml twin)."""
    if niml.is_file():
        iterations = parse_niml_attributes(niml.read_text()).get("iter", "")
        if iterations.isdigit():
            return int(iterations)
    return default


def alpha_interval(value: float, alphas: np.ndarray, sizes: np.ndarray) -> tuple[float, float]:
    """The alpha range at which one table row reaches cluster size ``value``.

    Sizes grow as alpha falls. Between columns, log(alpha) is interpolated linearly in
    log(size); a value equal to several columns (flat row) maps to their whole range; beyond
    the table the two outermost distinct columns are extrapolated.
    """
    order = np.argsort(-alphas)  # alpha descending = size ascending
    al, sz = alphas[order], sizes[order]
    equal = np.isclose(sz, value, rtol=0, atol=1e-9)
    if equal.any():
        return float(al[equal].min()), float(al[equal].max())
    uniq_sz, idx = np.unique(sz, return_index=True)
    uniq_al = al[idx]
    if len(uniq_sz) < 2:
        return (0.0, 1.0)  # a constant row says nothing about other sizes
    ls, la = np.log(np.maximum(uniq_sz, 1e-9)), np.log(uniq_al)
    lv = math.log(max(value, 1e-9))
    if lv < ls[0]:
        j = (0, 1)
    elif lv > ls[-1]:
        j = (-2, -1)
    else:
        a = float(np.exp(np.interp(lv, ls, la)))
        return a, a
    slope = (la[j[1]] - la[j[0]]) / (ls[j[1]] - ls[j[0]])
    a = float(np.clip(np.exp(la[j[0]] + slope * (lv - ls[j[0]])), 1e-9, 1.0))
    return a, a


def _distance(alpha: float, interval: tuple[float, float]) -> float:
    lo, hi = interval
    return 0.0 if lo <= alpha <= hi else (lo - alpha if alpha < lo else hi - alpha)


def clustsim_z(
    alphas: np.ndarray, sizes_a: np.ndarray, sizes_b: np.ndarray, n_a: int, n_b: int
) -> np.ndarray:
    """z of each cell: how far apart two independent tables are in exceedance probability.

    For cell (p, alpha), table A's size is placed on table B's row (and B's on A's) to read
    the alpha at which the other table reaches it; the mean of the two alpha shifts, divided by
    the binomial standard error sqrt(alpha (1 - alpha) (1/n_a + 1/n_b)), is the cell's z.
    """
    z = np.zeros(sizes_a.shape)
    for i in range(sizes_a.shape[0]):
        for j, alpha in enumerate(alphas):
            d1 = _distance(alpha, alpha_interval(sizes_a[i, j], alphas, sizes_b[i]))
            d2 = _distance(alpha, alpha_interval(sizes_b[i, j], alphas, sizes_a[i]))
            se = math.sqrt(alpha * (1 - alpha) * (1 / n_a + 1 / n_b))
            z[i, j] = (d1 - d2) / 2 / se
    return z


def compare_clustsim(
    native_dir: Path,
    afni_dir: Path,
    name: str,
    z_max: float = DEFAULT_Z_MAX,
    prefix: str = CLUSTSIM_PREFIX,
    iterations: int = 10000,
) -> Check:
    """All 9 tables (``prefix.NN*``): same rows and columns, cells within Monte-Carlo error.

    FAIL when a cell's |z| exceeds ``z_max`` or more than 1 % of the cells exceed 3 (a shift
    shared by many cells: a bias rather than noise). The values also hold each table's signed
    mean relative difference (native - afni) / afni, in percent, and whether every cell is
    identical. ``iterations`` counts where a table has no .niml twin.
    """
    worst: dict[str, float] = {}
    shift: dict[str, float] = {}
    over3 = cells = same = 0
    for nn in NEIGHBOURHOODS:
        for sided in SIDEDNESS:
            one_d = clustsim_table_name(prefix, nn, sided, "1D")
            niml = clustsim_table_name(prefix, nn, sided, "niml")
            stem = one_d.removesuffix(".1D")
            ta = read_table(native_dir / one_d)
            tb = read_table(afni_dir / one_d)
            pa, aa, sa = ta.pthr, ta.athr, ta.sizes
            pb, ab, sb = tb.pthr, tb.athr, tb.sizes
            if not (np.array_equal(pa, pb) and np.array_equal(aa, ab)):
                return Check(name, FAIL, f"{one_d}: different pthr rows or alpha columns")
            n_a = iterations_of(native_dir / niml, iterations)
            n_b = iterations_of(afni_dir / niml, iterations)
            same += int(np.array_equal(sa, sb))
            z = np.abs(clustsim_z(aa, sa, sb, n_a, n_b))
            worst[stem] = round(float(z.max()), 3)
            shift[stem] = round(float(np.mean(sa[sb > 0] / sb[sb > 0] - 1) * 100), 2)
            over3 += int(np.count_nonzero(z > 3))
            cells += z.size
    top = max(worst, key=worst.get)
    values = {
        "max_abs_z": worst,
        "mean_rel_diff_percent": shift,
        "cells": cells,
        "cells_over_3": over3,
        "z_max": z_max,
        "max_fraction_over_3": MAX_FRACTION_OVER_3,
        "identical": same == len(worst),
    }
    ok = worst[top] <= z_max and over3 <= MAX_FRACTION_OVER_3 * cells
    mean_shift = float(np.mean(list(shift.values())))
    if values["identical"]:
        return Check(name, PASS, f"{len(worst)} tables, {cells} cells: identical", values)
    return Check(
        name,
        PASS if ok else FAIL,
        f"{len(worst)} tables, {cells} cells: max |z| {worst[top]:.2f} ({top}), "
        f"{over3} cells over 3 (limits {z_max:g}, {MAX_FRACTION_OVER_3:.0%}); "
        f"native - afni {mean_shift:+.1f} % on average",
        values,
    )
