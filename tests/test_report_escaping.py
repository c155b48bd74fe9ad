"""Text from the cohort file (patient ids, the file name) is shown as written in report.md and report.html.

A patient id such as ``<img src=x onerror=alert(1)>`` copied raw into ``report.md`` is live HTML
in any Markdown viewer; ``*1*`` would turn into emphasis and ``a|b`` would split a table cell.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from failpattern._resources import synthetic_path
from failpattern.cohort import load_cohort
from failpattern.report import figures as report_figures
from failpattern.report import write_report
from failpattern.report.markdown import escape_markdown
from failpattern.study.card import load_study
from failpattern.study.plan import run_plan

#: Patient ids and how report.md must hold them.
IDS = {
    "<img src=x onerror=alert(1)>": "&lt;img src=x onerror=alert(1)&gt;",
    "*bold*": r"\*bold\*",
    "a|b": r"a\|b",
    "[link](http://x)": r"\[link\](http://x)",
    "`code`": r"\`code\`",
    "_u_": r"\_u\_",
    "&amp;": "&amp;amp;",
    "back\\slash": "back\\\\slash",
    "~~gone~~": r"\~\~gone\~\~",
}


@pytest.mark.parametrize("raw, shown", list(IDS.items()) + [
    ("best_response is empty", "best_response is empty"),  # "_" inside a word opens no emphasis: kept
    ("two\nlines", "two lines"), (None, "—"), (3, "3")])
def test_escape_markdown(raw, shown):
    assert escape_markdown(raw) == shown


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report of the canonical cohort with hostile patient ids (best response empty, so each is
    listed in the exclusions) under a hostile label (the CLI's label is the file name as given);
    figures not drawn."""
    folder = tmp_path_factory.mktemp("esc")
    df = pd.read_csv(synthetic_path("ni2019_exact.csv"), dtype=str, keep_default_na=False)
    df.loc[: len(IDS) - 1, "patient_id"] = list(IDS)
    df.loc[: len(IDS) - 1, "best_response"] = ""
    path = folder / "cohort.csv"  # "<", ">", "*" cannot be in a file name everywhere: the label has them
    df.to_csv(path, index=False)
    card = load_study("ni2019")
    plan = run_plan(load_cohort(path), card=card)
    mp = pytest.MonkeyPatch()
    mp.setattr(report_figures, "save_paper_figures", lambda *a, **k: [])
    try:
        out = write_report(plan, None, folder / "out", card=card, cohort_label="my <b>cohort</b> *v2*.csv")
    finally:
        mp.undo()
    return (out / "report.md").read_text(encoding="utf-8"), (out / "report.html").read_text(encoding="utf-8")


def test_markdown_shows_ids_and_file_name_as_written(report):
    md, _ = report
    assert "<img" not in md and "<b>" not in md  # no raw HTML from the cohort anywhere
    exclusions = md[md.index("## Exclusions"):]
    for raw, shown in IDS.items():
        rows = [line for line in exclusions.splitlines() if line.startswith(f"| response | {shown} |")]
        assert rows, raw
        assert rows[0].count(" | ") == 3  # four cells: a "|" in the id did not add one
    assert "best_response is empty" in exclusions
    head = md.split("\n## ")[0]
    assert r"my &lt;b&gt;cohort&lt;/b&gt; \*v2\*.csv" in head.splitlines()[0]  # the title names the file
    assert re.search(r"^\| cohort \| .*my &lt;b&gt;cohort&lt;/b&gt; \\\*v2\\\*\.csv \|$", head, re.MULTILINE)


def test_html_escapes_ids_and_file_name(report):
    _, html = report
    assert "<img" not in html and "<b>cohort" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;cohort&lt;/b&gt;" in html
    assert "&amp;amp;" in html  # the id "&amp;" shown as typed, not as "&"
