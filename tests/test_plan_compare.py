"""compare(): verdicts, tolerances and profiles, on plan results whose values are set by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from test_plan_cohorts import make_cohort

from failpattern.errors import InputError
from failpattern.study import load_study
from failpattern.study.compare import (
    COMPARE_COLUMNS,
    PROFILES,
    VERDICTS,
    compare,
    summarize,
)
from failpattern.study.plan import NOT_FROM_DATA, mapping, run_plan, settings_for

CARD = load_study("ni2019")
NUMS = CARD.numbers.set_index("id")


@pytest.fixture(scope="module")
def result():
    return run_plan(make_cohort(93, 21), card=CARD)


def with_values(result, values: dict):
    """``result`` with the values of the given ids replaced (rows added when absent)."""
    frame = result.values.copy()
    for id_, v in values.items():
        hit = frame["id"] == id_
        if hit.any():
            frame.loc[hit, "value"] = v
        else:
            frame.loc[len(frame)] = [id_, v, np.nan, np.nan, "test", "count", "none", 1, 0, ""]
    return dataclasses.replace(result, _values=frame)


def test_table_layout(result):
    table = compare(result, CARD)
    assert list(table.columns) == list(COMPARE_COLUMNS)
    assert list(table["id"]) == list(CARD.ids)
    assert set(table["verdict"]) <= set(VERDICTS)
    s = summarize(table)
    assert list(s["verdict"]) == list(VERDICTS) and s["n"].sum() == len(CARD.ids)
    assert table.attrs == {"profile": "default"}
    pd.concat([table, table])  # plain attrs: tables concatenate
    assert {"Table 1", "Table 2", "Table 3", "Abstract, Results"} <= set(table["section"])


def test_published_values_are_within_tolerance(result):
    """A plan that reproduced every mapped number exactly passes every comparison it can make."""
    ids = mapping(settings_for(CARD))["id"]
    perfect = with_values(result, {i: NUMS.loc[i, "value"] for i in ids})
    table = compare(perfect, CARD).set_index("id")
    assert (table.loc[ids, "verdict"] == "within tolerance").all()
    assert (table.loc[ids, "difference"] == 0).all()


def test_confidence_limits_are_carried(result):
    table = compare(result, CARD).set_index("id")
    row = table.loc["pfs1.median.all"]
    assert (row["published_ci_lower"], row["published_ci_upper"]) == (9.8, 13.2)
    values = result.values.set_index("id").loc["pfs1.median.all"]
    assert row["reproduced_ci_lower"] == values["ci_lower"] and row["reproduced_ci_upper"] == values["ci_upper"]
    assert np.isnan(table.loc["t1.sex.p", "published_ci_lower"])


def test_not_reproducible(result):
    table = compare(result, CARD).set_index("id")
    for id_ in ("protocol.alpha", "lit.alk_prevalence", *NOT_FROM_DATA):
        assert table.loc[id_, "verdict"] == "not reproducible from these data"
        assert table.loc[id_, "note"]
    assert np.isnan(table.loc["protocol.alpha", "tolerance"])


def test_skipped_analysis_gives_reason():
    from test_plan_cohorts import make_frame

    frame = make_frame(93, np.random.default_rng(8)).drop(columns=["cbpd", "next_systemic_therapy"])
    table = compare(run_plan(frame, card=CARD), CARD).set_index("id")
    assert table.loc["pfs2.median.cbpd", "verdict"] == "not reproducible from these data"
    assert "cbpd" in table.loc["pfs2.median.cbpd", "note"]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_tolerance_scaling(result, profile):
    id_ = "pfs1.median.all"  # km_median: tolerance 0.5 months, printed to 0.1
    pub, tol = NUMS.loc[id_, "value"], NUMS.loc[id_, "tolerance"]
    scaled = PROFILES[profile] * tol
    inside = compare(with_values(result, {id_: pub + 0.99 * scaled}), CARD, profile=profile).set_index("id")
    outside = compare(with_values(result, {id_: pub + 1.01 * scaled}), CARD, profile=profile).set_index("id")
    assert inside.loc[id_, "tolerance"] == pytest.approx(scaled)
    assert inside.loc[id_, "verdict"] == "within tolerance"
    assert outside.loc[id_, "verdict"] == "outside"
    assert outside.loc[id_, "difference"] == pytest.approx(1.01 * scaled)


def test_counts_are_exact_in_every_profile(result):
    for profile in PROFILES:
        table = compare(with_values(result, {"progression1.n": 53}), CARD, profile=profile).set_index("id")
        assert table.loc["progression1.n", "verdict"] == "outside"
    table = compare(with_values(result, {"progression1.n": 52}), CARD, profile="strict").set_index("id")
    assert table.loc["progression1.n", "verdict"] == "within tolerance"


def test_printed_precision_is_a_floor(result):
    # t1.sex.male.all.pct is printed 59.1 with tolerance 0.1: 59.14 rounds to it even in strict (0.05)
    table = compare(with_values(result, {"t1.sex.male.all.pct": 59.14}), CARD, profile="strict").set_index("id")
    assert table.loc["t1.sex.male.all.pct", "verdict"] == "within tolerance"


def test_bound_relation(result):
    id_ = "t3.uni.histology.p"  # printed "< 0.001"
    assert NUMS.loc[id_, "relation"] == "lt"
    good = compare(with_values(result, {id_: 1e-6}), CARD).set_index("id")
    bad = compare(with_values(result, {id_: 0.2}), CARD).set_index("id")
    assert good.loc[id_, "verdict"] == "within tolerance" and bad.loc[id_, "verdict"] == "outside"


def test_nan_value_is_not_reproducible_with_note(result):
    """A number the plan could not estimate cannot disagree with the paper (check must not fail on it)."""
    table = compare(with_values(result, {"pfs2.median.cbpd": np.nan, "t3.uni.age.shr": np.nan}),
                    CARD).set_index("id")
    for id_ in ("pfs2.median.cbpd", "t3.uni.age.shr"):
        assert table.loc[id_, "verdict"] == "not reproducible from these data"
        assert table.loc[id_, "note"].startswith("not estimable from these data")


def _km_not_reached(km, last: float):
    """``km`` as a curve that ends at ``last`` months with S above 0.5 throughout."""
    return dataclasses.replace(km, time=np.array([1.0, last]), survival=np.array([0.9, 0.8]),
                               median=np.nan, median_ci=(np.nan, np.nan))


@pytest.mark.parametrize("last, verdict", [(30.0, "outside"), (5.0, "not reproducible from these data")])
def test_median_not_reached(result, last, verdict):
    """Not reached with the curve above 50% past the published 11.5 (+ 0.5): the cohort's median is larger,
    a disagreement. Not reached with follow-up ending before 11.5: not estimable."""
    km = dict(result.km)
    km["pfs1.all"] = _km_not_reached(km["pfs1.all"], last)
    changed = dataclasses.replace(with_values(result, {"pfs1.median.all": np.nan}), km=km)
    row = compare(changed, CARD).set_index("id").loc["pfs1.median.all"]
    assert row["verdict"] == verdict
    assert row["note"].startswith("median not reached") and f"{last:g} months" in row["note"]


def test_aggregate_column_and_inconsistency(result):
    table = compare(result, CARD).set_index("id")
    assert "contingency_p" in table.loc["t1.brain_met.p", "aggregate"]
    assert "card:" in table.loc["brain_pd.n", "note"]  # 30 vs 31: recorded in the card


def test_bad_profile(result):
    with pytest.raises(InputError):
        compare(result, CARD, profile="lenient")


def test_compare_is_fast_enough(result):
    import time

    compare(result, CARD)
    start = time.perf_counter()
    compare(result, CARD)
    assert time.perf_counter() - start < 2.0  # generous; timings are never asserted tightly
    assert isinstance(compare(result, CARD), pd.DataFrame)


# ----------------------------------------------------------------------------- contradictions
def test_card_records_contradictions_both_ways():
    assert CARD.get("t2.brain.all.n").contradicted_by == ("brain_pd.n",)
    assert CARD.get("brain_pd.n").contradicted_by == ("t2.brain.all.n",)
    for i in CARD.ids:
        for other in CARD.get(i).contradicted_by:
            assert other in CARD and CARD.get(i).inconsistency, i


def test_a_contradicted_number_is_excused_only_when_its_other_side_holds(result):
    # text 30 brain failures, Table 2 total 31: whichever side the cohort reproduces passes
    # and the other is "contradicted by the paper"
    text_side = compare(with_values(result, {"brain_pd.n": 30, "t2.brain.all.n": 30}), CARD).set_index("id")
    assert text_side.loc["brain_pd.n", "verdict"] == VERDICTS[0]
    assert text_side.loc["t2.brain.all.n", "verdict"] == "contradicted by the paper"
    assert "reproduces brain_pd.n" in text_side.loc["t2.brain.all.n", "note"]
    table_side = compare(with_values(result, {"brain_pd.n": 31, "t2.brain.all.n": 31}), CARD).set_index("id")
    assert table_side.loc["t2.brain.all.n", "verdict"] == VERDICTS[0]
    assert table_side.loc["brain_pd.n", "verdict"] == "contradicted by the paper"
    # neither side reproduced: both outside (two numbers naming each other cannot excuse each other)
    neither = compare(with_values(result, {"brain_pd.n": 29, "t2.brain.all.n": 29}), CARD).set_index("id")
    assert neither.loc[["brain_pd.n", "t2.brain.all.n"], "verdict"].tolist() == [VERDICTS[1]] * 2


def test_an_excuse_needs_every_contradicting_number(result):
    # Table 2 brain ODF 10 contradicts the text's 30 only together with OF 15 and DF 6
    held = {"brain_pd.n": 30, "t2.brain.of.n": 15, "t2.brain.df.n": 6, "t2.brain.odf.n": 9}
    t = compare(with_values(result, held), CARD).set_index("id")
    assert t.loc["t2.brain.odf.n", "verdict"] == "contradicted by the paper"
    t = compare(with_values(result, {**held, "t2.brain.df.n": 5}), CARD).set_index("id")
    assert t.loc["t2.brain.odf.n", "verdict"] == VERDICTS[1]
