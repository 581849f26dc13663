"""Progress lines on stderr that read well in a terminal and in a Slurm log.

On a terminal the line is redrawn in place with a carriage return; when stderr is a file or a
pipe (Slurm, CI) there are no control characters: a plain line is printed at most every
``min_interval`` seconds and at 100 %.

The ETA is extrapolated from the pace since the first report, not since the start: the time
before the first units finish (numba compiling its kernels, FFT plans, the first file read) is
no guide to the rest. It is shown once that pace rests on :data:`ETA_MIN_FRACTION` of the work
or :data:`ETA_MIN_SECONDS` of it (the first 3dClustSim line read "ETA 24:23" for a 70 s step).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: share of the units, measured after the first report, before an ETA is shown
ETA_MIN_FRACTION = 0.05
#: or seconds of work measured after the first report
ETA_MIN_SECONDS = 10.0


class Progress:
    """Report ``done`` out of ``total`` units of a named step.

    Parameters
    ----------
    label : str
        Step name printed at the start of the line, e.g. ``"3dClustSim"``.
    total : int
        Number of units (iterations, voxel chunks).
    unit : str
        Word for one unit, e.g. ``"iterations"``.
    stream : file, optional
        Defaults to ``sys.stderr``.
    enabled : bool
        ``False`` silences it (``-quiet`` options, tests).
    min_interval : float
        Seconds between lines when the stream is not a terminal.
    """

    def __init__(
        self,
        label: str,
        total: int,
        unit: str = "",
        stream: TextIO | None = None,
        enabled: bool = True,
        min_interval: float = 10.0,
    ):
        self.label = label
        self.total = max(int(total), 1)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.min_interval = min_interval
        self.done = 0
        self._start = time.monotonic()
        self._last = -1e9
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._finished = False
        self._width = 0
        # (time, units done) at the first report: the ETA's pace is measured from here
        self._reference: tuple[float, int] | None = None
        if self._tty:
            self.min_interval = 0.2

    def update(self, n: int = 1) -> None:
        """Add ``n`` finished units and print a line if it is time."""
        self.done = min(self.done + n, self.total)
        now = time.monotonic()
        if self._reference is None:
            self._reference = (now, self.done)
        if self.done >= self.total or now - self._last >= self.min_interval:
            self._last = now
            self._emit(final=self.done >= self.total)

    def close(self) -> None:
        """Finish the line (prints 100 % if not yet printed)."""
        if not self._finished:
            self.done = self.total
            self._emit(final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._tty and self.enabled and not self._finished:
            self.stream.write("\n")

    def _emit(self, final: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        elapsed = now - self._start
        frac = self.done / self.total
        unit = f" {self.unit}" if self.unit else ""
        text = (
            f"++ {self.label}: {self.done}/{self.total}{unit} ({100 * frac:5.1f}%)"
            f" elapsed {_fmt(elapsed)}"
        )
        eta = None if final else self.eta(now)
        if eta is not None:
            text += f", ETA {_fmt(eta)}"
        if self._tty:
            # pad to the previous width so a shorter line leaves no stale characters
            padded = text.ljust(self._width)
            self._width = len(text)
            self.stream.write("\r" + padded + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self._finished = final
        self.stream.flush()

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at the pace since the first report; None until that pace is meaningful."""
        if self._reference is None:
            return None
        now = time.monotonic() if now is None else now
        since, first_done = self._reference
        units, seconds = self.done - first_done, now - since
        if units <= 0 or (units < ETA_MIN_FRACTION * self.total and seconds < ETA_MIN_SECONDS):
            return None
        return seconds / units * (self.total - self.done)


def _fmt(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "?"
    seconds = int(round(seconds))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
