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
