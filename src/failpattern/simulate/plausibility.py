"""Does a cohort look like a draw from the calibrated model? Its log-likelihood and its curves beside random cohorts'.

Why this module exists: a reconstructed cohort can hit every published number
and still betray its making, by a Kaplan-Meier curve that stays flat for months
while dozens of patients are at risk, a handful of progressions packed into a
fortnight, or times the model would almost never draw. Clinical rules
(:func:`failpattern.cohort.check_clinical`) catch impossible records; this
module catches improbable ones, by comparing the cohort with ``replicates``
cohorts drawn from the random-mode model (:func:`failpattern.simulate.simulate_many`)
on three kinds of statistic:

* the **log-likelihood of the times** under the model, given each patient's
  covariates, treatments and outcome: PFS1 (Weibull proportional hazards,
  piecewise for brain metastases without brain RT; patients with best response
  PD are left out, as the model places their progression uniformly over the
  first scans), PFS2 (a Weibull with a never-progressing fraction), and death
  after the second progression (exponential), each censored where the cohort
  is. Its components are reported too. A typical cohort lies inside the central
  90% of the random cohorts' values;
* the **longest plateau** of each curve (PFS1, PFS2, OS, and the cumulative
  incidences of OF, DF and ODF): the longest stretch without an event that
  begins while at least :data:`PLATEAU_MIN_AT_RISK` patients are still at risk,
  ending at the next event or, after the last event, when fewer than that
  remain (a curve that stays flat to the end while many are followed has a
  plateau as surely as one that steps down after it);
* the **largest cluster** of each curve: the most events within
  :data:`CLUSTER_MONTHS` of each other, after the first response assessments
  (:data:`CLUSTER_FROM_MONTHS`): before them, progressions share the first
  scans by design (best response PD is read there, and a re-staging scan
  follows a change of treatment), so clusters there are expected.

A plateau or cluster is flagged when at most 5% of random cohorts have one as
long or as large (one-sided, with the usual +1 correction of a Monte Carlo p).
The tolerance of the comparison is the model's own variation, not a constant.
With twelve curve statistics a random cohort is itself flagged somewhere now and
then (40 random ni2019 cohorts: 11 had at least one flag), so the verdict
(:attr:`PlausibilityResult.typical`) compares the cohort's *most extreme* curve
statistic with random cohorts' most extreme ones (a family-wise Monte Carlo p,
``family_p``; 39 of the same 40 random cohorts pass it, as a 5% test should
let about 38 pass), beside the log-likelihood's central 90%.

Not judged: the calendar (accrual and the diagnosis-to-crizotinib lag) and the
baseline covariates, whose counts a reconstruction fixes to the published ones.
The statistics are computed from the durations a cohort records; times the
model shifts to the first scan (random cohorts) and times a reconstruction
truncates there are scored by the same density, so both are judged alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from failpattern.cohort.clinical import PD_LATEST_DAYS
from failpattern.simulate.generate import DPM, Batch, draw_batch, pfs1_lp
from failpattern.simulate.model import DEFAULT_PARAMS, Params

__all__ = ["CLUSTER_FROM_MONTHS", "CLUSTER_MONTHS", "CURVES", "PLATEAU_MIN_AT_RISK", "CurveReference",
           "PlausibilityResult", "course_arrays", "curve_reference", "curve_statistics", "plausibility", "time_loglik"]

#: A flat stretch counts as a plateau only while at least this many patients are at risk: with
#: fewer, long gaps between events are the ordinary tail of a small cohort (and where published
#: curves usually stop being read).
PLATEAU_MIN_AT_RISK = 10
#: Width of the window in which events count as one cluster: half a month, finer than the
#: 6-8 week scan interval, so a cluster this tight is not explained by scan timing.
CLUSTER_MONTHS = 0.5
#: Clusters are counted among events after this many months from the curve's origin: the latest a
#: best response of PD is read (the clinical rules' PD_LATEST_DAYS, 12 weeks).
CLUSTER_FROM_MONTHS = PD_LATEST_DAYS / DPM
#: The curves whose plateaus and clusters are compared.
CURVES = ("PFS1", "PFS2", "OS", "OF", "DF", "ODF")
#: Central share of random cohorts' log-likelihoods a typical cohort lies in; and the tail
#: probability below which a plateau or cluster is flagged.
CENTRAL, TAIL = 0.90, 0.05

_RESPONSE = {"CR": 0, "PR": 1, "SD": 2, "PD": 3}
_PATTERN = {"OF": 1, "DF": 2, "ODF": 3}
_BURDEN = {"oligo": 1, "multiple": 2}


@dataclass(frozen=True)
class PlausibilityResult:
    """Result of :func:`plausibility`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per statistic: ``statistic`` (``loglik``, ``loglik_pfs1``,
        ``loglik_pfs2``, ``loglik_death``, ``plateau``, ``cluster``), ``curve``,
        ``value`` (the cohort's), ``q05``, ``q50``, ``q95`` (random cohorts'
        quantiles), ``p`` (share of random cohorts at least as extreme:
        one-sided upward for plateaus and clusters, two-sided for
        log-likelihoods), ``judged`` (the log-likelihood's components are shown,
        not judged), ``typical`` (bool: the log-likelihood inside the random
        cohorts' central 90%; a plateau or cluster with ``p`` above 0.05).
    replicates : int
        Random cohorts compared with.
    outside_support : int
        Patients whose record the model gives probability 0 (e.g. a death
        without a second progression); they add nothing to the log-likelihood.
    family_p : float
        Share of random cohorts whose most extreme plateau or cluster (smallest
        ``p`` over the curves) is at least as extreme as the cohort's: with twelve
        curve statistics, a random cohort has one with ``p`` <= 0.05 far more
        often than 5% of the time, and this says how unusual the cohort's worst
        one is.
    """

    table: pd.DataFrame
    replicates: int
    outside_support: int
    family_p: float

    @property
    def typical(self) -> bool:
        """True when the cohort looks like a draw from the model: its log-likelihood inside the random
        cohorts' central 90%, its most extreme plateau or cluster no rarer than 5% of random cohorts'
        most extreme one (``family_p`` > 0.05), and no record outside the model's support."""
        loglik = self.table.loc[self.table["statistic"] == "loglik", "typical"]
        return bool(loglik.all()) and self.family_p > TAIL and self.outside_support == 0

    @property
    def summary(self) -> pd.DataFrame:
        """The table with the flagged rows first."""
        return self.table.sort_values("typical", kind="stable").reset_index(drop=True)

    def __repr__(self) -> str:
        flagged = self.table.loc[~self.table["typical"], ["statistic", "curve"]]
        what = ", ".join(f"{s} {c}".strip() for s, c in flagged.itertuples(index=False)) or "none"
        return (f"PlausibilityResult({len(self.table)} statistics against {self.replicates} random cohorts; "
                f"flagged: {what}; family p {self.family_p:.3f})")


def course_arrays(source) -> dict:
    """The arrays the statistics read, from a :class:`Batch` or a cohort in the cohort format.

    Parameters
    ----------
    source : Batch, pandas.DataFrame or Cohort
        Simulated cohorts (``(R, n)`` arrays), or one cohort as
        :func:`failpattern.cohort.load_cohort` accepts it (it is validated).

    Returns
    -------
    dict
        ``(R, n)`` arrays (``R`` = 1 for a cohort): months ``pfs1``, ``pfs2``
        (0 without a first progression), ``os``, ``wait`` (second progression to
        death or last follow-up; NaN where the cohort has no dates to tell),
        event flags ``ev1``, ``ev2``, ``died``, codes ``pattern`` (0 none, 1 OF, 2 DF,
        3 ODF), ``response`` (0 CR .. 3 PD), and the model's covariates ``brain``,
        ``brain_rt``, ``burden``, ``non_adeno``, ``organs``, ``salvage``, ``cbpd``, ``rt``.
    """
    if isinstance(source, Batch):
        b = source
        pfs1, pfs2, os_ = b.pfs1_d / DPM, b.pfs2_d / DPM, b.os_d / DPM
        return {"pfs1": pfs1, "pfs2": pfs2, "os": os_, "wait": os_ - b.lag_d / DPM - pfs1 - pfs2,
                "ev1": b.pfs1_event == 1, "ev2": b.pfs2_event == 1, "died": b.os_event == 1,
                "pattern": b.pattern, "response": b.response, "brain": b.mets["brain"], "brain_rt": b.brain_rt,
                "burden": b.burden, "non_adeno": b.non_adeno, "organs": b.organs, "salvage": b.salvage > 0,
                "cbpd": b.next == 0, "rt": b.rt}
    from failpattern.cohort import Cohort, load_cohort

    d = (source if isinstance(source, Cohort) else load_cohort(source)).data

    def col(name, default=0.0):
        if name not in d:
            return np.full(len(d), default, dtype=float)
        return pd.to_numeric(d[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    def codes(name, mapping):
        if name not in d:
            return np.zeros(len(d), dtype=np.int8)
        return d[name].astype(object).map(mapping).fillna(0).to_numpy(dtype=np.int8)

    pfs1, os_ = col("pfs1_months"), col("os_months")
    ev1 = col("pfs1_event") == 1
    pfs2 = np.where(ev1, np.nan_to_num(col("pfs2_months")), 0.0)
    if {"crizotinib_start_date", "diagnosis_date"} <= set(d.columns):
        lag = (d["crizotinib_start_date"] - d["diagnosis_date"]).dt.days.to_numpy(dtype=float, na_value=np.nan) / DPM
    else:
        lag = np.full(len(d), np.nan)
    out = {"pfs1": pfs1, "pfs2": pfs2, "os": os_, "wait": os_ - lag - pfs1 - pfs2, "ev1": ev1,
           "ev2": ev1 & (col("pfs2_event") == 1), "died": col("os_event") == 1,
           "pattern": codes("failure_pattern", _PATTERN), "response": codes("best_response", _RESPONSE),
           "brain": col("brain_mets"), "brain_rt": col("prior_brain_rt"),
           "burden": codes("brain_mets_burden", _BURDEN),
           "non_adeno": (d["histology"].astype(object) == "other").to_numpy(dtype=float) if "histology" in d
           else np.zeros(len(d)),
           "organs": col("n_metastatic_organs"), "salvage": col("salvage_rt") == 1, "cbpd": col("cbpd") == 1,
           "rt": col("any_rt")}
    return {k: np.asarray(v)[None, :] for k, v in out.items()}


def _weibull_parts(t, scale, shape):
    """Baseline cumulative hazard (t / scale)^shape and its derivative at ``t`` > 0."""
    base = (t / scale) ** shape
    return base, shape / t * base


def time_loglik(params: Params, course: dict) -> dict:
    """Log-likelihood of each cohort's times under the model, by component.

    Parameters
    ----------
    params : Params
        The model.
    course : dict
        Arrays from :func:`course_arrays`.

    Returns
    -------
    dict
        ``pfs1``, ``pfs2``, ``death`` and ``loglik`` (their sum): ``(R,)`` arrays;
        and ``outside`` (``(R,)``): patients the model gives probability 0, left out
        of the sums.
    """
    p, c = params, course
    with np.errstate(divide="ignore", invalid="ignore"):
        # PFS1: piecewise Weibull PH (see generate.pfs1_inv), best response PD left out
        t1 = np.maximum(c["pfs1"], 1e-9)
        lp = pfs1_lp(p, {"brain": c["brain"], "brain_rt": c["brain_rt"], "burden": c["burden"],
                         "non_adeno": c["non_adeno"], "organs": c["organs"], "response": c["response"]})
        base, dbase = _weibull_parts(t1, p.pfs1_scale, p.pfs1_shape)
        a = (p.pfs1_change / p.pfs1_scale) ** p.pfs1_shape
        late = (c["brain"] == 1) & (c["brain_rt"] == 0) & (base > a)
        lp_late = lp - p.b_bbm_untreated + p.b_bbm_untreated_late
        cumhaz = np.where(late, a * np.exp(lp) + (base - a) * np.exp(lp_late), base * np.exp(lp))
        loghaz = np.log(dbase) + np.where(late, lp_late, lp)
        l1 = np.where(c["response"] == 3, 0.0, np.where(c["ev1"], loghaz, 0.0) - cumhaz)
        # PFS2 of the progressed: a fraction never progresses again, the others Weibull PH
        t2 = np.maximum(c["pfs2"], 1e-9)
        lp2 = p.c_salvage * c["salvage"] + p.c_cbpd * c["cbpd"]
        base2, dbase2 = _weibull_parts(t2, p.pfs2_scale, p.pfs2_shape)
        h2 = base2 * np.exp(lp2)
        cure = p.pfs2_no_progression
        l2 = np.where(c["ev2"], np.log1p(-cure) + np.log(dbase2) + lp2 - h2, np.log(cure + (1 - cure) * np.exp(-h2)))
        l2 = np.where(c["ev1"], l2, 0.0)
        # death after the second progression: exponential, by RT group
        rate = p.death_rate * np.exp(p.d_non_rt * (c["rt"] == 0))
        wait = c["wait"]
        l3 = np.where(c["died"], np.log(rate), 0.0) - rate * np.maximum(wait, 0.0)
        l3 = np.where(c["ev2"] & np.isfinite(wait), l3, 0.0)
    # records the model cannot produce: a death before a second progression, a negative wait
    outside = (c["died"] & ~c["ev2"]) | (c["ev2"] & (wait < -1.0 / DPM))
    parts = {}
    for name, v in (("pfs1", l1), ("pfs2", l2), ("death", l3)):
        parts[name] = np.where(outside | ~np.isfinite(v), 0.0, v).sum(axis=-1)
    parts["loglik"] = parts["pfs1"] + parts["pfs2"] + parts["death"]
    parts["outside"] = outside.sum(axis=-1)
    return parts


def _curve(course: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Times and event flags of one curve, ``(R, n)`` (NaN time = not in the curve's population)."""
    c = course
    if name == "PFS1":
        return c["pfs1"], c["ev1"]
    if name == "PFS2":
        return np.where(c["ev1"], c["pfs2"], np.nan), c["ev2"]
    if name == "OS":
        return c["os"], c["died"]
    return c["pfs1"], c["pattern"] == _PATTERN[name]


def curve_statistics(course: dict) -> pd.DataFrame:
    """Longest plateau and largest cluster of each curve of each cohort.

    Parameters
    ----------
    course : dict
        Arrays from :func:`course_arrays`.

    Returns
    -------
    pandas.DataFrame
        One row per cohort; columns ``("plateau", curve)`` (months; 0 without an
        event while :data:`PLATEAU_MIN_AT_RISK` are at risk) and ``("cluster", curve)``
        (events, after :data:`CLUSTER_FROM_MONTHS`) for each of :data:`CURVES`.
    """
    out = {}
    for name in CURVES:
        time, event = _curve(course, name)
        plateau, cluster = np.zeros(time.shape[0]), np.zeros(time.shape[0])
        for r in range(time.shape[0]):
            t, e = time[r], event[r]
            keep = np.isfinite(t)
            t, e = t[keep], e[keep]
            order = np.argsort(t, kind="stable")
            t, e = t[order], e[order]
            te = t[e]
            if te.size == 0:
                continue
            # at risk just after each event time: those whose time is later
            at_risk_after = t.size - np.searchsorted(t, te, side="right")
            # each stretch from an event to the next, or, after the last, to the time when fewer than
            # PLATEAU_MIN_AT_RISK remain (a flat tail with many still followed is a plateau too)
            last = t[t.size - PLATEAU_MIN_AT_RISK] if t.size >= PLATEAU_MIN_AT_RISK else te[-1]
            gaps = np.diff(np.concatenate([te, [max(last, te[-1])]]))
            ok = at_risk_after >= PLATEAU_MIN_AT_RISK
            plateau[r] = gaps[ok].max() if ok.any() else 0.0
            late = te[te > CLUSTER_FROM_MONTHS]
            if late.size:
                cluster[r] = (np.searchsorted(late, late + CLUSTER_MONTHS, side="right") - np.arange(late.size)).max()
        out[("plateau", name)] = plateau
        out[("cluster", name)] = cluster
    return pd.DataFrame(out)


@dataclass(frozen=True)
class CurveReference:
    """Random cohorts' plateaus and clusters, the yardstick a cohort's curves are judged by.

    Attributes
    ----------
    stats : pandas.DataFrame
        :func:`curve_statistics` of the random cohorts (one row each).
    """

    stats: pd.DataFrame

    @property
    def replicates(self) -> int:
        """Random cohorts."""
        return len(self.stats)

    @cached_property
    def _sorted(self) -> np.ndarray:
        return np.sort(self.stats.to_numpy(dtype=float), axis=0)

    @cached_property
    def q95(self) -> np.ndarray:
        """Each statistic's 95th percentile over the random cohorts, in :attr:`stats` column order."""
        return np.quantile(self.stats.to_numpy(dtype=float), 1 - TAIL, axis=0)

    def p_values(self, stats: pd.DataFrame) -> np.ndarray:
        """Share of random cohorts with a plateau as long or a cluster as large, per cohort and statistic.

        Parameters
        ----------
        stats : pandas.DataFrame
            :func:`curve_statistics` of the cohorts judged (same columns).

        Returns
        -------
        numpy.ndarray
            ``(len(stats), columns)``: ``(1 + #random >= value) / (1 + replicates)``; a
            statistic is flagged at ``p <= 0.05``.
        """
        v = stats[self.stats.columns].to_numpy(dtype=float)
        ref = self._sorted
        at_least = np.stack([ref.shape[0] - np.searchsorted(ref[:, j], v[:, j], side="left")
                             for j in range(ref.shape[1])], axis=1)
        return (at_least + 1) / (self.replicates + 1)


def curve_reference(params: Params, n: int, rng: np.random.Generator | int, replicates: int = 1000) -> CurveReference:
    """The plateaus and clusters of ``replicates`` random cohorts of ``n`` patients drawn from the model.

    Parameters
    ----------
    params : Params
        The model.
    n : int
        Patients per cohort.
    rng : numpy.random.Generator or int
        Source of the random cohorts (an int seeds a new generator).
    replicates : int
        Random cohorts.

    Returns
    -------
    CurveReference

    Raises
    ------
    InputError
        ``n`` or ``replicates`` not a positive integer, or a bad ``rng``.
    """
    from failpattern.simulate import _check_n, _rng

    n, replicates, rng = _check_n(n), _check_n(replicates, "replicates"), _rng(rng)
    return CurveReference(curve_statistics(course_arrays(draw_batch(params, rng, replicates, n))))


def plausibility(cohort, *, params: Params = DEFAULT_PARAMS, replicates: int = 1000,
                 rng: np.random.Generator | int = 0) -> PlausibilityResult:
    """Compare a cohort with random cohorts of the model: log-likelihood, plateaus, clusters.

    Parameters
    ----------
    cohort : pandas.DataFrame, Cohort or Batch
        The cohort (cohort format, validated by the loader) or simulated arrays
        (the first cohort of a :class:`Batch` is judged).
    params : Params
        The model (:data:`DEFAULT_PARAMS`, calibrated to ni2019).
    replicates : int
        Random cohorts drawn, of the cohort's size.
    rng : numpy.random.Generator or int
        Source of the random cohorts (same seed, same verdicts).

    Returns
    -------
    PlausibilityResult

    Raises
    ------
    InputError
        A cohort that does not load, a bad ``replicates`` or ``rng``.

    Examples
    --------
    >>> from failpattern.simulate import simulate
    >>> plausibility(simulate(seed=3), replicates=200, rng=1).typical
    True
    """
    from failpattern.simulate import _check_n, _rng

    replicates, rng = _check_n(replicates, "replicates"), _rng(rng)
    course = course_arrays(cohort)
    course = {k: v[:1] for k, v in course.items()}
    n = course["pfs1"].shape[1]
    ref = course_arrays(draw_batch(params, rng, replicates, n))
    mine, theirs = time_loglik(params, course), time_loglik(params, ref)
    rows, cohort_p, random_p = [], [], []
    for part in ("loglik", "pfs1", "pfs2", "death"):
        v, dist = float(mine[part][0]), theirs[part]
        below, above = (np.sum(dist <= v) + 1) / (replicates + 1), (np.sum(dist >= v) + 1) / (replicates + 1)
        lo, hi = np.quantile(dist, [(1 - CENTRAL) / 2, (1 + CENTRAL) / 2])
        judged = part == "loglik"  # the components are shown, the total judged
        rows.append(("loglik" if judged else f"loglik_{part}", "", v, *np.quantile(dist, [0.05, 0.5, 0.95]),
                     min(1.0, 2 * min(below, above)), judged, bool(lo <= v <= hi) or not judged))
    stats_mine, reference = curve_statistics(course), CurveReference(curve_statistics(ref))
    stats_ref, p_mine = reference.stats, reference.p_values(stats_mine)[0]
    for j, key in enumerate(stats_ref.columns):
        v, dist, p = float(stats_mine[key].iloc[0]), stats_ref[key].to_numpy(), float(p_mine[j])
        rows.append((key[0], key[1], v, *np.quantile(dist, [0.05, 0.5, 0.95]), p, True, bool(p > TAIL)))
        cohort_p.append(p)
        # each random cohort's own p against the others (ties count as at least as extreme)
        ranks = np.searchsorted(np.sort(dist), dist, side="left")
        random_p.append((replicates - ranks) / replicates)
    table = pd.DataFrame(rows, columns=["statistic", "curve", "value", "q05", "q50", "q95", "p", "judged",
                                        "typical"])
    # the most extreme curve statistic, against random cohorts' most extreme one (many curves are compared)
    family_p = (np.sum(np.min(random_p, axis=0) <= min(cohort_p)) + 1) / (replicates + 1)
    return PlausibilityResult(table=table, replicates=replicates, outside_support=int(mine["outside"][0]),
                              family_p=float(family_p))
