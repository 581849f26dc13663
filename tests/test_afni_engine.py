"""The afni engine: the rendered script (golden files, shellcheck, bash -n, quoting) and the
runner (logs, step errors, values, outputs), the latter with stub AFNI programs so it runs
without AFNI; one test marked ``afni`` runs the real programs and compares with the native engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from afni_group.engines.afni import render, runner
from afni_group.errors import StepError, UsageError
from afni_group.plan import (
    Analysis,
    AnalysisPlan,
    SetSpec,
    SubjectFiles,
    Thresholds,
)
from afni_group.programs.clusterize.formats import parse_clusterize_report

GOLDEN = Path(__file__).parent / "data" / "golden"
AFNI_IO = Path(__file__).parent / "data" / "afni_io"
# real AFNI outputs, copied from the spec's testdata
SPEC = Path(__file__).parent / "data" / "spec"
PIPELINE = SPEC / "afni_examples" / "pipeline" / "derivatives" / "afni"

SEED_SETS = [
    SetSpec("chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"),
    SetSpec("keypress", "left_vs_right_press#0_Coef", "left_vs_right_press#0_Tstat"),
]
# the tutorial's example err_reml ACF lines (spec 04 §2.3): mean printed as 0.742692 2.93065 10.6363
ACF_LINES = [
    "0.727118 2.91228 10.7089 7.6267",
    "0.746814 2.93786 10.8411 7.7",
    "0.754144 2.9418 10.3588 7.5",
]
# AFNI_26.2.03's report for the tutorial-shaped pipeline (spec 07 §5.8), for the stub 3dClusterize
CHX_REPORT = "".join(
    f"{line}\n"
    for line in [
        "#",
        "#  Cluster report ",
        "#[ Dataset prefix      = mema_results.nii.gz ]",
        "#[ Threshold vol       = [1] 'chx:t' ]",
        "#[ Supplement dat vol  = [0] 'chx:b' ]",
        "#[ Option summary      = bisided,-4.586894,4.586894,clust_nvox,4,NN1 ]",
        "#[ Threshold value(s)  = left-tail thr=-4.586894;  right-tail thr=4.586894 ]",
        "#[ Aux. stat. info.    = DEGREES-of-FREEDOM : 10  ]",
        "#[ Nvoxel threshold    = 4;  Volume threshold = 62.500 ]",
        "#[ Single voxel volume = 15.625 (microliters) ]",
        "#[ Neighbor type, NN   = 1 ]",
        "#[ Voxel datum type    = float ]",
        "#[ Voxel dimensions    = 2.500 mm X 2.500 mm X 2.500 mm ]",
        "#[ Coordinates Order   = RAI ]",
        "#[ Mask                = mask.nii.gz ]",
        "#[ Mean and SEM based on signed voxel intensities ]",
        "#",
        "#Volume  CM RL  CM AP  CM IS  minRL  maxRL  minAP  maxAP  minIS  maxIS    Mean     SEM    Max Int  MI RL  MI AP  MI IS",
        "#------  -----  -----  -----  -----  -----  -----  -----  -----  -----  -------  -------  -------  -----  -----  -----",
        "     31   -6.0   -6.8    1.5   -8.8   -1.2  -11.2   -3.8   -1.2    6.2   1.0307   0.0432   1.6878   -6.2   -6.2    1.2 ",
        "     11    6.9    9.2   -0.6    3.8    8.8    6.2   11.2   -3.8    1.2  -0.9817   0.0671  -1.5241    6.2    8.8   -1.2 ",
        "#------  -----  -----  -----  -----  -----  -----  -----  -----  -----  -------  -------  -------  -----  -----  -----",
        "#    42   -2.7   -2.8    1.0                                             0.5036   0.1428                             ",
    ]
)
NO_CLUSTERS = "#** NO CLUSTERS FOUND ***\n"

needs_shellcheck = pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck not installed"
)


# ------------------------------------------------------------------------------------------------
# plans
# ------------------------------------------------------------------------------------------------


def standard_units(root: Path, labels) -> list[SubjectFiles]:
    """afni_proc's standard result files of ``labels`` under ``root/bids/derivatives/afni``."""
    afni = root / "bids" / "derivatives" / "afni"
    out = []
    for label in labels:
        res = afni / f"sub-{label}" / f"sub-{label}.results"
        out.append(
            SubjectFiles(
                label,
                res,
                res / f"stats.sub-{label}_REML+tlrc.HEAD",
                res / f"mask_epi_anat.sub-{label}+tlrc.HEAD",
                res / f"blur_est.sub-{label}.1D",
            )
        )
    return out


def make_plan(
    root: Path = Path("/data"),
    labels: tuple[str, ...] = ("01", "02", "03", "04", "05", "06"),
    analyses: list[Analysis] | None = None,
    output_dir: Path | None = None,
    **options,
) -> AnalysisPlan:
    """The seed's parameters: 6 subjects, sets chx/keypress (groups), NN1 bisided p=0.001."""
    bids = root / "bids"
    afni = bids / "derivatives" / "afni"
    subjects = standard_units(root, labels)
    out = output_dir or bids / "derivatives" / "afni-group"
    options.setdefault("n_cpus", 8)
    return AnalysisPlan(
        bids_dir=bids,
        afni_dir=afni,
        output_dir=out,
        work_dir=out / ".work",
        subjects=subjects,
        analyses=analyses or [Analysis("mema", list(SEED_SETS), "groups")],
        **options,
    )


def variant_plans() -> dict[str, AnalysisPlan]:
    """Plans exercising every template branch (for shellcheck and bash -n)."""
    one = Analysis("chx", [SEED_SETS[0]], "one")
    paired = Analysis("paired", list(SEED_SETS), "conditions")
    return {
        "seed": make_plan(),
        "ggc": make_plan(via_gen_group_command=True),
        "multi": make_plan(
            analyses=[Analysis("mema", list(SEED_SETS), "groups"), one, paired],
            thresholds=Thresholds(pthr=1e-4, alpha=0.01, sided="1sided", nn=3),
            clustsim_iter=2000,
            seed=42,
            n_cpus=1,
            hktest=False,
            missing_data=None,
            covariates={"age": {f"0{i}": 20.0 + i for i in range(1, 7)}},
        ),
        "odd-paths": make_plan(
            root=Path("/data/my study $HOME `x` \"q\" 'a' #1"),
            output_dir=Path("/out/a b}c"),
            thresholds=Thresholds(sided="2sided", nn=2),
        ),
    }


# ------------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "plan_options"),
    [
        ("group_analysis_seed.sh", {}),
        ("group_analysis_seed_ggc.sh", {"via_gen_group_command": True}),
    ],
)
def test_seed_script_equals_golden(name, plan_options):
    text = render.render_script(
        make_plan(**plan_options),
        command_line="afni-group /data/bids /data/bids/derivatives/afni-group group",
    )
    assert text == (GOLDEN / name).read_text()


def test_seed_script_has_the_tutorials_commands():
    text = render.render_script(make_plan())
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert 'outdir="${AFNI_GROUP_OUTDIR:-/data/bids/derivatives/afni-group}"' in text
    assert "-groups chx keypress \\\n    -missing_data 0\n" in text
    assert '-frac "$mask_frac"' in text and "mask_frac=1.0" in text
    assert "csim_pthr=0.001" in text and "csim_alpha=0.05" in text
    assert "csim_sided=bisided" in text and "csim_neigh=1" in text
    # AFNI's default -iter and seed, as in the tutorial
    assert "-iter" not in text and "-seed" not in text
    # each set and their difference (3dMEMA's B-A label)
    for label in ("chx", "keypress", "keypress-chx"):
        assert f'-inset "${{omema}}[{label}:t]"' in text
        for kind in ("map", "ee", "report"):
            name = make_plan().cluster_files(label)[kind]
            assert f'"{name}"' in text
    assert (
        len(re.findall(r"^step ", text, flags=re.M)) == 11
    )  # MEMA, mask, ACF, ClustSim, 1d_tool, 3 x (p2dsetstat, clust)


@needs_shellcheck
@pytest.mark.parametrize("variant", sorted(variant_plans()))
def test_rendered_scripts_pass_shellcheck(variant, tmp_path):
    script = tmp_path / "group_analysis.sh"
    script.write_text(render.render_script(variant_plans()[variant], command_line="afni-group x"))
    done = subprocess.run(
        ["shellcheck", "--severity=style", str(script)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


@needs_shellcheck
def test_golden_files_pass_shellcheck():
    for golden in sorted(GOLDEN.glob("*.sh")):
        done = subprocess.run(["shellcheck", str(golden)], capture_output=True, text=True)
        assert done.returncode == 0, f"{golden.name}:\n{done.stdout}"


@pytest.mark.parametrize("variant", sorted(variant_plans()))
def test_rendered_scripts_pass_bash_n(variant, tmp_path):
    script = tmp_path / "group_analysis.sh"
    script.write_text(render.render_script(variant_plans()[variant]))
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "with space",
        "a#0_Coef[x]",
        "$HOME",
        "`id`",
        'say "hi"',
        "back\\slash",
        "it's",
        "*?",
    ],
)
def test_quoting_round_trips_through_bash(value):
    for word in (render.shell_word(value), render.double_quote(value)):
        done = subprocess.run(
            ["bash", "-c", f"printf '%s' {word}"], capture_output=True, text=True, check=True
        )
        assert done.stdout == value


def test_odd_paths_reach_the_programs_unchanged(tmp_path):
    plan = variant_plans()["odd-paths"]
    text = render.render_script(plan)
    # evaluate the variable block and the first mask path as bash would
    head = text.split("# 3dMEMA settings")[0]
    probe = tmp_path / "probe.sh"
    probe.write_text(head + 'printf "%s\\n" "$outdir" "${mask_files[0]}"\n')
    env = {k: v for k, v in os.environ.items() if k != "AFNI_GROUP_OUTDIR"}
    done = subprocess.run(["bash", str(probe)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(plan.output_dir), str(plan.subjects[0].mask)]


def test_number_round_trips_floats():
    assert render.number(0.001) == "0.001"
    assert render.number(1) == "1.0"
    assert float(render.number(1e-5)) == 1e-5


def test_mema_command_designs_and_options():
    plan = make_plan(hktest=False, missing_data=None)
    groups = render.mema_command(plan, Analysis("g", list(SEED_SETS), "groups"))
    assert "    -groups chx keypress" in groups and "    -no_HKtest" == groups[-1]
    assert not any("-missing_data" in x for x in groups)
    paired = render.mema_command(plan, Analysis("p", list(SEED_SETS), "conditions"))
    assert "    -conditions chx keypress" in paired
    one = render.mema_command(plan, Analysis("o", [SEED_SETS[0]], "one"))
    assert not any("-groups" in x or "-conditions" in x for x in one)
    assert sum(x.strip().startswith("sub-") for x in one) == 6
    assert one[-1] == "    -no_HKtest"


def test_covariates_table_uses_subject_ids():
    plan = make_plan(labels=("01", "02"), covariates={"sex": {"01": 0.0, "02": 1.0}})
    assert render.covariate_rows(plan) == ["subj\tsex", "sub-01\t0.0", "sub-02\t1.0"]
    text = render.render_script(plan)
    assert "-covariates covariates.txt" in text
    assert "cat > covariates.txt << 'EOF'\nsubj\tsex\nsub-01\t0.0\nsub-02\t1.0\nEOF\n" in text


def test_conditions_clusters_the_plans_tested_labels():
    plan = make_plan(analyses=[Analysis("p", list(SEED_SETS), "conditions")])
    tested = render.tested_sets(plan, plan.analyses[0])
    assert [t["label"] for t in tested] == plan.analyses[0].tested_labels()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"correct_dof": True}, "--engine native"),
        ({"via_gen_group_command": True, "covariates": {"age": {}}}, "--covariates"),
    ],
)
def test_unsupported_options_are_refused(options, message):
    with pytest.raises(UsageError, match=message):
        render.render_script(make_plan(**options))


def test_gen_group_command_cannot_do_paired():
    plan = make_plan(
        via_gen_group_command=True, analyses=[Analysis("p", list(SEED_SETS), "conditions")]
    )
    with pytest.raises(UsageError, match="paired"):
        render.render_script(plan)


# ------------------------------------------------------------------------------------------------
# runner helpers
# ------------------------------------------------------------------------------------------------


def test_last_error_line_prefers_afni_errors():
    lines = [
        "++ processing\n",
        "\x1b[7m** FATAL ERROR:\x1b[0m Could not find string label: chx:t\n",
        "** Program compile date = Nov 23 2026\n",
    ]
    assert runner.last_error_line(lines) == "** FATAL ERROR: Could not find string label: chx:t"
    assert runner.last_error_line(["a\n", "last words \n", "\n"]) == "last words"
    assert runner.last_error_line([]) == ""


def test_clusters_counted_from_the_report():
    assert parse_clusterize_report(CHX_REPORT).n_clusters == 2
    assert parse_clusterize_report(NO_CLUSTERS).n_clusters == 0
    assert parse_clusterize_report(NO_CLUSTERS + " 0\n").n_clusters == 0  # -report_zero


def test_read_values_and_log_names(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("acf=0.7 3 10\nclust_thrvol=4\nclust_thrvol=5\nnoise\n")
    assert runner.read_values(path) == {"acf": "0.7 3 10", "clust_thrvol": "5"}
    assert runner.step_log_name(7, "analysis-mema/3dClusterize/chx") == (
        "afni_07_analysis-mema_3dClusterize_chx.log"
    )


# ------------------------------------------------------------------------------------------------
# runner with stub AFNI programs
# ------------------------------------------------------------------------------------------------

_STUB_PRELUDE = """#!/usr/bin/env bash
set -eu
name=$(basename "$0")
printf '%s\\n' "$@" > "$STUB_CALLS/$name.args"
echo "OMP_NUM_THREADS=$OMP_NUM_THREADS AFNI_DONT_LOGFILE=$AFNI_DONT_LOGFILE" > "$STUB_CALLS/$name.env"
if [[ ${STUB_FAIL:-} == "$name" ]]; then
    echo "++ $name: starting"
    printf '\\033[7m** FATAL ERROR:\\033[0m stub failure in %s\\n' "$name" >&2
    echo "** Program compile date = Nov 23 2026" >&2
    exit 1
fi
opt() {  # value after option $1 in the arguments
    local want=$1; shift
    while (( $# )); do
        if [[ $1 == "$want" ]]; then echo "$2"; return; fi
        shift
    done
}
"""
STUBS = {
    "3dMEMA": 'cp "$STUB_DATA/mema_results.nii.gz" "$(opt -prefix "$@")"\n',
    "3dmask_tool": 'cp "$STUB_DATA/mask.nii.gz" "$(opt -prefix "$@")"\n',
    "3dClustSim": (
        'p=$(opt -prefix "$@")\n'
        "for f in $p.NN{1,2,3}_{1sided,2sided,bisided}.{1D,niml} $p.mask 3dClustSim.cmd; do\n"
        '    echo stub > "$f"\n'
        "done\n"
        'echo "++ 3dClustSim: stub" >&2\n'
    ),
    "1d_tool.py": 'printf "%b\\n" "${STUB_CLUST_NVOX:-4}"\n',
    "p2dsetstat": 'printf "%s" "${STUB_THR:-4.586894}"\n',
    "3dClusterize": (
        'label=$(opt -ithr "$@"); label=${label%:t}\n'
        'if [[ -f "$STUB_DATA/report_$label.txt" ]]; then\n'
        '    cp "$STUB_DATA/clust_map.nii.gz" "$(opt -pref_map "$@")"\n'
        '    cp "$STUB_DATA/clust_EE.nii.gz" "$(opt -pref_dat "$@")"\n'
        '    cat "$STUB_DATA/report_$label.txt"\n'
        "else\n"
        "    echo '#** NO CLUSTERS FOUND ***'\n"
        '    echo "*+ WARNING: No clusters found!" >&2\n'
        "fi\n"
    ),
    "Rscript": "exit 0\n",
}


@pytest.fixture
def stub_afni(tmp_path, monkeypatch):
    """Stub AFNI programs on PATH that copy the tutorial-shaped AFNI outputs (tests/data)."""
    if not (AFNI_IO / "mema_results.nii.gz").is_file():
        pytest.skip("tests/data/afni_io example outputs missing")
    bindir, data, calls = tmp_path / "bin", tmp_path / "stubdata", tmp_path / "calls"
    for d in (bindir, data, calls):
        d.mkdir()
    for name, body in STUBS.items():
        path = bindir / name
        path.write_text(_STUB_PRELUDE + body)
        path.chmod(0o755)
    shutil.copy(AFNI_IO / "mema_results.nii.gz", data)
    shutil.copy(AFNI_IO / "mask.nii.gz", data)
    shutil.copy(AFNI_IO / "clust_bisided_map_chx.nii.gz", data / "clust_map.nii.gz")
    shutil.copy(AFNI_IO / "clust_bisided_EE_chx.nii.gz", data / "clust_EE.nii.gz")
    (data / "report_chx.txt").write_text(CHX_REPORT)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STUB_DATA", str(data))
    monkeypatch.setenv("STUB_CALLS", str(calls))
    monkeypatch.delenv("STUB_FAIL", raising=False)
    return calls


def _plan_with_blur_files(tmp_path: Path, **options) -> AnalysisPlan:
    plan = make_plan(root=tmp_path, n_cpus=3, **options)
    for i, subj in enumerate(plan.subjects):
        subj.results_dir.mkdir(parents=True)
        subj.blur_est.write_text(
            "0 0 0 0   # err_reml FWHM blur estimates\n"
            f"{ACF_LINES[i % 3]}   # err_reml ACF blur estimates\n"
        )
    return plan


def _run(plan: AnalysisPlan, tmp_path: Path) -> list[dict]:
    script = tmp_path / "group_analysis.sh"
    script.write_text(render.render_script(plan))
    return runner.run_afni(plan, script, tmp_path / "staging", plan.output_dir / "logs")


def test_afni_available_names_missing_programs(stub_afni, monkeypatch, tmp_path):
    ok, reason = runner.afni_available()
    assert ok, reason
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    ok, reason = runner.afni_available(via_gen_group_command=True)
    assert not ok
    for program in runner.AFNI_PROGRAMS + runner.GGC_PROGRAMS:
        assert program in reason


def test_run_afni_with_stub_programs(stub_afni, tmp_path):
    plan = _plan_with_blur_files(tmp_path)
    results = _run(plan, tmp_path)

    assert len(results) == 1
    res = results[0]
    assert res["acf"] == [0.742692, 2.93065, 10.6363]
    assert res["cluster_size_threshold"] == 4
    assert [r["voxel_threshold"] for r in res["results"]] == [4.586894] * 3
    assert [r["n_clusters"] for r in res["results"]] == [2, 0, 0]
    chx, kp, diff = res["results"]
    assert diff["set"] == "keypress-chx" and diff["tbrick"] == "keypress-chx:t"
    assert chx["map"] == "clust_bisided_map_chx.nii.gz" and kp["map"] is None and kp["ee"] is None

    adir = plan.analysis_dir(plan.analyses[0])
    names = {p.name for p in adir.iterdir()}
    assert {
        "mema_results.nii.gz",
        "mask.nii.gz",
        "ClustSim.NN1_bisided.1D",
        "3dClustSim.cmd",
    } <= names
    assert "clust_bisided_map_keypress.nii.gz" not in names
    assert (adir / "clust_bisided_report_keypress.txt").read_text() == NO_CLUSTERS
    assert "afni_values.txt" not in names
    assert not (tmp_path / "staging").exists()

    # clusters.tsv from the native clusterizer, checked against AFNI's report rows
    rows = (adir / "clust_bisided_clusters_chx.tsv").read_text().splitlines()
    assert rows[0].startswith("cluster_id\tn_voxels\tvolume_mm3\ttail")
    assert [r.split("\t")[1] for r in rows[1:]] == ["31", "11"]
    assert len((adir / "clust_bisided_clusters_keypress.tsv").read_text().splitlines()) == 1

    # the arguments the programs received
    mema_args = (stub_afni / "3dMEMA.args").read_text().splitlines()
    assert mema_args[:4] == ["-prefix", "mema_results.nii.gz", "-jobs", "3"]
    assert mema_args[mema_args.index("-set") + 3 : mema_args.index("-set") + 5] == [
        str(plan.subjects[0].stats) + "[left_vs_right_chx#0_Coef]",
        str(plan.subjects[0].stats) + "[left_vs_right_chx#0_Tstat]",
    ]
    assert mema_args[-5:] == ["-groups", "chx", "keypress", "-missing_data", "0"]
    csim_args = (stub_afni / "3dClustSim.args").read_text().splitlines()
    assert csim_args == ["-both", "-mask", "mask.nii.gz", "-acf", "0.742692", "2.93065",
                         "10.6363", "-prefix", "ClustSim"]  # fmt: skip
    clz = (stub_afni / "3dClusterize.args").read_text().splitlines()
    assert clz[clz.index("-bisided") : clz.index("-bisided") + 3] == [
        "-bisided", "-4.586894", "4.586894"]  # fmt: skip
    assert clz[clz.index("-clust_nvox") + 1] == "4"
    assert (stub_afni / "3dClustSim.env").read_text().strip() == (
        "OMP_NUM_THREADS=3 AFNI_DONT_LOGFILE=YES"
    )

    # one log per step, split at the markers, plus the combined log
    logs = plan.output_dir / "logs"
    assert (logs / "afni_04_3dClustSim.log").read_text() == (
        "++ 3dClustSim: stub\n++ Finished cluster simulations\n"
    )
    assert (logs / "afni_10_analysis-mema_3dClusterize_keypress.log").is_file()
    assert (logs / "afni_11_analysis-mema_3dClusterize_keypress-chx.log").is_file()
    assert "++ afni-group step: 3dmask_tool" in (logs / "afni_engine.log").read_text()


def test_run_afni_two_analyses_share_mask_and_clustsim(stub_afni, tmp_path):
    plan = _plan_with_blur_files(
        tmp_path,
        analyses=[Analysis("chx", [SEED_SETS[0]], "one"), Analysis("kp", [SEED_SETS[1]], "one")],
    )
    (Path(os.environ["STUB_DATA"]) / "report_chx.txt").unlink()  # nothing survives anywhere
    results = _run(plan, tmp_path)
    assert [[s["n_clusters"] for s in r["results"]] for r in results] == [[0], [0]]
    assert results[1]["acf"] == results[0]["acf"] and results[1]["cluster_size_threshold"] == 4
    second = plan.analysis_dir(plan.analyses[1])
    assert (second / "mask.nii.gz").is_file() and (second / "ClustSim.NN1_bisided.1D").is_file()
    assert (second / "clust_bisided_report_keypress.txt").read_text() == NO_CLUSTERS


def test_failed_step_raises_step_error_with_afni_message(stub_afni, tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_FAIL", "3dClustSim")
    plan = _plan_with_blur_files(tmp_path)
    with pytest.raises(StepError) as info:
        _run(plan, tmp_path)
    message = str(info.value)
    assert "AFNI step 3dClustSim failed" in message
    assert "** FATAL ERROR: stub failure in 3dClustSim" in message
    assert "afni_04_3dClustSim.log" in message
    assert not (plan.analysis_dir(plan.analyses[0]) / "mema_results.nii.gz").exists()


def test_failed_csim_lookup_stops_with_a_clear_message(stub_afni, tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_CLUST_NVOX", "** uncorrected pthr = 0.0011 not in ClustSim table\\n0")
    plan = _plan_with_blur_files(tmp_path)
    with pytest.raises(StepError, match=r"analysis-mema/1d_tool\.py failed.*found no cluster size"):
        _run(plan, tmp_path)


def test_missing_acf_lines_stop_the_script(stub_afni, tmp_path):
    plan = _plan_with_blur_files(tmp_path)
    for subj in plan.subjects:
        subj.blur_est.write_text("0 0 0 0   # errts FWHM blur estimates\n")
    with pytest.raises(StepError, match="AFNI step ACF failed.*No REML ACF lines"):
        _run(plan, tmp_path)


def test_one_subject_without_acf_line_stops_the_script(stub_afni, tmp_path):
    plan = _plan_with_blur_files(tmp_path)
    plan.subjects[1].blur_est.write_text("")
    with pytest.raises(
        StepError, match=r"AFNI step ACF failed.*no 'err_reml ACF' line in .*sub-02"
    ):
        _run(plan, tmp_path)


def test_bad_p2dsetstat_output_stops_the_script(stub_afni, tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_THR", "nan")
    plan = _plan_with_blur_files(tmp_path)
    with pytest.raises(StepError, match="p2dsetstat/chx failed.*'nan' instead of a positive"):
        _run(plan, tmp_path)
