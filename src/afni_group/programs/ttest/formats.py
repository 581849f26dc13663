"""3dttest++'s own text: the ``-covariates`` table, dataset labels, the ``.minmax.1D`` files of
``-Clustsim`` and the 3dClustSim command line its tables record (spec 08 §4.1, §6.5, §7.1).

The ClustSim tables themselves (``.1D``, ``.niml``, the ``.cmd`` fragment) are 3dClustSim's
formats: :mod:`afni_group.programs.clustsim.formats`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: label lengths AFNI keeps (set names %.12s, subject labels 256)
SET_NAME_MAX = 12
LABEL_MAX = 256


def dataset_label(spec: str) -> str:
    """SHORT-form label of a dataset: its file name up to the first ``+``, ``.nii`` or ``.1D``
    found from the second character (``in/a01.nii.gz`` -> ``a01``)."""
    name = os.path.basename(spec.split("[", 1)[0])
    cut = len(name)
    for mark in ("+", ".nii", ".1D"):
        k = name.find(mark, 1)
        if k > 0:
            cut = min(cut, k)
    return name[:cut][:LABEL_MAX]


@dataclass(frozen=True)
class CovariateTable:
    """A ``-covariates`` file: column names and one row of numbers per subject label."""

    names: tuple[str, ...]
    rows: dict[str, tuple[float, ...]]

    def values(self, labels: Sequence[str]) -> np.ndarray:
        """float32 (n_labels, n_covariates) for the given subject labels, in their order.

        Raises
        ------
        KeyError
            With AFNI's message for the first label that is not in the table.
        """
        out = np.empty((len(labels), len(self.names)), dtype=np.float32)
        for i, lab in enumerate(labels):
            if lab not in self.rows:
                raise KeyError(f"Cannot find label '{lab}' in covariates file")
            out[i] = self.rows[lab]
        return out


def format_covariates(names: Sequence[str], rows: Sequence[tuple[str, Sequence[float]]]) -> str:
    """A ``-covariates`` table :func:`parse_covariates` reads: a ``subj`` header of ``names``,
    then one tab-separated row per dataset label (values as Python's ``repr``, exact)."""
    lines = ["\t".join(["subj", *names])]
    lines += ["\t".join([label, *(repr(float(v)) for v in values)]) for label, values in rows]
    return "\n".join(lines) + "\n"


def parse_covariates(text: str) -> CovariateTable:
    """Read a covariates table: a header line of names, then ``label value value ...`` rows.

    Blank lines and ``#`` comment lines are skipped. Raises ValueError naming the row for a
    short row or a value that is not a number (voxelwise dataset covariates are not
    supported).
    """
    lines = [
        ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if len(lines) < 2:
        raise ValueError("needs a header line of names and at least one row of values")
    header = lines[0]
    if len(header) < 2:
        raise ValueError("header line has no covariate names after the label column")
    rows: dict[str, tuple[float, ...]] = {}
    for words in lines[1:]:
        if len(words) != len(header):
            raise ValueError(
                f"row '{words[0]}' has {len(words)} fields but the header has {len(header)}"
            )
        try:
            rows[words[0]] = tuple(float(np.float32(w)) for w in words[1:])
        except ValueError:
            raise ValueError(
                f"row '{words[0]}' has a value that is not a number (voxelwise dataset "
                "covariates are not supported)"
            ) from None
    return CovariateTable(tuple(header[1:]), rows)


def format_minmax(rows: np.ndarray) -> str:
    """A ``PREFIX.000p.minmax.1D`` file: per iteration ``min max`` of the null z, ``%14g``."""
    return "".join(" %14g %14g\n" % (float(lo), float(hi)) for lo, hi in np.asarray(rows))


def clustsim_command(prefix: str, mask_text: str | None, jobs: int) -> str:
    """The 3dClustSim command line 3dttest++ runs (as 3dClustSim records it in the tables).

    With a mask it reads the ``.sdat`` files (``-insdat MASK``), without one the NIfTI
    volumes (``-inset``).
    """
    words = ["3dClustSim", "-prefix", f"{prefix}.CSimA", "-LOTS", "-both", "-nodec", "-cmd",
             f"{prefix}.CSimA.cmd"]  # fmt: skip
    if mask_text is not None:
        words += ["-insdat", mask_text] + [f"./{prefix}.{p:04d}.sdat" for p in range(jobs)]
    else:
        words += ["-inset"] + [f"./{prefix}.{p:04d}.nii" for p in range(jobs)]
    return " ".join(words)
