"""Diagnostic figures for the proportional hazards assumption of a Cox model.

* :func:`plot_schoenfeld` — scaled Schoenfeld residuals of one covariate against
  the transformed time of :func:`~failpattern.stats.zph.proportional_hazards_test`
  (R ``plot(cox.zph(fit))``), with a smooth estimate of ``beta(t)``, the fitted
  coefficient and the test's p;
* :func:`plot_log_minus_log` — ``log(-log S(t))`` against ``log t`` for several
  Kaplan-Meier curves (parallel under proportional hazards).

Everything drawn is read off the results: the points are
``(result.transformed_time, result.scaled_residuals[:, j])`` and the steps are
``(log time, log(-log survival))`` at the table times with events and
``0 < survival < 1``. The smooth is a least-squares natural cubic spline (no
lowess, so no statsmodels and no tuning by iteration): knots at the 0, 25, 50,
75 and 100 % quantiles of the transformed times of the events, 5 degrees of
freedom including the intercept, linear beyond the end knots (Hastie,
Tibshirani & Friedman, *Elements of Statistical Learning*, eq. 5.4-5.5). It is
close in spirit to R's ``plot.cox.zph`` (``ns(df = 4)`` plus intercept), not
identical to it. With fewer than five distinct times it falls back to a line.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from failpattern.errors import InputError
from failpattern.plots._style import PALETTE, RC, colors_for, format_p
from failpattern.stats.km import KaplanMeierResult
from failpattern.stats.zph import ProportionalHazardsResult

__all__ = ["plot_schoenfeld", "plot_log_minus_log", "natural_spline_smooth"]

_XLABEL = {"km": "g(t) = 1 − KM(t−)", "rank": "rank of time", "identity": "time",
           "log": "log(time)"}


def _basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Natural cubic spline basis (ESL 5.4-5.5): 1, x, d_k - d_{K-1}."""
    last = knots[-1]

    def d(k):
        return (np.maximum(x - knots[k], 0.0) ** 3
                - np.maximum(x - last, 0.0) ** 3) / (last - knots[k])

    cols = [np.ones_like(x), x]
    d_prev = d(knots.size - 2)
    cols += [d(k) - d_prev for k in range(knots.size - 2)]
    return np.column_stack(cols)


def natural_spline_smooth(x, y, grid) -> np.ndarray:
    """Least-squares natural cubic spline of ``y`` on ``x`` (5 knots at quantiles), at ``grid``.

    NaN values of ``y`` are left out. With fewer than five distinct ``x`` a
    least-squares line is returned instead.
    """
    x, y, grid = (np.asarray(v, dtype=float) for v in (x, y, grid))
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    knots = np.unique(np.quantile(x, [0.0, 0.25, 0.5, 0.75, 1.0])) if x.size else np.array([])
    if knots.size < 5:
        if np.unique(x).size < 2:
            return np.full(grid.shape, y.mean() if y.size else np.nan)
        slope, intercept = np.polyfit(x, y, 1)
        return intercept + slope * grid
    coef, *_ = np.linalg.lstsq(_basis(x, knots), y, rcond=None)
    return _basis(grid, knots) @ coef


def _axes(ax, size):
    if ax is None:
        fig = Figure(figsize=size, layout="constrained")
        return fig, fig.subplots()
    return ax.figure, ax


def plot_schoenfeld(result: ProportionalHazardsResult, covariate: str, *, ax=None) -> Figure:
    """Scaled Schoenfeld residuals of one covariate against transformed time.

    Parameters
    ----------
    result : ProportionalHazardsResult
        From :func:`~failpattern.stats.zph.proportional_hazards_test`.
    covariate : str
        One of ``result.covariates``.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes; without it a new figure is made.

    Returns
    -------
    matplotlib.figure.Figure
        Artists carry labels: ``"residuals"`` (the points), ``"smooth"`` (the
        natural-spline estimate of beta(t)), ``"coefficient"`` (the fitted log
        hazard ratio, dashed) and ``"zero"``; the test's p is in the title.
    """
    if not isinstance(result, ProportionalHazardsResult):
        raise InputError("result: expected a ProportionalHazardsResult from "
                         f"proportional_hazards_test, got {type(result).__name__}")
    if covariate not in result.covariates:
        raise InputError(f"covariate: {covariate!r} is not one of "
                         f"{', '.join(map(repr, result.covariates))}")
    j = result.covariates.index(covariate)
    x = np.asarray(result.transformed_time, dtype=float)
    y = np.asarray(result.scaled_residuals[:, j], dtype=float)
    grid = np.linspace(np.nanmin(x), np.nanmax(x), 101)
    with matplotlib.rc_context(RC):
        fig, ax = _axes(ax, (5.0, 3.8))
        ax.scatter(x, y, s=12, alpha=0.6, color=PALETTE[0], label="residuals")
        ax.plot(grid, natural_spline_smooth(x, y, grid), color=PALETTE[1], label="smooth")
        ax.axhline(float(result.coef[j]), ls="--", color="k", lw=1, label="coefficient")
        ax.axhline(0.0, color="0.6", lw=0.8, label="zero")
        ax.set_xlabel(_XLABEL.get(result.transform, "g(t)"))
        ax.set_ylabel(f"beta(t) for {covariate}")
        ax.set_title(f"{covariate}: PH test {format_p(float(result.p_value[j]))}")
    return fig


def plot_log_minus_log(curves: Mapping[str, KaplanMeierResult], *, ax=None,
                       xlabel: str = "log(time)", colors=None) -> Figure:
    """``log(-log S(t))`` against ``log t`` for each Kaplan-Meier curve.

    Under proportional hazards the curves are parallel (vertical distance log HR).

    Parameters
    ----------
    curves : Mapping of str to KaplanMeierResult
        Legend label → curve (drawn in this order).
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes; without it a new figure is made.
    xlabel : str
        Label of the x axis.
    colors : sequence or Mapping, optional
        Curve colours (default: the Okabe-Ito palette).

    Returns
    -------
    matplotlib.figure.Figure
        One step line per curve (``drawstyle="steps-post"``, labelled with its
        key), through ``(log time, log(-log survival))`` at the table times with
        events and ``0 < survival < 1``.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise InputError("curves: expected a non-empty mapping of label to KaplanMeierResult")
    bad = [k for k, v in curves.items() if not isinstance(v, KaplanMeierResult)]
    if bad:
        raise InputError(f"curves: not KaplanMeierResult: {', '.join(map(repr, bad))}")
    labels = list(curves)
    with matplotlib.rc_context(RC):
        fig, ax = _axes(ax, (5.5, 4.0))
        for label, color in zip(labels, colors_for(labels, colors)):
            km = curves[label]
            s = np.asarray(km.survival, dtype=float)
            t = np.asarray(km.time, dtype=float)
            keep = (np.asarray(km.events) > 0) & (s > 0) & (s < 1) & (t > 0)
            ax.step(np.log(t[keep]), np.log(-np.log(s[keep])), where="post", color=color,
                    label=str(label))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("log(−log S(t))")
        ax.legend()
    return fig
