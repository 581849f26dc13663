"""Pre-flight validation (issue 15): broken demo datasets fail before 3dMEMA, naming the file."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from afni_group import cli, validate
from afni_group.errors import (
    EXIT_DATA,
    EXIT_USAGE,
    InputDataError,
    MissingInputError,
    UsageError,
)

CHX = ["--set", "chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"]


@pytest.fixture(scope="module")
def demo_master(tmp_path_factory) -> Path:
    from afni_group.demo import cli as demo_cli

    root = tmp_path_factory.mktemp("validate") / "bids"
    assert demo_cli.main([str(root), "--subjects", "4", "--seed", "0", "--grid", "small"]) == 0
    return root


@pytest.fixture
def bids(demo_master, tmp_path) -> Path:
    """A private copy of the demo dataset that a test may break."""
    return Path(shutil.copytree(demo_master, tmp_path / "bids"))


def results(bids: Path, sub: str) -> Path:
    return bids / "derivatives" / "afni" / f"sub-{sub}" / f"sub-{sub}.results"


def dry_run(bids: Path, out: Path, *extra: str) -> list[str]:
    return [str(bids), str(out), "group", "--engine", "native", "--dry-run", *extra, *CHX]


def run_failing(capsys, argv: list[str], code: int) -> str:
    """Run the CLI, expect ``code``; return stderr's last line (the one-line error)."""
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no error message"
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def edit_blur(bids: Path, sub: str, values: str) -> Path:
    path = results(bids, sub) / f"blur_est.sub-{sub}.1D"
    lines = path.read_text().splitlines()
    lines[5] = f"{values} 7.5   # err_reml ACF blur estimates"
    path.write_text("\n".join(lines) + "\n")
    return path


def rewrite_stats(bids: Path, sub: str, change) -> Path:
    """Apply ``change(dset)`` to a subject's stats bucket and write it back in place."""
    from afni_group import afni_io

    head = results(bids, sub) / f"stats.sub-{sub}_REML+tlrc.HEAD"
    dset = afni_io.read_dataset(head)
    change(dset)
    afni_io.write_dataset(dset, results(bids, sub) / f"stats.sub-{sub}_REML+tlrc")
    return head


# ---------------------------------------------------------------- blur_est


@pytest.mark.parametrize(
    ("values", "why"),
    [("nan 3.0 10.0", "finite"), ("0.7 -3.0 10.0", "'b' value should be positive (got -3)")],
)
def test_bad_acf_in_one_subject_names_file_and_line(bids, tmp_path, capsys, values, why):
    path = edit_blur(bids, "03", values)
    out = tmp_path / "out"
    line = run_failing(capsys, dry_run(bids, out), EXIT_DATA)
    assert f"{path} line 6" in line and why in line
    assert not out.exists()  # nothing written before the checks pass


def test_blur_est_values_are_checked_with_file_and_line(tmp_path):
    path = tmp_path / "blur_est.sub-01.1D"
    good = "0.7 3 10 7.6   # err_reml ACF blur estimates\n"
    path.write_text(good)
    assert validate.check_blur_est(path) == [(0.7, 3.0, 10.0)]
    for bad in ("inf 3 10", "1.5 3 10", "0.7 3 0"):
        path.write_text(f"0 0 0 0   # err_reml FWHM blur estimates\n{bad} 7   # err_reml ACF\n")
        with pytest.raises(InputDataError, match=f"^{re.escape(str(path))} line 2: ACF "):
            validate.check_blur_est(path)


def test_blur_est_without_reml_line(tmp_path):
    path = tmp_path / "blur_est.sub-01.1D"
    path.write_text("0 0 0 0   # errts FWHM blur estimates\n")
    with pytest.raises(InputDataError, match="no 'err_reml ACF' line"):
        validate.check_blur_est(path)


# ---------------------------------------------------------------- participants.tsv


def test_short_participants_row_with_covariates(bids, tmp_path, capsys):
    tsv = bids / "participants.tsv"
    rows = tsv.read_text().splitlines()
    rows[2] = rows[2].rsplit("\t", 2)[0]  # sub-02 loses sex and group
    tsv.write_text("\n".join(rows) + "\n")
    argv = dry_run(bids, tmp_path / "out", "--covariates", "age", "sex")
    line = run_failing(capsys, argv, EXIT_DATA)
    assert f"{tsv} line 3" in line and "2 field(s)" in line


def test_non_numeric_covariate_names_row_and_column(bids, tmp_path, capsys):
    tsv = bids / "participants.tsv"
    rows = tsv.read_text().splitlines()
    rows[4] = rows[4].replace("\t26\t", "\tabout 30\t")  # sub-04's age
    tsv.write_text("\n".join(rows) + "\n")
    argv = dry_run(bids, tmp_path / "out", "--covariates", "age")
    line = run_failing(capsys, argv, EXIT_DATA)
    assert f"{tsv} line 5 (sub-04), column 'age'" in line and "'about 30'" in line


def test_covariate_values(tmp_path):
    tsv = tmp_path / "participants.tsv"
    tsv.write_text("participant_id\tage\tsex\nsub-01\t30\tM\nsub-02\t41.5\tF\nsub-03\t22\tM\n")
    got = validate.covariate_values(tsv, ["age", "sex"], ["01", "02", "03"])
    assert got == {"age": {"01": 30, "02": 41.5, "03": 22}, "sex": {"01": 1, "02": 0, "03": 1}}
    with pytest.raises(InputDataError, match="no row for sub-04"):
        validate.covariate_values(tsv, ["age"], ["01", "04"])
    with pytest.raises(InputDataError, match="line 1: no column 'weight'"):
        validate.covariate_values(tsv, ["weight"], ["01"])
    with pytest.raises(MissingInputError, match="--covariates needs .*participants.tsv"):
        validate.covariate_values(tmp_path / "none" / "participants.tsv", ["age"], ["01"])
    tsv.write_text("participant_id\tage\nsub-01\tn/a\nsub-02\t3\n")
    with pytest.raises(InputDataError, match=r"line 2 \(sub-01\), column 'age': no value"):
        validate.covariate_values(tsv, ["age"], ["01", "02"])


# ---------------------------------------------------------------- grids


def shift_origin(dset, mm: float = 6.0) -> None:
    dset.affine = dset.affine.copy()
    dset.affine[1, 3] += mm


def test_origin_off_is_an_error_unless_accepted(bids, tmp_path, capsys):
    head = rewrite_stats(bids, "02", shift_origin)
    line = run_failing(capsys, dry_run(bids, tmp_path / "a"), EXIT_DATA)
    assert str(head) in line and "origin off by" in line and "--accept-grid-mismatch" in line

    out = tmp_path / "b"
    assert cli.main(dry_run(bids, out, "--accept-grid-mismatch")) == 0
    qc = json.loads((out / "plan.json").read_text())["input_qc"]
    listed = [g["file"] for g in qc["grid_mismatches"]]
    assert listed == [f"sub-02 {head}"]
    assert "origin off by (0, -6, 0) mm" in qc["grid_mismatches"][0]["differences"][0]
    assert any(str(head) in w for w in qc["warnings"])


def test_dimension_mismatch_is_always_an_error(bids, tmp_path, capsys):
    def crop(dset):
        dset.data = dset.data[:, :, :-1].copy()

    head = rewrite_stats(bids, "04", crop)
    argv = dry_run(bids, tmp_path / "out", "--accept-grid-mismatch")
    line = run_failing(capsys, argv, EXIT_DATA)
    assert str(head) in line and "dimensions 27x32x25" in line


def test_grid_differences():
    ref = validate.Grid("a", (4, 4, 4), (3.0, 3.0, 3.0), "RAI", (0.0, 0.0, 0.0))
    assert validate.grid_differences(ref, ref) == []
    other = validate.Grid("b", (4, 4, 4), (3.0, 3.0, 3.5), "LPI", (0.0, 0.005, 2.0))
    diffs = validate.grid_differences(ref, other)
    assert diffs == ["voxel size 3x3x3.5 mm instead of 3x3x3", "orientation LPI instead of RAI",
                     "origin off by (0, 0.005, 2) mm"]  # fmt: skip
    with pytest.raises(InputDataError, match="^b: voxel size"):
        validate.check_grids([ref, other])
    assert validate.check_grids([ref, other], accept_mismatch=True)[0]["file"] == "b"


# ---------------------------------------------------------------- mask, NaN


def test_empty_mask_intersection(bids, tmp_path, capsys):
    from afni_group import afni_io

    for sub, half in (("01", slice(None, 13)), ("02", slice(13, None))):
        head = results(bids, sub) / f"mask_epi_anat.sub-{sub}+tlrc.HEAD"
        mask = afni_io.read_dataset(head)
        mask.data[half] = 0
        afni_io.write_dataset(mask, results(bids, sub) / f"mask_epi_anat.sub-{sub}+tlrc")
    line = run_failing(capsys, dry_run(bids, tmp_path / "out"), EXIT_DATA)
    assert "group mask (-frac 1) of the 4 subject masks is empty" in line


def test_nan_beta_fails_before_mema(bids, tmp_path, capsys, monkeypatch):
    from afni_group.programs.mema import files as mema

    def nan_voxel(dset):
        index = dset.labels.index("left_vs_right_chx#0_Coef")
        dset.data[13, 16, 13, index] = np.nan
        dset.data[0, 0, 0, index] = np.inf  # outside every mask: 3dMEMA would still fail

    head = rewrite_stats(bids, "01", nan_voxel)
    monkeypatch.setattr(mema, "run_mema", lambda *a, **k: pytest.fail("3dMEMA ran"))
    argv = [str(bids), str(tmp_path / "out"), "group", "--engine", "native", *CHX]
    line = run_failing(capsys, argv, EXIT_DATA)
    assert f"sub-01 {head}[left_vs_right_chx#0_Coef] has 2 NaN/Inf voxel(s)" in line
    assert not (tmp_path / "out" / "params.json").exists()


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("option", "value", "text"),
    [
        ("--pthr", "0.0011", "--pthr 0.0011 is not a row"),
        ("--alpha", "0.025", "--alpha 0.025 is not a column"),
        ("--clustsim-iter", "5000000", "--clustsim-iter 5000000 is more than 1000000"),
    ],
)
def test_options_checked_before_anything_runs(bids, tmp_path, capsys, option, value, text):
    line = run_failing(capsys, dry_run(bids, tmp_path / "out", option, value), EXIT_USAGE)
    assert text in line


def test_iterations_fit_memory_and_are_raised():
    per = validate.clustsim_bytes_per_iteration()
    assert per == 4 * 3 * 3 * 29
    with pytest.raises(UsageError, match="GiB of memory is available"):
        validate.effective_clustsim_iter(100_000, memory=per * 100_000)
    assert validate.effective_clustsim_iter(100_000, memory=None) == 100_000
    assert validate.effective_clustsim_iter(10, memory=2**30) == 2000


def test_params_record_effective_iterations(bids, tmp_path):
    out = tmp_path / "out"
    assert cli.main(dry_run(bids, out, "--clustsim-iter", "10")) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["analyses"][0]["clustsim"]["iterations"] == 2000
    assert plan["options"]["clustsim_iter"] == 10
    assert plan["input_qc"]["clustsim_iter_requested"] == 10
    assert plan["input_qc"]["clustsim_iter"] == 2000
    assert "csim_iter=2000" in (out / "group_analysis.sh").read_text()


# ---------------------------------------------------------------- input QC


def test_subject_qc_counts():
    beta = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    t = np.array([2.0, 1.0, 0.0, 0.0, -1.0])
    qc = validate.subject_qc(beta, t)
    assert qc["sign_mismatch"] == 2 and qc["t_zero_beta_nonzero"] == 1
    assert qc["all_zero"] is False and qc["max_abs_beta"] == 3.0
    assert validate.subject_qc(np.zeros(3), np.zeros(3))["all_zero"] is True
    assert validate.extreme_limit([0.5, 1.0, 100.0]) == 10.0


def test_input_qc_flags_bad_subjects(bids, tmp_path):
    coef, tstat = "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"

    def flip_t(dset):
        dset.data[..., dset.labels.index(tstat)] *= -1

    def zero(dset):
        dset.data[..., dset.labels.index(coef)] = 0
        dset.data[..., dset.labels.index(tstat)] = 0

    def spike(dset):
        dset.data[13, 16, 13, dset.labels.index(coef)] = 500.0

    rewrite_stats(bids, "01", flip_t)
    rewrite_stats(bids, "02", zero)
    rewrite_stats(bids, "03", spike)
    out = tmp_path / "out"
    assert cli.main(dry_run(bids, out)) == 0
    qc = json.loads((out / "plan.json").read_text())["input_qc"]
    rows = {r["subject"]: r for r in qc["sets"][0]["subjects"]}
    assert rows["01"]["sign_mismatch"] > 1000 and rows["04"]["sign_mismatch"] == 0
    assert rows["02"]["all_zero"] and not rows["01"]["all_zero"]
    assert rows["03"]["extreme_betas"] == 1 and rows["04"]["extreme_betas"] == 0
    text = "\n".join(qc["warnings"])
    assert "sub-01 set 'chx'" in text and "opposite signs" in text
    assert "sub-02 set 'chx': beta and t are 0" in text
    assert "sub-03 set 'chx': 1 voxel(s) with |beta| >" in text


def test_input_qc_section_of_the_report():
    import jinja2

    from afni_group.report.context import input_qc_context

    row = {"subject": "01", "sign_mismatch": 12, "t_zero_beta_nonzero": 0, "extreme_betas": 0,
           "all_zero": False, "max_abs_beta": 2.5}  # fmt: skip
    qc = {
        "group_mask_voxels": 7100,
        "extreme_factor": 10.0,
        "grid_mismatches": [
            {"file": "sub-02 stats", "differences": ["origin off by (0, 6, 0) mm"]}
        ],
        "sets": [{"set": "chx", "beta": "b#0_Coef", "tstat": "b#0_Tstat", "subjects": [row]}],
        "warnings": ["sub-01 set 'chx': 12 voxel(s) where t and beta have opposite signs"],
    }
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("afni_group", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("report_input_qc.html.j2")
    html = template.render(input_qc=input_qc_context({"input_qc": qc}))
    assert 'id="input-qc"' in html and "7100 voxels" in html
    assert "12 voxel(s) where t and beta have opposite signs" in html
    assert "origin off by (0, 6, 0) mm" in html and "<details open>" in html
    assert '<span class="missing">12</span>' in html
    assert template.render(input_qc=input_qc_context({})).strip() == ""
