"""``afni-native 3dClusterize``: 3dClusterize's options, report on stdout, AFNI's messages."""

from __future__ import annotations

import os
import shlex
import sys

from afni_group import afni_io
from afni_group.errors import EXIT_USAGE, AfniGroupError, UsageError
from afni_group.programs.cli.argv import c_atof, fatal
from afni_group.programs.clusterize import files as step
from afni_group.programs.clusterize.core import _TAIL_WORDS
from afni_group.programs.clusterize.options import OptionWords, Thresholds

_HELP = """\
afni-native 3dClusterize: threshold, cluster and report a statistic map (AFNI-compatible).
  3dClusterize -inset D -ithr L [-idat L] [-mask M] -bisided LL RR|p=P -NN 1|2|3
               [-clust_nvox K] [-pref_map P] [-pref_dat P] [-orient LPI] [-quiet] ...
Also: -1sided RIGHT_TAIL|LEFT_TAIL T|p=P, -2sided LL RR|p=P, -within_range A B, -clust_vol V,
      -nosum, -no_1Dformat, -abs_table_data, -binary, -outvol_if_no_clust, -out_mask M.
"""


def cli_main(argv: list[str]) -> int:
    """``afni-native 3dClusterize ...``: AFNI's options; the report goes to stdout."""
    if argv and argv[0] in ("-help", "-h"):
        print(_HELP, end="")
        return 0
    if len(argv) < 2:
        return fatal("Too few options. Try -help for details.")
    opts: dict = {
        "ithr": None,
        "idat": None,
        "mask": None,
        "sided": None,
        "words": None,
        "tail": "RIGHT_TAIL",
        "nn": None,
        "clust_nvox": None,
        "clust_vol": None,
        "pref_map": None,
        "pref_dat": None,
        "orient": os.environ.get("AFNI_ORIENT", "RAI"),
        "quiet": False,
        "nosum": False,
        "one_d_format": True,
        "abs_table_data": False,
        "binary": False,
        "outvol_if_no_clust": False,
        "out_mask": None,
    }
    inset = None
    overwrite = os.environ.get("AFNI_DECONFLICT", "").upper() == "OVERWRITE"
    flags = {
        "-quiet": ("quiet", True),
        "-nosum": ("nosum", True),
        "-1Dformat": ("one_d_format", True),
        "-no_1Dformat": ("one_d_format", False),
        "-abs_table_data": ("abs_table_data", True),
        "-noabs": ("abs_table_data", False),
        "-binary": ("binary", True),
        "-outvol_if_no_clust": ("outvol_if_no_clust", True),
    }
    single = {
        "-ithr": "ithr",
        "-idat": "idat",
        "-mask": "mask",
        "-NN": "nn",
        "-clust_nvox": "clust_nvox",
        "-clust_vol": "clust_vol",
        "-pref_map": "pref_map",
        "-pref_dat": "pref_dat",
        "-orient": "orient",
        "-out_mask": "out_mask",
    }
    pos = 0
    while pos < len(argv):
        opt = argv[pos]

        def need(count: int, opt: str = opt, pos: int = pos) -> list[str]:
            if pos + count >= len(argv):
                raise UsageError(f"Need argument(s) after '{opt}'")
            return argv[pos + 1 : pos + 1 + count]

        try:
            if opt == "-overwrite":
                overwrite, pos = True, pos + 1
            elif opt in flags:
                key, value = flags[opt]
                opts[key], pos = value, pos + 1
            elif opt == "-inset":
                inset, pos = need(1)[0], pos + 2
            elif opt in single:
                opts[single[opt]], pos = need(1)[0], pos + 2
            elif opt == "-1sided":
                tail_word, value = need(2)
                if tail_word.upper() not in _TAIL_WORDS:
                    return fatal(
                        "Illegal immediately following '-1sided': need 'RIGHT_TAIL' or 'LEFT_TAIL'"
                    )
                opts["sided"], opts["tail"], opts["words"] = "1sided", tail_word, [value]
                pos += 3
            elif opt in ("-2sided", "-bisided", "-within_range"):
                first = need(1)[0]
                opts["sided"] = opt[1:]
                opts["words"] = [first] if first.startswith("p=") else need(2)
                pos += 2 if first.startswith("p=") else 3
            elif opt in ("-mask_from_hdr", "-summarize"):
                return fatal(f"afni-native 3dClusterize does not support {opt}")
            else:
                print(f"** ERROR: Bad option '{opt}'", file=sys.stderr)
                return EXIT_USAGE
        except UsageError as err:
            return fatal(str(err))

    if inset is None:
        return fatal("Need an input dataset: -inset DSET")
    if opts["ithr"] is None:
        return fatal("Bad index for threshold volume: -1 (give -ithr)")
    if opts["nn"] is None:
        return fatal("Need to choose a neighborhood type: '-NN ?'")
    if opts["nn"] not in ("1", "2", "3"):
        return fatal(f"Neighborhood type must be 1, 2 or 3 (not '{opts['nn']}')")
    if opts["sided"] is None:
        return fatal(
            "Hey, you need to put in threshold type/value!For example, '-2sided ...', "
            "'-1sided ...', etc."
        )
    if opts["pref_dat"] is not None and opts["idat"] is None:
        print(
            "*+ WARNING: ... even though you specified an '-pref_dat ..', no cluster-masked "
            "output can be made.",
            file=sys.stderr,
        )
    command = "3dClusterize " + " ".join(shlex.quote(a) for a in argv)
    try:
        result = step.run_clusterize(
            **_values(inset, opts),
            overwrite=overwrite,
            report_zero=os.environ.get("AFNI_3dclust_report_zero", "").upper() == "YES",
            command_line=command,
        )
    except AfniGroupError as err:
        return fatal(str(err), exit_code=err.exit_code)
    sys.stdout.write(result.report_text)
    sys.stdout.flush()
    if result.n_clusters == 0:
        print("*+ WARNING: No clusters found!", file=sys.stderr)
    for written in (result.dat_path, result.map_path):
        if written is not None:
            print(f"++ Output dataset {written}", file=sys.stderr)
    return 0


def _brick(text: str | None) -> int | str | None:
    """``-ithr``/``-idat``: all digits is an index, anything else a sub-brick label."""
    return int(text) if text is not None and text.isdigit() else text


def _values(inset: str, opts: dict) -> dict:
    """:func:`run_clusterize`'s arguments from the option words (AFNI's number parsing)."""
    opts = dict(opts)
    path, selector = afni_io.split_selector(inset)
    bricks = None
    if selector is not None:
        bricks = afni_io.parse_selector(selector, afni_io.read_labels(path), source=path)
    sided, tail, words = opts.pop("sided"), opts.pop("tail"), opts.pop("words")
    if words[0].startswith("p="):
        thresholds = Thresholds(sided, pval=c_atof(words[0][2:]), tail=tail)
    else:
        # A second 2-/bi-sided argument written p=X is used as the statistic X (AFNI quirk).
        words = [w[2:] if w.startswith("p=") else w for w in words]
        thresholds = Thresholds(sided, tuple(c_atof(w) for w in words), tail=tail)
    typed = (tail, *words) if sided == "1sided" else tuple(words)
    size_word = opts["clust_nvox"] if opts["clust_nvox"] is not None else opts["clust_vol"]
    for key in ("clust_nvox", "clust_vol"):
        opts[key] = None if opts[key] is None else c_atof(opts[key])
    return dict(
        opts,
        inset=path,
        bricks=bricks,
        ithr=_brick(opts.pop("ithr")),
        idat=_brick(opts.pop("idat")),
        nn=int(opts.pop("nn")),
        thresholds=thresholds,
        words=OptionWords(typed, size_word),
    )
