"""Cox regression against R survival::coxph (tests/reference/cox.R), hand-computed values,
error handling and invariance properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failpattern.errors import ConvergenceError, InputError
from failpattern.stats._coxfit import _Design
from failpattern.stats.cox import cox, cox_fit
from fixtures import dataset, reference

RTOL = 1e-10

LUNG = ["age", "sex", "ph_ecog"]
VETERAN = ["trt", "karno", "age", "prior", "smallcell", "adeno", "large"]
PBC = ["age", "log_bili", "albumin", "edema"]


def _lung() -> pd.DataFrame:
    # complete cases on the model columns: drops the one row with ph_ecog missing
    return dataset("lung").dropna(subset=["time", "event", *LUNG]).reset_index(drop=True)


def _veteran() -> pd.DataFrame:
    vet = dataset("veteran").copy()
    for level in ("smallcell", "adeno", "large"):  # squamous is the reference level
        vet[level] = (vet["celltype"] == level).astype(int)
    return vet


def _pbc() -> pd.DataFrame:
    pbc = dataset("pbc").copy()
    pbc["death"] = (pbc["status"] == 2).astype(int)  # transplant counts as censored
    pbc["log_bili"] = np.log(pbc["bili"])
    return pbc


def _case(name: str):
    """Data and keyword arguments reproducing each case of tests/reference/cox.R."""
    lung_kw = dict(duration="time", event="event")
    vet_kw = dict(duration="time", event="event")
    table = {
        "lung_efron": (_lung, dict(lung_kw, covariates=LUNG)),
        "lung_breslow": (_lung, dict(lung_kw, covariates=LUNG, ties="breslow")),
        "lung_sex_efron": (_lung, dict(lung_kw, covariates="sex")),
        "lung_sex_breslow": (_lung, dict(lung_kw, covariates=["sex"], ties="breslow")),
        # inst is missing for one patient: that row is dropped, as in cox.R
        "lung_strata_inst": (lambda: _lung().dropna(subset=["inst"]),
                             dict(lung_kw, covariates=LUNG, strata="inst")),
        "veteran_efron": (_veteran, dict(vet_kw, covariates=VETERAN)),
        "veteran_breslow": (_veteran, dict(vet_kw, covariates=VETERAN, ties="breslow")),
        "veteran_strata_celltype_efron": (
            _veteran, dict(vet_kw, covariates=VETERAN[:4], strata="celltype")),
        "veteran_strata_celltype_breslow": (
            _veteran, dict(vet_kw, covariates=VETERAN[:4], strata=["celltype"], ties="breslow")),
        "veteran_strata_two": (
            _veteran, dict(vet_kw, covariates=VETERAN[:3], strata=["celltype", "prior"])),
        "pbc_efron": (_pbc, dict(duration="time", event="death", covariates=PBC)),
    }
    make, kwargs = table[name]
    return make(), kwargs


CASES = ["lung_efron", "lung_breslow", "lung_sex_efron", "lung_sex_breslow", "lung_strata_inst",
         "veteran_efron", "veteran_breslow", "veteran_strata_celltype_efron",
         "veteran_strata_celltype_breslow", "veteran_strata_two", "pbc_efron"]


def _ours(fit) -> dict[str, np.ndarray]:
    s = fit.summary
    tests = {"lr": fit.likelihood_ratio_test, "score": fit.score_test, "wald": fit.wald_test}
    out = {q: s[q].to_numpy() for q in ("coef", "se", "z", "p", "hr", "hr_lower", "hr_upper")}
    out["loglik"] = np.array([fit.loglik_null, fit.loglik])
    for key, t in tests.items():
        out[key] = np.array([t.statistic, t.df, t.p_value])
    out["n"] = np.array([fit.n])
    out["nevent"] = np.array([fit.n_events])
    out["covariance"] = fit.covariance.ravel(order="F")
    return out


def _relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours - theirs) / np.abs(theirs)))


@pytest.mark.parametrize("case", CASES)
def test_matches_r_coxph(case):
    data, kwargs = _case(case)
    fit = cox(data, **kwargs)
    assert fit.converged
    for quantity, ours in _ours(fit).items():
        theirs = reference("cox", case, quantity)
        assert ours.shape == theirs.shape, quantity
        err = _relative_error(ours, theirs)
        assert err <= RTOL, f"{case} {quantity}: relative error {err:.3g}"


@pytest.mark.parametrize("case", ["lung_efron", "veteran_strata_two", "pbc_efron"])
def test_iterations_close_to_r(case):
    # both stop on a 1e-12 relative loglik change; we also require a tiny next step
    data, kwargs = _case(case)
    r_iter = reference("cox", case, "iter")[0]
    assert r_iter <= cox(data, **kwargs).iterations <= r_iter + 2


def test_covariate_units_do_not_matter():
    # age in 1e9-fold larger units and sex coded 0/1e6: coef scale inversely, nothing else moves
    data, kwargs = _case("lung_efron")
    fit = cox(data.assign(age=data["age"] * 1e-9, sex=data["sex"] * 1e6), **kwargs)
    expected = reference("cox", "lung_efron", "coef") * np.array([1e9, 1e-6, 1.0])
    np.testing.assert_allclose(fit.coef, expected, rtol=1e-8)
    assert fit.loglik == pytest.approx(reference("cox", "lung_efron", "loglik")[1], rel=1e-12)


def test_matrix_fitter_equals_public_function():
    data, kwargs = _case("veteran_strata_celltype_efron")
    fit = cox(data, **kwargs)
    codes = pd.factorize(data["celltype"])[0]
    raw = cox_fit(data[VETERAN[:4]].to_numpy(float), data["time"].to_numpy(float),
                  data["event"].to_numpy(), strata_codes=codes)
    np.testing.assert_allclose(raw.coef, fit.coef, rtol=1e-12)
    assert raw.loglik == pytest.approx(fit.loglik, rel=1e-14)


def test_result_is_frozen_and_tabular():
    data, kwargs = _case("lung_efron")
    fit = cox(data, **kwargs, alpha=0.10)
    with pytest.raises(ValueError):
        fit.covariance[0, 0] = 1.0
    with pytest.raises(AttributeError):
        fit.loglik = 0.0
    table = fit.to_frame()
    assert list(table.columns) == ["covariate", "coef", "se", "hr", "hr_lower", "hr_upper",
                                   "z", "p"]
    assert table["covariate"].tolist() == LUNG
    # alpha = 0.10: limits at z_0.95 = 1.6448536269514722
    s = fit.summary
    np.testing.assert_allclose(np.log(s["hr_upper"]), s["coef"] + 1.6448536269514722 * s["se"],
                               rtol=1e-12)


# --- hand-computed tiny example -----------------------------------------------------------
#
#   patient  time  event  x
#      1       1     1    1
#      2       2     1    0
#      3       2     1    1      (tied with patient 2)
#      4       3     0    0
#      5       4     1    0
#
# Breslow at beta = 0 (every risk score exp(0) = 1):
#   t=1: risk set {1..5}, 5 at risk, sum x = 2, mean 2/5;  event x = 1
#   t=2: risk set {2..5}, 4 at risk, sum x = 1, mean 1/4;  two events, x = 0 + 1
#   t=4: risk set {5},    1 at risk, mean 0;               event x = 0
#   score U = (1 - 2/5) + (1 - 2 * 1/4) + (0 - 0) = 3/5 + 1/2 = 11/10
#   information I = sum over events of the risk-set variance of x:
#       t=1: 2/5 - (2/5)^2 = 6/25;  t=2 (counted twice): 2 * (1/4 - 1/16) = 3/8;  t=4: 0
#       I = 6/25 + 3/8 = 123/200
#   score statistic U^2 / I = (121/100) / (123/200) = 242/123
#   loglik(0) = -(log 5 + 2 log 4 + log 1) = -log 80
TINY = pd.DataFrame({"time": [1, 2, 2, 3, 4], "event": [1, 1, 1, 0, 1], "x": [1, 0, 1, 0, 0]})


def test_hand_computed_breslow_score_test():
    fit = cox(TINY, duration="time", event="event", covariates="x", ties="breslow")
    assert fit.score_test.statistic == pytest.approx(242 / 123, rel=1e-13)
    assert fit.score_test.df == 1
    assert fit.loglik_null == pytest.approx(-np.log(80), rel=1e-14)


def test_hand_computed_efron_null_loglik():
    # Efron at t=2: denominators 4 and 4 - (1/2)(1 + 1) = 3, so loglik(0) = -(log 5 + log 4
    # + log 3 + log 1) = -log 60
    fit = cox(TINY, duration="time", event="event", covariates="x")
    assert fit.loglik_null == pytest.approx(-np.log(60), rel=1e-14)


# --- failures -------------------------------------------------------------------------------

def _separation() -> pd.DataFrame:
    return pd.DataFrame({q: reference("cox", "separation", q) for q in ("time", "event", "x", "z")})


@pytest.mark.parametrize("model", [["x"], ["x", "z"]])
def test_separation_names_the_diverging_covariate(model):
    # R warns for both models (x alone: coefficient may be infinite; x + z: did not converge)
    suffix = "_".join(model)
    warned = (reference("cox", "separation", f"warned_infinite_{suffix}")[0]
              + reference("cox", "separation", f"warned_not_converged_{suffix}")[0])
    assert warned >= 1
    with pytest.raises(ConvergenceError, match=r"'x'.*diverges.*Firth") as info:
        cox(_separation(), duration="time", event="event", covariates=model)
    assert "'z'" not in str(info.value)


def test_separation_found_when_iterations_run_out():
    # R's default 20 iterations: R says "Ran out of iterations" for x + z; we name x
    data = _separation()
    with pytest.raises(ConvergenceError, match=r"'x'.*diverges") as info:
        cox_fit(data[["x", "z"]].to_numpy(), data["time"].to_numpy(),
                data["event"].to_numpy().astype(int), max_iter=20, names=["x", "z"])
    assert "after 20 iterations" in str(info.value)


def test_collinear_covariates_are_named():
    data = _veteran()
    data["squamous"] = (data["celltype"] == "squamous").astype(int)
    with pytest.raises(ConvergenceError, match="collinear") as info:
        cox(data, duration="time", event="event",
            covariates=["karno", "smallcell", "adeno", "large", "squamous"])
    message = str(info.value)
    assert all(f"'{c}'" in message for c in ("smallcell", "adeno", "large", "squamous"))
    assert "'karno'" not in message


def test_covariate_constant_within_strata_is_named():
    with pytest.raises(ConvergenceError, match="'prior'.*no information"):
        cox(_veteran(), duration="time", event="event", covariates=["karno", "prior"],
            strata="prior")


def test_non_convergence_reports_iterations():
    data, kwargs = _case("pbc_efron")
    with pytest.raises(ConvergenceError, match="did not converge in 2 iterations"):
        cox_fit(data[PBC].to_numpy(float), data["time"].to_numpy(float),
                data["death"].to_numpy(), max_iter=2)


def test_missing_values_are_not_dropped():
    data = dataset("lung")  # ph_ecog is missing in row 13 of the file, inst in one other row
    with pytest.raises(InputError, match=r"1 row\(s\) have missing.*position 13 = 'ph_ecog'"):
        cox(data, duration="time", event="event", covariates=LUNG)
    with pytest.raises(InputError, match=r"never dropped silently.*index \d+ = 'inst'"):
        cox(data.dropna(subset=LUNG), duration="time", event="event", covariates=LUNG,
            strata="inst")


@pytest.mark.parametrize("change, match", [
    (dict(event=[0, 0, 0, 0, 0]), "all observations are censored"),
    (dict(x=["a", "b", "a", "b", "a"]), "not numeric"),
    (dict(x=[1, 1, 1, 1, 1]), "constant"),
    (dict(time=[1, -2, 2, 3, 4]), "negative"),
    (dict(event=[1, 2, 1, 0, 1]), "0 \\(censored\\) or 1"),
])
def test_invalid_input(change, match):
    data = TINY.assign(**change)
    with pytest.raises(InputError, match=match):
        cox(data, duration="time", event="event", covariates="x")


def test_invalid_arguments():
    with pytest.raises(InputError, match="ties"):
        cox(TINY, duration="time", event="event", covariates="x", ties="discrete")
    with pytest.raises(InputError, match="timefix"):
        cox(TINY, duration="time", event="event", covariates="x", timefix="yes")
    with pytest.raises(InputError, match="alpha"):
        cox(TINY, duration="time", event="event", covariates="x", alpha=1.5)
    with pytest.raises(InputError, match="'nope' is not in data"):
        cox(TINY, duration="time", event="event", covariates="x", strata="nope")


# --- properties -----------------------------------------------------------------------------

@st.composite
def survival_frames(draw, distinct_times=False):
    n = draw(st.integers(8, 25))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.integers(0, 2, size=n).astype(float)
    if np.all(x2 == x2[0]):
        x2[0] = 1.0 - x2[0]
    hazard = np.exp(0.5 * x1 - 0.4 * x2)
    if distinct_times:
        time = rng.exponential(1.0 / hazard)
    else:
        time = np.ceil(rng.exponential(3.0 / hazard))  # whole numbers: many ties
    event = (rng.uniform(size=n) < 0.75).astype(int)
    event[:3] = 1
    return pd.DataFrame({"time": time, "event": event, "x1": x1, "x2": x2})


def _fit_or_none(data, **kwargs):
    try:
        return cox(data, duration="time", event="event", covariates=["x1", "x2"], **kwargs)
    except ConvergenceError:  # small random samples can separate; properties need a finite fit
        return None


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(survival_frames(), st.sampled_from(["efron", "breslow"]), st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(data, ties, seed):
    fit = _fit_or_none(data, ties=ties)
    if fit is None:
        return
    shuffled = data.sample(frac=1.0, random_state=np.random.default_rng(seed).integers(2**31))
    again = cox(shuffled, duration="time", event="event", covariates=["x1", "x2"], ties=ties)
    np.testing.assert_allclose(again.coef, fit.coef, rtol=1e-9, atol=1e-10)
    assert again.loglik == pytest.approx(fit.loglik, rel=1e-10)


@SETTINGS
@given(survival_frames(), st.floats(1e-3, 1e3))
def test_rescaling_time_leaves_coef_unchanged(data, factor):
    fit = _fit_or_none(data)
    if fit is None:
        return
    scaled = cox(data.assign(time=data["time"] * factor), duration="time", event="event",
                 covariates=["x1", "x2"])
    np.testing.assert_allclose(scaled.coef, fit.coef, rtol=1e-9, atol=1e-10)


@SETTINGS
@given(survival_frames(), st.floats(-100, 100))
def test_shifting_a_covariate_leaves_coef_unchanged(data, shift):
    fit = _fit_or_none(data)
    if fit is None:
        return
    moved = cox(data.assign(x1=data["x1"] + shift), duration="time", event="event",
                covariates=["x1", "x2"])
    np.testing.assert_allclose(moved.coef, fit.coef, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(moved.covariance, fit.covariance, rtol=1e-8, atol=1e-12)


@SETTINGS
@given(survival_frames(distinct_times=True))
def test_efron_equals_breslow_without_ties(data):
    efron = _fit_or_none(data, ties="efron")
    if efron is None:
        return
    breslow = cox(data, duration="time", event="event", covariates=["x1", "x2"], ties="breslow")
    np.testing.assert_allclose(breslow.coef, efron.coef, rtol=1e-10, atol=1e-12)
    assert breslow.loglik == pytest.approx(efron.loglik, rel=1e-12)


@SETTINGS
@given(survival_frames())
def test_efron_differs_from_breslow_with_ties(data):
    # guards the property above against a fitter that ignores `ties`
    efron = _fit_or_none(data, ties="efron")
    if efron is None or not data.loc[data["event"] == 1, "time"].duplicated().any():
        return
    breslow = cox(data, duration="time", event="event", covariates=["x1", "x2"], ties="breslow")
    assert breslow.loglik_null < efron.loglik_null


def _naive_partial_likelihood(X, time, event, strata, beta, efron):
    """Textbook loops over strata, event times and tied events (the definition, O(n^2))."""
    eta = X @ beta
    r = np.exp(eta)
    loglik, score, info = 0.0, np.zeros(X.shape[1]), np.zeros((X.shape[1],) * 2)
    for s in np.unique(strata):
        for t in np.unique(time[(strata == s) & (event == 1)]):
            risk = (strata == s) & (time >= t)
            dead = risk & (time == t) & (event == 1)
            d = int(dead.sum())
            loglik += eta[dead].sum()
            score += X[dead].sum(axis=0)
            for k in range(d):
                f = k / d if efron else 0.0
                s0 = r[risk].sum() - f * r[dead].sum()
                s1 = r[risk] @ X[risk] - f * (r[dead] @ X[dead])
                s2 = ((X[risk].T * r[risk]) @ X[risk]) - f * ((X[dead].T * r[dead]) @ X[dead])
                loglik -= np.log(s0)
                score -= s1 / s0
                info += s2 / s0 - np.outer(s1, s1) / s0**2
    return loglik, score, info


@SETTINGS
@given(survival_frames(), st.integers(1, 3), st.booleans(),
       st.lists(st.floats(-1.5, 1.5), min_size=2, max_size=2))
def test_kernel_equals_textbook_definition(data, n_strata, efron, beta):
    # heavy ties (whole-number times) and up to three strata, at an arbitrary beta
    X = data[["x1", "x2"]].to_numpy()
    time, event = data["time"].to_numpy(float), data["event"].to_numpy()
    strata = np.arange(len(data)) % n_strata
    beta = np.array(beta)
    ours = _Design(X, time, event, strata if n_strata > 1 else None, efron).evaluate(beta)
    naive = _naive_partial_likelihood(X, time, event, strata, beta, efron)
    assert ours[0] == pytest.approx(naive[0], rel=1e-12)
    np.testing.assert_allclose(ours[1], naive[1], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours[2], naive[2], rtol=1e-9, atol=1e-10)


@SETTINGS
@given(survival_frames())
def test_one_stratum_equals_no_strata(data):
    fit = _fit_or_none(data)
    if fit is None:
        return
    one = cox(data.assign(site="A"), duration="time", event="event", covariates=["x1", "x2"],
              strata="site")
    np.testing.assert_allclose(one.coef, fit.coef, rtol=1e-10, atol=1e-12)
    assert one.score_test.statistic == pytest.approx(fit.score_test.statistic, rel=1e-10)


@pytest.mark.parametrize("case", ["lung_efron", "lung_breslow", "veteran_strata_two",
                                  "veteran_strata_celltype_breslow"])
@pytest.mark.parametrize("cells", [0, 10**9])
def test_dense_and_cumulative_risk_sets_both_match_r(case, cells, monkeypatch):
    # small fits hold the risk sets as a dense (events x rows) matrix, large ones use
    # reverse cumulative sums; force each path on the R cases
    import failpattern.stats._coxfit as kernel
    monkeypatch.setattr(kernel, "_DENSE_CELLS", cells)
    data, kwargs = _case(case)
    fit = cox(data, **kwargs)
    for quantity, ours in _ours(fit).items():
        err = _relative_error(ours, reference("cox", case, quantity))
        assert err <= RTOL, f"{case} {quantity} (cells {cells}): relative error {err:.3g}"


def test_one_patient_category_diverging_beside_other_covariates_is_an_error():
    # A regression seen on a simulated cohort: one patient in the reference category
    # ("not adenocarcinoma") has the very first event. With the other covariates in the
    # model the iterations used to stop at coef -93 with a negative variance; the
    # likelihood is monotone in that coefficient, so no estimate exists.
    rng = np.random.default_rng(7)
    n = 60
    time = np.round(rng.exponential(10.0, n), 1) + 0.5
    time[0] = 0.03
    data = pd.DataFrame({
        "time": time, "event": np.r_[1, rng.integers(0, 2, n - 1)],
        "adeno": np.r_[0.0, np.ones(n - 1)],
        "organs": rng.integers(0, 2, n).astype(float),
        "resp": rng.integers(0, 2, n).astype(float),
    })
    for ties in ("efron", "breslow"):
        with pytest.raises(ConvergenceError, match="'adeno'.*diverges to infinity"):
            cox(data, duration="time", event="event", covariates=["adeno", "organs", "resp"],
                ties=ties)


# --- counting-process data, case weights, robust variance (tests/reference/cox.R) -----------

BLADDER = ["rx", "number", "size"]


def _bladder2() -> pd.DataFrame:
    bl = dataset("bladder2").copy()
    bl["w"] = 0.5 + (bl["id"] % 4) / 4          # exact binary fractions, as cox.R
    bl["row"] = np.arange(len(bl))
    return bl


def _counting_case(name: str) -> dict:
    kw = dict(duration="stop", event="event", covariates=BLADDER, entry="start")
    if name == "bladder2_strata_cluster":
        return dict(kw, strata="enum", cluster="id")
    if name == "bladder2_weights_robust":
        return dict(kw, weights="w", cluster="row")
    *parts, ties = name.split("_")
    kw["ties"] = ties
    if "weights" in parts:
        kw["weights"] = "w"
    if "cluster" in parts:
        kw["cluster"] = "id"
    return kw


COUNTING_CASES = [f"bladder2_{kind}{ties}" for ties in ("efron", "breslow")
                  for kind in ("", "weights_", "cluster_", "weights_cluster_")]
COUNTING_CASES += ["bladder2_weights_robust", "bladder2_strata_cluster"]


@pytest.mark.parametrize("case", COUNTING_CASES)
def test_counting_process_matches_r_coxph(case):
    fit = cox(_bladder2(), **_counting_case(case))
    assert fit.counting_process
    ours = _ours(fit)
    if fit.robust:
        ours["naive_se"] = fit.naive_se
        ours["naive_covariance"] = fit.naive_covariance.ravel(order="F")
    for quantity, value in ours.items():
        theirs = reference("cox", case, quantity)
        assert value.shape == theirs.shape, quantity
        err = _relative_error(value, theirs)
        assert err <= RTOL, f"{case} {quantity}: relative error {err:.3g}"
    assert fit.robust == ("naive_se" in ours)


def test_wei_lin_weissfeld_marginal_model_matches_r_coxph():
    """survival's bladder example: each recurrence from time 0, strata by recurrence number, the
    robust variance clustered by patient (tests/reference/cox.R, case bladder_wlw)."""
    fit = cox(dataset("bladder"), duration="stop", event="event", covariates=BLADDER, strata="enum", cluster="id")
    assert fit.robust and not fit.counting_process
    ours = _ours(fit)
    ours["naive_se"] = fit.naive_se
    ours["naive_covariance"] = fit.naive_covariance.ravel(order="F")
    for quantity, value in ours.items():
        theirs = reference("cox", "bladder_wlw", quantity)
        assert value.shape == theirs.shape, quantity
        err = _relative_error(value, theirs)
        assert err <= RTOL, f"bladder_wlw {quantity}: relative error {err:.3g}"


def test_robust_right_censored_matches_r_coxph():
    data, kwargs = _case("lung_efron")
    fit = cox(data, **kwargs, robust=True)
    assert fit.robust and not fit.counting_process
    plain = cox(data, **kwargs)
    np.testing.assert_array_equal(fit.coef, plain.coef)      # the same fit, other variance
    np.testing.assert_array_equal(fit.naive_covariance, plain.covariance)
    ours = _ours(fit)
    ours["naive_se"] = fit.naive_se
    ours["naive_covariance"] = fit.naive_covariance.ravel(order="F")
    for quantity, value in ours.items():
        err = _relative_error(value, reference("cox", "lung_robust", quantity))
        assert err <= RTOL, f"lung_robust {quantity}: relative error {err:.3g}"


def test_matrix_fitter_takes_counting_process_arguments():
    from failpattern.stats.fit import coxph_fit
    bl = _bladder2()
    fit = cox(bl, **_counting_case("bladder2_weights_cluster_breslow"))
    raw = coxph_fit(np.ascontiguousarray(bl[BLADDER].to_numpy(float)), bl["stop"].to_numpy(float),
                    bl["event"].to_numpy(), names=BLADDER, ties="breslow",
                    entry=bl["start"].to_numpy(float), weights=bl["w"].to_numpy(float),
                    cluster=bl["id"].to_numpy())
    np.testing.assert_array_equal(raw.coef, fit.coef)
    np.testing.assert_array_equal(raw.covariance, fit.covariance)
    assert raw.robust and raw.weighted and raw.counting_process


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_entry_at_zero_equals_no_entry(ties):
    data, kwargs = _case("lung_" + ties)
    plain = cox(data, **kwargs)
    fit = cox(data.assign(t0=0.0), **kwargs, entry="t0")
    np.testing.assert_allclose(fit.coef, plain.coef, rtol=1e-10)
    np.testing.assert_allclose(fit.covariance, plain.covariance, rtol=1e-9)
    assert fit.loglik == pytest.approx(plain.loglik, rel=1e-13)
    assert fit.score_test.statistic == pytest.approx(plain.score_test.statistic, rel=1e-10)


def test_splitting_rows_into_intervals_changes_nothing():
    # each lung row cut at day 100 into (0, 100] censored and (100, time]: the same risk sets
    data, kwargs = _case("lung_efron")
    plain = cox(data, **kwargs)
    long = data[data["time"] > 100]
    first = long.assign(t0=0.0, time=100.0, event=0)
    rest = pd.concat([data[data["time"] <= 100].assign(t0=0.0), long.assign(t0=100.0)])
    split = pd.concat([first, rest], ignore_index=True)
    fit = cox(split, **kwargs, entry="t0")
    np.testing.assert_allclose(fit.coef, plain.coef, rtol=1e-10)
    np.testing.assert_allclose(fit.covariance, plain.covariance, rtol=1e-9)
    assert fit.loglik == pytest.approx(plain.loglik, rel=1e-13)


def test_integer_weights_equal_replicated_rows():
    # Breslow only (as R): with Efron the copies of an event are tied events of each other
    # and change Efron's correction, while one weighted event does not
    bl = _bladder2()
    copies = (bl["id"] % 3 + 1).astype(int)
    kw = dict(_counting_case("bladder2_breslow"))
    weighted = cox(bl.assign(k=copies.astype(float)), **kw, weights="k")
    replicated = cox(bl.loc[bl.index.repeat(copies)].reset_index(drop=True), **kw)
    np.testing.assert_allclose(weighted.coef, replicated.coef, rtol=1e-10)
    np.testing.assert_allclose(weighted.covariance, replicated.covariance, rtol=1e-9)
    assert weighted.loglik == pytest.approx(replicated.loglik, rel=1e-12)
    assert weighted.loglik_null == pytest.approx(replicated.loglik_null, rel=1e-12)


def test_unit_weights_equal_no_weights():
    bl = _bladder2()
    kw = _counting_case("bladder2_efron")
    plain, ones = cox(bl, **kw), cox(bl.assign(one=1.0), **kw, weights="one")
    np.testing.assert_allclose(ones.coef, plain.coef, rtol=1e-12)
    assert ones.loglik == pytest.approx(plain.loglik, rel=1e-14)


def test_robust_with_one_cluster_per_row_equals_robust_without_cluster():
    bl = _bladder2()
    kw = _counting_case("bladder2_weights_efron")
    by_row = cox(bl, **kw, cluster="row")
    plain = cox(bl, **kw, robust=True)
    assert by_row.robust and plain.robust
    np.testing.assert_allclose(by_row.covariance, plain.covariance, rtol=1e-13)
    # cluster labels are only labels: any coding gives the same grouping
    relabelled = cox(bl.assign(id=bl["id"].map(lambda i: f"patient-{i}")),
                     **_counting_case("bladder2_cluster_efron"))
    grouped = cox(bl, **_counting_case("bladder2_cluster_efron"))
    np.testing.assert_allclose(relabelled.covariance, grouped.covariance, rtol=1e-13)


def test_entry_not_before_duration_names_rows_and_values():
    bad = TINY.assign(t0=[0.0, 2.0, 0.5, 3.5, 0.0])
    with pytest.raises(InputError, match=r"2 row\(s\).*position 1 = '\(2, 2\]'.*"
                                         r"position 3 = '\(3.5, 3\]'"):
        cox(bad, duration="time", event="event", covariates="x", entry="t0")
    with pytest.raises(InputError, match="missing"):
        cox(TINY.assign(t0=[0.0, np.nan, 0, 0, 0]), duration="time", event="event",
            covariates="x", entry="t0")


@pytest.mark.parametrize("weights", [[1.0, -0.5, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0, 1.0],
                                     [1.0, 1.0, 1.0, np.inf, 1.0]])
def test_weights_not_positive_name_rows_and_values(weights):
    bad = TINY.assign(w=weights)
    where = int(np.flatnonzero(~(np.isfinite(weights) & (np.array(weights) > 0)))[0])
    with pytest.raises(InputError, match=rf"weights column 'w'.*position {where} = "):
        cox(bad, duration="time", event="event", covariates="x", weights="w")


def test_bad_counting_arguments():
    with pytest.raises(InputError, match="robust must be True or False"):
        cox(TINY, duration="time", event="event", covariates="x", robust="yes")
    with pytest.raises(InputError, match="'nope' is not in data"):
        cox(TINY, duration="time", event="event", covariates="x", cluster="nope")


# --- ties="exact" (tests/reference/cox_exact.R) ----------------------------------------------

def _split_veteran() -> pd.DataFrame:
    """veteran split at day 90 as R's survSplit(cut = 90): (tstart, time] rows."""
    vet = _veteran()
    early = vet.assign(tstart=0.0, time=np.minimum(vet["time"], 90.0),
                       event=np.where(vet["time"] > 90, 0, vet["event"]))
    late = vet[vet["time"] > 90].assign(tstart=90.0)
    rows = pd.concat([early, late], ignore_index=True)
    rows["karno_late"] = rows["karno"] * (rows["tstart"] >= 90)
    return rows


def _exact_case(name: str):
    lung = _lung()
    lung = lung.assign(month=np.round(lung["time"] / 30.4375))
    month = dict(duration="month", event="event", ties="exact")
    split = dict(duration="time", event="event", entry="tstart", ties="exact",
                 covariates=["trt", "karno", "karno_late"])
    table = {
        "lung_months_exact": (lung, dict(month, covariates=LUNG)),
        "lung_months_strata_sex_exact": (lung, dict(month, covariates=["age", "ph_ecog"],
                                                    strata="sex")),
        "veteran_exact": (_veteran(), dict(duration="time", event="event", ties="exact",
                                           covariates=VETERAN)),
        "veteran_strata_celltype_exact": (_veteran(), dict(duration="time", event="event",
                                                           ties="exact", covariates=VETERAN[:4],
                                                           strata="celltype")),
        "veteran_split_exact": (_split_veteran(), split),
        "veteran_split_strata_exact": (_split_veteran(), dict(split, strata="prior")),
    }
    return table[name]


EXACT_CASES = ["lung_months_exact", "lung_months_strata_sex_exact", "veteran_exact",
               "veteran_strata_celltype_exact", "veteran_split_exact",
               "veteran_split_strata_exact"]
EXACT_RTOL = 1e-9


@pytest.mark.parametrize("case", EXACT_CASES)
def test_exact_ties_match_r_coxph(case):
    data, kwargs = _exact_case(case)
    fit = cox(data, **kwargs)
    assert fit.ties == "exact" and fit.converged
    assert fit.counting_process == ("entry" in kwargs)
    for quantity, ours in _ours(fit).items():
        theirs = reference("cox_exact", case, quantity)
        assert ours.shape == theirs.shape, quantity
        # a p-value far in the tail (veteran_split: 5e-15) multiplies the relative error
        # of its statistic by about statistic / 2: R's agexact sums up to ~1e7 subset
        # products per tied time and its score statistic is 3e-11 (relative) off ours,
        # so p-values below 1e-12 are held to 1e-8
        tail = np.abs(theirs) < 1e-12
        tol = np.where(tail, 1e-8, EXACT_RTOL)
        err = np.abs(ours - theirs) / np.abs(theirs)
        assert (err <= tol).all(), f"{case} {quantity}: relative error {err.max():.3g}"


def test_exact_ties_differ_from_efron_with_heavy_ties():
    data, kwargs = _exact_case("lung_months_exact")
    exact = cox(data, **kwargs)
    efron = cox(data, **dict(kwargs, ties="efron"))
    assert np.max(np.abs(exact.coef - efron.coef)) > 1e-3


def test_exact_equals_breslow_and_efron_without_ties():
    rng = np.random.default_rng(7)
    data = pd.DataFrame({"time": rng.permutation(60) + 1.0, "event": rng.integers(0, 2, 60),
                         "x": rng.normal(size=60), "z": rng.normal(size=60)})
    kw = dict(duration="time", event="event", covariates=["x", "z"])
    exact, breslow = cox(data, **kw, ties="exact"), cox(data, **kw, ties="breslow")
    np.testing.assert_allclose(exact.coef, breslow.coef, rtol=1e-12)
    np.testing.assert_allclose(exact.covariance, breslow.covariance, rtol=1e-10)
    assert exact.loglik == pytest.approx(breslow.loglik, rel=1e-13)


def test_exact_counting_with_zero_entry_equals_right_censored():
    data, kwargs = _exact_case("veteran_exact")
    plain = cox(data, **kwargs)
    counting = cox(data.assign(t0=0.0), **kwargs, entry="t0")
    np.testing.assert_allclose(counting.coef, plain.coef, rtol=1e-10)
    np.testing.assert_allclose(counting.covariance, plain.covariance, rtol=1e-9)


def test_exact_by_brute_force_enumeration():
    # the exact term of a tied time is prod(r_D) / sum over all d-subsets of prod(r)
    from itertools import combinations
    from failpattern.stats._coxfit import _ExactDesign
    rng = np.random.default_rng(3)
    n = 14
    time = rng.integers(1, 5, n).astype(float)
    event = rng.integers(0, 2, n)
    event[:3] = 1
    X = rng.normal(size=(n, 2))
    beta = np.array([0.4, -0.7])
    eta = (X - X.mean(axis=0)) @ beta
    expected = 0.0
    for t in np.unique(time[event == 1]):
        dead = np.flatnonzero((time == t) & (event == 1))
        risk = np.flatnonzero(time >= t)
        total = sum(np.exp(eta[list(c)].sum()) for c in combinations(risk, dead.size))
        expected += eta[dead].sum() - np.log(total)
    loglik, _, _ = _ExactDesign(X, time, event, None, None).evaluate(beta)
    assert loglik == pytest.approx(expected, rel=1e-12)


def test_exact_refuses_weights_robust_cluster():
    bl = _bladder2()
    kw = dict(duration="stop", event="event", covariates=BLADDER, entry="start", ties="exact")
    for extra, word in ((dict(weights="w"), "weights"), (dict(robust=True), "robust"),
                        (dict(cluster="id"), "cluster")):
        with pytest.raises(InputError, match=f"ties='exact' does not support {word}"):
            cox(bl, **kw, **extra)


def test_exact_through_fit_layer():
    from failpattern.stats.fit import coxph_fit
    data, kwargs = _exact_case("veteran_split_strata_exact")
    fit = cox(data, **kwargs)
    codes = pd.factorize(data["prior"], sort=True)[0].astype(np.int64)
    raw = coxph_fit(np.ascontiguousarray(data[["trt", "karno", "karno_late"]].to_numpy(float)),
                    data["time"].to_numpy(float), data["event"].to_numpy(np.int64),
                    names=["trt", "karno", "karno_late"], ties="exact", strata=codes,
                    strata_names=("prior",), entry=data["tstart"].to_numpy(float))
    np.testing.assert_allclose(raw.coef, fit.coef, rtol=1e-12)
    assert raw.ties == "exact"
    np.testing.assert_allclose(raw.coef, reference("cox_exact", "veteran_split_strata_exact",
                                                   "coef"), rtol=EXACT_RTOL)


@pytest.mark.parametrize("case", COUNTING_CASES)
def test_counting_process_sorted_sums_match_r_coxph(case, monkeypatch):
    # large problems use O(n log n) risk-set sums (cumulative sums over the rows sorted by
    # stop and by entry) instead of dense risk-set weights: force them on bladder2
    import failpattern.stats._coxfit as kernel
    monkeypatch.setattr(kernel, "_BLOCK_CELLS", 50)
    fit = cox(_bladder2(), **_counting_case(case))
    ours = _ours(fit)
    if fit.robust:
        ours["naive_se"] = fit.naive_se
        ours["naive_covariance"] = fit.naive_covariance.ravel(order="F")
    for quantity, value in ours.items():
        err = _relative_error(value, reference("cox", case, quantity))
        assert err <= RTOL, f"{case} {quantity}: relative error {err:.3g}"


def test_counting_process_sorted_sums_exact_ties(monkeypatch):
    import failpattern.stats._coxfit as kernel
    data, kwargs = _exact_case("veteran_split_strata_exact")
    dense = cox(data, **kwargs)
    monkeypatch.setattr(kernel, "_BLOCK_CELLS", 50)
    sorted_sums = cox(data, **kwargs)
    np.testing.assert_allclose(sorted_sums.coef, dense.coef, rtol=1e-10)
    np.testing.assert_allclose(sorted_sums.covariance, dense.covariance, rtol=1e-10)
    assert sorted_sums.loglik == pytest.approx(dense.loglik, rel=1e-13)
