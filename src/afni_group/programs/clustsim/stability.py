"""Stability of the chosen cluster-size threshold: how many iterations settle it, and more
iterations in batches until it is stable (``afni-group --clustsim-iter auto``; beyond AFNI).

A threshold is stable when its 95 % Monte-Carlo interval gives one whole-voxel threshold
(:func:`.core.uncertainty_from_se`). The s.e. of the table cell falls as 1/sqrt(iterations),
which gives :func:`iterations_to_settle`. :class:`StabilityGoal` runs the simulation in batches:
volume pair ``k`` depends only on the seed and ``k`` (:class:`.noise.NoiseSource`), so batches
of even size continue one stream, and the tables after ``n`` iterations in batches are those of
one run of ``n`` iterations with the same seed, byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from afni_group.programs.clustsim import core, simulate

#: ``--clustsim-iter auto``: iterations of the first batch and of each added batch
AUTO_BATCH = 10_000
#: ... and the most it runs
AUTO_MAX_ITERATIONS = 100_000
#: the largest count :func:`iterations_to_settle` reports
MAX_SETTLE_ITERATIONS = 10_000_000


def iterations_to_settle(size: float, se: float, iterations: int) -> int:
    """About how many iterations would make the threshold at table cell ``size`` stable.

    The threshold is stable when ``size ± 1.96·se`` stays inside the range whose ``%.1f`` text
    rounds up to one whole voxel (1d_tool.py's reading). Assuming the cell stays where it is (it
    moves a little as iterations are added), that takes ``iterations · (1.96·se / margin)²``,
    the margin being the cell's distance to the nearer end of its range; rounded up to a
    thousand, at most :data:`MAX_SETTLE_ITERATIONS`; ``iterations`` when already stable.
    """
    k = core.ceil_threshold(size)
    # "%.1f" % x rounds up to k for k - 0.95 <= x < k + 0.05
    margin = min(size - (k - 0.95), (k + 0.05) - size)
    if se <= 0 or core.Z95 * se < margin:
        return int(iterations)
    if margin <= 0:  # on a rounding boundary: no finite count settles it
        return MAX_SETTLE_ITERATIONS
    need = iterations * (core.Z95 * se / margin) ** 2
    return int(min(math.ceil(need / 1000.0) * 1000, MAX_SETTLE_ITERATIONS))


def unstable_message(
    uncertainty: dict, program: str = "3dClustSim", auto_possible: bool = True
) -> str:
    """The warning for an unstable threshold, from ``ThresholdUncertainty.as_dict()`` (plus
    ``iterations_to_settle`` when known), as the console and the report say it.

    ``program`` names the simulation (``3dttest++ -Clustsim`` for ``--clustsim randomise``, where
    ``auto_possible`` is False: ``--clustsim-iter auto`` is 3dClustSim's only)."""
    lo, hi = uncertainty["ci95"]
    settle = uncertainty.get("iterations_to_settle")
    if not settle:
        hint = f"more {program} iterations (--clustsim-iter) would settle it"
    else:
        auto = " or auto" if auto_possible and settle <= AUTO_MAX_ITERATIONS else ""
        hint = (
            f"about {settle} {program} iterations would settle it (--clustsim-iter {settle}{auto})"
        )
    return (
        f"cluster-size threshold {uncertainty['threshold']} voxels (table cell "
        f"{uncertainty['size']:.1f}, Monte-Carlo s.e. {uncertainty['mc_se']:.2f}) is not stable: "
        f"its 95% interval {lo:.1f}-{hi:.1f} gives {core.ceil_threshold(max(lo, 0.0))} to "
        f"{core.ceil_threshold(hi)} voxels; {hint}"
    )


@dataclass(frozen=True)
class StabilityGoal:
    """Add iterations in batches until the threshold of one table cell is stable.

    Attributes
    ----------
    pthr, alpha : float
        The cell (voxelwise p, FWE alpha).
    nn : int
        Neighbourhood (1, 2, 3).
    sided : str
        ``1sided``, ``2sided`` or ``bisided``.
    batch : int
        Iterations added per batch (even).
    max_iterations : int
        The most iterations run in all, stable or not.
    notify : callable, optional
        ``notify(tables, uncertainty)`` after each batch (progress messages).
    """

    pthr: float
    alpha: float
    nn: int
    sided: str
    batch: int = AUTO_BATCH
    max_iterations: int = AUTO_MAX_ITERATIONS
    notify: Callable[[core.ClustSimTables, core.ThresholdUncertainty], None] | None = None

    def clustsim(
        self,
        mask: np.ndarray,
        voxel_sizes: Sequence[float],
        acf: Sequence[float],
        *,
        iterations: int = AUTO_BATCH,
        seed: int = simulate.DEFAULT_SEED,
        n_jobs: int = 1,
        progress: bool = False,
        exact_fft: bool = False,
        **options,
    ) -> core.ClustSimTables:
        """:func:`.simulate.clustsim` with ``iterations`` first, then batches until stable.

        Takes the arguments of :func:`.simulate.clustsim`. The result's ``iterations`` is the total
        run and ``batches`` lists, per batch, the total so far and the cell's size, s.e. and
        stability after it.

        Raises
        ------
        ValueError
            An odd ``iterations`` or batch, a cell not in the tables, or what
            :func:`.simulate.clustsim` refuses.
        """
        if int(iterations) % 2 or self.batch % 2 or self.batch <= 0:
            raise ValueError(
                f"batches of even size are needed to continue one random stream, not "
                f"{iterations} then {self.batch}"
            )
        common = dict(seed=seed, n_jobs=n_jobs, progress=progress, exact_fft=exact_fft)
        tables = simulate.clustsim(
            mask, voxel_sizes, acf, iterations=iterations, **common, **options
        )
        batches = []
        while True:
            u = tables.threshold_uncertainty(self.pthr, self.alpha, self.nn, self.sided)
            batches.append(
                {
                    "iterations": tables.iterations,
                    "size": round(float(u.size), 4),
                    "mc_se": round(float(u.se), 4),
                    "stable": bool(u.stable),
                }
            )
            if self.notify is not None:
                self.notify(tables, u)
            if u.stable or tables.iterations >= self.max_iterations:
                break
            extra = min(self.batch, self.max_iterations - tables.iterations)
            more = simulate.simulate_max_cluster_sizes(
                np.asarray(mask) != 0, voxel_sizes, acf, tables.pthr, extra, **common,
                first_iteration=tables.iterations, label=f"3dClustSim +{extra}",
            )  # fmt: skip
            tables = simulate.tables_from_sizes(
                np.concatenate([tables.max_sizes, more]),
                tables.pthr, tables.athr, tables.nodec, tables.mask_count,
            )  # fmt: skip
        tables.batches = batches
        return tables
