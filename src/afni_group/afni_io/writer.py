"""Writing datasets: NIfTI-1 + AFNI extension or HEAD/BRIK, byte-exact AFNI layout, atomically."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from afni_group import atomic
from afni_group.afni_io.dataset import (
    _AFNI_TYPE_OF,
    _FUNC_BUCK_TYPE,
    _NIFTI_TYPE_OF,
    _TYPESTRINGS,
    AfniDataset,
)
from afni_group.afni_io.geometry import (
    _FLIP,
    _cardinal_ijk_to_dicom,
    _is_oblique,
    _mat44_to_quatern,
    afni_geometry,
)
from afni_group.afni_io.head_text import _FLOAT_ATTRS, _INT_ATTRS, _Float, _Int, format_head_text
from afni_group.afni_io.ids import _ctime, _deterministic, _escape_history, new_idcode
from afni_group.afni_io.naming import BRIK_SUFFIXES, afni_name_parts, brik_path, head_path
from afni_group.afni_io.naming import VIEWS as _VIEWS
from afni_group.afni_io.naming import is_nifti as _is_nifti
from afni_group.afni_io.niml_ext import format_afni_extension
from afni_group.afni_io.stat_codes import _FIRST_STAT, _LAST_STAT, _stataux_values, stat_encode
from afni_group.errors import OutputError

_C_ORDER = [
    "HISTORY_NOTE",
    "TYPESTRING",
    "IDCODE_STRING",
    "IDCODE_DATE",
    "SCENE_DATA",
    "LABEL_1",
    "LABEL_2",
    "DATASET_NAME",
    "ORIENT_SPECIFIC",
    "ORIGIN",
    "DELTA",
    "IJK_TO_DICOM",
    "IJK_TO_DICOM_REAL",
    "BRICK_STATS",
    "DATASET_RANK",
    "DATASET_DIMENSIONS",
    "TAXIS_NUMS",
    "TAXIS_FLOATS",
    "BRICK_TYPES",
    "BRICK_FLOAT_FACS",
    "BRICK_LABS",
    "BRICK_KEYWORDS",
    "BRICK_STATAUX",
    "BRICK_STATSYM",
    "TEMPLATE_SPACE",
    "INT_CMAP",
]
_MEMA_ORDER = [
    "IDCODE_STRING",
    "ORIGIN",
    "DELTA",
    "ORIENT_SPECIFIC",
    "DATASET_DIMENSIONS",
    "DATASET_RANK",
    "TYPESTRING",
    "SCENE_DATA",
    "IJK_TO_DICOM_REAL",
    "BRICK_LABS",
    "TEMPLATE_SPACE",
    "BRICK_TYPES",
    "BRICK_STATSYM",
    "HISTORY_NOTE",
    "IDCODE_DATE",
    "LABEL_1",
    "LABEL_2",
    "DATASET_NAME",
    "IJK_TO_DICOM",
    "BRICK_STATS",
    "BRICK_FLOAT_FACS",
    "BRICK_KEYWORDS",
    "BRICK_STATAUX",
    "INT_CMAP",
]


def _output_dtype(data: np.ndarray) -> np.ndarray:
    dt = data.dtype
    if dt == np.bool_:
        return data.astype(np.uint8)
    if dt in _NIFTI_TYPE_OF and dt != np.float64:
        return data
    if dt == np.float64 or np.issubdtype(dt, np.floating):
        return data.astype(np.float32)
    if dt == np.int8:
        return data.astype(np.int16)
    if np.issubdtype(dt, np.integer):
        if data.size and (
            data.min() < np.iinfo(np.int32).min or data.max() > np.iinfo(np.int32).max
        ):
            return data.astype(np.float32)
        return data.astype(np.int32)
    if np.issubdtype(dt, np.complexfloating):
        return data.astype(np.complex64)
    raise OutputError(f"cannot write data of type {dt} as an AFNI dataset")


def _brick_stats(data: np.ndarray) -> list[float]:
    out: list[float] = []
    for b in range(data.shape[3]):
        a = data[..., b]
        if np.iscomplexobj(a):
            a = np.abs(a)
        if a.size == 0:
            out += [0.0, 0.0]
            continue
        with np.errstate(invalid="ignore"):
            fin = a[np.isfinite(a)] if np.issubdtype(a.dtype, np.floating) else a
        if fin.size == 0:
            out += [0.0, 0.0]
        else:
            out += [float(fin.min()), float(fin.max())]
    return out


def _build_attributes(
    dset: AfniDataset,
    data: np.ndarray,
    *,
    style: str,
    idcode: str,
    date: str,
    history: str,
    extra: Mapping[str, Any] | None,
    omit: Iterable[str],
    for_head: bool,
) -> list[tuple[str, Any]]:
    nx, ny, nz, nvals = data.shape
    view_code = {"orig": 0, "acpc": 1, "tlrc": 2}.get(dset.view, 2 if dset.space != "ORIG" else 0)
    orient, origin, delta = afni_geometry(dset.affine)
    if _is_oblique(dset.affine):
        # AFNI negates the NIfTI sform rows: reproduce its -0.0 entries the same way
        real = np.vstack([-1.0 * dset.affine[0], -1.0 * dset.affine[1], dset.affine[2]])[:3]
    else:
        real = _cardinal_ijk_to_dicom(orient, origin, delta)
    cardinal = _cardinal_ijk_to_dicom(orient, origin, delta)
    atype = _AFNI_TYPE_OF.get(data.dtype)
    if atype is None:
        raise OutputError(f"cannot write data of type {data.dtype} as an AFNI dataset")
    label_text = "\0".join(dset.labels) + "\0"
    has_stat = any(_FIRST_STAT <= c <= _LAST_STAT for c in dset.stat_codes)
    if style == "mema":
        typestring, func_type, label_name = "3DIM_GEN_FUNC", _FUNC_BUCK_TYPE, "Viggo!"
    else:
        typestring, func_type, label_name = "3DIM_HEAD_ANAT", _FUNC_BUCK_TYPE, "zyxt"
    if extra and extra.get("TYPESTRING"):
        typestring = str(extra["TYPESTRING"]).rstrip("\0")
    ts_index = _TYPESTRINGS.index(typestring) if typestring in _TYPESTRINGS else 0
    values: dict[str, Any] = {
        "HISTORY_NOTE": history if history else None,
        "TYPESTRING": typestring,
        "IDCODE_STRING": idcode,
        "IDCODE_DATE": date,
        "SCENE_DATA": _Int([view_code, func_type, ts_index, -999, -999, -999, -999, -999]),
        "LABEL_1": label_name,
        "LABEL_2": label_name,
        "DATASET_NAME": label_name,
        "ORIENT_SPECIFIC": _Int(orient),
        "ORIGIN": _Float(origin),
        "DELTA": _Float(delta),
        "IJK_TO_DICOM": _Float(cardinal.ravel().tolist()),
        "IJK_TO_DICOM_REAL": _Float(real.ravel().tolist()),
        "BRICK_STATS": _Float(_brick_stats(data)),
        "DATASET_RANK": _Int([3, nvals, 0, 0, 0, 0, 0, 0]),
        "DATASET_DIMENSIONS": _Int([nx, ny, nz, 0, 0]),
        "BRICK_TYPES": _Int([atype] * nvals),
        "BRICK_FLOAT_FACS": _Float([0.0] * nvals),
        "BRICK_LABS": label_text,
        "BRICK_KEYWORDS": "\0" * nvals,
        "BRICK_STATAUX": _Float(_stataux_values(dset.stat_codes, dset.stat_params))
        if has_stat
        else None,
        "BRICK_STATSYM": ";".join(
            stat_encode(c, p) if _FIRST_STAT <= c <= _LAST_STAT else "none"
            for c, p in zip(dset.stat_codes, dset.stat_params, strict=True)
        )
        if has_stat
        else None,
        "TEMPLATE_SPACE": dset.space,
        "INT_CMAP": _Int([0]),
    }
    order = list(_MEMA_ORDER if style == "mema" else _C_ORDER)
    if for_head:
        values["BYTEORDER_STRING"] = "LSB_FIRST"
        if style == "mema":
            order.append("BYTEORDER_STRING")
        else:  # AFNI C programs' HEAD files: BYTEORDER_STRING, then BRICK_KEYWORDS, last
            order.remove("BRICK_KEYWORDS")
            order += ["BYTEORDER_STRING", "BRICK_KEYWORDS"]
    if extra:
        for k, v in extra.items():
            if k == "TYPESTRING":
                continue
            if v is None:
                values[k] = None
                continue
            if isinstance(v, str):
                values[k] = v
            elif k in _INT_ATTRS:
                values[k] = _Int(np.atleast_1d(v).tolist())
            elif k in _FLOAT_ATTRS:
                values[k] = _Float(np.atleast_1d(v).tolist())
            else:
                values[k] = v
            if k not in order:
                order.append(k)
    drop = set(omit)
    return [(k, values[k]) for k in order if k not in drop and values.get(k) is not None]


def _time_axis_of(dset: AfniDataset):
    """(TAXIS_NUMS, TAXIS_FLOATS) when the dataset has a time axis matching its bricks."""
    nums = dset.attributes.get("TAXIS_NUMS")
    floats = dset.attributes.get("TAXIS_FLOATS")
    if isinstance(nums, list) and len(nums) >= 3 and int(nums[0]) == dset.nvals and dset.nvals > 1:
        fl = list(floats) if isinstance(floats, list) and len(floats) >= 2 else [0.0, 1.0]
        return list(nums), fl
    return None


def _nifti_header(
    data: np.ndarray,
    dset: AfniDataset,
    esize: int,
    time_axis: bool,
    tr: float = 0.0,
    is_func: bool = True,
) -> bytes:
    import nibabel as nib

    nx, ny, nz, nvals = data.shape
    code, bitpix = _NIFTI_TYPE_OF[data.dtype]
    hdr = np.zeros((), dtype=nib.nifti1.header_dtype.newbyteorder("<"))
    hdr["sizeof_hdr"] = 348
    hdr["regular"] = b"r"
    if nvals > 1 and time_axis:
        dim = [4, nx, ny, nz, nvals, 1, 1, 1]
    elif nvals > 1:
        dim = [5, nx, ny, nz, 1, nvals, 1, 1]
    else:
        nd = 3 if nz > 1 else (2 if ny > 1 else 1)
        dim = [nd, nx, ny, nz, 1, 1, 1, 1]
    hdr["dim"] = dim
    hdr["datatype"] = code
    hdr["bitpix"] = bitpix
    # intent only for a single stat brick of a functional dataset (AFNI: ISFUNC); a caller that
    # passes an ANAT TYPESTRING gets none
    if nvals == 1 and _FIRST_STAT <= dset.stat_codes[0] <= _LAST_STAT and is_func:
        hdr["intent_code"] = dset.stat_codes[0]
        p = list(dset.stat_params[0]) + [0.0, 0.0, 0.0]
        hdr["intent_p1"], hdr["intent_p2"], hdr["intent_p3"] = p[0], p[1], p[2]
    real = _FLIP @ dset.affine if _is_oblique(dset.affine) else None
    orient, origin, delta = afni_geometry(dset.affine)
    m = (
        _cardinal_ijk_to_dicom(orient, origin, delta)
        if real is None
        else np.vstack([-1.0 * dset.affine[0], -1.0 * dset.affine[1], dset.affine[2]])[:3]
    )
    sform = np.vstack([-1.0 * m[0], -1.0 * m[1], m[2]])  # -0.0 zeros, as AFNI
    pix = np.zeros(8, dtype=np.float32)
    pix[1:4] = np.abs(np.asarray(delta, dtype=np.float32))
    qb, qc, qd, qx, qy, qz, qfac = _mat44_to_quatern(sform)
    pix[0] = qfac
    if time_axis and nvals > 1:
        pix[4] = tr
    hdr["pixdim"] = pix
    hdr["vox_offset"] = 352 + esize
    hdr["scl_slope"] = 0.0
    hdr["scl_inter"] = 0.0
    hdr["xyzt_units"] = 2 + (8 if time_axis and nvals > 1 else 0)
    space = dset.space.upper()
    xcode = 1 if space in ("ORIG", "ACPC") else 3 if space == "TLRC" else 4 if space == "MNI" else 5
    hdr["qform_code"] = xcode
    hdr["sform_code"] = xcode
    hdr["quatern_b"], hdr["quatern_c"], hdr["quatern_d"] = qb, qc, qd
    hdr["qoffset_x"], hdr["qoffset_y"], hdr["qoffset_z"] = qx, qy, qz
    hdr["srow_x"] = sform[0].astype(np.float32)
    hdr["srow_y"] = sform[1].astype(np.float32)
    hdr["srow_z"] = sform[2].astype(np.float32)
    hdr["magic"] = b"n+1"
    return hdr.tobytes()


def write_dataset(
    dset: AfniDataset,
    path: str | os.PathLike,
    *,
    history: str | None = None,
    style: str = "c",
    idcode: str | None = None,
    date: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    omit: Iterable[str] = (),
    time_axis: bool | None = None,
) -> Path:
    """Write ``dset`` as NIfTI-1 + AFNI extension (``.nii``/``.nii.gz``) or HEAD/BRIK
    (``prefix+view``, ``prefix+view.HEAD``, ...). Returns the written path (the ``.HEAD`` for
    AFNI format).

    ``history``: a new HISTORY_NOTE entry (see :func:`history_entry`) appended to
    ``dset.history`` with AFNI's literal ``\\n`` separator. ``style``: ``"c"`` (attribute order
    of AFNI's C programs) or ``"mema"`` (3dMEMA's order, ``3DIM_GEN_FUNC``, ``Viggo!``).
    ``attributes``: extra or replacement attributes (``{"INT_CMAP": 1}``; value ``None`` drops
    one); ``omit``: attribute names not to write (e.g. ``("BRICK_KEYWORDS",)``).
    ``idcode``/``date``: fixed id code and IDCODE_DATE text (byte-stable output).
    ``time_axis``: write the bricks as a time series (NIfTI dim[4], TAXIS_* in HEAD); default:
    only if the dataset came with a time axis (TAXIS_NUMS) and has more than one brick.
    """
    if style not in ("c", "mema"):
        raise ValueError(f"style must be 'c' or 'mema', not {style!r}")
    path_text = os.fspath(path)
    data = _output_dtype(np.asarray(dset.data))
    if data.ndim == 3:
        data = data[..., np.newaxis]
    if not data.flags.c_contiguous and not data.flags.f_contiguous:
        data = np.ascontiguousarray(data)
    if idcode is None:
        if _deterministic():
            h = hashlib.sha256()
            h.update(os.path.basename(path_text).encode())
            h.update("\0".join(dset.labels).encode())
            h.update(np.ascontiguousarray(data).tobytes())
            idcode = new_idcode(seed=h.digest())
        else:
            idcode = new_idcode()
    if date is None:
        date = _ctime()
    hist = dset.history or ""
    if history:
        entry = _escape_history(history)
        hist = f"{hist}\\n{entry}" if hist else entry

    taxis = _time_axis_of(dset)
    if time_axis is None:
        time_axis = taxis is not None and data.shape[3] > 1
    if time_axis and data.shape[3] > 1:
        nums, floats = taxis if taxis is not None else ([data.shape[3], 0, 77002], [0.0, 1.0, 0.0])
        extra_t = {
            "TAXIS_NUMS": _Int([data.shape[3], 0, int(nums[2]), -999, -999, -999, -999, -999]),
            "TAXIS_FLOATS": _Float(
                [float(floats[0]), float(floats[1]), 0.0, 0.0, 0.0, -999999.0, -999999.0, -999999.0]
            ),
        }
        attributes = {**extra_t, **dict(attributes or {})}
    else:
        time_axis = False

    nifti = _is_nifti(path_text)
    attrs = _build_attributes(
        dset,
        data,
        style=style,
        idcode=idcode,
        date=date,
        history=hist,
        extra=attributes,
        omit=omit,
        for_head=not nifti,
    )
    if nifti:
        final = Path(path_text)
        nx, ny, nz, nvals = data.shape
        code = _NIFTI_TYPE_OF[data.dtype][0]
        nums = [
            nx,
            ny,
            nz,
            nvals if time_axis and nvals > 1 else 1,
            1 if (time_axis or nvals == 1) else nvals,
            code,
        ]
        text = format_afni_extension(attrs, idcode=idcode, nifti_nums=nums).encode("utf-8")
        esize = 8 + len(text) + 1
        esize = (esize + 15) // 16 * 16
        ext = struct.pack("<ii", esize, 4) + text + b"\0" * (esize - 8 - len(text))
        tr = float(taxis[1][1]) if (time_axis and taxis is not None) else 0.0
        if time_axis and taxis is not None and int(taxis[0][2]) == 77001:
            tr /= 1000.0  # ms -> s
        ts = str((attributes or {}).get("TYPESTRING") or "3DIM_HEAD_FUNC").rstrip("\0")
        header = _nifti_header(data, dset, esize, time_axis, tr, is_func="FUNC" in ts)
        body = np.asarray(data, dtype=data.dtype.newbyteorder("<")).tobytes(order="F")
        payload = header + b"\x01\x00\x00\x00" + ext + body

        def writer(f):
            if final.name.endswith(".gz"):
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=f, mtime=0, compresslevel=6
                ) as gz:
                    gz.write(payload)
            else:
                f.write(payload)

        atomic.write_bytes(final, writer)
        return final

    parts = afni_name_parts(path_text)
    if parts:
        prefix, view = parts
    else:
        prefix, view = path_text, dset.view if dset.view in _VIEWS else "orig"
    if view != dset.view:
        # the view in the file name must agree with SCENE_DATA[0]
        vcode = _VIEWS.index(view)
        attrs = [(k, _Int([vcode] + list(v)[1:]) if k == "SCENE_DATA" else v) for k, v in attrs]
    head = head_path(prefix, view)
    brik = brik_path(prefix, view)
    head_text = format_head_text(attrs)
    body = np.asarray(data, dtype=data.dtype.newbyteorder("<")).tobytes(order="F")
    atomic.write_bytes(brik, lambda f: f.write(body))
    # a stale compressed BRIK would be found first by readers? (.BRIK is tried first) - remove
    for suf in BRIK_SUFFIXES[1:]:
        stale = brik_path(prefix, view, suf)
        if stale.exists():
            with contextlib.suppress(OSError):
                stale.unlink()
    atomic.write_bytes(head, lambda f: f.write(head_text))
    return head
