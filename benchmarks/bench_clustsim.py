"""Speed of the native 3dClustSim, side by side with AFNI (run by hand; prints figures only).

1. ``3dClustSim -both -mask MASK -acf 0.657691 3.19123 10.3821 -iter ITER`` with THREADS
   threads: ``afni-native 3dClustSim`` (``--n-cpus``) and AFNI (OMP_NUM_THREADS), one after the
   other in the same run: wall-clock time, peak RSS (``wait4``) and CPU time of each, and the
   ratio (target issue 24: >= 15x at -iter 10000, 2 threads, on brain25).
2. Native iterations/s of the simulation alone at 1 and 2 threads (or ``--scaling 1 2 8 16``),
   with the thread time per stage (noise+transforms, clustering).
3. With ``--gil``: an upper bound on the share of each volume's work that holds the GIL (Python
   glue between the compiled kernels, which release it): the time per volume on a tiny grid,
   where the kernels have almost nothing to do, over the time per volume on this mask at 1
   thread; and the speed-up that share would allow at 8, 16 and 32 threads (Amdahl). An
   estimate for many-core nodes when only 2 cores are at hand, not a measurement of them.

Masks (:mod:`bench_clustsim_masks`): ``brain25`` (79,514 voxels, 2.5 mm), ``brain20`` (230,000
voxels, 2 mm whole brain), ``demo3mm``. The machine's load (``uptime``) is printed around each
run: on a shared machine the ratio of the two programs run back to back is the meaningful
figure.

usage: python benchmarks/bench_clustsim.py WORKDIR [--iter 10000] [--threads 2] [--no-afni]
       [--scaling 1 2] [--scaling-iter 2000] [--mask brain25|brain20|demo3mm] [--gil]
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


def run_cmd(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, float]:
    """Run ``cmd``; its wall seconds, peak RSS (MB) and CPU seconds (user + system)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--iter", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-afni", action="store_true")
    ap.add_argument("--scaling", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--scaling-iter", type=int, default=2000)
    ap.add_argument("--gil", action="store_true")
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
    runs = {}
    print(f"afni-native 3dClustSim -both -iter {args.iter}, {args.threads} threads ...", flush=True)
    runs["afni-native"] = run_cmd([native_exe, "3dClustSim", *common, "-prefix", "nat", "-quiet",
                                   "--n-cpus", str(args.threads)], env, out)  # fmt: skip
    print("load:", uptime(), flush=True)
    afni = shutil.which("3dClustSim")
    if not args.no_afni and afni:
        print(f"AFNI 3dClustSim -both -iter {args.iter}, {args.threads} threads ...", flush=True)
        runs["AFNI"] = run_cmd([afni, *common, "-prefix", "afni", "-quiet"], env, out)
        print("load:", uptime(), flush=True)
    elif not args.no_afni:
        print("AFNI 3dClustSim not on PATH (source /opt/afni-oracle/env.sh): no ratio")
    print(f"{'program':12s} {'wall s':>8s} {'peak RSS MB':>12s} {'CPU s':>8s}")
    for name, (wall, rss, cpu) in runs.items():
        print(f"{name:12s} {wall:8.1f} {rss:12.0f} {cpu:8.1f}")
    if "AFNI" in runs:
        ratio = runs["AFNI"][0] / runs["afni-native"][0]
        print(f"ratio AFNI / native (wall): {ratio:.1f}x (target >= 15x on brain25)", flush=True)

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
    if args.gil:
        gil_share(info, args.scaling_iter)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (this process) {peak:.0f} MB")
    print("load after:", uptime())


def gil_share(info: cs.MaskInfo, iterations: int) -> None:
    """Print the GIL-held share bound and the Amdahl limits (point 3 of the module text)."""
    per_volume = {}
    timing = cs.SimulationTiming()
    cs.simulate_max_cluster_sizes(
        info.mask, info.voxel_sizes, ACF, cs.LOTS_PTHR, iterations, seed=1, n_jobs=1,
        timing=timing,
    )  # fmt: skip
    per_volume["mask"] = timing.wall / iterations
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


if __name__ == "__main__":
    main()
