"""Reconstruct a published cohort: count skeleton, baseline details, then a search over latent times.

Why this module exists: it is the one place where the reconstruction's steps
meet. :func:`reconstruct` solves the skeleton from the card's counts
(CP-SAT, brought toward the cells Table 3's ratios and the KM medians imply),
draws the baseline details (ages and tumour sizes re-paired so that OF
failures per age and size group are as Table 3 implies: :func:`match_details`),
starts the latents as uniform draws, and lets
:func:`~failpattern.simulate.reconstruct.search.anneal` move them to bring every
target (:func:`~failpattern.simulate.reconstruct.targets.targets_for`) to its
printed value, under the typicality penalty. Each step evaluates a batch of
candidate cohorts with the analysis plan. The moves: redraw or nudge one
patient's latent (one that shapes the cohort), place one event time in the
window of a printed PFS median (its confidence interval, or the days that print
as the median: the events there decide the median and SPSS's interval), or
exchange baseline values between two patients where every count still holds.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from failpattern.simulate.frame import to_frame
from failpattern.simulate.generate import DPM
from failpattern.simulate.model import DEFAULT_PARAMS, Params
from failpattern.simulate.plausibility import TAIL, course_arrays, curve_reference, curve_statistics
from failpattern.simulate.reconstruct.assemble import (
    SWAPPABLE,
    assemble,
    baseline_details,
)
from failpattern.simulate.reconstruct.counts import implied_events, solve_counts
from failpattern.simulate.reconstruct.search import anneal, typicality_penalty
from failpattern.simulate.reconstruct.targets import (
    NOT_COMPUTED,
    conclusion_changes,
    distances,
    targets_for,
    z_gap,
)
from failpattern.simulate.reconstruct.times import (
    LATENTS,
    latent_for_days,
    times_from_latents,
)
from failpattern.study.design import design_for

__all__ = ["SearchProgress", "Reconstruction", "batch_values", "match_details", "plan_values", "reconstruct"]

#: What a reproduced value that changes the paper's conclusion (a p-value across 0.05, a ratio across
#: 1) adds to the loss: as much as a value not computed at all (log1p of NOT_COMPUTED printed
#: units), so the search never trades a published finding for digits elsewhere.
CONCLUSION_COST = float(np.log1p(NOT_COMPUTED))
#: Weight of the typicality penalty against one printed unit of distance.
TYPICALITY_WEIGHT = 1.0
#: Random cohorts drawn once per reconstruction to judge its curves' plateaus and clusters (as
#: :func:`~failpattern.simulate.plausibility.plausibility` does by default).
CURVE_REPLICATES = 1000


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


@dataclass(frozen=True)
class SearchProgress:
    """Where a reconstruction's search stands, passed to its ``progress`` callback after each step.

    Attributes
    ----------
    step, steps : int
        Steps done (from 1) and in all.
    targets_met, n_targets : int
        Targets the best cohort so far prints as published, and targets in all.
    loss : float
        The best loss so far.
    """

    step: int
    steps: int
    targets_met: int
    n_targets: int
    loss: float


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


#: Baseline details with a Table 3 SHR: (card word, cut-off id, fields exchanged, column compared,
#: comparison level as in ``design.BINARIES``, whether T3-4 must be kept per patient).
_DETAIL_CELLS = (("age", "protocol.t3.age_cutoff", ("age",), "age", lambda v, c: v > c, False),
                 ("tumor_size", "protocol.t3.tumor_size_cutoff", ("size", "t_stage"), "size",
                  lambda v, c: v >= c, True))


def match_details(card, skel, details: dict, rng: np.random.Generator) -> dict:
    """Baseline details re-paired so that OF failures per age and tumour-size group are as Table 3 implies.

    The skeleton brings the OF x covariate cells of its own covariates to the counts the
    published SHRs imply (:func:`~failpattern.simulate.reconstruct.counts.soft_rules`);
    age and tumour size are details, drawn without regard to failure. Here ages (sizes
    with their T stage) are exchanged between an OF patient and a patient without OF
    failure of the same RT group (and, for sizes, the same T1-2 / T3-4 class), one pair at
    a time, until the OF patients above the cut-off number
    :func:`~failpattern.simulate.reconstruct.counts.implied_events`. Exchanges keep every
    group's values, so its median, range and every count hold.

    Parameters
    ----------
    card : StudyCard
        The card (Table 3's ``t3.uni.age.shr``, ``t3.uni.tumor_size.shr`` and their cut-offs;
        a cell whose numbers are missing is left as drawn).
    skel : CountSkeleton
        The skeleton.
    details : dict
        From :func:`~failpattern.simulate.reconstruct.assemble.baseline_details`.
    rng : numpy.random.Generator
        Chooses the pairs.

    Returns
    -------
    dict
        A copy of ``details`` with ages, sizes and T stages exchanged.
    """
    d = {k: np.array(v, copy=True) for k, v in details.items()}
    of = np.asarray(skel.pattern) == 1
    n = of.size
    for word, cut_id, fields, col, rule, keep_t34 in _DETAIL_CELLS:
        if f"t3.uni.{word}.shr" not in card or cut_id not in card:
            continue
        cut, ratio = card.get(cut_id).value, card.get(f"t3.uni.{word}.shr").value
        stratum = np.asarray(skel.rt) * 2 + (np.asarray(skel.t34) if keep_t34 else 0)
        x = rule(d[col], cut)
        target = implied_events(float(ratio), int(x.sum()), n - int(x.sum()), int(of.sum()))
        for _ in range(n):  # each exchange moves the cell by one
            x = rule(d[col], cut)
            cell = int((x & of).sum())
            if cell == target:
                break
            want = cell < target  # an OF patient should gain (lose) the comparison level
            giver = np.flatnonzero(of & (x != want))
            taker = ~of & (x == want)
            ok = [i for i in giver if np.any(taker & (stratum == stratum[i]))]
            if not ok:
                break
            i = ok[rng.integers(len(ok))]
            js = np.flatnonzero(taker & (stratum == stratum[i]))
            j = js[rng.integers(js.size)]
            for f in fields:
                d[f][[i, j]] = d[f][[j, i]]
    return d


#: Card populations of the KM medians, as skeleton masks.
_POPULATIONS = {
    "all": lambda k: np.ones(k.n, bool),
    "bbm": lambda k: k.met_brain == 1,
    "bbm_prior_brain_rt": lambda k: (k.met_brain == 1) & (k.brain_rt > 0),
    "bbm_no_prior_brain_rt": lambda k: (k.met_brain == 1) & (k.brain_rt == 0),
    "progressed": lambda k: k.pattern > 0,
    "salvage_rt": lambda k: k.salvage > 0,
    "no_salvage_rt": lambda k: (k.pattern > 0) & (k.salvage == 0),
    "cbpd": lambda k: k.next == 0,
    "non_cbpd": lambda k: k.next > 0,
}


def _aims(card, skel, targets, used) -> list:
    """The aimed moves' windows: (latent, patients, first day, last day) per PFS median of the card.

    The window is the published confidence interval where one is printed (events there set
    the SPSS interval, which spans the times where the curve crosses 0.55 and 0.45), else
    the days that print as the median.
    """
    t = targets.table
    out = []
    for r in t[(t["kind"] == "median") & (t["part"] == "value")].itertuples():
        name = r.id.split(".")[0]
        number = card.get(r.id)
        if name not in ("pfs1", "pfs2") or number.population not in _POPULATIONS:
            continue
        who = np.flatnonzero(_POPULATIONS[number.population](skel) & used[name])
        if number.ci_lower is not None and number.ci_upper is not None:
            lo, hi = number.ci_lower, number.ci_upper
        else:
            lo, hi = r.published - r.unit / 2, r.published + r.unit / 2
        if who.size:
            out.append((name, who, lo * DPM, hi * DPM))
    return out


class _Problem:
    """One skeleton with its baseline details: the loss of candidate latents, and the moves."""

    #: Values exchanged between two patients by a swap move; the first three groups' counts are
    #: overall (response, prior lines), the others' per RT group.
    NUDGES = (0.1, 0.02, 0.004, 0.0008)
    #: Share of the moves that place an event time in a median's window (:func:`_aims`); the
    #: other moves are as before, half latent, half swaps. Set a priori, not tuned: medians and
    #: their limits are few targets (about 1 in 20), but each needs several events placed together.
    AIMED = 0.25
    GROUPS = (("response",), ("prior_lines",), ("male",), ("non_adeno",), ("ecog",), ("n_stage",), ("age",),
              ("size", "t_stage"))

    def __init__(self, card, skel, details, params, design, targets, values, curves):
        self.card, self.skel, self.details, self.curves = card, skel, details, curves
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
        self.aims = _aims(card, skel, targets, self.used)
        # a move of a latent that shapes nothing (a censored patient's PFS1) would waste an evaluation
        self.movable = {k: np.flatnonzero(v) if v.any() else np.arange(self.n) for k, v in self.used.items()}

    def start(self, rng: np.random.Generator, k: int, draws: list | None = None) -> dict:
        """``k`` starting states: uniform latents, and the baseline values of ``draws[c]`` (details
        drawn for this skeleton; default: the problem's own details for every start)."""
        if draws is None:
            fixed = {f: np.repeat(v[None], k, axis=0) for f, v in self.fixed.items()}
        else:
            fixed = {f: np.stack([np.asarray(d[f]) if f in d else self.fixed[f] for d in draws[:k]])
                     for f in SWAPPABLE}
        return {**{name: rng.random((k, self.n)) for name in LATENTS}, **fixed}

    def batch(self, cand: dict):
        lat = {name: cand[name] for name in LATENTS}
        over = {f: cand[f] for f in SWAPPABLE}
        times = times_from_latents(self.params, self.design,
                                   {**self.s, **{f: over[f] for f in ("non_adeno", "response", "prior_lines")}},
                                   lat)
        return assemble(self.skel, self.details, times, over, design=self.design)

    def distances(self, cand: dict) -> np.ndarray:
        return distances(self.targets, self.values(self.batch(cand), self.card, self.targets))

    def loss(self, cand: dict) -> np.ndarray:
        # log1p: each target counts for about as much brought from 1 unit to 0 as from 100 to 10;
        # a value that changes the paper's conclusion costs as much again as one not computed
        lat = {name: cand[name] for name in LATENTS}
        batch = self.batch(cand)
        values = self.values(batch, self.card, self.targets)
        d = distances(self.targets, values)
        flips = conclusion_changes(self.targets, values).sum(axis=-1)
        return (np.log1p(d).sum(axis=-1) + CONCLUSION_COST * flips + z_gap(self.targets, values).sum(axis=-1)
                + TYPICALITY_WEIGHT * typicality_penalty(lat, self.used) + self.curve_penalty(batch))

    def curve_penalty(self, batch) -> np.ndarray:
        """What flagged plateaus and clusters cost: a curve statistic that at most 5% of random cohorts
        reach (:mod:`~failpattern.simulate.plausibility`'s per-curve rule) costs as much as a changed
        conclusion (it betrays a made-up cohort as surely), plus its excess over the random cohorts'
        95th percentile (months of plateau, events of cluster), so that the search sees the way back."""
        stats = curve_statistics(course_arrays(batch))
        flagged = self.curves.p_values(stats) <= TAIL
        excess = np.maximum(stats[self.curves.stats.columns].to_numpy(dtype=float) - self.curves.q95, 0.0)
        return np.where(flagged, CONCLUSION_COST + excess, 0.0).sum(axis=1)

    def propose(self, r: np.random.Generator, state: dict, k: int) -> dict:
        out = {name: np.repeat(np.asarray(v)[None], k, axis=0) for name, v in state.items()}
        n = self.n
        for c in range(k):
            if self.aims and r.random() < self.AIMED:  # an event time into a median's window
                name, who, lo, hi = self.aims[r.integers(len(self.aims))]
                i = who[r.integers(who.size)]
                s = {**self.s, **{f: out[f][c] for f in ("non_adeno", "response", "prior_lines")}}
                lat = {k: out[k][c] for k in LATENTS}
                out[name][c, i] = latent_for_days(self.params, self.design, s, lat, name, i, r.uniform(lo, hi))
                continue
            if r.random() < 0.5:  # a latent: redraw or nudge one patient's (one it shapes)
                name = LATENTS[r.integers(len(LATENTS))]
                who = self.movable[name]
                i = who[r.integers(who.size)]
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


class _Tracker:
    """The search's progress callback: the best cohort's targets met, re-evaluated when it changes."""

    def __init__(self, problem, targets, steps, progress):
        self.problem, self.targets, self.steps, self.progress = problem, targets, steps, progress
        self.loss, self.met = None, 0

    def __call__(self, step, best_loss, best_state):
        if best_loss != self.loss:
            self.loss = best_loss
            d = self.problem.distances({k: v[None] for k, v in best_state.items()})[0]
            self.met = int(np.sum(d == 0))
        self.progress(SearchProgress(step + 1, self.steps, self.met, len(self.targets), float(best_loss)))


def _with_treatment_starts(batch, rng: np.random.Generator):
    """``batch`` with the start days of salvage RT and of the first RT course, as the random model draws
    them (:func:`failpattern.simulate.generate.treatment_starts`)."""
    import dataclasses

    from failpattern.simulate.generate import treatment_starts

    u1, u2 = rng.random(batch.shape), rng.random(batch.shape)
    salvage, first = treatment_starts(u1, u2, batch.salvage, batch.pfs1_d, batch.pfs2_d, batch.lag_d, batch.os_d,
                                      batch.rt, (batch.brain_rt > 0) | (batch.xrt > 0))
    return dataclasses.replace(batch, salvage_start_d=salvage, first_rt_d=first)


def reconstruct(card, rng: np.random.Generator, *, params: Params = DEFAULT_PARAMS, skeletons: int = 1,
                steps: int = 400, batch: int = 32, values: Callable | None = None,
                progress: Callable[[SearchProgress], None] | None = None) -> Reconstruction:
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
        ``batch`` random starts (each with its own draw of the baseline details) has the
        lowest loss. Every skeleton is already brought toward the cells the published
        ratios and medians imply (:func:`~failpattern.simulate.reconstruct.counts.soft_rules`),
        which is what the choice among skeletons was for, at 12-20 s of CPU each: one by default.
    steps, batch : int
        Search steps, and candidate cohorts evaluated per step. The defaults keep a
        reconstruction of Ni 2019 within 60 s of CPU in a fresh process: 2.5-4 s for the
        canonical skeleton (cached), 12-20 s for the skeleton, about 0.07 s per step.
    values : callable, optional
        ``values(batch, card, targets)`` -> ``(k, n_targets)`` reproduced values
        (default: :func:`batch_values`, the batched plan).
    progress : callable, optional
        Called after each search step with a :class:`SearchProgress` (the targets met are those
        of the best cohort so far, re-evaluated when it changes).

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
    curves = curve_reference(params, design.n, rng, CURVE_REPLICATES)
    best = None
    for _ in range(skeletons):
        skel = solve_counts(card, rng)
        # each start its own draw of the details: ages and sizes split between the RT groups as the
        # draw falls (Table 1's all-patient median, the groups' p), which no swap in the search moves
        draws = [match_details(card, skel, baseline_details(skel, params, design, rng), rng) for _ in range(batch)]
        problem = _Problem(card, skel, draws[0], params, design, targets, values, curves)
        starts = problem.start(rng, batch, draws)
        losses = problem.loss(starts)
        j = int(np.argmin(losses))
        if best is None or losses[j] < best[0]:
            best = (float(losses[j]), problem, {k: v[j] for k, v in starts.items()})
    _, problem, state = best
    tracker = None if progress is None else _Tracker(problem, targets, steps, progress)
    result = anneal(state, problem.loss, problem.propose, rng, steps=steps, batch=batch, progress=tracker)
    final = problem.batch({k: v[None] for k, v in result.state.items()})
    d = distances(targets, values(final, card, targets))[0]
    # when treatments began (the methods audit's exposure timing): drawn last, as the random model
    # draws them, so nothing searched depends on them
    final = _with_treatment_starts(final, rng)
    return Reconstruction(frame=to_frame(final, 0), loss=result.loss, targets_met=int(np.sum(d == 0)),
                          n_targets=len(targets), history=result.history,
                          evaluations=result.evaluations + skeletons * batch, seconds=time.perf_counter() - t_start)
