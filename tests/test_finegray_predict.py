"""Predicted cumulative incidence of Fine-Gray models against ``cmprsk::predict.crr``.

Fixture: ``tests/reference/finegray_predict.R`` (cmprsk 2.2-11, crr with gtol = 1e-12).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from failpattern.errors import InputError
from failpattern.stats import fine_gray, fine_gray_cif
from fixtures import dataset, reference

TOL = 1e-9
MG_NEW = pd.DataFrame({"age": [60, 75, 80], "male": [0, 1, 1]})
PBC_NEW = pd.DataFrame({"age": [45, 60], "log_bili": [0, 1.5]})


def _mgus():
    return dataset("mgus2").dropna(subset=["time", "cause", "age", "male"]).reset_index(drop=True)


def _pbc():
    pbc = dataset("pbc").copy()
    pbc["log_bili"] = np.log(pbc["bili"])
    return pbc


CASES = {
    "mgus2_progression": (_mgus, "cause", ["age", "male"], 1, MG_NEW),
    "mgus2_death": (_mgus, "cause", ["age", "male"], 2, MG_NEW),
    "pbc_death": (_pbc, "status", ["age", "log_bili"], 2, PBC_NEW),
}


def _fit(case):
    load, cause, cov, coi, new = CASES[case]
    data = load()
    fit = fine_gray(data, duration="time", cause=cause, covariates=cov, cause_of_interest=coi,
                    tol=1e-12)
    return data, fit, cause, new


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_predict_crr(case):
    data, fit, cause, new = _fit(case)
    res = fine_gray_cif(data, fit, new, duration="time", cause=cause)
    np.testing.assert_array_equal(res.time, reference("finegray_predict", case, "uftime"))
    bfitj = reference("finegray_predict", case, "bfitj")
    np.testing.assert_allclose(res.baseline_jump, bfitj, rtol=TOL, atol=0)
    cif = reference("finegray_predict", case, "cif").reshape(len(new), -1).T   # column-major
    assert res.cif.shape == cif.shape
    np.testing.assert_allclose(res.cif, cif, rtol=0, atol=TOL)
    for c in new.columns:
        np.testing.assert_array_equal(reference("finegray_predict", case, f"profile_{c}"),
                                      new[c].to_numpy(float))


def test_tables():
    data, fit, cause, new = _fit("pbc_death")
    res = fine_gray_cif(data, fit, {"age": 45, "log_bili": 0.0}, duration="time", cause=cause)
    both = fine_gray_cif(data, fit, new, duration="time", cause=cause)
    np.testing.assert_array_equal(res.cif[:, 0], both.cif[:, 0])
    assert (np.diff(both.cif, axis=0) >= 0).all()
    # a higher linear predictor gives a higher CIF at every time
    assert both.linear_predictor[1] > both.linear_predictor[0]
    assert (both.cif[:, 1] > both.cif[:, 0]).all()
    table = both.to_frame()
    assert list(table.columns) == ["profile", "time", "baseline_jump", "cumulative_hazard", "cif"]
    np.testing.assert_array_equal(table["cif"].to_numpy()[: both.time.size], both.cif[:, 0])
    summary = both.summary
    np.testing.assert_allclose(summary["last_cif"], both.cif[-1])
    np.testing.assert_allclose(summary["linear_predictor"], new.to_numpy() @ fit.coef)
    with pytest.raises(ValueError):
        both.cif[0, 0] = 1.0


@pytest.mark.parametrize("newdata, message", [
    (pd.DataFrame({"age": [50]}), "lacks covariate.*'log_bili'"),
    (pd.DataFrame({"age": [50.0], "log_bili": [np.nan]}), "'log_bili'.*missing"),
    ({"age": "old", "log_bili": 1.0}, "'age' is not numeric"),
])
def test_bad_newdata(newdata, message):
    data, fit, cause, _ = _fit("pbc_death")
    with pytest.raises(InputError, match=message):
        fine_gray_cif(data, fit, newdata, duration="time", cause=cause)


def test_data_that_does_not_match_the_fit():
    data, fit, cause, new = _fit("pbc_death")
    with pytest.raises(InputError, match="does not match the fit"):
        fine_gray_cif(data.iloc[1:], fit, new, duration="time", cause=cause)
    with pytest.raises(InputError, match="log pseudo-likelihood"):
        fine_gray_cif(data.assign(age=data["age"].to_numpy()[::-1]), fit, new,
                      duration="time", cause=cause)
    with pytest.raises(InputError, match="column 'cause' is not in data"):
        fine_gray_cif(data, fit, new, duration="time", cause="cause")
    with pytest.raises(InputError, match="FineGrayResult"):
        fine_gray_cif(data, None, new, duration="time", cause=cause)


def test_cengroup_fit_baseline_matches_crr():
    pbc = _pbc()
    fit = fine_gray(pbc, duration="time", cause="status", covariates=["age", "log_bili"],
                    cause_of_interest=2, cengroup="edema", tol=1e-12)
    res = fine_gray_cif(pbc, fit, PBC_NEW, duration="time", cause="status", cengroup="edema")
    np.testing.assert_allclose(res.baseline_jump,
                               reference("finegray_predict", "pbc_cengroup_edema", "bfitj"),
                               rtol=TOL, atol=0)
    with pytest.raises(InputError, match="cengroup"):     # the groups were part of the fit
        fine_gray_cif(pbc, fit, PBC_NEW, duration="time", cause="status")


# ------------------------------------------------------------------ time-varying effects
# Fixture: tests/reference/finegray_tv_predict.R, predict.crr(fit, cov1, cov2) on the models
# of finegray_tv.R (crr fitted on the covariates as given, polished to |U| < 1e-12 |loglik|).

def _mgus_tv():
    return dataset("mgus2").dropna(subset=["time", "cause", "age", "male", "mspike"])


def _step(t):
    return (t > np.median(t)).astype(float)


# case: data, cause column, cause of interest, covariates, time_varying, cengroup, profiles
TV_CASES = {
    "mgus2_death_logt": (_mgus_tv, "cause", 2, ["age"], {"male": np.log}, None,
                         pd.DataFrame({"age": [60, 75, 80], "male": [0, 1, 1]})),
    "pbc_death_step": (_pbc, "status", 2, ["log_bili"], {"age": _step}, None,
                       pd.DataFrame({"log_bili": [0, 1.5], "age": [45, 60]})),
    "pbc_death_two_cengroup": (_pbc, "status", 2, ["age", "log_bili"],
                               {"log_bili": np.log, "albumin": lambda t: (t > 1500) * 1.0},
                               "female", pd.DataFrame({"age": [45, 60, 70],
                                                       "log_bili": [0, 1.5, -0.5],
                                                       "albumin": [3.5, 3, 4]})),
    "pbc_transplant_cov2only": (_pbc, "status", 1, [], {"age": np.log}, None,
                                pd.DataFrame({"age": [35, 50]})),
}


def _fit_tv(case):
    load, cause, coi, cov, tv, cg, new = TV_CASES[case]
    data = load()
    fit = fine_gray(data, duration="time", cause=cause, covariates=cov, cause_of_interest=coi,
                    time_varying=tv, cengroup=cg, tol=1e-12)
    kw = {"duration": "time", "cause": cause, "cengroup": cg}
    return data, fit, new, kw


@pytest.mark.parametrize("case", sorted(TV_CASES))
def test_time_varying_matches_predict_crr_cov2(case):
    data, fit, new, kw = _fit_tv(case)

    def ref(quantity):
        return reference("finegray_tv_predict", case, quantity)

    assert ref("converged")[0] == 1
    np.testing.assert_allclose(fit.coef, ref("coef"), rtol=1e-9, atol=0)
    res = fine_gray_cif(data, fit, new, **kw)
    k = len(fit.time_varying)
    np.testing.assert_array_equal(res.time, ref("uftime"))
    np.testing.assert_allclose(res.time_factors, ref("tfs").reshape(-1, k, order="F"),
                               rtol=1e-15, atol=0)
    np.testing.assert_allclose(res.baseline_jump, ref("bfitj"), rtol=TOL, atol=0)
    cif = ref("cif").reshape(len(new), -1).T   # column-major
    assert res.cif.shape == cif.shape == (res.time.size, len(new))
    np.testing.assert_allclose(res.cif, cif, rtol=0, atol=TOL)
    np.testing.assert_allclose(res.cif, cif, rtol=1e-8, atol=1e-300)
    for c in new.columns:
        np.testing.assert_array_equal(ref(f"profile_{c}"), new[c].to_numpy(float))
    assert res.time_varying == fit.time_varying


def test_time_varying_linear_predictor_and_tables():
    data, fit, new, kw = _fit_tv("pbc_death_two_cengroup")
    res = fine_gray_cif(data, fit, new, **kw)
    # one log_bili per profile, in both the constant and the log(t) term
    assert res.covariates == ("age", "log_bili", "albumin")
    b = fit.coef
    t = res.time
    z = new.to_numpy(float)
    lp = (z[:, 0] * b[0] + z[:, 1] * b[1])[None, :] \
        + np.log(t)[:, None] * z[:, 1] * b[2] + (t > 1500)[:, None] * z[:, 2] * b[3]
    np.testing.assert_allclose(res.linear_predictor, lp, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(res.cumulative_hazard,
                               np.cumsum(np.exp(lp) * res.baseline_jump[:, None], axis=0),
                               rtol=1e-13)
    assert (np.diff(res.cif, axis=0) >= 0).all()
    table = res.to_frame()
    assert list(table.columns) == ["profile", "time", "baseline_jump", "linear_predictor",
                                   "cumulative_hazard", "cif"]
    np.testing.assert_array_equal(table["linear_predictor"].to_numpy()[t.size:2 * t.size],
                                  res.linear_predictor[:, 1])
    summary = res.summary
    assert "linear_predictor" not in summary and "relative_risk" not in summary
    np.testing.assert_array_equal(summary["last_linear_predictor"], lp[-1])
    np.testing.assert_array_equal(summary["last_cif"], res.cif[-1])
    one = fine_gray_cif(data, fit, {"age": 60, "log_bili": 1.5, "albumin": 3}, **kw)
    np.testing.assert_array_equal(one.cif[:, 0], res.cif[:, 1])
    with pytest.raises(ValueError):
        res.linear_predictor[0, 0] = 1.0


def test_constant_time_function_predicts_as_the_fixed_effect():
    # tf = 2: the model of the covariate in cov1 with half its coefficient, the same curves
    pbc = _pbc()
    kw = {"duration": "time", "cause": "status", "cause_of_interest": 2, "tol": 1e-12}
    fixed = fine_gray(pbc, covariates=["log_bili", "age"], **kw)
    tv = fine_gray(pbc, covariates=["log_bili"],
                   time_varying={"age": lambda t: np.full(t.size, 2.0)}, **kw)
    a = fine_gray_cif(pbc, fixed, PBC_NEW, duration="time", cause="status")
    b = fine_gray_cif(pbc, tv, PBC_NEW, duration="time", cause="status")
    np.testing.assert_allclose(b.baseline_jump, a.baseline_jump, rtol=1e-9)
    np.testing.assert_allclose(b.cif, a.cif, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.linear_predictor, np.tile(a.linear_predictor, (a.time.size, 1)),
                               rtol=1e-9)


def test_fit_keeps_the_time_function_values():
    data, fit, _, _ = _fit_tv("mgus2_death_logt")
    uft = reference("finegray_tv_predict", "mgus2_death_logt", "uftime")
    np.testing.assert_array_equal(fit.time_factors, np.log(uft)[:, None])
    with pytest.raises(ValueError):
        fit.time_factors[0, 0] = 1.0
    constant = fine_gray(data, duration="time", cause="cause", covariates=["age"],
                         cause_of_interest=2)
    assert constant.time_factors is None


@pytest.mark.parametrize("newdata, message", [
    ({"age": 50.0, "log_bili": 0.0}, "lacks covariate.*'albumin'"),
    ({"age": 50.0, "albumin": 3.0}, "lacks covariate.*'log_bili'"),
    ({"age": 50.0, "log_bili": 0.0, "albumin": np.inf}, "'albumin'.*missing or infinite"),
    ({"age": 50.0, "log_bili": 0.0, "albumin": "low"}, "'albumin' is not numeric"),
])
def test_time_varying_bad_newdata(newdata, message):
    data, fit, _, kw = _fit_tv("pbc_death_two_cengroup")
    with pytest.raises(InputError, match=message):
        fine_gray_cif(data, fit, newdata, **kw)


def test_time_varying_data_or_fit_that_does_not_match():
    import dataclasses

    data, fit, new, kw = _fit_tv("pbc_death_step")
    with pytest.raises(InputError, match="does not match the fit"):
        fine_gray_cif(data.iloc[1:], fit, new, **kw)
    with pytest.raises(InputError, match="log pseudo-likelihood"):    # the time-varying column
        fine_gray_cif(data.assign(age=data["age"].to_numpy()[::-1]), fit, new, **kw)
    with pytest.raises(InputError, match="time_varying: column 'age' is not in data"):
        fine_gray_cif(data.drop(columns="age"), fit, new, **kw)
    # the fit's function values, not the data, define the model: others fail the check
    other = dataclasses.replace(fit, time_factors=np.log(fit.time_factors + 2.0))
    with pytest.raises(InputError, match="log pseudo-likelihood"):
        fine_gray_cif(data, other, new, **kw)
    shorter = dataclasses.replace(fit, time_factors=fit.time_factors[1:])
    with pytest.raises(InputError, match="distinct failure times"):
        fine_gray_cif(data, shorter, new, **kw)
    with pytest.raises(InputError, match="time_factors"):
        fine_gray_cif(data, dataclasses.replace(fit, time_factors=None), new, **kw)
    renamed = dataclasses.replace(fit, names=("log_bili", "age_late"), time_varying=("age_late",))
    with pytest.raises(InputError, match="not named '<column>\\*tf1'"):
        fine_gray_cif(data, renamed, new, **kw)
    cg_data, cg_fit, cg_new, _ = _fit_tv("pbc_death_two_cengroup")
    with pytest.raises(InputError, match="log pseudo-likelihood"):    # cengroup left out
        fine_gray_cif(cg_data, cg_fit, cg_new, duration="time", cause="status")
