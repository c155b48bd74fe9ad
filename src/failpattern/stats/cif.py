"""Cumulative incidence of competing causes (Aalen-Johansen) and Gray's test.

Why our own
-----------
Patterns of first failure (OF / DF / ODF in Ni et al. 2019) are competing
risks, and the paper reports cumulative incidence and Gray's K-sample test as
computed by R ``cmprsk``. lifelines' ``AalenJohansenFitter`` breaks tied times
by jittering them (so tied data give slightly different, seed-dependent
curves) and has no Gray's test or cmprsk variance. This module works on the
distinct observed times with exact ties — at a tied time every event counts
before any censoring, as in R — and needs no random numbers.

Reference
---------
Matches ``cmprsk::cuminc`` (cmprsk 2.2-11) and ``cmprsk::timepoints``:

* :meth:`CumulativeIncidenceResult.at` is ``timepoints(fit, times)$est``:
  a right-continuous step function, 0 before the first event of the cause,
  and ``NaN`` (R's ``NA``) at times after the largest observed time (event or
  censoring) of the group.
* :meth:`CumulativeIncidenceResult.variance_at` is ``timepoints(...)$var``,
  cuminc's delta-method variance (Gray's ``cinc``), which changes only at
  event times of the cause.
* :meth:`CumulativeIncidenceResult.limits_at` has no cmprsk counterpart:
  pointwise limits ``F ** exp(-+ z * sqrt(var) / (F * log F))`` (the
  log(-log) transform of that variance, at ``conf_level``), checked against
  the same formula applied in R to ``timepoints``' ``est`` and ``var``.
* :meth:`CumulativeIncidenceResult.gray_test` is the ``Tests`` row of the cause
  (Gray 1988, with ``rho`` and ``strata`` as in cuminc);
  :meth:`~CumulativeIncidenceResult.gray_tests` gives every row in one pass.

Deliberate differences, all at cuminc's edges: times passed to ``at`` must be
>= 0 (``timepoints`` returns ``NA`` for negative ones; we raise
:class:`~failpattern.errors.InputError`); where cuminc's test variance is
singular and it reports ``stat = -1, pv = 1`` we return ``NaN`` for both; the
p-value is the exact chi-square tail, not ``1 - pchisq`` (identical above
~1e-15); results keep the order of the requested times (``timepoints`` sorts
them); ``strata`` may not have missing values (cuminc drops those rows from the
estimates too).

Checked against ``tests/reference/cif.R`` (pbc overall, by edema, by sex, by
sex stratified by stage; mgus2 by sex; small tied sets) to below 1e-12
relative. The test statistic is in the private kernel
:mod:`failpattern.stats._gray`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import chdtrc, ndtri

from failpattern.errors import InputError
from failpattern.stats._gray import gray_kernel, gray_statistic
from failpattern.stats._result import frozen, sealed
from failpattern.stats._tables import time_table
from failpattern.stats._validate import (as_causes, as_durations, as_groups, check_lengths,
                                         require_events)

__all__ = ["cumulative_incidence", "CumulativeIncidenceResult", "GrayTestResult"]


# --------------------------------------------------------------------------- kernels
def _aalen_johansen(events: np.ndarray, at_risk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CIF and cuminc variance at every distinct time.

    Parameters
    ----------
    events : (m, k, g) events of each cause by distinct time and group.
    at_risk : (m, g) number at risk just before each time.

    Returns
    -------
    cif, variance : (m, k, g) right-continuous values at each distinct time.
        The variance is Gray's (``cinc``) delta-method estimate, recorded at
        event times of the cause and carried forward (0 before the first).
    """
    m, k, g = events.shape
    rs = at_risk.astype(np.float64)
    inv_rs = np.divide(1.0, rs, out=np.zeros(rs.shape), where=rs > 0)[:, None, :]
    d1 = events.astype(np.float64)                         # this cause
    nd = d1.sum(axis=1, keepdims=True)                     # all causes
    d2 = nd - d1                                           # the other causes
    surv = np.cumprod(1.0 - nd * inv_rs, axis=0)           # S(t_j), (m, 1, g)
    prev = np.empty_like(surv)                             # S(t_j-)
    prev[0] = 1.0
    prev[1:] = surv[:-1]
    cif = np.cumsum(prev * d1 * inv_rs, axis=0)
    alive = surv > 0
    inv = np.divide(1.0, surv, out=np.zeros(surv.shape), where=alive)
    base = (prev * inv_rs) ** 2
    # Gray's correction for tied events, 1 - (d - 1) / (n - 1)
    inv_rs1 = np.divide(1.0, rs - 1.0, out=np.zeros(rs.shape), where=rs > 1)[:, None, :]
    w1 = base * d1 * (1.0 - np.maximum(d1 - 1.0, 0.0) * inv_rs1)
    w2 = base * d2 * (1.0 - np.maximum(d2 - 1.0, 0.0) * inv_rs1) * alive
    g4 = cif * inv                                         # other-cause term  F / S
    t4 = 1.0 + g4                                          # own-cause term    1 + F / S
    v1 = np.cumsum(g4 * g4 * w2 + t4 * t4 * w1, axis=0)
    v2 = np.cumsum(inv * (g4 * w2 + t4 * w1), axis=0)
    v3 = np.cumsum(inv * inv * (w2 + w1), axis=0)
    # the value at the last event time of the cause, carried forward (row 0: none yet)
    raw = np.empty((m + 1, k, g))
    raw[0] = 0.0
    np.subtract(v1 + cif * cif * v3, 2.0 * cif * v2, out=raw[1:])
    last = np.where(d1 > 0, np.arange(1, m + 1)[:, None, None], 0)
    np.maximum.accumulate(last, axis=0, out=last)
    cells = k * g
    var = raw.reshape(m + 1, cells)[last.reshape(m, cells), np.arange(cells)].reshape(m, k, g)
    return cif, var


# An estimate this close to 1 is 1: a true incidence below 1 differs from 1 by at
# least about 1 / n**2, and the cumulative sums can miss 1 by a few ulps either way.
_ONE_TOL = 1e-12


def _loglog_limits(cif: np.ndarray, var: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits of ``cif`` on the log(-log) scale.

    Parameters
    ----------
    cif, var : ndarray
        Estimates and their (cuminc) variances, any shape.
    z : float
        Standard normal quantile, ``ndtri(1 - alpha / 2)``.

    Returns
    -------
    lower, upper : ndarray
        ``F ** exp(-+ z * se / (F * log F))``; as ``F * log F < 0`` for
        ``0 < F < 1``, the ``-`` sign gives the lower limit. ``F`` and ``F``
        where the variance is 0 (so 0 and 0 where ``F == 0``); NaN where
        ``F == 1`` (within ``_ONE_TOL``, the rounding of the cumulative sums)
        with a positive variance, where log(-log F) is undefined; NaN stays NaN.
    """
    at_one = cif >= 1.0 - _ONE_TOL
    inner = (cif > 0.0) & ~at_one & (var > 0.0)
    f = np.where(inner, cif, 0.5)                     # placeholder outside: no warnings
    se = np.sqrt(np.where(inner, var, 0.0))
    shift = z * se / (f * np.log(f))                   # < 0 inside
    edge = np.where(at_one & (var > 0.0), np.nan, cif)
    lower = np.where(inner, np.minimum(f ** np.exp(-shift), f), edge)
    upper = np.where(inner, np.maximum(f ** np.exp(shift), f), edge)
    return lower, upper


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class GrayTestResult:
    """Gray's K-sample test of equal cumulative incidence of one cause.

    Attributes
    ----------
    cause : int
        The cause tested.
    rho : float
        Power of the weight ``(1 - F(t-))**rho``.
    statistic : float
        ``s' V^{-1} s``, cuminc's ``stat``; ``NaN`` where cuminc reports -1
        (a singular variance matrix).
    df : int
        Number of groups minus one.
    p_value : float
        Upper chi-square tail, computed directly (cuminc computes
        ``1 - pchisq``, which rounds to 0 below about 1e-16).
    score, variance : ndarray
        Scores of the first ``df`` groups and their covariance (cmprsk ``crstm``).
    """

    cause: int
    rho: float
    statistic: float
    df: int
    p_value: float
    score: np.ndarray = field(repr=False)
    variance: np.ndarray = field(repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        """One row: cause, rho, statistic, df, p_value."""
        return pd.DataFrame({"cause": [self.cause], "rho": [self.rho],
                             "statistic": [self.statistic], "df": [self.df],
                             "p_value": [self.p_value]})

    def to_frame(self) -> pd.DataFrame:
        """Same as :attr:`summary`."""
        return self.summary


@dataclass(frozen=True, eq=False)
class CumulativeIncidenceResult:
    """Aalen-Johansen cumulative incidence by cause and group.

    Attributes
    ----------
    time : (m,) ndarray
        Distinct observed times (events and censorings), increasing.
    cif : (m, k, g) ndarray
        Cumulative incidence of cause ``causes[c]`` in group ``groups[i]`` at
        ``time[j]`` (right-continuous), ``cif[j, c, i]``.
    variance : (m, k, g) ndarray
        cuminc's variance of ``cif``, same layout.
    lower, upper : (m, k, g) ndarray
        Pointwise ``conf_level`` confidence limits of ``cif`` from
        ``variance`` on the log(-log) scale, same layout:
        ``F ** exp(-z * se / (F * log F))`` and ``F ** exp(+z * se / (F * log F))``
        with ``se = sqrt(variance)``, ``z = ndtri(1 - (1 - conf_level) / 2)``;
        since ``F * log F < 0`` for ``0 < F < 1``, ``0 <= lower <= cif <= upper
        <= 1``. Where the variance is 0 both limits equal ``cif`` (a band of
        zero width, not NaN); in particular both are 0 where ``cif == 0``
        (before the first event of the cause, so plotted bands start at 0).
        Where ``cif == 1`` (up to rounding, 1e-12) with a positive variance the
        transform is undefined and both are ``NaN``, as ``survfit``'s log-log
        limits where the survival is 0.
    conf_level : float
        Confidence level of ``lower`` and ``upper``, e.g. 0.95.
    events : (m, k, g) ndarray
        Number of events at each time.
    last_time : (g,) ndarray
        Largest observed time in each group; later times give ``NaN``.
    causes : tuple of int
        Cause codes present in the data, increasing.
    groups : tuple or None
        Group labels (sorted), or ``None`` when no ``group`` was given.
    n : int
        Number of observations.
    """

    time: np.ndarray = field(repr=False)
    cif: np.ndarray = field(repr=False)
    variance: np.ndarray = field(repr=False)
    lower: np.ndarray = field(repr=False)
    upper: np.ndarray = field(repr=False)
    conf_level: float
    events: np.ndarray = field(repr=False)
    last_time: np.ndarray = field(repr=False)
    causes: tuple
    groups: tuple | None
    n: int
    _index: np.ndarray = field(repr=False)
    _cause: np.ndarray = field(repr=False)
    _group: np.ndarray = field(repr=False)
    _strata: np.ndarray | None = field(repr=False)

    # ---------------------------------------------------------------- lookup
    def __repr__(self) -> str:
        groups = "none" if self.groups is None else ", ".join(map(repr, self.groups))
        events = ", ".join(f"{c}: {int(e)}" for c, e in zip(self.causes,
                                                            self.events.sum(axis=(0, 2))))
        return (f"CumulativeIncidenceResult(n={self.n}, events by cause {{{events}}}, "
                f"groups: {groups})")

    def _cause_index(self, cause) -> int:
        if np.ndim(cause) == 0 and not isinstance(cause, (bool, np.bool_, str)):
            for c, code in enumerate(self.causes):
                if cause == code:
                    return c
        raise InputError(f"cause: {cause!r} has no events in the data; available causes: "
                         f"{', '.join(map(str, self.causes))}")

    def _group_index(self, group) -> int:
        if self.groups is None:
            if group is not None:
                raise InputError(f"group: {group!r} given, but the estimate has no groups "
                                 "(cumulative_incidence was called without group)")
            return 0
        listed = ", ".join(map(repr, self.groups))
        if group is None:
            raise InputError(f"group: name one of the groups ({listed})")
        if np.ndim(group) == 0:
            for i, label in enumerate(self.groups):
                if group == label:
                    return i
        raise InputError(f"group: {group!r} is not one of the groups ({listed})")

    def _lookup(self, table: np.ndarray, times, cause, group):
        scalar = np.ndim(times) == 0
        t = as_durations(times, "times")
        c, i = self._cause_index(cause), self._group_index(group)
        pos = np.searchsorted(self.time, t, side="right") - 1
        out = np.where(pos >= 0, table[np.clip(pos, 0, None), c, i], 0.0)
        out[t > self.last_time[i]] = np.nan
        return float(out[0]) if scalar else out

    def at(self, times, cause: int = 1, group=None):
        """Cumulative incidence of ``cause`` in ``group`` at ``times``.

        Parameters
        ----------
        times : float or array_like
            Non-negative times, in any order (results keep that order).
        cause : int
            One of :attr:`causes`.
        group : label, optional
            One of :attr:`groups`; required when the estimate has groups.

        Returns
        -------
        float or ndarray
            The right-continuous estimate, 0 before the first event of the
            cause, ``NaN`` after the group's largest observed time (as
            ``cmprsk::timepoints`` gives ``NA``).
        """
        return self._lookup(self.cif, times, cause, group)

    def variance_at(self, times, cause: int = 1, group=None):
        """cuminc's variance of the cumulative incidence of ``cause`` in ``group`` at ``times``.

        Parameters
        ----------
        times : float or array_like
            Non-negative times, in any order (results keep that order).
        cause : int
            One of :attr:`causes`.
        group : label, optional
            One of :attr:`groups`; required when the estimate has groups.

        Returns
        -------
        float or ndarray
            The variance (``cmprsk::timepoints``' ``var``) at each time: right-continuous,
            ``NaN`` after the group's largest observed time, as :meth:`at`.
        """
        return self._lookup(self.variance, times, cause, group)

    def limits_at(self, times, cause: int = 1, group=None):
        """Pointwise confidence limits of the cumulative incidence at ``times``.

        Parameters
        ----------
        times : float or array_like
            Non-negative times, in any order (results keep that order).
        cause : int
            One of :attr:`causes`.
        group : label, optional
            One of :attr:`groups`; required when the estimate has groups.

        Returns
        -------
        (lower, upper) : tuple of float or of ndarray
            The log(-log) limits at level :attr:`conf_level` (see
            :attr:`lower`): right-continuous, 0 and 0 before the first event
            of the cause, equal to the estimate where its variance is 0,
            ``NaN`` where the estimate is 1 with a positive variance and after
            the group's largest observed time (as :meth:`at`).
        """
        return (self._lookup(self.lower, times, cause, group),
                self._lookup(self.upper, times, cause, group))

    # ---------------------------------------------------------------- test
    def gray_test(self, cause: int = 1, rho: float = 0.0) -> GrayTestResult:
        """Gray's test that the cumulative incidence of ``cause`` is equal across groups.

        Parameters
        ----------
        cause : int
            One of :attr:`causes`.
        rho : float
            Power of the weight ``(1 - F(t-))**rho`` (cuminc's ``rho``; 0 gives
            log-rank-like weights, positive values weight early differences).

        Returns
        -------
        GrayTestResult
            Stratified by the ``strata`` given to :func:`cumulative_incidence`.
        """
        self._check_test(rho)
        return self._gray([self._cause_index(cause)], rho)[0]

    def gray_tests(self, rho: float = 0.0) -> tuple[GrayTestResult, ...]:
        """Gray's test for every cause, in the order of :attr:`causes` (cuminc's ``Tests``).

        One pass over the data for all causes; errors as :meth:`gray_test`.

        Parameters
        ----------
        rho : float
            Power of the weight ``(1 - F(t-))**rho``, as in :meth:`gray_test`.

        Returns
        -------
        tuple of GrayTestResult
            One per cause, in the order of :attr:`causes`.
        """
        self._check_test(rho)
        return self._gray(list(range(len(self.causes))), rho)

    def _check_test(self, rho) -> None:
        if self.groups is None or len(self.groups) < 2:
            found = "no group" if self.groups is None else f"one group ({self.groups[0]!r})"
            raise InputError(f"group: Gray's test compares groups and needs at least 2; "
                             f"the estimate has {found}")
        if (isinstance(rho, bool) or not isinstance(rho, numbers.Real)
                or not np.isfinite(float(rho))):
            raise InputError(f"rho: must be a finite number, got {rho!r}")

    def _gray(self, which: list[int], rho) -> tuple[GrayTestResult, ...]:
        strata = self._strata
        g = len(self.groups)
        n_strata = 1 if strata is None else int(strata.max()) + 1
        scores, variances = gray_kernel(self._index, self._cause, self._group, strata,
                                        self.time.size, len(self.causes), g,
                                        n_strata, float(rho), np.asarray(which) + 1)
        stats = gray_statistic(scores, variances)
        p_values = chdtrc(g - 1, stats)  # NaN stays NaN
        return tuple(GrayTestResult(self.causes[c], float(rho), float(stat), g - 1, float(p),
                                    frozen(score), frozen(var))
                     for c, stat, p, score, var in zip(which, stats, p_values, scores, variances))

    # ---------------------------------------------------------------- tables
    @property
    def table(self) -> pd.DataFrame:
        """Estimate and variance at each time where the curve jumps.

        One row per (group, cause, time) with at least one event of that cause
        in that group; columns ``group`` (``None`` without groups), ``cause``,
        ``time``, ``cif``, ``variance``, ``events``, ``lower``, ``upper``
        (the limits at :attr:`conf_level`).
        """
        g_i, c_i, t_i = np.nonzero(self.events.transpose(2, 1, 0))
        labels = [None] if self.groups is None else list(self.groups)
        return pd.DataFrame({
            "group": pd.Series(np.array(labels, dtype=object)[g_i], dtype=object),
            "cause": np.asarray(self.causes)[c_i],
            "time": self.time[t_i],
            "cif": self.cif[t_i, c_i, g_i],
            "variance": self.variance[t_i, c_i, g_i],
            "events": self.events[t_i, c_i, g_i],
            "lower": self.lower[t_i, c_i, g_i],
            "upper": self.upper[t_i, c_i, g_i],
        })

    @property
    def summary(self) -> pd.DataFrame:
        """Per group and cause: events, final estimate, variance and limits, largest time."""
        k, g = len(self.causes), self.events.shape[2]
        c_i, g_i = np.divmod(np.arange(k * g), g)
        labels = [None] if self.groups is None else list(self.groups)
        return pd.DataFrame({
            "group": pd.Series(np.array(labels, dtype=object)[g_i], dtype=object),
            "cause": np.asarray(self.causes)[c_i],
            "events": self.events.sum(axis=0)[c_i, g_i],
            "cif": self.cif[-1, c_i, g_i],
            "variance": self.variance[-1, c_i, g_i],
            "lower": self.lower[-1, c_i, g_i],
            "upper": self.upper[-1, c_i, g_i],
            "last_time": self.last_time[g_i],
        })

    def to_frame(self) -> pd.DataFrame:
        """The long table of :attr:`table`."""
        return self.table


# --------------------------------------------------------------------------- public
def _compact_causes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cause codes present (with 0 first) and each observation's position among them."""
    top = int(codes.max())
    if top <= 4 * codes.size + 64:  # small codes: count instead of sorting
        seen = np.bincount(codes, minlength=top + 1) > 0
        seen[0] = True
        if seen.all():  # 0..top all present: the codes are their own positions
            return np.arange(top + 1), codes
        present = np.flatnonzero(seen)
        lookup = np.cumsum(seen) - 1
        return present, lookup[codes]
    present, compact = np.unique(np.concatenate([[0], codes]), return_inverse=True)
    return present, compact[1:].astype(np.int64)


def cumulative_incidence(time, cause, *, group=None, strata=None,
                         conf_level: float = 0.95) -> CumulativeIncidenceResult:
    """Aalen-Johansen cumulative incidence of competing causes, as ``cmprsk::cuminc``.

    Parameters
    ----------
    time : array_like
        Follow-up times, finite and >= 0. Ties are kept exactly: at a tied
        time all events count before any censoring.
    cause : array_like of int
        0 = censored, 1..k = cause of failure (codes need not be consecutive;
        the causes are the codes that occur).
    group : array_like, optional
        Group labels; estimates are computed within each group and
        :meth:`~CumulativeIncidenceResult.gray_test` compares them.
    strata : array_like, optional
        Strata for Gray's test only (cuminc's ``strata``); requires ``group``.
        Estimates are never stratified. Missing values are an error (cuminc
        would silently drop those rows from the estimates too).
    conf_level : float
        Level of the pointwise confidence limits ``lower`` and ``upper`` of
        the result (log(-log) transform of cuminc's variance), strictly
        between 0 and 1; default 0.95.

    Returns
    -------
    CumulativeIncidenceResult

    Raises
    ------
    InputError
        Bad times or cause codes, missing group or strata labels, arguments of
        different lengths, no events at all, ``strata`` without ``group``, or
        ``conf_level`` not strictly between 0 and 1.

    Examples
    --------
    >>> r = cumulative_incidence([1, 2, 2, 3], [1, 2, 0, 1])
    >>> r.at([0.5, 1, 2.5], cause=1).tolist()
    [0.0, 0.25, 0.25]
    """
    if (isinstance(conf_level, (bool, np.bool_)) or not isinstance(conf_level, numbers.Real)
            or not 0.0 < float(conf_level) < 1.0):
        raise InputError(f"conf_level: must be a number strictly between 0 and 1, "
                         f"got {conf_level!r}")
    conf_level = float(conf_level)
    t = as_durations(time, "time")
    codes = as_causes(cause, "cause")
    g_codes, levels = (None, None) if group is None else as_groups(group, "group", min_groups=1)
    s_codes = None
    if strata is not None:
        if group is None:
            raise InputError("strata: only used by Gray's test, which compares groups; "
                             "give group as well")
        s_codes, _ = as_groups(strata, "strata", min_groups=1)
    n = check_lengths(time=t, cause=codes, group=g_codes, strata=s_codes)
    require_events(codes, "cumulative incidence", name="cause")

    present, compact = _compact_causes(codes)
    k = present.size - 1
    n_groups = 1 if levels is None else levels.size
    grp = np.zeros(n, dtype=np.int64) if g_codes is None else g_codes
    tt = time_table(t, compact, n_causes=k, group=grp, n_groups=n_groups)
    cif, var = _aalen_johansen(tt.events, tt.at_risk)
    lower, upper = _loglog_limits(cif, var, float(ndtri(1.0 - (1.0 - conf_level) / 2.0)))
    # largest observed time per group: last distinct time with someone at risk
    alive = tt.at_risk > 0
    last = tt.time[tt.time.size - 1 - np.argmax(alive[::-1], axis=0)]
    # every array below was computed here and is held by nothing else: sealed, not copied
    # (the cause codes may be the validator's own array, which nothing else holds either)
    return CumulativeIncidenceResult(
        time=sealed(tt.time), cif=sealed(cif), variance=sealed(var), lower=sealed(lower),
        upper=sealed(upper), conf_level=conf_level, events=sealed(tt.events),
        last_time=sealed(last), causes=tuple(int(c) for c in present[1:]),
        groups=None if levels is None else tuple(levels.tolist()), n=int(n),
        _index=sealed(tt.index), _cause=frozen(compact), _group=frozen(grp),
        _strata=None if s_codes is None else frozen(s_codes))
