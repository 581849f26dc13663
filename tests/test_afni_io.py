"""Tests for afni_group.afni_io (spec 01-inputs.md §2-§8) against real AFNI_26.2.03 files."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from afni_group import afni_io
from afni_group.afni_io import (
    STAT_CHISQ,
    STAT_FTEST,
    STAT_NONE,
    STAT_TTEST,
    AfniDataset,
    afni_geometry,
    format_afni_extension,
    ijk_to_dicom,
    orientation_string,
    parse_afni_extension,
    parse_head_text,
    parse_selector,
    read_dataset,
    same_grid,
    split_selector,
    stat_decode,
    stat_encode,
    write_dataset,
)
from afni_group.errors import InputDataError, MissingInputError, OutputError

DATA = Path(__file__).parent / "data" / "afni_io"
NIB_DATA = Path(nib.__file__).parent / "tests" / "data"
STATS = DATA / "stats.sub-01_REML+tlrc.HEAD"
MASK = DATA / "mask_epi_anat.sub-01+tlrc.HEAD"
MEMA_LABELS = [
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
RAI_AFFINE = np.array(
    [[-2.5, 0, 0, 16.25], [0, -2.5, 0, 18.75], [0, 0, 2.5, -13.75], [0, 0, 0, 1.0]]
)


def raw_bytes(path: Path) -> bytes:
    return gzip.open(path).read() if str(path).endswith(".gz") else path.read_bytes()


def ext_text(path: Path) -> str:
    b = raw_bytes(path)
    return b[360 : b.index(b"\0", 360)].decode()


def header(path: Path) -> np.void:
    return np.frombuffer(raw_bytes(path)[:348], dtype=nib.nifti1.header_dtype)[0]


def elements(text: str) -> list[tuple[str, str, str, str]]:
    """(atr_name, ni_type, ni_dimen, body) of every AFNI_atr element, in order."""
    return [
        (m.group(3), m.group(1), m.group(2), m.group(4))
        for m in re.finditer(
            r'<AFNI_atr\n  ni_type="(\w+)"\n  ni_dimen="(\d+)"\n  atr_name="(\w+)" >\n(.*?)'
            r"</AFNI_atr>\n\n",
            text,
            re.S,
        )
    ]


def history_of(text: str) -> str:
    attrs, _ = parse_afni_extension(text)
    return attrs["HISTORY_NOTE"].rstrip("\0")


def rewrite_like(src: Path, out: Path, style: str, **kw) -> Path:
    """Read an AFNI-written NIfTI and write it back with its own id, date and history."""
    text = ext_text(src)
    d = read_dataset(src)
    idc = re.search(r'self_idcode="([^"]+)"', text).group(1)
    date = re.search(r'IDCODE_DATE" >\n "([^"]+)"', text).group(1)
    d.history = history_of(text)
    return write_dataset(d, out, idcode=idc, date=date, style=style, **kw)


# ------------------------------------------------------------------------------------------
# reading real AFNI files
# ------------------------------------------------------------------------------------------


def test_read_reml_stats_head_brik_gz():
    d = read_dataset(STATS)
    assert d.shape == (14, 16, 12) and d.nvals == 7 and d.data.shape == (14, 16, 12, 7)
    assert d.data.dtype == np.float32
    assert d.labels == [
        "Full_Fstat",
        "left_vs_right_chx#0_Coef",
        "left_vs_right_chx#0_Tstat",
        "left_vs_right_chx_Fstat",
        "left_vs_right_press#0_Coef",
        "left_vs_right_press#0_Tstat",
        "left_vs_right_press_Fstat",
    ]
    assert d.stat_codes == [STAT_FTEST, 0, STAT_TTEST, STAT_FTEST, 0, STAT_TTEST, STAT_FTEST]
    assert d.stat_params[0] == (4.0, 180.0)
    assert d.stat_params[2] == (180.0,)
    assert d.stat_params[6] == (1.0, 180.0)
    assert d.space == "MNI" and d.view == "tlrc"
    np.testing.assert_array_equal(d.affine, RAI_AFFINE)
    assert d.voxel_sizes == (2.5, 2.5, 2.5)
    img = nib.load(str(STATS))
    np.testing.assert_allclose(img.affine, d.affine)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), d.data)
    assert "3drefit" in d.history


@pytest.mark.parametrize(
    "name",
    [
        "stats.sub-01_REML+tlrc",
        "stats.sub-01_REML+tlrc.",
        "stats.sub-01_REML+tlrc.HEAD",
        "stats.sub-01_REML+tlrc.BRIK",
        "stats.sub-01_REML+tlrc.BRIK.gz",
        "stats.sub-01_REML",
    ],
)
def test_afni_name_forms(name):
    d = read_dataset(DATA / name)
    assert d.nvals == 7 and d.path == STATS


def test_read_mask_byte():
    d = read_dataset(MASK)
    assert d.data.dtype == np.uint8 and d.nvals == 1 and d.labels == ["#0"]
    assert set(np.unique(d.data)) == {0, 1}
    assert d.stat_codes == [0]
    np.testing.assert_array_equal(
        np.asanyarray(nib.load(str(MASK)).dataobj).reshape(d.data.shape), d.data
    )


def test_read_short_scaled_head():
    d = read_dataset(DATA / "exs+tlrc.HEAD")
    assert d.data.dtype == np.float32 and d.labels == ["ex:t"]
    assert d.stat_codes == [STAT_TTEST] and d.stat_params == [(10.0,)]
    img = nib.load(str(DATA / "exs+tlrc.HEAD"))
    np.testing.assert_allclose(np.asanyarray(img.dataobj).reshape(d.data.shape), d.data, rtol=1e-6)
    np.testing.assert_allclose(img.affine, d.affine)
    assert orientation_string(d.affine) == "LPI"


def test_read_mema_nifti_extension():
    p = DATA / "mema_results.nii.gz"
    d = read_dataset(p)
    assert d.data.shape == (14, 16, 12, 9)  # 5-D bucket -> 4-D
    assert d.labels == MEMA_LABELS
    assert d.stat_codes == [0, 3, 0, 3, 0, 3, 0, 0, STAT_CHISQ]
    assert d.stat_params[1] == (10.0,) and d.stat_params[8] == (10.0,)
    assert d.space == "MNI" and d.view == "tlrc"
    img = nib.load(str(p))
    np.testing.assert_allclose(img.affine, d.affine)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj).reshape(d.data.shape), d.data)
    assert d.attributes["IDCODE_STRING"].startswith("XYZ_")
    t = read_dataset(f"{p}[chx:t]")
    assert t.labels == ["chx:t"] and t.stat_codes == [3] and t.nvals == 1
    np.testing.assert_array_equal(t.brick(0), d.brick(1))


def test_read_nibabel_afni_examples():
    for name in ("example4d+orig.HEAD", "scaled+tlrc.HEAD"):
        d = read_dataset(NIB_DATA / name)
        img = nib.load(str(NIB_DATA / name))
        np.testing.assert_allclose(img.affine, d.affine)
        np.testing.assert_allclose(
            np.asanyarray(img.dataobj).reshape(d.data.shape), d.data, rtol=1e-6
        )
    e = read_dataset(NIB_DATA / "example4d+orig")
    assert e.data.dtype == np.int16 and e.nvals == 3 and e.labels == ["#0", "#1", "#2"]
    assert e.attributes["TAXIS_NUMS"][:3] == [3, 25, 77002]
    s = read_dataset(NIB_DATA / "scaled+tlrc.BRIK")
    assert s.data.dtype == np.float32 and s.space == "TLRC" and s.view == "tlrc"


def test_read_p2dsetstat_stat_codes_and_statsym_format():
    st = read_dataset(DATA / "st+orig")
    assert st.nvals == 16 and all(c == STAT_TTEST for c in st.stat_codes)
    assert [p[0] for p in st.stat_params] == [
        1,
        2,
        3,
        4,
        5,
        7,
        10,
        14,
        20,
        22,
        29,
        30,
        50,
        100,
        180,
        1000,
    ]
    st2 = read_dataset(DATA / "st2+orig")
    assert st2.labels == ["z", "f1_20", "chi10", "corr", "f_frac", "none"]
    assert st2.stat_codes == [5, 4, 6, 2, 4, 0]
    assert st2.stat_params[3] == (30.0, 2.0, 1.0)
    assert st2.stat_params[4] == (3.5, 21.5)
    # our BRICK_STATSYM text equals AFNI's for every file (NI_stat_encode number format)
    for name in ("st+orig", "st2+orig", "st4+orig", "st40+orig"):
        d = read_dataset(DATA / name)
        sym = ";".join(stat_encode(c, p) for c, p in zip(d.stat_codes, d.stat_params, strict=True))
        assert sym == d.attributes["BRICK_STATSYM"].rstrip("\0"), name


def test_statsym_preferred_over_stataux_in_head(tmp_path):
    text = (
        MASK.read_bytes().decode()
        + "\ntype  = float-attribute\nname  = BRICK_STATAUX\ncount = 4\n 0 3 1 99\n"
        + "\ntype = string-attribute\nname = BRICK_STATSYM\ncount = 10\n'Ttest(12)~\n"
    )
    (tmp_path / "m+tlrc.HEAD").write_text(text)
    (tmp_path / "m+tlrc.BRIK").write_bytes((DATA / "mask_epi_anat.sub-01+tlrc.BRIK").read_bytes())
    d = read_dataset(tmp_path / "m+tlrc")
    assert d.stat_codes == [3] and d.stat_params == [(12.0,)]


def test_nifti_extension_minimal_variants():
    a = read_dataset(DATA / "a_labs_aux.nii")
    assert a.labels == ["ex:b", "ex:t"] and a.stat_codes == [0, 3] and a.stat_params[1] == (10,)
    # AFNI ignores BRICK_STATSYM inside NIfTI (spec 01 §6.2: p2dsetstat fails on b_labs_sym)
    b = read_dataset(DATA / "b_labs_sym.nii")
    assert b.labels == ["ex:b", "ex:t"] and b.stat_codes == [0, 0]
    c = read_dataset(DATA / "c_labs.nii")
    assert c.labels == ["ex:b", "ex:t"] and c.stat_codes == [0, 0]
    d = read_dataset(DATA / "d_aux_only.nii")
    assert d.labels == ["#0", "#1"] and d.stat_codes == [0, 3]
    raw = read_dataset(DATA / "exraw.nii")  # plain nibabel 4-D file, no extension
    assert raw.labels == ["#0", "#1"] and raw.stat_codes == [0, 0] and raw.nvals == 2


def test_nifti_intent_without_extension(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_intent("t test", (7.0,))
    nib.save(img, tmp_path / "t.nii")
    d = read_dataset(tmp_path / "t.nii")
    assert d.stat_codes == [3] and d.stat_params == [(7.0,)] and d.data.shape == (2, 3, 4, 1)
    # a 5-D bucket with dim[5] > 1 does not get the intent
    img5 = nib.Nifti1Image(np.zeros((2, 2, 2, 1, 3), np.float32), np.eye(4))
    img5.header.set_intent("t test", (7.0,))
    nib.save(img5, tmp_path / "t5.nii")
    d5 = read_dataset(tmp_path / "t5.nii")
    assert d5.data.shape == (2, 2, 2, 3) and d5.stat_codes == [0, 0, 0]


def test_single_brick_stat_mask_tool_output():
    d = read_dataset(DATA / "o_m1lab.nii.gz")
    assert d.labels == ["mymask"] and d.stat_codes == [3] and d.stat_params == [(10.0,)]
    assert d.data.dtype == np.uint8


def test_oblique_nifti_geometry(tmp_path):
    d = read_dataset(DATA / "obl.nii.gz")
    img = nib.load(str(DATA / "obl.nii.gz"))
    np.testing.assert_allclose(d.affine, img.affine)
    orient, origin, delta = afni_geometry(d.affine)
    assert orient == [1, 2, 4] and origin == pytest.approx([4, 3, -2])
    assert delta == pytest.approx([-2, -2, 2])
    out = write_dataset(d, tmp_path / "o.nii.gz", idcode="XYZ_x", date="d")
    real = dict((n, b) for n, _, _, b in elements(ext_text(DATA / "obl.nii.gz")))
    mine = dict((n, b) for n, _, _, b in elements(ext_text(out)))
    for key in ("ORIENT_SPECIFIC", "ORIGIN", "DELTA", "IJK_TO_DICOM", "IJK_TO_DICOM_REAL"):
        assert mine[key] == real[key], key
    h, r = header(out), header(DATA / "obl.nii.gz")
    for key in ("srow_x", "srow_y", "srow_z", "quatern_b", "quatern_c", "quatern_d"):
        np.testing.assert_allclose(h[key], r[key], atol=2e-7)


# ------------------------------------------------------------------------------------------
# writing: the NIfTI AFNI extension and header, compared with AFNI's own files
# ------------------------------------------------------------------------------------------


def test_clusterize_map_extension_and_file_match_afni_exactly(tmp_path):
    src = DATA / "map.nii.gz"
    out = rewrite_like(
        src, tmp_path / "map.nii.gz", "c", attributes={"INT_CMAP": 1}, omit=("BRICK_KEYWORDS",)
    )
    text = ext_text(out)
    assert text == (DATA / "map.nii.gz.afni_ext.xml").read_text()
    assert raw_bytes(out) == raw_bytes(src)  # header, extension, padding and data: byte-exact
    img = nib.load(str(out))
    assert img.shape == (5, 4, 3) and img.get_data_dtype() == np.int16


def test_clusterize_map_elements_without_history(tmp_path):
    """Element-for-element equality with the real dump, id/date/history not taken from it."""
    d = read_dataset(DATA / "map.nii.gz")
    d.history = ""
    out = write_dataset(
        d,
        tmp_path / "m.nii",
        history="3dClusterize ...",
        attributes={"INT_CMAP": 1},
        omit=("BRICK_KEYWORDS",),
    )
    real = elements((DATA / "map.nii.gz.afni_ext.xml").read_text())
    mine = elements(ext_text(out))
    assert [e[:3] for e in mine] == [e[:3] for e in real]
    skip = {"HISTORY_NOTE", "IDCODE_STRING", "IDCODE_DATE"}
    assert [e for e in mine if e[0] not in skip] == [e for e in real if e[0] not in skip]


@pytest.mark.parametrize(
    ("name", "style", "kw"),
    [
        (
            "clust_bisided_map_chx.nii.gz",
            "c",
            {"attributes": {"INT_CMAP": 1}, "omit": ("BRICK_KEYWORDS",)},
        ),
        ("clust_bisided_EE_chx.nii.gz", "c", {}),
        (
            "mask.nii.gz",
            "c",
            {"attributes": {"SCENE_DATA": [2, 2, 0, -999, -999, -999, -999, -999]}},
        ),
        (
            "o_m1lab.nii.gz",
            "c",
            {
                "attributes": {
                    "TYPESTRING": "3DIM_HEAD_FUNC",
                    "SCENE_DATA": [2, 11, 1, -999, -999, -999, -999, -999],
                }
            },
        ),
        ("mema_results.nii.gz", "mema", {}),
    ],
)
def test_pipeline_outputs_element_for_element(tmp_path, name, style, kw):
    src = DATA / name
    out = rewrite_like(src, tmp_path / name, style, **kw)
    skip = {"HISTORY_NOTE", "IDCODE_STRING", "IDCODE_DATE"}
    real = [
        e
        for e in elements(ext_text(src))
        if e[0] not in skip and not e[0].startswith(("FDRCURVE", "MDFCURVE"))
    ]
    mine = [e for e in elements(ext_text(out)) if e[0] not in skip]
    assert mine == real
    assert [e[0] for e in elements(ext_text(out))] == [
        e[0] for e in elements(ext_text(src)) if not e[0].startswith(("FDRCURVE", "MDFCURVE"))
    ]
    assert re.search(r'NIfTI_nums="[^"]+"', ext_text(out)).group(0) == re.search(
        r'NIfTI_nums="[^"]+"', ext_text(src)
    ).group(0)
    h, r = header(out), header(src)
    for key in nib.nifti1.header_dtype.names:
        if key in ("vox_offset", "scl_slope"):
            continue  # see tests/data/afni_io/README.md
        np.testing.assert_array_equal(h[key], r[key], err_msg=key)
    assert float(h["scl_slope"]) == 0.0 and float(h["scl_inter"]) == 0.0
    # signed zeros of srow (AFNI negates rows) and the quaternion are byte-identical
    assert raw_bytes(out)[256:348] == raw_bytes(src)[256:348]
    esize = struct.unpack("<i", raw_bytes(out)[352:356])[0]
    assert float(h["vox_offset"]) == 352 + esize
    img = nib.load(str(out))
    np.testing.assert_array_equal(
        np.asanyarray(img.dataobj), np.asanyarray(nib.load(str(src)).dataobj)
    )
    np.testing.assert_allclose(img.affine, nib.load(str(src)).affine)


def test_header_fields_spec_table(tmp_path):
    d = read_dataset(DATA / "mema_results.nii.gz")
    out = write_dataset(d, tmp_path / "mema_results.nii.gz", style="mema")
    h = header(out)
    assert list(h["dim"]) == [5, 14, 16, 12, 1, 9, 1, 1]
    assert (int(h["datatype"]), int(h["bitpix"])) == (16, 32)
    assert int(h["intent_code"]) == 0 and list(h["pixdim"]) == [1, 2.5, 2.5, 2.5, 0, 0, 0, 0]
    assert int(h["xyzt_units"]) == 2 and (int(h["qform_code"]), int(h["sform_code"])) == (4, 4)
    assert (float(h["quatern_b"]), float(h["quatern_c"]), float(h["quatern_d"])) == (0, 0, 1)
    assert (float(h["qoffset_x"]), float(h["qoffset_y"]), float(h["qoffset_z"])) == (
        16.25,
        18.75,
        -13.75,
    )
    assert [str(x) for x in h["srow_x"]] == ["-2.5", "-0.0", "-0.0", "16.25"]
    assert [str(x) for x in h["srow_y"]] == ["-0.0", "-2.5", "-0.0", "18.75"]
    assert [str(x) for x in h["srow_z"]] == ["0.0", "0.0", "2.5", "-13.75"]
    assert h["descrip"] == b"" and h["aux_file"] == b"" and h["intent_name"] == b""
    assert raw_bytes(out)[148:228] == b"\0" * 80
    assert h["regular"] == b"r" and h["magic"] == b"n+1"
    raw = raw_bytes(out)
    assert raw[348:352] == b"\x01\0\0\0"
    esize, ecode = struct.unpack("<ii", raw[352:360])
    text = ext_text(out)
    assert ecode == 4 and esize % 16 == 0 and esize == (8 + len(text) + 1 + 15) // 16 * 16
    assert raw[360 + len(text) : 352 + esize] == b"\0" * (esize - 8 - len(text))
    assert text.startswith("<?xml version='1.0' ?>\n<AFNI_attributes\n  self_idcode=\"")
    assert text.endswith("</AFNI_attributes>\n")
    assert 'NIfTI_nums="14,16,12,1,9,16"' in text
    # single stat brick -> intent
    t = write_dataset(d.select([1]), tmp_path / "t.nii")
    ht = header(t)
    assert list(ht["dim"]) == [3, 14, 16, 12, 1, 1, 1, 1]
    assert int(ht["intent_code"]) == 3 and float(ht["intent_p1"]) == 10.0
    assert 'NIfTI_nums="14,16,12,1,1,16"' in ext_text(t)
    b = write_dataset(d.select([0]), tmp_path / "b.nii")
    assert int(header(b)["intent_code"]) == 0
    # an anatomical-type dataset gets no intent (AFNI: only ISFUNC datasets)
    a = write_dataset(
        d.select([1]), tmp_path / "a.nii", attributes={"TYPESTRING": "3DIM_HEAD_ANAT"}
    )
    assert int(header(a)["intent_code"]) == 0
    assert read_dataset(a).stat_codes == [3]  # the extension still carries BRICK_STATAUX


def test_view_follows_space():
    assert AfniDataset(np.zeros((2, 2, 2)), np.eye(4), space="MNI").view == "tlrc"
    assert AfniDataset(np.zeros((2, 2, 2)), np.eye(4)).view == "orig"
    assert AfniDataset(np.zeros((2, 2, 2)), np.eye(4), space="acpc").view == "acpc"
    d = AfniDataset(np.zeros((2, 2, 2)), np.eye(4), space="TLRC", view="orig")
    assert d.view == "orig" and d.data.shape == (2, 2, 2, 1) and d.labels == ["#0"]


def test_space_codes(tmp_path):
    base = read_dataset(MASK)
    for space, code in (("ORIG", 1), ("ACPC", 1), ("TLRC", 3), ("MNI", 4), ("MNI_ANAT", 5)):
        base.space = space
        out = write_dataset(base, tmp_path / f"{space}.nii")
        h = header(out)
        assert (int(h["qform_code"]), int(h["sform_code"])) == (code, code)
        assert f'atr_name="TEMPLATE_SPACE" >\n "{space}"' in ext_text(out)
        assert read_dataset(out).space == space


def test_extension_string_pieces_and_escaping():
    hist = "".join(chr(ord("a") + i % 26) for i in range(2945 - 12)) + "<'\"&>\n\r\t end"
    hist = hist[:2945]
    text = format_afni_extension([("HISTORY_NOTE", hist)], idcode="AFN_x", nifti_nums=[1] * 6)
    ((name, ntype, dimen, body),) = elements(text)
    assert (name, ntype, dimen) == ("HISTORY_NOTE", "String", "3")
    pieces = re.findall(r' "([^"]*)"\n', body)
    unesc = [afni_io._niml_unescape(p) for p in pieces]
    assert [len(p) for p in unesc] == [1000, 1000, 945]
    assert "".join(unesc) == hist
    assert "&lt;&apos;&quot;&amp;&gt;&#x0a;&#x0d;" in pieces[2]
    attrs, root = parse_afni_extension(text.encode() + b"\0\0")
    assert attrs["HISTORY_NOTE"] == hist + "\0" and root["self_idcode"] == "AFN_x"


def test_extension_string_rules():
    t = format_afni_extension(
        [("BRICK_KEYWORDS", "\0" * 9), ("K1", "\0"), ("BRICK_LABS", "a\0b~c\0")],
        idcode="i",
        nifti_nums=[1, 1, 1, 1, 1, 2],
    )
    bodies = {n: b for n, _, _, b in elements(t)}
    assert bodies["BRICK_KEYWORDS"] == ' "~~~~~~~~"\n'  # 9 NULs -> 8 '~'
    assert bodies["K1"] == ' "~"\n'
    assert bodies["BRICK_LABS"] == ' "a~b*c"\n'  # '~' inside a string can not survive
    f = format_afni_extension(
        [("ORIGIN", afni_io._Float([-119.53125, 0.9375, 16]))], idcode="i", nifti_nums=[1] * 6
    )
    assert " -119.5312\n 0.9375\n 16\n" in f


# ------------------------------------------------------------------------------------------
# HEAD/BRIK writing
# ------------------------------------------------------------------------------------------


def test_head_brik_byte_exact(tmp_path):
    d = read_dataset(MASK)
    a = d.attributes
    out = write_dataset(
        d,
        tmp_path / "mk+tlrc",
        idcode=a["IDCODE_STRING"].rstrip("\0"),
        date=a["IDCODE_DATE"].rstrip("\0"),
        attributes={"SCENE_DATA": a["SCENE_DATA"]},
        omit=("BRICK_LABS", "BRICK_KEYWORDS"),
    )
    assert out == tmp_path / "mk+tlrc.HEAD"
    assert out.read_bytes() == MASK.read_bytes()
    assert (tmp_path / "mk+tlrc.BRIK").read_bytes() == MASK.with_suffix(".BRIK").read_bytes()


def test_head_text_format():
    text = afni_io.format_head_text(
        [
            ("BRICK_LABS", "chx:b\0chx:t\0"),
            ("ORIGIN", afni_io._Float([-16.25, -18.75, -13.75])),
            ("DATASET_RANK", afni_io._Int([3, 9, 0, 0, 0, 0, 0, 0])),
        ]
    ).decode()
    assert text == (
        "\ntype = string-attribute\nname = BRICK_LABS\ncount = 12\n'chx:b~chx:t~\n"
        "\ntype  = float-attribute\nname  = ORIGIN\ncount = 3\n"
        "         -16.25         -18.75         -13.75\n"
        "\ntype = integer-attribute\nname = DATASET_RANK\ncount = 8\n 3 9 0 0 0\n 0 0 0\n"
    )
    back = parse_head_text(text)
    assert back == {
        "BRICK_LABS": "chx:b\0chx:t\0",
        "ORIGIN": [-16.25, -18.75, -13.75],
        "DATASET_RANK": [3, 9, 0, 0, 0, 0, 0, 0],
    }


def test_head_parse_tolerant():
    text = (
        b"type=integer-attribute name   =DATASET_RANK\n count= 2\n3\n 4\n\n"
        b"  type = string-attribute\nname = BRICK_LABS\ncount = 999\n   'a b~c~\n\n"
        b"type = float-attribute\nname = X\ncount = 3\n1e-05 nan -999999\n"
        b"type = float-attribute\nname = Z\ncount = 0\n"
        b"type = float-attribute\nname = BAD\ncount = 2\n 1 oops\n"
        b"type = float-attribute\nname = AFTER\ncount = 1\n 1\n"
    )
    a = parse_head_text(text)
    assert a["DATASET_RANK"] == [3, 4]
    assert a["BRICK_LABS"] == "a b\0c\0\0"  # count larger than the text: stops at end of line
    assert a["X"][0] == 1e-05 and np.isnan(a["X"][1]) and a["X"][2] == -999999
    assert "Z" not in a and "BAD" not in a and "AFTER" not in a  # a failure stops reading


def test_round_trip_head_nifti_head(tmp_path):
    d = read_dataset(STATS)
    n = write_dataset(d, tmp_path / "s.nii.gz", history="step 1")
    d2 = read_dataset(n)
    h = write_dataset(d2, tmp_path / "s2+tlrc.HEAD")
    d3 = read_dataset(h)
    for x in (d2, d3):
        np.testing.assert_array_equal(x.data, d.data)
        np.testing.assert_array_equal(x.affine, d.affine)
        assert x.labels == d.labels
        assert x.stat_codes == d.stat_codes and x.stat_params == d.stat_params
        assert x.space == "MNI" and x.view == "tlrc"
        assert same_grid(x, d)
    assert d3.history.endswith("\\nstep 1") and "3drefit" in d3.history
    img = nib.load(str(h))  # nibabel reads our HEAD/BRIK
    np.testing.assert_allclose(img.affine, d.affine)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), d.data)
    assert img.header.get_volume_labels() == d.labels
    # also .nii (uncompressed) and a plain prefix
    p = write_dataset(d3, tmp_path / "plain")
    assert p == tmp_path / "plain+tlrc.HEAD"
    np.testing.assert_array_equal(
        read_dataset(tmp_path / "s.nii.gz").data,
        nib.load(str(write_dataset(d, tmp_path / "u.nii"))).get_fdata().reshape(d.data.shape),
    )


def test_round_trip_dtypes_and_orientations(tmp_path):
    rng = np.random.default_rng(0)
    lpi = np.array([[2.0, 0, 0, -4], [0, 2, 0, -3], [0, 0, 2, -2], [0, 0, 0, 1]])
    for dtype in (np.uint8, np.int16, np.int32, np.float32):
        data = (rng.random((5, 4, 3, 2)) * 100).astype(dtype)
        for aff in (RAI_AFFINE, lpi):
            d = AfniDataset(
                data,
                aff,
                labels=["a", "b"],
                stat_codes=[0, 4],
                stat_params=[(), (3.5, 21.5)],
                space="TLRC",
                view="tlrc",
            )
            for name in ("x.nii", "x+tlrc.HEAD"):
                out = write_dataset(d, tmp_path / name)
                r = read_dataset(out)
                assert r.data.dtype == np.dtype(dtype)
                np.testing.assert_array_equal(r.data, data)
                np.testing.assert_allclose(r.affine, aff)
                assert r.labels == ["a", "b"] and r.stat_params[1] == (3.5, 21.5)
                if name.endswith(".HEAD") and dtype == np.int32:
                    continue  # nibabel's AFNI reader has no BRICK_TYPES 2 (int)
                img = nib.load(str(out))
                np.testing.assert_allclose(img.affine, aff)
                np.testing.assert_array_equal(np.asanyarray(img.dataobj).reshape(data.shape), data)
    b = AfniDataset(np.ones((2, 2, 2), bool), np.eye(4))
    assert read_dataset(write_dataset(b, tmp_path / "b.nii")).data.dtype == np.uint8
    f = AfniDataset(np.ones((2, 2, 2)), np.eye(4))  # float64 is written as float32
    assert read_dataset(write_dataset(f, tmp_path / "f.nii")).data.dtype == np.float32


def test_time_series_round_trip(tmp_path):
    e = read_dataset(NIB_DATA / "example4d+orig")
    n = write_dataset(e, tmp_path / "e.nii.gz")
    h = header(n)
    assert list(h["dim"][:6]) == [4, 33, 41, 25, 3, 1] and float(h["pixdim"][4]) == 3.0
    assert int(h["xyzt_units"]) == 10
    back = read_dataset(n)
    assert back.attributes["TAXIS_NUMS"][0] == 3 and back.attributes["TAXIS_FLOATS"][1] == 3.0
    np.testing.assert_array_equal(back.data, e.data)
    assert nib.load(str(n)).shape == (33, 41, 25, 3)
    bucket = write_dataset(e, tmp_path / "b.nii", time_axis=False)
    assert list(header(bucket)["dim"][:6]) == [5, 33, 41, 25, 1, 3]


def test_mema_style_order_and_fields(tmp_path):
    d = read_dataset(DATA / "mema_results.nii.gz")
    out = write_dataset(d, tmp_path / "m.nii.gz", style="mema", history="3dMEMA ...")
    names = [e[0] for e in elements(ext_text(out))]
    assert names == [
        "IDCODE_STRING",
        "ORIGIN",
        "DELTA",
        "ORIENT_SPECIFIC",
        "DATASET_DIMENSIONS",
        "DATASET_RANK",
        "TYPESTRING",
        "SCENE_DATA",
        "IJK_TO_DICOM_REAL",
        "BRICK_LABS",
        "TEMPLATE_SPACE",
        "BRICK_TYPES",
        "BRICK_STATSYM",
        "HISTORY_NOTE",
        "IDCODE_DATE",
        "LABEL_1",
        "LABEL_2",
        "DATASET_NAME",
        "IJK_TO_DICOM",
        "BRICK_STATS",
        "BRICK_FLOAT_FACS",
        "BRICK_KEYWORDS",
        "BRICK_STATAUX",
        "INT_CMAP",
    ]
    text = ext_text(out)
    assert '"none;Ttest(10);none;Ttest(10);none;Ttest(10);none;none;Chisq(10)"' in text
    assert '"3DIM_GEN_FUNC"' in text and '"Viggo!"' in text
    h = write_dataset(d, tmp_path / "m+tlrc", style="mema")
    assert h.read_text().rstrip().endswith("'LSB_FIRST~")


def test_deterministic_output(tmp_path, monkeypatch):
    d = read_dataset(MASK)
    monkeypatch.setenv("AFNI_GROUP_DETERMINISTIC", "1")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    (tmp_path / "a").mkdir()
    a = write_dataset(d, tmp_path / "a" / "m.nii.gz", history="x")
    b = write_dataset(d, tmp_path / "m.nii.gz", history="x")
    assert a.read_bytes() == b.read_bytes()
    assert "Thu Jan  1 00:00:00 1970" in ext_text(a)
    monkeypatch.delenv("AFNI_GROUP_DETERMINISTIC")
    c = write_dataset(d, tmp_path / "c.nii", idcode="AFN_fixed", date="Mon Nov 23 19:18:49 2026")
    e = write_dataset(d, tmp_path / "e.nii", idcode="AFN_fixed", date="Mon Nov 23 19:18:49 2026")
    assert c.read_bytes() == e.read_bytes()
    r1 = ext_text(write_dataset(d, tmp_path / "r1.nii"))
    r2 = ext_text(write_dataset(d, tmp_path / "r2.nii"))
    id1 = re.search(r'self_idcode="([^"]+)"', r1).group(1)
    id2 = re.search(r'self_idcode="([^"]+)"', r2).group(1)
    assert id1 != id2 and re.fullmatch(r"AFN_[A-Za-z0-9_-]{22}", id1)


def test_atomic_write(tmp_path, monkeypatch):
    d = read_dataset(MASK)
    target = tmp_path / "m.nii.gz"
    target.write_bytes(b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(afni_io.os, "replace", boom)
    with pytest.raises(OutputError, match="disk full"):
        write_dataset(d, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nii.gz"]  # no temp file left
    monkeypatch.undo()
    write_dataset(d, target)
    assert read_dataset(target).nvals == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nii.gz"]
    with pytest.raises(OutputError, match="does not exist"):
        write_dataset(d, tmp_path / "nope" / "x.nii")


def test_extra_attributes(tmp_path):
    d = read_dataset(MASK)
    out = write_dataset(
        d,
        tmp_path / "x.nii",
        attributes={"INT_CMAP": 1, "MY_NOTE": "hello", "LABEL_1": None},
        omit=["BRICK_KEYWORDS"],
    )
    names = [e[0] for e in elements(ext_text(out))]
    assert "BRICK_KEYWORDS" not in names and "LABEL_1" not in names
    assert names[-2:] == ["INT_CMAP", "MY_NOTE"]
    attrs, _ = parse_afni_extension(ext_text(out))
    assert attrs["INT_CMAP"] == [1] and attrs["MY_NOTE"] == "hello\0"


# ------------------------------------------------------------------------------------------
# selectors
# ------------------------------------------------------------------------------------------

LABS = [
    "Full_Fstat",
    "left_vs_right_chx#0_Coef",
    "left_vs_right_chx#0_Tstat",
    "chx",
    "chx:b",
    "my label",
    "a",
    "ab",
]


@pytest.mark.parametrize(
    ("sel", "expected"),
    [
        ("[3]", [3]),
        ("3", [3]),
        ("[1,3,3]", [1, 3, 3]),
        ("[1..3]", [1, 2, 3]),
        ("[1-3]", [1, 2, 3]),
        ("[1:3]", [1, 2, 3]),
        ("[0..7(3)]", [0, 3, 6]),
        ("[7..4]", [7, 6, 5, 4]),
        ("[7..0(3)]", [7, 4, 1]),
        ("[$]", [7]),
        ("[5..$]", [5, 6, 7]),
        ("[ 1 , 2 ]", [1, 2]),
        ("[left_vs_right_chx#0_Coef]", [1]),
        ("[left_vs_right_chx#0_Tstat,0]", [2, 0]),
        ("[chx:b]", [4]),
        ("[chx]", [3]),
        ("[chx..chx:b]", [3, 4]),
        ("[my_label]", [5]),
        ("[my label]", [5]),
        ("[ab]", [7]),
        ("[a,ab,$]", [6, 7, 7]),
        ("", list(range(8))),
        (None, list(range(8))),
    ],
)
def test_parse_selector(sel, expected):
    assert parse_selector(sel, LABS) == expected


def test_selector_errors():
    with pytest.raises(InputDataError) as err:
        parse_selector("[nolabel]", LABS, source="mema_results.nii.gz")
    msg = str(err.value)
    assert "nolabel" in msg and "mema_results.nii.gz" in msg and "chx:b" in msg
    with pytest.raises(InputDataError, match=r"out of range.*8 sub-brick"):
        parse_selector("[8]", LABS)
    with pytest.raises(InputDataError, match="out of range"):
        parse_selector("[2..9]", LABS)
    with pytest.raises(InputDataError):
        parse_selector("[1,]", LABS)
    with pytest.raises(InputDataError):
        parse_selector("[1..3(0)]", LABS)


def test_split_selector(tmp_path):
    assert split_selector("a/b.nii.gz[chx:t]") == ("a/b.nii.gz", "chx:t")
    assert split_selector("x+tlrc.HEAD[left_vs_right_chx#0_Coef]") == (
        "x+tlrc.HEAD",
        "left_vs_right_chx#0_Coef",
    )
    assert split_selector("x.nii") == ("x.nii", None)
    assert split_selector(Path("x.nii")) == ("x.nii", None)
    odd = tmp_path / "f[1].nii"
    odd.write_bytes(b"")
    assert split_selector(str(odd)) == (str(odd), None)


def test_index_of_and_select():
    d = AfniDataset(
        np.zeros((2, 2, 2, 3), np.float32),
        np.eye(4),
        labels=["x", "y", "x"],
        stat_codes=[0, 3, 0],
        stat_params=[(), (5,), ()],
    )
    assert d.index_of("x") == 2 and d.index_of("y") == 1  # exact, last match wins
    with pytest.raises(InputDataError, match="labels are: x, y, x"):
        d.index_of("z")
    s = d.select("[y,0]")
    assert s.labels == ["y", "x"] and s.stat_codes == [3, 0] and s.stat_params == [(5.0,), ()]
    assert d.brick(1).shape == (2, 2, 2)
    with pytest.raises(InputDataError, match="out of range"):
        d.brick(3)
    with pytest.raises(InputDataError, match="out of range"):
        d.select([5])


def test_read_with_selector_keeps_stats():
    d = read_dataset(f"{STATS}[left_vs_right_chx#0_Coef,left_vs_right_chx#0_Tstat]")
    assert d.labels == ["left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"]
    assert d.stat_codes == [0, 3] and d.stat_params[1] == (180.0,)
    assert read_dataset(f"{STATS}[$]").labels == ["left_vs_right_press_Fstat"]
    with pytest.raises(InputDataError, match="Full_Fstat"):
        read_dataset(f"{STATS}[nolabel]")


# ------------------------------------------------------------------------------------------
# error cases
# ------------------------------------------------------------------------------------------


def test_missing_files(tmp_path):
    with pytest.raises(MissingInputError, match="nothere.nii.gz"):
        read_dataset(tmp_path / "nothere.nii.gz")
    with pytest.raises(MissingInputError, match=r"nothere\+tlrc.HEAD"):
        read_dataset(tmp_path / "nothere+tlrc")
    with pytest.raises(MissingInputError, match="nothere"):
        read_dataset(tmp_path / "nothere")
    (tmp_path / "h+orig.HEAD").write_bytes(MASK.read_bytes())
    with pytest.raises(MissingInputError, match=r"h\+orig.BRIK"):
        read_dataset(tmp_path / "h+orig.HEAD")


def test_unreadable_header(tmp_path):
    (tmp_path / "g+orig.HEAD").write_text("this is not an AFNI header\n")
    (tmp_path / "g+orig.BRIK").write_bytes(b"\0" * 8)
    with pytest.raises(InputDataError, match=r"unreadable AFNI header .*g\+orig.HEAD"):
        read_dataset(tmp_path / "g+orig")
    (tmp_path / "bad.nii").write_bytes(b"garbage" * 100)
    with pytest.raises(InputDataError, match="bad.nii"):
        read_dataset(tmp_path / "bad.nii")
    nib_bad = NIB_DATA / "bad_datatype+orig.HEAD"
    if nib_bad.exists():
        with pytest.raises((InputDataError, MissingInputError)):
            read_dataset(nib_bad)


def test_brik_size_mismatch(tmp_path):
    (tmp_path / "m+tlrc.HEAD").write_bytes(MASK.read_bytes())
    (tmp_path / "m+tlrc.BRIK").write_bytes(b"\0" * 100)
    with pytest.raises(InputDataError) as err:
        read_dataset(tmp_path / "m+tlrc")
    msg = str(err.value)
    assert "expected 2688 bytes" in msg and "found 100 bytes" in msg and "m+tlrc.BRIK" in msg


def test_big_endian_brik(tmp_path):
    d = read_dataset(NIB_DATA / "example4d+orig")
    text = (NIB_DATA / "example4d+orig.HEAD").read_bytes().replace(b"LSB_FIRST", b"MSB_FIRST")
    (tmp_path / "be+orig.HEAD").write_bytes(text)
    (tmp_path / "be+orig.BRIK").write_bytes(d.data.astype(">i2").tobytes(order="F"))
    np.testing.assert_array_equal(read_dataset(tmp_path / "be+orig").data, d.data)


# ------------------------------------------------------------------------------------------
# geometry and stat helpers
# ------------------------------------------------------------------------------------------


def test_geometry_helpers():
    m = ijk_to_dicom(RAI_AFFINE)
    np.testing.assert_array_equal(
        m[:3], [[2.5, 0, 0, -16.25], [0, 2.5, 0, -18.75], [0, 0, 2.5, -13.75]]
    )
    assert afni_geometry(RAI_AFFINE) == ([0, 3, 4], [-16.25, -18.75, -13.75], [2.5, 2.5, 2.5])
    assert orientation_string(RAI_AFFINE) == "RAI"
    lpi = np.diag([2.0, 2.0, 2.0, 1.0])
    assert afni_geometry(lpi)[0] == [1, 2, 4] and orientation_string(lpi) == "LPI"
    np.testing.assert_array_equal(
        afni_io.affine_from_afni_geometry(*afni_geometry(RAI_AFFINE)), RAI_AFFINE
    )
    perm = np.array([[0, 0, -3.0, 10], [2.0, 0, 0, 5], [0, 2.0, 0, 1], [0, 0, 0, 1]])
    np.testing.assert_allclose(afni_io.affine_from_afni_geometry(*afni_geometry(perm)), perm)
    assert same_grid((np.zeros((2, 2, 2)).shape, RAI_AFFINE), ((2, 2, 2), RAI_AFFINE + 1e-6))
    assert not same_grid(((2, 2, 2), RAI_AFFINE), ((2, 2, 3), RAI_AFFINE))
    assert not same_grid(((2, 2, 2), RAI_AFFINE), ((2, 2, 2), lpi))


def test_stat_encode_decode():
    assert stat_encode(STAT_TTEST, (10,)) == "Ttest(10)"
    assert stat_encode(STAT_FTEST, (3.5, 21.5)) == "Ftest(3.5,21.5)"
    assert stat_encode(2, (30, 2, 1)) == "Correl(30,2,1)"
    assert stat_encode(5, ()) == "Zscore()"
    assert stat_encode(STAT_NONE, ()) == "none"
    assert stat_encode(3, (241.89,)) == "Ttest(241.89)"
    assert stat_encode(3, (0.5,)) == "Ttest(0.5)"
    assert stat_decode("Ttest(180)") == (3, (180.0,))
    assert stat_decode("ftest(1,180)") == (4, (1.0, 180.0))
    assert stat_decode("none") == (0, ())
    assert stat_decode("Zscore()") == (5, ())


def test_history_entry_format():
    e = afni_io.history_entry(["3dMEMA", "-prefix", "x y"], date="Mon Nov 23 19:18:49 2026")
    assert re.fullmatch(
        r"\[[^@\]]+@[^:\]]+: Mon Nov 23 19:18:49 2026\] \{afni_group_[^:]+:"
        r"[^}]+\} 3dMEMA -prefix 'x y'",
        e,
    )


def test_read_labels_reads_only_the_header(tmp_path):
    from afni_group.afni_io import read_labels

    head = DATA / "stats.sub-01_REML+tlrc.HEAD"
    assert read_labels(head) == read_dataset(head).labels
    # a truncated data file does not matter to the labels (read_dataset would refuse it)
    for f in head.parent.glob("stats.sub-01_REML+tlrc.*"):
        (tmp_path / f.name).write_bytes(
            f.read_bytes()[:100] if "BRIK" in f.name else f.read_bytes()
        )
    assert read_labels(tmp_path / head.name) == read_dataset(head).labels
