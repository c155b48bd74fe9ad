"""Simulated annealing over the continuous / assignment parts of an exact cohort.

Why: exact mode fixes every published count by allocation; the published *tests*
(log-rank, Cox and Fine-Gray Wald p-values, SHRs) then depend on which patient carries
which time and covariate value. A loss ``sum(((stat - target) / scale) ** 2)`` over the
targeted card numbers is minimised by Metropolis moves that never change a count
(swaps within strata, times moved within the accrual and cut-off limits). Each move
names the loss components it touches, so only those statistics are recomputed.

Everything random comes from the passed ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["Target", "anneal", "card_targets", "term", "zterm"]


class Target(tuple):
    """(value, scale, relation) of one card number; ``scale`` is half the card tolerance."""

    __slots__ = ()

    def __new__(cls, value: float, scale: float, relation: str = "eq"):
        return super().__new__(cls, (float(value), float(scale), relation))


def card_targets(card, ids, factor: float = 0.5) -> dict:
    """Targets of ``ids`` from ``card``: the published value, ``factor`` x the compare
    tolerance (card tolerance, at least half a printed unit) and the relation."""
    nums = card.numbers.set_index("id")
    out = {}
    for i in ids:
        if i not in nums.index:
            continue
        n = nums.loc[i]
        tol = 0.0 if n.tolerance is None or n.tolerance != n.tolerance else float(n.tolerance)
        tol = max(tol, 0.5 * 10.0 ** -int(n.decimals))
        out[i] = Target(float(n.value), factor * tol, n.relation)
    return out


def term(x: float, t: Target) -> float:
    """Squared scaled deviation; one-sided for ``lt``/``le``; 1e6 when ``x`` is not finite."""
    value, scale, rel = t
    if not math.isfinite(x):
        return 1e6
    d = x - value
    if rel in ("lt", "le"):
        d = max(d, 0.0)
    elif rel in ("gt", "ge"):
        d = min(d, 0.0)
    return (d / scale) ** 2


def zterm(z: float, t: Target, direction: float = 0.0) -> float:
    """:func:`term` of a two-sided p-value measured on its signed normal deviate.

    The p-value target becomes ``|z| = ndtri(1 - p / 2)`` in the ``direction`` of the
    published effect (0: either), so the loss is monotone along the way from the wrong
    side of the null to the target (a p-value alone has a barrier at the null). The
    scale is the distance in ``|z|`` from the target to the p-value ``scale`` above it:
    p is convex in ``|z|``, so a scale from the slope at the target (``dp/d|z|``) would
    call p = 0.013 half a tolerance from 0.003 when it is a whole one.
    """
    from scipy.special import ndtri

    value, scale, rel = t
    if not math.isfinite(z):
        return 1e6
    zt = float(ndtri(1.0 - value / 2.0))
    s = max(zt - float(ndtri(1.0 - min(value + scale, 1.0) / 2.0)), 0.005)
    d = (direction * z if direction else abs(z)) - zt
    if rel in ("lt", "le"):
        d = min(d, 0.0)
    return (d / s) ** 2


def anneal(rng: np.random.Generator, state: dict, propose: Callable, parts_of: Callable, *, iters: int,
           t_start: float | None = None, t_end: float = 0.02, stop: float = 1.0) -> tuple[dict, dict]:
    """Minimise ``sum(parts_of(state).values())`` by Metropolis moves.

    Parameters
    ----------
    rng : numpy.random.Generator
    state : dict
        Arrays; a move returns a new dict sharing the unchanged arrays.
    propose : callable
        ``propose(rng, state, parts) -> (new_state, changed)`` or ``None`` (no valid move);
        ``changed`` names the loss components to recompute (``None``: all).
    parts_of : callable
        ``parts_of(state, changed, old_parts) -> dict`` of loss components.
    iters : int
        Moves tried.
    t_start, t_end : float
        Geometric temperature schedule (``t_start`` defaults to 3: the loss is in squared half-tolerances).
    stop : float
        Stop early once every component is below this value.

    Returns
    -------
    (state, parts) with the lowest total loss seen.
    """
    parts = parts_of(state, None, None)
    loss = sum(parts.values())
    best, best_parts, best_loss = state, parts, loss
    t0 = 3.0 if t_start is None else t_start
    for k in range(iters):
        if max(best_parts.values(), default=0.0) <= stop:
            break
        temp = t0 * (t_end / t0) ** (k / max(iters - 1, 1))
        move = propose(rng, state, parts)
        u = rng.random()
        if move is None:
            continue
        new, changed = move
        new_parts = parts_of(new, changed, parts)
        new_loss = sum(new_parts.values())
        if new_loss <= loss or u < math.exp(-(new_loss - loss) / temp):
            state, parts, loss = new, new_parts, new_loss
            if loss < best_loss:
                best, best_parts, best_loss = state, parts, loss
    return best, best_parts
