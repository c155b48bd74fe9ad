"""Matrix-level Cox partial-likelihood fitter (the kernel behind :func:`failpattern.stats.cox.cox`).

The counterpart of R ``survival``'s ``coxph.fit`` / ``coxfit6``: it trusts its
input (finite float covariates, non-negative times, 0/1 events, integer strata
codes) and does the Newton-Raphson iterations. Each evaluation of the log
partial likelihood, its score and its information is O(n p^2) numpy work:
one sort (done once), a reverse cumulative sum over the sorted rows for the
risk sets, ``np.add.reduceat`` over the tied events of each time and
``np.bincount`` over Efron's per-event denominators; no loop over
observations or risk sets. Counting-process (entry, stop] rows and case
weights use :class:`_CountingDesign` (dense risk-set weights per event when
they fit in one block, else O(n log n) cumulative sums over the rows sorted by
stop and by entry), which also gives the score residuals of the robust
variance; fits without them never touch it. ``ties="exact"`` uses
:class:`_ExactDesign` (Gail, Lubin and Rubinstein's recursion at tied times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.linalg.lapack import dgesv as _dgesv

from failpattern.errors import ConvergenceError, InputError
from failpattern.stats._linalg import triangle

__all__ = ["CoxFit", "cox_fit"]

_SINGULAR = 1e-10    # smallest eigenvalue of the correlation-scaled information that counts
_STEP_TOL = 1e-10    # a Newton step this small (times sd(x), relative to max(1, |beta| sd(x)))


@dataclass(frozen=True)
class CoxFit:
    """Raw output of :func:`cox_fit` (arrays are plain; the public result freezes them).

    Attributes
    ----------
    coef : (p,) estimated log hazard ratios.
    covariance : (p, p) inverse of the observed information at ``coef``.
    information : (p, p) observed information at ``coef``.
    loglik : log partial likelihood at ``coef``.
    loglik_null : log partial likelihood at ``beta = 0``.
    score_test : score statistic ``U' I^{-1} U`` at ``beta = 0``.
    iterations : Newton-Raphson iterations used (step halvings included, as in R).
    converged : always ``True`` for a returned fit (failures raise).
    n_events : number of events.
    naive_covariance : (p, p) the model-based covariance when ``covariance`` is the robust
        one (``robust=True``), else ``None``.
    """

    coef: np.ndarray
    covariance: np.ndarray
    information: np.ndarray
    loglik: float
    loglik_null: float
    score_test: float
    iterations: int
    converged: bool
    n_events: int
    naive_covariance: np.ndarray | None = None


_DENSE_CELLS = 30_000  # events x rows at or below which risk sets are a dense weight matrix

class _Design:
    """Sorted data and tie structure, computed once; ``evaluate(beta)`` per iteration.

    Rows are sorted by stratum, time and, within a time, events before
    censorings. For an event time with ``d`` tied events the risk set splits
    into ``E`` (sums over the tied events) and ``R`` (everyone else at risk:
    censored at that time or later), both read off one reverse cumulative sum
    without subtracting the two. Efron's k-th denominator is
    ``R0 + (1 - k/d) E0`` (Breslow: ``R0 + E0``), so only scalars are needed
    per event; the vectors and matrices are combined once per event time.

    Small problems (events x rows at most ``_DENSE_CELLS``) instead hold the
    risk-set weights of every event as one dense ``(events, n)`` matrix (1 for
    ``R``, ``1 - k/d`` or 1 for ``E``), so an evaluation is one matrix product
    and a handful of array operations: the same sums of positive weights, with
    no subtraction either, at a fraction of the per-call overhead.
    """

    def __init__(self, X: np.ndarray, time: np.ndarray, event: np.ndarray,
                 strata: np.ndarray | None, efron: bool):
        n, p = X.shape
        e_in = event.astype(bool)
        keys = (~e_in, time) if strata is None else (~e_in, time, strata)
        order = np.lexsort(keys)
        t = time[order]
        e = e_in[order]
        # centring changes only rounding (the partial likelihood is shift invariant), as in R
        mean = np.add.reduce(X, axis=0) / n if X.dtype == np.float64 else X.mean(axis=0)
        xs = X[order] - mean
        new = np.empty(n, dtype=bool)
        new[0] = True
        np.not_equal(t[1:], t[:-1], out=new[1:])
        stop = None
        if strata is not None:
            s = strata[order]
            boundary = np.flatnonzero(s[1:] != s[:-1]) + 1
            new[boundary] = True
            ends = np.append(boundary, n)     # one past the last row of each stratum
            stop = np.repeat(ends, np.diff(np.concatenate(([0], ends))))
        starts = new.nonzero()[0]
        gid = new.cumsum()
        gid -= 1
        self.event_rows = e.nonzero()[0]
        d = np.bincount(gid[self.event_rows], minlength=starts.size)
        event_groups = d.nonzero()[0]
        dg = d[event_groups]
        n_ev = self.event_rows.size
        first = starts[event_groups]                 # tied events are rows first .. first + d - 1
        self.others_at = first + dg                  # R: rows from here to the end of the stratum
        self.others_stop = None if stop is None else stop[first]
        self.event_starts = np.zeros(dg.size, dtype=np.intp)
        dg[:-1].cumsum(out=self.event_starts[1:])
        self.event_group = np.arange(dg.size).repeat(dg)
        # weight of the tied events in the k-th Efron denominator: 1 - k/d (Breslow: 1)
        if efron:
            k = np.arange(n_ev) - self.event_starts.repeat(dg)
            self.keep = 1.0 - k / dg.repeat(dg)
        else:
            self.keep = np.ones(n_ev)
        self.groups = dg.size
        i0, i1, self.full = triangle(p)
        self.p = p
        self.n_events = n_ev
        self.x = xs
        # [1, x, upper triangle of x x'] for every row: sums of r * z give the 0th-2nd moments
        z = np.empty((n, 1 + p + i0.size))
        z[:, 0] = 1.0
        z[:, 1:p + 1] = xs
        np.multiply(xs[:, i0], xs[:, i1], out=z[:, p + 1:])
        self.z = z
        # sd of each column (X.std(axis=0)) from the column sums of its squares in z
        squares = np.add.reduce(z[:, p + 1:], axis=0)[self.full[::p + 1]]
        self.sd = np.sqrt(squares / n)
        self.x_event_sum = np.add.reduce(xs[self.event_rows], axis=0)
        self.dense = None
        if n_ev * n <= _DENSE_CELLS:
            # risk-set weights of each event (one row each): 0 before its tied events,
            # keep on them (E), 1 on the rest of its risk set (R), 0 after its stratum
            g = self.event_group
            lo = first[g]
            mid = self.others_at[g]
            counts = np.empty((n_ev, 4), dtype=np.intp)
            counts[:, 0] = lo
            counts[:, 1] = mid - lo
            if stop is None:
                counts[:, 2] = n - mid
                counts[:, 3] = 0
            else:
                hi = self.others_stop[g]
                counts[:, 2] = hi - mid
                counts[:, 3] = n - hi
            values = np.zeros((n_ev, 4))
            values[:, 1] = self.keep
            values[:, 2] = 1.0
            self.dense = values.ravel().repeat(counts.ravel()).reshape(n_ev, n)

    def evaluate(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Log partial likelihood, score vector and observed information at ``beta``.

        Callers silence floating-point warnings (``cox_fit`` does): an
        overflowing trial step gives a non-finite loglik, which is halved.
        """
        if self.dense is not None:
            return self._evaluate_dense(beta)
        p = self.p
        g = self.event_group
        eta = self.x @ beta
        shift = max(float(eta.max()) - 500.0, 0.0)   # keep exp() finite; loglik is shift-free
        if shift:
            eta -= shift
        w = np.exp(eta)[:, None] * self.z
        tail = np.zeros((w.shape[0] + 1, w.shape[1]))
        np.cumsum(w[::-1], axis=0, out=tail[-2::-1])     # tail[i] = sum of rows i..n-1
        others = tail[self.others_at]
        if self.others_stop is not None:                 # end each risk set at its stratum
            others -= tail[self.others_stop]
        tied = np.add.reduceat(w[self.event_rows], self.event_starts, axis=0)
        denom = others[:, 0][g] + self.keep * tied[:, 0][g]
        a = 1.0 / denom
        c = self.keep * a
        # per event time: sums of a, c, a^2, a c, c^2 over its tied events
        terms = np.empty((a.size, 5))
        terms[:, 0] = a
        terms[:, 1] = c
        np.multiply(terms[:, :2], a[:, None], out=terms[:, 2:4])
        np.multiply(c, c, out=terms[:, 4])
        A, C, AA, AC, CC = np.add.reduceat(terms, self.event_starts, axis=0).T
        loglik = (float(self.x_event_sum @ beta) - self.n_events * shift
                  - float(np.log(denom).sum()))
        r1, e1 = others[:, 1:p + 1], tied[:, 1:p + 1]
        score = self.x_event_sum - A @ r1 - C @ e1
        upper = A @ others[:, p + 1:] + C @ tied[:, p + 1:]
        cross = (r1 * AC[:, None]).T @ e1
        outer = (r1 * AA[:, None]).T @ r1 + cross + cross.T + (e1 * CC[:, None]).T @ e1
        info = upper[self.full].reshape(p, p) - outer
        return loglik, score, info

    def _evaluate_dense(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        p = self.p
        eta = self.x @ beta
        shift = max(float(np.maximum.reduce(eta)) - 500.0, 0.0)
        if shift:
            eta -= shift
        moments = self.dense @ (np.exp(eta)[:, None] * self.z)   # S0, S1, S2 of each event
        denom = moments[:, 0]
        inv = 1.0 / denom
        total = inv @ moments                       # sums over events of S / S0
        s1 = moments[:, 1:p + 1]
        loglik = (float(self.x_event_sum @ beta) - self.n_events * shift
                  - float(np.add.reduce(np.log(denom))))
        score = self.x_event_sum - total[1:p + 1]
        info = total[p + 1:][self.full].reshape(p, p) - (s1.T * (inv * inv)) @ s1
        return loglik, score, info


_BLOCK_CELLS = 2_000_000  # events x rows of one block of counting-process risk-set weights


def _matvec(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``x @ beta`` without BLAS: for the few columns of a design, a multithreaded BLAS
    call gains nothing and, on a loaded machine, its threads wait for cores (einsum's
    own loop runs in the calling thread)."""
    return np.einsum("ij,j->i", x, beta)


class _CountingDesign:
    """Risk sets of (entry, stop] rows with case weights; same ``evaluate`` as :class:`_Design`.

    Small problems (one block of events x rows) hold the risk-set weights densely;
    larger ones take each event's risk-set sums as (rows of the stratum with
    ``stop >= t``) minus (rows with ``entry >= t``), two reverse cumulative sums,
    and the score residuals' per-row hazard sums from cumulative sums over the
    events (:meth:`_sorted_sums`): O(n log n) instead of O(n x events).

    Row ``j`` is at risk at an event time ``t`` of its stratum when
    ``entry_j < t <= stop_j``. Each event gets one row of risk-set weights
    (1 on the rest of its risk set, Efron's ``1 - k/d`` or 1 on the events tied
    with it), held densely in blocks of events; the case weights multiply
    ``exp(eta)`` in the risk-set sums, and each event's term is scaled by the
    mean case weight of its tied events (as R's ``agfit4``; with Breslow ties
    integer weights therefore equal replicated rows).
    """

    def __init__(self, X, entry, time, event, weights, strata, efron: bool):
        n, p = X.shape
        e_in = event.astype(bool)
        strata = np.zeros(n, dtype=np.int64) if strata is None else strata
        entry_given = entry is not None
        entry = np.full(n, -np.inf) if entry is None else entry
        weights = np.ones(n) if weights is None else weights
        # centring changes only rounding (the partial likelihood is shift invariant)
        self.x = X - X.mean(axis=0)
        self.sd = X.std(axis=0)
        self.entry, self.stop, self.strata, self.weights = entry, time, strata, weights
        ev = np.flatnonzero(e_in)
        ev = ev[np.lexsort((time[ev], strata[ev]))]
        self.event_rows = ev
        self.n_events = ev.size
        ts = np.column_stack((strata[ev].astype(float), time[ev]))
        new = np.ones(ev.size, dtype=bool)
        new[1:] = (ts[1:] != ts[:-1]).any(axis=1)
        starts = np.flatnonzero(new)
        dg = np.diff(np.append(starts, ev.size))
        self.event_starts = starts
        self.event_group = np.repeat(np.arange(starts.size), dg)
        k = np.arange(ev.size) - starts.repeat(dg)
        self.keep = 1.0 - k / dg.repeat(dg) if efron else np.ones(ev.size)
        # mean case weight of each event's tied events (the scale of its term)
        wsum = np.add.reduceat(weights[ev], starts)
        self.meanwt = (wsum / dg)[self.event_group]
        self.wx_event_sum = weights[ev] @ self.x[ev]
        self.w_event = weights[ev]
        self.p = p
        i0, i1, self.full = triangle(p)
        z = np.empty((n, 1 + p + i0.size))
        z[:, 0] = 1.0
        z[:, 1:p + 1] = self.x
        np.multiply(self.x[:, i0], self.x[:, i1], out=z[:, p + 1:])
        self.z = z
        size = max(1, _BLOCK_CELLS // max(n, 1))
        self.blocks = [(a, min(a + size, ev.size)) for a in range(0, ev.size, size)]
        self._cache = ([self._weights_block(a, b) for a, b in self.blocks]
                       if len(self.blocks) == 1 else None)
        self._sorted = None if self._cache is not None else self._sorted_sums(entry_given)

    def _sorted_sums(self, entry_given: bool) -> dict:
        """Index arrays of the O(n log n) risk-set sums used when the dense weights would
        not fit in one block.

        At an event time ``t`` of stratum ``s`` the risk set is the rows of ``s`` with
        ``stop >= t`` minus those with ``entry >= t`` (a subset of them, since
        ``entry < stop``): two reverse cumulative sums, over the rows sorted by
        (stratum, stop) and by (stratum, entry), read at ``searchsorted`` positions.
        Times are ranked jointly so that the keys ``stratum * m + rank`` are exact
        integers; a stratum's rows end where the next stratum's keys begin.
        """
        ev = self.event_rows
        times = (np.unique(np.concatenate((self.entry, self.stop))) if entry_given
                 else np.unique(self.stop))
        m = times.size + 1
        strata = self.strata.astype(np.int64)
        key_stop = strata * m + np.searchsorted(times, self.stop)
        stop_order = np.argsort(key_stop, kind="stable")
        sorted_stop = key_stop[stop_order]
        key_event = key_stop[ev]                       # non-decreasing: ev is sorted so
        next_stratum = (strata[ev] + 1) * m
        out = {"stop_order": stop_order, "key_event": key_event, "key_stop": key_stop,
               "z_stop": self.z[stop_order], "z_entry": None,
               "a": np.searchsorted(sorted_stop, key_event, side="left"),
               "a_end": np.searchsorted(sorted_stop, next_stratum, side="left"),
               "entry_order": None}
        if entry_given:
            key_entry = strata * m + np.searchsorted(times, self.entry)
            entry_order = np.argsort(key_entry, kind="stable")
            sorted_entry = key_entry[entry_order]
            out.update(entry_order=entry_order, key_entry=key_entry,
                       z_entry=self.z[entry_order],
                       b=np.searchsorted(sorted_entry, key_event, side="left"),
                       b_end=np.searchsorted(sorted_entry, next_stratum, side="left"))
        else:
            out["stratum_start"] = np.searchsorted(key_event, strata * m, side="left")
        return out

    def _sorted_moments(self, risk: np.ndarray) -> np.ndarray:
        """Each event's risk-set sums of ``risk * z`` (rows: events), Efron-weighted, in
        O(n log n); ``z`` is kept sorted both ways, so only ``risk`` is permuted."""
        srt = self._sorted
        n, width = self.z.shape
        tail = np.empty((n + 1, width))
        tail[-1] = 0.0
        rz = srt["z_stop"] * risk[srt["stop_order"]][:, None]
        np.cumsum(rz[::-1], axis=0, out=tail[-2::-1])
        at_risk = tail[srt["a"]] - tail[srt["a_end"]]
        if srt["entry_order"] is not None:            # minus the rows not yet entered
            np.multiply(srt["z_entry"], risk[srt["entry_order"]][:, None], out=rz)
            np.cumsum(rz[::-1], axis=0, out=tail[-2::-1])
            at_risk -= tail[srt["b"]] - tail[srt["b_end"]]
        if not (self.keep < 1.0).any():               # Breslow: the whole risk set
            return at_risk
        ev = self.event_rows
        tied = np.add.reduceat(self.z[ev] * risk[ev][:, None], self.event_starts, axis=0)
        return at_risk - (1.0 - self.keep)[:, None] * tied[self.event_group]

    def _weights_block(self, a: int, b: int) -> np.ndarray:
        """Risk-set weights (events a..b-1 by rows): 0 off the risk set, keep on tied events."""
        ev = self.event_rows[a:b]
        t = self.stop[ev][:, None]
        at_risk = ((self.entry[None, :] < t) & (self.stop[None, :] >= t)
                   & (self.strata[None, :] == self.strata[ev][:, None]))
        m = at_risk.astype(float)
        # the tied events of an event: event rows at risk that end at its time
        is_event = np.zeros(self.stop.size, dtype=bool)
        is_event[self.event_rows] = True
        tied_mask = at_risk & (self.stop[None, :] == t) & is_event[None, :]
        m[tied_mask] = np.broadcast_to(self.keep[a:b, None], m.shape)[tied_mask]
        return m

    def _blocks(self):
        for i, (a, b) in enumerate(self.blocks):
            yield a, b, (self._cache[i] if self._cache is not None else self._weights_block(a, b))

    def _moments(self, beta):
        eta = _matvec(self.x, beta)
        shift = max(float(eta.max()) - 500.0, 0.0)
        risk = self.weights * np.exp(eta - shift)
        if self._sorted is not None:
            return eta, shift, risk, self._sorted_moments(risk)
        rz = risk[:, None] * self.z
        moments = np.empty((self.n_events, self.z.shape[1]))
        for a, b, m in self._blocks():
            moments[a:b] = m @ rz
        return eta, shift, risk, moments

    def evaluate(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Weighted log partial likelihood, score and observed information at ``beta``."""
        p = self.p
        eta, shift, _, moments = self._moments(beta)
        denom = moments[:, 0]
        scale = self.meanwt / denom
        total = np.einsum("i,ij->j", scale, moments)
        s1 = moments[:, 1:p + 1]
        loglik = (float(np.einsum("i,i->", self.w_event, eta[self.event_rows]))
                  - float(np.einsum("i,i->", self.meanwt, np.log(denom) + shift)))
        score = self.wx_event_sum - total[1:p + 1]
        outer = np.einsum("ij,ik->jk", s1 * (scale / denom)[:, None], s1)
        info = total[p + 1:][self.full].reshape(p, p) - outer
        return loglik, score, info

    def _sorted_hazards(self, hazard: np.ndarray, xbar: np.ndarray):
        """Per row, the sums over the events whose risk set holds it of ``hazard`` and
        ``hazard * xbar`` (Efron-weighted on its own tied events), from cumulative sums
        over the events in (stratum, time) order: O(n log n)."""
        srt = self._sorted
        ev = self.event_rows
        both = np.empty((ev.size, 1 + xbar.shape[1]))
        both[:, 0] = hazard
        both[:, 1:] = hazard[:, None] * xbar
        cum = np.zeros((ev.size + 1, both.shape[1]))
        np.cumsum(both, axis=0, out=cum[1:])
        hi = np.searchsorted(srt["key_event"], srt["key_stop"], side="right")
        if srt["entry_order"] is not None:
            lo = np.searchsorted(srt["key_event"], srt["key_entry"], side="right")
        else:
            lo = srt["stratum_start"]
        sums = cum[hi] - cum[lo]
        # an event row is weighted keep, not 1, in the terms of its own tied events
        spare = (1.0 - self.keep)[:, None] * both
        own = np.add.reduceat(spare, self.event_starts, axis=0)[self.event_group]
        sums[ev] -= own
        return sums[:, 0], sums[:, 1:]

    def score_residuals(self, beta: np.ndarray) -> np.ndarray:
        """Per-row score residuals (unweighted), ``(n, p)``: their weighted sum is the score."""
        p = self.p
        _, shift, _, moments = self._moments(beta)
        denom = moments[:, 0]
        hazard = self.meanwt / denom                  # each event's increment of the hazard
        xbar = moments[:, 1:p + 1] / denom[:, None]
        if self._sorted is not None:
            h_sum, hx_sum = self._sorted_hazards(hazard, xbar)
        else:
            h_sum = np.zeros(self.x.shape[0])
            hx_sum = np.zeros((self.x.shape[0], p))
            for a, b, m in self._blocks():
                h_sum += hazard[a:b] @ m
                hx_sum += m.T @ (hazard[a:b, None] * xbar[a:b])
        r = np.exp(_matvec(self.x, beta) - shift)     # the relative risk, without the case weight
        resid = -r[:, None] * (self.x * h_sum[:, None] - hx_sum)
        # events: x minus the mean of their tied events' (Efron-step) risk-set means
        group_mean = np.add.reduceat(xbar, self.event_starts, axis=0)
        group_mean /= np.diff(np.append(self.event_starts, self.n_events))[:, None]
        ev = self.event_rows
        np.add.at(resid, ev, self.x[ev] - group_mean[self.event_group])
        return resid


class _ExactDesign:
    """Exact partial likelihood (R's ``ties = "exact"``); same ``evaluate`` as :class:`_Design`.

    At an event time with ``d`` tied events ``D`` among the risk set ``R`` the
    discrete (conditional logistic) model's term is ``prod_{i in D} r_i / e_d``,
    ``e_d`` the sum over all ``d``-subsets of ``R`` of the product of their
    ``r = exp(eta)``: the elementary symmetric polynomial of degree ``d``. It and
    its first two derivatives come from the recursion of Gail, Lubin and
    Rubinstein (1981), ``B(k, j) = B(k, j-1) + r_j B(k-1, j-1)`` over the rows
    ``j`` of the risk set, which for each ``k`` is one cumulative sum (numpy),
    so a time costs O(d m p^2) for ``m`` at risk; each level is rescaled (the
    log of the scale kept) so that ``e_d`` cannot overflow. Times with a single
    event are exactly Breslow's term and go through :class:`_Design` (or
    :class:`_CountingDesign` with ``entry``) in one vectorised pass, the other
    events counting there as rows of the risk set only.
    """

    def __init__(self, X, time, event, strata, entry):
        n, p = X.shape
        e_in = event.astype(bool)
        codes = np.zeros(n, dtype=np.int64) if strata is None else strata
        self.p = p
        self.x = X - X.mean(axis=0)     # centring changes only rounding, as in _Design
        self.sd = X.std(axis=0)
        self.n_events = int(e_in.sum())
        # sort by stratum, then time: the risk set of an event time of stratum s is the
        # rows from the first with that time to the end of the stratum (minus rows
        # not yet entered, with entry)
        _, rank = np.unique(time, return_inverse=True)
        m = int(rank.max()) + 2
        key = codes.astype(np.int64) * m + rank.reshape(-1)
        order = np.argsort(key, kind="stable")
        key = key[order]
        self.entry = None if entry is None else entry[order]
        ts = time[order]
        ev = np.flatnonzero(e_in[order])              # events, in sorted positions
        new = np.ones(ev.size, dtype=bool)
        new[1:] = key[ev[1:]] != key[ev[:-1]]
        starts = np.flatnonzero(new)
        d = np.diff(np.append(starts, ev.size))
        group_key = key[ev[starts]]
        lo = np.searchsorted(key, group_key, side="left")
        stratum_end = np.searchsorted(key, (group_key // m + 1) * m, side="left")
        tied = d > 1
        self.groups = [(int(lo[g]), int(stratum_end[g]), int(d[g]), float(ts[ev[starts[g]]]),
                        ev[starts[g]:starts[g] + d[g]]) for g in np.flatnonzero(tied)]
        self.xs = self.x[order]
        self.xx = self.xs[:, :, None] * self.xs[:, None, :]
        single = np.zeros(n, dtype=np.int64)
        single_rows = order[ev[np.repeat(~tied, d)]]
        single[single_rows] = 1
        self.single = None
        if single_rows.size:
            if entry is None:
                self.single = _Design(X, time, single, strata, efron=False)
            else:
                self.single = _CountingDesign(X, entry, time, single, None, strata, efron=False)

    def evaluate(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Exact log partial likelihood, score and observed information at ``beta``."""
        p = self.p
        if self.single is not None:
            loglik, score, info = self.single.evaluate(beta)
            score, info = score.copy(), info.copy()
        else:
            loglik, score, info = 0.0, np.zeros(p), np.zeros((p, p))
        eta_all = self.xs @ beta
        for lo, hi, d, t, events in self.groups:
            rows = slice(lo, hi)
            eta, x, xx = eta_all[rows], self.xs[rows], self.xx[rows]
            if self.entry is not None:
                keep = self.entry[rows] < t
                eta, x, xx = eta[keep], x[keep], xx[keep]
            log_e, mean1, mean2 = _elementary(eta, x, xx, d)
            loglik += float(eta_all[events].sum()) - log_e
            score += self.xs[events].sum(axis=0) - mean1
            info += mean2 - np.outer(mean1, mean1)
        return loglik, score, info


def _elementary(eta: np.ndarray, x: np.ndarray, xx: np.ndarray, d: int):
    """``log e_d(r)``, ``e_d'/e_d`` and ``e_d''/e_d`` for ``r = exp(eta)``, by recursion.

    ``B_k[j]`` (``j = 0..m``) is the degree-``k`` elementary symmetric polynomial
    of ``r_1..r_j``, ``B1``/``B2`` its gradient and Hessian in beta (``x``, ``xx``:
    the rows' covariates and their outer products). Each level is divided by its
    last value, the logs of these scales summing to ``log e_d``.
    """
    m, p = x.shape
    shift = float(eta.max())
    r = np.exp(eta - shift)
    b0 = np.ones(m + 1)
    b1 = np.zeros((m + 1, p))
    b2 = np.zeros((m + 1, p, p))
    log_scale = 0.0
    for _ in range(d):
        prev0, prev1, prev2 = b0[:-1], b1[:-1], b2[:-1]
        t0 = r * prev0
        t1 = r[:, None] * (prev1 + x * prev0[:, None])
        cross = x[:, :, None] * prev1[:, None, :]
        t2 = r[:, None, None] * (prev2 + cross + cross.transpose(0, 2, 1)
                                 + xx * prev0[:, None, None])
        b0 = np.zeros(m + 1)
        np.cumsum(t0, out=b0[1:])
        b1 = np.zeros((m + 1, p))
        np.cumsum(t1, axis=0, out=b1[1:])
        b2 = np.zeros((m + 1, p, p))
        np.cumsum(t2, axis=0, out=b2[1:])
        scale = b0[-1]
        b0 /= scale
        b1 /= scale
        b2 /= scale
        log_scale += math.log(scale)
    return log_scale + d * shift, b1[-1], b2[-1]


def _names(names, p: int) -> list[str]:
    return list(names) if names is not None else [f"column {j}" for j in range(p)]


def _check_information(info: np.ndarray, spread: np.ndarray, names: list[str]) -> None:
    """Raise if the information at beta = 0 is singular (collinear or uninformative columns).

    ``spread`` is each column's overall variance times the number of events:
    a column whose information is a negligible fraction of it varies within
    no risk set (e.g. it is constant within each stratum).
    """
    diag = info.diagonal()
    flat = ~(diag > _SINGULAR * spread)
    if flat.any():
        bad = ", ".join(repr(names[j]) for j in np.flatnonzero(flat))
        raise ConvergenceError(
            f"Cox model: covariate(s) {bad} carry no information (constant within every risk "
            "set, e.g. constant within each stratum); remove them")
    scale = 1.0 / np.sqrt(diag)
    corr = info * np.outer(scale, scale)
    # Gershgorin: every eigenvalue of the correlation form lies within the largest
    # off-diagonal row sum of 1, and the largest is at most p (its trace); when that
    # bound alone clears the threshold with room to spare, no eigenvalue can fail it
    p = corr.shape[0]
    if 1.0 - (np.add.reduce(np.abs(corr), axis=1) - 1.0).max() > 1e-8 * p:
        return
    values, vectors = np.linalg.eigh(corr)
    null = values < _SINGULAR * values.max()
    if null.any():
        involved = np.flatnonzero(np.abs(vectors[:, null]).max(axis=1) > 0.05)
        bad = ", ".join(repr(names[j]) for j in involved)
        raise ConvergenceError(
            f"Cox model: the information matrix is singular: covariates {bad} are collinear "
            "(one is a linear combination of the others, e.g. a full set of category "
            "indicators); drop one of them")


def _solve(info: np.ndarray, rhs: np.ndarray, iteration: int) -> np.ndarray:
    """``info^{-1} rhs`` by LU with partial pivoting (LAPACK ``dgesv``, as ``np.linalg.solve``
    and ``np.linalg.inv``, without their per-call overhead)."""
    _, _, out, status = _dgesv(info, rhs)
    if status != 0 or not np.isfinite(out).all():
        raise ConvergenceError(
            f"Cox model: the information matrix became singular at iteration {iteration}; "
            "a coefficient is probably infinite (separation) or covariates are collinear")
    return out


def _check_finite_estimate(labels, beta, covariance, info, info0, sd, iteration, change) -> None:
    """Catch a coefficient that ran off to infinity although the iterations stopped.

    When one coefficient diverges while others are estimated (e.g. a category with
    a single patient, whose event comes first, coded as the reference), the
    likelihood flattens, its information collapses to rounding noise and the
    steps become tiny: the loop sees "converged" at a huge coefficient with a
    negative or infinite variance. That is a monotone likelihood, not an estimate.
    """
    var = np.diag(covariance)
    collapsed = np.diag(info) < 1e-8 * np.maximum(info0, np.finfo(float).tiny)
    bad = ~np.isfinite(var) | (var <= 0) | (collapsed & (np.abs(beta) * sd > 10.0))
    if bad.any():
        raise ConvergenceError(_diverging_message(labels, beta, bad, iteration, change))


def _diverging_message(names, beta, moving, iteration, change) -> str:
    listed = ", ".join(f"{names[j]!r} (coef {beta[j]:.3g})" for j in np.flatnonzero(moving))
    return (f"Cox model: the coefficient of {listed} diverges to infinity after {iteration} "
            f"iterations while the log partial likelihood only changes by {change:.3g} "
            "(monotone likelihood: e.g. every event has the same value of the covariate, or "
            "all events happen in one category before any in the others). The hazard ratio "
            "cannot be estimated by maximum likelihood; remove the covariate, merge sparse "
            "categories, or use Firth's penalised partial likelihood (R package coxphf)")


def cox_fit(X: np.ndarray, time: np.ndarray, event: np.ndarray, *,
            strata_codes: np.ndarray | None = None, ties: str = "efron", max_iter: int = 50,
            tol: float = 1e-12, names=None, entry: np.ndarray | None = None,
            weights: np.ndarray | None = None, robust: bool = False,
            cluster: np.ndarray | None = None) -> CoxFit:
    """Fit a Cox proportional hazards model to arrays that are already valid.

    Newton-Raphson from ``beta = 0`` with step halving whenever the log
    partial likelihood falls (as R's ``coxfit6``). Converged when the
    relative change in the log partial likelihood is at most ``tol`` *and*
    the next Newton step, in linear-predictor units (``step * sd(x)``), is
    below ``1e-10 * max(1, |beta| * sd(x))`` in every coordinate (or no longer
    shrinks, which is the rounding floor). A step that stays large while the
    likelihood has stopped rising is a coefficient running to infinity.

    Parameters
    ----------
    X : (n, p) float array
        Covariates; finite, no constant column.
    time : (n,) float array
        Follow-up times (>= 0).
    event : (n,) int array
        1 = event, 0 = censored; at least one event.
    strata_codes : (n,) int array, optional
        Stratum of each row; each stratum has its own baseline hazard.
    ties : {"efron", "breslow", "exact"}
        Handling of tied event times; "exact" is the exact (discrete, conditional
        logistic) partial likelihood, not with ``weights``, ``robust`` or ``cluster``.
    max_iter : int
        Most Newton-Raphson iterations (halvings count).
    tol : float
        Relative convergence tolerance on the log partial likelihood.
    names : sequence of str, optional
        Covariate names used in error messages.
    entry : (n,) float array, optional
        Entry times of (entry, time] rows (counting-process data, ``entry < time``):
        a row is at risk at an event time ``t`` when ``entry < t <= time``.
        ``None``: at risk from the start.
    weights : (n,) float array, optional
        Positive case weights; they multiply each row's contribution to the
        log likelihood, score, information and risk-set sums (as R's ``weights``).
    robust : bool
        Return the robust (sandwich) covariance ``D'D`` in ``covariance``, with ``D`` the
        weighted dfbeta residuals summed within clusters (R's ``robust = TRUE``);
        the model-based one is kept in ``naive_covariance``.
    cluster : (n,) int array, optional
        Cluster codes for the robust covariance (implies ``robust``); ``None``: each
        row its own cluster.

    Returns
    -------
    CoxFit

    Raises
    ------
    ConvergenceError
        Singular information (collinear or uninformative covariates), a
        coefficient diverging to infinity (monotone likelihood), or no
        convergence within ``max_iter`` iterations.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        if ties == "exact":
            if weights is not None or robust or cluster is not None:
                raise InputError("cox_fit: ties='exact' takes no weights, robust or cluster "
                                 "(as R's coxph)")
            design = _ExactDesign(X, time, event, strata_codes, entry)
            return _newton(design, X.shape[1], max_iter, tol, names)
        if entry is None and weights is None:
            design = _Design(X, time, event, strata_codes, ties == "efron")
        else:
            design = _CountingDesign(X, entry, time, event, weights, strata_codes,
                                     ties == "efron")
        fit = _newton(design, X.shape[1], max_iter, tol, names)
        if not (robust or cluster is not None):
            return fit
        if not isinstance(design, _CountingDesign):
            design = _CountingDesign(X, None, time, event, None, strata_codes, ties == "efron")
        return _robust(fit, design, cluster)


def _robust(fit: CoxFit, design: _CountingDesign, cluster) -> CoxFit:
    """``fit`` with the robust covariance ``D'D`` (``D``: dfbeta summed within clusters)."""
    resid = design.score_residuals(fit.coef) * design.weights[:, None]
    if cluster is not None:
        _, codes = np.unique(cluster, return_inverse=True)
        summed = np.zeros((codes.max() + 1, resid.shape[1]))
        np.add.at(summed, codes.reshape(-1), resid)
        resid = summed
    dfbeta = resid @ fit.covariance
    robust = dfbeta.T @ dfbeta
    robust = (robust + robust.T) / 2.0
    return replace(fit, covariance=robust, naive_covariance=fit.covariance)


def _newton(design, p, max_iter, tol, names) -> CoxFit:
    """The Newton-Raphson iterations of :func:`cox_fit` (floating-point warnings silenced)."""
    labels = _names(names, p)
    beta = np.zeros(p)
    loglik, score, info = design.evaluate(beta)
    loglik_null = loglik
    info0 = np.diag(info).copy()
    sd = design.sd          # steps are judged on the scale of the linear predictor
    _check_information(info, design.n_events * sd**2, labels)
    step = _solve(info, score, 0)
    score_test = float(score @ step)
    change = np.nan
    previous = np.inf
    size = np.abs(step) * sd / np.maximum(1.0, np.abs(beta) * sd)
    iteration = 0
    converged = False
    while iteration < max_iter:
        iteration += 1
        trial = beta + step
        t_loglik, t_score, t_info = design.evaluate(trial)
        change = t_loglik - loglik
        if not math.isfinite(t_loglik) or change < -tol * abs(loglik):
            step = step / 2.0        # R: newbeta = (newbeta + beta) / 2
            continue
        beta, loglik, score, info = trial, t_loglik, t_score, t_info
        step = _solve(info, score, iteration)
        size = np.abs(step) * sd / np.maximum(1.0, np.abs(beta) * sd)
        if abs(change) <= tol * abs(loglik):
            if size.max() <= _STEP_TOL:
                converged = True
                break
            if size.max() > 0.5 * previous:      # the step no longer shrinks
                moving = size > np.sqrt(tol)
                if moving.any():
                    raise ConvergenceError(_diverging_message(labels, beta, moving, iteration,
                                                              change))
                converged = True                 # rounding floor reached
                break
        previous = size.max()
    if not converged:
        moving = size > np.sqrt(tol)
        runaway = moving & (np.abs(beta) * sd > 5.0)
        if runaway.any():
            raise ConvergenceError(_diverging_message(labels, beta, runaway, iteration, change))
        still = ", ".join(f"{labels[j]!r}" for j in np.flatnonzero(moving)) or "none"
        raise ConvergenceError(
            f"Cox model did not converge in {max_iter} iterations: last change in the log "
            f"partial likelihood {change:.3g} (tolerance {tol:g} relative), coefficients still "
            f"moving: {still}. Check for separation or very sparse categories, rescale "
            "covariates, or allow more iterations")
    covariance = _solve(info, np.eye(p), iteration)
    covariance = (covariance + covariance.T) / 2.0
    _check_finite_estimate(labels, beta, covariance, info, info0, sd, iteration, change)
    return CoxFit(coef=beta, covariance=covariance, information=info, loglik=loglik,
                  loglik_null=loglik_null, score_test=score_test, iterations=iteration,
                  converged=True, n_events=design.n_events)
