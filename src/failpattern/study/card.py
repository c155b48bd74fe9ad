"""Study cards: every number a published study reports, as validated data.

Why this module exists: a reproduction compares each re-computed result with
the value the paper prints. Those published values are hand-entered, so they
are kept apart from code, in a YAML "study card" (``data/studies/<name>.yaml``)
that records, for each number, where it is printed, how it was computed
(method and software convention), its printed precision and the tolerance a
re-analysis must meet. The schema is documented in ``docs/study-cards.md``.

Loading validates the whole card and reports *all* problems at once, each
naming the file, the YAML line, the number id, the field, the value and the
rule, in a single :class:`StudyCardError`. The card's own arithmetic (counts
that must add up, percentages that must equal count / denominator) is not a
loading error: the paper may be inconsistent. :meth:`StudyCard.consistency`
reports it, and each mismatch must be explained by an ``inconsistency`` entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import pandas as pd

from failpattern._resources import data_dir, study_path
from failpattern.errors import InputError

__all__ = [
    "CONVENTIONS", "METHODS", "RELATIONS", "SCHEMA", "UNITS",
    "CardNumber", "CardProblem", "Check", "Population", "StudyCard", "StudyCardError",
    "load_study", "printed_round", "table_cell",
]

SCHEMA = "failpattern-study-card/1"


@dataclass(frozen=True)
class _Method:
    description: str
    tolerance: float | None  # default absolute tolerance; None: not a regression target
    kind: str  # count | percent | p | ratio | time | value | constant


#: The method vocabulary: name -> description, default tolerance and kind of value.
METHODS: Mapping[str, _Method] = MappingProxyType({
    "count": _Method("Number of patients (or lesions) in a group", 0.0, "count"),
    "proportion": _Method("Percentage = numerator / denominator x 100", 0.1, "percent"),
    "rate": _Method("Percentage the paper calls a rate (actuarial, crude); computation as stated in notes", 0.5, "percent"),
    "median": _Method("Descriptive median of a baseline variable (range in range_lower/upper)", 0.5, "value"),
    "follow_up_median": _Method("Median follow-up (method of computation as stated in notes)", 0.5, "time"),
    "km_median": _Method("Kaplan-Meier median survival time (95% CI in ci_lower/upper)", 0.5, "time"),
    "km_rate_at": _Method("Kaplan-Meier survival percentage at time `at`", 1.0, "percent"),
    "cif_at": _Method("Cumulative incidence percentage at time `at`", 1.0, "percent"),
    "logrank_p": _Method("Log-rank test p-value", 0.01, "p"),
    "survival_p": _Method("p-value of a survival comparison, test (log-rank or Cox) not stated", 0.01, "p"),
    "cox_hr": _Method("Cox proportional-hazards hazard ratio (CI in ci_lower/upper)", 0.05, "ratio"),
    "cox_p": _Method("Cox model Wald p-value", 0.01, "p"),
    "finegray_shr": _Method("Fine-Gray subdistribution hazard ratio (CI in ci_lower/upper)", 0.05, "ratio"),
    "finegray_p": _Method("Fine-Gray Wald p-value", 0.01, "p"),
    "gray_p": _Method("Gray's test p-value for cumulative incidence", 0.01, "p"),
    "chisq_p": _Method("Pearson chi-square p-value", 0.01, "p"),
    "fisher_p": _Method("Fisher's exact test p-value", 0.01, "p"),
    "contingency_p": _Method("p-value of a contingency-table test, test (chi-square or Fisher) not stated", 0.01, "p"),
    "two_sample_p": _Method("p-value comparing a continuous variable between groups, test not stated", 0.01, "p"),
    "protocol": _Method("Design constant or definition (dose, cut-off, schedule); never re-computed", None, "constant"),
    "cited": _Method("Number quoted from another study; never re-computed", None, "constant"),
})

#: Software conventions a number can be tied to.
CONVENTIONS: Mapping[str, str] = MappingProxyType({
    "spss22": "IBM SPSS Statistics 22 (Kaplan-Meier, log-rank, Cox, chi-square, Fisher)",
    "stata13": "Stata 13.1 (stcrreg, Fine-Gray)",
    "r": "R survival / cmprsk",
    "sas": "SAS",
    "none": "No software convention (a count, a percentage, a constant)",
})

#: How the printed value relates to the quantity: ``eq`` (default), bounds, or approximately.
RELATIONS = ("eq", "lt", "le", "gt", "ge", "approx")

#: Allowed units.
UNITS = ("patients", "lesions", "percent", "p", "ratio", "months", "weeks", "years", "cm", "mg",
         "Gy", "fractions", "none")

_ID = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
_NUMERIC_FIELDS = ("value", "ci_lower", "ci_upper", "range_lower", "range_upper", "at", "tolerance")
_TEXT_FIELDS = ("location", "analysis", "population", "method", "unit", "convention", "relation",
                "endpoint", "grouping", "notes", "inconsistency", "estimate")
_NUMBER_FIELDS = ("id", "value", "relation", "ci_lower", "ci_upper", "ci_level", "range_lower", "range_upper",
                  "at", "unit", "method", "population", "numerator", "denominator", "table", "events",
                  "totals", "estimate", "endpoint", "grouping", "location", "also_at", "analysis",
                  "convention", "decimals", "tolerance", "inconsistency", "contradicted_by", "notes")
_REQUIRED = ("id", "value", "location", "analysis", "population", "method")
_TOP = ("schema", "study", "analyses", "populations", "checks", "sections", "numbers")
_POP_FIELDS = ("n", "count_id", "parent", "description", "notes")
_CHECK_FIELDS = ("id", "terms", "total", "inconsistency", "notes")
_CONTINGENCY = ("chisq_p", "fisher_p", "contingency_p")


# ----------------------------------------------------------------------------- errors
@dataclass(frozen=True)
class CardProblem:
    """One rule a study card breaks.

    Attributes
    ----------
    file : str
        The card's path.
    line : int or None
        1-based YAML line of the offending entry, when known.
    id : str or None
        The number (or population, check) the problem is about.
    field : str or None
        The offending field.
    value : Any
        The offending value.
    rule : str
        The rule that is broken, in words.
    """

    file: str
    line: int | None
    id: str | None
    field: str | None
    value: Any
    rule: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = []
        if self.id is not None:
            what.append(f"'{self.id}'")
        if self.field is not None:
            what.append(f"field '{self.field}'" + ("" if self.value is None else f" = {self.value!r}"))
        return f"{where}: {' '.join(what) + ': ' if what else ''}{self.rule}"


class StudyCardError(InputError):
    """A study card breaks the schema; ``problems`` lists every problem found.

    Attributes
    ----------
    path : str
        The card that was loaded.
    problems : sequence of CardProblem
        All problems, in file order.
    """

    def __init__(self, path: str, problems):
        self.path = str(path)
        self.problems = tuple(problems)
        n = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"study card {self.path} has {n} problem{'s' if n != 1 else ''}:\n{lines}")


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class CardNumber:
    """One published number of a study card (``docs/study-cards.md`` details each field).

    Attributes
    ----------
    id : str
        Stable dotted identifier, e.g. ``pfs1.median.all``.
    value : float
        The number as printed (percentages in percent, p-values as fractions).
    location : str
        Where it is printed ("Table 1 row 'Sex: Male', column 'RT'").
    analysis : str
        The analysis it belongs to (a key of the card's ``analyses``).
    population : str
        The patients it describes (a key of the card's ``populations``).
    method : str
        How it was computed (the card's method vocabulary: ``km_median``, ``logrank_p``, ...).
    relation : str
        ``eq`` for a printed value; ``lt``, ``le``, ``gt``, ``ge`` for "p < 0.001" and the like;
        ``approx`` for "approximately".
    ci_lower, ci_upper : float or None
        Printed confidence limits.
    ci_level : float or None
        Their level (0.95).
    ci_decimals : tuple of int or None
        Printed decimals of the two limits.
    range_lower, range_upper : float or None
        A printed range (e.g. of follow-up).
    range_decimals : tuple of int or None
        Printed decimals of the two range ends.
    at : float or None
        The time a rate or cumulative incidence is read at (months).
    unit : str or None
        Unit of ``value``.
    numerator : tuple of str or None
        Ids of the counts a proportion is made of.
    denominator : str or int or None
        Population name, count id or number a proportion is divided by.
    table : tuple of tuple or None
        Contingency-table cells (ids or counts) a p-value was computed from.
    events, totals : tuple or None
        Event counts and group sizes (ids or numbers) for two-group comparisons.
    estimate : str or None
        Id of the estimate a p-value or CI belongs to.
    endpoint, grouping : str or None
        The outcome and the grouping the number describes.
    also_at : tuple of str
        Other places the same printed value appears.
    convention : str
        Software convention the paper used (``spss22``, ``stata13``, ``none``).
    decimals : int
        Printed decimals of ``value``.
    tolerance : float or None
        Absolute tolerance for regression checks.
    inconsistency : str or None
        How the paper contradicts itself on this number, if it does.
    contradicted_by : tuple of str
        Ids of published numbers that cannot all hold together with this one (the
        paper contradicts itself). A cohort that reproduces all of them cannot
        reproduce this number; :func:`~failpattern.study.compare.compare` then gives
        it the verdict "contradicted by the paper" instead of "differs".
    parts_contradicted_by : tuple of (str, tuple of str)
        The same for a confidence limit or range end of this number (``("ci_lower",
        ("t3.uni.liver_met.shr", ...))``); written in the card as a mapping
        ``contradicted_by: {ci_lower: [...]}``. An id names that number's printed value.
    notes : str or None
        Free-text remarks.
    section : str or None
        The paper's section.
    line : int or None
        YAML line of the entry.
    """

    id: str
    value: float
    location: str
    analysis: str
    population: str
    method: str
    relation: str = "eq"
    ci_lower: float | None = None
    ci_upper: float | None = None
    ci_level: float | None = None
    ci_decimals: tuple[int, int] | None = None
    range_lower: float | None = None
    range_upper: float | None = None
    range_decimals: tuple[int, int] | None = None
    at: float | None = None
    unit: str | None = None
    numerator: tuple[str, ...] | None = None
    denominator: str | int | None = None
    table: tuple[tuple[str | int, ...], ...] | None = None
    events: tuple[str, ...] | None = None
    totals: tuple[str | int, ...] | None = None
    estimate: str | None = None
    endpoint: str | None = None
    grouping: str | None = None
    also_at: tuple[str, ...] = ()
    convention: str = "none"
    decimals: int = 0
    tolerance: float | None = None
    inconsistency: str | None = None
    contradicted_by: tuple[str, ...] = ()
    parts_contradicted_by: tuple[tuple[str, tuple[str, ...]], ...] = ()
    notes: str | None = None
    section: str | None = None
    line: int | None = None

    def contradictions(self, part: str = "value") -> tuple[str, ...]:
        """Ids of the printed values that cannot hold together with ``part`` of this number.

        Parameters
        ----------
        part : {"value", "ci_lower", "ci_upper", "range_min", "range_max"}
            The printed part.

        Returns
        -------
        tuple of str
            :attr:`contradicted_by` for the value, else the part's entry of
            :attr:`parts_contradicted_by` (empty when none).
        """
        return self.contradicted_by if part == "value" else dict(self.parts_contradicted_by).get(part, ())


@dataclass(frozen=True)
class Population:
    """A named group of patients of the study.

    Attributes
    ----------
    name : str
        The key numbers refer to (``population:`` field).
    n : int or None
        Its size, when the paper gives or implies it.
    description : str
        Who is in it.
    count_id : str or None
        Id of the card number that states its size.
    parent : str or None
        The population it is a subset of.
    notes : str or None
        Free-text remarks (e.g. how ``n`` was derived).
    """

    name: str
    n: int | None
    description: str = ""
    count_id: str | None = None
    parent: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Check:
    """An arithmetic identity the paper's numbers should satisfy: ``sum(terms) == total``.

    Attributes
    ----------
    id : str
        Identifier of the check.
    terms : tuple of str or int
        Number ids (or literal counts) that are added.
    total : str or int
        The number id, population name or count they should add up to.
    inconsistency : str or None
        Why the paper's numbers do not add up, when they do not.
    notes : str or None
        Free-text remarks.
    line : int or None
        YAML line of the entry.
    """

    id: str
    terms: tuple[str | int, ...]
    total: str | int
    inconsistency: str | None = None
    notes: str | None = None
    line: int | None = None


_TABLE_CELL = re.compile(r"^(Table \d+) row '(.*)', column '(.*)'$")


def table_cell(location: str | None) -> tuple[str, str, str] | None:
    """``(table, row, column)`` of a location in a published table, else None.

    Parameters
    ----------
    location : str or None
        A card number's ``location``, e.g. ``"Table 1 row 'Sex: Male', column 'RT'"``.

    Returns
    -------
    tuple of str or None
        ``("Table 1", "Sex: Male", "RT")``; None for a location in the text.
    """
    m = _TABLE_CELL.match(location or "")
    return m.groups() if m else None


def printed_round(x: float, decimals: int) -> float:
    """Round ``x`` half away from zero to ``decimals`` places, as printed tables do.

    Parameters
    ----------
    x : float
        Value to round.
    decimals : int
        Decimal places.

    Returns
    -------
    float
    """
    q = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(float(x))).quantize(q, rounding=ROUND_HALF_UP))


# ----------------------------------------------------------------------------- the card
@dataclass(frozen=True, eq=False)
class StudyCard:
    """A loaded, validated study card.

    Attributes
    ----------
    name : str
        ``study.name`` of the card.
    path : pathlib.Path
        File the card was read from.
    study : Mapping
        The ``study`` metadata (citation, n, software, ...), read-only.
    analyses : Mapping[str, str]
        Analysis name -> description.
    populations : Mapping[str, Population]
        Population name -> :class:`Population`.
    checks : tuple of Check
        Arithmetic identities among the numbers.
    """

    name: str
    path: Path
    study: Mapping[str, Any]
    analyses: Mapping[str, str]
    populations: Mapping[str, Population]
    checks: tuple[Check, ...]
    _records: Mapping[str, CardNumber] = field(repr=False)

    @property
    def numbers(self) -> pd.DataFrame:
        """All numbers, one row each, in card order (a fresh copy on each access)."""
        cols = [f.name for f in fields(CardNumber)]
        return pd.DataFrame([[getattr(r, c) for c in cols] for r in self._records.values()], columns=cols)

    @property
    def ids(self) -> tuple[str, ...]:
        """Number ids in card order."""
        return tuple(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, number_id: object) -> bool:
        return number_id in self._records

    def get(self, number_id: str) -> CardNumber:
        """The number with id ``number_id``.

        Parameters
        ----------
        number_id : str
            A number id of this card.

        Returns
        -------
        CardNumber

        Raises
        ------
        KeyError
            If the card has no such id (the message suggests close ids).
        """
        try:
            return self._records[number_id]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(number_id, self._records, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"study card {self.name!r} has no number {number_id!r}{hint}") from None

    def resolve(self, ref: str | int) -> int | float:
        """Value of a reference: an int, a number id, or a population name (its ``n``).

        Parameters
        ----------
        ref : str or int
            A literal count, a number id or a population name.

        Returns
        -------
        int or float
        """
        if isinstance(ref, (int, float)):
            return ref
        if ref in self._records:
            return self._records[ref].value
        return self.populations[ref].n

    def denominator_of(self, number: CardNumber) -> int | float | None:
        """Denominator of a proportion or rate: ``denominator`` if set, else the population's ``n``.

        Parameters
        ----------
        number : CardNumber
            A proportion or rate of this card.

        Returns
        -------
        int or float or None
        """
        ref = number.denominator if number.denominator is not None else number.population
        return self.resolve(ref)

    def summary(self) -> pd.DataFrame:
        """Number of numbers by analysis and method."""
        frame = self.numbers
        return frame.groupby(["analysis", "method"], sort=False).size().rename("numbers").reset_index()

    def consistency(self) -> pd.DataFrame:
        """The card's own arithmetic: every percentage against its count and every check.

        Returns
        -------
        pandas.DataFrame
            Columns ``kind`` ("proportion" or "sum"), ``id``, ``printed``, ``expected``
            (recomputed from the card's counts, rounded to the printed precision for
            percentages), ``status`` ("ok", "noted" when a mismatch is explained by an
            ``inconsistency`` entry, "FAIL" otherwise; "noted-but-ok" when an
            ``inconsistency`` is recorded although the arithmetic holds) and ``detail``.
        """
        rows = []
        for r in self._records.values():
            if r.method != "proportion" or r.numerator is None:
                continue
            num = sum(self.resolve(i) for i in r.numerator)
            den = self.denominator_of(r)
            exact = 100.0 * num / den
            expected = printed_round(exact, r.decimals)
            if r.relation == "approx":  # the judge's rule for an approximation: within one patient
                from failpattern.study.judge import judge

                ok = judge(exact, r.value, decimals=r.decimals, relation="approx", method=r.method,
                           one_patient=100.0 / den).verdict == "matches as printed"
            else:
                ok = expected == r.value if r.relation == "eq" else _holds(exact, r.relation, r.value)
            rows.append(("proportion", r.id, r.value, expected, _status(ok, r.inconsistency),
                         f"{num:g}/{den:g} = {exact:.4f}%"))
        for c in self.checks:
            total = self.resolve(c.total)
            got = sum(self.resolve(t) for t in c.terms)
            rows.append(("sum", c.id, total, got, _status(got == total, c.inconsistency),
                         " + ".join(f"{self.resolve(t):g}" for t in c.terms) + f" = {got:g}"))
        return pd.DataFrame(rows, columns=["kind", "id", "printed", "expected", "status", "detail"])


def _status(ok: bool, inconsistency: str | None) -> str:
    if ok:
        return "noted-but-ok" if inconsistency else "ok"
    return "noted" if inconsistency else "FAIL"


def _holds(x: float, relation: str, bound: float) -> bool:
    return {"lt": x < bound, "le": x <= bound, "gt": x > bound, "ge": x >= bound,
            "eq": x == bound}[relation]


# ----------------------------------------------------------------------------- loading
def load_study(name_or_path: str | Path = "ni2019") -> StudyCard:
    """Load and validate a study card.

    Parameters
    ----------
    name_or_path : str or pathlib.Path, default "ni2019"
        The name of a card shipped with failpattern (``data/studies/<name>.yaml``)
        or the path of a YAML card file.

    Returns
    -------
    StudyCard

    Raises
    ------
    StudyCardError
        If the file is missing, is not valid YAML, or breaks any schema rule;
        ``.problems`` lists every problem (file, line, id, field, value, rule).

    Examples
    --------
    >>> card = load_study("ni2019")
    >>> card.get("pfs1.median.all").value
    11.5
    """
    path = _locate(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StudyCardError(str(path), [CardProblem(str(path), None, None, None, None,
                                                     f"cannot be read ({exc.strerror or exc})")]) from None
    # imported here: the parser builds the records defined in this module
    from failpattern.study._card_parser import _Parser

    return _Parser(str(path), text).card(path)


def _locate(name_or_path) -> Path:
    p = Path(name_or_path)
    if isinstance(name_or_path, Path) or p.suffix in (".yaml", ".yml") or len(p.parts) > 1:
        if not p.is_file():
            raise StudyCardError(str(p), [CardProblem(str(p), None, None, None, None, "file not found")])
        return p
    shipped = study_path(str(name_or_path))
    if not shipped.is_file():
        names = sorted(f.stem for f in (data_dir() / "studies").glob("*.yaml"))
        raise StudyCardError(str(name_or_path), [CardProblem(
            str(name_or_path), None, None, None, None,
            f"no study card of that name is shipped (available: {', '.join(names) or 'none'}); "
            "pass a path ending in .yaml for your own card")])
    return shipped
