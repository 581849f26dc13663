"""The study designs: which 3dMEMA models a run fits, and the checks that keep them honest.

Three designs, as 3dMEMA has them (spec 02 §2):

* ``one``: a one-sample test of one set (``-set A``);
* ``groups``: two independent groups (``-groups A B``: each group's mean and ``B-A``, df
  n1 + n2 - 2). The two sets come from ``--group-column COLUMN`` of participants.tsv (one
  contrast, the subjects split by their value, as gen_group_command.py's per-group ``-dsets``
  lists do), or from two ``--set`` options, which is what the tutorial's gen_group_command.py call
  writes for two contrasts of the *same* subjects: that is detected and warned about;
* ``conditions``: paired (``-conditions A B``: the within-subject difference ``B-A``, df n - 1),
  of two ``--set`` contrasts of the same subjects, or of one contrast in two sessions
  (``--session-label FIRST SECOND``).

Sessions: with per-session results every analysis runs once per session (its folder
``analysis-NAME_ses-LABEL``), except the paired design across two sessions.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from afni_group.errors import InputDataError, MissingInputError, UsageError
from afni_group.plan import (
    RANDOMISE_MIN_DATASETS,
    TTEST_SET_NAME_MAX,
    Analysis,
    AnalysisPlan,
    SetSpec,
    SubjectFiles,
    safe_name,
)

LOG = logging.getLogger(__name__)

#: the input_qc finding of a two-group design whose groups share subjects
SAME_SUBJECTS = "same_subjects_in_groups"


@dataclass(frozen=True)
class GroupSplit:
    """The two groups of ``--group-column``: participants.tsv column, levels (A, B), members."""

    column: str
    levels: tuple[str, str]
    level_of: dict[str, str]  # subject label -> level (only subjects in A or B)


def read_participants_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` of every non-blank row of participants.tsv."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except OSError as err:
        raise MissingInputError(f"cannot read {path}: {err.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputDataError(f"{path}: not a UTF-8 tab-separated table ({err})") from None
    numbered = [(n, r) for n, r in enumerate(rows, start=1) if any(f.strip() for f in r)]
    if not numbered:
        raise InputDataError(f"{path} is empty: it needs a header with participant_id")
    (_, header), body = numbered[0], numbered[1:]
    return [h.strip() for h in header], body


def read_groups(
    path: Path, column: str, levels: Sequence[str], subjects: Sequence[str]
) -> GroupSplit:
    """Split ``subjects`` into two groups by a participants.tsv column.

    ``levels`` (optional) names the two values A and B in that order (the difference is B-A, as
    3dMEMA names it); without them the column must have exactly two values, taken in sorted
    order. Subjects with another value are left out (only possible with ``levels``).

    Raises
    ------
    MissingInputError
        participants.tsv does not exist.
    InputDataError
        No such column, a subject without a row or value, or not two values; the message
        names the file, the line and the column.
    """
    option = f"--group-column {column}"
    if not Path(path).is_file():
        raise MissingInputError(f"{option} needs {path} (participants.tsv with that column)")
    header, body = read_participants_rows(path)
    for needed in ("participant_id", column):
        if needed not in header:
            raise InputDataError(
                f"{path} line 1: no column '{needed}' (columns: {', '.join(header)})"
            )
    rows = {}
    for number, fields in body:
        row = dict(zip(header, (f.strip() for f in fields), strict=False))
        rows[row.get("participant_id", "").removeprefix("sub-")] = (number, row.get(column, ""))
    values = {}
    for sub in subjects:
        if sub not in rows:
            raise InputDataError(f"{path}: no row for sub-{sub}; add it ({option})")
        number, value = rows[sub]
        if value in ("", "n/a"):
            raise InputDataError(
                f"{path} line {number} (sub-{sub}), column '{column}': no value; give every "
                "subject a group or leave it out with --participant-label"
            )
        values[sub] = value
    found = sorted(set(values.values()))
    chosen = tuple(levels) if levels else tuple(found)
    if len(chosen) != 2 or chosen[0] == chosen[1]:
        raise InputDataError(
            f"{path}, column '{column}': {len(found)} values ({', '.join(found)}); a two-group "
            f"design needs two: name them, e.g. {option} {' '.join(found[:2])}"
        )
    for level in chosen:
        if level not in found:
            raise InputDataError(
                f"{path}, column '{column}': no subject has the value '{level}' "
                f"(values: {', '.join(found)})"
            )
        check_label(level, f"{option} value")
    left_out = sorted(s for s, v in values.items() if v not in chosen)
    if left_out:
        LOG.info("++ %s: left out (other values): sub-%s", option, ", sub-".join(left_out))
    level_of = {s: v for s, v in values.items() if v in chosen}
    return GroupSplit(column, (chosen[0], chosen[1]), level_of)


def check_label(label: str, what: str) -> str:
    """3dMEMA set labels become brick labels ``label:b``; keep them simple."""
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", label):
        raise UsageError(f"{what} '{label}' may contain only letters, digits and _ . + -")
    return label


def _by_session(units: Sequence[SubjectFiles]) -> dict[str | None, list[SubjectFiles]]:
    out: dict[str | None, list[SubjectFiles]] = {}
    for unit in units:
        out.setdefault(unit.session, []).append(unit)
    return out


def _suffixed(name: str, session: str | None) -> str:
    return safe_name(name if session is None else f"{name}_ses-{session}")


def paired_sessions(
    contrasts: Sequence[tuple[str, SetSpec]], units: Sequence[SubjectFiles], sessions: Sequence[str]
) -> tuple[list[Analysis], list[str]]:
    """One paired analysis per contrast: its beta in session 2 minus session 1, per subject.

    Subjects with only one of the two sessions' results (after ``--drop-incomplete``) are left
    out of the pairs, with a note.
    """
    first, second = sessions
    per = _by_session(units)
    in_first = {u.label: u for u in per.get(first, [])}
    in_second = {u.label: u for u in per.get(second, [])}
    both = sorted(set(in_first) & set(in_second))
    notes = [
        f"sub-{lab} left out of the {second}-{first} pairs: no complete ses-{ses} results"
        for lab in sorted(set(in_first) ^ set(in_second))
        for ses in ((second,) if lab in in_first else (first,))
    ]
    if len(both) < 2:
        raise MissingInputError(
            f"--design conditions across sessions {first} and {second}: only {len(both)} "
            "subject(s) have complete results in both; a paired analysis needs at least 2"
        )
    analyses = [
        Analysis(
            name,
            [SetSpec(first, c.beta, c.tstat), SetSpec(second, c.beta, c.tstat)],
            "conditions",
            members=[[in_first[lab] for lab in both], [in_second[lab] for lab in both]],
        )
        for name, c in contrasts
    ]
    return analyses, notes


def plan_analyses(
    sets: Sequence[SetSpec],
    explicit: bool,
    design: str,
    analysis_name: str,
    units: Sequence[SubjectFiles],
    sessions: Sequence[str | None],
    groups: GroupSplit | None = None,
) -> tuple[list[Analysis], list[str]]:
    """The 3dMEMA analyses of a run, in order (per session, then contrast).

    Parameters
    ----------
    sets : list of SetSpec
        The ``--set`` options (``explicit``) or the contrasts found in every subject.
    design : str
        ``--design``: auto, one, groups or conditions.
    analysis_name : str
        ``--analysis-name``: the folder of an analysis of explicit sets.
    units : list of SubjectFiles
        The complete results (one per subject, or per subject and session).
    sessions : list
        ``[None]`` without sessions, else the session labels (``--session-label`` order).
    groups : GroupSplit, optional
        ``--group-column``'s two groups.

    Returns
    -------
    (analyses, notes)
        The analyses and notes about who was left out of them.

    Raises
    ------
    UsageError
        A design the options cannot give (e.g. ``conditions`` with one set and no sessions).
    """
    n = len(sets)
    per_session = list(sessions) != [None]
    # one analysis per contrast when sets are auto-detected or split by group or session
    one_each = not explicit or groups is not None
    one_each = one_each or (design == "conditions" and n == 1 and per_session)
    contrasts = [(s.label if (n > 1 or not explicit) else analysis_name, s) for s in sets]
    if groups is not None:
        if design not in ("auto", "groups"):
            raise UsageError(
                f"--group-column gives a two-group design; --design {design} does not fit it "
                "(3dMEMA cannot pair and split into groups at once)"
            )
        return _group_analyses(contrasts, units, sessions, groups), []
    if design == "conditions" and one_each:
        if not per_session or len(sessions) != 2:
            why = "two --set options" if not per_session else "exactly two --session-label"
            raise UsageError(
                f"--design conditions needs {why} (paired: the second minus the first)"
            )
        return paired_sessions(contrasts, units, sessions)  # type: ignore[arg-type]
    if not explicit and design not in ("auto", "one"):
        raise UsageError(
            f"--design {design} needs two --set options (or --group-column for two groups, "
            "or two --session-label for a paired design across sessions)"
        )
    if explicit:
        design = ("one" if n == 1 else "groups") if design == "auto" else design
        if (design == "one") != (n == 1):
            raise UsageError(f"--design {design} does not fit {n} --set option(s)")
    per = _by_session(units)
    analyses = []
    for ses in sessions:
        members = per.get(ses, []) if per_session else []
        if explicit:
            blocks = [(analysis_name, list(sets), design)]
        else:
            blocks = [(name, [s], "one") for name, s in contrasts]
        for name, block_sets, kind in blocks:
            analyses.append(
                Analysis(
                    _suffixed(name, ses),
                    block_sets,
                    kind,
                    members=[list(members) for _ in block_sets] if per_session else [],
                    session=ses,
                )
            )
    return analyses, []


def _group_analyses(
    contrasts: Sequence[tuple[str, SetSpec]],
    units: Sequence[SubjectFiles],
    sessions: Sequence[str | None],
    groups: GroupSplit,
) -> list[Analysis]:
    """One two-group analysis per contrast (and session): sets A and B of that contrast."""
    per = _by_session(units)
    a, b = groups.levels
    analyses = []
    for ses in sessions:
        members = [u for u in per.get(ses, []) if u.label in groups.level_of]
        split = [[u for u in members if groups.level_of[u.label] == lev] for lev in (a, b)]
        for level, part in zip((a, b), split, strict=True):
            if not part:
                where = f" in session {ses}" if ses else ""
                raise MissingInputError(
                    f"--group-column {groups.column}: no subject with complete results in "
                    f"group '{level}'{where}"
                )
        for name, c in contrasts:
            analyses.append(
                Analysis(
                    _suffixed(name, ses),
                    [SetSpec(a, c.beta, c.tstat), SetSpec(b, c.beta, c.tstat)],
                    "groups",
                    members=split,
                    session=ses,
                )
            )
    return analyses


def included_units(plan_units: Sequence[SubjectFiles], analyses: Sequence[Analysis]) -> list:
    """The results some analysis reads, in discovery order (all of them without members)."""
    if not all(a.members for a in analyses):
        return list(plan_units)
    used = {u.unit_id for a in analyses for part in a.members for u in part}
    return [u for u in plan_units if u.unit_id in used]


# ============================================================================ checks


def same_subjects_findings(plan: AnalysisPlan) -> list[dict]:
    """Two-group analyses whose groups share subjects (the tutorial's two contrasts).

    The unpaired model assumes independent groups; with the same subjects in both, its df
    (n1 + n2 - 2) counts every subject twice and the between-set test ignores the pairing.
    """
    findings = []
    ncov = len(plan.covariates)
    for analysis in plan.analyses:
        if analysis.design != "groups":
            continue
        first, second = (
            {u.label for u in plan.set_units(analysis, k)} for k in range(len(analysis.sets))
        )
        shared = sorted(first & second)
        if not shared:
            continue
        a, b = analysis.set_labels()
        n1, n2 = len(first), len(second)
        findings.append(
            {
                "check": SAME_SUBJECTS,
                "analysis": analysis.name,
                "sets": [a, b],
                "n_shared": len(shared),
                "n1": n1,
                "n2": n2,
                "df": n1 + n2 - 2 - ncov,
                "paired_df": len(shared) - 1 - ncov,
                "message": (
                    f"analysis '{analysis.name}': {len(shared)} subject(s) are in both set "
                    f"'{a}' and set '{b}' of a two-group (unpaired) design, which assumes "
                    f"independent groups (df = n1+n2-2 = {n1 + n2 - 2 - ncov}); for two "
                    f"conditions of the same subjects use --design conditions (paired, df = "
                    f"{len(shared) - 1 - ncov}), or --design one for each set alone"
                ),
            }
        )
    return findings


def check_ttest_plan(plan: AnalysisPlan) -> None:
    """What ``--program 3dttest++`` (and ``--clustsim randomise``) needs of the plan's sets.

    Raises
    ------
    UsageError
        Two set labels 3dttest++ would cut to the same name, or, for
        ``--clustsim randomise``, fewer datasets than ``3dttest++ -Clustsim`` accepts (14 in
        all, 4 per set: AFNI refuses them too).
    """
    if plan.program != "3dttest++":
        return
    from afni_group.programs.ttest.clustsim import MIN_PER_SET

    for analysis in plan.analyses:
        names = {s.label[:TTEST_SET_NAME_MAX] for s in analysis.sets}
        if len(names) < len(analysis.sets):
            raise UsageError(
                f"{analysis.dirname}: set labels {' and '.join(analysis.set_labels())} are the "
                f"same in their first {TTEST_SET_NAME_MAX} characters, all 3dttest++ keeps of "
                "a set name; name the sets with --set LABEL BETA TSTAT"
            )
        if plan.clustsim_route != "randomise":
            continue
        counts = [len(plan.set_units(analysis, k)) for k in range(len(analysis.sets))]
        if sum(counts) < RANDOMISE_MIN_DATASETS or min(counts) < MIN_PER_SET:
            sizes = " + ".join(str(n) for n in counts)
            raise UsageError(
                f"--clustsim randomise: {analysis.dirname} has {sizes} dataset(s); 3dttest++ "
                f"-Clustsim needs at least {RANDOMISE_MIN_DATASETS} in all and {MIN_PER_SET} "
                "per set; use --clustsim acf"
            )


def design_qc(plan: AnalysisPlan) -> list[dict]:
    """The design findings of ``plan`` for ``input_qc``, each logged as a WARNING line."""
    findings = same_subjects_findings(plan)
    for finding in findings:
        LOG.warning("%s", finding["message"])
    return findings


def qc_sets(plan: AnalysisPlan) -> list[SetSpec]:
    """Each (beta, t) pair of the plan once, in plan order, for the input QC.

    A pair read under several set labels (e.g. both groups of ``--group-column``) is named by
    its contrast (the beta label without ``#0_Coef``), since its QC covers every subject.
    """
    labels: dict[tuple[str, str], list[str]] = {}
    for analysis in plan.analyses:
        for spec in analysis.sets:
            labels.setdefault((spec.beta, spec.tstat), []).append(spec.label)
    specs = []
    for (beta, tstat), names in labels.items():
        unique = list(dict.fromkeys(names))
        label = unique[0] if len(unique) == 1 else beta.removesuffix("#0_Coef")
        specs.append(SetSpec(label, beta, tstat))
    return specs


def threshold_line(label: str, threshold: str, dof: float | None, stat: str = "t") -> str:
    """The console line of a voxelwise threshold, naming its t statistic's df (or ``z``)."""
    df = f" (t, df = {dof:g})" if dof else (" (z)" if stat == "z" else "")
    return f"++ Stat threshold {label}: {threshold}{df}"


def t_dof(mema: Path | str, tbrick: str) -> float | None:
    """Degrees of freedom of a t sub-brick of a 3dMEMA output, as its header records them."""
    from afni_group import afni_io

    params = afni_io.read_dataset(f"{mema}[{tbrick}]").stat_params[0]
    return float(params[0]) if params else None
