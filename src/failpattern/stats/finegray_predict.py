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

Time-varying effects (``fine_gray(..., time_varying={column: g})``, crr's ``cov2`` /
``tf``), as ``predict.crr(fit, cov1, cov2)``: the linear predictor of a profile changes
from one failure time to the next::

    lp_k(z) = z1'b1 + sum_j z2_j b2_j g_j(t_k),
    CIF(t | z) = 1 - exp(-sum_{t_k <= t} exp(lp_k(z)) bfitj_k),

``z1`` the profile's values of the constant-effect covariates, ``z2`` its values of the
time-varying columns (a column in both takes one value in ``newdata``), and ``bfitj`` the
baseline jumps of the time-varying fit (``S0`` summing ``exp(x_i'b(t_k))``). The values
``g_j(t_k)`` are those the fit used, kept on the result (``FineGrayResult.time_factors``,
crr's ``tfs``), so the functions are not passed again. Tested against
``tests/reference/finegray_tv_predict.R`` to 1e-9.

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
        ``(P,)`` ``z'b`` of each profile; for a fit with time-varying effects ``(T, P)``,
        ``z'b(t)`` of each profile at each failure time.
    cumulative_hazard : ndarray
        ``(T, P)`` ``exp(z'b) * cumsum(bfitj)`` (``cumsum(exp(z'b(t)) * bfitj)`` with
        time-varying effects).
    cif : ndarray
        ``(T, P)`` predicted cumulative incidence ``1 - exp(-cumulative_hazard)``.
    cause_of_interest : int
    n : int
        Rows of the data the model was fitted on.
    time_varying : tuple of str
        The fit's time-varying coefficients (``"<column>*tf<j>"``); empty without.
    time_factors : ndarray or None
        ``(T, k)`` the time functions at ``time`` (crr's ``tfs``), one column per name of
        ``time_varying``; ``None`` without time-varying effects.
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
    time_varying: tuple = ()
    time_factors: np.ndarray | None = None

    @property
    def summary(self) -> pd.DataFrame:
        """One row per profile: profile, its covariates, linear_predictor,
        relative_risk (``exp(z'b)``), last_time and the CIF there.

        With time-varying effects the linear predictor depends on time: the columns
        linear_predictor and relative_risk are then last_linear_predictor and
        last_relative_risk, at last_time.
        """
        out = pd.DataFrame({"profile": list(self.profile_labels)})
        for j, name in enumerate(self.covariates):
            out[name] = self.profiles[:, j]
        if self.time_varying:
            out["last_linear_predictor"] = self.linear_predictor[-1]
            out["last_relative_risk"] = np.exp(self.linear_predictor[-1])
        else:
            out["linear_predictor"] = self.linear_predictor
            out["relative_risk"] = np.exp(self.linear_predictor)
        out["last_time"] = self.time[-1]
        out["last_cif"] = self.cif[-1]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Long table, profile by profile: profile, time, baseline_jump, cumulative_hazard, cif
        (and, with time-varying effects, linear_predictor at each time, after baseline_jump)."""
        P = len(self.profile_labels)
        T = self.time.size
        cols = {"profile": np.repeat(np.array(self.profile_labels, dtype=object), T),
                "time": np.tile(self.time, P), "baseline_jump": np.tile(self.baseline_jump, P)}
        if self.time_varying:
            cols["linear_predictor"] = self.linear_predictor.T.reshape(-1)
        cols["cumulative_hazard"] = self.cumulative_hazard.T.reshape(-1)
        cols["cif"] = self.cif.T.reshape(-1)
        return pd.DataFrame(cols)

    def __repr__(self) -> str:
        return (f"FineGrayCIFResult(profiles={len(self.profile_labels)}, times={self.time.size}, "
                f"cause_of_interest={self.cause_of_interest}, covariates={list(self.covariates)})")


def _check_counts(fit, time: np.ndarray, codes: np.ndarray) -> int:
    """The fit's cause of interest, after checking that the data have the fit's counts."""
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
    return coi


def fine_gray_cif(data: pd.DataFrame, fit: FineGrayResult, newdata, *, duration: str,
                  cause: str, cengroup: str | None = None) -> FineGrayCIFResult:
    """Predicted cumulative incidence of the cause of interest, as ``cmprsk::predict.crr``.

    Parameters
    ----------
    data : DataFrame
        The data the model was fitted on (the fit's covariate and time-varying columns,
        ``duration`` and ``cause``). It is checked against ``fit``: same numbers of rows,
        events, competing events and censorings, and the same log
        pseudo-likelihood at the fitted coefficients.
    fit : FineGrayResult
        From :func:`~failpattern.stats.fine_gray` on ``data``, with or without
        ``time_varying``. A time-varying fit keeps the values of its time functions at
        the failure times (``fit.time_factors``); they are used as they are, and the
        data check (the log pseudo-likelihood) is made with them. The column of each
        time-varying coefficient ``"<column>*tf<j>"`` is read from its name.
    newdata : DataFrame or mapping
        Covariate profiles, one row each (extra columns ignored), or a mapping of
        column to a value (one profile) or to a list of values; every covariate
        of the fit, numeric and finite (crr's ``cov1`` rows). For a fit with
        ``time_varying``, also every time-varying column (crr's ``cov2`` rows; a column
        that is both in ``covariates`` and ``time_varying`` is given once).
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
        ``fit`` not a FineGrayResult, or a time-varying fit without its time function
        values or with coefficient names not of the form ``"<column>*tf<j>"``; unknown
        columns; data that does not match the fit (including a different number of
        failure times than the fit's time function values); a profile missing a
        covariate or time-varying column, or holding a missing, non-numeric or
        infinite value.

    Examples
    --------
    >>> fit = fine_gray(mgus, duration="time", cause="cause", covariates=["age", "male"])  # doctest: +SKIP
    >>> pred = fine_gray_cif(mgus, fit, {"age": [60, 80], "male": [0, 1]},
    ...                      duration="time", cause="cause")  # doctest: +SKIP
    >>> pred.to_frame().head()  # doctest: +SKIP
    >>> tv = fine_gray(mgus, duration="time", cause="cause", covariates=["age"],
    ...                time_varying={"male": np.log}, cause_of_interest=2)  # doctest: +SKIP
    >>> fine_gray_cif(mgus, tv, {"age": [60, 80], "male": [0, 1]},
    ...               duration="time", cause="cause").cif[-1]  # doctest: +SKIP
    """
    if not isinstance(fit, FineGrayResult):
        raise InputError(f"fit: expected a FineGrayResult from failpattern.stats.fine_gray, got "
                         f"{type(fit).__name__}")
    if fit.time_varying:
        return _cif_time_varying(data, fit, newdata, duration, cause, cengroup)
    names = list(fit.names)
    time = as_durations(frame_column(data, duration, "duration"), f"duration ({duration!r})")
    codes = as_causes(frame_column(data, cause, "cause"), f"cause ({cause!r})")
    for c in names:
        frame_column(data, c, "covariates")
    X = covariate_matrix(data, names)
    _, profiles, labels = profile_matrix(newdata, names)
    coi = _check_counts(fit, time, codes)
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



def _time_varying_columns(fit: FineGrayResult) -> list[str]:
    """The data column of each time-varying coefficient ``"<column>*tf<j>"`` of ``fit``."""
    columns = []
    for j, name in enumerate(fit.time_varying):
        suffix = f"*tf{j + 1}"
        if not (isinstance(name, str) and name.endswith(suffix) and len(name) > len(suffix)):
            raise InputError(
                f"fit: time-varying coefficient {name!r} is not named '<column>{suffix}' as "
                "fine_gray names them, so its column in data and newdata is unknown; fit with "
                "fine_gray(..., time_varying={column: g}) (or names '<column>*tf<j>')")
        columns.append(name[:-len(suffix)])
    return columns


def _cif_time_varying(data, fit: FineGrayResult, newdata, duration: str, cause: str,
                      cengroup: str | None) -> FineGrayCIFResult:
    """:func:`fine_gray_cif` for a fit with time-varying effects (``predict.crr`` with
    ``cov2``): a linear predictor per failure time, ``z1'b1 + sum_j z2_j b2_j tfs[k, j]``."""
    k = len(fit.time_varying)
    tfs = fit.time_factors
    if tfs is None or np.ndim(tfs) != 2 or np.shape(tfs)[1] != k:
        raise InputError(
            f"fit: has time-varying effects ({', '.join(fit.time_varying)}) but does not keep "
            "the values of its time functions at the failure times (time_factors, an "
            f"(f, {k}) array); refit with failpattern.stats.fine_gray(..., time_varying=...)")
    tfs = np.asarray(tfs, dtype=float)
    fixed = list(fit.names[:len(fit.names) - k])
    varying = _time_varying_columns(fit)
    time = as_durations(frame_column(data, duration, "duration"), f"duration ({duration!r})")
    codes = as_causes(frame_column(data, cause, "cause"), f"cause ({cause!r})")
    for c in fixed:
        frame_column(data, c, "covariates")
    for c in varying:
        frame_column(data, c, "time_varying")
    X1 = covariate_matrix(data, fixed) if fixed else np.empty((time.size, 0))
    X2 = covariate_matrix(data, varying)
    columns = list(dict.fromkeys(fixed + varying))
    _, profiles, labels = profile_matrix(newdata, columns)
    coi = _check_counts(fit, time, codes)
    uftime = np.unique(time[codes == coi])
    if tfs.shape[0] != uftime.size:
        raise InputError(
            f"data: does not match the fit: it has {uftime.size} distinct failure times of "
            f"cause {coi}, the fit's time functions were evaluated at {tfs.shape[0]}; pass the "
            "data the model was fitted on")
    groups = None
    if cengroup is not None:
        groups = as_groups(frame_column(data, cengroup, "cengroup"), f"cengroup ({cengroup!r})",
                           min_groups=1)[0]
    beta = np.asarray(fit.coef, dtype=float)
    prep = _k.prepare_time_varying(time, codes, X1, X2, tfs, coi, cengroup=groups)
    ev = _k.evaluate(prep, beta, information=False)
    if not abs(ev.loglik - fit.loglik) <= _LOGLIK_RTOL * max(1.0, abs(fit.loglik)):
        raise InputError(
            f"data: does not match the fit: its log pseudo-likelihood at the fitted "
            f"coefficients (with the fit's time function values) is {ev.loglik:.10g}, the "
            f"fit's is {fit.loglik:.10g}; pass the same data and the same duration, cause "
            "(and cengroup) columns the model was fitted with")
    # the kernel's risk scores at failure time k are exp((x - mean)'b(t_k) - shift_k):
    # undo both for crr's bfitj (the shifts are those of the evaluation, recomputed)
    shifts = np.concatenate([shift for *_, shift in _k._tv_blocks(prep, beta)])
    sorted_x = np.concatenate([X1, X2], axis=1)[np.argsort(time, kind="stable")]
    mean = np.add.reduce(sorted_x, axis=0) / time.size
    bfitj = ev.lam * np.exp(-(shifts + (prep.tv.tf * beta) @ mean))
    p1 = len(fixed)
    z1 = profiles[:, [columns.index(c) for c in fixed]]
    z2 = profiles[:, [columns.index(c) for c in varying]]
    lp = (z1 @ beta[:p1])[None, :] + tfs @ (z2 * beta[p1:]).T          # (T, P)
    cumhaz = np.cumsum(np.exp(lp) * bfitj[:, None], axis=0)
    return FineGrayCIFResult(
        covariates=tuple(columns), profiles=frozen(profiles), profile_labels=labels,
        time=frozen(uftime), baseline_jump=frozen(bfitj), linear_predictor=frozen(lp),
        cumulative_hazard=frozen(cumhaz), cif=frozen(-np.expm1(-cumhaz)),
        cause_of_interest=coi, n=int(time.size), time_varying=tuple(fit.time_varying),
        time_factors=frozen(tfs))
