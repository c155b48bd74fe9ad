"""Batched replicate kernels (failpattern.stats.batch) against a Python loop over the fit layer.

Part 1: R = 10,000 simulated cohorts of n = 93 (the Ni et al. 2019 cohort size),
two groups, times rounded to 0.1 (ties), about 30% censored. Each task is timed
batched (one call over all replicates) and as a Python loop over the replicates
calling the fit layer (``km_fit`` / ``logrank_fit`` / ``fisher_2x2_p``), the way a
replicate study did it before; the loop includes selecting each replicate's
subgroup rows, which the batch does with its mask. Printed: median wall time per
replicate in microseconds and the ratio loop / batched.

Part 2: per-call overhead of one Kaplan-Meier fit with its median and log-log
confidence limits at n = 93: ``failpattern.stats.fit.km_fit`` beside lifelines'
``KaplanMeierFitter`` (fit, median, ``median_survival_times`` of its band) and
statsmodels' ``SurvfuncRight`` (fit, ``quantile(0.5)``, ``quantile_ci(0.5)``),
all three giving the same median and limits. Median of repeats, ratio reference / ours.

Usage: python benchmarks/bench_batch.py [--repeat N]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load_line, repeat_option, time_python  # noqa: E402

from failpattern.stats.batch import contingency_batch, km_median_batch, logrank_batch  # noqa: E402
from failpattern.stats.fit import fisher_2x2_p, km_fit, logrank_fit  # noqa: E402

R, N = 10_000, 93


def simulate(rng: np.random.Generator, reps: int, n: int):
    group = rng.integers(0, 2, (reps, n))
    event_time = rng.exponential(12.0 * np.where(group == 1, 1.5, 1.0))
    censor_time = rng.exponential(30.0, (reps, n))
    time_ = np.round(np.minimum(event_time, censor_time), 1)
    return time_, (event_time <= censor_time).astype(np.int64), group


def batch_tasks(t, e, g):
    labels = np.array([0, 1])
    counts = np.stack([np.stack([((g == a) & (e == b)).sum(axis=1) for b in (0, 1)], axis=1)
                       for a in (0, 1)], axis=1)  # (R, 2, 2): group x event

    def km_batched():
        for level in (0, 1):
            km_median_batch(t, e, mask=g == level, conf_type="spss")

    def km_loop():
        for r in range(t.shape[0]):
            tr, er, gr = t[r], e[r], g[r]
            for level in (0, 1):
                sel = gr == level
                km_fit(tr[sel], er[sel], conf_type="spss")

    def lr_batched():
        logrank_batch(t, e, g)

    def lr_loop():
        for r in range(t.shape[0]):
            logrank_fit(t[r], e[r], g[r], labels)

    def fisher_batched():
        contingency_batch(counts, method="fisher")

    def fisher_loop():
        for r in range(counts.shape[0]):
            fisher_2x2_p(counts[r])

    return (("KM median + CI, spss, 2 groups", km_batched, km_loop),
            ("log-rank, 2 groups", lr_batched, lr_loop),
            ("Fisher 2x2 (group x event)", fisher_batched, fisher_loop))


def check_agreement(t, e, g) -> float:
    """Largest difference batch vs fit layer on the first 200 replicates (sanity)."""
    worst = 0.0
    med, lo, hi = km_median_batch(t[:200], e[:200], mask=g[:200] == 1, conf_type="spss")
    stat, p = logrank_batch(t[:200], e[:200], g[:200])
    for r in range(200):
        sel = g[r] == 1
        k = km_fit(t[r][sel], e[r][sel], conf_type="spss")
        lr = logrank_fit(t[r], e[r], g[r], np.array([0, 1]))
        for ours, ref in ((med[r], k.median), (lo[r], k.median_ci[0]), (hi[r], k.median_ci[1]),
                          (stat[r], lr.statistic), (p[r], lr.p_value)):
            if not (np.isnan(ours) and np.isnan(ref)):
                worst = max(worst, abs(float(ours) - float(ref)))
    return worst


def per_call(t: np.ndarray, e: np.ndarray, repeat: int) -> None:
    warnings.simplefilter("ignore")  # lifelines' and statsmodels' warnings on S = 0 or 1
    ours = time_python(lambda: km_fit(t, e, conf_type="log-log"), repeat=repeat)
    others = {}
    try:
        from lifelines import KaplanMeierFitter
        from lifelines.utils import median_survival_times

        def life():
            kmf = KaplanMeierFitter().fit(t, e)
            return kmf.median_survival_time_, median_survival_times(kmf.confidence_interval_)
        others["lifelines KaplanMeierFitter"] = time_python(life, repeat=repeat)
    except ImportError:
        others["lifelines KaplanMeierFitter"] = None
    try:
        from statsmodels.duration.survfunc import SurvfuncRight

        def sm():
            fit = SurvfuncRight(t, e)
            return fit.quantile(0.5), fit.quantile_ci(0.5)
        others["statsmodels SurvfuncRight"] = time_python(sm, repeat=repeat)
    except ImportError:
        others["statsmodels SurvfuncRight"] = None
    print(f"\nper-call Kaplan-Meier fit + median + log-log CI, n = {t.size} "
          f"(median of {repeat} calls)")
    print(f"  {'failpattern.stats.fit.km_fit':<30} {ours * 1e6:9.1f} us")
    for name, sec in others.items():
        if sec is None:
            print(f"  {name:<30} not installed")
        else:
            print(f"  {name:<30} {sec * 1e6:9.1f} us  ({sec / ours:5.1f}x km_fit)")


def main() -> None:
    repeat = repeat_option(__doc__, default=3)
    print(load_line())
    rng = np.random.default_rng(20190093)
    t, e, g = simulate(rng, R, N)
    print(f"R = {R} replicates of n = {N}, 2 groups; max |batch - fit layer| on 200 "
          f"replicates: {check_agreement(t, e, g):.2e}")
    print(f"median wall time per replicate over {repeat} runs (loop: 1 run fewer, at least 1)")
    for label, batched, loop in batch_tasks(t, e, g):
        b = time_python(batched, repeat=repeat, warmup=1) / R
        lp = time_python(loop, repeat=max(1, repeat - 1), warmup=0) / R
        print(f"  {label:<32} batched {b * 1e6:8.2f} us | loop over fit layer "
              f"{lp * 1e6:8.2f} us ({lp / b:6.1f}x)")
    one = simulate(np.random.default_rng(93), 1, N)
    per_call(one[0][0], one[1][0], repeat=max(50, 100 * repeat))
    print(load_line())


if __name__ == "__main__":
    main()
