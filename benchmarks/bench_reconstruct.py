"""The reconstruction (simulate/reconstruct): count skeleton, one search, targets met, CPU time.

Prints, over a few seeds: the CP-SAT count skeleton's CPU time; one batched
evaluation of candidate cohorts per cohort (latent times, assembly and the
batched plan); and a whole reconstruction at its default budget (CPU seconds, the
canonical skeleton's solve included, as in a fresh process;
targets met as printed out of the targets, by kind), beside the shipped exact-mode
cohort judged the same way. Clinical plausibility (cohort.check_clinical) of each
reconstruction is printed too. No timing is asserted.
Usage: python benchmarks/bench_reconstruct.py [--quick]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd

from failpattern.cohort import check_clinical, load_cohort
from failpattern.simulate.reconstruct.counts import _CACHE, solve_counts
from failpattern.simulate.reconstruct.run import reconstruct
from failpattern.simulate.reconstruct.targets import distances, targets_for
from failpattern.study import load_study, run_plan

QUICK = "--quick" in sys.argv
CARD = load_study("ni2019")
TARGETS = targets_for(CARD)
ROOT = Path(__file__).resolve().parents[1]


def met_by_kind(frame: pd.DataFrame) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = run_plan(load_cohort(frame), card=CARD)
    d = distances(TARGETS, TARGETS.values_of(plan.values))
    t = TARGETS.table.assign(met=d == 0)
    out = t.groupby("kind").met.agg(lambda s: f"{s.sum()}/{s.size}")
    out["all"] = f"{int(t.met.sum())}/{len(t)}"
    return out


def main() -> None:
    seeds = (1,) if QUICK else (1, 2, 3)
    cpu = []
    for s in seeds:
        t0 = time.process_time()
        solve_counts(CARD, np.random.default_rng(s))
        cpu.append(time.process_time() - t0)
    print(f"count skeleton (CP-SAT), CPU s per solve: median {median(cpu):.2f} over {len(cpu)} seeds "
          "(the first also builds the model and solves the canonical skeleton)")
    rows = {}
    for s in seeds:
        _CACHE.clear()  # each reconstruction pays for the model and canonical skeleton, as in a fresh process
        t0, w0 = time.process_time(), time.perf_counter()
        r = reconstruct(CARD, np.random.default_rng(s))
        c, w = time.process_time() - t0, time.perf_counter() - w0
        evaluations = r.evaluations
        violations = len(check_clinical(r.frame, CARD))
        rows[f"seed {s}"] = met_by_kind(r.frame)
        print(f"reconstruction seed {s}: {c:.1f} s CPU ({w:.1f} s wall), {r.targets_met}/{r.n_targets} targets met, "
              f"loss {r.loss:.1f}, about {c / evaluations * 1e3:.2f} ms CPU per candidate cohort, "
              f"{violations} clinical-rule violations")
    path = ROOT / "data" / "synthetic" / "ni2019_exact.csv"
    if path.exists():  # the exact-mode cohort, for comparison, while it ships
        shipped = pd.read_csv(path)
        rows["shipped exact cohort"] = met_by_kind(shipped)
        print(f"shipped exact cohort: {len(check_clinical(shipped, CARD))} clinical-rule violations")
    print("\ntargets met as printed, by kind")
    print(pd.DataFrame(rows).to_string())


if __name__ == "__main__":
    main()
