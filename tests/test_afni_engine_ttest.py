"""The afni engine with ``--program 3dttest++``: the rendered script for every design and both
cluster-threshold routes (bash -n, shellcheck, gen_group_command.py's command shape), the
-Clustsim race check with stub programs, and, marked ``afni``, real AFNI: the command against
real gen_group_command.py, and the 3dttest++ runs against the native 3dttest++.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from afni_group.engines.afni import render, runner
from afni_group.errors import UsageError
from afni_group.plan import Analysis, AnalysisPlan, SetSpec, SubjectFiles
from test_afni_engine import standard_units  # the same afni_proc file names

CHX = SetSpec("chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat")
PRESS = SetSpec("press", "left_vs_right_press#0_Coef", "left_vs_right_press#0_Tstat")
LABELS = tuple(f"{i:02d}" for i in range(1, 15))


def units(root: Path, labels=LABELS) -> list[SubjectFiles]:
    return standard_units(root, labels)


def ttest_plan(design: str, route: str, root: Path = Path("/data"), **options) -> AnalysisPlan:
    """14 subjects; one: chx; groups: odd (control) vs even (patient); conditions: chx, press."""
    subjects = units(root)
    analysis = {
        "one": Analysis("ttest", [CHX], "one"),
        "groups": Analysis(
            "ttest",
            [SetSpec("control", CHX.beta, CHX.tstat), SetSpec("patient", CHX.beta, CHX.tstat)],
            "groups",
            members=[subjects[0::2], subjects[1::2]],
        ),
        "conditions": Analysis("ttest", [CHX, PRESS], "conditions"),
    }[design]
    bids = root / "bids"
    options.setdefault("n_cpus", 2)
    return AnalysisPlan(
        bids_dir=bids,
        afni_dir=bids / "derivatives" / "afni",
        output_dir=bids / "derivatives" / "afni-group",
        work_dir=bids / "derivatives" / "afni-group" / ".work",
        subjects=subjects,
        analyses=[analysis],
        program="3dttest++",
        clustsim_route=route,
        **options,
    )


def command_words(text: str, program: str) -> list[str]:
    """The words of the first ``program`` command in a rendered script (continuations joined)."""
    start = text.index(f"\n{program} \\\n") + 1
    lines = []
    for line in text[start:].splitlines():
        lines.append(line.rstrip("\\").rstrip())
        if not line.endswith("\\"):
            break
    return shlex.split(" ".join(lines))


CASES = [(d, r) for d in ("one", "groups", "conditions") for r in ("acf", "randomise")]


# ------------------------------------------------------------------------------------------------
# rendering (no AFNI needed)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("design", "route"), CASES)
@pytest.mark.parametrize("ggc", [False, True])
def test_rendered_ttest_scripts_are_valid_bash(design, route, ggc, tmp_path):
    plan = ttest_plan(design, route, seed=3, via_gen_group_command=ggc)
    script = tmp_path / "group_analysis.sh"
    script.write_text(render.render_script(plan, command_line="afni-group x"))
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    if shutil.which("shellcheck"):
        done = subprocess.run(
            ["shellcheck", "--severity=style", str(script)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout


@pytest.mark.parametrize(("design", "route"), CASES)
def test_ttest_command_as_gen_group_command_writes_it(design, route):
    plan = ttest_plan(design, route, seed=3)
    text = render.render_script(plan)
    words = command_words(text, "3dttest++")
    sets = plan.analyses[0].sets
    assert words[:3] == ["3dttest++", "-prefix", "$ottest"]
    # the second set is -setA: A-B is 3dMEMA's B-A (second - first)
    setb = ["-setB", sets[0].label] if len(sets) == 2 else []
    assert ("-AminusB" in words) == bool(setb)
    a = words.index("-setA")
    assert words[a + 1] == sets[-1].label
    assert words[a + 2] == ("sub-02" if design == "groups" else "sub-01")
    assert words[a + 3].endswith(f"stats.{words[a + 2]}_REML+tlrc.HEAD[{sets[-1].beta}]")
    if setb:
        b = words.index("-setB")
        assert words[b : b + 3] == [*setb, "sub-01"]
        assert words[b + 3].endswith(f"[{sets[0].beta}]")
    assert ("-paired" in words) == (design == "conditions")
    options = words[words.index("-mask") :]
    expected = ["-mask", "$omask"]
    if route == "randomise":
        expected += ["-prefix_clustsim", "$csim_prefix", "-CLUSTSIM", "$csim_jobs"]
        expected += ["-seed", "$csim_seed"]
        assert "csim_jobs=2\n" in text and 'export AFNI_TTEST_NUMCSIM="$csim_iter"' in text
        assert "3dClustSim -DAFNI_DONT_LOGFILE=YES \\\n" in text  # only the race rerun
        assert '-infile "${csim_table_prefix}.${csim_NN}_${csim_sided}.1D"' in text
        assert "csim_table_prefix=ClustSim.CSimA\n" in text and "blur_files" not in text
    else:
        assert "-acf" in command_words(text, "3dClustSim") and "AFNI_TTEST_NUMCSIM" not in text
    assert options == expected
    # the group mask is made before 3dttest++ reads it; every statistic is 3dttest++'s
    assert text.index("step 3dmask_tool") < text.index("step analysis-ttest/3dttest++")
    stat = "Zscr" if route == "randomise" else "Tstat"
    for label in plan.analyses[0].tested_labels():
        assert f'-inset "${{ottest}}[{label}_{stat}]"' in text
        assert f'-ithr "{label}_{stat}" \\\n    -idat "{label}_mean"' in text
    assert "3dMEMA" not in text and "Rscript" not in text


def test_gen_group_command_call_for_two_groups():
    plan = ttest_plan("groups", "randomise", via_gen_group_command=True)
    words = command_words(render.render_script(plan), "gen_group_command.py")
    assert words[:7] == ["gen_group_command.py", "-command", "3dttest++", "-write_script",
                         "${adir}/${script_ttest}", "-prefix", "$ottest"]  # fmt: skip
    dsets = [i for i, w in enumerate(words) if w == "-dsets"]
    assert len(dsets) == 2 and words[dsets[0] + 1].endswith("stats.sub-02_REML+tlrc.HEAD")
    tail = words[words.index("-set_labels") :]
    assert tail == ["-set_labels", "patient", "control", "-subs_betas", CHX.beta,
                    "-options", "-mask", "$omask", "-prefix_clustsim", "$csim_prefix",
                    "-CLUSTSIM", "$csim_jobs"]  # fmt: skip


def test_covariates_table_uses_the_dataset_labels():
    plan = ttest_plan("one", "acf", covariates={"age": {u: 20.0 + i for i, u in enumerate(LABELS)}})
    text = render.render_script(plan)
    assert "\nsubj\tage\nsub-01\t20.0\nsub-02\t21.0\n" in text
    assert command_words(text, "3dttest++")[-2:] == ["-covariates", "covariates.txt"]


def test_long_set_labels_select_the_bricks_3dttest_names():
    """3dttest++ keeps 12 characters of a set name: the later steps select those labels."""
    plan = ttest_plan("one", "acf")
    plan.analyses[0].sets = [SetSpec("a_very_long_label", CHX.beta, CHX.tstat)]
    text = render.render_script(plan)
    assert "a_very_long_label" in command_words(text, "3dttest++")
    assert '-inset "${ottest}[a_very_long__Tstat]"' in text  # "a_very_long_label"[:12] + _Tstat


def test_ttest_refusals():
    plan = ttest_plan("one", "acf", via_gen_group_command=True, covariates={"age": {}})
    with pytest.raises(UsageError, match="--covariates"):
        render.render_script(plan)


def test_afni_available_for_3dttest(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    ok, reason = runner.afni_available(program="3dttest++")
    assert not ok and "3dttest++" in reason and "3drefit" in reason and "3dMEMA" not in reason
    assert "Rscript" not in reason


# ------------------------------------------------------------------------------------------------
# AFNI's multi-job -Clustsim race, with stub programs
# ------------------------------------------------------------------------------------------------

_STUB = """#!/usr/bin/env bash
set -eu
name=$(basename "$0")
printf '%s\\n' "$@" >> "$STUB_CALLS/$name.args"
echo "--" >> "$STUB_CALLS/$name.args"
opt() { local want=$1; shift; while (( $# )); do [[ $1 == "$want" ]] && { echo "$2"; return; }; shift; done; }
"""
STUBS = {
    "3dmask_tool": 'cp "$STUB_DATA/mask.nii.gz" "$(opt -prefix "$@")"\n',
    # -CLUSTSIM 2 as AFNI runs it under dash: job 0 done, job 1 still writing when 3dClustSim
    # reads (iter="3" of 4), job 1 finishing in the background after 3dttest++ exits
    "3dttest++": (
        'cp "$STUB_DATA/ttest.nii.gz" "$(opt -prefix "$@")"\n'
        "printf 'abcd' > ClustSim.0000.sdat; echo '0 1' > ClustSim.0000.minmax.1D\n"
        "printf 'ab' > ClustSim.0001.sdat; touch ClustSim.resid.nii\n"
        "for t in 1sided 2sided bisided; do echo '  iter=\"3\"' > ClustSim.CSimA.NN1_$t.niml; done\n"
        "echo '3drefit -atrstring A file:ClustSim.CSimA.NN1_1sided.niml' > ClustSim.CSimA.cmd\n"
        "( sleep 2; printf 'abcd' > ClustSim.0001.sdat; echo '0 1' > ClustSim.0001.minmax.1D ) &\n"
    ),
    "3dClustSim": (
        'cat ClustSim.0001.sdat > "$STUB_CALLS/sdat1_seen"\n'
        "for t in 1sided 2sided bisided; do echo '  iter=\"4\"' > ClustSim.CSimA.NN1_$t.niml\n"
        "    echo 'table' > ClustSim.CSimA.NN1_$t.1D; done\n"
    ),
    "3drefit": "",
    "1d_tool.py": 'echo "${STUB_CLUST_NVOX:-4}"\n',
    "p2dsetstat": "printf 3.290527\n",
    "3dClusterize": "echo '#** NO CLUSTERS FOUND ***'\n",
}


def test_randomise_waits_for_every_job_and_reruns_3dclustsim(tmp_path, monkeypatch):
    from afni_group import afni_io

    bindir, data, calls = tmp_path / "bin", tmp_path / "data", tmp_path / "calls"
    for d in (bindir, data, calls):
        d.mkdir()
    for name, body in STUBS.items():
        (bindir / name).write_text(_STUB + body)
        (bindir / name).chmod(0o755)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    mask = np.ones((4, 4, 4), dtype=np.uint8)
    afni_io.write_dataset(afni_io.AfniDataset(mask, affine, ["mask"]), data / "mask.nii.gz")
    z = np.zeros((4, 4, 4, 2), dtype=np.float32)
    bucket = afni_io.AfniDataset(z, affine, ["chx_mean", "chx_Zscr"], [0, 5], [(), ()])
    afni_io.write_dataset(bucket, data / "ttest.nii.gz")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STUB_DATA", str(data))
    monkeypatch.setenv("STUB_CALLS", str(calls))
    plan = ttest_plan("one", "randomise", root=tmp_path, clustsim_iter=4)
    script = tmp_path / "group_analysis.sh"
    script.write_text(render.render_script(plan))
    (result,) = runner.run_afni(plan, script, tmp_path / "staging", plan.output_dir / "logs")

    assert result["acf"] is None and result["cluster_size_threshold"] == 4
    assert result["clustsim_randomise"] == {"jobs": 2, "iterations": 4}
    assert result["results"][0]["tbrick"] == "chx_Zscr"
    # 3dClustSim was rerun once job 1 had finished, on both jobs' files; then 3drefit
    assert (calls / "sdat1_seen").read_text() == "abcd"
    assert (calls / "3dClustSim.args").read_text().split()[-4:-1] == [
        "mask.nii.gz", "./ClustSim.0000.sdat", "./ClustSim.0001.sdat"]  # fmt: skip
    assert (calls / "3drefit.args").read_text().split() == [
        "-atrstring", "A", "file:ClustSim.CSimA.NN1_1sided.niml", "ttest_results.nii.gz", "--"]  # fmt: skip
    log = (plan.output_dir / "logs" / "afni_engine.log").read_text()
    assert "AFNI's 3dClustSim read 3 of 4 simulations" in log
    adir = plan.analysis_dir(plan.analyses[0])
    left = sorted(p.name for p in adir.iterdir() if p.name.startswith("ClustSim."))
    assert not [n for n in left if n.endswith((".sdat", ".resid.nii", ".niml"))]
    assert "ClustSim.0000.minmax.1D" in left  # AFNI's -Clustsim leaves them too
    assert "ClustSim.CSimA.NN1_bisided.1D" in left and "ClustSim.CSimA.cmd" in left


# ------------------------------------------------------------------------------------------------
# real AFNI (marked afni): gen_group_command.py's command, and 3dttest++ against native
# ------------------------------------------------------------------------------------------------

_OK, _WHY = runner.afni_available(via_gen_group_command=True, program="3dttest++")
afni_only = pytest.mark.skipif(not _OK, reason=f"AFNI not available: {_WHY}")
#: the script's variables in the command lines, as the run sets them
VARIABLES = {"ottest": "ttest_results.nii.gz", "omask": "mask.nii.gz", "csim_prefix": "ClustSim",
             "csim_jobs": "2", "csim_seed": "3", "script_ttest": "ggc.tcsh"}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo generator's 14 subjects (small grid), odd control and even patient."""
    from afni_group.demo import cli as demo_cli

    root = tmp_path_factory.mktemp("demo")
    argv = [str(root / "bids"), "--subjects", "14", "--grid", "small", "--group-effect", "1"]
    assert demo_cli.main(argv) == 0
    return root


def command_text(text: str, program: str) -> str:
    """The lines of the first ``program`` command of a rendered script, as written."""
    start = text.index(f"\n{program} \\\n") + 1
    end = start
    while text[end : text.index("\n", end)].endswith("\\"):
        end = text.index("\n", end) + 1
    return text[start : text.index("\n", end)]


def stub_argv(command: str, tmp: Path, demo: Path) -> list[str]:
    """What ``3dttest++`` receives from ``command`` (bash, or tcsh for a file): a stub prints
    its arguments."""
    stub = tmp / "stub"
    stub.mkdir(exist_ok=True)
    (stub / "3dttest++").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    (stub / "3dttest++").chmod(0o755)
    env = {**os.environ, **VARIABLES, "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}"}
    env |= {"adir": str(tmp), "path_proc": str(demo / "bids" / "derivatives" / "afni")}
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env,
                          cwd=tmp, check=True)  # fmt: skip
    return done.stdout.splitlines()


@pytest.mark.afni
@afni_only
@pytest.mark.parametrize("design", ["one", "groups", "conditions"])
@pytest.mark.parametrize("route", ["acf", "randomise"])
def test_command_equals_real_gen_group_commands(design, route, demo, tmp_path):
    plan = ttest_plan(design, route, root=demo, seed=3)
    direct = command_text(render.render_script(plan), "3dttest++")
    plan.via_gen_group_command = True
    ggc = command_text(render.render_script(plan), "gen_group_command.py")
    subprocess.run(["bash", "-c", ggc], env={**os.environ, **VARIABLES, "adir": str(tmp_path),
                   "path_proc": str(demo / "bids" / "derivatives" / "afni")},
                   cwd=tmp_path, check=True, capture_output=True)  # fmt: skip
    written = (tmp_path / "ggc.tcsh").read_text()
    assert "-AminusB" in written or design == "one"
    tcsh = stub_argv(f"tcsh -ef {tmp_path / 'ggc.tcsh'}", tmp_path, demo)
    assert stub_argv(direct, tmp_path, demo) == tcsh
    assert len(tcsh) > 2 * len(LABELS)


def _native_ttest(plan: AnalysisPlan, adir: Path, out: Path, route: str):
    """Native 3dttest++ (the program, issue 22 phase 1) on the plan's sets, in ``out``."""
    from afni_group.programs.ttest import files as ttest

    analysis = plan.analyses[0]
    sets = [ttest.DatasetSet(plan.brick_specs("beta", s, plan.set_units(analysis, k)),
                             [u.unit_id for u in plan.set_units(analysis, k)], s.label)
            for k, s in enumerate(analysis.sets)][::-1]  # fmt: skip
    out.mkdir()
    shutil.copy(adir / "mask.nii.gz", out / "mask.nii.gz")
    options = None
    if route == "randomise":
        options = ttest.ClustsimOptions(jobs=2, iterations=plan.clustsim_iter, seed=plan.seed,
                                        prefix="ClustSim", threads=2)  # fmt: skip
    kinds = {"one": None, "groups": "pooled", "conditions": "paired"}
    previous = Path.cwd()
    os.chdir(out)
    try:
        ttest.run_ttest(sets[0], sets[1] if len(sets) > 1 else None, "ttest_results.nii.gz",
                        kind=kinds[analysis.design], mask="mask.nii.gz", toz=route == "randomise",
                        clustsim_options=options, progress=False)  # fmt: skip
    finally:
        os.chdir(previous)


@pytest.mark.afni
@afni_only
@pytest.mark.parametrize(("design", "route"), [("groups", "randomise"), ("one", "acf")])
def test_real_3dttest_matches_native(design, route, demo, tmp_path):
    from afni_group import parity, parity_tables

    root = tmp_path / "run"
    shutil.copytree(demo / "bids", root / "bids", symlinks=True)
    plan = ttest_plan(design, route, root=root, seed=5, clustsim_iter=1000, n_cpus=2)
    script = tmp_path / "group_analysis.sh"
    script.write_text(render.render_script(plan))
    (result,) = runner.run_afni(plan, script, tmp_path / "staging", plan.output_dir / "logs")
    adir = plan.analysis_dir(plan.analyses[0])
    _native_ttest(plan, adir, tmp_path / "native", route)

    bucket = parity.compare_mema(tmp_path / "native" / "ttest_results.nii.gz",
                                 adir / "ttest_results.nii.gz", "ttest", parity.TTEST_RTOL)  # fmt: skip
    assert bucket.status == parity.PASS, bucket.detail
    from afni_group import afni_io

    labels = afni_io.read_dataset(adir / "ttest_results.nii.gz").labels
    stat = "Zscr" if route == "randomise" else "Tstat"
    for label in plan.analyses[0].tested_labels():
        assert f"{label}_{stat}" in labels and f"{label}_mean" in labels
    if route == "randomise":
        # same seeds and job split: native draws AFNI's signs and permutations, so once the
        # script has 3dClustSim read every job's simulations (AFNI's own run read 996 of 1000
        # here) the tables agree cell for cell but for a few one-voxel differences (2 of 2610
        # cells when written; without the rerun they rest on different simulations)
        assert result["clustsim_randomise"] == {"jobs": 2, "iterations": 1000}
        tables = parity.compare_clustsim(tmp_path / "native", adir, "tables",
                                         prefix="ClustSim.CSimA", iterations=1000)  # fmt: skip
        assert tables.status == parity.PASS, tables.detail
        differing = 0
        for one_d in sorted((tmp_path / "native").glob("ClustSim.CSimA.NN*.1D")):
            a, b = (parity_tables.read_table(d / one_d.name).sizes for d in (one_d.parent, adir))
            assert np.abs(a - b).max() <= 1, one_d.name
            differing += int(np.count_nonzero(a != b))
        assert differing <= 0.005 * tables.values["cells"]
        assert result["acf"] is None
    else:
        assert len(result["acf"]) == 3
    assert result["results"][0]["tbrick"].endswith(stat)
    assert (adir / plan.cluster_files(result["results"][0]["set"])["report"]).is_file()


def test_plan_summary_names_only_the_bricks_3dttest_reads():
    text = ttest_plan("one", "randomise").describe()
    assert "3dttest++ design=one: chx=[left_vs_right_chx#0_Coef]" in text
    assert "#0_Tstat" not in text and "3dttest++ -Clustsim -iter" in text
