"""The methods audit's figure: how often a treatment without effect looks effective, analysed two ways.

Why: the type I error of the naive comparison (treatment fixed at time zero) against the
time-dependent one is the whole argument of an immortal-time audit in one picture. The
figure takes :class:`failpattern.study.audit.NullStudy` (its replicates' p-values) and returns
a :class:`matplotlib.figure.Figure` made without pyplot: on the left the share of simulated
cohorts with p below alpha for each analysis, with its 95% interval and alpha marked; on the
right the p-values' empirical distribution against the uniform one a valid test gives.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from failpattern.errors import InputError
from failpattern.plots._style import LINESTYLES, PALETTE, RC

__all__ = ["plot_type_one_error"]


def plot_type_one_error(null, *, title: str | None = None) -> Figure:
    """Type I error of the naive and the time-dependent analyses under a simulated null.

    Parameters
    ----------
    null : NullStudy
        From :func:`failpattern.study.audit.immortal_time_null`.
    title : str, optional
        Figure title (a default says what was simulated).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    InputError
        ``null`` is not a NullStudy.
    """
    from failpattern.study.audit import NullStudy

    if not isinstance(null, NullStudy):
        raise InputError(f"null: expected a NullStudy (immortal_time_null), got {type(null).__name__}")
    s = null.summary
    labels = ["Naive:\ntreated from time zero", "Time-dependent:\ntreated from the start"]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(8.0, 3.2))
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1.0]})
        y = np.array([1.0, 0.0])
        left.barh(y, s["rejections"], color=[PALETTE[1], PALETTE[0]], height=0.55)
        left.errorbar(s["rejections"], y, xerr=[s["rejections"] - s["lower"], s["upper"] - s["rejections"]],
                      fmt="none", ecolor="0.2", capsize=3, lw=1)
        for yi, r in zip(y, s.itertuples()):
            left.text(r.upper + 0.01, yi, f"{100 * r.rejections:.1f}%", va="center", fontsize=9)
        left.axvline(null.alpha, color="0.3", lw=1, ls=":")
        left.set_yticks(y, labels)
        left.set_xlim(0, max(0.3, float(s["upper"].max()) + 0.08))
        left.set_xlabel(f"cohorts with p < {null.alpha:g} (95% CI)")
        grid = np.linspace(0, 1, 201)
        for k, (col, name) in enumerate((("naive_p", "Naive"), ("td_p", "Time-dependent"))):
            p = np.sort(null.replicates[col].dropna().to_numpy())
            right.plot(grid, np.searchsorted(p, grid, side="right") / max(p.size, 1), drawstyle="steps-post",
                       color=PALETTE[1 - k], ls=LINESTYLES[k], label=name)
        right.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls=":", label="valid test (uniform)")
        right.set_xlim(0, 1)
        right.set_ylim(0, 1)
        right.set_xlabel("p")
        right.set_ylabel("share of cohorts with p-value <= p")
        right.legend(loc="lower right")
        n = len(null.replicates)
        fig.suptitle(title or (f"A treatment with no effect, {n} simulated cohorts: planned for "
                               f"{100 * null.share:.0f}% of patients within {null.horizon:g} months, "
                               "counted only if begun"), fontsize=10)
        fig.tight_layout()
    return fig
