"""Cold start: what a user waits for before the first line of output, in fresh interpreters.

Target: ``failpattern reproduce`` (every analysis, the comparison, 10 figures in PNG
and SVG, the report) under 2.5 s end to end; ``import failpattern`` and
``failpattern --version`` close to the bare interpreter (no pandas, scipy or
matplotlib at import: names load on first use).

Printed, each the median over ``--repeat`` runs after one warm-up run, in wall time
and in CPU time (user + system of the process and its forked figure worker; on a
shared machine wall time includes waiting for the cores, CPU time does not), and the
least wall time (the run that waited least):

* ``python -c pass`` (the interpreter alone, the floor);
* ``python -c "import failpattern"``;
* ``failpattern --version`` (as ``python -m failpattern --version``);
* ``failpattern reproduce --out <new folder>``.

``benchmarks/bench_reproduce.py`` breaks ``reproduce`` down (plan, comparison, report).
To see where the time goes: ``python -X importtime -m failpattern reproduce --out <folder>``
(imports) and ``python -m cProfile -s cumulative -m failpattern reproduce --out <folder>``.

Usage: python benchmarks/bench_coldstart.py [--repeat N]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load_line, repeat_option, time_command  # noqa: E402

TARGET_REPRODUCE = 2.5  # seconds


def main() -> None:
    repeat = repeat_option(__doc__)
    print(load_line())
    with tempfile.TemporaryDirectory() as tmp:
        cases = (
            ("python -c pass", ["-c", "pass"]),
            ('python -c "import failpattern"', ["-c", "import failpattern"]),
            ("failpattern --version", ["-m", "failpattern", "--version"]),
            ("failpattern reproduce --out TMP",
             lambda k: ["-m", "failpattern", "reproduce", "--out", str(Path(tmp) / f"out{k}")]),
        )
        for label, args in cases:
            wall, cpu, least = time_command(args, repeat=repeat)
            note = f"  (target < {TARGET_REPRODUCE} s)" if "reproduce" in label else ""
            print(f"{label:<34} median wall {wall:6.2f} s  cpu {cpu:6.2f} s  min wall {least:6.2f} s{note}")
    print(load_line())


if __name__ == "__main__":
    main()
