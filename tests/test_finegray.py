"""Fine-Gray regression against cmprsk::crr (fixture finegray.csv) and a literal O(n^2) version."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from finegray_literal import literal_crr
from fixtures import dataset, reference
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from failpattern.errors import ConvergenceError, InputError
from failpattern.stats import _finegray_kernel as kernel
from failpattern.stats.finegray import FineGrayResult, fine_gray, fine_gray_fit

PBC_COV = ["age", "log_bili", "albumin", "edema"]
MGUS_COV = ["age", "male", "mspike"]


def _pbc() -> pd.DataFrame:
    d = dataset("pbc").copy()
    d["log_bili"] = np.log(d["bili"])
    return d


def _pbc_coarse() -> pd.DataFrame:
    d = _pbc()
    d["time"] = np.floor(d["time"] / 1000)  # 0..4: extreme ties, censorings at time 0
    return d


def _mgus() -> pd.DataFrame:
    # crr's na.omit drops rows missing any used column; the same rows here
    return dataset("mgus2").dropna(subset=["time", "cause", *MGUS_COV])


CASES = {
    "pbc_death": (_pbc, PBC_COV, "status", 2),
    "pbc_transplant": (_pbc, PBC_COV, "status", 1),
    "pbc_death_age": (_pbc, ["age"], "status", 2),
    "pbc_coarse": (_pbc_coarse, ["age", "log_bili"], "status", 2),
    "mgus2_progression": (_mgus, MGUS_COV, "cause", 1),
    "mgus2_death": (_mgus, MGUS_COV, "cause", 2),
    "lung_nocompeting": (lambda: dataset("lung"), ["age", "sex"], "event", 1),
}


def _fit(case: str, **kw) -> FineGrayResult:
    load, cov, cause, coi = CASES[case]
    return fine_gray(load(), duration="time", cause=cause, covariates=cov,
                     cause_of_interest=coi, **kw)


def _rel(ours, ref) -> float:
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    return float(np.max(np.abs(ours - ref) / np.abs(ref)))


# ------------------------------------------------------------------ against crr

@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_crr(case):
    assert reference("finegray", case, "converged")[0] == 1
    res = _fit(case)
    s = res.summary
    for q in ("coef", "se", "z", "p"):
        assert _rel(s[q], reference("finegray", case, q)) < 1e-9, q
    p = len(res.names)
    ref_var = reference("finegray", case, "var").reshape(p, p, order="F")
    np.testing.assert_allclose(res.covariance, ref_var, rtol=1e-9)
    assert res.loglik == pytest.approx(reference("finegray", case, "loglik")[0], rel=1e-10)
    assert res.loglik_null == pytest.approx(reference("finegray", case, "loglik_null")[0],
                                            rel=1e-10)
    assert res.n == reference("finegray", case, "n")[0]
    # crr on the covariates as given agrees to 1e-6 even where its line search stopped early
    assert _rel(res.coef, reference("finegray", case, "coef_raw")) < 1e-6
    assert _rel(res.se, reference("finegray", case, "se_raw")) < 1e-6


def test_mgus2_drops_the_rows_crr_drops():
    full = dataset("mgus2")
    assert len(full) - len(_mgus()) == reference("finegray", "mgus2_progression", "n_dropped")[0]
    with pytest.raises(InputError, match="mspike"):
        fine_gray(full, duration="time", cause="cause", covariates=MGUS_COV)


def test_counts_and_heavy_ties():
    res = _fit("mgus2_progression")
    m = _mgus()
    assert res.n_events == int((m["cause"] == 1).sum())
    assert res.n_competing == int((m["cause"] == 2).sum())
    assert res.n_censored == int((m["cause"] == 0).sum())
    assert m["time"].duplicated().sum() > 1000  # the case really is heavily tied


def test_no_competing_equals_coxph_breslow():
    res = _fit("lung_nocompeting")
    np.testing.assert_allclose(res.coef, reference("finegray", "lung_nocompeting", "cox_coef"),
                               rtol=1e-6)
    np.testing.assert_allclose(res.se, reference("finegray", "lung_nocompeting", "cox_robust_se"),
                               rtol=1e-6)
    assert res.loglik == pytest.approx(reference("finegray", "lung_nocompeting", "cox_loglik")[1],
                                       rel=1e-10)


def test_stata_variance_is_crr_times_n_over_n_minus_1():
    crr, stata = _fit("pbc_death"), _fit("pbc_death", variance="stata")
    np.testing.assert_array_equal(crr.coef, stata.coef)
    np.testing.assert_allclose(stata.se / crr.se, np.sqrt(crr.n / (crr.n - 1)), rtol=1e-12)


def test_result_is_frozen_and_tables():
    res = _fit("pbc_death_age", alpha=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.loglik = 0.0
    with pytest.raises(ValueError):
        res.covariance[0, 0] = 1.0
    s = res.summary
    assert list(s.columns) == ["coef", "se", "shr", "shr_lower", "shr_upper", "z", "p"]
    assert list(s.index) == ["age"]
    z90 = 1.6448536269514722
    assert s["shr_lower"].iloc[0] == pytest.approx(np.exp(res.coef[0] - z90 * res.se[0]))
    frame = res.to_frame()
    assert frame["covariate"].tolist() == ["age"] and frame["n"].iloc[0] == 418
    assert res.converged and res.iterations >= 1


# ------------------------------------------------------------------ literal O(n^2) version

def _naive(time, cause, X, beta):
    """crr's definitions with explicit risk sets (tests/finegray_literal.py), fixed covariates."""
    return literal_crr(time, cause, lambda t: X, beta)


@st.composite
def _data(draw, max_n=18):
    n = draw(st.integers(3, max_n))
    p = draw(st.integers(1, 3))
    time = np.array(draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)), float)
    cause = np.array(draw(st.lists(st.sampled_from([0, 1, 1, 2]), min_size=n, max_size=n)))
    assume((cause == 1).any())
    X = np.array(draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=n * p,
                               max_size=n * p))).reshape(n, p)
    beta = np.array(draw(st.lists(st.floats(-1, 1), min_size=p, max_size=p)))
    return time, cause, X, beta


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_data())
def test_fast_equals_quadratic(data):
    time, cause, X, beta = data
    prep = kernel.prepare(time, cause, X, 1)
    ev = kernel.evaluate(prep, beta)
    meat = (lambda r: r.T @ r)(kernel.influence(prep, ev))
    ll, score, info, ref_meat = _naive(time, cause, X, beta)
    assert ev.loglik == pytest.approx(ll, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(ev.score, score, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ev.information, info, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(meat, ref_meat, rtol=1e-8, atol=1e-9)


def test_fast_equals_quadratic_at_crr_estimate_pbc_subset():
    d = _pbc().iloc[:60]
    X = d[PBC_COV].to_numpy(float)
    res = fine_gray(d, duration="time", cause="status", covariates=PBC_COV, cause_of_interest=2)
    code = np.where(d["status"] == 2, 1, np.where(d["status"] == 1, 2, 0))
    _, score, info, meat = _naive(d["time"].to_numpy(float), code, X, res.coef)
    assert np.max(np.abs(score)) < 1e-8
    inv = np.linalg.inv(info)
    np.testing.assert_allclose(res.covariance, inv @ meat @ inv, rtol=1e-8)


# ------------------------------------------------------------------ invariances

def _fit_or_reject(X, time, cause, **kw):
    try:
        return fine_gray_fit(X, time, cause, **kw)
    except ConvergenceError:
        assume(False)


@st.composite
def _fittable(draw):
    n = draw(st.integers(25, 60))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    time = np.round(rng.exponential(size=n) * 5)  # ties
    cause = rng.choice([0, 1, 2], size=n, p=[0.3, 0.4, 0.3])
    assume((cause == 1).sum() >= 5)
    return X, time, cause, rng


@settings(max_examples=30, deadline=None)
@given(_fittable(), st.floats(1e-3, 1e3))
def test_row_order_and_time_scale_do_not_matter(data, scale):
    X, time, cause, rng = data
    base = _fit_or_reject(X, time, cause)
    perm = rng.permutation(len(time))
    moved = fine_gray_fit(X[perm], time[perm], cause[perm])
    np.testing.assert_allclose(moved.coef, base.coef, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(moved.covariance, base.covariance, rtol=1e-7, atol=1e-12)
    scaled = fine_gray_fit(X, time * scale, cause)
    np.testing.assert_allclose(np.exp(scaled.coef), np.exp(base.coef), rtol=1e-8)
    np.testing.assert_allclose(scaled.se, base.se, rtol=1e-7)
    assert scaled.loglik == pytest.approx(base.loglik, rel=1e-10)


def _cox_breslow(X, time, event):
    """Breslow partial likelihood maximised by scipy, written without the Fine-Gray code."""
    def negll(b):
        eta = X @ b
        ll, grad = 0.0, np.zeros(X.shape[1])
        for i in np.flatnonzero(event):
            at = time >= time[i]
            w = np.exp(eta[at])
            ll += eta[i] - np.log(w.sum())
            grad += X[i] - w @ X[at] / w.sum()
        return -ll, -grad
    return minimize(negll, np.zeros(X.shape[1]), jac=True, method="BFGS",
                    options={"gtol": 1e-10}).x


@settings(max_examples=15, deadline=None)
@given(_fittable())
def test_no_competing_is_cox_breslow(data):
    X, time, cause, _ = data
    cause = np.where(cause == 2, 0, cause)
    res = _fit_or_reject(X, time, cause)
    np.testing.assert_allclose(res.coef, _cox_breslow(X, time, cause == 1), rtol=1e-5, atol=1e-6)


def test_no_competing_matches_failpattern_cox():
    from failpattern.stats.cox import cox
    lung = dataset("lung")
    theirs = cox(lung, duration="time", event="event", covariates=["age", "sex"], ties="breslow")
    ours = fine_gray(lung, duration="time", cause="event", covariates=["age", "sex"])
    np.testing.assert_allclose(ours.coef, np.asarray(theirs.summary["coef"]), rtol=1e-6)


# ------------------------------------------------------------------ errors

def test_input_errors():
    d = _pbc()
    kw = dict(duration="time", cause="status", covariates=["age"])
    with pytest.raises(InputError, match="'when'"):
        fine_gray(d, duration="when", cause="status", covariates=["age"])
    with pytest.raises(InputError, match="cause_of_interest"):
        fine_gray(d, **kw, cause_of_interest=0)
    with pytest.raises(InputError, match="no row has cause_of_interest = 3"):
        fine_gray(d, **kw, cause_of_interest=3)
    with pytest.raises(InputError, match="variance"):
        fine_gray(d, **kw, variance="robust")
    bad = d.copy()
    bad.loc[5, "time"] = -1.0
    with pytest.raises(InputError, match="position 5"):
        fine_gray(bad, **kw)
    bad = d.copy()
    bad["status"] = bad["status"].astype(float)
    bad.loc[7, "status"] = 1.5
    with pytest.raises(InputError, match="position 7 = 1.5"):
        fine_gray(bad, **kw)
    with pytest.raises(InputError, match="data"):
        fine_gray(d.to_numpy(), **kw)


def test_separation_raises_convergence_error():
    rng = np.random.default_rng(1)
    n = 80
    x = np.r_[np.ones(40), np.zeros(40)]
    time = rng.exponential(size=n)
    cause = np.where(x == 1, rng.choice([1, 2], size=n), rng.choice([0, 2], size=n))
    frame = pd.DataFrame({"t": time, "c": cause, "x": x, "z": rng.normal(size=n)})
    with pytest.raises(ConvergenceError, match="separation"):
        fine_gray(frame, duration="t", cause="c", covariates=["x", "z"])


def test_collinear_raises_convergence_error():
    d = _pbc()
    d["age2"] = 2 * d["age"] + 1
    with pytest.raises(ConvergenceError, match="collinear"):
        fine_gray(d, duration="time", cause="status", covariates=["age", "age2"],
                  cause_of_interest=2)


def test_separation_with_one_covariate_raises():
    # rounding makes the score exactly zero at b ~ 36: the information collapse still tells
    rng = np.random.default_rng(1)
    x = np.r_[np.ones(40), np.zeros(40)]
    time = rng.exponential(size=80)
    cause = np.where(x == 1, rng.choice([1, 2], size=80), rng.choice([0, 2], size=80))
    with pytest.raises(ConvergenceError, match="separation"):
        fine_gray_fit(x, time, cause, names=["x"])


@pytest.mark.parametrize("case", ["pbc_death", "pbc_coarse", "mgus2_death"])
@pytest.mark.parametrize("cells", [0, 10**9])
def test_dense_and_cumulative_risk_sets_both_match_crr(case, cells, monkeypatch):
    # small fits hold the weighted risk sets as a dense (failure times x rows) matrix,
    # large ones use prefix and suffix sums; force each path on the crr cases
    monkeypatch.setattr(kernel, "_DENSE_CELLS", cells)
    res = _fit(case)
    for q in ("coef", "se", "z", "p"):
        assert _rel(res.summary[q], reference("finegray", case, q)) < 1e-9, q
    p = len(res.names)
    ref_var = reference("finegray", case, "var").reshape(p, p, order="F")
    np.testing.assert_allclose(res.covariance, ref_var, rtol=1e-9)
    assert res.loglik == pytest.approx(reference("finegray", case, "loglik")[0], rel=1e-10)


# crr's cengroup: a censoring distribution per group (fixture finegray_predict.csv)
CENGROUP_CASES = {
    "pbc_cengroup_female": (_pbc, ["age", "log_bili"], 2, "female"),
    "pbc_cengroup_edema": (_pbc, ["age", "log_bili"], 2, "edema"),    # 3 groups, one ends early
    "pbc_coarse_cengroup": (_pbc_coarse, ["age", "log_bili"], 2, "female"),
    "pbc_transplant_cengroup": (_pbc, ["age", "log_bili"], 1, "female"),
}


@pytest.mark.parametrize("case", sorted(CENGROUP_CASES))
@pytest.mark.parametrize("cells", [0, 10**9])
def test_cengroup_matches_crr(case, cells, monkeypatch):
    monkeypatch.setattr(kernel, "_DENSE_CELLS", cells)
    load, cov, coi, group = CENGROUP_CASES[case]
    fit = fine_gray(load(), duration="time", cause="status", covariates=cov,
                    cause_of_interest=coi, cengroup=group, tol=1e-12)
    ref = lambda q: reference("finegray_predict", case, q)  # noqa: E731
    assert _rel(fit.coef, ref("coef")) < 1e-9
    assert _rel(fit.covariance.T.reshape(-1), ref("var")) < 1e-9
    assert fit.loglik == pytest.approx(ref("loglik")[0], rel=1e-12)
    assert fit.loglik_null == pytest.approx(ref("loglik_null")[0], rel=1e-12)
    # the groups matter: one censoring distribution gives another variance
    plain = fine_gray(load(), duration="time", cause="status", covariates=cov,
                      cause_of_interest=coi, tol=1e-12)
    assert _rel(plain.covariance, fit.covariance) > 1e-4


def test_cengroup_single_group_is_the_default():
    d = _pbc()
    a = fine_gray(d, duration="time", cause="status", covariates=PBC_COV, cause_of_interest=2)
    b = fine_gray(d.assign(g="all"), duration="time", cause="status", covariates=PBC_COV,
                  cause_of_interest=2, cengroup="g")
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.covariance, b.covariance)


def test_cengroup_input_errors():
    d = _pbc()
    with pytest.raises(InputError, match="cengroup"):
        fine_gray(d, duration="time", cause="status", covariates=["age"], cengroup="centre")
    with pytest.raises(InputError, match="missing"):
        fine_gray(d.assign(g=np.where(d["age"] > 50, 1.0, np.nan)), duration="time",
                  cause="status", covariates=["age"], cengroup="g")
