"""The fit layer: the estimators on prepared numpy arrays, without validation.

Why this module exists: each public estimator (:func:`~failpattern.stats.km.kaplan_meier`,
:func:`~failpattern.stats.logrank.logrank`, :func:`~failpattern.stats.cox.cox`,
:func:`~failpattern.stats.finegray.fine_gray`,
:func:`~failpattern.stats.contingency.contingency_test`,
:func:`~failpattern.stats.twosample.two_sample_test`) validates its arguments
and then calls an array kernel that trusts them. Code that has validated its
data once and fits many models on it (the analysis plan, run on thousands of
simulated cohorts in a replicate study) calls the kernels directly; this
module is the public, documented door to them, as R's ``coxph.fit`` and
``survdiff.fit`` sit under ``coxph`` and ``survdiff``.

Every function here is a thin wrapper around the same kernel its validated
function runs, with the same arguments, so it returns the same numbers to
the last bit (or, for :func:`finegray_fit_univariate`, to rounding, as
documented there) and the same result types. Nothing is checked: the
documented contract of each argument (dtype, shape, no NaN, at least one
event, ...) is the caller's to keep, and input that breaks it gives wrong
results or an arbitrary error rather than an :class:`~failpattern.errors.InputError`.
Arguments after the arrays are keyword-only.

Note: :func:`coxph_fit` returns a :class:`~failpattern.stats.cox.CoxResult`;
``failpattern.stats.cox_fit`` (the matrix-level Newton-Raphson it calls)
returns the raw :class:`~failpattern.stats.cox.CoxFit`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from failpattern.stats import _finegray_kernel as _fgk
from failpattern.stats._coxfit import cox_fit as _cox_kernel
from failpattern.stats._finegray_batch import fit_univariate as _fit_univariate
from failpattern.stats.contingency import _auto_choice, _chisq, _expected, _fisher_2x2, _g_test, _n_minus_1
from failpattern.stats.cox import CoxResult
from failpattern.stats.cox import _result as _cox_result
from failpattern.stats.finegray import FineGrayResult, _fit_prepared
from failpattern.stats.km import KaplanMeierResult, _km_curve, _km_result
from failpattern.stats.logrank import LogRankResult, _logrank
from failpattern.stats.twosample import _mann_whitney, _t_test

__all__ = [
    "km_fit", "km_fits",
    "logrank_fit",
    "coxph_fit",
    "finegray_prepare_times", "finegray_prepare", "finegray_fit", "finegray_fit_univariate",
    "FineGrayTimes", "FineGrayPrepared", "FineGrayFit",
    "expected_counts", "chisq_p", "fisher_2x2_p", "auto_contingency_method",
    "mann_whitney_fit", "t_test_fit",
]

#: The times-only part of a prepared Fine-Gray fit (sort, tabulation, censoring
#: weights), shared by models of different covariates on the same rows.
FineGrayTimes = _fgk.Times
#: A Fine-Gray fit's arrays, sorted and centred, ready for Newton-Raphson.
FineGrayPrepared = _fgk.Prepared
#: The raw arrays of a converged Fine-Gray fit (:func:`finegray_fit` turns them into a result).
FineGrayFit = _fgk.Fit


# ---------------------------------------------------------------- Kaplan-Meier

def km_fit(time: np.ndarray, event: np.ndarray, *, conf_type: str = "log-log",
           alpha: float = 0.05, entry: np.ndarray | None = None,
           weights: np.ndarray | None = None) -> KaplanMeierResult:
    """Kaplan-Meier estimate from clean arrays (:func:`~failpattern.stats.km.kaplan_meier` unchecked,
    times used as given: no ``timefix``).

    Parameters
    ----------
    time : numpy.ndarray
        ``(n,)`` float64 follow-up times, finite and >= 0, any order; ``n >= 1``.
    event : numpy.ndarray
        ``(n,)`` int64 event indicators, 1 = event, 0 = censored (not bool).
    conf_type : {"log-log", "log", "plain", "spss"}
        As in :func:`~failpattern.stats.km.kaplan_meier`; not checked.
    alpha : float
        1 - confidence level, in (0, 1); not checked.
    entry : numpy.ndarray, optional
        ``(n,)`` float64 delayed-entry times, each < its ``time``; not checked.
    weights : numpy.ndarray, optional
        ``(n,)`` float64 case weights, finite, >= 0, not all 0; not checked.

    Returns
    -------
    KaplanMeierResult
        Identical to ``kaplan_meier(time, event, conf_type=conf_type, alpha=alpha,
        entry=entry, weights=weights)``.

    Notes
    -----
    Nothing is validated: NaN or negative times, codes other than 0/1, unequal
    lengths, an empty sample or an unknown ``conf_type`` give wrong results or
    an arbitrary exception.
    """
    return _km_result(_km_curve(time, event, entry, weights), conf_type, alpha)


def km_fits(time: np.ndarray, event: np.ndarray, *, conf_types: Sequence[str],
            alpha: float = 0.05, entry: np.ndarray | None = None,
            weights: np.ndarray | None = None) -> tuple[KaplanMeierResult, ...]:
    """One Kaplan-Meier curve, with the limits and median of several conf types.

    The curve and its Greenwood variance are computed once and shared (read-only)
    by the results, which is cheaper than one :func:`km_fit` per ``conf_type``.

    Parameters
    ----------
    time : numpy.ndarray
        ``(n,)`` float64 follow-up times, finite and >= 0, any order; ``n >= 1``.
    event : numpy.ndarray
        ``(n,)`` int64 event indicators, 1 = event, 0 = censored.
    conf_types : sequence of str
        Each one of "log-log", "log", "plain", "spss"; not checked.
    alpha : float
        1 - confidence level, in (0, 1); not checked.
    entry, weights : numpy.ndarray, optional
        As in :func:`km_fit`; not checked.

    Returns
    -------
    tuple of KaplanMeierResult
        One per ``conf_types`` entry, in that order, each identical to
        ``kaplan_meier(time, event, conf_type=c, alpha=alpha, entry=entry, weights=weights,
        timefix=False)`` (the fit layer uses times as given; the validated function first
        merges times that differ only by rounding, which changes nothing on times from dates).

    Notes
    -----
    Nothing is validated (see :func:`km_fit`).
    """
    curve = _km_curve(time, event, entry, weights)
    return tuple(_km_result(curve, c, alpha) for c in conf_types)


# ---------------------------------------------------------------- log-rank

def logrank_fit(time: np.ndarray, event: np.ndarray, group: np.ndarray, labels: np.ndarray, *,
                strata: np.ndarray | None = None, rho: float = 0.0,
                gamma: float = 0.0) -> LogRankResult:
    """Log-rank test from clean arrays (:func:`~failpattern.stats.logrank.logrank` unchecked, times
    used as given: no ``timefix``).

    Parameters
    ----------
    time : numpy.ndarray
        ``(n,)`` float64 follow-up times, finite and >= 0, any order.
    event : numpy.ndarray
        ``(n,)`` int64 event indicators, 1 = event, 0 = censored; at least one event.
    group : numpy.ndarray
        ``(n,)`` int64 group codes ``0 .. k-1``, indices into ``labels``.
    labels : numpy.ndarray
        ``(k,)`` group labels, ``k >= 2``; the result's ``groups`` and the order of
        its per-group arrays. :func:`~failpattern.stats.logrank.logrank` passes the
        sorted distinct labels with codes from ``numpy.unique``.
    strata : numpy.ndarray, optional
        ``(n,)`` int64 stratum codes ``0 .. s-1``, every code present; ``None``
        (default) for one stratum.
    rho, gamma : float, default 0
        Fleming-Harrington weight exponents, finite and >= 0 (not checked):
        ``w(t) = S(t-)^rho (1 - S(t-))^gamma`` with ``S`` the pooled
        Kaplan-Meier; both 0 is the plain log-rank test.

    Returns
    -------
    LogRankResult
        Identical to ``logrank(time, event, labels[group], strata=..., rho=...,
        gamma=...)`` when ``labels`` are sorted and distinct.

    Notes
    -----
    Nothing is validated: NaN times, codes out of range, unequal lengths or
    no event give wrong results or an arbitrary exception.
    """
    if strata is None:
        return _logrank(time, event, group, labels, np.zeros(time.size, dtype=np.int64), 1,
                        rho=rho, gamma=gamma)
    return _logrank(time, event, group, labels, strata, int(strata.max()) + 1, rho=rho,
                    gamma=gamma)


# ---------------------------------------------------------------- Cox

def coxph_fit(X: np.ndarray, time: np.ndarray, event: np.ndarray, *,
            names: Sequence[str] | None = None, ties: str = "efron",
            strata: np.ndarray | None = None, strata_names: Sequence[str] = (),
            alpha: float = 0.05, entry: np.ndarray | None = None,
            weights: np.ndarray | None = None, robust: bool = False,
            cluster: np.ndarray | None = None) -> CoxResult:
    """Cox model from clean arrays (:func:`~failpattern.stats.cox.cox` without the DataFrame).

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, p)`` float64 covariates, finite, no constant column.
    time : numpy.ndarray
        ``(n,)`` float64 follow-up times, finite and >= 0, any order.
    event : numpy.ndarray
        ``(n,)`` int64 event indicators, 1 = event, 0 = censored; at least one event.
    names : sequence of str, optional
        Covariate names, the result's ``covariates`` (default ``x0, x1, ...``).
    ties : {"efron", "breslow", "exact"}
        Handling of tied event times; not checked. "exact" (the exact partial
        likelihood) takes no ``weights``, ``robust`` or ``cluster``. No ``timefix``
        here: times are used as given (``cox`` merges near-equal times first).
    strata : numpy.ndarray, optional
        ``(n,)`` int64 stratum codes; each stratum has its own baseline hazard.
    strata_names : sequence of str
        Names of the stratification columns, stored in the result's ``strata``.
    alpha : float
        1 - confidence level of the hazard-ratio limits, in (0, 1).
    entry : numpy.ndarray, optional
        ``(n,)`` float64 entry times of (entry, time] rows, ``entry < time`` (not checked).
    weights : numpy.ndarray, optional
        ``(n,)`` float64 positive case weights (not checked).
    robust : bool
        Robust (sandwich) covariance, as :func:`~failpattern.stats.cox.cox`.
    cluster : numpy.ndarray, optional
        ``(n,)`` cluster codes (any sortable values) for the robust covariance; implies
        ``robust``.

    Returns
    -------
    CoxResult
        Identical to :func:`~failpattern.stats.cox.cox` on a DataFrame of these columns.

    Raises
    ------
    ConvergenceError
        Collinear covariates, a coefficient diverging to infinity, or no
        convergence (as :func:`~failpattern.stats.cox.cox`).

    Notes
    -----
    The fit is R's ``coxph.fit`` settings of :func:`~failpattern.stats.cox.cox`
    (``tol = 1e-12``, 50 iterations). Nothing is validated: NaN values,
    unequal lengths or no event give wrong results or an arbitrary exception.
    """
    names = [f"x{j}" for j in range(X.shape[1])] if names is None else list(names)
    if entry is None and weights is None and cluster is None and not robust:
        fit = _cox_kernel(X, time, event, strata_codes=strata, ties=ties, names=names)
        return _cox_result(fit, names, ties, tuple(strata_names), alpha, time.size)
    fit = _cox_kernel(X, time, event, strata_codes=strata, ties=ties, names=names, entry=entry,
                      weights=weights, robust=bool(robust), cluster=cluster)
    return _cox_result(fit, names, ties, tuple(strata_names), alpha, time.size,
                       weighted=weights is not None, counting_process=entry is not None)


# ---------------------------------------------------------------- Fine-Gray

def finegray_prepare_times(time: np.ndarray, cause: np.ndarray, *,
                           cause_of_interest: int = 1) -> FineGrayTimes:
    """The sort, time table and censoring weights of a Fine-Gray fit, for reuse.

    Models of different covariates on the same rows (same ``time`` and ``cause``)
    can share them: pass the result to :func:`finegray_prepare` as ``times``.

    Parameters
    ----------
    time : numpy.ndarray
        ``(n,)`` float64 times, finite and >= 0, any order; ``n >= 1``.
    cause : numpy.ndarray
        ``(n,)`` int64 codes: 0 censored, ``cause_of_interest``, any other competing.
    cause_of_interest : int
        Code of the modelled failure.

    Returns
    -------
    FineGrayTimes
        Read by :func:`finegray_prepare` and :func:`finegray_fit_univariate`;
        its ``dense`` is ``None`` for large problems (more than 30,000 failure
        times x rows), which the batch fitter does not take.

    Notes
    -----
    Nothing is validated.
    """
    return _fgk.prepare_times(time, cause, cause_of_interest)


def finegray_prepare(time: np.ndarray, cause: np.ndarray, X: np.ndarray, *,
                     cause_of_interest: int = 1,
                     times: FineGrayTimes | None = None) -> FineGrayPrepared:
    """The arrays of one Fine-Gray model, sorted by time and centred, ready to fit.

    Parameters
    ----------
    time : numpy.ndarray
        ``(n,)`` float64 times, finite and >= 0, any order.
    cause : numpy.ndarray
        ``(n,)`` int64 codes: 0 censored, ``cause_of_interest``, any other
        competing; at least one ``cause_of_interest``.
    X : numpy.ndarray
        ``(n, p)`` covariates (2-D), finite, no constant column; converted to float64.
    cause_of_interest : int
        Code of the modelled failure.
    times : FineGrayTimes, optional
        :func:`finegray_prepare_times` of the same ``time``, ``cause`` and
        ``cause_of_interest`` (computed here when ``None``).

    Returns
    -------
    FineGrayPrepared
        For :func:`finegray_fit` and :func:`finegray_fit_univariate`.

    Notes
    -----
    Nothing is validated; ``times`` from other rows gives wrong results.
    """
    return _fgk.prepare(time, cause, X, cause_of_interest, times)


def finegray_fit(prepared: FineGrayPrepared, *, names: Sequence[str] | None = None,
                 cause_of_interest: int = 1, variance: str = "crr", alpha: float = 0.05,
                 tol: float = 1e-9, max_iter: int = 50,
                 fitted: FineGrayFit | None = None) -> FineGrayResult:
    """Fine-Gray model from :func:`finegray_prepare`'s arrays (:func:`~failpattern.stats.finegray.fine_gray` unchecked).

    Parameters
    ----------
    prepared : FineGrayPrepared
        From :func:`finegray_prepare`.
    names : sequence of str, optional
        Covariate names (default ``x0, x1, ...``).
    cause_of_interest : int
        The code ``prepared`` was made with (stored in the result).
    variance : {"crr", "stata"}
        ``"stata"`` scales the covariance by ``n / (n - 1)``; not checked.
    alpha : float
        For ``1 - alpha`` confidence intervals, in (0, 1).
    tol : float
        crr's ``gtol`` convergence criterion.
    max_iter : int
        Newton-Raphson iterations allowed.
    fitted : FineGrayFit, optional
        The fit of ``prepared`` already made by :func:`finegray_fit_univariate`
        (with the same ``tol`` and ``max_iter``): only the result is built.

    Returns
    -------
    FineGrayResult
        Identical to :func:`~failpattern.stats.finegray.fine_gray` /
        :func:`~failpattern.stats.finegray.fine_gray_fit` of the same data
        (with ``fitted``: to the batch fitter's rounding).

    Raises
    ------
    ConvergenceError
        Singular information, no convergence, or separation (not with ``fitted``).
    """
    p = prepared.x.shape[1]
    names = tuple(f"x{j}" for j in range(p)) if names is None else tuple(names)
    return _fit_prepared(prepared, names, cause_of_interest, variance, alpha, tol, max_iter,
                         fitted=fitted)


def finegray_fit_univariate(times: FineGrayTimes, prepared: Sequence[FineGrayPrepared], *,
                            tol: float = 1e-9, max_iter: int = 50) -> list[FineGrayFit | None]:
    """Newton-Raphson of many one-covariate Fine-Gray models on the same rows at once.

    Parameters
    ----------
    times : FineGrayTimes
        :func:`finegray_prepare_times` of the rows, with ``times.dense`` not ``None``.
    prepared : sequence of FineGrayPrepared
        :func:`finegray_prepare` of each model, one covariate each, all made with ``times``.
    tol : float
        crr's ``gtol`` convergence criterion.
    max_iter : int
        Newton-Raphson iterations allowed.

    Returns
    -------
    list of FineGrayFit or None
        One per model, in order: the converged fit, to pass to :func:`finegray_fit`
        as ``fitted``, or ``None`` where the model did not converge in the batch
        (fit it with :func:`finegray_fit` alone, which raises the error).

    Notes
    -----
    The estimates equal the one-fit kernel's (:func:`finegray_fit` without
    ``fitted``) to rounding, about 1e-14 relative: the batched matrix products sum
    in another order. The information and variance are computed at the estimate
    exactly as the one-fit kernel does. Nothing is validated.
    """
    return _fit_univariate(times, list(prepared), tol=tol, max_iter=max_iter)


# ---------------------------------------------------------------- contingency tables

def expected_counts(counts: np.ndarray) -> np.ndarray:
    """Expected cell counts under independence, ``row total x column total / n``.

    Parameters
    ----------
    counts : numpy.ndarray
        ``(r, c)`` int64 table of non-negative counts, ``n > 0``.

    Returns
    -------
    numpy.ndarray
        ``(r, c)`` float64, as ``contingency_test(counts).expected``.
    """
    return _expected(counts)


def fisher_2x2_p(counts: np.ndarray) -> float:
    """Two-sided p of Fisher's exact test of a 2 x 2 table (R ``fisher.test``).

    Parameters
    ----------
    counts : numpy.ndarray
        ``(2, 2)`` int64 table of non-negative counts, no empty row or column.

    Returns
    -------
    float
        As ``contingency_test(counts, method="fisher").p_value``.

    Notes
    -----
    Nothing is validated; tables larger than 2 x 2 need
    :func:`~failpattern.stats.contingency.contingency_test`.
    """
    return _fisher_2x2(counts)


def auto_contingency_method(expected: np.ndarray) -> tuple[str, str]:
    """The SPSS-style choice between Pearson's and Fisher's test, from the expected counts.

    Parameters
    ----------
    expected : numpy.ndarray
        ``(r, c)`` float64 expected counts (:func:`expected_counts`).

    Returns
    -------
    method : str
        ``"pearson"`` or ``"fisher"``.
    reason : str
        Why, in words; ``contingency_test(counts, method="auto")`` reports the
        same pair as ``method`` and ``reason`` (unless Fisher's r x c test
        exceeds its workspace).
    """
    return _auto_choice(expected)


def chisq_p(counts: np.ndarray, expected: np.ndarray, *, method: str) -> float:
    """The upper-tail p of a chi-square-family test of an r x c table.

    Parameters
    ----------
    counts : numpy.ndarray
        ``(r, c)`` int64 counts, no empty row or column.
    expected : numpy.ndarray
        Their expected counts under independence (:func:`expected_counts`).
    method : {"pearson", "yates", "n-1", "g"}
        Pearson's chi-square, with Yates' correction (2 x 2), Pearson's N-1
        chi-square, or the likelihood-ratio (G) test, as
        ``contingency_test(counts, method=...)`` computes them.

    Returns
    -------
    float
        The p-value on ``(r - 1)(c - 1)`` degrees of freedom.
    """
    if method == "g":
        return _g_test(counts, expected)[1]
    if method == "n-1":
        return _n_minus_1(counts, expected)[1]
    return _chisq(counts, expected, yates=method == "yates")[1]


# ---------------------------------------------------------------- two samples

def mann_whitney_fit(x: np.ndarray, y: np.ndarray, *,
                     continuity: bool = False) -> tuple[float, float, float]:
    """Mann-Whitney test, normal approximation with tie correction (R ``wilcox.test(exact = FALSE)``).

    Parameters
    ----------
    x, y : numpy.ndarray
        1-D float64 samples, finite, each non-empty, not all values tied.
    continuity : bool
        Apply R's continuity correction (``correct = TRUE``).

    Returns
    -------
    statistic : float
        R's W, the rank sum of ``x`` minus ``nx (nx + 1) / 2``.
    z : float
        The normal deviate.
    p_value : float
        Two-sided p.

    Notes
    -----
    As ``two_sample_test`` with ``method="mann-whitney"`` and ``x`` the first
    group (its ``statistic``, ``z``, ``p_value``). Nothing is validated.
    """
    return _mann_whitney(x, y, continuity)


def t_test_fit(x: np.ndarray, y: np.ndarray, *, pooled: bool = True) -> tuple[float, float, float]:
    """Two-sample t-test, Student's pooled or Welch's (R ``t.test(x, y, var.equal = pooled)``).

    Parameters
    ----------
    x, y : numpy.ndarray
        1-D float64 samples, finite, at least one value each (two each for Welch,
        three in all for Student), not both without variance.
    pooled : bool
        ``True``: Student's t with pooled variance; ``False``: Welch.

    Returns
    -------
    statistic : float
        The t statistic (mean of ``x`` minus mean of ``y``, over its SE).
    df : float
        Degrees of freedom.
    p_value : float
        Two-sided p.

    Notes
    -----
    As ``two_sample_test`` with ``method="t-test"`` (``pooled=True``) or
    ``"welch"`` and ``x`` the first group. Nothing is validated.
    """
    return _t_test(x, y, pooled)
