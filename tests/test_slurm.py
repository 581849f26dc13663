"""``--write-sbatch``: the rendered job script, run for real against a stand-in ``apptainer``."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from afni_group import cli, slurm
from afni_group.errors import EXIT_USAGE, UsageError

# A stand-in for apptainer: records its arguments, one per line, NUL-free and exact.
FAKE_APPTAINER = """#!/bin/bash
for a in "$@"; do printf '%s\\0' "$a"; done > "$RECORD"
env | grep -E '^(APPTAINERENV_|SINGULARITYENV_|OMP_NUM_THREADS=)' | sort > "$RECORD.env"
exit "${FAKE_STATUS:-0}"
"""


@pytest.fixture
def layout(tmp_path: Path, tiny_bids: Path, monkeypatch) -> dict[str, Path]:
    bids = tiny_bids  # discovery runs before the script is written
    monkeypatch.chdir(tmp_path)  # where sbatch would be run from
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "apptainer"
    fake.write_text(FAKE_APPTAINER)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    image = tmp_path / "afni-group.sif"
    image.write_bytes(b"")
    return {
        "root": tmp_path,
        "bids": bids,
        "out": tmp_path / "results" / "group",
        "job": tmp_path / "jobs" / "job.sh",
        "bin": fake_bin,
        "image": image,
    }


def write(layout: dict[str, Path], *extra: str) -> Path:
    argv = [
        str(layout["bids"]),
        str(layout["out"]),
        "group",
        "--write-sbatch",
        str(layout["job"]),
        "--image",
        str(layout["image"]),
        *extra,
    ]
    assert cli.main(argv) == 0
    return layout["job"]


def run_script(
    layout: dict[str, Path], script: Path, *args: str, **env: str
) -> subprocess.CompletedProcess:
    """``bash script ARGS`` with the stand-ins on PATH, from the root folder."""
    full_env = {
        "PATH": f"{layout['bin']}:/usr/bin:/bin",
        "RECORD": str(layout["root"] / "record"),
        "SBATCH_RECORD": str(layout["root"] / "sbatch"),
        "HOME": str(layout["root"]),
        **env,
    }
    return subprocess.run(
        ["bash", str(script), *args],
        env=full_env,
        cwd=layout["root"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_job(
    layout: dict[str, Path], script: Path, *args: str, **env: str
) -> tuple[list[str], str, int]:
    """Run the job script with the stand-in apptainer; its argv, env lines and exit code."""
    record = layout["root"] / "record"
    proc = run_script(layout, script, *args, **env)
    argv = record.read_bytes().decode().split("\0")[:-1] if record.exists() else []
    env_lines = Path(f"{record}.env").read_text() if Path(f"{record}.env").exists() else ""
    return argv, env_lines, proc.returncode


def binds(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-B"]


def container_argv(argv: list[str], image: Path) -> list[str]:
    return argv[argv.index(str(image)) + 1 :]


def test_header_binds_and_environment(layout):
    script = write(layout, "--cpus", "6", "--mem", "24G", "--time", "1-02:00:00",
                   "--mail-user", "someone@brown.edu")  # fmt: skip
    text = script.read_text()
    assert text.startswith("#!/bin/bash\n")
    for line in ("#SBATCH -c 6", "#SBATCH --mem=24G", "#SBATCH --time=1-02:00:00",
                 "#SBATCH --mail-user=someone@brown.edu", "#SBATCH --mail-type=ALL",
                 "#SBATCH --output=afni-group-%j.out", "#SBATCH --open-mode=append",
                 "#SBATCH --requeue"):  # fmt: skip
        assert line in text.splitlines(), line
    assert os.access(script, os.X_OK)

    argv, env_lines, status = run_job(layout, script, SLURM_CPUS_PER_TASK="5")
    assert status == 0
    assert argv[:2] == ["exec", "--cleanenv"]
    assert binds(argv) == [
        f"{layout['bids']}:/data:ro",
        f"{layout['out']}:/out",
        f"{layout['out']}/.work:/work",
    ]
    inner = container_argv(argv, layout["image"])
    assert inner[:4] == ["afni-group", "/data", "/out", "group"]
    args = cli.build_parser().parse_args(inner[1:])
    assert args.n_cpus == 5 and args.work_dir == Path("/work")
    assert "APPTAINERENV_OMP_NUM_THREADS=5" in env_lines
    assert "OMP_NUM_THREADS=5" in env_lines.splitlines()
    assert not (layout["out"] / ".work").exists()  # the default bind point, left empty: removed


def test_analysis_options_pass_through_and_launch_options_do_not(layout):
    options = [
        "--set", "chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat",
        "--set", "keypress", "left_vs_right_press#0_Coef", "left_vs_right_press#0_Tstat",
        "--design", "conditions", "--missing-data", "-1", "--pthr", "0.005", "--alpha", "0.01",
        "--sided", "2sided", "--nn", "2", "--clustsim-iter", "2000", "--seed", "-7",
        "--no-hktest", "--mema-correct-dof", "--drop-incomplete", "--engine", "afni",
        "--via-gen-group-command", "--dry-run", "--overwrite", "--no-report", "-vv",
        "--participant-label", "01", "sub-02", "--covariates", "age", "sex",
        "--analysis-name", "odd name $(touch pwned) 'quoted'", "--mask-frac", "0.7",
        "--skip-bids-validation",
    ]  # fmt: skip
    script = write(layout, *options)
    argv, _, status = run_job(layout, script, SLURM_CPUS_PER_TASK="2")
    assert status == 0
    assert not (layout["root"] / "pwned").exists()
    inner = container_argv(argv, layout["image"])
    got = vars(cli.build_parser().parse_args(inner[1:]))
    want = vars(cli.build_parser().parse_args(["b", "o", "group", *options]))
    for key in ("bids_dir", "output_dir", "n_cpus", "work_dir"):
        got.pop(key), want.pop(key)
    assert got == want  # every analysis option, exactly (incl. the awkward analysis name)
    for launch in ("--write-sbatch", "--image", "--cpus", "--mem", "--time", "--mail-user"):
        assert launch not in inner


def test_explicit_n_cpus_wins_over_slurm(layout):
    script = write(layout, "--n-cpus", "3")
    argv, env_lines, _ = run_job(layout, script, SLURM_CPUS_PER_TASK="8")
    args = cli.build_parser().parse_args(container_argv(argv, layout["image"])[1:])
    assert args.n_cpus == 3
    assert "APPTAINERENV_OMP_NUM_THREADS=3" in env_lines


def test_without_slurm_uses_cpus_default(layout):
    argv, _, _ = run_job(layout, write(layout, "--cpus", "4"))
    args = cli.build_parser().parse_args(container_argv(argv, layout["image"])[1:])
    assert args.n_cpus == 4


def test_exit_code_of_the_container_is_the_job_status(layout):
    _, _, status = run_job(layout, write(layout), FAKE_STATUS="66")
    assert status == 66


def test_paths_outside_the_binds_get_their_own(layout):
    afni = layout["root"] / "elsewhere" / "afni"
    shutil.copytree(layout["bids"] / "derivatives" / "afni", afni)
    work = layout["root"] / "scratch"
    labels = layout["root"] / "lists" / "subjects.txt"
    labels.parent.mkdir()
    labels.write_text("01\n02\n")
    script = write(layout, "--afni-dir", str(afni), "-w", str(work),
                   "--participant-label", str(labels))  # fmt: skip
    argv, _, _ = run_job(layout, script)
    assert binds(argv) == [
        f"{layout['bids']}:/data:ro",
        f"{layout['out']}:/out",
        f"{work}:/work",
        f"{labels.parent}:/mnt/labels:ro",
        f"{afni}:/mnt/afni_dir:ro",
    ]
    args = cli.build_parser().parse_args(container_argv(argv, layout["image"])[1:])
    assert args.afni_dir == Path("/mnt/afni_dir")
    assert args.participant_label == ["/mnt/labels/subjects.txt"]
    assert args.work_dir == Path("/work")
    assert work.is_dir()


def test_afni_dir_inside_bids_uses_the_data_bind(layout):
    afni = layout["bids"] / "derivatives" / "afni"
    argv, _, _ = run_job(layout, write(layout, "--afni-dir", str(afni)))
    assert len(binds(argv)) == 3
    args = cli.build_parser().parse_args(container_argv(argv, layout["image"])[1:])
    assert args.afni_dir == Path("/data/derivatives/afni")


def test_relative_paths_become_absolute(layout, monkeypatch):
    monkeypatch.chdir(layout["root"])
    assert cli.main(["bids", "results/group", "group", "--write-sbatch", "jobs/job.sh",
                     "--image", "afni-group.sif"]) == 0  # fmt: skip
    text = layout["job"].read_text()
    assert f"BIDS_DIR={layout['bids']}\n" in text
    assert f"IMAGE={layout['image']}\n" in text


def test_image_uri_is_kept(layout):
    assert cli.main([str(layout["bids"]), str(layout["out"]), "group", "--write-sbatch",
                     str(layout["job"]), "--image", "docker://afnigroup/afni-group:0.1.0"]) == 0  # fmt: skip
    assert "IMAGE=docker://afnigroup/afni-group:0.1.0\n" in layout["job"].read_text()


@pytest.mark.parametrize(
    "extra",
    [
        ("--mail-user", "x@y.edu", "--analysis-name", "it's"),
        ("--work-dir", "${TMPDIR}/a b/$SLURM_JOB_ID", "--n-cpus", "2", "--overwrite"),
        ("--afni-dir", "ELSEWHERE", "--resume", "--time", "UNLIMITED"),
        ("--fan-out", "--overwrite", "--n-cpus", "2"),
    ],
)
def test_shellcheck_and_bash_n(layout, extra):
    elsewhere = layout["root"] / "elsewhere"
    shutil.copytree(layout["bids"] / "derivatives" / "afni", elsewhere)
    extra = tuple(str(elsewhere) if e == "ELSEWHERE" else e for e in extra)
    script = write(layout, "--set", "a", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat",
                   *extra)  # fmt: skip
    subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    proc = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "--write-sbatch needs --image"),
        (("--image", "x.sif", "--mem", "lots"), "--mem"),
        (("--image", "x.sif", "--time", "4h"), "--time"),
        (("--image", "x.sif", "--mail-user", "me\n#SBATCH --qos=x"), "--mail-user"),
    ],
)
def test_bad_launch_options_are_usage_errors(layout, capsys, extra, message):
    argv = [str(layout["bids"]), str(layout["out"]), "group", "--write-sbatch",
            str(layout["job"]), *extra]  # fmt: skip
    assert cli.main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not layout["job"].exists()


def test_unbindable_path_is_refused(layout):
    bad = layout["root"] / "a:b"
    bad.mkdir()
    with pytest.raises(UsageError, match="cannot be bound"):
        slurm.render_sbatch(
            cli.build_parser().parse_args(
                [str(bad), str(layout["out"]), "group", "--write-sbatch", "j.sh", "--image", "i"]
            ),
            [str(bad), str(layout["out"]), "group"],
            layout["job"],
        )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 1800), ("10:30", 630), ("4:00:00", 14400), ("2-0", 172800),
     ("1-02:30", 95400), ("1-00:00:05", 86405)],
)  # fmt: skip
def test_parse_walltime(text, seconds):
    assert slurm.parse_walltime(text) == seconds


@pytest.mark.parametrize(("text", "gb"), [("16G", 16.0), ("16384M", 16.0), ("2048", 2.0),
                                          ("1T", 1024.0), ("16gb", 16.0)])  # fmt: skip
def test_parse_mem(text, gb):
    assert slurm.parse_mem_gb(text) == pytest.approx(gb)


def test_comment_cannot_be_escaped_by_a_newline():
    assert slurm._comment("a\nrm -rf /") == "#   a\n#   rm -rf /"


# ---- issue 16: requeue, Slurm's grammar, pre-flight checks, provenance, scratch, CPUs --------


def inner_args(layout, script, **env):
    argv, env_lines, status = run_job(layout, script, **env)
    assert status == 0
    return cli.build_parser().parse_args(container_argv(argv, layout["image"])[1:]), env_lines


@pytest.mark.parametrize("given", [(), ("--overwrite",), ("--resume",)])
def test_a_restarted_job_resumes(layout, given):
    script = write(layout, *given)
    first, _ = inner_args(layout, script, SLURM_RESTART_COUNT="0")
    assert (first.overwrite, first.resume) == ("--overwrite" in given, "--resume" in given)
    again, _ = inner_args(layout, script, SLURM_RESTART_COUNT="2")
    assert (again.overwrite, again.resume) == (False, True)  # never deletes the first attempt's


# What sbatch 22.05 itself accepts and refuses (checked with sbatch --test-only).
@pytest.mark.parametrize("mem", ["16G", "16g", "16000", "16000M", "16GB", "16gb", "0", "512K"])
def test_mem_slurm_accepts(mem):
    slurm.parse_mem_gb(mem)


@pytest.mark.parametrize("mem", ["1.5G", " 16G", "16 G", "16X", "16KiB", "-5", "", "lots"])
def test_mem_slurm_refuses(mem):
    with pytest.raises(ValueError, match="not a Slurm memory size"):
        slurm.parse_mem_gb(mem)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("UNLIMITED", None), ("infinite", None), ("-1", None), ("0", None), ("60:00:00", 216000)],
)
def test_time_slurm_accepts(text, seconds):
    assert slurm.parse_walltime(text) == seconds


@pytest.mark.parametrize("text", ["4h", "1.5", "1-2:3:4:5", "1:2:3:4", " 30", ""])
def test_time_slurm_refuses(text):
    with pytest.raises(ValueError, match="not a Slurm time"):
        slurm.parse_walltime(text)


def test_unlimited_time_and_user_name_mail_are_written(layout):
    text = write(layout, "--time", "UNLIMITED", "--mail-user", "jdoe").read_text().splitlines()
    assert "#SBATCH --time=UNLIMITED" in text and "#SBATCH --mail-user=jdoe" in text


@pytest.mark.parametrize("mail", ["jdoe", "a@b.edu,jdoe", "first.last+tag@mail.brown.edu"])
def test_mail_user_forms_slurm_accepts(layout, mail):
    write(layout, "--mail-user", mail)


@pytest.mark.parametrize("mail", ["a b", "x@y.edu;rm", "'jdoe'", "a@b.edu,", "#x"])
def test_mail_user_refused(layout, capsys, mail):
    argv = [str(layout["bids"]), str(layout["out"]), "group", "--write-sbatch",
            str(layout["job"]), "--image", str(layout["image"]), "--mail-user", mail]  # fmt: skip
    assert cli.main(argv) == EXIT_USAGE
    assert "--mail-user" in capsys.readouterr().err


def test_n_cpus_more_than_cpus_refused(layout, capsys):
    argv = [str(layout["bids"]), str(layout["out"]), "group", "--write-sbatch",
            str(layout["job"]), "--image", str(layout["image"]), "--n-cpus", "4", "--cpus", "2"]  # fmt: skip
    assert cli.main(argv) == EXIT_USAGE
    assert "--n-cpus 4 is more than the 2 CPUs" in capsys.readouterr().err
    assert not layout["job"].exists()


def test_n_cpus_is_capped_by_the_allocation_at_run_time(layout):
    script = write(layout, "--n-cpus", "4", "--cpus", "4")
    args, env_lines = inner_args(layout, script, SLURM_CPUS_PER_TASK="2")  # sbatch -c 2 job.sh
    assert args.n_cpus == 2
    assert "APPTAINERENV_OMP_NUM_THREADS=2" in env_lines


def test_work_dir_variable_is_expanded_on_the_node(layout):
    script = write(layout, "--work-dir", "$TMPDIR/ag-${SLURM_JOB_ID}")
    assert "$TMPDIR" in script.read_text()  # not expanded when writing
    node = layout["root"] / "node-scratch"
    argv, _, status = run_job(layout, script, TMPDIR=str(node), SLURM_JOB_ID="77")
    assert status == 0
    assert f"{node}/ag-77:/work" in binds(argv)
    assert (node / "ag-77").is_dir()


def test_work_dir_variable_unset_on_the_node_stops_the_job(layout):
    script = write(layout, "--work-dir", "$TMPDIR/ag")
    proc = subprocess.run(
        ["bash", str(script)],
        env={"PATH": f"{layout['bin']}:/usr/bin:/bin", "RECORD": str(layout["root"] / "r")},
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "TMPDIR" in proc.stderr and "--work-dir" in proc.stderr
    assert not (layout["root"] / "r").exists()  # the container never started


def test_host_binds_are_handed_to_the_container(layout):
    from afni_group import provenance

    afni = layout["root"] / "elsewhere" / "afni"
    shutil.copytree(layout["bids"] / "derivatives" / "afni", afni)
    _, env_lines, _ = run_job(layout, write(layout, "--afni-dir", str(afni)))
    line = next(x for x in env_lines.splitlines() if x.startswith("APPTAINERENV_AFNI_GROUP"))
    value = line.split("=", 1)[1]
    env = {provenance.HOST_BINDS_VARIABLE: value}
    assert provenance.host_binds(env) == [
        (str(layout["bids"]), "/data"),
        (str(layout["out"]), "/out"),
        (f"{layout['out']}/.work", "/work"),
        (str(afni), "/mnt/afni_dir"),
    ]
    hosts = provenance.host_paths({"bids": "/data", "sub": "/mnt/afni_dir/sub-01"}, env)
    assert hosts["bids"]["host"] == str(layout["bids"])
    assert hosts["sub"] == {"container": "/mnt/afni_dir/sub-01", "host": f"{afni}/sub-01"}


@pytest.mark.parametrize(
    ("break_it", "extra", "code", "needle"),
    [
        ("brik", (), 66, "stats.sub-03_REML+tlrc.BRIK"),
        (None, ("--participant-label", "99"), 18, "--participant-label"),
        (None, ("--set", "a", "nope#0_Coef", "left_vs_right_chx#0_Tstat"), 65, "nope#0_Coef"),
        ("results", (), 73, "already has results"),
        (None, ("--overwrite", "--resume"), 64, "--overwrite and --resume"),
        (None, ("--work-dir", "BIDS/derivatives/afni/tmp"), 73, "--work-dir"),
    ],
)
def test_bad_data_is_refused_when_writing(layout, capsys, break_it, extra, code, needle):
    if break_it == "brik":
        results = layout["bids"] / "derivatives/afni/sub-03/sub-03.results"
        next(results.glob("stats.*.BRIK*")).unlink()
    if break_it == "results":
        layout["out"].mkdir(parents=True)
        (layout["out"] / "params.json").write_text("{}")
    extra = tuple(e.replace("BIDS", str(layout["bids"])) for e in extra)
    argv = [str(layout["bids"]), str(layout["out"]), "group", "--write-sbatch",
            str(layout["job"]), "--image", str(layout["image"]), *extra]  # fmt: skip
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert needle in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not layout["job"].exists()
    assert not (layout["bids"] / "derivatives/afni/tmp").exists()


def test_existing_results_with_resume_are_fine_when_writing(layout):
    layout["out"].mkdir(parents=True)
    (layout["out"] / "params.json").write_text("{}")
    write(layout, "--resume")
    assert not (layout["out"] / ".afni-group").exists()  # writing the script touches nothing


# ---- issue 24: --fan-out, one array task per analysis and a final job --------------------------

# A stand-in for sbatch: each call's arguments into SBATCH_RECORD.N; prints job ids 101, 102, ...
FAKE_SBATCH = """#!/bin/bash
n=$(( $(cat "$SBATCH_RECORD.n" 2>/dev/null || echo 100) + 1 ))
echo "$n" > "$SBATCH_RECORD.n"
for a in "$@"; do printf '%s\\0' "$a"; done > "$SBATCH_RECORD.$n"
echo "$n;local"
"""
ANALYSES = ["left_vs_right_chx", "left_vs_right_press"]  # tiny_bids's contrasts


def fan_out(layout, *extra: str) -> Path:
    fake = layout["bin"] / "sbatch"
    fake.write_text(FAKE_SBATCH)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return write(layout, "--fan-out", *extra)


def sbatch_calls(layout) -> list[list[str]]:
    calls = sorted(layout["root"].glob("sbatch.1*"))
    return [c.read_bytes().decode().split("\0")[:-1] for c in calls]


def test_fan_out_submits_the_array_then_a_final_job_after_it(layout):
    script = fan_out(layout, "--cpus", "3")
    text = script.read_text()
    assert f"# Submit it with:  bash {script}\n" in text and "#SBATCH -c 3" in text
    assert f"ANALYSES=({' '.join(ANALYSES)})\n" in text
    proc = run_script(layout, script)
    assert proc.returncode == 0, proc.stderr
    assert sbatch_calls(layout) == [
        ["--parsable", "--array=0-1", "--output=afni-group-%A_%a.out", str(script), "task", ""],
        ["--parsable", "--dependency=afterany:101", "--job-name=afni-group-report", str(script),
         "final", "", "101"],
    ]  # fmt: skip
    assert "array job 101 (2 tasks: left_vs_right_chx left_vs_right_press)" in proc.stdout
    assert "job 102 (the report" in proc.stdout
    assert not (layout["root"] / "record").exists()  # nothing ran in the container


def test_fan_out_array_task_runs_its_own_analysis(layout):
    script = fan_out(layout)
    env = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_JOB_ID": "101", "SLURM_JOB_ID": "104"}
    argv, env_lines, status = run_job(layout, script, "task", "", **env)
    assert status == 0
    args = cli.build_parser().parse_args(container_argv(argv, layout["image"])[1:])
    assert (args.only_analysis, args.collect, args.resume) == (ANALYSES[1], False, False)
    assert "APPTAINERENV_AFNI_GROUP_FAN_OUT_TASK=101_1" in env_lines.splitlines()
    assert "APPTAINERENV_AFNI_GROUP_FAN_OUT_ARRAY=101" in env_lines.splitlines()
    assert (layout["out"] / ".work").is_dir()  # the other tasks still bind it


def test_fan_out_final_job_collects(layout):
    script = fan_out(layout)
    argv, env_lines, status = run_job(layout, script, "final", "", "101", SLURM_JOB_ID="102")
    assert status == 0
    args = cli.build_parser().parse_args(container_argv(argv, layout["image"])[1:])
    assert (args.collect, args.only_analysis) == (True, None)
    assert "APPTAINERENV_AFNI_GROUP_FAN_OUT_ARRAY=101" in env_lines.splitlines()
    assert f"APPTAINERENV_AFNI_GROUP_FAN_OUT_SCRIPT={script}" in env_lines.splitlines()
    assert not (layout["out"] / ".work").exists()  # the final job removes the empty bind point


def test_fan_out_resume_reaches_every_part(layout):
    script = fan_out(layout)
    assert run_script(layout, script, "--resume").returncode == 0
    assert [call[4:6] for call in sbatch_calls(layout)] == [["task", "--resume"],
                                                            ["final", "--resume"]]  # fmt: skip
    env = {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "101"}
    argv, _, _ = run_job(layout, script, "task", "--resume", **env)
    assert cli.build_parser().parse_args(container_argv(argv, layout["image"])[1:]).resume
    # a requeued task resumes whatever the script was written with
    argv, _, _ = run_job(layout, script, "task", "", SLURM_RESTART_COUNT="1", **env)
    assert cli.build_parser().parse_args(container_argv(argv, layout["image"])[1:]).resume


@pytest.mark.parametrize("index", [None, "2"])
def test_fan_out_task_outside_the_array_is_refused(layout, index):
    script = fan_out(layout)
    env = {"SLURM_ARRAY_TASK_ID": index} if index else {}
    proc = run_script(layout, script, "task", "", **env)
    assert proc.returncode == 64 and "array task 0-1" in proc.stderr
    assert not (layout["root"] / "record").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--fan-out",), "use it with --write-sbatch"),
        (("--write-sbatch", "JOB", "--fan-out", "--dry-run"), "--dry-run"),
        (("--only-analysis", "a", "--collect"), "--only-analysis and --collect"),
        (("--collect", "--write-sbatch", "JOB"), "run by a --fan-out job script"),
    ],
)
def test_fan_out_option_errors(layout, capsys, extra, needle):
    extra = tuple(str(layout["job"]) if e == "JOB" else e for e in extra)
    argv = [str(layout["bids"]), str(layout["out"]), "group", "--image", "x.sif", *extra]
    assert cli.main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not layout["job"].exists()
