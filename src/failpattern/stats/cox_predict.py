"""Predicted survival curves from a fitted Cox model, matched to R ``survfit(coxph_fit, newdata=)``.

Why this module exists
----------------------
A hazard ratio answers "how much worse", not "how many survive": reports and
papers show the survival curve a model predicts for typical patients (e.g.
a 60-year-old woman with ECOG 1) with a confidence band. lifelines can draw
such curves but its baseline hazard and its standard errors are not R's (no
Efron increments, no variance from the coefficients), so this module reproduces
``survival::survfit.coxph`` (survival 3.5-3) to rounding error: every time,
number at risk, cumulative hazard, survival, standard error and pointwise limit
(``tests/reference/cox_predict.R``; the tests hold them to 1e-9).

R's semantics, reproduced
-------------------------
* **Centring.** R computes the baseline at the means of the covariates
  (``fit$means``, the *unweighted* column means of the model matrix over all
  rows, also with case weights or strata): the risk score of a row is
  ``exp(x'b - xbar'b)``. Without ``newdata`` the single curve is the one for a
  patient at those means (R's default curve; for 0/1 covariates that is a
  fractional "patient"), and that is what :func:`cox_survival` returns for
  ``newdata=None``. With ``newdata`` each profile ``z`` gets the curve
  ``H_z(t) = exp(z'b - xbar'b) H_0(t)``; it does not depend on the centring.
* **Hazard increments** (R's ``ctype``): ``"breslow"`` (Nelson-Aalen/Breslow,
  ``ctype = 1``) adds ``d / sum r`` at each time with ``d`` (weighted) events;
  ``"efron"`` (``ctype = 2``) averages over Efron's ``d`` denominators
  ``sum r - (j / d) sum_{events} r``, ``j = 0..d-1``. The default follows the
  fit's ties, as R: Efron's increments for ``ties="efron"``, Breslow's for any
  other. Survival is ``exp(-H)`` (R's default ``stype = 2``; the
  Kalbfleisch-Prentice product ``stype = 1`` is not offered).
* **Standard error** (R's ``std.err``, the SE of ``H`` and of ``log S``):
  ``var H_z(t) = r_z^2 [sum_{s<=t} v_s + d_z(t)' V d_z(t)]`` with ``v_s`` the
  variance increment (``d / (sum r)^2``, or Efron's average of the squared
  inverse denominators), ``d_z(t) = sum_{s<=t} dH_0(s) (z - xbar(s))``, and ``V``
  the fit's covariance (the robust one when the model was fitted with
  ``robust``/``cluster``, as R's ``fit$var``). ``se`` is the SE of ``S``,
  ``S * std.err``, as R's ``summary.survfit``.
* **Limits** (``conf_type``): ``"log"`` (R's default) ``S exp(-/+ z se_H)``,
  upper capped at 1, NaN where ``S = 0``; ``"log-log"`` NaN where ``S`` is 0 or 1;
  ``"plain"`` ``S -/+ z S se_H`` clipped to [0, 1].
* **Times and counts**: every distinct follow-up (stop) time of the stratum,
  with censorings (R's ``censor = TRUE``); ``n_risk`` the (weighted) number at
  risk, ``entry < t <= stop`` for counting-process rows; ``n_event``,
  ``n_censor`` weighted.
* **Strata**: each stratum has its own baseline. If ``newdata`` holds the strata
  columns, each profile gets the curve of its own stratum (R, when
  ``newdata`` has the strata variables); if it holds none of them, each profile
  gets one curve in every stratum (R, when it has none), ordered profile by
  profile, strata within (the column-major order of R's matrix of curves).

R reads the data back from the fit; a :class:`~failpattern.stats.cox.CoxResult`
does not keep it, so :func:`cox_survival` takes the same data frame and the
same column roles again and checks it is the data the model was fitted on:
the same number of rows and events and, for Breslow or Efron ties, the log
partial likelihood at the fitted coefficients equal to the fit's (to 1e-8
relative).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from failpattern.errors import InputError
from failpattern.stats._result import frozen
from failpattern.stats.km import _pointwise
from failpattern.stats.timefix import fix_times
from failpattern.stats._validate import (
    as_durations,
    as_events,
    as_groups,
    as_numbers,
    check_alpha,
    check_choice,
    check_flag,
    covariate_matrix,
    describe_positions,
    frame_column,
    plain_value,
)
from failpattern.stats.cox import CoxResult

__all__ = ["CoxSurvivalResult", "cox_survival"]

CTYPES = ("breslow", "efron")
CONF_TYPES = ("log", "log-log", "plain")
_LOGLIK_RTOL = 1e-8

_COLUMNS = ("time", "n_risk", "n_event", "n_censor", "cumhaz", "survival", "se_cumhaz", "se",
            "lower", "upper")


@dataclass(frozen=True)
class CoxSurvivalResult:
    """Predicted survival curves of a Cox model (R ``survfit(coxph_fit, newdata)``).

    One curve per profile (per profile and stratum for a stratified model whose
    ``newdata`` has no strata columns). The per-time arrays are long: curve ``c``
    is rows ``offsets[c]:offsets[c + 1]``; :meth:`curve` and :meth:`to_frame`
    give them as tables.

    Attributes
    ----------
    covariates : tuple of str
        Covariate names, as in the fit.
    profiles : ndarray
        ``(P, p)`` covariate values of the profiles (read-only); for
        ``newdata=None`` the one row of covariate means.
    profile_labels : tuple
        Label of each profile (the ``newdata`` index; ``"mean"`` without newdata).
    strata : tuple of str
        The fit's strata columns (empty when unstratified).
    curve_profile : ndarray
        ``(C,)`` profile index of each curve.
    curve_stratum : tuple
        ``(C,)`` stratum label of each curve (``"inst=1"``, R's style), ``None``
        when unstratified.
    linear_predictor : ndarray
        ``(C,)`` ``z'b - xbar'b``, the centred linear predictor of each curve's profile.
    offsets : ndarray
        ``(C + 1,)`` start of each curve in the per-time arrays.
    time, n_risk, n_event, n_censor : ndarray
        Distinct times of the curve's stratum, (weighted) number at risk just
        before, events and censorings at each.
    cumhaz, survival : ndarray
        Predicted cumulative hazard ``H`` and survival ``exp(-H)``.
    se_cumhaz : ndarray
        Standard error of ``H`` (= of ``log S``; R's ``std.err``), including the
        variance from the coefficients.
    se : ndarray
        Standard error of ``S``, ``S * se_cumhaz`` (R's ``summary(fit)$std.err``).
    lower, upper : ndarray
        Pointwise ``1 - alpha`` limits of ``S`` (NaN where R gives NA).
    ctype : str
        ``"breslow"`` or ``"efron"`` hazard increments.
    conf_type : str
    alpha : float
    n : int
        Rows of the data the model was fitted on.
    n_events : int
        Events in it.
    """

    covariates: tuple[str, ...]
    profiles: np.ndarray
    profile_labels: tuple
    strata: tuple[str, ...]
    curve_profile: np.ndarray
    curve_stratum: tuple
    linear_predictor: np.ndarray
    offsets: np.ndarray
    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    cumhaz: np.ndarray
    survival: np.ndarray
    se_cumhaz: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    ctype: str
    conf_type: str
    alpha: float
    n: int
    n_events: int

    @property
    def n_curves(self) -> int:
        """Number of curves."""
        return int(self.curve_profile.size)

    def curve(self, index: int) -> pd.DataFrame:
        """One curve as a table (time, n_risk, n_event, n_censor, cumhaz, survival,
        se_cumhaz, se, lower, upper).

        Parameters
        ----------
        index : int
            Curve number, ``0 <= index < n_curves`` (see :attr:`summary`).

        Returns
        -------
        DataFrame

        Raises
        ------
        InputError
            ``index`` out of range.
        """
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
                or not 0 <= index < self.n_curves:
            raise InputError(f"index: must be a curve number 0..{self.n_curves - 1}, "
                             f"got {index!r}")
        a, b = self.offsets[index], self.offsets[index + 1]
        return pd.DataFrame({c: np.array(getattr(self, c)[a:b]) for c in _COLUMNS})

    @property
    def summary(self) -> pd.DataFrame:
        """One row per curve: profile, stratum (when stratified), the profile's covariates,
        linear_predictor, relative_risk, n_times, and the survival and its limits at the
        last time."""
        last = self.offsets[1:] - 1
        out = pd.DataFrame({"profile": [self.profile_labels[i] for i in self.curve_profile]})
        if self.strata:
            out["stratum"] = list(self.curve_stratum)
        for j, name in enumerate(self.covariates):
            out[name] = self.profiles[self.curve_profile, j]
        out["linear_predictor"] = self.linear_predictor
        out["relative_risk"] = np.exp(self.linear_predictor)
        out["n_times"] = np.diff(self.offsets)
        out["last_time"] = self.time[last]
        out["last_survival"] = self.survival[last]
        out["last_lower"] = self.lower[last]
        out["last_upper"] = self.upper[last]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Every curve stacked: ``curve``, ``profile``, ``stratum`` (when stratified), then
        the per-time columns of :meth:`curve`."""
        sizes = np.diff(self.offsets)
        curve = np.repeat(np.arange(self.n_curves), sizes)
        out = pd.DataFrame({"curve": curve,
                            "profile": [self.profile_labels[i]
                                        for i in self.curve_profile[curve]]})
        if self.strata:
            out["stratum"] = [self.curve_stratum[i] for i in curve]
        for c in _COLUMNS:
            out[c] = np.array(getattr(self, c))
        return out

    def __repr__(self) -> str:
        strata = f", strata={list(self.strata)}" if self.strata else ""
        return (f"CoxSurvivalResult(curves={self.n_curves}, profiles={len(self.profile_labels)}"
                f"{strata}, ctype={self.ctype!r}, conf_type={self.conf_type!r}, "
                f"level={1 - self.alpha:g})")


def cox_survival(data: pd.DataFrame, fit: CoxResult, newdata=None, *, duration: str, event: str,
                 entry: str | None = None, weights: str | None = None, ctype: str | None = None,
                 conf_type: str = "log", alpha: float | None = None, timefix: bool = True) -> CoxSurvivalResult:
    """Predicted survival curves of a fitted Cox model, as R ``survfit(fit, newdata)``.

    Parameters
    ----------
    data : DataFrame
        The data the model was fitted on, with the same columns (the fit's
        covariates and strata, ``duration``, ``event`` and, if the fit used them,
        ``entry`` and ``weights``). It is checked against ``fit``: same number of
        rows and events and, for Breslow or Efron ties, the same log partial
        likelihood at the fitted coefficients.
    fit : CoxResult
        From :func:`~failpattern.stats.cox` on ``data``.
    newdata : DataFrame or mapping, optional
        Covariate profiles, one row each (extra columns are ignored); a mapping
        of column to a value (one profile) or to a list of values. It must hold
        every covariate, numeric and finite. For a stratified fit it holds
        either every strata column (each profile then gets the curve of its own
        stratum) or none of them (each profile gets a curve in every stratum).
        ``None``: one curve at the covariate means (R's default curve).
    duration, event : str
        Columns of follow-up (stop) times and event indicators, as in the fit.
    entry : str, optional
        Entry-time column, required exactly when the model was fitted with ``entry``.
    weights : str, optional
        Case-weight column, required exactly when the model was fitted with ``weights``.
    ctype : {"breslow", "efron"}, optional
        Hazard increments (R's ``ctype`` 1 and 2). Default: ``"efron"`` for a fit
        with Efron ties, ``"breslow"`` otherwise, as R.
    conf_type : {"log", "log-log", "plain"}
        Pointwise limits, R's ``conf.type`` (default ``"log"``, R's default).
    alpha : float, optional
        ``1 - alpha`` limits; default the fit's ``alpha``.
    timefix : bool, default True
        Merge times that differ only by rounding, as :func:`~failpattern.stats.cox` does
        (R keeps the fit's own times); pass the value the model was fitted with.

    Returns
    -------
    CoxSurvivalResult

    Raises
    ------
    InputError
        ``fit`` not a CoxResult; unknown or missing columns; ``data`` that does
        not match the fit; a profile missing a covariate or with a missing,
        non-numeric or infinite value; strata columns only partly given or a
        stratum not in the data; bad ``ctype``, ``conf_type`` or ``alpha``.

    Examples
    --------
    >>> fit = cox(lung, duration="time", event="event", covariates=["age", "sex"])  # doctest: +SKIP
    >>> curves = cox_survival(lung, fit, pd.DataFrame({"age": [60, 70], "sex": [1, 2]}),
    ...                       duration="time", event="event")  # doctest: +SKIP
    >>> curves.curve(0)[["time", "survival", "lower", "upper"]]  # doctest: +SKIP
    """
    if not isinstance(fit, CoxResult):
        raise InputError(f"fit: expected a CoxResult from failpattern.stats.cox, got "
                         f"{type(fit).__name__}")
    if ctype is None:
        ctype = "efron" if fit.ties == "efron" else "breslow"
    check_choice(ctype, "ctype", CTYPES)
    check_choice(conf_type, "conf_type", CONF_TYPES)
    alpha = fit.alpha if alpha is None else check_alpha(alpha)
    time, status, X, start, wt, codes, levels = _model_data(data, fit, duration, event, entry,
                                                            weights)
    if check_flag(timefix, "timefix"):
        time, start = fix_times(time, start)
    profiles, labels, wanted = _profiles(newdata, fit, X, levels)
    beta = np.asarray(fit.coef, dtype=float)
    means = X.mean(axis=0)                       # R's fit$means: unweighted column means
    xcenter = float(means @ beta)
    risk = np.exp(X @ beta - xcenter)
    risk2 = np.exp(profiles @ beta - xcenter)
    V = np.asarray(fit.covariance, dtype=float)
    n_strata = len(levels[1])
    pieces, loglik = [], 0.0
    for s in range(n_strata):
        rows = np.flatnonzero(codes == s) if n_strata > 1 else slice(None)
        base = _baseline(time[rows], status[rows], X[rows], wt[rows],
                         None if start is None else start[rows], risk[rows], ctype == "efron",
                         fit.ties)
        loglik += base.pop("loglik")
        pieces.append(base)
    _check_loglik(fit, loglik)
    # curves: (profile, stratum) pairs, ordered as R
    if wanted is None:      # every stratum for every profile
        pairs = [(i, s) for i in range(profiles.shape[0]) for s in range(n_strata)]
    else:
        pairs = [(i, int(wanted[i])) for i in range(profiles.shape[0])]
    z = float(ndtri(1.0 - alpha / 2.0))
    blocks = [_predict(pieces[s], profiles[[i]], risk2[[i]], V) for i, s in pairs]
    out = {c: np.concatenate([b[c] for b in blocks]) for c in blocks[0]}
    # R's survfit_confint with logse = TRUE, as the Kaplan-Meier limits (se_cumhaz is the SE of log S)
    lower, upper = _pointwise(out["survival"], out["se_cumhaz"] ** 2, z, conf_type)
    sizes = np.array([b["time"].size for b in blocks])
    offsets = np.zeros(sizes.size + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    curve_profile = np.array([i for i, _ in pairs], dtype=np.int64)
    stratum_labels = levels[1]
    return CoxSurvivalResult(
        covariates=tuple(fit.covariates), profiles=frozen(profiles), profile_labels=labels,
        strata=tuple(fit.strata), curve_profile=frozen(curve_profile),
        curve_stratum=tuple(stratum_labels[s] if fit.strata else None for _, s in pairs),
        linear_predictor=frozen(np.log(risk2)[curve_profile]), offsets=frozen(offsets),
        time=frozen(out["time"]), n_risk=frozen(out["n_risk"]), n_event=frozen(out["n_event"]),
        n_censor=frozen(out["n_censor"]), cumhaz=frozen(out["cumhaz"]),
        survival=frozen(out["survival"]), se_cumhaz=frozen(out["se_cumhaz"]),
        se=frozen(out["survival"] * out["se_cumhaz"]), lower=frozen(lower), upper=frozen(upper),
        ctype=ctype, conf_type=conf_type, alpha=alpha, n=int(time.size),
        n_events=int(status.sum()))


def _label(value) -> str:
    value = plain_value(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _model_data(data, fit: CoxResult, duration, event, entry, weights):
    """Validated arrays of the fitted data, checked against ``fit``'s size and options."""
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    columns = {"duration": [duration], "event": [event], "covariates": list(fit.covariates),
               "strata": list(fit.strata), "entry": [] if entry is None else [entry],
               "weights": [] if weights is None else [weights]}
    for role, names in columns.items():
        for c in names:
            col = frame_column(data, c, role)
            if col.isna().any():
                raise InputError(
                    f"{role}: column {c!r} has {int(col.isna().sum())} missing value(s); the "
                    "model cannot have been fitted on these rows: pass the data the model was "
                    "fitted on (after the same dropna)")
    if len(data) != fit.n:
        raise InputError(f"data: has {len(data)} rows but the model was fitted on {fit.n}; pass "
                         "the data the model was fitted on (after the same dropna)")
    if fit.counting_process != (entry is not None):
        raise InputError("entry: the model was fitted " + (
            "with entry times (counting-process rows): pass the same entry column"
            if fit.counting_process else "without entry times: do not pass entry"))
    if fit.weighted != (weights is not None):
        raise InputError("weights: the model was fitted " + (
            "with case weights: pass the same weights column" if fit.weighted
            else "without case weights: do not pass weights"))
    time = as_durations(data[duration], f"duration column {duration!r}")
    status = as_events(data[event], f"event column {event!r}")
    X = covariate_matrix(data, list(fit.covariates))
    start = None if entry is None else as_numbers(data[entry], f"entry column {entry!r}")
    if start is not None and not (start < time).all():
        raise InputError(f"entry column {entry!r}: every entry must be below its duration "
                         f"{duration!r}, as in the fit")
    wt = np.ones(time.size) if weights is None else as_numbers(data[weights],
                                                               f"weights column {weights!r}")
    if not (np.isfinite(wt) & (wt > 0)).all():
        raise InputError(f"weights column {weights!r}: weights must be positive and finite")
    if int(status.sum()) != fit.n_events:
        raise InputError(f"data: has {int(status.sum())} events in {event!r} but the model was "
                         f"fitted with {fit.n_events}; pass the data the model was fitted on")
    codes, levels = _strata(data, fit.strata)
    return time, status, X, start, wt, codes, levels


def _strata(data, names):
    """Combined stratum code per row, and (per-column levels, stratum labels, level codes)."""
    if not names:
        return np.zeros(len(data), dtype=np.int64), ([], [None], np.zeros((1, 0), np.int64))
    per = [as_groups(data[c], f"strata column {c!r}", min_groups=1) for c in names]
    stacked = np.column_stack([c for c, _ in per])
    combos, codes = np.unique(stacked, axis=0, return_inverse=True)
    labels = [", ".join(f"{c}={_label(per[j][1][k])}" for j, (c, k) in
                        enumerate(zip(names, row))) for row in combos]
    return codes.reshape(-1).astype(np.int64), ([lv for _, lv in per], labels, combos)


def _profiles(newdata, fit: CoxResult, X, levels):
    """Profile matrix, labels, and the stratum of each profile (``None``: every stratum)."""
    names = list(fit.covariates)
    if newdata is None:
        return X.mean(axis=0)[None, :], ("mean",), None
    newdata, profiles, labels = profile_matrix(newdata, names)
    labels_ix = None if isinstance(newdata.index, pd.RangeIndex) else np.asarray(newdata.index)
    strata = list(fit.strata)
    present = [c for c in strata if c in newdata.columns]
    if not present:
        return profiles, labels, None
    if len(present) < len(strata):
        absent = [c for c in strata if c not in present]
        raise InputError(f"newdata: has strata column(s) {', '.join(map(repr, present))} but not "
                         f"{', '.join(map(repr, absent))}; give all strata columns (a curve in "
                         "each profile's stratum) or none (a curve in every stratum)")
    column_levels, _, combos = levels
    per = []
    for c, lv in zip(strata, column_levels):
        col = newdata[c]
        if col.isna().any():
            bad = col.isna().to_numpy()
            raise InputError(f"newdata: strata column {c!r} has missing value(s): "
                             + describe_positions(bad, col.to_numpy(), labels_ix))
        try:
            idx = pd.Index(lv).get_indexer(col.to_numpy())
        except (TypeError, ValueError):
            idx = np.full(len(col), -1)
        bad = idx < 0
        if bad.any():
            raise InputError(f"newdata: strata column {c!r} has value(s) that are no stratum of "
                             "the data: " + describe_positions(bad, col.to_numpy(), labels_ix))
        per.append(idx)
    lookup = {tuple(row): k for k, row in enumerate(combos.tolist())}
    wanted = np.empty(len(newdata), dtype=np.int64)
    for i, key in enumerate(zip(*per)):
        k = lookup.get(tuple(int(v) for v in key))
        if k is None:
            raise InputError(f"newdata: profile {labels[i]!r} names a combination of strata "
                             "that does not occur in the data")
        wanted[i] = k
    return profiles, labels, wanted


def profile_matrix(newdata, names: list[str]) -> tuple[pd.DataFrame, np.ndarray, tuple]:
    """Validated covariate profiles: the frame, the ``(P, p)`` matrix of ``names`` and the
    row labels. ``newdata`` is a DataFrame or a mapping of column to a value (one profile)
    or to a list of values; every covariate must be there, numeric and finite."""
    if isinstance(newdata, Mapping):
        try:
            newdata = (pd.DataFrame(newdata) if any(np.ndim(v) for v in newdata.values())
                       else pd.DataFrame({k: [v] for k, v in newdata.items()}))
        except (TypeError, ValueError) as exc:
            raise InputError(f"newdata: could not be read as profiles ({exc})") from None
    if not isinstance(newdata, pd.DataFrame):
        raise InputError(f"newdata: expected a DataFrame or a mapping of column to values, got "
                         f"{type(newdata).__name__}")
    if len(newdata) == 0:
        raise InputError("newdata: has no rows; give at least one covariate profile")
    missing = [c for c in names if c not in newdata.columns]
    if missing:
        raise InputError(f"newdata: lacks covariate(s) {', '.join(map(repr, missing))} of the "
                         f"model (covariates: {', '.join(names)})")
    labels_ix = None if isinstance(newdata.index, pd.RangeIndex) else np.asarray(newdata.index)
    cols = []
    for c in names:
        col = newdata[c]
        if not isinstance(col, pd.Series):
            raise InputError(f"newdata: column {c!r} appears more than once")
        if col.dtype.kind not in "biuf":
            raise InputError(f"newdata: column {c!r} is not numeric (dtype {col.dtype})")
        values = col.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(f"newdata: column {c!r} has {int(bad.sum())} missing or infinite "
                             "value(s): " + describe_positions(bad, values, labels_ix))
        cols.append(values)
    return newdata, np.column_stack(cols), tuple(plain_value(v) for v in newdata.index)


def _rcumsum(a: np.ndarray) -> np.ndarray:
    return np.cumsum(a[::-1], axis=0)[::-1]


def _baseline(time, status, X, wt, start, risk, efron: bool, ties: str) -> dict:
    """R's ``agsurv`` on one stratum: per distinct time the counts, the hazard and variance
    increments and the cumulative ``xbar`` term (rows ``x``, risk scores ``risk``); plus this
    stratum's log partial likelihood at the fit (for checking the data)."""
    n, p = X.shape
    times, inv = np.unique(time, return_inverse=True)
    inv = inv.reshape(-1)
    m = times.size
    death = status.astype(bool)
    wrisk = wt * risk
    cols = np.empty((n, 2 + p))
    cols[:, 0] = wrisk
    cols[:, 1] = wt
    cols[:, 2:] = wrisk[:, None] * X
    per = np.zeros((m, 2 + p))
    np.add.at(per, inv, cols)
    at_risk = _rcumsum(per)                       # rows with stop >= t
    if start is not None:                         # ... minus those entering at or after t
        order = np.argsort(start, kind="stable")
        tail = np.zeros((n + 1, 2 + p))
        tail[:-1] = _rcumsum(cols[order])
        at_risk = at_risk - tail[np.searchsorted(start[order], times, side="left")]
    nrisk, irisk, xsum = at_risk[:, 0], at_risk[:, 1], at_risk[:, 2:]
    nevent = np.bincount(inv, weights=wt * death, minlength=m)
    ncens = np.bincount(inv, weights=wt * ~death, minlength=m)
    ndeath = np.bincount(inv[death], minlength=m)
    erisk = np.bincount(inv, weights=wrisk * death, minlength=m)
    # Efron's denominators, one per event: nrisk - erisk * j / d, j = 0..d-1 (Breslow: j = 0)
    t_of = np.repeat(np.arange(m), ndeath)
    first = np.zeros(m, dtype=np.int64)
    np.cumsum(ndeath[:-1], out=first[1:])
    j = np.arange(t_of.size) - first[t_of]
    d = ndeath[t_of].astype(float)
    meanwt = np.divide(nevent, ndeath, out=np.zeros(m), where=ndeath > 0)
    # R's coxph log partial likelihood (Efron or Breslow as fitted), for the data check
    fit_denom = (nrisk[t_of] - erisk[t_of] * j / d) if ties == "efron" else nrisk[t_of]
    loglik = float((wt * death) @ np.log(risk)) - float(meanwt[t_of] @ np.log(fit_denom))
    if efron:
        temp = 1.0 / (nrisk[t_of] - erisk[t_of] * j / d)
        sum1 = np.bincount(t_of, weights=temp / d, minlength=m)
        sum2 = np.bincount(t_of, weights=temp * temp / d, minlength=m)
        xsum2 = np.zeros((m, p))
        np.add.at(xsum2, inv[death], (wrisk[death])[:, None] * X[death])
        terms = ((xsum[t_of] - xsum2[t_of] * j[:, None] / d[:, None])
                 * (temp * temp)[:, None]) / d[:, None]
        xb = np.zeros((m, p))
        np.add.at(xb, t_of, terms)
        haz = nevent * sum1
        varhaz = nevent * sum2
        xbar = nevent[:, None] * xb
    else:
        haz = nevent / nrisk
        varhaz = nevent / nrisk**2
        xbar = (xsum / nrisk[:, None]) * haz[:, None]
    return {"time": times, "n_risk": irisk, "n_event": nevent, "n_censor": ncens,
            "cumhaz": np.cumsum(haz), "cumvar": np.cumsum(varhaz),
            "xbar": np.cumsum(xbar, axis=0), "loglik": loglik}


def _predict(base: dict, x2: np.ndarray, risk2: np.ndarray, V: np.ndarray) -> dict:
    """One profile's curve from a stratum's baseline (R's ``expand`` in ``coxsurv.fit``)."""
    H0 = base["cumhaz"]
    dt = H0[:, None] * x2[0][None, :] - base["xbar"]
    quad = np.einsum("ti,ij,tj->t", dt, V, dt)
    var = (base["cumvar"] + quad) * risk2[0] ** 2
    H = H0 * risk2[0]
    return {"time": base["time"], "n_risk": base["n_risk"], "n_event": base["n_event"],
            "n_censor": base["n_censor"], "cumhaz": H, "survival": np.exp(-H),
            "se_cumhaz": np.sqrt(var)}



def _check_loglik(fit: CoxResult, loglik: float) -> None:
    """The data must give the fit's log partial likelihood at its coefficients."""
    if fit.ties not in ("efron", "breslow"):
        return
    if not abs(loglik - fit.loglik) <= _LOGLIK_RTOL * max(1.0, abs(fit.loglik)):
        raise InputError(
            f"data: does not match the fit: its log partial likelihood at the fitted "
            f"coefficients is {loglik:.10g}, the fit's is {fit.loglik:.10g}; pass the same data "
            "(same rows, order not needed) and the same duration, event, entry, weights columns "
            "the model was fitted with")
