"""Forest plots of hazard ratios, reproduced beside published (Ni et al. 2019, Table 3).

Table 3 of the paper gives Fine-Gray subdistribution hazard ratios (SHR) with
95% confidence intervals for predictors of original-site failure. A
reproduction is judged by putting our estimate next to the printed one, so
this figure draws, per covariate row, the reproduced estimate and interval
and (optionally) the published one just below it in another style, with both
printed as ``0.19 (0.08–0.43)`` in text columns at the right.

Input is any DataFrame with estimate / lower / upper columns, e.g.
``FineGrayResult.summary`` (``shr``, ``shr_lower``, ``shr_upper``, covariate
names in the index) or ``CoxResult`` summaries with other column names.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from failpattern.errors import InputError
from failpattern.plots._style import PALETTE, RC, format_ci, format_p_value

__all__ = ["plot_forest"]

_NICE = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0])
_OFFSET = 0.17  # vertical offset of the two series within a row
_STYLES = {"reproduced": dict(marker="o", color=PALETTE[0], mfc=PALETTE[0], ms=6),
           "published": dict(marker="D", color="0.35", mfc="white", ms=5.5)}


def plot_forest(frame: pd.DataFrame, *, estimate: str = "shr", lower: str = "shr_lower",
                upper: str = "shr_upper", label_column: str | None = None,
                published: pd.DataFrame | None = None, log_scale: bool = True, ax=None,
                title: str | None = None, reference_line: float | None = 1.0,
                xlabel: str | None = None, header: str = "SHR (95% CI)",
                digits: int = 2, n: str | None = None, events: str | None = None,
                p: str | None = None) -> Figure:
    """Estimates with confidence intervals, one row per covariate, optionally beside published ones.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per covariate, top to bottom in this order.
    estimate, lower, upper : str
        Columns of the estimate and its confidence limits (in ``frame`` and
        in ``published``).
    label_column : str, optional
        Column with the row labels; default the index.
    published : pandas.DataFrame, optional
        Published values with the same columns, labelled the same way (index
        or ``label_column``); matched to ``frame`` by label. Rows of ``frame``
        without a published value show ``—``.
    log_scale : bool
        Logarithmic x axis (ratios), ticks at 0.1, 0.2, 0.5, 1, 2, 5, ...
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes; the text columns then go in an inset right of it
        (leave about 1.8 inch per column). Default a new figure sized to the rows.
    title : str, optional
    reference_line : float or None
        x of the dashed no-effect line (None: none).
    xlabel : str, optional
        Default "Subdistribution hazard ratio" for ``estimate="shr"``, else the column name.
    header : str
        Heading of the text columns ("Reproduced" / "Published" are prefixed
        when ``published`` is given).
    digits : int
        Decimals in the text columns.
    n, events, p : str, optional
        Columns of ``frame`` with the number of patients, the number of events
        and the p-value of each row; each given one is printed as a text
        column (``N`` and ``Events`` left of the estimates, ``p`` right of
        them, as ``0.006`` / ``<0.001``). NaN prints ``—`` (``NA`` for p).

    Returns
    -------
    matplotlib.figure.Figure
        Artists carry gids: ``forest-est:<series>`` (markers),
        ``forest-ci:<series>`` (interval segments), ``forest-text:<series>``
        (one text per row), series ``reproduced`` or ``published``;
        ``forest-text:n``, ``forest-text:events``, ``forest-text:p`` and
        ``forest-header:<column>`` for the optional columns;
        ``reference-line``. The text columns are the Axes labelled ``"forest-table"``.

    Raises
    ------
    InputError
        Missing columns, duplicated labels, non-numeric values, published
        labels not in ``frame``, or (log scale) no positive value to draw.

    Notes
    -----
    Intervals reaching past the axis (infinite, or <= 0 on a log scale) are
    cut at the edge and marked with an arrowhead.
    """
    labels, ours = _values(frame, "frame", estimate, lower, upper, label_column)
    extra_cols = _extra_columns(frame, n=n, events=events, p=p)
    series = {"reproduced": ours}
    if published is not None:
        pub_labels, pub = _values(published, "published", estimate, lower, upper, label_column)
        extra = [lab for lab in pub_labels if lab not in labels]
        if extra:
            raise InputError(f"published: labels not in frame: {', '.join(map(repr, extra))}")
        series["published"] = pub.reindex(labels)
    with matplotlib.rc_context(RC):
        widths = _column_widths(extra_cols, len(series))
        fig, ax, tax = _axes(ax, len(labels), widths)
        lim = _limits(series.values(), log_scale, reference_line)
        rows = np.arange(len(labels), dtype=float)
        two = len(series) == 2
        handles = []
        for k, (name, vals) in enumerate(series.items()):
            y = rows + ((-_OFFSET if k == 0 else _OFFSET) if two else 0.0)
            handles.append(_draw_series(ax, name, vals, y, lim))
        if reference_line is not None:
            ax.axvline(reference_line, color="0.5", linestyle="--", linewidth=0.8, zorder=1,
                       gid="reference-line")
        _style_axes(ax, labels, lim, log_scale, xlabel or
                    ("Subdistribution hazard ratio" if estimate == "shr" else estimate), title)
        if two:
            ax.legend(handles, ["Reproduced", "Published"],
                      loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
                      handlelength=1.0, borderaxespad=0.3)
        _draw_table(tax, series, rows, header, digits, two, extra_cols, widths)
    return fig


#: Width (inch) of the optional text columns and of one estimate column.
_WIDTHS = {"n": 0.45, "events": 0.6, "p": 0.75, "estimate": 1.8}
_HEADS = {"n": "N", "events": "Events", "p": "p"}


def _extra_columns(frame, **columns) -> dict:
    """Optional text columns (name -> values as float), those given, checked."""
    out = {}
    if not isinstance(frame, pd.DataFrame):
        return out  # _values reports it
    for key, col in columns.items():
        if col is None:
            continue
        if col not in frame.columns:
            raise InputError(f"{key}: frame has no column {col!r}; has "
                             f"{', '.join(map(repr, frame.columns))}")
        try:
            out[key] = frame[col].astype(float).to_numpy()
        except (TypeError, ValueError) as err:
            raise InputError(f"{key}: column {col!r} must be numeric ({err})") from None
    return out


def _column_widths(extra_cols, n_series) -> list:
    """(kind, width in inch) of the text columns, left to right."""
    order = [k for k in ("n", "events") if k in extra_cols]
    order += [f"series{k}" for k in range(n_series)]
    order += ["p"] if "p" in extra_cols else []
    return [(k, _WIDTHS["estimate" if k.startswith("series") else k]) for k in order]


def _values(data, name, estimate, lower, upper, label_column):
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"{name}: expected a pandas DataFrame, got {type(data).__name__}")
    need = [c for c in (estimate, lower, upper, label_column) if c is not None]
    missing = [c for c in need if c not in data.columns]
    if missing:
        raise InputError(f"{name}: no column(s) {', '.join(map(repr, missing))}; has "
                         f"{', '.join(map(repr, data.columns))}")
    labels = [str(v) for v in (data.index if label_column is None else data[label_column])]
    dup = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dup:
        raise InputError(f"{name}: duplicated labels {', '.join(map(repr, dup))}")
    try:
        vals = data[[estimate, lower, upper]].astype(float)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name}: columns {estimate!r}, {lower!r}, {upper!r} must be "
                         f"numeric ({err})") from None
    vals.columns = ["est", "lo", "hi"]
    vals.index = labels
    return labels, vals


def _axes(ax, n: int, widths):
    table_w = sum(w for _, w in widths)  # 1.8 inch: room for "13.85 (1.26–113.85)"
    if ax is None:
        fig = Figure(figsize=(4.6 + table_w + 2.2, 0.42 * n + 1.4), layout="constrained")
        grid = fig.add_gridspec(1, 2, width_ratios=[4.6, table_w])
        ax = fig.add_subplot(grid[0])
        tax = fig.add_subplot(grid[1], sharey=ax)
    else:
        fig = ax.figure
        width_in = ax.get_window_extent().transformed(fig.dpi_scale_trans.inverted()).width
        tax = ax.inset_axes([1.02, 0.0, table_w / max(width_in, 1e-6), 1.0], sharey=ax)
    tax.set_label("forest-table")
    tax.set_axis_off()
    return fig, ax, tax


def _limits(all_vals, log_scale, reference_line) -> tuple[float, float]:
    vals = np.concatenate([v.to_numpy().ravel() for v in all_vals]
                          + [np.array([] if reference_line is None else [reference_line])])
    vals = vals[np.isfinite(vals) & ((vals > 0) if log_scale else True)]
    if vals.size == 0:
        raise InputError("frame: no finite (and, on a log scale, positive) value to draw")
    lo, hi = vals.min(), vals.max()
    if log_scale:
        lo, hi = (lo / 1.25, hi * 1.25) if hi > lo else (lo / 2, hi * 2)
    else:
        pad = 0.06 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.5
        lo, hi = lo - pad, hi + pad
    return float(lo), float(hi)


def _draw_series(ax, name, vals, y, lim):
    """Interval segments and markers of one series; returns the marker line."""
    style = _STYLES[name]
    lo_edge, hi_edge = lim
    ok = np.isfinite(vals["est"].to_numpy())
    lo, hi = vals["lo"].to_numpy(), vals["hi"].to_numpy()
    cut_lo, cut_hi = lo < lo_edge, hi > hi_edge  # NaN compares False: no arrow
    lo, hi = np.clip(lo, lo_edge, hi_edge), np.clip(hi, lo_edge, hi_edge)  # NaN stays NaN
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    ax.hlines(y[has_ci], lo[has_ci], hi[has_ci], color=style["color"], linewidth=1.4,
              gid=f"forest-ci:{name}", zorder=2)
    (marks,) = ax.plot(vals["est"].to_numpy()[ok], y[ok], linestyle="none", marker=style["marker"],
            color=style["color"], markerfacecolor=style["mfc"], markersize=style["ms"],
            markeredgewidth=1.2, gid=f"forest-est:{name}", zorder=3)
    for mask, x, marker in ((cut_lo, lo_edge, "<"), (cut_hi, hi_edge, ">")):
        if mask.any():
            ax.plot(np.full(mask.sum(), x), y[mask], linestyle="none", marker=marker,
                    color=style["color"], markersize=5, zorder=3, gid=f"forest-cut:{name}")
    return marks


def _style_axes(ax, labels, lim, log_scale, xlabel, title) -> None:
    """Log ticks at round ratios, rows top to bottom, labels left."""
    n = len(labels)
    if log_scale:
        ax.set_xscale("log")
        ticks = _NICE[(_NICE >= lim[0]) & (_NICE <= lim[1])]
        if ticks.size >= 2:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlim(*lim)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks(np.arange(n), labels)
    ax.tick_params(axis="y", length=0)
    for side in ("left", "top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, loc="left", pad=22)


def _draw_table(tax, series, rows, header, digits, two, extra_cols, widths) -> None:
    """One centred text column per series and optional column, headed, one entry per row."""
    tax.set_xlim(0.0, 1.0)
    total = sum(w for _, w in widths)
    edges = np.cumsum([0.0] + [w for _, w in widths]) / total
    centre = {kind: (a + b) / 2 for (kind, _), a, b in zip(widths, edges[:-1], edges[1:])}
    for kind, vals in extra_cols.items():
        x = centre[kind]
        tax.text(x, 1.0, ("\n" if two else "") + _HEADS[kind], transform=tax.transAxes,
                 ha="center", va="bottom", fontweight="bold", gid=f"forest-header:{kind}")
        for y, v in zip(rows, vals):
            if kind == "p":
                text = format_p_value(v)
            else:
                text = "—" if not np.isfinite(v) else f"{v:.0f}"
            tax.text(x, y, text, transform=tax.transData, ha="center", va="center",
                     color="black", gid=f"forest-text:{kind}")
    for k, (name, vals) in enumerate(series.items()):
        x = centre[f"series{k}"]
        head = f"{name.capitalize()}\n{header}" if two else header
        tax.text(x, 1.0, head, transform=tax.transAxes, ha="center", va="bottom",
                 fontweight="bold", gid=f"forest-header:{name}")
        for y, (est, lo, hi) in zip(rows, vals.itertuples(index=False)):
            if np.isfinite(est):
                text = format_ci(est, lo, hi, digits=digits, missing="NA")
            else:
                text = "—"  # no (published) value for this row
            tax.text(x, y, text, transform=tax.transData, ha="center", va="center",
                     color=_STYLES[name]["color"], gid=f"forest-text:{name}")
