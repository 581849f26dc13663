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
