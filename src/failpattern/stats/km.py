"""Kaplan-Meier survival curves, their pointwise confidence bands and the median.

Why our own and not lifelines' ``KaplanMeierFitter``: a reproduction has to
give the number the paper printed. lifelines has no SPSS median confidence
interval (SPSS's KM procedure prints median ± 1.96·SE with a density-based SE),
does not use R's rule for a curve that is flat at exactly 0.5 (R reports the
midpoint of the flat stretch: 52.5 days for veteran trt = 2, where lifelines
says 52), and it has only the log-log band (which does match R's
``conf.type = "log-log"``), so R's default "log" and "plain" limits, and the
medians read off them, cannot be had from it.

References matched (tests in ``tests/test_km.py``):

* ``conf_type`` ``"log"``, ``"log-log"``, ``"plain"``: R ``survival::survfit``
  (``conf.type`` of the same name) for the curve, Greenwood standard error
  and pointwise limits, and ``summary(fit)$table`` / ``print.survfit`` for the
  median and its confidence limits (fixture ``tests/reference/km.csv``), also
  with delayed entry (``Surv(entry, time, event)``) and case weights.
* ``conf_type="spss"``: IBM SPSS Statistics 31.0.1 KM output
  (``tests/reference/spss31_km/``), and the symmetric intervals of the kind
  Ni et al. 2019 printed, e.g. 11.5 (9.8-13.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from failpattern.stats._result import frozen
from failpattern.stats._tables import step_lookup, time_table
from failpattern.errors import InputError
from failpattern.stats._validate import (_labels, as_durations, as_events, as_numbers, check_alpha,
                                         check_choice, check_flag, check_lengths,
                                         describe_positions, plain_value)
from failpattern.stats.timefix import fix_times

__all__ = ["KaplanMeierResult", "kaplan_meier"]

CONF_TYPES = ("log-log", "log", "plain", "spss")
# R's survmean() tolerance for "the curve is at exactly 0.5"; we use it for every
# comparison of S with a threshold so products such as 2/3 * 3/4 count as 0.5.
_TOL = float(np.sqrt(np.finfo(float).eps))
_SPSS_Z = 1.96  # SPSS prints median ± 1.96·SE for a 95% interval, not ± 1.959964

_COLUMNS = ("time", "at_risk", "events", "censored", "survival", "se", "lower", "upper")


@dataclass(frozen=True)
class KaplanMeierResult:
    """A Kaplan-Meier curve with pointwise limits and the median survival time.

    Attributes
    ----------
    time, at_risk, events, censored : ndarray
        One entry per distinct observed time (event or censoring), increasing:
        the number at risk just before it, events and censorings at it. With
        ``weights`` these are weighted sums (float); with ``entry`` a row counts
        as at risk only at times after its entry.
    survival, se, lower, upper : ndarray
        S(t), its Greenwood standard error ``S * sqrt(sum d / (n (n - d)))``
        and the pointwise confidence limits for ``conf_type``. Where R gives
        ``NA`` the value is NaN: the SE and all limits once S reaches 0, and
        the "log-log" limits where S is 1.
    median : float
        Median survival time; NaN if the curve never falls to 0.5.
    median_ci : tuple of float
        (lower, upper) confidence limits of the median; NaN where not reached
        or, for "spss", not computable.
    median_se : float
        SPSS's standard error of the median ("spss" only; NaN otherwise).
    conf_type : str
    alpha : float
    n : int
        Number of observations (rows, including any of weight 0).
    n_events : int or float
        Number of events; with ``weights``, their weighted sum (float).
    """

    time: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    survival: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    median: float
    median_ci: tuple[float, float]
    median_se: float
    conf_type: str
    alpha: float
    n: int
    n_events: int

    def survival_at(self, times):
        """S at ``times``: a right-continuous step function.

        Parameters
        ----------
        times : float or array_like
            Times, in any order (results keep that order).

        Returns
        -------
        float or ndarray
            1 before the first observed time, the last value beyond the last one,
            NaN for NaN. A scalar in gives a float out, an array an array.
        """
        at = np.asarray(times, dtype=np.float64)
        out = step_lookup(self.time, self.survival, at.reshape(-1), before=1.0)
        out = np.where(np.isnan(at.reshape(-1)), np.nan, out)
        return float(out[0]) if at.ndim == 0 else out.reshape(at.shape)

    @property
    def table(self) -> pd.DataFrame:
        """One row per distinct observed time: time, at_risk, events, censored,
        survival, se, lower, upper (a fresh copy on every access)."""
        return pd.DataFrame({c: np.array(getattr(self, c)) for c in _COLUMNS})

    @property
    def summary(self) -> pd.DataFrame:
        """One row: n, events, median, median_lower, median_upper, median_se, conf_type, level."""
        return pd.DataFrame({"n": [self.n], "events": [self.n_events], "median": [self.median],
                             "median_lower": [self.median_ci[0]],
                             "median_upper": [self.median_ci[1]],
                             "median_se": [self.median_se], "conf_type": [self.conf_type],
                             "level": [1.0 - self.alpha]})

    def to_frame(self) -> pd.DataFrame:
        """The per-time :attr:`table`."""
        return self.table

    def __repr__(self) -> str:
        lo, hi = self.median_ci
        return (f"KaplanMeierResult(n={self.n}, events={self.n_events}, median={self.median:g} "
                f"({lo:g}-{hi:g}), conf_type={self.conf_type!r}, level={1 - self.alpha:g})")


def kaplan_meier(time, event, *, conf_type: str = "log-log", alpha: float = 0.05,
                 entry=None, weights=None, timefix: bool = True) -> KaplanMeierResult:
    """Kaplan-Meier estimate of the survival function.

    Parameters
    ----------
    time : array_like
        Follow-up times, finite and >= 0.
    event : array_like
        1 = event, 0 = censored (booleans accepted).
    conf_type : {"log-log", "log", "plain", "spss"}
        Pointwise limits of S and the median interval. "log-log", "log" and
        "plain" are R ``survfit``'s ``conf.type`` of the same name (R's default is
        "log"; "log-log" is lifelines' band), with the median and its limits read
        off the curve and the limit curves as R's ``print.survfit`` does: the
        first time the curve is <= 0.5, or the midpoint of the flat stretch
        when the curve sits at exactly 0.5. "spss" is SPSS's KM procedure:
        the median is the first event time with S <= 0.5, its SE is the
        Greenwood SE of S there divided by ``(S(u) - S(l)) / (l - u)`` (``u`` the
        last event time with S >= 0.55, ``l`` the first with S <= 0.45), the
        interval median ± z·SE, and the pointwise limits S ± z·se, not
        clipped to [0, 1] (SPSS itself prints only S and se).
    alpha : float
        1 - confidence level. For "spss", z is exactly 1.96 when ``alpha`` is
        0.05 (as SPSS prints) and the normal quantile ``1 - alpha/2`` otherwise.
    entry : array_like, optional
        Entry times for left-truncated (delayed-entry) data, finite, >= 0 and
        strictly less than ``time``: observation ``i`` is at risk on
        ``(entry[i], time[i]]``, as R ``Surv(entry, time, event)`` (R, too,
        requires start < stop). The curve's times are still the distinct
        ``time`` values; entry times add no rows. Not with ``conf_type="spss"``
        (SPSS's KM procedure has no delayed entry).
    weights : array_like, optional
        Case weights, finite and >= 0 (not all 0), as R ``survfit(...,
        weights = w)``: ``at_risk``, ``events``, ``censored`` and ``n_events``
        become weighted sums (floats) and S is the product of
        ``1 - events / at_risk``. The variance follows R's default: if every
        weight is a whole number, Greenwood's formula on the weighted counts
        (integer weights equal replicated rows); if any weight is fractional,
        R switches to the robust infinitesimal-jackknife variance (one cluster
        per row) and so do we; its ``se`` is 0, not NaN, once S reaches 0.
        With "spss" only whole-number weights are accepted (SPSS's WEIGHT BY
        frequency weights, i.e. replicated rows).
    timefix : bool, default True
        Treat times that differ only by floating-point rounding as tied, as R's
        ``survfit(..., timefix = TRUE)`` (its default, ``aeqSurv``): distinct values of
        ``time`` (and ``entry``) closer than ``sqrt(machine eps)``, absolutely or
        relative to the mean absolute time, become the smallest of them, so e.g.
        ``2`` and ``sqrt(2)**2`` are one time (see :mod:`failpattern.stats.timefix`).
        ``False`` keeps every distinct floating-point value apart.

    Returns
    -------
    KaplanMeierResult

    Raises
    ------
    InputError
        Times negative, missing or infinite; events not 0/1; lengths differ;
        empty input; unknown ``conf_type``; ``alpha`` outside (0, 1); an entry
        time not below its ``time``; weights negative, missing, infinite or
        all 0; ``entry`` or fractional ``weights`` with ``conf_type="spss"``; with
        ``timefix``, an interval whose ends merge; ``timefix`` not a bool.

    Notes
    -----
    All observations censored is not an error: S is 1 everywhere and the
    median and its limits are NaN. Comparisons of S with 0.5, 0.55 and 0.45
    allow R's tolerance ``sqrt(machine eps)``. For "spss" the SE and interval
    of the median are NaN when no event time has S >= 0.55 (the first event
    already takes S below it) or none has S <= 0.45; where SPSS itself puts
    ``u`` or ``l`` then is not documented, so we do not guess.
    """
    t = as_durations(time, "time")
    e = as_events(event, "event")
    check_choice(conf_type, "conf_type", CONF_TYPES)
    alpha = check_alpha(alpha)
    timefix = check_flag(timefix, "timefix")
    if entry is None and weights is None:
        check_lengths(time=t, event=e)
        if timefix:
            t = fix_times(t)[0]
        return _kaplan_meier(t, e, conf_type, alpha)
    start = None if entry is None else as_durations(entry, "entry")
    w = None if weights is None else _as_weights(weights)
    check_lengths(time=t, event=e, entry=start, weights=w)
    if start is not None:
        bad = start >= t
        if bad.any():
            raise InputError(
                "entry: must be strictly less than time (a row is at risk on (entry, time]); "
                f"{int(bad.sum())} row(s) are not: "
                + _describe_entry(bad, start, t, _labels(entry)))
    if conf_type == "spss":
        if start is not None:
            raise InputError('conf_type: "spss" has no delayed entry (SPSS\'s KM procedure does '
                             'not support it); use "log", "log-log" or "plain" with entry')
        if w is not None and _fractional(w):
            raise InputError('weights: "spss" takes whole-number (frequency) weights only; '
                             'use "log", "log-log" or "plain" for fractional weights')
    if timefix:
        t, start = fix_times(t, start)
    return _km_result(_km_curve(t, e, start, w), conf_type, alpha)


def _describe_entry(bad: np.ndarray, start: np.ndarray, t: np.ndarray, labels) -> str:
    where = np.flatnonzero(bad)
    parts = []
    for i in where[:5]:
        place = f"index {plain_value(labels[i])!r}" if labels is not None else f"position {i}"
        parts.append(f"{place}: entry {plain_value(start[i])!r} >= time {plain_value(t[i])!r}")
    more = f" (and {where.size - 5} more)" if where.size > 5 else ""
    return ", ".join(parts) + more


def _as_weights(values) -> np.ndarray:
    """Case weights: finite and >= 0, not all 0, as ``float64``."""
    w = as_numbers(values, "weights")
    labels = _labels(values)
    for mask, rule in ((np.isnan(w), "missing (NaN)"), (np.isinf(w), "infinite"),
                       (w < 0, "negative; weights must be >= 0")):
        if mask.any():
            raise InputError(f"weights: {int(mask.sum())} value(s) are {rule}: "
                             + describe_positions(mask, w, labels))
    if not (w > 0).any():
        raise InputError("weights: all weights are 0; at least one must be positive")
    return w


def _fractional(w: np.ndarray) -> bool:
    """R's test for a robust variance: any weight that is not a whole number."""
    return bool((w != np.floor(w)).any())


def _kaplan_meier(t: np.ndarray, e: np.ndarray, conf_type: str, alpha: float) -> KaplanMeierResult:
    return _km_result(_km_curve(t, e), conf_type, alpha)


def _km_curve(t: np.ndarray, e: np.ndarray, entry: np.ndarray | None = None,
              weights: np.ndarray | None = None) -> tuple:
    """The curve without limits, shared by every ``conf_type`` (the plan reports two):
    ``(time, at_risk, events, censored, survival, var_log, se, n, n_events)``.

    ``entry`` (delayed entry, trusted < ``t``) and ``weights`` (trusted >= 0) are optional;
    without both the arithmetic is exactly that of plain right-censored data."""
    if entry is not None or weights is not None:
        return _km_curve_general(t, e, entry, weights)
    table = time_table(t, e, n_causes=1)
    n_risk = table.at_risk[:, 0]
    d = table.events[:, 0, 0]
    surv, var_log = _curve(n_risk, d)
    with np.errstate(invalid="ignore"):
        se = surv * np.sqrt(var_log)  # 0 * inf = NaN once S reaches 0, as R
    # read-only copies made once, shared by the results of every conf_type
    return (frozen(table.time), frozen(n_risk), frozen(d), frozen(table.censored[:, 0]), frozen(surv),
            var_log, frozen(se), int(t.size), int(e.sum()))


def _km_curve_general(t: np.ndarray, e: np.ndarray, entry: np.ndarray | None,
                      weights: np.ndarray | None) -> tuple:
    """:func:`_km_curve` for counting-process data ``(entry, t]`` and/or case weights."""
    order = t.argsort(kind="stable")
    ordered = t[order]
    new = np.empty(ordered.size, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    times = ordered[new]
    index = np.empty(t.size, dtype=np.intp)
    index[order] = new.cumsum() - 1
    m = times.size
    w = weights
    if w is None:  # whole counts, as time_table gives
        d = np.bincount(index[e == 1], minlength=m).astype(np.int64)
        leaving = np.bincount(index, minlength=m).astype(np.int64)
    else:
        d = np.bincount(index, weights=w * e, minlength=m)
        leaving = np.bincount(index, weights=w, minlength=m)
    censored = leaving - d
    n_risk = np.cumsum(leaving[::-1])[::-1]  # time >= t_j
    if entry is None:
        first = np.zeros(t.size, dtype=np.intp)
    else:
        # first curve time after entry; rows with entry >= t_j are not yet at risk at t_j
        first = np.searchsorted(times, entry, side="right")
        starting = np.bincount(first, weights=w, minlength=m + 1)
        if w is None:
            starting = starting.astype(np.int64)
        n_risk = n_risk - np.cumsum(starting[::-1])[::-1][1:]  # minus rows with entry >= t_j
    if w is None or not _fractional(w):
        if w is None:
            surv, var_log = _curve(n_risk, d)
        else:
            surv, var_log = _weighted_curve(n_risk, d)
        with np.errstate(invalid="ignore"):
            se = surv * np.sqrt(var_log)  # 0 * inf = NaN once S reaches 0, as R
    else:
        surv, _ = _weighted_curve(n_risk, d)
        se = _ij_se(surv, n_risk, d, index, first, e, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            var_log = np.where(se == 0, 0.0, (se / surv) ** 2)  # R: logse = FALSE, se / S
    n_events = int(e.sum()) if w is None else float(np.sum(w * e))
    return (frozen(times), frozen(n_risk), frozen(d), frozen(censored), frozen(surv), var_log,
            frozen(se), int(t.size), n_events)


def _weighted_curve(n_risk: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_curve` where a time may have no weight at risk (factor 1, no variance term)."""
    has = d > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(has, (n_risk - d) / n_risk, 1.0)
        terms = np.where(has, d / (n_risk * (n_risk - d)), 0.0)
    return np.cumprod(factor), np.cumsum(terms)


def _ij_se(surv, n_risk, d, index, first, e, w) -> np.ndarray:
    """R's robust (infinitesimal jackknife) SE of S, one cluster per row.

    Row ``i`` (weight ``w_i``, at risk at curve times ``first_i .. index_i``) moves S(t_k)
    by ``dS_k/dw_i = -S_k A_ik`` with
    ``A_ik = sum_{j <= k} (dN_ij n_j - d_j Y_ij) / (n_j (n_j - d_j))``;
    the variance is ``sum_i (w_i dS_k/dw_i)^2``. With ``h_j = d_j / (n_j (n_j - d_j))``,
    ``H`` its cumulative sum and ``G_i = H`` just before ``first_i``, ``A_ik`` is 0 before
    ``first_i``, ``-(H_k - G_i)`` while at risk and the constant
    ``F_i = e_i / (n - d)`` at its time ``- (H_{index_i} - G_i)`` after it, so the sums
    over rows are cumulative sums over time: O(n log n). Once S is 0 the SE is 0, as R."""
    m = surv.size
    has = d > 0
    dead = has & (n_risk <= d)  # S drops to 0 here
    stop = int(np.flatnonzero(dead)[0]) if dead.any() else m
    live = has.copy()
    live[stop:] = False
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(live, d / (n_risk * (n_risk - d)), 0.0)
        c = np.where(live, 1.0 / (n_risk - d), 0.0)
    H = np.cumsum(h)
    H0 = np.concatenate(([0.0], H))  # H0[j] = H just before curve time j
    G = H0[first]
    F = e * c[index] - (H[index] - G)
    w2 = w * w
    done = np.cumsum(np.bincount(index, weights=w2 * F * F, minlength=m))

    def active(values):  # sum over rows with first_i <= k < index_i
        started = np.cumsum(np.bincount(first, weights=values, minlength=m + 1)[:m])
        return started - np.cumsum(np.bincount(index, weights=values, minlength=m))

    p0, p1, p2 = active(w2), active(w2 * G), active(w2 * G * G)
    var = done + H * H * p0 - 2.0 * H * p1 + p2
    se = surv * np.sqrt(np.maximum(var, 0.0))
    se[stop:] = 0.0
    return se


def _km_result(curve: tuple, conf_type: str, alpha: float) -> KaplanMeierResult:
    """Limits and median of a :func:`_km_curve` for ``conf_type``."""
    time, n_risk, d, censored, surv, var_log, se, n, n_events = curve
    if conf_type == "spss":
        z = _SPSS_Z if alpha == 0.05 else float(ndtri(1.0 - alpha / 2.0))
        lower, upper = surv - z * se, surv + z * se
        median, median_se = _spss_median(time, surv, se, d > 0)
        median_ci = (median - z * median_se, median + z * median_se)
    else:
        z = float(ndtri(1.0 - alpha / 2.0))
        lower, upper = _pointwise(surv, var_log, z, conf_type)
        median, median_se = _r_median(time, surv), np.nan
        median_ci = (_r_median(time, lower), _r_median(time, upper))
    return KaplanMeierResult(
        time=time, at_risk=n_risk, events=d, censored=censored, survival=surv, se=se,
        lower=frozen(lower), upper=frozen(upper), median=float(median),
        median_ci=(float(median_ci[0]), float(median_ci[1])), median_se=float(median_se),
        conf_type=conf_type, alpha=alpha, n=n, n_events=n_events)


def _curve(n_risk: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S(t) and the Greenwood variance of log S(t) (inf once everyone at risk has died)."""
    surv = np.cumprod((n_risk - d) / n_risk)
    with np.errstate(divide="ignore"):
        terms = d / (n_risk * (n_risk - d).astype(np.float64))
    return surv, np.cumsum(terms)


def _pointwise(surv: np.ndarray, var_log: np.ndarray, z: float, conf_type: str):
    """R's ``survfit_confint`` (logse = TRUE, usual lower limit) for one conf.type."""
    sd = np.sqrt(var_log)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            half = z * sd * surv
            return np.maximum(surv - half, 0.0), np.minimum(surv + half, 1.0)
        if conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            return np.exp(np.log(xx) - z * sd), np.minimum(np.exp(np.log(xx) + z * sd), 1.0)
        xx = np.where((surv == 0) | (surv == 1), np.nan, surv)  # log-log
        loglog = np.log(-np.log(xx))
        half = z * sd / np.log(xx)
        return np.exp(-np.exp(loglog - half)), np.exp(-np.exp(loglog + half))


def _r_median(time: np.ndarray, curve: np.ndarray) -> float:
    """R's ``survmean`` rule: first time the curve is <= 0.5; if it sits at 0.5
    there, the midpoint between that time and the first time it drops below."""
    keep = (~np.isnan(curve) & (curve < 0.5 + _TOL)).nonzero()[0]
    if keep.size == 0:
        return np.nan
    first = keep[0]
    if abs(curve[first] - 0.5) < _TOL:
        below = keep[curve[keep] < curve[first]]
        if below.size:
            return (time[first] + time[below[0]]) / 2.0
    return float(time[first])


def _spss_median(time: np.ndarray, surv: np.ndarray, se: np.ndarray,
                 is_event: np.ndarray) -> tuple[float, float]:
    """SPSS KM median and its SE; event times only (censored rows are skipped)."""
    ev_t, ev_s, ev_se = time[is_event], surv[is_event], se[is_event]
    at_med = (ev_s <= 0.5 + _TOL).nonzero()[0]  # 1-D: np.flatnonzero, cheaper
    if at_med.size == 0:
        return np.nan, np.nan
    median = float(ev_t[at_med[0]])
    upper = (ev_s >= 0.55 - _TOL).nonzero()[0]
    lower = (ev_s <= 0.45 + _TOL).nonzero()[0]
    if upper.size == 0 or lower.size == 0:
        return median, np.nan
    u, l = upper[-1], lower[0]
    density = (ev_s[u] - ev_s[l]) / (ev_t[l] - ev_t[u])
    return median, float(ev_se[at_med[0]] / density)
