"""The report's interactive, offline viewer of a t map over the template (nilearn's ``view_img``).

``view_img`` writes one HTML page with its JavaScript (jQuery, brainsprite) and the slices (PNG
sprites) inline. Two things of that page would reach out or change from run to run, and are
removed here: a favicon ``<link>`` to GitHub, and random element ids (replaced with the set's
name, so rebuilding the report gives the same bytes). :func:`external_references` lists what
would still be fetched from the network (nothing, for the pages written here).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

from afni_group import atomic
from afni_group.report import figures as rf
from afni_group.report.readers import Volume

# attributes and CSS that make a browser fetch a URL
_FETCHING = re.compile(
    r"""(?:\b(?:src|href|srcset|poster|data)\s*=\s*["']?\s*|url\(\s*["']?)(?:https?:)?//""",
    re.IGNORECASE,
)
_LINK = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
# the page fills its frame: no margin, black like the figures
_STYLE = "<style>html,body{margin:0;background:#000;color:#e8ecf0;overflow:hidden}</style>"


def external_references(html: str) -> list[str]:
    """The places in ``html`` that would fetch something from the network (scripts, styles,
    images, frames, links, CSS ``url()``); empty for a page that works offline."""
    return [html[m.start() : m.end() + 60] for m in _FETCHING.finditer(html)]


def offline_page(html: str, key: str) -> str:
    """``view_img``'s page without network links and with ids derived from ``key``."""
    html = _LINK.sub("", html)  # the favicon: the only <link> nilearn writes
    for uid in sorted(set(re.findall(r"-([0-9a-f]{32})\b", html))):
        html = html.replace(uid, key)
    return html.replace("</head>", f"{_STYLE}</head>", 1)


def write_viewer(
    stat: Volume,
    mask: Volume,
    threshold: float,
    vmax: float,
    path: Path,
    *,
    title: str,
    mni: bool = True,
    cut_coords: tuple[float, float, float] | None = None,
) -> Path:
    """Write the interactive viewer of the t map ``stat`` (inside ``mask``) to ``path``.

    Parameters
    ----------
    stat, mask : Volume
        t map and group mask (same grid).
    threshold : float
        Voxelwise |t| threshold: weaker voxels are transparent.
    vmax : float
        Symmetric colour limit, the one of the static figures.
    path : Path
        The HTML file; its stem names the page's elements.
    title : str
        Shown above the slices.
    mni : bool
        True: nilearn's MNI152 template underneath; False: the group mask.
    cut_coords : (x, y, z), optional
        Where the cross-hair starts (mm), e.g. the static figure's cut.

    Returns
    -------
    Path
        ``path``.
    """
    inside = mask.data > 0
    t = np.where(inside, np.nan_to_num(stat.data), 0.0).astype(np.float32)
    background = (
        rf.mni_template() if mni else nib.Nifti1Image(inside.astype(np.float32), mask.affine)
    )
    from nilearn import plotting

    with warnings.catch_warnings():
        # no voxel above the threshold (a null result): nilearn warns and draws no overlay,
        # which is what the page should show
        warnings.filterwarnings("ignore", message="The given float value must not exceed")
        view = plotting.view_img(
            nib.Nifti1Image(t, stat.affine),
            bg_img=background,
            threshold=float(threshold),
            vmax=float(vmax),
            symmetric_cmap=True,
            cmap=rf.STAT_CMAP,
            black_bg=True,
            title=title,
            cut_coords=cut_coords,
            resampling_interpolation="nearest",
            dim="auto" if mni else 0,
        )
    key = re.sub(r"[^A-Za-z0-9_-]", "-", path.stem)
    return atomic.write_text(path, offline_page(view.get_standalone(), key))
