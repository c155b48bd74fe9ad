"""``results.json``: the whole run as data, for scripts, dashboards and later comparison.

Why: the console table and the HTML are for people; a program that checks a
reproduction (CI, a meta-analysis, a second run) needs the raw numbers, not
their rounded display. The file holds the comparison (every printed part of
every card number: published, reproduced, verdict, the rule that gave it, any
changed conclusion — those listed first in ``changed_conclusions``), the plan's
values, the analyses skipped, the exclusions and the run's metadata. Missing
values are ``null`` (JSON has no NaN); the file is plain UTF-8 JSON, stable key
order. :func:`check_json` is the document ``failpattern check --json`` prints.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

__all__ = ["CHECK_RECORD_KEYS", "SCHEMA_VERSION", "check_json", "results_dict", "results_json"]

#: Bumped when a key is renamed or removed (2: one row per printed part, verdicts at printed precision).
SCHEMA_VERSION = 2
#: Keys of each judged row in :func:`check_json`.
CHECK_RECORD_KEYS = ("id", "part", "kind", "published", "printed", "reproduced", "reproduced_as_printed", "verdict",
                     "rule", "changed_conclusion", "baseline", "baseline_note", "note")


def _clean(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, (tuple, list)):
        return [_clean(x) for x in v]
    return v


def _records(frame: pd.DataFrame | None) -> list[dict] | None:
    if frame is None:
        return None
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def results_dict(plan_result, comparison, metadata: dict, figures=()) -> dict:
    """The content of ``results.json`` as a dict.

    Parameters
    ----------
    plan_result : PlanResult
    comparison : pandas.DataFrame or None
        From :func:`~failpattern.study.compare.compare`; None for an analysis
        without a study card.
    metadata : dict
        Version, cohort, seed, card, profile, ... (copied as is).
    figures : sequence of dict
        ``name``, ``title``, ``files``, ``reason``.

    Returns
    -------
    dict
        Keys ``schema_version``, ``metadata``, ``summary`` (counts by verdict, or
        null), ``summary_by_kind`` (counts by kind of number and verdict, or null),
        ``changed_conclusions`` (records of the rows whose reproduced value changes
        the paper's conclusion, or null), ``comparison`` (records of the comparison
        table, or null), ``values``, ``skipped``, ``exclusions``, ``methods_audit``
        (one record per audited comparison of Fig. 1b-d: naive and time-dependent
        results, landmarks, ``holds``, ``conclusion``), ``figures``.
    """
    summary = by_kind = changed_rows = None
    if comparison is not None:
        from failpattern.study.compare import changed, summarize, summarize_by_kind

        summary = {r.verdict: int(r.n) for r in summarize(comparison).itertuples()}
        by_kind = _records(summarize_by_kind(comparison))
        changed_rows = _records(changed(comparison))
    return {
        "schema_version": SCHEMA_VERSION,
        "metadata": {k: _clean(v) for k, v in metadata.items()},
        "summary": summary,
        "summary_by_kind": by_kind,
        "changed_conclusions": changed_rows,
        "comparison": _records(comparison),
        "values": _records(plan_result.values),
        "skipped": _records(plan_result.skipped),
        "exclusions": _records(plan_result.exclusions_frame()),
        "methods_audit": _audit_records(plan_result.audit),
        "figures": [{k: _clean(f.get(k)) for k in ("name", "title", "files", "reason")} for f in figures],
    }


def _audit_records(audit) -> list[dict]:
    """The methods audit as JSON records (NaN as null)."""
    out = []
    for a in audit.comparisons:
        out.append({"comparison": a.comparison, "figure": a.figure, "endpoint": a.endpoint, "treatment": a.treatment,
                    "p_id": a.p_id, "n": a.n, "n_treated": a.n_treated, "n_timed": a.n_timed,
                    "naive": {k: _clean(v) for k, v in a.naive.items()},
                    "time_dependent": {k: _clean(v) for k, v in a.time_dependent.items()},
                    "landmarks": _records(a.landmarks), "holds": a.holds, "conclusion": a.conclusion})
    return out


def results_json(plan_result, comparison, metadata: dict, figures=()) -> str:
    """:func:`results_dict` as indented JSON text (no NaN, UTF-8 characters kept)."""
    return json.dumps(results_dict(plan_result, comparison, metadata, figures), indent=1, ensure_ascii=False,
                      allow_nan=False) + "\n"


def check_json(check, *, cohort: str, patients: int, study: str) -> str:
    """The document ``failpattern check --json`` prints.

    Parameters
    ----------
    check : failpattern.study.baseline.BaselineCheck
        The comparison set against its baseline.
    cohort : str
        The cohort's label.
    patients : int
        Its size.
    study : str
        The study card's name.

    Returns
    -------
    str
        Indented JSON: ``schema_version``, ``cohort``, ``patients``, ``study``,
        ``profile``, ``baseline`` (its source, or null), ``passed`` (no
        difference outside the baseline), ``summary`` (by verdict),
        ``summary_by_kind``, ``changed_conclusions`` and ``failing`` (records of
        those rows), ``resolved`` (baseline entries that no longer differ) and
        ``rows``: one record per judged row with :data:`CHECK_RECORD_KEYS`.
    """
    from failpattern.study.compare import changed, summarize, summarize_by_kind

    frame = check.comparison
    rows = _records(frame[[c for c in CHECK_RECORD_KEYS if c in frame.columns]])
    keyed = {(r["id"], r["part"]): r for r in rows}
    doc = {
        "schema_version": SCHEMA_VERSION,
        "cohort": cohort,
        "patients": int(patients),
        "study": study,
        "profile": frame.attrs.get("profile"),
        "baseline": check.source or None,
        "passed": bool(check.failing.empty),
        "summary": {r.verdict: int(r.n) for r in summarize(frame).itertuples()},
        "summary_by_kind": _records(summarize_by_kind(frame)),
        "changed_conclusions": [keyed[k] for k in zip(changed(frame)["id"], changed(frame)["part"])],
        "failing": [keyed[k] for k in zip(check.failing["id"], check.failing["part"])],
        "resolved": _records(check.resolved),
        "rows": rows,
    }
    return json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
