"""3dClusterize on hand-built volumes whose clusters, sizes, centres and peaks are known exactly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from afni_group import afni_io
from afni_group.errors import InputDataError, OutputError, UsageError
from afni_group.programs.cli.clusterize import cli_main
from afni_group.programs.clusterize import files as cz

DATA = Path(__file__).parent / "data" / "clusterize"

# 07 §5.7: grid 5x4x3, 2 mm, RAS affine diag(2,2,2) + (-4,-3,-2) -> RAI (4-2i, 3-2j, -2+2k).
SPEC_AFFINE = np.array([[2.0, 0, 0, -4], [0, 2.0, 0, -3], [0, 0, 2.0, -2], [0, 0, 0, 1]])
SPEC_VOXELS = {  # (i, j, k): (t, b)
    (1, 1, 1): (3.5, 0.5),
    (2, 1, 1): (4.0, 0.8),
    (2, 2, 1): (3.2, 0.4),
    (3, 1, 1): (3.0, 0.1),
    (4, 3, 2): (-3.1, -0.3),
    (4, 2, 2): (-5.0, -0.9),
    (0, 0, 0): (3.3, 0.2),
}


def write_bucket(
    path: Path, t: np.ndarray, b: np.ndarray, affine=SPEC_AFFINE, dof: float = 10.0
) -> Path:
    """A 2-brick NIfTI bucket ``[0] ex:b``, ``[1] ex:t`` = Ttest(dof), like 3dMEMA writes."""
    dset = afni_io.AfniDataset(
        data=np.stack([b, t], axis=-1).astype(np.float32),
        affine=affine,
        labels=["ex:b", "ex:t"],
        stat_codes=[0, 3],
        stat_params=[(), (dof,)],
        space="MNI",
        view="tlrc",
    )
    return afni_io.write_dataset(dset, path)


def write_mask(path: Path, mask: np.ndarray, affine=SPEC_AFFINE) -> Path:
    dset = afni_io.AfniDataset(data=mask.astype(np.uint8), affine=affine, space="MNI", view="tlrc")
    return afni_io.write_dataset(dset, path)


@pytest.fixture()
def spec_example(tmp_path: Path, monkeypatch) -> Path:
    """ex.nii.gz and m.nii.gz of 07 §5.7 in a temporary folder (which is the working dir)."""
    t = np.zeros((5, 4, 3), np.float32)
    b = np.zeros((5, 4, 3), np.float32)
    for ijk, (tv, bv) in SPEC_VOXELS.items():
        t[ijk], b[ijk] = tv, bv
    write_bucket(tmp_path / "ex.nii.gz", t, b)
    write_mask(tmp_path / "m.nii.gz", np.ones((5, 4, 3)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------------------------------------------
# formatting
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1207, " 0.1207"),
        (-0.17, "-0.17"),
        (0.128, " 0.128"),
        (0.00041, "4.1e-04"),
        (-0.00041, " -4e-04"),
        (12.3456, " 12.346"),
        (123.456, " 123.46"),
        (1234.56, " 1234.6"),
        (12345.6, "  12346"),
        (0.45, " 0.45"),
        (-0.6, "-0.6"),
        (2.0, " 2"),
        (-3.0, "-3"),
        (0.0, " 0"),
        (1.00001, " 1."),
        (-9.99999, "-10."),  # 8-char "-10.0000" cut at 6, 5, 4
    ],
)
def test_fc7_matches_spec_vectors(value, text):
    assert cz.fc7(value) == text


def test_orient_codes():
    assert cz.normalize_orient("lpi") == "LPI"
    assert cz.normalize_orient("fli") == "LPI"
    assert cz.normalize_orient("xyz") == "RAI"
    assert cz.normalize_orient("RRI") == "RAI"
    assert cz.normalize_orient(None) == "RAI"
    assert cz.normalize_orient("SAL") == "SAL"


def test_reorient_flips_sign_of_zero_like_afni():
    rai = cz.dicom_coordinates(
        np.array([[2, 1, 1]]), np.array([4.0, 3, -2]), np.array([-2.0, -2, 2]), np.array([0, 1, 2])
    )
    assert rai.tolist() == [[0.0, 1.0, 0.0]]
    assert np.signbit(rai[0, 0]) == np.False_  # +0.0 in RAI ...
    lpi = cz.reorient_coordinates(rai, "LPI")
    assert "%5.1f" % lpi[0, 0] == " -0.0"  # ... -0.0 once flipped (07 §5.3)


# ------------------------------------------------------------------------------------------------
# thresholds and clustering on arrays
# ------------------------------------------------------------------------------------------------


def test_threshold_is_inclusive_and_float32():
    thr = np.array([2.9, 3.0, 3.1, -3.0, -2.99, 0.0], dtype=np.float32)
    pos, neg = cz.threshold_masks(thr, "bisided", -3.0, 3.0)
    assert pos.tolist() == [False, True, True, False, False, False]
    assert neg.tolist() == [False, False, False, True, False, False]
    (both,) = cz.threshold_masks(thr, "2sided", -3.0, 3.0)
    assert both.tolist() == [False, True, True, True, False, False]
    # the text "3.792131" becomes float32(3.792131): a voxel holding exactly that value passes
    exact = np.array([np.float32(3.792131), np.nextafter(np.float32(3.792131), np.float32(0))])
    (right,) = cz.threshold_masks(exact, "1sided", 0, 3.792131, tail="RIGHT")
    assert right.tolist() == [True, False]
    (left,) = cz.threshold_masks(-exact, "1sided", 0, -3.792131, tail="LEFT")
    assert left.tolist() == [True, False]


def test_reversed_2sided_thresholds_keep_everything():
    thr = np.array([0.0, 1.0, -1.0], dtype=np.float32)
    (kept,) = cz.threshold_masks(thr, "2sided", 3.0, -3.0)
    assert kept.all()


def test_within_range():
    thr = np.array([3.0, 3.5, 4.5, 4.6, 2.0], dtype=np.float32)
    (kept,) = cz.threshold_masks(thr, "within_range", 3.0, 4.5)
    assert kept.tolist() == [True, True, True, False, False]


def test_neighbour_counts():
    assert [len(cz.neighbour_offsets(nn)) for nn in (1, 2, 3)] == [6, 18, 26]
    # visiting order: dk outer, dj, di inner
    assert cz.neighbour_offsets(1) == [
        (0, 0, -1),
        (0, -1, 0),
        (-1, 0, 0),
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
    ]


def test_edge_touching_voxels_merge_in_nn2_not_nn1():
    image = np.zeros((6, 6, 6), bool)
    image[1, 1, 1] = image[2, 2, 1] = True  # share an edge only
    image[4, 4, 4] = image[5, 5, 5] = True  # share a corner only
    assert [len(c) for c in cz.find_clusters(image, 1)] == [1, 1, 1, 1]
    assert sorted(len(c) for c in cz.find_clusters(image, 2)) == [1, 1, 2]
    assert [len(c) for c in cz.find_clusters(image, 3)] == [2, 2]


def test_no_wrap_around_at_grid_edges():
    image = np.zeros((3, 3, 3), bool)
    image[2, 0, 0] = image[0, 1, 0] = True  # neighbours only if i wrapped around
    assert len(cz.find_clusters(image, 3)) == 2


def test_discovery_order_and_breadth_first_order():
    image = np.zeros((5, 4, 3), bool)
    # an L: seed (1,1,0), then its +i neighbour and +j neighbour, then one more along j
    for ijk in [(1, 1, 0), (2, 1, 0), (1, 2, 0), (1, 3, 0)]:
        image[ijk] = True
    image[4, 0, 2] = True  # lower linear index than nothing above? (4 + 0 + 2*20 = 44)
    image[0, 0, 1] = True  # linear index 20: discovered before (4,0,2) but after (1,1,0)=6
    clusters = cz.find_clusters(image, 1)
    assert [c[0].tolist() for c in clusters] == [[1, 1, 0], [0, 0, 1], [4, 0, 2]]
    # BFS from the seed, neighbours in offset order (dj=-1, di=-1, di=+1, dj=+1, ...)
    assert clusters[0].tolist() == [[1, 1, 0], [2, 1, 0], [1, 2, 0], [1, 3, 0]]
    assert [len(c) for c in cz.find_clusters(image, 1, min_size=2)] == [4]


def test_stable_sort_keeps_positive_tail_first_on_ties():
    assert cz.sort_clusters(["p1", "p2", "n1", "n2"], [2, 3, 3, 2]) == ["p2", "n1", "p1", "n2"]


def test_cluster_stats_exact_values():
    values = np.array([1.0, -3.0, 3.0, 2.0], np.float32)
    xyz = np.array([[0, 0, 0], [2, 0, 0], [4, 0, 0], [4, 2, 0]], np.float32)
    s = cz.cluster_stats(values, xyz)
    assert s.n_voxels == 4
    assert s.cm.tolist() == pytest.approx([(0 + 6 + 12 + 8) / 9, 4 / 9, 0.0])
    assert s.mean == pytest.approx(0.75)
    # SEM of the signed values: sqrt(var / n) with var = (sum v^2 - n mean^2) / (n - 1)
    var = (1 + 9 + 9 + 4 - 4 * 0.75**2) / 3
    assert s.sem == pytest.approx(np.sqrt(var / 4), rel=1e-6)
    # tie in |value| (−3 and 3): the first point in BFS order wins, sign kept
    assert s.peak_value == -3.0
    assert s.peak_xyz.tolist() == [2, 0, 0]
    assert s.bbox_min.tolist() == [0, 0, 0] and s.bbox_max.tolist() == [4, 2, 0]
    single = cz.cluster_stats(np.array([0.2], np.float32), xyz[:1])
    assert single.sem == 0.0
    scaled = cz.cluster_stats(np.array([100, 300], np.float32), xyz[:2], factor=0.01)
    assert scaled.mean == pytest.approx(2.0) and scaled.peak_value == pytest.approx(3.0)
    assert scaled.sem == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------
# whole runs on files
# ------------------------------------------------------------------------------------------------


FOUR = cz.Thresholds(values=(-4, 4))
THREE = cz.Thresholds(values=(-3, 3))


def spec_run(
    sided="bisided", values=(-3.0, 3.0), pval=None, tail="RIGHT_TAIL", **overrides
) -> cz.ClusterizeResult:
    kwargs = dict(
        mask="m.nii.gz",
        nn=1,
        clust_nvox=2,
        pref_map="map.nii.gz",
        pref_dat="dat.nii.gz",
    )
    kwargs.update(overrides)
    thresholds = cz.Thresholds(sided, () if pval is not None else values, pval, tail)
    return cz.run_clusterize("ex.nii.gz", 1, 0, thresholds=thresholds, **kwargs)


def test_spec_example_report_line_by_line(spec_example):
    result = spec_run()
    expected = (DATA / "spec_5_7_report_bisided.txt").read_text()
    assert result.report_text.splitlines(keepends=True) == expected.splitlines(keepends=True)
    assert result.n_clusters == 2
    assert [c.tail for c in result.clusters] == ["pos", "neg"]
    assert result.option_label == "bisided,-3.0,3.0,clust_nvox,2,NN1"


def test_spec_example_maps(spec_example):
    result = spec_run()
    cmap = afni_io.read_dataset(result.map_path)
    assert cmap.data.dtype == np.int16
    assert cmap.labels == ["bisided,-3.0,3.0,clust_nvox,2,NN1"]
    assert int(cmap.attributes["INT_CMAP"][0]) == 1
    assert "BRICK_KEYWORDS" not in cmap.attributes
    expected = np.zeros((5, 4, 3), np.int16)
    for ijk in [(1, 1, 1), (2, 1, 1), (2, 2, 1), (3, 1, 1)]:
        expected[ijk] = 1  # the t = 3.0 voxel at (3,1,1) is in: the test is inclusive
    expected[4, 2, 2] = expected[4, 3, 2] = 2
    assert np.array_equal(cmap.brick(0), expected)  # (0,0,0) singleton dropped by clust_nvox 2
    dat = afni_io.read_dataset(result.dat_path)
    assert dat.labels == ["ex:b"] and dat.data.dtype == np.float32
    b = afni_io.read_dataset("ex.nii.gz").brick(0)
    assert np.array_equal(dat.brick(0), np.where(expected > 0, b, 0))
    assert "3dClusterize" in cmap.history


def test_lpi_report_rows(spec_example):
    result = spec_run(orient="LPI", pref_map=None, pref_dat=None)
    rows = [line for line in result.report_text.splitlines() if not line.startswith("#")]
    assert rows[0] == (
        "      4   -0.4   -0.6    0.0   -2.0    2.0   -1.0    1.0    0.0    0.0     0.45   0.1443"
        "      0.8   -0.0   -1.0    0.0 "
    )
    assert "#Volume  CM LR  CM PA  CM IS  minLR" in result.report_text
    assert result.map_path is None and not Path("map.nii.gz").exists()


def test_zero_data_value_removes_voxel_and_splits_cluster(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = np.zeros((5, 3, 3), np.float32)
    b = np.zeros((5, 3, 3), np.float32)
    t[0:5, 1, 1] = 5.0
    b[0:5, 1, 1] = [1.0, 2.0, 0.0, 3.0, 4.0]  # the middle voxel passes t but has b == 0
    write_bucket(tmp_path / "z.nii.gz", t, b)
    result = cz.run_clusterize("z.nii.gz", "ex:t", "ex:b", thresholds=cz.Thresholds(values=(-4, 4)))
    assert [c.n_voxels for c in result.clusters] == [2, 2]
    assert [c.ijk.tolist() for c in result.clusters] == [
        [[0, 1, 1], [1, 1, 1]],
        [[3, 1, 1], [4, 1, 1]],
    ]
    assert result.option_label == "bisided,-4,4,NN1"


def test_tie_in_size_across_tails_positive_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = np.zeros((6, 4, 3), np.float32)
    b = np.zeros((6, 4, 3), np.float32)
    t[0:3, 0, 0], b[0:3, 0, 0] = -4.0, [-1.0, -2.0, -1.5]  # negative, found first in scan order
    t[0:3, 3, 2], b[0:3, 3, 2] = 4.0, [1.0, 3.0, 1.0]  # positive, same size
    t[5, 1, 1], b[5, 1, 1] = 4.0, 9.0  # a bigger-|b| singleton (dropped)
    write_bucket(tmp_path / "tie.nii.gz", t, b)
    result = cz.run_clusterize(
        "tie.nii.gz",
        "ex:t",
        "ex:b",
        thresholds=cz.Thresholds(values=(-3, 3)),
        clust_nvox=2.7,
        pref_map="m.nii.gz",
    )
    assert [(c.index, c.tail, c.n_voxels) for c in result.clusters] == [
        (1, "pos", 3),
        (2, "neg", 3),
    ]
    assert "Nvoxel threshold    = 2;" in result.report_text  # 2.7 truncated
    assert result.option_label == "bisided,-3,3,clust_nvox,2.7,NN1"
    pos, neg = result.clusters
    # RAI of (i, j, k) here is (4 - 2i, 3 - 2j, -2 + 2k)
    assert pos.stats_rai.cm.tolist() == pytest.approx([2.0, -3.0, 2.0])
    assert pos.stats_rai.peak_xyz.tolist() == [2.0, -3.0, 2.0] and pos.stats.peak_value == 3.0
    assert neg.stats_rai.cm.tolist() == pytest.approx([(4 * 1 + 2 * 2 + 0 * 1.5) / 4.5, 3, -2])
    assert neg.stats.peak_value == -2.0 and neg.stats.mean == pytest.approx(-1.5)
    assert neg.stats_lpi.cm[0] == pytest.approx(-neg.stats_rai.cm[0])
    cmap = afni_io.read_dataset("m.nii.gz").brick(0)
    assert cmap[1, 3, 2] == 1 and cmap[1, 0, 0] == 2 and cmap[5, 1, 1] == 0


def test_nn2_merges_edge_neighbours_in_a_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = np.zeros((4, 4, 3), np.float32)
    t[1, 1, 1] = t[2, 2, 1] = 5.0
    write_bucket(tmp_path / "e.nii.gz", t, t / 10)
    nn1 = cz.run_clusterize("e.nii.gz", 1, 0, thresholds=FOUR, nn=1)
    nn2 = cz.run_clusterize("e.nii.gz", 1, 0, thresholds=FOUR, nn=2)
    assert [c.n_voxels for c in nn1.clusters] == [1, 1]
    assert [c.n_voxels for c in nn2.clusters] == [2]
    assert "#[ Neighbor type, NN   = 2 ]" in nn2.report_text
    # a single cluster: no closing separator, no total line
    assert nn2.report_text.rstrip("\n").splitlines()[-1].startswith("      2 ")


def test_no_cluster_path(spec_example):
    result = spec_run(values=(-30, 30))
    assert result.report_text == "#** NO CLUSTERS FOUND ***\n"
    assert result.n_clusters == 0 and result.clusters == []
    assert result.map_path is None and result.dat_path is None
    assert not Path("map.nii.gz").exists() and not Path("dat.nii.gz").exists()
    tsv = cz.write_clusters_tsv(result, "clusters.tsv")
    assert tsv.read_text() == "\t".join(cz.TSV_COLUMNS) + "\n"
    zero = spec_run(values=(-30, 30), one_d_format=False, report_zero=True)
    assert zero.report_text == "** NO CLUSTERS FOUND ***\n 0\n"


def test_outvol_if_no_clust_writes_zero_volumes(spec_example):
    result = spec_run(values=(-30, 30), outvol_if_no_clust=True)
    assert result.map_path is not None
    assert not afni_io.read_dataset(result.map_path).brick(0).any()


def test_clusters_tsv(spec_example):
    result = spec_run()
    path = cz.write_clusters_tsv(result, "clust.tsv")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert list(rows[0]) == cz.TSV_COLUMNS
    first, second = rows
    assert first["cluster_id"] == "1" and first["n_voxels"] == "4" and first["tail"] == "pos"
    assert first["volume_mm3"] == "32.000"
    assert (first["peak_x_rai"], first["peak_y_rai"], first["peak_z_rai"]) == (
        "0.00",
        "1.00",
        "0.00",
    )
    assert (first["peak_x_lpi"], first["peak_y_lpi"]) == ("0.00", "-1.00")  # no "-0.00"
    assert float(first["cm_x_rai"]) == pytest.approx(0.8 / 1.8, abs=0.005)
    assert float(first["cm_x_lpi"]) == pytest.approx(-0.8 / 1.8, abs=0.005)
    assert float(first["mean"]) == pytest.approx(0.45) and float(
        first["peak_value"]
    ) == pytest.approx(0.8)
    assert second["tail"] == "neg" and float(second["peak_value"]) == pytest.approx(-0.9)


def test_p_syntax_and_labels(spec_example):
    result = spec_run(pval=0.02, clust_nvox=None)
    assert result.option_label == "-bisided,p=0.02,NN1"
    assert "left-tail p=0.020000 -> thr=-2.763769;  right-tail p=0.020000 -> thr=2.763769" in (
        result.report_text
    )
    one = spec_run(sided="1sided", pval=0.01, tail="RIGHT_TAIL", clust_nvox=None)
    assert one.option_label == "1sided,RIGHT_TAIL,p=0.01,NN1"
    left = spec_run(sided="1sided", values=(-3,), tail="LEFT", clust_nvox=None)
    assert left.option_label == "1sided,LEFT,-3,NN1"
    assert [c.tail for c in left.clusters] == ["neg"]


def test_history_records_a_runnable_command(spec_example):
    """Without a command line the history rebuilds one, -1sided's tail word included."""
    left = spec_run(sided="1sided", values=(-3,), tail="LEFT", clust_nvox=None, pref_dat=None)
    history = afni_io.read_dataset(left.map_path).history
    assert "-1sided LEFT -3 -NN 1 -pref_map map.nii.gz" in history
    spec_run(pref_dat=None)
    history = afni_io.read_dataset("map.nii.gz").history
    assert "-ithr 1 -idat 0 -mask m.nii.gz -bisided -3.0 3.0 -NN 1 -clust_nvox 2 -pref_map" in (
        history
    )


def test_label_lookup_last_match_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = np.zeros((4, 4, 3), np.float32)
    t[1, 1, 1] = 5.0
    dset = afni_io.AfniDataset(
        data=np.stack([t, t * 0, -t], axis=-1),
        affine=SPEC_AFFINE,
        labels=["x", "x", "x"],
        stat_codes=[3, 3, 3],
        stat_params=[(10,), (10,), (10,)],
    )
    afni_io.write_dataset(dset, tmp_path / "dup.nii.gz")
    result = cz.run_clusterize("dup.nii.gz", "x", None, thresholds=FOUR)
    assert "#[ Threshold vol       = [2] 'x' ]" in result.report_text
    assert "#[ Supplement dat vol  = (none) ]" in result.report_text
    assert [c.tail for c in result.clusters] == ["neg"]


def test_errors(spec_example):
    with pytest.raises(InputDataError, match="Could not find string label: nolabel"):
        cz.run_clusterize("ex.nii.gz", "nolabel", 0, thresholds=THREE)
    with pytest.raises(InputDataError, match="Bad index for ithr volume: 5"):
        cz.run_clusterize("ex.nii.gz", 5, 0, thresholds=THREE)
    with pytest.raises(UsageError, match="volume threshold"):
        spec_run(clust_nvox=0)
    with pytest.raises(UsageError, match="not a stat|does \\*not\\* appear"):
        cz.run_clusterize("ex.nii.gz", 0, 0, thresholds=cz.Thresholds(pval=0.01))
    write_mask(spec_example / "small.nii.gz", np.ones((5, 4, 2)))
    with pytest.raises(InputDataError, match="small.nii.gz"):
        spec_run(mask="small.nii.gz")
    spec_run()
    with pytest.raises(OutputError, match="dat.nii.gz"):
        spec_run(overwrite=False)


def test_nan_is_rejected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = np.zeros((4, 4, 3), np.float32)
    t[1, 1, 1] = np.nan
    write_bucket(tmp_path / "nan.nii.gz", t, t)
    with pytest.raises(InputDataError, match="NaN"):
        cz.run_clusterize("nan.nii.gz", 1, 0, thresholds=THREE)


def test_cli_writes_report_to_stdout(spec_example, capsys):
    rc = cli_main(
        "-inset ex.nii.gz -ithr 1 -idat 0 -mask m.nii.gz -bisided -3.0 3.0 -NN 1 "
        "-clust_nvox 2 -quiet".split()
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()[-1]
        == "#     6   -1.3   -0.3    0.8" + " " * 48 + "0.1   0.2517" + " " * 29
    )
    assert cli_main(["-inset", "ex.nii.gz", "-ithr", "1", "-bisided", "-3", "3"]) == 64
    assert "neighborhood type" in capsys.readouterr().err
    assert cli_main(["-inset", "ex.nii.gz", "-ithr", "1", "-NN", "1", "-bogus"]) == 64
    assert "Bad option '-bogus'" in capsys.readouterr().err


def test_cli_parses_afni_words_into_values(spec_example, capsys):
    """The drop-in turns AFNI's option text into values; the map's label echoes it as typed."""
    argv = (
        "-inset ex.nii.gz -ithr 1 -idat 0 -bisided -3 3.0e0 -NN 1 -clust_nvox 2.0 -pref_map a.nii"
    )
    assert cli_main(argv.split()) == 0
    assert afni_io.read_dataset("a.nii").labels == ["bisided,-3,3.0e0,clust_nvox,2.0,NN1"]
    typed = capsys.readouterr().out
    # the same numbers as values through the file level, with the default (Python) echo
    by_value = spec_run(mask=None, pref_map="b.nii", pref_dat=None).report_text
    assert by_value == typed.replace(
        "bisided,-3,3.0e0,clust_nvox,2.0", "bisided,-3.0,3.0,clust_nvox,2"
    )
    assert afni_io.read_dataset("b.nii").labels == ["bisided,-3.0,3.0,clust_nvox,2,NN1"]
    # an inset selector: the CLI resolves it to sub-brick indices, -ithr/-idat count in them
    swapped = "-inset ex.nii.gz[1,0] -ithr 0 -idat 1 -bisided -3 3.0e0 -NN 1 -clust_nvox 2.0"
    assert cli_main(swapped.split()) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if not r.startswith("#")]
    assert rows == [r for r in typed.splitlines() if not r.startswith("#")]
    # p= and -1sided with its tail word
    assert (
        cli_main("-inset ex.nii.gz -ithr ex:t -bisided p=0.02 -NN 1 -pref_map c.nii".split()) == 0
    )
    assert afni_io.read_dataset("c.nii").labels == ["-bisided,p=0.02,NN1"]
    one = "-inset ex.nii.gz -ithr 1 -1sided left_tail -3 -NN 1 -pref_map d.nii"
    assert cli_main(one.split()) == 0
    assert afni_io.read_dataset("d.nii").labels == ["1sided,left_tail,-3,NN1"]


@pytest.mark.parametrize("orient", ["LPI", "SAL", "RAI", "PIR"])
def test_reorient_stats_equals_recomputing(orient):
    rng = np.random.default_rng(3)
    values = rng.normal(size=40).astype(np.float32)
    rai = (rng.integers(-5, 6, size=(40, 3)) * 2.5).astype(np.float32) + np.float32(0.0)
    rai[:, 2] = 0.0  # exact zeros: their sign must come out as AFNI's
    direct = cz.cluster_stats(values, cz.reorient_coordinates(rai, orient))
    derived = cz.reorient_stats(cz.cluster_stats(values, rai), orient)
    for name in ("sum_mx", "cm", "bbox_min", "bbox_max", "peak_xyz"):
        a, b = getattr(direct, name), getattr(derived, name)
        assert np.array_equal(a, b) and np.array_equal(np.signbit(a), np.signbit(b)), name
    assert cz.cluster_table_row(direct) == cz.cluster_table_row(derived)


# ------------------------------------------------------------------------------------------------
# the array core
# ------------------------------------------------------------------------------------------------


def test_core_clusterize_on_arrays():
    from afni_group.programs.clusterize.core import clusterize, largest_cluster_size

    stat = np.zeros((6, 6, 6), np.float32)
    stat[1:3, 1:3, 1:3] = 5.0  # 8 voxels, positive
    stat[4, 4, 4] = -6.0  # 1 voxel, negative
    stat[4, 0, 0] = 5.0  # 1 voxel, positive
    found = clusterize(stat, thresholds=(-4.0, 4.0), affine=np.eye(4))
    assert [(r.cluster_id, r.n_voxels, r.tail) for r in found.table] == [
        (1, 8, "pos"),
        (2, 1, "pos"),
        (3, 1, "neg"),
    ]
    assert found.table[0].cm_rai == (-1.5, -1.5, 1.5)  # RAI x = -i, y = -j for an identity affine
    assert found.table[0].cm_lpi == (1.5, 1.5, 1.5)
    assert int((found.cluster_map == 1).sum()) == 8 and found.cluster_map[4, 4, 4] == 3
    np.testing.assert_array_equal(found.data_map(stat)[found.cluster_map == 0], 0)
    assert clusterize(stat, thresholds=4.0, min_nvox=2).n_clusters == 1
    assert clusterize(stat, thresholds=4.0, sided="1sided").n_clusters == 2
    assert largest_cluster_size(stat, 4.0) == 8
    assert largest_cluster_size(stat, 5.5, sided="2sided") == 1
    assert largest_cluster_size(stat, 5.5, mask=stat >= 0) == 0
    bad = stat.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clusterize(bad, thresholds=4.0)
    with pytest.raises(ValueError, match="nn must be"):
        clusterize(stat, thresholds=4.0, nn=4)
    with pytest.raises(ValueError, match="one shape"):
        clusterize(stat, stat[:3], thresholds=4.0)
