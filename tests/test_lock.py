"""The exclusive lock on OUTPUT_DIR (issue 15 item 5, issue 16 item 3)."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from afni_group import cli, errors, lock
from afni_group.errors import OutputError

HOLD = """
import sys, time
from pathlib import Path
from afni_group import lock
with lock.locked(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock(out: Path, seconds: float = 60) -> subprocess.Popen:
    """Another process holding the lock on ``out`` (it prints 'locked' once it has it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_holder_is_refused_naming_host_and_pid(tmp_path):
    with lock.locked(tmp_path) as first:
        assert first.path == tmp_path / ".afni-group" / "lock"
        with pytest.raises(OutputError) as exc:
            lock.OutputLock(tmp_path).acquire()
    message = str(exc.value)
    assert exc.value.exit_code == errors.EXIT_CANT_CREATE
    assert f"pid {os.getpid()}" in message and socket.gethostname() in message
    assert str(tmp_path) in message
    lock.OutputLock(tmp_path).acquire()  # released at the end of the block


def test_lock_file_names_the_holder_and_is_emptied_on_release(tmp_path):
    with lock.locked(tmp_path) as held:
        holder = lock.Holder.parse(held.path.read_text())
        assert holder.pid == os.getpid() and holder.host == socket.gethostname()
        assert abs(holder.started - lock.process_start_time(os.getpid())) < 1
    assert (tmp_path / ".afni-group" / "lock").read_text() == ""


def test_killed_holder_does_not_block(tmp_path):
    proc = hold_lock(tmp_path)
    with pytest.raises(OutputError, match=f"pid {proc.pid}"):
        lock.OutputLock(tmp_path).acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the lock file still names the dead holder, but the kernel lock went with it
    assert lock.Holder.parse((tmp_path / ".afni-group" / "lock").read_text()).pid == proc.pid
    with lock.locked(tmp_path):
        pass


def test_second_run_into_the_same_output_dir_exits_73(capsys, tiny_bids, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = hold_lock(out)
    try:
        code = cli.main([str(tiny_bids), str(out), "group", "--dry-run", "--engine", "native"])
        err = capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait()
    assert code == errors.EXIT_CANT_CREATE
    assert f"in use by afni-group pid {proc.pid} on host {socket.gethostname()}" in err
    assert not (out / "plan.json").exists()
    assert cli.main([str(tiny_bids), str(out), "group", "--dry-run", "--engine", "native"]) == 0


def test_overwrite_keeps_the_lock_file(capsys, tiny_bids, tmp_path):
    out = tmp_path / "out"
    argv = [str(tiny_bids), str(out), "group", "--dry-run", "--engine", "native"]
    assert cli.main(argv) == 0
    (out / "params.json").write_text("{}")  # results of an earlier run
    (out / ".afni-group" / "state.json").write_text("{}")
    inode = (out / ".afni-group" / "lock").stat().st_ino
    from afni_group import outputs
    from afni_group.plan import AnalysisPlan

    plan = AnalysisPlan(tiny_bids, tiny_bids, out, out / ".work", [], [])
    with lock.locked(out):
        outputs.prepare_output_dir(plan, overwrite=True, resume=False)
        assert (out / ".afni-group" / "lock").stat().st_ino == inode
        assert not (out / ".afni-group" / "state.json").exists()
        assert not (out / "params.json").exists()


# ---- file systems without locks: the owner file and its staleness rule ----------------------


@pytest.fixture
def no_flock(monkeypatch):
    def refuse(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_owner(out: Path, holder: lock.Holder) -> Path:
    owner = out / ".afni-group" / lock.OWNER_NAME
    owner.parent.mkdir(parents=True, exist_ok=True)
    owner.write_text(holder.line())
    return owner


def test_without_flock_the_owner_file_excludes(tmp_path, no_flock, caplog):
    with lock.locked(tmp_path) as held:
        assert held.owner.is_file()
        assert "does not support locks" in caplog.text
        with pytest.raises(OutputError, match=f"pid {os.getpid()}"):
            lock.OutputLock(tmp_path).acquire()
    assert not (tmp_path / ".afni-group" / lock.OWNER_NAME).exists()


def test_without_flock_a_dead_holder_on_this_host_is_stale(tmp_path, no_flock, caplog):
    write_owner(tmp_path, lock.Holder(socket.gethostname(), dead_pid(), time.time() - 60))
    with lock.locked(tmp_path) as held:
        assert lock.Holder.parse(held.owner.read_text()).pid == os.getpid()
    assert "removing the stale lock" in caplog.text


def test_without_flock_a_reused_pid_is_stale(tmp_path, no_flock):
    # our own pid, but recorded as started long before this process: the pid was reused
    write_owner(tmp_path, lock.Holder(socket.gethostname(), os.getpid(), 1000.0))
    with lock.locked(tmp_path):
        pass


def test_without_flock_a_holder_on_another_host_blocks(tmp_path, no_flock):
    write_owner(tmp_path, lock.Holder("node-that-is-not-here", 4242, time.time()))
    with pytest.raises(OutputError, match="pid 4242 on host node-that-is-not-here"):
        lock.OutputLock(tmp_path).acquire()


def test_lock_folder_that_cannot_be_created_is_73(tmp_path):
    (tmp_path / ".afni-group").write_text("a file where the folder should be")
    with pytest.raises(OutputError, match="lock") as exc:
        lock.OutputLock(tmp_path).acquire()
    assert exc.value.exit_code == errors.EXIT_CANT_CREATE


# ---- issue 24: --fan-out tasks share the folder, each holds its analysis ----------------------


def test_fan_out_tasks_share_the_folder_and_keep_whole_runs_out(tmp_path):
    with lock.locked(tmp_path, shared=True), lock.locked(tmp_path, name="analysis-a") as mine:
        assert mine.path == tmp_path / ".afni-group" / "analysis-a" / "lock"
        with lock.locked(tmp_path, shared=True), lock.locked(tmp_path, name="analysis-b"):
            pass  # another analysis's task runs beside it
        with pytest.raises(OutputError) as whole:
            lock.OutputLock(tmp_path).acquire()  # a whole run, or the final task, waits
        with pytest.raises(OutputError) as same:
            lock.OutputLock(tmp_path, name="analysis-a").acquire()  # the same analysis twice
    assert f"--fan-out task(s) afni-group pid {os.getpid()}" in str(whole.value)
    assert "for analysis-a" in str(whole.value)
    assert f"OUTPUT_DIR {tmp_path} (analysis-a) is in use by afni-group pid" in str(same.value)
    with lock.locked(tmp_path), pytest.raises(OutputError, match=f"pid {os.getpid()}"):
        lock.OutputLock(tmp_path, shared=True).acquire()  # no task starts during a whole run
    lock.OutputLock(tmp_path).acquire()  # all released
