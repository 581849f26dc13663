"""3dClusterize on files (spec 07): read the bricks, cluster, write the maps and the report.

Layers: the computation on arrays is :func:`.core.clusterize`; the AFNI report text and
``clusters.tsv`` are formatted by :mod:`.formats`; the options as values (:class:`Thresholds`,
cluster size, the map's label) are :mod:`.options`; this module reads and writes datasets
(:func:`run_clusterize`: reading, the core call, the report and history text, writing;
:func:`write_clusters_tsv`); ``afni-native 3dClusterize``'s options are parsed in
:mod:`afni_group.programs.cli.clusterize`. The names of the other layers are re-exported here
so that ``clusterize.find_clusters`` and friends keep working.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from afni_group import afni_io, atomic
from afni_group.afni_io import naming
from afni_group.errors import InputDataError, OutputError, UsageError
from afni_group.programs.clusterize.coordinates import (  # noqa: F401  (re-exported)
    dicom_coordinates,
    grid_from_affine,
    normalize_orient,
    reorient_coordinates,
)
from afni_group.programs.clusterize.core import (  # noqa: F401  (re-exported)
    _SIDED_MODES,
    _TAIL_WORDS,
    BIG,
    MAX_SORTED_CLUSTERS,
    Cluster,
    ClusterResult,
    ClusterRow,
    ClusterStats,
    cluster_stats,
    clusterize,
    find_clusters,
    largest_cluster_size,
    neighbour_offsets,
    reorient_stats,
    sort_clusters,
    threshold_masks,
)
from afni_group.programs.clusterize.formats import (  # noqa: F401  (re-exported)
    NO_CLUSTERS_LINE,
    TSV_COLUMNS,
    ReportHeader,
    cluster_table_row,
    fc7,
    format_clusters_tsv,
    format_header,
    format_report,
    total_line,
)
from afni_group.programs.clusterize.options import (  # noqa: F401  (re-exported)
    OptionWords,
    ResolvedThresholds,
    Thresholds,
    arg_text,
    check_options,
    min_cluster_size,
    option_label,
    resolve_thresholds,
)

_DATUM_NAMES = {0: "byte", 1: "short", 2: "int", 3: "float", 4: "double", 5: "complex", 6: "rgb"}
_DTYPE_DATUM = {
    np.dtype(np.uint8): "byte",
    np.dtype(np.int16): "short",
    np.dtype(np.int32): "int",
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.complex64): "complex",
}
#: ``FUNC_label_stat_aux``-style labels for the "Aux. stat. info." header line.
_AUX_LABELS = {
    2: "SAMPLES  FIT-PARAMETERS  ORT-PARAMETERS",
    3: "DEGREES-of-FREEDOM",
    4: "NUMERATOR and DENOMINATOR DEGREES-of-FREEDOM",
    6: "DEGREES-of-FREEDOM",
    7: "A_PARAMETER  B_PARAMETER",
    8: "NUMBER-of-TRIALS  PROBABILITY-per-TRIAL",
    9: "SHAPE  SCALE",
    10: "MEAN",
}


# ------------------------------------------------------------------------------------------------
# coordinates
# ------------------------------------------------------------------------------------------------


def grid_geometry(dset: afni_io.AfniDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AFNI's cardinal grid of a dataset: (ORIGIN, DELTA, DICOM axis of each dataset axis).

    HEAD datasets use their ORIGIN/DELTA/ORIENT_SPECIFIC attributes; NIfTI datasets the header
    affine, whose rotation AFNI ignores for oblique data (07 §5.3).
    """
    attrs = dset.attributes
    from_head = dset.path is not None and not naming.is_nifti(dset.path)
    if not (from_head and all(k in attrs for k in ("ORIGIN", "DELTA", "ORIENT_SPECIFIC"))):
        return grid_from_affine(dset.affine)
    orient, origin, delta = attrs["ORIENT_SPECIFIC"], attrs["ORIGIN"], attrs["DELTA"]
    origin = np.asarray(origin[:3], dtype=np.float32)
    delta = np.asarray(delta[:3], dtype=np.float32)
    axis = np.array([int(o) // 2 for o in orient[:3]])
    return origin, delta, axis


# ------------------------------------------------------------------------------------------------
# file level
# ------------------------------------------------------------------------------------------------


@dataclass
class ClusterizeResult:
    """Everything one 3dClusterize run produced: the report text, the files written, and the
    array-level :class:`ClusterResult` (``core``) they were made from.

    ``threshold_brick`` (the threshold sub-brick as read, scaled), ``affine`` and ``space`` let
    later steps (the clusters tsv's peak t and atlas labels) use the data without reading it
    again.
    """

    report_text: str
    n_clusters: int
    clusters: list[Cluster]
    map_path: Path | None
    dat_path: Path | None
    voxel_volume: float = 0.0
    thresholds: tuple[float, float] = (0.0, 0.0)
    option_label: str = ""
    orient: str = "RAI"
    cluster_map: np.ndarray | None = field(default=None, repr=False)
    core: ClusterResult | None = field(default=None, repr=False)
    threshold_brick: np.ndarray | None = field(default=None, repr=False)
    affine: np.ndarray | None = field(default=None, repr=False)
    space: str | None = None

    @property
    def table(self) -> list[ClusterRow]:
        """One :class:`ClusterRow` per cluster (the rows of ``clusters.tsv``)."""
        return self.core.table if self.core is not None else []


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------


@dataclass
class _Inputs:
    """What one run reads: the selected sub-bricks, their stored values, datum and the mask."""

    dset: afni_io.AfniDataset
    path_text: str
    has_labels: bool
    ithr: int
    idat: int | None
    thr: np.ndarray
    dat: np.ndarray
    thr_factor: float
    datum: str
    data_factor: float
    mask: np.ndarray | None = None

    @property
    def data_index(self) -> int:
        return self.ithr if self.idat is None else self.idat

    @property
    def report_factor(self) -> float:
        # Without -idat AFNI looks the data factor up at brick index -1: it is never applied.
        return self.data_factor if self.idat is not None else 0.0


def _brick_index(brick: int | str, dset: afni_io.AfniDataset, what: str) -> int:
    """``-ithr``/``-idat``: an index, or the exact label of a sub-brick (last match wins)."""
    if isinstance(brick, str):
        try:
            index = dset.index_of(brick)
        except InputDataError:
            raise InputDataError(
                f"Could not find string label: {brick} (in {dset.path}; labels: "
                f"{', '.join(dset.labels)}); give -{what} an existing label or index"
            ) from None
    else:
        index = int(brick)
    if not 0 <= index < dset.nvals:
        raise InputDataError(
            f"Bad index for {what} volume: {index} ({dset.path} has {dset.nvals} sub-bricks)"
        )
    return index


def _read_inputs(
    inset: str | Path, bricks: Sequence[int] | None, ithr: int | str, idat: int | str | None
) -> _Inputs:
    """Read ``inset`` (sub-bricks ``bricks`` of it, default all): the two bricks and datum."""
    path_text = os.fspath(inset)
    full = afni_io.read_dataset(path_text)
    selected = list(range(full.nvals)) if bricks is None else [int(i) for i in bricks]
    dset = full if bricks is None else full.select(selected)
    ithr_index = _brick_index(ithr, dset, "ithr")
    idat_index = _brick_index(idat, dset, "idat") if idat is not None else None
    data_index = ithr_index if idat_index is None else idat_index
    thr_datum, thr_factor = _brick_datum_and_factor(full, selected[ithr_index])
    datum, data_factor = _brick_datum_and_factor(full, selected[data_index])
    return _Inputs(
        dset=dset,
        path_text=path_text,
        has_labels=not (naming.is_nifti(path_text) and "BRICK_LABS" not in full.attributes),
        ithr=ithr_index,
        idat=idat_index,
        thr=_stored_values(dset.brick(ithr_index), thr_datum, thr_factor),
        dat=_stored_values(dset.brick(data_index), datum, data_factor),
        thr_factor=thr_factor,
        datum=datum,
        data_factor=data_factor,
    )


def _read_mask(mask: str | Path, inputs: _Inputs) -> np.ndarray:
    """Brick 0 of the mask dataset, non-zero = inside; it must have the inset's grid size."""
    mask_dset = afni_io.read_dataset(os.fspath(mask))
    if mask_dset.shape != inputs.dset.shape:
        raise InputDataError(
            f"mask {mask} has grid {mask_dset.shape} but {inputs.path_text} has "
            f"{inputs.dset.shape}; use a mask on the same grid"
        )
    return mask_dset.brick(0) != 0


def _brick_datum_and_factor(full: afni_io.AfniDataset, index: int) -> tuple[str, float]:
    """Datum name and scale factor of brick ``index`` of the dataset as read (not selected)."""
    types = full.attributes.get("BRICK_TYPES")
    facs = full.attributes.get("BRICK_FLOAT_FACS")
    if types is not None and index < len(types):
        datum = _DATUM_NAMES.get(int(types[index]), "float")
    else:
        datum = _DTYPE_DATUM.get(full.data.dtype, "float")
    factor = float(facs[index]) if facs is not None and index < len(facs) else 0.0
    if datum not in ("short", "byte"):
        factor = 0.0  # afni_io hands back float bricks already scaled: nothing left to apply
    return datum, factor


def _stored_values(brick: np.ndarray, datum: str, factor: float) -> np.ndarray:
    """The brick's stored (unscaled) values as float32; afni_io returns scaled data."""
    if factor > 0 and datum in ("short", "byte"):
        return np.rint(np.asarray(brick, dtype=np.float64) / factor).astype(np.float32)
    return np.asarray(brick, dtype=np.float32)


# ------------------------------------------------------------------------------------------------
# the AFNI report and history text
# ------------------------------------------------------------------------------------------------


def _aux_stat_text(dset: afni_io.AfniDataset, index: int) -> str:
    if not any(c > 0 for c in dset.stat_codes):
        return "not a stat!"
    code = dset.stat_codes[index]
    label = _AUX_LABELS.get(code)
    if label is None:
        return ""
    params = dset.stat_params[index]
    return f"{label} :" + "".join(" %g " % float(np.float32(p)) for p in params)


def _brick_ref(inputs: _Inputs, index: int | None) -> str:
    if index is None:
        return "(none)"
    dset = inputs.dset
    return f"[{index}] '{dset.labels[index]}'" if inputs.has_labels else f"[{index}]"


def _report(
    inputs: _Inputs,
    resolved: ResolvedThresholds,
    found: ClusterResult,
    label: str,
    min_nvox: int,
    nn: int,
    mask_line: str | None,
    **options,
) -> str:
    """3dClusterize's stdout; ``options``: orient, abs_table_data and :func:`format_report`'s."""
    orient, abs_mean = options.pop("orient"), options.pop("abs_table_data")
    header = ReportHeader(
        prefix=naming.display_prefix(inputs.path_text),
        threshold_vol=_brick_ref(inputs, inputs.ithr),
        data_vol=_brick_ref(inputs, inputs.idat),
        option_label=label,
        threshold_text=resolved.text,
        aux_stat=_aux_stat_text(inputs.dset, inputs.ithr),
        min_nvox=min_nvox,
        voxel_dims=tuple(abs(float(d)) for d in grid_geometry(inputs.dset)[1]),
        nn=nn,
        datum=inputs.datum,
        orient=orient,
        mask=mask_line,
        abs_mean=abs_mean,
    )
    stats = [c.stats for c in found.clusters]
    return format_report(
        header, stats, factor=inputs.report_factor, too_many=found.too_many, **options
    )


def _command_line(*parts: tuple[str, str | float | int | Sequence[str] | None]) -> str:
    """A 3dClusterize command line for the history note when the caller gives none."""
    words = ["3dClusterize"]
    for option, value in parts:
        if value is None:
            continue
        values = value if isinstance(value, (tuple, list)) else (value,)
        words += [f"-{option}", *(arg_text(v) for v in values)]
    return " ".join(shlex.quote(w) for w in words)


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------


def run_clusterize(
    inset: str | Path,
    ithr: int | str,
    idat: int | str | None = None,
    *,
    thresholds: Thresholds,
    bricks: Sequence[int] | None = None,
    mask: str | Path | None = None,
    nn: int = 1,
    clust_nvox: float | None = None,
    clust_vol: float | None = None,
    pref_map: str | Path | None = None,
    pref_dat: str | Path | None = None,
    orient: str = "RAI",
    quiet: bool = False,
    nosum: bool = False,
    one_d_format: bool = True,
    abs_table_data: bool = False,
    binary: bool = False,
    outvol_if_no_clust: bool = False,
    out_mask: str | Path | None = None,
    overwrite: bool = True,
    report_zero: bool = False,
    mask_text: str | None = None,
    words: OptionWords | None = None,
    command_line: str | None = None,
) -> ClusterizeResult:
    """Threshold, cluster and report one statistic map, exactly as ``3dClusterize`` does.

    Values only: AFNI's option text (``p=``, ``"dset[sel]"``, numbers) is parsed by
    ``afni-native 3dClusterize`` (:mod:`afni_group.programs.cli.clusterize`).

    Parameters
    ----------
    inset : str or Path
        The dataset, e.g. ``mema_results.nii.gz``.
    ithr, idat : int or str
        Threshold and data sub-bricks: an index or an exact label (last match wins). Without
        ``idat`` the threshold brick is also the data brick (and no DAT is written).
    thresholds : Thresholds
        Sidedness and statistic thresholds (or ``p=P``).
    bricks : sequence of int, optional
        Use these sub-bricks of ``inset`` (AFNI's ``dset[sel]``); ``ithr``/``idat`` count in them.
    mask : str or Path, optional
        Mask dataset (brick 0, non-zero = inside); same nx, ny, nz as ``inset``.
    nn : {1, 2, 3}
        Neighbourhood: faces, + edges, + corners.
    clust_nvox, clust_vol : float, optional
        Minimum cluster size in voxels (> 0, truncated to an integer). ``clust_vol`` is treated as
        a voxel count too (AFNI quirk); only the label differs.
    pref_map, pref_dat : str or Path, optional
        Output cluster-index map (int16, 1 = largest) and cluster-masked data brick. Not written
        when no cluster survives (unless ``outvol_if_no_clust``).
    orient : str
        Coordinate order of the report, ``RAI`` (default) or e.g. ``LPI``.
    quiet, nosum, one_d_format, abs_table_data, binary, outvol_if_no_clust, out_mask
        As 3dClusterize's ``-quiet``, ``-nosum``, ``-1Dformat``/``-no_1Dformat``,
        ``-abs_table_data``, ``-binary``, ``-outvol_if_no_clust``, ``-out_mask``.
    overwrite : bool
        Replace existing outputs; if False an existing output raises :class:`OutputError`
        (checked for all outputs before anything is written).
    report_zero : bool
        Add AFNI's `` 0`` line after ``NO CLUSTERS FOUND`` (env ``AFNI_3dclust_report_zero``).
    mask_text, words, command_line : optional
        What AFNI echoes as typed: the report's ``Mask`` line (default ``mask``), the option
        words of the map's label (:class:`OptionWords`) and the history's command line
        (default: rebuilt from the arguments).

    Returns
    -------
    ClusterizeResult
        ``report_text`` is what AFNI prints on stdout; ``n_clusters == 0`` means no cluster
        survived (``report_text`` is then ``#** NO CLUSTERS FOUND ***\\n``).

    Raises
    ------
    UsageError, InputDataError, MissingInputError, OutputError
    """
    nn = int(nn)
    tail_key = check_options(thresholds, nn)
    size_option, size, min_nvox = min_cluster_size(clust_nvox, clust_vol)
    orient = normalize_orient(orient)
    inputs = _read_inputs(inset, bricks, ithr, idat)
    resolved = _thresholds_for(inputs, thresholds, tail_key)
    if mask is not None:
        inputs.mask = _read_mask(mask, inputs)
    found = _cluster(
        inputs, resolved, thresholds.sided, tail_key, nn, min_nvox, orient, abs_table_data
    )
    words = words or OptionWords()
    label = option_label(thresholds, words, size_option, size, nn)
    mask_line = (mask_text or os.fspath(mask)) if mask is not None else None
    report = _report(
        inputs, resolved, found, label, min_nvox, nn, mask_line, orient=orient,
        abs_table_data=abs_table_data, quiet=quiet, nosum=nosum, one_d_format=one_d_format,
        report_zero=report_zero,
    )  # fmt: skip
    if command_line is None:
        typed = words.thresholds if words.thresholds is not None else thresholds.words()
        command_line = _command_line(
            ("inset", inputs.path_text), ("ithr", ithr), ("idat", idat), ("mask", mask),
            (thresholds.sided, typed), ("NN", nn),
            (size_option or "clust_nvox", words.size or (None if size is None else arg_text(size))),
            ("pref_map", pref_map), ("pref_dat", pref_dat),
        )  # fmt: skip
    cluster_map = (found.cluster_map > 0).astype(np.int16) if binary else found.cluster_map
    keep = bool(found.clusters) or outvol_if_no_clust
    targets = _output_targets(
        map_=pref_map if keep else None,
        dat=pref_dat if keep and inputs.idat is not None else None,
        mask=out_mask if inputs.mask is not None else None,
        overwrite=overwrite,
    )
    map_path, dat_path = _write_outputs(inputs, cluster_map, label, targets, command_line)
    dset = inputs.dset
    return ClusterizeResult(
        report_text=report, n_clusters=len(found.clusters), clusters=found.clusters,
        map_path=map_path, dat_path=dat_path, voxel_volume=found.voxel_volume,
        thresholds=(float(resolved.low), float(resolved.high)), option_label=label,
        orient=orient, cluster_map=cluster_map, core=found,
        threshold_brick=dset.brick(inputs.ithr), affine=dset.affine, space=dset.space,
    )  # fmt: skip


def _thresholds_for(inputs: _Inputs, thresholds: Thresholds, tail_key: str) -> ResolvedThresholds:
    """The thresholds for the threshold brick's stat code; errors name the dataset and brick."""
    dset, index = inputs.dset, inputs.ithr
    try:
        return resolve_thresholds(
            thresholds, tail_key, dset.stat_codes[index], dset.stat_params[index]
        )
    except UsageError as err:  # name the dataset and sub-brick (issue 15)
        brick = f"[{index}] '{dset.labels[index]}'"
        raise UsageError(f"{inputs.path_text} -ithr {brick}: {err}") from None


def _cluster(
    inputs: _Inputs,
    resolved: ResolvedThresholds,
    sided: str,
    tail_key: str,
    nn: int,
    min_nvox: int,
    orient: str,
    abs_table_data: bool,
) -> ClusterResult:
    """The array core on the stored values (thresholds scaled like them)."""
    low, high = resolved.low, resolved.high
    if inputs.thr_factor > 0:
        # Thresholds are compared with the stored integers of a scaled brick.
        factor = np.float32(inputs.thr_factor)
        low, high = np.float32(low / factor), np.float32(high / factor)
    try:
        return clusterize(
            inputs.thr,
            inputs.dat,
            thresholds=(float(low),) if sided == "1sided" else (float(low), float(high)),
            sided=sided,
            tail=tail_key,
            nn=int(nn),
            min_nvox=min_nvox,
            mask=inputs.mask,
            orient=orient,
            abs_table_data=abs_table_data,
            data_factor=inputs.report_factor,
            grid=grid_geometry(inputs.dset),
        )
    except ValueError as err:
        raise InputDataError(f"{inputs.path_text}: {err}") from None


# ------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------


def _output_targets(
    *, map_: str | Path | None, dat: str | Path | None, mask: str | Path | None, overwrite: bool
) -> dict[str, Path | None]:
    """The outputs to write; with ``overwrite`` False none may exist (checked before writing)."""
    targets = {
        k: None if v is None else Path(v) for k, v in (("dat", dat), ("map", map_), ("mask", mask))
    }
    if not overwrite:
        for target in targets.values():
            if target is not None and naming.dataset_exists(target):
                raise OutputError(
                    f"Can't overwrite existing dataset '{target}'; remove it or allow overwrite"
                )
    return targets


def _write_outputs(
    inputs: _Inputs,
    cluster_map: np.ndarray,
    label: str,
    targets: dict[str, Path | None],
    command_line: str,
) -> tuple[Path | None, Path | None]:
    """Write the DAT, map and mask datasets (those targeted); returns (map path, DAT path)."""
    dset, history = inputs.dset, afni_io.history_entry(command_line)

    def like_inset(data: np.ndarray, labels: list[str], **kw) -> afni_io.AfniDataset:
        return afni_io.AfniDataset(
            data=data, affine=dset.affine, labels=labels, space=dset.space, view=dset.view,
            history=dset.history, **kw,
        )  # fmt: skip

    dat_path = map_path = None
    if targets["dat"] is not None:
        brick = dset.brick(inputs.data_index)
        values = np.where(cluster_map > 0, brick, 0).astype(_dat_dtype(brick))
        i = inputs.data_index
        out = like_inset(
            values, [dset.labels[i]], stat_codes=[dset.stat_codes[i]],
            stat_params=[dset.stat_params[i]],
        )  # fmt: skip
        dat_path = afni_io.write_dataset(out, targets["dat"], history=history, style="c")
    if targets["map"] is not None:
        map_path = afni_io.write_dataset(
            like_inset(cluster_map, [label]), targets["map"], history=history, style="c",
            attributes={"INT_CMAP": 1}, omit=("BRICK_KEYWORDS",),
        )  # fmt: skip
    if targets["mask"] is not None:
        out = like_inset(inputs.mask.astype(np.uint8), ["mask"])
        afni_io.write_dataset(out, targets["mask"], history=history, style="c")
    return map_path, dat_path


def _dat_dtype(brick: np.ndarray) -> np.dtype:
    """DAT keeps the data brick's datum; scaled integer bricks come back as float32."""
    dt = np.asarray(brick).dtype
    return dt if dt in (np.dtype(np.uint8), np.dtype(np.int16)) else np.dtype(np.float32)


def write_clusters_tsv(
    result: ClusterizeResult | ClusterResult,
    path: str | Path,
    extra_columns: Sequence[str] = (),
    extra: Sequence[Mapping[str, str]] = (),
) -> Path:
    """Write one row per cluster (columns fixed in docs/design.md); header only if none.

    ``extra_columns`` are appended after them, one cell per cluster from ``extra`` (peak t,
    corrected p and atlas labels: ``afni_group.cluster_table.tsv_extra``).

    Coordinates are in mm: RAI/DICOM (as 3dClusterize prints by default) and LPI (the MNI/
    NIfTI convention, x = −RAI x, y = −RAI y). Centre of mass is |data|-weighted; the peak is the
    voxel with the largest |data| ("Max Int"); mean, SEM and peak value are of the data brick.
    """
    return atomic.write_text(Path(path), format_clusters_tsv(result.table, extra_columns, extra))
