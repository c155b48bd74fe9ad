"""The paper's tables, laid out as published, with the reproduced value in every cell.

Why this module exists: a reader compares a reproduction with the paper by
holding the two tables side by side. The study card records where each number
is printed (``location: "Table 1 row 'Sex: Male', column 'RT'"``), so the
layout of every published table — its rows and columns, in the paper's order —
is read from the card, for any card, without typing a table's structure in
Python. Each cell gathers the parts printed there (a count and its
percentage: ``29 (69.0)``; a median and its range: ``50 (21–75)``; a ratio and
its confidence limits: ``0.55 (0.26–1.16)``; a p-value), writes the reproduced
values rounded as the paper rounds them, and keeps the published text beside
them with the cell's verdict.

Plain HTML and Markdown are generated here rather than with a table library
(great-tables and the like): the cells are already formatted strings and each
needs its own verdict class, which the libraries would take as per-cell style
rules at a higher cost than the few lines here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from failpattern.study.card import table_cell

__all__ = ["Cell", "PaperTable", "paper_tables"]

_WORST = ("differs", "contradicted by the paper", "near", "matches as printed", "not reproducible from these data")


@dataclass(frozen=True)
class Cell:
    """One cell of a published table.

    Attributes
    ----------
    ours : str
        The reproduced values, written as the paper writes this cell ("" when none could be computed).
    paper : str
        The published text of the cell.
    verdict : str
        The worst verdict of the parts printed in the cell ("differs" before
        "contradicted by the paper" before "near" before "matches as printed").
    ids : tuple of str
        The card numbers shown in the cell.
    """

    ours: str
    paper: str
    verdict: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class PaperTable:
    """A published table: ``title``, ``columns`` and ``rows`` (label, cells; None where the paper prints nothing)."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[Cell | None, ...]], ...]


def _cell_text(parts: dict, key: str) -> str:
    """A cell from its parts: value, then "(ci_lower–ci_upper)" or "(range_min–range_max)"."""
    v = parts.get("value", {})
    text = v.get(key, "")
    for lo, hi in (("ci_lower", "ci_upper"), ("range_min", "range_max")):
        if lo in parts:
            a, b = parts[lo].get(key, ""), parts[hi].get(key, "")
            text += f" ({a or 'NR'}–{b or 'NR'})" if (a or b) else ""
    return text


def _join(values: list[tuple[str, dict]], key: str) -> str:
    """Several numbers in one cell: a count then its percentage, "n (pct)"; else joined by "; "."""
    texts = [(method, _cell_text(parts, key)) for method, parts in values]
    if len(texts) == 2 and texts[0][0] == "count" and texts[1][0] in ("proportion", "rate"):
        return f"{texts[0][1]} ({texts[1][1]})" if texts[1][1] else texts[0][1]
    return "; ".join(t for _, t in texts if t)


def paper_tables(comparison: pd.DataFrame, card) -> list[PaperTable]:
    """The published tables of ``card`` with ``comparison``'s reproduced values in every cell.

    Parameters
    ----------
    comparison : pandas.DataFrame
        From :func:`failpattern.study.compare.compare` (one row per printed part).
    card : StudyCard
        Gives each number's location.

    Returns
    -------
    list of PaperTable
        One per table the card locates numbers in ("Table 1", "Table 2", ...), in the
        paper's order; rows and columns in card order.
    """
    where = {}
    for r in card.numbers[["id", "location", "method"]].itertuples(index=False):
        cell = table_cell(r.location)
        if cell:
            where[r.id] = (*cell, r.method)
    cells: dict[str, dict[tuple[str, str], list]] = {}
    order: dict[str, tuple[dict, dict]] = {}
    for r in comparison.itertuples(index=False):
        if r.id not in where:
            continue
        table, row, col, method = where[r.id]
        rows, cols = order.setdefault(table, ({}, {}))
        rows.setdefault(row, len(rows))
        cols.setdefault(col, len(cols))
        numbers = cells.setdefault(table, {}).setdefault((row, col), [])
        if not numbers or numbers[-1][0] != r.id:
            numbers.append((r.id, method, {}))
        paper = r.printed
        ours = r.reproduced_as_printed
        if r.relation in ("lt", "le", "gt", "ge") and r.verdict == "matches as printed":
            ours = paper  # "< 0.001": the bound holds
        elif method == "count" and ours:
            ours = str(int(float(ours)))
        numbers[-1][2][r.part] = {"paper": paper, "ours": ours, "verdict": r.verdict}
    out = []
    for table in sorted(cells, key=lambda t: int(t.split()[1])):
        rows, cols = order[table]
        body = []
        for row in rows:
            line = []
            for col in cols:
                found = cells[table].get((row, col))
                if not found:
                    line.append(None)
                    continue
                values = [(method, parts) for _, method, parts in found]
                verdicts = [p["verdict"] for _, _, parts in found for p in parts.values()]
                line.append(Cell(ours=_join(values, "ours"), paper=_join(values, "paper"),
                                 verdict=min(verdicts, key=_WORST.index), ids=tuple(i for i, _, _ in found)))
            body.append((row, tuple(line)))
        out.append(PaperTable(table, tuple(cols), tuple(body)))
    return out
