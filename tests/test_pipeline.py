"""The main job end to end on the demo dataset with the native engine (issue 6)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from afni_group import cli, errors

SEED_SETS = [
    "--set",
    "chx",
    "left_vs_right_chx#0_Coef",
    "left_vs_right_chx#0_Tstat",
    "--set",
    "keypress",
    "left_vs_right_press#0_Coef",
    "left_vs_right_press#0_Tstat",
]


def native_argv(bids: Path, out: Path, *extra: str, iterations: str = "300", seed: str = "7"):
    """The tutorial's analysis on the native engine, with few ClustSim iterations."""
    return [str(bids), str(out), "group", "--engine", "native", "--clustsim-iter", iterations,
            "--seed", seed, "--n-cpus", "1", *extra, *SEED_SETS]  # fmt: skip


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    from afni_group.demo import cli as demo_cli

    root = tmp_path_factory.mktemp("demo") / "bids"
    assert demo_cli.main([str(root), "--subjects", "8", "--seed", "0", "--grid", "small"]) == 0
    return root


@pytest.fixture(scope="module")
def native_run(demo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    console = io.StringIO()  # what the terminal shows (test_default_console_is_calm)
    with contextlib.redirect_stderr(console):
        code = cli.main(native_argv(demo_dir, out))
    assert code == 0
    (out.parent / "console.txt").write_text(console.getvalue())
    return out


def test_default_console_is_calm(native_run):
    """AFNI's scripting fragment and kernel internals only in the log; warnings tagged."""
    console = (native_run.parent / "console.txt").read_text()
    log = (native_run / "logs" / "afni-group.log").read_text()
    for internal in ("for your scripting pleasure", "3drefit -atrstring", "Kernel function radius",
                     "Kernel image dimensions", "Using 1 threads"):  # fmt: skip
        assert internal not in console and internal in log, internal
    lines = console.splitlines()
    assert "WARNING: --clustsim-iter 300 raised to 2000 (3dClustSim's minimum)" in lines
    untagged = [
        ln for ln in lines
        if not ln.startswith(("++ ", " + ", "WARNING: ", "*+ WARNING: ", "afni-group plan", "  "))
    ]  # fmt: skip
    assert not untagged
    assert console.count("is not stable") <= 1


def test_all_expected_files(native_run):
    out = native_run
    for name in (
        "dataset_description.json",
        "inventory.tsv",
        "params.json",
        "report.html",
        "group_analysis.sh",
        "logs/afni-group.log",
    ):
        assert (out / name).is_file(), name
    ana = out / "analysis-mema"
    for name in (
        "mema_results.nii.gz",
        "mask.nii.gz",
        "mask_count.nii.gz",
        "ClustSim.NN1_bisided.1D",
        "ClustSim.NN3_2sided.niml",
        "ClustSim.mask",
        "3dClustSim.cmd",
        "clust_bisided_report_chx.txt",
        "clust_bisided_clusters_chx.tsv",
        "clust_bisided_report_keypress.txt",
        "clust_bisided_clusters_keypress.tsv",
    ):
        assert (ana / name).is_file(), name
    for name in ("group_mask_coverage.png", "mema_chx_viewer.html", "mema_keypress_viewer.html"):
        assert (out / "report" / name).is_file(), name
    mask = json.loads((out / "params.json").read_text())["analyses"][0]["mask"]
    assert mask["count_file"] == "mask_count.nii.gz" and mask["n_masks"] == 8
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "afni-group"
    assert not list(out.rglob("*.tmp")), "no temporary files left behind"


def test_mema_labels(native_run):
    from afni_group import afni_io

    dset = afni_io.read_dataset(native_run / "analysis-mema" / "mema_results.nii.gz")
    assert dset.labels == [
        "chx:b",
        "chx:t",
        "keypress:b",
        "keypress:t",
        "keypress-chx:b",
        "keypress-chx:t",
        "I2",
        "tau",
        "QE:Chisq",
    ]
    assert dset.stat_codes[1] == 3 and dset.stat_params[1] == (14.0,)  # fitt(2N-2), N=8


def test_strong_effect_found_at_planted_location(native_run):
    from afni_group import afni_io
    from afni_group.demo import truth as demo_truth

    params = json.loads((native_run / "params.json").read_text())
    chx = params["analyses"][0]["results"][0]
    assert chx["set"] == "chx" and chx["n_clusters"] >= 1
    truth = demo_truth.planted_truth(8, 0, "small").blob("chx")
    rows = list(
        csv.DictReader((native_run / "analysis-mema" / chx["clusters_tsv"]).open(), delimiter="\t")
    )
    biggest = rows[0]
    centre = np.array([float(biggest[f"cm_{a}_lpi"]) for a in "xyz"])
    # within two blob widths of the planted centre (the cluster's centre of mass moves with noise)
    assert np.linalg.norm(centre - np.asarray(truth.centre_mni)) < 2 * truth.sigma_mm
    dat = afni_io.read_dataset(native_run / "analysis-mema" / chx["ee"])
    assert dat.labels == ["chx:b"]


def test_weak_effect_reported_honestly(native_run):
    params = json.loads((native_run / "params.json").read_text())
    kp = params["analyses"][0]["results"][1]
    report = (native_run / "analysis-mema" / kp["report"]).read_text()
    if kp["n_clusters"] == 0:
        assert "NO CLUSTERS FOUND" in report
        assert (
            kp["map"] is None
            and not (native_run / "analysis-mema" / "clust_bisided_map_keypress.nii.gz").exists()
        )
    else:
        assert "NO CLUSTERS FOUND" not in report
    html = (native_run / "report.html").read_text()
    assert "keypress" in html


def test_the_tutorials_design_is_warned_about_and_its_difference_reported(native_run):
    # two contrasts of the same 8 subjects as two groups (gen_group_command.py's default)
    params = json.loads((native_run / "params.json").read_text())
    (finding,) = params["input_qc"]["design"]
    assert (finding["analysis"], finding["n_shared"], finding["df"]) == ("mema", 8, 14)
    log = (native_run / "logs" / "afni-group.log").read_text()
    assert f"WARNING: {finding['message']}" in log
    assert "++ Stat threshold keypress-chx: 4.140454 (t, df = 14)" in log
    diff = params["analyses"][0]["results"][2]
    assert (diff["set"], diff["tbrick"], diff["dof"]) == ("keypress-chx", "keypress-chx:t", 14)
    assert (native_run / "analysis-mema" / diff["clusters_tsv"]).is_file()
    html = (native_run / "report.html").read_text()
    assert "Same subjects in both groups" in html and "<code>--design conditions</code>" in html
    assert "Difference <code>keypress-chx</code>" in html


def test_params_record_thresholds_and_versions(native_run):
    params = json.loads((native_run / "params.json").read_text())
    ana = params["analyses"][0]
    assert len(ana["acf"]) == 3
    assert isinstance(ana["cluster_size_threshold"], int) and ana["cluster_size_threshold"] > 0
    assert ana["results"][0]["voxel_threshold"] > 3
    assert params["engine"] == "native"
    assert params["versions"]["numpy"]
    assert ana["mask"]["n_voxels"] > 0


def test_refuses_to_overwrite_then_resumes(native_run, demo_dir, capsys):
    argv = native_argv(demo_dir, native_run)
    assert cli.main(argv) == errors.EXIT_CANT_CREATE
    capsys.readouterr()
    before = (native_run / "analysis-mema" / "ClustSim.NN1_bisided.1D").stat().st_mtime_ns
    assert cli.main([*argv, "--resume", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "3dClustSim: unchanged, skipped (--resume)" in err
    assert (native_run / "analysis-mema" / "ClustSim.NN1_bisided.1D").stat().st_mtime_ns == before


def test_interrupted_step_is_redone(demo_dir, tmp_path, monkeypatch, capsys):
    from afni_group.programs.clustsim import files as clustsim

    out = tmp_path / "out"
    argv = native_argv(demo_dir, out, "--no-report", iterations="100", seed="3")
    real = clustsim.run_clustsim

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(clustsim, "run_clustsim", interrupted)
    assert cli.main(argv) == 130
    assert not (out / "params.json").exists(), "an interrupted run must not look finished"
    assert not list((out / "analysis-mema").glob("ClustSim.*"))
    monkeypatch.setattr(clustsim, "run_clustsim", real)
    capsys.readouterr()
    assert cli.main([*argv, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "3dMEMA: unchanged, skipped" in err
    assert "3dClustSim: unchanged" not in err
    assert (out / "params.json").is_file()


def test_dry_run_with_overwrite_deletes_nothing(native_run, demo_dir, capsys):
    mema = native_run / "analysis-mema" / "mema_results.nii.gz"
    argv = [str(demo_dir), str(native_run), "group", "--engine", "native", *SEED_SETS]
    assert cli.main([*argv, "--dry-run", "--overwrite"]) == 0
    assert mema.is_file() and (native_run / "params.json").is_file()


def test_resume_redoes_a_step_whose_options_changed(demo_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = native_argv(demo_dir, out, "--no-report", iterations="100")
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert cli.main([*argv, "--resume", "--missing-data", "-1"]) == 0
    err = capsys.readouterr().err
    assert "3dMEMA: unchanged" not in err and "++ analysis-mema/3dMEMA" in err
    assert "3dClustSim: unchanged, skipped (--resume)" in err


def test_auto_iterations_in_batches_and_one_stability_warning(
    tiny_bids, tmp_path, monkeypatch, capsys
):
    """--clustsim-iter auto adds batches until the cap here (never stable); two analyses share
    the table and its warning is printed once, with the iterations that would settle it."""
    from afni_group.programs.clustsim import core, stability

    real = core.uncertainty_from_se
    monkeypatch.setattr(
        core,
        "uncertainty_from_se",
        lambda size, se: core.ThresholdUncertainty(*list(vars(real(size, se)).values())[:4], False),
    )
    monkeypatch.setattr(stability, "AUTO_BATCH", 2000)
    monkeypatch.setattr(stability, "AUTO_MAX_ITERATIONS", 6000)
    out = tmp_path / "out"
    argv = [str(tiny_bids), str(out), "group", "--engine", "native", "--clustsim-iter", "auto",
            "--seed", "5", "--n-cpus", "1", "--no-report"]  # fmt: skip
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    params = json.loads((out / "params.json").read_text())
    assert len(params["analyses"]) == 2
    assert err.count("is not stable") == 1 and "iterations would settle it" in err
    for analysis in params["analyses"]:
        cs = analysis["clustsim"]
        assert cs["iterations"] == 6000
        assert [b["iterations"] for b in cs["auto"]["batches"]] == [2000, 4000, 6000]
        assert analysis["cluster_size_mc"]["iterations_to_settle"] >= 6000
        table = (out / analysis["dir"] / "ClustSim.NN1_bisided.1D").read_text()
        assert "-iter 6000" in table
    assert "csim_iter=6000" in (out / "group_analysis.sh").read_text()
    assert "adding 2000" in err and "still not stable at the most iterations" in err
