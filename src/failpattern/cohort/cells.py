"""Typing single cells: text, numbers, 0/1 flags, categories and dates.

Why: each cell is converted on its own so a bad value produces one problem
naming its row, column and value, and the rest of the file is still checked.
A cell that fails stays missing (``NA``) and is remembered as *broken*, so the
cross-column checks do not report the same mistake again. Where it gives the
same result, a column is converted at once instead (native numbers from
their values and mask, text once per distinct value): a replicate study
loads thousands of cohorts. A column a fast path cannot wholly accept goes
cell by cell, so the problems and their order never depend on the path.

A CSV column arrives as codes into its distinct cells
(:class:`~failpattern.cohort.read.Coded`): each distinct cell is converted
(and, if bad, judged) once and the result spread to its rows, which is what
converting every cell gives, at a fraction of the time and memory.

Numbers and dates must be written with the ASCII digits 0-9: Python's
``float`` and ``int`` also read ``1_5`` as 15 and full-width or Arabic-Indic
digits as numbers, a silent misread of what the researcher typed, so those
are refused (``non_ascii_digits``, or ``not_a_number`` for ``_``).

Missing: an empty cell, or one of ``NA``, ``N/A``, ``NaN``, ``null``,
``None``, ``.`` (any case).
"""

from __future__ import annotations

import math

import difflib
import functools

import numpy as np
import pandas as pd

from failpattern.cohort.dates import FIRST_DAY, LAST_DAY, parse_date
from failpattern.cohort.problems import RowContext
from failpattern.cohort.read import Coded, column_values, floats, is_number, is_text, native, text_cells
from failpattern.cohort.schema import TIMINGS, Column

__all__ = ["MISSING_TEXT", "is_missing", "type_column"]

MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none", "."})
_TIMING_ORIGIN = {t.months: t.origin_label for t in TIMINGS}  # months column -> its time zero in words

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


_DIGITS = ("must be written with the ASCII digits 0-9 (not full-width, Arabic-Indic or other scripts' "
           "digits); retype the value")


def _foreign_digits(v) -> bool:
    """Whether a text cell holds a digit or numeral other than ASCII 0-9 (``float`` would read some)."""
    return isinstance(v, str) and not v.isascii() and any(c.isnumeric() and not c.isascii() for c in v)


def _number(v) -> tuple[float | None, str | None]:
    if isinstance(v, (bool, np.bool_)):
        return float(v), None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v), None
    text = str(v).strip()
    if "_" in text or not text.isascii():  # float() reads "1_5" as 15
        return None, "must be a number written with the digits 0-9 and a decimal point ('_' is not allowed)"
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
    if col.kind != "category" and _foreign_digits(v):
        return None, "non_ascii_digits", _DIGITS
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
        if col.name in _TIMING_ORIGIN:
            return None, "negative_time", (f"is negative; the time from {_TIMING_ORIGIN[col.name]} to the "
                                           "treatment must be 0 or more")
        return None, "negative_time", "is negative; a follow-up time must be 0 or more"
    if col.kind == "count" and not x.is_integer():
        return None, "not_an_integer", "must be a whole number"
    if (col.low is not None and x < col.low) or (col.high is not None and x > col.high):
        return None, "out_of_range", f"must be between {col.low:g} and {col.high:g}" if col.high is not None \
            else f"must be at least {col.low:g}"
    return (int(x) if col.kind == "count" else x), None, None


def type_column(col: Column, raw, ctx: RowContext, skip: set[int]) -> tuple[object, np.ndarray]:
    """Convert one column; return ``(values, broken)``, the values as an array (no Series).

    Cells are converted column-wise where that is safe: native numbers at once
    (:func:`_numeric`), text by its distinct values (:func:`_by_value`, only
    when every distinct value passes the fast rules); every cell the fast paths
    do not accept is converted by the per-cell rules (:func:`_one`), which
    produce the problems. So the values and problems are those of converting
    cell by cell (:func:`_per_cell`), in the same order. Why arrays: the
    loader builds its frame from them, and a Series per column would cost
    more than typing a simulated column.

    Parameters
    ----------
    col : Column
    raw : list, Coded, Series or array
        The cells as read (a DataFrame's column keeps its dtype; a CSV column
        is :class:`~failpattern.cohort.read.Coded`).
    ctx : RowContext
        Where problems go.
    skip : set of int
        Rows not to check (ragged rows: their cells are misaligned).

    Returns
    -------
    values : array
        ``StringArray``, ``FloatingArray``, ``IntegerArray``, ``Categorical``
        (of the allowed values) or numpy ``datetime64[ns]``.
    broken : numpy.ndarray of bool
        True where a value was given but could not be used.
    """
    if isinstance(raw, Coded):
        done = _by_codes(col, raw.codes.astype(np.intp), list(raw.uniques), skip, ctx) if _COLUMNWISE else None
        if done is None:
            raw = raw.cells()
    elif isinstance(raw, list):
        done = _by_value(col, raw, skip, ctx) if _COLUMNWISE else None
    else:
        arr = column_values(raw)
        done = None
        if _COLUMNWISE:
            # rows to skip come from ragged text files (lists); should a native column
            # have any, the per-cell path honours them
            done = None if skip else _numeric(col, arr, ctx)
            if done is None and is_text(arr):
                done = _by_value(col, text_cells(arr), skip, ctx)
        if done is None:
            raw = raw if isinstance(raw, pd.Series) else pd.Series(arr, copy=False)
            if raw.dtype == object or isinstance(raw.dtype, pd.StringDtype):
                raw = raw.to_numpy(dtype=object)  # the cells themselves: text, None, NA or NaN
            else:
                raw = [native(v) for v in raw]
    if done is not None:
        return done
    out, broken = _per_cell(col, raw, ctx, skip)
    return _values(col, out), broken


def _per_cell(col: Column, raw, ctx: RowContext, skip: set[int]) -> tuple[list, np.ndarray]:
    """Each cell on its own (the reference path): converted values (``None`` = empty) and broken."""
    n = len(raw)
    broken = np.zeros(n, dtype=bool)
    out: list = [None] * n
    convert = _FAST[col.kind]
    lookup = _lookup(col.allowed)
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
            if col.kind == "date" and _iso_form(t):
                dates.append((i, t))
                continue
            value = convert(col, t, low, lookup)
            if value is not None:
                out[i] = value
                continue
        _slow(col, v, i, out, broken, ctx)
    if dates:
        _iso_dates(col, dates, raw, out, broken, ctx)
    return out, broken


def _iso_form(t: str) -> bool:
    """``YYYY-MM-DD`` in shape (ASCII digits and dashes), not yet checked as a calendar date."""
    return len(t) == 10 and t.isascii() and t[4] == "-" and t[7] == "-" and t[:4].isdigit() and t[5:7].isdigit() \
        and t[8:].isdigit()


@functools.cache
def _lookup(allowed: tuple[str, ...]) -> dict[str, str]:
    return {a.lower(): a for a in allowed}


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
    if not t.isascii() or "_" in t:  # float() reads these; the per-cell rules refuse them
        return None
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


# the dates a datetime64[ns] column holds (dates.parse_date refuses the others)
_LOW, _HIGH = np.datetime64(FIRST_DAY.date(), "D"), np.datetime64(LAST_DAY.date(), "D")


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


def _values(col: Column, out: list):
    """The canonical array of converted values (``None`` = empty)."""
    if col.kind == "category":
        dtype, codes = _category(col.allowed)
        return pd.Categorical.from_codes(np.array([-1 if x is None else codes[x] for x in out], dtype=np.int16),
                                         dtype=dtype, validate=False)
    if col.kind == "date":
        return np.array([np.datetime64("NaT", "ns") if x is None else np.datetime64(x, "ns") for x in out],
                        dtype="datetime64[ns]")
    if col.kind == "id":
        return pd.array([pd.NA if x is None else x for x in out], dtype="string")
    mask = np.array([x is None for x in out], dtype=bool)
    if col.kind in ("months", "number"):
        return pd.arrays.FloatingArray(np.array([0.0 if x is None else x for x in out], dtype=np.float64), mask)
    values = np.array([0 if x is None else x for x in out], dtype=np.float64)
    return pd.arrays.IntegerArray(values.astype(np.int64), mask)


@functools.cache
def _category(allowed: tuple[str, ...]) -> tuple[pd.CategoricalDtype, dict[str, int]]:
    """The categorical dtype of a column's allowed values, and each value's code."""
    return pd.CategoricalDtype(list(allowed)), {a: k for k, a in enumerate(allowed)}


#: False sends every column cell by cell (the reference path; tests compare the two).
_COLUMNWISE = True
_NUMERIC = ("binary", "months", "number", "count")


def _numeric(col: Column, arr, ctx: RowContext):
    """Column-wise conversion of a numeric DataFrame column, or ``None``.

    Cells the rules reject are converted one by one (:func:`_one`), with their problems.
    """
    if col.kind not in _NUMERIC or not is_number(arr):
        return None
    if col.kind == "binary" and type(arr) is pd.arrays.IntegerArray:
        # the usual 0/1 flag column: values and mask (private fields) kept as they are when
        # every given value is 0 or 1, which is what the float route below gives then
        data, mask = getattr(arr, "_data", None), getattr(arr, "_mask", None)
        if isinstance(data, np.ndarray) and isinstance(mask, np.ndarray) \
                and ((data == 0) | (data == 1) | mask).all():
            return (pd.arrays.IntegerArray(np.where(mask, 0, data).astype(np.int64, copy=False), mask.copy()),
                    np.zeros(len(data), dtype=bool))
    x = floats(arr)
    missing = np.isnan(x)
    ok = _accept(col, x) & ~missing
    rejected = ~ok & ~missing
    broken = np.zeros(len(x), dtype=bool)
    if rejected.any():
        bad = np.flatnonzero(rejected)
        cells, out = arr.tolist(), [None] * len(x)  # what Series.tolist gives
        for i in bad:  # each rejected cell is converted by the rules, which report it
            _slow(col, cells[i], int(i), out, broken, ctx)
            if out[i] is not None:
                x[i], ok[i] = out[i], True
    if col.kind in ("months", "number"):
        return pd.arrays.FloatingArray(np.where(ok, x, 0.0), ~ok), broken
    return pd.arrays.IntegerArray(np.where(ok, x, 0.0).astype(np.int64), ~ok), broken


def _plain_iso(texts) -> bool:
    """Every text exactly ``YYYY-MM-DD`` in ASCII digits, no spaces (a stricter :func:`_iso_form`)."""
    if not all(type(u) is str and len(u) == 10 and u[4] == "-" and u[7] == "-" for u in texts):
        return False
    joined = "".join(texts)  # then one test for all: dashes only where checked, digits elsewhere
    return joined.isascii() and joined.count("-") == 2 * len(texts) and joined.replace("-", "").isdigit()


def _distinct_values(col: Column, uniques) -> list | None:
    """Each distinct cell's value (``None`` = empty), or ``None`` if any needs the per-cell rules.

    A date's value is its ``YYYY-MM-DD`` text, parsed by :func:`_days`."""
    kind, convert, lookup = col.kind, _FAST[col.kind], _lookup(col.allowed)
    vals: list = []
    for u in uniques:
        if type(u) is not str:  # empty (None, NA, NaN), else numbers, dates...: the per-cell rules
            if u is None or u is pd.NA or is_missing(u):
                vals.append(None)
                continue
            return None
        t = u.strip()
        low = t.lower()
        if low in MISSING_TEXT:
            vals.append(None)
            continue
        value = (t if _iso_form(t) else None) if kind == "date" else convert(col, t, low, lookup)
        if value is None:
            return None
        vals.append(value)
    return vals


def _days(vals: list) -> np.ndarray | None:
    """``YYYY-MM-DD`` texts (``None`` = empty) as ``datetime64[ns]`` (NaT), as :func:`_iso_dates`
    parses them; ``None`` when one is impossible or out of range (the per-cell rules say why)."""
    given = [v for v in vals if v is not None]
    try:
        days = np.asarray(given, dtype=object).astype("datetime64[D]")
    except ValueError:
        return None
    if len(days) and not ((days >= _LOW) & (days <= _HIGH)).all():
        return None
    out = np.full(len(vals), np.datetime64("NaT"), dtype="datetime64[ns]")
    out[[v is not None for v in vals]] = days.astype("datetime64[ns]")
    return out


def _by_value(col: Column, cells, skip: set[int], ctx: RowContext):
    """Convert a text column by its distinct values (:func:`_by_codes`), or ``None`` to go cell by cell."""
    index: dict = {}
    try:  # each cell's position among the distinct cells (a dict beats pd.factorize's overhead)
        codes = np.array([index.setdefault(v, len(index)) for v in cells], dtype=np.intp)
    except TypeError:  # unhashable cells, or NA compared with a cell of the same hash
        return None
    return _by_codes(col, codes, list(index), skip, ctx)


def _empty(u) -> bool:
    return u is None or u is pd.NA or (isinstance(u, float) and u != u)


def _by_codes(col: Column, codes: np.ndarray, uniques: list, skip: set[int], ctx: RowContext):
    """Convert a column given as ``codes`` into its distinct cells ``uniques``, or ``None``.

    Each distinct cell is stripped, tested for the missing spellings and
    converted once; when every one passes the fast rules (so no cell has a
    problem to report) the values are spread back to the rows. Otherwise,
    when every distinct cell is text, each is judged once by the per-cell
    rules (:func:`_per_unique`); other cells go cell by cell (``None``).
    """
    n = len(codes)
    k = len(uniques)
    vals = None
    if col.kind == "date":  # the common case first, checked at once: empty or YYYY-MM-DD
        empty = {j for j, u in enumerate(uniques) if _empty(u)}
        vals = [None if j in empty else u for j, u in enumerate(uniques)] if empty else list(uniques)
        if not _plain_iso([v for v in vals if v is not None] if empty else vals):
            vals = None
    vals = _distinct_values(col, uniques) if vals is None else vals
    if vals is None:
        return _per_unique(col, codes, uniques, skip, ctx)
    vals.append(None)  # position k: rows skipped
    if col.kind == "date":
        table = _days(vals)
        if table is None:
            return _per_unique(col, codes, uniques, skip, ctx)
    else:
        table = _values(col, vals)
    broken = np.zeros(n, dtype=bool)
    if skip:
        rows = [i for i in skip if 0 <= i < n and vals[codes[i]] is not None]
        broken[rows] = True
        codes = codes.copy()
        codes[rows] = k
    return table[codes], broken


class _Verdicts:
    """Stands in for a :class:`RowContext` while distinct cells are judged: keeps each one's problem."""

    def __init__(self):
        self.found: dict[int, tuple[str, object, str]] = {}

    def add(self, rule, i, column, value, message, severity="error"):
        self.found[i] = (rule, value, message)


def _per_unique(col: Column, codes: np.ndarray, uniques: list, skip: set[int], ctx: RowContext):
    """Judge each distinct text cell once by the per-cell rules; spread values, broken cells and problems.

    Gives what :func:`_per_cell` gives on the rows, problems in the same order
    (those of ``YYYY-MM-DD``-shaped dates last, as :func:`_per_cell` parses
    them together after the others). Problems beyond the log's detail limit
    are counted at once, not built. ``None`` when a distinct cell is not text
    (``1`` and ``1.0`` share a slot in a dict but not a message).
    """
    if not all(u is None or type(u) is str for u in uniques):
        return None
    n, k = len(codes), len(uniques)
    verdicts = _Verdicts()
    out, bad_u = _per_cell(col, uniques, verdicts, set())
    given_u = np.array([u is not None and u.strip().lower() not in MISSING_TEXT for u in uniques] + [False])
    bad_u = np.append(bad_u, False)
    codes = codes.copy()
    skipped = np.array(sorted(i for i in skip if 0 <= i < n), dtype=np.intp)
    broken = bad_u[codes]
    if len(skipped):
        broken[skipped] = given_u[codes[skipped]]
        codes[skipped] = k
    values = _values(col, out + [None])[codes]
    rows = np.flatnonzero(bad_u[codes])  # rows with a problem (skipped rows now point at slot k)
    if len(rows):
        if col.kind == "date":  # per-cell order: YYYY-MM-DD-shaped dates after the others
            late = np.array([u is not None and _iso_form(u.strip()) for u in uniques] + [False])[codes[rows]]
            rows = np.concatenate([rows[~late], rows[late]])
        _report(col, rows, codes[rows], verdicts.found, ctx)
    return values, broken


def _report(col: Column, rows: np.ndarray, row_codes: np.ndarray, found: dict, ctx: RowContext) -> None:
    """Add each row's problem in order; beyond the log's limit per rule, count them at once."""
    rules = sorted({rule for rule, _, _ in found.values()})
    rule_of = np.full(max(found) + 1, -1, dtype=np.intp)
    for c, (rule, _, _) in found.items():
        rule_of[c] = rules.index(rule)
    which = rule_of[row_codes]
    keep = np.zeros(len(rows), dtype=bool)
    more = {}
    for r, rule in enumerate(rules):
        at = np.flatnonzero(which == r)
        room = ctx.log.room(rule, col.name)
        keep[at[:room]] = True
        more[rule] = len(at) - min(room, len(at))
    for i, c in zip(rows[keep].tolist(), row_codes[keep].tolist()):
        rule, value, message = found[c]
        ctx.add(rule, i, col.name, value, message)
    for rule, n in more.items():
        if n:
            ctx.log.count(rule, col.name, n)
