"""Inputs of the 3dttest++ benchmarks (run by hand; imported by bench_ttest_clustsim*.py).

``afni-group-demo DIR --subjects N`` (3 mm grid, 53x64x50, whole-brain-shaped masks; each
subject's ``left_vs_right_chx#0_Coef`` beta is one 3dttest++ value) and the group mask
(voxels in every subject's mask, as ``3dmask_tool -frac 1.0``), written as ``mask.nii.gz``.

usage: python benchmarks/bench_ttest_data.py OUTDIR [--subjects 30]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from afni_group import afni_io

BETA = "left_vs_right_chx#0_Coef"


def demo_inputs(workdir: Path, subjects: int = 30, grid: str = "3mm") -> tuple[Path, list[str]]:
    """Make (or reuse) the demo and the group mask; returns the mask and the subjects' specs.

    ``grid``: the demo's 3 mm grid (53x64x50) or its ``small`` 6 mm one (27x32x26).
    """
    tag = f"{subjects}" + ("" if grid == "3mm" else f"_{grid}")
    demo = workdir / f"demo{tag}"
    results = demo / "derivatives" / "afni"
    if not results.is_dir():
        subprocess.run([sys.executable, "-m", "afni_group.demo.cli", str(demo), "--subjects",
                        str(subjects), "--grid", grid], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    subs = sorted(p.name for p in results.glob("sub-*"))[:subjects]
    specs = [str(results / s / f"{s}.results" / f"stats.{s}_REML+tlrc.HEAD[{BETA}]") for s in subs]
    mask_path = workdir / f"mask{tag}.nii.gz"
    if not mask_path.exists():
        masks = []
        for s in subs:
            m = afni_io.read_dataset(results / s / f"{s}.results" / f"mask_epi_anat.{s}+tlrc.HEAD")
            masks.append(np.asarray(m.data[..., 0]) != 0)
        group = np.all(masks, axis=0).astype(np.uint8)
        afni_io.write_dataset(
            afni_io.AfniDataset(group, m.affine, ["mask"], space=m.space, view=m.view), mask_path
        )
    return mask_path, specs


def long_form(name: str, specs: list[str]) -> list[str]:
    """``NAME sub-01 spec sub-02 spec ...`` (3dttest++'s LONG form)."""
    out = [name]
    for spec in specs:
        out += [spec.split("/stats.", 1)[1].split("_REML", 1)[0], spec]
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--subjects", type=int, default=30)
    ap.add_argument("--grid", choices=["3mm", "small"], default="3mm")
    args = ap.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    mask, specs = demo_inputs(args.outdir, args.subjects, args.grid)
    n = int(np.count_nonzero(afni_io.read_dataset(mask).data))
    print(f"{mask}: {n} voxels; {len(specs)} subjects")
