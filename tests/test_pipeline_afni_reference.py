"""The native pipeline against a real AFNI_26.2.03 run of the tutorial (spec testdata).

``afni_examples/pipeline`` holds six subjects' afni_proc stats and masks and what the tutorial
script made from them with real AFNI (``GROUP_LEVEL/``). Run afni-group on the same inputs and
compare step by step: 3dMEMA and the mask exactly, the voxelwise thresholds exactly, the
cluster-size threshold statistically (different random numbers), and the clusters found.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from afni_group import afni_io, cli

SPEC = Path(__file__).parent / "data" / "spec"
REFERENCE = SPEC / "afni_examples" / "pipeline" / "derivatives" / "afni"
GROUP = REFERENCE / "GROUP_LEVEL"


# the three REML ACF lines of spec 04's example; their mean is what AFNI's run used
# (GROUP_LEVEL/ClustSim.*.1D: -acf 0.742692 2.93065 10.6363)
ACF_LINES = (
    "0.727118 2.91228 10.7089 7.6267",
    "0.746814 2.93786 10.8411 7.7213",
    "0.754144 2.9418 10.3588 7.5531",
)
SEED_SETS = [
    "--set", "chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat",
    "--set", "keypress", "left_vs_right_press#0_Coef", "left_vs_right_press#0_Tstat",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reference") / "bids"
    (root / "derivatives" / "afni").mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "ref", "BIDSVersion": "1.10.0"}')
    subjects = sorted(p.name for p in REFERENCE.glob("sub-*"))
    for i, sid in enumerate(subjects):
        results = root / "derivatives" / "afni" / sid / f"{sid}.results"
        shutil.copytree(REFERENCE / sid / f"{sid}.results", results)
        a_b_c_d = ACF_LINES[i % 3]
        (results / f"blur_est.{sid}.1D").write_text(
            f"0 0 0 0   # err_reml FWHM blur estimates\n{a_b_c_d}   # err_reml ACF blur estimates\n"
        )
    out = root / "derivatives" / "afni-group"
    argv = [str(root), str(out), "group", "--engine", "native", "--clustsim-iter", "2000",
            "--n-cpus", "1", "--no-report", *SEED_SETS]  # fmt: skip
    assert cli.main(argv) == 0
    return out / "analysis-mema"


def test_mema_matches_afni(run):
    ours = afni_io.read_dataset(run / "mema_results.nii.gz")
    theirs = afni_io.read_dataset(GROUP / "mema_results.nii.gz")
    assert ours.labels == theirs.labels
    assert ours.stat_codes == theirs.stat_codes and ours.stat_params == theirs.stat_params
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-5, atol=1e-6)


def test_mask_matches_afni(run):
    ours = afni_io.read_dataset(run / "mask.nii.gz")
    theirs = afni_io.read_dataset(GROUP / "mask.nii.gz")
    np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_allclose(ours.affine, theirs.affine)


def test_thresholds_and_clusters_match_afni(run):
    params = json.loads((run.parent / "params.json").read_text())["analyses"][0]
    assert params["acf"] == pytest.approx([0.742692, 2.93065, 10.6363], abs=1e-6)
    # AFNI's own table gives 4 voxels at p=0.001, alpha=0.05 (NN1, bisided); ours comes from
    # other random numbers with the same model
    assert abs(params["cluster_size_threshold"] - 4) <= 1
    chx, keypress, difference = params["results"]
    assert difference["set"] == "keypress-chx"  # the two groups' B-A, clustered too
    assert chx["voxel_threshold"] == keypress["voxel_threshold"] == 4.586894
    assert difference["voxel_threshold"] == 4.586894
    assert keypress["n_clusters"] == 0
    assert (run / keypress["report"]).read_text() == (
        GROUP / "clust_bisided_report_keypress.txt"
    ).read_text()

    ours = (run / chx["report"]).read_text().splitlines()
    theirs = (GROUP / "clust_bisided_report_chx.txt").read_text().splitlines()
    rows = [line for line in theirs if not line.startswith("#")]
    assert [line for line in ours if not line.startswith("#")] == rows  # both clusters, exactly
    if params["cluster_size_threshold"] == 4:
        assert ours == theirs  # the whole report, byte for byte
    ee = afni_io.read_dataset(run / chx["ee"])
    np.testing.assert_array_equal(
        ee.data, afni_io.read_dataset(GROUP / "clust_bisided_EE_chx.nii.gz").data
    )
