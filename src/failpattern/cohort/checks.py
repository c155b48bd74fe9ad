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

from failpattern.cohort.dates import DAYS_PER_MONTH, check_order, derive_endpoints, tolerance_months
from failpattern.cohort.problems import RowContext
from failpattern.cohort.schema import COLUMNS, DATE_COLUMNS, PROGRESSION_PATTERNS

__all__ = ["reconcile_dates", "reconcile_pattern", "check_values", "check_consistency"]

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
            diff = (given - values).abs()
            bad = both & (diff > tolerance_months(values.astype(float).fillna(0)))
            for i in _idx(bad):
                ctx.add("duration_date_mismatch", i, name, _shown(given.iat[i]),
                        f"{name} is {given.iat[i]:g} but the dates give {values.iat[i]:.1f} months "
                        f"({dpm:g} days per month; allowed difference "
                        f"{float(tolerance_months(values.iat[i])):.1f})")
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


def check_consistency(df, ctx: RowContext) -> None:
    """Contradictions between endpoints, and details recorded without their event."""
    pat = df["failure_pattern"].astype(object) if "failure_pattern" in df else None
    if pat is not None and "pfs1_event" in df:
        no_pd = (pat == "death").fillna(False) | (pat.isna() & _is(df, "pfs1_event", 0))
    else:
        no_pd = _is(df, "pfs1_event", 0)
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
    after = [c for c in AFTER_PD if c in df]
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
