"""Progress lines read well in a terminal and in a Slurm log (issue 8)."""

from __future__ import annotations

import io

from afni_group.progress import Progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_file_gets_plain_lines_without_control_characters():
    stream = io.StringIO()
    with Progress("3dClustSim", 10, "iterations", stream=stream, min_interval=3600) as bar:
        for _ in range(10):
            bar.update()
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    # the first update prints, the throttle hides the rest until 100 %
    assert lines[0].startswith("++ 3dClustSim: 1/10 iterations")
    assert lines[-1].startswith("++ 3dClustSim: 10/10 iterations (100.0%)")
    assert len(lines) == 2


def test_terminal_redraws_in_place():
    stream = FakeTTY()
    with Progress("3dMEMA", 3, "chunks", stream=stream) as bar:
        for _ in range(3):
            bar.update()
    text = stream.getvalue()
    assert text.startswith("\r++ 3dMEMA: 1/3 chunks")
    assert text.endswith("\n") and text.count("\n") == 1


def test_disabled_prints_nothing():
    stream = io.StringIO()
    with Progress("x", 5, stream=stream, enabled=False) as bar:
        bar.update(5)
    assert stream.getvalue() == ""


def test_eta_ignores_the_warm_up_and_waits_until_meaningful(monkeypatch):
    """A slow first chunk (numba compiling) does not inflate the ETA; none before 5 % / 10 s."""
    from afni_group import progress

    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    bar = Progress("3dClustSim", 1000, "iterations", stream=stream, min_interval=0)
    clock[0] = 60.0  # the first 10 iterations took a minute (compiling)
    bar.update(10)
    clock[0] = 61.0
    bar.update(10)  # 2 % measured after the first report, 1 s: no ETA yet
    clock[0] = 64.0
    bar.update(40)  # 5 % in 4 s since the first report: 0.08 s per iteration
    lines = stream.getvalue().splitlines()
    assert "ETA" not in lines[0] and "ETA" not in lines[1]
    assert lines[2].endswith("elapsed 1:04, ETA 1:15")  # 940 x 4 s / 50, not 940 x 64 s / 60
    slow = io.StringIO()
    bar = Progress("3dClustSim", 1000, "iterations", stream=slow, min_interval=0)
    bar.update(1)
    clock[0] = 80.0
    bar.update(1)  # 0.1 % measured, but 16 s of it: shown
    assert "ETA" not in slow.getvalue().splitlines()[0]
    assert slow.getvalue().splitlines()[1].endswith("elapsed 0:16, ETA 4:26:08")
