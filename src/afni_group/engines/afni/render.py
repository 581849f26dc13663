"""Render an :class:`~afni_group.plan.AnalysisPlan` into one bash script of AFNI commands.

The script follows the tutorial's ``group_analysis.sh`` step by step (3dMEMA, 3dmask_tool, the
ACF average, 3dClustSim, 1d_tool.py, p2dsetstat, 3dClusterize) and is saved with the results so
a user can rerun it by hand. With ``--program 3dttest++`` the group mask comes first (3dttest++
runs with ``-mask``), then 3dttest++ as gen_group_command.py writes it
(:mod:`afni_group.engines.afni.ttest`), then either the ACF route or, with ``--clustsim
randomise``, 3dttest++'s own ``-Clustsim`` tables. File names come from the plan only, so both
engines write the same outputs. The templates are ``templates/group_analysis.sh.j2`` and the
steps it shares between the models, ``templates/group_analysis_steps.j2``; this module prepares
their context (every path and label already shell-quoted) so the templates stay declarative.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import jinja2

from afni_group import __version__
from afni_group.engines.afni import ttest
from afni_group.errors import UsageError
from afni_group.plan import (
    CLUSTSIM_PREFIX,
    COVARIATES_FILE,
    MASK_FILE,
    MEMA_FILE,
    MEMA_SCRIPT,
    Analysis,
    AnalysisPlan,
    clustsim_table_prefix,
)

TEMPLATE = "group_analysis.sh.j2"
SCRIPT_NAME = "group_analysis.sh"
#: Written by the script into each analysis folder: ``name=value`` lines read by the runner.
VALUES_FILE = "afni_values.txt"
#: Marker line printed by the script at the start of every step.
STEP_MARKER = "++ afni-group step: "

# Words bash reads literally without quotes (no glob, expansion or word splitting).
_SAFE_WORD = re.compile(r"[A-Za-z0-9_./+:=,%@-]+")
# Characters that keep a special meaning inside double quotes.
_DQ_SPECIAL = re.compile(r'([$`"\\])')


def _escape(text: str) -> str:
    """Escape what keeps a special meaning inside double quotes."""
    return _DQ_SPECIAL.sub(r"\\\1", text)


def double_quote(value: object) -> str:
    """``value`` as one double-quoted bash word (``$``, backquote, ``"`` and ``\\`` escaped).

    Double quotes (rather than single) keep the script readable like the tutorial's, and protect
    the ``#``, ``[`` and ``]`` of sub-brick selectors.
    """
    return '"' + _escape(str(value)) + '"'


def shell_word(value: object) -> str:
    """``value`` as one bash word: bare when it is plainly safe, else double-quoted."""
    text = str(value)
    if _SAFE_WORD.fullmatch(text):
        return text
    return double_quote(text)


def continued(lines: Iterable[str]) -> str:
    """Join the lines of one command with `` \\`` line continuations."""
    return " \\\n".join(lines)


def number(value: float) -> str:
    """A float as Python writes it (``0.001``, ``1.0``, ``1e-05``).

    1d_tool.py compares ``-csim_pthr`` with the table by exact float equality, so the text must
    round-trip to the plan's value; ``repr`` does.
    """
    return repr(float(value))


def proc_path(path: Path, afni_dir: Path, suffix: str = "") -> str:
    """A quoted input path, written below ``$path_proc`` when it is inside the afni_proc folder.

    ``suffix`` (e.g. a sub-brick selector ``[label]``) is appended inside the quotes.
    """
    try:
        rel = Path(path).relative_to(afni_dir)
    except ValueError:
        return double_quote(f"{path}{suffix}")
    return '"${path_proc}/' + _escape(f"{rel.as_posix()}{suffix}") + '"'


def check_supported(plan: AnalysisPlan) -> None:
    """Refuse options the AFNI programs cannot do as asked (rather than silently differing).

    Raises
    ------
    UsageError
        For the corrected-DOF option, and for gen_group_command.py with a paired design or
        covariates.
    """
    if plan.correct_dof:
        raise UsageError(
            "--mema-correct-dof changes 3dMEMA's DOF re-mapping, which only the native engine "
            "can do: use --engine native or leave the option out"
        )
    if not plan.analyses:
        raise UsageError("the plan has no analysis to run")
    if plan.via_gen_group_command:
        for a in plan.analyses if plan.program == "3dMEMA" else ():
            if a.design == "conditions":
                raise UsageError(
                    "--via-gen-group-command cannot write a paired (--design conditions) "
                    "3dMEMA: gen_group_command.py only writes -groups; leave the option out"
                )
        if plan.covariates:
            raise UsageError(
                "--via-gen-group-command cannot be combined with --covariates: the subject IDs "
                "gen_group_command.py derives depend on the AFNI version and must match the "
                "covariate table; leave the option out"
            )


def mema_options(plan: AnalysisPlan) -> list[str]:
    """3dMEMA options after the sets and the design, in the tutorial's order."""
    options = []
    if plan.missing_data is not None:
        options.append(f"-missing_data {int(plan.missing_data)}")
    if not plan.hktest:
        options.append("-no_HKtest")
    if plan.covariates:
        options.append(f"-covariates {shell_word(COVARIATES_FILE)}")
    return options


def design_option(analysis: Analysis) -> str | None:
    """``-groups A B`` (unpaired, what gen_group_command.py writes) or ``-conditions A B``."""
    labels = " ".join(shell_word(s.label) for s in analysis.sets)
    if analysis.design == "groups":
        return f"-groups {labels}"
    if analysis.design == "conditions":
        return f"-conditions {labels}"
    return None


def mema_command(plan: AnalysisPlan, analysis: Analysis) -> list[str]:
    """The lines of the direct 3dMEMA command, with explicit ``sub-XX`` subject IDs.

    Explicit IDs because gen_group_command.py changed how it derives them (spec 03 §3).
    """
    lines = ["3dMEMA", '    -prefix "$omema"', '    -jobs "$mema_jobs"']
    for k, s in enumerate(analysis.sets):
        lines.append(f"    -set {shell_word(s.label)}")
        for subj in plan.set_units(analysis, k):
            beta = proc_path(subj.stats, plan.afni_dir, f"[{s.beta}]")
            tstat = proc_path(subj.stats, plan.afni_dir, f"[{s.tstat}]")
            # gen_group_command.py's layout: SID and beta, then the t-stat aligned below
            sid = shell_word(subj.subject_id)
            lines.append(f"        {sid} {beta}")
            lines.append(f"        {' ' * len(sid)} {tstat}")
    design = design_option(analysis)
    if design:
        lines.append(f"    {design}")
    lines.extend(f"    {opt}" for opt in mema_options(plan))
    return lines


def ggc_command(plan: AnalysisPlan, analysis: Analysis) -> list[str]:
    """The lines of the tutorial's ``gen_group_command.py -command 3dMEMA`` call.

    The dataset list is explicit (the analysis' subjects) instead of the tutorial's glob. Two
    groups of different subjects are two ``-dsets`` lists with one beta/t pair, which
    gen_group_command.py uses for both (spec 03 §4, §7).
    """
    lines = [
        "gen_group_command.py",
        "    -command 3dMEMA",
        '    -write_script "${adir}/${script_mema}"',
        '    -prefix "${adir}/${omema}"',
    ]
    members = [plan.set_units(analysis, k) for k in range(len(analysis.sets))]
    lists = members if len(members) == 2 and members[0] != members[1] else members[:1]
    for units in lists:
        lines.append("    -dsets")
        lines.extend(f"        {proc_path(s.stats, plan.afni_dir)}" for s in units)
    specs = analysis.sets
    if len(lists) == 2 and {(s.beta, s.tstat) for s in specs} == {(specs[0].beta, specs[0].tstat)}:
        specs = specs[:1]  # one pair serves both lists
    lines.append(f"    -set_labels {' '.join(double_quote(s.label) for s in analysis.sets)}")
    for option, attr in (("-subs_betas", "beta"), ("-subs_tstats", "tstat")):
        words = " ".join(double_quote(getattr(s, attr)) for s in specs)
        lines.append(f"    {option} {words}")
    options = " ".join([*mema_options(plan), '-jobs "$mema_jobs"'])
    lines.append(f"    -options {options}")
    return lines


def covariate_rows(plan: AnalysisPlan, analysis: Analysis | None = None) -> list[str]:
    """The 3dMEMA ``-covariates`` table: a ``subj`` header, then one row per subject ID (of
    ``analysis``, default all subjects)."""
    if not plan.covariates:
        return []
    columns = sorted(plan.covariates)
    rows = ["\t".join(["subj", *columns])]
    units = plan.subjects if analysis is None else plan.analysis_units(analysis)
    for subj in {u.label: u for u in units}.values():
        values = [number(plan.covariates[c][subj.label]) for c in columns]
        rows.append("\t".join([subj.subject_id, *values]))
    return rows


def stats_variable(plan: AnalysisPlan) -> str:
    """The script's variable holding the group model's output name."""
    return "omema" if plan.program == "3dMEMA" else "ottest"


def tested_sets(plan: AnalysisPlan, analysis: Analysis) -> list[dict]:
    """Per clustered set: its label, stat and effect brick labels and the plan's output names."""
    tested = []
    for label in analysis.tested_labels():
        files = plan.cluster_files(label)
        tbrick, bbrick = plan.stat_bricks(label, analysis)
        tested.append(
            {
                "label": label,
                "tbrick": tbrick,
                "bbrick": bbrick,
                "tbrick_spec": f'"${{{stats_variable(plan)}}}' + _escape(f"[{tbrick}]") + '"',
                "map": files["map"],
                "ee": files["ee"],
                "report": files["report"],
            }
        )
    return tested


def _analysis_summary(analysis: Analysis, program: str = "3dMEMA") -> str:
    sets = " and ".join(f"set {s.label}" for s in analysis.sets)
    return {
        "one": f"one-sample {program} of {sets}",
        "groups": f"two-group (unpaired) {program} of {sets} "
        f"(difference {analysis.difference_label()})",
        "conditions": f"paired {program} of {sets} (difference {analysis.difference_label()})",
    }.get(analysis.design, f"{program} of {sets}")


def _input_arrays(plan: AnalysisPlan, analysis: Analysis | None) -> dict:
    """``mask_files``/``blur_files`` words of an analysis' subjects (default the first one's)."""
    units = plan.analysis_units(analysis or plan.analyses[0])
    return {
        "mask_files": [proc_path(s.mask, plan.afni_dir) for s in units if s.mask is not None],
        "blur_files": [proc_path(s.blur_est, plan.afni_dir) for s in units if s.blur_est],
    }


def shared_steps(plan: AnalysisPlan, analysis: Analysis) -> dict:
    """Whether an analysis makes its own group mask, ACF and 3dClustSim or copies them.

    It copies them from the analysis just before it when both read the same subjects (the
    shell variables of that computation are still set); otherwise it computes them, with its
    own subject arrays when they differ from the first analysis'.
    """
    index = plan.analyses.index(analysis)
    key = plan.shared_key(analysis)
    first = index
    while first and plan.shared_key(plan.analyses[first - 1]) == key:
        first -= 1
    if first < index:
        source = plan.analyses[first].dirname
        return {
            "shared_dir": '"${outdir}/' + _escape(source) + '"',
            "inputs": {},
            "step_prefix": "",
        }
    own = key != plan.shared_key(plan.analyses[0])
    return {
        "shared_dir": None,
        "inputs": _input_arrays(plan, analysis) if own else {},
        # the steps of another set of subjects are named by their analysis, as in the native log
        "step_prefix": f"{analysis.dirname}/" if own else "",
    }


def model_commands(plan: AnalysisPlan, analysis: Analysis) -> dict:
    """The group model's command lines: direct, and gen_group_command.py's call."""
    via = plan.via_gen_group_command
    if plan.program == "3dMEMA":
        return {
            "mema_command": mema_command(plan, analysis),
            "ggc_command": ggc_command(plan, analysis) if via else [],
        }
    return {
        "ttest_command": ttest.ttest_command(plan, analysis, COVARIATES_FILE),
        "ggc_command": ttest.ggc_command(plan, analysis, COVARIATES_FILE) if via else [],
    }


def analysis_context(plan: AnalysisPlan, analysis: Analysis) -> dict:
    """Template values of one analysis."""
    return {
        **shared_steps(plan, analysis),
        "name": analysis.name,
        "dirname": analysis.dirname,
        "adir": '"${outdir}/' + _escape(analysis.dirname) + '"',
        "summary": _analysis_summary(analysis, plan.program),
        "sets": analysis.sets,
        **model_commands(plan, analysis),
        "covariates": (
            covariate_rows(plan, analysis)
            if plan.program == "3dMEMA"
            else ttest.covariate_rows(plan, analysis)
        ),
        "covariates_file": COVARIATES_FILE,
        "tested": tested_sets(plan, analysis),
    }


def _one_line(text: str) -> str:
    """Text safe for a ``#`` comment line."""
    return " ".join(text.split())


def _path_proc(plan: AnalysisPlan) -> str:
    """``$path_proc`` as the tutorial sets it when the afni_proc folder is the default one."""
    if Path(plan.afni_dir) == Path(plan.bids_dir) / "derivatives" / "afni":
        return '"${bids_dir}/derivatives/afni"'
    return double_quote(plan.afni_dir)


def render_context(plan: AnalysisPlan, command_line: str | None = None) -> dict:
    """Everything the template needs, already quoted for bash."""
    t = plan.thresholds
    return {
        "version": __version__,
        "command_line": _one_line(command_line) if command_line else "",
        "bids_dir": double_quote(plan.bids_dir),
        "path_proc": _path_proc(plan),
        # inside "${AFNI_GROUP_OUTDIR:-...}": escape what double quotes would expand
        "output_dir": _escape(str(plan.output_dir)).replace("}", "\\}"),
        **_input_arrays(plan, None),
        "program": plan.program,
        "clustsim_route": plan.clustsim_route,
        "randomise": plan.clustsim_route == "randomise",
        "mema_file": MEMA_FILE,
        "mema_script": MEMA_SCRIPT,
        "stats_file": plan.stats_file,
        "stats_var": stats_variable(plan),
        "ttest_script": ttest.TTEST_SCRIPT,
        "mask_file": MASK_FILE,
        "clustsim_prefix": CLUSTSIM_PREFIX,
        "table_prefix": clustsim_table_prefix(plan.clustsim_route),
        # the table 1d_tool.py reads, in the script's variables
        "csim_table": (
            "${csim_prefix}.${csim_NN}_${csim_sided}.1D"
            if plan.clustsim_route == "acf"
            else "${csim_table_prefix}.${csim_NN}_${csim_sided}.1D"
        ),
        "n_cpus": max(int(plan.n_cpus or 1), 1),
        "via_gen_group_command": plan.via_gen_group_command,
        "mask_frac": number(plan.mask_frac),
        "clustsim_iter": int(plan.clustsim_iter),
        "seed": None if plan.seed is None else int(plan.seed),
        "nn": int(t.nn),
        "sided": t.sided,
        "pthr": number(t.pthr),
        "alpha": number(t.alpha),
        "analyses": [analysis_context(plan, a) for a in plan.analyses],
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("afni_group", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["q"] = shell_word
    env.filters["dq"] = double_quote
    env.filters["continued"] = continued
    return env


def render_script(plan: AnalysisPlan, command_line: str | None = None) -> str:
    """The bash script that runs ``plan`` with AFNI, as text.

    Parameters
    ----------
    plan : AnalysisPlan
        Subjects, analyses, thresholds and output names.
    command_line : str, optional
        The afni-group command line, recorded in the header comment.

    Returns
    -------
    str
        The script; it writes into ``${AFNI_GROUP_OUTDIR:-plan.output_dir}``.

    Raises
    ------
    UsageError
        For options the AFNI programs cannot honour (see :func:`check_supported`).
    """
    check_supported(plan)
    template = _environment().get_template(TEMPLATE)
    return template.render(**render_context(plan, command_line))
