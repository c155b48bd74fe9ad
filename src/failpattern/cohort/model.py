"""The validated cohort, and the patients each analysis can use.

Why: a loaded file is checked once; afterwards every analysis asks the same
object which patients it may use (:meth:`Cohort.rows_for`). Patients outside
an analysis's population (e.g. no progression, for PFS2) are simply not part
of it; patients inside it with an empty value the analysis needs are
*excluded* and listed with the reason, so no row disappears silently. An
analysis whose columns are absent is reported as unsupported, with the
columns it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from failpattern.cohort.problems import Problem
from failpattern.cohort.schema import ANALYSES, PROGRESSION_PATTERNS, analysis, column

__all__ = ["Cohort", "Exclusion"]

_POPULATION_COLUMNS = {"all": (), "progressed": ("failure_pattern",), "brain_mets": ("brain_mets",),
                       "brain_progression": ("failure_pattern", "fail_brain")}
_POPULATION_TEXT = {"all": "all patients", "progressed": "patients with a first progression",
                    "brain_mets": "patients with baseline brain metastases",
                    "brain_progression": "patients whose first progression involved the brain"}


@dataclass(frozen=True)
class Exclusion:
    """A patient left out of an analysis, and why.

    Attributes
    ----------
    patient_id : str
        The patient's ``patient_id``.
    line : int
        The patient's row in the source file (header = 1).
    reason : str
        Why the analysis cannot use the patient (the column and value).
    """

    patient_id: str
    line: int
    reason: str


@dataclass(frozen=True)
class Cohort:
    """A validated cohort: one row per patient in canonical dtypes.

    Build it with :func:`failpattern.cohort.load_cohort`.

    Attributes
    ----------
    source : str
        The file read, or ``"<DataFrame>"``.
    lines : tuple of int
        Each patient's row number in the source (CSV line / sheet row; header = 1).
    columns_present : tuple of str
        Format columns found in the source.
    derived : tuple of str
        Format columns computed by the loader (from dates, site flags or the pattern).
    extra_columns : tuple of str
        Columns not in the format, kept unchanged after the format columns.
    warnings : tuple of Problem
        Warning-level notes (e.g. unknown columns).
    days_per_month : float
        Month length used to turn dates into months.
    """

    _frame: pd.DataFrame = field(repr=False)
    source: str
    lines: tuple[int, ...] = field(repr=False)
    columns_present: tuple[str, ...]
    derived: tuple[str, ...]
    extra_columns: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = field(default=(), repr=False)
    days_per_month: float = 365.25 / 12

    @property
    def data(self) -> pd.DataFrame:
        """The patients (a copy, so the cohort itself cannot change)."""
        return self._frame.copy()

    @property
    def n_patients(self) -> int:
        """Number of patients (rows) in the cohort."""
        return len(self._frame)

    def resample(self, rows) -> Cohort:
        """The cohort of the patients at positions ``rows``, in that order, repeats allowed (a bootstrap sample).

        Parameters
        ----------
        rows : array_like of int
            0-based positions; a patient drawn again gets the id ``"<id>#<k>"`` for its
            ``k``-th copy (k = 2, 3, ...), so ids stay unique.

        Returns
        -------
        Cohort
            The same columns and dtypes; ``lines`` are the drawn patients' own source lines.

        Raises
        ------
        InputError
            A position outside the cohort or not a whole number.
        """
        from failpattern.errors import InputError

        idx = np.asarray(rows)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise InputError(f"rows: must be a 1-D array of whole-number positions; got {idx.dtype} of shape "
                             f"{idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_patients):
            bad = idx[(idx < 0) | (idx >= self.n_patients)][0]
            raise InputError(f"rows: position {bad} is outside the cohort's {self.n_patients} patients")
        frame = self._frame.iloc[idx].reset_index(drop=True)
        copy = pd.Series(idx).groupby(idx).cumcount().to_numpy() + 1
        if "patient_id" in frame and (copy > 1).any():
            ids = frame["patient_id"].astype(str).to_numpy(dtype=object)
            ids = np.where(copy > 1, ids + "#" + copy.astype(str), ids)
            frame["patient_id"] = pd.array(ids, dtype=frame["patient_id"].dtype)
        return replace(self, _frame=frame, lines=tuple(self.lines[i] for i in idx.tolist()))

    def missing_for(self, key: str) -> tuple[str, ...]:
        """Columns analysis ``key`` needs but the cohort lacks.

        Parameters
        ----------
        key : str
            The ``key`` of an analysis in :data:`failpattern.cohort.ANALYSES` (e.g. ``"pfs1_km"``).

        Returns
        -------
        tuple of str
            The missing columns (``"one of a, b"`` where any of several would do);
            empty when the cohort supports the analysis.
        """
        a = analysis(key)
        have = set(self._frame.columns)
        lack = [c for c in a.needs + _POPULATION_COLUMNS[a.population] if c not in have]
        if a.uses and a.one_of_uses and not any(c in have for c in a.uses):
            lack.append("one of " + ", ".join(a.uses))
        return tuple(dict.fromkeys(lack))

    def supports(self, key: str) -> bool:
        """Whether the cohort has the columns analysis ``key`` needs.

        Parameters
        ----------
        key : str
            The ``key`` of an analysis in :data:`failpattern.cohort.ANALYSES`.

        Returns
        -------
        bool
            True when :meth:`missing_for` is empty.
        """
        return not self.missing_for(key)

    def _population(self, population: str) -> tuple[pd.Series, list[tuple[int, str]]]:
        df = self._frame
        if population == "all":
            return pd.Series(True, index=df.index), []
        progressed = df["failure_pattern"].isin(PROGRESSION_PATTERNS)
        if population == "progressed":
            return progressed, []
        flag = "brain_mets" if population == "brain_mets" else "fail_brain"
        base = progressed if population == "brain_progression" else pd.Series(True, index=df.index)
        unknown = base & df[flag].isna()
        out = [(i, f"{flag} is empty, so it is unknown whether the patient belongs to "
                   f"{_POPULATION_TEXT[population]}") for i in unknown.to_numpy().nonzero()[0]]
        return base & (df[flag] == 1).fillna(False), out

    def rows_for(self, key: str, columns=None) -> tuple[pd.DataFrame, tuple[Exclusion, ...]]:
        """The patients analysis ``key`` can use, and those it must leave out.

        Parameters
        ----------
        key : str
            An analysis of :data:`failpattern.cohort.schema.ANALYSES`.
        columns : sequence of str, optional
            The covariates of the analysis actually used (default: every one
            present). Needed columns are always checked.

        Returns
        -------
        included : DataFrame
            Rows of :attr:`data` in the analysis's population with every needed value.
        excluded : tuple of Exclusion
            Patients in the population left out, in file order, with the reason.

        Raises
        ------
        CohortError
            When the cohort lacks columns the analysis needs (the message lists them).
        """
        keep, reasons = self._selection(key, columns)
        return self._frame[keep].copy(), self._exclusions(reasons)

    def excluded_for(self, key: str, columns=None) -> tuple[Exclusion, ...]:
        """The patients analysis ``key`` leaves out, as :meth:`rows_for` gives them, without copying the rest.

        Parameters
        ----------
        key : str
            An analysis of :data:`failpattern.cohort.schema.ANALYSES`.
        columns : sequence of str, optional
            As for :meth:`rows_for`.

        Returns
        -------
        tuple of Exclusion
        """
        return self._exclusions(self._selection(key, columns)[1])

    def _exclusions(self, reasons: dict[int, list[str]]) -> tuple[Exclusion, ...]:
        ids = self._frame["patient_id"]
        return tuple(Exclusion(str(ids.iat[i]), self.lines[i], "; ".join(r)) for i, r in sorted(reasons.items()))

    def _selection(self, key: str, columns) -> tuple[np.ndarray, dict[int, list[str]]]:
        """(rows kept as a boolean array, {row: reasons} of the population's rows left out)."""
        from failpattern.cohort.problems import ProblemLog  # raises CohortError

        a = analysis(key)
        missing = self.missing_for(key)
        if missing:
            log = ProblemLog(self.source)
            log.add("missing_column", f"analysis {key!r} ({a.title}) needs column(s) "
                    f"{', '.join(missing)}, which the cohort does not have", column="+".join(missing))
            log.raise_if_errors()
        df = self._frame
        uses = [c for c in a.uses if c in df] if columns is None else list(columns)
        unknown = [c for c in uses if c not in df]
        if unknown:
            raise KeyError(f"columns not in the cohort: {', '.join(unknown)}")
        member, out = self._population(a.population)
        reasons: dict[int, list[str]] = {i: [r] for i, r in out}
        for name in dict.fromkeys(a.needs + tuple(uses)):
            if name == "failure_pattern":  # empty = censored, a valid value once loaded
                continue
            empty = df[name].isna() & member
            parent = column(name).parent
            if parent:
                empty &= (df[parent] == 1).fillna(True) if parent in df else True
            for i in empty.to_numpy().nonzero()[0]:
                reasons.setdefault(int(i), []).append(f"{name} is empty")
        keep = member.to_numpy(dtype=bool, copy=True)
        keep[list(reasons)] = False
        return keep, reasons

    @property
    def excluded(self) -> dict[str, tuple[Exclusion, ...]]:
        """For each supported analysis, the patients it leaves out (see :meth:`rows_for`)."""
        return {a.key: self.excluded_for(a.key) for a in ANALYSES if self.supports(a.key)}

    def analyses(self) -> pd.DataFrame:
        """One row per analysis: supported, missing columns, patients included and excluded."""
        rows = []
        for a in ANALYSES:
            missing = self.missing_for(a.key)
            n_in = n_out = None
            if not missing:
                keep, reasons = self._selection(a.key, None)
                n_in, n_out = int(keep.sum()), len(reasons)
            rows.append({"analysis": a.key, "title": a.title, "supported": not missing,
                         "missing": ", ".join(missing), "included": n_in, "excluded": n_out})
        return pd.DataFrame(rows).astype({"included": "Int64", "excluded": "Int64"})

    def events(self) -> pd.DataFrame:
        """Patients, events and censored per endpoint present (PFS1, PFS2, OS)."""
        df = self._frame
        rows = []
        for ep, label in (("pfs1", "PFS1"), ("pfs2", "PFS2"), ("os", "OS")):
            if f"{ep}_event" in df:
                ev = df[f"{ep}_event"].dropna()
                rows.append({"endpoint": label, "patients": len(ev), "events": int(ev.sum()),
                             "censored": int((ev == 0).sum())})
        return pd.DataFrame(rows, columns=["endpoint", "patients", "events", "censored"])

    def pattern_counts(self) -> pd.Series:
        """Patients by first failure: OF, DF, ODF, death (without progression) and censored."""
        pattern = self._frame["failure_pattern"]
        counts = pattern.value_counts().reindex(["OF", "DF", "ODF", "death"], fill_value=0)
        counts["censored"] = int(pattern.isna().sum())
        return counts.astype(int)
