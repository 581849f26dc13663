"""Find each subject's afni_proc.py results and choose the sets to analyse.

The raw dataset is read with pybids (subjects, ``participants.tsv``). afni_proc results are not
BIDS-named and usually have no ``dataset_description.json``, so pybids would skip them; they are
found directly in AFNI_DIR, in the layouts of :mod:`afni_group.layouts` (the tutorial's
``AFNI_DIR/sub-X/sub-X.results/``, spec 01 §1, flat ``sub-X.results``, per session ...).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from afni_group import layouts
from afni_group.errors import InputDataError, MissingInputError, ParticipantError, UsageError
from afni_group.plan import SetSpec, SubjectFiles

LOG = logging.getLogger(__name__)

REQUIRED_KINDS = ("stats", "mask", "blur_est")
_COEF = re.compile(r"^(?P<stem>.+)#0_Coef$")


def normalise_labels(labels: Iterable[str]) -> list[str]:
    """Participant labels without the ``sub-`` prefix; a file path yields its lines."""
    out: list[str] = []
    for item in labels:
        path = Path(item)
        if not item.startswith("sub-") and path.is_file():
            lines = path.read_text().split()
            out.extend(normalise_labels(lines))
            continue
        out.append(item[4:] if item.startswith("sub-") else item)
    return out


def list_bids_subjects(bids_dir: Path, validate: bool) -> list[str]:
    """Subject labels of the raw BIDS dataset, via pybids.

    Raises
    ------
    InputDataError
        If pybids cannot index the folder (e.g. no ``dataset_description.json``).
    """
    if not (bids_dir / "dataset_description.json").is_file():
        raise InputDataError(
            f"{bids_dir} has no dataset_description.json: BIDS_DIR must be the root of a BIDS "
            "dataset (the folder that contains sub-*/ and derivatives/)"
        )
    try:
        from bids import BIDSLayout

        layout = BIDSLayout(str(bids_dir), validate=validate, derivatives=False)
        subjects = sorted(layout.get_subjects())
    except Exception as err:  # pybids raises many types; name the folder and the cause
        raise InputDataError(
            f"pybids could not read {bids_dir}: {err} (try --skip-bids-validation)"
        ) from err
    return subjects


def _dataset_head(results_dir: Path, name: str | None) -> Path | None:
    """The HEAD (or NIfTI) file for an afni_proc dataset name, if it and its data exist."""
    if not name:
        return None
    from afni_group.afni_io import naming

    return naming.complete_header(results_dir / name)


def _read_uvars(results_dir: Path) -> dict:
    path = results_dir / "out.ss_review_uvars.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputDataError(f"{path} is not valid JSON ({err}); fix or remove it") from err


def find_subject_files(
    afni_dir: Path, label: str, session: str | None = None, found: layouts.Found | None = None
) -> SubjectFiles:
    """Locate one subject's (or one session's) stats, mask and blur_est files.

    The results folder is looked up in afni_proc's common layouts (:mod:`afni_group.layouts`)
    unless ``found`` gives it. ``out.ss_review_uvars.json`` is preferred for the stats dataset
    when present; the REML bucket is used when uvars names the OLS one and the REML one exists,
    because the GLT selectors ``X#0_Coef`` only exist in 3dREMLfit's output (spec 01 §1.1). The
    mask is the seed's ``mask_epi_anat`` when present, else the uvars ``mask_dset``.
    """
    if found is None:
        found = layouts.find_results(afni_dir, label, session)
    if found is None:
        results = layouts.expected_dir(afni_dir, label, session, None)
        return SubjectFiles(label, results, None, None, None, session=session)
    results, sid = found.results_dir, found.proc_id
    uvars = _read_uvars(results)
    source = "out.ss_review_uvars.json" if uvars else "standard names"

    reml = _dataset_head(results, f"stats.{sid}_REML+tlrc.HEAD")
    stats = _dataset_head(results, uvars.get("stats_dset")) if uvars else None
    if stats is None or ("_REML" not in stats.name and reml is not None):
        stats = reml
    mask = _dataset_head(results, f"mask_epi_anat.{sid}+tlrc.HEAD")
    if mask is None and uvars:
        mask = _dataset_head(results, uvars.get("mask_dset"))
    blur = results / f"blur_est.{sid}.1D"
    blur_est = blur if blur.is_file() else None

    labels: tuple[str, ...] = ()
    if stats is not None:
        labels = tuple(read_brick_labels(stats))
    proc_id = "" if sid == f"sub-{label}" + (f"_ses-{session}" if session else "") else sid
    return SubjectFiles(
        label,
        results,
        stats,
        mask,
        blur_est,
        labels,
        source,
        session=session,
        proc_id=proc_id,
        layout=found.layout,
    )


def read_brick_labels(path: Path) -> list[str]:
    """Sub-brick labels of a dataset (header only)."""
    from afni_group import afni_io

    return afni_io.read_labels(path)


def discover_subjects(
    bids_dir: Path,
    afni_dir: Path,
    participant_labels: Sequence[str] | None,
    validate: bool,
    session_labels: Sequence[str] | None = None,
) -> list[SubjectFiles]:
    """All selected subjects' (or subject-sessions') files, complete or not.

    Subjects are those of the raw BIDS dataset; a subject with afni_proc results but no raw
    folder is included too (with a warning), because the group step needs only the results.
    Per-session results are ordered by session (in ``session_labels`` order), then subject.

    Raises
    ------
    ParticipantError
        A ``--participant-label`` matches nobody (every such label is named).
    UsageError
        A ``--session-label`` has no per-session results.
    MissingInputError
        No subject has results in any layout (one line; each subject's paths at debug level).
    """
    if not afni_dir.is_dir():
        raise MissingInputError(
            f"afni_proc results folder {afni_dir} does not exist: pass --afni-dir "
            "(default BIDS_DIR/derivatives/afni)"
        )
    raw = list_bids_subjects(bids_dir, validate)
    processed = layouts.processed_subjects(afni_dir)
    extra = sorted(set(processed) - set(raw))
    if extra:
        LOG.warning("subjects with afni_proc results but no raw BIDS folder: %s", extra)
    labels = sorted(set(raw) | set(processed))
    if participant_labels:
        labels = select_participants(labels, participant_labels, bids_dir, afni_dir)
    if not labels:
        raise MissingInputError(f"no subjects found in {bids_dir} or {afni_dir}")
    sessions = choose_sessions(afni_dir, labels, session_labels)
    units = [(lab, ses) for ses in sessions for lab in labels]
    found = [layouts.find_results(afni_dir, lab, ses) for lab, ses in units]
    per_session = sessions != [None]
    if not any(found):
        for ses in sessions:
            layouts.log_tried(afni_dir, labels, ses)
        raise MissingInputError(layouts.nothing_found_message(afni_dir, len(labels), per_session))
    what = "subject-sessions" if per_session else "subjects"
    LOG.info("++ %s", layouts.found_summary(found, afni_dir, what))
    usual = Counter(f.layout for f in found if f is not None).most_common(1)[0][0]
    out = []
    for (lab, ses), hit in zip(units, found, strict=True):
        if hit is None:  # expected where the other subjects' results are
            path = layouts.expected_dir(afni_dir, lab, ses, usual)
            out.append(SubjectFiles(lab, path, None, None, None, session=ses))
        else:
            out.append(find_subject_files(afni_dir, lab, ses, hit))
    return out


def select_participants(
    labels: Sequence[str], participant_labels: Sequence[str], bids_dir: Path, afni_dir: Path
) -> list[str]:
    """The subjects ``--participant-label`` names; every label matching nobody is an error (18).

    The BIDS-Apps convention (fMRIPrep and others): a typo must not silently shrink the group.
    """
    wanted = normalise_labels(participant_labels)
    unknown = list(dict.fromkeys(w for w in wanted if w not in labels))
    if unknown:
        shown = " ".join(unknown[:10]) + (
            f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        )
        raise ParticipantError(
            layouts.fit(
                f"--participant-label {shown}: no such participant in {bids_dir} or "
                f"{afni_dir} (there are {len(labels)}: {' '.join(labels[:5])}"
                f"{' ...' if len(labels) > 5 else ''}); fix or remove the label(s)"
            )
        )
    return [lab for lab in labels if lab in wanted]


def choose_sessions(
    afni_dir: Path, labels: Sequence[str], session_labels: Sequence[str] | None
) -> list[str | None]:
    """The sessions to analyse: ``--session-label``'s, else ``[None]`` (one results folder per
    subject) unless AFNI_DIR has only per-session results, then all their sessions."""
    available = layouts.sessions_found(afni_dir, labels)
    if session_labels:
        wanted = list(dict.fromkeys(s.removeprefix("ses-") for s in session_labels))
        if not available:
            tried = ", ".join(lay.name for lay in layouts.LAYOUTS if lay.per_session)
            raise UsageError(
                f"--session-label {' '.join(wanted)}: {afni_dir} has no per-session afni_proc "
                f"results (tried {tried}); leave the option out to analyse one results folder "
                "per subject"
            )
        unknown = [s for s in wanted if s not in available]
        if unknown:
            raise UsageError(
                f"--session-label {' '.join(unknown)}: no results for that session in "
                f"{afni_dir} (sessions found: {', '.join(available)})"
            )
        return list(wanted)
    if available and not layouts.has_plain_results(afni_dir, labels):
        LOG.info(
            "++ found sessions %s: one analysis per session (choose with --session-label)",
            ", ".join(available),
        )
        return list(available)
    return [None]


def missing_file(subject: SubjectFiles, kind: str) -> Path:
    """The file to name for a missing input: the BRIK when only the data half is missing.

    A dataset is missing when its HEAD or its BRIK is; naming the HEAD while it is present
    (and its ``.BRIK``/``.BRIK.gz`` is not) would send the user looking for the wrong file.
    """
    from afni_group.afni_io import naming

    expected = subject.expected(kind)
    parts = naming.afni_name_parts(expected)
    if parts is not None and expected.name.endswith(".HEAD") and expected.is_file():
        return naming.brik_path(*parts)
    return expected


def check_complete(
    subjects: list[SubjectFiles], drop_incomplete: bool, needs_blur_est: bool = True
) -> tuple[list[SubjectFiles], list[tuple[str, str]]]:
    """Split subjects into complete ones and dropped ones, or fail naming the incomplete ones.

    The error is one line whatever the number of subjects: a few IDs and the first subject's
    missing files; every subject's are logged (debug level). ``needs_blur_est`` False (the
    randomise route, which models no ACF) does not count a missing ``blur_est`` file.
    """

    def lacking(s: SubjectFiles) -> list[str]:
        return [k for k in s.missing if needs_blur_est or k != "blur_est"]

    complete = [s for s in subjects if not lacking(s)]
    incomplete = [s for s in subjects if lacking(s)]
    dropped = [
        (s.unit_label, "missing " + ", ".join(str(missing_file(s, k)) for k in lacking(s)))
        for s in incomplete
    ]
    if incomplete and not drop_incomplete:
        for lab, why in dropped:
            LOG.debug("sub-%s: %s", lab, why)
        raise MissingInputError(_incomplete_message(incomplete, lacking))
    for lab, why in dropped:
        LOG.warning("dropping sub-%s: %s", lab, why)
    if len(complete) < 2:
        raise MissingInputError(
            f"only {len(complete)} subject(s) with complete afni_proc results in "
            f"{subjects[0].results_dir.parent.parent if subjects else 'AFNI_DIR'}: a group "
            "analysis needs at least 2"
        )
    return complete, dropped


def _incomplete_message(
    incomplete: list[SubjectFiles], lacking: Callable[[SubjectFiles], list[str]]
) -> str:
    """One line naming the missing files, of as many subjects as fit in 300 characters.

    The folder of the first one comes last and is what gets cut when the line is too long.
    """
    head = f"required afni_proc files missing for {len(incomplete)} subject(s): "
    advice = "; fix them, or pass --drop-incomplete to leave those subjects out"
    where = f" (first: {incomplete[0].results_dir})"
    budget = layouts.MAX_MESSAGE - len(head) - len(advice) - 40
    parts: list[str] = []
    for k, s in enumerate(incomplete):
        part = f"sub-{s.unit_label}: " + ", ".join(missing_file(s, x).name for x in lacking(s))
        if parts and len("; ".join([*parts, part])) > budget:
            parts.append(f"and {len(incomplete) - k} more (-v -v lists them)")
            break
        parts.append(part)
    return layouts.fit(head + "; ".join(parts) + advice + where)


def check_selectors(subjects: list[SubjectFiles], sets: Sequence[SetSpec]) -> None:
    """Every set's beta and t labels exist in every subject's stats dataset."""
    for s in subjects:
        for spec in sets:
            for label in (spec.beta, spec.tstat):
                if label not in s.brick_labels:
                    raise InputDataError(
                        f"sub-brick label '{label}' (set '{spec.label}') not in {s.stats}; its "
                        f"labels are: {', '.join(s.brick_labels)}"
                    )


def auto_sets(subjects: list[SubjectFiles]) -> tuple[list[SetSpec], list[str]]:
    """Contrasts with both a Coef and a Tstat brick in every subject.

    Returns the sets (label = the contrast stem, ``_GLT`` removed) and notes about what was
    skipped and why.
    """
    notes: list[str] = []
    per_subject = []
    for s in subjects:
        stems = set()
        for lab in s.brick_labels:
            m = _COEF.match(lab)
            if m and f"{m['stem']}#0_Tstat" in s.brick_labels:
                stems.add(m["stem"])
        per_subject.append(stems)
    everywhere = set.intersection(*per_subject) if per_subject else set()
    anywhere = set.union(*per_subject) if per_subject else set()
    for stem in sorted(anywhere - everywhere):
        lacking = [s.label for s, st in zip(subjects, per_subject, strict=True) if stem not in st]
        notes.append(f"skipped '{stem}': no Coef/Tstat pair in sub-{', sub-'.join(lacking)}")
    order = [
        m["stem"]
        for lab in subjects[0].brick_labels
        if (m := _COEF.match(lab)) and m["stem"] in everywhere
    ]
    sets = []
    for stem in order:
        label = stem[: -len("_GLT")] if stem.endswith("_GLT") else stem
        sets.append(SetSpec(label, f"{stem}#0_Coef", f"{stem}#0_Tstat"))
        notes.append(f"chose '{stem}': {stem}#0_Coef and {stem}#0_Tstat in every subject")
    if not sets:
        raise InputDataError(
            f"no contrast has both X#0_Coef and X#0_Tstat sub-bricks in every subject "
            f"(labels of {subjects[0].stats}: {', '.join(subjects[0].brick_labels)}); "
            "name the bricks with --set LABEL BETA TSTAT"
        )
    return sets, notes


def validate_set_label(label: str) -> str:
    """3dMEMA set labels become brick labels ``label:b``; keep them simple."""
    from afni_group.designs import check_label

    return check_label(label, "--set label")
