"""The search's curve penalty: plateaus and clusters judged as simulate.plausibility judges them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from failpattern.simulate import simulate_many
from failpattern.simulate.generate import DPM
from failpattern.simulate.model import DEFAULT_PARAMS
from failpattern.simulate.plausibility import (
    CLUSTER_FROM_MONTHS,
    TAIL,
    course_arrays,
    curve_reference,
    curve_statistics,
)
from failpattern.simulate.reconstruct.run import CONCLUSION_COST, _Problem


def _reference():
    return curve_reference(DEFAULT_PARAMS, 93, np.random.default_rng(0), 300)


def test_p_values_are_the_share_of_random_cohorts_at_least_as_extreme():
    ref = _reference()
    batch = simulate_many(replicates=5, seed=4)
    stats = curve_statistics(course_arrays(batch))
    got = ref.p_values(stats)
    for j, col in enumerate(ref.stats.columns):
        dist = ref.stats[col].to_numpy()
        want = [(np.sum(dist >= v) + 1) / (len(dist) + 1) for v in stats[col]]
        assert np.allclose(got[:, j], want, rtol=0, atol=0), col


def test_a_cluster_of_progressions_costs_a_conclusion_and_typical_cohorts_little():
    ref = _reference()
    problem = object.__new__(_Problem)  # only the curve penalty is used
    problem.curves = ref
    batch = simulate_many(replicates=20, seed=5)
    typical = problem.curve_penalty(batch)
    # random cohorts are flagged somewhere now and then (about 1 statistic in 20), never everywhere
    assert np.median(typical) == 0.0
    # ten first progressions moved onto one day after the first scans: a cluster no random cohort has
    pfs1 = batch.pfs1_d.copy()
    r = 0
    who = np.flatnonzero(batch.pfs1_event[r] == 1)[:10]
    pfs1[r, who] = int((CLUSTER_FROM_MONTHS + 3) * DPM)
    packed = dataclasses.replace(batch, pfs1_d=pfs1)
    stats = curve_statistics(course_arrays(packed))
    assert stats[("cluster", "PFS1")].iloc[0] >= 10
    assert ref.p_values(stats)[0, list(ref.stats.columns).index(("cluster", "PFS1"))] <= TAIL
    assert problem.curve_penalty(packed)[0] >= CONCLUSION_COST + typical[0]


@pytest.mark.parametrize("kwargs, match", [({"n": 0}, "n: must be a positive integer"),
                                           ({"replicates": 2.5}, "replicates: must be a positive integer"),
                                           ({"rng": -1}, "seed: must be a non-negative integer")])
def test_curve_reference_refuses_bad_arguments_in_words(kwargs, match):
    from failpattern.errors import InputError

    args = {"n": 93, "rng": 0, "replicates": 10, **kwargs}
    with pytest.raises(InputError, match=match):
        curve_reference(DEFAULT_PARAMS, args["n"], args["rng"], args["replicates"])
