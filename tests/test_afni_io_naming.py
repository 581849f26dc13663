"""afni_io.naming: the one owner of AFNI file names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from afni_group.afni_io import naming
from afni_group.errors import InputDataError, MissingInputError


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a/x+tlrc", ("a/x", "tlrc")),
        ("x+orig.", ("x", "orig")),
        ("x+acpc.HEAD", ("x", "acpc")),
        ("x+tlrc.BRIK.gz", ("x", "tlrc")),
        ("x.nii.gz", None),
        ("x", None),
    ],
)
def test_afni_name_parts(name, parts):
    assert naming.afni_name_parts(name) == parts


def test_strip_view_output_head_and_display():
    assert naming.strip_view("d/r+orig.HEAD") == "d/r"
    assert naming.strip_view("d/r.nii.gz") == "d/r.nii.gz"
    assert naming.output_head("d/r+orig", "tlrc") == Path("d/r+tlrc.HEAD")
    assert naming.output_head("d/r.nii.gz", "tlrc") == Path("d/r.nii.gz")
    assert naming.display_prefix("/a/b/stats+tlrc.HEAD") == "stats"
    assert naming.display_prefix("/a/b/map.nii.gz") == "map.nii.gz"
    assert naming.display_prefix("plain") == "plain"


def test_header_name(tmp_path):
    assert naming.header_name("m+tlrc.BRIK.gz") == "./m+tlrc.HEAD"
    assert naming.header_name("d/m+tlrc.") == "d/m+tlrc.HEAD"
    nii = _touch(tmp_path / "m.nii.gz")
    assert naming.header_name(nii) == os.path.realpath(nii)


def test_resolve_and_complete_header(tmp_path):
    head = _touch(tmp_path / "s+tlrc.HEAD")
    assert naming.complete_header(tmp_path / "s+tlrc") is None  # no data file yet
    brik = _touch(tmp_path / "s+tlrc.BRIK.gz")
    assert naming.complete_header(tmp_path / "s+tlrc.") == head
    assert naming.resolve(str(tmp_path / "s")) == ("afni", head, brik, "tlrc")
    assert naming.find_brik(tmp_path / "s", "tlrc") == brik
    nii = _touch(tmp_path / "n.nii")
    assert naming.resolve(str(tmp_path / "n")) == ("nifti", nii, None, None)
    with pytest.raises(MissingInputError):
        naming.resolve(str(tmp_path / "absent+orig"))
    _touch(tmp_path / "notes.txt")
    with pytest.raises(InputDataError):
        naming.resolve(str(tmp_path / "notes.txt"))


def test_existing_dataset_file(tmp_path):
    assert not naming.dataset_exists(tmp_path / "o+orig")
    brik = _touch(tmp_path / "o+tlrc.BRIK")
    assert not naming.dataset_exists(tmp_path / "o+orig")  # the view given is checked
    assert naming.existing_dataset_file(tmp_path / "o+orig", any_view=True) == brik
    assert naming.dataset_exists(tmp_path / "o")  # no view: every view
    assert not naming.dataset_exists(tmp_path / "o.nii.gz")
