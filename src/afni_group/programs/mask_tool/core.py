"""Native 3dmask_tool ``-frac``: the group mask (spec 04 §1).

Every sub-brick of every input is one volume; a voxel is kept (value 1, byte) when it is set in at
least ``ceil(frac · nvols)`` volumes (``frac <= 1``) or ``ceil(frac)`` volumes (``frac > 1``), and
at least one. The output is one sub-brick on the first input's grid and header. Inputs are combined
by linear voxel index: a different voxel count is an error, a different grid only a warning.
"""

from __future__ import annotations

import logging
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from afni_group import afni_io
from afni_group.errors import InputDataError, MissingInputError, UsageError

LOG = logging.getLogger(__name__)

DEFAULT_PREFIX = "combined_mask"


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


def group_mask(volumes: Sequence[np.ndarray], frac: float = 1.0) -> np.ndarray:
    """Byte 0/1 mask of voxels set in at least :func:`count_limit` of the volumes.

    The array core of 3dmask_tool ``-frac``; ``ValueError`` for no volumes, a negative
    ``frac`` or a data type AFNI does not accept in masks.
    """
    if not volumes:
        raise ValueError("no mask volumes given")
    count = count_volumes(volumes)
    limit = count_limit(frac, len(volumes))
    return ((count > 0) & (count >= limit)).astype(np.uint8)


def _grid_matches(a: afni_io.AfniDataset, b: afni_io.AfniDataset) -> bool:
    """AFNI's equivalence: same dims, origins within 0.01 mm, deltas within 0.001 mm, same axes."""
    if a.shape != b.shape:
        return False
    oa, ga, da = afni_io.afni_geometry(a.affine)
    ob, gb, db = afni_io.afni_geometry(b.affine)
    return (
        list(oa) == list(ob)
        and np.allclose(ga, gb, atol=0.01, rtol=0)
        and np.allclose(da, db, atol=0.001, rtol=0)
    )


def make_group_mask(
    inputs: list[str | Path],
    prefix: str | Path,
    frac: float = 1.0,
    *,
    command_line: str | None = None,
    verbose: bool = False,
) -> Path:
    """Write the group mask of ``inputs`` to ``prefix`` (as ``3dmask_tool -frac``) and return it.

    Parameters
    ----------
    inputs : list of path
        Mask datasets (HEAD/BRIK or NIfTI); every sub-brick counts as one volume.
    prefix : path
        Output dataset (``mask.nii.gz``, or ``name+tlrc`` for HEAD/BRIK). Replaced if present.
    frac : float
        Fraction of volumes (0..1, 1.0 = intersection) or, above 1, an absolute count.
    command_line : str, optional
        Text appended to the history; default the equivalent 3dmask_tool command.
    verbose : bool
        Print AFNI's ``++`` INFO lines on stderr.

    Returns
    -------
    Path
        The written file.
    """
    if not inputs:
        raise UsageError("missing -input dataset list")
    if frac < 0:
        raise UsageError(f"have -frac < 0 ({frac}); use 0..1 (fraction) or > 1 (count)")
    dsets = []
    for spec in inputs:
        try:
            dsets.append(afni_io.read_dataset(spec))
        except MissingInputError as err:
            raise MissingInputError(f"failed to open mask dataset '{spec}': {err}") from err
    first = dsets[0]
    nvox = int(np.prod(first.shape))
    volumes = []
    for spec, d in zip(inputs, dsets, strict=True):
        if int(np.prod(d.shape)) != nvox:
            raise InputDataError(
                f"nvoxel mismatch: {spec} has {int(np.prod(d.shape))} voxels but {inputs[0]} "
                f"has {nvox}; all masks must be on the same grid"
            )
        if d is not first and not _grid_matches(first, d):
            LOG.warning(
                "*+ WARNING: grid from dset %s does not match that of dset %s", spec, inputs[0]
            )
        for b in range(d.nvals):
            # combined by linear voxel index (AFNI order, i fastest), never resampled
            volumes.append(np.asarray(d.data[..., b]).reshape(-1, order="F"))
    try:
        out = group_mask(volumes, frac).reshape(first.shape, order="F")
    except ValueError as err:
        raise InputDataError(f"mask inputs: {err}") from None
    if verbose:
        count = count_volumes(volumes)
        limit = count_limit(frac, len(volumes))
        zero = int((count == 0).sum())
        survived = int(out.sum())
        print(
            f"++ have {len(volumes)} volumes of input to combine\n"
            f"++ frac {frac:g} over {len(volumes)} volumes gives min count {limit}\n"
            f"++ voxel limits: {nvox - zero - survived} clipped, {survived} survived, "
            f"{zero} were zero",
            file=sys.stderr,
        )
    if command_line is None:
        words = ["3dmask_tool", "-prefix", str(prefix), "-input", *map(str, inputs)]
        command_line = shlex.join(words + ["-frac", f"{frac:g}"])
    result = afni_io.AfniDataset(
        data=out[..., np.newaxis],
        affine=first.affine,
        labels=[first.labels[0]],
        stat_codes=[first.stat_codes[0]],
        stat_params=[first.stat_params[0]],
        space=first.space,
        view=first.view,
        history=first.history,
    )
    # the output is an empty copy of the first input: same type string and func type
    extra: dict = {}
    typestring = first.attributes.get("TYPESTRING")
    if typestring:
        extra["TYPESTRING"] = str(typestring).rstrip("\0")
    scene = first.attributes.get("SCENE_DATA")
    if scene is not None:
        extra["SCENE_DATA"] = list(np.atleast_1d(scene))
    return afni_io.write_dataset(
        result, prefix, history=afni_io.history_entry(command_line), attributes=extra
    )
