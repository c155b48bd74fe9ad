"""Processes left alive after ``kill -9`` of ``failpattern reproduce`` and ``failpattern study``.

Target: none; every worker ends within a few seconds of its parent (the
figure worker of ``reproduce``; the fork server, the replicate workers and
multiprocessing's resource tracker of ``study``).

Each trial starts the command in a session of its own, waits until its
worker processes exist (plus ``--settle`` seconds, so they are busy), sends
SIGKILL to the parent only and watches the session for ``--timeout``
seconds. Printed per command: trials with survivors, survivors in all, and
the median and maximum time from the kill until the last process ended (over
the trials where all ended). Survivors are killed at the end of each trial.
Linux only (reads ``/proc``).

Usage: python benchmarks/bench_orphans.py [--trials N] [--timeout S] [--settle S]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from orphans import failpattern_command, kill_trial  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=0.3)
    opts = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "reproduce": (lambda k: failpattern_command("reproduce", "--out", f"{tmp}/r{k}"), 1),
            "study --workers 2": (lambda k: failpattern_command(
                "study", "--replicates", "400", "--workers", "2", "--quiet", "--out", f"{tmp}/s{k}"), 3),
        }
        for name, (args, children) in commands.items():
            trials = [kill_trial(args(k), children=children, settle=opts.settle, timeout=opts.timeout)
                      for k in range(opts.trials)]
            survived = [t for t in trials if t.survivors]
            times = [t.seconds for t in trials if t.seconds is not None]
            at_kill = median(len(t.children) for t in trials)
            print(f"{name}: {len(survived)} of {len(trials)} trials left processes alive after "
                  f"{opts.timeout:g} s ({sum(len(t.survivors) for t in trials)} processes in all; "
                  f"median {at_kill:g} besides the parent at the kill)")
            if times:
                print(f"  ended after the kill: median {median(times) * 1000:.0f} ms, "
                      f"max {max(times) * 1000:.0f} ms ({len(times)} trials)")
            for t in survived[:1]:
                print("  survivors, e.g.: " + "; ".join(c[:90] for c in t.survivors.values()))


if __name__ == "__main__":
    main()
