"""The report as Markdown (``report.md``): readable in a terminal, a diff, or a repository viewer.

Why besides the HTML: Markdown renders on GitHub and GitLab and diffs well
under version control, so two runs (two cohorts, two versions of
failpattern) can be compared line by line. Figures are linked from the
``figures/`` folder, not embedded.
"""

from __future__ import annotations

import pandas as pd

from failpattern.report.content import ReportContent, exclusion_counts

__all__ = ["render_markdown"]


def _cell(v) -> str:
    if v is None:
        return "—"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(frame: pd.DataFrame, columns, right=()) -> list[str]:
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---:" if c in right else "---" for c in columns) + "|"
    return [head, rule] + ["| " + " | ".join(_cell(v) for v in r) + " |"
                           for r in frame[list(columns)].itertuples(index=False)]


def render_markdown(content: ReportContent) -> str:
    """``report.md``: metadata, summary, figures, the numbers by section, skipped analyses, exclusions."""
    c = content
    out = [f"# {c.title}", ""]
    out += ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in c.metadata.items()] + [""]
    if c.summary is not None:
        out += ["## Summary", ""]
        out += _table(c.summary.assign(percent=[f"{p:.1f}" for p in c.summary["percent"]]),
                      ["verdict", "n", "percent"], right=("n", "percent"))
        out += ["", ("A number is *within tolerance* when |reproduced − published| is at most its tolerance "
                     "(the card's, scaled by the profile, never below half a unit of the printed last digit)."), ""]
    out += ["## Figures", ""]
    for f in c.figures:
        if f["files"]:
            png = next((p for p in f["files"] if p.endswith(".png")), f["files"][0])
            out += [f"### {f['title']}", "", f"![{f['title']}]({png})", "", f["caption"], ""]
        else:
            out += [f"### {f['title']}", "", f"Not drawn: {f['reason']}", ""]
    if c.comparison is not None:
        out += ["## Published and reproduced numbers", ""]
        for section, block in c.comparison.groupby("section", sort=False):
            out += [f"### {section}", ""]
            out += _table(block, ["id", "published", "reproduced", "difference", "tolerance", "verdict", "note"],
                          right=("published", "reproduced", "difference", "tolerance"))
            out.append("")
    else:
        out += ["## Reproduced values", "", "No study card was given: values only, no comparison.", ""]
        for section, block in c.values.groupby("section", sort=False):
            out += [f"### {section}", ""]
            out += _table(block, ["id", "value", "ci", "n_used", "n_excluded", "note"],
                          right=("value", "n_used", "n_excluded"))
            out.append("")
    out += ["## Analyses not run", ""]
    if c.skipped.empty:
        out += ["Every analysis of the plan ran on this cohort.", ""]
    else:
        out += _table(c.skipped, ["analysis", "reason", "ids"]) + [""]
    out += ["## Exclusions", ""]
    counts = exclusion_counts(c.exclusions)
    if counts.empty:
        out += ["No patient was excluded from any analysis.", ""]
    else:
        out += [f"{len(c.exclusions)} exclusions (patient × analysis) in {len(counts)} analyses.", ""]
        out += _table(counts, ["analysis", "excluded", "reasons"], right=("excluded",)) + [""]
        out += _table(c.exclusions.fillna(""), ["analysis", "patient_id", "line", "reason"]) + [""]
    return "\n".join(out).rstrip() + "\n"
