"""Kill a failpattern command with SIGKILL and count the processes it leaves behind.

Shared by ``tests/test_orphans.py`` (a few trials) and ``benchmarks/bench_orphans.py``
(ten trials per command, with timings). Linux only: processes are read from
``/proc`` (no psutil). The command runs in a session of its own, so every
process it starts, even one reparented after its parent died, keeps the
session id (the parent's pid) and is found by it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Trial", "session_processes", "kill_trial", "failpattern_command"]


def failpattern_command(*args: str) -> list[str]:
    """``python -m failpattern *args`` with this interpreter."""
    return [sys.executable, "-m", "failpattern", *args]


def session_processes(sid: int) -> dict[int, str]:
    """Live (not zombie) processes of session ``sid``: pid -> command line."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp session ...
        if fields[0] != "Z" and int(fields[3]) == sid:
            found[int(entry.name)] = cmd.strip()
    return found


@dataclass(frozen=True)
class Trial:
    """One kill: processes besides the parent at the kill, survivors after ``timeout``,
    and seconds from the kill until the last of them ended (None when some survived)."""

    children: dict[int, str]
    survivors: dict[int, str]
    seconds: float | None


def kill_trial(args: list[str], *, children: int, settle: float = 0.3, timeout: float = 5.0,
               start_timeout: float = 120.0) -> Trial:
    """Start ``args`` in a new session, wait for ``children`` processes besides it, wait
    ``settle`` seconds more, SIGKILL the parent only and watch its session for ``timeout``
    seconds. Survivors are then killed (they are ours) and reported.

    Raises
    ------
    RuntimeError
        The command ended, or did not start ``children`` processes within ``start_timeout``.
    """
    proc = subprocess.Popen(args, start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            others = {p: c for p, c in session_processes(proc.pid).items() if p != proc.pid}
            if len(others) >= children:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(args)}: {len(others)} of {children} worker processes "
                                   f"seen before it {'ended' if proc.poll() is not None else 'timed out'}"
                                   f"; stderr: {proc.stderr.read().decode()[-2000:] if proc.poll() is not None else ''}")
            time.sleep(0.01)
        time.sleep(settle)
        at_kill = {p: c for p, c in session_processes(proc.pid).items() if p != proc.pid}
        os.kill(proc.pid, signal.SIGKILL)
        start = time.monotonic()
        proc.wait()
        while True:
            left = session_processes(proc.pid)
            elapsed = time.monotonic() - start
            if not left:
                return Trial(at_kill, {}, elapsed)
            if elapsed > timeout:
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                return Trial(at_kill, left, None)
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
