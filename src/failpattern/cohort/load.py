"""``load_cohort``: read a researcher's cohort file, check every rule, and report all problems at once.

Why: the stats functions validate arrays (``stats/_validate.py``); this is the
file- and table-level validator above them. It reads CSV, Excel, Parquet or a
DataFrame (:mod:`~failpattern.cohort.read`), types each cell
(:mod:`~failpattern.cohort.cells`), derives and cross-checks durations,
events and failure patterns (:mod:`~failpattern.cohort.checks`), and either
returns a frozen :class:`~failpattern.cohort.model.Cohort` or raises one
:class:`~failpattern.cohort.problems.CohortError` listing every problem with
its row, patient, column, value and rule. The format is documented in
``docs/cohort-format.md``.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from failpattern.cohort.cells import MISSING_TEXT, is_missing, type_column
from failpattern.cohort.collapse import collapse_column
from failpattern.cohort.checks import (check_consistency, check_values, reconcile_dates, reconcile_pattern,
                                      reconcile_timings)
from failpattern.cohort.dates import DAYS_PER_MONTH
from failpattern.cohort.model import Cohort
from failpattern.cohort.plausible import check_plausibility
from failpattern.cohort.problems import CohortError, ProblemLog, ProblemsFile, RowContext
from failpattern.cohort.quick import applies, maybe_problems
from failpattern.cohort.read import Coded, RawTable, is_text, native, read_table, text_cells
from failpattern.cohort.schema import ALL_COLUMNS, COLUMNS, SYNONYM_OF, TIMING_COLUMNS, column, synonym_key
from failpattern.errors import InputError

__all__ = ["load_cohort", "normalise_name"]

_KNOWN = [c.name for c in ALL_COLUMNS]
_TIMING = tuple(c.name for c in TIMING_COLUMNS)
_HOW = {
    "pfs1_months": "or give the dates crizotinib_start_date, first_progression_date, death_date and "
                   "last_followup_date",
    "pfs1_event": "or give failure_pattern, or the dates",
    "failure_pattern": "or give fail_original_site and fail_new_site with pfs1_event",
    "os_months": "or give the dates diagnosis_date, death_date and last_followup_date",
    "os_event": "or give the dates diagnosis_date, death_date and last_followup_date",
}


def normalise_name(name: str) -> str:
    """Header as matched against the format: trimmed, lower case, spaces and hyphens as ``_``."""
    return re.sub(r"[\s\-]+", "_", str(name).strip()).lower()


def _suggest(name: str, candidates) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.8)
    return close[0] if close else None


def _meant(header: str) -> str | None:
    """The format column a header probably means: a clinical synonym (``Date of death``), else a near spelling."""
    return SYNONYM_OF.get(synonym_key(header)) or _suggest(normalise_name(header), _KNOWN)


def _columns(raw: RawTable, log: ProblemLog) -> tuple[dict[str, int], dict[str, int]]:
    """Map format columns and extra columns to their positions; log header problems."""
    known, extra, seen = {}, {}, {}
    for j, original in enumerate(raw.header):
        name = normalise_name(original)
        if not name:
            if all(is_missing(v) for v in raw.column(j)):
                continue  # an empty, unnamed column (a spreadsheet artefact)
            name = f"unnamed_{j + 1}"
        if name in seen:
            log.add("duplicate_column", f"column {name!r} appears at positions {seen[name] + 1} and {j + 1}; "
                    "keep one", line=1, column=name)
            continue
        seen[name] = j
        if name in _KNOWN:
            known[name] = j
            continue
        extra[name] = j
        guess = _meant(original)
        hint = f"; did you mean {guess!r}?" if guess else "; it is kept but not used by any analysis"
        log.add("unknown_column", f"column {original!r} is not part of the cohort format{hint}",
                line=1, column=name, severity="warning")
    return known, extra


def _cells(raw: RawTable, j: int) -> list:
    """Column ``j`` cell by cell as the rows hold them (empty native cells as ``None``)."""
    cells = raw.column(j)
    if not isinstance(cells, pd.Series):
        return cells
    if cells.dtype == object or isinstance(cells.dtype, pd.StringDtype):
        return [native(v) for v in cells.to_numpy(dtype=object)]
    return [native(v) for v in cells]


def _id(v) -> str | None:
    """A patient id cell as text, ``None`` when empty (a str is tested without :func:`is_missing`'s dispatch)."""
    if type(v) is str:
        t = v.strip()
        return None if t.lower() in MISSING_TEXT else t
    return None if is_missing(v) else str(v).strip()


_FLOAT_ID = re.compile(r"\d+\.0", re.ASCII)


def _frame(typed: dict, n: int) -> pd.DataFrame:
    """The typed arrays (new, one per column, of length ``n``) as a frame, without copying them."""
    try:
        # pandas' constructor from trusted arrays (private): the public one re-checks and
        # re-wraps every column, half the cost of this frame
        return pd.DataFrame._from_arrays(list(typed.values()), columns=pd.Index(list(typed)),
                                         index=pd.RangeIndex(n), verify_integrity=False)
    except (AttributeError, TypeError):  # a pandas without it, or with another signature
        return pd.DataFrame(typed, index=pd.RangeIndex(n), copy=False)


def _check_required(df, extra: dict[str, int], log: ProblemLog) -> None:
    for c in COLUMNS:
        if c.required and c.name not in df:
            guess = next((e for e in extra if SYNONYM_OF.get(synonym_key(e)) == c.name), None) \
                or _suggest(c.name, extra)
            hint = f" (the file has {guess!r}: did you mean {c.name!r}?)" if guess else ""
            how = f", {_HOW[c.name]}" if c.name in _HOW else ""
            log.add("missing_column", f"required column {c.name!r} is missing{hint}; add it{how}",
                    line=1, column=c.name)


def _check(typed, broken, extra, ctx: RowContext, raw: RawTable, dpm: float) -> tuple[pd.DataFrame, list]:
    """Derive what is missing and run every cross-column rule; return the frame and derived columns."""
    df = _frame(typed, raw.n_rows)  # the typed arrays themselves (a DataFrame of them would copy each)
    broken = pd.DataFrame(broken, index=df.index, dtype=bool)
    derived, kind = reconcile_dates(df, broken, ctx, dpm)
    derived += reconcile_pattern(df, broken, ctx, kind)
    derived += reconcile_timings(df, broken, ctx, dpm)
    _check_required(df, extra, ctx.log)
    check_values(df, broken, ctx, raw.ragged)
    if not raw.ragged:  # misaligned rows would only add noise
        check_consistency(df, ctx)
    order = [c.name for c in ALL_COLUMNS if c.name in df]
    # the columns' arrays, not copies of them (df itself is dropped): a copy costs the cohort's size again
    return _frame({name: df[name].array for name in order}, len(df)), derived


def load_cohort(path_or_frame, *, days_per_month: float = DAYS_PER_MONTH,
                encoding: str | None = None, problems_file=None, strict: bool = False) -> Cohort:
    """Read and validate a cohort (one row per patient) in the failpattern cohort format.

    Parameters
    ----------
    path_or_frame : str, Path or DataFrame
        A ``.csv`` / ``.tsv`` / ``.txt`` (comma, semicolon or tab separated,
        UTF-8), ``.xlsx`` / ``.xlsm`` (sheet ``cohort`` if present, else the
        first sheet) or ``.parquet`` file, or a DataFrame. The file is only read.
    days_per_month : float, default 30.4375
        Month length (days) used to derive durations from dates; 30.4375 =
        365.25 / 12.
    encoding : str, optional
        Text encoding of a CSV file; by default UTF-8 (with or without BOM),
        or UTF-16 when the file starts with its byte-order mark. UTF-16
        without one and UTF-32 are recognised and refused with the encoding
        to pass here.
    problems_file : str or Path, optional
        Write every problem found, however many, to this CSV file as it is
        found (:class:`~failpattern.cohort.problems.ProblemsFile`); the file
        appears whole when loading ends (a header only when there is none).
    strict : bool, default False
        Make the plausibility warnings (durations that look like days, ages
        outside 15-100, durations longer than the dates span, most patients
        censored at time 0; see :mod:`~failpattern.cohort.plausible`) errors.

    Returns
    -------
    Cohort
        Validated, in canonical dtypes; see :class:`~failpattern.cohort.model.Cohort`.

    Raises
    ------
    CohortError
        Listing every problem in the file (``.problems``), when any is an error;
        beyond 2,000 per rule and column they are counted (``.problems.counts``),
        not kept. A path that is not a regular file (a FIFO, a device) is
        refused without being opened.
    InputError
        When ``days_per_month`` is not a plausible month length.
    """
    if isinstance(days_per_month, bool) or not isinstance(days_per_month, (int, float)) \
            or not math.isfinite(days_per_month) or not 27.0 <= days_per_month <= 32.0:
        raise InputError(f"days_per_month: must be a month length in days between 27 and 32 "
                         f"(default 30.4375 = 365.25 / 12); got {days_per_month!r}")
    source = "<DataFrame>" if isinstance(path_or_frame, pd.DataFrame) else str(path_or_frame)
    path = None if source == "<DataFrame>" else source
    sink = None if problems_file is None else ProblemsFile(problems_file, path)
    log = ProblemLog(Path(source).name if path is not None else source, path=path, sink=sink)
    if sink is None:
        return _load(path_or_frame, source, log, float(days_per_month), encoding, bool(strict))
    complete = False
    try:
        cohort = _load(path_or_frame, source, log, float(days_per_month), encoding, bool(strict))
        complete = True
        return cohort
    except CohortError:
        complete = True
        raise
    finally:
        sink.close(commit=complete)


def _load(path_or_frame, source: str, log: ProblemLog, days_per_month: float, encoding: str | None,
          strict: bool = False) -> Cohort:
    """:func:`load_cohort` once its arguments are checked: read, type, check; problems go to ``log``."""
    raw = read_table(path_or_frame, encoding, log)
    if raw is None:
        log.raise_if_errors()
    known, extra = _columns(raw, log)
    ids = [None] * raw.n_rows
    if "patient_id" in known:
        cells = raw.array(known["patient_id"])
        if isinstance(cells, Coded):  # each distinct cell read once
            ids = np.array([_id(v) for v in cells.uniques], dtype=object)[cells.codes].tolist()
        else:
            if isinstance(cells, list) or not is_text(cells):
                cells = _cells(raw, known["patient_id"])  # Python scalars, as the rows hold them
            else:
                cells = text_cells(cells)
            ids = [_id(v) for v in cells]  # _id(v) == _id(native(v)): no need to map empties first
        ids = [i[:-2] if i and i.endswith(".0") and _FLOAT_ID.fullmatch(i) else i for i in ids]
    ctx = RowContext(log, raw.lines, ids)
    for i, rule, name, value, message in raw.notes:  # cells the reader could not read (Excel)
        ctx.add(rule, i, None if name is None else normalise_name(name), value, message)
    typed, broken = {}, {}
    for name in [c.name for c in ALL_COLUMNS if c.name in known]:
        j = known[name]
        cells = raw.array(j)
        collapsed = collapse_column(column(name), cells, ctx, raw.ragged)  # one problem for a column-wide mistake
        typed[name], broken[name] = type_column(column(name), cells, ctx,
                                                raw.ragged | collapsed if collapsed else raw.ragged)
        raw.release(j)  # the typed column replaces the cells (memory of a large file)
    present = tuple(typed)
    if applies(typed, log.has_errors, raw.ragged) and not maybe_problems(typed, float(days_per_month)):
        # nothing to derive and no cross-column rule can fire: the checks below would find nothing
        frame = _frame(typed, raw.n_rows)
        derived = []
        if any(n in typed for n in _TIMING):  # the quick check does not know the exposure timings: their rules
            derived = reconcile_timings(frame, pd.DataFrame(broken, index=frame.index, dtype=bool), ctx,
                                        float(days_per_month))
            order = [c.name for c in ALL_COLUMNS if c.name in frame]
            frame = _frame({name: frame[name].array for name in order}, len(frame))
        _check_required(frame, extra, log)
    else:
        frame, derived = _check(typed, broken, extra, ctx, raw, float(days_per_month))
    check_plausibility(frame, ctx, derived, float(days_per_month), strict)
    log.raise_if_errors()
    for name, j in extra.items():
        frame[name] = pd.Series([None if is_missing(v) else v for v in _cells(raw, j)],
                                dtype=object).infer_objects()
    return Cohort(frame, source, tuple(raw.lines), present, tuple(derived), tuple(extra),
                  log.warnings, float(days_per_month))
