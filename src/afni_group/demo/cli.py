"""``afni-group-demo``'s command line: parse the options, write the dataset, say what was planted."""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from afni_group.demo.truth import GRIDS, DemoTruth
from afni_group.demo.writing import LAYOUTS, write_demo
from afni_group.errors import AfniGroupError, OutputError, UsageError


def build_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``afni-group-demo``."""
    p = argparse.ArgumentParser(
        prog="afni-group-demo",
        allow_abbrev=False,
        description=(
            "Write a small synthetic BIDS dataset with afni_proc.py-shaped results "
            "(derivatives/afni/sub-*/sub-*.results/, or flat, or per session) for trying "
            "afni-group."
        ),
    )
    p.add_argument(
        "out_dir",
        metavar="DIR",
        help="directory to create (must be empty, or already hold this same demo: then it is "
        "left alone)",
    )
    p.add_argument("--subjects", type=int, default=12, help="number of subjects (>= 2, default 12)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--grid",
        choices=sorted(GRIDS),
        default="3mm",
        help="3mm: 53x64x50 MNI grid (default); small: 6 mm voxels for quick tests",
    )
    p.add_argument(
        "--sessions",
        nargs="+",
        metavar="LABEL",
        default=[],
        help="write per-session data, e.g. --sessions pre post (sub-XX/ses-YY/...)",
    )
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="nested",
        help="afni_proc results as derivatives/afni/sub-XX/sub-XX.results (nested, default) or "
        "derivatives/afni/sub-XX.results (flat)",
    )
    p.add_argument(
        "--group-effect",
        type=float,
        default=0.0,
        metavar="PCT",
        help="add PCT %% signal change to the chx effect of the 'patient' group (default 0)",
    )
    p.add_argument(
        "--session-effect",
        type=float,
        default=0.0,
        metavar="PCT",
        help="add PCT %% to the chx effect in each session after the first (default 0)",
    )
    p.add_argument("--force", action="store_true", help="write into a non-empty DIR")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``afni-group-demo``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error argparse already printed
        return 0 if not exc.code else UsageError.exit_code
    out = Path(args.out_dir)
    try:
        design = {
            "sessions": args.sessions,
            "layout": args.layout,
            "group_effect": args.group_effect,
            "session_effect": args.session_effect,
        }
        truth = None
        if not args.force and out.is_dir() and any(out.iterdir()):
            truth = same_demo(out, args.subjects, args.seed, args.grid, **design)
        existed = truth is not None
        if truth is None:
            truth = write_demo(out, args.subjects, args.seed, args.grid, args.force, **design)
    except AfniGroupError as exc:
        print(f"afni-group-demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    g = truth.grid
    files = f"{len(truth.files)} files for {len(truth.subjects)} subjects"
    setting = f"grid {g.name}: {'x'.join(map(str, g.shape))} x {g.voxel_mm:g} mm, seed {truth.seed}"
    if existed:
        print(f"afni-group-demo: {out} already holds this demo ({files}, {setting}): left alone")
    else:
        print(f"afni-group-demo: wrote {files} to {out} ({setting})")
    func = "sub-*/ses-*/func/" if args.sessions else "sub-*/func/"
    print(f"  raw BIDS:   {out}/dataset_description.json, participants.tsv, {func}")
    unit = "sub-*_ses-*" if args.sessions else "sub-*"
    nested = "sub-*/ses-*/" if args.sessions else "sub-*/"
    where = f"{unit}.results" if args.layout == "flat" else f"{nested}{unit}.results"
    print(f"  afni_proc:  {out}/derivatives/afni/{where}/")
    for blob in truth.blobs:
        x, y, z = blob.centre_mni
        print(
            f"  planted:    {blob.set_label} {blob.effect_pct:+g} % at MNI "
            f"({x:g}, {y:g}, {z:g}) ({blob.region})"
        )
    print(f"  see {out}/README; next: afni-group {out} OUTPUT_DIR group")
    return 0


def same_demo(out: Path, n_subjects: int, seed: int, grid: str, **design) -> DemoTruth:
    """The demo these options write, when non-empty ``out`` already holds it byte for byte.

    The demo is written again into a temporary folder beside ``out`` and compared file by
    file; other files in ``out`` (e.g. afni-group's results under ``derivatives/``) do not
    matter. Re-running the README's quick start then leaves the demo and its results alone.
    ``design`` are :func:`write_demo`'s keyword options (sessions, layout, planted effects).

    Raises
    ------
    OutputError
        ``out`` lacks a file of this demo or has a different one (exit 73, as for any
        non-empty folder).
    """
    try:
        return _compare_with_fresh_demo(out, n_subjects, seed, grid, design)
    except OSError as exc:
        raise OutputError(f"cannot compare {out} with a fresh demo: {exc}") from exc


def _compare_with_fresh_demo(
    out: Path, n_subjects: int, seed: int, grid: str, design: dict
) -> DemoTruth:
    with tempfile.TemporaryDirectory(prefix=".afni-group-demo-", dir=out.parent) as tmp:
        truth = write_demo(Path(tmp) / "demo", n_subjects, seed, grid, **design)
        for fresh in truth.files:
            relative = fresh.relative_to(Path(tmp) / "demo")
            there = out / relative
            if not there.is_file() or not filecmp.cmp(fresh, there, shallow=False):
                raise OutputError(
                    f"{out} is not empty and does not hold this demo ({relative} "
                    f"{'differs' if there.is_file() else 'is missing'}): choose an empty "
                    "directory or pass --force"
                )
        truth.files = [out / f.relative_to(Path(tmp) / "demo") for f in truth.files]
    return truth


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
