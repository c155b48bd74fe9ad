"""Cumulative incidence of competing failure patterns, as Ni et al. 2019, Fig. 2.

Fig. 2 of the paper shows the cumulative incidence of any progression and of
each pattern of first failure (OF, DF, ODF). Drawn here from a
:class:`~failpattern.stats.cif.CumulativeIncidenceResult` (Aalen-Johansen,
matched to ``cmprsk::cuminc``): each cause's curve is ``(0, 0)``, its jumps
(``result.table``), and a flat end at the group's last observed time, as a
right-continuous step. "Any progression" (``add_total=True``) is the sum of
every cause's incidence, which equals 1 − KM of the time to the first failure
of any kind.

For teaching, ``compare_one_minus_km`` overlays 1 − KM curves dashed: 1 − KM
of one cause with the other causes censored overstates that cause's
incidence, which is why the paper uses competing-risks methods.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from failpattern.errors import InputError
from failpattern.plots._style import RC, colors_for, format_p, p_of
from failpattern.plots.km import _axes, _finish_axes, _ticks, draw_risk_table, number_at_risk
from failpattern.stats.cif import CumulativeIncidenceResult
from failpattern.stats.km import KaplanMeierResult

__all__ = ["plot_cumulative_incidence"]


def plot_cumulative_incidence(result: CumulativeIncidenceResult, *, causes=None, labels=None,
                              group=None, ax=None, risk_table=False, risk_times=None,
                              xlabel: str = "Months", ylabel: str = "Cumulative incidence",
                              title: str | None = None, p_value=None, add_total: bool = False,
                              total_label: str = "Any progression", stacked: bool = False,
                              compare_one_minus_km=None, colors=None, ci: bool = False,
                              gray_p=None) -> Figure:
    """Step curves of the cumulative incidence of each cause (one group).

    Parameters
    ----------
    result : CumulativeIncidenceResult
        From :func:`~failpattern.stats.cif.cumulative_incidence`.
    causes : sequence of int, optional
        Causes to draw, in this order; default all of ``result.causes``.
    labels : Mapping of int to str, optional
        Legend names of the causes, e.g. ``{1: "OF", 2: "DF", 3: "ODF"}``;
        default ``"Cause <code>"``.
    group : label, optional
        The group to draw; required when ``result`` has groups.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (see :func:`~failpattern.plots.plot_km` for the
        room a table needs); default a new figure.
    risk_table : bool or KaplanMeierResult
        Print the number at risk under the plot. The incidence result does not
        carry censoring counts, so pass a KaplanMeierResult of the same
        patients (any event coding: the number at risk depends only on the
        times), or True to use ``compare_one_minus_km`` when that is one result.
    risk_times : sequence of float, optional
        x ticks and table columns; default round ticks past the last time.
    xlabel, ylabel, title : str
    p_value : float or GrayTestResult, optional
        Printed at the upper left as ``Gray's test p = 0.006`` (``p < 0.001``).
    add_total : bool
        Also draw the sum over *all* causes of ``result`` (whatever ``causes``
        selects) as a thick black line named ``total_label``.
    total_label : str
    stacked : bool
        Stack the selected causes (bands summing to their total) instead of
        overlaying their curves.
    compare_one_minus_km : KaplanMeierResult or Mapping of str to KaplanMeierResult
        Dashed 1 − KM curves (legend ``1 − KM`` or the mapping's labels).
    colors : sequence or Mapping, optional
        Colours of the causes, in order or by cause code.
    ci : bool
        Shade each cause's pointwise confidence band (``result.lower`` and
        ``result.upper``, log(-log) limits at ``result.conf_level``) as a step
        like its curve, in the cause's colour, light and with a hatch pattern
        of its own per cause (``///``, ``\\\\\\``, ``...``, ...) so that
        overlapping bands stay apart in greyscale print; one legend entry
        ``95% pointwise CI`` explains the shading. Where the limits are
        undefined (an incidence of 1 with a positive variance) the band is the
        curve. No band for ``add_total`` (the result has no variance of the
        sum); not with ``stacked=True``.
    gray_p : float or GrayTestResult, optional
        Same as ``p_value`` (the name the report uses): Gray's test p-value,
        printed at the upper left as ``Gray's test p = 0.012``. Give one of
        the two, not both.

    Returns
    -------
    matplotlib.figure.Figure
        Artists carry gids: ``cif:<cause>``, ``cif-band:<cause>`` (stacked),
        ``cif-ci:<label>`` (``ci=True``; ``<label>`` is the cause's legend
        name, e.g. ``cif-ci:OF`` or ``cif-ci:Cause 1``), ``cif-total``,
        ``one-minus-km:<label>``, ``p-value``; the table is the Axes labelled
        ``"risk-table"``.

    Raises
    ------
    InputError
        Not a CumulativeIncidenceResult, unknown cause or group, a missing
        group, ``risk_table=True`` without one KaplanMeierResult to count from,
        bad ``colors``, ``labels``, ``p_value`` or ``gray_p``, both ``p_value``
        and ``gray_p``, or ``ci=True`` with ``stacked=True``.
    """
    if not isinstance(result, CumulativeIncidenceResult):
        raise InputError(f"result: expected a CumulativeIncidenceResult, got "
                         f"{type(result).__name__}")
    causes = list(result.causes if causes is None else causes)
    for c in causes:
        result.at(0.0, c, group)  # raises InputError for an unknown cause or group
    names = _cause_labels(causes, labels)
    palette = colors_for(causes, colors)
    km = _one_minus_km(compare_one_minus_km)
    counts_from = _risk_source(risk_table, km)
    if p_value is not None and gray_p is not None:
        raise InputError("gray_p: give the p-value as gray_p or as p_value, not both")
    p = p_of(p_value) if gray_p is None else p_of(gray_p, "gray_p")
    if ci and stacked:
        raise InputError("ci: pointwise bands belong to each cause's own curve; they are "
                         "not drawn on stacked bands (use stacked=False)")
    g = 0 if result.groups is None else list(result.groups).index(group)
    last = float(result.last_time[g])
    ticks = _ticks(last, risk_times)
    with matplotlib.rc_context(RC):
        # stacked: the legend goes right of the plot, so the new figure is wider
        fig, ax, rax = _axes(ax, 1 if counts_from is not None else 0, 8.2 if stacked else 6.4)
        if stacked:
            _draw_stacked(ax, result, causes, group, last, names, palette)
        else:
            for c, name, color in zip(causes, names, palette):
                ax.plot(*_steps(result, c, group, last), drawstyle="steps-post", color=color,
                        label=name, gid=f"cif:{c}", zorder=3)
            if ci:
                _draw_bands(ax, result, causes, group, last, names, palette)
        if add_total:
            x, y = _total(result, list(result.causes), group, last)
            ax.plot(x, y, drawstyle="steps-post", color="black", linewidth=2.2,
                    label=total_label, gid="cif-total", zorder=4)
        for label, res in km.items():
            ax.plot(np.concatenate([[0.0], res.time]), 1.0 - np.concatenate([[1.0], res.survival]),
                    drawstyle="steps-post", linestyle="--", linewidth=1.2, color="0.35",
                    label=label, gid=f"one-minus-km:{label}", zorder=2)
        _finish_axes(ax, ticks, last, xlabel, ylabel, title,
                     None if p is None else f"Gray's test {format_p(p)}", p_top=True)
        if stacked:  # the bands fill the lower right: keep the legend off them
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), handlelength=1.8)
        elif p is None:
            ax.legend(loc="best", handlelength=1.8)
        else:  # keep the legend below the p-value text in the upper left corner
            ax.legend(loc="best", bbox_to_anchor=(0.0, 0.0, 1.0, 0.9), handlelength=1.8)
        if rax is not None:
            label = "All" if group is None else str(group)
            draw_risk_table(rax, ticks, [(label, "black", number_at_risk(counts_from, ticks))])
    return fig


def _cause_labels(causes, labels) -> list[str]:
    if labels is None:
        return [f"Cause {c}" for c in causes]
    if not isinstance(labels, Mapping):
        raise InputError(f"labels: expected a mapping cause -> name, got {type(labels).__name__}")
    return [str(labels.get(c, f"Cause {c}")) for c in causes]


def _one_minus_km(compare) -> dict:
    if compare is None:
        return {}
    if isinstance(compare, KaplanMeierResult):
        return {"1 − KM": compare}
    if isinstance(compare, Mapping) and all(isinstance(v, KaplanMeierResult)
                                            for v in compare.values()):
        return {str(k): v for k, v in compare.items()}
    raise InputError("compare_one_minus_km: expected a KaplanMeierResult or a mapping "
                     f"label -> KaplanMeierResult, got {type(compare).__name__}")


def _risk_source(risk_table, km: dict):
    if risk_table is False or risk_table is None:
        return None
    if isinstance(risk_table, KaplanMeierResult):
        return risk_table
    if risk_table is True and len(km) == 1:
        return next(iter(km.values()))
    raise InputError("risk_table: a CumulativeIncidenceResult has no censoring counts; pass "
                     "a KaplanMeierResult of the same patients (risk_table=km) or one "
                     "compare_one_minus_km result with risk_table=True")


def _steps(result, cause, group, last: float) -> tuple[np.ndarray, np.ndarray]:
    """(0, 0), the jumps of ``cause`` in ``group``, and a flat end at ``last``."""
    tab = result.table
    in_group = tab["group"].isna() if result.groups is None else tab["group"] == group
    rows = tab[in_group & (tab["cause"] == cause)]
    t, f = rows["time"].to_numpy(float), rows["cif"].to_numpy(float)
    end = f[-1] if f.size else 0.0
    return np.concatenate([[0.0], t, [last]]), np.concatenate([[0.0], f, [end]])


def _grid(result, causes, group, last: float) -> np.ndarray:
    """0, every jump time of ``causes`` in ``group``, and ``last``, sorted."""
    return np.unique(np.concatenate([_steps(result, c, group, last)[0] for c in causes]))


def _total(result, causes, group, last: float) -> tuple[np.ndarray, np.ndarray]:
    x = _grid(result, causes, group, last)
    return x, np.sum([result.at(x, c, group) for c in causes], axis=0)


_HATCHES = ("///", "\\\\\\", "...", "xx", "||", "--", "++", "oo")
_BAND_ALPHA = (0.16, 0.12, 0.20, 0.10, 0.14, 0.18, 0.08, 0.22)


def _draw_bands(ax, result, causes, group, last, names, palette) -> None:
    """Pointwise limits of each cause as a hatched step band under its curve."""
    for i, (c, name, color) in enumerate(zip(causes, names, palette)):
        x, f = _steps(result, c, group, last)
        lo, hi = result.limits_at(x, c, group)
        lo = np.clip(np.where(np.isnan(lo), f, lo), 0.0, 1.0)  # undefined at F = 1: the curve
        hi = np.clip(np.where(np.isnan(hi), f, hi), 0.0, 1.0)
        rgb = to_rgb(color)
        ax.fill_between(x, lo, hi, step="post", facecolor=(*rgb, _BAND_ALPHA[i % 8]),
                        edgecolor=(*rgb, 0.45), hatch=_HATCHES[i % 8], linewidth=0,
                        label="_nolegend_", gid=f"cif-ci:{name}", zorder=2)
    level = f"{100 * result.conf_level:.4g}% pointwise CI"
    ax.fill_between([], [], [], facecolor=(0.5, 0.5, 0.5, 0.16), edgecolor=(0.3, 0.3, 0.3, 0.6),
                    hatch="///", linewidth=0, label=level, gid="cif-ci-key")


def _draw_stacked(ax, result, causes, group, last, names, palette) -> None:
    x = _grid(result, causes, group, last)
    below = np.zeros_like(x)
    for c, name, color in zip(causes, names, palette):
        top = below + result.at(x, c, group)
        ax.fill_between(x, below, top, step="post", color=color, alpha=0.45, linewidth=0,
                        label=name, gid=f"cif-band:{c}")
        ax.plot(x, top, drawstyle="steps-post", color=color, linewidth=1.0,
                label="_nolegend_", gid=f"cif:{c}")
        below = top
