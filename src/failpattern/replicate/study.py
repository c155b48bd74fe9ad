"""A replicate study of a paper: simulate many cohorts, run the whole plan on each, summarise.

Why: one simulated cohort says whether the analysis plan *runs*; many say
how far a published number may fall from what a cohort of this design
gives. :func:`replicate_study` simulates ``n`` cohorts of the study's size
(random mode of :mod:`failpattern.simulate`), runs the analysis plan
(:func:`failpattern.study.plan.run_plan`) on each through the replicate
engine (:func:`~failpattern.replicate.run_replicates`: parallel, streamed to
disk, resumable, replicate ``i`` seeded by ``(seed, i)`` only) and
summarises every published number: median and 5th-95th percentile of the
reproduced values, the percentile of the published value and, for p-values,
the power (share of cohorts with ``p < 0.05``).

The per-replicate function :func:`study_task` is module level (picklable for
worker processes and Dask); it builds the cohort frame once, validates it
once (:func:`~failpattern.cohort.load_cohort`) and runs the plan once. It
keeps only ``id`` and ``value``: the summary works on values, so no
published-vs-reproduced comparison is made per replicate.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from failpattern.errors import InputError
from failpattern.replicate.engine import run_replicates
from failpattern.replicate.summary import summarise

__all__ = [
    "REPLICATES_DIR",
    "TASK_VERSION",
    "StudySummary",
    "format_summary",
    "replicate_study",
    "study_task",
    "summary_markdown",
    "summary_table",
]

#: Bump when :func:`study_task` changes what it returns, so old folders are not resumed.
TASK_VERSION = "1"
#: Subfolder of ``out_dir`` holding the engine's manifest and chunks.
REPLICATES_DIR = "replicates"
#: Methods of card numbers that are not computed from patient data.
_NOT_DATA = ("protocol", "cited")


@lru_cache(maxsize=8)
def _card(study: str):
    from failpattern.study import load_study

    return load_study(study)


def _study_key(card) -> str:
    """What identifies a card for workers: its name when shipped, else its path."""
    from failpattern.study import load_study

    try:
        if load_study(card.name).path == card.path:
            return card.name
    except InputError:
        pass
    return str(card.path)


def study_task(rng: np.random.Generator, index: int, *, study: str = "ni2019",
               n_patients: int | None = None) -> pd.DataFrame:
    """One replicate: simulate a cohort (random mode), validate it, run the plan.

    Parameters
    ----------
    rng : numpy.random.Generator
        The replicate's generator (the only source of randomness).
    index : int
        Replicate index (unused: the generator already depends on it).
    study : str
        Study card name or path (loaded once per process).
    n_patients : int, optional
        Patients per cohort; the card's ``cohort.enrolled.n`` by default.

    Returns
    -------
    pandas.DataFrame
        ``id`` and ``value``, one row per quantity the plan reproduced.
    """
    from failpattern.cohort import trusted_cohort
    from failpattern.simulate import simulate
    from failpattern.study.plan import run_plan

    card = _card(study)
    frame = simulate(card, n=n_patients, seed=rng, mode="random")
    with warnings.catch_warnings():  # a degenerate fit in one cohort gives NaN, counted as missing
        warnings.simplefilter("ignore", RuntimeWarning)
        # the plan's own table, read only: PlanResult.values would copy all its columns
        values = run_plan(trusted_cohort(frame), card=card)._values  # generated: no file checks
    return pd.DataFrame({"id": values["id"].astype(str).to_numpy(),
                         "value": values["value"].to_numpy(dtype=np.float64, copy=True)})


@dataclass(frozen=True)
class StudySummary:
    """Result of :func:`replicate_study`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per published number the plan reproduces (:func:`summary_table`).
    results : pandas.DataFrame
        Every replicate's values: ``replicate``, ``id``, ``value``.
    n_replicates, seed : int
    study : str
        Card name or path.
    out_dir : pathlib.Path
        The study folder (the engine's chunks are in ``out_dir / "replicates"``).
    """

    table: pd.DataFrame
    results: pd.DataFrame
    n_replicates: int
    seed: int
    study: str
    out_dir: Path


def summary_table(results: pd.DataFrame, card, *, alpha: float = 0.05) -> pd.DataFrame:
    """Per published number: distribution of the reproduced values, percentile, power.

    Parameters
    ----------
    results : pandas.DataFrame
        ``replicate``, ``id``, ``value`` (from :func:`~failpattern.replicate.load_replicates`).
    card : StudyCard
    alpha : float
        Significance level of ``power``.

    Returns
    -------
    pandas.DataFrame
        In card order, only card numbers computed from data that some
        replicate reproduced: ``id``, ``method``, ``section``, ``published``,
        ``is_p_value``, ``n`` (replicates with a value), ``n_missing``,
        ``median``, ``p05``, ``p95``, ``mean``, ``sd``,
        ``published_percentile`` (mid-rank, in %), ``within_90``
        (``p05 <= published <= p95``) and ``power`` (p-values only).
    """
    nums = card.numbers
    nums = nums[~nums["method"].isin(_NOT_DATA)]
    s = summarise(results, published=nums[["id", "value", "method"]], alpha=alpha)
    produced = set(results["id"].unique())
    s = s[s["id"].isin(produced) & s["id"].isin(set(nums["id"]))]
    meta = nums[["id", "method", "section"]]
    out = meta.merge(s, on="id", how="inner")
    out["within_90"] = (out["published"] >= out["p05"]) & (out["published"] <= out["p95"])
    cols = ["id", "method", "section", "published", "is_p_value", "n", "n_missing", "median", "p05",
            "p95", "mean", "sd", "published_percentile", "within_90", "power"]
    return out[cols].reset_index(drop=True)


def _g(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    return f"{x:.{digits}g}"


def _rows(table: pd.DataFrame) -> list[tuple[str, ...]]:
    rows = []
    for r in table.itertuples(index=False):
        rows.append((r.id, r.method, _g(r.published), _g(r.median), f"{_g(r.p05)} to {_g(r.p95)}",
                     _g(r.published_percentile, 3), "-" if np.isnan(r.power) else f"{r.power:.2f}",
                     f"{r.n}"))
    return rows


_HEAD = ("id", "method", "published", "median", "5%-95%", "pct", "power", "n")


def format_summary(table: pd.DataFrame) -> str:
    """The summary as aligned text (left-aligned ids, right-aligned numbers)."""
    rows = [_HEAD] + _rows(table)
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
    lines = []
    for k, r in enumerate(rows):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary_markdown(table: pd.DataFrame, *, title: str = "") -> str:
    """The summary as a Markdown table (``pct`` = percentile of the published value)."""
    out = [f"# {title}", ""] if title else []
    out += ["| " + " | ".join(_HEAD) + " |", "|" + "|".join(["---", "---"] + ["---:"] * 6) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in _rows(table)]
    return "\n".join(out) + "\n"


def replicate_study(n_replicates: int, *, seed: int = 2019, out_dir: str | os.PathLike,
                    workers: int | None = None, scheduler: Any = None, card: Any = "ni2019",
                    n_patients: int | None = None, chunk_size: int | None = None,
                    progress: bool = True, alpha: float = 0.05) -> StudySummary:
    """Simulate ``n_replicates`` cohorts, run the whole plan on each and summarise.

    Parameters
    ----------
    n_replicates : int
        Number of simulated cohorts.
    seed : int
        Root seed; replicate ``i`` uses ``SeedSequence(seed).spawn(n)[i]``,
        so the same seed gives the same study whatever the workers.
    out_dir : path
        Study folder; the replicates are streamed to ``out_dir/replicates``.
        A folder holding the same study is resumed; one holding another is
        refused (:class:`~failpattern.errors.InputError`).
    workers : int, optional
        Local processes (default: every core). Not with ``scheduler``.
    scheduler : str or distributed.Client, optional
        Dask scheduler address or client.
    card : str, path or StudyCard
        The study (``"ni2019"``).
    n_patients : int, optional
        Patients per cohort (the card's enrolled number by default).
    chunk_size : int, optional
        Replicates per chunk file (the engine's default otherwise).
    progress : bool
        Progress bar on stderr.
    alpha : float
        Significance level of the power.

    Returns
    -------
    StudySummary
    """
    from failpattern.study import load_study
    from failpattern.study.card import StudyCard

    card_obj = card if isinstance(card, StudyCard) else load_study(card)
    key = _study_key(card_obj)
    if n_patients is not None and (isinstance(n_patients, bool) or not isinstance(n_patients, int)
                                   or n_patients < 1):
        raise InputError(f"n_patients: must be a positive integer; got {n_patients!r}")
    task = functools.partial(study_task, study=key, n_patients=n_patients)
    out = Path(out_dir)
    version = f"{TASK_VERSION};study={key};n_patients={n_patients}"
    results = run_replicates(task, n_replicates, seed=seed, out_dir=out / REPLICATES_DIR,
                             workers=workers, scheduler=scheduler, chunk_size=chunk_size,
                             progress=progress, task_version=version)
    table = summary_table(results, card_obj, alpha=alpha)
    return StudySummary(table, results, int(n_replicates), int(seed), key, out)
