"""The Boutiques descriptor (``bids_app_spec.json``) of the ``afni-group`` command line.

Generated from :func:`afni_group.options.build_parser` so that the parser stays the single source of
truth: every option of the analysis becomes one Boutiques input, the BIDS-Apps positionals get the
value-keys that ``bosh validate --bids`` requires, and the Slurm/container options (which only make
sense on the user's own machine) are left out.

Regenerate the committed file with::

    python -m afni_group.boutiques > bids_app_spec.json

``afni-group --bids-exec-spec`` prints the same text.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from afni_group import __version__
from afni_group.errors import EXIT_CODES

# Launch-only options (--write-sbatch, --image, --cpus, ...) configure the job on the user's
# machine, not the analysis: a platform that runs the descriptor must not see them.
from afni_group.options import (
    ANALYSIS_LEVELS,
    CONTAINER_IMAGE,
    IMAGE_REPOSITORY,  # noqa: F401 - part of this module's interface (image tests, docs)
    INTERNAL,
    LAUNCH_ONLY,
    build_parser,
)
from afni_group.slurm import parse_mem_gb, parse_walltime

#: The BIDS-Apps convention we follow: the 1.0 positional command line
#: (``BIDS_DIR OUTPUT_DIR ANALYSIS_LEVEL [--participant-label ...]``), which is what
#: ``bosh validate --bids`` checks.
BIDS_APP_SPEC_VERSION = "1.0.0"

# argparse actions with no Boutiques meaning (they print and exit).
_NO_INPUT_ACTIONS = (argparse._HelpAction, argparse._VersionAction)

# The BIDS-Apps value-keys `bosh validate --bids` insists on, by argparse dest.
_BIDS_KEYS = {
    "bids_dir": "[BIDS_DIR]",
    "output_dir": "[OUTPUT_DIR]",
    "analysis_level": "[ANALYSIS_LEVEL]",
    "participant_label": "[PARTICIPANT_LABEL]",
    "session_label": "[SESSION_LABEL]",
}

# `--set` is an "append" option (repeat the flag for a second set). Boutiques cannot repeat a
# flag, so it becomes one input per allowed repetition; 3dMEMA takes one or two sets.
_REPEATS = {"sets": 2}

# Names shown by platforms; the dest is the id.
_NAMES = {
    "bids_dir": "BIDS directory",
    "analysis_level": "Analysis level",
    "participant_label": "Participant label",
    "session_label": "Session label",
    "afni_dir": "afni_proc.py results folder",
    "n_cpus": "Number of CPUs",
    "work_dir": "Work directory",
    "mem_limit": "Memory limit (native 3dMEMA)",
    "sets": "3dMEMA set",
    "nn": "Neighbourhood (NN)",
    "pthr": "Voxelwise p threshold",
    "alpha": "FWE alpha",
    "mask_frac": "Group mask fraction",
}


def _long_flag(action: argparse.Action) -> str:
    """The first ``--long`` spelling (what users read in the help), else the first one."""
    longs = [s for s in action.option_strings if s.startswith("--")]
    return (longs or action.option_strings)[0]


def _title(dest: str) -> str:
    return _NAMES.get(dest, dest.replace("_", " ").capitalize())


def _description(action: argparse.Action) -> str:
    """The argparse help, naming the option when the help is only its default."""
    text = (action.help or "").replace("%%", "%")
    if not text or text.lower().startswith("default"):
        text = f"{_title(action.dest)}{': ' + text if text else ''}"
    default = action.default
    if default not in (None, False, argparse.SUPPRESS) and str(default) not in text:
        text = f"{text} (default {default})"
    return text


def _type_fields(action: argparse.Action) -> dict[str, Any]:
    """Boutiques ``type`` and the numeric/choice constraints of one argparse option."""
    if action.nargs == 0:  # store_true / count: a flag
        return {"type": "Flag"}
    type_name = getattr(action.type, "__name__", "")
    fields: dict[str, Any]
    if type_name in ("int", "_positive_int"):
        fields = {"type": "Number", "integer": True}
        if type_name == "_positive_int":
            fields["minimum"] = 1
    elif type_name in ("float", "_probability"):
        fields = {"type": "Number"}
        if type_name == "_probability":
            fields.update(
                {"minimum": 0, "maximum": 1, "exclusive-minimum": True, "exclusive-maximum": True}
            )
    elif action.type is Path and action.dest == "afni_dir":
        fields = {"type": "File"}  # an existing input folder
    else:
        fields = {"type": "String"}  # incl. paths that need not exist yet (--work-dir)
    if action.choices is not None:
        fields["value-choices"] = list(action.choices)
    if action.nargs in ("+", "*") or isinstance(action.nargs, int):
        fields["list"] = True
        if action.nargs == "+":
            fields["min-list-entries"] = 1
        elif isinstance(action.nargs, int):
            fields["min-list-entries"] = action.nargs
            fields["max-list-entries"] = action.nargs
    return fields


def _ordinal(i: int) -> str:
    return {2: "second", 3: "third"}.get(i, f"{i}th")


def _option_inputs(action: argparse.Action) -> list[dict[str, Any]]:
    """One Boutiques input per option (several for a repeatable ``append`` option)."""
    flag = _long_flag(action)
    base = {
        "name": _title(action.dest),
        "description": _description(action),
        "optional": not action.required,
        "command-line-flag": flag,
        **_type_fields(action),
    }
    copies = _REPEATS.get(action.dest, 1) if isinstance(action, argparse._AppendAction) else 1
    inputs = []
    for i in range(1, copies + 1):
        suffix = "" if i == 1 else f"_{i}"
        key = _BIDS_KEYS.get(action.dest, f"[{action.dest.upper()}{suffix.upper()}]")
        item = {"id": f"{action.dest}{suffix}", "value-key": key, **base}
        if i > 1:
            item["name"] = f"{base['name']} {i}"
            item["description"] = f"The {_ordinal(i)} {flag} ({flag} repeated): " + str(
                base["description"]
            )
            item["requires-inputs"] = [action.dest]
        inputs.append(item)
    return inputs


def _positional_inputs(levels: list[str]) -> list[dict[str, Any]]:
    """BIDS_DIR, the File/String pair for OUTPUT_DIR, and ANALYSIS_LEVEL (BIDS-Apps layout)."""
    out_help = "Where the BIDS-Derivatives outputs go (created if missing)."
    return [
        {
            "id": "bids_dir",
            "name": _title("bids_dir"),
            "type": "File",
            "description": "Root of the BIDS dataset (read-only); afni_proc.py results are read "
            "from derivatives/afni unless --afni-dir says otherwise.",
            "value-key": "[BIDS_DIR]",
            "optional": False,
        },
        {
            "id": "output_dir_name",
            "name": "Output directory name",
            "type": "String",
            "description": out_help,
            "value-key": "[OUTPUT_DIR]",
            "optional": True,
        },
        {
            "id": "participant_level_analysis_dir",
            "name": "Output directory (existing)",
            "type": "File",
            "description": out_help + " An existing folder, e.g. to --resume.",
            "value-key": "[OUTPUT_DIR]",
            "optional": True,
        },
        {
            "id": "analysis_level",
            "name": _title("analysis_level"),
            "type": "String",
            "description": "Level of the analysis; afni-group has only the group level "
            "(run afni_proc.py per subject first).",
            "value-key": "[ANALYSIS_LEVEL]",
            "value-choices": levels,
            "optional": False,
        },
    ]


def _defaults(parser: argparse.ArgumentParser) -> dict[str, Any]:
    return {a.dest: a.default for a in parser._actions}


def build_descriptor(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The descriptor as a dict.

    Parameters
    ----------
    parser
        ``afni_group.options.build_parser()``.

    Returns
    -------
    dict
        A Boutiques 0.5 descriptor that passes ``bosh validate --bids``.
    """
    actions = [
        a
        for a in parser._actions
        if a.option_strings
        and not isinstance(a, _NO_INPUT_ACTIONS)
        and a.dest not in LAUNCH_ONLY | INTERNAL
    ]

    inputs = _positional_inputs(list(ANALYSIS_LEVELS))
    for action in actions:
        inputs.extend(_option_inputs(action))

    bids_keys = list(_BIDS_KEYS.values())
    others = [i["value-key"] for i in inputs if i["value-key"] not in bids_keys]
    command = "mkdir -p [OUTPUT_DIR]; afni-group " + " ".join(bids_keys + others)

    defaults = _defaults(parser)
    return {
        "name": "afni-group",
        "tool-version": __version__,
        "description": parser.description,
        "author": "afni-group developers",
        "command-line": command,
        "schema-version": "0.5",
        "container-image": {"type": "docker", "image": CONTAINER_IMAGE, "entrypoint": True},
        "inputs": inputs,
        "groups": [
            {
                "id": "output_directory",
                "name": "Output directory",
                "description": "OUTPUT_DIR: a new folder name or an existing folder (one is "
                "required).",
                "members": ["output_dir_name", "participant_level_analysis_dir"],
                "mutually-exclusive": True,
                "one-is-required": True,
            }
        ],
        "output-files": [
            {
                "id": "output_dir",
                "name": "Output directory",
                "description": "BIDS-Derivatives folder: analysis-*/ results, params.json, "
                "inventory.tsv, report.html, logs/.",
                "path-template": "[OUTPUT_DIR]",
                "optional": False,
            }
        ],
        "suggested-resources": {
            "cpu-cores": int(defaults.get("cpus") or 1),
            "ram": parse_mem_gb(str(defaults.get("mem") or "16G")),
            "walltime-estimate": parse_walltime(str(defaults.get("time") or "4:00:00")),
        },
        "error-codes": [
            {"code": code, "description": text}
            for code, text in sorted(EXIT_CODES.items())
            if code != 0  # Boutiques: exit code 0 means success
        ],
        "tags": {"domain": ["neuroinformatics", "fmri", "bids", "afni"]},
        "custom": {
            "BIDSApplicationVersion": BIDS_APP_SPEC_VERSION,
            "BIDSAppSpecVersion": BIDS_APP_SPEC_VERSION,
        },
    }


def descriptor_json(parser: argparse.ArgumentParser) -> str:
    """The descriptor as JSON text (indent 2); printed, it is ``bids_app_spec.json``."""
    return json.dumps(build_descriptor(parser), indent=2, ensure_ascii=False)


def main() -> int:
    """``python -m afni_group.boutiques``: print the descriptor."""
    print(descriptor_json(build_parser()))  # as `afni-group --bids-exec-spec` does
    return 0


if __name__ == "__main__":
    sys.exit(main())
