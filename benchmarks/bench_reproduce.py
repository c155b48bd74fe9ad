"""End-to-end time of ``failpattern reproduce`` on the canonical cohort, and of ``run_plan`` alone.

Target: ``failpattern reproduce`` with no options finishes in <= 10 s end to
end on a laptop (interpreter start, imports, loading the cohort and the card,
the plan, the comparison, the printed table, 10 figures in PNG and SVG, the
HTML / Markdown / JSON report).

Printed, each a median over repeats:

* the whole command, each run a fresh ``python`` subprocess writing a new
  ``--out`` folder (what a user waits for);
* ``python -c "import failpattern.cli"`` (interpreter + import cost alone);
* ``run_plan`` on the loaded canonical cohort (card settings cached), and
  ``compare``;
* ``write_report`` alone (figures drawn in 1 and in 2 processes).

Usage: python benchmarks/bench_reproduce.py [--repeat N]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from _harness import load_line, repeat_option, time_command, time_python

from failpattern._resources import synthetic_path
from failpattern.cohort import load_cohort
from failpattern.report import write_report
from failpattern.study import load_study
from failpattern.study.compare import compare
from failpattern.study.plan import run_plan

COMMAND = "from failpattern.cli.reproduce import reproduce; reproduce()"


def main() -> None:
    repeat = repeat_option(__doc__)
    print(load_line())
    with tempfile.TemporaryDirectory() as tmp:
        outs = iter(range(10_000))
        samples = []
        for _ in range(repeat):
            out = Path(tmp) / f"out{next(outs)}"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", COMMAND, "--out", str(out)], check=True,
                           stdout=subprocess.DEVNULL)
            samples.append(time.perf_counter() - start)
        print(f"reproduce end to end (subprocess)   median {median(samples):7.2f} s   "
              f"min {min(samples):.2f}  max {max(samples):.2f}  (target <= 10 s)")
        print(f"python + import failpattern.cli      median "
              f"{time_command(['-c', 'import failpattern.cli'], repeat=repeat)[0]:7.2f} s   "
              "(more in bench_coldstart.py)")

        card = load_study("ni2019")
        cohort = load_cohort(synthetic_path("ni2019_exact.csv"))
        t_plan = time_python(lambda: run_plan(cohort, card=card), repeat=max(repeat * 4, 10))
        plan = run_plan(cohort, card=card)
        t_cmp = time_python(lambda: compare(plan, card), repeat=max(repeat * 4, 10))
        comparison = compare(plan, card)
        comparison.attrs = {"profile": "default"}
        print(f"run_plan (canonical cohort)          median {1000 * t_plan:7.1f} ms")
        print(f"compare                              median {1000 * t_cmp:7.1f} ms")
        for jobs in (1, 2):
            t_rep = time_python(lambda jobs=jobs: write_report(plan, comparison, Path(tmp) / f"r{next(outs)}",
                                                               card=card, jobs=jobs), repeat=repeat, warmup=1)
            print(f"write_report, figures in {jobs} process(es) median {t_rep:7.2f} s")


if __name__ == "__main__":
    main()
