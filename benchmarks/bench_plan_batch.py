"""Replicate study on the batched plan: per replicate against the per-cohort path, and 10,000 replicates.

Prints, measured in one run, the median wall and CPU time per replicate of the
per-cohort path (``study_task``: simulate a 93-patient cohort to a DataFrame,
``trusted_cohort``, ``run_plan``; median over cohorts) and of the batched path
(``study_chunk_task`` on a chunk of ``CHUNK`` replicates: each replicate's cohort
drawn from its own generator, stacked, ``run_plan_batch``; median over chunks,
divided by the chunk size), their ratio, then the wall time of
``failpattern study --replicates N --workers 2`` (a fresh interpreter per run:
start-up, worker pool, chunk files and the summary included; median of
``--repeat`` runs). Targets: 10,000 replicates in under 10 s on 2 workers,
100,000 (``--large``) in under 2 minutes. Also the CPU per replicate of
``run_plan_batch`` alone (the cohorts already drawn), and with ``--rss N`` the
wall time, peak resident memory and CPU of a study of ``N`` replicates: of the
main process (its ``rusage``) and of its children (the fork server and the
workers, sampled from ``/proc`` every 0.2 s: their peak RSS, and their CPU,
which on a shared machine says what the study cost whatever the load).
``--large`` measures its 100,000 this way.

The chunks are independent, so a study's wall time is about
``replicates x CPU per replicate / workers`` plus what does not spread over the
workers (start-up, the workers' imports, the summary and figures, and what each
chunk costs the caller: receiving it, writing its file, reading it back for the
summary); each study line prints that remainder as the measured overhead beside
the CPU model (the batched path's CPU per replicate, measured here in one process,
over 2 workers).
Usage: python benchmarks/bench_plan_batch.py [--repeat 3] [--replicates 10000] [--large] [--rss N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
from _harness import load_line, time_command

from failpattern.replicate.store import replicate_rng
from failpattern.replicate.study import _card, draw_stacked, study_chunk_task, study_task
from failpattern.simulate import DEFAULT_PARAMS
from failpattern.study.plan_batch import run_plan_batch

PER_COHORT = 40   # cohorts timed one by one
CHUNK = 500       # replicates per batched chunk (the study's chunk for 10,000 replicates)
CHUNKS = 5        # batched chunks timed


def per_replicate() -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per replicate of each path."""
    study_task(replicate_rng(1, 0), 0)                                       # warm caches
    study_chunk_task([replicate_rng(1, i) for i in range(10)], np.arange(10))
    one = []
    for i in range(PER_COHORT):
        rng = replicate_rng(2019, i)
        w, c = time.perf_counter(), time.process_time()
        study_task(rng, i)
        one.append((time.perf_counter() - w, time.process_time() - c))
    chunks = []
    for k in range(CHUNKS):
        idx = np.arange(k * CHUNK, (k + 1) * CHUNK)
        rngs = [replicate_rng(2019, int(i)) for i in idx]
        w, c = time.perf_counter(), time.process_time()
        study_chunk_task(rngs, idx)
        chunks.append(((time.perf_counter() - w) / CHUNK, (time.process_time() - c) / CHUNK))
    return {"per cohort (study_task)": (median(w for w, _ in one), median(c for _, c in one)),
            f"batched (chunks of {CHUNK})": (median(w for w, _ in chunks), median(c for _, c in chunks))}


def plan_only() -> tuple[float, float]:
    """Median (wall, CPU) seconds per replicate of ``run_plan_batch`` on drawn chunks of ``CHUNK``."""
    import warnings

    card = _card("ni2019")
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(CHUNKS):
            batch = draw_stacked(DEFAULT_PARAMS, [replicate_rng(2019, k * CHUNK + i) for i in range(CHUNK)], 93)
            run_plan_batch(batch, card=card) if k == 0 else None  # warm
            w, c = time.perf_counter(), time.process_time()
            run_plan_batch(batch, card=card)
            out.append(((time.perf_counter() - w) / CHUNK, (time.process_time() - c) / CHUNK))
    return median(w for w, _ in out), median(c for _, c in out)


_RSS = """
import os, resource, runpy, sys, threading, time
sys.argv = ["failpattern"] + sys.argv[1:]
seen = {}  # descendant pid -> (CPU seconds, peak RSS kB), sampled from /proc every 0.2 s


def sample():
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    while True:
        parents = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parents[int(pid)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick,
                                     int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024)
            except (OSError, ValueError, IndexError):
                pass
        family = {me}
        for _ in range(3):  # main -> fork server -> workers
            family |= {p for p, (pp, _c, _r) in parents.items() if pp in family}
        for p in family - {me}:
            _pp, cpu, rss = parents[p]
            seen[p] = (cpu, max(rss, seen.get(p, (0, 0))[1]))
        time.sleep(0.2)


threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
try:
    runpy.run_module("failpattern", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    if exc.code:
        raise
wall = time.perf_counter() - start
own = resource.getrusage(resource.RUSAGE_SELF)
print(wall, own.ru_maxrss, max((r for _c, r in seen.values()), default=0), own.ru_utime + own.ru_stime,
      sum(c for c, _r in seen.values()), file=sys.stderr)
"""


def study_rss(n: int) -> tuple[float, float, float, float, float]:
    """Wall seconds, peak RSS (MB) of the main process and of the largest child (the workers,
    sampled from /proc), and the CPU seconds of the main process and of its children, of
    ``failpattern study --replicates n --workers 2``."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-c", _RSS, "study", "--replicates", str(n), "--workers", "2",
                               "--out", str(Path(tmp) / "run"), "--quiet"],
                              check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, kb, kb_child, cpu, cpu_children = map(float, done.stderr.strip().splitlines()[-1].split())
    return wall, kb / 1024.0, kb_child / 1024.0, cpu, cpu_children


def overhead(n: int, wall: float, cpu: float) -> str:
    """The CPU model of a study's wall time on 2 workers, and what remains (the overhead)."""
    ideal = n * cpu / 2
    return f"model {n:,} x {cpu * 1e3:.3f} ms / 2 workers = {ideal:.1f} s, overhead {wall - ideal:.1f} s"


def study_wall(n: int, repeat: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return time_command(lambda k: ["-m", "failpattern", "study", "--replicates", str(n), "--workers", "2",
                                       "--out", str(Path(tmp) / f"run{k}"), "--quiet"],
                            repeat=repeat, warmup=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--replicates", type=int, default=10_000)
    parser.add_argument("--large", action="store_true", help="also 100,000 replicates (one run)")
    parser.add_argument("--rss", type=int, default=0, help="also a study of N replicates: wall and peak RSS "
                        "of the main process (one run)")
    args = parser.parse_args()
    print(load_line())
    wall, cpu = plan_only()
    print(f"run_plan_batch alone, chunks of {CHUNK}, median per replicate: wall {wall * 1e3:.3f} ms, "
          f"CPU {cpu * 1e3:.3f} ms")
    times = per_replicate()
    print("per replicate (one process), median:")
    for k, (wall, cpu) in times.items():
        print(f"  {k:<28} wall {wall * 1e3:8.3f} ms   CPU {cpu * 1e3:8.3f} ms")
    (w1, c1), (wb, cb) = times.values()
    print(f"  ratio per-cohort / batched: wall {w1 / wb:.1f}x, CPU {c1 / cb:.1f}x")
    per_rep = cb  # the batched path's CPU per replicate (draw + plan), one process
    print(load_line())
    wall, cpu, best = study_wall(args.replicates, args.repeat)
    print(f"failpattern study --replicates {args.replicates} --workers 2: median wall {wall:.1f} s "
          f"(best {best:.1f} s, CPU of the main process and fork server {cpu:.1f} s; {args.repeat} runs); "
          f"{overhead(args.replicates, wall, per_rep)}")
    print(load_line())
    for n in ([100_000] if args.large else []) + ([args.rss] if args.rss else []):
        wall, mb, mb_worker, cpu, cpu_children = study_rss(n)
        print(f"failpattern study --replicates {n} --workers 2: wall {wall:.1f} s, peak RSS of the main process "
              f"{mb:.0f} MB, of a worker {mb_worker:.0f} MB; CPU of the main process {cpu:.1f} s, of the workers "
              f"and fork server {cpu_children:.1f} s ({cpu_children / n * 1e3:.3f} ms a replicate; 1 run); "
              f"{overhead(n, wall, per_rep)}")
        print(load_line())


if __name__ == "__main__":
    main()
