"""Replicate study speed: per-replicate breakdown and 10,000 replicates on local workers.

Prints the median wall and CPU time of each step of one replicate (simulate a
93-patient cohort to a DataFrame in random mode, as the study does,
``load_cohort``, ``run_plan``) over ``REPEAT`` cohorts, then the wall time of
``replicate_study(N, workers=WORKERS)`` (pool start-up, chunk files and the
final summary included). Targets: ``load_cohort`` <= 10 ms, the plan <= 25
ms, 10,000 replicates <= 5 minutes on 2 cores.
Usage: python benchmarks/bench_study.py [N] [WORKERS]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from statistics import median

import numpy as np

from failpattern.cohort import load_cohort
from failpattern.replicate.study import replicate_study
from failpattern.simulate import simulate
from failpattern.study import load_study
from failpattern.study.plan import run_plan

REPEAT = 40


def breakdown() -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each step; CPU time leaves out the time other
    processes hold the core, so it is the steadier number on a shared machine."""
    card = load_study("ni2019")
    run_plan(load_cohort(simulate(card, seed=0)), card=card)  # warm caches
    steps: dict[str, list[tuple[float, float]]] = {
        "simulate -> DataFrame": [], "load_cohort": [], "run_plan": [], "one replicate (all three)": []}
    for i in range(REPEAT):
        rng = np.random.default_rng(i)
        marks = [(time.perf_counter(), time.process_time())]
        frame = simulate(card, seed=rng, mode="random")  # as study_task draws them
        marks.append((time.perf_counter(), time.process_time()))
        cohort = load_cohort(frame)
        marks.append((time.perf_counter(), time.process_time()))
        run_plan(cohort, card=card)
        marks.append((time.perf_counter(), time.process_time()))
        for k, (a, b) in zip(steps, ((0, 1), (1, 2), (2, 3), (0, 3))):
            steps[k].append((marks[b][0] - marks[a][0], marks[b][1] - marks[a][1]))
    return {k: (median(w for w, _ in v), median(c for _, c in v)) for k, v in steps.items()}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(f"per replicate, median of {REPEAT} cohorts of 93 patients (one process):")
    for k, (wall, cpu) in breakdown().items():
        print(f"  {k:<28} wall {wall * 1e3:8.2f} ms   CPU {cpu * 1e3:8.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = replicate_study(n, seed=2019, out_dir=tmp, workers=workers, progress=True)
        wall = time.perf_counter() - t0
    print(f"{n} replicates, {workers} worker processes: {wall:.1f} s wall "
          f"({wall / n * 1e3:.2f} ms per replicate; {len(result.table)} numbers summarised; "
          f"load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
