"""The counting kernel against a hand-made table and a brute-force count."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from failpattern.stats._tables import step_lookup, time_table


def test_hand_table():
    # times 1 2 2 3 3 5; causes 1 0 2 1 1 0; groups 0 1 0 1 1 0
    tt = time_table(np.array([1, 2, 2, 3, 3, 5.0]), np.array([1, 0, 2, 1, 1, 0]),
                    group=np.array([0, 1, 0, 1, 1, 0]), n_groups=2)
    assert tt.time.tolist() == [1, 2, 3, 5]
    assert tt.at_risk[:, 0].tolist() == [3, 2, 1, 1]  # group 0: times 1, 2, 5
    assert tt.at_risk[:, 1].tolist() == [3, 3, 2, 0]  # group 1: times 2, 3, 3
    assert tt.events[:, 0, 1].tolist() == [0, 0, 2, 0]  # cause 1 in group 1 at t = 3
    assert tt.events[:, 1, 0].tolist() == [0, 1, 0, 0]  # cause 2 in group 0 at t = 2
    assert tt.censored.sum(axis=1).tolist() == [0, 1, 0, 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2)), min_size=1, max_size=40))
def test_matches_brute_force(obs):
    t = np.array([o[0] for o in obs], dtype=float)
    c = np.array([o[1] for o in obs])
    tt = time_table(t, c, n_causes=2)
    for j, tj in enumerate(tt.time):
        assert tt.at_risk[j, 0] == np.sum(t >= tj)
        for k in (1, 2):
            assert tt.events[j, k - 1, 0] == np.sum((t == tj) & (c == k))
        assert tt.censored[j, 0] == np.sum((t == tj) & (c == 0))
    assert np.array_equal(tt.time[tt.index], t)


def test_step_lookup_is_right_continuous():
    knots = np.array([1.0, 3.0])
    vals = np.array([0.8, 0.5])
    got = step_lookup(knots, vals, np.array([0.0, 1.0, 2.9, 3.0, 10.0]), before=1.0)
    assert got.tolist() == [1.0, 0.8, 0.8, 0.5, 0.5]
