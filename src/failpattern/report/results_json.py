"""``results.json``: the whole run as data, for scripts, dashboards and later comparison.

Why: the console table and the HTML are for people; a program that checks a
reproduction (CI, a meta-analysis, a second run) needs the raw numbers, not
their rounded display. The file holds the comparison (every card number,
published, reproduced, tolerance, verdict), the plan's values, the analyses
skipped, the exclusions and the run's metadata. Missing values are ``null``
(JSON has no NaN); the file is plain UTF-8 JSON, stable key order.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

__all__ = ["SCHEMA_VERSION", "results_dict", "results_json"]

#: Bumped when a key is renamed or removed.
SCHEMA_VERSION = 1


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
        null), ``comparison`` (records of the comparison table, or null),
        ``values``, ``skipped``, ``exclusions``, ``figures``.
    """
    summary = None
    if comparison is not None:
        from failpattern.study.compare import summarize

        summary = {r.verdict: int(r.n) for r in summarize(comparison).itertuples()}
    return {
        "schema_version": SCHEMA_VERSION,
        "metadata": {k: _clean(v) for k, v in metadata.items()},
        "summary": summary,
        "comparison": _records(comparison),
        "values": _records(plan_result.values),
        "skipped": _records(plan_result.skipped),
        "exclusions": _records(plan_result.exclusions_frame()),
        "figures": [{k: _clean(f.get(k)) for k in ("name", "title", "files", "reason")} for f in figures],
    }


def results_json(plan_result, comparison, metadata: dict, figures=()) -> str:
    """:func:`results_dict` as indented JSON text (no NaN, UTF-8 characters kept)."""
    return json.dumps(results_dict(plan_result, comparison, metadata, figures), indent=1, ensure_ascii=False,
                      allow_nan=False) + "\n"
