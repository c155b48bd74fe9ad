"""Where the chunks of a replicate study run: in this process, local processes or Dask.

Why a module of its own: the three ways of running differ only in how a
chunk is submitted and collected, so one loop (:func:`_pump`) keeps a
bounded number of chunks in flight for both executors, and one sink
(:class:`Sink`) writes every finished chunk from the calling process
(workers only return DataFrames, so a Dask cluster needs no shared file
system) and records the first failure. The worker function
:func:`_run_chunk` seeds replicate ``i`` with
:func:`~failpattern.replicate.store.replicate_rng` ``(seed, i)`` and never
raises for a task error: it returns it with the replicate index, so the
caller can name the replicate whatever the executor. Local workers end with
the calling process, even when it is killed (:mod:`failpattern._lifeline`).
A chunk in a process with a fixed malloc trim threshold (Dask's workers) runs
with glibc's thresholds raised for its duration (:func:`_malloc_for_arrays`:
without it the batched plan runs 2-2.5 times slower on Dask).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import functools
import gc
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from failpattern._lifeline import die_with_parent
from failpattern.errors import InputError
from failpattern.replicate import store
from failpattern.replicate.progress import Progress
from failpattern.replicate.workers import context as workers_context
from failpattern.replicate.workers import task_modules

__all__ = ["Task", "Sink", "run_in_process", "run_processes", "run_dask", "SCHEDULER_TIMEOUT"]

Task = Callable[[np.random.Generator, int], pd.DataFrame]


# ----------------------------------------------------------------------------- worker side
@dataclass(frozen=True)
class _Failure:
    index: int | None
    error_type: str
    error_message: str
    traceback: str


@dataclass(frozen=True)
class _Outcome:
    chunk: int
    frame: pd.DataFrame | None
    failure: _Failure | None


#: glibc's mallopt parameters (malloc.h) and the values its documentation gives as defaults.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_DEFAULT, _TRIM_DEFAULT = 128 * 1024, 128 * 1024
_ARRAYS_MMAP, _ARRAYS_TRIM = 32 * 1024 * 1024, 64 * 1024 * 1024   # glibc's largest mmap threshold, twice it


@contextlib.contextmanager
def _malloc_for_arrays():
    """Let glibc's malloc reuse freed memory for the chunk's arrays when the process has a fixed
    trim threshold (``MALLOC_TRIM_THRESHOLD_``), then give the memory back as that setting wants.

    Why: Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, so that they hand freed
    memory back to the system. Setting it switches off glibc's adaptive mmap threshold: every
    array above 128 kB is then a fresh ``mmap`` whose pages fault in zeroed, and freed with
    ``munmap``. The batched plan makes thousands of arrays of a few hundred kB a chunk; measured,
    it then takes 2.4 ms of CPU a replicate instead of 1.0. Here the thresholds are raised for
    the chunk (what the adaptive rule would reach), restored after it, and the freed memory
    released with ``malloc_trim``, so the worker holds no more between chunks than before.
    Elsewhere (no such variable, not glibc) nothing is changed."""
    libc = _glibc() if "MALLOC_TRIM_THRESHOLD_" in os.environ else None
    if libc is None:
        yield
        return
    def setting(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            return default
    libc.mallopt(_M_MMAP_THRESHOLD, _ARRAYS_MMAP)
    libc.mallopt(_M_TRIM_THRESHOLD, _ARRAYS_TRIM)
    try:
        yield
    finally:
        libc.mallopt(_M_TRIM_THRESHOLD, setting("MALLOC_TRIM_THRESHOLD_", _TRIM_DEFAULT))
        libc.mallopt(_M_MMAP_THRESHOLD, setting("MALLOC_MMAP_THRESHOLD_", _MMAP_DEFAULT))
        libc.malloc_trim(0)


@functools.lru_cache(maxsize=1)
def _glibc():
    """The C library when it is glibc (``mallopt``, ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


def _run_chunk(task: Task, seed: int, chunk: int, start: int, stop: int) -> _Outcome:
    """Run replicates ``start .. stop - 1``; never raises for a task error (returns it)."""
    with _malloc_for_arrays():
        return _run_chunk_now(task, seed, chunk, start, stop)


def _run_chunk_now(task: Task, seed: int, chunk: int, start: int, stop: int) -> _Outcome:
    if getattr(store.unwrap(task), "chunked", False):
        return _run_chunked(task, seed, chunk, start, stop)
    frames, lengths = [], []
    for i in range(start, stop):
        try:
            out = task(store.replicate_rng(seed, i), i)
            if not isinstance(out, pd.DataFrame):
                raise TypeError(f"task returned {type(out).__name__}, not a pandas.DataFrame")
        except Exception as exc:  # reported to the caller with the index
            return _Outcome(chunk, None, _Failure(i, type(exc).__name__, str(exc),
                                                  traceback.format_exc()))
        frames.append(out)
        lengths.append(len(out))
    nonempty = [f for f in frames if len(f)]
    frame = (pd.concat(nonempty, ignore_index=True) if nonempty
             else (frames[0].iloc[:0].reset_index(drop=True) if frames else pd.DataFrame()))
    if "replicate" in frame.columns:  # checked once per chunk, not per replicate
        first = next(k for k, f in enumerate(frames) if "replicate" in f.columns)
        return _Outcome(chunk, None, _Failure(start + first, "ValueError", "task output already has "
                                              "a 'replicate' column (the engine adds it)", ""))
    frame.insert(0, "replicate", np.repeat(np.arange(start, stop, dtype=np.int64), lengths))
    return _Outcome(chunk, frame, None)


def _run_chunked(task: Callable, seed: int, chunk: int, start: int, stop: int) -> _Outcome:
    """A task marked ``chunked`` runs a whole chunk: ``task(rngs, indices)`` with replicate
    ``i``'s own generator, returning the rows with their ``replicate`` column (the results are
    the task's to keep independent of the chunking). A failure names the chunk's first replicate."""
    try:
        frame = task([store.replicate_rng(seed, i) for i in range(start, stop)],
                     np.arange(start, stop, dtype=np.int64))
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"task returned {type(frame).__name__}, not a pandas.DataFrame")
        if frame.columns[:1].tolist() != ["replicate"]:
            raise ValueError("a chunked task's output must start with the 'replicate' column")
    except Exception as exc:  # reported to the caller with the chunk's first index
        return _Outcome(chunk, None, _Failure(start, type(exc).__name__, f"replicates {start}..{stop - 1}: "
                                              f"{exc}", traceback.format_exc()))
    return _Outcome(chunk, frame, None)


_frozen = False  # whether this worker process has frozen its start-up objects (_worker_chunk)


def _worker_chunk(task: Task, seed: int, chunk: int, start: int, stop: int) -> _Outcome:
    """:func:`_run_chunk` in a local worker process, which after its first chunk moves
    everything alive (the modules and caches the task loaded: pandas, scipy, the study
    card, some 170,000 objects) out of the garbage collector's reach with ``gc.freeze``.
    Otherwise every full collection, about one per 50 replicates of a study, walks them
    all again: measured, garbage collection then takes about 3 ms of a 40 ms replicate,
    1 ms once frozen. Only our own worker processes do this; the caller's process and
    Dask workers are left alone."""
    global _frozen
    outcome = _run_chunk(task, seed, chunk, start, stop)
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True
    return outcome


# ----------------------------------------------------------------------------- runners
class Sink:
    """Receives chunk outcomes in the calling process: writes chunks (then hands them to
    ``on_chunk``), keeps the first failure."""

    def __init__(self, out: Path, manifest: store.Manifest, bar: Progress,
                 on_chunk: Callable[[int, pd.DataFrame], Any] | None = None) -> None:
        self.out, self.manifest, self.bar, self.on_chunk = out, manifest, bar, on_chunk
        self.failure: tuple[int, _Failure] | None = None
        self.n_failed = 0
        self.computed = 0

    def __call__(self, outcome: _Outcome) -> None:
        if outcome.failure is not None:
            self.n_failed += 1
            f = outcome.failure
            if self.failure is None or (f.index or 0) < (self.failure[1].index or 0):
                self.failure = (outcome.chunk, f)
            return
        start, stop = store.chunk_bounds(outcome.chunk, self.manifest.n_replicates,
                                         self.manifest.chunk_size)
        try:
            store.write_chunk(self.out, outcome.chunk, outcome.frame, self.manifest.format)
        except OSError:
            raise
        except Exception as exc:  # pyarrow's type errors, unnamed columns, ...
            raise InputError(f"task: the rows of replicates {start}..{stop - 1} (chunk "
                             f"{outcome.chunk}) cannot be stored as {self.manifest.format} "
                             f"({type(exc).__name__}: {exc}); give each column one type and "
                             "string column names") from exc
        self.computed += 1
        if self.on_chunk is not None:  # after the write: what it sees is on disk
            self.on_chunk(outcome.chunk, outcome.frame)
        self.bar.update(stop - start)

    def died(self, chunk: int, exc: BaseException) -> None:
        """A worker died or the scheduler lost the chunk: no replicate index is known."""
        self.n_failed += 1
        if self.failure is None:
            self.failure = (chunk, _Failure(None, type(exc).__name__, str(exc) or repr(exc),
                                            "".join(traceback.format_exception(exc))))


def run_in_process(task: Task, seed: int, todo: list[int], m: store.Manifest, sink: Sink) -> None:
    for c in todo:
        sink(_run_chunk(task, seed, c, *store.chunk_bounds(c, m.n_replicates, m.chunk_size)))
        if sink.failure is not None:
            return


def _pump(todo: list[int], window: int, submit: Callable[[int], Any],
          wait_first: Callable[[set], tuple[Iterable, set]], result: Callable[[Any], _Outcome],
          cancel: Callable[[set], set], sink: Sink) -> None:
    """Keep ``window`` chunks in flight; hand finished ones to ``sink``; stop on a failure.

    After a failure nothing new is submitted, queued chunks are cancelled and
    chunks already running are still collected (and written when they succeed).
    """
    queue = iter(todo)
    pending: dict[Any, int] = {}

    def fill() -> None:
        while len(pending) < window:
            c = next(queue, None)
            if c is None:
                return
            pending[submit(c)] = c

    fill()
    while pending:
        finished, _ = wait_first(set(pending))
        for fut in finished:
            c = pending.pop(fut)
            try:
                outcome = result(fut)
            except Exception as exc:  # a dead worker, a lost chunk
                sink.died(c, exc)
            else:
                sink(outcome)
        if sink.failure is not None:
            keep = cancel(set(pending))
            for fut in list(pending):
                if fut not in keep:
                    del pending[fut]
        else:
            fill()


def run_processes(task: Task, seed: int, todo: list[int], m: store.Manifest, sink: Sink,
                   workers: int) -> None:
    if getattr(store.unwrap(task), "__module__", None) == "__main__" and not hasattr(
            sys.modules.get("__main__"), "__file__"):
        raise InputError(f"task: {store.task_name(task)} is defined in an interactive session, which "
                         "worker processes cannot import; define it in a module, or use "
                         "workers=1 or a Dask scheduler")
    try:
        pickle.dumps(task)
    except Exception as exc:
        raise InputError(f"task: {store.task_name(task)} cannot be pickled for worker processes ({exc}); "
                         "use a module-level function (or functools.partial of one), "
                         "or workers=1") from None
    ex = cf.ProcessPoolExecutor(max_workers=workers, mp_context=workers_context(task_modules(task)),
                                initializer=die_with_parent)
    try:
        _pump(todo, 2 * workers,
              lambda c: ex.submit(_worker_chunk, task, seed, c,
                                  *store.chunk_bounds(c, m.n_replicates, m.chunk_size)),
              lambda fs: cf.wait(fs, return_when=cf.FIRST_COMPLETED),
              lambda f: f.result(),
              lambda fs: {f for f in fs if not f.cancel()},
              sink)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


SCHEDULER_TIMEOUT = 3.0
"""Seconds to wait for the Dask scheduler named by an address (Dask's default is 30 s).

A scheduler that is up answers in milliseconds; a wrong address should be
reported while the user still waits for it (``failpattern study`` fails within
about 6 s, start-up included). For a slower link, pass an open
``distributed.Client`` made with a longer ``timeout`` instead of an address.
"""


def _connect(distributed: Any, scheduler: Any) -> Any:
    """A new ``distributed.Client`` for ``scheduler``; InputError naming it if that fails.

    A string is checked before any client exists: a client whose address
    turns out malformed while it starts is left half-made, and closing it at
    exit waits 10 s and prints a traceback; an unknown scheme fails only after
    10 s.
    """
    if isinstance(scheduler, str):
        from distributed.comm import get_address_host_port, parse_address
        from distributed.comm.registry import get_backend

        try:
            scheme = parse_address(scheduler)[0]
            get_backend(scheme)
            if scheme != "inproc":  # in-process addresses (LocalCluster(processes=False)) have no port
                get_address_host_port(scheduler)
        except ValueError as exc:
            raise InputError(f"scheduler: {scheduler!r} is not a Dask scheduler address ({exc}); "
                             "expected e.g. tcp://host:8786") from None
    try:
        return distributed.Client(scheduler, set_as_default=False, timeout=SCHEDULER_TIMEOUT)
    except (ValueError, TypeError) as exc:  # a missing or bad port, an object of another type
        raise InputError(f"scheduler: {scheduler!r} is not a Dask scheduler address ({exc}); "
                         "expected e.g. tcp://host:8786") from None
    except (OSError, TimeoutError) as exc:  # refused, unreachable, no answer in time
        raise InputError(f"scheduler: no Dask scheduler answered at {scheduler!r} within "
                         f"{SCHEDULER_TIMEOUT:g} s ({exc}); check the address and that the "
                         "scheduler is running") from None


def run_dask(task: Task, seed: int, todo: list[int], m: store.Manifest, sink: Sink,
              scheduler: Any) -> None:
    try:
        import distributed
    except ImportError:
        raise InputError("scheduler: running on a Dask cluster needs dask[distributed] "
                         "(pip install 'dask[distributed]')") from None
    own = not isinstance(scheduler, distributed.Client)
    client = _connect(distributed, scheduler) if own else scheduler
    try:
        threads = sum(client.nthreads().values()) or 1
        finished = distributed.as_completed(loop=client.loop)

        def submit(c: int) -> Any:
            fut = client.submit(_run_chunk, task, seed, c,
                                *store.chunk_bounds(c, m.n_replicates, m.chunk_size),
                                pure=False, key=f"replicate-chunk-{c}-{os.urandom(4).hex()}")
            finished.add(fut)
            return fut

        _pump(todo, 2 * threads, submit,
              lambda fs: ({next(finished)}, None),
              lambda f: f.result(),
              lambda fs: (client.cancel(list(fs)), set())[1],
              sink)
    finally:
        if own:
            client.close()
