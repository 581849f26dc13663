"""The pure pieces of benchmarks/bench_fpr.py (the benchmark itself is run by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from fpr_null import (  # noqa: E402
    GRID_4MM,
    brain_mask,
    clopper_pearson,
    csim_size,
    estimate_acf,
    max_cluster_sizes,
    null_maps,
    smooth_weight,
)

from afni_group.demo.noise import smooth_noise  # noqa: E402
from afni_group.demo.truth import GRIDS  # noqa: E402
from afni_group.programs.acf.core import acf_fwhm  # noqa: E402


@pytest.mark.parametrize("k,n", [(0, 400), (1, 50), (20, 400), (37, 400), (50, 50)])
def test_clopper_pearson_is_scipys_exact_interval(k, n):
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    lo, hi = clopper_pearson(k, n)
    assert lo == pytest.approx(ref.low, abs=1e-12)
    assert hi == pytest.approx(ref.high, abs=1e-12)
    assert lo <= k / n <= hi


def test_clopper_pearson_edges_and_bad_counts():
    # no false positive in 400: upper bound 1 - 0.025 ** (1 / 400)
    assert clopper_pearson(0, 400) == (0.0, pytest.approx(1 - 0.025 ** (1 / 400)))
    assert clopper_pearson(5, 5)[1] == 1.0
    for k, n in ((3, 2), (-1, 5), (0, 0)):
        with pytest.raises(ValueError):
            clopper_pearson(k, n)


def _lag1(maps: np.ndarray, region: np.ndarray) -> float:
    """Mean correlation of neighbours along y inside ``region`` (over subjects)."""
    x = maps / maps.std(axis=0)
    both = region[:, 1:, :] & region[:, :-1, :]
    return float(np.mean((x[:, :, 1:, :] * x[:, :, :-1, :])[:, both]))


def test_nonstationary_noise_is_smoother_at_the_back():
    grid = GRIDS["small"]
    mask = brain_mask(grid)
    weight = smooth_weight(grid, mask)
    assert weight[mask].min() == 0.0 and weight[mask].max() == 1.0
    front, back = mask & (weight < 0.25), mask & (weight > 0.75)
    rough = _lag1(null_maps(5, 8, "nonstationary", grid, mask), front)
    smooth = _lag1(null_maps(5, 8, "nonstationary", grid, mask), back)
    assert smooth > rough + 0.2
    # the demo's stationary noise: the same in both parts
    still = null_maps(5, 8, "stationary", grid, mask)
    assert abs(_lag1(still, front) - _lag1(still, back)) < 0.1
    with pytest.raises(ValueError, match="noise type"):
        null_maps(5, 2, "wavy", grid, mask)


def test_estimate_acf_recovers_the_demo_smoothness():
    mask = brain_mask(GRID_4MM)
    rng = np.random.default_rng(3)
    fields = smooth_noise(rng, GRID_4MM.shape, GRID_4MM.voxel_mm, (0.7, 3.0, 10.0), 3)
    fwhm = np.mean([acf_fwhm(*estimate_acf(f, mask, GRID_4MM.voxel_mm)) for f in fields])
    assert fwhm == pytest.approx(acf_fwhm(0.7, 3.0, 10.0), rel=0.1)


def test_max_cluster_sizes_nn1_bisided():
    stat = np.zeros((8, 8, 8))
    mask = np.ones(stat.shape, dtype=bool)
    stat[1:3, 1:3, 1:3] = 4.0  # 8 face-connected voxels
    stat[5, 5, 5] = stat[6, 6, 6] = 4.0  # corner neighbours: two clusters under NN1
    stat[4, 0, 0:3] = -5.0  # 3 negative voxels
    assert max_cluster_sizes(stat, mask, 3.0) == (8, 3)
    mask[1, 1, 1] = False
    assert max_cluster_sizes(stat, mask, 3.0) == (7, 3)
    assert max_cluster_sizes(stat, mask, 6.0) == (0, 0)


def test_csim_size_is_the_ceiling_of_the_printed_cell():
    assert csim_size(14.27, nodec=False) == 15
    assert csim_size(14.04, nodec=False) == 14  # printed 14.0
    assert csim_size(12.0, nodec=True) == 12
