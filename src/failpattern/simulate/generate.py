"""The generative model, vectorised over replicate cohorts: baseline, course, follow-up.

Why arrays of shape (replicates, patients) and not one patient at a time: the
calibration compares model expectations with published numbers over hundreds of
simulated cohorts, and the benchmark draws 10,000 cohorts; both are only practical
if one call draws them all. Every random number comes from the passed
``np.random.Generator``, always in the same order and the same shapes whatever the
parameter values, so a fixed seed gives common random numbers for the calibration.

The model (``docs/simulator.md``) in order: RT group -> Table 1 covariates by group ->
brain metastases, prior brain / extracranial RT -> best response -> PFS1 (Weibull
proportional hazards, piecewise for BBM without brain RT; administrative censoring at
the data cut-off) -> brain progression and its type -> first-failure pattern given the
brain -> location and other sites -> salvage RT, CBPD, next therapy -> PFS2 (a fraction
with no second progression, the others Weibull PH) -> death after second progression
-> OS from diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from failpattern.simulate.model import Params

__all__ = ["DF_SITES", "DPM", "OTHER_SITES", "SALVAGE_DELAY_DAYS", "SITES", "T_MAX_CM", "Batch", "Calendar",
           "StageMemo", "calendar_for", "draw_batch", "site_weights", "treatment_starts"]

DPM = 30.4375  # days per month, as the cohort loader
SITES = ("lung", "liver", "brain", "bone", "adrenal", "regional_ln", "distant_ln", "other")
#: Failure sites other than the brain, in the order of ``Params.site_rate_of`` / ``site_rate_odf``.
OTHER_SITES = ("lung", "liver", "bone", "adrenal", "regional_ln", "distant_ln", "other")
#: The sites a DF failure without brain progression has (exactly one), as Table 2's DF column.
DF_SITES = ("lung", "bone", "other")
#: Largest primary tumour (cm) of each T category T1, T2 in the AJCC 7th edition
#: (the edition in force for diagnoses of 2013-2018); T3/T4 may be by invasion at any size.
T_MAX_CM = (3.0, 7.0)


@dataclass(frozen=True)
class Calendar:
    """The study's calendar, in days from its first day of enrolment (:func:`calendar_for`).

    Attributes
    ----------
    origin : numpy.datetime64
        The first day a patient could start crizotinib (day 0).
    last_start : int
        The last such day.
    cutoff : int
        The data cut-off.
    """

    origin: np.datetime64
    last_start: int
    cutoff: int


def calendar_for(design) -> Calendar:
    """The calendar of a study design: its enrolment window and data cut-off, in days.

    Parameters
    ----------
    design : Design
        From :func:`failpattern.study.design_for`.

    Returns
    -------
    Calendar
    """
    first, last = design.enrolment
    return Calendar(origin=first, last_start=int((last - first).astype(int)),
                    cutoff=int((design.cutoff - first).astype(int)))


def site_weights(design) -> tuple[np.ndarray, np.ndarray]:
    """Table 2's site counts as sampling weights.

    Parameters
    ----------
    design : Design
        From :func:`failpattern.study.design_for`.

    Returns
    -------
    totals : numpy.ndarray
        Failures at each site but the brain, all patterns together, in :data:`OTHER_SITES` order
        (a metastatic failure drawn without a site gets one in these proportions).
    df : numpy.ndarray
        DF failures at each of :data:`DF_SITES` (a DF failure without brain progression has one).
    """
    from failpattern.study.design import T2_ROWS

    counts = design.site_counts()
    row = {col.removeprefix("fail_"): name for name, col, _ in T2_ROWS}
    totals = np.array([sum(counts[row[s]]) for s in OTHER_SITES], float)
    df = np.array([counts[row[s]][1] for s in DF_SITES], float)  # (OF, DF, ODF): the DF column
    return totals, df


@dataclass(frozen=True)
class _Study:
    """What the model takes from the study's design: the calendar, the printed ranges of age and
    tumour size, Table 2's site weights."""

    calendar: Calendar
    ranges: dict
    totals: np.ndarray
    df_weights: np.ndarray


def _study(design) -> _Study:
    if design is None:  # the default study card's
        from failpattern.study import design_for, load_study

        design = design_for(load_study("ni2019"))
    totals, df = site_weights(design)
    return _Study(calendar_for(design), dict(design.ranges), totals, df)


@dataclass
class Batch:
    """Simulated cohorts as arrays of shape ``(replicates, n)``; see :func:`draw_batch`.

    Integer-coded fields: ``pattern`` 0 none, 1 OF, 2 DF, 3 ODF; ``response`` 0 CR,
    1 PR, 2 SD, 3 PD; ``burden`` 0 none, 1 oligo, 2 multiple; ``brain_rt`` 0 none,
    1 SRS, 2 WBRT; ``xrt`` 0 none, 1 thoracic, 2 bone, 3 adrenal, 4 thoracic+bone;
    ``btype`` 0 none, 1 oligo, 2 multiple; ``elig`` / ``salvage`` 0 none, 1 WBRT,
    2 SRS, 3 SBRT; ``next`` 0 crizotinib (CBPD), 1 supportive care, 2 ALK TKI,
    3 chemotherapy, -1 no progression. Times are whole days (``*_d``).
    ``salvage_start_d``: days from first progression to the first fraction of salvage RT;
    ``first_rt_d``: days from diagnosis to the first radiotherapy course; -1 where the
    treatment was not given (None in a Batch made without them). ``calendar``: the study's
    enrolment window and cut-off, the origin of the days (one for the whole batch).
    """

    rt: np.ndarray
    male: np.ndarray
    non_adeno: np.ndarray
    ecog: np.ndarray
    size: np.ndarray
    t_stage: np.ndarray
    n_stage: np.ndarray
    organs: np.ndarray
    lesions: np.ndarray
    mets: dict
    age: np.ndarray
    prior_lines: np.ndarray
    burden: np.ndarray
    brain_rt: np.ndarray
    xrt: np.ndarray
    response: np.ndarray
    start_d: np.ndarray
    lag_d: np.ndarray
    pfs1_d: np.ndarray
    pfs1_event: np.ndarray
    pattern: np.ndarray
    location: np.ndarray
    fail: dict
    btype: np.ndarray
    elig: np.ndarray
    salvage: np.ndarray
    next: np.ndarray
    pfs2_d: np.ndarray
    pfs2_event: np.ndarray
    os_d: np.ndarray
    os_event: np.ndarray
    salvage_start_d: np.ndarray | None = None
    first_rt_d: np.ndarray | None = None
    calendar: Calendar = field(kw_only=True)

    @property
    def shape(self) -> tuple[int, int]:
        """``(replicates, n)``."""
        return self.rt.shape

    def months(self, days: np.ndarray) -> np.ndarray:
        """Days to months (30.4375 days per month)."""
        return days / DPM

    @property
    def bbm(self) -> np.ndarray:
        """Baseline brain metastases (0/1)."""
        return self.mets["brain"]

    @property
    def progressed(self) -> np.ndarray:
        """First progression observed (0/1)."""
        return (self.pattern > 0).astype(np.int8)

    @property
    def death(self) -> np.ndarray:
        """Alias of ``os_event``."""
        return self.os_event


def _by_group(pair, rt):
    return np.where(rt == 1, pair[1], pair[0])


def _cat(u, probs):
    """Category index from uniforms ``u`` and probabilities ``probs`` (inverse CDF)."""
    c = np.cumsum(probs)
    return np.minimum(np.searchsorted(c / c[-1], u, side="right"), len(probs) - 1).astype(np.int8)


def weibull_inv(u, scale, shape, lp):
    """Weibull PH time from uniforms: S(t) = exp(-(t/scale)^shape * exp(lp))."""
    return scale * (-np.log1p(-u) * np.exp(-lp)) ** (1.0 / shape)


def _get(b, key: str, attr: str | None = None):
    if isinstance(b, dict):
        return b[key]
    return b.mets[key] if attr is None else getattr(b, attr)


def _untreated_bbm(b) -> np.ndarray:
    """BBM without brain RT before crizotinib."""
    return (_get(b, "brain") == 1) & (_get(b, "brain_rt", "brain_rt") == 0)


def pfs1_lp(p: Params, b) -> np.ndarray:
    """Linear predictor of PFS1 for arrays of covariates ``b`` (a Batch or mapping).

    For BBM without brain RT it holds the log-HR of the first ``p.pfs1_change`` months
    (``b_bbm_untreated``, plus ``b_multiple_untreated`` for multiple brain metastases);
    :func:`pfs1_inv` switches to ``b_bbm_untreated_late`` after that. For a mapping
    without ``burden`` it is the early phase's model without the burden term.
    """
    untreated = _untreated_bbm(b)
    # multiple vs oligo burden (a mapping without "burden" leaves the term out)
    burden = b.get("burden") if isinstance(b, dict) else b.burden
    multiple = untreated & (burden == 2) if burden is not None else False
    return (p.b_bbm_untreated * untreated + p.b_multiple_untreated * multiple
            + p.b_bbm_brain_rt * (_get(b, "brain_rt", "brain_rt") > 0)
            + p.b_non_adeno * _get(b, "non_adeno", "non_adeno")
            + p.b_organs3 * (_get(b, "organs", "organs") >= 3)
            + p.b_no_response * (_get(b, "response", "response") == 2))


def pfs1_inv(p: Params, u, b) -> np.ndarray:
    """PFS1 months from uniforms ``u``.

    Weibull proportional hazards, except for BBM without brain RT before crizotinib,
    whose log-HR is ``b_bbm_untreated`` for the first ``pfs1_change`` months and
    ``b_bbm_untreated_late`` after (piecewise proportional hazards: the published curve
    falls to 0.5 by 6 months, then flattens). The cumulative hazard is inverted in
    closed form.
    """
    # baseline cumulative hazard (t / scale)^shape reached, in units of the early phase
    x = -np.log1p(-u) * np.exp(-pfs1_lp(p, b))
    a = (p.pfs1_change / p.pfs1_scale) ** p.pfs1_shape
    late = _untreated_bbm(b) & (x > a)
    x = np.where(late, a + (x - a) * np.exp(p.b_bbm_untreated - p.b_bbm_untreated_late), x)
    return p.pfs1_scale * x ** (1.0 / p.pfs1_shape)


def of_logit(p: Params, bbm, size, non_adeno) -> np.ndarray:
    """logit P(OF | progression)."""
    return p.of_intercept + p.of_bbm * bbm + p.of_size * (size >= 3.5) + p.of_non_adeno * non_adeno


def accrual_inv(u, growth: float, span: int) -> np.ndarray:
    """Start day (0 .. ``span``, the last start day) from uniforms, density ∝ exp(growth * s / S)."""
    if abs(growth) < 1e-9:
        s = u
    else:
        s = np.log1p(u * np.expm1(growth)) / growth
    return np.floor(s * (span + 1)).clip(0, span).astype(np.int64)


def draw_baseline(p: Params, rng: np.random.Generator, shape, ranges) -> dict:
    """Baseline covariates and pre-crizotinib treatment (Table 1, Results ¶1-3); ``ranges``: the
    printed ranges of ``age`` and ``tumor_size`` (:attr:`failpattern.study.Design.ranges`)."""
    U = lambda: rng.random(shape)
    rt = (U() < p.p_rt).astype(np.int8)
    out = {"rt": rt}
    for name, pair in (("male", p.p_male), ("non_adeno", p.p_non_adeno), ("ecog2", p.p_ecog2),
                       ("t34", p.p_t34), ("n0", p.p_n0), ("organs3", p.p_organs3),
                       ("lesions6", p.p_lesions6), ("lung", p.p_lung), ("liver", p.p_liver),
                       ("brain", p.p_bbm), ("adrenal", p.p_adrenal), ("bone", p.p_bone)):
        out[name] = (U() < _by_group(pair, rt)).astype(np.int8)
    out["u_detail"] = [U() for _ in range(6)]  # ecog 0/1, T, N, organs, lesions, spare
    # age and size: normal / log-normal truncated above (by inverse CDF, one normal each) at the largest
    # value Table 1 prints (t1.age.median.all, t1.tumor_size.median.all); a T1-2 primary is at most
    # 7 cm (AJCC 7th edition: larger is T3), so its size is truncated there. Below, ages are clipped
    # a year above the printed youngest and sizes at 0.5 cm (the printed 0.0 cm, an occult primary,
    # is not drawn)
    age_min, age_max = ranges["age"]
    age_hi = (age_max - _by_group(p.age_median, rt)) / p.age_sd
    out["age"] = np.clip(_by_group(p.age_median, rt) + p.age_sd * _below(rng.standard_normal(shape), age_hi),
                         age_min + 1, age_max)
    size_max = np.where(out["t34"] == 1, ranges["tumor_size"][1], T_MAX_CM[1])
    size_hi = (np.log(size_max) - np.log(_by_group(p.size_median, rt))) / p.size_sigma
    out["size"] = np.clip(np.exp(np.log(_by_group(p.size_median, rt))
                                 + p.size_sigma * _below(rng.standard_normal(shape), size_hi)), 0.5, size_max)
    out["prior_lines"] = _cat(U(), p.p_prior_lines)
    u_b, u_brt, u_tech, u_x, u_xs = U(), U(), U(), U(), U()
    bbm = out["brain"]
    out["burden"] = np.where(bbm == 1, np.where(u_b < p.p_oligo, 1, 2), 0).astype(np.int8)
    p_brt = np.where(out["burden"] == 1, p.p_brain_rt_oligo, p.p_brain_rt_multiple)
    has_brt = (rt == 1) & (bbm == 1) & (u_brt < p_brt)
    p_srs = np.where(out["burden"] == 1, p.p_srs_oligo, p.p_srs_multiple)
    out["brain_rt"] = np.where(has_brt, np.where(u_tech < p_srs, 1, 2), 0).astype(np.int8)
    p_x = np.where(has_brt, p.p_xrt_brain_rt, p.p_xrt_no_brain_rt)
    has_x = (rt == 1) & (u_x < p_x)
    out["response"] = _cat(U(), p.p_response)
    u_lag = U()
    out["u_lag"] = u_lag
    out["u_lag2"] = U()
    out["u_start"] = U()
    # the organ flags must agree with the prior RT and the organ count drawn independently of them; each
    # change is balanced by the opposite change in another patient of the same cohort and RT group, so
    # that the prevalences (Table 1) and the RT sites (Results) keep their expected counts.
    # Pseudo-uniforms from the spare uniform: no extra draw, so every later draw stays as it was.
    from itertools import permutations

    spare = out["u_detail"][5]

    def score(k):
        return (spare * (7919.0 + 104729.0 * k)) % 1.0

    out["xrt"] = np.where(has_x, _cat(u_xs, p.xrt_sites) + 1, 0).astype(np.int8)
    # bone RT only with bone metastases, adrenal RT only with adrenal ones (thoracic RT targets the
    # primary): the patient has them, and another patient of the group without such RT does not
    locked = {"bone": np.isin(out["xrt"], (2, 4)), "adrenal": out["xrt"] == 3}
    for k, site in enumerate(("bone", "adrenal")):
        gain = locked[site] & (out[site] == 0)
        give = (out[site] == 1) & ~locked[site]
        out[site] = _balance(out[site], gain, give, rt, score(k + 1), on=True)
    # at most 2 organ flags in the 1-2 organs category: surplus extracranial flags (never the brain, which
    # drives the course, nor one that prior RT needs) move to patients of the group with 3 or more organs
    extra = ("lung", "liver", "adrenal", "bone")
    flagged = sum(out[site].astype(np.int64) for site in ("brain",) + extra)
    surplus = (out["organs3"] == 0) & (flagged > 2)
    keep_n = 2 - out["brain"].astype(np.int64)
    perms = np.array(list(permutations(range(4))))
    order = perms[np.minimum((spare * 24).astype(np.int64), 23)]  # organ -> random priority 0-3
    prio = np.stack([np.where(locked.get(site, False), 10, 4 - order[..., k]) for k, site in enumerate(extra)], -1)
    prio = np.where(np.stack([out[site] == 1 for site in extra], -1), prio, -1)
    rank = np.argsort(np.argsort(-prio, axis=-1, kind="stable"), axis=-1, kind="stable")  # 0 = kept first
    for k, site in enumerate(extra):
        lose = surplus & (rank[..., k] >= keep_n) & (out[site] == 1)
        take = (out["organs3"] == 1) & (out[site] == 0)
        out[site] = _balance(out[site], lose, take, rt, score(k + 3), on=False)
    return out


def _balance(flag, change, others, rt, score, on: bool):
    """Set ``flag`` to ``on`` where ``change``, and the opposite in as many of ``others`` (chosen by lowest
    ``score``) in the same cohort (row) and RT group, so that each group's count stays as drawn."""
    flag = np.asarray(flag).copy()
    change, others = np.asarray(change, bool), np.asarray(others, bool) & ~np.asarray(change, bool)
    flip = np.zeros(flag.shape, bool)
    for g in (0, 1):
        grp = np.asarray(rt) == g
        k = (change & grp).sum(axis=-1, keepdims=True)
        cand = others & grp
        rank = np.argsort(np.argsort(np.where(cand, score, np.inf), axis=-1, kind="stable"), axis=-1,
                          kind="stable")
        flip |= cand & (rank < k)
    flag = np.where(change, int(on), np.where(flip, int(not on), flag))
    return flag.astype(np.int8)


def _below(z, hi):
    """Standard normal ``z`` mapped to the normal truncated above ``hi`` (same quantile)."""
    from scipy.special import ndtr, ndtri

    return ndtri(np.clip(ndtr(z) * ndtr(hi), 1e-300, 1.0 - 1e-16))


def _cat_rows(u, weights, allowed):
    """Category index per element from uniforms ``u`` and ``weights`` restricted to ``allowed``
    (boolean, last axis = categories); -1 where no category is allowed."""
    w = np.where(allowed, np.asarray(weights, float), 0.0)
    c = np.cumsum(w, axis=-1)
    tot = c[..., -1]
    idx = (c <= (u * tot)[..., None]).sum(-1)
    return np.where(tot > 0, np.minimum(idx, w.shape[-1] - 1), -1).astype(np.int8)


def finish_baseline(b: dict) -> dict:
    """Detailed categories (ECOG score, T/N stage, organ and lesion counts) from the flags."""
    u = b["u_detail"]
    b["ecog"] = np.where(b["ecog2"] == 1, 2, (u[0] < 0.6).astype(np.int8)).astype(np.int8)
    # T: T1 <= 3 cm else T2 within T1-2; T3 / T4 from a uniform within T3-4
    b["t_stage"] = np.where(b["t34"] == 1, np.where(u[1] < 0.55, 3, 4),
                            np.where(b["size"] <= T_MAX_CM[0], 1, 2)).astype(np.int8)
    b["n_stage"] = np.where(b["n0"] == 1, 0, 1 + (u[2] > 0.15) + (u[2] > 0.55)).astype(np.int8)
    # organ count: the Table 1 category decides (1-2 or 3-6); within it, at least the flagged
    # sites, and at most 5 with 1-5 lesions (each organ holds at least one lesion)
    flagged = sum(b[s] for s in ("lung", "liver", "brain", "adrenal", "bone")).astype(np.int64)
    lo, hi = organ_bounds(b["organs3"], b["lesions6"])
    base = np.clip(flagged, lo, hi)
    b["organs"] = np.minimum(base + np.floor(u[3] * (hi - base + 1)), hi).astype(np.int64)
    b["lesions"] = np.where(b["lesions6"] == 1, 6 + np.floor(-np.log1p(-u[4]) * 6),
                            np.maximum(b["organs"], 1) + np.floor(u[4] * (6 - np.minimum(b["organs"], 5)))
                            ).clip(1, None).astype(np.int64)
    b["lesions"] = np.where(b["lesions6"] == 1, b["lesions"], np.minimum(b["lesions"], 5))
    return b


def organ_bounds(organs3, lesions6) -> tuple[np.ndarray, np.ndarray]:
    """Fewest and most metastatic organs a patient may have: 1-2 or 3-6 by the Table 1
    category ``organs3``, and at most 5 with 1-5 lesions (``lesions6`` 0), as every organ
    counted holds at least one lesion."""
    organs3, lesions6 = np.asarray(organs3), np.asarray(lesions6)
    return np.where(organs3 == 1, 3, 1), np.where(organs3 == 1, np.where(lesions6 == 1, 6, 5), 2)


def lag_days(p: Params, prior_lines, u, u2) -> np.ndarray:
    """Days from diagnosis to crizotinib start."""
    lo, hi = p.lag_first_line
    first = lo + (hi - lo) * u
    # gamma(2) via the sum of two exponentials, mean = lines * lag_per_line_mean
    mean = np.maximum(prior_lines, 1) * p.lag_per_line_mean
    pre = hi + mean / 2.0 * (-np.log1p(-u) - np.log1p(-u2))
    months = np.where(prior_lines == 0, first, pre)
    return np.round(months * DPM).astype(np.int64)


def draw_batch(p: Params, rng: np.random.Generator, replicates: int, n: int, *, design=None) -> Batch:
    """Draw ``replicates`` cohorts of ``n`` patients from the model.

    Parameters
    ----------
    p : Params
        Model parameters.
    rng : numpy.random.Generator
        Source of all randomness.
    replicates, n : int
        Number of cohorts and patients per cohort.
    design : Design, optional
        The study's design (:func:`failpattern.study.design_for`): its calendar, the printed
        ranges of age and tumour size, Table 2's site counts. The default study card's
        (``ni2019``) when not given.

    Returns
    -------
    Batch
    """
    shape = (replicates, n)
    study = _study(design)
    S: dict = {}
    for name, fn, deps in _STAGES:
        S[name] = fn(p, rng, shape, {d: S[d] for d in deps}, study)
    return _to_batch(S, study)


# The model in stages, in the order of its draws. Each stage reads the parameters, its own
# draws and the outputs of the stages it names (``deps``), nothing else: so that
# :class:`StageMemo` can keep a stage whose parameters and inputs did not change.

def _stage_baseline(p, rng, shape, S, study):
    return finish_baseline(draw_baseline(p, rng, shape, study.ranges))


def _stage_accrual(p, rng, shape, S, study):
    b = S["baseline"]
    start = accrual_inv(b["u_start"], p.accrual_growth, study.calendar.last_start)
    lag = lag_days(p, b["prior_lines"], b["u_lag"], b["u_lag2"])
    return {"start": start, "lag": lag, "follow": study.calendar.cutoff - start}  # potential follow-up, days


def _stage_pfs1(p, rng, shape, S, study):
    b, follow = S["baseline"], S["accrual"]["follow"]
    u1, u_pd = rng.random(shape), rng.random(shape)
    t1 = np.minimum(pfs1_inv(p, u1, b), 1200.0)
    lo, hi = p.pd_scan
    t1 = np.where(b["response"] == 3, lo + (hi - lo) * u_pd, t1)
    t1_d = np.maximum(np.round(t1 * DPM), 1).astype(np.int64)
    # a response (CR/PR/SD) is read on the first scan, ~6 weeks in: a progression the model places
    # before it is recorded at the next scan, 6 weeks later (medians, all beyond 12 weeks, unchanged)
    from failpattern.cohort.clinical import FIRST_ASSESSMENT_DAYS as first_scan

    t1_d = np.where((b["response"] != 3) & (t1_d < first_scan), t1_d + first_scan, t1_d)
    # a progression on the cut-off day itself would leave no follow-up after it: censored there
    ev1 = t1_d < follow
    return {"ev1": ev1, "pfs1_d": np.minimum(t1_d, follow)}


def _stage_pattern(p, rng, shape, S, study):
    b, ev1 = S["baseline"], S["pfs1"]["ev1"]
    u_of, u_df = rng.random(shape), rng.random(shape)
    u_br, u_bt = rng.random(shape), rng.random(shape)
    # brain progression at first failure, by baseline brain disease and brain RT
    bbm = b["brain"]
    q = np.where(bbm == 1, np.where(b["brain_rt"] > 0, p.q_brain_rt, p.q_bbm_untreated), p.q_no_bbm)
    fail_brain = ev1 & (u_br < q)
    # pattern given the brain: with BBM the brain is an original site (OF or ODF, never DF),
    # without BBM a new one (DF or ODF, never OF)
    brain_bbm = fail_brain & (bbm == 1)
    brain_new = fail_brain & (bbm == 0)
    p_of = _expit(of_logit(p, bbm, b["size"], b["non_adeno"]) + p.of_brain * brain_bbm)
    p_of = np.where(brain_new, 0.0, p_of)
    p_df = np.where(brain_bbm, 0.0, _expit(p.df_intercept + p.df_brain * brain_new))
    pattern = np.where(u_of < p_of, 1, np.where(u_df < p_df, 2, 3)).astype(np.int8)
    pattern = np.where(ev1, pattern, 0).astype(np.int8)
    # multiple- vs oligo-progressive brain disease
    p_mult = np.where(bbm == 1,
                      np.where(b["brain_rt"] == 0, 1.0,
                               np.where((b["burden"] == 1) & (b["brain_rt"] == 1), 0.0, p.p_multiple_bbm_brain_rt)),
                      p.p_multiple_no_bbm)
    btype = np.where(fail_brain, np.where(u_bt < p_mult, 2, 1), 0).astype(np.int8)
    return {"fail_brain": fail_brain, "pattern": pattern, "btype": btype}


def _stage_sites(p, rng, shape, S, study):
    # other sites and location (Table 2 per pattern)
    pt = S["pattern"]
    fail, location = draw_sites(rng, p, pt["pattern"], pt["fail_brain"], shape, (study.totals, study.df_weights),
                                mets=S["baseline"])
    return {"fail": fail, "location": location}


def _stage_salvage(p, rng, shape, S, study):
    rt = S["baseline"]["rt"]
    pattern, fail_brain, btype = S["pattern"]["pattern"], S["pattern"]["fail_brain"], S["pattern"]["btype"]
    u_el, u_tr, u_cb, u_nx = rng.random(shape), rng.random(shape), rng.random(shape), rng.random(shape)
    elig = np.zeros(shape, np.int8)
    elig[btype == 2] = 1
    elig[(btype == 1) & (u_el < p.p_srs_eligible)] = 2
    elig[(pattern > 0) & ~fail_brain & (rt == 1) & (u_el < p.p_sbrt_eligible_rt)] = 3
    p_tr = np.choose(elig, [0.0, p.p_treat_wbrt, p.p_treat_srs, p.p_treat_sbrt])
    salvage = np.where((rt == 1) & (elig > 0) & (u_tr < p_tr), elig, 0).astype(np.int8)
    cbpd = np.where(salvage > 0, u_cb < p.p_cbpd_salvage, u_cb < p.p_cbpd_other) & (pattern > 0)
    nxt = np.where(pattern == 0, -1, np.where(cbpd, 0, _cat(u_nx, p.p_next) + 1)).astype(np.int8)
    return {"elig": elig, "salvage": salvage, "cbpd": cbpd, "next": nxt}


def _stage_pfs2(p, rng, shape, S, study):
    from failpattern.cohort.clinical import SECOND_PROGRESSION_MIN_DAYS as restage

    salvage, cbpd = S["salvage"]["salvage"], S["salvage"]["cbpd"]
    ev1, pfs1_d, follow = S["pfs1"]["ev1"], S["pfs1"]["pfs1_d"], S["accrual"]["follow"]
    # PFS2: a fraction never progresses again; the others Weibull PH
    u2, u_d, u_c = rng.random(shape), rng.random(shape), rng.random(shape)
    lp2 = p.c_salvage * (salvage > 0) + p.c_cbpd * cbpd
    t2 = np.minimum(weibull_inv(u2, p.pfs2_scale, p.pfs2_shape, lp2), 1200.0)
    t2 = np.where(u_c < p.pfs2_no_progression, 1200.0, t2)
    t2_d = np.maximum(np.round(t2 * DPM), 1).astype(np.int64)
    # a second progression needs a new scan after the change of treatment, no sooner than 4 weeks: one
    # the model places earlier is recorded 4 weeks later (PFS2 medians, 4-10 months, unchanged)
    t2_d = np.where(t2_d < restage, t2_d + restage, t2_d)
    follow2 = np.where(ev1, follow - pfs1_d, 0)
    ev2 = ev1 & (t2_d <= follow2)
    return {"ev2": ev2, "pfs2_d": np.where(ev1, np.minimum(t2_d, follow2), 0), "u_d": u_d}


def _stage_death(p, rng, shape, S, study):
    rt = S["baseline"]["rt"]
    pfs1_d, pfs2_d, ev2, u_d = S["pfs1"]["pfs1_d"], S["pfs2"]["pfs2_d"], S["pfs2"]["ev2"], S["pfs2"]["u_d"]
    follow, lag = S["accrual"]["follow"], S["accrual"]["lag"]
    # death after second progression
    rate = p.death_rate * np.exp(p.d_non_rt * (rt == 0))
    w_d = np.round(np.minimum(-np.log1p(-u_d) / rate, 1200.0) * DPM).astype(np.int64)
    death_day = pfs1_d + pfs2_d + w_d  # from crizotinib start
    died = ev2 & (death_day <= follow)
    return {"died": died, "os_d": lag + np.where(died, death_day, follow)}


def _stage_starts(p, rng, shape, S, study):
    b = S["baseline"]
    salvage_start, first_rt = treatment_starts(rng.random(shape), rng.random(shape), S["salvage"]["salvage"],
                                               S["pfs1"]["pfs1_d"], S["pfs2"]["pfs2_d"], S["accrual"]["lag"],
                                               S["death"]["os_d"], b["rt"], (b["brain_rt"] > 0) | (b["xrt"] > 0))
    return {"salvage_start": salvage_start, "first_rt": first_rt}


#: (name, function, the stages whose outputs it reads), in the order of the draws.
_STAGES = (("baseline", _stage_baseline, ()),
           ("accrual", _stage_accrual, ("baseline",)),
           ("pfs1", _stage_pfs1, ("baseline", "accrual")),
           ("pattern", _stage_pattern, ("baseline", "pfs1")),
           ("sites", _stage_sites, ("baseline", "pattern")),
           ("salvage", _stage_salvage, ("baseline", "pattern")),
           ("pfs2", _stage_pfs2, ("accrual", "pfs1", "salvage")),
           ("death", _stage_death, ("baseline", "accrual", "pfs1", "pfs2")),
           ("starts", _stage_starts, ("baseline", "accrual", "pfs1", "salvage", "pfs2", "death")))


#: What a skipped stage leaves in the batch (:meth:`StageMemo.draw`); no other stage reads it.
_SKIPPED = {"sites": lambda S: {"fail": {"brain": S["pattern"]["fail_brain"].astype(np.int8)}, "location": None},
            "starts": lambda S: {"salvage_start": None, "first_rt": None}}


def _to_batch(S: dict, study: _Study) -> Batch:
    b, acc, pt, st, sv = S["baseline"], S["accrual"], S["pattern"], S["sites"], S["salvage"]
    return Batch(rt=b["rt"], male=b["male"], non_adeno=b["non_adeno"], ecog=b["ecog"], size=b["size"],
                 t_stage=b["t_stage"], n_stage=b["n_stage"], organs=b["organs"], lesions=b["lesions"],
                 mets={k: b[k] for k in ("lung", "liver", "brain", "adrenal", "bone")}, age=b["age"],
                 prior_lines=b["prior_lines"], burden=b["burden"], brain_rt=b["brain_rt"], xrt=b["xrt"],
                 response=b["response"], start_d=acc["start"], lag_d=acc["lag"], pfs1_d=S["pfs1"]["pfs1_d"],
                 pfs1_event=S["pfs1"]["ev1"].astype(np.int8), pattern=pt["pattern"], location=st["location"],
                 fail=dict(st["fail"]), btype=pt["btype"], elig=sv["elig"], salvage=sv["salvage"], next=sv["next"],
                 pfs2_d=S["pfs2"]["pfs2_d"], pfs2_event=S["pfs2"]["ev2"].astype(np.int8), os_d=S["death"]["os_d"],
                 os_event=S["death"]["died"].astype(np.int8), salvage_start_d=S["starts"]["salvage_start"],
                 first_rt_d=S["starts"]["first_rt"], calendar=study.calendar)


class _TrackedParams:
    """A :class:`Params` stand-in that records each field read (name -> ``repr`` of its value)."""

    __slots__ = ("_p", "used")

    def __init__(self, p: Params):
        self._p, self.used = p, {}

    def __getattr__(self, name):
        value = getattr(self._p, name)
        self.used[name] = repr(value)
        return value


class _ReplayDraws:
    """A generator's stand-in that records its draws on the first pass and hands them out again
    from position ``k`` after (each call checked against the recorded kind and shape)."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.calls, self.draws, self.k = rng, [], [], 0

    def _next(self, kind: str, shape):
        shape = tuple(np.atleast_1d(shape)) if not isinstance(shape, tuple) else shape
        if self.k == len(self.draws):
            out = getattr(self.rng, kind)(shape)
            out.flags.writeable = False
            self.calls.append((kind, shape))
            self.draws.append(out)
        elif self.calls[self.k] != (kind, shape):
            raise RuntimeError(f"draw {self.k}: {kind}{shape} where {self.calls[self.k]} was recorded: "
                               "the simulator's draws must not depend on the parameters")
        self.k += 1
        return self.draws[self.k - 1]

    def random(self, shape):
        return self._next("random", shape)

    def standard_normal(self, shape):
        return self._next("standard_normal", shape)


def _freeze(x):
    if isinstance(x, np.ndarray):
        x.flags.writeable = False
    elif isinstance(x, dict):
        for v in x.values():
            _freeze(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            _freeze(v)


class StageMemo:
    """Common random numbers for many draws of one seed and size, each stage kept while unchanged.

    Why: the calibration draws the same cohorts (one seed) hundreds of times while it moves a
    few parameters at a time; the stages of the model upstream of those parameters (the
    baseline above all) come out the same every time. A stage is recomputed only when a
    parameter it read, or a stage it reads, changed; the draws are recorded once and handed
    out again. :meth:`draw` gives exactly what ``draw_batch(p, np.random.default_rng(seed),
    replicates, n)`` gives (checked in ``tests/test_simulate.py``); the arrays of its batches
    are read-only, as they are shared between batches.

    Parameters
    ----------
    seed : int
        Seed of the generator (``np.random.default_rng(seed)``).
    replicates, n : int
        Number of cohorts and patients per cohort.
    design : Design, optional
        As :func:`draw_batch`'s.
    """

    def __init__(self, seed: int, replicates: int, n: int, *, design=None):
        self.shape = (replicates, n)
        self._study = _study(design)
        self._draws = _ReplayDraws(np.random.default_rng(seed))
        self._start: dict = {}  # stage -> index of its first draw
        self._kept: dict = {}  # stage -> (params read, versions of its inputs, version, outputs)
        self._version = 0

    def draw(self, p: Params, skip: tuple = ()) -> Batch:
        """The batch ``draw_batch`` gives for ``p`` and this memo's seed and size.

        Parameters
        ----------
        p : Params
            Model parameters.
        skip : tuple of str
            Stages no other stage reads, left out: ``"sites"`` (the batch's ``fail`` then holds
            ``brain`` only and its ``location`` is None), ``"starts"`` (``salvage_start_d`` and
            ``first_rt_d`` None). Every other field is as without.

        Returns
        -------
        Batch
        """
        S: dict = {}
        for name, fn, deps in _STAGES:
            if name in skip and name in self._start:  # drawn once, so the later stages' draws are known
                S[name] = _SKIPPED[name](S)
                continue
            inputs = tuple(self._kept[d][2] for d in deps)
            kept = self._kept.get(name)
            if (kept is not None and kept[1] == inputs
                    and all(repr(getattr(p, f)) == v for f, v in kept[0].items())):
                S[name] = kept[3]
                continue
            self._draws.k = self._start.setdefault(name, self._draws.k)
            tracked = _TrackedParams(p)
            out = fn(tracked, self._draws, self.shape, {d: S[d] for d in deps}, self._study)
            _freeze(out)
            self._version += 1
            self._kept[name] = (tracked.used, inputs, self._version, out)
            S[name] = out
        return _to_batch(S, self._study)


#: First and last day after the first progression on which salvage radiotherapy begins (uniform):
#: restaging, planning and simulation take one to five weeks. The paper does not report the
#: interval; this is an assumption, used only for the dates of the methods audit (no published
#: number depends on it), and it is drawn after everything else, so no other column depends on it.
SALVAGE_DELAY_DAYS = (7, 35)


def treatment_starts(u_salvage, u_rt, salvage, pfs1_d, pfs2_d, lag_d, os_d, rt, prior_rt):
    """When salvage RT and the first radiotherapy course began, from two uniforms per patient.

    Salvage RT: :data:`SALVAGE_DELAY_DAYS` after the first progression, and not after the end of PFS2
    follow-up (a patient followed for less is treated on its last day). The first RT course,
    days from diagnosis: within the diagnosis-to-crizotinib interval for prior RT; else the
    start of salvage RT; else (the RT group without either) uniformly during crizotinib, up to
    the last contact.

    Parameters
    ----------
    u_salvage, u_rt : numpy.ndarray
        Uniforms.
    salvage, pfs1_d, pfs2_d, lag_d, os_d, rt : numpy.ndarray
        Salvage RT technique (0 none), days of PFS1, PFS2, diagnosis to crizotinib and OS, RT group.
    prior_rt : numpy.ndarray
        Radiotherapy before crizotinib (bool).

    Returns
    -------
    tuple of numpy.ndarray
        ``salvage_start_d`` (from first progression) and ``first_rt_d`` (from diagnosis); -1 where
        not given.
    """
    lo, hi = SALVAGE_DELAY_DAYS
    delay = lo + np.floor(u_salvage * (hi - lo + 1)).astype(np.int64)
    salvage_start = np.where(salvage > 0, np.minimum(delay, pfs2_d), -1)
    before = np.floor(u_rt * (lag_d + 1)).astype(np.int64).clip(0, lag_d)
    during = lag_d + np.floor(u_rt * (os_d - lag_d + 1)).astype(np.int64).clip(0, os_d - lag_d)
    first_rt = np.where(prior_rt, before, np.where(salvage > 0, lag_d + pfs1_d + salvage_start,
                                                   np.where(rt == 1, during, -1)))
    return salvage_start, first_rt


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def draw_sites(rng, p: Params, pattern, fail_brain, shape, weights, mets=None):
    """Failure sites other than the brain and the initial failure location, per pattern.

    Location: an OF failure without brain progression is primary-only with probability
    ``p_primary_only_of``; every other OF failure (and every brain failure) is
    metastatic, with the primary too with probability ``p_both_of``; DF is metastatic
    only; ODF involves the primary with probability ``p_both_odf``. Sites: each other
    site is present in a metastatic OF / ODF failure with its rate (``site_rate_of`` /
    ``site_rate_odf``, fitted to Table 2's per-pattern counts); DF patients without
    brain progression get exactly one site (Table 2's DF column has one site per
    patient), lung : bone : other as in that column; a metastatic failure with no site drawn
    gets one in proportion to the Table 2 totals. ``weights``: those totals and that column
    (:func:`site_weights`).

    With the baseline ``mets`` (a mapping with the 0/1 arrays ``lung``, ``liver``,
    ``bone``, ``adrenal``, ``brain``, ``rt``) the sites obey the pattern's definition
    (:mod:`failpattern.cohort.clinical`): an OF failure only at sites diseased before
    crizotinib (liver, bone, adrenal at their rate divided by the group's prevalence of
    those metastases; regional nodes, distant nodes and other sites always), a DF
    failure only at sites that were not (its one site weighted likewise), an ODF
    failure at least one of each (a missing one is added in proportion to the Table 2
    totals). An OF lung failure is the primary's: a primary-only failure is in the lung
    (Table 2: OF lung 7 = OF primary only 7) and no other OF failure is.
    """
    totals, df_weights = weights
    U = lambda: rng.random(shape)
    u_loc = U()
    fail = {"brain": fail_brain.astype(np.int8)}
    of, df, odf = pattern == 1, pattern == 2, pattern == 3
    pp = np.where(of & ~fail_brain, p.p_primary_only_of, 0.0)
    primary = u_loc < pp
    # the same uniform, rescaled above pp, decides "with the primary" among metastatic failures
    v = (u_loc - pp) / np.maximum(1.0 - pp, 1e-12)
    both = ~primary & np.where(of, v < p.p_both_of, odf & (v < p.p_both_odf))
    location = np.select([pattern == 0, primary, both], [0, 1, 3], 2).astype(np.int8)
    metastatic = location >= 2
    u_one = U()
    df_pick = _cat(u_one, df_weights)
    us = {}
    for k, s in enumerate(OTHER_SITES):
        u = us[s] = U()
        rate = np.where(of, p.site_rate_of[k], np.where(odf, p.site_rate_odf[k], 0.0))
        f = metastatic & ~df & (u < rate)
        if s in ("lung", "bone", "other"):
            f |= df & ~fail_brain & (df_pick == {"lung": 0, "bone": 1, "other": 2}[s])
        fail[s] = f.astype(np.int8)
    if mets is None:
        none = metastatic & (sum(fail[s].astype(np.int64) for s in SITES) == 0)
        pick = _cat(U(), totals)
        for k, s in enumerate(OTHER_SITES):
            fail[s] = (fail[s].astype(bool) | (none & (pick == k))).astype(np.int8)
        return fail, location
    # which failure sites can be original / new, from the baseline (OTHER_SITES order)
    with_primary = (location == 1) | (location == 3)  # the failure involves the primary
    has = {s: np.asarray(mets[s]) == 1 for s in ("lung", "liver", "bone", "adrenal")}
    yes, no = np.ones(shape, bool), np.zeros(shape, bool)
    orig = {"lung": has["lung"] | with_primary, "liver": has["liver"], "bone": has["bone"],
            "adrenal": has["adrenal"], "regional_ln": yes, "distant_ln": yes, "other": yes}
    new = {"lung": ~has["lung"] & ~with_primary, "liver": ~has["liver"], "bone": ~has["bone"],
           "adrenal": ~has["adrenal"], "regional_ln": no, "distant_ln": yes, "other": yes}
    # the group's prevalence of each organ's metastases: a site rate that only patients with (OF) or
    # without (DF) the organ's baseline disease can have is divided by the share of such patients,
    # so that the expected count per pattern stays the fitted one
    rt = np.asarray(mets["rt"])
    prev = {s: _by_group(getattr(p, f"p_{s}"), rt) for s in ("lung", "liver", "bone", "adrenal")}
    # DF without brain progression: its one site among the new ones of lung : bone : other
    df_one = df & ~fail_brain
    w_df = np.stack([df_weights[0] / np.maximum(1.0 - prev["lung"], 1e-9),
                     df_weights[1] / np.maximum(1.0 - prev["bone"], 1e-9), np.full(shape, df_weights[2])], -1)
    df_pick = _cat_rows(u_one, w_df, np.stack([new["lung"], new["bone"], new["other"]], -1))
    for k, s in enumerate(("lung", "bone", "other")):
        fail[s] = np.where(df_one, df_pick == k, fail[s]).astype(np.int8)
    # OF: liver, bone, adrenal only with their baseline metastases, at the rate divided by the prevalence
    for k, s in enumerate(OTHER_SITES):
        if s in ("liver", "bone", "adrenal"):
            rate = np.minimum(p.site_rate_of[k] / np.maximum(prev[s], 1e-9), 1.0)
            fail[s] = np.where(of, metastatic & has[s] & (us[s] < rate), fail[s]).astype(np.int8)
    for s in OTHER_SITES:
        keep = np.where(of, orig[s], np.where(df, new[s], True))
        fail[s] = (fail[s].astype(bool) & keep).astype(np.int8)
    # an OF failure in the lung is the primary's: Table 2's OF lung count (7) is its OF primary-only
    # count (7), so a primary-only failure is in the lung and no other OF failure is
    fail["lung"] = np.where(of, location == 1, fail["lung"]).astype(np.int8)
    bbm = np.asarray(mets["brain"]) == 1
    brain = fail["brain"].astype(bool)
    u_add = U()
    u_add2 = (u_add * 7919.0) % 1.0  # a second, practically independent uniform without another draw

    def add(need, allowed, u):
        # the site is picked only where one is needed (few patients): the same pick, elementwise
        at = np.nonzero(need)
        pick = _cat_rows(u[at], totals,
                         np.stack([np.broadcast_to(allowed[s], shape)[at] for s in OTHER_SITES], -1))
        for k, s in enumerate(OTHER_SITES):
            f = fail[s].astype(bool)
            f[at] |= pick == k
            fail[s] = f.astype(np.int8)

    def any_of(allowed):
        return sum((fail[s].astype(bool) & allowed[s]).astype(np.int64) for s in OTHER_SITES) > 0

    none = metastatic & (sum(fail[s].astype(np.int64) for s in SITES) == 0)
    add(none & of, {**orig, "lung": no}, u_add)
    add(none & ~of, new, u_add)
    # ODF: at least one site that can be original (the primary counts) and one that can be new
    add(odf & ~(any_of(orig) | with_primary | (brain & bbm)), orig, u_add)
    add(odf & ~(any_of(new) | (brain & ~bbm)), new, u_add2)
    return fail, location
