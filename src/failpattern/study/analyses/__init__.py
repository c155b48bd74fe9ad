"""The analyses of the reproduction plan, one module per family.

Why split: :mod:`failpattern.study.plan` orchestrates and owns the result
type; the computations live here so that each module stays readable in one
sitting. ``_base`` holds the shared context (arrays extracted once from a
validated cohort, patient selection, the row collector) and the paper's
dichotomisations; ``survival`` the Kaplan-Meier, log-rank and Cox analyses;
``competing`` the cumulative incidence and Fine-Gray models; ``tables`` the
counts, percentages and contingency tests of Tables 1 and 2 and the text.
"""
