"""The main job: plan → engine → BIDS-Derivatives outputs → report."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from afni_group import (
    __version__,
    atlas,
    bids_validator,
    bids_view,
    cluster_table,
    designs,
    lock,
    logs,
    outputs,
    provenance,
    space,
    validate,
)
from afni_group.errors import UsageError
from afni_group.options import RunOptions
from afni_group.plan import MASK_COUNT_FILE, MASK_FILE, AnalysisPlan
from afni_group.steps import StepLog

LOG = logging.getLogger(__name__)

SCRIPT_NAME = "group_analysis.sh"


def choose_engine(plan: AnalysisPlan, requested: str) -> tuple[str, str]:
    """The engine to use and why (``auto`` prefers AFNI when every program is on PATH)."""
    if requested == "native":
        return "native", "requested with --engine native"
    native_only = {
        "--mema-correct-dof": (plan.correct_dof, "AFNI's 3dMEMA cannot"),
        "--clustsim-iter auto": (plan.clustsim_auto, "AFNI's 3dClustSim cannot add iterations"),
    }
    for option, (given, why) in native_only.items():
        if not given:
            continue
        if requested == "afni":
            raise UsageError(f"{option} needs --engine native ({why})")
        return "native", f"auto: {option} is only available in the native engine"
    from afni_group.engines.afni.runner import afni_available

    available, reason = afni_available(plan.via_gen_group_command, plan.program)
    if requested == "afni":
        if not available:
            raise UsageError(f"--engine afni: {reason}; install AFNI and R or use --engine native")
        return "afni", "requested with --engine afni"
    if available:
        return "afni", f"auto: {reason}"
    return "native", f"auto: {reason}"


def render_script(plan: AnalysisPlan, command_line: str) -> str:
    from afni_group.engines.afni.render import render_script as render

    return render(plan, command_line=command_line)


def params_document(
    plan: AnalysisPlan,
    options: RunOptions,
    command_line: str,
    results: list[dict] | None,
    timings: dict[str, float] | None = None,
) -> dict:
    """Everything a reader needs to reproduce or report the run (design.md, params.json)."""
    t = plan.thresholds
    analyses = []
    for i, analysis in enumerate(plan.analyses):
        entry = {
            "name": analysis.name,
            "dir": analysis.dirname,
            "design": analysis.design,
            "program": plan.program,
            "stats_file": plan.stats_file,
            "correct_dof": plan.correct_dof,
            "sets": [{"label": s.label, "beta": s.beta, "tstat": s.tstat} for s in analysis.sets],
            **plan.members_summary(analysis),
            "mask": {"file": MASK_FILE, "frac": plan.mask_frac, "n_voxels": None},
            "acf": None,
            "clustsim": {
                "nn": t.nn,
                "sided": t.sided,
                "pthr": t.pthr,
                "alpha": t.alpha,
                "iterations": plan.clustsim_iter,
                "seed": plan.seed,
                "table": plan.clustsim_table,
                "route": plan.clustsim_route,
            },
            "cluster_size_threshold": None,
            "results": [],
        }
        if plan.clustsim_auto:
            entry["clustsim"]["auto"] = {"requested": "--clustsim-iter auto"}
        if results is not None:
            entry.update(results[i])
            auto = entry.pop("clustsim_auto", None)
            if auto:  # the batches 'auto' ran (the total is plan.clustsim_iter by now)
                entry["clustsim"]["auto"] = auto
            # 3dttest++ -Clustsim: the iterations its tables rest on (jobs x ceil(iter / jobs)),
            # its jobs and the seeds it used (drawn from the clock without --seed)
            entry["clustsim"].update(entry.pop("clustsim_randomise", None) or {})
            adir = plan.analysis_dir(analysis)
            entry["mask"]["n_voxels"] = _mask_voxels(adir / MASK_FILE)
            if (adir / MASK_COUNT_FILE).exists():
                entry["mask"]["count_file"] = MASK_COUNT_FILE
                entry["mask"]["n_masks"] = len(plan.mask_inputs)
            for result in entry["results"]:
                if plan.program != "3dMEMA":  # 3dttest++ -Clustsim writes z (-toz): no dof
                    result["stat"] = "z" if plan.ttest_toz else "t"
                result["dof"] = designs.t_dof(adir / plan.stats_file, result["tbrick"])
                result["clusters"] = cluster_table.params_summary(adir / result["clusters_tsv"])
        analyses.append(entry)
    document = {
        "afni_group_version": __version__,
        "command_line": command_line,
        "engine": plan.engine,
        "engine_reason": plan.engine_reason,
        "program": plan.program,
        "clustsim_route": plan.clustsim_route,
        "status": "planned" if results is None else "complete",
        "options": options.recorded,
        "versions": outputs.software_versions(afni=plan.engine == "afni"),
        "subjects": plan.subject_labels,
        "dropped": [{"subject": s, "reason": r} for s, r in plan.dropped],
        "selection_notes": plan.selection_notes,
        "afni_proc_layout": plan.layout,
        "analyses": analyses,
        "input_qc": plan.input_qc,
        "bids_validation": plan.bids_validation,
        "template": space.template_document(space.identify_plan(plan)),
        "atlases": atlas.provenance(),
        "timings_s": timings or {},
    }
    hosts = host_paths(plan)
    if hosts:
        document["host_paths"] = hosts
    return document


def _mask_voxels(path: Path) -> int | None:
    if not path.exists():
        return None
    from afni_group import afni_io

    return int((afni_io.read_dataset(path).data[..., 0] != 0).sum())


def write_mask_counts(plan: AnalysisPlan) -> None:
    """``analysis-*/mask_count.nii.gz``: how many subject masks cover each voxel, before the
    ``-frac`` intersection (``3dmask_tool -count -frac 0``; the report's coverage figure).

    Written for either engine from the plan's mask inputs, after the run (it is quick).
    """
    from afni_group.programs.mask_tool.files import make_group_mask

    dirs = [plan.analysis_dir(a) for a in plan.analyses]
    first = make_group_mask(plan.mask_inputs, dirs[0] / MASK_COUNT_FILE, frac=0, count=True)
    for adir in dirs[1:]:
        outputs.atomic_copy(first, adir / MASK_COUNT_FILE)


def preflight(plan: AnalysisPlan, options: RunOptions) -> None:
    """The checks ``--write-sbatch`` makes before writing the job script.

    Reads the inputs and OUTPUT_DIR but writes nothing, so bad data is refused before the job
    waits in the queue. They are the checks a run makes too (:func:`run`), in the same order.
    """
    outputs.refuse_existing_results(plan.output_dir, options.overwrite, options.resume)
    # every input and option checked before anything is written or run (issue 15)
    plan.input_qc = validate.preflight(plan, options.accept_grid_mismatch)


def host_paths(plan: AnalysisPlan) -> dict[str, dict]:
    """The host side of the plan's folders when running in a ``--write-sbatch`` job."""
    return provenance.host_paths(
        {
            "bids_dir": plan.bids_dir,
            "afni_dir": plan.afni_dir,
            "output_dir": plan.output_dir,
            "work_dir": plan.work_dir,
        }
    )


def _dataset_description(plan: AnalysisPlan) -> dict:
    """dataset_description.json, with the host paths of the sources when in a container."""
    description = outputs.dataset_description(plan)
    hosts = host_paths(plan)
    sources = []
    for name in ("bids_dir", "afni_dir"):
        if name in hosts:
            sources.append({"URL": Path(hosts[name]["host"]).as_uri()})
    if sources:  # the container's /data means nothing after the job: name the host folders
        description["SourceDatasets"] = sources + description["SourceDatasets"]
    return description


def _script_text(plan: AnalysisPlan, command_line: str) -> str:
    """group_analysis.sh, with a comment mapping container paths to host paths in a job."""
    text = render_script(plan, command_line)
    hosts = host_paths(plan)
    if not hosts:
        return text
    first, _, rest = text.partition("\n")
    lines = [f"# {h['container']} is {h['host']} on the host" for h in hosts.values()]
    note = "# Written in a container, where:\n" + "\n".join(dict.fromkeys(lines)) + "\n"
    return f"{first}\n{note}{rest}"


def run(plan: AnalysisPlan, options: RunOptions, command_line: str) -> int:
    """Run the plan (or only write it with ``--dry-run``); returns the exit code.

    The whole run holds the lock on OUTPUT_DIR (:mod:`afni_group.lock`): a second run into the
    same folder exits 73 naming the holder. A run refused before it wrote anything leaves no
    OUTPUT_DIR it created (not even the lock), and a dry run into an existing, non-empty
    OUTPUT_DIR only previews: it writes nothing there.
    """
    # reads only: bad input and an engine that cannot run are refused before OUTPUT_DIR is
    # touched; earlier results are refused under the lock (prepare_output_dir), so a running
    # job is named as the holder
    plan.input_qc = validate.preflight(plan, options.accept_grid_mismatch)
    plan.engine, plan.engine_reason = choose_engine(plan, options.engine)
    out = plan.output_dir
    if options.dry_run and out.is_dir() and any(out.iterdir()):
        return _preview(plan, options, command_line)
    created = not out.exists()
    try:
        with lock.locked(out):
            return _run_locked(plan, options, command_line)
    except BaseException:
        if created:
            _remove_if_only_lock(out)
        raise


def _remove_if_only_lock(out: Path) -> None:
    """Remove an OUTPUT_DIR this run created when it holds nothing but the lock's files."""
    state = out / outputs.STATE_DIR
    with contextlib.suppress(OSError):
        if {p.name for p in out.iterdir()} <= {outputs.STATE_DIR} and {
            p.name for p in state.iterdir()
        } <= set(outputs.LOCK_FILES):
            shutil.rmtree(out)


def _preview(plan: AnalysisPlan, options: RunOptions, command_line: str) -> int:
    """``--dry-run`` into an existing OUTPUT_DIR: the plan on the terminal, nothing written."""
    lock.refuse_if_held(plan.output_dir)  # as a run would: exit 73 naming the running one
    print(plan.describe(), file=sys.stderr)
    if plan.engine == "afni":
        render_script(plan, command_line)  # refuses what AFNI cannot run, as the run would
    print(json.dumps(plan.to_dict(), indent=2))
    existing = outputs.existing_results(plan.output_dir)
    if existing and not (options.overwrite or options.resume):
        LOG.info(
            "++ dry run: a run would refuse the earlier results in %s (%s); pass --overwrite or "
            "--resume",
            plan.output_dir, ", ".join(existing[:4]),
        )  # fmt: skip
    LOG.info(
        "++ dry run: %s exists, so nothing was written there (the plan is above; a dry run "
        "into a new or empty folder also writes %s, inventory.tsv and plan.json); ran nothing",
        plan.output_dir, SCRIPT_NAME,
    )  # fmt: skip
    return 0


def _run_locked(plan: AnalysisPlan, options: RunOptions, command_line: str) -> int:
    print(plan.describe(), file=sys.stderr)
    if options.dry_run:
        bids_validator.log_summary(plan.bids_validation)
    outputs.prepare_output_dir(
        plan, overwrite=options.overwrite, resume=options.resume, dry_run=options.dry_run
    )
    out = plan.output_dir
    write_plan_files(plan, command_line)

    if options.dry_run:
        outputs.write_json(
            out / "plan.json", params_document(plan, options, command_line, results=None)
        )
        print(json.dumps(plan.to_dict(), indent=2))
        LOG.info(
            "++ dry run: wrote %s, inventory.tsv and plan.json in %s; ran nothing", SCRIPT_NAME, out
        )
        return 0

    with log_to_file(out / "logs" / "afni-group.log", plan.input_qc.get("warnings") or []):
        return _execute(plan, options, command_line)


def write_plan_files(plan: AnalysisPlan, command_line: str) -> None:
    """dataset_description.json, inventory.tsv and group_analysis.sh in OUTPUT_DIR."""
    out = plan.output_dir
    outputs.write_json(out / "dataset_description.json", _dataset_description(plan))
    outputs.atomic_write_text(out / "inventory.tsv", outputs.inventory_tsv(plan))
    _write_script(plan, command_line)


def _write_script(plan: AnalysisPlan, command_line: str) -> None:
    """OUTPUT_DIR/group_analysis.sh, unless the plan is one AFNI cannot run (native engine)."""
    try:
        write_script(plan, command_line, plan.output_dir / SCRIPT_NAME)
    except UsageError as err:
        if plan.engine == "afni":
            raise
        # the native engine can run plans AFNI cannot express (e.g. --mema-correct-dof)
        LOG.warning("++ no %s written: %s", SCRIPT_NAME, err)


def write_script(plan: AnalysisPlan, command_line: str, path: Path) -> Path:
    """The plan's AFNI script (what the afni engine runs), executable."""
    outputs.atomic_write_text(path, _script_text(plan, command_line)).chmod(0o755)
    return path


@contextlib.contextmanager
def log_to_file(path: Path, warnings: list[str] | None = None) -> Iterator[None]:
    """Also keep the run's lines (with the DETAIL ones ``-v`` shows) in ``path``; the afni
    engine adds one log per step. ``warnings`` (the pre-flight's, printed before the log file
    existed) are written into it first."""
    handler = logs.log_to_file(path)
    for line in warnings or []:
        handler.handle(logging.LogRecord(LOG.name, logging.WARNING, __file__, 0, line, None, None))
    try:
        yield
    finally:
        logging.getLogger(logs.ROOT).removeHandler(handler)
        handler.close()


def run_engine(
    plan: AnalysisPlan, log: StepLog, script: Path, state_dir: Path, logs_dir: Path
) -> list[dict]:
    """Run every analysis of the plan with its engine; the per-analysis results.

    The afni engine runs ``script`` (the rendered plan) in ``state_dir/staging`` and writes its
    step logs into ``logs_dir``; the native engine records its steps in ``log``.
    """
    if plan.engine == "afni":
        from afni_group.engines.afni.runner import run_afni

        return run_afni(plan, script, state_dir / "staging", logs_dir)
    from afni_group.engines.native.runner import run_native

    return run_native(plan, log)


def finish(
    plan: AnalysisPlan,
    options: RunOptions,
    command_line: str,
    results: list[dict],
    timings: dict[str, float],
    extra: dict | None = None,
) -> None:
    """The mask counts, the BIDS view, the report, then params.json: written last, so a failed
    run never leaves one.

    ``extra``: more entries for params.json (e.g. a ``--fan-out`` run's Slurm jobs).
    """
    out = plan.output_dir
    if plan.clustsim_auto and plan.engine == "native":  # the script names the total 'auto' ran
        _write_script(plan, command_line)
    write_mask_counts(plan)
    params = {**params_document(plan, options, command_line, results, timings), **(extra or {})}
    # the BIDS view of AFNI's files (both engines), indexed in params.json for the report
    params["bids_view"] = bids_view.write_bids_view(plan, params)
    if not options.no_report:
        from afni_group.report.render import write_report

        report = write_report(out, params, n_jobs=plan.n_cpus)
        LOG.info("++ report: %s", report)
    # params.json marks a finished run: written last, so a failed run never leaves one
    outputs.write_json(out / "params.json", params)


def _execute(plan: AnalysisPlan, options: RunOptions, command_line: str) -> int:
    out = plan.output_dir
    start = time.monotonic()
    LOG.info("++ afni-group %s: %s", __version__, command_line)
    bids_validator.log_summary(plan.bids_validation)  # on the console and in the run's log
    made_work_dir = not plan.work_dir.exists()
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    log = StepLog(out, resume=options.resume)
    results = run_engine(plan, log, out / SCRIPT_NAME, out / outputs.STATE_DIR, out / "logs")
    timings = log.seconds()
    timings["total"] = round(time.monotonic() - start, 3)
    finish(plan, options, command_line, results, timings)
    remove_if_empty(plan.work_dir, made_work_dir)
    LOG.info(
        "++ DONE with group-level stats and clustering in %.1f s: %s", time.monotonic() - start, out
    )
    return 0


def remove_if_empty(work_dir: Path, made_here: bool) -> None:
    """Remove the work folder this run created, if it is empty.

    A folder that existed before (a bind-mount point such as ``/work`` in a container, which
    ``rmdir`` refuses with EBUSY, or a user's scratch folder) is left alone; failing to remove
    it never fails a finished run.
    """
    if not made_here:
        return
    with contextlib.suppress(OSError):
        if not any(work_dir.iterdir()):
            work_dir.rmdir()
