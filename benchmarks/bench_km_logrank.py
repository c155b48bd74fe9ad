"""Kaplan-Meier and log-rank: our median time beside R survival and lifelines.

n = 93 (the size of the Ni et al. 2019 cohort) and n = 100,000 for scaling.
Times are simulated with a seeded Generator: exponential, rounded to 0.1 so
there are ties, with about 30% censoring. Usage: python benchmarks/bench_km_logrank.py
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import have_r, row, time_python, time_r, time_r_batch  # noqa: E402

from failpattern.stats.km import kaplan_meier  # noqa: E402
from failpattern.stats.logrank import logrank  # noqa: E402


def simulate(n: int, rng: np.random.Generator) -> pd.DataFrame:
    group = rng.integers(0, 2, n)
    event_time = rng.exponential(12.0 * np.where(group == 1, 1.5, 1.0))
    censor_time = rng.exponential(30.0, n)
    time = np.round(np.minimum(event_time, censor_time), 1)
    return pd.DataFrame({"time": time, "event": (event_time <= censor_time).astype(int),
                         "group": group})


def lifelines_timers(d: pd.DataFrame):
    try:
        from lifelines import KaplanMeierFitter
        from lifelines.statistics import logrank_test
    except ImportError:
        return None, None
    a, b = d[d.group == 0], d[d.group == 1]

    def km():
        KaplanMeierFitter().fit(d.time, d.event)

    def lr():
        logrank_test(a.time, b.time, a.event, b.event)
    return km, lr


def _time_r(d: pd.DataFrame, setup: str, expr: str, n: int, repeat: int) -> float:
    """R's median time; small n in batches (R's clock has 1 ms resolution)."""
    if n < 1000:
        return time_r_batch(d, setup, expr)
    return time_r(d, setup, expr, repeat=repeat)


def main() -> None:
    rng = np.random.default_rng(20190093)
    r_ok = have_r("survival")
    setup = "library(survival)"
    fit_expr = "survfit(Surv(time, event) ~ 1, data = d, conf.type = 'log-log')"
    km_expr = f"summary({fit_expr})$table"  # survfit + the median and its limits, as ours
    lr_expr = "survdiff(Surv(time, event) ~ group, data = d)"
    warnings.simplefilter("ignore")  # lifelines' deprecation chatter
    for n, repeat in ((93, 200), (100_000, 15)):
        d = simulate(n, rng)
        t, e, g = d.time.to_numpy(), d.event.to_numpy(), d.group.to_numpy()
        km_life, lr_life = lifelines_timers(d)
        r_fit, r_km, r_lr = (_time_r(d, setup, expr, n, repeat) if r_ok else None
                             for expr in (fit_expr, km_expr, lr_expr))
        ours_km = time_python(lambda: kaplan_meier(t, e), repeat=repeat)
        ours_spss = time_python(lambda: kaplan_meier(t, e, conf_type="spss"), repeat=repeat)
        ours_lr = time_python(lambda: logrank(t, e, g), repeat=repeat)
        life_km = time_python(km_life, repeat=repeat) if km_life else None
        life_lr = time_python(lr_life, repeat=repeat) if lr_life else None
        print(row(f"kaplan_meier log-log n={n}", ours_km, R=r_km, R_survfit_only=r_fit,
                  lifelines=life_km))
        print(row(f"kaplan_meier spss n={n}", ours_spss, R=r_km, lifelines=life_km))
        print(row(f"logrank 2 groups n={n}", ours_lr, R=r_lr, lifelines=life_lr))


if __name__ == "__main__":
    main()
