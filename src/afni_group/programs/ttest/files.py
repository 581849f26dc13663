"""Native 3dttest++ at the file level: datasets in, the bucket (and ``-Clustsim`` tables) out.

:func:`run_ttest` reads the sets' datasets (AFNI index order, i fastest), runs
:func:`.core.ttest` and writes the output dataset with AFNI's sub-brick labels, stat codes and
DOFs. With ``-Clustsim`` it also runs the randomised null (:mod:`.clustsim`) and writes what
AFNI leaves behind: ``PC.CSimA.NN{1,2,3}_{1sided,2sided,bisided}.1D``, ``PC.CSimA.cmd`` and
``PC.000p.minmax.1D``, and attaches the nine tables to the output as
``AFNI_CLUSTSIM_NN*`` attributes (what 3drefit does in AFNI). Every file goes through a
temporary name. Messages use :mod:`logging` (logger ``afni_group.programs.ttest.files``) in
AFNI's wording; errors are :mod:`afni_group.errors` classes with one line each.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afni_group import afni_io, atomic
from afni_group.afni_io.ids import _escape_history, history_entry, new_idcode
from afni_group.afni_io.naming import header_name, is_nifti, output_head
from afni_group.errors import (
    AfniGroupError,
    InputDataError,
    MissingInputError,
    OutputError,
    UsageError,
)
from afni_group.logs import DETAIL
from afni_group.programs.clustsim import core as clustsim_core
from afni_group.programs.clustsim.formats import (
    TableInfo,
    format_1d_table,
    format_cmd,
    format_niml_table,
)
from afni_group.programs.ttest import clustsim, core, formats

LOG = logging.getLogger(__name__)


@dataclass
class DatasetSet:
    """One ``-setA``/``-setB``: datasets with one label each.

    ``name`` is the LONG form's set name (None for the SHORT form); every sub-brick of a
    SHORT-form dataset is one value, a LONG-form dataset must have exactly one.
    """

    specs: list[str]
    labels: list[str]
    name: str | None = None

    @classmethod
    def short(cls, specs: Sequence[str]) -> DatasetSet:
        """SHORT form: datasets (wildcards expanded, sorted), labels from the file names."""
        out: list[str] = []
        for spec in specs:
            base = spec.split("[", 1)[0]
            if any(c in base for c in "*?"):
                found = sorted(glob.glob(base))
                if not found:
                    raise MissingInputError(f"no dataset matches '{spec}'")
                tail = spec[len(base) :]
                out += [f + tail for f in found]
            else:
                out.append(spec)
        return cls(out, [formats.dataset_label(s) for s in out])

    @classmethod
    def long(cls, name: str, pairs: Sequence[str]) -> DatasetSet:
        """LONG form ``NAME lab1 dset1 lab2 dset2 ...``."""
        if len(pairs) % 2:
            raise UsageError(f"set '{name}': labels and datasets must come in pairs")
        return cls(list(pairs[1::2]), [p[: formats.LABEL_MAX] for p in pairs[0::2]], name)


@dataclass
class Values:
    """A set read into memory: float32 (n_values, n_voxels) in AFNI index order."""

    data: np.ndarray
    labels: list[str]
    first: afni_io.AfniDataset


def _in(directory: str | os.PathLike | None, name: str | os.PathLike) -> str:
    """``name`` as found from ``directory`` (AFNI's working folder; None: the current one)."""
    if directory is None or os.path.isabs(name):
        return os.fspath(name)
    return os.path.join(directory, name)


def _read(spec: str, what: str) -> afni_io.AfniDataset:
    try:
        return afni_io.read_dataset(spec)
    except FileNotFoundError:
        raise MissingInputError(f"{what}: dataset {spec} not found") from None
    except AfniGroupError as err:
        raise type(err)(f"{what}: {err}") from None


def read_set(
    dsets: DatasetSet,
    what: str,
    n_vox: int | None = None,
    directory: str | os.PathLike | None = None,
) -> Values:
    """Read a set's values; every dataset must have the same voxel count (AFNI's only check).

    Relative dataset names are found from ``directory`` (default: the current folder)."""
    rows: list[np.ndarray] = []
    labels: list[str] = []
    first = None
    for spec, label in zip(dsets.specs, dsets.labels, strict=True):
        dset = _read(_in(directory, spec), what)
        if dsets.name is not None and dset.nvals != 1:
            raise InputDataError(
                f"{what}: dataset {spec} has {dset.nvals} sub-bricks; the LONG form needs "
                "exactly one (add a selector such as '[label]')"
            )
        count = int(np.prod(dset.shape))
        if n_vox is None:
            n_vox = count
        if count != n_vox:
            raise InputDataError(
                f"{what}: dataset {spec} has {count} voxels but the first dataset has {n_vox}; "
                "put all inputs on one grid"
            )
        first = first or dset
        data = np.asarray(dset.data, dtype=np.float32).reshape(count, dset.nvals, order="F")
        rows += list(data.T)
        labels += [label] * dset.nvals
    if len(rows) < 2:
        raise UsageError(f"{what} has {len(rows)} value(s); 3dttest++ needs at least 2 per set")
    assert first is not None
    return Values(np.ascontiguousarray(np.stack(rows)), labels, first)


@dataclass
class ClustsimOptions:
    """``-Clustsim [N]`` settings.

    Attributes
    ----------
    jobs : int
        N: jobs of AFNI (seeds and the split of the iterations follow from it).
    iterations : int
        Nominal total (``AFNI_TTEST_NUMCSIM`` or 10080); each job runs ceil(total / N).
    seed, seed2 : int or None
        ``-seed S1 [S2]``; None or 0: from the clock (logged, so a run can be repeated).
    prefix : str or None
        ``-prefix_clustsim``; default the ``-prefix`` cut at ``.nii``.
    threads : int
        Threads of the native run (default N, at most the CPU count).
    """

    jobs: int = 1
    iterations: int = clustsim.DEFAULT_ITERATIONS
    seed: int | None = None
    seed2: int | None = None
    prefix: str | None = None
    threads: int | None = None


class TTestFiles(list):
    """Files written by :func:`run_ttest` (Paths, the dataset first).

    ``tables``: the -Clustsim tables in memory; ``seeds``: the seeds used (S1, S2);
    ``timing``: seconds per stage of the randomisation.
    """

    tables: clustsim_core.ClustSimTables | None = None
    seeds: tuple[int, int] | None = None
    timing: dict | None = None


def clustsim_prefix(prefix: str, given: str | None) -> str:
    """AFNI's PC: ``-prefix_clustsim``, else ``-prefix`` cut at its first ``.nii``."""
    if given:
        return given
    k = prefix.find(".nii")
    return prefix if k < 0 else prefix[:k]


def _design(
    set_a: Values,
    set_b: Values | None,
    kind: str,
    names: tuple[str, str],
    toz: bool,
    covariates: str | os.PathLike | None,
    center: str,
    method: str,
) -> core.TTestDesign:
    cov = None
    if covariates is not None:
        path = Path(covariates)
        if not path.is_file():
            raise MissingInputError(f"-covariates file {path} not found")
        try:
            table = formats.parse_covariates(path.read_text())
        except ValueError as err:
            raise InputDataError(f"-covariates {path}: {err}") from None
        for vals in (set_a, set_b):
            if vals is not None and len(set(vals.labels)) != len(vals.labels):
                raise InputDataError(
                    "-covariates needs one value per dataset with distinct labels (use the "
                    "LONG form '-setA NAME lab1 dset1 ...')"
                )
        try:
            ca = table.values(set_a.labels)
            cb = None
            if set_b is not None:
                cb = table.values(set_a.labels if kind == "paired" else set_b.labels)
        except KeyError as err:
            raise InputDataError(f"-covariates {path}: {err.args[0]}") from None
        cov = core.Covariates(table.names, ca, cb, center.upper(), method.upper())
        if kind == "unpooled":
            LOG.warning("*+ WARNING: -unpooled disabled because of -covariates")
            kind = "pooled"
    n_b = 0 if set_b is None else set_b.data.shape[0]
    try:
        return core.make_design(kind, set_a.data.shape[0], n_b, names, toz, cov)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _load_mask(
    spec: str, n_vox: int, directory: str | os.PathLike | None = None
) -> tuple[np.ndarray, afni_io.AfniDataset]:
    dset = _read(_in(directory, spec), "-mask")
    values = np.asarray(dset.data[..., 0]).reshape(-1, order="F")
    if values.size != n_vox:
        raise InputDataError(
            f"-mask {spec} doesn't match datasets number of voxels ({values.size} vs {n_vox})"
        )
    mask = values != 0
    if not mask.any():
        raise InputDataError(f"-mask {spec} has no nonzero voxels")
    LOG.info("++ %d voxels in -mask dataset", int(mask.sum()))
    return mask, dset


def run_ttest(
    set_a: DatasetSet,
    set_b: DatasetSet | None,
    prefix: str,
    *,
    kind: str | None = None,
    labels: tuple[str | None, str | None] = (None, None),
    mask: str | None = None,
    covariates: str | os.PathLike | None = None,
    center: str = "DIFF",
    method: str = "MEAN",
    toz: bool = False,
    clustsim_options: ClustsimOptions | None = None,
    command: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    table_warnings: bool = True,
    directory: str | os.PathLike | None = None,
) -> TTestFiles:
    """Run 3dttest++ natively and write its outputs.

    Parameters
    ----------
    set_a, set_b : DatasetSet
        ``-setA`` and the optional ``-setB``.
    prefix : str
        ``-prefix`` (``.nii``/``.nii.gz``: NIfTI; otherwise HEAD/BRIK in the first setA
        dataset's view).
    kind : {"pooled", "unpooled", "paired"}, optional
        Two-sample test (default pooled); ignored for one set.
    labels : (str or None, str or None)
        ``-labelA``/``-labelB`` (a LONG-form set name takes precedence).
    mask : str, optional
        ``-mask`` dataset (sub-brick 0, selectors allowed).
    covariates : path, optional
        ``-covariates`` table; ``center`` and ``method`` are ``-center`` and ``-cmeth``.
    toz : bool
        ``-toz`` (forced by ``-unpooled`` and ``-Clustsim``).
    clustsim_options : ClustsimOptions, optional
        ``-Clustsim``.
    command : list of str, optional
        The argv to record in HISTORY_NOTE (default a summary).
    overwrite : bool
        Replace an existing output.
    progress : bool
        Progress line of the randomisation.
    table_warnings : bool
        AFNI's warnings about table cells the simulation could not reach (iterations below
        1001, alphas beyond the simulated ones) as WARNING lines, as 3dttest++ prints them;
        False logs them at DETAIL (a pipeline reads one cell and judges it itself).
    directory : path, optional
        The folder AFNI would run in (default: the current one). Relative ``prefix``,
        ``mask`` and ``covariates`` are found there and the ``-Clustsim`` files written there;
        the texts recorded in the outputs name them as given, as AFNI's do when run in that
        folder (no change of the process's working folder, so threads may run side by side).
    """
    if clustsim_options is not None and prefix.startswith("/"):
        raise UsageError("Cannot use -Clustsim when -prefix has an absolute path")
    if clustsim_options is not None and clustsim_options.iterations < clustsim.MIN_ITERATIONS:
        raise UsageError(
            f"-Clustsim needs at least {clustsim.MIN_ITERATIONS} iterations, got "
            f"{clustsim_options.iterations} (AFNI_TTEST_NUMCSIM below that means AFNI's "
            f"{clustsim.DEFAULT_ITERATIONS})"
        )
    a = read_set(set_a, "-setA", directory=directory)
    b = None if set_b is None else read_set(set_b, "-setB", a.data.shape[1], directory)
    names = (
        (set_a.name or labels[0] or "SetA")[: formats.SET_NAME_MAX],
        ((set_b.name if set_b else None) or labels[1] or "SetB")[: formats.SET_NAME_MAX],
    )
    kind = "one" if b is None else (kind or "pooled")
    if kind == "unpooled" and not toz:
        LOG.info("++ -unpooled also turns on -toz")
    design = _design(a, b, kind, names, toz or clustsim_options is not None,
                     None if covariates is None else _in(directory, covariates), center,
                     method)  # fmt: skip
    out_name = output_head(prefix, a.first.view)  # as the command names it
    out_path = Path(_in(directory, out_name))
    if not overwrite and (
        out_path.exists() or (not is_nifti(prefix) and out_path.with_suffix(".BRIK").exists())
    ):
        raise OutputError(
            f"output dataset name '{out_path}' conflicts with existing file (use -overwrite)"
        )
    if not out_path.parent.is_dir():
        raise OutputError(f"-prefix {prefix}: folder {out_path.parent} does not exist")
    n_vox = a.data.shape[1]
    mask_values, mask_dset = (None, None) if mask is None else _load_mask(mask, n_vox, directory)
    if clustsim_options is not None:
        try:
            clustsim.check_clustsim(design, a.first.shape)
        except ValueError as err:
            raise UsageError(str(err)) from None
    try:
        result = core.ttest(a.data, None if b is None else b.data, design, mask=mask_values,
                            residuals=clustsim_options is not None)  # fmt: skip
    except ValueError as err:
        raise InputDataError(f"3dttest++: {err}") from None
    if result.skipped:
        LOG.info(" + skipped %d voxel(s) completely for having constant data", result.skipped)
    written = TTestFiles()
    extra: dict = {}
    history = [history_entry(["3dttest++", *(command or ["-prefix", prefix])])]
    if clustsim_options is not None:
        grid = a.first.shape
        cs_mask = (
            np.ones(grid, dtype=bool)
            if mask_values is None
            else mask_values.reshape(grid, order="F")
        )
        extra, refit = _run_clustsim(
            result.residuals, cs_mask, design, clustsim_prefix(prefix, clustsim_options.prefix),
            clustsim_options, mask, mask_dset, a.first, out_name, written, progress,
            logging.WARNING if table_warnings else DETAIL, directory,
        )  # fmt: skip
        history.append(history_entry(refit))
    data = result.bricks.reshape(*a.first.shape, len(result.layout), order="F")
    dset = afni_io.AfniDataset(
        data=data,
        affine=a.first.affine,
        labels=result.labels,
        stat_codes=[br.code for br in result.layout],
        stat_params=[br.params for br in result.layout],
        space=a.first.space,
        view=a.first.view,
        history=_escape_history(history[0]) if len(history) > 1 else "",
    )
    # a function bucket (AFNI reads a NIfTI one back as ANAT, but stores FUNC)
    extra = {"TYPESTRING": "3DIM_HEAD_FUNC", **extra}
    final = afni_io.write_dataset(
        dset, out_path, history=history[-1], style="c", attributes=extra,
        omit=("BRICK_KEYWORDS",),
    )  # fmt: skip
    written.insert(0, Path(final))
    return written


def _run_clustsim(
    residuals: np.ndarray,
    mask: np.ndarray,
    design: core.TTestDesign,
    pc: str,
    opts: ClustsimOptions,
    mask_text: str | None,
    mask_dset: afni_io.AfniDataset | None,
    first: afni_io.AfniDataset,
    out_name: Path,
    written: TTestFiles,
    progress: bool,
    warning_level: int = logging.WARNING,
    directory: str | os.PathLike | None = None,
) -> tuple[dict, str]:
    """The randomisation, its tables and leftovers; returns the attributes and 3drefit text.

    ``pc`` and ``out_name`` are as the command names them (relative to ``directory``)."""
    jobs = max(1, int(opts.jobs))
    nper = clustsim.iterations_per_job(opts.iterations, jobs)
    seed = int(opts.seed or 0) & 0xFFFFFFFF
    if seed == 0:
        seed = (int(time.time()) ^ (os.getpid() << 7)) & 0x7FFFFFFF or 1
    seed2 = None if opts.seed2 is None else int(opts.seed2) & 0xFFFFFFFF
    written.seeds = (seed, seed2 if seed2 is not None else (seed + 314159265) & 0xFFFFFFFF)
    LOG.info(
        "++ ================ Starting -Clustsim calculations ================\n"
        " + === running %d -randomsign job%s (%d iterations per job) ===\n"
        " + random seeds are %d %d",
        jobs, "s" if jobs > 1 else "", nper, *written.seeds,
    )  # fmt: skip
    threads = max(1, int(opts.threads or min(jobs, os.cpu_count() or 1)))
    null = clustsim.simulate(
        residuals, mask, design, jobs=jobs, iterations=nper, seed=seed, seed2=seed2,
        n_threads=threads, progress=progress, quantised=mask_text is not None,
    )  # fmt: skip
    written.timing = null.seconds
    LOG.info(
        "++ -Clustsim: %d iterations in %.1f s (matrix products %.1f s; t kernel %.1f s and "
        "clustering %.1f s, summed over %d thread%s)",
        jobs * nper, null.seconds["wall"], null.seconds["matmul"], null.seconds["kernel"],
        null.seconds["clustering"], threads, "s" if threads > 1 else "",
    )  # fmt: skip
    count = int(mask.sum())
    tables = clustsim.null_tables(null, mask_count=count)
    written.tables = tables
    total = jobs * nper
    if total < 1001:
        LOG.log(
            warning_level,
            "*+ WARNING: Smallest athr=0.010000 ==> should have at least 1001 iterations "
            "instead of %d", total,
        )  # fmt: skip
    for w in tables.warnings[:2]:
        LOG.log(
            warning_level,
            "*+ WARNING: pthr=%.6f ; desired alpha=%.6f -- but max simulated alpha=%.6f]",
            w.pthr, w.alpha, w.max_alpha,
        )  # fmt: skip
    geometry = mask_dset if mask_dset is not None else first
    idcode = None
    if mask_dset is not None:
        idcode = str(mask_dset.attributes.get("IDCODE_STRING") or "").rstrip("\0") or None
    info = TableInfo(
        command_line=formats.clustsim_command(pc, mask_text, jobs),
        shape=tuple(int(n) for n in mask.shape),
        voxel_sizes=tuple(abs(float(v)) for v in geometry.voxel_sizes),
        mask_count=count,
        iterations=total,
        pthr=tables.pthr,
        athr=tables.athr,
        nodec=True,
        mask_idcode=(idcode or new_idcode("XYZ")) if mask_text is not None else None,
        mask_name=header_name(mask_text.split("[", 1)[0]) if mask_text is not None else None,
    )
    attributes: dict = {}
    for s, sided in enumerate(clustsim_core.SIDEDNESS):
        for nn in (1, 2, 3):
            table = tables.tables[s, nn - 1]
            stem = f"{pc}.CSimA.NN{nn}_{sided}"
            written.append(
                atomic.write_text(
                    Path(_in(directory, stem + ".1D")), format_1d_table(table, nn, sided, info)
                )
            )
            text = format_niml_table(table, nn, sided, info)
            attributes[f"AFNI_CLUSTSIM_NN{nn}_{sided}"] = text.rstrip() + "\0"
    order = [f"AFNI_CLUSTSIM_NN{nn}_{s}" for s in clustsim_core.SIDEDNESS for nn in (1, 2, 3)]
    cmd = format_cmd(f"{pc}.CSimA", with_mask=False)
    written.append(atomic.write_text(Path(_in(directory, f"{pc}.CSimA.cmd")), cmd))
    for p in range(jobs):
        rows = null.minmax[p * nper : (p + 1) * nper]
        minmax = Path(_in(directory, f"{pc}.{p:04d}.minmax.1D"))
        written.append(atomic.write_text(minmax, formats.format_minmax(rows)))
    target = str(out_name) if out_name.parent != Path(".") else f"./{out_name.name}"
    refit = cmd.rstrip() + " " + target
    return {k: attributes[k] for k in order}, refit
