"""Tests of failpattern.stats.twosample against R (tests/reference/twosample.R)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from failpattern.errors import InputError
from failpattern.stats.twosample import TwoSampleResult, two_sample_test
from fixtures import cases, dataset, reference

RTOL = 1e-9
CASES = cases("twosample")


# Dataset cases are rebuilt from the exported CSVs (exactly the numbers R read); the
# fixture's 17-digit copies can come back one ulp off through pandas' CSV parser, which
# would split ties. The toy cases (integers, or distinct decimals) come from the fixture.
FROM_DATASET = {"lung_age_by_sex": ("lung", "age", "sex"),
                "pbc_bili_by_female": ("pbc", "bili", "female")}


def data(case: str) -> tuple[np.ndarray, np.ndarray]:
    if case in FROM_DATASET:
        name, value, group = FROM_DATASET[case]
        frame = dataset(name)
        return frame[value].to_numpy(dtype=float), frame[group].to_numpy()
    return reference("twosample", case, "values"), reference("twosample", case, "group")


def ref(case: str, quantity: str) -> np.ndarray:
    return reference("twosample", case, quantity)


# ------------------------------------------------------------------ R fixtures

def test_fixture_cases_present():
    assert {"lung_age_by_sex", "pbc_bili_by_female", "toy_tied", "toy_small"} <= set(CASES)


@pytest.mark.parametrize("case", sorted(FROM_DATASET))
def test_dataset_cases_are_the_values_r_used(case):
    values, group = data(case)
    np.testing.assert_allclose(values, ref(case, "values"), rtol=1e-15)
    np.testing.assert_array_equal(group, ref(case, "group"))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("continuity, tag", [(False, "mw"), (True, "mw_correct")])
def test_mann_whitney_matches_r(case, continuity, tag):
    values, group = data(case)
    res = two_sample_test(values, group, method="mann-whitney", continuity=continuity)
    assert res.statistic == ref(case, f"{tag}_statistic")[0]  # W is a half-integer: exact
    np.testing.assert_allclose(res.p_value, ref(case, f"{tag}_p")[0], rtol=RTOL)
    assert np.isnan(res.df) and res.continuity is continuity


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method, tag", [("t-test", "student"), ("welch", "welch")])
def test_t_tests_match_r(case, method, tag):
    values, group = data(case)
    res = two_sample_test(values, group, method=method)
    np.testing.assert_allclose(res.statistic, ref(case, f"{tag}_statistic")[0], rtol=RTOL)
    np.testing.assert_allclose(res.df, ref(case, f"{tag}_df")[0], rtol=RTOL)
    np.testing.assert_allclose(res.p_value, ref(case, f"{tag}_p")[0], rtol=RTOL)
    assert np.isnan(res.z)


@pytest.mark.parametrize("case", CASES)
def test_group_summary_matches_r(case):
    values, group = data(case)
    summary = two_sample_test(values, group).summary
    np.testing.assert_array_equal(summary["n"], ref(case, "n"))
    for column in ("median", "q1", "q3", "mean", "sd"):
        np.testing.assert_allclose(summary[column], ref(case, column), rtol=1e-12, err_msg=column)
    np.testing.assert_allclose(summary["iqr"], ref(case, "q3") - ref(case, "q1"), rtol=1e-12)


# ------------------------------------------------------------------ hand-computed

def test_hand_computed_mann_whitney_without_ties():
    # x = 1, 2, 3 all below y = 4, 5: W = 0, mean n1 n2 / 2 = 3, var = n1 n2 (n + 1) / 12 = 3
    res = two_sample_test([1, 2, 3, 4, 5], ["a", "a", "a", "b", "b"])
    assert res.statistic == 0.0
    assert res.z == pytest.approx(-np.sqrt(3.0), rel=1e-14)
    assert res.p_value == pytest.approx(2 * stats.norm.cdf(-np.sqrt(3.0)), rel=1e-12)
    corrected = two_sample_test([1, 2, 3, 4, 5], ["a", "a", "a", "b", "b"], continuity=True)
    assert corrected.z == pytest.approx(-2.5 / np.sqrt(3.0), rel=1e-14)


def test_hand_computed_student_t():
    # means 2 and 5, both variances 1, n = 3 + 3: se = sqrt(1 * (1/3 + 1/3)), t = -3 / se
    res = two_sample_test([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1], method="t-test")
    assert res.statistic == pytest.approx(-3 / np.sqrt(2 / 3), rel=1e-14)
    assert res.df == 4
    welch = two_sample_test([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1], method="welch")
    assert welch.statistic == pytest.approx(res.statistic, rel=1e-14)
    assert welch.df == pytest.approx(4.0, rel=1e-14)  # equal n and variances


def test_matches_scipy_asymptotic_mann_whitney():
    values, group = data("toy_tied")
    x, y = values[group == 0], values[group == 1]
    ours = two_sample_test(values, group)
    theirs = stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=False)
    assert ours.statistic == theirs.statistic
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-12)


# ------------------------------------------------------------------ invariants

samples = st.lists(st.integers(-20, 20), min_size=2, max_size=15)


@settings(max_examples=60, deadline=None)
@given(samples, samples, st.integers(-100, 100))
def test_swap_labels_and_shift(x, y, shift):
    values = np.array(x + y, dtype=float)
    group = np.array(["a"] * len(x) + ["b"] * len(y))
    swapped = np.where(group == "a", "b", "a")
    if np.all(values == values[0]):
        return
    mw = two_sample_test(values, group)
    mw_swapped = two_sample_test(values, swapped)
    assert 0.0 <= mw.p_value <= 1.0
    assert mw_swapped.statistic == len(x) * len(y) - mw.statistic
    assert mw_swapped.p_value == pytest.approx(mw.p_value, rel=1e-12)
    # ranks are unchanged by shifting and by a monotone transform
    assert two_sample_test(values + shift, group).p_value == pytest.approx(mw.p_value, rel=1e-12)
    assert two_sample_test(np.exp(values / 10), group).p_value == pytest.approx(mw.p_value, rel=1e-12)
    for method in ("t-test", "welch"):
        if np.ptp(x) == 0 and np.ptp(y) == 0:
            continue
        t = two_sample_test(values, group, method=method)
        t_swapped = two_sample_test(values, swapped, method=method)
        assert 0.0 <= t.p_value <= 1.0
        assert t_swapped.statistic == pytest.approx(-t.statistic, rel=1e-12, abs=1e-12)
        assert t_swapped.p_value == pytest.approx(t.p_value, rel=1e-9)
        shifted = two_sample_test(values + shift, group, method=method).p_value
        assert shifted == pytest.approx(t.p_value, rel=1e-6, abs=1e-12)


# ------------------------------------------------------------------ result object

def test_result_is_frozen_and_read_only():
    values, group = data("toy_small")
    res = two_sample_test(values, group)
    assert isinstance(res, TwoSampleResult)
    assert res.groups == (1.0, 2.0) and res.n == (4, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.p_value = 0.5
    with pytest.raises(ValueError):
        res.medians[0] = 0.0
    frame = res.to_frame()
    assert frame.loc[0, "p_value"] == res.p_value and frame.loc[0, "n1"] == 4


def test_pandas_input():
    values = pd.Series([3.0, 1.0, 4.0, 1.5, 9.0, 2.6], index=list("uvwxyz"))
    group = pd.Series(["RT", "RT", "RT", "non-RT", "non-RT", "non-RT"], index=list("uvwxyz"))
    res = two_sample_test(values, group, method="welch")
    assert res.groups == ("RT", "non-RT")  # sorted labels: uppercase 'R' < lowercase 'n'
    np.testing.assert_allclose(res.summary["mean"], [8.0 / 3.0, 13.1 / 3.0])


# ------------------------------------------------------------------ validation

def test_nan_values_named_by_position():
    with pytest.raises(InputError, match="values: 2 value") as err:
        two_sample_test([1.0, np.nan, 3.0, np.nan, 5.0], [0, 0, 1, 1, 1])
    assert "position 1" in str(err.value) and "position 3" in str(err.value)
    with pytest.raises(InputError, match="index 'b'"):
        two_sample_test(pd.Series([1.0, np.nan, 2.0, 3.0], index=list("abcd")), [0, 0, 1, 1])
    with pytest.raises(InputError, match="infinite"):
        two_sample_test([1.0, np.inf, 2.0, 3.0], [0, 0, 1, 1])


def test_group_count_errors_list_labels():
    with pytest.raises(InputError, match=r"exactly 2 groups, found 3 \('a', 'b', 'c'\)"):
        two_sample_test([1, 2, 3, 4], ["a", "b", "c", "a"])
    with pytest.raises(InputError, match="at least 2 groups, found 1"):
        two_sample_test([1, 2, 3], ["a", "a", "a"])
    with pytest.raises(InputError, match="group: 1 value"):
        two_sample_test([1, 2, 3], ["a", None, "b"])


def test_other_validation():
    with pytest.raises(InputError, match="same length"):
        two_sample_test([1, 2, 3], ["a", "b"])
    with pytest.raises(InputError, match="not numeric"):
        two_sample_test([1, "x", 3, 4], ["a", "a", "b", "b"])
    with pytest.raises(InputError, match="method"):
        two_sample_test([1, 2, 3, 4], [0, 0, 1, 1], method="wilcoxon")
    with pytest.raises(InputError, match="continuity: applies"):
        two_sample_test([1, 2, 3, 4], [0, 0, 1, 1], method="t-test", continuity=True)
    with pytest.raises(InputError, match="continuity: must be True or False"):
        two_sample_test([1, 2, 3, 4], [0, 0, 1, 1], continuity="yes")
    with pytest.raises(InputError, match="at least 2 observation"):
        two_sample_test([1, 2, 3, 4], [0, 1, 1, 1], method="welch")
    with pytest.raises(InputError, match="3 in all"):
        two_sample_test([1, 2], [0, 1], method="t-test")
    with pytest.raises(InputError, match="tied"):
        two_sample_test([2, 2, 2, 2], [0, 0, 1, 1])
    with pytest.raises(InputError, match="zero variance"):
        two_sample_test([2, 2, 5, 5], [0, 0, 1, 1], method="t-test")
