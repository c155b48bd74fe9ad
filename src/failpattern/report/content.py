"""What a report says, gathered once for every output format.

Why: the Markdown, the HTML and ``results.json`` must tell the same story —
same metadata, same rows, same exclusions. :func:`build_content` collects it
from the plan, the comparison and the card into one :class:`ReportContent`;
the renderers only lay it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from failpattern.report.tables import comparison_display, values_display

__all__ = ["AUDIT_INTRO", "EXCLUSIONS_LISTED", "ReportContent", "build_content", "exclusion_counts", "exclusions_listed",
           "judging_text"]


@dataclass
class ReportContent:
    """Everything a report shows.

    Attributes
    ----------
    title : str
    metadata : dict
        ``failpattern_version``, ``cohort``, ``seed``, ``study_card``,
        ``profile``, ``patients``, ``generated_utc``.
    comparison : pandas.DataFrame or None
        :func:`~failpattern.report.tables.comparison_display` of the
        comparison; None when the cohort is not compared with a paper.
    summary : pandas.DataFrame or None
        Counts by verdict (:func:`failpattern.study.compare.summarize`).
    by_kind : pandas.DataFrame or None
        Counts by kind of number and verdict
        (:func:`failpattern.study.compare.summarize_by_kind`), as text.
    changed : pandas.DataFrame or None
        The displayed rows whose reproduced value changes the paper's
        conclusion (shown first).
    judging : str
        How numbers are judged under the comparison's profile, in words ("" without one).
    mode : str
        ``"reproduction"`` (the paper's numbers re-computed: ``reproduce``) or
        ``"analysis"`` (a researcher's own cohort, set beside the published values:
        ``analyze``); it sets the wording.
    paper_tables : list
        The published tables with the reproduced values in every cell
        (:func:`~failpattern.report.paper_tables.paper_tables`); empty without a comparison.
    methods : str
        The methods paragraph (:func:`~failpattern.report.methods.methods_paragraph`).
    ph : pandas.DataFrame or None
        The proportional-hazards test of the multivariable PFS1 Cox model
        (:func:`~failpattern.stats.proportional_hazards_test`, as R ``cox.zph``), as
        text: ``covariate``, ``chisq``, ``df``, ``p``; None when the model was not fitted.
    ph_note : str
        What the test is, or why it could not be computed.
    values : pandas.DataFrame
        :func:`~failpattern.report.tables.values_display` of the plan's values.
    skipped : pandas.DataFrame
        Analyses the cohort could not support: ``analysis``, ``ids``, ``reason``.
    exclusions : pandas.DataFrame
        One row per excluded patient and analysis: ``analysis``,
        ``patient_id``, ``line``, ``reason``.
    audit : pandas.DataFrame or None
        The methods audit of Fig. 1b-d (:func:`failpattern.study.audit.methods_audit`) as
        text: ``figure``, ``comparison``, ``naive`` (log-rank p, HR), ``time_dependent``
        (HR with limits, p), ``landmarks``, ``holds``; None when nothing could be audited.
    audit_notes : list of str
        One conclusion per audited comparison, then what could not be audited.
    figures : list of dict
        ``name``, ``title``, ``caption``, ``files`` (paths relative to the
        report folder), ``png`` (bytes, for inlining) and ``reason`` (why not
        drawn).
    """

    title: str
    metadata: dict
    comparison: pd.DataFrame | None
    summary: pd.DataFrame | None
    values: pd.DataFrame
    skipped: pd.DataFrame
    exclusions: pd.DataFrame
    by_kind: pd.DataFrame | None = None
    changed: pd.DataFrame | None = None
    judging: str = ""
    mode: str = "reproduction"
    paper_tables: list = field(default_factory=list)
    methods: str = ""
    ph: pd.DataFrame | None = None
    ph_note: str = ""
    audit: pd.DataFrame | None = None
    audit_notes: list = field(default_factory=list)
    figures: list = field(default_factory=list)


#: The methods audit's opening sentence in every report format.
AUDIT_INTRO = 'Fig. 1b-d group patients by a treatment that begins after time zero, so the treated group is credited with time before treatment (immortal time). Beside each naive log-rank test: a Cox model with the treatment as a time-dependent covariate (counted from its start; Efron ties), landmark analyses, and the Simon-Makuch curves under Figures.'

#: Exclusion rows (patient x analysis) listed in report.html and report.md; all are counted
#: there, and every one is in results.json (a large cohort can have millions).
EXCLUSIONS_LISTED = 1000


def exclusions_listed(exclusions: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The first :data:`EXCLUSIONS_LISTED` exclusion rows, and a sentence on the others ("" if none)."""
    more = len(exclusions) - EXCLUSIONS_LISTED
    if more <= 0:
        return exclusions, ""
    return exclusions.head(EXCLUSIONS_LISTED), (f"The first {EXCLUSIONS_LISTED:,} are listed; the other "
                                                f"{more:,} are counted above, and every one is in results.json.")


def exclusion_counts(exclusions: pd.DataFrame) -> pd.DataFrame:
    """Excluded patients per analysis: ``analysis``, ``excluded``, ``reasons``."""
    if exclusions.empty:
        return pd.DataFrame(columns=["analysis", "excluded", "reasons"])
    rows = []
    for name, block in exclusions.groupby("analysis", sort=False):
        rows.append({"analysis": name, "excluded": len(block),
                     "reasons": "; ".join(dict.fromkeys(str(r) for r in block["reason"]))})
    return pd.DataFrame(rows)


def build_content(plan_result, comparison, card, metadata: dict, title: str, *, mode: str = "reproduction",
                  seed=None, cohort_label: str = "the cohort") -> ReportContent:
    """Collect a report's content (figures are added by the writer)."""
    from failpattern.report.methods import methods_paragraph
    from failpattern.report.paper_tables import paper_tables

    skipped = plan_result.skipped
    if not skipped.empty:
        skipped["ids"] = [", ".join(map(str, i)) for i in skipped["ids"]]
    summary = shown = by_kind = changed = None
    judging = ""
    tables = []
    if comparison is not None:
        tables = paper_tables(comparison, card)
        from failpattern.study.compare import summarize, summarize_by_kind

        shown = comparison_display(comparison, card)
        summary = summarize(comparison)
        by_kind = summarize_by_kind(comparison).astype(str)
        changed = shown[shown["changed_conclusion"].astype(bool)]
        with_baseline = "baseline" in comparison.columns and bool(comparison.attrs.get("baseline"))
        judging = judging_text(comparison.attrs.get("profile", "printed"), with_baseline)
        if with_baseline:
            status = comparison["baseline"].value_counts()
            judging = (f"Of the {int((comparison['verdict'] == 'differs').sum())} that differ, "
                       f"{int(status.get('accepted', 0))} are declared in the baseline with their reasons and "
                       f"{int(status.get('new', 0) + status.get('changed', 0))} are not. " + judging)
    return ReportContent(title=title, metadata=metadata, comparison=shown, summary=summary,
                         values=values_display(plan_result.values, card), skipped=skipped,
                         exclusions=plan_result.exclusions_frame(), by_kind=by_kind, changed=changed,
                         judging=judging, mode=mode, paper_tables=tables,
                         methods=methods_paragraph(plan_result, seed=seed, cohort_label=cohort_label),
                         **_ph(plan_result), **_audit(plan_result))


def _p(p: float) -> str:
    return "-" if p != p else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _audit(plan_result) -> dict:
    """The methods audit for a report (``audit``, ``audit_notes``)."""
    audit = plan_result.audit
    rows = []
    for a in audit.comparisons:
        td = a.time_dependent
        lm = "; ".join(f"{r.landmark:g} mo: n {r.n}, {r.n_treated} treated, p {_p(r.p)}"
                       for r in a.landmarks.itertuples())
        rows.append({"figure": a.figure, "comparison": f"{a.endpoint} by {a.treatment}",
                     "naive": f"p {_p(a.naive['p'])}, HR {a.naive['hr']:.2f}",
                     "time_dependent": ("-" if td["hr"] != td["hr"] else
                                        f"HR {td['hr']:.2f} ({td['hr_lower']:.2f}-{td['hr_upper']:.2f}), "
                                        f"p {_p(td['p'])}"),
                     "landmarks": lm or "-", "holds": {True: "yes", False: "no", None: "not judged"}[a.holds]})
    notes = [a.conclusion for a in audit.comparisons]
    notes += [f"{r.comparison}: not audited ({r.reason})." for r in audit.skipped.itertuples()]
    return {"audit": pd.DataFrame(rows) if rows else None, "audit_notes": notes}


#: The Cox model whose proportional-hazards assumption the report tests.
PH_MODEL = "pfs1.cox.multi"


def _ph(plan_result) -> dict:
    """The proportional-hazards test of :data:`PH_MODEL` for a report (``ph``, ``ph_note``)."""
    from failpattern.errors import FailpatternError
    from failpattern.stats import proportional_hazards_test

    if PH_MODEL not in plan_result.cox:
        return {"ph": None, "ph_note": "The multivariable PFS1 Cox model was not fitted on this cohort "
                                       "(see Analyses not run)."}
    data = plan_result.model_data(PH_MODEL)
    try:
        z = proportional_hazards_test(data, duration="time", event="event", covariates=list(data.columns[2:]),
                                      ties="breslow")
    except FailpatternError as exc:
        return {"ph": None, "ph_note": f"The test could not be computed: {exc}"}
    table = z.to_frame()
    shown = pd.DataFrame({"covariate": table["covariate"], "chisq": [f"{x:.2f}" for x in table["chisq"]],
                          "df": [f"{x:g}" for x in table["df"]],
                          "p": [f"{x:.3f}" if x >= 0.001 else "< 0.001" for x in table["p"]]})
    low = [c for c, p in zip(table["covariate"], table["p"]) if p < 0.05 and c != "GLOBAL"]
    overall = float(table.loc[table["covariate"] == "GLOBAL", "p"].iloc[0]) if (table["covariate"] == "GLOBAL").any() \
        else float("nan")
    note = (f"Score test of each covariate's hazard ratio changing with time (1 - Kaplan-Meier time scale, "
            f"Breslow ties; R's cox.zph) in the multivariable PFS1 Cox model, {z.n} patients and {z.n_events} "
            "events. " + (f"p < 0.05 for {', '.join(low)}: the hazard ratio reported for "
                          f"{'it is an average' if len(low) == 1 else 'each is an average'} over a time-varying "
                          "effect." if low else "No covariate's test is below 0.05.")
            + (f" Global test p = {overall:.3f}." if overall == overall else ""))
    return {"ph": shown, "ph_note": note}


def judging_text(profile: str, with_baseline: bool = False) -> str:
    """How the numbers of a report are judged, in words, for the profile used."""
    from failpattern.study.judge import PROFILES

    text = (f"Every printed number — point values, both confidence limits, both ends of a range — is judged on "
            f"its own row. Profile {profile}: {PROFILES[profile]} Rounding is half-up, as statistics packages "
            "print. A changed conclusion (a p-value on the other side of 0.05, a ratio on the other side of 1) "
            "is flagged whatever the verdict. Not reproducible from these data: design constants, cited "
            "numbers, and quantities the cohort format or this cohort cannot give (see the note). Contradicted "
            "by the paper: the paper prints other numbers that cannot hold together with this one, and the "
            "cohort reproduces those.")
    if with_baseline:
        text += (" The baseline column says whether a difference is declared in the baseline (accepted, with "
                 "its reason in results.json) or new.")
    return text
