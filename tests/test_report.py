"""HTML report (issue 8): built from a real AFNI run's outputs laid out as docs/design.md says."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from afni_group.errors import MissingInputError
from afni_group.programs.acf.core import acf_fwhm
from afni_group.programs.clusterize.formats import parse_clusterize_report
from afni_group.programs.clustsim import core as clustsim_core
from afni_group.programs.clustsim import formats as clustsim_formats
from afni_group.report import render as report
from afni_group.report.figures import highlight_alpha, pick_slices, png_size
from afni_group.report.readers import CLUSTER_COLUMNS

GROUP = Path(__file__).parent / "data/spec/afni_examples/pipeline/derivatives/afni/GROUP_LEVEL"
pytestmark = pytest.mark.skipif(not GROUP.is_dir(), reason="AFNI example outputs not available")

COLUMNS = CLUSTER_COLUMNS
# the two clusters of clust_bisided_report_chx.txt (RAI), with LPI = (-x, -y, z)
CHX_CLUSTERS = [
    [1, 31, 484.375, "pos", -6.0, -6.8, 1.5, -6.25, -6.25, 1.25,
     6.0, 6.8, 1.5, 6.25, 6.25, 1.25, 1.0307, 0.0432, 1.6878],
    [2, 11, 171.875, "neg", 6.9, 9.2, -0.6, 6.25, 8.75, -1.25,
     -6.9, -9.2, -0.6, -6.25, -8.75, -1.25, -0.9817, 0.0671, -1.5241],
]  # fmt: skip


def _write_tsv(path: Path, rows: list[list]) -> None:
    lines = ["\t".join(COLUMNS)] + ["\t".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _params(sided: str = "bisided") -> dict:
    def result(label: str, idx: int, n: int) -> dict:
        return {
            "set": label, "tbrick": f"{label}:t", "bbrick": f"{label}:b", "dof": 10,
            "voxel_threshold": 4.586894, "n_clusters": n,
            "report": f"clust_{sided}_report_{label}.txt",
            "clusters_tsv": f"clust_{sided}_clusters_{label}.tsv",
            "map": f"clust_{sided}_map_{label}.nii.gz" if n else None,
            "ee": f"clust_{sided}_EE_{label}.nii.gz" if n else None,
        }  # fmt: skip

    return {
        "afni_group_version": "0.1.0",
        "command_line": "afni-group /data/bids /data/out group --engine afni --sets chx keypress",
        "engine": "afni",
        "engine_reason": "auto: AFNI_26.2.03 found on PATH",
        "status": "complete",
        "options": {"pthr": 0.001, "alpha": 0.05},
        "versions": {"afni-group": "0.1.0", "numpy": np.__version__, "AFNI": "AFNI_26.2.03"},
        "subjects": ["01", "02", "03", "10", "11", "26"],
        "dropped": [{"subject": "05", "reason": "no blur_est file (ACF) found"}],
        "analyses": [
            {
                "name": "mema", "dir": "analysis-mema", "design": "groups", "correct_dof": False,
                "sets": [
                    {"label": "chx", "beta": "left_vs_right_chx#0_Coef",
                     "tstat": "left_vs_right_chx#0_Tstat"},
                    {"label": "keypress", "beta": "left_vs_right_press#0_Coef",
                     "tstat": "left_vs_right_press#0_Tstat"},
                ],
                "mask": {"file": "mask.nii.gz", "frac": 1.0, "n_voxels": 890},
                "acf": [0.742692, 2.93065, 10.6363],
                "clustsim": {"nn": 1, "sided": sided, "pthr": 0.001, "alpha": 0.05,
                             "iterations": 2000, "seed": 123456789,
                             "table": f"ClustSim.NN1_{sided}.1D"},
                "cluster_size_threshold": 4,
                "results": [result("chx", 0, 2), result("keypress", 2, 0)],
            }
        ],
        "timings_s": {"total": 12.5},
    }  # fmt: skip


INVENTORY = (
    "participant_id\tstatus\tstats\tmask\tblur_est\tfound_with\tn_bricks\tcoef_tstat_labels\treason\n"
    + "".join(
        f"sub-{s}\tincluded\t/d/sub-{s}/stats.sub-{s}_REML+tlrc.HEAD\t/d/sub-{s}/mask.nii.gz\t"
        f"/d/sub-{s}/blur_est.sub-{s}.1D\tafni_proc\t7\tx\t\n"
        for s in ["01", "02", "03", "10", "11", "26"]
    )
    + "sub-05\tdropped\t/d/sub-05/stats.HEAD\t/d/sub-05/mask.nii.gz\tMISSING\tafni_proc\t7\tx\t"
    "no blur_est file (ACF) found\n"
)


@pytest.fixture(scope="module")
def outdir(tmp_path_factory) -> Path:
    """OUTPUT_DIR with the real AFNI outputs, params.json, inventory.tsv and clusters.tsv."""
    out = tmp_path_factory.mktemp("out")
    adir = out / "analysis-mema"
    shutil.copytree(GROUP, adir, ignore=shutil.ignore_patterns("*.tcsh"))
    for p in adir.iterdir():
        p.chmod(0o644)
    _write_tsv(adir / "clust_bisided_clusters_chx.tsv", CHX_CLUSTERS)
    _write_tsv(adir / "clust_bisided_clusters_keypress.tsv", [])
    (out / "params.json").write_text(json.dumps(_params(), indent=2))
    (out / "inventory.tsv").write_text(INVENTORY)
    report.write_report(out)
    return out


@pytest.fixture(scope="module")
def html(outdir) -> str:
    return (outdir / "report.html").read_text()


class _Collector(HTMLParser):
    """Collects tags/attributes and checks that non-void tags are balanced."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.imgs: list[dict] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    c.close()
    return c


# ----------------------------------------------------------------------------- the report


def test_report_is_valid_and_names_every_set(html):
    doc = _parse(html)
    assert doc.errors == [] and doc.stack == []
    assert len(doc.ids) == len(set(doc.ids)), "duplicate ids"
    for href in doc.hrefs:  # in-page links resolve
        if href.startswith("#"):
            assert href[1:] in doc.ids
    text = " ".join(doc.text)
    for label in ("chx", "keypress"):
        assert re.search(rf"Set\s+{label}\b", text)
    assert 'id="set-mema_chx"' in html and 'id="set-mema_keypress"' in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert "<script" not in html
    # each t map's interactive viewer: a page of its own beside the figures, in a frame
    frames = re.findall(r'<iframe src="([^"]+)"', html)
    assert frames == ["report/mema_chx_viewer.html", "report/mema_keypress_viewer.html"]


def test_cluster_table_rows_from_clusters_tsv(html):
    doc = _parse(html)
    text = re.sub(r"\s+", " ", " ".join(doc.text))
    rows = re.findall(r"<tr><th scope=\"row\">(\d+)</th><td class=\"(pos|neg)\"", html)
    assert rows == [("1", "pos"), ("2", "neg")]
    # paste-ready table: sign, size, LPI peak, peak t, peak/mean effect, p_FWE, regions
    from afni_group import atlas

    for c in CHX_CLUSTERS:
        cells = re.search(rf"<tr><th scope=\"row\">{c[0]}</th>(.*?)</tr>", html, re.S).group(1)
        values = [unescape(v) for v in re.findall(r"<td[^>]*>([^<]*)</td>", cells)]
        assert values[1:6] == [str(c[1]), f"{c[2]:.1f}", *(f"{v:.1f}" for v in c[13:16])]
        assert float(values[6]) * c[18] > 0  # peak t (from the t brick) has the effect's sign
        assert values[7:9] == [f"{c[18]:.4f}", f"{c[16]:.4f}"]
        # the cluster's max |t| beside AFNI's peak: at least the peak's |t|, same sign
        assert abs(float(values[9])) >= abs(float(values[6])) and float(values[9]) * c[18] > 0
        assert len(values[10:13]) == 3 and all(v != "n/a" for v in values[10:13])
        assert values[13] == "< 0.01"  # 31 and 11 voxels are far beyond the p=0.001 row
        if atlas.atlas_dir() is not None:  # regions at the peak, looked up from the map file
            peak = np.array([c[13:16]])
            for cell, key in zip(values[14:16], ("harvard_oxford", "aal"), strict=True):
                expected = str(atlas.label_points(peak, key)[0])
                if expected.startswith("no_label"):
                    assert cell == "outside atlas regions"
                else:
                    assert cell == expected.replace("_", " ")
    # centre of mass in the second table
    assert "6.0</td><td>6.8</td><td>1.5" in html.replace("\n", "")
    # RAI values are available (AFNI order) in the details table
    assert "-6.0</td><td>-6.8</td><td>1.5" in html.replace("\n", "")
    assert "484.4" in text


def test_no_cluster_page_for_keypress(html):
    section = html.split('id="set-mema_keypress"')[1].split("</section>")[0]
    assert "No cluster survived correction for keypress" in section
    assert "no surviving cluster" in section
    assert "Clusters</h4>" not in section
    assert "largest group of voxels above the voxelwise threshold" in section or (
        "No voxel passed" in section
    )
    # the t map is still shown, the cluster figure is not
    assert section.count("<img") == 1
    chx = html.split('id="set-mema_chx"')[1].split("</section>")[0]
    assert chx.count("<img") == 2


def test_images_are_pngs_of_the_expected_size(outdir, html):
    doc = _parse(html)
    assert len(doc.imgs) == 4
    files = sorted((outdir / "report").glob("*.png"))
    assert {f.name for f in files} == {
        "mema_chx_tmap.png", "mema_chx_clusters.png", "mema_keypress_tmap.png",
        "mema_heterogeneity.png",
    }  # fmt: skip
    for img in doc.imgs:
        assert img["alt"].strip()
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        width, height = png_size(data)
        assert (width, height) == (int(img["width"]), int(img["height"]))
        # 11 in x 100 dpi; t map 5.4 in high; clusters 5.2 in (glass brain + effect row);
        # I2, tau and QE: 3 rows of 1.45 in
        expected = 520 if img["data-file"].endswith("_clusters.png") else 540
        expected = 435 if img["data-file"].endswith("_heterogeneity.png") else expected
        assert (width, height) == (1100, expected)
        on_disk = (outdir / img["data-file"]).read_bytes()
        assert on_disk == data and len(data) > 5000
    # t-map figure has real colour in it (not a blank canvas)
    from matplotlib.image import imread

    pixels = imread(outdir / "report" / "mema_chx_tmap.png")
    (tmap,) = [i for i in doc.imgs if i["data-file"].endswith("mema_chx_tmap.png")]
    assert pixels.shape[:2] == (int(tmap["height"]), 1100)
    assert np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0).shape[0] > 50
    # the MNI template is underneath: many grey-scale pixels (the old silhouette was bluish)
    rgb = pixels[..., :3]
    grey = (np.ptp(rgb, axis=-1) < 0.03) & (rgb.mean(axis=-1) > 0.2) & (rgb.mean(axis=-1) < 0.9)
    assert grey.mean() > 0.1


def test_summary_contents(html):
    text = re.sub(r"\s+", " ", " ".join(_parse(html).text))
    assert "6 subjects included: 01, 02, 03, 10, 11, 26" in text
    assert "1 dropped" in text and "no blur_est file (ACF) found" in text
    assert "p < 0.001" in text and "FWE α = 0.05" in text and "≥ 4 vox" in text
    assert "890 voxels" in text and "NN1" in text and "bi-sided" in text
    assert "FWHM ≈ 7.61 mm" in text  # 3dClustSim prints FWHM=7.61 for this ACF (spec 05)
    assert "AFNI_26.2.03" in text and "afni-group /data/bids /data/out group" in text
    assert "|t| ≥ 4.587" in text and "1 / 2" in text
    assert "MISSING" in text


def test_rewrite_is_atomic_and_clean(outdir, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(outdir, out)
    (out / "report" / "stale.png").write_bytes(b"x")
    path = report.write_report(out)
    assert path == out / "report.html"
    assert not (out / "report" / "stale.png").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".report-")]


def test_figures_in_forked_processes_give_the_same_report(outdir, tmp_path):
    """--n-cpus 2: analyses drawn in two forked processes; the page and PNGs are unchanged."""
    out = tmp_path / "two"
    shutil.copytree(outdir, out)
    shutil.copytree(out / "analysis-mema", out / "analysis-mema2")
    params = json.loads((out / "params.json").read_text())
    second = json.loads(json.dumps(params["analyses"][0]))
    second.update(name="mema2", dir="analysis-mema2")
    params["analyses"].append(second)
    (out / "params.json").write_text(json.dumps(params))
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    try:
        serial = report.write_report(out, n_jobs=1).read_text()
        pngs = {p.name: p.read_bytes() for p in (out / "report").iterdir()}
        forked = report.write_report(out, n_jobs=2).read_text()
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
    assert forked == serial
    assert {p.name: p.read_bytes() for p in (out / "report").iterdir()} == pngs
    assert "mema2" in forked and len(pngs) >= 4


def test_cli_and_missing_params(outdir, tmp_path, capsys):
    assert report.main([str(tmp_path)]) == MissingInputError.exit_code
    assert "params.json" in capsys.readouterr().err
    with pytest.raises(MissingInputError):
        report.write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_fallback_to_3dclusterize_text(outdir, tmp_path):
    """Without clusters.tsv the table comes from the AFNI text report (RAI -> LPI)."""
    out = tmp_path / "copy"
    shutil.copytree(outdir, out)
    (out / "analysis-mema" / "clust_bisided_clusters_chx.tsv").unlink()
    text = report.write_report(out).read_text()
    assert "clust_bisided_clusters_chx.tsv not found" in text
    assert "<td>6.0</td><td>6.8</td><td>1.5</td>" in text.replace("\n", "")
    assert "<td>6.2</td><td>6.2</td><td>1.2</td>" in text.replace("\n", "")  # peak


def test_partial_outputs_still_give_a_page(outdir, tmp_path):
    """Missing images or tables give warnings in the page, not a crash."""
    out = tmp_path / "copy"
    shutil.copytree(outdir, out)
    adir = out / "analysis-mema"
    for name in ("mema_results.nii.gz", "ClustSim.NN1_bisided.1D", "ClustSim.NN1_bisided.niml"):
        (adir / name).unlink()
    params = json.loads((out / "params.json").read_text())
    params["analyses"].append(dict(params["analyses"][0], name="empty", dir="analysis-empty"))
    params["analyses"][1]["results"] = []
    (out / "params.json").write_text(json.dumps(params))
    text = report.write_report(out).read_text()
    doc = _parse(text)
    assert doc.errors == []
    assert "ClustSim table" in text and "not found" in text
    assert "no results recorded for this analysis" in text
    assert "group mask mask.nii.gz not found" in text
    # the cluster figure and table still come from the map/EE files and clusters.tsv
    assert len(doc.imgs) == 1 and "mema_chx_clusters.png" in doc.imgs[0]["data-file"]
    assert "<td>484.4</td>" in text


# ----------------------------------------------------------------------------- pure functions


def test_cluster_slices_and_colour_limit():
    from afni_group.report.figures import cluster_slices, stat_colour_limit

    cmap = np.zeros((4, 4, 10), int)
    ee = np.zeros(cmap.shape)
    cmap[1, 1, 2:7] = 1  # cluster 1 spans z = 2..6, peak at z = 5
    ee[1, 1, 2:7] = [1, 2, 3, 9, 4]
    cmap[2, 2, 8] = 2
    ee[2, 2, 8] = -5
    assert cluster_slices(cmap, ee, 2) == [5, 8]
    assert cluster_slices(cmap, ee, 4) == [2, 5, 6, 8]
    assert cluster_slices(cmap, ee, 20) == [2, 3, 4, 5, 6, 8]
    assert stat_colour_limit([np.array([1.0, -3.0])], [4.0]) == 6.0  # at least 1.5 x threshold
    assert stat_colour_limit([np.array([50.0]), np.array([-60.0])], [4.0, 5.0]) == 60.0  # all sets


def test_clustsim_tables_and_corrected_alpha():
    t1d = clustsim_formats.read_clustsim_table(GROUP / "ClustSim.NN1_bisided.1D")
    niml = clustsim_formats.parse_clustsim_niml((GROUP / "ClustSim.NN1_bisided.niml").read_text())
    one_d = clustsim_formats.parse_clustsim_1d((GROUP / "ClustSim.NN1_bisided.1D").read_text())
    assert t1d.sizes.shape == (29, 10) and np.allclose(t1d.sizes, niml.sizes)  # .niml preferred
    assert np.allclose(one_d.sizes, np.round(niml.sizes, 1))
    assert np.allclose(one_d.athr, [0.1, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01])
    # p = 0.001 row: 2.224 2.352 2.495 2.656 2.841 3.061 3.340 ... 5.138
    a = clustsim_core.corrected_alpha(niml, 0.001, 3)
    assert a.relation == "=" and 0.05 < a.value < 0.06
    g = clustsim_core._gumbel
    frac = (3 - 2.840724) / (3.061183 - 2.840724)
    expected = -np.expm1(-np.exp(g(0.06) + frac * (g(0.05) - g(0.06))))
    assert a.value == pytest.approx(expected)
    assert str(clustsim_core.corrected_alpha(niml, 0.001, 31)) == "< 0.01"
    assert str(clustsim_core.corrected_alpha(niml, 0.001, 2)) == "> 0.10"
    exact = clustsim_core.corrected_alpha(niml, 0.02, 20)  # cell is exactly 20 at alpha 0.02
    assert exact.value == pytest.approx(0.02) and str(exact) == "0.020"
    assert clustsim_core.corrected_alpha(niml, 0.0011, 5) is None
    # ties (rows of 1.0) give the smallest alpha whose size is reached
    assert clustsim_core.corrected_alpha(niml, 1e-5, 1).value == pytest.approx(0.01)
    # monotone in size
    vals = [clustsim_core.corrected_alpha(niml, 0.001, n).value for n in (2.3, 2.6, 3.0, 3.5, 4.5)]
    assert all(x > y for x, y in zip(vals, vals[1:], strict=False))


def test_acf_fwhm_matches_3dclustsim():
    # 3dClustSim: ACF(0.74,2.93,10.64) => FWHM=7.61; ACF(0.738202,3.2154,11.9615) => 8.38
    assert acf_fwhm(0.742692, 2.93065, 10.6363) == pytest.approx(7.61, abs=0.006)
    assert acf_fwhm(0.738202, 3.2154, 11.9615) == pytest.approx(8.38, abs=0.006)


def test_parse_clusterize_report():
    report_text = (GROUP / "clust_bisided_report_chx.txt").read_text()
    parsed = parse_clusterize_report(report_text)
    assert parsed.n_clusters == 2 and parsed.sizes == [31, 11] and not parsed.no_clusters
    assert parsed.nvox == 4 and parsed.voxel_volume == pytest.approx(15.625)
    assert parsed.rows[0].startswith("     31") and all(ln[0] == "#" for ln in parsed.header)
    rows = parsed.table_rows()
    assert [r["n_voxels"] for r in rows] == [31, 11]
    assert rows[0]["volume_mm3"] == pytest.approx(484.375)
    assert rows[1]["tail"] == "neg" and rows[1]["cm_x_lpi"] == pytest.approx(-6.9)
    assert parse_clusterize_report("#** NO CLUSTERS FOUND ***\n").table_rows() == []
    both = parse_clusterize_report((GROUP / "clust_bisided_report_chx.txt").read_text())
    both = both.table_rows(sided="2sided")
    assert {r["tail"] for r in both} == {"both"}


def test_highlight_alpha_and_slices():
    t = np.array([0.0, 2.0, 4.0, 8.0, -8.0, 8.0])
    surv = np.array([False, False, False, False, True, True])
    inside = np.array([True, True, True, True, True, False])
    alpha = highlight_alpha(t, 4.0, surv, inside)
    assert alpha[0] == 0 and 0 < alpha[1] < alpha[2] < 1
    assert alpha[2] == alpha[3]  # above threshold but not surviving: stays faint
    assert alpha[4] == 1.0 and alpha[5] == 0.0
    assert pick_slices(np.array([0, 1, 1, 1, 0, 1], bool), 10) == [1, 2, 3, 5]
    picked = pick_slices(np.ones(91, bool), 12)
    assert len(picked) == 12 and picked[0] == 0 and picked[-1] == 90


def test_mplconfigdir_defaults_to_temp_when_unwritable(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    code = (
        "import os; import afni_group.report.figures as rf; "
        "d = os.environ['MPLCONFIGDIR']; print(d); assert os.access(d, os.W_OK)"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ro), "MPLCONFIGDIR": str(ro / "none" / "x")}
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() == "0":
        env["MPLCONFIGDIR"] = "/proc/afni-group-unwritable"  # root can write anywhere else
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "afni-group-mpl-" in proc.stdout
    assert "Matplotlib" not in proc.stderr


# ----------------------------------------------------------------------------- browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (apt-get install chromium)")
def test_renders_in_headless_chromium_without_broken_images(outdir, tmp_path):
    page = tmp_path / "check.html"
    probe = (
        "<script>window.addEventListener('load', () => {"
        "const bad = [...document.images].filter(i => !i.complete || i.naturalWidth === 0);"
        "const out = document.createElement('pre'); out.id = 'probe';"
        "out.textContent = 'IMAGES ' + document.images.length + ' BROKEN ' + bad.length + "
        "' WIDTHS ' + [...document.images].map(i => i.naturalWidth).join(',') + "
        "' CLIPPED ' + [...document.querySelectorAll('.tablewrap caption')].filter("
        "c => c.getBoundingClientRect().width > c.closest('.tablewrap').clientWidth + 1).length;"
        "document.body.appendChild(out);});</script>"
    )
    page.write_text((outdir / "report.html").read_text().replace("</body>", probe + "</body>"))
    shot = tmp_path / "shot.png"
    base = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
    ]  # fmt: skip
    dom = subprocess.run(
        [*base, "--window-size=700,2400", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "IMAGES 4 BROKEN 0" in dom.stdout, dom.stderr[-2000:]
    assert "WIDTHS 1100,1100,1100" in dom.stdout
    assert "CLIPPED 0" in dom.stdout  # at 700 px the table captions wrap within their box
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert png_size(shot.read_bytes()) == (1280, 2400)
