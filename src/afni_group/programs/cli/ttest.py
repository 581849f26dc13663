"""``afni-native 3dttest++``: AFNI's argv, parsed into a call of :func:`ttest.files.run_ttest`.

Options are matched case-insensitively as AFNI does; ``-DNAME=VALUE`` words set environment
variables for the run (``AFNI_TTEST_NUMCSIM``). An option AFNI has but this drop-in does not
implement is refused with one line (exit 64) rather than ignored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from afni_group.afni_io import naming
from afni_group.errors import AfniGroupError, UsageError
from afni_group.programs.cli.argv import messages_to_stderr
from afni_group.programs.ttest import clustsim, files
from afni_group.programs.ttest.files import ClustsimOptions, DatasetSet

_HELP = """\
afni-native 3dttest++: numpy implementation of AFNI's 3dttest++ (and its -Clustsim).

  -setA NAME lab1 dset1 lab2 dset2 ...   (LONG form)   or   -setA dset1 dset2 ...  (SHORT form)
  [-setB ... (same forms)]  [-labelA NAME] [-labelB NAME]  [-paired | -unpooled | -pooled]
  [-covariates FILE [-center NONE|DIFF|SAME] [-cmeth MEAN|MEDIAN]]  [-mask M]  [-toz]
  [-prefix P]  [-Clustsim [N]] [-seed S1 [S2]] [-prefix_clustsim PC]  [-overwrite]
  [-DAFNI_TTEST_NUMCSIM=n]
-Clustsim: N jobs (default the CPU count) of ceil(n/N) randomisations each (n = 10080 unless
AFNI_TTEST_NUMCSIM >= 1000), clustered into PC.CSimA.NN{1,2,3}_{1,2,bi}sided.1D tables that
are also attached to the output. Needs at least 14 datasets.
"""

#: AFNI options this drop-in does not implement (refused by name rather than ignored)
_UNSUPPORTED = (
    "-zskip", "-rankize", "-singletonA", "-brickwise", "-setweightA", "-setweightB", "-exblur",
    "-ETAC", "-ETAC_opt", "-ETAC_blur", "-bootstrap", "-dofsub", "-randomsign", "-RANDOMSIGN",
    "-permute", "-nopermute", "-resid", "-no1sam", "-nomeans", "-notests", "-BminusA",
    "-AminusB", "-tempdir", "-CS_arg", "-nocov", "-debug",
)  # fmt: skip


@contextlib.contextmanager
def _environment(pairs: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in pairs}
    os.environ.update(pairs)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _default_jobs() -> int:
    """AFNI's default -Clustsim job count: the CPUs, lowered to OMP_NUM_THREADS (max 99)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and 0 < int(omp) < cpus:
        cpus = int(omp)
    return max(1, min(cpus, 99))


def _is_dataset(word: str) -> bool:
    """Whether a -setX argument opens as a dataset (SHORT form) rather than a set name."""
    base = word.split("[", 1)[0]
    if any(c in base for c in "*?"):
        return True
    try:
        naming.resolve(base)
    except AfniGroupError:
        return False
    return True


def _set(words: Sequence[str], option: str) -> DatasetSet:
    if not words:
        raise UsageError(f"{option} needs datasets (SHORT form) or NAME lab1 dset1 ... (LONG)")
    if _is_dataset(words[0]):
        return DatasetSet.short(words)
    if len(words) < 3:
        raise UsageError(f"{option} {words[0]}: no such dataset, and too few words for the "
                         "LONG form NAME lab1 dset1 lab2 dset2 ...")  # fmt: skip
    return DatasetSet.long(words[0], words[1:])


def _int(word: str | None, option: str) -> int:
    try:
        return int(str(word), 10)
    except ValueError:
        raise UsageError(f"need an integer after {option}, not '{word}'") from None


def cli_main(argv: list[str]) -> int:
    """``afni-native 3dttest++`` with AFNI's options for one-/two-sample, paired, covariate
    tests and -Clustsim; AFNI's INFO/WARNING lines go to stderr."""
    env = {a[2:].split("=", 1)[0]: a[2:].split("=", 1)[1] for a in argv
           if a.startswith("-D") and "=" in a}  # fmt: skip
    args = [a for a in argv if not (a.startswith("-D") and "=" in a)]
    with _environment(env), messages_to_stderr(files.__name__):
        return _cli(args, argv)


def _cli(argv: list[str], original: list[str]) -> int:
    if not argv or argv[0].lower() in ("-help", "-h", "--help"):
        print(_HELP)
        return 0
    sets: dict[str, DatasetSet] = {}
    labels: dict[str, str] = {}
    opts: dict = {"prefix": "TTnew", "kind": None, "toz": False, "mask": None, "cov": None,
                  "center": "DIFF", "cmeth": "MEAN", "overwrite": False}  # fmt: skip
    cs: ClustsimOptions | None = None
    seed: tuple[int, int | None] | None = None
    pc = None
    i = 0
    while i < len(argv):
        arg, low = argv[i], argv[i].lower()
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if low in ("-seta", "-set1", "-setb", "-set2"):
            key = "A" if low in ("-seta", "-set2") else "B"  # 3dttest's -set2 is setA
            if key in sets:
                raise UsageError(f"You can't use {arg} twice!")
            j = i + 1
            while j < len(argv) and not argv[j].startswith("-"):
                j += 1
            sets[key] = _set(argv[i + 1 : j], arg)
            i = j
        elif low in ("-labela", "-labelb"):
            if nxt is None:
                raise UsageError(f"need a name after {arg}")
            labels[low[-1].upper()] = nxt
            i += 2
        elif low in ("-prefix", "-prefix_clustsim", "-covariates", "-center", "-cmeth"):
            if nxt is None:
                raise UsageError(f"need an argument after {arg}")
            if low == "-prefix":
                opts["prefix"] = nxt
            elif low == "-prefix_clustsim":
                pc = nxt
            elif low == "-covariates":
                opts["cov"] = nxt
            elif low == "-center":
                first = nxt[:1].upper()
                if first not in ("N", "D", "S"):
                    raise UsageError(f"-center {nxt}: use NONE, DIFF or SAME")
                opts["center"] = {"N": "NONE", "D": "DIFF", "S": "SAME"}[first]
            else:
                if nxt.upper() not in ("MEAN", "MEDIAN"):
                    raise UsageError(f"-cmeth {nxt}: use MEAN or MEDIAN")
                opts["cmeth"] = nxt.upper()
            i += 2
        elif low == "-mask":
            if opts["mask"] is not None:
                raise UsageError("Cannot use '-mask' twice!")
            if nxt is None:
                raise UsageError("need a dataset after -mask")
            opts["mask"] = nxt
            i += 2
        elif low in ("-paired", "-unpooled", "-pooled"):
            opts["kind"] = low[1:]
            i += 1
        elif low == "-toz":
            opts["toz"], i = True, i + 1
        elif low == "-overwrite":
            opts["overwrite"], i = True, i + 1
        elif low == "-clustsim":
            jobs = _default_jobs()
            i += 1
            if nxt is not None and nxt.isdigit():
                jobs, i = max(1, min(int(nxt), 99)), i + 1
            cs = ClustsimOptions(jobs=jobs)
        elif low in ("-seed", "-ranseed"):
            s1 = _int(nxt, arg)
            i += 2
            s2 = None
            if i < len(argv) and argv[i].isdigit():
                s2, i = int(argv[i]), i + 1
            seed = (s1, s2)
        elif arg in _UNSUPPORTED or low in {u.lower() for u in _UNSUPPORTED}:
            raise UsageError(f"3dttest++ option '{arg}' is not implemented in afni-native")
        else:
            raise UsageError(f"3dttest++: don't recognize option '{arg}' (argv[{i + 1}])")
    if "A" not in sets:
        raise UsageError("3dttest++: no -setA option? (it is required)")
    if cs is not None:
        cs.iterations = clustsim.nominal_iterations(os.environ.get("AFNI_TTEST_NUMCSIM"))
        cs.prefix = pc
        if seed is not None:
            cs.seed, cs.seed2 = seed
    files.run_ttest(
        sets["A"], sets.get("B"), opts["prefix"], kind=opts["kind"],
        labels=(labels.get("A"), labels.get("B")), mask=opts["mask"], covariates=opts["cov"],
        center=opts["center"], method=opts["cmeth"], toz=opts["toz"], clustsim_options=cs,
        command=original, overwrite=opts["overwrite"],
    )  # fmt: skip
    return 0
