"""failpattern: a survival-analysis reproduction toolkit.

The public API (documented in the README) is re-exported here::

    from failpattern import kaplan_meier, logrank, cox, cumulative_incidence, fine_gray
    from failpattern import contingency_test, two_sample_test, load_cohort, load_study
"""

from __future__ import annotations

import sys
import types

from failpattern._lazy import lazy_names
from failpattern._version import __version__

# Names are imported on first use (PEP 562), so that ``import failpattern`` -- and with it
# ``failpattern --version`` -- does not pay for pandas, scipy and matplotlib.
_WHERE = {
    "failpattern.cohort": ("Cohort", "CohortError", "load_cohort"),
    "failpattern.datasets": ("synthetic_cohort",),
    "failpattern.errors": ("ConvergenceError", "FailpatternError", "InputError"),
    "failpattern.stats": ("ContingencyResult", "CoxResult", "CumulativeIncidenceResult",
                          "GrayTestResult", "KaplanMeierResult", "LogRankResult", "TwoSampleResult",
                          "FineGrayResult", "ProportionalHazardsResult", "contingency_test", "cox",
                          "crosstab_test", "cumulative_incidence", "fine_gray", "kaplan_meier",
                          "logrank", "proportional_hazards_test", "two_sample_test", "cox_survival",
                          "CoxSurvivalResult", "fine_gray_cif", "FineGrayCIFResult"),
    "failpattern.study": ("PlanResult", "StudyCard", "StudyCardError", "compare", "load_study",
                          "run_plan", "methods_audit"),
}

__all__ = [
    "__version__",
    # statistics
    "kaplan_meier", "logrank", "cox", "cumulative_incidence", "fine_gray",
    "contingency_test", "crosstab_test", "two_sample_test", "proportional_hazards_test",
    "cox_survival", "fine_gray_cif",
    "KaplanMeierResult", "LogRankResult", "CoxResult", "CumulativeIncidenceResult",
    "ProportionalHazardsResult", "CoxSurvivalResult", "FineGrayCIFResult",
    "GrayTestResult", "FineGrayResult", "ContingencyResult", "TwoSampleResult",
    # cohorts and study cards
    "load_cohort", "Cohort", "CohortError", "load_study", "StudyCard", "StudyCardError", "synthetic_cohort",
    # the paper's analysis plan and the simulator
    "run_plan", "PlanResult", "compare", "simulate", "methods_audit",
    # errors
    "FailpatternError", "InputError", "ConvergenceError",
]


# a sub-package (``failpattern.stats``) is imported too when asked for, as the eager imports did
__getattr__, __dir__ = lazy_names(__name__, globals(), _WHERE, __all__)


class _Package(types.ModuleType):
    """``failpattern`` itself: ``failpattern.simulate`` is the function, not the sub-package.

    Importing ``failpattern.simulate.<anything>`` binds the sub-package to the attribute
    ``simulate`` of this package; with eager imports the function was bound after that and
    won. Lazily it would lose, so the attribute is a property that always gives the function.
    """

    @property
    def simulate(self):
        from failpattern.simulate import simulate

        return simulate

    @simulate.setter
    def simulate(self, value) -> None:  # the import system binding the sub-package: keep the function
        pass


sys.modules[__name__].__class__ = _Package
