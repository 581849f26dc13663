"""Every ``afni-native`` program: the same exit codes, errors on stderr naming the dataset (issue 15).

64 usage, 65 bad input data, 66 missing input, 73 output cannot be written, 1 unexpected.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from afni_group.errors import EXIT_CANT_CREATE, EXIT_DATA, EXIT_FAILURE, EXIT_NO_INPUT, EXIT_USAGE
from afni_group.programs.cli import dispatch as native_cli


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Small datasets in the current folder: a b/t bucket, one with a NaN, masks, junk."""
    from afni_group import afni_io

    monkeypatch.chdir(tmp_path)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    data = np.random.default_rng(0).normal(size=(10, 10, 10, 2)).astype(np.float32)

    def write(name, values, labels, codes=None, params=None):
        dset = afni_io.AfniDataset(values, affine, labels, codes, params, space="MNI", view="tlrc")
        afni_io.write_dataset(dset, tmp_path / name)

    write("st.nii.gz", data, ["b", "t"], [0, 3], [(), (20.0,)])
    bad = data.copy()
    bad[1, 1, 1, 0] = np.nan
    write("nan.nii.gz", bad, ["b", "t"], [0, 3], [(), (20.0,)])
    write("m.nii.gz", np.ones((10, 10, 10, 1), np.uint8), ["m"])
    write("m9.nii.gz", np.ones((9, 10, 10, 1), np.uint8), ["m"])
    write("m0.nii.gz", np.zeros((10, 10, 10, 1), np.uint8), ["m"])
    (tmp_path / "junk.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    (tmp_path / "ragged.1D").write_text("0.001 1 2\n0.002 3\n")
    return tmp_path


MEMA = ["-prefix", "o.nii.gz", "-set", "a", "s1", "st.nii.gz[b]", "st.nii.gz[t]", "s2"]
CLUST = ["-NN", "1", "-bisided", "-3", "3"]
P2D = ["-pval", "0.001", "-bisided"]
TT = ["-prefix", "o.nii.gz", "-setA", "g", "s1", "st.nii.gz[b]", "s2", "st.nii.gz[t]"]

CASES = [
    # program, arguments, exit code, text the stderr line must contain
    ("3dMEMA", ["-prefix", "o.nii.gz", "-bogus"], EXIT_USAGE, "'-bogus'"),
    ("3dMEMA", [*MEMA, "nothere.nii.gz[b]", "st.nii.gz[t]"], EXIT_NO_INPUT, "nothere.nii.gz"),
    ("3dMEMA", [*MEMA, "nan.nii.gz[b]", "nan.nii.gz[t]"], EXIT_DATA, "'nan.nii.gz[b]'"),
    ("3dmask_tool", ["-prefix", "o.nii.gz"], EXIT_USAGE, "-input"),
    ("3dmask_tool", ["-prefix", "o.nii.gz", "-input", "nothere.nii.gz"], EXIT_NO_INPUT,
     "nothere.nii.gz"),
    ("3dmask_tool", ["-prefix", "o.nii.gz", "-input", "m.nii.gz", "m9.nii.gz"], EXIT_DATA,
     "m9.nii.gz"),
    ("3dClustSim", ["-mask", "m.nii.gz", "-acf", "0.7", "-3", "10", "-prefix", "cs"], EXIT_USAGE, "'b' value"),
    ("3dClustSim", ["-mask", "nothere.nii.gz", "-acf", "0.7", "3", "10", "-prefix", "cs"], EXIT_NO_INPUT,
     "nothere.nii.gz"),
    ("3dClustSim", ["-mask", "m0.nii.gz", "-acf", "0.7", "3", "10", "-prefix", "cs"], EXIT_DATA, "no nonzero"),
    ("1d_tool.py", ["-infile", "ragged.1D", "-csim_pthr", "abc"], EXIT_USAGE, "'abc'"),
    ("1d_tool.py", ["-infile", "nothere.1D", "-csim_pthr", "0.001"], EXIT_NO_INPUT,
     "nothere.1D"),
    ("1d_tool.py", ["-infile", "ragged.1D", "-csim_pthr", "0.001"], EXIT_DATA, "ragged.1D"),
    ("1d_tool.py", ["-infile", "m.nii.gz", "-csim_pthr", "0.001"], EXIT_DATA, "m.nii.gz"),
    ("p2dsetstat", [*P2D, "-bogus"], EXIT_USAGE, "'-bogus'"),
    ("p2dsetstat", [*P2D, "-inset", "st.nii.gz"], EXIT_USAGE, "'st.nii.gz'"),
    ("p2dsetstat", [*P2D, "-inset", "nothere.nii.gz[t]"], EXIT_NO_INPUT, "nothere.nii.gz"),
    ("p2dsetstat", [*P2D, "-inset", "st.nii.gz[b]"], EXIT_DATA,
     "'st.nii.gz[b]', sub-brick 'b'"),
    ("p2dsetstat", [*P2D, "-inset", "junk.nii.gz"], EXIT_DATA, "junk.nii.gz"),
    ("3dClusterize", ["-inset", "st.nii.gz", "-ithr", "t", *CLUST, "-bogus"], EXIT_USAGE,
     "'-bogus'"),
    ("3dClusterize", ["-inset", "st.nii.gz", "-ithr", "b", "-NN", "1", "-bisided", "p=0.01"],
     EXIT_USAGE, "st.nii.gz -ithr [0] 'b'"),
    ("3dClusterize", ["-inset", "nothere.nii.gz", "-ithr", "t", *CLUST], EXIT_NO_INPUT,
     "nothere.nii.gz"),
    ("3dClusterize", ["-inset", "st.nii.gz", "-ithr", "zz", *CLUST], EXIT_DATA, "st.nii.gz"),
    ("3dClusterize", ["-inset", "st.nii.gz", "-ithr", "t", *CLUST, "-mask", "m9.nii.gz"],
     EXIT_DATA, "m9.nii.gz"),
    ("3dttest++", [*TT, "-bogus"], EXIT_USAGE, "'-bogus'"),
    ("3dttest++", ["-setA", "g", "s1", "nothere.nii.gz", "s2", "st.nii.gz[b]"], EXIT_NO_INPUT,
     "nothere.nii.gz"),
    ("3dttest++", [*TT, "-mask", "m9.nii.gz"], EXIT_DATA, "m9.nii.gz"),
]  # fmt: skip


@pytest.mark.parametrize(("program", "args", "code", "text"), CASES)
def test_exit_codes_and_stderr(files, capsys, program, args, code, text):
    assert native_cli.main([program, *args]) == code
    captured = capsys.readouterr()
    assert captured.out == ""  # errors never go to stdout
    assert text in captured.err and "Traceback" not in captured.err


def test_every_program_is_covered():
    assert {case[0] for case in CASES} == set(native_cli.PROGRAMS)
    for program in native_cli.PROGRAMS:
        codes = {code for name, _, code, _ in CASES if name == program}
        assert codes == {EXIT_USAGE, EXIT_NO_INPUT, EXIT_DATA}, program


def test_disk_full_and_unexpected_errors(files, capsys, monkeypatch):
    from afni_group.programs.mask_tool import files as mask_tool

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "o.nii.gz")

    monkeypatch.setattr(mask_tool, "make_group_mask", full)
    argv = ["3dmask_tool", "-prefix", "o.nii.gz", "-input", "m.nii.gz", "-frac", "1"]
    assert native_cli.main(argv) == EXIT_CANT_CREATE
    assert "o.nii.gz: no space left on device" in capsys.readouterr().err

    def bug(*_a, **_k):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(mask_tool, "make_group_mask", bug)
    monkeypatch.delenv("AFNI_GROUP_DEBUG", raising=False)
    assert native_cli.main(argv) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "unexpected error: ZeroDivisionError: oops" in err and "Traceback" not in err
