"""Make the 3dttest++ fixtures of this folder with real AFNI (run by hand; see README.md).

usage: source /opt/afni-oracle/env.sh && python tests/data/ttest/make_fixtures.py

Writes ``in/`` (inputs: 16 setA and 14 setB subjects on a 12x14x10 grid, an ellipsoid mask, a
covariates table) and ``afni/`` (AFNI's outputs of every command in ``commands.txt``), and the
first records of AFNI's null-volume ``.sdat`` files. Everything is deterministic except AFNI's
idcodes, dates and histories.
"""

from __future__ import annotations

import gzip
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
SHAPE = (12, 14, 10)
N_A, N_B = 16, 14
#: records of each kept .sdat stored in the fixtures (the whole file is too large to keep)
SDAT_RECORDS = 12
#: files of this folder that are not AFNI outputs
KEEP_HERE = {"commands.txt", "make_fixtures.py", "README.md"}


def affine() -> np.ndarray:
    """RAI 2.5 mm grid as AFNI writes it in NIfTI (x, y flipped)."""
    aff = np.diag([-2.5, -2.5, 2.5, 1.0])
    aff[:3, 3] = [15.0, 17.0, -12.0]
    return aff


def save(data: np.ndarray, path: Path) -> None:
    img = nib.Nifti1Image(data, affine())
    img.set_qform(affine(), code=1)
    img.set_sform(affine(), code=1)
    nib.save(img, str(path))


def make_inputs(root: Path) -> None:
    """Smoothed Gaussian noise subjects, special voxels outside the mask, mask, covariates."""
    rng = np.random.default_rng(20261207)
    inp = root / "in"
    inp.mkdir(parents=True, exist_ok=True)
    ii, jj, kk = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    mask = ((ii - 5.5) / 5.6) ** 2 + ((jj - 6.5) / 6.6) ** 2 + ((kk - 4.5) / 4.7) ** 2 <= 1.0
    mask[0:5, 0, 0] = False  # the special voxels below are outside the mask
    save(mask.astype(np.uint8), inp / "mask.nii.gz")
    for group, n, shift in (("a", N_A, 0.3), ("b", N_B, 0.0)):
        for s in range(1, n + 1):
            vol = ndimage.gaussian_filter(rng.normal(size=SHAPE), 1.0, mode="wrap") * 2 + shift
            vol = vol.astype(np.float32)
            # special voxels (x = 0..4, y = z = 0): all zero, huge +t, huge -t, small effect,
            # constant setB
            if group == "a":
                vol[0, 0, 0] = 0.0
                vol[1, 0, 0] = 5 + 1e-4 * s
                vol[2, 0, 0] = -5 - 1e-4 * s
                vol[3, 0, 0] = 1 + 0.01 * s
            else:
                vol[4, 0, 0] = 2.0
            if group == "a" and s == 3:
                vol[6, 13, 9] = np.nan  # non-finite input: read as 0 by AFNI
            if group == "b" and s == 5:
                vol[7, 13, 9] = np.inf
            save(vol, inp / f"{group}{s:02d}.nii.gz")
    ages = rng.uniform(20, 60, N_A + N_B).round(1)
    iqs = rng.normal(100, 12, N_A + N_B).round(0)
    rows = ["subj age iq"]
    labels = [f"a{s:02d}" for s in range(1, N_A + 1)] + [f"b{s:02d}" for s in range(1, N_B + 1)]
    for lab, age, iq in zip(labels, ages, iqs, strict=True):
        rows.append(f"{lab} {age:g} {iq:g}")
    (inp / "cov.txt").write_text("\n".join(rows) + "\n")


def long_form(group: str, n: int, name: str) -> str:
    return (
        name + " " + " ".join(f"{group}{s:02d} in/{group}{s:02d}.nii.gz" for s in range(1, n + 1))
    )


def main() -> int:
    if shutil.which("3dttest++") is None:
        sys.exit("3dttest++ not on PATH (source /opt/afni-oracle/env.sh)")
    make_inputs(HERE)
    out = HERE / "afni"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    env = dict(os.environ, AFNI_MESSAGE_COLORIZE="NO", AFNI_DONT_LOGFILE="YES", OMP_NUM_THREADS="1")
    la, lb = long_form("a", N_A, "grpA"), long_form("b", N_B, "grpB")
    la14 = long_form("a", N_B, "grpA")
    env_text = {}
    commands = []
    for line in (HERE / "commands.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        line = line.replace("$LA14", la14).replace("$LA", la).replace("$LB", lb)
        commands.append(line)
    for line in commands:
        words = shlex.split(line)
        run_env = dict(env)
        while "=" in words[0]:
            k, v = words.pop(0).split("=", 1)
            run_env[k] = v
            env_text[k] = v
        print("+", line[:150], file=sys.stderr)
        subprocess.run(words, cwd=HERE, env=run_env, check=True, stdout=subprocess.DEVNULL)
    # keep only the head of each .sdat (null volumes) and .minmax.1D, gzip the residuals,
    # drop what the tests do not read (the .niml tables are inside the datasets' headers)
    nmask = int(np.count_nonzero(np.asarray(nib.load(str(HERE / "in" / "mask.nii.gz")).dataobj)))
    for sdat in sorted(HERE.glob("*.sdat")):
        raw = np.fromfile(sdat, dtype="<i2").reshape(-1, nmask)
        raw[:SDAT_RECORDS].tofile(out / (sdat.name + f".first{SDAT_RECORDS}"))
    for mm in sorted(HERE.glob("*.minmax.1D")):
        head = mm.read_text().splitlines(keepends=True)[:SDAT_RECORDS]
        (out / (mm.name + f".first{SDAT_RECORDS}")).write_text("".join(head))
    for resid in ("cs_two.resid.nii", "cs_cov.resid.nii"):
        with open(HERE / resid, "rb") as src, gzip.open(out / (resid + ".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    keep = [f for f in HERE.iterdir() if f.is_file() and f.name not in KEEP_HERE]
    for f in keep:
        drop = f.suffix in (".sdat", ".niml") or f.name.endswith((".resid.nii", ".minmax.1D"))
        drop |= f.name.startswith("cs_jobs.") or f.name == "two_z.nii.gz"
        if drop:
            f.unlink()
        else:
            shutil.move(str(f), out / f.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
