"""Batched Fine-Gray fits (failpattern.stats.batch_finegray.finegray_batch) against a Python
loop over finegray_fit.

R = 5,000 simulated cohorts of n = 93 (the Ni et al. 2019 cohort size), p = 1
and p = 5 independent 0/1 covariates, three outcomes: the failure of interest
(hazard ``exp(x @ beta) / 12``), a competing failure (hazard 1/24) and
exponential censoring (mean 40), times rounded up to whole months (heavy
ties); ``variance="stata"``, as the plan's Table 3 models. Each model is timed
batched (one ``finegray_batch`` call over all replicates) and as a Python loop
calling ``failpattern.stats.fit.finegray_fit(finegray_prepare(...))`` once per
replicate, the way a replicate study fits them one by one (replicates it
refuses are caught and skipped). Printed: the agreement on 200 replicates, the
median wall time per replicate in microseconds and the ratio loop / batched.

Usage: python benchmarks/bench_batch_finegray.py [--repeat N]   (default: run once)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load_line, repeat_option, time_python  # noqa: E402

from failpattern.errors import ConvergenceError  # noqa: E402
from failpattern.stats.batch_finegray import finegray_batch  # noqa: E402
from failpattern.stats.fit import finegray_fit, finegray_prepare  # noqa: E402

R, N = 5_000, 93


def simulate(rng: np.random.Generator, reps: int, n: int, p: int):
    X = (rng.random((reps, n, p)) < 0.4).astype(float)
    beta = np.linspace(0.6, -0.4, p)
    t1 = rng.exponential(12.0 * np.exp(-(X @ beta)))
    t2 = rng.exponential(24.0, (reps, n))
    tc = rng.exponential(40.0, (reps, n))
    time = np.minimum(np.minimum(t1, t2), tc)
    cause = np.select([time == t1, time == t2], [1, 2], 0).astype(np.int64)
    return X, np.ceil(time), cause


def loop(X, time, cause):
    out = []
    for r in range(X.shape[0]):
        try:
            out.append(finegray_fit(finegray_prepare(time[r], cause[r], X[r]), variance="stata"))
        except (ConvergenceError, np.linalg.LinAlgError):
            out.append(None)
    return out


def agreement(X, time, cause, rows: int = 200) -> tuple[float, int, int]:
    res = finegray_batch(X[:rows], time[:rows], cause[:rows], variance="stata")
    worst, failed, disagree = 0.0, 0, 0
    for r, one in enumerate(loop(X[:rows], time[:rows], cause[:rows])):
        if one is None or not res.converged[r]:
            failed += one is None
            disagree += (one is None) == bool(res.converged[r])
            continue
        worst = max(worst, np.abs(res.coef[r] - one.coef).max(), np.abs(res.se[r] - one.se).max(),
                    abs(res.loglik[r] - one.loglik))
    return worst, failed, disagree


def main() -> None:
    repeat = repeat_option(__doc__, default=1)
    print(load_line())
    print(f"R = {R:,} replicates of n = {N}, variance='stata'; median wall time per replicate "
          f"over {repeat} run(s) (loop: 1 run fewer, at least 1)")
    for p in (1, 5):
        X, time, cause = simulate(np.random.default_rng(20190093 + p), R, N, p)
        worst, failed, disagree = agreement(X, time, cause)
        res = finegray_batch(X, time, cause, variance="stata")
        b = time_python(lambda: finegray_batch(X, time, cause, variance="stata"),
                        repeat=repeat, warmup=0) / R
        lp = time_python(lambda: loop(X, time, cause), repeat=max(1, repeat - 1), warmup=0) / R
        print(f"  p = {p}: batched {b * 1e6:8.2f} us | loop over finegray_fit {lp * 1e6:8.2f} us "
              f"({lp / b:5.1f}x) | max |batch - finegray_fit| on 200 replicates {worst:.1e} "
              f"({failed} not estimable, {disagree} decided otherwise) | converged "
              f"{int(res.converged.sum()):,} of {R:,}, mean iterations "
              f"{res.iterations[res.converged].mean():.2f}")
    print(load_line())


if __name__ == "__main__":
    main()
