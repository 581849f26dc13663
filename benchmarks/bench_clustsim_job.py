"""The whole tutorial job on the 8-subject 3 mm demo, native engine beside the afni engine
(run by hand; prints figures only).

``afni-group-demo WORKDIR/demo8 --grid 3mm --subjects 8`` (once), then
``afni-group WORKDIR/demo8 WORKDIR/job-ENGINE-N group --engine ENGINE --n-cpus N`` with the
default 10000 3dClustSim iterations, for the native engine and then (AFNI on PATH, unless
``--no-afni``) the afni engine, one after the other in the same run: wall clock, peak RSS of
the process tree (``wait4``) and CPU time of each, the per-step seconds from ``params.json``
and the ratio (target issue 24: >= 10x). The load (``uptime``) is printed around each run.

usage: python benchmarks/bench_clustsim_job.py WORKDIR [--n-cpus 2] [--iter 10000] [--no-afni]
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


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_job(bindir: Path, data: Path, out: Path, engine: str, n_cpus: int, iters: int) -> float:
    """Run one engine's job; print its figures and steps; return its wall seconds."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(bindir / "afni-group"), str(data), str(out), "group", "--engine", engine,
           "--n-cpus", str(n_cpus), "--clustsim-iter", str(iters)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    print(" ".join(cmd))
    print(f"  {engine}: exit {os.waitstatus_to_exitcode(status)}; wall {wall:.1f} s; "
          f"peak RSS {usage.ru_maxrss / 1024:.0f} MB; "
          f"CPU {usage.ru_utime + usage.ru_stime:.1f} s")  # fmt: skip
    params = json.loads((out / "params.json").read_text())
    for step, seconds in params.get("timings_s", {}).items():
        print(f"    {step:45s} {seconds:7.1f} s")
    for a in params.get("analyses", []):
        print(f"    {a['name']}: threshold {a.get('cluster_size_threshold')} voxels, "
              f"MC {a.get('cluster_size_mc')}")  # fmt: skip
    print("  load after:", uptime(), flush=True)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--n-cpus", type=int, default=2)
    ap.add_argument("--iter", type=int, default=10000)
    ap.add_argument("--no-afni", action="store_true")
    args = ap.parse_args()
    bindir = Path(sys.executable).parent
    data = args.workdir / "demo8"
    if not data.exists():
        subprocess.run([str(bindir / "afni-group-demo"), str(data), "--grid", "3mm",
                        "--subjects", "8"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    print("load before:", uptime(), flush=True)
    walls = {}
    engines = ["native"] + ([] if args.no_afni or not shutil.which("3dClustSim") else ["afni"])
    for engine in engines:
        out = args.workdir / f"job-{engine}-{args.n_cpus}"
        walls[engine] = run_job(bindir, data, out, engine, args.n_cpus, args.iter)
    if "afni" in walls:
        print(f"ratio afni engine / native engine (wall): {walls['afni'] / walls['native']:.1f}x "
              "(target >= 10x)")  # fmt: skip
    else:
        print("afni engine not run (AFNI not on PATH: source /opt/afni-oracle/env.sh)")


if __name__ == "__main__":
    main()
