"""The public Python API (afni_group.__all__): its values equal the files the drop-in programs
write on the real AFNI example data, and the README example runs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import afni_group as ag
from afni_group import afni_io
from afni_group.programs.cli import clusterize as clusterize_cli
from afni_group.programs.cli import clustsim as clustsim_cli
from afni_group.programs.cli import mask_tool as mask_tool_cli
from afni_group.programs.cli import p2dsetstat as p2dsetstat_cli
from afni_group.programs.clusterize import files as cz
from afni_group.programs.csim_lookup import core as csim_lookup
from afni_group.programs.mema.files import MemaSet, run_mema

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = Path(__file__).parent / "data" / "spec" / "afni_examples" / "pipeline"
AFNI_DIR = PIPELINE / "derivatives" / "afni"
GROUP = AFNI_DIR / "GROUP_LEVEL"
SUBJECTS = ["sub-01", "sub-02", "sub-03", "sub-10", "sub-11", "sub-26"]
SETS = (("chx", "chx"), ("keypress", "press"))
PIPE_ACF = (0.742692, 2.93065, 10.6363)


def _stats(sid: str) -> Path:
    return AFNI_DIR / sid / f"{sid}.results" / f"stats.{sid}_REML+tlrc.HEAD"


def test_all_is_declared_and_importable():
    for name in ag.__all__:
        assert getattr(ag, name) is not None, name
    for name in ("mema", "group_mask", "mean_acf", "clustsim", "p_to_stat", "clusterize"):
        assert name in ag.__all__
    with pytest.raises(AttributeError):
        ag.no_such_name  # noqa: B018


def test_readme_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    found = namespace["found"]
    assert found.n_clusters >= 1
    largest = found.table[0]
    assert largest.n_voxels == int((found.cluster_map == 1).sum()) >= namespace["size"]
    assert largest.tail == "pos"
    written = afni_io.read_dataset(tmp_path / "mema_results.nii.gz")
    assert written.labels == ["faces:b", "faces:t", "I2", "tau", "QE:Chisq"]
    np.testing.assert_array_equal(written.data, namespace["maps"].data)


def test_mema_equals_run_mema_file(tmp_path):
    sets = [
        MemaSet(
            label,
            SUBJECTS,
            [f"{_stats(s)}[left_vs_right_{cond}#0_Coef]" for s in SUBJECTS],
            [f"{_stats(s)}[left_vs_right_{cond}#0_Tstat]" for s in SUBJECTS],
        )
        for label, cond in SETS
    ]
    path = run_mema(sets, tmp_path / "mema.nii.gz", missing_data=0, progress=False)
    written = afni_io.read_dataset(path)

    dsets = [afni_io.read_dataset(_stats(s)) for s in SUBJECTS]
    betas = [[d.brick(d.index_of(f"left_vs_right_{c}#0_Coef")) for d in dsets] for _, c in SETS]
    tstats = [[d.brick(d.index_of(f"left_vs_right_{c}#0_Tstat")) for d in dsets] for _, c in SETS]
    maps = ag.mema(
        betas,
        tstats,
        set_labels=["chx", "keypress"],
        missing_data=True,
        affine=dsets[0].affine,
        space=dsets[0].space,
    )
    assert maps.labels == written.labels
    assert maps.stat_codes == written.stat_codes and maps.stat_params == written.stat_params
    np.testing.assert_array_equal(maps.data, written.data)


def test_group_mask_equals_3dmask_tool_file(tmp_path):
    masks = sorted(AFNI_DIR.glob("sub-*/sub*results/mask_epi_anat.*.HEAD"))
    out = tmp_path / "mask.nii.gz"
    assert (
        mask_tool_cli.cli_main(["-prefix", str(out), "-input", *map(str, masks), "-frac", "1.0"])
        == 0
    )
    mask = ag.group_mask([afni_io.read_dataset(m).data for m in masks], frac=1.0)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, afni_io.read_dataset(out).brick(0))


def test_mean_acf_of_files_and_lines(tmp_path):
    lines = ["0.727118 2.91228 10.7089 7.6267", "0.746814 2.93786 10.8411 7.7213"]
    files = []
    for i, line in enumerate(lines):
        f = tmp_path / f"blur_est.sub-{i}.1D"
        f.write_text(f"{line}  # err_reml ACF blur estimates\n")
        files.append(f)
    from_files = ag.mean_acf(files)
    assert from_files == ag.mean_acf([f"{line} # err_reml ACF" for line in lines])
    assert from_files == pytest.approx(((0.727118 + 0.746814) / 2, 2.92507, 10.775), abs=1e-9)


def test_clustsim_tables_equal_3dclustsim_files(tmp_path, monkeypatch):
    shutil.copy(GROUP / "mask.nii.gz", tmp_path / "mask.nii.gz")
    monkeypatch.chdir(tmp_path)
    acf = [str(v) for v in PIPE_ACF]
    argv = ["-both", "-mask", "mask.nii.gz", "-acf", *acf, "-iter", "2000", "-seed", "7"]
    assert clustsim_cli.cli_main([*argv, "-prefix", "ClustSim", "-quiet"]) == 0
    mask = afni_io.read_dataset("mask.nii.gz")
    tables = ag.clustsim(mask.brick(0), mask.voxel_sizes, PIPE_ACF, iterations=2000, seed=7)
    for nn in (1, 2, 3):
        for sided in ("1sided", "2sided", "bisided"):
            table_file = f"ClustSim.NN{nn}_{sided}.1D"
            for pthr, alpha in ((0.001, 0.05), (0.01, 0.1), (0.0001, 0.01)):
                from_file = csim_lookup.cluster_size_threshold(table_file, pthr, alpha)
                size = ag.cluster_size_threshold(tables, pthr, alpha, nn, sided)
                assert size == from_file, table_file
    with pytest.raises(ValueError, match="pthr"):
        ag.cluster_size_threshold(tables, 0.0123, 0.05)


def test_p_to_stat_equals_p2dsetstat(capsys):
    spec = f"{GROUP / 'mema_results.nii.gz'}[chx:t]"
    assert p2dsetstat_cli.cli_main(["-quiet", "-pval", "0.001", "-bisided", "-inset", spec]) == 0
    printed = capsys.readouterr().out
    dset = afni_io.read_dataset(spec)
    value = ag.p_to_stat(0.001, dset.stat_codes[0], dset.stat_params[0], "bisided")
    assert "%.6f" % value == printed == "4.586894"


def test_clusterize_equals_3dclusterize_files(tmp_path, capsys):
    for name in ("mema_results.nii.gz", "mask.nii.gz"):
        shutil.copy(GROUP / name, tmp_path / name)
    mema_path, mask_path = tmp_path / "mema_results.nii.gz", tmp_path / "mask.nii.gz"
    argv = [
        "-inset", str(mema_path), "-ithr", "chx:t", "-idat", "chx:b", "-mask", str(mask_path),
        "-bisided", "-4.586894", "4.586894", "-NN", "1", "-clust_nvox", "4",
        "-pref_map", str(tmp_path / "map.nii.gz"), "-pref_dat", str(tmp_path / "ee.nii.gz"),
    ]  # fmt: skip
    assert clusterize_cli.cli_main(argv) == 0
    capsys.readouterr()
    file_result = cz.run_clusterize(
        mema_path, "chx:t", "chx:b", mask=mask_path,
        thresholds=cz.Thresholds(values=(-4.586894, 4.586894)), clust_nvox=4,
    )  # fmt: skip
    cz.write_clusters_tsv(file_result, tmp_path / "clusters.tsv")

    maps = afni_io.read_dataset(mema_path)
    t, b = maps.brick(maps.index_of("chx:t")), maps.brick(maps.index_of("chx:b"))
    mask = afni_io.read_dataset(mask_path).brick(0) != 0
    found = ag.clusterize(
        t, b, maps.affine, thresholds=(-4.586894, 4.586894), mask=mask, min_nvox=4
    )
    assert found.n_clusters == file_result.n_clusters > 0
    np.testing.assert_array_equal(
        found.cluster_map, afni_io.read_dataset(tmp_path / "map.nii.gz").brick(0)
    )
    np.testing.assert_array_equal(
        found.data_map(b), afni_io.read_dataset(tmp_path / "ee.nii.gz").brick(0)
    )
    assert found.table == file_result.table
    rows = (tmp_path / "clusters.tsv").read_text().splitlines()[1:]
    assert [r.split("\t")[:2] for r in rows] == [
        [str(r.cluster_id), str(r.n_voxels)] for r in found.table
    ]
    with pytest.raises(ValueError, match="sided"):
        ag.clusterize(t, b, thresholds=3.0, sided="3sided")


def test_read_write_dataset_round_trip(tmp_path):
    dset = ag.read_dataset(f"{GROUP / 'mema_results.nii.gz'}[chx:t]")
    out = ag.write_dataset(dset, tmp_path / "t.nii.gz")
    back = ag.read_dataset(out)
    np.testing.assert_array_equal(back.data, dset.data)
    assert back.labels == ["chx:t"] and back.stat_codes == [ag.STAT_TTEST]


def test_tests_are_self_contained():
    """No test reads the development machine's shared spec folder: fixtures live in tests/data."""
    here = Path(__file__).parent
    shared = "/work/" + "shared"  # (spelt in two parts so that this file does not match)
    parent = '/ "' + 'shared"'  # the spec folder next to the checkout
    offenders = [
        p.name
        for p in sorted(here.glob("*.py"))
        if shared in p.read_text("utf-8") or parent in p.read_text("utf-8")
    ]
    assert offenders == [], f"tests reading the shared spec folder: {offenders}"
    assert (PIPELINE / "derivatives" / "afni" / "GROUP_LEVEL" / "mema_results.nii.gz").is_file()
