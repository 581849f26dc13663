"""Native 3dmask_tool -frac against AFNI's outputs (spec 04 §1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from afni_group import afni_io
from afni_group.errors import InputDataError, UsageError
from afni_group.programs.cli.mask_tool import cli_main
from afni_group.programs.mask_tool.core import binarize, count_limit, group_mask
from afni_group.programs.mask_tool.files import make_group_mask

EX = Path(__file__).parent / "data" / "spec" / "afni_examples"
PIPE = EX / "pipeline" / "derivatives" / "afni"
SUBJECT_MASKS = sorted(PIPE.glob("sub-*/sub*results/mask_epi_anat.*.HEAD"))


@pytest.mark.parametrize(
    ("frac", "limit"), [(0, 1), (1.0, 7), (0.6, 5), (0.7, 5), (5, 5), (1.5, 2), (1.0001, 2)]
)
def test_count_limit_spec_examples(frac, limit):
    assert count_limit(frac, 7) == limit


def test_negative_frac_is_a_value_error():
    with pytest.raises(ValueError, match="-frac < 0"):
        count_limit(-0.5, 3)


def test_binarize_edge_rules():
    assert binarize(np.array([0, 1, 255], np.uint8)).tolist() == [False, True, True]
    assert binarize(np.array([0, -32768, -32767, 5], np.int16)).tolist() == [
        False,
        False,
        True,
        True,
    ]
    f = np.array([0, np.nan, np.inf, 1e11, -1e10, 0.5], np.float32)
    assert binarize(f).tolist() == [False, False, False, False, True, True]
    with pytest.raises(ValueError, match="invalid datum"):
        binarize(np.array([1], np.int32))


def test_group_mask_fraction_and_count():
    vols = [np.array([1, 1, 1, 0], np.uint8), np.array([1, 1, 0, 0], np.uint8),
            np.array([1, 0, 0, 0], np.uint8)]  # fmt: skip
    assert group_mask(vols, 1.0).tolist() == [1, 0, 0, 0]
    assert group_mask(vols, 0.5).tolist() == [1, 1, 0, 0]  # ceil(1.5) = 2
    assert group_mask(vols, 0.0).tolist() == [1, 1, 1, 0]
    assert group_mask(vols, 3).tolist() == [1, 0, 0, 0]
    assert group_mask(vols, 1.5).dtype == np.uint8


def test_pipeline_mask_matches_afni(tmp_path):
    out = make_group_mask(SUBJECT_MASKS, tmp_path / "mask.nii.gz", frac=1.0)
    ours = afni_io.read_dataset(out)
    ref = afni_io.read_dataset(PIPE / "GROUP_LEVEL" / "mask.nii.gz")
    assert ours.data.dtype == np.uint8
    assert ours.data.shape == ref.data.shape
    np.testing.assert_array_equal(ours.data, ref.data)
    assert int(ours.data.sum()) == 890
    np.testing.assert_allclose(ours.affine, ref.affine)
    assert ours.labels == ["#0"]
    assert ours.space == ref.space == "MNI"
    assert ours.attributes["TYPESTRING"].rstrip("\0") == "3DIM_HEAD_ANAT"
    assert "3dmask_tool" in ours.history


@pytest.mark.parametrize("first", ["m3fb", "m2f", "m1lab"])
def test_header_copied_from_first_input(tmp_path, first):
    src = EX / "mask_tool"
    out = make_group_mask(
        [src / f"{first}+tlrc.HEAD", src / "m2f+tlrc.HEAD"], tmp_path / f"o_{first}.nii.gz"
    )
    ours = afni_io.read_dataset(out)
    ref = afni_io.read_dataset(src / f"o_{first}.nii.gz")
    np.testing.assert_array_equal(ours.data, ref.data)
    assert ours.data.dtype == np.uint8
    assert ours.labels == ref.labels
    assert ours.stat_codes == ref.stat_codes
    assert ours.stat_params == ref.stat_params
    assert ours.attributes["TYPESTRING"].rstrip("\0") == ref.attributes["TYPESTRING"].rstrip("\0")


def test_voxel_count_mismatch_names_both_files(tmp_path):
    a = afni_io.AfniDataset(np.ones((4, 4, 4), np.uint8), np.eye(4))
    b = afni_io.AfniDataset(np.ones((4, 4, 5), np.uint8), np.eye(4))
    pa = afni_io.write_dataset(a, tmp_path / "a.nii.gz")
    pb = afni_io.write_dataset(b, tmp_path / "b.nii.gz")
    with pytest.raises(InputDataError, match=r"nvoxel mismatch: .*b\.nii\.gz.*a\.nii\.gz"):
        make_group_mask([pa, pb], tmp_path / "m.nii.gz")


def test_grid_mismatch_warns_and_combines_by_index(tmp_path, caplog):
    data = np.zeros((4, 4, 4), np.uint8)
    data[1:3, 1:3, 1:3] = 1
    shifted = np.eye(4)
    shifted[:3, 3] = 5.0
    pa = afni_io.write_dataset(afni_io.AfniDataset(data, np.eye(4)), tmp_path / "a.nii.gz")
    pb = afni_io.write_dataset(afni_io.AfniDataset(data, shifted), tmp_path / "b.nii.gz")
    out = make_group_mask([pa, pb], tmp_path / "m.nii.gz")
    assert "does not match" in caplog.text
    np.testing.assert_array_equal(afni_io.read_dataset(out).data[..., 0], data)


def test_cli_drop_in(tmp_path):
    out = tmp_path / "mask.nii.gz"
    rc = cli_main(["-prefix", str(out), "-input", *map(str, SUBJECT_MASKS), "-frac", "1.0"])
    assert rc == 0
    assert int(afni_io.read_dataset(out).data.sum()) == 890
    with pytest.raises(UsageError, match="unknown option"):
        cli_main(["-prefix", str(out), "-input", str(SUBJECT_MASKS[0]), "-dilate_result", "1"])


def test_count_is_the_coverage_before_the_fraction(tmp_path):
    """-count -frac 0: how many subject masks cover each voxel (AFNI_26.2.03 3dmask_tool -count
    -frac 0 on these six masks: byte counts 0..6 with this histogram)."""
    out = make_group_mask(SUBJECT_MASKS, tmp_path / "count.nii.gz", frac=0, count=True)
    data = afni_io.read_dataset(out).data[..., 0]
    assert data.dtype == np.uint8
    assert np.bincount(data.ravel()).tolist() == [1414, 122, 68, 24, 66, 104, 890]
    assert "-count" in afni_io.read_dataset(out).history
    counted = cli_main(["-prefix", str(tmp_path / "c.nii.gz"), "-input", *map(str, SUBJECT_MASKS),
                        "-count", "-frac", "0.5"])  # fmt: skip
    assert counted == 0
    half = afni_io.read_dataset(tmp_path / "c.nii.gz").data[..., 0]
    np.testing.assert_array_equal(half, np.where(data >= 3, data, 0))


@pytest.mark.afni
def test_count_matches_afni(tmp_path):
    import shutil
    import subprocess

    if shutil.which("3dmask_tool") is None:
        pytest.skip("AFNI not on PATH")
    ref = tmp_path / "afni.nii.gz"
    subprocess.run(["3dmask_tool", "-input", *map(str, SUBJECT_MASKS), "-count", "-frac", "0",
                    "-prefix", str(ref)], check=True, capture_output=True)  # fmt: skip
    ours = make_group_mask(SUBJECT_MASKS, tmp_path / "ours.nii.gz", frac=0, count=True)
    theirs = afni_io.read_dataset(ref).data
    np.testing.assert_array_equal(afni_io.read_dataset(ours).data, theirs)
    assert afni_io.read_dataset(ours).data.dtype == theirs.dtype
