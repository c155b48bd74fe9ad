"""Published versus reproduced: every number of a study card beside the plan's value.

Why this module exists: a reproduction is judged number by number. For each
card number :func:`compare` gives the published value, the value the plan
computed from the patient-level data, their difference, the tolerance and a
verdict:

``within tolerance``
    ``|reproduced - published| <= tolerance`` (for a bound such as
    "p < 0.001": the reproduced value satisfies the bound, widened by the
    tolerance).
``outside``
    Computed, but further away; or a Kaplan-Meier median not reached while
    the curve stays above 50% beyond the published median plus its tolerance
    (the cohort's median is then known to be larger).
``contradicted by the paper``
    Outside, but the card records (``contradicted_by``) published numbers
    that cannot all hold together with this one, and the cohort reproduces
    every one of them: no cohort could reproduce both sides, so the number
    is reported, not counted as a failure. If any of those numbers is itself
    outside, the verdict stays ``outside``.
``not reproducible from these data``
    Numbers patient-level data in the cohort format cannot give: design
    constants (``protocol``), numbers cited from other studies (``cited``),
    variables the format does not have (:data:`~failpattern.study.plan.NOT_FROM_DATA`)
    and analyses this cohort cannot support (a missing optional column, no
    events, a model that did not converge, a value that is not estimable such
    as a median not reached before the published one; the ``note`` says
    which). None of these can disagree with the paper, so ``failpattern
    check`` does not count them as failures.

**Tolerance.** The card's ``tolerance`` (the method's default unless the number
sets one) times the profile's factor — ``strict`` 0.5, ``default`` 1, ``loose``
2 — but never less than half a unit of the printed last digit, so a value that
rounds to the printed one always passes. Counts have tolerance 0 and so must
match exactly in every profile.

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

import numpy as np
import pandas as pd

from failpattern.errors import InputError
from failpattern.study.card import StudyCard
from failpattern.study.plan import NOT_FROM_DATA, PlanResult, aggregates_for

__all__ = ["COMPARE_COLUMNS", "PROFILES", "VERDICTS", "compare", "contradicted_numbers", "summarize"]

#: Tolerance factor per profile.
PROFILES = {"strict": 0.5, "default": 1.0, "loose": 2.0}
#: The verdicts.
VERDICTS = ("within tolerance", "outside", "contradicted by the paper", "not reproducible from these data")
#: Columns of :func:`compare`'s table (the first eight are the comparison proper).
COMPARE_COLUMNS = ("id", "section", "description", "published", "reproduced", "difference", "tolerance",
                   "verdict", "relation", "method", "convention", "published_ci_lower", "published_ci_upper",
                   "reproduced_ci_lower", "reproduced_ci_upper", "aggregate", "note")

_NOT_TARGET = {"protocol": "a design constant or definition, not a result",
               "cited": "a number quoted from another study"}
_AGG: weakref.WeakKeyDictionary[StudyCard, dict] = weakref.WeakKeyDictionary()


def _section(location: str) -> str:
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


def _num(x) -> float:
    return np.nan if x is None else float(x)


def _within(reproduced: float, published: float, relation: str, tol: float) -> bool:
    eps = 1e-9 * max(1.0, abs(published))
    if relation in ("lt", "le"):
        return reproduced < published + tol + eps if relation == "lt" else reproduced <= published + tol + eps
    if relation in ("gt", "ge"):
        return reproduced > published - tol - eps if relation == "gt" else reproduced >= published - tol - eps
    return abs(reproduced - published) <= tol + eps


def _not_estimable(plan_result: PlanResult, r, published: float, tol: float, note: str) -> tuple[str, str]:
    """Verdict and note of a number the plan could not estimate (its value is NaN).

    A value that cannot be computed cannot disagree with the paper: "not
    reproducible from these data". The one exception is a Kaplan-Meier median
    that is not reached while the curve stays above 50% beyond the published
    median plus its tolerance: the cohort's median is then known to be larger,
    which is a disagreement ("outside").
    """
    if r.method == "km_median" and r.relation in ("eq", "lt", "le"):
        km = plan_result.km.get(r.id.replace(".median", "", 1))
        if km is not None and km.time.size and not math.isfinite(km.median):
            last = float(km.time[-1])
            if last > published + tol:
                return VERDICTS[1], (f"median not reached: survival stays above 50% up to {last:g} months, "
                                     f"beyond the published median {published:g} (tolerance {tol:g})")
            return VERDICTS[3], (f"median not reached: survival stays above 50% up to the last follow-up, "
                                 f"{last:g} months, not beyond the published median {published:g} plus its "
                                 f"tolerance {tol:g}; the median cannot be estimated from these data")
    return VERDICTS[3], "not estimable from these data" + ("; " + note if note else "")


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


def compare(plan_result: PlanResult, card: StudyCard, *, profile: str = "default") -> pd.DataFrame:
    """Set every number of ``card`` beside the value ``plan_result`` reproduced.

    Parameters
    ----------
    plan_result : PlanResult
        From :func:`~failpattern.study.plan.run_plan`.
    card : StudyCard
        The card the numbers come from (normally the one the plan ran with).
    profile : {"default", "strict", "loose"}
        Tolerance factor 1, 0.5 or 2 applied to each card tolerance (see the
        module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per card number, in card order, with columns
        :data:`COMPARE_COLUMNS`: ``id``, ``section`` (Abstract, Results...,
        Table 1, Fig. 1a...), ``description``, ``published``, ``reproduced``,
        ``difference`` (reproduced - published), ``tolerance`` (after the
        profile), ``verdict`` (one of :data:`VERDICTS`), ``relation``,
        ``method``, ``convention``, the published and reproduced confidence
        limits (``published_ci_lower`` ... ``reproduced_ci_upper``; not part of
        the verdict), ``aggregate`` (what
        :func:`~failpattern.study.aggregate.recompute_aggregates` says of the
        printed number, or empty) and ``note`` (why not reproducible; the
        plan's note; the card's inconsistency). ``attrs["profile"]`` names the
        tolerance profile; :func:`summarize` counts the verdicts. (Only plain
        values go in ``attrs``: pandas compares them when it concatenates.)
    """
    if profile not in PROFILES:
        raise InputError(f"profile: choose one of {', '.join(PROFILES)}; got {profile!r}")
    factor = PROFILES[profile]
    v = plan_result.values.drop_duplicates("id")
    values = dict(zip(v["id"], zip(v["value"].to_numpy(float), v["note"], v["ci_lower"].to_numpy(float),
                                   v["ci_upper"].to_numpy(float))))
    skipped = {}
    for s in plan_result.skipped.itertuples():
        for i in s.ids:
            skipped.setdefault(i, f"not computed for this cohort ({s.analysis}): {s.reason}")
    agg = _aggregates(card)
    rows = []
    for r in card.numbers.itertuples():
        published = float(r.value)
        decimals = int(r.decimals)
        base = 0.0 if r.tolerance is None or (isinstance(r.tolerance, float) and math.isnan(r.tolerance)) \
            else float(r.tolerance)
        tol = max(factor * base, 0.5 * 10.0 ** -decimals) if r.method not in _NOT_TARGET else np.nan
        row = {"id": r.id, "section": _section(r.location), "description": _describe(r),
               "published": published, "reproduced": np.nan, "difference": np.nan, "tolerance": tol,
               "relation": r.relation, "method": r.method, "convention": r.convention,
               "published_ci_lower": _num(r.ci_lower), "published_ci_upper": _num(r.ci_upper),
               "reproduced_ci_lower": np.nan, "reproduced_ci_upper": np.nan,
               "aggregate": agg.get(r.id, ""), "note": ""}
        if r.method in _NOT_TARGET:
            row.update(verdict=VERDICTS[3], note=_NOT_TARGET[r.method])
        elif r.id in NOT_FROM_DATA:
            row.update(verdict=VERDICTS[3], note=NOT_FROM_DATA[r.id])
        elif r.id not in values:
            row.update(verdict=VERDICTS[3], note=skipped.get(r.id, "the plan does not compute this number"))
        else:
            x, note, lo, hi = values[r.id]
            x = float(x)
            row.update(reproduced=x, difference=x - published, note=note or "", reproduced_ci_lower=lo,
                       reproduced_ci_upper=hi)
            if math.isfinite(x):
                row["verdict"] = VERDICTS[0] if _within(x, published, r.relation, tol) else VERDICTS[1]
            else:
                row["verdict"], row["note"] = _not_estimable(plan_result, r, published, tol, row["note"])
        if isinstance(r.inconsistency, str) and r.inconsistency:
            row["note"] = (row["note"] + "; " if row["note"] else "") + "card: " + r.inconsistency
        rows.append(row)
    _contradicted(rows, card)
    out = pd.DataFrame(rows, columns=[c for c in COMPARE_COLUMNS])
    out.attrs["profile"] = profile
    return out


def contradicted_numbers(card: StudyCard, passed) -> dict[str, tuple[str, ...]]:
    """The failed numbers the paper itself contradicts, and what was reproduced instead.

    A number that did not pass and whose card entry lists ``contradicted_by`` ids that all
    passed cannot be reproduced together with them. The decision uses ``passed`` as given,
    so two failed numbers that name each other cannot excuse each other.

    Parameters
    ----------
    card : StudyCard
        Where ``contradicted_by`` is read.
    passed : Mapping of str to bool
        Each number id judged, and whether it passed (ids not in the card are ignored).

    Returns
    -------
    dict of str to tuple of str
        For each such number, the ids it is contradicted by.
    """
    out = {}
    for i, ok in passed.items():
        others = card.get(i).contradicted_by if i in card else ()
        if not ok and others and all(passed.get(o, False) for o in others):
            out[i] = others
    return out


def _contradicted(rows: list[dict], card: StudyCard) -> None:
    """Outside numbers the paper contradicts become "contradicted by the paper"."""
    excused = contradicted_numbers(card, {row["id"]: row["verdict"] == VERDICTS[0] for row in rows
                                          if row["verdict"] in VERDICTS[:2]})
    for row in rows:
        if row["id"] in excused:
            row["verdict"] = VERDICTS[2]
            held = ", ".join(excused[row["id"]])
            row["note"] = (f"the paper contradicts itself: the cohort reproduces {held}, which cannot hold "
                           f"together with this number" + ("; " + row["note"] if row["note"] else ""))


def summarize(comparison: pd.DataFrame) -> pd.DataFrame:
    """Counts by verdict: one row per verdict (all four, zeros kept) with ``n`` and ``percent``."""
    counts = comparison["verdict"].value_counts().reindex(list(VERDICTS), fill_value=0)
    total = int(counts.sum())
    return pd.DataFrame({"verdict": counts.index, "n": counts.to_numpy(),
                         "percent": 100.0 * counts.to_numpy() / max(total, 1)})
