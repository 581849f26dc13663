"""A full disk anywhere gives exit 73 naming the file and leaves no finished-looking run (issue 15).

ENOSPC is simulated by wrapping :func:`afni_group.atomic.write_bytes`, through which every output
(datasets, tables, JSON, the report and its figures) is written.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from afni_group import atomic, cli
from afni_group.errors import EXIT_CANT_CREATE, OutputError, from_os_error

SETS = ["--set", "chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"]


def enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(scope="module")
def demo_bids(tmp_path_factory) -> Path:
    from afni_group.demo import cli as demo_cli

    root = tmp_path_factory.mktemp("diskfull") / "bids"
    assert demo_cli.main([str(root), "--subjects", "4", "--seed", "0", "--grid", "small"]) == 0
    return root


def fill_disk_at(monkeypatch, match) -> list[Path]:
    """Make writing any file whose path satisfies ``match`` fail half-way with ENOSPC."""
    real = atomic.write_bytes
    hit: list[Path] = []

    def write_bytes(final, fill):
        if not match(Path(final)):
            return real(final, fill)
        hit.append(Path(final))

        def half_then_full(fh):
            fill(fh)
            raise enospc()

        return real(final, half_then_full)

    monkeypatch.setattr(atomic, "write_bytes", write_bytes)
    return hit


def argv(bids: Path, out: Path, *extra: str) -> list[str]:
    return [str(bids), str(out), "group", "--engine", "native", "--clustsim-iter", "100",
            "--seed", "3", "--n-cpus", "1", *extra, *SETS]  # fmt: skip


def assert_not_finished(out: Path) -> None:
    assert not (out / "params.json").exists()
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".part") or ".report-" in str(p)]
    assert leftovers == []


def failing_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def test_disk_full_anywhere_leaves_no_params_json(demo_bids, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    cases = [
        # (file that fails, what the error names, whether the report is written before it)
        (lambda p: p.name == "mema_results.nii.gz", "mema_results.nii.gz", False),
        (lambda p: p.name == "report.html", "report.html", False),
        (lambda p: p.suffix == ".png", ".png", False),
        (lambda p: p.name == "params.json", "params.json", True),
    ]
    for match, named, report_first in cases:
        with monkeypatch.context() as m:
            hit = fill_disk_at(m, match)
            code = cli.main(argv(demo_bids, out, "--resume"))
        line = failing_line(capsys)
        assert hit, f"{named} was never written"
        assert code == EXIT_CANT_CREATE, line
        assert named in line and "no space left on device" in line
        assert_not_finished(out)
        assert (out / "report.html").exists() == report_first
    # with space again, --resume finishes the run
    assert cli.main(argv(demo_bids, out, "--resume")) == 0
    assert (out / "params.json").is_file() and (out / "report.html").is_file()
    params = json.loads((out / "params.json").read_text())
    assert params["input_qc"]["group_mask_voxels"] == params["analyses"][0]["mask"]["n_voxels"]
    assert 'id="input-qc"' in (out / "report.html").read_text()


def test_enospc_outside_the_atomic_writer(demo_bids, tmp_path, monkeypatch, capsys):
    from afni_group.engines.native import runner

    def full(*_args, **_kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out" / "x.npy"))

    monkeypatch.setattr(runner, "run_native", full)
    assert cli.main(argv(demo_bids, tmp_path / "out")) == EXIT_CANT_CREATE
    line = failing_line(capsys)
    assert "x.npy" in line and "no space left on device" in line
    assert_not_finished(tmp_path / "out")


def test_atomic_write_keeps_old_file_on_enospc(tmp_path):
    target = tmp_path / "table.txt"
    target.write_text("old\n")

    def fill(fh):
        fh.write(b"new partial")
        raise enospc()

    with pytest.raises(OutputError, match=r"table\.txt: no space left on device"):
        atomic.write_bytes(target, fill)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.txt"]


def test_from_os_error_exit_codes():
    assert from_os_error(enospc()).exit_code == EXIT_CANT_CREATE
    assert from_os_error(OSError(errno.EROFS, "Read-only file system", "f")).exit_code == 73
    unexpected = from_os_error(OSError(errno.EIO, "Input/output error"))
    assert unexpected.exit_code == 1 and "rerun with -v" in str(unexpected)


def test_afni_engine_step_out_of_space(demo_bids, tmp_path, monkeypatch):
    """An AFNI program that fails for lack of space gives 73 too (the afni engine)."""
    from afni_group.engines.afni import runner
    from afni_group.errors import StepError

    def full_disk(script, env, cwd, logs):
        logs.feed("++ afni-group step: 3dMEMA\n")
        logs.feed("** ERROR: cannot write mema_results.nii.gz: No space left on device\n")
        return 1

    monkeypatch.setattr(runner, "run_script", full_disk)
    args = cli.build_parser().parse_args(argv(demo_bids, tmp_path / "out"))
    plan = cli.build_plan(args)
    (tmp_path / "staging").mkdir()
    with pytest.raises(StepError) as info:
        runner.run_afni(plan, tmp_path / "x.sh", tmp_path / "staging", tmp_path / "logs")
    assert info.value.exit_code == EXIT_CANT_CREATE
    assert "AFNI step 3dMEMA failed" in str(info.value)
    assert "no space left on device" in str(info.value)
