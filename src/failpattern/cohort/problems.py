"""Problems found in a cohort file, collected and reported all at once.

Why: a researcher fixing a spreadsheet should not have to run the loader once
per mistake. Every check appends a :class:`Problem` (patient, row, column,
value, rule) to a :class:`ProblemLog`; at the end the loader raises one
:class:`CohortError` listing them all in an aligned table a clinician can read
beside the spreadsheet. Rule names are stable identifiers (documented in
``docs/cohort-format.md``) so tests and tools can match on them.

A bad file can hold millions of bad cells (a 200 MB export with a shifted
column), so the log keeps every problem's detail only up to
:data:`DETAIL_LIMIT` per rule and column (and :data:`TOTAL_LIMIT` in all)
and counts the rest: memory stays
bounded and the counts stay exact. The console table shows the first
:data:`SHOWN` problems and then the counts by rule and column
(:func:`format_problems`). For the researcher to sort and filter, every problem
goes to a CSV file as it is found when one is asked for (:class:`ProblemsFile`,
``load_cohort(..., problems_file=)``, ``--problems-file``), and
:func:`write_problems` writes the problems kept in detail.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from failpattern.errors import InputError

__all__ = ["Problem", "Problems", "ProblemsFile", "CohortError", "ProblemLog", "RowContext", "RULES",
           "PLAUSIBILITY", "WARNING_RULES",
           "format_problems", "write_problems", "SHOWN", "DETAIL_LIMIT", "TOTAL_LIMIT"]

#: Problems listed one by one on the console; the rest are counted by rule and column.
SHOWN = 50
#: Problems kept in full per (rule, column); beyond it they are only counted (bounded memory).
DETAIL_LIMIT = 2_000
#: Problems kept in full in all (cross-column rules name many column combinations).
TOTAL_LIMIT = 50_000

#: Every rule the loader checks, with the sentence shown to the user.
RULES: dict[str, str] = {
    # whole file
    "file_not_found": "there is no file at that path",
    "missing_reader": "reading this kind of file needs an optional package: pip install pyarrow openpyxl "
                      "(in a clone of the repository: pip install -e '.[io]')",
    "unknown_extension": "the file type is not one failpattern reads (.csv, .tsv, .txt, .xlsx, .xlsm, .parquet)",
    "not_a_table": "the file is not a table (binary data, JSON, or a damaged spreadsheet)",
    "unreadable_file": "the path is not a regular file that can be read (a pipe, a device, no permission)",
    "unreadable_encoding": "the text is not UTF-8; save it as 'CSV UTF-8' or pass encoding=",
    "unsupported_type": "a Parquet or DataFrame column holds lists, records, maps or bytes, not values",
    "merged_cells": "Excel cells in the table are merged; only the first of them holds the value",
    "formula_not_saved": "an Excel formula cell has no saved value; open and save the file in Excel",
    "empty_file": "the file has no header or no patient rows",
    "ragged_row": "the row has a different number of fields from the header",
    "duplicate_column": "the same column name appears more than once",
    "missing_column": "a required column is missing",
    "unknown_column": "the column is not part of the cohort format (kept, but not used)",
    # single values
    "missing_patient_id": "patient_id is empty",
    "duplicate_patient_id": "the same patient_id appears on more than one row",
    "missing_value": "a required value is empty",
    "missing_time": "a follow-up time is empty",
    "negative_time": "a follow-up time, or a time to a treatment, is negative",
    "not_a_number": "the value is not a number",
    "non_ascii_digits": "a number or date is written with digits other than 0-9 (full-width, Arabic-Indic...)",
    "not_an_integer": "the value must be a whole number",
    "out_of_range": "the number is outside the allowed range",
    "not_binary": "the value must be 0 or 1",
    "unknown_category": "the value is not one of the allowed values",
    "bad_date": "the value is not a date written as YYYY-MM-DD",
    # across columns of one row
    "dates_out_of_order": "the dates are in an impossible order",
    "progression_after_death": "a progression is dated after death",
    "pfs2_without_progression": "PFS2 data are given for a patient without a first progression",
    "pattern_event_mismatch": "failure_pattern disagrees with the PFS1 event or the dates",
    "pattern_sites_mismatch": "failure_pattern disagrees with the failure-site flags",
    "duration_date_mismatch": "a duration disagrees with the duration computed from the dates",
    "event_date_mismatch": "an event flag disagrees with the dates",
    "pfs_longer_than_os": "progression-free time is longer than overall survival",
    "death_mismatch": "PFS and OS disagree about whether the patient died",
    "inconsistent_flags": "a summary flag disagrees with the detailed flags it summarises",
    "detail_without_parent": "a detail is given although the event it describes did not happen",
    # exposure timings (salvage_rt_*, cbpd_*, first_rt_*)
    "timing_without_treatment": "a treatment's timing (date or months) is given although its flag "
                                "(salvage_rt, cbpd, any_rt) is 0",
    "timing_before_time_zero": "a treatment is dated before its time zero (first progression for salvage RT "
                               "and CBPD, diagnosis for the first RT)",
    "timing_after_last_contact": "a treatment starts after the patient's last contact (death, or last "
                                 "follow-up), by its date or its months",
    "first_rt_vs_prior_rt": "the first radiotherapy is on the wrong side of crizotinib start: on or before it "
                            "with prior_rt = 1, on or after it with prior_rt = 0",
    "first_rt_after_salvage_rt": "the first radiotherapy course is dated after the salvage radiotherapy",
    # plausibility of the whole file: warnings (errors with strict=True / --strict)
    "implausible_duration": "durations look like days or weeks, not months (median above 120 or a value "
                            "above 240 months)",
    "implausible_age": "ages outside 15-100 years (a typo, or another unit)",
    "followup_beyond_dates": "a follow-up time is longer than the span of the dates in the file",
    "censored_at_zero": "more than half of the patients are censored at time 0 on an endpoint "
                        "(a 0 written for an unknown time?)",
}

#: Rules whose problems are warnings: the file loads. ``PLAUSIBILITY`` rules become errors with
#: ``load_cohort(..., strict=True)`` (``--strict``).
PLAUSIBILITY = ("implausible_duration", "implausible_age", "followup_beyond_dates", "censored_at_zero")
WARNING_RULES = ("unknown_column",) + PLAUSIBILITY


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule in a cohort file.

    Attributes
    ----------
    rule : str
        Key of :data:`RULES`, e.g. ``"unknown_category"``.
    message : str
        What is wrong and how to fix it, in plain words.
    line : int or None
        Row as the user sees it: the file line for CSV (header = line 1), the
        sheet row for Excel, and the same numbering (header = 1, first patient
        = 2) for Parquet and DataFrames. ``None`` for whole-file problems.
    patient_id : str or None
        The row's patient, when known.
    column : str or None
        The column concerned (several joined by ``+`` for cross-column rules).
    value : str or None
        The offending value as text, as it appears in the file.
    severity : {"error", "warning"}
        Errors stop loading; warnings are kept on :attr:`Cohort.warnings`.
    sheet : str or None
        The Excel sheet that was read (``None`` for other files).
    """

    rule: str
    message: str
    line: int | None = None
    patient_id: str | None = None
    column: str | None = None
    value: str | None = None
    severity: str = "error"
    sheet: str | None = None

    @property
    def where(self) -> str:
        """``line 14``, ``sheet 'Patients', row 14``, ``sheet 'Patients'`` or ``file``."""
        if self.sheet is not None:
            return f"sheet {self.sheet!r}" + ("" if self.line is None else f", row {self.line}")
        return f"line {self.line}" if self.line is not None else "file"

    def __str__(self) -> str:
        who = f", patient {self.patient_id}" if self.patient_id else ""
        col = f", column {self.column}" if self.column else ""
        val = f", value {self.value!r}" if self.value is not None else ""
        return f"{self.where}{who}{col}{val}: {self.message} [{self.rule}]"


def _key(p: Problem) -> tuple:
    return p.rule, p.column, p.severity


class Problems(tuple):
    """Problems in file order (a tuple), with the number of every problem found.

    The log keeps at most :data:`DETAIL_LIMIT` problems per rule and column;
    ``counts`` counts all of them, kept or not, so totals are exact.

    Attributes
    ----------
    counts : collections.Counter
        ``(rule, column, severity)`` -> number of problems found.
    """

    counts: Counter
    path: str | None

    def __new__(cls, problems=(), counts=None, path: str | None = None):
        self = super().__new__(cls, problems)
        self.counts = Counter(counts) if counts is not None else Counter(_key(p) for p in self)
        self.path = path  # the file the problems are about: never overwritten by write_problems
        return self

    @property
    def total(self) -> int:
        """Every problem found, listed or only counted."""
        return sum(self.counts.values())

    def not_kept(self) -> Counter:
        """``(rule, column, severity)`` -> problems counted but not kept in detail."""
        return self.counts - Counter(_key(p) for p in self)


_WIDEST = 30  # long values are shortened so the table stays readable


def _cell(text: object) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= _WIDEST else s[: _WIDEST - 3] + "..."


def _by_rule_and_column(counts: Counter, first: dict | None = None) -> list[str]:
    """One line per rule and column: the count, then the first rows (``first``: key -> problems kept)."""
    rows = sorted(((n, rule, column, sev) for (rule, column, sev), n in counts.items() if n > 0),
                  key=lambda r: (-r[0], r[1], r[2] or ""))
    out = []
    for n, rule, column, sev in rows:
        kept = [p for p in (first or {}).get((rule, column, sev), []) if p.line is not None][:_FIRST]
        label = "row" if kept and kept[0].sheet is not None else "line"
        where = [str(p.line) for p in kept]
        rows_text = (f"  ({label}{'s' if len(where) > 1 else ''} {', '.join(where)}{', ...' if n > len(where) else ''})"
                     if where else "")
        out.append(f"  {n:>9,}  {rule}{' (warning)' if sev == 'warning' else ''}"
                   f"{f' in {column}' if column else ''}{rows_text}")
    return out


_FIRST = 3  # rows named beside each count


def format_problems(problems, source: str = "", *, shown: int = SHOWN) -> str:
    """An aligned table of the first ``shown`` problems, then the rest counted by rule and column.

    Parameters
    ----------
    problems : sequence of Problem
        A :class:`Problems` (``CohortError.problems``) also counts the problems
        that were not kept in detail.
    source : str
        Name of the file, shown in the first line (with the Excel sheet).
    shown : int, default 50
        How many problems to list one by one.

    Returns
    -------
    str
    """
    counts = getattr(problems, "counts", None)
    problems = list(problems)
    counts = Counter(counts) if counts is not None else Counter(_key(p) for p in problems)
    n_err = sum(n for (_, _, sev), n in counts.items() if sev == "error")
    n_warn = sum(counts.values()) - n_err
    sheets = sorted({p.sheet for p in problems if p.sheet is not None})
    where = source + "".join(f", sheet {s!r}" for s in sheets)
    head = f"{where}: " if where else ""
    lines = [f"{head}{n_err:,} error(s), {n_warn:,} warning(s)"]
    listed = problems[:shown]
    header = ("row" if sheets else "line", "patient", "column", "value", "rule")
    rows = [header] + [
        ("-" if p.line is None else str(p.line), _cell(p.patient_id), p.column or "",
         "" if p.value is None else _cell(repr(p.value)),
         p.rule + (" (warning)" if p.severity == "warning" else ""))
        for p in listed
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row, p in zip(rows, [None] + listed):
        cells = "  ".join(c.ljust(w) for c, w in zip(row[:4], widths))
        lines.append(f"  {cells}  {row[4]}")
        if p is not None:
            lines.append(f"  {'':{widths[0]}}  -> {p.message}")
    rest = counts - Counter(_key(p) for p in listed)
    if rest:
        first: dict = {}
        for p in problems[shown:]:
            kept = first.setdefault(_key(p), [])
            if len(kept) < _FIRST:
                kept.append(p)
        lines.append(f"... and {sum(rest.values()):,} more problem(s), by rule and column:")
        lines += _by_rule_and_column(rest, first)
        lines.append("every problem in a CSV file: pass --problems-file PATH (failpattern analyze, reproduce, "
                     "check), or load_cohort(path, problems_file=...)")
    return "\n".join(lines)


_FIELDS = ("line", "sheet", "patient_id", "column", "value", "rule", "severity", "message")


def _row(p: Problem) -> list:
    return ["" if p.line is None else p.line, p.sheet or "", p.patient_id or "", p.column or "",
            "" if p.value is None else p.value, p.rule, p.severity, p.message]


def _check_problems_path(path: Path, source: str | None) -> None:
    """Refuse a problems file that is a folder, in a missing folder, or the cohort file itself."""
    if source and path.exists() and os.path.exists(source) and os.path.samefile(source, path):
        raise InputError(f"problems file: {path} is the cohort file itself; name another file, "
                         "e.g. problems.csv")
    if path.is_dir():
        raise InputError(f"problems file: {path} is a folder; name a file, e.g. problems.csv")
    if not path.parent.is_dir():
        raise InputError(f"problems file: the folder {path.parent} does not exist")
    if path.exists() and not _is_problems_file(path):
        raise InputError(f"problems file: {path} exists and is not a problems file failpattern wrote; "
                         "failpattern never overwrites it: name a new file, e.g. problems.csv")


_HEADER = ",".join(_FIELDS)


def _is_problems_file(path: Path) -> bool:
    """Whether ``path`` starts with the header failpattern writes (a list it may replace)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return fh.readline().rstrip("\r\n") == _HEADER
    except (OSError, UnicodeDecodeError):
        return False


def write_problems(problems, path) -> Path:
    """Write problems already collected to a CSV file (UTF-8 with BOM, so Excel shows accents), atomically.

    One row per problem in file order, with the fields of :class:`Problem`
    (``line, sheet, patient_id, column, value, rule, severity, message``);
    then, for each rule and column with problems beyond the detail limits
    (:data:`DETAIL_LIMIT`, :data:`TOTAL_LIMIT`), one row saying how many
    more were found but not kept. For every problem of a file, however many,
    pass ``problems_file=`` to :func:`~failpattern.cohort.load_cohort`
    instead (:class:`ProblemsFile`). The file is written to a temporary file
    in the same folder and moved into place
    (:func:`failpattern.output.write_file_atomic`), so ``path`` is either the
    complete list or untouched.

    Parameters
    ----------
    problems : sequence of Problem
        ``CohortError.problems`` (a :class:`Problems`), or any problems.
    path : str or Path
        The CSV file to write; an existing one is replaced only if it is a
        problems file failpattern wrote (it starts with the header).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        When ``path`` is a folder, its folder does not exist, it is the
        cohort file the problems are about, or it is another existing file.
    failpattern.output.OutputWriteError
        When the disk refuses the write (``path`` is then as it was).
    """
    path = Path(path)
    _check_problems_path(path, getattr(problems, "path", None))
    from failpattern.output import write_file_atomic

    not_kept = problems.not_kept() if isinstance(problems, Problems) else Counter()
    text = io.StringIO()
    out = csv.writer(text)
    out.writerow(_FIELDS)
    out.writerows(_row(p) for p in problems)
    for (rule, column, severity), n in sorted(not_kept.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        out.writerow(["", "", "", column or "", "", rule, severity,
                      f"{n:,} more problem(s) of this rule in this column were found but not "
                      f"listed (the first {DETAIL_LIMIT:,} of each rule and column, and "
                      f"{TOTAL_LIMIT:,} in all, are kept)"])
    write_file_atomic(path, text.getvalue().encode("utf-8-sig"))
    return path


class ProblemsFile:
    """Every problem of a file, streamed to a CSV file as the loader finds it (memory stays bounded).

    A :class:`ProblemLog`'s :attr:`~ProblemLog.sink`: each problem is one
    row (the columns of :func:`write_problems`), in the order found (column
    by column, then the checks across columns). The rows go to a temporary
    file beside ``path``, which becomes ``path`` only when
    :meth:`close` commits: the file is either complete or absent.

    Parameters
    ----------
    path : str or Path
        The CSV file to write; an existing one is replaced only if it is a
        problems file failpattern wrote.
    source : str, optional
        The cohort file being read (refused as ``path``).

    Raises
    ------
    InputError
        As :func:`write_problems`.
    """

    def __init__(self, path, source: str | None = None):
        from failpattern.output import atomic_writer

        self.path = Path(path)
        _check_problems_path(self.path, source)
        self.n = 0
        self._cm = atomic_writer(self.path)
        self._raw = self._cm.__enter__()
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8-sig", newline="")
        self._out = csv.writer(self._text)
        self._out.writerow(_FIELDS)

    def __call__(self, problem: Problem) -> None:
        self._out.writerow(_row(problem))
        self.n += 1

    def close(self, commit: bool = True) -> None:
        """Move the file into place (``commit``) or discard it."""
        self._text.flush()
        self._text.detach()
        if commit:
            self._cm.__exit__(None, None, None)
        else:
            with contextlib.suppress(BaseException):
                self._cm.__exit__(RuntimeError, RuntimeError("discarded"), None)


class CohortError(InputError):
    """A cohort file breaks one or more rules of the cohort format.

    Attributes
    ----------
    problems : Problems
        The problems found (errors and warnings), in file order: a tuple of
        :class:`Problem`, with ``.counts`` counting every problem (beyond
        :data:`DETAIL_LIMIT` per rule and column they are counted, not kept).
    source : str
        The file (or ``"<DataFrame>"``) that was read.
    """

    def __init__(self, problems, source: str = ""):
        self.problems = problems if isinstance(problems, Problems) else Problems(problems)
        self.source = source
        super().__init__(format_problems(self.problems, source))

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems of severity ``"error"`` (those kept in detail)."""
        return tuple(p for p in self.problems if p.severity == "error")


@dataclass
class ProblemLog:
    """Collects problems while a file is checked; see :class:`Problem` for the fields.

    Every problem is counted; its detail is kept for the first ``limit`` of
    each rule and column, and ``total_limit`` in all (see the module docstring). ``sheet`` names the
    Excel sheet being read; it is given to every problem added.
    """

    source: str = ""
    problems: list[Problem] = field(default_factory=list)
    sheet: str | None = None
    limit: int = field(default_factory=lambda: DETAIL_LIMIT)
    path: str | None = None  # the file read, if any
    total_limit: int = field(default_factory=lambda: TOTAL_LIMIT)
    counts: Counter = field(default_factory=Counter)
    #: Called with every problem as it is found (a :class:`ProblemsFile`); then none is only counted.
    sink: Callable[[Problem], None] | None = None

    def add(self, rule: str, message: str, *, line=None, patient_id=None, column=None,
            value=None, severity: str = "error") -> None:
        if rule not in RULES:  # a programming error, not a user one
            raise KeyError(f"unknown rule {rule!r}")
        key = (rule, column, severity)
        n = self.counts[key]
        self.counts[key] = n + 1
        keep = n < self.limit and len(self.problems) < self.total_limit
        if not keep and self.sink is None:
            return
        value = None if value is None else str(value)
        pid = None if patient_id is None else str(patient_id)
        problem = Problem(rule, message, None if line is None else int(line), pid, column, value, severity,
                          self.sheet)
        if self.sink is not None:
            self.sink(problem)
        if keep:
            self.problems.append(problem)

    def room(self, rule: str, column: str | None, severity: str = "error") -> int:
        """How many more problems of this rule and column to add one by one (unbounded with a :attr:`sink`)."""
        if self.sink is not None:
            return sys.maxsize
        return max(0, min(self.limit - self.counts[(rule, column, severity)],
                          self.total_limit - len(self.problems)))

    def count(self, rule: str, column: str | None, n: int, severity: str = "error") -> None:
        """Count ``n`` problems without keeping them (when :meth:`room` is 0)."""
        if rule not in RULES:
            raise KeyError(f"unknown rule {rule!r}")
        self.counts[(rule, column, severity)] += int(n)

    @property
    def has_errors(self) -> bool:
        return any(n and sev == "error" for (_, _, sev), n in self.counts.items())

    def raise_if_errors(self) -> None:
        """Raise :class:`CohortError` with every problem if any is an error."""
        if self.has_errors:
            raise CohortError(self.sorted(), self.source)

    def sorted(self) -> Problems:
        """Problems in file order: whole-file first, then by line (stable within a line)."""
        return Problems(sorted(self.problems, key=lambda p: -1 if p.line is None else p.line), self.counts,
                        self.path)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.sorted() if p.severity == "warning")


@dataclass
class RowContext:
    """A :class:`ProblemLog` plus the row numbers and patient ids, so checks name rows by position."""

    log: ProblemLog
    lines: list[int]
    ids: list[str | None]

    def add(self, rule: str, i: int, column: str | None, value, message: str,
            severity: str = "error") -> None:
        """Record a problem on the ``i``-th patient row (0-based)."""
        self.log.add(rule, message, line=self.lines[i], patient_id=self.ids[i], column=column,
                     value=value, severity=severity)
