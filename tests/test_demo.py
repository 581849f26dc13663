"""Tests of the demo dataset generator (``afni-group-demo``)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from afni_group.demo import cli as demo_cli
from afni_group.demo import noise as demo_noise
from afni_group.demo import truth as demo_truth
from afni_group.demo import writing as demo_writing
from afni_group.errors import EXIT_CANT_CREATE, EXIT_USAGE
from afni_group.programs.acf import core as acf_core

afni_io = pytest.importorskip("afni_group.afni_io")

N_SMALL = 12


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> tuple[Path, demo_truth.DemoTruth]:
    root = tmp_path_factory.mktemp("demo") / "bids"
    truth = demo_writing.write_demo(root, n_subjects=N_SMALL, seed=0, grid="small")
    return root, truth


def _results(root: Path, sid: str) -> Path:
    return root / "derivatives" / "afni" / sid / f"{sid}.results"


def _load(root: Path, truth: demo_truth.DemoTruth, what: str) -> list:
    names = {"stats": "stats.{sid}_REML+tlrc.HEAD", "mask": "mask_epi_anat.{sid}+tlrc.HEAD"}
    return [
        afni_io.read_dataset(_results(root, s.sid) / names[what].format(sid=s.sid))
        for s in truth.subjects
    ]


# ----------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("acf", "fwhm"),
    [((0.7, 3.0, 3.0), 6.39), ((0.74, 2.93, 10.64), 7.61), ((0.738202, 3.2154, 11.9615), 8.38)],
)
def test_effective_fwhm_matches_3dclustsim(acf, fwhm):
    # 3dClustSim prints FWHM = 2 rinv(0.5) with %.2f (spec 05 §3.2 examples)
    assert round(demo_truth.effective_fwhm(*acf), 2) == pytest.approx(fwhm, abs=0.011)


def test_smooth_noise_has_the_requested_acf():
    acf = (0.7, 3.0, 10.0)
    rng = np.random.Generator(np.random.PCG64(1))
    fields = demo_noise.smooth_noise(rng, (32, 32, 32), 3.0, acf, 4)
    assert fields.shape == (4, 32, 32, 32)
    assert fields.var() == pytest.approx(1.0, abs=0.1)
    for lag in (1, 2, 4):
        a, b = fields[:, :-lag], fields[:, lag:]
        corr = float((a * b).mean() / fields.var())
        assert corr == pytest.approx(float(acf_core.acf_model(3.0 * lag, *acf)), abs=0.06)


def test_stats_layout_is_the_19_brick_reml_bucket():
    layout = demo_writing.stats_layout(440)
    assert len(layout) == 19
    labels = [lab for lab, _, _ in layout]
    assert labels[0] == "Full_Fstat"
    assert labels[13:19] == [
        "left_vs_right_chx#0_Coef",
        "left_vs_right_chx#0_Tstat",
        "left_vs_right_chx_Fstat",
        "left_vs_right_press#0_Coef",
        "left_vs_right_press#0_Tstat",
        "left_vs_right_press_Fstat",
    ]
    assert layout[0][1:] == (4, (4.0, 440.0))
    assert layout[1][1:] == (0, ())  # leftchx#0_Coef
    assert layout[2][1:] == (3, (440.0,))  # leftchx#0_Tstat
    assert layout[3][1:] == (4, (1.0, 440.0))  # leftchx_Fstat


def test_format_blur_est_line_layout():
    text = demo_writing.format_blur_est(
        [0.8, 3.3, 13.0, 8.4], [0.7, 3.0, 10.0, 7.8], [0.727118, 2.91228, 10.7089, 7.6267]
    )
    lines = text.splitlines()
    assert lines[-1] == "0.727118 2.91228 10.7089 7.6267   # err_reml ACF blur estimates"
    assert lines[0] == "0 0 0 0   # epits FWHM blur estimates"
    assert text.endswith("\n")


def test_planted_truth_is_cheap_and_prefix_stable():
    t12 = demo_truth.planted_truth(12, seed=0)
    t5 = demo_truth.planted_truth(5, seed=0)
    assert [s.label for s in t12.subjects] == [f"{i:02d}" for i in range(1, 13)]
    assert t5.subjects == t12.subjects[:5]  # per-subject streams
    assert demo_truth.planted_truth(12, seed=1).subjects != t12.subjects
    for s in t12.subjects:
        assert 0.5 <= s.acf[0] <= 0.9 and 2.0 < s.acf[1] < 4.0 and 7.0 < s.acf[2] < 13.0
        assert 428 <= s.dof <= 442
    chx = t12.blob("chx")
    assert chx.centre_mni[1] == -85.0 and chx.effect_pct == 1.0
    assert t12.blob("keypress").centre_mni == (-38.0, -22.0, 56.0)


def test_grid_geometry_is_rai_mni():
    g = demo_truth.GRIDS["3mm"]
    assert g.shape == (53, 64, 50)
    orient, origin, delta = afni_io.afni_geometry(g.affine)
    assert list(orient) == [0, 3, 4]  # RAI
    assert list(origin) == [-78.0, -75.0, -63.0]
    assert list(delta) == [3.0, 3.0, 3.0]
    x, y, z = g.mni_coords()
    ijk = g.ijk_of((12.0, -85.0, 4.0))
    assert (x[ijk], y[ijk], z[ijk]) == (12.0, -84.0, 3.0)
    # MNI (RAS) coordinate of a voxel equals the affine applied to its index
    assert np.allclose(g.affine @ [*ijk, 1], [x[ijk], y[ijk], z[ijk], 1])


# ----------------------------------------------------------------------------- the dataset


def test_files_exist(small_demo):
    root, truth = small_demo
    for name in ("README", "dataset_description.json", "participants.tsv"):
        assert (root / name).is_file()
    assert not (root / "derivatives" / "afni" / "dataset_description.json").exists()
    for s in truth.subjects:
        res = _results(root, s.sid)
        for name in (
            f"stats.{s.sid}_REML+tlrc.HEAD",
            f"stats.{s.sid}_REML+tlrc.BRIK",
            f"mask_epi_anat.{s.sid}+tlrc.HEAD",
            f"mask_epi_anat.{s.sid}+tlrc.BRIK",
            f"blur_est.{s.sid}.1D",
            "out.ss_review_uvars.json",
        ):
            assert (res / name).is_file(), name
        assert len(list((root / s.sid / "func").glob("*_bold.nii.gz"))) == 2
    assert set(truth.files) == {p for p in root.rglob("*") if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = demo_writing.write_demo(tmp_path / "a", n_subjects=3, seed=7, grid="small")
    demo_writing.write_demo(tmp_path / "b", n_subjects=3, seed=7, grid="small")
    demo_writing.write_demo(tmp_path / "c", n_subjects=3, seed=8, grid="small")
    da, db, dc = (_digest(tmp_path / n) for n in "abc")
    assert len(da) == len(a.files) and da == db
    key = "derivatives/afni/sub-01/sub-01.results/stats.sub-01_REML+tlrc.BRIK"
    assert dc[key] != da[key]


def test_stats_read_back(small_demo):
    root, truth = small_demo
    layout = None
    for s, dset in zip(truth.subjects, _load(root, truth, "stats"), strict=True):
        layout = demo_writing.stats_layout(s.dof)
        assert dset.labels == [lab for lab, _, _ in layout]
        assert dset.stat_codes == [code for _, code, _ in layout]
        assert dset.stat_params == [params for _, _, params in layout]
        assert dset.data.dtype == np.float32 and dset.nvals == 19
        assert dset.view == "tlrc" and dset.space == "MNI"
        assert np.allclose(dset.affine, truth.grid.affine)
        assert dset.attributes["TYPESTRING"].rstrip("\0") == "3DIM_HEAD_FUNC"
        assert list(dset.attributes["SCENE_DATA"][:3]) == [2, 11, 1]
        t = dset.brick(dset.index_of("left_vs_right_chx#0_Tstat"))
        f = dset.brick(dset.index_of("left_vs_right_chx_Fstat"))
        assert np.allclose(f, t.astype(np.float64) ** 2, rtol=1e-5)
    assert layout is not None


def test_nibabel_reads_the_head(small_demo):
    nib = pytest.importorskip("nibabel")
    root, truth = small_demo
    img = nib.load(_results(root, "sub-01") / "stats.sub-01_REML+tlrc.HEAD")
    assert img.shape == (*truth.grid.shape, 19)
    assert np.allclose(img.affine, truth.grid.affine)
    assert img.header.get_volume_labels()[14] == "left_vs_right_chx#0_Tstat"


def test_masks_differ_and_stats_are_zero_outside_coverage(small_demo):
    root, truth = small_demo
    masks = [m.brick(0) for m in _load(root, truth, "mask")]
    stats = _load(root, truth, "stats")
    assert all(m.dtype == np.uint8 and set(np.unique(m)) == {0, 1} for m in masks)
    inter = np.logical_and.reduce([m > 0 for m in masks])
    counts = [int(m.sum()) for m in masks]
    assert len(set(counts)) > 1
    assert all(0.8 * c < inter.sum() < c for c in counts)  # a bit smaller than each
    for m, st in zip(masks, stats, strict=True):
        nonzero = np.any(st.data != 0, axis=-1)
        assert np.all(nonzero[m > 0])  # the EPI covers the brain
        assert np.any(nonzero & (m == 0))  # afni_proc does not mask the stats
        assert not nonzero.all()  # ... but outside the EPI field it is exactly 0
    assert masks[0].sum() > 0.1 * masks[0].size


def test_blur_est_format(small_demo):
    root, truth = small_demo
    num = r"-?\d+(\.\d+)?(e[-+]\d+)?"
    acf_line = rf"^{num} {num} {num} {num}   # (\S+) ACF blur estimates$"
    for s in truth.subjects:
        lines = (_results(root, s.sid) / f"blur_est.{s.sid}.1D").read_text().split("\n")
        assert lines[-1] == "" and len(lines) == 7
        for i, label in enumerate(("epits", "errts", "err_reml")):
            assert lines[2 * i] == f"0 0 0 0   # {label} FWHM blur estimates"
            m = re.match(acf_line, lines[2 * i + 1])
            assert m and m.group(9) == label, lines[2 * i + 1]
            for tok in lines[2 * i + 1].split("   #")[0].split(" "):
                assert tok == f"{float(tok):g}"  # %g formatting
        a, b, c, d = (float(v) for v in lines[5].split()[:4])
        assert (a, b, c) == s.acf and d == s.fwhm
    means = np.mean([s.acf for s in truth.subjects], axis=0)
    assert np.allclose(truth.mean_acf, means)


def test_uvars(small_demo):
    root, truth = small_demo
    for s in truth.subjects:
        res = _results(root, s.sid)
        uv = json.loads((res / "out.ss_review_uvars.json").read_text())
        assert uv["subj"] == s.sid
        assert (res / uv["stats_dset"]).is_file()
        assert (res / uv["mask_dset"]).is_file()
        assert uv["final_view"] == "tlrc"
        assert uv["nt_orig"] - uv["nt_applied"] == s.n_censored
        assert all("/" not in str(v) for v in uv.values())  # relative names only


def test_participants_and_bids_layout(small_demo):
    bids = pytest.importorskip("bids")
    root, truth = small_demo
    rows = (root / "participants.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["participant_id", "age", "sex", "group"]
    assert [r.split("\t")[0] for r in rows[1:]] == [s.sid for s in truth.subjects]
    layout = bids.BIDSLayout(str(root))
    assert layout.get_subjects() == [s.label for s in truth.subjects]
    assert layout.get_tasks() == ["checks"]
    assert len(layout.get(suffix="bold", extension=".nii.gz")) == 2 * N_SMALL


def test_planted_blobs_are_where_the_truth_says(small_demo):
    root, truth = small_demo
    stats = _load(root, truth, "stats")
    masks = np.logical_and.reduce([m.brick(0) > 0 for m in _load(root, truth, "mask")])
    x, y, z = truth.grid.mni_coords()
    for blob in truth.blobs:
        betas = np.stack([d.brick(d.index_of(blob.beta_label)) for d in stats])
        mean = betas.mean(axis=0)
        r = np.sqrt(sum((c - c0) ** 2 for c, c0 in zip((x, y, z), blob.centre_mni, strict=True)))
        near = masks & (r <= blob.sigma_mm)
        far = masks & (r > 4 * blob.sigma_mm)
        assert near.sum() >= 3
        assert mean[near].mean() > 0.4 * blob.effect_pct
        assert abs(mean[far].mean()) < 0.2 * blob.effect_pct
    # the strong effect: the group-mean peak is within ~2 voxels of the planted centre
    chx = truth.blob("chx")
    betas = np.stack([d.brick(d.index_of(chx.beta_label)) for d in stats]).mean(axis=0)
    peak = np.unravel_index(np.argmax(np.where(masks, betas, -np.inf)), betas.shape)
    dist = np.linalg.norm(np.array([x[peak], y[peak], z[peak]]) - chx.centre_mni)
    assert dist <= 2 * truth.grid.voxel_mm
    # and the subjects' t-values there are realistic (about 2-8)
    t = np.array([d.brick(d.index_of(chx.tstat_label))[peak] for d in stats])
    assert 2.0 < np.median(t) < 8.0


def test_default_grid_writes_3mm(tmp_path):
    truth = demo_writing.write_demo(tmp_path / "d", n_subjects=2, seed=0)
    dset = afni_io.read_dataset(_results(tmp_path / "d", "sub-02") / "stats.sub-02_REML+tlrc.HEAD")
    assert dset.shape == (53, 64, 50) and dset.voxel_sizes == (3.0, 3.0, 3.0)
    mask = afni_io.read_dataset(
        _results(tmp_path / "d", "sub-02") / "mask_epi_anat.sub-02+tlrc.HEAD"
    )
    assert list(mask.attributes["SCENE_DATA"][:3]) == [2, 2, 0]
    assert truth.grid.name == "3mm"


# ----------------------------------------------------------------------------- CLI


def test_main_writes_and_refuses_non_empty(tmp_path, capsys):
    out = tmp_path / "cli"
    assert demo_cli.main([str(out), "--subjects", "2", "--grid", "small", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "chx" in printed
    assert demo_cli.main([str(out), "--subjects", "2", "--grid", "small"]) == EXIT_CANT_CREATE
    assert "not empty" in capsys.readouterr().err
    assert demo_cli.main([str(out), "--subjects", "2", "--grid", "small", "--force"]) == 0


def test_main_leaves_the_same_demo_alone(tmp_path, capsys):
    """README's quick start runs twice: the second afni-group-demo keeps the demo (and results)."""
    out = tmp_path / "again"
    args = [str(out), "--subjects", "2", "--grid", "small"]
    assert demo_cli.main(args) == 0
    results = out / "derivatives" / "afni-group" / "params.json"
    results.parent.mkdir(parents=True)
    results.write_text("{}")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    capsys.readouterr()
    assert demo_cli.main(args) == 0
    printed = capsys.readouterr().out
    assert f"{out} already holds this demo (" in printed and "left alone" in printed
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".afni-group-demo-")]
    (out / "participants.tsv").write_text("changed\n")
    assert demo_cli.main(args) == EXIT_CANT_CREATE
    assert "participants.tsv differs" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["--subjects", "1"], ["--seed", "-1"], ["--grid", "2mm"], ["--subjects", "x"], ["--sub", "2"]],
)
def test_main_usage_errors(tmp_path, args, capsys):
    assert demo_cli.main([str(tmp_path / "u"), *args]) == EXIT_USAGE
    assert capsys.readouterr().err.strip()
    assert not (tmp_path / "u").exists()


def test_main_refuses_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    assert demo_cli.main([str(target), "--grid", "small"]) == EXIT_CANT_CREATE


def test_sessions_flat_layout_and_planted_differences(tmp_path, capsys):
    plain = demo_writing.write_demo(tmp_path / "p", n_subjects=2, seed=4, grid="small")
    argv = [str(tmp_path / "s"), "--subjects", "2", "--grid", "small", "--seed", "4",
            "--sessions", "pre", "post", "--layout", "flat", "--group-effect", "0.5",
            "--session-effect", "1"]  # fmt: skip
    assert demo_cli.main(argv) == 0
    assert "derivatives/afni/sub-*_ses-*.results/" in capsys.readouterr().out
    afni = tmp_path / "s" / "derivatives" / "afni"
    assert sorted(p.name for p in afni.iterdir()) == [
        f"sub-0{i}_ses-{s}.results" for i in (1, 2) for s in ("post", "pre")
    ]
    assert (tmp_path / "s" / "sub-02" / "ses-post" / "func").is_dir()
    uvars = json.loads((afni / "sub-02_ses-pre.results" / "out.ss_review_uvars.json").read_text())
    assert uvars["subj"] == "sub-02_ses-pre"
    assert uvars["stats_dset"] == "stats.sub-02_ses-pre_REML+tlrc.HEAD"

    def chx(root: Path, name: str) -> np.ndarray:
        dset = afni_io.read_dataset(root / name)
        return dset.brick(dset.index_of("leftchx#0_Coef"))

    # sub-01 (control), first session: the single-session demo's noise and effect exactly
    single = chx(_results(tmp_path / "p", "sub-01"), "stats.sub-01_REML+tlrc.HEAD")
    first = chx(afni / "sub-01_ses-pre.results", "stats.sub-01_ses-pre_REML+tlrc.HEAD")
    np.testing.assert_array_equal(first, single)
    # sub-02 (patient): +0.5 % in pre, +1.5 % in post at the blob, other noise in post
    centre = plain.grid.ijk_of(plain.subjects[1].blob_centres["chx"])
    base = chx(_results(tmp_path / "p", "sub-02"), "stats.sub-02_REML+tlrc.HEAD")[centre]
    pre = chx(afni / "sub-02_ses-pre.results", "stats.sub-02_ses-pre_REML+tlrc.HEAD")
    post = chx(afni / "sub-02_ses-post.results", "stats.sub-02_ses-post_REML+tlrc.HEAD")
    assert pre[centre] - base == pytest.approx(0.5, abs=0.05)
    assert 0.8 < post[centre] - base < 2.2 and not np.array_equal(post, pre)
    assert "--sessions pre post --layout flat" in (tmp_path / "s" / "README").read_text()
