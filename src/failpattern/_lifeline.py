"""Worker processes end when the process that started them ends, even by ``kill -9``.

Why a module of its own: a process killed with SIGKILL runs no cleanup, and a
``concurrent.futures`` worker whose parent is gone does not notice it: it
holds the write end of its own task queue, so it waits for a task forever.
Measured before this module, ``kill -9`` of ``failpattern reproduce`` left the
forked figure worker alive in 10 of 10 trials, and of ``failpattern study``
four processes (the fork server, which waits for its workers; two workers;
multiprocessing's resource tracker, which waits for all of them). Both
process pools (:func:`failpattern.report.figures.save_paper_figures` and
:func:`failpattern.replicate.runners.run_processes`) therefore pass
:func:`die_with_parent` as their worker initializer, which sets up two
guards:

1. **The parent's sentinel** (every platform). ``multiprocessing`` gives each
   child a pipe whose write end only the parent holds
   (:func:`multiprocessing.parent_process`); a daemon thread blocks on it and
   ends the worker with :func:`os._exit` when it closes. It watches the
   process that owns the pool even when a fork server stands between them
   (forkserver workers are children of the fork server, not of the pool's
   owner), and it cannot be fooled by a zombie or a reused pid.
2. **PR_SET_PDEATHSIG** (Linux): the kernel sends SIGKILL to the worker when
   its parent ends, even while the worker sits in C code holding the GIL
   (where guard 1 would wait for it). The parent here is the thread that
   forked the worker; both pools fork from a thread that outlives them.

When the owner dies, its workers end (guard 1, and guard 2 for forked
workers); then the fork server and the resource tracker see end of file on
the pipes that the owner and the workers held, and exit by themselves (the
fork server in about half a second: it finalizes its modules first). A
parent that died before the guards were set is caught by checking the
sentinel once after setting them. The fork server itself is left to its
"alive" pipe rather than given PR_SET_PDEATHSIG: it is shared by every pool of
the process, and a death signal would kill it, and the pools of other
threads, when the thread that happened to start it ends.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading

__all__ = ["die_with_parent", "EXIT_ORPHANED"]

EXIT_ORPHANED = 70
"""Exit status of a worker that ended because its parent had ended."""

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _set_death_signal() -> bool:
    """Ask Linux for SIGKILL when this process's parent ends; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no prctl symbol (an unusual libc): guard 1 remains
        return False


def _exit_when_ended(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()  # returns when the parent's sentinel pipe is closed: the parent ended
    os._exit(EXIT_ORPHANED)


def die_with_parent() -> None:
    """End this worker process as soon as the process that started it ends.

    Meant as the ``initializer`` of a :class:`concurrent.futures.ProcessPoolExecutor`
    (or any :mod:`multiprocessing` child): sets the Linux parent-death signal,
    exits at once if the parent is already gone, and starts a daemon thread
    that exits the process (status :data:`EXIT_ORPHANED`, no cleanup) when the
    parent ends. Outside a :mod:`multiprocessing` child only the death signal
    is set.
    """
    _set_death_signal()
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if not parent.is_alive():  # ended before the death signal was set
        os._exit(EXIT_ORPHANED)
    threading.Thread(target=_exit_when_ended, args=(parent,), name="failpattern-lifeline",
                     daemon=True).start()
