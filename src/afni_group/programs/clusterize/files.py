"""3dClusterize on files (spec 07): read the bricks, cluster, write the maps and the report.

Layers: the computation on arrays is :func:`.core.clusterize`; the AFNI report text and
``clusters.tsv`` are formatted by :mod:`.formats`; this module reads and writes
datasets (:func:`run_clusterize`, :func:`write_clusters_tsv`); ``afni-native 3dClusterize``'s
options are parsed in :mod:`.cli.clusterize`. The names of the other layers are re-exported here
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
from afni_group.programs.cli.argv import c_atof
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
    dicom_coordinates,
    find_clusters,
    grid_from_affine,
    largest_cluster_size,
    neighbour_offsets,
    normalize_orient,
    reorient_coordinates,
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
from afni_group.statdist import pval_to_stat, stat_nsides

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
    array-level :class:`ClusterResult` (``core``) they were made from."""

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

    @property
    def table(self) -> list[ClusterRow]:
        """One :class:`ClusterRow` per cluster (the rows of ``clusters.tsv``)."""
        return self.core.table if self.core is not None else []


def _arg_text(value: str | float | int) -> str:
    """An option argument as it would be typed (strings verbatim, numbers as Python prints them)."""
    return value if isinstance(value, str) else str(value)


def _brick_index(spec: str | int, dset: afni_io.AfniDataset, what: str) -> int:
    """``-ithr``/``-idat``: all digits → index, otherwise the exact label (last match wins)."""
    text = str(spec)
    if text.isdigit():
        index = int(text)
    else:
        try:
            index = dset.index_of(text)
        except InputDataError:
            raise InputDataError(
                f"Could not find string label: {text} (in {dset.path}; labels: "
                f"{', '.join(dset.labels)}); give -{what} an existing label or index"
            ) from None
    if not 0 <= index < dset.nvals:
        raise InputDataError(
            f"Bad index for {what} volume: {index} ({dset.path} has {dset.nvals} sub-bricks)"
        )
    return index


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


def _aux_stat_text(dset: afni_io.AfniDataset, index: int) -> str:
    if not any(c > 0 for c in dset.stat_codes):
        return "not a stat!"
    code = dset.stat_codes[index]
    label = _AUX_LABELS.get(code)
    if label is None:
        return ""
    params = dset.stat_params[index]
    return f"{label} :" + "".join(" %g " % float(np.float32(p)) for p in params)


def _brick_ref(dset: afni_io.AfniDataset, index: int, has_labels: bool) -> str:
    return f"[{index}] '{dset.labels[index]}'" if has_labels else f"[{index}]"


@dataclass
class _Thresholds:
    low: np.float32
    high: np.float32
    label_part: str
    text: str


def _resolve_thresholds(
    sided: str,
    thresholds,
    pval,
    tail: str,
    tail_text: str,
    code: int,
    params: tuple[float, ...],
) -> _Thresholds:
    """Numeric thresholds, the option-summary part and the ``Threshold value(s)`` text."""
    nsides = stat_nsides(code)
    if sided == "1sided" and tail == "LEFT" and nsides == 1:
        raise UsageError(
            "The Glen Rule applies here: can't run a left-sided test on this stat, as it only "
            "has one (positive) side"
        )
    if pval is not None:
        p = float(c_atof(str(pval)) if isinstance(pval, str) else pval)
        p_text = f"p={_arg_text(pval)}"
        if nsides == 0:
            raise UsageError(
                "Thresholding volume does *not* appear to be a stat so you can't use the "
                "'p=..' internal conversion to stat"
            )
        limit = 0.5 if sided == "1sided" else 1.0
        if not 0.0 <= p <= limit:
            raise UsageError(f"Non-valid p-value ({p:f}) entered!")
        p32 = float(np.float32(p))
        if sided == "1sided":
            value = np.float32(pval_to_stat(p, code, params, "1sided"))
            if tail == "LEFT":
                value = -value
            side = "right" if tail == "RIGHT" else "left"
            return _Thresholds(
                value,
                value,
                f"1sided,{tail_text},{p_text},",
                f"{side}-tail p={p32:f} -> thr={float(value):f}",
            )
        right = np.float32(pval_to_stat(p, code, params, "2sided"))
        return _Thresholds(
            -right,
            right,
            f"-{sided},{p_text},",
            f"left-tail p={p32:f} -> thr={float(-right):f};  "
            f"right-tail p={p32:f} -> thr={float(right):f}",
        )
    if sided == "1sided":
        values = thresholds if isinstance(thresholds, (tuple, list)) else (thresholds,)
        if len(values) != 1:
            raise UsageError("-1sided takes one threshold value")
        text = _arg_text(values[0])
        value = np.float32(c_atof(text))
        side = "right" if tail == "RIGHT" else "left"
        return _Thresholds(
            value, value, f"1sided,{tail_text},{text},", f"{side}-tail thr={float(value):f}"
        )
    if not isinstance(thresholds, (tuple, list)) or len(thresholds) != 2:
        raise UsageError(f"-{sided} takes two threshold values (left, right) or p=P")
    low_text, high_text = (_arg_text(v) for v in thresholds)
    low, high = np.float32(c_atof(low_text)), np.float32(c_atof(high_text))
    return _Thresholds(
        low,
        high,
        f"{sided},{low_text},{high_text},",
        f"left-tail thr={float(low):f};  right-tail thr={float(high):f}",
    )


def _command_line(args: dict) -> str:
    """A 3dClusterize command line for the history note when the caller gives none."""
    parts = ["3dClusterize"]
    for key, value in args.items():
        if value is None or value is False:
            continue
        parts.append(f"-{key}")
        if value is True:
            continue
        values = value if isinstance(value, (tuple, list)) else (value,)
        parts += [_arg_text(v) for v in values]
    return " ".join(shlex.quote(p) for p in parts)


def run_clusterize(
    inset: str | Path,
    ithr: str | int,
    idat: str | int | None = None,
    *,
    mask: str | Path | None = None,
    sided: str = "bisided",
    thresholds=None,
    pval: float | str | None = None,
    tail: str = "RIGHT_TAIL",
    nn: int = 1,
    clust_nvox: float | str | None = None,
    clust_vol: float | str | None = None,
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
    command_line: str | None = None,
) -> ClusterizeResult:
    """Threshold, cluster and report one statistic map, exactly as ``3dClusterize`` does.

    Parameters
    ----------
    inset : str or Path
        Dataset (optionally with a sub-brick selector), e.g. ``mema_results.nii.gz``.
    ithr, idat : str or int
        Threshold and data sub-bricks: an index (all digits) or an exact label (last match wins).
        Without ``idat`` the threshold brick is also the data brick (and no DAT is written).
    mask : str or Path, optional
        Mask dataset (brick 0, non-zero = inside); same nx, ny, nz as ``inset``.
    sided : {"bisided", "2sided", "1sided", "within_range"}
        ``bisided``: the tails are clustered separately; ``2sided``: together.
    thresholds : (low, high) or value
        Statistic thresholds, e.g. ``("-4.586894", "4.586894")``; strings are used verbatim in the
        option summary (as AFNI prints what was typed), numbers as Python prints them. For
        ``1sided`` a single value. Comparisons are inclusive and in float32. To reproduce the
        tutorial, pass p2dsetstat's text (``format_stat_threshold(stat_threshold(...))``), not
        the float: AFNI thresholds at ``float32("4.586894")``, not at the unrounded value.
    pval : float or str, optional
        ``p=`` syntax instead of ``thresholds``: converted with the brick's stat code (07 §3.2).
    tail : {"RIGHT_TAIL", "RIGHT", "LEFT_TAIL", "LEFT"}
        Tail of a ``1sided`` test.
    nn : {1, 2, 3}
        Neighbourhood: faces, + edges, + corners.
    clust_nvox, clust_vol : float or str, optional
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
    mask_text : str, optional
        Text of the report's ``Mask`` line (AFNI echoes the ``-mask`` argument as typed, e.g.
        ``mask.nii.gz`` when run from the analysis folder); default: ``mask`` as given.
    report_zero : bool
        Add AFNI's `` 0`` line after ``NO CLUSTERS FOUND`` (env ``AFNI_3dclust_report_zero``).
    command_line : str, optional
        Recorded in the output history; rebuilt from the arguments when not given.

    Returns
    -------
    ClusterizeResult
        ``report_text`` is what AFNI prints on stdout; ``n_clusters == 0`` means no cluster
        survived (``report_text`` is then ``#** NO CLUSTERS FOUND ***\\n``).

    Raises
    ------
    UsageError, InputDataError, MissingInputError, OutputError
    """
    if sided not in _SIDED_MODES:
        raise UsageError(f"sidedness must be one of {', '.join(_SIDED_MODES)}, not '{sided}'")
    tail_key = _TAIL_WORDS.get(str(tail).upper() if tail else "")
    if tail_key is None:
        raise UsageError(f"Illegal tail '{tail}' after '-1sided': need 'RIGHT_TAIL' or 'LEFT_TAIL'")
    if (thresholds is None) == (pval is None):
        raise UsageError("give either thresholds or pval (p=P), not both or neither")
    nn = int(nn)
    if nn not in (1, 2, 3):
        raise UsageError(f"-NN must be 1, 2 or 3, not {nn}")
    size_option, size_arg = None, None
    if clust_nvox is not None and clust_vol is not None:
        raise UsageError("give -clust_nvox or -clust_vol, not both")
    if clust_nvox is not None or clust_vol is not None:
        size_option = "clust_nvox" if clust_nvox is not None else "clust_vol"
        size_arg = _arg_text(clust_nvox if clust_nvox is not None else clust_vol)
        size_value = c_atof(size_arg)
        if not size_value > 0:
            raise UsageError(
                f"Need the volume threshold to be >=0 (not {size_value:f}); "
                f"-{size_option} must be a positive number of voxels"
            )
        min_nvox = int(size_value)
    else:
        min_nvox = 0
    orient = normalize_orient(orient)

    # --- inputs --------------------------------------------------------------------------------
    inset_text = os.fspath(inset)
    path_text, selector = afni_io.split_selector(inset_text)
    full = afni_io.read_dataset(path_text)
    if selector is not None:
        selected = afni_io.parse_selector(selector, full.labels, source=path_text)
        dset = full.select(selected)
    else:
        selected = list(range(full.nvals))
        dset = full
    has_labels = not (naming.is_nifti(path_text) and "BRICK_LABS" not in full.attributes)
    ithr_index = _brick_index(ithr, dset, "ithr")
    idat_index = _brick_index(idat, dset, "idat") if idat is not None else None
    data_index = ithr_index if idat_index is None else idat_index
    code, params = dset.stat_codes[ithr_index], dset.stat_params[ithr_index]
    thr_datum, thr_factor = _brick_datum_and_factor(full, selected[ithr_index])
    datum, data_factor = _brick_datum_and_factor(full, selected[data_index])
    # Without -idat AFNI looks the data factor up at brick index -1: it is never applied.
    report_factor = data_factor if idat_index is not None else 0.0

    try:
        th = _resolve_thresholds(sided, thresholds, pval, tail_key, str(tail), code, params)
    except UsageError as err:  # name the dataset and sub-brick (issue 15)
        brick = f"[{ithr_index}] '{dset.labels[ithr_index]}'"
        raise UsageError(f"{inset_text} -ithr {brick}: {err}") from None

    thr = _stored_values(dset.brick(ithr_index), thr_datum, thr_factor)
    dat = _stored_values(dset.brick(data_index), datum, data_factor)
    mask_bool = None
    if mask is not None:
        mask_dset = afni_io.read_dataset(os.fspath(mask))
        if mask_dset.shape != dset.shape:
            raise InputDataError(
                f"mask {mask} has grid {mask_dset.shape} but {inset_text} has {dset.shape}; "
                "use a mask on the same grid"
            )
        mask_bool = mask_dset.brick(0) != 0
    low, high = th.low, th.high
    if thr_factor > 0:
        # Thresholds are compared with the stored integers of a scaled brick.
        low, high = (
            np.float32(low / np.float32(thr_factor)),
            np.float32(high / np.float32(thr_factor)),
        )

    # --- clusters (array level) ----------------------------------------------------------------
    origin, delta, dicom_axis = grid_geometry(dset)
    try:
        found = clusterize(
            thr,
            dat,
            thresholds=(float(low),) if sided == "1sided" else (float(low), float(high)),
            sided=sided,
            tail=tail_key,
            nn=nn,
            min_nvox=min_nvox,
            mask=mask_bool,
            orient=orient,
            abs_table_data=abs_table_data,
            data_factor=report_factor,
            grid=(origin, delta, dicom_axis),
        )
    except ValueError as err:
        raise InputDataError(f"{inset_text}: {err}") from None
    clusters = found.clusters
    too_many = found.too_many

    voxel_dims = tuple(abs(float(d)) for d in delta)
    label = f"{th.label_part}{size_option + ',' + size_arg + ',' if size_option else ''}NN{nn}"
    header = ReportHeader(
        prefix=naming.display_prefix(path_text),
        threshold_vol=_brick_ref(dset, ithr_index, has_labels),
        data_vol=_brick_ref(dset, idat_index, has_labels) if idat_index is not None else "(none)",
        option_label=label,
        threshold_text=th.text,
        aux_stat=_aux_stat_text(dset, ithr_index),
        min_nvox=min_nvox,
        voxel_dims=voxel_dims,
        nn=nn,
        datum=datum,
        orient=orient,
        mask=(mask_text or os.fspath(mask)) if mask is not None else None,
        abs_mean=abs_table_data,
    )
    report = format_report(
        header,
        [c.stats for c in clusters],
        factor=report_factor,
        quiet=quiet,
        nosum=nosum,
        one_d_format=one_d_format,
        report_zero=report_zero,
        too_many=too_many,
    )

    # --- outputs -------------------------------------------------------------------------------
    cluster_map = found.cluster_map
    if binary:
        cluster_map = (cluster_map > 0).astype(np.int16)
    write_vols = bool(clusters) or outvol_if_no_clust
    map_target = Path(pref_map) if pref_map is not None and write_vols else None
    dat_target = (
        Path(pref_dat) if pref_dat is not None and idat_index is not None and write_vols else None
    )
    mask_target = Path(out_mask) if out_mask is not None and mask_bool is not None else None
    if not overwrite:
        for target in (dat_target, map_target, mask_target):
            if target is not None and naming.dataset_exists(target):
                raise OutputError(
                    f"Can't overwrite existing dataset '{target}'; remove it or allow overwrite"
                )
    if command_line is None:
        command_line = _command_line(
            {
                "inset": inset_text,
                "ithr": ithr,
                "idat": idat,
                "mask": mask,
                sided: (pval and f"p={pval}") or thresholds,
                "NN": nn,
                size_option or "clust_nvox": size_arg,
                "pref_map": pref_map,
                "pref_dat": pref_dat,
            }
        )
    history = afni_io.history_entry(command_line)
    dat_path = map_path = None
    if dat_target is not None:
        dat_values = np.where(cluster_map > 0, dset.brick(data_index), 0)
        dat_values = dat_values.astype(_dat_dtype(dset.brick(data_index)))
        dat_dset = afni_io.AfniDataset(
            data=dat_values,
            affine=dset.affine,
            labels=[dset.labels[data_index]],
            stat_codes=[dset.stat_codes[data_index]],
            stat_params=[dset.stat_params[data_index]],
            space=dset.space,
            view=dset.view,
            history=dset.history,
        )
        dat_path = afni_io.write_dataset(dat_dset, dat_target, history=history, style="c")
    if map_target is not None:
        map_dset = afni_io.AfniDataset(
            data=cluster_map,
            affine=dset.affine,
            labels=[label],
            space=dset.space,
            view=dset.view,
            history=dset.history,
        )
        map_path = afni_io.write_dataset(
            map_dset,
            map_target,
            history=history,
            style="c",
            attributes={"INT_CMAP": 1},
            omit=("BRICK_KEYWORDS",),
        )
    if mask_target is not None:
        mask_out = afni_io.AfniDataset(
            data=mask_bool.astype(np.uint8),
            affine=dset.affine,
            labels=["mask"],
            space=dset.space,
            view=dset.view,
            history=dset.history,
        )
        afni_io.write_dataset(mask_out, mask_target, history=history, style="c")

    return ClusterizeResult(
        report_text=report,
        n_clusters=len(clusters),
        clusters=clusters,
        map_path=map_path,
        dat_path=dat_path,
        voxel_volume=voxel_dims[0] * voxel_dims[1] * voxel_dims[2],
        thresholds=(float(th.low), float(th.high)),
        option_label=label,
        orient=orient,
        cluster_map=cluster_map,
        core=found,
    )


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
