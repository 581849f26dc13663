"""Shared fixtures: a tiny afni_proc-shaped BIDS dataset built with the project's own writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("AFNI_GROUP_DETERMINISTIC", "1")

BLUR_LINES = (
    "0 0 0 0   # epits FWHM blur estimates\n"
    "0.80 3.1 9.5 8.1   # epits ACF blur estimates\n"
    "0 0 0 0   # errts FWHM blur estimates\n"
    "0.71 2.9 10.6 7.6   # errts ACF blur estimates\n"
    "0 0 0 0   # err_reml FWHM blur estimates\n"
    "{a} {b} {c} 7.5   # err_reml ACF blur estimates\n"
)
LABELS = [
    "Full_Fstat",
    "left_vs_right_chx#0_Coef",
    "left_vs_right_chx#0_Tstat",
    "left_vs_right_press#0_Coef",
    "left_vs_right_press#0_Tstat",
]


def write_subject(results: Path, sid: str, rng: np.random.Generator, shape=(10, 12, 8)) -> None:
    """One subject's stats bucket, mask and blur_est in afni_proc's names."""
    from afni_group import afni_io

    results.mkdir(parents=True, exist_ok=True)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-15.0, -18.0, -12.0]
    data = rng.normal(size=shape + (len(LABELS),)).astype(np.float32)
    codes = [4, 0, 3, 0, 3]
    params = [(1.0, 200.0), (), (200.0,), (), (200.0,)]
    stats = afni_io.AfniDataset(data, affine, LABELS, codes, params, space="MNI", view="tlrc")
    afni_io.write_dataset(stats, results / f"stats.{sid}_REML+tlrc")
    mask = np.ones(shape, dtype=np.uint8)
    mask[0], mask[-1] = 0, 0
    afni_io.write_dataset(
        afni_io.AfniDataset(mask, affine, ["mask"], space="MNI", view="tlrc"),
        results / f"mask_epi_anat.{sid}+tlrc",
    )
    a, b, c = 0.7 + rng.uniform(0, 0.05), 3.0, 10.0
    (results / f"blur_est.{sid}.1D").write_text(BLUR_LINES.format(a=f"{a:g}", b=b, c=c))


@pytest.fixture
def tiny_bids(tmp_path: Path) -> Path:
    """A 4-subject BIDS dataset with afni_proc results under derivatives/afni."""
    root = tmp_path / "bids"
    root.mkdir()
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "tiny", "BIDSVersion": "1.10.0"})
    )
    rows = ["participant_id\tage\tsex\tgroup"]
    rng = np.random.default_rng(0)
    for i in range(1, 5):
        sid = f"sub-{i:02d}"
        func = root / sid / "func"
        func.mkdir(parents=True)
        (func / f"{sid}_task-checks_bold.json").write_text("{}")
        rows.append(f"{sid}\t{20 + i}\t{'MF'[i % 2]}\tcontrol")
        write_subject(root / "derivatives" / "afni" / sid / f"{sid}.results", sid, rng)
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    return root


#: whether the current test runs the real BIDS validator (see _bids_validator_stub)
_REAL_VALIDATOR = {"on": False}


@pytest.fixture(scope="session", autouse=True)
def _bids_validator_stub():
    """The official validator (a Deno program, ~1 s a call) runs only in tests marked
    ``bids_validator``; elsewhere it reports a clean dataset (the tiny datasets here are not
    complete BIDS datasets). Session-wide, so module-scoped runs are covered too."""
    from afni_group import bids_validator

    real = bids_validator.run_validator

    def run_validator(bids_dir, timeout=bids_validator.TIMEOUT_S):
        if _REAL_VALIDATOR["on"]:
            return real(bids_dir, timeout)
        return {"issues": {"issues": []}, "summary": {"schemaVersion": "-"}}

    bids_validator.run_validator = run_validator
    yield
    bids_validator.run_validator = real


@pytest.fixture(autouse=True)
def _real_validator_when_marked(request):
    _REAL_VALIDATOR["on"] = request.node.get_closest_marker("bids_validator") is not None
    yield
    _REAL_VALIDATOR["on"] = False
