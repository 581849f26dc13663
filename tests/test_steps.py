"""Step bookkeeping: what makes ``--resume`` trust a recorded step."""

from __future__ import annotations

from afni_group import steps


def test_a_step_recorded_by_another_version_is_redone(tmp_path, monkeypatch):
    source = tmp_path / "input.txt"
    source.write_text("x")
    target = tmp_path / "output.txt"
    calls = []

    def action():
        calls.append(1)
        target.write_text("y")
        return len(calls)

    first = steps.StepLog(tmp_path, resume=False)
    assert first.run("step", {"p": 1}, [source], [target], action) == 1
    again = steps.StepLog(tmp_path, resume=True)
    assert again.run("step", {"p": 1}, [source], [target], action) == 1  # skipped
    assert len(calls) == 1
    monkeypatch.setattr(steps, "__version__", "9999.0")
    upgraded = steps.StepLog(tmp_path, resume=True)
    assert upgraded.run("step", {"p": 1}, [source], [target], action) == 2  # redone
    assert len(calls) == 2
