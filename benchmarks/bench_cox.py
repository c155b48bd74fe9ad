"""Cox regression: failpattern.stats.cox against R coxph and lifelines CoxPHFitter.

Two sizes: n = 93 (the size of the Ni et al. 2019 cohort) and n = 100,000 for
scaling; three covariates, whole-month times (ties) and ~30% censoring from a
seeded ``np.random.Generator``. All three fit the Efron model; R and ours
converge to a 1e-12 relative change in the log partial likelihood (R's
``coxph.control(eps = 1e-12)``), lifelines runs with its defaults.
Usage: python benchmarks/bench_cox.py
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from _harness import have_r, row, time_python, time_r, time_r_batch
from failpattern.stats.cox import cox

COVARIATES = ["age", "male", "stage"]
R_SETUP = "library(survival); ctrl <- coxph.control(eps = 1e-12, iter.max = 100)"
R_EXPR = "coxph(Surv(time, event) ~ age + male + stage, data = d, control = ctrl)"


def simulate(n: int, rng: np.random.Generator) -> pd.DataFrame:
    age = rng.normal(58.0, 10.0, n).round()
    male = rng.integers(0, 2, n)
    stage = rng.integers(1, 5, n)
    hazard = 0.02 * np.exp(0.02 * (age - 58) + 0.3 * male + 0.4 * (stage - 1))
    event_time = rng.exponential(1.0 / hazard)
    censor_time = rng.exponential(1.0 / (0.4 * hazard.mean()), n)
    time = np.ceil(np.minimum(event_time, censor_time))  # months: ties
    event = (event_time <= censor_time).astype(int)
    return pd.DataFrame({"time": time, "event": event, "age": age, "male": male, "stage": stage})


def lifelines_fit(data: pd.DataFrame):
    from lifelines import CoxPHFitter

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            CoxPHFitter().fit(data, duration_col="time", event_col="event")
    return fit


def main() -> None:
    rng = np.random.default_rng(20190093)
    r_ok = have_r("survival")
    for n, repeat in ((93, 200), (100_000, 5)):
        data = simulate(n, rng)
        ours = time_python(lambda: cox(data, duration="time", event="event",
                                       covariates=COVARIATES), repeat=repeat)
        if not r_ok:
            r = None
        elif n < 1000:
            r = time_r_batch(data, R_SETUP, R_EXPR)
        else:
            r = time_r(data, R_SETUP, R_EXPR, repeat=repeat)
        life = time_python(lifelines_fit(data), repeat=max(3, repeat // 10), warmup=1)
        label = f"cox efron n={n:,} ({int(data['event'].sum()):,} events)"
        print(row(label, ours, R=r, lifelines=life))


if __name__ == "__main__":
    main()
