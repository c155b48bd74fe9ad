"""A fast answer to "would the cross-column checks find anything?" for complete cohorts.

Why: :mod:`~failpattern.cohort.checks` states each rule once, on pandas
columns, and builds a problem for every row that breaks it; that is clear but
costs about a hundred pandas operations, which dominates loading a
simulated cohort in a replicate study (thousands of cohorts). Most cohorts
break no rule. :func:`maybe_problems` evaluates every rule of
:func:`~failpattern.cohort.checks.reconcile_dates`,
:func:`~failpattern.cohort.checks.reconcile_pattern`,
:func:`~failpattern.cohort.checks.check_values` and
:func:`~failpattern.cohort.checks.check_consistency` at once on numpy arrays
and answers ``False`` only when none can fire; the loader then skips them.
Otherwise the loader runs them as before, so every problem, message and line
comes from the same code whichever path is taken.

It is conservative: numeric tolerances are compared with a small margin, so
a borderline value sends the cohort to the full checks, never past them. It
only applies when nothing needs deriving (every endpoint column present),
no cell failed typing and no row is ragged (:func:`applies`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from failpattern.cohort.checks import AFTER_PD, FLAG_RULES
from failpattern.cohort.dates import _ORDER
from failpattern.cohort.read import floats
from failpattern.cohort.schema import COLUMNS, DATE_COLUMNS, PROGRESSION_PATTERNS

__all__ = ["applies", "maybe_problems"]

#: Columns that must all be present for the quick check (nothing is then derived).
NEEDED = ("patient_id", "pfs1_months", "pfs1_event", "failure_pattern", "pfs2_months", "pfs2_event",
          "os_months", "os_event")
_EPS = 1e-6  # margin on tolerances: borderline rows go to the full checks
_NS_PER_DAY = 86_400 * 10**9
_PARENTS = tuple((c.name, c.parent) for c in COLUMNS if c.parent)
_KIND = {c.name: c.kind for c in COLUMNS}


def applies(typed: dict, any_error: bool, ragged) -> bool:
    """Whether :func:`maybe_problems` may stand in for the full checks."""
    return not any_error and not ragged and all(n in typed for n in NEEDED)


class _Arrays:
    """numpy views of the typed columns: floats with NaN, objects with None, datetime64 with NaT."""

    def __init__(self, typed: dict):
        self.typed = typed
        self._cache: dict = {}

    def get(self, name):
        return self[name] if name in self.typed else None

    def __contains__(self, name) -> bool:
        return name in self.typed

    def __getitem__(self, name):
        hit = self._cache.get(name)
        if hit is None:
            # the typed arrays convert as Series.to_numpy does, without the Series' overhead
            arr = self.typed[name]
            arr = getattr(arr, "array", arr)  # a Series or its array
            kind = _KIND[name]
            if kind in ("months", "number", "count", "binary"):
                hit = floats(arr)
            elif kind == "date":
                hit = np.asarray(arr, dtype="datetime64[ns]")
            elif isinstance(arr, pd.Categorical):  # codes into the categories, -1 (empty) to None
                hit = np.append(np.asarray(arr.categories, dtype=object), None)[arr.codes]
            else:
                hit = arr.to_numpy(dtype=object, na_value=None)
            self._cache[name] = hit
        return hit

    def na(self, name) -> np.ndarray:
        v = self[name]
        kind = _KIND[name]
        if kind == "date":
            return np.isnat(v)
        if v.dtype == object:
            return np.array([x is None for x in v], dtype=bool)
        return np.isnan(v)


def _tol(months: np.ndarray) -> np.ndarray:
    return np.maximum(0.5, 0.02 * np.abs(months)) - _EPS


def _months(start, end, dpm: float) -> np.ndarray:
    bad = np.isnat(start) | np.isnat(end)
    ns = np.where(bad, 0, end.astype(np.int64) - start.astype(np.int64))
    return np.where(bad, np.nan, np.floor_divide(ns, _NS_PER_DAY) / dpm)


def _fill(*dates) -> np.ndarray:
    out = dates[0].copy()
    for d in dates[1:]:
        gap = np.isnat(out)
        out[gap] = d[gap]
    return out


def _dates(a: _Arrays, dpm: float) -> tuple[bool, np.ndarray]:
    """Order, derivation cross-checks; return (problem?, kind codes: 0 NA, 1 progression, 2 death)."""
    n = len(a["patient_id"])
    kind = np.zeros(n, dtype=np.int8)
    present = [c for c in DATE_COLUMNS if c in a]
    if not present:
        return False, kind
    for early, late, _, _ in _ORDER:
        if early in a and late in a and np.any(a[early] > a[late]):
            return True, kind
    have = set(present)
    fp, sp = a.get("first_progression_date"), None
    if {"first_progression_date", "second_progression_date"} <= have:
        sp = a["second_progression_date"]
        if np.any(~np.isnat(sp) & np.isnat(fp)):
            return True, kind
    derived = {}
    if {"crizotinib_start_date", "first_progression_date", "death_date", "last_followup_date"} <= have:
        dd, lf = a["death_date"], a["last_followup_date"]
        derived["pfs1_months"] = _months(a["crizotinib_start_date"], _fill(fp, dd, lf), dpm)
        derived["pfs1_event"] = (~np.isnat(fp) | ~np.isnat(dd)).astype(float)
        kind = np.where(~np.isnat(fp), 1, np.where(~np.isnat(dd), 2, 0)).astype(np.int8)
    if {"first_progression_date", "second_progression_date", "death_date", "last_followup_date"} <= have:
        dd, lf = a["death_date"], a["last_followup_date"]
        prog = ~np.isnat(fp)
        derived["pfs2_months"] = np.where(prog, _months(fp, _fill(sp, dd, lf), dpm), np.nan)
        derived["pfs2_event"] = np.where(prog, (~np.isnat(sp) | ~np.isnat(dd)).astype(float), np.nan)
    if {"diagnosis_date", "death_date", "last_followup_date"} <= have:
        dd, lf = a["death_date"], a["last_followup_date"]
        derived["os_months"] = _months(a["diagnosis_date"], _fill(dd, lf), dpm)
        derived["os_event"] = (~np.isnat(dd)).astype(float)
    with np.errstate(invalid="ignore"):
        for name, values in derived.items():
            given = a[name]
            if name.endswith("_months"):
                if np.any(np.abs(given - values) > _tol(np.nan_to_num(values))):
                    return True, kind
            elif np.any(~np.isnan(given) & ~np.isnan(values) & (given != values)):
                return True, kind
    return False, kind


def maybe_problems(typed: dict, dpm: float) -> bool:
    """``False`` when no cross-column rule can fire on these typed columns (see the module docstring).

    Parameters
    ----------
    typed : dict
        Column name -> typed Series or array (canonical dtypes), the format columns present.
    dpm : float
        Days per month.
    """
    a = _Arrays(typed)
    found, kind = _dates(a, dpm)
    if found:
        return True
    pat = a["failure_pattern"]
    has_pat = ~a.na("failure_pattern")
    progressed = np.array([x in PROGRESSION_PATTERNS for x in pat], dtype=bool)
    death = pat == "death"
    event = a["pfs1_event"]
    with np.errstate(invalid="ignore"):
        if "fail_original_site" in a and "fail_new_site" in a:
            o, nw = a["fail_original_site"], a["fail_new_site"]
            flag_pat = np.select([(o == 1) & (nw == 1), o == 1, nw == 1], ["ODF", "OF", "DF"], default="")
            known = ~np.isnan(o) & ~np.isnan(nw)
            any_flag = flag_pat != ""
            if np.any((progressed & known & (flag_pat.astype(object) != pat)) | (~progressed & any_flag)):
                return True
        ok = ~np.isnan(event)
        if np.any(ok & ((event == 1) != has_pat)):
            return True
        if np.any(ok & ((event == 1) == has_pat) & ((death & (kind == 1)) | (progressed & (kind == 2)))):
            return True
        # check_values
        if np.any(a.na("patient_id")):
            return True
        ids = a["patient_id"]
        if len(set(ids)) != len(ids):
            return True
        for name in ("pfs1_months", "os_months", "pfs1_event", "os_event"):
            if np.any(np.isnan(a[name])):
                return True
        # check_consistency
        no_pd = death | (~has_pat & (event == 0))
        m2, e2 = a["pfs2_months"], a["pfs2_event"]
        given2 = ~np.isnan(m2) | ~np.isnan(e2)
        if np.any(no_pd & given2) or np.any(~no_pd & (np.isnan(m2) != np.isnan(e2))):
            return True
        os_, pfs1 = a["os_months"], a["pfs1_months"]
        limit = os_ + _tol(np.nan_to_num(os_))
        if np.any(pfs1 > limit) or np.any(pfs1 + m2 > limit):
            return True
        ose = a["os_event"]
        if np.any((ose == 0) & death) or np.any((ose == 1) & (event == 0)) or \
                np.any((ose == 1) & (e2 == 0) & ~no_pd):
            return True
        for name, parent in _PARENTS:
            if name in a and parent in a and np.any(~a.na(name) & (a[parent] == 0)):
                return True
        for name in AFTER_PD:
            if name in a:
                filled = (a[name] == 1) if _KIND[name] in ("binary", "count") else ~a.na(name)
                if np.any(no_pd & filled):
                    return True
        for summary, details in FLAG_RULES:
            if summary in a:
                on = np.zeros(len(ids), dtype=bool)
                for d in details:
                    if d in a:
                        on |= a[d] == 1
                if np.any((a[summary] == 0) & on):
                    return True
        if "cbpd" in a and "next_systemic_therapy" in a:
            cb, nxt = a["cbpd"], a["next_systemic_therapy"]
            criz = nxt == "crizotinib"
            if np.any(((cb == 1) & ~a.na("next_systemic_therapy") & ~criz) | ((cb == 0) & criz)):
                return True
    return False

