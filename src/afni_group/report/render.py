"""HTML report of a finished afni-group run, built only from the files in OUTPUT_DIR.

The report reads ``params.json``, ``inventory.tsv`` and the ``analysis-*/`` outputs (design.md),
so it is the same for the native and the AFNI engine. It writes ``OUTPUT_DIR/report.html`` with
every figure embedded as a PNG data URI (the page can be mailed or archived alone), and the same
PNGs under ``OUTPUT_DIR/report/`` for reuse in slides and papers. Nothing is fetched from the
network; there is no JavaScript.

Entry points: :func:`write_report` (called by the pipeline) and ``python -m afni_group.report
OUTPUT_DIR`` (:func:`main`) to rebuild the report by hand. The parts: :mod:`.readers` (the run's
files), :mod:`.context` and :mod:`.sets` (what the template shows), :mod:`.methods` (the draft
methods text), :mod:`.figures` (drawing) and :mod:`.pool` (drawing in processes, embedding);
this module renders the template and writes the page.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afni_group import atomic
from afni_group.errors import AfniGroupError, output_error
from afni_group.programs.csim_lookup.core import ClustSimTable
from afni_group.report.context import build_context
from afni_group.report.pool import FIGURE_DIR
from afni_group.report.readers import load_params

REPORT_HTML = "report.html"
TEMPLATE = "report.html.j2"


# ============================================================================ ClustSim tables


def _gumbel(alpha: np.ndarray | float) -> np.ndarray:
    # 3dClustSim interpolates its tables in this coordinate, where log-size is close to linear
    return np.log(-np.log1p(-np.asarray(alpha, dtype=float)))


@dataclass(frozen=True)
class CorrectedAlpha:
    """A cluster's corrected alpha: ``relation`` is '=' (interpolated), '<' or '>' (off the table)."""

    value: float
    relation: str = "="

    def __str__(self) -> str:
        if self.relation == "=":
            return f"{self.value:.3f}"
        return f"{self.relation} {self.value:.2f}"


def corrected_alpha(table: ClustSimTable, pthr: float, n_voxels: float) -> CorrectedAlpha | None:
    """FWE-corrected alpha of a cluster of ``n_voxels`` at voxelwise ``pthr``.

    The row of ``pthr`` gives cluster sizes s_j for alphas a_j (a_j decreasing, s_j increasing).
    Between two columns the alpha is interpolated linearly in size against log(-log(1 - a)), the
    coordinate 3dClustSim uses to build the table. Beyond the table the bound is returned.

    Parameters
    ----------
    table : ClustSimTable
    pthr : float
        Voxelwise p; must be one of the table rows (relative tolerance 1e-6).
    n_voxels : float
        Cluster size in voxels.

    Returns
    -------
    CorrectedAlpha or None
        None when ``pthr`` is not a row of the table.
    """
    rows = np.flatnonzero(np.isclose(table.pthr, pthr, rtol=1e-6, atol=0.0))
    if rows.size == 0:
        return None
    order = np.argsort(-table.alpha)  # largest alpha (smallest size) first
    alphas = table.alpha[order]
    sizes = np.maximum.accumulate(table.sizes[rows[0], order])  # guard against non-monotone cells
    if n_voxels < sizes[0]:
        return CorrectedAlpha(float(alphas[0]), ">")
    if n_voxels > sizes[-1]:
        return CorrectedAlpha(float(alphas[-1]), "<")
    j = int(np.flatnonzero(sizes <= n_voxels)[-1])  # smallest alpha whose size is reached
    if j == len(sizes) - 1 or sizes[j] == n_voxels:
        return CorrectedAlpha(float(alphas[j]))
    frac = (n_voxels - sizes[j]) / (sizes[j + 1] - sizes[j])
    g = _gumbel(alphas[j]) + frac * (_gumbel(alphas[j + 1]) - _gumbel(alphas[j]))
    return CorrectedAlpha(float(-np.expm1(-np.exp(g))))


# ============================================================================ small readers


def acf_fwhm(a: float, b: float, c: float) -> float:
    """FWHM (mm) of the mixed ACF (:func:`afni_group.programs.acf.core.acf_fwhm`)."""
    from afni_group.programs.acf.core import acf_fwhm as fwhm

    return fwhm(a, b, c)


def parse_clusterize_report(text: str, sided: str = "bisided") -> list[dict]:
    """Cluster rows from 3dClusterize's text report (RAI order), for runs without clusters.tsv.

    LPI values are derived (x and y negated); volume uses the report's single-voxel volume.
    """
    m = re.search(r"Single voxel volume = ([0-9.eE+-]+)", text)
    voxel_volume = float(m.group(1)) if m else float("nan")
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        f = [float(v) for v in line.split()]
        if len(f) < 16:
            continue
        n, cm, mean, sem, peak, mi = int(f[0]), f[1:4], f[10], f[11], f[12], f[13:16]
        row = {
            "cluster_id": len(rows) + 1,
            "n_voxels": n,
            "volume_mm3": n * voxel_volume,
            "tail": "both" if sided == "2sided" else ("pos" if peak >= 0 else "neg"),
            "mean": mean,
            "sem": sem,
            "peak_value": peak,
        }
        for prefix, xyz in (("cm", cm), ("peak", mi)):
            for axis, value, flip in zip("xyz", xyz, (-1, -1, 1), strict=True):
                row[f"{prefix}_{axis}_rai"] = value
                row[f"{prefix}_{axis}_lpi"] = flip * value + 0.0
        rows.append(row)
    return rows


# ============================================================================ HTML


def render_html(context: dict) -> str:
    """Render the jinja2 template (autoescaped) with ``context``."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("afni_group", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(TEMPLATE).render(**context)


# ============================================================================ entry points


def write_report(output_dir: str | Path, params: dict | None = None, n_jobs: int = 1) -> Path:
    """Build ``OUTPUT_DIR/report.html`` and ``OUTPUT_DIR/report/*.png`` from the run's files.

    Works on the outputs alone, so it is the same for both engines and can be re-run any time.
    The new report replaces the old one atomically: everything is built in a temporary folder
    inside OUTPUT_DIR and moved into place at the end, so a failure leaves the old report intact.

    Parameters
    ----------
    output_dir : str or Path
        A finished afni-group OUTPUT_DIR (with params.json).
    params : dict, optional
        The params.json content; the pipeline passes it so that params.json, the "finished"
        marker, can be written after the report.
    n_jobs : int
        Processes drawing the figures (the run's ``--n-cpus``).

    Returns
    -------
    Path
        The written ``report.html``.

    Raises
    ------
    MissingInputError, InputDataError
        params.json missing or unreadable.
    OutputError
        OUTPUT_DIR is not writable.
    """
    out = Path(output_dir)
    params = load_params(out) if params is None else params  # fail early
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    except OSError as err:
        raise output_error(out / REPORT_HTML, err) from err
    try:
        figure_dir = tmp / FIGURE_DIR
        figure_dir.mkdir()
        html = render_html(build_context(out, figure_dir, params, n_jobs))
        atomic.write_text(tmp / REPORT_HTML, html)
        final_dir = out / FIGURE_DIR
        if final_dir.exists():
            final_dir.rename(tmp / "old-figures")
        figure_dir.rename(final_dir)
        os.replace(tmp / REPORT_HTML, out / REPORT_HTML)
    except OSError as err:
        raise output_error(out / REPORT_HTML, err) from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / REPORT_HTML


def main(argv: list[str] | None = None) -> int:
    """``python -m afni_group.report.render OUTPUT_DIR``: rebuild the HTML report of a finished run."""
    parser = argparse.ArgumentParser(
        prog="python -m afni_group.report.render",
        description="Rebuild report.html (and report/*.png) from a finished afni-group OUTPUT_DIR.",
    )
    parser.add_argument("output_dir", type=Path, help="afni-group OUTPUT_DIR (with params.json)")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.output_dir)
    except AfniGroupError as err:
        print(f"** ERROR: {err}", file=sys.stderr)
        return err.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
