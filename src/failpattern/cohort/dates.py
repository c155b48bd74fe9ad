"""Dates: parsing, their order, and the durations and events they imply.

Why: many registries export dates, not months. Ni et al. 2019 define
PFS1 = crizotinib start to first progression or death, PFS2 = first
progression to second progression or death, OS = diagnosis to death;
patients without the event are censored at the last follow-up. Deriving the
durations here, with one documented month length, keeps every analysis on the
same clock, and cross-checking them against months the researcher also typed
in catches transcription errors.

Months are days / ``days_per_month``; the default 30.4375 = 365.25 / 12 is
the mean Gregorian month (the convention of R ``lubridate`` and of SPSS's
``DATEDIFF`` divided by the mean month length).
"""

from __future__ import annotations

import datetime as _dt
import re

import numpy as np
import pandas as pd


__all__ = ["DAYS_PER_MONTH", "tolerance_months", "parse_date", "date_form", "check_order", "derive_endpoints",
           "derive_timings", "last_contact"]

#: Mean Gregorian month in days (365.25 / 12).
DAYS_PER_MONTH = 365.25 / 12

# ASCII digits only: without re.ASCII, \d also matches full-width and other scripts' digits,
# which int() then reads: "２０１５-０１-０２" would be taken silently
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$", re.ASCII)
# Dates are stored as datetime64[ns]; pandas 2 builds Timestamps outside that range
# (e.g. 2300-01-01) that wrap silently when stored, so they are refused here.
FIRST_DAY, LAST_DAY = pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11")
_OUT_OF_RANGE = "is outside the dates failpattern can handle (1677-09-22 to 2262-04-11)"


def tolerance_months(months):
    """How far a typed duration may differ from the one computed from dates.

    ``max(0.5, 0.02 * months)``: half a month covers rounding to whole months,
    and 2 % covers a different month length (30 or 31 days instead of 30.4375).
    """
    return np.maximum(0.5, 0.02 * np.abs(months))


def parse_date(value) -> tuple[pd.Timestamp | None, str | None]:
    """A date cell as a ``Timestamp``, or ``(None, reason)`` when it is not a date.

    Native dates (Excel, Parquet, DataFrames) are taken as they are; text must
    be ISO ``YYYY-MM-DD`` (a time part is ignored), because ``03/04/2015`` means
    two different days in Europe and the US.
    """
    if isinstance(value, (pd.Timestamp, _dt.datetime, _dt.date, np.datetime64)):
        try:
            ts = pd.Timestamp(value)
        except (ValueError, OverflowError):
            return None, _OUT_OF_RANGE
        if pd.isna(ts):
            return None, "must be a date"
        return _in_range((ts.tz_localize(None) if ts.tzinfo is not None else ts).normalize())
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return None, ("must be a date, not a number: in Excel format the column as Date, "
                      "in CSV write YYYY-MM-DD")
    text = str(value).strip()
    m = _ISO.match(text)
    if m:
        try:
            ts = pd.Timestamp(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None, "is not a real calendar date (YYYY-MM-DD)"
        return _in_range(ts)
    form = date_form(text)
    if form is not None:
        name, iso = form
        if iso is not None:
            return None, f"is written {name}; write dates as YYYY-MM-DD (here {iso})"
        if " or " in name:
            why = "no part is above 12, so the day/month order cannot be told"
        elif not name.endswith("YYYY") and not name.startswith("YYYY"):
            why = "a two-digit year"
        else:
            return None, f"is written {name} but is not a real calendar date; write dates as YYYY-MM-DD"
        return None, f"is written {name} ({why}); write dates as YYYY-MM-DD"
    return None, "must be a date written as YYYY-MM-DD"


_DAY_FIRST = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})$", re.ASCII)
_YEAR_FIRST = re.compile(r"^(\d{4})([./])(\d{1,2})\2(\d{1,2})$", re.ASCII)


def _iso_text(y: int, m: int, d: int) -> str | None:
    try:
        return _dt.date(y, m, d).isoformat()
    except ValueError:
        return None


def date_form(text: str, day_first: bool | None = None) -> tuple[str, str | None] | None:
    """The layout of a date written in another format, and the same date as ``YYYY-MM-DD`` when certain.

    ``("DD/MM/YYYY", "2014-10-26")`` for ``26/10/2014``, ``("YYYY/MM/DD", "2014-10-26")`` for
    ``2014/10/26``, ``("DD/MM/YYYY or MM/DD/YYYY", None)`` for ``03/04/2015``; ``None`` when the
    text is no such date. ``day_first`` settles the order for a column known to be written one way.
    A two-digit year is never converted (which century?).
    """
    text = str(text).strip()
    m = _YEAR_FIRST.match(text)
    if m:
        sep = m[2]
        return f"YYYY{sep}MM{sep}DD", _iso_text(int(m[1]), int(m[3]), int(m[4]))
    m = _DAY_FIRST.match(text)
    if not m:
        return None
    a, sep, b, year = int(m[1]), m[2], int(m[3]), m[4]
    yy = "YYYY" if len(year) == 4 else "YY"
    if day_first is None:
        day_first = True if a > 12 else False if b > 12 else None
    if day_first is None:
        return f"DD{sep}MM{sep}{yy} or MM{sep}DD{sep}{yy}", None
    name = f"DD{sep}MM{sep}{yy}" if day_first else f"MM{sep}DD{sep}{yy}"
    day, month = (a, b) if day_first else (b, a)
    return name, (_iso_text(int(year), month, day) if len(year) == 4 else None)


def _in_range(ts: pd.Timestamp) -> tuple[pd.Timestamp | None, str | None]:
    if not FIRST_DAY <= ts <= LAST_DAY:
        return None, _OUT_OF_RANGE
    return ts, None


# (earlier, later, rule, what it means). Equal dates are allowed.
_ORDER = (
    ("diagnosis_date", "crizotinib_start_date", "dates_out_of_order", "crizotinib cannot start before diagnosis"),
    ("crizotinib_start_date", "first_progression_date", "dates_out_of_order",
     "first progression must be on or after crizotinib start"),
    ("first_progression_date", "second_progression_date", "dates_out_of_order",
     "second progression must be on or after the first"),
    ("crizotinib_start_date", "death_date", "dates_out_of_order", "death must be on or after crizotinib start"),
    ("diagnosis_date", "death_date", "dates_out_of_order", "death must be on or after diagnosis"),
    ("first_progression_date", "death_date", "progression_after_death", "first progression is dated after death"),
    ("second_progression_date", "death_date", "progression_after_death", "second progression is dated after death"),
    ("crizotinib_start_date", "last_followup_date", "dates_out_of_order",
     "last follow-up must be on or after crizotinib start"),
    ("first_progression_date", "last_followup_date", "dates_out_of_order",
     "first progression is dated after the last follow-up"),
    ("second_progression_date", "last_followup_date", "dates_out_of_order",
     "second progression is dated after the last follow-up"),
    ("last_followup_date", "death_date", "dates_out_of_order", "last follow-up (alive) is dated after death"),
)


def check_order(dates: pd.DataFrame, ctx) -> pd.Series:
    """Report dates in an impossible order; return a mask of the rows with such dates.

    Parameters
    ----------
    dates : DataFrame
        The date columns present (``datetime64``; missing = ``NaT``).
    ctx : RowContext
        Gives ``log``, ``lines`` and ``ids`` to name the rows.
    """
    bad_rows = pd.Series(False, index=dates.index)
    for early, late, rule, why in _ORDER:
        if early not in dates or late not in dates:
            continue
        bad = (dates[early] > dates[late]).fillna(False)
        for i in np.flatnonzero(bad.to_numpy()):
            e, l_ = dates[early].iat[i].date(), dates[late].iat[i].date()
            ctx.add(rule, i, f"{late}+{early}", f"{l_} < {e}",
                    f"{why}: {late} {l_} is before {early} {e}")
        bad_rows |= bad
    return bad_rows


def _months(start: pd.Series, end: pd.Series, dpm: float) -> pd.Series:
    return ((end - start).dt.days / dpm).astype("Float64")


def derive_endpoints(dates: pd.DataFrame, dpm: float) -> dict[str, pd.Series]:
    """Durations and events implied by the dates, for the endpoints whose dates are all present.

    PFS1 needs crizotinib_start_date, first_progression_date, death_date and
    last_followup_date; PFS2 also second_progression_date (and is defined only
    for patients with a first progression); OS needs diagnosis_date, death_date
    and last_followup_date. An event ends follow-up; without one the patient is
    censored at the last follow-up.

    Returns
    -------
    dict
        Any of ``pfs1_months``, ``pfs1_event``, ``pfs1_kind`` (``progression``,
        ``death`` or ``censored``), ``pfs2_months``, ``pfs2_event``,
        ``os_months``, ``os_event``.
    """
    have = set(dates.columns)
    out: dict[str, pd.Series] = {}
    lf = dates.get("last_followup_date")
    dd = dates.get("death_date")
    fp = dates.get("first_progression_date")
    if {"crizotinib_start_date", "first_progression_date", "death_date", "last_followup_date"} <= have:
        end = fp.fillna(dd).fillna(lf)
        out["pfs1_months"] = _months(dates["crizotinib_start_date"], end, dpm)
        out["pfs1_event"] = (fp.notna() | dd.notna()).astype("Int64")
        kind = np.where(fp.notna(), "progression", np.where(dd.notna(), "death", "censored"))
        out["pfs1_kind"] = pd.Series(kind, index=dates.index)
    if {"first_progression_date", "second_progression_date", "death_date", "last_followup_date"} <= have:
        sp = dates["second_progression_date"]
        end = sp.fillna(dd).fillna(lf)
        progressed = fp.notna()
        out["pfs2_months"] = _months(fp, end, dpm).where(progressed, pd.NA)
        out["pfs2_event"] = (sp.notna() | dd.notna()).astype("Int64").where(progressed, pd.NA)
    if {"diagnosis_date", "death_date", "last_followup_date"} <= have:
        out["os_months"] = _months(dates["diagnosis_date"], dd.fillna(lf), dpm)
        out["os_event"] = dd.notna().astype("Int64")
    return out


def last_contact(dates: pd.DataFrame) -> pd.Series | None:
    """The patient's last contact: ``death_date``, else ``last_followup_date`` (the end of OS), or ``None``
    when neither column is present."""
    dd, lf = dates.get("death_date"), dates.get("last_followup_date")
    if dd is None:
        return lf
    return dd if lf is None else dd.fillna(lf)


def derive_timings(dates: pd.DataFrame, timings, dpm: float) -> dict[str, pd.Series]:
    """Months from time zero to the start of each treatment whose date and time-zero columns are present.

    Parameters
    ----------
    dates : DataFrame
        Date columns (``datetime64``; missing = ``NaT``), the timing dates among them.
    timings : sequence of :class:`~failpattern.cohort.schema.Timing`
    dpm : float
        Days per month (the endpoints' clock: whole days / ``dpm``).

    Returns
    -------
    dict
        ``months`` column name -> months (``Float64``; empty where either date is).
    """
    return {t.months: _months(dates[t.origin], dates[t.date], dpm)
            for t in timings if t.date in dates and t.origin in dates}
