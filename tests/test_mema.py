"""Dataset-level tests of native 3dMEMA: the real tutorial-shaped AFNI run reproduced voxel by
voxel, the ``afni-native 3dMEMA`` drop-in on gen_group_command's script, errors."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from afni_group import afni_io
from afni_group.errors import InputDataError, MissingInputError, OutputError, UsageError
from afni_group.programs.cli.dispatch import main as native_main
from afni_group.programs.cli.mema import cli_main
from afni_group.programs.mema.files import MemaSet, read_covariate_file, run_mema

# real AFNI outputs, copied from the spec's testdata
SPEC = Path(__file__).parent / "data" / "spec"
PIPELINE = SPEC / "afni_examples" / "pipeline" / "derivatives" / "afni"
REFERENCE = PIPELINE / "GROUP_LEVEL" / "mema_results.nii.gz"
SUBJECTS = ["sub-01", "sub-02", "sub-03", "sub-10", "sub-11", "sub-26"]


def _stats(sid: str) -> str:
    return str(PIPELINE / sid / f"{sid}.results" / f"stats.{sid}_REML+tlrc.HEAD")


def _sets(subjects=SUBJECTS) -> list[MemaSet]:
    return [
        MemaSet(
            label,
            list(subjects),
            [f"{_stats(s)}[left_vs_right_{cond}#0_Coef]" for s in subjects],
            [f"{_stats(s)}[left_vs_right_{cond}#0_Tstat]" for s in subjects],
        )
        for label, cond in (("chx", "chx"), ("keypress", "press"))
    ]


def _assert_matches_afni(got: afni_io.AfniDataset, ref: afni_io.AfniDataset) -> None:
    assert got.labels == ref.labels
    assert got.stat_codes == ref.stat_codes
    assert got.stat_params == ref.stat_params
    assert got.space == ref.space == "MNI"
    np.testing.assert_allclose(got.affine, ref.affine)
    assert got.data.dtype == np.float32 and got.data.shape == ref.data.shape
    for i, label in enumerate(ref.labels):
        a, b = ref.data[..., i], got.data[..., i]
        if label in ("I2", "tau"):  # REML stop rule near τ² ≈ 0 (spec §12)
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-5, err_msg=label)
            assert np.mean(a == b) > 0.95
        else:  # b, t, QE: bit-identical float32 here
            np.testing.assert_array_equal(b, a, err_msg=label)


@pytest.fixture(scope="module")
def reference() -> afni_io.AfniDataset:
    return afni_io.read_dataset(REFERENCE)


def test_tutorial_run_reproduces_afni_voxel_by_voxel(tmp_path, reference):
    out = run_mema(_sets(), tmp_path / "mema_results.nii.gz", missing_data=0, progress=False)
    assert out == tmp_path / "mema_results.nii.gz"
    got = afni_io.read_dataset(out)
    _assert_matches_afni(got, reference)
    assert got.labels == [
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
    hdr = nib.load(out).header
    assert list(hdr["dim"]) == [5, 14, 16, 12, 1, 9, 1, 1]
    assert hdr["datatype"] == 16 and hdr["intent_code"] == 0 and hdr["sform_code"] == 4
    hist = got.history
    assert re.match(
        r"\[[^]]+: \w{3} \w{3} [ \d]\d [\d:]{8} \d{4}\] \[[^]]+: .{24}\] 3dMEMA -prefix ", hist
    ), hist
    assert "-groups chx keypress -missing_data 0" in hist and "-correct_dof" not in hist
    assert "'" + _stats("sub-01") + "[left_vs_right_chx#0_Coef]'" in hist


def _ggc_argv(script: Path, prefix: str) -> list[str]:
    """The 3dMEMA arguments of gen_group_command's tcsh script, as tcsh would pass them."""
    text = script.read_text()
    data_dir = re.search(r"^set data_dir = (\S+)", text, re.M).group(1)
    command = text[text.index("3dMEMA") :].replace("\\\n", " ")
    argv = shlex.split(command.replace("$data_dir", data_dir))
    assert argv[0] == "3dMEMA" and argv[1] == "-prefix"
    argv[2] = prefix
    return [a.replace("/scratch/afx/bids/derivatives/afni", str(PIPELINE)) for a in argv[1:]]


def test_drop_in_command_runs_gen_group_command_script(tmp_path, reference):
    argv = _ggc_argv(
        PIPELINE / "GROUP_LEVEL" / "do_group_level_mema.tcsh", str(tmp_path / "mema_results.nii.gz")
    )
    assert native_main(["3dMEMA", *argv, "-quiet"]) == 0
    _assert_matches_afni(afni_io.read_dataset(tmp_path / "mema_results.nii.gz"), reference)


def test_plain_prefix_writes_head_brik_in_input_view(tmp_path):
    ref_head = SPEC / "afni_examples" / "mema_variants" / "mema_plain+tlrc.HEAD"
    out = run_mema(_sets(), tmp_path / "mema_plain", missing_data=0, progress=False)
    assert out == tmp_path / "mema_plain+tlrc.HEAD"
    assert (tmp_path / "mema_plain+tlrc.BRIK").is_file()
    got = afni_io.read_dataset(out)
    assert got.view == "tlrc"
    if ref_head.is_file():
        _assert_matches_afni(got, afni_io.read_dataset(ref_head))
    with pytest.raises(OutputError, match="mema_plain exists"):
        run_mema(_sets(), tmp_path / "mema_plain", missing_data=0, progress=False)


def test_existing_output_refused_before_reading(tmp_path):
    out = tmp_path / "r.nii.gz"
    out.write_bytes(b"x")
    with pytest.raises(OutputError, match="r.nii.gz exists"):
        run_mema(_sets(), out, missing_data=0, progress=False)


def test_correct_dof_changes_only_remapped_t_and_is_recorded(tmp_path, reference):
    out = run_mema(_sets(), tmp_path / "c.nii.gz", missing_data=0, correct_dof=True, progress=False)
    got = afni_io.read_dataset(out)
    assert "-correct_dof" in got.history
    for i in (0, 2, 4, 6, 7, 8):
        np.testing.assert_allclose(got.data[..., i], reference.data[..., i], atol=1e-5)
    # outside the common coverage the subjects differ per voxel: some t's change
    assert not np.array_equal(got.data[..., 1], reference.data[..., 1])


def test_one_set_mask_and_hk_off(tmp_path):
    mask = PIPELINE / "GROUP_LEVEL" / "mask.nii.gz"
    chx = _sets()[0]
    out = run_mema(
        [chx], tmp_path / "one.nii.gz", missing_data=0, hktest=False, mask=mask, progress=False
    )
    got = afni_io.read_dataset(out)
    assert got.labels == ["chx:b", "chx:t", "I2", "tau", "QE:Chisq"]
    assert got.stat_params[1] == (5.0,) and got.stat_codes == [0, 3, 0, 0, 6]
    inside = afni_io.read_dataset(mask).data[..., 0] != 0
    assert np.all(got.data[~inside] == 0) and np.any(got.data[inside, 0] != 0)
    assert "-no_HKtest" in got.history and "-mask" in got.history


def test_paired_conditions_and_covariates(tmp_path):
    sets = _sets()
    ages = {s: float(20 + 3 * i) for i, s in enumerate(SUBJECTS)}
    out = run_mema(
        sets,
        tmp_path / "p.nii.gz",
        design="conditions",
        missing_data=0,
        covariates={"age": ages},
        progress=False,
    )
    got = afni_io.read_dataset(out)
    assert got.labels == [
        "keypress-chx:b",
        "keypress-chx:t",
        "age:b",
        "age:t",
        "I2",
        "tau",
        "QE:Chisq",
    ]
    assert got.stat_codes == [0, 3, 0, 3, 0, 0, 6] and got.stat_params[1] == (4.0,)
    with pytest.raises(InputDataError, match="no value for subject sub-02"):
        run_mema(sets, tmp_path / "q.nii.gz", covariates={"age": {"sub-01": 1.0}}, progress=False)


def test_covariate_file_and_cli(tmp_path):
    table = tmp_path / "cov.txt"
    table.write_text("subj age\n" + "".join(f"{s} {30 + i}\n" for i, s in enumerate(SUBJECTS)))
    assert read_covariate_file(table)["age"]["sub-02"] == 31.0
    argv = ["-prefix", str(tmp_path / "cv.nii.gz"), "-set", "chx"]
    for s in SUBJECTS:
        argv += [
            s,
            f"{_stats(s)}[left_vs_right_chx#0_Coef]",
            f"{_stats(s)}[left_vs_right_chx#0_Tstat]",
        ]
    assert cli_main([*argv, "-covariates", str(table), "-missing_data", "0", "-quiet"]) == 0
    got = afni_io.read_dataset(tmp_path / "cv.nii.gz")
    assert got.labels[2:4] == ["age:b", "age:t"] and got.stat_params[1] == (4.0,)


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------


def test_missing_selector_label_names_subject_and_labels(tmp_path):
    sets = _sets()
    bad = MemaSet("chx", sets[0].subjects, sets[0].beta_specs.copy(), sets[0].tstat_specs)
    bad.beta_specs[2] = bad.beta_specs[2].replace("chx#0_Coef", "chx#0_Cof")
    with pytest.raises(InputDataError) as err:
        run_mema([bad, sets[1]], tmp_path / "x.nii.gz", progress=False)
    text = str(err.value)
    assert "sub-03" in text and "left_vs_right_chx#0_Coef" in text  # names the labels present


def test_missing_dataset(tmp_path):
    sets = _sets()
    sets[0].beta_specs[0] = str(tmp_path / "nope+tlrc.HEAD[0]")
    with pytest.raises((MissingInputError, InputDataError), match="sub-01"):
        run_mema(sets, tmp_path / "x.nii.gz", progress=False)


def _nifti(path: Path, data: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.diag([2.0, 2.0, 2.0, 1.0])), path)
    return str(path)


def test_grid_mismatch_and_non_finite(tmp_path):
    rng = np.random.default_rng(0)
    good = [_nifti(tmp_path / f"s{i}.nii", rng.normal(size=(4, 4, 3, 2))) for i in range(3)]
    small = _nifti(tmp_path / "small.nii", rng.normal(size=(4, 4, 2, 2)))
    nan_data = rng.normal(size=(4, 4, 3, 2))
    nan_data[1, 1, 1, 1] = np.nan
    with_nan = _nifti(tmp_path / "nan.nii", nan_data)

    def one_set(files):
        return [
            MemaSet(
                "A",
                [f"s{i}" for i in range(len(files))],
                [f"{f}[0]" for f in files],
                [f"{f}[1]" for f in files],
            )
        ]

    ok = run_mema(one_set(good), tmp_path / "ok.nii.gz", progress=False)
    assert afni_io.read_dataset(ok).labels == ["A:b", "A:t", "I2", "tau", "QE:Chisq"]
    with pytest.raises(InputDataError, match=r"Dimension mismatch: subject s2 beta"):
        run_mema(one_set([*good[:2], small]), tmp_path / "a.nii.gz", progress=False)
    with pytest.raises(InputDataError, match=r"subject s1 t-statistic .* 1 NaN/Inf voxel"):
        run_mema(one_set([good[0], with_nan, good[2]]), tmp_path / "b.nii.gz", progress=False)
    with pytest.raises(InputDataError, match="exactly one"):
        sets = one_set(good)
        sets[0].beta_specs[0] = good[0]  # no selector: 2 bricks
        run_mema(sets, tmp_path / "c.nii.gz", progress=False)


def test_design_errors(tmp_path):
    sets = _sets()
    with pytest.raises(UsageError, match="-groups A B"):
        run_mema(sets, tmp_path / "x.nii.gz", design="one", progress=False)
    uneven = MemaSet("keypress", SUBJECTS[:5], sets[1].beta_specs[:5], sets[1].tstat_specs[:5])
    with pytest.raises(UsageError, match="same subjects"):
        run_mema([sets[0], uneven], tmp_path / "x.nii.gz", design="conditions", progress=False)
    with pytest.raises(UsageError, match="-missing_data 1"):
        run_mema(sets, tmp_path / "x.nii.gz", missing_data=1, progress=False)
    with pytest.raises(UsageError, match="3 beta"):
        MemaSet("a", ["s1", "s2"], ["b1", "b2", "b3"], ["t1", "t2"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-bogus"], "unknown option '-bogus'"),
        (["-unequal_variance"], "-unequal_variance .* not supported"),
        (["-residual_Z"], "-residual_Z .* not supported"),
        (["-model_outliers"], "-model_outliers .* not supported"),
        (["-prefix", "again.nii"], "option -prefix already specified"),
        (["-n_nonzero", "3", "-max_zeros", "2"], "Cannot set both"),
        (["-missing_data", "2"], "use 0"),
    ],
)
def test_cli_option_errors(tmp_path, extra, message):
    argv = [
        "-prefix",
        str(tmp_path / "o.nii.gz"),
        "-set",
        "chx",
        "s1",
        "b[0]",
        "t[1]",
        "s2",
        "b[0]",
        "t[1]",
        *extra,
    ]
    with pytest.raises(UsageError, match=message):
        cli_main(argv)


def test_cli_structure_errors(tmp_path, capsys):
    base = ["-prefix", str(tmp_path / "o.nii.gz")]
    with pytest.raises(UsageError, match="SUBJ BETA TSTAT triplets"):
        cli_main([*base, "-set", "chx", "s1", "b", "t", "s2", "b"])
    with pytest.raises(UsageError, match="bad length for subjLab"):
        cli_main([*base, "-set", "a", "s1", "b", "t", "-set", "b", "s1", "b", "t"])
    with pytest.raises(UsageError, match="given twice"):
        cli_main(
            [*base, "-set", "a", "s1", "b", "t", "-set", "a", "s1", "b", "t", "-groups", "a", "b"]
        )
    # through the dispatcher: one line, exit 64
    assert native_main(["3dMEMA", *base, "-set", "a", "s1", "b", "t", "-nope"]) == 64
    assert "-nope" in capsys.readouterr().err
    assert cli_main(["-help"]) == 0 and "-missing_data" in capsys.readouterr().out


def test_missing_data_files_equal_zero_counting(tmp_path, reference):
    files = []
    for k, cond in enumerate(("chx", "press")):
        zeros = sum(
            (afni_io.read_dataset(f"{_stats(s)}[left_vs_right_{cond}#0_Coef]").data[..., 0] == 0)
            for s in SUBJECTS
        )
        files.append(_nifti(tmp_path / f"missing{k}.nii", zeros.astype(np.float32)))
    out = run_mema(_sets(), tmp_path / "m.nii.gz", missing_data=files, progress=False)
    _assert_matches_afni(afni_io.read_dataset(out), reference)
    assert "-missing_data " + files[0] in afni_io.read_dataset(out).history
