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
``crr``'s time-varying ``cov2`` / ``tf`` are not offered.

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

from collections.abc import Sequence
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
                  max_iter: int = 50, cengroup: np.ndarray | None = None) -> FineGrayResult:
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
        Covariate names (default ``x0, x1, ...``).
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

    Returns
    -------
    FineGrayResult

    Raises
    ------
    ConvergenceError
        Singular information (collinear covariates), no convergence, or a
        coefficient that diverges (monotone likelihood / separation).
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    p = X.shape[1]
    names = tuple(f"x{j}" for j in range(p)) if names is None else tuple(names)
    codes = None
    if cengroup is not None:
        codes = np.unique(np.asarray(cengroup), return_inverse=True)[1].reshape(-1)
    prep = _k.prepare(time, cause, X, cause_of_interest, cengroup=codes)
    return _fit_prepared(prep, names, cause_of_interest, variance, alpha, tol, max_iter)


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
        variance=variance, alpha=alpha, information=frozen(fit.information))


def fine_gray(data: pd.DataFrame, *, duration: str, cause: str, covariates: Sequence[str],
              cause_of_interest: int = 1, variance: str = "crr", alpha: float = 0.05,
              tol: float = 1e-9, max_iter: int = 50, cengroup: str | None = None
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
        Numeric covariate columns (encode categories as 0/1 columns first).
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

    Returns
    -------
    FineGrayResult

    Raises
    ------
    InputError
        Bad columns or values, or no failure of the cause of interest.
    ConvergenceError
        Separation, non-convergence, or singular information.
    """
    times = as_durations(frame_column(data, duration, "duration"), f"duration ({duration!r})")
    codes = as_causes(frame_column(data, cause, "cause"), f"cause ({cause!r})")
    X = covariate_matrix(data, covariates)
    names = tuple([covariates] if isinstance(covariates, str) else covariates)
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
    return fine_gray_fit(X, times, codes, cause_of_interest=int(cause_of_interest), names=names,
                         variance=variance, alpha=alpha, tol=tol, max_iter=int(max_iter),
                         cengroup=groups)
