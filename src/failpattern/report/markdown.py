"""The report as Markdown (``report.md``): readable in a terminal, a diff, or a repository viewer.

Why besides the HTML: Markdown renders on GitHub and GitLab and diffs well
under version control, so two runs (two cohorts, two versions of
failpattern) can be compared line by line. Figures are linked from the
``figures/`` folder, not embedded.
"""

from __future__ import annotations

import re

import pandas as pd

from failpattern.report.content import AUDIT_INTRO, ReportContent, exclusion_counts, exclusions_listed

__all__ = ["escape_markdown", "render_markdown"]

#: What :func:`escape_markdown` changes: HTML-significant characters become entities (a Markdown
#: renderer passes raw HTML through); Markdown punctuation gets a backslash (CommonMark lets any
#: ASCII punctuation be escaped so); ``_`` only where it could open or close emphasis, i.e. not
#: between two letters or digits (``best_response`` stays readable in the raw file).
_MD_SPECIAL = re.compile(r"[&<>]|[\\`*\[\]|~$]|(?<![^\W_])_|_(?![^\W_])|\r\n|[\r\n]")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r\n": " ", "\r": " ", "\n": " "}


def escape_markdown(text) -> str:
    """``text`` as literal Markdown: shown as written, never read as HTML, links, emphasis or code.

    For strings that come from the cohort file (patient ids, the file name, values quoted in
    exclusion reasons): a patient id ``<img src=x>`` or ``*1*`` must appear as such in
    ``report.md``, not as an image or emphasis, and a ``|`` must not split a table cell.

    Parameters
    ----------
    text : object
        Converted with ``str``; None gives "—".

    Returns
    -------
    str
        One line: ``&``, ``<``, ``>`` as entities; `` \\ ` * [ ] | ~ $ `` and ``_`` at a word
        boundary backslash-escaped; line breaks as spaces.
    """
    if text is None:
        return "—"
    return _MD_SPECIAL.sub(lambda m: _ENTITIES.get(m.group(0), "\\" + m.group(0)), str(text))


def _cell(v) -> str:
    if v is None:
        return "—"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(frame: pd.DataFrame, columns, right=(), *, escaped=False) -> list[str]:
    """A Markdown table; ``escaped``: every cell through :func:`escape_markdown` (text from the cohort)."""
    cell = escape_markdown if escaped else _cell
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---:" if c in right else "---" for c in columns) + "|"
    return [head, rule] + ["| " + " | ".join(cell(v) for v in r) + " |"
                           for r in frame[list(columns)].itertuples(index=False)]


def _paper_cell(cell) -> str:
    if cell is None:
        return ""
    if cell.ours == cell.paper:
        return cell.ours
    return f"{cell.ours or '—'} (paper: {cell.paper})"


def render_markdown(content: ReportContent) -> str:
    """``report.md``: metadata, summary, figures, the numbers by section, skipped analyses, exclusions."""
    c = content
    out = [f"# {escape_markdown(c.title)}", ""]  # the title and the cohort label may hold the file name
    out += ["| | |", "|---|---|"] + [f"| {k} | {escape_markdown(v)} |" for k, v in c.metadata.items()] + [""]
    if c.summary is not None:
        out += ["## Summary", ""]
        if c.changed is not None and len(c.changed):
            out += [f"**Changed conclusions ({len(c.changed)}):**", ""]
            out += [f"- **{r.id}**: {r.changed_conclusion}" + ("" if r.verdict == "differs" else f" [{r.verdict}]")
                    for r in c.changed.itertuples()] + [""]
        out += _table(c.summary.assign(percent=[f"{p:.1f}" for p in c.summary["percent"]]),
                      ["verdict", "n", "percent"], right=("n", "percent"))
        out += ["", "By kind of number:", ""]
        out += _table(c.by_kind, list(c.by_kind.columns), right=tuple(c.by_kind.columns[1:]))
        out += ["", c.judging, ""]
    if c.summary is None:
        out += ["## Summary", "", "No study card was given: the report shows the values computed from this cohort "
                "only.", ""]
    out += ["## Methods", "", escape_markdown(c.methods), ""]  # it names the cohort file
    if c.paper_tables:
        out += ["## Tables", "", ("The paper's tables in their printed layout: each cell holds the value computed "
                                  "from this cohort, rounded as the paper rounds it, and the paper's value where it "
                                  "differs."), ""]
        for t in c.paper_tables:
            out += [f"### {t.title}", ""]
            frame = pd.DataFrame([[label] + [_paper_cell(x) for x in cells] for label, cells in t.rows],
                                 columns=["", *t.columns])
            out += _table(frame, list(frame.columns), right=tuple(t.columns)) + [""]
    out += ["## Proportional hazards", "", c.ph_note, ""]
    if c.ph is not None:
        out += _table(c.ph, ["covariate", "chisq", "df", "p"], right=("chisq", "df", "p")) + [""]
    out += ["## Methods audit", "", AUDIT_INTRO, ""]
    if c.audit is not None:
        out += _table(c.audit, ["figure", "comparison", "naive", "time_dependent", "landmarks", "holds"]) + [""]
    out += [f"- {note}" for note in c.audit_notes] + [""]
    out += ["## Figures", ""]
    for f in c.figures:
        if f["files"]:
            png = next((p for p in f["files"] if p.endswith(".png")), f["files"][0])
            out += [f"### {f['title']}", "", f"![{f['title']}]({png})", "", f["caption"], ""]
        else:
            out += [f"### {f['title']}", "", f"Not drawn: {f['reason']}", ""]
    if c.comparison is not None:
        out += ["## Values beside the published ones" if c.mode == "analysis" else "## Published and reproduced numbers",
                ""]
        for section, block in c.comparison.groupby("section", sort=False):
            out += [f"### {section}", ""]
            out += _table(block, [k for k in ("label", "id", "part", "published", "reproduced", "as_printed",
                                              "verdict", "baseline", "note") if k in block.columns],
                          right=("published", "reproduced", "as_printed"))
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
        # reasons may quote cell values, and patient ids are whatever the file holds
        out += _table(counts, ["analysis", "excluded", "reasons"], right=("excluded",), escaped=True) + [""]
        listed, more = exclusions_listed(c.exclusions)
        out += _table(listed.fillna(""), ["analysis", "patient_id", "line", "reason"], escaped=True) + [""]
        out += [more, ""] if more else []
    return "\n".join(out).rstrip() + "\n"
