"""Batched Cox fits (failpattern.stats.batch_cox.cox_batch) against a Python loop over coxph_fit.

R = 10,000 simulated cohorts of n = 93 (the Ni et al. 2019 cohort size), p = 1
and p = 5 independent 0/1 covariates, exponential event times with hazard
``exp(x @ beta)`` and exponential censoring (about 30%), times rounded up to
whole months (heavy ties); Breslow ties, as the plan's PFS1 models. Each model is
timed batched (one ``cox_batch`` call over all replicates) and as a Python loop
calling ``failpattern.stats.fit.coxph_fit`` once per replicate, the way a
replicate study fits them one by one (replicates it refuses are caught and
skipped). Printed: the agreement on 200 replicates, the median wall time per
replicate in microseconds and the ratio loop / batched.

Usage: python benchmarks/bench_batch_cox.py [--repeat N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load_line, repeat_option, time_python  # noqa: E402

from failpattern.errors import ConvergenceError  # noqa: E402
from failpattern.stats.batch_cox import cox_batch  # noqa: E402
from failpattern.stats.fit import coxph_fit  # noqa: E402

R, N = 10_000, 93


def simulate(rng: np.random.Generator, reps: int, n: int, p: int):
    X = (rng.random((reps, n, p)) < 0.4).astype(float)
    beta = np.linspace(0.6, -0.4, p)
    event_time = rng.exponential(12.0 * np.exp(-(X @ beta)))
    censor_time = rng.exponential(30.0, (reps, n))
    time = np.ceil(np.minimum(event_time, censor_time))
    event = (event_time <= censor_time).astype(np.int64)
    return X, time, event


def loop(X, time, event):
    out = []
    for r in range(X.shape[0]):
        try:
            out.append(coxph_fit(X[r], time[r], event[r], ties="breslow"))
        except ConvergenceError:
            out.append(None)
    return out


def agreement(X, time, event, rows: int = 200) -> tuple[float, int]:
    res = cox_batch(X[:rows], time[:rows], event[:rows])
    worst, failed = 0.0, 0
    for r, one in enumerate(loop(X[:rows], time[:rows], event[:rows])):
        if one is None:
            assert not res.converged[r]
            failed += 1
            continue
        worst = max(worst, np.abs(res.coef[r] - one.coef).max(), np.abs(res.se[r] - one.se).max(),
                    abs(res.loglik[r] - one.loglik))
    return worst, failed


def main() -> None:
    repeat = repeat_option(__doc__, default=3)
    print(load_line())
    print(f"R = {R:,} replicates of n = {N}, Breslow ties; median wall time per replicate "
          f"over {repeat} runs (loop: 1 run fewer, at least 1)")
    for p in (1, 5):
        X, time, event = simulate(np.random.default_rng(20190093 + p), R, N, p)
        worst, failed = agreement(X, time, event)
        res = cox_batch(X, time, event)
        b = time_python(lambda: cox_batch(X, time, event), repeat=repeat, warmup=1) / R
        lp = time_python(lambda: loop(X, time, event), repeat=max(1, repeat - 1), warmup=0) / R
        print(f"  p = {p}: batched {b * 1e6:8.2f} us | loop over coxph_fit {lp * 1e6:8.2f} us "
              f"({lp / b:5.1f}x) | max |batch - coxph_fit| on 200 replicates {worst:.1e} "
              f"({failed} not estimable) | converged {int(res.converged.sum()):,} of {R:,}, "
              f"mean iterations {res.iterations[res.converged].mean():.2f}")
    print(load_line())


if __name__ == "__main__":
    main()
