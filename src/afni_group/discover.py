"""Find each subject's afni_proc.py results and choose the sets to analyse.

The raw dataset is read with pybids (subjects, ``participants.tsv``). afni_proc results are not
BIDS-named and usually have no ``dataset_description.json``, so pybids would skip them; they are
found directly at ``AFNI_DIR/sub-X/sub-X.results/`` (spec 01 §1).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

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


def find_subject_files(afni_dir: Path, label: str) -> SubjectFiles:
    """Locate one subject's stats, mask and blur_est files.

    ``out.ss_review_uvars.json`` is preferred for the stats dataset when present; the REML
    bucket is used when uvars names the OLS one and the REML one exists, because the GLT
    selectors ``X#0_Coef`` only exist in 3dREMLfit's output (spec 01 §1.1). The mask is the
    seed's ``mask_epi_anat`` when present, else the uvars ``mask_dset``.
    """
    sid = f"sub-{label}"
    results = afni_dir / sid / f"{sid}.results"
    uvars = _read_uvars(results) if results.is_dir() else {}
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
    return SubjectFiles(label, results, stats, mask, blur_est, labels, source)


def read_brick_labels(path: Path) -> list[str]:
    """Sub-brick labels of a dataset (header only)."""
    from afni_group import afni_io

    return afni_io.read_labels(path)


def discover_subjects(
    bids_dir: Path,
    afni_dir: Path,
    participant_labels: Sequence[str] | None,
    validate: bool,
) -> list[SubjectFiles]:
    """All selected subjects' files (complete or not), sorted by label.

    Subjects are those of the raw BIDS dataset; a subject with afni_proc results but no raw
    folder is included too (with a warning), because the group step needs only the results.
    """
    if not afni_dir.is_dir():
        raise MissingInputError(
            f"afni_proc results folder {afni_dir} does not exist: pass --afni-dir "
            "(default BIDS_DIR/derivatives/afni)"
        )
    raw = list_bids_subjects(bids_dir, validate)
    processed = sorted(
        p.name[4:] for p in afni_dir.glob("sub-*") if (p / f"{p.name}.results").is_dir()
    )
    extra = sorted(set(processed) - set(raw))
    if extra:
        LOG.warning("subjects with afni_proc results but no raw BIDS folder: %s", extra)
    labels = sorted(set(raw) | set(processed))
    if participant_labels:
        wanted = normalise_labels(participant_labels)
        unknown = [w for w in wanted if w not in labels]
        labels = [lab for lab in labels if lab in wanted]
        if not labels:
            raise ParticipantError(
                f"--participant-label {' '.join(wanted)} matched no participant in {bids_dir} "
                f"or {afni_dir}"
            )
        if unknown:
            LOG.warning("--participant-label: no such participant: %s", " ".join(unknown))
    if not labels:
        raise MissingInputError(f"no subjects found in {bids_dir} or {afni_dir}")
    return [find_subject_files(afni_dir, lab) for lab in labels]


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
    subjects: list[SubjectFiles], drop_incomplete: bool
) -> tuple[list[SubjectFiles], list[tuple[str, str]]]:
    """Split subjects into complete ones and dropped ones, or fail listing every missing file."""
    complete = [s for s in subjects if not s.missing]
    incomplete = [s for s in subjects if s.missing]
    dropped = [
        (s.label, "missing " + ", ".join(str(missing_file(s, k)) for k in s.missing))
        for s in incomplete
    ]
    if incomplete and not drop_incomplete:
        listing = "; ".join(f"sub-{lab}: {why}" for lab, why in dropped)
        raise MissingInputError(
            f"required afni_proc files missing for {len(incomplete)} subject(s): {listing} "
            "(fix them, or pass --drop-incomplete to leave those subjects out)"
        )
    for lab, why in dropped:
        LOG.warning("dropping sub-%s: %s", lab, why)
    if len(complete) < 2:
        raise MissingInputError(
            f"only {len(complete)} subject(s) with complete afni_proc results in "
            f"{subjects[0].results_dir.parent.parent if subjects else 'AFNI_DIR'}: a group "
            "analysis needs at least 2"
        )
    return complete, dropped


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
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", label):
        raise UsageError(f"--set label '{label}' may contain only letters, digits and _ . + -")
    return label
