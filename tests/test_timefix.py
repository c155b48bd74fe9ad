"""R's timefix rule (survival's aeqSurv) in kaplan_meier, logrank and cox
(tests/reference/timefix.R), and the rule itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from failpattern.errors import InputError
from failpattern.stats import cox, kaplan_meier, logrank
from failpattern.stats.timefix import TIMEFIX_TOLERANCE, fix_times
from fixtures import dataset, reference

RTOL = 1e-9
LUNG = ["age", "sex", "ph_ecog"]
BLADDER = ["rx", "number", "size"]
TAGS = {True: "_fix", False: "_nofix"}


def _close(ours, theirs, what: str) -> None:
    ours, theirs = np.atleast_1d(np.asarray(ours, float)), np.asarray(theirs, float)
    assert ours.shape == theirs.shape, what
    err = np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300))
    assert err <= RTOL, f"{what}: relative error {err:.3g}"


# --- the rule ---------------------------------------------------------------------------

def test_rule_merges_rounding_differences_only():
    two = np.sqrt(2.0) ** 2                      # 2 + 4.4e-16
    t = np.array([1.0, 2.0, two, 3.0, 3.0 + 1e-6])
    fixed, entry = fix_times(t)
    assert entry is None
    np.testing.assert_array_equal(fixed, [1.0, 2.0, 2.0, 3.0, 3.0 + 1e-6])


def test_rule_chains_to_smallest_and_is_relative_to_the_mean():
    # a chain of steps each under the tolerance merges into its smallest member
    step = 0.6 * TIMEFIX_TOLERANCE
    t = np.array([5.0, 10.0, 10.0 + 1e-14, 10.0 + 2e-14, 20.0])
    np.testing.assert_array_equal(fix_times(t)[0], [5.0, 10.0, 10.0, 10.0, 20.0])
    small = np.array([0.0, step, 2 * step, 1.0])
    np.testing.assert_array_equal(fix_times(small)[0], [0.0, 0.0, 0.0, 1.0])
    # relative: times ~1e9 apart by 1 (relative 1e-9 < tol) merge
    big = np.array([1e9, 1e9 + 1.0, 2e9])
    np.testing.assert_array_equal(fix_times(big)[0], [1e9, 1e9, 2e9])


def test_rule_returns_inputs_untouched_without_near_ties():
    t = np.array([3.0, 1.0, 2.0, 2.0])
    fixed, _ = fix_times(t)
    assert fixed is t


def test_rule_fixes_both_ends_and_refuses_collapsed_intervals():
    two = np.sqrt(2.0) ** 2
    entry = np.array([0.0, two, 1.0])
    stop = np.array([2.0, 3.0, two])
    new_stop, new_entry = fix_times(stop, entry)
    np.testing.assert_array_equal(new_entry, [0.0, 2.0, 1.0])
    np.testing.assert_array_equal(new_stop, [2.0, 3.0, 2.0])
    with pytest.raises(InputError, match="effective length 0|length 0"):
        fix_times(np.array([two, 5.0]), np.array([2.0, 1.0]))


# --- survival's tiedtime case -----------------------------------------------------------

def _tiedtime():
    time = np.array([1.0, 2.0, np.sqrt(2) ** 2, 2.0, np.sqrt(2) ** 2])
    np.testing.assert_array_equal(time, reference("timefix", "tiedtime", "time"))
    return time, np.ones(5, dtype=int), np.array([1, 1, 1, 2, 2])


@pytest.mark.parametrize("fix", [True, False])
def test_tiedtime_logrank(fix):
    time, event, group = _tiedtime()
    res = logrank(time, event, group, timefix=fix)
    tag = TAGS[fix]
    _close(res.statistic, reference("timefix", "tiedtime", f"logrank_chisq{tag}"), "chisq")
    _close(res.observed, reference("timefix", "tiedtime", f"logrank_observed{tag}"), "obs")
    _close(res.expected, reference("timefix", "tiedtime", f"logrank_expected{tag}"), "exp")


def test_tiedtime_default_is_timefix():
    time, event, group = _tiedtime()
    default = logrank(time, event, group)
    assert default.statistic == pytest.approx(2 / 3, rel=1e-12)   # R's survdiff default
    _close(default.statistic, reference("timefix", "tiedtime", "logrank_chisq_default"), "chisq")
    assert logrank(time, event, group, timefix=False).statistic == pytest.approx(12 / 43,
                                                                                 rel=1e-12)


def _km_quantities(res):
    return {"km_time": res.time, "km_n_risk": res.at_risk, "km_surv": res.survival}


@pytest.mark.parametrize("fix", [True, False])
def test_tiedtime_km_and_cox(fix):
    time, event, group = _tiedtime()
    km = kaplan_meier(time, event, timefix=fix)
    for name, ours in _km_quantities(km).items():
        _close(ours, reference("timefix", "tiedtime", name + TAGS[fix]), name)
    data = pd.DataFrame({"time": time, "status": event, "group": group})
    fit = cox(data, duration="time", event="status", covariates="group", timefix=fix)
    _check_cox(fit, "tiedtime", TAGS[fix])


def _check_cox(fit, case: str, tag: str) -> None:
    _close(fit.coef, reference("timefix", case, "cox_coef" + tag), "coef")
    _close(fit.se, reference("timefix", case, "cox_se" + tag), "se")
    _close([fit.loglik_null, fit.loglik], reference("timefix", case, "cox_loglik" + tag), "ll")
    _close(fit.score_test.statistic, reference("timefix", case, "cox_score" + tag), "score")


# --- follow-up in years from dates: lung, bladder2 ((entry, stop] rows) ------------------

def _lung_years() -> pd.DataFrame:
    lung = dataset("lung").dropna(subset=["time", "event", *LUNG]).reset_index(drop=True)
    d0 = 13.0 * np.arange(1, len(lung) + 1)
    lung["yrs"] = (d0 + lung["time"]) / 365.25 - d0 / 365.25
    np.testing.assert_array_equal(lung["yrs"], reference("timefix", "lung_years", "yrs"))
    return lung


def test_lung_years_has_near_ties():
    lung = _lung_years()
    assert np.unique(lung["yrs"]).size == reference("timefix", "lung_years", "distinct_nofix")[0]
    assert (np.unique(fix_times(lung["yrs"].to_numpy())[0]).size
            == reference("timefix", "lung_years", "distinct_fix")[0])


@pytest.mark.parametrize("fix", [True, False])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_lung_years_cox(fix, ties):
    fit = cox(_lung_years(), duration="yrs", event="event", covariates=LUNG, ties=ties,
              timefix=fix)
    _check_cox(fit, "lung_years", f"_{ties}{TAGS[fix]}")


def test_lung_years_timefix_equals_days():
    # merged, the years carry exactly the ties of the day counts: same fit as in days
    lung = _lung_years()
    years = cox(lung, duration="yrs", event="event", covariates=LUNG)
    days = cox(lung, duration="time", event="event", covariates=LUNG)
    np.testing.assert_allclose(years.coef, days.coef, rtol=1e-10)
    unfixed = cox(lung, duration="yrs", event="event", covariates=LUNG, timefix=False)
    assert np.max(np.abs(unfixed.coef - days.coef)) > 1e-6


@pytest.mark.parametrize("fix", [True, False])
def test_lung_years_km_and_logrank(fix):
    lung = _lung_years()
    km = kaplan_meier(lung["yrs"], lung["event"], conf_type="log", timefix=fix)
    for name, ours in _km_quantities(km).items():
        _close(ours, reference("timefix", "lung_years", name + TAGS[fix]), name)
    res = logrank(lung["yrs"], lung["event"], lung["sex"], timefix=fix)
    _close(res.statistic, reference("timefix", "lung_years", f"logrank_chisq{TAGS[fix]}"), "chisq")
    _close(res.expected, reference("timefix", "lung_years", f"logrank_expected{TAGS[fix]}"), "E")


def _bladder_years() -> pd.DataFrame:
    bl = dataset("bladder2").copy()
    d0 = 17.0 * bl["id"]
    bl["start_y"] = (d0 + bl["start"] * 30.4375) / 365.25 - d0 / 365.25
    bl["stop_y"] = (d0 + bl["stop"] * 30.4375) / 365.25 - d0 / 365.25
    np.testing.assert_array_equal(bl["start_y"], reference("timefix", "bladder2_years", "start_y"))
    np.testing.assert_array_equal(bl["stop_y"], reference("timefix", "bladder2_years", "stop_y"))
    return bl


@pytest.mark.parametrize("fix", [True, False])
def test_counting_process_both_ends(fix):
    bl = _bladder_years()
    fit = cox(bl, duration="stop_y", event="event", covariates=BLADDER, entry="start_y",
              timefix=fix)
    _check_cox(fit, "bladder2_years", TAGS[fix])
    km = kaplan_meier(bl["stop_y"], bl["event"], entry=bl["start_y"], conf_type="log",
                      timefix=fix)
    for name, ours in _km_quantities(km).items():
        _close(ours, reference("timefix", "bladder2_years", name + TAGS[fix]), name)


def test_collapsed_interval_is_an_input_error():
    two = np.sqrt(2.0) ** 2
    data = pd.DataFrame({"t0": [0.0, 2.0, 0.0, 0.0], "t1": [1.0, two, 3.0, 4.0],
                         "e": [1, 1, 0, 1], "x": [0.1, 0.5, 0.3, 0.9]})
    with pytest.raises(InputError, match="timefix"):
        cox(data, duration="t1", event="e", covariates="x", entry="t0")
    with pytest.raises(InputError, match="timefix"):
        kaplan_meier(data["t1"], data["e"], entry=data["t0"])
    fit = cox(data, duration="t1", event="e", covariates="x", entry="t0", timefix=False)
    assert fit.n == 4


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_timefix_must_be_bool(bad):
    time, event, group = _tiedtime()
    with pytest.raises(InputError, match="timefix"):
        logrank(time, event, group, timefix=bad)
    with pytest.raises(InputError, match="timefix"):
        kaplan_meier(time, event, timefix=bad)
