"""trusted_cohort: the loader's cohort for a frame failpattern generated, without the file checks."""

import numpy as np
import pandas as pd
import pytest

from failpattern.cohort import load_cohort, trusted_cohort
from failpattern.simulate import simulate
from failpattern.study import load_study, run_plan

CARD = load_study("ni2019")


@pytest.mark.parametrize("mode, seed, n", [("random", 1, 93), ("random", 5, 40), ("random", 9, 3), ("exact", 1, 93)])
def test_equals_the_loaders_cohort_and_plan(mode, seed, n):
    if mode == "exact":
        from failpattern._resources import synthetic_path

        frame = pd.read_csv(synthetic_path("ni2019_exact.csv"), dtype={"patient_id": str})
    else:
        frame = simulate(CARD, n=n, seed=np.random.default_rng(seed), mode=mode)
    loaded, trusted = load_cohort(frame), trusted_cohort(frame)
    pd.testing.assert_frame_equal(loaded.data, trusted.data)
    assert (loaded.columns_present, loaded.derived, loaded.lines) == \
        (trusted.columns_present, trusted.derived, trusted.lines)
    pd.testing.assert_frame_equal(run_plan(loaded, card=CARD).values, run_plan(trusted, card=CARD).values)


def test_only_format_columns():
    frame = simulate(CARD, n=5, seed=np.random.default_rng(2), mode="random").assign(my_notes="x")
    with pytest.raises(KeyError):
        trusted_cohort(frame)
