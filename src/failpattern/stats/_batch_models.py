"""What the batched regression fitters share: the result, the input check, the row-wise solve.

:func:`~failpattern.stats.batch_cox.cox_batch` and
:func:`~failpattern.stats.batch_finegray.finegray_batch` fit different models the
same way — a Newton-Raphson over a leading replicate axis, in chunks, a failed
replicate left as NaN — so their inputs, outputs and linear algebra are written once here.
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
        out = np.full(b.shape, np.nan)
        for j in range(a.shape[0]):
            try:
                out[j] = np.linalg.solve(a[j], b[j])
            except np.linalg.LinAlgError:
                pass
    bad = ~np.isfinite(out.reshape(out.shape[0], -1)).all(axis=1)
    return out, bad
