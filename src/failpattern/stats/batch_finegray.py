"""Many small Fine-Gray models fitted at once: one vectorised Newton-Raphson over replicates.

Why our own: a replicate study fits the same small Fine-Gray model (a handful
of 0/1 covariates, one cause of interest, the others competing) to thousands
of simulated cohorts of equal size. One fit of
:func:`~failpattern.stats.fit.finegray_fit` on 93 patients costs a few hundred
microseconds, almost all of it numpy's per-call overhead, paid once per
cohort. No library fits thousands of small Fine-Gray models in one vectorised
Newton iteration (R ``cmprsk::crr``, Stata ``stcrreg`` and the Python ports
fit one model per call), so :func:`finegray_batch` stacks the cohorts along a
leading replicate axis and runs every Newton step, for all of them, as one
set of array operations. (:func:`~failpattern.stats.fit.finegray_fit_univariate`
batches along another axis: several one-covariate models of the *same*
patients.)

Each replicate follows the one-cohort kernel
(:mod:`failpattern.stats._finegray_kernel`, behind
:func:`~failpattern.stats.fit.finegray_fit`): the censoring weights are the
Kaplan-Meier of the censoring distribution just before each time (crr's
``G(t-)``, with the right value at ``t = 0``), computed with the same
operations, so to the last bit; a patient with a competing event stays in
the risk sets of the subdistribution hazard after its event with weight
``G(tau-) / G(t_i-)``. Newton-Raphson starts at ``beta = 0`` with crr's
backtracking (halve the step until the log pseudo-likelihood rises by 1e-4
of the predicted gain, 21 tries), takes full steps in the quadratic region,
and stops on crr's criterion with a final polishing step; the start and
separation checks are the kernel's. The variance is Fine & Gray's sandwich
from the same score residuals (the subdistribution martingale part and the
part due to the estimated censoring weights), times ``n / (n - 1)`` for
``variance="stata"``.

The risk-set sums are running sums over the patients sorted by time, read at
each distinct failure time (the kernel's large-problem path), and the
information is the kernel's ``X' diag(a) X`` form, all vectorised over the
replicates; the sums run in another order than the kernel's, but the estimate
is the root of the score to rounding either way, so coefficients, standard
errors and log pseudo-likelihood agree with
:func:`~failpattern.stats.fit.finegray_fit` to about 1e-13. Memory is
``O(n p)`` per replicate; replicates are fitted in blocks of about 2 MB.

:func:`finegray_univariate_batch` fits many one-covariate models of 0/1 covariates on the same
patients (Table 3 of the plan: 17 per cohort) from one sort and one set of censoring weights per
replicate, each Newton step in O(failure times) (see its notes).

Where the one-cohort fit's outcome is decided by rounding (a separated
replicate whose coefficients ran off to about +-37 before the score
underflowed, which :func:`~failpattern.stats.fit.finegray_fit` sometimes
reports as converged with a NaN or absurd standard error, sometimes refuses),
the batch may decide the other way: about 1 replicate in 1,000 in
stress tests on cohorts of 20-40 patients with up to 5 covariates, none on
cohorts of 93.
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
    with_wald,
)
from failpattern.stats._finegray_batch import HALVINGS, newton_univariate


__all__ = ["finegray_batch", "FineGrayBatchResult", "finegray_univariate_batch", "UnivariateBatchResult"]



@dataclass(frozen=True)
class FineGrayBatchResult(BatchFitResult):
    """Fine-Gray models fitted to ``R`` replicate cohorts by :func:`finegray_batch`.

    Rows of every array are the replicates. A replicate that could not be fitted has
    ``converged`` False and NaN in ``coef``, ``se``, ``covariance``, ``loglik`` and ``wald_p``.

    Attributes
    ----------
    coef : numpy.ndarray
        ``(R, p)`` log subdistribution hazard ratios.
    se : numpy.ndarray
        ``(R, p)`` robust standard errors (square roots of the diagonal of ``covariance``).
    covariance : numpy.ndarray
        ``(R, p, p)`` Fine & Gray's sandwich covariance (times ``n / (n - 1)`` for
        ``variance="stata"``, ``n`` the replicate's patients in the model).
    loglik, loglik_null : numpy.ndarray
        ``(R,)`` log pseudo-likelihood at ``coef`` and at ``beta = 0`` (NaN where not fitted).
    n_events : numpy.ndarray
        ``(R,)`` failures of the cause of interest among the patients in the model.
    converged : numpy.ndarray
        ``(R,)`` bool, True where the fit converged to a finite estimate.
    iterations : numpy.ndarray
        ``(R,)`` Newton-Raphson iterations, the polishing step included, as
        :func:`~failpattern.stats.fit.finegray_fit` counts them; for a failed row, how far it got.
    wald_p : numpy.ndarray
        ``(R, p)`` two-sided Wald p-values ``2 * Phi(-|coef / se|)``.
    variance : str
        ``"crr"`` or ``"stata"``.
    """

    variance: str


def _cum0(a: np.ndarray, axis: int = 1) -> np.ndarray:
    """Running sums along ``axis`` with a leading 0 (``out[j]`` = sum of the first ``j``)."""
    a = np.moveaxis(a, axis, 1)
    out = np.zeros((a.shape[0], a.shape[1] + 1) + a.shape[2:], dtype=a.dtype)
    np.cumsum(a, axis=1, out=out[:, 1:])
    return np.moveaxis(out, 1, axis)


def _gather(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[r, idx[r, j], ...]`` for every row ``r`` (one flat take: faster than
    ``take_along_axis`` with broadcast indices)."""
    k, L = a.shape[:2]
    flat = idx + (np.arange(k) * L)[:, None]
    return a.reshape((k * L,) + a.shape[2:])[flat]


def _take_last(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[r, :, idx[r, j]]`` of an ``(k, q, L)`` array: ``(k, q, F)``."""
    k, q, L = a.shape
    flat = (np.arange(k * q) * L).reshape(k, q, 1) + idx[:, None, :]
    return a.reshape(-1)[flat]


class _Chunk:
    """Sorted, centred arrays of a block of replicates, the censoring weights and the
    layout of the distinct failure times of interest.

    Each row is sorted by time (patients outside the model last); the patients'
    ``[1, x]`` are stored ``(rows, 1 + p, patients)`` so that risk-set sums are
    running sums along the contiguous last axis. The distinct times with a
    failure of interest are listed (``fpos``, the last position of each,
    ascending), padded to the block's largest count with ``d`` 0. The risk set
    of such a time ``tau`` holds everyone with ``t_i >= tau`` (weight 1) and
    everyone with a competing event before ``tau`` (weight ``G(tau-) / G(t_i-)``):
    a running sum from the end plus ``G(tau-)`` times a running sum of
    ``r [1, x] / G`` over the competing patients from the start, each read at
    the first position of ``tau``.
    """

    def __init__(self, X: np.ndarray, time: np.ndarray, cause: np.ndarray, mask: np.ndarray,
                 coi: int):
        R, n, p = X.shape
        key = np.where(mask, time, np.inf)
        order = np.argsort(key, axis=1, kind="stable")
        t = _gather(key, order)
        c = _gather(cause, order)
        m = _gather(mask, order)
        x = _gather(X, order)
        n_in = m.sum(axis=1)
        size = np.maximum(n_in, 1)[:, None]
        mean = np.where(m[:, :, None], x, 0.0).sum(axis=1) / size
        x = np.where(m[:, :, None], x - mean[:, None, :], 0.0).transpose(0, 2, 1).copy()  # (R, p, n)
        fail = m & (c == coi)
        comp = m & (c != 0) & (c != coi)
        cens = m & (c == 0)
        pos = np.arange(n)
        new = np.ones((R, n), dtype=bool)
        np.not_equal(t[:, 1:], t[:, :-1], out=new[:, 1:])
        ends = np.ones((R, n), dtype=bool)
        ends[:, :-1] = new[:, 1:]
        first = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
        last = np.minimum.accumulate(np.where(ends, pos, n)[:, ::-1], axis=1)[:, ::-1]
        # censoring Kaplan-Meier, as the kernel: the product over the distinct times
        # before t of (1 - censored / at risk); the right value at t = 0
        risk = (n_in[:, None] - first).astype(float)                          # at risk at t_i
        cc = _cum0(cens.astype(np.int64))
        n_cens = (_gather(cc, last + 1) - _gather(cc, first)).astype(float)
        factor = np.where(ends & m, 1.0 - n_cens / np.where(risk > 0, risk, 1.0), 1.0)
        after = np.cumprod(factor, axis=1)
        before = np.ones((R, n + 1))
        before[:, 1:] = after
        G = _gather(before, first)
        G = np.where(m & (t == 0.0), _gather(after, last), G)
        inv_g = np.where(comp, 1.0 / G, 0.0)
        # the distinct failure times of interest, at the last position of their time
        cf = _cum0(fail.astype(np.int64))
        d = _gather(cf, last + 1) - _gather(cf, first)
        is_ft = ends & (d > 0)
        F = max(1, int(is_ft.sum(axis=1).max()))
        fpos = np.argsort(~is_ft, axis=1, kind="stable")[:, :F]
        self.d = np.where(_gather(is_ft, fpos), _gather(d, fpos), 0).astype(float)
        self.Gk = _gather(G, fpos)
        cft = _cum0(is_ft.astype(np.int64))
        self.n_le = _gather(cft, last + 1)    # failure times <= t_i
        self.n_lt = _gather(cft, first)       # failure times < t_i
        ffirst = _gather(first, fpos)
        self.fmirror = n - 1 - ffirst                # tau's first position, read from the end
        self.fprev = np.maximum(ffirst - 1, 0)       # the position just before it
        self.Gc = np.where(ffirst > 0, self.Gk, 0.0)  # no one before the first position
        z = np.empty((R, 1 + p, n))
        z[:, 0] = 1.0
        z[:, 1:] = x
        self.rows, self.p, self.n = R, p, n
        self.x, self.z, self.m, self.inv_g = x, z, m.astype(float), inv_g[:, None, :]
        self.fail, self.cens, self.risk = fail.astype(float), cens, risk
        self.first, self.last = first, last
        self.n_in, self.n_events = n_in, fail.sum(axis=1)
        self.x_fail_sum = (x @ self.fail[:, :, None])[:, :, 0]

    def evaluate(self, rows: np.ndarray, beta: np.ndarray):
        """Log pseudo-likelihood, score, information and the sums they came from (as
        :func:`~failpattern.stats._finegray_kernel._evaluate`)."""
        p, n = self.p, self.n
        pick = (lambda a: a) if rows.size == self.rows else (lambda a: a[rows])
        x, m, d = pick(self.x), pick(self.m), pick(self.d)
        eta = (beta[:, None, :] @ x)[:, 0]
        eta -= np.where(m > 0, eta, -np.inf).max(axis=1, keepdims=True)
        eta *= m
        r = np.exp(eta)
        r *= m
        rz = pick(self.z) * r[:, None, :]                     # r [1, x], (k, p + 1, n)
        k, F = rz.shape[0], d.shape[1]
        # S0, S1 at each failure time: everyone with t_i >= tau (a running sum from the end,
        # read mirrored) plus G(tau-) times the competing r [1, x] / g with t_i < tau
        tail = np.cumsum(rz[:, :, ::-1], axis=2)
        rz *= pick(self.inv_g)
        comp = np.cumsum(rz, axis=2)
        moments = _take_last(tail, pick(self.fmirror))
        moments += pick(self.Gc)[:, None, :] * _take_last(comp, pick(self.fprev))
        s0 = np.where(d > 0, moments[:, 0], 1.0)
        lam = d / s0
        xbar = moments[:, 1:] / s0[:, None, :]                                        # (k, p, F)
        loglik = (np.einsum("rn,rn->r", pick(self.fail), eta)
                  - np.einsum("rk,rk->r", d, np.log(s0)))
        score = pick(self.x_fail_sum) - (xbar @ d[:, :, None])[:, :, 0]
        # sum_k lam_k S2_k = X' diag(a) X, swapping the sums over failure times and patients
        both = np.zeros((k, 2, F + 1))
        np.cumsum(lam, axis=1, out=both[:, 0, 1:])
        both[:, 1, :-1] = np.cumsum((lam * pick(self.Gk))[:, ::-1], axis=1)[:, ::-1]
        at = _take_last(both, pick(self.n_le))
        a = r * (at[:, 0] + pick(self.inv_g)[:, 0] * at[:, 1])
        info = ((x * a[:, None, :]) @ x.transpose(0, 2, 1)
                - (xbar * d[:, None, :]) @ xbar.transpose(0, 2, 1))
        return loglik, score, info, r, lam, xbar

    def influence(self, rows: np.ndarray, r: np.ndarray, lam: np.ndarray,
                  xbar: np.ndarray) -> np.ndarray:
        """Per-patient score residuals ``eta_i + psi_i`` of Fine & Gray's sandwich (as
        :func:`~failpattern.stats._finegray_kernel.influence`), ``(k, n, p)``."""
        x = self.x[rows].transpose(0, 2, 1)                                    # (k, n, p)
        xbar = xbar.transpose(0, 2, 1)                                         # (k, F, p)
        inv_g = self.inv_g[rows][:, 0]
        n_le, n_lt = self.n_le[rows], self.n_lt[rows]
        lamx = lam[:, :, None] * xbar
        lg = lam * self.Gk[rows]
        lgx = lg[:, :, None] * xbar
        rlg = np.zeros((lg.shape[0], lg.shape[1] + 1))
        rlg[:, :-1] = np.cumsum(lg[:, ::-1], axis=1)[:, ::-1]
        rlgx = np.zeros((lgx.shape[0], lgx.shape[1] + 1, lgx.shape[2]))
        rlgx[:, :-1] = np.cumsum(lgx[:, ::-1], axis=1)[:, ::-1]
        # eta_i: the failure's own term minus the compensator over the risk sets it is in
        a = _gather(_cum0(lam), n_le) + inv_g * _gather(rlg, n_le)
        b = _gather(_cum0(lamx), n_le) + inv_g[:, :, None] * _gather(rlgx, n_le)
        out = -r[:, :, None] * (x * a[:, :, None] - b)
        fail = self.fail[rows]
        own = _gather(xbar, np.maximum(n_le - 1, 0))
        out += fail[:, :, None] * (x - own)
        # psi_i: the estimated censoring weights. q(s) = sum over failure times at or after s
        # of lam G sum over competing patients before s of (r / g) (x - xbar)
        rg = r * inv_g
        first = self.first[rows]
        pc1 = _gather(_cum0(rg), first)
        pcx = _gather(_cum0(rg[:, :, None] * x), first)
        q = pcx * _gather(rlg, n_lt)[:, :, None] - pc1[:, :, None] * _gather(rlgx, n_lt)
        risk, cens = self.risk[rows], self.cens[rows]
        safe = np.where(cens, risk, 1.0)
        v = np.where(cens, 1.0 / safe ** 2, 0.0)[:, :, None] * q
        out -= _gather(_cum0(v), self.last[rows] + 1)
        out += np.where(cens, 1.0 / safe, 0.0)[:, :, None] * q
        out *= self.m[rows][:, :, None]
        return out


def _start_ok(info: np.ndarray) -> np.ndarray:
    """The kernel's check of the starting information: finite, positive diagonal, and the
    Cholesky factor of its correlation form with every ``diag(L)^2 > 1e-12``."""
    k, p = info.shape[:2]
    diag = np.diagonal(info, axis1=1, axis2=2)
    ok = np.isfinite(info).all(axis=(1, 2)) & (diag > 0).all(axis=1)
    scale = np.sqrt(np.where(ok[:, None], diag, 1.0))
    corr = np.where(ok[:, None, None], info / (scale[:, :, None] * scale[:, None, :]), np.eye(p))
    smallest = np.zeros(k)
    try:
        smallest = np.diagonal(np.linalg.cholesky(corr), axis1=1, axis2=2).min(axis=1)
    except np.linalg.LinAlgError:
        for j in range(k):
            try:
                smallest[j] = np.linalg.cholesky(corr[j]).diagonal().min()
            except np.linalg.LinAlgError:
                smallest[j] = 0.0
    return ok & (smallest ** 2 > 1e-12)


def _fit_chunk(chunk: _Chunk, max_iter: int, tol: float):
    R, p = chunk.rows, chunk.p
    everyone = np.arange(R)
    beta = np.zeros((R, p))
    loglik, score, info = chunk.evaluate(everyone, beta)[:3]
    null = loglik.copy()
    step = np.zeros((R, p))
    gain = np.zeros(R)
    start = np.zeros((R, p))
    started = np.zeros(R, dtype=bool)
    iterations = np.zeros(R, dtype=np.int64)
    tries = np.zeros(R, dtype=np.int64)
    searching = np.zeros(R, dtype=bool)
    quad = np.zeros(R, dtype=bool)
    small = np.zeros(R, dtype=bool)
    done = np.zeros(R, dtype=bool)
    active = np.ones(R, dtype=bool)
    sqrt_tol = np.sqrt(tol)
    while active.any():
        fresh = np.flatnonzero(active & ~searching)    # at a new point: Newton step and tests
        if fresh.size:
            diag = np.diagonal(info[fresh], axis1=1, axis2=2)
            was = started[fresh]
            good = (diag > 1e-8 * start[fresh]).all(axis=1)
            newly = fresh[~was]
            if newly.size:
                good[~was] = _start_ok(info[newly])
            start[newly] = np.diagonal(info[newly], axis1=1, axis2=2)
            started[newly] = True
            s, bad = solve_rows(np.where(good[:, None, None], info[fresh], np.eye(p)),
                            score[fresh][:, :, None])
            step[fresh] = s[:, :, 0]
            bad |= ~good
            limit = np.maximum(np.abs(loglik[fresh]), 1.0) * tol
            scale = np.maximum(np.abs(beta[fresh]), 1.0)
            sm = (np.abs(score[fresh]) * scale).max(axis=1) < limit
            rel = (np.abs(step[fresh]) / scale).max(axis=1)
            bad |= (iterations[fresh] == max_iter) & ~(sm & (rel < sqrt_tol))
            exact = ~bad & sm & (rel < 1e-12)           # already exact to rounding
            done[fresh[exact]] = True
            active[fresh[bad | exact]] = False
            go = ~(bad | exact)
            small[fresh] = sm
            quad[fresh] = go & (rel < sqrt_tol)         # full step, then converged if small
            search = fresh[go & (rel >= sqrt_tol)]      # a new line search from here
            gain[search] = np.einsum("rp,rp->r", step[search], score[search])
            tries[search] = 0
            searching[search] = True
        rows = np.flatnonzero(active)
        if not rows.size:
            break
        t_loglik, t_score, t_info = chunk.evaluate(rows, beta[rows] + step[rows])[:3]
        accept = quad[rows] | (searching[rows] & np.isfinite(t_loglik)
                               & (t_loglik >= loglik[rows] + 1e-4 * gain[rows]))
        reject = rows[~accept]
        step[reject] /= 2.0
        tries[reject] += 1
        active[reject[tries[reject] >= HALVINGS]] = False    # step halving failed
        move = rows[accept]
        beta[move] += step[move]
        iterations[move] += 1
        loglik[move], score[move], info[move] = t_loglik[accept], t_score[accept], t_info[accept]
        searching[move] = False
        finished = move[quad[move] & small[move]]
        done[finished] = True
        active[finished] = False
        quad[move] = False
    return beta, null, done, iterations


def finegray_batch(X: np.ndarray, time: np.ndarray, cause: np.ndarray, *,
                   mask: np.ndarray | None = None, cause_of_interest: int = 1,
                   variance: str = "crr", max_iter: int = 50,
                   tol: float = 1e-9) -> FineGrayBatchResult:
    """Fit the same Fine-Gray model to ``R`` replicate cohorts at once.

    Row ``r`` gives the fit of
    ``finegray_fit(finegray_prepare(time[r][m], cause[r][m], X[r][m],
    cause_of_interest=cause_of_interest), cause_of_interest=cause_of_interest,
    variance=variance, tol=tol, max_iter=max_iter)`` with ``m = mask[r]``
    (to about 1e-13, see the module notes), for every row whose one-cohort
    fit succeeds, and NaN where it raises.

    Parameters
    ----------
    X : numpy.ndarray
        ``(R, n, p)`` covariates of each replicate's patients (float, e.g. 0/1
        indicators); finite where ``mask`` is True.
    time : numpy.ndarray
        ``(R, n)`` follow-up times, finite and >= 0 where ``mask`` is True.
    cause : numpy.ndarray
        ``(R, n)`` integer codes: 0 censored, ``cause_of_interest``, any other
        code a competing event.
    mask : numpy.ndarray, optional
        ``(R, n)`` bool, the patients in each replicate's model; the others are
        ignored (their values may be anything, NaN included). Default: all.
    cause_of_interest : int
        Code of the modelled failure.
    variance : {"crr", "stata"}
        ``"crr"``: Fine & Gray's sandwich as ``cmprsk::crr``; ``"stata"``: the
        same times ``n / (n - 1)`` (``stcrreg``'s robust variance), ``n`` the
        replicate's patients in the model.
    max_iter : int
        Most Newton-Raphson iterations per replicate.
    tol : float
        crr's ``gtol`` convergence criterion, as in
        :func:`~failpattern.stats.fit.finegray_fit`.

    Returns
    -------
    FineGrayBatchResult
        One row per replicate; NaN and ``converged`` False where no estimate exists.

    Raises
    ------
    InputError
        Arrays of inconsistent shapes, or an unknown ``variance``.

    Notes
    -----
    Where :func:`~failpattern.stats.fit.finegray_fit` raises (no failure of
    the cause of interest, a covariate constant among the patients or within
    the risk sets, collinear covariates, separation: a coefficient running
    off to infinity, e.g. a group without failures of interest, a failed
    line search, no convergence in ``max_iter`` iterations, a singular
    information at the estimate), this function does not raise: the row is
    NaN with ``converged`` False and the other rows are fitted. The decisions
    are the kernel's tests on numbers that may differ from the kernel's in
    the last bits, so a replicate right at a threshold (e.g. a separation
    detected at the 50th iteration) could in principle be decided the other
    way. Inputs are not otherwise validated (as the fit layer).
    """
    if variance not in ("crr", "stata"):
        raise InputError(f"variance must be 'crr' or 'stata', not {variance!r}")
    X, time, cause, mask = check_inputs(X, time, cause, mask, "cause")
    R, n, p = X.shape
    X = np.where(mask[:, :, None], X, 0.0)
    cause = np.where(mask, cause, 0)
    block = max(1, CELLS // max(1, n * (3 * p + 6)))   # arrays of n per replicate, about
    fits = empty_fits(R, p)
    coef, cov, loglik, null = fits["coef"], fits["covariance"], fits["loglik"], fits["loglik_null"]
    converged, iterations, n_events = fits["converged"], fits["iterations"], fits["n_events"]
    eye = np.eye(p)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        for lo in range(0, R, block):
            hi = min(R, lo + block)
            chunk = _Chunk(X[lo:hi], time[lo:hi], cause[lo:hi], mask[lo:hi], cause_of_interest)
            beta, ll0, done, its = _fit_chunk(chunk, max_iter, tol)
            iterations[lo:hi], n_events[lo:hi] = its, chunk.n_events
            rows = np.flatnonzero(done)
            if not rows.size:
                continue
            ll, _, info, r, lam, xbar = chunk.evaluate(rows, beta[rows])
            inv, bad = solve_rows(info, np.broadcast_to(eye, info.shape).copy())
            resid = chunk.influence(rows, r, lam, xbar)
            meat = resid.transpose(0, 2, 1) @ resid
            c = inv @ meat @ inv
            c = (c + c.transpose(0, 2, 1)) / 2.0
            if variance == "stata":
                k = chunk.n_in[rows].astype(float)
                c *= np.where(k > 1, k / (k - 1.0), 1.0)[:, None, None]
            keep = ~bad
            out = lo + rows[keep]
            coef[out], cov[out], loglik[out] = beta[rows[keep]], c[keep], ll[keep]
            null[out] = ll0[rows[keep]]
            converged[out] = True
    return FineGrayBatchResult(**with_wald(fits), variance=variance)


# ----------------------------------------------------------------------------- one-covariate models
#: Replicates per block of :func:`finegray_univariate_batch` (its sorted arrays are ``K`` times
#: wider than a model's); the results do not depend on it.
_UNI_BLOCK = 128


def _newton_binary(args, max_iter: int, tol: float):
    """:func:`~failpattern.stats._finegray_batch.newton_univariate` on
    :func:`~failpattern.stats._batch_models.binary_moments`; only
    the models still iterating are evaluated at each step. Returns ``beta``, the null log
    pseudo-likelihood, the iterations and which converged."""
    M = args[0].shape[1]

    def evaluate(trial, active):
        idx = np.flatnonzero(active)
        out = [np.full(M, np.nan) for _ in range(3)]
        part = binary_moments(*(a.take(idx, axis=1) if a.ndim == 2 else a[idx] for a in args), trial[idx])[:3]
        for o, v in zip(out, part):
            o[idx] = v
        return out

    loglik, score, info = binary_moments(*args, np.zeros(M))[:3]
    return newton_univariate(evaluate, loglik, score, info, max_iter=max_iter, tol=tol)


def _binary_block(X, time, cause, mask, which, coi, variance, max_iter, tol):
    """:func:`finegray_univariate_batch` of one block of replicates."""
    R, n, K = X.shape
    ch = _Chunk(X, time, cause, mask, coi)       # the sort, censoring weights and failure times, once
    x = ch.x                                     # (R, K, n) sorted, centred at each model's mean
    ind1, ind0 = x > 0, x < 0                    # 0/1 covariate: 1 - mean > 0 > -mean (members only)
    x1 = np.where(ind1, x, -np.inf).max(axis=2)  # the centred values of the two groups
    x0 = np.where(ind0, x, np.inf).min(axis=2)
    fit = which & ind1.any(axis=2) & ind0.any(axis=2)
    # the weighted number of each group in the risk set of each failure time (no beta in it)
    W = []
    for ind in (ind1, ind0):
        g = ind.astype(float)
        tail = _take_last(np.cumsum(g[:, :, ::-1], axis=2), ch.fmirror)
        g *= ch.inv_g
        tail += ch.Gc[:, None, :] * _take_last(np.cumsum(g, axis=2), ch.fprev)
        W.append(np.where(ch.d[:, None, :] > 0, tail, 1.0))     # padding: a harmless S0 > 0
    fail = ch.fail[:, None, :] > 0
    nf1, nf0 = (ind1 & fail).sum(axis=2), (ind0 & fail).sum(axis=2)
    rr, kk = np.nonzero(fit)                     # the models fitted, (row, covariate)
    F = ch.d.shape[1]
    down = [np.ascontiguousarray(w[rr, kk].T) for w in W]        # (F, M)
    d = np.ascontiguousarray(ch.d[rr].T)
    a1, a0 = x1[rr, kk], x0[rr, kk]
    args = (down[0], down[1], a1, a0, a1 * a1, a0 * a0, d, nf1[rr, kk].astype(float), nf0[rr, kk].astype(float))
    shape = (R, K)
    out = {k: np.full(shape, np.nan) for k in ("coef", "se", "loglik", "loglik_null")}
    out["converged"], out["iterations"] = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=np.int64)
    if not rr.size:
        return out
    beta, null, its, good = _newton_binary(args, max_iter, tol)
    out["iterations"][rr, kk] = its
    rr, kk, beta, null = rr[good], kk[good], beta[good], null[good]
    if not rr.size:
        return out
    args = tuple(np.ascontiguousarray(a[:, good]) if a.ndim == 2 else a[good] for a in args)
    loglik, _, info, lam, xbar, r1, r0 = binary_moments(*args, beta)
    lam, xbar = np.ascontiguousarray(lam.T), np.ascontiguousarray(xbar.T)         # (M, F)
    # the score residuals (_Chunk.influence with one covariate), model by model
    xm = x[rr, kk]                                                                 # (M, n)
    r = np.where(ind1[rr, kk], r1[:, None], np.where(ind0[rr, kk], r0[:, None], 0.0))
    inv_g = ch.inv_g[rr, 0]
    n_le, n_lt = ch.n_le[rr], ch.n_lt[rr]
    lamx = lam * xbar
    lg = lam * ch.Gk[rr]
    lgx = lg * xbar
    rlg, rlgx = np.zeros((rr.size, F + 1)), np.zeros((rr.size, F + 1))
    rlg[:, :-1] = np.cumsum(lg[:, ::-1], axis=1)[:, ::-1]
    rlgx[:, :-1] = np.cumsum(lgx[:, ::-1], axis=1)[:, ::-1]
    a = _gather(_cum0(lam), n_le) + inv_g * _gather(rlg, n_le)
    b = _gather(_cum0(lamx), n_le) + inv_g * _gather(rlgx, n_le)
    res = -r * (xm * a - b)
    res += ch.fail[rr] * (xm - _gather(xbar, np.maximum(n_le - 1, 0)))
    rg = r * inv_g
    first = ch.first[rr]
    q = (_gather(_cum0(rg * xm), first) * _gather(rlg, n_lt)
         - _gather(_cum0(rg), first) * _gather(rlgx, n_lt))
    cens = ch.cens[rr]
    safe = np.where(cens, ch.risk[rr], 1.0)
    res -= _gather(_cum0(np.where(cens, 1.0 / safe ** 2, 0.0) * q), ch.last[rr] + 1)
    res += np.where(cens, 1.0 / safe, 0.0) * q
    res *= ch.m[rr]
    meat = (res * res).sum(axis=1)               # over the n patients: the same length in every call
    inv = 1.0 / info
    cov = inv * meat * inv
    if variance == "stata":
        k = ch.n_in[rr].astype(float)
        cov *= np.where(k > 1, k / (k - 1.0), 1.0)
    ok = np.isfinite(cov) & (cov > 0) & np.isfinite(beta)
    rr, kk = rr[ok], kk[ok]
    out["coef"][rr, kk], out["se"][rr, kk] = beta[ok], np.sqrt(cov[ok])
    out["loglik"][rr, kk], out["loglik_null"][rr, kk] = loglik[ok], null[ok]
    out["converged"][rr, kk] = True
    return out


def finegray_univariate_batch(X: np.ndarray, time: np.ndarray, cause: np.ndarray, *,
                              mask: np.ndarray | None = None, which: np.ndarray | None = None,
                              cause_of_interest: int = 1, variance: str = "crr", max_iter: int = 50,
                              tol: float = 1e-9) -> UnivariateBatchResult:
    """Fit ``K`` one-covariate Fine-Gray models of 0/1 covariates on the same patients, for ``R``
    replicate cohorts at once.

    Why: Table 3 of the plan is 17 such models per cohort. Fitted one model at a time
    (:func:`finegray_batch`), each repeats the sort, the censoring weights and the layout of the
    failure times, and every Newton step sums over all patients. Here those are computed once per
    cohort; and with a 0/1 covariate ``exp(x b)`` takes two values, so each risk-set sum is
    ``r_1 W_1 + r_0 W_0``, the weighted numbers of each group in the risk set (which do not
    depend on ``b``): a Newton step costs O(failure times), not O(patients). The score
    residuals of the sandwich variance are then computed once, at the estimate, for all models.

    Model ``(r, j)`` equals ``finegray_fit(finegray_prepare(time[r][m], cause[r][m],
    X[r][m][:, [j]]), variance=variance, tol=tol, max_iter=max_iter)`` with ``m = mask[r]`` to
    rounding (the sums run in another order; the estimate is the root of the score either way),
    and follows the steps of :func:`~failpattern.stats.fit.finegray_fit_univariate`. Each model's
    numbers depend on its own replicate only, bit for bit, whatever the other rows.

    Parameters
    ----------
    X : numpy.ndarray
        ``(R, n, K)`` 0/1 covariates, one model per column.
    time, cause : numpy.ndarray
        ``(R, n)`` follow-up times and causes (0 censored, ``cause_of_interest``, others competing).
    mask : numpy.ndarray, optional
        ``(R, n)`` bool, the patients of every model of the row. Default: all.
    which : numpy.ndarray, optional
        ``(R, K)`` bool, the models to fit. Default: all.
    cause_of_interest : int
        Code of the modelled failure.
    variance : {"crr", "stata"}
        As :func:`finegray_batch`.
    max_iter : int
        Most Newton-Raphson iterations per model.
    tol : float
        crr's ``gtol`` convergence criterion.

    Returns
    -------
    UnivariateBatchResult
        Models not fitted here (not asked for, a covariate not varying, or one the one-covariate
        kernel fails or decides by its own rounding) have ``converged`` False.

    Raises
    ------
    InputError
        Arrays of inconsistent shapes, covariates other than 0/1, or an unknown ``variance``.
    """
    if variance not in ("crr", "stata"):
        raise InputError(f"variance must be 'crr' or 'stata', not {variance!r}")
    X, time, cause, mask = check_inputs(X, time, cause, mask, "cause")
    R, n, K = X.shape
    X, which = binary_inputs(X, mask, which, "finegray_univariate_batch")
    cause = np.where(mask, cause, 0)
    time = np.where(mask, time, 0.0)
    parts = []
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        for lo in range(0, R, _UNI_BLOCK):
            s = slice(lo, min(R, lo + _UNI_BLOCK))
            parts.append(_binary_block(X[s], time[s], cause[s], mask[s], which[s], cause_of_interest,
                                       variance, max_iter, tol))
    return UnivariateBatchResult(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
