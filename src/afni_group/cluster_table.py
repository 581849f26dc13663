"""The paste-ready part of the cluster table: peak t, FWE-corrected p and atlas labels.

3dClusterize's columns (size, centre of mass, peak, mean, SEM, peak value) are written by
``clusterize.write_clusters_tsv``; this module computes the columns it appends
(:data:`EXTRA_COLUMNS`) for each cluster:

* ``peak_t``: t at the peak voxel (3dClusterize's peak: the voxel of largest |effect|);
  ``max_t``: the signed t of largest |t| in the cluster, and ``max_t_{x,y,z}_lpi`` where it is
  (the two voxels differ: the t map and the effect map do not peak at the same place);
* ``p_fwe``: the cluster's family-wise-error corrected p, interpolated in the 3dClustSim table
  at the voxelwise p; beyond the table it is the table's bound and ``p_fwe_bound`` says which
  side (``<``: the true p is smaller, ``>``: larger; ``=`` interpolated);
* ``{peak,cm}_<atlas>``: region at the peak and at the centre of mass, and
  ``composition_<atlas>``: regions covering >= 5 % of the cluster's voxels, for the
  Harvard-Oxford and AAL atlases (:mod:`afni_group.atlas`). Only for data in MNI space
  (TEMPLATE_SPACE ``MNI``); otherwise ``n/a``.

Values in, values out: the callers (the engines, the report) pass the t brick, its affine and
space, and the parsed ClustSim table they already hold or read once. It also condenses the tsv
for ``params.json`` (:func:`params_summary`).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afni_group import atlas
from afni_group.programs.clustsim.core import ClustSimTable, corrected_alpha

LOG = logging.getLogger("afni_group")

NA = "n/a"
STAT_COLUMNS = (
    "peak_t",
    "max_t",
    "max_t_x_lpi",
    "max_t_y_lpi",
    "max_t_z_lpi",
    "p_fwe",
    "p_fwe_bound",
)
LABEL_KINDS = ("peak", "cm", "composition")


def label_columns(atlases: Sequence[str] = atlas.DEFAULT_ATLASES) -> tuple[str, ...]:
    """``peak_<atlas>``, ``cm_<atlas>`` and ``composition_<atlas>`` for each atlas."""
    return tuple(f"{kind}_{key}" for kind in LABEL_KINDS for key in atlases)


EXTRA_COLUMNS: tuple[str, ...] = STAT_COLUMNS + label_columns()


@dataclass
class ClusterGeometry:
    """One cluster in MNI/LPI (RAS+) mm with its t values.

    Attributes
    ----------
    cluster_id : int
    n_voxels : int
    peak_xyz, cm_xyz : numpy.ndarray
        (3,) peak and centre of mass.
    voxel_xyz : numpy.ndarray
        (n, 3) voxel centres.
    t : numpy.ndarray
        (n,) t value of each voxel.
    """

    cluster_id: int
    n_voxels: int
    peak_xyz: np.ndarray
    cm_xyz: np.ndarray
    voxel_xyz: np.ndarray
    t: np.ndarray

    def peak_t(self) -> float:
        """t at the cluster voxel nearest to the peak coordinate."""
        dist = np.sum((self.voxel_xyz - self.peak_xyz) ** 2, axis=1)
        return float(self.t[int(np.argmin(dist))])

    def max_t(self) -> float:
        return float(self.t[int(np.argmax(np.abs(self.t)))])

    def max_t_xyz(self) -> np.ndarray:
        """Centre (mm, LPI) of the voxel of largest |t| (the first of ties, as :meth:`max_t`)."""
        return self.voxel_xyz[int(np.argmax(np.abs(self.t)))]


def _world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    ijk = np.asarray(ijk, dtype=float).reshape(-1, 3)
    return ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def geometry_from_result(result, t: np.ndarray, affine: np.ndarray) -> list[ClusterGeometry]:
    """Clusters of a native ``ClusterResult``/``ClusterizeResult`` (voxel lists in the
    dataset's own order), with ``t`` (the t brick) and ``affine`` (voxel -> RAS+ mm) of the
    dataset they were found in."""
    affine = np.asarray(affine, dtype=float)
    out = []
    for c in result.clusters:
        ijk = np.asarray(c.ijk, dtype=int).reshape(-1, 3)
        out.append(
            ClusterGeometry(
                int(c.index),
                int(ijk.shape[0]),
                np.asarray(c.stats_lpi.peak_xyz, dtype=float),
                np.asarray(c.stats_lpi.cm, dtype=float),
                _world(affine, ijk),
                np.asarray(t[tuple(ijk.T)], dtype=float),
            )
        )
    return out


def geometry_from_map(
    cluster_ids: np.ndarray, t: np.ndarray, affine: np.ndarray, rows: list[dict]
) -> list[ClusterGeometry]:
    """Clusters from a cluster-index map (the brick of ``clust_*_map_*.nii.gz``) and the
    tsv/report rows, with the t brick and affine of the dataset the map was made from.

    ``rows`` are the cluster rows (``cluster_id``, ``peak_{x,y,z}_lpi``, ``cm_{x,y,z}_lpi``);
    the map's voxel value is the cluster id, as 3dClusterize writes it.
    """
    ids = np.rint(cluster_ids).astype(int)
    affine = np.asarray(affine, dtype=float)
    out = []
    for row in rows:
        cid = int(row["cluster_id"])
        ijk = np.argwhere(ids == cid)
        if ijk.size == 0:
            continue
        out.append(
            ClusterGeometry(
                cid,
                int(ijk.shape[0]),
                np.array([row[f"peak_{a}_lpi"] for a in "xyz"], dtype=float),
                np.array([row[f"cm_{a}_lpi"] for a in "xyz"], dtype=float),
                _world(affine, ijk),
                np.asarray(t[tuple(ijk.T)], dtype=float),
            )
        )
    return out


def p_fwe_cells(table, pthr: float | None, n_voxels: float) -> tuple[str, str]:
    """Corrected p of a cluster and its bound flag, as tsv cells.

    ``("0.0123", "=")`` inside the table; ``("0.01", "<")`` or ``("0.1", ">")`` beyond it
    (the table's smallest/largest alpha); ``("n/a", "n/a")`` without a table or row.
    """
    if table is None or pthr is None:
        return NA, NA
    alpha = corrected_alpha(table, float(pthr), n_voxels)
    if alpha is None:
        return NA, NA
    if alpha.relation == "=":
        return f"{alpha.value:.4f}", "="
    return f"{alpha.value:g}", alpha.relation


def annotate(
    clusters: list[ClusterGeometry],
    space: str | None,
    *,
    table: ClustSimTable | None = None,
    pthr: float | None = None,
    atlases: Sequence[str] = atlas.DEFAULT_ATLASES,
) -> list[dict[str, str]]:
    """The extra tsv cells of each cluster (keys: :data:`STAT_COLUMNS` + label columns).

    ``p_fwe`` comes from ``table`` (the 3dClustSim table the cluster-size threshold was read
    from, as parsed from its ``.1D`` file) at ``pthr``; ``n/a`` without them. Label cells are
    ``n/a`` when ``space`` is not MNI or the atlases are not installed (with a warning); a
    region name otherwise (``no_label`` outside every region).
    """
    use_atlas = atlas.labels_apply(space)
    if clusters and not use_atlas:
        LOG.info("++ no atlas labels: the data are in %s space, the atlases in MNI", space)
    rows = []
    for c in clusters:
        p_fwe, bound = p_fwe_cells(table, pthr, c.n_voxels)
        row = {
            "peak_t": f"{c.peak_t():.4f}",
            "max_t": f"{c.max_t():.4f}",
            **{f"max_t_{a}_lpi": f"{v:.2f}" for a, v in zip("xyz", c.max_t_xyz(), strict=True)},
            "p_fwe": p_fwe,
            "p_fwe_bound": bound,
        }
        row.update(dict.fromkeys(label_columns(atlases), NA))
        if use_atlas:
            try:
                labels = atlas.label_cluster(c.peak_xyz, c.cm_xyz, c.voxel_xyz, tuple(atlases))
            except Exception as err:  # labels are extras: never lose the run's results for them
                LOG.warning("!! no atlas labels: %s", err)
                use_atlas = False
            else:
                for key in atlases:
                    row[f"peak_{key}"] = str(labels.peak[key])
                    row[f"cm_{key}"] = str(labels.centre[key])
                    row[f"composition_{key}"] = "; ".join(str(s) for s in labels.composition[key])
        rows.append(row)
    return rows


def tsv_extra(
    result,
    t: np.ndarray,
    affine: np.ndarray,
    space: str | None,
    table: ClustSimTable | None = None,
    pthr: float | None = None,
) -> tuple[tuple[str, ...], list[dict[str, str]]]:
    """(column names, one dict per cluster) to append to ``write_clusters_tsv``'s table.

    ``t``, ``affine`` and ``space`` are the t brick, voxel -> RAS+ mm affine and TEMPLATE_SPACE
    of the dataset ``result`` was clustered in; ``table`` and ``pthr`` as :func:`annotate`.
    """
    clusters = geometry_from_result(result, t, affine)
    return EXTRA_COLUMNS, annotate(clusters, space, table=table, pthr=pthr)


def _number(text: str) -> float | str:
    """A float cell; text that is not a number (``<0.01`` in tables of older runs) as it is."""
    try:
        return float(text)
    except ValueError:
        return text


def params_summary(tsv_path: str | Path) -> list[dict]:
    """A short per-cluster summary of a clusters tsv for ``params.json`` ([] if absent)."""
    path = Path(tsv_path)
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    keep = ("cluster_id", "tail", "n_voxels", "volume_mm3", "peak_t", "max_t", "p_fwe")
    out = []
    for row in rows:
        item: dict = {k: row.get(k) for k in keep if k in row}
        for k in ("cluster_id", "n_voxels"):
            if item.get(k) not in (None, ""):
                item[k] = int(item[k])
        for k in ("volume_mm3", "peak_t", "max_t", "p_fwe"):
            if item.get(k) not in (None, "", NA):
                item[k] = _number(item[k])
        if row.get("p_fwe_bound") not in (None, "", NA):
            item["p_fwe_bound"] = row["p_fwe_bound"]
        item["peak_lpi"] = [float(row[f"peak_{a}_lpi"]) for a in "xyz"]
        if row.get("max_t_x_lpi") not in (None, "", NA):
            item["max_t_lpi"] = [float(row[f"max_t_{a}_lpi"]) for a in "xyz"]
        item["peak_region"] = {
            key: row[f"peak_{key}"] for key in atlas.DEFAULT_ATLASES if f"peak_{key}" in row
        }
        out.append(item)
    return out
