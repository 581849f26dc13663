"""Engine parity: compare the outputs of a native and an afni run of the same analysis.

Both engines run one plan, so their outputs must agree: the group model's bricks (3dMEMA's or
3dttest++'s, with labels and statistic parameters) to a relative tolerance, the group mask and
the mean ACF exactly, the ClustSim tables within Monte-Carlo error (the engines draw different
random numbers; with ``--clustsim randomise``, the same ``--seed`` and ``--n-cpus`` the two
3dttest++ -Clustsim runs draw the same signs, so their tables are reported identical when they
are), and the cluster reports and cluster tables row for row whenever both runs used the same
cluster-size threshold (or no cluster lies between the two).

Command line (prints one line per check, exit 0 when nothing differs, 1 when a check fails,
64 usage error, 66 an output folder or a file both runs need is missing)::

    python -m afni_group.parity NATIVE_OUT AFNI_OUT [--json parity.json] [--rtol 1e-4] [--z-max 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from afni_group.errors import EXIT_FAILURE, EXIT_NO_INPUT, EXIT_OK, EXIT_USAGE

# the checks and the ClustSim table comparisons live in parity_tables (re-exported here)
from afni_group.parity_tables import (  # noqa: F401
    DEFAULT_Z_MAX,
    FAIL,
    INFO,
    MAX_FRACTION_OVER_3,
    PASS,
    SKIP,
    Check,
    alpha_interval,
    clustsim_z,
    compare_acf,
    compare_clustsim,
    iterations_of,
)
from afni_group.plan import CLUSTSIM_PREFIX, MASK_FILE, MEMA_FILE, clustsim_table_prefix
from afni_group.programs.checks import NEIGHBOURHOODS, SIDEDNESS
from afni_group.programs.clusterize.formats import ClusterReport, parse_clusterize_report
from afni_group.programs.clustsim.formats import clustsim_table_name

#: 3dMEMA bricks: largest allowed |native - afni| / max(|native|, |afni|) per voxel.
DEFAULT_RTOL = 1e-4
#: 3dMEMA bricks: values below this fraction of a brick's largest |value| count as this size.
MEMA_FLOOR = 1e-3
#: 3dttest++ bricks: float32 arithmetic in AFNI's order in both engines, so a few float32 ulps
TTEST_RTOL = 1e-6


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
        "no clusters in either run"
        if not ra.rows and not rb.rows
        else f"same threshold ({ra.nvox} voxels)"
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
    a, b = (_cluster_size_threshold(d, reports[0]) for d in (native_dir, afni_dir))
    values = {"native": a, "afni": b}
    if a == b:
        return Check(name, PASS, f"both {a} voxels", values)
    return Check(name, INFO, f"{a} vs {b} voxels (Monte-Carlo difference)", values)


def _cluster_size_threshold(adir: Path, report: str) -> int | None:
    """The threshold a run used: its cluster report's, or (a report of no clusters does not
    print it) params.json's."""
    nvox = read_report(adir / report).nvox
    if nvox is not None:
        return nvox
    try:
        doc = json.loads((adir.parent / "params.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    entry = next((a for a in doc.get("analyses", []) if a.get("dir") == adir.name), {})
    return entry.get("cluster_size_threshold")


# ----------------------------------------------------------------------------------------------
# Whole runs
# ----------------------------------------------------------------------------------------------


@dataclass
class Settings:
    """What a run's params.json says about the analyses to compare (the defaults: 3dMEMA)."""

    program: str = "3dMEMA"
    route: str = "acf"
    stats_file: str = MEMA_FILE
    iterations: int = 10000

    @classmethod
    def of(cls, out: Path) -> Settings:
        try:
            doc = json.loads((Path(out) / "params.json").read_text())
        except (OSError, ValueError):
            return cls()
        first = (doc.get("analyses") or [{}])[0]
        return cls(
            doc.get("program") or "3dMEMA",
            doc.get("clustsim_route") or "acf",
            first.get("stats_file") or MEMA_FILE,
            int((first.get("clustsim") or {}).get("iterations") or 10000),
        )


def required_files(analysis_dir: Path, settings: Settings | None = None) -> list[str]:
    """Files both runs must have in one analysis folder (model output, tables, reports)."""
    settings = settings or Settings()
    prefix = clustsim_table_prefix(settings.route)
    # 3dttest++ -Clustsim deletes the .niml twins (they are attached to its output)
    exts = ("1D", "niml") if settings.route == "acf" else ("1D",)
    tables = [
        clustsim_table_name(prefix, nn, sided, ext)
        for nn in NEIGHBOURHOODS
        for sided in SIDEDNESS
        for ext in exts
    ]
    reports = sorted(p.name for p in analysis_dir.glob("clust_*_report_*.txt"))
    return [settings.stats_file, *tables, *reports]


def compare_analysis(
    native: Path,
    afni: Path,
    rtol: float = DEFAULT_RTOL,
    z_max: float = DEFAULT_Z_MAX,
    settings: Settings | None = None,
) -> list[Check]:
    """Every check for one ``analysis-*`` folder present in both runs."""
    settings = settings or Settings()
    tag = native.name
    checks = []
    needed = required_files(native, settings) + required_files(afni, settings)
    missing = [
        f"{who}/{f}"
        for who, d in (("native", native), ("afni", afni))
        for f in needed
        if not (d / f).is_file()
    ]
    if missing:
        checks.append(Check(f"{tag}/files", FAIL, "missing: " + ", ".join(sorted(set(missing)))))
        return checks
    checks.append(Check(f"{tag}/files", PASS, f"{len(set(needed))} files in both runs"))
    stats = settings.stats_file
    if settings.program != "3dMEMA":
        rtol = min(rtol, TTEST_RTOL)
    checks.append(compare_mema(native / stats, afni / stats, f"{tag}/{settings.program}", rtol))
    if (native / MASK_FILE).is_file() and (afni / MASK_FILE).is_file():
        checks.append(compare_mask(native / MASK_FILE, afni / MASK_FILE, f"{tag}/mask"))
    prefix = clustsim_table_prefix(settings.route)
    if settings.route == "acf":
        table = clustsim_table_name(CLUSTSIM_PREFIX, 1, "1sided", "1D")
        checks.append(compare_acf(native / table, afni / table, f"{tag}/ACF"))
    simulation = "3dClustSim" if settings.route == "acf" else "3dttest++-Clustsim"
    checks.append(
        compare_clustsim(native, afni, f"{tag}/{simulation}", z_max, prefix, settings.iterations)
    )
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
    settings = Settings.of(native_out)
    if (settings.program, settings.route) != (
        Settings.of(afni_out).program,
        Settings.of(afni_out).route,
    ):
        checks.append(Check("program", FAIL, "the runs used different --program or --clustsim"))
    for name in sorted(names_n & names_a):
        checks.extend(compare_analysis(native_out / name, afni_out / name, rtol, z_max, settings))
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
