"""Replicate study speed: per-replicate breakdown and 10,000 replicates on local workers.

Prints the median time of each step of one replicate (simulate a 93-patient
cohort to a DataFrame, ``load_cohort``, ``run_plan``) over ``REPEAT`` cohorts,
then the wall time of ``replicate_study(N, workers=WORKERS)`` (pool start-up,
chunk files and the final summary included). Targets: ``load_cohort`` <= 10
ms, the plan <= 25 ms, 10,000 replicates <= 5 minutes on 2 cores.
Usage: python benchmarks/bench_study.py [N] [WORKERS]
"""

from __future__ import annotations

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


def breakdown() -> dict[str, float]:
    card = load_study("ni2019")
    run_plan(load_cohort(simulate(card, seed=0)), card=card)  # warm caches
    steps: dict[str, list[float]] = {"simulate -> DataFrame": [], "load_cohort": [], "run_plan": [],
                                     "one replicate (all three)": []}
    for i in range(REPEAT):
        rng = np.random.default_rng(i)
        t0 = time.perf_counter()
        frame = simulate(card, seed=rng)
        t1 = time.perf_counter()
        cohort = load_cohort(frame)
        t2 = time.perf_counter()
        run_plan(cohort, card=card)
        t3 = time.perf_counter()
        for k, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            steps[k].append(dt)
    return {k: median(v) for k, v in steps.items()}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(f"per replicate, median of {REPEAT} cohorts of 93 patients (one process):")
    for k, v in breakdown().items():
        print(f"  {k:<28} {v * 1e3:8.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = replicate_study(n, seed=2019, out_dir=tmp, workers=workers, progress=True)
        wall = time.perf_counter() - t0
    print(f"{n} replicates, {workers} worker processes: {wall:.1f} s wall "
          f"({wall / n * 1e3:.2f} ms per replicate; {len(result.table)} numbers summarised)")


if __name__ == "__main__":
    main()
