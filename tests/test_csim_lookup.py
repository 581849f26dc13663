"""Cluster-size lookup in 3dClustSim tables (``1d_tool.py -csim_pthr P -csim_alpha A``, spec 06a)."""

from __future__ import annotations

from pathlib import Path

import pytest

from afni_group.errors import InputDataError, MissingInputError
from afni_group.programs.cli.csim_lookup import cli_main
from afni_group.programs.clustsim.formats import parse_clustsim_header, read_text_table
from afni_group.programs.csim_lookup import core as cl

TESTDATA = Path(__file__).parent / "data" / "spec"
TOOL = TESTDATA / "afni_examples" / "1d_tool"
REAL = TESTDATA / "afni_examples" / "pipeline" / "derivatives" / "afni" / "GROUP_LEVEL"

# A 1-sided NN1 table shaped like 3dClustSim's (values of the amaiacc example, 06 a.5).
TABLE = """\
# 3dClustSim -acf 0.7 3.0 10.0 -mask mask.nii.gz -both -prefix ClustSim
# 1-sided thresholding
# Grid: 97x115x97 2.00x2.00x2.00 mm^3 (123456 voxels in mask)
#
# CLUSTER SIZE THRESHOLD(pthr,alpha) in Voxels
# -NN 1  | alpha = Prob(Cluster >= given size)
#  pthr  | .10000 .05000 .02000 .01000
# ------ | ------ ------ ------ ------
 0.010000    90.0   110.3   140.0   160.2
 0.001000    25.3    29.1    35.0    39.7
 0.000100     8.7    10.2    12.0    14.0
 1.000e-5     3.0     3.1     4.0     4.0
"""


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    path = tmp_path / "ClustSim.NN1_1sided.1D"
    path.write_text(TABLE)
    return path


def test_exact_lookup_takes_ceiling_of_printed_value(table):
    assert cl.cluster_size_threshold(table, 0.001, 0.05) == 30  # 29.1
    assert cl.cluster_size_threshold(table, 0.001, 0.01) == 40  # 39.7
    assert cl.cluster_size_threshold(table, 0.0001, 0.10) == 9  # 8.7
    assert cl.cluster_size_threshold(table, 1e-5, 0.1) == 3  # 3.0 stays 3
    assert cl.cluster_size_threshold(table, 1e-5, 0.02) == 4  # exponent row matches 1e-5


def test_header_attributes(table):
    attrs = parse_clustsim_header(read_text_table(table).header)
    assert attrs.missing() == []
    assert (attrs.btype, attrs.bvals, attrs.sided, attrs.NN) == (
        "ACF",
        [0.7, 3.0, 10.0],
        "1-sided",
        1,
    )
    assert (attrs.grid_nvox, attrs.grid_vsize, attrs.mask, attrs.mask_nvox) == (
        "97x115x97",
        "2.00x2.00x2.00 mm^3",
        "mask.nii.gz",
        123456,
    )
    assert attrs.avals == [0.1, 0.05, 0.02, 0.01]


def test_no_interpolation(table):
    result = cl.lookup_cluster_size(table, 0.0011, 0.05)
    assert (result.size, result.ok) == (0, False)
    assert result.messages == ["** uncorrected pthr = 0.0011 not in ClustSim table"]
    result = cl.lookup_cluster_size(table, 0.001, 0.045)
    assert result.messages == ["** corrected alpha = 0.045 not in ClustSim table"]
    with pytest.raises(InputDataError, match="pthr = 0.0011 not in ClustSim table"):
        cl.cluster_size_threshold(table, 0.0011, 0.05)


def test_pipeline_fails_loudly_where_afni_prints_zero(tmp_path):
    plain = tmp_path / "plain.1D"
    plain.write_text("# not clustsim\n 0.001 3.0\n")
    assert cl.lookup_cluster_size(plain, 0.001, 0.05).size == 0
    with pytest.raises(InputDataError, match="not a 3dClustSim table"):
        cl.cluster_size_threshold(plain, 0.001, 0.05)
    with pytest.raises(MissingInputError):
        cl.cluster_size_threshold(tmp_path / "nothere.1D", 0.001, 0.05)


def test_cli_output_verb0(table, capsys):
    assert (
        cli_main(
            ["-verb", "0", "-infile", str(table), "-csim_pthr", "0.001", "-csim_alpha", "0.05"]
        )
        == 0
    )
    assert capsys.readouterr().out == "30\n"
    # -verb is read first wherever it is
    assert cli_main(["-infile", str(table), "-csim_pthr", "0.0011", "-verb", "0"]) == 0
    assert capsys.readouterr().out == "** uncorrected pthr = 0.0011 not in ClustSim table\n0\n"
    assert cli_main(["-verb", "0", "-infile", str(table), "-csim_pthr", "abc"]) == 64
    assert (
        capsys.readouterr().err
        == "** cannot convert 'abc' to <class 'float'> for option -csim_pthr\n"
    )


@pytest.mark.skipif(not REAL.is_dir(), reason="spec test data not available")
def test_real_table_and_verb1_block(capsys):
    real = REAL / "ClustSim.NN1_bisided.1D"
    assert cl.cluster_size_threshold(real, 0.001, 0.05) == 4  # cell 3.1, AFNI printed 4
    assert cl.cluster_size_threshold(real, 1e-5, 0.01) == 1
    assert cli_main(["-infile", str(real), "-csim_pthr", "0.001", "-csim_alpha", "0.05"]) == 0
    assert capsys.readouterr().out == (
        "\nClustSim attributes:\n"
        "    neighbors      : NN-1\n"
        "    sidedness      : bi-sided\n"
        "    blur est type  : ACF\n"
        "    blur params    : 0.742692, 2.93065, 10.6363\n"
        "    grid voxels    : 14x16x12\n"
        "    grid vox size  : 2.50x2.50x2.50 mm^3\n"
        "    mask           : mask.nii.gz\n"
        "    mask N voxels  : 890\n"
        "\n"
        "    pthr           : 0.001\n"
        "    alpha          : 0.05\n"
        "    min clust nvox : 4\n"
    )


@pytest.mark.skipif(not TOOL.is_dir(), reason="spec test data not available")
@pytest.mark.parametrize(
    ("name", "stdout", "rc"),
    [
        ("crlf.1D", "4\n", 0),
        ("notcs.1D", "0\n", 0),
        ("nomask.NN1_bisided.1D", "** csim obj, missing attribute mask\n0\n", 0),
        ("fw.NN1_bisided.1D", "** failed to convert 3dClustSim header to object\n0\n", 0),
        ("nonrect.1D", None, 65),
        ("missing.1D", "", 66),
    ],
)
def test_real_error_tables(capsys, name, stdout, rc):
    path = TOOL / name
    argv = ["-verb", "0", "-infile", str(path), "-csim_pthr", "0.001", "-csim_alpha", "0.05"]
    assert cli_main(argv) == rc
    captured = capsys.readouterr()
    if stdout is None:  # errors go to stderr (AFNI prints them on stdout)
        assert captured.err == f"** data is not rectangular in {path}\n"
    else:
        assert captured.out == stdout
