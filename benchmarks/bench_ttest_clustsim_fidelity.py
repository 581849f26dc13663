"""Fidelity of the native ``3dttest++ -Clustsim`` tables against AFNI's (run by hand; prints).

AFNI's ``3dttest++ -setA ... [-setB ...] -mask MASK -seed S -Clustsim JOBS`` for every AFNI seed
and the native one for every native seed, on the demo's subjects (bench_ttest_data.py), with
``AFNI_TTEST_NUMCSIM=ITER``. Per table (NN × sidedness) it prints the signed mean over the
cells of (native − AFNI)/AFNI:

* pooled: the mean native table against the mean AFNI table, with the standard error from the
  seed-to-seed scatter (a difference within ~2 s.e. is Monte-Carlo noise, not a bias), and
  how often single runs agree (native vs AFNI, and AFNI vs AFNI with different seeds);
* for seeds run on both sides: the share of identical cells (the native route replays AFNI's
  random flips and permutations, so the tables agree except where AFNI's job race — spec 08
  §7.4 — left it fewer iterations, or a t lies within float32 rounding of a threshold).

AFNI's tables and the native tables (``.npy``) are reused from WORKDIR when present.

usage: python benchmarks/bench_ttest_clustsim_fidelity.py WORKDIR [--iter 2000] [--jobs 2]
       [--design one|two] [--grid 3mm|small] [--subjects 30]
       [--afni-seeds 1 2 3 4] [--native-seeds 1 2 11 12 13 14 15 16]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_clustsim_fidelity import per_table_means, print_means, within_target  # noqa: E402
from bench_ttest_data import demo_inputs, long_form  # noqa: E402

from afni_group import afni_io  # noqa: E402
from afni_group.programs.clustsim import core as clustsim_core  # noqa: E402
from afni_group.programs.ttest import files  # noqa: E402


def read_tables(folder: Path) -> np.ndarray:
    """The nine ``tt.CSimA.NN*_*.1D`` tables as (3 sidedness, 3 NN, n_p, n_alpha)."""
    out = []
    for sided in clustsim_core.SIDEDNESS:
        row = []
        for nn in (1, 2, 3):
            lines = (folder / f"tt.CSimA.NN{nn}_{sided}.1D").read_text().splitlines()
            row.append(
                [[float(v) for v in ln.split()[1:]] for ln in lines if not ln.startswith("#")]
            )
        out.append(row)
    return np.array(out)


def iterations_used(folder: Path) -> int:
    attrs = afni_io.read_dataset(folder / "tt.nii.gz").attributes
    return int(re.search(r'iter="(\d+)"', attrs["AFNI_CLUSTSIM_NN1_1sided"]).group(1))


def run_afni(folder: Path, argv: list[str], env: dict) -> float | None:
    if (folder / "tt.CSimA.NN3_bisided.1D").exists():
        return None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(["3dttest++", *argv], cwd=folder, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def run_native(
    folder: Path, sets: dict, mask: Path, seed: int, iters: int, jobs: int
) -> float | None:
    cache = folder / "tables.npy"
    if cache.exists():
        return None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        t0 = time.perf_counter()
        opts = files.ClustsimOptions(jobs=jobs, iterations=iters, seed=seed, threads=jobs)
        out = files.run_ttest(sets["A"], sets.get("B"), "tt.nii.gz", mask=str(mask),
                              clustsim_options=opts, progress=False)  # fmt: skip
        dt = time.perf_counter() - t0
        np.save(cache, out.tables.tables.astype(np.float64))
    finally:
        os.chdir(cwd)
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--iter", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--design", choices=["one", "two"], default="one")
    ap.add_argument("--grid", choices=["3mm", "small"], default="3mm")
    ap.add_argument("--subjects", type=int, default=30)
    ap.add_argument("--afni-seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--native-seeds", type=int, nargs="+", default=[1, 2, 11, 12, 13, 14, 15, 16])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    mask, specs = demo_inputs(work, args.subjects, args.grid)
    half = len(specs) // 2
    if args.design == "one":
        words = ["-setA", *long_form("all", specs)]
        sets = {"A": files.DatasetSet.long("all", long_form("all", specs)[1:])}
    else:
        la, lb = long_form("grpA", specs[:half]), long_form("grpB", specs[half:])
        words = ["-setA", *la, "-setB", *lb]
        sets = {
            "A": files.DatasetSet.long("grpA", la[1:]),
            "B": files.DatasetSet.long("grpB", lb[1:]),
        }
    env = dict(os.environ, OMP_NUM_THREADS=str(args.jobs), AFNI_TTEST_NUMCSIM=str(args.iter),
               AFNI_DONT_LOGFILE="YES", AFNI_MESSAGE_COLORIZE="NO")  # fmt: skip
    tag = f"{args.design}_{args.grid}_{args.subjects}_{args.iter}_j{args.jobs}"
    n_vox = int(np.count_nonzero(afni_io.read_dataset(mask).data))
    print(f"== {args.design}-sample, {len(specs)} subjects, {args.grid} grid, mask {n_vox} voxels, "
          f"AFNI_TTEST_NUMCSIM={args.iter}, -Clustsim {args.jobs}")  # fmt: skip
    theirs, ours, used = {}, {}, {}
    for seed in args.afni_seeds:
        folder = work / f"afni_{tag}_s{seed}"
        argv = words + ["-mask", str(mask), "-prefix", "tt.nii.gz", "-seed", str(seed),
                        "-Clustsim", str(args.jobs)]  # fmt: skip
        t = run_afni(folder, argv, env)
        theirs[seed] = read_tables(folder)
        used[seed] = iterations_used(folder)
        print(f"AFNI seed {seed}: " + (f"{t:.0f} s, " if t is not None else "")
              + f"{used[seed]} iterations used")  # fmt: skip
    nper = -(-args.iter // args.jobs)
    for seed in args.native_seeds:
        folder = work / f"native_{tag}_s{seed}"
        t = run_native(folder, sets, mask, seed, args.iter, args.jobs)
        ours[seed] = np.load(folder / "tables.npy")
        if t is not None:
            print(f"native seed {seed}: {t:.1f} s, {args.jobs * nper} iterations")
    a_list, n_list = list(theirs.values()), list(ours.values())
    ref = np.mean(a_list, axis=0)
    d_afni = np.array([per_table_means(t, ref) for t in a_list])
    d_nat = np.array([per_table_means(t, ref) for t in n_list])
    var = d_nat.var(axis=0, ddof=1) / len(n_list) if len(n_list) > 1 else 0
    var = var + (d_afni.var(axis=0, ddof=1) / len(a_list) if len(a_list) > 1 else 0)
    print_means(
        f"pooled: mean of {len(n_list)} native runs vs mean of {len(a_list)} AFNI runs "
        "(s.e. from the seed-to-seed scatter):",
        per_table_means(np.mean(n_list, axis=0), ref), np.sqrt(var),
    )  # fmt: skip
    if len(a_list) > 1:
        pairs = [
            (a_list[i], a_list[j]) for i in range(len(a_list)) for j in range(i + 1, len(a_list))
        ]
        print("  AFNI vs AFNI (different seeds): " + within_target(pairs))
    print("  native vs AFNI (every pair):   "
          + within_target([(n, a) for n in n_list for a in a_list]))  # fmt: skip
    for seed in sorted(set(theirs) & set(ours)):
        same = theirs[seed] == ours[seed]
        print(f"seed {seed} on both sides: {same.mean():.1%} of the {same.size} cells identical, "
              f"largest difference {np.abs(theirs[seed] - ours[seed]).max():.0f} voxels "
              f"(AFNI used {used[seed]} of {args.jobs * nper} iterations)")  # fmt: skip


if __name__ == "__main__":
    main()
