"""Statistical validity at full size: type I error of the log-rank test, coverage of Cox and Fine-Gray intervals.

The scenarios (data with a known truth, analysed with ``failpattern.stats``)
are those of ``tests/test_validity.py``, run here with 10,000 replicates
each through the replicate engine, for n = 93 (the study's size) and n =
300. Criteria: log-rank rejection rate at alpha = 0.05 in [0.04, 0.06];
coverage of the 95% intervals of the Cox HRs and the Fine-Gray SHRs in
[0.93, 0.97]. Each rate is printed with its binomial 95% interval (Wilson).
Usage: python benchmarks/bench_validity.py [REPLICATES] [WORKERS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_validity import run_scenario

CRITERIA = {"logrank_reject": (0.04, 0.06), "cover.x1": (0.93, 0.97), "cover.x2": (0.93, 0.97),
            "cover.z1": (0.93, 0.97), "cover.z2": (0.93, 0.97)}
LABEL = {"logrank_reject": "log-rank type I error (alpha 0.05)", "cover.x1": "Cox HR x1 (binary) coverage",
         "cover.x2": "Cox HR x2 (normal) coverage", "cover.z1": "Fine-Gray SHR z1 (binary) coverage",
         "cover.z2": "Fine-Gray SHR z2 (normal) coverage"}


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(f"{reps} replicates per scenario, {workers} workers")
    print(f"{'quantity':<38} {'n':>4} {'rate':>7} {'95% CI':>17} {'events':>7} {'criterion':>13}  ok   time")
    ok_all = True
    for name in ("logrank_null", "cox", "finegray"):
        for n in (93, 300):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                s = run_scenario(name, reps, n, tmp, seed=1999 + n, workers=workers)
                wall = time.perf_counter() - t0
            events = s.loc["events", "mean"] if "events" in s.index else np.nan
            for id_ in (i for i in s.index if i in CRITERIA):
                rate, used = s.loc[id_, "mean"], int(s.loc[id_, "n"])
                lo, hi = wilson(rate, used)
                a, b = CRITERIA[id_]
                ok = a <= rate <= b
                ok_all &= ok
                print(f"{LABEL[id_]:<38} {n:>4} {rate:7.4f} [{lo:.4f}, {hi:.4f}] {events:7.1f} "
                      f"[{a:.2f}, {b:.2f}]  {'yes' if ok else 'NO '}  {wall:5.1f} s"
                      + ("" if used == reps else f"  ({reps - used} failed fits)"))
    print("all criteria met" if ok_all else "SOME CRITERIA NOT MET")


if __name__ == "__main__":
    main()
