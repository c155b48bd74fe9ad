"""Generate ``docs/api.md``, the API reference, from the package's numpydoc docstrings.

Usage (from the root of a clone)::

    python tools/gen_api_docs.py            # rewrite docs/api.md
    python tools/gen_api_docs.py --check    # exit 1 if docs/api.md is out of date

Documented: everything in ``failpattern.__all__`` and ``failpattern.plots.__all__``,
plus the supporting types their results expose (``SUPPORTING``). Each object gets its
signature, summary, extended description and the numpydoc sections Parameters,
Returns, Yields, Raises, Attributes, See Also, Notes, References and Examples; classes
also get their public properties and methods. Objects are grouped by the subpackage
that defines them (Statistics, Cohorts and study cards, Plots, Errors).

Only the standard library is used: ``inspect`` for signatures and members, and a
small parser for the numpydoc section layout (a title underlined with dashes). The
output is deterministic, so ``tests/test_docs.py`` can regenerate it in memory and
compare. The same module provides :func:`docstring_problems`, which that test uses
to require a docstring with Parameters and Returns sections on every public callable
that takes arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "api.md"
COMMAND = "python tools/gen_api_docs.py"

GROUPS = ("Statistics", "Cohorts and study cards", "Analysis plan and simulation", "Plots", "Errors")
GROUP_INTRO = {
    "Statistics": (
        "Estimators and tests. Each function validates its arguments (bad input raises "
        "`InputError` naming the argument, positions, values and rule) and returns an "
        "immutable result with `.summary` (a DataFrame) and `to_frame()`. Which option "
        "reproduces R, SPSS or Stata is in [methods-parity.md](methods-parity.md)."),
    "Cohorts and study cards": (
        "Loading and validating a cohort file ([cohort-format.md](cohort-format.md)) and "
        "a study card of published numbers ([study-cards.md](study-cards.md))."),
    "Analysis plan and simulation": (
        "The paper's analyses run on a cohort and compared with the published numbers, and the "
        "simulator of cohorts with the published characteristics ([simulator.md](simulator.md))."),
    "Plots": (
        "`failpattern.plots` turns results into publication figures. Each function "
        "returns a `matplotlib.figure.Figure` made without pyplot. Import with "
        "`from failpattern.plots import plot_km`."),
    "Errors": (
        "Every exception failpattern raises on purpose derives from `FailpatternError`. "
        "`InputError`, `CohortError`, `StudyCardError` and `ConvergenceError` are also "
        "`ValueError`s, so `except ValueError` catches them."),
}

# Types that are not exported at the top level but are returned by public objects.
# (dotted import path, group)
SUPPORTING = (
    ("failpattern.stats.cox.ModelTest", "Statistics"),
    # the fit layer: the estimators on clean arrays, without validation
    ("failpattern.stats.fit.km_fit", "Statistics"),
    ("failpattern.stats.fit.km_fits", "Statistics"),
    ("failpattern.stats.fit.logrank_fit", "Statistics"),
    ("failpattern.stats.fit.coxph_fit", "Statistics"),
    ("failpattern.stats.fit.finegray_prepare_times", "Statistics"),
    ("failpattern.stats.fit.finegray_prepare", "Statistics"),
    ("failpattern.stats.fit.finegray_fit", "Statistics"),
    ("failpattern.stats.fit.finegray_fit_univariate", "Statistics"),
    ("failpattern.stats.fit.expected_counts", "Statistics"),
    ("failpattern.stats.fit.chisq_p", "Statistics"),
    ("failpattern.stats.fit.fisher_2x2_p", "Statistics"),
    ("failpattern.stats.fit.auto_contingency_method", "Statistics"),
    ("failpattern.stats.fit.mann_whitney_fit", "Statistics"),
    ("failpattern.stats.fit.t_test_fit", "Statistics"),
    # batched kernels over a replicate axis (replicate studies)
    ("failpattern.stats.batch.km_median_batch", "Statistics"),
    ("failpattern.stats.batch.logrank_batch", "Statistics"),
    ("failpattern.stats.batch.contingency_batch", "Statistics"),
    ("failpattern.stats.batch_cif.cif_at_batch", "Statistics"),
    ("failpattern.stats.batch_cif.gray_test_batch", "Statistics"),
    ("failpattern.stats.batch_cox.cox_batch", "Statistics"),
    ("failpattern.stats.batch_cox.CoxBatchResult", "Statistics"),
    ("failpattern.stats.batch_finegray.finegray_batch", "Statistics"),
    ("failpattern.stats.batch_finegray.FineGrayBatchResult", "Statistics"),
    ("failpattern.cohort.Problem", "Cohorts and study cards"),
    ("failpattern.cohort.Exclusion", "Cohorts and study cards"),
    ("failpattern.cohort.check_clinical", "Cohorts and study cards"),
    ("failpattern.study.CardNumber", "Cohorts and study cards"),
    ("failpattern.study.CardProblem", "Cohorts and study cards"),
    ("failpattern.study.Population", "Cohorts and study cards"),
    ("failpattern.study.Check", "Cohorts and study cards"),
    ("failpattern.study.design.Settings", "Cohorts and study cards"),
    ("failpattern.simulate.reconstruct.solve_counts", "Analysis plan and simulation"),
    ("failpattern.simulate.reconstruct.CountSkeleton", "Analysis plan and simulation"),
    ("failpattern.simulate.reconstruct.reconstruct", "Analysis plan and simulation"),
    ("failpattern.simulate.reconstruct.Reconstruction", "Analysis plan and simulation"),
    ("failpattern.simulate.reconstruct.targets_for", "Analysis plan and simulation"),
    ("failpattern.study.plan_batch.run_plan_batch", "Analysis plan and simulation"),
    ("failpattern.study.plan_batch.PlanBatch", "Analysis plan and simulation"),
    ("failpattern.study.design.Binary", "Cohorts and study cards"),
    ("failpattern.simulate.plausibility.plausibility", "Analysis plan and simulation"),
    ("failpattern.simulate.plausibility.PlausibilityResult", "Analysis plan and simulation"),
    ("failpattern.replicate.study.bootstrap_task", "Analysis plan and simulation"),
    ("failpattern.study.audit.MethodsAudit", "Analysis plan and simulation"),
    ("failpattern.study.audit.ExposureAudit", "Analysis plan and simulation"),
    ("failpattern.study.audit.analyse_exposure", "Statistics"),
    ("failpattern.study.audit.ExposureAnalysis", "Statistics"),
    ("failpattern.study.audit.split_at_exposure", "Statistics"),
)

SECTION_ORDER = ("Parameters", "Returns", "Yields", "Raises", "Warns", "Attributes",
                 "See Also", "Notes", "References", "Examples")
ENTRY_SECTIONS = ("Parameters", "Returns", "Yields", "Raises", "Warns", "Attributes",
                  "Other Parameters")
TYPE_ONLY_SECTIONS = ("Returns", "Yields", "Raises", "Warns")  # "name : type" or just "type"


# --------------------------------------------------------------------------- collection

@dataclasses.dataclass(frozen=True)
class Entry:
    """One object to document."""

    name: str          # name the user imports
    qualified: str     # import path shown to the user
    obj: object
    group: str
    exported: bool     # in one of the ``__all__`` lists


def _group_of(obj) -> str:
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return "Errors"
    module = getattr(obj, "__module__", "") or ""
    if module.startswith("failpattern.stats"):
        return "Statistics"
    if module.startswith(("failpattern.study.plan", "failpattern.study.compare",
                          "failpattern.simulate")):
        return "Analysis plan and simulation"
    if module.startswith(("failpattern.cohort", "failpattern.study", "failpattern.datasets")):
        return "Cohorts and study cards"
    if module.startswith("failpattern.plots"):
        return "Plots"
    if module.startswith("failpattern.errors"):
        return "Errors"
    raise SystemExit(f"gen_api_docs: no group for {obj!r} (module {module!r}); "
                     "add a rule to _group_of")


def _resolve(dotted: str):
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def public_entries() -> list[Entry]:
    """Every documented object, in group order, then in ``__all__`` order."""
    import failpattern
    import failpattern.plots

    entries: list[Entry] = []
    for package in (failpattern, failpattern.plots):
        for name in package.__all__:
            obj = getattr(package, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue  # __version__
            entries.append(Entry(name, f"{package.__name__}.{name}", obj, _group_of(obj), True))
    for dotted, group in SUPPORTING:
        obj = _resolve(dotted)
        entries.append(Entry(obj.__name__, dotted, obj, group, False))
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted(entries, key=lambda e: (order[e.group], not e.exported))


def class_members(cls) -> list[tuple[str, str, object]]:
    """Public properties and methods of ``cls`` as (name, kind, function).

    Members defined by failpattern classes in the MRO only (not ``Exception``'s or
    ``object``'s), in definition order; dataclass fields are documented in the
    class's Attributes section instead.
    """
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    seen, out = set(), []
    for klass in cls.__mro__:
        if not (klass.__module__ or "").startswith("failpattern"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen or name in fields:
                continue
            seen.add(name)
            if isinstance(value, property):
                out.append((name, "property", value.fget))
            elif isinstance(value, classmethod):
                out.append((name, "classmethod", value.__func__))
            elif isinstance(value, staticmethod):
                out.append((name, "staticmethod", value.__func__))
            elif inspect.isfunction(value):
                out.append((name, "method", value))
    return out


# --------------------------------------------------------------------------- numpydoc parsing

@dataclasses.dataclass
class Docstring:
    summary: str
    extended: list[str]                 # raw lines
    sections: dict[str, list[str]]      # title -> raw lines (dedented)


def parse_docstring(doc: str | None) -> Docstring:
    """Split a cleaned docstring into summary, extended description and sections."""
    lines = inspect.cleandoc(doc or "").splitlines()
    sections: dict[str, list[str]] = {}
    body: list[str] = []
    current = body
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        title = line.strip()
        if (title and nxt.strip() and set(nxt.strip()) == {"-"}
                and len(nxt.strip()) >= 3 and not line.startswith(" ")):
            current = sections.setdefault(title, [])
            i += 2
            continue
        current.append(line)
        i += 1
    paragraphs = "\n".join(body).strip().split("\n\n", 1)
    summary = " ".join(paragraphs[0].split()) if paragraphs[0] else ""
    extended = paragraphs[1].splitlines() if len(paragraphs) > 1 else []
    return Docstring(summary, extended,
                     {k: _trim(v) for k, v in sections.items()})


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def parse_entries(lines: list[str], type_only: bool) -> list[tuple[str, str, list[str]]]:
    """``name : type`` entries with their indented descriptions.

    For Returns/Raises-like sections a header without `` : `` is a type, not a name.
    """
    entries: list[tuple[str, str, list[str]]] = []
    for line in lines:
        if line and not line[0].isspace():
            head = line.strip()
            if " : " in head:
                name, typ = head.split(" : ", 1)
            elif head.endswith(" :"):
                name, typ = head[:-2], ""
            elif type_only:
                name, typ = "", head
            else:
                name, typ = head, ""
            entries.append((name.strip(), typ.strip(), []))
        elif entries:
            entries[-1][2].append(line)
    return [(n, t, _dedent(d)) for n, t, d in entries]


def _dedent(lines: list[str]) -> list[str]:
    indents = [len(x) - len(x.lstrip()) for x in lines if x.strip()]
    cut = min(indents, default=0)
    return _trim([x[cut:] for x in lines])


# --------------------------------------------------------------------------- rendering

_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|attr|data|mod|obj|exc|const):`([^`]+)`")


class Renderer:
    def __init__(self, entries: list[Entry]):
        self.anchors = {e.name: anchor(e.name) for e in entries}

    # ---- inline text
    def inline(self, text: str) -> str:
        """RST inline markup to Markdown: roles, double backticks, default role."""
        def role(match: re.Match) -> str:
            target = match.group(1)
            shown = target
            m = re.fullmatch(r"(.*?)\s*<(.+)>", target)
            if m:
                shown, target = m.group(1), m.group(2)
            elif target.startswith("~"):
                shown = target[1:].rsplit(".", 1)[-1]
                target = target[1:]
            target = target.lstrip("~")
            parts = target.split(".")
            key = parts[-1]
            if key not in self.anchors and len(parts) > 1 and parts[-2] in self.anchors:
                key = parts[-2]  # Class.method -> the class's section
            code = f"`{shown}`"
            return f"[{code}](#{self.anchors[key]})" if key in self.anchors else code

        pieces = re.split(r"(``.+?``)", text)
        out = []
        for piece in pieces:
            if piece.startswith("``") and piece.endswith("``") and len(piece) > 4:
                out.append("`" + piece[2:-2] + "`")
            else:
                out.append(_ROLE.sub(role, piece))
        return "".join(out)

    # ---- blocks
    def block(self, lines: list[str]) -> str:
        """Paragraphs, bullet lists and ``::`` literal blocks to Markdown."""
        out: list[str] = []
        paragraph: list[str] = []
        i = 0
        lines = _dedent(list(lines))

        def flush():
            if paragraph:
                out.append(self.inline(" ".join(s.strip() for s in paragraph)))
                paragraph.clear()

        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            if not stripped:
                flush()
                out.append("")
                i += 1
                continue
            if stripped.startswith(">>>"):
                flush()
                code = []
                while i < len(lines) and lines[i].strip():
                    code.append(lines[i])
                    i += 1
                out.append("```python\n" + "\n".join(_dedent(code)) + "\n```")
                continue
            if re.match(r"^[*-] ", stripped) and not line.startswith(" "):
                flush()
                item = [stripped[2:]]
                i += 1
                while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                    item.append(lines[i].strip())
                    i += 1
                out.append("- " + self.inline(" ".join(item)))
                continue
            paragraph.append(line)
            i += 1
            if stripped.endswith("::"):
                last = paragraph[-1].rstrip()
                paragraph[-1] = last[:-2].rstrip() + (":" if last[:-2].strip() else "")
                if not paragraph[-1].strip():
                    paragraph.pop()
                flush()
                literal = []
                while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                    literal.append(lines[i])
                    i += 1
                out.append("```\n" + "\n".join(_dedent(literal)) + "\n```")
        flush()
        text = "\n".join(out)
        text = re.sub(r"\n{3,}", "\n\n", text)
        # list items need a blank line before a following paragraph, and none between items
        return text.strip()

    def entries(self, title: str, lines: list[str]) -> str:
        items = []
        for name, typ, desc in parse_entries(lines, title in TYPE_ONLY_SECTIONS):
            head = ", ".join(f"`{n.strip()}`" for n in name.split(",")) if name else ""
            typ_md = self.type_text(typ) if typ else ""
            if head and typ_md:
                head = f"{head} : {typ_md}"
            elif typ_md:
                head = typ_md
            text = self.block(desc)
            body = "\n".join(("  " + x) if x else "" for x in text.splitlines())
            if head and body:
                items.append(f"- {head}\n\n{body}")
            elif body:
                items.append("- " + body.lstrip())
            else:
                items.append(f"- {head}")
        return "\n\n".join(items)

    def type_text(self, typ: str) -> str:
        """A type such as ``KaplanMeierResult`` or ``{"a", "b"}``, linked where documented."""
        if typ in self.anchors:
            return f"[`{typ}`](#{self.anchors[typ]})"
        words = re.split(r"([A-Za-z_][A-Za-z0-9_.]*)", typ)
        if any(w.rsplit(".", 1)[-1] in self.anchors for w in words[1::2]):
            return "".join(f"[`{w.rsplit('.', 1)[-1]}`](#{self.anchors[w.rsplit('.', 1)[-1]]})"
                           if k % 2 and w.rsplit(".", 1)[-1] in self.anchors else w
                           for k, w in enumerate(words))
        return "*" + self.inline(typ).replace("*", r"\*") + "*"

    def sections(self, doc: Docstring, level: int) -> list[str]:
        out = []
        extra = [t for t in doc.sections if t not in SECTION_ORDER]
        for title in (*SECTION_ORDER, *extra):
            if title not in doc.sections:
                continue
            lines = doc.sections[title]
            if title in ENTRY_SECTIONS:
                body = self.entries(title, lines)
            elif title == "Examples":
                body = self.block(lines)
                if "```" not in body:
                    body = "```python\n" + "\n".join(_dedent(lines)) + "\n```"
            else:
                body = self.block(lines)
            out.append(f"{'#' * level} {title}\n\n{body}")
        return out

    # ---- objects
    def document(self, entry: Entry, returned_by: dict[str, list[str]]) -> str:
        obj = entry.obj
        doc = parse_docstring(inspect.getdoc(obj) if inspect.isclass(obj) else obj.__doc__)
        parts = []
        if inspect.isclass(obj):
            kind = "exception" if issubclass(obj, BaseException) else "class"
            parts.append(f"### {entry.name}")
            parts.append(f"*{kind}* `{entry.qualified}`")
            bases = [b.__name__ for b in obj.__bases__ if b is not object]
            if bases:
                parts.append("Subclass of " + ", ".join(
                    f"[`{b}`](#{self.anchors[b]})" if b in self.anchors else f"`{b}`"
                    for b in bases) + ".")
            if entry.name in returned_by:
                parts.append("Returned by " + ", ".join(
                    f"[`{f}`](#{self.anchors[f]})" for f in returned_by[entry.name]) + ".")
        else:
            parts.append(f"### {entry.name}")
            parts.append("```python\n" + signature(entry.qualified, obj) + "\n```")
        if doc.summary:
            parts.append(self.inline(doc.summary))
        if doc.extended:
            parts.append(self.block(doc.extended))
        parts.extend(self.sections(doc, 4))
        if inspect.isclass(obj):
            parts.extend(self.members(entry.name, obj))
        return "\n\n".join(p for p in parts if p)

    def members(self, cls_name: str, cls) -> list[str]:
        members = class_members(cls)
        out = []
        props = [(n, f) for n, k, f in members if k == "property"]
        if props:
            rows = []
            for name, func in props:
                doc = parse_docstring(func.__doc__)
                text = self.inline(doc.summary)
                if doc.extended:
                    text += " " + self.block(doc.extended).replace("\n\n", " ").replace("\n", " ")
                ret = _annotation(inspect.signature(func).return_annotation)
                kind_text = f" ({self.type_text(ret)})" if ret else ""
                rows.append(f"- `{name}`{kind_text}" + (f": {text}" if text else ""))
            out.append("#### Properties\n\n" + "\n".join(rows))
        for name, kind, func in members:
            if kind == "property":
                continue
            doc = parse_docstring(func.__doc__)
            sig = signature(f"{cls_name}.{name}", func, drop_first=(kind != "staticmethod"))
            prefix = f"*{kind}* " if kind != "method" else ""
            parts = [f"#### {cls_name}.{name}", prefix + "```python\n" + sig + "\n```"
                     if not prefix else f"{prefix}\n\n```python\n{sig}\n```"]
            if doc.summary:
                parts.append(self.inline(doc.summary))
            if doc.extended:
                parts.append(self.block(doc.extended))
            parts.extend(f"**{s.split(chr(10), 1)[0].lstrip('#').strip()}**\n\n"
                         + s.split("\n\n", 1)[1] for s in self.sections(doc, 5))
            out.append("\n\n".join(parts))
        return out


def anchor(name: str) -> str:
    """GitHub's heading anchor for a heading consisting of ``name``."""
    return re.sub(r"[^a-z0-9_\- ]", "", name.lower()).replace(" ", "-")


def _annotation(ann) -> str:
    if ann is inspect.Parameter.empty:
        return ""
    return ann if isinstance(ann, str) else inspect.formatannotation(ann)


def signature(qualified: str, func, drop_first: bool = False) -> str:
    """``name(arg, *, kw: type = default) -> type``, one parameter a line when long."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    if drop_first and params:
        params = params[1:]
    pieces, star_done = [], False
    for k, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not star_done:
            pieces.append("*")
            star_done = True
        if p.kind is p.VAR_POSITIONAL:
            star_done = True
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        text = prefix + p.name
        ann = _annotation(p.annotation)
        if ann:
            text += f": {ann}"
        if p.default is not p.empty:
            text += (" = " if ann else "=") + repr(p.default)
        pieces.append(text)
        if p.kind is p.POSITIONAL_ONLY and (k + 1 == len(params)
                                            or params[k + 1].kind is not p.POSITIONAL_ONLY):
            pieces.append("/")
    ret = _annotation(sig.return_annotation)
    tail = f" -> {ret}" if ret else ""
    one_line = f"{qualified}({', '.join(pieces)}){tail}"
    if len(one_line) <= 88:
        return one_line
    return f"{qualified}(\n" + "".join(f"    {x},\n" for x in pieces) + f"){tail}"


# --------------------------------------------------------------------------- document

def generate() -> str:
    """The full text of ``docs/api.md``."""
    entries = public_entries()
    r = Renderer(entries)
    returned_by: dict[str, list[str]] = {}
    for e in entries:
        if inspect.isfunction(e.obj) and e.exported:
            ret = _annotation(inspect.signature(e.obj).return_annotation)
            if ret in r.anchors:
                returned_by.setdefault(ret, []).append(e.name)

    out = [
        "<!-- Generated by tools/gen_api_docs.py from the docstrings. Do not edit by hand: "
        f"run `{COMMAND}`. -->",
        "",
        "# API reference",
        "",
        "Everything in `failpattern.__all__` (import as `import failpattern as fp`) and in "
        "`failpattern.plots.__all__`, with the supporting types their results expose. "
        "`failpattern.__version__` is the version string. Which option of each "
        "statistic reproduces R, SPSS or Stata, and how closely, is in "
        "[methods-parity.md](methods-parity.md).",
        "",
        "## Contents",
        "",
    ]
    for group in GROUPS:
        members = [e for e in entries if e.group == group]
        if not members:
            continue
        names = ", ".join(f"[`{e.name}`](#{anchor(e.name)})" for e in members)
        out.append(f"- [{group}](#{anchor(group)}): {names}")
    for group in GROUPS:
        members = [e for e in entries if e.group == group]
        if not members:
            continue
        out += ["", f"## {group}", "", GROUP_INTRO[group]]
        supporting_started = False
        for e in members:
            if not e.exported and not supporting_started:
                out += ["", f"Supporting types (not exported from the top level; import "
                        f"them from the module shown)."]
                supporting_started = True
            out += ["", r.document(e, returned_by)]
    text = "\n".join(out) + "\n"
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text)


# --------------------------------------------------------------------------- checks

def _takes_arguments(func, drop_first: bool) -> bool:
    params = list(inspect.signature(func).parameters.values())
    return len(params) > (1 if drop_first else 0)


def _returns_none(func) -> bool:
    ret = inspect.signature(func).return_annotation
    return ret is None or ret == "None"


def docstring_problems() -> list[str]:
    """Public callables whose docstrings miss what the API reference needs.

    Rules: every documented object, property and method has a docstring; a
    function or method that takes arguments has Parameters and (unless annotated
    ``-> None``) Returns sections; every Parameters entry names a real parameter and
    every parameter is documented; a dataclass documents its public fields in an
    Attributes section. Each problem is a string ``"<object>: <what is missing>"``.
    """
    problems = []

    def check_callable(label: str, func, drop_first: bool) -> None:
        doc = func.__doc__
        if not (doc and doc.strip()):
            problems.append(f"{label}: no docstring")
            return
        if not _takes_arguments(func, drop_first):
            return
        parsed = parse_docstring(doc)
        if "Parameters" not in parsed.sections:
            problems.append(f"{label}: no Parameters section")
        else:
            params = [p for p in inspect.signature(func).parameters.values()]
            if drop_first:
                params = params[1:]
            names = {p.name for p in params}
            listed = set()
            for name, _, _ in parse_entries(parsed.sections["Parameters"], False):
                for n in name.split(","):
                    listed.add(n.strip().lstrip("*"))
            for n in sorted(names - listed):
                problems.append(f"{label}: parameter {n!r} not documented")
            for n in sorted(listed - names):
                problems.append(f"{label}: documents {n!r}, which is not a parameter")
        if "Returns" not in parsed.sections and not _returns_none(func):
            problems.append(f"{label}: no Returns section")

    for e in public_entries():
        obj = e.obj
        if inspect.isfunction(obj):
            check_callable(e.name, obj, drop_first=False)
            continue
        if not (obj.__doc__ and obj.__doc__.strip()):
            problems.append(f"{e.name}: no docstring")
        if dataclasses.is_dataclass(obj):
            parsed = parse_docstring(obj.__doc__)
            public = [f.name for f in dataclasses.fields(obj) if not f.name.startswith("_")]
            listed = set()
            for name, _, _ in parse_entries(parsed.sections.get("Attributes", []), False):
                listed.update(n.strip() for n in name.split(","))
            missing = [n for n in public if n not in listed]
            if missing:
                problems.append(f"{e.name}: fields not in Attributes: {', '.join(missing)}")
        for name, kind, func in class_members(obj):
            label = f"{e.name}.{name}"
            if kind == "property":
                if not (func.__doc__ and func.__doc__.strip()):
                    problems.append(f"{label}: no docstring")
            else:
                check_callable(label, func, drop_first=(kind != "staticmethod"))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/api.md differs from the generated text")
    args = parser.parse_args(argv)
    text = generate()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    if args.check:
        if current != text:
            print(f"docs/api.md is out of date; run: {COMMAND}", file=sys.stderr)
            return 1
        print("docs/api.md is up to date")
        return 0
    if current != text:
        OUTPUT.write_text(text, encoding="utf-8")
        print("wrote docs/api.md")
    else:
        print("docs/api.md unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
