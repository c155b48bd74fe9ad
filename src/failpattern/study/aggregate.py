"""Exact reproduction of what a study card's published counts determine.

Why this module exists: without the individual data most of a paper cannot be
re-computed, but some of it can, exactly, from the numbers printed beside it:
percentages from their counts, contingency-table p-values from the cell counts,
the Wald p-value of a hazard ratio from its confidence interval, the centre of
a CI (geometric for ratios; arithmetic for the SPSS Kaplan-Meier median CI).
Doing this first tells which test the authors used for each p-value (the paper
says only "chi-square or Fisher's exact test") and separates the paper's own
inconsistencies from the errors of a re-analysis.

"Reproduced at printed precision" means: the recomputed value, rounded half
away from zero to the printed number of decimals, equals the printed value
(for ``relation: lt`` etc., satisfies the bound). Where the inputs are
themselves rounded (CI bounds), the recomputation is an interval spanning
every input consistent with the printed digits, and a match means that
interval overlaps the printed value's rounding interval.

Contingency p-values come from :func:`failpattern.stats.contingency.contingency_test`
(Pearson chi-square, Yates-corrected chi-square, Fisher's exact test, which
match R's ``chisq.test`` and ``fisher.test``; the likelihood-ratio G test and
Pearson's 'N-1' chi-square, which for a 2 x 2 table is SPSS's "Linear-by-Linear
Association" row, so an SPSS user may have copied either from the same output).
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri  # not scipy.stats: ~0.4 s to import, same functions

from failpattern.stats.contingency import contingency_test
from failpattern.study.card import METHODS, CardNumber, StudyCard, printed_round

__all__ = ["recompute_aggregates", "AGGREGATE_COLUMNS", "VERDICTS"]

AGGREGATE_COLUMNS = ("id", "kind", "published", "relation", "decimals", "recomputed", "pearson", "yates",
                     "fisher", "g", "n_minus_1", "auto", "matches", "within_tolerance", "tolerance", "verdict",
                     "detail")

#: Verdicts, best first.
VERDICTS = ("reproduced", "inconsistent (noted in card)", "close (within tolerance only)", "NOT REPRODUCED")

_CONTINGENCY = ("chisq_p", "fisher_p", "contingency_p")
# how each contingency_test method is named in the ``detail`` text
_DETAIL_NAMES = {"pearson": "pearson", "yates": "yates", "fisher": "fisher", "g": "G", "n-1": "N-1"}


def recompute_aggregates(card: StudyCard) -> pd.DataFrame:
    """Recompute from a card's published counts everything they determine.

    Parameters
    ----------
    card : StudyCard
        A loaded card (:func:`failpattern.study.load_study`).

    Returns
    -------
    pandas.DataFrame
        One row per recomputation, with columns

        ``id``
            Number id (or check id for ``kind == "sum"``).
        ``kind``
            ``"proportion"`` (count / denominator), ``"implied_count"`` (which
            integer count over which denominator gives a printed rate),
            ``"contingency_p"`` (Pearson, Yates, Fisher, G, N-1 on the card's table),
            ``"wald_p_from_ci"`` (two-sided Wald p of a ratio from its CI),
            ``"estimate_from_ci"`` (geometric centre of a ratio's CI),
            ``"ci_midpoint"`` (arithmetic centre of an SPSS Kaplan-Meier median
            CI, which SPSS builds as median +/- 1.96 SE) or ``"sum"`` (a check).
        ``published``, ``relation``, ``decimals``
            The printed value, its relation (``eq``, ``lt``...) and printed decimals.
        ``recomputed``
            The recomputed value (for p-values, the matching test's, else the closest).
        ``pearson``, ``yates``, ``fisher``, ``g``, ``n_minus_1``, ``auto``
            Contingency p-values per test (``nan`` elsewhere; Yates only for 2 x 2):
            Pearson chi-square, Yates-corrected chi-square, Fisher's exact test, the
            likelihood-ratio G test (SPSS "Likelihood Ratio") and Pearson's 'N-1'
            chi-square (X2 (N - 1) / N; SPSS "Linear-by-Linear Association" for a
            2 x 2 table); and the test ``method="auto"`` picks (Pearson or Fisher).
        ``matches``
            Tuple of the methods that reproduce the value at printed precision
            (for p-values, among ``"pearson"``, ``"yates"``, ``"fisher"``, ``"g"``
            and ``"n-1"``, the :func:`~failpattern.stats.contingency.contingency_test`
            method names).
        ``within_tolerance``
            Tuple of the methods within the card's tolerance.
        ``tolerance``
            The number's tolerance.
        ``verdict``
            One of :data:`VERDICTS`.
        ``detail``
            The arithmetic, in words.
    """
    rows: list[dict] = []
    records = [card.get(i) for i in card.ids]
    for r in records:
        if r.method == "proportion" and r.numerator is not None:
            rows.append(_proportion(card, r))
        elif r.method in ("proportion", "rate") and (r.denominator is not None or card.populations[r.population].n):
            rows.append(_implied_count(card, r))
        if r.method in _CONTINGENCY and (r.table is not None or r.events is not None):
            rows.append(_contingency(card, r))
        if r.estimate is not None:
            rows.append(_wald_p(card, r, card.get(r.estimate)))
        if METHODS[r.method].kind == "ratio" and r.ci_lower is not None:
            rows.append(_estimate_from_ci(r))
        if r.method == "km_median" and r.ci_lower is not None and r.convention == "spss22":
            rows.append(_ci_midpoint(r))
    for c in card.checks:
        total = card.resolve(c.total)
        got = sum(card.resolve(t) for t in c.terms)
        rows.append(_row(c.id, "sum", total, "eq", 0, got, ("sum",) if got == total else (),
                         ("sum",) if got == total else (), 0.0, c.inconsistency,
                         " + ".join(f"{card.resolve(t):g}" for t in c.terms) + f" = {got:g}"))
    frame = pd.DataFrame(rows, columns=list(AGGREGATE_COLUMNS))
    return frame


# ----------------------------------------------------------------------------- kinds
def _row(id_, kind, published, relation, decimals, recomputed, matches, within, tolerance, inconsistency,
         detail, **tests) -> dict:
    if matches:
        verdict = VERDICTS[0]
    elif inconsistency:
        verdict = VERDICTS[1]
    elif within:
        verdict = VERDICTS[2]
    else:
        verdict = VERDICTS[3]
    row = {"id": id_, "kind": kind, "published": published, "relation": relation, "decimals": decimals,
           "recomputed": recomputed, "pearson": np.nan, "yates": np.nan, "fisher": np.nan, "g": np.nan,
           "n_minus_1": np.nan, "auto": None,
           "matches": tuple(matches), "within_tolerance": tuple(within), "tolerance": tolerance,
           "verdict": verdict, "detail": detail}
    row.update(tests)
    return row


def _printed_match(x: float, r: CardNumber) -> bool:
    """Does ``x`` reproduce the printed value of ``r`` at its printed precision? (The judge's
    printed rule, :func:`failpattern.study.judge.judge`; "approximately" taken as printed.)"""
    from failpattern.study.judge import VERDICTS as JUDGED
    from failpattern.study.judge import judge

    if not math.isfinite(x):
        return False
    relation = "eq" if r.relation == "approx" else r.relation
    return judge(x, r.value, decimals=r.decimals, relation=relation, method=r.method).verdict == JUDGED[0]


def _interval_match(lo: float, hi: float, r: CardNumber) -> bool:
    """Does the interval [lo, hi] of possible recomputed values reproduce ``r``?"""
    if r.relation in ("lt", "le"):
        return lo < r.value if r.relation == "lt" else lo <= r.value
    if r.relation in ("gt", "ge"):
        return hi > r.value if r.relation == "gt" else hi >= r.value
    h = 0.5 * 10.0 ** -r.decimals
    return lo <= r.value + h and hi >= r.value - h


def _proportion(card: StudyCard, r: CardNumber) -> dict:
    num = sum(card.resolve(i) for i in r.numerator)
    den = card.denominator_of(r)
    pct = 100.0 * num / den
    if r.relation == "approx":  # an approximation is judged by the judge's rule for it: within one patient
        from failpattern.study.judge import VERDICTS as JUDGED
        from failpattern.study.judge import judge

        ok = judge(pct, r.value, decimals=r.decimals, relation="approx", method=r.method,
                   one_patient=100.0 / den).verdict == JUDGED[0]
    else:
        ok = _printed_match(pct, r)
    within = ok or abs(pct - r.value) <= (r.tolerance or 0.0)
    return _row(r.id, "proportion", r.value, r.relation, r.decimals, pct, ("count/denominator",) if ok else (),
                ("count/denominator",) if within else (), r.tolerance, r.inconsistency,
                f"{num:g}/{den:g} = {pct:.4f}%")


def _implied_count(card: StudyCard, r: CardNumber) -> dict:
    """Which integer k over which candidate denominator prints as the published percentage."""
    candidates = [(r.population, card.populations[r.population].n)]
    if r.denominator is not None:
        candidates.append((str(r.denominator), card.resolve(r.denominator)))
    matches, parts, found, nearest = [], [], None, None
    for name, n in dict(candidates).items():
        if not n:
            continue
        ks = [k for k in range(int(n) + 1) if printed_round(100.0 * k / n, r.decimals) == r.value]
        if ks:
            matches += [f"{k}/{n:g} ({name})" for k in ks]
            found = found if found is not None else 100.0 * ks[0] / n
            parts.append(f"{name} (n = {n:g}): k = {', '.join(map(str, ks))}")
        else:
            k = round(r.value * n / 100.0)
            nearest = nearest if nearest is not None else 100.0 * k / n
            parts.append(f"{name} (n = {n:g}): no integer k (nearest {k}/{n:g} = {100.0 * k / n:.2f}%)")
    best = found if found is not None else nearest
    return _row(r.id, "implied_count", r.value, r.relation, r.decimals, best, tuple(matches), tuple(matches),
                r.tolerance, r.inconsistency, "; ".join(parts))


def _table(card: StudyCard, r: CardNumber) -> list[list[int]]:
    if r.table is not None:
        return [[int(card.resolve(c)) for c in row] for row in r.table]
    return [[int(card.resolve(e)), int(card.resolve(t) - card.resolve(e))] for e, t in zip(r.events, r.totals)]


def _contingency(card: StudyCard, r: CardNumber) -> dict:
    table = _table(card, r)
    is2x2 = len(table) == 2 and len(table[0]) == 2
    ps = {"pearson": contingency_test(table, method="pearson").p_value,
          "yates": contingency_test(table, method="yates").p_value if is2x2 else np.nan,
          "fisher": contingency_test(table, method="fisher").p_value,
          "g": contingency_test(table, method="g").p_value,
          "n-1": contingency_test(table, method="n-1").p_value}
    auto = contingency_test(table, method="auto").method
    tol = r.tolerance or 0.0
    matches = tuple(m for m, p in ps.items() if not math.isnan(p) and _printed_match(p, r))
    within = tuple(m for m, p in ps.items() if not math.isnan(p) and abs(p - r.value) <= tol)
    finite = {m: p for m, p in ps.items() if not math.isnan(p)}
    pick = matches[0] if matches else min(finite, key=lambda m: abs(finite[m] - r.value))
    detail = (f"table {table}: " + ", ".join(f"{_DETAIL_NAMES[m]} {p:.4f}" for m, p in finite.items())
              + f"; auto picks {auto}")
    return _row(r.id, "contingency_p", r.value, r.relation, r.decimals, ps[pick], matches, within, r.tolerance,
                r.inconsistency, detail, pearson=ps["pearson"], yates=ps["yates"], fisher=ps["fisher"], g=ps["g"],
                n_minus_1=ps["n-1"], auto=auto)


def _bounds(value: float, decimals: int) -> tuple[float, float]:
    h = 0.5 * 10.0 ** -decimals
    return value - h, value + h


def _wald_p(card: StudyCard, r: CardNumber, est: CardNumber) -> dict:
    """Two-sided Wald p of a ratio from its printed estimate and CI (SE from the CI width on the log scale)."""
    z = ndtri(0.5 + est.ci_level / 2)  # scipy.stats.norm.ppf

    def p_of(e, lo, hi):
        se = (math.log(hi) - math.log(lo)) / (2 * z)
        return 2 * ndtr(-abs(math.log(e)) / se)  # scipy.stats.norm.sf

    central = p_of(est.value, est.ci_lower, est.ci_upper)
    e_b = _bounds(est.value, est.decimals)
    lo_b = _bounds(est.ci_lower, est.ci_decimals[0])
    hi_b = _bounds(est.ci_upper, est.ci_decimals[1])
    corners = [p_of(e, max(lo, 1e-12), hi) for e, lo, hi in product(e_b, lo_b, hi_b)]
    p_lo, p_hi = min(corners), (1.0 if e_b[0] <= 1 <= e_b[1] else max(corners))
    ok = _printed_match(central, r) or _interval_match(p_lo, p_hi, r)
    within = ok or abs(central - r.value) <= (r.tolerance or 0.0)
    return _row(r.id, "wald_p_from_ci", r.value, r.relation, r.decimals, central, ("wald_from_ci",) if ok else (),
                ("wald_from_ci",) if within else (), r.tolerance, r.inconsistency,
                f"{est.value:g} ({est.ci_lower:g}-{est.ci_upper:g}): p = {central:.4f}, "
                f"[{p_lo:.4f}, {p_hi:.4f}] over the rounding of the printed digits")


def _estimate_from_ci(r: CardNumber) -> dict:
    lo_b = _bounds(r.ci_lower, r.ci_decimals[0])
    hi_b = _bounds(r.ci_upper, r.ci_decimals[1])
    central = math.sqrt(r.ci_lower * r.ci_upper)
    g_lo, g_hi = math.sqrt(max(lo_b[0], 0.0) * hi_b[0]), math.sqrt(lo_b[1] * hi_b[1])
    ok = _interval_match(g_lo, g_hi, r)
    return _row(r.id, "estimate_from_ci", r.value, r.relation, r.decimals, central,
                ("geometric_mean_of_ci",) if ok else (), ("geometric_mean_of_ci",) if ok else (), r.tolerance,
                r.inconsistency, f"sqrt({r.ci_lower:g} x {r.ci_upper:g}) = {central:.4f}; "
                                 f"[{g_lo:.4f}, {g_hi:.4f}] over the rounding of the bounds")


def _ci_midpoint(r: CardNumber) -> dict:
    mid = (r.ci_lower + r.ci_upper) / 2
    h = 0.5 * (0.5 * 10.0 ** -r.ci_decimals[0] + 0.5 * 10.0 ** -r.ci_decimals[1])
    ok = _interval_match(mid - h, mid + h, r)
    return _row(r.id, "ci_midpoint", r.value, r.relation, r.decimals, mid, ("spss_symmetric_ci",) if ok else (),
                ("spss_symmetric_ci",) if ok else (), r.tolerance, r.inconsistency,
                f"({r.ci_lower:g} + {r.ci_upper:g}) / 2 = {mid:.3f}: SPSS prints median +/- 1.96 SE")
