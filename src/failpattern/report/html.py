"""The report as one self-contained HTML file (``report.html``).

Why self-contained: the report is mailed, attached to a manuscript review or
archived with a data set; it must open the same anywhere, offline, years
later. So figures are inline (base64 PNG), the CSS is a few lines in a
``<style>`` element, and nothing is fetched — no scripts, fonts or images
from the network. Rows are coloured by verdict so the eye finds the numbers
that differ from the paper, and the changed conclusions come first.
"""

from __future__ import annotations

import base64
from html import escape

import pandas as pd

from failpattern.report.content import AUDIT_INTRO, ReportContent, exclusion_counts, exclusions_listed

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}h3{margin-top:1.4em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border-bottom:1px solid #e4e4e4;padding:.2em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.verdict{white-space:nowrap}tr.match td.verdict{color:#1a7f37}tr.near td.verdict{color:#6b5900}tr.differs{background:#fff1f0}tr.differs td.verdict{color:#b42318;font-weight:600}
.changed{border-left:4px solid #b42318;padding:.2em .8em;background:#fff8f7}
tr.notrepro td{color:#777}tr.contra td{color:#8a5a00}td.note{font-size:.9em;color:#555;max-width:28em}
th{position:sticky;top:0;z-index:1}
.filter a{margin-right:.8em}.filter-anchor{display:block;height:0;visibility:hidden}
#only-differs:target~.numbers tbody tr:not(.differs){display:none}#only-match:target~.numbers tbody tr:not(.match){display:none}#only-near:target~.numbers tbody tr:not(.near){display:none}#only-contra:target~.numbers tbody tr:not(.contra){display:none}#only-notrepro:target~.numbers tbody tr:not(.notrepro){display:none}
td .paper{color:#666;font-size:.85em;display:block}table.paper td{white-space:nowrap}
table.paper td.differs{background:#fff1f0}table.paper td.contra{background:#fdf6e3}
.contents{columns:3;font-size:.9em}.methods{max-width:52em}
figure{margin:1em 0 2em}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}.meta td:first-child{font-weight:600}
.summary td{font-size:1.05em}nav a{margin-right:1em}
"""
_ROW_CLASS = {"matches as printed": "match", "near": "near", "differs": "differs",
              "not reproducible from these data": "notrepro", "contradicted by the paper": "contra"}
_NUMBER_COLUMNS = ("id", "part", "published", "reproduced", "as_printed", "verdict", "baseline", "note")


def _table(frame: pd.DataFrame, columns, *, numeric=(), classes=None, css: str = "", titles=None) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    rows = []
    for i, r in enumerate(frame[list(columns)].itertuples(index=False)):
        cls = f' class="{classes[i]}"' if classes is not None else ""
        cells = []
        for k, (c, v) in enumerate(zip(columns, r)):
            tip = f' title="{escape(titles[i])}"' if titles is not None and k == 0 else ""
            cells.append(f'<td class="{"num" if c in numeric else c}"{tip}>{escape(str(v))}</td>')
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _anchor(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def _paper_table(t) -> str:
    """A published table in its printed layout: our value in each cell, the paper's beneath where they differ."""
    head = "<th></th>" + "".join(f"<th>{escape(c)}</th>" for c in t.columns)
    rows = []
    for label, cells in t.rows:
        tds = [f"<th scope=\"row\">{escape(label)}</th>"]
        for c in cells:
            if c is None:
                tds.append("<td></td>")
                continue
            paper = "" if c.ours == c.paper else f'<span class="paper">paper: {escape(c.paper)}</span>'
            tds.append(f'<td class="num {_ROW_CLASS.get(c.verdict, "")}" title="{escape(", ".join(c.ids))}">'
                       f"{escape(c.ours or '—')}{paper}</td>")
        rows.append(f"<tr>{''.join(tds)}</tr>")
    return (f'<table class="paper"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


_FILTERS = (("differs", "differs"), ("match", "matches as printed"), ("near", "near"),
            ("contra", "contradicted by the paper"), ("notrepro", "not reproducible from these data"))


def render_html(content: ReportContent) -> str:
    """``report.html``: the same sections as :func:`~failpattern.report.markdown.render_markdown`,
    figures inline as base64 PNG; the numbers can be filtered by verdict (links to
    ``#only-differs`` and the like: CSS alone, no script)."""
    c = content
    analysis = c.mode == "analysis"
    nav = [("summary", "Summary"), ("methods", "Methods")]
    if c.paper_tables:
        nav.append(("tables", "Tables"))
    nav += [("ph", "Proportional hazards"), ("audit", "Methods audit"), ("figures", "Figures"), ("numbers", "Numbers"), ("not-run", "Analyses not run"),
            ("exclusions", "Exclusions")]
    body = [f"<h1>{escape(c.title)}</h1>",
            "<nav>" + "".join(f'<a href="#{k}">{escape(v)}</a>' for k, v in nav) + "</nav>"]
    meta = pd.DataFrame({"key": list(c.metadata),
                         "value": ["—" if v is None else str(v) for v in c.metadata.values()]})
    body.append(_table(meta, ["key", "value"], css="meta"))
    body.append('<h2 id="summary">Summary</h2>')
    if c.summary is not None:
        if analysis:
            body.append("<p>Every value of the paper's analysis plan computed from this cohort, set beside the "
                        "value the paper publishes. A difference says how this cohort differs from the paper's "
                        "patients; it is not an error.</p>")
        if c.changed is not None and len(c.changed):
            items = "".join(f"<li><b>{escape(r.label)}</b> <small>({escape(r.id)})</small>: "
                            f"{escape(r.changed_conclusion)}"
                            + ("" if r.verdict == "differs" else f" [{escape(r.verdict)}]") + "</li>"
                            for r in c.changed.itertuples())
            body.append(f'<div class="changed"><h3>Changed conclusions ({len(c.changed)})</h3><ul>{items}</ul></div>')
        s = c.summary.assign(percent=[f"{p:.1f}" for p in c.summary["percent"]])
        body.append(_table(s, ["verdict", "n", "percent"], numeric=("n", "percent"),
                           classes=[_ROW_CLASS.get(v, "") for v in s["verdict"]], css="summary"))
        body.append("<h3>By kind of number</h3>")
        body.append(_table(c.by_kind, list(c.by_kind.columns), numeric=tuple(c.by_kind.columns[1:])))
        body.append(f"<p>{escape(c.judging)}</p>")
    else:
        body.append("<p>No study card was given: the report shows the values computed from this cohort only.</p>")
    body.append('<h2 id="methods">Methods</h2>')
    body.append(f'<p class="methods">{escape(c.methods)}</p>')
    if c.paper_tables:
        body.append('<h2 id="tables">Tables</h2>')
        body.append("<p>The paper's tables in their printed layout. Each cell holds the value computed from "
                    "this cohort, rounded as the paper rounds it; where the paper prints something else, it is "
                    "shown beneath (<span style=\"background:#fff1f0\">differs</span>, <span style=\"background:"
                    "#fdf6e3\">contradicted by the paper</span>). Hover a cell for its card ids.</p>")
        for t in c.paper_tables:
            body.append(f'<h3 id="t-{_anchor(t.title)}">{escape(t.title)}</h3>')
            body.append(_paper_table(t))
    body.append('<h2 id="ph">Proportional hazards</h2>')
    body.append(f"<p>{escape(c.ph_note)}</p>")
    if c.ph is not None:
        body.append(_table(c.ph, ["covariate", "chisq", "df", "p"], numeric=("chisq", "df", "p")))
    body.append('<h2 id="audit">Methods audit</h2>')
    body.append(f"<p>{escape(AUDIT_INTRO)}</p>")
    if c.audit is not None:
        body.append(_table(c.audit, ["figure", "comparison", "naive", "time_dependent", "landmarks", "holds"]))
    body.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in c.audit_notes) + "</ul>")
    body.append('<h2 id="figures">Figures</h2>')
    for f in c.figures:
        body.append(f'<h3 id="{escape(f["name"])}">{escape(f["title"])}</h3>')
        if f.get("png"):
            data = base64.b64encode(f["png"]).decode("ascii")
            body.append(f'<figure><img alt="{escape(f["title"])}" src="data:image/png;base64,{data}">'
                        f'<figcaption>{escape(f["caption"])}</figcaption></figure>')
        else:
            body.append(f"<p>Not drawn: {escape(f['reason'])}</p>")
    if c.comparison is not None:
        body.append('<h2 id="numbers">' + ("Values beside the published ones" if analysis
                                           else "Published and reproduced numbers") + "</h2>")
        sections = list(dict.fromkeys(c.comparison["section"]))
        body.append('<ul class="contents">' + "".join(f'<li><a href="#s-{_anchor(x)}">{escape(x)}</a></li>'
                                                       for x in sections) + "</ul>")
        counts = c.comparison["verdict"].value_counts()
        body += [f'<span class="filter-anchor" id="only-{k}"></span>' for k, _ in _FILTERS]
        body.append('<p class="filter">Show: <a href="#numbers">all</a>' + "".join(
            f'<a href="#only-{k}">{escape(v)} ({int(counts.get(v, 0))})</a>' for k, v in _FILTERS
            if counts.get(v, 0)) + "</p>")
        body.append('<div class="numbers">')
        cols = ["label"] + ([] if analysis else ["id"]) + [k for k in _NUMBER_COLUMNS[1:] if k in c.comparison]
        for section, block in c.comparison.groupby("section", sort=False):
            body.append(f'<h3 id="s-{_anchor(section)}">{escape(section)}</h3>')
            body.append(_table(block, cols, numeric=("published", "reproduced", "as_printed"),
                               classes=[_ROW_CLASS.get(v, "") for v in block["verdict"]],
                               titles=list(block["id"])))
        body.append("</div>")
    else:
        body.append('<h2 id="numbers">Values</h2>')
        for section, block in c.values.groupby("section", sort=False):
            body.append(f'<h3 id="s-{_anchor(section)}">{escape(section)}</h3>')
            body.append(_table(block, ["id", "value", "ci", "n_used", "n_excluded", "note"],
                               numeric=("value", "ci", "n_used", "n_excluded")))
    body.append('<h2 id="not-run">Analyses not run</h2>')
    body.append("<p>Every analysis of the plan ran on this cohort.</p>" if c.skipped.empty
                else _table(c.skipped, ["analysis", "reason", "ids"]))
    body.append('<h2 id="exclusions">Exclusions</h2>')
    counts = exclusion_counts(c.exclusions)
    if counts.empty:
        body.append("<p>No patient was excluded from any analysis.</p>")
    else:
        body.append(f"<p>{len(c.exclusions)} exclusions (patient × analysis) in {len(counts)} analyses.</p>")
        body.append(_table(counts, ["analysis", "excluded", "reasons"], numeric=("excluded",)))
        listed, more = exclusions_listed(c.exclusions)
        body.append(_table(listed.fillna("").astype(str), ["analysis", "patient_id", "line", "reason"]))
        if more:
            body.append(f"<p>{escape(more)}</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(c.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
