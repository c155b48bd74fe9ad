"""Summaries of replicate results, checked against numpy and against cases with known answers.

Statistics per id are recomputed with numpy; the published percentile and the
power are checked on hand-built results where they are known exactly, and on
a simulated test whose power is known in closed form.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from failpattern.errors import InputError
from failpattern.replicate import is_p_value_method, published_frame, run_replicates, summarise

pytestmark = pytest.mark.filterwarnings("error")


def toy_results(seed: int = 5, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n):
        rows.append((r, "hr", float(rng.lognormal(0.2, 0.3))))
        rows.append((r, "p", float(rng.random())))
        if r % 4:  # id missing from a quarter of the replicates
            rows.append((r, "median", float(rng.normal(12, 2)) if r % 7 else np.nan))
    return pd.DataFrame(rows, columns=["replicate", "id", "value"])


def test_statistics_match_numpy():
    res = toy_results()
    s = summarise(res).set_index("id")
    assert list(s.index) == ["hr", "p", "median"]
    assert list(s.columns) == ["n", "n_missing", "mean", "sd", "median", "p05", "p95"]
    for id_, row in s.iterrows():
        v = res.loc[res["id"] == id_, "value"].to_numpy()
        v = v[~np.isnan(v)]
        assert row["n"] == v.size
        assert row["n_missing"] == 200 - v.size
        np.testing.assert_allclose(row[["mean", "sd", "median", "p05", "p95"]].to_numpy(float),
                                   [v.mean(), v.std(ddof=1), np.median(v), np.percentile(v, 5),
                                    np.percentile(v, 95)], rtol=1e-13)
    assert s.loc["median", "n_missing"] == 50 + sum(1 for r in range(200) if r % 4 and r % 7 == 0)


def test_published_percentile_and_power_exact():
    # x takes 0..99 once each; p takes (i + 0.5) / 100, so 5 of 100 are below 0.05
    res = pd.DataFrame({"replicate": np.repeat(np.arange(100), 2),
                        "id": ["x", "p"] * 100,
                        "value": np.column_stack([np.arange(100.0), (np.arange(100) + 0.5) / 100]).ravel()})
    res = pd.concat([res, pd.DataFrame({"replicate": [0], "id": ["unpublished"], "value": [1.0]})])
    pub = pd.DataFrame({"id": ["x", "p", "absent"], "value": [10.0, 0.2, 1.0],
                        "method": ["count", "logrank_p", "cox_hr"]})
    s = summarise(res, pub).set_index("id")
    assert s.loc["x", "published_percentile"] == pytest.approx(10.5)  # 10 below, one tie
    assert s.loc["p", "published_percentile"] == pytest.approx(20.0)  # 0.005 .. 0.195: 20 below 0.2
    assert s.loc["p", "power"] == pytest.approx(0.05)
    assert np.isnan(s.loc["x", "power"])
    assert bool(s.loc["p", "is_p_value"]) and not bool(s.loc["x", "is_p_value"])
    assert s.loc["absent", "n"] == 0 and s.loc["absent", "n_missing"] == 100
    assert np.isnan(s.loc["absent", "published_percentile"])
    assert list(s.index) == ["x", "p", "unpublished", "absent"]
    assert np.isnan(s.loc["unpublished", "published"]) and not s.loc["unpublished", "is_p_value"]
    assert summarise(res, pub, alpha=0.1).set_index("id").loc["p", "power"] == pytest.approx(0.10)
    # outside the range of the replicates: 0 and 100
    s2 = summarise(res, {"x": -1.0, "p": {"value": 2.0, "is_p_value": True}}).set_index("id")
    assert s2.loc["x", "published_percentile"] == 0.0
    assert s2.loc["p", "published_percentile"] == 100.0


def two_group_test(rng: np.random.Generator, index: int) -> pd.DataFrame:
    """A z-test with true effect 2.8 standard errors: power at 0.05 is Phi(0.84) + Phi(-4.76)."""
    z = rng.normal(2.8, 1.0)
    return pd.DataFrame({"id": ["effect", "effect.p"], "value": [z, 2 * stats.norm.sf(abs(z))]})


def test_power_of_a_simulated_test_is_the_known_power(tmp_path):
    res = run_replicates(two_group_test, 2000, seed=11, out_dir=tmp_path, workers=1,
                         chunk_size=500, progress=False)
    pub = {"effect": {"value": 2.8, "method": "cox_hr"}, "effect.p": {"value": 0.005, "method": "cox_p"}}
    s = summarise(res, pub).set_index("id")
    power = stats.norm.cdf(2.8 - 1.959963984540054) + stats.norm.cdf(-2.8 - 1.959963984540054)
    assert s.loc["effect.p", "power"] == pytest.approx(power, abs=0.036)  # 4 sd of the estimate
    assert s.loc["effect", "published_percentile"] == pytest.approx(50, abs=3)
    # P(p < 0.005) = P(|Z| > 2.807) under the alternative, about 0.5
    assert s.loc["effect.p", "published_percentile"] == pytest.approx(
        100 * (stats.norm.sf(2.807 - 2.8) + stats.norm.cdf(-2.807 - 2.8)), abs=3)


def test_published_forms_and_the_card_vocabulary():
    from failpattern.study import load_study
    from failpattern.study.card import METHODS

    assert {m for m, spec in METHODS.items() if spec.kind == "p"} == {m for m in METHODS
                                                                     if is_p_value_method(m)}
    card = published_frame(load_study().numbers)
    assert card["is_p_value"].sum() > 0 and card["id"].is_unique
    f = published_frame(pd.Series({"a": 1, "b": 2}))
    assert f["published"].tolist() == [1.0, 2.0] and not f["is_p_value"].any()
    flags = published_frame(pd.DataFrame({"id": ["a", "b"], "value": [0.01, 3], "is_p_value": [True, False]}))
    assert flags["is_p_value"].tolist() == [True, False]


def test_bad_input_is_refused():
    res = toy_results(n=10)
    with pytest.raises(InputError, match="missing column"):
        summarise(res.drop(columns="value"))
    with pytest.raises(InputError, match="replicate 0 reports id 'hr' more than once"):
        summarise(pd.concat([res, res.iloc[:1]]))
    with pytest.raises(InputError, match="must be numeric"):
        summarise(res.assign(value="x"))
    with pytest.raises(InputError, match="alpha"):
        summarise(res, {"p": 0.1}, alpha=1.5)
    with pytest.raises(InputError, match="duplicated id"):
        summarise(res, pd.DataFrame({"id": ["p", "p"], "value": [0.1, 0.2]}))
    with pytest.raises(InputError, match="not a number"):
        summarise(res, {"p": "n.s."})
    with pytest.raises(InputError, match="need 'id' and 'value'"):
        summarise(res, pd.DataFrame({"name": ["p"], "value": [0.1]}))


def test_single_replicate_has_no_sd_and_no_warning():
    s = summarise(pd.DataFrame({"replicate": [0], "id": ["a"], "value": [1.5]}))
    assert s.loc[0, "n"] == 1 and np.isnan(s.loc[0, "sd"]) and s.loc[0, "median"] == 1.5


def test_chunks_summarised_one_at_a_time_equal_the_whole():
    """summarise_chunks (a study's chunk files, ids as categories) gives summarise's table bit for bit,
    and summarise gives the same whether rows are by replicate (matrix path) or not (grouped path)."""
    from failpattern.replicate import summary

    res = toy_results(n=300)
    pub = {"hr": 1.2, "p": {"value": 0.04, "is_p_value": True}, "absent": 3.0}
    whole = summarise(res, pub)
    chunks = [res[(res["replicate"] >= lo) & (res["replicate"] < lo + 70)].astype({"id": "category"})
              for lo in range(0, 300, 70)]
    pd.testing.assert_frame_equal(summary.summarise_chunks(chunks, pub), whole)
    grouped = summarise(res.assign(replicate=-res["replicate"]), pub)  # same row order, not by replicate
    pd.testing.assert_frame_equal(grouped, whole)
    acc = summary.Accumulator(keep={"hr"})
    for c in chunks:
        acc.add(c)
    assert acc.ids == ["hr"] and acc.summary().loc[0, "n_missing"] == 0
    with pytest.raises(InputError, match="more than once"):
        summary.summarise_chunks([pd.concat([chunks[0], chunks[0].iloc[:1]])])


def test_accumulator_chunks_by_replicate_or_not_give_the_same_blocks():
    """A chunk by replicate (runs of rows, the fast path) and the same rows shuffled (factorized) give
    the same summary; a repeated id is found on either path."""
    from failpattern.replicate import summary

    res = toy_results(n=120)
    pub = {"hr": 1.2, "p": {"value": 0.04, "is_p_value": True}}
    by_rep = summary.summarise_chunks([res], pub)
    shuffled = res.sample(frac=1.0, random_state=3).reset_index(drop=True)
    reps = summary.Accumulator()
    reps.add(shuffled)
    ordered = summary.Accumulator()
    ordered.add(res)
    assert reps.n_replicates == ordered.n_replicates == res["replicate"].nunique()
    pd.testing.assert_frame_equal(summary.summarise_chunks([res.sort_values(["replicate", "id"], kind="stable")], pub),
                                  by_rep)
    twice = pd.concat([res.iloc[:1], res]).sort_values("replicate", kind="stable")   # by replicate, one id twice
    with pytest.raises(InputError, match="more than once"):
        summary.Accumulator().add(twice)
