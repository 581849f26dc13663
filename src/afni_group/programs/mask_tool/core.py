"""Native 3dmask_tool ``-frac``: the group mask on arrays (spec 04 §1).

Every sub-brick of every input is one volume; a voxel is kept (value 1, byte) when it is set in at
least ``ceil(frac · nvols)`` volumes (``frac <= 1``) or ``ceil(frac)`` volumes (``frac > 1``), and
at least one. Bad values raise ``ValueError``. Reading and writing the datasets is :mod:`.files`,
``afni-native 3dmask_tool``'s options :mod:`afni_group.programs.cli.mask_tool`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def binarize(volume: np.ndarray) -> np.ndarray:
    """Set voxels of one volume with 3dmask_tool's per-datum rules.

    byte: any non-zero value; short: non-zero except -32768; float: non-zero and within
    ±1e10 (NaN and ±Inf are not set). Other data types raise ``ValueError``.
    """
    v = np.asarray(volume)
    if v.dtype == np.uint8:
        return v != 0
    if v.dtype == np.int16:
        return (v != 0) & (v != -32768)
    if v.dtype == np.float32:
        with np.errstate(invalid="ignore"):
            return (v != 0) & (np.abs(v) <= np.float32(1e10))
    raise ValueError(f"invalid datum for mask input ({v.dtype}); use byte, short or float")


def count_limit(frac: float, n_volumes: int) -> int:
    """Minimum count for a voxel to survive: ceil(frac) if frac > 1, else ceil(nvols·frac), >= 1.

    The product is taken in single precision as AFNI does (matters at borderline fractions).
    """
    f = np.float32(frac)
    if f < 0:
        raise ValueError(f"have -frac < 0 ({frac}); use 0..1 (fraction) or > 1 (count)")
    value = f if f > 1 else np.float32(n_volumes) * f
    return max(int(math.ceil(float(value))), 1)


def count_volumes(volumes: Sequence[np.ndarray]) -> np.ndarray:
    """Number of volumes in which each voxel is set (int32, shape of the first volume)."""
    count = np.zeros(np.asarray(volumes[0]).shape, dtype=np.int32)
    for v in volumes:
        count += binarize(v).reshape(count.shape)
    return count


def group_mask(volumes: Sequence[np.ndarray], frac: float = 1.0, count: bool = False) -> np.ndarray:
    """Byte 0/1 mask of voxels set in at least :func:`count_limit` of the volumes.

    The array core of 3dmask_tool ``-frac``; ``ValueError`` for no volumes, a negative
    ``frac`` or a data type AFNI does not accept in masks. ``count`` (``-count``): those voxels
    keep how many volumes set them (byte; short above 255) instead of 1.
    """
    if not volumes:
        raise ValueError("no mask volumes given")
    counts = count_volumes(volumes)
    keep = (counts > 0) & (counts >= count_limit(frac, len(volumes)))
    if count:  # byte, 3dmask_tool's default datum, while the counts fit
        kept = np.where(keep, counts, 0)
        return kept.astype(np.uint8 if kept.max(initial=0) <= 255 else np.int16)
    return keep.astype(np.uint8)
