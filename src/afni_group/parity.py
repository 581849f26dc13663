"""Engine parity: compare the outputs of a native and an afni run of the same analysis.

Both engines run one plan, so their outputs must agree: 3dMEMA bricks to a relative tolerance,
the group mask and the mean ACF exactly, the 3dClustSim tables within Monte-Carlo error (the
engines draw different random numbers), and the cluster reports and cluster tables row for row
whenever both runs used the same cluster-size threshold (or no cluster lies between the two).

Command line (prints one line per check, exit 0 when nothing differs, 1 when a check fails,
64 usage error, 66 an output folder or a file both runs need is missing)::

    python -m afni_group.parity NATIVE_OUT AFNI_OUT [--json parity.json] [--rtol 1e-4] [--z-max 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from afni_group.errors import EXIT_FAILURE, EXIT_NO_INPUT, EXIT_OK, EXIT_USAGE
from afni_group.plan import CLUSTSIM_PREFIX, MASK_FILE, MEMA_FILE
from afni_group.programs.checks import NEIGHBOURHOODS, SIDEDNESS
from afni_group.programs.clusterize.formats import ClusterReport, parse_clusterize_report
from afni_group.programs.clustsim.core import ClustSimTable
from afni_group.programs.clustsim.formats import (
    clustsim_table_name,
    parse_clustsim_1d,
    parse_niml_attributes,
    read_text_table,
)

PASS, FAIL, SKIP, INFO = "PASS", "FAIL", "SKIP", "INFO"

#: 3dMEMA bricks: largest allowed |native - afni| / max(|native|, |afni|) per voxel.
DEFAULT_RTOL = 1e-4
#: 3dMEMA bricks: values below this fraction of a brick's largest |value| count as this size.
MEMA_FLOOR = 1e-3
#: ClustSim cells: largest allowed |z| of the exceedance-probability difference.
DEFAULT_Z_MAX = 5.0
#: ClustSim cells: largest allowed fraction of cells with |z| > 3 (0.27 % expected by chance).
MAX_FRACTION_OVER_3 = 0.01


@dataclass
class Check:
    """One comparison: a name, PASS/FAIL/SKIP/INFO, one line of detail and the figures."""

    name: str
    status: str
    detail: str
    values: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.status} {self.name}: {self.detail}"


# ----------------------------------------------------------------------------------------------
# 3dMEMA bricks and the mask
# ----------------------------------------------------------------------------------------------


def _afni_attributes(image) -> dict:
    """The AFNI attributes of a NIfTI's AFNI extension (code 4), parsed by :mod:`afni_io`."""
    from afni_group.afni_io import parse_afni_extension

    for ext in image.header.extensions:
        if ext.get_code() == 4:
            return parse_afni_extension(ext.get_content())[0]
    return {}


def relative_error(a: np.ndarray, b: np.ndarray, floor: float = MEMA_FLOOR) -> np.ndarray:
    """Voxelwise |a - b| / max(|a|, |b|, floor * largest |value| of the brick), 0 where all 0.

    The floor keeps values that are zero up to rounding (e.g. tau or I2 of 1e-15 where the
    estimate is clipped at 0) from counting as large relative differences.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    top = max(float(np.abs(a).max(initial=0)), float(np.abs(b).max(initial=0)))
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), floor * top)
    diff = np.abs(a - b)
    out = np.zeros_like(diff)
    np.divide(diff, scale, out=out, where=scale > 0)
    return out


def compare_mema(native: Path, afni: Path, name: str, rtol: float = DEFAULT_RTOL) -> Check:
    """3dMEMA output: same grid, labels and statistic parameters; every brick within ``rtol``."""
    import nibabel as nib

    a_img, b_img = nib.load(str(native)), nib.load(str(afni))
    a = np.asarray(a_img.dataobj, dtype=np.float64)
    b = np.asarray(b_img.dataobj, dtype=np.float64)
    if a.shape != b.shape or not np.allclose(a_img.affine, b_img.affine, atol=1e-4):
        return Check(name, FAIL, f"grids differ: {a.shape} vs {b.shape}")
    a = a.reshape(a.shape[:3] + (-1,))
    b = b.reshape(b.shape[:3] + (-1,))
    worst = [float(relative_error(a[..., i], b[..., i]).max()) for i in range(a.shape[3])]
    attrs = [_afni_attributes(img) for img in (a_img, b_img)]
    labels = [(at.get("BRICK_LABS") or "").rstrip("\0") or None for at in attrs]
    stataux = [at.get("BRICK_STATAUX") for at in attrs]
    values = {
        "bricks": a.shape[3],
        "max_rel_error": worst,
        "rtol": rtol,
        "floor": MEMA_FLOOR,
        "labels": labels[0],
    }
    problems = []
    if labels[0] != labels[1]:
        problems.append(f"brick labels differ: {labels[0]!r} vs {labels[1]!r}")
    if stataux[0] != stataux[1]:
        problems.append("statistic parameters (BRICK_STATAUX) differ")
    bad = [i for i, err in enumerate(worst) if not err <= rtol]
    if bad:
        problems.append(f"bricks {bad} differ by up to {max(worst[i] for i in bad):.3g} relative")
    if problems:
        return Check(name, FAIL, "; ".join(problems), values)
    return Check(
        name,
        PASS,
        f"{a.shape[3]} bricks, max relative difference {max(worst):.3g} (<= {rtol:g}), "
        "same labels and statistic parameters",
        values,
    )


def compare_mask(native: Path, afni: Path, name: str) -> Check:
    """Group mask: identical voxels on the same grid."""
    import nibabel as nib

    a_img, b_img = nib.load(str(native)), nib.load(str(afni))
    a, b = np.asanyarray(a_img.dataobj), np.asanyarray(b_img.dataobj)
    if a.shape != b.shape or not np.allclose(a_img.affine, b_img.affine, atol=1e-4):
        return Check(name, FAIL, f"grids differ: {a.shape} vs {b.shape}")
    differing = int(np.count_nonzero(a != b))
    values = {"voxels_native": int(np.count_nonzero(a)), "voxels_afni": int(np.count_nonzero(b))}
    if differing:
        return Check(name, FAIL, f"{differing} voxels differ", values)
    return Check(name, PASS, f"identical ({values['voxels_native']} voxels)", values)


# ----------------------------------------------------------------------------------------------
# ACF and 3dClustSim
# ----------------------------------------------------------------------------------------------


def clustsim_command(table_1d: Path) -> str:
    """The 3dClustSim command line a .1D table records in its first line."""
    return read_text_table(table_1d).header[0].lstrip("#").strip()


def acf_of(command: str) -> list[str] | None:
    """The three ``-acf`` numbers of a 3dClustSim command line, as written."""
    match = re.search(r"-acf\s+(\S+)\s+(\S+)\s+(\S+)", command)
    return list(match.groups()) if match else None


def compare_acf(native: Path, afni: Path, name: str) -> Check:
    """Mean ACF handed to 3dClustSim: the same three numbers, digit for digit."""
    cmd_a, cmd_b = clustsim_command(native), clustsim_command(afni)
    acf_a, acf_b = acf_of(cmd_a), acf_of(cmd_b)
    values = {"native": acf_a, "afni": acf_b, "same_command": cmd_a == cmd_b}
    if acf_a is None or acf_a != acf_b:
        return Check(name, FAIL, f"ACF differs: {acf_a} vs {acf_b}", values)
    same = "identical 3dClustSim command" if cmd_a == cmd_b else "3dClustSim commands differ"
    return Check(name, PASS, f"identical: {' '.join(acf_a)} ({same})", values)


def read_table(path: Path) -> ClustSimTable:
    """A 3dClustSim .1D table as printed (pthr rows, alpha columns, sizes)."""
    try:
        return parse_clustsim_1d(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not a 3dClustSim table ({err})") from err


def iterations_of(niml: Path, default: int = 10000) -> int:
    """Number of simulated volumes behind a table (the ``iter`` of its .niml twin)."""
    if niml.is_file():
        iterations = parse_niml_attributes(niml.read_text()).get("iter", "")
        if iterations.isdigit():
            return int(iterations)
    return default


def alpha_interval(value: float, alphas: np.ndarray, sizes: np.ndarray) -> tuple[float, float]:
    """The alpha range at which one table row reaches cluster size ``value``.

    Sizes grow as alpha falls. Between columns, log(alpha) is interpolated linearly in
    log(size); a value equal to several columns (flat row) maps to their whole range; beyond
    the table the two outermost distinct columns are extrapolated.
    """
    order = np.argsort(-alphas)  # alpha descending = size ascending
    al, sz = alphas[order], sizes[order]
    equal = np.isclose(sz, value, rtol=0, atol=1e-9)
    if equal.any():
        return float(al[equal].min()), float(al[equal].max())
    uniq_sz, idx = np.unique(sz, return_index=True)
    uniq_al = al[idx]
    if len(uniq_sz) < 2:
        return (0.0, 1.0)  # a constant row says nothing about other sizes
    ls, la = np.log(np.maximum(uniq_sz, 1e-9)), np.log(uniq_al)
    lv = math.log(max(value, 1e-9))
    if lv < ls[0]:
        j = (0, 1)
    elif lv > ls[-1]:
        j = (-2, -1)
    else:
        a = float(np.exp(np.interp(lv, ls, la)))
        return a, a
    slope = (la[j[1]] - la[j[0]]) / (ls[j[1]] - ls[j[0]])
    a = float(np.clip(np.exp(la[j[0]] + slope * (lv - ls[j[0]])), 1e-9, 1.0))
    return a, a


def _distance(alpha: float, interval: tuple[float, float]) -> float:
    lo, hi = interval
    return 0.0 if lo <= alpha <= hi else (lo - alpha if alpha < lo else hi - alpha)


def clustsim_z(
    alphas: np.ndarray, sizes_a: np.ndarray, sizes_b: np.ndarray, n_a: int, n_b: int
) -> np.ndarray:
    """z of each cell: how far apart two independent tables are in exceedance probability.

    For cell (p, alpha), table A's size is placed on table B's row (and B's on A's) to read
    the alpha at which the other table reaches it; the mean of the two alpha shifts, divided by
    the binomial standard error sqrt(alpha (1 - alpha) (1/n_a + 1/n_b)), is the cell's z.
    """
    z = np.zeros(sizes_a.shape)
    for i in range(sizes_a.shape[0]):
        for j, alpha in enumerate(alphas):
            d1 = _distance(alpha, alpha_interval(sizes_a[i, j], alphas, sizes_b[i]))
            d2 = _distance(alpha, alpha_interval(sizes_b[i, j], alphas, sizes_a[i]))
            se = math.sqrt(alpha * (1 - alpha) * (1 / n_a + 1 / n_b))
            z[i, j] = (d1 - d2) / 2 / se
    return z


def compare_clustsim(
    native_dir: Path, afni_dir: Path, name: str, z_max: float = DEFAULT_Z_MAX
) -> Check:
    """All 9 tables: same rows and columns, cells within Monte-Carlo error.

    FAIL when a cell's |z| exceeds ``z_max`` or more than 1 % of the cells exceed 3 (a shift
    shared by many cells: a bias rather than noise). The values also hold each table's signed
    mean relative difference (native - afni) / afni, in percent.
    """
    worst: dict[str, float] = {}
    shift: dict[str, float] = {}
    over3 = cells = 0
    for nn in NEIGHBOURHOODS:
        for sided in SIDEDNESS:
            one_d = clustsim_table_name(CLUSTSIM_PREFIX, nn, sided, "1D")
            niml = clustsim_table_name(CLUSTSIM_PREFIX, nn, sided, "niml")
            stem = one_d.removesuffix(".1D")
            ta = read_table(native_dir / one_d)
            tb = read_table(afni_dir / one_d)
            pa, aa, sa = ta.pthr, ta.athr, ta.sizes
            pb, ab, sb = tb.pthr, tb.athr, tb.sizes
            if not (np.array_equal(pa, pb) and np.array_equal(aa, ab)):
                return Check(name, FAIL, f"{one_d}: different pthr rows or alpha columns")
            n_a = iterations_of(native_dir / niml)
            n_b = iterations_of(afni_dir / niml)
            z = np.abs(clustsim_z(aa, sa, sb, n_a, n_b))
            worst[stem] = round(float(z.max()), 3)
            shift[stem] = round(float(np.mean(sa[sb > 0] / sb[sb > 0] - 1) * 100), 2)
            over3 += int(np.count_nonzero(z > 3))
            cells += z.size
    top = max(worst, key=worst.get)
    values = {
        "max_abs_z": worst,
        "mean_rel_diff_percent": shift,
        "cells": cells,
        "cells_over_3": over3,
        "z_max": z_max,
        "max_fraction_over_3": MAX_FRACTION_OVER_3,
    }
    ok = worst[top] <= z_max and over3 <= MAX_FRACTION_OVER_3 * cells
    mean_shift = float(np.mean(list(shift.values())))
    return Check(
        name,
        PASS if ok else FAIL,
        f"{len(worst)} tables, {cells} cells: max |z| {worst[top]:.2f} ({top}), "
        f"{over3} cells over 3 (limits {z_max:g}, {MAX_FRACTION_OVER_3:.0%}); "
        f"native - afni {mean_shift:+.1f} % on average",
        values,
    )


# ----------------------------------------------------------------------------------------------
# Cluster reports and cluster tables
# ----------------------------------------------------------------------------------------------


def read_report(path: Path) -> ClusterReport:
    """A 3dClusterize report file, split by :func:`parse_clusterize_report`."""
    return parse_clusterize_report(path.read_text())


def _header(report: ClusterReport, without_nvox: bool) -> list[str]:
    """Header lines but the threshold line; without the cluster-size option when the two
    thresholds differ."""
    return [
        ln
        for ln in report.header
        if "Nvoxel threshold" not in ln and not (without_nvox and "clust_nvox" in ln)
    ]


def _rows_close(a: list[str], b: list[str], rtol: float) -> bool:
    """Rows equal as text, or as numbers within ``rtol`` (last-digit rounding of floats)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b, strict=True):
        if ra == rb:
            continue
        ta, tb = ra.split(), rb.split()
        if len(ta) != len(tb):
            return False
        for x, y in zip(ta, tb, strict=True):
            if x == y:
                continue
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                return False
            if not math.isclose(fx, fy, rel_tol=rtol, abs_tol=10 ** -_decimals(x)):
                return False
    return True


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def _read_tsv(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return ["\t".join(row) for row in csv.reader(fh, delimiter="\t")]


def compare_clusters(
    native_dir: Path, afni_dir: Path, report_name: str, name: str, rtol: float = DEFAULT_RTOL
) -> Check:
    """One 3dClusterize report (and its cluster table and map): the same clusters.

    Compared when both runs used the same cluster-size threshold, or when every cluster in both
    reports is at least as large as the larger threshold (the threshold difference then decided
    nothing); otherwise SKIP, with both thresholds.
    """
    ra, rb = read_report(native_dir / report_name), read_report(afni_dir / report_name)
    values = {"nvox_native": ra.nvox, "nvox_afni": rb.nvox, "clusters": len(ra.rows)}
    if ra.nvox != rb.nvox:
        high = max(ra.nvox or 0, rb.nvox or 0)
        if not all(s >= high for s in ra.sizes + rb.sizes):
            return Check(
                name,
                SKIP,
                f"cluster-size thresholds differ ({ra.nvox} vs {rb.nvox} voxels) and a cluster "
                "lies between them: not comparable",
                values,
            )
    problems = []
    if _header(ra, ra.nvox != rb.nvox) != _header(rb, ra.nvox != rb.nvox):
        problems.append("report headers differ")
    if not _rows_close(ra.rows, rb.rows, rtol):
        problems.append(f"report rows differ ({len(ra.rows)} vs {len(rb.rows)} clusters)")
    tsv = report_name.replace("_report_", "_clusters_").replace(".txt", ".tsv")
    ta, tb = _read_tsv(native_dir / tsv), _read_tsv(afni_dir / tsv)
    if (ta or tb) and not _rows_close(ta, tb, rtol):
        problems.append(f"{tsv} rows differ")
    map_name = report_name.replace("_report_", "_map_").replace(".txt", ".nii.gz")
    if (native_dir / map_name).is_file() or (afni_dir / map_name).is_file():
        problems.extend(_compare_map(native_dir / map_name, afni_dir / map_name))
    if problems:
        return Check(name, FAIL, "; ".join(problems), values)
    how = (
        f"same threshold ({ra.nvox} voxels)"
        if ra.nvox == rb.nvox
        else f"thresholds {ra.nvox} vs {rb.nvox} voxels, no cluster between them"
    )
    return Check(name, PASS, f"{len(ra.rows)} clusters, same report rows and map; {how}", values)


def _compare_map(a: Path, b: Path) -> list[str]:
    import nibabel as nib

    if not (a.is_file() and b.is_file()):
        return [f"{a.name} written by one run only"]
    da = np.asanyarray(nib.load(str(a)).dataobj)
    db = np.asanyarray(nib.load(str(b)).dataobj)
    if da.shape != db.shape or not np.array_equal(da, db):
        return [f"{a.name} differs"]
    return []


def compare_threshold(native_dir: Path, afni_dir: Path, name: str) -> Check:
    """The cluster-size threshold both runs read from their own tables (INFO: Monte Carlo)."""
    reports = sorted(p.name for p in native_dir.glob("clust_*_report_*.txt"))
    if not reports:
        return Check(name, SKIP, "no cluster report")
    ra, rb = read_report(native_dir / reports[0]), read_report(afni_dir / reports[0])
    values = {"native": ra.nvox, "afni": rb.nvox}
    if ra.nvox == rb.nvox:
        return Check(name, PASS, f"both {ra.nvox} voxels", values)
    return Check(name, INFO, f"{ra.nvox} vs {rb.nvox} voxels (Monte-Carlo difference)", values)


# ----------------------------------------------------------------------------------------------
# Whole runs
# ----------------------------------------------------------------------------------------------


def required_files(analysis_dir: Path) -> list[str]:
    """Files both runs must have in one analysis folder (3dMEMA, mask, tables, reports)."""
    tables = [
        clustsim_table_name(CLUSTSIM_PREFIX, nn, sided, ext)
        for nn in NEIGHBOURHOODS
        for sided in SIDEDNESS
        for ext in ("1D", "niml")
    ]
    reports = sorted(p.name for p in analysis_dir.glob("clust_*_report_*.txt"))
    return [MEMA_FILE, *tables, *reports]


def compare_analysis(
    native: Path, afni: Path, rtol: float = DEFAULT_RTOL, z_max: float = DEFAULT_Z_MAX
) -> list[Check]:
    """Every check for one ``analysis-*`` folder present in both runs."""
    tag = native.name
    checks = []
    missing = [
        f"{who}/{f}"
        for who, d in (("native", native), ("afni", afni))
        for f in required_files(native) + required_files(afni)
        if not (d / f).is_file()
    ]
    if missing:
        checks.append(Check(f"{tag}/files", FAIL, "missing: " + ", ".join(sorted(set(missing)))))
        return checks
    checks.append(Check(f"{tag}/files", PASS, f"{len(required_files(native))} files in both runs"))
    checks.append(compare_mema(native / MEMA_FILE, afni / MEMA_FILE, f"{tag}/3dMEMA", rtol))
    if (native / MASK_FILE).is_file() and (afni / MASK_FILE).is_file():
        checks.append(compare_mask(native / MASK_FILE, afni / MASK_FILE, f"{tag}/mask"))
    table = clustsim_table_name(CLUSTSIM_PREFIX, 1, "1sided", "1D")
    checks.append(compare_acf(native / table, afni / table, f"{tag}/ACF"))
    checks.append(compare_clustsim(native, afni, f"{tag}/3dClustSim", z_max))
    checks.append(compare_threshold(native, afni, f"{tag}/cluster-size-threshold"))
    for report in sorted(p.name for p in native.glob("clust_*_report_*.txt")):
        label = report.split("_report_", 1)[1].removesuffix(".txt")
        checks.append(compare_clusters(native, afni, report, f"{tag}/clusters/{label}", rtol))
    return checks


def compare_runs(
    native_out: Path, afni_out: Path, rtol: float = DEFAULT_RTOL, z_max: float = DEFAULT_Z_MAX
) -> list[Check]:
    """Every check for two output folders of the same analysis, one per engine."""
    native_out, afni_out = Path(native_out), Path(afni_out)
    names_n = {p.name for p in native_out.glob("analysis-*") if p.is_dir()}
    names_a = {p.name for p in afni_out.glob("analysis-*") if p.is_dir()}
    checks = []
    if names_n != names_a or not names_n:
        checks.append(
            Check(
                "analyses",
                FAIL,
                f"analysis folders differ: {sorted(names_n)} vs {sorted(names_a)}",
            )
        )
    for name in sorted(names_n & names_a):
        checks.extend(compare_analysis(native_out / name, afni_out / name, rtol, z_max))
    for out, engine in ((native_out, "native"), (afni_out, "afni")):
        checks.append(_engine_check(out, engine))
    return checks


def _engine_check(out: Path, expected: str) -> Check:
    """Which engine wrote the folder (params.json), so a swapped pair is caught."""
    try:
        engine = json.loads((out / "params.json").read_text()).get("engine")
    except (OSError, ValueError):
        return Check(f"engine/{expected}", FAIL, f"no readable params.json in {out}")
    status = PASS if engine == expected else FAIL
    return Check(f"engine/{expected}", status, f"{out} was written by engine {engine!r}")


def summary(checks: list[Check]) -> dict[str, int]:
    return {s: sum(c.status == s for c in checks) for s in (PASS, FAIL, SKIP, INFO)}


def write_json(path: Path, native_out: Path, afni_out: Path, checks: list[Check]) -> None:
    """parity.json: both folders, every check, and the counts (written via a temporary name)."""
    data = {
        "native": str(native_out),
        "afni": str(afni_out),
        "summary": summary(checks),
        "checks": [asdict(c) for c in checks],
    }
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit 64 (BEP027), not 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m afni_group.parity",
        description="Compare a native and an afni run of the same afni-group analysis.",
    )
    parser.add_argument("native_out", type=Path, help="OUTPUT_DIR of the --engine native run")
    parser.add_argument("afni_out", type=Path, help="OUTPUT_DIR of the --engine afni run")
    parser.add_argument("--json", type=Path, help="write every check to this JSON file")
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="3dMEMA tolerance")
    parser.add_argument("--z-max", type=float, default=DEFAULT_Z_MAX, help="ClustSim |z| limit")
    args = parser.parse_args(argv)
    for out in (args.native_out, args.afni_out):
        if not (out / "params.json").is_file():
            print(
                f"parity: {out} is not an afni-group output folder (no params.json)",
                file=sys.stderr,
            )
            return EXIT_NO_INPUT
    checks = compare_runs(args.native_out, args.afni_out, args.rtol, args.z_max)
    for check in checks:
        print(check.line())
    counts = summary(checks)
    print(
        f"parity: {counts[PASS]} pass, {counts[FAIL]} fail, {counts[SKIP]} skip, {counts[INFO]} info"
    )
    if args.json:
        write_json(args.json, args.native_out, args.afni_out, checks)
    return EXIT_FAILURE if counts[FAIL] else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
