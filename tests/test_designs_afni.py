"""Issue 21's designs with real AFNI: the afni engine (gen_group_command.py's options for two
groups, 3dMEMA -conditions across sessions, one analysis per session) against the native engine
on the demo generator's data. Runs only where AFNI and R are on PATH (marked ``afni``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from afni_group import afni_io, cli
from afni_group.engines.afni.runner import afni_available

CHX = ["--set", "chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"]
COMMON = ["--clustsim-iter", "2000", "--seed", "1", "--n-cpus", "1", "--no-report"]

_OK, _WHY = afni_available(via_gen_group_command=True)
pytestmark = [pytest.mark.afni, pytest.mark.skipif(not _OK, reason=f"AFNI not available: {_WHY}")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """6 subjects, sessions pre and post, results flat (sub-X_ses-Y.results), planted effects."""
    from afni_group.demo import cli as demo_cli

    root = tmp_path_factory.mktemp("demo") / "bids"
    argv = [str(root), "--subjects", "6", "--grid", "small", "--sessions", "pre", "post",
            "--layout", "flat", "--group-effect", "1", "--session-effect", "1"]  # fmt: skip
    assert demo_cli.main(argv) == 0
    return root


def _both_engines(demo: Path, tmp: Path, *options: str, afni_extra=()) -> tuple[dict, dict]:
    runs = {}
    for engine, extra in (("native", ()), ("afni", afni_extra)):
        out = tmp / engine
        argv = [str(demo), str(out), "group", "--engine", engine, *COMMON, *extra, *options]
        assert cli.main(argv) == 0, engine
        runs[engine] = json.loads((out / "params.json").read_text())
    return runs["native"], runs["afni"]


def _compare(native: dict, afni: dict, tmp: Path) -> None:
    """Same analyses, 3dMEMA bricks, masks, ACF, voxel thresholds and df in both engines."""
    assert [a["dir"] for a in native["analyses"]] == [a["dir"] for a in afni["analyses"]]
    for nat, afn in zip(native["analyses"], afni["analyses"], strict=True):
        assert nat["acf"] == afn["acf"]
        assert nat["mask"]["n_voxels"] == afn["mask"]["n_voxels"]
        n_out = afni_io.read_dataset(tmp / "native" / nat["dir"] / "mema_results.nii.gz")
        a_out = afni_io.read_dataset(tmp / "afni" / afn["dir"] / "mema_results.nii.gz")
        assert n_out.labels == a_out.labels
        np.testing.assert_allclose(n_out.data, a_out.data, rtol=1e-4, atol=1e-5, equal_nan=True)
        pairs = zip(nat["results"], afn["results"], strict=True)
        for n_res, a_res in pairs:
            for key in ("set", "tbrick", "voxel_threshold", "dof"):
                assert n_res[key] == a_res[key], key
            # the afni engine's clusters.tsv exists only when the native clusterizer
            # reproduces AFNI's 3dClusterize report rows
            assert (tmp / "afni" / afn["dir"] / a_res["clusters_tsv"]).is_file()
            if nat["cluster_size_threshold"] == afn["cluster_size_threshold"]:
                assert n_res["n_clusters"] == a_res["n_clusters"]


def test_two_groups_via_gen_group_command(demo, tmp_path):
    native, afni = _both_engines(
        demo, tmp_path, "--session-label", "pre", "--group-column", "group", *CHX,
        afni_extra=("--via-gen-group-command",),
    )  # fmt: skip
    _compare(native, afni, tmp_path)
    (analysis,) = afni["analyses"]
    assert [r["set"] for r in analysis["results"]] == ["control", "patient", "patient-control"]
    script = (tmp_path / "afni" / "analysis-mema_ses-pre" / "do_group_level_mema.tcsh").read_text()
    assert "-groups control patient" in script and "sub-01_ses-pre" in script
    assert script.split("-set patient")[0].count("sub-02_ses-pre") == 0


def test_paired_across_sessions(demo, tmp_path):
    native, afni = _both_engines(
        demo, tmp_path, "--session-label", "pre", "post", "--design", "conditions", *CHX
    )
    _compare(native, afni, tmp_path)
    (analysis,) = afni["analyses"]
    (diff,) = analysis["results"]
    assert (diff["set"], diff["dof"]) == ("post-pre", 5) and diff["n_clusters"] >= 1


def test_one_analysis_per_session(demo, tmp_path):
    native, afni = _both_engines(demo, tmp_path, "--session-label", "pre", "post", *CHX)
    _compare(native, afni, tmp_path)
    assert [a["dir"] for a in afni["analyses"]] == [
        "analysis-mema_ses-pre",
        "analysis-mema_ses-post",
    ]
    logs = sorted(
        p.name for p in (tmp_path / "afni" / "logs").glob("afni_*_analysis-mema_ses-post_*")
    )
    assert any("3dClustSim" in name for name in logs)  # the second session simulated its own
