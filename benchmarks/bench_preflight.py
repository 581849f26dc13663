"""Benchmark the pre-flight checks against the 3dMEMA step they run before (by hand, not in CI).

Writes the demo dataset (3 mm MNI grid 53×64×50, N subjects) to a temporary folder, builds the
tutorial's two-set plan, then times :func:`afni_group.validate.preflight` (every subject's grid,
masks, blur_est, beta and t bricks read and checked) and the native 3dMEMA step on the same plan.

    python benchmarks/bench_preflight.py                # 12 subjects
    python benchmarks/bench_preflight.py --subjects 40

Prints both wall times (module imports excluded), their ratio and the peak resident memory of
the process.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from afni_group import cli, validate
from afni_group.demo import writing as demo_writing
from afni_group.programs.clustsim import files as clustsim
from afni_group.programs.mema import files as mema  # imported here: not timed below

SETS = ["--set", "chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat",
        "--set", "keypress", "left_vs_right_press#0_Coef", "left_vs_right_press#0_Tstat"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=2)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bids = Path(tmp) / "bids"
        demo_writing.write_demo(bids, n_subjects=opts.subjects, seed=0, grid="3mm")
        argv = [str(bids), str(Path(tmp) / "out"), "group", "--n-cpus", str(opts.jobs), *SETS]
        args = cli.build_parser().parse_args(argv)
        plan = cli.build_plan(args)
        plan.n_cpus = opts.jobs

        start = time.perf_counter()
        qc = validate.preflight(plan)
        assert plan.clustsim_iter >= clustsim.MIN_ITERATIONS
        t_pre = time.perf_counter() - start

        analysis = plan.analyses[0]
        sets = [
            mema.MemaSet(s.label, plan.subject_labels, plan.brick_specs("beta", s),
                         plan.brick_specs("tstat", s))
            for s in analysis.sets
        ]  # fmt: skip
        start = time.perf_counter()
        mema.run_mema(sets, Path(tmp) / "mema.nii.gz", design=analysis.design, missing_data=0,
                      n_jobs=opts.jobs, progress=False)  # fmt: skip
        t_mema = time.perf_counter() - start

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{opts.subjects} subjects, 2 sets, group mask {qc['group_mask_voxels']} voxels")
    print(f"pre-flight checks : {t_pre:7.2f} s")
    print(f"native 3dMEMA     : {t_mema:7.2f} s")
    print(f"ratio             : {t_pre / t_mema:7.3f} (pre-flight / 3dMEMA)")
    print(f"peak RSS (process): {peak:7.0f} MB")


if __name__ == "__main__":
    main()
