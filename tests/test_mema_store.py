"""Bounded-memory 3dMEMA (issue 24): inputs read once into an on-disk voxel-major store, fitted
block by block, give the same bytes as the in-memory path; ``--resume`` reuses the store."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest

from afni_group import afni_io, cli, errors
from afni_group.errors import UsageError
from afni_group.programs.cli.mema import cli_main
from afni_group.programs.mema import inputs as mema_inputs
from afni_group.programs.mema import source as mema_source
from afni_group.programs.mema import store as mema_store
from afni_group.programs.mema.budget import GIB, MIB, parse_mem_limit, plan_memory
from afni_group.programs.mema.files import MemaSet, run_mema

SHAPE = (9, 8, 7)
N_SUBJECTS = 9
LABELS = ["A#0_Coef", "A#0_Tstat", "B#0_Coef", "B#0_Tstat"]
STATS_SPECS = ("#0_Coef", "#0_Tstat")


def _write_subjects(folder: Path, n: int = N_SUBJECTS, fmt: str = "nii.gz") -> list[str]:
    """Stats datasets with two conditions' beta and t; zero outside a 'brain', some -0.0,
    some zero betas inside (missing subjects)."""
    rng = np.random.default_rng(5)
    i, j, k = np.indices(SHAPE)
    brain = ((i - 4) / 4.2) ** 2 + ((j - 3.5) / 3.8) ** 2 + ((k - 3) / 3.5) ** 2 <= 1
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    paths = []
    for s in range(n):
        data = np.zeros(SHAPE + (4,), np.float32)
        for c, shift in ((0, 0.3), (2, 0.0)):
            beta = rng.normal(shift, 1.0, SHAPE)
            beta[rng.random(SHAPE) < 0.08] = 0.0
            data[..., c] = np.where(brain, beta, 0.0)
            data[..., c + 1] = np.where(brain, beta / rng.uniform(0.2, 0.7, SHAPE), 0.0)
        data[0, 0, s % SHAPE[2], 0] = -0.0  # a signed zero outside the brain
        dset = afni_io.AfniDataset(data, affine, LABELS, space="MNI", view="tlrc")
        name = f"stats.sub-{s:02d}" + (".nii.gz" if fmt == "nii.gz" else "+tlrc")
        written = afni_io.write_dataset(dset, folder / name)
        if fmt == "BRIK.gz":
            brik = Path(str(written).replace(".HEAD", ".BRIK"))
            brik.with_suffix(".BRIK.gz").write_bytes(gzip.compress(brik.read_bytes(), 1))
            brik.unlink()
        paths.append(str(written))
    return paths


def _sets(paths: list[str], n_sets: int = 2) -> list[MemaSet]:
    subjects = [f"sub-{s:02d}" for s in range(len(paths))]
    return [
        MemaSet(
            label,
            subjects,
            [f"{p}[{label}{STATS_SPECS[0]}]" for p in paths],
            [f"{p}[{label}{STATS_SPECS[1]}]" for p in paths],
        )
        for label in "AB"[:n_sets]
    ]


def _same_bytes(a: Path, b: Path) -> None:
    x, y = afni_io.read_dataset(a), afni_io.read_dataset(b)
    assert x.labels == y.labels and x.stat_params == y.stat_params
    assert x.data.dtype == y.data.dtype == np.float32
    np.testing.assert_array_equal(x.data.view(np.uint32), y.data.view(np.uint32))


@pytest.fixture(scope="module")
def subjects(tmp_path_factory) -> list[str]:
    return _write_subjects(tmp_path_factory.mktemp("mema_store"))


CASES = {
    "groups_missing": dict(missing_data=0),
    "groups_plain_jobs": dict(n_jobs=2),
    "conditions_mask": dict(design="conditions", mask="MASK", missing_data=0),
    "one_covariate_nohk": dict(n_sets=1, covariates=True, hktest=False, n_nonzero=4),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("chunk", "batch"), [(1, 4), (5, 9)])
def test_store_gives_the_in_memory_bytes(subjects, tmp_path, caplog, case, chunk, batch):
    kwargs = dict(CASES[case])
    sets = _sets(subjects, kwargs.pop("n_sets", 2))
    if kwargs.pop("covariates", False):
        kwargs["covariates"] = {"age": {s: 20.0 + 3 * i for i, s in enumerate(sets[0].subjects)}}
    if kwargs.get("mask") == "MASK":
        mask = np.zeros(SHAPE, np.float32)
        mask[2:7, 1:7, 1:6] = 1
        kwargs["mask"] = afni_io.write_dataset(
            afni_io.AfniDataset(mask, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "mask.nii.gz"
        )
    memory = run_mema(sets, tmp_path / "memory.nii.gz", progress=False, use_store=False, **kwargs)
    with caplog.at_level(logging.INFO, logger="afni_group"):
        stored = run_mema(
            sets,
            tmp_path / "store.nii.gz",
            progress=False,
            use_store=True,
            chunk_size=chunk,  # many blocks, down to one voxel
            batch_columns=batch,  # one or two subject files per batch
            **kwargs,
        )
    _same_bytes(memory, stored)
    assert "input store" in caplog.text and "on disk" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_tutorial_afni_inputs_through_the_store(tmp_path):
    from test_mema import _sets as tutorial_sets

    memory = run_mema(tutorial_sets(), tmp_path / "m.nii.gz", missing_data=0, progress=False)
    stored = run_mema(
        tutorial_sets(),
        tmp_path / "s.nii.gz",
        missing_data=0,
        progress=False,
        use_store=True,
        chunk_size=3,
        batch_columns=8,
    )
    _same_bytes(memory, stored)


def test_store_leaves_out_voxels_zero_in_every_subject(tmp_path):
    store = mema_store.VoxelStore.create(
        tmp_path / "st", "key", mema_inputs.Geometry(SHAPE, np.eye(4), "MNI", "tlrc"), 504, 3
    )
    data = np.zeros((3, 504), np.float32)
    data[1, 10], data[2, 400], data[0, 503] = 1.5, -0.0, 7.0
    store.add_batch([2, 0, 1], data, files_done=1)
    assert store.disk_bytes() == 3 * 3 * 4  # three voxels held, three bricks each
    block = store.fetch(np.arange(5, 504))
    assert block.shape == (499, 3)
    assert block[5, 0] == 1.5 and np.signbit(block[395, 1]) and block[498, 2] == 7.0
    assert np.count_nonzero(block) == 2
    np.testing.assert_array_equal(store.held(), [10, 400, 503])
    assert store.fetch(np.array([400, 503])).tolist() == [[0.0, -0.0, 0.0], [0.0, 0.0, 7.0]]
    store.remove()
    assert not (tmp_path / "st").exists()


def test_gzipped_briks_are_decompressed_once_each(tmp_path, monkeypatch):
    from afni_group.afni_io import reader

    paths = _write_subjects(tmp_path, n=4, fmt="BRIK.gz")
    calls: list[str] = []
    real = reader._read_compressed
    monkeypatch.setattr(reader, "_read_compressed", lambda p: calls.append(p.name) or real(p))
    run_mema(_sets(paths), tmp_path / "s.nii.gz", progress=False, use_store=True, batch_columns=4)
    assert sorted(calls) == sorted(f"stats.sub-{s:02d}+tlrc.BRIK.gz" for s in range(4))


_OPEN_DATASET = mema_inputs._open_dataset


def _interrupt_after(monkeypatch, n_files: int) -> list[str]:
    """Make the (n_files + 1)-th dataset read fail; returns the list of datasets opened."""
    opened: list[str] = []
    real = _OPEN_DATASET

    def open_dataset(path_text, *args):
        if len(opened) == n_files:
            raise KeyboardInterrupt
        opened.append(path_text)
        return real(path_text, *args)

    monkeypatch.setattr(mema_inputs, "_open_dataset", open_dataset)
    return opened


def test_resume_reads_only_the_datasets_not_yet_stored(subjects, tmp_path, monkeypatch, caplog):
    sets, work = _sets(subjects), tmp_path / "work" / "3dMEMA-x"
    reference = run_mema(sets, tmp_path / "m.nii.gz", missing_data=0, progress=False)
    common = dict(missing_data=0, progress=False, use_store=True, batch_columns=4, work_dir=work)
    _interrupt_after(monkeypatch, 3)
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        run_mema(sets, tmp_path / "s.nii.gz", **common)
    assert "--resume reuses it" in caplog.text
    # one file per batch: the first two are stored, the third was still in the buffer
    assert len(list(work.glob("batch-*.bits"))) == 2

    opened = _interrupt_after(monkeypatch, 99)
    out = run_mema(sets, tmp_path / "s.nii.gz", resume=True, **common)
    assert len(opened) == N_SUBJECTS - 2
    _same_bytes(reference, out)
    assert not work.exists(), "the store is removed once the step is done"

    # without --resume a store left behind is rebuilt from scratch
    _interrupt_after(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        run_mema(sets, tmp_path / "t.nii.gz", **common)
    opened = _interrupt_after(monkeypatch, 99)
    run_mema(sets, tmp_path / "t.nii.gz", **common)
    assert len(opened) == N_SUBJECTS

    # a store left behind goes also when the inputs now fit in memory
    _interrupt_after(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        run_mema(sets, tmp_path / "u.nii.gz", **common)
    _interrupt_after(monkeypatch, 99)
    run_mema(sets, tmp_path / "u.nii.gz", **{**common, "use_store": False})
    assert not work.exists()


def _force_store(monkeypatch) -> None:
    """Every size goes through the store (the data here are far below any --mem-limit)."""

    def plan(*args, **kwargs):
        return plan_memory(*args, **{**kwargs, "force_store": True})

    monkeypatch.setattr(mema_source, "plan_memory", plan)


def test_pipeline_keeps_the_store_for_resume(tiny_bids, tmp_path, monkeypatch, capsys):
    real_ingest = mema_source.ingest
    _force_store(monkeypatch)

    def ingest_then_stop(store, *args):
        real_ingest(store, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(mema_source, "ingest", ingest_then_stop)
    out = tmp_path / "out"
    argv = [str(tiny_bids), str(out), "group", "--engine", "native", "--clustsim-iter", "20",
            "--seed", "1", "--n-cpus", "1", "--no-report", "--mem-limit", "512MB"]  # fmt: skip
    assert cli.main(argv) == 130
    stores = list((out / ".work").glob("3dMEMA-*/manifest.json"))
    assert len(stores) == 1  # the first analysis's, complete; its 3dMEMA step is not done
    monkeypatch.setattr(mema_source, "ingest", real_ingest)
    capsys.readouterr()
    assert cli.main([*argv, "--resume"]) == 0
    assert "reusing the input store" in capsys.readouterr().err
    assert not list((out / ".work").iterdir()), "the stores are removed once the steps are done"
    assert (out / "params.json").is_file()


def test_mem_limit_sizes_and_errors(tiny_bids, tmp_path, capsys):
    assert parse_mem_limit("2GB") == 2 * GIB == parse_mem_limit("2g")
    assert parse_mem_limit("1.5GiB") == int(1.5 * GIB)
    assert parse_mem_limit("800MB") == 800 * MIB
    for bad in ("2", "2 XB", "100MB", "lots"):
        with pytest.raises(UsageError, match="-mem_limit"):
            parse_mem_limit(bad, "-mem_limit")
    with pytest.raises(UsageError, match="-mem_limit"):
        cli_main(["-prefix", str(tmp_path / "x"), "-mem_limit", "3", "-set", "A", "s", "b", "t"])
    with pytest.raises(SystemExit) as exit_:
        cli.main([str(tiny_bids), str(tmp_path / "o"), "group", "--mem-limit", "64MB"])
    assert exit_.value.code == errors.EXIT_USAGE
    assert "--mem-limit" in capsys.readouterr().err


def test_memory_plan_is_flat_in_the_number_of_subjects():
    n_vox = 91 * 109 * 91
    small = plan_memory(2 * GIB, n_vox, n_vox, 2 * 40, 80, 9)
    assert small.in_memory and small.batch_columns == 80
    chunks = []
    for n in (400, 1600, 10000):
        plan = plan_memory(2 * GIB, n_vox, 230_000, 4 * n, 2 * n, 9, n_jobs=2, min_columns=4)
        assert not plan.in_memory
        assert plan.batch_columns * 230_000 * 4 <= GIB  # read buffer: half the budget
        assert plan.chunk * 2 * (136 * 2 * n + 4 * 4 * n) <= 2 * GIB
        chunks.append(plan.chunk * n)
    assert max(chunks) / min(chunks) < 1.1  # voxel-rows per block: the same for every N


def test_cli_store_is_temporary_beside_the_output(subjects, tmp_path, monkeypatch):
    _force_store(monkeypatch)
    argv = ["-prefix", str(tmp_path / "out.nii.gz"), "-quiet", "-mem_limit", "1GB", "-set", "A"]
    for p, s in zip(subjects[:5], _sets(subjects[:5])[0].beta_specs, strict=True):
        argv += [Path(p).name.split(".")[1], s, s.replace("Coef", "Tstat")]
    assert cli_main(argv) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["out.nii.gz"]


@pytest.mark.parametrize("n_jobs", [1, 3])
def test_reading_ahead_reports_the_first_bad_file_in_order(tmp_path, n_jobs):
    rng = np.random.default_rng(0)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])

    def dataset(name, shape, nan=False):
        data = rng.normal(size=shape + (2,)).astype(np.float32)
        if nan:
            data[1, 1, 1, 0] = np.nan
        dset = afni_io.AfniDataset(data, affine, ["b", "t"])
        return str(afni_io.write_dataset(dset, tmp_path / name))

    good = [dataset(f"g{i}.nii", (4, 4, 3)) for i in range(4)]
    small, bad = dataset("small.nii", (4, 4, 2)), dataset("nan.nii", (4, 4, 3), nan=True)

    def run(files):
        subjects = [f"s{i}" for i in range(len(files))]
        sets = [MemaSet("A", subjects, [f"{f}[b]" for f in files], [f"{f}[t]" for f in files])]
        run_mema(sets, tmp_path / "o.nii.gz", progress=False, n_jobs=n_jobs, overwrite=True)

    with pytest.raises(errors.InputDataError, match="Dimension mismatch: subject s2 beta"):
        run([*good[:2], small, bad, good[2]])
    with pytest.raises(errors.InputDataError, match="subject s2 beta .* 1 NaN/Inf"):
        run([*good[:2], bad, small, good[2]])
    run(good)  # and a clean study still runs
