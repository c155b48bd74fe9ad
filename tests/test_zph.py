"""Proportional hazards test: R ``cox.zph`` (survival 3.5-3) to 1e-10, validation, invariance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failpattern import proportional_hazards_test
from failpattern.errors import InputError
from tests.fixtures import dataset, reference

LUNG = ["age", "sex", "ph_ecog"]
VETERAN = ["trt", "karno", "age"]
RTOL = 1e-10


def _lung() -> pd.DataFrame:
    return dataset("lung").dropna(subset=["time", "event", *LUNG]).reset_index(drop=True)


def _veteran() -> pd.DataFrame:
    return dataset("veteran")


CASES = {f"lung_{ties}_{tr}": (_lung, LUNG, ties, tr)
         for ties in ("efron", "breslow") for tr in ("km", "rank", "identity")}
CASES["lung_efron_log"] = (_lung, LUNG, "efron", "log")
CASES.update({f"veteran_efron_{tr}": (_veteran, VETERAN, "efron", tr)
              for tr in ("km", "rank", "identity")})
STRATA = {f"lung_strata_efron_{tr}": "sex" for tr in ("km", "rank", "identity")}
STRATA.update({f"veteran_strata_breslow_{tr}": "celltype" for tr in ("km", "identity")})
CASES.update({f"lung_strata_efron_{tr}": (_lung, ["age", "ph_ecog"], "efron", tr)
              for tr in ("km", "rank", "identity")})
CASES.update({f"veteran_strata_breslow_{tr}": (_veteran, VETERAN, "breslow", tr) for tr in ("km", "identity")})


def _run(case):
    make, names, ties, tr = CASES[case]
    return proportional_hazards_test(make(), duration="time", event="event", covariates=names,
                                     ties=ties, transform=tr, strata=STRATA.get(case))


def _rel(ours, theirs):
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    assert ours.shape == theirs.shape
    return float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_r_cox_zph(case):
    res = _run(case)
    names = CASES[case][1]
    summary = res.summary
    assert list(summary.index) == [*names, "GLOBAL"]
    assert _rel(summary["chisq"], reference("zph", case, "chisq")) < RTOL
    assert _rel(summary["df"], reference("zph", case, "df")) == 0
    assert _rel(summary["p"], reference("zph", case, "p")) < RTOL
    resid = res.residuals
    assert list(resid.columns) == ["time", "transformed_time", *names]
    assert _rel(resid["time"], reference("zph", case, "time")) == 0
    assert _rel(resid["transformed_time"], reference("zph", case, "x")) < 1e-12
    for name in names:
        assert _rel(resid[name], reference("zph", case, f"y_{name}")) < RTOL, name


def test_result_is_frozen():
    res = _run("lung_efron_km")
    with pytest.raises(Exception):
        res.chisq[0] = 1.0
    with pytest.raises(Exception):
        res.transform = "rank"
    assert res.n_events == len(res.residuals) == int(_lung()["event"].sum())
    assert res.to_frame().columns[0] == "covariate"
    assert "ProportionalHazardsResult" in repr(res)


@pytest.mark.parametrize("kwargs, match", [
    (dict(transform="spline"), "transform"),
    (dict(ties="exact"), "ties"),
    (dict(covariates=["age", "nope"]), "nope"),
    (dict(covariates=[]), "covariates"),
    (dict(duration="missing_col"), "missing_col"),
])
def test_bad_arguments(kwargs, match):
    args = dict(duration="time", event="event", covariates=LUNG)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        proportional_hazards_test(_lung(), **args)


def test_bad_values():
    lung = _lung()
    holes = lung.copy()
    holes.loc[3, "age"] = np.nan
    with pytest.raises(InputError, match="missing"):
        proportional_hazards_test(holes, duration="time", event="event", covariates=LUNG)
    neg = lung.copy()
    neg.loc[5, "time"] = -1.0
    with pytest.raises(InputError, match="negative"):
        proportional_hazards_test(neg, duration="time", event="event", covariates=LUNG)
    bad_event = lung.copy()
    bad_event.loc[2, "event"] = 2
    with pytest.raises(InputError, match="event"):
        proportional_hazards_test(bad_event, duration="time", event="event", covariates=LUNG)
    none = lung.assign(event=0)
    with pytest.raises(InputError):
        proportional_hazards_test(none, duration="time", event="event", covariates=LUNG)
    zero = lung.copy()
    zero.loc[0, "time"] = 0.0
    with pytest.raises(InputError, match="log"):
        proportional_hazards_test(zero, duration="time", event="event", covariates=LUNG,
                                  transform="log")
    with pytest.raises(InputError, match="DataFrame"):
        proportional_hazards_test(lung.to_dict(), duration="time", event="event",
                                  covariates=LUNG)


def _canonical(resid: pd.DataFrame) -> np.ndarray:
    """Residual rows in an order that does not depend on the input row order."""
    values = resid.to_numpy()
    return values[np.lexsort(values.T[::-1])]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       ties=st.sampled_from(["efron", "breslow"]),
       transform=st.sampled_from(["km", "rank", "identity", "log"]))
def test_row_order_invariance(seed, ties, transform):
    lung = _lung()
    perm = np.random.default_rng(seed).permutation(len(lung))
    kw = dict(duration="time", event="event", covariates=LUNG, ties=ties, transform=transform)
    a = proportional_hazards_test(lung, **kw)
    b = proportional_hazards_test(lung.iloc[perm].reset_index(drop=True), **kw)
    np.testing.assert_allclose(b.summary.to_numpy(), a.summary.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(_canonical(b.residuals), _canonical(a.residuals), rtol=1e-8)


def test_strata_runs_and_matches_unstratified_shape():
    lung = _lung().dropna(subset=["inst"])
    res = proportional_hazards_test(lung, duration="time", event="event", covariates=LUNG,
                                    strata="inst")
    assert res.strata == ("inst",)
    assert res.residuals.shape == (int(lung["event"].sum()), 2 + len(LUNG))
    assert np.isfinite(res.summary.to_numpy()).all()


# --- near-tied times: timefix (as coxph's default, whose merged times cox.zph uses) --------

def _lung_years() -> pd.DataFrame:
    """lung with follow-up in years from "dates", as tests/reference/zph.R and timefix.R:
    equal day counts differ in the last bits."""
    lung = _lung()
    d0 = 13.0 * np.arange(1, len(lung) + 1)
    return lung.assign(yrs=(d0 + lung["time"]) / 365.25 - d0 / 365.25)


YEARS = {"lung_years_efron_km": ("efron", "km", True),
         "lung_years_efron_identity": ("efron", "identity", True),
         "lung_years_breslow_rank": ("breslow", "rank", True),
         "lung_years_efron_km_nofix": ("efron", "km", False),
         "lung_years_efron_identity_nofix": ("efron", "identity", False)}


@pytest.mark.parametrize("case", sorted(YEARS))
def test_near_tied_times_match_r(case):
    ties, tr, fix = YEARS[case]
    lung = _lung_years()
    assert np.unique(lung["yrs"]).size > np.unique(lung["time"]).size   # near ties present
    res = proportional_hazards_test(lung, duration="yrs", event="event", covariates=LUNG,
                                    ties=ties, transform=tr, timefix=fix)
    summary, resid = res.summary, res.residuals
    assert _rel(summary["chisq"], reference("zph", case, "chisq")) < RTOL
    assert _rel(summary["p"], reference("zph", case, "p")) < RTOL
    assert _rel(resid["time"], reference("zph", case, "time")) == 0
    assert _rel(resid["transformed_time"], reference("zph", case, "x")) < 1e-12
    for name in LUNG:
        assert _rel(resid[name], reference("zph", case, f"y_{name}")) < RTOL, name


def test_timefix_years_equal_days():
    # merged, the years carry exactly the ties of the day counts: the same tests as in days
    lung = _lung_years()
    years = proportional_hazards_test(lung, duration="yrs", event="event", covariates=LUNG)
    days = proportional_hazards_test(lung, duration="time", event="event", covariates=LUNG)
    np.testing.assert_allclose(years.summary.to_numpy(), days.summary.to_numpy(), rtol=1e-9)
    unfixed = proportional_hazards_test(lung, duration="yrs", event="event", covariates=LUNG,
                                        timefix=False)
    assert abs(unfixed.chisq[-1] - days.chisq[-1]) > 1e-6 * days.chisq[-1]


def test_timefix_must_be_bool():
    with pytest.raises(InputError, match="timefix"):
        proportional_hazards_test(_lung(), duration="time", event="event", covariates=LUNG,
                                  timefix="yes")
