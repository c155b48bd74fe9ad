"""Many small Cox models fitted at once: one vectorised Newton-Raphson over replicates.

Why our own: a replicate study fits the same small Cox model (a handful of 0/1
covariates) to thousands of simulated cohorts of equal size. One fit of
:func:`~failpattern.stats.fit.coxph_fit` on 93 patients costs a few hundred
microseconds, almost all of it numpy's per-call overhead, paid once per
cohort. No library fits thousands of small Cox models in one vectorised Newton
iteration (R ``survival``, lifelines and statsmodels fit one model per call),
so :func:`cox_batch` stacks the cohorts along a leading replicate axis and runs
every Newton step, for all of them, as one set of array operations.

Each replicate follows the steps of the one-cohort kernel
(:mod:`failpattern.stats._coxfit`, behind :func:`~failpattern.stats.fit.coxph_fit`):
Newton-Raphson from ``beta = 0``, halving the step when the log partial
likelihood falls, the same convergence and divergence tests, and the same
handling of tied event times (Breslow, or Efron). A replicate that has
converged stops changing while the others iterate, after one last Newton
step that puts its estimate on the root of the score to rounding. The
one-cohort fit stops up to its own last (unapplied) step short of that root,
at most 1e-10 and typically 1e-12 in linear-predictor units, so the two agree
to about 1e-11 (coefficients, standard errors, log partial likelihood).

:func:`cox_univariate_batch` fits many one-covariate models of 0/1 covariates on the same
patients (the plan's PFS1 models: 5 per cohort) from one sort per replicate, each Newton step
in O(event times), with the same Newton driver (``_fit_chunk``) as :func:`cox_batch`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from failpattern.errors import InputError
from failpattern.stats._batch_models import (
    CELLS,
    BatchFitResult,
    UnivariateBatchResult,
    binary_inputs,
    binary_moments,
    check_inputs,
    empty_fits,
    solve_rows,
    tie_runs,
    with_wald,
)
from failpattern.stats._linalg import triangle

__all__ = ["cox_batch", "CoxBatchResult", "cox_univariate_batch", "UnivariateBatchResult"]

_SINGULAR = 1e-10    # as _coxfit: smallest eigenvalue of the correlation-scaled information
_STEP_TOL = 1e-10    # as _coxfit: a converged Newton step, in linear-predictor units


@dataclass(frozen=True)
class CoxBatchResult(BatchFitResult):
    """Cox models fitted to ``R`` replicate cohorts by :func:`cox_batch`.

    Rows of every array are the replicates. A replicate that could not be fitted has
    ``converged`` False and NaN in ``coef``, ``se``, ``covariance``, ``loglik`` and ``wald_p``.

    Attributes
    ----------
    coef : numpy.ndarray
        ``(R, p)`` log hazard ratios.
    se : numpy.ndarray
        ``(R, p)`` model-based standard errors (square roots of the diagonal of ``covariance``).
    covariance : numpy.ndarray
        ``(R, p, p)`` inverse observed information at ``coef``.
    loglik, loglik_null : numpy.ndarray
        ``(R,)`` log partial likelihood at ``coef`` and at ``beta = 0`` (``loglik_null`` NaN for
        rows set aside before iterating: no event, or a covariate constant among the patients
        or the events).
    n_events : numpy.ndarray
        ``(R,)`` events among the replicate's patients in the model.
    converged : numpy.ndarray
        ``(R,)`` bool, True where the fit converged to a finite estimate.
    iterations : numpy.ndarray
        ``(R,)`` Newton-Raphson iterations, step halvings and the polishing step included (often
        one more or fewer than :func:`~failpattern.stats.fit.coxph_fit`, whose tolerance is 1e-12).
    wald_p : numpy.ndarray
        ``(R, p)`` two-sided Wald p-values ``2 * Phi(-|coef / se|)``.
    ties : str
        ``"breslow"`` or ``"efron"``.
    """

    ties: str


class _Chunk:
    """Sorted, centred arrays of a block of replicates and their tie structure.

    Each row is sorted by time, latest first, and within a time censorings
    before events; the patients' moments ``[1, x, upper triangle of x x']``
    are stored ``(rows, moments, patients)`` so that the risk-set sums are one
    running sum along the contiguous last axis: the risk set of a time is
    everyone up to the last patient of that time.

    Breslow needs the risk sets at the last position of each time only, each
    counted as often as the time has events (``count``): no gather. Efron
    splits a time's risk set into the tied events ``E`` and the others ``R``
    (the running sum just before the events) and gathers both for each event.
    """

    def __init__(self, X: np.ndarray, time: np.ndarray, event: np.ndarray, mask: np.ndarray,
                 efron: bool):
        R, n, p = X.shape
        e_in = (event != 0) & mask
        order = np.lexsort((e_in, -time), axis=-1)
        t = np.take_along_axis(time, order, axis=1)
        e = np.take_along_axis(e_in, order, axis=1)
        m = np.take_along_axis(mask, order, axis=1)
        flat = (order + (np.arange(R) * n)[:, None]).ravel()
        x = X.reshape(R * n, p)[flat].reshape(R, n, p).transpose(0, 2, 1).copy()   # (R, p, n)
        mx = m[:, None, :]
        size = np.maximum(m.sum(axis=1), 1)[:, None]
        mean = np.where(mx, x, 0.0).sum(axis=2) / size     # centring changes only rounding
        xt = np.where(mx, x - mean[:, :, None], 0.0)
        pos = np.arange(n)
        new, ends, first = tie_runs(t)
        last = np.minimum.accumulate(np.where(ends, pos, n)[:, ::-1], axis=1)[:, ::-1]
        ce = np.zeros((R, n + 1), dtype=np.int64)
        np.cumsum(e, axis=1, out=ce[:, 1:])
        d = np.take_along_axis(ce, last + 1, axis=1) - np.take_along_axis(ce, first, axis=1)
        self.count = np.where(ends, d, 0).astype(float)   # events of the time ending here
        self.efron = efron
        if efron:
            # tied events are the last d of their time: the others end just before them
            lead = last - d                     # -1 .. n-1: index into the padded running sum
            self.at = (last + 1)[:, None, :]
            self.before = (lead + 1)[:, None, :]
            keep = 1.0 - (pos - lead - 1) / np.maximum(d, 1)
            self.keep = np.where(e, keep, 0.0)[:, None, :]
        i0, i1, self.full = triangle(p)
        self.xt = xt
        self.m = m.astype(float)
        if efron:
            z = np.empty((R, 1 + p + i0.size, n))
            z[:, 0] = m
            z[:, 1:p + 1] = xt
            np.multiply(xt[:, i0], xt[:, i1], out=z[:, p + 1:])
            self.z = z
        self.rows = R
        self.ev = e.astype(float)
        self.p = p
        self.n_events = e.sum(axis=1)
        self.x_event_sum = (xt @ self.ev[:, :, None])[:, :, 0]
        self.sd = np.sqrt(np.einsum("rpn,rpn->rp", xt, xt) / size)
        # no finite estimate: a covariate constant among the patients, or every event at its
        # largest (smallest) value, so the score never changes sign (monotone likelihood)
        ex = e[:, None, :]
        big = np.where(mx, x, -np.inf).max(axis=2)
        small = np.where(mx, x, np.inf).min(axis=2)
        ev_big = np.where(ex, x, -np.inf).max(axis=2)
        ev_small = np.where(ex, x, np.inf).min(axis=2)
        self.hopeless = ((self.n_events == 0) | (big == small).any(axis=1)
                         | (ev_small == big).any(axis=1) | (ev_big == small).any(axis=1))

    def evaluate(self, rows: np.ndarray, beta: np.ndarray):
        """Log partial likelihood, score and information of ``rows`` at ``beta`` (one per row)."""
        every = rows.size == self.rows
        pick = (lambda a: a) if every else (lambda a: a[rows])
        x, m = pick(self.xt), pick(self.m)
        eta = (beta[:, None, :] @ x)[:, 0]
        eta -= np.where(m > 0, eta, -np.inf).max(axis=1, keepdims=True)  # loglik is shift-free
        r = np.exp(eta)
        r *= m
        if self.efron:
            return self._efron(pick, eta, r)
        # Breslow: sums over the times of count * S / S0, S the risk-set sums of r [1, x, x x'],
        # taken for the second moments as sums over the patients of r x x' times the
        # running sum of count / S0 over the times at which they are at risk
        ev, count = pick(self.ev), pick(self.count)
        s0 = np.cumsum(r, axis=1)
        s1 = np.cumsum(r[:, None, :] * x, axis=2)
        inv = np.divide(count, s0, out=np.zeros_like(count), where=count > 0)
        logs = np.log(s0, out=np.zeros_like(count), where=count > 0)
        loglik = np.einsum("rn,rn->r", ev, eta) - np.einsum("rn,rn->r", count, logs)
        at_risk = np.cumsum(inv[:, ::-1], axis=1)[:, ::-1]
        at_risk *= r
        score = pick(self.x_event_sum) - (s1 @ inv[:, :, None])[:, :, 0]
        second = (x * at_risk[:, None, :]) @ x.transpose(0, 2, 1)
        outer = (s1 * (inv / np.where(count > 0, s0, 1.0))[:, None, :]) @ s1.transpose(0, 2, 1)
        return loglik, score, second - outer

    def _efron(self, pick, eta: np.ndarray, r: np.ndarray):
        """:meth:`evaluate` for Efron's ties: each event's own denominator ``R + keep E``."""
        p = self.p
        ev = pick(self.ev)
        w = r[:, None, :] * pick(self.z)
        run = np.zeros(w.shape[:2] + (w.shape[2] + 1,))
        np.cumsum(w, axis=2, out=run[:, :, 1:])
        at = np.take_along_axis(run, pick(self.at), axis=2)
        others = np.take_along_axis(run, pick(self.before), axis=2)
        at = others + pick(self.keep) * (at - others)
        s0 = at[:, 0]
        inv = np.divide(ev, s0, out=np.zeros_like(ev), where=ev > 0)
        logs = np.log(s0, out=np.zeros_like(ev), where=ev > 0)
        loglik = np.einsum("rn,rn->r", ev, eta) - np.einsum("rn,rn->r", ev, logs)
        total = (at @ inv[:, :, None])[:, :, 0]                      # sums of S / S0
        s1 = at[:, 1:p + 1]
        score = pick(self.x_event_sum) - total[:, 1:p + 1]
        outer = (s1 * (inv / np.where(ev > 0, s0, 1.0))[:, None, :]) @ s1.transpose(0, 2, 1)
        info = total[:, p + 1:][:, self.full].reshape(-1, p, p) - outer
        return loglik, score, info


def _fit_chunk(chunk: _Chunk, max_iter: int, tol: float):
    R, p = chunk.rows, chunk.p
    beta = np.zeros((R, p))
    coef = np.full((R, p), np.nan)
    cov = np.full((R, p, p), np.nan)
    loglik_out = np.full(R, np.nan)
    null = np.full(R, np.nan)
    iterations = np.zeros(R, dtype=np.int64)
    ok = np.zeros(R, dtype=bool)
    live = np.flatnonzero(~chunk.hopeless)
    if live.size == 0:
        return coef, cov, loglik_out, null, ok, iterations
    loglik = np.full(R, np.nan)
    score = np.zeros((R, p))
    info = np.zeros((R, p, p))
    loglik[live], score[live], info[live] = chunk.evaluate(live, beta[live])
    null[live] = loglik[live]
    info0 = np.diagonal(info, axis1=1, axis2=2).copy()
    sd = chunk.sd
    # _coxfit._check_information: a covariate without information, or collinear covariates
    diag = info0[live]
    spread = chunk.n_events[live, None] * sd[live] ** 2
    flat = ~(diag > _SINGULAR * spread).all(axis=1)
    scale = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
    corr = info[live] * scale[:, :, None] * scale[:, None, :]
    values = np.linalg.eigvalsh(np.where(flat[:, None, None], np.eye(p), corr))
    collinear = (values < _SINGULAR * values.max(axis=1, keepdims=True)).any(axis=1)
    live = live[~(flat | collinear)]
    step = np.zeros((R, p))
    s, bad = solve_rows(info[live], score[live][:, :, None])
    step[live] = s[:, :, 0]
    live = live[~bad]
    previous = np.full(R, np.inf)
    size = np.zeros((R, p))
    size[live] = np.abs(step[live]) * sd[live] / np.maximum(1.0, np.abs(beta[live]) * sd[live])
    done = np.zeros(R, dtype=bool)        # converged: stop iterating
    active = live
    root_tol = np.sqrt(tol)
    while active.size:
        active = active[iterations[active] < max_iter]
        if not active.size:
            break
        iterations[active] += 1
        trial = beta[active] + step[active]
        t_loglik, t_score, t_info = chunk.evaluate(active, trial)
        change = t_loglik - loglik[active]
        halve = ~np.isfinite(t_loglik) | (change < -tol * np.abs(loglik[active]))
        step[active[halve]] /= 2.0      # R: newbeta = (newbeta + beta) / 2
        take = ~halve
        rows = active[take]
        beta[rows], loglik[rows] = trial[take], t_loglik[take]
        score[rows], info[rows] = t_score[take], t_info[take]
        change = change[take]
        s, bad = solve_rows(info[rows], score[rows][:, :, None])
        step[rows] = s[:, :, 0]
        size[rows] = np.abs(step[rows]) * sd[rows] / np.maximum(1.0, np.abs(beta[rows]) * sd[rows])
        biggest = size[rows].max(axis=1)
        flat_ll = np.abs(change) <= tol * np.abs(loglik[rows])
        small = flat_ll & (biggest <= _STEP_TOL)
        stuck = flat_ll & ~small & (biggest > 0.5 * previous[rows])   # the step no longer shrinks
        diverging = stuck & (size[rows] > root_tol).any(axis=1)
        finished = (small | (stuck & ~diverging)) & ~bad
        done[rows[finished]] = True
        previous[rows] = biggest
        stop = np.zeros(R, dtype=bool)
        stop[rows[finished | diverging | bad]] = True
        active = active[~stop[active]]
    rows = np.flatnonzero(done)
    if rows.size:
        # one last Newton step (below 1e-10 in linear-predictor units): the estimate is then
        # the root of the score to rounding, whatever tol stopped the iterations
        polish = beta[rows] + step[rows]
        p_loglik, p_score, p_info = chunk.evaluate(rows, polish)
        good = np.isfinite(p_loglik) & (p_loglik - loglik[rows] >= -tol * np.abs(loglik[rows]))
        good &= np.isfinite(p_info).all(axis=(1, 2))
        better = rows[good]
        beta[better], loglik[better], info[better] = polish[good], p_loglik[good], p_info[good]
        iterations[better] += 1
        c, bad = solve_rows(info[rows], np.broadcast_to(np.eye(p), (rows.size, p, p)).copy())
        c = (c + c.transpose(0, 2, 1)) / 2.0
        # _coxfit._check_finite_estimate: a coefficient that ran off to infinity
        var = np.diagonal(c, axis1=1, axis2=2)
        b = beta[rows]
        collapsed = (np.diagonal(info[rows], axis1=1, axis2=2)
                     < 1e-8 * np.maximum(info0[rows], np.finfo(float).tiny))
        wrong = (~np.isfinite(var) | (var <= 0)
                 | (collapsed & (np.abs(b) * sd[rows] > 10.0))).any(axis=1) | bad
        rows, c = rows[~wrong], c[~wrong]
        coef[rows], cov[rows], loglik_out[rows] = beta[rows], c, loglik[rows]
        ok[rows] = True
    return coef, cov, loglik_out, null, ok, iterations


def cox_batch(X: np.ndarray, time: np.ndarray, event: np.ndarray, *,
              mask: np.ndarray | None = None, ties: str = "breslow", max_iter: int = 30,
              tol: float = 1e-9) -> CoxBatchResult:
    """Fit the same Cox proportional-hazards model to ``R`` replicate cohorts at once.

    Row ``r`` gives the fit of
    ``coxph_fit(X[r][m], time[r][m], event[r][m], ties=ties)`` with ``m = mask[r]``
    (to about 1e-11, see the module notes), for every row whose one-cohort fit
    succeeds, and NaN where it raises.

    Parameters
    ----------
    X : numpy.ndarray
        ``(R, n, p)`` covariates of each replicate's patients (float, e.g. 0/1
        indicators); finite where ``mask`` is True.
    time : numpy.ndarray
        ``(R, n)`` follow-up times, finite and >= 0 where ``mask`` is True.
    event : numpy.ndarray
        ``(R, n)`` event indicators, 1 = event, 0 = censored.
    mask : numpy.ndarray, optional
        ``(R, n)`` bool, the patients in each replicate's model; the others are
        ignored (their values may be anything, NaN included). Default: all.
    ties : {"breslow", "efron"}
        Approximation for tied event times.
    max_iter : int
        Most Newton-Raphson iterations per replicate (step halvings count).
    tol : float
        Relative change in the log partial likelihood below which a replicate
        may stop; it stops when, in addition, the next Newton step is below
        1e-10 in linear-predictor units (as the one-cohort kernel).

    Returns
    -------
    CoxBatchResult
        One row per replicate; NaN and ``converged`` False where no estimate exists.

    Raises
    ------
    InputError
        Arrays of inconsistent shapes, or an unknown ``ties``.

    Notes
    -----
    Where :func:`~failpattern.stats.fit.coxph_fit` raises
    :class:`~failpattern.errors.ConvergenceError` (no event among the
    patients, a covariate constant among them or within every risk set,
    collinear covariates, a coefficient diverging to infinity, e.g. a group
    without events, or no convergence in the allowed iterations), this
    function does not raise: the row is NaN with ``converged`` False and the
    other rows are fitted. Rows without an event, with a covariate constant
    among the patients, or with every event at a covariate's largest (or
    smallest) value (for a 0/1 covariate: a group without events) are
    recognised before iterating; the others fail as the one-cohort kernel
    detects it. ``max_iter`` is 30 here against 50 in
    :func:`~failpattern.stats.fit.coxph_fit`; a replicate needing more is a
    failure. ``iterations`` of a
    failed row is how far it got. Strata are not supported. Inputs are not
    otherwise validated (as the fit layer).
    """
    if ties not in ("breslow", "efron"):
        raise InputError(f"ties must be 'breslow' or 'efron', not {ties!r}")
    X, time, event, mask = check_inputs(X, time, event, mask, "event")
    R, n, p = X.shape
    time = np.where(mask, time, 0.0)
    width = 1 + p + p * (p + 1) // 2 if ties == "efron" else 3 + 3 * p   # arrays per patient
    block = max(1, CELLS // max(1, n * width))
    fits = empty_fits(R, p)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        for lo in range(0, R, block):
            part = slice(lo, min(R, lo + block))
            chunk = _Chunk(X[part], time[part], event[part], mask[part], ties == "efron")
            (fits["coef"][part], fits["covariance"][part], fits["loglik"][part], fits["loglik_null"][part],
             fits["converged"][part], fits["iterations"][part]) = _fit_chunk(chunk, max_iter, tol)
            fits["n_events"][part] = chunk.n_events
    return CoxBatchResult(**with_wald(fits), ties=ties)


# ----------------------------------------------------------------------------- one-covariate models
class _BinaryChunk:
    """One-covariate Breslow models of 0/1 covariates, laid out for ``_fit_chunk``.

    Why: with a 0/1 covariate, ``exp(x b)`` takes two values, so the risk-set sums at an event
    time are ``r_1 N_1 + r_0 N_0``, ``N`` the numbers of each group at risk, which do not depend
    on ``b``. Those numbers are counted once (one sort per replicate for all its models) and each
    Newton step is then O(event times) (:func:`~failpattern.stats._batch_models.binary_moments`,
    the same moments as the one-covariate Fine-Gray models with weighted numbers), instead of
    running sums over every patient. The model's rows are ``(F, M)`` arrays, event times down,
    models across, padded with ``d`` 0 (exact zeros in the sums down the event times), so a
    model's numbers do not depend on its batch-mates.

    The attributes ``_fit_chunk`` reads are :class:`_Chunk`'s: ``rows``, ``p``, ``hopeless``,
    ``sd``, ``n_events`` and :meth:`evaluate`; the covariate is centred at its mean among the
    model's patients, as there (``1 - mean`` and ``-mean``, the same floats).
    """

    def __init__(self, X: np.ndarray, time: np.ndarray, event: np.ndarray, mask: np.ndarray,
                 which: np.ndarray):
        R, n, K = X.shape
        key = np.where(mask, time, np.inf)
        order = np.argsort(key, axis=1, kind="stable")
        t = np.take_along_axis(key, order, axis=1)
        e = np.take_along_axis((event != 0) & mask, order, axis=1)
        ones = (X.reshape(R * n, K)[(order + (np.arange(R) * n)[:, None]).ravel()].reshape(R, n, K) == 1.0)
        ones &= np.take_along_axis(mask, order, axis=1)[:, :, None]
        _, ends, first = tie_runs(t)
        ce = np.zeros((R, n + 1), dtype=np.int64)
        np.cumsum(e, axis=1, out=ce[:, 1:])
        d = ce[:, 1:] - np.take_along_axis(ce, first, axis=1)   # events of the time up to here
        is_event_time = ends & (d > 0)
        F = max(1, int(is_event_time.sum(axis=1).max()))
        at = np.argsort(~is_event_time, axis=1, kind="stable")[:, :F]   # ascending event times
        real = np.take_along_axis(is_event_time, at, axis=1)
        d = np.where(real, np.take_along_axis(d, at, axis=1), 0)
        start = np.take_along_axis(first, at, axis=1)          # at risk: positions >= start
        c1 = np.zeros((R, n + 1, K), dtype=np.int64)
        np.cumsum(ones, axis=1, out=c1[:, 1:])
        n_in = mask.sum(axis=1)
        n1 = c1[:, -1]                                           # (R, K)
        n0 = n_in[:, None] - n1
        N1 = n1[:, None, :] - np.take_along_axis(c1, start[:, :, None], axis=1)   # (R, F, K)
        N0 = (n_in[:, None] - start)[:, :, None] - N1
        e1 = (ones & e[:, :, None]).sum(axis=1)
        events = e.sum(axis=1)
        self.rr, self.kk = np.nonzero(which)                     # the models, (row, covariate)
        rr, kk = self.rr, self.kk
        pad = (d[rr] == 0).T
        self.W1 = np.ascontiguousarray(np.where(pad, 1.0, N1[rr, :, kk].T))   # (F, M)
        self.W0 = np.ascontiguousarray(np.where(pad, 1.0, N0[rr, :, kk].T))
        self.d = np.ascontiguousarray(d[rr].T.astype(float))
        size = np.maximum(n_in, 1)[rr]
        mean = n1[rr, kk] / size
        self.x1, self.x0 = 1.0 - mean, 0.0 - mean
        self.xx1, self.xx0 = self.x1 * self.x1, self.x0 * self.x0
        self.nf1 = e1[rr, kk].astype(float)
        self.nf0 = (events[rr] - e1[rr, kk]).astype(float)
        self.rows, self.p = rr.size, 1
        self.n_events = events[rr]
        self.sd = np.sqrt((n1[rr, kk] * self.xx1 + n0[rr, kk] * self.xx0) / size)[:, None]
        # as _Chunk: no event, the covariate constant, or every event in one group
        self.hopeless = ((self.n_events == 0) | (n1[rr, kk] == 0) | (n0[rr, kk] == 0)
                         | (self.nf1 == 0) | (self.nf0 == 0))

    def evaluate(self, rows: np.ndarray, beta: np.ndarray):
        """Log partial likelihood, score ``(k, 1)`` and information ``(k, 1, 1)`` of ``rows`` at ``beta``."""
        if rows.size == self.rows:
            cols, vec = (lambda a: a), (lambda a: a)
        else:
            cols, vec = (lambda a: a[:, rows]), (lambda a: a[rows])
        loglik, score, info = binary_moments(
            cols(self.W1), cols(self.W0), vec(self.x1), vec(self.x0), vec(self.xx1), vec(self.xx0),
            cols(self.d), vec(self.nf1), vec(self.nf0), beta[:, 0])[:3]
        return loglik, score[:, None], info[:, None, None]


def cox_univariate_batch(X: np.ndarray, time: np.ndarray, event: np.ndarray, *,
                         mask: np.ndarray | None = None, which: np.ndarray | None = None,
                         ties: str = "breslow", max_iter: int = 30, tol: float = 1e-9) -> UnivariateBatchResult:
    """Fit ``K`` one-covariate Cox models of 0/1 covariates on the same patients, for ``R``
    replicate cohorts at once.

    Why: the plan's PFS1 Cox models are one model per covariate on the same patients. Fitted
    one model at a time (:func:`cox_batch`), each repeats the sort and every Newton step runs
    over every patient; here the sort is done once per replicate and, the covariates being 0/1,
    each Newton step costs O(event times) (see ``_BinaryChunk``). The Newton iteration, its
    checks and its final polishing step are :func:`cox_batch`'s own (the same driver).

    Model ``(r, j)`` equals ``cox_batch(X[:, :, [j]], time, event, mask=mask)`` row ``r`` (and so
    ``coxph_fit(X[r][m][:, [j]], time[r][m], event[r][m], ties="breslow")``, ``m = mask[r]``) to
    rounding: the sums run in another order, and the estimate is the root of the score either
    way. Each model's numbers depend on its own replicate only, bit for bit, whatever the other rows.

    Parameters
    ----------
    X : numpy.ndarray
        ``(R, n, K)`` 0/1 covariates, one model per column.
    time, event : numpy.ndarray
        ``(R, n)`` follow-up times and event indicators (1 event, 0 censored).
    mask : numpy.ndarray, optional
        ``(R, n)`` bool, the patients of every model of the row. Default: all.
    which : numpy.ndarray, optional
        ``(R, K)`` bool, the models to fit. Default: all.
    ties : {"breslow"}
        Breslow's approximation only (with Efron's, a risk set's tied events change the
        denominators event by event, so the group counts are not enough).
    max_iter : int
        Most Newton-Raphson iterations per model, as :func:`cox_batch`.
    tol : float
        As :func:`cox_batch`.

    Returns
    -------
    UnivariateBatchResult
        ``(R, K)`` arrays; ``converged`` False (NaN elsewhere) where the model was not asked
        for or has no estimate (as :func:`cox_batch`'s rows that are not converged).

    Raises
    ------
    InputError
        Arrays of inconsistent shapes, covariates other than 0/1, or ``ties`` other than ``"breslow"``.
    """
    if ties != "breslow":
        raise InputError(f"cox_univariate_batch fits ties='breslow' only, not {ties!r}")
    X, time, event, mask = check_inputs(X, time, event, mask, "event")
    R, n, K = X.shape
    X, which = binary_inputs(X, mask, which, "cox_univariate_batch")
    time = np.where(mask, time, 0.0)
    shape = (R, K)
    out = {k: np.full(shape, np.nan) for k in ("coef", "se", "loglik", "loglik_null")}
    out["converged"], out["iterations"] = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=np.int64)
    block = max(1, CELLS // max(1, n * (K + 2)))     # the sort's arrays: (rows, n, K) and a few (rows, n)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        for lo in range(0, R, block):
            s = slice(lo, min(R, lo + block))
            chunk = _BinaryChunk(X[s], time[s], event[s], mask[s], which[s])
            if not chunk.rows:
                continue
            coef, cov, loglik, null, ok, its = _fit_chunk(chunk, max_iter, tol)
            rr, kk = chunk.rr + lo, chunk.kk
            out["iterations"][rr, kk] = its
            out["loglik_null"][rr, kk] = null
            rr, kk = rr[ok], kk[ok]
            out["coef"][rr, kk], out["se"][rr, kk] = coef[ok, 0], np.sqrt(cov[ok, 0, 0])
            out["loglik"][rr, kk] = loglik[ok]
            out["converged"][rr, kk] = True
    return UnivariateBatchResult(**out)
