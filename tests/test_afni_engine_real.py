"""The afni engine's clusters.tsv hook: AFNI's own tutorial outputs, tabled by the native
clusterizer's core only where it reproduces AFNI's cluster report; and real AFNI end to end
against the native modules (marked ``afni``)."""

from __future__ import annotations

import shutil
import types
from pathlib import Path

import numpy as np
import pytest

from afni_group.engines.afni import runner
from test_afni_engine import ACF_LINES, SEED_SETS, _run, make_plan

PIPELINE = (
    Path(__file__).parent / "data" / "spec" / "afni_examples" / "pipeline" / "derivatives" / "afni"
)


def test_clusters_tsv_for_afni_results_uses_the_clusterize_core(tmp_path):
    """AFNI's own tutorial outputs: the table is written when the core reproduces AFNI's report
    rows, and not written (warning) when the threshold does not reproduce them."""
    from afni_group.programs.clusterize import files as cz

    group = PIPELINE / "GROUP_LEVEL"
    for name in ("mema_results.nii.gz", "mask.nii.gz", "clust_bisided_report_chx.txt",
                 "ClustSim.NN1_bisided.1D"):  # fmt: skip
        shutil.copy(group / name, tmp_path / name)
    plan = types.SimpleNamespace(
        thresholds=types.SimpleNamespace(sided="bisided", nn=1, pthr=0.001),
        stats_file="mema_results.nii.gz",
        stat_bricks=lambda s, analysis: (f"{s}:t", f"{s}:b"),
        clustsim_table="ClustSim.NN1_bisided.1D",
        cluster_files=lambda label: {
            "report": f"clust_bisided_report_{label}.txt",
            "clusters_tsv": f"clust_bisided_clusters_{label}.tsv",
        },
    )
    table = runner.load_clustsim_table(tmp_path / "ClustSim.NN1_bisided.1D")
    assert runner.write_clusters_tsv(plan, None, tmp_path, "chx", "4.586894", 4, table)
    written = (tmp_path / "clust_bisided_clusters_chx.tsv").read_text()
    expected = cz.run_clusterize(
        tmp_path / "mema_results.nii.gz",
        "chx:t",
        "chx:b",
        mask=tmp_path / "mask.nii.gz",
        thresholds=cz.Thresholds(values=(-4.586894, 4.586894)),
        clust_nvox=4,
    )
    cz.write_clusters_tsv(expected, tmp_path / "expected.tsv")
    ncol = len(cz.TSV_COLUMNS)  # the core's columns; cluster_table's extra ones follow
    rows = [line.split("\t") for line in written.splitlines()]
    assert [r[:ncol] for r in rows] == [
        line.split("\t") for line in (tmp_path / "expected.tsv").read_text().splitlines()
    ]
    assert len(rows) == 1 + expected.n_clusters > 1
    # the extra columns come from the values passed in: t brick (peak t) and table (p_fwe)
    extra = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    t = expected.threshold_brick  # the chx:t brick the file level read
    assert float(extra[0]["max_t"]) == pytest.approx(t[expected.cluster_map == 1].max(), abs=1e-4)
    assert all(row["p_fwe"] not in ("", "n/a") for row in extra)
    (tmp_path / "clust_bisided_clusters_chx.tsv").unlink()
    assert not runner.write_clusters_tsv(plan, None, tmp_path, "chx", "3.5", 4, table)
    assert not (tmp_path / "clust_bisided_clusters_chx.tsv").exists()


_AFNI_OK, _AFNI_REASON = runner.afni_available()


@pytest.mark.afni
@pytest.mark.skipif(not _AFNI_OK, reason=f"AFNI not available: {_AFNI_REASON}")
def test_afni_engine_end_to_end_matches_native(tmp_path):
    from afni_group import afni_io
    from afni_group.programs.acf.files import mean_acf
    from afni_group.programs.acf.formats import format_acf
    from afni_group.programs.csim_lookup import core as csim_lookup
    from afni_group.programs.mask_tool import files as mask_tool
    from afni_group.programs.mema import files as mema
    from afni_group.programs.p2dsetstat import files as p2dsetstat
    from afni_group.programs.p2dsetstat.formats import afni_printed_threshold

    # the spec's tutorial-shaped inputs, with blur_est files added in a copy
    proc = tmp_path / "bids" / "derivatives" / "afni"
    labels = ("01", "02", "03", "10", "11", "26")
    for i, label in enumerate(labels):
        src = PIPELINE / f"sub-{label}" / f"sub-{label}.results"
        dst = proc / f"sub-{label}" / f"sub-{label}.results"
        shutil.copytree(src, dst)
        (dst / f"blur_est.sub-{label}.1D").write_text(
            f"{ACF_LINES[i % 3]}   # err_reml ACF blur estimates\n"
        )
    plan = make_plan(root=tmp_path, labels=labels, n_cpus=1, clustsim_iter=2000)
    results = _run(plan, tmp_path)
    res = results[0]
    adir = plan.analysis_dir(plan.analyses[0])

    # ACF, mask and 3dMEMA agree with the native modules
    assert res["acf"] == [float(v) for v in format_acf(mean_acf(plan.blur_files))]
    native_mask = mask_tool.make_group_mask(plan.mask_inputs, tmp_path / "native_mask.nii.gz")
    np.testing.assert_array_equal(
        afni_io.read_dataset(adir / "mask.nii.gz").data,
        afni_io.read_dataset(native_mask).data,
    )
    sets = [
        mema.MemaSet(s.label, plan.subject_labels, plan.brick_specs("beta", s),
                     plan.brick_specs("tstat", s))
        for s in SEED_SETS
    ]  # fmt: skip
    native_mema = mema.run_mema(
        sets, tmp_path / "native_mema.nii.gz", design="groups", missing_data=0, progress=False
    )
    afni_out = afni_io.read_dataset(adir / "mema_results.nii.gz")
    native_out = afni_io.read_dataset(native_mema)
    assert afni_out.labels == native_out.labels
    np.testing.assert_allclose(afni_out.data, native_out.data, rtol=1e-4, atol=1e-5)

    # thresholds: the native lookup on AFNI's table and native p2dsetstat on AFNI's output
    table = adir / plan.clustsim_table
    assert res["cluster_size_threshold"] == csim_lookup.cluster_size_threshold(table, 0.001, 0.05)
    by_set = {r["set"]: r for r in res["results"]}
    for label in ("chx", "keypress"):
        expected = afni_printed_threshold(
            p2dsetstat.stat_threshold(adir / "mema_results.nii.gz", f"{label}:t", 0.001, "bisided")
        )
        assert by_set[label]["voxel_threshold"] == expected
        # the tsv is only written when the native clusterizer reproduces AFNI's report rows
        assert (adir / plan.cluster_files(label)["clusters_tsv"]).is_file()
    assert by_set["chx"]["voxel_threshold"] == 4.586894
    assert by_set["keypress"]["n_clusters"] == 0
    assert by_set["chx"]["n_clusters"] >= 1
    assert (plan.output_dir / "logs" / "afni_engine.log").is_file()
