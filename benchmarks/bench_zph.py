"""Proportional-hazards test: our median time beside R's coxph + cox.zph and lifelines.

Ours is ``proportional_hazards_test`` (Cox fit + cox.zph's score test + scaled
Schoenfeld residuals); R's the same two calls; lifelines' ``CoxPHFitter`` fit +
``proportional_hazard_test`` (rank transform). n = 93 (the study's size) and n = 20,000;
three covariates, ties in the times, about 30% censored, seeded. Usage:
python benchmarks/bench_zph.py
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import have_r, row, time_python, time_r, time_r_batch  # noqa: E402

from failpattern import proportional_hazards_test  # noqa: E402


def simulate(n: int, rng: np.random.Generator) -> pd.DataFrame:
    x = rng.normal(size=(n, 3))
    event_time = rng.exponential(12.0 * np.exp(-0.3 * x[:, 0]))
    censor_time = rng.exponential(30.0, n)
    return pd.DataFrame({"time": np.round(np.minimum(event_time, censor_time), 1) + 0.1,
                         "event": (event_time <= censor_time).astype(int),
                         "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2]})


def lifelines_timer(d: pd.DataFrame):
    try:
        from lifelines import CoxPHFitter
        from lifelines.statistics import proportional_hazard_test
    except ImportError:
        return None

    def run():
        fit = CoxPHFitter().fit(d, "time", "event")
        proportional_hazard_test(fit, d, time_transform="rank")
    return run


def main() -> None:
    rng = np.random.default_rng(20190044)
    r_ok = have_r("survival")
    setup = "library(survival)"
    expr = "cox.zph(coxph(Surv(time, event) ~ x1 + x2 + x3, data = d), transform = 'rank')"
    warnings.simplefilter("ignore")
    for n, repeat in ((93, 100), (20_000, 7)):
        d = simulate(n, rng)
        ours = time_python(lambda: proportional_hazards_test(d, duration="time", event="event",
                                                             covariates=["x1", "x2", "x3"],
                                                             transform="rank"), repeat=repeat)
        r = (time_r_batch(d, setup, expr) if n < 1000 else time_r(d, setup, expr, repeat=repeat)) if r_ok \
            else None
        life = lifelines_timer(d)
        life_t = time_python(life, repeat=max(3, repeat // 5)) if life else None
        print(row(f"proportional_hazards_test n={n}", ours, R=r, lifelines=life_t))


if __name__ == "__main__":
    main()
