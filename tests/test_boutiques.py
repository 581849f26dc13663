"""The Boutiques descriptor: generated from the parser, committed, and valid for ``bosh --bids``."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from afni_group import __version__, boutiques, cli
from afni_group.errors import EXIT_CODES
from afni_group.options import INTERNAL
from afni_group.slurm import LAUNCH_ONLY

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "bids_app_spec.json"


@pytest.fixture(scope="module")
def descriptor() -> dict:
    return boutiques.build_descriptor(cli.build_parser())


def test_committed_file_is_the_generated_one():
    generated = boutiques.descriptor_json(cli.build_parser()) + "\n"
    assert SPEC.read_text(encoding="utf-8") == generated, (
        "bids_app_spec.json is stale: run `python -m afni_group.boutiques > bids_app_spec.json`"
    )


def test_bids_exec_spec_prints_the_descriptor(capsys):
    assert cli.main(["--bids-exec-spec"]) == 0
    assert capsys.readouterr().out == SPEC.read_text(encoding="utf-8")


def test_module_main_prints_the_descriptor(capsys):
    assert boutiques.main() == 0
    assert json.loads(capsys.readouterr().out) == json.loads(SPEC.read_text(encoding="utf-8"))


def test_bids_app_shape(descriptor):
    assert descriptor["schema-version"] == "0.5"
    assert descriptor["tool-version"] == __version__
    assert descriptor["command-line"].startswith(
        "mkdir -p [OUTPUT_DIR]; afni-group [BIDS_DIR] [OUTPUT_DIR] [ANALYSIS_LEVEL] "
        "[PARTICIPANT_LABEL] [SESSION_LABEL] "
    )
    by_key: dict[str, list[dict]] = {}
    for item in descriptor["inputs"]:
        by_key.setdefault(item["value-key"], []).append(item)
    assert {i["type"] for i in by_key["[OUTPUT_DIR]"]} == {"File", "String"}
    (level,) = by_key["[ANALYSIS_LEVEL]"]
    assert level["value-choices"] == list(cli.ANALYSIS_LEVELS) == ["group"]
    assert [o["path-template"] for o in descriptor["output-files"]] == ["[OUTPUT_DIR]"]
    assert descriptor["custom"]["BIDSAppSpecVersion"]
    assert descriptor["custom"]["BIDSApplicationVersion"]
    assert descriptor["container-image"]["image"] == f"afnigroup/afni-group:{__version__}"
    res = descriptor["suggested-resources"]
    assert (res["cpu-cores"], res["ram"], res["walltime-estimate"]) == (8, 16.0, 4 * 3600)


def test_value_keys_unique_and_all_in_command_line(descriptor):
    keys = [i["value-key"] for i in descriptor["inputs"] if i["id"] != "output_dir_name"]
    assert len(keys) == len(set(keys))
    for key in keys:
        assert key in descriptor["command-line"]
    ids = [i["id"] for i in descriptor["inputs"]]
    assert len(ids) == len(set(ids))


def test_every_analysis_option_is_an_input_and_launch_options_are_not(descriptor):
    flags = {i.get("command-line-flag") for i in descriptor["inputs"]}
    for action in cli.build_parser()._actions:
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        long_flag = next(s for s in action.option_strings if s.startswith("--"))
        if action.dest in LAUNCH_ONLY | INTERNAL:  # INTERNAL: what --fan-out's script passes
            assert long_flag not in flags, long_flag
        else:
            assert long_flag in flags, long_flag


def test_error_codes_are_ours(descriptor):
    codes = {e["code"]: e["description"] for e in descriptor["error-codes"]}
    assert codes == {k: v for k, v in EXIT_CODES.items() if k != 0}


def test_numeric_constraints_follow_the_parser(descriptor):
    by_id = {i["id"]: i for i in descriptor["inputs"]}
    assert by_id["pthr"]["type"] == "Number" and by_id["pthr"]["exclusive-maximum"] is True
    assert by_id["nn"]["value-choices"] == [1, 2, 3] and by_id["nn"]["integer"] is True
    assert by_id["clustsim_iter"]["type"] == "String"  # a positive integer or "auto"
    assert by_id["sets"]["min-list-entries"] == by_id["sets"]["max-list-entries"] == 3
    assert by_id["sets_2"]["requires-inputs"] == ["sets"]
    assert by_id["dry_run"]["type"] == "Flag"


def test_session_label_is_described_and_refused_without_sessions(capsys, tiny_bids, tmp_path):
    # bosh validate --bids needs [SESSION_LABEL]; without per-session results it is refused
    by_id = {i["id"]: i for i in boutiques.build_descriptor(cli.build_parser())["inputs"]}
    assert by_id["session_label"]["value-key"] == "[SESSION_LABEL]"
    code = cli.main([str(tiny_bids), str(tmp_path / "o"), "group", "--session-label", "1"])
    assert code == 64
    err = capsys.readouterr().err
    assert "--session-label 1" in err and "no per-session afni_proc results" in err
    assert len(err.strip().splitlines()) == 1


def test_bosh_validate_bids():
    bosh = pytest.importorskip("boutiques").bosh
    # raises DescriptorValidationError on any schema or BIDS-rule problem
    bosh(["validate", "--bids", str(SPEC)])


def test_bosh_invocation_gives_a_command_line_the_cli_accepts(tmp_path):
    bosh = pytest.importorskip("boutiques").bosh
    invocation = {
        "bids_dir": str(tmp_path),
        "output_dir_name": str(tmp_path / "out dir"),
        "analysis_level": "group",
        "participant_label": ["01", "02"],
        "sets": ["chx", "left_vs_right_chx#0_Coef", "left_vs_right_chx#0_Tstat"],
        "sets_2": ["kp", "left_vs_right_press#0_Coef", "left_vs_right_press#0_Tstat"],
        "pthr": 0.005,
        "nn": 2,
        "seed": -3,
        "covariates": ["age", "sex"],
        "dry_run": True,
        "engine": "native",
    }
    inv = tmp_path / "invocation.json"
    inv.write_text(json.dumps(invocation))
    out = bosh(["exec", "simulate", str(SPEC), "-i", str(inv)])
    mkdir, _, command = out.shell_command.partition("; ")
    assert mkdir == f"mkdir -p {shlex.quote(str(tmp_path / 'out dir'))}"
    argv = shlex.split(command)
    assert argv[0] == "afni-group"
    args = cli.build_parser().parse_args(argv[1:])
    assert args.output_dir == tmp_path / "out dir"
    assert args.participant_label == ["01", "02"]
    assert args.sets == [invocation["sets"], invocation["sets_2"]]
    assert (args.pthr, args.nn, args.seed, args.engine) == (0.005, 2, -3, "native")
    assert args.covariates == ["age", "sex"] and args.dry_run
