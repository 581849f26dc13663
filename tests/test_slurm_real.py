"""The ``--write-sbatch`` job script under a real Slurm (opt-in: marker ``slurm``).

Runs only where ``sbatch`` reaches a running cluster and ``apptainer`` (or ``singularity``) is on
PATH; skipped otherwise (as in CI). On a development machine: start a one-node Slurm, put an
Apptainer stand-in on PATH whose "image" has afni-group installed, then
``pytest -m slurm tests/test_slurm_real.py`` (README, "Slurm"). The jobs inherit this process's
environment (sbatch's default ``--export=ALL``). A run takes a few minutes: a requeued job
waits about two minutes before Slurm starts it again.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from afni_group import __version__, cli

pytestmark = pytest.mark.slurm

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"}


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return "sbatch/scontrol not on PATH"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return f"no Slurm controller answers: {ping.stdout.strip() or ping.stderr.strip()}"
    if shutil.which("apptainer") is None and shutil.which("singularity") is None:
        return "no apptainer/singularity on PATH (the job runs afni-group in the image)"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    problem = _cluster_problem()
    if problem:
        pytest.skip(f"real Slurm test: {problem}")


@pytest.fixture(scope="module")
def demo(cluster, tmp_path_factory) -> dict[str, Path]:
    from afni_group.demo import cli as demo_cli

    root = tmp_path_factory.mktemp("slurm-real")
    bids = root / "bids"
    assert demo_cli.main([str(bids), "--subjects", "6", "--grid", "small", "--seed", "0"]) == 0
    image = root / "afni-group.sif"
    image.write_bytes(b"")  # the stand-in needs the file; a real run needs the real image
    return {"root": root, "bids": bids, "image": image}


def write_job(demo: dict[str, Path], name: str) -> tuple[Path, Path]:
    """A job script for a fresh OUTPUT_DIR (the tutorial's sets, few ClustSim iterations)."""
    out = demo["root"] / f"out-{name}"
    script = demo["root"] / f"{name}.sh"
    argv = [str(demo["bids"]), str(out), "group", "--engine", "native", "--clustsim-iter",
            "500", "--seed", "1", "--set", "chx", "left_vs_right_chx#0_Coef",
            "left_vs_right_chx#0_Tstat", "--write-sbatch", str(script), "--image",
            str(demo["image"]), "--cpus", "1", "--mem", "2G", "--time", "15"]  # fmt: skip
    assert cli.main(argv) == 0
    return script, out


def submit(script: Path) -> str:
    """sbatch from the script's folder (where Slurm then writes the job's log)."""
    done = subprocess.run(
        ["sbatch", "--parsable", str(script)],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().split(";")[0]


def job_info(job: str) -> dict[str, str]:
    done = subprocess.run(
        ["scontrol", "-o", "show", "job", job], capture_output=True, text=True, timeout=30
    )
    return dict(re.findall(r"(\w+)=(\S*)", done.stdout))


def wait_for(job: str, timeout: float = 420) -> dict[str, str]:
    """The job's scontrol record once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = job_info(job)
        if info.get("JobState") in FINAL:
            return info
        time.sleep(2)
    subprocess.run(["scancel", job], check=False)
    pytest.fail(f"job {job} did not end within {timeout} s: {job_info(job)}")


def slurm_log(script: Path, job: str) -> str:
    return (script.parent / f"afni-group-{job}.out").read_text()


def test_job_completes_with_the_report(demo):
    script, out = write_job(demo, "plain")
    job = submit(script)
    info = wait_for(job)
    log = slurm_log(script, job)
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), log
    assert "++ DONE" in log and "finished with exit code 0" in log
    assert (out / "report.html").is_file() and (out / "params.json").is_file()
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["SourceDatasets"][0]["URL"] == demo["bids"].as_uri()  # host path
    params = json.loads((out / "params.json").read_text())
    assert params["host_paths"]["output_dir"] == {"container": "/out", "host": str(out)}


def test_requeued_job_resumes_and_completes(demo):
    script, out = write_job(demo, "requeue")
    job = submit(script)
    run_log = out / "logs" / "afni-group.log"
    deadline = time.monotonic() + 300
    while not (run_log.is_file() and "3dMEMA" in run_log.read_text()):
        assert time.monotonic() < deadline, f"job {job} never reached 3dMEMA: {job_info(job)}"
        assert job_info(job).get("JobState") not in FINAL, slurm_log(script, job)
        time.sleep(0.5)
    subprocess.run(["scontrol", "requeue", job], check=True, timeout=60)
    info = wait_for(job)
    log = slurm_log(script, job)
    assert (info["JobState"], info["ExitCode"], info["Restarts"]) == ("COMPLETED", "0:0", "1"), log
    assert log.count(f"++ afni-group job {job} on") == 2  # both attempts, appended
    assert "restart 1, resuming" in log
    assert "--resume" in log.split("restart 1, resuming")[1]
    assert (out / "report.html").is_file()


def test_two_jobs_on_one_output_folder_do_not_both_write(demo):
    script, out = write_job(demo, "twice")
    jobs = [submit(script), submit(script)]
    infos = {job: wait_for(job) for job in jobs}
    outcome = sorted((i["JobState"], i["ExitCode"]) for i in infos.values())
    assert outcome == [("COMPLETED", "0:0"), ("FAILED", "73:0")], outcome
    loser = next(j for j, i in infos.items() if i["JobState"] == "FAILED")
    refusal = slurm_log(script, loser)
    # refused by the lock while the other runs, or by "already has results" once it is done
    assert "is in use by afni-group pid" in refusal or "already has results" in refusal
    run_log = (out / "logs" / "afni-group.log").read_text()
    assert run_log.count(f"++ afni-group {__version__}:") == 1  # one run wrote; no interleaving


# ---- issue 24: --fan-out, one array task per analysis and a final job ------------------------

ANALYSES = ["leftchx", "rightchx", "leftpress", "rightpress", "left_vs_right_chx",
            "left_vs_right_press"]  # the demo's contrasts, each its own analysis  # fmt: skip


def write_fan_out(demo: dict[str, Path], name: str) -> tuple[Path, Path]:
    """A --fan-out job script for a fresh OUTPUT_DIR: the demo's six default analyses."""
    out = demo["root"] / f"out-{name}"
    script = demo["root"] / f"{name}.sh"
    argv = [str(demo["bids"]), str(out), "group", "--engine", "native", "--clustsim-iter",
            "2000", "--seed", "1", "--fan-out", "--write-sbatch", str(script), "--image",
            str(demo["image"]), "--cpus", "1", "--mem", "2G", "--time", "15"]  # fmt: skip
    assert cli.main(argv) == 0
    return script, out


def submit_fan_out(script: Path, *args: str) -> tuple[str, str]:
    """``bash JOB.sh``: the array job's id and the final job's."""
    done = subprocess.run(["bash", str(script), *args], cwd=script.parent, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    found = re.search(r"array job (\d+) \(6 tasks: (.*)\) and job (\d+)", done.stdout)
    assert found and found.group(2).split() == ANALYSES, done.stdout
    return found.group(1), found.group(3)


def array_tasks(array: str) -> dict[int, dict[str, str]]:
    """Every task of an array job by index (scontrol shows each as one line)."""
    done = subprocess.run(["scontrol", "-o", "show", "job", array], capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    tasks = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in done.stdout.splitlines()]
    return {int(t["ArrayTaskId"]): t for t in tasks if t.get("ArrayTaskId", "").isdigit()}


def wait_for_log(path: Path, text: str, job: str) -> None:
    deadline = time.monotonic() + 300
    while not (path.is_file() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{path} never said {text!r}: {job_info(job)}"
        time.sleep(0.5)


def test_fan_out_every_task_completes_with_one_report(demo):
    script, out = write_fan_out(demo, "fan")
    array, final = submit_fan_out(script)
    info = wait_for(final, timeout=600)
    log = slurm_log(script, final)
    assert (info["JobState"], info["ExitCode"], info["JobName"]) == (
        "COMPLETED", "0:0", "afni-group-report"), log  # fmt: skip
    tasks = array_tasks(array)
    assert sorted(tasks) == list(range(6))
    assert {(t["JobState"], t["ExitCode"]) for t in tasks.values()} == {("COMPLETED", "0:0")}
    for i, name in enumerate(ANALYSES):
        task_log = (script.parent / f"afni-group-{array}_{i}.out").read_text()
        assert f"--only-analysis {name}" in task_log and f"DONE with analysis-{name}" in task_log
    params = json.loads((out / "params.json").read_text())
    assert params["status"] == "complete" and [a["name"] for a in params["analyses"]] == ANALYSES
    assert params["fan_out"]["tasks"] == {f"analysis-{n}": f"{array}_{i}"
                                          for i, n in enumerate(ANALYSES)}  # fmt: skip
    assert (out / "report.html").is_file() and not (out / ".work").exists()
    run_log = (out / "logs" / "afni-group.log").read_text()
    assert run_log.count(f"final task of array job {array}") == 1  # one report, written once


def test_fan_out_cancelled_task_is_named_requeued_one_resumes_and_resume_completes(demo):
    script, out = write_fan_out(demo, "fan-fail")
    array, final = submit_fan_out(script)
    # task 0 killed mid-way (in 3dClustSim); task 1 requeued while it runs
    wait_for_log(out / "logs" / "analysis-leftchx" / "afni-group.log", "3dClustSim", array)
    subprocess.run(["scancel", f"{array}_0"], check=True, timeout=60)
    wait_for_log(out / "logs" / "analysis-rightchx" / "afni-group.log", "3dMEMA", array)
    subprocess.run(["scontrol", "requeue", f"{array}_1"], check=True, timeout=60)
    info = wait_for(final, timeout=600)
    log = slurm_log(script, final)
    assert (info["JobState"], info["ExitCode"]) == ("FAILED", "1:0"), log
    error = next(x for x in log.splitlines() if x.startswith("afni-group: error:"))
    assert error.startswith("afni-group: error: 1 of 6 analyses did not finish: analysis-"
                            f"leftchx was killed or cancelled mid-way in task {array}_0")  # fmt: skip
    assert f"bash {script} --resume" in error
    tasks = array_tasks(array)
    assert tasks[0]["JobState"] == "CANCELLED"
    assert (tasks[1]["JobState"], tasks[1]["Restarts"]) == ("COMPLETED", "1")
    assert "restart 1, resuming" in (script.parent / f"afni-group-{array}_1.out").read_text()
    assert {tasks[i]["JobState"] for i in range(1, 6)} == {"COMPLETED"}
    assert not (out / "params.json").exists()
    assert (out / "analysis-rightpress" / "mema_results.nii.gz").is_file()  # the others': kept

    again, final = submit_fan_out(script, "--resume")
    info = wait_for(final, timeout=600)
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), slurm_log(script, final)
    assert {t["JobState"] for t in array_tasks(again).values()} == {"COMPLETED"}
    skipped = (script.parent / f"afni-group-{again}_5.out").read_text()
    assert skipped.count("unchanged, skipped (--resume)") == 7  # a finished analysis: no work
    redone = (script.parent / f"afni-group-{again}_0.out").read_text()
    assert "++ 3dClustSim\n" in redone  # the cancelled one: what was missing
    assert json.loads((out / "params.json").read_text())["fan_out"]["array_job"] == again
