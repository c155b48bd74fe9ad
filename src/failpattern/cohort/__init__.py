"""Researchers' own cohorts: the cohort format, loading, and problems a clinician can fix.

Why: the paper's analyses are re-run on other cohorts, so there is one
documented format (``docs/cohort-format.md``, generated from
:mod:`~failpattern.cohort.schema`), one loader (:func:`load_cohort`) that
reports every problem in a file at once (:class:`CohortError`), and one
answer to "which patients does this analysis use?" (:meth:`Cohort.rows_for`).
"""

from failpattern.cohort.clinical import check_clinical
from failpattern.cohort.dates import DAYS_PER_MONTH
from failpattern.cohort.load import load_cohort
from failpattern.cohort.model import Cohort, Exclusion
from failpattern.cohort.problems import RULES, CohortError, Problem, Problems, write_problems
from failpattern.cohort.schema import ANALYSES, COLUMNS, Analysis, Column
from failpattern.cohort.trusted import trusted_cohort

__all__ = ["load_cohort", "trusted_cohort", "check_clinical", "Cohort", "Exclusion", "CohortError", "Problem", "Problems", "write_problems", "RULES",
           "COLUMNS",
           "ANALYSES", "Column", "Analysis", "DAYS_PER_MONTH"]
