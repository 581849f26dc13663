"""Native 3dClustSim (``-acf`` noise model, all NN and sidedness tables): the file level.

Layers (issue 13): :mod:`.simulate` is the core on arrays (:func:`clustsim` returns the
tables in memory, ``ValueError`` on bad values), :mod:`.core` the table maths, :mod:`.noise`
makes the noise,
:mod:`.formats` holds AFNI's text formats, :mod:`afni_group.programs.cli.clustsim` the ``afni-native
3dClustSim`` argv parsing, and this module reads the mask dataset, runs the core and writes
AFNI's files (:func:`run_clustsim`). Names of the other layers are re-exported here.

The results agree with AFNI statistically (the random streams differ); the output files follow
AFNI's text layouts byte for byte. Messages go through :mod:`logging` (logger
``afni_group.programs.clustsim.files``) in AFNI's wording.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afni_group import atomic
from afni_group.afni_io.ids import new_idcode
from afni_group.afni_io.naming import header_name
from afni_group.errors import InputDataError, OutputError, UsageError
from afni_group.logs import DETAIL
from afni_group.programs.checks import SIDEDNESS, check_acf, check_probabilities
from afni_group.programs.clustsim.core import (  # noqa: F401  (re-exported)
    DEFAULT_ATHR,
    DEFAULT_PTHR,
    LOTS_ATHR,
    LOTS_PTHR,
    MAX_CLUSTER,
    AlphaWarning,
    ClustSimTables,
    ThresholdUncertainty,
    ceil_threshold,
    cluster_size_for_alpha,
    cluster_table,
    monotone_table,
    tail_probabilities,
    threshold_uncertainty,
)
from afni_group.programs.clustsim.formats import (  # noqa: F401  (re-exported)
    SIDED_TEXT,
    TableInfo,
    _cell,
    _niml_list,
    _niml_number,
    _prob6,
    _prob9,
    clustsim_table_key,
    clustsim_table_name,
    decode_mask,
    encode_mask,
    filename_ok,
    format_1d_table,
    format_cmd,
    format_niml_table,
    parse_clustsim_table_name,
    quote_command_line,
)
from afni_group.programs.clustsim.noise import (  # noqa: F401  (re-exported)
    NoiseGrid,
    NoiseSource,
    fft_length,
    grid_transforms,
    noise_grid,
    spectral_weights,
)
from afni_group.programs.clustsim.simulate import (  # noqa: F401  (re-exported)
    DEFAULT_ITERATIONS,
    DEFAULT_SEED,
    MIN_GRID_VOXELS,
    MIN_ITERATIONS,
    MIN_MASK_VOXELS,
    SimulationTiming,
    check_grid,
    clustsim,
    simulate_max_cluster_sizes,
    z_thresholds,
)
from afni_group.programs.clustsim.stability import (
    StabilityGoal,
    iterations_to_settle,
    unstable_message,
)

LOG = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# validation with the CLI's error classes


def validate_acf(acf: Sequence[float]) -> tuple[float, float, float]:
    """AFNI's -acf checks (0 <= a <= 1, b > 0, c > 0); :class:`UsageError` naming ``-acf``."""
    try:
        return check_acf(acf)
    except ValueError as err:
        raise UsageError(f"-acf: {err}") from err


def _validate_plist(values: Sequence[float], option: str) -> tuple[float, ...]:
    try:
        return check_probabilities(values, option)
    except ValueError as err:
        raise UsageError(str(err)) from err


def check_simulation_grid(mask: np.ndarray, ok_small_mask: bool = False) -> int:
    """AFNI's grid and mask-size checks (:class:`InputDataError`); returns the mask count."""
    try:
        return check_grid(np.asarray(mask), ok_small_mask)
    except ValueError as err:
        raise InputDataError(str(err)) from err


# --------------------------------------------------------------------------------------------
# input


@dataclass
class MaskInfo:
    mask: np.ndarray  # bool (nx, ny, nz)
    voxel_sizes: tuple[float, float, float]
    idcode: str | None
    name: str


def load_mask(path: str | Path, brick: int = 0) -> MaskInfo:
    """Sub-brick ``brick`` of the mask dataset, non-zero = in mask; grid, idcode, header name.

    AFNI's ``-mask 'dset[sel]'`` is resolved to ``brick`` by ``afni-native 3dClustSim``.
    """
    from afni_group import afni_io

    dset = afni_io.read_dataset(path)
    data = np.asarray(dset.data)
    data = data[..., brick] if data.ndim == 4 else data
    sizes = tuple(abs(float(v)) for v in dset.voxel_sizes)
    idcode = dset.attributes.get("IDCODE_STRING") if dset.attributes else None
    if isinstance(idcode, list | tuple):
        idcode = idcode[0] if idcode else None
    idcode = str(idcode).rstrip("\0").strip() if idcode else None
    mask = np.asarray(data) != 0
    return MaskInfo(mask, sizes, idcode or None, header_name(str(path)))


# --------------------------------------------------------------------------------------------
# file level


class ClustSimFiles(list):
    """The files :func:`run_clustsim` wrote (a list of Path, in AFNI's order), plus ``.tables``."""

    tables: ClustSimTables | None = None


@dataclass
class _Settings:
    """The checked simulation options: ACF, p and alpha lists, iterations, seed, formats."""

    acf: tuple[float, float, float]
    pthr: tuple[float, ...]
    athr: tuple[float, ...]
    iterations: int
    seed: int
    niml: bool


def _format_acf_arg(v: float) -> str:
    return "%.6g" % v


def _warn(text: str) -> None:
    LOG.warning("*+ WARNING: %s", text)


def _settings(
    acf: tuple[float, float, float],
    *,
    both: bool,
    niml: bool | None,
    pthr: Sequence[float] | None,
    athr: Sequence[float] | None,
    iterations: int,
    seed: int | None,
    verbose: bool,
) -> _Settings:
    """AFNI's option checks and defaults for a checked ``acf`` (LOTS lists with -both/-niml,
    at least 2000 iterations, seed 0 from the clock)."""
    niml = both if niml is None else niml
    p_list = tuple(LOTS_PTHR) if both or niml else tuple(DEFAULT_PTHR)
    a_list = tuple(LOTS_ATHR) if both or niml else tuple(DEFAULT_ATHR)
    if pthr is not None:
        p_list = _validate_plist(pthr, "-pthr")
    if athr is not None:
        a_list = _validate_plist(athr, "-athr")
    iterations = int(iterations)
    if iterations < MIN_ITERATIONS:
        if verbose:
            _warn(f"-iter {iterations} replaced by {MIN_ITERATIONS}")
        iterations = MIN_ITERATIONS
    seed = DEFAULT_SEED if seed is None else int(seed) & 0xFFFFFFFF
    if seed == 0:
        seed = (int(time.time()) + 17 * os.getpid()) & 0xFFFFFFFF
        if verbose:
            LOG.info("++ -seed 0 resets to %d", seed)
    return _Settings(acf, p_list, a_list, iterations, seed, niml)


def _log_setup(info_mask: MaskInfo, count: int, settings: _Settings, n_jobs: int) -> None:
    """AFNI's INFO lines before the simulation, and its warning for too few iterations."""
    shape, (a, b, c) = info_mask.mask.shape, settings.acf
    grid = noise_grid(shape, info_mask.voxel_sizes, settings.acf)
    _, kernel = spectral_weights(grid)
    LOG.info("++ %d voxels in mask (%.2f%% of total)", count, 100.0 * count / info_mask.mask.size)
    # kernel internals: AFNI prints them; the pipeline shows them with -v only (DETAIL)
    LOG.log(
        DETAIL,
        "++ Kernel function radius = %.2f mm\n"
        "++ ACF(%.2f,%.2f,%.2f) => FWHM=%.2f => %dx%dx%d pads to %dx%dx%d\n"
        " + Kernel image dimensions %d x %d x %d\n++ Using %d threads",
        grid.radius, a, b, c, grid.fwhm, *shape, *grid.padded, *kernel, n_jobs,
    )  # fmt: skip
    smallest, iterations = min(settings.athr), settings.iterations
    if smallest * iterations < 10:
        _warn(
            f"Smallest athr={smallest:.6f} ==> should have at least "
            f"{int(10 / smallest)} iterations instead of {iterations}"
        )


def _default_command_line(
    mask: str | Path, prefix: Path, settings: _Settings, *, both: bool, custom: tuple, nodec: bool
) -> str:
    """The equivalent AFNI command run in the prefix's folder (for the table headers);
    ``custom``: whether -pthr and -athr were given."""
    words = ["-both"] if both else (["-niml"] if settings.niml else [])
    words += ["-mask", Path(mask).name, "-acf"] + [_format_acf_arg(v) for v in settings.acf]
    if settings.iterations != DEFAULT_ITERATIONS:
        words += ["-iter", str(settings.iterations)]
    if settings.seed != DEFAULT_SEED:
        words += ["-seed", str(settings.seed)]
    if custom[0]:
        words += ["-pthr"] + [_niml_number(v) for v in settings.pthr]
    if custom[1]:
        words += ["-athr"] + [_niml_number(v) for v in settings.athr]
    if nodec:
        words.append("-nodec")
    return quote_command_line(words + ["-prefix", prefix.name])


def _write_tables(
    result: ClustSimTables,
    info: TableInfo,
    prefix: Path,
    info_mask: MaskInfo,
    *,
    write_1d: bool,
    niml: bool,
) -> ClustSimFiles:
    """``PREFIX.NNk_SIDED.1D``/``.niml`` for every NN and sidedness, and ``PREFIX.mask``."""
    written = ClustSimFiles()
    written.tables = result
    for s, sided in enumerate(SIDEDNESS):
        for nn in (1, 2, 3):
            table = result.tables[s, nn - 1]
            if write_1d:
                text = format_1d_table(table, nn, sided, info)
                name = clustsim_table_name(str(prefix), nn, sided, "1D")
                written.append(atomic.write_text(Path(name), text))
            if niml:
                text = format_niml_table(table, nn, sided, info)
                name = clustsim_table_name(str(prefix), nn, sided, "niml")
                written.append(atomic.write_text(Path(name), text))
                if s == 0 and nn == 1:
                    mask_text = encode_mask(info_mask.mask)
                    written.append(atomic.write_text(Path(f"{prefix}.mask"), mask_text))
    return written


def _warn_alphas(result: ClustSimTables) -> None:
    """AFNI's warnings for alphas beyond what the simulation reached (two, then suppressed)."""
    for w in result.warnings[:2]:
        _warn(
            f"pthr={w.pthr:.6f} ; desired alpha={w.alpha:.6f} -- "
            f"but max simulated alpha={w.max_alpha:.6f}]"
        )
    if len(result.warnings) > 2:
        LOG.warning(" +        [further messages about alpha are suppressed]")


def _write_cmd(cmd_path: Path, prefix_text: str, verbose: bool) -> Path:
    """``3dClustSim.cmd``: the 3drefit fragment that puts the tables into a dataset header."""
    cmd = format_cmd(prefix_text)
    written = atomic.write_text(cmd_path, cmd)
    if verbose:  # shown by the pipeline with -v only (DETAIL); AFNI prints it
        LOG.log(
            DETAIL,
            "++ Command fragment to put cluster results into a dataset header;\n"
            " + (also echoed to file %s for your scripting pleasure)\n"
            " + Append the name of the datasets to be patched to this command:\n %s",
            cmd_path.name, cmd.rstrip("\n"),
        )  # fmt: skip
    return written


def run_clustsim(
    mask: str | Path,
    acf: tuple[float, float, float],
    prefix: str | Path,
    *,
    mask_brick: int = 0,
    iterations: int = DEFAULT_ITERATIONS,
    seed: int | None = None,
    both: bool = True,
    pthr: list[float] | None = None,
    athr: list[float] | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    command_line: str | Callable[[int], str] | None = None,
    nodec: bool = False,
    niml: bool | None = None,
    write_1d: bool = True,
    cmd_file: str | Path | None = None,
    prefix_text: str | None = None,
    ok_small_mask: bool = False,
    verbose: bool | None = None,
    until_stable: StabilityGoal | None = None,
) -> ClustSimFiles:
    """Run the simulation and write the tables, ``PREFIX.mask`` and ``3dClustSim.cmd``.

    Parameters
    ----------
    mask : path
        Mask dataset (grid and search region): non-zero voxels of sub-brick ``mask_brick``.
    acf : (a, b, c)
        Mixed-ACF parameters (0 <= a <= 1, b > 0, c > 0).
    prefix : path
        Output stem; files are ``PREFIX.NN{1,2,3}_{1sided,2sided,bisided}.{1D,niml}`` and
        ``PREFIX.mask``.
    iterations : int
        Monte-Carlo iterations (fewer than 2000 are raised to 2000, as AFNI does).
    seed : int, optional
        ``None`` = AFNI's default 123456789; 0 = from the clock.
    both : bool
        ``-both``: LOTS p/alpha lists (29 × 10) and .niml tables in addition to .1D.
    pthr, athr : list of float, optional
        Override the p / alpha lists (0 < value <= 0.5; sorted in decreasing order).
    n_jobs : int
        Threads.
    progress : bool
        Progress lines and AFNI-style INFO messages.
    command_line : str, optional
        Text for the table headers (must start with ``3dClustSim``); default: the equivalent
        AFNI command run in the prefix's folder.
    nodec : bool
        ``-nodec``: round sizes up to integers.
    niml : bool, optional
        Write .niml tables (default: ``both``).
    write_1d : bool
        Write .1D tables.
    cmd_file : path, optional
        Where to write the 3drefit fragment; default ``3dClustSim.cmd`` next to the prefix.
    prefix_text : str, optional
        How the prefix is spelt inside the .cmd file; default the prefix's file name (as when
        AFNI runs inside the output folder).
    ok_small_mask : bool
        ``-OKsmallmask``: accept masks of 2..127 voxels.
    verbose : bool, optional
        INFO messages (default: ``progress``).
    until_stable : StabilityGoal, optional
        Add iterations in batches until this cell's threshold is stable (beyond AFNI); the
        files then record the total, and ``command_line`` may be a function of it.

    Returns
    -------
    ClustSimFiles
        Files written, in AFNI's order; ``.tables`` holds the in-memory result.
    """
    verbose = progress if verbose is None else verbose
    acf = validate_acf(acf)
    prefix = Path(prefix)
    if not filename_ok(prefix.name):
        raise UsageError(f"bad -prefix option '{prefix}': it contains a forbidden character")
    if not prefix.parent.is_dir():
        raise OutputError(f"output folder {prefix.parent} does not exist; create it first")
    options = dict(both=both, niml=niml, pthr=pthr, athr=athr, iterations=iterations, seed=seed)
    settings = _settings(acf, verbose=verbose, **options)
    info_mask = load_mask(mask, mask_brick)
    count = check_simulation_grid(info_mask.mask, ok_small_mask)
    if verbose:
        _log_setup(info_mask, count, settings, n_jobs)
    if command_line is None:
        custom = (pthr is not None, athr is not None)
        command_line = _default_command_line(
            mask, prefix, settings, both=both, custom=custom, nodec=nodec
        )
    try:
        simulate = clustsim if until_stable is None else until_stable.clustsim
        result = simulate(
            info_mask.mask, info_mask.voxel_sizes, settings.acf, iterations=settings.iterations,
            seed=settings.seed, pthr=settings.pthr, athr=settings.athr, nodec=nodec,
            n_jobs=n_jobs, progress=progress, ok_small_mask=ok_small_mask,
        )  # fmt: skip
    except ValueError as err:
        raise InputDataError(f"3dClustSim on {mask}: {err}") from err
    info = TableInfo(
        command_line=command_line(result.iterations) if callable(command_line) else command_line,
        shape=tuple(int(n) for n in info_mask.mask.shape),
        voxel_sizes=info_mask.voxel_sizes, mask_count=count, iterations=result.iterations,
        pthr=settings.pthr, athr=settings.athr, nodec=nodec,
        mask_idcode=info_mask.idcode or new_idcode("XYZ"), mask_name=info_mask.name,
    )  # fmt: skip
    written = _write_tables(result, info, prefix, info_mask, write_1d=write_1d, niml=settings.niml)
    if verbose:
        _warn_alphas(result)
    if settings.niml:
        cmd_path = Path(cmd_file) if cmd_file is not None else prefix.parent / "3dClustSim.cmd"
        text = prefix.name if prefix_text is None else prefix_text
        written.append(_write_cmd(cmd_path, text, verbose))
    return written


def mc_standard_errors(tables: ClustSimTables) -> dict:
    """Monte-Carlo s.e. of every cell (JSON-ready, for the pipeline's step log).

    ``{"pthr": [...], "athr": [...], "se": {"NNk_SIDED": rows p × columns alpha}}``, 4 decimals.
    """
    se = tables.standard_errors()
    return {
        "pthr": list(tables.pthr),
        "athr": list(tables.athr),
        "iterations": int(tables.iterations),
        "se": {
            clustsim_table_key(nn, sided): np.round(se[s, nn - 1], 4).tolist()
            for s, sided in enumerate(SIDEDNESS)
            for nn in (1, 2, 3)
        },
    }


def threshold_mc(table: str | Path, pthr: float, alpha: float, mc: dict | None) -> dict | None:
    """Monte-Carlo error of the threshold 1d_tool.py takes from ``table`` (for params.json).

    Parameters
    ----------
    table : path
        The ``PREFIX.NNk_SIDED.1D`` table the cluster-size threshold was read from.
    pthr, alpha : float
        The cell.
    mc : dict
        From :func:`mc_standard_errors` (``None``: not available, e.g. the afni engine).

    Returns
    -------
    dict or None
        :meth:`ThresholdUncertainty.as_dict` of the printed cell; a warning is logged when
        the whole-voxel threshold is not stable.
    """
    from afni_group.programs.clustsim.core import uncertainty_from_se
    from afni_group.programs.csim_lookup import core as csim_lookup

    name = parse_clustsim_table_name(table)
    if not mc or name is None:
        return None
    try:
        rows = mc["se"][clustsim_table_key(name.nn, name.sided)]
        se = float(
            rows[[float(p) for p in mc["pthr"]].index(float(pthr))][
                [float(a) for a in mc["athr"]].index(float(alpha))
            ]
        )
    except (KeyError, ValueError, IndexError, TypeError):
        return None
    look = csim_lookup.lookup_cluster_size(table, pthr, alpha)
    if not look.ok or look.cell is None:
        return None
    result = uncertainty_from_se(float(look.cell), se)
    out = result.as_dict()
    if mc.get("iterations"):
        out["iterations_to_settle"] = iterations_to_settle(result.size, se, mc["iterations"])
    if not result.stable:
        LOG.warning("%s", unstable_message(out))
    return out
