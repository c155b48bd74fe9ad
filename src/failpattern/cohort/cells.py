"""Typing single cells: text, numbers, 0/1 flags, categories and dates.

Why: each cell is converted on its own so a bad value produces one problem
naming its row, column and value, and the rest of the file is still checked.
A cell that fails stays missing (``NA``) and is remembered as *broken*, so the
cross-column checks do not report the same mistake again.

Missing: an empty cell, or one of ``NA``, ``N/A``, ``NaN``, ``null``,
``None``, ``.`` (any case).
"""

from __future__ import annotations

import math

import difflib
import functools

import numpy as np
import pandas as pd

from failpattern.cohort.dates import parse_date
from failpattern.cohort.problems import RowContext
from failpattern.cohort.read import native
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


def type_column(col: Column, raw, ctx: RowContext, skip: set[int]) -> tuple[pd.Series, np.ndarray]:
    """Convert one column; return ``(values, broken)``.

    Cells are converted column-wise where that is safe (numbers of a numeric
    column, ISO dates, exact category spellings); every cell the fast path
    does not accept is converted by the per-cell rules (:func:`_one`), which
    produce the problems. So the values and problems are those of converting
    cell by cell, in the same order.

    Parameters
    ----------
    col : Column
    raw : list or Series
        The cells as read (a DataFrame's column keeps its dtype).
    ctx : RowContext
        Where problems go.
    skip : set of int
        Rows not to check (ragged rows: their cells are misaligned).

    Returns
    -------
    values : Series
        In the canonical dtype (``string``, ``Float64``, ``Int64``,
        ``datetime64[ns]`` or a categorical of the allowed values).
    broken : numpy.ndarray of bool
        True where a value was given but could not be used.
    """
    n = len(raw)
    broken = np.zeros(n, dtype=bool)
    if isinstance(raw, pd.Series):
        fast = _typed_series(col, raw, ctx)
        if fast is not None:
            return fast
        if raw.dtype == object or isinstance(raw.dtype, pd.StringDtype):
            raw = raw.to_numpy(dtype=object)  # the cells themselves: text, None, NA or NaN
        else:
            raw = [native(v) for v in raw]
    out: list = [None] * n
    convert = _FAST[col.kind]
    lookup = {a.lower(): a for a in col.allowed}
    dates: list[tuple[int, str]] = []
    for i, v in enumerate(raw):
        if v is None:
            continue
        if type(v) is str:
            t = v.strip()
            low = t.lower()
            if low in MISSING_TEXT:
                continue
        elif is_missing(v):
            continue
        else:
            t = low = None
        if i in skip:
            broken[i] = True
            continue
        if t is not None:
            if col.kind == "date" and len(t) == 10 and t[4] == "-" and t[7] == "-" and \
                    t[:4].isdigit() and t[5:7].isdigit() and t[8:].isdigit():
                dates.append((i, t))
                continue
            value = convert(col, t, low, lookup)
            if value is not None:
                out[i] = value
                continue
        _slow(col, v, i, out, broken, ctx)
    if dates:
        _iso_dates(col, dates, raw, out, broken, ctx)
    return _series(col, out), broken


def _slow(col: Column, v, i: int, out: list, broken: np.ndarray, ctx: RowContext) -> None:
    """Convert one cell by the per-cell rules; record its problem if it breaks one."""
    value, rule, why = _one(col, v)
    if rule is not None:
        broken[i] = True
        shown = _text(v) if not isinstance(v, str) else v
        ctx.add(rule, i, col.name, shown, f"{col.name} {why} (got {shown!r})")
    else:
        out[i] = value


def _fast_number(col: Column, t: str, low: str, lookup):
    """The value of a numeric text that breaks no rule, else ``None`` (checked cell by cell).

    The rules of :func:`_accept` on one Python float (a one-element array per cell
    would cost more than the parse)."""
    try:
        x = float(t)
    except ValueError:
        return None
    if not math.isfinite(x) or (col.kind == "months" and x < 0) or (col.kind == "count" and not x.is_integer()) \
            or (col.low is not None and x < col.low) or (col.high is not None and x > col.high):
        return None
    return int(x) if col.kind == "count" else x


# "0.0" / "1.0": binary columns written from a floating-point column (pandas, R)
_BINARY = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}
_FAST = {
    "id": lambda col, t, low, lookup: t,
    "category": lambda col, t, low, lookup: lookup.get(low),
    "date": lambda col, t, low, lookup: None,
    "binary": lambda col, t, low, lookup: _BINARY.get(t),
    "months": _fast_number, "number": _fast_number, "count": _fast_number,
}


def _iso_dates(col, dates, raw, out, broken, ctx) -> None:
    """``YYYY-MM-DD`` texts parsed at once (numpy, day precision); the rest cell by cell."""
    try:
        days = np.array([t for _, t in dates], dtype="datetime64[D]")
    except ValueError:  # an impossible date among them: each cell on its own
        days = None
    if days is not None:
        ok = (days >= _LOW) & (days <= _HIGH)
        stamps = days.astype("datetime64[ns]")
    for k, (i, _) in enumerate(dates):
        if days is not None and ok[k]:
            out[i] = stamps[k]
        else:
            _slow(col, raw[i], i, out, broken, ctx)


_LOW, _HIGH = np.datetime64("1677-09-22", "D"), np.datetime64("2262-04-11", "D")


def _accept(col: Column, x: np.ndarray) -> np.ndarray:
    """Numbers that pass every rule of ``col`` (the others are re-checked cell by cell)."""
    if col.kind == "binary":
        return (x == 0.0) | (x == 1.0)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(x)
        if col.kind == "months":
            ok &= x >= 0
        if col.kind == "count":
            ok &= x == np.trunc(x)
        if col.low is not None:
            ok &= x >= col.low
        if col.high is not None:
            ok &= x <= col.high
    return ok


def _series(col: Column, out: list) -> pd.Series:
    """The canonical Series of converted values (``None`` = empty)."""
    if col.kind == "category":
        dtype, codes = _category(col.allowed)
        return pd.Series(pd.Categorical.from_codes(
            np.array([-1 if x is None else codes[x] for x in out], dtype=np.int16), dtype=dtype,
            validate=False))
    if col.kind == "date":
        return pd.Series(np.array([np.datetime64("NaT", "ns") if x is None else np.datetime64(x, "ns")
                                   for x in out], dtype="datetime64[ns]"))
    if col.kind == "id":
        return pd.Series(pd.array([pd.NA if x is None else x for x in out], dtype="string"))
    mask = np.array([x is None for x in out], dtype=bool)
    if col.kind in ("months", "number"):
        values = np.array([0.0 if x is None else x for x in out], dtype=np.float64)
        return pd.Series(pd.arrays.FloatingArray(values, mask))
    values = np.array([0 if x is None else x for x in out], dtype=np.float64)
    return pd.Series(pd.arrays.IntegerArray(values.astype(np.int64), mask))


@functools.cache
def _category(allowed: tuple[str, ...]) -> tuple[pd.CategoricalDtype, dict[str, int]]:
    """The categorical dtype of a column's allowed values, and each value's code."""
    return pd.CategoricalDtype(list(allowed)), {a: k for k, a in enumerate(allowed)}


def _typed_series(col: Column, raw: pd.Series, ctx: RowContext):
    """Column-wise conversion of a numeric or datetime DataFrame column, or ``None``.

    Cells the rules reject are converted one by one (:func:`_one`), with their problems.
    """
    dtype = raw.dtype
    if col.kind in ("binary", "months", "number", "count") and (
            pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_float_dtype(dtype)
            or pd.api.types.is_integer_dtype(dtype)):
        x = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(x)
        ok = _accept(col, x) & ~missing
        bad = np.flatnonzero(~ok & ~missing)
        broken = np.zeros(len(raw), dtype=bool)
        if len(bad):
            cells, out = raw.tolist(), [None] * len(raw)
            for i in bad:  # each rejected cell is converted by the rules, which report it
                _slow(col, cells[i], int(i), out, broken, ctx)
                if out[i] is not None:
                    x[i], ok[i] = out[i], True
        if col.kind in ("months", "number"):
            values = pd.arrays.FloatingArray(np.where(ok, x, 0.0), ~ok)
        else:
            values = pd.arrays.IntegerArray(np.where(ok, x, 0.0).astype(np.int64), ~ok)
        return pd.Series(values), broken
    return None
