"""Fine-Gray with time-varying effects against cmprsk::crr(..., cov2 =, tf =)
(fixture finegray_tv.csv) and a literal O(n^2) version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from finegray_literal import literal_crr
from fixtures import dataset, reference
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from failpattern.errors import ConvergenceError, InputError
from failpattern.stats import _finegray_kernel as kernel
from failpattern.stats.finegray import fine_gray, fine_gray_fit


def _pbc() -> pd.DataFrame:
    d = dataset("pbc").copy()
    d["log_bili"] = np.log(d["bili"])
    return d


def _mgus() -> pd.DataFrame:
    return dataset("mgus2").dropna(subset=["time", "cause", "age", "male", "mspike"])


def _step(t):
    return (t > np.median(t)).astype(float)


# case: data, cause column, cause of interest, covariates, time_varying, cengroup, R's names
CASES = {
    "mgus2_death_logt": (_mgus, "cause", 2, ["age"], {"male": np.log}, None,
                         ("age", "male*tf1")),
    "pbc_death_step": (_pbc, "status", 2, ["log_bili"], {"age": _step}, None,
                       ("log_bili", "age*tf1")),
    "pbc_death_two_cengroup": (_pbc, "status", 2, ["age", "log_bili"],
                               {"log_bili": np.log, "albumin": lambda t: (t > 1500) * 1.0},
                               "female", ("age", "log_bili", "log_bili*tf1", "albumin*tf2")),
    "pbc_transplant_cov2only": (_pbc, "status", 1, [], {"age": np.log}, None, ("age*tf1",)),
}


def _fit(case: str, **kw):
    load, cause, coi, cov, tv, cg, _ = CASES[case]
    return fine_gray(load(), duration="time", cause=cause, covariates=cov, cause_of_interest=coi,
                     time_varying=tv, cengroup=cg, **kw)


def _rel(ours, ref) -> float:
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    return float(np.max(np.abs(ours - ref) / np.abs(ref)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_crr_cov2_tf(case):
    res = _fit(case)
    p = len(res.names)
    assert res.names == CASES[case][-1]             # crr's printed names
    assert res.time_varying == tuple(n for n in res.names if "*tf" in n)
    # the fixture's crr fits are polished to |U| < 1e-12 |loglik| with crr's own score and
    # information (crr's line search stalls at |U| ~ 5e-7 on the cengroup case)
    assert reference("finegray_tv", case, "converged")[0] == 1
    tol = 1e-9
    assert _rel(res.coef, reference("finegray_tv", case, "coef")) < tol
    assert _rel(res.se, reference("finegray_tv", case, "se")) < tol
    ref_var = reference("finegray_tv", case, "var").reshape(p, p, order="F")
    np.testing.assert_allclose(res.covariance, ref_var, rtol=tol)
    ref_inf = reference("finegray_tv", case, "inf").reshape(p, p, order="F")
    np.testing.assert_allclose(res.information, ref_inf, rtol=tol)
    assert res.loglik == pytest.approx(reference("finegray_tv", case, "loglik")[0], rel=1e-12)
    assert res.loglik_null == pytest.approx(reference("finegray_tv", case, "loglik_null")[0],
                                            rel=1e-12)
    assert res.n == reference("finegray_tv", case, "n")[0]


def test_time_functions_see_crr_uftime():
    seen = {}

    def spy(t):
        seen["t"] = t
        return np.log(t)

    _fit("mgus2_death_logt")
    load, cause, coi, cov, _, _, _ = CASES["mgus2_death_logt"]
    fine_gray(load(), duration="time", cause=cause, covariates=cov, cause_of_interest=coi,
              time_varying={"male": spy})
    np.testing.assert_array_equal(seen["t"], reference("finegray_tv", "mgus2_death_logt",
                                                       "uftime"))


def test_fit_layer_cov2_tf_equals_mapping():
    d = _pbc()
    res = _fit("pbc_death_two_cengroup")
    arr = fine_gray_fit(d[["age", "log_bili"]].to_numpy(float), d["time"].to_numpy(float),
                        d["status"].to_numpy(), cause_of_interest=2,
                        cengroup=d["female"].to_numpy(),
                        cov2=d[["log_bili", "albumin"]].to_numpy(float),
                        tf=lambda t: np.column_stack([np.log(t), t > 1500]))
    assert arr.names == ("x0", "x1", "x2*tf1", "x3*tf2")
    np.testing.assert_array_equal(arr.coef, res.coef)
    np.testing.assert_array_equal(arr.covariance, res.covariance)


def test_constant_time_function_is_the_fixed_effect():
    # tf = 1: the same model as the covariate in cov1; tf = 2: half the coefficient
    d = _pbc()
    kw = dict(duration="time", cause="status", cause_of_interest=2)
    fixed = fine_gray(d, covariates=["log_bili", "age"], **kw)
    for c in (1.0, 2.0):
        tv = fine_gray(d, covariates=["log_bili"],
                       time_varying={"age": lambda t, c=c: np.full(t.size, c)}, **kw)
        np.testing.assert_allclose(tv.coef * [1, c], fixed.coef, rtol=1e-10)
        np.testing.assert_allclose(tv.se * [1, c], fixed.se, rtol=1e-10)
        assert tv.loglik == pytest.approx(fixed.loglik, rel=1e-13)
    assert fixed.time_varying == ()


def test_default_path_untouched_by_time_varying_none():
    d = _pbc()
    kw = dict(duration="time", cause="status", covariates=["age", "log_bili"], cause_of_interest=2)
    a = fine_gray(d, **kw)
    b = fine_gray(d, **kw, time_varying=None)
    c = fine_gray(d, **kw, time_varying={})
    for r in (b, c):
        np.testing.assert_array_equal(r.coef, a.coef)
        np.testing.assert_array_equal(r.covariance, a.covariance)


# ------------------------------------------------------------------ literal O(n^2) version

def _naive_tv(time, cause, X, X2, tf, beta):
    """crr's definitions with explicit risk sets (tests/finegray_literal.py), covariates [X, X2 * tf(t)]
    at failure time t."""
    uft = np.unique(time[cause == 1])
    T = np.asarray(tf(uft), float).reshape(uft.size, -1)
    return literal_crr(time, cause, lambda t: np.concatenate([X, X2 * T[np.searchsorted(uft, t)]], axis=1), beta)


@st.composite
def _data(draw, max_n=16):
    n = draw(st.integers(3, max_n))
    p1 = draw(st.integers(0, 2))
    p2 = draw(st.integers(1, 2))
    time = np.array(draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)), float)
    cause = np.array(draw(st.lists(st.sampled_from([0, 1, 1, 2]), min_size=n, max_size=n)))
    assume((cause == 1).any())
    vals = draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=n * (p1 + p2),
                         max_size=n * (p1 + p2)))
    X = np.array(vals).reshape(n, p1 + p2)
    beta = np.array(draw(st.lists(st.floats(-1, 1), min_size=p1 + p2, max_size=p1 + p2)))
    return time, cause, X[:, :p1], X[:, p1:], beta


def _tf(t):
    return np.column_stack([np.sqrt(t) - 1.0, (t > 3) * 1.5 - 0.5])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_data())
def test_time_varying_equals_quadratic(data):
    time, cause, X, X2, beta = data
    k = X2.shape[1]
    uft = np.unique(time[cause == 1])
    prep = kernel.prepare_time_varying(time, cause, X, X2, _tf(uft)[:, :k], 1)
    ev = kernel.evaluate(prep, beta)
    resid = kernel.influence(prep, ev)
    ll, score, info, ref_meat = _naive_tv(time, cause, X, X2, lambda t: _tf(t)[:, :k], beta)
    assert ev.loglik == pytest.approx(ll, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(ev.score, score, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ev.information, info, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(resid.T @ resid, ref_meat, rtol=1e-8, atol=1e-9)


def test_small_blocks_equal_one_block(monkeypatch):
    # the block size (failure times per block) changes nothing but rounding
    res = _fit("pbc_death_two_cengroup")
    monkeypatch.setattr(kernel, "_TV_CELLS", 1)
    small = _fit("pbc_death_two_cengroup")
    np.testing.assert_allclose(small.coef, res.coef, rtol=1e-12)
    np.testing.assert_allclose(small.covariance, res.covariance, rtol=1e-11)


# ------------------------------------------------------------------ errors

def test_input_errors():
    d = _pbc()
    kw = dict(duration="time", cause="status", covariates=["age"], cause_of_interest=2)
    with pytest.raises(InputError, match="time_varying: column 'nope' is not in data"):
        fine_gray(d, **kw, time_varying={"nope": np.log})
    with pytest.raises(InputError, match="mapping"):
        fine_gray(d, **kw, time_varying=[("log_bili", np.log)])
    with pytest.raises(InputError, match="callable"):
        fine_gray(d, **kw, time_varying={"log_bili": "log"})
    with pytest.raises(InputError, match=r"shape \(5,\)"):
        fine_gray(d, **kw, time_varying={"log_bili": lambda t: t[:5]})
    with pytest.raises(InputError, match=r"shape .*2\)"):
        fine_gray(d, **kw, time_varying={"log_bili": lambda t: np.column_stack([t, t])})
    with pytest.raises(InputError, match="missing or infinite"):
        fine_gray(d, **kw, time_varying={"log_bili": lambda t: np.where(t > 1000, np.nan, t)})
    with pytest.raises(InputError, match="not numbers"):
        fine_gray(d, **kw, time_varying={"log_bili": lambda t: ["a"] * t.size})
    with pytest.raises(InputError, match="at least one covariate"):
        fine_gray(d, duration="time", cause="status", covariates=[], cause_of_interest=2)
    holes = d.copy()
    holes.loc[3, "albumin"] = np.nan
    with pytest.raises(InputError, match="albumin"):
        fine_gray(holes, **kw, time_varying={"albumin": np.log})
    X, t, c = d[["age"]].to_numpy(float), d["time"].to_numpy(float), d["status"].to_numpy()
    with pytest.raises(InputError, match="give both"):
        fine_gray_fit(X, t, c, cause_of_interest=2, cov2=X)
    with pytest.raises(InputError, match=r"expected \(\d+, 2\)"):
        fine_gray_fit(X, t, c, cause_of_interest=2, cov2=np.column_stack([X, X]), tf=np.log)


def test_constant_function_of_a_fixed_covariate_is_collinear():
    d = _pbc()
    with pytest.raises(ConvergenceError, match="collinear"):
        fine_gray(d, duration="time", cause="status", covariates=["age"], cause_of_interest=2,
                  time_varying={"age": lambda t: np.ones(t.size)})
