"""failpattern: a survival-analysis reproduction toolkit.

The public API (documented in the README) is re-exported here::

    from failpattern import kaplan_meier, logrank, cox, cumulative_incidence, fine_gray
    from failpattern import contingency_test, two_sample_test, load_cohort, load_study
"""

from failpattern._version import __version__
from failpattern.cohort import Cohort, CohortError, load_cohort
from failpattern.errors import ConvergenceError, FailpatternError, InputError
from failpattern.stats import (ContingencyResult, CoxResult, CumulativeIncidenceResult,
                               GrayTestResult, KaplanMeierResult, LogRankResult, TwoSampleResult,
                               FineGrayResult, ProportionalHazardsResult, contingency_test,
                               cox, crosstab_test, cumulative_incidence, fine_gray,
                               kaplan_meier, logrank, proportional_hazards_test,
                               two_sample_test)
from failpattern.simulate import simulate
from failpattern.study import PlanResult, StudyCard, StudyCardError, compare, load_study, run_plan

__all__ = [
    "__version__",
    # statistics
    "kaplan_meier", "logrank", "cox", "cumulative_incidence", "fine_gray",
    "contingency_test", "crosstab_test", "two_sample_test", "proportional_hazards_test",
    "KaplanMeierResult", "LogRankResult", "CoxResult", "CumulativeIncidenceResult",
    "ProportionalHazardsResult",
    "GrayTestResult", "FineGrayResult", "ContingencyResult", "TwoSampleResult",
    # cohorts and study cards
    "load_cohort", "Cohort", "CohortError", "load_study", "StudyCard", "StudyCardError",
    # the paper's analysis plan and the simulator
    "run_plan", "PlanResult", "compare", "simulate",
    # errors
    "FailpatternError", "InputError", "ConvergenceError",
]
