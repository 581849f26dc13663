"""``afni-group-demo``: a small, realistic, deterministic afni_proc.py-shaped demo dataset.

``afni-group-demo DIR [--subjects 12] [--seed 0] [--grid 3mm|small]`` writes::

    DIR/
      README                         what the data is, the planted effects and where they are
      dataset_description.json       BIDS raw
      participants.tsv               participant_id age sex group
      task-checks_bold.json          TaskName, RepetitionTime
      sub-XX/func/sub-XX_task-checks_run-0{1,2}_bold.nii.gz   tiny all-zero placeholders
      derivatives/afni/sub-XX/sub-XX.results/
        stats.sub-XX_REML+tlrc.{HEAD,BRIK}      19-brick 3dREMLfit bucket (spec 01 §1.1)
        mask_epi_anat.sub-XX+tlrc.{HEAD,BRIK}   byte 0/1 brain mask
        blur_est.sub-XX.1D                      6 lines, exactly as afni_proc writes them (§1.2)
        out.ss_review_uvars.json                afni_proc's uvars (relative names)

Everything is synthetic. Only the files above exist; ``out.ss_review_uvars.json`` also names
files afni_proc would have written (X.xmat.1D, errts, anat_final ...) that the demo does not
write, exactly as a results directory copied without its large files would look.

The planted truth is drawn in :mod:`afni_group.demo.truth`, the volumes are made in
:mod:`afni_group.demo.noise`; the command line is :mod:`afni_group.demo.cli`.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from afni_group import __version__
from afni_group.demo.noise import subject_volumes
from afni_group.demo.truth import (
    GLTS,
    N_RUNS,
    STIMS,
    TR_S,
    TRS_PER_RUN,
    DemoTruth,
    Grid,
    SubjectTruth,
    effective_fwhm,
    planted_truth,
    round_g,
    session_truth,
    subject_rngs,
)
from afni_group.errors import OutputError, UsageError
from afni_group.programs.acf.formats import format_acf_line

TASK = "checks"

TEMPLATE = "MNI152_2009_template_SSW.nii.gz"

FIXED_DATE = "Thu Jan  1 00:00:00 1970"  # IDCODE_DATE: ctime(0) UTC, so bytes never change

# How afni_proc's datasets are typed (spec 01 §1 and the testdata): the REML bucket is a func
# bucket (3DIM_HEAD_FUNC, SCENE_DATA 2 11 1); mask_epi_anat is byte, anat "epan" (2 2 0).
STATS_ATTRS = {"TYPESTRING": "3DIM_HEAD_FUNC"}

MASK_ATTRS = {"SCENE_DATA": [2, 2, 0, -999, -999, -999, -999, -999]}

#: where the afni_proc results go (``--layout``)
LAYOUTS = ("nested", "flat")


def stats_layout(dof: int) -> list[tuple[str, int, tuple[float, ...]]]:
    """The 19 (label, stat code, params) of the REML bucket (spec 01 §1.1).

    ``Full_Fstat`` fift(4, dof); per stimulus and GLT ``#0_Coef`` (none), ``#0_Tstat``
    fitt(dof), ``_Fstat`` fift(1, dof).
    """
    d = float(dof)
    layout: list[tuple[str, int, tuple[float, ...]]] = [("Full_Fstat", 4, (float(len(STIMS)), d))]
    for name in (*STIMS, *GLTS):
        layout += [
            (f"{name}#0_Coef", 0, ()),
            (f"{name}#0_Tstat", 3, (d,)),
            (f"{name}_Fstat", 4, (1.0, d)),
        ]
    return layout


def format_blur_est(
    epits: Sequence[float], errts: Sequence[float], err_reml: Sequence[float]
) -> str:
    """The 6-line ``blur_est.$subj.1D`` text (spec 01 §1.2).

    Each argument is the ACF (a, b, c, d) of that source; FWHM lines are the modern
    ``0 0 0 0``. Numbers ``%g``, single spaces, three spaces before ``#``.
    """
    lines = []
    for label, acf in (("epits", epits), ("errts", errts), ("err_reml", err_reml)):
        lines.append(f"0 0 0 0   # {label} FWHM blur estimates")
        lines.append(format_acf_line(acf, label))
    return "\n".join(lines) + "\n"


def ss_review_uvars(subject: SubjectTruth, subj: str | None = None) -> dict:
    """``out.ss_review_uvars.json`` content, field names of afni's ``g_ss_uvar_fields``.

    Names are relative to the results directory, as afni_proc writes them; ``subj`` is
    afni_proc's ``-subj_id`` (default ``sub-XX``; ``sub-XX_ses-YY`` for one session).
    """
    sid = subj or subject.sid
    nt_orig = N_RUNS * TRS_PER_RUN
    return {
        "subj": sid,
        "afni_ver": "afni-group-demo",
        "afni_package": "synthetic",
        "tr": TR_S,
        "mot_limit": 0.3,
        "out_limit": 0.05,
        "copy_anat": f"{sid}_T1w+orig.HEAD",
        "mask_dset": f"mask_epi_anat.{sid}+tlrc.HEAD",
        "template": TEMPLATE,
        "ss_review_dset": f"out.ss_review.{sid}.txt",
        "vlines_tcat_dir": "vlines.pb00.tcat",
        "rm_trs": 0,
        "num_stim": len(STIMS),
        "nt_orig": nt_orig,
        "nt_applied": nt_orig - subject.n_censored,
        "tcat_dset": f"pb00.{sid}.r01.tcat+orig.HEAD",
        "censor_dset": f"censor_{sid}_combined_2.1D",
        "enorm_dset": f"motion_{sid}_enorm.1D",
        "motion_dset": "dfile_rall.1D",
        "volreg_dset": f"pb02.{sid}.r01.volreg+tlrc.HEAD",
        "outlier_dset": "outcount_rall.1D",
        "gcor_dset": "out.gcor.1D",
        "mask_corr_dset": "out.mask_ae_dice.txt",
        "mask_anat_templ_corr_dset": "out.mask_at_dice.txt",
        "xmat_regress": "X.xmat.1D",
        "xmat_uncensored": "X.nocensor.xmat.1D",
        "xmat_stim": "X.stim.xmat.1D",
        "stats_dset": f"stats.{sid}_REML+tlrc.HEAD",
        "sum_ideal": "sum_ideal.1D",
        "final_anat": f"anat_final.{sid}+tlrc.HEAD",
        "vr_base_dset": "vr_base_min_outlier+orig.HEAD",
        "final_epi_dset": "final_epi_vr_base_min_outlier+tlrc.HEAD",
        "final_view": "tlrc",
        "template_warp": "nonlinear",
        "have_radcor_dirs": "yes",
        "flip_check_dset": "aea_checkflip_results.txt",
        "flip_guess": "NO_FLIP",
        "tsnr_dset": f"TSNR.{sid}+tlrc.HEAD",
        "errts_dset": f"errts.{sid}_REML+tlrc.HEAD",
        "df_info_dset": "out.df_info.txt",
        "cormat_warn_dset": "out.cormat_warn.txt",
        "pre_ss_warn_dset": "out.pre_ss_warn.txt",
        "decon_err_dset": "3dDeconvolve.err",
    }


def _other_blur_sources(
    rng: np.random.Generator, acf: Sequence[float]
) -> tuple[list[float], list[float]]:
    """Plausible epits and errts ACF lines next to a subject's err_reml values.

    epits (the EPI before regression, still containing signal) is smoother; errts (OLS) is
    within a fraction of a percent of err_reml.
    """
    a, b, c = acf
    ep = (min(a + 0.06, 0.95), b * 1.09, c * 1.3)
    ep = tuple(v * (1.0 + 0.01 * rng.standard_normal()) for v in ep)
    er = tuple(v * (1.0 + 0.004 * rng.standard_normal()) for v in acf)
    out = []
    for p in (ep, er):
        p = (min(p[0], 0.99), p[1], p[2])
        vals = [round_g(v) for v in p]
        vals.append(round_g(effective_fwhm(*vals)))
        out.append(vals)
    return out[0], out[1]


# --------------------------------------------------------------------------- writing


def _placeholder_bold(grid: Grid) -> bytes:
    """A tiny valid 4-D NIfTI (2x2x2x230 int16 zeros, TR 2 s), gzip'd with mtime 0."""
    import nibabel as nib

    img = nib.Nifti1Image(np.zeros((2, 2, 2, TRS_PER_RUN), dtype=np.int16), grid.affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = TR_S
    return gzip.compress(img.to_bytes(), mtime=0)


def _write_text(path: Path, text: str, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    written.append(path)


def _options_text(
    sessions: Sequence[str], layout: str, group_effect: float, session_effect: float
) -> str:
    """The non-default options, as typed (empty for a default demo, whose README is unchanged)."""
    words = [f"--sessions {' '.join(sessions)}"] if sessions else []
    words += [f"--layout {layout}"] if layout != "nested" else []
    words += [f"--group-effect {group_effect:g}"] if group_effect else []
    words += [f"--session-effect {session_effect:g}"] if session_effect else []
    return "".join(f" {w}" for w in words)


def _design_notes(
    sessions: Sequence[str], layout: str, group_effect: float, session_effect: float
) -> str:
    """README lines about the options that shape the designs (none for a default demo)."""
    unit = "sub-XX_ses-YY" if sessions else "sub-XX"
    where = (
        f"{unit}.results"
        if layout == "flat"
        else f"sub-XX/{'ses-YY/' if sessions else ''}{unit}.results"
    )
    lines = []
    if sessions or layout != "nested":
        lines.append(f"afni_proc results: derivatives/afni/{where} (afni_proc -subj_id {unit}).")
    if sessions:
        lines.append(f"Sessions: {', '.join(sessions)} (each with its own noise, masks and blur).")
    if group_effect:
        lines.append(
            f"Groups: participants.tsv column 'group' (control, patient alternate); the patients' "
            f"chx effect is {group_effect:+g} % larger."
        )
    if session_effect:
        lines.append(
            f"The chx effect grows by {session_effect:+g} % in each session after the first."
        )
    return "".join(f"{line}\n" for line in lines)


def _readme(truth: DemoTruth, n_subjects: int, options: str = "") -> str:
    g = truth.grid
    a, b, c = truth.mean_acf
    lines = [
        "afni-group demo dataset (synthetic)",
        "====================================",
        "",
        f"Written by afni-group-demo {__version__} with --subjects {n_subjects} "
        f"--seed {truth.seed} --grid {g.name}{options}. Same options -> identical bytes.",
        "Nothing here comes from a scanner: sub-*/func/*_bold.nii.gz are 2x2x2 all-zero",
        "placeholders; derivatives/afni/sub-*/sub-*.results/ hold what the group analysis reads",
        "(stats.sub-XX_REML+tlrc, mask_epi_anat.sub-XX+tlrc, blur_est.sub-XX.1D,",
        "out.ss_review_uvars.json). Other files named in the uvars were not written.",
        "",
        f"Grid: {g.shape[0]}x{g.shape[1]}x{g.shape[2]} voxels of {g.voxel_mm:g} mm, RAI, "
        "TEMPLATE_SPACE MNI, view tlrc.",
        "",
        "Planted effects (GLT betas in % signal change; MNI mm, x<0 = left):",
    ]
    for blob in truth.blobs:
        x, y, z = blob.centre_mni
        lines.append(
            f"  {blob.set_label:9s} {blob.beta_label:28s} {blob.effect_pct:+g} % "
            f"(subject SD {blob.subject_sd_pct:g} %) at ({x:g}, {y:g}, {z:g}), "
            f"{blob.region}, Gaussian sigma {blob.sigma_mm:g} mm"
        )
        lines.append(
            f"{'':12s}atlas regions at the centre: Harvard-Oxford {blob.atlas_regions[0]}, "
            f"AAL2 {blob.atlas_regions[1]}"
        )
    lines += [
        "",
        "With 12 subjects the chx blob is found by the tutorial pipeline (p 0.001, alpha 0.05);",
        "the keypress effect is deliberately weak and is usually not significant.",
        "",
        f"Noise ACF (err_reml, per subject in blur_est.sub-XX.1D): mean a b c = "
        f"{a:.6g} {b:.6g} {c:.6g}.",
        "t-stat DOF = 460 TRs - censored TRs (0-14) - 18 regressors.",
        "",
    ]
    return "\n".join(lines)


def write_demo(
    out_dir: str | Path,
    n_subjects: int = 12,
    seed: int = 0,
    grid: str = "3mm",
    force: bool = False,
    sessions: Sequence[str] = (),
    layout: str = "nested",
    group_effect: float = 0.0,
    session_effect: float = 0.0,
) -> DemoTruth:
    """Write the demo dataset to ``out_dir`` and return what was planted.

    Parameters
    ----------
    out_dir : path
        Target directory; created if needed. Must be empty unless ``force``.
    n_subjects : int
        At least 2.
    seed : int
        Non-negative seed; the same options give identical bytes.
    grid : str
        ``"3mm"`` (default) or ``"small"``.
    force : bool
        Write into a non-empty directory (files of the same name are replaced).
    sessions : list of str
        Session labels (e.g. ``pre post``): per-session raw folders and afni_proc results
        ``sub-XX/ses-YY/sub-XX_ses-YY.results``; none (default): one results folder per subject.
    layout : {"nested", "flat"}
        ``nested``: ``derivatives/afni/sub-XX/[ses-YY/]<subj_id>.results`` (the tutorial's);
        ``flat``: ``derivatives/afni/<subj_id>.results``.
    group_effect, session_effect : float
        % signal change added to the chx effect of the ``patient`` group, and per session
        after the first (:func:`~afni_group.demo.truth.session_truth`).

    Raises
    ------
    UsageError
        Bad ``n_subjects``/``seed``/``grid``.
    OutputError
        ``out_dir`` is a file, is not empty (without ``force``) or cannot be written.
    """
    if n_subjects < 2:
        raise UsageError(f"--subjects must be at least 2, not {n_subjects}")
    if n_subjects > 99:
        raise UsageError(f"--subjects must be at most 99 (two-digit labels), not {n_subjects}")
    if seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, not {seed}")
    sessions = [x.removeprefix("ses-") for x in sessions]
    for label in sessions:
        if not re.fullmatch(r"[A-Za-z0-9]+", label) or sessions.count(label) > 1:
            raise UsageError(
                f"--sessions: '{label}' is not a distinct BIDS label (letters, digits)"
            )
    if layout not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, not '{layout}'")
    flat = layout == "flat"
    truth = planted_truth(n_subjects, seed, grid)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"{out} is not empty: choose an empty directory or pass --force")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror}") from exc

    g = truth.grid
    written: list[Path] = []
    try:
        options = _options_text(sessions, layout, group_effect, session_effect)
        readme = _readme(truth, n_subjects, options)
        readme += _design_notes(sessions, layout, group_effect, session_effect)
        _write_text(out / "README", readme, written)
        description = {
            "Name": "afni-group demo (synthetic afni_proc.py results)",
            "BIDSVersion": "1.8.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["afni-group-demo"],
            "GeneratedBy": [{"Name": "afni-group-demo", "Version": __version__}],
        }
        _write_text(
            out / "dataset_description.json", json.dumps(description, indent=4) + "\n", written
        )
        rows = ["participant_id\tage\tsex\tgroup"]
        rows += [f"{s.sid}\t{s.age}\t{s.sex}\t{s.group}" for s in truth.subjects]
        _write_text(out / "participants.tsv", "\n".join(rows) + "\n", written)
        sidecar = {"TaskName": TASK, "RepetitionTime": TR_S}
        _write_text(out / f"task-{TASK}_bold.json", json.dumps(sidecar, indent=4) + "\n", written)
        bold = _placeholder_bold(g)

        for index, subject in enumerate(truth.subjects):
            for k, session in enumerate(sessions or [None]):
                unit = session_truth(subject, k, group_effect, session_effect)
                _write_unit(out, unit, index, seed, g, (k, session), flat, bold, written)
    except OSError as exc:
        raise OutputError(f"cannot write the demo dataset in {out}: {exc}") from exc
    truth.files = written
    return truth


def _write_unit(
    out: Path,
    subject: SubjectTruth,
    index: int,
    seed: int,
    g: Grid,
    session: tuple[int, str | None],
    flat: bool,
    bold: bytes,
    written: list[Path],
) -> None:
    """The raw placeholders and afni_proc results of one subject in one session (or the only).

    afni_proc's ``-subj_id`` is ``sub-XX`` or ``sub-XX_ses-YY``; its results folder is
    ``sub-XX/[ses-YY/]<subj_id>.results`` (nested) or ``<subj_id>.results`` (``flat``).
    """
    from afni_group import afni_io

    k, label = session
    sid = subject.sid
    unit = sid if label is None else f"{sid}_ses-{label}"
    ses_dir = Path(sid) if label is None else Path(sid) / f"ses-{label}"
    func = out / ses_dir / "func"
    func.mkdir(parents=True, exist_ok=True)
    for run in range(1, N_RUNS + 1):
        path = func / f"{unit}_task-{TASK}_run-{run:02d}_bold.nii.gz"
        path.write_bytes(bold)
        written.append(path)

    afni = out / "derivatives" / "afni"
    results = afni / f"{unit}.results" if flat else afni / ses_dir / f"{unit}.results"
    results.mkdir(parents=True, exist_ok=True)
    mask, _, stats = subject_volumes(subject, seed, index, g, k)
    layout = stats_layout(subject.dof)
    history = f"afni-group-demo --seed {seed} --grid {g.name}: synthetic {unit}"
    stats_dset = afni_io.AfniDataset(
        data=stats,
        affine=g.affine,
        labels=[lab for lab, _, _ in layout],
        stat_codes=[code for _, code, _ in layout],
        stat_params=[params for _, _, params in layout],
        space="MNI",
        view="tlrc",
        history=history,
    )
    prefix = results / f"stats.{unit}_REML+tlrc"
    written.extend(
        _write_afni(afni_io, stats_dset, prefix, _idcode(seed, index, 0, k), STATS_ATTRS)
    )
    mask_dset = afni_io.AfniDataset(
        data=mask[..., np.newaxis],
        affine=g.affine,
        labels=["#0"],
        stat_codes=[0],
        stat_params=[()],
        space="MNI",
        view="tlrc",
        history=history,
    )
    prefix = results / f"mask_epi_anat.{unit}+tlrc"
    written.extend(_write_afni(afni_io, mask_dset, prefix, _idcode(seed, index, 1, k), MASK_ATTRS))

    blur_rng = subject_rngs(seed, index, k)[2]
    epits, errts = _other_blur_sources(blur_rng, subject.acf)
    err_reml = [*subject.acf, subject.fwhm]
    _write_text(results / f"blur_est.{unit}.1D", format_blur_est(epits, errts, err_reml), written)
    _write_text(
        results / "out.ss_review_uvars.json",
        json.dumps(ss_review_uvars(subject, unit), indent=4) + "\n",
        written,
    )


def _idcode(seed: int, index: int, which: int, session: int = 0) -> str:
    """Deterministic AFNI-style id code (``DEM_`` + 22 characters) of dataset ``which``."""
    from afni_group.afni_io.ids import idcode_from_indices

    rng = subject_rngs(seed, index, session)[3]
    draws = rng.integers(0, 64, size=(which + 1, 22))[which]
    return idcode_from_indices("DEM", draws)


def _write_afni(afni_io, dset, prefix: Path, idcode: str, attributes: dict) -> list[Path]:
    """Write HEAD/BRIK through afni_io with a fixed id code and date (byte-stable).

    Returns the HEAD and BRIK paths.
    """
    head = afni_io.write_dataset(
        dset, str(prefix), idcode=idcode, date=FIXED_DATE, attributes=attributes
    )
    return [head, head.with_suffix(".BRIK")]
