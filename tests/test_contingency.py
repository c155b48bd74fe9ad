"""Tests of failpattern.stats.contingency against R (tests/reference/contingency.R)."""

from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction
from math import factorial, prod

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failpattern.errors import InputError
from failpattern.stats import contingency as ct_module
from failpattern.stats import _fexact as fexact
from failpattern.stats.contingency import FISHER_WORKSPACE, ContingencyResult, contingency_test, crosstab_test
from fixtures import cases, dataset, reference

RTOL = 1e-9
CASES = cases("contingency")


def fixture_table(case: str) -> np.ndarray:
    dim = reference("contingency", case, "dim").astype(int)
    return reference("contingency", case, "observed").astype(np.int64).reshape(dim)


def ref(case: str, quantity: str) -> float:
    return float(reference("contingency", case, quantity)[0])


# ------------------------------------------------------------------ R fixtures

def test_fixture_has_the_paper_and_dataset_cases():
    for case in ("veteran_celltype_trt", "lung_sex_ph_ecog", "paper_brain_progression",
                 "paper_multiple_progression", "table1_brain_metastases", "medium_3x3"):
        assert case in CASES


@pytest.mark.parametrize("case", CASES)
def test_pearson_matches_r(case):
    res = contingency_test(fixture_table(case), method="pearson")
    assert res.method == "pearson"
    np.testing.assert_allclose(res.statistic, ref(case, "pearson_statistic"), rtol=RTOL)
    np.testing.assert_allclose(res.p_value, ref(case, "pearson_p"), rtol=RTOL)
    assert res.df == ref(case, "df")
    np.testing.assert_allclose(res.expected.ravel(), reference("contingency", case, "expected"),
                               rtol=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if (fixture_table(c).shape == (2, 2))])
def test_yates_matches_r(case):
    res = contingency_test(fixture_table(case), method="yates")
    assert res.method == "yates"
    np.testing.assert_allclose(res.statistic, ref(case, "yates_statistic"), rtol=RTOL)
    np.testing.assert_allclose(res.p_value, ref(case, "yates_p"), rtol=RTOL)


@pytest.mark.parametrize("case", CASES)
def test_fisher_p_matches_r(case):
    res = contingency_test(fixture_table(case), method="fisher")
    assert res.method == "fisher"
    assert np.isnan(res.statistic)
    np.testing.assert_allclose(res.p_value, ref(case, "fisher_p"), rtol=RTOL)


@pytest.mark.parametrize("case", [c for c in CASES if (fixture_table(c).shape == (2, 2))])
def test_fisher_odds_ratio_matches_r(case):
    res = contingency_test(fixture_table(case), method="fisher")
    tight, r_estimate = ref(case, "fisher_estimate_tight"), ref(case, "fisher_estimate")
    if np.isinf(tight) or tight == 0:
        assert res.odds_ratio == tight == r_estimate
    else:
        np.testing.assert_allclose(res.odds_ratio, tight, rtol=RTOL)
        # fisher.test itself stops uniroot at its default tolerance (~1.2e-4 on the scale)
        np.testing.assert_allclose(res.odds_ratio, r_estimate, rtol=1e-4)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method, prefix", [("g", "g"), ("n-1", "n_minus_1")])
def test_g_and_n_minus_1_match_r_formulas(case, method, prefix):
    res = contingency_test(fixture_table(case), method=method)
    assert res.method == method and res.requested == method and res.reason == "requested"
    assert res.df == ref(case, "df")
    np.testing.assert_allclose(res.statistic, ref(case, f"{prefix}_statistic"), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(res.p_value, ref(case, f"{prefix}_p"), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("case", CASES)
def test_g_and_n_minus_1_match_scipy(case):
    from scipy.stats import chi2, chi2_contingency

    table = fixture_table(case)
    g_stat, g_p, g_df, g_expected = chi2_contingency(table, correction=False, lambda_="log-likelihood")
    g = contingency_test(table, method="g")
    np.testing.assert_allclose(g.statistic, g_stat, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g.p_value, g_p, rtol=1e-10, atol=1e-13)
    assert g.df == g_df
    np.testing.assert_allclose(g.expected, g_expected, rtol=1e-12)
    x2 = chi2_contingency(table, correction=False)[0]
    n = table.sum()
    n1 = contingency_test(table, method="n-1")
    np.testing.assert_allclose(n1.statistic, x2 * (n - 1) / n, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(n1.p_value, chi2.sf(x2 * (n - 1) / n, n1.df), rtol=1e-10, atol=1e-13)


def test_hand_computed_g_and_n_minus_1():
    # [[3, 1], [1, 3]]: E = 2 everywhere; G = 2 (2 * 3 ln 1.5 + 2 * 1 ln 0.5) = 12 ln 1.5 - 4 ln 2
    from math import log

    from scipy.special import erfc
    g = contingency_test([[3, 1], [1, 3]], method="g")
    assert g.statistic == pytest.approx(12 * log(1.5) - 4 * log(2), rel=1e-13)
    assert g.p_value == pytest.approx(erfc((g.statistic / 2) ** 0.5), rel=1e-12)
    n1 = contingency_test([[3, 1], [1, 3]], method="n-1")
    assert n1.statistic == pytest.approx(2.0 * 7 / 8, rel=1e-15)  # X2 = 2, N = 8
    assert n1.p_value == pytest.approx(erfc((7 / 8) ** 0.5), rel=1e-12)
    # a zero cell contributes nothing to G (0 ln 0 = 0): only the three non-zero cells count
    z = contingency_test([[7, 0], [2, 5]], method="g")
    e = z.expected
    assert z.statistic == pytest.approx(2 * (7 * log(7 / e[0, 0]) + 2 * log(2 / e[1, 0]) + 5 * log(5 / e[1, 1])),
                                        rel=1e-13)
    # independence: both statistics 0, p = 1
    for method in ("g", "n-1"):
        res = contingency_test([[2, 4], [3, 6]], method=method)
        assert res.statistic == pytest.approx(0.0, abs=1e-13) and res.p_value == pytest.approx(1.0)


def test_table1_p_values_by_n_minus_1():
    # Ni et al. 2019 Table 1: sex 0.079, lung 0.069, adrenal 0.086 are the N-1 chi-square
    # (SPSS's Linear-by-Linear Association row for a 2 x 2 table), not Pearson, Yates or Fisher.
    for case, printed in (("table1_sex", 0.079), ("table1_lung_metastases", 0.069),
                          ("table1_adrenal_metastases", 0.086)):
        table = fixture_table(case)
        assert round(contingency_test(table, method="n-1").p_value, 3) == printed, case
        for other in ("pearson", "yates", "fisher", "g"):
            assert round(contingency_test(table, method=other).p_value, 3) != printed, (case, other)


count_tables = st.integers(2, 4).flatmap(
    lambda r: st.integers(2, 4).flatmap(
        lambda c: st.lists(st.lists(st.integers(0, 30), min_size=c, max_size=c), min_size=r, max_size=r)
    )
).map(np.array).filter(lambda t: (t.sum(axis=0) > 0).all() and (t.sum(axis=1) > 0).all())


@settings(max_examples=60, deadline=None)
@given(count_tables)
def test_n_minus_1_is_scaled_pearson_and_never_more_significant(table):
    pearson = contingency_test(table, method="pearson")
    n1 = contingency_test(table, method="n-1")
    n = table.sum()
    assert n1.df == pearson.df
    assert n1.statistic == pytest.approx(pearson.statistic * (n - 1) / n, rel=1e-13, abs=1e-15)
    assert 0.0 <= pearson.p_value <= n1.p_value <= 1.0
    g = contingency_test(table, method="g")
    assert g.statistic >= 0.0 and 0.0 <= g.p_value <= 1.0 and g.df == pearson.df
    assert contingency_test(table.T, method="g").p_value == pytest.approx(g.p_value, rel=1e-10, abs=1e-14)


def test_auto_never_picks_g_or_n_minus_1():
    for case in CASES:
        assert contingency_test(fixture_table(case), method="auto").method in ("pearson", "fisher")


def test_larger_tables_report_no_odds_ratio():
    assert np.isnan(contingency_test(fixture_table("small_3x3"), method="fisher").odds_ratio)


def test_dataset_tables_are_the_ones_r_used():
    vet = dataset("veteran")
    res = crosstab_test(vet["celltype"], vet["trt"], method="fisher")
    np.testing.assert_array_equal(res.observed, fixture_table("veteran_celltype_trt"))
    assert res.row_labels == ("adeno", "large", "smallcell", "squamous")
    np.testing.assert_allclose(res.p_value, ref("veteran_celltype_trt", "fisher_p"), rtol=RTOL)
    lung = dataset("lung").dropna(subset=["ph_ecog"])
    res = crosstab_test(lung["sex"], lung["ph_ecog"], method="pearson")
    np.testing.assert_array_equal(res.observed, fixture_table("lung_sex_ph_ecog"))
    np.testing.assert_allclose(res.p_value, ref("lung_sex_ph_ecog", "pearson_p"), rtol=RTOL)
    assert res.observed[:, 3].sum() == 1  # the sparse ph_ecog = 3 column


def test_paper_brain_progression_p_values_are_fisher():
    # Ni et al. 2019 print p = 0.012 (17/35 vs 13/58) and p = 0.002 (15/17 vs 4/13).
    for case, printed in (("paper_brain_progression", 0.012), ("paper_multiple_progression", 0.002)):
        table = fixture_table(case)
        assert round(contingency_test(table, method="fisher").p_value, 3) == printed
        assert round(contingency_test(table, method="pearson").p_value, 3) != printed
        assert round(contingency_test(table, method="yates").p_value, 3) != printed
    # Table 1, presence of brain metastases (13/51 non-RT vs 22/42 RT): printed p = 0.010
    table = fixture_table("table1_brain_metastases")
    assert round(contingency_test(table, method="fisher").p_value, 3) == 0.010
    assert round(contingency_test(table, method="pearson").p_value, 3) != 0.010


# ------------------------------------------------------------------ hand-computed

def test_hand_computed_2x2():
    # [[3, 1], [1, 3]]: margins all 4, E = 2 in every cell.
    res = contingency_test([[3, 1], [1, 3]], method="pearson")
    np.testing.assert_allclose(res.expected, np.full((2, 2), 2.0))
    assert res.statistic == pytest.approx(2.0, rel=1e-15)  # 4 * 1^2 / 2
    from scipy.special import erfc
    assert res.p_value == pytest.approx(erfc(1.0), rel=1e-12)  # P(chi2_1 > 2) = erfc(1)
    yates = contingency_test([[3, 1], [1, 3]], method="yates")
    assert yates.statistic == pytest.approx(0.5, rel=1e-15)  # 4 * 0.5^2 / 2
    assert yates.p_value == pytest.approx(erfc(0.5), rel=1e-12)
    # hypergeometric weights C(4,x) C(4,4-x) for x = 0..4: 1, 16, 36, 16, 1 (of 70);
    # x = 3 has 16, so p = (1 + 16 + 16 + 1) / 70
    fisher = contingency_test([[3, 1], [1, 3]], method="fisher")
    assert fisher.p_value == pytest.approx(34 / 70, rel=1e-12)


def test_odds_ratio_at_ends_of_support():
    assert contingency_test([[5, 0], [0, 5]], method="fisher").odds_ratio == np.inf
    assert contingency_test([[0, 5], [5, 0]], method="fisher").odds_ratio == 0.0


def test_odds_ratio_is_one_when_observed_equals_null_mean():
    assert contingency_test([[4, 4], [4, 4]]).odds_ratio == pytest.approx(1.0, rel=1e-12)


# ------------------------------------------------------------------ brute-force Fisher

def brute_force_fisher(table: np.ndarray) -> float:
    """Exact Fisher p by listing every table with the observed margins (rational arithmetic)."""
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    n = int(table.sum())
    const = Fraction(prod(factorial(int(v)) for v in rows) * prod(factorial(int(v)) for v in cols),
                     factorial(n))

    def prob(t):
        denominator = 1
        for v in t.ravel():
            denominator *= factorial(int(v))
        return const / denominator

    r, c = table.shape
    ranges = [range(min(rows[i], cols[j]) + 1) for i in range(r - 1) for j in range(c - 1)]
    probs = []
    for free in itertools.product(*ranges):
        t = np.zeros((r, c), dtype=np.int64)
        t[:-1, :-1] = np.reshape(free, (r - 1, c - 1))
        t[:-1, -1] = rows[:-1] - t[:-1, :-1].sum(axis=1)
        t[-1, :] = cols - t[:-1, :].sum(axis=0)
        if (t >= 0).all() and t[-1].sum() == rows[-1]:
            probs.append(prob(t))
    assert sum(probs) == 1
    observed = prob(table)
    limit = observed * Fraction(10**7 + 1, 10**7)
    return float(sum(p for p in probs if p <= limit))


small_tables = st.integers(2, 3).flatmap(
    lambda r: st.integers(2, 3).flatmap(
        lambda c: st.lists(st.lists(st.integers(0, 5), min_size=c, max_size=c), min_size=r, max_size=r)
    )
).map(np.array).filter(lambda t: (t.sum(axis=0) > 0).all() and (t.sum(axis=1) > 0).all())


@settings(max_examples=40, deadline=None)
@given(small_tables.filter(lambda t: t.sum() <= 24))
def test_fisher_equals_brute_force_enumeration(table):
    res = contingency_test(table, method="fisher")
    assert res.p_value == pytest.approx(brute_force_fisher(table), rel=1e-10)


@settings(max_examples=40, deadline=None)
@given(small_tables.filter(lambda t: t.shape == (2, 2)))
def test_network_algorithm_agrees_with_hypergeometric_on_2x2(table):
    assert fexact.fisher_rxc(table)[0] == pytest.approx(ct_module._fisher_2x2(table), rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=4), st.data())
def test_bounds_and_compositions_equal_brute_force(caps, data):
    total = data.draw(st.integers(0, sum(caps)))
    lf = np.array([np.log(float(factorial(k))) for k in range(40)])
    every = [xs for xs in itertools.product(*[range(c + 1) for c in caps]) if sum(xs) == total]
    listed = fexact._compositions(total, caps)
    assert sorted(map(tuple, listed.tolist())) == sorted(every)
    values = [sum(lf[x] for x in xs) for xs in every]
    low, high = fexact._extremes(total, tuple(caps), lf)
    assert low == pytest.approx(min(values), abs=1e-12)
    assert high == pytest.approx(max(values), abs=1e-12)


# ------------------------------------------------------------------ invariants

@settings(max_examples=60, deadline=None)
@given(small_tables)
def test_transpose_and_permutation_leave_p_unchanged(table):
    for method in ("pearson", "fisher"):
        p = contingency_test(table, method=method).p_value
        assert 0.0 <= p <= 1.0
        assert contingency_test(table.T, method=method).p_value == pytest.approx(p, rel=1e-10, abs=1e-14)
        flipped = table[::-1, ::-1]
        assert contingency_test(flipped, method=method).p_value == pytest.approx(p, rel=1e-10, abs=1e-14)


@settings(max_examples=40, deadline=None)
@given(small_tables.filter(lambda t: t.shape == (2, 2)))
def test_yates_is_never_more_significant_than_pearson(table):
    yates = contingency_test(table, method="yates")
    pearson = contingency_test(table, method="pearson")
    assert 0.0 <= yates.p_value <= 1.0
    assert yates.p_value >= pearson.p_value - 1e-15
    # swapping the rows of a 2x2 table inverts the conditional odds ratio
    swapped = contingency_test(table[::-1], method="fisher").odds_ratio
    if 0 < yates.odds_ratio < np.inf:
        assert swapped == pytest.approx(1.0 / yates.odds_ratio, rel=1e-9)


# ------------------------------------------------------------------ auto rule

def test_auto_2x2_uses_fisher_when_an_expected_count_is_below_5():
    res = contingency_test(fixture_table("paper_multiple_progression"), method="auto")
    assert res.expected.min() < 5
    assert res.method == "fisher" and res.requested == "auto"
    assert res.p_value == contingency_test(fixture_table("paper_multiple_progression"),
                                           method="fisher").p_value
    assert "expected" in res.reason


def test_auto_2x2_uses_pearson_when_all_expected_at_least_5():
    res = contingency_test(fixture_table("paper_brain_progression"), method="auto")
    assert res.expected.min() >= 5
    assert res.method == "pearson"
    np.testing.assert_allclose(res.p_value, ref("paper_brain_progression", "pearson_p"), rtol=RTOL)


def test_auto_larger_table_rules():
    # 1 of 10 expected counts < 5 (E = 2, 10%), none < 1: Pearson
    one_small = np.array([[28, 28, 28, 30, 6], [10, 10, 10, 8, 2]])
    res = contingency_test(one_small, method="auto")
    assert (res.expected < 5).sum() == 1 and res.expected.min() >= 1
    assert res.method == "pearson"
    # 4 of 6 expected counts < 5 (more than 20%): Fisher
    two_small = np.array([[20, 4, 3], [20, 4, 3]])
    assert contingency_test(two_small, method="auto").method == "fisher"
    # one expected count < 1 (0.5 of 6 cells is < 20%): Fisher
    tiny = np.array([[30, 30, 1], [30, 30, 0]])
    res = contingency_test(tiny, method="auto")
    assert res.expected.min() < 1 and res.method == "fisher"
    assert "< 1" in res.reason
    # the lung 2 x 4 table has a column of 1 patient
    assert contingency_test(fixture_table("lung_sex_ph_ecog"), method="auto").method == "fisher"


# ------------------------------------------------------------------ result object

def test_result_is_frozen_and_arrays_read_only():
    res = contingency_test([[17, 18], [13, 45]])
    assert isinstance(res, ContingencyResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.p_value = 0.5
    with pytest.raises(ValueError):
        res.expected[0, 0] = 1.0
    with pytest.raises(ValueError):
        res.observed[0, 0] = 1


def test_summary_and_to_frame():
    frame = pd.DataFrame([[17, 18], [13, 45]], index=["BBM", "no BBM"], columns=["brain PD", "other"])
    res = contingency_test(frame, method="fisher")
    summary = res.summary
    assert summary.shape[0] == 1
    assert summary.loc[0, "p_value"] == res.p_value and summary.loc[0, "method"] == "fisher"
    assert summary.loc[0, "n"] == 93
    cells = res.to_frame()
    assert list(cells["row"]) == ["BBM", "BBM", "no BBM", "no BBM"]
    assert list(cells["column"]) == ["brain PD", "other", "brain PD", "other"]
    np.testing.assert_array_equal(cells["observed"], [17, 18, 13, 45])
    np.testing.assert_allclose(cells["expected"], res.expected.ravel())


def test_crosstab_matches_table():
    x = ["a"] * 17 + ["a"] * 18 + ["b"] * 13 + ["b"] * 45
    y = [1] * 17 + [0] * 18 + [1] * 13 + [0] * 45
    res = crosstab_test(x, y, method="fisher")
    np.testing.assert_array_equal(res.observed, [[18, 17], [45, 13]])
    assert res.col_labels == (0, 1)
    np.testing.assert_allclose(res.p_value, ref("paper_brain_progression", "fisher_p"), rtol=RTOL)


# ------------------------------------------------------------------ bounded cost (workspace rule)

RXC_CASES = [c for c in CASES if fixture_table(c).shape != (2, 2)]
LARGE_3X2 = np.array([[31_000, 17_900], [14_700, 8_500], [17_300, 10_600]])  # n = 100,000


def test_r_by_c_fixtures_are_exact_well_inside_the_default_workspace():
    assert len(RXC_CASES) >= 8
    for case in RXC_CASES:
        p, charged = fexact.fisher_rxc(fixture_table(case))
        assert charged <= FISHER_WORKSPACE // 50, case
        np.testing.assert_allclose(p, ref(case, "fisher_p"), rtol=RTOL)


@pytest.mark.parametrize("case", ["medium_3x3", "associated_3x4", "wide_2x6", "veteran_celltype_trt"])
def test_workspace_boundary_is_exact_at_the_charge_and_asymptotic_one_cell_below(case):
    table = fixture_table(case)
    charged = fexact.fisher_rxc(table, workspace=10**12)[1]
    assert fexact.fisher_rxc(table, workspace=charged)[1] == charged  # the charge depends only on the table
    at = contingency_test(table, method="fisher", workspace=charged)
    assert at.method == "fisher" and at.reason == "requested" and np.isnan(at.statistic)
    np.testing.assert_allclose(at.p_value, ref(case, "fisher_p"), rtol=RTOL)
    below = contingency_test(table, method="fisher", workspace=charged - 1)
    pearson = contingency_test(table, method="pearson")
    assert below.method == "pearson" and below.requested == "fisher"
    assert (below.p_value, below.statistic) == (pearson.p_value, pearson.statistic)
    assert f"workspace={charged - 1:,} cells" in below.reason and "asymptotic Pearson" in below.reason
    with pytest.raises(fexact.WorkspaceExceeded) as err:
        fexact.fisher_rxc(table, workspace=charged - 1)
    assert err.value.needed > charged - 1 and err.value.workspace == charged - 1


def test_large_table_falls_back_to_the_named_asymptotic_test():
    res = contingency_test(LARGE_3X2, method="fisher")
    pearson = contingency_test(LARGE_3X2, method="pearson")
    assert res.method == "pearson" and res.requested == "fisher" and res.n == 100_000
    assert res.reason.startswith("Fisher's exact test requested, but the exact r x c enumeration needs more than "
                                 f"workspace={FISHER_WORKSPACE:,} cells")
    assert (res.p_value, res.statistic) == (pearson.p_value, pearson.statistic)
    assert res.summary.loc[0, "method"] == "pearson" and "workspace" in res.summary.loc[0, "reason"]
    auto = contingency_test([[1, 0, 0], [30_000, 20_000, 10_000], [25_000, 15_000, 12_000]], method="auto")
    assert auto.method == "pearson" and auto.requested == "auto"  # the rule chose Fisher (expected counts < 1)
    assert auto.reason.startswith("Fisher's exact test chosen (3 expected count(s) < 1), but")
    # large n alone is not the rule: a 3 x 2 table whose small row keeps the enumeration short stays exact
    assert contingency_test([[2, 0], [80_700, 46_800], [95_000, 57_900]], method="auto").method == "fisher"
    assert contingency_test([[80_000, 40_000], [30_000, 50_000]], method="fisher").method == "fisher"  # 2 x 2


def test_memory_is_bounded_by_the_workspace_not_by_n():
    import tracemalloc

    workspace = 2**20
    for scale in (1, 10):  # n = 100,000 and 1,000,000: the quadratic enumeration would need GBs and TBs
        tracemalloc.start()
        try:
            res = contingency_test(LARGE_3X2 * scale, method="fisher", workspace=workspace)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert res.method == "pearson"
        assert peak < 3 * 8 * workspace + 8 * 16 * res.n  # a few copies of the budget + O(n) log-factorials


def test_compositions_charge_before_allocating():
    caps, total = (4, 5, 6), 7
    listed = fexact._compositions(total, caps)
    budget = fexact._Budget(listed.size, columns=1)
    assert np.array_equal(fexact._compositions(total, caps, budget), listed) and budget.used == listed.size
    with pytest.raises(fexact.WorkspaceExceeded):
        fexact._compositions(total, caps, fexact._Budget(listed.size - 1, columns=1))
    huge = fexact._Budget(10**6, columns=1)
    with pytest.raises(fexact.WorkspaceExceeded):  # C(200004, 4) rows: refused before listing any
        fexact._compositions(200_000, (10**6,) * 5, huge)
    assert huge.used == 0


def _fisher_2x3_by_listing(table: np.ndarray) -> float:
    """Exact p of a 2 x 3 table by listing every (x1, x2) of its first row (O(n^2), vectorised)."""
    from scipy.special import gammaln

    (r1, _), cols = table.sum(axis=1), table.sum(axis=0)
    x1, x2 = np.meshgrid(np.arange(cols[0] + 1), np.arange(cols[1] + 1), indexing="ij")
    x3 = r1 - x1 - x2
    ok = (x3 >= 0) & (x3 <= cols[2])
    first = np.stack([x1[ok], x2[ok], x3[ok]], axis=1)
    v = gammaln(first + 1.0).sum(axis=1) + gammaln(cols - first + 1.0).sum(axis=1)
    v_obs = gammaln(table + 1.0).sum()
    logp = -v
    keep = v >= v_obs - np.log1p(1e-7)
    return float(np.exp(logp[keep] - logp.max()).sum() / np.exp(logp - logp.max()).sum())


@pytest.mark.parametrize("table", [[[310, 179, 147], [85, 173, 106]], [[1722, 985, 807], [468, 950, 579]],
                                   [[0, 40, 3], [12, 2, 0]], [[500, 1, 499], [2, 3, 1]]])
def test_network_algorithm_equals_listing_on_larger_2x3_tables(table):
    """The enumeration's last free column (whose child has one completion) against a listing."""
    table = np.array(table)
    res = contingency_test(table, method="fisher")
    assert res.method == "fisher"
    assert res.p_value == pytest.approx(_fisher_2x3_by_listing(table), rel=1e-9)


@pytest.mark.parametrize("workspace", [0, -5, 1.5, True, "big"])
def test_invalid_workspace(workspace):
    with pytest.raises(InputError, match="workspace"):
        contingency_test([[1, 2, 3], [4, 5, 6]], method="fisher", workspace=workspace)


# ------------------------------------------------------------------ validation

@pytest.mark.parametrize("table, fragment", [
    ([[1, -2], [3, 4]], "negative"),
    ([[1, 2.5], [3, 4]], "not whole numbers"),
    ([[1, np.nan], [3, 4]], "missing (NaN)"),
    ([[1, np.inf], [3, 4]], "infinite"),
    ([[0, 0], [3, 4]], "row 0 sum(s) to zero"),
    ([[0, 2], [0, 4]], "column 0 sum(s) to zero"),
    ([1, 2, 3, 4], "1 dimension"),
    (np.ones((2, 2, 2)), "3 dimension"),
    ([[1, 2, 3]], "at least 2 rows and 2 columns"),
    ("1 2; 3 4", "string"),
    ([["a", 2], [3, 4]], "not numeric"),
])
def test_invalid_tables(table, fragment):
    with pytest.raises(InputError, match="table") as err:
        contingency_test(table)
    assert fragment in str(err.value)


def test_error_names_cell_and_value():
    frame = pd.DataFrame([[3, 1], [2, -1]], index=["RT", "non-RT"], columns=["yes", "no"])
    with pytest.raises(InputError) as err:
        contingency_test(frame)
    assert "[row 'non-RT', column 'no'] = -1" in str(err.value)
    with pytest.raises(InputError) as err:
        contingency_test(pd.DataFrame([[3, 0], [2, 0]], columns=["yes", "no"]))
    assert "column 'no'" in str(err.value)


def test_yates_refuses_larger_tables():
    with pytest.raises(InputError, match="2 x 2 tables only"):
        contingency_test(fixture_table("veteran_celltype_trt"), method="yates")


def test_unknown_method():
    with pytest.raises(InputError, match="method"):
        contingency_test([[1, 2], [3, 4]], method="chisq")
    with pytest.raises(InputError, match="method"):
        contingency_test([[1, 2], [3, 4]], method="n_minus_1")  # the aggregate column name, not the method
    with pytest.raises(InputError, match="method"):
        crosstab_test([1, 2], [1, 2], method="g-test")


def test_crosstab_validation():
    with pytest.raises(InputError, match="x: 1 value"):
        crosstab_test(["a", None, "b"], [1, 2, 1])
    with pytest.raises(InputError, match="same length"):
        crosstab_test(["a", "b", "b"], [1, 2])
    with pytest.raises(InputError, match="y: needs at least 2 groups"):
        crosstab_test(["a", "b", "b"], [1, 1, 1])
