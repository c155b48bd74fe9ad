"""Run a per-replicate function many times, in parallel, resumably and reproducibly.

Why: a replicate study simulates many cohorts and runs the paper's whole
analysis plan on each. That is embarrassingly parallel but long, so the
engine (1) spreads chunks of replicates over local processes
(:class:`concurrent.futures.ProcessPoolExecutor`) or a Dask distributed
cluster, (2) streams each finished chunk to disk (:mod:`.store`) so that an
interrupted study resumes where it stopped, and (3) gives replicate ``i`` a
generator that depends only on ``(seed, i)`` —
``SeedSequence(seed).spawn(n)[i]`` — so the results are bit-identical
whatever the number of workers, the scheduler, the chunk order or an
interruption. The engine knows nothing about cohorts or the plan: it takes
any picklable ``task(rng, index) -> DataFrame``.

This module holds the public API and the checks of a study folder;
:mod:`.store` the folder layout and seeding, :mod:`.runners` the executors.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from failpattern._version import __version__
from failpattern.errors import FailpatternError, InputError
from failpattern.replicate import store
from failpattern.replicate.progress import Progress
from failpattern.replicate.runners import Sink, Task, run_dask, run_in_process, run_processes
from failpattern.replicate.store import task_name

__all__ = ["run_replicates", "load_replicates", "ReplicateError", "StudyMismatchError", "default_chunk_size",
           "task_name"]


def default_chunk_size(n_replicates: int) -> int:
    """Replicates per chunk when ``chunk_size`` is not given for a new study.

    ``ceil(n / 50)`` clipped to ``[1, 100]``: at least 50 chunks up to 5,000
    replicates, so up to 50 workers have work and an interruption loses
    little, and at most 100 replicates per chunk, so the per-chunk cost
    (about 10-20 ms: pickling, Parquet, fsync) stays small against the tasks.
    It depends on ``n_replicates`` only, so the same call always makes the
    same study.
    """
    return min(100, max(1, -(-n_replicates // 50)))


class StudyMismatchError(InputError):
    """The folder holds a replicate study with other parameters (``mismatches`` says which)."""

    def __init__(self, message: str, mismatches: tuple[str, ...] = ()):
        super().__init__(message)
        self.mismatches = mismatches


class ReplicateError(FailpatternError, RuntimeError):
    """A task raised (or returned something other than a DataFrame) for one replicate.

    The run stopped; the chunks finished before the failure are kept on disk
    and a rerun with the same parameters resumes from them.

    Attributes
    ----------
    index : int or None
        The replicate index that failed (``None`` when a worker process died
        without reporting one).
    chunk : int
        Its chunk number.
    error_type, error_message : str
        Type name and message of the original exception.
    worker_traceback : str
        The traceback formatted in the worker (also attached as a note).
    """

    def __init__(self, message: str, *, index: int | None, chunk: int, error_type: str,
                 error_message: str, worker_traceback: str = "") -> None:
        super().__init__(message)
        self.index, self.chunk = index, chunk
        self.error_type, self.error_message = error_type, error_message
        self.worker_traceback = worker_traceback
        if worker_traceback:
            self.add_note(worker_traceback.rstrip())


# ----------------------------------------------------------------------------- arguments
def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool):
        raise InputError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise InputError(f"{name}: must be an integer >= {minimum}, got {value!r}") from None
    if v < minimum:
        raise InputError(f"{name}: must be an integer >= {minimum}, got {v}")
    return v

def _prepare(out: Path, requested: store.Manifest, chunk_size_given: bool) -> store.Manifest:
    """Create the study folder, or check that it holds the same study; return its manifest."""
    existing = store.read_manifest(out)
    if existing is None:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InputError(f"out_dir: {out} exists and is not empty but has no manifest.json; "
                             "use a new or empty folder for a replicate study")
        out.mkdir(parents=True, exist_ok=True)
        store.write_manifest(out, requested)
        return requested
    if not chunk_size_given:
        requested = store.Manifest(**{**requested.__dict__, "chunk_size": existing.chunk_size})
    bad = existing.mismatches(requested)
    if bad:
        raise StudyMismatchError(f"out_dir: {out} holds a different replicate study ("
                                 + "; ".join(bad) + "); use another out_dir, or the same parameters "
                                 "to resume it", tuple(bad))
    return existing

# ----------------------------------------------------------------------------- public API
def run_replicates(task: Task, n_replicates: int, *, seed: int, out_dir: str | os.PathLike,
                   workers: int | None = None, scheduler: Any = None,
                   chunk_size: int | None = None, progress: bool = True,
                   task_version: str | None = None, load: bool = True,
                   on_chunk: Callable[[int, pd.DataFrame], Any] | None = None) -> pd.DataFrame | None:
    """Run ``task`` for ``n_replicates`` replicates and store the results under ``out_dir``.

    Replicate ``i`` calls ``task(rng, i)`` with
    ``rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(n_replicates)[i])``
    (built directly as ``SeedSequence(seed, spawn_key=(i,))``); its rows are
    returned with a ``replicate`` column in front. Results are therefore the
    same whatever ``workers``, ``scheduler`` or ``chunk_size``, and whether or
    not the study was interrupted and resumed.

    Parameters
    ----------
    task : callable
        ``task(rng: numpy.random.Generator, index: int) -> pandas.DataFrame``.
        Must be picklable (a module-level function or a ``functools.partial``
        of one) unless ``workers=1``. Its randomness must come from ``rng`` only.
    n_replicates : int
        Number of replicates, ``>= 1``.
    seed : int
        Root seed, ``>= 0``.
    out_dir : path
        Study folder: a new or empty folder starts a study; a folder holding
        the same study (same seed, ``n_replicates``, ``chunk_size``, task name
        and ``task_version``) is resumed, computing only the missing chunks.
    workers : int, optional
        Local worker processes; default ``os.cpu_count()``. ``1`` runs in this
        process (no pickling, easiest to debug). Not allowed with ``scheduler``.
        The workers end when this process ends, even when it is killed
        (:mod:`failpattern._lifeline`).
    scheduler : str or distributed.Client, optional
        Run on a Dask distributed cluster: a scheduler address
        (``"tcp://host:8786"``; a client is opened and closed here, waiting at
        most :data:`~failpattern.replicate.runners.SCHEDULER_TIMEOUT` seconds for
        the scheduler) or an open ``distributed.Client`` (left open). Chunk files
        are still written by this process.
    chunk_size : int, optional
        Replicates per chunk file, the unit of work and of resumption.
        Default: the folder's value when resuming, else
        :func:`default_chunk_size` (``ceil(n / 50)`` clipped to 1..100).
    progress : bool, default True
        Show progress on stderr (a bar on a terminal, occasional lines otherwise).
    task_version : str, optional
        Recorded in the manifest and checked on resume; change it when the
        task's behaviour (or a ``partial``'s arguments) changes.
    load : bool, default True
        Return the results. ``False`` returns None: a large study's results (tens of millions of
        rows) are then read from ``out_dir`` a chunk at a time
        (:func:`~failpattern.replicate.store.iter_chunks`) instead of held at once.
    on_chunk : callable, optional
        ``on_chunk(chunk, frame)``, called in this process for each chunk this run computes,
        once its file is written, with the rows as they were stored (``frame`` may hold
        categorical columns that the file stores as strings). Chunks found on disk are not
        passed. Lets a caller summarise the results while the workers still compute, instead
        of reading every chunk back afterwards (:func:`~failpattern.replicate.study.replicate_study`
        does). An exception it raises stops the run as a failed write would.

    Returns
    -------
    pandas.DataFrame or None
        All results, as :func:`load_replicates` returns them (None with ``load=False``).

    Raises
    ------
    InputError
        Bad arguments; ``out_dir`` holds another study or unrelated files; the
        task cannot be pickled for processes; ``scheduler`` is not an address,
        or no scheduler answers there in time.
    ReplicateError
        A replicate failed: the message names the replicate index and the
        exception. Chunks finished before are kept; rerun to resume.
    """
    if not callable(task):
        raise InputError(f"task: must be callable as task(rng, index), got {type(task).__name__}")
    n = _int("n_replicates", n_replicates, 1)
    seed = _int("seed", seed, 0)
    size = _int("chunk_size", chunk_size, 1) if chunk_size is not None else default_chunk_size(n)
    if scheduler is not None and workers is not None:
        raise InputError("workers: not used with scheduler (the cluster decides); pass one of them")
    nworkers = _int("workers", workers, 1) if workers is not None else (os.cpu_count() or 1)
    version = None if task_version is None else str(task_version)
    out = Path(out_dir)

    requested = store.Manifest(seed=seed, n_replicates=n, chunk_size=size, task=task_name(task),
                               task_version=version, format=store.default_format(),
                               failpattern_version=__version__)
    manifest = _prepare(out, requested, chunk_size is not None)
    store.remove_temporary(out)
    done = store.completed_chunks(out, manifest)
    todo = [c for c in range(manifest.n_chunks) if c not in done]
    on_disk = sum(b - a for a, b in (store.chunk_bounds(c, n, manifest.chunk_size) for c in done))
    bar = Progress(n, on_disk, enabled=progress)
    sink = Sink(out, manifest, bar, on_chunk)
    try:
        if not todo:
            pass
        elif scheduler is not None:
            run_dask(task, seed, todo, manifest, sink, scheduler)
        elif nworkers == 1:
            run_in_process(task, seed, todo, manifest, sink)
        else:
            run_processes(task, seed, todo, manifest, sink, min(nworkers, len(todo)))
    except BaseException:
        bar.close()
        raise
    if sink.failure is not None:
        chunk, f = sink.failure
        have = len(store.completed_chunks(out, manifest))
        what = (f"replicate {f.index} (chunk {chunk})" if f.index is not None
                else f"chunk {chunk} (worker lost)")
        others = f"; {sink.n_failed - 1} other chunk(s) also failed" if sink.n_failed > 1 else ""
        bar.close()
        raise ReplicateError(
            f"{what} failed: {f.error_type}: {f.error_message}{others}. Stopped; "
            f"{have} of {manifest.n_chunks} chunks are saved in {out}; run again with the same "
            "parameters to resume.", index=f.index, chunk=chunk, error_type=f.error_type,
            error_message=f.error_message, worker_traceback=f.traceback)
    bar.close(f"{n} replicates in {out} ({sink.computed} chunk(s) computed, "
              f"{len(done)} already on disk)")
    return load_replicates(out) if load else None


def load_replicates(out_dir: str | os.PathLike, *, allow_incomplete: bool = False) -> pd.DataFrame:
    """All results of a replicate study folder, in replicate order.

    Parameters
    ----------
    out_dir : path
        Folder written by :func:`run_replicates`.
    allow_incomplete : bool, default False
        Return the chunks present even if some are missing.

    Returns
    -------
    pandas.DataFrame
        ``replicate`` followed by the task's columns; rows ordered by
        replicate, then as the task returned them.

    Raises
    ------
    InputError
        No manifest in ``out_dir``, or chunks are missing (unless
        ``allow_incomplete``).
    """
    out = Path(out_dir)
    manifest = store.read_manifest(out)
    if manifest is None:
        raise InputError(f"out_dir: {out} has no {store.MANIFEST}; not a replicate study folder")
    done = sorted(store.completed_chunks(out, manifest))
    if len(done) < manifest.n_chunks and not allow_incomplete:
        missing = sorted(set(range(manifest.n_chunks)) - set(done))
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise InputError(f"out_dir: {out} is incomplete: {len(missing)} of {manifest.n_chunks} "
                         f"chunks missing ({shown}); run run_replicates again with the same "
                         "parameters to resume, or pass allow_incomplete=True")
    frames = [store.read_chunk(out, c, manifest.format) for c in done]
    nonempty = [f for f in frames if len(f)]
    if nonempty:
        return pd.concat(nonempty, ignore_index=True)
    if frames:
        return frames[0].reset_index(drop=True)
    return pd.DataFrame({"replicate": pd.Series([], dtype=np.int64)})
