"""Exact mode, covariates: a last search for each covariate that only a univariate row holds.

Why: a univariate Fine-Gray row of Table 3 has two targets (the SHR and its p), and a
covariate in no multivariable model moves nothing else the covariate stage fits. The
annealer's single random swaps often stop one or two swaps away from a placement that
meets both. Two steps, each covariate alone, each batched through the Fine-Gray kernel:

* **random draws** (with ``rng``): ``draws`` placements of the covariate drawn afresh
  (the same count in each RT group, the site rule kept), the best taken if it beats the
  current one. On the shipped cohort's times, about 1 in 700 random
  placements of liver metastases meets both its SHR and p, where no one- or two-swap path
  from the annealer's placement did;
* **steepest descent**: every allowed swap scored at once, the best taken while it lowers
  the loss; when none does, the ``top`` best single swaps are each extended by a second.

Both rank placements by the walled loss of :mod:`~failpattern.simulate._exact_polish`, so a
placement with both numbers inside always beats one with a number outside.
"""

from __future__ import annotations

import math

import numpy as np

from failpattern.simulate._exact_cov import _SITES, KEYS, indicators
from failpattern.simulate._exact_polish import _OUTSIDE, _Walled

__all__ = ["DRAWS", "SOLO", "search_univariate", "swapped_state"]

#: covariates in no multivariable model: each moves only its own univariate Fine-Gray row
SOLO = ("age", "male", "ecog2", "t34", "n0", "lung", "liver", "adrenal", "bone", "lines")
#: random placements drawn per covariate by :func:`search_univariate` when given an ``rng``
DRAWS = 4000


def _fg_many(X: np.ndarray, t: np.ndarray, cause: np.ndarray, times) -> tuple[np.ndarray, np.ndarray]:
    """SHR and Wald z (Stata variance) of one-covariate Fine-Gray fits, one per column of
    ``X`` (NaN where a fit fails), batched and finished as the plan's Table 3 is
    (``_finegray_batch``, then ``finegray._fit_prepared``, which refits alone what the batch
    leaves and applies the variance convention)."""
    from failpattern.errors import ConvergenceError, InputError
    from failpattern.stats import _finegray_kernel as kernel
    from failpattern.stats._finegray_batch import fit_univariate
    from failpattern.stats.finegray import _fit_prepared

    preps = [kernel.prepare(t, cause, X[:, j:j + 1].astype(float), 1, times) for j in range(X.shape[1])]
    shr, z = np.full(X.shape[1], np.nan), np.full(X.shape[1], np.nan)
    for j, fit in enumerate(fit_univariate(times, preps)):
        try:
            res = _fit_prepared(preps[j], ("x",), 1, "stata", 0.05, 1e-9, 50, fitted=fit)
        except (ConvergenceError, InputError, np.linalg.LinAlgError):
            continue
        shr[j], z[j] = math.exp(res.coef[0]), res.coef[0] / res.se[0]
    return shr, z


def _site_free(s: dict, cx: dict, k: str) -> np.ndarray:
    """Patients who may carry site ``k``: >= 3 organs, or at most one other flagged site
    (brain included), so that no patient with 1-2 organs has more than two."""
    others = cx["bbm"].astype(int) + sum(s[q].astype(int) for q in _SITES if q != k)
    return (s["organs3"] == 1) | (others + 1 <= 2)


def _draw(rng: np.random.Generator, s: dict, cx: dict, k: str, m: int) -> np.ndarray:
    """``m`` random placements of covariate ``k`` (one per column), each keeping the count
    of every value in each RT group (prior lines: over all patients, as the paper gives no
    split by group) and, for a site, the site rule. Binary covariates only, and lines."""
    v, rt = s[k], cx["rt"]
    out = np.repeat(v[:, None], m, 1)
    groups = [np.arange(v.size)] if k == "lines" else [np.flatnonzero(rt == g) for g in (0, 1)]
    free = _site_free(s, cx, k) if k in _SITES else np.ones(v.size, bool)
    for g in groups:
        if k == "lines":  # a permutation of the values
            out[g] = v[g][np.argsort(rng.random((g.size, m)), axis=0)]
            continue
        carriers = int((v[g] == 1).sum())
        pool = g[free[g]]
        out[g] = 0
        pick = np.argsort(rng.random((pool.size, m)), axis=0)[:carriers]  # first `carriers` of a shuffle
        out[pool[pick], np.arange(m)[None, :]] = 1
    return out


def _swapped(a: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """One column per pair: ``a`` with the entries of the pair exchanged."""
    cols = np.repeat(np.asarray(a)[:, None], len(pairs), axis=1)
    c = np.arange(len(pairs))
    cols[pairs[:, 0], c], cols[pairs[:, 1], c] = cols[pairs[:, 1], c], cols[pairs[:, 0], c]
    return cols


def swapped_state(st: dict, keys, i: int, j: int) -> dict:
    """``st`` with patients ``i`` and ``j`` exchanging their values of ``keys`` (a copy)."""
    new = dict(st)
    for k in keys:
        v = np.array(st[k])
        v[i], v[j] = v[j], v[i]
        new[k] = v
    return new


def search_univariate(card, cx: dict, st: dict, *, rounds: int = 6, top: int = 4,
                       rng: np.random.Generator | None = None, draws: int = DRAWS,
                       keys: tuple = SOLO) -> dict:
    """Random draws, then a steepest descent over swaps, for each covariate of :data:`SOLO`.

    Swaps: two patients of one RT group with different values (prior lines among all; a
    site flag only where the site rule holds). Ages are swapped between patients on
    either side of the cut-off, so Table 1's medians and Mann-Whitney test by RT group do
    not change; ages take no random draws for the same reason.

    Parameters
    ----------
    card : StudyCard
        Supplies the targets and tolerances.
    cx : dict
        As for :func:`~failpattern.simulate._exact_cov.fit_covariates`.
    st : dict
        The covariate state.
    rounds : int
        Most swaps taken per covariate.
    top : int
        Single swaps extended by a second one when no single swap helps.
    rng : numpy.random.Generator, optional
        Source of the random draws; without it the step is deterministic and draws none.
    draws : int
        Random placements drawn per covariate (with ``rng``).
    keys : tuple of str
        The covariates searched (a subset of :data:`SOLO`; default all).

    Returns
    -------
    dict
        The new state; counts unchanged.
    """
    from failpattern.stats import _finegray_kernel as kernel

    loss = _Walled(card, cx)
    loss.outside = _OUTSIDE
    t, cause, rt = cx["t"], loss.base.cause, cx["rt"]
    times = kernel.prepare_times(t, cause, 1)
    st = dict(st)
    for k in (k for k in SOLO if k in keys):
        name, prefix = KEYS[k], f"t3.uni.{KEYS[k]}"
        if prefix + ".shr" not in loss.tg:
            continue

        def pairs_of(s, k=k, name=name):
            x = indicators(s, cx)[name]
            same = rt[:, None] == rt[None, :] if k != "lines" else np.ones((rt.size, rt.size), bool)
            ok = same & x[:, None] & ~x[None, :]
            if k in _SITES:  # the receiver must be free to carry the site
                ok &= _site_free(s, cx, k)[None, :]
            i, j = np.nonzero(ok)
            return x, i, j

        def losses(X, prefix=prefix):
            shr, z = _fg_many(X, t, cause, times)
            return np.array([loss.pair(prefix, float(a), float(b)) for a, b in zip(shr, z)])

        def scored(x, i, j):
            return losses(_swapped(x, np.column_stack([i, j])))

        def apply(s, i, j, k=k):
            return swapped_state(s, (k,), i, j)

        x0 = indicators(st, cx)[name]
        current = float(losses(x0[:, None])[0])
        if rng is not None and draws > 0 and k != "age":
            V = _draw(rng, st, cx, k, draws)
            lo = losses(indicators({**st, k: V}, cx)[name])  # elementwise: one column per draw
            b = int(np.argmin(lo))
            if lo[b] < current - 1e-9:
                st, current = {**st, k: V[:, b].copy()}, float(lo[b])
        for _ in range(rounds):
            x, i, j = pairs_of(st)
            if not i.size:
                break
            lo = scored(x, i, j)
            b = int(np.argmin(lo))
            if lo[b] < current - 1e-9:
                st, current = apply(st, i[b], j[b]), float(lo[b])
                continue
            best = None
            for c in np.argsort(lo, kind="stable")[:top]:
                s1 = apply(st, i[c], j[c])
                x1, i1, j1 = pairs_of(s1)
                if not i1.size:
                    continue
                lo1 = scored(x1, i1, j1)
                b1 = int(np.argmin(lo1))
                if best is None or lo1[b1] < best[0]:
                    best = (float(lo1[b1]), apply(s1, i1[b1], j1[b1]))
            if best is None or best[0] >= current - 1e-9:
                break
            current, st = best
    return st
