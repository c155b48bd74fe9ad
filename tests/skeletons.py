"""Count skeletons shared by the reconstruction tests.

A skeleton costs 15-20 s of CPU (most of it the rounds that bring its soft cells toward the
counts the published ratios imply), so a skeleton that tests only read is solved once per
process (:func:`skeleton`), and a test about what every skeleton must satisfy (its counts,
rules, determinism) may solve with fewer improvement rounds (:func:`few_rounds`): the counts
and rules hold after every round by construction, since each round starts from a solution.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import pytest

from failpattern.simulate.reconstruct import counts
from failpattern.study import load_study

CARD = load_study("ni2019")


@lru_cache(maxsize=None)
def skeleton(seed: int):
    """The skeleton of the ni2019 card for ``default_rng(seed)``, solved once per process."""
    return counts.solve_counts(CARD, np.random.default_rng(seed))


@contextmanager
def few_rounds(rounds: int = 1):
    """Skeletons solved inside use at most ``rounds`` improvement rounds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(counts, "IMPROVE_ROUNDS", rounds)
        yield
