"""Reconstruction targets: the card's printed parts the plan computes, and distances in printed units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from failpattern.cohort import load_cohort
from failpattern.simulate.reconstruct.targets import (
    NOT_COMPUTED,
    Targets,
    distances,
    targets_for,
)
from failpattern.study import compare, load_study, run_plan
from failpattern.study.compare import NOT_TARGET
from failpattern.study.judge import judge

ROOT = Path(__file__).resolve().parents[1]
CARD = load_study("ni2019")
TARGETS = targets_for(CARD)


def _one(published, decimals, relation="eq", kind="p-value"):
    return Targets(pd.DataFrame([("x", "value", kind, published, decimals, relation, 10.0 ** -decimals)],
                                columns=["id", "part", "kind", "published", "decimals", "relation", "unit"]))


def test_targets_leave_out_constants_contradictions_and_what_no_cohort_gives():
    t = TARGETS.table
    assert len(t) == len(set(TARGETS.keys))
    methods = {i: CARD.get(i).method for i in t["id"]}
    assert not any(m in NOT_TARGET for m in methods.values())
    for id_, part in TARGETS.keys:
        assert not CARD.get(id_).contradictions(part), (id_, part)
    # a number contradicted by its own cell counts is not a target; its counts are
    contradicted = [n for n in CARD.ids if CARD.get(n).contradicted_by]
    assert contradicted and not set(contradicted) & set(t["id"])
    assert set(CARD.get(contradicted[0]).contradicted_by) <= set(t["id"])
    assert {"value", "ci_lower", "ci_upper", "range_min", "range_max"} == set(t["part"])


def test_distance_zero_is_a_match_as_printed_on_the_canonical_cohort():
    plan = run_plan(load_cohort(ROOT / "data" / "synthetic" / "ni2019_exact.csv"), card=CARD)
    x = TARGETS.values_of(plan.values)
    d = distances(TARGETS, x)
    verdict = compare(plan, CARD).set_index(["id", "part"])["verdict"]
    matched = np.array([verdict[k] == "matches as printed" for k in TARGETS.keys])
    assert np.all(matched[d == 0])  # never a false match
    assert np.count_nonzero(matched & (d > 0)) <= 0.02 * len(d)  # only within the margin of a rounding edge
    assert np.all(d[~matched] > 0)


@pytest.mark.parametrize("x, published, decimals, relation, expected", [
    (0.0494, 0.049, 3, "eq", 0.0),            # prints 0.049
    (0.0496, 0.049, 3, "eq", 0.1 + 0.02),     # 0.6 units off, 0.1 beyond the half-unit (+ margin)
    (0.0009, 0.001, 3, "lt", 0.0),            # < 0.001 holds
    (0.0012, 0.001, 3, "lt", 0.2 + 0.02),     # 0.2 units beyond the bound
    (66.9, 66.0, 0, "approx", 0.0),           # approximately: one printed unit allowed
    (np.nan, 0.049, 3, "eq", NOT_COMPUTED),   # not computed: farther than any computed p-value
])
def test_distance_rules(x, published, decimals, relation, expected):
    d = distances(_one(published, decimals, relation), np.array([x]))
    assert d[0] == pytest.approx(expected, abs=1e-9)
    if np.isfinite(x) and relation != "approx":
        matched = judge(x, published, decimals=decimals, relation=relation, method="logrank_p").verdict
        assert (d[0] == 0) == (matched == "matches as printed")


def test_distances_take_a_leading_axis_of_candidates():
    x = np.tile(TARGETS.table["published"].to_numpy(float), (3, 1))
    x[1, 0] += 100 * TARGETS.table["unit"].iloc[0]
    d = distances(TARGETS, x)
    eq = (TARGETS.table["relation"] == "eq").to_numpy()
    assert eq[0] and d.shape == x.shape
    assert not d[0, eq].any() and d[1, 0] > 99 and not d[2, eq].any()
    assert np.all(d[0, ~eq] <= 0.02 + 1e-12)  # a printed bound itself misses "<" by the margin only


def test_a_value_not_computed_is_farther_than_any_computed_one():
    # the farthest a p-value or a percentage can be: 1 vs 0 at 3 decimals, 100% vs 0 at 1 decimal
    assert distances(_one(0.0, 3), np.array([1.0]))[0] < NOT_COMPUTED
    assert distances(_one(0.0, 1, kind="percent"), np.array([100.0]))[0] < NOT_COMPUTED


def test_conclusion_changes_are_the_judges():
    """The vectorised flag equals the judge's changed_conclusion on every point-value target, for values
    on both sides of each threshold, exactly at it, and not computed."""
    from failpattern.simulate.reconstruct.targets import conclusion_changes
    from failpattern.study.judge import changed_conclusion

    card = load_study("ni2019")
    t = targets_for(card)
    rng = np.random.default_rng(4)
    probes = np.concatenate([[0.0, 0.001, 0.049, 0.05, 0.051, 0.5, 0.999, 1.0, 1.5, np.nan],
                             rng.uniform(0, 3, 30)])
    got = conclusion_changes(t, np.repeat(probes[:, None], len(t), axis=1))
    methods = {r.id: r.method for r in card.numbers.itertuples()}
    for k, r in enumerate(t.table.itertuples()):
        for i, x in enumerate(probes):
            want = r.part == "value" and changed_conclusion(x, r.published, method=methods[r.id],
                                                            relation=r.relation, decimals=int(r.decimals)) != ""
            assert got[i, k] == want, (r.id, x)
    assert got.any() and (t.table["side"] != 0).sum() > 40
