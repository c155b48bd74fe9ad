"""Reconstruct a published cohort: count skeleton, baseline details, then a search over latent times.

Why this module exists: it is the one place where the reconstruction's steps
meet. :func:`reconstruct` solves the skeleton from the card's counts
(CP-SAT), draws the baseline details, starts the latents as uniform draws,
and lets :func:`~failpattern.simulate.reconstruct.search.anneal` move them to
bring every target (:func:`~failpattern.simulate.reconstruct.targets.targets_for`)
to its printed value, under the typicality penalty. Each step evaluates a
batch of candidate cohorts with the analysis plan.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from failpattern.simulate.frame import to_frame
from failpattern.simulate.model import DEFAULT_PARAMS, Params
from failpattern.simulate.reconstruct.assemble import SWAPPABLE, assemble, baseline_details
from failpattern.simulate.reconstruct.counts import solve_counts
from failpattern.simulate.reconstruct.search import anneal, typicality_penalty
from failpattern.simulate.reconstruct.targets import distances, targets_for
from failpattern.simulate.reconstruct.times import LATENTS, times_from_latents
from failpattern.study.design import design_for

__all__ = ["Reconstruction", "batch_values", "plan_values", "reconstruct"]

#: Weight of the typicality penalty against one printed unit of distance.
TYPICALITY_WEIGHT = 1.0


@dataclass(frozen=True)
class Reconstruction:
    """Result of :func:`reconstruct`.

    Attributes
    ----------
    frame : pandas.DataFrame
        The cohort in the cohort format.
    loss : float
        Final loss: the sum over targets of log(1 + distance in printed units), plus the
        typicality penalty.
    targets_met : int
        Targets at distance 0.
    n_targets : int
        Targets in all.
    history : numpy.ndarray
        Best loss per search step.
    evaluations : int
        Candidate cohorts evaluated (the skeletons' starts included).
    seconds : float
        Wall time.
    """

    frame: pd.DataFrame
    loss: float
    targets_met: int
    n_targets: int
    history: np.ndarray
    evaluations: int
    seconds: float


def batch_values(batch, card, targets) -> np.ndarray:
    """Target values of each cohort of ``batch`` through the batched plan (the search's default).

    Parameters
    ----------
    batch : Batch
        Candidate cohorts, ``(k, n)``.
    card : StudyCard
        The card the plan reads.
    targets : Targets
        What to read from the plan.

    Returns
    -------
    numpy.ndarray
        ``(k, len(targets))``; NaN where the plan does not compute a target.
    """
    from failpattern.study.plan_batch import run_plan_batch

    pb = run_plan_batch(batch, card=card)
    col = {i: k for k, i in enumerate(pb.ids)}
    out = np.full((batch.shape[0], len(targets)), np.nan)
    parts = {}
    for k, (id_, part) in enumerate(targets.keys):
        if id_ in col:
            if part not in parts:
                parts[part] = pb.part(part)
            out[:, k] = parts[part][:, col[id_]]
    return out


def plan_values(batch, card, targets) -> np.ndarray:
    """Target values of each cohort of ``batch`` through the plan, one cohort at a time (as
    :func:`batch_values`; the reference the tests compare it with)."""
    from failpattern.cohort import trusted_cohort
    from failpattern.study.plan import run_plan

    k = batch.shape[0]
    out = np.empty((k, len(targets)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(k):
            plan = run_plan(trusted_cohort(to_frame(batch, i)), card=card)
            out[i] = targets.values_of(plan._values)
    return out


def _used(skel) -> dict:
    """Which patients' latents shape the cohort (a censored patient's PFS1 latent does not)."""
    ev1 = np.asarray(skel.pattern) > 0
    n = ev1.size
    # lag2 shapes only a pretreated patient's lag, but prior lines move between patients: all count
    return {"start": np.ones(n, bool), "lag": np.ones(n, bool), "lag2": np.ones(n, bool),
            "pfs1": ev1 & (np.asarray(skel.response) != 3), "pfs2": np.asarray(skel.pfs2_event) == 1,
            "death": np.asarray(skel.os_event) == 1}


class _Problem:
    """One skeleton with its baseline details: the loss of candidate latents, and the moves."""

    #: Values exchanged between two patients by a swap move; the first three groups' counts are
    #: overall (response, prior lines), the others' per RT group.
    NUDGES = (0.1, 0.02, 0.004, 0.0008)
    GROUPS = (("response",), ("prior_lines",), ("male",), ("non_adeno",), ("ecog",), ("n_stage",), ("age",),
              ("size", "t_stage"))

    def __init__(self, card, skel, details, params, design, targets, values):
        self.card, self.skel, self.details = card, skel, details
        self.params, self.design, self.targets, self.values = params, design, targets, values
        s = {"brain": skel.met_brain, "brain_rt": skel.brain_rt, "burden": skel.burden,
             "non_adeno": skel.non_adeno, "organs": skel.organs, "response": skel.response, "rt": skel.rt,
             "prior_lines": details["prior_lines"], "salvage": skel.salvage,
             "cbpd": (np.asarray(skel.next) == 0).astype(int),
             "pfs1_event": (np.asarray(skel.pattern) > 0) * 1, "pfs2_event": skel.pfs2_event,
             "os_event": skel.os_event}
        self.s = {k: np.asarray(v) for k, v in s.items()}
        self.n = self.s["rt"].size
        self.used = _used(skel)
        fixed = {"male": skel.male, "non_adeno": skel.non_adeno, "response": skel.response,
                 **{f: details[f] for f in SWAPPABLE if f in details}}
        self.fixed = {f: np.asarray(fixed[f]) for f in SWAPPABLE}
        self.rt = np.asarray(skel.rt)
        self.pd = self.fixed["response"] == 3

    def start(self, rng: np.random.Generator, k: int) -> dict:
        """``k`` starting states: uniform latents, the details' baseline values."""
        return {**{name: rng.random((k, self.n)) for name in LATENTS},
                **{f: np.repeat(v[None], k, axis=0) for f, v in self.fixed.items()}}

    def batch(self, cand: dict):
        lat = {name: cand[name] for name in LATENTS}
        over = {f: cand[f] for f in SWAPPABLE}
        times = times_from_latents(self.params, self.design,
                                   {**self.s, **{f: over[f] for f in ("non_adeno", "response", "prior_lines")}},
                                   lat)
        return assemble(self.skel, self.details, times, over)

    def distances(self, cand: dict) -> np.ndarray:
        return distances(self.targets, self.values(self.batch(cand), self.card, self.targets))

    def loss(self, cand: dict) -> np.ndarray:
        # log1p: each target counts for about as much brought from 1 unit to 0 as from 100 to 10
        lat = {name: cand[name] for name in LATENTS}
        return np.log1p(self.distances(cand)).sum(axis=-1) + TYPICALITY_WEIGHT * typicality_penalty(lat, self.used)

    def propose(self, r: np.random.Generator, state: dict, k: int) -> dict:
        out = {name: np.repeat(np.asarray(v)[None], k, axis=0) for name, v in state.items()}
        n = self.n
        for c in range(k):
            if r.random() < 0.5:  # a latent: redraw or nudge one patient's
                name = LATENTS[r.integers(len(LATENTS))]
                i = r.integers(n)
                if r.random() < 0.5:
                    out[name][c, i] = r.random()
                else:
                    # a nudge at one of several scales: far for p-values, fine for a median's last digit
                    v = abs(out[name][c, i] + self.NUDGES[r.integers(len(self.NUDGES))] * r.standard_normal())
                    out[name][c, i] = min(max(2 - v if v > 1 else v, 1e-9), 1 - 1e-9)
                continue
            # a swap of baseline values between two patients that keeps every count
            fields = self.GROUPS[r.integers(len(self.GROUPS))]
            i = r.integers(n)
            if fields == ("response",):  # best response: any two non-PD patients (counts are overall)
                ok = ~self.pd & ~self.pd[i]
            elif fields == ("prior_lines",):  # first line or pretreated: counted overall
                ok = np.ones(n, dtype=bool)
            else:  # Table 1 values: within the RT group (counts are per group)
                ok = self.rt == self.rt[i]
            ok = ok & (out[fields[0]][c] != out[fields[0]][c, i])
            cand = np.flatnonzero(ok)
            if cand.size == 0:
                continue
            j = cand[r.integers(cand.size)]
            for f in fields:
                out[f][c, [i, j]] = out[f][c, [j, i]]
        return out


def reconstruct(card, rng: np.random.Generator, *, params: Params = DEFAULT_PARAMS, skeletons: int = 6,
                steps: int = 300, batch: int = 32, values: Callable | None = None,
                progress: Callable[[int, float], None] | None = None) -> Reconstruction:
    """Reconstruct the cohort a study card describes.

    Parameters
    ----------
    card : StudyCard or str
        The published numbers (a card, or its name or path).
    rng : numpy.random.Generator or int
        The only source of randomness (an int seeds a new generator).
    params : Params
        Calibrated model (the times' distributions).
    skeletons : int
        Count skeletons solved; the search continues from the one whose best of
        ``batch`` random starts has the lowest loss (the skeleton fixes, e.g., how
        many original-site failures have brain metastases, which the search cannot move).
    steps, batch : int
        Search steps, and candidate cohorts evaluated per step.
    values : callable, optional
        ``values(batch, card, targets)`` -> ``(k, n_targets)`` reproduced values
        (default: :func:`batch_values`, the batched plan).
    progress : callable, optional
        ``progress(step, best_loss)``.

    Returns
    -------
    Reconstruction

    Raises
    ------
    InputError
        A card that cannot be read, a bad seed, or a budget that is not a positive integer.
    """
    from failpattern.simulate import _card, _check_n, _rng

    t_start = time.perf_counter()
    card, rng = _card(card), _rng(rng)
    skeletons, steps, batch = (_check_n(v, name) for v, name in ((skeletons, "skeletons"), (steps, "steps"),
                                                                 (batch, "batch")))
    design = design_for(card)
    targets = targets_for(card)
    values = values or batch_values
    best = None
    for _ in range(skeletons):
        skel = solve_counts(card, rng)
        problem = _Problem(card, skel, baseline_details(skel, params, design, rng), params, design, targets,
                           values)
        starts = problem.start(rng, batch)
        losses = problem.loss(starts)
        j = int(np.argmin(losses))
        if best is None or losses[j] < best[0]:
            best = (float(losses[j]), problem, {k: v[j] for k, v in starts.items()})
    _, problem, state = best
    result = anneal(state, problem.loss, problem.propose, rng, steps=steps, batch=batch, progress=progress)
    final = problem.batch({k: v[None] for k, v in result.state.items()})
    d = distances(targets, values(final, card, targets))[0]
    return Reconstruction(frame=to_frame(final, 0), loss=result.loss, targets_met=int(np.sum(d == 0)),
                          n_targets=len(targets), history=result.history,
                          evaluations=result.evaluations + skeletons * batch, seconds=time.perf_counter() - t_start)
