"""Loading and validating a cohort: load_cohort beside pandas.read_csv alone.

The canonical 93-patient cohort as a CSV file and as a DataFrame, the same rows
repeated to 4,650 patients (new ids) as a CSV file, and the cohorts a replicate study
loads: simulated DataFrames (``failpattern.simulate.simulate``: Int64 and string
columns), 20 seeds loaded one after another, per frame, in wall and in CPU time (which
leaves out the time other processes hold the core on a shared machine).
``pandas.read_csv`` is the floor: reading without any of the 32 rules.
Usage: python benchmarks/bench_load.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import row, time_python  # noqa: E402

from failpattern._resources import synthetic_path  # noqa: E402
from failpattern.cohort import load_cohort  # noqa: E402
from failpattern.simulate import simulate  # noqa: E402


def main() -> None:
    small = synthetic_path("ni2019_exact.csv")
    frame = pd.read_csv(small)
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.csv"
        many = pd.concat([frame] * 50, ignore_index=True)
        many["patient_id"] = [f"P{i:05d}" for i in range(len(many))]
        many.to_csv(big, index=False)
        for label, path, repeat in (("CSV, 93 patients", small, 50), ("CSV, 4,650 patients", big, 7)):
            ours = time_python(lambda: load_cohort(path), repeat=repeat)
            floor = time_python(lambda: pd.read_csv(path), repeat=repeat)
            print(row(f"load_cohort {label}", ours, pandas_read_csv_only=floor))
        ours = time_python(lambda: load_cohort(frame), repeat=50)
        print(row("load_cohort DataFrame, 93 patients", ours))
        frames = [simulate(seed=seed) for seed in range(20)]
        for label, clock in (("wall time", time.perf_counter), ("CPU time (process_time)", time.process_time)):
            ours = time_python(lambda: [load_cohort(f) for f in frames], repeat=15, clock=clock)
            print(row(f"load_cohort simulated frame, {label}", ours / len(frames)))


if __name__ == "__main__":
    main()
