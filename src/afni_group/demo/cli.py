"""``afni-group-demo``'s command line: parse the options, write the dataset, say what was planted."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from afni_group.demo.truth import GRIDS
from afni_group.demo.writing import write_demo
from afni_group.errors import AfniGroupError, UsageError


def build_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``afni-group-demo``."""
    p = argparse.ArgumentParser(
        prog="afni-group-demo",
        description=(
            "Write a small synthetic BIDS dataset with afni_proc.py-shaped results "
            "(derivatives/afni/sub-*/sub-*.results/) for trying afni-group."
        ),
    )
    p.add_argument("out_dir", metavar="DIR", help="directory to create (must be empty)")
    p.add_argument("--subjects", type=int, default=12, help="number of subjects (>= 2, default 12)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--grid",
        choices=sorted(GRIDS),
        default="3mm",
        help="3mm: 53x64x50 MNI grid (default); small: 6 mm voxels for quick tests",
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
    try:
        truth = write_demo(args.out_dir, args.subjects, args.seed, args.grid, args.force)
    except AfniGroupError as exc:
        print(f"afni-group-demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    out = Path(args.out_dir)
    g = truth.grid
    print(
        f"afni-group-demo: wrote {len(truth.files)} files for {len(truth.subjects)} subjects "
        f"to {out} (grid {g.name}: {'x'.join(map(str, g.shape))} x {g.voxel_mm:g} mm, "
        f"seed {truth.seed})"
    )
    print(f"  raw BIDS:   {out}/dataset_description.json, participants.tsv, sub-*/func/")
    print(f"  afni_proc:  {out}/derivatives/afni/sub-*/sub-*.results/")
    for blob in truth.blobs:
        x, y, z = blob.centre_mni
        print(
            f"  planted:    {blob.set_label} {blob.effect_pct:+g} % at MNI "
            f"({x:g}, {y:g}, {z:g}) ({blob.region})"
        )
    print(f"  see {out}/README; next: afni-group {out} OUTPUT_DIR group")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
