"""The sign flips and permutations of ``3dttest++ -Clustsim``, exactly as AFNI draws them.

Each ``-Clustsim`` job p runs ``3dttest++ -RANDOMSIGN nper`` on the residuals with seeds
``(S1 + 1111151·p, S2 + 1111151·p)`` (spec 08 §6.3–§6.4). Two POSIX ``nrand48`` streams give,
per iteration, a sign flip per subject (at least 15 % and at most 85 % of each set flipped)
and, for unpaired pooled two-sample designs, a permutation of the subjects across the two
sets. Flips and permutations act on the residuals *in place*, so they accumulate over the
iterations.

:func:`job_schedule` replays one job's draws and returns, per iteration, which original
residual and which sign sits in each position (``index``, ``sign``), and the permutation drawn
in that iteration (``permutation``; AFNI applies it, not the accumulated one, to the covariate
columns). :func:`exact_null_z` is the reference the fast route of :mod:`.clustsim` is tested
against: AFNI's float32 per-voxel tests on the transformed residuals, giving the z values of
AFNI's ``.sdat`` null volumes bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from afni_group.programs.ttest import core

#: nrand48's multiplier and increment, and its 48-bit state mask (POSIX)
_A48 = np.uint64(0x5DEECE66D)
_C48 = np.uint64(0xB)
_MASK48 = np.uint64((1 << 48) - 1)
#: seed step between the jobs of one -Clustsim run
JOB_SEED_STEP = 1111151
#: default second seed offset (S2 = S1 + this)
SEED2_OFFSET = 314159265
#: null z values are stored as int16 in units of this (AFNI's .sdat)
SDAT_SCALE = np.float32(0.0002)


def nrand48_state(seed: int) -> int:
    """48-bit nrand48 state from a 32-bit seed, as 3dttest++'s ``SET_XRAN`` sets it."""
    seed = int(seed) & 0xFFFFFFFF
    w0, w1 = seed >> 16, seed & 0xFFFF
    w2 = (w0 + w1 + 17) & 0xFFFF
    return w0 | (w1 << 16) | (w2 << 32)


def job_seeds(seed1: int, seed2: int | None, job: int) -> tuple[int, int]:
    """Seeds of job ``job``: ``(S1 + 1111151·job, S2 + 1111151·job)`` mod 2³²."""
    s2 = (int(seed1) + SEED2_OFFSET) if seed2 is None else int(seed2)
    step = JOB_SEED_STEP * int(job)
    return (int(seed1) + step) & 0xFFFFFFFF, (s2 + step) & 0xFFFFFFFF


def min_flips(n: int) -> int:
    """``max(1, rintf(0.15f·n))``: fewest (and n minus the most) subjects flipped per step."""
    return max(1, int(np.rint(np.float32(0.15) * np.float32(n))))


@njit(cache=True, inline="always")
def _next(state):
    """One nrand48 step: returns the top 31 bits of the new 48-bit state."""
    state[0] = (state[0] * _A48 + _C48) & _MASK48
    return np.int64(state[0] >> np.uint64(17))


@njit(cache=True)
def _draw_flips(state, flips, start, n, nb):
    """Redraw n flip bits into flips[start:start+n] until nb <= count <= n - nb."""
    while True:
        count = 0
        for j in range(n):
            f = (_next(state) >> 3) % 2
            flips[start + j] = f
            count += f
        if nb <= count <= n - nb:
            return


@njit(cache=True)
def _schedule(n_a, n_b, nb_a, nb_b, rs, pm, permute, sign, index, perm_out):
    n = n_a + n_b
    cur_sign = np.ones(n, dtype=np.int8)
    cur_index = np.arange(n).astype(np.int32)
    flips = np.zeros(n, dtype=np.int64)
    p = np.empty(n, dtype=np.int32)
    for it in range(sign.shape[0]):
        _draw_flips(rs, flips, 0, n_a, nb_a)
        if n_b > 0:
            _draw_flips(rs, flips, n_a, n_b, nb_b)
        if permute:
            t = _next(pm) % n
            for i in range(n):
                p[i] = (i + t) % n
            for i in range(n - 1):
                j = (_next(pm) >> 3) % (n - i)
                if j > 0:
                    tmp = p[i]
                    p[i] = p[i + j]
                    p[i + j] = tmp
            new_sign = cur_sign[p]
            new_index = cur_index[p]
            cur_sign[:] = new_sign
            cur_index[:] = new_index
            perm_out[it] = p
        for j in range(n):
            if flips[j]:
                cur_sign[j] = -cur_sign[j]
        sign[it] = cur_sign
        index[it] = cur_index


@dataclass
class Schedule:
    """One job's randomisations.

    Attributes
    ----------
    sign : int8 array (n_iter, n_a + n_b)
        ±1: the sign of the residual in each position after the iteration's flips.
    index : int32 array (n_iter, n_a + n_b)
        Which original residual (setA's first, then setB's) sits in each position; positions
        0..n_a-1 are setA.
    permutation : int32 array (n_iter, n_a + n_b) or None
        The permutation drawn in each iteration (None when not permuting).
    """

    sign: np.ndarray
    index: np.ndarray
    permutation: np.ndarray | None


def job_schedule(
    n_a: int, n_b: int, iterations: int, seeds: tuple[int, int], permute: bool
) -> Schedule:
    """Replay one ``-RANDOMSIGN`` job's flips (and permutations) from its two seeds."""
    n = n_a + n_b
    sign = np.empty((iterations, n), dtype=np.int8)
    index = np.empty((iterations, n), dtype=np.int32)
    perm = np.empty((iterations if permute else 0, n), dtype=np.int32)
    rs = np.array([nrand48_state(seeds[0])], dtype=np.uint64)
    pm = np.array([nrand48_state(seeds[1])], dtype=np.uint64)
    _schedule(n_a, n_b, min_flips(n_a), min_flips(n_b) if n_b else 0, rs, pm, bool(permute),
              sign, index, perm)  # fmt: skip
    return Schedule(sign, index, perm if permute else None)


def permutes(design: core.TTestDesign) -> bool:
    """AFNI's default: permute subjects across the sets for unpaired pooled designs only."""
    return design.kind == "pooled"


def shortize(z: np.ndarray) -> np.ndarray:
    """AFNI's ``SHORTIZE(z / 0.0002f)``: int16 = rint (half to even), clipped to ±32767."""
    q = np.asarray(z, dtype=np.float32) / SDAT_SCALE
    return np.clip(np.rint(q), -32767, 32767).astype(np.int16)


def exact_null_z(residuals: np.ndarray, design: core.TTestDesign, schedule: Schedule) -> np.ndarray:
    """z of every iteration as AFNI's job computes it (float32, voxel by voxel).

    Parameters
    ----------
    residuals : float32 array (n_a + n_b, n_voxels)
        The main run's residuals at the voxels to simulate (setA's, then setB's).
    design : TTestDesign
        The main run's design (its covariates, if any, are permuted with each iteration's
        permutation and re-centred, as the job does).
    schedule : Schedule

    Returns
    -------
    float32 array (n_iter, n_voxels)
        The A-B (or setA) z of each iteration; 0 where a set is constant.
    """
    res = np.asarray(residuals, dtype=np.float32)
    n_a = design.n_a
    out = np.empty((schedule.sign.shape[0], res.shape[1]), dtype=np.float32)
    for it in range(out.shape[0]):
        cur = res[schedule.index[it]] * schedule.sign[it][:, None].astype(np.float32)
        a = cur[:n_a]
        b = cur[n_a:] if design.two_sample else None
        perm = None if schedule.permutation is None else schedule.permutation[it]
        tests, _ = core.design_tests(design, a, b, perm, first_only=True)
        _, t, dof = tests[0]
        z = core.t2z(t, dof)
        z[core.constant_voxels(a, b)] = 0.0
        out[it] = z
    return out
