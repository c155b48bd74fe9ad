"""One optimiser for a reconstruction: batched simulated annealing over latent uniforms.

Why this module exists: once the count skeleton is fixed, what remains is to
place each patient's times (and, through them, every median, confidence
limit, p-value and ratio the paper prints). The cohort is a deterministic
function of latent uniforms (:mod:`~failpattern.simulate.reconstruct.times`),
so the search moves latents: a move redraws one patient's latent, or nudges
it. Each step proposes a batch of moves, evaluates all of them in one call
(the plan's batched kernels take a leading axis of candidate cohorts), and
keeps the best under a simulated-annealing rule (when several candidates improve,
their changes to different patients are merged into one candidate, tried at the
next step: the improvements of independent moves add up); a typicality penalty keeps
the latents looking like a draw from the uniform distribution, so the search
cannot buy a published number with a contrived cluster of times: an
Anderson-Darling statistic above its 10% critical value costs (the global
shape: too many latents in a tail), and so does a cluster (more latents in a
window of width 1/n than uniform latents put in any such window 19 times in
20, by a union bound over windows: :func:`cluster_limit`). Anderson-Darling
alone is blind to a cluster in the middle (twelve equal latents among 52
raise A² by less than one), hence the second statistic.

The loss and the moves are the caller's; this module is only the optimiser,
written here rather than taken from scipy because scipy's annealers
(``dual_annealing``, ``basinhopping``) evaluate one point at a time and cannot
use a batched evaluation, which is where the speed is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["AD_CRITICAL_10", "SearchResult", "anderson_darling_uniform", "anneal", "cluster_limit",
           "largest_cluster", "typicality_penalty"]

#: Asymptotic 10% critical value of the Anderson-Darling statistic for a fully specified
#: distribution (Stephens 1974; the small-sample correction is negligible above n = 5).
AD_CRITICAL_10 = 1.933


def anderson_darling_uniform(u: np.ndarray, axis: int = -1) -> np.ndarray:
    """Anderson-Darling A² of samples against the uniform distribution on (0, 1).

    Parameters
    ----------
    u : numpy.ndarray
        Samples in (0, 1), along ``axis``.
    axis : int
        The sample axis.

    Returns
    -------
    numpy.ndarray
        A² for each sample (``axis`` removed); NaN for an empty sample.
    """
    x = np.sort(np.clip(np.moveaxis(np.asarray(u, float), axis, -1), 1e-12, 1 - 1e-12), axis=-1)
    n = x.shape[-1]
    if n == 0:
        return np.full(x.shape[:-1], np.nan)
    i = np.arange(1, n + 1)
    s = np.sum((2 * i - 1) * (np.log(x) + np.log1p(-x[..., ::-1])), axis=-1)
    return -n - s / n


def largest_cluster(u: np.ndarray, width: float) -> np.ndarray:
    """Most samples in any window ``[x, x + width)`` (the scan statistic), along the last axis.

    Parameters
    ----------
    u : numpy.ndarray
        Samples, shape ``(..., n)``.
    width : float
        Window width.

    Returns
    -------
    numpy.ndarray
        Integer counts, shape ``(...)``.
    """
    x = np.sort(np.asarray(u, float), axis=-1)
    n = x.shape[-1]
    flat = x.reshape(-1, n)
    out = np.empty(flat.shape[0], np.int64)
    for r in range(flat.shape[0]):  # searchsorted has no batched form; rows are few (candidates)
        out[r] = (np.searchsorted(flat[r], flat[r] + width, side="left") - np.arange(n)).max()
    return out.reshape(x.shape[:-1])


@lru_cache(maxsize=256)
def cluster_limit(n: int, alpha: float = 0.05) -> int:
    """Largest cluster (window 1/n) that ``n`` uniform samples exceed with probability at most ``alpha``.

    A union bound over the ``n`` windows starting at a sample: P(some window holds
    ``k`` or more) <= n P(Binomial(n - 1, 1/n) >= k - 1); the limit is the
    smallest ``k - 1`` for which the bound is at most ``alpha`` (conservative:
    the true probability is lower).

    Parameters
    ----------
    n : int
        Samples.
    alpha : float
        Tail probability.

    Returns
    -------
    int
    """
    from scipy.stats import binom

    k = 1
    while n * binom.sf(k - 1, n - 1, 1.0 / n) > alpha:  # sf(k - 1) = P(X >= k)
        k += 1
    return k


def typicality_penalty(latents: Mapping[str, np.ndarray], used: Mapping[str, np.ndarray]) -> np.ndarray:
    """How far the latents are from looking uniform: sum over latents of max(0, A² - 10% critical value).

    Parameters
    ----------
    latents : Mapping
        Name -> array ``(..., n)`` of uniforms (a leading axis of candidates allowed).
    used : Mapping
        Name -> boolean array ``(n,)``: the patients whose latent shapes the cohort
        (a censored patient's PFS1 latent does not).

    Returns
    -------
    numpy.ndarray
        Shape ``(...)``: per latent, the excess of A² over :data:`AD_CRITICAL_10`
        plus the excess of the largest cluster (window 1/n) over
        :func:`cluster_limit`; 0 for latents a uniform draw gives most of the time.
    """
    total = 0.0
    for name, u in latents.items():
        mask = np.asarray(used[name], bool)
        m = int(mask.sum())
        if m < 5:
            continue
        x = np.asarray(u)[..., mask]
        total = total + np.maximum(anderson_darling_uniform(x) - AD_CRITICAL_10, 0.0)
        total = total + np.maximum(largest_cluster(x, 1.0 / m) - cluster_limit(m), 0)
    return np.asarray(total, float)


@dataclass(frozen=True)
class SearchResult:
    """Outcome of :func:`anneal`.

    Attributes
    ----------
    state : dict
        The best latents found (name -> array ``(n,)``).
    loss : float
        Their loss.
    history : numpy.ndarray
        Best loss after each step.
    evaluations : int
        Candidate cohorts evaluated.
    """

    state: dict
    loss: float
    history: np.ndarray
    evaluations: int


def _merge(current: dict, cand: dict, losses: np.ndarray, cur_loss: float, j: int) -> dict | None:
    """Candidate ``j`` with the changes of every other improving candidate that touch other patients.

    Moves usually change one or two patients, and most are independent of each other, so
    the improvements a step finds often add up; the merged state is evaluated at the next
    step (in place of one proposal) and wins only if it is the best there. None when no
    other candidate improved on ``cur_loss``.
    """
    others = [int(i) for i in np.argsort(losses, kind="stable") if i != j and losses[i] < cur_loss]
    if not others:
        return None
    out = {k: v[j].copy() for k, v in cand.items()}

    def touched(i):
        return np.any([np.asarray(cand[k][i] != current[k]).reshape(current[k].shape[0], -1).any(axis=1)
                       for k in current], axis=0)

    used = touched(j)
    for i in others:
        t = touched(i)
        if np.any(t & used):
            continue
        for k in current:
            out[k][t] = cand[k][i][t]
        used |= t
    return out


def anneal(state: Mapping[str, np.ndarray], loss: Callable[[dict], np.ndarray],
           propose: Callable[[np.random.Generator, dict, int], dict], rng: np.random.Generator, *,
           steps: int, batch: int = 32, t0: float = 1.0, t1: float = 0.01, stop: float = 0.0,
           progress: Callable[[int, float, dict], None] | None = None) -> SearchResult:
    """Minimise ``loss`` over latent states by batched simulated annealing.

    Parameters
    ----------
    state : Mapping
        Starting latents, name -> array ``(n,)``.
    loss : callable
        ``loss(candidates)`` with candidates name -> array ``(k, n)``; returns ``(k,)``.
    propose : callable
        ``propose(rng, state, k)`` -> ``k`` candidate states (name -> ``(k, n)``), each
        a small move away from ``state``.
    rng : numpy.random.Generator
        The only source of randomness.
    steps : int
        Steps (each evaluates ``batch`` candidates).
    batch : int
        Candidates per step.
    t0, t1 : float
        Temperature at the first and last step (geometric schedule), in loss units.
    stop : float
        Stop once the best loss is at most this.
    progress : callable, optional
        ``progress(step, best_loss, best_state)`` after each step (``step`` from 0).

    Returns
    -------
    SearchResult
    """
    current = {k: np.array(v, copy=True) for k, v in state.items()}
    cur_loss = float(loss({k: v[None] for k, v in current.items()})[0])
    best, best_loss = {k: v.copy() for k, v in current.items()}, cur_loss
    history = np.empty(steps)
    evaluations = 1
    merged = None
    for step in range(steps):
        temp = t0 * (t1 / t0) ** (step / max(steps - 1, 1))
        if merged is None or batch < 2:
            cand = propose(rng, current, batch)
        else:  # the merged candidate takes one place of the batch
            cand = {k: np.concatenate([v, merged[k][None]]) for k, v in propose(rng, current, batch - 1).items()}
        losses = np.asarray(loss(cand), float)
        evaluations += batch
        j = int(np.argmin(losses))
        delta = losses[j] - cur_loss
        merged = None
        if delta <= 0 or rng.random() < np.exp(-delta / temp):
            if delta < 0:
                merged = _merge(current, cand, losses, cur_loss, j)
            current = {k: v[j].copy() for k, v in cand.items()}
            cur_loss = float(losses[j])
            if cur_loss < best_loss:
                best, best_loss = {k: v.copy() for k, v in current.items()}, cur_loss
        history[step] = best_loss
        if progress is not None:
            progress(step, best_loss, best)
        if best_loss <= stop:
            history = history[: step + 1]
            break
    return SearchResult(state=best, loss=best_loss, history=history, evaluations=evaluations)
