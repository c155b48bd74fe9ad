"""Batched cumulative incidence and Gray's test (failpattern.stats.batch_cif) against a Python loop.

R = 10,000 simulated cohorts of n = 93 (the Ni et al. 2019 cohort size), three
competing causes, two groups, times rounded to 0.1 (ties), about 30% censored.
Two tasks, each timed batched (one call over all replicates) and as a Python loop
over the replicates calling the public one-cohort function, the way a replicate
study does it without the batch:

* CIF of the 3 causes at 12 and 24 months with variance and log(-log) limits:
  ``cif_at_batch`` vs ``cumulative_incidence`` + ``at`` / ``variance_at`` /
  ``limits_at`` for each cause;
* Gray's test of cause 1 between the groups: ``gray_test_batch`` vs
  ``cumulative_incidence(..., group=...)`` + ``gray_test``.

Printed: the largest difference batch vs loop on 200 replicates, then the median
wall time per replicate in microseconds and the ratio loop / batched.

Usage: python benchmarks/bench_batch_cif.py [--repeat N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load_line, repeat_option, time_python  # noqa: E402

from failpattern.stats.batch_cif import cif_at_batch, gray_test_batch  # noqa: E402
from failpattern.stats.cif import cumulative_incidence  # noqa: E402

R, N = 10_000, 93
CAUSES = (1, 2, 3)
TIMES = np.array([12.0, 24.0])


def simulate(rng: np.random.Generator, reps: int, n: int):
    group = rng.integers(0, 2, (reps, n))
    scales = np.array([30.0, 45.0, 60.0])                       # one per cause
    latent = rng.exponential(scales[:, None, None] * np.where(group == 1, 1.4, 1.0),
                             (3, reps, n))
    event_time = latent.min(axis=0)
    censor_time = rng.exponential(35.0, (reps, n))
    cause = np.where(event_time <= censor_time, latent.argmin(axis=0) + 1, 0)
    return np.round(np.minimum(event_time, censor_time), 1), cause, group


def loop_cif(t, c):
    out = np.empty((t.shape[0], 4, TIMES.size, len(CAUSES)))
    for r in range(t.shape[0]):
        res = cumulative_incidence(t[r], c[r])
        for j, cause in enumerate(CAUSES):
            out[r, 0, :, j] = res.at(TIMES, cause=cause)
            out[r, 1, :, j] = res.variance_at(TIMES, cause=cause)
            out[r, 2, :, j], out[r, 3, :, j] = res.limits_at(TIMES, cause=cause)
    return out


def loop_gray(t, c, g):
    out = np.empty((t.shape[0], 2))
    for r in range(t.shape[0]):
        test = cumulative_incidence(t[r], c[r], group=g[r]).gray_test(1)
        out[r] = test.statistic, test.p_value
    return out


def check_agreement(t, c, g) -> float:
    """Largest difference batch vs loop on the first 200 replicates (sanity)."""
    ours = np.stack(cif_at_batch(t[:200], c[:200], TIMES, causes=CAUSES), axis=1)
    ref = loop_cif(t[:200], c[:200])
    gray = np.stack(gray_test_batch(t[:200], c[:200], g[:200]), axis=1)
    gray_ref = loop_gray(t[:200], c[:200], g[:200])
    return float(max(np.nanmax(np.abs(ours - ref)), np.nanmax(np.abs(gray - gray_ref))))


def main() -> None:
    repeat = repeat_option(__doc__, default=3)
    print(load_line())
    rng = np.random.default_rng(20190093)
    t, c, g = simulate(rng, R, N)
    print(f"R = {R} replicates of n = {N}, {len(CAUSES)} causes, 2 groups, times "
          f"{TIMES.tolist()}; censored {np.mean(c == 0):.0%}; max |batch - loop| on 200 "
          f"replicates: {check_agreement(t, c, g):.2e}")
    print(f"median wall time per replicate over {repeat} runs (loop: 1 run fewer, at least 1)")
    tasks = (("CIF 3 causes x 2 times + var + CI",
              lambda: cif_at_batch(t, c, TIMES, causes=CAUSES), lambda: loop_cif(t, c)),
             ("Gray's test, cause 1, 2 groups",
              lambda: gray_test_batch(t, c, g), lambda: loop_gray(t, c, g)))
    for label, batched, loop in tasks:
        b = time_python(batched, repeat=repeat, warmup=1) / R
        lp = time_python(loop, repeat=max(1, repeat - 1), warmup=0) / R
        print(f"  {label:<34} batched {b * 1e6:8.2f} us | loop over cumulative_incidence "
              f"{lp * 1e6:8.2f} us ({lp / b:6.1f}x)")
    print(load_line())


if __name__ == "__main__":
    main()
