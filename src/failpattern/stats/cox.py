"""Cox proportional hazards regression matched to R ``survival::coxph``.

Why our own fitter: lifelines' ``CoxPHFitter`` stops its Newton iterations
about 3e-6 (relative) short of R's estimates and offers only Efron's handling
of tied event times, while the reproductions here must agree with R's
``coxph`` (and through it SPSS, which the Ni et al. 2019 paper used) to 1e-6
or better on every number, for both ``ties="efron"`` and ``ties="breslow"``.

Reference: R 4.2.2, ``survival`` 3.5-3, ``coxph(..., control = coxph.control(
eps = 1e-12, iter.max = 100))`` — coefficients, standard errors, Wald z and p,
hazard ratios with 95% limits, both log partial likelihoods, the likelihood
ratio, score and Wald tests and the covariance matrix
(``tests/reference/cox.R``; the suite checks them to 1e-10 relative, and they agree
to about 1e-12).

``ties="exact"`` (R's exact partial likelihood, the discrete / conditional
logistic model, by Gail, Lubin and Rubinstein's recursion) is checked against
``coxph(..., ties = "exact")`` on lung in months, veteran, strata and
(start, stop] rows (``tests/reference/cox_exact.R``, 1e-9). By default times
that differ only by floating-point rounding are merged first, as R's ``timefix``
(:mod:`failpattern.stats.timefix`, ``tests/reference/timefix.R``).

Counting-process data ((entry, stop] rows, ``entry=``), case weights
(``weights=``) and the robust sandwich variance (``robust=True``, ``cluster=``,
grouped dfbeta residuals) are checked the same way against ``coxph(Surv(start,
stop, event) ~ ..., weights =, cluster =)`` on survival's ``bladder2``.

The public :func:`cox` validates a DataFrame and calls the matrix-level
:func:`~failpattern.stats._coxfit.cox_fit` (re-exported here), the split R
makes between ``coxph`` and ``coxph.fit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import chdtrc

from failpattern.errors import InputError
from failpattern.stats._coxfit import CoxFit, cox_fit
from failpattern.stats._result import frozen, wald_table
from failpattern.stats.timefix import fix_times
from failpattern.stats._validate import (
    as_durations,
    as_events,
    as_groups,
    as_numbers,
    check_alpha,
    check_choice,
    check_flag,
    check_lengths,
    covariate_matrix,
    describe_positions,
    frame_column,
    require_events,
)

__all__ = ["cox", "cox_fit", "CoxResult", "ModelTest", "CoxFit"]

TIES = ("efron", "breslow")          # the approximations (also those of the PH test)
COX_TIES = TIES + ("exact",)          # what cox() accepts


@dataclass(frozen=True)
class ModelTest:
    """A chi-square test of all coefficients being zero.

    Attributes
    ----------
    statistic : float
        Chi-square statistic.
    df : int
        Degrees of freedom (number of covariates).
    p_value : float
        Upper-tail chi-square probability.
    """

    statistic: float
    df: int
    p_value: float

    @classmethod
    def chi_square(cls, statistic: float, df: int) -> ModelTest:
        """The test of ``statistic`` against a chi-square distribution.

        Parameters
        ----------
        statistic : float
            The test statistic.
        df : int
            Degrees of freedom.

        Returns
        -------
        ModelTest
            With the upper-tail p-value.
        """
        return cls(float(statistic), int(df), float(chdtrc(df, statistic)))


@dataclass(frozen=True)
class CoxResult:
    """A fitted Cox proportional hazards model.

    Attributes
    ----------
    covariates : tuple of str
        Covariate names, in the order of ``coef`` and ``covariance``.
    coef : ndarray
        Log hazard ratios (read-only).
    covariance : ndarray
        Covariance of ``coef`` (read-only): the model-based inverse observed
        information, or with ``robust`` the robust (sandwich) one, as R's ``fit$var``.
    loglik, loglik_null : float
        Log partial likelihood at the estimate and at ``beta = 0``.
    likelihood_ratio_test, score_test, wald_test : ModelTest
        Global tests of all coefficients being zero (score test at ``beta = 0``, as R).
    n, n_events : int
        Observations and events used.
    iterations : int
        Newton-Raphson iterations (step halvings included).
    converged : bool
        ``True`` (fits that fail raise :class:`~failpattern.errors.ConvergenceError`).
    ties : str
        ``"efron"``, ``"breslow"`` or ``"exact"``.
    strata : tuple of str
        Stratification columns (empty when unstratified).
    alpha : float
        1 - confidence level of the hazard-ratio limits.
    robust : bool
        ``True`` when ``covariance`` (hence ``se``, the summary's z, p and limits and the
        Wald test) is the robust sandwich variance, as R's ``coxph(robust = TRUE)`` or
        ``cluster =``; the likelihood-ratio and score tests stay model-based.
    naive_covariance : ndarray or None
        With ``robust``, the model-based covariance (R's ``fit$naive.var``); else ``None``.
    weighted : bool
        ``True`` when case weights were given (``loglik`` and the tests are weighted).
    counting_process : bool
        ``True`` for (entry, stop] rows (``entry=`` given).
    """

    covariates: tuple[str, ...]
    coef: np.ndarray
    covariance: np.ndarray
    loglik: float
    loglik_null: float
    likelihood_ratio_test: ModelTest
    score_test: ModelTest
    wald_test: ModelTest
    n: int
    n_events: int
    iterations: int
    converged: bool
    ties: str
    strata: tuple[str, ...]
    alpha: float
    robust: bool = False
    naive_covariance: np.ndarray | None = None
    weighted: bool = False
    counting_process: bool = False

    @property
    def se(self) -> np.ndarray:
        """Standard errors of ``coef`` (the robust ones when ``robust``, as R's summary)."""
        return np.sqrt(np.diag(self.covariance))

    @property
    def naive_se(self) -> np.ndarray:
        """Model-based standard errors (R's ``se(coef)``), whether or not ``robust``."""
        cov = self.covariance if self.naive_covariance is None else self.naive_covariance
        return np.sqrt(np.diag(cov))

    @property
    def summary(self) -> pd.DataFrame:
        """One row per covariate: coef, se, hr, hr_lower, hr_upper, z, p (Wald)."""
        return wald_table(self.coef, self.se, self.covariates, self.alpha, "hr")

    def to_frame(self) -> pd.DataFrame:
        """The summary as a flat table (``covariate`` a column), ready to write out."""
        return self.summary.reset_index()

    def __repr__(self) -> str:
        strata = f", strata={list(self.strata)}" if self.strata else ""
        strata += ", robust=True" if self.robust else ""
        return (f"CoxResult(ties={self.ties!r}{strata}, n={self.n}, n_events={self.n_events}, "
                f"loglik={self.loglik:.6g}, covariates={list(self.covariates)})")


def _names(value, role: str) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise InputError(f"{role}: at least one column name is needed")
    return names


def _strata_codes(data: pd.DataFrame, names: list[str]) -> np.ndarray | None:
    """One integer code per combination of the strata columns (``None`` without strata)."""
    if not names:
        return None
    codes = [as_groups(frame_column(data, c, "strata"), f"strata column {c!r}", min_groups=1)[0]
             for c in names]
    if len(codes) == 1:
        return codes[0]
    _, combined = np.unique(np.column_stack(codes), axis=0, return_inverse=True)
    return combined.reshape(-1).astype(np.int64)


def _has_missing(column: pd.Series) -> bool:
    values = column.to_numpy()
    if values.dtype.kind in "biu":
        return False
    if values.dtype.kind in "fc":
        # the sum is NaN whenever a value is (and rarely otherwise, e.g. inf - inf)
        return bool(np.isnan(np.add.reduce(values)) and np.isnan(values).any())
    return bool(pd.isna(values).any())


def _require_complete(data: pd.DataFrame, roles: dict[str, list[str]]) -> dict[str, pd.Series]:
    """Refuse rows with a missing value in any model column, naming rows and columns.

    Returns the model columns read, by name, so callers need not read them again.
    """
    columns = []
    read, holes = {}, {}
    for role, names in roles.items():
        for c in names:
            if c not in read:
                read[c] = frame_column(data, c, role)  # absent -> InputError
                holes[c] = _has_missing(read[c])
            if holes[c]:
                columns.append(c)
    if not columns:
        return read
    missing = data[columns].isna()
    rows = missing.any(axis=1).to_numpy()
    which = np.array([", ".join(missing.columns[r]) for r in missing.to_numpy()], dtype=object)
    labels = None if isinstance(data.index, pd.RangeIndex) else np.asarray(data.index)
    raise InputError(
        f"cox: {int(rows.sum())} row(s) have missing values in the model columns; rows are "
        "never dropped silently: drop them explicitly (e.g. data.dropna(subset=[...])) and "
        "report how many. Missing at " + describe_positions(rows, which, labels))


def cox(data: pd.DataFrame, *, duration: str, event: str, covariates: Sequence[str] | str,
        ties: str = "efron", strata: Sequence[str] | str | None = None,
        alpha: float = 0.05, entry: str | None = None, weights: str | None = None,
        robust: bool = False, cluster: str | None = None, timefix: bool = True) -> CoxResult:
    """Fit a Cox proportional hazards model, as R ``coxph(Surv(duration, event) ~ ...)``.

    With ``entry`` it is R's ``coxph(Surv(entry, duration, event) ~ ..., weights = ,
    cluster = )`` for counting-process data (several (entry, stop] rows per subject,
    time-varying covariates, delayed entry).

    Parameters
    ----------
    data : DataFrame
        One row per patient. Rows with missing values are not dropped: drop
        them first (a missing value raises :class:`~failpattern.errors.InputError`).
    duration : str
        Column of follow-up times (>= 0).
    event : str
        Column of event indicators (1 = event, 0 = censored).
    covariates : str or sequence of str
        Numeric, non-constant columns; encode categories as 0/1 indicators.
    ties : {"efron", "breslow", "exact"}
        Handling of tied event times (R's default is Efron; SPSS COXREG uses Breslow).
        "exact" is R's ``ties = "exact"``: the exact partial likelihood of the discrete
        (conditional logistic) model, each tied time contributing the probability of its
        set of events among all equally large subsets of its risk set, computed by the
        recursion of Gail, Lubin and Rubinstein (1981), O(d x at-risk) per time with ``d``
        tied events. With strata and (entry, duration] rows as R (whose ``agexact``
        enumerates the subsets; the likelihood is the same). Not with ``weights``,
        ``robust`` or ``cluster`` (R refuses these too).
    strata : str or sequence of str, optional
        Column(s) whose combinations define strata with separate baseline hazards.
    alpha : float
        Hazard-ratio limits are ``exp(coef -/+ z_{1-alpha/2} se)``.
    entry : str, optional
        Column of entry times: each row is the interval (entry, duration], at risk at an
        event time ``t`` when ``entry < t <= duration``; ``entry < duration`` on every row
        (entry may be negative). ``None``: every row at risk from time 0.
    weights : str, optional
        Column of positive, finite case weights multiplying each row's contribution to
        the partial likelihood, its score, information and risk sets (R's ``weights``;
        with Breslow ties integer weights equal replicated rows; with Efron they do not,
        as copies of an event are tied with each other and a weighted event is not). Unlike R, non-integer weights do not turn
        the robust variance on by themselves: pass ``robust=True``.
    robust : bool
        Replace ``covariance`` by the robust sandwich ``D'D``, ``D`` the weighted dfbeta
        residuals (score residuals times the inverse information) summed within clusters
        (each row its own cluster without ``cluster``), as R's ``robust = TRUE``; the
        model-based covariance is kept in ``naive_covariance``.
    cluster : str, optional
        Column identifying correlated rows (e.g. patient id with several rows each) for
        the robust variance; implies ``robust=True`` (as R's ``cluster =``).
    timefix : bool, default True
        Treat times that differ only by floating-point rounding as tied, as R's
        ``coxph(..., control = coxph.control(timefix = TRUE))`` (its default,
        ``aeqSurv``): distinct values of ``duration`` and ``entry`` (together) closer
        than ``sqrt(machine eps)``, absolutely or relative to their mean absolute value,
        become the smallest of them (see :mod:`failpattern.stats.timefix`). ``False``
        keeps every distinct floating-point value apart.

    Returns
    -------
    CoxResult

    Raises
    ------
    InputError
        Missing or invalid values, unknown columns, no events, ``entry >= duration``,
        weights that are not positive and finite; ``ties="exact"`` with weights, robust or
        cluster; with ``timefix``, an (entry, duration] interval whose ends merge.
    ConvergenceError
        Collinear covariates, a coefficient diverging to infinity (separation,
        monotone likelihood), or no convergence.

    Examples
    --------
    >>> fit = cox(lung, duration="time", event="event", covariates=["age", "sex"])  # doctest: +SKIP
    >>> fit.summary.loc["sex", "hr"]  # doctest: +SKIP
    """
    ties = check_choice(ties, "ties", COX_TIES)
    alpha = check_alpha(alpha)
    if not isinstance(robust, (bool, np.bool_)):
        raise InputError(f"robust must be True or False, got {robust!r}")
    timefix = check_flag(timefix, "timefix")
    if ties == "exact" and (weights is not None or robust or cluster is not None):
        given = ", ".join(k for k, v in (("weights", weights is not None), ("robust", robust),
                                         ("cluster", cluster is not None)) if v)
        raise InputError(
            f"cox: ties='exact' does not support {given}: the exact partial likelihood has "
            "no case weights and no score residuals for a robust variance (R's coxph refuses "
            "both); use ties='efron' or 'breslow'")
    time, status, X, codes, names, strata_list = model_inputs(
        data, duration, event, covariates, strata, "a Cox model")
    if entry is None and weights is None and cluster is None and not robust:
        if timefix:
            time = fix_times(time)[0]
        fit = cox_fit(X, time, status, strata_codes=codes, ties=ties, names=names)
        return _result(fit, names, ties, tuple(strata_list), alpha, time.size)
    start, w, groups = _counting_inputs(data, time, duration, entry, weights, cluster)
    if timefix:
        time, start = fix_times(time, start)
    fit = cox_fit(X, time, status, strata_codes=codes, ties=ties, names=names, entry=start,
                  weights=w, robust=bool(robust), cluster=groups)
    return _result(fit, names, ties, tuple(strata_list), alpha, time.size,
                   weighted=w is not None, counting_process=start is not None)


def _counting_inputs(data, time, duration, entry, weights, cluster):
    """Validated entry times, case weights and cluster codes (each ``None`` when not given)."""
    extra = {role: [c] for role, c in (("entry", entry), ("weights", weights),
                                       ("cluster", cluster)) if c is not None}
    read = _require_complete(data, extra)
    labels = None if isinstance(data.index, pd.RangeIndex) else np.asarray(data.index)
    start = w = groups = None
    if entry is not None:
        start = as_numbers(read[entry], f"entry column {entry!r}")
        bad = ~np.isfinite(start)
        if bad.any():
            raise InputError(f"entry column {entry!r}: {int(bad.sum())} value(s) are not "
                             "finite: " + describe_positions(bad, start, labels))
        bad = ~(start < time)
        if bad.any():
            pairs = np.array([f"({a:g}, {b:g}]" for a, b in zip(start, time)], dtype=object)
            raise InputError(
                f"cox: {int(bad.sum())} row(s) have entry {entry!r} >= duration {duration!r}; "
                "each row is an interval (entry, duration] and must have entry < duration: "
                + describe_positions(bad, pairs, labels))
    if weights is not None:
        w = as_numbers(read[weights], f"weights column {weights!r}")
        bad = ~(np.isfinite(w) & (w > 0))
        if bad.any():
            raise InputError(f"weights column {weights!r}: {int(bad.sum())} value(s) are not "
                             "positive and finite (case weights must be > 0): "
                             + describe_positions(bad, w, labels))
    if cluster is not None:
        groups = pd.factorize(read[cluster], sort=True)[0].astype(np.int64)
    return start, w, groups


def model_inputs(data, duration, event, covariates, strata, what: str):
    """Validated arrays of a Cox-type model: time, status, X, stratum codes, names, strata.

    Shared by :func:`cox` and the proportional-hazards test, which fit the same model.
    """
    names = _names(covariates, "covariates")
    strata_list = [] if strata is None else _names(strata, "strata")
    read = _require_complete(data, {"duration": [duration], "event": [event],
                                    "covariates": names, "strata": strata_list})
    time = as_durations(read[duration], f"duration column {duration!r}")
    status = as_events(read[event], f"event column {event!r}")
    X = covariate_matrix(data, names, columns=read)
    codes = _strata_codes(data, strata_list)
    check_lengths(duration=time, event=status, covariates=X, strata=codes)
    require_events(status, what, f"event column {event!r}")
    return time, status, X, codes, names, strata_list


def _result(fit: CoxFit, names, ties, strata, alpha, n, *, weighted: bool = False,
            counting_process: bool = False) -> CoxResult:
    p = fit.coef.size
    robust = fit.naive_covariance is not None
    if robust:    # as R: the Wald test of the robust covariance
        wald = float(fit.coef @ np.linalg.solve(fit.covariance, fit.coef))
    else:
        wald = float(fit.coef @ fit.information @ fit.coef)
    return CoxResult(
        covariates=tuple(names), coef=frozen(fit.coef), covariance=frozen(fit.covariance),
        loglik=fit.loglik, loglik_null=fit.loglik_null,
        likelihood_ratio_test=ModelTest.chi_square(2.0 * (fit.loglik - fit.loglik_null), p),
        score_test=ModelTest.chi_square(fit.score_test, p),
        wald_test=ModelTest.chi_square(wald, p),
        n=int(n), n_events=fit.n_events, iterations=fit.iterations, converged=fit.converged,
        ties=ties, strata=strata, alpha=alpha, robust=robust,
        naive_covariance=None if not robust else frozen(fit.naive_covariance),
        weighted=weighted, counting_process=counting_process)
