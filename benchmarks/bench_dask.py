"""Replicate study on a Dask ``LocalCluster``: wall time, and what to expect on N workers.

Why: ``failpattern study --scheduler ADDRESS`` runs the chunks of a replicate study on a Dask
cluster. This starts a ``LocalCluster`` of ``--workers`` worker processes with one thread each
(the cluster's start-up is not timed: a user's cluster is already running), then times
``failpattern study --replicates N --scheduler tcp://...`` in a fresh interpreter per run
(start-up, the chunks, their files written by the calling process, the summary and figures
included), cold (the first study on new workers: their imports and caches) and then warm.

It also prints the model of the time the README gives. The chunks are independent, so the
workers' part is ``replicates x CPU per replicate / workers`` (``CPU per replicate`` that of the
worker task, ``study_chunk_task`` on one chunk: drawing the cohorts and the batched plan,
measured here in this process); the calling process adds a fixed start-up (interpreter,
imports, the summary's and figures' fixed part: the wall time of a study of 100 replicates)
and, per replicate, the work that does not spread over the workers: receiving each chunk,
writing its Parquet file and reading it back for the summary (the caller's CPU per replicate,
from its CPU in the large study less the small one's). So, on W workers,

    wall ~ fixed + replicates x (CPU per replicate / W + caller's CPU per replicate),

an upper estimate (the caller writes chunks while the workers compute). The load average is
printed beside every figure: on a shared machine other processes hold the cores, and wall
times grow with it (CPU times do not).

Usage: python benchmarks/bench_dask.py [--workers 2] [--replicates 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
from _harness import load_line, time_command

from failpattern.replicate.store import replicate_rng
from failpattern.replicate.study import batched_chunk_size, study_chunk_task


def chunk_cpu(n: int, repeat: int = 3) -> float:
    """Median CPU seconds per replicate of the worker task on a chunk of the study's size."""
    size = batched_chunk_size(n)
    study_chunk_task([replicate_rng(1, i) for i in range(20)], np.arange(20))   # warm
    out = []
    for k in range(repeat):
        idx = np.arange(k * size, (k + 1) * size)
        c = time.process_time()
        study_chunk_task([replicate_rng(2019, int(i)) for i in idx], idx)
        out.append((time.process_time() - c) / size)
    return median(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--replicates", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="warm runs (after one cold run)")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    print(load_line())
    cpu = chunk_cpu(args.replicates)
    print(f"worker task (draw + run_plan_batch), chunks of {batched_chunk_size(args.replicates)}: "
          f"CPU {cpu * 1e3:.3f} ms per replicate (median of 3 chunks)")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client, \
            tempfile.TemporaryDirectory() as tmp:
        address = cluster.scheduler_address
        print(f"LocalCluster: {len(client.nthreads())} workers x 1 thread at {address}")

        def command(k: int) -> list[str]:
            return ["-m", "failpattern", "study", "--replicates", str(args.replicates), "--scheduler", address,
                    "--out", str(Path(tmp) / f"run{k}"), "--quiet"]

        print(load_line())
        cold, _, _ = time_command(command, repeat=1, warmup=0)
        print(f"  cold (first study on the new workers): wall {cold:.1f} s")
        small, small_cpu, _ = time_command(
            lambda k: ["-m", "failpattern", "study", "--replicates", "100", "--scheduler", address,
                       "--out", str(Path(tmp) / f"small{k}"), "--quiet"], repeat=args.repeat, warmup=0)
        print(f"  100 replicates (the fixed part): median wall {small:.1f} s, the calling process's CPU "
              f"{small_cpu:.1f} s")
        wall, caller_cpu, best = time_command(lambda k: command(k + 1), repeat=args.repeat, warmup=0)
        print(f"  {args.replicates:,} replicates, warm: median wall {wall:.1f} s (best {best:.1f} s, {args.repeat} "
              f"runs); the calling process's CPU {caller_cpu:.1f} s")
        print(load_line())
        per_caller = max(0.0, caller_cpu - small_cpu) / (args.replicates - 100)
        ideal = args.replicates * cpu / args.workers
        print(f"  model: workers' part {ideal:.1f} s; caller {per_caller * 1e3:.3f} ms CPU per replicate; "
              f"fixed {small:.1f} s; the rest (per-chunk scheduling and waiting) "
              f"{wall - ideal - small - args.replicates * per_caller:.1f} s")
        for n_workers in (args.workers, 8, 32, 128):
            def expect(r: int, w: int = n_workers) -> float:
                return small + r * (cpu / w + per_caller)
            print(f"  expected on {n_workers} workers of this speed: {args.replicates:,} replicates "
                  f"~{expect(args.replicates):.1f} s, 1,000,000 ~{expect(1_000_000):.0f} s")

if __name__ == "__main__":
    main()
