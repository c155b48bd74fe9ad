"""Log-rank test: R survdiff (tests/reference/logrank.csv), hand example, input rules, properties.

Fleming-Harrington weights: ``rho`` against R ``survdiff(rho = 0.5 / 1)`` (the ``_rho*``
cases of the fixture); ``gamma`` has no survival-package reference (survdiff has ``rho``
only), so it is checked against examples computed by hand from the formula
``w(t) = S(t-)^rho (1 - S(t-))^gamma`` and against a direct per-time loop.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failpattern.errors import InputError
from failpattern.stats._tables import time_table
from failpattern.stats.fit import logrank_fit
from failpattern.stats.logrank import logrank
from fixtures import dataset, reference

RTOL = 1e-10  # observed max relative error against R is ~1e-14


def _lung(group):
    lung = dataset("lung").dropna(subset=[group])  # R script drops the one NA ph_ecog row alike
    return lung["time"], lung["event"], lung[group], None


def _veteran(group, strata=None):
    vet = dataset("veteran")
    return vet["time"], vet["event"], vet[group], None if strata is None else vet[strata]


def _input(case):
    got = [reference("logrank", case, f"input_{q}") for q in ("time", "event", "group")]
    strata = reference("logrank", case, "input_stratum") if case == "sparse_strata" else None
    return (*got, strata)


RHO_CASES = [(case, rho) for case in ("lung_sex", "lung_ecog", "veteran_celltype",
                                      "veteran_trt_by_celltype", "zero_expected", "sparse_strata")
             for rho in ("0.5", "1")]


R_CASES = {
    "lung_sex": lambda: _lung("sex"),
    "lung_ecog": lambda: _lung("ph_ecog"),
    "veteran_celltype": lambda: _veteran("celltype"),
    "veteran_trt_by_celltype": lambda: _veteran("trt", "celltype"),
    "zero_expected": lambda: _input("zero_expected"),
    "sparse_strata": lambda: _input("sparse_strata"),
}


@pytest.mark.parametrize("case", sorted(R_CASES))
def test_matches_r_survdiff(case):
    time, event, group, strata = R_CASES[case]()
    res = logrank(time, event, group, strata=strata)
    ref = lambda q: reference("logrank", case, q)  # noqa: E731
    assert res.statistic == pytest.approx(ref("chisq")[0], rel=RTOL)
    assert res.df == ref("df")[0]
    assert res.p_value == pytest.approx(ref("p")[0], rel=RTOL)
    np.testing.assert_array_equal(res.n, ref("n"))
    np.testing.assert_array_equal(res.observed, ref("obs"))
    np.testing.assert_allclose(res.expected, ref("exp"), rtol=RTOL, atol=1e-14)


@pytest.mark.parametrize("case, rho", RHO_CASES)
def test_matches_r_survdiff_rho(case, rho):
    time, event, group, strata = R_CASES[case]()
    res = logrank(time, event, group, strata=strata, rho=float(rho))
    ref = lambda q: reference("logrank", f"{case}_rho{rho}", q)  # noqa: E731
    assert res.statistic == pytest.approx(ref("chisq")[0], rel=RTOL)
    assert res.df == ref("df")[0]
    assert res.p_value == pytest.approx(ref("p")[0], rel=RTOL)
    np.testing.assert_array_equal(res.n, ref("n"))
    # survdiff(rho = ) reports the weighted observed and expected counts
    np.testing.assert_allclose(res.observed, ref("obs"), rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(res.expected, ref("exp"), rtol=RTOL, atol=1e-14)
    assert (res.rho, res.gamma) == (float(rho), 0.0)


def test_veteran_celltype_summary_as_r_prints():
    res = logrank(*_veteran("celltype")[:3])
    summary = res.summary
    assert list(summary.index) == ["adeno", "large", "smallcell", "squamous"]
    assert list(summary.columns) == ["n", "observed", "expected", "(O-E)^2/E", "(O-E)^2/V"]
    o, e = (reference("logrank", "veteran_celltype", q) for q in ("obs", "exp"))
    np.testing.assert_allclose(summary["(O-E)^2/E"], (o - e) ** 2 / e, rtol=RTOL)
    frame = res.to_frame()
    assert (frame["df"] == 3).all() and (frame["statistic"] == res.statistic).all()
    assert res.variance.shape == (4, 4) and np.allclose(res.variance.sum(axis=1), 0)
    assert "df=3" in repr(res)


def test_hand_example():
    # A: 1 (event), 3 (event); B: 2 (event), 4 (censored).  Per event time, for group A:
    #   t=1: n=4, nA=2, d=1 -> E=1/2, V = d(n-d)/(n-1) * (nA/n)(1-nA/n) = 1 * 1/4
    #   t=2: n=3, nA=1, d=1 -> E=1/3, V = 1 * (1/3)(2/3) = 2/9
    #   t=3: n=2, nA=1, d=1 -> E=1/2, V = 1 * 1/4
    # O_A = 2, E_A = 4/3, V = 13/18, chisq = (2/3)^2 / (13/18) = 8/13
    res = logrank([1, 3, 2, 4], [1, 1, 1, 0], ["A", "A", "B", "B"])
    assert res.statistic == pytest.approx(8 / 13, rel=1e-14)
    np.testing.assert_allclose(res.expected, [4 / 3, 5 / 3], rtol=1e-14)
    np.testing.assert_allclose(res.variance, [[13 / 18, -13 / 18], [-13 / 18, 13 / 18]], rtol=1e-14)
    assert res.df == 1 and res.n_strata == 1


def test_hand_example_gamma():
    # The data of test_hand_example. Pooled KM just before each event time:
    #   S(1-) = 1, S(2-) = 1 - 1/4 = 3/4, S(3-) = (1 - 1/4)(1 - 1/3) = 1/2.
    # rho = 0, gamma = 1: w = 1 - S = 0, 1/4, 1/2.  Group A (events at 1 and 3):
    #   O_A = 0 + 1/2 = 1/2;  E_A = 0 * 1/2 + 1/4 * 1/3 + 1/2 * 1/2 = 1/3;  O - E = 1/6
    #   V = w^2 d(n-d)/(n-1) (nA/n)(1 - nA/n) = 0 + 1/16 * 2/9 + 1/4 * 1/4 = 11/144
    #   chisq = (1/6)^2 / (11/144) = 4/11.  Group B: O_B = 1/4, E_B = 5/12.
    time, event, group = [1, 3, 2, 4], [1, 1, 1, 0], ["A", "A", "B", "B"]
    res = logrank(time, event, group, gamma=1)
    assert res.statistic == pytest.approx(4 / 11, rel=1e-14)
    np.testing.assert_allclose(res.observed, [1 / 2, 1 / 4], rtol=1e-14)
    np.testing.assert_allclose(res.expected, [1 / 3, 5 / 12], rtol=1e-14)
    np.testing.assert_allclose(res.variance, [[11 / 144, -11 / 144], [-11 / 144, 11 / 144]],
                               rtol=1e-14)
    assert (res.df, res.rho, res.gamma) == (1, 0.0, 1.0)
    assert "gamma=1" in repr(res)
    # rho = 1, gamma = 1: w = S(1 - S) = 0, 3/16, 1/4.
    #   O_A = 1/4;  E_A = 3/16 * 1/3 + 1/4 * 1/2 = 3/16;  O - E = 1/16
    #   V = 9/256 * 2/9 + 1/16 * 1/4 = 3/128;  chisq = (1/256) / (3/128) = 1/6
    #   O_B = 3/16 (B dies at 2);  E_B = 3/16 * 2/3 + 1/4 * 1/2 = 1/4
    res = logrank(time, event, group, rho=1, gamma=1)
    assert res.statistic == pytest.approx(1 / 6, rel=1e-14)
    np.testing.assert_allclose(res.observed, [1 / 4, 3 / 16], rtol=1e-14)
    np.testing.assert_allclose(res.expected, [3 / 16, 1 / 4], rtol=1e-14)
    np.testing.assert_allclose(res.variance[0, 0], 3 / 128, rtol=1e-14)


def test_hand_example_gamma_ties_and_strata():
    # Stratum 1: A dies at 1, 2; B dies at 2, censored at 3. Stratum 2: A dies at 1, B at 2.
    # rho = 0, gamma = 1, S restarted per stratum, tied deaths share S(t-):
    #   s1: t=1 n=4 (A2,B2) d=1 S-=1 w=0;  t=2 n=3 (A1,B2) d=2 S-=3/4 w=1/4
    #       O_A = 1/4, E_A = 1/4 * 2 * 1/3 = 1/6, V = 1/16 * 2*1/2 * (1/3)(2/3) = 1/72
    #   s2: t=1 n=2 w=0; t=2 n=1 d=1 S-=1/2 w=1/2: E_B += 1/2, V += 0 (n = 1)
    #       O_A = 0, E_A = 0
    # O_A - E_A = 1/12, V_AA = 1/72, chisq = (1/144) / (1/72) = 1/2
    time = [1, 2, 2, 3, 1, 2]
    event = [1, 1, 1, 0, 1, 1]
    group = ["A", "A", "B", "B", "A", "B"]
    strata = [1, 1, 1, 1, 2, 2]
    res = logrank(time, event, group, strata=strata, gamma=1)
    assert res.statistic == pytest.approx(1 / 2, rel=1e-14)
    np.testing.assert_allclose(res.observed, [1 / 4, 1 / 4 + 1 / 2], rtol=1e-14)
    np.testing.assert_allclose(res.expected, [1 / 6, 1 / 3 + 1 / 2], rtol=1e-14)
    np.testing.assert_allclose(res.variance[0, 0], 1 / 72, rtol=1e-14)


def test_zero_weights_are_the_plain_test_bit_for_bit():
    for case in ("lung_ecog", "veteran_trt_by_celltype", "sparse_strata", "zero_expected"):
        time, event, group, strata = R_CASES[case]()
        plain = logrank(time, event, group, strata=strata)
        zero = logrank(time, event, group, strata=strata, rho=0, gamma=0.0)
        assert zero.statistic == plain.statistic and zero.p_value == plain.p_value
        for field in ("observed", "expected", "variance", "n"):
            np.testing.assert_array_equal(getattr(zero, field), getattr(plain, field))
        assert (plain.rho, plain.gamma) == (0.0, 0.0) and repr(zero) == repr(plain)


def test_weight_is_one_while_pooled_survival_is_one():
    # every event at each stratum's first event time: S(t-) = 1 there, so with gamma = 0
    # any rho gives weight 1 and the plain test; with gamma > 0 every weight is 0
    time = [2, 2, 2, 5, 7, 3, 3, 4, 9]
    event = [1, 1, 1, 0, 0, 1, 1, 0, 0]
    group = [1, 2, 1, 2, 1, 1, 2, 2, 1]
    strata = [0, 0, 0, 0, 0, 1, 1, 1, 1]
    plain = logrank(time, event, group, strata=strata)
    for rho in (0.5, 1, 3):
        res = logrank(time, event, group, strata=strata, rho=rho)
        assert res.statistic == pytest.approx(plain.statistic, rel=1e-14)
        np.testing.assert_allclose(res.expected, plain.expected, rtol=1e-14)
        np.testing.assert_allclose(res.observed, plain.observed, rtol=1e-14)
    res = logrank(time, event, group, strata=strata, gamma=0.5)
    assert (res.statistic, res.df, res.p_value) == (0.0, 0, 1.0)
    np.testing.assert_array_equal(res.expected, [0.0, 0.0])


def test_logrank_fit_passes_the_weights():
    time, event, group, strata = R_CASES["veteran_trt_by_celltype"]()
    labels, codes = np.unique(np.asarray(group), return_inverse=True)
    _, s_codes = np.unique(np.asarray(strata), return_inverse=True)
    want = logrank(time, event, group, strata=strata, rho=0.5, gamma=2)
    got = logrank_fit(np.asarray(time, float), np.asarray(event, np.int64), codes.astype(np.int64),
                      labels, strata=s_codes.astype(np.int64), rho=0.5, gamma=2)
    assert got.statistic == want.statistic and (got.rho, got.gamma) == (0.5, 2.0)
    np.testing.assert_array_equal(got.expected, want.expected)


def test_only_one_group_at_risk_at_events_is_zero_on_zero_df():
    # group 2 is censored before every event: E = 0; R prints Chisq = 0 on 0 df, p = 1
    res = logrank([1, 2, 3, 0.5], [1, 1, 0, 0], [1, 1, 1, 2])
    assert (res.statistic, res.df, res.p_value) == (0.0, 0, 1.0)


def test_result_is_frozen():
    res = logrank([1, 2, 3, 4], [1, 1, 1, 0], [0, 1, 0, 1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.statistic = 0.0
    with pytest.raises(ValueError):
        res.expected[0] = 0.0


@pytest.mark.parametrize("kwargs, words", [
    ({"group": [1, 1, 1, 1]}, "at least 2 groups"),
    ({"event": [0, 0, 0, 0]}, "all observations are censored"),
    ({"group": [1, None, 2, 2]}, "missing"),
    ({"group": [1, 2, 2]}, "same length"),
    ({"strata": [1, 1, 2]}, "same length"),
    ({"strata": [1, np.nan, 2, 2]}, "missing"),
    ({"time": [1, -2, 3, 4]}, "negative"),
    ({"time": [1, np.nan, 3, 4]}, "missing"),
    ({"time": [1, np.inf, 3, 4]}, "infinite"),
    ({"event": [1, 3, 0, 1]}, "0 \\(censored\\) or 1"),
    ({"time": [], "event": [], "group": []}, "empty"),
])
def test_bad_input_raises(kwargs, words):
    args = {"time": [1, 2, 3, 4], "event": [1, 1, 0, 1], "group": [1, 2, 1, 2]} | kwargs
    strata = args.pop("strata", None)
    with pytest.raises(InputError, match=words):
        logrank(args["time"], args["event"], args["group"], strata=strata)


@pytest.mark.parametrize("name, value, shown", [
    ("rho", -0.5, "-0.5"), ("rho", np.nan, "nan"), ("rho", np.inf, "inf"), ("rho", "one", "'one'"),
    ("rho", None, "None"), ("rho", True, "True"), ("gamma", -1, "-1"), ("gamma", -np.inf, "-inf"),
    ("gamma", [1], "\\[1\\]"),
])
def test_bad_weight_exponent_raises(name, value, shown):
    with pytest.raises(InputError, match=f"^{name}: must be a finite number >= 0, got {shown}$"):
        logrank([1, 2, 3, 4], [1, 1, 0, 1], [1, 2, 1, 2], **{name: value})


# ---------------------------------------------------------------- properties

samples = st.lists(st.tuples(st.integers(0, 20), st.booleans(), st.integers(0, 2),
                             st.integers(0, 1)), min_size=2, max_size=40)


def _arrays(rows):
    time, event, group, stratum = np.array(rows, dtype=float).T
    return time, event, group, stratum


def _usable(event, group):
    return event.any() and np.unique(group).size >= 2


@settings(max_examples=60, deadline=None)
@given(samples, st.floats(0.01, 1000), st.randoms(use_true_random=False), st.booleans())
def test_rescaling_and_reordering_leave_the_test_unchanged(rows, c, rnd, stratified):
    time, event, group, stratum = _arrays(rows)
    if not _usable(event, group):
        return
    strata = stratum if stratified else None
    order = list(range(len(rows)))
    rnd.shuffle(order)
    a = logrank(time, event, group, strata=strata)
    b = logrank(time * c, event, group, strata=strata)
    p = logrank(time[order], event[order], group[order],
                strata=None if strata is None else strata[order])
    for other in (b, p):
        assert other.statistic == pytest.approx(a.statistic, rel=1e-9, abs=1e-12)
        assert other.df == a.df
        np.testing.assert_allclose(other.expected, a.expected, rtol=1e-12)
    assert a.statistic >= -1e-12 and 0.0 <= a.p_value <= 1.0
    # observed and expected totals agree (sum of O - E is 0)
    assert a.observed.sum() == pytest.approx(a.expected.sum(), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(samples)
def test_relabelling_groups_does_not_change_the_test(rows):
    time, event, group, _ = _arrays(rows)
    if not _usable(event, group):
        return
    a = logrank(time, event, group)
    b = logrank(time, event, np.array(["z", "y", "x"])[group.astype(int)])  # reverses the order
    assert b.statistic == pytest.approx(a.statistic, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(b.expected[::-1], a.expected, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.booleans(), st.integers(0, 2), st.integers(0, 3)),
                min_size=2, max_size=50))
def test_strata_folding_matches_one_table_per_stratum(rows):
    # independent check of the strata folded into the time axis: a dense
    # (time, stratum x group) table, expected = sum d * n_g / n over (time, stratum)
    time, event, group, stratum = _arrays(rows)
    if not _usable(event, group):
        return
    res = logrank(time, event, group, strata=stratum)
    _, g = np.unique(group, return_inverse=True)
    _, s = np.unique(stratum, return_inverse=True)
    k, n_s = g.max() + 1, s.max() + 1
    table = time_table(time, event.astype(np.int64), n_causes=1, group=s * k + g, n_groups=n_s * k)
    risk = table.at_risk.reshape(-1, n_s, k).astype(float)
    deaths = table.all_events.reshape(-1, n_s, k).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = risk.sum(axis=2, keepdims=True)
        share = np.where(total > 0, risk / total, 0.0)
    np.testing.assert_allclose(res.expected, (deaths[..., None] * share).sum(axis=(0, 1)),
                               rtol=1e-12, atol=1e-12)


def _fh_by_loop(time, event, group, stratum, rho, gamma):
    """Weighted O - E and variance by a direct loop over strata and distinct times."""
    labels = np.unique(group)
    k = labels.size
    diff, var = np.zeros(k), np.zeros((k, k))
    for s in np.unique(stratum):
        t, e, g = time[stratum == s], event[stratum == s], group[stratum == s]
        surv = 1.0
        for u in np.unique(t):
            at_risk = np.array([np.sum((t >= u) & (g == lab)) for lab in labels], float)
            dead = np.array([np.sum((t == u) & (e == 1) & (g == lab)) for lab in labels], float)
            n, d = at_risk.sum(), dead.sum()
            w = surv ** rho * (1 - surv) ** gamma
            if d > 0:
                p = at_risk / n
                diff += w * (dead - d * p)
                if n > 1:
                    var += w * w * d * (n - d) / (n - 1) * (np.diag(p) - np.outer(p, p))
            surv *= 1 - d / n
    return diff, var


@settings(max_examples=40, deadline=None)
@given(samples, st.sampled_from([(0.5, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (2.0, 0.5)]),
       st.booleans())
def test_weighted_matches_a_direct_loop(rows, exponents, stratified):
    time, event, group, stratum = _arrays(rows)
    if not _usable(event, group):
        return
    if not stratified:
        stratum = np.zeros_like(stratum)
    rho, gamma = exponents
    res = logrank(time, event, group, strata=stratum if stratified else None, rho=rho, gamma=gamma)
    diff, var = _fh_by_loop(time, event, group, stratum, rho, gamma)
    np.testing.assert_allclose(res.observed - res.expected, diff, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.variance, var, rtol=1e-10, atol=1e-12)
    assert res.statistic >= -1e-12 and 0.0 <= res.p_value <= 1.0
