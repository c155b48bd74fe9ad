"""Parsing and validating a study-card YAML file into a :class:`~failpattern.study.card.StudyCard`.

Why a module of its own: the validation rules (every field of every number,
population and check, each problem collected with its YAML line) are most of
the code of the card, and they read best apart from the card's data model in
:mod:`failpattern.study.card`.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from failpattern.study.card import (
    _CHECK_FIELDS, _CONTINGENCY, _ID, _NUMBER_FIELDS, _NUMERIC_FIELDS, _POP_FIELDS, _REQUIRED,
    _TEXT_FIELDS, _TOP, CONVENTIONS, METHODS, RELATIONS, SCHEMA, UNITS, CardNumber, CardProblem,
    Check, Population, StudyCard, StudyCardError,
)


class _Parser:
    """Builds a StudyCard from YAML text, collecting every problem before raising."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.text = text
        self.problems: list[CardProblem] = []
        self.known: set[str] = set()  # every id written in the card, valid or not

    def add(self, node, id_, fld, value, rule):
        line = node.start_mark.line + 1 if node is not None else None
        self.problems.append(CardProblem(self.file, line, id_, fld, value, rule))

    # ------------------------------------------------------------- YAML helpers
    def _mapping(self, node, what, id_=None) -> dict[str, tuple[Any, Any]] | None:
        """key -> (key node, value node) for a mapping node; reports duplicate keys."""
        if not isinstance(node, yaml.MappingNode):
            self.add(node, id_, None, None, f"{what} must be a mapping")
            return None
        out: dict[str, tuple[Any, Any]] = {}
        if id_ is None:
            id_ = next((v.value for k, v in node.value if k.value == "id" and isinstance(v, yaml.ScalarNode)), None)
        for k, v in node.value:
            key = k.value
            if key in out:
                shown = v.value if isinstance(v, yaml.ScalarNode) else None
                self.add(k, id_, key, shown, f"duplicate field in {what}; the YAML would silently keep the last one")
            out[key] = (k, v)
        return out

    def _py(self, node):
        return self.loader.construct_object(node, deep=True)

    # ------------------------------------------------------------- top level
    def card(self, path: Path) -> StudyCard:
        self.loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(self.text)
        try:
            root = self.loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            self.problems.append(CardProblem(self.file, line, None, None, None,
                                             f"not valid YAML: {getattr(exc, 'problem', exc)}"))
            raise StudyCardError(self.file, self.problems) from None
        if root is None:
            raise StudyCardError(self.file, [CardProblem(self.file, None, None, None, None, "the file is empty")])
        top = self._mapping(root, "the card")
        if top is None:
            raise StudyCardError(self.file, self.problems)
        for key, (k, _) in top.items():
            if key not in _TOP:
                self.add(k, None, key, None, f"unknown top-level key; allowed: {', '.join(_TOP)}")
        schema = self._py(top["schema"][1]) if "schema" in top else None
        if schema != SCHEMA:
            self.add(top["schema"][1] if "schema" in top else root, None, "schema", schema,
                     f"the card must declare schema: {SCHEMA}")
        study = self._study(top.get("study"), root)
        analyses = self._analyses(top.get("analyses"), root)
        pops, pop_nodes = self._populations(top.get("populations"), root)
        raw = self._numbers(top, root)
        records = self._records(raw, analyses, pops, study)
        self._check_populations(pops, pop_nodes, records)
        checks = self._checks(top.get("checks"), records, pops)
        if self.problems:
            self.problems.sort(key=lambda p: (p.line or 0))
            raise StudyCardError(self.file, self.problems)
        return StudyCard(name=str(study.get("name")), path=path, study=MappingProxyType(study),
                         analyses=MappingProxyType(analyses), populations=MappingProxyType(pops),
                         checks=tuple(checks), _records=MappingProxyType(records))

    def _study(self, entry, root) -> dict:
        if entry is None:
            self.add(root, None, "study", None, "missing the 'study' section (name, citation, n)")
            return {}
        m = self._mapping(entry[1], "study")
        if m is None:
            return {}
        study = {k: self._py(v) for k, (_, v) in m.items()}
        for key, typ in (("name", str), ("citation", str), ("n", int)):
            if key not in study:
                self.add(entry[1], "study", key, None, "required field missing")
            elif not isinstance(study[key], typ) or isinstance(study[key], bool):
                self.add(m[key][1], "study", key, study[key], f"must be {typ.__name__}")
        sw = study.get("software", {})
        if not isinstance(sw, dict):
            self.add(m["software"][1], "study", "software", sw, "must map a convention name to its description")
        return study

    def _analyses(self, entry, root) -> dict[str, str]:
        if entry is None:
            self.add(root, None, "analyses", None, "missing the 'analyses' section (name: description)")
            return {}
        m = self._mapping(entry[1], "analyses") or {}
        out = {}
        for name, (k, v) in m.items():
            value = self._py(v)
            if not isinstance(value, str):
                self.add(v, name, "analyses", value, "an analysis maps its name to a description (text)")
            out[name] = value if isinstance(value, str) else ""
        return out

    def _populations(self, entry, root):
        pops: dict[str, Population] = {}
        nodes = {}
        if entry is None:
            self.add(root, None, "populations", None, "missing the 'populations' section")
            return pops, nodes
        m = self._mapping(entry[1], "populations") or {}
        for name, (k, v) in m.items():
            pm = self._mapping(v, f"population '{name}'", name)
            if pm is None:
                continue
            vals = {f: self._py(n) for f, (_, n) in pm.items()}
            for f, (kn, _) in pm.items():
                if f not in _POP_FIELDS:
                    self.add(kn, name, f, vals[f], f"unknown population field; allowed: {', '.join(_POP_FIELDS)}")
            n = vals.get("n", "missing")
            if n == "missing":
                self.add(v, name, "n", None, "population size n is required (null when unknown)")
                n = None
            elif n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
                self.add(pm["n"][1], name, "n", n, "population size must be a non-negative integer or null")
                n = None
            pops[name] = Population(name, n, str(vals.get("description", "")), vals.get("count_id"),
                                    vals.get("parent"), vals.get("notes"))
            nodes[name] = (v, pm)
        for name, p in pops.items():
            if p.parent is not None and p.parent not in pops:
                self.add(nodes[name][1]["parent"][1], name, "parent", p.parent, "unknown population")
        return pops, nodes

    def _numbers(self, top, root) -> list[tuple[Any, dict, str | None]]:
        """(node, {field: (key node, value node)}, section title) per number, defaults merged."""
        out = []
        if "sections" not in top and "numbers" not in top:
            self.add(root, None, "numbers", None, "the card has neither 'sections' nor 'numbers'")
        if "numbers" in top:
            seq = top["numbers"][1]
            if not isinstance(seq, yaml.SequenceNode):
                self.add(seq, None, "numbers", None, "must be a list of numbers")
            else:
                out += [(n, self._mapping(n, "a number"), None) for n in seq.value]
        if "sections" in top:
            seq = top["sections"][1]
            if not isinstance(seq, yaml.SequenceNode):
                self.add(seq, None, "sections", None, "must be a list of sections")
                return out
            for sec in seq.value:
                sm = self._mapping(sec, "a section")
                if sm is None:
                    continue
                for key, (kn, _) in sm.items():
                    if key not in ("title", "defaults", "numbers"):
                        self.add(kn, None, key, None, "unknown section field; allowed: title, defaults, numbers")
                title = self._py(sm["title"][1]) if "title" in sm else None
                defaults = {}
                if "defaults" in sm:
                    defaults = self._mapping(sm["defaults"][1], "section defaults") or {}
                    for key in ("id", "value"):
                        if key in defaults:
                            self.add(defaults[key][0], None, key, None, "cannot be a section default")
                if "numbers" not in sm or not isinstance(sm["numbers"][1], yaml.SequenceNode):
                    self.add(sec, None, "numbers", None, f"section {title!r} needs a list of numbers")
                    continue
                for n in sm["numbers"][1].value:
                    own = self._mapping(n, "a number")
                    if own is not None:
                        out.append((n, {**defaults, **own}, title))
        return [o for o in out if o[1] is not None]

    # ------------------------------------------------------------- numbers
    def _records(self, raw, analyses, pops, study) -> dict[str, CardNumber]:
        records: dict[str, CardNumber] = {}
        first_line: dict[str, int] = {}
        pending = []
        software = study.get("software") if isinstance(study.get("software"), dict) else {}
        for node, m, title in raw:
            rec = self._number(node, m, title, analyses, pops, software, first_line)
            if rec is not None:
                records[rec.id] = rec
                pending.append((rec, m))
        for rec, m in pending:
            self._references(rec, m, records, pops)
        return records

    def _number(self, node, m, title, analyses, pops, software, first_line) -> CardNumber | None:
        """Validate one number (defaults merged); the record, or None after reporting its problems."""
        vals = {f: self._py(v) for f, (_, v) in m.items()}
        id_ = vals.get("id")
        shown = id_ if isinstance(id_, str) else None
        bad = False

        def err(fld, rule, value=None, _m=m, _node=node, _shown=shown):
            nonlocal bad
            bad = True
            self.add(_m[fld][1] if fld in _m else _node, _shown, fld, value, rule)

        for f in m:
            if f not in _NUMBER_FIELDS:
                err(f, "unknown field; see docs/study-cards.md for the schema", vals[f])
        for f in _REQUIRED:
            if f not in vals or vals[f] is None:
                err(f, "required field missing")
        if shown is not None:
            self.known.add(id_)
            if not _ID.match(id_):
                err("id", "ids are lower-case words of [a-z0-9_] joined by dots", id_)
            elif id_ in first_line:
                err("id", f"duplicate id (first defined on line {first_line[id_]})", id_)
            else:
                first_line[id_] = node.start_mark.line + 1
        elif "id" in vals:
            err("id", "must be text", id_)
        for f in _NUMERIC_FIELDS:
            v = vals.get(f)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                err(f, "must be a finite number", v)
                vals[f] = None
        for f in _TEXT_FIELDS:
            if vals.get(f) is not None and not isinstance(vals[f], str):
                err(f, "must be text", vals[f])
                vals[f] = None
        method = vals.get("method")
        spec = METHODS.get(method) if isinstance(method, str) else None
        if method is not None and spec is None:
            err("method", f"unknown method; allowed: {', '.join(METHODS)}", method)
        if vals.get("analysis") is not None and vals["analysis"] not in analyses:
            err("analysis", "unknown analysis (declare it under 'analyses')", vals["analysis"])
        if vals.get("population") is not None and vals["population"] not in pops:
            err("population", "unknown population (declare it under 'populations')", vals["population"])
        conv = vals.get("convention") or "none"
        if conv not in CONVENTIONS:
            err("convention", f"unknown convention; allowed: {', '.join(CONVENTIONS)}", conv)
        elif conv != "none" and conv not in software:
            err("convention", "convention not declared under study.software", conv)
        rel = vals.get("relation") or "eq"
        if rel not in RELATIONS:
            err("relation", f"unknown relation; allowed: {', '.join(RELATIONS)}", rel)
        if vals.get("unit") is not None and vals["unit"] not in UNITS:
            err("unit", f"unknown unit; allowed: {', '.join(UNITS)}", vals["unit"])
        value = vals.get("value")
        for lo, hi, what in (("ci_lower", "ci_upper", "confidence interval"), ("range_lower", "range_upper", "range")):
            a, b = vals.get(lo), vals.get(hi)
            if (lo in m) != (hi in m):
                err(hi if lo in m else lo, f"a {what} needs both {lo} and {hi}")
            elif a is not None and b is not None:
                if a > b:
                    err(lo, f"{lo} {a} is greater than {hi} {b}", a)
                elif isinstance(value, (int, float)) and rel == "eq" and not a <= value <= b:
                    err("value", f"value lies outside its {what} [{a}, {b}]", value)
        level = vals.get("ci_level")
        if level is not None and (isinstance(level, bool) or not isinstance(level, float) or not 0 < level < 1):
            err("ci_level", "must be a fraction between 0 and 1 (e.g. 0.95)", level)
        tol = vals.get("tolerance")
        if tol is not None and tol < 0:
            err("tolerance", "tolerance must be >= 0", tol)
        decimals = vals.get("decimals")
        if decimals is None:
            decimals = _printed_decimals(m["value"][1]) if "value" in m else 0
        elif isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
            err("decimals", "must be a non-negative integer", decimals)
            decimals = 0
        if spec is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            if spec.kind == "count" and (value < 0 or value != int(value)):
                err("value", "a count must be a non-negative integer", value)
            if spec.kind == "p" and not 0 <= value <= 1:
                err("value", "a p-value must lie in [0, 1]", value)
            if spec.kind == "percent" and not 0 <= value <= 100:
                err("value", "a percentage must lie in [0, 100]", value)
            if spec.kind == "ratio" and value <= 0:
                err("value", "a ratio must be positive", value)
        also = vals.get("also_at", [])
        if not isinstance(also, list) or not all(isinstance(a, str) for a in also):
            err("also_at", "must be a list of locations (text)", also)
            also = []
        contra = vals.get("contradicted_by", [])
        parts_contra: dict = {}
        if isinstance(contra, dict):
            parts_contra, contra = contra, contra.get("value", [])
            for part in parts_contra:
                if part not in _PARTS:
                    err("contradicted_by", f"unknown part {part!r}; allowed: {', '.join(_PARTS)}", part)
                elif part != "value" and not _has_part(vals, part):
                    err("contradicted_by", f"the number prints no {part}", part)
        if "contradicted_by" not in vals:
            pass
        elif not all(isinstance(ids, list) and ids and all(isinstance(a, str) for a in ids)
                     for ids in (parts_contra.values() if parts_contra else [contra])):
            err("contradicted_by", "must be a non-empty list of number ids, or a mapping from parts (value, "
                                   "ci_lower, ci_upper, range_min, range_max) to such lists", vals["contradicted_by"])
            contra, parts_contra = [], {}
        elif not vals.get("inconsistency"):
            err("contradicted_by", "needs an inconsistency saying how the numbers contradict each other",
                vals["contradicted_by"])
        num = vals.get("numerator")
        if num is not None:
            num = [num] if isinstance(num, str) else num
            if not isinstance(num, list) or not all(isinstance(x, str) for x in num):
                err("numerator", "must be a number id or a list of number ids", vals["numerator"])
                num = None
        den = vals.get("denominator")
        if den is not None and (isinstance(den, bool) or not isinstance(den, (str, int))
                                or (isinstance(den, int) and den <= 0)):
            err("denominator", "must be a population name, a count id or a positive integer", den)
            den = None
        if num is not None and method not in ("proportion", "rate"):
            err("numerator", "only proportions and rates have a numerator", vals["numerator"])
        table = vals.get("table")
        if table is not None and not _is_table(table):
            err("table", "must be a list of at least two equally long rows (>= 2) of count ids or integers", table)
            table = None
        events, totals = vals.get("events"), vals.get("totals")
        if (events is None) != (totals is None):
            err("events" if events is None else "totals", "events and totals go together")
        elif events is not None:
            if (not isinstance(events, list) or not isinstance(totals, list) or len(events) != len(totals)
                    or len(events) < 2):
                err("events", "events and totals must be lists of the same length (>= 2)", events)
                events = totals = None
        if (table is not None or events is not None) and method not in _CONTINGENCY:
            err("table" if table is not None else "events",
                f"a contingency table only goes with methods {', '.join(_CONTINGENCY)}", method)
        if table is not None and events is not None:
            err("table", "give either table or events/totals, not both", table)
        if bad or shown is None:
            return None
        tol = tol if tol is not None else (spec.tolerance if spec else None)
        return CardNumber(
            id=id_, value=value, location=vals["location"], analysis=vals["analysis"],
            population=vals["population"], method=method, relation=rel,
            ci_lower=vals.get("ci_lower"), ci_upper=vals.get("ci_upper"),
            ci_level=level if level is not None else (0.95 if vals.get("ci_lower") is not None else None),
            ci_decimals=(_printed_decimals(m["ci_lower"][1]), _printed_decimals(m["ci_upper"][1]))
            if vals.get("ci_lower") is not None else None,
            range_lower=vals.get("range_lower"), range_upper=vals.get("range_upper"),
            range_decimals=(_printed_decimals(m["range_lower"][1]), _printed_decimals(m["range_upper"][1]))
            if vals.get("range_lower") is not None else None, at=vals.get("at"),
            unit=vals.get("unit"), numerator=tuple(num) if num else None, denominator=den,
            table=tuple(tuple(r) for r in table) if table else None,
            events=tuple(events) if events else None, totals=tuple(totals) if totals else None,
            estimate=vals.get("estimate"), endpoint=vals.get("endpoint"), grouping=vals.get("grouping"),
            also_at=tuple(also), convention=conv, decimals=decimals, tolerance=tol,
            inconsistency=vals.get("inconsistency"), contradicted_by=tuple(contra),
            parts_contradicted_by=tuple((k, tuple(v)) for k, v in parts_contra.items() if k != "value"),
            notes=vals.get("notes"),
            section=title,
            line=node.start_mark.line + 1)

    def _references(self, rec: CardNumber, m, records, pops):
        def ref_err(fld, value, rule):
            self.add(m[fld][1] if fld in m else None, rec.id, fld, value, rule)

        def count_ref(fld, ref):
            if isinstance(ref, int) and not isinstance(ref, bool) and ref >= 0:
                return
            if ref not in records:
                if ref not in self.known:  # an invalid number is reported once, where it is defined
                    ref_err(fld, ref, "unknown number id")
            elif records[ref].method != "count":
                ref_err(fld, ref, f"must refer to a count, not a {records[ref].method}")

        for ref in rec.numerator or ():
            count_ref("numerator", ref)
        own = {("value", r) for r in rec.contradicted_by} | {(p, r) for p, refs in rec.parts_contradicted_by
                                                              for r in refs}
        for part, ref in sorted(own):
            if ref == rec.id and part == "value":
                ref_err("contradicted_by", ref, "a number cannot contradict itself")
            elif ref not in records and ref not in self.known:
                ref_err("contradicted_by", ref, "unknown number id")
        if isinstance(rec.denominator, str) and rec.denominator not in pops and rec.denominator not in records:
            ref_err("denominator", rec.denominator, "unknown population or number id")
        if rec.method in ("proportion", "rate"):
            den = rec.denominator if rec.denominator is not None else rec.population
            if isinstance(den, str) and den in pops and pops[den].n is None:
                ref_err("population", den, "the denominator population has no n")
        for row in rec.table or ():
            for ref in row:
                count_ref("table", ref)
        for ref in rec.events or ():
            count_ref("events", ref)
        for ref in rec.totals or ():
            if isinstance(ref, str) and ref not in pops and ref not in records:
                ref_err("totals", ref, "unknown population or number id")
        if rec.estimate is not None:
            est = records.get(rec.estimate)
            if est is None:
                ref_err("estimate", rec.estimate, "unknown number id")
            elif METHODS[est.method].kind != "ratio" or est.ci_lower is None:
                ref_err("estimate", rec.estimate, "must refer to a ratio (cox_hr, finegray_shr) with a CI")

    def _check_populations(self, pops, nodes, records):
        for name, p in pops.items():
            if p.count_id is None:
                continue
            node = nodes[name][1]["count_id"][1]
            rec = records.get(p.count_id)
            if rec is None:
                self.add(node, name, "count_id", p.count_id, "unknown number id")
            elif rec.value != p.n:
                self.add(node, name, "count_id", p.count_id,
                         f"population n = {p.n} but the number it cites has value {rec.value:g}")

    def _checks(self, entry, records, pops) -> list[Check]:
        out = []
        if entry is None:
            return out
        seq = entry[1]
        if not isinstance(seq, yaml.SequenceNode):
            self.add(seq, None, "checks", None, "must be a list of checks")
            return out
        seen = set()
        for node in seq.value:
            m = self._mapping(node, "a check")
            if m is None:
                continue
            vals = {f: self._py(v) for f, (_, v) in m.items()}
            cid = vals.get("id")
            bad = False
            for f, (kn, _) in m.items():
                if f not in _CHECK_FIELDS:
                    self.add(kn, cid, f, vals[f], f"unknown check field; allowed: {', '.join(_CHECK_FIELDS)}")
                    bad = True
            if not isinstance(cid, str) or not _ID.match(cid):
                self.add(node, None, "id", cid, "a check needs an id of [a-z0-9_] words joined by dots")
                continue
            if cid in seen or cid in records:
                self.add(node, cid, "id", cid, "duplicate id")
                bad = True
            seen.add(cid)
            terms = vals.get("terms")
            if not isinstance(terms, list) or not terms:
                self.add(m["terms"][1] if "terms" in m else node, cid, "terms", terms, "must be a non-empty list")
                continue
            if "total" not in vals:
                self.add(node, cid, "total", None, "required field missing")
                continue
            for fld, ref in [("terms", t) for t in terms] + [("total", vals["total"])]:
                if isinstance(ref, int) and not isinstance(ref, bool):
                    continue
                if not isinstance(ref, str) or (ref not in records and ref not in pops):
                    if ref not in self.known:
                        self.add(m[fld][1], cid, fld, ref, "unknown number id or population")
                    bad = True
                elif ref in pops and pops[ref].n is None:
                    self.add(m[fld][1], cid, fld, ref, "population has no n")
                    bad = True
            if not bad:
                out.append(Check(cid, tuple(terms), vals["total"], vals.get("inconsistency"), vals.get("notes"),
                                 node.start_mark.line + 1))
        return out


_PARTS = ("value", "ci_lower", "ci_upper", "range_min", "range_max")
_PART_FIELD = {"ci_lower": "ci_lower", "ci_upper": "ci_upper", "range_min": "range_lower", "range_max": "range_upper"}


def _has_part(vals: dict, part: str) -> bool:
    """Does the number print ``part`` (a confidence limit or a range end)?"""
    return vals.get(_PART_FIELD[part]) is not None


def _printed_decimals(node) -> int:
    """Decimals of a number as written in the YAML (``22.0`` -> 1, ``0.010`` -> 3, ``93`` -> 0)."""
    text = node.value if isinstance(node, yaml.ScalarNode) else ""
    if "." not in text or "e" in text.lower():
        return 0
    return len(text.split(".", 1)[1])


def _is_table(table) -> bool:
    if not isinstance(table, list) or len(table) < 2:
        return False
    if not all(isinstance(r, list) and len(r) >= 2 for r in table):
        return False
    if len({len(r) for r in table}) != 1:
        return False
    return all(isinstance(c, str) or (isinstance(c, int) and not isinstance(c, bool) and c >= 0)
               for r in table for c in r)
