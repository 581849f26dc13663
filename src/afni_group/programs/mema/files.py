"""Native 3dMEMA: read the subjects' beta/t sub-bricks, fit, write ``mema_results``.

The statistics live in :mod:`.core` (pure array code). This module is the dataset-level
step the pipeline calls (:func:`run_mema`); the ``afni-native 3dMEMA`` drop-in command, accepting
the options gen_group_command.py's scripts use, is :mod:`.cli.mema`. Behaviour follows
spec 02-mema.md (AFNI ≥ 25.1.09 output layout: ``…, I2, tau, QE:Chisq``).
"""

from __future__ import annotations

import getpass
import logging
import os
import shlex
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from afni_group import afni_io
from afni_group.afni_io import naming
from afni_group.errors import InputDataError, MissingInputError, OutputError, UsageError
from afni_group.programs.mema.budget import DEFAULT_MEM_LIMIT
from afni_group.programs.mema.core import MemaResult, mema_blocks
from afni_group.programs.mema.design import MemaDesign, center_covariates
from afni_group.programs.mema.inputs import Geometry
from afni_group.programs.mema.source import Inputs, InputSource, StoreOverrides, load_inputs
from afni_group.progress import Progress

LOG = logging.getLogger(__name__)

__all__ = ["MemaSet", "run_mema", "read_covariate_file"]


@dataclass(frozen=True)
class FitOptions:
    """The fit's options of :func:`run_mema` (see there)."""

    missing_data: int | list[str] | None
    n_nonzero: int
    hktest: bool
    correct_dof: bool
    n_jobs: int
    progress: bool


@dataclass(frozen=True)
class MemaSet:
    """One ``-set`` of 3dMEMA.

    Parameters
    ----------
    label : str
        Set name (``-set NAME``).
    subjects : list of str
        Subject labels, in order.
    beta_specs, tstat_specs : list of str
        AFNI dataset specs with a one-brick selector per subject, e.g.
        ``.../stats.sub-01_REML+tlrc.HEAD[left_vs_right_chx#0_Coef]``.
    """

    label: str
    subjects: list[str]
    beta_specs: list[str] = field(default_factory=list)
    tstat_specs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.subjects)
        if n == 0:
            raise UsageError(f"-set {self.label}: no subjects given")
        if len(self.beta_specs) != n or len(self.tstat_specs) != n:
            raise UsageError(
                f"-set {self.label}: {n} subjects but {len(self.beta_specs)} beta and "
                f"{len(self.tstat_specs)} t-statistic datasets; give one of each per subject"
            )


# ----------------------------------------------------------------------------------------------
# output naming and history
# ----------------------------------------------------------------------------------------------


def output_path(prefix: str | os.PathLike, view: str) -> Path:
    """File 3dMEMA writes for ``-prefix``: the NIfTI name itself, or ``PREFIX+VIEW.HEAD``.

    A plain prefix takes the view of the first beta dataset (``+orig`` given in the prefix is
    replaced, as 3dMEMA strips the ``+orig`` it appends internally).
    """
    return naming.output_head(prefix, view)


def _quote(arg: str) -> str:
    """Quote an argument for the history the way 3dMEMA shows it (``'…'`` if shell-special)."""
    return shlex.quote(arg) if arg else "''"


def mema_history(command: str, start_time: float, end_time: float | None = None) -> str:
    """3dMEMA's HISTORY_NOTE entry: ``[u@h: <write time>] [u@h: <start time>] <command>``.

    Two stamps and no ``{AFNI_version:platform}`` tag, unlike AFNI's C programs.
    """
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "user"
    host = socket.gethostname().split(".")[0] or "host"
    stamp = f"{user}@{host}"
    end = time.ctime(end_time if end_time is not None else time.time())
    return f"[{stamp}: {end}] [{stamp}: {time.ctime(start_time)}] {command}"


def command_text(args: Sequence[str]) -> str:
    """``3dMEMA arg …`` with shell-special arguments in single quotes, as 3dMEMA records it."""
    return " ".join(["3dMEMA", *(_quote(a) for a in args)])


def _equivalent_args(
    sets: Sequence[MemaSet],
    prefix: str,
    design: str,
    group_names: Sequence[str],
    missing_data: int | Sequence[str] | None,
    hktest: bool,
    mask: str | None,
    covariates: dict[str, dict[str, float]] | None,
    correct_dof: bool,
    n_jobs: int,
) -> list[str]:
    """The 3dMEMA command line that :func:`run_mema` is equivalent to (for the history)."""
    args = ["-prefix", prefix]
    if n_jobs > 1:
        args += ["-jobs", str(n_jobs)]
    for s in sets:
        args += ["-set", s.label]
        for sid, b, t in zip(s.subjects, s.beta_specs, s.tstat_specs, strict=True):
            args += [sid, b, t]
    if design == "groups":
        args += ["-groups", *group_names]
    elif design == "conditions":
        args += ["-conditions", *(s.label for s in sets)]
    if missing_data is not None:
        args += ["-missing_data"] + (
            [str(missing_data)] if isinstance(missing_data, int) else [str(f) for f in missing_data]
        )
    if not hktest:
        args.append("-no_HKtest")
    if mask is not None:
        args += ["-mask", str(mask)]
    if covariates:
        args += ["-covariates", "participants.tsv[" + ",".join(covariates) + "]"]
    if correct_dof:
        args.append("-correct_dof")  # afni-native extension: not an AFNI option
    return args


# ----------------------------------------------------------------------------------------------
# covariates
# ----------------------------------------------------------------------------------------------


def read_covariate_file(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Read a 3dMEMA ``-covariates`` table: header row, first column subject labels.

    Returns ``{column: {subject: value}}``. Whitespace or tab separated; values must be numeric.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"-covariates file {path} not found")
    rows = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if len(rows) < 2:
        raise InputDataError(f"-covariates {path}: need a header row and one row per subject")
    header = rows[0]
    table: dict[str, dict[str, float]] = {name: {} for name in header[1:]}
    for row in rows[1:]:
        if len(row) != len(header):
            raise InputDataError(
                f"-covariates {path}: row for '{row[0]}' has {len(row)} fields, header has "
                f"{len(header)}"
            )
        for name, text in zip(header[1:], row[1:], strict=True):
            try:
                table[name][row[0]] = float(text)
            except ValueError:
                raise InputDataError(
                    f"-covariates {path}: value '{text}' of '{name}' for subject {row[0]} is "
                    "not a number (code categories as numbers, e.g. 0/1)"
                ) from None
    return table


def _covariate_matrix(
    covariates: dict[str, dict[str, float]],
    row_subjects: list[str],
    center: str | Sequence[float],
) -> tuple[np.ndarray, tuple[str, ...]]:
    names = tuple(covariates)
    values = np.empty((len(row_subjects), len(names)))
    for j, name in enumerate(names):
        column = covariates[name]
        for i, sid in enumerate(row_subjects):
            if sid not in column:
                raise InputDataError(
                    f"covariate '{name}' has no value for subject {sid}; add it to the table or "
                    "drop the subject"
                )
            value = float(column[sid])
            if not np.isfinite(value):
                raise InputDataError(f"covariate '{name}' of subject {sid} is {value}")
            values[i, j] = value
    return center_covariates(values, row_subjects, center), names


# ----------------------------------------------------------------------------------------------
# the step
# ----------------------------------------------------------------------------------------------


def _resolve_design(sets: Sequence[MemaSet], design: str) -> str:
    if len(sets) not in (1, 2):
        raise UsageError(f"3dMEMA takes one or two -set options, got {len(sets)}")
    if design == "auto":
        return "one" if len(sets) == 1 else "groups"
    if design not in ("one", "groups", "conditions"):
        raise UsageError(f"design must be auto, one, groups or conditions, got {design!r}")
    if design == "one" and len(sets) != 1:
        raise UsageError(
            "two -set options need -groups A B (unpaired) or -conditions C1 C2 (paired); "
            "3dMEMA stops with 'bad length for subjLab'"
        )
    if design != "one" and len(sets) != 2:
        raise UsageError(f"design '{design}' needs two -set options, got {len(sets)}")
    if design == "conditions" and list(sets[0].subjects) != list(sets[1].subjects):
        raise UsageError(
            "paired design (-conditions): both -set options must list the same subjects in the "
            f"same order (3dMEMA: mismatch in subject labels for within group test); got "
            f"{', '.join(sets[0].subjects)} vs {', '.join(sets[1].subjects)}"
        )
    return design


def _group_names(
    sets: Sequence[MemaSet], kind: str, group_names: Sequence[str] | None
) -> tuple[str, ...]:
    """Test names of the labels: ``-groups`` names (or the set labels), else the set labels."""
    if kind == "groups":
        names = tuple(group_names) if group_names is not None else (sets[0].label, sets[1].label)
        if len(names) != 2:
            raise UsageError(f"-groups needs two names for two sets, got {list(names)}")
        return names
    return tuple(s.label for s in sets)


def _check_missing_data(
    missing_data: int | Sequence[str | Path] | None, n_sets: int
) -> int | list[str] | None:
    """``-missing_data``: None, 0 (count zero betas) or one file per set (as text)."""
    if isinstance(missing_data, bool):
        raise UsageError("missing_data must be 0 or a list of files, not a bool")
    if isinstance(missing_data, int):
        if missing_data != 0:
            raise UsageError(
                f"-missing_data {missing_data}: only 0 (count zero betas) or one file per set "
                "is supported"
            )
        return 0
    if missing_data is None:
        return None
    files = [str(f) for f in missing_data]
    if len(files) != n_sets:
        raise UsageError(f"-missing_data needs one file per set ({n_sets}), got {len(files)}")
    return files


def _check_prefix(prefix: str | Path, overwrite: bool) -> str:
    """Refuse an existing output before reading anything, like 3dMEMA (view not known yet)."""
    prefix_text = os.fspath(prefix)
    existing = naming.existing_dataset_file(
        prefix_text if naming.is_nifti(prefix_text) else prefix_text + "+orig", any_view=True
    )
    if existing is not None and not overwrite:
        shown = prefix_text if naming.is_nifti(prefix_text) else naming.strip_view(prefix_text)
        raise OutputError(f"File {shown} exists! Try a different name (or remove it).")
    parent = Path(prefix_text).parent
    if not parent.is_dir():
        raise OutputError(f"-prefix {prefix_text}: folder {parent} does not exist")
    return prefix_text


def _model(
    sets: Sequence[MemaSet],
    kind: str,
    names: tuple[str, ...],
    covariates: dict[str, dict[str, float]] | None,
    center: str | Sequence[float],
) -> MemaDesign:
    cov_matrix, cov_names = None, ()
    if covariates:
        rows = (
            [*sets[0].subjects, *sets[1].subjects] if kind == "groups" else list(sets[0].subjects)
        )
        cov_matrix, cov_names = _covariate_matrix(covariates, rows, center)
    try:
        model = MemaDesign(
            kind,
            tuple(len(s.subjects) for s in sets),
            names,
            covariates=cov_matrix,
            covariate_names=cov_names,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    n_params = model.matrix().shape[1]
    if model.n_rows <= n_params:
        raise UsageError(
            f"Too few subjects for options selected: {model.n_rows} model rows for "
            f"{n_params} parameters"
        )
    return model


def _fit(model: MemaDesign, inputs: Inputs, options: FitOptions) -> MemaResult:
    """Fit every candidate voxel block by block, with a progress line."""
    bar: list[Progress] = []
    try:
        return mema_blocks(
            model,
            inputs.fetch,
            inputs.candidates,
            inputs.geometry.n_vox,
            missing_data=options.missing_data is not None,
            zero_counts=inputs.zero_counts,
            n_nonzero=options.n_nonzero,
            hktest=options.hktest,
            correct_dof=options.correct_dof,
            chunk_size=inputs.chunk,
            n_jobs=options.n_jobs,
            on_start=lambda n: bar.append(
                Progress("3dMEMA", n, "chunks", enabled=options.progress)
            ),
            on_chunk=lambda k: bar[0].update(k),
        )
    except ValueError as err:
        raise InputDataError(f"3dMEMA: {err}") from None
    finally:
        if bar:
            bar[0].close()


def _write(result: MemaResult, geometry: Geometry, prefix_text: str, history_text: str) -> Path:
    dset = afni_io.AfniDataset(
        data=result.bricks.reshape(*geometry.shape, len(result.labels)),
        affine=geometry.affine,
        labels=result.labels,
        stat_codes=result.stat_codes,
        stat_params=result.stat_params,
        space=geometry.space,
        view=geometry.view,
        history="",
    )
    out_path = output_path(prefix_text, geometry.view)
    return Path(afni_io.write_dataset(dset, out_path, history=history_text, style="mema"))


def run_mema(
    sets: list[MemaSet],
    prefix: str | Path,
    *,
    design: str = "auto",
    group_names: Sequence[str] | None = None,
    missing_data: int | Sequence[str | Path] | None = None,
    n_nonzero: int = -1,
    hktest: bool = True,
    mask: str | Path | None = None,
    covariates: dict[str, dict[str, float]] | None = None,
    covariates_center: str | Sequence[float] = "mean",
    correct_dof: bool = False,
    n_jobs: int = 1,
    progress: bool = True,
    history: str | None = None,
    overwrite: bool = False,
    mem_limit: int | None = None,
    work_dir: str | Path | None = None,
    resume: bool = False,
    chunk_size: int | None = None,
    use_store: bool | None = None,
    batch_columns: int | None = None,
) -> Path:
    """Run 3dMEMA natively and write its output dataset.

    Parameters
    ----------
    sets : list of MemaSet
        One set (one-sample) or two (``design`` "groups" or "conditions").
    prefix : str or Path
        ``.nii``/``.nii.gz`` → that file; otherwise AFNI ``PREFIX+VIEW.HEAD/BRIK`` with the view
        of the first beta dataset.
    design : {"auto", "one", "groups", "conditions"}
        "auto": "one" for one set, "groups" (unpaired, as gen_group_command writes) for two.
    group_names : two str, optional
        ``-groups`` names used in labels for "groups" (default: the set labels).
    missing_data : 0, or one file per set, optional
        ``-missing_data 0`` counts exact-zero betas; files give per-voxel missing counts.
    n_nonzero : int
        ``-n_nonzero`` minimum non-zero betas (ignored with ``missing_data``).
    hktest : bool
        Hartung–Knapp (default on, ``-no_HKtest`` = False).
    mask : path, optional
        Voxels where |mask| <= 1e-16 are all zero in the output.
    covariates : {column: {subject: value}}, optional
        Numeric covariates, centered by ``covariates_center`` ("mean" over unique subjects, or
        one value per column).
    correct_dof : bool
        Use the intended two-group DOF re-mapping instead of AFNI's (recorded in the history
        as ``-correct_dof``).
    n_jobs : int
        Threads over voxel chunks (results identical).
    progress : bool
        Progress lines on stderr.
    history : str, optional
        Command text for HISTORY_NOTE after 3dMEMA's two time stamps (e.g. ``3dMEMA -prefix
        …``); default: the 3dMEMA command line equivalent to this call.
    overwrite : bool
        3dMEMA refuses to overwrite; True replaces an existing output.
    mem_limit : int, optional
        Memory target in bytes (default :data:`.budget.DEFAULT_MEM_LIMIT`): inputs larger than
        half of it go through an on-disk store (:mod:`.store`), read back block by block.
    work_dir : path, optional
        Folder of that store, kept when the step fails and reused with ``resume``; default: a
        temporary folder beside the output, always removed.
    resume : bool
        Reuse a store left in ``work_dir`` by an interrupted run of the same inputs.
    chunk_size, use_store, batch_columns
        Override the voxels per block, the memory/store choice and the bricks per store batch
        (tests, benchmarks); results do not depend on them.

    Returns
    -------
    Path
        The written file (``.nii.gz`` or ``.HEAD``).
    """
    start = time.time()
    sets = list(sets)
    kind = _resolve_design(sets, design)
    names = _group_names(sets, kind, group_names)
    missing = _check_missing_data(missing_data, len(sets))
    if n_jobs < 1:
        raise UsageError(f"-jobs must be at least 1, got {n_jobs}")
    prefix_text = _check_prefix(prefix, overwrite)
    model = _model(sets, kind, names, covariates, covariates_center)
    options = FitOptions(missing, n_nonzero, hktest, correct_dof, n_jobs, progress)
    source = InputSource(
        sets,
        None if mask is None else str(mask),
        missing,
        mem_limit or DEFAULT_MEM_LIMIT,
        n_nonzero,
        Path(work_dir) if work_dir is not None else None,
        resume,
        StoreOverrides(chunk_size, use_store, batch_columns),
    )
    parent = Path(prefix_text).parent
    with load_inputs(source, model, n_jobs=n_jobs, progress=progress, temp_parent=parent) as inputs:
        result = _fit(model, inputs, options)
        if history is None:
            args = _equivalent_args(
                sets,
                prefix_text,
                kind,
                names,
                missing,
                hktest,
                source.mask,
                covariates,
                correct_dof,
                n_jobs,
            )
            history = command_text(args)
        return _write(result, inputs.geometry, prefix_text, mema_history(history, start))
