"""The judging rules at their edges: printed precision (half-up), bounds, near, approximations,
changed conclusions."""

from __future__ import annotations

import math

import pytest

from failpattern.study.judge import (
    NEAR_RATIO_FACTOR,
    PROFILES,
    VERDICTS,
    changed_conclusion,
    format_printed,
    judge,
    kind_of,
)

MATCH, NEAR, DIFFERS = VERDICTS[0], VERDICTS[1], VERDICTS[2]


def verdict(x, published, decimals, method="logrank_p", relation="eq", profile="printed", **kw):
    return judge(x, published, decimals=decimals, relation=relation, method=method, profile=profile, **kw).verdict


@pytest.mark.parametrize("x, published, decimals, expected", [
    (0.0495, 0.050, 3, MATCH),     # half-up: 0.0495 prints as 0.050 (its binary value is 0.04949999...)
    (0.0505, 0.050, 3, DIFFERS),   # half-up: 0.0505 prints as 0.051
    (0.0505, 0.051, 3, MATCH),
    (0.0495, 0.049, 3, DIFFERS),   # not half-to-even, not truncation
    (0.0495, 0.05, 2, MATCH),
    (0.0505, 0.05, 2, MATCH),
    (0.0549, 0.05, 2, MATCH),
    (0.055, 0.05, 2, DIFFERS),
    (0.0484, 0.048, 3, MATCH),
    (0.0507, 0.048, 3, DIFFERS),   # the headline OS p of the canonical cohort
])
def test_printed_rounding_half_up(x, published, decimals, expected):
    assert verdict(x, published, decimals) == expected


@pytest.mark.parametrize("x, relation, bound, expected", [
    (0.00099, "lt", 0.001, MATCH),
    (0.001, "lt", 0.001, DIFFERS),
    (0.0011, "lt", 0.001, DIFFERS),
    (0.001, "le", 0.001, MATCH),
    (0.05, "ge", 0.05, MATCH),
    (0.0499, "ge", 0.05, DIFFERS),
    (0.2, "gt", 0.05, MATCH),
])
def test_bounds_are_judged_on_the_unrounded_value(x, relation, bound, expected):
    assert verdict(x, bound, 3, relation=relation) == expected


@pytest.mark.parametrize("x, expected_printed, expected_near", [
    (0.185, MATCH, MATCH),      # rounds half-up to 0.19
    (0.1949, MATCH, MATCH),
    (0.195, DIFFERS, NEAR),     # 0.20; within a factor 1.10 of 0.19
    (0.205, DIFFERS, NEAR),     # 0.205 / 0.19 = 1.079
    (0.2095, DIFFERS, DIFFERS),  # 0.2095 / 0.19 = 1.103
    (0.1728, DIFFERS, NEAR),    # 0.19 / 0.1728 = 1.0995
    (0.17, DIFFERS, DIFFERS),   # 0.19 / 0.17 = 1.118
])
def test_ratios_at_their_edges(x, expected_printed, expected_near):
    assert verdict(x, 0.19, 2, method="finegray_shr") == expected_printed
    assert verdict(x, 0.19, 2, method="finegray_shr", profile="near") == expected_near
    assert (expected_near != DIFFERS) == (abs(math.log(x / 0.19)) <= math.log(NEAR_RATIO_FACTOR))


def test_near_profile_rules():
    # counts: exact only
    assert verdict(31, 30, 0, method="count", profile="near") == DIFFERS
    assert verdict(30, 30, 0, method="count", profile="near") == MATCH
    # percentages: within one patient (100/52 = 1.92 points) plus half a printed unit
    assert verdict(57.69, 59.6, 1, method="proportion", profile="near", one_patient=100 / 52) == NEAR
    assert verdict(57.3, 59.6, 1, method="proportion", profile="near", one_patient=100 / 52) == DIFFERS
    # medians and limits: within one printed unit
    assert verdict(11.63, 11.5, 1, method="km_median", profile="near") == NEAR
    assert verdict(11.66, 11.5, 1, method="km_median", profile="near") == DIFFERS
    assert verdict(3.05, 9.8, 1, method="km_median", part="ci_lower", profile="near") == DIFFERS
    # p-values: within one printed unit and on the same side of 0.05
    assert verdict(0.0493, 0.048, 3, profile="near") == NEAR
    assert verdict(0.0507, 0.049, 3, profile="near") == DIFFERS  # 0.051: one unit away but across 0.05
    assert verdict(0.0016, 0.001, 3, relation="lt", profile="near") == NEAR
    assert verdict(0.0021, 0.001, 3, relation="lt", profile="near") == DIFFERS
    # the printed profile never says near
    assert verdict(0.0493, 0.048, 3) == DIFFERS


def test_approximately_is_judged_by_the_near_rule_in_both_profiles():
    for profile in PROFILES:
        assert verdict(67.3, 66, 0, method="proportion", relation="approx", profile=profile,
                       one_patient=100 / 52) == MATCH
        assert verdict(68.5, 66, 0, method="proportion", relation="approx", profile=profile,
                       one_patient=100 / 52) == DIFFERS
    j = judge(67.3, 66, decimals=0, relation="approx", method="proportion", one_patient=100 / 52)
    assert j.rule.startswith("approximately:")


def test_every_verdict_names_its_rule_and_profile():
    assert judge(0.0484, 0.048, decimals=3, method="logrank_p").rule.startswith("printed:")
    assert judge(0.0493, 0.048, decimals=3, method="logrank_p", profile="near").rule.startswith("near:")
    assert judge(0.0484, 0.048, decimals=3, method="logrank_p", profile="near").rule.startswith("printed:")
    with pytest.raises(ValueError, match="profile"):
        judge(1.0, 1.0, decimals=0, method="count", profile="loose")


@pytest.mark.parametrize("x, published, relation, method, changed", [
    (0.0507, 0.048, "eq", "logrank_p", True),     # significant -> not
    (0.0479, 0.053, "eq", "chisq_p", True),       # not -> significant
    (0.0499, 0.048, "eq", "logrank_p", False),
    (0.002, 0.001, "lt", "cox_p", False),         # "< 0.001" says significant; 0.002 still is
    (0.06, 0.001, "lt", "cox_p", True),
    (0.04, 0.05, "ge", "logrank_p", True),
    (0.04, 0.01, "gt", "logrank_p", False),       # "> 0.01" does not say which side of 0.05
    (0.9, 1.5, "eq", "cox_hr", True),             # hazard ratio across 1
    (1.2, 1.5, "eq", "cox_hr", False),
    (1.0, 0.8, "eq", "finegray_shr", True),
    (float("nan"), 0.048, "eq", "logrank_p", False),
    (30.0, 31.0, "eq", "count", False),
])
def test_changed_conclusion(x, published, relation, method, changed):
    assert bool(changed_conclusion(x, published, method=method, relation=relation)) is changed


def test_changed_conclusion_says_what_changed():
    text = changed_conclusion(0.0507, 0.048, method="logrank_p", decimals=3)
    assert "0.048 (significant)" in text and "0.0507 (not significant)" in text
    assert "above 1" in changed_conclusion(0.9, 1.5, method="cox_hr", decimals=2)


def test_kinds_and_printing():
    assert kind_of("km_median") == "median" and kind_of("median") == "median"
    assert kind_of("km_median", "ci_lower") == "CI limit" and kind_of("median", "range_max") == "range end"
    assert kind_of("finegray_p") == "p-value" and kind_of("protocol") == "design constant"
    assert format_printed(0.0009, 3, "lt") == "< 0.001"
    assert format_printed(0.0495, 3) == "0.050"
    assert format_printed(66, 0, "approx") == "~66"
    assert format_printed(float("nan"), 1) == ""
