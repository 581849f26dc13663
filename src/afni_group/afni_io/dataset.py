"""The in-memory dataset (:class:`AfniDataset`) and AFNI/NIfTI datum codes."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from afni_group.afni_io.naming import _view_of_space
from afni_group.afni_io.selectors import parse_selector
from afni_group.afni_io.stat_codes import STAT_SHORT_NAMES
from afni_group.errors import InputDataError

# BRICK_TYPES codes <-> numpy dtypes; NIfTI datatype codes
_AFNI_TYPES: dict[int, np.dtype] = {
    0: np.dtype(np.uint8),
    1: np.dtype(np.int16),
    2: np.dtype(np.int32),
    3: np.dtype(np.float32),
    4: np.dtype(np.float64),
    5: np.dtype(np.complex64),
}
_AFNI_TYPE_OF = {dt: code for code, dt in _AFNI_TYPES.items()}
_NIFTI_TYPE_OF = {
    np.dtype(np.uint8): (2, 8),
    np.dtype(np.int16): (4, 16),
    np.dtype(np.int32): (8, 32),
    np.dtype(np.float32): (16, 32),
    np.dtype(np.float64): (64, 64),
    np.dtype(np.complex64): (32, 64),
}


_TYPESTRINGS = ("3DIM_HEAD_ANAT", "3DIM_HEAD_FUNC", "3DIM_GEN_ANAT", "3DIM_GEN_FUNC")
_FUNC_BUCK_TYPE = 11
_LABEL_MAX = 64

# attributes that describe individual sub-bricks: dropped by select() (they would be wrong)
_PER_BRICK_ATTRS = re.compile(
    r"^(BRICK_\w+|FDRCURVE_\d+|MDFCURVE_\d+|STAT_AUX|DATASET_RANK|TAXIS_\w+)$"
)


@dataclass
class AfniDataset:
    """One AFNI dataset in memory.

    ``data`` is always 4-D ``(nx, ny, nz, nvals)`` (a 3-D array given to the constructor gets a
    4th axis of length 1); ``affine`` maps voxel (i, j, k) to RAS+ mm (NIfTI convention).
    """

    data: np.ndarray
    affine: np.ndarray
    labels: list[str] = field(default_factory=list)
    stat_codes: list[int] = field(default_factory=list)
    stat_params: list[tuple[float, ...]] = field(default_factory=list)
    space: str = "ORIG"
    view: str = ""  # orig / acpc / tlrc; empty: derived from space
    history: str = ""
    path: Path | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = np.asanyarray(self.data)
        if data.ndim == 3:
            data = data[..., np.newaxis]
        elif data.ndim != 4:
            raise InputDataError(
                f"dataset{self._where()} has {data.ndim}-D data; expected 3-D or 4-D"
            )
        self.data = data
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape == (3, 4):
            aff = np.vstack([aff, [0.0, 0.0, 0.0, 1.0]])
        if aff.shape != (4, 4):
            raise InputDataError(f"dataset{self._where()}: affine must be 4x4, got {aff.shape}")
        self.affine = aff
        n = data.shape[3]
        labels = [str(x) for x in (self.labels or [])]
        if len(labels) < n:
            labels += [f"#{i}" for i in range(len(labels), n)]
        self.labels = labels[:n]
        codes = [int(c) for c in (self.stat_codes or [])]
        codes += [0] * (n - len(codes))
        self.stat_codes = codes[:n]
        params = [tuple(float(v) for v in p) for p in (self.stat_params or [])]
        params += [()] * (n - len(params))
        self.stat_params = params[:n]
        if self.path is not None:
            self.path = Path(self.path)
        self.space = (self.space or "ORIG").upper()
        self.view = (self.view or _view_of_space(self.space)).lower()

    def _where(self) -> str:
        return f" {self.path}" if getattr(self, "path", None) else ""

    # -- helpers ------------------------------------------------------------------------------
    @property
    def nvals(self) -> int:
        """Number of sub-bricks."""
        return int(self.data.shape[3])

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial grid (nx, ny, nz)."""
        return tuple(int(s) for s in self.data.shape[:3])  # type: ignore[return-value]

    @property
    def voxel_sizes(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in mm (lengths of the affine's columns)."""
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]

    def brick(self, i: int) -> np.ndarray:
        """Sub-brick ``i`` as a 3-D array (a view, not a copy)."""
        if not -self.nvals <= i < self.nvals:
            raise InputDataError(
                f"sub-brick index {i} out of range: dataset{self._where()} has "
                f"{self.nvals} sub-brick(s) (0..{self.nvals - 1})"
            )
        return self.data[..., i]

    def stat_dof(self, i: int) -> tuple[float, ...]:
        """Stat parameters of brick ``i`` (empty if it is not a statistic)."""
        return self.stat_params[i] if self.stat_codes[i] else ()

    def index_of(self, label: str) -> int:
        """Index of the brick whose label equals ``label`` exactly (last match wins, as in
        3dClusterize); raises InputDataError when no brick has that label."""
        found = -1
        for i, lab in enumerate(self.labels):
            if lab == label:
                found = i
        if found < 0:
            raise InputDataError(
                f"no sub-brick labelled '{label}' in {self.path or 'dataset'}; "
                f"labels are: {', '.join(self.labels)}"
            )
        return found

    def select(self, indices: Sequence[int] | str) -> AfniDataset:
        """New dataset holding bricks ``indices`` (a list, or a selector string such as
        ``'[chx:t]'``), keeping labels and stat codes/parameters."""
        if isinstance(indices, str):
            indices = parse_selector(indices, self.labels, source=self.path)
        idx = [int(i) for i in indices]
        for i in idx:
            if not 0 <= i < self.nvals:
                raise InputDataError(
                    f"sub-brick index {i} out of range: {self.path or 'dataset'} has "
                    f"{self.nvals} sub-brick(s) (0..{self.nvals - 1})"
                )
        attrs = {k: v for k, v in self.attributes.items() if not _PER_BRICK_ATTRS.match(k)}
        return AfniDataset(
            data=np.ascontiguousarray(self.data[..., idx]) if idx else self.data[..., :0].copy(),
            affine=self.affine.copy(),
            labels=[self.labels[i] for i in idx],
            stat_codes=[self.stat_codes[i] for i in idx],
            stat_params=[self.stat_params[i] for i in idx],
            space=self.space,
            view=self.view,
            history=self.history,
            path=self.path,
            attributes=attrs,
        )

    def __repr__(self) -> str:  # short: never print the data
        return (
            f"AfniDataset(path={str(self.path) if self.path else None!r}, shape={self.shape}, "
            f"nvals={self.nvals}, dtype={self.data.dtype}, labels={self.labels!r}, "
            f"space={self.space!r})"
        )


def _debug_dump(dset: AfniDataset) -> str:  # pragma: no cover - developer aid
    buf = io.StringIO()
    print(repr(dset), file=buf)
    for i, (lab, c, p) in enumerate(
        zip(dset.labels, dset.stat_codes, dset.stat_params, strict=True)
    ):
        print(f"  [{i}] {lab!r} {STAT_SHORT_NAMES.get(c, c)} {p}", file=buf)
    return buf.getvalue()
