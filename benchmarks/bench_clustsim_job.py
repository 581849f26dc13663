"""The whole native job on the 8-subject 3 mm demo (run by hand; prints figures only).

``afni-group-demo WORKDIR/demo8 --grid 3mm --subjects 8`` (once), then
``afni-group WORKDIR/demo8 WORKDIR/job-N group --engine native --n-cpus N`` with the default
10000 3dClustSim iterations, timed from outside (wall clock, peak RSS of the process tree from
``wait4``), with the per-step seconds from ``params.json``. Target (issue 12): under 45 s on 2
cores, peak memory under 1 GB. The load (``uptime``) is printed before and after.

usage: python benchmarks/bench_clustsim_job.py WORKDIR [--n-cpus 2] [--iter 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--n-cpus", type=int, default=2)
    ap.add_argument("--iter", type=int, default=10000)
    args = ap.parse_args()
    bindir = Path(sys.executable).parent
    data = args.workdir / "demo8"
    if not data.exists():
        subprocess.run([str(bindir / "afni-group-demo"), str(data), "--grid", "3mm",
                        "--subjects", "8"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    out = args.workdir / f"job-{args.n_cpus}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(bindir / "afni-group"), str(data), str(out), "group", "--engine", "native",
           "--n-cpus", str(args.n_cpus), "--clustsim-iter", str(args.iter)]  # fmt: skip
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    print(" ".join(cmd))
    print(f"exit {os.waitstatus_to_exitcode(status)}; wall {wall:.1f} s (target < 45 s); "
          f"peak RSS {usage.ru_maxrss / 1024:.0f} MB (target < 1024 MB); "
          f"CPU {usage.ru_utime + usage.ru_stime:.1f} s")  # fmt: skip
    params = json.loads((out / "params.json").read_text())
    for step, seconds in params.get("timings_s", {}).items():
        print(f"  {step:45s} {seconds:7.1f} s")
    for a in params.get("analyses", []):
        print(f"  {a['name']}: threshold {a.get('cluster_size_threshold')} voxels, "
              f"MC {a.get('cluster_size_mc')}")  # fmt: skip
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
