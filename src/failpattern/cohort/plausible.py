"""Plausibility of a whole cohort: values each allowed, together unlikely.

Why: durations typed in days into ``pfs1_months`` / ``os_months`` are each a
valid number of months, and the analyses then report a median PFS1 of 359
"months" without a word. These checks look at a column (or an endpoint) as a
whole and warn once per rule and column, naming the count and an example row;
they do not block loading (the researcher may know better), unless
``load_cohort(..., strict=True)`` (``--strict``) makes them errors.

Thresholds (documented in ``docs/cohort-format.md``): a duration column with a
median above 120 months or a value above 240 months (20 years); an age outside
15-100 years; a typed duration longer than the span of the dates in the file
(beyond the tolerance of :func:`~failpattern.cohort.dates.tolerance_months`);
more than half of an endpoint's patients censored at time 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from failpattern.cohort.dates import tolerance_months
from failpattern.cohort.problems import RowContext
from failpattern.cohort.schema import DATE_COLUMNS

__all__ = ["check_plausibility", "MEDIAN_MONTHS", "MAX_MONTHS", "AGES"]

#: A duration column whose median exceeds this many months looks like days or weeks.
MEDIAN_MONTHS = 120.0
#: Any duration above this many months (20 years) looks like days or weeks.
MAX_MONTHS = 240.0
#: Plausible ages at diagnosis, years.
AGES = (15.0, 100.0)

_DURATIONS = ("pfs1_months", "pfs2_months", "os_months")
_ENDPOINTS = (("PFS1", "pfs1_months", "pfs1_event"), ("PFS2", "pfs2_months", "pfs2_event"),
              ("OS", "os_months", "os_event"))
_STARTS = ("diagnosis_date", "crizotinib_start_date")
_ENDS = ("last_followup_date", "death_date")


def _num(x: float) -> str:
    """``1,403``, ``359``, ``12.5``: as a clinician would write it."""
    return f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:,.4g}"


def _values(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in frame:
        return None
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _at(ctx: RowContext, i: int) -> str:
    who = f" (patient {ctx.ids[i]})" if ctx.ids[i] else ""
    return f"line {ctx.lines[i]}{who}"


def check_plausibility(frame: pd.DataFrame, ctx: RowContext, derived, days_per_month: float,
                       strict: bool = False) -> None:
    """Add one problem per implausible column or endpoint to ``ctx`` (warnings, or errors if ``strict``).

    Parameters
    ----------
    frame : DataFrame
        The typed cohort (cells that could not be read are empty).
    ctx : RowContext
        Where problems go; names rows by position.
    derived : sequence of str
        Columns the loader computed from the dates (worded as such).
    days_per_month : float
        Month length, to measure the span of the dates.
    strict : bool
        Report errors instead of warnings.
    """
    severity = "error" if strict else "warning"
    derived = set(derived)
    for name in _DURATIONS:
        _duration(frame, ctx, name, name in derived, severity)
    _age(frame, ctx, severity)
    _beyond_dates(frame, ctx, derived, days_per_month, severity)
    for endpoint, time, event in _ENDPOINTS:
        _censored_at_zero(frame, ctx, endpoint, time, event, severity)


def _duration(frame, ctx, name: str, derived: bool, severity: str) -> None:
    x = _values(frame, name)
    if x is None:
        return
    given = ~np.isnan(x)
    if not given.any():
        return
    median = float(np.median(x[given]))
    above = np.flatnonzero(x > MAX_MONTHS)
    if median <= MEDIAN_MONTHS and not len(above):
        return
    i = int(above[0]) if len(above) else int(np.flatnonzero(given)[np.argmax(x[given])])
    parts = [f"median {_num(median)}" + (f" (above {MEDIAN_MONTHS:g} months)" if median > MEDIAN_MONTHS else "")]
    parts.append(f"{len(above):,} value(s) above {MAX_MONTHS:g}")
    if derived:
        advice = (f"computed from the dates, these are over {MAX_MONTHS / 12:g} years: check the years of the "
                  "dates")
    else:
        advice = "these look like days or weeks; durations must be in months (or give dates)"
    ctx.add("implausible_duration", i, name, _num(x[i]),
            f"{name}: {', '.join(parts)}, e.g. {_at(ctx, i)} {_num(x[i])}: {advice}", severity)


def _age(frame, ctx, severity: str) -> None:
    x = _values(frame, "age_years")
    if x is None:
        return
    low, high = AGES
    below, over = x < low, x > high
    bad = np.flatnonzero(below | over)
    if not len(bad):
        return
    i = int(bad[0])
    ctx.add("implausible_age", i, "age_years", _num(x[i]),
            f"age_years: {len(bad):,} value(s) outside {low:g}-{high:g} years ({int(below.sum()):,} below "
            f"{low:g}, {int(over.sum()):,} above {high:g}), e.g. {_at(ctx, i)} {_num(x[i])}: check for typos, "
            "or an age in months or a year of birth", severity)


def _beyond_dates(frame, ctx, derived: set, days_per_month: float, severity: str) -> None:
    """Typed durations longer than the whole span of the dates (when start and end dates are given)."""
    if not any(c in frame for c in _STARTS) or not any(c in frame for c in _ENDS):
        return
    stamps = [frame[c].to_numpy(dtype="datetime64[ns]") for c in DATE_COLUMNS if c in frame]
    every = np.concatenate(stamps)
    every = every[~np.isnat(every)]
    if len(every) < 2:
        return
    first, last = every.min(), every.max()
    span = float((last - first) / np.timedelta64(1, "D")) / days_per_month
    if span <= 0:
        return
    limit = span + float(tolerance_months(span))
    for name in _DURATIONS:
        x = _values(frame, name)
        if x is None or name in derived:
            continue
        over = np.flatnonzero(x > limit)
        if not len(over):
            continue
        i = int(over[np.argmax(x[over])])
        ctx.add("followup_beyond_dates", i, name, _num(x[i]),
                f"{name}: {len(over):,} value(s) longer than the {span:.1f} months the dates in the file span "
                f"({str(first)[:10]} to {str(last)[:10]}), e.g. {_at(ctx, i)} {_num(x[i])}: check the unit "
                "(months) or the dates", severity)


def _censored_at_zero(frame, ctx, endpoint: str, time: str, event: str, severity: str) -> None:
    t, e = _values(frame, time), _values(frame, event)
    if t is None or e is None:
        return
    both = ~np.isnan(t) & ~np.isnan(e)
    n = int(both.sum())
    zero = np.flatnonzero(both & (t == 0) & (e == 0))
    if len(zero) < 2 or 2 * len(zero) <= n:
        return
    i = int(zero[0])
    ctx.add("censored_at_zero", i, time, "0",
            f"{time}: {len(zero):,} of {n:,} patients are censored at time 0 on {endpoint} ({time} 0 with "
            f"{event} 0), e.g. {_at(ctx, i)}: an unknown follow-up written as 0? Leave an unknown time "
            "empty, or give the time of the last follow-up", severity)
