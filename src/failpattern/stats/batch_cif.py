"""Batched cumulative incidence and Gray's test for replicate studies.

Why this module exists: a replicate study of patterns of first failure simulates
thousands of equal-size cohorts with competing causes and, for each, reads the
cumulative incidence of every cause at a few landmark times (e.g. 12 and 24
months) and runs Gray's test between groups. A Python loop over
:func:`~failpattern.stats.cif.cumulative_incidence` pays its validation,
tabulation and result-building overhead once per cohort; the kernels here take
the cohorts stacked as 2-D arrays with a leading replicate axis ``R`` (as
:mod:`failpattern.stats.batch`) and work on all rows at once (one sort per call,
no Python loop over replicates).

Every row gives the numbers the one-cohort functions give on that row's
patients, to rounding (``tests/test_batch_cif.py`` compares them to 1e-10):
:func:`cif_at_batch` as :meth:`~failpattern.stats.cif.CumulativeIncidenceResult.at`,
:meth:`~failpattern.stats.cif.CumulativeIncidenceResult.variance_at` and
:meth:`~failpattern.stats.cif.CumulativeIncidenceResult.limits_at`;
:func:`gray_test_batch` as
:meth:`~failpattern.stats.cif.CumulativeIncidenceResult.gray_test`'s
``statistic`` and ``p_value``. The formulas are not repeated here: each row's
sorted positions play the part of the distinct times (a tie block keeps its
counts at its last position, zeros elsewhere, which add nothing), and the
one-cohort kernels (``cif._aalen_johansen``, ``cif._loglog_limits`` and the
score and variance of ``_gray``) run on that grid with the replicates on a
spare axis.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.special import chdtrc, ndtri

from failpattern.errors import InputError
from failpattern.stats._gray import _batch as _gray_batch
from failpattern.stats._gray import _recip, _shift, gray_statistic
from failpattern.stats._validate import as_durations
from failpattern.stats.batch import _as_rows, _before_block, _block_total, _sorted_rows
from failpattern.stats.cif import _aalen_johansen, _loglog_limits

__all__ = ["cif_at_batch", "gray_test_batch"]

_CELLS = 2_000_000  # as _gray: largest (replicates x positions x groups x groups) chunk


# ---------------------------------------------------------------- shared helpers

def _cause_rows(cause, t: np.ndarray, m: np.ndarray, original_width: int) -> np.ndarray:
    """``(R, n)`` integer cause codes (0 = censored), checked in the mask."""
    c = np.asarray(cause)
    if c.ndim == 1:
        c = c[None, :]
    if original_width == 0:                     # _as_rows padded an empty cohort
        return np.zeros(t.shape, dtype=np.int64)
    if c.shape != t.shape:
        raise InputError(f"cause: shape {c.shape} differs from time's {t.shape}")
    if c.dtype == bool:
        return c.astype(np.int64)
    inside = c[m]
    if c.dtype.kind not in "iu":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(inside) | (inside != np.round(inside))
        if bad.any():
            raise InputError("cause: codes must be whole numbers: 0 = censored, 1..k = causes")
    if inside.size and inside.min() < 0:
        raise InputError("cause: codes must be >= 0 (0 = censored, 1..k = causes)")
    return np.where(m, c, 0).astype(np.int64)


def _cause_code(value, name: str) -> int:
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)
            or int(value) < 1):
        raise InputError(f"{name}: cause codes must be whole numbers >= 1, got {value!r}")
    return int(value)


def _width(time) -> int:
    shape = np.shape(time)
    return shape[-1] if shape else 1


# ---------------------------------------------------------------- cumulative incidence

def cif_at_batch(time, cause, times, *, mask=None, causes=(1,), conf_level: float = 0.95
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative incidence of each cause at given times, with variance and limits, per replicate.

    Parameters
    ----------
    time : array_like
        ``(R, n)`` follow-up times, finite and >= 0 for the patients in ``mask``
        (others are ignored); a 1-D array is one replicate.
    cause : array_like
        ``(R, n)`` cause codes: 0 = censored, 1..k = cause of failure, as
        :func:`~failpattern.stats.cif.cumulative_incidence`'s ``cause``. Codes
        not in ``causes`` count as competing events.
    times : float or array_like
        Non-negative times at which to read the curves, in any order (results
        keep that order).
    mask : array_like, optional
        ``(R, n)`` or ``(n,)`` booleans: the patients of each row's cohort or
        subgroup (all patients when ``None``).
    causes : sequence of int
        Distinct cause codes (>= 1) to report, in the order of the last axis.
    conf_level : float
        Level of the log(-log) pointwise limits, strictly between 0 and 1.

    Returns
    -------
    estimate : numpy.ndarray
        ``(R, len(times), len(causes))`` Aalen-Johansen cumulative incidence,
        right-continuous, 0 before the first event of the cause, NaN at times
        after the row's largest observed time (event or censoring).
    variance : numpy.ndarray
        Same shape: cuminc's (Gray's) delta-method variance, NaN as ``estimate``.
    lower, upper : numpy.ndarray
        Same shape: the log(-log) limits at ``conf_level`` (see
        :attr:`~failpattern.stats.cif.CumulativeIncidenceResult.lower`).

    Raises
    ------
    InputError
        Shapes that do not match, negative or fractional cause codes in the
        mask, bad ``times``, ``causes`` empty, repeated or not whole numbers
        >= 1, or ``conf_level`` outside (0, 1).

    Notes
    -----
    Row ``r`` equals ``res.at(times, cause=c)``, ``res.variance_at(times,
    cause=c)`` and ``res.limits_at(times, cause=c)`` of ``res =
    cumulative_incidence(time[r][m], cause[r][m], conf_level=conf_level)``
    (``m`` the row's mask), to rounding. Where ``cumulative_incidence``
    raises (an empty subgroup, no event of any cause) the row is NaN. A
    requested cause with no event in a row (where ``res.at`` raises, the code
    not being among ``res.causes``) gives the estimator's value for it: 0, with
    variance 0 and limits 0, up to the row's largest time. Times in the mask are
    not validated (NaN or negative times give wrong results).
    """
    if (isinstance(conf_level, (bool, np.bool_)) or not isinstance(conf_level, numbers.Real)
            or not 0.0 < float(conf_level) < 1.0):
        raise InputError(f"conf_level: must be a number strictly between 0 and 1, "
                         f"got {conf_level!r}")
    wanted = [_cause_code(c, "causes") for c in np.atleast_1d(np.asarray(causes, dtype=object))]
    if not wanted or len(set(wanted)) != len(wanted):
        raise InputError(f"causes: expected distinct cause codes, got {causes!r}")
    at = as_durations(times, "times")
    width = _width(time)
    t, _, m = _as_rows(time, np.zeros(np.shape(time)), mask)
    c = _cause_rows(cause, t, m, width)
    ts, ms, new, start, last, cs = _sorted_rows(t, m, c)
    R = ts.shape[0]
    total = ms.sum(axis=1)
    k = len(wanted)
    # right-continuous lookup: the last position with time <= each requested time
    pos = (ts[:, :, None] <= at[None, None, :]).sum(axis=1) - 1        # (R, T)
    w = max(int(pos.max(initial=0)) + 1, 1)       # later positions are never read: cut
    # events by position: the requested causes, then all other causes (for the all-cause KM)
    events = np.empty((w, k + 1, R))
    is_event = ms & (cs > 0)
    other = is_event.copy()
    for j, code in enumerate(wanted):
        is_j = ms & (cs == code)
        other &= ~is_j
        events[:, j, :] = _block_total(is_j, new, last)[:, :w].T
    events[:, k, :] = _block_total(other, new, last)[:, :w].T
    at_risk = (total[:, None] - start[:, :w]).T   # number with time >= the block's time
    cif, var = _aalen_johansen(events, at_risk)   # (w, k + 1, R)
    rows = np.arange(R)[:, None]
    pick = np.clip(pos, 0, None)
    estimate = np.where((pos >= 0)[..., None], cif[pick, :k, rows], 0.0)   # (R, T, k)
    variance = np.where((pos >= 0)[..., None], var[pick, :k, rows], 0.0)
    lower, upper = _loglog_limits(estimate, variance,
                                  float(ndtri(1.0 - (1.0 - float(conf_level)) / 2.0)))
    last_time = ts[np.arange(R), np.maximum(total - 1, 0)]
    has_events = is_event.any(axis=1)
    missing = (at[None, :] > last_time[:, None]) | ~has_events[:, None]
    out = []
    for a in (estimate, variance, lower, upper):
        a[missing] = np.nan
        out.append(a)
    return tuple(out)


# ---------------------------------------------------------------- Gray's test

def gray_test_batch(time, cause, group, *, mask=None, cause_of_interest: int = 1,
                    rho: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Gray's K-sample test of equal cumulative incidence of one cause, per replicate.

    Parameters
    ----------
    time : array_like
        ``(R, n)`` follow-up times, finite and >= 0 for the patients in ``mask``;
        a 1-D array is one replicate.
    cause : array_like
        ``(R, n)`` cause codes: 0 = censored, 1..k = cause of failure.
    group : array_like
        ``(R, n)`` or ``(n,)`` integer group codes ``0 .. g-1``, the same coding in
        every row (``g`` is the largest code in the mask plus one).
    mask : array_like, optional
        ``(R, n)`` or ``(n,)`` booleans: the patients of each row's test (all
        when ``None``).
    cause_of_interest : int
        The cause tested (a code >= 1); other codes are competing events.
    rho : float
        Power of the weight ``(1 - F(t-))**rho``, as
        :meth:`~failpattern.stats.cif.CumulativeIncidenceResult.gray_test`.

    Returns
    -------
    statistic : numpy.ndarray
        ``(R,)`` Gray's chi-square statistic (cuminc's ``stat``).
    p_value : numpy.ndarray
        ``(R,)`` upper chi-square tail on (groups present in the row - 1) df.

    Raises
    ------
    InputError
        Shapes that do not match, negative group codes, negative or fractional
        cause codes in the mask, a bad ``cause_of_interest`` or a non-finite
        ``rho``.

    Notes
    -----
    Row ``r`` equals ``cumulative_incidence(time[r][m], cause[r][m],
    group=group[r][m]).gray_test(cause_of_interest, rho)``'s ``statistic`` and
    ``p_value`` (``m`` the row's mask), to rounding; a group absent from a row
    is left out of its test, as it is absent from that result's groups. The row
    is NaN (both values) where the one-cohort calls raise: fewer than two
    groups with patients in the row, or no event of ``cause_of_interest``
    (which covers an empty subgroup and a row without events), and where the
    one-cohort statistic is NaN (a singular variance, cuminc's ``-1``).
    """
    cause_of_interest = _cause_code(cause_of_interest, "cause_of_interest")
    if (isinstance(rho, (bool, np.bool_)) or not isinstance(rho, numbers.Real)
            or not np.isfinite(float(rho))):
        raise InputError(f"rho: must be a finite number, got {rho!r}")
    rho = float(rho)
    width = _width(time)
    t, _, m = _as_rows(time, np.zeros(np.shape(time)), mask)
    c = _cause_rows(cause, t, m, width)
    g = np.asarray(group)
    if width == 0:
        g = np.zeros(t.shape, dtype=np.int64)
    if g.shape not in (t.shape, t.shape[1:]):
        raise InputError(f"group: expected shape {t.shape} or {t.shape[1:]}, got {g.shape}")
    g = np.broadcast_to(g.astype(np.int64), t.shape)
    if (g[m] < 0).any():
        raise InputError("group: codes must be 0 .. k-1, got a negative code")
    k = max(int(g[m].max()) + 1 if m.any() else 2, 2)
    ts, ms, new, start, last, cs, gs = _sorted_rows(t, m, c, g)
    R, w = ts.shape
    rs = np.empty((R, w, k))
    d1 = np.empty((R, w, k))
    dall = np.empty((R, w, k))
    is_event = ms & (cs > 0)
    is_cause = ms & (cs == cause_of_interest)
    for j in range(k):                              # per group: at risk and events by position
        in_j = ms & (gs == j)
        total, before = _before_block(in_j.astype(np.int64), new)
        rs[:, :, j] = total[:, -1:] - before
        d1[:, :, j] = _block_total(in_j & is_cause, new, last)
        dall[:, :, j] = _block_total(in_j & is_event, new, last)
    score = np.empty((R, k - 1))
    var = np.empty((R, k - 1, k - 1))
    step = max(1, _CELLS // (w * k * k))
    for lo in range(0, R, step):                    # chunks of replicates bound the memory
        hi = min(R, lo + step)
        score[lo:hi], var[lo:hi] = _gray_rows(rs[lo:hi], d1[lo:hi], dall[lo:hi], k, rho)
    present = rs[:, 0, :] > 0                       # groups with patients in the row
    valid = (present.sum(axis=1) >= 2) & (d1.sum(axis=(1, 2)) > 0)
    # the one-cohort test drops its last group: the largest code present in the row
    top = k - 1 - present[:, ::-1].argmax(axis=1)
    kept = present.copy()
    kept[np.arange(R), top] = False
    kept = kept[:, :k - 1]                          # the dropped group is the only one >= top
    statistic = np.full(R, np.nan)
    p_value = np.full(R, np.nan)
    patterns = (kept * (1 << np.arange(k - 1))).sum(axis=1)
    for pattern in np.unique(patterns[valid]):      # a loop over sets of groups, not replicates
        rows = np.flatnonzero(valid & (patterns == pattern))
        cols = np.flatnonzero(kept[rows[0]])
        sub_var = var[rows][:, cols][:, :, cols]
        stat = gray_statistic(score[rows][:, cols], sub_var)
        statistic[rows] = stat
        p_value[rows] = chdtrc(cols.size, stat)
    return statistic, p_value


def _gray_rows(rs: np.ndarray, d1: np.ndarray, dall: np.ndarray, g: int, rho: float):
    """Gray's scores and covariances of the first ``g - 1`` groups for a chunk of rows.

    ``rs``, ``d1`` and ``dall`` are ``(rows, positions, g)``: at risk, events of the
    cause and of all causes. The shared arrays are those ``_gray.gray_kernel`` builds
    for one stratum, with the replicates on the leading (cause) axis of ``_gray._batch``.
    """
    rs = rs[:, None]                                # (q, S = 1, m, g)
    d1 = d1[:, None]
    dall = dall[:, None]
    live = rs > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_rs = _recip(rs, live)
        skm = np.cumprod(1.0 - dall * inv_rs, axis=-2)
        skmm = np.where(live, _shift(skm, 1.0, trail=1), 1.0)
        h = rs / skmm
        tr = h.sum(axis=-1)
        inv_tr = _recip(tr, tr > 0)
        hr = h[..., :g - 1, None]
        a0 = hr * np.eye(g)[:g - 1] - hr * h[..., None, :] * inv_tr[..., None, None]
        alive = skm > 0
        inv_skm = _recip(skm, alive)
        return _gray_batch(d1, dall - d1, rs, live, inv_rs, skm, skmm, inv_skm, h, tr,
                           inv_tr, a0, alive, _recip(rs - 1.0, rs > 1), (skmm * inv_rs) ** 2,
                           g, rho)
