"""``afni-group BIDS_DIR OUTPUT_DIR group``: the BIDS-App command line.

Follows the BIDS-Apps positional contract and BEP027 exit codes. Every failure is one line on
stderr naming the file or option and what to do; ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import shlex
import sys
from concurrent.futures import Future
from pathlib import Path

from afni_group import logs, slurm
from afni_group.errors import (
    EXIT_FAILURE,
    EXIT_UNKNOWN_LEVEL,
    AfniGroupError,
    MissingInputError,
    OutputError,
    UsageError,
    from_os_error,
)
from afni_group.options import ANALYSIS_LEVELS, CLUSTSIM_AUTO, RunOptions, build_parser
from afni_group.plan import AnalysisPlan, SetSpec, Thresholds
from afni_group.programs.mema.budget import parse_mem_limit

LOG = logging.getLogger("afni_group")


def default_n_cpus() -> int:
    """``SLURM_CPUS_PER_TASK`` under Slurm, else the CPUs this process may use."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(n_cpus: int) -> None:
    """Make BLAS/OpenMP (numpy's linear algebra, AFNI's programs) use ``--n-cpus`` threads.

    Runs before numpy is imported by the analysis modules, so the libraries read it at load;
    under Slurm this keeps the job inside its allocation.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n_cpus)


def _pre_parse_special(argv: list[str]) -> int | None:
    """``--bids-exec-spec`` works without the positional arguments."""
    if "--bids-exec-spec" in argv:
        from afni_group import boutiques

        print(boutiques.descriptor_json(build_parser()))
        return 0
    return None


def _is_within(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def _check_placement(path: Path, option: str, bids: Path, afni_dir: Path) -> None:
    """Refuse a folder afni-group writes (OUTPUT_DIR, --work-dir) where it would touch inputs."""
    target = path.resolve()
    if target == bids:
        raise OutputError(
            f"{option} {target} is BIDS_DIR: choose a separate folder, e.g. "
            f"{bids}/derivatives/afni-group"
        )
    if _is_within(target, afni_dir) or _is_within(afni_dir, target):
        raise OutputError(
            f"{option} {target} is inside (or contains) the afni_proc results {afni_dir}: choose "
            f"e.g. {bids}/derivatives/afni-group"
        )
    if _is_within(bids, target):
        raise OutputError(f"{option} {target} contains BIDS_DIR {bids}: choose another folder")
    if _is_within(target, bids) and not _is_within(target, bids / "derivatives"):
        raise OutputError(
            f"{option} {target} is inside BIDS_DIR but not under derivatives/: use "
            f"{bids}/derivatives/afni-group or a folder outside the dataset"
        )


def check_paths(args: argparse.Namespace) -> None:
    """Refuse outputs (OUTPUT_DIR, --work-dir) that would write into the inputs."""
    bids = args.bids_dir.resolve()
    afni_dir = (args.afni_dir or args.bids_dir / "derivatives" / "afni").resolve()
    _check_placement(args.output_dir, "OUTPUT_DIR", bids, afni_dir)
    # a --work-dir with $VAR (--write-sbatch) is only known on the compute node
    if args.work_dir is not None and "$" not in str(args.work_dir):
        _check_placement(args.work_dir, "--work-dir", bids, afni_dir)
    if not args.bids_dir.is_dir():
        raise MissingInputError(f"BIDS_DIR {args.bids_dir} does not exist")


def check_options(args: argparse.Namespace) -> None:
    """Refuse option combinations that contradict each other."""
    if args.overwrite and args.resume:
        raise UsageError(
            "--overwrite and --resume contradict each other: --overwrite deletes the results "
            "that --resume would reuse; pass one of them"
        )
    if args.group_column and len(args.group_column) not in (1, 3):
        raise UsageError(
            "--group-column takes a column name, optionally followed by its two values in "
            f"order (A B: the difference is B-A), not {len(args.group_column)} words"
        )
    if args.fan_out and not args.write_sbatch:
        raise UsageError("--fan-out shapes the job script: use it with --write-sbatch JOB.sh")
    if args.fan_out and args.dry_run:
        raise UsageError("--fan-out runs the analyses and --dry-run runs nothing: drop one")
    if args.only_analysis is not None and args.collect:
        raise UsageError("--only-analysis and --collect are the two parts of a --fan-out job")
    if (args.only_analysis is not None or args.collect) and (args.write_sbatch or args.dry_run):
        raise UsageError(
            "--only-analysis and --collect are run by a --fan-out job script, not with "
            "--write-sbatch or --dry-run"
        )


def expand_work_dir(args: argparse.Namespace) -> None:
    """Expand ``$VAR`` in ``--work-dir`` (given quoted, e.g. for node-local scratch)."""
    if args.work_dir is None or "$" not in str(args.work_dir):
        return
    expanded = os.path.expandvars(str(args.work_dir))
    if "$" in expanded:
        raise UsageError(
            f"--work-dir {args.work_dir}: a variable in it is not set here ({expanded})"
        )
    args.work_dir = Path(expanded)


def build_plan(args: argparse.Namespace) -> AnalysisPlan:
    """Discovery + options → the plan."""
    from afni_group import designs, discover

    # absolute from here on: every path in the plan (and the rendered scripts) is absolute
    bids_dir = args.bids_dir.resolve()
    afni_dir = (args.afni_dir or args.bids_dir / "derivatives" / "afni").resolve()
    found = discover.discover_subjects(
        bids_dir,
        afni_dir,
        args.participant_label,
        validate=not args.skip_bids_validation,
        session_labels=args.session_label,
    )
    subjects, dropped = discover.check_complete(
        found, args.drop_incomplete, needs_blur_est=args.clustsim == "acf"
    )
    sessions = list(dict.fromkeys(s.session for s in found))

    notes: list[str] = []
    if args.sets:
        if len(args.sets) > 2:
            raise UsageError(
                "3dMEMA takes one or two --set options (a one-sample test or two sets)"
            )
        sets = [SetSpec(discover.validate_set_label(lab), b, t) for lab, b, t in args.sets]
        if len({s.label for s in sets}) != len(sets):
            raise UsageError("--set labels must differ")
        discover.check_selectors(subjects, sets)
    else:
        sets, notes = discover.auto_sets(subjects)
    groups = None
    if args.group_column:
        column, *levels = args.group_column
        labels = list(dict.fromkeys(s.label for s in subjects))
        groups = designs.read_groups(bids_dir / "participants.tsv", column, levels, labels)
    name = args.analysis_name
    if args.program == "3dttest++" and name == build_parser().get_default("analysis_name"):
        name = "ttest"  # not analysis-mema for a 3dttest++ model
    analyses, left_out = designs.plan_analyses(
        sets,
        bool(args.sets),
        args.design,
        name,
        subjects,
        sessions,
        groups,
    )
    notes += left_out
    subjects = designs.included_units(subjects, analyses)

    covariates = {}
    if args.covariates:
        from afni_group.validate import covariate_values

        covariates = covariate_values(
            args.bids_dir / "participants.tsv",
            args.covariates,
            list(dict.fromkeys(s.label for s in subjects)),
        )
    check_program_options(args)
    if not 0 < args.mask_frac:
        raise UsageError("--mask-frac must be > 0 (a fraction <= 1 or a count > 1)")

    return AnalysisPlan(
        bids_dir=bids_dir,
        afni_dir=afni_dir,
        output_dir=args.output_dir.resolve(),
        work_dir=(args.work_dir or args.output_dir / ".work").resolve(),
        subjects=subjects,
        analyses=analyses,
        dropped=dropped,
        missing_data=None if args.missing_data < 0 else args.missing_data,
        mask_frac=args.mask_frac,
        thresholds=Thresholds(args.pthr, args.alpha, args.sided, args.nn),
        clustsim_iter=_first_iterations(args.clustsim_iter),
        clustsim_auto=args.clustsim_iter == CLUSTSIM_AUTO,
        seed=args.seed,
        hktest=not args.no_hktest,
        correct_dof=args.mema_correct_dof,
        covariates=covariates,
        n_cpus=args.n_cpus,
        mem_limit=parse_mem_limit(args.mem_limit),
        program=args.program,
        clustsim_route=args.clustsim,
        via_gen_group_command=args.via_gen_group_command,
        selection_notes=notes,
        inventory=found,
        layout=", ".join(dict.fromkeys(s.layout for s in found if s.layout)),
    )


#: options that only 3dMEMA has, and their default values
_MEMA_ONLY = {
    "--missing-data": ("missing_data", 0),
    "--no-hktest": ("no_hktest", False),
    "--mema-correct-dof": ("mema_correct_dof", False),
}


def check_program_options(args: argparse.Namespace) -> None:
    """Refuse option combinations the chosen ``--program`` and ``--clustsim`` cannot run."""
    if args.clustsim == "randomise" and args.program != "3dttest++":
        raise UsageError(
            "--clustsim randomise needs --program 3dttest++ (the randomised residuals come from "
            "3dttest++'s t-tests; 3dMEMA has no -Clustsim); or use --clustsim acf"
        )
    if args.clustsim == "randomise" and args.clustsim_iter == CLUSTSIM_AUTO:
        raise UsageError(
            "--clustsim-iter auto works with --clustsim acf only; give --clustsim randomise a "
            "number of iterations (default 10000)"
        )
    if args.program == "3dMEMA":
        return
    for option, (dest, default) in _MEMA_ONLY.items():
        if getattr(args, dest) != default:
            raise UsageError(
                f"{option} is a 3dMEMA option; leave it out with --program {args.program}"
            )


def _first_iterations(requested: int | str) -> int:
    """3dClustSim's iterations; with ``auto`` those of its first batch (the native runner adds
    batches until the threshold is stable)."""
    if requested != CLUSTSIM_AUTO:
        return int(requested)
    from afni_group.programs.clustsim.stability import AUTO_BATCH

    return AUTO_BATCH


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Everything after argument parsing."""
    if args.analysis_level not in ANALYSIS_LEVELS:
        print(
            f"afni-group: analysis level '{args.analysis_level}' is not supported: afni-group "
            "has only the 'group' level (run afni_proc.py per subject first)",
            file=sys.stderr,
        )
        return EXIT_UNKNOWN_LEVEL
    check_options(args)
    if args.write_sbatch:
        slurm.check_launch_options(args, args.n_cpus)  # cheap: before discovery
    if args.n_cpus is None:
        args.n_cpus = default_n_cpus()
    limit_threads(args.n_cpus)
    if not args.write_sbatch:
        expand_work_dir(args)
    check_paths(args)

    from afni_group import bids_validator, pipeline

    # the official validator runs beside discovery (it is a process of its own): an invalid
    # dataset is refused before anything is written, with its error the only line printed
    with (
        bids_validator.validating(args.bids_dir, skip=args.skip_bids_validation) as validation,
        logs.holding() as discovery_lines,
    ):
        try:
            plan = build_plan(args)
        except AfniGroupError:
            _validated(validation, discovery_lines)  # a dataset the validator refuses: that first
            raise
        plan.bids_validation = _validated(validation, discovery_lines)
    if args.write_sbatch:
        # the checks of a dry run, before the job waits in the queue; nothing is written
        pipeline.preflight(plan, RunOptions.from_namespace(args))
        if not args.fan_out:
            path = slurm.write_sbatch(args, argv)
            print(
                f"++ wrote {path} (submit it with: sbatch {path}; Slurm writes its log "
                f"{slurm.LOG_PATTERN.replace('%j', 'JOBID')} in the folder you submit from)"
            )
            return 0
        names = [a.name for a in plan.analyses]
        path = slurm.write_sbatch(args, argv, names)
        print(
            f"++ wrote {path} (submit it with: bash {path}; it submits one Slurm array task per "
            f"analysis ({', '.join(names)}) and a final job for the report; Slurm writes their "
            f"logs {slurm.ARRAY_LOG_PATTERN.replace('%A_%a', 'ARRAYID_N')} and "
            f"{slurm.LOG_PATTERN.replace('%j', 'JOBID')} in the folder you submit from)"
        )
        return 0
    from afni_group import fanout

    command_line = shlex.join(["afni-group", *fanout.public_argv(argv)])
    options = RunOptions.from_namespace(args)
    if args.only_analysis is not None:
        return fanout.run_task(plan, options, command_line, args.only_analysis)
    if args.collect:
        return fanout.collect(plan, options, command_line)
    return pipeline.run(plan, options, command_line)


def _validated(validation: Future, discovery_lines: logs.HeldMessages) -> dict:
    """The validator's summary; when it refuses the dataset, its error alone is printed."""
    try:
        return validation.result()
    except AfniGroupError:
        discovery_lines.drop()
        raise


def configure_logging(verbose: int) -> None:
    """Messages of the ``afni_group`` loggers go to the current stderr (:mod:`afni_group.logs`)."""
    logs.configure_console(verbose)


def _stdout_closed() -> int:
    """The reader of stdout went away (``afni-group --bids-exec-spec | head``): stop quietly.

    Python would report the failed flush at exit with a traceback; pointing stdout at
    /dev/null first keeps stderr clean. Exit 0: the reader took what it wanted.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's exit handler
        return code
    except BrokenPipeError:
        return _stdout_closed()


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    special = _pre_parse_special(argv)
    if special is not None:
        return special
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    logging.getLogger("bids").setLevel(logging.WARNING)
    try:
        return run(args, argv)
    except AfniGroupError as err:
        if args.verbose:
            LOG.exception("afni-group failed")
        print(f"afni-group: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(
            "afni-group: interrupted; finished steps are kept, partial ones removed",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        raise  # stdout closed by its reader: main() stops quietly
    except OSError as err:  # disk full, read-only or permission: 73 naming the file
        if args.verbose:
            LOG.exception("afni-group failed")
        error = from_os_error(err)
        print(f"afni-group: error: {error}", file=sys.stderr)
        return error.exit_code
    except Exception as err:  # last resort: one line, traceback only with -v
        if args.verbose:
            LOG.exception("afni-group failed")
        print(
            f"afni-group: unexpected error: {type(err).__name__}: {err} (rerun with -v for the "
            "traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def console_main() -> int:
    """The ``afni-group`` console script: :func:`main`, then a quick exit.

    At exit CPython's finalisation walks every object the run made (nilearn, matplotlib and
    scikit-learn alone hold a few hundred thousand): 0.3-0.7 s after the last line, for
    nothing. Frozen objects are left to the operating system; every output is closed by now
    and the handlers of :mod:`atexit` (logging, temporary folders) still run. Not done in
    :func:`main`, which tests call many times in one process.
    """
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console_main())
