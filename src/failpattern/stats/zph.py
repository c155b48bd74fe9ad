"""Test of proportional hazards from scaled Schoenfeld residuals, matched to R ``cox.zph``.

Why our own: lifelines' ``proportional_hazard_test`` implements the classic
Grambsch-Therneau (1994) approximation, which ``survival`` 3.x replaced by an
exact score test: the Cox model is extended by ``beta_j * g(t) * x_j`` terms
and the score test of those terms being zero is computed at the fitted
coefficients with the full ``2p x 2p`` information matrix (Efron or Breslow,
as the fit). The numbers the notebooks and reports show must agree with R.

Reference: R 4.2.2, ``survival`` 3.5-3, ``cox.zph(fit, transform, terms = TRUE)``
on ``coxph(..., control = coxph.control(eps = 1e-12))`` fits: per-covariate and
global chi-square, df and p, and the scaled Schoenfeld residuals with their
(transformed) times (``tests/reference/zph.R``; the suite checks them to 1e-10
relative; they agree to about 1e-13).

Scaled residuals are, as in ``cox.zph``, the Schoenfeld residuals (for tied
events under Efron, the covariate minus the average of the Efron risk-set
means) multiplied by the inverse of ``I / d`` (the information at the fit
divided by the number of events, per stratum) and shifted by the coefficient.

The kernel is vectorised over death times (one risk-set mean per death under Efron,
per death time under Breslow): O(n p^2) after one sort, no Python loop over times
(``benchmarks/bench_zph.py``: 1.7x faster than R's ``coxph`` + ``cox.zph`` at n = 93
and n = 20,000).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import chdtrc

from failpattern.errors import InputError
from failpattern.stats._coxfit import cox_fit
from failpattern.stats._result import frozen
from failpattern.stats._validate import check_choice, check_flag, describe_positions
from failpattern.stats.cox import TIES, model_inputs
from failpattern.stats.timefix import fix_times

__all__ = ["proportional_hazards_test", "ProportionalHazardsResult"]

TRANSFORMS = ("km", "rank", "identity", "log")


@dataclass(frozen=True)
class ProportionalHazardsResult:
    """Score tests of proportional hazards and scaled Schoenfeld residuals (R ``cox.zph``).

    Attributes
    ----------
    covariates : tuple of str
        Covariate names, in the order of ``coef``, ``chisq`` and the residual columns.
    coef : ndarray
        Log hazard ratios of the fitted Cox model.
    chisq, df, p_value : ndarray
        One entry per covariate, then the global test (read-only).
    time : ndarray
        Event time of each residual row (one row per event, sorted by stratum and time).
    transformed_time : ndarray
        ``g(time)`` for the chosen ``transform`` (the x axis of the residual plot).
    scaled_residuals : ndarray
        ``(events, covariates)`` scaled Schoenfeld residuals (read-only).
    transform, ties : str
        The time transform and the tie handling of the fit.
    strata : tuple of str
        Stratification columns (empty when unstratified).
    n, n_events : int
        Observations and events used.
    """

    covariates: tuple[str, ...]
    coef: np.ndarray
    chisq: np.ndarray
    df: np.ndarray
    p_value: np.ndarray
    time: np.ndarray
    transformed_time: np.ndarray
    scaled_residuals: np.ndarray
    transform: str
    ties: str
    strata: tuple[str, ...]
    n: int
    n_events: int

    @property
    def summary(self) -> pd.DataFrame:
        """One row per covariate plus ``"GLOBAL"``: chisq, df, p."""
        return pd.DataFrame({"chisq": self.chisq, "df": self.df, "p": self.p_value},
                            index=pd.Index([*self.covariates, "GLOBAL"], name="covariate"))

    @property
    def residuals(self) -> pd.DataFrame:
        """One row per event: time, transformed_time and one scaled residual column per covariate."""
        frame = pd.DataFrame({"time": self.time, "transformed_time": self.transformed_time})
        for j, name in enumerate(self.covariates):
            frame[name] = self.scaled_residuals[:, j]
        return frame

    def to_frame(self) -> pd.DataFrame:
        """The summary as a flat table (``covariate`` a column), ready to write out."""
        return self.summary.reset_index()

    def __repr__(self) -> str:
        return (f"ProportionalHazardsResult(transform={self.transform!r}, ties={self.ties!r}, "
                f"n={self.n}, n_events={self.n_events}, global p={self.p_value[-1]:.4g})")


def _transform(time: np.ndarray, event: np.ndarray, how: str) -> np.ndarray:
    """``g(t)`` for every observation, as ``cox.zph``; "km" is 1 - KM(t-) ignoring strata."""
    if how == "identity":
        return time.copy()
    if how == "log":
        return np.log(time)
    if how == "rank":
        from scipy.stats import rankdata  # imported here: scipy.stats costs ~0.4 s to import

        return rankdata(time, method="average")
    distinct, inverse = np.unique(time, return_inverse=True)
    deaths = np.bincount(inverse, weights=event, minlength=distinct.size)
    leaving = np.bincount(inverse, minlength=distinct.size)
    at_risk = time.size - np.concatenate(([0], np.cumsum(leaving)[:-1]))
    surv = np.cumprod(1.0 - deaths / at_risk)
    before = np.concatenate(([1.0], surv))[inverse]   # KM just before each time
    return 1.0 - before


def _zph(X, time, event, strata, beta, g, efron):
    """Score vector, 2p x 2p information, Schoenfeld residuals and ``used`` counts.

    Trusts its input. Returns ``(u, imat, schoen, event_order, used, event_strata)``,
    ``event_order`` the rows of the events sorted by stratum, then time (stable).
    """
    n, p = X.shape
    x = X - X.mean(axis=0)
    eta = x @ beta
    risk = np.exp(eta - eta.max())            # the scale cancels from every ratio
    order = np.lexsort((time, strata))
    u = np.zeros(2 * p)
    imat = np.zeros((2 * p, 2 * p))
    schoen = []
    rows = []
    levels = np.unique(strata)
    used = np.zeros((levels.size, p), dtype=np.int64)
    for s_i, level in enumerate(levels):
        idx = order[strata[order] == level]
        t, e, xs, r = time[idx], event[idx] == 1, x[idx], risk[idx]
        used[s_i] = np.where((xs != xs[0]).any(axis=0), int(e.sum()), 0)
        if not e.any():
            continue
        w = r[:, None] * np.concatenate([np.ones((idx.size, 1)), xs,
                                         (xs[:, :, None] * xs[:, None, :]).reshape(idx.size, -1)],
                                        axis=1)
        tail = np.cumsum(w[::-1], axis=0)[::-1]          # sums over rows i.. of this stratum
        # the distinct times with a death: first row, deaths d, the dead rows' sums ("tied")
        first = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
        stop = np.r_[first[1:], idx.size]
        n_dead = np.r_[0, np.cumsum(e)]
        d = n_dead[stop] - n_dead[first]
        first, stop, d = first[d > 0], stop[d > 0], d[d > 0]
        dead_sums = np.concatenate([np.zeros((1, w.shape[1])), np.cumsum(w * e[:, None], axis=0)])
        tied = dead_sums[stop] - dead_sums[first]
        others = tail[first] - tied                      # censored at t and everyone later
        dead = np.flatnonzero(e)                         # grouped by time, in time order
        offset = np.r_[0, np.cumsum(d)[:-1]]
        gt = g[idx[dead[offset]]]                        # g(t) of each death time
        if efron:  # one risk-set mean per death: the tied deaths enter with weights j / d
            rep = np.repeat(np.arange(d.size), d)
            frac = (np.arange(dead.size) - offset[rep] + 1) / d[rep]
            z = others[rep] + frac[:, None] * tied[rep]
            weight = np.ones(dead.size)
        else:      # one mean per death time, weighted by its deaths
            rep = np.arange(d.size)
            z = others + tied
            weight = d.astype(float)
        mean = z[:, 1:p + 1] / z[:, :1]
        term = weight[:, None, None] * (z[:, p + 1:].reshape(-1, p, p) / z[:, 0, None, None]
                                        - mean[:, :, None] * mean[:, None, :])
        gr = gt[rep]
        imat[:p, :p] += term.sum(axis=0)
        imat[:p, p:] += np.einsum("k,kij->ij", gr, term)
        imat[p:, p:] += np.einsum("k,kij->ij", gr * gr, term)
        u[:p] -= weight @ mean
        u[p:] -= (gr * weight) @ mean
        xd = xs[dead]
        u[:p] += xd.sum(axis=0)
        u[p:] += np.repeat(gt, d) @ xd
        # Schoenfeld residual: the death's x minus the risk-set mean (Efron: averaged over the
        # fractions of its time)
        avg = np.add.reduceat(mean, offset, axis=0) / d[:, None] if efron else mean
        schoen.append(xd - np.repeat(avg, d, axis=0))
        rows.append(idx[dead])
    imat[p:, :p] = imat[:p, p:].T
    rows = np.concatenate(rows)
    return u, imat, np.concatenate(schoen), rows, used, levels


def proportional_hazards_test(data: pd.DataFrame, *, duration: str, event: str,
                              covariates: Sequence[str] | str, ties: str = "efron",
                              transform: str = "km",
                              strata: Sequence[str] | str | None = None,
                              timefix: bool = True) -> ProportionalHazardsResult:
    """Test proportional hazards of a Cox model, as R ``cox.zph(coxph(...), transform)``.

    Fits ``cox(data, duration=..., event=..., covariates=..., ties=..., strata=...)``
    and, for each covariate and globally, computes the score test of adding
    ``beta * g(t) * x`` terms (survival 3.x's test, not the classic
    Grambsch-Therneau approximation), with the scaled Schoenfeld residuals.

    Parameters
    ----------
    data : DataFrame
        One row per patient; rows with missing model values raise (drop them first).
    duration, event : str
        Columns of follow-up times (>= 0) and event indicators (1 = event, 0 = censored).
    covariates : str or sequence of str
        Numeric, non-constant columns.
    ties : {"efron", "breslow"}
        Tie handling of the Cox fit and of the test.
    transform : {"km", "rank", "identity", "log"}
        Time scale ``g(t)``: 1 - Kaplan-Meier just before t (R's default), the rank
        of t among all follow-up times, t itself, or log t.
    strata : str or sequence of str, optional
        Stratification columns of the Cox model.
    timefix : bool, default True
        Merge follow-up times that differ only by floating-point rounding before
        fitting, as :func:`~failpattern.stats.cox` and R's
        ``coxph(..., control = coxph.control(timefix = TRUE))`` (its default), whose
        merged times ``cox.zph`` then uses: distinct times within a relative
        ``sqrt(machine epsilon)`` become the smallest of them (see
        :mod:`failpattern.stats.timefix`), so ``time`` and the transformed times are
        the merged ones. ``False`` uses the times exactly as given.

    Returns
    -------
    ProportionalHazardsResult

    Raises
    ------
    InputError
        Missing or invalid values, unknown columns or choices, no events; ``timefix``
        not a bool.
    ConvergenceError
        The Cox fit fails.

    Examples
    --------
    >>> zph = proportional_hazards_test(lung, duration="time", event="event",
    ...                                 covariates=["age", "sex"])  # doctest: +SKIP
    >>> zph.summary.loc["GLOBAL", "p"]  # doctest: +SKIP
    """
    ties = check_choice(ties, "ties", TIES)
    transform = check_choice(transform, "transform", TRANSFORMS)
    timefix = check_flag(timefix, "timefix")
    time, status, X, codes, names, strata_list = model_inputs(
        data, duration, event, covariates, strata, "a proportional hazards test")
    if timefix:
        time = fix_times(time)[0]
    if transform == "log" and not (time > 0).all():
        raise InputError(f"duration column {duration!r}: transform='log' needs times > 0; "
                         "zero at " + describe_positions(time <= 0, time))
    fit = cox_fit(X, time, status, strata_codes=codes, ties=ties, names=names)
    return _result(X, time, status, codes, fit.coef, names, ties, transform, tuple(strata_list))


def _result(X, time, status, codes, beta, names, ties, transform, strata):
    p = beta.size
    g = _transform(time, status, transform)
    gt = g - g[status == 1].mean()
    codes = np.zeros(time.size, dtype=np.int64) if codes is None else codes
    u, imat, schoen, rows, used, levels = _zph(X, time, status, codes, beta, gt,
                                               ties == "efron")
    chisq = np.empty(p + 1)
    score = np.concatenate([np.zeros(p), u[p:]])
    for j in range(p):
        keep = [*range(p), p + j]
        v = score[keep]
        chisq[j] = v @ np.linalg.solve(imat[np.ix_(keep, keep)], v)
    chisq[p] = score @ np.linalg.solve(imat, score)
    df = np.append(np.ones(p), p)
    # scale by the inverse of I/d, per stratum over the covariates that vary in it
    wt = np.zeros((p, p))
    for row in used:
        wt += np.minimum.outer(row, row)
    vmean = imat[:p, :p] / np.where(wt == 0, 1.0, wt)
    scaled = np.full(schoen.shape, np.nan)
    event_strata = codes[rows]
    for s_i, level in enumerate(levels):
        k = np.flatnonzero(used[s_i] > 0)
        here = event_strata == level
        if k.size:
            scaled[np.ix_(here, k)] = np.linalg.solve(vmean[np.ix_(k, k)],
                                                      schoen[np.ix_(here, k)].T).T
    scaled += beta
    return ProportionalHazardsResult(
        covariates=tuple(names), coef=frozen(beta), chisq=frozen(chisq), df=frozen(df),
        p_value=frozen(chdtrc(df, chisq)), time=frozen(time[rows]),
        transformed_time=frozen(g[rows]), scaled_residuals=frozen(scaled),
        transform=transform, ties=ties, strata=strata, n=int(time.size),
        n_events=int(rows.size))
