"""``--write-sbatch JOB.sh``: an sbatch script that runs this command inside the container.

The script binds BIDS_DIR read-only at ``/data``, OUTPUT_DIR at ``/out`` and the work folder at
``/work``, runs ``apptainer exec --cleanenv IMAGE afni-group /data /out group ...`` with every
analysis option the user gave (paths rewritten to their place in the container), and sets
``OMP_NUM_THREADS`` and ``--n-cpus`` from ``SLURM_CPUS_PER_TASK``. It writes the script and
submits nothing.

Before writing, the caller (``cli``) runs discovery, planning and the pre-flight checks of a dry
run, so bad data is refused now rather than after the queue wait. The script:

* writes Slurm's log ``afni-group-JOBID.out`` into the folder ``sbatch`` is run from (Slurm
  opens it before the script starts, so it must be a folder that exists), appending on requeue;
* resumes (``--resume``) when Slurm restarts it (``SLURM_RESTART_COUNT`` > 0: requeue,
  preemption, node failure);
* hands the host paths of the binds to the container (``AFNI_GROUP_HOST_BINDS``) for provenance;
* expands ``$VAR`` in ``--work-dir`` on the compute node (e.g. ``'$TMPDIR/ag'``).

With ``--fan-out`` the script is run with ``bash JOB.sh``: it submits itself as an array job,
one task per analysis (``JOB.sh task``: ``afni-group ... --only-analysis NAME``), and as a final
job that waits for the whole array (``afterany``; ``JOB.sh final ARRAYID``:
``afni-group ... --collect``), which checks that every task finished and writes the report
(:mod:`afni_group.fanout`). ``bash JOB.sh --resume`` submits both again with ``--resume``.
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from afni_group import __version__, atomic
from afni_group.errors import OutputError, UsageError
from afni_group.options import CONTAINER_IMAGE, INTERNAL, LAUNCH_ONLY, build_parser
from afni_group.provenance import HOST_BINDS_VARIABLE

LOG = logging.getLogger(__name__)

# Handled by the script itself (positionals, and --n-cpus which follows Slurm's allocation).
# --work-dir is always passed as /work, the bind of the host work folder; --overwrite and
# --resume are chosen per attempt (a restarted job resumes).
_SPECIAL = frozenset(
    {
        "bids_dir",
        "output_dir",
        "analysis_level",
        "n_cpus",
        "work_dir",
        "help",
        "version",
        "overwrite",
        "resume",
        *INTERNAL,  # the --fan-out script adds them per task
    }
)

# Where the fixed folders live in the container (the BIDS-Apps habit of /data and /out).
DATA, OUT, WORK = "/data", "/out", "/work"

#: Slurm's job name and its log (relative: in the folder sbatch is run from, which exists).
JOB_NAME = "afni-group"
LOG_PATTERN = "afni-group-%j.out"
#: --fan-out: the array tasks' logs (%A the array job, %a the task) and the final job's name.
ARRAY_LOG_PATTERN = "afni-group-%A_%a.out"
FINAL_JOB_NAME = "afni-group-report"


# Slurm's own grammar (sbatch 22.05, checked with sbatch --test-only):
# --mem: an integer, optional unit K/M/G/T (default M), optional B; no spaces or decimals.
_MEM = re.compile(r"(\d+)(?:([KMGT])B?)?", re.IGNORECASE)
# --time: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S; or no limit: 0, -1, INFINITE, UNLIMITED.
_TIME = re.compile(r"(?:(\d+)-(\d+)(?::(\d+))?(?::(\d+))?|(\d+)(?::(\d+))?(?::(\d+))?)")
_NO_LIMIT = ("0", "-1", "infinite", "unlimited")
# --mail-user: user names or addresses, comma-separated (Slurm hands them to its mail program);
# nothing an #SBATCH line could misread (no spaces, quotes, '#', newlines).
_MAIL = re.compile(r"[\w.%+-]+(?:@[\w-]+(?:\.[\w-]+)*)?(?:,[\w.%+-]+(?:@[\w-]+(?:\.[\w-]+)*)?)*")
# $VAR or ${VAR} in --work-dir, expanded on the compute node
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def parse_walltime(text: str) -> int | None:
    """Slurm ``--time`` text → seconds; None for no limit.

    Parameters
    ----------
    text
        ``minutes``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M`` or ``D-H:M:S``; or ``0``, ``-1``,
        ``INFINITE``, ``UNLIMITED`` (no limit), as sbatch accepts them.

    Raises
    ------
    ValueError
        When sbatch would refuse the text.
    """
    if text.lower() in _NO_LIMIT:
        return None
    match = _TIME.fullmatch(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a Slurm time (minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S or UNLIMITED)"
        )
    d, dh, dm, ds, a, b, c = (int(g) if g else 0 for g in match.groups())
    if match.group(1) is not None:  # D-H[:M[:S]]
        return d * 86400 + dh * 3600 + dm * 60 + ds
    if match.group(7) is not None:  # H:M:S
        return a * 3600 + b * 60 + c
    if match.group(6) is not None:  # M:S
        return a * 60 + b
    return a * 60  # minutes


def parse_mem_gb(text: str) -> float:
    """Slurm ``--mem`` text (``16G``, ``16000M``, ``16000`` = MB, ``16GB``) → GB.

    Raises
    ------
    ValueError
        When sbatch would refuse the text (decimals, spaces, other units).
    """
    match = _MEM.fullmatch(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a Slurm memory size (a whole number with an optional unit "
            "K, M, G or T, e.g. 16G or 16000M; no decimals or spaces)"
        )
    unit = (match.group(2) or "M").upper()
    return int(match.group(1)) * {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}[unit]


def check_launch_options(args: argparse.Namespace, n_cpus: int | None = None) -> None:
    """Refuse launch options that would make a broken job script (one clear line each).

    ``n_cpus`` is the ``--n-cpus`` the user gave (None: it follows Slurm's allocation).
    """
    if not args.image:
        raise UsageError(
            "--write-sbatch needs --image IMAGE.sif, the Apptainer image to run (build it once "
            f"with: apptainer build afni-group.sif docker://{CONTAINER_IMAGE})"
        )
    try:
        parse_mem_gb(args.mem)
    except ValueError as err:
        raise UsageError(f"--mem: {err}") from None
    try:
        parse_walltime(args.time)
    except ValueError as err:
        raise UsageError(f"--time: {err}") from None
    # #SBATCH lines are read by sbatch, not by a shell: nothing can be quoted there
    if args.mail_user and not _MAIL.fullmatch(args.mail_user):
        raise UsageError(
            f"--mail-user {args.mail_user!r} is not a user name or e-mail address (or a "
            "comma-separated list of them)"
        )
    if n_cpus is not None and n_cpus > args.cpus:
        raise UsageError(
            f"--n-cpus {n_cpus} is more than the {args.cpus} CPUs the job asks Slurm "
            f"for (--cpus {args.cpus}): raise --cpus or leave --n-cpus out (it then follows "
            "the allocation)"
        )


def has_variables(path: Path | str | None) -> bool:
    """True when a path holds ``$VAR`` to be expanded on the compute node."""
    return path is not None and _VARIABLE.search(str(path)) is not None


def shell_word(text: str) -> str:
    """``text`` as one bash word with ``$VAR``/``${VAR}`` expanded (and nothing else).

    An unset variable stops the job with a message naming it.
    """
    parts: list[str] = []
    pos = 0
    for match in _VARIABLE.finditer(text):
        if match.start() > pos:
            parts.append(shlex.quote(text[pos : match.start()]))
        name = match.group(1) or match.group(2)
        parts.append(f'"${{{name}:?is not set on this node (needed by --work-dir)}}"')
        pos = match.end()
    if pos < len(text):
        parts.append(shlex.quote(text[pos:]))
    return "".join(parts)


def _host_path(path: Path | str) -> Path:
    """Absolute host path (the job may start in another folder), symlinks resolved."""
    return Path(path).expanduser().resolve()


def _check_bindable(path: Path, option: str) -> None:
    # Apptainer splits -B specs on ',' and ':'; such a path cannot be bound.
    if any(c in str(path) for c in ",:\n"):
        raise UsageError(
            f"{option} {path}: a path containing ':' or ',' cannot be bound into the container; "
            "rename it or use a symlink without those characters"
        )


@dataclass
class Mounts:
    """Host folders bound into the container and how host paths map to container paths."""

    bids_dir: Path
    output_dir: Path
    work_dir: Path | None  # None: only known on the compute node ($VAR in --work-dir)
    extra: list[tuple[Path, str, bool]] = field(default_factory=list)  # host, target, read-only

    def _fixed(self) -> list[tuple[Path, str]]:
        fixed = [(self.bids_dir, DATA), (self.output_dir, OUT)]
        if self.work_dir is not None:
            fixed.append((self.work_dir, WORK))
        return fixed + [(h, t) for h, t, _ in self.extra]

    def container_path(self, host: Path, option: str, target: str, *, is_file: bool) -> str:
        """Where ``host`` is seen in the container, adding a read-only bind when needed.

        A path under an existing bind is reached through it (the deepest bind wins);
        otherwise its folder (or itself, for a folder) is bound at ``target``.
        """
        best = None
        for mount_host, mount_target in self._fixed():
            if host == mount_host or mount_host in host.parents:
                if best is None or len(mount_host.parts) > len(best[0].parts):
                    best = (mount_host, mount_target)
        if best is not None:
            rel = host.relative_to(best[0]).as_posix()
            return best[1] if rel == "." else f"{best[1]}/{rel}"
        bind_host = host.parent if is_file else host
        _check_bindable(bind_host, option)
        self.extra.append((bind_host, target, True))
        return f"{target}/{host.name}" if is_file else target

    def bind_specs(self) -> list[str]:
        """The ``-B`` values of the extra binds (the fixed three are written in the template)."""
        return [f"{h}:{t}:ro" if ro else f"{h}:{t}" for h, t, ro in self.extra]


def _long_flag(action: argparse.Action) -> str:
    longs = [s for s in action.option_strings if s.startswith("--")]
    return (longs or action.option_strings)[0]


def _map_value(action: argparse.Action, value: object, mounts: Mounts) -> str:
    """One option value as the container sees it (host paths rewritten)."""
    if isinstance(value, Path):
        host = _host_path(value)
        return mounts.container_path(host, _long_flag(action), f"/mnt/{action.dest}", is_file=False)
    return str(value)


def _participant_values(values: list[str], mounts: Mounts) -> list[str]:
    """--participant-label takes labels or one file of labels: a file is bound read-only."""
    if len(values) == 1 and Path(values[0]).expanduser().is_file():
        host = _host_path(values[0])
        return [mounts.container_path(host, "--participant-label", "/mnt/labels", is_file=True)]
    return values


def _option_tokens(action: argparse.Action, value: object, mounts: Mounts) -> list[list[str]]:
    """The tokens that reproduce ``value`` for one option, one list per use (none if default)."""
    flag = _long_flag(action)
    if isinstance(action, argparse._StoreConstAction | argparse._AppendConstAction):
        return [[flag]] if value != action.default else []  # incl. store_true/store_false
    if isinstance(action, argparse._CountAction):
        return [[action.option_strings[0]] * int(value or 0)] if value else []
    if value is None or value == action.default:
        return []
    if isinstance(action, argparse._AppendAction):
        uses = []
        for item in value:  # type: ignore[union-attr]
            items = item if isinstance(item, list | tuple) else [item]
            uses.append([flag, *(_map_value(action, v, mounts) for v in items)])
        return uses
    if isinstance(action, argparse._StoreAction):
        if action.nargs in ("+", "*") or isinstance(action.nargs, int):
            if action.dest == "participant_label":
                values = _participant_values([str(v) for v in value], mounts)  # type: ignore[union-attr]
            else:
                values = [_map_value(action, v, mounts) for v in value]  # type: ignore[union-attr]
            return [[flag, *values]]
        # --flag=value: safe for values that start with '-' (e.g. --missing-data=-1)
        return [[f"{flag}={_map_value(action, value, mounts)}"]]
    raise TypeError(f"slurm: no rule to pass {type(action).__name__} {flag} into the container")


def container_arguments(argv: list[str], mounts: Mounts) -> tuple[list[list[str]], int | None]:
    """The analysis options of ``argv`` for the container command.

    Parameters
    ----------
    argv
        The user's command line (without the program name).
    mounts
        The binds; gains read-only binds for paths outside BIDS_DIR/OUTPUT_DIR.

    Returns
    -------
    options, n_cpus
        The options as token lists (unquoted; one list per use of an option), launch-only
        options and ``--n-cpus`` left out, and the ``--n-cpus`` the user gave (None: the
        script uses Slurm's allocation).
    """
    parser = build_parser()
    # A fresh parse: the caller's namespace already has defaults filled in (e.g. n_cpus).
    given = parser.parse_args(argv)
    options: list[list[str]] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in LAUNCH_ONLY | _SPECIAL:
            continue
        options += _option_tokens(action, getattr(given, action.dest, None), mounts)
    return options, given.n_cpus


def _comment(text: str) -> str:
    """``text`` as shell comment lines (a newline in an argument must not end the comment)."""
    return "\n".join(f"#   {line}" for line in text.splitlines() or [""])


def _image(text: str) -> str:
    """A local image becomes an absolute path; ``docker://...`` style URIs stay as given."""
    if "://" in text:
        return text
    path = _host_path(text)
    if not path.exists():
        LOG.warning("afni-group: --image %s does not exist (yet); the job needs it", path)
    return str(path)


def _work_dir(args: argparse.Namespace, output_dir: Path) -> tuple[str, Path | None]:
    """The work folder as a bash word for the script, and as a host path when known now."""
    if args.work_dir is None:
        path = output_dir / ".work"
        return shlex.quote(str(path)), path
    if has_variables(args.work_dir):
        return shell_word(str(args.work_dir)), None
    path = _host_path(args.work_dir)
    _check_bindable(path, "--work-dir")
    return shlex.quote(str(path)), path


def render_sbatch(
    args: argparse.Namespace, argv: list[str], script: Path, analyses: list[str] | None = None
) -> str:
    """The text of the sbatch script (see the module docstring).

    ``analyses``: the names of the analyses for ``--fan-out`` (one array task each); None for
    one job that runs them all.
    """
    from jinja2 import Environment, PackageLoader, StrictUndefined

    from afni_group import fanout

    bids_dir = _host_path(args.bids_dir)
    output_dir = _host_path(args.output_dir)
    for option, path in (("BIDS_DIR", bids_dir), ("OUTPUT_DIR", output_dir)):
        _check_bindable(path, option)
    work_word, work_dir = _work_dir(args, output_dir)
    mounts = Mounts(bids_dir, output_dir, work_dir)
    options, n_cpus = container_arguments(argv, mounts)
    check_launch_options(args, n_cpus)

    env = Environment(
        loader=PackageLoader("afni_group", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # a shell script: values are quoted with shlex, not HTML-escaped
    )
    env.filters["q"] = lambda value: shlex.quote(str(value))
    mode = "--overwrite" if args.overwrite else "--resume" if args.resume else ""
    return env.get_template("sbatch.sh.j2").render(
        version=__version__,
        script=script,
        command=_comment(shlex.join(["afni-group", *argv])),
        job_name=JOB_NAME,
        cpus=args.cpus,
        mem=args.mem,
        time=args.time,
        mail_user=args.mail_user,
        log=LOG_PATTERN,
        image=_image(args.image),
        bids_dir=bids_dir,
        output_dir=output_dir,
        work_dir=work_word,
        extra_binds=mounts.bind_specs(),
        host_binds_variable=HOST_BINDS_VARIABLE,
        analysis_level=args.analysis_level,
        data=DATA,
        out=OUT,
        work=WORK,
        options=[shlex.join(tokens) for tokens in options],
        n_cpus=n_cpus,
        mode=mode,
        default_work_dir=args.work_dir is None,
        analyses=analyses or [],
        array_log=ARRAY_LOG_PATTERN,
        final_job_name=FINAL_JOB_NAME,
        task_variable=fanout.TASK_VARIABLE,
        array_variable=fanout.ARRAY_VARIABLE,
        script_variable=fanout.SCRIPT_VARIABLE,
    )


def write_sbatch(
    args: argparse.Namespace, argv: list[str], analyses: list[str] | None = None
) -> Path:
    """Write the sbatch script named by ``--write-sbatch``.

    Parameters
    ----------
    args
        The parsed command line.
    argv
        The same command line as a list (without the program name).
    analyses
        ``--fan-out``: the analyses' names, one array task each (see :mod:`afni_group.fanout`).

    Returns
    -------
    Path
        The script written (executable). Nothing is submitted.
    """
    script = _host_path(args.write_sbatch)
    text = render_sbatch(args, argv, script, analyses)
    try:
        script.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(script) as tmp:
            tmp.write_text(text, encoding="utf-8")
        script.chmod(0o755)
    except (OSError, OutputError) as err:
        why = err.strerror if isinstance(err, OSError) else str(err)
        raise OutputError(f"--write-sbatch {script}: cannot write it ({why})") from None
    return script
