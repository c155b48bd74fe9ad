"""The count of numbers that "match as printed", checked by an independent count.

The count is redone here by hand, as a reader would:
- read every printed number from the card's YAML text as a string ("0.010", "9.8");
- write the reproduced value with Python's ``decimal`` module, rounded half-up to that many digits;
- compare the strings.
It shares no code with :mod:`failpattern.study.judge` or :mod:`failpattern.study.compare`.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
import yaml

from failpattern._resources import study_path, synthetic_path

PARTS = {"value": ("value", "value"), "ci_lower": ("ci_lower", "ci_lower"), "ci_upper": ("ci_upper", "ci_upper"),
         "range_min": ("range_lower", "range_min"), "range_max": ("range_upper", "range_max")}
BOUNDS = {"lt": lambda x, b: x < b, "le": lambda x, b: x <= b, "gt": lambda x, b: x > b, "ge": lambda x, b: x >= b}


def _printed_numbers():
    """(id, part, printed text, relation) of every printed number, from the YAML text alone."""
    doc = yaml.load(study_path("ni2019").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # all strings
    out = []
    for section in doc["sections"]:
        defaults = section.get("defaults", {})
        for n in section["numbers"]:
            n = {**defaults, **n}
            if n["method"] in ("protocol", "cited"):
                continue
            for part, (field, _) in PARTS.items():
                if field in n:
                    out.append((n["id"], part, n[field], n.get("relation", "eq") if part == "value" else "eq"))
    return out


def _by_hand(x: float, printed: str) -> str:
    digits = len(printed.split(".")[1]) if "." in printed else 0
    return str(Decimal(repr(x)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def canonical():
    from failpattern.cohort import load_cohort
    from failpattern.study import load_study, run_plan
    from failpattern.study.compare import compare

    card = load_study("ni2019")
    plan = run_plan(load_cohort(synthetic_path("ni2019_exact.csv")), card=card)
    return plan, compare(plan, card)


def test_matches_as_printed_equal_an_independent_count_by_hand(canonical):
    plan, comparison = canonical
    values = plan.values.drop_duplicates("id").set_index("id")
    hand = {}
    for id_, part, printed, relation in _printed_numbers():
        if id_ not in values.index or relation == "approx":
            continue
        x = float(values.at[id_, PARTS[part][1]])
        if not math.isfinite(x):
            continue
        hand[(id_, part)] = BOUNDS[relation](x, float(printed)) if relation in BOUNDS \
            else _by_hand(x, printed) == printed
    tool = comparison[comparison["relation"] != "approx"]
    tool = {(i, p): v == "matches as printed" for i, p, v in zip(tool["id"], tool["part"], tool["verdict"])
            if (i, p) in hand}
    assert tool.keys() == hand.keys()
    disagree = sorted(k for k in hand if hand[k] != tool[k])
    assert not disagree
    # and per kind of part, the counts a reader reports
    for part in PARTS:
        n_hand = sum(ok for (i, p), ok in hand.items() if p == part)
        n_tool = sum(ok for (i, p), ok in tool.items() if p == part)
        assert n_hand == n_tool, part
    assert sum(hand.values()) > 250  # the canonical cohort matches most counts and percentages as printed


def test_every_printed_part_is_a_row(canonical):
    _, comparison = canonical
    printed = {(i, p) for i, p, _, _ in _printed_numbers()}
    rows = set(zip(comparison["id"], comparison["part"]))
    assert printed <= rows
    judged = comparison[comparison["part"] != "value"]
    assert (judged["part"].str.startswith("ci_").sum(), judged["part"].str.startswith("range_").sum()) == (50, 14)
