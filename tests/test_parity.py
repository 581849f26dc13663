"""Engine parity comparer (afni_group.parity) on synthetic output folders of two runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from afni_group import parity
from afni_group.errors import EXIT_FAILURE, EXIT_NO_INPUT, EXIT_OK, EXIT_USAGE

ALPHAS = np.array([0.10, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01])
PTHRS = np.array([0.01, 0.005, 0.002, 0.001])
ACF = "0.706428 2.99005 9.82134"
REPORT_ROW = (
    "    519  -11.2   83.7    3.8  -27.0    6.0   66.0   99.0  -15.0   21.0"
    "   0.3824   0.0076   0.9775  -12.0   84.0    3.0 "
)


def simulated_table(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    """Cluster-size thresholds from n simulated maxima per pthr (a lognormal stand-in)."""
    rows = []
    for i, _ in enumerate(PTHRS):
        maxima = rng.lognormal(mean=np.log(60.0 / (i + 1)), sigma=0.35, size=n) * scale
        rows.append(np.quantile(maxima, 1 - ALPHAS))
    return np.round(np.array(rows), 1)


def write_table(path: Path, sizes: np.ndarray, iters: int) -> None:
    cmd = (
        f"3dClustSim -seed 1 -iter {iters // 2} -both -mask mask.nii.gz -acf {ACF} -prefix ClustSim"
    )
    lines = [
        f"# {cmd}",
        "# bi-sided thresholding",
        "#",
        "# CLUSTER SIZE THRESHOLD(pthr,alpha) in Voxels",
        "# -NN 1  | alpha = Prob(Cluster >= given size)",
        "#  pthr  | " + " ".join(f"{a:.5f}"[1:] for a in ALPHAS),
        "# ------ | " + " ".join(["------"] * len(ALPHAS)),
    ]
    for p, row in zip(PTHRS, sizes, strict=True):
        lines.append(f" {p:.6f} " + " ".join(f"{v:6.1f}" for v in row))
    path.write_text("\n".join(lines) + "\n")
    path.with_suffix(".niml").write_text(f'<3dClustSim_NN1\n  iter="{iters}"\n/>\n')


def write_report(path: Path, nvox: int, rows: list[str]) -> None:
    head = [
        "#",
        "#  Cluster report ",
        "#[ Dataset prefix      = mema_results.nii.gz ]",
        f"#[ Option summary      = bisided,-3.792131,3.792131,clust_nvox,{nvox},NN1 ]",
        f"#[ Nvoxel threshold    = {nvox};  Volume threshold = {nvox * 27:.3f} ]",
        "#",
    ]
    body = rows if rows else ["#** NO CLUSTERS FOUND ***"]
    path.write_text("\n".join(head + body) + "\n")


def make_run(
    root: Path,
    engine: str,
    seed: int,
    *,
    mema: np.ndarray,
    mask: np.ndarray,
    nvox: int = 10,
    rows: list[str] | None = None,
    scale: float = 1.0,
    acf: str = ACF,
    iters: int = 2000,
) -> Path:
    """An output folder with what the comparer reads, as one engine would write it."""
    out = root / f"out-{engine}"
    adir = out / "analysis-mema"
    adir.mkdir(parents=True)
    (out / "params.json").write_text(json.dumps({"engine": engine}))
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(mema.astype(np.float32), affine), adir / "mema_results.nii.gz")
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), adir / "mask.nii.gz")
    rng = np.random.default_rng(seed)
    for nn in (1, 2, 3):
        for sided in ("1sided", "2sided", "bisided"):
            table = adir / f"ClustSim.NN{nn}_{sided}.1D"
            write_table(table, simulated_table(rng, iters, scale), iters)
            text = table.read_text().replace(f"-acf {ACF}", f"-acf {acf}")
            table.write_text(text)
    write_report(
        adir / "clust_bisided_report_chx.txt", nvox, [REPORT_ROW] if rows is None else rows
    )
    return out


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    mema = rng.normal(0, 2, (6, 5, 4, 3))
    mema[..., 2] = np.abs(mema[..., 2]) * 1e-15  # a brick that is zero up to rounding (tau)
    mask = (rng.random((6, 5, 4)) > 0.3).astype(np.uint8)
    return mema, mask


def statuses(checks: list[parity.Check]) -> dict[str, str]:
    return {c.name: c.status for c in checks}


def test_independent_simulations_of_the_same_runs_agree(tmp_path, data):
    mema, mask = data
    a = make_run(tmp_path, "native", 1, mema=mema, mask=mask)
    b = make_run(tmp_path, "afni", 2, mema=mema * (1 + 1e-7), mask=mask)
    checks = parity.compare_runs(a, b)
    got = statuses(checks)
    assert set(got.values()) == {parity.PASS}, [c.line() for c in checks]
    assert {
        "analysis-mema/files",
        "analysis-mema/3dMEMA",
        "analysis-mema/mask",
        "analysis-mema/ACF",
        "analysis-mema/3dClustSim",
        "analysis-mema/cluster-size-threshold",
        "analysis-mema/clusters/chx",
        "engine/native",
        "engine/afni",
    } <= set(got)
    cs = next(c for c in checks if c.name == "analysis-mema/3dClustSim")
    assert cs.values["cells"] == 9 * len(PTHRS) * len(ALPHAS)
    assert max(cs.values["max_abs_z"].values()) < parity.DEFAULT_Z_MAX


def test_a_biased_clustsim_table_fails(tmp_path, data):
    mema, mask = data
    a = make_run(tmp_path, "native", 1, mema=mema, mask=mask, scale=1.08)
    b = make_run(tmp_path, "afni", 2, mema=mema, mask=mask)
    check = parity.compare_clustsim(a / "analysis-mema", b / "analysis-mema", "cs")
    assert check.status == parity.FAIL
    assert check.values["cells_over_3"] > 0.01 * check.values["cells"]
    assert all(v > 4 for v in check.values["mean_rel_diff_percent"].values())


def test_mema_tolerance_and_floor(tmp_path, data):
    mema, mask = data
    a = make_run(tmp_path, "native", 1, mema=mema, mask=mask)
    worse = mema.copy()
    worse[1, 1, 1, 0] *= 1 + 1e-3
    b = make_run(tmp_path, "afni", 1, mema=worse, mask=mask)
    check = parity.compare_mema(
        a / "analysis-mema/mema_results.nii.gz", b / "analysis-mema/mema_results.nii.gz", "m"
    )
    assert check.status == parity.FAIL and "bricks [0]" in check.detail
    # relative to the brick's largest value below the floor: 1e-15 vs 3e-15 is no difference
    err = parity.relative_error(np.array([1e-15, 1.0]), np.array([3e-15, 1.0]))
    assert err.max() < 1e-10
    assert parity.relative_error(np.array([1.0]), np.array([1.0 + 2e-4]))[0] > 1e-4


def test_mask_and_acf_must_be_identical(tmp_path, data):
    mema, mask = data
    other = mask.copy()
    other[0, 0, 0] = 1 - other[0, 0, 0]
    a = make_run(tmp_path, "native", 1, mema=mema, mask=mask)
    b = make_run(tmp_path, "afni", 1, mema=mema, mask=other, acf="0.706428 2.99005 9.8213")
    got = statuses(parity.compare_runs(a, b))
    assert got["analysis-mema/mask"] == parity.FAIL
    assert got["analysis-mema/ACF"] == parity.FAIL


def test_clusters_compared_only_when_the_threshold_decided_nothing(tmp_path, data):
    mema, mask = data
    small = "     10  -11.2   83.7    3.8"
    a = make_run(tmp_path, "native", 1, mema=mema, mask=mask, nvox=10, rows=[REPORT_ROW, small])
    b = make_run(tmp_path, "afni", 1, mema=mema, mask=mask, nvox=11, rows=[REPORT_ROW])
    check = parity.compare_clusters(
        a / "analysis-mema", b / "analysis-mema", "clust_bisided_report_chx.txt", "c"
    )
    assert check.status == parity.SKIP and "10 vs 11" in check.detail
    # the same thresholds and different rows: a failure
    shutil.rmtree(b)
    b = make_run(tmp_path, "afni", 1, mema=mema, mask=mask, nvox=10, rows=[REPORT_ROW])
    check = parity.compare_clusters(
        a / "analysis-mema", b / "analysis-mema", "clust_bisided_report_chx.txt", "c"
    )
    assert check.status == parity.FAIL and "rows differ" in check.detail
    # thresholds differ but every cluster is above both: compared, and equal
    shutil.rmtree(a)
    a = make_run(tmp_path, "native", 1, mema=mema, mask=mask, nvox=12, rows=[REPORT_ROW])
    check = parity.compare_clusters(
        a / "analysis-mema", b / "analysis-mema", "clust_bisided_report_chx.txt", "c"
    )
    assert check.status == parity.PASS and "no cluster between" in check.detail


def test_alpha_interval_flat_rows_and_extrapolation():
    alphas = np.array([0.1, 0.05, 0.01])
    sizes = np.array([2.0, 2.0, 4.0])
    assert parity.alpha_interval(2.0, alphas, sizes) == (0.05, 0.1)
    lo, hi = parity.alpha_interval(3.0, alphas, sizes)
    assert lo == hi and 0.01 < lo < 0.05
    beyond, _ = parity.alpha_interval(8.0, alphas, sizes)
    assert 0 < beyond < 0.01
    below, _ = parity.alpha_interval(1.0, alphas, sizes)
    assert 0.1 < below <= 1.0


def test_cli_json_and_exit_codes(tmp_path, data, capsys):
    mema, mask = data
    a = make_run(tmp_path, "native", 1, mema=mema, mask=mask)
    b = make_run(tmp_path, "afni", 2, mema=mema, mask=mask)
    report = tmp_path / "parity.json"
    assert parity.main([str(a), str(b), "--json", str(report)]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("PASS analysis-mema/files")
    assert lines[-1].startswith("parity: ")
    saved = json.loads(report.read_text())
    assert saved["summary"]["FAIL"] == 0
    assert len(saved["checks"]) == len(lines) - 1
    # the two folders swapped: each engine check fails
    assert parity.main([str(b), str(a)]) == EXIT_FAILURE
    assert parity.main([str(a), str(tmp_path / "nothing")]) == EXIT_NO_INPUT
    assert "no params.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        parity.main([str(a)])
    assert exc.value.code == EXIT_USAGE


def test_threshold_of_runs_without_clusters_comes_from_params(tmp_path):
    """A report of no clusters prints no threshold: each run's params.json says which it used."""
    for engine, nvox in (("native", 2), ("afni", 3)):
        adir = tmp_path / engine / "analysis-x"
        adir.mkdir(parents=True)
        (adir / "clust_bisided_report_x.txt").write_text("#** NO CLUSTERS FOUND ***\n")
        doc = {"analyses": [{"dir": "analysis-x", "cluster_size_threshold": nvox}]}
        (tmp_path / engine / "params.json").write_text(json.dumps(doc))
    check = parity.compare_threshold(
        tmp_path / "native" / "analysis-x", tmp_path / "afni" / "analysis-x", "t"
    )
    assert check.status == parity.INFO and check.values == {"native": 2, "afni": 3}
