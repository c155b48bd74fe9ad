"""Exact mode's last stage (``_exact_repair``): which numbers it calls outside, and what it repairs.

The state is rebuilt from the shipped exact cohort. The perturbation moves
non-adenocarcinoma from an OF failure to a censored patient of the same RT group, which
takes the univariate histology row far from its published SHR of 0.19.
"""

from __future__ import annotations

import importlib
from math import comb

import numpy as np
import pytest
from exact_state import canonical_frame, covariate_state

from failpattern.simulate._exact_cov import _site_violations
from failpattern.simulate._exact_repair import (
    _kept_placements,
    outside_ids,
    placements,
    repair_covariates,
)
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
    """The repair's own verdict matches ``failpattern check``'s on every number it scores."""
    cx, st = covariate_state(perturbed)
    ours = outside_ids(CARD, cx, st)
    table = compare(run_plan(perturbed), CARD).set_index("id")
    scored = [i for i in table.index if i.startswith(("t3.", "pfs1.multi.", "t1.tumor_size."))]
    assert len(scored) == 44 + 3 + 4  # Table 3, the Cox p-values, Table 1's tumour size
    theirs = [i for i in scored if table.at[i, "verdict"] == "outside"]
    assert "t3.uni.histology.shr" in ours  # the perturbation did move a number out
    assert sorted(ours) == sorted(theirs)


def test_repair_draws_nothing_when_no_covariate_number_is_outside(monkeypatch):
    repair = importlib.import_module("failpattern.simulate._exact_repair")  # the package exports a simulate()

    cx, st = covariate_state(canonical_frame())
    assert outside_ids(CARD, cx, st) == ["t3.multi.tumor_size.shr"]  # the shipped cohort's one miss
    monkeypatch.setattr(repair, "outside_ids", lambda card, cx, st: [])
    rng = np.random.default_rng(4)
    before = rng.bit_generator.state
    assert repair_covariates(rng, CARD, cx, st, iters=500) is st
    assert rng.bit_generator.state == before
    monkeypatch.undo()
    assert repair_covariates(rng, CARD, cx, st, iters=0) is st  # 0 moves: the stage is off
    assert rng.bit_generator.state == before


def test_repair_brings_the_univariate_histology_row_back_and_keeps_counts(perturbed):
    cx, st = covariate_state(perturbed)
    before = outside_ids(CARD, cx, st)
    kept = _kept_placements(CARD, cx, st, "non_adeno")
    assert kept is not None and 0 < len(kept) < comb(80, 1) * comb(13, 2)
    new = repair_covariates(np.random.default_rng(3), CARD, cx, st, iters=600)
    after = outside_ids(CARD, cx, new)
    assert len(after) < len(before)
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
    from failpattern.simulate import DEFAULT_PARAMS
    from failpattern.simulate.exact import exact_batch

    with pytest.raises(InputError, match=r"fit_iters: must be 5 non-negative integers .*got \("):
        exact_batch(DEFAULT_PARAMS, np.random.default_rng(1), CARD, fit_iters=fit_iters)
