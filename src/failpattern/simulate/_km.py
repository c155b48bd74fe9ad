"""Kaplan-Meier medians of many cohorts at once (row-wise), for calibration and checks.

Why not :func:`failpattern.stats.km.kaplan_meier` in a loop: calibration needs the
median of thousands of simulated subgroups; this kernel does them in one sort. It
gives the same median as ``kaplan_meier`` (first event time with S <= 0.5; the
test suite compares the two) except on an exact 0.5 plateau, where R's midpoint rule
is not applied (SPSS, which the paper used, does not apply it either).
"""

from __future__ import annotations

import numpy as np

__all__ = ["km_medians", "km_order"]


def km_order(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Each row's patients by time, events before censorings at a tie (a stable sort): the
    ``order`` several :func:`km_medians` calls on the same rows can share.

    Parameters
    ----------
    time, event : ndarray, shape (R, n)
        Follow-up times; 1 = event.

    Returns
    -------
    ndarray of int, shape (R, n)
    """
    time = np.atleast_2d(np.asarray(time, float))
    event = np.atleast_2d(np.asarray(event)).astype(bool)
    return np.argsort(time + np.where(event, 0.0, 1e-9), axis=1, kind="stable")


def km_medians(time: np.ndarray, event: np.ndarray, mask: np.ndarray | None = None,
               order: np.ndarray | None = None) -> np.ndarray:
    """Kaplan-Meier median of each row.

    Parameters
    ----------
    time : ndarray, shape (R, n)
        Follow-up times.
    event : ndarray, shape (R, n)
        1 = event.
    mask : ndarray, shape (R, n) or (n,), optional
        Which patients belong to the subgroup (all by default).
    order : ndarray of int, shape (R, n), optional
        :func:`km_order` of ``time`` and ``event`` (all patients), to sort once for many
        masks. The result is the same, bit for bit: the subgroup keeps its order within the
        rows' order, and the others only add factors of exactly 1 to the product.

    Returns
    -------
    ndarray, shape (R,)
        NaN where the curve never reaches 0.5.
    """
    time = np.atleast_2d(np.asarray(time, float))
    event = np.atleast_2d(np.asarray(event)).astype(bool)
    mask = np.ones_like(event) if mask is None else np.broadcast_to(np.asarray(mask, bool), time.shape)
    if order is None:
        key = np.where(mask, time + np.where(event, 0.0, 1e-9), np.inf)
        order = np.argsort(key, axis=1, kind="stable")
    t = np.take_along_axis(time, order, 1)
    m = np.take_along_axis(mask, order, 1)
    d = np.take_along_axis(event, order, 1) & m
    at_risk = m.sum(1, keepdims=True) - np.cumsum(m, 1) + m
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(d, 1.0 - 1.0 / np.maximum(at_risk, 1), 1.0)
    surv = np.cumprod(factor, axis=1)
    hit = d & (surv <= 0.5 + 1e-8)
    first = hit.argmax(1)
    found = hit[np.arange(hit.shape[0]), first]
    return np.where(found, t[np.arange(t.shape[0]), first], np.nan)


def logrank_z(time: np.ndarray, event: np.ndarray, group: np.ndarray, mask: np.ndarray | None = None
              ) -> np.ndarray:
    """Signed two-group log-rank z of each row: (O1 - E1) / sqrt(V) for ``group == 1``.

    Tied times are taken one observation at a time (events before censorings), which
    differs from the exact tie handling of :func:`failpattern.stats.logrank.logrank`
    only when several events share a day. Positive z: group 1 has more events than
    expected. NaN when a row has no event or a group is empty.
    """
    time = np.atleast_2d(np.asarray(time, float))
    event = np.atleast_2d(np.asarray(event)).astype(bool)
    group = np.broadcast_to(np.asarray(group).astype(bool), time.shape)
    mask = np.ones_like(event) if mask is None else np.broadcast_to(np.asarray(mask, bool), time.shape)
    key = np.where(mask, time + np.where(event, 0.0, 1e-9), np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    m = np.take_along_axis(mask, order, 1)
    d = np.take_along_axis(event, order, 1) & m
    g = np.take_along_axis(group, order, 1) & m
    n_all = m.sum(1, keepdims=True) - np.cumsum(m, 1) + m
    n_one = g.sum(1, keepdims=True) - np.cumsum(g, 1) + g
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(n_all > 0, n_one / np.maximum(n_all, 1), 0.0)
        o = (d & g).sum(1)
        e = (d * frac).sum(1)
        v = (d * frac * (1 - frac)).sum(1)
        return np.where(v > 0, (o - e) / np.sqrt(v), np.nan)
