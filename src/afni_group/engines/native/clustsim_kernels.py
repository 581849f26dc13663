"""Compiled kernels for the native 3dClustSim: noise and all-thresholds clustering.

Noise (:func:`fill_noise`): complex white noise times the spectral weights, in one vectorised
pass. The random bits are counter-based (SplitMix64 of a per-pair key plus the k-space index),
so a volume pair depends only on the seed and its pair number — not on threads or chunking —
and Box–Muller turns each 64-bit draw into one complex N(0,1) value (float32 polynomial
logarithm, sine and cosine, accurate to float32 rounding).

Clustering:

The naive way to build the cluster-size tables labels every noise volume once per
(p, NN, sidedness) — 29 × 3 × 4 labellings per iteration with ``-both``. Here all thresholds of
one volume are handled in a single pass per connectivity: the suprathreshold voxels are visited in
decreasing order of value and merged into clusters with a union-find; every time the visit order
crosses a threshold the current largest cluster size is exactly the statistic for that threshold.
The three connectivities share the pass (one union-find each), and the voxels visited are only
those above the lowest threshold. Voxels are addressed in the grid padded by one voxel per side,
so the 26 neighbours are fixed index offsets (no neighbour table to load, no border tests).
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

#: Neighbour counts for NN1, NN2, NN3.
NEIGHBOUR_COUNTS = np.array([6, 18, 26], dtype=np.int64)


@njit(nogil=True, cache=True)
def _find(parent, nn, x):
    """Root of ``x`` in union-find row ``nn`` of ``parent``, with path compression."""
    root = x
    while parent[nn, root] != root:
        root = parent[nn, root]
    while parent[nn, x] != root:
        nxt = parent[nn, x]
        parent[nn, x] = root
        x = nxt
    return root


@njit(nogil=True, cache=True)
def descending_max_cluster_sizes(
    values, ordered, gindex, offsets, thresholds, slots, parent, size, stamp, stamp_value, out
):
    """Largest cluster size at every threshold, for NN1, NN2 and NN3, in one pass.

    Parameters
    ----------
    values : float32 array (n_mask,)
        Value used for ordering (the voxel value, its negative, or its absolute value).
    ordered : int array
        In-mask indices of the voxels above the lowest threshold, by decreasing value.
    gindex : int64 array (n_mask,)
        Index of each in-mask voxel in the grid padded by one voxel on every side
        (:func:`padded_grid_index`), so that neighbours are fixed offsets and the border needs
        no test.
    offsets : int64 array (26,)
        Padded-grid offsets of the neighbours, faces first, then edges, then corners.
    thresholds : float32 array
        Thresholds sorted in decreasing order; a voxel is in the set when ``value > threshold``.
    slots : int array
        Column of ``out`` that receives the result of each threshold.
    parent, size : int32 arrays (3, padded grid size)
        Work space (need no initialisation).
    stamp : int32 array (padded grid size,)
        Work space; a voxel is active in this pass when ``stamp[g] == stamp_value``.
    stamp_value : int
        A value not used in ``stamp`` before (one per pass), so nothing has to be cleared.
    out : int32 array (3, n_slots)
        Receives the largest cluster size per NN (rows) and slot.
    """
    n_thr = thresholds.size
    t = 0
    best = np.zeros(3, dtype=np.int64)
    roots = np.empty(3, dtype=np.int64)
    for q in range(ordered.size):
        m = ordered[q]
        v = values[m]
        # every voxel above thresholds[t] is already in: record before adding this one
        while t < n_thr and thresholds[t] >= v:
            for nn in range(3):
                out[nn, slots[t]] = best[nn]
            t += 1
        g = gindex[m]
        stamp[g] = stamp_value
        for nn in range(3):
            parent[nn, g] = g
            size[nn, g] = 1
            roots[nn] = g
        # one sweep over the 26 neighbours: faces feed NN1-3, edges NN2-3, corners NN3
        for k in range(26):
            nb = g + offsets[k]
            if stamp[nb] != stamp_value:
                continue
            first = 0 if k < 6 else (1 if k < 18 else 2)
            for nn in range(first, 3):
                root = roots[nn]
                r2 = _find(parent, nn, nb)
                if r2 != root:
                    if size[nn, r2] < size[nn, root]:
                        r2, root = root, r2
                    parent[nn, root] = r2
                    size[nn, r2] += size[nn, root]
                    roots[nn] = r2
        for nn in range(3):
            if size[nn, roots[nn]] > best[nn]:
                best[nn] = size[nn, roots[nn]]
    while t < n_thr:
        for nn in range(3):
            out[nn, slots[t]] = best[nn]
        t += 1


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


def volume_max_sizes(values, work, z1, z2, out_1sided, out_2sided, out_bi, stamp_base):
    """Largest cluster per NN and p for the 1-sided, 2-sided and bi-sided rules of one volume.

    ``z1``/``z2`` are the 1-sided and 2-sided thresholds (one per p, same order as the
    outputs); ``work`` supplies ``gindex``, ``offsets``, ``parent``, ``size``, ``stamp``.
    Outputs are int32 arrays (3, n_p), rows NN1, NN2, NN3. Three passes (stamps
    ``stamp_base`` .. ``stamp_base + 2``): positive values (1-sided at z1 and positive bi-sided
    at z2), negative values (bi-sided at z2), absolute values (2-sided at z2). The voxels are
    sorted here (numpy), the passes are compiled.
    """
    n_p = z1.size
    pos_thr = np.concatenate((z1, z2))
    pos_slots = np.argsort(-pos_thr, kind="mergesort")
    pos_sorted = pos_thr[pos_slots]
    z2_slots = np.argsort(-z2, kind="mergesort")
    z2_sorted = z2[z2_slots]
    pos_out = np.zeros((3, 2 * n_p), dtype=np.int32)
    neg_out = np.zeros((3, n_p), dtype=np.int32)
    passes = (
        (values, pos_sorted, pos_slots, pos_out),
        (-values, z2_sorted, z2_slots, neg_out),
        (np.abs(values), z2_sorted, z2_slots, out_2sided),
    )
    for k, (v, thr, slots, out) in enumerate(passes):
        cand = np.flatnonzero(v > thr[-1])
        ordered = cand[np.argsort(-v[cand])]
        descending_max_cluster_sizes(
            v, ordered, work.gindex, work.offsets, thr, slots, work.parent, work.size,
            work.stamp, stamp_base + k, out,
        )  # fmt: skip
    out_1sided[:] = pos_out[:, :n_p]
    np.maximum(pos_out[:, n_p:], neg_out, out=out_bi)
