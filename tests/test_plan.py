"""The analysis plan: every value checked against a direct call of the public stats function.

The plan calls the statistics kernels on arrays; these tests recompute each
quantity the slow, obvious way — ``Cohort.rows_for`` for the patients,
pandas for the groupings, the public ``kaplan_meier`` / ``logrank`` / ``cox`` /
``cumulative_incidence`` / ``fine_gray`` / ``contingency_test`` /
``two_sample_test`` — on generated cohorts (``test_plan_cohorts.py``) and on
small hand-made ones whose answers are known.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from test_plan_cohorts import make_cohort, make_frame

from failpattern.cohort import CohortError, load_cohort
from failpattern.errors import InputError
from failpattern.stats.cif import cumulative_incidence
from failpattern.stats.contingency import contingency_test
from failpattern.stats.cox import cox
from failpattern.stats.finegray import fine_gray
from failpattern.stats.km import kaplan_meier
from failpattern.stats.logrank import logrank
from failpattern.stats.twosample import two_sample_test
from failpattern.study import load_study
from failpattern.study.analyses._base import BINARIES
from failpattern.study.analyses.competing import T3_COVARIATES
from failpattern.study.plan import PlanResult, run_plan

CARD = load_study("ni2019")


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(93, 7)


@pytest.fixture(scope="module")
def result(cohort):
    return run_plan(cohort, card=CARD)


def val(result, id_):
    return result.get(id_)


def row(result, id_):
    return result.values.set_index("id").loc[id_]


def indicator(frame, name):
    """The grouping of BINARIES computed with pandas, independently of the plan."""
    s = frame[BINARIES[name].column]
    out = {
        "age": lambda: s > 50, "sex": lambda: s == "male", "histology": lambda: s == "adenocarcinoma",
        "ecog": lambda: s >= 2, "tumor_size": lambda: s >= 3.5,
        "t_stage": lambda: s.isin(["T3", "T4"]), "n_stage": lambda: s.isin(["N1", "N2", "N3"]),
        "met_organs": lambda: s >= 3, "met_lesions": lambda: s >= 6, "prior_lines": lambda: s == 0,
        "objective_response": lambda: s.isin(["CR", "PR"]),
    }.get(name, lambda: s == 1)()
    return out.astype(float)


# ------------------------------------------------------------------------- shape
def test_result_shape(result):
    assert isinstance(result, PlanResult)
    assert list(result.values.columns) == ["id", "value", "ci_lower", "ci_upper", "range_min", "range_max",
                                           "analysis", "method", "convention", "n_used", "n_excluded", "note"]
    assert result.values["id"].is_unique
    assert set(result.values["analysis"]) <= set(result.exclusions) | {"cohort"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.km = None
    copy = result.values
    copy.loc[0, "value"] = -1.0  # a copy: the result does not change
    assert result.values.loc[0, "value"] != -1.0
    assert isinstance(result.km["pfs1.all"].median, float)


def test_dataframe_input_is_validated(cohort):
    frame = make_frame(40, np.random.default_rng(3))
    assert len(run_plan(frame, card=CARD).values) > 100
    frame.loc[0, "pfs1_months"] = -1.0
    with pytest.raises(CohortError):
        run_plan(frame, card=CARD)
    with pytest.raises(InputError):
        run_plan(cohort, death_without_progression="ignored")


# ------------------------------------------------------------------- survival
KM_CASES = [("pfs1.median.all", "pfs1_km", "pfs1", None, None),
            ("pfs1.median.bbm_prior_brain_rt", "pfs1_by_prior_brain_rt", "pfs1", "prior_brain_rt", 1),
            ("pfs1.median.bbm_no_prior_brain_rt", "pfs1_by_prior_brain_rt", "pfs1", "prior_brain_rt", 0),
            ("pfs2.median.all", "pfs2_km", "pfs2", None, None),
            ("pfs2.median.salvage_rt", "pfs2_by_salvage_rt", "pfs2", "salvage_rt", 1),
            ("pfs2.median.non_cbpd", "pfs2_by_cbpd", "pfs2", "cbpd", 0),
            ("os.median.rt", "os_by_any_rt", "os", "any_rt", 1)]


@pytest.mark.parametrize("id_, key, ep, col, level", KM_CASES)
def test_km_medians_match_public_function(cohort, result, id_, key, ep, col, level):
    inc, _ = cohort.rows_for(key, columns=[])
    if col is not None:
        inc = inc[inc[col] == level]
    t, e = inc[f"{ep}_months"].astype(float), inc[f"{ep}_event"].astype(int)
    spss, r = kaplan_meier(t, e, conf_type="spss"), kaplan_meier(t, e, conf_type="log")
    got = row(result, id_)
    np.testing.assert_equal([got["value"], got["ci_lower"], got["ci_upper"]], [spss.median, *spss.median_ci])
    got_r = row(result, id_ + ".r")
    np.testing.assert_equal([got_r["value"], got_r["ci_lower"], got_r["ci_upper"]], [r.median, *r.median_ci])
    assert got["convention"] == "spss22" and got_r["convention"] == "r" and got["n_used"] == len(inc)


@pytest.mark.parametrize("id_, key, ep, col", [
    ("pfs1.bbm.prior_brain_rt.p", "pfs1_by_prior_brain_rt", "pfs1", "prior_brain_rt"),
    ("pfs1.prior_rt.p", "pfs1_by_prior_rt", "pfs1", "prior_rt"),
    ("pfs2.salvage_rt.p", "pfs2_by_salvage_rt", "pfs2", "salvage_rt"),
    ("pfs2.cbpd.p", "pfs2_by_cbpd", "pfs2", "cbpd"),
    ("os.rt_vs_nonrt.p", "os_by_any_rt", "os", "any_rt")])
def test_logrank_matches_public_function(cohort, result, id_, key, ep, col):
    inc, _ = cohort.rows_for(key, columns=[])
    lr = logrank(inc[f"{ep}_months"].astype(float), inc[f"{ep}_event"].astype(int), inc[col].astype(int))
    assert val(result, id_) == pytest.approx(lr.p_value, rel=1e-12)


def test_bbm_logrank_over_all_patients(cohort, result):
    inc, _ = cohort.rows_for("pfs1_predictors", columns=["brain_mets"])
    lr = logrank(inc["pfs1_months"].astype(float), inc["pfs1_event"].astype(int), inc["brain_mets"].astype(int))
    assert val(result, "pfs1.bbm.p") == pytest.approx(lr.p_value, rel=1e-12)


def test_failure_pattern_comparisons_match_public_functions(cohort, result):
    """PFS1 and objective response by first-failure pattern ("not significantly different")."""
    inc, _ = cohort.rows_for("pfs1_by_failure_pattern", columns=[])
    assert set(inc["failure_pattern"]) == {"OF", "DF", "ODF"}
    lr = logrank(inc["pfs1_months"].astype(float), inc["pfs1_event"].astype(int), inc["failure_pattern"].astype(str))
    assert lr.df == 2
    assert val(result, "pfs1.pattern.p") == pytest.approx(lr.p_value, rel=1e-12)
    assert row(result, "pfs1.pattern.p")["n_used"] == len(inc)
    inc, _ = cohort.rows_for("response_by_failure_pattern", columns=[])
    orr = inc["best_response"].isin(["CR", "PR"])
    pattern = inc["failure_pattern"].astype(str)
    table = [[int((orr & (pattern == p)).sum()), int((~orr & (pattern == p)).sum())] for p in ("OF", "DF", "ODF")]
    chosen = result.contingency["response.pattern.p"]["chosen"]
    assert chosen in ("pearson", "fisher")
    assert val(result, "response.pattern.p") == pytest.approx(
        contingency_test(table, method=chosen).p_value, rel=1e-9)
    assert val(result, "response.pattern.p.pearson") == pytest.approx(
        contingency_test(table, method="pearson").p_value, rel=1e-9)


def test_cox_matches_public_function(cohort, result):
    names = ["histology", "met_organs", "objective_response", "prior_local_therapy", "brain_met"]
    words = ["histology", "met_organs", "response", "prior_rt", "bbm"]
    inc, _ = cohort.rows_for("pfs1_predictors", columns=[BINARIES[n].column for n in names])
    data = pd.DataFrame({n: indicator(inc, n) for n in names})
    data["t"], data["e"] = inc["pfs1_months"].astype(float), inc["pfs1_event"].astype(int)
    fit = cox(data, duration="t", event="e", covariates=names, ties="breslow").summary
    for n, w in zip(names, words):
        assert val(result, f"pfs1.multi.{w}.p") == pytest.approx(fit.loc[n, "p"], rel=1e-9)
        got = row(result, f"pfs1.multi.{w}.hr")
        np.testing.assert_allclose([got["value"], got["ci_lower"], got["ci_upper"]],
                                   fit.loc[n, ["hr", "hr_lower", "hr_upper"]].to_numpy(float), rtol=1e-9)
        uni = cox(data, duration="t", event="e", covariates=[n], ties="breslow").summary
        assert val(result, f"pfs1.uni.{w}.p") == pytest.approx(uni.loc[n, "p"], rel=1e-9)


# ------------------------------------------------------------------ competing
def _causes(frame, death):
    codes = {"OF": 1, "DF": 2, "ODF": 2, "death": 2 if death == "competing" else 0}
    return frame["failure_pattern"].astype(object).map(codes).fillna(0).astype(int)


@pytest.mark.parametrize("death", ["competing", "censored"])
def test_finegray_matches_public_function(cohort, death):
    res = run_plan(cohort, card=CARD, death_without_progression=death)
    for name in T3_COVARIATES:
        b = BINARIES[name]
        inc, _ = cohort.rows_for("of_predictors", columns=[b.column])
        data = pd.DataFrame({name: indicator(inc, name), "t": inc["pfs1_months"].astype(float),
                             "c": _causes(inc, death)})
        if name in ("t_stage", "n_stage"):
            data = data[inc[b.column].isin(["T1", "T2", "T3", "T4", "N0", "N1", "N2", "N3"]).to_numpy()]
        if f"t3.uni.{name}.p" not in set(res.values["id"]):
            assert any(f"t3.uni.{name}.p" in ids for ids in res.skipped["ids"])
            continue
        fit = fine_gray(data, duration="t", cause="c", covariates=[name], variance="stata").summary
        got = row(res, f"t3.uni.{name}.shr")
        np.testing.assert_allclose([got["value"], got["ci_lower"], got["ci_upper"]],
                                   fit.loc[name, ["shr", "shr_lower", "shr_upper"]].to_numpy(float), rtol=1e-9)
        assert val(res, f"t3.uni.{name}.p") == pytest.approx(fit.loc[name, "p"], rel=1e-9)
    multi = list(res.settings.t3_multi)
    inc, _ = cohort.rows_for("of_predictors", columns=[BINARIES[n].column for n in multi])
    data = pd.DataFrame({n: indicator(inc, n) for n in multi})
    data["t"], data["c"] = inc["pfs1_months"].astype(float), _causes(inc, death)
    fit = fine_gray(data, duration="t", cause="c", covariates=multi, variance="stata").summary
    for n in multi:
        assert val(res, f"t3.multi.{n}.shr") == pytest.approx(fit.loc[n, "shr"], rel=1e-9)


@pytest.mark.parametrize("death", ["competing", "censored"])
def test_finegray_matches_public_function_on_a_large_cohort(death):
    """Past the kernel's dense risk-set size the plan prepares each model only when it fits it
    (one model's arrays held at a time); the estimates are the public function's all the same."""
    from failpattern.stats import _finegray_kernel

    large = make_cohort(1500, 7)
    inc, _ = large.rows_for("of_predictors", columns=[])
    times = _finegray_kernel.prepare_times(inc["pfs1_months"].astype(float).to_numpy(),
                                           _causes(inc, death).to_numpy(np.int64), 1)
    assert times.dense is None
    test_finegray_matches_public_function(large, death)


def test_cumulative_incidence_matches_public_function(cohort, result):
    inc, _ = cohort.rows_for("failure_pattern_cif")
    cause = inc["failure_pattern"].astype(object).map({"OF": 1, "DF": 2, "ODF": 3, "death": 4}).fillna(0)
    fit = cumulative_incidence(inc["pfs1_months"].astype(float), cause.astype(int))
    for word, code in (("of", 1), ("df", 2), ("odf", 3)):
        for t in (12, 24):
            assert val(result, f"cif.{word}.{t}m") == pytest.approx(100 * fit.at(t, cause=code), abs=1e-12)
    anyc = cause.where(cause != 4, 5).clip(upper=5).replace({2: 1, 3: 1, 5: 2}).astype(int)
    fit_any = cumulative_incidence(inc["pfs1_months"].astype(float), anyc)
    assert val(result, "cif.any.24m") == pytest.approx(100 * fit_any.at(24, cause=1), abs=1e-12)
    progressed = inc[inc["failure_pattern"].isin(["OF", "DF", "ODF"])]
    expected = 100 * (progressed["pfs1_months"] <= 12).mean()
    assert val(result, "pattern.any.rate_12m") == pytest.approx(expected)


# --------------------------------------------------------------------- tables
def test_table1_counts_and_tests(cohort, result):
    for name in ("sex", "ecog", "t_stage", "brain_met", "met_lesions"):
        b = BINARIES[name]
        inc, _ = cohort.rows_for("baseline_by_any_rt", columns=[b.column])
        x = indicator(inc, name)
        if name == "t_stage":
            x = x[inc["t_stage"].isin(["T1", "T2", "T3", "T4"])]
        rt = inc.loc[x.index, "any_rt"].astype(int)
        tab = pd.crosstab(rt, x).reindex(index=[0, 1], columns=[1.0, 0.0], fill_value=0)
        for lv, v in zip(b.levels, (1.0, 0.0)):
            assert val(result, f"t1.{name}.{lv}.nonrt.n") == tab.loc[0, v]
            assert val(result, f"t1.{name}.{lv}.rt.n") == tab.loc[1, v]
            assert val(result, f"t1.{name}.{lv}.all.pct") == pytest.approx(100 * (x == v).mean())
        for test in ("pearson", "yates", "fisher"):
            ref = contingency_test(tab.to_numpy(), method=test).p_value
            assert val(result, f"t1.{name}.p.{test}") == pytest.approx(ref, rel=1e-10)
        chosen = result.contingency[f"t1.{name}.p"]["chosen"]  # g and n-1 have no row of their own
        assert val(result, f"t1.{name}.p") == pytest.approx(contingency_test(tab.to_numpy(), method=chosen).p_value,
                                                            rel=1e-10)


def test_contingency_choice_follows_the_card(result):
    # the card's printed counts reproduce t1.brain_met.p only with Fisher's test
    assert result.settings.contingency["t1.brain_met.p"] == "fisher"
    assert result.contingency["t1.brain_met.p"]["chosen"] == "fisher"
    assert "auto" not in result.settings.contingency  # ids only


def test_table1_continuous(cohort, result):
    inc, _ = cohort.rows_for("baseline_by_any_rt", columns=["age_years"])
    ref = two_sample_test(inc["age_years"].astype(float), inc["any_rt"].astype(int))
    assert val(result, "t1.age.p") == pytest.approx(ref.p_value, rel=1e-12)
    assert val(result, "t1.age.median.rt") == inc.loc[inc["any_rt"] == 1, "age_years"].median()
    tt = two_sample_test(inc["age_years"].astype(float), inc["any_rt"].astype(int), method="t-test")
    assert val(result, "t1.age.p.t_test") == pytest.approx(tt.p_value, rel=1e-12)


def test_table2_and_counts(cohort, result):
    d = cohort.data
    prog = d[d["failure_pattern"].isin(["OF", "DF", "ODF"])]
    assert val(result, "progression1.n") == len(prog)
    assert val(result, "t2.brain.odf.n") == ((prog["failure_pattern"] == "ODF") & (prog["fail_brain"] == 1)).sum()
    assert val(result, "t2.brain.all.pct") == pytest.approx(100 * (prog["fail_brain"] == 1).mean())
    assert val(result, "t2.primary_only.of.n") == (
        (prog["failure_pattern"] == "OF") & (prog["initial_failure_location"] == "primary")).sum()
    assert val(result, "pattern.of.pct") == pytest.approx(100 * (prog["failure_pattern"] == "OF").mean())
    assert val(result, "deaths.n") == d["os_event"].sum()
    assert val(result, "followup.median") == d["os_months"].median()
    assert val(result, "response.orr.pct") == pytest.approx(100 * d["best_response"].isin(["CR", "PR"]).mean())
    assert val(result, "rt_course.n") == d["any_rt"].sum()
    assert val(result, "after_pd.cbpd.n") == (prog["cbpd"] == 1).sum()
    assert val(result, "salvage.eligible.n") == (prog["salvage_rt_eligible"] == 1).sum()
    brain_pd = (d["failure_pattern"].isin(["OF", "DF", "ODF"]) & (d["fail_brain"] == 1))
    for word, v in (("bbm", 1), ("no_bbm", 0)):
        grp = d["brain_mets"] == v
        assert val(result, f"brain_pd.{word}.n") == (brain_pd & grp).sum()
        assert val(result, f"brain_pd.{word}.pct") == pytest.approx(100 * (brain_pd & grp).sum() / grp.sum())
    tab = pd.crosstab(d["brain_mets"], brain_pd)
    ref = contingency_test(tab.to_numpy(), method="fisher").p_value
    assert val(result, "brain_pd.bbm_vs_no_bbm.p.fisher") == pytest.approx(ref, rel=1e-10)


# ----------------------------------------------------------------- exclusions
def test_selection_agrees_with_rows_for():
    cohort = make_cohort(93, 11, missing=0.12)
    res = run_plan(cohort, card=CARD)
    excl = res.exclusions
    first = res.values.drop_duplicates("analysis").set_index("analysis")
    for name, (key, columns) in res._selections.items():
        inc, out = cohort.rows_for(key, columns=list(columns))
        extra = res._extra.get(name, ())
        assert len(excl[name]) == len(out) + len(extra)
        if name in first.index and name not in ("brain.bbm_status", "brain.prior_rt", "pattern.rate"):
            assert first.loc[name, "n_excluded"] == len(out) + len(extra), name
            if first.loc[name, "method"] not in ("km_median",):
                assert first.loc[name, "n_used"] == len(inc) - len(extra), name
    assert any(e.reason == "age_years is empty" for e in excl["t3.uni.age"])
    frame = res.exclusions_frame()
    assert set(frame.columns) == {"analysis", "patient_id", "line", "reason"} and len(frame) > 20


def test_ungroupable_stage_is_excluded_with_reason():
    frame = make_frame(93, np.random.default_rng(4))
    frame.loc[[0, 1], "t_stage"] = "TX"
    res = run_plan(frame, card=CARD)
    reasons = [e.reason for e in res.exclusions["t3.uni.t_stage"]]
    assert sum("t_stage = TX cannot be grouped" in r for r in reasons) == 2
    assert row(res, "t3.uni.t_stage.p")["n_used"] == 91
    assert row(res, "t3.uni.sex.p")["n_used"] == 93


def test_missing_optional_columns_are_skipped_not_dropped():
    frame = make_frame(93, np.random.default_rng(5)).drop(columns=["cbpd", "next_systemic_therapy", "ecog"])
    res = run_plan(frame, card=CARD)
    ids = set(res.values["id"])
    assert "pfs2.median.cbpd" not in ids and "t3.uni.ecog.shr" not in ids
    skipped = {i: r for ids_, r in zip(res.skipped["ids"], res.skipped["reason"]) for i in ids_}
    assert "cbpd" in skipped["pfs2.median.cbpd"] and "ecog" in skipped["t3.uni.ecog.shr"]
    assert "pfs2.median.salvage_rt" in ids and "t1.sex.p" in ids


# ------------------------------------------------------------ hand-made cohort
def _tiny():
    """Six patients, answers worked by hand."""
    return pd.DataFrame({
        "patient_id": ["a", "b", "c", "d", "e", "f"],
        "pfs1_months": [2.0, 4.0, 6.0, 8.0, 10.0, 12.0],
        "pfs1_event": [1, 1, 0, 1, 1, 0],
        "failure_pattern": ["OF", "DF", None, "ODF", "death", None],
        "pfs2_months": [3.0, 5.0, None, 1.0, None, None],
        "pfs2_event": [1, 0, None, 1, None, None],
        "os_months": [20.0, 30.0, 40.0, 50.0, 60.0, 70.0],
        "os_event": [1, 0, 0, 0, 1, 0],
        "any_rt": [1, 0, 1, 0, 1, 0],
        "sex": ["male", "male", "female", "female", "male", "female"],
    })


def test_hand_made_cohort():
    res = run_plan(load_cohort(_tiny()), card=CARD)
    # KM: S = 5/6 (2), 4/6 (4), censor 6, 4/6 * 2/3 = 4/9 (8): SPSS median = 8
    assert res.get("pfs1.median.all") == 8.0
    assert res.get("progression1.n") == 3 and res.get("pattern.of.n") == 1
    assert res.get("pattern.odf.pct") == pytest.approx(100 / 3)
    assert res.get("pattern.any.rate_12m") == 100.0
    assert res.get("deaths.n") == 2 and res.get("followup.median") == 45.0
    assert res.get("t1.sex.male.rt.n") == 2 and res.get("t1.sex.female.nonrt.pct") == pytest.approx(200 / 3)
    assert res.get("rt_course.n") == 3
    # PFS1 by pattern among the progressed a (OF, 2), b (DF, 4), d (ODF, 8); by hand:
    # O - E = (2/3, 1/6, -5/6); V over (OF, DF) = [[8, -4], [-4, 17]] / 36 (the last
    # event, alone at risk, adds no variance); chi-square = 2.6 on 2 df, p = exp(-1.3)
    assert res.get("pfs1.pattern.p") == pytest.approx(np.exp(-1.3), rel=1e-12)
    assert any("response.pattern.p" in i for i in res.skipped["ids"])  # no best_response column
    # CIF of OF at 12: one OF at 2 among 6 at risk = 1/6
    assert res.get("cif.of.12m") == pytest.approx(100 / 6)
    # every model the tiny cohort cannot support is listed, with a reason
    assert len(res.skipped) > 10 and res.skipped["reason"].str.len().min() > 5
    assert "t3.uni.sex.shr" in set(res.values["id"]) or any("t3.uni.sex.shr" in i for i in res.skipped["ids"])


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_any_valid_cohort_runs():
    """Small cohorts, missing values, dropped optional columns: the plan runs or skips, never fails."""
    from failpattern.study.compare import compare

    required = {"patient_id", "pfs1_months", "pfs1_event", "failure_pattern", "os_months", "os_event"}
    ran = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        frame = make_frame(int(rng.integers(2, 30)), rng, missing=float(rng.choice([0.0, 0.1, 0.3])))
        if seed % 2:
            optional = [c for c in frame.columns if c not in required]
            frame = frame.drop(columns=list(rng.choice(optional, size=int(rng.integers(1, 20)), replace=False)))
        try:
            cohort = load_cohort(frame)
        except CohortError:  # dropping a column can leave details without their parent
            continue
        res = run_plan(cohort, card=CARD)
        assert res.values["value"].notna().sum() > 0
        if seed % 3 == 0:
            judged = compare(res, CARD)
            assert res.exclusions is not None and tuple(judged["id"].unique()) == CARD.ids
        ran += 1
    assert ran >= 3


def test_simulator_cohorts():
    """Cohorts from failpattern.simulate run through the plan; the exact cohort reproduces the counts."""
    from failpattern._resources import synthetic_path
    from failpattern.simulate import simulate
    from failpattern.study.compare import compare

    res = run_plan(simulate(seed=1), card=CARD)
    assert len(res.values) > 300 and res.get("cohort.enrolled.n") == 93
    exact = load_cohort(synthetic_path("ni2019_exact.csv"))
    table = compare(run_plan(exact, card=CARD), CARD)
    table = table[table["part"] == "value"].set_index("id")
    core = ["cohort.enrolled.n", "progression1.n", "pattern.of.n", "pattern.df.n", "pattern.odf.n",
            "deaths.n", "pfs2.median.all"]
    assert (table.loc[core, "verdict"] == "matches as printed").all(), table.loc[core, ["published", "reproduced"]]
    counts = table[table["method"] == "count"]
    assert (counts["verdict"] == "matches as printed").mean() > 0.8


def test_contingency_falls_back_to_spss_rule_without_card_choice(cohort):
    from failpattern.study.analyses._base import Context
    from failpattern.study.analyses.tables import run_tables
    from failpattern.study.plan import settings_for

    # no card choice: no test known for any p-value
    ctx = Context(cohort, dataclasses.replace(settings_for(CARD), contingency={}))
    run_tables(ctx)
    for id_, info in ctx.models["contingency"].items():
        ref = contingency_test(info["table"], method="auto")
        assert info["chosen"] == ref.method == info["auto"], id_
        assert info["p"][info["chosen"]] == pytest.approx(ref.p_value, rel=1e-10)


def test_contingency_too_large_for_exact_fisher_says_which_test_ran(cohort):
    """A large cohort's r x c table: the ``.fisher`` value is the asymptotic Pearson p, and the
    values table (so the report) says so."""
    from failpattern.study.analyses._base import ROW_FIELDS, Context
    from failpattern.study.analyses.tables import contingency
    from failpattern.study.plan import settings_for

    big = [[31_000, 17_900], [14_700, 8_500], [17_300, 10_600]]
    ctx = Context(cohort, dataclasses.replace(settings_for(CARD), contingency={"response.pattern.p": "fisher"}))
    contingency(ctx, "response.pattern.p", big, None, "response.by_pattern", "response by pattern")
    info = ctx.models["contingency"]["response.pattern.p"]
    assert info["ran"] == {"pearson": "pearson", "fisher": "pearson", "n-1": "n-1", "g": "g"}
    assert info["chosen"] == "fisher"
    rows = {r[0]: r for r in ctx.rows}
    pearson = contingency_test(big, method="pearson")
    for id_ in ("response.pattern.p", "response.pattern.p.fisher"):
        assert rows[id_][1] == pearson.p_value
        assert rows[id_][ROW_FIELDS.index("note")].startswith("pearson (Fisher's exact test requested, but the exact r x c enumeration")
    assert rows["response.pattern.p.fisher"][ROW_FIELDS.index("method")] == "chisq_p"  # method column: not a Fisher p
    small = [[20, 12], [9, 6], [11, 7]]
    contingency(ctx, "x.p", small, None, "x", "small")
    assert ctx.models["contingency"]["x.p"]["ran"]["fisher"] == "fisher"
    assert {r[0]: r for r in ctx.rows}["x.p.fisher"][ROW_FIELDS.index("method")] == "fisher_p"
