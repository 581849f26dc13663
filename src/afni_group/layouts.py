"""Where afni_proc.py's results folders are: the layouts labs use, and what to say when none fits.

afni_proc.py writes one results folder per run of it, ``$subj.results`` by default, where
``$subj`` is its ``-subj_id``; labs put these folders in a few ways under AFNI_DIR
(``BIDS_DIR/derivatives/afni`` by default)::

    sub-X/sub-X.results                  the tutorial's (its glob sub*/sub*results)
    sub-X.results                        all results side by side
    sub-X/<subj_id>.results              named by another -subj_id (out.ss_review_uvars.json)

and per session (``-subj_id sub-X_ses-Y`` is afni_proc's BIDS example)::

    sub-X/ses-Y/sub-X_ses-Y.results
    sub-X/sub-X_ses-Y.results
    sub-X_ses-Y.results
    sub-X/ses-Y/<subj_id>.results

Each subject (or subject-session) is looked up in these layouts in this order; the first that
has the folder wins. The afni_proc subject ID (``$subj`` in ``stats.$subj_REML+tlrc``) is the
``subj`` of the folder's ``out.ss_review_uvars.json``, else the folder name without ``.results``.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)

#: every message about layouts stays under this many characters, whatever the subject count
MAX_MESSAGE = 299

_RESULTS_NAME = re.compile(r"sub-([A-Za-z0-9]+)(?:_ses-([A-Za-z0-9]+))?\.results")
_SESSION_DIR = re.compile(r"ses-([A-Za-z0-9]+)")


@dataclass(frozen=True)
class Layout:
    """One way of placing results folders: its name in messages and how to list candidates."""

    name: str
    per_session: bool
    candidates: Callable[[Path, str, str], list[Path]]


def _named(folder: Path, exclude_sessions: bool) -> list[Path]:
    """``*.results`` folders directly in ``folder`` (afni_proc's ``-out_dir`` default)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("*.results") if p.is_dir()]
    if exclude_sessions:
        found = [p for p in found if "_ses-" not in p.name]
    with_uvars = [p for p in found if (p / "out.ss_review_uvars.json").is_file()]
    # several folders: the one afni_proc finished (it writes the uvars last) is the results
    chosen = with_uvars if len(found) > 1 else found
    if len(chosen) > 1:
        LOG.debug("%s: several results folders (%s); none chosen", folder, sorted(chosen))
        return []
    return chosen


LAYOUTS: tuple[Layout, ...] = (
    Layout("sub-X/sub-X.results", False, lambda d, s, _: [d / s / f"{s}.results"]),
    Layout("sub-X.results", False, lambda d, s, _: [d / f"{s}.results"]),
    Layout("sub-X/<subj_id>.results", False, lambda d, s, _: _named(d / s, True)),
    Layout(
        "sub-X/ses-Y/sub-X_ses-Y.results",
        True,
        lambda d, s, y: [d / s / f"ses-{y}" / f"{s}_ses-{y}.results"],
    ),
    Layout("sub-X/sub-X_ses-Y.results", True, lambda d, s, y: [d / s / f"{s}_ses-{y}.results"]),
    Layout("sub-X_ses-Y.results", True, lambda d, s, y: [d / f"{s}_ses-{y}.results"]),
    Layout(
        "sub-X/ses-Y/<subj_id>.results", True, lambda d, s, y: _named(d / s / f"ses-{y}", False)
    ),
)


@dataclass(frozen=True)
class Found:
    """A results folder, the layout it was found in and afni_proc's subject ID for its files."""

    results_dir: Path
    layout: str
    proc_id: str


def layouts_for(session: str | None) -> list[Layout]:
    """The layouts tried for one subject (``session`` None) or one subject-session."""
    return [lay for lay in LAYOUTS if lay.per_session == (session is not None)]


def proc_id_of(results_dir: Path) -> str:
    """afni_proc's ``$subj``: the uvars ``subj`` if readable, else the folder name's stem."""
    uvars = results_dir / "out.ss_review_uvars.json"
    if uvars.is_file():
        try:
            subj = json.loads(uvars.read_text()).get("subj")
        except (OSError, ValueError, AttributeError):
            subj = None  # discovery reports a broken uvars file when it reads it
        if isinstance(subj, str) and subj:
            return subj
    return results_dir.name.removesuffix(".results")


def find_results(afni_dir: Path, label: str, session: str | None) -> Found | None:
    """The results folder of subject ``label`` (and ``session``) in the first layout that has it."""
    sid = f"sub-{label}"
    for layout in layouts_for(session):
        for path in layout.candidates(afni_dir, sid, session or ""):
            if path.is_dir():
                return Found(path, layout.name, proc_id_of(path))
    return None


def expected_dir(afni_dir: Path, label: str, session: str | None, layout: str | None) -> Path:
    """Where a subject's results would be in ``layout`` (for messages about missing files)."""
    sid = f"sub-{label}"
    for lay in layouts_for(session):
        if lay.name == layout or layout is None:
            paths = lay.candidates(afni_dir, sid, session or "")
            if paths:
                return paths[0]
    unit = sid + (f"_ses-{session}" if session else "")
    return afni_dir / sid / f"{unit}.results"


def processed_subjects(afni_dir: Path) -> list[str]:
    """Labels of the subjects with a results folder in any layout."""
    labels = set()
    for entry in afni_dir.glob("sub-*"):
        m = _RESULTS_NAME.fullmatch(entry.name)
        if m and entry.is_dir():
            labels.add(m.group(1))
        elif entry.is_dir() and (
            any(entry.glob("*.results")) or any(entry.glob("ses-*/*.results"))
        ):
            labels.add(entry.name[4:])
    return sorted(labels)


def sessions_found(afni_dir: Path, labels: Sequence[str]) -> list[str]:
    """Session labels with per-session results for any of ``labels`` (sorted)."""
    sessions = set()
    wanted = set(labels)
    for entry in afni_dir.glob("sub-*"):
        m = _RESULTS_NAME.fullmatch(entry.name)
        if m and m.group(2) and m.group(1) in wanted:
            sessions.add(m.group(2))
        if not entry.is_dir() or entry.name[4:] not in wanted:
            continue
        for child in entry.iterdir():
            inner = _RESULTS_NAME.fullmatch(child.name)
            if inner and inner.group(2):
                sessions.add(inner.group(2))
            ses = _SESSION_DIR.fullmatch(child.name)
            if ses and child.is_dir() and any(child.glob("*.results")):
                sessions.add(ses.group(1))
    return sorted(sessions)


def has_plain_results(afni_dir: Path, labels: Sequence[str]) -> bool:
    """Whether any of ``labels`` has results in a layout without sessions."""
    return any(find_results(afni_dir, label, None) is not None for label in labels)


def fit(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis) when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def found_summary(found: Sequence[Found | None], afni_dir: Path, what: str = "subjects") -> str:
    """One line: which layout(s) held the results, for how many of the subjects."""
    counts = Counter(f.layout for f in found if f is not None)
    n, total = sum(counts.values()), len(found)
    if len(counts) == 1:
        (name,) = counts
        text = f"found afni_proc results as {afni_dir}/{name} for {n} of {total} {what}"
    else:
        parts = ", ".join(f"{name} ({k})" for name, k in counts.most_common())
        text = f"found afni_proc results in {afni_dir} as {parts}: {n} of {total} {what}"
    return fit(text)


def listing_summary(afni_dir: Path) -> str:
    """What AFNI_DIR holds, in a few words (for the message when no layout fits)."""
    try:
        entries = sorted(afni_dir.iterdir())
    except OSError as err:
        return f"an unreadable folder ({err.strerror})"
    if not entries:
        return "an empty folder"
    subs = [p for p in entries if p.is_dir() and p.name.startswith("sub-")]
    results = [p for p in entries if p.is_dir() and p.name.endswith(".results")]
    other = [p.name for p in entries if p not in subs and p not in results]
    parts = []
    if subs:
        inside = sorted(c.name for c in subs[0].iterdir()) if subs[0].is_dir() else []
        shown = ", ".join(inside[:3]) + (", ..." if len(inside) > 3 else "") or "nothing"
        parts.append(f"{len(subs)} sub-*/ ({subs[0].name}/ holds {shown})")
    parts.append(f"{len(results) or 'no'} *.results")
    if other:
        parts.append(
            f"{len(other)} other ({', '.join(other[:2])}{', ...' if len(other) > 2 else ''})"
        )
    return ", ".join(parts)


def short_path(path: Path, limit: int = 60) -> str:
    """``path`` with its middle elided when longer than ``limit`` characters."""
    text = str(path)
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: keep // 3] + "\u2026" + text[-(keep - keep // 3) :]


def nothing_found_message(afni_dir: Path, n_subjects: int, sessions: bool) -> str:
    """The one-line error when no subject's results are in any layout (under 300 characters)."""
    tried = ", ".join(lay.name for lay in LAYOUTS if lay.per_session == sessions)
    text = (
        f"no afni_proc results for {n_subjects} subject(s) in {short_path(afni_dir)}: tried "
        f"{tried}; found {listing_summary(afni_dir)}; pass --afni-dir (-v -v: paths tried)"
    )
    return fit(text)


def log_tried(afni_dir: Path, labels: Sequence[str], session: str | None) -> None:
    """Each subject's tried paths, at debug level (the details of the one-line error)."""
    for label in labels:
        paths = [
            str(p)
            for lay in layouts_for(session)
            for p in (lay.candidates(afni_dir, f"sub-{label}", session or "") or [lay.name])
        ]
        LOG.debug(
            "sub-%s%s: no results folder at %s",
            label,
            f" ses-{session}" if session else "",
            "; ".join(paths),
        )
