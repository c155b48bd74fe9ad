"""The card-id mapping of the plan: every mapped id is a card id, every card id is accounted for."""

from __future__ import annotations

import re

import pytest
from test_plan_cohorts import make_cohort

from failpattern.study import load_study, recompute_aggregates
from failpattern.study.plan import (
    MAPPING,
    NOT_FROM_DATA,
    NOT_PRINTED,
    mapping,
    run_plan,
    settings_for,
)

CARD = load_study("ni2019")
SETTINGS = settings_for(CARD)
MAPPED = mapping(SETTINGS)

#: Ids the plan adds beyond the card (R twins, per-test p-values, extra groups and models).
EXTRA = re.compile(r"""(
    .*\.r$ | .*\.p\.(pearson|yates|fisher|t_test)$ | cif\..* | pfs1\.(uni|multi)\.\w+\.(hr|p)$ |
    (pfs1|os)\.median\.\w+$ | pfs2\.cbpd\.p$ | pattern\.(death|censored)\.n$ | followup\.median\.reverse_km$ |
    t2\.\w+\.df\.pct$ )""", re.VERBOSE)


def test_every_mapped_id_is_a_card_id():
    assert MAPPED["id"].is_unique
    missing = sorted(set(MAPPED["id"]) - set(CARD.ids))
    assert not missing, missing
    assert NOT_PRINTED.isdisjoint(MAPPED["id"]) and NOT_PRINTED.isdisjoint(CARD.ids)


def test_every_card_id_is_accounted_for():
    nums = CARD.numbers
    targets = nums.loc[~nums["method"].isin(["protocol", "cited"]), "id"]
    unexplained = set(targets) - set(MAPPED["id"]) - set(NOT_FROM_DATA)
    assert not unexplained, sorted(unexplained)
    assert set(NOT_FROM_DATA) <= set(CARD.ids)
    assert set(NOT_FROM_DATA).isdisjoint(MAPPED["id"])


def test_every_pattern_expands_to_card_ids():
    for pattern, how in MAPPING:
        assert how, pattern
        assert (MAPPED["pattern"] == pattern).any(), pattern


def test_mapped_methods_agree_with_card():
    card_method = CARD.numbers.set_index("id")["method"]
    values = run_plan(make_cohort(93, 3), card=CARD).values.set_index("id")
    both = values.index.intersection(MAPPED["id"])
    assert len(both) >= len(MAPPED) - 4  # a few models may not converge on a random cohort
    for id_ in both:
        assert values.loc[id_, "method"] == card_method[id_] or (
            card_method[id_] == "survival_p" and values.loc[id_, "method"] == "logrank_p"), id_


def test_plan_ids_are_card_ids_or_declared_extras():
    values = run_plan(make_cohort(93, 3), card=CARD).values
    stray = [i for i in values["id"] if i not in set(MAPPED["id"]) and not EXTRA.fullmatch(i)]
    assert not stray, stray


def test_settings_are_read_from_the_card():
    assert SETTINGS.age_cutoff == CARD.get("protocol.t3.age_cutoff").value
    assert SETTINGS.tumor_size_cutoff == CARD.get("protocol.t3.tumor_size_cutoff").value
    assert SETTINGS.landmarks == (12.0, 24.0)
    assert set(SETTINGS.t3_multi) == {i.split(".")[2] for i in CARD.ids if re.fullmatch(r"t3\.multi\.\w+\.shr", i)}
    agg = recompute_aggregates(CARD)
    agg = agg[agg["kind"] == "contingency_p"].set_index("id")
    assert set(SETTINGS.contingency) == set(agg.index)
    for id_, test in SETTINGS.contingency.items():
        if agg.loc[id_, "matches"]:
            assert test in agg.loc[id_, "matches"]
        else:
            ps = agg.loc[id_, ["pearson", "yates", "fisher"]].astype(float)
            assert test == (ps - agg.loc[id_, "published"]).abs().idxmin()
    # the N-1 chi-square (SPSS's linear-by-linear row) is the one test that gives sex's 0.079; Fisher brain's 0.010
    assert SETTINGS.contingency["t1.sex.p"] == "n-1" and SETTINGS.contingency["t1.brain_met.p"] == "fisher"
    assert settings_for(CARD) is SETTINGS  # cached


@pytest.mark.parametrize("pattern", ["t1.{row}.{level}.{col}.n", "t3.uni.{t3}.shr"])
def test_pattern_expansion_sizes(pattern):
    n = (MAPPED["pattern"] == pattern).sum()
    assert n == {"t1.{row}.{level}.{col}.n": 12 * 2 * 3, "t3.uni.{t3}.shr": 17}[pattern]
