"""Counting-process Cox: failpattern.stats.cox(..., entry=) against R coxph(Surv(start, stop, event))
and lifelines CoxTimeVaryingFitter (when installed).

Data: a seeded ``np.random.Generator`` simulates subjects followed for up to 5
years (whole days, so event times tie), each with a baseline covariate ``x`` and
a time-varying treatment indicator ``z`` that switches on at a random day: a
subject whose switch comes before the end of follow-up has two (start, stop]
rows (``z = 0`` then ``z = 1``), else one. Subjects are added until there are
``n`` rows (n = 100,000 rows is about 50,000 subjects). All fit the Efron model;
R and ours converge to a 1e-12 relative change in the log partial likelihood.

R is timed in one ``Rscript`` call for all sizes (``system.time`` around each
fit, R's start-up and CSV reading excluded); medians over ``--repeat`` fits.
Ours is also timed at 25k, 50k and 100k rows: the per-iteration cost is two
sorts done once and cumulative sums, O(n log n), so the time should about
double with n. No timing is asserted anywhere in the tests.
Usage: python benchmarks/bench_cox_counting.py [--repeat 5]
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd

from _harness import have_r, load_line, repeat_option
from failpattern.stats.cox import cox

SIZES = (25_000, 50_000, 100_000)
BETA_X, BETA_Z = 0.5, -0.4


def simulate(n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n_rows`` (start, stop] rows of subjects with a treatment switching on mid follow-up."""
    m = n_rows                                      # more subjects than needed; cut below
    x = rng.normal(size=m)
    switch = np.ceil(rng.uniform(1, 240, m))        # day treatment starts
    base = 1.0 / 1500.0 * np.exp(BETA_X * x)
    # event time of a piecewise-constant hazard: base before the switch, base e^bz after
    e1 = rng.exponential(1.0 / base)
    after = switch + rng.exponential(1.0 / (base * np.exp(BETA_Z)))
    event_time = np.where(e1 <= switch, e1, after)
    censor = rng.uniform(365, 1826, m)
    end = np.ceil(np.minimum(event_time, censor))   # whole days: ties
    event = (event_time <= censor).astype(np.int64)
    two = switch < end
    rows = np.where(two, 2, 1)
    keep = np.searchsorted(np.cumsum(rows), n_rows, side="left") + 1
    x, switch, end, event, two = x[:keep], switch[:keep], end[:keep], event[:keep], two[:keep]
    ids = np.arange(keep)
    first = pd.DataFrame({"id": ids, "start": 0.0, "stop": np.where(two, switch, end),
                          "event": np.where(two, 0, event), "x": x, "z": 0})
    second = pd.DataFrame({"id": ids[two], "start": switch[two], "stop": end[two],
                           "event": event[two], "x": x[two], "z": 1})
    data = pd.concat([first, second], ignore_index=True).iloc[:n_rows]
    return data.sort_values(["id", "start"], ignore_index=True)


def ours(data: pd.DataFrame, repeat: int) -> tuple[float, np.ndarray]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fit = cox(data, duration="stop", event="event", covariates=["x", "z"], entry="start")
        times.append(time.perf_counter() - t0)
    return median(times), fit.coef


def r_times(frames: dict[int, pd.DataFrame], repeat: int) -> dict[int, tuple[float, np.ndarray]]:
    """Median elapsed seconds of coxph per size, and R's coefficients, from one Rscript call."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for n, frame in frames.items():
            paths[n] = Path(tmp) / f"d{n}.csv"
            frame.to_csv(paths[n], index=False)
        lines = ["suppressPackageStartupMessages(library(survival))",
                 "ctrl <- coxph.control(eps = 1e-12, iter.max = 100)"]
        for n, path in paths.items():
            lines += [f'd <- read.csv("{path.as_posix()}")',
                      "f <- coxph(Surv(start, stop, event) ~ x + z, data = d, control = ctrl)",
                      (f"s <- replicate({repeat}, system.time(coxph(Surv(start, stop, event) ~ "
                       "x + z, data = d, control = ctrl))[['elapsed']])"),
                      f'cat("{n}", median(s), sprintf("%.17g", coef(f)), "\\n")']
        out = subprocess.run(["Rscript", "-e", "\n".join(lines)], capture_output=True,
                             text=True, timeout=3600, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"R failed: {out.stderr.strip()}")
    result = {}
    for line in out.stdout.strip().splitlines():
        n, t, *coef = line.split()
        result[int(n)] = (float(t), np.array([float(c) for c in coef]))
    return result


def lifelines_time(data: pd.DataFrame, repeat: int) -> float | None:
    try:
        from lifelines import CoxTimeVaryingFitter
    except ImportError:
        return None
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            CoxTimeVaryingFitter().fit(data[["id", "start", "stop", "event", "x", "z"]],
                                       id_col="id", event_col="event", start_col="start",
                                       stop_col="stop")
        times.append(time.perf_counter() - t0)
    return median(times)


def main() -> None:
    repeat = repeat_option(__doc__)
    rng = np.random.default_rng(20261207)
    frames = {n: simulate(n, rng) for n in SIZES}
    print(load_line())
    for n, frame in frames.items():
        print(f"n = {n:,} rows: {frame['id'].nunique():,} subjects, "
              f"{int(frame['event'].sum()):,} events, "
              f"{frame.loc[frame['event'] == 1, 'stop'].nunique():,} distinct event times")
    r = r_times(frames, repeat) if have_r("survival") else {}
    mine = {}
    for n, frame in frames.items():
        t, coef = ours(frame, repeat)
        mine[n] = t
        line = f"n = {n:>7,}  ours {t * 1e3:9.1f} ms"
        if n in r:
            rt, rcoef = r[n]
            gap = float(np.max(np.abs(coef - rcoef) / np.abs(rcoef)))
            line += f" | R coxph {rt * 1e3:9.1f} ms ({rt / t:5.2f}x ours) | coef rel. diff {gap:.1e}"
        else:
            line += " | R n/a"
        lt = lifelines_time(frame, repeat) if n == SIZES[-1] else None
        if n == SIZES[-1]:
            line += (" | lifelines n/a (not installed)" if lt is None
                     else f" | lifelines {lt * 1e3:9.1f} ms ({lt / t:5.2f}x ours)")
        print(line)
    sizes = np.array(SIZES, float)
    slope = np.polyfit(np.log(sizes), np.log([mine[n] for n in SIZES]), 1)[0]
    print(f"ours: time ratio 50k/25k {mine[50_000] / mine[25_000]:.2f}, "
          f"100k/50k {mine[100_000] / mine[50_000]:.2f}; log-log slope {slope:.2f} "
          "(1 = linear; n log n is slightly above 1)")


if __name__ == "__main__":
    main()
