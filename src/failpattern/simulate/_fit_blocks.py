"""The parameter blocks of :func:`~failpattern.simulate.calibrate.calibrate`, fitted one by one.

Why a module of its own: each block (accrual, PFS1, brain progression, pattern, sites,
salvage and CBPD, PFS2, death) is a small fitting problem over simulated moments with
common random numbers; together they are most of the calibration code, while
:mod:`failpattern.simulate.calibrate` keeps the public functions (closed-form
parameters, the order of the blocks, the target table). Every function takes the
simulator of common random numbers (:class:`_Sim`), the current :class:`Params` and the
card, and returns new :class:`Params`.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, least_squares, minimize
from scipy.special import expit, logit, ndtri

from failpattern.simulate._km import km_medians, km_order
from failpattern.simulate.generate import DPM, Batch, StageMemo
from failpattern.simulate.model import Params
from failpattern.simulate.moments import TARGETS

#: Weibull shapes are kept >= this (a smaller shape fits the event counts better but
#: puts a third of second progressions in the first month: implausible).
SHAPE_MIN = 0.7
#: Least-squares runs per block at most (each from the previous solution).
RESTARTS = 4
#: Scale of the residual of a pooled Kaplan-Meier survival at a published median (vs 0.5).
S_SCALE = 0.1
#: Logit effects of the pattern model are kept within +-this (no saturated logit).
LOGIT_MAX = 4.0
#: Scale of the residual of a log subdistribution hazard ratio (20 % weighs as one patient).
SHR_SCALE = 0.2
#: Scale of a z-statistic residual (a deviation of 2 in z weighs as a median 5 % off): the
#: published log-rank tests are fitted as far as the medians and counts allow (with 0.5
#: the PFS1 median of all patients leaves 10 %, and the PFS2 median of all ends within
#: 0.1 month of its 10 % bound).
Z_SCALE = 2.0


def _v(card, i):
    return float(card.get(i).value)


class _Sim:
    """Common random numbers: every evaluation draws the cohorts of the same seed.

    Each call gives exactly ``draw_batch(p, np.random.default_rng(seed), replicates, n, design=design)``;
    through a :class:`~failpattern.simulate.generate.StageMemo`, so that the stages of the
    model a block's parameters do not reach (the baseline above all) are drawn once, not at
    every evaluation.
    """

    def __init__(self, replicates: int, n: int, seed: int, *, design=None):
        self.replicates, self.n, self.seed = replicates, n, seed
        self.evals = 0
        self._memo = StageMemo(seed, replicates, n, design=design)

    def __call__(self, p: Params, sites: bool = False) -> Batch:
        """The cohorts for ``p``, without the dates of salvage RT and of the first RT course (no
        block reads them); with ``sites`` false (every block but the sites block), also without
        the failure sites other than the brain and the failure location."""
        self.evals += 1
        return self._memo.draw(p, skip=("starts",) if sites else ("sites", "starts"))


def _pooled_median(b: Batch, which: str, mask, order=None) -> float:
    """Median over cohorts of the per-cohort KM medians (not reached = 60 months); ``order``:
    :func:`~failpattern.simulate._km.km_order` of the rows, shared by several masks."""
    t = (b.pfs1_d if which == "pfs1" else b.pfs2_d) / DPM
    e = b.pfs1_event if which == "pfs1" else b.pfs2_event
    m = km_medians(t, e, mask, order=order)
    return float(np.median(np.where(np.isnan(m), 60.0, m)))


def _z_target(card, key: str, sign: float) -> float:
    """Signed normal deviate of a published two-sided p-value (sign: direction of group 1)."""
    return sign * float(ndtri(1.0 - _v(card, key) / 2.0))


def _median_z(b: Batch, key: str) -> float:
    z = TARGETS[key].z(b)
    return float(np.median(np.where(np.isnan(z), 0.0, z)))


def _bound(x, lo, hi):
    """Penalty keeping a shape parameter in a plausible range."""
    return 0.0 if lo <= x <= hi else 200.0 * min(abs(x - lo), abs(x - hi))


def _scale(n_model: int, card) -> float:
    return n_model / _v(card, "cohort.enrolled.n")


def _fit_ls(residuals, x0, max_nfev):
    """Gauss-Newton (trust region) on simulated-moment residuals.

    The Jacobian is a forward difference with a wide absolute step, 0.1 * max(1, |x|),
    because the moments are piecewise constant in the parameters (SciPy's own relative
    step is ~1e-8 at x = 0, where it would see a zero derivative and never move).
    """
    cache: dict = {}

    def fun(x):
        key = np.asarray(x, float).tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = np.asarray(residuals(np.asarray(x, float)), float)
        return cache[key]

    def jac(x):
        f0 = fun(x)
        J = np.empty((f0.size, x.size))
        for j in range(x.size):
            h = 0.1 * max(1.0, abs(x[j]))
            xj = np.array(x, float)
            xj[j] += h
            J[:, j] = (np.asarray(residuals(xj), float) - f0) / h
        return J

    # restarted while it improves: a restart resets a trust region that the noise has shrunk
    x, best = np.asarray(x0, float), np.inf
    for _ in range(RESTARTS):
        res = least_squares(fun, x, jac=jac, max_nfev=max_nfev, x_scale=1.0, method="trf")
        if not res.cost < best - 1e-6:
            break
        x, best = res.x, res.cost
    # then Nelder-Mead on the same sum of squares: it does not need a derivative, and it
    # crosses the flat stretches (a median on a plateau of the curve) where Gauss-Newton stops
    step = np.diag(0.1 * np.maximum(1.0, np.abs(x)))
    nm = minimize(lambda z: float(np.sum(fun(z) ** 2)), x, method="Nelder-Mead",
                  options={"maxfev": 3 * max_nfev, "initial_simplex": np.vstack([x, x + step]),
                           "xatol": 1e-3, "fatol": 1e-3})
    return nm.x if nm.fun < 2.0 * best else x


def _pooled_surv(b: Batch, which: str, mask, at: float, order=None) -> float:
    """Kaplan-Meier survival at ``at`` months of all cohorts pooled (one curve).

    Smooth in the parameters where the per-cohort medians are not (a flat stretch of the
    curve makes the median of the medians jump): the fits use both. ``order``: the stable
    sort of all patients of all cohorts (flattened) by time, events first at a tie, shared
    by several masks; the patients of ``mask`` come out in the order their own sort gives.
    """
    t = (b.pfs1_d if which == "pfs1" else b.pfs2_d) / DPM
    e = b.pfs1_event if which == "pfs1" else b.pfs2_event
    if order is None:
        t, e = t[mask], e[mask].astype(bool)
        order = np.argsort(t + np.where(e, 0.0, 1e-9), kind="stable")
        t, e = t[order], e[order]
    else:
        take = order[np.asarray(mask, bool).reshape(-1)[order]]
        t, e = t.reshape(-1)[take], e.reshape(-1)[take].astype(bool)
    at_risk = t.size - np.arange(t.size)
    keep = e & (t <= at)
    return float(np.prod(1.0 - 1.0 / at_risk[keep]))


def _median_residuals(b: Batch, which: str, masks, targets) -> list:
    """Per target median: (median of the cohort medians - target) / (5 % of the target),
    and (pooled S(target) - 0.5) / S_SCALE."""
    # sorted once for all the masks (the same values as sorting each mask on its own)
    t = (b.pfs1_d if which == "pfs1" else b.pfs2_d) / DPM
    e = (b.pfs1_event if which == "pfs1" else b.pfs2_event).astype(bool)
    rows = km_order(t, e)
    pooled = np.argsort((t + np.where(e, 0.0, 1e-9)).reshape(-1), kind="stable")
    r = []
    for mask, tg in zip(masks, targets):
        r.append((_pooled_median(b, which, mask, rows) - tg) / (0.05 * tg))
        r.append((_pooled_surv(b, which, mask, tg, pooled) - 0.5) / S_SCALE)
    return r


def _fit_pfs1(sim, p, card, maxiter):
    """Weibull scale and shape and the BBM log-HRs (piecewise for BBM without brain RT)
    to the four PFS1 medians, the number of progressions, the oligo share of the
    progressions of untreated BBM and the two BBM log-rank tests."""
    k = _scale(sim.n, card)
    tg = [_v(card, i) for i in ("pfs1.median.all", "pfs1.median.bbm", "pfs1.median.bbm_prior_brain_rt",
                                "pfs1.median.bbm_no_prior_brain_rt")]
    ev = _v(card, "progression1.n") * k
    # brain progressions of untreated BBM: all multiple-progressive, 4 of 13 from oligo BBM;
    # with one brain-progression probability, the oligo share of their progressions
    oligo_share = _v(card, "multi_pd.oligo_no_prior_rt.n") / _v(card, "brain_pd.bbm_no_prior_brain_rt.n")
    # log-rank p-values as signed z: brain RT before crizotinib better, BBM worse
    zs = {key: _z_target(card, key, s) for key, s in (("pfs1.bbm.prior_brain_rt.p", -1.0), ("pfs1.bbm.p", 1.0))
          if key in card}

    def make(x):
        return p.replace(pfs1_scale=float(np.exp(x[0])), pfs1_shape=float(np.exp(x[1])),
                         b_bbm_untreated=float(x[2]), b_bbm_brain_rt=float(x[3]), b_bbm_untreated_late=float(x[4]),
                         b_multiple_untreated=float(x[5]))

    def loss(x):
        b = sim(make(x))
        bbm = b.bbm == 1
        untreated = bbm & (b.brain_rt == 0)
        masks = [np.ones(b.shape, bool), bbm, b.brain_rt > 0, untreated]
        r = _median_residuals(b, "pfs1", masks, tg) + [(b.pfs1_event.sum(1).mean() - ev) / 0.5]
        prog_u = (b.pfs1_event * untreated).sum(1).mean()
        prog_o = (b.pfs1_event * untreated * (b.burden == 1)).sum(1).mean()
        r.append((prog_o - oligo_share * prog_u) / 0.5)
        r += [(_median_z(b, key) - zt) / Z_SCALE for key, zt in zs.items()]
        return np.array(r + [_bound(np.exp(x[1]), SHAPE_MIN, 3.0), _bound(x[4], -5.0, 5.0), _bound(x[5], -3.0, 3.0)])

    x0 = [np.log(p.pfs1_scale), np.log(min(max(p.pfs1_shape, 0.7), 2.5)), p.b_bbm_untreated, p.b_bbm_brain_rt,
          p.b_bbm_untreated_late, p.b_multiple_untreated]
    x = _fit_ls(loss, x0, maxiter)
    return make(x)


def _shr_proxy(b: Batch, x: np.ndarray, months: float = 12.0) -> float:
    """Subdistribution HR of OF for binary ``x`` from cumulative incidences at ``months``.

    Under proportional subdistribution hazards 1 - F1(t) = (1 - F0(t))^SHR; F is
    estimated among patients whose potential follow-up reaches ``months``
    (censoring is administrative, hence independent of ``x``).
    """
    seen = (b.calendar.cutoff - b.start_d) >= months * DPM
    of = (b.pattern == 1) & (b.pfs1_d <= months * DPM)
    f1 = of[seen & (x == 1)].mean()
    f0 = of[seen & (x == 0)].mean()
    f1, f0 = np.clip([f1, f0], 1e-6, 1 - 1e-6)
    return float(np.log1p(-f1) / np.log1p(-f0))


def _fit_pattern(sim, p, card, maxiter):
    """The OF / DF logits to the pattern counts, the three univariate SHRs of Table 3 and
    the brain failures by pattern (OF with BBM, DF without)."""
    k = _scale(sim.n, card)
    n_of, n_df = _v(card, "pattern.of.n"), _v(card, "pattern.df.n")
    n_prog = n_of + n_df + _v(card, "pattern.odf.n")
    brain_of, brain_df = _v(card, "t2.brain.of.n") * k, _v(card, "t2.brain.df.n") * k
    # Table 3 prints reference-vs-comparison ratios below 1 for histology; the card's
    # notes read them so that the text's predictors raise the subhazard of OF.
    shr = {k2: _v(card, f"t3.uni.{k2}.shr") for k2 in ("brain_met", "tumor_size", "histology")}
    shr = {k2: v if v >= 1 else 1.0 / v for k2, v in shr.items()}

    def make(x):
        return p.replace(of_intercept=float(x[0]), df_intercept=float(x[1]), of_bbm=float(x[2]),
                         of_size=float(x[3]), of_non_adeno=float(x[4]), of_brain=float(x[5]), df_brain=float(x[6]))

    def loss(x):
        b = sim(make(x))
        brain = b.fail["brain"] == 1
        # shares of the progressions, so that a small excess of progressions (PFS1 block)
        # spreads over the three patterns instead of falling on ODF alone
        prog = max(float(np.mean((b.pattern > 0).sum(1))), 1e-9)
        r = [(np.mean((b.pattern == 1).sum(1)) / prog - n_of / n_prog) * 52.0,
             (np.mean((b.pattern == 2).sum(1)) / prog - n_df / n_prog) * 52.0,
             np.log(_shr_proxy(b, b.bbm) / shr["brain_met"]) / SHR_SCALE,
             np.log(_shr_proxy(b, (b.size >= 3.5).astype(int)) / shr["tumor_size"]) / SHR_SCALE,
             np.log(_shr_proxy(b, b.non_adeno) / shr["histology"]) / (2 * SHR_SCALE),
             (np.mean((brain & (b.pattern == 1)).sum(1)) - brain_of) / 0.5,
             (np.mean((brain & (b.pattern == 2)).sum(1)) - brain_df) / 0.5]
        # logit effects stay finite (an odds ratio of e^5 = 148 at most): no saturated logit
        return np.array(r + [_bound(v, -LOGIT_MAX, LOGIT_MAX) for v in x[2:]])

    x = _fit_ls(loss, [p.of_intercept, p.df_intercept, p.of_bbm, p.of_size, p.of_non_adeno, p.of_brain,
                       p.df_brain], maxiter)
    return make(x)


def _ratio_updates(sim, p, card, spec, rounds=6, sites=False):
    """p <- p * target / E[count] for probability parameters (clipped to [0.001, 1]; a target
    of 0 gives 0). A key is a field name, or (field, index) for an element of a tuple field;
    ``sites``: the counts read the failure sites other than the brain or the location."""
    k = _scale(sim.n, card)
    for _ in range(rounds):
        b = sim(p, sites=sites)
        ch: dict = {}
        for key, (target, count_fn) in spec.items():
            field, idx = (key, None) if isinstance(key, str) else key
            e = float(np.mean(count_fn(b).sum(1)))
            t = target * k
            cur = getattr(p, field) if idx is None else ch.get(field, list(getattr(p, field)))[idx]
            new = 0.0 if t <= 0 else float(np.clip(cur * t / e if e > 0 else max(cur, 0.01) * 2, 1e-3, 1.0))
            if idx is None:
                ch[field] = new
            else:
                ch.setdefault(field, list(getattr(p, field)))[idx] = new
        p = p.replace(**{f: tuple(v) if isinstance(v, list) else v for f, v in ch.items()})
    return p


def _fit_brain(sim, p, card):
    untreated = _v(card, "brain_pd.bbm_no_prior_brain_rt.n")

    def brain(b):
        return b.fail["brain"] == 1

    spec = {"q_bbm_untreated": (untreated, lambda b: brain(b) & (b.bbm == 1) & (b.brain_rt == 0)),
            "q_brain_rt": (_v(card, "brain_pd.bbm_prior_brain_rt.n"), lambda b: brain(b) & (b.brain_rt > 0)),
            "q_no_bbm": (_v(card, "brain_pd.no_bbm.n"), lambda b: brain(b) & (b.bbm == 0)),
            # untreated BBM progress as multiple (all of them in the paper): the rest are after brain RT
            "p_multiple_bbm_brain_rt": (_v(card, "multi_pd.bbm.n") - untreated,
                                        lambda b: (b.btype == 2) & (b.brain_rt > 0))}
    return _ratio_updates(sim, p, card, spec)


def _fit_sites(sim, p, card):
    """Failure location and sites per pattern (Table 2 per-pattern columns)."""
    from failpattern.simulate.generate import OTHER_SITES

    spec = {"p_primary_only_of": (_v(card, "t2.primary_only.of.n"), lambda b: (b.pattern == 1) & (b.location == 1)),
            "p_both_of": (_v(card, "t2.primary_and_metastasis.of.n"), lambda b: (b.pattern == 1) & (b.location == 3)),
            "p_both_odf": (_v(card, "t2.primary_and_metastasis.odf.n"),
                           lambda b: (b.pattern == 3) & (b.location == 3))}
    for j, site in enumerate(OTHER_SITES):
        key = "others" if site == "other" else site
        for field, code, pat in (("site_rate_of", 1, "of"), ("site_rate_odf", 3, "odf")):
            spec[(field, j)] = (_v(card, f"t2.{key}.{pat}.n"),
                                lambda b, s=site, c=code: (b.pattern == c) & (b.fail[s] == 1))
    return _ratio_updates(sim, p, card, spec, sites=True)


def _fit_salvage(sim, p, card):
    spec = {"p_sbrt_eligible_rt": (_v(card, "salvage.eligible_sbrt.n"), lambda b: b.elig == 3),
            "p_treat_wbrt": (_v(card, "salvage.wbrt.n"), lambda b: b.salvage == 1),
            "p_treat_srs": (_v(card, "salvage.srs.n"), lambda b: b.salvage == 2),
            "p_cbpd_other": (_v(card, "after_pd.cbpd.n") - _v(card, "salvage.received.n") * p.p_cbpd_salvage,
                             lambda b: (b.next == 0) & (b.salvage == 0))}
    return _ratio_updates(sim, p, card, spec)


def _fit_pfs2(sim, p, card, maxiter):
    """Weibull scale and shape, the fraction with no second progression and the log-HRs of
    salvage RT and CBPD, to the five PFS2 medians, the second progressions and the
    salvage log-rank test."""
    k = _scale(sim.n, card)
    ids = ("pfs2.median.all", "pfs2.median.salvage_rt", "pfs2.median.no_salvage_rt", "pfs2.median.cbpd",
           "pfs2.median.non_cbpd")
    tg = [_v(card, i) for i in ids]
    ev = _v(card, "progression2.n") * k
    zs = {key: _z_target(card, key, -1.0) for key in ("pfs2.salvage_rt.p",) if key in card}

    def make(x):
        return p.replace(pfs2_scale=float(np.exp(x[0])), pfs2_shape=float(np.exp(x[1])),
                         c_salvage=float(x[2]), c_cbpd=float(x[3]), pfs2_no_progression=float(expit(x[4])))

    def loss(x):
        b = sim(make(x))
        prog = b.pattern > 0
        masks = [prog, b.salvage > 0, prog & (b.salvage == 0), b.next == 0, b.next > 0]
        r = _median_residuals(b, "pfs2", masks, tg) + [(b.pfs2_event.sum(1).mean() - ev) / 0.5]
        r += [(_median_z(b, key) - zt) / Z_SCALE for key, zt in zs.items()]
        return np.array(r + [_bound(np.exp(x[1]), SHAPE_MIN, 3.0), _bound(x[4], -6.0, 3.0)])

    x0 = [np.log(p.pfs2_scale), np.log(min(max(p.pfs2_shape, 0.7), 2.5)), p.c_salvage, p.c_cbpd,
          logit(min(max(p.pfs2_no_progression, 0.01), 0.9))]
    x = _fit_ls(loss, x0, maxiter)
    return make(x)


def _fit_death(sim, p, card, maxiter=30):
    """Death rate to the number of deaths; log-HR of no RT to the OS log-rank p (RT better)."""
    target = _v(card, "deaths.n") * _scale(sim.n, card)
    zt = _z_target(card, "os.rt_vs_nonrt.p", -1.0) if "os.rt_vs_nonrt.p" in card else None

    def make(x):
        return p.replace(death_rate=float(np.exp(x[0])), d_non_rt=float(x[1]))

    def res(x):
        b = sim(make(x))
        r = [float(np.mean(b.os_event.sum(1))) - target]
        if zt is not None:
            r.append((_median_z(b, "os.rt_vs_nonrt.p") - zt) / Z_SCALE)
        return np.array(r)

    return make(_fit_ls(res, [np.log(p.death_rate), p.d_non_rt], maxiter))


def _fit_accrual(sim, p, card, rounds=3):
    """Accrual growth to the median follow-up, lag after chemotherapy to its maximum."""
    num = card.get("followup.median")
    med, top = float(num.value), num.range_upper

    def stat(q):
        fu = sim(q).os_d / DPM
        return float(np.median(np.median(fu, 1))), float(np.median(fu.max(1)))

    def longest(m, q):
        return stat(q.replace(lag_per_line_mean=m))[1] - float(top)

    def middle(g, q):
        return stat(q.replace(accrual_growth=g))[0] - med

    for _ in range(rounds if top is not None else 1):
        if top is not None and longest(1.0, p) * longest(30.0, p) < 0:
            p = p.replace(lag_per_line_mean=float(brentq(longest, 1.0, 30.0, args=(p,), xtol=1e-2)))
        if middle(-3.0, p) * middle(6.0, p) < 0:
            p = p.replace(accrual_growth=float(brentq(middle, -3.0, 6.0, args=(p,), xtol=1e-3)))
    return p
