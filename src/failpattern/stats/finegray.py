r"""Fine-Gray proportional subdistribution hazards regression, matched to R ``cmprsk::crr``.

Why this module exists
----------------------
Ni et al. 2019 (Table 3) report Fine-Gray models fitted with Stata 13.1
``stcrreg``: failure at the original site, with distant failure as a competing
event. Python has no validated Fine-Gray fitter (lifelines has none), so this
one reproduces ``cmprsk::crr`` (Gray, version 2.2-11) to rounding error, and
runs in O(n log n) where ``crr`` is O(n^2) per iteration.

The model and crr's conventions
-------------------------------
Rows are censored (cause 0), failures of the cause of interest, or competing
failures (any other cause). ``G`` is the Kaplan-Meier estimate of the censoring
distribution (censoring as the event, every failure as censored), evaluated
like ``crr`` at ``t * (1 - 100 eps)``: the left limit ``G(t-)`` for every row,
including all rows tied at ``t`` (at ``t = 0`` that point is 0 itself and
``G(0)`` is used). At a failure time ``t`` of the cause of interest the risk
set holds every row with ``T_i >= t`` with weight 1, and every competing row
with ``T_j < t`` with weight ``w_j(t) = G(t-) / G(T_j-)``. Tied failures enter
with Breslow's approximation. The log pseudo-likelihood (``crr``'s ``loglik``)
is ``sum_k [sum_{i fails at t_k} x_i b - d_k log S0(t_k)]``, maximised by
Newton-Raphson from ``b = 0`` with ``crr``'s step halving (Armijo constant
1e-4). The variance is Fine & Gray's sandwich, ``crr``'s ``var``:
``I^{-1} [sum_i (eta_i + psi_i)(eta_i + psi_i)'] I^{-1}`` with ``eta_i`` the
score residual of row ``i`` and ``psi_i = int q(u) / pi(u) dM^c_i(u)`` the term
for the estimated censoring weights, ``pi(u)`` the number with ``T >= u``.

Time-varying effects (``crr``'s ``cov2`` / ``tf``; ``time_varying=`` of :func:`fine_gray`,
``cov2=`` / ``tf=`` of :func:`fine_gray_fit`): a covariate ``z`` whose effect is
``b * g(t)`` enters the risk set of failure time ``t_k`` as ``z_i g(t_k)``, ``g`` evaluated,
as ``crr`` does, at the sorted distinct failure times of the cause of interest. Risk scores
then change from one failure time to the next, so the cumulative sums below no longer
apply: that path forms the risk-set weights times scores of every row at every failure
time (an ``f x n`` matrix, built in blocks of failure times, O(n f p^2) per Newton step)
and computes the same likelihood, score, information and sandwich (``crrvv`` with
``cov2``) from it; it is used only when time-varying terms are given. It equals
``crr(..., cov2 =, tf =)`` to ~1e-12 relative or better (``tests/reference/finegray_tv.R``).

Censoring groups (``cengroup``, as ``crr``'s): ``G`` is a separate Kaplan-Meier
per group (evaluated as above, and, as ``crr``, 0 beyond the last time of the
group), a competing row's weight is ``G_g(t-) / G_g(T_j-)`` with ``g`` its own
group, and the censoring term of the variance is ``crr``'s (``crrvv``): ``q(u)``
sums the competing rows of all groups, each with its group's ``G``, and
``psi_i`` uses the censorings and numbers at risk of row ``i``'s group.

``variance="stata"`` multiplies the covariance by ``n / (n - 1)`` (standard
errors by ``sqrt(n / (n - 1))``): ``stcrreg``'s default ``vce(robust)``
applies Stata's standard degree-of-freedom adjustment (its ``noadjust``
option turns it off; https://www.stata.com/help.cgi?stcrreg). The point
estimates are the same. This scaling is the documented relation; it has not
been checked against Stata output here.

Convergence: Newton steps larger than ``sqrt(tol)`` (relative to
``max(|b_j|, 1)``) are halved as in ``crr`` until the loglik rises; smaller
ones lie in Newton's quadratic region and are taken in full. The fit stops
when ``crr``'s criterion ``max |U_j| max(|b_j|, 1) < max(|loglik|, 1) tol``
holds, after one last such full step, so ``b`` is exact to rounding (``crr``
stops at the criterion itself; the reference fixture runs it with
``gtol = 1e-12``, and the estimates agree to ~1e-14 relative). Separation
(a coefficient diverging) is detected by the information collapsing, the
line search failing or ``max_iter``, and raises
:class:`~failpattern.errors.ConvergenceError`.

Algorithm, O(n log n)
---------------------
One stable sort by time and a table of the ``m`` distinct times. With
``r_i = exp(x_i b)`` the weighted risk-set sums at ``tau_k`` factor as::

    S_a(tau_k) = sum_{T_i >= tau_k} r_i x_i^a  +  G_k sum_{j comp, T_j < tau_k} r_j x_j^a / G(T_j-)

a suffix sum over distinct times plus ``G_k`` times an exclusive prefix sum, so
all ``S0``, ``S1`` cost O(n p). The information needs ``sum_k lambda_k S2_k``
(``lambda_k = d_k / S0_k``); swapping the sums gives ``X' diag(a) X`` with
``a_i = r_i [sum_{tau_k <= T_i} lambda_k + 1{i comp} / G(T_i-) sum_{tau_k > T_i}
lambda_k G_k]``, one O(n p^2) product. The score residuals
``eta_i = 1{i fails}(x_i - xbar(T_i)) - r_i [x_i A_i - B_i]`` use the same
cumulative sums (``B_i`` with ``lambda_k xbar_k``). For ``psi``, crr's
``q(u) = sum_{tau_k >= u} lambda_k G_k [C1(u) - xbar_k C0(u)]`` with
``C_a(u)`` the competing prefix sums before ``u``: two suffix sums. Then
``psi_i = 1{i censored} q(T_i) / pi(T_i) - sum_{u <= T_i} c_u q(u) / pi(u)^2``
(``c_u`` censored at ``u``), a cumulative sum. Every sum "over failure
times <= T_i" is a cumulative sum over the ``f`` failure times read at a
per-row index computed once. Each Newton step costs O(n p^2); memory is
O(n p). Covariates are centred internally, and linear
predictors shifted by their maximum before ``exp``; neither changes any
result but both keep the sums accurate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from failpattern.errors import InputError
from failpattern.stats import _finegray_kernel as _k
from failpattern.stats._result import frozen, wald_table
from failpattern.stats._validate import (as_causes, as_durations, as_groups, check_alpha,
                                         check_choice, check_lengths, covariate_matrix,
                                         frame_column)

__all__ = ["FineGrayResult", "fine_gray", "fine_gray_fit"]

_VARIANCES = ("crr", "stata")


@dataclass(frozen=True)
class FineGrayResult:
    """Result of :func:`fine_gray` / :func:`fine_gray_fit`.

    Attributes
    ----------
    names : tuple of str
        Covariate names, in the order of ``coef``.
    coef : numpy.ndarray
        Log subdistribution hazard ratios (read-only).
    covariance : numpy.ndarray
        Read-only ``(p, p)`` sandwich covariance (``crr``'s ``var``, times
        ``n / (n - 1)`` when ``variance="stata"``).
    loglik, loglik_null : float
        Log pseudo-likelihood at ``coef`` and at zero (``crr``'s ``loglik`` and
        ``loglik.null``).
    n, n_events, n_competing, n_censored : int
        Rows used; failures of the cause of interest; competing failures; censored.
    iterations : int
        Newton-Raphson steps taken from ``b = 0``.
    converged : bool
        Always true for a returned result: fits that fail raise
        :class:`~failpattern.errors.ConvergenceError`.
    cause_of_interest : int
        The cause code modelled.
    variance : str
        ``"crr"`` or ``"stata"``.
    alpha : float
        Confidence intervals are ``1 - alpha``.
    information : numpy.ndarray
        Read-only ``(p, p)`` observed information (``crr``'s ``inf``).
    time_varying : tuple of str
        Names of the time-varying coefficients (``"<column>*tf<j>"``, the last ones of
        ``names``); empty for a model with constant effects only.
    time_factors : numpy.ndarray or None
        Read-only ``(f, k)`` values of the time functions at the sorted distinct failure
        times of the cause of interest (``crr``'s ``tfs``), column ``j`` for the ``j``-th
        name of ``time_varying``; kept so that
        :func:`~failpattern.stats.fine_gray_cif` can predict from the fit. ``None`` for a
        model with constant effects only.
    """

    names: tuple
    coef: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    loglik: float
    loglik_null: float
    n: int
    n_events: int
    n_competing: int
    n_censored: int
    iterations: int
    converged: bool
    cause_of_interest: int
    variance: str
    alpha: float
    information: np.ndarray = field(repr=False)
    time_varying: tuple = ()
    time_factors: np.ndarray | None = field(default=None, repr=False)

    @property
    def se(self) -> np.ndarray:
        """Standard errors, ``sqrt(diag(covariance))``."""
        return np.sqrt(np.diag(self.covariance))

    @property
    def summary(self) -> pd.DataFrame:
        """Per covariate: coef, se, shr, shr_lower, shr_upper, z, p (two-sided Wald)."""
        return wald_table(self.coef, self.se, self.names, self.alpha, "shr")

    def to_frame(self) -> pd.DataFrame:
        """The summary with the covariate as a column and the fit's n, events and loglik."""
        out = self.summary.reset_index()
        out["n"] = self.n
        out["n_events"] = self.n_events
        out["loglik"] = self.loglik
        return out


def fine_gray_fit(X: np.ndarray, time: np.ndarray, cause: np.ndarray, *,
                  cause_of_interest: int = 1, names: Sequence[str] | None = None,
                  variance: str = "crr", alpha: float = 0.05, tol: float = 1e-9,
                  max_iter: int = 50, cengroup: np.ndarray | None = None,
                  cov2: np.ndarray | None = None,
                  tf: Callable[[np.ndarray], np.ndarray] | None = None) -> FineGrayResult:
    """Fit on clean arrays; the inputs are trusted (validate with :func:`fine_gray`).

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, p)`` float covariates, finite, no constant column.
    time : numpy.ndarray
        ``(n,)`` non-negative finite times.
    cause : numpy.ndarray
        ``(n,)`` integer codes: 0 censored, ``cause_of_interest``, any other = competing.
        At least one row must have ``cause_of_interest``.
    cause_of_interest : int
        Code of the modelled failure.
    names : sequence of str, optional
        Coefficient names, those of ``X`` then those of ``cov2`` (default ``x0, x1, ...``
        and ``x<j>*tf<k>`` for ``cov2``'s column ``k``).
    variance : {"crr", "stata"}
        ``"stata"`` scales the covariance by ``n / (n - 1)``.
    alpha : float
        For ``1 - alpha`` confidence intervals.
    tol : float
        crr's ``gtol``: stop when ``max |U_j| max(|b_j|, 1) < max(|loglik|, 1) tol``
        (and the Newton step is below ``sqrt(tol)`` relative).
    max_iter : int
        Newton-Raphson iterations allowed.
    cengroup : numpy.ndarray, optional
        ``(n,)`` censoring group of each row (any sortable values, no missing):
        ``crr``'s ``cengroup``, a censoring distribution per group. ``None``: one.
    cov2 : numpy.ndarray, optional
        ``(n,)`` or ``(n, k)`` float covariates with time-varying effects (``crr``'s
        ``cov2``); ``X`` may then have 0 columns. Needs ``tf``.
    tf : callable, optional
        ``crr``'s ``tf``: called once with the sorted distinct failure times of the cause
        of interest (a 1-D float array of length ``f``), returns an ``(f, k)`` array (or
        ``(f,)`` when ``k = 1``) of finite values; the effect of ``cov2``'s column ``j`` at
        time ``t`` is ``b_j * tf(t)[j]``.

    Returns
    -------
    FineGrayResult

    Raises
    ------
    InputError
        ``cov2`` without ``tf`` or the reverse; ``tf`` not callable, or returning an
        array of the wrong shape, or non-numeric or non-finite values.
    ConvergenceError
        Singular information (collinear covariates), no convergence, or a
        coefficient that diverges (monotone likelihood / separation).
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    p = X.shape[1]
    codes = None
    if cengroup is not None:
        codes = np.unique(np.asarray(cengroup), return_inverse=True)[1].reshape(-1)
    if cov2 is None and tf is None:
        names = tuple(f"x{j}" for j in range(p)) if names is None else tuple(names)
        prep = _k.prepare(time, cause, X, cause_of_interest, cengroup=codes)
        return _fit_prepared(prep, names, cause_of_interest, variance, alpha, tol, max_iter)
    if cov2 is None or tf is None:
        raise InputError("cov2 and tf: give both (time-varying covariates and the function "
                         "of time multiplying their effects) or neither")
    cov2 = np.asarray(cov2, dtype=np.float64)
    if cov2.ndim == 1:
        cov2 = cov2[:, None]
    k = cov2.shape[1]
    if names is None:
        names = (*(f"x{j}" for j in range(p)), *(f"x{p + j}*tf{j + 1}" for j in range(k)))
    names = tuple(names)
    uft = np.unique(time[cause == cause_of_interest])
    tfs = _time_function_values(tf, uft, k, "tf")
    prep = _k.prepare_time_varying(time, cause, X, cov2, tfs, cause_of_interest, cengroup=codes)
    return _fit_prepared(prep, names, cause_of_interest, variance, alpha, tol, max_iter)


def _time_function_values(tf, uft: np.ndarray, k: int, label: str) -> np.ndarray:
    """``tf(uft)`` checked: an ``(f, k)`` float array of finite values (``(f,)`` if k = 1)."""
    if not callable(tf):
        raise InputError(f"{label}: must be a function of time (a callable), got "
                         f"{type(tf).__name__}")
    f = uft.size
    out = tf(uft.copy())
    try:
        values = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{label}: returned values that are not numbers "
                         f"({type(out).__name__})") from None
    shape = values.shape
    if values.ndim == 1 and k == 1:
        values = values[:, None]
    if values.shape != (f, k):
        want = f"({f},) or ({f}, 1)" if k == 1 else f"({f}, {k})"
        raise InputError(
            f"{label}: returned an array of shape {shape}, expected {want}: one row per "
            f"distinct failure time of the cause of interest ({f} here, the sorted times it "
            f"is called with) and one column per time-varying covariate ({k})")
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(
            f"{label}: returned {int(bad.sum())} missing or infinite value(s), e.g. "
            f"{values[i, j]!r} at time {uft[i]!r} (column {j + 1}); the function must be "
            "finite at every failure time of the cause of interest (e.g. log(t) needs t > 0)")
    return values


def _fit_prepared(prep: _k.Prepared, names: tuple, cause_of_interest: int, variance: str,
                  alpha: float, tol: float, max_iter: int, fitted: _k.Fit | None = None
                  ) -> FineGrayResult:
    """:func:`fine_gray_fit` from the kernel's prepared arrays (the analysis plan prepares
    them itself, sharing one sort and censoring table between fits on the same patients,
    and may have fitted them already: ``fitted``, from ``_finegray_batch``)."""
    n = prep.x.shape[0]
    fit = fitted if fitted is not None else _k.fit(prep, names=names, tol=tol, max_iter=max_iter)
    cov = fit.covariance * (n / (n - 1.0) if variance == "stata" and n > 1 else 1.0)
    return FineGrayResult(
        names=names, coef=frozen(fit.coef), covariance=frozen(cov), loglik=fit.loglik,
        loglik_null=fit.loglik_null, n=n, n_events=int(prep.fail_rows.size),
        n_competing=prep.n_comp, n_censored=int(prep.cens_rows.size),
        iterations=fit.iterations, converged=fit.converged, cause_of_interest=cause_of_interest,
        variance=variance, alpha=alpha, information=frozen(fit.information),
        time_varying=() if prep.tv is None else tuple(names[len(names) - prep.tv.n_varying:]),
        time_factors=None if prep.tv is None else frozen(prep.tv.tf[:, prep.x.shape[1]
                                                                    - prep.tv.n_varying:]))


def fine_gray(data: pd.DataFrame, *, duration: str, cause: str, covariates: Sequence[str],
              cause_of_interest: int = 1, variance: str = "crr", alpha: float = 0.05,
              tol: float = 1e-9, max_iter: int = 50, cengroup: str | None = None,
              time_varying: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None
              ) -> FineGrayResult:
    """Fine-Gray regression of the subdistribution hazard of one cause (``cmprsk::crr``).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject. Rows with missing values are not dropped: drop
        them first (``crr``'s default ``na.omit`` drops rows missing any used
        column; ``data.dropna(subset=[duration, cause, *covariates])`` does the same).
    duration : str
        Column of follow-up times (finite, >= 0).
    cause : str
        Column of codes: 0 = censored, 1..k = causes.
    covariates : sequence of str
        Numeric covariate columns (encode categories as 0/1 columns first), with
        effects constant in time (``crr``'s ``cov1``). May be empty when
        ``time_varying`` is given.
    cause_of_interest : int, default 1
        The cause modelled; every other non-zero code is a competing event.
    variance : {"crr", "stata"}, default "crr"
        ``"crr"``: Fine & Gray's sandwich as ``crr``'s ``var``. ``"stata"``:
        the same times ``n / (n - 1)``, as ``stcrreg``'s robust variance.
    alpha : float, default 0.05
        For ``1 - alpha`` confidence intervals of the subdistribution hazard ratios.
    tol, max_iter
        Convergence tolerance (``crr``'s ``gtol`` criterion) and iteration limit.
    cengroup : str, optional
        Column of censoring groups (``crr``'s ``cengroup``): the censoring
        distribution is estimated separately in each group (e.g. by centre or
        enrolment period, when follow-up differs). ``None``: one for all rows.
    time_varying : mapping of str to callable, optional
        Covariates whose effect changes with time (``crr``'s ``cov2`` and ``tf``):
        ``{column: g}`` adds the term ``b * g(t) * data[column]``, whose coefficient is
        named ``"<column>*tf<j>"`` (``j = 1, 2, ...`` in the mapping's order, as ``crr``
        names ``cov2``'s columns) and placed after those of ``covariates``. Each ``g`` is
        called once with the sorted distinct failure times of the cause of interest
        (``crr``'s ``uftime``, a 1-D float array) and must return one finite number per
        time (shape ``(len(t),)`` or ``(len(t), 1)``), e.g. ``np.log`` or
        ``lambda t: (t > 365).astype(float)``. A column may also be in ``covariates``:
        ``covariates=["age"], time_varying={"age": np.log}`` models the log subdistribution
        hazard ratio of age as ``b_age + b_{age*tf1} log t``. (To use one column with two
        functions, copy it under a second name.) These fits take O(n x failure times)
        per iteration instead of O(n log n). The function values are kept on the result
        (``time_factors``), from which :func:`~failpattern.stats.fine_gray_cif` predicts.

    Returns
    -------
    FineGrayResult

    Raises
    ------
    InputError
        Bad columns or values, or no failure of the cause of interest; in
        ``time_varying``, a column not in ``data``, a value that is not callable, or a
        function returning the wrong shape or a missing or infinite value.
    ConvergenceError
        Separation, non-convergence, or singular information (e.g. a time function
        that is constant over the failure times, for a column also in ``covariates``).

    Examples
    --------
    >>> fit = fine_gray(mgus, duration="time", cause="cause", covariates=["age"],
    ...                 time_varying={"male": np.log})  # doctest: +SKIP
    >>> fit.names  # doctest: +SKIP
    ('age', 'male*tf1')
    """
    times = as_durations(frame_column(data, duration, "duration"), f"duration ({duration!r})")
    codes = as_causes(frame_column(data, cause, "cause"), f"cause ({cause!r})")
    names = tuple([covariates] if isinstance(covariates, str) else covariates)
    tv_columns, tv_functions = _check_time_varying(data, time_varying)
    if tv_columns and not names:
        X = np.empty((len(times), 0))
    else:
        X = covariate_matrix(data, covariates)
    check_lengths(duration=times, cause=codes, covariates=X)
    if isinstance(cause_of_interest, bool) or not isinstance(cause_of_interest, (int, np.integer)) \
            or cause_of_interest < 1:
        raise InputError(f"cause_of_interest: must be a whole number >= 1 (a cause code), "
                         f"got {cause_of_interest!r}")
    check_choice(variance, "variance", _VARIANCES)
    alpha = check_alpha(alpha)
    if not (isinstance(tol, float) and 0.0 < tol < 1e-2):
        raise InputError(f"tol: must be a float in (0, 0.01), got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InputError(f"max_iter: must be a whole number >= 1, got {max_iter!r}")
    if not (codes == cause_of_interest).any():
        present = np.unique(codes)
        raise InputError(f"cause ({cause!r}): no row has cause_of_interest = {cause_of_interest}; "
                         f"codes present: {', '.join(map(str, present.tolist()))}. Fine-Gray "
                         "needs at least one failure of the cause of interest")
    groups = None
    if cengroup is not None:
        groups = as_groups(frame_column(data, cengroup, "cengroup"), f"cengroup ({cengroup!r})",
                           min_groups=1)[0]
        check_lengths(duration=times, cengroup=groups)
    if not tv_columns:
        return fine_gray_fit(X, times, codes, cause_of_interest=int(cause_of_interest),
                             names=names, variance=variance, alpha=alpha, tol=tol,
                             max_iter=int(max_iter), cengroup=groups)
    X2 = covariate_matrix(data, tv_columns)
    check_lengths(duration=times, time_varying=X2)
    uft = np.unique(times[codes == cause_of_interest])
    values = np.column_stack([
        _time_function_values(g, uft, 1, f"time_varying[{c!r}]")
        for c, g in zip(tv_columns, tv_functions, strict=True)])
    names = (*names, *(f"{c}*tf{j + 1}" for j, c in enumerate(tv_columns)))
    return fine_gray_fit(X, times, codes, cause_of_interest=int(cause_of_interest), names=names,
                         variance=variance, alpha=alpha, tol=tol, max_iter=int(max_iter),
                         cengroup=groups, cov2=X2, tf=lambda t: values)


def _check_time_varying(data, time_varying) -> tuple[list, list]:
    """The columns and functions of ``fine_gray``'s ``time_varying`` (empty lists for none)."""
    if time_varying is None:
        return [], []
    if not isinstance(time_varying, Mapping):
        raise InputError(
            "time_varying: must be a mapping (dict) of column name to a function of time, "
            f"e.g. {{'age': np.log}}; got {type(time_varying).__name__}")
    columns, functions = [], []
    for c, g in time_varying.items():
        if not isinstance(c, str):
            raise InputError(f"time_varying: keys must be column names (str), got {c!r}")
        frame_column(data, c, "time_varying")
        if not callable(g):
            raise InputError(f"time_varying[{c!r}]: must be a function of time (a callable "
                             f"taking the failure times), got {type(g).__name__}")
        columns.append(c)
        functions.append(g)
    return columns, functions
