"""What the batched regression fitters share: the result, the input check, the row-wise solve,
and the risk-set moments of one-covariate 0/1 models.

:func:`~failpattern.stats.batch_cox.cox_batch` and
:func:`~failpattern.stats.batch_finegray.finegray_batch` fit different models the
same way — a Newton-Raphson over a leading replicate axis, in chunks, a failed
replicate left as NaN — so their inputs, outputs and linear algebra are written once here.

A one-covariate model of a 0/1 covariate has two values of ``exp(x b)``, so every risk-set
sum is ``r_1 W_1 + r_0 W_0`` with ``W`` the (weighted) number of each group in the risk set,
which does not depend on ``b``: a Breslow Cox model (``W`` the numbers at risk) and a Fine-Gray
model (``W`` the censoring-weighted numbers) then have the same log likelihood, score and
information as functions of ``W``, written once in :func:`binary_moments`
(:func:`~failpattern.stats.batch_cox.cox_univariate_batch`,
:func:`~failpattern.stats.batch_finegray.finegray_univariate_batch`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from failpattern.errors import InputError

CELLS = 1 << 18  # replicates x patients x arrays per patient in one chunk (2 MB of float64)


@dataclass(frozen=True)
class BatchFitResult:
    """Regression models fitted to ``R`` replicate cohorts.

    Rows of every array are the replicates. A replicate that could not be
    fitted has ``converged`` False and NaN in ``coef``, ``se``,
    ``covariance``, ``loglik`` and ``wald_p``.

    Attributes
    ----------
    coef : numpy.ndarray
        ``(R, p)`` log hazard ratios (of the hazard or the subdistribution hazard).
    se : numpy.ndarray
        ``(R, p)`` standard errors: square roots of the diagonal of ``covariance``.
    covariance : numpy.ndarray
        ``(R, p, p)`` covariance of ``coef`` (see the fitter for which one).
    loglik : numpy.ndarray
        ``(R,)`` log partial (pseudo-) likelihood at ``coef``.
    loglik_null : numpy.ndarray
        ``(R,)`` the same at ``beta = 0`` (NaN for rows set aside before iterating).
    n_events : numpy.ndarray
        ``(R,)`` events of interest among the replicate's patients in the model.
    converged : numpy.ndarray
        ``(R,)`` bool, True where the fit converged to a finite estimate.
    iterations : numpy.ndarray
        ``(R,)`` Newton-Raphson iterations used, the final polishing step included;
        for a failed row, how far it got.
    wald_p : numpy.ndarray
        ``(R, p)`` two-sided Wald p-values ``2 * Phi(-|coef / se|)``.
    """

    coef: np.ndarray
    se: np.ndarray
    covariance: np.ndarray
    loglik: np.ndarray
    loglik_null: np.ndarray
    n_events: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    wald_p: np.ndarray


@dataclass(frozen=True)
class UnivariateBatchResult:
    """One-covariate models, ``K`` per replicate (the same patients), fitted by
    :func:`~failpattern.stats.batch_cox.cox_univariate_batch` or
    :func:`~failpattern.stats.batch_finegray.finegray_univariate_batch`.

    Attributes
    ----------
    coef, se : numpy.ndarray
        ``(R, K)`` log (subdistribution) hazard ratio of each model and its standard error
        (model-based for Cox, robust for Fine-Gray).
    loglik, loglik_null : numpy.ndarray
        ``(R, K)`` log partial (pseudo-) likelihood at ``coef`` and at 0.
    converged : numpy.ndarray
        ``(R, K)`` bool; False (and NaN elsewhere) where the model was not asked for, or where
        the one-cohort kernel must decide (no estimate, separation, a failed line search,
        ``max_iter``): the caller refits those with the one-cohort fit.
    iterations : numpy.ndarray
        ``(R, K)`` Newton-Raphson iterations, the polishing step included.
    """

    coef: np.ndarray
    se: np.ndarray
    loglik: np.ndarray
    loglik_null: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray


def check_inputs(X, time, outcome, mask, outcome_name: str):
    """``X`` (R, n, p), ``time`` and ``outcome`` (R, n) as arrays, and the mask (all True by default).

    Raises
    ------
    InputError
        The shapes do not agree.
    """
    X = np.asarray(X, dtype=float)
    time = np.asarray(time, dtype=float)
    outcome = np.asarray(outcome)
    if X.ndim != 3 or time.shape != X.shape[:2] or outcome.shape != X.shape[:2]:
        raise InputError(f"X must be (R, n, p) and time, {outcome_name} (R, n); got X {X.shape}, "
                         f"time {time.shape}, {outcome_name} {outcome.shape}")
    R, n, _ = X.shape
    if mask is None:
        return X, time, outcome, np.ones((R, n), dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (R, n):
        raise InputError(f"mask must be (R, n) = {(R, n)}, got {mask.shape}")
    return X, time, outcome, mask


def empty_fits(R: int, p: int) -> dict:
    """The arrays of a :class:`BatchFitResult` before any row is fitted (NaN, not converged)."""
    return {"coef": np.full((R, p), np.nan), "covariance": np.full((R, p, p), np.nan),
            "loglik": np.full(R, np.nan), "loglik_null": np.full(R, np.nan),
            "converged": np.zeros(R, dtype=bool), "iterations": np.zeros(R, dtype=np.int64),
            "n_events": np.zeros(R, dtype=np.int64)}


def with_wald(fits: dict) -> dict:
    """``fits`` with ``se`` and ``wald_p`` from its coefficients and covariance."""
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(np.diagonal(fits["covariance"], axis1=1, axis2=2))
        wald_p = 2.0 * ndtr(-np.abs(fits["coef"] / se))
    return {**fits, "se": se, "wald_p": wald_p}


def solve_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a^{-1} b`` row by row (LU, as the one-cohort kernels) and which rows failed (singular or not finite)."""
    if a.shape[0] == 0:  # no active row left (every row halving its step at once)
        return np.empty(b.shape), np.zeros(0, dtype=bool)
    try:
        out = np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        # one singular row fails the whole stack: solve the rows whose LU has no zero pivot (a
        # nonzero, finite determinant) together and only the others one by one (each matrix is
        # factored on its own either way, so the numbers are those of a solve per row)
        out = np.full(b.shape, np.nan)
        with np.errstate(all="ignore"):
            det = np.linalg.det(a)
        fine = np.isfinite(det) & (det != 0.0)
        if fine.any():
            out[fine] = np.linalg.solve(a[fine], b[fine])
        for j in np.flatnonzero(~fine):
            try:
                out[j] = np.linalg.solve(a[j], b[j])
            except np.linalg.LinAlgError:
                pass
    bad = ~np.isfinite(out.reshape(out.shape[0], -1)).all(axis=1)
    return out, bad


def tie_runs(t: np.ndarray):
    """Where each run of equal times starts and ends, along the rows of sorted times ``t`` ``(R, n)``.

    Returns
    -------
    tuple of numpy.ndarray
        ``new`` and ``ends`` (bool: the first and the last position of each time) and ``first``
        (the position where each position's time starts).
    """
    R, n = t.shape
    new = np.ones((R, n), dtype=bool)
    np.not_equal(t[:, 1:], t[:, :-1], out=new[:, 1:])
    ends = np.ones((R, n), dtype=bool)
    ends[:, :-1] = new[:, 1:]
    first = np.maximum.accumulate(np.where(new, np.arange(n), 0), axis=1)
    return new, ends, first


def binary_inputs(X: np.ndarray, mask: np.ndarray, which, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The covariates of one-covariate 0/1 batch fits (0 outside ``mask``) and which models to fit.

    Raises
    ------
    InputError
        ``which`` not ``(R, K)``, or a covariate other than 0/1.
    """
    R, n, K = X.shape
    which = np.ones((R, K), dtype=bool) if which is None else np.asarray(which, dtype=bool)
    if which.shape != (R, K):
        raise InputError(f"which must be (R, K) = {(R, K)}, got {which.shape}")
    X = np.where(mask[:, :, None], X, 0.0)
    if not np.isin(X, (0.0, 1.0)).all():
        raise InputError(f"X: {name} takes 0/1 covariates only")
    return X, which


def sum_down(a: np.ndarray) -> np.ndarray:
    """Sums down axis 0 of an ``(F, M)`` array, in order: padding zeros then add nothing, so a
    model's sums do not depend on how many event times its batch-mates have. numpy reduces an
    outer axis of a C-ordered array row after row (in order); a single column, or another layout,
    it may sum pairwise, so those are summed as a running sum (``tests/test_batch_finegray.py``
    and ``tests/test_batch_cox.py`` check the invariance)."""
    if a.shape[1] > 1 and a.flags.c_contiguous:
        return a.sum(axis=0)
    return np.cumsum(a, axis=0)[-1]


def binary_moments(W1, W0, x1, x0, xx1, xx0, d, nf1, nf0, beta):
    """Log (pseudo-) likelihood, score, information, ``lam``, ``xbar`` and the two risk
    scores of one-covariate 0/1 models at ``beta``.

    ``W1``, ``W0`` and ``d`` are ``(F, M)`` arrays (event times down, models across): the
    weighted numbers of each group in the risk set of each event time and its events (padding:
    ``d`` 0 and ``W`` 1, which add exact zeros, as the sums over the event times run down axis 0
    in order, :func:`sum_down`); ``x1``, ``x0`` (the centred covariate of each group), their
    squares ``xx1``, ``xx0``, the events of each group ``nf1``, ``nf0`` and ``beta`` are ``(M,)``.
    """
    e1, e0 = beta * x1, beta * x0
    top = np.maximum(e1, e0)                    # the largest linear predictor (both groups present)
    e1 -= top
    e0 -= top
    r1, r0 = np.exp(e1), np.exp(e0)
    a1, a0 = r1 * W1, r0 * W0                   # the risk sets' weighted sums of r, per group
    s0 = a1 + a0
    lam = d / s0
    xbar = (x1 * a1 + x0 * a0) / s0
    s2 = xx1 * a1 + xx0 * a0
    loglik = nf1 * e1 + nf0 * e0 - sum_down(d * np.log(s0))
    dx = d * xbar
    score = nf1 * x1 + nf0 * x0 - sum_down(dx)
    info = sum_down(lam * s2) - sum_down(dx * xbar)
    return loglik, score, info, lam, xbar, r1, r0
