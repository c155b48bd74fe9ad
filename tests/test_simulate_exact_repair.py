"""Exact mode's last stage (``_exact_repair``): which numbers it calls outside, and what it repairs.

The state is rebuilt from the shipped exact cohort. The perturbation moves
non-adenocarcinoma from an OF failure to a censored patient of the same RT group, which
takes the univariate histology row far from its published SHR of 0.19.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from exact_state import canonical_frame, covariate_state

from failpattern.simulate._exact_cov import _SITES, _site_violations
from failpattern.simulate._exact_repair import (
    _distance,
    _kept_placements,
    _rank,
    _swap_families,
    outside_ids,
    placements,
    repair_covariates,
    swap_descent,
)
from failpattern.simulate._exact_solo import swapped_state
from failpattern.study import compare, load_study, run_plan

CARD = load_study("ni2019")


def _histology_on_censored(f):
    """``f`` with histology 'other' moved from the first OF failure carrying it to a
    censored patient of the same RT group (one OF failure keeps it, so the row stays
    estimable)."""
    f = f.copy()
    other = f.index[(f.histology != "adenocarcinoma") & (f.failure_pattern == "OF")][:1]
    censored = f.index[(f.pfs1_event == 0) & (f.histology == "adenocarcinoma")]
    for i in other:
        j = next(j for j in censored if f.at[j, "any_rt"] == f.at[i, "any_rt"] and f.at[j, "histology"] != "other")
        f.loc[[i, j], "histology"] = f.loc[[j, i], "histology"].to_numpy()
    return f


@pytest.fixture(scope="module")
def perturbed():
    return _histology_on_censored(canonical_frame())


def test_placements_are_every_placement_keeping_the_count_in_each_rt_group():
    cx = {"rt": np.array([0, 0, 0, 0, 1, 1, 1])}
    st = {"x": np.array([1, 0, 1, 0, 0, 1, 0], np.int8)}
    rows = placements(st, cx, "x")
    assert rows.shape == (comb(4, 2) * comb(3, 1), 7)
    assert len({r.tobytes() for r in rows}) == rows.shape[0]
    assert (rows[:, :4].sum(axis=1) == 2).all() and (rows[:, 4:].sum(axis=1) == 1).all()
    assert placements(st, cx, "x", limit=17) is None


def test_outside_ids_are_the_checks_covariate_numbers_outside(perturbed):
    """The repair's own verdict matches the analysis plan's values, judged at the search's own
    target (the card's tolerance, at least half a printed unit), on every number it scores."""
    from failpattern.simulate._exact_repair import _within

    cx, st = covariate_state(perturbed)
    ours = outside_ids(CARD, cx, st)
    table = compare(run_plan(perturbed), CARD)
    table = table[table["part"] == "value"].set_index("id")
    scored = [i for i in table.index if i.startswith(("t3.", "pfs1.multi.", "t1.tumor_size."))]
    assert len(scored) == 44 + 3 + 4  # Table 3, the Cox p-values, Table 1's tumour size
    card = CARD.numbers.set_index("id")

    def missed(i):
        tol = max(float(card.at[i, "tolerance"]), 0.5 * 10.0 ** -int(card.at[i, "decimals"]))
        x = float(table.at[i, "reproduced"])
        return not (x == x and _within(x, float(table.at[i, "published"]), table.at[i, "relation"], tol))

    theirs = [i for i in scored if missed(i)]
    assert "t3.uni.histology.shr" in ours  # the perturbation did move a number out
    assert sorted(ours) == sorted(theirs)


def test_repair_draws_nothing_when_no_covariate_number_is_outside(perturbed):
    cx, st = covariate_state(canonical_frame())
    assert outside_ids(CARD, cx, st) == []  # the shipped cohort: nothing outside
    rng = np.random.default_rng(4)
    before = rng.bit_generator.state
    assert repair_covariates(rng, CARD, cx, st, iters=500) is st
    assert rng.bit_generator.state == before
    cx, st = covariate_state(perturbed)
    assert outside_ids(CARD, cx, st)
    assert repair_covariates(rng, CARD, cx, st, iters=0) is st  # 0 moves: the stage is off
    assert rng.bit_generator.state == before


def test_repair_brings_the_univariate_histology_row_back_and_keeps_counts(perturbed):
    cx, st = covariate_state(perturbed)
    before = outside_ids(CARD, cx, st)
    kept = _kept_placements(CARD, cx, st, "non_adeno")
    assert kept is not None and 0 < len(kept) < comb(80, 1) * comb(13, 2)
    new = repair_covariates(np.random.default_rng(3), CARD, cx, st, iters=600)
    after = outside_ids(CARD, cx, new)
    assert len(before) == 11
    # the third chain's single-swap descent takes its last two numbers in (>= 3 organs,
    # tumour size); the first two chains end with 1 and 3 outside
    assert after == []
    assert not {"t3.uni.histology.shr", "t3.uni.histology.p"} & set(after)
    assert any(np.array_equal(new["non_adeno"], r) for r in kept)  # moved only among kept placements
    for k in st:
        for g in (0, 1):
            m = cx["rt"] == g
            same = sorted(st[k][m]) == sorted(new[k][m])
            assert same or k in ("resp", "size"), k  # response is swapped across groups; sizes step by 0.1 cm
        assert k == "size" or sorted(st[k]) == sorted(new[k]), k
    assert np.array_equal(new["lines"], st["lines"])  # lines set the lag to crizotinib: never moved
    assert _site_violations(new, cx) == 0
    again = repair_covariates(np.random.default_rng(3), CARD, cx, st, iters=600)
    assert all(np.array_equal(new[k], again[k]) for k in new)


@pytest.mark.parametrize("fit_iters", [(300, 300, 300, 300), (300, 300, 300, 300, -1), (1, 1, 1, 1, 1.5)])
def test_exact_batch_names_a_bad_fit_iters(fit_iters):
    from failpattern.errors import InputError
    from failpattern.simulate.exact import EXACT_PARAMS, exact_batch

    with pytest.raises(InputError, match=r"fit_iters: must be 5 non-negative integers .*got \("):
        exact_batch(EXACT_PARAMS, np.random.default_rng(1), CARD, fit_iters=fit_iters)


def test_distance_and_rank_on_hand_examples():
    two_sided, below = (2.45, 0.05, "eq"), (0.001, 0.0005, "lt")
    assert _distance(2.55, two_sided) == pytest.approx(2.0)
    assert _distance(2.40, two_sided) == pytest.approx(1.0)
    assert _distance(0.0001, below) == 0.0  # inside a one-sided bound: no distance at all
    assert _distance(0.002, below) == pytest.approx(2.0)
    assert _distance(float("nan"), two_sided) == float("inf")
    tg = {"a": two_sided, "b": below, "c": (1.0, 0.1, "eq")}
    # a outside by 1 tolerance beyond its edge, b inside, c inside at 0.5 tolerance
    assert _rank({"a": 2.55, "b": 0.0002, "c": 1.05}, tg) == pytest.approx((1, 2.0, 0.5))
    assert _rank({"a": 2.45, "b": 0.0002, "c": 1.0}, tg) == (0, 0.0, 0.0)


def test_swap_families_list_every_allowed_swap():
    # patients 0-3 without RT, 4-6 with; >= 3 organs: 0 (brain and three sites) and 4; 1 has two sites
    cx = {"rt": np.array([0, 0, 0, 0, 1, 1, 1]), "bbm": np.array([1, 0, 0, 0, 0, 0, 0], bool),
          "pd": np.array([0, 0, 0, 1, 0, 0, 0], bool)}
    zero = np.zeros(7, np.int8)
    st = {"organs3": np.array([1, 0, 0, 0, 1, 0, 0], np.int8), "lung": np.array([1, 1, 0, 0, 1, 0, 0], np.int8),
          "liver": np.array([1, 1, 0, 0, 0, 0, 0], np.int8), "adrenal": np.array([1, 0, 0, 0, 0, 0, 0], np.int8),
          "bone": zero, "resp": np.array([0, 2, 1, 3, 2, 2, 0]), "size": np.array([4.0, 2.0, 3.5, 1.0, 2.0, 3.6, 5.0])}
    fam = {moved: {tuple(p) for p in pairs} for moved, pairs in _swap_families(cx, st, ("organs3", "resp", "size"))}
    # alone, 0 cannot give up >= 3 organs (four flagged sites); with the sites it can, except
    # to 1 (0's brain flag stays, and with 1's two sites 0 would hold three)
    assert fam[("organs3",)] == {(4, 5), (4, 6)}
    assert fam[("organs3", "lung", "liver", "adrenal", "bone")] == {(0, 2), (0, 3), (4, 5), (4, 6)}
    # response across RT groups among patients not progressing at the first scan (3 is PD)
    assert fam[("resp",)] == {(i, j) for i in (0, 2, 6) for j in (1, 4, 5)}
    # tumour size across the 3.5 cm cut, within each RT group
    assert fam[("size",)] == {(0, 1), (0, 3), (2, 1), (2, 3), (5, 4), (6, 4)}


def test_swap_descent_finds_the_swap_that_brings_the_number_back():
    cx, st = covariate_state(canonical_frame())
    assert outside_ids(CARD, cx, st) == []
    assert swap_descent(CARD, cx, st) is st  # nothing outside: nothing to do
    # two non-RT patients exchange tumour sizes across the 3.5 cm cut: the multivariable
    # lesion SHR leaves its tolerance
    assert cx["rt"][15] == cx["rt"][10] == 0 and (st["size"][15] >= 3.5) != (st["size"][10] >= 3.5)
    bad = swapped_state(st, ("size",), 15, 10)
    assert outside_ids(CARD, cx, bad) == ["t3.multi.met_lesions.shr"]
    new = swap_descent(CARD, cx, bad)
    assert outside_ids(CARD, cx, new) == []
    changed = [k for k in st if not np.array_equal(new[k], bad[k])]
    assert changed and set(changed) <= {"non_adeno", "size", "organs3", "lesions6", "resp", *_SITES}
    # one round sufficed: one swap, so two patients exchanged their values of the moved keys
    moved = {tuple(np.flatnonzero(np.asarray(new[k]) != np.asarray(bad[k]))) for k in changed}
    assert len(moved) == 1 and len(next(iter(moved))) == 2
    for k in changed:
        if k != "resp":
            for g in (0, 1):
                m = cx["rt"] == g
                assert sorted(new[k][m]) == sorted(bad[k][m]), k
    assert _site_violations(new, cx) == 0
    kept = swap_descent(CARD, cx, bad, fixed=("size",))  # sizes stay where they are
    assert np.array_equal(kept["size"], bad["size"])
