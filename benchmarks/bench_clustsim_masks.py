"""Masks for the 3dClustSim benchmarks (run by hand; imported by the other bench_clustsim_* scripts).

* ``brain25``: a brain-shaped mask of 79,514 voxels on a 64x77x60 grid of 2.5 mm voxels (the size
  of the real 2.5 mm mask of issue 12, which is not in this repository): the demo's cerebrum +
  cerebellum ellipsoids, scaled to that voxel count, with a smooth random boundary.
* ``brain20``: the same shape, 230,000 voxels on the 91x109x91 grid of 2 mm voxels (MNI-sized
  whole-brain mask at 2 mm, about the voxel count of a 2 mm template brain mask).
* ``demo3mm``: the group mask (3dmask_tool -frac 1.0) of ``afni-group-demo DIR --grid 3mm
  --subjects 8`` on its 53x64x50 grid of 3 mm voxels (made with the native engine).

usage: python benchmarks/bench_clustsim_masks.py OUTDIR   (writes OUTDIR/brain25.nii.gz,
       OUTDIR/brain20.nii.gz and OUTDIR/demo3mm.nii.gz; the demo dataset goes to OUTDIR/demo8)
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from afni_group.demo import noise as demo_noise
from afni_group.demo import truth as demo_truth
from afni_group.demo import writing as demo_writing

BRAIN25_VOXELS = 79514
BRAIN25_GRID = demo_truth.Grid("2.5mm", (64, 77, 60), 2.5, (-78.0, -75.0, -63.0))
BRAIN20_VOXELS = 230000
BRAIN20_GRID = demo_truth.Grid("2mm", (91, 109, 91), 2.0, (-90.0, -90.0, -72.0))


def brain_mask(grid: demo_truth.Grid = BRAIN25_GRID, count: int = BRAIN25_VOXELS) -> np.ndarray:
    """Brain-shaped mask of exactly ``count`` voxels on ``grid`` (deterministic)."""
    rng = np.random.default_rng(20261201)
    coords = grid.mni_coords()
    edge = demo_noise.smooth_noise(rng, grid.shape, grid.voxel_mm, (1.0, 12.0, 1.0), 1)[0]
    lo, hi = 0.5, 1.5
    for _ in range(60):  # bisection on the brain scale for the voxel count
        scale = 0.5 * (lo + hi)
        level = demo_noise.brain_level(coords, scale=scale) + demo_noise.EDGE_PERTURBATION * edge
        n = int((level < 1.0).sum())
        if n == count:
            break
        lo, hi = (scale, hi) if n < count else (lo, scale)
    level = demo_noise.brain_level(coords, scale=scale) + demo_noise.EDGE_PERTURBATION * edge
    mask = level < 1.0
    if int(mask.sum()) != count:  # drop/add boundary voxels to hit the count exactly
        order = np.argsort(level, axis=None)
        mask = np.zeros(mask.size, bool)
        mask[order[:count]] = True
        mask = mask.reshape(grid.shape)
    return mask


def write_mask(mask: np.ndarray, grid: demo_truth.Grid, path: Path) -> Path:
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), grid.affine), str(path))
    return path


def demo3mm_mask(outdir: Path) -> Path:
    """Group mask of the 8-subject 3 mm demo (made once, then reused)."""
    from afni_group.programs.mask_tool import files as mask_tool

    target = outdir / "demo3mm.nii.gz"
    if target.exists():
        return target
    data = outdir / "demo8"
    if not data.exists():
        demo_writing.write_demo(data, n_subjects=8, seed=0, grid="3mm")
    masks = sorted(data.glob("derivatives/afni/sub-*/sub-*.results/mask_epi_anat.*+tlrc.HEAD"))
    mask_tool.make_group_mask([str(m) for m in masks], target, frac=1.0)
    return target


def masks(outdir: Path) -> dict[str, Path]:
    """The benchmark masks, made in ``outdir`` if missing."""
    outdir.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, grid, count in (("brain25", BRAIN25_GRID, BRAIN25_VOXELS),
                              ("brain20", BRAIN20_GRID, BRAIN20_VOXELS)):  # fmt: skip
        made[name] = outdir / f"{name}.nii.gz"
        if not made[name].exists():
            write_mask(brain_mask(grid, count), grid, made[name])
    return {**made, "demo3mm": demo3mm_mask(outdir)}


if __name__ == "__main__":
    for name, path in masks(Path(sys.argv[1] if len(sys.argv) > 1 else "bench-masks")).items():
        img = nib.load(str(path))
        n = int((np.asanyarray(img.dataobj) != 0).sum())
        print(f"{name}: {path} {img.shape} {img.header.get_zooms()[:3]} {n} voxels")
