"""Kaplan-Meier figures in the style of Ni et al. 2019, Fig. 1a-d.

Why our own and not lifelines' ``plot_survival_function`` /
``add_at_risk_counts``: the figure must show exactly the numbers the
reproduction computed — our :class:`~failpattern.stats.km.KaplanMeierResult`
(with SPSS or R medians and limits), our log-rank p — and lifelines'
at-risk helper needs lifelines fitters. Everything drawn here is read off the
result: the curve is ``(0, 1)`` followed by ``(time, survival)`` as a
right-continuous step, the ``+`` marks sit at the times with ``censored > 0``,
the median label is ``result.median`` and ``result.median_ci``, and the
number at risk under tick ``t`` is the ``at_risk`` of the first table time
``>= t`` (0 after the last time) — the count with follow-up ``>= t``, as R's
``summary(survfit, times)`` and ``survminer`` print it.

The numbers-at-risk helpers here are shared with :mod:`failpattern.plots.cif`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator

from failpattern.errors import InputError
from failpattern.plots._style import LINESTYLES, RC, colors_for, format_p, p_of
from failpattern.stats.km import KaplanMeierResult

__all__ = ["median_label", "plot_km"]

RISK_LABEL = "risk-table"  # Axes label of the numbers-at-risk table (find it in fig.axes)


def plot_km(curves, *, ax=None, risk_table: bool = True, risk_times=None,
            censor_marks: bool = True, show_median: bool = True, ci: bool = False,
            p_value=None, xlabel: str = "Months", ylabel: str = "Survival probability",
            title: str | None = None, colors=None, digits: int = 1,
            min_at_risk: int | None = None, events_table: bool = False,
            linestyles=None, figsize: tuple[float, float] | None = None,
            legend_loc: str = "best") -> Figure:
    """Kaplan-Meier curves with censor marks, medians, a log-rank p and numbers at risk.

    Parameters
    ----------
    curves : KaplanMeierResult or Mapping of str to KaplanMeierResult
        One curve, or legend label → curve (drawn in this order).
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes. Without it a new figure is made, with the
        numbers-at-risk table in its own row. With it, the table is an inset
        below ``ax``: leave about 0.3 inch per curve plus 0.8 inch of room
        under the Axes (save with :func:`~failpattern.plots.save_figure`, which
        crops to everything drawn).
    risk_table : bool
        Print the numbers at risk under the plot, one row per curve, one
        column per x tick.
    risk_times : sequence of float, optional
        Times of the table columns; they also become the x ticks. Default:
        round ticks (steps of 1, 2, 3, 5 or 6 × a power of ten) from 0 past
        the last observed time.
    censor_marks : bool
        A ``+`` on the curve at every time with a censored observation.
    show_median : bool
        Dotted drop lines to the median, and ``median 11.5 (9.8–13.2)`` (the
        result's ``median`` and ``median_ci``) in the legend. A median or limit
        the curve (or its limit curve) never reaches prints ``NR``: ``13.6
        (9.8–NR)``; limits SPSS could not compute (``conf_type="spss"``) print
        ``NA``. Limits outside [0, last follow-up of the curve] (SPSS's
        median ± 1.96 SE can be negative) are shown clamped to that range and
        marked ``*``: ``13.6 (0.0*–47.0)``; the caption should give the value as
        computed (see :func:`median_label`).
    ci : bool
        Shade the pointwise confidence band (``lower``, ``upper``), shown clipped
        to [0, 1]; where the limits are undefined while S is still 1 (the
        "log-log" band before the first event) the band is the point 1. The
        band is the result's own ``conf_type`` ("spss": S ± 1.96 se, "log-log":
        R's ``conf.type = "log-log"``).
    p_value : float or LogRankResult, optional
        Printed at the lower left as ``log-rank p = 0.006`` (``p < 0.001``).
    xlabel, ylabel, title : str
        Axis labels and title (``title=None``: none).
    colors : sequence or Mapping, optional
        Curve colours, in order or by label. Default: the Okabe-Ito palette.
    digits : int
        Decimals of the median label.
    min_at_risk : int, optional
        Draw each curve (with its band and censor marks) only up to the last
        time at which at least this many patients remain at risk, the time of
        the last row of the result with ``at_risk >= min_at_risk`` (the step
        there is still drawn). Default: the whole curve.
    events_table : bool
        Below the numbers at risk, the cumulative number of events up to each
        column's time (events at times ``<= t``), one row per curve (needs
        ``risk_table``).
    linestyles : sequence, optional
        Line style per curve, in order. Default ``-``, ``--``, ``-.``, ``:``
        cycling, so that curves are told apart in black-and-white print.
    figsize : (float, float), optional
        Width and height (inch) of the plot of a new figure; the table adds
        0.24 inch per row. Default (6.4, 4.3). E.g. (3.5, 2.6) for a journal column.
    legend_loc : str
        Matplotlib legend location, or ``"above"``: one entry per line above the
        plot, clear of the curves (where a title would go; for ``title=None``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``. Artists carry gids for inspection:
        ``km-curve:<label>``, ``km-censor:<label>``, ``km-ci:<label>``,
        ``km-median:<label>``, ``p-value``; the table is the Axes labelled
        ``"risk-table"`` (with ``events_table``, its texts of the events block
        have gid ``km-events:<label>``). A single unlabelled curve has label ``""``.

    Raises
    ------
    InputError
        No curves, an entry that is not a KaplanMeierResult, bad ``risk_times``,
        ``colors``, ``p_value`` or ``min_at_risk`` (an integer >= 1).
    """
    named = _as_curves(curves)
    labels = list(named)
    results = list(named.values())
    palette = colors_for(labels, colors)
    p = p_of(p_value)
    if min_at_risk is not None and (isinstance(min_at_risk, bool) or not isinstance(
            min_at_risk, (int, np.integer)) or min_at_risk < 1):
        raise InputError(f"min_at_risk: need an integer >= 1 or None, got {min_at_risk!r}")
    styles = list(linestyles) if linestyles is not None else list(LINESTYLES)
    if not styles:
        raise InputError("linestyles: give at least one line style")
    t_max = max(float(r.time[-1]) for r in results)
    ticks = _ticks(t_max, risk_times)
    n_rows = len(labels) * (2 if events_table else 1) + (1 if events_table else 0)
    with matplotlib.rc_context(RC):
        width, height = (6.4, 4.3) if figsize is None else figsize
        fig, ax, rax = _axes(ax, n_rows if risk_table else 0, width, height)
        for k, (label, res, color) in enumerate(zip(labels, results, palette)):
            _draw_curve(ax, label, res, color, censor_marks, ci, show_median, digits,
                        cut_time(res, min_at_risk), styles[k % len(styles)])
        _finish_axes(ax, ticks, t_max, xlabel, ylabel, title,
                     None if p is None else f"log-rank {format_p(p)}", p_top=False)
        if any(lab for lab in labels) or show_median:
            if legend_loc == "above":
                ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.02), borderaxespad=0.0,
                          handlelength=2.4, borderpad=0.0)
            else:
                ax.legend(loc=legend_loc, handlelength=2.4)
        if rax is not None:
            rows = [(lab, col, number_at_risk(res, ticks))
                    for lab, res, col in zip(labels, results, palette)]
            events = [(lab, col, cumulative_events(res, ticks))
                      for lab, res, col in zip(labels, results, palette)]
            draw_risk_table(rax, ticks, rows, events_rows=events if events_table else None)
    return fig


def cut_time(result: KaplanMeierResult, min_at_risk: int | None) -> float:
    """Last time with at least ``min_at_risk`` patients at risk (``inf``: no cut).

    The time of the last row with ``at_risk >= min_at_risk`` (at risk just before
    it, so its step is estimated from that many); 0 when even the first row has
    fewer.
    """
    if min_at_risk is None:
        return np.inf
    ok = np.flatnonzero(np.asarray(result.at_risk) >= min_at_risk)
    return float(result.time[ok[-1]]) if ok.size else 0.0


def cumulative_events(result: KaplanMeierResult, times) -> np.ndarray:
    """Number of events at times ``<= t`` for each ``t`` in ``times``, from the result."""
    pos = np.searchsorted(result.time, np.asarray(times, dtype=np.float64), side="right")
    return np.concatenate([[0], np.cumsum(result.events)])[pos].astype(np.int64)


def _limit_text(value: float, lo: float, hi: float, digits: int, missing: str):
    """(text, note): a limit clamped to [lo, hi] for display, marked ``*``."""
    if value is None or np.isnan(value):
        return missing, None
    if value < lo or value > hi:
        edge = lo if value < lo else hi
        return f"{edge:.{digits}f}*", f"{value:.{digits}f}"
    return f"{value:.{digits}f}", None


def median_label(result: KaplanMeierResult, digits: int = 1) -> tuple[str, list[str]]:
    """The legend's median text and the limits clamped for display, as computed.

    ``("13.6 (9.8–NR)", [])``; ``("13.6 (0.0*–47.0)", ["-19.8"])`` for an SPSS
    lower limit of -19.8 (limits outside [0, last follow-up] are clamped and
    marked ``*``). NaN limits print ``NR`` (not reached) for R-type results and
    ``NA`` (not computable) for ``conf_type="spss"``; a median not reached
    prints ``NR`` with its lower limit if that was reached (``NR (25.1–NR)``).
    """
    missing = "NA" if result.conf_type == "spss" else "NR"
    lo, hi = result.median_ci
    if not np.isfinite(result.median):
        if lo is None or np.isnan(lo):
            return "NR", []
        missing = "NR"
    last = float(result.time[-1])
    texts, notes = [], []
    for value in (lo, hi):
        text, note = _limit_text(value, 0.0, last, digits, missing)
        texts.append(text)
        if note is not None:
            notes.append(note)
    est = "NR" if not np.isfinite(result.median) else f"{result.median:.{digits}f}"
    if texts == ["NA", "NA"]:
        return f"{est} (CI NA)", notes
    return f"{est} ({texts[0]}–{texts[1]})", notes


def number_at_risk(result: KaplanMeierResult, times) -> np.ndarray:
    """Number with follow-up ``>= t`` for each ``t`` in ``times``, from the result.

    The ``at_risk`` of the first distinct time ``>= t``; 0 after the last time.
    """
    times = np.asarray(times, dtype=np.float64)
    pos = np.searchsorted(result.time, times, side="left")
    padded = np.append(np.asarray(result.at_risk), 0)
    return padded[pos].astype(np.int64)


# --------------------------------------------------------------------------- shared layout
def draw_risk_table(rax, ticks: np.ndarray, rows: Sequence[tuple], *,
                    events_rows: Sequence[tuple] | None = None) -> None:
    """Fill ``rax`` (x shared with the plot) with one row of counts per curve.

    ``rows`` holds ``(label, colour, counts)``; count ``j`` is centred under
    ``ticks[j]``, the label (in the curve's colour) sits left of the row.
    ``events_rows`` (same form) adds a "Cumulative events" block below.
    """
    n_risk = len(rows)
    blocks = [("risk", rows)] + ([("events", events_rows)] if events_rows else [])
    n = n_risk + (len(events_rows) + 1 if events_rows else 0)
    size = FontProperties(size=matplotlib.rcParams["xtick.labelsize"]).get_size_in_points()
    rax.set_label(RISK_LABEL)
    rax.set_ylim(-0.5, n - 0.5)
    ys, names, colors = [], [], []
    y = n - 1
    for kind, block in blocks:
        if kind == "events":
            rax.text(0.0, y, "Cumulative events", ha="left", va="center",
                     transform=rax.get_yaxis_transform(), gid="km-events-title",
                     fontsize=matplotlib.rcParams["font.size"])
            y -= 1
        for label, color, counts in block:
            ys.append(y)
            names.append(label or "All")
            colors.append(color)
            gid = f"km-events:{label}" if kind == "events" else None
            for t, count in zip(ticks, counts):
                rax.text(t, y, str(int(count)), ha="center", va="center", color=color,
                         fontsize=size, gid=gid)
            y -= 1
    rax.set_yticks(ys, names)
    for tick, color in zip(rax.get_yticklabels(), colors):
        tick.set_color(color)
    rax.tick_params(axis="x", bottom=False, labelbottom=False)
    digits = max(len(str(int(counts[0]))) for _, _, counts in rows) if len(ticks) else 1
    # keep the row labels clear of the first column, centred on the axis (digit ~0.6 em)
    rax.tick_params(axis="y", left=False, pad=4 + 0.3 * size * digits)
    for spine in rax.spines.values():
        spine.set_visible(False)
    rax.set_title("Number at risk", loc="left", fontsize=matplotlib.rcParams["font.size"],
                  pad=4)
    rax.patch.set_visible(False)


def _axes(ax, table_rows: int, width: float = 6.4, height: float = 4.3):
    """(figure, plot Axes, table Axes or None) for a new figure or a given Axes."""
    table_h = 0.24 * table_rows + 0.3 if table_rows else 0.0
    if ax is None:
        fig = Figure(figsize=(width, height + table_h), layout="constrained")
        if not table_rows:
            return fig, fig.add_subplot(), None
        grid = fig.add_gridspec(2, 1, height_ratios=[height, table_h])
        ax = fig.add_subplot(grid[0])
        return fig, ax, fig.add_subplot(grid[1], sharex=ax)
    if not table_rows:
        return ax.figure, ax, None
    height_in = ax.get_window_extent().transformed(ax.figure.dpi_scale_trans.inverted()).height
    frac = table_h / max(height_in, 1e-6)
    gap = 0.75 / max(height_in, 1e-6)  # below the tick labels and the x label
    return ax.figure, ax, ax.inset_axes([0.0, -gap - frac, 1.0, frac], sharex=ax)


def _ticks(t_max: float, risk_times) -> np.ndarray:
    if risk_times is None:
        locator = MaxNLocator(nbins=8, steps=[1, 2, 3, 5, 6, 10], min_n_ticks=3)
        ticks = locator.tick_values(0.0, t_max if t_max > 0 else 1.0)
        ticks = ticks[ticks >= 0]
        keep = np.flatnonzero(ticks >= t_max)
        return ticks[: keep[0] + 1] if keep.size else ticks
    ticks = np.asarray(risk_times, dtype=np.float64).reshape(-1)
    if ticks.size == 0 or not np.all(np.isfinite(ticks)) or np.any(ticks < 0) \
            or np.any(np.diff(ticks) <= 0):
        raise InputError(f"risk_times: need increasing finite times >= 0, got {risk_times!r}")
    return ticks


def _finish_axes(ax, ticks, t_max, xlabel, ylabel, title, p_text, p_top) -> None:
    """Probability y axis, x ticks, labels, and the p-value text (upper or lower left)."""
    ax.set_ylim(0.0, 1.05)
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.spines["left"].set_bounds(0.0, 1.0)
    ax.spines["top"].set_visible(False)  # also on an Axes made outside our style
    ax.spines["right"].set_visible(False)
    if p_text is not None:
        ax.text(0.03, 0.97 if p_top else 0.04, p_text, transform=ax.transAxes, ha="left",
                va="top" if p_top else "bottom", gid="p-value", zorder=5,
                bbox=dict(facecolor="white", edgecolor="none", pad=1.5))
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_xlim(min(0.0, ticks[0]), max(ticks[-1], t_max))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, loc="left")


# --------------------------------------------------------------------------- drawing
def _as_curves(curves) -> dict:
    if isinstance(curves, KaplanMeierResult):
        return {"": curves}
    if not isinstance(curves, Mapping) or not curves:
        raise InputError("curves: give a KaplanMeierResult or a non-empty mapping "
                         f"label -> KaplanMeierResult, got {type(curves).__name__}")
    bad = [k for k, v in curves.items() if not isinstance(v, KaplanMeierResult)]
    if bad:
        raise InputError(f"curves: {', '.join(map(repr, bad))} not KaplanMeierResult")
    return {("" if k is None else str(k)): v for k, v in curves.items()}


def _draw_curve(ax, label, res, color, censor_marks, ci, show_median, digits,
                cut=np.inf, linestyle="-") -> None:
    keep = np.asarray(res.time) <= cut
    x = np.concatenate([[0.0], res.time[keep]])
    y = np.concatenate([[1.0], res.survival[keep]])
    name = label
    if show_median:
        text = "median " + median_label(res, digits)[0]
        name = f"{label}: {text}" if label else text
    ax.plot(x, y, drawstyle="steps-post", color=color, label=name or "_nolegend_",
            gid=f"km-curve:{label}", zorder=3, linestyle=linestyle)
    if censor_marks:
        cens = (np.asarray(res.censored) > 0) & keep
        ax.plot(res.time[cens], res.survival[cens], linestyle="none", marker="+",
                markersize=7, markeredgewidth=1.1, color=color, label="_nolegend_",
                gid=f"km-censor:{label}", zorder=4)
    if ci:
        at_one = np.concatenate([[True], np.asarray(res.survival)[keep] >= 1.0])
        lo = np.concatenate([[1.0], res.lower[keep]])
        hi = np.concatenate([[1.0], res.upper[keep]])
        lo = np.clip(np.where(np.isnan(lo) & at_one, 1.0, lo), 0.0, 1.0)
        hi = np.clip(np.where(np.isnan(hi) & at_one, 1.0, hi), 0.0, 1.0)
        ax.fill_between(x, lo, hi, step="post", color=color, alpha=0.15, linewidth=0,
                        gid=f"km-ci:{label}", label="_nolegend_", zorder=2)
    if show_median and np.isfinite(res.median) and res.median <= cut:
        m = res.median
        ax.plot([0.0, m, m], [0.5, 0.5, 0.0], linestyle=":", linewidth=0.9, color=color,
                alpha=0.8, gid=f"km-median:{label}", label="_nolegend_", zorder=1)
