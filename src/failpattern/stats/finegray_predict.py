"""Predicted cumulative incidence from a Fine-Gray model, matched to cmprsk ``predict.crr``.

Why this module exists
----------------------
A subdistribution hazard ratio is hard to read on its own; what a reader of a
competing-risks analysis wants is the cumulative incidence of the event of
interest the model predicts for given patients. Python has no Fine-Gray
predictor, so this one reproduces ``cmprsk::predict.crr(fit, cov1)`` (cmprsk
2.2-11) to rounding error (``tests/reference/finegray_predict.R``; held to
1e-9 by the tests).

crr's definitions, reproduced
-----------------------------
At each distinct failure time ``t_k`` of the cause of interest (crr's
``uftime``) the baseline subdistribution hazard jumps by crr's ``bfitj``::

    bfitj_k = d_k / S0_k,   S0_k = sum_{T_i >= t_k} exp(x_i'b)
                                   + sum_{competing j, T_j < t_k} exp(x_j'b) G(t_k-) / G(T_j-)

(Breslow's estimator on the censoring-weighted risk set of the fit, ``x`` the
covariates as given, so the baseline is at ``x = 0``, not at the means), and
the predicted cumulative incidence of a profile ``z`` is::

    CIF(t | z) = 1 - exp(-exp(z'b) sum_{t_k <= t} bfitj_k)

a step function: constant between failure times, 0 before the first.
``predict.crr`` gives no standard errors and neither does this module.

A :class:`~failpattern.stats.finegray.FineGrayResult` does not keep the data,
so :func:`fine_gray_cif` takes the same data frame and columns again and checks
it is the data the model was fitted on (the same counts of rows, events,
competing events and censorings, and the log pseudo-likelihood at the fitted
coefficients equal to the fit's to 1e-8 relative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from failpattern.errors import InputError
from failpattern.stats import _finegray_kernel as _k
from failpattern.stats._result import frozen
from failpattern.stats._validate import (
    as_causes,
    as_groups,
    as_durations,
    covariate_matrix,
    frame_column,
)
from failpattern.stats.cox_predict import profile_matrix
from failpattern.stats.finegray import FineGrayResult

__all__ = ["FineGrayCIFResult", "fine_gray_cif"]

_LOGLIK_RTOL = 1e-8


@dataclass(frozen=True)
class FineGrayCIFResult:
    """Predicted cumulative incidence curves of a Fine-Gray model (``predict.crr``).

    Attributes
    ----------
    covariates : tuple of str
        Covariate names, as in the fit.
    profiles : ndarray
        ``(P, p)`` covariate values of the profiles (read-only).
    profile_labels : tuple
        Label of each profile (the ``newdata`` index).
    time : ndarray
        ``(T,)`` distinct failure times of the cause of interest (crr's ``uftime``).
    baseline_jump : ndarray
        ``(T,)`` baseline subdistribution hazard jumps at covariates 0 (crr's ``bfitj``).
    linear_predictor : ndarray
        ``(P,)`` ``z'b`` of each profile.
    cumulative_hazard : ndarray
        ``(T, P)`` ``exp(z'b) * cumsum(bfitj)``.
    cif : ndarray
        ``(T, P)`` predicted cumulative incidence ``1 - exp(-cumulative_hazard)``.
    cause_of_interest : int
    n : int
        Rows of the data the model was fitted on.
    """

    covariates: tuple[str, ...]
    profiles: np.ndarray
    profile_labels: tuple
    time: np.ndarray
    baseline_jump: np.ndarray
    linear_predictor: np.ndarray
    cumulative_hazard: np.ndarray
    cif: np.ndarray
    cause_of_interest: int
    n: int

    @property
    def summary(self) -> pd.DataFrame:
        """One row per profile: profile, its covariates, linear_predictor,
        relative_risk (``exp(z'b)``), last_time and the CIF there."""
        out = pd.DataFrame({"profile": list(self.profile_labels)})
        for j, name in enumerate(self.covariates):
            out[name] = self.profiles[:, j]
        out["linear_predictor"] = self.linear_predictor
        out["relative_risk"] = np.exp(self.linear_predictor)
        out["last_time"] = self.time[-1]
        out["last_cif"] = self.cif[-1]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Long table, profile by profile: profile, time, baseline_jump, cumulative_hazard, cif."""
        P = len(self.profile_labels)
        T = self.time.size
        return pd.DataFrame({
            "profile": np.repeat(np.array(self.profile_labels, dtype=object), T),
            "time": np.tile(self.time, P), "baseline_jump": np.tile(self.baseline_jump, P),
            "cumulative_hazard": self.cumulative_hazard.T.reshape(-1),
            "cif": self.cif.T.reshape(-1)})

    def __repr__(self) -> str:
        return (f"FineGrayCIFResult(profiles={len(self.profile_labels)}, times={self.time.size}, "
                f"cause_of_interest={self.cause_of_interest}, covariates={list(self.covariates)})")


def fine_gray_cif(data: pd.DataFrame, fit: FineGrayResult, newdata, *, duration: str,
                  cause: str, cengroup: str | None = None) -> FineGrayCIFResult:
    """Predicted cumulative incidence of the cause of interest, as ``cmprsk::predict.crr``.

    Parameters
    ----------
    data : DataFrame
        The data the model was fitted on (the fit's covariate columns, ``duration``
        and ``cause``). It is checked against ``fit``: same numbers of rows,
        events, competing events and censorings, and the same log
        pseudo-likelihood at the fitted coefficients.
    fit : FineGrayResult
        From :func:`~failpattern.stats.fine_gray` on ``data``.
    newdata : DataFrame or mapping
        Covariate profiles, one row each (extra columns ignored), or a mapping of
        column to a value (one profile) or to a list of values; every covariate
        of the fit, numeric and finite (crr's ``cov1`` rows).
    duration, cause : str
        Columns of follow-up times and cause codes, as in the fit.
    cengroup : str, optional
        The censoring-group column, required exactly when the model was fitted with
        ``cengroup`` (the baseline jumps then use the per-group censoring weights).

    Returns
    -------
    FineGrayCIFResult

    Raises
    ------
    InputError
        ``fit`` not a FineGrayResult, or fitted with ``time_varying`` (not
        implemented: ``predict.crr``'s ``cov2``); unknown columns; data that does not match
        the fit; a profile missing a covariate or holding a missing, non-numeric
        or infinite value.

    Examples
    --------
    >>> fit = fine_gray(mgus, duration="time", cause="cause", covariates=["age", "male"])  # doctest: +SKIP
    >>> pred = fine_gray_cif(mgus, fit, {"age": [60, 80], "male": [0, 1]},
    ...                      duration="time", cause="cause")  # doctest: +SKIP
    >>> pred.to_frame().head()  # doctest: +SKIP
    """
    if not isinstance(fit, FineGrayResult):
        raise InputError(f"fit: expected a FineGrayResult from failpattern.stats.fine_gray, got "
                         f"{type(fit).__name__}")
    if fit.time_varying:
        raise InputError(
            f"fit: has time-varying effects ({', '.join(fit.time_varying)}; fine_gray's "
            "time_varying, crr's cov2 / tf): predicted cumulative incidence is implemented for "
            "models with constant effects only; refit without time_varying to predict")
    names = list(fit.names)
    time = as_durations(frame_column(data, duration, "duration"), f"duration ({duration!r})")
    codes = as_causes(frame_column(data, cause, "cause"), f"cause ({cause!r})")
    for c in names:
        frame_column(data, c, "covariates")
    X = covariate_matrix(data, names)
    _, profiles, labels = profile_matrix(newdata, names)
    coi = fit.cause_of_interest
    counts = (time.size, int((codes == coi).sum()), int(((codes != coi) & (codes != 0)).sum()),
              int((codes == 0).sum()))
    fitted = (fit.n, fit.n_events, fit.n_competing, fit.n_censored)
    if counts != fitted:
        raise InputError(
            f"data: does not match the fit: it has {counts[0]} rows, {counts[1]} failures of "
            f"cause {coi}, {counts[2]} competing and {counts[3]} censored, the fit "
            f"{fitted[0]}, {fitted[1]}, {fitted[2]} and {fitted[3]}; pass the data the model "
            "was fitted on (after the same dropna)")
    beta = np.asarray(fit.coef, dtype=float)
    groups = None
    if cengroup is not None:
        groups = as_groups(frame_column(data, cengroup, "cengroup"), f"cengroup ({cengroup!r})",
                           min_groups=1)[0]
    prep = _k.prepare(time, codes, X, coi, cengroup=groups)
    ev = _k.evaluate(prep, beta, information=False)
    if not abs(ev.loglik - fit.loglik) <= _LOGLIK_RTOL * max(1.0, abs(fit.loglik)):
        raise InputError(
            f"data: does not match the fit: its log pseudo-likelihood at the fitted "
            f"coefficients is {ev.loglik:.10g}, the fit's is {fit.loglik:.10g}; pass the same "
            "data and the same duration, cause (and cengroup) columns the model was fitted with")
    # the kernel's risk scores are exp((x - mean)'b - shift): undo both for crr's bfitj
    sorted_x = X[np.argsort(time, kind="stable")]
    mean = np.add.reduce(sorted_x, axis=0) / time.size
    shift = float(np.max((sorted_x - mean) @ beta))
    bfitj = ev.lam * np.exp(-(shift + float(mean @ beta)))
    uftime = np.unique(time[codes == coi])
    lp = profiles @ beta
    cumhaz = np.cumsum(bfitj)[:, None] * np.exp(lp)[None, :]
    return FineGrayCIFResult(
        covariates=tuple(names), profiles=frozen(profiles), profile_labels=labels,
        time=frozen(uftime), baseline_jump=frozen(bfitj), linear_predictor=frozen(lp),
        cumulative_hazard=frozen(cumhaz), cif=frozen(-np.expm1(-cumhaz)),
        cause_of_interest=coi, n=int(time.size))

