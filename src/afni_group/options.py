"""The command line's options: the parser and what ``cli``, ``boutiques`` and ``slurm`` share.

A leaf module (it imports no other afni_group module that imports it back): the parser, the
analysis levels, the launch-only options and the container image name live here, and
:class:`RunOptions` is the part of the command line the pipeline needs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afni_group import __version__
from afni_group.errors import EXIT_USAGE, UsageError
from afni_group.plan import CLUSTSIM_ROUTES, DESIGNS, PROGRAMS
from afni_group.programs.checks import NEIGHBOURHOODS, SIDEDNESS

#: BIDS-App analysis levels afni-group implements.
ANALYSIS_LEVELS = ("group",)

#: Options that say how to launch the job, not what to analyse: never passed into the container
#: (slurm) and not offered to platforms that run the descriptor (boutiques).
LAUNCH_ONLY = frozenset(
    {"write_sbatch", "fan_out", "image", "cpus", "mem", "time", "mail_user", "bids_exec_spec"}
)

#: Options only the ``--fan-out`` job script passes (hidden from --help, the descriptor and
#: params.json): run one analysis (an array task), or check the tasks and write the report.
INTERNAL = frozenset({"only_analysis", "collect"})

#: Where the Docker image is published; Singularity.def bootstraps from the same name.
IMAGE_REPOSITORY = "afnigroup/afni-group"
#: The image of this version (tag = package version, never ``latest``).
CONTAINER_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"

# Options params.json does not record (they say what to write, not how the analysis ran).
_NOT_RECORDED = ("write_sbatch", "fan_out", "bids_exec_spec", *INTERNAL)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as exit 64 (BEP027) instead of 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"afni-group: error: {message}\n")


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in (0, 1)")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be a positive integer")
    return value


#: ``--clustsim-iter auto``: add iterations in batches until the threshold is stable
CLUSTSIM_AUTO = "auto"


def _iterations(text: str) -> int | str:
    """``--clustsim-iter``: a positive integer or ``auto``."""
    if text.strip().lower() == CLUSTSIM_AUTO:
        return CLUSTSIM_AUTO
    try:
        return _positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text} is neither a positive integer nor '{CLUSTSIM_AUTO}'"
        ) from None


def _mem_size(text: str) -> str:
    """A ``--mem-limit`` size such as ``2GB`` (checked here, converted by the plan)."""
    from afni_group.programs.mema.budget import parse_mem_limit

    try:
        parse_mem_limit(text)
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--mem-limit ")) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser: the single source of truth for the CLI and the Boutiques descriptor."""
    p = _Parser(
        prog="afni-group",
        allow_abbrev=False,
        description=(
            "AFNI-style group analysis of afni_proc.py results: 3dMEMA, group mask, mean ACF, "
            "3dClustSim, cluster thresholds and 3dClusterize, as a BIDS-App."
        ),
        epilog="Exit codes: 0 ok, 1 failure, 17 unknown level, 18 a --participant-label "
        "matches nobody, "
        "64 usage, 65 bad data, 66 missing input, 73 cannot create output.",
    )
    p.add_argument("bids_dir", type=Path, help="root of the BIDS dataset (read-only)")
    p.add_argument("output_dir", type=Path, help="where the BIDS-Derivatives outputs go")
    p.add_argument("analysis_level", help="level of the analysis; only 'group' exists")

    g = p.add_argument_group("BIDS-App options")
    g.add_argument(
        "--participant-label",
        "--participant_label",
        dest="participant_label",
        nargs="+",
        metavar="LABEL",
        help="subjects to include (with or without 'sub-'; or a file with one label per line)",
    )
    g.add_argument(
        "--session-label",
        "--session_label",
        dest="session_label",
        nargs="+",
        metavar="LABEL",
        help="sessions to analyse (with or without 'ses-'), each on its own, from per-session "
        "results such as sub-X/ses-Y/sub-X_ses-Y.results; with --design conditions and two "
        "labels FIRST SECOND: the paired difference SECOND-FIRST of each contrast",
    )
    g.add_argument(
        "--afni-dir",
        type=Path,
        help="folder with afni_proc.py's results: sub-X/sub-X.results, sub-X.results, "
        "sub-X/ses-Y/sub-X_ses-Y.results ... (default BIDS_DIR/derivatives/afni)",
    )
    g.add_argument(
        "--skip-bids-validation",
        "--skip_bids_validation",
        "--skip_bids_validator",
        dest="skip_bids_validation",
        action="store_true",
        help="do not run the BIDS validator (bids-validator-deno) on BIDS_DIR, nor pybids' checks",
    )
    g.add_argument(
        "--n-cpus",
        "--n_cpus",
        "--nthreads",
        dest="n_cpus",
        type=_positive_int,
        default=None,
        help="CPUs to use (default: SLURM_CPUS_PER_TASK, else all available)",
    )
    g.add_argument(
        "--work-dir",
        "-w",
        type=Path,
        help="scratch folder for temporary files, e.g. node-local disk under Slurm (default OUTPUT_DIR/.work)",
    )
    g.add_argument(
        "--mem-limit",
        type=_mem_size,
        default="2GB",
        metavar="SIZE",
        help="native 3dMEMA's memory target, e.g. 8GB (default 2GB): inputs larger than half of "
        "it are read once into a voxel-major store in --work-dir and fitted block by block "
        "(same results, memory flat in the number of subjects)",
    )
    g.add_argument("--version", action="version", version=f"afni-group {__version__}")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more output; tracebacks")

    a = p.add_argument_group("analysis (defaults are the tutorial's)")
    a.add_argument(
        "--program",
        choices=PROGRAMS,
        default="3dMEMA",
        help="the group model: 3dMEMA (default, the tutorial's: mixed effects, weighs subjects "
        "by their t statistics) or 3dttest++ (t-tests of the effect estimates)",
    )
    a.add_argument(
        "--clustsim",
        choices=CLUSTSIM_ROUTES,
        default="acf",
        help="how the cluster-size threshold is simulated: acf (default, the tutorial's: "
        "3dClustSim from the subjects' mean ACF) or randomise (3dttest++ -Clustsim on "
        "sign-randomised residuals, AFNI's recommendation after Cox et al. 2017; needs "
        "--program 3dttest++ and at least 14 datasets)",
    )
    a.add_argument(
        "--set",
        dest="sets",
        nargs=3,
        action="append",
        metavar=("LABEL", "BETA", "TSTAT"),
        help="a 3dMEMA set: label and the beta and t sub-brick labels (repeat for 2 sets; "
        "default: every contrast with X#0_Coef and X#0_Tstat, each analysed alone)",
    )
    a.add_argument(
        "--design",
        choices=("auto",) + DESIGNS,
        default="auto",
        help="'one' (one-sample), 'groups' (two independent groups, unpaired: what "
        "gen_group_command.py writes for two sets) or 'conditions' (paired: two --set "
        "contrasts of the same subjects, or one contrast in two sessions); auto = one set -> "
        "one, two sets or --group-column -> groups",
    )
    a.add_argument(
        "--group-column",
        nargs="+",
        metavar=("COLUMN", "LEVEL"),
        help="two-group design: the participants.tsv column that splits the subjects, "
        "optionally followed by its two values A B in order (default: its two values, sorted); "
        "each contrast is compared between the groups (3dMEMA -groups A B, difference B-A)",
    )
    a.add_argument("--analysis-name", default="mema", help="folder name analysis-NAME (with --set)")
    a.add_argument(
        "--missing-data",
        type=int,
        default=0,
        metavar="N",
        help="3dMEMA -missing_data (default 0, as in the tutorial; -1 to leave it out)",
    )
    a.add_argument("--covariates", nargs="+", metavar="COLUMN", help="participants.tsv columns")
    a.add_argument("--no-hktest", action="store_true", help="3dMEMA -no_HKtest")
    a.add_argument(
        "--mema-correct-dof",
        action="store_true",
        help="use the corrected DOF re-mapping instead of reproducing 3dMEMA's sign slip",
    )
    a.add_argument("--mask-frac", type=float, default=1.0, help="3dmask_tool -frac (default 1.0)")
    a.add_argument("--pthr", type=_probability, default=0.001, help="voxelwise p (default 0.001)")
    a.add_argument("--alpha", type=_probability, default=0.05, help="FWE alpha (default 0.05)")
    a.add_argument("--sided", choices=SIDEDNESS, default="bisided", help="default bisided")
    a.add_argument("--nn", type=int, choices=NEIGHBOURHOODS, default=1, help="default 1")
    a.add_argument(
        "--clustsim-iter",
        type=_iterations,
        default=10000,
        metavar="N|auto",
        help="3dClustSim -iter (10000); 'auto' (native engine): 10000, then 10000 more at a time "
        "until the cluster-size threshold is stable, at most 100000 (params.json records the "
        "batches)",
    )
    a.add_argument(
        "--seed",
        type=int,
        default=None,
        help="3dClustSim -seed (default: AFNI's fixed seed 123456789; 0 = from the clock)",
    )
    a.add_argument(
        "--accept-grid-mismatch",
        action="store_true",
        help="analyse subjects whose grid origin, voxel size or orientation differs from the "
        "first subject's voxel by voxel (listed in params.json and the report); default: error",
    )
    a.add_argument(
        "--drop-incomplete",
        action="store_true",
        help="leave out subjects with missing files instead of failing",
    )

    r = p.add_argument_group("running")
    r.add_argument(
        "--engine",
        choices=("auto", "afni", "native"),
        default="auto",
        help="afni: render and run an AFNI script; native: numpy; auto: afni if AFNI and R "
        "are on PATH, else native",
    )
    r.add_argument(
        "--via-gen-group-command",
        action="store_true",
        help="afni engine: write the 3dMEMA script with gen_group_command.py as the tutorial does",
    )
    r.add_argument(
        "--dry-run", action="store_true", help="write the plan, inventory and script only"
    )
    r.add_argument("--overwrite", action="store_true", help="replace existing results")
    r.add_argument("--resume", action="store_true", help="skip steps whose inputs are unchanged")
    r.add_argument("--no-report", action="store_true", help="do not write report.html")

    s = p.add_argument_group("Slurm and containers")
    s.add_argument(
        "--write-sbatch",
        type=Path,
        metavar="JOB.sh",
        help="write an sbatch script running this command in the container, submit nothing",
    )
    s.add_argument(
        "--fan-out",
        action="store_true",
        help="with --write-sbatch: a script that submits one Slurm array task per analysis (its "
        "own 3dMEMA, mask, ACF, 3dClustSim and clusters, on its own CPUs) and a final job, "
        "after them, that writes the report; submit it with bash JOB.sh",
    )
    s.add_argument("--image", help="Apptainer/Singularity image for --write-sbatch")
    s.add_argument("--cpus", type=_positive_int, default=8, help="sbatch -c (default 8)")
    s.add_argument("--mem", default="16G", help="sbatch --mem (default 16G)")
    s.add_argument("--time", default="4:00:00", help="sbatch --time (default 4:00:00)")
    s.add_argument("--mail-user", help="sbatch --mail-user")
    # what the --fan-out job script runs in the container (afni_group.fanout)
    s.add_argument("--only-analysis", metavar="NAME", help=argparse.SUPPRESS)
    s.add_argument("--collect", action="store_true", help=argparse.SUPPRESS)
    s.add_argument(
        "--bids-exec-spec",
        action="store_true",
        help="print the Boutiques descriptor (bids_app_spec.json) and exit",
    )
    return p


@dataclass(frozen=True)
class RunOptions:
    """What :func:`afni_group.pipeline.run` needs from the command line.

    Attributes
    ----------
    engine
        ``auto``, ``afni`` or ``native``.
    dry_run, overwrite, resume, no_report, accept_grid_mismatch
        The options of the same names.
    recorded
        Every command-line option as ``params.json`` records it (paths as text).
    """

    engine: str = "auto"
    dry_run: bool = False
    overwrite: bool = False
    resume: bool = False
    no_report: bool = False
    accept_grid_mismatch: bool = False
    recorded: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> RunOptions:
        """The run options of a parsed command line (after defaults such as ``--n-cpus``)."""
        recorded = {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in _NOT_RECORDED
        }
        return cls(
            engine=args.engine,
            dry_run=args.dry_run,
            overwrite=args.overwrite,
            resume=args.resume,
            no_report=args.no_report,
            accept_grid_mismatch=getattr(args, "accept_grid_mismatch", False),
            recorded=recorded,
        )
