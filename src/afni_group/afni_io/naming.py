"""AFNI dataset file names: the one place that knows them.

An AFNI dataset is either one NIfTI file (``name.nii`` / ``name.nii.gz``) or a pair
``PREFIX+VIEW.HEAD`` + ``PREFIX+VIEW.BRIK[.gz|.bz2|.Z]`` where VIEW is ``orig``, ``acpc`` or
``tlrc``. Programs accept the pair under several spellings (``PREFIX+tlrc``, ``PREFIX+tlrc.``,
``PREFIX+tlrc.HEAD``, ``PREFIX+tlrc.BRIK.gz``, or a bare ``PREFIX`` whose view is looked up).
Every module that builds, finds, tests or shows such a name calls the functions here
(reading, writing, discovery, 3dMEMA's and 3dClusterize's output checks and reports).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from afni_group.errors import InputDataError, MissingInputError

__all__ = [
    "VIEWS",
    "BRIK_SUFFIXES",
    "NIFTI_SUFFIXES",
    "is_nifti",
    "afni_name_parts",
    "strip_view",
    "head_path",
    "brik_path",
    "find_brik",
    "resolve",
    "complete_header",
    "existing_dataset_file",
    "dataset_exists",
    "output_head",
    "display_prefix",
    "header_name",
]

#: AFNI views, in the order AFNI looks them up for a bare prefix
VIEWS = ("orig", "acpc", "tlrc")
#: data file suffixes of a HEAD/BRIK pair, in the order readers look for them
BRIK_SUFFIXES = (".BRIK", ".BRIK.gz", ".BRIK.bz2", ".BRIK.Z")
NIFTI_SUFFIXES = (".nii", ".nii.gz")

_AFNI_NAME = re.compile(
    r"^(?P<prefix>.*)\+(?P<view>orig|acpc|tlrc)(?:\.|\.HEAD|\.BRIK(?:\.gz|\.bz2|\.Z)?)?$"
)
_VIEW_SUFFIX = re.compile(r"\+(orig|acpc|tlrc)(\.(HEAD|BRIK(\.gz)?))?$")


def is_nifti(name: str | os.PathLike) -> bool:
    """True for a ``.nii`` or ``.nii.gz`` file name."""
    return os.fspath(name).endswith(NIFTI_SUFFIXES)


def afni_name_parts(name: str | os.PathLike) -> tuple[str, str] | None:
    """``(prefix, view)`` of ``PREFIX+VIEW[.|.HEAD|.BRIK[.gz|.bz2|.Z]]``; None for other names."""
    m = _AFNI_NAME.match(os.fspath(name))
    return (m.group("prefix"), m.group("view")) if m else None


def strip_view(name: str | os.PathLike) -> str:
    """The name without a trailing ``+VIEW[.HEAD|.BRIK[.gz]]`` (``x+orig.HEAD`` -> ``x``)."""
    return _VIEW_SUFFIX.sub("", os.fspath(name))


def head_path(prefix: str | os.PathLike, view: str) -> Path:
    """``PREFIX+VIEW.HEAD``."""
    return Path(f"{os.fspath(prefix)}+{view}.HEAD")


def brik_path(prefix: str | os.PathLike, view: str, suffix: str = ".BRIK") -> Path:
    """``PREFIX+VIEW.BRIK`` (or another data suffix from :data:`BRIK_SUFFIXES`)."""
    return Path(f"{os.fspath(prefix)}+{view}{suffix}")


def find_brik(prefix: str | os.PathLike, view: str) -> Path | None:
    """The existing data file of ``PREFIX+VIEW`` (first of :data:`BRIK_SUFFIXES`), or None."""
    for suf in BRIK_SUFFIXES:
        candidate = brik_path(prefix, view, suf)
        if candidate.is_file():
            return candidate
    return None


def resolve(path_text: str) -> tuple[str, Path, Path | None, str | None]:
    """Locate a dataset as AFNI does -> ``(kind, header, BRIK or None, view)``.

    ``kind`` is ``'afni'`` or ``'nifti'``; for NIfTI the header is the file itself. A bare
    prefix is tried with each view (``+orig``, ``+acpc``, ``+tlrc``), then ``.nii``/``.nii.gz``.
    Raises MissingInputError when nothing is found and InputDataError for an existing file
    whose name is not a dataset name.
    """
    if is_nifti(path_text):
        p = Path(path_text)
        if not p.is_file():
            raise MissingInputError(f"dataset not found: {p}")
        return "nifti", p, None, None
    parts = afni_name_parts(path_text)
    if parts is None:
        # plain prefix: try the views (AFNI does), then NIfTI names
        for view in VIEWS:
            if head_path(path_text, view).is_file():
                return resolve(str(head_path(path_text, view)))
        for ext in NIFTI_SUFFIXES:
            if Path(path_text + ext).is_file():
                return "nifti", Path(path_text + ext), None, None
        if Path(path_text).is_file():
            raise InputDataError(
                f"{path_text}: not a dataset name AFNI understands "
                "(expected PREFIX+VIEW.HEAD/.BRIK, .nii or .nii.gz)"
            )
        raise MissingInputError(f"dataset not found: {path_text}")
    prefix, view = parts
    head = head_path(prefix, view)
    if not head.is_file():
        raise MissingInputError(f"dataset header not found: {head}")
    return "afni", head, find_brik(prefix, view), view


def complete_header(path: str | os.PathLike) -> Path | None:
    """The header of a complete dataset at ``path``, or None.

    NIfTI: the file if it exists. HEAD/BRIK (``x+tlrc``, ``x+tlrc.`` or ``x+tlrc.HEAD``): the
    ``.HEAD`` file when it and a data file (``.BRIK[.gz|.bz2|.Z]``) both exist.
    """
    text = os.fspath(path)
    if is_nifti(text):
        return Path(text) if Path(text).is_file() else None
    if not text.endswith(".HEAD"):
        text = text.rstrip(".") + ".HEAD"
    head = Path(text)
    if not head.is_file():
        return None
    stem = text[: -len(".HEAD")]
    if not any(Path(stem + sfx).is_file() for sfx in BRIK_SUFFIXES):
        return None
    return head


def existing_dataset_file(name: str | os.PathLike, *, any_view: bool = False) -> Path | None:
    """A file that makes the dataset ``name`` already exist (for refusing to overwrite it).

    NIfTI: the file itself. HEAD/BRIK: its ``.HEAD`` or a data file, in the view the name gives
    (every view when it gives none, or with ``any_view=True``, as 3dMEMA checks).
    """
    text = os.fspath(name)
    if is_nifti(text):
        return Path(text) if Path(text).exists() else None
    parts = afni_name_parts(text)
    if parts is None:
        prefix, views = text, VIEWS
    else:
        prefix, view = parts
        views = VIEWS if any_view else (view,)
    for view in views:
        for suffix in (".HEAD",) + BRIK_SUFFIXES:
            candidate = brik_path(prefix, view, suffix)
            if candidate.exists():
                return candidate
    return None


def dataset_exists(name: str | os.PathLike, *, any_view: bool = False) -> bool:
    """True when :func:`existing_dataset_file` finds a file."""
    return existing_dataset_file(name, any_view=any_view) is not None


def output_head(prefix: str | os.PathLike, view: str) -> Path:
    """The file written for an output ``-prefix``: the NIfTI name itself, or
    ``PREFIX+VIEW.HEAD`` (a ``+view`` already in the prefix is replaced by ``view``)."""
    text = os.fspath(prefix)
    if is_nifti(text):
        return Path(text)
    return head_path(strip_view(text), view)


def display_prefix(path_text: str | os.PathLike) -> str:
    """Dataset name as AFNI reports show it: the file name, NIfTI extension kept, ``+view``
    and what follows dropped."""
    name = os.path.basename(os.fspath(path_text))
    if is_nifti(name):
        return name
    for view in VIEWS:
        tag = f"+{view}"
        if tag in name:
            return name[: name.index(tag)]
    return name


def header_name(path: str | os.PathLike) -> str:
    """The header name AFNI records for a dataset (``mask_dset_name`` of 3dClustSim): the real
    path of a NIfTI file; ``dir/PREFIX+VIEW.HEAD`` as given for HEAD/BRIK."""
    p = os.fspath(path)
    if p.lower().endswith(NIFTI_SUFFIXES):
        return os.path.realpath(p)
    for ext in (".HEAD", ".BRIK", ".BRIK.gz", "."):
        if p.endswith(ext):
            p = p[: -len(ext)]
            break
    head, tail = os.path.split(p)
    return f"{head or '.'}/{tail}.HEAD"


def _view_of_space(space: str | None) -> str:
    """View that goes with a TEMPLATE_SPACE: ``ORIG`` -> orig, ``ACPC`` -> acpc, else tlrc."""
    sp = (space or "ORIG").upper()
    return "orig" if sp == "ORIG" else "acpc" if sp == "ACPC" else "tlrc"
