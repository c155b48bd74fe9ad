"""The batched Cox fitter (``failpattern.stats.batch_cox.cox_batch``) against the one-cohort fit.

Every replicate must equal ``coxph_fit`` on its own patients to 1e-10 (coefficients,
standard errors, log partial likelihood), for Breslow and Efron ties; where
``coxph_fit`` raises ``ConvergenceError`` the replicate is NaN and not converged,
and nothing raises.
"""

from __future__ import annotations

import numpy as np
import pytest

from failpattern.errors import ConvergenceError
from failpattern.stats.batch_cox import CoxBatchResult, cox_batch
from failpattern.stats.fit import coxph_fit

TOL = 1e-10


def _cohorts(rng: np.random.Generator, R: int, n: int, p: int):
    """``R`` cohorts of ``n`` patients, ``p`` 0/1 covariates, whole-unit times (heavy ties)."""
    X = (rng.random((R, n, p)) < rng.uniform(0.2, 0.8, (R, 1, p))).astype(float)
    hazard = np.exp(X @ rng.normal(0.0, 0.7, p))
    event_time = np.ceil(rng.exponential(1.0 / hazard) * 4.0)
    censor_time = np.ceil(rng.exponential(rng.uniform(0.8, 4.0, (R, 1)), (R, n)) * 4.0)
    time = np.minimum(event_time, censor_time)
    event = (event_time <= censor_time).astype(np.int64)
    return X, time, event


def _one(X, time, event, ties):
    try:
        return coxph_fit(X, time, event, ties=ties)
    except ConvergenceError:
        return None


def _compare(res: CoxBatchResult, X, time, event, mask, ties) -> tuple[int, np.ndarray]:
    """Assert every row equals its one-cohort fit; return (rows fitted, max |diff|)."""
    worst = np.zeros(4)
    fitted = 0
    for r in range(X.shape[0]):
        m = mask[r]
        one = _one(X[r][m], time[r][m], event[r][m], ties)
        if one is None:
            assert not res.converged[r], f"row {r}: coxph_fit raises, the batch converged"
            assert np.isnan(res.coef[r]).all() and np.isnan(res.se[r]).all()
            assert np.isnan(res.loglik[r]) and np.isnan(res.wald_p[r]).all()
            continue
        assert res.converged[r], f"row {r}: coxph_fit converged, the batch did not"
        fitted += 1
        diff = np.array([np.abs(res.coef[r] - one.coef).max(),
                         np.abs(res.se[r] - one.se).max(),
                         abs(res.loglik[r] - one.loglik),
                         np.abs(res.covariance[r] - one.covariance).max()])
        worst = np.maximum(worst, diff)
        assert (diff <= TOL).all(), (r, diff)
        assert res.n_events[r] == one.n_events
        assert res.loglik_null[r] == pytest.approx(one.loglik_null, abs=TOL)
    return fitted, worst


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_random_cohorts_equal_the_one_cohort_fit(ties):
    rng = np.random.default_rng(20261207)
    total = 0
    for p in range(1, 6):
        # equal arrays of 93, each replicate's model on a random 10..93 of them (mask)
        X, time, event = _cohorts(rng, 12, 93, p)
        mask = np.zeros((12, 93), dtype=bool)
        for r, size in enumerate(rng.integers(10, 94, 12)):
            mask[r, rng.choice(93, size, replace=False)] = True
        res = cox_batch(X, time, event, mask=mask, ties=ties)
        total += _compare(res, X, time, event, mask, ties)[0]
        # and without a mask, one cohort size per batch
        n = int(rng.integers(10, 94))
        X, time, event = _cohorts(rng, 8, n, p)
        res = cox_batch(X, time, event, ties=ties)
        total += _compare(res, X, time, event, np.ones((8, n), dtype=bool), ties)[0]
    assert total >= 80  # most of the 100 cohorts are estimable


def test_degenerate_rows_are_nan_without_raising():
    rng = np.random.default_rng(7)
    X, time, event = _cohorts(rng, 6, 40, 2)
    event[1] = 0                       # no event
    X[2, :, 0] = 1.0                   # a constant covariate
    X[3, :, 1] = X[3, :, 0]            # collinear covariates
    X[4, :, 0] = 0.0                   # a group without events: x0 = 1 only on censored rows
    X[4, :5, 0] = 1.0
    event[4, :5] = 0
    res = cox_batch(X, time, event)
    assert res.converged.tolist() == [True, False, False, False, False, True]
    assert np.isnan(res.coef[1:5]).all() and np.isnan(res.se[1:5]).all()
    assert np.isnan(res.covariance[1:5]).all() and np.isnan(res.wald_p[1:5]).all()
    assert np.isfinite(res.coef[[0, 5]]).all()
    for r in range(1, 5):              # the one-cohort fit refuses each of them
        with pytest.raises(ConvergenceError):
            coxph_fit(X[r], time[r], event[r], ties="breslow")
    _compare(res, X, time, event, np.ones((6, 40), dtype=bool), "breslow")


def test_masked_out_patients_are_ignored_whatever_their_values():
    rng = np.random.default_rng(11)
    X, time, event = _cohorts(rng, 4, 30, 3)
    mask = rng.random((4, 30)) < 0.7
    clean = cox_batch(X, time, event, mask=mask)
    X[~mask] = np.nan
    time[~mask] = np.nan
    event[~mask] = 1
    dirty = cox_batch(X, time, event, mask=mask)
    np.testing.assert_array_equal(clean.converged, dirty.converged)
    np.testing.assert_allclose(dirty.coef, clean.coef, rtol=0, atol=1e-13)
    np.testing.assert_allclose(dirty.se, clean.se, rtol=0, atol=1e-13)


def test_plan_multivariable_model_stacked():
    from failpattern._resources import synthetic_path
    from failpattern.cohort import load_cohort
    from failpattern.study import load_study, run_plan

    plan = run_plan(load_cohort(synthetic_path("ni2019_exact.csv")), card=load_study())
    d = plan.model_data("pfs1.cox.multi")
    want = plan.cox["pfs1.cox.multi"]
    X = d[list(want.covariates)].to_numpy(dtype=float)
    res = cox_batch(np.stack([X] * 3), np.stack([d["time"].to_numpy(float)] * 3),
                    np.stack([d["event"].to_numpy()] * 3))
    assert res.converged.all()
    np.testing.assert_allclose(res.coef, np.tile(want.coef, (3, 1)), rtol=0, atol=TOL)
    np.testing.assert_allclose(res.se, np.tile(want.se, (3, 1)), rtol=0, atol=TOL)
    np.testing.assert_allclose(res.loglik, want.loglik, rtol=0, atol=TOL)


def test_shapes_and_ties_are_checked():
    with pytest.raises(ValueError, match="ties"):
        cox_batch(np.zeros((2, 5, 1)), np.ones((2, 5)), np.ones((2, 5)), ties="exact")
    with pytest.raises(ValueError, match="R, n"):
        cox_batch(np.zeros((2, 5, 1)), np.ones((2, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="mask"):
        cox_batch(np.zeros((2, 5, 1)), np.ones((2, 5)), np.ones((2, 5)), mask=np.ones((5, 2)))


def test_solve_rows_of_no_rows():
    """An iteration where no row is active (every one halving its step) solves nothing, without error."""
    from failpattern.stats._batch_models import solve_rows

    out, bad = solve_rows(np.zeros((0, 2, 2)), np.zeros((0, 2)))
    assert out.shape == (0, 2) and bad.shape == (0,)


def test_solve_rows_with_a_singular_row_solves_the_others_together():
    """One singular row does not fail the stack: the others are the stack's own solves, bit for bit."""
    from failpattern.stats._batch_models import solve_rows

    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 2, 2)) + 3.0 * np.eye(2)
    b = rng.normal(size=(6, 2, 1))
    a[2] = 0.0
    out, bad = solve_rows(a, b)
    assert bad.tolist() == [False, False, True, False, False, False]
    keep = np.arange(6) != 2
    assert np.array_equal(out[keep], np.linalg.solve(a[keep], b[keep]))


# ----------------------------------------------------------------------------- one-covariate models
from failpattern.stats.batch_cox import cox_univariate_batch


def test_univariate_models_equal_the_one_covariate_fit():
    """Each (row, covariate) of cox_univariate_batch is coxph_fit of that covariate alone on the row's
    patients (and cox_batch's row); where coxph_fit raises, the model is not converged (NaN)."""
    rng = np.random.default_rng(31)
    X, time, event = _cohorts(rng, 40, 70, 4)
    mask = rng.random(time.shape) < 0.85
    X[5, :, 1] = 1.0                    # a constant covariate
    event[7] = 0                        # no event
    which = rng.random((40, 4)) < 0.9
    res = cox_univariate_batch(X, time, event, mask=mask, which=which)
    fitted = 0
    for j in range(4):
        one_col = cox_batch(X[:, :, [j]], time, event, mask=mask)
        for r in range(40):
            if not which[r, j]:
                assert not res.converged[r, j] and np.isnan(res.coef[r, j])
                continue
            assert res.converged[r, j] == one_col.converged[r]
            m = mask[r]
            one = _one(X[r][m][:, [j]], time[r][m], event[r][m], "breslow")
            if one is None:
                assert not res.converged[r, j] and np.isnan(res.coef[r, j]) and np.isnan(res.se[r, j])
                continue
            assert res.converged[r, j]
            assert abs(res.coef[r, j] - one.coef[0]) <= TOL and abs(res.se[r, j] - one.se[0]) <= TOL
            assert abs(res.loglik[r, j] - one.loglik) <= TOL
            assert res.loglik_null[r, j] == pytest.approx(one.loglik_null, abs=TOL)
            fitted += 1
    assert fitted > 100


def test_univariate_models_do_not_depend_on_their_batch_mates():
    """Bit for bit the same numbers for a row alone, in a few rows or in many (the sums over the
    event times run in order, so the padding to the block's widest row adds nothing)."""
    rng = np.random.default_rng(32)
    X, time, event = _cohorts(rng, 30, 50, 5)
    whole = cox_univariate_batch(X, time, event)
    for lo, hi in ((0, 1), (3, 4), (5, 12), (29, 30)):
        part = cox_univariate_batch(X[lo:hi], time[lo:hi], event[lo:hi])
        for name in ("coef", "se", "loglik", "loglik_null", "converged", "iterations"):
            assert np.array_equal(getattr(part, name), getattr(whole, name)[lo:hi], equal_nan=True), name


def test_univariate_models_refuse_other_covariates_and_ties():
    rng = np.random.default_rng(1)
    X, time, event = _cohorts(rng, 2, 10, 2)
    with pytest.raises(ValueError, match="0/1"):
        cox_univariate_batch(X * 2.0, time, event)
    with pytest.raises(ValueError, match="breslow"):
        cox_univariate_batch(X, time, event, ties="efron")
    with pytest.raises(ValueError, match="which"):
        cox_univariate_batch(X, time, event, which=np.ones((2, 3), dtype=bool))
