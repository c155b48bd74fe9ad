"""Exact mode, covariates: a last low-temperature anneal aimed at the numbers still outside.

Why: :func:`~failpattern.simulate._exact_cov.fit_covariates` minimises a sum of squared
half-tolerances, so it happily leaves one number at 1.2 tolerances when that buys a
little on several others already well inside. The card counts numbers outside, not the
sum. This polish adds, for every number the covariate stage moves, a steep wall from
0.9 tolerance on (as ``_median_terms`` does for the Kaplan-Meier medians), linear from
1.2 tolerances so that a number out of reach (``t3.uni.histology.p``) does not swamp
the others, and anneals
cold with two kinds of move:

* the single-covariate swaps of :func:`~failpattern.simulate._exact_cov.covariate_moves`;
* coordinated swaps: two patients of the same RT group exchange the values of two or
  more of the multivariable covariates at once (>= 3 organs and >= 6 lesions are
  correlated, so swapping one alone moves both models' estimates the wrong way), or
  >= 3 organs together with the four site flags (so the site rule cannot block it).

* jumps (only when ``jumps`` is given, by :mod:`~failpattern.simulate._exact_repair`): a
  covariate with few carriers moves only between listed placements, each of which keeps
  its univariate row inside its tolerance; its single and coordinated swaps are off.

Only the models holding a moved covariate are refitted. Counts never change.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from failpattern.simulate._anneal import anneal, term, zterm
from failpattern.simulate._exact_cov import (
    _COX_IDS,
    _COX_SIGN,
    _SITES,
    COX,
    KEYS,
    CovariateLoss,
    _site_violations,
    covariate_moves,
    indicators,
)

__all__ = ["polish_covariates"]

# the covariates the polish moves: those of the multivariable Fine-Gray / Cox models, and
# the site flags (only ever moved together with >= 3 organs)
_KEYS = ("non_adeno", "size", "organs3", "lesions6", "resp")
_PAIRS = (("organs3", "lesions6"), ("size", "lesions6"), ("size", "organs3"),
          ("size", "organs3", "lesions6"))
# in tolerances: where the wall starts, where it turns linear, its scale; and the price of
# being outside at all (so the loss ranks states first by how many numbers are outside)
_WALL_FROM, _WALL_CAP, _WALL_SCALE, _OUTSIDE = 0.9, 1.2, 0.05, 100.0


def _wall(x: float, target, tol: float, outside: float) -> float:
    """Steep penalty of a number beyond ``_WALL_FROM`` of its tolerance (one-sided for
    ``lt``), quadratic up to ``_WALL_CAP`` tolerances and linear beyond: a number far
    outside still pulls, but does not swamp the walls of the numbers inside."""
    value, _, rel = target
    if not math.isfinite(x):
        return 1e6
    d = x - value if rel in ("lt", "le") else abs(x - value)
    step = outside if d > tol * (1.0 + 1e-9) else 0.0
    e = max(d / tol - _WALL_FROM, 0.0)
    c = _WALL_CAP - _WALL_FROM
    if e <= c:
        return step + (e / _WALL_SCALE) ** 2
    return step + (c / _WALL_SCALE) ** 2 + 2.0 * c / _WALL_SCALE ** 2 * (e - c)  # linear on: a pull, not a cliff


class _Walled:
    """Loss terms with walls, per card number (natural units for the walls)."""

    def __init__(self, card, cx):
        self.base = CovariateLoss(card, cx)
        self.tol = {i: 2.0 * t[1] for i, t in self.base.tg.items()}  # card_targets' scale = tol / 2
        self.tg = self.base.tg
        self.outside = 0.0  # price of a number outside (see polish_covariates)

    def wall(self, x, i) -> float:
        return _wall(x, self.tg[i], self.tol[i], self.outside)

    def pair(self, prefix, shr, z) -> float:
        """Base loss and walls of one SHR and its p."""
        tg = self.tg
        if prefix + ".shr" not in tg:
            return 0.0
        ts, tp = tg[prefix + ".shr"], tg[prefix + ".p"]
        base = term(shr, ts) + zterm(z, tp, 1.0 if ts[0] >= 1 else -1.0)
        p = float(2.0 * ndtr(-abs(z))) if math.isfinite(z) else math.nan
        return base + self.wall(shr, prefix + ".shr") + self.wall(p, prefix + ".p")

    def uni(self, name, x, t) -> float:
        from failpattern.simulate._exact_times import fg_uni

        return self.pair(f"t3.uni.{name}", *fg_uni(x, t, self.base.cause))

    def multi(self, ind, t) -> float:
        if not self.base.multi:
            return 0.0
        stats = self.base.multi_fit(ind, t)
        if stats is None:
            return 1e6
        return sum(self.pair(f"t3.multi.{n}", shr, z) for n, (shr, z) in zip(self.base.multi, stats))

    def cox(self, ind, t) -> float:
        z = self.base.cox_z(ind, t)
        if z is None:
            return 1e6
        out = 0.0
        for j, n in enumerate(COX):
            i = _COX_IDS.get(n)
            if i in self.tg:
                out += zterm(float(z[j]), self.tg[i], _COX_SIGN[n])
                out += self.wall(float(2.0 * ndtr(-abs(z[j]))), i)
        return out

    def table1_size(self, size) -> float:
        out = self.base.table1("tumor_size", size)
        rt, tg = self.base.cx["rt"], self.tg
        if "t1.tumor_size.p" in tg:
            from failpattern.stats.twosample import _mann_whitney

            p = float(_mann_whitney(size[rt == 0], size[rt == 1], False)[2])
            out += self.wall(p, "t1.tumor_size.p")
        return out


#: probability of a jump move (per call of the proposal, when ``jumps`` is given)
_JUMP = 0.08


def _joint_moves(cx: dict, jumps: dict | None = None):
    """Coordinated count-preserving swaps between two patients of one RT group; with
    ``jumps`` (key -> array of allowed 0/1 placements, one per row), jumps between those
    placements instead of any swap of those keys."""
    rt = cx["rt"]
    groups = [np.flatnonzero(rt == g) for g in (0, 1)]
    single = covariate_moves(cx)
    jumps = jumps or {}
    jump_keys = tuple(jumps)
    pairs = tuple(p for p in _PAIRS if not set(p) & set(jump_keys))
    free = np.array([k not in jumps for k in _KEYS], float)

    def flag(st, k):
        return st[k] >= 3.5 if k == "size" else st[k] == 1

    def propose(rng, st, weights):
        if jump_keys and rng.random() < _JUMP:
            k = jump_keys[rng.integers(len(jump_keys))]
            rows = jumps[k]
            return {**st, k: rows[rng.integers(len(rows))].astype(st[k].dtype)}, (k,)
        r = rng.random()
        if r < 0.45:
            return single(rng, st, list(_KEYS), weights * free)
        pool = groups[rng.integers(2)]
        if r < 0.85 and pairs:
            keys = pairs[rng.integers(len(pairs))]
        elif "organs3" not in jumps:  # >= 3 organs with the site flags: the site rule holds by construction
            keys = ("organs3",) + _SITES
        else:
            return None
        # i and j must differ in the first key (else the swap is a no-op for it)
        f = flag(st, keys[0])[pool]
        i = rng.integers(pool.size)
        other = np.flatnonzero(f != f[i])
        if not other.size:
            return None
        i, j = pool[i], pool[other[rng.integers(other.size)]]
        new = dict(st)
        for k in keys:
            v = st[k].copy()
            v[i], v[j] = st[k][j], st[k][i]
            new[k] = v
        if _site_violations(new, cx) > _site_violations(st, cx):
            return None
        return new, keys

    return propose


def polish_covariates(rng: np.random.Generator, card, cx: dict, st: dict, *, iters: int,
                      t_start: float = 2.0, restarts: int = 3, jumps: dict | None = None) -> tuple[dict, dict]:
    """Low-temperature anneal of the multivariable covariates with walls at the tolerances.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the moves.
    card : StudyCard
        Supplies the targets and tolerances.
    cx : dict
        As for :func:`~failpattern.simulate._exact_cov.fit_covariates`.
    st : dict
        The fitted covariate state.
    iters : int
        Moves tried.
    t_start : float
        Starting temperature of the first phase (cools geometrically to 0.02).
    restarts : int
        Independent chains from ``st`` (``iters`` shared among them); the best is kept.
    jumps : dict, optional
        Covariate key -> 2-D array of allowed placements (one 0/1 row per placement); such
        a covariate moves only by jumping to another row (``st`` must hold one of them).

    Returns
    -------
    (state, parts) with the lowest loss seen; counts unchanged.
    """
    loss = _Walled(card, cx)
    t = cx["t"]

    def parts_of(s, changed, old):
        ind = indicators(s, cx)
        keys = changed if changed is not None else _KEYS + _SITES
        out = dict(old) if old is not None and changed is not None else {}
        for k in keys:
            out[f"uni.{KEYS[k]}"] = loss.uni(KEYS[k], ind[KEYS[k]], t)
        names = {KEYS[k] for k in keys}
        if any(n in loss.base.multi for n in names):
            out["multi"] = loss.multi(ind, t)
        if any(n in COX for n in names):
            out["cox"] = loss.cox(ind, t)
        if "size" in keys:
            out["t1.tumor_size"] = loss.table1_size(s["size"])
        return out

    move = _joint_moves(cx, jumps)

    def related(parts, k):
        n = KEYS[k]
        return parts.get(f"uni.{n}", 0.0) + (parts.get("multi", 0.0) if n in loss.base.multi else 0.0) \
            + (parts.get("cox", 0.0) if n in COX else 0.0)

    def propose(rng, s, parts):
        w = np.array([0.3 + min(related(parts, k), 50.0) for k in _KEYS])
        return move(rng, s, w)

    # 1. walls that pull numbers in, without a price for being outside (a number far
    # outside may need others to pass through the edge on its way in); 2. with the price,
    # hotter, so that states are ranked by how many numbers are outside. Independent
    # restarts from the fitted state, the lowest loss (with the price) kept: one chain
    # often ends with a single number stuck just outside.
    if iters <= 0:
        return st, parts_of(st, None, None)
    start, best, best_parts = st, None, None
    for _ in range(restarts):
        s = start
        for outside, temp in ((0.0, t_start), (_OUTSIDE, 5.0 * t_start)):
            loss.outside = outside
            s, parts = anneal(rng, s, propose, parts_of, iters=iters // (2 * restarts), t_start=temp, stop=0.0)
        if best is None or sum(parts.values()) < sum(best_parts.values()):
            best, best_parts = s, parts
    return best, best_parts
