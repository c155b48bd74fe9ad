"""Rules across the columns of a row: derivations, cross-checks and contradictions.

Why: the errors that change results are rarely bad cells; they are a PFS2 for
a patient who never progressed, a pattern "OF" whose site flags say new
sites, or months that disagree with the dates. Each rule here compares
columns that are present and filled (cells that failed typing are *broken*
and skipped, so one mistake is reported once) and derives what a file leaves
out: durations and events from dates, the failure pattern from the site
flags, ``pfs1_event`` from the failure pattern. A derived value that
contradicts a given one is an error, never silently preferred.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from failpattern.cohort.dates import (DAYS_PER_MONTH, _months, check_order, derive_endpoints, derive_timings,
                                     last_contact, tolerance_months)
from failpattern.cohort.problems import RowContext
from failpattern.cohort.schema import (COLUMNS, DATE_COLUMNS, PROGRESSION_PATTERNS, TIMING_DATE_COLUMNS, TIMINGS,
                                       Timing)

__all__ = ["reconcile_dates", "reconcile_pattern", "reconcile_timings", "check_values", "check_consistency"]

_ENDPOINT_START = {"pfs1": "crizotinib_start_date", "pfs2": "first_progression_date", "os": "diagnosis_date"}


def _idx(mask) -> np.ndarray:
    """Positions where a (possibly nullable) boolean mask is True; NA counts as False."""
    return np.flatnonzero(pd.Series(mask).fillna(False).to_numpy(dtype=bool))


def _is(df: pd.DataFrame, name: str, value) -> pd.Series:
    """``df[name] == value`` with NA as False, and all False when the column is absent."""
    if name not in df:
        return pd.Series(False, index=df.index)
    return (df[name] == value).fillna(False).astype(bool)


def _shown(x) -> str:
    if isinstance(x, pd.Timestamp) and not pd.isna(x):
        return str(x.date())
    return "" if pd.isna(x) else (f"{x:g}" if isinstance(x, float) else str(x))


def reconcile_dates(df, broken, ctx: RowContext, dpm: float = DAYS_PER_MONTH) -> tuple[list[str], pd.Series]:
    """Check the order of the dates and derive or cross-check the durations and events.

    Returns
    -------
    derived : list of str
        Columns added to ``df`` from the dates.
    kind : Series
        ``progression``, ``death`` or ``censored`` (how PFS1 ended by the dates), or NA.
    """
    dates = df[[c for c in DATE_COLUMNS if c in df]]
    kind = pd.Series(pd.NA, index=df.index, dtype=object)
    if dates.empty:
        return [], kind
    unreliable = check_order(dates, ctx) | broken[dates.columns].any(axis=1)
    if {"first_progression_date", "second_progression_date"} <= set(dates):
        for i in _idx(dates["second_progression_date"].notna() & dates["first_progression_date"].isna()
                      & ~broken["first_progression_date"]):
            ctx.add("pfs2_without_progression", i, "second_progression_date",
                    _shown(dates["second_progression_date"].iat[i].date()),
                    "second_progression_date is given but first_progression_date is empty; PFS2 starts "
                    "at the first progression")
            unreliable.iat[i] = True
    endpoints = derive_endpoints(dates, dpm)
    if "pfs1_kind" in endpoints:
        kind = endpoints.pop("pfs1_kind").where(~unreliable, pd.NA)
    derived, gaps = [], {}
    for name, values in endpoints.items():
        values = values.where(~unreliable, pd.NA)
        endpoint = name.split("_")[0]
        if name not in df:
            start = _ENDPOINT_START[endpoint]
            if name.endswith("_months"):  # note which date is missing; reported once per cell below
                gone = values.isna() & ~unreliable
                if endpoint == "pfs2":
                    gone &= dates["first_progression_date"].notna()
                for i in _idx(gone):
                    what = start if pd.isna(dates[start].iat[i]) else "last_followup_date"
                    gaps.setdefault((int(i), what), []).append(endpoint.upper())
            df[name] = values
            broken[name] = values.isna()  # every gap was reported above or is legitimate
            derived.append(name)
            continue
        given = df[name]
        both = given.notna() & values.notna()
        if name.endswith("_months"):
            _duration_mismatch(ctx, name, given, values, dpm)
        else:
            for i in _idx(both & (given != values)):
                ctx.add("event_date_mismatch", i, name, _shown(given.iat[i]),
                        f"{name} is {given.iat[i]} but the dates say {values.iat[i]} "
                        f"({'an event date is given' if values.iat[i] == 1 else 'no event date is given'})")
    for (i, what), needed_by in sorted(gaps.items()):
        why = (" (needed when the patient neither progressed nor died)"
               if what == "last_followup_date" else "")
        ctx.add("missing_value", i, what, None,
                f"{what} is empty; {' and '.join(needed_by)} cannot be computed without it{why}")
    return derived, kind


def _duration_mismatch(ctx: RowContext, name: str, given: pd.Series, values: pd.Series, dpm: float,
                       dates: str = "the dates") -> None:
    """``duration_date_mismatch`` where typed months differ from the dates' by more than the tolerance."""
    diff = (given - values).abs()
    bad = given.notna() & values.notna() & (diff > tolerance_months(values.astype(float).fillna(0)))
    for i in _idx(bad):
        ctx.add("duration_date_mismatch", i, name, _shown(given.iat[i]),
                f"{name} is {given.iat[i]:g} but {dates} give {values.iat[i]:.1f} months "
                f"({dpm:g} days per month; allowed difference "
                f"{float(tolerance_months(values.iat[i])):.1f})")


def _flag_pattern(df) -> tuple[pd.Series, pd.Series, pd.Series]:
    o, n = df["fail_original_site"], df["fail_new_site"]
    pat = np.select([(o == 1).fillna(False) & (n == 1).fillna(False), (o == 1).fillna(False),
                     (n == 1).fillna(False)], ["ODF", "OF", "DF"], default="")
    known = o.notna() & n.notna()
    any_flag = pd.Series(pat != "", index=df.index)
    return pd.Series(pat, index=df.index), any_flag, known


def reconcile_pattern(df, broken, ctx: RowContext, kind: pd.Series) -> list[str]:
    """Cross-check or derive ``failure_pattern`` and ``pfs1_event``; return the derived column names."""
    derived = []
    flags = {"fail_original_site", "fail_new_site"} <= set(df)
    if flags:
        flag_pat, any_flag, known = _flag_pattern(df)
        flags_ok = ~(broken["fail_original_site"] | broken["fail_new_site"])
    if "failure_pattern" not in df and flags and "pfs1_event" in df:
        event = df["pfs1_event"]
        pat = pd.Series(pd.NA, index=df.index, dtype=object)
        pat[(event == 1).fillna(False) & any_flag] = flag_pat
        pat[(event == 1).fillna(False) & ~any_flag & known] = "death"
        pat[((event == 1).fillna(False) & ~any_flag & (kind == "death").fillna(False))] = "death"
        for i in _idx((event == 1) & ~any_flag & ~known & ~(kind == "death").fillna(False) & flags_ok):
            ctx.add("missing_value", i, "fail_original_site+fail_new_site", None,
                    "pfs1_event = 1 but both site flags are empty: cannot tell progression "
                    "(fill the flags) from death without progression (write 0 in both)")
        for i in _idx((event == 0) & any_flag & flags_ok):
            ctx.add("pattern_event_mismatch", i, "pfs1_event+fail_original_site+fail_new_site", "0",
                    f"the site flags record a progression ({flag_pat.iat[i]}) but pfs1_event = 0")
        contradicts = (event == 1).fillna(False) & ~any_flag & known & (kind == "progression").fillna(False)
        pat[contradicts] = pd.NA
        for i in _idx(contradicts & flags_ok):
            ctx.add("pattern_event_mismatch", i, "fail_original_site+fail_new_site+first_progression_date",
                    "0", "first_progression_date is given but fail_original_site and fail_new_site are "
                    "both 0; mark where the first progression was")
        df["failure_pattern"] = pd.Categorical(pat, categories=["OF", "DF", "ODF", "death"])
        broken["failure_pattern"] = broken["pfs1_event"] | ~flags_ok | contradicts
        derived.append("failure_pattern")
    elif "failure_pattern" in df and flags:
        pat = df["failure_pattern"].astype(object)
        progressed = pat.isin(PROGRESSION_PATTERNS)
        bad = (progressed & known & (flag_pat != pat)) | (~progressed & any_flag)
        for i in _idx(bad & flags_ok & ~broken["failure_pattern"]):
            given = "" if pd.isna(pat.iat[i]) else pat.iat[i]
            ctx.add("pattern_sites_mismatch", i, "failure_pattern+fail_original_site+fail_new_site",
                    given, f"failure_pattern is {given or 'empty'!r} but the site flags "
                    f"(fail_original_site = {_shown(df['fail_original_site'].iat[i])}, "
                    f"fail_new_site = {_shown(df['fail_new_site'].iat[i])}) mean "
                    f"{flag_pat.iat[i] or 'no progression'!r} (OF = original sites only, "
                    "DF = new sites only, ODF = both)")
    if "failure_pattern" in df and "pfs1_event" not in df:
        df["pfs1_event"] = df["failure_pattern"].notna().astype("Int64").where(
            ~broken["failure_pattern"], pd.NA)
        broken["pfs1_event"] = broken["failure_pattern"].copy()
        derived.append("pfs1_event")
    elif "failure_pattern" in df and "failure_pattern" not in derived:
        pat, event = df["failure_pattern"].astype(object), df["pfs1_event"]
        ok = ~broken["failure_pattern"] & event.notna()
        for i in _idx(ok & ((event == 1) != pat.notna())):
            e = event.iat[i]
            ctx.add("pattern_event_mismatch", i, "failure_pattern+pfs1_event", _shown(pat.iat[i]),
                    "pfs1_event = 1 needs a failure_pattern (OF, DF, ODF or death)" if e == 1 else
                    f"failure_pattern is {pat.iat[i]!r} but pfs1_event = 0 (censored patients "
                    "have an empty failure_pattern)")
    if "failure_pattern" in df and "pfs1_event" in df:
        _pattern_vs_dates(df, broken, ctx, kind, "failure_pattern" in derived)
    return derived


def _pattern_vs_dates(df, broken, ctx: RowContext, kind: pd.Series, from_flags: bool) -> None:
    """Death without progression vs a progression, by the pattern and by the dates."""
    pat, event = df["failure_pattern"].astype(object), df["pfs1_event"]
    ok = ~broken["failure_pattern"] & event.notna() & ((event == 1) == pat.notna())
    wrong = ((pat == "death") & (kind == "progression")) | (pat.isin(PROGRESSION_PATTERNS) & (kind == "death"))
    source = " (derived from the site flags)" if from_flags else ""
    column_ = "fail_original_site+fail_new_site" if from_flags else "failure_pattern"
    for i in _idx(ok & wrong.fillna(False)):
        ctx.add("pattern_event_mismatch", i, f"{column_}+first_progression_date", pat.iat[i],
                f"failure_pattern 'death'{source} means death without progression, but a "
                "first_progression_date is given" if pat.iat[i] == "death" else
                f"failure_pattern {pat.iat[i]!r}{source} is a progression, but first_progression_date "
                "is empty and a death_date is given")


def check_values(df, broken, ctx: RowContext, skip=()) -> None:
    """Required values that are empty, and duplicate patient ids.

    Rows in ``skip`` (ragged rows, already reported) are not checked for empty values.
    """
    keep = pd.Series(True, index=df.index)
    keep.iloc[list(skip)] = False
    if "patient_id" in df:
        ids = df["patient_id"]
        for i in _idx(ids.isna() & keep):
            ctx.add("missing_patient_id", i, "patient_id", None, "patient_id is empty; every row needs one")
        dup = ids.duplicated(keep=False) & ids.notna()
        for i in _idx(dup):
            others = [str(ctx.lines[j]) for j in _idx(ids == ids.iat[i]) if j != i]
            ctx.add("duplicate_patient_id", i, "patient_id", ids.iat[i],
                    f"patient_id {ids.iat[i]!r} is also on line(s) {', '.join(others)}")
    for name, rule in (("pfs1_months", "missing_time"), ("os_months", "missing_time"),
                       ("pfs1_event", "missing_value"), ("os_event", "missing_value")):
        if name in df:
            for i in _idx(df[name].isna() & ~broken[name] & keep):
                ctx.add(rule, i, name, None, f"{name} is empty; every patient needs it")


AFTER_PD = ("initial_failure_location", "fail_lung", "fail_liver", "fail_brain", "fail_bone", "fail_adrenal",
            "fail_regional_ln", "fail_distant_ln", "fail_other", "brain_progression_type",
            "salvage_rt_eligible", "salvage_rt_eligible_technique", "salvage_rt", "salvage_rt_technique",
            "cbpd", "next_systemic_therapy")
#: The exposure timings counted from the first progression: like AFTER_PD, only for a patient who had one.
AFTER_PD_TIMINGS = tuple(c for t in TIMINGS if t.origin == "first_progression_date" for c in (t.date, t.months))
PRIOR_SITES = ("prior_brain_rt", "prior_brain_srs", "prior_wbrt", "prior_thoracic_rt", "prior_bone_rt",
               "prior_adrenal_rt")
#: A summary 0/1 flag must be 1 when any of its detail flags is 1 (shared with quick.py).
FLAG_RULES = (("prior_brain_rt", ("prior_brain_srs", "prior_wbrt")), ("prior_rt", PRIOR_SITES),
              ("any_rt", ("prior_rt",) + PRIOR_SITES + ("salvage_rt",)))


def _filled(df, name) -> pd.Series:
    """Given and meaningful: a 0/1 flag equal to 1, or any other non-empty value."""
    s = df[name]
    return (s == 1).fillna(False) if str(s.dtype) == "Int64" else s.notna()


def _any(df, names, value=1) -> pd.Series:
    out = pd.Series(False, index=df.index)
    for n in names:
        out |= _is(df, n, value)
    return out


def _no_progression(df) -> pd.Series:
    """Patients known to have no first progression (death without progression, or censored PFS1)."""
    pat = df["failure_pattern"].astype(object) if "failure_pattern" in df else None
    if pat is not None and "pfs1_event" in df:
        return (pat == "death").fillna(False) | (pat.isna() & _is(df, "pfs1_event", 0))
    return _is(df, "pfs1_event", 0)


def check_consistency(df, ctx: RowContext) -> None:
    """Contradictions between endpoints, and details recorded without their event."""
    pat = df["failure_pattern"].astype(object) if "failure_pattern" in df else None
    no_pd = _no_progression(df)
    pfs2 = [c for c in ("pfs2_months", "pfs2_event") if c in df]
    if pfs2:
        given = df[pfs2].notna().any(axis=1)
        for i in _idx(no_pd & given):
            ctx.add("pfs2_without_progression", i, "+".join(pfs2), _shown(df[pfs2[0]].iat[i]),
                    "PFS2 is measured from the first progression, but this patient has none "
                    f"(failure_pattern {_shown(pat.iat[i]) if pat is not None else ''!r}); leave PFS2 empty")
    if len(pfs2) == 2:
        for have, lack in (pfs2, pfs2[::-1]):
            for i in _idx(~no_pd & df[have].notna() & df[lack].isna()):
                ctx.add("missing_value", i, lack, None, f"{have} is given but {lack} is empty")
    if "os_months" in df and "pfs1_months" in df:
        os_ = df["os_months"]
        limit = os_ + tolerance_months(os_.astype(float).fillna(0))
        for i in _idx(df["pfs1_months"] > limit):
            ctx.add("pfs_longer_than_os", i, "pfs1_months+os_months", _shown(df["pfs1_months"].iat[i]),
                    f"pfs1_months {df['pfs1_months'].iat[i]:g} is longer than os_months {os_.iat[i]:g}; "
                    "OS runs from diagnosis, which is before crizotinib start")
        if "pfs2_months" in df:
            total = df["pfs1_months"] + df["pfs2_months"]
            for i in _idx((total > limit) & ~(df["pfs1_months"] > limit)):
                ctx.add("pfs_longer_than_os", i, "pfs1_months+pfs2_months+os_months",
                        _shown(df["pfs2_months"].iat[i]),
                        f"pfs1_months + pfs2_months = {total.iat[i]:g} is longer than os_months {os_.iat[i]:g}")
    if "os_event" in df:
        alive = _is(df, "os_event", 0)
        died_first = (pat == "death").fillna(False) if pat is not None else pd.Series(False, index=df.index)
        for i in _idx(alive & died_first):
            ctx.add("death_mismatch", i, "failure_pattern+os_event", "death",
                    "failure_pattern is 'death' but os_event = 0 (alive)")
        for i in _idx(_is(df, "os_event", 1) & _is(df, "pfs1_event", 0)):
            ctx.add("death_mismatch", i, "pfs1_event+os_event", "0",
                    "the patient died (os_event = 1) but PFS1 is censored; death ends PFS1 (pfs1_event = 1)")
        if "pfs2_event" in df:
            for i in _idx(_is(df, "os_event", 1) & _is(df, "pfs2_event", 0) & ~no_pd):
                ctx.add("death_mismatch", i, "pfs2_event+os_event", "0",
                        "the patient died (os_event = 1) but PFS2 is censored; death ends PFS2")
    for c in COLUMNS:
        if c.parent and c.name in df and c.parent in df:
            for i in _idx(df[c.name].notna() & _is(df, c.parent, 0)):
                ctx.add("detail_without_parent", i, c.name, _shown(df[c.name].iat[i]),
                        f"{c.name} is {_shown(df[c.name].iat[i])!r} but {c.parent} = 0; leave it empty")
    after = [c for c in AFTER_PD + AFTER_PD_TIMINGS if c in df]
    if after:
        # one numpy bool per cell: a frame of mixed bool dtypes would go through objects row-wise
        filled = np.column_stack([_filled(df, c).to_numpy(dtype=bool, na_value=False) for c in after])
        for i in _idx(no_pd & pd.Series(filled.any(axis=1), index=df.index)):
            cols = [c for c, on in zip(after, filled[i]) if on]
            ctx.add("detail_without_parent", i, "+".join(cols), _shown(df[cols[0]].iat[i]),
                    f"{', '.join(cols)} describe(s) a first progression, but this patient has none")
    _check_flags(df, ctx)


def _check_flags(df, ctx: RowContext) -> None:
    for summary, details in FLAG_RULES:
        if summary not in df:
            continue
        present = [d for d in details if d in df]
        for i in _idx(_is(df, summary, 0) & _any(df, present)):
            on = [d for d in present if _is(df, d, 1).iat[i]]  # an empty flag is not 'on'
            ctx.add("inconsistent_flags", i, f"{summary}+{'+'.join(on)}", "0",
                    f"{summary} = 0 but {', '.join(on)} = 1")
    if "cbpd" in df and "next_systemic_therapy" in df:
        nxt = df["next_systemic_therapy"].astype(object)
        bad = (_is(df, "cbpd", 1) & nxt.notna() & (nxt != "crizotinib").fillna(False)) | \
              (_is(df, "cbpd", 0) & (nxt == "crizotinib").fillna(False))
        for i in _idx(bad):
            ctx.add("inconsistent_flags", i, "cbpd+next_systemic_therapy", _shown(nxt.iat[i]),
                    f"cbpd = {df['cbpd'].iat[i]} but next_systemic_therapy is {nxt.iat[i]!r} "
                    "(cbpd = 1 exactly when it is 'crizotinib')")


def _day(x) -> str:
    return str(pd.Timestamp(x).date())


def reconcile_timings(df, broken, ctx: RowContext, dpm: float = DAYS_PER_MONTH) -> list[str]:
    """The exposure timings (:data:`~failpattern.cohort.schema.TIMINGS`): allowed, in order, months derived.

    Run after the endpoints are derived (it reads ``pfs2_*``, ``os_months`` and the pattern). For each
    treatment whose date or months column is present:

    - ``timing_without_treatment``: a timing for a patient whose treatment flag is 0 (a salvage or CBPD
      timing of a patient without a first progression is ``detail_without_parent``, in
      :func:`check_consistency`);
    - dates: ``timing_before_time_zero`` (before first progression / diagnosis),
      ``timing_after_last_contact`` (after death, or after the last follow-up of a patient alive),
      ``first_rt_vs_prior_rt`` (first RT after crizotinib start with ``prior_rt`` = 1, before it with
      ``prior_rt`` = 0), ``first_rt_after_salvage_rt``;
    - months: derived from the dates when the months column is absent, or its empty cells filled from
      them; a typed value that disagrees is ``duration_date_mismatch`` (the endpoints' tolerance);
    - months without a date: not beyond the patient's follow-up from time zero
      (``timing_after_last_contact``: the last contact by the dates, else ``pfs2_months`` of a censored
      PFS2, or ``os_months``) and for the first RT on the side of crizotinib start ``prior_rt`` says
      (``first_rt_vs_prior_rt``, when the diagnosis and crizotinib start dates give that side); negative
      months are ``negative_time`` when the cell is typed.

    Returns
    -------
    list of str
        The months columns added to ``df`` from the dates.
    """
    timings = [t for t in TIMINGS if t.date in df or t.months in df]
    if not timings:
        return []
    no_pd = _no_progression(df)
    # rows whose timing is already wrong for being given at all: not checked further (reported once)
    void = {t.months: _timing_treated(df, ctx, t, no_pd) for t in timings}
    dates = df[[c for c in DATE_COLUMNS + TIMING_DATE_COLUMNS if c in df]]
    negative = _timing_order(df, dates, ctx, timings, void)
    derived = []
    spans = {t.months: f"the dates ({t.origin} to {t.date})" for t in timings}
    for name, values in derive_timings(dates, timings, dpm).items():
        values = values.where(~negative[name], pd.NA)  # reported above; a negative time is never stored
        if name not in df:
            df[name] = values
            broken[name] = False  # an empty derived value is an unknown timing, which is allowed
            derived.append(name)
            continue
        given = df[name]
        _duration_mismatch(ctx, name, given, values, dpm, spans[name])
        fill = given.isna() & ~broken[name] & values.notna()
        if fill.any():  # only the date is given for these patients: their months come from it
            df[name] = given.mask(fill, values)
    _timing_months(df, dates, ctx, timings, dpm, void)
    return derived


def _timing_treated(df, ctx: RowContext, t: Timing, no_pd: pd.Series) -> pd.Series:
    """``timing_without_treatment``: a date or months given while the treatment flag is 0.

    Returns the rows whose timing should not be there at all (this rule, or a salvage / CBPD timing of a
    patient without a first progression, which :func:`check_consistency` reports)."""
    cols = [c for c in (t.date, t.months) if c in df]
    given = pd.Series(False, index=df.index)
    for c in cols:
        given |= df[c].notna()
    orphan = (given & no_pd) if t.origin == "first_progression_date" else pd.Series(False, index=df.index)
    if t.flag not in df:
        return orphan
    bad = _is(df, t.flag, 0) & given & ~orphan  # orphan: detail_without_parent names every such detail
    for i in _idx(bad):
        on = [c for c in cols if pd.notna(df[c].iat[i])]
        said = ", ".join(f"{c} {_shown(df[c].iat[i])}" for c in on)
        ctx.add("timing_without_treatment", i, "+".join(on + [t.flag]), _shown(df[on[0]].iat[i]),
                f"{said} {'is' if len(on) == 1 else 'are'} given but {t.flag} = 0 ({t.treatment} was not "
                f"given): leave the timing empty, or set {t.flag} = 1")
    return orphan | bad


def _contact_name(dates: pd.DataFrame, i: int) -> str:
    dd = dates.get("death_date")
    return "death_date" if dd is not None and pd.notna(dd.iat[i]) else "last_followup_date"


def _timing_order(df, dates: pd.DataFrame, ctx: RowContext, timings, void: dict) -> dict[str, pd.Series]:
    """The date rules of the timings; return, per months column, the rows dated before time zero."""
    contact = last_contact(dates)
    negative = {}
    for t in timings:
        negative[t.months] = pd.Series(False, index=df.index)
        if t.date not in df:
            continue
        d = df[t.date].where(~void[t.months])
        if t.origin in df:
            early = (d < df[t.origin]).fillna(False)
            for i in _idx(early):
                ctx.add("timing_before_time_zero", i, f"{t.date}+{t.origin}", _day(d.iat[i]),
                        f"{t.date} {_day(d.iat[i])} is before {t.origin} {_day(df[t.origin].iat[i])}: "
                        f"{t.treatment} is timed from {t.origin_label} and cannot start before it")
            negative[t.months] = early
        if contact is not None:
            for i in _idx((d > contact).fillna(False)):
                which = _contact_name(dates, i)
                ctx.add("timing_after_last_contact", i, f"{t.date}+{which}", _day(d.iat[i]),
                        f"{t.date} {_day(d.iat[i])} is after {which} {_day(contact.iat[i])}, the patient's "
                        f"last contact: {t.treatment} cannot start after it")
    if "first_rt_date" in df and "crizotinib_start_date" in df and "prior_rt" in df:
        d, cs = df["first_rt_date"].where(~void["first_rt_months"]), df["crizotinib_start_date"]
        after = ("is after crizotinib_start_date {cs}: with radiotherapy before crizotinib (prior_rt = 1) "
                 "the first course starts on or before crizotinib start")
        before = ("is before crizotinib_start_date {cs}: radiotherapy before crizotinib is prior radiotherapy "
                  "(prior_rt = 1); with prior_rt = 0 the first course starts on or after crizotinib start")
        for prior, wrong, why in ((1, d > cs, after), (0, d < cs, before)):
            for i in _idx(_is(df, "prior_rt", prior) & wrong.fillna(False)):
                ctx.add("first_rt_vs_prior_rt", i, "first_rt_date+crizotinib_start_date+prior_rt",
                        _day(d.iat[i]), f"prior_rt = {prior} but first_rt_date {_day(d.iat[i])} "
                        + why.format(cs=_day(cs.iat[i])))
    if "first_rt_date" in df and "salvage_rt_date" in df:
        d = df["first_rt_date"].where(~void["first_rt_months"])
        s = df["salvage_rt_date"].where(~void["salvage_rt_months"])
        for i in _idx((d > s).fillna(False)):
            ctx.add("first_rt_after_salvage_rt", i, "first_rt_date+salvage_rt_date", _day(d.iat[i]),
                    f"first_rt_date {_day(d.iat[i])} is after salvage_rt_date {_day(s.iat[i])}: salvage "
                    "radiotherapy is a radiotherapy course, so the first course starts on or before it")
    return negative


def _timing_months(df, dates: pd.DataFrame, ctx: RowContext, timings, dpm: float, void: dict) -> None:
    """The rules of months given without a date (the date rules cover the others)."""
    contact = last_contact(dates)
    for t in timings:
        if t.months not in df:
            continue
        m = df[t.months]
        undated = df[t.date].isna() if t.date in df else pd.Series(True, index=df.index)
        check = m.notna() & undated & ~void[t.months]
        if not check.any():
            continue
        if t.origin == "first_progression_date":
            # follow-up after the first progression: to the last contact by the dates, else a censored PFS2
            by_dates = (_months(dates[t.origin], contact, dpm) if t.origin in dates and contact is not None
                        else pd.Series(pd.NA, index=df.index, dtype="Float64"))
            censored = (df["pfs2_months"].where(_is(df, "pfs2_event", 0), pd.NA).astype("Float64")
                        if "pfs2_months" in df and "pfs2_event" in df
                        else pd.Series(pd.NA, index=df.index, dtype="Float64"))
            bound = by_dates.fillna(censored)
        else:
            by_dates = pd.Series(pd.NA, index=df.index, dtype="Float64")
            bound = df["os_months"].astype("Float64") if "os_months" in df \
                else pd.Series(pd.NA, index=df.index, dtype="Float64")
        over = check & (m > bound + tolerance_months(bound.astype(float).fillna(0))).fillna(False)
        for i in _idx(over):
            if pd.notna(by_dates.iat[i]):
                which = _contact_name(dates, i)
                cols, what = f"{t.months}+{t.origin}+{which}", (
                    f"{which} is {bound.iat[i]:.1f} months after {t.origin}")
            elif t.origin == "first_progression_date":
                cols, what = f"{t.months}+pfs2_months+pfs2_event", (
                    f"pfs2_months is {bound.iat[i]:g} with pfs2_event = 0: no contact after it")
            else:
                cols, what = f"{t.months}+os_months", f"os_months is {bound.iat[i]:g}"
            ctx.add("timing_after_last_contact", i, cols, _shown(m.iat[i]),
                    f"{t.months} {m.iat[i]:g} is beyond the patient's follow-up after {t.origin}: {what} "
                    f"(allowed difference {float(tolerance_months(bound.iat[i])):.1f}); "
                    f"{t.treatment} cannot start after the last contact")
        if t.date == "first_rt_date" and "prior_rt" in df and {"diagnosis_date", "crizotinib_start_date"} <= set(df):
            start = _months(df["diagnosis_date"], df["crizotinib_start_date"], dpm)
            tol = tolerance_months(start.astype(float).fillna(0))
            late = check & _is(df, "prior_rt", 1) & (m > start + tol).fillna(False)
            soon = check & _is(df, "prior_rt", 0) & (m < start - tol).fillna(False)
            after = ("after crizotinib start; with radiotherapy before crizotinib (prior_rt = 1) the first "
                     "course starts on or before it")
            before = "before crizotinib start; radiotherapy before crizotinib is prior radiotherapy (prior_rt = 1)"
            for mask, prior, why in ((late, 1, after), (soon, 0, before)):
                for i in _idx(mask):
                    ctx.add("first_rt_vs_prior_rt", i,
                            "first_rt_months+diagnosis_date+crizotinib_start_date+prior_rt", _shown(m.iat[i]),
                            f"prior_rt = {prior} but first_rt_months {m.iat[i]:g} is {why} (crizotinib started "
                            f"{start.iat[i]:.1f} months after diagnosis by the dates; allowed difference "
                            f"{float(tol.iat[i]):.1f})")
