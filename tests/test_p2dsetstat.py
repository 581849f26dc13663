"""p-value → statistic threshold (``p2dsetstat``, spec 06b) and the shared statdist module."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from afni_group import afni_io
from afni_group.errors import InputDataError, UsageError
from afni_group.programs.cli.argv import c_atof
from afni_group.programs.cli.p2dsetstat import cli_main
from afni_group.programs.p2dsetstat import core as ps_core
from afni_group.programs.p2dsetstat import files as ps_files
from afni_group.programs.p2dsetstat import formats as ps
from afni_group.statdist import format_stat_param, pval_to_stat, stat_nsides, stat_symbol

TESTDATA = Path(__file__).parent / "data" / "spec"
P2D = TESTDATA / "afni_examples" / "p2dsetstat"
GROUP = TESTDATA / "afni_examples" / "pipeline" / "derivatives" / "afni" / "GROUP_LEVEL"
CODES = {"Correl": 2, "Ttest": 3, "Ftest": 4, "Zscore": 5, "Chisq": 6}


@pytest.mark.parametrize(
    ("code", "params", "bisided", "one_sided"),
    [
        (3, (5,), "6.868826", "5.893429"),
        (3, (10,), "4.586894", "4.143701"),
        (3, (14,), "4.140454", "3.787390"),
        (3, (20,), "3.849516", "3.551808"),
        (3, (22,), "3.792131", "3.504992"),
        (3, (29,), "3.659405", "3.396240"),
        (5, (), "3.290527", "3.090232"),
        (4, (1, 20), "14.818775", "14.818775"),  # F is upper-tail: never doubled
    ],
)
def test_spec_table_p0001(code, params, bisided, one_sided):
    assert ps.format_stat_threshold(pval_to_stat(0.001, code, params, "bisided")) == bisided
    assert ps.format_stat_threshold(pval_to_stat(0.001, code, params, "2sided")) == bisided
    assert ps.format_stat_threshold(pval_to_stat(0.001, code, params, "1sided")) == one_sided


def test_against_scipy_with_float32_p():
    for dof in (2, 7, 22, 116.24, 1000):
        for p in (0.05, 0.001, 1e-7):
            p32 = float(np.float32(p))
            expected = np.float32(stats.t.isf(p32 / 2, float(np.float32(dof))))
            assert pval_to_stat(p, 3, (dof,), "bisided") == float(expected)
    assert pval_to_stat(0.001, 6, (10,), "1sided") == float(
        np.float32(stats.chi2.isf(float(np.float32(0.001)), 10))
    )


def test_edge_values():
    assert pval_to_stat(0.0, 3, (10,), "bisided") == -1.0
    assert pval_to_stat(1.0, 3, (10,), "bisided") == -1.0
    assert pval_to_stat(0.6, 3, (10,), "1sided") == 0.0  # doubled to 1.2 -> >= 0.999999
    assert pval_to_stat(0.5, 3, (10,), "1sided") == 0.0
    assert pval_to_stat(0.001, 3, (0.5,), "bisided") == 0.0  # AFNI: DOF < 1 gives 0
    assert ps.format_stat_threshold(-1.0) == "-1.000000"
    with pytest.raises(ValueError, match="sided"):
        pval_to_stat(0.01, 3, (10,), "twosided")


def test_stat_symbols_and_sides():
    assert stat_symbol(3, (22.0,)) == "Ttest(22)"
    assert stat_symbol(5, ()) == "Zscore()"
    assert stat_symbol(4, (3.5, 21.5)) == "Ftest(3.5,21.5)"
    assert stat_symbol(3, (float(np.float32(116.24)),)) == "Ttest(116.24)"
    assert format_stat_param(np.float32(15.49)) == "15.49"
    assert [stat_nsides(c) for c in (0, 2, 3, 4, 5, 6)] == [0, 2, 2, 1, 2, 1]


def test_all_real_p2dsetstat_outputs_for_dof_at_least_2():
    """1,010 real AFNI runs; AFNI is inexact for DOF 1 and 1.5, which we do not imitate."""
    checked = 0
    for line in (P2D / "p2dsetstat_quiet_results.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        _, symbol, pval, sided, expected = line.split("\t")
        name, args = re.match(r"(\w+)\((.*)\)", symbol).groups()
        params = tuple(float(v) for v in args.split(",") if v)
        if name == "Ttest" and params[0] < 2:
            continue
        value = pval_to_stat(float(pval), CODES[name], params, sided[1:])
        assert ps.format_stat_threshold(value) == expected, line
        checked += 1
    assert checked == 1010 - 26 - 8 - 8


def test_real_datasets_through_cli(capsys, monkeypatch):
    monkeypatch.chdir(P2D)
    assert cli_main(["-quiet", "-pval", "0.001", "-bisided", "-inset", "st+orig[t22]"]) == 0
    assert capsys.readouterr().out == "3.792131"  # no newline
    assert cli_main(["-quiet", "-pval", "0.001", "-bisided", "-inset", "st2+orig[corr]"]) == 0
    assert capsys.readouterr().out == "0.632863"
    assert cli_main(["-quiet", "-pval", "0.001", "-1sided", "-inset", "st2+orig[f_frac]"]) == 0
    assert capsys.readouterr().out == "7.308933"
    assert cli_main(["-quiet", "-pval", "0.001", "-bisided", "-inset", "st2+orig[none]"]) == 65
    err = capsys.readouterr().err
    assert "does not look like a recognized statistical volume" in err
    assert "'st2+orig[none]', sub-brick 'none'" in err
    assert cli_main(["-quiet", "-pval", "0.001", "-bisided", "-inset", "st2+orig"]) == 64
    assert "exactly one volume" in capsys.readouterr().err


def test_real_mema_output(capsys, monkeypatch):
    monkeypatch.chdir(GROUP)
    value = ps_files.stat_threshold("mema_results.nii.gz", "chx:t", 0.001, "bisided")
    assert value == pytest.approx(4.586894, abs=1e-6)
    assert cli_main(["-pval", "0.001", "-bisided", "-inset", "mema_results.nii.gz[chx:t]"]) == 0
    assert capsys.readouterr().out == (
        "++ Found input file  : mema_results.nii.gz[chx:t]\n"
        "++ Subbrick label    : chx:t\n"
        "++ p-value           : 0.00100000\n"
        "++ stat type and par : Ttest(10)\n"
        "++ sidedness         : bisided\n"
        "++ Final stat val    : 4.586894\n"
    )
    assert cli_main(["-pval", "1e-7", "-2sided", "-inset", "mema_results.nii.gz[1]"]) == 0
    assert "++ p-value           : 1.000000e-07\n" in capsys.readouterr().out


def test_stat_threshold_on_written_dataset(tmp_path):
    dset = afni_io.AfniDataset(
        data=np.zeros((2, 2, 2, 2), np.float32),
        affine=np.eye(4),
        labels=["g:b", "g:t"],
        stat_codes=[0, 3],
        stat_params=[(), (22.0,)],
    )
    path = afni_io.write_dataset(dset, tmp_path / "g.nii.gz")
    assert ps.format_stat_threshold(ps_files.stat_threshold(path, "g:t", 0.001, "bisided")) == (
        "3.792131"
    )
    assert ps.format_stat_threshold(ps_files.stat_threshold(path, 1, 0.001, "1sided")) == "3.504992"
    with pytest.raises(InputDataError, match=r"g.nii.gz\[g:b\] \('g:b'\): .*no statistic code"):
        ps_files.stat_threshold(path, "g:b", 0.001, "bisided")
    with pytest.raises(InputDataError, match="no sub-brick labelled 'g:x'"):
        ps_files.stat_threshold(path, "g:x", 0.001, "bisided")
    with pytest.raises(InputDataError, match=r"\[2\]: no such sub-brick"):
        ps_files.stat_threshold(path, 2, 0.001, "bisided")
    with pytest.raises(UsageError, match="between 0 and 1"):
        ps_files.stat_threshold(path, 1, 0.0, "bisided")
    with pytest.raises(UsageError, match="sidedness"):
        ps_files.stat_threshold(path, 1, 0.001, "twosided")


def test_core_threshold_for_stat():
    assert ps_core.threshold_for_stat(3, (22.0,), 0.001, "bisided") == pval_to_stat(
        0.001, 3, (22.0,), "bisided"
    )
    with pytest.raises(ValueError, match="no statistic code"):
        ps_core.threshold_for_stat(0, (), 0.001, "bisided")
    with pytest.raises(ValueError, match="not an AFNI statistic"):
        ps_core.threshold_for_stat(99, (), 0.001, "bisided")
    with pytest.raises(ValueError, match="between 0 and 1"):
        ps_core.threshold_for_stat(3, (10,), 1.0, "bisided")


@pytest.mark.parametrize("value", [4.5868940353, 3.50499, 17.1234565, 123.4567891, 0.6328625])
def test_afni_printed_threshold_is_what_3dclusterize_parses(value):
    """p2dsetstat prints %.6f of float32; 3dClusterize reads that text with atof."""
    printed = ps.afni_printed_threshold(value)
    text = ps.format_stat_threshold(value)
    assert printed == c_atof(text)
    assert ps.printed_threshold_text(printed) == text  # the words a script typed, exactly
