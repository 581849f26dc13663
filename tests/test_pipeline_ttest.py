"""``--program 3dttest++`` end to end on the native engine (issue 22): both ClustSim routes,
the three designs, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from afni_group import afni_io, cli, errors
from afni_group.programs.cli import dispatch

CHX = ["chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"]
PRESS = ["keypress", "left_vs_right_press#0_Coef", "left_vs_right_press#0_Tstat"]


def run(bids: Path, out: Path, *extra: str) -> None:
    argv = [str(bids), str(out), "group", "--engine", "native", "--program", "3dttest++",
            "--n-cpus", "1", "--no-report", *extra]  # fmt: skip
    assert cli.main(argv) == 0


@pytest.fixture(scope="module")
def demo14(tmp_path_factory) -> Path:
    from afni_group.demo.writing import write_demo

    root = tmp_path_factory.mktemp("demo14") / "bids"
    write_demo(root, n_subjects=14, seed=0, grid="small", group_effect=1.0)
    return root


@pytest.fixture(scope="module")
def randomise_run(demo14, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rand") / "out"
    run(demo14, out, "--clustsim", "randomise", "--clustsim-iter", "1000", "--seed", "5",
        "--set", *CHX)  # fmt: skip
    return out


def betas(bids: Path, label: str) -> dict[str, np.ndarray]:
    """Each subject's beta brick (the demo's nested layout)."""
    out = {}
    for stats in sorted(bids.glob("derivatives/afni/sub-*/sub-*.results/stats.*+tlrc.HEAD")):
        sid = stats.parent.name.removesuffix(".results")
        out[sid] = afni_io.read_dataset(f"{stats}[{label}]").brick(0).astype(np.float64)
    return out


def test_randomise_outputs_and_params(randomise_run):
    adir = randomise_run / "analysis-ttest"
    bucket = afni_io.read_dataset(adir / "ttest_results.nii.gz")
    assert list(bucket.labels) == ["chx_mean", "chx_Zscr"]
    for nn in (1, 2, 3):
        for sided in ("1sided", "2sided", "bisided"):
            assert (adir / f"ClustSim.CSimA.NN{nn}_{sided}.1D").is_file()
    # no ACF route on this one: no 3dClustSim tables, no ACF
    assert not list(adir.glob("ClustSim.NN*"))
    params = json.loads((randomise_run / "params.json").read_text())
    assert (params["program"], params["clustsim_route"]) == ("3dttest++", "randomise")
    entry = params["analyses"][0]
    assert entry["stats_file"] == "ttest_results.nii.gz" and entry["acf"] is None
    cs = entry["clustsim"]
    assert cs["table"] == "ClustSim.CSimA.NN1_bisided.1D"
    assert (cs["route"], cs["iterations"], cs["jobs"], cs["seeds"]) == (
        "randomise",
        1000,
        1,
        [5, 5 + 314159265],
    )
    mc = entry["cluster_size_mc"]
    assert mc["threshold"] == entry["cluster_size_threshold"] > 0 and mc["mc_se"] > 0
    # the -nodec cell is int(C + 0.951) of the interpolated size C the s.e. is about
    assert int(mc["size"] + 0.951) == mc["threshold"]
    (result,) = entry["results"]
    assert (result["tbrick"], result["bbrick"], result["stat"], result["dof"]) == (
        "chx_Zscr", "chx_mean", "z", None
    )  # fmt: skip
    assert result["voxel_threshold"] == pytest.approx(3.290527)  # p2dsetstat on z, bisided
    assert (adir / result["clusters_tsv"]).is_file() and result["n_clusters"] >= 1
    sidecar = json.loads(
        next(randomise_run.glob("space-*_contrast-chx_stat-z_statmap.json")).read_text()
    )
    assert sidecar["Statistic"] == "z" and sidecar["Thresholds"]["ClustSimSeeds"] == [5, 314159270]
    assert not list(randomise_run.glob("space-*_stat-t_statmap.nii.gz"))


def test_randomise_tables_equal_afni_native(randomise_run, demo14, tmp_path, monkeypatch):
    """The pipeline's tables are what ``afni-native 3dttest++ -Clustsim`` writes."""
    adir = randomise_run / "analysis-ttest"
    (tmp_path / "mask.nii.gz").write_bytes((adir / "mask.nii.gz").read_bytes())
    argv = ["3dttest++", "-setA", "chx"]
    for stats in sorted(demo14.glob("derivatives/afni/sub-*/sub-*.results/stats.*+tlrc.HEAD")):
        argv += [stats.parent.name.removesuffix(".results"), f"{stats}[{CHX[1]}]"]
    argv += ["-mask", "mask.nii.gz", "-prefix", "x.nii.gz", "-prefix_clustsim", "ClustSim",
             "-Clustsim", "1", "-seed", "5", "-DAFNI_TTEST_NUMCSIM=1000"]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert dispatch.main(argv) == 0
    tables = sorted(p.name for p in adir.glob("ClustSim.CSimA.NN*.1D"))
    assert len(tables) == 9
    for name in tables:
        assert (tmp_path / name).read_bytes() == (adir / name).read_bytes(), name
    mine = afni_io.read_dataset(adir / "ttest_results.nii.gz")
    theirs = afni_io.read_dataset(tmp_path / "x.nii.gz")
    assert np.array_equal(mine.data, theirs.data)


def test_acf_route_groups_difference_is_b_minus_a(demo14, tmp_path):
    """Two groups: the second (patient) is -setA, so ``patient-control`` is patient - control."""
    out = tmp_path / "out"
    run(demo14, out, "--clustsim", "acf", "--clustsim-iter", "2000", "--seed", "3",
        "--group-column", "group", "--set", *CHX)  # fmt: skip
    params = json.loads((out / "params.json").read_text())
    (entry,) = params["analyses"]
    adir = out / entry["dir"]
    assert entry["clustsim"]["table"] == "ClustSim.NN1_bisided.1D" and entry["acf"]
    assert (adir / "ClustSim.NN1_bisided.1D").is_file()
    assert [r["set"] for r in entry["results"]] == ["control", "patient", "patient-control"]
    assert [r["stat"] for r in entry["results"]] == ["t"] * 3
    diff = entry["results"][2]
    assert (diff["tbrick"], diff["bbrick"]) == ("patient-control_Tstat", "patient-control_mean")
    n1, n2 = (len(entry["set_subjects"][k]) for k in ("control", "patient"))
    assert diff["dof"] == n1 + n2 - 2
    values = betas(demo14, CHX[1])
    mean = {
        k: np.mean([values[f"sub-{s}"] for s in entry["set_subjects"][k]], axis=0)
        for k in ("control", "patient")
    }
    bucket = afni_io.read_dataset(adir / "ttest_results.nii.gz")
    mask = afni_io.read_dataset(adir / "mask.nii.gz").brick(0) != 0
    got = bucket.brick(bucket.index_of("patient-control_mean"))
    np.testing.assert_allclose(got[mask], (mean["patient"] - mean["control"])[mask], atol=1e-4)
    assert not got[~mask].any()  # -mask: zero outside
    assert list(out.glob("space-*_contrast-*_stat-t_statmap.nii.gz"))


def test_auto_detected_long_labels_use_3dttest_cut_names(tiny_bids, tmp_path, capsys):
    """The auto-detected 'left_vs_right_chx' is cut to 3dttest++'s 12 characters in the bricks
    the later steps select; the files keep the full label."""
    out = tmp_path / "out"
    run(tiny_bids, out, "--clustsim-iter", "1000", "--seed", "2")
    params = json.loads((out / "params.json").read_text())
    entry = next(a for a in params["analyses"] if a["results"][0]["set"] == "left_vs_right_chx")
    (result,) = entry["results"]
    assert (result["tbrick"], result["bbrick"]) == ("left_vs_righ_Tstat", "left_vs_righ_mean")
    assert (out / entry["dir"] / result["clusters_tsv"]).name.endswith("_left_vs_right_chx.tsv")
    bucket = afni_io.read_dataset(out / entry["dir"] / "ttest_results.nii.gz")
    assert list(bucket.labels) == ["left_vs_righ_mean", "left_vs_righ_Tstat"]
    # two sets that 3dttest++ would give the same name are refused before anything runs
    argv = [str(tiny_bids), str(tmp_path / "o2"), "group", "--program", "3dttest++",
            "--set", "left_vs_right_a", *CHX[1:], "--set", "left_vs_right_b", *PRESS[1:]]  # fmt: skip
    capsys.readouterr()
    assert cli.main(argv) == errors.EXIT_USAGE
    assert "same in their first 12 characters" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_conditions_paired_difference(demo14, tmp_path):
    """Paired: ``keypress-chx`` is the mean of keypress - chx, df n - 1."""
    out = tmp_path / "out"
    run(demo14, out, "--clustsim", "randomise", "--clustsim-iter", "1000", "--seed", "2",
        "--design", "conditions", "--set", *CHX, "--set", *PRESS)  # fmt: skip
    (entry,) = json.loads((out / "params.json").read_text())["analyses"]
    (result,) = entry["results"]
    assert (result["set"], result["tbrick"]) == ("keypress-chx", "keypress-chx_Zscr")
    adir = out / entry["dir"]
    bucket = afni_io.read_dataset(adir / "ttest_results.nii.gz")
    a, b = betas(demo14, CHX[1]), betas(demo14, PRESS[1])
    expected = np.mean([b[s] - a[s] for s in a], axis=0)
    mask = afni_io.read_dataset(adir / "mask.nii.gz").brick(0) != 0
    got = bucket.brick(bucket.index_of("keypress-chx_mean"))
    np.testing.assert_allclose(got[mask], expected[mask], atol=1e-4)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--clustsim", "randomise"], "needs at least 14"),
        (["--clustsim", "randomise", "--program", "3dMEMA"], "--clustsim randomise needs"),
        (["--clustsim", "randomise", "--clustsim-iter", "auto"], "--clustsim-iter auto"),
        (["--no-hktest"], "--no-hktest is a 3dMEMA option"),
        (["--missing-data", "1"], "--missing-data is a 3dMEMA option"),
        (["--mema-correct-dof"], "--mema-correct-dof is a 3dMEMA option"),
    ],
)
def test_refusals(capsys, tiny_bids, tmp_path, extra, needle):
    sets = [] if not extra else ["--set", *CHX]
    argv = [str(tiny_bids), str(tmp_path / "out"), "group", "--engine", "native",
            "--program", "3dttest++", *sets, *extra]  # fmt: skip
    if "3dMEMA" in extra:
        argv.remove("3dttest++")
        argv.remove("--program")
    assert cli.main(argv) == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    if needle == "needs at least 14":
        assert "4 dataset(s)" in err and "--clustsim acf" in err


def test_covariates_table_and_argv(tiny_bids, tmp_path):
    """--covariates: a -covariates table keyed by the LONG-form dataset labels (sub-X)."""
    from afni_group.engines.native import ttest

    args = cli.build_parser().parse_args(
        [str(tiny_bids), str(tmp_path / "out"), "group", "--program", "3dttest++",
         "--covariates", "age", "--set", *CHX, "--set", *PRESS, "--design", "conditions"]
    )  # fmt: skip
    plan = cli.build_plan(args)
    (analysis,) = plan.analyses
    assert analysis.dirname == "analysis-ttest"  # not analysis-mema
    from afni_group.programs.ttest.formats import format_covariates, parse_covariates

    text = format_covariates(sorted(plan.covariates), plan.ttest_covariates(analysis))
    assert parse_covariates(text).rows["sub-02"] == (22.0,)  # AFNI's reader reads it back
    assert text.splitlines()[:3] == ["subj\tage", "sub-01\t21.0", "sub-02\t22.0"]
    sets, argv = ttest.ttest_argv(plan, analysis)
    assert [s.name for s in sets] == ["keypress", "chx"]  # the second set is -setA
    assert argv[:3] == ["-setA", "keypress", "sub-01"] and "-paired" in argv
    assert argv[argv.index("-covariates") + 1] == "covariates.txt"
    assert "-Clustsim" not in argv and argv[-2:] == ["-prefix", "ttest_results.nii.gz"]


def test_resume_skips_the_randomisation(randomise_run, demo14, capsys):
    """Every file the 3dttest++ step names exists, so --resume does not redo -Clustsim."""
    table = randomise_run / "analysis-ttest" / "ClustSim.CSimA.NN1_bisided.1D"
    before = table.stat().st_mtime_ns
    run(demo14, randomise_run, "--clustsim", "randomise", "--clustsim-iter", "1000", "--seed",
        "5", "--set", *CHX, "--resume")  # fmt: skip
    assert "analysis-ttest/3dttest++: unchanged, skipped (--resume)" in capsys.readouterr().err
    assert table.stat().st_mtime_ns == before


def test_randomise_route_needs_no_blur_est(tmp_path):
    """3dttest++ -Clustsim models no ACF: a subject without blur_est is complete for it."""
    from afni_group import discover
    from afni_group.errors import MissingInputError
    from afni_group.plan import SubjectFiles

    def unit(label: str, blur: bool) -> SubjectFiles:
        results = tmp_path / f"sub-{label}.results"
        return SubjectFiles(label, results, results / "stats+tlrc.HEAD", results / "mask+tlrc.HEAD",
                            results / "blur_est.1D" if blur else None)  # fmt: skip

    units = [unit("01", True), unit("02", False), unit("03", True)]
    complete, dropped = discover.check_complete(units, False, needs_blur_est=False)
    assert [u.label for u in complete] == ["01", "02", "03"] and not dropped
    with pytest.raises(MissingInputError, match=r"sub-02: blur_est\.sub-02\.1D"):
        discover.check_complete(units, False)
    complete, dropped = discover.check_complete(units, True)
    assert [u.label for u in complete] == ["01", "03"] and dropped[0][0] == "02"
