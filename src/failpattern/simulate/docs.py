"""Refresh the generated blocks of ``docs/simulator.md`` (parameter table, target ids).

Why: the documentation must show the values the simulator really uses. Run
``python -m failpattern.simulate.docs docs/simulator.md``; a test fails when the
file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from failpattern._docblocks import refresh_blocks
from failpattern.simulate.model import parameter_table
from failpattern.simulate.moments import TARGETS

__all__ = ["render", "targets_list"]


def targets_list() -> str:
    """The study-card ids the model computes, grouped by kind, as markdown."""
    counts = [i for i, t in TARGETS.items() if t.kind == "count"]
    other = [i for i, t in TARGETS.items() if t.kind != "count"]
    return ("**Counts** (expected value = mean over cohorts): " + ", ".join(f"`{i}`" for i in counts)
            + "\n\n**Medians** (expected value = median over cohorts): " + ", ".join(f"`{i}`" for i in other))


def strata_table() -> str:
    """The exact-mode strata (:data:`failpattern.simulate.exact.STRATA`) as markdown."""
    from failpattern.simulate.exact import STRATA

    burden = {0: "-", 1: "oligo", 2: "multiple"}
    brt = {0: "-", 1: "SRS", 2: "WBRT"}
    pat = {0: "none", 1: "OF", 2: "DF", 3: "ODF"}
    tech = {0: "-", 1: "WBRT", 2: "SRS", 3: "SBRT"}
    head = ("| patients | RT group | BBM | burden | brain RT before | extracranial RT before | first failure "
            "| brain progression | eligible | salvage RT |")
    rows = [head, "| ---: | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, rt, bbm, bur, br, x, p, bt, el, sv in STRATA:
        rows.append(f"| {n} | {'RT' if rt else 'non-RT'} | {'yes' if bbm else 'no'} | {burden[bur]} | {brt[br]} "
                    f"| {'yes' if x else '-'} | {pat[p]} | {burden[bt] if bt else '-'} | {tech[el]} | {tech[sv]} |")
    return "\n".join(rows)


BLOCKS = {"parameters": parameter_table, "targets": targets_list, "strata": strata_table}


def render(text: str) -> str:
    """``text`` with each ``<!-- begin NAME (generated) -->`` ... ``<!-- end NAME -->`` block refreshed."""
    return refresh_blocks(text, BLOCKS, "generated")


if __name__ == "__main__":  # pragma: no cover
    path = Path(sys.argv[1])
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
