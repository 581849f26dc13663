"""Benchmark native 3dMEMA (run by hand, not in CI).

Two sets × 40 subjects (the tutorial's unpaired ``-groups`` design with ``-missing_data 0``) on
the 2 mm MNI grid 91×109×91 with an ellipsoid "brain" of about 230,000 voxels; data are exactly
zero outside it, as in afni_proc.py results, so those voxels are skipped by the non-zero rule.

    python benchmarks/bench_mema.py                 # array function only
    python benchmarks/bench_mema.py --files         # + end to end: NIfTI inputs -> run_mema
    python benchmarks/bench_mema.py --jobs 2 --subjects 40

Prints wall time, peak resident memory (whole process, inputs included) and voxels per second.
AFNI anchor (spec README): 3dMEMA, two groups of 10 on 64×76×64 took 47 s.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from afni_group.programs.mema.core import MemaDesign, mema
from afni_group.programs.mema.files import MemaSet, run_mema

GRID = (91, 109, 91)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_data(n_subjects: int, seed: int = 0):
    """Per set (n_subjects, n_voxels) float32 betas and t's; zero outside an ellipsoid."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*(np.arange(n) for n in GRID), indexing="ij")
    brain = (((i - 45) / 36) ** 2 + ((j - 54) / 44) ** 2 + ((k - 45) / 35) ** 2) <= 1.0
    brain = brain.reshape(-1)
    n_vox = brain.size
    inside = np.flatnonzero(brain)
    sets = []
    for shift in (0.4, 0.0):
        b = np.zeros((n_subjects, n_vox), np.float32)
        t = np.zeros((n_subjects, n_vox), np.float32)
        for s in range(n_subjects):
            beta = rng.normal(shift, 1.0, inside.size).astype(np.float32)
            se = rng.uniform(0.25, 0.6, inside.size).astype(np.float32)
            b[s, inside] = beta
            t[s, inside] = beta / se
        sets.append((b, t))
    return sets, int(brain.sum())


def bench_arrays(sets, n_in_mask: int, n_jobs: int) -> None:
    n = sets[0][0].shape[0]
    design = MemaDesign("groups", (n, n), ("chx", "keypress"))
    t0 = time.perf_counter()
    result = mema(
        [s[0] for s in sets], [s[1] for s in sets], design, missing_data=True, n_jobs=n_jobs
    )
    wall = time.perf_counter() - t0
    print(
        f"array function: {wall:6.2f} s wall, {result.n_analyzed} voxels analysed "
        f"({result.n_reml} by REML), {result.n_analyzed / wall:,.0f} voxels/s, "
        f"peak RSS {peak_rss_mb():,.0f} MB (inputs ~{sum(a.nbytes for s in sets for a in s) / 2**20:,.0f} MB)"
    )
    assert result.n_analyzed == n_in_mask


def bench_files(sets, n_jobs: int) -> None:
    n = sets[0][0].shape[0]
    affine = np.array([[-2.0, 0, 0, 90], [0, -2.0, 0, 126], [0, 0, 2.0, -72], [0, 0, 0, 1]])
    with tempfile.TemporaryDirectory(prefix="bench_mema_") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        for s in range(n):
            vol = np.stack([sets[0][0][s], sets[0][1][s], sets[1][0][s], sets[1][1][s]], axis=-1)
            img = nib.Nifti1Image(vol.reshape(*GRID, 4), affine)
            img.header.set_qform(affine, 4)
            img.header.set_sform(affine, 4)
            nib.save(img, tmp / f"stats.sub-{s:02d}.nii")
        print(f"(writing {n} input files took {time.perf_counter() - t0:.1f} s, not counted)")
        mema_sets = []
        for label, (bi, ti) in (("chx", (0, 1)), ("keypress", (2, 3))):
            files = [str(tmp / f"stats.sub-{s:02d}.nii") for s in range(n)]
            mema_sets.append(
                MemaSet(
                    label,
                    [f"sub-{s:02d}" for s in range(n)],
                    [f"{f}[{bi}]" for f in files],
                    [f"{f}[{ti}]" for f in files],
                )
            )
        t0 = time.perf_counter()
        out = run_mema(
            mema_sets, tmp / "mema_results.nii.gz", missing_data=0, n_jobs=n_jobs, progress=False
        )
        wall = time.perf_counter() - t0
        print(
            f"end to end (read {2 * n} x 2 bricks, fit, write {out.name}): {wall:6.2f} s wall, "
            f"peak RSS {peak_rss_mb():,.0f} MB"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--subjects", type=int, default=40, help="subjects per set (default 40)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--files", action="store_true", help="also time run_mema on NIfTI files")
    args = ap.parse_args(argv)
    print(
        f"native 3dMEMA benchmark: 2 sets x {args.subjects} subjects, grid {GRID}, jobs={args.jobs}"
    )
    sets, n_in_mask = make_data(args.subjects)
    print(f"in-mask voxels: {n_in_mask:,}")
    bench_arrays(sets, n_in_mask, args.jobs)
    if args.files:
        bench_files(sets, args.jobs)
    print(
        "target: < 10 s wall, < 4 GB on 2 cores; AFNI anchor: 47 s for 2x10 subjects on "
        "64x76x64 (spec README). Timings on a shared machine are noisy."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
