"""AFNI dataset I/O: HEAD/BRIK(.gz) and NIfTI-1 with the AFNI extension, sub-brick selectors.

Everything that knows AFNI file formats lives here (spec 01-inputs.md §2-§7):

* :func:`read_dataset` reads ``PREFIX+VIEW[.HEAD|.BRIK|.BRIK.gz]`` or ``.nii``/``.nii.gz``, with an
  optional AFNI sub-brick selector (``'file[chx:t]'``), and always returns 4-D data
  ``(nx, ny, nz, nvals)``.
* :func:`write_dataset` writes NIfTI-1 (+ AFNI extension, code 4) or HEAD/BRIK, formatted the way
  AFNI itself formats them (byte-exact HEAD text, extension XML text), atomically.
* :func:`split_selector` / :func:`parse_selector` implement AFNI's ``[...]`` sub-brick selectors.
* Geometry helpers convert between the NIfTI/nibabel RAS+ affine and AFNI's DICOM/RAI
  ``ORIENT_SPECIFIC`` / ``ORIGIN`` / ``DELTA`` / ``IJK_TO_DICOM_REAL`` attributes.

Deterministic output: pass ``idcode=`` and ``date=`` to :func:`write_dataset`, or set the
environment variable ``AFNI_GROUP_DETERMINISTIC=1`` (the id code is then derived from a hash of
the dataset, and the date from ``SOURCE_DATE_EPOCH``, default 0).

Modules, one job each: :mod:`.stat_codes` (stat codes, BRICK_STATSYM text), :mod:`.selectors`,
:mod:`.head_text` (HEAD attribute text), :mod:`.niml_ext` (NIfTI extension), :mod:`.geometry`
(affines, AFNI orientation, NIfTI quaternions), :mod:`.naming` (the one owner of AFNI file
names), :mod:`.dataset` (:class:`AfniDataset`), :mod:`.reader`, :mod:`.writer`, :mod:`.ids`
(id codes, dates, history). Everything public is re-exported here.
"""

from __future__ import annotations

import os  # noqa: F401  (tests patch afni_io.os.replace)

from afni_group.afni_io.dataset import AfniDataset
from afni_group.afni_io.geometry import (
    affine_from_afni_geometry,
    affine_from_ijk_to_dicom,
    afni_geometry,
    ijk_to_dicom,
    orientation_string,
    same_grid,
)
from afni_group.afni_io.head_text import _Float, _Int, format_head_text, parse_head_text
from afni_group.afni_io.ids import history_entry, new_idcode
from afni_group.afni_io.naming import dataset_exists, display_prefix, is_nifti, resolve
from afni_group.afni_io.niml_ext import (
    _niml_unescape,
    format_afni_extension,
    parse_afni_extension,
)
from afni_group.afni_io.reader import read_dataset, read_labels
from afni_group.afni_io.selectors import parse_selector, split_selector
from afni_group.afni_io.stat_codes import (
    STAT_BETA,
    STAT_BINOM,
    STAT_CHISQ,
    STAT_CORREL,
    STAT_FTEST,
    STAT_GAMMA,
    STAT_NAMES,
    STAT_NONE,
    STAT_NPARAMS,
    STAT_POISSON,
    STAT_SHORT_NAMES,
    STAT_TTEST,
    STAT_ZSCORE,
    stat_decode,
    stat_encode,
    stat_param_text,
)
from afni_group.afni_io.writer import write_dataset

__all__ = [
    "STAT_NONE",
    "STAT_CORREL",
    "STAT_TTEST",
    "STAT_FTEST",
    "STAT_ZSCORE",
    "STAT_CHISQ",
    "STAT_BETA",
    "STAT_BINOM",
    "STAT_GAMMA",
    "STAT_POISSON",
    "STAT_NPARAMS",
    "STAT_NAMES",
    "STAT_SHORT_NAMES",
    "AfniDataset",
    "read_dataset",
    "read_labels",
    "write_dataset",
    "split_selector",
    "parse_selector",
    "ijk_to_dicom",
    "affine_from_ijk_to_dicom",
    "afni_geometry",
    "affine_from_afni_geometry",
    "orientation_string",
    "same_grid",
    "stat_encode",
    "stat_param_text",
    "stat_decode",
    "history_entry",
    "parse_head_text",
    "format_head_text",
    "format_afni_extension",
    "parse_afni_extension",
    "new_idcode",
    "is_nifti",
    "resolve",
    "dataset_exists",
    "display_prefix",
]

# test helpers kept importable from the package (private)
_PRIVATE = (_Float, _Int, _niml_unescape)
