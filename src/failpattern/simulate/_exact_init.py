"""Exact mode, starting point: weighted picks and candidate draws of PFS1 / PFS2 times.

Why separate: :mod:`failpattern.simulate.exact` allocates the strata and covariates;
the times it starts the fitting stages from are drawn here from the fitted model,
conditionally on each patient's outcome (truncated Weibull), 2,000 candidate cohorts at
a time, keeping the first candidate whose Kaplan-Meier medians are all within ``tol``
of the paper (among several, the one whose log-rank z is closest to the published test);
between rounds a time multiplier per cell moves the typical medians toward the targets.
"""

from __future__ import annotations

import numpy as np

from failpattern.errors import FailpatternError
from failpattern.simulate._km import km_medians, logrank_z
from failpattern.simulate.generate import CUTOFF_DAY, DPM, accrual_inv, pfs1_lp

__all__ = ["_initial_pfs1", "_initial_pfs2", "_pick", "_pick_within"]

# PFS2 events (salvage RT, CBPD without salvage RT, no CBPD), tried in turn
_EV2 = ((11, 7, 10), (10, 9, 9), (12, 8, 8), (9, 9, 10), (11, 8, 9))


def _pick(rng, weights, k: int) -> np.ndarray:
    """Boolean mask of ``k`` items drawn without replacement with probability ∝ ``weights``
    (Efraimidis-Spirakis keys; zero weights are taken last)."""
    w = np.asarray(weights, float)
    u = rng.random(w.size)
    with np.errstate(divide="ignore"):
        key = np.where(w > 0, np.log(u) / np.where(w > 0, w, 1.0), -np.inf - 0.0)
    key = np.where(w > 0, key, -1e300 + u)  # zero weight: last, in random order
    out = np.zeros(w.size, bool)
    if k > 0:
        out[np.argsort(-key, kind="stable")[:k]] = True
    return out


def _pick_within(rng, groups, counts, weights) -> np.ndarray:
    """Exactly ``counts[g]`` items in each group ``g`` (``groups`` coded 0..G-1)."""
    out = np.zeros(groups.size, bool)
    for g, k in enumerate(counts):
        idx = np.flatnonzero(groups == g)
        out[idx[_pick(rng, np.asarray(weights)[idx], k)]] = True
    return out


def _trunc_weibull(u, scale, shape, lp, upper):
    """Weibull PH time conditioned to be <= ``upper`` (inverse CDF of the truncated law)."""
    h_up = (np.maximum(upper, 1e-9) / scale) ** shape * np.exp(lp)
    f_up = -np.expm1(-h_up)
    return scale * (-np.log1p(-u * f_up) * np.exp(-lp)) ** (1.0 / shape)


def _typical(meds: np.ndarray) -> np.ndarray:
    """Median over candidates of each target's KM median (not reached = 100 months)."""
    return np.median(np.where(np.isnan(meds), 100.0, meds), axis=0)


def _choose(meds: np.ndarray, targets, tol: float, z=None, z_target=None) -> int | None:
    """The candidate whose medians are all within ``tol``; among several, the one whose
    log-rank z is closest to the published test's (``z_target``)."""
    dev = np.abs(np.where(np.isnan(meds), np.inf, meds) - np.asarray(targets)[None, :]).max(1)
    ok = np.flatnonzero(dev <= tol)
    if not ok.size:
        return None
    if z is None or z_target is None:
        return int(ok[0])
    return int(ok[np.argmin(np.abs(np.nan_to_num(z[ok]) - z_target))])


def _z_of(card, key: str, sign: float):
    """Signed normal deviate of the card's p-value ``key`` (None if the card lacks it)."""
    from scipy.special import ndtri

    return sign * float(ndtri(1.0 - float(card.get(key).value) / 2.0)) if key in card else None


def _initial_pfs1(rng, p, s, b, prog, tol, candidates, max_rounds, attempts, card, median_ids):
    """Start days and PFS1 days whose four medians are within ``tol`` (candidate draws)."""
    n = prog.size
    tg1 = [float(card.get(i).value) for i in median_ids]
    cov = {"brain": s["bbm"], "brain_rt": s["brain_rt"], "non_adeno": b["non_adeno"], "organs": b["organs"],
           "response": b["response"]}
    lp1 = pfs1_lp(p, cov)
    z1 = _z_of(card, "pfs1.bbm.prior_brain_rt.p", -1.0)
    masks1 = [np.ones(n, bool), s["bbm"] == 1, s["brain_rt"] > 0, (s["bbm"] == 1) & (s["brain_rt"] == 0)]
    # cells with their own time multiplier, adapted between rounds (stochastic approximation)
    cells1 = [masks1[2], masks1[3], s["bbm"] == 0]
    mult1 = np.ones(3)
    for _ in range(attempts * max_rounds):
        K = candidates
        start = accrual_inv(rng.random((K, n)), p.accrual_growth)
        # progressed patients need room for their progression (and PD at the first scan)
        start = np.where(prog, np.minimum(start, CUTOFF_DAY - 62), start)
        follow = CUTOFF_DAY - start
        lp = lp1 - p.pfs1_shape * np.log(sum(m * c for m, c in zip(mult1, cells1)))
        t1 = _trunc_weibull(rng.random((K, n)), p.pfs1_scale, p.pfs1_shape, lp, follow / DPM)
        lo, hi = p.pd_scan
        t1 = np.where(b["response"] == 3, lo + (hi - lo) * rng.random((K, n)), t1)
        t1_d = np.clip(np.round(t1 * DPM), 1, follow).astype(np.int64)
        pfs1_d = np.where(prog, t1_d, follow)
        meds = np.stack([km_medians(pfs1_d / DPM, np.broadcast_to(prog, (K, n)), m) for m in masks1], 1)
        z = logrank_z(pfs1_d / DPM, np.broadcast_to(prog, (K, n)), s["brain_rt"] > 0, masks1[1])
        k = _choose(meds, tg1, tol, z, z1)
        if k is not None:
            return start[k], pfs1_d[k]
        typical = _typical(meds)
        mult1 *= np.clip([tg1[2] / typical[2], tg1[3] / typical[3], tg1[0] / typical[0]], 0.7, 1.4)
    raise FailpatternError("exact mode: no PFS1 times matched the published medians; raise attempts")


def _initial_pfs2(rng, p, s, prog, follow2, tol, candidates, card, median_ids):
    """CBPD, next therapy, PFS2 events and days whose five medians are within ``tol``."""
    n = prog.size
    tg2 = [float(card.get(i).value) for i in median_ids]
    z2 = _z_of(card, "pfs2.salvage_rt.p", -1.0)
    salv = s["salvage"] > 0
    cbpd = salv | _pick(rng, np.where(prog & ~salv, 1.0, 0.0), 35 - int(salv.sum()))
    lp2 = p.c_salvage * salv + p.c_cbpd * cbpd
    # events go preferentially to patients followed longer after progression
    room = np.where(follow2 >= 15, (follow2 / DPM) ** 2, 1e-6) * prog
    masks2 = [prog, salv, prog & ~salv, prog & cbpd, prog & ~cbpd]
    cells2 = [salv, prog & cbpd & ~salv, prog & ~cbpd]
    mult2 = np.ones(3)
    for _attempt in range(6):
        for alloc in _EV2:
            ev2 = np.zeros(n, bool)
            for grp, k_ev in zip(cells2, alloc):
                idx = np.flatnonzero(grp)
                ev2[idx[_pick(rng, room[idx], k_ev)]] = True
            for _ in range(4):
                K = candidates
                lp = lp2 - p.pfs2_shape * np.log(sum(m * c for m, c in zip(mult2, cells2)) + ~prog)
                t2 = _trunc_weibull(rng.random((K, n)), p.pfs2_scale, p.pfs2_shape, lp, follow2 / DPM)
                t2_d = np.clip(np.round(t2 * DPM), 1, np.maximum(follow2, 1)).astype(np.int64)
                pfs2_d = np.where(ev2, t2_d, follow2)
                meds = np.stack([km_medians(pfs2_d / DPM, np.broadcast_to(ev2, (K, n)), m) for m in masks2], 1)
                z = logrank_z(pfs2_d / DPM, np.broadcast_to(ev2, (K, n)), salv, prog)
                k2 = _choose(meds, tg2, tol, z, z2)
                if k2 is not None:
                    return cbpd, ev2, pfs2_d[k2]
                typ = _typical(meds)
                mult2 *= np.clip([tg2[1] / typ[1], np.sqrt(tg2[2] / typ[2] * tg2[3] / typ[3]), tg2[4] / typ[4]],
                                 0.7, 1.4)
    raise FailpatternError("exact mode: no PFS2 times matched the published medians")


