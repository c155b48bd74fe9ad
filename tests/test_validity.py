"""Statistical validity of the tests and intervals, checked with the replicate machinery.

Data are simulated with a known truth and analysed with the public
:mod:`failpattern.stats` functions, replicate by replicate, through
:func:`~failpattern.replicate.run_replicates` and
:func:`~failpattern.replicate.summarise` (the mean of a 0/1 value is a rate):

* **log-rank, type I error**: two groups with the same exponential hazard
  (about 30% censored), n = 93; the share of replicates with p < 0.05.
* **Cox, coverage**: hazard exp(b1 x1 + b2 x2), x1 binary, x2 normal, true
  (b1, b2) = (log 2, -0.5); the share of 95% intervals of each HR that
  contain the true HR.
* **Fine-Gray, coverage**: the subdistribution model of Fine & Gray (1999,
  JASA 94:496, section 5): P(cause 1 | Z) = 1 - (1 - p)^exp(Z b1) and
  F1(t | Z) = 1 - (1 - p (1 - e^-t))^exp(Z b1); cause 2 given cause 2 is
  exponential with rate exp(Z b2); independent uniform censoring. The true
  SHRs are exp(b1) exactly.

Here with reduced replicate counts (fast); ``benchmarks/bench_validity.py``
runs 10,000 replicates per scenario with n = 93 and 300. The acceptance
bounds are binomial: with ``R`` replicates and nominal rate ``q``, the
observed rate must lie within the central 99.9% of Binomial(R, q) / R
(computed from ``R``, not hand-picked), widened by the allowed bias
(``TOLERANCE``: type I error in [0.04, 0.06], coverage in [0.93, 0.97]).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from failpattern.replicate import run_replicates, summarise
from failpattern.stats import cox, fine_gray, logrank

COX_BETA = (np.log(2.0), -0.5)
FG_BETA1 = (0.5, -0.5)
FG_BETA2 = (-0.5, 0.5)
FG_P = 0.6
#: Allowed distance of the true rate from the nominal one (type I error, coverage).
TOLERANCE = {"logrank_reject": 0.01, "cover": 0.02}
NOMINAL = {"logrank_reject": 0.05, "cover": 0.95}


# ----------------------------------------------------------------------------- simulated data
def _covariates(rng, n):
    return np.column_stack([rng.integers(0, 2, n).astype(float), rng.normal(size=n)])


def null_logrank(rng: np.random.Generator, index: int, *, n: int = 93) -> pd.DataFrame:
    """Two groups, same hazard: is the log-rank p below 0.05?"""
    group = rng.integers(0, 2, n)
    t = rng.exponential(12.0, n)
    c = rng.uniform(0, 40.0, n)
    p = logrank(np.minimum(t, c), (t <= c).astype(int), group).p_value
    return pd.DataFrame({"id": ["logrank_reject", "logrank_p"], "value": [float(p < 0.05), p]})


def cox_coverage(rng: np.random.Generator, index: int, *, n: int = 93) -> pd.DataFrame:
    """Exponential times with hazard exp(x b); does each 95% HR interval cover exp(b)?"""
    x = _covariates(rng, n)
    t = rng.exponential(1.0, n) / (0.1 * np.exp(x @ np.array(COX_BETA)))
    c = rng.uniform(0, 30.0, n)
    d = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "x1": x[:, 0], "x2": x[:, 1]})
    s = cox(d, duration="time", event="event", covariates=["x1", "x2"]).summary
    true = np.exp(COX_BETA)
    cover = (s["hr_lower"].to_numpy() <= true) & (true <= s["hr_upper"].to_numpy())
    return pd.DataFrame({"id": ["cover.x1", "cover.x2", "events"],
                         "value": [float(cover[0]), float(cover[1]), float(d["event"].sum())]})


def finegray_latent(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine & Gray (1999) design, uncensored: (time, cause 1 or 2, covariates)."""
    z = _covariates(rng, n)
    e1 = np.exp(z @ np.array(FG_BETA1))
    p1 = 1.0 - (1.0 - FG_P) ** e1  # P(cause 1 | z)
    cause1 = rng.random(n) < p1
    u = rng.random(n)
    # F1(t | z) = u * p1, solved for t
    t1 = -np.log(1.0 - (1.0 - (1.0 - u * p1) ** (1.0 / e1)) / FG_P)
    t2 = rng.exponential(1.0, n) / np.exp(z @ np.array(FG_BETA2))
    return np.where(cause1, t1, t2), np.where(cause1, 1, 2), z


def finegray_data(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Fine & Gray (1999) design with uniform censoring: cause 1 follows the subdistribution model."""
    t, cause, z = finegray_latent(rng, n)
    cause1 = cause == 1
    c = rng.uniform(0, 4.0, n)
    status = np.where(t <= c, np.where(cause1, 1, 2), 0)
    return pd.DataFrame({"time": np.minimum(t, c), "cause": status, "z1": z[:, 0], "z2": z[:, 1]})


def finegray_coverage(rng: np.random.Generator, index: int, *, n: int = 93) -> pd.DataFrame:
    """Does each 95% SHR interval of cause 1 cover exp(b1)?"""
    d = finegray_data(rng, n)
    s = fine_gray(d, duration="time", cause="cause", covariates=["z1", "z2"]).summary
    true = np.exp(FG_BETA1)
    cover = (s["shr_lower"].to_numpy() <= true) & (true <= s["shr_upper"].to_numpy())
    return pd.DataFrame({"id": ["cover.z1", "cover.z2", "events"],
                         "value": [float(cover[0]), float(cover[1]), float((d["cause"] == 1).sum())]})


SCENARIOS = {
    "logrank_null": null_logrank,
    "cox": cox_coverage,
    "finegray": finegray_coverage,
}


def bounds(kind: str, replicates: int, level: float = 0.999) -> tuple[float, float]:
    """Acceptance interval for an observed rate over ``replicates`` replicates.

    The central ``level`` of Binomial(R, q) / R around the edges of the
    allowed band ``q = nominal -/+ TOLERANCE``.
    """
    q, tol = NOMINAL[kind], TOLERANCE[kind]
    tail = (1 - level) / 2
    low = binom.ppf(tail, replicates, q - tol) / replicates
    high = binom.ppf(1 - tail, replicates, q + tol) / replicates
    return float(low), float(high)


def run_scenario(name: str, replicates: int, n: int, out_dir, *, seed: int = 1999, workers: int | None = 1,
                 progress: bool = False) -> pd.DataFrame:
    """Run one scenario through the replicate engine; return ``summarise`` of its values."""
    task = functools.partial(SCENARIOS[name], n=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        results = run_replicates(task, replicates, seed=seed, out_dir=out_dir, workers=workers,
                                 progress=progress, task_version=f"{name};n={n}")
    return summarise(results).set_index("id")


# ----------------------------------------------------------------------------- tests
R = 400


def test_bounds_come_from_the_replicate_count():
    lo_small, hi_small = bounds("cover", 400)
    lo_big, hi_big = bounds("cover", 10_000)
    assert lo_small < lo_big < 0.93 and 0.97 < hi_big < hi_small
    lo, hi = bounds("logrank_reject", 10_000)
    assert 0.03 < lo < 0.04 and 0.06 < hi < 0.07


def test_finegray_design_has_the_stated_subdistribution():
    """Check the generator itself: the cause-1 cumulative incidence at t follows the formula."""
    rng = np.random.default_rng(5)
    time, cause, z = finegray_latent(rng, 200_000)
    e1 = np.exp(z @ np.array(FG_BETA1))
    for t in (0.3, 1.0, 3.0):
        observed = (cause == 1) & (time <= t)
        expected = 1 - (1 - FG_P * (1 - np.exp(-t))) ** e1
        assert observed.mean() == pytest.approx(expected.mean(), abs=0.004)
    assert (cause == 1).mean() == pytest.approx((1 - (1 - FG_P) ** e1).mean(), abs=0.004)


def test_logrank_type_one_error(tmp_path):
    s = run_scenario("logrank_null", R, 93, tmp_path)
    rate = s.loc["logrank_reject", "mean"]
    lo, hi = bounds("logrank_reject", R)
    assert lo <= rate <= hi, (rate, lo, hi)
    # p-values under the null are uniform: their median is near 0.5
    assert abs(s.loc["logrank_p", "median"] - 0.5) < 0.1


@pytest.mark.parametrize("name, ids", [("cox", ("cover.x1", "cover.x2")),
                                       ("finegray", ("cover.z1", "cover.z2"))])
def test_interval_coverage(tmp_path, name, ids):
    s = run_scenario(name, R, 150, tmp_path)
    lo, hi = bounds("cover", R)
    for id_ in ids:
        assert lo <= s.loc[id_, "mean"] <= hi, (id_, s.loc[id_, "mean"], lo, hi)
