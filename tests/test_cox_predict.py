"""Predicted survival of Cox models against R ``survfit(coxph_fit, newdata=)``.

Fixture: ``tests/reference/cox_predict.R`` (survival 3.5-3). R gives the
per-time counts once per stratum and the curves as a time x profile matrix
(column-major); ours are one long block per curve, profile by profile, so the
counts are compared tiled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from failpattern.errors import InputError
from failpattern.stats import CoxSurvivalResult, cox, cox_survival
from fixtures import dataset, reference

TOL = 1e-9
LUNG_COV = ["age", "sex", "ph_ecog"]
LUNG_NEW = pd.DataFrame({"age": [50, 70, 62.5], "sex": [1, 2, 1], "ph_ecog": [0, 1, 2]})
VET_COV = ["trt", "karno", "age", "prior", "smallcell", "adeno", "large"]
VET_NEW = pd.DataFrame({"trt": [1, 2], "karno": [60, 80], "age": [65, 50], "prior": [0, 1],
                        "smallcell": [1, 0], "adeno": [0, 0], "large": [0, 1]})
BL_COV = ["rx", "number", "size"]
BL_NEW = pd.DataFrame({"rx": [1, 2], "number": [1, 3], "size": [1, 4]})
_PAIRS = [("time", "time"), ("n_risk", "n_risk"), ("n_event", "n_event"),
          ("n_censor", "n_censor"), ("surv", "survival"), ("cumhaz", "cumhaz"),
          ("std_err", "se_cumhaz"), ("lower", "lower"), ("upper", "upper")]


def _lung():
    return dataset("lung").dropna(subset=["time", "event", *LUNG_COV]).reset_index(drop=True)


def _veteran():
    vet = dataset("veteran").copy()
    for c in ("smallcell", "adeno", "large"):
        vet[c] = (vet["celltype"] == c).astype(int)
    return vet


def _bladder():
    bl = dataset("bladder2").copy()
    bl["w"] = 0.5 + (bl["id"] % 4) / 4
    return bl


def _assert_matches(case: str, res: CoxSurvivalResult) -> None:
    for quantity, attr in _PAIRS:
        r = reference("cox_predict", case, quantity)
        mine = np.asarray(getattr(res, attr))
        assert mine.size % r.size == 0, (case, quantity)
        r = np.tile(r, mine.size // r.size)
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(r), err_msg=f"{case} {quantity}")
        np.testing.assert_allclose(mine, r, rtol=0, atol=TOL, equal_nan=True,
                                   err_msg=f"{case} {quantity}")
    np.testing.assert_allclose(res.se, res.survival * res.se_cumhaz, rtol=1e-15)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_lung_matches_r(ties):
    lung = _lung()
    fit = cox(lung, duration="time", event="event", covariates=LUNG_COV, ties=ties)
    res = cox_survival(lung, fit, LUNG_NEW, duration="time", event="event")
    assert res.ctype == ties and res.n_curves == 3
    _assert_matches(f"lung_{ties}", res)
    # the profiles the fixture was computed for are the ones we passed
    for c in LUNG_COV:
        np.testing.assert_array_equal(reference("cox_predict", f"lung_{ties}", f"profile_{c}"),
                                      LUNG_NEW[c].to_numpy(float))


def test_default_curve_is_at_the_means():
    lung = _lung()
    fit = cox(lung, duration="time", event="event", covariates=LUNG_COV)
    res = cox_survival(lung, fit, duration="time", event="event")
    np.testing.assert_allclose(res.profiles[0], reference("cox_predict", "lung_mean_efron",
                                                          "means"), rtol=1e-14)
    assert res.linear_predictor[0] == pytest.approx(0.0, abs=1e-12)
    _assert_matches("lung_mean_efron", res)


@pytest.mark.parametrize("case, conf_type", [("lung_loglog", "log-log"), ("lung_plain", "plain")])
def test_conf_types_match_r(case, conf_type):
    lung = _lung()
    fit = cox(lung, duration="time", event="event", covariates=LUNG_COV)
    res = cox_survival(lung, fit, LUNG_NEW, duration="time", event="event",
                       conf_type=conf_type, alpha=0.1)
    _assert_matches(case, res)


def test_ctype_override_matches_r():
    lung = _lung()
    fit = cox(lung, duration="time", event="event", covariates=LUNG_COV)
    res = cox_survival(lung, fit, LUNG_NEW, duration="time", event="event", ctype="breslow")
    _assert_matches("lung_efron_ctype1", res)
    efron = cox_survival(lung, fit, LUNG_NEW, duration="time", event="event")
    assert np.abs(res.cumhaz - efron.cumhaz).max() > 1e-6   # the increments do differ


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_veteran_matches_r(ties):
    vet = _veteran()
    fit = cox(vet, duration="time", event="event", covariates=VET_COV, ties=ties)
    _assert_matches(f"veteran_{ties}",
                    cox_survival(vet, fit, VET_NEW, duration="time", event="event"))


def test_strata_from_newdata_matches_r():
    lung = _lung().dropna(subset=["inst"]).reset_index(drop=True)
    fit = cox(lung, duration="time", event="event", covariates=LUNG_COV, strata="inst")
    new = pd.DataFrame({"age": [60, 70], "sex": [2, 1], "ph_ecog": [1, 0], "inst": [1, 12]})
    res = cox_survival(lung, fit, new, duration="time", event="event")
    assert res.curve_stratum == ("inst=1", "inst=12")
    np.testing.assert_array_equal(np.diff(res.offsets),
                                  reference("cox_predict", "lung_strata_inst", "strata"))
    _assert_matches("lung_strata_inst", res)
    every = cox_survival(lung, fit, new[LUNG_COV], duration="time", event="event")
    n_strata = lung["inst"].nunique()
    assert every.n_curves == 2 * n_strata
    _assert_matches("lung_strata_all", every)
    table = every.to_frame()
    assert list(table.columns[:3]) == ["curve", "profile", "stratum"]
    assert len(table) == every.time.size


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_counting_process_matches_r(ties):
    bl = _bladder()
    fit = cox(bl, duration="stop", event="event", covariates=BL_COV, entry="start", ties=ties)
    res = cox_survival(bl, fit, BL_NEW, duration="stop", event="event", entry="start")
    _assert_matches(f"bladder2_{ties}", res)


def test_weighted_counting_process_matches_r():
    bl = _bladder()
    fit = cox(bl, duration="stop", event="event", covariates=BL_COV, entry="start", weights="w")
    res = cox_survival(bl, fit, BL_NEW, duration="stop", event="event", entry="start",
                       weights="w")
    _assert_matches("bladder2_weights_efron", res)


def test_result_tables_and_immutability():
    lung = _lung()
    fit = cox(lung, duration="time", event="event", covariates=LUNG_COV)
    res = cox_survival(lung, fit, {"age": [50, 70], "sex": [1, 2], "ph_ecog": [0, 1]},
                       duration="time", event="event")
    one = res.curve(1)
    assert list(one.columns) == ["time", "n_risk", "n_event", "n_censor", "cumhaz", "survival",
                                 "se_cumhaz", "se", "lower", "upper"]
    assert (np.diff(one["survival"]) <= 0).all() and (one["lower"] <= one["survival"]).all()
    summary = res.summary
    assert list(summary["profile"]) == [0, 1]
    assert summary.loc[1, "relative_risk"] > summary.loc[0, "relative_risk"]
    np.testing.assert_allclose(summary["linear_predictor"],
                               (res.profiles - lung[LUNG_COV].mean().to_numpy()) @ fit.coef)
    assert len(res.to_frame()) == 2 * one.shape[0]
    with pytest.raises(ValueError):
        res.survival[0] = 0.5
    single = cox_survival(lung, fit, {"age": 50, "sex": 1, "ph_ecog": 0},
                          duration="time", event="event")
    np.testing.assert_array_equal(single.survival, res.curve(0)["survival"])
    with pytest.raises(InputError, match="curve number"):
        res.curve(2)


def _lung_fit():
    lung = _lung()
    return lung, cox(lung, duration="time", event="event", covariates=LUNG_COV)


@pytest.mark.parametrize("newdata, message", [
    (pd.DataFrame({"age": [50], "sex": [1]}), "lacks covariate.*'ph_ecog'"),
    (pd.DataFrame({"age": [50, np.nan], "sex": [1, 1], "ph_ecog": [0, 0]}), "'age'.*missing"),
    (pd.DataFrame({"age": ["old"], "sex": [1], "ph_ecog": [0]}), "'age' is not numeric"),
    (pd.DataFrame({"age": [], "sex": [], "ph_ecog": []}), "no rows"),
    ([50, 1, 0], "DataFrame or a mapping"),
])
def test_bad_newdata(newdata, message):
    lung, fit = _lung_fit()
    with pytest.raises(InputError, match=message):
        cox_survival(lung, fit, newdata, duration="time", event="event")


def test_data_that_does_not_match_the_fit():
    lung, fit = _lung_fit()
    with pytest.raises(InputError, match="rows"):
        cox_survival(lung.iloc[:-1], fit, LUNG_NEW, duration="time", event="event")
    shuffled = lung.assign(age=lung["age"].to_numpy()[::-1])
    with pytest.raises(InputError, match="does not match the fit"):
        cox_survival(shuffled, fit, LUNG_NEW, duration="time", event="event")
    # the same rows in another order are the same data
    again = cox_survival(lung.iloc[::-1], fit, LUNG_NEW, duration="time", event="event")
    _assert_matches("lung_efron", again)
    with pytest.raises(InputError, match="column 'futime' is not in data"):
        cox_survival(lung, fit, LUNG_NEW, duration="futime", event="event")
    with pytest.raises(InputError, match="without entry"):
        cox_survival(lung.assign(start=-1.0), fit, LUNG_NEW, duration="time", event="event",
                     entry="start")
    with pytest.raises(InputError, match="CoxResult"):
        cox_survival(lung, "fit", LUNG_NEW, duration="time", event="event")
    with pytest.raises(InputError, match="conf_type"):
        cox_survival(lung, fit, LUNG_NEW, duration="time", event="event", conf_type="arcsin")


def test_counting_fit_needs_entry_and_weights():
    bl = _bladder()
    fit = cox(bl, duration="stop", event="event", covariates=BL_COV, entry="start", weights="w")
    with pytest.raises(InputError, match="with entry times"):
        cox_survival(bl, fit, BL_NEW, duration="stop", event="event", weights="w")
    with pytest.raises(InputError, match="with case weights"):
        cox_survival(bl, fit, BL_NEW, duration="stop", event="event", entry="start")


def test_bad_strata_in_newdata():
    vet = _veteran()
    fit = cox(vet, duration="time", event="event", covariates=["trt", "karno"],
              strata=["celltype", "prior"])
    new = pd.DataFrame({"trt": [1], "karno": [60], "celltype": ["adeno"]})
    with pytest.raises(InputError, match="not 'prior'"):
        cox_survival(vet, fit, new, duration="time", event="event")
    with pytest.raises(InputError, match="no stratum"):
        cox_survival(vet, fit, new.assign(celltype="bronchial", prior=0.0),
                     duration="time", event="event")
    ok = cox_survival(vet, fit, new.assign(prior=1.0), duration="time", event="event")
    assert ok.curve_stratum == ("celltype=adeno, prior=1",)
    assert ok.n_risk[0] == ((vet["celltype"] == "adeno") & (vet["prior"] == 1)).sum()


def test_near_tied_times_are_merged_as_the_fit_merged_them():
    """Times computed from dates differ by rounding; cox merges them (timefix) and so must the prediction."""
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"t": np.repeat(np.arange(1.0, 21.0), 5), "e": rng.integers(0, 2, 100),
                      "x": rng.normal(size=100)})
    d["t"] = d["t"] * (1 + 1e-12 * rng.random(100))
    fit = cox(d, duration="t", event="e", covariates="x")
    curves = cox_survival(d, fit, pd.DataFrame({"x": [0.0]}), duration="t", event="e")
    assert curves.curve(0)["time"].size == 20  # one time per merged group
    with pytest.raises(InputError, match="does not match the fit"):
        cox_survival(d, fit, pd.DataFrame({"x": [0.0]}), duration="t", event="e", timefix=False)
