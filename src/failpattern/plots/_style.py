"""Shared look of failpattern figures: colours, rcParams, number formats.

Kept in one place so the Kaplan-Meier, cumulative incidence and forest
figures of a report look alike. The palette is Okabe & Ito's (2008),
distinguishable with the common colour-vision deficiencies and in greyscale
print; numbers are printed the way Ni et al. 2019 print them: ``11.5
(9.8–13.2)`` with an en dash, ``p = 0.006``, ``p < 0.001``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from failpattern.errors import InputError

__all__ = ["LINESTYLES", "PALETTE", "RC", "colors_for", "format_ci", "format_p", "p_of"]

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")
#: Line styles of successive curves: blue and vermilion print as nearly the same grey,
#: so curves are also told apart by dashes in black-and-white print.
LINESTYLES = ("-", "--", "-.", ":")

RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.6,
    "xtick.direction": "out",
    "ytick.direction": "out",
    "svg.fonttype": "none",      # keep text as text in SVG (editable, searchable)
    "svg.hashsalt": "failpattern",  # stable element ids: SVG output is reproducible
}


def colors_for(labels: Sequence, colors) -> list:
    """One colour per label: from ``colors`` (a sequence or a label → colour mapping)
    or the palette, cycling."""
    if colors is None:
        return [PALETTE[i % len(PALETTE)] for i in range(len(labels))]
    if isinstance(colors, Mapping):
        missing = [lab for lab in labels if lab not in colors]
        if missing:
            raise InputError(f"colors: no colour for {', '.join(map(repr, missing))}")
        return [colors[lab] for lab in labels]
    if isinstance(colors, str):
        colors = [colors]
    colors = list(colors)
    if len(colors) < len(labels):
        raise InputError(f"colors: {len(colors)} colour(s) for {len(labels)} curves")
    return colors[:len(labels)]


def _num(value: float, digits: int, missing: str) -> str:
    if value is None or math.isnan(value):
        return missing
    return ("∞" if value > 0 else "−∞") if math.isinf(value) else f"{value:.{digits}f}"


def format_ci(estimate: float, lower: float, upper: float, digits: int = 1,
              missing: str = "NR") -> str:
    """``"11.5 (9.8–13.2)"``; NaN prints as ``missing`` (default ``NR``, not
    reached, as for a median), an infinite limit as ``∞``."""
    return (f"{_num(estimate, digits, missing)} ({_num(lower, digits, missing)}–"
            f"{_num(upper, digits, missing)})")


def p_of(p_value, name: str = "p_value") -> float | None:
    """The p-value of a float or of a test result with a ``p_value`` attribute."""
    if p_value is None:
        return None
    p = getattr(p_value, "p_value", p_value)
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number in [0, 1] or a test result with "
                         f"p_value, got {p_value!r}") from None
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise InputError(f"{name}: must be in [0, 1], got {p!r}")
    return p


def format_p_value(p: float) -> str:
    """A p-value for a table column: ``"0.006"``, ``"<0.001"``, ``">0.999"``, ``"NA"`` for NaN."""
    if p is None or math.isnan(p):
        return "NA"
    return format_p(p).removeprefix("p = ").replace("p ", "").replace(" ", "")


def format_p(p: float) -> str:
    """``"p = 0.006"``, ``"p < 0.001"``, ``"p > 0.999"`` (three decimals otherwise)."""
    if p < 0.001:
        return "p < 0.001"
    if p > 0.999:
        return "p > 0.999"
    return f"p = {p:.3f}"
