"""Simulated cohorts with the published characteristics of a study (Ni et al. 2019 by default).

Why: the individual data of the paper are not public. A generative model of the
whole patient course (baseline -> PFS1 -> failure pattern and sites -> salvage
RT / CBPD -> PFS2 -> OS), calibrated to the study card, gives cohorts on which
every analysis can be run, tested and taught. ``mode="random"`` draws cohorts
from the model (counts right on average); ``mode="exact"`` reconstructs the
study's patients (:mod:`failpattern.simulate.reconstruct`): every published count
exactly, clinically plausible, and times searched until the paper's printed
numbers come out of the analysis plan. See ``docs/simulator.md``.

>>> from failpattern.simulate import simulate
>>> df = simulate(seed=1)                      # 93 patients, cohort format
>>> exact = simulate(mode="exact", seed=1)     # the published patients, reconstructed
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd

from failpattern.errors import InputError
from failpattern.simulate.calibrate import CalibrationResult, calibrate, target_table
from failpattern.simulate.frame import to_frame
from failpattern.simulate.generate import Batch, draw_batch
from failpattern.simulate.model import (
    DEFAULT_PARAMS,
    PARAM_INFO,
    Params,
    parameter_table,
)
from failpattern.simulate.plausibility import PlausibilityResult, plausibility

__all__ = [
    "DEFAULT_PARAMS",
    "PARAM_INFO",
    "Batch",
    "CalibrationResult",
    "Params",
    "PlausibilityResult",
    "calibrate",
    "parameter_table",
    "plausibility",
    "simulate",
    "simulate_many",
    "target_table",
    "to_frame",
]

MODES = ("random", "exact")


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputError(f"seed: must be a non-negative integer or a numpy Generator; got {seed!r}")
    return np.random.default_rng(seed)


@lru_cache(maxsize=8)
def _load(name: str):
    from failpattern.study import load_study

    return load_study(name)


def _card(study):
    """The study card; a card named or given by path is read once (cards are immutable)."""
    from failpattern.study.card import StudyCard

    if isinstance(study, StudyCard):
        return study
    return _load(str(study))


def _check_n(n, name="n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"{name}: must be a positive integer; got {n!r}")
    return int(n)


def simulate_many(study="ni2019", n: int | None = None, *, replicates: int, seed=None,
                  params: Params | None = None) -> Batch:
    """Draw many random cohorts at once, as arrays (no DataFrame until asked).

    Parameters
    ----------
    study : str, path or StudyCard
        The study whose size is the default ``n`` (``"ni2019"``).
    n : int, optional
        Patients per cohort (the study's ``cohort.enrolled.n`` by default).
    replicates : int
        Number of cohorts.
    seed : int or numpy.random.Generator, optional
        Same seed, same cohorts.
    params : Params, optional
        Model parameters; :data:`DEFAULT_PARAMS` (fitted to ni2019) by default.

    Returns
    -------
    Batch
        Arrays of shape ``(replicates, n)``; ``to_frame(batch, i)`` gives cohort ``i``.
    """
    replicates = _check_n(replicates, "replicates")
    if n is None:
        n = int(_card(study).get("cohort.enrolled.n").value)
    n = _check_n(n)
    from failpattern.study.design import design_for

    return draw_batch(DEFAULT_PARAMS if params is None else params, _rng(seed), replicates, n,
                      design=design_for(_card(study)))


def simulate(study="ni2019", n: int | None = None, seed=None, mode: str = "random",
             params: Params | None = None, progress: Callable | None = None) -> pd.DataFrame:
    """One simulated cohort in the cohort format (passes :func:`failpattern.cohort.load_cohort`).

    Parameters
    ----------
    study : str, path or StudyCard
        The study card (``"ni2019"``); gives the default ``n`` and, in exact
        mode, every number to reproduce.
    n : int, optional
        Number of patients (the study's ``cohort.enrolled.n``, 93, by default).
        Exact mode supports only the study's own size.
    seed : int or numpy.random.Generator, optional
        Same seed, same cohort (byte for byte when written with ``to_csv``).
    mode : {"random", "exact"}
        ``random``: a draw from the calibrated model. ``exact``: the study's
        patients reconstructed (:func:`failpattern.simulate.reconstruct.reconstruct`,
        about 40 s of CPU): the published counts exactly, every clinical rule of
        :func:`failpattern.cohort.check_clinical`, and as many printed numbers as
        the search reaches.
    params : Params, optional
        Model parameters; :data:`DEFAULT_PARAMS` by default. For another study use
        ``calibrate(card).params``.
    progress : callable, optional
        Exact mode only: called after each search step with a
        :class:`~failpattern.simulate.reconstruct.SearchProgress`.

    Returns
    -------
    pandas.DataFrame
        One row per patient, every column of ``docs/cohort-format.md``.

    Raises
    ------
    InputError
        Unknown mode, bad ``n`` or ``seed``, exact mode with ``n`` other than
        the study's size, or a card whose counts cannot all hold (the conflicting
        numbers are named).
    """
    if mode not in MODES:
        raise InputError(f"mode: must be one of {', '.join(MODES)}; got {mode!r}")
    card = _card(study)
    size = int(card.get("cohort.enrolled.n").value)
    n = size if n is None else _check_n(n)
    rng = _rng(seed)
    p = DEFAULT_PARAMS if params is None else params
    if mode == "exact":
        from failpattern.simulate.reconstruct import reconstruct

        if n != size:
            raise InputError(f"n: exact mode reproduces the study's {size} patients; got n={n}")
        return reconstruct(card, rng, params=p, progress=progress).frame
    from failpattern.study.design import design_for

    return to_frame(draw_batch(p, rng, 1, n, design=design_for(card)), 0)
