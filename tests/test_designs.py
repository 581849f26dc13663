"""Issue 21: the designs labs run (two groups, paired sessions, per-session analyses), the
afni_proc layouts discovery accepts, and --participant-label / --session-label errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from afni_group import cli, designs, errors, layouts
from afni_group.engines.afni import render
from afni_group.plan import Analysis, AnalysisPlan, SetSpec, SubjectFiles

CHX = ["--set", "chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"]
KEYPRESS = ["--set", "keypress", "left_vs_right_press#0_Coef", "left_vs_right_press#0_Tstat"]
FAST = ["--engine", "native", "--clustsim-iter", "2000", "--seed", "1", "--n-cpus", "1"]


def run(capsys, *argv) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.startswith("afni-group: error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------------------ layouts


@pytest.mark.parametrize(
    ("relative", "session", "layout"),
    [
        ("sub-01/sub-01.results", None, "sub-X/sub-X.results"),
        ("sub-01.results", None, "sub-X.results"),
        ("sub-01/S01.results", None, "sub-X/<subj_id>.results"),
        ("sub-01/ses-pre/sub-01_ses-pre.results", "pre", "sub-X/ses-Y/sub-X_ses-Y.results"),
        ("sub-01/sub-01_ses-pre.results", "pre", "sub-X/sub-X_ses-Y.results"),
        ("sub-01_ses-pre.results", "pre", "sub-X_ses-Y.results"),
        ("sub-01/ses-pre/S01pre.results", "pre", "sub-X/ses-Y/<subj_id>.results"),
    ],
)
def test_each_afni_proc_layout_is_found(tmp_path, relative, session, layout):
    results = tmp_path / relative
    results.mkdir(parents=True)
    found = layouts.find_results(tmp_path, "01", session)
    assert found is not None and found.results_dir == results and found.layout == layout
    assert found.proc_id == results.name.removesuffix(".results")
    # afni_proc's uvars name the subject ID its files use
    (results / "out.ss_review_uvars.json").write_text(json.dumps({"subj": "ID7"}))
    assert layouts.find_results(tmp_path, "01", session).proc_id == "ID7"
    assert layouts.processed_subjects(tmp_path) == ["01"]
    assert layouts.sessions_found(tmp_path, ["01"]) == ([session] if session else [])


def test_nothing_found_is_one_short_line_whatever_the_subject_count(tmp_path):
    for i in range(150):
        (tmp_path / f"sub-{i:03d}" / "func").mkdir(parents=True)
    text = layouts.nothing_found_message(tmp_path, 150, sessions=False)
    assert len(text) < 300 and "\n" not in text
    assert "tried sub-X/sub-X.results, sub-X.results, sub-X/<subj_id>.results" in text
    assert "found 150 sub-*/ (sub-000/ holds func), no *.results;" in text


def test_flat_layout_runs_and_says_which_layout(capsys, tiny_bids, tmp_path):
    afni = tiny_bids / "derivatives" / "afni"
    for i in range(1, 5):
        sid = f"sub-{i:02d}"
        (afni / sid / f"{sid}.results").rename(afni / f"{sid}.results")
        (afni / sid).rmdir()
    out = tmp_path / "out"
    code, err = run(capsys, tiny_bids, out, "group", "--dry-run", *CHX)
    assert code == 0, err
    assert f"found afni_proc results as {afni}/sub-X.results for 4 of 4 subjects" in err
    plan = json.loads((out / "plan.json").read_text())
    assert plan["afni_proc_layout"] == "sub-X.results"
    assert (
        f"{afni}/sub-03.results/stats.sub-03_REML+tlrc.HEAD" in (out / "inventory.tsv").read_text()
    )


def test_results_in_no_layout_is_one_line_exit_66(capsys, tiny_bids, tmp_path):
    afni = tiny_bids / "derivatives" / "afni"
    for i in range(1, 5):
        sid = f"sub-{i:02d}"
        (afni / sid / f"{sid}.results").rename(afni / sid / "results_v2")
    code, err = run(capsys, tiny_bids, tmp_path / "out", "group", "--dry-run")
    assert code == errors.EXIT_NO_INPUT
    line = one_error_line(err)
    assert len(line) < 300 + len("afni-group: error: ")
    assert "tried sub-X/sub-X.results" in line and "sub-01/ holds results_v2" in line


@pytest.mark.parametrize("labels", [("01", "02", "99"), ("01", "98", "99")])
def test_any_unmatched_participant_label_exits_18_naming_them(capsys, tiny_bids, tmp_path, labels):
    code, err = run(capsys, tiny_bids, tmp_path / "o", "group", "--dry-run",
                    "--participant-label", *labels)  # fmt: skip
    assert code == errors.EXIT_NO_PARTICIPANT
    unknown = " ".join(x for x in labels if x.startswith("9"))
    assert f"--participant-label {unknown}: no such participant" in one_error_line(err)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------ sessions


@pytest.fixture
def tiny_sessions(tiny_bids) -> Path:
    """tiny_bids with its results in sessions a and b (sub-X/ses-Y/sub-X.results)."""
    afni = tiny_bids / "derivatives" / "afni"
    for i in range(1, 5):
        sid = f"sub-{i:02d}"
        (afni / sid / "ses-a").mkdir()
        (afni / sid / f"{sid}.results").rename(afni / sid / "ses-a" / f"{sid}.results")
        shutil.copytree(afni / sid / "ses-a", afni / sid / "ses-b")
    return tiny_bids


def test_sessions_paired_or_one_analysis_each(capsys, tiny_sessions, tmp_path):
    out = tmp_path / "paired"
    code, err = run(capsys, tiny_sessions, out, "group", "--dry-run", "--session-label", "a",
                    "ses-b", "--design", "conditions", *CHX)  # fmt: skip
    assert code == 0, err
    assert "for 8 of 8 subject-sessions" in err
    (paired,) = json.loads((out / "plan.json").read_text())["analyses"]
    assert paired["design"] == "conditions" and [s["label"] for s in paired["sets"]] == ["a", "b"]
    assert paired["set_subjects"] == {
        "a": ["01_ses-a", "02_ses-a", "03_ses-a", "04_ses-a"],
        "b": ["01_ses-b", "02_ses-b", "03_ses-b", "04_ses-b"],
    }
    script = (out / "group_analysis.sh").read_text()
    assert "-conditions a b" in script and '"${omema}[b-a:t]"' in script
    rows = (out / "inventory.tsv").read_text().splitlines()
    assert rows[0].startswith("participant_id\tsession_id\tstatus\t")
    assert rows[1].startswith("sub-01\tses-a\tincluded\t") and len(rows) == 9

    out = tmp_path / "each"
    code, err = run(capsys, tiny_sessions, out, "group", "--dry-run", *CHX)
    assert code == 0, err
    assert "found sessions a, b: one analysis per session" in err
    plan = json.loads((out / "plan.json").read_text())
    assert [(a["dir"], a["session"], a["design"]) for a in plan["analyses"]] == [
        ("analysis-mema_ses-a", "a", "one"),
        ("analysis-mema_ses-b", "b", "one"),
    ]


def test_unknown_session_label_is_a_usage_error(capsys, tiny_sessions, tmp_path):
    code, err = run(capsys, tiny_sessions, tmp_path / "o", "group", "--dry-run",
                    "--session-label", "a", "c")  # fmt: skip
    assert code == errors.EXIT_USAGE
    assert "--session-label c: no results for that session" in one_error_line(err)
    assert "(sessions found: a, b)" in err


# ------------------------------------------------------------------------------ designs


def _participants(root: Path, groups: str) -> None:
    rows = ["participant_id\tgroup"] + [f"sub-{i:02d}\t{g}" for i, g in enumerate(groups, 1)]
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")


def test_group_column_splits_each_contrast_into_two_groups(capsys, tiny_bids, tmp_path):
    _participants(tiny_bids, "pcpc")
    out = tmp_path / "out"
    code, err = run(capsys, tiny_bids, out, "group", "--dry-run", "--group-column", "group")
    assert code == 0, err
    plan = json.loads((out / "plan.json").read_text())
    assert [a["name"] for a in plan["analyses"]] == ["left_vs_right_chx", "left_vs_right_press"]
    for a in plan["analyses"]:
        assert a["design"] == "groups"
        assert a["set_subjects"] == {"c": ["02", "04"], "p": ["01", "03"]}
    assert plan["input_qc"]["design"] == []  # independent groups: nothing to warn about
    script = (out / "group_analysis.sh").read_text()
    assert "-groups c p" in script and '"${omema}[p-c:t]"' in script
    # the order of the two values (B-A is the difference) can be given
    code, err = run(capsys, tiny_bids, tmp_path / "o2", "group", "--dry-run",
                    "--group-column", "group", "p", "c", *CHX)  # fmt: skip
    assert code == 0, err
    assert '"${omema}[c-p:t]"' in (tmp_path / "o2" / "group_analysis.sh").read_text()


@pytest.mark.parametrize(
    ("extra", "code", "needle"),
    [
        (["--group-column", "group"], errors.EXIT_DATA, "1 values (control)"),
        (["--group-column", "nope"], errors.EXIT_DATA, "no column 'nope'"),
        (["--group-column", "group", "a"], errors.EXIT_USAGE, "not 2 words"),
        (["--design", "conditions"], errors.EXIT_USAGE, "--design conditions needs two --set"),
        (["--design", "groups"], errors.EXIT_USAGE, "--design groups needs two --set"),
    ],
)
def test_designs_the_options_cannot_give(capsys, tiny_bids, tmp_path, extra, code, needle):
    got, err = run(capsys, tiny_bids, tmp_path / "o", "group", "--dry-run", *extra)
    assert got == code
    assert needle in one_error_line(err)


def test_tutorials_two_sets_warn_that_the_groups_are_the_same_subjects(capsys, tiny_bids, tmp_path):
    out = tmp_path / "out"
    code, err = run(capsys, tiny_bids, out, "group", "--dry-run", *CHX, *KEYPRESS)
    assert code == 0, err
    (finding,) = json.loads((out / "plan.json").read_text())["input_qc"]["design"]
    assert (finding["check"], finding["n_shared"], finding["df"], finding["paired_df"]) == (
        "same_subjects_in_groups", 4, 6, 3)  # fmt: skip
    assert f"WARNING: {finding['message']}" in err
    assert "--design conditions (paired, df = 3)" in finding["message"]
    # a paired design of the same two sets: no warning
    code, err = run(capsys, tiny_bids, tmp_path / "o2", "group", "--dry-run", "--design",
                    "conditions", *CHX, *KEYPRESS)  # fmt: skip
    assert code == 0 and "of a two-group (unpaired) design" not in err


def test_plan_analyses_orders_sessions_and_refuses_paired_without_two_sessions():
    units = [
        SubjectFiles(lab, Path(f"/r/{lab}{ses}"), None, None, None, session=ses)
        for ses, labels in (("x", ("01", "02", "03")), ("y", ("01", "02")))
        for lab in labels
    ]
    chx = SetSpec("chx", "b", "t")
    each, _ = designs.plan_analyses([chx], False, "auto", "mema", units, ["x", "y"])
    assert [(a.name, [u.unit_id for u in a.members[0]]) for a in each] == [
        ("chx_ses-x", ["sub-01_ses-x", "sub-02_ses-x", "sub-03_ses-x"]),
        ("chx_ses-y", ["sub-01_ses-y", "sub-02_ses-y"]),
    ]
    with pytest.raises(errors.UsageError, match="exactly two --session-label"):
        designs.plan_analyses([chx], True, "conditions", "mema", units[:3], ["x"])
    # a subject without its second session is left out of the pairs, with a note
    (paired,), notes = designs.plan_analyses([chx], True, "conditions", "m", units, ["x", "y"])
    assert [[u.unit_id for u in part] for part in paired.members] == [
        ["sub-01_ses-x", "sub-02_ses-x"],
        ["sub-01_ses-y", "sub-02_ses-y"],
    ]
    assert paired.tested_labels() == ["y-x"]
    assert notes == ["sub-03 left out of the y-x pairs: no complete ses-y results"]


# ------------------------------------------------------------------------------ afni scripts


def _plan(tmp: Path, analyses_of, **options) -> AnalysisPlan:
    """A plan of 4 subjects in sessions x and y (files need not exist to render)."""
    units = []
    for ses in ("x", "y"):
        for lab in ("01", "02", "03", "04"):
            res = tmp / "derivatives/afni" / f"sub-{lab}/ses-{ses}" / f"sub-{lab}_ses-{ses}.results"
            stem = f"sub-{lab}_ses-{ses}"
            units.append(SubjectFiles(lab, res, res / f"stats.{stem}_REML+tlrc.HEAD",
                                      res / f"mask_epi_anat.{stem}+tlrc.HEAD",
                                      res / f"blur_est.{stem}.1D", session=ses))  # fmt: skip
    return AnalysisPlan(tmp, tmp / "derivatives/afni", tmp / "out", tmp / "work", units,
                        analyses_of(units), **options)  # fmt: skip


def _groups(units):
    chx = SetSpec("chx", "c#0_Coef", "c#0_Tstat")
    a = [u for u in units if u.session == "x" and u.label in ("01", "03")]
    b = [u for u in units if u.session == "x" and u.label in ("02", "04")]
    return [Analysis("chx", [SetSpec("ctl", chx.beta, chx.tstat),
                             SetSpec("pat", chx.beta, chx.tstat)], "groups", members=[a, b])]  # fmt: skip


def _per_session(units):
    out = []
    for ses in ("x", "y"):
        part = [u for u in units if u.session == ses]
        for name in ("chx", "kp"):
            spec = SetSpec(name, f"{name}#0_Coef", f"{name}#0_Tstat")
            out.append(Analysis(f"{name}_ses-{ses}", [spec], "one", [part], session=ses))
    return out


def test_two_groups_render_as_gen_group_command_writes_them(tmp_path):
    plan = _plan(tmp_path, _groups, via_gen_group_command=True)
    mema = render.mema_command(plan, plan.analyses[0])
    sets = "\n".join(mema).split("-set ")
    assert "sub-01" in sets[1] and "sub-03" in sets[1] and "sub-02" not in sets[1]
    assert "sub-02" in sets[2] and "sub-04" in sets[2] and "-groups ctl pat" in sets[2]
    ggc = render.ggc_command(plan, plan.analyses[0])
    assert ggc.count("    -dsets") == 2
    assert '    -subs_betas "c#0_Coef"' in ggc and '    -set_labels "ctl" "pat"' in ggc
    text = render.render_script(plan)
    assert "clust_bisided_map_pat-ctl.nii.gz" in text


def test_each_session_makes_its_own_mask_and_clustsim(tmp_path):
    plan = _plan(tmp_path, _per_session)
    text = render.render_script(plan)
    parts = text.split("# Analysis ")[1:]
    assert [p.split(":")[0] for p in parts] == ["chx_ses-x", "kp_ses-x", "chx_ses-y", "kp_ses-y"]
    assert "step 3dClustSim" in parts[0]
    assert 'shared_dir="${outdir}/analysis-chx_ses-x"' in parts[1]
    assert 'shared_dir="${outdir}/analysis-chx_ses-y"' in parts[3]
    assert "mask_epi_anat.sub-01_ses-y" not in text.split("# Analysis ")[0]
    assert "mask_files=(" in parts[2] and "mask_epi_anat.sub-01_ses-y" in parts[2]
    # the second session's shared steps have their own step names (and logs)
    assert "step analysis-chx_ses-y/3dClustSim" in parts[2]


@pytest.mark.parametrize("analyses_of", [_groups, _per_session])
def test_new_design_scripts_pass_bash_n_and_shellcheck(tmp_path, analyses_of):
    script = tmp_path / "group_analysis.sh"
    script.write_text(render.render_script(_plan(tmp_path, analyses_of)))
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if shutil.which("shellcheck"):
        done = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout


# ------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def group_demo(tmp_path_factory) -> Path:
    """8 subjects, flat layout, patients' chx effect 1 % larger (the demo's 'group' column)."""
    from afni_group.demo import cli as demo_cli

    root = tmp_path_factory.mktemp("g") / "bids"
    argv = [str(root), "--subjects", "8", "--grid", "small", "--layout", "flat",
            "--group-effect", "1.0"]  # fmt: skip
    assert demo_cli.main(argv) == 0
    return root


def test_two_group_run_reports_the_difference_with_regions(group_demo, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = run(capsys, group_demo, out, "group", *FAST, "--group-column", "group", *CHX)
    assert code == 0, err
    assert "++ Stat threshold patient-control: 5.958816 (t, df = 6)" in err
    (analysis,) = json.loads((out / "params.json").read_text())["analyses"]
    by_set = {r["set"]: r for r in analysis["results"]}
    assert list(by_set) == ["control", "patient", "patient-control"]
    diff = by_set["patient-control"]
    assert diff["dof"] == 6 and diff["n_clusters"] >= 1
    region = diff["clusters"][0]["peak_region"]["aal"]  # the planted chx blob's neighbourhood
    assert region in ("Calcarine_R", "Lingual_R", "Cuneus_R")
    html = (out / "report.html").read_text()
    assert "Difference <code>patient-control</code>" in html
    assert "Two independent groups (unpaired): control (n = 4) and patient (n = 4)" in html
    assert region.replace("_", " ") in html.split("Difference <code>patient-control</code>")[1]
    for label in ("I2", "tau", "QE:Chisq"):
        assert f"<strong>{label}</strong> \u2014 " in html
    assert (out / "report" / "mema_heterogeneity.png").is_file()


@pytest.fixture(scope="module")
def session_demo(tmp_path_factory) -> Path:
    """6 subjects in sessions pre and post; the chx effect is 1 % larger in post."""
    from afni_group.demo import cli as demo_cli

    root = tmp_path_factory.mktemp("s") / "bids"
    argv = [str(root), "--subjects", "6", "--grid", "small", "--sessions", "pre", "post",
            "--session-effect", "1.0"]  # fmt: skip
    assert demo_cli.main(argv) == 0
    return root


def test_paired_sessions_and_one_analysis_per_session_run(session_demo, tmp_path, capsys):
    out = tmp_path / "paired"
    code, err = run(capsys, session_demo, out, "group", *FAST, "--no-report",
                    "--session-label", "pre", "post", "--design", "conditions", *CHX)  # fmt: skip
    assert code == 0, err
    (paired,) = json.loads((out / "params.json").read_text())["analyses"]
    (diff,) = paired["results"]
    assert (diff["set"], diff["dof"]) == ("post-pre", 5) and diff["n_clusters"] >= 1

    out = tmp_path / "each"
    code, err = run(capsys, session_demo, out, "group", *FAST, "--no-report",
                    "--session-label", "pre", "post", *CHX)  # fmt: skip
    assert code == 0, err
    params = json.loads((out / "params.json").read_text())
    assert [a["dir"] for a in params["analyses"]] == [
        "analysis-mema_ses-pre",
        "analysis-mema_ses-post",
    ]
    header = (out / "inventory.tsv").read_text().splitlines()[0].split("\t")
    assert list(json.loads((out / "inventory.json").read_text())) == header  # with session_id
    masks = [(out / a["dir"] / "mask.nii.gz").read_bytes() for a in params["analyses"]]
    assert masks[0] != masks[1]  # each session's own group mask
    assert all(a["results"][0]["dof"] == 5 for a in params["analyses"])
    assert sorted(params["input_qc"]["acf"]) == sorted(
        f"{i:02d}_ses-{s}" for i in range(1, 7) for s in ("pre", "post"))  # fmt: skip
    assert np.isfinite(params["analyses"][1]["acf"]).all()


def test_each_session_has_its_own_group_mask_in_the_bids_view(capsys, tiny_sessions, tmp_path):
    """Per-session analyses read different masks: the BIDS view writes each session's."""
    from afni_group import afni_io

    smaller = tiny_sessions / "derivatives/afni/sub-01/ses-b/sub-01.results"
    (mask,) = smaller.glob("mask_epi_anat.*.HEAD")
    dset = afni_io.read_dataset(mask)
    data = np.array(dset.data[..., 0])
    data[: data.shape[0] // 2] = 0  # session b's group mask loses half the grid
    for old in smaller.glob("mask_epi_anat.*"):
        old.unlink()
    mask_dset = afni_io.AfniDataset(data, dset.affine, ["mask"], space="MNI", view="tlrc")
    afni_io.write_dataset(mask_dset, str(mask).removesuffix(".HEAD"))
    out = tmp_path / "out"
    code, err = run(capsys, tiny_sessions, out, "group", *FAST, "--no-report", *CHX)
    assert code == 0, err
    masks = sorted(p.name for p in out.glob("space-*_mask.nii.gz"))[::-1]
    assert masks == ["space-MNI_desc-group_mask.nii.gz", "space-MNI_desc-groupSesB_mask.nii.gz"]
    sidecars = {m: json.loads((out / m.replace(".nii.gz", ".json")).read_text()) for m in masks}
    a, b = (sidecars[m] for m in masks)
    assert b["NumberOfVoxels"] < a["NumberOfVoxels"]
    assert all("ses-b" in s for s in b["Sources"]) and all("ses-a" in s for s in a["Sources"])
    for statmap in out.glob("space-*_stat-t_statmap.json"):
        meta = json.loads(statmap.read_text())
        assert meta["Mask"] == masks["contrast-sesB" in statmap.name], statmap.name
    assert {p.name.split("_")[1] for p in out.glob("space-*_statmap.nii.gz")} == {
        "contrast-sesAChx",
        "contrast-sesBChx",
    }
