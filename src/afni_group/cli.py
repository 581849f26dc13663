"""``afni-group BIDS_DIR OUTPUT_DIR group``: the BIDS-App command line.

Follows the BIDS-Apps positional contract and BEP027 exit codes. Every failure is one line on
stderr naming the file or option and what to do; ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from afni_group import slurm
from afni_group.errors import (
    EXIT_FAILURE,
    EXIT_UNKNOWN_LEVEL,
    AfniGroupError,
    MissingInputError,
    OutputError,
    UsageError,
    from_os_error,
)
from afni_group.options import ANALYSIS_LEVELS, RunOptions, build_parser
from afni_group.plan import Analysis, AnalysisPlan, SetSpec, Thresholds, safe_name
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
    if args.session_label:
        raise UsageError(
            "--session-label is not supported: afni-group analyses one afni_proc.py results "
            "folder per subject"
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
    from afni_group import discover

    # absolute from here on: every path in the plan (and the rendered scripts) is absolute
    bids_dir = args.bids_dir.resolve()
    afni_dir = (args.afni_dir or args.bids_dir / "derivatives" / "afni").resolve()
    found = discover.discover_subjects(
        bids_dir, afni_dir, args.participant_label, validate=not args.skip_bids_validation
    )
    subjects, dropped = discover.check_complete(found, args.drop_incomplete)

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
        design = args.design
        if design == "auto":
            design = "one" if len(sets) == 1 else "groups"
        if (design == "one") != (len(sets) == 1):
            raise UsageError(f"--design {design} does not fit {len(sets)} --set option(s)")
        analyses = [Analysis(safe_name(args.analysis_name), sets, design)]
    else:
        sets, notes = discover.auto_sets(subjects)
        if args.design not in ("auto", "one"):
            raise UsageError("--design groups/conditions needs two explicit --set options")
        analyses = [Analysis(safe_name(s.label), [s], "one") for s in sets]

    covariates = {}
    if args.covariates:
        from afni_group.validate import covariate_values

        covariates = covariate_values(
            args.bids_dir / "participants.tsv", args.covariates, [s.label for s in subjects]
        )
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
        clustsim_iter=args.clustsim_iter,
        seed=args.seed,
        hktest=not args.no_hktest,
        correct_dof=args.mema_correct_dof,
        covariates=covariates,
        n_cpus=args.n_cpus,
        mem_limit=parse_mem_limit(args.mem_limit),
        via_gen_group_command=args.via_gen_group_command,
        selection_notes=notes,
        inventory=found,
    )


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

    from afni_group import pipeline

    plan = build_plan(args)
    if args.write_sbatch:
        # the checks of a dry run, before the job waits in the queue; nothing is written
        pipeline.preflight(plan, RunOptions.from_namespace(args))
        path = slurm.write_sbatch(args, argv)
        print(
            f"++ wrote {path} (submit it with: sbatch {path}; Slurm writes its log "
            f"{slurm.LOG_PATTERN.replace('%j', 'JOBID')} in the folder you submit from)"
        )
        return 0
    command_line = shlex.join(["afni-group", *argv])
    return pipeline.run(plan, RunOptions.from_namespace(args), command_line)


def configure_logging(verbose: int) -> None:
    """Messages of the ``afni_group`` loggers go to the current stderr, one plain line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s")
    )
    logger = logging.getLogger("afni_group")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    logger.propagate = False


def main(argv: list[str] | None = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
