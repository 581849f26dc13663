"""``afni-native 3dClustSim``: AFNI's argv, parsed into a call of :func:`clustsim.run_clustsim`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from afni_group import afni_io
from afni_group.errors import UsageError
from afni_group.logs import DETAIL
from afni_group.programs.cli.argv import is_number, messages_to_stderr
from afni_group.programs.clustsim import files
from afni_group.programs.clustsim.files import (
    DEFAULT_ITERATIONS,
    LOTS_ATHR,
    LOTS_PTHR,
    _validate_plist,
    filename_ok,
    quote_command_line,
)

LOG = logging.getLogger(files.__name__)

_USAGE = (
    "usage: afni-native 3dClustSim -mask M -acf a b c [-both|-niml] [-prefix P] [-iter N]\n"
    "       [-seed S] [-pthr p ...] [-athr a ...] [-nodec] [-quiet] [-cmd FILE]\n"
    "       [-OKsmallmask] [-LOTS] [--n-cpus N]\n"
    "Native re-implementation of AFNI 3dClustSim (-acf model, all NN and sidedness tables)."
)


def _values_after(argv: list[str], i: int) -> tuple[list[str], int]:
    vals = []
    while i < len(argv) and not (argv[i].startswith("-") and not is_number(argv[i])):
        vals.append(argv[i])
        i += 1
    return vals, i


def _mask_brick(spec: str) -> tuple[str, int]:
    """``-mask 'dset[sel]'``: the dataset and the sub-brick used (the first one selected)."""
    path, selector = afni_io.split_selector(spec)
    if selector is None:
        return path, 0
    chosen = afni_io.parse_selector(selector, afni_io.read_labels(path), source=path)
    if not chosen:
        raise UsageError(f"-mask '{spec}' selects no sub-brick")
    return path, chosen[0]


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 15))
    except AttributeError:
        return max(1, min(os.cpu_count() or 1, 15))


def cli_main(argv: list[str]) -> int:
    """``afni-native 3dClustSim`` with AFNI's options (the subset the pipeline uses).

    AFNI's INFO and WARNING lines go to stderr (``-quiet``: warnings only) through a handler
    on the ``afni_group.programs.clustsim.files`` logger for the duration of the call.
    """
    # AFNI prints its kernel internals and scripting fragment (DETAIL) as INFO lines too
    with messages_to_stderr(files.__name__, quiet="-quiet" in argv, level=DETAIL):
        return _cli(argv)


def _cli(argv: list[str]) -> int:
    argv = [a for a in argv if a != "-overwrite"]
    if not argv or argv[0] in ("-help", "-h", "--help"):
        print(_USAGE)
        return 0
    opts: dict = {"both": False, "niml": False, "nodec": False, "quiet": False, "okmask": False}
    mask = acf = prefix = None
    iterations, seed, pthr, athr = DEFAULT_ITERATIONS, None, None, None
    cmd_name, n_jobs, lots = "3dClustSim.cmd", None, False
    # the table headers echo AFNI's own arguments only
    echoed = [
        a
        for k, a in enumerate(argv)
        if a not in ("--n-cpus", "-n_cpus")
        and (k == 0 or argv[k - 1] not in ("--n-cpus", "-n_cpus"))
    ]
    i = 0
    while i < len(argv):
        arg = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if arg == "-mask":
            if mask is not None:
                raise UsageError("Can't use -mask twice!")
            if nxt is None:
                raise UsageError("need argument after -mask")
            mask, i = nxt, i + 2
        elif arg == "-acf":
            vals = argv[i + 1 : i + 4]
            if len(vals) < 3:
                raise UsageError("need 3 arguments after -acf")
            acf, i = vals, i + 4
        elif arg in ("-both", "-niml"):
            if pthr is not None:
                raise UsageError(
                    "-both or -niml cannot follow -pthr, as they override it "
                    "(put -pthr after -both or -niml)"
                )
            opts["both" if arg == "-both" else "niml"] = True
            i += 1
        elif arg == "-prefix":
            if nxt is None or not filename_ok(nxt):
                raise UsageError(f"bad -prefix option '{nxt}'")
            prefix, i = nxt, i + 2
        elif arg.startswith("-niter") or arg == "-iter":
            try:
                iterations = int(float(nxt))
            except (TypeError, ValueError) as err:
                raise UsageError(f"need a number after {arg}") from err
            i += 2
        elif arg == "-seed":
            try:
                seed = int(nxt, 10) & 0xFFFFFFFF
            except (TypeError, ValueError) as err:
                raise UsageError("need an integer after -seed") from err
            i += 2
        elif arg in ("-pthr", "-pval", "-athr", "-aval"):
            vals, i = _values_after(argv, i + 1)
            is_p = arg in ("-pthr", "-pval")
            if vals == ["LOTS"]:
                chosen = list(LOTS_PTHR if is_p else LOTS_ATHR)
            else:
                chosen = list(_validate_plist(vals, arg))
            if is_p:
                pthr = chosen
            else:
                athr = chosen
        elif arg == "-LOTS":
            lots, i = True, i + 1
        elif arg == "-nodec":
            opts["nodec"], i = True, i + 1
        elif arg == "-quiet":
            opts["quiet"], i = True, i + 1
        elif arg == "-OKsmallmask":
            opts["okmask"], i = True, i + 1
        elif arg == "-cmd":
            if nxt is None or not filename_ok(Path(nxt).name):
                raise UsageError("bad -cmd option!")
            cmd_name, i = nxt, i + 2
        elif arg == "-NN":
            LOG.warning(
                "*+ WARNING: -NN option is no longer supported! All NN cases are computed now"
            )
            i += 2 if nxt is not None and nxt[:1].isdigit() else 1
        elif arg in ("--n-cpus", "-n_cpus"):
            try:
                n_jobs = max(1, int(nxt))
            except (TypeError, ValueError) as err:
                raise UsageError(f"need an integer after {arg}") from err
            i += 2
        else:
            raise UsageError(f"3dClustSim -- unknown or unsupported option '{arg}'")
    if mask is None:
        raise UsageError("afni-native 3dClustSim needs -mask (the grid comes from the mask)")
    if acf is None:
        raise UsageError("afni-native 3dClustSim needs -acf a b c")
    try:
        acf_values = tuple(float(v) for v in acf)
    except ValueError as err:
        raise UsageError(f"-acf: values {acf} are not numbers") from err
    if lots:
        pthr = list(LOTS_PTHR) if pthr is None else pthr
        athr = list(LOTS_ATHR) if athr is None else athr
    if prefix is None:
        raise UsageError("afni-native 3dClustSim needs -prefix (tables are written to files)")
    if n_jobs is None:
        n_jobs = _default_threads()
    mask_path, mask_brick = _mask_brick(mask)
    files.run_clustsim(
        mask_path,
        acf_values,
        prefix,
        mask_brick=mask_brick,
        iterations=iterations,
        seed=seed,
        both=opts["both"],
        niml=opts["both"] or opts["niml"],
        write_1d=not opts["niml"] or opts["both"],
        pthr=pthr,
        athr=athr,
        n_jobs=n_jobs,
        progress=not opts["quiet"],
        command_line=quote_command_line(echoed),
        nodec=opts["nodec"],
        cmd_file=cmd_name,
        prefix_text=prefix,
        ok_small_mask=opts["okmask"],
    )
    return 0
