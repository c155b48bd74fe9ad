"""Counting kernels shared by Kaplan-Meier, log-rank and cumulative incidence.

Every estimator here works on the distinct observed times. One sort
(``np.unique``) and a few ``bincount`` calls give, for each distinct time, the
number at risk just before it and the number of events of each kind and of
censorings at it — O(n log n), with ties handled exactly (never jittered).
Inputs are trusted: the public functions validate first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimeTable:
    """Counts at each distinct observed time, optionally split by group.

    Attributes
    ----------
    time : (m,) distinct observed times, increasing.
    index : (n,) position of each observation's time in ``time``.
    events : (m, k, g) number of events of cause ``1..k`` (axis 1) in group ``0..g-1`` (axis 2).
    censored : (m, g) number censored at each time.
    at_risk : (m, g) number still under observation just before each time.
    """

    time: np.ndarray
    index: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    at_risk: np.ndarray

    @property
    def all_events(self) -> np.ndarray:
        """(m, g) events of any cause."""
        return self.events.sum(axis=1)


def time_table(time: np.ndarray, cause: np.ndarray, *, n_causes: int | None = None,
               group: np.ndarray | None = None, n_groups: int = 1) -> TimeTable:
    """Tabulate ``time`` (float) by ``cause`` (0 = censored, 1..k) and ``group`` codes (0..g-1)."""
    # np.unique(time, return_inverse=True), without its overhead
    order = time.argsort()
    ordered = time[order]
    new = np.empty(ordered.size, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    times = ordered[new]
    index = np.empty(time.size, dtype=np.intp)
    rank = new.cumsum()
    rank -= 1
    index[order] = rank
    m = times.size
    k = int(cause.max()) if n_causes is None else n_causes
    k = max(k, 1)
    g = n_groups
    grp = np.zeros(time.size, dtype=np.int64) if group is None else group
    # one bincount over the combined (time, cause, group) cell number
    cell = (index * (k + 1) + cause) * g + grp
    counts = np.bincount(cell, minlength=m * (k + 1) * g).reshape(m, k + 1, g)
    censored = counts[:, 0, :]
    events = counts[:, 1:, :]
    leaving = counts.sum(axis=1)
    # at risk just before t_j = number with time >= t_j = reverse cumulative sum
    at_risk = np.cumsum(leaving[::-1], axis=0)[::-1]
    return TimeTable(times, index, events, censored, at_risk)


def step_lookup(knots: np.ndarray, values: np.ndarray, at: np.ndarray, before: float) -> np.ndarray:
    """Right-continuous step function: ``values[j]`` for ``knots[j] <= t < knots[j+1]``.

    ``before`` is the value left of the first knot.
    """
    pos = np.searchsorted(knots, at, side="right") - 1
    out = np.where(pos >= 0, values[np.clip(pos, 0, None)], before)
    return out
