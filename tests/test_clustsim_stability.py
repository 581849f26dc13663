"""Stability of the cluster-size threshold: iterations that settle it, batches (issue 23)."""

from __future__ import annotations

import numpy as np
import pytest

from afni_group.programs.clustsim import core, simulate, stability

ACF = (0.5, 1.5, 3.0)  # a short ACF pads the grid little: fast simulations


def _mask() -> np.ndarray:
    mask = np.ones((10, 12, 8), dtype=bool)
    mask[0], mask[-1] = False, False
    return mask


def _never_stable(monkeypatch) -> None:
    real = core.uncertainty_from_se

    def unstable(size: float, se: float) -> core.ThresholdUncertainty:
        u = real(size, se)
        return core.ThresholdUncertainty(u.size, u.se, u.interval, u.threshold, False)

    monkeypatch.setattr(core, "uncertainty_from_se", unstable)


def test_batches_give_the_tables_of_one_run_with_the_same_seed(monkeypatch):
    _never_stable(monkeypatch)
    seen = []
    goal = stability.StabilityGoal(
        0.001, 0.05, 1, "bisided", batch=2000, max_iterations=6000,
        notify=lambda tables, u: seen.append(tables.iterations),
    )  # fmt: skip
    kw = dict(pthr=(0.01, 0.001), athr=(0.1, 0.05), both=False, seed=11, n_jobs=2)
    batched = goal.clustsim(_mask(), (3, 3, 3), ACF, iterations=2000, **kw)
    one = simulate.clustsim(_mask(), (3, 3, 3), ACF, iterations=6000, **kw)
    assert batched.iterations == 6000 and seen == [2000, 4000, 6000]
    np.testing.assert_array_equal(batched.max_sizes, one.max_sizes)
    np.testing.assert_array_equal(batched.tables, one.tables)
    assert [b["iterations"] for b in batched.batches] == [2000, 4000, 6000]
    assert not any(b["stable"] for b in batched.batches)
    # the s.e. falls as iterations are added
    assert batched.batches[-1]["mc_se"] < batched.batches[0]["mc_se"]


def test_a_stable_threshold_stops_after_the_first_batch():
    goal = stability.StabilityGoal(0.001, 0.05, 1, "bisided", batch=2000, max_iterations=8000)
    kw = dict(pthr=(0.001,), athr=(0.05,), both=False)
    tables = goal.clustsim(_mask(), (3, 3, 3), ACF, iterations=2000, **kw)
    assert tables.batches[-1]["stable"] == (tables.iterations < 8000)
    assert tables.iterations == tables.batches[-1]["iterations"]


def test_batches_must_be_even():
    goal = stability.StabilityGoal(0.001, 0.05, 1, "bisided", batch=2001)
    with pytest.raises(ValueError, match="even"):
        goal.clustsim(_mask(), (3, 3, 3), ACF, iterations=2000)
    with pytest.raises(ValueError, match="even"):
        simulate.simulate_max_cluster_sizes(_mask(), (3, 3, 3), ACF, (0.01,), 10, first_iteration=3)


def test_iterations_to_settle_from_the_standard_error():
    # the demo's cell: 10.1 voxels, s.e. 0.10 after 10000 iterations; "%.1f" text 10.1 -> 11
    # voxels for cells in [10.05, 11.05): margin 0.05, so (1.96 x 0.10 / 0.05)^2 x 10000
    need = stability.iterations_to_settle(10.1, 0.10, 10000)
    assert need == 154000
    se_then = 0.10 * np.sqrt(10000 / need)
    assert core.uncertainty_from_se(10.1, se_then).stable
    assert not core.uncertainty_from_se(10.1, 0.10 * np.sqrt(10000 / (need - 10000))).stable
    assert stability.iterations_to_settle(10.5, 0.10, 10000) == 10000  # already stable
    assert stability.iterations_to_settle(10.05, 0.10, 10000) == stability.MAX_SETTLE_ITERATIONS


def test_unstable_message_names_the_iterations_and_auto_only_within_its_cap():
    u = core.uncertainty_from_se(10.1, 0.10).as_dict()
    far = stability.unstable_message({**u, "iterations_to_settle": 154000})
    assert "cluster-size threshold 11 voxels" in far and "9.9-10.3 gives 10 to 11 voxels" in far
    assert "about 154000 3dClustSim iterations would settle it (--clustsim-iter 154000)" in far
    near = stability.unstable_message({**u, "iterations_to_settle": 40000})
    assert "(--clustsim-iter 40000 or auto)" in near
    assert "more 3dClustSim iterations" in stability.unstable_message(u)
