"""Therneau and Grambsch's hand-computed Cox examples (R survival's tests/book1.R ... book7.R).

The appendix of Therneau & Grambsch (2000), "Modeling Survival Data", works two
tiny data sets by hand; survival's test files book1.R to book7.R write the
resulting closed-form expressions in beta (``r = exp(beta)``) as R functions
``byhand``. Each is re-derived here in Python from those files' expressions
and compared at 1e-9 with our :func:`~failpattern.stats.cox` (coefficients,
log partial likelihoods, score test, covariance, robust variance) and, at
several values of beta, with the kernel's log likelihood, score and
information and the per-row score residuals behind the robust variance:

* book1.R — data set 1 (``test1``), Breslow ties;
* book2.R — data set 1, Efron ties;
* book3.R — data set 2 (``test2``, (start, stop] rows), Breslow; and replicated
  three times with shifted times in strata (``test2b``);
* book4.R — data set 2, Efron; and ``test2b``;
* book5.R — weighted data set (``testw1``), Breslow; equal to the data replicated
  by its integer weights (``testw2``);
* book6.R — ``testw1``, Efron;
* book7.R — data set 1, exact ties (and lung fitted as (time, status) and as
  (0, time] rows with exact ties: equal, as R's coxexact and agexact).

Not covered, because failpattern does not compute them: martingale and
Schoenfeld residuals (book1-7), predictions (``predict``: lp, risk, expected,
terms), the baseline survival / cumulative hazard of a fitted model and its
variance (``survfit(fit)``), the Nelson-Aalen / Kaplan-Meier / Fleming-Harrington
influence matrices (book1.R), fits stopped after one or two iterations
(``iter = 1``) other than through the Newton step ``u/imat`` checked on the
kernel, and book7's residuals of a fit whose coefficient is infinite (we raise
``ConvergenceError`` there, tested). Score residuals are internal (they give the
robust variance) and are checked through the kernel.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from failpattern.errors import ConvergenceError
from failpattern.stats import cox
from failpattern.stats._coxfit import _CountingDesign, _Design, _ExactDesign
from fixtures import dataset

RTOL = 1e-9
ATOL = 1e-12
BETAS = [-1.0, 0.0, 0.5, 1.3]


def _close(ours, theirs, what: str = "") -> None:
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(theirs, float),
                               rtol=RTOL, atol=ATOL, err_msg=what)


# --- data ------------------------------------------------------------------------------

def _test1() -> pd.DataFrame:
    """book1.R's test1 without its row with status NA (R: na.exclude drops it)."""
    data = pd.DataFrame({"time": [9, 3, 1, 1, 6, 6, 8], "status": [1, np.nan, 1, 0, 1, 1, 0],
                         "x": [0, 2, 1, 1, 1, 0, 0]}, dtype=float)
    return data.dropna().reset_index(drop=True)


# book1.R's score residuals are listed for rows in time order: R's rows 3:7 then 1 of
# test1, i.e. rows 1..5 then 0 of _test1() (which dropped R's row 2)
TEST1_ORDER = [1, 2, 3, 4, 5, 0]


def _test2(copies: int = 1) -> pd.DataFrame:
    """book3.R's test2; with copies=3 its test2b (group g shifts both times by g)."""
    base = pd.DataFrame({"start": [1, 2, 5, 2, 1, 7, 3, 4, 8, 8],
                         "stop": [2, 3, 6, 7, 8, 9, 9, 9, 14, 17],
                         "event": [1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
                         "x": [1, 0, 0, 1, 0, 1, 1, 1, 0, 0]}, dtype=float)
    if copies == 1:
        return base
    rows = pd.concat([base] * copies, ignore_index=True)
    rows["group"] = np.repeat(np.arange(1, copies + 1), len(base))
    rows["start"] += rows["group"]
    rows["stop"] += rows["group"]
    return rows


def _testw1() -> pd.DataFrame:
    """book5.R / book6.R's weighted data set."""
    return pd.DataFrame({"time": [1, 1, 2, 2, 2, 2, 3, 4, 5],
                         "status": [1, 0, 1, 1, 1, 0, 0, 1, 0],
                         "x": [2, 0, 1, 1, 0, 1, 0, 1, 0],
                         "wt": [1, 2, 3, 4, 3, 2, 1, 2, 1]}, dtype=float)


def _kernel(data, ties, *, time="time", event="status", entry=None, weights=None, strata=None):
    """The design cox_fit builds for these arguments, and its score-residual twin."""
    X = data[["x"]].to_numpy(float)
    t = data[time].to_numpy(float)
    e = data[event].to_numpy(np.int64)
    start = None if entry is None else data[entry].to_numpy(float)
    w = None if weights is None else data[weights].to_numpy(float)
    s = None if strata is None else pd.factorize(data[strata], sort=True)[0].astype(np.int64)
    if ties == "exact":
        design = _ExactDesign(X, t, e, s, start)
    elif start is None and w is None:
        design = _Design(X, t, e, s, ties == "efron")
    else:
        design = _CountingDesign(X, start, t, e, w, s, ties == "efron")
    residuals = _CountingDesign(X, start, t, e, w, s, ties == "efron")
    return design, residuals


def _evaluate(design, beta: float):
    loglik, score, info = design.evaluate(np.array([beta]))
    return loglik, score[0], info[0, 0]


# --- the hand-computed expressions -----------------------------------------------------

def book1(beta):
    """book1.R byhand1: test1, Breslow (loglik, u, imat, score residuals)."""
    r = math.exp(beta)
    loglik = 2 * beta - (math.log(3 * r + 3) + 2 * math.log(r + 3))
    u = (6 + 3 * r - r**2) / ((r + 1) * (r + 3))
    imat = r / (r + 1)**2 + 6 * r / (r + 3)**2
    a, b = 3 * (r + 1)**2, (r + 3)**2
    score = [(2 * r + 3) / a, -r / a, -r / a + 3 * (3 - r) / b, r / a - r * (r + 1) / b,
             r / a + 2 * r / b, r / a + 2 * r / b]
    return loglik, u, imat, np.array(score)


def book2(beta):
    """book2.R byhand: test1, Efron."""
    r = math.exp(beta)
    loglik = 2 * beta - (math.log(3 * r + 3) + math.log((r + 5) / 2) + math.log(r + 3))
    u = (30 + 23 * r - r**3) / ((r + 1) * (r + 3) * (r + 5))

    def tfun(x):
        return x - x**2

    imat = tfun(r / (r + 1)) + tfun(r / (r + 5)) + tfun(r / (r + 3))
    a, b, d = r + 1, r + 3, r + 5
    abd2 = (a * b * d)**2
    tail = 2 * r * (177 + r * (282 + r * (182 + r * (50 + 5 * r)))) / (3 * abd2)
    score = [(2 * r + 3) / (3 * a**2), -r / (3 * a**2),
             (675 + r * (1305 + r * (756 + r * (-4 + r * (-79 - 13 * r))))) / (3 * abd2),
             r * (1 / (3 * a**2) - a / (2 * b**2) - b / (2 * d**2)), tail, tail]
    return loglik, u, imat, np.array(score)


BOOK2_BETA = math.log(math.cos(math.acos((45 / 23) * math.sqrt(3 / 23)) / 3)
                      * 2 * math.sqrt(23 / 3))         # book2.R's truebeta
BOOK1_BETA = math.log(1.5 + math.sqrt(33) / 2)          # book1.R: "the true solution"


def _score_table(wtmat, hazard, x, observed):
    """Score residuals as book3-6.R: dM = observed - weights * hazard; rowSums(dM (x - xbar))."""
    xbar = (wtmat * x[:, None]).sum(axis=0) / wtmat.sum(axis=0)
    dM = observed - wtmat * hazard[None, :]
    return (dM * (x[:, None] - xbar[None, :])).sum(axis=1)


TEST2_X = np.array([1, 0, 0, 1, 0, 1, 1, 1, 0, 0], dtype=float)


def book3(beta):
    """book3.R byhand: test2 ((start, stop] rows), Breslow."""
    r = math.exp(beta)
    loglik = (4 * beta - math.log(r + 1) - math.log(r + 2) - 3 * math.log(3 * r + 2)
              - 2 * math.log(3 * r + 1))
    u = (1 / (r + 1) + 1 / (3 * r + 1) + 4 / (3 * r + 2)
         - (r / (r + 2) + 3 * r / (3 * r + 2) + 3 * r / (3 * r + 1)))
    imat = (r / (r + 1)**2 + 2 * r / (r + 2)**2 + 6 * r / (3 * r + 2)**2
            + 3 * r / (3 * r + 1)**2 + 3 * r / (3 * r + 1)**2 + 12 * r / (3 * r + 2)**2)
    hazard = np.array([1 / (r + 1), 1 / (r + 2), 1 / (3 * r + 2), 1 / (3 * r + 1),
                       1 / (3 * r + 1), 2 / (3 * r + 2)])
    # one row per observation, one column per death time 2, 3, 6, 7, 8, 9 (column-major in R)
    riskmat = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0,
                        0, 1, 0, 1, 1, 0, 0, 0, 0, 0,
                        0, 0, 1, 1, 1, 0, 1, 1, 0, 0,
                        0, 0, 0, 1, 1, 0, 1, 1, 0, 0,
                        0, 0, 0, 0, 1, 1, 1, 1, 0, 0,
                        0, 0, 0, 0, 0, 1, 1, 1, 1, 1], float).reshape(10, 6, order="F")
    risk = np.where(TEST2_X == 1, r, 1.0)
    observed = np.zeros((10, 6))
    observed[np.arange(6), np.arange(6)] = 1
    observed[6, 5] += 1
    score = _score_table(risk[:, None] * riskmat, hazard, TEST2_X, observed)
    return loglik, u, imat, score


def book4(beta):
    """book4.R byhand: test2, Efron."""
    r = math.exp(beta)
    loglik = 4 * beta - (math.log(r + 1) + math.log(r + 2) + 2 * math.log(3 * r + 2)
                         + 2 * math.log(3 * r + 1) + math.log(2 * r + 2))
    u = (1 / (r + 1) + 1 / (3 * r + 1) + 2 * (1 / (3 * r + 2) + 1 / (2 * r + 2))
         - (r / (r + 2) + 3 * r / (3 * r + 2) + 3 * r / (3 * r + 1)))
    imat = r * (1 / (r + 1)**2 + 2 / (r + 2)**2 + 6 / (3 * r + 2)**2 + 6 / (3 * r + 1)**2
                + 6 / (3 * r + 2)**2 + 4 / (2 * r + 2)**2)
    hazard = np.array([1 / (r + 1), 1 / (r + 2), 1 / (3 * r + 2), 1 / (3 * r + 1),
                       1 / (3 * r + 1), 1 / (3 * r + 2), 1 / (2 * r + 2)])
    riskmat = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0,
                        0, 1, 0, 1, 1, 0, 0, 0, 0, 0,
                        0, 0, 1, 1, 1, 0, 1, 1, 0, 0,
                        0, 0, 0, 1, 1, 0, 1, 1, 0, 0,
                        0, 0, 0, 0, 1, 1, 1, 1, 0, 0,
                        0, 0, 0, 0, 0, 1, 1, 1, 1, 1,
                        0, 0, 0, 0, 0, .5, .5, 1, 1, 1], float).reshape(10, 7, order="F")
    risk = np.where(TEST2_X == 1, r, 1.0)
    observed = np.zeros((10, 7))
    observed[np.arange(5), np.arange(5)] = 1
    observed[5:7, 5:7] += 0.5
    score = _score_table(risk[:, None] * riskmat, hazard, TEST2_X, observed)
    return loglik, u, imat, score


TESTW1_X = np.array([2, 0, 1, 1, 0, 1, 0, 1, 0], dtype=float)
TESTW1_WT = np.array([1, 2, 3, 4, 3, 2, 1, 2, 1], dtype=float)


def book5(beta):
    """book5.R byhand: testw1 with case weights, Breslow (score residuals unweighted)."""
    r = math.exp(beta)
    loglik = 11 * beta - (math.log(r**2 + 11 * r + 7) + 10 * math.log(11 * r + 5)
                          + 2 * math.log(2 * r + 1))
    hazard = np.array([1 / (r**2 + 11 * r + 7), 10 / (11 * r + 5), 2 / (2 * r + 1)])
    xbar = np.array([(2 * r**2 + 11 * r) * hazard[0], 11 * r / (11 * r + 5), r * hazard[2]])
    u = 11 - (xbar[0] + 10 * xbar[1] + 2 * xbar[2])
    imat = ((4 * r**2 + 11 * r) * hazard[0] - xbar[0]**2 + 10 * (xbar[1] - xbar[1]**2)
            + 2 * (xbar[2] - xbar[2]**2))
    # one column per death: times 1, 2, 2, 2, 4
    riskmat = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1,
                        0, 0, 1, 1, 1, 1, 1, 1, 1,
                        0, 0, 1, 1, 1, 1, 1, 1, 1,
                        0, 0, 1, 1, 1, 1, 1, 1, 1,
                        0, 0, 0, 0, 0, 0, 0, 1, 1], float).reshape(9, 5, order="F")
    wtmat = np.array([r**2, 2, 3 * r, 4 * r, 3, 2 * r, 1, 2 * r, 1])[:, None] * riskmat
    risk = np.array([r**2, 1, r, r, 1, r, 1, r, 1])
    hazmat = riskmat * (np.array([1, 3, 4, 3, 2]) / wtmat.sum(axis=0))[None, :]
    dM = -risk[:, None] * hazmat
    dM[0, 0] += 1
    for i in range(1, 4):
        dM[i + 1, i] += 1
    dM[7, 4] += 1
    score = (dM * (TESTW1_X[:, None] - xbar[[0, 1, 1, 1, 2]][None, :])).sum(axis=1)
    return loglik, u, imat, score


def book6(beta):
    """book6.R byhand: testw1 with case weights, Efron (u: the weighted score residuals' sum)."""
    r = math.exp(beta)
    a, b = 7 * r + 3, 4 * r + 2
    loglik = 11 * beta - (math.log(r**2 + 11 * r + 7) + 10 * math.log(11 * r + 5) / 3
                          + 10 * math.log(a * 2 / 3 + b) / 3 + 10 * math.log(a / 3 + b) / 3
                          + 2 * math.log(2 * r + 1))
    riskmat = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1,
                        0, 0, 1, 1, 1, 1, 1, 1, 1,
                        0, 0, 2 / 3, 2 / 3, 2 / 3, 1, 1, 1, 1,
                        0, 0, 1 / 3, 1 / 3, 1 / 3, 1, 1, 1, 1,
                        0, 0, 0, 0, 0, 0, 0, 1, 1], float).reshape(9, 5, order="F")
    wtmat = np.array([r**2, 2, 3 * r, 4 * r, 3, 2 * r, 1, 2 * r, 1])[:, None] * riskmat
    xbar = (TESTW1_X[:, None] * wtmat).sum(axis=0) / wtmat.sum(axis=0)
    hazard1 = 1 / (r**2 + 11 * r + 7)
    imat = ((4 * r**2 + 11 * r) * hazard1 - xbar[0]**2
            + 10 * np.mean(xbar[1:4] - xbar[1:4]**2) + 2 * (xbar[4] - xbar[4]**2))
    risk = np.array([r**2, 1, r, r, 1, r, 1, r, 1])
    hazmat = riskmat * (np.array([1, 10 / 3, 10 / 3, 10 / 3, 2]) / wtmat.sum(axis=0))[None, :]
    dM = -risk[:, None] * hazmat
    dM[0, 0] += 1
    dM[2:5, 1:4] += 1 / 3
    dM[7, 4] += 1
    score = (dM * (TESTW1_X[:, None] - xbar[None, :])).sum(axis=1)
    return loglik, float(TESTW1_WT @ score), imat, score


def book7(beta):
    """book7.R byhand7: test1, exact ties."""
    r = math.exp(beta)
    return 2 * (beta - math.log(3 * r + 3)), 2 / (r + 1), 2 * r / (r + 1)**2


def _root(book) -> float:
    """The maximum partial likelihood estimate: the root of the book's u(beta)."""
    return brentq(lambda b: book(b)[1], -5.0, 5.0, xtol=1e-15, rtol=1e-15)


# --- the cases --------------------------------------------------------------------------

CASES = {
    # name: (hand formula, data, cox keywords, score-residual row order, strata copies)
    "book1_breslow": (book1, _test1, dict(duration="time", event="status", ties="breslow"),
                      TEST1_ORDER),
    "book2_efron": (book2, _test1, dict(duration="time", event="status", ties="efron"),
                    TEST1_ORDER),
    "book3_counting_breslow": (book3, _test2, dict(duration="stop", event="event",
                                                   entry="start", ties="breslow"), None),
    "book4_counting_efron": (book4, _test2, dict(duration="stop", event="event",
                                                 entry="start", ties="efron"), None),
    "book5_weights_breslow": (book5, _testw1, dict(duration="time", event="status",
                                                   weights="wt", ties="breslow"), None),
    "book6_weights_efron": (book6, _testw1, dict(duration="time", event="status",
                                                 weights="wt", ties="efron"), None),
}


def _kernel_for(name):
    book, make, kw, order = CASES[name]
    data = make()
    return book, data, kw, order, _kernel(data, kw["ties"], time=kw["duration"],
                                          event=kw["event"], entry=kw.get("entry"),
                                          weights=kw.get("weights"))


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("name", list(CASES))
def test_loglik_score_information_by_hand(name, beta):
    book, _, _, _, (design, _) = _kernel_for(name)
    loglik, u, imat, _ = book(beta)
    ours = _evaluate(design, beta)
    _close(ours, [loglik, u, imat], f"{name} at beta={beta}")


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("name", list(CASES))
def test_score_residuals_by_hand(name, beta):
    book, _, _, order, (_, residuals) = _kernel_for(name)
    theirs = book(beta)[3]
    ours = residuals.score_residuals(np.array([beta]))[:, 0]
    if order is not None:
        ours = ours[order]
    _close(ours, theirs, f"{name} score residuals at beta={beta}")


@pytest.mark.parametrize("name", list(CASES))
def test_newton_step_from_zero(name):
    # book1.R: one iteration from 0 gives 8/5 (Breslow); book3.R: beta1 = u/imat
    book, _, _, _, (design, _) = _kernel_for(name)
    _, u, imat = _evaluate(design, 0.0)
    _, u0, imat0, _ = book(0.0)
    _close(u / imat, u0 / imat0)
    if name == "book1_breslow":
        _close(u / imat, 8 / 5)


@pytest.mark.parametrize("name", list(CASES))
def test_fit_by_hand(name):
    book, make, kw, _ = CASES[name]
    fit = cox(make(), covariates="x", **kw)
    beta = _root(book)
    if name == "book1_breslow":
        _close(beta, BOOK1_BETA)
    if name == "book2_efron":
        _close(beta, BOOK2_BETA)
    if name == "book3_counting_breslow":
        assert beta == pytest.approx(-0.084526081, abs=5e-10)   # book3.R's value (9 digits)
    if name == "book5_weights_breslow":
        assert beta == pytest.approx(0.85955744, abs=5e-9)      # book5.R's value (8 digits)
    loglik0, u0, imat0, _ = book(0.0)
    loglik, _, imat, _ = book(beta)
    _close(fit.coef, [beta], "coef")
    _close([fit.loglik_null, fit.loglik], [loglik0, loglik], "loglik")
    _close(fit.score_test.statistic, u0**2 / imat0, "score test")     # book3.R: fit0$score
    _close(fit.covariance, [[1 / imat]], "variance")
    _close(fit.likelihood_ratio_test.statistic, 2 * (loglik - loglik0), "lr")


@pytest.mark.parametrize("name", list(CASES))
def test_robust_variance_by_hand(name):
    # the robust variance is sum_i (w_i * score_i / imat)^2 (dfbeta residuals)
    book, make, kw, _ = CASES[name]
    fit = cox(make(), covariates="x", robust=True, **kw)
    beta = _root(book)
    _, _, imat, score = book(beta)
    w = TESTW1_WT if "weights" in kw else 1.0
    _close(fit.covariance, [[np.sum((w * score / imat)**2)]], "robust variance")
    _close(fit.naive_covariance, [[1 / imat]], "naive variance")


@pytest.mark.parametrize("ties,book", [("breslow", book3), ("efron", book4)])
def test_strata_replicated_three_times(ties, book):
    # book3.R / book4.R test2b: three shifted copies in strata give 3 x loglik and imat
    data = _test2(copies=3)
    design, _ = _kernel(data, ties, time="stop", event="event", entry="start", strata="group")
    for beta in BETAS:
        loglik, u, imat, _ = book(beta)
        _close(_evaluate(design, beta), [3 * loglik, 3 * u, 3 * imat], f"beta={beta}")
    fit = cox(data, duration="stop", event="event", covariates="x", entry="start",
              strata="group", ties=ties)
    beta = _root(book)
    _close(fit.coef, [beta])
    _close(fit.loglik, 3 * book(beta)[0])
    _close(fit.covariance, [[1 / (3 * book(beta)[2])]])


def test_breslow_weights_equal_replication():
    # book5.R: testw2 replicates each row of testw1 by its weight
    data = _testw1()
    replicated = data.loc[data.index.repeat(data["wt"].astype(int))].reset_index(drop=True)
    kw = dict(duration="time", event="status", covariates="x", ties="breslow")
    weighted = cox(data, weights="wt", **kw)
    copies = cox(replicated, **kw)
    _close(weighted.coef, copies.coef)
    _close(weighted.loglik, copies.loglik)
    _close(weighted.covariance, copies.covariance)


@pytest.mark.parametrize("beta", BETAS)
def test_exact_by_hand(beta):
    # book7.R byhand7: at time 6 the two deaths (x = 1 and 0) are one of the 2-subsets
    # of {r, 1, 1, 1}: r / (3r + 3); at time 1, r / (3r + 3) as well
    design, _ = _kernel(_test1(), "exact")
    _close(_evaluate(design, beta), book7(beta), f"beta={beta}")


def test_exact_infinite_beta_and_first_step():
    data = _test1()
    design, _ = _kernel(data, "exact")
    _, u0, imat0 = _evaluate(design, 0.0)
    _close(u0 / imat0, book7(0.0)[1] / book7(0.0)[2])   # book7.R fit1: u * var
    # u = 2 / (r + 1) > 0 for every beta: the estimate is +infinity (book7.R's warning)
    with pytest.raises(ConvergenceError, match="infinity"):
        cox(data, duration="time", event="status", covariates="x", ties="exact")


def test_exact_lung_right_censored_equals_counting():
    # book7.R: coxph(Surv(time, status) ~ age + ph.ecog + sex, method = "exact") equals the
    # same model on (0, time] rows (R: coxexact and agexact)
    lung = dataset("lung").dropna(subset=["time", "event", "age", "ph_ecog", "sex"])
    kw = dict(duration="time", event="event", covariates=["age", "ph_ecog", "sex"],
              ties="exact")
    plain = cox(lung, **kw)
    counting = cox(lung.assign(zz=0.0), **kw, entry="zz")
    _close(counting.coef, plain.coef)
    _close([counting.loglik_null, counting.loglik], [plain.loglik_null, plain.loglik])
    _close(counting.covariance, plain.covariance)
    _close(counting.score_test.statistic, plain.score_test.statistic)
