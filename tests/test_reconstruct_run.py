"""The reconstruction end to end: skeleton, details, latent times, search; plausible by construction."""

from __future__ import annotations

import numpy as np
import pytest

from failpattern.cohort import check_clinical, load_cohort
from failpattern.simulate.reconstruct.run import batch_values, plan_values, reconstruct
from failpattern.simulate.reconstruct.targets import distances, targets_for
from failpattern.study import load_study
from skeletons import few_rounds, skeleton

CARD = load_study("ni2019")


@pytest.fixture(scope="module")
def short():
    """A short reconstruction (one skeleton of few improvement rounds, a few steps), and the same again."""
    with few_rounds(2):
        runs = [reconstruct(CARD, np.random.default_rng(11), skeletons=1, steps=4, batch=4) for _ in range(2)]
    return runs


def test_same_seed_same_cohort(short):
    a, b = short
    assert a.frame.equals(b.frame) and a.loss == b.loss


def test_reconstruction_is_a_valid_cohort_that_breaks_no_clinical_rule(short):
    frame = short[0].frame
    cohort = load_cohort(frame)
    assert len(cohort.data) == CARD.get("cohort.enrolled.n").value
    violations = check_clinical(frame, CARD)
    assert violations.empty, violations.message.tolist()
    # the printed ranges of age and tumour size are reached, not only respected
    for col, id_ in (("age_years", "t1.age.median.all"), ("primary_tumor_size_cm", "t1.tumor_size.median.all")):
        n = CARD.get(id_)
        assert frame[col].min() == n.range_lower and frame[col].max() == n.range_upper


def test_search_history_never_worsens_and_counts_are_met(short):
    r = short[0]
    assert np.all(np.diff(r.history) <= 1e-12)
    assert r.targets_met <= r.n_targets
    # every count the skeleton holds is a target met
    t = targets_for(CARD).table
    assert r.targets_met >= int((t["kind"] == "count").sum())


def test_batched_values_equal_the_plans_cohort_by_cohort(short):
    from failpattern.simulate.generate import draw_batch
    from failpattern.simulate.model import DEFAULT_PARAMS

    targets = targets_for(CARD)
    batch = draw_batch(DEFAULT_PARAMS, np.random.default_rng(2), 3, 93)
    a, b = batch_values(batch, CARD, targets), plan_values(batch, CARD, targets)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    assert np.allclose(a[ok], b[ok], rtol=1e-8, atol=0)
    assert np.array_equal(distances(targets, a) == 0, distances(targets, b) == 0)


@pytest.mark.parametrize("call, match", [
    (lambda: reconstruct(CARD, -1, skeletons=1, steps=1, batch=2), "seed"),
    (lambda: reconstruct(CARD, 1, skeletons=0, steps=1, batch=2), "skeletons"),
    (lambda: reconstruct(CARD, 1, skeletons=1, steps=1, batch=2.5), "batch"),
    (lambda: reconstruct("no-such-card", 1, skeletons=1, steps=1, batch=2), "no-such-card"),
])
def test_bad_arguments_are_clear_errors(call, match):
    from failpattern.errors import InputError

    with pytest.raises(InputError, match=match):
        call()


def test_bad_inputs_of_the_batched_plan_and_the_clinical_check():
    import pandas as pd

    from failpattern.errors import InputError
    from failpattern.study.plan_batch import run_plan_batch

    with pytest.raises(InputError, match="Batch.*run_plan"):
        run_plan_batch(pd.DataFrame())
    with pytest.raises(InputError, match="frame: a pandas DataFrame"):
        check_clinical([1, 2, 3])


def test_details_are_matched_to_the_of_cells_table_3_implies():
    from failpattern.simulate.model import DEFAULT_PARAMS
    from failpattern.simulate.reconstruct.assemble import baseline_details
    from failpattern.simulate.reconstruct.counts import implied_events
    from failpattern.simulate.reconstruct.run import match_details
    from failpattern.study import design_for

    rng = np.random.default_rng(3)
    skel = skeleton(1)
    drawn = baseline_details(skel, DEFAULT_PARAMS, design_for(CARD), rng)
    got = match_details(CARD, skel, drawn, rng)
    of, rt, t34 = skel.pattern == 1, skel.rt == 1, skel.t34 == 1
    for col, cut, ratio, above in (("age", 50, 0.55, lambda v: v > 50), ("size", 3.5, 2.74, lambda v: v >= 3.5)):
        x = above(got[col])
        assert (x & of).sum() == implied_events(ratio, int(x.sum()), 93 - int(x.sum()), int(of.sum())), col
        for g in (rt, ~rt):  # the RT groups keep their values (medians, ranges)
            assert np.array_equal(np.sort(got[col][g]), np.sort(drawn[col][g]))
    assert np.array_equal(got["t_stage"] >= 3, t34)  # sizes moved with their T stage, within T1-2 or T3-4
