"""Study cards: the numbers a published study reports, as validated data.

``load_study("ni2019")`` returns a :class:`StudyCard`; ``recompute_aggregates``
re-derives from the published counts whatever can be re-derived without the
individual data (percentages, contingency-table p-values, Wald p-values from
confidence intervals) and sets it beside the published value; ``design_for(card)``
reads the paper's structure (groupings, cut-offs, model covariates, count tables)
from a card, for the analysis plan and the simulator alike.
"""

from failpattern.study.aggregate import recompute_aggregates
from failpattern.study.audit import MethodsAudit, methods_audit
from failpattern.study.baseline import apply_baseline, load_baseline, write_baseline
from failpattern.study.compare import changed, compare, summarize, summarize_by_kind
from failpattern.study.design import Design, design_for
from failpattern.study.plan import PlanResult, run_plan
from failpattern.study.card import (
    CardNumber,
    CardProblem,
    Check,
    Population,
    StudyCard,
    StudyCardError,
    load_study,
)

__all__ = [
    "CardNumber", "CardProblem", "Check", "Population", "StudyCard", "StudyCardError",
    "load_study", "recompute_aggregates", "run_plan", "PlanResult", "compare", "summarize", "summarize_by_kind",
    "changed", "apply_baseline", "load_baseline", "write_baseline", "Design", "design_for", "MethodsAudit",
    "methods_audit",
]
