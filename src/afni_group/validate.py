"""Pre-flight validation: every input read and checked before the first heavy step.

:func:`preflight` runs after discovery and before anything is written or computed (the dry run,
the real run and ``--write-sbatch`` share it). It reads every subject's headers, grids, beta and
t sub-bricks, masks and ``blur_est`` files, checks the options against what the run will
produce (the ClustSim table rows and columns, the iteration count), and either raises one
:class:`~afni_group.errors.AfniGroupError` naming the file (and line, row or subject) with the
documented exit code, or returns the input QC summary stored in ``params.json`` (``input_qc``)
and shown in the report.

Exit codes: 65 bad data (:class:`InputDataError`), 66 missing input
(:class:`MissingInputError`), 64 usage (:class:`UsageError`).

The checks are small pure functions (``check_*``, ``*_qc``) so they can be tested one by one.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afni_group import designs
from afni_group.designs import read_participants_rows
from afni_group.errors import InputDataError, MissingInputError, UsageError
from afni_group.plan import AnalysisPlan
from afni_group.programs.acf.files import read_acf_lines
from afni_group.programs.acf.formats import REML_ACF_TAG
from afni_group.programs.checks import NEIGHBOURHOODS, SIDEDNESS

LOG = logging.getLogger(__name__)

#: two grids whose origins differ by more than this (mm) are different grids (3dmask_tool's rule)
ORIGIN_TOL_MM = 0.01
#: voxel sizes differing by more than this (mm) are different grids
DELTA_TOL_MM = 0.001
#: more iterations than this add nothing to a 3dClustSim table and take hours
MAX_CLUSTSIM_ITER = 1_000_000
#: at most this share of the available memory may hold the per-iteration cluster maxima
CLUSTSIM_MEMORY_SHARE = 0.5
#: a beta is "extreme" when its magnitude exceeds this many times the group's typical scale
EXTREME_FACTOR = 10.0
#: the typical scale of one subject's betas: this percentile of |beta| inside the group mask
SCALE_PERCENTILE = 99.0
#: the option that accepts grids that differ in origin, voxel size or orientation
ACCEPT_GRID_OPTION = "--accept-grid-mismatch"


# ============================================================================ grids


@dataclass(frozen=True)
class Grid:
    """The voxel grid of one dataset, in AFNI's terms (DICOM/RAI mm)."""

    source: str
    shape: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    orientation: str
    origin: tuple[float, float, float]

    def describe(self) -> str:
        """``27x32x26 6x6x6 mm RAI origin (-78, -75, -63)``."""
        dims = "x".join(str(n) for n in self.shape)
        size = "x".join(f"{v:g}" for v in self.voxel_size)
        origin = ", ".join(f"{v:g}" for v in self.origin)
        return f"{dims} {size} mm {self.orientation} origin ({origin})"


def grid_of(dset, source: str) -> Grid:
    """The :class:`Grid` of an ``afni_io.AfniDataset`` (``source`` names it in messages)."""
    from afni_group import afni_io

    _, origin, delta = afni_io.afni_geometry(dset.affine)
    return Grid(
        source,
        tuple(int(n) for n in dset.shape[:3]),
        tuple(round(abs(float(d)), 6) for d in delta),
        afni_io.orientation_string(dset.affine),
        tuple(round(float(o), 6) for o in origin),
    )


def grid_differences(ref: Grid, other: Grid) -> list[str]:
    """What differs between two grids besides the dimensions (empty when they match).

    Dimensions are compared separately (:func:`check_grids`): datasets with other dimensions
    cannot be analysed together at all.
    """
    diffs = []
    if any(
        abs(a - b) > DELTA_TOL_MM for a, b in zip(ref.voxel_size, other.voxel_size, strict=True)
    ):
        diffs.append(
            "voxel size " + "x".join(f"{v:g}" for v in other.voxel_size) + " mm instead of "
            + "x".join(f"{v:g}" for v in ref.voxel_size)
        )  # fmt: skip
    if ref.orientation != other.orientation:
        diffs.append(f"orientation {other.orientation} instead of {ref.orientation}")
    shift = [b - a for a, b in zip(ref.origin, other.origin, strict=True)]
    if any(abs(s) > ORIGIN_TOL_MM for s in shift):
        diffs.append(
            "origin off by (" + ", ".join(f"{s:g}" for s in shift) + ") mm"
        )  # fmt: skip
    return diffs


def check_grids(grids: Sequence[Grid], accept_mismatch: bool = False) -> list[dict]:
    """All grids equal to the first one; returns the accepted differences.

    Raises
    ------
    InputDataError
        Dimensions differ (always), or origin / voxel size / orientation differ and
        ``accept_mismatch`` is false.

    Returns
    -------
    list of dict
        ``{"file": ..., "reference": ..., "differences": [...]}`` for each grid that differs
        (only when ``accept_mismatch``); these are listed in params.json and the report.
    """
    if not grids:
        return []
    ref = grids[0]
    accepted = []
    for grid in grids[1:]:
        if grid.shape != ref.shape:
            raise InputDataError(
                f"{grid.source}: grid dimensions {'x'.join(map(str, grid.shape))} differ from "
                f"{'x'.join(map(str, ref.shape))} of {ref.source}; resample every subject to "
                "the same grid (e.g. afni_proc.py's final tlrc space)"
            )
        diffs = grid_differences(ref, grid)
        if not diffs:
            continue
        if not accept_mismatch:
            raise InputDataError(
                f"{grid.source}: {'; '.join(diffs)} compared with {ref.source}; resample to a "
                f"common grid, or pass {ACCEPT_GRID_OPTION} to analyse voxel by voxel as if "
                "aligned"
            )
        LOG.warning("grid mismatch accepted (%s): %s: %s", ACCEPT_GRID_OPTION, grid.source, diffs)
        accepted.append({"file": grid.source, "reference": ref.source, "differences": diffs})
    return accepted


# ============================================================================ blur_est


def check_blur_est(path: Path) -> list[tuple[float, float, float]]:
    """Every ``err_reml ACF`` line of one ``blur_est`` file, checked (file and line in errors)."""
    rows = read_acf_lines(path, check=True)
    if not rows:
        raise InputDataError(
            f"{path}: no '{REML_ACF_TAG}' line; rerun that subject's blur estimation "
            "(afni_proc.py -regress_est_blur_errts with -regress_reml_exec) or leave it out"
        )
    return rows


# ============================================================================ participants.tsv


def check_participants(
    path: Path, columns: Sequence[str], subjects: Sequence[str]
) -> dict[str, tuple[int, dict[str, str]]]:
    """participants.tsv rows of ``subjects`` with every covariate ``column``, checked.

    Returns ``subject label -> (line number, {column: text})``.

    Raises
    ------
    MissingInputError
        The file does not exist.
    InputDataError
        No participant_id or covariate column, a row with another number of fields than the
        header, a subject without a row, or an empty / ``n/a`` covariate value; the message
        names the file, the line and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(
            f"--covariates needs {path} (participants.tsv with a participant_id column)"
        )
    header, body = read_participants_rows(path)
    for needed in ("participant_id", *columns):
        if needed not in header:
            raise InputDataError(
                f"{path} line 1: no column '{needed}' (columns: {', '.join(header)})"
            )
    found: dict[str, tuple[int, dict[str, str]]] = {}
    for number, fields in body:
        if len(fields) != len(header):
            raise InputDataError(
                f"{path} line {number}: {len(fields)} field(s) but the header has "
                f"{len(header)}; every row needs one tab-separated value per column (n/a if "
                "unknown)"
            )
        row = dict(zip(header, (f.strip() for f in fields), strict=True))
        pid = row["participant_id"]
        found[pid[4:] if pid.startswith("sub-") else pid] = (number, row)
    table = {}
    for sub in subjects:
        if sub not in found:
            raise InputDataError(
                f"{path}: no row for sub-{sub}; add it or leave the subject out with "
                "--participant-label"
            )
        number, row = found[sub]
        for col in columns:
            if row[col] in ("", "n/a"):
                raise InputDataError(
                    f"{path} line {number} (sub-{sub}), column '{col}': no value "
                    f"('{row[col]}'); 3dMEMA covariates cannot be missing"
                )
        table[sub] = (number, {col: row[col] for col in columns})
    return table


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def covariate_values(
    path: Path, columns: Sequence[str], subjects: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Numeric covariates ``column -> subject -> value`` from a checked participants.tsv.

    A column of numbers is used as is; a column with exactly two non-numeric levels (e.g. sex
    M/F) is coded 0/1 in sorted level order. Anything else (a text value among numbers, three or
    more levels) is an error naming the file, line and column.
    """
    rows = check_participants(path, columns, subjects)
    table: dict[str, dict[str, float]] = {}
    for col in columns:
        values = {sub: rows[sub][1][col] for sub in subjects}
        numeric = {sub: _is_number(v) for sub, v in values.items()}
        if all(numeric.values()):
            table[col] = {sub: float(v) for sub, v in values.items()}
            continue
        levels = sorted(set(values.values()))
        if any(numeric.values()) or len(levels) != 2:
            bad = next(s for s in subjects if not numeric[s])
            why = (
                "a text value in a numeric column"
                if any(numeric.values())
                else f"{len(levels)} levels ({', '.join(levels)}); a covariate needs numbers or "
                "exactly two levels (use dummy-coded columns for more)"
            )
            raise InputDataError(
                f"{path} line {rows[bad][0]} (sub-{bad}), column '{col}': "
                f"value '{values[bad]}' is not a number: {why}"
            )
        table[col] = {sub: float(levels.index(v)) for sub, v in values.items()}
    return table


# ============================================================================ options


def check_thresholds(pthr: float, alpha: float) -> None:
    """``--pthr`` and ``--alpha`` must be rows and columns of the table 3dClustSim -both writes."""
    from afni_group.programs.clustsim.core import LOTS_ATHR, LOTS_PTHR

    if float(pthr) not in LOTS_PTHR:
        raise UsageError(
            f"--pthr {pthr:g} is not a row of the 3dClustSim -both table; use one of "
            + " ".join(f"{p:g}" for p in LOTS_PTHR)
        )
    if float(alpha) not in LOTS_ATHR:
        raise UsageError(
            f"--alpha {alpha:g} is not a column of the 3dClustSim -both table; use one of "
            + " ".join(f"{a:g}" for a in LOTS_ATHR)
        )


def clustsim_bytes_per_iteration() -> int:
    """Memory 3dClustSim -both keeps per iteration: the largest cluster for every sidedness,
    NN and p (int32)."""
    from afni_group.programs.clustsim.core import LOTS_PTHR

    return 4 * len(SIDEDNESS) * len(NEIGHBOURHOODS) * len(LOTS_PTHR)


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable``), if the OS says."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def effective_clustsim_iter(requested: int, memory: int | None = None, route: str = "acf") -> int:
    """The iteration count the ClustSim tables will rest on: at least the minimum of the route's
    program (3dClustSim's 2000; 3dttest++ -Clustsim's 1000 with ``route="randomise"``), at most
    a bound that fits memory.

    Raises
    ------
    UsageError
        More than :data:`MAX_CLUSTSIM_ITER`, or more than the available ``memory`` (bytes) can
        hold.
    """
    requested = int(requested)
    if requested > MAX_CLUSTSIM_ITER:
        raise UsageError(
            f"--clustsim-iter {requested} is more than {MAX_CLUSTSIM_ITER}: a 3dClustSim table "
            "does not improve past that (AFNI's default is 10000)"
        )
    need = requested * clustsim_bytes_per_iteration()
    if memory is not None and need > CLUSTSIM_MEMORY_SHARE * memory:
        raise UsageError(
            f"--clustsim-iter {requested} needs {need / 2**30:.1f} GiB for the cluster maxima but "
            f"only {memory / 2**30:.1f} GiB of memory is available; use fewer iterations"
        )
    # 3dClustSim raises fewer iterations to its minimum (AFNI does the same); 3dttest++ would
    # silently use 10080 below its 1000 (AFNI_TTEST_NUMCSIM), so raise to its minimum instead
    if route == "randomise":
        from afni_group.programs.ttest.clustsim import MIN_ITERATIONS

        program = "3dttest++ -Clustsim"
    else:
        from afni_group.programs.clustsim.simulate import MIN_ITERATIONS

        program = "3dClustSim"
    if requested < MIN_ITERATIONS:
        LOG.warning(
            "--clustsim-iter %d raised to %d (%s's minimum)", requested, MIN_ITERATIONS, program
        )
        return MIN_ITERATIONS
    return requested


# ============================================================================ masks


def check_group_mask(masks: Sequence[np.ndarray], frac: float, sources: Sequence[str]) -> int:
    """The group mask (``3dmask_tool -frac``) has enough voxels for 3dClustSim; returns its size."""
    from afni_group.programs.clustsim.simulate import MIN_MASK_VOXELS
    from afni_group.programs.mask_tool.core import group_mask

    count = int(group_mask(list(masks), frac=frac).sum())
    if count == 0:
        raise InputDataError(
            f"the group mask (-frac {frac:g}) of the {len(masks)} subject masks is empty: no "
            f"voxel is in enough of them ({', '.join(sources[:3])}{'...' if len(sources) > 3 else ''}); "
            "check that the subjects are in the same space, or lower --mask-frac"
        )
    if count < MIN_MASK_VOXELS:
        raise InputDataError(
            f"the group mask (-frac {frac:g}) has only {count} voxel(s); 3dClustSim needs at "
            f"least {MIN_MASK_VOXELS}: check the subject masks or lower --mask-frac"
        )
    return count


# ============================================================================ input QC


def check_finite(values: np.ndarray, source: str) -> None:
    """No NaN or Inf in a beta or t sub-brick."""
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise InputDataError(
            f"{source} has {bad} NaN/Inf voxel(s); fix the subject's regression (or set those "
            "voxels to 0)"
        )


def subject_qc(beta: np.ndarray, tstat: np.ndarray) -> dict:
    """Counts for one subject's beta and t in the group mask (1-D arrays of the same voxels).

    Returns
    -------
    dict
        ``n_voxels``; ``sign_mismatch`` (t and beta non-zero with opposite signs);
        ``t_zero_beta_nonzero``; ``all_zero`` (beta and t are 0 everywhere);
        ``beta_scale`` (the :data:`SCALE_PERCENTILE` percentile of |beta|); ``max_abs_beta``.
    """
    beta = np.asarray(beta, dtype=np.float64)
    tstat = np.asarray(tstat, dtype=np.float64)
    nonzero = (beta != 0) & (tstat != 0)
    abs_beta = np.abs(beta)
    return {
        "n_voxels": int(beta.size),
        "sign_mismatch": int((nonzero & (np.sign(beta) != np.sign(tstat))).sum()),
        "t_zero_beta_nonzero": int(((tstat == 0) & (beta != 0)).sum()),
        "all_zero": bool(not beta.any() and not tstat.any()),
        "beta_scale": round(float(np.percentile(abs_beta, SCALE_PERCENTILE)), 6)
        if beta.size
        else 0.0,
        "max_abs_beta": round(float(abs_beta.max()), 6) if beta.size else 0.0,
    }


def extreme_limit(scales: Sequence[float]) -> float:
    """|beta| above which a beta is extreme: :data:`EXTREME_FACTOR` x the median subject scale."""
    positive = [s for s in scales if s > 0]
    return EXTREME_FACTOR * float(np.median(positive)) if positive else math.inf


def qc_warnings(label: str, set_label: str, qc: dict) -> list[str]:
    """One line per finding worth a warning for one subject and set."""
    where = f"sub-{label} set '{set_label}'"
    lines = []
    if qc["all_zero"]:
        lines.append(f"{where}: beta and t are 0 in every voxel of the group mask")
    if qc["sign_mismatch"]:
        lines.append(
            f"{where}: {qc['sign_mismatch']} voxel(s) where t and beta have opposite signs"
        )
    if qc["t_zero_beta_nonzero"]:
        lines.append(f"{where}: {qc['t_zero_beta_nonzero']} voxel(s) with t = 0 but beta != 0")
    if qc.get("extreme_betas"):
        lines.append(
            f"{where}: {qc['extreme_betas']} voxel(s) with |beta| > {qc['extreme_limit']:.4g} "
            f"(max {qc['max_abs_beta']:.4g})"
        )
    return lines


# ============================================================================ the pre-flight


def _read(spec: str):
    from afni_group import afni_io

    return afni_io.read_dataset(spec)


def _sets_qc(
    plan: AnalysisPlan, specs: Sequence, group: np.ndarray, check_grid: Callable[[Grid], None]
) -> list[dict]:
    """Read each subject's stats once: check its grid (``check_grid``) and every set's beta and
    t; returns the per-set QC rows."""
    rows: list[list[dict]] = [[] for _ in specs]
    betas: list[list[np.ndarray]] = [[] for _ in specs]
    for subject in plan.subjects:
        stats = _read(str(subject.stats))
        check_grid(grid_of(stats, f"sub-{subject.unit_label} {subject.stats}"))
        for k, spec in enumerate(specs):
            values = []
            for label in (spec.beta, spec.tstat):
                brick = stats.data[..., stats.index_of(label)]
                # the whole volume, as 3dMEMA reads it, not only the group mask
                check_finite(brick, f"sub-{subject.unit_label} {subject.stats}[{label}]")
                values.append(brick[group])
            rows[k].append({"subject": subject.unit_label, **subject_qc(*values)})
            betas[k].append(np.abs(values[0]).astype(np.float32))
        del stats
    result = []
    for spec, set_rows, set_betas in zip(specs, rows, betas, strict=True):
        limit = extreme_limit([r["beta_scale"] for r in set_rows])
        for row, abs_beta in zip(set_rows, set_betas, strict=True):
            row["extreme_limit"] = round(limit, 6) if math.isfinite(limit) else None
            row["extreme_betas"] = int((abs_beta > limit).sum())
        result.append(
            {"set": spec.label, "beta": spec.beta, "tstat": spec.tstat, "subjects": set_rows}
        )
    return result


def preflight(plan: AnalysisPlan, accept_grid_mismatch: bool = False) -> dict:
    """Check every input and option of ``plan`` before anything heavy runs.

    Reads each subject's stats (the beta and t sub-bricks of every set), mask and blur_est;
    checks grids, values, the group mask and the ClustSim options; raises the error of the
    first problem found. Sets ``plan.clustsim_iter`` to the effective iteration count.

    Parameters
    ----------
    plan : AnalysisPlan
        The plan after discovery (subjects, sets, options).
    accept_grid_mismatch : bool
        Accept subjects whose grid differs in origin, voxel size or orientation (dimensions
        must always match); the differences are listed in the result.

    Returns
    -------
    dict
        The input QC for ``params.json`` (``input_qc``): group-mask size, accepted grid
        differences, blur_est lines, per-set per-subject counts, and warnings.
    """
    t = plan.thresholds
    check_thresholds(t.pthr, t.alpha)
    designs.check_ttest_plan(plan)
    requested = plan.clustsim_iter
    plan.clustsim_iter = effective_clustsim_iter(requested, available_memory(), plan.clustsim_route)

    acf = {}
    for subject in plan.subjects if plan.clustsim_route == "acf" else ():  # randomise: no ACF
        acf[subject.unit_label] = [list(r) for r in check_blur_est(subject.blur_est)]

    # every grid is compared with the first subject's stats grid
    first = plan.subjects[0]
    reference = grid_of(_read(f"{first.stats}[0]"), f"sub-{first.label} {first.stats}")
    accepted: list[dict] = []

    def check_grid(grid: Grid) -> None:
        accepted.extend(check_grids([reference, grid], accept_grid_mismatch))

    masks = []
    for subject in plan.subjects:
        mask = _read(str(subject.mask))
        check_grid(grid_of(mask, f"sub-{subject.unit_label} {subject.mask}"))
        masks.append(mask.data[..., 0])
    sources = [str(s.mask) for s in plan.subjects]
    n_mask = check_group_mask(masks, plan.mask_frac, sources)
    from afni_group.programs.mask_tool.core import group_mask

    group = group_mask(masks, frac=plan.mask_frac).astype(bool)
    del masks

    sets = _sets_qc(plan, designs.qc_sets(plan), group, check_grid)
    warnings = [
        line
        for s in sets
        for row in s["subjects"]
        for line in qc_warnings(row["subject"], s["set"], row)
    ]
    warnings += [f"{g['file']}: {'; '.join(g['differences'])}" for g in accepted]
    for line in warnings:
        LOG.warning("input QC: %s", line)
    design = designs.design_qc(plan)  # logged as WARNING lines there
    warnings += [f["message"] for f in design]
    return {
        "group_mask_voxels": n_mask,
        "clustsim_iter_requested": requested,
        "clustsim_iter": plan.clustsim_iter,
        "grid_mismatches": accepted,
        "acf": acf,
        "sets": sets,
        "extreme_factor": EXTREME_FACTOR,
        "warnings": warnings,
        "design": design,
    }
