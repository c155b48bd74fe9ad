"""Event times of a reconstructed cohort from latent uniforms: the calibrated model, conditioned on the outcome.

Why this module exists: a reconstructed cohort fixes *who* progresses, dies or
is censored (the count skeleton); its times must still look like a draw from
the calibrated model (``docs/simulator.md``), and obey the clinical rules by
construction rather than by repair. Each patient's times are a deterministic
function of a few latent uniforms, through the model's own distributions
truncated to what the patient's outcome and the calendar allow:

* crizotinib start: the accrual distribution, truncated so that the patient's
  events fit before the data cut-off;
* PFS1 of a patient who progresses: the PFS1 model (Weibull proportional
  hazards, piecewise for brain metastases without brain RT; :func:`pfs1_cdf`)
  truncated to [first scan, cut-off): a response (CR/PR/SD) is read on a scan,
  so no progression comes before the first one (``protocol.scan_interval.min``
  weeks); best response PD: uniform over the scan window the model calibrates
  (``Params.pd_scan``); a patient without progression is censored at the cut-off;
* PFS2 of a patient who progresses again: the PFS2 model truncated to
  [re-staging, cut-off): a second progression needs a scan after the change of
  treatment (:data:`RESTAGE_DAYS`);
* death: after the second progression, the model's death hazard truncated to
  the follow-up left.

A search that moves the latent uniforms therefore never leaves the model's
support or breaks a rule, and the uniforms themselves say how typical the
cohort is: a real draw has uniform latents, a contrived one does not.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from failpattern.cohort.clinical import SECOND_PROGRESSION_MIN_DAYS
from failpattern.simulate.generate import (
    DPM,
    accrual_inv,
    calendar_for,
    lag_days,
    pfs1_inv,
    pfs1_lp,
    weibull_inv,
)
from failpattern.simulate.model import Params

__all__ = ["LATENTS", "RESTAGE_DAYS", "latent_for_days", "pfs1_cdf", "pfs1_quantile", "times_from_latents"]

#: The latent uniforms of one patient, in order.
LATENTS = ("start", "lag", "lag2", "pfs1", "pfs2", "death")
#: Fewest days from first to second progression: the re-staging scan after the change of treatment
#: (the clinical rule's threshold, :data:`failpattern.cohort.clinical.SECOND_PROGRESSION_MIN_DAYS`).
RESTAGE_DAYS = SECOND_PROGRESSION_MIN_DAYS
_TINY = 1e-12
#: Points of the latent grid on which :func:`latent_for_days` inverts a time. Event times are
#: whole days and PFS windows span at most about 1600 days (the study's 53 months of
#: enrolment and follow-up), so 2048 points resolve the map to a day or two.
LATENT_GRID = 2048


def _untreated(s) -> np.ndarray:
    return (np.asarray(s["brain"]) == 1) & (np.asarray(s["brain_rt"]) == 0)


def pfs1_cdf(p: Params, t_months, s: Mapping) -> np.ndarray:
    """P(PFS1 <= t) under the model, for covariate arrays ``s`` (inverse of :func:`pfs1_quantile`).

    Parameters
    ----------
    p : Params
        Model parameters.
    t_months : array_like
        Times (months), broadcastable with the covariates.
    s : Mapping
        ``brain``, ``brain_rt``, ``burden``, ``non_adeno``, ``organs``, ``response`` arrays.

    Returns
    -------
    numpy.ndarray
    """
    x = (np.maximum(np.asarray(t_months, float), 0.0) / p.pfs1_scale) ** p.pfs1_shape
    a = (p.pfs1_change / p.pfs1_scale) ** p.pfs1_shape
    late = _untreated(s) & (x > a)
    x = np.where(late, a + (x - a) * np.exp(p.b_bbm_untreated_late - p.b_bbm_untreated), x)
    return -np.expm1(-x * np.exp(pfs1_lp(p, s)))


def pfs1_quantile(p: Params, u, s: Mapping) -> np.ndarray:
    """PFS1 months at probability ``u`` under the model (the inverse CDF).

    Parameters
    ----------
    p : Params
        Model parameters.
    u : array_like
        Probabilities in [0, 1).
    s : Mapping
        As :func:`pfs1_cdf`.

    Returns
    -------
    numpy.ndarray
    """
    return pfs1_inv(p, np.minimum(u, 1.0 - _TINY), s)


def _weibull_cdf(t, scale, shape, lp):
    return -np.expm1(-((np.maximum(t, 0.0) / scale) ** shape) * np.exp(lp))


def _between(u, lo, hi):
    """``lo + u * (hi - lo)``: a uniform mapped into [lo, hi] (probability scale)."""
    return lo + u * np.maximum(hi - lo, 0.0)


def _accrual_cdf(day, span: int, growth: float):
    s = np.clip(np.asarray(day, float) / (span + 1), 0.0, 1.0)
    return s if abs(growth) < 1e-9 else np.expm1(growth * s) / np.expm1(growth)


def times_from_latents(p: Params, design, s: Mapping, u: Mapping) -> dict:
    """Days of every event of a cohort whose outcomes are fixed, from latent uniforms.

    Parameters
    ----------
    p : Params
        Calibrated model parameters.
    design : Design
        Enrolment window, cut-off and scan interval (:func:`~failpattern.study.design_for`).
    s : Mapping
        The skeleton, arrays of one shape: PFS1 covariates (``brain``, ``brain_rt``,
        ``burden``, ``non_adeno``, ``organs``, ``response`` 0 CR .. 3 PD), ``rt``,
        ``prior_lines``, ``salvage``, ``cbpd`` (0/1) and the outcomes ``pfs1_event``,
        ``pfs2_event``, ``os_event`` (a death, after a second progression).
    u : Mapping
        One array per name of :data:`LATENTS`, uniforms in (0, 1), of the same shape.

    Returns
    -------
    dict
        ``start_d`` (days from the first day of enrolment), ``lag_d`` (diagnosis to
        start), ``pfs1_d``, ``pfs2_d`` (0 without a first progression), ``os_d``
        (from diagnosis), ``death_d`` (from start; -1 alive).
    """
    cal = calendar_for(design)
    span, cutoff = cal.last_start, cal.cutoff
    first_scan = int(round(7 * design.scan_weeks[0]))
    ev1, ev2, died = (np.asarray(s[k]) == 1 for k in ("pfs1_event", "pfs2_event", "os_event"))
    pd = np.asarray(s["response"]) == 3
    lo_pd, hi_pd = (int(round(m * DPM)) for m in p.pd_scan)
    # room each patient's events need before the cut-off (days)
    need1 = np.where(pd, hi_pd, first_scan) + 1
    need = np.where(ev1, need1, 1) + np.where(ev2, RESTAGE_DAYS + 1, 0) + np.where(died, 1, 0)
    last_start = np.minimum(span, cutoff - need)
    start = accrual_inv(u["start"] * _accrual_cdf(last_start + 1, span, p.accrual_growth) * (1 - _TINY),
                        p.accrual_growth, span)
    follow = cutoff - start
    # PFS1: the model between the first scan and the room left for what follows
    room1 = follow - np.where(ev2, RESTAGE_DAYS + 1, 0) - np.where(died, 1, 0)
    f_lo = pfs1_cdf(p, first_scan / DPM, s)
    f_hi = pfs1_cdf(p, (room1 - 0.5) / DPM, s)
    t1 = np.round(pfs1_quantile(p, _between(u["pfs1"], f_lo, f_hi), s) * DPM).astype(np.int64)
    t1 = np.clip(t1, first_scan, np.maximum(room1 - 1, first_scan))
    t_pd = np.round(_between(u["pfs1"], lo_pd, hi_pd)).astype(np.int64)
    t1 = np.where(pd, t_pd, t1)
    pfs1 = np.where(ev1, t1, follow)
    # PFS2: the model between re-staging and the room left
    lp2 = p.c_salvage * (np.asarray(s["salvage"]) > 0) + p.c_cbpd * (np.asarray(s["cbpd"]) == 1)
    follow2 = np.where(ev1, follow - pfs1, 0)
    room2 = follow2 - np.where(died, 1, 0)
    g_lo = _weibull_cdf(RESTAGE_DAYS / DPM, p.pfs2_scale, p.pfs2_shape, lp2)
    g_hi = _weibull_cdf((room2 - 0.5) / DPM, p.pfs2_scale, p.pfs2_shape, lp2)
    t2 = np.round(weibull_inv(np.minimum(_between(u["pfs2"], g_lo, g_hi), 1.0 - _TINY), p.pfs2_scale, p.pfs2_shape, lp2)
                  * DPM).astype(np.int64)
    t2 = np.clip(t2, RESTAGE_DAYS, np.maximum(room2 - 1, RESTAGE_DAYS))
    pfs2 = np.where(ev1, np.where(ev2, t2, follow2), 0)
    # death: exponential after the second progression, within the follow-up left
    rate = p.death_rate * np.exp(p.d_non_rt * (np.asarray(s["rt"]) == 0))
    left = np.maximum(follow - pfs1 - pfs2, 1)
    h_hi = -np.expm1(-rate * (left - 0.5) / DPM)
    w = np.round(-np.log1p(-u["death"] * h_hi) / rate * DPM).astype(np.int64)
    w = np.clip(w, 0, left - 1)
    death = np.where(died, pfs1 + pfs2 + w, -1)
    lag = lag_days(p, np.asarray(s["prior_lines"]), u["lag"], u["lag2"])  # diagnosis to start
    os_d = lag + np.where(died, death, follow)
    return {"start_d": start, "lag_d": lag, "pfs1_d": pfs1, "pfs2_d": pfs2, "os_d": os_d, "death_d": death}


def latent_for_days(p: Params, design, s: Mapping, u: Mapping, name: str, i: int, days: float) -> float:
    """The latent of patient ``i`` that puts its ``name`` event at (about) ``days``, the others' latents kept.

    A patient's PFS1 (PFS2) is non-decreasing in its ``pfs1`` (``pfs2``) latent, so the
    inverse is read off a grid of :data:`LATENT_GRID` latents; a time outside what the
    patient's other latents and the cut-off allow gives the nearest end of its window.

    Parameters
    ----------
    p : Params
        Calibrated model parameters.
    design : Design
        As :func:`times_from_latents`.
    s, u : Mapping
        One cohort's skeleton and latents, as :func:`times_from_latents` (arrays ``(n,)``).
    name : {"pfs1", "pfs2"}
        The latent (and event) to place.
    i : int
        The patient.
    days : float
        Target time from the event's origin (crizotinib start for PFS1, first progression for PFS2).

    Returns
    -------
    float
        A latent in (0, 1).
    """
    g = (np.arange(LATENT_GRID) + 0.5) / LATENT_GRID
    si = {k: np.full(g.shape, np.asarray(v)[i]) for k, v in s.items()}
    ui = {k: np.full(g.shape, np.asarray(v)[i], dtype=float) for k, v in u.items()}
    ui[name] = g
    t = times_from_latents(p, design, si, ui)[f"{name}_d"]
    k = np.searchsorted(t, days, side="left")
    return float(g[min(k, g.size - 1)])
