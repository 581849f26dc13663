"""How native 3dMEMA spends a memory limit: inputs in memory, or an on-disk store read in blocks.

Without a limit 3dMEMA would hold every subject's beta and t bricks at once (about 7.2 MB per
subject and set at 2 mm), so memory would grow with the study. With a limit (``--mem-limit``,
``-mem_limit``) the step keeps the inputs in memory only while they take at most half of it;
larger studies go through :mod:`.store`, whose read buffer and fit blocks are sized from the
limit, so the peak stays flat in the number of subjects. Results do not depend on the choice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from afni_group.errors import UsageError

MIB = 1 << 20
GIB = 1 << 30
#: default ``--mem-limit``: fits a laptop and a typical cluster slot
DEFAULT_MEM_LIMIT = 2 * GIB
#: below this the interpreter and libraries alone would not fit
MIN_MEM_LIMIT = 256 * MIB
#: interpreter, numpy/scipy/nibabel and one subject dataset being decoded
BASE_BYTES = 256 * MIB
#: per output voxel and brick: the float64 result, its float32 copy and the writer's buffers
OUTPUT_BYTES_PER_VALUE = 24

#: Peak bytes fit_block's float64 temporaries take per voxel and model row (about 16 arrays of
#: shape (V, n); measured with tracemalloc), plus the block's float32 beta and t.
FIT_BYTES_PER_VOXEL_ROW = 136
#: Voxel-rows per block that keep those temporaries near the caches (~140 MB): larger blocks
#: are slower, smaller ones pay more Python overhead.
FIT_VOXEL_ROWS = 1 << 20
#: Most voxels in one block, whatever the model size.
MAX_CHUNK = 16384


def chunk_voxels(n_rows: int, budget_bytes: float | None = None, n_jobs: int = 1) -> int:
    """Voxels per block for a model of ``n_rows`` rows (results do not depend on it).

    At most :data:`MAX_CHUNK` and :data:`FIT_VOXEL_ROWS` voxel-rows; with a budget, small enough
    that ``n_jobs`` blocks in flight fit in ``budget_bytes``.
    """
    n_rows = max(1, int(n_rows))
    size = min(MAX_CHUNK, FIT_VOXEL_ROWS // n_rows)
    if budget_bytes is not None:
        per_voxel = FIT_BYTES_PER_VOXEL_ROW * n_rows * max(1, n_jobs)
        size = min(size, int(budget_bytes // per_voxel))
    return max(1, size)


_UNITS = {"": None, "k": 1 << 10, "m": MIB, "g": GIB, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_mem_limit(text: str, option: str = "--mem-limit") -> int:
    """``2GB``, ``1.5G``, ``1500MB``, ``800M`` → bytes (units are powers of 1024).

    Raises :class:`UsageError` naming ``option`` for text without a unit, unknown units and
    limits under :data:`MIN_MEM_LIMIT`.
    """
    match = _SIZE.match(str(text))
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise UsageError(
            f"{option} {text!r}: give a size with a unit, e.g. 2GB, 1.5G or 800MB (powers of 1024)"
        )
    size = int(float(match.group(1)) * unit)
    if size < MIN_MEM_LIMIT:
        raise UsageError(
            f"{option} {text}: at least {format_bytes(MIN_MEM_LIMIT)} is needed (the interpreter "
            "and libraries alone take about that)"
        )
    return size


def format_bytes(n: float) -> str:
    """``1536 MiB`` → ``'1.5 GB'`` (powers of 1024; MB under 1 GB, kB under 1 MB)."""
    if n >= GIB:
        return f"{n / GIB:.1f} GB"
    if n >= MIB:
        return f"{n / MIB:.0f} MB"
    return f"{n / 1024:.0f} kB"


@dataclass(frozen=True)
class MemoryPlan:
    """Where 3dMEMA's inputs live and how big its pieces are.

    Attributes
    ----------
    in_memory : bool
        All bricks in memory at once (small studies), else the on-disk store.
    batch_columns : int
        Store: bricks held in memory while reading, written to disk together.
    chunk : int
        Voxels fitted at once per thread.
    inputs_bytes : int
        What the in-memory inputs would take (also an upper bound of the store on disk).
    """

    in_memory: bool
    batch_columns: int
    chunk: int
    inputs_bytes: int


def plan_memory(
    limit: int,
    n_vox: int,
    n_candidates: int,
    n_columns: int,
    n_rows: int,
    n_bricks: int,
    *,
    n_jobs: int = 1,
    min_columns: int = 1,
    force_store: bool | None = None,
) -> MemoryPlan:
    """Split ``limit`` bytes between the inputs and the fit blocks.

    Parameters
    ----------
    limit : int
        The memory limit in bytes.
    n_vox, n_candidates : int
        Voxels of the grid, and those that may be analysed (in the mask).
    n_columns : int
        Input bricks (beta and t of every subject of every set).
    n_rows, n_bricks : int
        Rows of the model and output sub-bricks.
    n_jobs : int
        Threads, each fitting one block.
    min_columns : int
        Most bricks one input dataset gives (a read batch holds at least one dataset's).
    force_store : bool, optional
        True/False: use the store / memory whatever the sizes (tests, benchmarks).
    """
    budget = max(limit - BASE_BYTES - OUTPUT_BYTES_PER_VALUE * n_vox * n_bricks, 64 * MIB)
    inputs = 4 * n_columns * n_vox
    in_memory = inputs <= budget // 2 if force_store is None else not force_store
    if in_memory:
        fit_budget = max(budget - inputs, budget // 2)
        columns = n_columns
    else:
        fit_budget = budget
        columns = max(min_columns, min(n_columns, int(budget // 2 // (4 * max(n_candidates, 1)))))
    # the store's blocks also hold the raw rows they were read from (float32, per brick)
    per_voxel_extra = 0 if in_memory else 4 * n_columns
    chunk = chunk_voxels(n_rows, fit_budget * _fit_share(n_rows, per_voxel_extra), n_jobs)
    return MemoryPlan(in_memory, columns, chunk, inputs)


def _fit_share(n_rows: int, extra_per_voxel: int) -> float:
    """Fraction of the fit budget left for fit_block's temporaries after the raw block rows."""
    fit = FIT_BYTES_PER_VOXEL_ROW * max(n_rows, 1)
    return fit / (fit + extra_per_voxel)
