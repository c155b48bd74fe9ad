"""A dependency-free progress display for replicate studies and other long jobs.

Why not tqdm: it is not a dependency of failpattern, and a study (or a
reconstruction's search) only needs one bar. On a terminal the bar is redrawn in place on stderr (at most ten
times a second); when stderr is not a terminal (a log file, CI, a cluster
job) a plain line is printed at every 10% and at least every 30 seconds, so
logs stay short but show that the study is alive.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


class Progress:
    """Progress of ``total`` units of work (replicates by default), ``done`` of which were already on disk.

    Parameters
    ----------
    total : int
        Number of units (replicates in a study, steps of a search).
    done : int
        Replicates already computed (resumed from disk); not counted in the rate.
    enabled : bool
        ``False`` makes every method a no-op.
    stream : file-like, optional
        Where to write; ``sys.stderr`` by default.
    tty : bool, optional
        Force terminal (redraw) or log (line) mode; by default ``stream.isatty()``.
    unit : str
        What is counted, as printed ("replicates").
    """

    _WIDTH = 30

    def __init__(self, total: int, done: int = 0, *, enabled: bool = True,
                 stream: TextIO | None = None, tty: bool | None = None, unit: str = "replicates") -> None:
        self.total, self.done, self.enabled, self.unit = total, done, enabled, unit
        self.note = ""
        self.stream = sys.stderr if stream is None else stream
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self._start_done = done
        self._t0 = self._last = time.monotonic()
        self._last_decile = done * 10 // max(total, 1)
        if enabled and done:
            self._line(f"resuming: {done}/{total} {unit} already on disk")

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _status(self) -> str:
        elapsed = time.monotonic() - self._t0
        new = self.done - self._start_done
        rate = new / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = _clock(left / rate) if rate > 0 else "?"
        note = f", {self.note}" if self.note else ""
        return (f"{self.done}/{self.total} {self.unit} ({100 * self.done / max(self.total, 1):.0f}%){note}, "
                f"{rate:.3g}/s, elapsed {_clock(elapsed)}, eta {eta}")

    def update(self, n: int, note: str | None = None) -> None:
        """Record ``n`` more finished units; ``note`` (e.g. "318/424 targets met") is shown after the count."""
        self.done += n
        if note is not None:
            self.note = note
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self._last >= 0.1 or self.done >= self.total:
                filled = self._WIDTH * self.done // max(self.total, 1)
                bar = "#" * filled + "-" * (self._WIDTH - filled)
                self.stream.write(f"\r[{bar}] {self._status()}\x1b[K")
                self.stream.flush()
                self._last = now
            return
        decile = self.done * 10 // max(self.total, 1)
        if decile > self._last_decile or now - self._last >= 30.0:
            self._line(self._status())
            self._last_decile, self._last = decile, now

    def close(self, message: str | None = None) -> None:
        """End the display (newline after a bar) and print ``message`` if given."""
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\n")
        if message:
            self._line(message)
        self.stream.flush()
