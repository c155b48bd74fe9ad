"""Figures of a replicate study: power of each p-value, intervals of the estimates.

Why: a table of several hundred rows answers "where does *this* number
fall?"; a figure shows the pattern at a glance. :func:`plot_study_power`
draws, for each published p-value, the share of simulated cohorts reaching
``p < alpha`` (the design's power under the simulation model), labelled with
the published p. :func:`plot_study_estimates` draws, for the continuous
estimates (medians in months, subdistribution hazard ratios on a log axis),
the 5th-95th percentile interval of the replicates with their median and the
published value marked. Both take the table of
:func:`failpattern.replicate.study.summary_table` and return a
:class:`matplotlib.figure.Figure` made without pyplot.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from failpattern.errors import InputError
from failpattern.plots._style import PALETTE, RC

__all__ = ["ESTIMATE_PANELS", "plot_study_estimates", "plot_study_power"]

#: Panels of :func:`plot_study_estimates`: (title, card methods, log axis).
ESTIMATE_PANELS = (("Medians (months)", ("km_median", "follow_up_median"), False),
                   ("Subdistribution hazard ratios (Fine-Gray)", ("finegray_shr",), True))
_PUB = {"marker": "D", "color": "0.15", "mfc": "white", "ms": 5, "ls": "none", "zorder": 4}


def _need(table, columns) -> None:
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"table: expected a DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"table: missing column(s) {missing}; pass summary_table(...)")


def plot_study_power(table: pd.DataFrame, *, alpha: float = 0.05, title: str | None = None) -> Figure:
    """Horizontal bars: per published p-value, the share of replicates with ``p < alpha``.

    Parameters
    ----------
    table : pandas.DataFrame
        With ``id``, ``published``, ``is_p_value``, ``power``, ``n``.
    alpha : float
        Only for the axis label.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _need(table, ["id", "published", "is_p_value", "power", "n"])
    rows = table[table["is_p_value"] & table["power"].notna()]
    n = max(len(rows), 1)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7.5, 0.8 + 0.2 * n))
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1]
        significant = (rows["published"] < alpha).to_numpy()
        colors = [PALETTE[1] if s else PALETTE[0] for s in significant]
        ax.barh(y, rows["power"].to_numpy(), color=colors, height=0.7)
        for yi, (pw, pub) in zip(y, zip(rows["power"], rows["published"])):
            ax.text(min(pw, 1.0) + 0.01, yi, f"p = {pub:.3g}", va="center", fontsize=7)
        ax.set_yticks(y, rows["id"].tolist(), fontsize=7)
        ax.set_xlim(0, 1.15)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.axvline(alpha, color="0.5", lw=0.8, ls=":")
        ax.axvline(0.8, color="0.5", lw=0.8, ls="--")
        reps = int(rows["n"].max()) if len(rows) else 0
        ax.set_xlabel(f"power: share of {reps} simulated cohorts with p < {alpha:g}")
        ax.set_title(title or "Published p-values: power of the design (orange: published p < "
                     f"{alpha:g})")
        fig.tight_layout()
    return fig


def plot_study_estimates(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Per estimate, the 5th-95th percentile interval of the replicates, median and published value.

    One panel per entry of :data:`ESTIMATE_PANELS` that has rows.

    Parameters
    ----------
    table : pandas.DataFrame
        With ``id``, ``method``, ``published``, ``median``, ``p05``, ``p95``.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _need(table, ["id", "method", "published", "median", "p05", "p95"])
    panels = [(t, table[table["method"].isin(m) & table["median"].notna()], log)
              for t, m, log in ESTIMATE_PANELS]
    panels = [p for p in panels if len(p[1])] or [("no estimates", table.iloc[:0], False)]
    heights = [max(len(rows), 1) for _, rows, _ in panels]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7.5, 1.0 + 0.22 * sum(heights) + 0.6 * len(panels)))
        axes = fig.subplots(len(panels), 1, squeeze=False,
                            gridspec_kw={"height_ratios": heights})[:, 0]
        for ax, (name, rows, log) in zip(axes, panels):
            y = np.arange(len(rows))[::-1]
            ax.hlines(y, rows["p05"], rows["p95"], color=PALETTE[0], lw=2.2,
                      label="replicates, 5th-95th percentile")
            ax.plot(rows["median"], y, "o", color=PALETTE[0], ms=4, label="replicates, median")
            ax.plot(rows["published"], y, label="published", **_PUB)
            if log:
                ax.set_xscale("log")
                ax.axvline(1.0, color="0.6", lw=0.8)
            ax.set_yticks(y, rows["id"].tolist(), fontsize=7)
            ax.set_ylim(-0.7, max(len(rows), 1) - 0.3)
            ax.set_title(name, loc="left")
        axes[0].legend(loc="best", fontsize=7, frameon=False)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig
