"""Where local worker processes come from: a fork server that has imported what they run.

Why a module of its own, importing nothing heavy: the local workers of a study
(:func:`failpattern.replicate.runners.run_processes`) are forked from a fork
server, which imports their modules once before forking any (forked, they
share them). Those imports (numpy, pandas, scipy, the simulator and the
batched plan: about a second of CPU) are the first thing a worker waits for.
Started by :func:`start` at the top of ``failpattern study``, before the
calling process imports pandas and reads the study card, the fork server does
them on another core while this process does its own; the pool made later
forks its workers from the ready server. A task lists the modules its workers
need in a ``worker_modules`` attribute (its own module included), which
:func:`context` adds to the fork server's preload.

Not fork: the caller may hold threads (pyarrow's pool, a Dask client) that
fork would copy half-way. Without a fork server (Windows), workers are
spawned and import their modules themselves.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Callable, Iterable

__all__ = ["BASE_MODULES", "STUDY_MODULES", "context", "start", "task_modules"]

#: What every local worker imports: the chunk runner (numpy, pandas). ``__main__`` is preloaded
#: so that tasks defined in a script unpickle (``python -m`` mains are not re-run).
BASE_MODULES = ("__main__", "failpattern.replicate.runners")

#: What the workers of a paper's replicate study import (the ``worker_modules`` of the tasks of
#: :mod:`failpattern.replicate.study`: the tasks, the study card, the simulator, the batched and
#: the per-cohort plan). Listed here, not there, so that ``failpattern study`` starts the fork
#: server without importing that module (and pandas) first.
STUDY_MODULES = ("failpattern.replicate.study", "failpattern.study", "failpattern.simulate",
                 "failpattern.simulate.generate", "failpattern.study.plan_batch", "failpattern.cohort",
                 "failpattern.study.plan")


def task_modules(task: Callable | None) -> tuple[str, ...]:
    """The ``worker_modules`` of ``task`` (under any ``functools.partial``), else none."""
    while isinstance(task, functools.partial):
        task = task.func
    modules = getattr(task, "worker_modules", ())
    return tuple(m for m in modules if isinstance(m, str))


def context(modules: Iterable[str] = ()) -> multiprocessing.context.BaseContext:
    """The start method of local workers: forkserver where available, else spawn.

    Parameters
    ----------
    modules : iterable of str
        Modules the fork server imports before its first fork, after :data:`BASE_MODULES`.
        Only the first start of the server (per process) uses them; a module that fails to
        import there is imported by the worker that needs it.

    Returns
    -------
    multiprocessing.context.BaseContext
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(dict.fromkeys((*BASE_MODULES, *modules))))
        return ctx
    return multiprocessing.get_context("spawn")


def start(modules: Iterable[str] = ()) -> bool:
    """Start the fork server now, importing ``modules``, without waiting for it.

    Its imports run in its own process while the caller goes on; the first pool that
    forks a worker waits only for what is left of them. Nothing is started where there is
    no fork server.

    Parameters
    ----------
    modules : iterable of str
        As for :func:`context` (e.g. a task's ``worker_modules``).

    Returns
    -------
    bool
        Whether a fork server is (now) running.
    """
    ctx = context(modules)
    if ctx.get_start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return True
