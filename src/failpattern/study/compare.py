"""Published versus reproduced: every printed number of a study card beside the plan's value.

Why this module exists: a reproduction is judged number by number, and the
reader's question is whether the paper's printed digits come out of the data.
:func:`compare` sets every printed *part* of every card number — the point
value, both confidence limits of a median or ratio, both ends of a range —
beside the value the plan computed from the patient-level data, each on its
own row with its own verdict, judged by the rules of
:mod:`failpattern.study.judge` (which documents the rounding):

``matches as printed``
    The reproduced value, rounded half-up to the printed decimals, equals the
    printed value; an inequality ("p < 0.001") holds for the unrounded value.
``near``
    Only under the ``near`` profile: not as printed, but within what a reader
    would accept as the same finding (:data:`~failpattern.study.judge.PROFILES`).
``differs``
    Computed, and neither of the above; or a Kaplan-Meier median not reached
    while the curve stays above 50% beyond the published median (the cohort's
    median is then known to be larger).
``contradicted by the paper``
    Differs, but the card records (``contradicted_by``) published numbers that
    cannot all hold together with this one, and the cohort reproduces every one
    of them: no cohort could reproduce both sides, so the number is reported,
    not counted as a failure. If any of those numbers itself differs, the
    verdict stays ``differs``.
``not reproducible from these data``
    Numbers patient-level data in the cohort format cannot give: design
    constants (``protocol``), numbers cited from other studies (``cited``),
    variables the format does not have (:data:`~failpattern.study.plan.NOT_FROM_DATA`)
    and analyses this cohort cannot support (a missing optional column, no
    events, a model that did not converge, a value that is not estimable such
    as a median not reached before the published one; the ``note`` says
    which). None of these can disagree with the paper.

Apart from the verdict, a point value whose conclusion differs from the
paper's — a p-value on the other side of 0.05, a hazard ratio on the other
side of 1 — is flagged in ``changed_conclusion`` whatever the profile
(:func:`~failpattern.study.judge.changed_conclusion`); :func:`changed` lists
those rows, which every output shows first.

**Aggregates.** What the printed counts alone determine is recomputed by
:func:`~failpattern.study.aggregate.recompute_aggregates`, not here; its
verdict for each id is carried in the ``aggregate`` column, so a number the
paper itself gets wrong (``inconsistent (noted in card)``) is told apart from
a failed reproduction.
"""

from __future__ import annotations

import math
import re
import weakref
from types import MappingProxyType

import numpy as np
import pandas as pd

from failpattern.errors import InputError
from failpattern.study.card import StudyCard
from failpattern.study.design import aggregates_for
from failpattern.study.judge import (
    PROFILES,
    VERDICTS,
    changed_conclusion,
    format_printed,
    judge,
    kind_of,
)
from failpattern.study.plan import NOT_FROM_DATA, PlanResult

__all__ = ["COMPARE_COLUMNS", "NOT_TARGET", "PROFILES", "VERDICTS", "changed", "compare", "contradicted_numbers",
           "contradicted_parts", "printed_parts", "section_of", "summarize", "summarize_by_kind"]

#: Columns of :func:`compare`'s table.
COMPARE_COLUMNS = ("id", "part", "section", "description", "kind", "published", "printed", "reproduced",
                   "reproduced_as_printed", "difference", "verdict", "rule", "changed_conclusion", "relation",
                   "decimals", "method", "convention", "aggregate", "note")

#: Card methods whose numbers no cohort reproduces, and why.
NOT_TARGET = MappingProxyType({"protocol": "a design constant or definition, not a result",
                               "cited": "a number quoted from another study"})
_AGG: weakref.WeakKeyDictionary[StudyCard, dict] = weakref.WeakKeyDictionary()


def section_of(location: str) -> str:
    """Paper section from a card location: 'Table 1', 'Fig. 1a', 'Abstract', 'Results, PFS2'..."""
    m = re.match(r"\s*((?:Table|Fig\.?|Figure)\s*\w+)", location or "")
    if m:
        return m.group(1)
    return (location or "").split("¶")[0].strip().rstrip(",") or "unknown"


def _aggregates(card: StudyCard) -> dict:
    if card not in _AGG:
        agg = aggregates_for(card)
        out: dict[str, str] = {}
        for r in agg.itertuples():
            out[r.id] = "; ".join(filter(None, [out.get(r.id), f"{r.kind}: {r.verdict}"]))
        _AGG[card] = out
    return _AGG[card]


def printed_parts(r) -> list[tuple[str, float, int, str]]:
    """(part, printed value, printed decimals, relation) of every printed part of card number ``r``."""
    out = [("value", float(r.value), int(r.decimals), r.relation)]
    if r.ci_lower is not None and r.ci_lower == r.ci_lower:
        out += [("ci_lower", float(r.ci_lower), int(r.ci_decimals[0]), "eq"),
                ("ci_upper", float(r.ci_upper), int(r.ci_decimals[1]), "eq")]
    if r.range_lower is not None and r.range_lower == r.range_lower:
        out += [("range_min", float(r.range_lower), int(r.range_decimals[0]), "eq"),
                ("range_max", float(r.range_upper), int(r.range_decimals[1]), "eq")]
    return out


def _not_estimable(plan_result: PlanResult, r, published: float, note: str) -> tuple[str, str]:
    """Verdict and note of a point value the plan could not estimate (NaN).

    A value that cannot be computed cannot disagree with the paper: "not
    reproducible from these data". The one exception is a Kaplan-Meier median
    that is not reached while the curve stays above 50% beyond the published
    median: the cohort's median is then known to be larger ("differs").
    """
    if r.method == "km_median" and r.relation in ("eq", "lt", "le", "approx"):
        km = plan_result.km.get(r.id.replace(".median", "", 1))
        if km is not None and km.time.size and not math.isfinite(km.median):
            last = float(km.time[-1])
            if last > published:
                return VERDICTS[2], (f"median not reached: survival stays above 50% up to {last:g} months, "
                                     f"beyond the published median {published:g}")
            return VERDICTS[4], (f"median not reached: survival stays above 50% up to the last follow-up, "
                                 f"{last:g} months, not beyond the published median {published:g}; the "
                                 "median cannot be estimated from these data")
    return VERDICTS[4], "not estimable from these data" + ("; " + note if note else "")


def _describe(r) -> str:
    parts = [r.method]
    for f in ("endpoint", "grouping"):
        v = getattr(r, f)
        if isinstance(v, str) and v:
            parts.append(v)
    parts.append(f"population {r.population}")
    if isinstance(r.at, float) and not math.isnan(r.at):
        parts.append(f"at {r.at:g}")
    return "; ".join(parts)


def compare(plan_result: PlanResult, card: StudyCard, *, profile: str = "printed") -> pd.DataFrame:
    """Set every printed part of every ``card`` number beside the value ``plan_result`` reproduced.

    Parameters
    ----------
    plan_result : PlanResult
        From :func:`~failpattern.study.plan.run_plan`.
    card : StudyCard
        The card the numbers come from (normally the one the plan ran with).
    profile : {"printed", "near"}
        The judging rule (:data:`~failpattern.study.judge.PROFILES`): the
        paper's printed precision (default), or near it.

    Returns
    -------
    pandas.DataFrame
        One row per printed part, in card order (a number's value, then its
        confidence limits, then its range ends), with columns
        :data:`COMPARE_COLUMNS`: ``id``, ``part`` (``value``, ``ci_lower``,
        ``ci_upper``, ``range_min``, ``range_max``), ``section`` (Abstract,
        Results..., Table 1, Fig. 1a...), ``description``, ``kind`` (count,
        percent, median, CI limit, range end, p-value, ratio, design
        constant), ``published`` (float), ``printed`` (as the paper prints
        it: ``"< 0.001"``, ``"9.8"``), ``reproduced`` (float), ``reproduced_as_printed``
        (rounded the same way), ``difference`` (reproduced - published),
        ``verdict`` (one of :data:`VERDICTS`), ``rule`` (the rule that gave
        it, named by its profile), ``changed_conclusion`` (why the reproduced
        value changes the paper's conclusion, else ``""``), ``relation``,
        ``decimals``, ``method``, ``convention``, ``aggregate`` (what
        :func:`~failpattern.study.aggregate.recompute_aggregates` says of the
        printed number, or empty) and ``note``. ``attrs["profile"]`` names the
        profile (only plain values go in ``attrs``: pandas compares them when
        it concatenates).
    """
    if profile not in PROFILES:
        raise InputError(f"profile: choose one of {', '.join(PROFILES)}; got {profile!r}")
    v = plan_result.values.drop_duplicates("id")
    values = {i: dict(zip(("value", "ci_lower", "ci_upper", "range_min", "range_max", "note"), t))
              for i, t in zip(v["id"], zip(*(v[c].to_numpy(float) for c in
                                             ("value", "ci_lower", "ci_upper", "range_min", "range_max")),
                                           v["note"]))}
    skipped = {}
    for s in plan_result.skipped.itertuples():
        for i in s.ids:
            skipped.setdefault(i, f"not computed for this cohort ({s.analysis}): {s.reason}")
    agg = _aggregates(card)
    rows = []
    for r in card.numbers.itertuples():
        common = {"id": r.id, "section": section_of(r.location), "description": _describe(r),
                  "relation": r.relation, "method": r.method, "convention": r.convention,
                  "aggregate": agg.get(r.id, ""), "changed_conclusion": ""}
        if r.method in NOT_TARGET:
            reason = NOT_TARGET[r.method]
        elif r.id in NOT_FROM_DATA:
            reason = NOT_FROM_DATA[r.id]
        elif r.id not in values:
            reason = skipped.get(r.id, "the plan does not compute this number")
        else:
            reason = None
        got = values.get(r.id, {})
        note = got.get("note") or ""
        one_patient = None
        if kind_of(r.method) == "percent":
            den = card.denominator_of(card.get(r.id))
            one_patient = 100.0 / den if den else None
        for part, published, decimals, relation in printed_parts(r):
            row = dict(common, part=part, kind=kind_of(r.method, part), published=published,
                       printed=format_printed(published, decimals, relation), reproduced=np.nan,
                       reproduced_as_printed="", difference=np.nan, decimals=decimals, rule="",
                       relation=relation, note="")
            if reason is not None:
                row.update(verdict=VERDICTS[4], note=reason)
            else:
                x = float(got[part])
                row.update(reproduced=x, difference=x - published, note=note)
                if math.isfinite(x):
                    j = judge(x, published, decimals=decimals, relation=relation, method=r.method, part=part,
                              profile=profile, one_patient=one_patient)
                    row.update(verdict=j.verdict, rule=j.rule, reproduced_as_printed=j.as_printed)
                    if part == "value":
                        row["changed_conclusion"] = changed_conclusion(x, published, method=r.method,
                                                                       relation=relation, decimals=decimals)
                elif part == "value":
                    row["verdict"], row["note"] = _not_estimable(plan_result, r, published, note)
                else:
                    row.update(verdict=VERDICTS[4], note=f"{part} not estimable from these data")
            if isinstance(r.inconsistency, str) and r.inconsistency:
                row["note"] = (row["note"] + "; " if row["note"] else "") + "card: " + r.inconsistency
            rows.append(row)
    _contradicted(rows, card)
    out = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    out.attrs["profile"] = profile
    return out


def contradicted_parts(card: StudyCard, passed) -> dict[tuple[str, str], tuple[str, ...]]:
    """The failed parts the paper itself contradicts, and what was reproduced instead.

    A part that did not pass and whose card entry lists ``contradicted_by`` ids
    (printed values) that all passed cannot be reproduced together with them.
    The decision uses ``passed`` as given, so two failed numbers that name each
    other cannot excuse each other.

    Parameters
    ----------
    card : StudyCard
        Where ``contradicted_by`` is read.
    passed : Mapping of (str, str) to bool
        Each (number id, part) judged, and whether it passed (others are ignored).

    Returns
    -------
    dict of (str, str) to tuple of str
        For each such part, the ids it is contradicted by.
    """
    out = {}
    for (i, part), ok in passed.items():
        others = card.get(i).contradictions(part) if i in card else ()
        if not ok and others and all(passed.get((o, "value"), False) for o in others):
            out[(i, part)] = others
    return out


def contradicted_numbers(card: StudyCard, passed) -> dict[str, tuple[str, ...]]:
    """:func:`contradicted_parts` for point values: ``passed`` and the result keyed by number id."""
    found = contradicted_parts(card, {(i, "value"): ok for i, ok in passed.items()})
    return {i: others for (i, _), others in found.items()}


def _contradicted(rows: list[dict], card: StudyCard) -> None:
    """Differing parts the paper contradicts become "contradicted by the paper"."""
    passed = {(row["id"], row["part"]): row["verdict"] in VERDICTS[:2] for row in rows
              if row["verdict"] in VERDICTS[:3]}
    excused = contradicted_parts(card, passed)
    for row in rows:
        key = (row["id"], row["part"])
        if key in excused:
            row["verdict"] = VERDICTS[3]
            held = ", ".join(excused[key])
            row["note"] = (f"the paper contradicts itself: the cohort reproduces {held}, which cannot hold "
                           f"together with this number" + ("; " + row["note"] if row["note"] else ""))


def changed(comparison: pd.DataFrame) -> pd.DataFrame:
    """The rows whose reproduced value changes the paper's conclusion (``changed_conclusion`` set)."""
    return comparison[comparison["changed_conclusion"].astype(bool)]


def summarize(comparison: pd.DataFrame) -> pd.DataFrame:
    """Counts by verdict: one row per verdict with ``n`` and ``percent`` (``near`` only under that profile)."""
    verdicts = [v for v in VERDICTS if v != "near" or comparison.attrs.get("profile") == "near"]
    counts = comparison["verdict"].value_counts().reindex(verdicts, fill_value=0)
    total = int(counts.sum())
    return pd.DataFrame({"verdict": counts.index, "n": counts.to_numpy(),
                         "percent": 100.0 * counts.to_numpy() / max(total, 1)})


def summarize_by_kind(comparison: pd.DataFrame) -> pd.DataFrame:
    """Counts of each verdict by kind of number: one row per kind printed, one column per verdict, and ``total``.

    A reader sees at a glance where a reproduction is strong (counts, percentages)
    and where it is weak (CI limits, range ends).
    """
    from failpattern.study.judge import KINDS

    verdicts = list(summarize(comparison)["verdict"])
    table = pd.crosstab(comparison["kind"], comparison["verdict"]).reindex(columns=verdicts, fill_value=0)
    table = table.reindex([k for k in KINDS if k in table.index])
    table["total"] = table.sum(axis=1)
    table.index.name = "kind"
    table.columns.name = None
    return table.reset_index()
