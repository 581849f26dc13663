"""The report's figure pool: analyses drawn in forked processes, each figure saved for embedding.

Every figure is written as ``OUTPUT_DIR/report/NAME.png`` and carried into the page as a PNG data
URI (:class:`SavedFigure`), so the HTML stands alone.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)

FIGURE_DIR = "report"


@dataclass
class SavedFigure:
    """A figure of the page: its PNG file (relative to OUTPUT_DIR) and the same bytes inline."""

    file: str  # relative to OUTPUT_DIR
    data_uri: str
    width: int
    height: int
    alt: str
    caption: str


def save_figure(fig, figure_dir: Path, name: str, alt: str, caption: str) -> SavedFigure:
    """Write ``fig`` as ``figure_dir/NAME.png`` and return it with its data URI."""
    from afni_group.report import figures as rf

    path = figure_dir / f"{name}.png"
    width, height = rf.save_png(fig, path)
    data = path.read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return SavedFigure(f"{FIGURE_DIR}/{path.name}", uri, width, height, alt, caption)


def draw_analyses(
    draw: Callable[[Path, dict, Path], dict],
    out: Path,
    analyses: list[dict],
    figure_dir: Path,
    n_jobs: int,
) -> list[dict]:
    """``draw(out, analysis, figure_dir)`` of every analysis, in ``n_jobs`` forked processes when > 1.

    The figures are Python (nilearn, matplotlib) and hold the GIL, so threads would not help;
    forked processes share the modules and the template the parent has loaded (nothing is
    imported twice). Without ``fork``, with other threads alive (forking them is unsafe), or
    when a worker fails, the analyses are done here, one after the other (a failure then
    raises its own error).
    """
    import multiprocessing
    import threading

    def one_by_one() -> list:
        return [draw(out, a, figure_dir) for a in analyses]

    if (
        n_jobs <= 1
        or len(analyses) <= 1
        or "fork" not in multiprocessing.get_all_start_methods()
        or threading.active_count() > 1
    ):
        return one_by_one()
    from concurrent.futures import ProcessPoolExecutor

    from afni_group.report import figures as rf

    rf.load_plotting()
    n = len(analyses)
    try:
        with ProcessPoolExecutor(
            max_workers=min(n_jobs, n), mp_context=multiprocessing.get_context("fork")
        ) as pool:
            return list(pool.map(draw, [out] * n, analyses, [figure_dir] * n))
    except Exception as err:  # noqa: BLE001 - any worker failure: redo here, one by one
        LOG.debug("report figures in %d processes failed (%s); drawing them here", n_jobs, err)
        return one_by_one()
