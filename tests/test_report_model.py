"""The report follows params.json's group model and cluster route (issue 22, item 7).

A 3dttest++ run with ``--clustsim randomise`` is built from AFNI's tutorial subjects
(tests/data/spec, as test_report.py): a real native ``3dttest++ -toz`` bucket of the six subjects
(z bricks ``LABEL_Zscr``, no degrees of freedom); its cluster files and ClustSim table are the
tutorial's 3dMEMA ones under the randomise route's names (the report reads them alike; the
numbers do not matter here, the words do).
"""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from pathlib import Path

import pytest

from afni_group.plan import MEMA_FILE, TTEST_FILE, clustsim_table_prefix
from afni_group.programs.cli.dispatch import main as afni_native
from afni_group.report import context, methods, model
from afni_group.report import render as report
from test_report import CHX_CLUSTERS, _params, _write_tsv

PIPE = Path(__file__).parent / "data/spec/afni_examples/pipeline/derivatives/afni"
GROUP = PIPE / "GROUP_LEVEL"
pytestmark = pytest.mark.skipif(not GROUP.is_dir(), reason="AFNI example outputs not available")
SUBJECTS = ["01", "02", "03", "10", "11", "26"]
Z_001 = 3.290527  # |z| at p = 0.001 bi-sided
TABLE = "ClustSim.CSimA.NN1_bisided.1D"


def _ttest_params() -> dict:
    """params.json of a 3dttest++ -Clustsim run of the two sets as groups (keypress = setA)."""
    params = _params()
    params.update(program="3dttest++", clustsim_route="randomise")
    params["options"]["covariates"] = ["age"]
    analysis = params["analyses"][0]
    analysis.update(program="3dttest++", stats_file=TTEST_FILE, acf=None)
    analysis["clustsim"].update(route="randomise", table=TABLE, iterations=10000, seed=None)
    for result in analysis["results"]:
        label = result["set"]
        result.update(tbrick=f"{label}_Zscr", bbrick=f"{label}_mean", voxel_threshold=Z_001)
        result.pop("dof")  # z: params.json records none
    return params


@pytest.fixture(scope="module")
def ttest_out(tmp_path_factory) -> Path:
    """OUTPUT_DIR of a 3dttest++ randomise run (see the module docstring)."""
    out = tmp_path_factory.mktemp("ttest")
    adir = out / "analysis-mema"
    adir.mkdir()
    for name in ("mask.nii.gz", "clust_bisided_map_chx.nii.gz", "clust_bisided_EE_chx.nii.gz"):
        shutil.copy(GROUP / name, adir / name)
    for name in ("clust_bisided_report_chx.txt", "clust_bisided_report_keypress.txt"):
        shutil.copy(GROUP / name, adir / name)
    shutil.copy(GROUP / "ClustSim.NN1_bisided.1D", adir / TABLE)
    argv = ["3dttest++"]
    for label, brick in (("keypress", "press"), ("chx", "chx")):
        argv += ["-setA" if label == "keypress" else "-setB", label]
        for s in SUBJECTS:
            stats = next(PIPE.glob(f"sub-{s}/*/stats.sub-{s}_REML+tlrc.HEAD"))
            argv += [f"sub-{s}", f"{stats}[left_vs_right_{brick}#0_Coef]"]
    argv += ["-toz", "-mask", str(adir / "mask.nii.gz"), "-prefix", str(adir / TTEST_FILE)]
    assert afni_native(argv) == 0
    _write_tsv(adir / "clust_bisided_clusters_chx.tsv", CHX_CLUSTERS)
    _write_tsv(adir / "clust_bisided_clusters_keypress.tsv", [])
    (out / "params.json").write_text(json.dumps(_ttest_params(), indent=2))
    report.write_report(out)
    return out


@pytest.fixture(scope="module")
def ttest_html(ttest_out) -> str:
    return (ttest_out / "report.html").read_text()


def _text(html: str) -> str:
    """The page's text: inline tags dropped, the others a space."""
    inline = re.sub(r"</?(code|strong|sub)>", "", html)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", inline)))


def test_randomise_report_says_z_and_reads_the_ttest_bucket(ttest_out, ttest_html):
    text = _text(ttest_html)
    assert "Group model 3dttest++" in text and "randomise route" in text
    assert f"3dttest++ → {TTEST_FILE}" in text
    assert "z brick chx_Zscr, effect brick chx_mean (z: no df)" in text
    assert "|z| ≥ 3.291" in text and "— (z)" in text  # outcome table: no df for z
    assert "Peak z" in text and "Max z" in text and "Peak t" not in text
    assert "No voxel passed" in text or "largest group of voxels" in text  # keypress: none
    assert "z map chx_Zscr over" in text and "t map" not in text
    # the figures were drawn from ttest_results.nii.gz (no mema_results.nii.gz here)
    assert not (ttest_out / "analysis-mema" / MEMA_FILE).exists()
    assert "report/mema_chx_tmap.png" in ttest_html
    assert f"ClustSim table {TABLE} (from 3dttest++ -Clustsim)" in text


def test_randomise_report_has_no_acf_part_and_says_where_k_came_from(ttest_html):
    text = _text(ttest_html)
    assert "Mean ACF" not in text and "Smoothness (mean ACF)" not in text
    assert "not modelled: the randomise route needs no ACF" in text
    route = "3dttest++ -Clustsim (sign-randomised residuals, no spatial model): 10000 iterations"
    assert route in text
    assert "Heterogeneity" not in text  # 3dMEMA's I2/tau/QE maps: 3dttest++ writes none
    assert "Voxelwise p above 0.001" not in text  # the ACF note is for the ACF route only
    # the betas only: 3dttest++ uses no t sub-brick
    assert "chx: left_vs_right_chx#0_Coef; keypress: left_vs_right_press#0_Coef Group" in text


def test_randomise_methods_name_model_route_iterations_and_references(ttest_html):
    methods_part = _text(ttest_html.split("Draft methods text")[1])
    assert "3dttest++ (ordinary least-squares t-test, two-sample unpaired, pooled variance)" in (
        methods_part
    )
    assert "covariate age (participants.tsv) centred on each set's mean" in methods_part
    assert "converted to z scores (3dttest++ -toz)" in methods_part
    assert "3dttest++ -Clustsim (Cox et al., 2017)" in methods_part
    assert "signs randomised per participant and participants permuted across the two groups" in (
        methods_part
    )
    assert "gave 10000 null t-tests" in methods_part and TABLE in methods_part
    assert "clusters of at least 4 voxels" in methods_part
    assert "Brain Connectivity 7(3):152-171" in methods_part
    assert "3dMEMA" not in methods_part and "Chen et al., 2012" not in methods_part
    assert "ACF" not in methods_part


def _analysis_ctx(program: str, route: str, design: str, pthr: float = 0.001) -> dict:
    """A report analysis context as methods.methods_text receives it."""
    stat = "z" if route == "randomise" else "t"
    return {
        "program": program,
        "route": route,
        "stat": stat,
        "design": design,
        "sets": [{"label": "A", "labels_given": False}, {"label": "B", "labels_given": False}],
        "mask": {"frac": 1.0, "n_voxels": 1000},
        "acf": None if route == "randomise" else {"abc": ["0.7", "3", "10"], "fwhm": 7.6},
        "k": 12,
        "clustsim": {
            "pthr": pthr,
            "sided": "bisided",
            "nn": 1,
            "alpha": 0.05,
            "iterations": 2000,
            "table": f"{clustsim_table_prefix(route)}.NN1_bisided.1D",
        },
    }


def test_mema_acf_methods_and_references():
    analyses = [_analysis_ctx("3dMEMA", "acf", "groups")]
    text = methods.methods_text({}, analyses, {"n_included": 20})
    assert "3dMEMA (mixed-effects meta-analysis, design: groups)" in text
    assert "(Chen et al., 2012)" in text and "t statistics" in text
    assert "mixed ACF averaged over participants (a, b, c = 0.7, 3, 10" in text
    assert "3dClustSim -both from this ACF (2000 iterations; Cox et al., 2017)" in text
    assert "z scores" not in text and "-Clustsim" not in text
    refs = " ".join(methods.references({}, analyses))
    assert "NeuroImage 60(1):747-765" in refs and "Brain Connectivity 7(3):152-171" in refs


def test_paired_randomise_flips_signs_without_permuting():
    analyses = [_analysis_ctx("3dttest++", "randomise", "conditions")]
    text = methods.methods_text({}, analyses, {"n_included": 20})
    assert "3dttest++ (ordinary least-squares t-test, paired)" in text
    assert "signs randomised per participant, gave 2000 null t-tests" in text
    assert "permuted" not in text
    assert "Chen et al." not in " ".join(methods.references({}, analyses))


def test_ttest_with_acf_route_keeps_the_acf_and_t():
    analyses = [_analysis_ctx("3dttest++", "acf", "one")]
    text = methods.methods_text({}, analyses, {"n_included": 20})
    assert "3dttest++ (ordinary least-squares t-test, one-sample)" in text
    assert "3dClustSim -both from this ACF" in text and "z scores" not in text


@pytest.mark.parametrize(
    ("program", "route", "pthr", "alternative"),
    [
        ("3dMEMA", "acf", 0.005, "--program 3dttest++ --clustsim randomise"),
        ("3dttest++", "acf", 0.01, "--clustsim randomise"),
        ("3dMEMA", "acf", 0.001, None),
        ("3dttest++", "randomise", 0.01, None),
    ],
)
def test_acf_route_above_p_001_gets_the_cox_note(program, route, pthr, alternative):
    note = model.acf_pthr_advice(program, route, pthr)
    if alternative is None:
        assert note is None
        return
    assert f"<code>{alternative}" in note and "Cox et al. (2017)" in note
    assert f"p = {pthr:g}" in note and "above the nominal level" in note
    assert "at least 14 datasets" in note


def test_acf_note_in_the_analysis_context(tmp_path):
    """The 3dMEMA tutorial run at p = 0.005: the analysis carries the note (no sets drawn)."""
    out = tmp_path / "out"
    shutil.copytree(GROUP, out / "analysis-mema", ignore=shutil.ignore_patterns("*.tcsh", "clust*"))
    analysis = _params()["analyses"][0]
    analysis["clustsim"]["pthr"] = 0.005
    analysis["results"] = []
    ctx = context._analysis_context(out, analysis, tmp_path)
    assert ctx["program"] == "3dMEMA" and ctx["route"] == "acf"  # old params: the defaults
    assert ctx["stats_file"] == MEMA_FILE and ctx["acf"] is not None
    assert len(ctx["notes"]) == 1 and "--program 3dttest++ --clustsim randomise" in ctx["notes"][0]


@pytest.mark.parametrize(
    ("route", "program", "auto"),
    [("randomise", "3dttest++ -Clustsim", ""), ("acf", "3dClustSim", " or auto")],
)
def test_unstable_threshold_warning_names_the_routes_program(tmp_path, route, program, auto):
    out = tmp_path / "out"
    (out / "analysis-mema").mkdir(parents=True)
    shutil.copy(GROUP / "mask.nii.gz", out / "analysis-mema" / "mask.nii.gz")
    analysis = _params()["analyses"][0]
    analysis["clustsim"].update(route=route, table=None)
    analysis["results"] = []
    analysis["cluster_size_mc"] = {"size": 7.1, "mc_se": 0.2, "ci95": [6.7, 7.5], "threshold": 8,
                                   "stable": False, "iterations_to_settle": 46000}  # fmt: skip
    ctx = context._analysis_context(out, analysis, tmp_path)
    assert (
        f"about 46000 {program} iterations would settle it (--clustsim-iter 46000{auto})"
        in (ctx["warnings"][0])
    )


def test_resolve_fills_the_model_from_the_top_or_the_defaults():
    old = model.resolve({}, [{"name": "a"}])[0]
    assert (old["program"], old["stats_file"], old["clustsim"]["route"]) == (
        "3dMEMA",
        MEMA_FILE,
        "acf",
    )
    top = {"program": "3dttest++", "clustsim_route": "randomise"}
    new = model.resolve(top, [{"name": "a", "clustsim": {"nn": 2}}])[0]
    assert (new["program"], new["stats_file"], new["clustsim"]) == (
        "3dttest++",
        TTEST_FILE,
        {"nn": 2, "route": "randomise"},
    )
    assert model.stat_name("B-A_Zscr") == "z" and model.stat_name("B-A_Tstat") == "t"
    assert model.stat_name("chx:t") == "t" and model.stat_name(None) == "t"


def test_methods_name_the_sets_and_the_difference():
    groups = _analysis_ctx("3dMEMA", "acf", "groups")
    groups["sets"].append({"label": "B-A", "kind": "difference", "labels_given": False})
    text = methods.methods_text({}, [groups], {"n_included": 20})
    assert "group effects for A, B and their difference B-A from" in text
    paired = _analysis_ctx("3dttest++", "randomise", "conditions")
    paired["sets"] = [{"label": "B-A", "kind": "difference", "labels_given": False}]
    text = methods.methods_text({}, [paired], {"n_included": 20})
    assert "group effects for the difference B-A from" in text


def test_analyses_sharing_a_route_are_said_once_with_their_sizes():
    """--group-column over several contrasts: one model and one threshold sentence, the cluster
    sizes of the per-analysis tables as a range."""
    analyses = []
    for name, k in (("leftchx", 8), ("rightchx", 7), ("leftpress", 7)):
        a = _analysis_ctx("3dttest++", "randomise", "groups")
        a.update(name=name, k=k)
        analyses.append(a)
    text = methods.methods_text({}, analyses, {"n_included": 16})
    assert "for A and B (in each of the analyses leftchx, rightchx, leftpress) from" in text
    assert text.count("Cluster-size thresholds were obtained") == 1
    assert "clusters of at least 7 to 8 voxels (per analysis) (NN1 connectivity)" in text


def test_input_qc_names_the_program_it_came_before():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("afni_group", "templates"))
    template = env.get_template("report_input_qc.html.j2")
    qc = {"group_mask_voxels": 10, "extreme_factor": 10.0, "sets": [], "warnings": []}
    for program in ("3dttest++", None):
        params = {"input_qc": qc, "program": program}
        html = template.render(input_qc=context.input_qc_context(params))
        assert f"Checked before {program or '3dMEMA'}:" in html


@pytest.fixture(scope="module")
def native_randomise(tmp_path_factory) -> Path:
    """A real native ``--program 3dttest++ --clustsim randomise`` run, report included: two
    groups of seven from the demo generator (small grid), patients' chx effect planted."""
    from afni_group import cli
    from afni_group.demo.writing import write_demo

    root = tmp_path_factory.mktemp("native_rand")
    write_demo(root / "bids", n_subjects=14, seed=0, grid="small", group_effect=1.0)
    argv = [str(root / "bids"), str(root / "out"), "group", "--engine", "native",
            "--program", "3dttest++", "--clustsim", "randomise", "--clustsim-iter", "1000",
            "--seed", "5", "--n-cpus", "1", "--group-column", "group",
            "--set", "chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"]  # fmt: skip
    assert cli.main(argv) == 0
    return root / "out"


def test_native_randomise_run_report(native_randomise):
    params = json.loads((native_randomise / "params.json").read_text())
    (analysis,) = params["analyses"]
    labels = [r["set"] for r in analysis["results"]]
    assert labels == ["control", "patient", "patient-control"]
    text = _text((native_randomise / "report.html").read_text())
    assert "Group model 3dttest++" in text and "randomise route" in text
    for label in labels:
        assert f"z brick {label}_Zscr, effect brick {label}_mean (z: no df)" in text
    assert "Difference patient-control" in text
    assert "Mean ACF" not in text and "not modelled: the randomise route needs no ACF" in text
    route = "3dttest++ -Clustsim (sign-randomised residuals, no spatial model): 1000 iterations"
    assert f"{route}, seed 5; table ClustSim.CSimA.NN1_bisided.1D" in text
    k = analysis["cluster_size_threshold"]
    methods_part = text.split("Draft methods text")[1]
    assert "3dttest++ (ordinary least-squares t-test, two-sample unpaired, pooled variance)" in (
        methods_part
    )
    assert "for control, patient and their difference patient-control from" in methods_part
    assert "participants permuted across the two groups, gave 1000 null t-tests" in methods_part
    assert f"clusters of at least {k} voxels (NN1 connectivity)" in methods_part
    assert "Chen et al., 2012" not in methods_part and "Cox et al., 2017" in methods_part
