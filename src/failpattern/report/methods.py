"""A methods paragraph written from the plan that ran: tests, conventions, versions, seed, exclusions.

Why: a results section is read with its methods. What the report can say
about how its numbers were computed is known exactly — the plan's settings,
the software conventions of each estimator, the package versions, the seed,
who was excluded — so it is written from those facts, not typed by hand, and
it stays true when the plan or the card changes.
"""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["methods_paragraph"]

_TEST_NAMES = {"pearson": "the Pearson chi-square test", "yates": "the chi-square test with Yates' correction",
               "fisher": "Fisher's exact test", "n-1": "the N-1 chi-square test (SPSS's linear-by-linear row)",
               "g": "the likelihood-ratio (G) test"}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _label(name: str) -> str:
    """A covariate in words: the name its table row gives it ("Histology", "Primary tumour size")."""
    from failpattern.study.plan import BINARIES

    b = BINARIES.get(name)
    return b.label.split(" (")[0] if b is not None else name.replace("_", " ")


def _tests_used(plan_result) -> str:
    """Which contingency test gave which Table 1 p-value, grouped by test."""
    by_test: dict[str, list[str]] = {}
    for id_, info in plan_result.contingency.items():
        if id_.startswith("t1."):
            by_test.setdefault(info["chosen"], []).append(_label(id_.split(".")[1]).lower())
    if not by_test:
        return ""
    parts = [f"{_TEST_NAMES.get(t, t)} for {', '.join(rows)}" for t, rows in sorted(by_test.items())]
    return ("Proportions were compared between groups with " + "; ".join(parts) +
            " (the paper names only 'chi-square or Fisher's exact tests'; for each row the test is the one that "
            "gives the paper's p-value from the paper's printed counts, or the closest when none does).")


def methods_paragraph(plan_result, *, seed=None, cohort_label: str = "the cohort") -> str:
    """The methods of a report, as one paragraph of plain text.

    Parameters
    ----------
    plan_result : PlanResult
        The plan that ran (its settings, fits and exclusions are described).
    seed : int, optional
        The seed of a simulated cohort.
    cohort_label : str
        How the cohort is named.

    Returns
    -------
    str
    """
    s = plan_result.settings
    n = plan_result.cohort.n_patients
    excl = plan_result.exclusions_frame()
    people = excl["patient_id"].nunique() if len(excl) else 0
    death = ("treated as a competing event" if s.death == "competing"
             else "censored")
    text = [
        f"Analyses ran on {cohort_label} ({n} patients).",
        "Survival curves were estimated with the Kaplan-Meier method; median survival times and their 95% "
        "confidence intervals follow SPSS 22 (the median ± 1.96 times its standard error), and groups "
        "were compared with the log-rank test.",
        "Hazard ratios come from Cox proportional-hazards models with Breslow's handling of ties and Wald "
        "p-values, as SPSS COXREG computes them.",
        "Original-site failure (OF) was analysed with Fine-Gray competing-risks regression (Stata 13.1 "
        "stcrreg convention), distant failure (DF) and simultaneous failure (ODF) being competing events and "
        f"death without progression {death}; cumulative incidence was estimated with the Aalen-Johansen "
        "estimator and compared with Gray's test.",
        f"Binary covariates used the paper's cut-offs: age > {s.age_cutoff:g} years, primary tumour size "
        f">= {s.tumor_size_cutoff:g} cm, >= {s.met_organs_cutoff:g} metastatic organs, >= "
        f"{s.met_lesions_cutoff:g} metastatic lesions; the multivariable Fine-Gray model included "
        f"{', '.join(_label(x) for x in s.t3_multi)}.",
        _tests_used(plan_result),
        "Continuous variables were compared with the Mann-Whitney test (asymptotic, with tie correction).",
        "All tests are two-sided; p < 0.05 is called significant.",
        (f"{people} patient(s) were left out of at least one analysis for missing or inapplicable data "
         f"({len(excl)} exclusions in all, listed under Exclusions)." if len(excl)
         else "No patient was left out of any analysis."),
        (f"The cohort was simulated with seed {seed}." if seed is not None else ""),
        (f"Computed with failpattern {_version('failpattern')} (NumPy {_version('numpy')}, SciPy "
         f"{_version('scipy')}, pandas {_version('pandas')}; Python {platform.python_version()})."),
    ]
    return " ".join(t for t in text if t)
