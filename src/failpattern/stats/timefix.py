"""R ``survival``'s ``timefix`` rule: times equal up to floating-point rounding are one time.

``1 + 2`` and ``sqrt(2)^2`` do not give exactly ``3`` and ``2`` in binary floating
point, so follow-up times computed by subtraction (``stop - start``, date
differences in fractional years) can differ in the last bits where the data
meant a tie. R's ``Surv`` handling (``survfit``, ``survdiff``, ``coxph``; their
``timefix = TRUE`` default) merges such times with ``aeqSurv``; the validated
:func:`~failpattern.stats.kaplan_meier`, :func:`~failpattern.stats.logrank` and
:func:`~failpattern.stats.cox` apply the same rule, written here once, by
default (``timefix=True``). The fit layer (:mod:`failpattern.stats.fit`) does not.

The rule, as ``survival:::aeqSurv`` (survival 3.5-3): take the distinct finite
times of all time columns together (entry and exit times of (entry, stop] rows),
sorted, ``y``; consecutive values are tied when their difference ``dy`` satisfies
``dy <= tol`` or ``dy / mean(|y|) <= tol``, ``tol = sqrt(machine epsilon)``
(about 1.5e-8). Each chain of tied values becomes its smallest member, and every
time (both ends of an interval) is replaced by the smallest member of its chain.
An interval whose two ends merge although they differed is an error.
"""

from __future__ import annotations

import math

import numpy as np

from failpattern.errors import InputError

__all__ = ["TIMEFIX_TOLERANCE", "fix_times"]

TIMEFIX_TOLERANCE = math.sqrt(np.finfo(np.float64).eps)   # R: sqrt(.Machine$double.eps)


def fix_times(time: np.ndarray, entry: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """Merge times that differ only by rounding, as R's ``aeqSurv``.

    Parameters
    ----------
    time : (n,) float ndarray
        Exit (event or censoring) times, finite.
    entry : (n,) float ndarray, optional
        Entry times of (entry, time] rows, finite; merged together with ``time``.

    Returns
    -------
    time, entry : ndarray
        The inputs themselves when no two distinct values are within the tolerance,
        else new arrays with each near-tied value replaced by the smallest of its group
        (``entry`` stays ``None`` when not given).

    Raises
    ------
    InputError
        An interval ``(entry, time]`` with ``entry < time`` whose ends merge (R:
        "aeqSurv exception, an interval has effective length 0").
    """
    values = time if entry is None else np.concatenate((entry, time))
    y = np.sort(values)
    y = y[np.isfinite(y)]
    if y.size > 1:  # the distinct values (np.unique's result, without its overhead at small n)
        y = y[np.concatenate(([True], y[1:] != y[:-1]))]
    if y.size < 2:
        return time, entry
    dy = y[1:] - y[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        tied = (dy <= TIMEFIX_TOLERANCE) | (dy / (np.add.reduce(np.abs(y)) / y.size) <= TIMEFIX_TOLERANCE)
    if not tied.any():
        return time, entry
    keep = np.empty(y.size, dtype=bool)
    keep[0] = True
    np.logical_not(tied, out=keep[1:])
    cuts = y[keep]
    fixed_time = cuts[np.searchsorted(cuts, time, side="right") - 1]
    if entry is None:
        return fixed_time, None
    fixed_entry = cuts[np.searchsorted(cuts, entry, side="right") - 1]
    bad = (fixed_entry == fixed_time) & (entry != time)
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(f"position {i} = ({entry[i]!r}, {time[i]!r}]" for i in rows[:5])
        more = f" (and {rows.size - 5} more)" if rows.size > 5 else ""
        raise InputError(
            f"timefix: {rows.size} interval(s) (entry, time] have ends that differ only by "
            f"floating-point rounding (relative difference <= {TIMEFIX_TOLERANCE:.3g}), so "
            "they have length 0 once near-equal times are merged, as R's aeqSurv refuses: "
            f"{shown}{more}; drop or fix these rows, or pass timefix=False")
    return fixed_time, fixed_entry
