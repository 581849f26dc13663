"""Family-wise false-positive rate of both cluster-threshold routes on null group analyses.

Each null analysis (``fpr_null.py``): 20 demo subjects (their drawn ACFs and se scales, their
own random streams) with smooth noise and no effect, on the demo's field of view at 4 mm
(40x48x38, a 26,452-voxel brain-shaped mask), either stationary (the demo's noise) or with a
smoothness that grows from the front of the brain to the back. One one-sample t-test
(native 3dttest++, 19 DOF) gives the map; both routes threshold the same map at the bi-sided
voxelwise p and cluster it NN1 bi-sided, and differ only in the cluster-size threshold
(alpha = 0.05, ``1d_tool.py -csim_pthr P -csim_alpha 0.05``):

* ``acf``: the tutorial's route. Each subject's ACF is estimated from its own map
  (``3dFWHMx -acf``'s model fit; afni_proc.py estimates it from each subject's residuals,
  whose spatial noise the map shares), the group mean (a, b, c) goes to native
  ``3dClustSim -acf a b c -mask`` (its own seed per analysis, a table per analysis: no cache).
* ``randomise``: ``3dttest++ -Clustsim``: the t-test's residuals with their signs randomised
  (AFNI's streams), the null z volumes clustered into the integer ``-nodec`` tables.

A family-wise false positive is an analysis with at least one surviving cluster. The rate and
its exact 95 % interval (Clopper-Pearson) are printed per route, noise and p; the nominal rate
is 5 %. Tables are Monte Carlo: ITER iterations each. Seeds are derived from ``--seed`` (the
demo seed of analysis k of noise type j is SEED + 100000·j + k), so a run is reproducible
with the same options whatever ``--workers``.

usage: python benchmarks/bench_fpr.py [--analyses 50 | --full] [--iter 2000] [--subjects 20]
       [--noise stationary nonstationary] [--workers 2] [--seed 2017] [--json OUT]
       [--records LINES.jsonl] | --from-records LINES.jsonl
"""

from __future__ import annotations

import os

# one BLAS thread per worker process: the workers are the parallelism (set before numpy loads)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import special  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from fpr_null import (  # noqa: E402
    GRID_4MM,
    NOISE_TYPES,
    brain_mask,
    clopper_pearson,
    csim_size,
    estimate_acf,
    max_cluster_sizes,
    null_maps,
)

from afni_group.demo.truth import round_g  # noqa: E402
from afni_group.programs.clustsim.simulate import clustsim  # noqa: E402
from afni_group.programs.ttest import clustsim as ttest_clustsim  # noqa: E402
from afni_group.programs.ttest import core as ttest_core  # noqa: E402

PTHR = (0.01, 0.005, 0.001)
ALPHA = 0.05
NN, SIDED = 1, "bisided"
ROUTES = ("acf", "randomise")
FULL_ANALYSES = 250


def derived_seed(*key: int) -> int:
    """A positive 31-bit seed from integers (independent streams per analysis and route)."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0] % 2147483646) + 1


def analysis(job: tuple[str, int, int, int, int]) -> dict:
    """One null analysis of noise type ``kind``: both routes' thresholds and the largest clusters."""
    kind, k, seed, n_subjects, iterations = job
    j = NOISE_TYPES.index(kind)
    t0 = time.perf_counter()
    mask = brain_mask(GRID_4MM)
    maps = null_maps(seed + 100000 * j + k, n_subjects, kind, GRID_4MM, mask)
    t1 = time.perf_counter()
    flat_mask = mask.reshape(-1, order="F")
    values = maps.reshape(n_subjects, -1, order="F")  # AFNI index order (i fastest)
    design = ttest_core.make_design("one", n_subjects, 0, ("SetA", "SetB"), True, None)
    result = ttest_core.ttest(values, None, design, mask=flat_mask, residuals=True)
    z = result.bricks[:, 1].reshape(GRID_4MM.shape, order="F")
    # the tutorial's mean ACF: each subject's estimate printed %g, averaged, printed %.6g
    acfs = np.array([[round_g(v) for v in estimate_acf(m, mask, GRID_4MM.voxel_mm)] for m in maps])
    acf = tuple(float("%.6g" % v) for v in acfs.mean(axis=0))
    t2 = time.perf_counter()
    voxel = (GRID_4MM.voxel_mm,) * 3
    table = clustsim(mask, voxel, acf, iterations=iterations, seed=derived_seed(seed, j, k, 1),
                     pthr=PTHR, athr=(ALPHA,), n_jobs=1)  # fmt: skip
    t3 = time.perf_counter()
    null = ttest_clustsim.simulate(result.residuals, mask, design, jobs=1, iterations=iterations,
                                   seed=derived_seed(seed, j, k, 2), pthr=PTHR, n_threads=1)  # fmt: skip
    tables = {"acf": table, "randomise": ttest_clustsim.null_tables(null, PTHR, (ALPHA,))}
    t4 = time.perf_counter()
    out: dict = {"kind": kind, "k": k, "acf": acf, "pthr": {}}
    for p in PTHR:
        # bi-sided voxelwise p: |z| above the 2-sided threshold (3dttest++ -toz stores z)
        zthr = float(-special.ndtri(p / 2.0))
        pos, neg = max_cluster_sizes(z, mask, zthr)
        cell = {"max_pos": pos, "max_neg": neg}
        for route, tab in tables.items():
            size = csim_size(tab.threshold(p, ALPHA, NN, SIDED), tab.nodec)
            cell[route] = {"size": size, "fp": max(pos, neg) >= size}
        out["pthr"][str(p)] = cell
    out["seconds"] = {"data": t1 - t0, "ttest_acf": t2 - t1, "clustsim_acf": t3 - t2,
                      "clustsim_randomise": t4 - t3}  # fmt: skip
    return out


def summarise(results: list[dict]) -> list[dict]:
    """FWE rate, interval and median threshold per route, noise type and p."""
    rows = []
    for kind in NOISE_TYPES:
        mine = [r for r in results if r["kind"] == kind]
        if not mine:
            continue
        for route in ROUTES:
            for p in PTHR:
                cells = [r["pthr"][str(p)][route] for r in mine]
                hits = sum(c["fp"] for c in cells)
                lo, hi = clopper_pearson(hits, len(cells))
                rows.append({"route": route, "noise": kind, "pthr": p, "n": len(cells),
                             "false_positives": hits, "fwe": hits / len(cells), "ci95": [lo, hi],
                             "median_size": float(np.median([c["size"] for c in cells]))})  # fmt: skip
    return rows


def print_report(results: list[dict]) -> list[dict]:
    """Print the table, each noise type's ACF estimates and the largest clusters' 95th
    percentile over the analyses (the cluster size that would give exactly 5 %)."""
    rows = summarise(results)
    print(f"{'route':<10} {'noise':<14} {'pthr':>6} {'FWE %':>6}  {'95 % CI':<14} "
          f"{'FP/n':>8}  {'median k':>8}")  # fmt: skip
    for r in rows:
        ci = f"{100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f}"
        print(f"{r['route']:<10} {r['noise']:<14} {r['pthr']:>6} {100 * r['fwe']:6.1f}  {ci:<14} "
              f"{r['false_positives']:>4}/{r['n']:<4} {r['median_size']:8.1f}")  # fmt: skip
    for kind in NOISE_TYPES:
        mine = [r for r in results if r["kind"] == kind]
        if not mine:
            continue
        acfs = np.array([r["acf"] for r in mine])
        print(f"# {kind}: mean ACF estimate a, b, c = {', '.join('%.3g' % v for v in acfs.mean(0))}"
              f" (SD {', '.join('%.2g' % v for v in acfs.std(0))})")  # fmt: skip
        largest = [np.quantile([max(r["pthr"][str(p)]["max_pos"], r["pthr"][str(p)]["max_neg"])
                                for r in mine], 0.95) for p in PTHR]  # fmt: skip
        print(f"# {kind}: 95th percentile of the largest cluster over the analyses at p = "
              + ", ".join(f"{p}: {v:.1f}" for p, v in zip(PTHR, largest, strict=True)))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0], allow_abbrev=False)
    ap.add_argument("--analyses", type=int, default=50, help="null analyses per noise type (50)")
    ap.add_argument("--full", action="store_true", help=f"{FULL_ANALYSES} analyses per noise type")
    ap.add_argument("--iter", type=int, default=2000, help="iterations per table (2000)")
    ap.add_argument("--subjects", type=int, default=20, help="subjects per analysis (20)")
    ap.add_argument("--noise", nargs="+", choices=NOISE_TYPES, default=list(NOISE_TYPES))
    ap.add_argument("--workers", type=int, default=2, help="processes (2)")
    ap.add_argument("--seed", type=int, default=2017, help="base seed (2017)")
    ap.add_argument("--json", type=Path, help="write the summary and every analysis here")
    ap.add_argument("--records", type=Path, help="append each analysis as a JSON line here")
    ap.add_argument("--from-records", type=Path, help="only summarise a --records file")
    args = ap.parse_args(argv)
    if args.from_records:
        lines = args.from_records.read_text().splitlines()
        print_report([json.loads(line) for line in lines if line.strip()])
        return
    n = FULL_ANALYSES if args.full else args.analyses
    if n < 1 or args.iter < 2000 or args.subjects < 14 or args.workers < 1:
        ap.error("need --analyses >= 1, --iter >= 2000, --subjects >= 14, --workers >= 1")
    mask = brain_mask(GRID_4MM)
    print(f"# {n} null analyses per noise type ({', '.join(args.noise)}), {args.subjects} "
          f"subjects each, one-sample t-test; grid {'x'.join(map(str, GRID_4MM.shape))} at "
          f"{GRID_4MM.voxel_mm:g} mm, mask {int(mask.sum())} voxels")  # fmt: skip
    print(f"# NN{NN} {SIDED}, alpha {ALPHA}; {args.iter} Monte-Carlo iterations per table "
          f"(per analysis and route); seed {args.seed}; {args.workers} worker(s); "
          f"{platform.node()}, {os.cpu_count()} CPUs")  # fmt: skip
    # noise types interleaved: a run stopped early (see --records) stays balanced
    jobs = [(kind, k, args.seed, args.subjects, args.iter) for k in range(n)
            for kind in args.noise]  # fmt: skip
    t0 = time.perf_counter()
    results: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for i, res in enumerate(pool.map(analysis, jobs, chunksize=1), 1):
            results.append(res)
            if args.records:
                with args.records.open("a") as f:
                    f.write(json.dumps(res, default=bool) + "\n")
            if i % 10 == 0 or i == len(jobs):
                print(f"# {i}/{len(jobs)} analyses, {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
    wall = time.perf_counter() - t0
    rows = print_report(results)
    spent = {s: sum(r["seconds"][s] for r in results) for s in results[0]["seconds"]}
    print(f"# wall {wall:.0f} s; worker-seconds by stage: "
          + ", ".join(f"{s} {v:.0f}" for s, v in spent.items()))  # fmt: skip
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        settings.update(analyses=n, grid=list(GRID_4MM.shape), voxel_mm=GRID_4MM.voxel_mm,
                        mask_voxels=int(mask.sum()), pthr=list(PTHR), alpha=ALPHA, nn=NN,
                        sided=SIDED, wall_s=wall)  # fmt: skip
        args.json.write_text(json.dumps({"settings": settings, "summary": rows,
                                         "analyses": results}, indent=1, default=bool))  # fmt: skip


if __name__ == "__main__":
    main()
