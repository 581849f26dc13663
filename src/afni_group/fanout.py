"""``--write-sbatch --fan-out``: one Slurm array task per analysis, then a final task.

The job script (:mod:`afni_group.slurm`) submits an array with one task per analysis and a
final job that waits for the whole array (``afterany``). Each array task runs
``afni-group ... --only-analysis NAME`` (:func:`run_task`): that analysis's 3dMEMA, group mask,
mean ACF, 3dClustSim and clusters, on its own CPUs, into ``OUTPUT_DIR/analysis-NAME`` (every
task computes the mask, ACF and 3dClustSim that a whole run computes once and copies: they
depend only on the subjects, so with the same seed the tables are the same). The final task runs
``afni-group ... --collect`` (:func:`collect`): it checks that every task finished, then writes
``dataset_description.json``, ``inventory.tsv``, ``group_analysis.sh``, the report and
``params.json``; if one did not, it names it in one line and exits 1, leaving the others'
results in place for ``--resume``.

Tasks running at once never write the same file:

* a task holds the OUTPUT_DIR lock shared and its analysis's lock exclusively
  (:mod:`afni_group.lock`); the final task (like a whole run) holds the OUTPUT_DIR lock
  exclusively, so it cannot start while a task still runs;
* a task's step records (``--resume``), its record of how it ended (``task.json``), its
  staging folder and rendered script live in ``OUTPUT_DIR/.afni-group/analysis-NAME/``; its logs
  in ``OUTPUT_DIR/logs/analysis-NAME/``; its temporary files in ``WORK_DIR/analysis-NAME``;
* only the final task writes the files of the whole run.

``task.json`` holds the task's Slurm id, an identity of the analysis's options
(:func:`analysis_key`) and, once finished, its results: the final task accepts a result only
from this array job (``AFNI_GROUP_FAN_OUT_ARRAY``) with the options of this run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from afni_group import bids_validator, lock, outputs, pipeline, validate
from afni_group.errors import AfniGroupError, OutputError, StepError, UsageError, from_os_error
from afni_group.options import RunOptions
from afni_group.plan import Analysis, AnalysisPlan
from afni_group.steps import StepLog

LOG = logging.getLogger(__name__)

#: How each task ended, in its state folder.
RECORD = "task.json"
#: Set by the job script for the container: the array task (``JOBID_INDEX``), the array job,
#: and the job script's host path (for the final task's message).
TASK_VARIABLE = "AFNI_GROUP_FAN_OUT_TASK"
ARRAY_VARIABLE = "AFNI_GROUP_FAN_OUT_ARRAY"
SCRIPT_VARIABLE = "AFNI_GROUP_FAN_OUT_SCRIPT"
#: The internal options the job script adds (never recorded, never passed on).
INTERNAL_OPTIONS = ("--only-analysis", "--collect")


def state_dir(plan: AnalysisPlan, analysis: Analysis) -> Path:
    """The task's own state folder: ``OUTPUT_DIR/.afni-group/analysis-NAME``."""
    return plan.output_dir / outputs.STATE_DIR / analysis.dirname


def logs_dir(plan: AnalysisPlan, analysis: Analysis) -> Path:
    """The task's logs: ``OUTPUT_DIR/logs/analysis-NAME``."""
    return plan.output_dir / "logs" / analysis.dirname


def analysis_key(plan: AnalysisPlan, analysis: Analysis, engine: str) -> str:
    """Identity of what one analysis computes (its sets, the subjects, every option).

    Paths are left out (the same folder is ``/out`` in the container and a host path
    outside); ``engine`` is the engine the user asked for (``auto``, ``afni``, ``native``).
    """
    t = plan.thresholds
    what = {
        "analysis": [analysis.name, analysis.design, [dataclasses.astuple(s) for s in analysis.sets]],
        "subjects": plan.subject_labels,
        "options": [plan.missing_data, plan.mask_frac, dataclasses.astuple(t), plan.clustsim_iter,
                    plan.seed, plan.hktest, plan.correct_dof, plan.covariates,
                    plan.via_gen_group_command, engine],
    }  # fmt: skip
    if (plan.program, plan.clustsim_route) != ("3dMEMA", "acf"):  # the tutorial's keys unchanged
        what["model"] = [plan.program, plan.clustsim_route]
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def public_argv(argv: list[str]) -> list[str]:
    """``argv`` without the internal options the job script adds (for params.json)."""
    kept: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--only-analysis":
            skip = True
        elif token != "--collect" and not token.startswith("--only-analysis="):
            kept.append(token)
    return kept


def find_analysis(plan: AnalysisPlan, name: str) -> Analysis:
    """The analysis named ``name`` (``NAME`` or ``analysis-NAME``), or a usage error."""
    for analysis in plan.analyses:
        if name in (analysis.name, analysis.dirname):
            return analysis
    names = ", ".join(a.name for a in plan.analyses)
    raise UsageError(f"--only-analysis {name}: this run has no such analysis (it has: {names})")


def read_record(plan: AnalysisPlan, analysis: Analysis) -> dict | None:
    """The task's ``task.json``, or None when there is none (or it is unreadable)."""
    try:
        record = json.loads((state_dir(plan, analysis) / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _error_text(err: BaseException) -> str:
    if isinstance(err, AfniGroupError):
        return str(err)
    if isinstance(err, OSError):
        return str(from_os_error(err))
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    return f"{type(err).__name__}: {err}"


def run_task(plan: AnalysisPlan, options: RunOptions, command_line: str, name: str) -> int:
    """One array task: every step of one analysis into ``OUTPUT_DIR/analysis-NAME``.

    Returns 0. A failure is raised (as in a whole run) once ``task.json`` records it, with the
    error the final task will quote.
    """
    analysis = find_analysis(plan, name)
    task = dataclasses.replace(plan, analyses=[analysis], work_dir=plan.work_dir / analysis.dirname)
    out = plan.output_dir
    state = state_dir(task, analysis)
    with lock.locked(out, shared=True), lock.locked(out, name=analysis.dirname):
        record = {
            "status": "running",
            "analysis": analysis.dirname,
            "key": analysis_key(task, analysis, options.engine),
            "task": os.environ.get(TASK_VARIABLE) or None,
            "array": os.environ.get(ARRAY_VARIABLE) or None,
            "host": socket.gethostname(),
            "started": time.time(),
        }
        try:
            # this analysis's inputs only: each task checks what it reads
            task.input_qc = validate.preflight(task, options.accept_grid_mismatch)
            task.engine, task.engine_reason = pipeline.choose_engine(task, options.engine)
            print(task.describe(), file=sys.stderr)
            _prepare(task, analysis, options)
            record.update(engine=task.engine, engine_reason=task.engine_reason)
            outputs.write_json(state / RECORD, record)
            with pipeline.log_to_file(logs_dir(task, analysis) / "afni-group.log"):
                return _execute_task(task, analysis, options, command_line, record)
        except BaseException as err:
            failed = {**record, "status": "failed", "error": _error_text(err)}
            with contextlib.suppress(OSError):  # e.g. a full disk: the error itself matters
                outputs.write_json(state / RECORD, failed)
            raise


def _prepare(task: AnalysisPlan, analysis: Analysis, options: RunOptions) -> None:
    """Refuse or clear this analysis's earlier results (only its own: other tasks run)."""
    out = task.output_dir
    adir = task.analysis_dir(analysis)
    if adir.exists() and not (options.overwrite or options.resume):
        raise OutputError(
            f"OUTPUT_DIR {out} already has results of {analysis.dirname}: pass --overwrite to "
            "replace them or --resume to reuse finished steps"
        )
    if options.overwrite:
        shutil.rmtree(adir, ignore_errors=True)
        for path in state_dir(task, analysis).glob("*"):
            if path.is_dir():
                shutil.rmtree(path)  # the staging folder
            elif path.name not in outputs.LOCK_FILES:
                path.unlink()
        (out / "report.html").unlink(missing_ok=True)
    # params.json marks a finished run: no longer true while an analysis is redone
    (out / "params.json").unlink(missing_ok=True)


def _execute_task(
    task: AnalysisPlan, analysis: Analysis, options: RunOptions, command_line: str, record: dict
) -> int:
    state = state_dir(task, analysis)
    start = time.monotonic()
    LOG.info("++ afni-group %s (task %s): %s", analysis.dirname, record["task"], command_line)
    made_work_dir = not task.work_dir.exists()
    task.work_dir.mkdir(parents=True, exist_ok=True)
    log = StepLog(task.output_dir, resume=options.resume, state_dir=state)
    script = state / pipeline.SCRIPT_NAME
    if task.engine == "afni":
        pipeline.write_script(task, command_line, script)
    results = pipeline.run_engine(task, log, script, state, logs_dir(task, analysis))
    timings = log.seconds()
    timings["total"] = round(time.monotonic() - start, 3)
    done = {**record, "status": "complete", "result": results[0], "timings": timings}
    outputs.write_json(state / RECORD, done)
    pipeline.remove_if_empty(task.work_dir, made_work_dir)
    LOG.info(
        "++ DONE with %s in %.1f s (the final task writes the report): %s",
        analysis.dirname,
        time.monotonic() - start,
        task.analysis_dir(analysis),
    )
    return 0


def problem(plan: AnalysisPlan, analysis: Analysis, engine: str, array: str | None) -> str | None:
    """Why the task of ``analysis`` cannot be collected (None: it finished, for this run)."""
    record = read_record(plan, analysis)
    name = analysis.dirname
    if record is None:
        return f"{name} did not run"
    if array and record.get("array") != array:
        return f"{name} did not run in array job {array} (cancelled before it started?)"
    where = f"task {record.get('task')}" if record.get("task") else "its task"
    log = f"logs/{name}/afni-group.log" + (
        f" and Slurm's afni-group-{record['task']}.out" if record.get("task") else ""
    )
    if record.get("status") == "failed":
        return f"{name} failed in {where}: {record.get('error')} (see {log})"
    if record.get("status") != "complete" or not isinstance(record.get("result"), dict):
        return f"{name} was killed or cancelled mid-way in {where} (see {log})"
    if record.get("key") != analysis_key(plan, analysis, engine):
        return f"{name} has results of other options (rerun its task)"
    return None


def collect(plan: AnalysisPlan, options: RunOptions, command_line: str) -> int:
    """The final task: check every analysis finished, then the run's files and the report.

    Raises
    ------
    StepError
        Exit 1: one line naming each analysis that did not finish, and how to resume.
    """
    plan.input_qc = validate.preflight(plan, options.accept_grid_mismatch)
    out = plan.output_dir
    array = os.environ.get(ARRAY_VARIABLE) or None
    with lock.locked(out):
        problems = [p for a in plan.analyses if (p := problem(plan, a, options.engine, array))]
        if problems:
            script = os.environ.get(SCRIPT_VARIABLE)
            how = f"bash {script} --resume" if script else "the same job with --resume"
            raise StepError(
                f"{len(problems)} of {len(plan.analyses)} analyses did not finish: "
                f"{'; '.join(problems)}. The others' results are in place; submit {how} to "
                "run only what is missing"
            )
        records = [read_record(plan, a) or {} for a in plan.analyses]
        plan.engine = records[0].get("engine", plan.engine)
        plan.engine_reason = records[0].get("engine_reason", "")
        print(plan.describe(), file=sys.stderr)
        if options.overwrite:
            _remove_other_analyses(plan)
        pipeline.write_plan_files(plan, command_line)
        with pipeline.log_to_file(out / "logs" / "afni-group.log"):
            return _finish(plan, options, command_line, records, array)


def _remove_other_analyses(plan: AnalysisPlan) -> None:
    """``--overwrite``: results of analyses this run does not have (as a whole run would)."""
    from afni_group.bids_view import remove_view

    keep = {a.dirname for a in plan.analyses}
    for folder in (plan.output_dir, plan.output_dir / outputs.STATE_DIR):
        for path in folder.glob("analysis-*"):
            if path.name not in keep and path.is_dir():
                LOG.info("++ --overwrite: removing %s (not an analysis of this run)", path)
                shutil.rmtree(path)
    remove_view(plan.output_dir)  # the BIDS view of an earlier run; finish() writes this one's


def _finish(
    plan: AnalysisPlan,
    options: RunOptions,
    command_line: str,
    records: list[dict],
    array: str | None,
) -> int:
    start = time.monotonic()
    LOG.info("++ afni-group (final task of array job %s): %s", array, command_line)
    bids_validator.log_summary(plan.bids_validation)  # on the console and in the run's log
    timings: dict[str, float] = {}
    for analysis, record in zip(plan.analyses, records, strict=True):
        for step, seconds in (record.get("timings") or {}).items():
            prefix = f"{analysis.dirname}/"
            timings[step if step.startswith(prefix) else prefix + step] = seconds
    first_start = min(float(r.get("started", time.time())) for r in records)
    timings["total"] = round(time.time() - first_start, 3)  # first task's start to the report
    fan_out = {
        "array_job": array,
        "tasks": {a.dirname: r.get("task") for a, r in zip(plan.analyses, records, strict=True)},
    }
    results = [r["result"] for r in records]
    # the work folder is the user's (or the job's bind point, which the job script removes)
    pipeline.finish(plan, options, command_line, results, timings, extra={"fan_out": fan_out})
    LOG.info(
        "++ DONE with group-level stats and clustering of %d analyses (report in %.1f s): %s",
        len(plan.analyses),
        time.monotonic() - start,
        plan.output_dir,
    )
    return 0
