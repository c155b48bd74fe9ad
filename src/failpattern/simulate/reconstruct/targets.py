"""What a reconstruction aims at: every printed part the plan computes, and its distance in printed units.

Why this module exists: the reconstruction search needs one number per
candidate cohort that says how far it is from the paper, judged as
:mod:`failpattern.study.judge` judges (the printed precision), but over
thousands of candidates at once. :func:`targets_for` reads the targets from
the card once: one row per printed part (value, confidence limits, range ends)
of every number the analysis plan computes, leaving out design constants,
cited numbers, numbers the cohort format cannot give, and parts the paper
itself contradicts (their ``contradicted_by`` numbers are targeted instead: no
cohort can hit both). :func:`distances` then turns an array of reproduced
values, one row per candidate cohort, into distances in printed units: 0 when
the value prints as published (rounded half-up to the printed decimals; a
bound such as "< 0.001" holds), else how many printed units it is off beyond
the rounding half-unit. Adding a target is adding a number to the card.

The distance is a guide for the search; the verdict on the finished cohort
is the judge's (``tests`` check that a distance of 0, with a margin for the
rounding edge, is a match as printed).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from failpattern.study.compare import NOT_TARGET, printed_parts
from failpattern.study.judge import ALPHA, changed_conclusion, kind_of
from failpattern.study.plan import NOT_FROM_DATA, mapping, settings_for

__all__ = ["Targets", "conclusion_changes", "distances", "targets_for", "z_gap"]

#: Stay this many printed units inside the rounding half-unit, so that a value at
#: distance 0 does not sit on the rounding edge (where the last binary digit decides).
MARGIN = 0.02
#: Distance (printed units) of a value the plan could not compute (a median not reached, a
#: model that did not converge or has a covariate without events). It must exceed what a
#: computed value can be off, or the search prefers a cohort that gives no value at all
#: (a Fine-Gray fit with no event in a 5-patient group) to one that gives a value far from
#: the target: a p-value, a percentage or a median of this study is at most 1000 printed
#: units off (1 at 3 decimals, 100% or 100 months at 1 decimal).
NOT_COMPUTED = 1e4


@dataclass(frozen=True)
class Targets:
    """The printed parts a reconstruction aims at (see :func:`targets_for`).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per target: ``id``, ``part``, ``kind``, ``published``,
        ``decimals``, ``relation``, ``unit`` (one printed unit, 10^-decimals).
    """

    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)

    @property
    def keys(self) -> list[tuple[str, str]]:
        """(id, part) of each target, in order."""
        return list(zip(self.table["id"], self.table["part"]))

    @cached_property
    def columns(self) -> tuple[np.ndarray, ...]:
        """What :func:`distances` reads, as arrays: the published values, the printed units, the
        half-units a value may be off (less :data:`MARGIN`; an approximation allows one unit),
        and which targets are upper and which lower bounds."""
        t = self.table
        rel = t["relation"].to_numpy(object)
        return (t["published"].to_numpy(float), t["unit"].to_numpy(float),
                np.where(rel == "approx", 1.0, 0.5) - MARGIN, np.isin(rel, ("lt", "le")), np.isin(rel, ("gt", "ge")))

    def subset(self, keys) -> Targets:
        """The targets among ``keys`` ((id, part) pairs), in this object's order.

        Parameters
        ----------
        keys : iterable of tuple
            (id, part) pairs; pairs that are not targets are ignored.

        Returns
        -------
        Targets
        """
        want = set(map(tuple, keys))
        keep = [k in want for k in self.keys]
        return Targets(self.table[keep].reset_index(drop=True))

    def values_of(self, values: pd.DataFrame) -> np.ndarray:
        """The reproduced value of each target from a plan's ``values`` table (NaN if absent).

        Parameters
        ----------
        values : pandas.DataFrame
            ``PlanResult.values``: ``id`` and the part columns (``value``,
            ``ci_lower``, ``ci_upper``, ``range_min``, ``range_max``).

        Returns
        -------
        numpy.ndarray
            Shape ``(len(self),)``.
        """
        v = values.drop_duplicates("id").set_index("id")
        out = np.full(len(self), np.nan)
        for k, (id_, part) in enumerate(self.keys):
            if id_ in v.index:
                out[k] = float(v.at[id_, part])
        return out


def targets_for(card) -> Targets:
    """The targets of a reconstruction from ``card``.

    Parameters
    ----------
    card : StudyCard
        The study card.

    Returns
    -------
    Targets
        Every printed part of every card number the plan computes
        (:func:`failpattern.study.plan.mapping`), in card order, except design
        constants and cited numbers, numbers the cohort format cannot give
        (:data:`~failpattern.study.plan.NOT_FROM_DATA`) and parts the paper
        contradicts (``contradicted_by``).
    """
    computed = set(mapping(settings_for(card))["id"])
    rows = []
    for r in card.numbers.itertuples():
        if r.method in NOT_TARGET or r.id in NOT_FROM_DATA or r.id not in computed:
            continue
        number = card.get(r.id)
        for part, published, decimals, relation in printed_parts(r):
            if number.contradictions(part):
                continue
            rows.append((r.id, part, kind_of(r.method, part), published, decimals, relation, 10.0 ** -decimals,
                         _side(r.method, part, published, relation, decimals)))
    table = pd.DataFrame(rows, columns=["id", "part", "kind", "published", "decimals", "relation", "unit",
                                        "side"])
    return Targets(table)


def _side(method: str, part: str, published: float, relation: str, decimals: int) -> int:
    """Which side of its conclusion's threshold a point value is published on, as the judge reads it
    (:func:`~failpattern.study.judge.changed_conclusion`): +1 significant p-value or ratio above 1,
    -1 not significant or below 1, 0 no conclusion (not a p-value or ratio, or a bound that does
    not say). Read by probing the judge with a value on each side."""
    if part != "value":
        return 0
    low, high = (0.0, 0.999) if kind_of(method, part) == "p-value" else (0.5, 2.0)
    flips_low = changed_conclusion(low, published, method=method, relation=relation, decimals=decimals) != ""
    flips_high = changed_conclusion(high, published, method=method, relation=relation, decimals=decimals) != ""
    if kind_of(method, part) == "p-value":
        return 1 if flips_high and not flips_low else (-1 if flips_low and not flips_high else 0)
    return 1 if flips_low and not flips_high else (-1 if flips_high and not flips_low else 0)


def conclusion_changes(targets: Targets, values: np.ndarray) -> np.ndarray:
    """Which reproduced values change the paper's conclusion, as the judge flags them.

    Parameters
    ----------
    targets : Targets
        From :func:`targets_for`.
    values : array_like
        Reproduced values, shape ``(..., len(targets))``.

    Returns
    -------
    numpy.ndarray
        Booleans of the same shape: a p-value on the other side of 0.05 from the published one,
        a hazard ratio on the other side of 1 (exactly 1 counts as the other side, as for the
        judge); never a value that could not be computed.
    """
    t = targets.table
    x = np.asarray(values, dtype=np.float64)
    side = t["side"].to_numpy(np.int8)
    is_p = (t["kind"] == "p-value").to_numpy()
    now_p = np.where(x < ALPHA, 1, -1)
    now_ratio = np.where(x > 1.0, 1, -1)
    flip_ratio = ((now_ratio != side) | (x == 1.0)) & (x > 0)  # the judge reads no ratio <= 0
    return np.isfinite(x) & (side != 0) & np.where(is_p, now_p != side, flip_ratio)


def distances(targets: Targets, values: np.ndarray) -> np.ndarray:
    """Distance of each reproduced value from its printed target, in printed units.

    Parameters
    ----------
    targets : Targets
        From :func:`targets_for`.
    values : array_like
        Reproduced values, shape ``(..., len(targets))`` (a leading axis of
        candidate cohorts is usual). NaN (not computed) counts as far.

    Returns
    -------
    numpy.ndarray
        Same shape: 0 where the value prints as the paper prints it (with
        :data:`MARGIN` kept from the rounding edge), else the excess over the
        rounding half-unit (``|x - published| / unit - 0.5``), or for a bound
        (``< 0.001``) the excess beyond the bound, in printed units; an
        approximation ("approximately 66%") allows one printed unit. A value
        that could not be computed is :data:`NOT_COMPUTED` printed units off.
    """
    pub, unit, half, below, above = targets.columns
    x = np.asarray(values, dtype=np.float64)
    off = (x - pub) / unit
    d = np.maximum(np.abs(off) - half, 0.0)
    d = np.where(below, np.maximum(off + MARGIN, 0.0), d)
    d = np.where(above, np.maximum(-off + MARGIN, 0.0), d)
    return np.where(np.isnan(x), NOT_COMPUTED, d)


def z_gap(targets: Targets, values: np.ndarray) -> np.ndarray:
    """How far each reproduced p-value is from its printed one on the normal scale, a guide for the search.

    A distance in printed units flattens far from the target (log1p of hundreds of units
    barely changes when a p-value moves from 0.4 to 0.2), so a search guided by it alone cannot
    tell a p-value coming closer from one going astray. On the scale of the two-sided normal
    deviate ``z = Phi^-1(1 - p / 2)`` a step means the same everywhere: one unit is the way from
    p = 0.32 to 0.05, or from 0.05 to 0.003.

    Parameters
    ----------
    targets : Targets
        What the search aims at (:func:`targets_for`).
    values : array_like
        One row of reproduced values per candidate cohort, ``(..., len(targets))``.

    Returns
    -------
    numpy.ndarray
        Same shape: ``|z(reproduced) - z(published)|`` for the point values of p-value targets
        printed as a value (not a bound), 0 elsewhere and where the value prints as published
        or could not be computed (:func:`distances` counts those).
    """
    from scipy.special import ndtri

    t = targets.table
    x = np.asarray(values, dtype=np.float64)
    use = ((t["kind"] == "p-value") & (t["part"] == "value") & (t["relation"] == "eq")).to_numpy()
    pub = np.clip(t["published"].to_numpy(float), 1e-12, 1.0)
    z = lambda p: ndtri(1.0 - np.clip(p, 1e-12, 1.0) / 2.0)  # noqa: E731
    gap = np.abs(z(np.where(np.isnan(x), 1.0, x)) - z(pub))
    return np.where(use & np.isfinite(x) & (distances(targets, x) > 0), gap, 0.0)
