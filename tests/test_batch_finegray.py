"""The batched Fine-Gray fitter (``failpattern.stats.batch_finegray.finegray_batch``) against
the one-cohort fit.

Every replicate must equal ``finegray_fit(finegray_prepare(...))`` on its own patients to
1e-10 (coefficients, robust standard errors, covariance, log pseudo-likelihood), for
``variance="crr"`` and ``"stata"``; where the one-cohort fit raises, the replicate is NaN
and not converged, and nothing raises.
"""

from __future__ import annotations

import numpy as np
import pytest

from failpattern.errors import ConvergenceError, InputError
from failpattern.stats import batch_finegray
from failpattern.stats.batch_finegray import FineGrayBatchResult, finegray_batch
from failpattern.stats.fit import finegray_fit, finegray_prepare

TOL = 1e-10


def _cohorts(rng: np.random.Generator, R: int, n: int, p: int):
    """``R`` cohorts of ``n`` patients, ``p`` 0/1 covariates, causes 0 (censored), 1, 2,
    times rounded to whole or half units (heavy ties), some at 0."""
    X = (rng.random((R, n, p)) < rng.uniform(0.2, 0.8, (R, 1, p))).astype(float)
    hazard = np.exp(X @ rng.normal(0.0, 0.7, p))
    t1 = rng.exponential(1.0 / hazard)
    t2 = rng.exponential(rng.uniform(0.5, 2.0, (R, 1)), (R, n))
    tc = rng.exponential(rng.uniform(0.8, 4.0, (R, 1)), (R, n))
    time = np.minimum(np.minimum(t1, t2), tc)
    cause = np.select([time == t1, time == t2], [1, 2], 0).astype(np.int64)
    unit = rng.choice([0.25, 0.5])
    time = np.floor(time / unit) * unit          # ties, and some times of 0
    return X, time, cause


def _one(X, time, cause, variance):
    try:
        return finegray_fit(finegray_prepare(time, cause, X), variance=variance)
    except (ConvergenceError, np.linalg.LinAlgError):
        return None


def _compare(res: FineGrayBatchResult, X, time, cause, mask, variance) -> tuple[int, np.ndarray]:
    """Assert every row equals its one-cohort fit; return (rows fitted, max |diff|)."""
    worst = np.zeros(4)
    fitted = 0
    for r in range(X.shape[0]):
        m = mask[r]
        one = _one(X[r][m], time[r][m], cause[r][m], variance)
        if one is None:
            assert not res.converged[r], f"row {r}: finegray_fit raises, the batch converged"
            assert np.isnan(res.coef[r]).all() and np.isnan(res.se[r]).all()
            assert np.isnan(res.covariance[r]).all()
            assert np.isnan(res.loglik[r]) and np.isnan(res.wald_p[r]).all()
            continue
        assert res.converged[r], f"row {r}: finegray_fit converged, the batch did not"
        fitted += 1
        diff = np.array([np.abs(res.coef[r] - one.coef).max(),
                         np.abs(res.se[r] - one.se).max(),
                         abs(res.loglik[r] - one.loglik),
                         np.abs(res.covariance[r] - one.covariance).max()])
        worst = np.maximum(worst, diff)
        assert (diff <= TOL).all(), (r, diff)
        assert res.iterations[r] == one.iterations
        assert res.n_events[r] == one.n_events
        assert res.loglik_null[r] == pytest.approx(one.loglik_null, abs=TOL)
    return fitted, worst


@pytest.mark.parametrize("variance", ["crr", "stata"])
def test_random_cohorts_equal_the_one_cohort_fit(variance):
    rng = np.random.default_rng(20261207)
    total = 0
    for _ in range(20):           # 20 batches of 3: 60 cohorts of 20..93 patients, p 1..3
        n, p = int(rng.integers(20, 94)), int(rng.integers(1, 4))
        X, time, cause = _cohorts(rng, 3, n, p)
        mask = np.ones((3, n), dtype=bool)
        if rng.random() < 0.5:    # each replicate's model on a random 80% of its rows
            mask = rng.random((3, n)) < 0.8
        res = finegray_batch(X, time, cause, mask=mask, variance=variance)
        assert res.variance == variance
        total += _compare(res, X, time, cause, mask, variance)[0]
    assert total >= 50  # most of the 60 cohorts are estimable


def test_degenerate_rows_are_nan_without_raising():
    rng = np.random.default_rng(7)
    X, time, cause = _cohorts(rng, 7, 40, 2)
    cause[1] = np.where(cause[1] == 1, 2, cause[1])        # no failure of interest
    X[2, :, 0] = 1.0                                        # a constant covariate
    X[3, :, 1] = X[3, :, 0]                                 # collinear covariates
    X[4, :, 0] = 0.0                                        # a group without failures of interest
    X[4, :5, 0] = 1.0
    cause[4, :5] = 0
    X[5, :, 1] = 1.0 - X[5, :, 0]                           # x0 + x1 constant
    res = finegray_batch(X, time, cause)
    assert res.converged.tolist() == [True, False, False, False, False, False, True]
    bad = slice(1, 6)
    assert np.isnan(res.coef[bad]).all() and np.isnan(res.se[bad]).all()
    assert np.isnan(res.covariance[bad]).all() and np.isnan(res.wald_p[bad]).all()
    assert np.isfinite(res.coef[[0, 6]]).all()
    for r in range(1, 6):              # the one-cohort fit refuses each of them
        with pytest.raises(ConvergenceError):
            finegray_fit(finegray_prepare(time[r], cause[r], X[r]))
    _compare(res, X, time, cause, np.ones((7, 40), dtype=bool), "crr")


def test_masked_out_patients_are_ignored_whatever_their_values():
    rng = np.random.default_rng(11)
    X, time, cause = _cohorts(rng, 4, 30, 3)
    mask = rng.random((4, 30)) < 0.7
    clean = finegray_batch(X, time, cause, mask=mask)
    X[~mask] = np.nan
    time[~mask] = np.nan
    cause[~mask] = 1
    dirty = finegray_batch(X, time, cause, mask=mask)
    np.testing.assert_array_equal(clean.converged, dirty.converged)
    np.testing.assert_allclose(dirty.coef, clean.coef, rtol=0, atol=1e-13)
    np.testing.assert_allclose(dirty.se, clean.se, rtol=0, atol=1e-13)


def test_chunks_give_the_same_rows(monkeypatch):
    rng = np.random.default_rng(3)
    X, time, cause = _cohorts(rng, 9, 25, 2)
    whole = finegray_batch(X, time, cause, variance="stata")
    monkeypatch.setattr(batch_finegray, "CELLS", 2 * 25 * (3 * 2 + 6))   # chunks of 2 replicates
    parts = finegray_batch(X, time, cause, variance="stata")
    np.testing.assert_array_equal(whole.converged, parts.converged)
    np.testing.assert_allclose(parts.coef, whole.coef, rtol=0, atol=1e-13)
    np.testing.assert_allclose(parts.se, whole.se, rtol=0, atol=1e-13)


def test_plan_table3_models_stacked():
    """The plan's Table 3 models (OF; DF, ODF and death competing; ``variance="stata"``), each
    fitted to its design (``PlanResult.model_data``) stacked twice."""
    from failpattern._resources import synthetic_path
    from failpattern.cohort import load_cohort
    from failpattern.study import load_study, run_plan

    plan = run_plan(load_cohort(synthetic_path("ni2019_exact.csv")), card=load_study())
    checked = 0
    for name, want in plan.finegray.items():
        data = plan.model_data(name)
        X = data.iloc[:, 2:].to_numpy()
        assert X.shape == (want.n, len(want.names)) and list(data.columns[2:]) == list(want.names)
        t, cause = data["time"].to_numpy(float), data["cause"].to_numpy()
        res = finegray_batch(np.stack([X] * 2), np.stack([t] * 2), np.stack([cause] * 2), variance="stata")
        assert res.converged.all(), name
        np.testing.assert_allclose(res.coef, np.tile(want.coef, (2, 1)), rtol=0, atol=TOL)
        np.testing.assert_allclose(res.se, np.tile(want.se, (2, 1)), rtol=0, atol=TOL)
        np.testing.assert_allclose(res.loglik, want.loglik, rtol=0, atol=TOL)
        checked += 1
    assert "t3.multi" in plan.finegray and checked >= 10


def test_shapes_and_variance_are_checked():
    with pytest.raises(ValueError, match="variance"):
        finegray_batch(np.zeros((2, 5, 1)), np.ones((2, 5)), np.ones((2, 5)), variance="hc0")
    with pytest.raises(ValueError, match="R, n"):
        finegray_batch(np.zeros((2, 5, 1)), np.ones((2, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="mask"):
        finegray_batch(np.zeros((2, 5, 1)), np.ones((2, 5)), np.ones((2, 5)), mask=np.ones((5, 2)))


# ----------------------------------------------------------------------------- one-covariate models
from failpattern.stats.batch_finegray import finegray_univariate_batch  # noqa: E402


@pytest.mark.parametrize("variance", ["crr", "stata"])
def test_univariate_models_equal_the_one_covariate_fit(variance):
    """Each (row, covariate) of finegray_univariate_batch is the one-cohort fit of that covariate alone
    on the row's patients; where that fit raises, the model is not converged (NaN)."""
    rng = np.random.default_rng(21)
    X, time, cause = _cohorts(rng, 25, 60, 4)
    mask = rng.random(time.shape) < 0.9
    which = rng.random((25, 4)) < 0.9
    res = finegray_univariate_batch(X, time, cause, mask=mask, which=which, variance=variance)
    fitted = 0
    for r in range(25):
        m = mask[r]
        for j in range(4):
            if not which[r, j]:
                assert not res.converged[r, j] and np.isnan(res.coef[r, j])
                continue
            try:
                one = finegray_fit(finegray_prepare(time[r][m], cause[r][m], X[r][m][:, [j]]), variance=variance)
            except ConvergenceError:
                assert not res.converged[r, j]
                continue
            assert res.converged[r, j]
            np.testing.assert_allclose(res.coef[r, j], one.coef[0], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(res.se[r, j], one.se[0], rtol=1e-10)
            np.testing.assert_allclose(res.loglik[r, j], one.loglik, rtol=1e-10)
            fitted += 1
    assert fitted > 50


def test_univariate_models_do_not_depend_on_their_batch_mates():
    """Bit for bit the same numbers for a row alone, in a few rows or in many (the sums over the
    failure times are in order, so the padding to the batch's widest row adds nothing)."""
    rng = np.random.default_rng(22)
    X, time, cause = _cohorts(rng, 30, 50, 5)
    whole = finegray_univariate_batch(X, time, cause, variance="stata")
    for lo, hi in ((0, 1), (3, 4), (5, 12), (29, 30)):
        part = finegray_univariate_batch(X[lo:hi], time[lo:hi], cause[lo:hi], variance="stata")
        for name in ("coef", "se", "loglik", "converged", "iterations"):
            assert np.array_equal(getattr(part, name), getattr(whole, name)[lo:hi], equal_nan=True), name


def test_univariate_models_refuse_other_covariates():
    X, time, cause = _cohorts(np.random.default_rng(1), 2, 10, 2)
    with pytest.raises(InputError, match="0/1"):
        finegray_univariate_batch(X * 2.0, time, cause)
