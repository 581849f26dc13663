"""Masks for the 3dClustSim benchmarks (run by hand; imported by the other bench_clustsim_* scripts).

* ``brain25``: a brain-shaped mask of 79,514 voxels on a 64x77x60 grid of 2.5 mm voxels (the size
  of the real 2.5 mm mask of issue 12, which is not in this repository): the demo's cerebrum +
  cerebellum ellipsoids, scaled to that voxel count, with a smooth random boundary.
* ``demo3mm``: the group mask (3dmask_tool -frac 1.0) of ``afni-group-demo DIR --grid 3mm
  --subjects 8`` on its 53x64x50 grid of 3 mm voxels (made with the native engine).

usage: python benchmarks/bench_clustsim_masks.py OUTDIR   (writes OUTDIR/brain25.nii.gz and
       OUTDIR/demo3mm.nii.gz; the demo dataset goes to OUTDIR/demo8)
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


def brain25_mask() -> np.ndarray:
    """79,514-voxel brain-shaped mask on the 2.5 mm grid (deterministic)."""
    rng = np.random.default_rng(20261201)
    coords = BRAIN25_GRID.mni_coords()
    edge = demo_noise.smooth_noise(rng, BRAIN25_GRID.shape, 2.5, (1.0, 12.0, 1.0), 1)[0]
    lo, hi = 0.5, 1.5
    for _ in range(60):  # bisection on the brain scale for the voxel count
        scale = 0.5 * (lo + hi)
        level = demo_noise.brain_level(coords, scale=scale) + demo_noise.EDGE_PERTURBATION * edge
        count = int((level < 1.0).sum())
        if count == BRAIN25_VOXELS:
            break
        lo, hi = (scale, hi) if count < BRAIN25_VOXELS else (lo, scale)
    level = demo_noise.brain_level(coords, scale=scale) + demo_noise.EDGE_PERTURBATION * edge
    mask = level < 1.0
    if int(mask.sum()) != BRAIN25_VOXELS:  # drop/add boundary voxels to hit the count exactly
        order = np.argsort(level, axis=None)
        mask = np.zeros(mask.size, bool)
        mask[order[:BRAIN25_VOXELS]] = True
        mask = mask.reshape(BRAIN25_GRID.shape)
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
    """Both benchmark masks, made in ``outdir`` if missing."""
    outdir.mkdir(parents=True, exist_ok=True)
    brain = outdir / "brain25.nii.gz"
    if not brain.exists():
        write_mask(brain25_mask(), BRAIN25_GRID, brain)
    return {"brain25": brain, "demo3mm": demo3mm_mask(outdir)}


if __name__ == "__main__":
    for name, path in masks(Path(sys.argv[1] if len(sys.argv) > 1 else "bench-masks")).items():
        img = nib.load(str(path))
        n = int((np.asanyarray(img.dataobj) != 0).sum())
        print(f"{name}: {path} {img.shape} {img.header.get_zooms()[:3]} {n} voxels")
