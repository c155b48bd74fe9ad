"""Methods audit: how much of Fig. 1b-d's effects survive when treatment is counted from when it began.

Why this module exists: three of the paper's Kaplan-Meier comparisons group
patients by a treatment that begins *after* time zero: salvage radiotherapy
after first progression (Fig. 1b, PFS2), crizotinib continued beyond
progression (Fig. 1c, PFS2), radiotherapy at any time of the treatment course
(Fig. 1d, OS from diagnosis). A patient must live (and stay event-free) long
enough to receive the treatment to be counted as treated: the treated group is
credited with time during which it was not yet treated ("immortal time"),
which alone can produce a small p-value. For each comparison
:func:`methods_audit` puts beside the naive analysis (treatment fixed at time
zero, as published):

* a **time-dependent Cox model**: each patient's follow-up split at the start
  of treatment into (start, stop] rows, untreated before, treated after
  (:func:`failpattern.stats.cox` with ``entry``; Efron ties, as R ``coxph``); its
  score test, which with one covariate is the log-rank test with the groups
  re-formed at each event time, is set against the naive log-rank test, so that
  the two p-values differ by the handling of time and not by the test;
* **landmark analyses**: at each landmark, the patients still followed and
  event-free, grouped by whether treatment had begun by then, compared on the
  time after the landmark (log-rank and Cox);
* the **Simon-Makuch** curves: Kaplan-Meier estimates in which a patient moves
  from the untreated to the treated curve when treatment begins (delayed entry,
  :func:`failpattern.stats.kaplan_meier` with ``entry``);
* a sentence saying whether the conclusion holds.

:func:`immortal_time_null` shows the mechanism itself: simulated cohorts in which a
treatment does nothing, analysed both ways, and how often each finds an effect.

**When treatment began.** The cohort format's optional columns
``salvage_rt_months`` (from first progression), ``cbpd_months`` (from first
progression) and ``first_rt_months`` (from diagnosis) give it. Where a treated
patient's timing is not recorded, the audit uses the *earliest* time the
record allows, so the correction it shows is the smallest one consistent with
the data: salvage RT and CBPD at first progression (time zero of PFS2: no
immortal time is left, and the time-dependent analysis then equals the
naive one for that patient); the first RT course at diagnosis for patients
with prior RT, at first progression for patients whose RT was salvage RT,
and at crizotinib start otherwise. Each comparison says how many treated
patients had recorded timing.

Landmarks (:data:`LANDMARKS`, months from each endpoint's time zero) are
chosen before looking at any result: for PFS2, 1 and 2 months (salvage RT
normally begins within weeks of the progression it treats, and PFS2's
median is 7 months); for OS from diagnosis, 12 and 24 months (about the
published median PFS1 after a typical interval from diagnosis to
crizotinib, and twice that: most radiotherapy after crizotinib follows first
progression).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from failpattern.cohort.dates import DAYS_PER_MONTH
from failpattern.errors import FailpatternError

__all__ = ["EXPOSURES", "LANDMARKS", "ExposureAnalysis", "ExposureAudit", "MethodsAudit", "NullStudy",
           "analyse_exposure", "immortal_time_null", "methods_audit", "null_task", "split_at_exposure"]


@dataclass(frozen=True)
class _Exposure:
    """One comparison: the plan's log-rank comparison it audits and how its treatment is timed."""

    comparison: str  # the plan's name (failpattern.study.analyses.survival.SURVIVAL)
    figure: str
    endpoint: str
    treatment: str
    timing_column: str
    origin: str


#: The comparisons audited, keyed by the plan's comparison name.
EXPOSURES = {
    "pfs2.by_salvage_rt": _Exposure("pfs2.by_salvage_rt", "Fig. 1b", "PFS2", "salvage radiotherapy",
                                    "salvage_rt_months", "first progression"),
    "pfs2.by_cbpd": _Exposure("pfs2.by_cbpd", "Fig. 1c", "PFS2", "crizotinib beyond progression",
                              "cbpd_months", "first progression"),
    "os.by_any_rt": _Exposure("os.by_any_rt", "Fig. 1d", "OS", "radiotherapy at any time",
                              "first_rt_months", "diagnosis"),
}
#: Landmarks (months from the endpoint's time zero); see the module docstring for why.
LANDMARKS = {"PFS2": (1.0, 2.0), "OS": (12.0, 24.0)}


@dataclass(frozen=True)
class ExposureAudit:
    """The audit of one comparison (see :func:`methods_audit`).

    Attributes
    ----------
    comparison, figure, endpoint, treatment : str
        The plan's comparison name (``"os.by_any_rt"``), the figure, the endpoint and the treatment.
    p_id : str
        The card id of the published log-rank p-value (the plan's id of the naive test).
    n, n_treated, n_timed : int
        Patients compared, treated, and treated with a recorded start of treatment.
    naive : pandas.Series
        The published analysis on this cohort: ``p`` (log-rank), ``hr``, ``hr_lower``,
        ``hr_upper`` (Cox, treatment fixed at time zero).
    time_dependent : pandas.Series
        ``hr``, ``hr_lower``, ``hr_upper`` and ``p`` (score test: with one covariate, the
        log-rank test generalised to a time-dependent group) of the treatment as a (start, stop]
        covariate; NaN where the model cannot be fitted.
    landmarks : pandas.DataFrame
        One row per landmark: ``landmark`` (months), ``n``, ``n_treated`` (treated by
        then), ``p`` (log-rank), ``hr``, ``hr_lower``, ``hr_upper``, ``note``.
    curves : Mapping
        The Simon-Makuch curves: ``"untreated"`` and ``"treated"``
        :class:`~failpattern.stats.km.KaplanMeierResult` (log-log limits).
    holds : bool or None
        Whether the naive conclusion (a difference at p < 0.05, or none) is also the
        time-dependent model's; None when either cannot be computed.
    conclusion : str
        The finding in one or two plain sentences.
    """

    comparison: str
    figure: str
    endpoint: str
    treatment: str
    p_id: str
    n: int
    n_treated: int
    n_timed: int
    naive: pd.Series
    time_dependent: pd.Series
    landmarks: pd.DataFrame
    curves: Mapping
    holds: bool | None
    conclusion: str


@dataclass(frozen=True)
class MethodsAudit:
    """Result of :func:`methods_audit`: one :class:`ExposureAudit` per comparison.

    Attributes
    ----------
    comparisons : tuple of ExposureAudit
        In the paper's order (Fig. 1b, 1c, 1d); a comparison the cohort cannot support is absent.
    skipped : pandas.DataFrame
        ``comparison``, ``reason``: comparisons left out.
    """

    comparisons: tuple[ExposureAudit, ...]
    skipped: pd.DataFrame

    @property
    def summary(self) -> pd.DataFrame:
        """One row per comparison: naive p and HR, time-dependent HR (limits) and p, holds."""
        rows = []
        for a in self.comparisons:
            rows.append({"figure": a.figure, "endpoint": a.endpoint, "treatment": a.treatment, "n": a.n,
                         "n_treated": a.n_treated, "n_timed": a.n_timed, "naive_p": a.naive["p"],
                         "naive_hr": a.naive["hr"], "td_hr": a.time_dependent["hr"],
                         "td_hr_lower": a.time_dependent["hr_lower"], "td_hr_upper": a.time_dependent["hr_upper"],
                         "td_p": a.time_dependent["p"], "holds": a.holds})
        return pd.DataFrame(rows)

    def __getitem__(self, comparison: str) -> ExposureAudit:
        for a in self.comparisons:
            if a.comparison == comparison:
                return a
        raise KeyError(comparison)

    def __repr__(self) -> str:
        parts = [f"{a.figure} {'holds' if a.holds else 'does not hold' if a.holds is False else 'not judged'}"
                 for a in self.comparisons]
        return f"MethodsAudit({'; '.join(parts) or 'nothing audited'})"


def split_at_exposure(time, event, treated, start_of_treatment) -> pd.DataFrame:
    """Counting-process rows: each patient's follow-up split where treatment begins.

    Parameters
    ----------
    time : array_like
        Follow-up (months from time zero), > 0.
    event : array_like
        1 = event at ``time``, 0 = censored.
    treated : array_like
        1 = the patient received the treatment (at some time), 0 = never.
    start_of_treatment : array_like
        Months from time zero to the start of treatment for treated patients (NaN for the
        untreated). At or before 0: treated from the start; at or after ``time``: never
        treated during follow-up.

    Returns
    -------
    pandas.DataFrame
        ``patient`` (position in the input), ``start``, ``stop``, ``event`` (only on a
        patient's last row), ``treated`` (0/1 during the row); one or two rows per patient.
        A follow-up of 0 months gives no row: it holds no time at risk (as R's ``tmerge``
        drops empty intervals).
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=int)
    x = np.asarray(treated, dtype=int) == 1
    s = np.where(x, np.asarray(start_of_treatment, dtype=float), np.inf)
    split = x & (s > 0) & (s < t)
    k = np.arange(t.size)
    first = pd.DataFrame({"patient": k, "start": 0.0, "stop": np.where(split, s, t),
                          "event": np.where(split, 0, e), "treated": (x & (s <= 0)).astype(int)})
    second = pd.DataFrame({"patient": k[split], "start": s[split], "stop": t[split], "event": e[split],
                           "treated": 1})
    rows = pd.concat([first, second])
    rows = rows[rows["stop"] > rows["start"]]
    return rows.sort_values(["patient", "start"], kind="stable").reset_index(drop=True)


def _start_of_treatment(data: pd.DataFrame, spec: _Exposure) -> tuple[np.ndarray, np.ndarray]:
    """Months from the endpoint's time zero to the start of treatment, and whether it was recorded."""
    n = len(data)

    def col(name):
        if name not in data:
            return np.full(n, np.nan)
        return pd.to_numeric(data[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    recorded = col(spec.timing_column)
    timed = np.isfinite(recorded)
    if spec.origin == "first progression":
        earliest = np.zeros(n)
    else:  # diagnosis: prior RT from diagnosis, salvage RT at first progression, else crizotinib start
        if {"crizotinib_start_date", "diagnosis_date"} <= set(data.columns):
            lag = (data["crizotinib_start_date"] - data["diagnosis_date"]).dt.days.to_numpy(
                dtype=float, na_value=np.nan) / DAYS_PER_MONTH
        else:
            lag = np.full(n, np.nan)
        lag = np.nan_to_num(lag, nan=0.0)  # unknown: crizotinib start is at least diagnosis
        at_progression = lag + np.nan_to_num(col("pfs1_months"), nan=0.0)
        earliest = np.where(col("prior_rt") == 1, 0.0, np.where(col("salvage_rt") == 1, at_progression, lag))
    return np.where(timed, recorded, earliest), timed


def _cox_row(df: pd.DataFrame, **kw) -> pd.Series:
    from failpattern.stats import cox

    empty = pd.Series({"hr": np.nan, "hr_lower": np.nan, "hr_upper": np.nan, "p": np.nan})
    if df["event"].sum() == 0 or df["treated"].nunique() < 2:
        return empty
    try:
        fit = cox(df, duration="stop", event="event", covariates="treated", **kw)
    except FailpatternError:
        return empty
    s = fit.summary.iloc[0]
    # the score test: at one covariate, the (time-dependent) log-rank test, as the naive comparison's
    return pd.Series({"hr": s["hr"], "hr_lower": s["hr_lower"], "hr_upper": s["hr_upper"],
                      "p": fit.score_test.p_value})


def _logrank_p(time, event, group) -> float:
    from failpattern.stats import logrank

    if np.sum(event) == 0 or len(np.unique(group)) < 2:
        return np.nan
    try:
        return float(logrank(time, event, group).p_value)
    except FailpatternError:
        return np.nan


def _landmarks(t, e, x, s, points) -> pd.DataFrame:
    rows = []
    for lm in points:
        keep = t > lm
        by = (x == 1) & (s <= lm)
        tt, ee, gg = t[keep] - lm, e[keep], by[keep].astype(int)
        n_tr = int(gg.sum())
        note = "" if 0 < n_tr < gg.size else "one group is empty at this landmark"
        fit = _cox_row(pd.DataFrame({"start": 0.0, "stop": tt, "event": ee, "treated": gg}), ties="efron")
        rows.append({"landmark": lm, "n": int(keep.sum()), "n_treated": n_tr,
                     "p": _logrank_p(tt, ee, gg) if not note else np.nan, "hr": fit["hr"],
                     "hr_lower": fit["hr_lower"], "hr_upper": fit["hr_upper"], "note": note})
    return pd.DataFrame(rows, columns=["landmark", "n", "n_treated", "p", "hr", "hr_lower", "hr_upper", "note"])


@dataclass(frozen=True)
class ExposureAnalysis:
    """Result of :func:`analyse_exposure`.

    Attributes
    ----------
    rows : pandas.DataFrame
        The counting-process rows (:func:`split_at_exposure`).
    naive : pandas.Series
        Treatment fixed at time zero: ``p`` (log-rank), ``hr``, ``hr_lower``, ``hr_upper`` (Cox, Efron).
    time_dependent : pandas.Series
        ``hr``, ``hr_lower``, ``hr_upper``, ``p`` (score test, the time-dependent log-rank) of the
        treatment as a (start, stop] covariate.
    landmarks : pandas.DataFrame
        ``landmark``, ``n``, ``n_treated`` (treated by the landmark), ``p`` (log-rank), ``hr``,
        ``hr_lower``, ``hr_upper`` (Cox on the time after the landmark), ``note``.
    curves : Mapping
        Simon-Makuch curves, ``"untreated"`` and ``"treated"`` (KaplanMeierResult, delayed entry).
    """

    rows: pd.DataFrame
    naive: pd.Series
    time_dependent: pd.Series
    landmarks: pd.DataFrame
    curves: Mapping


def analyse_exposure(time, event, treated, start_of_treatment, *, landmarks=()) -> ExposureAnalysis:
    """A treatment that begins after time zero, analysed naively and as a time-dependent exposure.

    Parameters
    ----------
    time, event : array_like
        Follow-up from time zero (> 0 where it counts; a follow-up of 0 holds no time at
        risk) and 1 = event, 0 = censored.
    treated : array_like
        1 = received the treatment at some time.
    start_of_treatment : array_like
        Time from time zero to the start of treatment (NaN for the untreated), in the unit of ``time``.
    landmarks : sequence of float
        Landmark times for the landmark analyses.

    Returns
    -------
    ExposureAnalysis

    Examples
    --------
    The Stanford heart transplant data (``tests/reference/audit.R``): counted from acceptance,
    transplanted patients seem to live far longer (HR 0.27, p < 1e-7); counted as transplanted
    only from the day of transplant, HR 1.04, p = 0.90 (as R ``coxph`` on ``tmerge`` rows).
    """
    from failpattern.stats import kaplan_meier

    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=int)
    x = np.asarray(treated, dtype=int)
    s = np.asarray(start_of_treatment, dtype=float)
    rows = split_at_exposure(t, e, x, s)
    naive = _cox_row(pd.DataFrame({"start": 0.0, "stop": t, "event": e, "treated": x}), ties="efron")
    naive["p"] = _logrank_p(t, e, x)
    curves = {}
    for label, flag in (("untreated", 0), ("treated", 1)):
        r = rows[rows["treated"] == flag]
        if len(r):
            curves[label] = kaplan_meier(r["stop"], r["event"], entry=r["start"])
    return ExposureAnalysis(rows=rows, naive=naive, time_dependent=_cox_row(rows, entry="start", ties="efron"),
                            landmarks=_landmarks(t, e, x, s, tuple(landmarks)), curves=curves)


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _conclusion(spec: _Exposure, naive: pd.Series, td: pd.Series, n_treated: int, n_timed: int) -> tuple:
    if not (np.isfinite(naive["p"]) and np.isfinite(td["p"])):
        return None, (f"{spec.figure}: {spec.endpoint} by {spec.treatment} cannot be audited on this cohort "
                      "(a group without events, or no treated patient).")
    if spec.origin == "first progression" and n_timed == 0:
        return None, (f"{spec.figure}: {spec.endpoint} by {spec.treatment} (naive log-rank {_fmt_p(naive['p'])}) "
                      f"is decided at first progression, the time zero of {spec.endpoint}; immortal time is "
                      f"the delay to the start of treatment, which this cohort does not record "
                      f"({spec.timing_column}), so the audit cannot judge it.")
    sig_naive, sig_td = naive["p"] < 0.05, td["p"] < 0.05
    holds = bool(sig_naive == sig_td)
    if n_timed == n_treated:
        timing = "every treated patient's start of treatment recorded"
    elif n_timed == 0:
        timing = (f"no start of treatment recorded ({spec.timing_column}): each taken at the earliest time the "
                  "patient's record allows, so this is the smallest correction the data permit")
    else:
        timing = (f"start of treatment recorded for {n_timed} of {n_treated} treated patients, the others taken "
                  "at the earliest time their record allows")
    lead = (f"{spec.figure}, {spec.endpoint} by {spec.treatment}: naive log-rank {_fmt_p(naive['p'])} "
            f"(HR {naive['hr']:.2f}); counted as treated only from the start of treatment, HR "
            f"{td['hr']:.2f} (95% CI {td['hr_lower']:.2f}-{td['hr_upper']:.2f}), {_fmt_p(td['p'])}.")
    if sig_naive and sig_td:
        verdict = "The difference holds once immortal time is removed."
    elif sig_naive:
        verdict = "The difference does not hold once immortal time is removed."
    elif sig_td:
        verdict = "No difference naively, but one appears once immortal time is removed."
    else:
        verdict = "No difference either way."
    return holds, f"{lead} {verdict} ({timing}.)"


def methods_audit(cohort, *, landmarks: Mapping | None = None) -> MethodsAudit:
    """Audit Fig. 1b-d for immortal-time bias: naive beside time-dependent, landmark and Simon-Makuch.

    Parameters
    ----------
    cohort : Cohort or pandas.DataFrame
        The cohort (a frame is validated with :func:`~failpattern.cohort.load_cohort`).
    landmarks : Mapping, optional
        Landmarks per endpoint (``{"PFS2": (1.0, 2.0), "OS": (12.0, 24.0)}``, :data:`LANDMARKS`).

    Returns
    -------
    MethodsAudit

    Raises
    ------
    InputError
        A cohort that does not load, or landmarks that are not positive numbers.

    Examples
    --------
    >>> from failpattern.simulate import simulate
    >>> audit = methods_audit(simulate(seed=1))
    >>> audit.summary[["figure", "naive_p", "td_p", "holds"]]  # doctest: +SKIP
    """
    from failpattern.cohort import Cohort, load_cohort
    from failpattern.errors import InputError
    from failpattern.study.analyses.survival import SURVIVAL

    cohort = cohort if isinstance(cohort, Cohort) else load_cohort(cohort)
    points = dict(LANDMARKS if landmarks is None else landmarks)
    for k, v in points.items():
        vals = np.atleast_1d(np.asarray(v, dtype=float))
        if vals.size == 0 or not np.all(np.isfinite(vals) & (vals > 0)):
            raise InputError(f"landmarks: {k} must be positive numbers of months; got {v!r}")
        points[k] = tuple(vals.tolist())
    plan = {row[0]: row for row in SURVIVAL}
    audits, skipped = [], []
    for name, spec in EXPOSURES.items():
        _, endpoint, key, _, group, _, p_id = plan[name]
        if not cohort.supports(key):
            skipped.append((name, f"the cohort lacks {', '.join(cohort.missing_for(key))}"))
            continue
        data, _ = cohort.rows_for(key)
        t = data[f"{endpoint}_months"].to_numpy(dtype=float)
        e = data[f"{endpoint}_event"].to_numpy(dtype=int)
        x = data[group].to_numpy(dtype=int)
        s, timed = _start_of_treatment(data, spec)
        if t.size == 0 or not np.any(t > 0):
            skipped.append((name, "no patient with follow-up"))
            continue
        fit = analyse_exposure(t, e, x, s, landmarks=points.get(spec.endpoint, ()))
        n_treated = int(x.sum())
        n_timed = int(np.sum(timed & (x == 1)))
        holds, text = _conclusion(spec, fit.naive, fit.time_dependent, n_treated, n_timed)
        audits.append(ExposureAudit(comparison=name, figure=spec.figure, endpoint=spec.endpoint,
                                    treatment=spec.treatment, p_id=p_id, n=int(t.size),
                                    n_treated=n_treated, n_timed=n_timed, naive=fit.naive,
                                    time_dependent=fit.time_dependent, landmarks=fit.landmarks, curves=fit.curves,
                                    holds=holds, conclusion=text))
    return MethodsAudit(tuple(audits), pd.DataFrame(skipped, columns=["comparison", "reason"]))


@dataclass(frozen=True)
class NullStudy:
    """Result of :func:`immortal_time_null`.

    Attributes
    ----------
    replicates : pandas.DataFrame
        One row per simulated cohort: ``replicate``, ``n_treated``, ``naive_p`` (log-rank,
        treatment fixed at time zero) and ``td_p`` (treatment as a time-dependent
        covariate: its score test, the time-dependent log-rank), ``naive_hr``, ``td_hr``.
    share, horizon : float
        The planned-treatment share and window (months from time zero) simulated.
    alpha : float
        Significance level of :attr:`summary`.
    """

    replicates: pd.DataFrame
    share: float
    horizon: float
    alpha: float = 0.05

    @property
    def summary(self) -> pd.DataFrame:
        """Per analysis: ``rejections`` (share of cohorts with p < alpha, the type I error), its
        95% Wilson interval, ``n`` (cohorts with a p-value) and the median hazard ratio."""
        from scipy.stats import norm

        rows = []
        z = norm.ppf(0.975)
        for name, p, hr in (("naive (treated from time zero)", "naive_p", "naive_hr"),
                            ("time-dependent (treated from the start)", "td_p", "td_hr")):
            ok = self.replicates[p].notna()
            n = int(ok.sum())
            k = int((self.replicates.loc[ok, p] < self.alpha).sum())
            phat = k / n if n else np.nan
            half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n) if n else np.nan
            centre = (phat + z * z / (2 * n)) / (1 + z * z / n) if n else np.nan
            rows.append({"analysis": name, "rejections": phat, "lower": centre - half, "upper": centre + half,
                         "n": n, "median_hr": float(self.replicates[hr].median())})
        return pd.DataFrame(rows)


def null_task(rng: np.random.Generator, index: int, *, share: float, horizon: float, n: int,
              params=None) -> pd.DataFrame:
    """One replicate of :func:`immortal_time_null`: a cohort in which the treatment does nothing, analysed
    both ways.

    Parameters
    ----------
    rng : numpy.random.Generator
        The replicate's generator (the only source of randomness).
    index : int
        Not used (``rng`` is already the replicate's).
    share, horizon, n, params
        As for :func:`immortal_time_null` (``params`` with ``d_non_rt`` already 0).

    Returns
    -------
    pandas.DataFrame
        ``id`` (``n_treated``, ``naive_p``, ``td_p``, ``naive_hr``, ``td_hr``) and ``value``.
    """
    from failpattern.simulate import DEFAULT_PARAMS
    from failpattern.simulate.generate import draw_batch

    batch = draw_batch(DEFAULT_PARAMS if params is None else params, rng, 1, n)
    t, e = batch.os_d[0] / DAYS_PER_MONTH, batch.os_event[0].astype(int)
    planned = np.where(rng.random(n) < share, rng.random(n) * horizon, np.inf)
    treated = (planned < t).astype(int)
    fit = analyse_exposure(t, e, treated, np.where(treated == 1, planned, np.nan))
    return pd.DataFrame({"id": ["n_treated", "naive_p", "td_p", "naive_hr", "td_hr"],
                         "value": [float(treated.sum()), fit.naive["p"], fit.time_dependent["p"], fit.naive["hr"],
                                   fit.time_dependent["hr"]]})


def immortal_time_null(seed: int, *, replicates: int = 500, share: float = 0.6, horizon: float = 36.0,
                       params=None, n: int | None = None, alpha: float = 0.05, workers: int = 1,
                       out_dir=None, progress: bool = False) -> NullStudy:
    """How often the naive and the time-dependent analyses find an effect of a treatment that has none.

    Overall survival comes from the random-mode simulator with radiotherapy given no effect on
    death (``d_non_rt = 0``). A treatment is then planned for each patient independently of
    everything, with probability ``share``, at a time uniform over ``horizon`` months from
    diagnosis; as in a clinical record, a patient counts as treated only if the planned start
    comes before the end of follow-up. Longer-lived patients are therefore more often "treated"
    although the treatment does nothing: the immortal-time mechanism of Fig. 1d. Each cohort is
    analysed as :func:`analyse_exposure` does. The replicates run on the replicate engine
    (:func:`failpattern.replicate.run_replicates`, task :func:`null_task`): replicate ``i`` is
    seeded by ``(seed, i)`` only, so the result is the same whatever ``workers``.

    Parameters
    ----------
    seed : int
        Root seed (same seed, same study).
    replicates : int
        Simulated cohorts.
    share : float
        Probability that a treatment is planned, in (0, 1].
    horizon : float
        Planned starts are uniform over (0, horizon] months from diagnosis.
    params : Params, optional
        Simulator parameters (:data:`~failpattern.simulate.DEFAULT_PARAMS`); ``d_non_rt`` is set to 0.
    n : int, optional
        Patients per cohort (93).
    alpha : float
        Significance level of the summary.
    workers : int
        Local worker processes (1: in this process).
    out_dir : path, optional
        Where the engine streams the replicates (resumable); a temporary folder by default.
    progress : bool
        Progress bar on stderr.

    Returns
    -------
    NullStudy

    Raises
    ------
    InputError
        A bad ``replicates``, ``share``, ``horizon``, ``n`` or ``seed``.
    """
    import functools
    import tempfile
    from dataclasses import replace

    from failpattern.errors import InputError
    from failpattern.replicate import run_replicates
    from failpattern.simulate import DEFAULT_PARAMS, _check_n

    replicates = _check_n(replicates, "replicates")
    n = 93 if n is None else _check_n(n)
    if not (isinstance(share, (int, float)) and 0 < share <= 1):
        raise InputError(f"share: must be in (0, 1]; got {share!r}")
    if not (isinstance(horizon, (int, float)) and np.isfinite(horizon) and horizon > 0):
        raise InputError(f"horizon: must be a positive number of months; got {horizon!r}")
    null = replace(DEFAULT_PARAMS if params is None else params, d_non_rt=0.0)
    task = functools.partial(null_task, share=float(share), horizon=float(horizon), n=n, params=null)
    import hashlib

    digest = hashlib.sha256(repr(null).encode()).hexdigest()[:16]   # repr: stable across processes
    version = f"share={share};horizon={horizon};n={n};params={digest}"
    with tempfile.TemporaryDirectory(prefix="failpattern-null-") as tmp:
        rows = run_replicates(task, replicates, seed=seed, out_dir=tmp if out_dir is None else out_dir,
                              workers=workers, progress=progress, task_version=version)
    wide = rows.pivot(index="replicate", columns="id", values="value").reset_index()
    wide["n_treated"] = wide["n_treated"].astype(int)
    wide = wide[["replicate", "n_treated", "naive_p", "td_p", "naive_hr", "td_hr"]]
    wide.columns.name = None
    return NullStudy(wide, float(share), float(horizon), alpha)
