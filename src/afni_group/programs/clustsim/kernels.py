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
from numba.cpython.unsafe.numbers import trailing_zeros
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

    ``parent[i, col]`` is the parent of candidate i, or minus the cluster size when i is a root.
    """
    r = parent[x, col]
    if r < 0:
        return x
    if parent[r, col] < 0:  # the usual case after path compression: no loop to mispredict
        return r
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


@njit(nogil=True, cache=True, inline="always")
def _link(parent, first, last, roots, other):
    """Join candidate ``other`` to the clusters in ``roots[first:last]`` (nested NN columns).

    Connectivities nest (NN1 ⊂ NN2 ⊂ NN3): a neighbour already in the voxel's NN-n cluster is
    in its larger-n clusters too, so the remaining finds are skipped. Returns the first column
    where ``other`` was already in the voxel's cluster (``last`` if none).
    """
    for col in range(first, last):
        o = _root(parent, col, other)
        if o == roots[col]:
            return col
        roots[col] = _merge(parent, col, roots[col], o)
    return last


@njit(nogil=True, cache=True)
def volume_max_sizes(
    values, gindex, offsets, thr, kind, slot, floor_two, idmap, parent, code, level, starts,
    order, roots, out,
):  # fmt: skip
    """Largest cluster of one volume for every sidedness, NN and threshold, in one pass.

    Parameters
    ----------
    values : float32 array (n_mask,)
        In-mask voxel values.
    gindex : int64 array (n_mask,)
        Index of each in-mask voxel in the grid padded by one voxel per side
        (:func:`padded_grid_index`).
    offsets : int64 array (26,)
        Padded-grid offsets of the neighbours, faces first, then edges, then corners.
    thr : float32 array (n_levels,)
        Every 1-sided and 2-sided threshold, in decreasing order; a voxel is in the set of
        threshold t when its value (its absolute value) is > t.
    kind, slot : int64 arrays (n_levels,)
        Per threshold: 0 for a 1-sided one, 1 for a 2-sided one; and its p column of ``out``.
    floor_two : float32
        The lowest 2-sided threshold: negative voxels and the 2-sided clusters start there.
    idmap : int32 array (padded size,)
        All zero on entry; left all zero (work space: candidate number + 1, negated for
        negative voxels, of the active voxels).
    parent : int32 array (n_mask, 8)
        Union-find work space (needs no initialisation).
    code, order : int64 arrays (n_mask,); level : int32 array (n_mask,);
    starts : int64 array (n_levels + 1,); roots : int64 array (6,)
        Work space.
    out : int32 array (3, 3, n_p)
        Receives the largest cluster size per sidedness (1-sided, 2-sided, bi-sided), NN, p.

    Notes
    -----
    The voxels above the lowest threshold (positive) or below minus the lowest 2-sided one
    (negative) are grouped by the highest threshold their absolute value exceeds — a counting
    sort, so within a group they stay in grid order, which keeps the neighbour look-ups in
    cache — and added group by group, from the highest threshold down, to two union-finds per
    connectivity: one that joins only voxels of one sign (its positive clusters are the
    1-sided ones, its largest cluster of either sign the bi-sided one) and one that joins
    every voxel above the 2-sided floor (the 2-sided clusters). After each group the largest
    clusters so far are exactly the statistics of that threshold (the order within a group
    does not change the clusters at the group's end). At a 2-sided threshold every active
    voxel is above the floor, so the second union-find is exact there. Union-find rows are
    indexed by the order of addition: the few thousand active voxels' rows stay in cache.
    """
    n_thr = thr.size
    lowest = thr[n_thr - 1]
    # candidates, branch-free (compaction by a conditional count): m, or -m-1 when negative
    n = 0
    size = values.size
    for m0 in range(0, size, 16):
        m1 = min(m0 + 16, size)
        hit = False
        for m in range(m0, m1):  # most blocks of 16 hold no candidate: one vector test
            hit |= (values[m] > lowest) | (-values[m] > floor_two)
        if not hit:
            continue
        for m in range(m0, m1):
            v = values[m]
            above = v > lowest
            below = -v > floor_two
            code[n] = m if above else -m - 1
            n += above | below
    starts[:] = 0
    for i in range(n):
        c = code[i]
        v = abs(values[c if c >= 0 else -c - 1])
        t = 0  # level: the highest threshold that |v| exceeds = how many are >= |v|
        for j in range(n_thr):
            t += thr[j] >= v
        level[i] = t
        starts[t + 1] += 1
    for t in range(n_thr):
        starts[t + 1] += starts[t]
    for i in range(n):  # stable counting sort: grid order within a level
        t = level[i]
        order[starts[t]] = code[i]
        starts[t] += 1
    # starts[t] is now the end of level t
    b_pos = np.zeros(3, dtype=np.int64)
    b_neg = np.zeros(3, dtype=np.int64)
    b_two = np.zeros(3, dtype=np.int64)
    q = 0
    for t in range(n_thr):
        end = starts[t]
        while q < end:
            c = order[q]
            positive = c >= 0
            m = c if positive else -c - 1
            g = gindex[m]
            two = abs(values[m]) > floor_two
            idmap[g] = q + 1 if positive else -q - 1
            for col in range(6):
                parent[q, col] = -1
                roots[col] = q
            # which neighbours are active, without a branch per neighbour (they mispredict)
            near = 0
            for k in range(26):
                near |= np.int64(idmap[g + offsets[k]] != 0) << k
            while near:
                k = trailing_zeros(near)
                near &= near - 1
                other = idmap[g + offsets[k]]
                first = 0 if k < 6 else (1 if k < 18 else 2)
                last = 3
                if (other > 0) == positive:
                    # a neighbour already in the voxel's one-sign cluster is in its 2-sided
                    # cluster too (while the voxel is above the 2-sided floor, every link made
                    # so far was made in both union-finds)
                    last = _link(parent, first, 3, roots, abs(other) - 1)
                if two:
                    _link(parent, first + 3, last + 3, roots, abs(other) - 1)
            best = b_pos if positive else b_neg
            for nn in range(3):
                best[nn] = max(best[nn], -parent[roots[nn], nn])
                if two:
                    b_two[nn] = max(b_two[nn], -parent[roots[nn + 3], nn + 3])
            q += 1
        p = slot[t]
        for nn in range(3):
            if kind[t] == 0:
                out[0, nn, p] = b_pos[nn]
            else:
                out[1, nn, p] = b_two[nn]
                out[2, nn, p] = max(b_pos[nn], b_neg[nn])
    for i in range(n):
        c = order[i]
        idmap[gindex[c if c >= 0 else -c - 1]] = 0


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
        z1 = np.asarray(z1, dtype=np.float32).ravel()
        z2 = np.asarray(z2, dtype=np.float32).ravel()
        if z1.size != z2.size or z1.size == 0:
            raise ValueError("need the same number (> 0) of 1-sided and 2-sided thresholds")
        self.n_p = z1.size
        both = np.concatenate((z1, z2))
        # decreasing order; stable, so that equal thresholds keep a fixed order
        rank = np.argsort(-both, kind="mergesort")
        self.thr = np.ascontiguousarray(both[rank])
        self.kind = (rank >= self.n_p).astype(np.int64)
        self.slot = (rank % self.n_p).astype(np.int64)
        self.floor_two = np.float32(z2.min())
        self.idmap = np.zeros(n_padded, dtype=np.int32)
        self.parent = np.empty((n_mask, 8), dtype=np.int32)
        self.code = np.empty(n_mask, dtype=np.int64)  # written one past the candidates
        self.order = np.empty(n_mask, dtype=np.int64)
        self.level = np.empty(n_mask, dtype=np.int32)
        self.starts = np.empty(self.thr.size + 1, dtype=np.int64)
        self.roots = np.empty(6, dtype=np.int64)

    def max_sizes(self, values: np.ndarray, out: np.ndarray) -> None:
        """Fill ``out`` (int32, shape (3 sidedness, 3 NN, n_p)) for one volume's in-mask values.

        Sidedness rows: 1-sided (``value > z1``), 2-sided (``|value| > z2``, signs merge) and
        bi-sided (the larger of the ``value > z2`` and ``value < -z2`` clusters).
        """
        volume_max_sizes(
            np.ascontiguousarray(values, dtype=np.float32), self.gindex, self.offsets,
            self.thr, self.kind, self.slot, self.floor_two, self.idmap, self.parent, self.code,
            self.level, self.starts, self.order, self.roots, out,
        )  # fmt: skip


@njit(nogil=True, cache=True)
def gather_pair(volume, in_mask, out):
    """Unit-RMS scale both parts of a complex-pair volume and gather the mask voxels.

    Parameters
    ----------
    volume : complex64 array (nx, ny, nz), any strides
        The cropped noise pair.
    in_mask : bool array (nx * ny * nz,)
        The mask in C order.
    out : float32 array (2, n_mask)
        Receives the scaled real (row 0) and imaginary (row 1) parts of the in-mask voxels.

    Notes
    -----
    The scale ``sqrt(nxyz / sum(v**2))`` is computed over every voxel of the grid, as
    3dClustSim does, then applied to the in-mask voxels only (the others are never used). The
    two sums are accumulated in C order, one term at a time (float32 squares into a float64
    total), in one loop: two independent chains of additions run side by side.
    """
    nx, ny, nz = volume.shape
    total_re = 0.0
    total_im = 0.0
    flat = 0
    m = 0
    for i in range(nx):
        for j in range(ny):
            for k in range(nz):
                z = volume[i, j, k]
                a = z.real
                b = z.imag
                total_re += a * a
                total_im += b * b
                if in_mask[flat]:
                    out[0, m] = a
                    out[1, m] = b
                    m += 1
                flat += 1
    size = nx * ny * nz
    scale_re = np.float32(np.sqrt(size / total_re)) if total_re > 0 else np.float32(0.0)
    scale_im = np.float32(np.sqrt(size / total_im)) if total_im > 0 else np.float32(0.0)
    for i in range(m):
        out[0, i] = out[0, i] * scale_re
        out[1, i] = out[1, i] * scale_im


def gather_scaled(volume: np.ndarray, use_imag: bool, mask_index: np.ndarray) -> np.ndarray:
    """Unit-RMS scaled real or imaginary part of a complex-pair volume at ``mask_index``.

    ``mask_index``: flat (C-order) indices into ``volume``, increasing (see
    :func:`gather_pair`).
    """
    in_mask = np.zeros(volume.size, dtype=bool)
    in_mask[mask_index] = True
    out = np.empty((2, int(np.count_nonzero(in_mask))), dtype=np.float32)
    gather_pair(volume, in_mask, out)
    return out[int(bool(use_imag))]
