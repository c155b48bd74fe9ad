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

By default the study runs on the batched path instead: :func:`study_chunk_task`
takes a whole chunk of replicates (the engine calls it with each replicate's
own generator), draws their cohorts as arrays (:func:`draw_stacked`: each
replicate's cohort exactly as its own ``draw_batch`` gives it) and runs
:func:`~failpattern.study.plan_batch.run_plan_batch` on all of them at once,
about ten times less CPU per replicate. It gives the rows of
:func:`study_task` (values to rounding, model fits to about 1e-9 relative)
and the same bytes whatever the chunking, workers or scheduler
(``tests/test_plan_batch.py``); ``replicate_study(..., batched=False)`` runs
the per-cohort reference.

**Generators.** The cohorts come from the calibrated model (``generator="model"``,
the default: what a cohort of this design gives when the model's effects are
true), or from resampling one cohort's patients with replacement
(``generator="bootstrap"``, :func:`bootstrap_task`; the shipped reconstructed
cohort unless ``cohort`` names another): at the effect sizes that cohort carries,
which for the reconstruction are the published ones, the share of resamples
with ``p < 0.05`` estimates the power of each published test. The summary
says which generator made it.
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
from failpattern.replicate import store
from failpattern.replicate.engine import load_replicates, run_replicates
from failpattern.replicate.summary import Accumulator, summarise
from failpattern.replicate.workers import STUDY_MODULES

__all__ = [
    "REPLICATES_DIR",
    "TASK_VERSION",
    "StudySummary",
    "GENERATORS",
    "batched_chunk_size",
    "bootstrap_task",
    "draw_stacked",
    "format_summary",
    "replicate_study",
    "study_chunk_task",
    "study_task",
    "summary_markdown",
    "summary_table",
]

#: Bump when :func:`study_task` changes what it returns, so old folders are not resumed.
TASK_VERSION = "1"
#: Subfolder of ``out_dir`` holding the engine's manifest and chunks.
REPLICATES_DIR = "replicates"
#: Where a study's cohorts come from (see the module docstring).
GENERATORS = ("model", "bootstrap")
#: Methods of card numbers that are not computed from patient data.
_NOT_DATA = ("protocol", "cited")


def batched_chunk_size(n_replicates: int) -> int:
    """Replicates per chunk of a new study on the batched path: ``ceil(n / 20)`` clipped to
    ``[50, 1000]``. The batched plan costs about a third of a second per call plus a little
    per cohort, so its chunks are larger than the engine's default (at most 100); at most
    1,000 cohorts keep a worker's memory at some hundreds of MB. It depends on
    ``n_replicates`` only, and the results do not depend on it."""
    return min(1000, max(50, -(-int(n_replicates) // 20)))


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

    card = _card(study)
    frame = simulate(card, n=n_patients, seed=rng, mode="random")
    return _plan_rows(trusted_cohort(frame), card)  # generated: no file checks


def _plan_rows(cohort, card) -> pd.DataFrame:
    """``id`` and ``value`` of the plan on one cohort (a degenerate fit gives NaN, counted as missing)."""
    from failpattern.study.plan import run_plan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # the plan's own table, read only: PlanResult.values would copy all its columns
        values = run_plan(cohort, card=card)._values
    return pd.DataFrame({"id": values["id"].astype(str).to_numpy(),
                         "value": values["value"].to_numpy(dtype=np.float64, copy=True)})


@lru_cache(maxsize=4)
def _source_cohort(path: str):
    from failpattern.cohort import load_cohort

    return load_cohort(path)


def bootstrap_task(rng: np.random.Generator, index: int, *, study: str = "ni2019", cohort: str) -> pd.DataFrame:
    """One bootstrap replicate: a cohort's patients drawn with replacement, the plan run on them.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the patients (the replicate's own generator).
    index : int
        Not used (``rng`` is already the replicate's).
    study : str
        Name or path of the study card, read once per process.
    cohort : str
        Path of the cohort file resampled, loaded and validated once per process.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``value``: the plan's reproduced quantities, as :func:`study_task` gives them.
    """
    card, base = _card(study), _source_cohort(cohort)
    return _plan_rows(base.resample(rng.integers(0, base.n_patients, size=base.n_patients)), card)


class _Recorder:
    """A generator's stand-in that hands out its draws and records them, call by call."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.calls, self.draws = rng, [], []

    def _draw(self, kind: str, shape):
        out = getattr(self.rng, kind)(shape)
        self.calls.append((kind, tuple(np.shape(out))[1:]))
        self.draws.append(out.reshape(-1))
        return out

    def random(self, shape):
        return self._draw("random", shape)

    def standard_normal(self, shape):
        return self._draw("standard_normal", shape)


class _ReplayMismatch(RuntimeError):
    """The simulator's calls for many replicates differ from those recorded for one."""


class _Replay:
    """A generator's stand-in that hands out given ``(R, ...)`` blocks in order, checking each
    call against the recorded one."""

    def __init__(self, calls, blocks):
        self.calls, self.blocks, self.k = calls, blocks, 0

    def _next(self, kind: str, shape):
        want, tail = self.calls[self.k]
        block = self.blocks[self.k]
        if kind != want or tuple(shape)[1:] != tail:
            raise _ReplayMismatch(f"the simulator asked for {kind}{tuple(shape)} where replicate 0 asked for "
                               f"{want}(1, ...{tail}): its draws depend on the data")
        self.k += 1
        return block

    def random(self, shape):
        return self._next("random", shape)

    def standard_normal(self, shape):
        return self._next("standard_normal", shape)


def draw_stacked(params, rngs, n: int, *, design=None):
    """The cohorts ``draw_batch(params, rngs[i], 1, n, design=design)`` for every ``i``, stacked as one Batch.

    Why not draw them one by one: ``draw_batch`` on one cohort is about 1 ms of small numpy
    calls, more than the batched plan of the cohort. The simulator draws every random number
    in the same order and shapes whatever the data (its contract), so the draws of replicate 0
    are recorded call by call, every other replicate's generator makes the same calls (its
    own stream, unchanged), and one ``draw_batch`` over all replicates is fed the stacked
    draws. Its arithmetic is elementwise per replicate, so each row is the cohort that
    replicate's own ``draw_batch`` gives (checked in ``tests/test_plan_batch.py``, bit for bit).
    Should a simulator make its calls depend on the data, the mismatch is seen and the cohorts
    are drawn one by one instead (the generators rewound), so the result stays the same.
    """
    from failpattern.simulate.generate import draw_batch
    from failpattern.study.plan_batch import stack_batches

    states = [rng.bit_generator.state for rng in rngs]
    first = _Recorder(rngs[0])
    if len(rngs) == 1:
        return draw_batch(params, first, 1, n, design=design)
    draw_batch(params, first, 1, n, design=design)
    calls = first.calls
    per = [np.concatenate(first.draws)]
    for rng in rngs[1:]:
        parts = []
        k = 0
        while k < len(calls):  # consecutive calls of one kind: one call (the same stream)
            kind, tail = calls[k]
            j = k
            while j < len(calls) and calls[j] == (kind, tail):
                j += 1
            parts.append(getattr(rng, kind)((j - k,) + tail).reshape(-1))
            k = j
        per.append(np.concatenate(parts))
    stacked = np.stack(per)                                   # (R, all draws of one replicate)
    blocks, at = [], 0
    for kind, tail in calls:
        size = int(np.prod(tail))
        blocks.append(np.ascontiguousarray(stacked[:, at:at + size]).reshape((len(rngs),) + tail))
        at += size
    replay = _Replay(calls, blocks)
    try:
        batch = draw_batch(params, replay, len(rngs), n, design=design)
        if replay.k != len(calls):
            raise _ReplayMismatch(f"the simulator made {replay.k} calls for many replicates, {len(calls)} for one")
    except (_ReplayMismatch, IndexError):
        for rng, state in zip(rngs, states):
            rng.bit_generator.state = state
        return stack_batches([draw_batch(params, rng, 1, n, design=design) for rng in rngs])
    return batch


def study_chunk_task(rngs: list, indices, *, study: str = "ni2019",
                     n_patients: int | None = None) -> pd.DataFrame:
    """A chunk of replicates on the batched path: each cohort drawn from its replicate's own
    generator (as :func:`study_task` draws it), all of them run through
    :func:`~failpattern.study.plan_batch.run_plan_batch` at once.

    Parameters
    ----------
    rngs : list of numpy.random.Generator
        The replicates' generators, in the order of ``indices``.
    indices : array_like of int
        Replicate indices.
    study, n_patients
        As :func:`study_task`.

    Returns
    -------
    pandas.DataFrame
        ``replicate``, ``id``, ``value``: the rows :func:`study_task` gives for each replicate,
        with the engine's ``replicate`` column; the same rows whatever the chunk.
    """
    from failpattern.simulate import DEFAULT_PARAMS
    from failpattern.study.design import design_for
    from failpattern.study.plan_batch import run_plan_batch

    card = _card(study)
    n = int(card.get("cohort.enrolled.n").value) if n_patients is None else n_patients
    batch = draw_stacked(DEFAULT_PARAMS, list(rngs), n, design=design_for(card))
    with warnings.catch_warnings():  # a degenerate fit in one cohort gives NaN, counted as missing
        warnings.simplefilter("ignore", RuntimeWarning)
        # ids as categories: cheap to send to the main process; stored as strings (store.write_chunk)
        return run_plan_batch(batch, card=card).long(np.asarray(indices, dtype=np.int64), categorical=True)


#: The engine runs :func:`study_chunk_task` a chunk at a time (``task(rngs, indices)``).
study_chunk_task.chunked = True

#: What the tasks' workers import, imported once by the fork server they are forked from
#: (:mod:`failpattern.replicate.workers`) instead of by each worker at its first chunk.
study_chunk_task.worker_modules = study_task.worker_modules = bootstrap_task.worker_modules = STUDY_MODULES


@dataclass(frozen=True)
class StudySummary:
    """Result of :func:`replicate_study`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per published number the plan reproduces (:func:`summary_table`).
    n_replicates, seed : int
    study : str
        Card name or path.
    out_dir : pathlib.Path
        The study folder (the engine's chunks are in ``out_dir / "replicates"``).
    generator : str
        Where the cohorts came from, in words: the calibrated model, or bootstrap
        resamples of a named cohort file.
    results : pandas.DataFrame
        Every replicate's values: ``replicate``, ``id``, ``value``, read from ``out_dir`` when
        asked for (:func:`~failpattern.replicate.load_replicates`). Not held: for 100,000
        replicates that is some 70 million rows, several GB as a DataFrame.
    """

    table: pd.DataFrame
    n_replicates: int
    seed: int
    study: str
    out_dir: Path
    generator: str = "the calibrated model (random mode)"

    @property
    def results(self) -> pd.DataFrame:
        """Every replicate's values, read from the study folder (a new frame on each access)."""
        return load_replicates(self.out_dir / REPLICATES_DIR)


def _data_numbers(card) -> pd.DataFrame:
    """The card's numbers that are computed from patient data (the ones a study reports)."""
    nums = card.numbers
    return nums[~nums["method"].isin(_NOT_DATA)]


def summary_table(results: pd.DataFrame, card, *, alpha: float = 0.05) -> pd.DataFrame:
    """Per published number: distribution of the reproduced values, percentile, power.

    Parameters
    ----------
    results : pandas.DataFrame, iterable of pandas.DataFrame or Accumulator
        ``replicate``, ``id``, ``value`` (from :func:`~failpattern.replicate.load_replicates`), or
        the same rows as chunk frames of disjoint replicates, each by replicate
        (:func:`~failpattern.replicate.store.iter_chunks`), summarised one at a time, or an
        :class:`~failpattern.replicate.summary.Accumulator` that has taken them: the same table.
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
    nums = _data_numbers(card)
    if isinstance(results, pd.DataFrame):
        s = summarise(results, published=nums[["id", "value", "method"]], alpha=alpha)
        produced = set(results["id"].unique())
    else:  # chunk frames, taken one at a time (a large study's results are not held at once)
        acc = results
        if not isinstance(acc, Accumulator):
            acc = Accumulator(keep=set(nums["id"]))  # only the card's numbers: the others are not reported
            for frame in results:
                acc.add(frame)
        s = acc.summary(nums[["id", "value", "method"]], alpha=alpha)
        produced = set(acc.ids)
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
                    progress: bool = True, alpha: float = 0.05, batched: bool = True,
                    generator: str = "model", cohort: str | os.PathLike | None = None) -> StudySummary:
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
    batched : bool
        Run each chunk's cohorts through the batched plan (:func:`study_chunk_task`, the
        default); ``False`` runs the plan one cohort at a time (:func:`study_task`), the
        reference the batched path is checked against. Same replicates and ids, values equal
        to rounding (model fits to about 1e-10); a folder made by one is not resumed by the other.
    generator : {"model", "bootstrap"}
        ``"model"``: cohorts drawn from the calibrated model. ``"bootstrap"``: the
        patients of ``cohort`` resampled with replacement (:func:`bootstrap_task`, one
        cohort at a time; ``n_patients`` and ``batched`` do not apply).
    cohort : path, optional
        The cohort file a bootstrap resamples; the shipped reconstructed cohort
        (``data/synthetic/ni2019_exact.csv``) by default, for the ni2019 card only.
        A folder made from another file (or another version of it) is not resumed.

    Returns
    -------
    StudySummary

    Raises
    ------
    InputError
        Unknown generator, ``cohort`` without the bootstrap, a cohort file that does not
        load, or a bootstrap of another card without ``cohort``.
    """
    from failpattern.study import load_study
    from failpattern.study.card import StudyCard

    card_obj = card if isinstance(card, StudyCard) else load_study(card)
    key = _study_key(card_obj)
    if n_patients is not None and (isinstance(n_patients, bool) or not isinstance(n_patients, int)
                                   or n_patients < 1):
        raise InputError(f"n_patients: must be a positive integer; got {n_patients!r}")
    if generator not in GENERATORS:
        raise InputError(f"generator: must be one of {', '.join(GENERATORS)}; got {generator!r}")
    out = Path(out_dir)
    if generator == "bootstrap":
        path, digest = _bootstrap_source(cohort, card_obj)
        task = functools.partial(bootstrap_task, study=key, cohort=str(path))
        version = f"{TASK_VERSION};study={key};bootstrap={digest}"
        described = f"bootstrap resamples of {path.name}, {_source_cohort(str(path)).n_patients} patients each"
    else:
        if cohort is not None:
            raise InputError("cohort: only a bootstrap resamples a cohort; pass generator='bootstrap'")
        task = functools.partial(study_chunk_task if batched else study_task, study=key, n_patients=n_patients)
        if batched and chunk_size is None and store.read_manifest(out / REPLICATES_DIR) is None:
            chunk_size = batched_chunk_size(n_replicates)
        version = f"{TASK_VERSION};study={key};n_patients={n_patients}"
        described = "the calibrated model (random mode)"
    folder = out / REPLICATES_DIR
    # summarised a chunk at a time: the main process holds each id's values, not the long rows.
    # The chunks this run computes are taken as they arrive (while the workers compute the
    # others), not read back; only those an earlier run left on disk are read.
    acc = Accumulator(keep=set(_data_numbers(card_obj)["id"]))
    taken: set[int] = set()

    def take(chunk: int, frame: pd.DataFrame) -> None:
        acc.add(frame, position=chunk)
        taken.add(chunk)

    run_replicates(task, n_replicates, seed=seed, out_dir=folder, workers=workers, scheduler=scheduler,
                   chunk_size=chunk_size, progress=progress, task_version=version, load=False, on_chunk=take)
    manifest = store.read_manifest(folder)
    for c in range(manifest.n_chunks):
        if c not in taken:
            acc.add(store.read_chunk(folder, c, manifest.format, categories=("id",)), position=c)
    table = summary_table(acc, card_obj, alpha=alpha)
    return StudySummary(table, int(n_replicates), int(seed), key, out, described)


def _bootstrap_source(cohort, card) -> tuple[Path, str]:
    """The cohort file a bootstrap resamples, checked to load, and a digest of its bytes."""
    import hashlib

    from failpattern._resources import synthetic_path

    if cohort is None:
        if card.name != "ni2019":
            raise InputError(f"cohort: a bootstrap of study {card.name!r} needs the cohort file to resample "
                             "(the shipped reconstructed cohort is of ni2019)")
        cohort = synthetic_path("ni2019_exact.csv")
    path = Path(cohort).resolve()
    if not path.is_file():
        raise InputError(f"cohort: {cohort} is not a file")
    _source_cohort(str(path))  # a file that breaks the format is refused here, with its problems
    return path, hashlib.sha256(path.read_bytes()).hexdigest()[:16]
