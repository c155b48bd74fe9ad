"""The count skeleton of a reconstructed cohort, solved exactly with CP-SAT.

A published cohort is first rebuilt as a *categorical skeleton*: for each of the
``n`` patients, the RT group, the Table 1 covariates, the brain-metastasis burden,
radiotherapy before crizotinib, best response, first-failure pattern, location and
sites, brain progression, salvage eligibility and treatment, what followed the first
progression, a second progression and death. Times are placed later, by a search
(not here).

Why CP-SAT
----------
Every count the paper prints (Table 1 cell by cell, Table 2, the text) is a linear
equality over 0/1 variables of the patients, and every clinical plausibility rule
(brain RT only with brain metastases, OF failures only at original sites, no WBRT
after WBRT, ...) is a logical constraint over the same variables. Together they
are an integer feasibility problem, which OR-Tools' CP-SAT solves *exactly*, here in
about one deterministic second (see "Solve time"). The previous exact mode assigned covariates by hand-written
weighted sampling over a hard-coded table of patient types, with the published
counts typed into Python: every new rule meant re-deriving the table by hand,
and a rule the table did not encode was silently broken. Here the counts are read
from the study card by id in one place (:func:`count_rules`), the plausibility
rules are constraints (:func:`_plausibility`), and the solver finds a skeleton that
meets all of them, or proves none exists and names a conflicting subset of card ids
(:class:`~failpattern.errors.InputError`).

Variety and determinism. First a *canonical* skeleton: an unhinted CP-SAT solve with
seed 0, which depends on the card only (and is cached per card, with the model, in
the process). Then rounds of large-neighbourhood search (:func:`_improve`): each
re-solves a random half of the patients, the others fixed, minimising the *soft
cells*' deviation (:func:`soft_rules`: how many OF failures have each Table 3
covariate, how many events each group with a printed KM median has, as the
published ratios and medians imply; each patient off weighted by how much it moves the
log ratio) from the current skeleton, given as the hint.
Every count and rule keeps holding, since the current skeleton is always a solution
of the round; the rounds drawn change the joint distribution beyond the soft cells
(e.g. which OF patients are men *and* have bone metastases), which is the
skeleton's variety. Last, the patients are shuffled. Everything random (the rounds'
patients and solver seeds, the shuffle) is drawn from the caller's ``rng``; one
search worker and rounds bounded in *deterministic* time make the skeleton a
function of the card and ``rng`` alone (unless the wall-clock safety limit cuts a
solve).

A random linear objective over the patients' variables (the first design) is not
used: it breaks the exchangeability of the patients that CP-SAT's presolve exploits
(it finds the 93-patient orbitope), and on this model no solve with such an
objective proved optimality, or even found a first skeleton reliably, within 20 s.
A random hint over the whole cohort also misleads the search for about 1 seed in 4
(beyond 8 deterministic seconds); a hint over half the cohort, the rest fixed, does
not (12 of 12 rounds within 0.4). The soft cells' objective, symmetric in the
patients, stalls the unhinted solve too (no skeleton within 4 deterministic seconds,
with or without the objective, once their variables are in the model): they are added
after the canonical solve, and minimised by rounds over half the cohort only; random
hints in those rounds, with the deviation bounded, find nothing within a round's budget.

Solve time (Ni 2019, 93 patients, ~20,000 0/1 variables: 104 named per patient plus
the AND variables of the counts): canonical solve about 0.53 deterministic seconds,
most of it CP-SAT's presolve; each improvement round up to ``ROUND_DTIME``. CPU on a
loaded 2-core machine: about 2.5 s for the first call of a process (model build 0.4 s,
canonical solve), then 12-20 s per call for the rounds. The weighted deviation falls from
about 1000 to 20-65 (to 4-5 patients off: 3 of them cannot be avoided, since the implied
events of brain-metastasis patients with and without prior brain RT, read independently,
add up to 3 more than those of all of them).

Declared choices
----------------
Where the card contradicts itself, one side is kept (the entry in
:func:`count_rules` has ``enforced=False`` and says why, and the skeleton's
``summary`` shows its target beside what is achieved); the choices follow the
exact mode of ``docs/simulator.md``:

* ``t2.primary_only.all.n`` (9) is not enforced: Table 2's per-pattern columns
  (OF 7, DF 0, ODF 0) are kept.
* ``t2.metastasis_only.all.n`` (33) is not enforced: the per-pattern columns
  (16 + 12 + 7 = 35) are kept.
* ``t2.brain.all.n`` (31) is not enforced: the text's 30 brain failures
  (``brain_pd.n`` = 17 with BBM + 13 without) are kept.
* ``t2.brain.odf.n`` (10) is not enforced: with OF 15 and DF 6 kept, ODF holds
  30 - 15 - 6 = 9.

Where a rule the paper states contradicts its counts, the counts are kept:

* **WBRT eligibility after prior WBRT.** The paper says patients with
  multiple-progressive brain disease "and had not received prior WBRT" were
  "generally" WBRT-eligible, and that the 19 with multiple-progressive disease were
  eligible (``salvage.eligible_wbrt.n`` = 19 = ``multi_pd.bbm.n`` 15 +
  ``multi_pd.no_bbm.n`` 4). The counts force one of them to have had prior WBRT:
  of the 15 multiple-progressive BBM patients at most 13 had no brain RT
  (``brain_pd.bbm_no_prior_brain_rt.n``), so at least 2 had brain RT; the 4 oligo
  patients given SRS had none (``multi_pd.oligo_prior_srs.n`` = 0), which leaves
  the one multiple-metastatic SRS patient (``prior_rt.srs_multiple.n``) and at least
  one WBRT patient. So WBRT *eligibility* only requires multiple-progressive disease
  (the counts are kept, the "generally" read as a rule with exceptions), while
  salvage WBRT after prior WBRT stays excluded. (CP-SAT does not prove this
  pigeonhole argument within a minute, which is why it is stated here.)

Modelling choices (where the paper is silent):

* **RT group** (``rt_course.n``, "received radiation during their treatment
  course"; the card's population ``rt``: "at any time") = any radiotherapy
  course: before crizotinib, salvage RT after the first progression, or another
  course (e.g. after a second progression). The other courses are per site
  (``course_*`` = prior or salvage or other course at that site) and are needed by
  the site counts ``rt_course.*`` (WBRT 18 > 6 before crizotinib + 8 salvage).
  Prior RT or salvage RT implies the RT group; an RT-group patient without either
  has another course at a site with disease. (The stricter reading, RT group =
  prior or salvage RT, is also feasible with every count.)
* **Baseline sites outside Table 1.** Table 2 prints OF failures in distant lymph
  nodes (2) and other sites (1), which are original sites only if the patient had
  disease there at baseline. The skeleton therefore carries baseline distant-LN
  metastases (``met_distant_ln``) and a count of other metastatic organs
  (``other_organs``, 0-2), both counted in the number of metastatic organs; a
  distant-LN or other failure is new unless that baseline flag is set.
* **Location and sites.** A primary-only failure sets no site flag; a metastatic
  failure (metastasis only, or primary and metastasis) has at least one. A lung
  failure is original if the patient had lung metastases or the failure involves
  the primary; a regional-LN failure is always original (the primary's region).
  DF failures therefore never involve the primary.
* **Salvage SBRT** is given to at least one of the sites of ``rt_course.*``
  other than the brain (thoracic: a lung or regional-LN failure or the primary;
  bone, liver, adrenal, distant LN: a failure there); other courses at a site
  need disease there (baseline or failure); thoracic RT is always allowed; a
  second WBRT is never given.
* **Death** only after a second progression (the card's 52 PFS1 events are all
  progressions; PFS2 counts death as an event).
* **Symptoms** (``prior_rt.wbrt.symptomatic.n``, ``prior_rt.wbrt.alleviated.n``): flags
  of prior-WBRT patients (alleviated implies symptomatic).

Count ids the skeleton cannot express are listed in :data:`NOT_EXPRESSED`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
from ortools.sat.python import cp_model

from failpattern.errors import ConvergenceError, InputError
from failpattern.simulate.generate import SITES
from failpattern.study.design import BINARIES, T1_ROWS

__all__ = ["NOT_EXPRESSED", "CountRule", "CountSkeleton", "count_rules", "implied_events", "km_implied_events",
           "soft_rules", "solve_counts"]

#: Card count ids (``method: count``) that are not a count of the skeleton, and why.
NOT_EXPRESSED = {
    "cohort.screened.n": "patients screened before the imaging criteria; not in the cohort",
    "prior_rt.srs_multiple.lesions": "a number of lesions, not of patients",
}

#: Baseline metastatic organs of Table 1 plus distant lymph nodes (see the declared choices).
MET_SITES = ("lung", "liver", "brain", "adrenal", "bone", "distant_ln")
#: Sites of the RT courses of the whole treatment (``rt_course.<site>.n``).
COURSE_SITES = ("wbrt", "srs", "thoracic", "bone", "liver", "adrenal", "distant_ln")
#: Extracranial salvage SBRT targets (the course sites other than the brain).
SBRT_SITES = ("thoracic", "bone", "liver", "adrenal", "distant_ln")

# Table 1 rows (the design's T1_ROWS, levels from its BINARIES): the skeleton's literal of each, and
# whether that literal holds at the row's first level (where the design's grouping predicate holds)
_T1_LITERALS = {"sex": ("male", True), "histology": ("non_adeno", False), "ecog": ("ecog2", True),
                "t_stage": ("t34", True), "n_stage": ("n0", False), "met_organs": ("organs3", True),
                "met_lesions": ("lesions6", True), "lung_met": ("met_lung", True), "liver_met": ("met_liver", True),
                "brain_met": ("met_brain", True), "adrenal_met": ("met_adrenal", True),
                "bone_met": ("met_bone", True)}


def _t1_rows():
    """(row id, level where the literal is false, level where it holds, literal) of each Table 1 row."""
    out = []
    for row in T1_ROWS:
        literal, at_first = _T1_LITERALS[row]
        first, second = BINARIES[row].levels
        out.append((row, second, first, literal) if at_first else (row, first, second, literal))
    return tuple(out)


_T1_COLUMNS = (("all", ()), ("rt", ("rt",)), ("nonrt", ("~rt",)))
_PATTERNS = (("of", "pat_of"), ("df", "pat_df"), ("odf", "pat_odf"))
_LOCATIONS = (("primary_only", "loc_primary"), ("metastasis_only", "loc_metastasis"),
              ("primary_and_metastasis", "loc_both"))
_T2_SITE_IDS = {"lung": "lung", "liver": "liver", "brain": "brain", "bone": "bone",
                "adrenal": "adrenal", "regional_ln": "regional_ln", "distant_ln": "distant_ln",
                "other": "others"}


@dataclass(frozen=True)
class CountRule:
    """One count of the card as a constraint on the skeleton.

    Attributes
    ----------
    id : str
        Card number id.
    target : int
        Its value on the card.
    terms : tuple of str
        The patients counted: those for whom every term holds. A term is the name of
        a 0/1 variable of the model, ``"~name"`` for its negation; ``()`` counts
        everyone.
    enforced : bool
        ``False`` for the side of a contradiction the skeleton does not follow.
    choice : str or None
        Why it is not enforced (a declared choice), or a note.
    weight : int
        For a soft rule (:func:`soft_rules`): the weight of one patient of deviation.
    """

    id: str
    target: int
    terms: tuple[str, ...]
    enforced: bool = True
    choice: str | None = None
    weight: int = 1


def count_rules(card) -> list[CountRule]:
    """Every count constraint of the skeleton, its target read from ``card`` by id.

    This is the one place where published counts enter the reconstruction.

    Parameters
    ----------
    card : failpattern.study.StudyCard
        A card with the ids of Ni et al. 2019 (``load_study("ni2019")`` or an edited copy).

    Returns
    -------
    list of CountRule

    Raises
    ------
    InputError
        If the card lacks an id or a value is not a whole number.
    """
    spec: list[tuple[str, tuple[str, ...], bool, str | None]] = []

    def add(number_id, *terms, enforced=True, choice=None):
        spec.append((number_id, tuple(terms), enforced, choice))

    add("cohort.enrolled.n")
    add("rt_course.n", "rt")
    for row, lev0, lev1, lit in _t1_rows():
        for col, group in _T1_COLUMNS:
            add(f"t1.{row}.{lev1}.{col}.n", *group, lit)
            add(f"t1.{row}.{lev0}.{col}.n", *group, f"~{lit}")
    add("bbm.oligo.n", "oligo")
    add("bbm.multiple.n", "multiple")
    add("treatment.first_line.n", "~pretreated")
    add("treatment.pretreated.n", "pretreated")
    # radiotherapy before crizotinib
    add("prior_rt.n", "prior_any")
    add("prior_rt.brain.n", "prior_brain")
    add("prior_rt.thoracic.n", "prior_thoracic")
    add("prior_rt.bone.n", "prior_bone")
    add("prior_rt.adrenal.n", "prior_adrenal")
    add("prior_rt.extracranial.n", "prior_xrt")
    add("prior_rt.srs_oligo.n", "oligo", "prior_srs")
    add("prior_rt.srs_multiple.n", "multiple", "prior_srs")
    add("prior_rt.wbrt_oligo.n", "oligo", "prior_wbrt")
    add("prior_rt.wbrt_multiple.n", "multiple", "prior_wbrt")
    add("prior_rt.wbrt.n", "prior_wbrt")
    add("prior_rt.wbrt.symptomatic.n", "wbrt_symptomatic")
    add("prior_rt.wbrt.alleviated.n", "wbrt_alleviated")
    add("bbm.no_prior_brain_rt.n", "met_brain", "~prior_brain")
    add("bbm.oligo_no_prior_brain_rt.n", "oligo", "~prior_brain")
    # response and first progression
    for level in ("cr", "pr", "sd", "pd"):
        add(f"response.{level}.n", f"resp_{level}")
    add("progression1.n", "prog")
    for pat, lit in _PATTERNS:
        add(f"pattern.{pat}.n", lit)
    # brain progression (text, Fig. 3)
    add("brain_pd.n", "fail_brain")
    add("brain_pd.bbm.n", "met_brain", "fail_brain")
    add("brain_pd.no_bbm.n", "~met_brain", "fail_brain")
    add("multi_pd.bbm.n", "met_brain", "bpd_multiple")
    add("multi_pd.no_bbm.n", "~met_brain", "bpd_multiple")
    add("brain_pd.bbm_prior_brain_rt.n", "met_brain", "prior_brain", "fail_brain")
    add("brain_pd.bbm_no_prior_brain_rt.n", "met_brain", "~prior_brain", "fail_brain")
    add("multi_pd.oligo_no_prior_rt.n", "oligo", "~prior_brain", "bpd_multiple")
    add("multi_pd.oligo_prior_srs.n", "oligo", "prior_srs", "bpd_multiple")
    # Table 2: location and sites, per pattern and in all
    keep_columns = "contradicts Table 2's per-pattern columns, which are kept (docs/simulator.md)"
    for loc, lit in _LOCATIONS:
        for pat, plit in _PATTERNS:
            add(f"t2.{loc}.{pat}.n", plit, lit)
        dropped = loc in ("primary_only", "metastasis_only")
        add(f"t2.{loc}.all.n", lit, enforced=not dropped, choice=keep_columns if dropped else None)
    keep_text = ("contradicts the text's 30 brain failures (brain_pd.n = 17 BBM + 13 without), "
                 "which are kept (docs/simulator.md)")
    for site in SITES:
        sid = _T2_SITE_IDS[site]
        for pat, plit in _PATTERNS:
            dropped = (site, pat) == ("brain", "odf")
            add(f"t2.{sid}.{pat}.n", plit, f"fail_{site}", enforced=not dropped,
                choice=keep_text + "; ODF holds 30 - OF - DF" if dropped else None)
        dropped = site == "brain"
        add(f"t2.{sid}.all.n", "prog", f"fail_{site}", enforced=not dropped,
            choice=keep_text if dropped else None)
    # salvage radiotherapy after the first progression
    add("salvage.eligible.n", "elig_any")
    add("salvage.received.n", "salv_any")
    for tech in ("wbrt", "srs", "sbrt"):
        add(f"salvage.eligible_{tech}.n", f"elig_{tech}")
        add(f"salvage.{tech}.n", f"salv_{tech}")
    # after the first progression
    add("after_pd.cbpd.n", "next_cbpd")
    add("after_pd.discontinued.n", "prog", "~next_cbpd")
    add("after_pd.bsc.n", "next_bsc")
    add("after_pd.alk2.n", "next_alk2")
    add("after_pd.chemo.n", "next_chemo")
    add("progression2.n", "pfs2_event")
    add("deaths.n", "os_event")
    # radiotherapy courses over the whole treatment, by site (RT group)
    for site in COURSE_SITES:
        add(f"rt_course.{site}.n", "rt", f"course_{site}")

    missing = [s[0] for s in spec if s[0] not in card]
    if missing:
        raise InputError(f"study card {card.name!r} lacks the count ids {', '.join(missing)} "
                         "that the count skeleton needs")
    rules = []
    for number_id, terms, enforced, choice in spec:
        value = card.get(number_id).value
        if value is None or float(value) != int(value) or value < 0:
            raise InputError(f"study card {card.name!r}: {number_id!r} = {value!r} is not a "
                             "whole non-negative count")
        rules.append(CountRule(number_id, int(value), terms, enforced, choice))
    return rules


#: Table 3 covariates the skeleton carries: (card word, terms of the comparison level, the
#: card count id of that level's size). The comparison level is the plan's (``design.BINARIES``):
#: a Table 3 SHR is the subhazard of that level over the other's. Age and tumour size are
#: baseline details (swapped by the search), not skeleton variables.
_T3_CELLS = (
    ("sex", ("male",), "t1.sex.male.all.n"),
    ("histology", ("~non_adeno",), "t1.histology.adeno.all.n"),
    ("ecog", ("ecog2",), "t1.ecog.ecog2.all.n"),
    ("t_stage", ("t34",), "t1.t_stage.t3_4.all.n"),
    ("n_stage", ("~n0",), "t1.n_stage.n1_3.all.n"),
    ("met_organs", ("organs3",), "t1.met_organs.organs3plus.all.n"),
    ("met_lesions", ("lesions6",), "t1.met_lesions.lesions6plus.all.n"),
    *((f"{s}_met", (f"met_{s}",), f"t1.{s}_met.yes.all.n") for s in ("lung", "liver", "brain", "adrenal", "bone")),
    ("prior_lines", ("~pretreated",), "treatment.first_line.n"),
    ("prior_local_therapy", ("prior_any",), "prior_rt.n"),
    ("objective_response", ("~resp_sd", "~resp_pd"), None),
)


def implied_events(ratio: float, n1: int, n0: int, events: int) -> int:
    """Events in the comparison group that give roughly ``ratio`` as a subhazard ratio.

    A crude reading of a published ratio as a count: with a share ``p = d / n`` of each
    group failing by the end of follow-up, the cumulative subhazards are ``-log(1 - p)``
    and, under proportional subhazards, their ratio is the SHR. The count ``d1`` of the
    ``events`` (``events - d1`` in the other group) closest to ``ratio`` on the log scale
    is returned. Times and censoring are ignored (the search over times does the rest):
    on reconstructed cohorts this reading is within about 15% of the fitted Fine-Gray SHR.

    Parameters
    ----------
    ratio : float
        Published subhazard ratio (comparison group over reference group), > 0.
    n1, n0 : int
        Sizes of the comparison and reference groups.
    events : int
        Events of interest in both groups together.

    Returns
    -------
    int
        ``d1``, between ``max(0, events - n0)`` and ``min(n1, events)``.
    """
    def cumulative(d, n):  # -log(1 - d/n); a whole group failing counts as half a patient less
        return -np.log1p(-min(d / n, 1 - 0.5 / n)) if n > 0 else 0.0

    lo, hi = max(0, events - n0), min(n1, events)
    best, best_gap = lo, np.inf
    for d1 in range(lo, hi + 1):
        num, den = cumulative(d1, n1), cumulative(events - d1, n0)
        gap = abs(np.log(max(num, 1e-12) / max(den, 1e-12)) - np.log(ratio))
        if gap < best_gap:
            best, best_gap = d1, gap
    return best


#: KM medians of groups the skeleton expresses: (card id, terms of the group's events). The
#: group's size is its card population's; the parent is the whole cohort for PFS1 (its 52
#: events printed) and the progressed patients for PFS2 (28 second progressions).
_KM_CELLS = (
    ("pfs1.median.bbm", ("prog", "met_brain")),
    ("pfs1.median.bbm_prior_brain_rt", ("prog", "met_brain", "prior_brain")),
    ("pfs1.median.bbm_no_prior_brain_rt", ("prog", "met_brain", "~prior_brain")),
    ("pfs2.median.salvage_rt", ("pfs2_event", "salv_any")),
    ("pfs2.median.no_salvage_rt", ("pfs2_event", "~salv_any")),
    ("pfs2.median.cbpd", ("pfs2_event", "next_cbpd")),
    ("pfs2.median.non_cbpd", ("pfs2_event", "~next_cbpd")),
)
#: Per endpoint: the parent's median id, its size id and its event count id.
_KM_PARENTS = {"pfs1": ("pfs1.median.all", "cohort.enrolled.n", "progression1.n"),
               "pfs2": ("pfs2.median.all", "progression1.n", "progression2.n")}


def _weight(log_change: float) -> int:
    """A soft rule's integer weight: the change of a log ratio (or log hazard) that one patient
    of deviation makes, in hundredths (CP-SAT takes integer objectives). Weighing cells by it
    rather than by patients makes a patient in a 3-patient group count for what it moves."""
    return max(1, round(100 * float(log_change)))


def km_implied_events(median: float, n: int, parent: tuple[float, int, int], follow: np.ndarray) -> float:
    """Events in a group of ``n`` that give roughly the printed KM ``median``.

    A crude reading: exponential times with the group's median, censored by a follow-up
    distributed as ``c * follow``; the one unknown, the scale ``c``, is set so that the
    parent group (``parent`` = its median, size and printed event count) expects its
    printed events. The group expects ``n * (1 - mean(exp(-log(2) / median * c * follow)))``.

    Parameters
    ----------
    median : float
        The group's printed median (months).
    n : int
        Its size.
    parent : tuple
        ``(median, n, events)`` of the group it is part of.
    follow : numpy.ndarray
        Potential follow-up times (months), e.g. cut-off minus a uniform enrolment date.

    Returns
    -------
    float
        Expected events (not rounded); NaN if the parent's events cannot be reached.
    """
    from scipy.optimize import brentq

    def expected(m, size, c):
        return size * (1.0 - np.mean(np.exp(-np.log(2.0) / m * c * follow)))

    p_med, p_n, p_events = parent
    if not 0 < p_events < p_n:
        return float("nan")
    c = brentq(lambda c: expected(p_med, p_n, c) - p_events, 1e-6, 1e6)
    return float(expected(median, n, c))


def _km_rules(card) -> list[CountRule]:
    """Soft targets: events per KM-median group (:func:`km_implied_events`)."""
    try:
        study = card.study
        start = np.datetime64(f"{study['enrolment']['from']}-01", "D")
        end = np.datetime64(f"{study['enrolment']['to']}-01", "M") + 1  # first day after the last month
        cutoff = np.datetime64(str(study["data_cutoff"]), "D")
    except (KeyError, TypeError, ValueError):
        return []
    days_per_month = 365.25 / 12
    u = (np.arange(400) + 0.5) / 400  # enrolment dates, uniform over the window
    follow = ((cutoff - start).astype(float) - u * (end.astype("datetime64[D]") - start).astype(float)) / days_per_month
    out = []
    for number_id, terms in _KM_CELLS:
        endpoint = number_id.split(".")[0]
        ids = _KM_PARENTS[endpoint]
        if number_id not in card or not all(i in card for i in ids):
            continue
        number = card.get(number_id)
        n = card.populations[number.population].n if number.population in card.populations else None
        med, p_n, p_events = (card.get(i).value for i in ids)
        if n is None or number.value is None or med is None:
            continue
        expected = km_implied_events(float(number.value), int(n), (float(med), int(p_n), int(p_events)), follow)
        if np.isfinite(expected):
            events = round(float(expected))
            # one event more or less moves the group's log hazard by about 1/events
            out.append(CountRule(f"{number_id}.events", events, terms, enforced=False,
                                 choice=f"soft: events that give about {number_id} = {number.value}",
                                 weight=_weight(1 / max(events, 1))))
    return out


def soft_rules(card) -> list[CountRule]:
    """Soft targets of the skeleton: original-site failures (OF) per Table 3 covariate, events per KM group.

    The skeleton fixes how many OF patients have each covariate, and the search over
    times cannot move that, while Table 3's SHRs depend on it first. Each univariate
    SHR the card prints is read as a count (:func:`implied_events`); the solver brings
    the OF x covariate cells as close to these counts as the hard counts allow (the sum
    of absolute deviations is minimised, see :func:`solve_counts`). Likewise the events
    of each group with a printed KM median the skeleton expresses (brain metastases by
    prior brain RT for PFS1, salvage RT and CBPD for PFS2) are read from the medians
    (:func:`km_implied_events`): the search over times cannot give a group a late median
    when nearly all of it progresses.

    Parameters
    ----------
    card : failpattern.study.StudyCard
        The card (ids as :func:`count_rules`); a covariate whose SHR the card lacks is skipped.

    Returns
    -------
    list of CountRule
        ``enforced=False``; ``terms`` count the OF patients of the comparison level;
        ``choice`` names the SHR.
    """
    def value(number_id):
        return card.get(number_id).value if number_id in card else None

    n = int(value("cohort.enrolled.n"))
    events = value("pattern.of.n")
    out = []
    for word, terms, size_id in _T3_CELLS:
        ratio = value(f"t3.uni.{word}.shr")
        n1 = (value(size_id) if size_id else
              (value("response.cr.n") or 0) + (value("response.pr.n") or 0))
        if ratio is None or events is None or n1 is None or ratio <= 0:
            continue
        d1 = implied_events(float(ratio), int(n1), n - int(n1), int(events))
        # one patient moved between the groups moves the log ratio by about 1/d1 + 1/d0
        weight = _weight(1 / max(d1, 1) + 1 / max(int(events) - d1, 1))
        out.append(CountRule(f"t3.uni.{word}.of", d1, ("pat_of",) + terms, enforced=False,
                             choice=f"soft: OF patients that give about t3.uni.{word}.shr = {ratio}",
                             weight=weight))
    return out + _km_rules(card)


@dataclass(frozen=True, eq=False)
class CountSkeleton:
    """The categorical skeleton of a reconstructed cohort: one integer array per attribute.

    Codings follow :class:`failpattern.simulate.generate.Batch` where it has the field.
    0/1 flags unless stated.

    Attributes
    ----------
    rt : ndarray
        RT group (any radiotherapy during the treatment course).
    male, non_adeno, ecog2, t34, n0, organs3, lesions6 : ndarray
        Table 1 binaries (``organs3``: >= 3 metastatic organs; ``lesions6``: >= 6 lesions).
    organs : ndarray
        Number of metastatic organs (1-7), >= the baseline site flags set.
    met_lung, met_liver, met_brain, met_adrenal, met_bone : ndarray
        Baseline metastases (Table 1).
    met_distant_ln : ndarray
        Baseline distant lymph-node metastases (not in Table 1; see the declared choices).
    other_organs : ndarray
        Other metastatic organs at baseline (0-2; not in Table 1).
    pretreated : ndarray
        1 = one or two lines of chemotherapy before crizotinib, 0 = first line.
    burden : ndarray
        Brain-metastasis burden: 0 none, 1 oligo, 2 multiple.
    brain_rt : ndarray
        Brain RT before crizotinib: 0 none, 1 SRS, 2 WBRT.
    xrt : ndarray
        Extracranial RT before crizotinib: 0 none, 1 thoracic, 2 bone, 3 adrenal,
        4 thoracic + bone.
    wbrt_symptomatic, wbrt_alleviated : ndarray
        Prior WBRT for symptoms; symptoms alleviated.
    response : ndarray
        Best response: 0 CR, 1 PR, 2 SD, 3 PD.
    pattern : ndarray
        First failure: 0 none, 1 OF, 2 DF, 3 ODF.
    location : ndarray
        0 none, 1 primary only, 2 metastasis only, 3 primary and metastasis.
    fail_lung, fail_liver, fail_brain, fail_bone, fail_adrenal, fail_regional_ln, fail_distant_ln, fail_other : ndarray
        Sites of the first failure (Table 2).
    btype : ndarray
        Brain progression: 0 none, 1 oligo-progressive, 2 multiple-progressive.
    elig, salvage : ndarray
        Salvage RT eligibility / received: 0 none, 1 WBRT, 2 SRS, 3 SBRT.
    sbrt_thoracic, sbrt_bone, sbrt_liver, sbrt_adrenal, sbrt_distant_ln : ndarray
        Sites of salvage SBRT.
    course_wbrt, course_srs, course_thoracic, course_bone, course_liver, course_adrenal, course_distant_ln : ndarray
        Radiotherapy at that site at any time of the treatment course (``rt_course.*``).
    next : ndarray
        After the first progression: 0 crizotinib beyond progression (CBPD),
        1 supportive care, 2 ALK TKI, 3 chemotherapy, -1 no progression.
    pfs2_event, os_event : ndarray
        Second progression (PFS2 event); death (OS event).
    summary : pandas.DataFrame
        One row per count rule: ``id``, ``target``, ``achieved``, ``enforced``, ``choice``.
    solve_seconds : float
        Wall time of the CP-SAT solve.
    """

    rt: np.ndarray
    male: np.ndarray
    non_adeno: np.ndarray
    ecog2: np.ndarray
    t34: np.ndarray
    n0: np.ndarray
    organs: np.ndarray
    organs3: np.ndarray
    lesions6: np.ndarray
    met_lung: np.ndarray
    met_liver: np.ndarray
    met_brain: np.ndarray
    met_adrenal: np.ndarray
    met_bone: np.ndarray
    met_distant_ln: np.ndarray
    other_organs: np.ndarray
    pretreated: np.ndarray
    burden: np.ndarray
    brain_rt: np.ndarray
    xrt: np.ndarray
    wbrt_symptomatic: np.ndarray
    wbrt_alleviated: np.ndarray
    response: np.ndarray
    pattern: np.ndarray
    location: np.ndarray
    fail_lung: np.ndarray
    fail_liver: np.ndarray
    fail_brain: np.ndarray
    fail_bone: np.ndarray
    fail_adrenal: np.ndarray
    fail_regional_ln: np.ndarray
    fail_distant_ln: np.ndarray
    fail_other: np.ndarray
    btype: np.ndarray
    elig: np.ndarray
    salvage: np.ndarray
    sbrt_thoracic: np.ndarray
    sbrt_bone: np.ndarray
    sbrt_liver: np.ndarray
    sbrt_adrenal: np.ndarray
    sbrt_distant_ln: np.ndarray
    course_wbrt: np.ndarray
    course_srs: np.ndarray
    course_thoracic: np.ndarray
    course_bone: np.ndarray
    course_liver: np.ndarray
    course_adrenal: np.ndarray
    course_distant_ln: np.ndarray
    next: np.ndarray
    pfs2_event: np.ndarray
    os_event: np.ndarray
    summary: pd.DataFrame = field(repr=False)
    solve_seconds: float = 0.0

    @classmethod
    def array_fields(cls) -> tuple[str, ...]:
        """Names of the per-patient arrays, in order."""
        return tuple(f.name for f in fields(cls) if f.name not in ("summary", "solve_seconds"))

    @property
    def n(self) -> int:
        """Number of patients."""
        return len(self.rt)

    @property
    def mets(self) -> dict[str, np.ndarray]:
        """Baseline metastases by site, keyed as ``Batch.mets``."""
        return {s: getattr(self, f"met_{s}") for s in ("lung", "liver", "brain", "adrenal", "bone")}

    @property
    def fail(self) -> dict[str, np.ndarray]:
        """First-failure sites, keyed as ``Batch.fail`` (``generate.SITES``)."""
        return {s: getattr(self, f"fail_{s}") for s in SITES}

    @property
    def progressed(self) -> np.ndarray:
        """First progression (0/1)."""
        return (self.pattern > 0).astype(np.int8)

    def to_frame(self) -> pd.DataFrame:
        """The arrays as a DataFrame, one row per patient."""
        return pd.DataFrame({k: getattr(self, k) for k in self.array_fields()})


class _Model:
    """The CP-SAT model of the skeleton: named 0/1 variables per patient, and constraints."""

    def __init__(self, n: int):
        self.m = cp_model.CpModel()
        self.n = n
        self.v: dict[str, list] = {}
        self.ints: dict[str, list] = {}
        self._conj: dict[tuple, object] = {}

    # -- variables ----------------------------------------------------------------------
    def bools(self, *names: str) -> None:
        for name in names:
            self.v[name] = [self.m.new_bool_var(f"{name}[{i}]") for i in range(self.n)]

    def lit(self, term: str, i: int):
        if term.startswith("~"):
            return self.v[term[1:]][i].negated()
        return self.v[term][i]

    def onehot(self, parent: str | None, *names: str) -> None:
        """New 0/1 variables ``names``, exactly one of them set iff ``parent`` (always if None)."""
        self.bools(*names)
        for i in range(self.n):
            total = sum(self.v[k][i] for k in names)
            self.m.add(total == (1 if parent is None else self.lit(parent, i)))

    def or_of(self, name: str, terms: Iterable[str]) -> None:
        """New 0/1 variable ``name`` = OR of ``terms``."""
        terms = tuple(terms)
        self.bools(name)
        for i in range(self.n):
            x, lits = self.v[name][i], [self.lit(t, i) for t in terms]
            self.m.add_bool_or(lits).only_enforce_if(x)
            for lit in lits:
                self.m.add_implication(lit, x)

    def and_of(self, name: str, terms: Iterable[str]) -> None:
        """New 0/1 variable ``name`` = AND of ``terms``."""
        terms = tuple(terms)
        self.bools(name)
        for i in range(self.n):
            x, lits = self.v[name][i], [self.lit(t, i) for t in terms]
            self.m.add_bool_or([lit.negated() for lit in lits] + [x])
            for lit in lits:
                self.m.add_implication(x, lit)

    # -- constraints --------------------------------------------------------------------
    def implies(self, a: str, *b: str) -> None:
        """``a`` implies every term of ``b``."""
        for i in range(self.n):
            for t in b:
                self.m.add_implication(self.lit(a, i), self.lit(t, i))

    def implies_any(self, a: str, terms: Iterable[str]) -> None:
        """``a`` implies at least one of ``terms``."""
        terms = tuple(terms)
        for i in range(self.n):
            self.m.add_bool_or([self.lit(t, i) for t in terms]).only_enforce_if(self.lit(a, i))

    def indicator(self, terms: tuple[str, ...], i: int):
        """A linear expression equal to 1 iff every term holds for patient ``i``.

        A negated term in a conjunction is expanded, ``[A and not x] = [A] - [A and x]``,
        so that complements (Table 1's "No" rows) share the AND variables of their
        "Yes" rows instead of adding their own.
        """
        if len(terms) <= 1:
            return self.conj(terms, i)
        for k, t in enumerate(terms):
            if t.startswith("~"):
                rest = terms[:k] + terms[k + 1:]
                return self.indicator(rest, i) - self.indicator(rest + (t[1:],), i)
        return self.conj(terms, i)

    def conj(self, terms: tuple[str, ...], i: int):
        """A literal equal to the AND of ``terms`` for patient ``i`` (1 for ``()``)."""
        if not terms:
            return 1
        if len(terms) == 1:
            return self.lit(terms[0], i)
        key = (tuple(sorted(terms)), i)
        if key not in self._conj:
            x = self.m.new_bool_var(f"and{key}")
            lits = [self.lit(t, i) for t in terms]
            self.m.add_bool_or([lit.negated() for lit in lits] + [x])
            for lit in lits:
                self.m.add_implication(x, lit)
            self._conj[key] = x
        return self._conj[key]


def _plausibility(M: _Model) -> None:
    """Declare the variables of the skeleton and every clinical plausibility rule."""
    n = M.n
    m = M.m
    # baseline
    M.bools("rt", "male", "non_adeno", "ecog2", "t34", "n0", "organs3", "lesions6", "pretreated")
    M.bools(*(f"met_{s}" for s in MET_SITES))
    M.ints["other_organs"] = [m.new_int_var(0, 2, f"other_organs[{i}]") for i in range(n)]
    M.ints["organs"] = [m.new_int_var(1, len(MET_SITES) + 2, f"organs[{i}]") for i in range(n)]
    M.bools("met_other")
    for i in range(n):
        other, organs = M.ints["other_organs"][i], M.ints["organs"][i]
        # organs = flagged sites + other organs; >= 3 iff organs3; <= 5 with 1-5 lesions
        m.add(organs == sum(M.v[f"met_{s}"][i] for s in MET_SITES) + other)
        m.add(organs >= 3).only_enforce_if(M.v["organs3"][i])
        m.add(organs <= 2).only_enforce_if(M.v["organs3"][i].negated())
        m.add(organs <= 5).only_enforce_if(M.v["lesions6"][i].negated())
        m.add(other >= 1).only_enforce_if(M.v["met_other"][i])
        m.add(other == 0).only_enforce_if(M.v["met_other"][i].negated())
    # brain-metastasis burden only with brain metastases
    M.onehot("met_brain", "oligo", "multiple")
    # radiotherapy before crizotinib, only where there is disease (thoracic always allowed)
    M.bools("prior_srs", "prior_wbrt", "prior_thoracic", "prior_bone", "prior_adrenal")
    for i in range(n):
        m.add(M.v["prior_srs"][i] + M.v["prior_wbrt"][i] <= M.v["met_brain"][i])
        # xrt coding of Batch: adrenal RT alone
        m.add_implication(M.v["prior_adrenal"][i], M.v["prior_thoracic"][i].negated())
        m.add_implication(M.v["prior_adrenal"][i], M.v["prior_bone"][i].negated())
    M.implies("prior_bone", "met_bone")
    M.implies("prior_adrenal", "met_adrenal")
    M.or_of("prior_brain", ("prior_srs", "prior_wbrt"))
    M.or_of("prior_xrt", ("prior_thoracic", "prior_bone", "prior_adrenal"))
    M.or_of("prior_any", ("prior_brain", "prior_xrt"))
    M.bools("wbrt_symptomatic", "wbrt_alleviated")
    M.implies("wbrt_symptomatic", "prior_wbrt")
    M.implies("wbrt_alleviated", "wbrt_symptomatic")
    # best response; PD implies a first progression
    M.onehot(None, "resp_cr", "resp_pr", "resp_sd", "resp_pd")
    M.bools("prog")
    M.onehot("prog", "pat_of", "pat_df", "pat_odf")
    M.implies("resp_pd", "prog")
    # location and sites of the first failure
    M.onehot("prog", "loc_primary", "loc_metastasis", "loc_both")
    M.bools(*(f"fail_{s}" for s in SITES))
    for s in SITES:
        M.implies(f"fail_{s}", "prog", "~loc_primary")
    M.or_of("loc_metastatic", ("loc_metastasis", "loc_both"))
    M.implies_any("loc_metastatic", [f"fail_{s}" for s in SITES])
    M.or_of("loc_with_primary", ("loc_primary", "loc_both"))
    # a failure site is new if there was no disease there at baseline
    new_if = {"lung": ("~met_lung", "~loc_with_primary"), "liver": ("~met_liver",),
              "brain": ("~met_brain",), "bone": ("~met_bone",), "adrenal": ("~met_adrenal",),
              "distant_ln": ("~met_distant_ln",), "other": ("~met_other",)}
    for s, cond in new_if.items():
        M.and_of(f"new_{s}", (f"fail_{s}",) + cond)
        M.and_of(f"orig_{s}", (f"fail_{s}", f"~new_{s}"))
    M.or_of("any_new", [f"new_{s}" for s in new_if])
    M.or_of("any_orig", [f"orig_{s}" for s in new_if] + ["fail_regional_ln", "loc_with_primary"])
    M.implies("pat_of", "~any_new", "any_orig")
    M.implies("pat_df", "any_new", "~any_orig")
    M.implies("pat_odf", "any_new", "any_orig")
    # brain progression type only with a brain failure
    M.onehot("fail_brain", "bpd_oligo", "bpd_multiple")
    # salvage eligibility (WBRT: multiple-progressive, no prior WBRT; SRS: oligo-progressive;
    # SBRT: an extracranial failure) and salvage RT with the same technique
    M.onehot(None, "elig_none", "elig_wbrt", "elig_srs", "elig_sbrt")
    M.or_of("elig_any", ("elig_wbrt", "elig_srs", "elig_sbrt"))
    M.implies("elig_any", "prog")
    M.implies("elig_wbrt", "bpd_multiple")
    M.implies("elig_srs", "bpd_oligo")
    M.implies_any("elig_sbrt", [f"fail_{s}" for s in SITES if s != "brain"] + ["loc_with_primary"])
    M.bools("salv_wbrt", "salv_srs", "salv_sbrt")
    for tech in ("wbrt", "srs", "sbrt"):
        M.implies(f"salv_{tech}", f"elig_{tech}")
    M.implies("salv_wbrt", "~prior_wbrt")
    M.or_of("salv_any", ("salv_wbrt", "salv_srs", "salv_sbrt"))
    # salvage SBRT sites
    M.bools(*(f"sbrt_{s}" for s in SBRT_SITES))
    M.or_of("sbrt_some", [f"sbrt_{s}" for s in SBRT_SITES])
    for i in range(n):
        m.add(M.v["sbrt_some"][i] == M.v["salv_sbrt"][i])
    M.implies_any("sbrt_thoracic", ("fail_lung", "fail_regional_ln", "loc_with_primary"))
    for s in ("bone", "liver", "adrenal", "distant_ln"):
        M.implies(f"sbrt_{s}", f"fail_{s}")
    # other RT courses (not before crizotinib, not salvage), only where there is disease
    M.bools(*(f"other_{s}" for s in COURSE_SITES))
    M.or_of("brain_disease", ("met_brain", "fail_brain"))
    M.implies("other_wbrt", "brain_disease", "~prior_wbrt", "~salv_wbrt")
    M.implies("other_srs", "brain_disease", "~prior_srs", "~salv_srs")
    M.implies("other_thoracic", "~prior_thoracic", "~sbrt_thoracic")
    for s in ("bone", "liver", "adrenal", "distant_ln"):
        M.implies_any(f"other_{s}", (f"met_{s}", f"fail_{s}"))
        excl = [f"~sbrt_{s}"] + ([f"~prior_{s}"] if s in ("bone", "adrenal") else [])
        M.implies(f"other_{s}", *excl)
    sources = {"wbrt": ("prior_wbrt", "salv_wbrt"), "srs": ("prior_srs", "salv_srs"),
               "thoracic": ("prior_thoracic", "sbrt_thoracic"),
               "bone": ("prior_bone", "sbrt_bone"), "liver": ("sbrt_liver",),
               "adrenal": ("prior_adrenal", "sbrt_adrenal"), "distant_ln": ("sbrt_distant_ln",)}
    for s in COURSE_SITES:
        M.or_of(f"course_{s}", sources[s] + (f"other_{s}",))
    # RT group = any radiotherapy course
    M.or_of("any_course", [f"course_{s}" for s in COURSE_SITES])
    for i in range(n):
        m.add(M.v["rt"][i] == M.v["any_course"][i])
    # after the first progression: CBPD or a next therapy
    M.onehot("prog", "next_cbpd", "next_bsc", "next_alk2", "next_chemo")
    M.bools("pfs2_event", "os_event")
    M.implies("pfs2_event", "prog")
    M.implies("os_event", "pfs2_event")


#: Solver settings. Pure CDCL search (no LP relaxation) with symmetry detection in presolve
#: only: on this model the LP-guided default, and symmetry handling during search, found no
#: skeleton in 40 s where this finds one in about 0.5 deterministic seconds.
_PARAMS = {"num_workers": 1, "linearization_level": 0, "symmetry_level": 1}
#: Rounds of re-solving a random part of the cohort (:func:`_improve`). In each round a random
#: ``LNS_FREE`` share of the patients is freed, the others are fixed at their current
#: values; a round is bounded in deterministic time (``ROUND_DTIME``) and one that finds
#: nothing better leaves the skeleton as it was. The fixed patients make a round small and
#: always feasible (the current skeleton is a solution).
LNS_FREE = 0.5
ROUND_DTIME = 1.0
#: Fallback when the canonical (unhinted) solve finds nothing within its budget
#: (``ATTEMPT_DTIME``, e.g. on an edited card): hinted attempts from ``rng``. A random hint
#: over the whole cohort sends the search down a long path for about 1 seed in 4.
ATTEMPT_DTIME = 4.0
#: The rounds that move the canonical skeleton toward the soft cells (:func:`_improve`): at most
#: ``IMPROVE_ROUNDS``, and no more after ``IMPROVE_PATIENCE`` rounds without a gain. A round
#: costs 1-1.5 CPU seconds on Ni 2019.
IMPROVE_ROUNDS = 12
IMPROVE_PATIENCE = 3
HINTED_ATTEMPTS = 3

# card rules -> (model, canonical solution); the model is reused, its domains restored
_CACHE: dict[tuple, tuple] = {}
_CACHE_LOCK = threading.Lock()


def _build(n: int, rules: list[CountRule], *, assumptions: bool) -> tuple[_Model, dict[str, object]]:
    """The model: plausibility rules, and every enforced count.

    With ``assumptions``, each count is enforced by its own literal (returned by id), so
    that an infeasible model can name a conflicting subset of counts; without, the counts
    are hard constraints (faster).
    """
    M = _Model(n)
    _plausibility(M)
    assume = {}
    for r in rules:
        if not r.enforced:
            continue
        ct = M.m.add(sum(M.conj(r.terms, i) for i in range(n)) == r.target)
        if assumptions:
            lit = M.m.new_bool_var(f"count:{r.id}")
            ct.only_enforce_if(lit)
            assume[r.id] = lit
    return M, assume


def _solver(seed: int, time_limit: float, dtime: float | None = None) -> cp_model.CpSolver:
    s = cp_model.CpSolver()
    for k, v in _PARAMS.items():
        setattr(s.parameters, k, v)
    s.parameters.random_seed = int(seed)
    s.parameters.max_time_in_seconds = max(float(time_limit), 0.01)
    if dtime is not None:
        s.parameters.max_deterministic_time = float(dtime)
    return s


def _conflict(n: int, rules: list[CountRule], time_limit: float) -> list[str] | None:
    """A small set of count ids that cannot hold together with the plausibility rules.

    ``[]`` if the counts are feasible after all, ``None`` if infeasibility is not
    proven within ``time_limit``.
    """
    deadline = time.perf_counter() + time_limit
    M, assume = _build(n, rules, assumptions=True)

    def status(ids) -> int:
        M.m.clear_assumptions()
        M.m.add_assumptions([assume[k] for k in ids])
        solver = _solver(0, deadline - time.perf_counter())
        return solver.solve(M.m), solver

    st, solver = status(list(assume))
    if st in (cp_model.FEASIBLE, cp_model.OPTIMAL):
        return []
    if st != cp_model.INFEASIBLE:
        return None
    by_index = {lit.index: k for k, lit in assume.items()}
    core = [by_index[i] for i in solver.sufficient_assumptions_for_infeasibility() if i in by_index]
    # deletion filter: drop every id the conflict does not need (while time remains)
    for k in list(core):
        rest = [c for c in core if c != k]
        if rest and time.perf_counter() < deadline and status(rest)[0] == cp_model.INFEASIBLE:
            core = rest
    return core


def solve_counts(card, rng: np.random.Generator, *, time_limit: float = 600.0) -> CountSkeleton:
    """Solve the categorical skeleton of the cohort from the card's counts.

    Parameters
    ----------
    card : failpattern.study.StudyCard or str
        The study card (``load_study("ni2019")`` or an edited copy); every count is read
        from it by id (:func:`count_rules`).
    rng : numpy.random.Generator or int
        The only source of randomness: which patients each round re-solves,
        CP-SAT's random seeds, and a final shuffle of the patients
        (see the module docstring). The same card and generator state give the same
        skeleton.
    time_limit : float, default 600.0
        Wall-clock safety limit (seconds) of the whole call. Solves are bounded in
        *deterministic* time (``ATTEMPT_DTIME``, ``ROUND_DTIME``), so the result does
        not depend on the machine's speed unless this limit is hit; it is set far above
        a solve's duration (about 15 s of CPU here, a minute of wall time on a machine
        loaded four times over, when a limit of 60 s cut a round and changed the skeleton
        of a seed).

    Returns
    -------
    CountSkeleton

    Raises
    ------
    InputError
        If the counts and the plausibility rules cannot all hold; the message names a
        conflicting subset of card ids.
    ConvergenceError
        If no skeleton is found (and infeasibility is not proven) within ``time_limit``.

    Examples
    --------
    >>> import numpy as np
    >>> from failpattern.study import load_study
    >>> sk = solve_counts(load_study("ni2019"), np.random.default_rng(1))
    >>> int(sk.rt.sum()), int((sk.pattern == 1).sum())
    (42, 26)
    """
    from failpattern.simulate import _card, _rng

    card, rng = _card(card), _rng(rng)
    rules = count_rules(card)
    soft = soft_rules(card)
    n = next(r.target for r in rules if r.id == "cohort.enrolled.n")
    t0 = time.perf_counter()
    deadline = t0 + float(time_limit)
    key = (n,) + tuple((r.id, r.target, r.enforced) for r in rules + soft)
    with _CACHE_LOCK:
        if key not in _CACHE:
            M, _ = _build(n, rules, assumptions=False)
            _CACHE.clear()  # one card at a time: the model is large
            _CACHE[key] = (M, None)
        M, base = _CACHE[key]
        if base is None:
            base = _first_solution(M, n, rng, deadline)
            if base is None:
                core = _conflict(n, rules, max(deadline - time.perf_counter(), 1.0))
                if core:
                    target = {r.id: r.target for r in rules}
                    detail = ", ".join(f"{k} = {target[k]}" for k in core)
                    raise InputError(f"study card {card.name!r}: the counts cannot all hold together "
                                     "with the plausibility rules of the count skeleton; a "
                                     f"conflicting subset: {detail}")
                raise ConvergenceError(f"CP-SAT found no count skeleton within {time_limit} s")
            _add_soft(M, soft)
            _CACHE[key] = (M, base)
        current = _improve(M, base, soft, deadline, rng)
    seconds = time.perf_counter() - t0
    perm = rng.permutation(n)
    val = {k: current[k][perm] for k in M.v}
    ival = {k: current[k][perm] for k in M.ints}
    return _skeleton(val, ival, rules, seconds)


def _values(solver: cp_model.CpSolver, variables: dict) -> dict[str, np.ndarray]:
    return {k: np.array([solver.value(x) for x in xs], dtype=np.int64) for k, xs in variables.items()}


def _deviation(val: dict, soft: list[CountRule]) -> int:
    """Sum over the soft cells of ``weight * |achieved - target|``."""
    return sum(r.weight * abs(_achieved(val, r.terms) - r.target) for r in soft)


def _add_soft(M: _Model, soft: list[CountRule]) -> None:
    """Add ``M.deviation``, the sum over ``soft`` of ``weight * |cell - target|``, to the model.

    Added after the canonical solve: with these cells (and their AND variables) in the
    model from the start, the unhinted solve found no skeleton within 4 deterministic
    seconds, where without them it takes about 0.5.
    """
    devs = []
    for r in soft:
        cell = sum(M.conj(r.terms, i) for i in range(M.n))
        dev = M.m.new_int_var(0, M.n, f"dev:{r.id}")
        M.m.add(dev >= cell - r.target)
        M.m.add(dev >= r.target - cell)
        devs.append(r.weight * dev)
    M.deviation = M.m.new_int_var(0, M.n * max(sum(r.weight for r in soft), 1), "deviation")
    M.m.add(M.deviation == sum(devs))


def _improve(M: _Model, base: dict, soft: list[CountRule], deadline: float, rng: np.random.Generator) -> dict:
    """``base`` moved toward the soft cells by large-neighbourhood search, the rounds drawn from ``rng``.

    Each round frees a random ``LNS_FREE`` share of the patients, the others fixed, and
    minimises ``M.deviation`` from the current skeleton (given as the solution hint, so a
    round never ends worse), bounded by ``ROUND_DTIME`` with a solver seed from ``rng``.
    Stops at deviation 0, after ``IMPROVE_PATIENCE`` rounds without a gain, or after
    ``IMPROVE_ROUNDS``. Minimising over the whole cohort at once stalls CP-SAT (no
    skeleton within 4 deterministic seconds). Different draws end in different skeletons
    of about the same deviation: this is also the skeleton's variety.
    """
    n = M.n
    variables = {**M.v, **M.ints}
    proto = M.m.proto
    domains = {x.index: (proto.variables[x.index].domain[0], proto.variables[x.index].domain[1])
               for xs in variables.values() for x in xs}
    current, dev = base, _deviation(base, soft)
    M.m.minimize(M.deviation)
    last_gain = 0
    try:
        for r in range(IMPROVE_ROUNDS):
            free = np.zeros(n, bool)
            free[rng.choice(n, size=max(1, round(LNS_FREE * n)), replace=False)] = True
            seed = int(rng.integers(0, 2**31 - 1))
            remaining = deadline - time.perf_counter()
            if dev == 0 or remaining <= 0 or r - last_gain >= IMPROVE_PATIENCE:
                break
            M.m.clear_hints()
            for name, xs in variables.items():
                for i, x in enumerate(xs):
                    d = proto.variables[x.index].domain
                    d[0], d[1] = domains[x.index] if free[i] else (current[name][i],) * 2
                    if free[i]:
                        M.m.add_hint(x, int(current[name][i]))
            solver = _solver(seed, remaining, ROUND_DTIME)
            if solver.solve(M.m) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                values = _values(solver, variables)
                if _deviation(values, soft) < dev:
                    current, dev, last_gain = values, _deviation(values, soft), r + 1
    finally:
        for xs in variables.values():
            for x in xs:
                d = proto.variables[x.index].domain
                d[0], d[1] = domains[x.index]
        M.m.clear_objective()
        M.m.clear_hints()
    return current


def _first_solution(M: _Model, n: int, rng: np.random.Generator, deadline: float):
    """The canonical skeleton (unhinted solve, seed 0), else hinted attempts; None if none found.

    The canonical solve draws nothing from ``rng``, so it can be cached per card.
    """
    variables = {**M.v, **M.ints}
    names = sorted(M.v)
    for attempt in range(HINTED_ATTEMPTS + 1):
        M.m.clear_hints()
        seed = 0
        if attempt:
            seed = int(rng.integers(0, 2**31 - 1))
            hints = rng.random((len(names), n)) < 0.5
            for name, row in zip(names, hints):
                for x, h in zip(M.v[name], row):
                    M.m.add_hint(x, bool(h))
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        solver = _solver(seed, remaining, ATTEMPT_DTIME)
        status = solver.solve(M.m)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            M.m.clear_hints()
            return _values(solver, variables)
        if status == cp_model.INFEASIBLE:
            break
    M.m.clear_hints()
    return None


def _code(val: dict, codes: dict[str, int], default: int = 0) -> np.ndarray:
    out = np.full(len(val["rt"]), default, dtype=np.int64)
    for name, c in codes.items():
        out[val[name] == 1] = c
    return out


def _achieved(val: dict, terms: tuple[str, ...]) -> int:
    mask = np.ones(len(val["rt"]), bool)
    for t in terms:
        mask &= (val[t[1:]] == 0) if t.startswith("~") else (val[t] == 1)
    return int(mask.sum())


def _skeleton(val: dict, ival: dict, rules: list[CountRule], seconds: float) -> CountSkeleton:
    xrt = _code(val, {"prior_thoracic": 1, "prior_bone": 2, "prior_adrenal": 3})
    xrt[(val["prior_thoracic"] == 1) & (val["prior_bone"] == 1)] = 4
    arrays = {
        **{k: val[k] for k in ("rt", "male", "non_adeno", "ecog2", "t34", "n0")},
        "organs": ival["organs"], "organs3": val["organs3"], "lesions6": val["lesions6"],
        **{f"met_{s}": val[f"met_{s}"] for s in MET_SITES},
        "other_organs": ival["other_organs"], "pretreated": val["pretreated"],
        "burden": _code(val, {"oligo": 1, "multiple": 2}),
        "brain_rt": _code(val, {"prior_srs": 1, "prior_wbrt": 2}),
        "xrt": xrt,
        "wbrt_symptomatic": val["wbrt_symptomatic"], "wbrt_alleviated": val["wbrt_alleviated"],
        "response": _code(val, {"resp_cr": 0, "resp_pr": 1, "resp_sd": 2, "resp_pd": 3}),
        "pattern": _code(val, {"pat_of": 1, "pat_df": 2, "pat_odf": 3}),
        "location": _code(val, {"loc_primary": 1, "loc_metastasis": 2, "loc_both": 3}),
        **{f"fail_{s}": val[f"fail_{s}"] for s in SITES},
        "btype": _code(val, {"bpd_oligo": 1, "bpd_multiple": 2}),
        "elig": _code(val, {"elig_wbrt": 1, "elig_srs": 2, "elig_sbrt": 3}),
        "salvage": _code(val, {"salv_wbrt": 1, "salv_srs": 2, "salv_sbrt": 3}),
        **{f"sbrt_{s}": val[f"sbrt_{s}"] for s in SBRT_SITES},
        **{f"course_{s}": val[f"course_{s}"] for s in COURSE_SITES},
        "next": _code(val, {"next_cbpd": 0, "next_bsc": 1, "next_alk2": 2, "next_chemo": 3}, -1),
        "pfs2_event": val["pfs2_event"], "os_event": val["os_event"],
    }
    summary = pd.DataFrame(
        [(r.id, r.target, _achieved(val, r.terms), r.enforced, r.choice) for r in rules],
        columns=["id", "target", "achieved", "enforced", "choice"])
    arrays = {k: np.ascontiguousarray(v, dtype=np.int64) for k, v in arrays.items()}
    assert set(arrays) == set(CountSkeleton.array_fields())
    return CountSkeleton(**arrays, summary=summary, solve_seconds=seconds)
