"""Voxel-wise mixed-effects meta-analysis statistics of AFNI's 3dMEMA, over arrays.

Implements spec 02-mema.md (3dMEMA.R as of AFNI_26.2.x): per-voxel random-effects
meta-regression of subject effect estimates ``b`` with known variances ``v = (b/t)**2``,
τ² by DerSimonian–Laird method of moments, re-estimated by REML Fisher scoring only when a
method-of-moments statistic exceeds 1.3, Hartung–Knapp scaled standard errors, then AFNI's
missing-data DOF re-mapping (with its sign slip, by default).

Everything here works on blocks of voxels at once: arrays are ``(n_voxels, n_rows)`` with one
row per subject (per set), the design matrix ``X`` is shared by all voxels, and the REML
iterations run on the whole block of not-yet-converged voxels together. No file I/O here; see
``files.py`` for the dataset-level step (and ``store.py`` for inputs larger than memory) and the ``3dMEMA`` command line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from afni_group.programs.mema.budget import MAX_CHUNK, chunk_voxels
from afni_group.programs.mema.design import MemaDesign, MemaResult
from afni_group.programs.mema.dof import remap_t, voxel_dof

#: |value| below this counts as zero (beta, t, mask, root of se difference).
ZERO_TOL = 1e-16
#: variance given to a subject with zero beta or zero t: weight ~1e-8, i.e. weighted out.
MISSING_VARIANCE = 1e8
#: REML is run only when some method-of-moments |statistic| exceeds this.
REML_TRIGGER = 1.3
#: REML stops when |Δτ²| / (|τ²| + 1e-8) is at most this.
REML_REL_TOL = 1e-3
REML_MAX_ITER = 200
#: a standard error at or below this gives statistic 0.
SE_FLOOR = 1e-8


# ----------------------------------------------------------------------------------------------
# per-subject variance and block fits
# ----------------------------------------------------------------------------------------------


def within_subject_variance(beta: np.ndarray, tstat: np.ndarray) -> np.ndarray:
    """v = (b/t)², with 0 for |b| or |t| < 1e-16, then any v < 1e-16 replaced by 1e8.

    A zero beta, a zero t or a vanishing ratio all weight the subject out (weight ~1e-8) while
    the beta itself stays in the model.
    """
    beta = np.asarray(beta, dtype=np.float64)
    tstat = np.asarray(tstat, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        v = (beta / tstat) ** 2
    v[(np.abs(beta) < ZERO_TOL) | (np.abs(tstat) < ZERO_TOL)] = 0.0
    v[v < ZERO_TOL] = MISSING_VARIANCE
    return v


def _invert_small(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched inverse of (V, p, p) matrices and whether each is usable.

    A matrix is unusable where R's ``solve`` would stop: exactly singular or reciprocal
    1-norm condition number below machine epsilon.
    """
    p = m.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p == 1:
            inv = 1.0 / m
            ok = np.isfinite(inv[:, 0, 0]) & (m[:, 0, 0] != 0)
            return inv, ok
        if p == 2:
            a, b, c, d = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
            det = a * d - b * c
            inv = np.empty_like(m)
            inv[:, 0, 0], inv[:, 0, 1] = d / det, -b / det
            inv[:, 1, 0], inv[:, 1, 1] = -c / det, a / det
        else:
            det = np.linalg.det(m)
            safe = np.where((det != 0)[:, None, None] & np.isfinite(m), m, np.eye(p))
            inv = np.linalg.inv(safe)
        norm_m = np.abs(m).sum(axis=1).max(axis=1)
        norm_inv = np.abs(inv).sum(axis=1).max(axis=1)
        rcond = 1.0 / (norm_m * norm_inv)
    ok = (det != 0) & np.isfinite(rcond) & (rcond >= np.finfo(np.float64).eps)
    return inv, ok


@dataclass
class _Fit:
    """Weighted least squares at one τ² per voxel (arrays over a block of V voxels)."""

    weights: np.ndarray  # (V, n)
    coef: np.ndarray  # (V, p)
    cov: np.ndarray  # (V, p, p)  V_b = (XᵀWX)⁻¹
    resid: np.ndarray  # (V, n)
    ypy: np.ndarray  # (V,)  YᵀPY = Σ w r²
    ok: np.ndarray  # (V,)  XᵀWX invertible


def _outer_columns(x: np.ndarray) -> np.ndarray:
    """(n, p·p) products of design columns, so that XᵀWX = (w @ XX) per voxel (one GEMM)."""
    n, p = x.shape
    return (x[:, :, None] * x[:, None, :]).reshape(n, p * p)


#: rows per BLAS call in :func:`_rows_times` (a multiple of every kernel's row unrolling)
ROW_TILE = 64


def _rows_times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` over voxel rows, giving each row the same bits whatever the block's size.

    BLAS takes other code paths for a single row (gemv), for a row count that is not a
    multiple of its unrolling, and for one output column, and those round differently; so
    the product runs in tiles of exactly :data:`ROW_TILE` rows (the last one zero-padded).
    Results then do not depend on how voxels are blocked (chunks, REML's shrinking active
    set, the on-disk store's blocks).
    """
    n_rows = a.shape[0]
    out = np.empty((n_rows, b.shape[1]))
    for lo in range(0, n_rows, ROW_TILE):
        tile = a[lo : lo + ROW_TILE]
        if tile.shape[0] < ROW_TILE:
            tile = np.concatenate([tile, np.zeros((ROW_TILE - tile.shape[0], a.shape[1]))])
        out[lo : lo + ROW_TILE] = (tile @ b)[: n_rows - lo]
    return out


def _xtwx(weights: np.ndarray, xx: np.ndarray, p: int) -> np.ndarray:
    return _rows_times(weights, xx).reshape(-1, p, p)


def _wls(y: np.ndarray, weights: np.ndarray, x: np.ndarray, xx: np.ndarray) -> _Fit:
    p = x.shape[1]
    cov, ok = _invert_small(_xtwx(weights, xx, p))
    xtwy = _rows_times(weights * y, x)
    coef = np.einsum("vpq,vq->vp", cov, xtwy)
    resid = y - _rows_times(coef, x.T)
    ypy = np.einsum("vn,vn->v", weights * resid, resid)
    return _Fit(weights, coef, cov, resid, ypy, ok)


def _vb_times(fit: _Fit, weights_k: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """V_b XᵀW^k X for the given W^k (V, n)."""
    p = fit.cov.shape[-1]
    return fit.cov @ _xtwx(weights_k, xx, p)


def _statistics(fit: _Fit, n_minus_p: int, hktest: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scaled coefficient covariance and statistics b/se (0 where se <= 1e-8)."""
    cov = fit.cov
    if hktest:
        cov = cov * np.maximum(fit.ypy / n_minus_p, 0.0)[:, None, None]
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        stat = np.where(se > SE_FLOOR, fit.coef / np.where(se > SE_FLOOR, se, 1.0), 0.0)
    return cov, stat


@dataclass
class BlockFit:
    """Per-voxel results of the random-effects fit of one block."""

    coef: np.ndarray  # (V, p)
    cov: np.ndarray  # (V, p, p) after HK scaling (if on)
    stat: np.ndarray  # (V, p)
    tau2: np.ndarray  # (V,)
    qe: np.ndarray  # (V,)
    trp0: np.ndarray  # (V,)
    ok: np.ndarray  # (V,) False: fixed-effects system singular -> all outputs 0
    used_reml: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    reml_iterations: np.ndarray = field(default_factory=lambda: np.zeros(0, int))


def _halve_until_nonnegative(tau2: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Halve Δ until τ² + Δ >= 0, as 3dMEMA's REML step does (elementwise)."""
    delta = delta.copy()
    neg = tau2 + delta < 0
    # From τ² = 0 a negative step only stops when it underflows to -0.0.
    delta[neg & (tau2 == 0)] = -0.0
    todo = np.flatnonzero(tau2 + delta < 0)
    while todo.size:
        delta[todo] *= 0.5
        todo = todo[tau2[todo] + delta[todo] < 0]
    return delta


def _reml(
    y: np.ndarray, v: np.ndarray, x: np.ndarray, xx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """REML Fisher scoring for τ² on a block; returns (tau2, converged, iterations)."""
    n_vox, _ = y.shape
    with np.errstate(invalid="ignore"):
        tau2 = np.maximum(0.0, y.var(axis=1, ddof=1) - v.mean(axis=1))
    converged = np.zeros(n_vox, bool)
    iterations = np.zeros(n_vox, int)
    active = np.arange(n_vox)
    for iteration in range(1, REML_MAX_ITER + 1):
        if active.size == 0:
            break
        t2 = tau2[active]
        fit = _wls(y[active], 1.0 / (v[active] + t2[:, None]), x, xx)
        w = fit.weights
        w2 = w * w
        wr = w * fit.resid
        u_sq = np.einsum("vn,vn->v", wr, wr)  # uᵀu with u = PY = W r
        vb_m2 = _vb_times(fit, w2, xx)
        vb_m3 = _vb_times(fit, w2 * w, xx)
        tr_p = w.sum(axis=1) - np.trace(vb_m2, axis1=1, axis2=2)
        tr_pp = (
            w2.sum(axis=1)
            - 2.0 * np.trace(vb_m3, axis1=1, axis2=2)
            + np.einsum("vij,vji->v", vb_m2, vb_m2)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = (u_sq - tr_p) / tr_pp
        bad = ~fit.ok | ~np.isfinite(delta)
        delta[bad] = 0.0
        delta = _halve_until_nonnegative(t2, delta)
        new = t2 + delta
        rel = np.abs(delta) / (np.abs(new) + 1e-8)
        tau2[active] = new
        iterations[active] = iteration
        done = (rel <= REML_REL_TOL) & ~bad
        converged[active[done]] = True
        active = active[~done & ~bad]
    return tau2, converged, iterations


def fit_block(y: np.ndarray, v: np.ndarray, x: np.ndarray, *, hktest: bool = True) -> BlockFit:
    """Random-effects meta-regression of every voxel of a block (3dMEMA ``rmaB``).

    Parameters
    ----------
    y : ndarray, shape (V, n)
        Effect estimates (betas), one row per voxel.
    v : ndarray, shape (V, n)
        Within-subject variances (see :func:`within_subject_variance`).
    x : ndarray, shape (n, p)
        Design matrix shared by all voxels.
    hktest : bool
        Hartung–Knapp scaling of the coefficient covariance (3dMEMA default).

    Returns
    -------
    BlockFit
    """
    n, p = x.shape
    n_minus_p = n - p
    # Fixed effects: QE, trace(P0), then τ² by the method of moments.
    xx = _outer_columns(x)
    fe = _wls(y, 1.0 / v, x, xx)
    trp0 = fe.weights.sum(axis=1) - np.trace(
        _vb_times(fe, fe.weights * fe.weights, xx), axis1=1, axis2=2
    )
    qe = fe.ypy
    with np.errstate(divide="ignore", invalid="ignore"):
        tau2 = np.maximum(0.0, (qe - n_minus_p) / trp0)
    tau2 = np.where(np.isfinite(tau2), tau2, 0.0)
    ok = fe.ok.copy()

    mom = _wls(y, 1.0 / (v + tau2[:, None]), x, xx)
    ok &= mom.ok
    cov, stat = _statistics(mom, n_minus_p, hktest)
    coef = mom.coef

    used_reml = np.zeros(len(y), bool)
    iterations = np.zeros(len(y), int)
    need = np.flatnonzero(ok & (np.abs(stat) > REML_TRIGGER).any(axis=1))
    if need.size:
        reml_tau2, converged, its = _reml(y[need], v[need], x, xx)
        iterations[need] = its
        good = need[converged]
        if good.size:
            final = _wls(y[good], 1.0 / (v[good] + reml_tau2[converged][:, None]), x, xx)
            final_ok = final.ok
            good = good[final_ok]
            if good.size:
                f_cov, f_stat = _statistics(final, n_minus_p, hktest)
                tau2[good] = reml_tau2[converged][final_ok]
                coef = coef.copy()
                coef[good] = final.coef[final_ok]
                cov[good] = f_cov[final_ok]
                stat[good] = f_stat[final_ok]
                used_reml[good] = True
    return BlockFit(coef, cov, stat, tau2, qe, trp0, ok, used_reml, iterations)


def assemble_bricks(design: MemaDesign, fit: BlockFit) -> np.ndarray:
    """Place a block's estimates into 3dMEMA's output vector (V, nBrick0), float64.

    Voxels whose fixed-effects system is singular get all zeros.
    """
    n, p = design.n_rows, design.matrix().shape[1]
    out = np.zeros((len(fit.tau2), design.n_bricks))
    coef, stat, cov = fit.coef, fit.stat, fit.cov
    if design.kind == "groups":
        out[:, 0], out[:, 1] = coef[:, 0], stat[:, 0]
        out[:, 4], out[:, 5] = coef[:, 1], stat[:, 1]
        mean2 = coef[:, 0] + coef[:, 1]
        with np.errstate(invalid="ignore"):
            root = np.sqrt(cov[:, 1, 1] - cov[:, 0, 0])
            # NaN root (negative difference) compares False, like a failed test -> 0.
            out[:, 2] = mean2
            out[:, 3] = np.where(root > ZERO_TOL, mean2 / np.where(root > ZERO_TOL, root, 1.0), 0.0)
        first_cov = 2
        cov_pos = 6
    else:
        out[:, 0], out[:, 1] = coef[:, 0], stat[:, 0]
        first_cov = 1
        cov_pos = 2
    for k in range(design.n_cov):
        out[:, cov_pos + 2 * k] = coef[:, first_cov + k]
        out[:, cov_pos + 2 * k + 1] = stat[:, first_cov + k]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, -3] = 1.0 / (1.0 + (n - p - 1) / (fit.trp0 * fit.tau2))
        out[:, -2] = np.sqrt(fit.tau2)
    out[:, -1] = fit.qe
    out[~fit.ok] = 0.0
    return out


# ----------------------------------------------------------------------------------------------
# whole analysis over arrays
# ----------------------------------------------------------------------------------------------


def _model_rows(
    design: MemaDesign, betas: Sequence[np.ndarray], tstats: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Y and v (V, n) for the model, from per-set (n_subj, V) float arrays (a voxel block)."""
    vs = [within_subject_variance(b, t) for b, t in zip(betas, tstats, strict=True)]
    bs = [np.asarray(b, dtype=np.float64) for b in betas]
    if design.kind == "conditions":
        y = bs[1] - bs[0]
        v = vs[0] + vs[1]
        y[v >= MISSING_VARIANCE] = 0.0
    else:
        y = np.concatenate(bs, axis=0)
        v = np.concatenate(vs, axis=0)
    return np.ascontiguousarray(y.T), np.ascontiguousarray(v.T)


def _validate_inputs(
    design: MemaDesign, betas: Sequence[np.ndarray], tstats: Sequence[np.ndarray]
) -> int:
    if len(betas) != len(design.n_per_set) or len(tstats) != len(design.n_per_set):
        raise ValueError(f"design {design.kind!r} needs {len(design.n_per_set)} beta and t arrays")
    n_vox = None
    for k, (b, t) in enumerate(zip(betas, tstats, strict=True)):
        if b.ndim != 2 or b.shape != t.shape:
            raise ValueError(
                f"set {k + 1}: betas {b.shape} and t-statistics {t.shape} must both be "
                "(n_subjects, n_voxels)"
            )
        if b.shape[0] != design.n_per_set[k]:
            raise ValueError(
                f"set {k + 1}: {b.shape[0]} subjects, design says {design.n_per_set[k]}"
            )
        if n_vox is None:
            n_vox = b.shape[1]
        elif b.shape[1] != n_vox:
            raise ValueError(f"set {k + 1} has {b.shape[1]} voxels, set 1 has {n_vox}")
    n, p = design.matrix().shape
    if n <= p:
        raise ValueError("Too few subjects for options selected.")
    return int(n_vox)


#: Fetch of a block's inputs: candidate positions [lo, hi) -> per-set (n_subjects, V) betas and
#: t-statistics of those voxels.
Fetch = Callable[[int, int], tuple[Sequence[np.ndarray], Sequence[np.ndarray]]]


def min_nonzero(design: MemaDesign, missing_data: bool, n_nonzero: int) -> int:
    """Non-zero model values a voxel needs to be analysed (spec §4)."""
    return design.min_nonzero if missing_data else n_nonzero


def _eligible_rows(
    design: MemaDesign, betas: Sequence[np.ndarray], tstats: Sequence[np.ndarray], need: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The block's voxels with enough non-zero model values, and their Y and v (V, n).

    Paired design: non-zero contrasts; otherwise non-zero betas (counted before Y and v are
    built, so voxels left out cost nothing).
    """
    with np.errstate(invalid="ignore"):
        if design.kind == "conditions":
            y, v = _model_rows(design, betas, tstats)
            keep = np.flatnonzero((np.abs(y) > ZERO_TOL).sum(axis=1) >= need)
            return keep, y[keep], v[keep]
        nonzero = sum((np.abs(b) > ZERO_TOL).sum(axis=0) for b in betas)
        keep = np.flatnonzero(nonzero >= need)
        y, v = _model_rows(design, [b[:, keep] for b in betas], [t[:, keep] for t in tstats])
        return keep, y, v


def array_fetch(
    betas: Sequence[np.ndarray], tstats: Sequence[np.ndarray], candidates: np.ndarray
) -> Fetch:
    """:data:`Fetch` over per-set (n_subjects, n_voxels) arrays held in memory."""

    def fetch(lo: int, hi: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        idx = candidates[lo:hi]
        return [b[:, idx] for b in betas], [t[:, idx] for t in tstats]

    return fetch


def mema_blocks(
    design: MemaDesign,
    fetch: Fetch,
    candidates: np.ndarray,
    n_vox: int,
    *,
    missing_data: bool = False,
    zero_counts: np.ndarray | None = None,
    n_nonzero: int = -1,
    hktest: bool = True,
    correct_dof: bool = False,
    chunk_size: int = MAX_CHUNK,
    n_jobs: int = 1,
    on_chunk: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    dtype: type = np.float32,
) -> MemaResult:
    """Run 3dMEMA over voxels whose inputs come block by block from ``fetch``.

    Parameters
    ----------
    design : MemaDesign
    fetch : callable
        ``fetch(lo, hi)`` returns the per-set betas and t-statistics, each (n_subjects, V), of
        the voxels ``candidates[lo:hi]`` (finite values, as read).
    candidates : ndarray of int
        Sorted voxel indices that may be analysed (in the mask); every other voxel is 0.
    n_vox : int
        Voxels in the output.
    zero_counts : ndarray (n_sets, n_vox), optional
        Subjects missing per set for the ``-missing_data`` DOF re-mapping, over all voxels
        (needed when ``missing_data``).
    chunk_size : int
        Candidates per block (results do not depend on it nor on ``n_jobs``).

    Other parameters are those of :func:`mema`.

    Returns
    -------
    MemaResult
    """
    x = design.matrix()
    need = min_nonzero(design, missing_data, n_nonzero)
    candidates = np.asarray(candidates, dtype=np.int64)
    starts = range(0, candidates.size, max(1, int(chunk_size)))
    chunks = [(lo, min(lo + chunk_size, candidates.size)) for lo in starts]
    if on_start is not None:
        on_start(len(chunks))

    def work(lo_hi: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
        keep, y, v = _eligible_rows(design, *fetch(*lo_hi), need)
        if keep.size == 0:
            return keep, np.zeros((0, design.n_bricks)), 0
        fit = fit_block(y, v, x, hktest=hktest)
        return keep, assemble_bricks(design, fit), int(fit.used_reml.sum())

    out = np.zeros((n_vox, design.n_bricks), np.float64)
    n_analyzed = n_reml = 0
    pool = ThreadPoolExecutor(max_workers=n_jobs) if n_jobs > 1 and len(chunks) > 1 else None
    try:
        done = pool.map(work, chunks) if pool is not None else map(work, chunks)
        for (lo, _hi), (keep, block, k) in zip(chunks, done, strict=True):
            out[candidates[lo + keep]] = block
            n_analyzed += keep.size
            n_reml += k
            if on_chunk is not None:
                on_chunk(1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    if missing_data:
        if zero_counts is None:
            raise ValueError("missing_data needs the zero counts of every voxel")
        zero_counts = np.asarray(zero_counts).reshape(len(design.n_per_set), -1)
        if zero_counts.shape[1] != n_vox:
            raise ValueError("zero counts do not match the number of voxels")
        dof = voxel_dof(design, zero_counts, correct_dof=correct_dof)
        for i in design.t_brick_indices():
            out[:, i] = remap_t(out[:, i], dof, design.full_dof)
    out[np.isnan(out)] = 0.0
    codes, params = design.stat_aux()
    return MemaResult(
        out.astype(dtype),
        design.labels(),
        codes,
        params,
        design.full_dof,
        n_analyzed=n_analyzed,
        n_reml=n_reml,
    )


def mema(
    betas: Sequence[np.ndarray],
    tstats: Sequence[np.ndarray],
    design: MemaDesign,
    *,
    missing_data: bool = False,
    zero_counts: np.ndarray | None = None,
    n_nonzero: int = -1,
    hktest: bool = True,
    mask: np.ndarray | None = None,
    correct_dof: bool = False,
    chunk_size: int | None = None,
    n_jobs: int = 1,
    on_chunk: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    dtype: type = np.float32,
) -> MemaResult:
    """Run 3dMEMA over voxels.

    Parameters
    ----------
    betas, tstats : sequence of ndarray, each (n_subjects, n_voxels)
        One array per ``-set`` (float32 or float64; float32 is promoted as 3dMEMA does).
        Must be finite.
    design : MemaDesign
    missing_data : bool
        ``-missing_data``: analyse only voxels with at least 1 + nGrp + nCov non-zero betas,
        then re-map the t bricks by the voxel DOF.
    zero_counts : ndarray (n_sets, n_voxels), optional
        Missing subjects per set (``-missing_data F1 F2`` files); default: count of betas == 0.
    n_nonzero : int
        ``-n_nonzero`` (used without ``missing_data``; -1 analyses every voxel).
    hktest : bool
        Hartung–Knapp test (default on; ``-no_HKtest`` turns it off).
    mask : ndarray (n_voxels,), optional
        Voxels with |mask| <= 1e-16 get all-zero outputs.
    correct_dof : bool
        Apply the intended two-group DOF formula instead of AFNI's.
    chunk_size, n_jobs
        Voxels per block (default :func:`chunk_voxels`) and threads working on blocks (results
        do not depend on either).
    on_start, on_chunk
        Progress callbacks: number of chunks, then 1 per finished chunk.
    dtype
        Output type; float32 as 3dMEMA writes (float64 to compare with R's doubles).

    Returns
    -------
    MemaResult
    """
    betas = [np.asarray(b) for b in betas]
    tstats = [np.asarray(t) for t in tstats]
    n_vox = _validate_inputs(design, betas, tstats)
    for k, arr in enumerate([*betas, *tstats]):
        if not np.all(np.isfinite(arr)):
            kind = "betas" if k < len(betas) else "t-statistics"
            raise ValueError(f"set {k % len(betas) + 1} {kind} contain NaN or Inf values")
    candidates = np.arange(n_vox)
    if mask is not None:
        mask = np.asarray(mask).reshape(-1)
        if mask.shape[0] != n_vox:
            raise ValueError("Mask dimensions don't match the input files!")
        candidates = np.flatnonzero(np.abs(mask) > ZERO_TOL)
    if missing_data and zero_counts is None:
        zero_counts = np.stack([(b == 0).sum(axis=0) for b in betas])
    return mema_blocks(
        design,
        array_fetch(betas, tstats, candidates),
        candidates,
        n_vox,
        missing_data=missing_data,
        zero_counts=zero_counts,
        n_nonzero=n_nonzero,
        hktest=hktest,
        correct_dof=correct_dof,
        chunk_size=chunk_size or chunk_voxels(design.n_rows),
        n_jobs=n_jobs,
        on_chunk=on_chunk,
        on_start=on_start,
        dtype=dtype,
    )
