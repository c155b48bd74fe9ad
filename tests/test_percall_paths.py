"""Fast paths of the validated functions give what the general paths give, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import failpattern as fp
from failpattern.errors import InputError
from failpattern.stats._validate import _one_dimensional
from failpattern.stats.logrank import _quadratic_form
from failpattern.stats.timefix import TIMEFIX_TOLERANCE, fix_times


@pytest.mark.parametrize("series", [
    pd.Series([1.5, None, 2.0], dtype="Float64"), pd.Series([1, None, 2], dtype="Int64"),
    pd.Series([1, 0, 2], dtype="Int64"), pd.Series([True, None, False], dtype="boolean"),
    pd.Series([True, False], dtype="boolean"), pd.Series([1.0, 2.5], dtype="Float64")])
def test_nullable_columns_read_as_numpy_reads_them(series):
    got, want = _one_dimensional(series, "x"), np.asarray(series)
    assert got.dtype == want.dtype
    assert all(a is b or a == b or (pd.isna(a) and pd.isna(b)) for a, b in zip(got, want))


def test_loaded_cohort_columns_give_the_numpy_results():
    d = fp.load_cohort(fp.synthetic_cohort()).data
    t, e, g = d["pfs1_months"], d["pfs1_event"], d["brain_mets"]
    a = fp.logrank(t, e, g)
    b = fp.logrank(t.to_numpy(float), e.to_numpy(np.int64), g.to_numpy(np.int64))
    assert (a.statistic, a.p_value) == (b.statistic, b.p_value)
    with pytest.raises(InputError, match="missing"):
        fp.logrank(pd.Series([1.0, None, 2.0], dtype="Float64"), [1, 0, 1], [0, 1, 1])


def test_two_group_quadratic_form_is_the_solve():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        a = rng.random((2, 2))
        v, d = a @ a.T, rng.normal(size=2)
        want = float(np.linalg.solve(v[1:, 1:], d[1:]) @ d[1:])
        assert _quadratic_form(d, v, np.array([True, True])) == (want, 1)
    # a zero variance goes the general way (the pseudo-inverse: statistic 0), as before
    assert _quadratic_form(np.array([1.0, -1.0]), np.zeros((2, 2)), np.array([True, True])) == (0.0, 1)


def test_fix_times_merges_as_unique_then_diff():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        t = np.round(rng.exponential(10, rng.integers(1, 60)), rng.integers(0, 3))
        if rng.random() < 0.4:
            t = t + rng.choice([0.0, 1e-12, 3e-9], t.size)
        y = np.unique(t)
        dy = np.diff(y)
        tied = (dy <= TIMEFIX_TOLERANCE) | (dy / np.mean(np.abs(y)) <= TIMEFIX_TOLERANCE)
        keep = np.concatenate(([True], ~tied))
        want = y[keep][np.searchsorted(y[keep], t, side="right") - 1] if tied.any() else t
        assert np.array_equal(fix_times(t)[0], want)


def test_cif_result_arrays_are_read_only_and_independent_of_the_inputs():
    t, c = np.array([1.0, 2, 2, 3]), np.array([1, 2, 0, 1])
    r = fp.cumulative_incidence(t, c)
    for name in ("time", "cif", "variance", "lower", "upper", "events", "last_time"):
        assert not getattr(r, name).flags.writeable, name
    t[0], c[0] = 9.0, 2
    assert r.at([0.5, 1, 2.5], cause=1).tolist() == [0.0, 0.25, 0.25]
