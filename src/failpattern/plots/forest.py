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
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from failpattern.errors import InputError
from failpattern.plots._style import PALETTE, RC, format_ci, format_p_value

__all__ = ["plot_forest"]

_NICE = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0])
_OFFSET = 0.17  # vertical offset of the two series within a row
_STYLES = {"reproduced": dict(marker="o", color=PALETTE[0], mfc=PALETTE[0], ms=5),
           "published": dict(marker="D", color="0.35", mfc="white", ms=4.5)}
#: Font size (pt) of every text of the figure: a journal prints a full-width figure 7 in
#: (178 mm) wide, and its text must stay >= 7 pt there.
FONT_SIZE = 7.5
_GAP = 0.1  # inch between two text columns (and after the last)
_ROW = 0.34  # inch per covariate row
_PLOT = 2.2  # inch of plot area aimed at (natural size, or when labels must wrap)
_MIN_PLOT = 1.6  # inch: the plot area is never narrower
_PAD = 0.3  # inch of margins, tick padding and column spacing of the constrained layout


def plot_forest(frame: pd.DataFrame, *, estimate: str = "shr", lower: str = "shr_lower",
                upper: str = "shr_upper", label_column: str | None = None,
                published: pd.DataFrame | None = None, log_scale: bool = True, ax=None,
                title: str | None = None, reference_line: float | None = 1.0,
                xlabel: str | None = None, header: str = "SHR (95% CI)",
                digits: int = 2, n: str | None = None, events: str | None = None,
                p: str | None = None, width: float | None = 7.0,
                fontsize: float = FONT_SIZE) -> Figure:
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
        (as wide as the columns' text needs). Default a new figure ``width`` wide
        and as tall as the rows need.
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
    width : float or None
        Width of the new figure in inches (default 7, a journal's full page width, so it
        prints at its natural size with text of ``fontsize``); the text columns are as
        wide as their widest text, row labels too long for the room left are wrapped
        onto two lines at a space, and the plot area gets the rest. None: as wide as
        the labels, the columns and a plot area of 2.2 inch need. Ignored with ``ax``.
    fontsize : float
        Size (pt) of all text: labels, ticks, legend and text columns (default 7.5).

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
    with matplotlib.rc_context(_rc(fontsize)):
        columns = _column_texts(series, header, digits, len(series) == 2, extra_cols)
        widths = [(kind, max(_text_width([head], fontsize, bold=True),
                             _text_width(texts, fontsize)) + _GAP)
                  for kind, (head, texts, _) in columns.items()]
        fig, ax, tax, shown, plot_w = _axes(ax, labels, widths, width, fontsize, title)
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
        _style_axes(ax, shown, lim, plot_w, fontsize, log_scale, xlabel or
                    ("Subdistribution hazard ratio" if estimate == "shr" else estimate), title)
        if two:
            ax.legend(handles, ["Reproduced", "Published"],
                      loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
                      handlelength=1.0, borderaxespad=0.3)
        _draw_table(tax, columns, rows, widths)
    return fig


_HEADS = {"n": "N", "events": "Events", "p": "p"}


def _rc(fontsize: float) -> dict:
    """The shared style with every text at ``fontsize`` (the title a point larger)."""
    return {**RC, "font.size": fontsize, "axes.titlesize": fontsize + 1,
            "axes.labelsize": fontsize, "xtick.labelsize": fontsize,
            "ytick.labelsize": fontsize, "legend.fontsize": fontsize}


_TO_PATH = TextToPath()


def _text_width(texts, fontsize: float, bold: bool = False) -> float:
    """Width (inch) of the widest line of ``texts`` at ``fontsize`` (bold too: headers)."""
    prop = FontProperties(size=fontsize, weight="bold" if bold else "normal")
    width = 0.0
    for text in texts:
        for line in str(text).split("\n"):
            if line:
                width = max(width, _TO_PATH.get_text_width_height_descent(line, prop, ismath=False)[0])
    return width / 72.0


def _wrap(label: str, room: float, fontsize: float) -> str:
    """``label`` on two lines, broken at the space that makes the longer line shortest,
    when it is wider than ``room`` inch; else (or with no space) as it is."""
    words = label.split(" ")
    if len(words) < 2 or _text_width([label], fontsize) <= room:
        return label
    splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
    splits = [(a, b) for a, b in splits if a.strip() and b.strip()]
    if not splits:
        return label
    first, rest = min(splits, key=lambda ab: _text_width(ab, fontsize))
    return f"{first}\n{rest}"


def _column_texts(series, header, digits, two, extra_cols) -> dict:
    """Text columns left to right: kind -> (heading, one text per row, colour)."""
    out = {}
    for kind in ("n", "events"):
        if kind in extra_cols:
            out[kind] = (("\n" if two else "") + _HEADS[kind],
                         ["—" if not np.isfinite(v) else f"{v:.0f}" for v in extra_cols[kind]],
                         "black")
    for name, vals in series.items():
        texts = [format_ci(est, lo, hi, digits=digits, missing="NA") if np.isfinite(est)
                 else "—"  # no (published) value for this row
                 for est, lo, hi in vals.itertuples(index=False)]
        out[name] = (f"{name.capitalize()}\n{header}" if two else header, texts,
                     _STYLES[name]["color"])
    if "p" in extra_cols:
        out["p"] = (("\n" if two else "") + _HEADS["p"],
                    [format_p_value(v) for v in extra_cols["p"]], "black")
    return out


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


def _axes(ax, labels, widths, width, fontsize, title):
    """Plot Axes, text-column Axes and the row labels as shown (wrapped in a new figure)."""
    table_w = sum(w for _, w in widths)
    n = len(labels)
    if ax is None:
        if width is not None:  # wrap the labels wider than the room beside a _PLOT inch plot
            two_lines = _text_width([_wrap(lab, 0.0, fontsize) for lab in labels], fontsize)
            room = max(width - table_w - _PLOT - _PAD, two_lines)
            labels = [_wrap(lab, room, fontsize) for lab in labels]
        label_w = _text_width(labels, fontsize)
        plot_w = _PLOT if width is None else max(width - table_w - label_w - _PAD, _MIN_PLOT)
        fig_w = label_w + plot_w + table_w + _PAD if width is None else width
        lines = max((lab.count("\n") + 1 for lab in labels), default=1)
        row = max(_ROW, lines * fontsize * 1.25 / 72 + 0.06)
        top = 0.6 + (0.3 if title else 0.0)  # headings (two lines) and legend, title
        fig = Figure(figsize=(fig_w, row * n + top + 0.55), layout="constrained")
        grid = fig.add_gridspec(1, 2, width_ratios=[plot_w, table_w], wspace=0.0)
        ax = fig.add_subplot(grid[0])
        tax = fig.add_subplot(grid[1], sharey=ax)
    else:
        fig = ax.figure
        width_in = ax.get_window_extent().transformed(fig.dpi_scale_trans.inverted()).width
        plot_w = width_in
        tax = ax.inset_axes([1.02, 0.0, table_w / max(width_in, 1e-6), 1.0], sharey=ax)
    tax.set_label("forest-table")
    tax.set_axis_off()
    return fig, ax, tax, labels, plot_w


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


def _log_ticks(lim, plot_w: float, fontsize: float) -> np.ndarray:
    """Round ratios within ``lim`` whose labels keep 0.05 inch apart on a ``plot_w`` inch axis:
    powers of ten first, then 5s, then 2s, each only where it has room."""
    ticks = _NICE[(_NICE >= lim[0]) & (_NICE <= lim[1])]
    per_decade = plot_w / max(np.log10(lim[1] / lim[0]), 1e-9)
    rank = {1: 0, 5: 1, 2: 2}
    lead = [int(round(t / 10.0 ** np.floor(np.log10(t) + 1e-9))) for t in ticks]
    kept: list = []
    for _, t in sorted(zip([rank.get(d, 3) for d in lead], ticks)):
        w = _text_width([f"{t:g}"], fontsize)
        if all(abs(np.log10(t / k)) * per_decade >= (w + _text_width([f"{k:g}"], fontsize)) / 2 + 0.05
               for k in kept):
            kept.append(t)
    return np.array(sorted(kept))


def _style_axes(ax, labels, lim, plot_w, fontsize, log_scale, xlabel, title) -> None:
    """Log ticks at round ratios, rows top to bottom, labels left."""
    n = len(labels)
    if log_scale:
        ax.set_xscale("log")
        ticks = _log_ticks(lim, plot_w, fontsize)
        if ticks.size >= 2:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlim(*lim)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks(np.arange(n), labels)
    ax.tick_params(axis="y", length=0)
    ax.tick_params(axis="both", labelsize=fontsize)  # also in a caller's Axes made before
    for side in ("left", "top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlabel, fontsize=fontsize)
    if title:
        ax.set_title(title, loc="left", pad=2.6 * fontsize, fontsize=fontsize + 1)


def _draw_table(tax, columns, rows, widths) -> None:
    """One centred text column per series and optional column, headed, one entry per row."""
    tax.set_xlim(0.0, 1.0)
    total = sum(w for _, w in widths)
    edges = np.cumsum([0.0] + [w for _, w in widths]) / total
    centre = {kind: (a + b) / 2 for (kind, _), a, b in zip(widths, edges[:-1], edges[1:])}
    for kind, (head, texts, color) in columns.items():
        x = centre[kind]
        tax.text(x, 1.0, head, transform=tax.transAxes, ha="center", va="bottom",
                 fontweight="bold", gid=f"forest-header:{kind}")
        for y, text in zip(rows, texts):
            tax.text(x, y, text, transform=tax.transData, ha="center", va="center",
                     color=color, gid=f"forest-text:{kind}")
