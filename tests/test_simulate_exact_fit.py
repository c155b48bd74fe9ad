"""Exact mode's fitting stages: the loss, the annealer, and the shipped cohort's statistics.

The canonical exact cohort takes about 3 min of CPU to generate, so it is not regenerated here (the
fixture of ``tests/test_simulate.py`` does it once and compares the bytes); its
statistics are checked directly by running the analysis plan on the shipped file.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import ndtr

from failpattern._resources import synthetic_path
from failpattern.cohort import load_cohort
from failpattern.simulate._anneal import Target, anneal, term, zterm
from failpattern.simulate._exact_times import (
    LATE_OF_MONTHS,
    fg_uni,
    km_lr,
    months,
    pattern_term,
    pfs1_problem,
    shr_terms,
)
from failpattern.simulate._exact_repair import _within
from failpattern.simulate._km import km_medians, logrank_z
from failpattern.study import compare, load_study, run_plan

CARD = load_study("ni2019")

#: Point values the paper itself contradicts (the card's ``contradicted_by``): the cohort follows
#: the other side. The eight Table 1 p-values no standard test gives from the printed counts.
CARD_INCONSISTENT = {"t1.lung_met.no.nonrt.pct", "t2.primary_only.all.n", "t2.primary_only.all.pct",
                     "t2.metastasis_only.all.n", "t2.metastasis_only.all.pct", "t2.brain.all.n",
                     "t2.brain.all.pct", "t2.brain.odf.n", "t2.brain.odf.pct"} | {
    f"t1.{n}.p" for n in ("histology", "ecog", "t_stage", "n_stage", "met_organs", "met_lesions", "liver_met",
                          "bone_met")}


@pytest.fixture(scope="module")
def shipped():
    """The shipped cohort's point values beside the card, with the search's own target: the card's
    tolerance (at least half a printed unit). The judge of a reproduction is stricter (printed
    precision, tests/test_judge_by_hand.py); this checks that the search reached what it aimed at."""
    table = compare(run_plan(load_cohort(synthetic_path("ni2019_exact.csv")), card=CARD), CARD)
    table = table[table["part"] == "value"].copy()
    tol = {r.id: max(0.0 if r.tolerance != r.tolerance or r.tolerance is None else float(r.tolerance),
                     0.5 * 10.0 ** -int(r.decimals)) for r in CARD.numbers.itertuples()}
    table["searched"] = [x == x and _within(x, p, rel, tol[i]) for i, x, p, rel in
                         zip(table["id"], table["reproduced"], table["published"], table["relation"])]
    return table


def test_shipped_exact_cohort_reaches_its_targets_except_where_expected(shipped):
    computed = shipped[shipped["reproduced"].notna()]
    missed = set(computed.loc[~computed["searched"], "id"])
    # the counts the paper contradicts, and "approximately 66%" (the search aimed at 66 +- 0.5)
    expected = {i for i in CARD_INCONSISTENT if not i.startswith("t1.") or i.endswith(".pct")}
    assert missed == expected | {"salvage.eligible.pct_discussion"}, sorted(missed ^ expected)
    # the paper's self-contradictions: the cohort follows one side, the card names the other
    assert set(shipped.loc[shipped.verdict == "contradicted by the paper", "id"]) == CARD_INCONSISTENT


@pytest.mark.parametrize("id_", ["pattern.any.rate_12m", "pfs2.salvage_rt.p", "os.rt_vs_nonrt.p",
                                 "followup.median", "pattern.any.rate_24m", "pfs1.multi.histology.p",
                                 "pfs1.multi.response.p", "t3.uni.tumor_size.shr", "t3.uni.ecog.shr",
                                 "t3.uni.met_organs.shr", "t3.uni.sex.shr", "t3.multi.brain_met.shr",
                                 "t3.multi.histology.p", "t3.uni.age.p", "pfs1.bbm.prior_brain_rt.p", "pfs1.bbm.p",
                                 "pfs1.prior_rt.p", "t3.uni.histology.p", "t3.uni.brain_met.shr", "t3.uni.n_stage.shr",
                                 "t3.multi.tumor_size.p", "t3.multi.met_lesions.shr", "t3.multi.met_lesions.p",
                                 "t1.age.p", "t1.tumor_size.p", "t1.age.median.all", "pfs1.multi.met_organs.p",
                                 "pfs1.median.bbm_prior_brain_rt", "t3.uni.objective_response.p",
                                 "t3.uni.met_lesions.shr", "t3.uni.liver_met.p", "t3.uni.adrenal_met.p",
                                 "t3.uni.liver_met.shr", "t3.uni.ecog.p", "t3.uni.n_stage.p", "t3.multi.histology.shr",
                                 "pfs1.pattern.p", "response.pattern.p", "t3.uni.histology.shr",
                                 "t3.multi.brain_met.p", "t3.uni.adrenal_met.shr", "t3.multi.tumor_size.shr"])
def test_shipped_exact_cohort_reproduces_published_tests(shipped, id_):
    row = shipped.set_index("id").loc[id_]
    assert row.searched, (id_, row.published, row.reproduced)


def test_shipped_exact_cohort_counts_and_medians(shipped):
    counts = shipped[(shipped.method == "count") & ~shipped.id.isin(CARD_INCONSISTENT)]
    assert (counts.verdict != "differs").all(), counts.loc[counts.verdict == "differs", "id"].tolist()
    med = shipped[shipped.method == "km_median"].dropna(subset=["reproduced"])
    assert len(med) >= 9 and ((med.reproduced - med.published).abs() <= 0.5).all()


@pytest.mark.parametrize("p", [0.003, 0.021, 0.25, 0.731])
def test_zterm_scale_is_the_p_scale_above_the_target(p):
    # one unit of loss at p + scale exactly, for small p too (p is convex in |z|)
    from scipy.special import ndtri

    t = Target(p, 0.005)
    assert zterm(float(ndtri(1 - (p + 0.005) / 2)), t, 1.0) == pytest.approx(1.0, rel=1e-9)
    assert zterm(float(ndtri(1 - (p + 0.01) / 2)), t, 1.0) > 1.9


def test_zterm_is_zero_at_the_target_and_monotone_from_the_wrong_side():
    t = Target(0.006, 0.005)
    z0 = 2.7477813854449926  # ndtri(1 - 0.006 / 2)
    assert zterm(z0, t, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert zterm(-z0, t, -1.0) == pytest.approx(0.0, abs=1e-12)
    losses = [zterm(z, t, 1.0) for z in np.linspace(-2, z0, 30)]
    assert all(a > b for a, b in itertools.pairwise(losses))
    lt = Target(0.001, 0.005, "lt")
    assert zterm(5.0, lt, 1.0) == 0.0 and zterm(1.0, lt, 1.0) > 0
    assert term(np.nan, t) == 1e6 and term(0.2, Target(0.2, 0.1)) == 0.0


def test_km_lr_matches_the_batch_kernels_and_the_analysis_logrank():
    """Medians as the batch kernel; log-rank z as ``stats.logrank`` (one risk set per tied
    time, hypergeometric variance), so the search fits the p-value the analysis reports.
    Times rounded to whole months give many ties."""
    from failpattern.stats.logrank import logrank

    rng = np.random.default_rng(3)
    for digits in (2, 0):
        for _ in range(5):
            t = np.round(rng.exponential(10, 93), digits)
            e = rng.random(93) < 0.6
            km_m, g, lr_m = rng.random((4, 93)) < 0.6, rng.random((3, 93)) < 0.4, rng.random((3, 93)) < 0.8
            meds, z = km_lr(t, e, km_m, g, lr_m)
            np.testing.assert_allclose(meds, km_medians(np.broadcast_to(t, (4, 93)), np.broadcast_to(e, (4, 93)),
                                                        km_m))
            for k in range(3):
                m = lr_m[k]
                ref = logrank(t[m], e[m].astype(int), g[k][m].astype(int))
                np.testing.assert_allclose(z[k] ** 2, ref.statistic, rtol=1e-10)
                o_minus_e = ref.observed[1] - ref.expected[1]  # group 1 = True
                assert np.sign(z[k]) == np.sign(o_minus_e)
    # the row-by-row kernel (random mode, continuous days) differs once events tie
    t = np.repeat([1.0, 2.0, 3.0], 31)
    e = np.ones(93, bool)
    g = (np.arange(93) % 2 == 0)[None, :]
    ones = np.ones((1, 93), bool)
    assert abs(km_lr(t, e, ones, g, ones)[1][0] - logrank_z(t, e, g[0])[0]) > 1e-3


def _toy(seed):
    """A reduced problem: give 30 of 93 patients a covariate so its univariate Fine-Gray SHR
    and p match targets, by count-preserving swaps."""
    rng = np.random.default_rng(0)
    t = np.round(rng.exponential(12, 93), 2)
    cause = rng.choice([0, 1, 2], 93, p=[0.45, 0.3, 0.25])
    truth = np.zeros(93, bool)
    truth[rng.choice(93, 30, replace=False)] = True
    shr_t, z_t = fg_uni(truth, t, cause)  # a reachable target
    tg_shr, tg_p = Target(round(shr_t, 2), 0.025), Target(round(2 * ndtr(-abs(z_t)), 3), 0.005)
    x0 = np.zeros(93, bool)
    x0[:30] = True

    def parts_of(st, changed, old):
        shr, z = fg_uni(st["x"], t, cause)
        return {"fg": shr_terms(shr, z, tg_shr, tg_p)}

    def propose(rng, st, parts):
        x = st["x"]
        i = rng.choice(np.flatnonzero(x))
        j = rng.choice(np.flatnonzero(~x))
        new = x.copy()
        new[i], new[j] = False, True
        return {"x": new}, None

    st, parts = anneal(np.random.default_rng(seed), {"x": x0}, propose, parts_of, iters=600)
    return st["x"], parts, parts_of({"x": x0}, None, None), t, cause, tg_shr


def test_pattern_term_is_the_plans_logrank_beyond_the_goal():
    """The PFS1 stage's loss for "PFS1 not significantly different among OF / DF / ODF": zero
    while the plan's log-rank p is at least the goal, else the squared chi-square excess."""
    from scipy.special import chdtri

    from failpattern.stats import logrank

    rng = np.random.default_rng(0)
    n = 60
    pattern = np.repeat([0, 1, 2, 3], 15)  # 0: no progression (left out)
    prog = pattern > 0
    for shift, expect_zero in ((0.0, True), (8.0, False)):
        t = np.round(rng.exponential(10.0, n) + shift * (pattern == 1), 2)
        lr = logrank(t[prog], np.ones(prog.sum()), pattern[prog])
        want = max(lr.statistic - chdtri(2, 0.2), 0.0) ** 2
        assert (lr.p_value >= 0.2) == expect_zero
        assert pattern_term(t, prog, pattern, 0.2) == pytest.approx(want, rel=1e-10)
    # the shipped cohort meets the paper's claims (both p >= alpha)
    row = run_plan(load_cohort(synthetic_path("ni2019_exact.csv")), card=CARD)
    assert row.get("pfs1.pattern.p") >= 0.05 and row.get("response.pattern.p") >= 0.05


def test_late_of_term_pulls_the_latest_of_failure_to_the_end_of_follow_up():
    """The PFS1 stage prices the latest OF failure below LATE_OF_MONTHS (the N0 and ECOG rows
    rest on one OF failure that late), and the shipped cohort has one."""
    import pandas as pd

    from failpattern.simulate.generate import DPM

    n = 12
    pattern = np.array([1, 1, 1, 2, 2, 3, 3, 1, 0, 0, 0, 0])
    cx = {"prog": pattern > 0, "pd": np.zeros(n, bool), "bbm": np.arange(n) % 2 == 0,
          "brt": np.arange(n) % 4 == 0, "prt": np.arange(n) % 3 == 0, "pattern": pattern, "lag": np.full(n, 60)}
    parts_of, _, _ = pfs1_problem(CARD, cx)
    start = np.zeros(n, np.int64)  # followed from the first accrual day: 52.9 months
    pfs1 = np.round(np.array([3, 5, 40, 4, 9, 12, 20, 6, 0, 0, 0, 0]) * DPM).astype(np.int64)
    latest = float(months(pfs1[2]))
    assert parts_of({"start": start, "pfs1": pfs1}, None, None)["late_of"] == pytest.approx(
        ((LATE_OF_MONTHS - latest) / 0.5) ** 2)
    pfs1[4] = round(52.5 * DPM)  # a DF failure that late does not count
    assert parts_of({"start": start, "pfs1": pfs1}, None, None)["late_of"] > 500
    pfs1[2] = round(52.5 * DPM)
    assert parts_of({"start": start, "pfs1": pfs1}, None, None)["late_of"] == 0.0
    shipped = pd.read_csv(synthetic_path("ni2019_exact.csv"))
    assert shipped.loc[shipped.failure_pattern == "OF", "pfs1_months"].max() >= LATE_OF_MONTHS


def test_anneal_fits_a_reduced_problem_deterministically():
    x, parts, start, t, cause, tg_shr = _toy(5)
    assert x.sum() == 30
    assert parts["fg"] < start["fg"] and parts["fg"] <= 4.0  # within the card tolerance (2 half-tolerances)
    shr, _ = fg_uni(x, t, cause)
    assert abs(shr - tg_shr[0]) <= 0.05
    x2, *_ = _toy(5)
    np.testing.assert_array_equal(x, x2)
