"""Problems found in a cohort file, collected and reported all at once.

Why: a researcher fixing a spreadsheet should not have to run the loader once
per mistake. Every check appends a :class:`Problem` (patient, row, column,
value, rule) to a :class:`ProblemLog`; at the end the loader raises one
:class:`CohortError` listing them all in an aligned table a clinician can read
beside the spreadsheet. Rule names are stable identifiers (documented in
``docs/cohort-format.md``) so tests and tools can match on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from failpattern.errors import InputError

__all__ = ["Problem", "CohortError", "ProblemLog", "RowContext", "RULES", "format_problems"]

#: Every rule the loader checks, with the sentence shown to the user.
RULES: dict[str, str] = {
    # whole file
    "file_not_found": "there is no file at that path",
    "missing_reader": "reading this kind of file needs an optional package: pip install 'failpattern[io]'",
    "unknown_extension": "the file type is not one failpattern reads (.csv, .tsv, .txt, .xlsx, .xlsm, .parquet)",
    "not_a_table": "the file is not a table (binary data, JSON, or a damaged spreadsheet)",
    "unreadable_encoding": "the text is not UTF-8; save it as 'CSV UTF-8' or pass encoding=",
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
    "negative_time": "a follow-up time is negative",
    "not_a_number": "the value is not a number",
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
}


@dataclass(frozen=True)
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
    """

    rule: str
    message: str
    line: int | None = None
    patient_id: str | None = None
    column: str | None = None
    value: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        who = f", patient {self.patient_id}" if self.patient_id else ""
        col = f", column {self.column}" if self.column else ""
        val = f", value {self.value!r}" if self.value is not None else ""
        return f"{where}{who}{col}{val}: {self.message} [{self.rule}]"


_HEADER = ("line", "patient", "column", "value", "rule")
_WIDEST = 30  # long values are shortened so the table stays readable


def _cell(text: object) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= _WIDEST else s[: _WIDEST - 3] + "..."


def format_problems(problems, source: str = "") -> str:
    """An aligned, multi-line table of ``problems`` (line, patient, column, value, rule).

    Parameters
    ----------
    problems : sequence of Problem
    source : str
        Name of the file, shown in the first line.

    Returns
    -------
    str
    """
    problems = list(problems)
    n_err = sum(p.severity == "error" for p in problems)
    n_warn = len(problems) - n_err
    head = f"{source}: " if source else ""
    lines = [f"{head}{n_err} error(s), {n_warn} warning(s)"]
    rows = [_HEADER] + [
        ("-" if p.line is None else str(p.line), _cell(p.patient_id), p.column or "",
         "" if p.value is None else _cell(repr(p.value)),
         p.rule + (" (warning)" if p.severity == "warning" else ""))
        for p in problems
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, (row, p) in enumerate(zip(rows, [None] + problems)):
        cells = "  ".join(c.ljust(w) for c, w in zip(row[:4], widths))
        lines.append(f"  {cells}  {row[4]}")
        if p is not None:
            lines.append(f"  {'':{widths[0]}}  -> {p.message}")
    return "\n".join(lines)


class CohortError(InputError):
    """A cohort file breaks one or more rules of the cohort format.

    Attributes
    ----------
    problems : tuple of Problem
        Every problem found (errors and warnings), in file order.
    source : str
        The file (or ``"<DataFrame>"``) that was read.
    """

    def __init__(self, problems, source: str = ""):
        self.problems = tuple(problems)
        self.source = source
        super().__init__(format_problems(self.problems, source))

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems of severity ``"error"``."""
        return tuple(p for p in self.problems if p.severity == "error")


@dataclass
class ProblemLog:
    """Collects problems while a file is checked; see :class:`Problem` for the fields."""

    source: str = ""
    problems: list[Problem] = field(default_factory=list)

    def add(self, rule: str, message: str, *, line=None, patient_id=None, column=None,
            value=None, severity: str = "error") -> None:
        if rule not in RULES:  # a programming error, not a user one
            raise KeyError(f"unknown rule {rule!r}")
        value = None if value is None else str(value)
        pid = None if patient_id is None else str(patient_id)
        self.problems.append(Problem(rule, message, None if line is None else int(line),
                                     pid, column, value, severity))

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def raise_if_errors(self) -> None:
        """Raise :class:`CohortError` with every problem if any is an error."""
        if self.has_errors:
            raise CohortError(self.sorted(), self.source)

    def sorted(self) -> list[Problem]:
        """Problems in file order: whole-file first, then by line (stable within a line)."""
        return sorted(self.problems, key=lambda p: -1 if p.line is None else p.line)

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
