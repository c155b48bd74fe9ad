"""Timing helpers shared by the benchmark scripts.

Each benchmark prints our median time beside the reference tool's for the
same data, measured in one run: R through ``Rscript`` (timed inside R, so R's
start-up is excluded) and lifelines where it has the method. Machines are
noisy, so we report medians over repeats and the ratio of medians.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import pandas as pd


def time_python(fn, *, repeat: int = 50, warmup: int = 2, clock=time.perf_counter) -> float:
    """Median time of ``fn()`` in seconds: wall time by default; pass
    ``clock=time.process_time`` for CPU time, which on a shared machine leaves out
    the time other processes hold the core."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = clock()
        fn()
        samples.append(clock() - start)
    return median(samples)


def time_command(args, *, repeat: int = 5, warmup: int = 1) -> tuple[float, float, float]:
    """Median wall time, median CPU time and least wall time in seconds of ``python <args>``,
    each run a fresh interpreter.

    ``args`` is a list, or a function of the run number returning one (e.g. a new
    ``--out`` folder per run). CPU time is user + system of the interpreter and every
    process it waited for (a forked worker included); on a shared machine it leaves out
    the time other processes hold the cores. Output is discarded; a failure raises.
    """
    make = args if callable(args) else (lambda _k: args)
    walls, cpus = [], []
    for k in range(warmup + repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, *make(k)], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if k >= warmup:  # the first run warms the file cache (.pyc, shared libraries)
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return median(walls), median(cpus), min(walls)


def repeat_option(doc: str, default: int = 5) -> int:
    """``--repeat N`` from the command line of a benchmark whose module docstring is ``doc``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=default)
    return parser.parse_args().repeat


def load_line() -> str:
    """CPUs and load average, to print beside timings taken on a shared machine."""
    return f"cpus: {os.cpu_count()}, load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"


def have_r(*packages: str) -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = ";".join(f"library({p})" for p in packages) or "1"
    return subprocess.run(["Rscript", "-e", probe], capture_output=True).returncode == 0


def time_r(data: pd.DataFrame, setup: str, expr: str, *, repeat: int = 50, warmup: int = 2,
           timeout: float = 3600) -> float:
    """Median wall time in seconds of the R expression ``expr``.

    ``data`` is written to CSV and read as ``d``; ``setup`` runs once (load
    packages, build objects) before timing.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        data.to_csv(path, index=False)
        script = f"""
suppressPackageStartupMessages({{ {setup} }})
d <- read.csv("{path.as_posix()}")
for (k in seq_len({warmup})) invisible({expr})
s <- numeric({repeat})
for (k in seq_len({repeat})) {{ t0 <- proc.time()[["elapsed"]]; invisible({expr}); s[k] <- proc.time()[["elapsed"]] - t0 }}
cat(sprintf("%.9f\\n", median(s)))
"""
        # proc.time has 1 ms resolution: for fast calls time a batch instead
        out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"R failed: {out.stderr.strip()}")
        return float(out.stdout.strip().splitlines()[-1])


def time_r_batch(data: pd.DataFrame, setup: str, expr: str, *, batch: int = 100,
                 repeat: int = 15) -> float:
    """Median per-call time of a fast R expression, timing batches of ``batch`` calls."""
    loop = f"for (b in seq_len({batch})) invisible({expr})"
    return time_r(data, setup, f"{{ {loop} }}", repeat=repeat) / batch


def row(label: str, ours: float, **others: float) -> str:
    """One printed line: our median and each reference's, with the ratio reference/ours."""
    parts = [f"{label:<38} ours {ours * 1e3:10.3f} ms"]
    for name, t in others.items():
        if t is None:
            parts.append(f"{name} n/a")
        else:
            parts.append(f"{name} {t * 1e3:10.3f} ms ({t / ours:7.1f}x)")
    return " | ".join(parts)
