"""3dClusterize against real AFNI_26.2.03 outputs (spec testdata/afni_examples).

Every report of ``clusterize_small/`` is re-made from its line in ``commands.txt`` and must be
byte-identical; so must the tutorial-shaped pipeline's chx/keypress reports, and the cluster
maps must hold the same values, datum and labels.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from afni_group import afni_io
from afni_group.programs.cli.clusterize import cli_main
from afni_group.programs.clusterize import files as cz

TESTDATA = Path(__file__).parent / "data" / "spec"
SMALL = TESTDATA / "afni_examples" / "clusterize_small"
GROUP = TESTDATA / "afni_examples" / "pipeline" / "derivatives" / "afni" / "GROUP_LEVEL"


def small_commands() -> list[tuple[list[str], str]]:
    if not SMALL.is_dir():
        return []
    out = []
    for line in (SMALL / "commands.txt").read_text().splitlines():
        command, report = line.split(" > ")
        out.append((shlex.split(command)[1:], report.strip()))
    return out


@pytest.fixture()
def small_copy(tmp_path: Path, monkeypatch) -> Path:
    for name in os.listdir(SMALL):
        if not name.startswith(("report_", "map.", "dat.")) and name != "commands.txt":
            shutil.copy(SMALL / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("argv", "report"), small_commands(), ids=lambda x: str(x)[:40])
def test_real_small_reports(small_copy, capsys, argv, report):
    assert cli_main(argv) == 0
    assert capsys.readouterr().out == (SMALL / report).read_text()


def test_real_small_maps(small_copy, capsys):
    argv, _ = small_commands()[0]
    assert "-pref_map" in argv
    assert cli_main(argv) == 0
    for name in ("map.nii.gz", "dat.nii.gz"):
        ours, real = afni_io.read_dataset(name), afni_io.read_dataset(SMALL / name)
        assert ours.data.dtype == real.data.dtype
        assert np.array_equal(ours.data, real.data)
        assert ours.labels == real.labels
        assert ours.stat_codes == real.stat_codes
        assert np.allclose(ours.affine, real.affine)
    cmap = afni_io.read_dataset("map.nii.gz")
    assert int(cmap.attributes["INT_CMAP"][0]) == 1
    assert "BRICK_KEYWORDS" not in cmap.attributes


@pytest.fixture()
def group_copy(tmp_path: Path, monkeypatch) -> Path:
    for name in ("mema_results.nii.gz", "mask.nii.gz"):
        shutil.copy(GROUP / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def group_run(label: str) -> cz.ClusterizeResult:
    # The tutorial's command with the thresholds printed by 1d_tool.py (4) and p2dsetstat.
    return cz.run_clusterize(
        "mema_results.nii.gz",
        f"{label}:t",
        f"{label}:b",
        mask="mask.nii.gz",
        thresholds=cz.Thresholds("bisided", (-4.586894, 4.586894)),
        nn=1,
        clust_nvox=4,
        pref_map=f"clust_bisided_map_{label}.nii.gz",
        pref_dat=f"clust_bisided_EE_{label}.nii.gz",
    )


def test_real_pipeline_chx(group_copy):
    result = group_run("chx")
    assert result.report_text == (GROUP / "clust_bisided_report_chx.txt").read_text()
    assert result.n_clusters == 2
    assert [(c.n_voxels, c.tail) for c in result.clusters] == [(31, "pos"), (11, "neg")]
    for ours, real in (
        (result.map_path, GROUP / "clust_bisided_map_chx.nii.gz"),
        (result.dat_path, GROUP / "clust_bisided_EE_chx.nii.gz"),
    ):
        a, b = afni_io.read_dataset(ours), afni_io.read_dataset(real)
        assert a.data.dtype == b.data.dtype and np.array_equal(a.data, b.data)
        assert a.labels == b.labels and a.space == b.space == "MNI"
        assert np.array_equal(a.affine, b.affine)


def test_real_pipeline_keypress_has_no_clusters(group_copy):
    result = group_run("keypress")
    assert result.report_text == (GROUP / "clust_bisided_report_keypress.txt").read_text()
    assert result.n_clusters == 0
    assert result.map_path is None and result.dat_path is None
    assert not list(group_copy.glob("clust_*"))


def test_real_pipeline_clusters_tsv(group_copy):
    result = group_run("chx")
    lines = cz.write_clusters_tsv(result, "clust_bisided_clusters_chx.tsv").read_text().splitlines()
    assert lines[0].split("\t") == cz.TSV_COLUMNS
    first = dict(zip(cz.TSV_COLUMNS, lines[1].split("\t"), strict=True))
    # the report's first row: 31 voxels, CM (-6.0, -6.8, 1.5) RAI, Max Int 1.6878 at (-6.2,-6.2,1.2)
    assert first["n_voxels"] == "31" and first["volume_mm3"] == "484.375"
    assert round(float(first["cm_x_rai"]), 1) == -6.0 and round(float(first["cm_y_rai"]), 1) == -6.8
    assert float(first["cm_x_lpi"]) == -float(first["cm_x_rai"])
    assert float(first["peak_x_rai"]) == -6.25 and float(first["peak_x_lpi"]) == 6.25
    assert float(first["peak_value"]) == pytest.approx(1.6878, abs=1e-4)


def test_scaled_short_brick_factor_applied_only_with_idat(small_copy):
    """exs+tlrc is a short brick with factor 0.000153 (07 §5.4 quirk)."""
    three = cz.Thresholds(values=(-3.0, 3.0))
    raw = cz.run_clusterize("exs+tlrc", 0, None, thresholds=three)
    scaled = cz.run_clusterize("exs+tlrc", 0, 0, thresholds=three)
    factor = float(afni_io.read_dataset("exs+tlrc").attributes["BRICK_FLOAT_FACS"][0])
    assert [c.n_voxels for c in raw.clusters] == [c.n_voxels for c in scaled.clusters] == [3, 2, 1]
    assert raw.clusters[0].stats.mean == 23374.0  # stored integers, as AFNI reports them
    assert scaled.clusters[0].stats.mean == pytest.approx(23374.0 * factor, rel=1e-6)
    assert scaled.clusters[1].stats.peak_value == pytest.approx(-32767 * factor, rel=1e-6)
    assert "#[ Voxel datum type    = short ]" in scaled.report_text
