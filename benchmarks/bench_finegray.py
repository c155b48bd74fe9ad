"""Fine-Gray regression: failpattern's O(n log n) fit beside cmprsk::crr and mets::cifreg.

Run ``python benchmarks/bench_finegray.py`` (``--quick`` skips n = 200,000 and
1,000,000). Data are simulated with a seeded generator: three normal
covariates, cause 1 with hazard ``exp(0.5 x1 - 0.3 x2 + 0.2 x3)``, cause 2 and
censoring exponential, times rounded up to 0.01 so there are ties (and no
zero times, which ``mets::Event`` warns about). Both tools get the same rows.

- n = 93: ours vs ``crr`` (defaults: gtol 1e-6, maxiter 10), batches of calls.
- n = 5,000: ours vs ``crr``, timed twice (crr is O(n^2) per iteration).
- n = 200,000: ours vs ``mets::cifreg(..., cause = 1, propodds = NULL)`` (the
  Fine-Gray model; ``propodds = 1`` would be the proportional-odds model), once.
- n = 1,000,000: ours alone, and peak memory of fits in fresh processes at
  250k, 500k and 1M rows (peak RSS during the fit, ``VmHWM``, above the RSS
  holding the data; and numpy's traced peak allocation via ``tracemalloc``),
  to show memory linear in n. Linux only for the RSS figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import _harness as harness  # noqa: E402

from failpattern.stats.finegray import fine_gray, fine_gray_fit  # noqa: E402

COVS = ["x1", "x2", "x3"]
CRR = "crr(d$time, d$cause, as.matrix(d[, c('x1', 'x2', 'x3')]), failcode = 1, cencode = 0)"
CIFREG = "cifreg(Event(time, cause) ~ x1 + x2 + x3, data = d, cause = 1, propodds = NULL)"


def simulate(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` rows: time (ties at 0.01), cause 0/1/2, covariates x1..x3."""
    x = rng.normal(size=(n, 3))
    t1 = rng.exponential(1.0 / np.exp(x @ np.array([0.5, -0.3, 0.2])))
    t2 = rng.exponential(2.0, size=n)
    c = rng.exponential(2.5, size=n)
    t = np.minimum(np.minimum(t1, t2), c)
    cause = np.where(c <= np.minimum(t1, t2), 0, np.where(t1 < t2, 1, 2))
    frame = pd.DataFrame(x, columns=COVS)
    frame.insert(0, "cause", cause)
    frame.insert(0, "time", np.ceil(t * 100) / 100)
    return frame


def ours(frame: pd.DataFrame):
    return fine_gray(frame, duration="time", cause="cause", covariates=COVS)


_CHILD = """
import sys, time, tracemalloc
import numpy as np
sys.path.insert(0, {bench!r})
from bench_finegray import simulate, ours

def status():  # VmRSS now and VmHWM (peak RSS since the last reset), MB
    rows = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {{k: int(rows[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}}

frame = simulate({n}, np.random.default_rng(7))
before = status()["VmRSS"]
try:  # reset the peak to the current RSS so VmHWM is the fit's own peak
    open("/proc/self/clear_refs", "w").write("5")
except OSError:
    pass
t0 = time.perf_counter(); ours(frame); wall = time.perf_counter() - t0
peak = status()["VmHWM"]
tracemalloc.start(); ours(frame); traced = tracemalloc.get_traced_memory()[1]
print({{"wall": wall, "rss_before_mb": before, "rss_peak_mb": peak,
        "traced_peak_mb": traced / 2 ** 20}})
"""


def memory(n: int) -> dict:
    """Fit ``n`` rows in a fresh process: wall time, RSS before, peak RSS, traced peak.

    Peak RSS is ``VmHWM`` from ``/proc/self/status`` after resetting it
    (``clear_refs``) once the data are built; ``ru_maxrss`` is not used because
    Linux carries the parent's peak into a spawned child.
    """
    script = _CHILD.format(bench=str(Path(__file__).parent), n=n)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip n = 200,000 and 1,000,000")
    args = parser.parse_args()
    rng = np.random.default_rng(20190601)
    has_crr = harness.have_r("cmprsk")
    has_mets = harness.have_r("mets")

    small = simulate(93, rng)
    t_ours = harness.time_python(lambda: ours(small), repeat=300, warmup=20)
    arrays = (small[COVS].to_numpy(), small["time"].to_numpy(), small["cause"].to_numpy())
    t_arrays = harness.time_python(lambda: fine_gray_fit(*arrays), repeat=300, warmup=20)
    t_crr = harness.time_r_batch(small, "library(cmprsk)", CRR, batch=50) if has_crr else None
    print(harness.row("n=93, p=3 vs crr", t_ours, crr=t_crr))
    print(harness.row("n=93, p=3 fine_gray_fit (arrays) vs crr", t_arrays, crr=t_crr))

    mid = simulate(5_000, rng)
    t_ours = harness.time_python(lambda: ours(mid), repeat=20)
    t_crr = harness.time_r(mid, "library(cmprsk)", CRR, repeat=2, warmup=0) if has_crr else None
    print(harness.row("n=5,000, p=3 vs crr", t_ours, crr=t_crr))
    if args.quick:
        return

    big = simulate(200_000, rng)
    t_ours = harness.time_python(lambda: ours(big), repeat=3, warmup=1)
    t_mets = harness.time_r(big, "library(mets)", CIFREG, repeat=1, warmup=0) if has_mets else None
    print(harness.row("n=200,000, p=3 vs mets::cifreg", t_ours, cifreg=t_mets))

    huge = simulate(1_000_000, rng)
    start = time.perf_counter()
    res = ours(huge)
    print(harness.row("n=1,000,000, p=3 (one fit)", time.perf_counter() - start)
          + f" | {res.iterations} iterations")
    for n in (250_000, 500_000, 1_000_000):
        m = memory(n)
        print(f"memory n={n:>9,}: fit {m['wall']:6.2f} s | peak RSS {m['rss_peak_mb']:7.1f} MB "
              f"(+{m['rss_peak_mb'] - m['rss_before_mb']:6.1f} MB over data) | "
              f"traced numpy peak {m['traced_peak_mb']:7.1f} MB "
              f"({m['traced_peak_mb'] * 2 ** 20 / n:5.0f} bytes/row)")


if __name__ == "__main__":
    main()
