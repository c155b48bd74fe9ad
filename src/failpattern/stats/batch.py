"""Batched kernels for replicate studies: one call for thousands of equal-size cohorts.

Why this module exists: a replicate study simulates thousands of cohorts of the
same size and runs the same few analyses on each (Kaplan-Meier medians, a
log-rank test, a 2 x 2 table). A Python loop over the fit layer
(:mod:`failpattern.stats.fit`) pays tens of microseconds of per-call overhead
per cohort; the kernels here take the cohorts stacked as 2-D arrays with a
leading replicate axis ``R`` and work on all rows at once with numpy (one sort
per call, no Python loop over replicates).

Every row gives the numbers the one-cohort function gives on that row's
patients, to rounding (the test suite, ``tests/test_batch.py``, compares them to
1e-10): :func:`km_median_batch` as
:func:`~failpattern.stats.km.kaplan_meier`'s ``median`` and ``median_ci``,
:func:`logrank_batch` as :func:`~failpattern.stats.logrank.logrank`'s
``statistic`` and ``p_value``, :func:`contingency_batch` as
:func:`~failpattern.stats.contingency.contingency_test`'s ``p_value``. Where the
one-cohort function raises (no patients, fewer than two groups, no events, an
empty row or column of a table) the batch gives NaN for that row instead.

Ties are handled exactly as the one-cohort estimators do: all observations at
one time form one step (events at a time count before censorings at it), never
broken up one observation at a time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import chdtrc, gammaln, ndtri

from failpattern.errors import InputError
from failpattern.stats._validate import check_alpha, check_choice
from failpattern.stats.km import _pointwise  # R's pointwise limits: the one implementation

__all__ = ["km_median_batch", "logrank_batch", "contingency_batch"]

_CONF_TYPES = ("spss", "log-log", "log", "plain")
_METHODS = ("pearson", "yates", "n-1", "fisher")
# the one-cohort constants (km.py, contingency.py), repeated so the kernels agree
_TOL = float(np.sqrt(np.finfo(float).eps))
_SPSS_Z = 1.96
_FISHER_REL_TOL = 1e-7


# ---------------------------------------------------------------- shared helpers

def _as_rows(time, event, mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(R, n)`` float times, bool events and a bool mask, checked for shape only."""
    t = np.asarray(time, dtype=np.float64)
    if t.ndim == 1:
        t = t[None, :]
    if t.ndim != 2:
        raise InputError(f"time: expected a 2-D (replicates, patients) array, got shape {t.shape}")
    e = np.asarray(event)
    if e.ndim == 1:
        e = e[None, :]
    if e.shape != t.shape:
        raise InputError(f"event: shape {e.shape} differs from time's {t.shape}")
    e = e != 0
    if mask is None:
        m = np.ones(t.shape, dtype=bool)
    else:
        mk = np.asarray(mask, dtype=bool)
        if mk.shape not in (t.shape, t.shape[1:]):
            raise InputError(f"mask: expected shape {t.shape} or {t.shape[1:]}, got {mk.shape}")
        m = np.broadcast_to(mk, t.shape)
    if t.shape[1] == 0:  # no patients: one column outside every subgroup keeps shapes simple
        e, m = np.zeros((t.shape[0], 1), dtype=bool), np.zeros((t.shape[0], 1), dtype=bool)
        t = np.zeros((t.shape[0], 1))
    return t, e, m


def _sorted_rows(t: np.ndarray, m: np.ndarray, *others: np.ndarray):
    """Sort each row by time, patients outside ``mask`` last; mark the tie (equal-time) blocks.

    Returns ``(time, mask, new, start, last, *others)``, all sorted and cut to the
    largest subgroup (at least one column): ``new`` is True at the first position
    of a block, ``start`` the index of each position's block start and ``last``
    True only at the last position of a block of patients in the mask. The order inside a block does not matter to any
    kernel here (every count is per block), so the sort need not be stable.
    """
    key = np.where(m, t, np.inf)
    order = np.argsort(key, axis=1)
    width = max(int(m.sum(axis=1).max(initial=0)), 1)  # columns past every row's subgroup: dropped
    if width < order.shape[1]:
        order = order[:, :width]
    ts = np.take_along_axis(key, order, axis=1)
    ms = np.take_along_axis(m, order, axis=1)
    n = ts.shape[1]
    new = np.ones(ts.shape, dtype=bool)
    np.not_equal(ts[:, 1:], ts[:, :-1], out=new[:, 1:])
    last = np.ones(ts.shape, dtype=bool)
    last[:, :-1] = new[:, 1:]
    last &= ms
    start = np.where(new, np.arange(n), 0)
    np.maximum.accumulate(start, axis=1, out=start)
    rest = tuple(np.take_along_axis(x, order, axis=1) for x in others)
    return (ts, ms, new, start, last, *rest)


def _before_block(x: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For non-negative ``x`` (R, n): the running sum along each row and, at each
    position, the sum before its block (the running sum is non-decreasing, so the
    value at the block start carries forward with a running maximum)."""
    c = np.cumsum(x, axis=1)
    before = np.where(new, c - x, 0)
    np.maximum.accumulate(before, axis=1, out=before)
    return c, before


def _block_total(x: np.ndarray, new: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Sum of non-negative ``x`` over each block, at the block's last position (0 elsewhere)."""
    c, before = _before_block(x, new)
    return np.where(last, c - before, 0)


def _first(cond: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first True of each row and whether there is one."""
    idx = cond.argmax(axis=1)
    return idx, cond[np.arange(cond.shape[0]), idx]


def _last(cond: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the last True of each row and whether there is one."""
    n = cond.shape[1]
    idx = n - 1 - cond[:, ::-1].argmax(axis=1)
    return idx, cond[np.arange(cond.shape[0]), idx]


def _pick(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return x[np.arange(x.shape[0]), idx]


# ---------------------------------------------------------------- Kaplan-Meier median

def km_median_batch(time, event, *, mask=None, conf_type: str | tuple = "spss", alpha: float = 0.05
                    ) -> tuple:
    """Kaplan-Meier median survival and its confidence limits of each replicate.

    Parameters
    ----------
    time : array_like
        ``(R, n)`` follow-up times, finite and >= 0 for the patients in ``mask``
        (others are ignored); a 1-D array is one replicate.
    event : array_like
        ``(R, n)`` event indicators, 1 (or True) = event, 0 = censored.
    mask : array_like, optional
        ``(R, n)`` or ``(n,)`` booleans: the patients of each row's subgroup
        (all patients when ``None``).
    conf_type : {"spss", "log-log", "log", "plain"} or tuple of them
        The convention of the median and its limits, as
        :func:`~failpattern.stats.km.kaplan_meier`'s ``conf_type``: "spss" (the
        analysis plan's) is the first event time with S <= 0.5 and median ± z·SE
        with SPSS's density-based SE; the others are R ``survfit``'s, the median
        and limits read off the curve and its pointwise limits (midpoint rule on
        an exact 0.5 plateau). A tuple gives each convention's result from one
        sort and one curve (the plan reports SPSS's and R's medians side by side).
    alpha : float
        1 - confidence level, in (0, 1). For "spss", z is exactly 1.96 at 0.05.

    Returns
    -------
    median : numpy.ndarray
        ``(R,)`` median of each row; NaN where the curve never falls to 0.5 (all
        censored, or too few events) and where the subgroup is empty.
    lower, upper : numpy.ndarray
        ``(R,)`` confidence limits, NaN where
        ``kaplan_meier(...).median_ci`` is NaN (and for an empty subgroup).

    With a tuple ``conf_type``, a tuple of such ``(median, lower, upper)`` triples, one per
    convention, in its order.

    Raises
    ------
    InputError
        Shapes that do not match, an unknown ``conf_type``, ``alpha`` outside (0, 1).

    Notes
    -----
    Row ``r`` equals ``kaplan_meier(time[r][m], event[r][m], conf_type=conf_type,
    alpha=alpha)``'s ``median`` and ``median_ci`` (``m`` the row's mask), to
    rounding; ``kaplan_meier`` raises on an empty subgroup, where the batch gives
    NaN. Times are not validated (NaN or negative times in the mask give wrong
    results).
    """
    many = isinstance(conf_type, tuple)
    for c in conf_type if many else (conf_type,):
        check_choice(c, "conf_type", _CONF_TYPES)
    alpha = check_alpha(alpha)
    t, e, m = _as_rows(time, event, mask)
    ts, ms, new, start, last, es = _sorted_rows(t, m, e)
    es &= ms
    n_risk = ms.sum(axis=1, keepdims=True) - start  # number with time >= this block's time
    d = _block_total(es, new, last)                 # events of the block, at its last position
    # S and Greenwood's var(log S) exactly as km.py: a factor per distinct time (1 elsewhere)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(last, (n_risk - d) / n_risk, 1.0)
        terms = np.where(last, d / (n_risk * (n_risk - d).astype(np.float64)), 0.0)
    surv = np.cumprod(factor, axis=1)
    var_log = np.cumsum(terms, axis=1)
    out = []
    for c in conf_type if many else (conf_type,):
        if c == "spss":
            out.append(_spss_median(ts, surv, var_log, last & (d > 0), alpha))
            continue
        z = float(ndtri(1.0 - alpha / 2.0))
        lower, upper = _pointwise(surv, var_log, z, c)
        out.append(tuple(_r_median(ts, curve, last) for curve in (surv, lower, upper)))
    return tuple(out) if many else out[0]


def _spss_median(ts, surv, var_log, is_event, alpha):
    z = _SPSS_Z if alpha == 0.05 else float(ndtri(1.0 - alpha / 2.0))
    with np.errstate(invalid="ignore"):
        se = surv * np.sqrt(var_log)
    at, found = _first(is_event & (surv <= 0.5 + _TOL))
    median = np.where(found, _pick(ts, at), np.nan)
    u, has_u = _last(is_event & (surv >= 0.55 - _TOL))
    lo, has_l = _first(is_event & (surv <= 0.45 + _TOL))
    with np.errstate(divide="ignore", invalid="ignore"):
        density = (_pick(surv, u) - _pick(surv, lo)) / (_pick(ts, lo) - _pick(ts, u))
        median_se = np.where(found & has_u & has_l, _pick(se, at) / density, np.nan)
    return median, median - z * median_se, median + z * median_se


def _r_median(ts, curve, distinct):
    """R's ``survmean`` rule on each row, over the distinct times (``distinct``)."""
    keep = distinct & ~np.isnan(curve) & (curve < 0.5 + _TOL)
    first, found = _first(keep)
    at = _pick(curve, first)
    plateau = np.abs(at - 0.5) < _TOL
    below, has_below = _first(keep & (curve < at[:, None]))
    t_first = _pick(ts, first)
    mid = (t_first + _pick(ts, below)) / 2.0
    out = np.where(plateau & has_below, mid, t_first)
    return np.where(found, out, np.nan)


# ---------------------------------------------------------------- log-rank

def logrank_batch(time, event, group, *, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Log-rank (Mantel-Cox) test of k groups in each replicate.

    Parameters
    ----------
    time : array_like
        ``(R, n)`` follow-up times, finite and >= 0 for the patients in ``mask``;
        a 1-D array is one replicate.
    event : array_like
        ``(R, n)`` event indicators, 1 (or True) = event, 0 = censored.
    group : array_like
        ``(R, n)`` or ``(n,)`` integer group codes ``0 .. k-1``, the same coding in
        every row (``k`` is the largest code in the mask plus one).
    mask : array_like, optional
        ``(R, n)`` or ``(n,)`` booleans: the patients of each row's test (all
        when ``None``).

    Returns
    -------
    statistic : numpy.ndarray
        ``(R,)`` chi-square statistic, hypergeometric variance with exact ties.
    p_value : numpy.ndarray
        ``(R,)`` upper tail of chi-square on (groups with a positive expected
        count - 1) df; 1 where that is 0 (statistic 0), as R and
        :func:`~failpattern.stats.logrank.logrank`.

    Raises
    ------
    InputError
        Shapes that do not match, or negative group codes.

    Notes
    -----
    Row ``r`` equals ``logrank(time[r][m], event[r][m], group[r][m])``'s
    ``statistic`` and ``p_value`` (``m`` the row's mask), to rounding. Where
    ``logrank`` raises, the row is NaN (both values): fewer than two groups
    with patients in the row, or no event. A group absent from a row is left out
    of its test, as it is absent from ``logrank``'s labels.
    """
    t, e, m = _as_rows(time, event, mask)
    g = np.asarray(group)
    if g.shape[-1:] == (0,) and t.shape[1] == 1:  # no patients (time padded by _as_rows)
        g = np.zeros(t.shape, dtype=np.int64)
    if g.shape not in (t.shape, t.shape[1:]):
        raise InputError(f"group: expected shape {t.shape} or {t.shape[1:]}, got {g.shape}")
    g = np.broadcast_to(g.astype(np.int64), t.shape)
    if (g[m] < 0).any():
        raise InputError("group: codes must be 0 .. k-1, got a negative code")
    k = int(g[m].max()) + 1 if m.any() else 2
    k = max(k, 2)
    ts, ms, new, start, last, es, gs = _sorted_rows(t, m, e, g)
    es &= ms
    n_tot = (ms.sum(axis=1, keepdims=True) - start).astype(np.float64)  # at risk, all groups
    d_tot = _block_total(es, new, last).astype(np.float64)
    used = d_tot > 0                                                    # distinct event times
    R = t.shape[0]
    n_g, observed, expected = (np.zeros((R, k)) for _ in range(3))
    shares = []
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(used & (n_tot > 1), d_tot * (n_tot - d_tot) / (n_tot - 1.0), 0.0)
        for j in range(k):                      # per group: at risk, events, share
            in_j = ms & (gs == j)
            total, before = _before_block(in_j.astype(np.int64), new)
            n_g[:, j] = total[:, -1]
            observed[:, j] = (in_j & es).sum(axis=1)
            share = np.where(used, (n_g[:, j, None] - before) / n_tot, 0.0)
            expected[:, j] = (d_tot * share).sum(axis=1)
            shares.append(share)
    variance = np.empty((R, k, k))
    for j in range(k):                          # hypergeometric variance, as logrank.py
        cs = c * shares[j]
        diag = cs.sum(axis=1)
        for h in range(j, k):
            cross = (cs * shares[h]).sum(axis=1)
            variance[:, j, h] = variance[:, h, j] = (diag - cross) if h == j else -cross
    statistic, df = _quadratic_forms(observed - expected, variance, expected > 0)
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, chdtrc(np.maximum(df, 1), statistic), 1.0)
    valid = ((n_g > 0).sum(axis=1) >= 2) & (observed.sum(axis=1) > 0)
    return np.where(valid, statistic, np.nan), np.where(valid, p, np.nan)


def _quadratic_forms(diff, variance, used):
    """Row-wise R survdiff's generalized inverse: keep groups with E > 0, drop the first
    kept, solve. Left-out groups become identity rows with a zero right-hand side, so
    every row is one (k, k) system of the same shape."""
    R, k = diff.shape
    first, _ = _first(used)
    keep = used.copy()
    keep[np.arange(R), first] = False
    df = used.sum(axis=1) - 1
    both = keep[:, :, None] & keep[:, None, :]
    eye = np.eye(k, dtype=bool)
    sub = np.where(both, variance, np.where(eye, 1.0, 0.0))
    vec = np.where(keep, diff, 0.0)
    if k == 2:  # at most one group kept: a scalar division
        v = np.where(keep[:, 1], sub[:, 1, 1], np.where(keep[:, 0], sub[:, 0, 0], 1.0))
        x = vec.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = np.where(v == 0, 0.0, (x / v) * x)  # v = 0: pinv(0) = 0, as logrank.py
    else:
        try:
            solved = np.linalg.solve(sub, vec[..., None])[..., 0]
        except np.linalg.LinAlgError:  # some rows singular: those by the pseudo-inverse, as logrank.py
            singular = np.linalg.det(sub) == 0
            solved = np.empty_like(vec)
            solved[~singular] = np.linalg.solve(sub[~singular], vec[~singular][..., None])[..., 0]
            solved[singular] = (np.linalg.pinv(sub[singular]) @ vec[singular][..., None])[..., 0]
        stat = (solved * vec).sum(axis=1)
    stat = np.where(df >= 1, stat, 0.0)
    return stat, np.maximum(df, 0)


# ---------------------------------------------------------------- 2 x 2 tables

def contingency_batch(counts, *, method: str) -> np.ndarray:
    """Two-sided p of a test of independence of each of a stack of 2 x 2 tables.

    Parameters
    ----------
    counts : array_like
        ``(R, 2, 2)`` non-negative integer counts; a single ``(2, 2)`` table is one row.
    method : {"pearson", "yates", "n-1", "fisher"}
        As :func:`~failpattern.stats.contingency.contingency_test`'s ``method``:
        Pearson's chi-square (R ``chisq.test(correct = FALSE)``), with Yates'
        correction, Egon Pearson's N - 1 chi-square, or Fisher's exact test (R
        ``fisher.test``: the hypergeometric probabilities <= the observed one
        times ``1 + 1e-7``, summed).

    Returns
    -------
    numpy.ndarray
        ``(R,)`` p-values; NaN for a table with an empty row or column (where
        ``contingency_test`` raises).

    Raises
    ------
    InputError
        A shape other than ``(R, 2, 2)``, or an unknown ``method``.

    Notes
    -----
    Row ``r`` equals ``contingency_test(counts[r], method=method).p_value`` to
    rounding. Counts are not validated beyond the shape (negative or
    fractional counts give wrong results).
    """
    check_choice(method, "method", _METHODS)
    x = np.asarray(counts)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (2, 2):
        raise InputError(f"counts: expected shape (R, 2, 2), got {np.shape(counts)}")
    x = x.astype(np.int64)
    rows, cols = x.sum(axis=2), x.sum(axis=1)
    n = rows.sum(axis=1)
    ok = (rows > 0).all(axis=1) & (cols > 0).all(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "fisher":
            return np.where(ok, _fisher(x, rows, cols), np.nan)
        expected = rows[:, :, None] * cols[:, None, :] / n[:, None, None].astype(np.float64)
        diff = np.abs(x - expected)
        corr = (np.minimum(0.5, diff.min(axis=(1, 2))) if method == "yates"
                else np.zeros(x.shape[0]))
        stat = (((diff - corr[:, None, None]) ** 2) / expected).reshape(-1, 4).sum(axis=1)
        if method == "n-1":
            stat = stat * (n - 1.0) / n
        p = chdtrc(1, stat)
    return np.where(ok, p, np.nan)


@lru_cache(maxsize=16)
def log_factorials(n: int) -> np.ndarray:
    """``gammaln(k + 1)`` for ``k = 0 .. n`` (read-only), to look up instead of recomputing.

    Why: Fisher's tests of a replicate study evaluate ``log k!`` for thousands of tables of the
    same ``n``; a lookup gives the very floats ``gammaln`` gives (the same function on the same
    arguments), at a fraction of the cost.

    Parameters
    ----------
    n : int
        Largest ``k``.

    Returns
    -------
    numpy.ndarray
        ``(n + 1,)`` float64, not writeable (shared between callers).
    """
    out = gammaln(np.arange(n + 1, dtype=np.float64) + 1.0)
    out.flags.writeable = False
    return out


def _fisher(x, rows, cols):
    """Fisher's two-sided p of each table: its hypergeometric support laid out on a
    common grid (positions past a table's support masked)."""
    a, row1 = x[:, 0, 0], rows[:, 0]
    col1, col2 = cols[:, 0], cols[:, 1]
    lo = np.maximum(0, row1 - col2)
    hi = np.minimum(row1, col1)
    width = int((hi - lo).max(initial=0)) + 1
    xs = lo[:, None] + np.arange(width)
    inside = xs <= hi[:, None]
    xs = np.where(inside, xs, lo[:, None])
    lf = log_factorials(int(rows.sum(axis=1).max(initial=0)))   # every index below is in 0 .. n
    logp = -(lf[xs] + lf[col1[:, None] - xs]
             + lf[row1[:, None] - xs] + lf[col2[:, None] - row1[:, None] + xs])
    logp = np.where(inside, logp, -np.inf)
    dens = np.exp(logp - logp.max(axis=1, keepdims=True))
    dens /= dens.sum(axis=1, keepdims=True)
    obs = np.take_along_axis(dens, np.clip(a - lo, 0, width - 1)[:, None], axis=1)
    small = inside & (dens <= obs * (1.0 + _FISHER_REL_TOL))
    return np.minimum(1.0, np.where(small, dens, 0.0).sum(axis=1))
