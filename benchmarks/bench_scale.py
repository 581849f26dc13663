"""How native 3dMEMA scales with the number of subjects at 2 mm (run by hand, not in CI).

A synthetic study on the 2 mm MNI grid 91×109×91 with only the bricks 3dMEMA needs: each
subject of each set is one ``.nii.gz`` holding a beta and a t brick, exactly zero outside an
ellipsoid "brain" of about 230,000 voxels (as afni_proc.py results are outside the mask), run
with the tutorial's ``-missing_data 0``. For each N it runs ``afni-native 3dMEMA`` in a child
process and prints wall time, the child's peak resident memory (``ru_maxrss``) and the disk the
input store took (from the step's log), for

* two sets of N subjects (``-groups A B``, the tutorial's unpaired design), and
* one set of N subjects with one covariate.

AFNI's 3dMEMA (R) runs the two-set model side by side at small N (``--afni-sizes``); its time
is extrapolated linearly in N to the larger sizes (the printed ratio says which numbers were
measured and which extrapolated).

Writing thousands of distinct 2 mm datasets takes long and much disk, so ``--pool`` distinct
datasets are written once and every subject gets its own symbolic link to one of them: each
subject is still read and decompressed once, as in a real study, but subjects repeat every
``--pool`` subjects and the files come from the page cache (a real study also reads them from
disk: about 2 MB per subject and set here).

    python benchmarks/bench_scale.py                       # N = 100, 400, 1600 per set
    python benchmarks/bench_scale.py --sizes 100,400 --afni-sizes 10 --jobs 2
    python benchmarks/bench_scale.py --max-n 400 --no-afni

Needs free space in ``--tmp`` for the pool (~1.7 MB per dataset) and the largest store
(4 bytes × 230k voxels × bricks, 5.9 GB for 2 × 1600 subjects); it checks before each run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

GRID = (91, 109, 91)
AFFINE = np.array([[-2.0, 0, 0, 90], [0, -2.0, 0, 126], [0, 0, 2.0, -72], [0, 0, 0, 1]])
AFNI_ENV = Path("/opt/afni-oracle/env.sh")
# the child: afni-native 3dMEMA's command line, with the step's log lines on stderr
CHILD = (
    "import json, logging, sys\n"
    "logging.basicConfig(level=logging.INFO, format='%(relativeCreated).0f ms %(message)s')\n"
    "from afni_group.programs.cli.mema import cli_main\n"
    "sys.exit(cli_main(json.load(open(sys.argv[1]))))\n"
)
GIB = 1 << 30


def brain() -> np.ndarray:
    """The ellipsoid 'brain' (about 230,000 voxels), as in bench_mema.py."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in GRID), indexing="ij")
    return (((i - 45) / 36) ** 2 + ((j - 54) / 44) ** 2 + ((k - 45) / 35) ** 2) <= 1.0


def write_pool(folder: Path, n_pool: int, seed: int = 0) -> list[Path]:
    """``n_pool`` datasets of two bricks (beta, t), effect 0.3 in half of them, in ``folder``."""
    rng = np.random.default_rng(seed)
    inside = brain()
    n_in = int(inside.sum())
    paths = []
    for s in range(n_pool):
        data = np.zeros(GRID + (2,), np.float32)
        beta = rng.normal(0.3 if s % 2 else 0.0, 1.0, n_in).astype(np.float32)
        data[..., 0][inside] = beta
        data[..., 1][inside] = beta / rng.uniform(0.25, 0.6, n_in).astype(np.float32)
        img = nib.Nifti1Image(data, AFFINE)
        img.header.set_qform(AFFINE, 4)
        img.header.set_sform(AFFINE, 4)
        path = folder / f"pool-{s:04d}.nii.gz"
        nib.save(img, path)
        paths.append(path)
    return paths


def link_subjects(folder: Path, pool: list[Path], label: str, n: int, offset: int) -> list[Path]:
    """One symbolic link per subject (its own file name, so it is read on its own)."""
    links = []
    for s in range(n):
        link = folder / f"sub-{s:05d}_set-{label}.nii.gz"
        if not link.exists():
            link.symlink_to(pool[(s + offset) % len(pool)])
        links.append(link)
    return links


def mema_args(prefix: Path, sets: dict[str, list[Path]], covariates: Path | None) -> list[str]:
    """The 3dMEMA command line (AFNI's options) for these sets."""
    args = ["-prefix", str(prefix), "-missing_data", "0"]
    for label, files in sets.items():
        args += ["-set", label]
        for s, f in enumerate(files):
            args += [f"sub-{s:05d}", f"{f}[0]", f"{f}[1]"]
    if len(sets) == 2:
        args += ["-groups", *sets]
    if covariates is not None:
        args += ["-covariates", str(covariates)]
    return args


def covariate_file(folder: Path, n: int) -> Path:
    path = folder / f"age-{n}.txt"
    rows = ["subj age"] + [f"sub-{s:05d} {20 + (s * 7) % 50}" for s in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return path


def measured(cmd: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run ``cmd`` from a fresh interpreter: wall time, peak RSS (``RUSAGE_CHILDREN`` of that
    interpreter: the largest of ``cmd`` and its waited-for children) and the log."""
    probe = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "wall = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "sys.stderr.write((p.stdout + p.stderr).decode(errors='replace'))\n"
        "print(json.dumps({'wall': wall, 'rss_mb': rss, 'rc': p.returncode}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, *cmd], env=env, cwd=cwd, capture_output=True, text=True
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"{cmd[0]} failed ({result['rc']}):\n{proc.stderr[-3000:]}")
    result["log"] = proc.stderr
    return result


def store_gb(log: str) -> float:
    """Disk the input store took, from the 3dMEMA log line (0 when inputs stayed in memory)."""
    match = re.search(r"input store .*?: ([\d.]+) (GB|MB|kB) on disk", log)
    if not match:
        return 0.0
    return float(match.group(1)) / {"GB": 1, "MB": 1024, "kB": 1024**2}[match.group(2)]


def reading_s(log: str) -> float | None:
    """Seconds from the child's start until the store was complete (reading every subject)."""
    match = re.search(r"^(\d+) ms \+\+ 3dMEMA: input store", log, re.MULTILINE)
    return None if match is None else int(match.group(1)) / 1000


def native(work: Path, args: list[str], jobs: int, mem_limit: str) -> dict:
    argv_file = work / "argv.json"
    argv_file.write_text(json.dumps([*args, "-jobs", str(jobs), "-quiet", "-mem_limit", mem_limit]))
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(jobs)  # as afni-group's --n-cpus sets them
    result = measured([sys.executable, "-c", CHILD, str(argv_file)], env, work)
    result["store_gb"] = store_gb(result["log"])
    result["read_s"] = reading_s(result["log"])
    return result


def afni_env() -> dict[str, str] | None:
    if not AFNI_ENV.is_file():
        return None
    text = subprocess.run(
        ["bash", "-c", f"source {AFNI_ENV} && env -0"], capture_output=True, check=True
    ).stdout.decode()
    env = dict(line.split("=", 1) for line in text.split("\0") if "=" in line)
    return env if shutil.which("3dMEMA", path=env.get("PATH")) else None


def free_gb(folder: Path) -> float:
    return shutil.disk_usage(folder).free / GIB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    ap.add_argument(
        "--sizes", default="100,400,1600", help="subjects per set (default 100,400,1600)"
    )
    ap.add_argument("--max-n", type=int, default=None, help="skip sizes above this")
    ap.add_argument("--afni-sizes", default="10,20", help="AFNI's 3dMEMA at these N per set")
    ap.add_argument("--no-afni", action="store_true", help="skip AFNI's 3dMEMA")
    ap.add_argument("--no-covariate", action="store_true", help="skip the one-set model")
    ap.add_argument("--pool", type=int, default=200, help="distinct datasets written (default 200)")
    ap.add_argument("--jobs", type=int, default=2, help="-jobs and BLAS threads (default 2)")
    ap.add_argument("--mem-limit", default="2GB", help="-mem_limit (default 2GB)")
    ap.add_argument("--tmp", type=Path, default=None, help="folder for the data (default: $TMPDIR)")
    args = ap.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",") if args.max_n is None or int(n) <= args.max_n]
    afni_sizes = [] if args.no_afni else [int(n) for n in args.afni_sizes.split(",")]
    env = afni_env() if afni_sizes else None
    if afni_sizes and env is None:
        print(f"AFNI's 3dMEMA not found ({AFNI_ENV}): native only")
        afni_sizes = []
    n_brain = int(brain().sum())

    with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=args.tmp) as tmp:
        work = Path(tmp)
        print(f"grid {GRID} (2 mm), {n_brain:,} voxels with data; {free_gb(work):.0f} GB free")
        t0 = time.perf_counter()
        pool = write_pool(work, args.pool)
        pool_gb = sum(p.stat().st_size for p in pool) / GIB
        print(f"wrote {len(pool)} datasets (beta, t) in {time.perf_counter() - t0:.0f} s, "
              f"{pool_gb * 1024 / len(pool):.1f} MB each (not counted below)")  # fmt: skip
        rows: list[dict] = []
        models = [("two sets", 2)] + ([] if args.no_covariate else [("one set + cov", 1)])
        for n in sorted(set(afni_sizes) | set(sizes)):
            for name, n_sets in models:
                if n not in sizes and (n_sets == 1 or n not in afni_sizes):
                    continue
                need = 4 * n_brain * 2 * n * n_sets / GIB
                if need > free_gb(work) - 1:
                    print(f"skip {name} N={n}: the store needs {need:.1f} GB")
                    continue
                sets = {
                    label: link_subjects(work, pool, label, n, k * 7)
                    for k, label in enumerate("AB"[:n_sets])
                }
                cov = covariate_file(work, n) if n_sets == 1 else None
                prefix = work / f"native_{n_sets}_{n}.nii.gz"
                result = native(work, mema_args(prefix, sets, cov), args.jobs, args.mem_limit)
                row = {"model": name, "n": n, "subjects": n * n_sets, **result}
                if n_sets == 2 and n in afni_sizes:
                    afni_prefix = work / f"afni_{n}"
                    cmd = ["3dMEMA", *mema_args(afni_prefix, sets, None), "-jobs", str(args.jobs)]
                    afni = measured(cmd, env, work)
                    row.update(afni_wall=afni["wall"], afni_rss_mb=afni["rss_mb"])
                rows.append(row)
                _print_row(row)
                prefix.unlink(missing_ok=True)
        _summary(rows, n_brain)
    return 0


def _print_row(row: dict) -> None:
    text = (
        f"{row['model']:<14} N={row['n']:>5} per set ({row['subjects']:>5} subjects): "
        f"{row['wall']:7.1f} s, peak RSS {row['rss_mb']:6.0f} MB, store {row['store_gb']:5.2f} GB"
    )
    if row.get("read_s") is not None:
        text += f" (reading {row['read_s']:.0f} s)"
    if "afni_wall" in row:
        text += (
            f" | AFNI 3dMEMA {row['afni_wall']:7.1f} s, {row['afni_rss_mb']:5.0f} MB "
            f"(AFNI/native {row['afni_wall'] / row['wall']:.1f}x)"
        )
    print(text, flush=True)


def _summary(rows: list[dict], n_brain: int) -> None:
    """Linear fits in N; AFNI extrapolated; the paper estimate for 10,000 subjects."""
    two = [r for r in rows if r["model"] == "two sets"]
    if len(two) >= 2:
        n = np.array([r["subjects"] for r in two], float)
        slope, icpt = np.polyfit(n, [r["wall"] for r in two], 1)
        print(f"native two sets: {slope:.3f} s per subject + {icpt:.1f} s; peak RSS "
              f"{min(r['rss_mb'] for r in two):.0f}-{max(r['rss_mb'] for r in two):.0f} MB")  # fmt: skip
        est = slope * 10000 + icpt
        print(f"  10,000 subjects (paper): ~{est / 60:.0f} min, store "
              f"{4 * n_brain * 2 * 10000 / GIB:.0f} GB, memory as above")  # fmt: skip
    with_afni = [r for r in two if "afni_wall" in r]
    if with_afni:
        n = np.array([r["subjects"] for r in with_afni], float)
        walls = [r["afni_wall"] for r in with_afni]
        a_slope, a_icpt = np.polyfit(n, walls, 1) if len(n) > 1 else (walls[0] / n[0], 0.0)
        print(f"AFNI 3dMEMA (measured at {', '.join(str(int(x)) for x in n)} subjects): "
              f"{a_slope:.2f} s per subject + {a_icpt:.1f} s, extrapolated linearly:")  # fmt: skip
        for r in two:
            afni = a_slope * r["subjects"] + a_icpt
            kind = "measured" if "afni_wall" in r else "extrapolated"
            print(f"  {r['subjects']:>6} subjects: AFNI ~{afni:8.0f} s ({kind}), native "
                  f"{r['wall']:7.1f} s, ratio {afni / r['wall']:.0f}x")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
