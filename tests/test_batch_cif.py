"""Batched cumulative incidence and Gray's test (failpattern.stats.batch_cif) against
the one-cohort public function, row by row.

Seeded cohorts with heavy ties (times rounded to 0 or 1 decimal), n 1-40,
censoring, 2-3 causes, random subgroup masks (empty subgroups included), rows
without events and empty groups; every row must equal cumulative_incidence's
``at`` / ``variance_at`` / ``limits_at`` and ``gray_test`` to 1e-10, NaN exactly
where the one-cohort result is NaN or the one-cohort function raises.
"""

from __future__ import annotations

import numpy as np
import pytest

from failpattern.errors import InputError
from failpattern.stats.batch_cif import cif_at_batch, gray_test_batch
from failpattern.stats.cif import cumulative_incidence

ATOL = 1e-10
SIZES = (1, 2, 3, 5, 8, 13, 21, 30, 40)
TIMES = np.array([0.0, 0.5, 1.0, 2.0, 3.3, 1.5, 6.0, 50.0])


def _cohorts(seed: int, n: int, rows: int = 40, causes: int = 3, groups: int = 3):
    """``rows`` cohorts of ``n``: tied times, censoring, rows without events, random masks."""
    rng = np.random.default_rng(seed)
    decimals = rng.integers(0, 2)
    time = np.round(rng.exponential(2.0, (rows, n)), decimals)
    cause = rng.integers(1, causes + 1, (rows, n))
    cause[rng.random((rows, n)) < rng.uniform(0.1, 0.7, (rows, 1))] = 0
    cause[::7] = 0                                   # no events
    cause[3::8] = np.where(cause[3::8] > 0, 1, 0)    # one cause only
    group = rng.integers(0, groups, (rows, n))
    group[1::5] = 0                                  # one group only
    group[4::6] = np.where(group[4::6] == 1, 2, group[4::6])   # group 1 empty
    group[5::6] = np.minimum(group[5::6], 1)         # last group empty
    mask = rng.random((rows, n)) < rng.uniform(0.3, 1.0, (rows, 1))
    mask[::6] = False                                # empty subgroups
    mask[2::9] = True
    return time, cause, group, mask


def _close(ours, ref) -> float:
    """Largest difference; fails on NaN disagreement or a difference above ATOL."""
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    assert (np.isnan(ours) == np.isnan(ref)).all(), (ours, ref)
    ok = ~np.isnan(ref)
    diff = np.abs(ours[ok] - ref[ok]).max(initial=0.0)
    tolerance = ATOL * np.maximum(1.0, np.abs(ref[ok]))
    assert (np.abs(ours[ok] - ref[ok]) <= tolerance).all(), (ours, ref)
    return float(diff)


def _one_cohort(time, cause, group=None, conf_level=0.95):
    try:
        return cumulative_incidence(time, cause, group=group, conf_level=conf_level)
    except InputError:
        return None


def test_cif_at_batch_equals_cumulative_incidence():
    worst, checked = 0.0, 0
    for seed, n in enumerate(SIZES):
        causes = (1, 2, 3) if seed % 2 else (2, 1)
        level = (0.95, 0.9)[seed % 2]
        time, cause, _, mask = _cohorts(seed, n, causes=2 + seed % 2)
        est, var, lo, hi = cif_at_batch(time, cause, TIMES, mask=mask, causes=causes,
                                        conf_level=level)
        assert est.shape == var.shape == lo.shape == hi.shape == (time.shape[0], TIMES.size,
                                                                  len(causes))
        for r in range(time.shape[0]):
            m = mask[r]
            res = _one_cohort(time[r][m], cause[r][m], conf_level=level) if m.any() else None
            for j, c in enumerate(causes):
                if res is None:
                    ref = [np.full(TIMES.size, np.nan)] * 4
                elif c in res.causes:
                    ref = [res.at(TIMES, cause=c), res.variance_at(TIMES, cause=c),
                           *res.limits_at(TIMES, cause=c)]
                    checked += 1
                else:  # no event of this cause in the row: the estimate is 0 up to the last time
                    zero = np.where(TIMES > time[r][m].max(), np.nan, 0.0)
                    ref = [zero] * 4
                for ours, expected in zip((est, var, lo, hi), ref):
                    worst = max(worst, _close(ours[r, :, j], expected))
    assert checked > 100
    assert worst < ATOL


def test_cif_at_batch_shared_mask_and_one_row():
    time, cause, _, _ = _cohorts(11, 12, rows=6)
    sub = np.arange(12) % 3 != 0
    est, var, _, _ = cif_at_batch(time, cause, [1.0, 2.0], mask=sub, causes=(1,))
    for r in range(6):
        res = _one_cohort(time[r][sub], cause[r][sub])
        if res is not None and 1 in res.causes:
            _close(est[r, :, 0], res.at([1.0, 2.0]))
            _close(var[r, :, 0], res.variance_at([1.0, 2.0]))
    one = cif_at_batch(time[2], cause[2], 2.0, causes=(1,))
    assert one[0].shape == (1, 1, 1)
    empty = cif_at_batch(np.zeros((3, 0)), np.zeros((3, 0)), [1.0])
    assert empty[0].shape == (3, 1, 1) and np.isnan(empty[0]).all()


@pytest.mark.parametrize("rho", [0.0, 1.0])
def test_gray_test_batch_equals_gray_test(rho):
    worst, checked = 0.0, 0
    for seed, n in enumerate(SIZES):
        groups = 2 + seed % 2
        time, cause, group, mask = _cohorts(100 + seed, n, groups=groups)
        for coi in (1, 2):
            stat, p = gray_test_batch(time, cause, group, mask=mask, cause_of_interest=coi,
                                      rho=rho)
            assert stat.shape == p.shape == (time.shape[0],)
            for r in range(time.shape[0]):
                m = mask[r]
                ref = (np.nan, np.nan)
                if m.any():
                    res = _one_cohort(time[r][m], cause[r][m], group[r][m])
                    try:
                        test = res.gray_test(coi, rho)
                        ref = (test.statistic, test.p_value)
                        checked += 1
                    except (InputError, AttributeError):
                        pass
                worst = max(worst, _close(stat[r], ref[0]), _close(p[r], ref[1]))
    assert checked > 50
    assert worst < ATOL


def test_gray_test_batch_shared_group_row():
    time, cause, _, _ = _cohorts(7, 25, rows=8)
    group = np.arange(25) % 3
    stat, p = gray_test_batch(time, cause, group)
    for r in range(8):
        res = _one_cohort(time[r], cause[r], group)
        if res is not None and 1 in res.causes:
            t = res.gray_test(1)
            _close(stat[r], t.statistic)
            _close(p[r], t.p_value)
        else:
            assert np.isnan(stat[r]) and np.isnan(p[r])


def test_bad_arguments():
    time = np.ones((2, 3))
    cause = np.ones((2, 3), dtype=int)
    with pytest.raises(InputError):
        cif_at_batch(time, cause, [1.0], conf_level=1.0)
    with pytest.raises(InputError):
        cif_at_batch(time, cause, [1.0], causes=(1, 1))
    with pytest.raises(InputError):
        cif_at_batch(time, cause, [1.0], causes=(0,))
    with pytest.raises(InputError):
        cif_at_batch(time, cause, [-1.0])
    with pytest.raises(InputError):
        cif_at_batch(time, -cause, [1.0])
    with pytest.raises(InputError):
        cif_at_batch(time, cause[:, :2], [1.0])
    with pytest.raises(InputError):
        gray_test_batch(time, cause, np.zeros(3, dtype=int), rho=np.inf)
    with pytest.raises(InputError):
        gray_test_batch(time, cause, -np.ones(3, dtype=int))
    with pytest.raises(InputError):
        gray_test_batch(time, cause, np.zeros(3, dtype=int), cause_of_interest=0)
