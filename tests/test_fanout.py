"""``--fan-out``'s two parts run in-process: one task per analysis, then the final task (issue 24).

The job script that runs them under Slurm is tested in test_slurm.py (stand-ins) and
test_slurm_real.py (a real Slurm).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from afni_group import afni_io, boutiques, cli, fanout, options
from afni_group.errors import EXIT_CANT_CREATE, EXIT_FAILURE, EXIT_USAGE, StepError

CHX, PRESS = "left_vs_right_chx", "left_vs_right_press"  # tiny_bids's two contrasts


@pytest.fixture
def study(tiny_bids: Path, tmp_path: Path, monkeypatch) -> dict:
    monkeypatch.setenv(fanout.ARRAY_VARIABLE, "7")
    return {"bids": tiny_bids, "out": tmp_path / "out", "root": tmp_path}


def run(capsys, study: dict, *extra: str, out: Path | None = None) -> tuple[int, str]:
    argv = [str(study["bids"]), str(out or study["out"]), "group", "--engine", "native",
            "--clustsim-iter", "2000", "--seed", "1", "--n-cpus", "1", "--skip-bids-validation",
            *extra]  # fmt: skip
    capsys.readouterr()
    code = cli.main(argv)
    return code, capsys.readouterr().err


def task(capsys, study: dict, monkeypatch, index: int, *extra: str) -> tuple[int, str]:
    monkeypatch.setenv(fanout.TASK_VARIABLE, f"7_{index}")
    return run(capsys, study, "--only-analysis", (CHX, PRESS)[index], *extra)


def test_tasks_then_collect_give_the_results_of_a_whole_run(capsys, study, monkeypatch):
    assert task(capsys, study, monkeypatch, 0)[0] == 0
    assert task(capsys, study, monkeypatch, 1)[0] == 0
    out = study["out"]
    assert not (out / "params.json").exists()  # only the final task writes the run's files
    code, err = run(capsys, study, "--collect", "--no-report")  # (the report: test_slurm_real)
    assert code == 0, err
    params = json.loads((out / "params.json").read_text())
    assert params["status"] == "complete"
    assert params["fan_out"] == {
        "array_job": "7",
        "tasks": {f"analysis-{CHX}": "7_0", f"analysis-{PRESS}": "7_1"},
    }
    assert "--collect" not in params["command_line"] and "collect" not in params["options"]
    assert (out / "dataset_description.json").is_file() and (out / "inventory.tsv").is_file()
    assert (out / "logs" / f"analysis-{PRESS}" / "afni-group.log").is_file()

    whole = study["root"] / "whole"
    monkeypatch.delenv(fanout.ARRAY_VARIABLE)
    assert run(capsys, study, "--no-report", out=whole)[0] == 0
    for name in (CHX, PRESS):
        a, b = whole / f"analysis-{name}", out / f"analysis-{name}"
        for brick in ("mema_results.nii.gz", "mask.nii.gz"):
            assert np.array_equal(afni_io.read_dataset(a / brick).data,
                                  afni_io.read_dataset(b / brick).data)  # fmt: skip
        for text in ("ClustSim.NN1_bisided.1D", f"clust_bisided_clusters_{name}.tsv"):
            assert (a / text).read_text() == (b / text).read_text()
    ours = {a["name"]: a["results"] for a in params["analyses"]}
    theirs = json.loads((whole / "params.json").read_text())["analyses"]
    assert ours == {a["name"]: a["results"] for a in theirs}


def test_a_failed_task_is_named_and_resume_redoes_only_what_is_missing(capsys, study, monkeypatch):
    assert task(capsys, study, monkeypatch, 0)[0] == 0
    real = fanout.pipeline.run_engine

    def broken(*args, **kwargs):
        raise StepError("AFNI step 3dMEMA failed (exit status 1): ** FATAL ERROR: boom")

    monkeypatch.setattr(fanout.pipeline, "run_engine", broken)
    code, err = task(capsys, study, monkeypatch, 1)
    assert code == EXIT_FAILURE and "boom" in err
    monkeypatch.setattr(fanout.pipeline, "run_engine", real)

    code, err = run(capsys, study, "--collect")
    assert code == EXIT_FAILURE
    line = err.strip().splitlines()[-1]
    assert line.startswith(
        f"afni-group: error: 1 of 2 analyses did not finish: analysis-{PRESS} failed in task "
        "7_1: AFNI step 3dMEMA failed (exit status 1): ** FATAL ERROR: boom"
    )
    assert "--resume" in line and f"analysis-{CHX}" not in line
    out = study["out"]
    assert not (out / "params.json").exists() and not (out / "report.html").exists()
    assert (out / f"analysis-{CHX}" / "mema_results.nii.gz").is_file()  # usable

    code, err = task(capsys, study, monkeypatch, 0, "--resume")
    assert code == 0 and err.count("unchanged, skipped (--resume)") == 7  # every step
    code, err = task(capsys, study, monkeypatch, 1, "--resume")
    assert code == 0 and "skipped" not in err
    assert run(capsys, study, "--collect", "--no-report")[0] == 0
    assert json.loads((out / "params.json").read_text())["status"] == "complete"


def _record(study, name: str, **fields) -> None:
    path = study["out"] / ".afni-group" / f"analysis-{name}" / fanout.RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields))


def test_what_the_final_task_says_about_each_task(study):
    args = cli.build_parser().parse_args(
        [str(study["bids"]), str(study["out"]), "group", "--engine", "native"]
    )
    plan = cli.build_plan(args)
    chx = plan.analyses[0]
    key = fanout.analysis_key(plan, chx, "native")

    def says(array="7"):
        return fanout.problem(plan, chx, "native", array)

    assert says() == f"analysis-{CHX} did not run"
    _record(study, CHX, status="complete", array="6", key=key, result={})
    assert says() == f"analysis-{CHX} did not run in array job 7 (cancelled before it started?)"
    _record(study, CHX, status="running", array="7", task="7_0", key=key)
    assert says().startswith(f"analysis-{CHX} was killed or cancelled mid-way in task 7_0")
    assert "afni-group-7_0.out" in says()
    _record(study, CHX, status="complete", array="7", task="7_0", key="other", result={})
    assert says() == f"analysis-{CHX} has results of other options (rerun its task)"
    _record(study, CHX, status="complete", array="7", task="7_0", key=key, result={})
    assert says() is None
    assert says(array=None) is None  # run by hand: any array job's result of these options
    assert fanout.analysis_key(plan, chx, "afni") != key
    # the model and the ClustSim route are options of what a task computes
    plan.program = "3dttest++"
    ttest = fanout.analysis_key(plan, chx, "native")
    plan.clustsim_route = "randomise"
    assert len({key, ttest, fanout.analysis_key(plan, chx, "native")}) == 3


def test_a_task_clears_or_refuses_only_its_own_analysis(capsys, study, monkeypatch):
    out = study["out"]
    (out / f"analysis-{CHX}").mkdir(parents=True)
    (out / f"analysis-{CHX}" / "old.txt").write_text("earlier run")
    (out / f"analysis-{PRESS}").mkdir()
    (out / f"analysis-{PRESS}" / "other.txt").write_text("another task's")
    (out / "params.json").write_text("{}")
    code, err = task(capsys, study, monkeypatch, 0)
    assert code == EXIT_CANT_CREATE
    assert f"already has results of analysis-{CHX}" in err.strip().splitlines()[-1]
    record = json.loads((out / ".afni-group" / f"analysis-{CHX}" / fanout.RECORD).read_text())
    assert record["status"] == "failed" and "already has results" in record["error"]
    assert task(capsys, study, monkeypatch, 0, "--overwrite")[0] == 0
    assert not (out / f"analysis-{CHX}" / "old.txt").exists()
    assert (out / f"analysis-{PRESS}" / "other.txt").is_file()
    assert not (out / "params.json").exists()  # no longer a finished run


def test_unknown_analysis_is_a_usage_error(capsys, study):
    code, err = run(capsys, study, "--only-analysis", "nope")
    assert code == EXIT_USAGE
    assert f"--only-analysis nope: this run has no such analysis (it has: {CHX}, {PRESS})" in err


def test_internal_options_stay_internal():
    parser = options.build_parser()
    help_text = parser.format_help()
    assert "--fan-out" in help_text and "--only-analysis" not in help_text
    ids = {i["id"] for i in boutiques.build_descriptor(parser)["inputs"]}
    assert not ids & {"fan_out", "only_analysis", "collect"}
    argv = ["b", "o", "group", "--only-analysis", "x", "--collect", "--only-analysis=y", "--nn"]
    assert fanout.public_argv([*argv, "2"]) == ["b", "o", "group", "--nn", "2"]
