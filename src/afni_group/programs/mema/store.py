"""On-disk, voxel-major float32 store of 3dMEMA's input bricks, for studies larger than memory.

Subjects are read once each (:mod:`.inputs`) into a buffer of a few hundred bricks over the
candidate voxels (the mask, or every voxel without one); each full buffer becomes one *batch*
file holding, voxel by voxel, that batch's bricks. Voxels where every brick of the batch is
exactly +0.0 are left out and read back as +0.0, so space outside the brain costs nothing. A
block of voxels is read back with one ``pread`` per batch, whatever the number of subjects.

A ``manifest.json`` written after each batch makes the store resumable (``--resume``): it
records the inputs' identity, the batches and how many input files they hold. The caller
removes the folder when the step is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from afni_group import afni_io, atomic
from afni_group.errors import OutputError
from afni_group.programs.mema.inputs import Brick, Geometry

if TYPE_CHECKING:
    from afni_group.programs.mema.files import MemaSet

LOG = logging.getLogger(__name__)

VERSION = 1
MANIFEST = "manifest.json"
#: candidate positions per prefix-count entry of a batch's voxel bitmap (a multiple of 8)
SEGMENT = 4096
#: voxels written per piece when a batch is saved (bounds the transposed copy)
WRITE_PIECE = 65536


def store_key(sets: Sequence[MemaSet], extra_specs: Sequence[str], settings: dict) -> str:
    """Hash of what the store holds: the sets' specs, the size and mtime of each input file
    (and of ``extra_specs``, e.g. the mask) and ``settings``; a resumed store must match it."""
    files = []
    specs = [spec for s in sets for spec in [*s.beta_specs, *s.tstat_specs]]
    for spec in [*specs, *extra_specs]:
        for path in _data_files(afni_io.split_selector(spec)[0]):
            st = path.stat() if path.exists() else None
            files.append([str(path), st.st_size if st else None, st.st_mtime_ns if st else None])
    doc = {
        "version": VERSION,
        "sets": [[s.label, s.subjects, s.beta_specs, s.tstat_specs] for s in sets],
        "files": files,
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _data_files(path_text: str) -> list[Path]:
    try:
        _kind, head, brik, _view = afni_io.resolve(path_text)
    except Exception:  # missing input: reading it reports the error
        return [Path(path_text)]
    return [Path(p) for p in (head, brik) if p is not None]


class _Batch:
    """One batch file: ``rows`` voxels (the batch's support) × ``columns`` bricks, float32."""

    def __init__(self, path: Path, columns: Sequence[int], bits: np.ndarray, n_candidates: int):
        self.path = path
        self.columns = np.asarray(columns, dtype=np.int64)
        self.bits = bits  # np.packbits of the support over candidate positions
        counts = np.unpackbits(bits, count=n_candidates)
        pad = (-n_candidates) % SEGMENT
        per_segment = np.pad(counts, (0, pad)).reshape(-1, SEGMENT).sum(axis=1)
        self.prefix = np.concatenate([[0], np.cumsum(per_segment)])
        self.rows = int(self.prefix[-1])
        self.fd: int | None = None

    def read(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of the sorted candidate ``positions`` the batch holds, and their values.

        One ``pread`` covers the rows from the first to the last position; rows between them
        that were not asked for are read too (none when ``positions`` is a run of the
        positions some batch holds).
        """
        lo, hi = int(positions[0]), int(positions[-1]) + 1
        start = (lo // SEGMENT) * SEGMENT
        support = np.unpackbits(self.bits[start // 8 : (hi + 7) // 8], count=hi - start)
        first_row = int(self.prefix[lo // SEGMENT]) + int(support[: lo - start].sum())
        in_range = support[lo - start :]
        asked = positions - lo
        held = np.flatnonzero(in_range[asked])
        width = self.columns.size
        if held.size == 0:
            return held, np.zeros((0, width), np.float32)
        rows = np.cumsum(in_range, dtype=np.int64)[asked[held]] - 1
        n_rows = int(rows[-1]) + 1
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        raw = _pread(self.fd, n_rows * width * 4, first_row * width * 4, self.path)
        return held, np.frombuffer(raw, np.float32).reshape(n_rows, width)[rows]

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _pread(fd: int, size: int, offset: int, path: Path) -> bytes:
    parts = []
    while size > 0:
        chunk = os.pread(fd, min(size, 1 << 30), offset)
        if not chunk:
            raise OutputError(f"3dMEMA store file {path} is truncated; remove the folder and rerun")
        parts.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(parts)


class VoxelStore:
    """The store in ``folder``: batches of bricks over ``n_candidates`` candidate voxels.

    Parameters
    ----------
    folder : Path
        Its own folder (created; removed by :meth:`remove`).
    key : str
        :func:`store_key` of the inputs.
    geometry : Geometry
        Grid of the first beta (written with the output).
    n_candidates, n_columns : int
        Candidate voxels (store rows at most) and input bricks (columns).
    zero_sets : int
        Sets whose exact-zero betas are counted over every voxel (``-missing_data 0``), else 0.
    """

    def __init__(
        self,
        folder: Path,
        key: str,
        geometry: Geometry,
        n_candidates: int,
        n_columns: int,
        zero_sets: int = 0,
    ):
        self.folder = Path(folder)
        self.key = key
        self.geometry = geometry
        self.n_candidates = int(n_candidates)
        self.n_columns = int(n_columns)
        self.batches: list[_Batch] = []
        self.files_done = 0
        self.complete = False
        self.zero_counts = np.zeros((zero_sets, geometry.n_vox), np.int32) if zero_sets else None

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: Path, *args, **kwargs) -> VoxelStore:
        """A new, empty store (an older folder of that name is removed first)."""
        folder = Path(folder)
        remove_folder(folder)
        try:
            folder.mkdir(parents=True)
        except OSError as err:
            raise OutputError(f"cannot create the 3dMEMA store folder {folder}: {err}") from None
        return cls(folder, *args, **kwargs)

    @classmethod
    def reopen(cls, folder: Path, key: str) -> VoxelStore | None:
        """The store left in ``folder`` by an interrupted run of the same inputs, else None."""
        try:
            doc = json.loads((Path(folder) / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        if doc.get("version") != VERSION or doc.get("key") != key:
            return None
        geometry = Geometry.from_json(doc["geometry"])
        store = cls(folder, key, geometry, doc["n_candidates"], doc["n_columns"])
        try:
            for entry in doc["batches"]:
                bits = np.fromfile(store.folder / f"{entry['name']}.bits", np.uint8)
                batch = _Batch(
                    store.folder / entry["name"], entry["columns"], bits, store.n_candidates
                )
                if batch.path.stat().st_size != 4 * batch.rows * batch.columns.size:
                    return None
                store.batches.append(batch)
            if doc["zeros"]:
                store.zero_counts = np.load(store.folder / doc["zeros"])
        except (OSError, ValueError):
            return None
        store.files_done = int(doc["files_done"])
        store.complete = bool(doc["complete"])
        return store

    def close(self) -> None:
        for batch in self.batches:
            batch.close()

    def remove(self) -> None:
        """Close and delete the folder."""
        self.close()
        remove_folder(self.folder)

    def disk_bytes(self) -> int:
        return sum(4 * b.rows * b.columns.size for b in self.batches)

    # -- writing -----------------------------------------------------------------------------
    def add_batch(self, columns: Sequence[int], data: np.ndarray, files_done: int) -> None:
        """Save ``data`` (len(columns), n_candidates) as the next batch, then the manifest."""
        name = f"batch-{len(self.batches):05d}"
        support = np.zeros(self.n_candidates, bool)

        def fill(fh) -> None:
            for lo in range(0, self.n_candidates, WRITE_PIECE):
                piece = data[:, lo : lo + WRITE_PIECE]
                # exact bits: -0.0 is kept (it can change the sign of zero outputs)
                held = (piece.view(np.uint32) != 0).any(axis=0)
                support[lo : lo + WRITE_PIECE] = held
                fh.write(np.ascontiguousarray(piece[:, held].T).tobytes())

        atomic.write_bytes(self.folder / name, fill)
        bits = np.packbits(support)
        atomic.write_bytes(self.folder / f"{name}.bits", lambda fh: fh.write(bits.tobytes()))
        self.batches.append(_Batch(self.folder / name, columns, bits, self.n_candidates))
        self.files_done = files_done
        self._save_manifest()

    def finish(self) -> None:
        """Mark every input as stored."""
        self.complete = True
        self._save_manifest()

    def _save_manifest(self) -> None:
        # zero counts under a new name per batch: a crash between the two writes leaves the
        # manifest naming the counts that match its batches
        zeros = None
        if self.zero_counts is not None:
            counts = self.zero_counts
            zeros = f"zero_counts-{len(self.batches):05d}.npy"
            atomic.write_bytes(self.folder / zeros, lambda fh: np.save(fh, counts))
        doc = {
            "version": VERSION,
            "key": self.key,
            "geometry": self.geometry.to_json(),
            "n_candidates": self.n_candidates,
            "n_columns": self.n_columns,
            "zeros": zeros,
            "files_done": self.files_done,
            "complete": self.complete,
            "batches": [{"name": b.path.name, "columns": b.columns.tolist()} for b in self.batches],
        }
        atomic.write_text(self.folder / MANIFEST, json.dumps(doc))
        for old in self.folder.glob("zero_counts-*.npy"):
            if old.name != zeros:
                old.unlink(missing_ok=True)

    # -- reading -----------------------------------------------------------------------------
    def fetch(self, positions: np.ndarray) -> np.ndarray:
        """Bricks of the sorted candidate ``positions`` as a (len, n_columns) float32 block."""
        block = np.zeros((len(positions), self.n_columns), np.float32)
        for batch in self.batches:
            held, values = batch.read(positions)
            if held.size:
                block[held[:, None], batch.columns[None, :]] = values
        return block

    def held(self) -> np.ndarray:
        """Candidate positions some batch holds (elsewhere every brick is +0.0)."""
        bits = np.zeros((self.n_candidates + 7) // 8, np.uint8)
        for batch in self.batches:
            bits |= batch.bits
        return np.flatnonzero(np.unpackbits(bits, count=self.n_candidates))


def ingest(
    store: VoxelStore,
    bricks_by_file: Iterable[tuple[Geometry, list[tuple[Brick, np.ndarray]]]],
    column_of: dict[tuple[int, int, int], int],
    candidates: np.ndarray,
    batch_columns: int,
    on_file=None,
) -> None:
    """Fill ``store`` from files' bricks (those after ``store.files_done``), batch by batch.

    ``column_of`` maps (set, kind, row) to the store column; ``candidates`` are the voxel
    indices kept. Exact-zero betas are counted over every voxel when the store counts them.
    """
    every_voxel = candidates.size == store.geometry.n_vox
    buffer = np.empty((batch_columns, store.n_candidates), np.float32)
    columns: list[int] = []
    files_done = store.files_done
    for _geometry, bricks in bricks_by_file:
        if columns and len(columns) + len(bricks) > batch_columns:
            store.add_batch(columns, buffer[: len(columns)], files_done)
            columns = []
        for brick, values in bricks:
            if brick.kind == 0 and store.zero_counts is not None:
                store.zero_counts[brick.set_index] += values == 0
            buffer[len(columns)] = values if every_voxel else values[candidates]
            columns.append(column_of[(brick.set_index, brick.kind, brick.row)])
        files_done += 1
        if on_file is not None:
            on_file(1)
    if columns:
        store.add_batch(columns, buffer[: len(columns)], files_done)
    store.finish()


def remove_folder(folder: Path) -> None:
    """Delete a store folder (nothing if it is not there)."""
    if Path(folder).exists():
        shutil.rmtree(folder, ignore_errors=True)
