"""Accepted differences: a regression check that fails only on what is new.

Why this module exists: judged at the paper's printed precision, a cohort can
differ from the paper in many places for known reasons (a simulated cohort
that does not reach every printed digit, a test the paper does not name). A
pipeline that re-runs ``failpattern check`` should fail when a *new* difference
appears, not on every known one, and the known ones must stay declared, each
with its reason, rather than hidden by a looser rule. A baseline is that
declaration: a CSV file, one row per accepted difference.

Format (UTF-8 CSV; ``#`` lines at the top are comments)::

    # failpattern baseline: accepted differences from the published numbers
    id,part,published,reproduced,verdict,reason
    pfs1.median.all,ci_lower,9.8,3.0,differs,"the canonical cohort's plateau ..."

``published`` and ``reproduced`` are as printed (the reproduced value rounded
like the published one; empty when it could not be computed). A row of a
comparison that *differs* is accepted when the baseline has its ``id`` and
``part`` with the same ``reproduced`` text; if the reproduced value has
changed since, the difference is new again (a regression check notices drift
even among known differences). Baseline rows whose number now matches, or is
no longer judged, are reported as resolved, not as failures.

:func:`write_baseline` writes the differences of a comparison (the reasons
given, or a placeholder to edit); :func:`load_baseline` reads and validates a
file, naming the line, column, value and rule of every problem;
:func:`apply_baseline` sets a comparison against it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import pandas as pd

from failpattern.errors import InputError
from failpattern.study.judge import FAILING as _FAILING
from failpattern.study.judge import PARTS

__all__ = ["BASELINE_COLUMNS", "BASELINE_HEADER", "Baseline", "BaselineCheck", "apply_baseline", "baseline_rows",
           "load_baseline", "write_baseline"]

#: First line of every baseline file failpattern writes (and the test of one it may replace).
BASELINE_HEADER = "# failpattern baseline: accepted differences from the published numbers"
#: Columns of a baseline file.
BASELINE_COLUMNS = ("id", "part", "published", "reproduced", "verdict", "reason")
#: The reason written when none is given.
PLACEHOLDER = "accepted without a reason: say why"


@dataclass(frozen=True)
class Baseline:
    """Accepted differences, keyed by ``(id, part)``.

    Attributes
    ----------
    entries : Mapping of (str, str) to dict
        Each row of the file: ``published``, ``reproduced``, ``verdict``, ``reason``.
    source : str
        Where it was read from.
    """

    entries: Mapping[tuple[str, str], dict]
    source: str

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class BaselineCheck:
    """A comparison set against a baseline.

    Attributes
    ----------
    comparison : pandas.DataFrame
        The comparison (``attrs["baseline"]``: the baseline's source, ``""`` for none)
        with a ``baseline`` column: ``"accepted"`` for a difference
        the baseline declares, ``"new"`` for one it does not, ``"changed"`` for one
        whose reproduced value moved since (``baseline_note`` says from what),
        ``""`` for rows that do not differ.
    resolved : pandas.DataFrame
        Baseline rows that no longer differ (``id``, ``part``, ``reason``, ``now``:
        the verdict today, or "not judged").
    source : str
        The baseline's source.
    """

    comparison: pd.DataFrame
    resolved: pd.DataFrame
    source: str

    @property
    def failing(self) -> pd.DataFrame:
        """Differences the baseline does not accept (new or changed)."""
        return self.comparison[self.comparison["baseline"].isin(("new", "changed"))]

    @property
    def n_accepted(self) -> int:
        """How many differences the baseline accepts."""
        return int((self.comparison["baseline"] == "accepted").sum())


def baseline_rows(comparison: pd.DataFrame, reasons: Mapping[tuple[str, str], str] | None = None,
                  reason: str = PLACEHOLDER) -> pd.DataFrame:
    """The rows of a baseline accepting every difference of ``comparison``.

    Parameters
    ----------
    comparison : pandas.DataFrame
        From :func:`~failpattern.study.compare.compare`.
    reasons : Mapping of (id, part) to str, optional
        A reason per difference; others get ``reason``.
    reason : str
        The reason of the others.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BASELINE_COLUMNS`, in the comparison's order.
    """
    reasons = reasons or {}
    d = comparison[comparison["verdict"].isin(_FAILING)]
    return pd.DataFrame({"id": d["id"].to_numpy(), "part": d["part"].to_numpy(),
                         "published": d["printed"].to_numpy(), "reproduced": d["reproduced_as_printed"].to_numpy(),
                         "verdict": d["verdict"].to_numpy(),
                         "reason": [reasons.get((i, p), reason) for i, p in zip(d["id"], d["part"])]},
                        columns=list(BASELINE_COLUMNS))


def _text(rows: pd.DataFrame, comment: str | None) -> str:
    buf = io.StringIO()
    buf.write(BASELINE_HEADER + "\n")
    for line in (comment or "").splitlines():
        buf.write(f"# {line}".rstrip() + "\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(BASELINE_COLUMNS)
    for r in rows.itertuples(index=False):
        w.writerow([getattr(r, c) for c in BASELINE_COLUMNS])
    return buf.getvalue()


def write_baseline(comparison: pd.DataFrame, path: str | Path, *, reasons: Mapping[tuple[str, str], str] | None = None,
                   reason: str = PLACEHOLDER, comment: str | None = None) -> int:
    """Write a baseline accepting every difference of ``comparison`` to ``path``, atomically.

    An existing file is replaced only if it is a baseline failpattern wrote (its
    first line is :data:`BASELINE_HEADER`); any other file is refused and left as
    it is.

    Parameters
    ----------
    comparison : pandas.DataFrame
        From :func:`~failpattern.study.compare.compare`.
    path : str or pathlib.Path
        The CSV file to write.
    reasons, reason
        As for :func:`baseline_rows`.
    comment : str, optional
        Lines written as ``#`` comments under the header (cohort, card, profile).

    Returns
    -------
    int
        The number of differences written.

    Raises
    ------
    InputError
        ``path`` is a folder, or a file that is not a failpattern baseline.
    """
    from failpattern.output import write_file_atomic

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; name the baseline file to write")
    if not path.parent.is_dir():
        raise InputError(f"{path}: its folder {path.parent} does not exist")
    if path.exists():
        try:
            with path.open(encoding="utf-8") as fh:
                first = fh.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            first = ""
        if first != BASELINE_HEADER:
            raise InputError(f"{path}: exists and is not a baseline failpattern wrote (its first line is not "
                             f"{BASELINE_HEADER!r}); it was left as it is; choose another file name")
    rows = baseline_rows(comparison, reasons, reason)
    write_file_atomic(path, _text(rows, comment).encode("utf-8"))
    return len(rows)


def load_baseline(path: str | Path) -> Baseline:
    """Read and validate a baseline file.

    Raises
    ------
    InputError
        The file cannot be read, or breaks the format: every problem is named
        with its line, column, value and rule.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such baseline file (write one with failpattern check "
                         "--write-baseline FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a UTF-8 baseline file ({exc})") from None
    lines = text.splitlines()
    skip = 0
    while skip < len(lines) and lines[skip].startswith("#"):
        skip += 1
    reader = csv.reader(lines[skip:])
    header = next(reader, None)
    problems = []
    if header is None or [h.strip() for h in header] != list(BASELINE_COLUMNS):
        raise InputError(f"{path}: line {skip + 1}: the header must be {','.join(BASELINE_COLUMNS)}; "
                         f"got {','.join(header or []) or 'nothing'}")
    entries: dict[tuple[str, str], dict] = {}
    for k, row in enumerate(reader, start=skip + 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(BASELINE_COLUMNS):
            problems.append(f"line {k}: {len(row)} fields, expected {len(BASELINE_COLUMNS)} "
                            f"({','.join(BASELINE_COLUMNS)}); quote a reason that holds a comma")
            continue
        rec = dict(zip(BASELINE_COLUMNS, (c.strip() for c in row)))
        if not rec["id"]:
            problems.append(f"line {k}: column id: empty; every accepted difference names its number")
        if rec["part"] not in PARTS:
            problems.append(f"line {k}: column part: {rec['part']!r} is not one of {', '.join(PARTS)}")
        if not rec["reason"]:
            problems.append(f"line {k}: column reason: empty; say why the difference is accepted")
        key = (rec["id"], rec["part"])
        if key in entries:
            problems.append(f"line {k}: {rec['id']} {rec['part']} is listed twice")
        entries[key] = rec
    if problems:
        shown = problems[:50] + ([f"... and {len(problems) - 50} more"] if len(problems) > 50 else [])
        raise InputError(f"{path}: {len(problems)} problem(s) in the baseline:\n  " + "\n  ".join(shown))
    return Baseline(MappingProxyType(entries), str(path))


def apply_baseline(comparison: pd.DataFrame, baseline: Baseline | None) -> BaselineCheck:
    """Set ``comparison`` against ``baseline`` (None: every difference is new).

    Returns
    -------
    BaselineCheck
    """
    entries = baseline.entries if baseline is not None else {}
    status, notes = [], []
    seen = set()
    for i, part, verdict, now in zip(comparison["id"], comparison["part"], comparison["verdict"],
                                     comparison["reproduced_as_printed"]):
        key = (i, part)
        seen.add(key)
        if verdict not in _FAILING:
            status.append("")
            notes.append("")
        elif key not in entries:
            status.append("new")
            notes.append("")
        elif entries[key]["reproduced"] != (now or ""):
            status.append("changed")
            notes.append(f"the baseline accepts reproduced {entries[key]['reproduced'] or 'not computed'}; "
                         f"now {now or 'not computed'}")
        else:
            status.append("accepted")
            notes.append(entries[key]["reason"])
    out = comparison.assign(baseline=status, baseline_note=notes)
    out.attrs.update(comparison.attrs)
    out.attrs["baseline"] = baseline.source if baseline is not None else ""
    verdicts = dict(zip(zip(comparison["id"], comparison["part"]), comparison["verdict"]))
    resolved = [{"id": i, "part": p, "reason": e["reason"], "now": verdicts.get((i, p), "not judged")}
                for (i, p), e in entries.items() if verdicts.get((i, p)) not in _FAILING]
    return BaselineCheck(out, pd.DataFrame(resolved, columns=["id", "part", "reason", "now"]),
                         baseline.source if baseline is not None else "")
