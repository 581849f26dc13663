"""Native 3dmask_tool ``-frac`` on files: read the masks, combine them, write the group mask.

The output is one sub-brick on the first input's grid and header. Inputs are combined by linear
voxel index: a different voxel count is an error, a different grid only a warning. The counting
is :mod:`.core`; ``afni-native 3dmask_tool``'s options are parsed in
:mod:`afni_group.programs.cli.mask_tool`.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import numpy as np

from afni_group import afni_io
from afni_group.errors import InputDataError, MissingInputError, UsageError
from afni_group.programs.mask_tool.core import count_limit, count_volumes, group_mask

LOG = logging.getLogger(__name__)

DEFAULT_PREFIX = "combined_mask"


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
    count: bool = False,
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
    count : bool
        ``-count``: each kept voxel holds the number of volumes that set it, e.g. with
        ``frac=0`` how many subject masks cover each voxel.

    Returns
    -------
    Path
        The written file.
    """
    if not inputs:
        raise UsageError("missing -input dataset list")
    if frac < 0:
        raise UsageError(f"have -frac < 0 ({frac}); use 0..1 (fraction) or > 1 (count)")
    first, volumes = _read_volumes(inputs)
    try:
        out = group_mask(volumes, frac, count).reshape(first.shape, order="F")
    except ValueError as err:
        raise InputDataError(f"mask inputs: {err}") from None
    if verbose:
        counts = count_volumes(volumes)
        limit = count_limit(frac, len(volumes))
        zero, survived = int((counts == 0).sum()), int((out > 0).sum())
        print(
            f"++ have {len(volumes)} volumes of input to combine\n"
            f"++ frac {frac:g} over {len(volumes)} volumes gives min count {limit}\n"
            f"++ voxel limits: {out.size - zero - survived} clipped, {survived} survived, "
            f"{zero} were zero",
            file=sys.stderr,
        )
    if command_line is None:
        words = ["3dmask_tool", "-prefix", str(prefix), "-input", *map(str, inputs)]
        command_line = shlex.join(words + ["-frac", f"{frac:g}"] + (["-count"] if count else []))
    return _write_like(first, out, prefix, command_line)


def _read_volumes(inputs: list[str | Path]) -> tuple[afni_io.AfniDataset, list[np.ndarray]]:
    """The first input, and every sub-brick of every input flattened in AFNI's voxel order."""
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
    return first, volumes


def _write_like(
    first: afni_io.AfniDataset, mask: np.ndarray, prefix: str | Path, command_line: str
) -> Path:
    """Write ``mask`` as an empty copy of the first input (same header, type string, func type)."""
    result = afni_io.AfniDataset(
        data=mask[..., np.newaxis],
        affine=first.affine,
        labels=[first.labels[0]],
        stat_codes=[first.stat_codes[0]],
        stat_params=[first.stat_params[0]],
        space=first.space,
        view=first.view,
        history=first.history,
    )
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
