"""The rules a reproduced number is judged by: the paper's own printed precision, or near it.

Why this module exists: a reproduction toolkit exists to say, number by number,
whether a paper's result comes out of the data, and a reader checks that by
rounding the reproduced value the way the paper rounds and comparing digits.
That is the default rule here (profile ``printed``); a second, documented
profile (``near``) says when a reproduction is close enough that a reader would
accept it as the same finding. Every verdict names the rule that gave it.
:func:`~failpattern.study.compare.compare` applies these rules to every printed
number of a study card; this module holds the rules alone, on plain floats, so
they can be read, tested at their edges and reused.

**Rounding.** Half-up (half away from zero) to the printed number of decimals,
applied to the shortest decimal representation of the reproduced float
(:func:`~failpattern.study.card.printed_round`): 0.0495 printed to 3 decimals
is 0.050 and 0.0505 is 0.051. Half-up is what SPSS, Stata and R's
``formatC``/``sprintf`` print for values that are not exact binary halves, and
what a reader does by hand; rounding the shortest representation rather than
the binary value keeps 0.0495 (stored as 0.04949999...) on the side a reader
sees. Banker's rounding (half-to-even) would call 0.0485 "0.048" where every
statistics package prints 0.049.

**Bounds.** A printed inequality ("p < 0.001", ">= 0.05") matches when the
unrounded reproduced value satisfies it: 0.00099 matches "< 0.001", 0.001
does not.

**Approximations.** A value the paper itself calls approximate ("approximately
66%") is judged by the ``near`` rule of its kind in both profiles: the paper
says it did not print it to its last digit.

The verdicts, in order of merit, are :data:`VERDICTS`. A *changed conclusion*
(:func:`changed_conclusion`) is judged apart from the verdict: a p-value on the
other side of 0.05 from the paper's, or a hazard ratio on the other side of 1,
changes what a reader concludes whatever its digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from failpattern.study.card import METHODS, printed_round

__all__ = ["ALPHA", "FAILING", "KINDS", "NEAR_RATIO_FACTOR", "PARTS", "PROFILES", "VERDICTS", "Judgement",
           "changed_conclusion", "format_printed", "judge", "kind_of"]

#: The judged parts of a printed number.
PARTS = ("value", "ci_lower", "ci_upper", "range_min", "range_max")

#: Verdicts, best first. ``near`` is given only under the ``near`` profile.
VERDICTS = ("matches as printed", "near", "differs", "contradicted by the paper", "not reproducible from these data")

#: Verdicts that are failures of a reproduction (what ``failpattern check`` fails on).
FAILING = (VERDICTS[2],)

#: Kinds of number the summaries count by.
KINDS = ("count", "percent", "median", "CI limit", "range end", "p-value", "ratio", "design constant")

#: The tolerance profiles and their rationale.
PROFILES: Mapping[str, str] = MappingProxyType({
    "printed": ("The paper's own precision: the reproduced value, rounded half-up to the printed decimals, "
                "equals the printed value (an inequality: the unrounded value satisfies it). This is what a "
                "reader checks by hand; it is the default."),
    "near": ("A reproduction a reader would accept as the same finding: counts exact; percentages within "
             "one patient of the denominator (plus the paper's rounding); medians, their limits and range "
             "ends within one printed unit; ratios and their limits within a factor of 1.10 on the log "
             "scale; p-values within one printed unit and on the same side of 0.05."),
})

#: Significance level of a changed conclusion (the paper's: "p < 0.05 was defined as statistically significant").
ALPHA = 0.05
#: ``near``: ratios and their limits within this factor (log scale). A 10% relative difference is a tenth of
#: the narrowest ratio CI the paper prints (1.62-7.54 spans a factor 4.7) and does not move a ratio across 1
#: unless it was within 10% of 1.
NEAR_RATIO_FACTOR = 1.10

_BASE_KIND = {"count": "count", "percent": "percent", "p": "p-value", "ratio": "ratio", "time": "median",
              "value": "median", "constant": "design constant"}
_EPS = 1e-9


@dataclass(frozen=True)
class Judgement:
    """How one reproduced part compares with its printed value.

    Attributes
    ----------
    verdict : str
        ``"matches as printed"``, ``"near"`` or ``"differs"``.
    rule : str
        The rule applied, in words, named by its profile (``"printed: ..."``,
        ``"near: ..."``, ``"approximately: ..."``).
    as_printed : str
        The reproduced value rounded and written as the paper writes this number.
    """

    verdict: str
    rule: str
    as_printed: str


def kind_of(method: str, part: str = "value") -> str:
    """The summary kind of a part of a number computed by ``method`` (one of :data:`KINDS`)."""
    if part in ("ci_lower", "ci_upper"):
        return "CI limit"
    if part in ("range_min", "range_max"):
        return "range end"
    return _BASE_KIND[METHODS[method].kind]


def format_printed(x: float, decimals: int, relation: str = "eq") -> str:
    """``x`` written with ``decimals`` decimals (half-up), behind the sign of ``relation``."""
    if x is None or not math.isfinite(x):
        return ""
    sign = {"lt": "< ", "le": "<= ", "gt": "> ", "ge": ">= ", "approx": "~"}.get(relation, "")
    return f"{sign}{printed_round(x, decimals):.{decimals}f}"


def _unit(decimals: int) -> float:
    return 10.0 ** -decimals


def _holds(x: float, relation: str, bound: float) -> bool:
    return {"lt": x < bound, "le": x <= bound, "gt": x > bound, "ge": x >= bound}[relation]


def _near(x: float, published: float, decimals: int, relation: str, method: str, part: str,
          one_patient: float | None) -> tuple[bool, str]:
    """The ``near`` rule of a part: (holds, rule in words)."""
    base = _BASE_KIND[METHODS[method].kind]
    unit = _unit(decimals)
    if base == "count" and part == "value":
        return x == published, "counts match exactly"
    if base == "ratio":
        if x <= 0 or published <= 0:
            return False, f"within a factor {NEAR_RATIO_FACTOR:g} (log scale)"
        return (abs(math.log(x / published)) <= math.log(NEAR_RATIO_FACTOR) + _EPS,
                f"within a factor {NEAR_RATIO_FACTOR:g} (log scale)")
    if base == "percent" and part == "value" and one_patient:
        return (abs(x - published) <= one_patient + 0.5 * unit + _EPS,
                f"within one patient ({one_patient:.2g} points) plus the printed rounding")
    if base == "p-value" and part == "value":
        sig = _significant(published, relation)
        same_side = sig is None or (x < ALPHA) == sig
        if relation in ("lt", "le"):
            close = x < published + unit + _EPS
        elif relation in ("gt", "ge"):
            close = x > published - unit - _EPS
        else:
            close = abs(printed_round(x, decimals) - published) <= unit + _EPS
        return close and same_side, f"within one printed unit ({unit:g}) and on the same side of {ALPHA:g}"
    return (abs(printed_round(x, decimals) - published) <= unit + _EPS,
            f"within one printed unit ({unit:g})")


def judge(x: float, published: float, *, decimals: int, relation: str = "eq", method: str,
          part: str = "value", profile: str = "printed", one_patient: float | None = None) -> Judgement:
    """Judge a finite reproduced value ``x`` against the printed ``published``.

    Parameters
    ----------
    x : float
        The reproduced value (finite; a value that could not be computed is not judged here).
    published : float
        The printed value.
    decimals : int
        Its printed decimals.
    relation : {"eq", "lt", "le", "gt", "ge", "approx"}
        How the printed value relates to the quantity.
    method : str
        The card method (gives the kind of number).
    part : str
        One of :data:`PARTS`.
    profile : {"printed", "near"}
        See :data:`PROFILES`.
    one_patient : float, optional
        For a percentage: 100 / denominator, the step one patient makes.

    Returns
    -------
    Judgement
    """
    if profile not in PROFILES:
        raise ValueError(f"profile: choose one of {', '.join(PROFILES)}; got {profile!r}")
    shown = format_printed(x, decimals)
    if relation == "approx":
        ok, rule = _near(x, published, decimals, "eq", method, part, one_patient)
        return Judgement(VERDICTS[0] if ok else VERDICTS[2], "approximately: " + rule, shown)
    if relation in ("lt", "le", "gt", "ge"):
        ok = _holds(x, relation, published)
        rule = f"printed: the unrounded value is {format_printed(published, decimals, relation)}"
    else:
        ok = printed_round(x, decimals) == published
        rule = f"printed: rounded half-up to {decimals} decimal{'s' if decimals != 1 else ''}"
    if ok:
        return Judgement(VERDICTS[0], rule, shown)
    if profile == "near":
        close, near_rule = _near(x, published, decimals, relation, method, part, one_patient)
        return Judgement(VERDICTS[1] if close else VERDICTS[2], "near: " + near_rule, shown)
    return Judgement(VERDICTS[2], rule, shown)


def _significant(published: float, relation: str) -> bool | None:
    """Does the printed p-value say significant at :data:`ALPHA`? (None: the bound does not say.)"""
    if relation in ("lt", "le"):
        return True if published <= ALPHA else None
    if relation in ("gt", "ge"):
        return False if published >= ALPHA else None
    return published < ALPHA


def changed_conclusion(x: float, published: float, *, method: str, relation: str = "eq",
                       decimals: int = 3) -> str:
    """Why the reproduced value changes the paper's conclusion, or ``""``.

    A p-value on the other side of :data:`ALPHA` (significant where the paper's
    is not, or the reverse); a hazard or subdistribution hazard ratio on the
    other side of 1. Only the point value of a number is read; a value that
    could not be computed changes nothing, and neither does a printed bound
    that does not say which side it is on ("p > 0.01").
    """
    if x is None or not math.isfinite(x):
        return ""
    kind = _BASE_KIND[METHODS[method].kind]
    printed = format_printed(published, decimals, relation)
    if kind == "p-value":
        was, now = _significant(published, relation), x < ALPHA
        if was is None or was == now:
            return ""
        words = {True: "significant", False: "not significant"}
        return (f"significance at {ALPHA:g} changed: published {printed} ({words[was]}), "
                f"reproduced {x:.3g} ({words[now]})")
    if kind == "ratio" and published != 1.0 and x > 0:
        was = published > 1.0
        if x == 1.0 or (x > 1.0) != was:
            side = {True: "above 1", False: "below 1"}
            now = "equal to 1" if x == 1.0 else side[x > 1.0]
            return f"direction changed: published {printed} ({side[was]}), reproduced {x:.3g} ({now})"
    return ""
