"""What a study costs beside its replicates, cut without changing a byte of what it gives.

``failpattern study`` starts the workers' fork server with their modules before it reads the
card (:mod:`failpattern.replicate.workers`), summarises the chunks as the workers return them
instead of reading them back (``run_replicates(on_chunk=...)``, ``Accumulator.add(position=...)``)
and draws its two figures in two processes made while the replicates run. Each must leave the
results as they were: the summary of chunks taken in any order is the one read back in order,
a resumed study reads back only what it did not compute, and the figures drawn elsewhere are the
bytes drawn here. The speed is measured in ``benchmarks/bench_plan_batch.py``.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from failpattern.replicate import run_replicates, store, summary
from failpattern.replicate.study import (
    StudySummary,
    replicate_study,
    study_chunk_task,
    summary_table,
)
from failpattern.replicate.workers import (
    BASE_MODULES,
    STUDY_MODULES,
    context,
    task_modules,
)
from failpattern.study import load_study

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork server, /proc")


def _toy(seed: int = 5, n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n):
        if r % 5:  # an id first seen after the first chunk when chunks come in order
            rows.append((r, "late", float(rng.normal())))
        rows.append((r, "hr", float(rng.lognormal(0.2, 0.3))))
        rows.append((r, "p", float(rng.random()) if r % 7 else np.nan))
    return pd.DataFrame(rows, columns=["replicate", "id", "value"])


def _row_task(rng, index):
    return pd.DataFrame({"x": [rng.random(), float(index)]})


# ----------------------------------------------------------------------------- the summary as chunks arrive
def test_accumulator_takes_chunks_in_any_order_given_their_positions():
    """Chunks taken out of order, each with its position, give the summary (ids in the same order,
    every statistic bit for bit) of the same chunks taken in order."""
    res = _toy()
    res.loc[res["replicate"] == 0, "id"] = "hr"  # replicate 0 has only hr (no late, no p)
    res = res.drop_duplicates(["replicate", "id"])
    chunks = [res[(res["replicate"] >= lo) & (res["replicate"] < lo + 25)].astype({"id": "category"})
              for lo in range(0, 120, 25)]
    pub = {"hr": 1.2, "p": {"value": 0.04, "is_p_value": True}}
    in_order = summary.Accumulator()
    for c in chunks:
        in_order.add(c)
    shuffled = summary.Accumulator()
    for k in (3, 0, 4, 1, 2):
        shuffled.add(chunks[k], position=k)
    expected = in_order.summary(pub)
    pd.testing.assert_frame_equal(shuffled.summary(pub), expected, check_exact=True)
    pd.testing.assert_frame_equal(expected, summary.summarise(res, pub), check_exact=True)
    for j, id_ in enumerate(shuffled.ids):
        np.testing.assert_array_equal(shuffled.values(j), in_order.values(in_order.ids.index(id_)))


def test_on_chunk_gets_each_computed_chunk_once_written_and_not_those_on_disk(tmp_path):
    seen = {}

    def take(chunk, frame):
        assert store.chunk_path(tmp_path, chunk, store.default_format()).is_file()
        seen[chunk] = frame

    run_replicates(_row_task, 10, seed=3, out_dir=tmp_path, workers=1, chunk_size=3, progress=False,
                   load=False, on_chunk=take)
    assert sorted(seen) == [0, 1, 2, 3]
    manifest = store.read_manifest(tmp_path)
    for c, frame in seen.items():
        pd.testing.assert_frame_equal(frame.reset_index(drop=True),
                                      store.read_chunk(tmp_path, c, manifest.format), check_exact=True)
    store.chunk_path(tmp_path, 2, manifest.format).unlink()  # an interrupted study: chunk 2 missing
    seen.clear()
    run_replicates(_row_task, 10, seed=3, out_dir=tmp_path, workers=1, chunk_size=3, progress=False,
                   load=False, on_chunk=take)
    assert sorted(seen) == [2]


@linux_only
def test_on_chunk_runs_in_the_calling_process_with_workers(tmp_path):
    pids = set()
    run_replicates(_row_task, 12, seed=3, out_dir=tmp_path, workers=2, chunk_size=2, progress=False,
                   load=False, on_chunk=lambda c, f: pids.add(os.getpid()))
    assert pids == {os.getpid()}


def _read_back_table(result: StudySummary):
    folder = result.out_dir / "replicates"
    chunks = store.iter_chunks(folder, store.read_manifest(folder), categories=("id",))
    return summary_table(chunks, load_study(result.study))


def test_study_summarised_as_chunks_arrive_is_the_study_read_back(tmp_path):
    """The table made from the chunks as the workers returned them equals the table read back from
    the chunk files, and so does the table of a resumed study (which reads back the chunks an earlier
    run left and takes the others as they come)."""
    result = replicate_study(12, seed=5, out_dir=tmp_path / "s", workers=2, chunk_size=3, progress=False)
    pd.testing.assert_frame_equal(result.table, _read_back_table(result), check_exact=True)
    folder = tmp_path / "s" / "replicates"
    store.chunk_path(folder, 1, store.read_manifest(folder).format).unlink()
    resumed = replicate_study(12, seed=5, out_dir=tmp_path / "s", workers=1, chunk_size=3, progress=False)
    pd.testing.assert_frame_equal(resumed.table, result.table, check_exact=True)


# ----------------------------------------------------------------------------- the fork server
def test_study_tasks_name_the_modules_their_workers_import():
    task = functools.partial(study_chunk_task, study="ni2019", n_patients=None)
    assert task_modules(task) == STUDY_MODULES
    assert task_modules(_row_task) == ()
    assert "failpattern.replicate.study" in STUDY_MODULES


@linux_only
def test_fork_server_preloads_the_task_modules():
    ctx = context(STUDY_MODULES)
    assert ctx.get_start_method() == "forkserver"
    from multiprocessing import forkserver

    assert forkserver._forkserver._preload_modules[:len(BASE_MODULES)] == list(BASE_MODULES)
    assert set(STUDY_MODULES) <= set(forkserver._forkserver._preload_modules)


def test_starting_the_fork_server_needs_no_pandas():
    """``failpattern study`` starts the fork server first thing: the module that does it, with its
    package, imports neither pandas nor numpy."""
    code = ("import sys, failpattern.replicate.workers; "
            "print(sorted(m for m in ('pandas', 'numpy', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_package_names_are_still_there_on_first_use():
    import failpattern.replicate as rep

    assert rep.run_replicates is run_replicates and rep.summary is summary
    assert set(rep.__all__) <= set(dir(rep))
    with pytest.raises(AttributeError):
        _ = rep.no_such_name


# ----------------------------------------------------------------------------- the figures
@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return replicate_study(4, seed=11, out_dir=tmp_path_factory.mktemp("fig"), workers=1, progress=False).table


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@linux_only
def test_figures_drawn_in_figure_processes_are_the_figures_drawn_here(table, tmp_path):
    from failpattern.cli.study import FIGURES, _figure_drawers

    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    with _figure_drawers(False) as drawers:
        assert drawers.pool is None
        drawers.draw(table, "a title", here)
    with _figure_drawers(True) as drawers:
        assert drawers.pool is not None
        drawers.draw(table, "a title", there)
    assert sorted(_files(here)) == sorted(f"{n}.{e}" for n in FIGURES for e in ("png", "svg"))
    assert _files(here) == _files(there)


@linux_only
def test_figures_are_drawn_here_when_a_figure_process_died(table, tmp_path):
    from failpattern.cli.study import _figure_drawers

    with _figure_drawers(True) as drawers:
        for f in drawers.ready:
            f.result(timeout=120)
        for pid in list(drawers.pool._processes):
            os.kill(pid, signal.SIGKILL)
        drawers.draw(table, "a title", tmp_path)
    assert len(_files(tmp_path)) == 4
