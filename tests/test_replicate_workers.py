"""Worker processes end with their parent (even by ``kill -9``); a bad ``--scheduler`` is a message.

The parent of a process tree is killed with SIGKILL and its session is
watched for survivors (``tests/orphans.py``). Quick scripts here cover both
pools (the forkserver replicate workers, the forked figure worker) and a
parent that dies before its worker set its guards; the whole commands
(``failpattern reproduce``, ``failpattern study``), three kills each, run
with ``FAILPATTERN_SLOW_TESTS=1``, and ten each with timings in
``benchmarks/bench_orphans.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from failpattern.cli.study import study_cmd
from failpattern.errors import InputError
from failpattern.replicate import run_replicates
from failpattern.replicate.runners import SCHEDULER_TIMEOUT
from orphans import failpattern_command, kill_trial

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
slow = pytest.mark.skipif(not os.environ.get("FAILPATTERN_SLOW_TESTS"),
                          reason="runs whole commands three times each; set FAILPATTERN_SLOW_TESTS=1")

UNREACHABLE = "tcp://127.0.0.1:1"  # loopback, nothing listens on port 1

REPLICATE_SCRIPT = """
import sys, time
import pandas as pd
from failpattern.replicate import run_replicates

def slow(rng, index):
    time.sleep(0.2)
    return pd.DataFrame({"x": [1.0]})

if __name__ == "__main__":
    run_replicates(slow, 1000, seed=1, out_dir=sys.argv[1], workers=2, progress=False)
"""

FIGURE_SCRIPT = """
import sys, time
from failpattern.report import figures

def _save_some(names):  # stands in for the drawing, in both processes
    time.sleep(60)
    return []

_save_some.__module__ = figures.__name__  # pickled by reference to the worker, like the real one
figures._save_some = _save_some
figures.save_paper_figures(None, None, sys.argv[1], jobs=2)
"""

LATE_SCRIPT = """
import multiprocessing, os, time
from failpattern._lifeline import die_with_parent

def worker(parent):
    while os.getppid() == parent:  # until the parent is killed
        time.sleep(0.01)
    die_with_parent()
    time.sleep(60)

if __name__ == "__main__":
    multiprocessing.get_context("fork").Process(target=worker, args=(os.getpid(),)).start()
    time.sleep(60)
"""


def _script(tmp_path, text: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(text))
    return str(path)


def _assert_none_survive(trial, children: int) -> None:
    assert len(trial.children) >= children, trial.children
    assert not trial.survivors, f"alive 5 s after the parent's SIGKILL: {trial.survivors}"


# ----------------------------------------------------------------------------- no orphans
@linux_only
def test_replicate_workers_and_fork_server_end_with_their_parent(tmp_path):
    trial = kill_trial([sys.executable, _script(tmp_path, REPLICATE_SCRIPT), str(tmp_path / "out")],
                       children=3)
    _assert_none_survive(trial, 3)  # the fork server, two workers (and the resource tracker)
    assert any("forkserver" in c for c in trial.children.values())


@linux_only
def test_forked_figure_worker_ends_with_its_parent(tmp_path):
    trial = kill_trial([sys.executable, _script(tmp_path, FIGURE_SCRIPT), str(tmp_path)], children=1)
    _assert_none_survive(trial, 1)


@linux_only
def test_worker_whose_parent_ended_before_its_guards_ends(tmp_path):
    trial = kill_trial([sys.executable, _script(tmp_path, LATE_SCRIPT)], children=1, settle=0.0)
    _assert_none_survive(trial, 1)


@slow
@linux_only
@pytest.mark.parametrize("command, children", [
    (("reproduce",), 1),
    (("study", "--replicates", "400", "--workers", "2", "--quiet"), 3),
], ids=["reproduce", "study"])
def test_killing_a_command_leaves_no_worker(tmp_path, command, children):
    for k in range(3):
        trial = kill_trial(failpattern_command(*command, "--out", str(tmp_path / str(k))),
                           children=children)
        _assert_none_survive(trial, children)


# ----------------------------------------------------------------------------- --scheduler
@pytest.mark.parametrize("address", ["garbage", "", "foo://127.0.0.1:1", "tcp://127.0.0.1:port", 8786])
def test_malformed_scheduler_address_is_an_input_error(tmp_path, address):
    start = time.monotonic()
    with pytest.raises(InputError, match=r"^scheduler: .* is not a Dask scheduler address"):
        run_replicates(lambda rng, i: pd.DataFrame(), 2, seed=1, out_dir=tmp_path, scheduler=address,
                       progress=False)
    assert time.monotonic() - start < 5  # an unknown scheme took 10 s before addresses were checked


def test_unreachable_scheduler_exits_2_with_a_message(tmp_path):
    start = time.monotonic()
    result = CliRunner().invoke(study_cmd, ["--replicates", "2", "--scheduler", UNREACHABLE, "--quiet",
                                            "--out", str(tmp_path)], catch_exceptions=False)
    elapsed = time.monotonic() - start
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: scheduler: no Dask scheduler answered at '{UNREACHABLE}' "
                                    f"within {SCHEDULER_TIMEOUT:g} s")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert elapsed < 10


def test_malformed_scheduler_exits_2_at_once_with_one_line(tmp_path):
    """A whole process: a half-made Dask client would print a traceback at exit, 10 s later."""
    start = time.monotonic()
    done = subprocess.run(failpattern_command("study", "--replicates", "2", "--scheduler", "garbage",
                                              "--quiet", "--out", str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    assert done.returncode == 2
    assert done.stderr.startswith("error: scheduler: 'garbage' is not a Dask scheduler address")
    assert done.stderr.count("\n") == 1, done.stderr
    assert elapsed < 10


def test_chunks_under_a_fixed_malloc_trim_threshold(monkeypatch):
    """Where the process has a fixed trim threshold (Dask's workers: MALLOC_TRIM_THRESHOLD_), a chunk
    runs with glibc's thresholds raised, restores them after it and trims; the rows are the same."""
    import functools

    from failpattern.replicate import runners
    from failpattern.replicate.study import study_chunk_task

    task = functools.partial(study_chunk_task, study="ni2019", n_patients=None)
    plain = runners._run_chunk(task, 7, 0, 0, 6)
    calls = []

    class Libc:
        def mallopt(self, what, value):
            calls.append(("mallopt", what, value))

        def malloc_trim(self, pad):
            calls.append(("trim", pad))

    monkeypatch.setattr(runners, "_glibc", lambda: Libc())
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    tuned = runners._run_chunk(task, 7, 0, 0, 6)
    pd.testing.assert_frame_equal(tuned.frame, plain.frame)
    assert calls == [("mallopt", runners._M_MMAP_THRESHOLD, runners._ARRAYS_MMAP),
                     ("mallopt", runners._M_TRIM_THRESHOLD, runners._ARRAYS_TRIM),
                     ("mallopt", runners._M_TRIM_THRESHOLD, 65536),
                     ("mallopt", runners._M_MMAP_THRESHOLD, runners._MMAP_DEFAULT), ("trim", 0)]
    calls.clear()
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    runners._run_chunk(task, 7, 0, 0, 6)
    assert calls == []   # nothing changed where the process has glibc's adaptive thresholds
