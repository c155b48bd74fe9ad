"""Replicate study on the batched plan: per replicate against the per-cohort path, and 10,000 replicates.

Prints, measured in one run, the median wall and CPU time per replicate of the
per-cohort path (``study_task``: simulate a 93-patient cohort to a DataFrame,
``trusted_cohort``, ``run_plan``; median over cohorts) and of the batched path
(``study_chunk_task`` on a chunk of ``CHUNK`` replicates: each replicate's cohort
drawn from its own generator, stacked, ``run_plan_batch``; median over chunks,
divided by the chunk size), their ratio, then the wall time of
``failpattern study --replicates N --workers 2`` (a fresh interpreter per run:
start-up, worker pool, chunk files, the summary and the figures included; median of
``--repeat`` runs, each with the load average before it and the CPU of every
process of the study: the calling process, the workers' fork server, the two
workers and the two figure processes, sampled from ``/proc``). Targets: 10,000 replicates in under 10 s on 2 workers,
100,000 (``--large``) in under 2 minutes. Also the CPU per replicate of
``run_plan_batch`` alone (the cohorts already drawn), and with ``--rss N`` the
wall time, peak resident memory and CPU of a study of ``N`` replicates: of the
main process (its ``rusage``) and of its children (the fork server and the
workers, sampled from ``/proc`` every 0.2 s: their peak RSS, and their CPU,
which on a shared machine says what the study cost whatever the load).
``--large`` measures its 100,000 this way.

The chunks are independent, so a study's wall time is about
``replicates x CPU per replicate / workers`` plus what does not spread over the
workers (start-up, the summary and figures, and what each chunk costs the caller:
receiving it, writing its file, taking it into the summary); each study line
prints that remainder as the measured overhead beside the CPU model (the batched
path's CPU per replicate, measured here in one process, over 2 workers). On a
shared machine the wall time follows the other jobs; the CPU per process does not.
Usage: python benchmarks/bench_plan_batch.py [--repeat 3] [--replicates 10000] [--large] [--rss N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
from _harness import load_line

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
import json, os, resource, runpy, sys, threading, time
sys.argv = ["failpattern"] + sys.argv[1:]
seen = {}  # descendant pid -> (CPU seconds, peak RSS kB, depth, command line), from /proc every 0.1 s


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
        depth = {me: 0}
        for level in (1, 2, 3):  # main -> fork server -> workers and figure processes
            depth.update({p: level for p, (pp, _c, _r) in parents.items() if depth.get(pp) == level - 1
                          and p not in depth})
        for p in set(depth) - {me}:
            _pp, cpu, rss = parents[p]
            seen[p] = (cpu, max(rss, seen.get(p, (0, 0))[1]), depth[p])
        time.sleep(0.1)


threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
try:
    runpy.run_module("failpattern", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    if exc.code:
        raise
wall = time.perf_counter() - start
time.sleep(0.15)  # a last sample of the processes still ending
own = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "rss": own.ru_maxrss, "cpu": own.ru_utime + own.ru_stime,
                  "children": [{"cpu": c, "rss": r, "depth": d} for c, r, d in seen.values()]}), file=sys.stderr)
"""


def _study_run(n: int, out: Path) -> dict:
    """One ``failpattern study --replicates n --workers 2 --quiet`` in a fresh interpreter, sampled
    (:data:`_RSS`): wall, the calling process's CPU and peak RSS, and per descendant its CPU, peak
    RSS and depth (1: the fork server, multiprocessing's resource tracker; 2: what the server
    forked); with the load average before the run."""
    load = os.getloadavg()
    done = subprocess.run([sys.executable, "-c", _RSS, "study", "--replicates", str(n), "--workers", "2",
                           "--out", str(out), "--quiet"],
                          check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run = json.loads(done.stderr.strip().splitlines()[-1])
    run["load"] = load
    return run


def roles(run: dict) -> dict[str, list[float]]:
    """CPU seconds of the processes of one study run, by role: ``main``, ``fork server`` (with
    multiprocessing's resource tracker), ``workers`` (the two busiest processes the server forked)
    and ``figures`` (the others it forked: the figure processes)."""
    forked = sorted((c["cpu"] for c in run["children"] if c["depth"] >= 2), reverse=True)
    return {"main": [run["cpu"]], "fork server": [sum(c["cpu"] for c in run["children"] if c["depth"] == 1)],
            "workers": forked[:2], "figures": forked[2:]}


def study_rss(n: int) -> tuple[float, float, float, float, float]:
    """Wall seconds, peak RSS (MB) of the main process and of the largest child (the workers,
    sampled from /proc), and the CPU seconds of the main process and of its children, of
    ``failpattern study --replicates n --workers 2``."""
    with tempfile.TemporaryDirectory() as tmp:
        run = _study_run(n, Path(tmp) / "run")
    children = run["children"]
    return (run["wall"], run["rss"] / 1024.0, max((c["rss"] for c in children), default=0) / 1024.0, run["cpu"],
            sum(c["cpu"] for c in children))


def overhead(n: int, wall: float, cpu: float) -> str:
    """The CPU model of a study's wall time on 2 workers, and what remains (the overhead)."""
    ideal = n * cpu / 2
    return f"model {n:,} x {cpu * 1e3:.3f} ms / 2 workers = {ideal:.1f} s, overhead {wall - ideal:.1f} s"


def study_wall(n: int, repeat: int) -> list[dict]:
    """``repeat`` sampled runs of the study (:func:`_study_run`), each in a new folder."""
    with tempfile.TemporaryDirectory() as tmp:
        return [_study_run(n, Path(tmp) / f"run{k}") for k in range(repeat)]


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
    runs = study_wall(args.replicates, args.repeat)
    for k, run in enumerate(runs):
        cpus = "; ".join(f"{role} {' + '.join(f'{v:.2f}' for v in v) or '-'}" for role, v in roles(run).items())
        print(f"  run {k + 1}: wall {run['wall']:.2f} s at load {' '.join(f'{x:.2f}' for x in run['load'])}; "
              f"CPU s: {cpus}")
    walls = [r["wall"] for r in runs]
    wall = median(walls)
    cpu = {role: median(sum(roles(r)[role]) for r in runs) for role in ("main", "fork server", "workers", "figures")}
    print(f"failpattern study --replicates {args.replicates} --workers 2: median wall {wall:.1f} s "
          f"(best {min(walls):.1f} s; {args.repeat} runs); median CPU: main process {cpu['main']:.2f} s, fork server "
          f"{cpu['fork server']:.2f} s, workers {cpu['workers']:.2f} s "
          f"({cpu['workers'] / args.replicates * 1e3:.3f} ms a replicate), figure processes {cpu['figures']:.2f} s; "
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
