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

import numpy as np
import pandas as pd

from failpattern.study.compare import NOT_TARGET, printed_parts
from failpattern.study.judge import kind_of
from failpattern.study.plan import NOT_FROM_DATA, mapping, settings_for

__all__ = ["Targets", "distances", "targets_for"]

#: Stay this many printed units inside the rounding half-unit, so that a value at
#: distance 0 does not sit on the rounding edge (where the last binary digit decides).
MARGIN = 0.02


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
            rows.append((r.id, part, kind_of(r.method, part), published, decimals, relation, 10.0 ** -decimals))
    table = pd.DataFrame(rows, columns=["id", "part", "kind", "published", "decimals", "relation", "unit"])
    return Targets(table)


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
        that could not be computed is 10 printed units off.
    """
    t = targets.table
    x = np.asarray(values, dtype=np.float64)
    pub = t["published"].to_numpy(float)
    unit = t["unit"].to_numpy(float)
    rel = t["relation"].to_numpy(object)
    off = (x - pub) / unit
    half = np.where(rel == "approx", 1.0, 0.5) - MARGIN
    d = np.maximum(np.abs(off) - half, 0.0)
    below = np.isin(rel, ("lt", "le"))
    above = np.isin(rel, ("gt", "ge"))
    d = np.where(below, np.maximum(off + MARGIN, 0.0), d)
    d = np.where(above, np.maximum(-off + MARGIN, 0.0), d)
    return np.where(np.isnan(x), 10.0, d)
