"""Replicate study on the batched plan: per replicate against the per-cohort path, and 10,000 replicates.

Prints, measured in one run, the median wall and CPU time per replicate of the
per-cohort path (``study_task``: simulate a 93-patient cohort to a DataFrame,
``trusted_cohort``, ``run_plan``; median over cohorts) and of the batched path
(``study_chunk_task`` on a chunk of ``CHUNK`` replicates: each replicate's cohort
drawn from its own generator, stacked, ``run_plan_batch``; median over chunks,
divided by the chunk size), their ratio, then the wall time of
``failpattern study --replicates N --workers 2`` (a fresh interpreter per run:
start-up, worker pool, chunk files and the summary included; median of
``--repeat`` runs). Targets: 10,000 replicates in under 10 s on 2 workers,
100,000 (``--large``) in under 2 minutes.
Usage: python benchmarks/bench_plan_batch.py [--repeat 3] [--replicates 10000] [--large]
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
from failpattern.replicate.study import study_chunk_task, study_task

PER_COHORT = 40   # cohorts timed one by one
CHUNK = 500       # replicates per batched chunk (the study's chunk for 10,000 replicates)
CHUNKS = 5        # batched chunks timed


def per_replicate() -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per replicate of each path."""
    study_task(replicate_rng(1, 0), 0)                                       # warm caches
    study_chunk_task([replicate_rng(1, i) for i in range(10)], np.arange(10))
    one = []
    for i in range(PER_COHORT):
        rng = replicate_rng(2019, i)
        w, c = time.perf_counter(), time.process_time()
        study_task(rng, i)
        one.append((time.perf_counter() - w, time.process_time() - c))
    chunks = []
    for k in range(CHUNKS):
        idx = np.arange(k * CHUNK, (k + 1) * CHUNK)
        rngs = [replicate_rng(2019, int(i)) for i in idx]
        w, c = time.perf_counter(), time.process_time()
        study_chunk_task(rngs, idx)
        chunks.append(((time.perf_counter() - w) / CHUNK, (time.process_time() - c) / CHUNK))
    return {"per cohort (study_task)": (median(w for w, _ in one), median(c for _, c in one)),
            f"batched (chunks of {CHUNK})": (median(w for w, _ in chunks), median(c for _, c in chunks))}


def study_wall(n: int, repeat: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return time_command(lambda k: ["-m", "failpattern", "study", "--replicates", str(n), "--workers", "2",
                                       "--out", str(Path(tmp) / f"run{k}"), "--quiet"],
                            repeat=repeat, warmup=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--replicates", type=int, default=10_000)
    parser.add_argument("--large", action="store_true", help="also 100,000 replicates (one run)")
    args = parser.parse_args()
    print(load_line())
    times = per_replicate()
    print("per replicate (one process), median:")
    for k, (wall, cpu) in times.items():
        print(f"  {k:<28} wall {wall * 1e3:8.3f} ms   CPU {cpu * 1e3:8.3f} ms")
    (w1, c1), (wb, cb) = times.values()
    print(f"  ratio per-cohort / batched: wall {w1 / wb:.1f}x, CPU {c1 / cb:.1f}x")
    wall, cpu, best = study_wall(args.replicates, args.repeat)
    print(f"failpattern study --replicates {args.replicates} --workers 2: median wall {wall:.1f} s "
          f"(best {best:.1f} s, CPU {cpu:.1f} s; {args.repeat} runs)")
    if args.large:
        wall, cpu, _ = study_wall(100_000, 1)
        print(f"failpattern study --replicates 100000 --workers 2: wall {wall:.1f} s (CPU {cpu:.1f} s; 1 run)")
    print(load_line())


if __name__ == "__main__":
    main()
