"""The batched analysis plan (study.plan_batch) and the replicate study on it (replicate.study).

* run_plan_batch equals run_plan cohort by cohort on random simulated cohorts (the same ids in
  the same order, values to 1e-10 relative; the model fits, whose batched Newton iteration
  stops at the root while the one-cohort kernel stops up to its last step short of it, to
  1e-8), including small cohorts where groups are empty and analyses are skipped;
* each cohort's values are bit for bit the same whatever the other cohorts of the batch;
* the stacked draw of many replicates is bit for bit each replicate's own draw;
* the replicate study on the batched path gives the per-cohort path's rows, and the same
  bytes whatever the chunk size.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import warnings

import numpy as np
import pandas as pd
import pytest

from failpattern.cohort import trusted_cohort
from failpattern.replicate import ReplicateError, run_replicates
from failpattern.replicate.store import replicate_rng
from failpattern.replicate.study import (
    draw_stacked,
    replicate_study,
    study_chunk_task,
    study_task,
)
from failpattern.simulate import DEFAULT_PARAMS
from failpattern.simulate.frame import to_frame
from failpattern.simulate.generate import draw_batch
from failpattern.study import load_study
from failpattern.study.plan import run_plan
from failpattern.study.plan_batch import run_plan_batch, stack_batches

CARD = load_study("ni2019")
#: Ids of model fits (Cox, Fine-Gray): compared to 1e-8 (see the module docstring).
MODEL_PREFIXES = ("pfs1.uni.", "pfs1.multi.", "t3.uni.", "t3.multi.")


def _cohorts(seed: int, replicates: int, n: int):
    return draw_batch(DEFAULT_PARAMS, np.random.default_rng(seed), replicates, n)


def _plan_values(batch, r: int) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        v = run_plan(trusted_cohort(to_frame(batch, r)), card=CARD).values
    return v[["id", "value"]].reset_index(drop=True)


def _assert_close(ids, expected, got, where):
    expected, got = np.asarray(expected, float), np.asarray(got, float)
    nan = np.isnan(expected)
    assert (nan == np.isnan(got)).all(), f"{where}: NaN at {list(np.asarray(ids)[nan != np.isnan(got)])}"
    model = np.array([i.startswith(MODEL_PREFIXES) for i in ids])
    rtol = np.where(model, 1e-8, 1e-10)
    with np.errstate(invalid="ignore"):
        bad = ~nan & (np.abs(got - expected) > rtol * np.abs(expected))
    assert not bad.any(), f"{where}: " + ", ".join(
        f"{i} {e!r} vs {g!r}" for i, e, g in zip(np.asarray(ids)[bad], expected[bad], got[bad]))


@pytest.mark.parametrize(("seed", "n", "replicates"), [(1, 93, 6), (2, 93, 6), (3, 30, 10), (4, 12, 10)])
def test_equals_run_plan_per_cohort(seed, n, replicates):
    batch = _cohorts(seed, replicates, n)
    got = run_plan_batch(batch, card=CARD)
    skipped = 0
    for r in range(replicates):
        ref, mine = _plan_values(batch, r), got.values_of(r)
        assert list(mine["id"]) == list(ref["id"]), f"cohort {r}: ids or their order differ"
        _assert_close(ref["id"], ref["value"], mine["value"], f"n={n} seed={seed} cohort {r}")
        skipped += len(got.ids) - len(ref)
    if n <= 30:  # small cohorts: empty groups, skipped analyses were exercised
        assert skipped > 0


@pytest.mark.parametrize(("seed", "n"), [(5, 93), (6, 30)])
def test_confidence_limits_and_ranges_equal_run_plans(seed, n):
    """The printed parts beside each value (KM median, HR, SHR and CIF limits; ranges of the Table 1
    medians and of follow-up) are the plan's, cohort by cohort."""
    batch = _cohorts(seed, 5, n)
    got = run_plan_batch(batch, card=CARD)
    ids = np.asarray(got.ids, dtype=object)
    filled = 0
    for r in range(5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = run_plan(trusted_cohort(to_frame(batch, r)), card=CARD).values.set_index("id")
        keep = got.present[r]
        for part in ("ci_lower", "ci_upper", "range_min", "range_max"):
            expected = ref.loc[ids[keep], part].to_numpy(float)
            _assert_close(ids[keep], expected, got.part(part)[r, keep], f"seed={seed} cohort {r} {part}")
            filled += np.count_nonzero(~np.isnan(expected))
    assert filled > 5 * 60  # medians, HRs, SHRs, CIFs and ranges all carry parts


def test_each_cohort_independent_of_its_batch():
    batches = [_cohorts(100 + i, 1, 60) for i in range(10)]
    whole = run_plan_batch(stack_batches(batches), card=CARD)
    for size in (1, 4):
        parts = [run_plan_batch(stack_batches(batches[i:i + size]), card=CARD) for i in range(0, 10, size)]
        assert all(p.ids == whole.ids for p in parts)
        present = np.concatenate([p.present for p in parts])
        values = np.concatenate([p.values for p in parts])
        assert np.array_equal(present, whole.present)
        assert np.array_equal(values, whole.values, equal_nan=True), f"chunks of {size}"


def test_long_table_and_values_of_agree():
    batch = _cohorts(5, 3, 40)
    got = run_plan_batch(batch, card=CARD)
    long = got.long(np.array([7, 8, 9]))
    assert list(long.columns) == ["replicate", "id", "value"]
    for r in range(3):
        part = long[long["replicate"] == 7 + r]
        assert list(part["id"]) == list(got.values_of(r)["id"])
        assert np.array_equal(part["value"].to_numpy(), got.values_of(r)["value"].to_numpy(), equal_nan=True)


def test_stacked_draw_is_each_replicates_own_draw():
    rngs = [replicate_rng(11, i) for i in range(9)]
    stacked = draw_stacked(DEFAULT_PARAMS, rngs, 50)
    one_by_one = stack_batches([draw_batch(DEFAULT_PARAMS, replicate_rng(11, i), 1, 50) for i in range(9)])
    for f in dataclasses.fields(stacked):
        a, b = getattr(stacked, f.name), getattr(one_by_one, f.name)
        if f.name == "calendar":
            assert a == b
            continue
        pairs = [(a[k], b[k]) for k in a] if isinstance(a, dict) else [(a, b)]
        for x, y in pairs:
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name


def test_stacked_draw_falls_back_when_the_simulators_calls_differ(monkeypatch):
    generate = importlib.import_module("failpattern.simulate.generate")
    real = generate.draw_batch

    def data_dependent(p, rng, replicates, n, *, design=None):  # an extra draw only for several cohorts
        if replicates > 1:
            rng.random((replicates, 3))
        return real(p, rng, replicates, n, design=design)

    monkeypatch.setattr(generate, "draw_batch", data_dependent)
    got = draw_stacked(DEFAULT_PARAMS, [replicate_rng(4, i) for i in range(3)], 20)
    ref = stack_batches([real(DEFAULT_PARAMS, replicate_rng(4, i), 1, 20) for i in range(3)])
    assert np.array_equal(got.pfs1_d, ref.pfs1_d) and np.array_equal(got.age, ref.age)
    assert all(np.array_equal(got.fail[k], ref.fail[k]) for k in ref.fail)


def _run(tmp_path, name, task, n, chunk_size=None):
    return run_replicates(functools.partial(task), n, seed=3, out_dir=tmp_path / name, workers=1,
                          progress=False, chunk_size=chunk_size)


def test_study_paths_agree_and_batched_is_chunking_invariant(tmp_path):
    per = _run(tmp_path, "per", study_task, 12)
    batched = [_run(tmp_path, f"b{size}", study_chunk_task, 12, size) for size in (12, 5, 2)]
    for b in batched[1:]:
        assert b.equals(batched[0])  # byte-identical whatever the chunking
    b = batched[0]
    assert per.dtypes.equals(b.dtypes)
    assert per[["replicate", "id"]].equals(b[["replicate", "id"]])
    _assert_close(per["id"], per["value"], b["value"], "study")


def test_replicate_study_batched_option(tmp_path):
    a = replicate_study(12, seed=5, out_dir=tmp_path / "a", workers=1, progress=False, batched=False)
    b = replicate_study(12, seed=5, out_dir=tmp_path / "b", workers=1, progress=False)
    assert a.results[["replicate", "id"]].equals(b.results[["replicate", "id"]])
    _assert_close(a.results["id"], a.results["value"], b.results["value"], "replicate_study")
    assert list(a.table["id"]) == list(b.table["id"])


def _failing_chunk(rngs, indices):
    raise ValueError("boom")


_failing_chunk.chunked = True


def test_chunked_task_failure_names_the_chunk(tmp_path):
    with pytest.raises(ReplicateError) as err:
        run_replicates(_failing_chunk, 6, seed=1, out_dir=tmp_path / "f", workers=1, progress=False,
                       chunk_size=3)
    assert err.value.index == 0 and "boom" in str(err.value)


def test_study_results_are_not_held_and_stored_chunks_read_as_strings(tmp_path):
    """replicate_study reads its results from the folder when asked (not held), the chunk task hands
    ids over as categories, and a stored chunk reads back as the per-cohort path's strings."""
    from failpattern.replicate import store

    out = study_chunk_task([replicate_rng(3, i) for i in range(4)], np.arange(4))
    assert isinstance(out["id"].dtype, pd.CategoricalDtype)
    store.write_chunk(tmp_path / "c", 0, out, "parquet")
    back = store.read_chunk(tmp_path / "c", 0, "parquet")
    # as a chunk of plain strings reads back (object under pandas 2, str under pandas 3)
    store.write_chunk(tmp_path / "p", 0, out.assign(id=out["id"].astype(str).astype(object)), "parquet")
    plain = store.read_chunk(tmp_path / "p", 0, "parquet")
    assert not isinstance(back["id"].dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(back["id"])
    pd.testing.assert_frame_equal(back, plain)
    s = replicate_study(6, seed=2, out_dir=tmp_path / "s", workers=1, progress=False)
    assert "results" not in vars(s)
    pd.testing.assert_frame_equal(s.results, run_replicates(
        functools.partial(study_chunk_task, study="ni2019", n_patients=None), 6, seed=2,
        out_dir=tmp_path / "s" / "replicates", workers=1, progress=False,
        task_version="1;study=ni2019;n_patients=None"))
