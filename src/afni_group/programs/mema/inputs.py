"""Reading 3dMEMA's inputs: each subject dataset once, every sub-brick the sets take from it.

A tutorial stats dataset gives four bricks (two sets' beta and t); a ``.BRIK.gz`` is
decompressed once for all of them. :func:`read_files` yields the bricks file by file, so the
caller decides where they go (arrays in memory, or the on-disk store of :mod:`.store`).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from afni_group import afni_io
from afni_group.errors import AfniGroupError, InputDataError, MissingInputError

if TYPE_CHECKING:
    from afni_group.programs.mema.files import MemaSet

LOG = logging.getLogger(__name__)

#: decoded input datasets held at once while reading ahead (two copies each: file and array)
BASE_READ_BYTES = 256 << 20


@dataclass(frozen=True)
class Brick:
    """One sub-brick a set needs: set ``set_index``, subject row ``row``, beta (0) or t (1)."""

    set_index: int
    kind: int
    row: int
    spec: str
    subject: str

    @property
    def what(self) -> str:
        return "beta" if self.kind == 0 else "t-statistic"


@dataclass(frozen=True)
class Geometry:
    """Grid of the first beta dataset: what the output dataset is written on."""

    shape: tuple[int, int, int]
    affine: np.ndarray = field(compare=False)
    space: str
    view: str

    @property
    def n_vox(self) -> int:
        return int(np.prod(self.shape))

    def to_json(self) -> dict:
        return {
            "shape": list(self.shape),
            "affine": self.affine.tolist(),
            "space": self.space,
            "view": self.view,
        }

    @classmethod
    def from_json(cls, doc: dict) -> Geometry:
        shape = tuple(int(n) for n in doc["shape"])
        return cls(shape, np.array(doc["affine"], dtype=np.float64), doc["space"], doc["view"])  # type: ignore[arg-type]


def plan_reads(sets: Sequence[MemaSet]) -> list[tuple[str, list[Brick]]]:
    """Input files in reading order (the first beta's file first, then by first use), each with
    the bricks taken from it."""
    wanted: dict[str, list[Brick]] = {}
    for k, s in enumerate(sets):
        for row, (sid, b_spec, t_spec) in enumerate(
            zip(s.subjects, s.beta_specs, s.tstat_specs, strict=True)
        ):
            for kind, spec in ((0, b_spec), (1, t_spec)):
                path_text, _ = afni_io.split_selector(spec)
                wanted.setdefault(path_text, []).append(Brick(k, kind, row, spec, sid))
    first_path = afni_io.split_selector(sets[0].beta_specs[0])[0]
    order = [first_path, *(p for p in wanted if p != first_path)]
    return [(p, wanted[p]) for p in order]


@dataclass
class _FileBricks:
    """One input file read: its grid, the first brick's view, the bricks or the error."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    space: str
    view: str
    nbytes: int
    bricks: list[tuple[Brick, np.ndarray]]
    error: AfniGroupError | None = None


def _read_file(path_text: str, uses: list[Brick]) -> _FileBricks:
    """Open one file and take its bricks (an error in a brick is kept for after the grid
    check, so a file with a wrong grid reports the grid first, as before)."""
    head = uses[0]
    dset = _open_dataset(path_text, head.subject, head.what, head.spec)
    found = _FileBricks(dset.shape, dset.affine, dset.space, dset.view, dset.data.nbytes, [])
    try:
        for use in uses:
            selector = afni_io.split_selector(use.spec)[1]
            one = _select_one_brick(dset, selector, use.spec, use.subject, use.what)
            if not found.bricks:
                found.space, found.view = one.space, one.view
            found.bricks.append((use, _brick_values(one, use.spec, use.subject, use.what)))
    except AfniGroupError as err:
        found.error = err
    return found


def _prefetched(files: Sequence[tuple[str, list[Brick]]], n_threads: int) -> Iterator[_FileBricks]:
    """:func:`_read_file` of each file in order, up to ``n_threads`` files read ahead.

    Decompression and decoding release the GIL, so a study's reading (about half of a large
    3dMEMA) runs on several cores; memory holds at most ``n_threads`` more datasets.
    """
    if n_threads <= 1 or len(files) <= 1:
        yield from (_read_file(*f) for f in files)
        return
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        queue = iter(files)
        pending = deque(pool.submit(_read_file, *f) for f in itertools.islice(queue, n_threads))
        try:
            while pending:
                found = pending.popleft().result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append(pool.submit(_read_file, *nxt))
                yield found
        finally:
            for future in pending:
                future.cancel()


def read_files(
    sets: Sequence[MemaSet],
    files: Sequence[tuple[str, list[Brick]]],
    geometry: Geometry | None = None,
    n_threads: int = 1,
) -> Iterator[tuple[Geometry, list[tuple[Brick, np.ndarray]]]]:
    """Read each file once; yield the grid and its bricks as flat float32 voxel vectors.

    ``geometry`` None: the first file sets it (it must hold the first beta). Later files must
    have the same dimensions (3dMEMA's check); a different grid with the same dimensions is a
    warning, as 3dMEMA uses the first beta's grid. ``n_threads`` files are read at once after
    the first (fewer when a dataset is large: at most about BASE_READ_BYTES in flight).
    """
    first_sid = sets[0].subjects[0]
    files = list(files)
    rest = files
    if geometry is None and files:
        found = _read_file(*files[0])
        geometry = Geometry(found.shape, found.affine, found.space, found.view)
        if found.error is not None:
            raise found.error
        yield geometry, found.bricks
        rest = files[1:]
        n_threads = max(1, min(n_threads, BASE_READ_BYTES // max(2 * found.nbytes, 1)))
    for (path_text, uses), found in zip(rest, _prefetched(rest, n_threads), strict=True):
        _check_grid(found, geometry, path_text, uses[0], first_sid)
        if found.error is not None:
            raise found.error
        yield geometry, found.bricks


def read_volume(spec: str | os.PathLike, shape: tuple[int, ...], what: str) -> np.ndarray:
    """First sub-brick of a mask / missing-count dataset as float64 voxels (3dMEMA's checks)."""
    try:
        dset = afni_io.read_dataset(spec)
    except FileNotFoundError:
        raise MissingInputError(f"{what} dataset {spec} not found") from None
    if dset.shape != tuple(shape):
        raise InputDataError(
            f"{what} {spec} has grid {dset.shape} but the inputs have {tuple(shape)} "
            "(3dMEMA: dimensions don't match the input files!)"
        )
    return np.asarray(dset.data[..., 0], dtype=np.float64).reshape(-1)


def _check_grid(
    found: _FileBricks, geometry: Geometry, path_text: str, use: Brick, first_sid: str
) -> None:
    if found.shape != geometry.shape:
        raise InputDataError(
            f"Dimension mismatch: subject {use.subject} {use.what} '{use.spec}' has grid "
            f"{found.shape} but the first beta ({first_sid}) has {geometry.shape}; resample all "
            "inputs to one grid"
        )
    if not afni_io.same_grid((found.shape, found.affine), (geometry.shape, geometry.affine)):
        # 3dMEMA compares dimensions only; say so rather than stop.
        LOG.warning(
            "*+ WARNING: 3dMEMA: %s (subject %s) has the same dimensions but a different "
            "grid (origin/voxel size/orientation) than the first beta; using the first "
            "beta's grid as 3dMEMA does",
            path_text,
            use.subject,
        )


def _open_dataset(path_text: str, subject: str, what: str, spec: str) -> afni_io.AfniDataset:
    try:
        return afni_io.read_dataset(path_text)
    except FileNotFoundError:
        raise MissingInputError(
            f"subject {subject} {what}: dataset {path_text} not found"
        ) from None
    except AfniGroupError as err:
        raise type(err)(f"subject {subject} {what} '{spec}': {err}") from None


def _select_one_brick(
    dset: afni_io.AfniDataset, selector: str | None, spec: str, subject: str, what: str
) -> afni_io.AfniDataset:
    try:
        one = dset if selector is None else dset.select(f"[{selector}]")
    except AfniGroupError as err:
        raise type(err)(f"subject {subject} {what} '{spec}': {err}") from None
    if one.nvals != 1:
        raise InputDataError(
            f"subject {subject} {what} '{spec}' selects {one.nvals} sub-bricks; 3dMEMA needs "
            f"exactly one (add a selector such as [label]); labels are: {', '.join(dset.labels)}"
        )
    return one


def _brick_values(dset: afni_io.AfniDataset, spec: str, subject: str, what: str) -> np.ndarray:
    values = np.asarray(dset.data[..., 0], dtype=np.float32).reshape(-1)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputDataError(
            f"subject {subject} {what} '{spec}' has {int(bad.sum())} NaN/Inf voxel(s); "
            "3dMEMA cannot handle them: fix or zero those voxels first"
        )
    return values
