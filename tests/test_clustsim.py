"""Native 3dClustSim: grid, noise, all-thresholds clustering, tables and file layouts (spec 05)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from afni_group.errors import InputDataError, UsageError
from afni_group.programs.acf.core import acf_model_float32
from afni_group.programs.checks import SIDEDNESS
from afni_group.programs.cli.clustsim import cli_main
from afni_group.programs.clustsim import files as cs
from afni_group.programs.clustsim.formats import (
    parse_clustsim_1d,
    parse_clustsim_niml,
    read_clustsim_table,
)
from afni_group.programs.clustsim.kernels import ClusterWork, gather_scaled

EX = Path(__file__).parent / "data" / "spec" / "afni_examples"
GROUP = EX / "pipeline" / "derivatives" / "afni" / "GROUP_LEVEL"
PIPE_ACF = (0.742692, 2.93065, 10.6363)
needs_data = pytest.mark.skipif(not GROUP.is_dir(), reason="AFNI example data not available")


# ---------------------------------------------------------------- grid and kernel (spec §3.2)


@pytest.mark.parametrize(
    ("shape", "d", "acf", "radius", "fwhm", "padded", "kernel"),
    [
        ((97, 115, 97), 2.0, (0.74, 2.93, 10.64), 27.29, 7.61, (128, 160, 128), (63, 79, 63)),
        ((64, 64, 32), 3.5, (0.738202, 3.2154, 11.9615), 30.76, 8.38, (96, 96, 60), (47, 47, 29)),
        ((16, 8, 4), 3.0, (0.7, 3, 3), 9.23, 6.39, (24, 16, 16), (11, 7, 7)),
        ((14, 16, 12), 2.5, PIPE_ACF, 27.17, 7.61, (40, 40, 40), (19, 19, 19)),
    ],
)
def test_padded_grid_matches_afni(shape, d, acf, radius, fwhm, padded, kernel):
    grid = cs.noise_grid(shape, (d, d, d), acf)
    assert round(grid.radius, 2) == radius
    assert round(grid.fwhm, 2) == fwhm
    assert grid.padded == padded
    assert cs.spectral_weights(grid)[1] == kernel


def test_fft_lengths():
    seq = sorted({cs.fft_length(n) for n in range(16, 257)})
    assert seq == [16, 20, 24, 30, 32, 40, 48, 60, 64, 80, 96, 120, 128, 160, 192, 240, 256]
    assert [cs.fft_length(n) for n in (16, 17, 21, 25, 31, 33, 41, 97, 121, 161)] == [
        16, 20, 24, 30, 32, 40, 48, 120, 128, 192,
    ]  # fmt: skip


def test_weights_are_mirrored_and_zero_at_dc_and_nyquist():
    grid = cs.noise_grid((14, 16, 12), (2.5, 2.5, 2.5), PIPE_ACF)
    w, kernel = cs.spectral_weights(grid)
    n = grid.padded[0]
    assert w[0, 0, 0] == 0
    assert np.all(w[n // 2] == 0) and np.all(w[:, n // 2] == 0) and np.all(w[:, :, n // 2] == 0)
    np.testing.assert_array_equal(w[1:, 1:, 1:], w[1:, 1:, 1:][::-1, ::-1, ::-1])
    assert np.count_nonzero(w[: kernel[0], : kernel[1], : kernel[2]]) > 0.9 * np.prod(kernel)


# ---------------------------------------------------------------- noise (spec §3.4–3.6)


def test_noise_unit_variance_and_acf_follows_model():
    shape, d, acf = (40, 40, 40), 2.5, (0.6, 3.0, 6.0)
    grid = cs.noise_grid(shape, (d, d, d), acf)
    tr = cs.grid_transforms(grid, exact_fft=True)
    w, _ = cs.spectral_weights(grid, tr)
    src = cs.NoiseSource(grid, w, tr, seed=5)
    everything = np.arange(np.prod(shape))
    lags = [1, 2, 4]
    corr = {lag: [] for lag in lags}
    variances = []
    for k in range(6):
        pair = src.pair(k)
        for imag in (False, True):
            v = gather_scaled(pair, imag, everything).reshape(shape).astype(np.float64)
            assert np.mean(v * v) == pytest.approx(1.0, rel=1e-5)  # unit RMS by construction
            variances.append(v.var())
            for lag in lags:
                for axis in range(3):
                    a = np.moveaxis(v, axis, 0)
                    corr[lag].append(np.mean(a[:-lag] * a[lag:]) / np.mean(v * v))
    assert np.mean(variances) == pytest.approx(1.0, abs=0.05)
    for lag in lags:
        model = float(acf_model_float32(lag * d, *acf))
        assert np.mean(corr[lag]) == pytest.approx(model, abs=0.06), lag


def test_real_and_imaginary_fields_are_independent():
    grid = cs.noise_grid((24, 24, 24), (3.0, 3.0, 3.0), (0.7, 3, 3))
    tr = cs.grid_transforms(grid)
    w, _ = cs.spectral_weights(grid, tr)
    src = cs.NoiseSource(grid, w, tr, seed=1)
    idx = np.arange(24**3)
    r = [np.corrcoef(gather_scaled(p, False, idx), gather_scaled(p, True, idx))[0, 1]
         for p in (src.pair(k) for k in range(8))]  # fmt: skip
    assert abs(np.mean(r)) < 0.05


# ---------------------------------------------------------------- clustering (spec §4–5.1)


def _naive_max(binary, nn):
    labels, n = ndimage.label(binary, ndimage.generate_binary_structure(3, nn))
    return int(np.bincount(labels.ravel())[1:].max()) if n else 0


def test_all_thresholds_pass_equals_naive_labelling():
    rng = np.random.default_rng(11)
    shape = (18, 16, 14)
    x, y, z = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    mask = (x / 8.5) ** 2 + (y / 7.5) ** 2 + (z / 6.5) ** 2 <= 1
    index = np.flatnonzero(mask)
    pthr = cs.LOTS_PTHR
    z1, z2 = cs.z_thresholds(pthr)
    work = ClusterWork(mask, z1, z2)
    out = np.zeros((3, 3, len(pthr)), np.int32)
    for trial in range(4):
        vol = ndimage.gaussian_filter(rng.standard_normal(shape), 0.8 + 0.4 * trial)
        vol = (vol / vol.std()).astype(np.float32)
        # values exactly at a threshold are not above it
        ties = rng.choice(vol.size, 60, replace=False)
        vol.ravel()[ties] = rng.choice(np.concatenate((z1, z2, -z2)), 60)
        vol[~mask] = 0
        work.max_sizes(vol.ravel()[index], out)
        for nn in (1, 2, 3):
            for k in range(len(pthr)):
                one = _naive_max(vol > z1[k], nn)
                two = _naive_max(np.abs(vol) > z2[k], nn)
                bi = max(_naive_max(vol > z2[k], nn), _naive_max(vol < -z2[k], nn))
                assert out[:, nn - 1, k].tolist() == [one, two, bi], (trial, nn, k)


@pytest.mark.parametrize("smooth", [0.0, 0.7])
def test_one_pass_equals_naive_labelling_for_any_thresholds(smooth):
    """Arbitrary 1- and 2-sided thresholds (shared values, 2-sided below 1-sided, as 3dttest++
    -Clustsim passes), rough and smooth fields with many +/- neighbours, a mask with holes
    touching the grid's edge: every sidedness x NN x threshold equals scipy's labelling."""
    rng = np.random.default_rng(5)
    shape = (15, 13, 11)
    mask = rng.random(shape) < 0.9
    mask[:, :, 0] = True
    index = np.flatnonzero(mask)
    z1 = np.array([2.5, 1.1, 0.4, 1.9, 3.0, 0.9], np.float32)
    z2 = np.array([2.2, 1.1, 0.6, 2.5, 0.3, 1.7], np.float32)
    work = ClusterWork(mask, z1, z2)
    out = np.zeros((3, 3, z1.size), np.int32)
    for trial in range(3):
        vol = rng.standard_normal(shape)
        if smooth:
            vol = ndimage.gaussian_filter(vol, smooth)
        vol = (vol / vol.std()).astype(np.float32)
        vol.ravel()[rng.choice(vol.size, 40, replace=False)] = rng.choice(
            np.concatenate((z1, z2, -z2)), 40
        )
        vol[~mask] = 0
        work.max_sizes(vol.ravel()[index], out)
        for nn in (1, 2, 3):
            for k in range(z1.size):
                one = _naive_max(vol > z1[k], nn)
                two = _naive_max(np.abs(vol) > z2[k], nn)
                bi = max(_naive_max(vol > z2[k], nn), _naive_max(vol < -z2[k], nn))
                assert out[:, nn - 1, k].tolist() == [one, two, bi], (trial, nn, k)


def test_z_thresholds():
    z1, z2 = cs.z_thresholds([0.001])
    assert "%.6f %.6f" % (z1[0], z2[0]) == "3.090232 3.290527"
    assert z1.dtype == np.float32


# ---------------------------------------------------------------- tables (spec §5.2)


def _spec_histogram():
    return np.concatenate([np.zeros(220, int)] + [np.full(40 - s, s) for s in range(1, 40)])


def test_table_spec_test_vector():
    sizes = _spec_histogram()[:, None]
    table = cs.cluster_table(sizes, [0.10, 0.05, 0.02, 0.01], 1000)
    np.testing.assert_allclose(table[0], [26.3418, 30.4756, 34.1452, 36.0], atol=5e-5)
    assert table[0, 3] == np.float32(36.0)
    nodec = cs.cluster_table(sizes, [0.10, 0.05, 0.02, 0.01], 1000, nodec=True)
    assert nodec[0].tolist() == [27, 31, 35, 36]


def test_too_rare_alpha_uses_size_one_and_warns():
    sizes = np.array([0] * 95 + [1] * 5)[:, None]
    warnings = []
    table = cs.cluster_table(sizes, [0.10, 0.01], 100, warnings=warnings, pthr=[0.0001])
    assert table[0, 0] == 1.0
    assert len(warnings) == 1 and warnings[0].max_alpha == pytest.approx(0.05)


def test_monotone_fixups():
    t = np.array([[3.0, 2.0], [5.0, 1.0], [4.0, 6.0]], np.float32)
    fixed = cs.monotone_table(t)
    assert np.all(np.diff(fixed, axis=0) <= 0) and np.all(np.diff(fixed, axis=1) >= 0)
    assert fixed.tolist() == [[5.0, 6.0], [5.0, 6.0], [4.0, 6.0]]


# ---------------------------------------------------------------- file layouts (spec §6)


def _read_niml_values(path):
    body = path.read_text().split(" >\n", 1)[1].split("</")[0]
    return np.array([[float(v) for v in line.split()] for line in body.strip().splitlines()],
                    dtype=np.float32)  # fmt: skip


def _pipeline_info():
    return cs.TableInfo(
        command_line="3dClustSim -both -mask mask.nii.gz -acf 0.742692 2.93065 10.6363 "
        "-iter 2000 -prefix ClustSim",
        shape=(14, 16, 12),
        voxel_sizes=(2.5, 2.5, 2.5),
        mask_count=890,
        iterations=2000,
        pthr=cs.LOTS_PTHR,
        athr=cs.LOTS_ATHR,
        mask_idcode="XYZ_64WvHsHqXHKZcnEl9h9Lrg",
        mask_name="/scratch/afx/bids/derivatives/afni/GROUP_LEVEL/mask.nii.gz",
    )


@needs_data
@pytest.mark.parametrize("sided", SIDEDNESS)
@pytest.mark.parametrize("nn", [1, 2, 3])
def test_1d_and_niml_text_byte_identical_to_afni(nn, sided):
    """AFNI's own cell values, formatted by us, reproduce both files byte for byte."""
    stem = GROUP / f"ClustSim.NN{nn}_{sided}"
    table = _read_niml_values(Path(str(stem) + ".niml"))
    info = _pipeline_info()
    assert cs.format_1d_table(table, nn, sided, info) == Path(str(stem) + ".1D").read_text()
    assert cs.format_niml_table(table, nn, sided, info) == Path(str(stem) + ".niml").read_text()


def test_row_and_header_labels():
    assert cs._prob9(0.001) == " 0.001000" and cs._prob9(7e-5) == " 7.000e-5"
    assert cs._prob9(1.5e-5) == " 1.500e-5"
    assert cs._prob6(0.05) == ".05000" and cs._prob6(7e-5) == "7.0e-5"
    assert cs._cell(24.36, False) == "   24.4" and cs._cell(12345.4, False) == "  12345"
    assert cs._niml_list([0.05, 0.05, 0.05, 0.01]) == "3@0.05,0.01"


@needs_data
def test_cmd_text_matches_afni():
    assert cs.format_cmd("ClustSim") == (GROUP / "3dClustSim.cmd").read_text()


@needs_data
@pytest.mark.parametrize(
    ("nii", "mask_file"),
    [("m256.nii", "S256.mask"), ("m1000.nii", "S1000.mask"), (None, None)],
)
def test_mask_encoding_byte_identical(nii, mask_file):
    if nii is None:
        info = cs.load_mask(GROUP / "mask.nii.gz")
        expected = (GROUP / "ClustSim.mask").read_text()
    else:
        info = cs.load_mask(EX / "clustsim_mask" / nii)
        expected = (EX / "clustsim_mask" / mask_file).read_text()
    text = cs.encode_mask(info.mask)
    assert text == expected
    np.testing.assert_array_equal(cs.decode_mask(text, info.mask.shape), info.mask)


def test_command_line_quoting_and_prefix_check():
    assert cs.quote_command_line(["-mask", "m.nii.gz[0]", "-acf", "0.7"]) == (
        "3dClustSim -mask 'm.nii.gz[0]' -acf 0.7"
    )
    assert not cs.filename_ok("a b") and not cs.filename_ok("x;y") and cs.filename_ok("Clust-1.x")


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("acf", "msg"), [((1.2, 3, 3), "'a' value"), ((0.5, 0, 3), "'b' value"), ((0.5, 3, -1), "'c'")]
)
def test_acf_ranges(acf, msg):
    with pytest.raises(UsageError, match=msg):
        cs.validate_acf(acf)


def test_grid_and_mask_size_checks():
    with pytest.raises(InputDataError, match="minimum grid is 4x4x4"):
        cs.check_simulation_grid(np.ones((3, 20, 20), bool))
    with pytest.raises(InputDataError, match="Only 64 voxels"):
        cs.check_simulation_grid(np.ones((4, 4, 4), bool))
    small = np.zeros((8, 8, 8), bool)
    small.flat[:100] = True
    with pytest.raises(InputDataError, match="only 100 nonzero voxels"):
        cs.check_simulation_grid(small)
    assert cs.check_simulation_grid(small, ok_small_mask=True) == 100
    with pytest.raises(InputDataError, match="no nonzero"):
        cs.check_simulation_grid(np.zeros((8, 8, 8), bool))


def test_bad_prefix_and_pthr(tmp_path):
    with pytest.raises(UsageError, match="forbidden character"):
        cs.run_clustsim(GROUP / "mask.nii.gz", PIPE_ACF, tmp_path / "a;b", progress=False)
    with pytest.raises(UsageError, match="illegal"):
        cs._validate_plist([0.6], "-pthr")


# ---------------------------------------------------------------- end to end


def _small_mask():
    shape = (20, 18, 16)
    x, y, z = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    return (x / 9) ** 2 + (y / 8) ** 2 + (z / 7) ** 2 <= 1


def test_same_seed_same_result_any_thread_count():
    mask = _small_mask()
    kw = {"mask": mask, "voxel_sizes": (3, 3, 3), "acf": (0.7, 3, 8), "pthr": (0.01, 0.001),
          "iterations": 150}  # fmt: skip
    a = cs.simulate_max_cluster_sizes(**kw, seed=7, n_jobs=1)
    b = cs.simulate_max_cluster_sizes(**kw, seed=7, n_jobs=2)
    c = cs.simulate_max_cluster_sizes(**kw, seed=8, n_jobs=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # larger p never gives a smaller cluster; NN3 clusters contain NN1 clusters
    assert np.all(a[..., 0] >= a[..., 1])
    assert np.all(a[:, :, 2, :] >= a[:, :, 0, :])
    # bi-sided is between 1-sided at z2 and 2-sided
    assert np.all(a[:, 2] <= a[:, 1])


@needs_data
def test_run_clustsim_files_and_agreement_with_afni(tmp_path):
    written = cs.run_clustsim(
        GROUP / "mask.nii.gz", PIPE_ACF, tmp_path / "ClustSim", iterations=2000, n_jobs=2,
        progress=False,
    )  # fmt: skip
    names = [p.name for p in written]
    expected = sorted(p.name for p in GROUP.glob("ClustSim.*")) + ["3dClustSim.cmd"]
    assert sorted(names) == sorted(expected)
    assert names[:3] == ["ClustSim.NN1_1sided.1D", "ClustSim.NN1_1sided.niml", "ClustSim.mask"]
    assert (tmp_path / "3dClustSim.cmd").read_text() == (GROUP / "3dClustSim.cmd").read_text()
    assert (tmp_path / "ClustSim.mask").read_text() == (GROUP / "ClustSim.mask").read_text()
    ours_1d = (tmp_path / "ClustSim.NN1_bisided.1D").read_text().splitlines()
    theirs_1d = (GROUP / "ClustSim.NN1_bisided.1D").read_text().splitlines()
    assert ours_1d[:8] == theirs_1d[:8]
    assert [ln[:9] for ln in ours_1d[8:]] == [ln[:9] for ln in theirs_1d[8:]]
    niml = (tmp_path / "ClustSim.NN1_bisided.niml").read_text()
    assert re.search(r'mask_dset_idcode="XYZ_64WvHsHqXHKZcnEl9h9Lrg"', niml)
    assert f'mask_dset_name="{(GROUP / "mask.nii.gz").resolve()}"' in niml
    # statistical agreement: cells that are not tiny, moderate alpha (AFNI's own rtol is 0.15)
    rel = []
    for nn in (1, 2, 3):
        for sided in SIDEDNESS:
            ours = _read_niml_values(tmp_path / f"ClustSim.NN{nn}_{sided}.niml")
            theirs = _read_niml_values(GROUP / f"ClustSim.NN{nn}_{sided}.niml")
            assert np.all(np.diff(ours, axis=0) <= 0) and np.all(np.diff(ours, axis=1) >= 0)
            sel = theirs[:, :8] >= 3.0  # alpha 0.10 .. 0.03
            rel.append(np.abs(ours[:, :8][sel] / theirs[:, :8][sel] - 1))
    rel = np.concatenate(rel)
    assert np.median(rel) < 0.06
    assert np.quantile(rel, 0.95) < 0.20
    # a table read back from either file is the one the simulation returned (one type)
    simulated = written.tables.select(2, "1sided")
    niml_table = read_clustsim_table(tmp_path / "ClustSim.NN2_1sided.1D")  # the .niml twin
    one_d = parse_clustsim_1d((tmp_path / "ClustSim.NN2_1sided.1D").read_text())
    assert niml_table.iterations == simulated.iterations == 2000 and one_d.iterations is None
    for read in (niml_table, one_d):
        np.testing.assert_array_equal(read.pthr, simulated.pthr)
        np.testing.assert_array_equal(read.athr, simulated.athr)
    np.testing.assert_allclose(niml_table.sizes, simulated.sizes, rtol=1e-6)  # %.7g
    np.testing.assert_allclose(one_d.sizes, simulated.sizes, atol=0.05 + 1e-6)


@needs_data
def test_cli_drop_in(tmp_path, monkeypatch):
    import shutil

    shutil.copy(GROUP / "mask.nii.gz", tmp_path / "mask.nii.gz")
    monkeypatch.chdir(tmp_path)
    argv = "-both -mask mask.nii.gz -acf 0.742692 2.93065 10.6363 -iter 2000 -prefix ClustSim"
    assert cli_main([*argv.split(), "-quiet", "--n-cpus", "2"]) == 0
    head = (tmp_path / "ClustSim.NN2_2sided.1D").read_text().splitlines()[0]
    assert head == f"# 3dClustSim {argv} -quiet"
    assert (tmp_path / "3dClustSim.cmd").read_text() == (GROUP / "3dClustSim.cmd").read_text()
    with pytest.raises(UsageError, match="cannot follow -pthr"):
        cli_main(["-pthr", "0.01", "-both", "-mask", "mask.nii.gz", "-acf", "0.7", "3", "3"])


def test_cli_mask_selector_becomes_a_brick_index(tmp_path):
    from afni_group import afni_io
    from afni_group.programs.cli.clustsim import _mask_brick

    inside = _small_mask()
    data = np.stack([np.zeros(inside.shape), inside], axis=-1).astype(np.float32)
    dset = afni_io.AfniDataset(data, np.diag([3.0, 3.0, 3.0, 1.0]), ["zero", "brain"])
    path = str(afni_io.write_dataset(dset, tmp_path / "two.nii.gz"))
    assert _mask_brick(f"{path}[brain]") == (path, 1)
    assert _mask_brick(f"{path}[0]") == (path, 0)
    assert _mask_brick(path) == (path, 0)
    info = cs.load_mask(path, 1)
    np.testing.assert_array_equal(info.mask, inside)
    assert info.voxel_sizes == (3.0, 3.0, 3.0) and not cs.load_mask(path).mask.any()


# ---------------------------------------------------------------- AFNI's FFT (bias fix)

DATA = Path(__file__).parent / "data" / "clustsim"


def _afni_fft_records(name):
    raw = (DATA / name).read_bytes()
    off, out = 0, []
    while off < len(raw):
        n = int(np.frombuffer(raw, np.int32, 1, off)[0])
        x = np.frombuffer(raw, np.complex64, n, off + 4)
        y = np.frombuffer(raw, np.complex64, n, off + 4 + 8 * n)
        out.append((n, x, y))
        off += 4 + 16 * n
    return out


@pytest.mark.parametrize("name", ["csfft_80_96_80_80.bin", "csfft_128_160_128.bin"])
def test_replayed_fft_matches_afni_csfft(name):
    from afni_group.programs.clustsim.afni_fft import CsfftCache, apply_plan

    cache = CsfftCache()
    wrong = 0
    for n, x, y in _afni_fft_records(name):
        ours = apply_plan(cache.transform(n), x.astype(np.complex128))
        np.testing.assert_allclose(ours, y, atol=2e-5 * np.abs(y).max())
        wrong += not np.allclose(np.fft.fft(x.astype(np.complex128)), y, atol=1e-3)
    assert wrong >= 1  # the sequence does hit AFNI's reused twiddle table


def test_axis_transforms_exact_only_on_single_radix_grids():
    from afni_group.programs.clustsim.afni_fft import afni_axis_transforms

    assert afni_axis_transforms((96, 120, 96)).exact
    assert afni_axis_transforms((40, 40, 40)).exact
    mixed = afni_axis_transforms((80, 96, 80))
    assert [m is None for m in mixed.weights] == [True, True, False]
    assert [m is None for m in mixed.noise] == [False, True, False]


def test_apply_along_any_axis_equals_the_plan():
    from afni_group.programs.clustsim.afni_fft import CsfftCache, apply_along, apply_plan

    cache = CsfftCache()
    for n in (80, 96):
        cache.transform(n)
    plan = cache.transform(80)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 80, 4)) + 1j * rng.standard_normal((6, 80, 4))
    ref = np.moveaxis(apply_plan(plan, np.moveaxis(x, 1, -1)), -1, 1)
    np.testing.assert_allclose(apply_along(plan, x.copy(), 1), ref, atol=1e-9)
    np.testing.assert_allclose(
        apply_along(plan, np.moveaxis(x, 1, 0).copy(), 0), np.moveaxis(ref, 1, 0), atol=1e-9
    )
    last = apply_along(plan, np.moveaxis(x, 1, -1).copy(), 2)
    np.testing.assert_allclose(last, np.moveaxis(ref, 1, -1), atol=1e-9)
    single = apply_along(plan, x.astype(np.complex64), 1)
    assert single.dtype == np.complex64
    np.testing.assert_allclose(single, ref, atol=2e-5 * np.abs(ref).max())


def test_transform_order_saves_work_and_changes_nothing():
    """The cheapest order of the axis transforms gives the same volumes as any other."""
    from afni_group.programs.clustsim import noise as cn

    grid = cn.noise_grid((24, 32, 24), (3.0, 3.0, 3.0), (0.6, 3.0, 5.0))
    transforms = cn.grid_transforms(grid)
    assert grid.padded == (40, 48, 40)
    assert [t is None for t in transforms.noise] == [False, True, False]  # AFNI's replay
    # the exact FFT first, at full size; the costlier replayed axes on cropped volumes
    assert cn.transform_order(grid, transforms) == (1, 0, 2)
    weights, _ = cn.spectral_weights(grid, transforms)
    source = cn.NoiseSource(grid, weights, transforms, seed=5)
    chosen = source.pair(3)
    for order in itertools.permutations(range(3)):
        source.order = order
        np.testing.assert_allclose(source.pair(3), chosen, atol=2e-5 * np.abs(chosen).max())


# ---------------------------------------------------------------- noise generator


def test_noise_kernel_is_normal_and_keyed():
    from afni_group.programs.clustsim.kernels import fill_noise, pair_key

    n = 200_000
    w = np.ones(n, np.float32)
    a = np.empty(2 * n, np.float32)
    b = np.empty(2 * n, np.float32)
    fill_noise(a, w, pair_key(7, 0))
    fill_noise(b, w, pair_key(7, 0))
    np.testing.assert_array_equal(a, b)
    fill_noise(b, w, pair_key(7, 1))
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01
    v = a.astype(np.float64)
    assert abs(v.mean()) < 0.01 and v.var() == pytest.approx(1, abs=0.01)
    assert (v**4).mean() == pytest.approx(3, abs=0.05)
    assert abs(np.corrcoef(v[0::2], v[1::2])[0, 1]) < 0.01  # real vs imaginary
    assert np.mean(np.abs(v) > 3) == pytest.approx(0.0027, rel=0.15)
    w[::2] = 0
    fill_noise(b, w, pair_key(7, 0))
    assert np.all(b.reshape(-1, 2)[::2] == 0)
    np.testing.assert_array_equal(b.reshape(-1, 2)[1::2], a.reshape(-1, 2)[1::2])


def test_afni_transforms_change_the_field_along_the_inexact_axes():
    grid = cs.noise_grid((53, 64, 50), (3.0, 3.0, 3.0), (0.66, 3.19, 10.38))
    assert grid.padded == (80, 96, 80)
    lag1 = {}
    for exact in (True, False):
        tr = cs.grid_transforms(grid, exact_fft=exact)
        w, kernel = cs.spectral_weights(grid, tr)
        assert kernel == (39, 47, 39)
        src = cs.NoiseSource(grid, w, tr, seed=2)
        everything = np.arange(np.prod(grid.shape))
        r = np.zeros(3)
        for k in range(6):
            pair = src.pair(k)
            for imag in (False, True):
                v = gather_scaled(pair, imag, everything).reshape(grid.shape).astype(float)
                for axis in range(3):
                    a = np.moveaxis(v, axis, 0)
                    r[axis] += np.mean(a[:-1] * a[1:]) / 12
        lag1[exact] = r
    # AFNI's z axis (twiddles of length 96 on a length-80 transform) is smoother
    assert lag1[False][2] - lag1[True][2] > 0.02
    assert abs(lag1[False][1] - lag1[True][1]) < 0.01


# ---------------------------------------------------------------- core API and MC error


def test_core_returns_tables_in_memory_and_rejects_bad_values():
    mask = _small_mask()
    res = cs.clustsim(mask, (3, 3, 3), (0.7, 3, 8), iterations=2000, pthr=[0.01, 0.001],
                      athr=[0.05, 0.01], n_jobs=2, seed=5)  # fmt: skip
    assert res.tables.shape == (3, 3, 2, 2) and res.max_sizes.shape == (2000, 3, 3, 2)
    assert res.threshold(0.001, 0.05, 1, "bisided") == res.table(1, "bisided")[1, 0]
    u = res.threshold_uncertainty(0.01, 0.05, 2, "2sided")
    assert u.se > 0 and u.interval[0] < u.size < u.interval[1]
    assert u.threshold == cs.ceil_threshold(u.size)
    with pytest.raises(ValueError, match="'a' value"):
        cs.clustsim(mask, (3, 3, 3), (2, 3, 8))
    with pytest.raises(ValueError, match="at least 2000"):
        cs.clustsim(mask, (3, 3, 3), (0.7, 3, 8), iterations=100)
    with pytest.raises(ValueError, match="no table cell"):
        res.threshold(0.02, 0.05, 1, "bisided")


def test_mc_standard_error_matches_replicate_spread():
    """The binomial-interval s.e. agrees with the spread of the cell over independent runs."""
    rng = np.random.default_rng(0)
    n, reps = 2000, 300
    sizes, ses = [], []
    for _ in range(reps):
        maxima = np.maximum(np.round(rng.gumbel(20, 5, n)), 0).astype(int)[:, None]
        curve = cs.tail_probabilities(maxima[:, 0], n)
        sizes.append(float(cs.cluster_size_for_alpha(curve, 0.05, n)[0]))
        ses.append(cs.threshold_uncertainty(maxima[:, 0], 0.05, n).se)
    assert np.mean(ses) == pytest.approx(np.std(sizes), rel=0.2)


def test_threshold_mc_from_written_table(tmp_path, caplog):
    table = tmp_path / "ClustSim.NN1_bisided.1D"
    info = cs.TableInfo("3dClustSim -mask m.nii -acf 0.7 3 8", (8, 8, 8), (3.0, 3.0, 3.0), 300,
                        2000, (0.01, 0.001), (0.05,), mask_name="m.nii")  # fmt: skip
    table.write_text(cs.format_1d_table(np.array([[9.26], [4.4]], np.float32), 1, "bisided", info))
    mc = {"pthr": [0.01, 0.001], "athr": [0.05], "se": {"NN1_bisided": [[0.3], [0.1]]}}
    stable = cs.threshold_mc(table, 0.001, 0.05, mc)
    assert stable["threshold"] == 5 and stable["stable"] and stable["mc_se"] == 0.1
    unstable = cs.threshold_mc(table, 0.01, 0.05, mc)
    assert unstable["threshold"] == 10 and not unstable["stable"]
    assert "not stable" in caplog.text
    assert cs.threshold_mc(table, 0.01, 0.05, None) is None


def test_pipeline_records_and_reports_the_mc_error(tmp_path):
    import json

    from afni_group import cli
    from afni_group.demo import cli as demo_cli

    bids = tmp_path / "bids"
    assert demo_cli.main([str(bids), "--subjects", "5", "--seed", "1", "--grid", "small"]) == 0
    out = tmp_path / "out"
    argv = [str(bids), str(out), "group", "--engine", "native", "--clustsim-iter", "2000",
            "--seed", "3", "--n-cpus", "2"]  # fmt: skip
    assert cli.main(argv) == 0
    params = json.loads((out / "params.json").read_text())
    for analysis in params["analyses"]:
        mc = analysis["cluster_size_mc"]
        assert mc["threshold"] == analysis["cluster_size_threshold"]
        assert mc["mc_se"] >= 0 and mc["ci95"][0] <= mc["size"] <= mc["ci95"][1]
    assert "MC s.e." in (out / "report.html").read_text()


def test_table_file_names_built_and_parsed():
    assert cs.clustsim_table_name("out/ClustSim", 2, "bisided") == "out/ClustSim.NN2_bisided.1D"
    assert cs.clustsim_table_name("P", 3, "1sided", "niml") == "P.NN3_1sided.niml"
    parsed = cs.parse_clustsim_table_name(Path("/x/ClustSim.NN2_bisided.niml"))
    assert (parsed.prefix, parsed.nn, parsed.sided, parsed.ext) == (
        "ClustSim",
        2,
        "bisided",
        "niml",
    )
    for other in ("ClustSim.NN4_bisided.1D", "ClustSim.NN1_3sided.1D", "ClustSim.NN1_bisided.txt"):
        assert cs.parse_clustsim_table_name(other) is None
    for nn in (1, 2, 3):
        for sided in SIDEDNESS:
            name = cs.clustsim_table_name("a.b", nn, sided, "1D")
            assert cs.parse_clustsim_table_name(name) == cs.parse_clustsim_table_name(
                f"a.b.{cs.clustsim_table_key(nn, sided)}.1D"
            )
            assert cs.parse_clustsim_table_name(name).prefix == "a.b"


def test_niml_table_read_back_with_runs_and_iterations():
    info = cs.TableInfo("3dClustSim -acf 0.7 3 8", (8, 8, 8), (3.0, 3.0, 3.0), 512, 3000,
                        (0.01, 0.01, 0.001), (0.05, 0.01))  # fmt: skip
    sizes = np.array([[9.25, 12.5], [9.25, 12.5], [4.125, 6.0]], np.float32)
    text = cs.format_niml_table(sizes, 1, "2sided", info)
    assert 'pthr="2@0.01,0.001"' in text  # AFNI's run-length form
    table = parse_clustsim_niml(text)
    assert table.iterations == 3000 and list(table.pthr) == [0.01, 0.01, 0.001]
    np.testing.assert_array_equal(table.sizes, sizes)
    with pytest.raises(ValueError, match="pthr x athr"):
        parse_clustsim_niml(text.replace(" 6\n", "\n"))
