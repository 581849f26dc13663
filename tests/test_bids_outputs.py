"""The BIDS view of a run (issue 23): statistical maps with sidecars, the template's name, the
official validator, citations and the cluster table's new columns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import stats

from afni_group import afni_io, bids_validator, bids_view, cli, errors, outputs, space, statdist
from afni_group.plan import MEMA_FILE

SETS = ["--set", "chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat",
        "--set", "keypress", "left_vs_right_press#0_Coef", "left_vs_right_press#0_Tstat"]  # fmt: skip
SPACE = "MNI152NLin2009cAsym"  # the demo's afni_proc template: MNI152_2009_template_SSW


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    from afni_group.demo import writing

    root = tmp_path_factory.mktemp("demo") / "bids"
    writing.write_demo(root, n_subjects=8, seed=0, grid="small")
    return root


@pytest.fixture(scope="module")
def run_dir(demo_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    argv = [str(demo_dir), str(out), "group", "--engine", "native", "--clustsim-iter", "300",
            "--seed", "7", "--n-cpus", "1", *SETS]  # fmt: skip
    assert cli.main(argv) == 0
    return out


def _sidecar(path: Path) -> dict:
    return json.loads(
        Path(str(path).replace(".nii.gz", ".json").replace(".tsv", ".json")).read_text()
    )


# ----------------------------------------------------------------------------- z from t


def test_t_to_z_matches_scipy_and_keeps_the_far_tail():
    t = np.array([-6.0, -2.0, 0.0, 0.5, 3.79, 14.66])
    expected = stats.norm.isf(stats.t.sf(t, 22))
    assert np.allclose(statdist.t_to_z(t, 22), expected, rtol=1e-12, atol=1e-12)
    # where 1 - cdf would round to 0 the lower tail keeps it: t = 100 is p ~ 5e-31 (z ~ 11.5)
    assert statdist.t_to_z(100.0, 22) == pytest.approx(stats.norm.isf(stats.t.sf(100.0, 22)))
    # past the double range of p the asymptote continues smoothly and monotonically
    big = np.array([1e12, 9.9e12, 1.01e13, 1e14, 1e20])
    z = statdist.t_to_z(big, 22)
    assert np.all(np.diff(z) > 0) and np.all(np.isfinite(z))
    assert abs(z[2] - z[1]) < 0.05
    assert statdist.t_to_z(-big, 22) == pytest.approx(-z)
    assert np.isnan(statdist.t_to_z(np.nan, 22))
    assert np.signbit(statdist.t_to_z(0.0, 22)) == np.False_
    with pytest.raises(ValueError):
        statdist.t_to_z(1.0, 0)


# ----------------------------------------------------------------------------- template


@pytest.mark.parametrize(
    ("templates", "afni_space", "label", "standard"),
    [
        (["MNI152_2009_template_SSW.nii.gz"] * 3, "MNI", "MNI152NLin2009cAsym", True),
        (["/opt/afni/MNI152_T1_2009c+tlrc"], None, "MNI152NLin2009cAsym", True),
        (["TT_N27+tlrc.HEAD"], "TLRC", "Talairach", True),
        (["MNI_avg152T1+tlrc"], "MNI", "MNI152Lin", True),
        ([None], "MNI_2009c_asym", "MNI152NLin2009cAsym", True),
        ([], "TLRC", "Talairach", True),
        (["HaskinsPeds_NL_template1.0+tlrc"], "HaskinsPeds", "HaskinsPeds", False),
        ([], "MNI", "MNI", False),  # AFNI's MNI names no template: kept, as afnipy does
        # the uvars and the data disagree: the data's header wins
        (["MNI152_2009_template_SSW.nii.gz"], "TLRC", "Talairach", True),
    ],
)
def test_template_identity(templates, afni_space, label, standard):
    found = space.identify(templates, afni_space)
    assert (found.label, found.standard) == (label, standard)
    assert found.source


def test_template_tables_use_bids_standard_identifiers():
    from bidsschematools import schema

    enums = set(schema.load_schema()["objects"]["enums"])
    names = {
        *space.AFNI_TEMPLATES.values(),
        *space.AFNI_SPACES.values(),
        *(a["space"] for a in space.ATLAS_SPACES.values()),
        space.UNDERLAY["space"],
    }
    assert names <= enums, names - enums


def test_template_document_notes_where_spaces_differ():
    doc = space.template_document(space.identify(["MNI152_2009_template_SSW"], "MNI"))
    assert doc["data"]["space"] == SPACE and doc["underlay"]["drawn"] is True
    assert [a["space"] for a in doc["atlases"]] == ["MNI152NLin6Asym", "MNIColin27"]
    assert doc["same"] is False and len(doc["notes"]) == 2
    tlrc = space.template_document(space.identify(["TT_N27+tlrc"], "TLRC"))
    assert tlrc["underlay"]["drawn"] is False
    assert any("not MNI" in n for n in tlrc["notes"])


def test_clean_contrast_labels_follow_nilearn():
    assert bids_view.clean_label("keypress-chx") == "keypressMinusChx"
    assert bids_view.clean_label("left_vs_right") == "leftVsRight"
    assert bids_view.clean_label("S2+S1") == "s2PlusS1"


# ----------------------------------------------------------------------------- the view


def test_bids_view_files_and_sidecars_match_the_data(run_dir):
    params = json.loads((run_dir / "params.json").read_text())
    analysis = params["analyses"][0]
    assert params["template"]["data"]["space"] == SPACE
    assert params["bids_view"]["space"] == SPACE
    bucket = afni_io.read_dataset(run_dir / "analysis-mema" / MEMA_FILE)
    for result in analysis["results"]:
        # the two groups' difference keypress-chx is contrast-keypressMinusChx
        label = bids_view.clean_label(result["set"])
        prefix = run_dir / f"space-{SPACE}_contrast-{label}"
        t_img = nib.load(f"{prefix}_stat-t_statmap.nii.gz")
        t_brick = bucket.brick(bucket.index_of(result["tbrick"]))
        # the t map is the AFNI bucket's t brick, value for value, on the same grid
        assert t_img.shape == t_brick.shape
        assert np.array_equal(np.asarray(t_img.dataobj), t_brick)
        assert np.allclose(t_img.affine, bucket.affine)
        side = _sidecar(f"{prefix}_stat-t_statmap.nii.gz")
        dof = bucket.stat_params[bucket.index_of(result["tbrick"])][0]
        assert side["DegreesOfFreedom"] == dof == result["dof"]
        assert t_img.header.get_intent() == ("t test", (dof,), "t")
        assert side["AFNIFile"] == "analysis-mema/mema_results.nii.gz"
        assert side["AFNISubBrick"] == result["tbrick"]
        th = side["Thresholds"]
        assert th["VoxelwiseThreshold"] == result["voxel_threshold"]
        assert th["ClusterSizeThreshold"] == analysis["cluster_size_threshold"]
        assert th["ClusterSizeMonteCarloSE"] == analysis["cluster_size_mc"]["mc_se"]
        assert (th["Sidedness"], th["NN"], th["VoxelwiseP"]) == ("bisided", 1, 0.001)
        assert side["Mask"] == f"space-{SPACE}_desc-group_mask.nii.gz"
        assert side["Software"]["Versions"]["afni-group"] == params["afni_group_version"]
        assert side["Template"] == params["template"]  # data, atlases and underlay
        # z has the t's tail probability
        z = np.asarray(nib.load(f"{prefix}_stat-z_statmap.nii.gz").dataobj)
        assert np.allclose(z, statdist.t_to_z(t_brick, dof).astype(np.float32))
        zside = _sidecar(f"{prefix}_stat-z_statmap.nii.gz")
        assert zside["Thresholds"]["VoxelwiseThreshold"] == pytest.approx(
            stats.norm.isf(stats.t.sf(result["voxel_threshold"], dof))
        )
        effect = np.asarray(nib.load(f"{prefix}_stat-effect_statmap.nii.gz").dataobj)
        assert np.array_equal(effect, bucket.brick(bucket.index_of(result["bbrick"])))
        assert _sidecar(f"{prefix}_stat-effect_statmap.nii.gz")["Units"] == "percent signal change"
        clusters = Path(f"{prefix}_clusters.tsv")
        assert (
            clusters.read_bytes()
            == (run_dir / "analysis-mema" / result["clusters_tsv"]).read_bytes()
        )
        has_map = Path(f"{prefix}_desc-clusters_dseg.nii.gz").is_file()
        assert has_map == bool(result["n_clusters"])
        if has_map:
            ids = np.asarray(nib.load(f"{prefix}_desc-clusters_dseg.nii.gz").dataobj)
            assert sorted(np.unique(ids[ids > 0])) == list(range(1, result["n_clusters"] + 1))
    mask_img = nib.load(run_dir / f"space-{SPACE}_desc-group_mask.nii.gz")
    mask_side = _sidecar(run_dir / f"space-{SPACE}_desc-group_mask.nii.gz")
    assert (
        int(np.asarray(mask_img.dataobj).sum())
        == mask_side["NumberOfVoxels"]
        == analysis["mask"]["n_voxels"]
    )
    assert mask_side["Type"] == "Brain" and len(mask_side["Sources"]) == len(params["subjects"])
    assert mask_side["Sources"][0].startswith("bids:afni:sub-")
    desc = json.loads((run_dir / "dataset_description.json").read_text())
    assert set(desc["DatasetLinks"]) == {"raw", "afni"}
    # no CodeURL until the project has a public repository (a URL that does not resolve is worse)
    assert desc["GeneratedBy"][0].get("CodeURL") == outputs.CODE_URL
    assert "analysis-*" in (run_dir / ".bidsignore").read_text().split()


def test_every_table_has_a_column_sidecar(run_dir):
    tables = [*run_dir.glob("*.tsv"), *(run_dir / "analysis-mema").glob("*.tsv")]
    assert len(tables) == 7  # inventory, 3 BIDS-named and 3 AFNI-named cluster tables
    for tsv in tables:
        with tsv.open(newline="") as fh:
            header = next(csv.reader(fh, delimiter="\t"))
        columns = json.loads(tsv.with_suffix(".json").read_text())
        assert list(columns) == header, tsv.name
        assert all(c["Description"] for c in columns.values())
    columns = json.loads((run_dir / "inventory.json").read_text())
    assert tuple(columns) == outputs.INVENTORY_COLUMNS


def test_overwrite_removes_the_view(tmp_path):
    names = [f"space-{SPACE}_desc-group_mask.nii.gz", f"space-{SPACE}_contrast-a_clusters.tsv",
             "README.md", "inventory.json", ".bidsignore"]  # fmt: skip
    for name in [*names, "dataset_description.json", "notes.txt"]:
        (tmp_path / name).write_text("x")
    bids_view.remove_view(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset_description.json", "notes.txt"]


def test_nilearn_finds_the_maps_by_name(run_dir):
    from nilearn.interfaces.bids import get_bids_files, parse_bids_filename

    found = get_bids_files(
        str(run_dir),
        file_tag="statmap",
        file_type="nii.gz",
        filters=[("stat", "t")],
        sub_folder=False,
    )
    names = sorted(Path(f).name for f in found)
    assert names == [
        f"space-{SPACE}_contrast-{c}_stat-t_statmap.nii.gz"
        for c in ("chx", "keypressMinusChx", "keypress")
    ]
    parsed = parse_bids_filename(found[0])
    assert parsed["entities"] == {"space": SPACE, "contrast": "chx", "stat": "t"}


def test_cluster_summary_has_numeric_p_and_max_t_place(run_dir):
    params = json.loads((run_dir / "params.json").read_text())
    chx = params["analyses"][0]["results"][0]
    assert chx["clusters"], "the planted chx effect gives a cluster"
    first = chx["clusters"][0]
    assert isinstance(first["p_fwe"], float) and first["p_fwe_bound"] in ("=", "<", ">")
    assert abs(first["max_t"]) >= abs(first["peak_t"])
    # the max-t coordinate is a voxel of the t map holding that value
    t_img = nib.load(run_dir / f"space-{SPACE}_contrast-chx_stat-t_statmap.nii.gz")
    ijk = np.rint(np.linalg.inv(t_img.affine) @ [*first["max_t_lpi"], 1.0])[:3].astype(int)
    assert np.asarray(t_img.dataobj)[tuple(ijk)] == pytest.approx(first["max_t"], abs=1e-4)


def test_methods_text_ends_with_references(run_dir):
    html = (run_dir / "report.html").read_text()
    methods = html.split("Draft methods text")[1]
    for cite in ("Chen et al., 2012", "Cox et al., 2017", "Cox, 1996", "Abraham et al., 2014"):
        assert cite in methods
    assert "NeuroImage 60(1):747-765" in methods and "Brain Connectivity 7(3):152-171" in methods


def test_container_provenance_records_what_is_knowable(tmp_path):
    assert outputs.container({}) is None
    docker = outputs.container({"AFNI_GROUP_CONTAINER": "afni-group:0.1.0"})
    assert docker == {"Type": "docker", "Tag": "afni-group:0.1.0"}
    sif = tmp_path / "afni-group.sif"
    apptainer = outputs.container(
        {
            "AFNI_GROUP_CONTAINER": "afni-group:0.1.0",
            "APPTAINER_CONTAINER": str(sif),
            "AFNI_GROUP_CONTAINER_DIGEST": "sha256:abc",
        }  # fmt: skip
    )
    assert apptainer == {"Type": "singularity", "Tag": "afni-group:0.1.0",
                         "URI": sif.as_uri(), "Digest": "sha256:abc"}  # fmt: skip


def test_repository_files_exist():
    root = Path(__file__).resolve().parents[1]
    assert "Apache License" in (root / "LICENSE").read_text()[:200]
    assert "END OF TERMS AND CONDITIONS" in (root / "LICENSE").read_text()
    cff = (root / "CITATION.cff").read_text()
    assert "10.1016/j.neuroimage.2011.12.060" in cff
    assert ("repository-code:" in cff) == bool(outputs.CODE_URL)


# ----------------------------------------------------------------------------- validator


def test_validator_errors_stop_the_run_with_65(tiny_bids, tmp_path, monkeypatch, capsys):
    report = {"issues": {"issues": [
        {"severity": "error", "code": "NOT_INCLUDED", "location": "/junk.txt"},
        {"severity": "warning", "code": "TOO_FEW_AUTHORS", "location": "/dataset_description.json"},
    ]}, "summary": {"schemaVersion": "1.2.7"}}  # fmt: skip
    monkeypatch.setattr(bids_validator, "run_validator", lambda bids_dir, timeout=0: report)
    out = tmp_path / "out"
    code = cli.main([str(tiny_bids), str(out), "group", "--set", "chx",
                     "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == errors.EXIT_DATA == 65
    assert len(err) == 1 and "NOT_INCLUDED /junk.txt" in err[0]
    assert "--skip-bids-validation" in err[0]
    assert not out.exists()
    summary = bids_validator.summarize(report, "3.0.2")
    assert (summary["n_errors"], summary["n_warnings"]) == (1, 1)
    assert bids_validator.validate(tiny_bids, skip=True) == {
        "ran": False,
        "reason": "--skip-bids-validation",
    }


def test_validator_runs_beside_discovery_and_is_named_first(
    tiny_bids, tmp_path, monkeypatch, capsys
):
    """The validator (a process of its own) runs while the afni_proc results are found; a
    dataset it refuses is refused in one line even when discovery fails too."""
    import threading

    started, seen = threading.Event(), {}
    report = {"issues": {"issues": [
        {"severity": "error", "code": "NOT_INCLUDED", "location": "/junk.txt"},
    ]}, "summary": {"schemaVersion": "1.2.7"}}  # fmt: skip

    def slow_validator(bids_dir, timeout=0):
        started.set()
        seen["during_discovery"] = discovered.wait(10)  # discovery ran meanwhile
        return report

    discovered = threading.Event()
    real_build_plan = cli.build_plan

    def build_plan(args):
        assert started.wait(10)
        discovered.set()
        return real_build_plan(args)

    monkeypatch.setattr(bids_validator, "run_validator", slow_validator)
    monkeypatch.setattr(cli, "build_plan", build_plan)
    out = tmp_path / "out"
    code = cli.main([str(tiny_bids), str(out), "group", "--set", "chx",
                     "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert seen["during_discovery"] is True
    assert code == errors.EXIT_DATA and len(err) == 1 and "NOT_INCLUDED" in err[0]
    # discovery fails too (a brick no subject has): the validator's error is still the one
    code = cli.main([str(tiny_bids), str(out), "group", "--set", "chx", "nosuch#0_Coef",
                     "nosuch#0_Tstat"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == errors.EXIT_DATA and len(err) == 1 and "NOT_INCLUDED" in err[0]
    assert not out.exists()


@pytest.mark.bids_validator
def test_validator_that_cannot_run_is_a_warning(tiny_bids, monkeypatch, caplog):
    monkeypatch.setattr(bids_validator, "validator_command", lambda: None)
    found = bids_validator.validate(tiny_bids)
    assert found["ran"] is False and "not installed" in found["reason"]
    with caplog.at_level("WARNING", logger="afni_group"):
        bids_validator.log_summary(found)
    assert "BIDS validation skipped" in caplog.text


needs_validator = pytest.mark.skipif(
    bids_validator.validator_command() is None, reason="bids-validator-deno is not installed"
)


@pytest.mark.bids_validator
@needs_validator
def test_demo_dataset_and_output_pass_the_official_validator(demo_dir, run_dir):
    raw = bids_validator.validate(demo_dir)
    assert raw["ran"] and raw["n_errors"] == 0
    assert raw["validator"] == f"bids-validator-deno {bids_validator.version()}"
    report = bids_validator.run_validator(run_dir)
    assert "error" not in report, report
    derivative = bids_validator.summarize(report, bids_validator.version())
    assert derivative["n_errors"] == 0, derivative["errors"]
    # the group mask is a real BIDS file: checked, not ignored
    assert not any("group_mask" in loc for w in derivative["warnings"] for loc in w["locations"]
                   if "SpatialReference" in w["code"])  # fmt: skip
