"""Statistical core: array kernels and the public estimators built on them.

Each public function validates its arguments (``_validate``), then calls a
private kernel that trusts its input; results are immutable objects.

Modules: ``km``, ``logrank``, ``cox``, ``cif``, ``finegray``, ``contingency``,
``twosample``, ``zph`` (the estimators re-exported here), and ``fit``, the fit
layer: :mod:`failpattern.stats.fit` runs the same kernels on prepared numpy
arrays without validation (as R's ``coxph.fit`` under ``coxph``), returning the
same result types, for code that fits many models on data it has validated
(the analysis plan). Its functions are not re-exported here.
Batched kernels for replicate studies, a leading replicate axis over thousands of
equal-size cohorts, each equal to the one-cohort function to 1e-10: :mod:`failpattern.stats.batch`
(KM medians and limits, log-rank, 2 x 2 contingency p-values),
:mod:`failpattern.stats.batch_cif` (cumulative incidence at landmark times, Gray's test) and
:mod:`failpattern.stats.batch_cox` (Cox models, Breslow or Efron ties).
"""

from failpattern.stats.cif import CumulativeIncidenceResult, GrayTestResult, cumulative_incidence
from failpattern.stats.contingency import ContingencyResult, contingency_test, crosstab_test
from failpattern.stats.cox import CoxResult, cox, cox_fit
from failpattern.stats.cox_predict import CoxSurvivalResult, cox_survival
from failpattern.stats.finegray import FineGrayResult, fine_gray, fine_gray_fit
from failpattern.stats.finegray_predict import FineGrayCIFResult, fine_gray_cif
from failpattern.stats.km import KaplanMeierResult, kaplan_meier
from failpattern.stats.logrank import LogRankResult, logrank
from failpattern.stats.twosample import TwoSampleResult, two_sample_test
from failpattern.stats.zph import ProportionalHazardsResult, proportional_hazards_test

__all__ = [
    "kaplan_meier", "KaplanMeierResult",
    "logrank", "LogRankResult",
    "cox", "cox_fit", "CoxResult",
    "cox_survival", "CoxSurvivalResult",
    "cumulative_incidence", "CumulativeIncidenceResult", "GrayTestResult",
    "fine_gray", "fine_gray_fit", "FineGrayResult",
    "fine_gray_cif", "FineGrayCIFResult",
    "contingency_test", "crosstab_test", "ContingencyResult",
    "two_sample_test", "TwoSampleResult",
    "proportional_hazards_test", "ProportionalHazardsResult",
]
