"""The report's colour scales, interactive viewer and coverage figure (issue 23).

On AFNI's own tutorial outputs (tests/data/spec, as test_report.py); figures are drawn only where
the test looks at them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from afni_group.report import context, figures, viewer
from afni_group.report.coverage import coverage_summary
from afni_group.report.readers import Volume, load_volume
from test_report import _params  # the params.json of the same AFNI example run

PIPE = Path(__file__).parent / "data/spec/afni_examples/pipeline/derivatives/afni"
GROUP = PIPE / "GROUP_LEVEL"
pytestmark = pytest.mark.skipif(not GROUP.is_dir(), reason="AFNI example outputs not available")
THRESHOLD = 4.586894


def _analysis() -> dict:
    """test_report's analysis of this run (chx: 2 clusters, keypress: none), with the count."""
    analysis = _params()["analyses"][0]
    analysis["mask"].update(count_file="mask_count.nii.gz", n_masks=6)
    return analysis


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """OUTPUT_DIR with AFNI's group-level files and the subject-mask count."""
    from afni_group.programs.mask_tool.files import make_group_mask

    root = tmp_path_factory.mktemp("views")
    adir = root / "analysis-mema"
    shutil.copytree(GROUP, adir, ignore=shutil.ignore_patterns("*.tcsh"))
    masks = sorted(PIPE.glob("sub-*/sub*results/mask_epi_anat.*.HEAD"))
    make_group_mask(masks, adir / "mask_count.nii.gz", frac=0, count=True)
    (root / "params.json").write_text(json.dumps({"analyses": [_analysis()]}))
    return root


def test_one_colour_scale_for_every_t_figure_and_set_of_an_analysis(out, tmp_path, monkeypatch):
    """The t map figures, glass brain and viewers of both sets get the same limit: the largest
    |t| in the mask over the sets; the threshold goes to every t colour bar."""
    calls: list[tuple[str, float]] = []
    options: dict[str, dict] = {}

    def spy(kind):
        def record(*args, **kwargs):
            # the t limit: plot_stat_maps(vmax=), plot_cluster_maps(t_vmax=), write_viewer(.., vmax, ..)
            calls.append((kind, kwargs.get("vmax", kwargs.get("t_vmax", args[3]))))
            options[kind] = kwargs
            return args[4] if kind == "viewer" else figures.new_figure(1, 1)

        return record

    monkeypatch.setattr(figures, "plot_stat_maps", spy("tmap"))
    monkeypatch.setattr(figures, "plot_cluster_maps", spy("clusters"))
    monkeypatch.setattr(viewer, "write_viewer", spy("viewer"))
    ctx = context._analysis_context(out, _analysis(), tmp_path)
    adir = out / "analysis-mema"
    mask = load_volume(adir / "mask.nii.gz").data > 0
    t_maps = [load_volume(adir / "mema_results.nii.gz", f"{s}:t").data for s in ("chx", "keypress")]
    largest = max(float(np.abs(t[mask]).max()) for t in t_maps)
    assert sorted(kind for kind, _ in calls) == ["clusters", "tmap", "tmap", "viewer", "viewer"]
    assert len({limit for _, limit in calls}) == 1
    assert calls[0][1] == pytest.approx(max(largest, figures.THRESHOLD_ROOM * THRESHOLD))
    assert ctx["sets"][0]["viewer"]["file"] == "report/mema_chx_viewer.html"
    clusters_call = options["clusters"]
    assert clusters_call["threshold"] == pytest.approx(THRESHOLD)
    assert clusters_call["ee_vmax"] == pytest.approx(
        np.abs(load_volume(out / "analysis-mema" / "clust_bisided_EE_chx.nii.gz").data).max()
    )


def test_threshold_on_the_colour_bar_and_no_cluster_legend_without_clusters(out):
    adir = out / "analysis-mema"
    stat = load_volume(adir / "mema_results.nii.gz", "keypress:t")
    mask = load_volume(adir / "mask.nii.gz")
    fig = figures.plot_stat_maps(stat, mask, THRESHOLD, None, vmax=12.5)
    ticks = [sorted(np.round(ax.get_yticks(), 3)) for ax in fig.axes]
    assert [-12.5, -round(THRESHOLD, 3), 0.0, round(THRESHOLD, 3), 12.5] in ticks
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["faint: not significant (fades with |t|)"]


def test_viewer_page_is_offline_and_stable(out, tmp_path):
    adir = out / "analysis-mema"
    stat = load_volume(adir / "mema_results.nii.gz", "chx:t")
    mask = load_volume(adir / "mask.nii.gz")
    path = viewer.write_viewer(
        stat, mask, THRESHOLD, 9.0, tmp_path / "m_chx_viewer.html", title="chx: t"
    )
    page = path.read_text()
    assert viewer.external_references(page) == []
    assert "<link" not in page and not re.search(r"<script[^>]*\bsrc=", page)
    assert page.count("<script") >= 2 and "brainsprite" in page.lower()  # its JavaScript, inline
    assert not re.search(r"[0-9a-f]{32}", page) and 'id="3Dviewer-m_chx_viewer"' in page
    again = viewer.write_viewer(
        stat, mask, THRESHOLD, 9.0, tmp_path / "m_chx_viewer.html", title="chx: t"
    )
    assert again.read_text() == page


def test_offline_page_drops_network_links():
    page = (
        '<html><head><link rel="icon" href="https://example.org/f.ico" /></head><body>'
        '<div id="div_viewer-0123456789abcdef0123456789abcdef"></div></body></html>'
    )
    assert viewer.external_references(page)
    clean = viewer.offline_page(page, "set1")
    assert viewer.external_references(clean) == []
    assert 'id="div_viewer-set1"' in clean and "margin:0" in clean
    for fetching in ('<script src="https://x/y.js">', "<img src='//cdn/x.png'>",
                     "background: url(http://x/y.png)"):  # fmt: skip
        assert viewer.external_references(fetching), fetching


def test_coverage_figure_counts_the_subject_masks(out, tmp_path):
    """AFNI's six tutorial masks: 1274 voxels covered by some, 890 (the group mask) by all."""
    params = json.loads((out / "params.json").read_text())
    cov = context.coverage_context(out, params, tmp_path)
    assert cov["histogram"] == [122, 68, 24, 66, 104, 890]
    assert (cov["any"], cov["all"], cov["group_mask"], cov["limit"]) == (1274, 890, 890, 6)
    assert (cov["figure"].width, cov["figure"].height) == (1100, 290)
    assert (tmp_path / "group_mask_coverage.png").is_file()
    assert "at least 6 of 6 masks (-frac 1)" in cov["figure"].caption
    assert context.coverage_context(out, {"analyses": []}, tmp_path) is None


def test_coverage_summary_and_axial_cuts_skip_near_empty_slices():
    count = np.zeros((4, 4, 3), int)
    count[..., 1] = 3
    count[0, 0, 2] = 1
    summary = coverage_summary(count, count == 3, 3)
    assert summary == {
        "n_masks": 3,
        "histogram": [1, 0, 16],
        "any": 17,
        "all": 16,
        "group_mask": 16,
    }
    data = np.zeros((10, 10, 12), np.uint8)
    data[2:8, 2:8, 2:10] = 1
    data[4, 4, 1] = data[4, 4, 10] = 1  # a voxel or two at the ends: not worth a slice
    vol = Volume(data, np.eye(4))
    cuts = figures.axial_cuts(vol, 12)
    assert cuts == [float(z) for z in range(2, 10)]
