"""3dClusterize's coordinates: AFNI's cardinal grid of an affine, DICOM (RAI) mm of voxel
centres in float32 as AFNI computes them, and the ``-orient`` reordering of the report."""

from __future__ import annotations

import numpy as np

from afni_group.afni_io.geometry import afni_geometry

#: the DICOM axis (0 = x, 1 = y, 2 = z) each orientation letter names
ORIENT_AXIS = {"R": 0, "L": 0, "A": 1, "P": 1, "I": 2, "S": 2}


def normalize_orient(code: str | None) -> str:
    """The ``-orient`` code as 3dClusterize uses it: upper case, FLI → LPI, invalid → RAI."""
    code = (code or "RAI").strip().upper()
    if code == "FLI":
        return "LPI"
    if len(code) != 3 or any(c not in ORIENT_AXIS for c in code):
        return "RAI"
    if sorted(ORIENT_AXIS[c] for c in code) != [0, 1, 2]:
        return "RAI"
    return code


def dicom_coordinates(
    ijk: np.ndarray, origin: np.ndarray, delta: np.ndarray, dicom_axis: np.ndarray
) -> np.ndarray:
    """DICOM/RAI mm of voxel centres, ``ORIGIN + index·DELTA`` in float32 as AFNI computes them.

    ``dicom_axis[a]`` is the DICOM axis (0 = x R→L, 1 = y A→P, 2 = z I→S) of dataset axis a.
    Exact zeros come out as +0.0 (AFNI's sign of zero, which matters after ``-orient`` flips).
    """
    ijk = np.asarray(ijk)
    out = np.empty(ijk.shape, dtype=np.float32)
    for a in range(3):
        axis_mm = np.float32(origin[a]) + ijk[:, a].astype(np.float32) * np.float32(delta[a])
        out[:, int(dicom_axis[a])] = axis_mm + np.float32(0.0)
    return out


def reorient_coordinates(dicom: np.ndarray, orient: str) -> np.ndarray:
    """RAI coordinates to the ``-orient`` order: each letter takes its axis, L/P/S flip the sign."""
    out = np.empty_like(dicom)
    for o, letter in enumerate(orient):
        column = dicom[:, ORIENT_AXIS[letter]]
        out[:, o] = -column if letter in "LPS" else column
    return out


def grid_from_affine(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AFNI's cardinal grid of a RAS+ affine: (ORIGIN, DELTA, DICOM axis of each voxel axis).

    The rotation of an oblique affine is ignored, as AFNI does for NIfTI data (07 §5.3).
    """
    orient, origin, delta = afni_geometry(affine)
    return (
        np.asarray(origin[:3], dtype=np.float32),
        np.asarray(delta[:3], dtype=np.float32),
        np.array([int(o) // 2 for o in orient[:3]]),
    )
