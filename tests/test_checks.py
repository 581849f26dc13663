"""The checks shared by the programs, the plan and the validation (programs/checks.py)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from afni_group.programs.checks import (
    NEIGHBOURHOODS,
    SIDEDNESS,
    check_acf,
    check_nn,
    check_probabilities,
    check_sided,
)


def test_sidedness_and_nn():
    assert SIDEDNESS == ("1sided", "2sided", "bisided") and NEIGHBOURHOODS == (1, 2, 3)
    assert check_sided("2sided") == "2sided"
    assert check_sided("within_range", (*SIDEDNESS, "within_range")) == "within_range"
    with pytest.raises(ValueError, match="sidedness must be one of 1sided, 2sided, bisided"):
        check_sided("within_range")
    assert check_nn(3) == 3 and check_nn(2.0) == 2
    for bad in (0, 4, 1.5, "1", None):
        with pytest.raises(ValueError, match="nn must be 1, 2 or 3"):
            check_nn(bad)


def test_probabilities_are_checked_and_sorted():
    assert check_probabilities(["0.01", 0.05, 0.5], "-pthr") == (0.5, 0.05, 0.01)
    for bad in ([0.0], [0.6], ["x"], [math.nan]):
        with pytest.raises(ValueError, match="after '-athr' is illegal"):
            check_probabilities(bad, "-athr")
    with pytest.raises(ValueError, match="at least one value"):
        check_probabilities([], "-athr")


@pytest.mark.parametrize(
    ("acf", "message"),
    [
        ((1.2, 3, 3), "'a' value should be between 0 and 1 (got 1.2)"),
        ((0.5, 0, 3), "'b' value should be positive (got 0)"),
        ((0.5, 3, -1), "'c' value should be positive (got -1)"),
        ((0.5, math.inf, 3), "values 0.5 inf 3 are not all finite numbers"),
        ((0.5, "x", 3), "are not numbers"),
        ((0.5, 3), "need 3 parameters"),
    ],
)
def test_acf_ranges(acf, message):
    with pytest.raises(ValueError) as err:
        check_acf(acf)
    assert message in str(err.value)
    assert check_acf(("0.7", 3, 10)) == (0.7, 3.0, 10.0)


def test_checks_and_plan_do_not_load_numpy():
    code = "import sys, afni_group.plan, afni_group.options; print('numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
