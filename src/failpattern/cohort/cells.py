"""Typing single cells: text, numbers, 0/1 flags, categories and dates.

Why: each cell is converted on its own so a bad value produces one problem
naming its row, column and value, and the rest of the file is still checked.
A cell that fails stays missing (``NA``) and is remembered as *broken*, so the
cross-column checks do not report the same mistake again.

Missing: an empty cell, or one of ``NA``, ``N/A``, ``NaN``, ``null``,
``None``, ``.`` (any case).
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from failpattern.cohort.dates import parse_date
from failpattern.cohort.problems import RowContext
from failpattern.cohort.schema import Column

__all__ = ["MISSING_TEXT", "is_missing", "type_column"]

MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none", "."})

_DTYPES = {"id": "string", "months": "Float64", "number": "Float64", "count": "Int64",
           "binary": "Int64", "date": "datetime64[ns]"}


def is_missing(v) -> bool:
    """True for an empty cell (see the module docstring for the spellings)."""
    if v is None:
        return True
    if isinstance(v, str):
        return v.strip().lower() in MISSING_TEXT
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _text(v) -> str:
    if isinstance(v, float) and v.is_integer():  # Excel stores 101 as 101.0
        return str(int(v))
    return str(v).strip()


def _number(v) -> tuple[float | None, str | None]:
    if isinstance(v, (bool, np.bool_)):
        return float(v), None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v), None
    text = str(v).strip()
    try:
        x = float(text)
    except ValueError:
        if "," in text and text.replace(",", "", 1).replace(".", "", 1).isdigit():
            return None, "is not a number: use a decimal point, not a comma"
        return None, "must be a number"
    return x, None


def _one(col: Column, v) -> tuple[object, str | None, str | None]:
    """``(value, rule, message)`` for one non-missing cell of ``col``."""
    if col.kind == "id":
        return _text(v), None, None
    if col.kind == "date":
        ts, why = parse_date(v)
        return ts, (None if why is None else "bad_date"), why
    if col.kind == "category":
        text = _text(v)
        for a in col.allowed:
            if text.lower() == a.lower():
                return a, None, None
        lower = {a.lower(): a for a in col.allowed}
        close = difflib.get_close_matches(text.lower(), list(lower), n=1, cutoff=0.6)
        hint = f"; did you mean {lower[close[0]]!r}?" if close else ""
        return None, "unknown_category", ("must be one of " + ", ".join(col.allowed)
                                          + ", or empty" * bool(col.empty_ok) + hint)
    x, why = _number(v)
    if col.kind == "binary":
        if x is None or x not in (0.0, 1.0):
            hint = ""
            if str(v).strip().lower() in ("yes", "no", "y", "n", "true", "false"):
                hint = "; write 1 for yes and 0 for no"
            return None, "not_binary", f"must be 0 or 1{hint}"
        return int(x), None, None
    if x is None:
        return None, "not_a_number", why
    if not np.isfinite(x):
        return None, "not_a_number", "must be a finite number"
    if col.kind == "months" and x < 0:
        return None, "negative_time", "is negative; a follow-up time must be 0 or more"
    if col.kind == "count" and not x.is_integer():
        return None, "not_an_integer", "must be a whole number"
    if (col.low is not None and x < col.low) or (col.high is not None and x > col.high):
        return None, "out_of_range", f"must be between {col.low:g} and {col.high:g}" if col.high is not None \
            else f"must be at least {col.low:g}"
    return (int(x) if col.kind == "count" else x), None, None


def type_column(col: Column, raw: list, ctx: RowContext, skip: set[int]) -> tuple[pd.Series, pd.Series]:
    """Convert one column; return ``(values, broken)``.

    Parameters
    ----------
    col : Column
    raw : list
        The cells as read.
    ctx : RowContext
        Where problems go.
    skip : set of int
        Rows not to check (ragged rows: their cells are misaligned).

    Returns
    -------
    values : Series
        In the canonical dtype (``string``, ``Float64``, ``Int64``,
        ``datetime64[ns]`` or a categorical of the allowed values).
    broken : Series of bool
        True where a value was given but could not be used.
    """
    out: list = [None] * len(raw)
    broken = np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw):
        if is_missing(v):
            continue
        if i in skip:
            broken[i] = True
            continue
        value, rule, why = _one(col, v)
        if rule is not None:
            broken[i] = True
            shown = _text(v) if not isinstance(v, str) else v
            ctx.add(rule, i, col.name, shown, f"{col.name} {why} (got {shown!r})")
        else:
            out[i] = value
    if col.kind == "category":
        series = pd.Series(pd.Categorical(out, categories=list(col.allowed)))
    elif col.kind == "date":
        series = pd.Series(pd.to_datetime(pd.Series(out, dtype=object)), dtype="datetime64[ns]")
    else:
        series = pd.Series([pd.NA if x is None else x for x in out], dtype=_DTYPES[col.kind])
    return series, pd.Series(broken)
