"""3dClusterize's text outputs, byte-identical to AFNI's: the cluster report (spec 07 §5, §7)
and the ``clusters.tsv`` table of this package (columns in docs/design.md).

Both directions for the report: :func:`format_report` writes it, :func:`parse_clusterize_report`
reads one (AFNI's or ours) back into a :class:`ClusterReport`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from afni_group.programs.clusterize.core import ClusterRow, ClusterStats, _sem

NO_CLUSTERS_LINE = "** NO CLUSTERS FOUND ***"

_ORIENT_PAIRS = {"R": "RL", "L": "LR", "A": "AP", "P": "PA", "I": "IS", "S": "SI"}

_SEPARATOR = "------" + "  -----" * 9 + "  -------" * 3 + "  -----" * 3

TSV_COLUMNS = (
    "cluster_id n_voxels volume_mm3 tail cm_x_rai cm_y_rai cm_z_rai peak_x_rai peak_y_rai "
    "peak_z_rai cm_x_lpi cm_y_lpi cm_z_lpi peak_x_lpi peak_y_lpi peak_z_lpi mean sem peak_value"
).split()


def fc7(value: float) -> str:
    """AFNI's 7-character number formatter ``MCW_fc7`` (07 §5.4), before ``%7s`` alignment."""
    q = float(np.float32(value))
    if math.isfinite(q) and q == int(q) and abs(q) < 100000:
        return " %d" % q if q >= 0 else "%d" % q
    if not math.isfinite(q) or q == 0:
        return "%7.1e" % q
    lv = int(10.0001 + math.log10(abs(q)))
    if 7 <= lv <= 10:
        text = "%7.4f" % q
    elif lv == 11:
        text = "%7.3f" % q
    elif lv == 12:
        text = "%7.2f" % q
    elif lv == 13:
        text = "%7.1f" % q
    elif lv == 14:
        return "%7.0f" % q
    else:
        return "%7.1e" % q if q > 0 else "%7.0e" % q
    # Strip trailing zeros at positions 6 down to 2 (the point stays unless all decimals go).
    for pos in range(6, 1, -1):
        if pos < len(text) and text[pos] == "0":
            text = text[:pos]
        else:
            break
    return text


def cluster_table_row(stats: ClusterStats, one_d_format: bool = True) -> str:
    """One report row: ``%6.0f`` volume, ``%5.1f`` coordinates, ``fc7`` values, trailing blank."""
    fields = [stats.cm[0], stats.cm[1], stats.cm[2]]
    for a in range(3):
        fields += [stats.bbox_min[a], stats.bbox_max[a]]
    coords = "  ".join("%5.1f" % float(x) for x in fields)
    values = "  ".join("%7s" % fc7(x) for x in (stats.mean, stats.sem, stats.peak_value))
    peak = "  ".join("%5.1f" % float(x) for x in stats.peak_xyz)
    lead = " " if one_d_format else ""
    return f"{lead}{stats.n_voxels:6.0f}  {coords}  {values}  {peak} \n"


def total_line(
    stats: list[ClusterStats],
    factor: float = 0.0,
    abs_mean: bool = False,
    one_d_format: bool = True,
) -> str:
    """The total line over all reported clusters (07 §5.5)."""
    n = sum(s.n_voxels for s in stats)
    sum_v = sum_m = sum_mm = 0.0
    sum_mx = np.zeros(3)
    for s in stats:
        sum_v, sum_m, sum_mm = sum_v + s.sum_v, sum_m + s.sum_m, sum_mm + s.sum_mm
        sum_mx = sum_mx + s.sum_mx
    f = float(np.float32(factor))
    mean = (sum_m if abs_mean else sum_v) / n
    if f != 0.0:
        mean, sum_mm = mean * f, sum_mm * f * f
    sem = _sem(sum_mm, mean, n)
    cm = sum_mx / sum_m
    lead = "#" if one_d_format else ""
    return (
        f"{lead}{float(n):6.0f}  {cm[0]:5.1f}  {cm[1]:5.1f}  {cm[2]:5.1f}"
        + " " * 44
        + "%7s  %7s" % (fc7(np.float32(mean)), fc7(np.float32(sem)))
        + " " * 29
        + "\n"
    )


@dataclass
class ReportHeader:
    """The substituted values of the report header (07 §5.1–5.2)."""

    prefix: str
    threshold_vol: str
    data_vol: str
    option_label: str
    threshold_text: str
    aux_stat: str
    min_nvox: int
    voxel_dims: tuple[float, float, float]
    nn: int
    datum: str
    orient: str = "RAI"
    mask: str | None = None
    abs_mean: bool = False


def format_header(h: ReportHeader, one_d_format: bool = True) -> str:
    """The header block, from ``#`` to the first separator line, each line ending in ``\\n``."""
    dx, dy, dz = (abs(float(v)) for v in h.voxel_dims)
    voxel_volume = dx * dy * dz
    c = "#" if one_d_format else ""
    lines = [
        c,
        f"{c}  Cluster report ",
        f"{c}[ Dataset prefix      = {h.prefix} ]",
        f"{c}[ Threshold vol       = {h.threshold_vol} ]",
        f"{c}[ Supplement dat vol  = {h.data_vol} ]",
        f"{c}[ Option summary      = {h.option_label} ]",
        f"{c}[ Threshold value(s)  = {h.threshold_text} ]",
        f"{c}[ Aux. stat. info.    = {h.aux_stat} ]",
        f"{c}[ Nvoxel threshold    = {h.min_nvox:d};  Volume threshold = "
        f"{h.min_nvox * voxel_volume:.3f} ]",
        f"{c}[ Single voxel volume = {voxel_volume:.3f} (microliters) ]",
        f"{c}[ Neighbor type, NN   = {h.nn:d} ]",
        f"{c}[ Voxel datum type    = {h.datum} ]",
        f"{c}[ Voxel dimensions    = {dx:.3f} mm X {dy:.3f} mm X {dz:.3f} mm ]",
        f"{c}[ Coordinates Order   = {h.orient} ]",
    ]
    if h.mask is not None:
        lines.append(f"{c}[ Mask                = {h.mask} ]")
    if h.abs_mean:
        lines.append(f"{c}[ Mean and SEM based on absolute value of voxel intensities ]")
    else:
        lines.append(f"{c}[ Mean and SEM based on signed voxel intensities ]")
    pairs = [_ORIENT_PAIRS[letter] for letter in h.orient]
    columns = (
        "Volume  "
        + "  ".join(f"CM {p}" for p in pairs)
        + "  "
        + "  ".join(f"min{p}  max{p}" for p in pairs)
        + "    Mean     SEM    Max Int  "
        + "  ".join(f"MI {p}" for p in pairs)
    )
    lines += [c, c + columns, c + _SEPARATOR]
    return "\n".join(lines) + "\n"


def format_report(
    header: ReportHeader | None,
    stats: list[ClusterStats],
    *,
    factor: float = 0.0,
    quiet: bool = False,
    nosum: bool = False,
    one_d_format: bool = True,
    report_zero: bool = False,
    too_many: bool = False,
) -> str:
    """The whole stdout text of 3dClusterize (07 §5 and §7)."""
    c = "#" if one_d_format else ""
    if not stats:
        return f"{c}{NO_CLUSTERS_LINE}\n" + (" 0\n" if report_zero else "")
    abs_mean = header.abs_mean if header is not None else False
    parts = []
    if too_many:
        parts.append("#** TOO MANY CLUSTERS TO SORT BY VOLUME ***\n")
    if not quiet and header is not None:
        parts.append(format_header(header, one_d_format))
    parts += [cluster_table_row(s, one_d_format) for s in stats]
    if len(stats) > 1 and not nosum:
        if not quiet:
            parts.append(c + _SEPARATOR + "\n")
        parts.append(total_line(stats, factor, abs_mean, one_d_format))
    return "".join(parts)


def _tsv_number(value: float, decimals: int) -> str:
    text = f"{float(value) + 0.0:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def format_clusters_tsv(
    table: Sequence[ClusterRow],
    extra_columns: Sequence[str] = (),
    extra: Sequence[Mapping[str, str]] = (),
) -> str:
    """``clusters.tsv`` text: the header line, then one row per cluster (header only if none).

    Coordinates with 2 decimals, volume with 3, mean/SEM/peak value with ``%.6g``.
    ``extra_columns`` are appended after :data:`TSV_COLUMNS`, one cell per cluster from
    ``extra`` (``n/a`` where a cell is missing).
    """
    rows = [
        [
            str(r.cluster_id),
            str(r.n_voxels),
            _tsv_number(r.volume_mm3, 3),
            r.tail,
            *(_tsv_number(v, 2) for v in r.cm_rai),
            *(_tsv_number(v, 2) for v in r.peak_rai),
            *(_tsv_number(v, 2) for v in r.cm_lpi),
            *(_tsv_number(v, 2) for v in r.peak_lpi),
            "%.6g" % r.mean,
            "%.6g" % r.sem,
            "%.6g" % r.peak_value,
        ]
        for r in table
    ]
    for row, cells in zip(rows, extra, strict=False):
        row += [cells.get(k, "n/a") for k in extra_columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow([*TSV_COLUMNS, *extra_columns])
    writer.writerows(rows)
    return buffer.getvalue()


# ---------------------------------------------------------------- reading a report back

_NVOX = re.compile(r"Nvoxel threshold\s*=\s*(\d+)")
_VOXEL_VOLUME = re.compile(r"Single voxel volume = ([0-9.eE+-]+)")
#: values of a cluster row: volume, CM (3), extents (6), mean, SEM, max intensity, MI (3)
_ROW_VALUES = 16


@dataclass
class ClusterReport:
    """A 3dClusterize report as printed: its ``#`` lines and its table rows.

    Attributes
    ----------
    header : list of str
        The comment lines, trailing blanks removed (the header, and the total line of
        :func:`total_line`).
    rows : list of str
        The other non-blank lines, trailing blanks removed: one per cluster.
    no_clusters : bool
        The report says ``NO CLUSTERS FOUND`` (its rows then hold at most ``-report_zero``'s 0).
    voxel_volume : float
        ``Single voxel volume`` in microliters (mm³), NaN when not printed.
    """

    header: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    no_clusters: bool = False
    voxel_volume: float = float("nan")

    @property
    def n_clusters(self) -> int:
        """Clusters reported: 0 for ``NO CLUSTERS FOUND``, else the table rows."""
        return 0 if self.no_clusters else len(self.rows)

    @property
    def nvox(self) -> int | None:
        """The cluster-size threshold (``Nvoxel threshold = N``), None when not printed."""
        for line in self.header:
            match = _NVOX.search(line)
            if match:
                return int(match.group(1))
        return None

    @property
    def sizes(self) -> list[int]:
        """Voxel count of each row (its first column)."""
        return [int(float(row.split()[0])) for row in self.rows]

    def table_rows(self, sided: str = "bisided") -> list[dict]:
        """The :data:`TSV_COLUMNS` of each cluster row, as numbers (RAI from the report; LPI
        with x and y negated; volume from the single-voxel volume; tail from the peak's sign,
        ``both`` for ``2sided``), for runs whose ``clusters.tsv`` is missing."""
        out = []
        for line in self.rows:
            f = [float(v) for v in line.split()]
            if len(f) < _ROW_VALUES:
                continue
            n, cm, mean, sem, peak, mi = int(f[0]), f[1:4], f[10], f[11], f[12], f[13:16]
            row = {
                "cluster_id": len(out) + 1,
                "n_voxels": n,
                "volume_mm3": n * self.voxel_volume,
                "tail": "both" if sided == "2sided" else ("pos" if peak >= 0 else "neg"),
                "mean": mean,
                "sem": sem,
                "peak_value": peak,
            }
            for prefix, xyz in (("cm", cm), ("peak", mi)):
                for axis, value, flip in zip("xyz", xyz, (-1, -1, 1), strict=True):
                    row[f"{prefix}_{axis}_rai"] = value
                    row[f"{prefix}_{axis}_lpi"] = flip * value + 0.0
            out.append(row)
        return out


def parse_clusterize_report(text: str) -> ClusterReport:
    """Split a 3dClusterize report text into its ``#`` lines and table rows."""
    volume = _VOXEL_VOLUME.search(text)
    report = ClusterReport(
        no_clusters="NO CLUSTERS FOUND" in text,
        voxel_volume=float(volume.group(1)) if volume else float("nan"),
    )
    for line in text.splitlines():
        if line.startswith("#"):
            report.header.append(line.rstrip())
        elif line.strip():
            report.rows.append(line.rstrip())
    return report
