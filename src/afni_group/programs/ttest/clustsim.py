"""``3dttest++ -Clustsim`` on arrays: randomised-residual null t-tests, clustered into tables.

AFNI (spec 08 §5–§7) writes the residuals, runs N jobs of ``3dttest++ -RANDOMSIGN`` that redo
the t-test voxel by voxel on the residuals with random sign flips (and, for pooled two-sample
designs, permutations across the groups), stores each iteration's z map as int16 in ``.sdat``
files, and hands them to ``3dClustSim -insdat``. Here the same randomisations
(:mod:`.randomise`, AFNI's own random streams and seeds) are applied without writing a volume:

* every quantity a t-test needs is linear in the signed, permuted residuals (the regression
  coefficients ``β = P·z``) or a sum of their squares, which flips and permutations leave
  unchanged (``Σ z² - β'X'Xβ`` is the residual sum of squares). So a block of iterations is
  one float32 matrix product (iterations × subjects) @ (subjects × voxels) with BLAS, on the
  residuals scaled to unit sum of squares per voxel, plus a small per-voxel kernel for t;
* the DOF is the same in every voxel (except ``-unpooled``), so t -> z is monotone: instead
  of converting every t, AFNI's z thresholds — after the int16 quantisation of the ``.sdat``
  files — are converted once to t thresholds;
* the clustering and the tables are those of the native 3dClustSim
  (:class:`~afni_group.programs.clustsim.kernels.ClusterWork`,
  :func:`~afni_group.programs.clustsim.core.cluster_table`), with ``-LOTS -both -nodec``.

With the same seeds, the maxima agree with AFNI's except where a voxel's t lies within float32
rounding of a threshold (the order of the float32 sums differs), which is rare; the exact
per-voxel route is :func:`.randomise.exact_null_z`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from afni_group.programs.clustsim import core as clustsim_core
from afni_group.programs.clustsim.kernels import ClusterWork
from afni_group.programs.clustsim.simulate import tables_from_sizes, z_thresholds
from afni_group.programs.ttest import core
from afni_group.programs.ttest.kernels import regression_t, simple_t, unpooled_z
from afni_group.programs.ttest.randomise import SDAT_SCALE, job_schedule, job_seeds, permutes
from afni_group.progress import Progress

#: AFNI's default iteration count (``AFNI_TTEST_NUMCSIM`` unset or below 1000) and its cap
DEFAULT_ITERATIONS = 10080
MIN_ITERATIONS = 1000
MAX_ITERATIONS = 10_000_000
#: fewest datasets in all, and per set, for -Clustsim
MIN_DATASETS = 14
MIN_PER_SET = 4
#: bytes of one block's matrix-product output (bounds the memory)
BLOCK_BYTES = 96 * 2**20


def iterations_per_job(total: int, jobs: int) -> int:
    """AFNI's ``nper = ceil(ncsim / N)``: every job runs this many (N·nper in all)."""
    return -(-int(total) // int(jobs))


def nominal_iterations(env_value: str | None) -> int:
    """``AFNI_TTEST_NUMCSIM``: used when >= 1000 (capped at 1e7), else 10080."""
    try:
        value = int(float(env_value)) if env_value else 0
    except ValueError:
        value = 0
    return min(value, MAX_ITERATIONS) if value >= MIN_ITERATIONS else DEFAULT_ITERATIONS


def check_clustsim(design: core.TTestDesign, shape: Sequence[int]) -> None:
    """AFNI's extra checks for -Clustsim (ValueError with its wording)."""
    if len(shape) < 3 or shape[1] < 4 or shape[2] < 4:
        raise ValueError("You cannot use '-Clustsim' option except on 3D datasets /:(")
    total = design.n_a + design.n_b
    if design.n_a < MIN_PER_SET:
        raise ValueError(f"You can't use -Clustsim with nval_AAA={design.n_a} < {MIN_PER_SET}")
    if design.two_sample and design.n_b < MIN_PER_SET:
        raise ValueError(f"You can't use -Clustsim with nval_BBB={design.n_b} < {MIN_PER_SET}")
    if total < MIN_DATASETS:
        raise ValueError(f"You can't use -Clustsim with nval_AAA+nval_BBB={total} < {MIN_DATASETS}")


# --------------------------------------------------------------------------------------------
# thresholds in the statistic's units


def sdat_boundaries(z: np.ndarray) -> np.ndarray:
    """z above which a value survives ``0.0002f·rint(z/0.0002f) > threshold`` (per threshold).

    AFNI compares the int16-quantised z of the ``.sdat`` files with each float32 threshold;
    the smallest surviving level s gives the boundary ``(s - 1/2)·0.0002``.
    """
    z = np.asarray(z, dtype=np.float32)
    out = np.empty(z.shape, dtype=np.float64)
    for i, thr in enumerate(z):
        s = math.floor(float(thr) / 0.0002) - 2
        while not np.float32(SDAT_SCALE * np.float32(s)) > thr:
            s += 1
        out[i] = (s - 0.5) * 0.0002
    return out


def statistic_thresholds(
    design: core.TTestDesign, pthr: Sequence[float], quantised: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """1-sided and 2-sided thresholds (float32) in the units the null values come in.

    t for the designs with one DOF (the z boundary converted with the t distribution), z for
    ``-unpooled`` (per-voxel DOF: the null values are converted to z instead). ``quantised``:
    AFNI stores the null z as int16 (``.sdat``, with ``-mask``); without a mask it writes
    float z volumes and the thresholds apply to z itself.
    """
    z1, z2 = z_thresholds(pthr)
    if quantised:
        b1, b2 = sdat_boundaries(z1), sdat_boundaries(z2)
    else:
        b1, b2 = z1.astype(np.float64), z2.astype(np.float64)
    if design.kind == "unpooled":
        return b1.astype(np.float32), b2.astype(np.float32)
    dof = float(design.dofs[0])
    return (-special.stdtrit(dof, special.ndtr(-b1))).astype(np.float32), (
        -special.stdtrit(dof, special.ndtr(-b2))
    ).astype(np.float32)


# --------------------------------------------------------------------------------------------
# the null model of one design


@dataclass
class NullModel:
    """Residuals prepared for the randomised tests of one design.

    Attributes
    ----------
    design : TTestDesign
    scaled : float32 array (n_a + n_b, n_voxels)
        Residuals divided by the root of their sum of squares over all subjects (0 where 0).
    cross : float32 array (n, n_voxels)
        Paired: products of setA's and setB's scaled residuals (else empty).
    q_a : float64 array (n_voxels,)
        Unpooled: setA's share of the sum of squares (else empty).
    """

    design: core.TTestDesign
    scaled: np.ndarray
    cross: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    q_a: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def of(cls, residuals: np.ndarray, design: core.TTestDesign) -> NullModel:
        """From the main run's residuals at the simulated voxels (setA's, then setB's)."""
        res = np.asarray(residuals, dtype=np.float64)
        total = np.sum(res * res, axis=0)
        inv = np.divide(1.0, np.sqrt(total), out=np.zeros_like(total), where=total > 0)
        scaled = (res * inv).astype(np.float32)
        model = cls(design, np.ascontiguousarray(scaled))
        if design.kind == "paired":
            n = design.n_a
            model.cross = np.ascontiguousarray(scaled[:n] * scaled[n:])
        elif design.kind == "unpooled":
            model.q_a = np.sum(res[: design.n_a] ** 2, axis=0) * inv * inv
        return model

    @property
    def n_sets(self) -> int:
        return 2 if self.design.kind in ("pooled", "unpooled") else 1

    @property
    def n_coef(self) -> int:
        return self.design.n_cov + 1

    def iteration(
        self, permutation: np.ndarray | None
    ) -> tuple[list[np.ndarray], np.ndarray, float]:
        """One iteration's per-set P (coefficients × subjects), Gram matrices X'X, Q00/DOF.

        Without covariates P is the row of 1/n and X'X = n; with covariates both come from
        the (permuted, re-centred) design matrices, as the job re-inverts them.
        """
        d = self.design
        if d.covariates is None:
            sizes = [d.n_a, d.n_b] if self.n_sets == 2 else [d.n_a]
            ps = [np.full((1, n), 1.0 / n) for n in sizes]
            grams = np.array([[[float(n)]] for n in sizes])
            return ps, grams, sum(1.0 / n for n in sizes) / d.dofs[0]
        reg_a, reg_b = d.regressions(permutation)
        regs = [reg_a] if self.n_sets == 1 else [reg_a, reg_b]
        ps = [r.p.astype(np.float64) for r in regs]
        grams = np.array([r.x.T.astype(np.float64) @ r.x for r in regs])
        return ps, grams, sum(float(r.q[0, 0]) for r in regs) / d.dofs[0]


@dataclass
class NullResult:
    """Per-iteration results of the randomisation.

    Attributes
    ----------
    max_sizes : int32 array (iterations, 3, 3, n_p)
        Largest cluster per iteration, sidedness (1sided, 2sided, bisided), NN and p;
        iterations in job order.
    minmax : float32 array (iterations, 2)
        Smallest and largest null z of each iteration (AFNI's ``.minmax.1D`` rows).
    seconds : dict
        Time per stage: ``matmul`` (main thread), ``kernel`` and ``clustering`` (summed over
        threads), ``wall``.
    """

    max_sizes: np.ndarray
    minmax: np.ndarray
    seconds: dict = field(default_factory=dict)


def block_rows(
    model: NullModel, sign: np.ndarray, index: np.ndarray, perms: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The linear part of a block of iterations.

    Returns the row matrix (iterations·sets·coefficients, subjects) whose product with the
    scaled residuals gives every β, the Gram matrices (iterations, sets, m+1, m+1), Q00/DOF
    per iteration, and for paired designs the per-subject products of setA's and setB's signs
    (iterations, n) that give the cross term (else an empty array).
    """
    d = model.design
    n_it, n_sub = sign.shape
    mm, n_sets = model.n_coef, model.n_sets
    if perms is None or d.covariates is None:
        ps, grams, sc = model.iteration(None)
        coefs = [np.broadcast_to(p, (n_it,) + p.shape) for p in ps]
        gram = np.broadcast_to(grams, (n_it,) + grams.shape)
        scale = np.full(n_it, sc)
    else:
        per = [model.iteration(q) for q in perms]
        coefs = [np.stack([r[0][s] for r in per]) for s in range(n_sets)]
        gram = np.stack([r[1] for r in per])
        scale = np.array([r[2] for r in per])
    rows = np.zeros((n_it, n_sets, mm, n_sub), dtype=np.float32)
    it = np.arange(n_it)[:, None]
    spans = [(0, d.n_a), (d.n_a, d.n_a + d.n_b)] if n_sets == 2 else [(0, d.n_a)]
    for s, (lo, hi) in enumerate(spans):
        for k in range(mm):
            rows[it, s, k, index[:, lo:hi]] = sign[:, lo:hi] * coefs[s][:, k, :]
    flips = np.zeros((0, 0), dtype=np.float32)
    if d.kind == "paired":
        n = d.n_a
        for k in range(mm):  # β of A - B: setB's residuals enter negated, with A's matrix
            rows[it, 0, k, index[:, n:]] = -sign[:, n:] * coefs[0][:, k, :]
        flips = (sign[:, :n] * sign[:, n:]).astype(np.float32)
    return rows.reshape(n_it * n_sets * mm, n_sub), np.ascontiguousarray(gram), scale, flips


def unpooled_floor(design: core.TTestDesign, thr1: np.ndarray, thr2: np.ndarray) -> float:
    """``-unpooled``: |t| below which no z threshold can be passed at any DOF (else 0)."""
    if design.kind != "unpooled":
        return 0.0
    lowest = float(min(thr1.min(), thr2.min()))
    dof_max = float(design.n_a + design.n_b - 2)
    return float(-special.stdtrit(dof_max, special.ndtr(-lowest))) * (1.0 - 1e-6)


def null_values(
    model: NullModel,
    y: np.ndarray,
    cross: np.ndarray,
    gram: np.ndarray,
    scale: np.ndarray,
    first: int,
    count: int,
    floor: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Null statistic of ``count`` iterations of a block, and each one's smallest/largest z.

    The statistic is t (z for ``-unpooled``), in the units of :func:`statistic_thresholds`.
    """
    design = model.design
    n_vox = y.shape[1]
    values = np.empty((count, n_vox), dtype=np.float32)
    if design.kind == "unpooled":
        n_a, n_b = float(design.n_a), float(design.n_b)
        unpooled_z(y, first, count, model.q_a, n_a, n_b, floor, values)
        lo, hi = values.min(axis=1), values.max(axis=1)
        # a row whose extreme is a stand-in value (below every threshold): convert it exactly
        z_floor = float(core.t2z(np.float32(floor), n_a + n_b - 2.0)) if floor > 0 else 0.0
        for i in np.flatnonzero((hi < z_floor) | (lo > -z_floor)):
            row = np.empty((1, n_vox), dtype=np.float32)
            unpooled_z(y, first + i, 1, model.q_a, n_a, n_b, 0.0, row)
            lo[i], hi[i] = row.min(), row.max()
        return values, lo, hi
    if design.covariates is None:
        n_b = float(design.n_b if model.n_sets == 2 else 0)
        simple_t(y, first, count, model.n_sets, float(design.n_a), n_b, scale, cross, values)
    else:
        regression_t(y, first, count, model.n_coef, model.n_sets, model.n_sets == 2, gram,
                     scale, cross, values)  # fmt: skip
    dof = float(design.dofs[0])
    return values, core.t2z(values.min(axis=1), dof), core.t2z(values.max(axis=1), dof)


def simulate(
    residuals: np.ndarray,
    mask: np.ndarray,
    design: core.TTestDesign,
    *,
    jobs: int,
    iterations: int,
    seed: int,
    seed2: int | None = None,
    pthr: Sequence[float] = clustsim_core.LOTS_PTHR,
    n_threads: int = 1,
    progress: bool = False,
    block_bytes: int = BLOCK_BYTES,
    quantised: bool = True,
) -> NullResult:
    """The randomised null of ``-Clustsim``: largest clusters of every iteration.

    Parameters
    ----------
    residuals : float32 array (n_a + n_b, n_voxels_in_grid)
        The main run's residuals on the whole grid, in AFNI's index order (i fastest).
    mask : bool array (nx, ny, nz)
        Voxels simulated and clustered.
    design : TTestDesign
    jobs : int
        AFNI's job count N: job p draws with seeds ``(S1 + 1111151·p, S2 + 1111151·p)``.
    iterations : int
        Iterations per job (AFNI's nper); N·nper in all.
    seed, seed2 : int
        ``-seed S1 [S2]`` (S2 defaults to S1 + 314159265).
    pthr : sequence of float
        p values of the tables (AFNI's -LOTS list).
    n_threads : int
        Threads for the per-voxel kernel and the clustering (the matrix product uses BLAS's).
    progress : bool
    block_bytes : int
        Memory for one block's matrix product (two blocks are in flight).
    quantised : bool
        Threshold the null z as AFNI's int16 ``.sdat`` files store them (runs with a mask);
        False: as float z (AFNI's NIfTI null volumes without a mask).
    """
    t_start = time.perf_counter()
    # AFNI index order (i fastest) is the C order of the transposed grid; clustering does not
    # depend on the order of the axes
    grid = np.ascontiguousarray(np.asarray(mask, dtype=bool).T)
    voxels = np.flatnonzero(grid)
    model = NullModel.of(np.asarray(residuals)[:, voxels], design)
    thr1, thr2 = statistic_thresholds(design, pthr, quantised)
    n_vox = voxels.size
    n_rows = model.n_sets * model.n_coef
    total = int(jobs) * int(iterations)
    block = int(max(8, min(iterations, block_bytes // max(1, n_rows * n_vox * 4))))
    max_sizes = np.zeros((total, 3, 3, len(pthr)), dtype=np.int32)
    minmax = np.zeros((total, 2), dtype=np.float32)
    spent = {"matmul": 0.0, "kernel": 0.0, "clustering": 0.0}
    lock = threading.Lock()
    local = threading.local()
    floor = unpooled_floor(design, thr1, thr2)

    def work(y, cross, gram, scale, first, count, row0):
        t0 = time.perf_counter()
        values, lo, hi = null_values(model, y, cross, gram, scale, first, count, floor)
        minmax[row0 : row0 + count, 0] = lo
        minmax[row0 : row0 + count, 1] = hi
        t1 = time.perf_counter()
        if not hasattr(local, "work"):
            local.work = ClusterWork(grid, thr1, thr2)
        for i in range(count):
            local.work.max_sizes(values[i], max_sizes[row0 + i])
        with lock:
            spent["kernel"] += t1 - t0
            spent["clustering"] += time.perf_counter() - t1
        return count

    bar = Progress("3dttest++ -Clustsim", total, "iterations", enabled=progress)
    pending: list = []
    with bar, ThreadPoolExecutor(max_workers=max(1, int(n_threads))) as pool:
        for job in range(int(jobs)):
            sched = job_schedule(design.n_a, design.n_b if design.two_sample else 0,
                                 int(iterations), job_seeds(seed, seed2, job), permutes(design))  # fmt: skip
            for start in range(0, int(iterations), block):
                stop = min(start + block, int(iterations))
                t0 = time.perf_counter()
                perms = None if sched.permutation is None else sched.permutation[start:stop]
                rows, gram, scale, flips = block_rows(
                    model, sched.sign[start:stop], sched.index[start:stop], perms
                )
                y = rows @ model.scaled
                cross = flips @ model.cross if flips.size else np.zeros((0, 0), np.float32)
                spent["matmul"] += time.perf_counter() - t0
                count = stop - start
                step = max(1, -(-count // (2 * max(1, int(n_threads)))))
                futures = [
                    pool.submit(work, y, cross, gram, scale, i, min(step, count - i),
                                job * int(iterations) + start + i)
                    for i in range(0, count, step)
                ]  # fmt: skip
                # keep at most two blocks in flight (bounded memory)
                while len(pending) >= 1:
                    for f in pending.pop(0):
                        bar.update(f.result())
                pending.append(futures)
        for futures in pending:
            for f in futures:
                bar.update(f.result())
    spent["wall"] = time.perf_counter() - t_start
    return NullResult(max_sizes, minmax, spent)


def null_tables(
    result: NullResult,
    pthr: Sequence[float] = clustsim_core.LOTS_PTHR,
    athr: Sequence[float] = clustsim_core.LOTS_ATHR,
    mask_count: int = 0,
) -> clustsim_core.ClustSimTables:
    """The nine integer (``-nodec``) tables of ``3dClustSim -LOTS -both -nodec`` from the maxima."""
    return tables_from_sizes(result.max_sizes, pthr, athr, nodec=True, mask_count=mask_count)
