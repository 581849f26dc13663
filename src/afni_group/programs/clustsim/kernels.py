"""Compiled kernels for the native 3dClustSim: noise and all-thresholds clustering.

Noise (:func:`fill_noise`): complex white noise times the spectral weights, in one vectorised
pass. The random bits are counter-based (SplitMix64 of a per-pair key plus the k-space index),
so a volume pair depends only on the seed and its pair number — not on threads or chunking —
and Box–Muller turns each 64-bit draw into one complex N(0,1) value (float32 polynomial
logarithm, sine and cosine, accurate to float32 rounding).

Clustering (:class:`ClusterWork`):

The naive way to build the cluster-size tables labels every noise volume once per
(p, NN, sidedness) — 29 × 3 × 4 labellings per iteration with ``-both``. Here all thresholds of
one volume are handled in one pass per sign rule: the voxels above the lowest threshold are
grouped by how many thresholds they exceed (a counting sort, so within a group they stay in
grid order, which keeps the neighbour look-ups in cache) and added group by group, from the
highest threshold down, to a union-find per connectivity; after each group the largest cluster
so far is exactly the statistic for that threshold (the order within a group does not change
the clusters at the group's end). NN1, NN2 and NN3 share the pass. Voxels are addressed in the
grid padded by one voxel per side, so the 26 neighbours are fixed index offsets and the border
needs no test; "active" is a byte per padded voxel (small enough to stay in cache) and the
three parents of a voxel share one 16-byte row.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    """SplitMix64's finaliser on a Python int (for keys)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def pair_key(seed: int, pair: int) -> np.uint64:
    """Key of the random stream of volume pair ``pair`` under ``seed``."""
    return np.uint64(
        _mix64((_mix64((int(seed) + _GOLDEN) & _MASK64) + int(pair) * _GOLDEN) & _MASK64)
    )


@intrinsic
def _bits_of(typingctx, x):
    """float32 -> its IEEE bits (uint32)."""
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint32))

    return sig, codegen


@intrinsic
def _float_of(typingctx, x):
    """uint32 IEEE bits -> float32."""
    sig = types.float32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return sig, codegen


@njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def fill_noise(out, weights, key):
    """``out[2e], out[2e+1] = weights[e] * (g1, g2)``: complex N(0,1) noise times the weights.

    Parameters
    ----------
    out : float32 array (2 n,)
        Float view of the complex64 k-space buffer (real, imaginary interleaved).
    weights : float32 array (n,)
        Spectral weights, same (C) order.
    key : uint64
        From :func:`pair_key`; element e uses SplitMix64 state ``key + (e + 1)·golden``.

    Notes
    -----
    Box–Muller: the top 24 bits give the radius ``sqrt(-2 ln U)``, U = (a + ½)/2²⁴ (so the
    radius is capped at 5.9; P(R > 5.9) = 3e-8), the low 24 bits the angle (2 bits quadrant,
    22 bits within it). Branch-free so that LLVM vectorises the loop.
    """
    n = weights.size
    m1 = np.uint64(0xBF58476D1CE4E5B9)
    m2 = np.uint64(0x94D049BB133111EB)
    g = np.uint64(_GOLDEN)
    ln2 = np.float32(0.6931471805599453)
    sqrt2 = np.float32(1.4142135)
    quarter_turn = np.float32(1.5707963267948966)
    one = np.float32(1.0)
    for e in range(n):
        z = key + np.uint64(e + 1) * g
        z = (z ^ (z >> np.uint64(30))) * m1
        z = (z ^ (z >> np.uint64(27))) * m2
        z = z ^ (z >> np.uint64(31))
        a = np.uint32(z >> np.uint64(40))
        b = np.uint32(z & np.uint64(0xFFFFFF))
        # ln(a + 1/2): exponent from the bits, mantissa in [1/sqrt2, sqrt2) by atanh series
        bits = _bits_of(np.float32(a) + np.float32(0.5))
        expo = np.float32(np.int32(bits >> np.uint32(23)) - np.int32(127))
        mant = _float_of((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000))
        big = np.float32(mant > sqrt2)
        mant = mant * (one - np.float32(0.5) * big)
        s = (mant - one) / (mant + one)
        s2 = s * s
        poly = np.float32(1.0 / 9.0)
        poly = poly * s2 + np.float32(1.0 / 7.0)
        poly = poly * s2 + np.float32(1.0 / 5.0)
        poly = poly * s2 + np.float32(1.0 / 3.0)
        poly = poly * s2 + one
        log_u = (expo + big - np.float32(24.0)) * ln2 + np.float32(2.0) * s * poly
        radius = np.sqrt(np.float32(-2.0) * log_u) * weights[e]
        # angle: quadrant q, x in (-pi/4, pi/4)
        q = b >> np.uint32(22)
        x = (
            (np.float32(b & np.uint32(0x3FFFFF)) + np.float32(0.5)) * np.float32(1.0 / 4194304.0)
            - np.float32(0.5)
        ) * quarter_turn
        x2 = x * x
        sin_x = x * (
            one
            + x2
            * (
                np.float32(-1.0 / 6.0)
                + x2 * (np.float32(1.0 / 120.0) + x2 * np.float32(-1.0 / 5040.0))
            )
        )
        cos_x = one + x2 * (
            np.float32(-0.5)
            + x2
            * (
                np.float32(1.0 / 24.0)
                + x2 * (np.float32(-1.0 / 720.0) + x2 * np.float32(1.0 / 40320.0))
            )
        )
        odd = np.float32(q & np.uint32(1))
        sign = one - np.float32(2.0) * np.float32(q >> np.uint32(1))
        out[2 * e] = radius * (cos_x - odd * (cos_x + sin_x)) * sign
        out[2 * e + 1] = radius * (sin_x + odd * (cos_x - sin_x)) * sign


#: Neighbour offsets, faces first (NN1 = first 6), then edges (NN2 = first 18), then corners.
NEIGHBOUR_OFFSETS = (
    np.array(
        [o for o in np.ndindex(3, 3, 3) if sum(abs(d - 1) for d in o) == 1]
        + [o for o in np.ndindex(3, 3, 3) if sum(abs(d - 1) for d in o) == 2]
        + [o for o in np.ndindex(3, 3, 3) if sum(abs(d - 1) for d in o) == 3],
        dtype=np.int64,
    )
    - 1
)


@njit(nogil=True, cache=True, inline="always")
def _root(parent, col, x):
    """Root of ``x`` in union-find column ``col``, with path compression.

    ``parent[g, col]`` is the parent of voxel g, or minus the cluster size when g is a root.
    """
    r = x
    while parent[r, col] >= 0:
        r = parent[r, col]
    while x != r:
        nxt = parent[x, col]
        parent[x, col] = r
        x = nxt
    return r


@njit(nogil=True, cache=True, inline="always")
def _merge(parent, col, root, other):
    """Union (by size) of two different roots; returns the new root."""
    a = -parent[root, col]
    b = -parent[other, col]
    if a < b:
        parent[root, col] = other
        parent[other, col] = -(a + b)
        return other
    parent[other, col] = root
    parent[root, col] = -(a + b)
    return root


@njit(nogil=True, cache=True)
def threshold_pass(
    values,
    sign,
    gindex,
    offsets,
    thresholds,
    slots,
    parent,
    active,
    cand,
    level,
    starts,
    order,
    out,
):
    """Largest NN1, NN2 and NN3 cluster at every threshold of one sign rule, in one pass.

    Parameters
    ----------
    values : float32 array (n_mask,)
        In-mask voxel values.
    sign : int
        1: clusters of ``value > thr``; -1: of ``-value > thr``; 0: of ``|value| > thr``.
    gindex : int64 array (n_mask,)
        Index of each in-mask voxel in the grid padded by one voxel per side
        (:func:`padded_grid_index`).
    offsets : int64 array (26,)
        Padded-grid offsets of the neighbours, faces first, then edges, then corners.
    thresholds : float32 array
        In decreasing order; a voxel is in the set of threshold t when its value is > it.
    slots : int64 array
        Column of ``out`` that receives the result of each threshold.
    parent : int32 array (padded size, 4)
        Union-find work space, columns 0..2 for NN1..NN3 (needs no initialisation).
    active : uint8 array (padded size,)
        All zero on entry; left all zero.
    cand, order : int64 arrays (n_mask,); level : int32 array (n_mask,);
    starts : int64 array (len(thresholds) + 1,)
        Work space.
    out : int32 array (3, n_slots)
        Receives the largest cluster size per NN (rows) and slot.
    """
    n_thr = thresholds.size
    lowest = thresholds[n_thr - 1]
    starts[:] = 0
    n = 0
    for m in range(values.size):
        v = values[m]
        if sign < 0:
            v = -v
        elif sign == 0:
            v = abs(v)
        if v > lowest:
            t = n_thr - 1  # level: the highest threshold (smallest t) that v exceeds
            while t > 0 and thresholds[t - 1] < v:
                t -= 1
            cand[n] = m
            level[n] = t
            starts[t + 1] += 1
            n += 1
    for t in range(n_thr):
        starts[t + 1] += starts[t]
    for i in range(n):  # stable counting sort: grid order within a level
        t = level[i]
        order[starts[t]] = gindex[cand[i]]
        starts[t] += 1
    # starts[t] is now the end of level t
    b1 = 0
    b2 = 0
    b3 = 0
    roots = np.empty(3, dtype=np.int64)
    q = 0
    for t in range(n_thr):
        end = starts[t]
        while q < end:
            g = order[q]
            q += 1
            active[g] = 1
            parent[g, 0] = -1
            parent[g, 1] = -1
            parent[g, 2] = -1
            roots[0] = g
            roots[1] = g
            roots[2] = g
            # Connectivities nest (NN1 ⊂ NN2 ⊂ NN3): faces (k < 6) join all three, edges
            # (k < 18) NN2 and NN3, corners NN3. A neighbour already in g's NN-n cluster is
            # already in its larger-n clusters too, so the remaining finds are skipped.
            for k in range(26):
                nb = g + offsets[k]
                if not active[nb]:
                    continue
                for col in range(0 if k < 6 else (1 if k < 18 else 2), 3):
                    o = _root(parent, col, nb)
                    if o == roots[col]:
                        break
                    roots[col] = _merge(parent, col, roots[col], o)
            b1 = max(b1, -parent[roots[0], 0])
            b2 = max(b2, -parent[roots[1], 1])
            b3 = max(b3, -parent[roots[2], 2])
        out[0, slots[t]] = b1
        out[1, slots[t]] = b2
        out[2, slots[t]] = b3
    for i in range(n):
        active[order[i]] = 0


def padded_grid_index(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Padded-grid index of every in-mask voxel, the 26 neighbour offsets, the padded size.

    The grid is padded by one voxel per side, which is never in the mask: neighbours across
    the grid's edge are never active (no wrap-around).
    """
    mask = np.asarray(mask, dtype=bool)
    padded = np.array(mask.shape) + 2
    coords = np.array(np.nonzero(mask)) + 1
    gindex = np.ravel_multi_index(tuple(coords), tuple(padded)).astype(np.int64)
    strides = np.array([padded[1] * padded[2], padded[2], 1], dtype=np.int64)
    offsets = (NEIGHBOUR_OFFSETS @ strides).astype(np.int64)
    return gindex, offsets, int(np.prod(padded))


def _descending(thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds in decreasing order and the original position of each (stable)."""
    slots = np.argsort(-thresholds, kind="mergesort").astype(np.int64)
    return np.ascontiguousarray(thresholds[slots], dtype=np.float32), slots


class ClusterWork:
    """Largest cluster per sidedness, NN and p of noise volumes on one mask (one per thread).

    Parameters
    ----------
    mask : ndarray of bool (nx, ny, nz)
    z1, z2 : float32 arrays (n_p,)
        1-sided and 2-sided thresholds, one per p.
    """

    def __init__(self, mask: np.ndarray, z1: np.ndarray, z2: np.ndarray):
        self.gindex, self.offsets, n_padded = padded_grid_index(mask)
        n_mask = self.gindex.size
        z1 = np.asarray(z1, dtype=np.float32)
        z2 = np.asarray(z2, dtype=np.float32)
        self.n_p = z1.size
        # positive values: 1-sided at z1 (slots 0..n_p-1) and bi-sided positive at z2 (n_p..)
        self.pos = _descending(np.concatenate((z1, z2)))
        self.two = _descending(z2)
        self.parent = np.empty((n_padded, 4), dtype=np.int32)
        self.active = np.zeros(n_padded, dtype=np.uint8)
        self.cand = np.empty(n_mask, dtype=np.int64)
        self.order = np.empty(n_mask, dtype=np.int64)
        self.level = np.empty(n_mask, dtype=np.int32)
        self.starts = np.empty(2 * self.n_p + 1, dtype=np.int64)
        self.pos_out = np.zeros((3, 2 * self.n_p), dtype=np.int32)
        self.neg_out = np.zeros((3, self.n_p), dtype=np.int32)

    def max_sizes(self, values: np.ndarray, out: np.ndarray) -> None:
        """Fill ``out`` (int32, shape (3 sidedness, 3 NN, n_p)) for one volume's in-mask values.

        Sidedness rows: 1-sided (``value > z1``), 2-sided (``|value| > z2``, signs merge) and
        bi-sided (the larger of the ``value > z2`` and ``value < -z2`` clusters).
        """
        volume_max_sizes(
            np.ascontiguousarray(values, dtype=np.float32), self.gindex, self.offsets,
            self.pos[0], self.pos[1], self.two[0], self.two[1], self.parent, self.active,
            self.cand, self.level, self.starts, self.order, self.pos_out, self.neg_out, out,
        )  # fmt: skip


@njit(nogil=True, cache=True)
def volume_max_sizes(
    values, gindex, offsets, pos_thr, pos_slots, two_thr, two_slots, parent, active, cand,
    level, starts, order, pos_out, neg_out, out,
):  # fmt: skip
    """The three sign rules of :meth:`ClusterWork.max_sizes` in one compiled call."""
    n_p = out.shape[2]
    threshold_pass(
        values, 1, gindex, offsets, pos_thr, pos_slots, parent, active, cand, level,
        starts[: pos_thr.size + 1], order, pos_out,
    )  # fmt: skip
    threshold_pass(
        values, -1, gindex, offsets, two_thr, two_slots, parent, active, cand, level,
        starts[: two_thr.size + 1], order, neg_out,
    )  # fmt: skip
    threshold_pass(
        values, 0, gindex, offsets, two_thr, two_slots, parent, active, cand, level,
        starts[: two_thr.size + 1], order, out[1],
    )  # fmt: skip
    for nn in range(3):
        for i in range(n_p):
            out[0, nn, i] = pos_out[nn, i]
            out[2, nn, i] = max(pos_out[nn, n_p + i], neg_out[nn, i])


@njit(nogil=True, cache=True)
def gather_scaled(volume, use_imag, mask_index):
    """Unit-RMS scale a complex-pair volume's real or imaginary part and gather the mask voxels.

    The scale ``sqrt(nxyz / sum(v**2))`` is computed over every voxel of the (cropped) grid, as
    3dClustSim does, then applied to the in-mask voxels only (the others are never used).
    """
    flat = volume.ravel()
    total = 0.0
    if use_imag:
        for i in range(flat.size):
            x = flat[i].imag
            total += x * x
    else:
        for i in range(flat.size):
            x = flat[i].real
            total += x * x
    scale = np.float32(np.sqrt(flat.size / total)) if total > 0 else np.float32(0.0)
    out = np.empty(mask_index.size, dtype=np.float32)
    for i in range(mask_index.size):
        z = flat[mask_index[i]]
        out[i] = (z.imag if use_imag else z.real) * scale
    return out
