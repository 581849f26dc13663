"""Speed of the native 3dClustSim, side by side with AFNI (run by hand; prints figures only).

1. ``3dClustSim -both -mask brain25 -acf 0.657691 3.19123 10.3821 -iter ITER`` with THREADS
   threads: AFNI (OMP_NUM_THREADS) and ``afni-native 3dClustSim`` (``--n-cpus``), one after
   the other in the same run, wall-clock times and their ratio (target issue 12: >= 8x at
   -iter 2000, 2 threads).
2. Native iterations/s of the simulation alone at 1 and 2 threads (or ``--scaling 1 2 8 16``),
   with the thread time per stage (noise+transforms, clustering).
3. An upper bound on the share of each volume's work that holds the GIL (Python glue between the
   compiled kernels, which release it): the time per volume on a tiny grid, where the kernels
   have almost nothing to do, over the time per volume on this mask at 1 thread; and the speed-up
   that share would allow at 8, 16 and 32 threads (Amdahl). An estimate for many-core nodes
   when only 2 cores are at hand, not a measurement of them.

The machine's load (``uptime``) is printed before and after: on a shared machine the ratio of
the two programs run back to back is the meaningful figure.

usage: python benchmarks/bench_clustsim.py WORKDIR [--iter 2000] [--threads 2] [--no-afni]
       [--scaling 1 2] [--scaling-iter 400] [--mask brain25|demo3mm]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_clustsim_masks import masks as bench_masks  # noqa: E402

from afni_group.programs.clustsim import files as cs  # noqa: E402

ACF = (0.657691, 3.19123, 10.3821)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def time_cmd(cmd: list[str], env: dict, cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--iter", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-afni", action="store_true")
    ap.add_argument("--scaling", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--scaling-iter", type=int, default=400)
    ap.add_argument("--mask", default="brain25")
    args = ap.parse_args()
    mask = bench_masks(args.workdir)[args.mask]
    info = cs.load_mask(mask)
    grid = cs.noise_grid(info.mask.shape, info.voxel_sizes, ACF)
    print(f"mask {args.mask}: {int(info.mask.sum())} voxels, grid {info.mask.shape}, padded "
          f"{grid.padded}; cpus {os.cpu_count()}")  # fmt: skip
    print("load before:", uptime())
    # warm the compiled kernels (numba cache) outside the timings
    cs.simulate_max_cluster_sizes(info.mask, info.voxel_sizes, ACF, cs.LOTS_PTHR, 4, seed=1)

    common = ["-both", "-mask", str(mask), "-acf", *map(str, ACF), "-iter", str(args.iter)]
    native_exe = shutil.which("afni-native") or str(Path(sys.executable).parent / "afni-native")
    env = dict(os.environ, AFNI_DONT_LOGFILE="YES", OMP_NUM_THREADS=str(args.threads))
    out = args.workdir / "speed"
    out.mkdir(exist_ok=True)
    t_native = time_cmd([native_exe, "3dClustSim", *common, "-prefix", "nat", "-quiet",
                         "--n-cpus", str(args.threads)], env, out)  # fmt: skip
    print(f"afni-native 3dClustSim -iter {args.iter}, {args.threads} threads: {t_native:.1f} s")
    afni = shutil.which("3dClustSim")
    if not args.no_afni and afni:
        t_afni = time_cmd([afni, *common, "-prefix", "afni", "-quiet"], env, out)
        print(f"AFNI 3dClustSim        -iter {args.iter}, {args.threads} threads: {t_afni:.1f} s")
        print(f"ratio AFNI / native: {t_afni / t_native:.1f}x (target >= 8x)")
    elif not args.no_afni:
        print("AFNI 3dClustSim not on PATH (source /opt/afni-oracle/env.sh): no ratio")

    for n_jobs in args.scaling:
        timing = cs.SimulationTiming()
        cs.simulate_max_cluster_sizes(
            info.mask, info.voxel_sizes, ACF, cs.LOTS_PTHR, args.scaling_iter, seed=1,
            n_jobs=n_jobs, timing=timing,
        )  # fmt: skip
        total = timing.fft + timing.clustering
        print(
            f"{n_jobs:3d} threads: {args.scaling_iter / timing.wall:7.1f} iterations/s "
            f"(wall {timing.wall:.1f} s; thread time noise+transforms "
            f"{100 * timing.fft / total:.0f} %, clustering {100 * timing.clustering / total:.0f} %)"
        )
    per_volume = {}
    timing = cs.SimulationTiming()
    cs.simulate_max_cluster_sizes(
        info.mask, info.voxel_sizes, ACF, cs.LOTS_PTHR, args.scaling_iter, seed=1, n_jobs=1,
        timing=timing,
    )  # fmt: skip
    per_volume["mask"] = timing.wall / args.scaling_iter
    tiny = np.zeros((16, 16, 16), bool)
    tiny[2:14, 2:14, 2:14] = True
    cs.simulate_max_cluster_sizes(tiny, (20, 20, 20), ACF, cs.LOTS_PTHR, 4, seed=1)
    t0 = time.perf_counter()
    cs.simulate_max_cluster_sizes(tiny, (20, 20, 20), ACF, cs.LOTS_PTHR, 2000, seed=1)
    per_volume["tiny"] = (time.perf_counter() - t0) / 2000
    share = per_volume["tiny"] / per_volume["mask"]
    limits = ", ".join(f"{n}: {1 / (share + (1 - share) / n):.1f}x" for n in (8, 16, 32))
    print(f"GIL-held share <= {100 * share:.1f} % ({1e6 * per_volume['tiny']:.0f} us of "
          f"{1e3 * per_volume['mask']:.1f} ms per volume); Amdahl speed-up at most {limits}")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (this process) {peak:.0f} MB")
    print("load after:", uptime())


if __name__ == "__main__":
    main()
