"""A column wrong in one way throughout: one problem for the column, not one per cell.

Why: a file whose dates were exported as ``26/10/2014`` gave one ``bad_date``
per cell (182 for 93 patients), and a 0/1 flag coded 1/2 (SPSS style) one
``not_binary`` per 2, burying the one fix that repairs them all. Before a
column is typed cell by cell, :func:`collapse_column` looks for such a
pattern; when it finds one it reports a single problem for the column (the
rule of the cells, at the first row, with the count, the first rows, the
layout seen and the one expected) and returns the rows it covers, which the
cell-by-cell typing then leaves out (as broken cells, so the checks across
columns skip them too). Cells wrong in other ways are still reported one by
one.
"""

from __future__ import annotations

import numpy as np

from failpattern.cohort.dates import _DAY_FIRST, _YEAR_FIRST, date_form
from failpattern.cohort.problems import RowContext
from failpattern.cohort.read import Coded, column_values, floats, is_number, is_text, text_cells
from failpattern.cohort.schema import Column

__all__ = ["collapse_column", "FIRST_ROWS"]

#: Rows named in a collapsed problem (the rest are counted).
FIRST_ROWS = 5
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "."})  # cells.MISSING_TEXT (cells imports us)


def collapse_column(col: Column, raw, ctx: RowContext, skip: set[int]) -> set[int]:
    """Report a column-wide pattern of bad cells once; return the rows it covers (0-based).

    Parameters
    ----------
    col : Column
    raw : Coded, list, Series or array
        The column's cells as read (what :func:`~failpattern.cohort.cells.type_column` takes).
    ctx : RowContext
    skip : set of int
        Rows not checked (ragged rows): never named.

    Returns
    -------
    set of int
        Rows to leave out of the cell-by-cell typing (empty when there is no pattern).
    """
    if col.kind == "date":
        return _dates(col, raw, ctx, skip)
    if col.kind == "binary":
        return _one_two(col, raw, ctx, skip)
    return set()


def _distinct(raw) -> tuple[np.ndarray, list] | None:
    """``(codes, uniques)`` of a text column, ``None`` for a native (numbers, dates) one."""
    if isinstance(raw, Coded):
        return raw.codes, list(raw.uniques)
    if not isinstance(raw, list):
        arr = column_values(raw)
        if not is_text(arr):
            return None
        raw = text_cells(arr)
    index: dict = {}
    try:
        codes = np.array([index.setdefault(v, len(index)) for v in raw], dtype=np.intp)
    except TypeError:  # unhashable cells: the per-cell rules judge them
        return None
    return codes, list(index)


def _given(u) -> str | None:
    """The stripped text of a non-empty text cell, else ``None``."""
    if type(u) is not str:
        return None
    t = u.strip()
    return None if t.lower() in _MISSING else t


def _rows_text(ctx: RowContext, rows: np.ndarray) -> str:
    """``line 2 (patient P001); also lines 3, 4, 5, 6, ...``."""
    first = int(rows[0])
    who = f" (patient {ctx.ids[first]})" if ctx.ids[first] else ""
    also = [str(ctx.lines[int(i)]) for i in rows[1:FIRST_ROWS]]
    more = ", ..." if len(rows) > FIRST_ROWS else ""
    return f"line {ctx.lines[first]}{who}" + (f"; also lines {', '.join(also)}{more}" if also else "")


def _covered(codes: np.ndarray, which: list[int], skip: set[int]) -> np.ndarray:
    rows = np.flatnonzero(np.isin(codes, np.array(which, dtype=np.intp)))
    if skip:
        rows = rows[~np.isin(rows, np.array(sorted(skip), dtype=np.intp))]
    return rows


def _dates(col: Column, raw, ctx: RowContext, skip: set[int]) -> set[int]:
    d = _distinct(raw)
    if d is None:
        return set()
    codes, uniques = d
    counts = np.bincount(codes, minlength=len(uniques))
    given = 0
    layouts: dict[tuple, list[int]] = {}
    for k, u in enumerate(uniques):
        t = _given(u)
        if t is None:
            continue
        given += int(counts[k])
        if len(t) == 10 and t[4] == "-":  # YYYY-MM-DD in shape: the usual case, not a layout of another format
            continue
        m = _YEAR_FIRST.match(t)
        if m:
            layouts.setdefault(("year", m[2]), []).append(k)
            continue
        m = _DAY_FIRST.match(t)
        if m:
            layouts.setdefault(("day", m[2], len(m[4])), []).append(k)
    if not layouts:
        return set()
    key, which = max(layouts.items(), key=lambda kv: int(counts[kv[1]].sum()))
    n = int(counts[which].sum())
    if n < 2 or 2 * n < given:  # not "most cells": each is reported on its own
        return set()
    rows = _covered(codes, which, skip)
    if not len(rows):
        return set()
    example = uniques[codes[rows[0]]].strip()
    day_first = None
    if key[0] == "day":
        parts = [_DAY_FIRST.match(uniques[k].strip()) for k in which]
        firsts = any(int(m[1]) > 12 for m in parts)
        seconds = any(int(m[3]) > 12 for m in parts)
        day_first = True if firsts and not seconds else False if seconds and not firsts else None
        mixed = firsts and seconds
    else:
        mixed = False
    name, iso = date_form(example, day_first)
    if mixed:
        sep = key[1]
        name = f"DD{sep}MM{sep}YYYY on some rows and MM{sep}DD{sep}YYYY on others"
        iso = None
    elif " or " in name:
        name += " (no part is above 12, so which is the day cannot be told)"
    elif key[0] == "day" and key[2] == 2:
        name += " (a two-digit year)"
    here = f" ({example} is {iso})" if iso else ""
    ctx.add("bad_date", int(rows[0]), col.name, example,
            f"{col.name}: {len(rows):,} of {given:,} dates are written {name}, e.g. {example!r} on "
            f"{_rows_text(ctx, rows)}; the format expects YYYY-MM-DD{here}. In Excel, format the column "
            "as yyyy-mm-dd before saving as CSV (or save the file as .xlsx)")
    return set(rows.tolist())


_ONE_TWO = {"1": 1, "2": 2, "1.0": 1, "2.0": 2}


def _one_two(col: Column, raw, ctx: RowContext, skip: set[int]) -> set[int]:
    d = _distinct(raw)
    if d is None:
        arr = column_values(raw)
        if not is_number(arr):
            return set()
        x = floats(arr)
        if not (x == 2).any():
            return set()
        given = ~np.isnan(x)
        if not ((x[given] == 1) | (x[given] == 2)).all():
            return set()
        values = np.where(given, x, 0).astype(np.int64)
        rows = np.flatnonzero(given)
        if skip:
            rows = rows[~np.isin(rows, np.array(sorted(skip), dtype=np.intp))]
    else:
        codes, uniques = d
        code_value = np.zeros(len(uniques), dtype=np.int64)
        for k, u in enumerate(uniques):
            if isinstance(u, (int, float, np.integer, np.floating)) and not isinstance(u, bool):
                v = float(u)
                if v != v:
                    continue  # NaN: empty
                if v not in (1.0, 2.0):
                    return set()
                code_value[k] = int(v)
            elif u is None or (t := _given(u)) is None:
                if u is not None and type(u) is not str:
                    return set()  # another kind of cell: the per-cell rules
                continue
            elif t in _ONE_TWO:
                code_value[k] = _ONE_TWO[t]
            else:
                return set()
        values = code_value[codes]
        rows = _covered(codes, [k for k in range(len(uniques)) if code_value[k]], skip)
    twos = rows[values[rows] == 2]
    if len(twos) < 2:  # a single 2 is a single mistake: reported on its own
        return set()
    ones = len(rows) - len(twos)
    event = col.name.endswith("_event")
    use = "0 = censored, 1 = event" if event else "0 = no, 1 = yes"
    ctx.add("not_binary", int(twos[0]), col.name, "2",
            f"{col.name} looks coded 1/2 (SPSS style): {len(twos):,} values are 2 and {ones:,} are 1, e.g. "
            f"2 on {_rows_text(ctx, twos)}; use {use} (where 1 = {'censored' if event else 'no'} and "
            f"2 = {'event' if event else 'yes'}, recode 1 to 0 and 2 to 1)")
    return set(rows.tolist())
