"""The BIDS-Apps command line: contract, exit codes and one-line errors (issue 2)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from afni_group import cli, errors


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = [line for line in err.strip().splitlines() if "error" in line.lower()]
    assert lines, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert "afni-group" in capsys.readouterr().out


def test_console_script_returns_the_exit_code_and_skips_the_final_object_walk(
    capsys, tiny_bids, tmp_path, monkeypatch
):
    import gc

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '\nafni-group = "afni_group.cli:console_main"\n' in pyproject  # the console script
    monkeypatch.setattr(sys, "argv", ["afni-group", str(tiny_bids), str(tmp_path), "participant"])
    try:
        assert cli.console_main() == errors.EXIT_UNKNOWN_LEVEL
        assert gc.get_freeze_count() > 0  # CPython's exit does not walk these objects
    finally:
        gc.unfreeze()
    assert "only the 'group' level" in capsys.readouterr().err


def test_unknown_level_exits_17(capsys, tiny_bids, tmp_path):
    code, _, err = run_cli(capsys, tiny_bids, tmp_path / "out", "participant")
    assert code == errors.EXIT_UNKNOWN_LEVEL
    assert "only the 'group' level" in err


def test_usage_error_exits_64(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main([str(tmp_path), str(tmp_path / "o"), "group", "--pthr", "2"])
    assert exc.value.code == errors.EXIT_USAGE


def test_dry_run_writes_plan_and_inventory(capsys, tiny_bids, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, tiny_bids, out, "group", "--dry-run", "--engine", "native")
    assert code == 0, err
    rows = list(csv.DictReader((out / "inventory.tsv").open(), delimiter="\t"))
    assert [r["participant_id"] for r in rows] == ["sub-01", "sub-02", "sub-03", "sub-04"]
    assert all(r["status"] == "included" for r in rows)
    assert "left_vs_right_chx#0_Coef" in rows[0]["coef_tstat_labels"]
    assert (out / "dataset_description.json").is_file()
    assert (out / "plan.json").is_file()
    assert not list(out.glob("analysis-*/*.nii.gz")), "dry run must run nothing"
    # without --set every Coef/Tstat contrast becomes its own one-sample analysis
    assert "analysis-left_vs_right_chx" in stdout and "analysis-left_vs_right_press" in stdout
    assert "chose 'left_vs_right_chx'" in err


def test_seed_sets_and_participant_label_forms(capsys, tiny_bids, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("sub-01\n02\n")
    code, stdout, err = run_cli(
        capsys,
        tiny_bids,
        tmp_path / "out",
        "group",
        "--dry-run",
        "--engine",
        "native",
        "--participant-label",
        str(labels),
        "sub-03",
        "--set",
        "chx",
        "left_vs_right_chx#0_Coef",
        "left_vs_right_chx#0_Tstat",
        "--set",
        "keypress",
        "left_vs_right_press#0_Coef",
        "left_vs_right_press#0_Tstat",
    )
    assert code == 0, err
    assert '"subjects": [\n    "01",\n    "02",\n    "03"\n  ]' in stdout
    assert '"design": "groups"' in stdout


def test_participant_label_matching_nobody_exits_18(capsys, tiny_bids, tmp_path):
    code, _, err = run_cli(
        capsys, tiny_bids, tmp_path / "out", "group", "--participant-label", "99", "--dry-run"
    )
    assert code == errors.EXIT_NO_PARTICIPANT
    assert_one_line_error(err, "--participant-label", "99")


def test_missing_files_listed_all_at_once_exit_66(capsys, tiny_bids, tmp_path):
    res = tiny_bids / "derivatives" / "afni"
    (res / "sub-02" / "sub-02.results" / "blur_est.sub-02.1D").unlink()
    for f in (res / "sub-03" / "sub-03.results").glob("mask_epi_anat*"):
        f.unlink()
    code, _, err = run_cli(capsys, tiny_bids, tmp_path / "out", "group", "--dry-run")
    assert code == errors.EXIT_NO_INPUT
    assert_one_line_error(
        err, "blur_est.sub-02.1D", "mask_epi_anat.sub-03+tlrc.HEAD", "--drop-incomplete"
    )


def test_drop_incomplete_keeps_reason_in_inventory(capsys, tiny_bids, tmp_path):
    res = tiny_bids / "derivatives" / "afni" / "sub-02" / "sub-02.results"
    (res / "blur_est.sub-02.1D").unlink()
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, tiny_bids, out, "group", "--dry-run", "--drop-incomplete")
    assert code == 0, err
    rows = {
        r["participant_id"]: r
        for r in csv.DictReader((out / "inventory.tsv").open(), delimiter="\t")
    }
    assert rows["sub-02"]["status"] == "dropped"
    assert rows["sub-02"]["blur_est"] == "MISSING"
    assert "blur_est.sub-02.1D" in rows["sub-02"]["reason"]
    assert "dropping sub-02" in err


def test_unknown_subbrick_label_exits_65(capsys, tiny_bids, tmp_path):
    code, _, err = run_cli(
        capsys,
        tiny_bids,
        tmp_path / "out",
        "group",
        "--dry-run",
        "--set",
        "chx",
        "nope#0_Coef",
        "left_vs_right_chx#0_Tstat",
    )
    assert code == errors.EXIT_DATA
    assert_one_line_error(err, "nope#0_Coef", "stats.sub-01_REML+tlrc.HEAD", "Full_Fstat")


@pytest.mark.parametrize("where", ["same", "afni", "raw"])
def test_output_inside_input_refused_73(capsys, tiny_bids, where):
    out = {
        "same": tiny_bids,
        "afni": tiny_bids / "derivatives" / "afni" / "GROUP_LEVEL",
        "raw": tiny_bids / "sub-01" / "out",
    }[where]
    code, _, err = run_cli(capsys, tiny_bids, out, "group", "--dry-run")
    assert code == errors.EXIT_CANT_CREATE
    assert_one_line_error(err, "OUTPUT_DIR")
    assert not (tiny_bids / "derivatives" / "afni" / "GROUP_LEVEL").exists()


def test_output_under_derivatives_allowed(capsys, tiny_bids):
    code, _, err = run_cli(
        capsys, tiny_bids, tiny_bids / "derivatives" / "afni-group", "group", "--dry-run"
    )
    assert code == 0, err


def test_missing_bids_dir_exits_66(capsys, tmp_path):
    code, _, err = run_cli(capsys, tmp_path / "nope", tmp_path / "out", "group", "--dry-run")
    assert code == errors.EXIT_NO_INPUT
    assert_one_line_error(err, "nope")


def test_not_a_bids_dataset_exits_65(capsys, tiny_bids, tmp_path):
    (tiny_bids / "dataset_description.json").unlink()
    code, _, err = run_cli(capsys, tiny_bids, tmp_path / "out", "group", "--dry-run")
    assert code == errors.EXIT_DATA
    assert_one_line_error(err, "dataset_description.json")


def test_missing_afni_dir_exits_66(capsys, tiny_bids, tmp_path):
    shutil.rmtree(tiny_bids / "derivatives")
    code, _, err = run_cli(capsys, tiny_bids, tmp_path / "out", "group", "--dry-run")
    assert code == errors.EXIT_NO_INPUT
    assert_one_line_error(err, "--afni-dir")


def test_existing_results_refused_without_overwrite(capsys, tiny_bids, tmp_path):
    out = tmp_path / "out"
    (out / "analysis-mema").mkdir(parents=True)
    code, _, err = run_cli(capsys, tiny_bids, out, "group", "--engine", "native")
    assert code == errors.EXIT_CANT_CREATE
    assert_one_line_error(err, "--overwrite")


def _snapshot(root: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every path under ``root`` with its bytes and modification time (None for folders)."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else None
        for p in root.rglob("*")
    }


def test_dry_run_into_an_existing_output_dir_previews_and_touches_nothing(
    capsys, tiny_bids, tmp_path
):
    out = tmp_path / "out"
    (out / "analysis-mema").mkdir(parents=True)
    (out / "analysis-mema" / "mema_results.nii.gz").write_bytes(b"an earlier run")
    (out / "params.json").write_text("{}\n")
    before = _snapshot(out)
    code, stdout, err = run_cli(capsys, tiny_bids, out, "group", "--dry-run", "--engine", "native")
    assert code == 0, err
    assert _snapshot(out) == before
    assert '"analyses"' in stdout and "analysis-left_vs_right_chx" in err
    assert "a run would refuse the earlier results" in err and "nothing was written" in err


def test_refused_run_leaves_no_output_dir(capsys, tiny_bids, tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no AFNI here
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, tiny_bids, out, "group", "--engine", "afni")
    assert code == errors.EXIT_USAGE
    assert_one_line_error(err, "--engine afni")
    assert not out.exists()


def test_run_refused_under_the_lock_removes_the_output_dir_it_made(
    capsys, tiny_bids, tmp_path, monkeypatch
):
    from afni_group import outputs

    def refuse(*args, **kwargs):
        raise errors.OutputError("refused for the test")

    monkeypatch.setattr(outputs, "prepare_output_dir", refuse)
    made, kept = tmp_path / "made", tmp_path / "kept"
    kept.mkdir()
    for out in (made, kept):
        code, _, err = run_cli(capsys, tiny_bids, out, "group", "--engine", "native")
        assert code == errors.EXIT_CANT_CREATE and "refused for the test" in err
    assert not made.exists()
    assert kept.is_dir()  # it was there before the run: only the lock's state folder stays


def test_closed_stdout_pipe_ends_quietly():
    """``afni-group --bids-exec-spec | head``: no BrokenPipe traceback."""
    env = {**os.environ, "PYTHONPATH": str(Path(cli.__file__).parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "afni_group.cli", "--bids-exec-spec"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read()
    assert proc.wait() == 0
    assert err == b""


def test_never_writes_under_bids_dir(capsys, tiny_bids, tmp_path):
    before = sorted(str(p.relative_to(tiny_bids)) for p in tiny_bids.rglob("*"))
    run_cli(capsys, tiny_bids, tmp_path / "out", "group", "--dry-run")
    after = sorted(str(p.relative_to(tiny_bids)) for p in tiny_bids.rglob("*"))
    assert before == after


def test_n_cpus_defaults_to_slurm(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "7")
    assert cli.default_n_cpus() == 7


def test_discover_accepts_brik_gz(tiny_bids):
    import gzip

    from afni_group import discover

    res = tiny_bids / "derivatives" / "afni" / "sub-01" / "sub-01.results"
    brik = res / "stats.sub-01_REML+tlrc.BRIK"
    (res / "stats.sub-01_REML+tlrc.BRIK.gz").write_bytes(gzip.compress(brik.read_bytes()))
    brik.unlink()
    found = discover.find_subject_files(tiny_bids / "derivatives" / "afni", "01")
    assert not found.missing
    assert "left_vs_right_chx#0_Tstat" in found.brick_labels


def test_uvars_json_preferred(tiny_bids):
    import json

    from afni_group import discover

    res = tiny_bids / "derivatives" / "afni" / "sub-01" / "sub-01.results"
    (res / "out.ss_review_uvars.json").write_text(
        json.dumps(
            {
                "subj": "sub-01",
                "stats_dset": "stats.sub-01_REML+tlrc.HEAD",
                "mask_dset": "mask_epi_anat.sub-01+tlrc.HEAD",
            }
        )
    )
    found = discover.find_subject_files(tiny_bids / "derivatives" / "afni", "01")
    assert found.source == "out.ss_review_uvars.json"
    assert found.stats == res / "stats.sub-01_REML+tlrc.HEAD"


def test_n_cpus_sets_thread_variables(capsys, tiny_bids, tmp_path, monkeypatch):
    for name in cli.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    code, _, err = run_cli(capsys, tiny_bids, tmp_path / "o", "group", "--dry-run", "--n-cpus", "3")
    assert code == 0, err
    import os

    assert all(os.environ[name] == "3" for name in cli.THREAD_VARIABLES)


# ---- issue 15 items 3, 4, 7 and issue 16 items 1, 7, 8 ---------------------------------------


def test_overwrite_and_resume_together_refused(capsys, tiny_bids, tmp_path):
    code, _, err = run_cli(capsys, tiny_bids, tmp_path / "o", "group", "--overwrite", "--resume")
    assert code == errors.EXIT_USAGE
    assert_one_line_error(err, "--overwrite and --resume")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("where", "allowed"),
    [
        ("derivatives/afni/scratch", False),
        ("derivatives/afni", False),
        ("sub-01/tmp", False),
        (".", False),
        ("..", False),
        ("derivatives/afni-group-work", True),
    ],
)
def test_work_dir_follows_the_output_dir_rule(capsys, tiny_bids, tmp_path, where, allowed):
    work = tiny_bids / where
    code, _, err = run_cli(
        capsys, tiny_bids, tmp_path / "o", "group", "--dry-run", "--engine", "native", "-w", work
    )
    if allowed:
        assert code == 0, err
    else:
        assert code == errors.EXIT_CANT_CREATE
        assert_one_line_error(err, "--work-dir")
    assert not (tiny_bids / "derivatives/afni/scratch").exists()
    assert not (tiny_bids / "sub-01/tmp").exists()


def test_relative_bids_dir_renders_absolute_paths(capsys, tiny_bids, monkeypatch):
    monkeypatch.chdir(tiny_bids.parent)
    code, _, err = run_cli(capsys, "bids", "out", "group", "--dry-run", "--engine", "native")
    assert code == 0, err
    script = (tiny_bids.parent / "out" / "group_analysis.sh").read_text()
    words = [w.strip("\"'()") for line in script.splitlines() for w in line.split()]
    paths = [
        w.split("=", 1)[-1].strip('"') for w in words if ".results/" in w or "derivatives" in w
    ]
    assert len(paths) > 8
    relative = [w for w in paths if not w.startswith(("/", "${path_proc}/", "${bids_dir}/"))]
    assert not relative  # the script cd's into the analysis folder: no relative input path
    assert f'bids_dir="{tiny_bids}"' in script.splitlines()
    inventory = (tiny_bids.parent / "out" / "inventory.tsv").read_text()
    assert f"\t{tiny_bids}/derivatives/afni/sub-01" in inventory


def test_missing_brik_is_named_not_its_head(capsys, tiny_bids, tmp_path):
    res = tiny_bids / "derivatives" / "afni" / "sub-03" / "sub-03.results"
    (res / "stats.sub-03_REML+tlrc.BRIK").unlink()
    code, _, err = run_cli(capsys, tiny_bids, tmp_path / "out", "group", "--dry-run")
    assert code == errors.EXIT_NO_INPUT
    assert_one_line_error(err, "stats.sub-03_REML+tlrc.BRIK")
    assert "stats.sub-03_REML+tlrc.HEAD" not in err


def test_work_dir_variables_expanded_for_a_direct_run(capsys, tiny_bids, tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCH_FOR_TEST", str(tmp_path / "scratch"))
    args = cli.build_parser().parse_args(["b", "o", "group", "-w", "$SCRATCH_FOR_TEST/ag"])
    cli.expand_work_dir(args)
    assert str(args.work_dir) == f"{tmp_path}/scratch/ag"
    monkeypatch.delenv("SCRATCH_FOR_TEST")
    code, _, err = run_cli(
        capsys, tiny_bids, tmp_path / "o", "group", "--dry-run", "-w", "$SCRATCH_FOR_TEST/ag"
    )
    assert code == errors.EXIT_USAGE
    assert_one_line_error(err, "--work-dir", "not set")


def test_host_paths_recorded_in_a_container(capsys, tiny_bids, tmp_path, monkeypatch):
    import json

    out = tmp_path / "out"
    binds = f"/cluster/bids:{tiny_bids},/cluster/out:{out},/scratch/7:{out / '.work'}"
    monkeypatch.setenv("AFNI_GROUP_HOST_BINDS", binds)
    code, _, err = run_cli(capsys, tiny_bids, out, "group", "--dry-run", "--engine", "native")
    assert code == 0, err
    description = json.loads((out / "dataset_description.json").read_text())
    urls = [s["URL"] for s in description["SourceDatasets"]]
    assert urls[:2] == ["file:///cluster/bids", "file:///cluster/bids/derivatives/afni"]
    assert tiny_bids.as_uri() in urls  # the path the run saw is kept too
    plan = json.loads((out / "plan.json").read_text())
    assert plan["host_paths"]["output_dir"] == {"container": str(out), "host": "/cluster/out"}
    assert plan["host_paths"]["work_dir"]["host"] == "/scratch/7"
    script = (out / "group_analysis.sh").read_text().splitlines()
    assert script[0].startswith("#!")
    assert f"# {tiny_bids} is /cluster/bids on the host" in script[1:4]


def test_no_host_paths_outside_a_container(capsys, tiny_bids, tmp_path, monkeypatch):
    import json

    monkeypatch.delenv("AFNI_GROUP_HOST_BINDS", raising=False)
    out = tmp_path / "out"
    assert run_cli(capsys, tiny_bids, out, "group", "--dry-run", "--engine", "native")[0] == 0
    assert "host_paths" not in json.loads((out / "plan.json").read_text())
    description = json.loads((out / "dataset_description.json").read_text())
    data_sources = [
        s["URL"] for s in description["SourceDatasets"] if str(tiny_bids) in s.get("URL", "")
    ]
    # BIDS_DIR and its afni_proc folder once each, as container paths only (the atlases follow)
    assert len(data_sources) == 2


def test_work_dir_mount_point_is_left_alone(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    from afni_group import pipeline

    def busy(self):
        raise OSError(errno.EBUSY, "Device or resource busy", str(self))

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(Path, "rmdir", busy)
    pipeline.remove_if_empty(work, made_here=True)  # a bind mount: EBUSY is not an error
    monkeypatch.undo()
    pipeline.remove_if_empty(work, made_here=False)  # existed before the run: kept
    assert work.is_dir()
    pipeline.remove_if_empty(work, made_here=True)
    assert not work.exists()


# ---- issue 13 item 3: a leaf options module, RunOptions ---------------------------------------


def test_options_is_a_leaf_and_no_cli_cycle():
    import subprocess
    import sys

    code = (
        "import sys, afni_group.options, afni_group.boutiques, afni_group.slurm;"
        "print(sorted(m for m in sys.modules if m in ('afni_group.cli', 'afni_group.pipeline')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"  # neither boutiques nor slurm needs the CLI module


def test_run_options_record_the_command_line():
    from pathlib import Path

    from afni_group.options import RunOptions

    args = cli.build_parser().parse_args(
        [
            "b",
            "o",
            "group",
            "--resume",
            "--engine",
            "native",
            "-w",
            "/scratch/x",
            "--write-sbatch",
            "j.sh",
        ]  # fmt: skip
    )
    options = RunOptions.from_namespace(args)
    assert (options.engine, options.resume, options.overwrite) == ("native", True, False)
    assert options.recorded["work_dir"] == "/scratch/x" and options.recorded["bids_dir"] == "b"
    assert "write_sbatch" not in options.recorded and "bids_exec_spec" not in options.recorded
    not_recorded = ("write_sbatch", "fan_out", "bids_exec_spec", "only_analysis", "collect")
    assert list(options.recorded) == [k for k in vars(args) if k not in not_recorded]
    assert isinstance(args.work_dir, Path)
