"""Cumulative incidence + Gray's test: ours vs R cmprsk::cuminc vs lifelines.

Data: a seeded ``np.random.Generator``; times are whole months (heavy ties),
causes 0 = censored and 1..3, two groups. Rows:

* ``estimate + Gray (3 causes)``: :func:`cumulative_incidence` (estimates and
  variances for every cause and group) plus :meth:`gray_tests` for all causes,
  which is what one ``cuminc(time, cause, group)`` call computes.
* ``estimate only``: against lifelines ``AalenJohansenFitter``, one fit per
  (group, cause). lifelines cannot handle ties: it jitters tied times
  (randomly, so its curves are not cuminc's), and it has no Gray's test. At
  n = 93 it computes its variance (like ours); at n = 100,000 its variance takes
  several seconds per fit, so it is timed without (``calculate_variance=False``).

Usage: ``python benchmarks/bench_cif.py``. Timings are medians; R is timed
inside R (start-up excluded), batched where calls are fast.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from _harness import have_r, row, time_python, time_r, time_r_batch
from failpattern.stats.cif import cumulative_incidence


def make_data(n: int, rng: np.random.Generator) -> pd.DataFrame:
    group = rng.integers(0, 2, n)
    time = np.ceil(rng.exponential(12.0 * (1 + 0.3 * group)))        # months: many ties
    cause = rng.choice(4, size=n, p=[0.25, 0.3, 0.25, 0.2])
    return pd.DataFrame({"time": time, "cause": cause, "group": group})


def ours(d: pd.DataFrame, test: bool = True):
    t, c, g = d["time"].to_numpy(), d["cause"].to_numpy(), d["group"].to_numpy()

    def run():
        fit = cumulative_incidence(t, c, group=g)
        if test:
            fit.gray_tests()
    return run


def lifelines_fits(d: pd.DataFrame, variance: bool):
    from lifelines import AalenJohansenFitter
    parts = [(d.loc[d["group"] == g, "time"].to_numpy(), d.loc[d["group"] == g, "cause"].to_numpy())
             for g in sorted(d["group"].unique())]
    causes = sorted(c for c in d["cause"].unique() if c != 0)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tied event times ... jittering"
            for t, c in parts:
                for k in causes:
                    AalenJohansenFitter(seed=1, calculate_variance=variance).fit(
                        t, c, event_of_interest=k)
    return run


def main() -> None:
    rng = np.random.default_rng(20190601)
    r_ok = have_r("cmprsk")
    expr = "cuminc(d$time, d$cause, d$group)"
    print(f"cumulative incidence; R cmprsk {'found' if r_ok else 'not found'}")

    small = make_data(93, rng)
    t_both = time_python(ours(small), repeat=300, warmup=20)
    t_est = time_python(ours(small, test=False), repeat=300, warmup=20)
    t_r = time_r_batch(small, "library(cmprsk)", expr, batch=200) if r_ok else None
    t_ll = time_python(lifelines_fits(small, variance=True), repeat=20)
    print(row("n=93 estimate + Gray (3 causes)", t_both, R=t_r))
    print(row("n=93 estimate only (lifelines jitters)", t_est, lifelines=t_ll))

    big = make_data(100_000, rng)
    t_both = time_python(ours(big), repeat=7, warmup=1)
    t_est = time_python(ours(big, test=False), repeat=7, warmup=1)
    t_r = time_r(big, "library(cmprsk)", expr, repeat=3, warmup=1) if r_ok else None
    t_ll = time_python(lifelines_fits(big, variance=False), repeat=3, warmup=1)
    print(row("n=100000 estimate + Gray (3 causes)", t_both, R=t_r))
    print(row("n=100000 estimate (lifelines: no var)", t_est, lifelines=t_ll))


if __name__ == "__main__":
    main()
