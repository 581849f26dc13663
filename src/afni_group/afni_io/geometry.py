"""Geometry: RAS+ affines <-> AFNI DICOM/RAI attributes, grids, and NIfTI quaternions
(a port of nifti_mat44_to_quatern; spec 01 §3.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])
_ORIENT_LETTERS = "RLPAIS"  # code -> first letter of x2y (R2L=0 -> 'R', L2R=1 -> 'L', ...)


def ijk_to_dicom(affine: np.ndarray) -> np.ndarray:
    """4x4 voxel -> DICOM/RAI mm matrix (what AFNI reports) from a RAS+ affine."""
    aff = np.asarray(affine, dtype=np.float64)
    if aff.shape == (3, 4):
        aff = np.vstack([aff, [0, 0, 0, 1]])
    return _FLIP @ aff


def affine_from_ijk_to_dicom(mat: np.ndarray | Sequence[float]) -> np.ndarray:
    """RAS+ affine from IJK_TO_DICOM(_REAL) (12 values row-major, or a 3x4/4x4 matrix)."""
    m = np.asarray(mat, dtype=np.float64)
    if m.size == 12:
        m = m.reshape(3, 4)
    if m.shape == (3, 4):
        m = np.vstack([m, [0, 0, 0, 1]])
    return _FLIP @ m


def _axis_map(m3: np.ndarray) -> list[int]:
    """DICOM axis (row) of each voxel axis (column): the dominant entry, all distinct."""
    a = np.abs(m3)
    rows = [-1, -1, -1]
    used: set[int] = set()
    # assign the most dominant columns first so ties in oblique data stay a permutation
    order = sorted(range(3), key=lambda c: -a[:, c].max() / max(np.linalg.norm(a[:, c]), 1e-30))
    for c in order:
        for r in np.argsort(-a[:, c]):
            if int(r) not in used:
                rows[c] = int(r)
                used.add(int(r))
                break
    return rows


def afni_geometry(affine: np.ndarray) -> tuple[list[int], list[float], list[float]]:
    """``(ORIENT_SPECIFIC, ORIGIN, DELTA)`` for a RAS+ affine (cardinal part of oblique data)."""
    m = ijk_to_dicom(affine)[:3]
    rows = _axis_map(m[:, :3])
    orient, origin, delta = [], [], []
    for c in range(3):
        r = rows[c]
        size = float(np.linalg.norm(m[:, c]))
        sign = 1.0 if m[r, c] >= 0 else -1.0
        d = sign * size
        # x: R2L(0) if positive else L2R(1); y: A2P(3) if positive else P2A(2);
        # z: I2S(4) if positive else S2I(5)
        if r == 0:
            code = 0 if d > 0 else 1
        elif r == 1:
            code = 3 if d > 0 else 2
        else:
            code = 4 if d > 0 else 5
        orient.append(code)
        origin.append(float(m[r, 3]))
        delta.append(d)
    return orient, origin, delta


def affine_from_afni_geometry(
    orient: Sequence[int], origin: Sequence[float], delta: Sequence[float]
) -> np.ndarray:
    """RAS+ affine from ORIENT_SPECIFIC / ORIGIN / DELTA (cardinal grid)."""
    return affine_from_ijk_to_dicom(_cardinal_ijk_to_dicom(orient, origin, delta))


def _cardinal_ijk_to_dicom(orient, origin, delta) -> np.ndarray:
    m = np.zeros((3, 4))
    for a in range(3):
        r = int(orient[a]) // 2
        m[r, a] = float(delta[a])
        m[r, 3] = float(origin[a])
    return m


def orientation_string(affine: np.ndarray) -> str:
    """AFNI orientation code such as ``'RAI'`` or ``'LPI'`` (first letter of each axis' x2y)."""
    orient, _, _ = afni_geometry(affine)
    return "".join(_ORIENT_LETTERS[o] for o in orient)


def _is_oblique(affine: np.ndarray, tol: float = 1e-5) -> bool:
    m = ijk_to_dicom(affine)[:3, :3]
    rows = _axis_map(m)
    for c in range(3):
        for r in range(3):
            if r != rows[c] and abs(m[r, c]) > tol * max(1.0, abs(m[rows[c], c])):
                return True
    return False


def _shape_affine(x: Any) -> tuple[tuple[int, ...], np.ndarray]:
    if hasattr(x, "affine") and hasattr(x, "shape"):
        return tuple(int(s) for s in x.shape[:3]), np.asarray(x.affine, dtype=float)
    if isinstance(x, tuple) and len(x) == 2:
        return tuple(int(s) for s in x[0][:3]), np.asarray(x[1], dtype=float)
    raise TypeError(f"same_grid: cannot get a grid from {type(x).__name__}")


def same_grid(a: Any, b: Any, *, atol: float = 1e-3) -> bool:
    """True when two datasets (AfniDataset, nibabel image, or ``(shape, affine)``) share the
    voxel grid: same (nx, ny, nz) and affines equal within ``atol`` mm."""
    sa, aa = _shape_affine(a)
    sb, ab = _shape_affine(b)
    return sa == sb and bool(np.allclose(aa, ab, atol=atol, rtol=0))


def _m33_det(r) -> float:
    return (
        r[0][0] * r[1][1] * r[2][2]
        - r[0][0] * r[2][1] * r[1][2]
        - r[1][0] * r[0][1] * r[2][2]
        + r[1][0] * r[2][1] * r[0][2]
        + r[2][0] * r[0][1] * r[1][2]
        - r[2][0] * r[1][1] * r[0][2]
    )


def _m33_inv(r) -> list[list[float]]:
    (r11, r12, r13), (r21, r22, r23), (r31, r32, r33) = r
    deti = _m33_det(r)
    if deti != 0.0:
        deti = 1.0 / deti
    f = _f32
    return [
        [
            f(deti * (r22 * r33 - r32 * r23)),
            f(deti * (-r12 * r33 + r32 * r13)),
            f(deti * (r12 * r23 - r22 * r13)),
        ],
        [
            f(deti * (-r21 * r33 + r31 * r23)),
            f(deti * (r11 * r33 - r31 * r13)),
            f(deti * (-r11 * r23 + r21 * r13)),
        ],
        [
            f(deti * (r21 * r32 - r31 * r22)),
            f(deti * (-r11 * r32 + r31 * r12)),
            f(deti * (r11 * r22 - r21 * r12)),
        ],
    ]


def _f32(v: float) -> float:
    return float(np.float32(v))


def _m33_rownorm(a) -> float:
    return max(sum(abs(x) for x in row) for row in a)


def _m33_colnorm(a) -> float:
    return max(sum(abs(a[i][j]) for i in range(3)) for j in range(3))


def _m33_polar(a) -> list[list[float]]:
    """nifti_mat33_polar (Higham's iteration), including its signed-zero behaviour."""
    x = [list(row) for row in a]
    gam = _m33_det(x)
    while gam == 0.0:
        gam = _f32(0.00001 * (0.001 + _m33_rownorm(x)))
        for i in range(3):
            x[i][i] = _f32(x[i][i] + gam)
        gam = _m33_det(x)
    dif = 1.0
    k = 0
    while True:
        y = _m33_inv(x)
        if dif > 0.3:
            alp = _f32(np.sqrt(_m33_rownorm(x) * _m33_colnorm(x)))
            bet = _f32(np.sqrt(_m33_rownorm(y) * _m33_colnorm(y)))
            gam = _f32(np.sqrt(bet / alp))
            gmi = _f32(1.0 / gam)
        else:
            gam = gmi = 1.0
        z = [[_f32(0.5 * (gam * x[i][j] + gmi * y[j][i])) for j in range(3)] for i in range(3)]
        dif = sum(abs(z[i][j] - x[i][j]) for i in range(3) for j in range(3))
        k += 1
        if k > 100 or dif < 3.0e-6:
            break
        x = z
    return z


def _mat44_to_quatern(m: np.ndarray) -> tuple[float, float, float, float, float, float, float]:
    """nifti_mat44_to_quatern -> (qb, qc, qd, qx, qy, qz, qfac)."""
    r = [[float(m[i][j]) for j in range(3)] for i in range(3)]
    qx, qy, qz = float(m[0][3]), float(m[1][3]), float(m[2][3])
    d = [np.sqrt(sum(r[i][j] ** 2 for i in range(3))) for j in range(3)]
    for j in range(3):
        if d[j] == 0.0:
            for i in range(3):
                r[i][j] = 1.0 if i == j else 0.0
            d[j] = 1.0
    for j in range(3):
        for i in range(3):
            r[i][j] = r[i][j] / d[j]
    q = [[_f32(r[i][j]) for j in range(3)] for i in range(3)]
    p = _m33_polar(q)
    (r11, r12, r13), (r21, r22, r23), (r31, r32, r33) = p
    zd = _m33_det(p)
    if zd > 0:
        qfac = 1.0
    else:
        qfac = -1.0
        r13, r23, r33 = -r13, -r23, -r33
    a = r11 + r22 + r33 + 1.0
    if a > 0.5:
        a = 0.5 * np.sqrt(a)
        b = 0.25 * (r32 - r23) / a
        c = 0.25 * (r13 - r31) / a
        dd = 0.25 * (r21 - r12) / a
    else:
        xd = 1.0 + r11 - (r22 + r33)
        yd = 1.0 + r22 - (r11 + r33)
        zd = 1.0 + r33 - (r11 + r22)
        if xd > 1.0:
            b = 0.5 * np.sqrt(xd)
            c = 0.25 * (r12 + r21) / b
            dd = 0.25 * (r13 + r31) / b
            a = 0.25 * (r32 - r23) / b
        elif yd > 1.0:
            c = 0.5 * np.sqrt(yd)
            b = 0.25 * (r12 + r21) / c
            dd = 0.25 * (r23 + r32) / c
            a = 0.25 * (r13 - r31) / c
        else:
            dd = 0.5 * np.sqrt(zd)
            b = 0.25 * (r13 + r31) / dd
            c = 0.25 * (r23 + r32) / dd
            a = 0.25 * (r21 - r12) / dd
        if a < 0.0:
            b, c, dd = -b, -c, -dd
    return float(b), float(c), float(dd), qx, qy, qz, qfac
