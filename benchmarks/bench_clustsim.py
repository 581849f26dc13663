"""Benchmark the native 3dClustSim (run by hand; prints figures, asserts nothing).

Brain-shaped mask of about 80,000 voxels in a 64×76×60 grid of 2.5 mm voxels, ACF
(0.66, 3.19, 10.38), ``-both`` lists (29 p × 10 alpha, all NN and sidedness). Runs ITER
iterations (default 1000) and extrapolates to 10000. Anchor: AFNI_26.2.03 took 225 s with 2
threads for its default 9-p tables on a 72,000-voxel mask; target < 120 s for ``-both``.

usage: python benchmarks/bench_clustsim.py [ITER] [N_JOBS]
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from afni_group.engines.native import clustsim as cs


def brain_mask(shape=(64, 76, 60)) -> np.ndarray:
    x, y, z = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    return (x / 27) ** 2 + (y / 33) ** 2 + (z / 21.4) ** 2 <= 1


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    mask = brain_mask()
    acf = (0.66, 3.19, 10.38)
    grid = cs.noise_grid(mask.shape, (2.5,) * 3, acf)
    print(f"mask voxels {int(mask.sum())}, grid {mask.shape}, padded {grid.padded}")
    # warm up the compiled kernels
    cs.simulate_max_cluster_sizes(mask, (2.5,) * 3, acf, cs.LOTS_PTHR, 4, seed=1)
    timing = cs.SimulationTiming()
    t0 = time.perf_counter()
    sizes = cs.simulate_max_cluster_sizes(
        mask, (2.5,) * 3, acf, cs.LOTS_PTHR, iterations, seed=1, n_jobs=n_jobs, timing=timing
    )
    t_sim = time.perf_counter() - t0
    t1 = time.perf_counter()
    for s in range(3):
        for nn in range(3):
            cs.cluster_table(sizes[:, s, nn], cs.LOTS_ATHR, iterations)
    t_tab = time.perf_counter() - t1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = timing.noise + timing.fft + timing.clustering
    print(f"iterations {iterations}, threads {n_jobs}")
    print(f"wall {t_sim:.2f} s simulation + {t_tab:.2f} s tables; peak RSS {peak_mb:.0f} MB")
    for name in ("noise", "fft", "clustering"):
        v = getattr(timing, name)
        print(f"  {name:10s} {v:7.2f} s thread-time ({100 * v / total:4.1f} %)")
    est = t_sim * 10000 / iterations + t_tab
    print(
        f"extrapolated to 10000 iterations: {est:.0f} s wall "
        f"(target < 120 s; AFNI default 9-p tables: 225 s, ratio {225 / est:.2f}x)"
    )


if __name__ == "__main__":
    main()
