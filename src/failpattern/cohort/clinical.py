"""Hard clinical plausibility rules: records no patient's course can produce.

Why: every cell of a cohort can be valid on its own (the loader checks that) and
the row still describe an impossible course: a progression 7 days after
crizotinib start in a patient whose best response was a partial response, a
second progression 2 days after the first, bone radiotherapy in a patient
without bone metastases. Such records bias exactly the analyses the paper is
about (PFS1, PFS2, patterns of failure), and generated cohorts must never
contain them. :func:`check_clinical` applies one registry of rules
(:data:`CLINICAL_RULES`) to a cohort in the loader's column format
(``docs/cohort-format.md``) and returns one row per violation, each with a
sentence a clinician can act on. A rule applies to a patient only when the
columns it reads are present and filled: a missing column or an empty cell is
not a violation (the loader decides whether it is allowed).

Thresholds and why they were chosen
-----------------------------------
:data:`FIRST_ASSESSMENT_DAYS` = 42
    Response to crizotinib is judged with RECIST 1.1, which needs a scan; in
    practice (and in the PROFILE trials and the paper's protocol) the first
    response assessment is at about 6 weeks (6-8 weeks). A best response of
    CR, PR or SD therefore cannot exist before day 42, and a first
    progression recorded earlier can only belong to a patient whose best
    response is PD (progression at, or clinically before, the first scan).
    SD in particular needs the RECIST minimum interval from baseline, which
    protocols set at 6-8 weeks.
:data:`PD_LATEST_DAYS` = 84
    A best response of PD means the *first* assessment already showed
    progression: had it shown SD (after the minimum interval), the best
    response would be SD whatever followed. So a PD patient's first
    progression falls at the first assessment (6-8 weeks); 12 weeks allows a
    scan delayed by up to a month. Later than that the best response should
    read SD. A PD patient must also have progressed (``pfs1_event`` 1 with a
    progression, not censored and not "death" without progression).
:data:`SECOND_PROGRESSION_MIN_DAYS` = 28
    A second progression is again a radiological finding that needs a new
    scan after the one showing the first progression, and after the change
    of treatment that follows it; restaging earlier than 4 weeks is not done
    and would not be read as progression of the new treatment. Death may
    come sooner, so the rule distinguishes the two: where
    ``second_progression_date`` / ``death_date`` exist they tell which event
    ended PFS2; with durations only, a PFS2 event is taken as a progression.
Date order and study window
    diagnosis <= crizotinib start <= first progression <= second progression
    <= death and last follow-up (last follow-up not after death). With a
    study card, crizotinib start must lie in the card's enrolment window
    (``study.enrolment``, months inclusive) and every date on or before its
    ``study.data_cutoff``.
First progression strictly before the last follow-up
    A patient alive at the end is seen after the progression is recorded
    (the next treatment is decided at a visit); a progression on the very
    last follow-up day leaves a PFS2 of 0 days, which carries no
    information and is in generated cohorts an artefact of censoring at the
    cut-off.
Prior radiotherapy only where there was disease
    Radiotherapy before crizotinib treats a lesion: brain RT (any, SRS or
    WBRT) needs brain metastases at baseline, bone RT bone metastases,
    adrenal RT adrenal metastases (prophylactic cranial irradiation is not
    given in NSCLC). Treated metastases stay baseline metastases: the paper
    compares baseline brain metastases with and without prior brain RT.
    Thoracic RT targets the primary and is always allowed. ``prior_rt`` is 1
    exactly when some ``prior_*_rt`` flag is 1 (the format has no other prior
    RT site), and SRS or WBRT imply ``prior_brain_rt``.
Failure pattern and sites (Ni et al. definitions)
    OF = progression only at sites with disease before crizotinib, DF = only
    at new sites, ODF = both; the flags ``fail_original_site`` /
    ``fail_new_site`` must say the same. A progressed patient has at least
    one ``fail_<site>``, or a failure of the primary (``initial_failure_location``
    primary or both: Table 2 counts the primary apart from its sites, so a
    primary-only failure may have none; its OF lung count, 7, is below the 10
    OF failures that involve the primary). An original site is an organ with baseline
    metastases (brain, liver, bone, adrenal, lung), the lung when the
    failure involves the primary (``initial_failure_location`` primary or
    both: the primary tumour is in the lung) and the regional lymph nodes
    (the primary's nodal region). Baseline disease of distant lymph nodes
    and "other" sites is not recorded, so they may be either. Hence OF
    failures only at original sites; DF at least one new site, none that is
    surely original, and not in the primary (location "metastasis"); ODF at
    least one site that can be original and one that can be new. A lung
    failure of an OF patient whose location is "metastasis" only is a lung
    metastasis and needs baseline lung metastases.
Brain progression type, salvage RT, treatment after progression
    ``brain_progression_type`` is filled exactly for brain failures. Salvage
    RT (eligibility and treatment), CBPD and the next systemic therapy exist
    only after a first progression; a patient treated was eligible, for the
    same technique. WBRT after WBRT before crizotinib is not a rule here:
    re-irradiating the whole brain is uncommon but practised (a reduced dose
    for multiple progression), the paper considers WBRT for patients without
    prior WBRT only "generally", and its counts need one multiple brain
    progression after prior WBRT among the 19 WBRT-eligible (card
    ``salvage.eligible_wbrt.n``). The reconstruction's count skeleton is
    stricter: it gives no salvage WBRT after prior WBRT.
T stage and tumour size (AJCC 7th edition)
    The patients were diagnosed 2013-2018, staged with the AJCC 7th edition
    (the 8th took effect in 2018): T1 <= :data:`T1_MAX_CM` (3 cm), T2 <=
    :data:`T2_MAX_CM` (7 cm) (a T2 may be smaller, by pleural or bronchial
    involvement), T3 and T4 may be so by invasion at any size. A size of 0
    means no measurable primary at baseline (resected before, or occult):
    the T stage is then the one recorded at diagnosis, any of T0-T4 (the
    paper prints a minimum size of 0.0 cm in both groups while every patient
    is T1-2 or T3-4). A T0 (no primary) has no size above 0.
Metastatic organs and lesions
    Every metastatic organ holds at least one lesion (organs <= lesions);
    the organ count includes every organ flag (lung, liver, brain, adrenal,
    bone) that is set; ``brain_mets_burden`` is filled exactly for baseline
    brain metastases.
Age and tumour size (with a study card)
    Inside the ranges the paper prints (Table 1 medians' ranges, read from the
    card's ``t1.age.median.all`` and ``t1.tumor_size.median.all``): a
    reconstruction of the published cohort cannot have patients outside
    them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from failpattern.errors import InputError

from failpattern.cohort.dates import DAYS_PER_MONTH

__all__ = ["CLINICAL_RULES", "FIRST_ASSESSMENT_DAYS", "PD_LATEST_DAYS", "SECOND_PROGRESSION_MIN_DAYS",
           "T1_MAX_CM", "T2_MAX_CM", "ClinicalRule", "check_clinical"]

#: First RECIST response assessment, days after crizotinib start (~6 weeks).
FIRST_ASSESSMENT_DAYS = 42
#: Latest first progression for a best response of PD, days (first assessment at 6-8 weeks + 4 weeks' delay).
PD_LATEST_DAYS = 84
#: Fewest days between a first and a second progression (a new scan after a change of treatment).
SECOND_PROGRESSION_MIN_DAYS = 28
#: Largest primary tumour of a T1 (AJCC 7th edition), cm.
T1_MAX_CM = 3.0
#: Largest primary tumour of a T2 (AJCC 7th edition), cm.
T2_MAX_CM = 7.0

_ORGANS = ("lung", "liver", "brain", "adrenal", "bone")
_SITES = ("lung", "liver", "brain", "bone", "adrenal", "regional_ln", "distant_ln", "other")
_PROGRESSION = ("of", "df", "odf")
_CARD_IDS = {"age_years": "t1.age.median.all", "primary_tumor_size_cm": "t1.tumor_size.median.all"}

_Hit = tuple  # (mask: ndarray of bool, column: str, reason: Callable[[int], str])


# ----------------------------------------------------------------------------- reading the frame
class _View:
    """Typed, cached access to a cohort frame: numbers, lower-case text and dates as day numbers."""

    def __init__(self, frame: pd.DataFrame, limits: dict | None):
        self.frame = frame
        self.n = len(frame)
        self.limits = limits
        self._cache: dict = {}

    def has(self, name: str) -> bool:
        return name in self.frame.columns

    def num(self, name: str) -> np.ndarray:
        """Floats, NaN where the column is missing or the cell empty or not a number."""
        key = ("num", name)
        if key not in self._cache:
            if not self.has(name):
                v = np.full(self.n, np.nan)
            else:
                s = self.frame[name]
                if s.dtype == bool:
                    s = s.astype(np.int8)
                v = pd.to_numeric(s.astype(object).where(s.notna(), np.nan), errors="coerce")
                v = np.asarray(v, dtype=np.float64)
            self._cache[key] = v
        return self._cache[key]

    def text(self, name: str) -> np.ndarray:
        """Lower-case stripped text, ``""`` where missing or empty."""
        key = ("text", name)
        if key not in self._cache:
            if not self.has(name):
                v = np.full(self.n, "", dtype=object)
            else:
                s = self.frame[name]
                v = s.astype(object).where(s.notna(), "").astype(str).str.strip().str.lower().to_numpy(object)
            self._cache[key] = v
        return self._cache[key]

    def day(self, name: str) -> np.ndarray:
        """Dates as float days since 1970-01-01, NaN where missing, empty or not a date."""
        key = ("day", name)
        if key not in self._cache:
            if not self.has(name):
                v = np.full(self.n, np.nan)
            else:
                s = self.frame[name]
                if not pd.api.types.is_datetime64_any_dtype(s):
                    s = pd.to_datetime(s.astype(object).where(s.notna(), None), errors="coerce",
                                       format="ISO8601")
                if getattr(s.dt, "tz", None) is not None:
                    s = s.dt.tz_localize(None)
                ns = s.to_numpy(dtype="datetime64[ns]")
                v = np.where(np.isnat(ns), np.nan, ns.astype("datetime64[D]").astype(np.int64).astype(float))
            self._cache[key] = v
        return self._cache[key]

    def flag(self, name: str, value: int) -> np.ndarray:
        """True where the 0/1 column equals ``value`` (False where missing or empty)."""
        return self.num(name) == value

    # derived quantities
    @property
    def progressed(self) -> np.ndarray:
        """A first progression is recorded (pattern OF/DF/ODF, or a first progression date)."""
        key = ("progressed",)
        if key not in self._cache:
            pattern = self.text("failure_pattern")
            prog = np.isin(pattern, _PROGRESSION) | ((pattern == "") & ~np.isnan(self.day("first_progression_date")))
            if not self.has("failure_pattern") and not self.has("first_progression_date"):
                prog = self.flag("pfs1_event", 1) & (self.flag("fail_original_site", 1) | self.flag("fail_new_site", 1))
            self._cache[key] = prog
        return self._cache[key]

    @property
    def not_progressed(self) -> np.ndarray:
        """Known not to have progressed: censored, or failure_pattern "death"."""
        pattern = self.text("failure_pattern")
        return (self.flag("pfs1_event", 0) | (pattern == "death")) & ~self.progressed

    def pfs1_days(self) -> tuple[np.ndarray, np.ndarray]:
        """PFS1 in days (from the dates where both are there, else from pfs1_months) and the column it came from."""
        start = self.day("crizotinib_start_date")
        dated = self.day("first_progression_date") - start
        months = np.round(self.num("pfs1_months") * DAYS_PER_MONTH)
        use_date = self.progressed & ~np.isnan(dated)
        days = np.where(use_date, dated, months)
        col = np.where(use_date, "first_progression_date", "pfs1_months")
        return days, col


def _any(*masks) -> np.ndarray:
    out = masks[0].copy()
    for m in masks[1:]:
        out |= m
    return out


def _fmt(x) -> str:
    if isinstance(x, (float, np.floating)):
        if np.isnan(x):
            return "empty"
        return f"{x:g}"
    return str(x)


def _iso(day: float) -> str:
    return str(np.datetime64(int(day), "D"))


# ----------------------------------------------------------------------------- the rules
def _first_scan(v: _View) -> list[_Hit]:
    days, col = v.pfs1_days()
    resp = v.text("best_response")
    early = v.progressed & np.isin(resp, ("cr", "pr", "sd")) & (days < FIRST_ASSESSMENT_DAYS)
    hits = []
    for c in ("first_progression_date", "pfs1_months"):
        m = early & (col == c)
        if m.any():
            hits.append((m, c, lambda i: (
                f"first progression {days[i]:.0f} days after crizotinib start with best response "
                f"{resp[i].upper()}; a RECIST response needs a scan, the first at about 6 weeks, so only a "
                f"PD patient can progress before day {FIRST_ASSESSMENT_DAYS}")))
    return hits


def _response_scan(v: _View) -> list[_Hit]:
    days, _ = v.pfs1_days()
    resp = v.text("best_response")
    m = ~v.progressed & np.isin(resp, ("cr", "pr", "sd")) & (days < FIRST_ASSESSMENT_DAYS)
    return [(m, "pfs1_months", lambda i: (
        f"PFS1 ends (censored or death) {days[i]:.0f} days after crizotinib start, yet best response is "
        f"{resp[i].upper()}: a RECIST response needs a scan at about 6 weeks (day {FIRST_ASSESSMENT_DAYS})"))]


def _pd_progression(v: _View) -> list[_Hit]:
    resp = v.text("best_response")
    pd_ = resp == "pd"
    pattern = v.text("failure_pattern")
    censored = pd_ & v.flag("pfs1_event", 0)
    death = pd_ & (pattern == "death") & ~censored
    days, col = v.pfs1_days()
    late = pd_ & v.progressed & (days > PD_LATEST_DAYS)
    hits = [(censored, "pfs1_event", lambda i: (
                "best response PD means progression was seen at the first assessment, but PFS1 is censored "
                "without progression")),
            (death, "failure_pattern", lambda i: (
                "best response PD means progression was seen at the first assessment, but the first failure "
                "is recorded as death without progression"))]
    for c in ("first_progression_date", "pfs1_months"):
        hits.append((late & (col == c), c, lambda i: (
            f"best response PD but first progression only {days[i]:.0f} days after crizotinib start; PD is "
            f"progression at the first assessment (6-8 weeks), so it is expected by day {PD_LATEST_DAYS} "
            "(later, the best response would be SD)")))
    return hits


def _second_progression(v: _View) -> list[_Hit]:
    ev = v.flag("pfs2_event", 1) & v.progressed
    fp, sp, dd = v.day("first_progression_date"), v.day("second_progression_date"), v.day("death_date")
    by_date = ~np.isnan(sp) & ~np.isnan(fp)  # a second progression date is an event whatever pfs2_event says
    gap_date = sp - fp
    # an event without a second-progression date is a death when a death date says so, else a progression
    undated = ev & np.isnan(sp) & np.isnan(dd)
    gap_months = np.round(v.num("pfs2_months") * DAYS_PER_MONTH)
    m1 = by_date & (gap_date < SECOND_PROGRESSION_MIN_DAYS)
    m2 = ~by_date & undated & (gap_months < SECOND_PROGRESSION_MIN_DAYS)
    why = (f"a second progression needs a new scan after the change of treatment at the first, no sooner "
           f"than {SECOND_PROGRESSION_MIN_DAYS} days (a death may come earlier)")
    return [(m1, "second_progression_date", lambda i: (
                f"second progression {gap_date[i]:.0f} days after the first; " + why)),
            (m2, "pfs2_months", lambda i: (
                f"PFS2 ends with an event {gap_months[i]:.0f} days after the first progression, with no death "
                "recorded, so it is a second progression; " + why))]


_ORDER = ("diagnosis_date", "crizotinib_start_date", "first_progression_date", "second_progression_date")
_NAMES = {"diagnosis_date": "diagnosis", "crizotinib_start_date": "crizotinib start",
          "first_progression_date": "first progression", "second_progression_date": "second progression",
          "death_date": "death", "last_followup_date": "last follow-up"}


def _date_order(v: _View) -> list[_Hit]:
    hits = []
    seen = np.full(v.n, np.nan)  # latest earlier date so far
    which = np.full(v.n, "", dtype=object)
    for name in _ORDER + ("death_date", "last_followup_date"):
        d = v.day(name)
        bad = d < seen  # NaN compares False
        if name == "last_followup_date":
            dd = v.day("death_date")
            after_death = d > dd
            hits.append((after_death & ~bad, name, lambda i, d=d, dd=dd: (
                f"last follow-up is after death ({_iso(dd[i])})")))
        prev, prev_day = which.copy(), seen.copy()
        hits.append((bad, name, lambda i, name=name, prev=prev, prev_day=prev_day: (
            f"{_NAMES[name]} is before {_NAMES[prev[i]]} ({_iso(prev_day[i])}); the course runs diagnosis, "
            "crizotinib start, first progression, second progression, then death or last follow-up")))
        if name in _ORDER:
            later = ~np.isnan(d) & ~(d <= seen)
            which = np.where(later, name, which)
            seen = np.where(later, d, seen)
    return hits


def _study_window(v: _View) -> list[_Hit]:
    lim = v.limits
    hits = []
    start = v.day("crizotinib_start_date")
    lo, hi = lim["enrol_from"], lim["enrol_to"]
    out = (start < lo) | (start > hi)
    hits.append((out, "crizotinib_start_date", lambda i: (
        f"crizotinib start outside the study's enrolment window {_iso(lo)} to {_iso(hi)}")))
    cut = lim["cutoff"]
    for name in _ORDER + ("death_date", "last_followup_date"):
        d = v.day(name)
        hits.append((d > cut, name, lambda i, name=name: (
            f"{_NAMES[name]} is after the study's data cut-off {_iso(cut)}")))
    return hits


def _last_followup(v: _View) -> list[_Hit]:
    fp, lfu = v.day("first_progression_date"), v.day("last_followup_date")
    alive = np.isnan(v.day("death_date")) & ~v.flag("os_event", 1)
    m = v.progressed & alive & (fp == lfu)
    return [(m, "first_progression_date", lambda i: (
        "first progression on the day of the last follow-up of a patient still followed; the patient is seen "
        "after a progression is recorded (the next treatment is decided), so it must come strictly before"))]


_PRIOR_SITE = (("prior_brain_rt", "brain_mets", "brain"), ("prior_brain_srs", "brain_mets", "brain"),
               ("prior_wbrt", "brain_mets", "brain"), ("prior_bone_rt", "bone_mets", "bone"),
               ("prior_adrenal_rt", "adrenal_mets", "adrenal"))
_PRIOR_FLAGS = ("prior_brain_rt", "prior_brain_srs", "prior_wbrt", "prior_thoracic_rt", "prior_bone_rt",
                "prior_adrenal_rt")


def _prior_site(v: _View) -> list[_Hit]:
    return [(v.flag(rt, 1) & v.flag(mets, 0), rt, lambda i, site=site, mets=mets: (
                f"radiotherapy to the {site} before crizotinib, but {mets} = 0 (no {site} metastases at "
                "baseline); radiotherapy treats disease at the site it targets"))
            for rt, mets, site in _PRIOR_SITE]


def _prior_flags(v: _View) -> list[_Hit]:
    flags = np.column_stack([v.num(c) for c in _PRIOR_FLAGS])
    some = (flags == 1).any(axis=1)
    none = (flags == 0).all(axis=1)  # every site flag present and 0
    rt = v.num("prior_rt")
    brain = v.flag("prior_brain_srs", 1) | v.flag("prior_wbrt", 1)
    return [(some & (rt == 0), "prior_rt", lambda i: (
                "prior_rt = 0 but a prior_*_rt flag is 1; prior_rt records any radiotherapy before crizotinib")),
            (none & (rt == 1), "prior_rt", lambda i: (
                "prior_rt = 1 but every prior_*_rt flag is 0; the format has no other site of prior radiotherapy")),
            (brain & v.flag("prior_brain_rt", 0), "prior_brain_rt", lambda i: (
                "prior_brain_rt = 0 but prior SRS or WBRT is recorded; both are brain radiotherapy"))]


def _pattern_flags(v: _View) -> list[_Hit]:
    pattern = v.text("failure_pattern")
    o, nw = v.num("fail_original_site"), v.num("fail_new_site")
    want = {"of": (1, 0), "df": (0, 1), "odf": (1, 1)}
    hits = []
    for p, (wo, wn) in want.items():
        m = (pattern == p) & (((o == 1 - wo)) | (nw == 1 - wn))
        hits.append((m, "failure_pattern", lambda i, p=p, wo=wo, wn=wn: (
            f"failure pattern {p.upper()} needs fail_original_site = {wo} and fail_new_site = {wn}, the file has "
            f"{_fmt(o[i])} and {_fmt(nw[i])} (OF = original sites only, DF = new sites only, ODF = both)")))
    return hits


def _site_tables(v: _View):
    """Per failure site: fail flag, 'surely original', 'surely new' (0/1 tri-state from the baseline)."""
    loc = v.text("initial_failure_location")
    primary = np.isin(loc, ("primary", "both"))
    fail, orig, new = {}, {}, {}
    for s in _SITES:
        fail[s] = v.flag(f"fail_{s}", 1)
    for s in ("liver", "brain", "bone", "adrenal"):
        orig[s] = v.flag(f"{s}_mets", 1)
        new[s] = v.flag(f"{s}_mets", 0)
    orig["lung"] = v.flag("lung_mets", 1) | primary
    new["lung"] = v.flag("lung_mets", 0) & ~primary
    orig["regional_ln"], new["regional_ln"] = np.ones(v.n, bool), np.zeros(v.n, bool)
    for s in ("distant_ln", "other"):  # baseline not recorded: either
        orig[s], new[s] = np.zeros(v.n, bool), np.zeros(v.n, bool)
    return fail, orig, new, loc


def _progression_site(v: _View) -> list[_Hit]:
    cells = np.column_stack([v.num(f"fail_{s}") for s in _SITES])
    filled = ~np.isnan(cells)
    primary = np.isin(v.text("initial_failure_location"), ("primary", "both"))
    m = v.progressed & filled.any(axis=1) & ~(cells == 1).any(axis=1) & ~primary
    col = next((f"fail_{s}" for s in _SITES if v.has(f"fail_{s}")), "fail_lung")
    return [(m, col, lambda i: "a first progression is recorded but no fail_<site> flag is 1 and the "
                              "primary is not involved; a progression happens somewhere")]


_MET_COL = {"lung": "lung_mets", "liver": "liver_mets", "brain": "brain_mets", "bone": "bone_mets",
            "adrenal": "adrenal_mets"}


def _of_sites(v: _View) -> list[_Hit]:
    fail, _, new, loc = _site_tables(v)
    of = v.text("failure_pattern") == "of"
    hits = []
    for s in ("brain", "liver", "bone", "adrenal"):
        hits.append((of & fail[s] & new[s], f"fail_{s}", lambda i, s=s: (
            f"an OF (original sites only) failure in the {s}, but {_MET_COL[s]} = 0: the {s} had no disease "
            "before crizotinib, so it is a new site (DF or ODF)")))
    lung_new = of & fail["lung"] & new["lung"]
    hits.append((lung_new & (loc == "metastasis"), "initial_failure_location", lambda i: (
        "an OF failure in the lung located in 'metastasis' only needs baseline lung metastases (lung_mets = 1); "
        "without them the lung failure is either the primary (location primary or both) or a new site")))
    hits.append((lung_new & (loc != "metastasis"), "fail_lung", lambda i: (
        "an OF failure in the lung, but lung_mets = 0 and the failure does not involve the primary "
        "(initial_failure_location primary or both): the lung is then a new site")))
    return hits


def _df_sites(v: _View) -> list[_Hit]:
    fail, orig, _, loc = _site_tables(v)
    df = v.text("failure_pattern") == "df"
    hits = []
    hits.append((df & np.isin(loc, ("primary", "both")), "initial_failure_location", lambda i: (
        f"a DF (new sites only) failure located in '{loc[i]}': the primary tumour is an original site")))
    for s in ("brain", "liver", "bone", "adrenal", "lung", "regional_ln"):
        why = ("the primary's regional nodes are an original site" if s == "regional_ln" else
               f"{_MET_COL[s]} = 1, the {s} had disease before crizotinib")
        hits.append((df & fail[s] & orig[s] & ~np.isin(loc, ("primary", "both")), f"fail_{s}",
                     lambda i, s=s, why=why: f"a DF (new sites only) failure in the {s}, but {why}"))
    can_new = _any(*[fail[s] & ~orig[s] for s in _SITES])
    flagged = _any(*[fail[s] for s in _SITES])
    hits.append((df & flagged & ~can_new, "failure_pattern", lambda i: (
        "a DF (new sites only) failure, but every failure site had disease before crizotinib; DF needs at least "
        "one site without baseline disease")))
    return hits


def _odf_sites(v: _View) -> list[_Hit]:
    fail, orig, new, loc = _site_tables(v)
    odf = v.text("failure_pattern") == "odf"
    flagged = _any(*[fail[s] for s in _SITES])
    can_orig = _any(*[fail[s] & ~new[s] for s in _SITES]) | np.isin(loc, ("primary", "both"))
    can_new = _any(*[fail[s] & ~orig[s] for s in _SITES])
    return [(odf & flagged & ~can_orig, "failure_pattern", lambda i: (
                "an ODF failure (original and new sites) with no failure at a site that had disease before "
                "crizotinib")),
            (odf & flagged & ~can_new, "failure_pattern", lambda i: (
                "an ODF failure (original and new sites) with every failure site diseased before crizotinib; "
                "it needs at least one new site"))]


def _brain_type(v: _View) -> list[_Hit]:
    fb = v.num("fail_brain")
    t = v.text("brain_progression_type")
    has_t = v.has("brain_progression_type")
    return [((fb == 1) & has_t & (t == ""), "brain_progression_type", lambda i: (
                "brain failure (fail_brain = 1) without a brain progression type (oligo or multiple)")),
            ((fb == 0) & (t != ""), "brain_progression_type", lambda i: (
                f"brain progression type '{t[i]}' but fail_brain = 0"))]


def _salvage(v: _View) -> list[_Hit]:
    none = v.not_progressed
    hits = []
    for c in ("salvage_rt_eligible", "salvage_rt", "cbpd"):
        hits.append((none & v.flag(c, 1), c, lambda i, c=c: (
            f"{c} = 1 in a patient without a first progression; it is a decision taken at progression")))
    for c in ("salvage_rt_eligible_technique", "salvage_rt_technique", "next_systemic_therapy"):
        t = v.text(c)
        hits.append((none & (t != ""), c, lambda i, c=c: (
            f"{c} is filled in a patient without a first progression; it is a decision taken at progression")))
    el, tr = v.num("salvage_rt_eligible"), v.num("salvage_rt")
    et, tt = v.text("salvage_rt_eligible_technique"), v.text("salvage_rt_technique")
    hits.append(((tr == 1) & (el == 0), "salvage_rt", lambda i: (
        "salvage radiotherapy given (salvage_rt = 1) to a patient not eligible for it (salvage_rt_eligible = 0)")))
    hits.append(((tr == 1) & (el != 0) & (et != "") & (tt != "") & (et != tt), "salvage_rt_technique", lambda i: (
        f"salvage technique given ({tt[i].upper()}) differs from the technique the patient was eligible for "
        f"({et[i].upper()})")))
    return hits


def _t_stage(v: _View) -> list[_Hit]:
    t = v.text("t_stage")
    size = v.num("primary_tumor_size_cm")
    return [((t == "t1") & (size > T1_MAX_CM), "primary_tumor_size_cm", lambda i: (
                f"a T1 primary measures at most {T1_MAX_CM:g} cm (AJCC 7th edition)")),
            ((t == "t2") & (size > T2_MAX_CM), "primary_tumor_size_cm", lambda i: (
                f"a T2 primary measures at most {T2_MAX_CM:g} cm (AJCC 7th edition; larger is T3)")),
            ((t == "t0") & (size > 0), "primary_tumor_size_cm", lambda i: (
                "T0 means no evidence of a primary tumour, but a primary size above 0 is recorded"))]


def _organs(v: _View) -> list[_Hit]:
    organs, lesions = v.num("n_metastatic_organs"), v.num("n_metastatic_lesions")
    flags = np.column_stack([v.num(f"{o}_mets") for o in _ORGANS])
    n_flag = (flags == 1).sum(axis=1)
    burden = v.text("brain_mets_burden")
    bm = v.num("brain_mets")
    return [(organs > lesions, "n_metastatic_organs", lambda i: (
                f"{organs[i]:g} metastatic organs but only {lesions[i]:g} lesions; every metastatic organ "
                "holds at least one lesion")),
            (organs < n_flag, "n_metastatic_organs", lambda i: (
                f"{organs[i]:g} metastatic organs but {n_flag[i]} organ flags (lung, liver, brain, adrenal, bone "
                "metastases) are set")),
            ((bm == 1) & v.has("brain_mets_burden") & (burden == ""), "brain_mets_burden", lambda i: (
                "brain metastases at baseline (brain_mets = 1) without a burden (oligo or multiple)")),
            ((bm == 0) & (burden != ""), "brain_mets_burden", lambda i: (
                f"brain metastases burden '{burden[i]}' but brain_mets = 0"))]


def _card_ranges(v: _View) -> list[_Hit]:
    hits = []
    for col, (lo, hi, nid) in v.limits["ranges"].items():
        x = v.num(col)
        hits.append((((x < lo) | (x > hi)), col, lambda i, lo=lo, hi=hi, nid=nid: (
            f"outside the range the paper prints, {lo:g} to {hi:g} (study card '{nid}')")))
    return hits


@dataclass(frozen=True)
class ClinicalRule:
    """One hard clinical plausibility rule.

    Attributes
    ----------
    name : str
        Identifier, reported in the ``rule`` column of :func:`check_clinical`.
    columns : tuple of str
        Columns the rule reads; a patient whose cells are empty is not checked.
    description : str
        The rule in words.
    check : callable
        Vectorised check over the frame view; returns ``(mask, column, reason)`` triples.
    needs_card : bool
        The rule reads the study card and is skipped without one.
    """

    name: str
    columns: tuple[str, ...]
    description: str
    check: Callable
    needs_card: bool = False


_R = ClinicalRule
_FAIL = tuple(f"fail_{s}" for s in _SITES)
_METS = tuple(f"{o}_mets" for o in _ORGANS)
#: The registry, in report order.
CLINICAL_RULES: tuple[ClinicalRule, ...] = (
    _R("progression_before_first_assessment", ("best_response", "pfs1_months", "failure_pattern",
                                               "crizotinib_start_date", "first_progression_date"),
       f"No first progression before the first response assessment (day {FIRST_ASSESSMENT_DAYS}) unless "
       "the best response is PD.", _first_scan),
    _R("response_before_first_assessment", ("best_response", "pfs1_months", "pfs1_event"),
       f"Best response CR/PR/SD needs PFS1 (censored or death) of at least {FIRST_ASSESSMENT_DAYS} days.",
       _response_scan),
    _R("pd_without_early_progression", ("best_response", "pfs1_event", "failure_pattern", "pfs1_months"),
       f"Best response PD implies a first progression, by day {PD_LATEST_DAYS}.", _pd_progression),
    _R("second_progression_too_soon", ("pfs2_event", "pfs2_months", "first_progression_date",
                                       "second_progression_date", "death_date"),
       f"No second progression within {SECOND_PROGRESSION_MIN_DAYS} days of the first (death may be earlier).",
       _second_progression),
    _R("dates_out_of_order", _ORDER + ("death_date", "last_followup_date"),
       "diagnosis <= crizotinib start <= first progression <= second progression <= death / last follow-up; "
       "last follow-up not after death.", _date_order),
    _R("outside_study_window", ("crizotinib_start_date",) + _ORDER + ("death_date", "last_followup_date"),
       "Crizotinib start inside the card's enrolment window; every date on or before its data cut-off.",
       _study_window, needs_card=True),
    _R("progression_on_last_followup", ("first_progression_date", "last_followup_date", "death_date"),
       "A first progression strictly before the last follow-up of a patient still followed.", _last_followup),
    _R("prior_rt_without_disease", tuple(r for r, _, _ in _PRIOR_SITE) + ("brain_mets", "bone_mets", "adrenal_mets"),
       "Prior brain RT (any, SRS, WBRT) needs brain metastases, bone RT bone, adrenal RT adrenal metastases.",
       _prior_site),
    _R("prior_rt_flags", ("prior_rt",) + _PRIOR_FLAGS,
       "prior_rt = 1 exactly when a prior_*_rt flag is 1; SRS or WBRT imply prior_brain_rt.", _prior_flags),
    _R("pattern_flags_mismatch", ("failure_pattern", "fail_original_site", "fail_new_site"),
       "OF = original site only, DF = new site only, ODF = both, in the flags as in the pattern.",
       _pattern_flags),
    _R("progression_without_site", ("failure_pattern", "pfs1_event") + _FAIL,
       "A progressed patient has at least one fail_<site> = 1, or a failure of the primary.", _progression_site),
    _R("of_at_new_site", ("failure_pattern", "initial_failure_location") + _FAIL + _METS,
       "OF failures only at sites with baseline disease (lung: the primary or lung metastases).", _of_sites),
    _R("df_at_original_site", ("failure_pattern", "initial_failure_location") + _FAIL + _METS,
       "DF failures not in the primary, none at a site with baseline disease, at least one new site.", _df_sites),
    _R("odf_sites", ("failure_pattern", "initial_failure_location") + _FAIL + _METS,
       "ODF needs a failure site that can be original and one that can be new.", _odf_sites),
    _R("brain_progression_type", ("fail_brain", "brain_progression_type"),
       "brain_progression_type filled exactly when fail_brain = 1.", _brain_type),
    _R("salvage_after_progression", ("salvage_rt_eligible", "salvage_rt_eligible_technique", "salvage_rt",
                                     "salvage_rt_technique", "cbpd", "next_systemic_therapy", "prior_wbrt"),
       "Salvage RT, CBPD, next therapy only after progression; treated "
       "implies eligible, same technique.", _salvage),
    _R("t_stage_size", ("t_stage", "primary_tumor_size_cm"),
       f"AJCC 7th: T1 <= {T1_MAX_CM:g} cm, T2 <= {T2_MAX_CM:g} cm; T0 has no size above 0.", _t_stage),
    _R("metastatic_counts", ("n_metastatic_organs", "n_metastatic_lesions", "brain_mets_burden") + _METS,
       "organs <= lesions; organs >= organ flags set; brain_mets_burden filled exactly with brain_mets.",
       _organs),
    _R("outside_published_range", ("age_years", "primary_tumor_size_cm"),
       "Age and primary tumour size inside the ranges the card prints.", _card_ranges, needs_card=True),
)

_COLUMNS_OUT = ["rule", "row", "patient_id", "column", "value", "message"]


def _limits(card) -> dict:
    """Enrolment window, data cut-off (day numbers) and the printed ranges, from a study card."""
    def day(ts) -> float:
        return float(ts.to_datetime64().astype("datetime64[D]").astype(np.int64))

    study = card.study
    enrol = study["enrolment"]

    def bound(text, end: bool) -> float:
        text = str(text)
        if len(text) == 7:  # YYYY-MM: the whole month
            per = pd.Period(text, "M")
            return day((per.end_time if end else per.start_time).normalize())
        return day(pd.Timestamp(text))

    ranges = {}
    for col, nid in _CARD_IDS.items():
        if nid in card:
            num = card.get(nid)
            if num.range_lower is not None and num.range_upper is not None:
                ranges[col] = (float(num.range_lower), float(num.range_upper), nid)
    return {"enrol_from": bound(enrol["from"], False), "enrol_to": bound(enrol["to"], True),
            "cutoff": bound(study["data_cutoff"], True), "ranges": ranges}


def check_clinical(frame, card=None) -> pd.DataFrame:
    """Every violation of the hard clinical plausibility rules, one row each.

    Parameters
    ----------
    frame : pandas.DataFrame or Cohort
        A cohort in the loader's column format (``docs/cohort-format.md``): typed
        as :func:`~failpattern.cohort.load_cohort` returns it, as
        :func:`~failpattern.simulate.simulate` makes it, or as read from CSV by
        pandas (dates as text). A :class:`~failpattern.cohort.Cohort` is read
        through its ``data``.
    card : StudyCard, optional
        The study card (``failpattern.study.load_study("ni2019")``). With it the
        enrolment window, data cut-off and the printed age and tumour size
        ranges are checked too; without it those rules are skipped.

    Returns
    -------
    pandas.DataFrame
        Columns ``rule`` (the rule's name, see :data:`CLINICAL_RULES`), ``row``
        (0-based position in ``frame``), ``patient_id`` (empty without that
        column), ``column`` (the cell at fault), ``value`` (its content as
        text) and ``message`` (a sentence naming the row, column, value and
        rule). Empty (with these columns) when every rule holds. Rules read
        only present, filled cells: a missing column or an empty cell is not
        a violation.

    Examples
    --------
    >>> from failpattern.simulate import simulate
    >>> check_clinical(simulate(seed=1)).empty
    True
    """
    if hasattr(frame, "data") and not isinstance(frame, pd.DataFrame):
        frame = frame.data
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"frame: a pandas DataFrame or a Cohort in the cohort format; got {type(frame).__name__}")
    frame = frame.reset_index(drop=True)
    limits = _limits(card) if card is not None else None
    v = _View(frame, limits)
    ids = v.text("patient_id") if v.has("patient_id") else None
    raw_ids = frame["patient_id"].astype(object).where(frame["patient_id"].notna(), "").astype(str).to_numpy() \
        if ids is not None else np.full(len(frame), "", dtype=object)
    rows = []
    for rule in CLINICAL_RULES:
        if rule.needs_card and limits is None:
            continue
        for mask, col, reason in rule.check(v):
            mask = np.asarray(mask, bool)
            if not mask.any() or col not in frame.columns:
                continue
            for i in np.flatnonzero(mask):  # violations only: build the report rows
                value = _cell(frame[col].iloc[i])
                who = f" (patient {raw_ids[i]})" if raw_ids[i] else ""
                rows.append((rule.name, int(i), raw_ids[i], col, value,
                             f"Row {i}{who}: {col} = {value}: {reason(i)} [rule {rule.name}]."))
    return pd.DataFrame(rows, columns=_COLUMNS_OUT).astype({"row": np.int64})


def _cell(x) -> str:
    if x is None or (not isinstance(x, str) and pd.isna(x)):
        return ""
    if isinstance(x, (pd.Timestamp, np.datetime64)):
        return str(pd.Timestamp(x).date())
    if isinstance(x, (float, np.floating)):
        return f"{float(x):g}"
    return str(x)
