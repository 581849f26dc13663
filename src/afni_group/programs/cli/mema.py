"""``afni-native`` drop-in for :mod:`afni_group.programs.mema.files`: AFNI's options and messages."""

from __future__ import annotations

import re
from collections.abc import Sequence

from afni_group.errors import UsageError
from afni_group.programs.cli.argv import is_number
from afni_group.programs.mema import files as step
from afni_group.programs.mema.budget import parse_mem_limit
from afni_group.programs.mema.files import (
    MemaSet,
    command_text,
    read_covariate_file,
)

# option -> (min args, max args or None for unbounded); 0/0 = flag
_OPTIONS: dict[str, tuple[int, int | None]] = {
    "-prefix": (1, 1),
    "-jobs": (1, 1),
    "-set": (4, None),
    "-groups": (1, 2),
    "-conditions": (1, 2),
    "-HKtest": (0, 0),
    "-no_HKtest": (0, 0),
    "-missing_data": (1, 2),
    "-n_nonzero": (1, 1),
    "-max_zeros": (1, 1),
    "-mask": (1, 1),
    "-model_outliers": (0, 0),
    "-no_model_outliers": (0, 0),
    "-residual_Z": (0, 0),
    "-no_residual_Z": (0, 0),
    "-unequal_variance": (0, 0),
    "-equal_variance": (0, 0),
    "-covariates": (1, 1),
    "-covariates_center": (1, None),
    "-covariates_model": (1, None),
    "-covariates_name": (1, None),
    "-verb": (1, 1),
    "-dbgArgs": (0, 0),
    "-cio": (0, 0),
    "-Rio": (0, 0),
    "-help": (0, 0),
    "-h": (0, 0),
    "-show_allowed_options": (0, 0),
    # afni-native extensions (not AFNI options)
    "-correct_dof": (0, 0),
    "-quiet": (0, 0),
    "-mem_limit": (1, 1),
}


_UNSUPPORTED = {
    "-model_outliers": "the Laplace outlier model (spec 02 §6.6 is not fully specified)",
    "-residual_Z": "the residual Z / lambda datasets",
    "-unequal_variance": "separate τ² per group (3dMEMA type 4)",
    "-covariates_name": "renaming covariates",
}


_HELP = """\
afni-native 3dMEMA: numpy implementation of AFNI's 3dMEMA (mixed-effects meta-analysis).

  -prefix P  -set NAME SUBJ BETA TSTAT [SUBJ BETA TSTAT ...] (once or twice)
  [-groups A B | -conditions C1 C2]  [-missing_data 0 | -missing_data F1 [F2]]
  [-n_nonzero NN]  [-HKtest | -no_HKtest]  [-mask M]  [-jobs N]
  [-covariates FILE [-covariates_center mean|V1 ...] [-covariates_model center=same slope=same]]
  afni-native only: -correct_dof (intended two-group DOF re-mapping), -quiet (no progress),
  -mem_limit SIZE (default 2GB): inputs over half of it are read once into a temporary
  voxel-major store beside the output and fitted block by block (same results)
Not supported: -model_outliers, -residual_Z, -unequal_variance, -covariates_name.
Output bricks (two groups): A:b A:t B:b B:t B-A:b B-A:t I2 tau QE:Chisq.
"""


def _parse_argv(argv: Sequence[str]) -> tuple[dict[str, list[str]], list[list[str]]]:
    """Split argv into options (AFNI R parser rules) and the list of ``-set`` argument lists."""
    options: dict[str, list[str]] = {}
    set_args: list[list[str]] = []
    current: list[str] | None = None
    name = ""
    order: list[tuple[str, list[str]]] = []
    for word in argv:
        if word in _OPTIONS:
            name, current = word, []
            order.append((name, current))
            continue
        if word.startswith("-") and not is_number(word):
            raise UsageError(
                f"unknown option '{word}' (see 'afni-native 3dMEMA -help' for the options "
                "supported)"
            )
        if current is None:
            raise UsageError(f"Illegal parameters on command line: '{word}' before any option")
        current.append(word)
    for name, args in order:
        lo, hi = _OPTIONS[name]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else f"{lo} to {hi}" if hi is not None else f"at least {lo}"
            raise UsageError(f"option {name} takes {want} argument(s), got {len(args)}: {args}")
        if name == "-set":
            if (len(args) - 1) % 3:
                raise UsageError(
                    f"-set {args[0]}: after the set name give SUBJ BETA TSTAT triplets; "
                    f"got {len(args) - 1} words"
                )
            set_args.append(args)
            continue
        if name in options:
            raise UsageError(f"option {name} already specified")
        options[name] = args
    return options, set_args


def cli_main(argv: list[str]) -> int:
    """``afni-native 3dMEMA …``: 3dMEMA's command line (see ``-help``)."""
    argv = list(argv)
    if not argv or "-help" in argv or "-h" in argv:
        print(_HELP, end="")
        return 0
    if "-show_allowed_options" in argv:
        print(" ".join(o for o in _OPTIONS if o not in _UNSUPPORTED))
        return 0
    options, set_args = _parse_argv(argv)
    for opt, what in _UNSUPPORTED.items():
        if opt in options:
            raise UsageError(f"option {opt} ({what}) is not supported by afni-native 3dMEMA")
    if "-prefix" not in options:
        raise UsageError("-prefix is required")
    if not set_args:
        raise UsageError("give at least one -set NAME SUBJ BETA TSTAT ...")
    names_seen: set[str] = set()
    sets = []
    for args in set_args:
        label = args[0]
        if label in names_seen:
            raise UsageError(f"-set {label} given twice; set names must differ")
        names_seen.add(label)
        triplets = args[1:]
        sets.append(MemaSet(label, triplets[0::3], list(triplets[1::3]), list(triplets[2::3])))
    if "-n_nonzero" in options and "-max_zeros" in options:
        raise UsageError("Cannot set both of -n_nonzero and -max_zeros")
    if "-HKtest" in options and "-no_HKtest" in options:
        raise UsageError("give only one of -HKtest and -no_HKtest")

    groups = options.get("-groups")
    conditions = options.get("-conditions")
    if groups and conditions and len(groups) == 2 and len(conditions) == 2:
        raise UsageError("Could not set analysis type: -groups and -conditions both have two names")
    if groups and len(groups) == 2:
        design = "groups"
        if len(sets) != 2:
            raise UsageError(f"-groups {' '.join(groups)} needs two -set options, got {len(sets)}")
    elif conditions and len(conditions) == 2:
        design = "conditions"
        if len(sets) != 2:
            raise UsageError(f"-conditions needs two -set options, got {len(sets)}")
    else:
        design = "one"
        if len(sets) != 1:
            raise UsageError(
                "two -set options need -groups A B (unpaired) or -conditions C1 C2 (paired); "
                "3dMEMA stops with 'bad length for subjLab'"
            )

    missing: int | list[str] | None = None
    if "-missing_data" in options:
        words = options["-missing_data"]
        if all(is_number(w) for w in words):
            if len(words) != 1 or float(words[0]) != 0:
                raise UsageError(
                    f"-missing_data {' '.join(words)}: use 0 (count zero betas) or one file per set"
                )
            missing = 0
        else:
            missing = words

    def int_option(name: str, default: int) -> int:
        if name not in options:
            return default
        try:
            return int(options[name][0])
        except ValueError:
            raise UsageError(f"{name} needs an integer, got '{options[name][0]}'") from None

    covariates = None
    center: str | list[float] = "mean"
    if "-covariates" in options:
        covariates = read_covariate_file(options["-covariates"][0])
        if "-covariates_center" in options:
            center = _parse_centers(options["-covariates_center"], list(covariates))
        model_words = options.get("-covariates_model", [])
        for w in model_words:
            key, _, value = w.replace(" ", "").partition("=")
            if key not in ("center", "slope") or value not in ("same", "different"):
                raise UsageError(
                    f"-covariates_model: expected center=same|different slope=same|different, got '{w}'"
                )
            if value == "different":
                raise UsageError(
                    f"-covariates_model {w} is not supported by afni-native 3dMEMA (only "
                    "center=same slope=same)"
                )
    elif any(k in options for k in ("-covariates_center", "-covariates_model")):
        raise UsageError("-covariates_center / -covariates_model need -covariates FILE")

    mem_limit = None
    if "-mem_limit" in options:
        mem_limit = parse_mem_limit(options["-mem_limit"][0], "-mem_limit")
    history = command_text(argv)
    step.run_mema(
        sets,
        options["-prefix"][0],
        design=design,
        group_names=groups if design == "groups" else None,
        missing_data=missing,
        n_nonzero=int_option("-n_nonzero", -1),
        hktest="-no_HKtest" not in options,
        mask=options["-mask"][0] if "-mask" in options else None,
        covariates=covariates,
        covariates_center=center,
        correct_dof="-correct_dof" in options,
        n_jobs=int_option("-jobs", 1),
        progress="-quiet" not in options,
        history=history,
        mem_limit=mem_limit,
    )
    return 0


def _parse_centers(words: list[str], names: list[str]) -> str | list[float]:
    """``-covariates_center mean`` | ``V1 V2 …`` | ``NAME = V …`` (one per covariate)."""
    if words == ["mean"]:
        return "mean"
    text = " ".join(words).replace("=", " = ")
    tokens = text.split()
    if all(is_number(t) for t in tokens):
        values = [float(t) for t in tokens]
    else:
        pairs = dict(re.findall(r"(\S+)\s*=\s*(\S+)", text))
        try:
            values = [float(pairs[n]) for n in names]
        except (KeyError, ValueError):
            raise UsageError(
                f"-covariates_center: give 'mean', one number per covariate ({', '.join(names)}) "
                "or NAME = VALUE for each"
            ) from None
    if len(values) != len(names):
        raise UsageError(
            f"-covariates_center: {len(values)} value(s) for {len(names)} covariate(s) "
            f"({', '.join(names)})"
        )
    return values
