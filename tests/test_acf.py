"""Mean REML ACF over subjects' blur_est files (spec 04 §2)."""

from __future__ import annotations

import numpy as np
import pytest

from afni_group.errors import InputDataError, MissingInputError
from afni_group.programs.acf.core import (
    acf_fwhm,
    acf_model,
    acf_model_float32,
    acf_radius,
    afni_acf_radius,
)
from afni_group.programs.acf.files import mean_acf, read_acf_lines
from afni_group.programs.acf.formats import format_acf, format_acf_line, parse_acf_line

SPEC_LINES = [
    "0.727118 2.91228 10.7089 7.6267   # err_reml ACF blur estimates",
    "0.746814 2.93786 10.8411 7.7   # err_reml ACF blur estimates",
    "0.754144 2.9418 10.3588 7.5   # err_reml ACF blur estimates",
]


def _blur_file(tmp_path, name, reml_line):
    text = (
        "0 0 0 0   # epits FWHM blur estimates\n"
        "0.8 3.1 9.5 8.1   # epits ACF blur estimates\n"
        "0 0 0 0   # errts FWHM blur estimates\n"
        "0.71 2.9 10.6 7.6   # errts ACF blur estimates\n"
        "0 0 0 0   # err_reml FWHM blur estimates\n"
    )
    if reml_line is not None:
        text += reml_line + "\n"
    path = tmp_path / name
    path.write_text(text)
    return path


def test_spec_example_mean_and_text(tmp_path):
    files = [
        _blur_file(tmp_path, f"blur_est.sub-{i}.1D", line) for i, line in enumerate(SPEC_LINES)
    ]
    acf = mean_acf(files)
    assert acf == pytest.approx((0.742692, 2.9306466666, 10.6362666666), rel=1e-9)
    assert format_acf(acf) == ["0.742692", "2.93065", "10.6363"]


def test_only_reml_acf_line_is_used(tmp_path):
    f = _blur_file(tmp_path, "blur_est.sub-1.1D", SPEC_LINES[0])
    assert read_acf_lines(f) == [(0.727118, 2.91228, 10.7089)]


def test_single_subject_is_fine(tmp_path):
    f = _blur_file(tmp_path, "blur_est.sub-1.1D", SPEC_LINES[1])
    assert mean_acf([f]) == (0.746814, 2.93786, 10.8411)


def test_subject_without_reml_line_is_an_error_naming_it(tmp_path):
    f1 = _blur_file(tmp_path, "blur_est.sub-1.1D", SPEC_LINES[0])
    f2 = _blur_file(tmp_path, "blur_est.sub-2.1D", None)
    with pytest.raises(InputDataError, match=r"no 'err_reml ACF' line in .*blur_est.sub-2.1D"):
        mean_acf([f1, f2])


def test_empty_blur_file_is_an_error(tmp_path):
    f1 = _blur_file(tmp_path, "blur_est.sub-1.1D", SPEC_LINES[0])
    f2 = tmp_path / "blur_est.sub-2.1D"
    f2.write_text("")
    with pytest.raises(InputDataError, match="blur_est.sub-2.1D"):
        mean_acf([f1, f2])


def test_no_reml_lines_is_an_error(tmp_path):
    f = _blur_file(tmp_path, "blur_est.sub-1.1D", None)
    with pytest.raises(InputDataError, match="No REML ACF lines found in blur_est files"):
        mean_acf([f])


def test_malformed_number_names_file_and_line(tmp_path):
    f = _blur_file(
        tmp_path, "blur_est.sub-9.1D", "0.7 2.x9 10.1 7.6   # err_reml ACF blur estimates"
    )
    with pytest.raises(InputDataError, match=r"blur_est.sub-9.1D line 6"):
        mean_acf([f])
    with pytest.raises(InputDataError, match="expected 3 ACF numbers"):
        parse_acf_line("0.7 2.9   # err_reml ACF blur estimates")


def test_missing_file(tmp_path):
    with pytest.raises(MissingInputError, match="does not exist"):
        mean_acf([tmp_path / "nope.1D"])


def test_format_like_awk():
    assert format_acf((1.0, 2.5, 1234567.0)) == ["1", "2.5", "1234567"]
    assert format_acf((0.1234567, 3.0000001, 10.63626666)) == ["0.123457", "3", "10.6363"]


def test_acf_line_written_as_afni_proc_and_read_back():
    line = format_acf_line((0.727118, 2.91228, 10.7089, 7.6267))
    assert line == SPEC_LINES[0]
    assert parse_acf_line(line) == (0.727118, 2.91228, 10.7089)
    assert format_acf_line((0.8, 3.1, 9.5, 8.1), "epits").endswith("   # epits ACF blur estimates")


@pytest.mark.parametrize("acf", [(0.742692, 2.93065, 10.6363), (1.0, 12.0, 1.0), (0.0, 1.0, 4.0)])
def test_radius_solvers(acf):
    a, b, c = acf
    for level in (0.5, 0.02):
        r = acf_radius(a, b, c, level)
        assert float(acf_model(r, a, b, c)) == pytest.approx(level, rel=1e-12)
        # 3dClustSim's float32 march + regula falsi lands near the exact root
        assert afni_acf_radius(a, b, c, level) == pytest.approx(r, rel=2e-3)
    assert acf_fwhm(a, b, c) == 2 * acf_radius(a, b, c, 0.5)
    assert acf_radius(a, b, c, 1e-9) == 3 * b + 6 * c + 1  # beyond the bracket: its top
    assert afni_acf_radius(a, b, c, 1.0) == 0.0
    model = acf_model_float32(np.array([0.0, 2.0, 8.0]), a, b, c)
    assert model.dtype == np.float32
    assert np.allclose(model, acf_model(np.array([0.0, 2.0, 8.0]), a, b, c), rtol=1e-6)
