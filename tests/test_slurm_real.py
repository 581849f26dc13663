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
