"""An exclusive lock on OUTPUT_DIR for the length of a run.

Two runs writing one OUTPUT_DIR (a job script submitted twice, a job array, a second terminal)
would interleave their logs and delete each other's work folder. The lock file is
``OUTPUT_DIR/.afni-group/lock``; it holds one line ``host pid start-time`` naming the holder.

Two mechanisms, so that the lock holds across nodes that share the folder over NFS or Lustre:

* ``fcntl.flock`` on the open lock file (the kernel lock). Linux emulates ``flock`` with POSIX
  byte-range locks on NFS, so it is seen by every client; Lustre needs its ``flock`` mount
  option. The kernel drops the lock when the holder dies (on NFS, when the server's lease for
  a dead client ends), so a killed run never blocks the next one.
* Where the file system refuses locks (``ENOLCK``, ``EOPNOTSUPP``, ``ENOSYS``: e.g. Lustre
  mounted with ``noflock``), an owner file ``lock.owner`` created with ``O_EXCL`` instead. It
  is stale, and removed, when it names this host and a process that is gone (or a reused pid
  that started later); an owner on another host is honoured until the user removes the file.

A ``--fan-out`` job (:mod:`afni_group.fanout`) runs one task per analysis into the same
OUTPUT_DIR at once: each task holds the OUTPUT_DIR lock *shared* (so the tasks run side by side
while a whole run, which holds it exclusively, cannot start among them) and its analysis's own
lock ``OUTPUT_DIR/.afni-group/analysis-NAME/lock`` exclusively (so the same analysis never runs
twice at once).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from afni_group.errors import OutputError
from afni_group.outputs import LOCK_FILES, STATE_DIR

LOG = logging.getLogger(__name__)

LOCK_NAME, OWNER_NAME = LOCK_FILES
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock: host name, pid and the process's start time (epoch s)."""

    host: str
    pid: int
    started: float

    def line(self) -> str:
        return f"{self.host} {self.pid} {self.started:.2f}\n"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        parts = text.split()
        if len(parts) != 3:
            return None
        try:
            return cls(parts[0], int(parts[1]), float(parts[2]))
        except ValueError:
            return None

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"afni-group pid {self.pid} on host {self.host} (started {since})"


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def process_start_time(pid: int) -> float | None:
    """When a local process started (epoch seconds), from /proc; None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    boot = _boot_time()
    if boot is None:
        return None
    # field 22 (starttime, clock ticks since boot); the command name (field 2) may hold spaces
    fields = stat[stat.rindex(")") + 2 :].split()
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def this_process() -> Holder:
    """The holder record of the calling process."""
    pid = os.getpid()
    return Holder(socket.gethostname(), pid, process_start_time(pid) or time.time())


def is_stale(holder: Holder, host: str | None = None) -> bool:
    """True when ``holder`` ran on this host and its process is gone (or the pid was reused).

    A holder on another host cannot be checked from here and is never stale.
    """
    if holder.host != (host or socket.gethostname()):
        return False
    if not _pid_alive(holder.pid):
        return True
    started = process_start_time(holder.pid)
    # a live process with that pid that started well after the holder is a reused pid
    return started is not None and started > holder.started + 2


def _shown(path: Path) -> str:
    """A path for a message: with its host path too when running in a job's container."""
    from afni_group import provenance

    host = provenance.to_host(path, provenance.host_binds())
    return f"{path} (host {host})" if host and host != str(path) else str(path)


def _task_holders(state: Path) -> list[str]:
    """The fan-out tasks that hold their analysis's lock now (their lock files name them)."""
    found = []
    for path in sorted(state.glob(f"analysis-*/{LOCK_NAME}")):
        holder = _read_holder(path)
        if holder is not None:
            found.append(f"{holder.describe()} for {path.parent.name}")
    return found


def _busy(output_dir: Path, path: Path, holder: Holder | None, name: str | None) -> OutputError:
    if holder is not None:
        who = holder.describe()
    else:  # a shared lock names nobody: the tasks of a --fan-out job hold it
        tasks = _task_holders(output_dir / STATE_DIR)
        who = f"the --fan-out task(s) {'; '.join(tasks)}" if tasks else "another afni-group run"
    what = f"OUTPUT_DIR {_shown(output_dir)}" + (f" ({name})" if name else "")
    return OutputError(
        f"{what} is in use by {who} (lock {path}): wait for that run to finish or choose "
        "another OUTPUT_DIR"
    )


def _read_holder(path: Path) -> Holder | None:
    try:
        return Holder.parse(path.read_text())
    except OSError:
        return None


class OutputLock:
    """The lock on one OUTPUT_DIR; use :func:`locked` rather than this class directly.

    Parameters
    ----------
    output_dir
        The OUTPUT_DIR.
    name
        None: the lock of the whole folder; ``analysis-NAME``: the lock of one analysis (a
        ``--fan-out`` task), in ``.afni-group/analysis-NAME/``.
    shared
        Hold it shared (the ``--fan-out`` tasks on the whole folder) rather than exclusively.
    """

    def __init__(self, output_dir: Path, name: str | None = None, shared: bool = False):
        self.output_dir = Path(output_dir)
        self.name = name
        self.shared = shared
        self.state = self.output_dir / STATE_DIR / (name or "")
        self.path = self.state / LOCK_NAME
        self.owner = self.state / OWNER_NAME
        self.fd: int | None = None
        self.owns_owner_file = False

    def acquire(self) -> None:
        """Take the lock or raise :class:`OutputError` (exit 73) naming the holder."""
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise OutputError(f"cannot create the lock file {self.path}: {err.strerror}") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._busy(self.path) from None
        except OSError as err:
            if err.errno not in _NO_LOCKS:
                os.close(fd)
                raise OutputError(f"cannot lock {self.path}: {err.strerror}") from None
            if self.shared:
                # an owner file cannot be shared; each task's exclusive analysis lock still
                # keeps two runs of one analysis apart
                os.close(fd)
                LOG.warning("the file system of %s does not support locks", self.state)
                return
            LOG.warning(
                "the file system of %s does not support locks (%s): using the owner file %s",
                self.state,
                err.strerror,
                self.owner,
            )
            self._acquire_owner_file()
        self.fd = fd
        if not self.shared:  # the line names the one exclusive holder (sharers all hold it)
            os.ftruncate(fd, 0)
            os.pwrite(fd, this_process().line().encode(), 0)

    def _busy(self, path: Path, holder: Holder | None = None) -> OutputError:
        """Refusal naming the holder that ``path`` records (or ``holder``)."""
        return _busy(self.output_dir, path, holder or _read_holder(path), self.name)

    def _acquire_owner_file(self, attempts: int = 3) -> None:
        me = this_process()
        for _ in range(attempts):
            try:
                fd = os.open(self.owner, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                holder = _read_holder(self.owner)
                if holder is not None and not is_stale(holder):
                    raise self._busy(self.owner, holder) from None
                LOG.warning("removing the stale lock %s (%s)", self.owner, holder or "unreadable")
                with contextlib.suppress(FileNotFoundError):
                    self.owner.unlink()
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(me.line())
            self.owns_owner_file = True
            return
        raise self._busy(self.owner)

    def release(self) -> None:
        """Drop the lock (the lock file stays, emptied: removing it would race a waiter)."""
        if self.owns_owner_file:
            with contextlib.suppress(OSError):
                self.owner.unlink()
            self.owns_owner_file = False
        if self.fd is not None:
            if not self.shared:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


@contextlib.contextmanager
def locked(output_dir: Path, name: str | None = None, shared: bool = False) -> Iterator[OutputLock]:
    """Hold the lock on ``output_dir`` (or on one analysis in it) for the ``with`` block.

    ``name`` and ``shared`` are those of :class:`OutputLock` (default: the whole folder,
    exclusively).

    Raises
    ------
    OutputError
        Exit 73 when another run holds it; the message names its host and pid.
    """
    lock = OutputLock(output_dir, name, shared)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()


def refuse_if_held(output_dir: Path) -> None:
    """Raise the error a run would get (exit 73, naming the holder) while another run holds
    the lock on ``output_dir``; otherwise return. Writes nothing (``--dry-run`` previews).
    """
    state = Path(output_dir) / STATE_DIR
    owner = _read_holder(state / OWNER_NAME)
    if owner is not None and not is_stale(owner):
        raise _busy(Path(output_dir), state / OWNER_NAME, owner, None)
    try:
        fd = os.open(state / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a held (exclusive) lock refuses this
    except BlockingIOError:
        raise _busy(
            Path(output_dir), state / LOCK_NAME, _read_holder(state / LOCK_NAME), None
        ) from None
    except OSError:
        pass  # no locks on this file system: the owner file above said it
    finally:
        os.close(fd)  # closing drops a shared lock taken here
