"""Publication figures for failpattern results.

Results objects never plot; these functions take them and return a
:class:`matplotlib.figure.Figure` (made without pyplot, so no global figure
state and no display backend is needed):

* :func:`plot_km` — Kaplan-Meier curves, censor marks, medians, log-rank p,
  numbers at risk (Ni et al. 2019, Fig. 1a-d);
* :func:`plot_cumulative_incidence` — cumulative incidence of competing
  failure patterns, overlaid or stacked, with "any progression" and an
  optional 1 − KM overlay (Fig. 2);
* :func:`plot_forest` — hazard ratios with intervals, reproduced beside
  published (Table 3);
* :func:`plot_schoenfeld` — scaled Schoenfeld residuals of a proportional
  hazards test against transformed time, with a smooth and the test's p;
* :func:`plot_log_minus_log` — log(−log S) against log time for KM curves;
* :func:`plot_type_one_error` — the methods audit: type I error of a naive and a
  time-dependent analysis of a treatment with no effect;
* :func:`save_figure` — PNG / SVG / PDF, atomic, no accidental overwrite.
"""

from failpattern.plots._save import save_figure
from failpattern.plots.audit import plot_type_one_error
from failpattern.plots.cif import plot_cumulative_incidence
from failpattern.plots.diagnostics import plot_log_minus_log, plot_schoenfeld
from failpattern.plots.forest import plot_forest
from failpattern.plots.km import plot_km

__all__ = ["plot_km", "plot_cumulative_incidence", "plot_forest", "plot_schoenfeld",
           "plot_log_minus_log", "plot_type_one_error", "save_figure"]
