"""Readers of a finished run's files for the report: params.json, TSV tables, dataset bricks.

Every reader works on the files alone (either engine wrote them); a missing table reads as no
rows, a missing or unreadable params.json is a clear error.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from afni_group.cluster_table import EXTRA_COLUMNS
from afni_group.errors import InputDataError, MissingInputError
from afni_group.programs.clusterize.formats import TSV_COLUMNS

# clusters.tsv columns (docs/design.md): 3dClusterize's, then those cluster_table.py appends
CLUSTER_COLUMNS = list(TSV_COLUMNS)


def load_params(output_dir: str | Path) -> dict:
    """Read ``OUTPUT_DIR/params.json``; clear errors when it is missing or unreadable."""
    path = Path(output_dir) / "params.json"
    if not path.exists():
        raise MissingInputError(
            f"{path} not found: the report is built from a finished run's params.json"
        )
    try:
        params = json.loads(path.read_text())
    except ValueError as err:
        raise InputDataError(f"{path}: invalid JSON ({err})") from err
    if not isinstance(params, dict):
        raise InputDataError(f"{path}: expected a JSON object")
    return params


def read_tsv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a tab-separated file with a header line, as dicts of strings ([] if absent)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [dict(row) for row in csv.DictReader(fh, delimiter="\t")]


def to_number(text: str | None) -> float | None:
    """A finite float from a table cell; None for an empty, non-numeric or non-finite cell."""
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_clusters_tsv(path: str | Path) -> list[dict]:
    """Cluster rows of ``clust_*_clusters_<set>.tsv`` with numbers parsed (header-only -> [])."""
    rows = []
    for raw in read_tsv(path):
        row: dict = {k: to_number(raw.get(k)) for k in CLUSTER_COLUMNS if k != "tail"}
        row["tail"] = raw.get("tail", "") or ""
        row["cluster_id"] = int(row["cluster_id"] or len(rows) + 1)
        row["n_voxels"] = int(row["n_voxels"] or 0)
        for key in EXTRA_COLUMNS:  # peak t, corrected p, atlas labels (cluster_table.py)
            if raw.get(key) not in (None, ""):
                row[key] = raw[key]
        rows.append(row)
    return rows


@dataclass
class Volume:
    """A 3-D brick in canonical RAS+ voxel order.

    Attributes
    ----------
    data : numpy.ndarray
        3-D array, axis 0 runs left to right, axis 1 posterior to anterior, axis 2 inferior to
        superior.
    affine : numpy.ndarray
        4x4 voxel-to-RAS+ mm matrix of ``data`` (mm values equal MNI / LPI coordinates).
    """

    data: np.ndarray
    affine: np.ndarray
    stat_params: tuple[float, ...] = ()
    space: str = ""  # AFNI TEMPLATE_SPACE of the file (MNI, TLRC, ORIG, ...)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape[:3])

    @property
    def voxel_sizes(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    def world(self, axis: int, index: int | np.ndarray) -> np.ndarray:
        """RAS+ mm coordinate along ``axis`` of voxel centres (cardinal approximation)."""
        return self.affine[axis, axis] * np.asarray(index) + self.affine[axis, 3]

    def extent(self, axes: tuple[int, int]) -> list[float]:
        """imshow extent (left, right, bottom, top) in mm for a slice spanning ``axes``."""
        out: list[float] = []
        for ax in axes:
            n = self.shape[ax]
            lo, hi = float(self.world(ax, 0)), float(self.world(ax, n - 1))
            half = abs(float(self.affine[ax, ax])) / 2.0
            out += [lo - half, hi + half]
        return out


def load_volume(path: str | Path, brick: str | int | None = None) -> Volume:
    """Read one sub-brick of a NIfTI (or AFNI) dataset, reoriented to canonical RAS+.

    Parameters
    ----------
    path : str or Path
        Dataset file.
    brick : str, int or None
        Sub-brick label (exact match, last wins, as in AFNI), index, or None for the first.

    Returns
    -------
    Volume

    Raises
    ------
    afni_group.errors.InputDataError
        When the file cannot be read or has no brick with that label.
    """
    from afni_group import afni_io

    dset = afni_io.read_dataset(Path(path))
    index = dset.index_of(brick) if isinstance(brick, str) else int(brick or 0)
    data = np.asarray(dset.brick(index), dtype=np.float32)
    vol = _to_canonical(data, np.asarray(dset.affine, dtype=float))
    vol.stat_params = tuple(dset.stat_dof(index))
    vol.space = dset.space
    return vol


def _to_canonical(data: np.ndarray, affine: np.ndarray) -> Volume:
    ornt = nib.orientations.io_orientation(affine)
    canon = nib.orientations.apply_orientation(data, ornt)
    new_affine = affine @ nib.orientations.inv_ornt_aff(ornt, data.shape[:3])
    return Volume(np.ascontiguousarray(canon), new_affine)
