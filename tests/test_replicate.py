"""The replicate engine: reproducibility, resumption, study pinning and atomic chunks.

Results must not depend on how the work is spread, so every run here is
compared with a plain loop that seeds replicate ``i`` from
``np.random.SeedSequence(seed).spawn(n)[i]``: in-process, with two local
processes, on a Dask ``LocalCluster``, after an interruption and a resume.
Tasks are module-level functions so worker processes can unpickle them.
"""

from __future__ import annotations

import errno
import functools
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from failpattern import output
from failpattern.errors import FailpatternError, InputError
from failpattern.output import OutputWriteError
from failpattern.replicate import (ReplicateError, default_chunk_size, load_replicates,
                                   replicate_rng, replicate_seed, run_replicates, task_name)
from failpattern.replicate import engine, store
from failpattern.replicate.progress import Progress

SEED = 20190093


def toy_task(rng: np.random.Generator, index: int) -> pd.DataFrame:
    """Three ids; every fifth replicate has no ``count`` row (like a skipped analysis)."""
    z = rng.normal(size=3)
    ids = ["mean", "p", "count"]
    values = [float(z.mean()), float(rng.random()), float(rng.integers(0, 93))]
    if index % 5 == 0:
        ids, values = ids[:2], values[:2]
    return pd.DataFrame({"id": ids, "value": values, "ci_lower": np.nan, "ci_upper": np.nan})


def flaky_task(rng: np.random.Generator, index: int, *, fail_at: int, flag: str) -> pd.DataFrame:
    """``toy_task``, except that replicate ``fail_at`` raises while the file ``flag`` exists."""
    if index == fail_at and os.path.exists(flag):
        raise RuntimeError(f"simulated crash in replicate {index}")
    return toy_task(rng, index)


def replicate_column_task(rng: np.random.Generator, index: int) -> pd.DataFrame:
    return pd.DataFrame({"id": ["x"], "value": [1.0]}).assign(**({"replicate": 0} if index == 5 else {}))


def bad_output_task(rng: np.random.Generator, index: int):
    return {"id": "x", "value": rng.random()} if index == 3 else pd.DataFrame({"id": ["x"], "value": [1.0]})


def mixed_type_task(rng: np.random.Generator, index: int) -> pd.DataFrame:
    return pd.DataFrame({"id": ["x", "y"], "value": [1.0, "one"]})


def reference(n: int, seed: int = SEED) -> pd.DataFrame:
    """The plain loop every engine run must equal."""
    children = np.random.SeedSequence(seed).spawn(n)
    frames = [toy_task(np.random.default_rng(children[i]), i).assign(replicate=i) for i in range(n)]
    out = pd.concat(frames, ignore_index=True)
    return out[["replicate", *[c for c in out.columns if c != "replicate"]]]


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_exact=True, check_dtype=False)


def chunk_files(out: Path) -> list[str]:
    """Chunk files written so far; none (no folder yet) when a failure cancelled every chunk
    before one finished, which a cluster may do (the store creates the folder on first write)."""
    folder = out / "chunks"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ----------------------------------------------------------------------------- seeding
def test_seed_scheme_is_spawn():
    children = np.random.SeedSequence(7).spawn(50)
    for i in (0, 1, 17, 49):
        assert (replicate_rng(7, i).random(4) == np.random.default_rng(children[i]).random(4)).all()
        assert replicate_seed(7, i).spawn_key == children[i].spawn_key


# ----------------------------------------------------------------------------- determinism
def test_same_results_in_process_and_with_two_processes(tmp_path):
    n = 57
    ref = reference(n)
    one = run_replicates(toy_task, n, seed=SEED, out_dir=tmp_path / "one", workers=1, chunk_size=7,
                         progress=False)
    two = run_replicates(toy_task, n, seed=SEED, out_dir=tmp_path / "two", workers=2, chunk_size=4,
                         progress=False)
    same(one, ref)
    same(two, ref)
    same(load_replicates(tmp_path / "two"), ref)
    assert len(chunk_files(tmp_path / "two")) == 15  # ceil(57 / 4)


def test_same_results_on_dask_localcluster(tmp_path):
    import distributed  # the test extra installs it: never skipped

    n = 23
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        by_address = run_replicates(toy_task, n, seed=SEED, out_dir=tmp_path / "addr",
                                    scheduler=cluster.scheduler_address, chunk_size=3,
                                    progress=False)
        with distributed.Client(cluster, set_as_default=False) as client:
            by_client = run_replicates(toy_task, n, seed=SEED, out_dir=tmp_path / "client",
                                       scheduler=client, chunk_size=5, progress=False)
            assert client.status == "running"  # a caller's client is left open
            with pytest.raises(ReplicateError, match=r"replicate 9 \(chunk 1\)"):
                run_replicates(functools.partial(flaky_task, fail_at=9, flag=__file__), n,
                               seed=SEED, out_dir=tmp_path / "fail", scheduler=client,
                               chunk_size=5, progress=False)
    same(by_address, reference(n))
    same(by_client, reference(n))
    assert "chunk-000001.parquet" not in chunk_files(tmp_path / "fail")


# ----------------------------------------------------------------------------- resume
@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_study_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, workers):
    n, k = 40, 23
    flag = tmp_path / "crash"
    flag.touch()
    task = functools.partial(flaky_task, fail_at=k, flag=str(flag))
    out = tmp_path / "study"
    with pytest.raises(ReplicateError) as err:
        run_replicates(task, n, seed=SEED, out_dir=out, workers=workers, chunk_size=5,
                       progress=False)
    e = err.value
    assert e.index == k and e.chunk == k // 5 and e.error_type == "RuntimeError"
    assert f"replicate {k} (chunk 4) failed: RuntimeError: simulated crash in replicate {k}" in str(e)
    kept = chunk_files(out)
    assert "chunk-000004.parquet" not in kept
    assert {f"chunk-{c:06d}.parquet" for c in range(4)} <= set(kept)  # chunks before k were saved
    if workers == 1:
        assert len(kept) == 4  # in-process stops at once
    with pytest.raises(InputError, match="incomplete"):
        load_replicates(out)
    partial = load_replicates(out, allow_incomplete=True)
    assert partial["replicate"].nunique() == 5 * len(kept)

    stamps = {name: (out / "chunks" / name).stat().st_mtime_ns for name in kept}
    flag.unlink()
    log = io.StringIO()
    monkeypatch.setattr(engine, "Progress", functools.partial(Progress, stream=log, tty=False))
    resumed = run_replicates(task, n, seed=SEED, out_dir=out, workers=workers, progress=True)
    same(resumed, reference(n))
    assert {name: (out / "chunks" / name).stat().st_mtime_ns for name in kept} == stamps
    assert f"resuming: {5 * len(kept)}/{n} replicates already on disk" in log.getvalue()
    assert f"({8 - len(kept)} chunk(s) computed, {len(kept)} already on disk)" in log.getvalue()
    # a third run finds nothing to do and returns the same table
    same(run_replicates(task, n, seed=SEED, out_dir=out, workers=workers, progress=False), resumed)


def interrupted_task(rng: np.random.Generator, index: int, *, at: int, flag: str) -> pd.DataFrame:
    if index == at and os.path.exists(flag):
        raise KeyboardInterrupt  # as Ctrl-C would, in the middle of a chunk
    return toy_task(rng, index)


def test_ctrl_c_keeps_finished_chunks_and_resumes(tmp_path):
    flag = tmp_path / "ctrl-c"
    flag.touch()
    task = functools.partial(interrupted_task, at=13, flag=str(flag))
    out = tmp_path / "study"
    with pytest.raises(KeyboardInterrupt):
        run_replicates(task, 20, seed=SEED, out_dir=out, workers=1, chunk_size=4, progress=False)
    assert chunk_files(out) == [f"chunk-{c:06d}.parquet" for c in range(3)]
    flag.unlink()
    same(run_replicates(task, 20, seed=SEED, out_dir=out, workers=1, progress=False), reference(20))


def test_task_errors_name_the_replicate(tmp_path):
    with pytest.raises(ReplicateError, match=r"replicate 3 \(chunk 1\).*not a pandas.DataFrame"):
        run_replicates(bad_output_task, 10, seed=1, out_dir=tmp_path / "a", workers=1,
                       chunk_size=2, progress=False)
    assert chunk_files(tmp_path / "a") == ["chunk-000000.parquet"]
    with pytest.raises(ReplicateError, match=r"replicate 5 \(chunk 1\) failed: ValueError: .*'replicate' column"):
        run_replicates(replicate_column_task, 8, seed=1, out_dir=tmp_path / "c", workers=1,
                       chunk_size=4, progress=False)
    with pytest.raises(InputError, match=r"rows of replicates 0\.\.1 \(chunk 0\) cannot be stored"):
        run_replicates(mixed_type_task, 4, seed=1, out_dir=tmp_path / "b", workers=1, chunk_size=2,
                       progress=False)
    assert issubclass(ReplicateError, FailpatternError)


# ----------------------------------------------------------------------------- study pinning
def test_other_parameters_in_the_same_folder_are_refused(tmp_path):
    out = tmp_path / "study"
    run_replicates(toy_task, 6, seed=1, out_dir=out, workers=1, chunk_size=4, progress=False,
                   task_version="1")
    cases = [dict(seed=2), dict(n=7), dict(chunk_size=3), dict(task_version="2"),
             dict(task=flaky_task)]
    for change in cases:
        args = dict(task=toy_task, n=6, seed=1, chunk_size=4, task_version="1") | change
        with pytest.raises(InputError, match="different replicate study") as err:
            run_replicates(args["task"], args["n"], seed=args["seed"], out_dir=out, workers=1,
                           chunk_size=args["chunk_size"], task_version=args["task_version"],
                           progress=False)
        field = next(iter(change))
        assert {"n": "n_replicates", "task": "task"}.get(field, field) in str(err.value)
    # same parameters (chunk size taken from the folder) resume without error
    same(run_replicates(toy_task, 6, seed=1, out_dir=out, workers=1, progress=False,
                        task_version="1"), reference(6, seed=1))


def test_unrelated_folder_and_bad_arguments_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty but has no manifest"):
        run_replicates(toy_task, 3, seed=1, out_dir=tmp_path, progress=False)
    with pytest.raises(InputError, match="no manifest.json"):
        load_replicates(tmp_path)
    bad = [(dict(n_replicates=0), "n_replicates"), (dict(seed=-1), "seed"), (dict(seed=True), "seed"),
           (dict(seed=1.5), "seed"), (dict(chunk_size=0), "chunk_size"), (dict(workers=0), "workers"),
           (dict(workers=2, scheduler="tcp://127.0.0.1:1"), "workers")]
    for change, name in bad:
        kw = dict(n_replicates=3, seed=1, out_dir=tmp_path / "x", progress=False) | change
        n = kw.pop("n_replicates")
        with pytest.raises(InputError, match=f"^{name}: "):
            run_replicates(toy_task, n, **kw)
    with pytest.raises(InputError, match="cannot be pickled"):
        run_replicates(lambda rng, i: pd.DataFrame(), 4, seed=1, out_dir=tmp_path / "l",
                       workers=2, chunk_size=2, progress=False)


def test_default_chunk_size_gives_work_to_many_workers(tmp_path):
    assert [default_chunk_size(n) for n in (1, 50, 51, 100, 1000, 5000, 5001, 10**6)] == \
        [1, 1, 2, 2, 20, 100, 100, 100]
    run_replicates(toy_task, 7, seed=1, out_dir=tmp_path, workers=1, progress=False)
    assert store.read_manifest(tmp_path).chunk_size == 1 and len(chunk_files(tmp_path)) == 7


def test_task_names():
    assert task_name(toy_task).endswith("test_replicate.toy_task")
    assert task_name(functools.partial(flaky_task, fail_at=1, flag="x")).startswith("functools.partial(")


# ----------------------------------------------------------------------------- atomic writes
def test_chunk_files_appear_only_complete(tmp_path, monkeypatch):
    out = tmp_path / "study"
    seen = []
    real_replace = os.replace

    def checking_replace(src, dst):
        src, dst = Path(src), Path(dst)
        assert src.parent == dst.parent and src.name.startswith(".tmp-")
        assert not dst.exists()
        # everything visible under a final name is a whole, readable chunk
        seen.append(len(load_replicates(out, allow_incomplete=True)) if (out / "manifest.json").exists()
                    else 0)
        real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", checking_replace)
    run_replicates(toy_task, 12, seed=SEED, out_dir=out, workers=1, chunk_size=3, progress=False)
    assert len(seen) == 1 + 4  # manifest, then four chunks
    monkeypatch.setattr(output.os, "replace", real_replace)
    same(load_replicates(out), reference(12))


def test_a_crash_while_writing_leaves_no_chunk(tmp_path, monkeypatch):
    out = tmp_path / "study"
    calls = {"n": 0}
    real_replace = os.replace

    def failing_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 4:  # manifest, chunk 0, chunk 1, then the disk "fails" on chunk 2
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", failing_replace)
    with pytest.raises(OutputWriteError, match="No space left on device"):
        run_replicates(toy_task, 12, seed=SEED, out_dir=out, workers=1, chunk_size=3, progress=False)
    assert chunk_files(out) == ["chunk-000000.parquet", "chunk-000001.parquet"]
    # a killed process can leave a temporary file: it is never read and is cleaned up
    (out / "chunks" / ".tmp-deadbeef.parquet").write_bytes(b"PAR1 half a file")
    monkeypatch.setattr(output.os, "replace", real_replace)
    same(run_replicates(toy_task, 12, seed=SEED, out_dir=out, workers=1, progress=False),
         reference(12))
    assert not [p for p in (out / "chunks").iterdir() if p.name.startswith(".tmp-")]


def test_csv_chunks_round_trip_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "default_format", lambda: "csv")
    res = run_replicates(toy_task, 9, seed=SEED, out_dir=tmp_path, workers=1, chunk_size=4,
                         progress=False)
    assert chunk_files(tmp_path)[0].endswith(".csv")
    same(res, reference(9))


# ----------------------------------------------------------------------------- progress
def test_progress_lines_and_bar():
    log = io.StringIO()
    p = Progress(100, 20, stream=log, tty=False)
    for _ in range(8):
        p.update(10)
    p.close("done")
    lines = log.getvalue().splitlines()
    assert lines[0] == "resuming: 20/100 replicates already on disk"
    assert [ln.split()[0] for ln in lines[1:-1]] == [f"{k}/100" for k in range(30, 101, 10)]
    assert lines[-1] == "done"
    bar = io.StringIO()
    p = Progress(10, stream=bar, tty=True)
    p.update(10)
    p.close()
    assert "\r[" + "#" * 30 + "] 10/10 replicates (100%)" in bar.getvalue()
    quiet = io.StringIO()
    p = Progress(10, 5, stream=quiet, enabled=False)
    p.update(5)
    p.close("x")
    assert quiet.getvalue() == ""


def test_progress_counts_any_unit_and_shows_a_note():
    log = io.StringIO()
    p = Progress(4, stream=log, tty=True, unit="search steps")
    p.update(2, note="300/424 targets met")
    p.update(2)
    p.close()
    text = log.getvalue()
    assert "4/4 search steps (100%), 300/424 targets met," in text and "replicates" not in text
