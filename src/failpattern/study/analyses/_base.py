"""Shared machinery of the plan: the context, patient selection and the paper's groupings.

Why this module exists: every analysis of the plan needs the same three things.

* Arrays, extracted once from the validated cohort (``Cohort.data``), so the
  statistics kernels run on plain numpy arrays rather than going through
  pandas and the public wrappers' validation each time (the plan's cohort is
  already validated by :func:`~failpattern.cohort.load_cohort`).
* Patient selection that agrees with :meth:`Cohort.rows_for`. ``rows_for``
  builds DataFrames and reason strings (milliseconds per call), so
  :meth:`Context.select` computes the same inclusion mask with numpy and
  records ``(analysis key, columns)``; the result's ``exclusions`` then calls
  ``rows_for`` lazily for the reasons. ``tests/test_plan.py`` checks that both
  select the same patients. Patients whose value cannot be put in the paper's
  two groups (T stage ``TX``, N stage ``NX``, T0) are excluded too, with their
  own reason.
* The paper's dichotomisations (Tables 1 and 3, the Cox model of PFS1) are
  :data:`failpattern.study.design.BINARIES`, with the cut-offs read from the
  study card; re-exported here for the analyses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from failpattern.cohort.model import Exclusion
from failpattern.cohort.schema import PROGRESSION_PATTERNS, analysis, column
from failpattern.study.design import BINARIES, Binary, Settings

__all__ = ["BINARIES", "ROW_FIELDS", "Binary", "Context", "Selection", "Settings", "group_without_events", "lacking"]

#: Columns of :attr:`PlanResult.values`.
ROW_FIELDS = ("id", "value", "ci_lower", "ci_upper", "range_min", "range_max", "analysis", "method", "convention", "n_used",
              "n_excluded", "note")

_NAN = float("nan")


def lacking(missing) -> str:
    """Why an analysis cannot run, from :meth:`Cohort.missing_for`'s list (``"one of a, b"`` items kept apart).

    ``the cohort has no column prior_rt``; ``the cohort has none of the columns initial_failure_location,
    fail_lung, fail_liver (or 6 others): it needs at least one``.
    """
    missing = list(dict.fromkeys(missing))
    plain = [m for m in missing if not m.startswith("one of ")]
    parts = []
    if plain:
        parts.append(f"the cohort has no column{'s' if len(plain) > 1 else ''} {', '.join(plain)}")
    for m in missing:
        if m.startswith("one of "):
            cols = m[len("one of "):].split(", ")
            shown = ", ".join(cols[:3]) + (f" (or {len(cols) - 3} others)" if len(cols) > 3 else "")
            parts.append(f"{'it' if plain else 'the cohort'} has none of the columns {shown}: it needs at "
                         "least one")
    return "; ".join(parts)


def group_without_events(binaries, X: np.ndarray, events: np.ndarray) -> str:
    """The first level of a 0/1 covariate with no event among its patients.

    A model with such a covariate has no finite maximum (monotone likelihood):
    its ratio runs off to 0 or infinity, so the plan reports it as not run,
    with this level in the reason, instead of fitting it.

    Parameters
    ----------
    binaries : sequence of Binary
        The covariates, in the columns of ``X``.
    X : ndarray
        0/1 design matrix (patients x covariates).
    events : ndarray
        Per patient, nonzero for the event the model counts (a PFS1 event, an OF).

    Returns
    -------
    str
        ``'<level>' of <grouping label>``, or empty when every level has an event.
    """
    hit = events != 0
    for j, b in enumerate(binaries):
        ones = X[:, j] == 1
        for level, members in zip(b.levels, (ones, ~ones)):
            if not np.any(hit & members):
                return f"'{level}' of {b.label}"
    return ""


@dataclass(frozen=True)
class Selection:
    """The patients one computation uses.

    Attributes
    ----------
    mask : ndarray of bool
        Included patients.
    n_excluded : int
        Patients of the analysis's population left out (empty or ungroupable values).
    n : int
        Included patients (computed from ``mask``).
    """

    mask: np.ndarray
    n_excluded: int
    n: int = -1

    def __post_init__(self):
        if self.n < 0:
            object.__setattr__(self, "n", np.count_nonzero(self.mask))


#: pandas' nullable numbers and flags (Int64, Float64, boolean): values and a missing mask.
_MASKED = (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)


def _column_arrays(frame: pd.DataFrame) -> dict:
    """Each column's array as stored, by name, without building a Series per column.

    ``frame[name]`` makes a Series on the first access of each column of a new
    frame (tens of microseconds, about 1 ms for a cohort: more than some
    analyses), and a replicate study loads a new cohort for every plan.
    """
    try:
        arrays = frame._iter_column_arrays()  # pandas' own read-only iterator (private)
    except AttributeError:  # a pandas without it
        return {name: frame[name].array for name in frame.columns}
    return dict(zip(frame.columns, arrays))


class Context:
    """Arrays of one validated cohort, the selections made, and the rows produced.

    Parameters
    ----------
    cohort : Cohort
        A loaded cohort.
    settings : Settings
        Card-derived choices.
    """

    def __init__(self, cohort, settings: Settings):
        self.cohort = cohort
        self.settings = settings
        # read-only use of the cohort's own frame: Cohort.data would copy it, and
        # the first column access of a fresh copy costs more than the plan's kernels
        frame = cohort._frame
        self._frame = frame
        self._columns = frozenset(frame.columns)
        self._arrays = _column_arrays(frame)
        self.n = len(frame)
        self._values: dict[str, np.ndarray] = {}
        self._known: dict[str, np.ndarray] = {}
        self.rows: list[tuple] = []
        self.models: dict[str, dict] = {k: {} for k in ("km", "logrank", "cox", "cif", "finegray",
                                                        "contingency", "two_sample", "model_data")}
        self.selections: dict[str, tuple] = {}
        self.extra_exclusions: dict[str, list[Exclusion]] = {}
        self.skipped: list[dict] = []
        self._missing: dict[str, tuple] = {}
        self._pops: dict[str, tuple] = {}
        self._empties: dict[tuple, np.ndarray] = {}
        self._indicators: dict[str, np.ndarray] = {}
        self._flags: dict[str, np.ndarray] = {}
        pattern = self.values("failure_pattern")
        self.progressed = np.isin(pattern, PROGRESSION_PATTERNS)

    # ------------------------------------------------------------------ arrays
    def has(self, name: str) -> bool:
        """Whether the cohort has column ``name``."""
        return name in self._columns

    def values(self, name: str) -> np.ndarray:
        """Column ``name`` as a numpy array: float (NaN empty) for numbers and
        flags, object (``None`` empty) for text and categories; all NaN when
        the cohort lacks the column."""
        hit = self._values.get(name)
        if hit is not None:
            return hit
        if name not in self._columns:
            # an absent optional column: every value unknown (select() skips its analyses)
            out, known = np.full(self.n, np.nan), np.zeros(self.n, dtype=bool)
        else:
            arr = self._arrays[name]
            if isinstance(arr, np.ndarray):  # numpy-backed (not a canonical dtype): pandas' wrapper
                arr = self._frame[name].array
            if isinstance(arr, pd.Categorical):
                codes = arr.codes
                known = codes >= 0
                out = np.asarray(arr.categories, dtype=object)[np.maximum(codes, 0)]
                out[~known] = None
            elif isinstance(arr, _MASKED) and hasattr(arr, "_data") and hasattr(arr, "_mask"):
                # arr.to_numpy(dtype=np.float64, na_value=np.nan) without its warning filters,
                # through pandas' private fields (the public call below where they are gone)
                out = arr._data.astype(np.float64)
                out[arr._mask] = np.nan
                known = ~np.isnan(out)
            elif arr.dtype.kind in "iufb":
                out = arr.to_numpy(dtype=np.float64, na_value=np.nan)
                known = ~np.isnan(out)
            else:
                known = ~np.asarray(arr.isna(), dtype=bool)
                out = np.asarray(arr, dtype=object).copy()
                out[~known] = None
        out.setflags(write=False)
        known.setflags(write=False)
        self._values[name], self._known[name] = out, known
        return out

    def known(self, name: str) -> np.ndarray:
        """Whether each patient has a value in column ``name``."""
        self.values(name)
        return self._known[name]

    def flag(self, name: str) -> np.ndarray:
        """A 0/1 column as booleans (empty counts as 0; use with a selection)."""
        hit = self._flags.get(name)
        if hit is None:
            hit = self._flags[name] = self.values(name) == 1
            hit.setflags(write=False)
        return hit

    # --------------------------------------------------------------- selection
    def _population(self, population: str) -> tuple[np.ndarray, np.ndarray]:
        """Members of an analysis population and those whose membership is unknown."""
        none = np.zeros(self.n, dtype=bool)
        if population == "all":
            return np.ones(self.n, dtype=bool), none
        if population == "progressed":
            return self.progressed.copy(), none
        flag = "brain_mets" if population == "brain_mets" else "fail_brain"
        base = self.progressed if population == "brain_progression" else np.ones(self.n, dtype=bool)
        return base & self.flag(flag), base & ~self.known(flag)

    def _empty(self, population: str, columns: tuple) -> np.ndarray:
        """Members of ``population`` with a value of ``columns`` empty (a column whose
        parent flag is 0 is not empty, just not applicable); computed once per plan."""
        hit = self._empties.get((population, columns))
        if hit is None:
            member = self._pops[population][0]
            hit = np.zeros(self.n, dtype=bool)
            for col in dict.fromkeys(columns):
                if col == "failure_pattern":
                    continue
                e = member & ~self.known(col)
                parent = column(col).parent
                if parent:
                    e &= (self.flag(parent) | ~self.known(parent)) if self.has(parent) else True
                hit |= e
            hit.setflags(write=False)
            self._empties[(population, columns)] = hit
        return hit

    def select(self, name: str, key: str, columns=(), *, ids=(), derived=()) -> Selection | None:
        """Patients of analysis ``key`` with every needed value and ``columns`` filled.

        Parameters
        ----------
        name : str
            The plan's name for the computation (a key of ``PlanResult.exclusions``).
        key : str
            A cohort-format analysis (:data:`failpattern.cohort.ANALYSES`).
        columns : sequence of str
            Optional columns the computation uses (``rows_for``'s ``columns``).
        ids : sequence of str
            Ids the computation would produce (listed in ``skipped`` if it cannot run).
        derived : sequence of Binary
            Groupings used; patients whose value cannot be grouped are excluded.

        Returns
        -------
        Selection or None
            ``None`` (and an entry in ``skipped``) when the cohort lacks a column.
        """
        columns = tuple(dict.fromkeys(columns))
        if key not in self._missing:
            self._missing[key] = self.cohort.missing_for(key)
        lack = list(self._missing[key]) + [c for c in columns if not self.has(c)]
        if lack:
            self.skip(name, ids, lacking(lack))
            return None
        a = analysis(key)
        if a.population not in self._pops:
            self._pops[a.population] = self._population(a.population)
        member, unknown = self._pops[a.population]
        empty = self._empty(a.population, a.needs)  # shared by every selection of the population
        for col in columns:
            if col not in a.needs:
                empty = empty | self._empty(a.population, (col,))
        mask = member & ~empty
        extra = []
        for b in derived:
            bad = mask & self.known(b.column) & np.isnan(b.indicator(self))
            for i in bad.nonzero()[0]:
                extra.append(Exclusion(str(self._frame["patient_id"].iat[i]), self.cohort.lines[i],
                                       f"{b.column} = {self.values(b.column)[i]} cannot be grouped "
                                       f"({b.label})"))
            mask &= ~bad
        self.selections[name] = (key, columns)
        if extra:
            self.extra_exclusions[name] = extra
        return Selection(mask, np.count_nonzero(unknown | empty) + len(extra))

    def design(self, name: str, key: str, binaries, ids) -> tuple[Selection, np.ndarray] | None:
        """Selection and 0/1 design matrix of a regression on ``binaries``.

        ``None`` (with an entry in ``skipped``) when a column is missing or a
        covariate does not vary among the selected patients.
        """
        sel = self.select(name, key, [b.column for b in binaries], ids=ids, derived=binaries)
        if sel is None:
            return None
        X = np.column_stack([b.indicator(self)[sel.mask] for b in binaries])
        constant = [b.name for j, b in enumerate(binaries) if X.shape[0] == 0 or np.all(X[:, j] == X[0, j])]
        if constant:
            self.skip(name, ids, f"model not estimable: no variation in {', '.join(constant)} (every patient "
                                 "in the same group)")
            return None
        return sel, X

    def skip(self, name: str, ids, reason: str) -> None:
        """Record a computation the cohort cannot support."""
        self.skipped.append({"analysis": name, "ids": tuple(ids), "reason": reason})

    # -------------------------------------------------------------------- rows
    def add(self, id_: str, value, *, analysis: str, method: str, sel=None, convention: str = "none",
            ci=(_NAN, _NAN), range=(_NAN, _NAN), note: str = "", n_used=None, n_excluded=None) -> None:
        """Append one reproduced quantity (see :data:`ROW_FIELDS`)."""
        if sel is not None:
            n_used = sel.n if n_used is None else n_used
            n_excluded = sel.n_excluded if n_excluded is None else n_excluded
        self.rows.append((id_, float(value), float(ci[0]), float(ci[1]), float(range[0]), float(range[1]),
                          analysis, method, convention,
                          n_used, n_excluded, note))
