"""Array kernel of Gray's (1988) K-sample test for cumulative incidence.

Private to :mod:`failpattern.stats.cif`. Reproduces the score and variance of
cmprsk's ``crstm`` (cmprsk 2.2-11, called by ``cuminc``) without loops over
observations or times: each running quantity of Gray's sequential algorithm is
a cumulative sum or product over the distinct times, computed for several
causes and all strata at once on ``(cause, stratum, time, group)`` arrays.
Inputs are trusted.

Notation, per stratum, distinct time ``t`` and group ``k``: ``n_k`` at risk,
``S_k(t-)`` the group's all-cause Kaplan-Meier, ``F_k(t-)`` its cumulative
incidence of the cause, ``h_k = n_k / S_k(t-)``, ``R = sum_k h_k``, the pooled
incidence ``F(t) = F(t-) + d1 / R`` and the weight ``w = (1 - F(t-))**rho``.
The score of group ``k`` adds ``w (d1_k - d1 h_k (1 - F_k(t-)) / sum_r h_r (1 - F_r(t-)))``;
its variance follows ``crst`` term by term (own-cause and other-cause
contributions, each with Gray's correction for tied events).

Cost: O(n) counting plus O(K S m g^3) for K causes, S strata, m distinct times
and g groups (the variance contracts an ``m x g x g`` array per group pair).
Memory is bounded: causes are taken in batches, and when the dense
``(stratum, time)`` grid would be much larger than the data each stratum is
computed on its own distinct times (a loop over strata, never observations).
"""

from __future__ import annotations

import numpy as np

_BATCH_CELLS = 2_000_000   # largest cause-batch array (cells of K*S*m*g*g) held at once
_DENSE_CELLS = 4_000_000   # above this many (stratum, time) cells, one stratum at a time


def _shift(a: np.ndarray, first: float, trail: int) -> np.ndarray:
    """Values just before each time: the time axis is followed by ``trail`` axes."""
    rest = (slice(None),) * trail
    out = np.empty_like(a)
    out[(Ellipsis, 0) + rest] = first
    out[(Ellipsis, slice(1, None)) + rest] = a[(Ellipsis, slice(None, -1)) + rest]
    return out


def _recip(x: np.ndarray, where: np.ndarray) -> np.ndarray:
    return np.divide(1.0, x, out=np.zeros(np.broadcast(x, where).shape), where=where)


def gray_kernel(index: np.ndarray, cause: np.ndarray, group: np.ndarray,
                strata: np.ndarray | None,
                m: int, n_causes: int, g: int, n_strata: int, rho: float,
                causes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and covariances of Gray's test for the requested causes.

    Parameters
    ----------
    index : (n,) position of each observation's time among the ``m`` distinct times.
    cause : (n,) 0 = censored, 1..n_causes.
    group, strata : (n,) codes ``0..g-1`` and ``0..n_strata-1`` (``strata`` may be
        ``None`` when ``n_strata`` is 1).
    m, n_causes, g, n_strata : sizes.
    rho : weight power.
    causes : (q,) cause codes (1-based) to test.

    Returns
    -------
    score : (q, g-1) scores of the first ``g - 1`` groups, summed over strata.
    variance : (q, g-1, g-1) their covariances.
    """
    if n_strata > 1 and n_strata * m > max(_DENSE_CELLS, 4 * index.size):
        return _by_stratum(index, cause, group, strata, n_causes, g, n_strata, rho, causes)
    k1 = n_causes + 1
    cell = (index * k1 + cause) * g + group
    if n_strata > 1:    # (strata may be None with one stratum)
        cell += strata * (m * k1 * g)
    counts = np.bincount(cell, minlength=n_strata * m * k1 * g).reshape(n_strata, m, k1, g)
    counts = counts.astype(np.float64)
    rs = np.cumsum(counts.sum(axis=2)[:, ::-1], axis=1)[:, ::-1]       # (S, m, g) at risk
    events = counts[:, :, 1:, :].transpose(2, 0, 1, 3)                 # (K, S, m, g)
    dall = events.sum(axis=0)
    live = rs > 0
    with np.errstate(divide="ignore", invalid="ignore"):                # F(t-) = 1: NaN, as R
        inv_rs = _recip(rs, live)
        # all-cause Kaplan-Meier by group, the same for every cause tested
        skm = np.cumprod(1.0 - dall * inv_rs, axis=1)                   # S_k(t)
        skmm = np.where(live, _shift(skm, 1.0, trail=1), 1.0)            # S_k(t-) where at risk
        h = rs / skmm                                                   # 0 where nobody at risk
        tr = h.sum(axis=2)                                              # (S, m)
        inv_tr = _recip(tr, tr > 0)
        # rows 0..g-2 of h_k 1{k = l} - h_k h_l / sum h (only those rows are ever used)
        hr = h[..., :g - 1, None]
        a0 = hr * np.eye(g)[:g - 1] - hr * h[..., None, :] * inv_tr[..., None, None]
        alive = skm > 0
        inv_skm = _recip(skm, alive)
        shared = (rs, live, inv_rs, skm, skmm, inv_skm, h, tr, inv_tr, a0, alive,
                  _recip(rs - 1.0, rs > 1), (skmm * inv_rs) ** 2)
        per = max(1, _BATCH_CELLS // max(1, n_strata * m * g * g))
        if len(causes) <= per:
            d1 = events[np.asarray(causes) - 1]                         # (q, S, m, g)
            return _batch(d1, dall - d1, *shared, g, rho)
        scores, variances = [], []
        for start in range(0, len(causes), per):
            d1 = events[np.asarray(causes[start:start + per]) - 1]
            s, v = _batch(d1, dall - d1, *shared, g, rho)
            scores.append(s)
            variances.append(v)
    return np.concatenate(scores), np.concatenate(variances)


def _by_stratum(index, cause, group, strata, n_causes, g, n_strata, rho, causes):
    """Many strata: sum the strata computed one at a time on their own distinct times."""
    order = np.argsort(strata, kind="stable")
    bounds = np.searchsorted(strata[order], np.arange(n_strata + 1))
    score, var = 0.0, 0.0
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        rows = order[lo:hi]
        if rows.size:
            times, local = np.unique(index[rows], return_inverse=True)
            s, v = gray_kernel(local, cause[rows], group[rows], None,
                               times.size, n_causes, g, 1, rho, causes)
            score, var = score + s, var + v
    return score, var


def _batch(d1, d2, rs, live, inv_rs, skm, skmm, inv_skm, h, tr, inv_tr, a0, alive, inv_rs1,
           base2, g, rho):
    """Score and variance for a batch of causes (leading axis), summed over strata.

    ``a0`` holds rows ``0..g-2`` only; ``alive`` is ``S_k(t) > 0``, ``inv_rs1``
    ``1 / (n_k - 1)`` (0 where ``n_k <= 1``) and ``base2`` ``(S_k(t-) / n_k)**2``.
    Called with floating-point warnings silenced (``F(t-) = 1`` gives NaN, as R).
    """
    g1 = g - 1
    nd1 = d1.sum(axis=-1)                                               # (q, S, m)
    f1m = np.zeros(d1.shape)                                            # F_k(t-): the sum
    np.cumsum((skmm * d1 * inv_rs)[..., :-1, :], axis=-2, out=f1m[..., 1:, :])   # before t
    hf = h * (1.0 - f1m)
    tq = hf.sum(axis=-1)
    f = np.cumsum(nd1 * inv_tr, axis=-1)                                # pooled F(t)
    fm = _shift(f, 0.0, trail=0)
    fb = (1.0 - fm) ** rho
    # only times with events of the cause add to c (crst skips the others)
    step = np.where(nd1 > 0, fb * nd1 * inv_tr / (1.0 - fm), 0.0)
    c = np.cumsum(a0 * step[..., None, None], axis=-3)                  # (q, S, m, g-1, g)
    expect = (nd1 * _recip(tq, tq > 0))[..., None] * hf
    score = (fb[..., None] * np.where(live, d1 - expect, 0.0)).sum(axis=(1, 2))[:, :g1]

    # own-cause terms: times with d1 > 0, groups with someone at risk
    own = live & (nd1 > 0)[..., None]
    rest = (1.0 - f[..., None]) * inv_skm
    t4 = np.where(alive, 1.0 - rest, 1.0)
    tied = own & (nd1 > 1)[..., None]
    ties = np.where(tied, (nd1 - 1.0)[..., None], 0.0) / np.where(tied, tr[..., None] * skmm - 1.0, 1.0)
    t3 = np.where(own, (1.0 - ties) * skmm * (nd1 * inv_tr)[..., None] * inv_rs, 0.0)
    # other-cause terms: groups with other-cause events and S_k(t) > 0
    other = alive & (d2 > 0)
    u4 = np.where(other, rest, 0.0)
    u3 = np.where(other, (1.0 - np.maximum(d2 - 1.0, 0.0) * inv_rs1) * base2 * d2, 0.0)
    # own (dev) and other-cause (oth) deviations side by side on a leading axis of 2
    both = np.empty((2,) + c.shape)                                     # (2, q, S, m, g-1, g)
    dev, oth = both
    np.multiply(t4[..., None, :], c, out=dev)
    np.subtract(fb[..., None, None] * a0, dev, out=dev)
    np.multiply(u4[..., None, :], c, out=oth)
    weight = np.empty((2,) + t3.shape)                                  # (2, q, S, m, g)
    weight[0] = t3
    weight[1] = u3
    var = np.einsum("xqsmik,xqsmjk->qij", both, both * weight[..., None, :])
    tt, uu = t4 * t3, u4 * u3
    v3 = (t4 * tt + u4 * uu).sum(axis=-2)                              # (q, S, g)
    v2 = (dev * tt[..., None, :] - oth * uu[..., None, :]).sum(axis=-3)
    cf = c[..., -1, :, :]                                               # final c per stratum
    cross = np.einsum("qsik,qsjk->qij", cf, v2)
    var += np.einsum("qsik,qsjk->qij", cf, cf * v3[..., None, :])
    var += cross
    var += cross.transpose(0, 2, 1)
    return score, var


def _gram(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``out[q, i, j] = sum over all middle axes and the last axis of x[q, ..., i, k] y[q, ..., j, k]``."""
    mid = "sm"[: x.ndim - 3]
    return np.einsum(f"q{mid}ik,q{mid}jk->qij", x, y)


def gray_statistic(score: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``s' V^{-1} s`` for each cause; ``NaN`` where ``V`` is singular (cuminc reports -1).

    ``score`` is ``(q, r)`` and ``var`` ``(q, r, r)``. cuminc inverts ``V``
    through a QR decomposition and reports -1 when its rank (tolerance 1e-7)
    is below full; we apply the same relative tolerance to the singular values.
    """
    if var.shape[-1] == 1:  # two groups: a 1 x 1 variance is singular only when it is 0
        v, sc = var[:, 0, 0], score[:, 0]
        ok = np.isfinite(v) & np.isfinite(sc) & (v != 0)
        return np.where(ok, sc * sc / np.where(ok, v, 1.0), np.nan)
    eye = np.eye(var.shape[-1])
    finite = np.isfinite(var).all(axis=(1, 2)) & np.isfinite(score).all(axis=1)
    safe = np.where(finite[:, None, None], var, eye)
    sv = np.linalg.svd(safe, compute_uv=False)
    ok = finite & (sv[:, -1] > 1e-7 * sv[:, 0])
    solved = np.linalg.solve(np.where(ok[:, None, None], safe, eye), score[..., None])[..., 0]
    return np.where(ok, (score * solved).sum(axis=1), np.nan)
