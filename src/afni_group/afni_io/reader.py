"""Reading datasets: HEAD/BRIK(.gz) and NIfTI (+ AFNI extension), whole or headers only."""

from __future__ import annotations

import bz2
import gzip
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from afni_group.afni_io.dataset import _AFNI_TYPES, _LABEL_MAX, AfniDataset
from afni_group.afni_io.geometry import affine_from_afni_geometry, affine_from_ijk_to_dicom
from afni_group.afni_io.head_text import parse_head_text
from afni_group.afni_io.naming import VIEWS as _VIEWS
from afni_group.afni_io.naming import _view_of_space, resolve
from afni_group.afni_io.niml_ext import parse_afni_extension
from afni_group.afni_io.selectors import parse_selector, split_selector
from afni_group.afni_io.stat_codes import (
    _FIRST_STAT,
    _LAST_STAT,
    STAT_NPARAMS,
    _stats_from_stataux,
    _stats_from_statsym,
)
from afni_group.errors import InputDataError, MissingInputError


def _attr_str(attrs: Mapping[str, Any], name: str) -> str | None:
    v = attrs.get(name)
    if isinstance(v, str):
        return v.split("\0")[0] if name not in ("BRICK_LABS", "BRICK_KEYWORDS") else v
    return None


def _labels_from(attrs: Mapping[str, Any], nvals: int) -> list[str]:
    raw = attrs.get("BRICK_LABS")
    labels: list[str] = []
    if isinstance(raw, str):
        s = raw[:-1] if raw.endswith("\0") else raw
        labels = [x[:_LABEL_MAX] for x in s.split("\0")][:nvals]
    out = []
    for i in range(nvals):
        lab = labels[i] if i < len(labels) else ""
        out.append(lab if lab else f"#{i}")
    return out


def _read_compressed(path: Path) -> bytes:
    name = path.name
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        if name.endswith(".bz2"):
            with bz2.open(path, "rb") as f:
                return f.read()
        if name.endswith(".Z"):
            import subprocess

            res = subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=False)
            if res.returncode != 0:
                raise InputDataError(f"cannot decompress {path} (.Z needs 'gzip -d')")
            return res.stdout
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise InputDataError(f"cannot read {path}: {err}") from None


def _read_afni(head: Path, brik: Path | None, view: str | None) -> AfniDataset:
    try:
        raw = head.read_bytes()
    except OSError as err:
        raise InputDataError(f"cannot read AFNI header {head}: {err}") from None
    attrs = parse_head_text(raw, source=str(head))
    for req in ("DATASET_RANK", "DATASET_DIMENSIONS"):
        if req not in attrs:
            raise InputDataError(
                f"unreadable AFNI header {head}: attribute {req} is missing "
                "(not an AFNI .HEAD file, or it is damaged)"
            )
    rank = attrs["DATASET_RANK"]
    dims = attrs["DATASET_DIMENSIONS"]
    if len(rank) < 2 or len(dims) < 3 or rank[0] != 3 or rank[1] < 1 or min(dims[:3]) < 1:
        raise InputDataError(
            f"unreadable AFNI header {head}: DATASET_RANK {rank} / DATASET_DIMENSIONS {dims}"
        )
    nx, ny, nz = (int(d) for d in dims[:3])
    nvals = int(rank[1])
    types = list(attrs.get("BRICK_TYPES", [1] * nvals))
    if len(types) < nvals:
        types += [types[-1] if types else 1] * (nvals - len(types))
    types = types[:nvals]
    for t in types:
        if t not in _AFNI_TYPES:
            raise InputDataError(f"{head}: unsupported BRICK_TYPES value {t}")
    facs = list(attrs.get("BRICK_FLOAT_FACS", [0.0] * nvals))
    facs = (facs + [0.0] * nvals)[:nvals]
    order = _attr_str(attrs, "BYTEORDER_STRING")
    endian = ">" if order == "MSB_FIRST" else "<" if order == "LSB_FIRST" else "="

    if brik is None:
        raise MissingInputError(
            f"dataset data file not found: {head.with_suffix('.BRIK')} (or .BRIK.gz) for {head}"
        )
    blob = _read_compressed(brik)
    nvox = nx * ny * nz
    sizes = [nvox * _AFNI_TYPES[t].itemsize for t in types]
    expected = sum(sizes)
    if len(blob) != expected:
        raise InputDataError(
            f"{brik}: data size does not match its header {head.name}: expected {expected} bytes "
            f"({nvals} sub-brick(s) of {nx}x{ny}x{nz}), found {len(blob)} bytes"
        )
    bricks = []
    off = 0
    for t, size in zip(types, sizes, strict=True):
        dt = _AFNI_TYPES[t].newbyteorder(endian)
        arr = np.frombuffer(blob, dtype=dt, count=nvox, offset=off)
        bricks.append(arr.reshape(nz, ny, nx).transpose(2, 1, 0))
        off += size
    scaled = any(f > 0 and f != 1.0 for f in facs)
    if scaled:
        out_dtype = np.dtype(np.float32)
        if any(_AFNI_TYPES[t] in (np.dtype(np.float64), np.dtype(np.complex64)) for t in types):
            out_dtype = np.result_type(*[_AFNI_TYPES[t] for t in types], np.float32)
    else:
        out_dtype = np.result_type(*[_AFNI_TYPES[t] for t in types])
    data = np.empty((nx, ny, nz, nvals), dtype=out_dtype, order="F")  # AFNI layout
    for b, (arr, f) in enumerate(zip(bricks, facs, strict=True)):
        if f > 0 and f != 1.0:
            data[..., b] = (arr.astype(np.float32) * np.float32(f)).astype(out_dtype)
        else:
            data[..., b] = arr

    # geometry: IJK_TO_DICOM_REAL (what nibabel uses) else ORIENT/ORIGIN/DELTA
    if "IJK_TO_DICOM_REAL" in attrs and len(attrs["IJK_TO_DICOM_REAL"]) >= 12:
        affine = affine_from_ijk_to_dicom(attrs["IJK_TO_DICOM_REAL"][:12])
    else:
        for req in ("ORIENT_SPECIFIC", "ORIGIN", "DELTA"):
            if req not in attrs:
                raise InputDataError(f"unreadable AFNI header {head}: attribute {req} is missing")
        affine = affine_from_afni_geometry(
            attrs["ORIENT_SPECIFIC"], attrs["ORIGIN"], attrs["DELTA"]
        )

    labels = _labels_from(attrs, nvals)
    if isinstance(attrs.get("BRICK_STATSYM"), str):
        codes, params = _stats_from_statsym(attrs["BRICK_STATSYM"].split("\0")[0], nvals)
    elif "BRICK_STATAUX" in attrs:
        codes, params = _stats_from_stataux(attrs["BRICK_STATAUX"], nvals)
    else:
        codes, params = [0] * nvals, [()] * nvals
    # legacy 2-brick fitt/fift... datasets: STAT_AUX + func_type
    scene = attrs.get("SCENE_DATA")
    if not any(codes) and "STAT_AUX" in attrs and scene and len(scene) > 1 and nvals == 2:
        ft = int(scene[1])
        ts = _attr_str(attrs, "TYPESTRING") or ""
        if "FUNC" in ts and _FIRST_STAT <= ft <= _LAST_STAT:
            codes[1] = ft
            need = STAT_NPARAMS[ft]
            params[1] = tuple(float(x) for x in (list(attrs["STAT_AUX"]) + [0.0] * 3)[:need])

    space = _attr_str(attrs, "TEMPLATE_SPACE")
    if view is None and scene:
        view = _VIEWS[int(scene[0])] if 0 <= int(scene[0]) < 3 else "orig"
    view = view or "orig"
    if not space:
        space = {"orig": "ORIG", "acpc": "ACPC", "tlrc": "TLRC"}[view]
    history = _attr_str(attrs, "HISTORY_NOTE") or ""
    return AfniDataset(
        data=data,
        affine=affine,
        labels=labels,
        stat_codes=codes,
        stat_params=params,
        space=space,
        view=view,
        history=history,
        path=head,
        attributes=dict(attrs),
    )


_SPACE_OF_XFORM = {1: "ORIG", 2: "ORIG", 3: "TLRC", 4: "MNI", 5: "TLRC"}


def _read_nifti(path: Path) -> AfniDataset:
    import nibabel as nib

    try:
        img = nib.load(str(path), mmap=False)
    except Exception as err:  # nibabel raises many kinds
        raise InputDataError(f"unreadable NIfTI file {path}: {err}") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputDataError(f"{path}: not a NIfTI-1/2 file")
    hdr = img.header
    try:
        raw = np.asanyarray(img.dataobj)
        if raw.dtype == np.float64 and img.get_data_dtype() != np.float64:
            raw = raw.astype(np.float32)  # scaled integers: float32, as AFNI
    except Exception as err:
        raise InputDataError(f"cannot read the data of {path}: {err}") from None
    shp = raw.shape
    dim = [int(x) for x in hdr["dim"]]
    if raw.ndim <= 3:
        data = raw.reshape(tuple(shp) + (1,) * (3 - raw.ndim) + (1,))
    elif raw.ndim == 4:
        data = raw
    else:
        nt = shp[3]
        rest = int(np.prod(shp[4:]))
        if nt == 1 or rest == 1:
            data = raw.reshape(shp[:3] + (nt * rest,))
        else:  # time x bricks: AFNI flattens t fastest
            data = raw.reshape(shp[:3] + (nt * rest,), order="F")
    nvals = data.shape[3]

    # AFNI extension
    ext_attrs: dict[str, Any] = {}
    root: dict[str, str] = {}
    for ext in hdr.extensions:
        if int(ext.get_code()) == 4:
            try:
                content = ext.get_content()
            except Exception:
                content = getattr(ext, "_content", b"")
            if isinstance(content, str):
                content = content.encode("utf-8")
            ext_attrs, root = parse_afni_extension(bytes(content))
            break

    # geometry always comes from the header (sform if set, else qform: nibabel's choice); the
    # extension's copy of IJK_TO_DICOM_REAL is informational
    affine = np.asarray(img.affine, dtype=np.float64)

    labels = _labels_from(ext_attrs, nvals)
    codes: list[int] = [0] * nvals
    params: list[tuple[float, ...]] = [()] * nvals
    intent = int(hdr["intent_code"])
    if _FIRST_STAT <= intent <= _LAST_STAT and (len(dim) < 6 or dim[5] <= 1):
        need = STAT_NPARAMS[intent]
        p = tuple(float(hdr[f"intent_p{k + 1}"]) for k in range(need))
        codes, params = [intent] * nvals, [p] * nvals
    if "BRICK_STATAUX" in ext_attrs:
        # AFNI applies BRICK_STATAUX from the extension (BRICK_STATSYM is informational there)
        codes, params = _stats_from_stataux(ext_attrs["BRICK_STATAUX"], nvals)

    space = _attr_str(ext_attrs, "TEMPLATE_SPACE")
    scode = int(hdr["sform_code"]) or int(hdr["qform_code"])
    if not space:
        space = _SPACE_OF_XFORM.get(scode, "ORIG")
    view = _view_of_space(space)
    history = _attr_str(ext_attrs, "HISTORY_NOTE") or ""
    attrs = dict(ext_attrs)
    if dim[0] == 4 and dim[4] > 1 and "TAXIS_NUMS" not in attrs:
        units = int(hdr["xyzt_units"]) & 0x38
        tr = float(hdr["pixdim"][4])
        if units == 16:  # ms
            tr /= 1000.0
        attrs["TAXIS_NUMS"] = [dim[4], 0, 77002, -999, -999, -999, -999, -999]
        attrs["TAXIS_FLOATS"] = [0.0, tr, 0.0, 0.0, 0.0, -999999.0, -999999.0, -999999.0]
    if root.get("self_idcode"):
        attrs.setdefault("IDCODE_STRING", root["self_idcode"] + "\0")
    return AfniDataset(
        data=data,
        affine=affine,
        labels=labels,
        stat_codes=codes,
        stat_params=params,
        space=space.upper(),
        view=view,
        history=history,
        path=path,
        attributes=attrs,
    )


def read_dataset(spec: str | os.PathLike) -> AfniDataset:
    """Read an AFNI dataset (``PREFIX+VIEW[.HEAD|.BRIK[.gz]]``, ``.nii``, ``.nii.gz``) with an
    optional sub-brick selector (``'file[chx:t]'``). Data are always 4-D (nx, ny, nz, nvals)."""
    path_text, selector = split_selector(spec)
    kind, head, brik, view = resolve(path_text)
    dset = _read_afni(head, brik, view) if kind == "afni" else _read_nifti(head)
    if selector is not None:
        idx = parse_selector(selector, dset.labels, source=head)
        dset = dset.select(idx)
    return dset


def read_labels(spec: str | os.PathLike) -> list[str]:
    """Sub-brick labels of a dataset without reading its data (HEAD/BRIK: the header only).

    Used by discovery, which looks at every subject before anything is analysed. A missing
    data file still counts as a missing dataset, as in :func:`read_dataset`.
    """
    path_text, _ = split_selector(spec)
    kind, head, brik, _view = resolve(path_text)
    if kind != "afni":
        return read_dataset(path_text).labels
    if brik is None:
        raise MissingInputError(
            f"dataset data file not found: {head.with_suffix('.BRIK')} (or .BRIK.gz) for {head}"
        )
    try:
        attrs = parse_head_text(head.read_bytes(), source=str(head))
    except OSError as err:
        raise InputDataError(f"cannot read AFNI header {head}: {err}") from None
    rank = attrs.get("DATASET_RANK")
    if not rank or len(rank) < 2 or rank[1] < 1:
        raise InputDataError(
            f"unreadable AFNI header {head}: DATASET_RANK is missing or invalid "
            "(not an AFNI .HEAD file, or it is damaged)"
        )
    return _labels_from(attrs, int(rank[1]))
