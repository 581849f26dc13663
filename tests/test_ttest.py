"""Native 3dttest++ and its -Clustsim against real AFNI_26.2.03 outputs (tests/data/ttest).

Every command of ``commands.txt`` is re-run with ``afni-native 3dttest++`` on the same inputs:
the bricks must be AFNI's bit for bit, with the same labels, stat codes and DOFs; the
``-Clustsim`` runs (same seeds, one job) must give the same nine tables, byte for byte, and the
same ``AFNI_CLUSTSIM_*`` attributes. The null volumes themselves are checked against the first
records of AFNI's ``.sdat`` files.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from afni_group import afni_io, errors
from afni_group.programs.cli.dispatch import main as afni_native
from afni_group.programs.cli.ttest import cli_main
from afni_group.programs.clustsim import core as clustsim_core
from afni_group.programs.clustsim.simulate import z_thresholds
from afni_group.programs.ttest import clustsim, core, files, kernels, randomise
from afni_group.programs.ttest import formats as tformats

DATA = Path(__file__).parent / "data" / "ttest"
AFNI = DATA / "afni"
N_A, N_B = 16, 14


def _long(group: str, n: int, name: str) -> str:
    return (
        name + " " + " ".join(f"{group}{s:02d} in/{group}{s:02d}.nii.gz" for s in range(1, n + 1))
    )


def commands() -> list[tuple[dict[str, str], list[str]]]:
    """(environment, argv) of every AFNI run behind the fixtures."""
    subst = {"$LA14": _long("a", N_B, "grpA"), "$LA": _long("a", N_A, "grpA"),
             "$LB": _long("b", N_B, "grpB")}  # fmt: skip
    out = []
    for line in (DATA / "commands.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        for k, v in subst.items():
            line = line.replace(k, v)
        words = shlex.split(line)
        env = {}
        while "=" in words[0]:
            k, v = words.pop(0).split("=", 1)
            env[k] = v
        out.append((env, words[1:]))
    return out


def prefix_of(argv: list[str]) -> str:
    return argv[argv.index("-prefix") + 1]


def output_name(prefix: str) -> str:
    return prefix if prefix.endswith(".nii.gz") else prefix + ".HEAD"


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch) -> Path:
    shutil.copytree(DATA / "in", tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    return tmp_path


def _run(env: dict[str, str], argv: list[str], monkeypatch) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    # AFNI's '-CLUSTSIM' keeps its temporary files; ours has none, it acts as -Clustsim
    assert cli_main(["-DAFNI_MESSAGE_COLORIZE=NO", *argv]) == 0


BRICK_RUNS = [(e, a) for e, a in commands() if "-CLUSTSIM" not in a]
CLUSTSIM_RUNS = [(e, a) for e, a in commands() if "-CLUSTSIM" in a and "cs_jobs" not in " ".join(a)]


@pytest.mark.parametrize(
    ("env", "argv"), BRICK_RUNS, ids=lambda x: prefix_of(x) if isinstance(x, list) else ""
)
def test_bricks_bit_exact(workdir, monkeypatch, env, argv):
    _run(env, argv, monkeypatch)
    name = output_name(prefix_of(argv))
    ours, theirs = afni_io.read_dataset(name), afni_io.read_dataset(AFNI / name)
    assert ours.data.dtype == theirs.data.dtype == np.float32
    assert np.array_equal(ours.data, theirs.data)
    assert ours.labels == theirs.labels
    assert ours.stat_codes == theirs.stat_codes
    assert [tuple(p) for p in ours.stat_params] == [tuple(p) for p in theirs.stat_params]
    assert np.allclose(ours.affine, theirs.affine)
    for key in ("TYPESTRING", "SCENE_DATA", "BRICK_STATAUX", "BRICK_STATSYM", "BRICK_LABS"):
        assert ours.attributes.get(key) == theirs.attributes.get(key), key


def _niml_without_mask_ids(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if "mask_dset_" not in ln]


@pytest.mark.parametrize(
    ("env", "argv"), CLUSTSIM_RUNS, ids=lambda x: prefix_of(x) if isinstance(x, list) else ""
)
def test_clustsim_tables_equal_afni(workdir, monkeypatch, env, argv):
    """Same seeds, one job: the nine integer tables are AFNI's, byte for byte."""
    _run(env, argv, monkeypatch)
    prefix = prefix_of(argv)
    pc = files.clustsim_prefix(prefix, None)
    for sided in clustsim_core.SIDEDNESS:
        for nn in (1, 2, 3):
            name = f"{pc}.CSimA.NN{nn}_{sided}.1D"
            assert Path(name).read_text() == (AFNI / name).read_text(), name
    assert Path(f"{pc}.CSimA.cmd").read_text() == (AFNI / f"{pc}.CSimA.cmd").read_text()
    ours, theirs = afni_io.read_dataset(prefix), afni_io.read_dataset(AFNI / prefix)
    assert np.array_equal(ours.data, theirs.data)
    assert ours.labels == theirs.labels and ours.stat_codes == theirs.stat_codes
    keys = [k for k in theirs.attributes if k.startswith("AFNI_CLUSTSIM_")]
    assert len(keys) == 9
    for key in keys:
        assert _niml_without_mask_ids(ours.attributes[key]) == _niml_without_mask_ids(
            theirs.attributes[key]
        )
    assert "3drefit -atrstring AFNI_CLUSTSIM_NN1_1sided" in ours.history
    # AFNI's leftover per-job min/max of the null z (float rounding aside)
    mine = np.loadtxt(f"{pc}.0000.minmax.1D")
    ref = np.loadtxt(AFNI / f"{pc}.0000.minmax.1D.first12")
    assert mine.shape == (2000, 2)
    assert np.allclose(mine[:12], ref, atol=2e-5)
    assert not Path(f"{pc}.resid.nii").exists() and not list(Path().glob("*.sdat"))


def _inputs(order: str = "F"):
    def load(g, n):
        return np.stack([
            afni_io.read_dataset(DATA / "in" / f"{g}{s:02d}.nii.gz").data[..., 0].reshape(-1, order=order)
            for s in range(1, n + 1)
        ]).astype(np.float32)  # fmt: skip

    table = tformats.parse_covariates((DATA / "in" / "cov.txt").read_text())
    cov = core.Covariates(
        table.names,
        table.values([f"a{s:02d}" for s in range(1, N_A + 1)]),
        table.values([f"b{s:02d}" for s in range(1, N_B + 1)]),
    )
    mask = afni_io.read_dataset(DATA / "in" / "mask.nii.gz").data[..., 0]
    return load("a", N_A), load("b", N_B), cov, mask


SDAT_CASES = {
    "cs_one": ("one", 12345),
    "cs_two": ("pooled", 777),
    "cs_paired": ("paired", 778),
    "cs_unpooled": ("unpooled", 779),
    "cs_cov": ("cov", 780),
}


@pytest.mark.parametrize("name", list(SDAT_CASES))
def test_null_volumes_bit_exact(name):
    """AFNI's random streams, flips, permutations and job arithmetic: its .sdat records."""
    a, b, cov, mask3 = _inputs()
    kind, seed = SDAT_CASES[name]
    mask = mask3.reshape(-1, order="F") != 0
    if kind == "paired":
        a = a[:N_B]
    design = core.make_design(
        "pooled" if kind == "cov" else kind, a.shape[0], 0 if kind == "one" else N_B,
        toz=True, covariates=cov if kind == "cov" else None,
    )  # fmt: skip
    result = core.ttest(a, None if kind == "one" else b, design, mask=mask, residuals=True)
    res = result.residuals[:, mask]
    if name in ("cs_two", "cs_cov"):
        ref = afni_io.read_dataset(AFNI / f"{name}.resid.nii.gz").data
        assert np.array_equal(ref.reshape(-1, ref.shape[3], order="F").T[:, mask], res)
    sched = randomise.job_schedule(
        design.n_a, design.n_b, 12, randomise.job_seeds(seed, None, 0), randomise.permutes(design)
    )
    sdat = randomise.shortize(randomise.exact_null_z(res, design, sched))
    ref = np.fromfile(AFNI / f"{name}.0000.sdat.first12", "<i2").reshape(12, -1)
    assert np.array_equal(sdat, ref)


def test_job_seeds_and_null_of_second_job():
    a, _, _, mask3 = _inputs()
    mask = mask3.reshape(-1, order="F") != 0
    design = core.make_design("one", N_A, toz=True)
    res = core.ttest(a, None, design, mask=mask, residuals=True).residuals[:, mask]
    assert randomise.job_seeds(12345, None, 1) == (1123496, 315282761)
    for job in (0, 1):
        sched = randomise.job_schedule(N_A, 0, 12, randomise.job_seeds(12345, None, job), False)
        sdat = randomise.shortize(randomise.exact_null_z(res, design, sched))
        ref = np.fromfile(AFNI / f"cs_jobs.{job:04d}.sdat.first12", "<i2").reshape(12, -1)
        assert np.array_equal(sdat, ref)


def test_fast_null_matches_exact_null_clustering():
    """The BLAS route's per-iteration maxima equal clustering AFNI's quantised z volumes."""
    a, b, _, mask3 = _inputs()
    mask = mask3.reshape(-1, order="F") != 0
    design = core.make_design("pooled", N_A, N_B, toz=True)
    res = core.ttest(a, b, design, mask=mask, residuals=True).residuals
    fast = clustsim.simulate(res, mask3 != 0, design, jobs=2, iterations=40, seed=99, n_threads=2)
    grid = np.ascontiguousarray((mask3 != 0).T)
    work = clustsim.ClusterWork(grid, *z_thresholds(clustsim_core.LOTS_PTHR))
    rows = []
    for job in range(2):
        sched = randomise.job_schedule(N_A, N_B, 40, randomise.job_seeds(99, None, job), True)
        z = randomise.exact_null_z(res[:, mask], design, sched)
        rows.append(randomise.shortize(z).astype(np.float32) * randomise.SDAT_SCALE)
    exact = np.zeros_like(fast.max_sizes)
    for i, vol in enumerate(np.concatenate(rows)):
        work.max_sizes(vol, exact[i])
    assert np.array_equal(fast.max_sizes, exact)


# ------------------------------------------------------------------------------ t -> z


def test_t2z_keeps_afni_precision_loss():
    """Negative t convert accurately; positive t lose precision above ~7.4 and jump to 13
    (spec 08 §3: 1 - (1 - I/2) in double)."""
    t = np.array([21.231, 34.154, 42.769], dtype=np.float32)
    exact = -stats.norm.ppf(stats.t.sf(t.astype(np.float64), 15))
    z = core.t2z(np.concatenate([t, -t]), 15.0)
    assert np.allclose(z[3:], -exact, atol=1e-5)
    assert abs(z[0] - exact[0]) < 1e-4
    assert z[1] - exact[1] > 5e-3  # AFNI: 8.01402 for an exact 8.00235
    assert z[2] == 13.0
    for x, ref in zip(np.concatenate([t, -t]), z, strict=True):
        assert np.float32(kernels.t2z(float(x), 15.0)) == ref


def test_compiled_t2z_equals_numpy_t2z():
    rng = np.random.default_rng(3)
    t = np.concatenate([rng.normal(0, 3, 3000), rng.uniform(-40, 40, 500)]).astype(np.float32)
    dof = rng.uniform(3, 60, t.size)
    ours = np.array(
        [kernels.t2z(float(x), float(d)) for x, d in zip(t, dof, strict=True)], dtype=np.float32
    )
    assert np.array_equal(ours, core.t2z(t, dof))


def test_t_clip_and_degenerate_voxels():
    a = np.zeros((4, 3), dtype=np.float32)
    a[:, 0] = [5.0, 5.0001, 5.0002, 5.0003]  # huge t: clipped to 99
    a[:, 1] = [2.0, 2.0, 2.0, 2.0]  # constant: skipped, 0
    a[:, 2] = [1.0, 2.0, np.nan, 3.0]  # NaN counts as 0
    r = core.ttest(a, None, core.make_design("one", 4))
    assert r.bricks[0, 1] == 99.0 and r.skipped == 1
    assert np.all(r.bricks[1] == 0)
    assert r.bricks[2, 0] == np.float32(6.0) / np.float32(4)


# ------------------------------------------------------------------------------ iteration split


@pytest.mark.parametrize(
    ("env", "jobs", "nper"),
    [(None, 2, 5040), ("", 3, 3360), ("500", 16, 630), ("1000", 3, 334), ("2e7", 1, 10_000_000)],
)
def test_iterations_as_afni_splits_them(env, jobs, nper):
    assert clustsim.iterations_per_job(clustsim.nominal_iterations(env), jobs) == nper


# ------------------------------------------------------------------------------ errors


def _cli_error(argv: list[str], capsys) -> tuple[int, str]:
    code = afni_native(["3dttest++", *argv])
    return code, capsys.readouterr().err


def test_clustsim_needs_14_datasets(workdir, capsys):
    sets = _long("a", 13, "grpA").split()
    code, err = _cli_error(["-setA", *sets, "-prefix", "x.nii.gz", "-Clustsim", "1"], capsys)
    assert code == 64
    assert err.strip().splitlines()[-1] == (
        "** ERROR: 3dttest++: You can't use -Clustsim with nval_AAA+nval_BBB=13 < 14"
    )
    assert not Path("x.nii.gz").exists()


@pytest.mark.parametrize(
    ("extra", "code", "text"),
    [
        (["-setB", *_long("b", 3, "grpB").split(), "-paired"], 64, "Cannot do '-paired' with unequal set sizes: #A=16 #B=3"),
        (["-mask", "in/a01.nii.gz", "-mask", "in/a02.nii.gz"], 64, "Cannot use '-mask' twice!"),
        (["-bogus"], 64, "don't recognize option '-bogus'"),
        (["-zskip"], 64, "'-zskip' is not implemented"),
        (["-covariates", "in/nope.txt"], 66, "-covariates file in/nope.txt not found"),
        (["-Clustsim", "1", "-prefix", "/abs/x.nii.gz"], 64, "Cannot use -Clustsim when -prefix has an absolute path"),
    ],
)  # fmt: skip
def test_bad_options_one_line(workdir, capsys, extra, code, text):
    argv = ["-setA", *_long("a", N_A, "grpA").split(), "-prefix", "x.nii.gz", *extra]
    got, err = _cli_error(argv, capsys)
    assert got == code
    assert text in err and len(err.strip().splitlines()) == 1
    assert not Path("x.nii.gz").exists()


def test_missing_covariate_label_and_existing_output(workdir, capsys):
    Path("cov.txt").write_text("subj age\na01 30\n")
    argv = [
        "-setA",
        *_long("a", N_A, "grpA").split(),
        "-covariates",
        "cov.txt",
        "-prefix",
        "x.nii.gz",
    ]
    code, err = _cli_error(argv, capsys)
    assert code == 65 and "Cannot find label 'a02' in covariates file" in err
    assert _cli_error(argv[:-4] + ["-prefix", "x.nii.gz"], capsys)[0] == 0
    code, err = _cli_error(argv[:-4] + ["-prefix", "x.nii.gz"], capsys)
    assert code == 73 and "conflicts with existing file" in err


def test_dataset_labels_and_listing(capsys):
    assert tformats.dataset_label("in/a01.nii.gz") == "a01"
    assert tformats.dataset_label("d/stats.sub-01_REML+tlrc.HEAD[3]") == "stats.sub-01_REML"
    assert tformats.dataset_label("+odd.nii") == "+odd"
    assert afni_native(["--list"]) == 0
    assert "3dttest++" in capsys.readouterr().out
    assert os.environ.get("AFNI_TTEST_NUMCSIM") is None


def test_directory_gives_the_run_in_that_folder_without_changing_it(tmp_path, monkeypatch):
    """``directory=`` reads and writes as a run inside that folder would (the native pipeline
    runs 3dttest++ this way, without changing the process's working folder)."""

    def run(where: Path, directory: Path | None) -> files.TTestFiles:
        def one_set(group: str, n: int) -> files.DatasetSet:
            names = [f"{group}{s:02d}" for s in range(1, n + 1)]
            return files.DatasetSet([f"in/{x}.nii.gz" for x in names], names, f"grp{group}")

        return files.run_ttest(
            one_set("a", N_A), one_set("b", N_B), "cs_two.nii.gz", mask="in/mask.nii.gz",
            covariates="in/cov.txt", command=["3dttest++", "-prefix", "cs_two.nii.gz"],
            clustsim_options=files.ClustsimOptions(jobs=2, iterations=1000, seed=777),
            progress=False, directory=directory,
        )  # fmt: skip

    inside, beside, elsewhere = (tmp_path / n for n in ("inside", "beside", "elsewhere"))
    for folder in (inside, beside):
        shutil.copytree(DATA / "in", folder / "in")
    elsewhere.mkdir()
    monkeypatch.chdir(inside)
    mine = run(inside, None)
    monkeypatch.chdir(elsewhere)
    theirs = run(beside, beside)
    assert Path.cwd() == elsewhere and not any(elsewhere.iterdir())
    assert [p.name for p in theirs] == [Path(p).name for p in mine]
    assert all(Path(p).parent == beside for p in theirs)
    for ours in mine:
        if ours.name.endswith(".1D") or ours.name.endswith(".cmd"):  # tables name the mask
            assert (beside / ours.name).read_text() == (inside / ours.name).read_text()
    a = afni_io.read_dataset(inside / "cs_two.nii.gz")
    b = afni_io.read_dataset(beside / "cs_two.nii.gz")
    assert np.array_equal(a.data, b.data)
    assert "mask.nii.gz" in b.attributes["AFNI_CLUSTSIM_NN1_bisided"]
    assert " ./cs_two.nii.gz" in b.history  # the 3drefit fragment names the output as given

    with pytest.raises(errors.UsageError, match="at least 1000 iterations"):
        files.run_ttest(
            files.DatasetSet.short([f"in/a{s:02d}.nii.gz" for s in range(1, N_A + 1)]),
            None, "few.nii.gz", clustsim_options=files.ClustsimOptions(jobs=1, iterations=200),
            directory=beside,
        )  # fmt: skip
