"""Speed of ``3dttest++ -Clustsim``: native against AFNI, side by side (run by hand; prints only).

The same command — ``3dttest++ -setA ... [-setB ...] -mask MASK -prefix P -seed S -Clustsim
JOBS`` on the 30-subject 3 mm demo (bench_ttest_data.py: 53x64x50 grid, whole-brain-shaped
group mask) — run by AFNI (OMP_NUM_THREADS=THREADS) and by ``afni-native 3dttest++``, one after
the other in the same run, with ``AFNI_TTEST_NUMCSIM=ITER``. Printed: wall-clock seconds, their
ratio, the peak resident memory (the native run is one process; for AFNI the largest of its
processes: 3dttest++, its jobs, 3dClustSim), where the time goes (AFNI: randomisation jobs
until 3dClustSim starts, then 3dClustSim + 3drefit; native: its own per-stage timing) and the
machine's load before and after (a shared machine makes only the ratio meaningful).

AFNI's jobs race ahead of 3dClustSim where /bin/sh is dash (spec 08 §7.4), so its tables may
rest on fewer iterations than nominal; the time is the time of the whole command either way.

usage: python benchmarks/bench_ttest_clustsim.py WORKDIR [--iter 10080] [--threads 2]
       [--design one|two] [--subjects 30] [--no-afni] [--seed 1234]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_ttest_data import demo_inputs, long_form  # noqa: E402

_RUNNER = (
    "import resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
    "sys.stderr.write(p.stderr)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(p.returncode)\n"
)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of the largest process, stderr."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _RUNNER, *cmd], env=env, cwd=cwd,
                       capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{p.stderr[-2000:]}")
    return wall, int(p.stdout.split()[-1]) / 1024.0, p.stderr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--iter", type=int, default=10080)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--design", choices=["one", "two"], default="one")
    ap.add_argument("--subjects", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--no-afni", action="store_true")
    args = ap.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    mask, specs = demo_inputs(work, args.subjects)
    if args.design == "one":
        sets = ["-setA", *long_form("all", specs)]
    else:
        half = len(specs) // 2
        sets = [
            "-setA",
            *long_form("grpA", specs[:half]),
            "-setB",
            *long_form("grpB", specs[half:]),
        ]
    jobs = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), AFNI_TTEST_NUMCSIM=str(args.iter),
               AFNI_DONT_LOGFILE="YES", AFNI_MESSAGE_COLORIZE="NO")  # fmt: skip
    n_vox = 0
    print(f"== 3dttest++ -Clustsim {jobs}: {args.design}-sample, {len(specs)} subjects, "
          f"{args.iter} iterations (AFNI_TTEST_NUMCSIM), {args.threads} threads")  # fmt: skip
    print("load before:", uptime())
    results = {}
    for who in ("native", "afni"):
        if who == "afni" and args.no_afni:
            continue
        out = work / f"run_{who}_{args.design}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        exe = ["afni-native", "3dttest++"] if who == "native" else ["3dttest++"]
        if who == "afni" and shutil.which("3dttest++") is None:
            sys.exit("3dttest++ not on PATH (source /opt/afni-oracle/env.sh) or use --no-afni")
        cmd = exe + sets + ["-mask", str(mask), "-prefix", "tt.nii.gz", "-seed", str(args.seed),
                            "-Clustsim", jobs]  # fmt: skip
        wall, rss, err = run(cmd, env, out)
        results[who] = (wall, rss)
        print(f"\n{who}: {wall:.1f} s wall, peak RSS {rss:.0f} MB")
        if who == "native":
            m = re.search(r"(\d+) voxels in -mask", err)
            n_vox = int(m.group(1)) if m else n_vox
            for line in err.splitlines():
                if "-Clustsim:" in line and "iterations in" in line:
                    print("  " + line.strip(" +"))
        else:
            m = re.search(r"starting 3dClustSim A: elapsed = ([\d.]+) s", err)
            if m:
                t = float(m.group(1))
                print(f"  randomisation jobs (3dttest++ -RANDOMSIGN) until 3dClustSim starts: "
                      f"{t:.1f} s; 3dClustSim + 3drefit: {wall - t:.1f} s")  # fmt: skip
            it = re.search(r"-insdat had (\d+) volumes", err)
            if it:
                print(f"  3dClustSim used {it.group(1)} volumes (nominal "
                      f"{int(jobs) * -(-args.iter // int(jobs))})")  # fmt: skip
    print(f"\nmask: {n_vox} voxels")
    print("load after: ", uptime())
    if "afni" in results:
        ratio = results["afni"][0] / results["native"][0]
        print(f"\nAFNI / native wall time: {ratio:.1f}x (target >= 10x); native peak "
              f"{results['native'][1]:.0f} MB (target < 2048 MB)")  # fmt: skip


if __name__ == "__main__":
    main()
