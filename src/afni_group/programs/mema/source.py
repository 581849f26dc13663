"""Where 3dMEMA's inputs live while it fits: arrays in memory, or the on-disk store.

:func:`load_inputs` reads every subject dataset once. Inputs that take at most half of the
memory limit stay in memory (as 3dMEMA always did); larger ones are copied into a
:class:`~.store.VoxelStore` and read back block by block, so memory does not grow with the
number of subjects. Either way the fit sees the same values, so the results are identical.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from afni_group.programs.mema.budget import MemoryPlan, format_bytes, plan_memory
from afni_group.programs.mema.core import ZERO_TOL, Fetch, array_fetch, min_nonzero
from afni_group.programs.mema.design import MemaDesign
from afni_group.programs.mema.inputs import Brick, Geometry, plan_reads, read_files, read_volume
from afni_group.programs.mema.store import VoxelStore, ingest, remove_folder, store_key
from afni_group.progress import Progress

if TYPE_CHECKING:
    from afni_group.programs.mema.files import MemaSet

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreOverrides:
    """Fixed block size, memory/store choice and bricks per store batch (tests, benchmarks)."""

    chunk_size: int | None = None
    use_store: bool | None = None
    batch_columns: int | None = None


@dataclass(frozen=True)
class InputSource:
    """What to read and how much memory reading and fitting may use.

    Attributes
    ----------
    sets : list of MemaSet
    mask : str, optional
        ``-mask`` dataset: only its voxels are stored and fitted.
    missing_data : None, 0 or one file per set
        0: exact-zero betas are counted while reading.
    mem_limit : int
        Bytes (see :mod:`.budget`).
    n_nonzero : int
        ``-n_nonzero``: with it (or ``missing_data``) voxels zero in every subject are skipped.
    work_dir : Path, optional
        Folder of a store kept for ``resume``; None: a temporary folder, always removed.
    resume : bool
        Reuse the store in ``work_dir`` if it holds these inputs.
    overrides : StoreOverrides
    """

    sets: Sequence[MemaSet]
    mask: str | None
    missing_data: int | list[str] | None
    mem_limit: int
    n_nonzero: int = -1
    work_dir: Path | None = None
    resume: bool = False
    overrides: StoreOverrides = StoreOverrides()


@dataclass
class Inputs:
    """What the fit needs: the grid, a block reader over candidate voxels, zero counts."""

    geometry: Geometry
    fetch: Fetch
    candidates: np.ndarray
    zero_counts: np.ndarray | None
    chunk: int


@contextlib.contextmanager
def load_inputs(
    source: InputSource, model: MemaDesign, *, n_jobs: int, progress: bool, temp_parent: Path
) -> Iterator[Inputs]:
    """Read the inputs (into memory or a store) and yield them; a store is removed after the
    block unless it fails with ``source.work_dir`` set (kept for ``resume``).

    ``temp_parent`` holds the temporary store when there is no ``work_dir``.
    """
    files = plan_reads(source.sets)
    store = _reopen(source)
    if store is None and source.work_dir is not None:
        remove_folder(source.work_dir)  # a store of other inputs (or not resumed): not needed
    if store is None:
        reader = read_files(source.sets, files, n_threads=n_jobs)
        first = next(reader)
        geometry = first[0]
        reader = itertools.chain([first], reader)
    else:
        geometry = store.geometry
        reader = read_files(source.sets, files[store.files_done :], geometry, n_jobs)
    plan = _plan(source, model, geometry.n_vox, geometry.n_vox, n_jobs, files)
    if store is None and plan.in_memory:
        yield _in_memory(source, reader, geometry, plan.chunk)
        return
    candidates = _candidates(source.mask, geometry)
    plan = _plan(source, model, geometry.n_vox, candidates.size, n_jobs, files)
    temporary = source.work_dir is None
    if store is None:
        folder = source.work_dir or Path(tempfile.mkdtemp(prefix=".3dMEMA-store-", dir=temp_parent))
        store = _new_store(source, folder, geometry, candidates.size, 2 * model.n_total, plan)
    finished = False
    try:
        if not store.complete:
            column_of = _columns(source.sets)
            n_files = len(files) - store.files_done
            with Progress("3dMEMA reading", n_files, "datasets", enabled=progress) as bar:
                ingest(store, reader, column_of, candidates, plan.batch_columns, bar.update)
        LOG.info(
            "++ 3dMEMA: input store %s: %s on disk (%d batch file(s), %d candidate voxels); "
            "fitting %d voxels per block",
            store.folder,
            format_bytes(store.disk_bytes()),
            len(store.batches),
            candidates.size,
            plan.chunk,
        )
        zero_counts = _zero_counts(source, geometry, store)
        positions = np.arange(candidates.size)
        if min_nonzero(model, source.missing_data is not None, source.n_nonzero) > 0:
            # voxels zero in every subject cannot be analysed: not even read back
            positions = store.held()
        fetch = _store_fetch(store, source.sets, positions)
        yield Inputs(geometry, fetch, candidates[positions], zero_counts, plan.chunk)
        finished = True
    finally:
        if finished or temporary:
            store.remove()
        else:
            store.close()
            LOG.warning(
                "*+ WARNING: 3dMEMA: its input store (%s) is kept in %s: --resume reuses it if "
                "the inputs are unchanged, a run without --resume removes it",
                format_bytes(store.disk_bytes()),
                store.folder,
            )


def _key(source: InputSource) -> str:
    return store_key(
        source.sets,
        [source.mask] if source.mask else [],
        {"mask": source.mask, "count_zeros": source.missing_data == 0},
    )


def _reopen(source: InputSource) -> VoxelStore | None:
    if source.work_dir is None or not source.resume:
        return None
    store = VoxelStore.reopen(source.work_dir, _key(source))
    if store is not None:
        LOG.info(
            "++ 3dMEMA: --resume: reusing the input store in %s (%d dataset(s) already stored)",
            store.folder,
            store.files_done,
        )
    return store


def _plan(
    source: InputSource,
    model: MemaDesign,
    n_vox: int,
    n_candidates: int,
    n_jobs: int,
    files: list[tuple[str, list[Brick]]],
) -> MemoryPlan:
    o = source.overrides
    plan = plan_memory(
        source.mem_limit,
        n_vox,
        n_candidates,
        2 * model.n_total,
        model.n_rows,
        model.n_bricks,
        n_jobs=n_jobs,
        min_columns=max(len(uses) for _, uses in files),
        force_store=o.use_store,
    )
    return MemoryPlan(
        plan.in_memory,
        o.batch_columns or plan.batch_columns,
        o.chunk_size or plan.chunk,
        plan.inputs_bytes,
    )


def _new_store(
    source: InputSource,
    folder: Path,
    geometry: Geometry,
    n_candidates: int,
    n_columns: int,
    plan: MemoryPlan,
) -> VoxelStore:
    most = 4 * n_candidates * n_columns
    LOG.info(
        "++ 3dMEMA: %d input bricks take %s, more than half of the memory limit (%s): reading "
        "them once into a voxel-major store in %s (at most %s on disk, %d bricks per batch)",
        n_columns,
        format_bytes(plan.inputs_bytes),
        format_bytes(source.mem_limit),
        folder,
        format_bytes(most),
        plan.batch_columns,
    )
    zero_sets = len(source.sets) if source.missing_data == 0 else 0
    store = VoxelStore.create(folder, _key(source), geometry, n_candidates, n_columns, zero_sets)
    free = shutil.disk_usage(folder).free
    if free < most:
        LOG.warning(
            "*+ WARNING: 3dMEMA: the input store may need up to %s but %s has %s free (voxels "
            "that are zero in every subject take no space); give a mask, or a --work-dir on a "
            "larger disk, if it runs out",
            format_bytes(most),
            folder,
            format_bytes(free),
        )
    return store


def _columns(sets: Sequence[MemaSet]) -> dict[tuple[int, int, int], int]:
    """Store column of (set, kind, row): each set's betas, then its t's, set after set."""
    column_of = {}
    offset = 0
    for k, s in enumerate(sets):
        n = len(s.subjects)
        for row in range(n):
            column_of[(k, 0, row)] = offset + row
            column_of[(k, 1, row)] = offset + n + row
        offset += 2 * n
    return column_of


def _store_fetch(store: VoxelStore, sets: Sequence[MemaSet], positions: np.ndarray) -> Fetch:
    """Per-set (n_subjects, V) views of the store's blocks at ``positions[lo:hi]``."""
    sizes = [len(s.subjects) for s in sets]
    offsets = np.concatenate([[0], np.cumsum([2 * n for n in sizes])])

    def fetch(lo: int, hi: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        block = store.fetch(positions[lo:hi])
        betas = [block[:, o : o + n].T for o, n in zip(offsets[:-1], sizes, strict=True)]
        tstats = [block[:, o + n : o + 2 * n].T for o, n in zip(offsets[:-1], sizes, strict=True)]
        return betas, tstats

    return fetch


def _candidates(mask: str | None, geometry: Geometry) -> np.ndarray:
    """Voxels that may be analysed: the mask's (|value| > 1e-16), or all."""
    if mask is None:
        return np.arange(geometry.n_vox)
    return np.flatnonzero(np.abs(read_volume(mask, geometry.shape, "-mask")) > ZERO_TOL)


def _zero_files(files: list[str], geometry: Geometry) -> np.ndarray:
    volumes = [read_volume(f, geometry.shape, "-missing_data") for f in files]
    return np.stack([v.round().astype(np.int64) for v in volumes])


def _zero_counts(source: InputSource, geometry: Geometry, store: VoxelStore) -> np.ndarray | None:
    if isinstance(source.missing_data, list):
        return _zero_files(source.missing_data, geometry)
    return store.zero_counts


def _in_memory(source: InputSource, reader, geometry: Geometry, chunk: int) -> Inputs:
    """Every brick in (n_subjects, n_voxels) arrays per set, then the mask and missing counts."""
    arrays = [np.empty((2, len(s.subjects), geometry.n_vox), np.float32) for s in source.sets]
    for _geometry, bricks in reader:
        for brick, values in bricks:
            arrays[brick.set_index][brick.kind, brick.row] = values
    betas, tstats = [a[0] for a in arrays], [a[1] for a in arrays]
    candidates = _candidates(source.mask, geometry)
    zero_counts = None
    if isinstance(source.missing_data, list):
        zero_counts = _zero_files(source.missing_data, geometry)
    elif source.missing_data == 0:
        zero_counts = np.stack([(b == 0).sum(axis=0) for b in betas])
    return Inputs(geometry, array_fetch(betas, tstats, candidates), candidates, zero_counts, chunk)
