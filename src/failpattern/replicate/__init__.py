"""Replicate studies: run a per-replicate function many times and summarise the results.

Why: to judge a reproduced number one needs its distribution over many
simulated cohorts, not one value. This package is the generic engine under
that: :func:`run_replicates` runs any picklable ``task(rng, index) ->
DataFrame`` in parallel (local processes or a Dask cluster), streams results
to disk in chunks so a study resumes after an interruption, and seeds
replicate ``i`` with ``SeedSequence(seed).spawn(n)[i]`` so results do not
depend on how the work was spread. :func:`load_replicates` reads a study
folder back and :func:`summarise` describes each id's distribution, with the
published value's percentile and, for p-values, the power.

The names are imported on first use (PEP 562), so that
:mod:`failpattern.replicate.workers` can start the workers' fork server
before this process has paid for pandas (``failpattern study`` does, first thing).

Example::

    from failpattern.replicate import run_replicates, summarise

    results = run_replicates(task, 1000, seed=2019, out_dir="runs/ni2019")
    table = summarise(results, published=load_study().numbers)
"""

from __future__ import annotations

from failpattern._lazy import lazy_names

_WHERE = {
    "failpattern.replicate.engine": ("ReplicateError", "StudyMismatchError", "default_chunk_size",
                                     "load_replicates", "run_replicates", "task_name"),
    "failpattern.replicate.store": ("Manifest", "replicate_rng", "replicate_seed"),
    "failpattern.replicate.summary": ("is_p_value_method", "published_frame", "summarise"),
}

__all__ = ["run_replicates", "load_replicates", "summarise", "published_frame", "is_p_value_method",
           "ReplicateError", "StudyMismatchError", "Manifest", "replicate_rng", "replicate_seed", "task_name",
           "default_chunk_size"]


__getattr__, __dir__ = lazy_names(__name__, globals(), _WHERE, __all__)
