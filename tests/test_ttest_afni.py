"""Native 3dttest++ against AFNI's, run live (marked ``afni``; skipped without AFNI on PATH).

On the fixture inputs (tests/data/ttest/in) with subjects shuffled and a new seed, so that the
comparison does not only replay the stored outputs: the bricks must be AFNI's bit for bit and
the -Clustsim tables (one job, same seed) identical.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from afni_group import afni_io
from afni_group.programs.cli.ttest import cli_main
from afni_group.programs.clustsim import core as clustsim_core

DATA = Path(__file__).parent / "data" / "ttest"

pytestmark = [
    pytest.mark.afni,
    pytest.mark.skipif(shutil.which("3dttest++") is None, reason="AFNI 3dttest++ not on PATH"),
]


def _sets() -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(11)
    a = [f"a{s:02d}" for s in rng.permutation(np.arange(1, 17))]
    b = [f"b{s:02d}" for s in rng.permutation(np.arange(1, 15))[:12]]
    la = ["pat"] + [w for s in a for w in (s, f"in/{s}.nii.gz")]
    lb = ["con"] + [w for s in b for w in (s, f"in/{s}.nii.gz")]
    return la, lb


@pytest.fixture()
def work(tmp_path: Path, monkeypatch) -> Path:
    shutil.copytree(DATA / "in", tmp_path / "in")
    (tmp_path / "afni").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _afni(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    full = dict(os.environ, AFNI_DONT_LOGFILE="YES", AFNI_MESSAGE_COLORIZE="NO", **env)
    subprocess.run(["3dttest++", *argv], cwd=cwd, env=full, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _from_afni_dir(argv: list[str]) -> list[str]:
    """The same command run from the ``afni/`` folder (inputs one level up)."""
    return [f"../{w}" if w.startswith("in/") else w for w in argv]


@pytest.mark.parametrize(
    "extra",
    [[], ["-toz"], ["-unpooled"], ["-covariates", "in/cov.txt"], ["-mask", "in/mask.nii.gz"]],
    ids=["pooled", "toz", "unpooled", "covariates", "mask"],
)
def test_bricks_equal_live_afni(work, extra):
    la, lb = _sets()
    argv = ["-setA", *la, "-setB", *lb, *extra, "-prefix", "out.nii.gz"]
    _afni(_from_afni_dir(argv), work / "afni", {})
    assert cli_main(argv) == 0
    ours, theirs = afni_io.read_dataset("out.nii.gz"), afni_io.read_dataset("afni/out.nii.gz")
    assert np.array_equal(ours.data, theirs.data)
    assert ours.labels == theirs.labels
    assert ours.stat_codes == theirs.stat_codes
    assert [tuple(p) for p in ours.stat_params] == [tuple(p) for p in theirs.stat_params]


@pytest.mark.parametrize("design", ["one", "two", "no mask"])
def test_clustsim_tables_equal_live_afni(work, monkeypatch, design):
    """Same seed, one job: identical tables (without a mask AFNI clusters float z volumes)."""
    la, lb = _sets()
    argv = ["-setA", *la] + (["-setB", *lb] if design == "two" else [])
    argv += [] if design == "no mask" else ["-mask", "in/mask.nii.gz"]
    argv += ["-prefix", "cs.nii.gz", "-seed", "4242", "-Clustsim", "1"]
    env = {"AFNI_TTEST_NUMCSIM": "1000"}
    _afni(_from_afni_dir(argv), work / "afni", env)
    monkeypatch.setenv("AFNI_TTEST_NUMCSIM", "1000")
    assert cli_main(argv) == 0
    for sided in clustsim_core.SIDEDNESS:
        for nn in (1, 2, 3):
            name = f"cs.CSimA.NN{nn}_{sided}.1D"
            ours = Path(name).read_text().splitlines()
            theirs = (work / "afni" / name).read_text().splitlines()
            # the header names the mask as typed (../in/ for AFNI here); the rows must agree
            assert ours[1:] == theirs[1:], name
