"""3dClustSim thread scaling: iterations/s of the native simulation at 1, 2, 4, 8, 16 threads.

Run by hand (a many-core node shows the scaling; on a 2-core machine only 1 and 2 mean much):

    python benchmarks/bench_clustsim_scaling.py [--iter 2000] [--threads 1 2 4 8 16]

Uses the 79,514-voxel 2.5 mm brain mask of ``bench_clustsim_masks.py`` and the tutorial's ACF,
``-both`` (all nine tables). Also checks the claim that the tables do not depend on the thread
count: every run's tables must equal the 1-thread run's, cell for cell.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_clustsim_masks import BRAIN25_GRID, brain25_mask  # noqa: E402

from afni_group.engines.native.clustsim_tables import clustsim  # noqa: E402

ACF = (0.657691, 3.19123, 10.3821)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iter", type=int, default=2000)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = p.parse_args(argv)
    mask = brain25_mask()
    voxels = (BRAIN25_GRID.voxel_mm,) * 3
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}; mask {int(mask.sum())} voxels {mask.shape}"
    )
    t0 = time.perf_counter()
    clustsim(mask, voxels, ACF, iterations=2000, n_jobs=max(args.threads))  # numba compile
    print(f"warm-up (JIT compile + 2000 iterations): {time.perf_counter() - t0:.1f} s")
    reference = None
    base = None
    for n in args.threads:
        t0 = time.perf_counter()
        tables = clustsim(mask, voxels, ACF, iterations=args.iter, n_jobs=n)
        seconds = time.perf_counter() - t0
        rate = args.iter / seconds
        base = base or rate
        values = np.asarray(tables.max_sizes)  # every iteration's largest clusters
        same = (
            ""
            if reference is None
            else (
                "  max cluster sizes identical to the first run"
                if np.array_equal(values, reference)
                else "  MAX CLUSTER SIZES DIFFER from the first run"
            )
        )
        reference = values if reference is None else reference
        print(
            f"threads {n:>2}: {seconds:7.2f} s  {rate:7.1f} iterations/s  "
            f"speed-up {rate / base:5.2f}x{same}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
