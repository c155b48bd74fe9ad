"""The comparison as text: number formats, the paper's section order, aligned tables.

Why a module of its own: the console table of ``failpattern reproduce``, the
Markdown and the HTML report must print every number the same way, so that a
value read on screen can be found in the report and in ``results.json``. The
rules live here once:

* published values with the paper's own decimals and relation (``< 0.001``);
* reproduced values with one decimal more than printed (so the rounding that
  decides the verdict is visible), counts as integers, p-values below 0.001
  with two significant digits;
* sections in the paper's order — Abstract, Introduction, Methods, Results
  (in card order of their subsections), Discussion, Table 1, 2, 3, figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

__all__ = ["DISPLAY_COLUMNS", "SECTION_ORDER", "comparison_display", "number_label", "fmt_value", "section_key", "text_table", "values_display"]

#: Order of the paper's parts; a section sorts by the first of these it starts with.
SECTION_ORDER = ("Abstract", "Introduction", "Methods", "Results", "Discussion", "Table", "Fig")
_P_METHODS = ("_p",)
#: Columns of :func:`comparison_display`.
DISPLAY_COLUMNS = ("section", "id", "label", "part", "description", "kind", "published", "reproduced", "as_printed",
                   "difference", "verdict", "rule", "changed_conclusion", "baseline", "note")


#: Subsections of Results in the order Ni et al. 2019 prints them (a card records where a number is, not
#: the order of the paper's headings); subsections of other papers follow in card order.
RESULTS_ORDER = ("Patient characteristics", "Crizotinib treatment and PFS1",
                 "Pattern of failure analysis and impact of prior radiotherapy", "Salvage radiotherapy, PFS2 and OS")


def section_key(section: str, first_seen: int = 0) -> tuple:
    """Sort key of a section: its part of the paper, then (Table/Fig) its number or (Results) the
    subsection's place in :data:`RESULTS_ORDER`, then card order."""
    for rank, part in enumerate(SECTION_ORDER):
        if section.startswith(part):
            if part in ("Table", "Fig"):
                return (rank, section, 0, first_seen)
            sub = section[len(part):].lstrip(", ")
            place = RESULTS_ORDER.index(sub) if part == "Results" and sub in RESULTS_ORDER else len(RESULTS_ORDER)
            return (rank, "", place, first_seen)
    return (len(SECTION_ORDER), "", 0, first_seen)


def _is_p(method: str) -> bool:
    return isinstance(method, str) and method.endswith(_P_METHODS)


def _decimals(method: str, decimals: int | None) -> int:
    if method == "count":
        return 0
    if _is_p(method):
        return 4 if decimals is None else int(decimals) + 1
    return (1 if decimals is None else int(decimals)) + 1


def fmt_value(x, method: str = "", decimals: int | None = None, *, sign: bool = False) -> str:
    """A reproduced value (or difference, ``sign=True``) as printed everywhere.

    Parameters
    ----------
    x : float or None
        The value; NaN or None prints as empty, infinities as ``inf``.
    method : str
        The card method (``count``, ``km_median``, ``logrank_p``, ...).
    decimals : int, optional
        Decimals of the published number; the reproduced value gets one more.
    sign : bool
        Always print the sign (for differences).
    """
    if x is None:
        return ""
    x = float(x)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return ("+" if sign and x > 0 else "") + ("inf" if x > 0 else "-inf")
    plus = "+" if sign else ""
    if method == "count" and float(x).is_integer():
        return f"{x:{plus}.0f}"
    if _is_p(method) and 0 < abs(x) < 0.001 and not sign:
        return f"{x:.1e}"
    if round(x, _decimals(method, decimals)) == 0:
        x = 0.0  # no "-0.00"
    return f"{x:{plus}.{_decimals(method, decimals)}f}"


_SHORT = {"count": "patients", "proportion": "%", "rate": "%", "median": "median", "follow_up_median": "median follow-up",
          "km_median": "median", "km_rate_at": "survival %", "cif_at": "cumulative incidence %",
          "logrank_p": "log-rank p", "survival_p": "p", "cox_hr": "HR", "cox_p": "p", "finegray_shr": "SHR",
          "finegray_p": "p", "gray_p": "Gray's test p", "chisq_p": "chi-square p", "fisher_p": "Fisher p",
          "contingency_p": "p", "two_sample_p": "p", "protocol": "design constant", "cited": "cited"}
_ENDPOINTS = {"pfs1": "PFS1", "pfs2": "PFS2", "os": "OS"}
_PART_WORDS = {"value": "", "ci_lower": "lower 95% limit", "ci_upper": "upper 95% limit", "range_min": "minimum",
               "range_max": "maximum"}


def number_label(number, part: str = "value") -> str:
    """A card number in words, as a reader names it: "Sex: Male, RT" for a table cell, else
    "median pfs1, bbm_prior_brain_rt" from its method, endpoint and grouping; a part adds
    "(lower 95% limit)" and the like."""
    from failpattern.study.card import table_cell

    cell = table_cell(number.location)
    if cell:
        text = f"{cell[1]}, {cell[2]}"
    else:
        what = [_ENDPOINTS.get(v, v) for v in (number.endpoint, number.grouping) if isinstance(v, str) and v]
        text = ", ".join(what) + (": " if what else "") + _SHORT.get(number.method, number.method)
        if isinstance(number.at, float) and number.at == number.at:
            text += f" at {number.at:g} months"
        if number.population not in ("all", None):
            text += f" [{number.population.replace('_', ' ')}]"
    word = _PART_WORDS.get(part, part)
    return f"{text} ({word})" if word else text


def _card_info(card) -> dict:
    if card is None:
        return {}
    n = card.numbers
    return {r.id: (int(r.decimals), r.method, r.relation) for r in n[["id", "decimals", "method", "relation"]]
            .itertuples(index=False)}


def comparison_display(comparison: pd.DataFrame, card=None) -> pd.DataFrame:
    """The comparison as strings, sorted by paper section (card order within one).

    Parameters
    ----------
    comparison : pandas.DataFrame
        From :func:`failpattern.study.compare.compare`, optionally with the
        ``baseline`` / ``baseline_note`` columns of
        :func:`failpattern.study.baseline.apply_baseline`.
    card : StudyCard, optional
        Gives each number's ``label`` in words (:func:`number_label`; the id without a card).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DISPLAY_COLUMNS` (``baseline`` only when the comparison
        was set against a baseline file), all text: ``published`` as printed, ``reproduced`` with one
        decimal more than printed, ``as_printed`` rounded as the paper rounds.
    """
    first = {}
    for i, s in enumerate(comparison["section"]):
        first.setdefault(s, i)
    has_baseline = "baseline" in comparison.columns and bool(comparison.attrs.get("baseline"))
    cols = [c for c in DISPLAY_COLUMNS if c != "baseline" or has_baseline]
    numbers = {} if card is None else {i: card.get(i) for i in dict.fromkeys(comparison["id"]) if i in card}
    rows = []
    for r in comparison.itertuples(index=False):
        method = "count" if r.method == "count" and r.part == "value" else r.method
        label = number_label(numbers[r.id], r.part) if r.id in numbers else r.id
        rows.append({"section": r.section, "id": r.id, "label": label, "part": r.part, "description": r.description,
                     "kind": r.kind, "published": r.printed,
                     "reproduced": fmt_value(r.reproduced, method, r.decimals),
                     "as_printed": r.reproduced_as_printed,
                     "difference": fmt_value(r.difference, method, r.decimals, sign=True),
                     "verdict": r.verdict, "rule": r.rule, "changed_conclusion": r.changed_conclusion,
                     "baseline": getattr(r, "baseline", ""), "note": r.note or "",
                     "_key": section_key(r.section, first[r.section])})
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=cols)
    out["_order"] = range(len(out))
    out = out.sort_values(["_key", "_order"], kind="stable").drop(columns=["_key", "_order"])
    return out[cols].reset_index(drop=True)


def values_display(values: pd.DataFrame, card=None) -> pd.DataFrame:
    """The plan's values as strings, grouped like the comparison (no published column).

    Values whose id is a number of ``card`` go under that number's section;
    the others (extra quantities such as R-convention medians) under
    "Further quantities".

    Returns
    -------
    pandas.DataFrame
        Columns ``section``, ``id``, ``value``, ``ci``, ``n_used``,
        ``n_excluded``, ``analysis``, ``note`` — all text.
    """
    from failpattern.study.compare import section_of

    info = _card_info(card)
    sections = {}
    if card is not None:
        sections = {r.id: section_of(r.location) for r in card.numbers[["id", "location"]].itertuples(index=False)}
    first: dict[str, int] = {}
    rows = []
    for i, r in enumerate(values.itertuples(index=False)):
        dec, method, _ = info.get(r.id, (None, r.method, "eq"))
        section = sections.get(r.id, "Further quantities")
        first.setdefault(section, i)
        ci = ""
        if r.ci_lower == r.ci_lower or r.ci_upper == r.ci_upper:
            ci = f"{fmt_value(r.ci_lower, method, dec)}–{fmt_value(r.ci_upper, method, dec)}"
        rows.append({"section": section, "id": r.id, "value": fmt_value(r.value, method, dec), "ci": ci,
                     "n_used": "" if pd.isna(r.n_used) else str(int(r.n_used)),
                     "n_excluded": "" if pd.isna(r.n_excluded) else str(int(r.n_excluded)),
                     "analysis": r.analysis, "note": r.note if isinstance(r.note, str) else "",
                     "_key": None})
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=["section", "id", "value", "ci", "n_used", "n_excluded", "analysis", "note"])
    out["_key"] = [section_key(s, first[s]) if s != "Further quantities" else (99, "", 0, 0) for s in out["section"]]
    out["_order"] = range(len(out))
    out = out.sort_values(["_key", "_order"], kind="stable").drop(columns=["_key", "_order"])
    return out.reset_index(drop=True)


def text_table(frame: pd.DataFrame, columns: Sequence[str], *, group: str | None = "section",
               right: Sequence[str] = ()) -> str:
    """Plain aligned text: one block per ``group`` value (headed by it), columns padded to one width.

    Parameters
    ----------
    frame : pandas.DataFrame
        String cells.
    columns : sequence of str
        Columns to print, in order (the header is the column name).
    group : str or None
        Column whose values head the blocks, in order of first appearance.
    right : sequence of str
        Columns aligned right (numbers).
    """
    cells = frame[list(columns)].astype(str)
    widths = [max([len(c)] + [len(v) for v in cells[c]]) for c in columns]

    def line(values) -> str:
        return "  ".join(v.rjust(w) if c in right else v.ljust(w)
                         for c, v, w in zip(columns, values, widths)).rstrip()

    head = [line(columns), "  ".join("-" * w for w in widths)]
    out: list[str] = []
    if group is None:
        return "\n".join(head + [line(r) for r in cells.itertuples(index=False)])
    for name, block in frame.groupby(group, sort=False):
        out += ["", f"== {name} ==", *head]
        out += [line(r) for r in block[list(columns)].astype(str).itertuples(index=False)]
    return "\n".join(out).lstrip("\n")
