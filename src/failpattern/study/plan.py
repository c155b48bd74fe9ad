"""The analysis plan of Ni et al. 2019, run on any cohort in the cohort format.

Why this module exists: "reproducing" the paper means re-running *its*
analyses — the same endpoints, populations, groupings, tests and software
conventions — on patient-level data, and setting every result beside the
number the paper printed. :func:`run_plan` does the first part; it returns a
flat table with one row per reproduced quantity, under the study card's id
where the quantity is a card number, plus the fitted model objects for plots
and reports. :func:`failpattern.study.compare.compare` does the second part.

The plan is driven by the card: cut-offs (``protocol.*`` ids), time points
(``at``), the covariates of the multivariable Fine-Gray model (``t3.multi.*``)
and, for the p-values whose test the paper does not name, the test that
reproduces the printed value from the printed counts
(:func:`~failpattern.study.aggregate.recompute_aggregates`).

The mapping from card ids to computations is :data:`MAPPING` (patterns over
the tables of the analysis modules, expanded by :func:`mapping`); card
numbers that patient-level data in the cohort format cannot give are in
:data:`NOT_FROM_DATA` with the reason. ``tests/test_plan_mapping.py`` checks
that every mapped id exists in the card and every card id is accounted for.

Speed: a replicate study runs the plan on thousands of cohorts, so the
analyses read the cohort's arrays once per run
(:class:`~failpattern.study.analyses._base.Context`) and call the public fit
layer :mod:`failpattern.stats.fit`, which skips the public functions'
validation of a validated cohort and runs the same kernels (each value checked
against its public function in ``tests/test_plan.py``; no module of the plan
imports a private name of ``failpattern.stats``, ``tests/test_fit_layer.py``):
``km_fit`` / ``km_fits``, ``logrank_fit``, ``coxph_fit``,
``finegray_prepare_times`` / ``finegray_prepare`` with ``finegray_fit`` (one
sort for all the Fine-Gray models on the same patients) and
``finegray_fit_univariate`` (Table 3's one-covariate models fitted together:
estimates equal to the one-fit kernel's to rounding, about 1e-14 relative),
``expected_counts`` / ``fisher_2x2_p`` / ``auto_contingency_method``,
``mann_whitney_fit`` / ``t_test_fit``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np
import pandas as pd

from failpattern.cohort import Cohort, load_cohort
from failpattern.errors import InputError
from failpattern.study.analyses._base import Context
from failpattern.study.analyses._frames import skipped_frame, values_frame
from failpattern.study.analyses.competing import run_competing
from failpattern.study.analyses.survival import run_survival
from failpattern.study.analyses.tables import run_tables
from failpattern.study.card import StudyCard, load_study
from failpattern.study.design import (
    BINARIES,
    T1_CONTINUOUS,
    T1_ROWS,
    T2_ROWS,
    T3_COVARIATES,
    Settings,
    design_for,
    landmark_tag,
)

__all__ = [
    "BINARIES",
    "DEATH_OPTIONS",
    "MAPPING",
    "NOT_FROM_DATA",
    "NOT_PRINTED",
    "PlanResult",
    "default_card",
    "mapping",
    "run_plan",
    "settings_for",
]

DEATH_OPTIONS = ("competing", "censored")

_T1_LEVELS = [(r, lv) for r in T1_ROWS for lv in BINARIES[r].levels]

#: Card ids the plan computes: (id pattern, how). ``{...}`` fields expand over
#: the analysis modules' tables (:func:`mapping`).
MAPPING = (
    ("cohort.enrolled.n", "patients in the cohort"),
    ("t1.{row}.{level}.{col}.n", "Table 1: patients at the level, in all / Non-RT / RT (any_rt)"),
    ("t1.{row}.{level}.{col}.pct", "Table 1: the count over the column's patients with the value known"),
    ("t1.{row}.p", "Table 1: 2 x 2 contingency test Non-RT vs RT (test reproducing the printed p)"),
    ("t1.{cont}.median.{col}", "Table 1: median of the variable"),
    ("t1.{cont}.p", "Table 1: Mann-Whitney test Non-RT vs RT"),
    ("bbm.oligo.n", "BBM with oligo burden"), ("bbm.oligo.pct", "oligo among BBM"),
    ("bbm.multiple.n", "BBM with multiple burden"),
    ("treatment.first_line.n", "prior_lines = 0"), ("treatment.pretreated.n", "prior_lines >= 1"),
    ("prior_rt.n", "prior_rt = 1"), ("prior_rt.brain.n", "prior_brain_rt = 1"),
    ("prior_rt.thoracic.n", "prior_thoracic_rt = 1"), ("prior_rt.bone.n", "prior_bone_rt = 1"),
    ("prior_rt.adrenal.n", "prior_adrenal_rt = 1"),
    ("prior_rt.extracranial.n", "any of prior thoracic / bone / adrenal RT"),
    ("prior_rt.srs_oligo.n", "BBM oligo with prior SRS"), ("prior_rt.srs_multiple.n", "BBM multiple with prior SRS"),
    ("prior_rt.wbrt_multiple.n", "BBM multiple with prior WBRT"), ("prior_rt.wbrt_oligo.n", "BBM oligo with prior WBRT"),
    ("prior_rt.wbrt.n", "BBM with prior WBRT"),
    ("response.{resp}.n", "best response"), ("response.orr.pct", "CR + PR over known responses"),
    ("response.dcr.pct", "CR + PR + SD over known responses"),
    ("followup.median", "median of os_months (plain; the paper prints a range)"),
    ("progression1.n", "failure_pattern OF/DF/ODF"),
    ("pfs1.median.all", "Kaplan-Meier median PFS1, SPSS convention (R's under <id>.r)"),
    ("pfs1.median.bbm", "KM median PFS1, brain_mets = 1"),
    ("pfs1.median.bbm_{prior}", "KM median PFS1, BBM by prior_brain_rt (Fig. 1a)"),
    ("pfs1.bbm.prior_brain_rt.p", "log-rank, BBM by prior_brain_rt (Fig. 1a)"),
    ("pfs1.prior_rt.p", "log-rank by prior_rt (test not stated; Cox under pfs1.uni/multi.prior_rt.p)"),
    ("pfs1.bbm.p", "log-rank by brain_mets (test not stated; Cox under pfs1.uni/multi.bbm.p)"),
    ("pfs1.multi.{coxcard}.p", "multivariable Cox of PFS1 (Breslow ties), Wald p"),
    ("pfs2.median.{pfs2grp}", "KM median PFS2 (all progressed; by salvage_rt, Fig. 1b; by cbpd, Fig. 1c)"),
    ("pfs2.salvage_rt.p", "log-rank, PFS2 by salvage_rt (Fig. 1b)"),
    ("os.rt_vs_nonrt.p", "log-rank, OS by any_rt (Fig. 1d)"),
    ("pattern.{pat}.n", "failure_pattern"), ("pattern.{pat}.pct", "over patients with a first progression"),
    ("pattern.any.rate_{landmark}", "share of progressed patients progressed by the time (the card's reading)"),
    ("pfs1.pattern.p", "log-rank, PFS1 by failure_pattern among progressed (test not stated; 'not significant')"),
    ("response.pattern.p", "3 x 2 contingency test, CR + PR by failure_pattern (SPSS-style rule; 'not significant')"),
    ("brain_pd.n", "fail_brain among progressed"), ("brain_pd.pct", "over progressed"),
    ("brain_pd.{bbm}.n", "brain progression among patients with / without BBM"),
    ("brain_pd.{bbm}.pct", "over all patients with / without BBM"),
    ("brain_pd.bbm_vs_no_bbm.p", "2 x 2 contingency test (all patients)"),
    ("multi_pd.{bbm}.n", "multiple-progressive brain disease by BBM"),
    ("multi_pd.{bbm}.pct", "over patients with brain progression"),
    ("multi_pd.bbm_vs_no_bbm.p", "2 x 2 contingency test (patients with brain progression)"),
    ("brain_pd.bbm_prior_brain_rt.n", "brain progression, BBM with prior brain RT"),
    ("bbm.no_prior_brain_rt.n", "BBM without prior brain RT"),
    ("brain_pd.bbm_no_prior_brain_rt.n", "brain progression, BBM without prior brain RT"),
    ("bbm.oligo_no_prior_brain_rt.n", "BBM oligo without prior brain RT"),
    ("multi_pd.oligo_no_prior_rt.n", "multiple brain PD, BBM oligo without prior brain RT"),
    ("multi_pd.oligo_no_prior_rt.pct", "over BBM oligo without prior brain RT"),
    ("multi_pd.oligo_prior_srs.n", "multiple brain PD, BBM oligo with prior SRS"),
    ("t2.{site}.{t2col}.n", "Table 2: site involved at first failure, by pattern"),
    ("t2.{site}.{t2col}.pct", "Table 2: over the pattern's patients"),
    ("t3.uni.{t3}.shr", "univariate Fine-Gray of OF, stata variance"), ("t3.uni.{t3}.p", "its Wald p"),
    ("t3.multi.{t3multi}.shr", "multivariable Fine-Gray of OF"), ("t3.multi.{t3multi}.p", "its Wald p"),
    ("salvage.eligible.n", "salvage_rt_eligible = 1"), ("salvage.eligible.pct", "over progressed"),
    ("salvage.eligible.pct_discussion", "over progressed"),
    ("salvage.eligible_{tech}.n", "eligible, by technique"), ("salvage.received.n", "salvage_rt = 1"),
    ("salvage.{tech}.n", "salvage RT by technique"),
    ("after_pd.cbpd.n", "cbpd = 1"), ("after_pd.discontinued.n", "cbpd = 0"),
    ("after_pd.{nextrx}.n", "next systemic therapy without CBPD"),
    ("progression2.n", "PFS2 events"), ("deaths.n", "os_event = 1"), ("rt_course.n", "any_rt = 1"),
)

#: Expansions of :data:`MAPPING` that the paper does not print (0 of a pattern, no %).
NOT_PRINTED = frozenset({"t2.liver.df.pct", "t2.adrenal.df.pct", "t2.regional_ln.df.pct",
                         "t2.distant_ln.df.pct"})

_COURSE = "radiotherapy sites over the whole course are not cohort-format columns (only prior_* flags and " \
          "the salvage technique)"
#: Card numbers (other than ``protocol`` and ``cited``) that the cohort format cannot give, and why.
NOT_FROM_DATA = MappingProxyType({
    "cohort.screened.n": "patients screened before the imaging criteria are not in a cohort of enrolled patients",
    "prior_rt.srs_multiple.lesions": "the number of lesions irradiated is not a cohort-format column",
    "prior_rt.wbrt.symptomatic.n": "symptoms before WBRT are not a cohort-format column",
    "prior_rt.wbrt.alleviated.n": "symptom relief after WBRT is not a cohort-format column",
    "response.time_to_max.pattern.p": "the time to maximum response is not a cohort-format column",
    **{f"rt_course.{s}.n": _COURSE for s in ("wbrt", "srs", "thoracic", "bone", "liver", "adrenal",
                                              "distant_ln")},
})


def _fields(settings: Settings) -> dict[str, list[str]]:
    return {
        "row": None, "level": None, "col": ["all", "nonrt", "rt"], "cont": [c for c, _ in T1_CONTINUOUS],
        "resp": ["cr", "pr", "sd", "pd"], "prior": ["prior_brain_rt", "no_prior_brain_rt"],
        "coxcard": ["histology", "met_organs", "response"],
        "pfs2grp": ["all", "salvage_rt", "no_salvage_rt", "cbpd", "non_cbpd"],
        "pat": ["of", "df", "odf"], "landmark": [landmark_tag(t) for t in settings.landmarks],
        "bbm": ["bbm", "no_bbm"], "site": [s for s, _, _ in T2_ROWS], "t2col": ["all", "of", "df", "odf"],
        "t3": list(T3_COVARIATES), "t3multi": list(settings.t3_multi), "tech": ["wbrt", "srs", "sbrt"],
        "nextrx": ["bsc", "alk2", "chemo"],
    }


def mapping(settings: Settings | None = None) -> pd.DataFrame:
    """:data:`MAPPING` expanded to one row per card id: ``id``, ``how``, ``pattern``.

    Ids in :data:`NOT_PRINTED` are left out.
    """
    settings = settings or settings_for(default_card())
    values = _fields(settings)
    rows = []
    for pattern, how in MAPPING:
        ids = [pattern]
        if "{row}" in pattern:
            ids = [pattern.format(row=r, level=lv, col=c) if "{level}" in pattern else pattern.format(row=r)
                   for r, lv in (_T1_LEVELS if "{level}" in pattern else [(r, None) for r in T1_ROWS])
                   for c in (values["col"] if "{col}" in pattern else [None])]
        else:
            for name, options in values.items():
                if options is not None and "{" + name + "}" in pattern:
                    ids = [i.replace("{" + name + "}", o) for i in ids for o in options]
        rows += [{"id": i, "how": how, "pattern": pattern} for i in dict.fromkeys(ids) if i not in NOT_PRINTED]
    return pd.DataFrame(rows, columns=["id", "how", "pattern"])


# ----------------------------------------------------------------------------- settings
_SETTINGS: weakref.WeakKeyDictionary[StudyCard, Settings] = weakref.WeakKeyDictionary()
_DEFAULT_CARD: list[StudyCard] = []


def default_card() -> StudyCard:
    """The ni2019 card, loaded once per process (the plan's default).

    Returns
    -------
    StudyCard
    """
    if not _DEFAULT_CARD:
        _DEFAULT_CARD.append(load_study("ni2019"))
    return _DEFAULT_CARD[0]


def settings_for(card: StudyCard) -> Settings:
    """The plan's choices read from ``card``: :attr:`Design.settings <failpattern.study.design.Design>`
    of :func:`~failpattern.study.design.design_for` (computed once per card and cached)."""
    return design_for(card).settings


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class PlanResult:
    """The analysis plan run on one cohort.

    Attributes
    ----------
    values : pandas.DataFrame
        One row per reproduced quantity: ``id`` (the card id when the quantity
        is a card number), ``value``, ``ci_lower``, ``ci_upper``, ``range_min``,
        ``range_max`` (of a descriptive median; else NaN), ``analysis``
        (the plan's name for the computation; a key of :attr:`exclusions`),
        ``method`` (card vocabulary), ``convention`` (``spss22``, ``stata13``,
        ``r``, ``none``), ``n_used``, ``n_excluded``, ``note``. Percentages are
        in percent, p-values as fractions, times in months.
    skipped : pandas.DataFrame
        Computations the cohort cannot support: ``analysis``, ``ids`` (tuple),
        ``reason``, in words a clinician can read (a missing optional column,
        no events, a group of a covariate without events, no variation, fewer
        than two groups to compare, a percentage of no patients, a fit that
        did not converge). A degenerate but valid cohort (every patient
        censored, no progression, one patient) gives entries here, never an
        exception.
    km, logrank, cox, cif, finegray, contingency, two_sample : Mapping
        The fitted objects: ``km["pfs1.all"]`` (SPSS convention) and
        ``km["pfs1.all.r"]`` (R) are ``KaplanMeierResult``; ``logrank`` keyed by
        comparison (``"pfs1.by_bbm"``), ``cox`` by model (``"pfs1.cox.multi"``),
        ``cif["patterns"]`` / ``cif["any"]``, ``finegray`` by model
        (``"t3.uni.age"``, ``"t3.multi"``), ``contingency`` by card id.
    settings : Settings
        The card-derived choices used.
    exclusions : Mapping
        Per computation, the patients left out and why (computed on first access).
    cohort : Cohort
        The cohort the plan ran on.

    ``values`` and ``skipped`` are fresh copies on every access.
    """

    _values: pd.DataFrame = field(repr=False)
    _skipped: pd.DataFrame = field(repr=False)
    km: Mapping
    logrank: Mapping
    cox: Mapping
    cif: Mapping
    finegray: Mapping
    contingency: Mapping
    two_sample: Mapping
    settings: Settings
    _model_data: Mapping = field(repr=False)
    _cohort: Cohort = field(repr=False)
    _selections: Mapping = field(repr=False)
    _extra: Mapping = field(repr=False)
    _cache: dict = field(repr=False, default_factory=dict, compare=False)

    @property
    def values(self) -> pd.DataFrame:
        """The flat table of reproduced quantities (a fresh copy on every access)."""
        return self._values.copy()

    @property
    def skipped(self) -> pd.DataFrame:
        """Computations the cohort cannot support (a fresh copy on every access)."""
        return self._skipped.copy()

    @property
    def cohort(self) -> Cohort:
        """The cohort the plan ran on."""
        return self._cohort

    def model_data(self, name: str) -> pd.DataFrame:
        """The patients and covariates a regression model of the plan was fitted on.

        Parameters
        ----------
        name : str
            A key of :attr:`cox` (``"pfs1.cox.multi"``) or of :attr:`finegray`
            (``"t3.multi"``, ``"t3.uni.age"``).

        Returns
        -------
        pandas.DataFrame
            ``time`` and ``event`` (a Cox model) or ``cause`` (a Fine-Gray model:
            1 = original-site failure, 2 = competing, 0 = censored), then one 0/1
            column per covariate, named as the result's coefficients: ready for
            :func:`~failpattern.stats.proportional_hazards_test` or the batched fitters.

        Raises
        ------
        KeyError
            No model of that name was fitted.
        """
        outcome, t, e, X, names = self._model_data[name]
        frame = pd.DataFrame(np.asarray(X, dtype=np.float64), columns=list(names))
        frame.insert(0, outcome, np.asarray(e))
        frame.insert(0, "time", np.asarray(t))
        return frame

    def to_frame(self) -> pd.DataFrame:
        """:attr:`values`."""
        return self.values

    @property
    def exclusions(self) -> Mapping:
        """Per computation (the ``analysis`` column of :attr:`values`): the
        patients of its population left out, as ``Exclusion(patient_id, line,
        reason)`` from :meth:`Cohort.rows_for` (plus patients whose value
        cannot be grouped). Computed on first access."""
        if "exclusions" not in self._cache:
            out = {}
            for name, (key, columns) in self._selections.items():
                excluded = self._cohort.excluded_for(key, columns=list(columns))
                out[name] = tuple(excluded) + tuple(self._extra.get(name, ()))
            self._cache["exclusions"] = MappingProxyType(out)
        return self._cache["exclusions"]

    @property
    def audit(self):
        """The methods audit of Fig. 1b-d (immortal time; :func:`failpattern.study.audit.methods_audit`) on
        this cohort: a :class:`~failpattern.study.audit.MethodsAudit`. Computed on first access."""
        if "audit" not in self._cache:
            from failpattern.study.audit import methods_audit

            self._cache["audit"] = methods_audit(self._cohort)
        return self._cache["audit"]

    def exclusions_frame(self) -> pd.DataFrame:
        """:attr:`exclusions` as one table: analysis, patient_id, line, reason."""
        rows = [{"analysis": a, "patient_id": e.patient_id, "line": e.line, "reason": e.reason}
                for a, ex in self.exclusions.items() for e in ex]
        return pd.DataFrame(rows, columns=["analysis", "patient_id", "line", "reason"])

    def get(self, id_: str) -> float:
        """The value reproduced under ``id_``.

        Parameters
        ----------
        id_ : str
            A card id (or a plan id of the same style).

        Returns
        -------
        float

        Raises
        ------
        KeyError
            If the plan produced no value under that id.
        """
        hit = self._values.loc[self._values["id"] == id_, "value"]
        if hit.empty:
            raise KeyError(f"the plan produced no value {id_!r}")
        return float(hit.iloc[0])

    def __repr__(self) -> str:
        return (f"PlanResult({len(self._values)} values, {len(self._skipped)} skipped, "
                f"{self._cohort.n_patients} patients)")


def run_plan(cohort, *, card: StudyCard | None = None, death_without_progression: str = "competing"
             ) -> PlanResult:
    """Run the paper's analysis plan on a cohort.

    Parameters
    ----------
    cohort : Cohort or pandas.DataFrame
        A cohort from :func:`~failpattern.cohort.load_cohort`, or a
        cohort-format DataFrame (validated here with ``load_cohort``).
    card : StudyCard, optional
        The study card that drives the plan (default: ``load_study("ni2019")``).
    death_without_progression : {"competing", "censored"}
        How the Fine-Gray models of OF treat death before any progression
        (see :mod:`failpattern.study.analyses.competing`).

    Returns
    -------
    PlanResult

    Raises
    ------
    CohortError
        A DataFrame that breaks the cohort format.
    InputError
        An unknown ``death_without_progression``.
    """
    if death_without_progression not in DEATH_OPTIONS:
        raise InputError(f"death_without_progression: choose one of {', '.join(DEATH_OPTIONS)}; "
                         f"got {death_without_progression!r}")
    if not isinstance(cohort, Cohort):
        cohort = load_cohort(cohort)
    settings = settings_for(card if card is not None else default_card())
    if death_without_progression != settings.death:
        settings = replace(settings, death=death_without_progression)
    ctx = Context(cohort, settings)
    run_tables(ctx)
    run_survival(ctx)
    run_competing(ctx)
    values, skipped = values_frame(ctx.rows), skipped_frame(ctx.skipped)
    m = {k: MappingProxyType(v) for k, v in ctx.models.items()}
    return PlanResult(_values=values, _skipped=skipped, km=m["km"], logrank=m["logrank"], cox=m["cox"],
                      cif=m["cif"], finegray=m["finegray"], contingency=m["contingency"],
                      two_sample=m["two_sample"], settings=settings, _model_data=MappingProxyType(m["model_data"]),
                      _cohort=cohort,
                      _selections=MappingProxyType(dict(ctx.selections)),
                      _extra=MappingProxyType(dict(ctx.extra_exclusions)))
