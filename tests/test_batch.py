"""Batched kernels (failpattern.stats.batch) against the one-cohort public functions, row by row.

Seeded cohorts with heavy ties (times rounded to 0 or 1 decimal), small n (1-30),
random subgroup masks (empty subgroups included), all-censored rows and empty
groups; every row must equal kaplan_meier / logrank / contingency_test to 1e-10,
NaN exactly where the one-cohort result is NaN or the one-cohort function raises.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failpattern.errors import InputError
from failpattern.stats.batch import contingency_batch, km_median_batch, logrank_batch
from failpattern.stats.contingency import contingency_test
from failpattern.stats.km import kaplan_meier
from failpattern.stats.logrank import logrank

ATOL = 1e-10
SIZES = (1, 2, 3, 5, 8, 13, 21, 30)


def _cohorts(seed: int, n: int, rows: int = 25, k: int = 2):
    """``rows`` cohorts of ``n``: tied times, some rows all censored, random masks."""
    rng = np.random.default_rng(seed)
    decimals = rng.integers(0, 2)
    time = np.round(rng.exponential(2.0, (rows, n)), decimals)
    event = (rng.random((rows, n)) < rng.uniform(0.2, 0.9, (rows, 1))).astype(np.int64)
    event[::7] = 0                                   # all-censored rows
    group = rng.integers(0, k, (rows, n))
    group[1::5] = 0                                  # one group only
    mask = rng.random((rows, n)) < rng.uniform(0.3, 1.0, (rows, 1))
    mask[::6] = False                                # empty subgroups
    mask[2::9] = True
    return time, event, group, mask


def _assert_close(ours, ref, where):
    ours, ref = float(ours), float(ref)
    assert np.isnan(ours) == np.isnan(ref), (where, ours, ref)
    if not np.isnan(ref):
        assert abs(ours - ref) <= ATOL * max(1.0, abs(ref)), (where, ours, ref)


def _worst(ours, ref) -> float:
    return 0.0 if np.isnan(ref) else abs(float(ours) - float(ref))


# ---------------------------------------------------------------- Kaplan-Meier median

@pytest.mark.parametrize("conf_type", ["spss", "log-log", "log", "plain"])
def test_km_median_batch_equals_kaplan_meier(conf_type):
    checked = 0
    for seed, n in enumerate(SIZES):
        time, event, _, mask = _cohorts(seed, n)
        med, lo, hi = km_median_batch(time, event, mask=mask, conf_type=conf_type)
        assert med.shape == lo.shape == hi.shape == (time.shape[0],)
        for r in range(time.shape[0]):
            m = mask[r]
            if not m.any():
                assert np.isnan([med[r], lo[r], hi[r]]).all()
                continue
            ref = kaplan_meier(time[r][m], event[r][m], conf_type=conf_type)
            for ours, theirs in zip((med[r], lo[r], hi[r]), (ref.median, *ref.median_ci)):
                _assert_close(ours, theirs, (conf_type, seed, r))
            checked += 1
    assert checked >= 140


def test_km_median_batch_shared_mask_and_alpha():
    time, event, _, _ = _cohorts(11, 17, rows=30)
    mask = np.arange(17) % 3 != 0
    for conf_type, alpha in (("spss", 0.1), ("log", 0.2), ("spss", 0.05)):
        med, lo, hi = km_median_batch(time, event, mask=mask, conf_type=conf_type, alpha=alpha)
        for r in range(time.shape[0]):
            ref = kaplan_meier(time[r][mask], event[r][mask], conf_type=conf_type, alpha=alpha)
            for ours, theirs in zip((med[r], lo[r], hi[r]), (ref.median, *ref.median_ci)):
                _assert_close(ours, theirs, (conf_type, alpha, r))


def test_km_median_batch_plateau_and_one_row():
    # S sits at exactly 0.5 from t = 2 to 4: R's midpoint (3), SPSS's first time (2)
    t, e = np.array([1.0, 2, 3, 4]), np.array([1, 1, 0, 1])
    for conf_type, expect in (("spss", 2.0), ("log", 3.0)):
        med, lo, hi = km_median_batch(t, e, conf_type=conf_type)
        ref = kaplan_meier(t, e, conf_type=conf_type)
        assert med.shape == (1,) and med[0] == expect
        _assert_close(med[0], ref.median, conf_type)
        _assert_close(lo[0], ref.median_ci[0], conf_type)
        _assert_close(hi[0], ref.median_ci[1], conf_type)


def test_km_median_batch_all_censored_is_nan():
    med, lo, hi = km_median_batch(np.ones((3, 4)), np.zeros((3, 4)))
    assert np.isnan(np.r_[med, lo, hi]).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=12),
       st.sampled_from(["spss", "log-log"]))
def test_km_median_batch_property(rows, conf_type):
    t = np.array([float(a) for a, _ in rows])
    e = np.array([int(b) for _, b in rows])
    med, lo, hi = km_median_batch(np.vstack([t, t[::-1]]), np.vstack([e, e[::-1]]),
                                  conf_type=conf_type)
    ref = kaplan_meier(t, e, conf_type=conf_type)
    for r in range(2):
        for ours, theirs in zip((med[r], lo[r], hi[r]), (ref.median, *ref.median_ci)):
            _assert_close(ours, theirs, (conf_type, r))


# ---------------------------------------------------------------- log-rank

def _logrank_ref(t, e, g):
    try:
        res = logrank(t, e, g)
    except InputError:
        return np.nan, np.nan
    return res.statistic, res.p_value


@pytest.mark.parametrize("k", [2, 3])
def test_logrank_batch_equals_logrank(k):
    checked = nan_rows = 0
    for seed, n in enumerate(SIZES):
        time, event, group, mask = _cohorts(100 + seed, n, k=k)
        stat, p = logrank_batch(time, event, group, mask=mask)
        assert stat.shape == p.shape == (time.shape[0],)
        for r in range(time.shape[0]):
            m = mask[r]
            ref = _logrank_ref(time[r][m], event[r][m], group[r][m])
            _assert_close(stat[r], ref[0], (k, seed, r, "statistic"))
            _assert_close(p[r], ref[1], (k, seed, r, "p"))
            checked += 1
            nan_rows += bool(np.isnan(ref[0]))
    assert checked == 200 and 20 < nan_rows < 150


def test_logrank_batch_group_without_expected_count():
    # group 1 is censored before the only event: E = 0, left out; 0 on 0 df, p = 1 (as R)
    t = np.array([[1.0, 1.0, 2.0, 3.0]])
    e = np.array([[0, 0, 1, 0]])
    g = np.array([1, 1, 0, 0])
    stat, p = logrank_batch(t, e, g)
    ref = logrank(t[0], e[0], g)
    assert (stat[0], p[0]) == (ref.statistic, ref.p_value) == (0.0, 1.0)


def test_logrank_batch_nan_rows():
    t = np.ones((3, 4))
    e = np.array([[0, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]])
    g = np.array([[0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]])
    stat, p = logrank_batch(t, e, g)
    assert np.isnan(stat[:2]).all() and np.isnan(p[:2]).all()
    _assert_close(stat[2], logrank(t[2], e[2], g[2]).statistic, "tied")


@pytest.mark.parametrize("k", [2, 3])
def test_logrank_batch_singular_variance(k):
    # everyone at risk dies at the one event time: V = 0, logrank.py's pseudo-inverse
    # gives 0 on k - 1 df, p = 1; the other rows of the batch are solved as usual
    t = np.array([[5.0] * k + [2.0], [1.0, 2.0, 2.0, 3.0][:k] + [4.0]])
    e = np.array([[1] * k + [0], [1, 1, 1, 0][:k] + [1]])
    g = np.array(list(range(k)) + [1])
    stat, p = logrank_batch(t, e, g)
    for r in range(2):
        ref = logrank(t[r], e[r], g)
        _assert_close(stat[r], ref.statistic, (k, r))
        _assert_close(p[r], ref.p_value, (k, r))
    assert (stat[0], p[0]) == (0.0, 1.0)


def test_batch_no_patients_and_one_row():
    empty = np.ones((3, 0))
    assert np.isnan(np.r_[km_median_batch(empty, empty)]).all()
    assert np.isnan(np.r_[logrank_batch(empty, empty, np.zeros(0, dtype=int))]).all()
    t, e, g = np.array([1.0, 2, 2, 3, 4]), np.array([1, 1, 0, 1, 1]), np.array([0, 1, 0, 1, 0])
    stat, p = logrank_batch(t, e, g)
    assert stat.shape == (1,)
    _assert_close(stat[0], logrank(t, e, g).statistic, "1-D")


# ---------------------------------------------------------------- 2 x 2 tables

@pytest.mark.parametrize("method", ["pearson", "yates", "n-1", "fisher"])
def test_contingency_batch_equals_contingency_test(method):
    rng = np.random.default_rng(7)
    counts = np.concatenate([rng.integers(0, 6, (150, 2, 2)), rng.integers(0, 60, (50, 2, 2))])
    counts[:5, 0, :] = 0                           # empty rows
    p = contingency_batch(counts, method=method)
    assert p.shape == (200,)
    for r in range(counts.shape[0]):
        try:
            ref = contingency_test(counts[r], method=method).p_value
        except InputError:
            ref = np.nan
        _assert_close(p[r], ref, (method, r))


def test_batch_rejects_bad_arguments():
    with pytest.raises(InputError):
        km_median_batch(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(InputError):
        km_median_batch(np.ones((2, 3)), np.ones((2, 3)), conf_type="arcsin")
    with pytest.raises(InputError):
        logrank_batch(np.ones((2, 3)), np.ones((2, 3)), np.zeros(4, dtype=int))
    with pytest.raises(InputError):
        contingency_batch(np.ones((2, 3, 2), dtype=int), method="fisher")
    with pytest.raises(InputError):
        contingency_batch(np.ones((2, 2, 2), dtype=int), method="g")


def test_km_median_batch_several_conventions_from_one_curve():
    """A tuple ``conf_type`` gives each convention's (median, lower, upper), bit for bit as a call each."""
    time, event, _, mask = _cohorts(31, 21, rows=40)
    both = km_median_batch(time, event, mask=mask, conf_type=("spss", "log", "log-log"))
    assert len(both) == 3
    for got, conf in zip(both, ("spss", "log", "log-log")):
        for a, b in zip(got, km_median_batch(time, event, mask=mask, conf_type=conf)):
            assert np.array_equal(a, b, equal_nan=True), conf
    with pytest.raises(InputError):
        km_median_batch(time, event, conf_type=("spss", "nope"))


def test_fisher_log_factorials_are_gammaln():
    from scipy.special import gammaln

    from failpattern.stats.batch import log_factorials

    lf = log_factorials(300)
    assert np.array_equal(lf, gammaln(np.arange(301) + 1.0)) and not lf.flags.writeable
