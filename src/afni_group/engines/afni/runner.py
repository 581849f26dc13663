"""Run the rendered AFNI script with subprocess and collect what the pipeline needs.

The script (see :mod:`afni_group.engines.afni.render`) writes into ``$AFNI_GROUP_OUTDIR``; the
runner points that at a staging folder, streams the script's merged stdout/stderr into one log
file per step (the script prints ``++ afni-group step: NAME`` before each step), and on failure
raises :class:`~afni_group.errors.StepError` with the step name and the last AFNI error line.
On success the outputs are moved into the real output folder, the values the script recorded in
``afni_values.txt`` are read back, and ``clusters.tsv`` files are written from AFNI's maps.

Logs: ``logs/afni_engine.log`` has everything; ``logs/afni_NN_<step>.log`` one step each
(``/`` in step names becomes ``_``, e.g. ``afni_07_analysis-mema_3dClusterize_chx.log``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
from collections import deque
from pathlib import Path
from typing import IO, TYPE_CHECKING

from afni_group import designs
from afni_group.engines.afni.render import STEP_MARKER, VALUES_FILE
from afni_group.errors import EXIT_CANT_CREATE, StepError
from afni_group.plan import MASK_FILE, Analysis, AnalysisPlan
from afni_group.programs.clusterize.formats import cluster_table_row, parse_clusterize_report

if TYPE_CHECKING:
    from afni_group.programs.clustsim.core import ClustSimTable

LOG = logging.getLogger(__name__)

#: Programs the afni engine calls (the tutorial's, plus Rscript for 3dMEMA).
AFNI_PROGRAMS = (
    "3dMEMA",
    "3dmask_tool",
    "3dClustSim",
    "1d_tool.py",
    "p2dsetstat",
    "3dClusterize",
    "Rscript",
)
#: Programs ``--program 3dttest++`` calls instead of 3dMEMA and Rscript (3dttest++ -Clustsim
#: runs 3dClustSim and 3drefit itself; the script reruns them when AFNI's read too few).
TTEST_PROGRAMS = (
    "3dttest++",
    "3dmask_tool",
    "3dClustSim",
    "3drefit",
    "1d_tool.py",
    "p2dsetstat",
    "3dClusterize",
)
#: Needed in addition for ``--via-gen-group-command``.
GGC_PROGRAMS = ("gen_group_command.py", "tcsh")

COMBINED_LOG = "afni_engine.log"
SETUP_STEP = "setup"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TAIL_LINES = 200


def afni_available(
    via_gen_group_command: bool = False, program: str = "3dMEMA"
) -> tuple[bool, str]:
    """Whether every program the afni engine runs is on PATH, and why (not).

    Parameters
    ----------
    via_gen_group_command : bool
        gen_group_command.py and tcsh are needed too.
    program : str
        The group model (``--program``): 3dMEMA needs R, 3dttest++ needs 3dttest++ and 3drefit.

    Returns
    -------
    (bool, str)
        ``True`` and where the model's program was found, or ``False`` and the missing programs.
    """
    mema = program == "3dMEMA"
    programs = (AFNI_PROGRAMS if mema else TTEST_PROGRAMS) + (
        GGC_PROGRAMS if via_gen_group_command else ()
    )
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        return False, f"not on PATH: {', '.join(missing)}"
    where = Path(shutil.which(program) or program).parent
    return True, f"AFNI programs{' and Rscript' if mema else ''} found on PATH ({where})"


def clean_line(line: str) -> str:
    """A log line without AFNI's ANSI colour codes and trailing blanks."""
    return _ANSI.sub("", line).rstrip()


def last_error_line(lines: list[str]) -> str:
    """The last line mentioning ``ERROR`` (AFNI's ``** ERROR``/``FATAL ERROR``), else the last line."""
    cleaned = [clean_line(x) for x in lines if clean_line(x)]
    for line in reversed(cleaned):
        if "ERROR" in line or "Error" in line:
            return line.strip()
    return cleaned[-1].strip() if cleaned else ""


def step_log_name(index: int, step: str) -> str:
    """File name of one step's log, e.g. ``afni_01_analysis-mema_3dMEMA.log``."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", step.replace("/", "_"))
    return f"afni_{index:02d}_{safe}.log"


class StepLogs:
    """Split the script's output into per-step log files at the marker lines.

    Parameters
    ----------
    logs_dir : Path
        Receives ``afni_engine.log`` and one ``afni_NN_<step>.log`` per step.
    """

    def __init__(self, logs_dir: Path):
        self.logs_dir = Path(logs_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.combined: IO[str] = open(self.logs_dir / COMBINED_LOG, "w", encoding="utf-8")
        self.index = 0
        self.step = SETUP_STEP
        self.path = self.logs_dir / step_log_name(0, SETUP_STEP)
        self.current: IO[str] = open(self.path, "w", encoding="utf-8")
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)

    def feed(self, line: str) -> None:
        """Write one line (with its newline) to the logs; a marker starts a new step log."""
        self.combined.write(line)
        text = clean_line(line)
        if text.startswith(STEP_MARKER):
            self._start(text[len(STEP_MARKER) :].strip())
            return
        self.current.write(line)
        self.tail.append(line)

    def _start(self, step: str) -> None:
        self.current.close()
        self.index += 1
        self.step = step
        self.path = self.logs_dir / step_log_name(self.index, step)
        self.current = open(self.path, "w", encoding="utf-8")
        self.tail.clear()
        LOG.info("++ %s", step)

    def close(self) -> None:
        self.current.close()
        self.combined.close()


def script_environment(plan: AnalysisPlan, staging_dir: Path) -> dict[str, str]:
    """The environment of the script: output folder, threads, quiet AFNI."""
    env = dict(os.environ)
    env["AFNI_GROUP_OUTDIR"] = str(staging_dir)
    env["TMPDIR"] = str(plan.work_dir)  # AFNI's and R's temporary files go to --work-dir
    env["OMP_NUM_THREADS"] = str(max(int(plan.n_cpus or 1), 1))
    env["AFNI_DONT_LOGFILE"] = "YES"
    env["AFNI_NOSPLASH"] = "YES"
    return env


def run_script(script: Path, env: dict[str, str], cwd: Path, logs: StepLogs) -> int:
    """Run ``bash script``, streaming its merged output into ``logs``; returns the exit status.

    The script runs in its own process group so that an interrupt stops the AFNI program too.
    """
    proc = subprocess.Popen(
        ["bash", str(script)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            logs.feed(raw.decode("utf-8", errors="replace"))
        return proc.wait()
    except BaseException:
        # interrupted (Ctrl-C, error while logging): stop the whole script, then re-raise
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait()
        raise


def read_values(path: Path) -> dict[str, str]:
    """``name=value`` lines of ``afni_values.txt`` (later lines win)."""
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    return values


def _required(values: dict[str, str], name: str, where: Path) -> str:
    if name not in values or not values[name]:
        raise StepError(f"the AFNI script finished but did not record {name} in {where}")
    return values[name]


def move_outputs(staging: Path, target: Path) -> None:
    """Move an analysis folder's files from staging into the output folder (replacing)."""
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(staging.iterdir()):
        if item.name == VALUES_FILE:
            continue  # the runner's own record; the native engine has no such file
        dest = target / item.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(item, dest)


def load_clustsim_table(path: Path) -> ClustSimTable | None:
    """AFNI's ClustSim table for the clusters' corrected p; None (warning) if unreadable."""
    from afni_group.errors import AfniGroupError
    from afni_group.programs.clustsim.formats import read_clustsim_table as read_table

    try:
        return read_table(path)
    except AfniGroupError as err:
        LOG.warning("!! corrected cluster p not available: %s", err)
        return None


def write_clusters_tsv(
    plan: AnalysisPlan,
    analysis: Analysis,
    adir: Path,
    set_label: str,
    threshold: str,
    clust_nvox: int,
    table: ClustSimTable | None,
) -> bool:
    """Write ``clust_<sided>_clusters_<set>.tsv`` for AFNI's results (the clusters.tsv hook).

    The table needs each cluster's voxels, which AFNI's report does not list: the native
    clusterizer's array core is run on AFNI's group model output with AFNI's thresholds,
    and its cluster rows must equal those of AFNI's report before its table is written, so the
    tsv describes exactly the clusters AFNI reported. ``table`` is AFNI's ClustSim table
    (:func:`load_clustsim_table`, read once per analysis) for the corrected p.

    Returns
    -------
    bool
        False (with a warning, no tsv) when the native clusterizer fails or disagrees.
    """
    from afni_group import afni_io, cluster_table
    from afni_group.programs.clusterize.core import clusterize
    from afni_group.programs.clusterize.files import write_clusters_tsv as write_tsv

    t = plan.thresholds
    files = plan.cluster_files(set_label)
    value = float(threshold)
    thresholds = value if t.sided == "1sided" else (-value, value)
    tbrick, bbrick = plan.stat_bricks(set_label, analysis)
    try:
        maps = afni_io.read_dataset(adir / plan.stats_file)
        mask = afni_io.read_dataset(adir / MASK_FILE).brick(0) != 0
        t_brick = maps.brick(maps.index_of(tbrick))
        found = clusterize(
            t_brick,
            maps.brick(maps.index_of(bbrick)),
            maps.affine,
            thresholds=thresholds,
            sided=t.sided,
            nn=t.nn,
            min_nvox=int(clust_nvox),
            mask=mask,
        )
    except Exception as err:  # noqa: BLE001 - a tsv problem must not lose AFNI's results
        LOG.warning("!! %s not written: native clusterizer failed: %s", files["clusters_tsv"], err)
        return False
    afni_report = parse_clusterize_report((adir / files["report"]).read_text(errors="replace"))
    rows = [cluster_table_row(c.stats).rstrip() for c in found.clusters]
    if rows != afni_report.rows or found.n_clusters != afni_report.n_clusters:
        LOG.warning(
            "!! %s not written: the native clusterizer does not reproduce AFNI's report %s",
            files["clusters_tsv"],
            files["report"],
        )
        return False
    extra = cluster_table.tsv_extra(found, t_brick, maps.affine, maps.space, table, t.pthr)
    write_tsv(found, adir / files["clusters_tsv"], *extra)
    return True


def analysis_results(plan: AnalysisPlan, analysis: Analysis, adir: Path, values: dict) -> dict:
    """The per-analysis result of the afni engine, shaped like the native engine's.

    Keys: ``acf`` (None with ``--clustsim randomise``, which has no ACF),
    ``cluster_size_threshold`` and ``results`` (one dict per set, as in params.json).
    """
    where = adir / VALUES_FILE
    acf = None
    if plan.clustsim_route == "acf":
        acf = [float(v) for v in _required(values, "acf", where).split()]
    clust_nvox = int(_required(values, "clust_thrvol", where))
    results = []
    for label in analysis.tested_labels():
        files = plan.cluster_files(label)
        threshold_text = _required(values, f"voxstat_thr_{label}", where)
        report = adir / files["report"]
        if not report.is_file():
            raise StepError(f"the AFNI script finished but wrote no {report}")
        found = parse_clusterize_report(report.read_text(errors="replace")).n_clusters
        tbrick, bbrick = plan.stat_bricks(label, analysis)
        results.append(
            {
                "set": label,
                "tbrick": tbrick,
                "bbrick": bbrick,
                "voxel_threshold": float(threshold_text),
                "n_clusters": found,
                "report": files["report"],
                "clusters_tsv": files["clusters_tsv"],
                "map": files["map"] if found else None,
                "ee": files["ee"] if found else None,
            }
        )
    result = {"acf": acf, "cluster_size_threshold": clust_nvox, "results": results}
    if plan.clustsim_route == "randomise":
        # 3dttest++ -Clustsim: its jobs and the simulations the tables rest on (the script
        # reran 3dClustSim when AFNI's own read fewer)
        iterations = int(_required(values, "clustsim_iterations", where))
        result["clustsim_randomise"] = {"jobs": plan.n_cpus, "iterations": iterations}
    return result


def run_afni(plan: AnalysisPlan, script: Path, staging_dir: Path, logs_dir: Path) -> list[dict]:
    """Run the rendered script, move its outputs into place and return the results.

    Parameters
    ----------
    plan : AnalysisPlan
        The plan the script was rendered from (output names, sets, thresholds).
    script : Path
        The rendered ``group_analysis.sh``.
    staging_dir : Path
        Where the script writes (``AFNI_GROUP_OUTDIR``); emptied first, removed on success.
    logs_dir : Path
        Receives ``afni_engine.log`` and one log per step.

    Returns
    -------
    list of dict
        One per analysis, in plan order (see :func:`analysis_results`).

    Raises
    ------
    StepError
        A step failed: its name, the last error line and the log file.
    """
    staging_dir = Path(staging_dir)
    if staging_dir.exists():
        shutil.rmtree(staging_dir)
    staging_dir.mkdir(parents=True)
    logs = StepLogs(logs_dir)
    try:
        status = run_script(
            Path(script).resolve(), script_environment(plan, staging_dir), staging_dir, logs
        )
    finally:
        logs.close()
    if status != 0:
        line = last_error_line(list(logs.tail)) or f"exit status {status}"
        full = any("no space left on device" in t.lower() for t in logs.tail)
        raise StepError(
            f"AFNI step {logs.step} failed (exit status {status}): {line} (log: {logs.path})"
            + ("; no space left on device in the output or work folder" if full else ""),
            exit_code=EXIT_CANT_CREATE if full else None,
        )
    results = []
    for analysis in plan.analyses:
        staged = staging_dir / analysis.dirname
        values = read_values(staged / VALUES_FILE) if (staged / VALUES_FILE).is_file() else {}
        adir = plan.analysis_dir(analysis)
        move_outputs(staged, adir)
        result = analysis_results(plan, analysis, adir, values)
        table = load_clustsim_table(adir / plan.clustsim_table)
        for entry in result["results"]:
            text = values[f"voxstat_thr_{entry['set']}"]
            dof = designs.t_dof(adir / plan.stats_file, entry["tbrick"])
            LOG.info("%s", designs.threshold_line(f"{analysis.dirname} {entry['set']}", text, dof))
            write_clusters_tsv(
                plan,
                analysis,
                adir,
                entry["set"],
                values[f"voxstat_thr_{entry['set']}"],
                result["cluster_size_threshold"],
                table,
            )
        results.append(result)
    shutil.rmtree(staging_dir, ignore_errors=True)
    return results
