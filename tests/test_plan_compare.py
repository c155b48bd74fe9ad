"""compare(): verdicts, parts and profiles, on plan results whose values are set by hand."""

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
    changed,
    compare,
    summarize,
    summarize_by_kind,
)
from failpattern.study.plan import NOT_FROM_DATA, mapping, run_plan, settings_for

CARD = load_study("ni2019")
NUMS = CARD.numbers.set_index("id")


@pytest.fixture(scope="module")
def result():
    return run_plan(make_cohort(93, 21), card=CARD)


def with_values(result, values: dict):
    """``result`` with the given ids' values replaced (rows added when absent); a dict value sets
    several columns (``value``, ``ci_lower``, ``ci_upper``, ``range_min``, ``range_max``)."""
    frame = result.values.copy()
    for id_, v in values.items():
        cols = v if isinstance(v, dict) else {"value": v}
        hit = frame["id"] == id_
        if not hit.any():
            frame.loc[len(frame)] = [id_, np.nan, np.nan, np.nan, np.nan, np.nan, "test", "count", "none", 1, 0, ""]
            hit = frame["id"] == id_
        for c, x in cols.items():
            frame.loc[hit, c] = x
    return dataclasses.replace(result, _values=frame)


def rows(table):
    return table.set_index(["id", "part"])


def test_table_layout(result):
    table = compare(result, CARD)
    assert list(table.columns) == list(COMPARE_COLUMNS)
    assert list(table["id"].unique()) == list(CARD.ids)
    first = table.drop_duplicates("id")
    assert (first["part"] == "value").all()  # a number's value, then its limits, then its range ends
    assert set(table["verdict"]) <= set(VERDICTS) - {"near"}
    n_parts = sum(1 + 2 * (NUMS.loc[i, "ci_lower"] == NUMS.loc[i, "ci_lower"])
                  + 2 * (NUMS.loc[i, "range_lower"] == NUMS.loc[i, "range_lower"]) for i in CARD.ids)
    assert len(table) == n_parts
    s = summarize(table)
    assert list(s["verdict"]) == [v for v in VERDICTS if v != "near"] and s["n"].sum() == len(table)
    assert table.attrs == {"profile": "printed"}
    pd.concat([table, table])  # plain attrs: tables concatenate
    assert {"Table 1", "Table 2", "Table 3", "Abstract, Results"} <= set(table["section"])
    kinds = summarize_by_kind(table)
    assert kinds["total"].sum() == len(table)
    assert set(kinds["kind"]) == {"count", "percent", "median", "CI limit", "range end", "p-value", "ratio",
                                  "design constant"}


def test_published_values_match_as_printed(result):
    """A plan that reproduced every mapped number exactly, limits and ranges included, matches every one."""
    ids = mapping(settings_for(CARD))["id"]
    exact = {}
    for i in ids:
        n = NUMS.loc[i]
        value = n.value / 2 if n.relation in ("lt", "le") else n.value  # "< 0.001": a value below the bound
        exact[i] = {"value": value, "ci_lower": n.ci_lower, "ci_upper": n.ci_upper, "range_min": n.range_lower,
                    "range_max": n.range_upper}
    table = compare(with_values(result, exact), CARD)
    mine = table[table["id"].isin(ids)]
    assert (mine["verdict"] == "matches as printed").all(), mine.loc[mine["verdict"] != "matches as printed",
                                                                     ["id", "part"]]
    eq = mine[mine["relation"] == "eq"]
    assert (eq["difference"] == 0).all()
    assert (eq["reproduced_as_printed"] == eq["printed"]).all()


def test_confidence_limits_and_ranges_are_judged(result):
    far = rows(compare(with_values(result, {"pfs1.median.all": {"value": 11.5, "ci_lower": 3.04,
                                                                "ci_upper": 20.21}}), CARD))
    assert far.loc[("pfs1.median.all", "value"), "verdict"] == "matches as printed"
    for part, printed, as_printed in (("ci_lower", "9.8", "3.0"), ("ci_upper", "13.2", "20.2")):
        row = far.loc[("pfs1.median.all", part)]
        assert (row["verdict"], row["printed"], row["reproduced_as_printed"], row["kind"]) == \
            ("differs", printed, as_printed, "CI limit")
    near = rows(compare(with_values(result, {"pfs1.median.all": {"ci_lower": 9.84, "ci_upper": 13.15}}), CARD))
    assert near.loc[("pfs1.median.all", "ci_lower"), "verdict"] == "matches as printed"
    assert near.loc[("pfs1.median.all", "ci_upper"), "verdict"] == "matches as printed"
    ages = rows(compare(with_values(result, {"t1.age.median.all": {"range_min": 27.0, "range_max": 75.0}}), CARD))
    assert ages.loc[("t1.age.median.all", "range_min"), "verdict"] == "differs"
    assert ages.loc[("t1.age.median.all", "range_max"), "verdict"] == "matches as printed"
    assert ages.loc[("t1.age.median.all", "range_max"), "kind"] == "range end"


def test_not_reproducible(result):
    table = rows(compare(result, CARD))
    for id_ in ("protocol.alpha", "lit.alk_prevalence", *NOT_FROM_DATA):
        assert table.loc[(id_, "value"), "verdict"] == "not reproducible from these data"
        assert table.loc[(id_, "value"), "note"]
    assert table.loc[("protocol.alpha", "value"), "rule"] == ""


def test_skipped_analysis_gives_reason():
    from test_plan_cohorts import make_frame

    frame = make_frame(93, np.random.default_rng(8)).drop(columns=["cbpd", "next_systemic_therapy"])
    table = rows(compare(run_plan(frame, card=CARD), CARD))
    for part in [p for i, p in table.index if i == "pfs2.median.cbpd"]:
        assert table.loc[("pfs2.median.cbpd", part), "verdict"] == "not reproducible from these data"
        assert "cbpd" in table.loc[("pfs2.median.cbpd", part), "note"]


@pytest.mark.parametrize("x, printed, near", [(11.54, "matches as printed", "matches as printed"),
                                              (11.45, "matches as printed", "matches as printed"),
                                              (11.56, "differs", "near"), (11.649, "differs", "near"),
                                              (11.65, "differs", "differs"), (11.2, "differs", "differs")])
def test_profiles(result, x, printed, near):
    id_ = "pfs1.median.all"  # printed 11.5
    for profile, expected in (("printed", printed), ("near", near)):
        row = rows(compare(with_values(result, {id_: x}), CARD, profile=profile)).loc[(id_, "value")]
        assert row["verdict"] == expected, profile
        assert row["rule"].split(":")[0] in ("printed", "near")
        assert row["difference"] == pytest.approx(x - 11.5)


def test_counts_are_exact_in_every_profile(result):
    for profile in PROFILES:
        table = rows(compare(with_values(result, {"progression1.n": 53}), CARD, profile=profile))
        assert table.loc[("progression1.n", "value"), "verdict"] == "differs"
        table = rows(compare(with_values(result, {"progression1.n": 52}), CARD, profile=profile))
        assert table.loc[("progression1.n", "value"), "verdict"] == "matches as printed"


def test_bound_relation(result):
    id_ = "t3.uni.histology.p"  # printed "< 0.001"
    assert NUMS.loc[id_, "relation"] == "lt"
    good = rows(compare(with_values(result, {id_: 0.00099}), CARD))
    bad = rows(compare(with_values(result, {id_: 0.001}), CARD))
    assert good.loc[(id_, "value"), "verdict"] == "matches as printed"
    assert bad.loc[(id_, "value"), "verdict"] == "differs"
    assert good.loc[(id_, "value"), "printed"] == "< 0.001"


def test_changed_conclusions_are_flagged_and_listed(result):
    table = compare(with_values(result, {"os.rt_vs_nonrt.p": 0.0507, "pfs2.salvage_rt.p": 0.0031,
                                         "t3.uni.age.shr": 1.3}), CARD)
    flagged = changed(table)
    assert set(flagged["id"]) >= {"os.rt_vs_nonrt.p", "t3.uni.age.shr"}
    assert "pfs2.salvage_rt.p" not in set(flagged["id"])
    assert (flagged["part"] == "value").all()
    row = rows(table).loc[("os.rt_vs_nonrt.p", "value")]
    assert "significance at 0.05 changed" in row["changed_conclusion"]


def test_nan_value_is_not_reproducible_with_note(result):
    """A number the plan could not estimate cannot disagree with the paper (check must not fail on it)."""
    table = rows(compare(with_values(result, {"pfs2.median.cbpd": np.nan, "t3.uni.age.shr": np.nan}), CARD))
    for id_ in ("pfs2.median.cbpd", "t3.uni.age.shr"):
        assert table.loc[(id_, "value"), "verdict"] == "not reproducible from these data"
        assert table.loc[(id_, "value"), "note"].startswith("not estimable from these data")


def _km_not_reached(km, last: float):
    """``km`` as a curve that ends at ``last`` months with S above 0.5 throughout."""
    return dataclasses.replace(km, time=np.array([1.0, last]), survival=np.array([0.9, 0.8]),
                               median=np.nan, median_ci=(np.nan, np.nan))


@pytest.mark.parametrize("last, verdict", [(30.0, "differs"), (5.0, "not reproducible from these data")])
def test_median_not_reached(result, last, verdict):
    """Not reached with the curve above 50% past the published 11.5: the cohort's median is larger,
    a disagreement. Not reached with follow-up ending before 11.5: not estimable."""
    km = dict(result.km)
    km["pfs1.all"] = _km_not_reached(km["pfs1.all"], last)
    changed = dataclasses.replace(with_values(result, {"pfs1.median.all": np.nan}), km=km)
    row = rows(compare(changed, CARD)).loc[("pfs1.median.all", "value")]
    assert row["verdict"] == verdict
    assert row["note"].startswith("median not reached") and f"{last:g} months" in row["note"]


def test_aggregate_column_and_inconsistency(result):
    table = rows(compare(result, CARD))
    assert "contingency_p" in table.loc[("t1.brain_met.p", "value"), "aggregate"]
    assert "card:" in table.loc[("brain_pd.n", "value"), "note"]  # 30 vs 31: recorded in the card


def test_bad_profile(result):
    with pytest.raises(InputError):
        compare(result, CARD, profile="lenient")
    with pytest.raises(InputError, match="printed, near"):
        compare(result, CARD, profile="default")


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
    text_side = compare(with_values(result, {"brain_pd.n": 30, "t2.brain.all.n": 30}), CARD)
    text_side = text_side[text_side["part"] == "value"].set_index("id")
    assert text_side.loc["brain_pd.n", "verdict"] == VERDICTS[0]
    assert text_side.loc["t2.brain.all.n", "verdict"] == "contradicted by the paper"
    assert "reproduces brain_pd.n" in text_side.loc["t2.brain.all.n", "note"]
    table_side = compare(with_values(result, {"brain_pd.n": 31, "t2.brain.all.n": 31}), CARD)
    table_side = table_side[table_side["part"] == "value"].set_index("id")
    assert table_side.loc["t2.brain.all.n", "verdict"] == VERDICTS[0]
    assert table_side.loc["brain_pd.n", "verdict"] == "contradicted by the paper"
    # neither side reproduced: both differ (two numbers naming each other cannot excuse each other)
    neither = compare(with_values(result, {"brain_pd.n": 29, "t2.brain.all.n": 29}), CARD)
    neither = neither[neither["part"] == "value"].set_index("id")
    assert neither.loc[["brain_pd.n", "t2.brain.all.n"], "verdict"].tolist() == ["differs"] * 2


def test_an_excuse_needs_every_contradicting_number(result):
    # Table 2 brain ODF 10 contradicts the text's 30 only together with OF 15 and DF 6
    held = {"brain_pd.n": 30, "t2.brain.of.n": 15, "t2.brain.df.n": 6, "t2.brain.odf.n": 9}
    t = rows(compare(with_values(result, held), CARD))
    assert t.loc[("t2.brain.odf.n", "value"), "verdict"] == "contradicted by the paper"
    t = rows(compare(with_values(result, {**held, "t2.brain.df.n": 5}), CARD))
    assert t.loc[("t2.brain.odf.n", "value"), "verdict"] == "differs"


def test_a_confidence_limit_can_be_contradicted(result):
    # Table 3's liver SHR 1.57 (0.06-4.39), p 0.386: the lower limit cannot hold with the SHR and p
    liver = {"t3.uni.liver_met.shr": {"value": 1.57, "ci_lower": 0.56, "ci_upper": 4.39},
             "t3.uni.liver_met.p": 0.386}
    t = rows(compare(with_values(result, liver), CARD))
    assert t.loc[("t3.uni.liver_met.shr", "ci_lower"), "verdict"] == "contradicted by the paper"
    assert t.loc[("t3.uni.liver_met.shr", "ci_upper"), "verdict"] == "matches as printed"
    liver["t3.uni.liver_met.p"] = 0.5  # one side not reproduced: no excuse
    t = rows(compare(with_values(result, liver), CARD))
    assert t.loc[("t3.uni.liver_met.shr", "ci_lower"), "verdict"] == "differs"


def test_table1_p_values_no_test_gives_are_contradicted_by_their_counts(result):
    from failpattern.cohort import load_cohort
    from failpattern._resources import synthetic_path

    t = rows(compare(run_plan(load_cohort(synthetic_path("ni2019_exact.csv")), card=CARD), CARD))
    for name in ("histology", "ecog", "met_lesions", "bone_met"):
        assert t.loc[(f"t1.{name}.p", "value"), "verdict"] == "contradicted by the paper", name
    for name in ("sex", "lung_met", "adrenal_met", "brain_met"):  # N-1 or Fisher gives the printed p
        assert t.loc[(f"t1.{name}.p", "value"), "verdict"] == "matches as printed", name


def test_approximately_is_judged_as_an_approximation(result):
    ok = rows(compare(with_values(result, {"salvage.eligible.pct_discussion": 67.3}), CARD))
    assert ok.loc[("salvage.eligible.pct_discussion", "value"), "verdict"] == "matches as printed"
    assert ok.loc[("salvage.eligible.pct_discussion", "value"), "rule"].startswith("approximately")
    off = rows(compare(with_values(result, {"salvage.eligible.pct_discussion": 70.0}), CARD))
    assert off.loc[("salvage.eligible.pct_discussion", "value"), "verdict"] == "differs"
