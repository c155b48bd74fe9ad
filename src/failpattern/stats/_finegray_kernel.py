"""Array kernels of the Fine-Gray fit (private; inputs are trusted).

All risk-set sums are computed on the distinct observed times with one sort,
``np.add.reduceat`` group sums and cumulative sums, so one evaluation of the
log pseudo-likelihood, score and information costs O(n p^2) after the single
O(n log n) sort done by :func:`prepare`. The derivation is in the docstring of
:mod:`failpattern.stats.finegray`; the names below follow it:

``k``      index of a distinct time ``tau_k`` (``m`` of them),
``d_k``    failures of the cause of interest at ``tau_k``,
``G_k``    censoring Kaplan-Meier just before ``tau_k`` (crr's ``G(t-)``),
``r_i``    ``exp(x_i b)`` (shifted by the largest linear predictor),
``S0_k``   weighted risk-set sum at ``tau_k``,
``lam_k``  Breslow increment ``d_k / S0_k``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.linalg.lapack import dgesv as _dgesv
from scipy.linalg.lapack import dpotrf as _dpotrf

from failpattern.errors import ConvergenceError
from failpattern.stats._linalg import triangle


@dataclass(frozen=True)
class CensoringGroups:
    """crr's ``cengroup``: a censoring Kaplan-Meier per group (``ncg >= 2`` groups).

    A competing row's weight at failure time ``tau_k`` is ``G_g(tau_k-) / G_g(T_j-)`` with
    ``g`` its own group; the psi term of the variance uses per-group censoring counts and
    numbers at risk (``crrvv``).
    """

    code: np.ndarray     # (n,) group of each sorted row, 0..ncg-1
    G: np.ndarray        # (ncg, f) G_g just before each failure time of interest
    c_count: np.ndarray  # (c, ncg) censored rows of each group at each censoring time
    c_risk: np.ndarray   # (c, ncg) rows of each group with time >= that time
    d: np.ndarray        # (ncg, f) failures of interest of each group at each failure time


@dataclass(frozen=True)
class Prepared:
    """Data sorted by time, with the censoring weights, ready for repeated evaluation.

    ``f`` failure times of interest (distinct times with ``d_k > 0``), ``c``
    distinct times with a censoring; per-row indices point into those lists.
    """

    x: np.ndarray          # (n, p) covariates, sorted by time, centred at their means
    w: np.ndarray          # (n, 2p + 2) [1, x, 1/g, x/g], the last two zero unless competing
    starts: np.ndarray     # (m,) first sorted row of each distinct time
    fail: np.ndarray       # (n,) float 1.0 for a failure of the cause of interest
    fail_rows: np.ndarray  # rows failing from the cause of interest
    cens_rows: np.ndarray  # censored rows
    n_comp: int            # competing failures
    events: np.ndarray     # (f,) distinct-time index of each failure time of interest
    d: np.ndarray          # (f,) failures of interest there
    G: np.ndarray          # (f,) censoring KM just before them (crr's G(t-))
    inv_g: np.ndarray      # (n,) 1 / G(t_i-) for competing rows, 0 otherwise
    n_le: np.ndarray       # (n,) number of failure times of interest <= t_i
    cens_times: np.ndarray  # (c,) distinct-time index of each censoring time
    n_before: np.ndarray   # (c,) number of failure times of interest < that time
    c_count: np.ndarray    # (c,) number censored there
    c_risk: np.ndarray     # (c,) number with time >= that time
    c_le: np.ndarray       # (n,) number of censoring times <= t_i
    x_fail_sum: np.ndarray  # (p,) sum of x over failures of interest
    # small problems only (failure times x rows <= _DENSE_CELLS), else None:
    dense: np.ndarray | None = None  # (f, n) risk-set weight of each row at each failure time
    z: np.ndarray | None = None      # (n, 1 + p + p(p+1)/2) [1, x, upper triangle of x x']
    full: np.ndarray | None = None   # (p * p,) position of each cell of a p x p matrix in it
    groups: CensoringGroups | None = None  # crr's cengroup (None: one censoring distribution)
    tv: TimeVarying | None = None    # crr's cov2 / tf (None: every effect constant in time)


@dataclass(frozen=True)
class TimeVarying:
    """crr's ``cov2`` / ``tf``: coefficient ``j`` multiplies ``x_j * T[k, j]`` at failure time
    ``k``, ``T`` 1 for the constant effects (crr's ``cov1``) and ``tf(t_k)`` for the others.

    The risk scores then differ at every failure time, so the sums are taken over an
    ``(f, n)`` matrix of risk-set weights times scores, in blocks of failure times
    (:func:`_tv_blocks`): O(n f p^2) per Newton step, vectorised within a block.
    Censoring-group arrays are the single distribution's as one group when there are none.
    """

    tf: np.ndarray          # (f, p) time factor of each coefficient at each failure time
    tfz: np.ndarray         # (f, p + p(p+1)/2) [T, T_a T_b] (scales the moments A @ z)
    z: np.ndarray           # (n, 1 + p + p(p+1)/2) [1, x, upper triangle of x x']
    full: np.ndarray        # (p * p,) position of each cell of a p x p matrix in the triangle
    fail_k: np.ndarray      # (failures,) failure-time index of each failing row
    z_fail_sum: np.ndarray  # (p,) sum over failing rows of x_i * T[k_i]
    comp_rows: np.ndarray   # competing rows (sorted order)
    comp_before: np.ndarray  # (c,) competing rows with time < each censoring time
    code: np.ndarray        # (n,) censoring group of each row (zeros with one group)
    G: np.ndarray           # (ncg, f) G_g just before each failure time
    d: np.ndarray           # (ncg, f) failures of interest of each group there
    c_count: np.ndarray     # (c, ncg) censored of each group at each censoring time
    c_risk: np.ndarray      # (c, ncg) rows of each group with time >= it
    block: int              # failure times per block
    n_varying: int          # time-varying coefficients (the last ones)


_TV_CELLS = 1 << 19  # cells of one block of the time-varying path (f_block x n x columns)


_DENSE_CELLS = 30_000  # failure times x rows at or below which risk sets are a dense matrix


@dataclass(frozen=True)
class Times:
    """The part of :class:`Prepared` that depends on the times and causes only (the
    sort, the tabulation, the censoring weights; fields as there, plus ``order``, the
    stable sort by time), so fits of other covariates on the same patients can share it."""

    order: np.ndarray
    starts: np.ndarray
    fail: np.ndarray
    fail_rows: np.ndarray
    cens_rows: np.ndarray
    n_comp: int
    events: np.ndarray
    d: np.ndarray
    G: np.ndarray
    inv_g: np.ndarray
    n_le: np.ndarray
    cens_times: np.ndarray
    n_before: np.ndarray
    c_count: np.ndarray
    c_risk: np.ndarray
    c_le: np.ndarray
    dense: np.ndarray | None
    groups: CensoringGroups | None = None


def prepare_times(time: np.ndarray, cause: np.ndarray, cause_of_interest: int,
                  cengroup: np.ndarray | None = None) -> Times:
    """Sort once and tabulate; ``cause`` 0 = censored, ``cause_of_interest``, others competing.

    ``cengroup``: integer codes ``0..ncg-1`` of crr's censoring groups (``None`` or a single
    group: one censoring distribution, as crr's default).
    """
    if cengroup is not None and int(cengroup.max()) >= 1:
        return _prepare_times_groups(time, cause, cause_of_interest, cengroup)
    order = np.argsort(time, kind="stable")
    t = time[order]
    c = cause[order]
    n = t.size
    kind = 2 * (c != 0) - (c == cause_of_interest)      # 0 censored, 1 of interest, 2 competing
    # the distinct times of the sorted times (the table of _tables.time_table, without a 2nd sort)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(t[1:], t[:-1], out=new[1:])
    starts = new.nonzero()[0]
    group = new.cumsum()
    group -= 1
    m = starts.size
    counts = np.bincount(group * 3 + kind, minlength=3 * m).reshape(m, 3).astype(np.float64)
    n_cens = counts[:, 0]
    d = counts[:, 1]
    at_risk = (n - starts).astype(np.float64)          # number with time >= each distinct time
    # censoring KM; crr evaluates it at t * (1 - 100 eps): the left limit G(t-),
    # except at t = 0 where that point is 0 itself and the right value G(0) is used
    after = np.cumprod(1.0 - n_cens / at_risk)
    G = np.empty(m)
    G[0] = 1.0
    G[1:] = after[:-1]
    if t[0] == 0.0:
        G[0] = after[0]
    fail = kind == 1
    comp = kind == 2
    inv_g = np.where(comp, 1.0 / G[group], 0.0)
    events = d.nonzero()[0]
    n_le = (d > 0).cumsum()
    cens_times = n_cens.nonzero()[0]
    dense = None
    if events.size * n <= _DENSE_CELLS:
        # weight of row i in the risk set of failure time k: 1 if t_i >= tau_k, else
        # G_k / G(t_i-) for a competing row (0 for the others, whose inv_g is 0)
        dense = G[events][:, None] * inv_g
        dense[np.arange(n) >= starts[events][:, None]] = 1.0
    return Times(
        order=order, starts=starts, fail=fail.astype(np.float64), fail_rows=fail.nonzero()[0],
        cens_rows=(kind == 0).nonzero()[0], n_comp=int(np.count_nonzero(comp)), events=events,
        d=d[events], G=G[events], inv_g=inv_g, n_le=n_le[group], cens_times=cens_times,
        n_before=n_le[cens_times] - (d[cens_times] > 0), c_count=n_cens[cens_times],
        c_risk=at_risk[cens_times], c_le=(n_cens > 0).cumsum()[group], dense=dense)


def _prepare_times_groups(time, cause, cause_of_interest, cengroup) -> Times:
    """:func:`prepare_times` with a censoring Kaplan-Meier per group (crr's ``cengroup``).

    As crr, ``G_g`` is evaluated at ``t * (1 - 100 eps)`` (the left limit, ``G_g(0)`` at
    ``t = 0``) and is 0 beyond ``max_g * (1 + 10 eps)``, ``max_g`` the last time of group ``g``.
    """
    base = prepare_times(time, cause, cause_of_interest)
    order = base.order
    t = time[order]
    code = cengroup[order].astype(np.int64)
    ncg = int(code.max()) + 1
    n = t.size
    m = base.starts.size
    group = np.repeat(np.arange(m), np.diff(np.append(base.starts, n)))
    cens = np.zeros(n, dtype=bool)
    cens[base.cens_rows] = True
    rows_g = np.bincount(group * ncg + code, minlength=m * ncg).reshape(m, ncg).astype(float)
    cens_g = np.bincount(group[cens] * ncg + code[cens],
                         minlength=m * ncg).reshape(m, ncg).astype(float)
    at_risk_g = rows_g[::-1].cumsum(axis=0)[::-1]
    step = np.where(cens_g > 0, 1.0 - np.divide(cens_g, at_risk_g, out=np.zeros_like(cens_g),
                                                where=at_risk_g > 0), 1.0)
    after = np.cumprod(step, axis=0)                       # (m, ncg)
    Gm = np.empty((m, ncg))
    Gm[0] = 1.0
    Gm[1:] = after[:-1]
    if t[0] == 0.0:
        Gm[0] = after[0]
    eps = np.finfo(float).eps
    tmax = np.full(ncg, -np.inf)
    np.maximum.at(tmax, code, t)
    distinct = t[base.starts]
    Gm[(distinct[:, None] * (1 - 100 * eps)) > (tmax[None, :] * (1 + 10 * eps))] = 0.0
    comp = (base.inv_g != 0.0)
    inv_g = np.where(comp, 1.0 / np.where(comp, Gm[group, code], 1.0), 0.0)
    events = base.events
    G_ev = Gm[events].T                                     # (ncg, f)
    dense = None
    if base.dense is not None:
        dense = G_ev[code].T * inv_g                        # (f, n): G_{g_i}(tau_k) / G_{g_i}(T_i)
        dense[np.arange(n) >= base.starts[events][:, None]] = 1.0
    ct = base.cens_times
    fail_event = np.searchsorted(events, group[base.fail_rows])   # failure time of each failure
    d_g = np.bincount(code[base.fail_rows] * events.size + fail_event,
                      minlength=ncg * events.size).reshape(ncg, events.size).astype(float)
    groups = CensoringGroups(code=code, G=G_ev, c_count=cens_g[ct], c_risk=at_risk_g[ct], d=d_g)
    fields = dict(vars(base))
    fields.update(inv_g=inv_g, dense=dense, groups=groups,
                  G=np.full(events.size, np.nan))          # the single-G path must not be used
    return Times(**fields)


def prepare(time: np.ndarray, cause: np.ndarray, x: np.ndarray, cause_of_interest: int,
            times: Times | None = None, cengroup: np.ndarray | None = None) -> Prepared:
    """Sort once and tabulate (or take ``times`` from :func:`prepare_times` of the same
    ``time``, ``cause`` and ``cengroup``); add the covariates, sorted and centred."""
    if times is None:
        times = prepare_times(time, cause, cause_of_interest, cengroup)
    n, p = x.shape
    xs = x[times.order].astype(np.float64, copy=False)  # a copy: x[order] is new
    xs -= np.add.reduce(xs, axis=0) / n                  # = xs.mean(axis=0)
    w = np.empty((n, 2 * p + 2))
    w[:, 0] = 1.0
    w[:, 1:p + 1] = xs
    np.multiply(w[:, :p + 1], times.inv_g[:, None], out=w[:, p + 1:])
    z = full = None
    if times.dense is not None:
        i0, i1, full = triangle(p)
        z = np.empty((n, 1 + p + i0.size))
        z[:, :p + 1] = w[:, :p + 1]
        np.multiply(xs[:, i0], xs[:, i1], out=z[:, p + 1:])
    shared = {k: v for k, v in vars(times).items() if k != "order"}
    return Prepared(x=xs, w=w, x_fail_sum=np.add.reduce(xs[times.fail_rows], axis=0), z=z, full=full,
                    **shared)


def prepare_time_varying(time: np.ndarray, cause: np.ndarray, x: np.ndarray, x2: np.ndarray,
                         tfs: np.ndarray, cause_of_interest: int,
                         cengroup: np.ndarray | None = None) -> Prepared:
    """:func:`prepare` for crr's time-varying effects: ``x`` (n, p1) constant effects
    (crr's ``cov1``, may have 0 columns), ``x2`` (n, p2) covariates whose effects are
    multiplied by ``tfs`` (f, p2), the time functions at the sorted distinct failure times
    of interest (crr's ``cov2`` and ``tf(uft)``). Coefficients: those of ``x``, then ``x2``."""
    prep = prepare(time, cause, np.concatenate([x, x2], axis=1), cause_of_interest,
                   cengroup=cengroup)
    xs = prep.x
    n, p = xs.shape
    f = prep.events.size
    tf = np.ones((f, p))
    tf[:, x.shape[1]:] = tfs
    i0, i1, full = triangle(p)
    z = np.empty((n, 1 + p + i0.size))
    z[:, 0] = 1.0
    z[:, 1:p + 1] = xs
    np.multiply(xs[:, i0], xs[:, i1], out=z[:, p + 1:])
    tfz = np.concatenate([tf, tf[:, i0] * tf[:, i1]], axis=1)
    fail_k = prep.n_le[prep.fail_rows] - 1
    comp_rows = np.flatnonzero(prep.inv_g != 0.0)
    comp_before = np.searchsorted(comp_rows, prep.starts[prep.cens_times])
    if prep.groups is None:
        code = np.zeros(n, dtype=np.int64)
        G, d = prep.G[None, :], prep.d[None, :]
        c_count, c_risk = prep.c_count[:, None], prep.c_risk[:, None]
    else:
        cg = prep.groups
        code, G, d, c_count, c_risk = cg.code, cg.G, cg.d, cg.c_count, cg.c_risk
    width = max(n, (comp_rows.size + 1 + prep.cens_times.size) * (p + 1))
    tv = TimeVarying(tf=tf, tfz=tfz, z=z, full=full, fail_k=fail_k,
                     z_fail_sum=np.add.reduce(xs[prep.fail_rows] * tf[fail_k], axis=0),
                     comp_rows=comp_rows, comp_before=comp_before, code=code, G=G, d=d,
                     c_count=c_count, c_risk=c_risk, block=max(1, _TV_CELLS // width),
                     n_varying=x2.shape[1])
    return replace(prep, dense=None, z=None, full=None, tv=tv)


def _tv_blocks(prep: Prepared, beta: np.ndarray):
    """Blocks of failure times ``k0:k1`` with the risk-set matrix ``A`` (k1 - k0, n):
    ``A[k, i]`` = risk-set weight of row ``i`` at failure time ``k`` (1 if ``t_i >= tau_k``,
    ``G_g(tau_k) / G_g(t_i-)`` for a competing row before, else 0) times
    ``exp(x_i (T_k * b) - shift_k)``, ``shift_k`` the largest such exponent in the risk set."""
    tv, x = prep.tv, prep.x
    n = x.shape[0]
    cols = np.arange(n)
    bt = tv.tf * beta                                     # (f, p) coefficient at each time
    for k0 in range(0, bt.shape[0], tv.block):
        k1 = min(bt.shape[0], k0 + tv.block)
        eta = bt[k0:k1] @ x.T                             # (fb, n)
        if tv.G.shape[0] == 1:
            W = tv.G[0, k0:k1, None] * prep.inv_g
        else:
            W = tv.G[:, k0:k1].T[:, tv.code] * prep.inv_g
        W[cols >= prep.starts[prep.events[k0:k1]][:, None]] = 1.0
        shift = np.where(W > 0.0, eta, -np.inf).max(axis=1)
        eta -= shift[:, None]
        np.exp(eta, out=eta)
        eta *= W
        yield k0, k1, eta, shift


def _evaluate_tv(prep: Prepared, beta: np.ndarray, information: bool) -> Evaluation:
    """:func:`_evaluate` with time-varying effects: the moments ``A @ [1, x, x x']`` at each
    failure time, scaled by the time factors of the coefficients."""
    tv = prep.tv
    p = prep.x.shape[1]
    f = tv.tf.shape[0]
    moments = np.empty((f, tv.z.shape[1]))
    shifts = np.empty(f)
    for k0, k1, A, shift in _tv_blocks(prep, beta):
        np.matmul(A, tv.z, out=moments[k0:k1])
        shifts[k0:k1] = shift
    moments[:, 1:] *= tv.tfz
    s0 = moments[:, 0]
    lam = prep.d / s0
    xbar = moments[:, 1:p + 1] / s0[:, None]
    loglik = float(tv.z_fail_sum @ beta - prep.d @ (shifts + np.log(s0)))
    score = tv.z_fail_sum - prep.d @ xbar
    info = None
    if information:
        second = lam @ moments[:, p + 1:]
        info = second[tv.full].reshape(p, p) - (xbar.T * prep.d) @ xbar
    return Evaluation(loglik, score, info, None, lam, xbar, None, beta=np.array(beta, dtype=float))


def _influence_tv(prep: Prepared, ev: Evaluation) -> np.ndarray:
    """:func:`influence` with time-varying effects (crr's ``crrvv`` with ``cov2``): each
    row's covariates at failure time ``k`` are ``x_i * T_k``."""
    tv, x = prep.tv, prep.x
    n, p = x.shape
    ncg, c = tv.G.shape[0], prep.cens_times.size
    lam, xbar = ev.lam, ev.xbar
    lam_t = lam[:, None] * tv.tf
    lam_x = lam[:, None] * xbar
    per_failure = lam / prep.d                               # 1 / S0_k
    comp = np.zeros((n, p))
    qu = np.zeros((c, ncg, p))
    ones_x = np.concatenate([np.ones((tv.comp_rows.size, 1)), x[tv.comp_rows]], axis=1)
    comp_code = tv.code[tv.comp_rows]
    for k0, k1, A, _ in _tv_blocks(prep, ev.beta):
        # compensator part of eta_i: sum_k lam_k A_ki (x_i T_k - xbar_k)
        comp += x * (A.T @ lam_t[k0:k1]) - A.T @ lam_x[k0:k1]
        if c == 0 or tv.comp_rows.size == 0:
            continue
        # q(u): failures at tau_k >= u, competing rows (same group) with t < u
        Ac = A[:, tv.comp_rows]
        later = np.arange(k0, k1)[:, None] >= prep.n_before[None, :]       # (fb, c)
        for g in range(ncg):
            Ag = Ac if ncg == 1 else Ac * (comp_code == g)
            cum = np.zeros((k1 - k0, Ag.shape[1] + 1, p + 1))
            np.cumsum(Ag[:, :, None] * ones_x, axis=1, out=cum[:, 1:])
            C = cum[:, tv.comp_before]                                      # (fb, c, p + 1)
            M = later * (tv.d[g, k0:k1] * per_failure[k0:k1])[:, None]      # (fb, c)
            qu[:, g] += (np.einsum("kc,kp,kcp->cp", M, tv.tf[k0:k1], C[:, :, 1:])
                         - (M * C[:, :, 0]).T @ xbar[k0:k1])
    out = -comp
    rows = prep.fail_rows
    out[rows] += x[rows] * tv.tf[tv.fail_k] - xbar[tv.fail_k]
    if c:
        frac = np.divide(tv.c_count, tv.c_risk ** 2, out=np.zeros_like(tv.c_count),
                         where=tv.c_count > 0)
        out -= _cum0(qu * frac[:, :, None])[prep.c_le, tv.code]
        rows = prep.cens_rows
        j = prep.c_le[rows] - 1
        out[rows] += qu[j, tv.code[rows]] / tv.c_risk[j, tv.code[rows]][:, None]
    return out


def _cum0(a: np.ndarray) -> np.ndarray:
    """``out[j]`` = sum of the first ``j`` rows of ``a`` (length ``len(a) + 1``)."""
    out = np.zeros((a.shape[0] + 1,) + a.shape[1:])
    a.cumsum(axis=0, out=out[1:])
    return out


def _rcum0(a: np.ndarray) -> np.ndarray:
    """``out[j]`` = sum of rows ``j, j+1, ...`` of ``a`` (length ``len(a) + 1``, last 0)."""
    out = np.zeros((a.shape[0] + 1,) + a.shape[1:])
    a[::-1].cumsum(axis=0, out=out[-2::-1])
    return out


@dataclass
class Evaluation:
    """Log pseudo-likelihood, score, information and the sums they came from at one ``b``."""

    loglik: float
    score: np.ndarray
    information: np.ndarray | None
    r: np.ndarray         # (n,) exp(x b) shifted by the largest x b
    lam: np.ndarray       # (f,) Breslow increments d_k / S0_k
    xbar: np.ndarray      # (f, p) weighted covariate means S1 / S0
    pre: np.ndarray | None  # (m, p + 1) competing sums r/g, r x/g over rows with t < tau_k
                            # (None from the dense evaluation: influence computes it)
    beta: np.ndarray | None = None  # the coefficients (kept by the time-varying path only)


def evaluate(prep: Prepared, beta: np.ndarray, information: bool = True) -> Evaluation:
    """Everything Newton-Raphson needs at ``beta`` in O(n p^2)."""
    with np.errstate(all="ignore"):  # overflow/underflow shows up as a non-finite loglik
        return _evaluate(prep, beta, information)



def _at_failures(prep, eta, risk):
    """S0, the hazard increments, the weighted means, the log pseudo-likelihood and the score at the
    failure times, from the risk sums ``risk`` (S0 and S1 per failure time)."""
    s0 = risk[:, 0]
    lam = prep.d / s0
    xbar = risk[:, 1:] / s0[:, None]
    return s0, lam, xbar, float(prep.fail @ eta - prep.d @ np.log(s0)), prep.x_fail_sum - prep.d @ xbar

def _evaluate(prep: Prepared, beta: np.ndarray, information: bool) -> Evaluation:
    if prep.tv is not None:
        return _evaluate_tv(prep, beta, information)
    if prep.dense is not None:
        return _evaluate_dense(prep, beta, information)
    if prep.groups is not None:
        return _evaluate_groups(prep, beta, information)
    x, F = prep.x, prep.events
    q = x.shape[1] + 1
    eta = x @ beta
    eta -= eta.max()
    r = np.exp(eta)
    sums = np.add.reduceat(r[:, None] * prep.w, prep.starts, axis=0)   # (m, 2p + 2)
    pre = sums[:, q:].cumsum(axis=0)
    pre -= sums[:, q:]                                                  # competing, t < tau_k
    risk = sums[::-1, :q].cumsum(axis=0)[::-1][F]                   # t >= tau_k
    risk += prep.G[:, None] * pre[F]                                    # S0, S1 at tau_k
    s0, lam, xbar, loglik, score = _at_failures(prep, eta, risk)
    info = None
    if information:
        # sum_k lam_k S2_k = X' diag(a) X, swapping the sums over k and over rows:
        # failures at tau_k <= t_i, and for competing rows those after t_i weighted G_k / g_i
        both = np.empty((lam.size + 1, 2))
        both[:, 0] = _cum0(lam)
        both[:, 1] = _rcum0(lam * prep.G)
        at = both[prep.n_le]                                   # one gather for both sums
        a = r * (at[:, 0] + prep.inv_g * at[:, 1])
        info = (x.T * a) @ x - (xbar.T * prep.d) @ xbar
    return Evaluation(loglik, score, info, r, lam, xbar, pre)


def _evaluate_dense(prep: Prepared, beta: np.ndarray, information: bool) -> Evaluation:
    """:func:`_evaluate` for small problems: the risk-set sums S0, S1, S2 at every
    failure time are one product of the dense weight matrix with ``r [1, x, x x']``."""
    p = prep.x.shape[1]
    eta = prep.x @ beta
    eta -= np.maximum.reduce(eta)
    r = np.exp(eta)
    moments = prep.dense @ (r[:, None] * prep.z)      # (f, 1 + p + p(p+1)/2)
    s0 = moments[:, 0]
    lam = prep.d / s0
    xbar = moments[:, 1:p + 1] / s0[:, None]
    loglik = float(prep.fail @ eta - prep.d @ np.log(s0))
    score = prep.x_fail_sum - prep.d @ xbar
    info = None
    if information:
        second = lam @ moments[:, p + 1:]              # sum_k lam_k S2_k, upper triangle
        info = second[prep.full].reshape(p, p) - (xbar.T * prep.d) @ xbar
    return Evaluation(loglik, score, info, r, lam, xbar, None)


def _group_before(prep: Prepared, rw: np.ndarray) -> np.ndarray:
    """Per censoring group, sums of the competing columns ``rw`` (``r/g``, ``r x/g``) over
    rows with ``t < tau``, at every distinct time: ``(ncg, m, p + 1)``."""
    code = prep.groups.code
    out = np.empty((prep.groups.G.shape[0], prep.starts.size, rw.shape[1]))
    for g in range(out.shape[0]):
        sums = np.add.reduceat(np.where((code == g)[:, None], rw, 0.0), prep.starts, axis=0)
        out[g] = sums.cumsum(axis=0)
        out[g] -= sums
    return out


def _evaluate_groups(prep: Prepared, beta: np.ndarray, information: bool) -> Evaluation:
    """:func:`_evaluate` with crr's censoring groups: the competing part of each risk-set
    sum is ``sum_g G_g(tau_k) * (prefix sum over group g)``."""
    x, F, cg = prep.x, prep.events, prep.groups
    q = x.shape[1] + 1
    eta = x @ beta
    eta -= eta.max()
    r = np.exp(eta)
    rw = r[:, None] * prep.w
    sums = np.add.reduceat(rw[:, :q], prep.starts, axis=0)
    risk = sums[::-1].cumsum(axis=0)[::-1][F]                         # t >= tau_k
    pre = _group_before(prep, rw[:, q:])
    for g in range(cg.G.shape[0]):
        risk += cg.G[g][:, None] * pre[g][F]
    s0, lam, xbar, loglik, score = _at_failures(prep, eta, risk)
    info = None
    if information:
        lg = np.stack([_rcum0(lam * G) for G in cg.G])                 # (ncg, f + 1)
        a = r * (_cum0(lam)[prep.n_le] + prep.inv_g * lg[cg.code, prep.n_le])
        info = (x.T * a) @ x - (xbar.T * prep.d) @ xbar
    return Evaluation(loglik, score, info, r, lam, xbar, None)


def _influence_groups(prep: Prepared, ev: Evaluation) -> np.ndarray:
    """:func:`influence` with crr's censoring groups (``crrvv`` of cmprsk 2.2-11): a
    competing row's compensator uses its own group's ``G``; the censoring term of a row of
    group ``g`` is its group's censoring martingale (the group's censorings and numbers at
    risk) integrating ``q_g(u)``, which pairs the failures of interest *of group g* at or
    after ``u`` with the competing rows of group ``g`` before ``u``."""
    x, k, cg = prep.x, prep.n_le, prep.groups
    q = x.shape[1] + 1
    lamx = ev.lam[:, None] * ev.xbar
    lg = np.stack([_rcum0(ev.lam * G) for G in cg.G])                  # (ncg, f + 1)
    lgx = np.stack([_rcum0(lamx * G[:, None]) for G in cg.G])          # (ncg, f + 1, p)
    a = _cum0(ev.lam)[k] + prep.inv_g * lg[cg.code, k]
    b = _cum0(lamx)[k] + prep.inv_g[:, None] * lgx[cg.code, k]
    out = -ev.r[:, None] * (x * a[:, None] - b)
    rows = prep.fail_rows
    out[rows] += x[rows] - ev.xbar[k[rows] - 1]
    # q_g(u), crr 2.2-11's crrvv: the failures of group g at tau_k >= u, each weighting the
    # competing rows of group g before u by G_g(tau_k) / G_g(T_j-)
    u = prep.n_before
    pre = _group_before(prep, ev.r[:, None] * prep.w[:, q:])[:, prep.cens_times]  # (ncg, c, q)
    per_failure = ev.lam / prep.d                                        # 1 / S0_k
    qu = np.empty((prep.cens_times.size, cg.G.shape[0], q - 1))         # (c, ncg, p)
    for g in range(cg.G.shape[0]):
        lam_g = cg.d[g] * per_failure * cg.G[g]
        qu[:, g] = (pre[g][:, 1:] * _rcum0(lam_g)[u][:, None]
                    - pre[g][:, :1] * _rcum0(lam_g[:, None] * ev.xbar)[u])
    frac = np.divide(cg.c_count, cg.c_risk ** 2, out=np.zeros_like(cg.c_count),
                     where=cg.c_count > 0)                                # (c, ncg)
    out -= _cum0(qu * frac[:, :, None])[prep.c_le, cg.code]
    rows = prep.cens_rows
    j = prep.c_le[rows] - 1
    out[rows] += qu[j, cg.code[rows]] / cg.c_risk[j, cg.code[rows]][:, None]
    return out


def _competing_before(prep: Prepared, r: np.ndarray) -> np.ndarray:
    """Competing sums ``r/g``, ``r x/g`` over rows with ``t < tau_k``, at every distinct time."""
    q = prep.x.shape[1] + 1
    sums = np.add.reduceat(r[:, None] * prep.w[:, q:], prep.starts, axis=0)
    pre = sums.cumsum(axis=0)
    pre -= sums
    return pre


def influence(prep: Prepared, ev: Evaluation) -> np.ndarray:
    """Per-row ``eta_i + psi_i`` of Fine & Gray's sandwich (sorted order), (n, p)."""
    if prep.tv is not None:
        return _influence_tv(prep, ev)
    if prep.groups is not None:
        return _influence_groups(prep, ev)
    x, k = prep.x, prep.n_le
    lamx = ev.lam[:, None] * ev.xbar
    lg = _rcum0(ev.lam * prep.G)
    lgx = _rcum0(lamx * prep.G[:, None])
    # eta_i: dN_i part minus the compensator part over failures of interest
    a = _cum0(ev.lam)[k] + prep.inv_g * lg[k]
    b = _cum0(lamx)[k] + prep.inv_g[:, None] * lgx[k]
    out = -ev.r[:, None] * (x * a[:, None] - b)
    rows = prep.fail_rows
    out[rows] += x[rows] - ev.xbar[k[rows] - 1]
    # psi_i: the estimated censoring weights, int q(u) / pi(u) dM^c_i(u)
    u = prep.n_before
    pre = (ev.pre if ev.pre is not None else _competing_before(prep, ev.r))[prep.cens_times]
    q = pre[:, 1:] * lg[u][:, None] - pre[:, :1] * lgx[u]            # (c, p)
    out -= _cum0(q * (prep.c_count / prep.c_risk ** 2)[:, None])[prep.c_le]
    rows = prep.cens_rows
    j = prep.c_le[rows] - 1
    out[rows] += q[j] / prep.c_risk[j][:, None]
    return out


@dataclass(frozen=True)
class Fit:
    """Arrays of a converged fit."""

    coef: np.ndarray
    information: np.ndarray
    meat: np.ndarray
    covariance: np.ndarray
    loglik: float
    loglik_null: float
    score: np.ndarray
    iterations: int
    converged: bool


def _coefs(names, beta) -> str:
    return ", ".join(f"{n}={b:.6g}" for n, b in zip(names, beta, strict=True))


def _solve(info: np.ndarray, rhs: np.ndarray, beta: np.ndarray, names,
           start: np.ndarray | None) -> np.ndarray:
    """Newton step ``info^{-1} rhs``; a singular ``info`` is a ConvergenceError with advice.

    At the start (``start is None``) the information is checked for
    collinearity. Later, ``start`` is the diagonal of the starting information:
    an entry that fell below 1e-8 of it means a coefficient running off to
    infinity, even where rounding has made the score exactly zero.
    """
    diag = info.diagonal()
    if start is None:
        ok = bool(np.isfinite(info).all() and (diag > 0).all())
        if ok:  # Cholesky of the correlation form: diag(L)_j^2 = 1 - R^2 of x_j on earlier x's
            scale = np.sqrt(diag)
            # LAPACK dpotrf, as np.linalg.cholesky; status > 0: not positive definite
            chol, status = _dpotrf(info / np.outer(scale, scale), lower=1)
            ok = status == 0 and bool(chol.diagonal().min() ** 2 > 1e-12)
        if not ok:
            raise ConvergenceError(
                f"Fine-Gray: the information matrix is singular at the start "
                f"({_coefs(names, beta)}); covariates are collinear, or one does not vary "
                "within the risk sets of the events. Drop or combine the offending covariates.")
        _, _, step, status = _dgesv(info, rhs)      # as np.linalg.solve (LU, partial pivoting)
        if status == 0:
            return step
        return np.linalg.solve(info, rhs)          # singular: raises LinAlgError, as before
    ok = bool((diag > 1e-8 * start).all())
    if ok:
        # LU with partial pivoting (LAPACK dgesv, as np.linalg.solve, without its overhead)
        _, _, step, status = _dgesv(info, rhs)
        ok = status == 0 and bool(np.isfinite(step).all())
    if ok:
        return step
    raise ConvergenceError(
        f"Fine-Gray: the information matrix became singular during Newton-Raphson "
        f"({_coefs(names, beta)}): the pseudo-likelihood keeps increasing as a coefficient "
        "grows without bound (monotone likelihood, separation: e.g. no failures of interest "
        "in one level of a binary covariate). Remove or merge that covariate.")


def _iterate(prep: Prepared, names, init, tol: float, max_iter: int):
    """The Newton-Raphson iterations of :func:`fit`: ``(beta, evaluation, null loglik, steps)``."""
    p = prep.x.shape[1]
    beta = np.zeros(p) if init is None else np.asarray(init, dtype=float).copy()
    ev = _evaluate(prep, beta, True)
    null = ev.loglik if not beta.any() else _evaluate(prep, np.zeros(p), False).loglik
    iterations = 0
    start = None
    while True:
        step = _solve(ev.information, ev.score, beta, names, start)
        start = ev.information.diagonal().copy() if start is None else start
        limit = max(abs(ev.loglik), 1.0) * tol
        scale = np.maximum(np.abs(beta), 1.0)
        small = (np.abs(ev.score) * scale).max() < limit
        rel = (np.abs(step) / scale).max()
        if iterations == max_iter and not (small and rel < np.sqrt(tol)):
            growing = [n for n, s, b in zip(names, step, beta, strict=True)
                       if abs(s) > 1e-3 * max(abs(b), 1.0)]
            raise ConvergenceError(
                f"Fine-Gray: no convergence after {max_iter} Newton-Raphson iterations "
                f"({_coefs(names, beta)}; still moving: "
                f"{', '.join(map(str, growing)) or 'none'}). A coefficient that keeps growing "
                "means monotone likelihood (separation: e.g. no events of interest in one level "
                "of a binary covariate); remove or merge that covariate, or raise max_iter.")
        if small and rel < 1e-12:
            break  # b is already exact to rounding
        if rel < np.sqrt(tol):
            # quadratic region: take the full step (the loglik may no longer resolve it);
            # once crr's criterion holds this last step polishes b to rounding error
            beta = beta + step
            iterations += 1
            ev = _evaluate(prep, beta, True)
            if small:
                break
            continue
        gain = float(step @ ev.score)  # twice the predicted increase of the loglik
        for _ in range(21):
            trial = _evaluate(prep, beta + step, True)
            if math.isfinite(trial.loglik) and trial.loglik >= ev.loglik + 1e-4 * gain:
                break
            step = step * 0.5
        else:
            raise ConvergenceError(
                "Fine-Gray: step halving failed to increase the pseudo-likelihood at "
                f"{_coefs(names, beta)}. If a coefficient is large, the likelihood is monotone "
                "(separation: e.g. no failures of interest in one level of a binary covariate); "
                "remove or merge that covariate. Otherwise rescale covariates (e.g. to SD units).")
        beta = beta + step
        iterations += 1
        ev = trial
    return beta, ev, null, iterations


def fit(prep: Prepared, *, names, init: np.ndarray | None = None, tol: float = 1e-9,
        max_iter: int = 50) -> Fit:
    """Newton-Raphson with crr's backtracking rule, then the sandwich variance.

    Steps larger than ``sqrt(tol)`` relative to ``max(|b_j|, 1)`` are
    backtracked as in crr (halve until the loglik rises by 1e-4 of the predicted
    gain); smaller steps are in Newton's quadratic region and taken in full,
    since the loglik may no longer resolve them. Converged when crr's criterion
    ``max |U_j| max(|b_j|, 1) < max(|loglik|, 1) tol`` holds with such a small
    step, which is then taken as a final polish, so ``b`` is accurate to
    rounding. A coefficient diverging under separation keeps a step near one;
    it ends in a collapsed information (see :func:`_solve`), a failed line
    search or ``max_iter``, all ConvergenceError.
    """
    with np.errstate(all="ignore"):  # as evaluate(): overflow shows as a non-finite loglik
        beta, ev, null, iterations = _iterate(prep, names, init, tol, max_iter)
    return sandwich(beta, ev, null, iterations, influence(prep, ev))


def sandwich(beta: np.ndarray, ev: Evaluation, null: float, iterations: int,
             resid: np.ndarray) -> Fit:
    """The fit at the converged ``beta`` with Fine & Gray's sandwich variance from the
    score residuals ``resid`` (:func:`influence`)."""
    p = beta.size
    meat = resid.T @ resid
    _, _, inv, status = _dgesv(ev.information, np.eye(p))   # as np.linalg.inv
    if status != 0:
        inv = np.linalg.inv(ev.information)                # raises LinAlgError, as before
    cov = inv @ meat @ inv
    return Fit(beta, ev.information, meat, (cov + cov.T) / 2, ev.loglik, null, ev.score,
               iterations, True)
