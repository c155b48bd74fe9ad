"""Large cohorts: the analysis plan on 10,000 and 100,000 patients, ``analyze`` on 1,000,000.

Targets (issue: cost linear in the cohort's size): ``run_plan`` on 100,000 patients
in < 15 s, and ``failpattern analyze FILE --study ni2019 --out DIR`` on 1,000,000
patients with a peak memory < 3 GB.

Printed, each a median over repeats:

* ``load_cohort`` and ``run_plan`` (card loaded and its settings cached first) on
  10,000 and 100,000 patients, and ``run_plan``'s three phases on the larger;
* the r x c Fisher test of the plan (objective response by first-failure pattern,
  3 x 2) at each size: exact, or past its ``workspace`` budget the asymptotic
  Pearson test (``method`` says which);
* ``failpattern analyze`` on 1,000,000 patients as a child process: wall time and
  peak resident memory (``getrusage`` of the children: the largest process; the
  figure worker is forked from it and shares its pages), then the same steps one by
  one in a fresh process, each with its time and the peak resident memory reached
  during it (Linux: ``/proc/self/status`` VmHWM, reset before each step).

Cohorts come from ``failpattern.simulate.simulate(n=..., seed=1)`` written to CSV in a
temporary folder (the 1,000,000-patient file is about 190 MB). On 2 shared cores
the 1,000,000-patient part takes several minutes.
Usage: python benchmarks/bench_large.py [--sizes 10000 100000] [--big 1000000]
[--repeat 3] [--big-repeat 1] [--no-big] [--no-steps]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).parent))
from _harness import row, time_python  # noqa: E402

from failpattern.cohort import load_cohort  # noqa: E402
from failpattern.simulate import simulate  # noqa: E402
from failpattern.study import load_study  # noqa: E402
from failpattern.study.analyses import competing, survival, tables  # noqa: E402
from failpattern.study.analyses._base import Context  # noqa: E402
from failpattern.study.plan import run_plan, settings_for  # noqa: E402

# The steps of `analyze FILE --study ni2019 --out DIR`, one by one, in a fresh process.
_STEPS = r'''
import gc, sys, time
from pathlib import Path

def _status():
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0]) / 1e6
    except OSError:
        pass
    return out

def step(label, fn):
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current resident size
    except OSError:
        pass
    start = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - start
    s = _status()
    print(f"  {label:<34} {wall:8.2f} s   peak {s.get('VmHWM', float('nan')):5.2f} GB"
          f"   resident after {s.get('VmRSS', float('nan')):5.2f} GB", flush=True)
    return out

from failpattern.cli.analyze import summary_text
from failpattern.cli.common import comparison_text, exclusions_text
from failpattern.cohort import load_cohort
from failpattern.report import write_report
from failpattern.study import load_study
from failpattern.study.compare import compare
from failpattern.study.plan import run_plan

path, out = Path(sys.argv[1]), Path(sys.argv[2])
card = load_study("ni2019")
cohort = step("load_cohort", lambda: load_cohort(path))
step("summary (analyses supported)", lambda: summary_text(cohort, "ni2019"))
plan = step("run_plan", lambda: run_plan(cohort, card=card))
comparison = step("compare", lambda: compare(plan, card))
step("comparison text", lambda: comparison_text(comparison, card))
step("exclusions text", lambda: exclusions_text(plan))
step("write_report (figures: 2 processes)", lambda: write_report(
    plan, comparison, out, cohort_label=str(path), card=card, profile="default", inputs=(path,)))
'''


def write_cohort(folder: Path, n: int) -> Path:
    path = folder / f"cohort_{n}.csv"
    simulate(n=n, seed=1).to_csv(path, index=False)
    return path


def bench_plan(path: Path, n: int, repeat: int, card, settings, phases: bool) -> None:
    load = time_python(lambda: load_cohort(path), repeat=repeat, warmup=0)
    print(row(f"load_cohort CSV, {n:,} patients", load))
    cohort = load_cohort(path)
    result = run_plan(cohort, card=card)
    plan = time_python(lambda: run_plan(cohort, card=card), repeat=repeat, warmup=0)
    print(row(f"run_plan, {n:,} patients", plan) + f" | {plan:.2f} s (target < 15 s at 100,000)")
    if phases:
        for label, fn in (("  tables (counts, Tables 1-2, tests)", tables.run_tables),
                          ("  survival (KM x2, log-rank, Cox)", survival.run_survival),
                          ("  competing (CIF, 18 Fine-Gray)", competing.run_competing)):
            print(row(label, time_python(lambda fn=fn: fn(Context(cohort, settings)), repeat=repeat, warmup=0)))
    info = result.contingency.get("response.pattern.p")
    if info is not None:
        table = info["table"].tolist()
        print(f"  response by pattern, table {table}: Fisher p from {info['ran']['fisher']!r} "
              f"({'exact' if info['ran']['fisher'] == 'fisher' else 'past the exact test workspace'})")


def bench_analyze(path: Path, n: int, repeat: int, folder: Path, steps: bool) -> None:
    walls, peaks = [], []
    for k in range(repeat):
        out = folder / f"report_{n}_{k}"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "failpattern", "analyze", str(path), "--study", "ni2019",
                               "--out", str(out)], capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        if proc.returncode not in (0, 1):  # 1: numbers outside tolerance, expected of a simulated cohort
            raise RuntimeError(f"analyze failed ({proc.returncode}): {proc.stderr[-2000:]}")
        # ru_maxrss (KB on Linux) of the children waited for: the largest, over every run so far
        peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6)
    print(f"{'analyze --study ni2019 --out, ' + format(n, ',') + ' patients':<38} "
          f"wall {median(walls):8.1f} s | peak resident {max(peaks):5.2f} GB (target < 3 GB)")
    if steps:
        print("  the same, step by step in a fresh process:")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        subprocess.run([sys.executable, "-c", _STEPS, str(path), str(folder / f"report_{n}_steps")],
                       check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-repeat", type=int, default=1)
    parser.add_argument("--no-big", action="store_true", help="skip the analyze run on --big patients")
    parser.add_argument("--no-steps", action="store_true", help="skip the step-by-step breakdown")
    args = parser.parse_args()
    card = load_study("ni2019")
    settings = settings_for(card)  # cached per card, as in every later run_plan
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in args.sizes:
            bench_plan(write_cohort(folder, n), n, args.repeat, card, settings, phases=n == max(args.sizes))
        if not args.no_big:
            bench_analyze(write_cohort(folder, args.big), args.big, args.big_repeat, folder,
                          steps=not args.no_steps)


if __name__ == "__main__":
    main()
