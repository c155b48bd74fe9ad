"""The design of Ni et al. 2019 in one place: groupings, cut-offs, model covariates, count tables.

Why this module exists: the analysis plan and the simulator both need the
paper's structure (which variables Table 1 compares and how each is split in
two, the covariates of the Cox and Fine-Gray models, the rows of Table 2, the
enrolment window and data cut-off, the count of patients in every cell of the
tables). Typed twice, once per consumer, the two copies drift apart silently;
here it is written once, and every *number* of it is read from the study card
(:func:`design_for`), never typed in Python: a card with another cut-off or
another count gives a plan and a simulator that follow it
(``tests/test_design.py`` edits a copy of the card and checks both).

What stays as code is what a card cannot say: how a cohort-format column is
split into the card's two levels (:data:`BINARIES`: the rule, with the
cut-off read from the card), and which cohort column each card row counts
(:data:`T1_ROWS`, :data:`T2_ROWS`, ...). Each such list is checked against the
card's ids by the tests, so a row the card does not print cannot hide here.

Public objects: :class:`Binary` and :data:`BINARIES` (the paper's two-level
groupings), :class:`Settings` (the plan's card-derived choices),
:class:`Design` with :func:`design_for` (everything above read from one card,
computed once per card), and the structure tables.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from failpattern.errors import InputError

__all__ = ["BINARIES", "PATTERNS", "PFS1_COX", "T1_CONTINUOUS", "T1_ROWS", "T2_ROWS", "T3_COVARIATES",
           "Binary", "Design", "Settings", "aggregates_for", "design_for", "landmark_tag"]

_NAN = float("nan")


@dataclass(frozen=True)
class Settings:
    """Choices the plan takes from the study card (:attr:`Design.settings`).

    Attributes
    ----------
    age_cutoff, tumor_size_cutoff, met_organs_cutoff, met_lesions_cutoff : float
        Card ids ``protocol.t3.age_cutoff`` (age <= cut-off vs > cut-off),
        ``protocol.t3.tumor_size_cutoff`` (< vs >= cm),
        ``protocol.pfs1.met_organs_cutoff`` (< vs >= organs) and
        ``protocol.t1.met_lesions_cutoff`` (< vs >= lesions).
    landmarks : tuple of float
        Times (months) of the cumulative incidences reported (the card's
        ``at`` values of the failure-pattern rates).
    t3_multi : tuple of str
        Covariates of the multivariable Fine-Gray model (the card's ``t3.multi.*`` rows).
    contingency : dict
        Card id -> test (``pearson``/``yates``/``fisher``) that reproduces the
        printed p-value from the printed counts (via
        :func:`~failpattern.study.aggregate.recompute_aggregates`).
    death : str
        ``"competing"`` or ``"censored"``: death without progression in the Fine-Gray models.
    """

    age_cutoff: float
    tumor_size_cutoff: float
    met_organs_cutoff: float
    met_lesions_cutoff: float
    landmarks: tuple
    t3_multi: tuple
    contingency: dict = field(default_factory=dict)
    death: str = "competing"


@dataclass(frozen=True)
class Binary:
    """One dichotomised variable of the paper.

    Attributes
    ----------
    name : str
        The card's variable name (``t1.<name>.*``, ``t3.*.<name>.*``).
    column : str
        Cohort column it is derived from.
    levels : tuple of str
        Card level names: (level coded 1, level coded 0).
    label : str
        The grouping in words, ``reference vs comparison`` as Table 3 prints it.
    rule : callable
        ``rule(values, settings)`` -> boolean array for level 1 (values known).
    valid : callable, optional
        Which known values can be grouped at all (default: all).
    """

    name: str
    column: str
    levels: tuple
    label: str
    rule: Callable
    valid: Callable | None = None

    def indicator(self, ctx) -> np.ndarray:
        """1.0 / 0.0 per patient of the plan's context; NaN where empty or not groupable.

        Parameters
        ----------
        ctx : Context
            The plan's context (cohort arrays and settings); the result is cached in it.

        Returns
        -------
        numpy.ndarray
            Float array, one entry per patient.
        """
        cache = ctx._indicators
        if self.name not in cache:
            cache[self.name] = self.code(ctx.values(self.column), ctx.known(self.column), ctx.settings)
        return cache[self.name]

    def code(self, values: np.ndarray, known: np.ndarray, settings: Settings) -> np.ndarray:
        """1.0 / 0.0 per value; NaN where ``known`` is False or the value cannot be grouped.

        Parameters
        ----------
        values : numpy.ndarray
            The column's values (numbers as float, categories as objects).
        known : numpy.ndarray of bool
            Which values are filled.
        settings : Settings
            Cut-offs.

        Returns
        -------
        numpy.ndarray
            Float array like ``values``.
        """
        ok = known if self.valid is None else known & self.valid(values, settings)
        out = np.full(values.shape[0], _NAN)
        out[ok] = self.rule(values[ok], settings).astype(np.float64)
        return out


def _eq(value):
    return lambda v, s: v == value


def _isin(*values):
    return lambda v, s: np.isin(v, values)


_YES = ("yes", "no")
#: The paper's two-level groupings. Level 1 is Table 3's comparison level, so a
#: Fine-Gray SHR is printed as "<reference> vs <comparison>" (the card's reading).
#: Cut-offs come from :class:`Settings`, i.e. from the card.
BINARIES: Mapping[str, Binary] = MappingProxyType({b.name: b for b in (
    Binary("age", "age_years", ("gt_cut", "le_cut"), "Age (<= cut-off vs > cut-off)",
           lambda v, s: v > s.age_cutoff),
    Binary("sex", "sex", ("male", "female"), "Sex (female vs male)", _eq("male")),
    Binary("histology", "histology", ("adeno", "non_adeno"),
           "Histology (non-adenocarcinoma vs adenocarcinoma)", _eq("adenocarcinoma")),
    Binary("ecog", "ecog", ("ecog2", "ecog0_1"), "ECOG (0-1 vs >= 2)", lambda v, s: v >= 2),
    Binary("tumor_size", "primary_tumor_size_cm", ("ge_cut", "lt_cut"),
           "Primary tumour size (< cut-off vs >= cut-off)", lambda v, s: v >= s.tumor_size_cutoff),
    Binary("t_stage", "t_stage", ("t3_4", "t1_2"), "T stage (T1-2 vs T3-4; T0 and TX not grouped)",
           _isin("T3", "T4"), _isin("T1", "T2", "T3", "T4")),
    Binary("n_stage", "n_stage", ("n1_3", "n0"), "N stage (N0 vs N1-3; NX not grouped)",
           _isin("N1", "N2", "N3"), _isin("N0", "N1", "N2", "N3")),
    Binary("met_organs", "n_metastatic_organs", ("organs3plus", "organs1_2"),
           "Metastatic organs (< cut-off vs >= cut-off)", lambda v, s: v >= s.met_organs_cutoff),
    Binary("met_lesions", "n_metastatic_lesions", ("lesions6plus", "lesions1_5"),
           "Metastatic lesions (< cut-off vs >= cut-off)", lambda v, s: v >= s.met_lesions_cutoff),
    Binary("lung_met", "lung_mets", _YES, "Lung metastases (no vs yes)", _eq(1)),
    Binary("liver_met", "liver_mets", _YES, "Liver metastases (no vs yes)", _eq(1)),
    Binary("brain_met", "brain_mets", _YES, "Brain metastases (no vs yes)", _eq(1)),
    Binary("adrenal_met", "adrenal_mets", _YES, "Adrenal metastases (no vs yes)", _eq(1)),
    Binary("bone_met", "bone_mets", _YES, "Bone metastases (no vs yes)", _eq(1)),
    Binary("prior_lines", "prior_lines", ("none", "one_or_more"),
           "Prior lines of therapy (>= 1 vs 0)", _eq(0)),
    Binary("prior_local_therapy", "prior_rt", _YES, "Prior local therapy (no vs yes)", _eq(1)),
    Binary("objective_response", "best_response", _YES, "Objective response (no vs yes: CR or PR)",
           _isin("CR", "PR")),
)})

#: Table 1 rows with two levels (groupings in :data:`BINARIES`), in the paper's order.
T1_ROWS = ("sex", "histology", "ecog", "t_stage", "n_stage", "met_organs", "met_lesions", "lung_met",
           "liver_met", "brain_met", "adrenal_met", "bone_met")
#: Table 1 continuous rows: (card name, column).
T1_CONTINUOUS = (("age", "age_years"), ("tumor_size", "primary_tumor_size_cm"))
#: Table 1 columns: all patients, no radiotherapy, radiotherapy during the course (``any_rt``).
T1_COLUMNS = ("all", "nonrt", "rt")
#: Table 2 rows: (card name, column, value meaning "involved").
T2_ROWS = (("primary_only", "initial_failure_location", "primary"),
           ("metastasis_only", "initial_failure_location", "metastasis"),
           ("primary_and_metastasis", "initial_failure_location", "both"),
           ("lung", "fail_lung", 1), ("liver", "fail_liver", 1), ("brain", "fail_brain", 1),
           ("bone", "fail_bone", 1), ("adrenal", "fail_adrenal", 1), ("regional_ln", "fail_regional_ln", 1),
           ("distant_ln", "fail_distant_ln", 1), ("others", "fail_other", 1))
#: First-failure patterns: (card word, cohort value).
PATTERNS = (("of", "OF"), ("df", "DF"), ("odf", "ODF"))
#: Table 3 rows, in the paper's order (groupings in :data:`BINARIES`).
T3_COVARIATES = ("age", "sex", "histology", "ecog", "tumor_size", "t_stage", "n_stage", "met_organs",
                 "met_lesions", "lung_met", "liver_met", "brain_met", "adrenal_met", "bone_met",
                 "prior_lines", "prior_local_therapy", "objective_response")
#: Covariates of the PFS1 Cox models: (grouping in :data:`BINARIES`, card id word).
#: The multivariable model holds every one the cohort has (the schema's
#: ``pfs1_predictors``); the paper names histology, metastatic organs and
#: response as independent and prints p for prior RT and BBM.
PFS1_COX = (("histology", "histology"), ("met_organs", "met_organs"),
            ("objective_response", "response"), ("prior_local_therapy", "prior_rt"),
            ("brain_met", "bbm"))

def landmark_tag(t: float) -> str:
    """The card's word for a time point: ``12m`` for 12 months, ``1_5m`` for 1.5.

    Parameters
    ----------
    t : float
        Months.

    Returns
    -------
    str
    """
    return f"{t:g}m".replace(".", "_")


#: Card ids of the cut-offs, by :class:`Settings` field.
_CUTOFF_IDS = {"age_cutoff": "protocol.t3.age_cutoff", "tumor_size_cutoff": "protocol.t3.tumor_size_cutoff",
               "met_organs_cutoff": "protocol.pfs1.met_organs_cutoff",
               "met_lesions_cutoff": "protocol.t1.met_lesions_cutoff"}


@dataclass(frozen=True, eq=False)
class Design:
    """The paper's structure and its numbers, read from one study card (see :func:`design_for`).

    Attributes
    ----------
    card : StudyCard
        The card everything was read from.
    settings : Settings
        The plan's choices (cut-offs, landmarks, multivariable covariates, tests).
    n : int
        Patients enrolled (``cohort.enrolled.n``).
    enrolment : tuple of numpy.datetime64
        First and last day a patient could start crizotinib (the card's
        ``study.enrolment`` months, from the first day of the first to the last
        day of the last).
    cutoff : numpy.datetime64
        The data cut-off (``study.data_cutoff``).
    scan_weeks : tuple of float
        Weeks between follow-up scans, as printed (``protocol.scan_interval.min``/``max``).
    ranges : Mapping[str, tuple of float]
        Printed ranges (min, max) of the continuous variables and follow-up:
        ``age``, ``tumor_size`` (Table 1, all patients), ``followup``.
    t3_covariates : tuple of str
        Table 3 rows the card prints (univariate SHRs), in :data:`T3_COVARIATES` order.
    """

    card: object = field(repr=False)
    settings: Settings
    n: int
    enrolment: tuple
    cutoff: np.datetime64
    scan_weeks: tuple
    ranges: Mapping[str, tuple]
    t3_covariates: tuple

    # ------------------------------------------------------------------ counts
    def count(self, id_: str) -> int:
        """The card's count ``id_`` as an int (InputError naming the id if the card lacks it)."""
        if id_ not in self.card:
            raise InputError(f"the study card {self.card.name!r} has no number {id_!r}, which the design needs")
        value = self.card.get(id_).value
        if float(value) != int(value):
            raise InputError(f"card number {id_!r} = {value} is not a count")
        return int(value)

    def t1_count(self, row: str, level: str, column: str) -> int:
        """Table 1: patients at ``level`` of ``row`` in ``column`` (``all``/``nonrt``/``rt``)."""
        return self.count(f"t1.{row}.{level}.{column}.n")

    def t1_by_group(self, row: str) -> tuple[int, int]:
        """Table 1: (Non-RT, RT) patients at level 1 of ``row`` (the level :data:`BINARIES` codes 1)."""
        level = BINARIES[row].levels[0]
        return self.t1_count(row, level, "nonrt"), self.t1_count(row, level, "rt")

    def t2_count(self, row: str, pattern: str) -> int:
        """Table 2: failures at ``row`` (a :data:`T2_ROWS` name) among ``pattern`` (of/df/odf/all)."""
        return self.count(f"t2.{row}.{pattern}.n")

    def pattern_counts(self) -> tuple[int, ...]:
        """Patients with each first-failure pattern, in :data:`PATTERNS` order."""
        return tuple(self.count(f"pattern.{p}.n") for p, _ in PATTERNS)

    def site_counts(self) -> dict[str, tuple[int, ...]]:
        """Table 2 failure sites other than the brain, per pattern: ``{row: (OF, DF, ODF)}``."""
        return {name: tuple(self.t2_count(name, p) for p, _ in PATTERNS)
                for name, col, _ in T2_ROWS if col.startswith("fail_") and name != "brain"}

    def location_counts(self) -> tuple[tuple[int, ...], ...]:
        """Table 2 initial failure location per pattern: rows OF/DF/ODF, columns primary only,
        metastasis only, both."""
        rows = [name for name, col, _ in T2_ROWS if col == "initial_failure_location"]
        return tuple(tuple(self.t2_count(r, p) for r in rows) for p, _ in PATTERNS)


def _month_start(text: str) -> np.datetime64:
    return np.datetime64(str(text), "M").astype("datetime64[D]")


def _month_end(text: str) -> np.datetime64:
    return (np.datetime64(str(text), "M") + 1).astype("datetime64[D]") - 1


def _settings(card) -> Settings:
    """The plan's choices read from ``card``: see :func:`design_for`."""
    missing = [i for i in _CUTOFF_IDS.values() if i not in card]
    if missing:
        raise InputError(f"the study card {card.name!r} lacks the cut-off(s) {', '.join(missing)}: the paper's "
                         "groupings need them")
    cut = {k: float(card.get(i).value) for k, i in _CUTOFF_IDS.items()}
    ids = set(card.ids)
    nums = card.numbers
    at = tuple(sorted({float(a) for a in nums.loc[nums["method"].isin(["rate", "cif_at"]), "at"].dropna()}))
    multi = tuple(n for n in T3_COVARIATES if f"t3.multi.{n}.shr" in ids)
    return Settings(**cut, landmarks=at, t3_multi=multi, contingency=_contingency_tests(card))


def _contingency_tests(card) -> dict[str, str]:
    """Per contingency p-value, the test that reproduces it from the printed counts."""
    chosen = {}
    agg = aggregates_for(card)
    for _, r in agg[agg["kind"] == "contingency_p"].iterrows():
        method = card.get(r["id"]).method
        if method in ("chisq_p", "fisher_p"):
            chosen[r["id"]] = "pearson" if method == "chisq_p" else "fisher"
        elif r["matches"]:
            chosen[r["id"]] = r["auto"] if r["auto"] in r["matches"] else r["matches"][0]
        else:  # no test gives the printed digits: the closest (the card's counts may be off)
            ps = {t: r[t] for t in ("pearson", "yates", "fisher") if r[t] == r[t]}
            chosen[r["id"]] = min(ps, key=lambda t: abs(ps[t] - r["published"]))
    return chosen


def _range(card, id_: str) -> tuple[float, float]:
    if id_ not in card:
        return (_NAN, _NAN)
    n = card.get(id_)
    lo, hi = n.range_lower, n.range_upper
    return (_NAN, _NAN) if lo is None else (float(lo), float(hi))


_DESIGNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_AGGREGATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def aggregates_for(card) -> pd.DataFrame:
    """:func:`~failpattern.study.aggregate.recompute_aggregates` of ``card``, computed once per card."""
    if card not in _AGGREGATES:
        from failpattern.study.aggregate import recompute_aggregates

        _AGGREGATES[card] = recompute_aggregates(card)
    return _AGGREGATES[card]


def design_for(card) -> Design:
    """The design of the study ``card`` describes (computed once per card and cached).

    Cut-offs from ``protocol.t3.age_cutoff``, ``protocol.t3.tumor_size_cutoff``,
    ``protocol.pfs1.met_organs_cutoff`` and ``protocol.t1.met_lesions_cutoff``;
    time points from the ``at`` of the card's ``rate`` / ``cif_at`` numbers;
    multivariable Fine-Gray covariates from the ``t3.multi.*.shr`` ids; for
    each contingency p-value the test that reproduces it from the printed
    counts (the one ``contingency_test(method="auto")`` would pick if several
    do; if none does at the printed precision, the test whose p is closest);
    enrolment window and cut-off from the card's ``study`` section; ranges
    from the medians' printed ranges.

    Parameters
    ----------
    card : StudyCard
        A loaded card (:func:`~failpattern.study.load_study`).

    Returns
    -------
    Design

    Raises
    ------
    InputError
        The card lacks a number the design needs (named).
    """
    hit = _DESIGNS.get(card)
    if hit is not None:
        return hit
    study = card.study
    enrol = study.get("enrolment") or {}
    if not enrol.get("from") or not enrol.get("to") or not study.get("data_cutoff"):
        raise InputError(f"the study card {card.name!r} needs study.enrolment (from, to) and study.data_cutoff")
    scan = tuple(float(card.get(f"protocol.scan_interval.{k}").value) if f"protocol.scan_interval.{k}" in card
                 else _NAN for k in ("min", "max"))
    ranges = MappingProxyType({"age": _range(card, "t1.age.median.all"),
                               "tumor_size": _range(card, "t1.tumor_size.median.all"),
                               "followup": _range(card, "followup.median")})
    design = Design(card=card, settings=_settings(card), n=int(card.get("cohort.enrolled.n").value),
                    enrolment=(_month_start(enrol["from"]), _month_end(enrol["to"])),
                    cutoff=np.datetime64(str(study["data_cutoff"]), "D"), scan_weeks=scan, ranges=ranges,
                    t3_covariates=tuple(n for n in T3_COVARIATES if f"t3.uni.{n}.shr" in card))
    _DESIGNS[card] = design
    return design
