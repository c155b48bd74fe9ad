"""Reconstruction of a published cohort from its study card (exact mode of the simulator; ``docs/simulator.md``).

The categorical skeleton (who is in which group, with which covariates, failure
pattern, sites and treatments) is solved exactly from the card's counts by
:func:`~failpattern.simulate.reconstruct.counts.solve_counts`; baseline details
(:mod:`~failpattern.simulate.reconstruct.assemble`) and times from latent
uniforms (:mod:`~failpattern.simulate.reconstruct.times`) complete the cohort;
:func:`~failpattern.simulate.reconstruct.run.reconstruct` searches the latents
(:mod:`~failpattern.simulate.reconstruct.search`) toward the card's printed
values (:mod:`~failpattern.simulate.reconstruct.targets`).
"""

from failpattern.simulate.reconstruct.counts import (
    NOT_EXPRESSED,
    CountRule,
    CountSkeleton,
    count_rules,
    solve_counts,
)
from failpattern.simulate.reconstruct.run import Reconstruction, SearchProgress, reconstruct
from failpattern.simulate.reconstruct.targets import Targets, targets_for

__all__ = ["NOT_EXPRESSED", "CountRule", "CountSkeleton", "Reconstruction", "SearchProgress", "Targets", "count_rules",
           "reconstruct", "solve_counts", "targets_for"]
