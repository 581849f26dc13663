"""Array-level tests of native 3dMEMA (spec 02-mema.md): test vectors, worked examples,
properties, and an independent per-voxel reference written straight from the spec."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from afni_group.programs.mema.core import (
    MISSING_VARIANCE,
    fit_block,
    mema,
    within_subject_variance,
)
from afni_group.programs.mema.design import MemaDesign, center_covariates
from afni_group.programs.mema.dof import remap_t, t_cdf, t_quantile, voxel_dof

TESTDATA = Path(__file__).parent / "data" / "spec"

TWO_GROUPS = MemaDesign("groups", (6, 6), ("chx", "keypress"))
ONE_SET = MemaDesign("one", (5,), ("SET",))


def _read_csv(name: str) -> dict[str, np.ndarray]:
    path = TESTDATA / name
    if not path.is_file():
        pytest.skip(f"spec test data {path} not available")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def _assert_spec_tolerances(got: np.ndarray, expected: np.ndarray, labels: list[str]) -> None:
    """Spec §12: b, QE 1e-9 rel; t 1e-6 rel (1e-5 if |t| > 20); I2, tau 1e-5 abs."""
    for j, label in enumerate(labels):
        g, e = got[:, j], expected[:, j]
        inf = np.isinf(e)
        np.testing.assert_array_equal(g[inf], e[inf], err_msg=f"{label}: infinities")
        g, e = g[~inf], e[~inf]
        if label in ("I2", "tau"):
            np.testing.assert_allclose(g, e, rtol=0, atol=1e-5, err_msg=label)
        elif label.endswith(":t"):
            big = np.abs(e) > 20
            np.testing.assert_allclose(g[~big], e[~big], rtol=1e-6, atol=1e-12, err_msg=label)
            np.testing.assert_allclose(g[big], e[big], rtol=1e-5, err_msg=label)
        else:
            np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-12, err_msg=label)


# ----------------------------------------------------------------------------------------------
# spec test vectors (from AFNI's own R functions)
# ----------------------------------------------------------------------------------------------


def test_two_set_missing0_vectors_every_row():
    d = _read_csv("mema_two_set_missing0_N6.csv")
    sets = [np.stack([d[f"{p}_{x}{i}"] for i in range(1, 7)]) for p in ("chx", "kp") for x in "bt"]
    result = mema(
        [sets[0], sets[2]], [sets[1], sets[3]], TWO_GROUPS, missing_data=True, dtype=np.float64
    )
    assert result.labels == [
        "chx:b",
        "chx:t",
        "keypress:b",
        "keypress:t",
        "keypress-chx:b",
        "keypress-chx:t",
        "I2",
        "tau",
        "QE:Chisq",
    ]
    expected = np.column_stack([d[k] for k in result.labels])
    _assert_spec_tolerances(result.bricks, expected, result.labels)
    # the voxel DOF column is AFNI's, sign slip included
    zeros = np.stack([d["zeros_chx"], d["zeros_kp"]]).astype(int)
    np.testing.assert_array_equal(voxel_dof(TWO_GROUPS, zeros), d["voxel_df"])


def test_one_set_missing0_vectors_every_row():
    d = _read_csv("mema_one_set_missing0_N5.csv")
    b = np.stack([d[f"b{i}"] for i in range(1, 6)])
    t = np.stack([d[f"t{i}"] for i in range(1, 6)])
    result = mema([b], [t], ONE_SET, missing_data=True, dtype=np.float64)
    assert result.labels == ["SET:b", "SET:t", "I2", "tau", "QE:Chisq"]
    expected = np.column_stack([d[k] for k in result.labels])
    _assert_spec_tolerances(result.bricks, expected, result.labels)
    np.testing.assert_array_equal(voxel_dof(ONE_SET, d["zeros"][None].astype(int)), d["voxel_df"])


def test_vectors_float32_output_matches_rounded_doubles():
    d = _read_csv("mema_two_set_missing0_N6.csv")
    sets = [np.stack([d[f"{p}_{x}{i}"] for i in range(1, 7)]) for p in ("chx", "kp") for x in "bt"]
    r32 = mema([sets[0], sets[2]], [sets[1], sets[3]], TWO_GROUPS, missing_data=True)
    assert r32.bricks.dtype == np.float32
    expected = np.column_stack([d[k] for k in r32.labels]).astype(np.float32)
    b_and_qe = [0, 2, 4, 8]
    # b and QE agree to 1e-9 relative, so after the float32 cast nearly all are bit-identical
    assert np.mean(r32.bricks[:, b_and_qe] == expected[:, b_and_qe]) > 0.99


# ----------------------------------------------------------------------------------------------
# worked examples (spec §11)
# ----------------------------------------------------------------------------------------------


def _one(b, t, **kw):
    design = MemaDesign("one", (len(b),), ("x",))
    return mema(
        [np.array(b, float)[:, None]], [np.array(t, float)[:, None]], design, dtype=np.float64, **kw
    ).bricks[0]


def _two(b1, t1, b2, t2, **kw):
    design = MemaDesign("groups", (len(b1), len(b2)), ("chx", "keypress"))
    col = lambda a: np.array(a, float)[:, None]  # noqa: E731
    return mema([col(b1), col(b2)], [col(t1), col(t2)], design, dtype=np.float64, **kw).bricks[0]


def test_example_b_one_set_mom_final():
    out = _one([0.5, -0.3, 0.2, 0.1], [1, -1, 0.5, 0.5])
    np.testing.assert_allclose(
        out, [0.05212702216896, 0.39898603264961, 0, 0, 2.37402636309167], rtol=1e-11, atol=1e-14
    )


def test_example_a_one_set_reml():
    out = _one([1, 2, 1.5, 3], [2, 4, 1.5, 3])
    np.testing.assert_allclose(
        out,
        [1.69941374605670, 4.42298014716786, 0.36726154266080, 0.41939055100242, 4.025],
        rtol=1e-10,
    )


def test_example_a_no_hktest():
    out = _one([1, 2, 1.5, 3], [2, 4, 1.5, 3], hktest=False)
    assert out[1] == pytest.approx(4.29817556591573, rel=1e-10)


def test_example_a_reml_converges_after_four_iterations():
    y = np.array([[1, 2, 1.5, 3]], float)
    v = within_subject_variance(y, np.array([[2, 4, 1.5, 3]], float))
    fit = fit_block(y, v, np.ones((4, 1)))
    assert fit.used_reml[0] and fit.reml_iterations[0] == 4
    assert fit.tau2[0] == pytest.approx(0.1758884, rel=1e-6)


def test_example_c_tutorial_shape():
    out = _two([1, 2, 1.5], [2, 4, 1.5], [0.5, 1, 2], [1, 2, 4])
    np.testing.assert_allclose(
        out,
        [
            1.5,
            3.59184165186622,
            1.16666666666667,
            3.13049516849971,
            -0.33333333333333,
            -0.59553293360870,
            0.50305481510794,
            0.47724860844805,
            6.66666666666667,
        ],
        rtol=1e-10,
    )


def test_example_d_missing_in_both_sets_no_remap():
    out = _two([1, 2, 1.5, 0], [2, 4, 1.5, 0], [0.5, 1, 2, 0], [1, 2, 4, 0], missing_data=True)
    np.testing.assert_allclose(
        out,
        [
            1.49999999700038,
            4.39908961405096,
            1.16666666480869,
            3.83405787963886,
            -0.33333333219169,
            -0.72937590050260,
            0.37786826896203,
            0.47724860671998,
            6.66666670277779,
        ],
        rtol=1e-9,
    )


EXAMPLE_E = [
    1.49999999750034,
    4.52127053833264,
    1.05583354324705,
    4.29425391038249,
    -0.44416645425329,
    -1.01373497796638,
    0.34554897372973,
    0.37460595643017,
    7.21917810469179,
]


def test_example_e_missing_in_chx_only_remapped():
    out = _two([1, 2, 1.5, 0], [2, 4, 1.5, 0], [0.5, 1, 2, 0.8], [1, 2, 4, 2], missing_data=True)
    np.testing.assert_allclose(out, EXAMPLE_E, rtol=1e-9)
    before = _two([1, 2, 1.5, 0], [2, 4, 1.5, 0], [0.5, 1, 2, 0.8], [1, 2, 4, 2])
    np.testing.assert_allclose(
        before[[1, 3, 5]], [4.20468201221362, 4.00990530971851, -1.00174440107466], rtol=1e-9
    )


def test_example_e_corrected_dof_uses_intended_formula():
    kw = dict(missing_data=True, correct_dof=True)
    out = _two([1, 2, 1.5, 0], [2, 4, 1.5, 0], [0.5, 1, 2, 0.8], [1, 2, 4, 2], **kw)
    before = _two([1, 2, 1.5, 0], [2, 4, 1.5, 0], [0.5, 1, 2, 0.8], [1, 2, 4, 2])
    # intended DOF 8 - 1 - 0 - 2 = 5 < 6: |t| shrinks instead of growing
    np.testing.assert_allclose(out[[1, 3, 5]], remap_t(before[[1, 3, 5]], np.full(3, 5), 6))
    assert abs(out[1]) < abs(before[1]) < abs(EXAMPLE_E[1])
    np.testing.assert_allclose(out[[0, 2, 4, 6, 7, 8]], before[[0, 2, 4, 6, 7, 8]])


def test_example_f_too_few_nonzero_all_zero():
    out = _two([1, 0, 0, 0], [2, 0, 0, 0], [0.5, 0, 0, 0], [1, 0, 0, 0], missing_data=True)
    np.testing.assert_array_equal(out, np.zeros(9))


# ----------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------


def _random_sets(rng, n1, n2, n_vox, zero_frac=0.0):
    def one(n, shift):
        b = rng.normal(shift, 1.0, (n, n_vox))
        t = b / rng.uniform(0.2, 0.8, (n, n_vox))
        if zero_frac:
            z = rng.random((n, n_vox)) < zero_frac
            b[z] = 0.0
            t[z] = 0.0
        return b, t

    return one(n1, 0.5), one(n2, 0.0)


def test_variance_guards():
    v = within_subject_variance(np.array([0.0, 1.0, 1e-9, 2.0]), np.array([1.0, 0.0, 1.0, 4.0]))
    np.testing.assert_array_equal(v, [MISSING_VARIANCE, MISSING_VARIANCE, MISSING_VARIANCE, 0.25])


def test_t_zero_subject_weighted_out_but_counted_in_dof():
    b = [1.0, 2.0, 1.5, 3.0, 0.7]
    t = [2.0, 4.0, 1.5, 3.0, 0.0]  # last subject: t = 0, beta kept
    with_zero_t = _one(b, t)
    without = _one(b[:4], t[:4])
    # weight ~1e-8: the estimate barely moves (τ² moves a little: n differs in REML)
    assert with_zero_t[0] == pytest.approx(without[0], rel=1e-4)
    assert abs(with_zero_t[0] - without[0]) < 1e-3 * abs(0.7 - without[0])
    assert with_zero_t[1] != pytest.approx(without[1], rel=1e-3)  # n - p = 4, not 3
    design = MemaDesign("one", (5,), ("x",))
    assert design.full_dof == 4
    # with -missing_data the t = 0 subject is not a zero beta: no DOF change
    z = np.array([[0]])
    assert voxel_dof(design, z)[0] == design.full_dof


def test_tau2_nonnegative_and_finite():
    rng = np.random.default_rng(0)
    (b1, t1), (b2, t2) = _random_sets(rng, 8, 7, 2000, zero_frac=0.1)
    design = MemaDesign("groups", (8, 7), ("A", "B"))
    r = mema([b1, b2], [t1, t2], design, missing_data=True, dtype=np.float64)
    tau = r.bricks[:, r.labels.index("tau")]
    assert np.all(tau >= 0) and np.all(np.isfinite(tau))
    i2 = r.bricks[:, r.labels.index("I2")]
    assert np.all((i2 >= 0) & (i2 <= 1))


def test_swapping_sets_negates_contrast():
    rng = np.random.default_rng(1)
    (b1, t1), (b2, t2) = _random_sets(rng, 6, 6, 500)
    ab = mema([b1, b2], [t1, t2], MemaDesign("groups", (6, 6), ("A", "B")), dtype=np.float64)
    ba = mema([b2, b1], [t2, t1], MemaDesign("groups", (6, 6), ("B", "A")), dtype=np.float64)
    assert ba.labels[4] == "A-B:b"
    # The REML trigger looks at the intercept's t (the *first* group's mean), so swapping can
    # switch REML on or off at a voxel: AFNI itself is symmetric only where that choice agrees.
    x = np.column_stack([np.ones(12), np.r_[np.zeros(6), np.ones(6)]])
    y_ab, y_ba = np.concatenate([b1, b2]).T, np.concatenate([b2, b1]).T
    v_ab = np.concatenate([within_subject_variance(b1, t1), within_subject_variance(b2, t2)]).T
    v_ba = np.concatenate([v_ab[:, 6:].T, v_ab[:, :6].T]).T
    same = fit_block(y_ab, v_ab, x).used_reml == fit_block(y_ba, v_ba, x).used_reml
    assert same.mean() > 0.8
    np.testing.assert_allclose(ba.bricks[same, 4], -ab.bricks[same, 4], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ba.bricks[same, 5], -ab.bricks[same, 5], rtol=1e-7, atol=1e-10)
    # group means swap places; heterogeneity and QE do not change
    np.testing.assert_allclose(ba.bricks[same, 0], ab.bricks[same, 2], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        ba.bricks[same][:, [6, 7, 8]], ab.bricks[same][:, [6, 7, 8]], atol=1e-6
    )
    np.testing.assert_allclose(ba.bricks[:, 8], ab.bricks[:, 8], rtol=1e-9)  # QE always


@pytest.mark.parametrize("n_nonzero_betas, analysed", [(2, False), (3, True)])
def test_skipped_voxel_rule_at_threshold(n_nonzero_betas, analysed):
    b1 = np.zeros(4)
    b2 = np.zeros(4)
    chosen = [(0, 0), (1, 0), (0, 1)][:n_nonzero_betas]  # (set, subject)
    for s, i in chosen:
        (b1 if s == 0 else b2)[i] = [1.3, 0.4, -0.8][len([c for c in chosen if c < (s, i)])]
    out = _two(b1, b1 * 2, b2, b2 * 3, missing_data=True)
    assert np.any(out != 0) == analysed


def test_n_nonzero_without_missing_data_and_default_all_voxels():
    b = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    t = b * 2
    design = MemaDesign("one", (3,), ("x",))
    default = mema([b], [t], design).bricks
    assert np.any(default[0] != 0) and np.all(default[1] == 0)  # all-zero voxel -> zeros
    strict = mema([b], [t], design, n_nonzero=3).bricks
    assert np.all(strict == 0)


def test_mask_zeroes_voxels():
    rng = np.random.default_rng(2)
    (b1, t1), _ = _random_sets(rng, 5, 1, 10)
    mask = np.ones(10)
    mask[[3, 7]] = 0
    r = mema([b1], [t1], MemaDesign("one", (5,), ("x",)), mask=mask)
    assert np.all(r.bricks[[3, 7]] == 0) and np.all(r.bricks[[0, 1, 2], 0] != 0)


def test_chunking_and_threads_do_not_change_results():
    rng = np.random.default_rng(3)
    (b1, t1), (b2, t2) = _random_sets(rng, 7, 5, 1500, zero_frac=0.2)
    design = MemaDesign("groups", (7, 5), ("A", "B"))
    whole = mema([b1, b2], [t1, t2], design, missing_data=True)
    chunks = []
    pieces = mema(
        [b1, b2],
        [t1, t2],
        design,
        missing_data=True,
        chunk_size=97,
        n_jobs=2,
        on_start=chunks.append,
    )
    assert chunks and chunks[0] > 1
    np.testing.assert_array_equal(whole.bricks, pieces.bricks)


def test_remap_t_matches_r_rounding_and_saturates():
    # row 71 of the two-set vectors: DOF 9 -> 10; R's (0.5 - tail) + 0.5 rounding matters
    got = remap_t(np.array([51.21075443554789]), np.array([9]), 10)
    assert got[0] == pytest.approx(40.387093358625464, rel=1e-13)
    t = np.array([-3.0, 0.0, 2.5, 300.0])
    out = remap_t(t, np.array([10, 10, 0, 11]), 10)
    assert out[0] == -3.0 and out[1] == 0.0 and out[2] == 0.0 and out[3] == np.inf
    np.testing.assert_allclose(t_quantile(t_cdf(np.array([-2.0, 1.5]), 7.0), 7.0), [-2.0, 1.5])


def test_voxel_dof_formulas():
    z = np.array([[0, 1, 2, 1], [0, 1, 0, 2]])
    g = MemaDesign("groups", (5, 5), ("A", "B"))
    np.testing.assert_array_equal(voxel_dof(g, z), [8, 8, 10, 7])  # AFNI: + z1 - z2
    np.testing.assert_array_equal(voxel_dof(g, z, correct_dof=True), [8, 6, 6, 5])
    c = MemaDesign("conditions", (5, 5), ("A", "B"))
    np.testing.assert_array_equal(voxel_dof(c, z), [4, 3, 2, 2])
    assert c.full_dof == 4 and g.full_dof == 8


# ----------------------------------------------------------------------------------------------
# layout, paired design, covariates
# ----------------------------------------------------------------------------------------------


def test_labels_and_stat_aux_tutorial():
    codes, params = TWO_GROUPS.stat_aux()
    assert codes == [0, 3, 0, 3, 0, 3, 0, 0, 6]
    assert [p for p in params if p] == [(10.0,)] * 4


def test_labels_with_covariates_and_paired():
    cov = np.zeros((12, 2))
    cov[:, 0] = np.arange(12) - 5.5
    cov[:, 1] = np.tile([0.5, -0.5], 6)
    d = MemaDesign("groups", (6, 6), ("A", "B"), covariates=cov, covariate_names=("age", "sex"))
    assert d.labels() == [
        "A:b",
        "A:t",
        "B:b",
        "B:t",
        "B-A:b",
        "B-A:t",
        "age:b",
        "age:t",
        "sex:b",
        "sex:t",
        "I2",
        "tau",
        "QE:Chisq",
    ]
    codes, params = d.stat_aux()
    assert [i for i, c in enumerate(codes) if c == 3] == [1, 3, 5, 7, 9]
    assert codes[-1] == 6 and params[1] == (8.0,) and d.min_nonzero == 5
    p = MemaDesign("conditions", (4, 4), ("chx", "keypress"))
    assert p.labels() == ["keypress-chx:b", "keypress-chx:t", "I2", "tau", "QE:Chisq"]


def test_paired_design_is_one_sample_on_contrast():
    rng = np.random.default_rng(4)
    (b1, t1), (b2, t2) = _random_sets(rng, 6, 6, 300)
    b2[0, :50] = 0.0  # some missing
    t2[0, :50] = 0.0
    design = MemaDesign("conditions", (6, 6), ("c1", "c2"))
    got = mema([b1, b2], [t1, t2], design, dtype=np.float64).bricks
    y = (b2 - b1).T
    v = within_subject_variance(b1, t1).T + within_subject_variance(b2, t2).T
    y[v >= MISSING_VARIANCE] = 0.0
    fit = fit_block(y, v, np.ones((6, 1)))
    np.testing.assert_allclose(got[:, 0], fit.coef[:, 0], rtol=1e-12)
    np.testing.assert_allclose(got[:, 1], fit.stat[:, 0], rtol=1e-12)
    assert np.all(got[:50, 0] == pytest.approx(fit.coef[:50, 0]))


def test_paired_design_needs_equal_counts():
    with pytest.raises(ValueError, match="same subjects"):
        MemaDesign("conditions", (5, 4), ("a", "b"))


def test_center_covariates_mean_over_unique_subjects():
    rows = ["s1", "s2", "s3", "s1", "s2"]
    values = np.array([[10.0], [20.0], [60.0], [10.0], [20.0]])
    np.testing.assert_allclose(center_covariates(values, rows)[:, 0], [-20, -10, 30, -20, -10])
    np.testing.assert_allclose(center_covariates(values, rows, [5.0])[:, 0], values[:, 0] - 5)


def test_bad_inputs_raise():
    b = np.ones((3, 4))
    with pytest.raises(ValueError, match="NaN or Inf"):
        mema([np.where(np.eye(3, 4) > 0, np.nan, b)], [b], MemaDesign("one", (3,), ("x",)))
    with pytest.raises(ValueError, match="Too few subjects"):
        mema([b[:1]], [b[:1]], MemaDesign("one", (1,), ("x",)))
    with pytest.raises(ValueError, match="voxels"):
        mema([b, b[:, :3]], [b, b[:, :3]], MemaDesign("groups", (3, 3), ("A", "B")))


# ----------------------------------------------------------------------------------------------
# independent reference: explicit P matrices, one voxel at a time, straight from the spec
# ----------------------------------------------------------------------------------------------


def _reference_voxel(y, v, x, hk=True):
    n, p = x.shape

    def wls(tau2):
        w = np.diag(1.0 / (v + tau2))
        vb = np.linalg.inv(x.T @ w @ x)
        coef = vb @ x.T @ w @ y
        pmat = w - w @ x @ vb @ x.T @ w
        return vb, coef, pmat

    def collect(tau2):
        vb, coef, pmat = wls(tau2)
        if hk:
            vb = max(y @ pmat @ y / (n - p), 0.0) * vb
        se = np.sqrt(np.diag(vb))
        return coef, vb, np.where(se > 1e-8, coef / np.where(se > 1e-8, se, 1), 0.0)

    _, _, p0 = wls(0.0)
    qe, trp0 = y @ p0 @ y, np.trace(p0)
    tau2 = max(0.0, (qe - (n - p)) / trp0)
    coef, vb, stat = collect(tau2)
    if np.any(np.abs(stat) > 1.3):
        t2, it, rel, ok = max(0.0, np.var(y, ddof=1) - v.mean()), 0, 1000.0, True
        while rel > 1e-3:
            it += 1
            if it > 200:
                ok = False
                break
            _, _, pmat = wls(t2)
            u = pmat @ y
            delta = (u @ u - np.trace(pmat)) / np.trace(pmat @ pmat)
            while t2 + delta < 0:
                delta /= 2
            t2 += delta
            rel = abs(delta) / (abs(t2) + 1e-8)
        if ok:
            tau2 = t2
            coef, vb, stat = collect(t2)
    with np.errstate(divide="ignore", invalid="ignore"):
        i2 = 1.0 / (1.0 + (n - p - 1) / (trp0 * tau2))
    return coef, vb, stat, i2, np.sqrt(tau2), qe


@pytest.mark.parametrize("kind", ["one", "groups", "groups_cov", "one_cov"])
def test_against_explicit_reference(kind):
    rng = np.random.default_rng(5)
    (b1, t1), (b2, t2) = _random_sets(rng, 6, 5, 120, zero_frac=0.1)
    n_cov = 1 if kind.endswith("cov") else 0
    if kind.startswith("groups"):
        rows = 11
        cov = rng.normal(size=(rows, 1)) if n_cov else None
        design = MemaDesign(
            "groups", (6, 5), ("A", "B"), covariates=cov, covariate_names=("age",) if n_cov else ()
        )
        betas, tstats = [b1, b2], [t1, t2]
    else:
        rows = 6
        cov = rng.normal(size=(rows, 1)) if n_cov else None
        design = MemaDesign(
            "one", (6,), ("A",), covariates=cov, covariate_names=("age",) if n_cov else ()
        )
        betas, tstats = [b1], [t1]
    got = mema(betas, tstats, design, dtype=np.float64).bricks
    y = np.concatenate(betas).T
    v = np.concatenate(
        [within_subject_variance(b, t) for b, t in zip(betas, tstats, strict=True)]
    ).T
    x = design.matrix()
    for i in range(y.shape[0]):
        coef, vb, stat, i2, tau, qe = _reference_voxel(y[i], v[i], x)
        expected = np.zeros(design.n_bricks)
        expected[0], expected[1] = coef[0], stat[0]
        k0, pos = 1, 2
        if design.kind == "groups":
            expected[4], expected[5] = coef[1], stat[1]
            expected[2] = coef[0] + coef[1]
            root = np.sqrt(vb[1, 1] - vb[0, 0])
            expected[3] = expected[2] / root if root > 1e-16 else 0.0
            k0, pos = 2, 6
        for k in range(design.n_cov):
            expected[pos + 2 * k], expected[pos + 2 * k + 1] = coef[k0 + k], stat[k0 + k]
        expected[-3:] = [0.0 if np.isnan(i2) else i2, tau, qe]
        np.testing.assert_allclose(got[i], expected, rtol=1e-7, atol=1e-6, err_msg=f"voxel {i}")
