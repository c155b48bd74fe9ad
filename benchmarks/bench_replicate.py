"""Replicate engine overhead: 10,000 replicates of a trivial task.

The task draws one number and returns a one-row DataFrame, so nearly all of
the time is the engine's: seeding each replicate, concatenating a chunk,
pickling it back from a worker, writing chunk files atomically (Parquet +
fsync), the final read. We print the median wall time per replicate over
three runs for the task alone (seeding and calls, no engine), the engine
in-process (``workers=1``), with two local worker processes (pool start-up
included) and on a Dask ``LocalCluster`` (threads) when distributed is
installed; then the overhead (engine minus task alone; it can be negative
when two workers beat one core) and the ratio. A real replicate (simulate a
cohort of 93, load it, run the plan) takes about 40 ms of CPU, so the overhead
is about 1%.
Usage: python benchmarks/bench_replicate.py
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from statistics import median

import numpy as np
import pandas as pd

from failpattern.replicate import replicate_rng, run_replicates

N = 10_000
SEED = 2019
ROUNDS = 3


def trivial(rng: np.random.Generator, index: int) -> pd.DataFrame:
    return pd.DataFrame({"id": ["x"], "value": [rng.random()]})


def task_only() -> None:
    """The irreducible work: make each replicate's generator and call the task."""
    for i in range(N):
        trivial(replicate_rng(SEED, i), i)


def engine(**kw):
    def run():
        with tempfile.TemporaryDirectory() as tmp:
            run_replicates(trivial, N, seed=SEED, out_dir=tmp, progress=False, **kw)
    return run


def measure(configs: dict) -> dict[str, tuple[float, float]]:
    """Median (wall, this process's CPU) seconds per config over interleaved rounds.

    Rounds run every config once in turn, so a change in machine load hits
    all configs alike; one warm-up round (pool and fork-server start-up) is
    not counted.
    """
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in configs}
    for r in range(ROUNDS + 1):
        for label, fn in configs.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            if r:
                samples[label].append((time.perf_counter() - w0, time.process_time() - c0))
    return {k: (median(w for w, _ in v), median(c for _, c in v)) for k, v in samples.items()}


def main() -> None:
    configs = {"task only (seeding + calls, no engine)": task_only,
               "engine, workers=1, chunk_size=100": engine(workers=1, chunk_size=100),
               "engine, workers=1, chunk_size=1000": engine(workers=1, chunk_size=1000),
               "engine, 2 processes, chunk_size=100": engine(workers=2, chunk_size=100),
               "engine, 2 processes, chunk_size=1000": engine(workers=2, chunk_size=1000)}
    with contextlib.ExitStack() as stack:
        try:
            import distributed
        except ImportError:
            distributed = None
        if distributed is not None:
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None))
            client = stack.enter_context(distributed.Client(cluster, set_as_default=False))
            configs["engine, dask LocalCluster (2 threads), 100"] = engine(scheduler=client,
                                                                           chunk_size=100)
        result = measure(configs)
    base_wall, base_cpu = result["task only (seeding + calls, no engine)"]
    print(f"{N} replicates of a one-row task, median of {ROUNDS} interleaved rounds; per replicate: "
          "wall time, its ratio to the task alone, and the CPU time of this (the calling) process")
    for label, (wall, cpu) in result.items():
        text = (f"{label:<44} wall {wall / N * 1e6:7.1f} us ({wall / base_wall:5.2f}x)   "
                f"caller CPU {cpu / N * 1e6:7.1f} us")
        if "workers=1" in label:  # everything runs here: the CPU difference is the engine's cost
            text += f" (engine overhead {(cpu - base_cpu) / N * 1e6:+.1f} us)"
        print(text)
    if "engine, dask LocalCluster (2 threads), 100" not in result:
        print("dask LocalCluster: n/a (pip install 'dask[distributed]')")


if __name__ == "__main__":
    main()
