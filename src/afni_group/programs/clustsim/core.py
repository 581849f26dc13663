"""3dClustSim's cluster-size tables on arrays: how they are built, read and used.

The one home of the table maths (spec 05 §5.2), for simulated tables (:mod:`.simulate` runs
the Monte Carlo and returns :class:`ClustSimTables`) and for tables read from AFNI's files
(:mod:`.formats` returns a :class:`ClustSimTable`):

* building: per (sidedness, NN, p) the largest cluster of every iteration gives the tail curve
  ``alpha[s] = P(max >= s)``; the size for a target alpha is interpolated in the Gumbel
  coordinate ``log(-log(1-alpha))``, then the table is made monotone as AFNI does;
* using: the corrected alpha of a cluster of a given size (:func:`corrected_alpha`) is the same
  interpolation read the other way, along one row of a table.

Monte-Carlo error (beyond AFNI): a table cell is the (1 - alpha) quantile of the largest cluster
size estimated from N iterations. The number of iterations above it is Binomial(N, alpha), so
the distribution-free 95 % interval of the quantile is the same interpolation at
``alpha ± 1.96·sqrt(alpha(1-alpha)/N)``; the standard error is the interval's half width / 1.96.
A threshold is "stable" when ``size ± 1.96·se`` rounds up (as 1d_tool.py does) to one integer.

Bad values raise :class:`ValueError`; nothing is read or written here (files: :mod:`.files`,
text: :mod:`.formats`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from afni_group.programs.checks import SIDEDNESS, check_nn, check_sided

# --------------------------------------------------------------------------------------------
# constants (spec 05 §1)

DEFAULT_PTHR = (0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001)
DEFAULT_ATHR = (0.10, 0.05, 0.02, 0.01)
LOTS_PTHR = (
    0.10, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02, 0.015, 0.01, 0.007, 0.005, 0.003,
    0.002, 0.0015, 0.001, 0.0007, 0.0005, 0.0003, 0.0002, 0.00015, 0.0001, 0.00007, 0.00005,
    0.00003, 0.00002, 0.000015, 0.00001,
)  # fmt: skip
LOTS_ATHR = (0.10, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01)

MAX_CLUSTER = 99999
#: two-sided 95 % normal quantile, for the Monte-Carlo interval
Z95 = 1.959963984540054


# --------------------------------------------------------------------------------------------
# tables (spec 05 §5.2)


def tail_probabilities(max_sizes: np.ndarray, iterations: int) -> np.ndarray:
    """``alpha[s] = P(max cluster >= s)`` for s = 0..itop+1 (index 0 unused, last is 0)."""
    sizes = np.minimum(np.asarray(max_sizes, dtype=np.int64), MAX_CLUSTER)
    counts = np.bincount(sizes, minlength=2)
    positive = np.flatnonzero(counts[1:]) + 1
    itop = int(positive[-1]) if positive.size else 1
    alpha = np.zeros(itop + 2, dtype=np.float64)
    alpha[1 : itop + 1] = counts[1 : itop + 1] / float(iterations)
    # running sum from the top, sequential (cumsum), in the same order as AFNI
    alpha[1 : itop + 1] = np.cumsum(alpha[itop:0:-1])[::-1]
    return alpha


def _gumbel(x: float) -> float:
    return math.log(-math.log(1.0 - x))


def cluster_size_for_alpha(
    alpha_curve: np.ndarray, target: float, iterations: int
) -> tuple[np.float32, bool]:
    """Interpolated cluster size where the tail probability crosses ``target``.

    Returns the float32 size and whether ``target`` exceeded the largest simulated alpha
    (AFNI then prints a warning and uses size 1).
    """
    itop = alpha_curve.size - 2
    too_rare = target > alpha_curve[1]
    # AFNI's bracket (the first s in 1..itop-1 with alpha[s] >= A >= alpha[s+1], else itop) is,
    # alpha being non-increasing, the number of sizes with alpha > A, within 1..itop
    above = int(np.count_nonzero(alpha_curve[1 : itop + 1] > target))
    s = 1 if too_rare else min(max(above, 1), itop)
    lo, hi = alpha_curve[s], alpha_curve[s + 1]
    if lo >= 1:
        lo = 1.0 - 0.1 / iterations
    if hi <= 0:
        hi = 0.1 / iterations
    if hi >= lo:
        hi = 0.1 * lo
    size = s + (_gumbel(target) - _gumbel(lo)) / (_gumbel(hi) - _gumbel(lo))
    return np.float32(max(size, 1.0)), bool(too_rare)


def monotone_table(table: np.ndarray) -> np.ndarray:
    """AFNI's fix-ups: non-increasing down each alpha column, non-decreasing along each p row."""
    t = np.array(table, dtype=np.float32, copy=True)
    n_p, n_a = t.shape
    for j in range(n_a):
        for i in range(n_p - 2, -1, -1):
            if t[i, j] < t[i + 1, j]:
                t[i, j] = t[i + 1, j]
    for i in range(n_p):
        for j in range(1, n_a):
            if t[i, j] < t[i, j - 1]:
                t[i, j] = t[i, j - 1]
    return t


@dataclass
class AlphaWarning:
    pthr: float
    alpha: float
    max_alpha: float


def cluster_table(
    max_sizes: np.ndarray,
    athr: Sequence[float],
    iterations: int,
    nodec: bool = False,
    warnings: list[AlphaWarning] | None = None,
    pthr: Sequence[float] | None = None,
) -> np.ndarray:
    """Cluster-size table (n_p, n_alpha) from per-iteration maxima of shape (iterations, n_p)."""
    max_sizes = np.asarray(max_sizes)
    n_p = max_sizes.shape[1]
    table = np.zeros((n_p, len(athr)), dtype=np.float32)
    for i in range(n_p):
        curve = tail_probabilities(max_sizes[:, i], iterations)
        for j, a in enumerate(athr):
            size, too_rare = cluster_size_for_alpha(curve, float(a), iterations)
            if too_rare and warnings is not None:
                warnings.append(AlphaWarning(pthr[i] if pthr else float("nan"), a, curve[1]))
            if nodec:
                size = np.float32(int(size + np.float32(0.951)))
            table[i, j] = size
    return monotone_table(table)


# --------------------------------------------------------------------------------------------
# Monte-Carlo error of a cell


def ceil_threshold(size: float) -> int:
    """The whole-voxel threshold 1d_tool.py takes from a cell: the ceiling of its ``%.1f`` text."""
    return math.ceil(float("%.1f" % size))


@dataclass(frozen=True)
class ThresholdUncertainty:
    """Monte-Carlo error of one cluster-size threshold.

    Attributes
    ----------
    size : float
        The table cell (voxels, fractional).
    se : float
        Standard error (voxels).
    interval : (float, float)
        95 % interval, ``size ± 1.96·se``.
    threshold : int
        The whole-voxel threshold (ceiling of the cell as printed).
    stable : bool
        Whether both ends of the interval give the same whole-voxel threshold.
    """

    size: float
    se: float
    interval: tuple[float, float]
    threshold: int
    stable: bool

    def as_dict(self) -> dict:
        """JSON-ready (params.json)."""
        return {
            "size": round(float(self.size), 4),
            "mc_se": round(float(self.se), 4),
            "ci95": [round(float(v), 4) for v in self.interval],
            "threshold": int(self.threshold),
            "stable": bool(self.stable),
            "method": "binomial interval of the tail count (distribution-free quantile CI)",
        }


def threshold_uncertainty(
    max_sizes: np.ndarray, alpha: float, iterations: int, size: float | None = None
) -> ThresholdUncertainty:
    """Monte-Carlo error of the cluster size at ``alpha`` from one column of maxima.

    ``size`` is the table's value for the cell (default: the unadjusted interpolation).
    """
    curve = tail_probabilities(max_sizes, iterations)
    if size is None:
        size = float(cluster_size_for_alpha(curve, alpha, iterations)[0])
    half = Z95 * math.sqrt(alpha * (1.0 - alpha) / iterations)
    floor = 0.1 / iterations
    upper = float(cluster_size_for_alpha(curve, max(alpha - half, floor), iterations)[0])
    lower = float(cluster_size_for_alpha(curve, min(alpha + half, 0.5), iterations)[0])
    se = max(upper - lower, 0.0) / (2 * Z95)
    return uncertainty_from_se(float(size), se)


def uncertainty_from_se(size: float, se: float) -> ThresholdUncertainty:
    """Interval ``size ± 1.96 se`` and whether it gives one whole-voxel threshold."""
    lower, upper = size - Z95 * se, size + Z95 * se
    stable = ceil_threshold(max(lower, 0.0)) == ceil_threshold(upper)
    return ThresholdUncertainty(size, se, (lower, upper), ceil_threshold(size), stable)


# --------------------------------------------------------------------------------------------
# one table (simulated or read) and the corrected alpha of a cluster


@dataclass
class ClustSimTable:
    """One cluster-size table (one NN and sidedness), simulated or read from AFNI's files.

    Attributes
    ----------
    pthr : numpy.ndarray
        Voxelwise p values, one per row.
    athr : numpy.ndarray
        Corrected alpha values, one per column, in AFNI's (descending) order.
    sizes : numpy.ndarray
        (len(pthr), len(athr)) minimum cluster sizes in voxels (fractional).
    iterations : int or None
        Simulated volumes behind the table (``None`` when the file does not say: ``.1D``).
    """

    pthr: np.ndarray
    athr: np.ndarray
    sizes: np.ndarray
    iterations: int | None = None


@dataclass(frozen=True)
class CorrectedAlpha:
    """A cluster's corrected alpha: ``relation`` is '=' (interpolated), '<' or '>' (off the table)."""

    value: float
    relation: str = "="

    def __str__(self) -> str:
        if self.relation == "=":
            return f"{self.value:.3f}"
        return f"{self.relation} {self.value:.2f}"


def corrected_alpha(table: ClustSimTable, pthr: float, n_voxels: float) -> CorrectedAlpha | None:
    """FWE-corrected alpha of a cluster of ``n_voxels`` at voxelwise ``pthr``.

    The row of ``pthr`` gives cluster sizes s_j for alphas a_j (a_j decreasing, s_j increasing).
    Between two columns the alpha is interpolated linearly in size against the Gumbel coordinate
    the table was built in (:func:`cluster_size_for_alpha`). Beyond the table the bound is
    returned.

    Parameters
    ----------
    table : ClustSimTable
    pthr : float
        Voxelwise p; must be one of the table rows (relative tolerance 1e-6).
    n_voxels : float
        Cluster size in voxels.

    Returns
    -------
    CorrectedAlpha or None
        None when ``pthr`` is not a row of the table.
    """
    rows = np.flatnonzero(np.isclose(table.pthr, pthr, rtol=1e-6, atol=0.0))
    if rows.size == 0:
        return None
    order = np.argsort(-table.athr)  # largest alpha (smallest size) first
    alphas = table.athr[order]
    sizes = np.maximum.accumulate(table.sizes[rows[0], order])  # guard against non-monotone cells
    if n_voxels < sizes[0]:
        return CorrectedAlpha(float(alphas[0]), ">")
    if n_voxels > sizes[-1]:
        return CorrectedAlpha(float(alphas[-1]), "<")
    j = int(np.flatnonzero(sizes <= n_voxels)[-1])  # smallest alpha whose size is reached
    if j == len(sizes) - 1 or sizes[j] == n_voxels:
        return CorrectedAlpha(float(alphas[j]))
    frac = (n_voxels - sizes[j]) / (sizes[j + 1] - sizes[j])
    g = _gumbel(alphas[j]) + frac * (_gumbel(alphas[j + 1]) - _gumbel(alphas[j]))
    return CorrectedAlpha(float(-np.expm1(-np.exp(g))))


# --------------------------------------------------------------------------------------------
# in-memory result


@dataclass
class ClustSimTables:
    """All cluster-size tables of one simulation (:meth:`select` gives one as a
    :class:`ClustSimTable`).

    Attributes
    ----------
    pthr, athr : tuple of float
        Row (p) and column (alpha) labels.
    iterations : int
    tables : ndarray of float32, shape (3, 3, n_p, n_alpha)
        Sidedness (1sided, 2sided, bisided) × NN (1, 2, 3) tables, as AFNI prints them.
    max_sizes : ndarray of int32, shape (iterations, 3, 3, n_p)
        Largest cluster per iteration.
    warnings : list of AlphaWarning
        Cells whose alpha was never reached (AFNI's "max simulated alpha" warning).
    nodec : bool
    mask_count : int
    batches : list of dict
        With ``until_stable``: per batch, the total iterations and the goal cell's size, s.e.
        and stability after it (empty otherwise).
    """

    pthr: tuple[float, ...]
    athr: tuple[float, ...]
    iterations: int
    tables: np.ndarray
    max_sizes: np.ndarray
    warnings: list[AlphaWarning] = field(default_factory=list)
    nodec: bool = False
    mask_count: int = 0
    batches: list[dict] = field(default_factory=list)

    def _index(self, pthr: float, alpha: float, nn: int, sided: str) -> tuple[int, int, int, int]:
        s, n = SIDEDNESS.index(check_sided(sided)), check_nn(nn) - 1
        try:
            i = [float(p) for p in self.pthr].index(float(pthr))
            j = [float(a) for a in self.athr].index(float(alpha))
        except ValueError as err:
            raise ValueError(f"no table cell for pthr={pthr}, alpha={alpha}") from err
        return s, n, i, j

    def table(self, nn: int, sided: str) -> np.ndarray:
        """The (n_p, n_alpha) table for one NN and sidedness."""
        return self.tables[SIDEDNESS.index(sided), nn - 1]

    def select(self, nn: int, sided: str) -> ClustSimTable:
        """The table for one NN and sidedness as a :class:`ClustSimTable` (what a file gives)."""
        s, n = SIDEDNESS.index(check_sided(sided)), check_nn(nn) - 1
        return ClustSimTable(
            np.asarray(self.pthr, dtype=float),
            np.asarray(self.athr, dtype=float),
            self.tables[s, n],
            self.iterations,
        )

    def threshold(self, pthr: float, alpha: float, nn: int, sided: str) -> float:
        """Cluster size (voxels, fractional) for one cell."""
        s, n, i, j = self._index(pthr, alpha, nn, sided)
        return float(self.tables[s, n, i, j])

    def threshold_uncertainty(
        self, pthr: float, alpha: float, nn: int, sided: str
    ) -> ThresholdUncertainty:
        """Monte-Carlo standard error and 95 % interval of one cell."""
        s, n, i, j = self._index(pthr, alpha, nn, sided)
        return threshold_uncertainty(
            self.max_sizes[:, s, n, i], float(self.athr[j]), self.iterations,
            float(self.tables[s, n, i, j]),
        )  # fmt: skip

    def standard_errors(self) -> np.ndarray:
        """Monte-Carlo standard error of every cell, same shape as :attr:`tables`."""
        out = np.zeros(self.tables.shape, dtype=np.float64)
        for s in range(3):
            for n in range(3):
                for i in range(len(self.pthr)):
                    for j, a in enumerate(self.athr):
                        out[s, n, i, j] = threshold_uncertainty(
                            self.max_sizes[:, s, n, i], float(a), self.iterations,
                            float(self.tables[s, n, i, j]),
                        ).se  # fmt: skip
        return out
