"""HTML report of a finished afni-group run, built only from the files in OUTPUT_DIR.

The report reads ``params.json``, ``inventory.tsv`` and the ``analysis-*/`` outputs (design.md),
so it is the same for the native and the AFNI engine. It writes ``OUTPUT_DIR/report.html`` with
every figure embedded as a PNG data URI (the page can be mailed or archived alone), and the same
PNGs under ``OUTPUT_DIR/report/`` for reuse in slides and papers. Nothing is fetched from the
network. The page itself has no JavaScript; each t map's interactive viewer (nilearn's
``view_img``, :mod:`.viewer`) is a page of its own under ``report/``, shown in a frame.

Entry points: :func:`write_report` (called by the pipeline) and ``python -m afni_group.report
OUTPUT_DIR`` (:func:`main`) to rebuild the report by hand. The parts: :mod:`.readers` (the run's
files), :mod:`.context` and :mod:`.sets` (what the template shows), :mod:`.methods` (the draft
methods text), :mod:`.figures` (drawing) and :mod:`.pool` (drawing in processes, embedding);
this module renders the template and writes the page.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from afni_group import atomic
from afni_group.errors import AfniGroupError, output_error
from afni_group.report.context import build_context
from afni_group.report.pool import FIGURE_DIR
from afni_group.report.readers import load_params

REPORT_HTML = "report.html"
TEMPLATE = "report.html.j2"


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
