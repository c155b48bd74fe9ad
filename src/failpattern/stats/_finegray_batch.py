"""Newton-Raphson of many one-covariate Fine-Gray fits on the same patients at once (private).

Why: Table 3 of the plan is 17 univariate Fine-Gray models on the same
patients. One fit is a few small array operations per Newton step, so its time
is numpy's per-call overhead, paid 17 times over. Here the fits share the
sort, the censoring weights and the dense risk-set matrix
(:class:`~failpattern.stats._finegray_kernel.Times`), and every step is one
set of array operations over all of them: one matrix product gives the
risk-set moments of every fit.

The steps are those of :func:`~failpattern.stats._finegray_kernel._iterate`:
Newton steps with crr's step halving, full steps in the quadratic region, the
same convergence tests. A fit that would fail (a singular information, a
failed line search, ``max_iter``) is handed back as ``None`` for the one-fit
kernel to redo from the start, so its error message is exactly the kernel's.

The arithmetic is the kernel's, except that the sums inside the batched
products run in another order; the estimate is the root of the score to
rounding either way, so it agrees with the one-fit kernel's to about 1e-14
relative (what two BLAS builds would give). The information, score residuals
and sandwich variance are then computed exactly as the kernel does at that
estimate (the residuals for all fits at once, with the same operations).
"""

from __future__ import annotations

import math

import numpy as np

from failpattern.stats._finegray_kernel import (
    Evaluation,
    Fit,
    Prepared,
    Times,
    _cum0,
    _evaluate_dense,
    _rcum0,
    sandwich,
)

__all__ = ["HALVINGS", "fit_univariate", "newton_univariate"]

#: Step halvings tried before a line search fails, as the one-fit kernel.
HALVINGS = 21


def newton_univariate(evaluate, loglik, score, info, *, max_iter: int, tol: float):
    """Newton-Raphson of many one-coefficient fits at once, with the one-fit kernel's rules.

    The steps, tests and halvings of :func:`~failpattern.stats._finegray_kernel._iterate`,
    fit by fit: a Newton step, a full step in the quadratic region (then converged if the
    score is small), otherwise a line search halving the step until the log pseudo-likelihood
    rises by a share of the predicted gain. A fit that would fail there (no information at
    the start or an information collapsing against it, a non-finite step, :data:`HALVINGS`
    halvings, ``max_iter``) is marked not converged, for the caller to refit with the kernel.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(beta, active) -> (loglik, score, info)``, arrays ``(M,)``, at ``beta`` for
        the fits where ``active`` is True (the others' values are not read).
    loglik, score, info : numpy.ndarray
        ``(M,)`` values at ``beta = 0``.
    max_iter : int
        Newton iterations allowed.
    tol : float
        Convergence tolerance of the kernel.

    Returns
    -------
    tuple
        ``beta``, the null log pseudo-likelihood, the iterations and which fits converged.
    """
    M = loglik.shape[0]
    sqrt_tol = math.sqrt(tol)
    loglik, score, info = loglik.copy(), score.copy(), info.copy()
    null = loglik.copy()
    beta, step, gain = np.zeros(M), np.zeros(M), np.zeros(M)
    iterations, tries = np.zeros(M, dtype=np.int64), np.zeros(M, dtype=np.int64)
    active = np.isfinite(info) & (info > 0)     # the kernel's check of the start (1 x 1)
    fallback = ~active
    start = info.copy()
    searching = np.zeros(M, dtype=bool)         # in a line search: halving the step
    first = True
    while active.any():
        fresh = active & ~searching             # at a new point: Newton step and tests
        if not first:  # an information collapsing against the start: separation
            bad = fresh & ~(info > 1e-8 * start)
            fallback |= bad
            active &= ~bad
            fresh &= ~bad
        first = False
        step = np.where(fresh, score / info, step)
        bad = fresh & ~np.isfinite(step)
        limit = np.maximum(np.abs(loglik), 1.0) * tol
        scale = np.maximum(np.abs(beta), 1.0)
        small = np.abs(score) * scale < limit
        rel = np.abs(step) / scale
        bad |= fresh & (iterations == max_iter) & ~(small & (rel < sqrt_tol))
        fallback |= bad
        active &= ~bad
        fresh &= ~bad
        active &= ~(fresh & small & (rel < 1e-12))  # already exact to rounding: converged
        fresh &= active
        quad = fresh & (rel < sqrt_tol)             # full step, then converged if small
        search = fresh & ~quad                      # a new line search from this point
        gain = np.where(search, step * score, gain)  # twice the predicted gain, fixed
        tries[search] = 0
        searching |= search
        if not active.any():
            break
        t_loglik, t_score, t_info = evaluate(np.where(active, beta + step, beta), active)
        accept = quad | (searching & np.isfinite(t_loglik) & (t_loglik >= loglik + 1e-4 * gain))
        reject = active & ~accept                   # halve the step and try again
        tries += reject
        step = np.where(reject, step * 0.5, step)
        fallback |= reject & (tries >= HALVINGS)    # the kernel's "step halving failed"
        move = active & accept
        beta = np.where(move, beta + step, beta)
        iterations += move
        loglik, score, info = (np.where(move, new, old) for new, old in
                               zip((t_loglik, t_score, t_info), (loglik, score, info)))
        searching &= ~move
        active = (move & ~(quad & small)) | (reject & ~fallback)
    return beta, null, iterations, ~fallback


def _evaluate(times: Times, x: np.ndarray, x2: np.ndarray, x_fail_sum: np.ndarray,
              beta: np.ndarray):
    """``_evaluate_dense`` of every fit (columns of ``x``) at its own coefficient ``beta[j]``."""
    n, k = x.shape
    eta = x * beta                                  # = x_j @ [beta_j] for each fit
    eta -= np.maximum.reduce(eta, axis=0)
    r = np.exp(eta)
    rz = np.empty((n, 3, k))                        # r [1, x, x x'] of every fit
    rz[:, 0] = r
    np.multiply(r, x, out=rz[:, 1])
    np.multiply(r, x2, out=rz[:, 2])
    moments = (times.dense @ rz.reshape(n, 3 * k)).reshape(-1, 3, k)
    s0 = moments[:, 0]
    d = times.d[:, None]
    lam = d / s0
    xbar = moments[:, 1] / s0
    loglik = times.fail @ eta - times.d @ np.log(s0)
    score = x_fail_sum - times.d @ xbar
    info = np.add.reduce(lam * moments[:, 2], axis=0) - np.add.reduce(xbar * d * xbar, axis=0)
    return loglik, score, info, r, lam, xbar


def fit_univariate(times: Times, preps: list[Prepared], tol: float = 1e-9,
                   max_iter: int = 50) -> list[Fit | None]:
    """``_finegray_kernel.fit(prep, ...)`` of one-covariate fits sharing ``times`` (with
    a dense matrix), or ``None`` where the one-fit kernel must be run instead."""
    x = np.column_stack([p.x[:, 0] for p in preps])
    x2 = np.column_stack([p.z[:, 2] for p in preps])   # x * x, as the kernel's z
    x_fail_sum = np.array([p.x_fail_sum[0] for p in preps])
    k = x.shape[1]
    with np.errstate(all="ignore"):  # as the kernel: overflow shows as a non-finite loglik
        loglik, score, info = _evaluate(times, x, x2, x_fail_sum, np.zeros(k))[:3]

        def evaluate(trial, active):  # every fit at once: one matrix product
            return _evaluate(times, x, x2, x_fail_sum, trial)[:3]

        beta, null, iterations, converged = newton_univariate(evaluate, loglik, score, info, max_iter=max_iter,
                                                              tol=tol)
    fallback = ~converged
    done = [j for j in range(k) if not fallback[j]]
    out: list[Fit | None] = [None] * k
    if not done:
        return out
    with np.errstate(all="ignore"):
        # the one-fit evaluation at each estimate: the variance is computed from exactly the
        # kernel's sums (the batch's matrix products may round differently)
        final = {j: _evaluate_dense(preps[j], beta[j:j + 1].copy(), True) for j in done}
    resid = _influence(times, x[:, done], [final[j] for j in done])
    for col, j in enumerate(done):
        out[j] = sandwich(beta[j:j + 1].copy(), final[j], float(null[j]), int(iterations[j]),
                          np.ascontiguousarray(resid[:, col:col + 1]))
    return out


def _influence(times: Times, x: np.ndarray, evs: list[Evaluation]) -> np.ndarray:
    """:func:`~failpattern.stats._finegray_kernel.influence` of one-covariate fits, one
    column each: the same element-wise operations and running sums down the rows, so
    the same numbers as fit by fit."""
    k = times.n_le
    lam = np.column_stack([ev.lam for ev in evs])
    xbar = np.column_stack([ev.xbar[:, 0] for ev in evs])
    r = np.column_stack([ev.r for ev in evs])
    G, inv_g = times.G[:, None], times.inv_g[:, None]
    lamx = lam * xbar
    lg = _rcum0(lam * G)
    lgx = _rcum0(lamx * G)
    # eta_i: dN_i part minus the compensator part over failures of interest
    a = _cum0(lam)[k] + inv_g * lg[k]
    b = _cum0(lamx)[k] + inv_g * lgx[k]
    out = -r * (x * a - b)
    rows = times.fail_rows
    out[rows] += x[rows] - xbar[k[rows] - 1]
    # psi_i: the estimated censoring weights (the kernel's _competing_before, then q)
    w = np.concatenate([r * inv_g, r * (x * inv_g)], axis=1)
    sums = np.add.reduceat(w, times.starts, axis=0)
    pre = sums.cumsum(axis=0)
    pre -= sums
    pre = pre[times.cens_times]
    m = x.shape[1]
    u = times.n_before
    q = pre[:, m:] * lg[u] - pre[:, :m] * lgx[u]
    out -= _cum0(q * (times.c_count / times.c_risk ** 2)[:, None])[times.c_le]
    rows = times.cens_rows
    j = times.c_le[rows] - 1
    out[rows] += q[j] / times.c_risk[j][:, None]
    return out
