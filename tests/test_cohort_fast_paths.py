"""The column-wise typing paths give exactly what typing cell by cell gives.

``failpattern.cohort.cells.type_column`` types a native numeric DataFrame column
from its values and mask at once, and a text column by its distinct values
(only when every distinct value passes the fast rules; else the column goes
cell by cell). Here each input is loaded twice: as shipped, and with
``cells._COLUMNWISE`` switched off, which sends every column through the
per-cell path (the reference: each cell converted on its own by the rules).
The typed columns (dtype and every value) or the full problem list (rule,
line, patient, column, value, message, in order) must be identical.

Why a switch and not an all-text copy of the frame: converting the frame to
strings changes the input itself (``1.0`` becomes ``"1.0"``, ``pd.NA``
becomes ``"<NA>"``, a bool becomes ``"True"``), so the two loads would not see
the same cells and could not be expected to agree on values shown in
problems. The switch keeps the input identical and changes only the path.

Inputs: simulated cohorts broken in ways typing must catch: missing spellings
(``NA``, `` na ``, ``.``, ``None``, ``pd.NA``, NaN), mixed-case and near-miss
categories, impossible, ambiguous, out-of-range and non-ISO dates, ``"2.0"``,
``"yes"`` and ``2`` in 0/1 columns, negative and infinite months, bool,
categorical and all-string columns, object columns mixing numbers and text,
numeric patient ids; each also written to CSV (with ragged rows) and read back.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from failpattern.cohort import CohortError, load_cohort
from failpattern.cohort import cells as cells_module
from failpattern.cohort import read as read_module
from failpattern.cohort.problems import ProblemLog, RowContext
from failpattern.cohort.schema import ALL_COLUMNS, column
from failpattern.simulate import simulate

_KIND = {c.name: c.kind for c in ALL_COLUMNS}
_MISSING = ["NA", " na ", ".", "", "  ", "N/A", "null", "None", "nan", None, pd.NA, np.nan]
_DATES = ["2015-02-30", "2015/03/04", "03/04/2015", "2015-3-4", "NaT", "today", "2015-03-04 10:00",
          "1500-01-01", "2300-01-01", "20150304", " 2016-01-05 ", "2015-13-01", 42, 41000.0]
_BINARY = ["2.0", "1.0", "0.0", " 1 ", "yes", "No", "true", "1,0", "-1", "2", 1.0, 0, True, 2]
_MONTHS = ["-1", "-0.5", "inf", "1,5", "3.25", " 7 ", "abc", "1e3", -2.0, float("inf"), 3, "0"]


def _category_variants(col) -> list:
    a = col.allowed[0]
    return [a.upper(), a.lower(), f" {a} ", a.title(), a[:-1], a + "x", "zzz", 7, 2.5]


def _texts(values) -> bool:
    """Whether a string column can hold these cells (text or empty)."""
    return all(v is None or v is pd.NA or isinstance(v, str) or (isinstance(v, float) and np.isnan(v))
               for v in values)


def _broken(k: int) -> pd.DataFrame:
    """A simulated cohort with a few columns made wrong in the ways typing must catch."""
    rng = np.random.default_rng(1000 + k)
    f = simulate(seed=int(rng.integers(10_000)))
    n = len(f)
    for _ in range(int(rng.integers(1, 6))):
        name = str(rng.choice(f.columns))
        kind = _KIND[name]
        rows = rng.choice(n, size=int(rng.integers(1, 6)), replace=False)
        how = int(rng.integers(4))
        if kind == "category":
            variants = _category_variants(next(c for c in ALL_COLUMNS if c.name == name)) + _MISSING
        elif kind == "date":
            variants = _DATES + _MISSING
        elif kind == "binary":
            variants = _BINARY + _MISSING
        elif kind in ("months", "number", "count"):
            variants = _MONTHS + _MISSING
        else:  # patient_id
            variants = ["P001", "  P002", 101.0, 101, "101.0", None, "na"]
        picked = [variants[int(i)] for i in rng.integers(len(variants), size=len(rows))]
        if how == 0:  # only missing spellings: the fast path should still take the column
            picked = [_MISSING[int(i)] for i in rng.integers(len(_MISSING), size=len(rows))]
        column = f[name].astype(object)
        for r, v in zip(rows, picked):
            column.iat[int(r)] = v
        f[name] = column
        if how == 3 and kind in ("category", "date", "id"):
            f[name] = f[name].astype("string") if _texts(f[name]) else f[name]
    if k % 7 == 1:  # bool and categorical dtypes
        f["lung_mets"] = f["lung_mets"].fillna(0).astype(bool)
        f["sex"] = f["sex"].astype("category")
    if k % 7 == 2:  # native numbers where the format wants text, and vice versa
        f["patient_id"] = np.arange(100, 100 + n, dtype=float)
        f["os_event"] = f["os_event"].astype("string")
    if k % 7 == 3:
        f["pfs1_months"] = -f["pfs1_months"]
        f["brain_mets"] = f["brain_mets"].astype("Float64") * 2
    if k % 7 == 4:  # everything as text
        f = f.astype("string")
    if k % 7 == 5:
        f["ecog"] = f["ecog"].astype(object).where(f["ecog"].notna(), None)
        f["ecog"] = [v if i % 3 else str(v) for i, v in enumerate(f["ecog"])]
    return f


def _outcome(source):
    """Everything a caller can see of one load: typed columns, or the problems in order."""
    try:
        c = load_cohort(source)
    except CohortError as exc:
        return "error", [(p.rule, p.line, p.patient_id, p.column, p.value, p.message, p.severity)
                         for p in exc.problems]
    except Exception as exc:  # noqa: BLE001 - a crash must at least be the same crash
        return "crash", type(exc).__name__, str(exc)
    return "ok", [_column(name, s) for name, s in c._frame.items()], c.columns_present, c.derived, \
        c.extra_columns, [(p.rule, p.line, p.column, p.value, p.message) for p in c.warnings]


def _column(name, s):
    """A column exactly: dtype, each value's repr, and for a masked array the stored values and
    mask (pandas private fields, read only here), for a categorical its codes."""
    arr = s.array
    stored = None
    if hasattr(arr, "_mask"):
        stored = ([repr(v) for v in arr._data.tolist()], arr._mask.tolist())
    elif isinstance(arr, pd.Categorical):
        stored = (arr.codes.tolist(), list(arr.categories))
    return name, str(s.dtype), type(arr).__name__, [repr(v) for v in s.tolist()], stored


def _both(monkeypatch, source_fn):
    fast = _outcome(source_fn())
    monkeypatch.setattr(cells_module, "_COLUMNWISE", False)
    slow = _outcome(source_fn())
    monkeypatch.setattr(cells_module, "_COLUMNWISE", True)
    return fast, slow


@pytest.mark.parametrize("k", range(60))
def test_frame_fast_paths_match_per_cell(monkeypatch, k):
    frame = _broken(k)
    fast, slow = _both(monkeypatch, frame.copy)
    assert fast == slow


@pytest.mark.parametrize("k", range(0, 60, 3))
def test_csv_fast_paths_match_per_cell(monkeypatch, tmp_path, k):
    path = tmp_path / "cohort.csv"
    text = _broken(k).to_csv(index=False, na_rep="").splitlines()
    if k % 2:  # ragged rows: their cells are skipped (broken, not checked)
        text[3] += ",extra"
        text[5] = text[5].rsplit(",", 2)[0]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    fast, slow = _both(monkeypatch, lambda: path)
    assert fast == slow


def test_simulated_cohorts_load_identically(monkeypatch):
    """The clean cohorts a replicate study loads (the fast paths' target)."""
    for seed in range(8):
        frame = simulate(seed=seed)
        fast, slow = _both(monkeypatch, frame.copy)
        assert fast[0] == "ok" and fast == slow


def test_fast_paths_are_taken_on_simulated_frames(monkeypatch):
    """No column of a clean simulated cohort falls back to the per-cell path."""
    calls = []
    real = cells_module._per_cell
    monkeypatch.setattr(cells_module, "_per_cell", lambda *a: calls.append(a[0].name) or real(*a))
    load_cohort(simulate(seed=4))
    assert calls == []


_CATEGORY_CELLS = (
    ["female", "MALE", " Female ", "NA", None, pd.NA, np.nan, "."],
    ["female", "femal", "male", None],
    ["male", 1, "female", None],  # a number among texts: no "string" column holds it
    ["male", np.str_("female"), "female"],
)


@pytest.mark.parametrize("values, dtype", [(v, d) for v in _CATEGORY_CELLS for d in (object, "string", "category")
                                           if d != "string" or _texts(v)])
def test_one_category_column(monkeypatch, values, dtype):
    frame = simulate(seed=2).head(len(values)).copy()
    column = pd.Series(values, dtype=object)
    if dtype != object:
        column = column.astype(dtype)
    frame["sex"] = column.to_numpy()
    fast, slow = _both(monkeypatch, frame.copy)
    assert fast == slow


@pytest.mark.parametrize("values", [
    ["2015-01-02", " 2015-01-03", "NA", None, pd.NA],
    ["2015-01-02", np.nan, None, float("nan"), pd.NA, "2015-01-02"],
    ["2015-01-02", "2015-02-30", None],
    ["2015-01-02", "NaT", None],
    ["2015-01-02", "today", None],
    ["1500-01-01", "2015-01-02", None],
    ["2015-01-02", pd.Timestamp("2015-01-03"), None],
])
def test_one_date_column(monkeypatch, values):
    frame = simulate(seed=5).head(len(values)).copy()
    frame["diagnosis_date"] = pd.Series(values, dtype=object).to_numpy()
    fast, slow = _both(monkeypatch, frame.copy)
    assert fast == slow


@pytest.mark.parametrize("values,dtype", [
    ([1, 0, None, 2], "Int64"), ([1.0, 0.0, np.nan, 0.5], "float64"), ([True, False, True, False], bool),
    ([1, 0, pd.NA, 1], "boolean"), (["1", "0", "2.0", "1.0"], object), (["1", "0", "yes", None], "string"),
    ([1, "0", "NA", 1.0], object), ([1, 0, 1, -1], "int64"), ([1.0, 0.0, None, 1.0], "Float64"),
])
def test_one_binary_column(monkeypatch, values, dtype):
    frame = simulate(seed=6).head(len(values)).copy()
    frame["lung_mets"] = pd.Series(values, dtype=dtype).to_numpy() if dtype in (object, bool, "int64", "float64") \
        else pd.array(values, dtype=dtype)
    fast, slow = _both(monkeypatch, frame.copy)
    assert fast == slow


@pytest.mark.parametrize("values,dtype", [
    ([1.5, -2.0, np.inf, None], "Float64"), ([3, -1, 4, 5], "Int64"), (["3.5", "-1", "1,5", "x"], object),
    ([2.0, 3.0, np.nan, -0.0], "float64"), ([2, 3, 4, 5], "int64"),
])
def test_one_months_column(monkeypatch, values, dtype):
    frame = simulate(seed=7).head(len(values)).copy()
    frame["os_months"] = pd.Series(values, dtype=dtype).to_numpy() if dtype in (object, "int64", "float64") \
        else pd.array(values, dtype=dtype)
    fast, slow = _both(monkeypatch, frame.copy)
    assert fast == slow


def _typed(frame, skip, as_lists):
    """Every column typed on its own: values, broken cells and the problems it logged."""
    out = []
    for name in frame.columns:
        log = ProblemLog("<test>")
        ctx = RowContext(log, list(range(2, len(frame) + 2)), [None] * len(frame))
        raw = [None if v is pd.NA else v for v in frame[name].astype(object)] if as_lists else frame[name]
        values, broken = cells_module.type_column(column(name), raw, ctx, skip)
        out.append((_column(name, pd.Series(values)), broken.tolist(),
                    [(p.rule, p.line, p.column, p.value, p.message) for p in log.problems]))
    return out


@pytest.mark.parametrize("k", range(0, 60, 2))
def test_each_column_typed_identically(monkeypatch, k):
    """Column by column, including values of cells that broke and rows to skip."""
    frame = _broken(k)
    skip = {1, 4, len(frame) - 1} if k % 4 == 2 else set()
    for as_lists in (False, True):
        fast = _typed(frame, skip, as_lists)
        monkeypatch.setattr(cells_module, "_COLUMNWISE", False)
        slow = _typed(frame, skip, as_lists)
        monkeypatch.setattr(cells_module, "_COLUMNWISE", True)
        assert fast == slow


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "category"])
def test_other_storages_match_per_cell(monkeypatch, dtype):
    """Columns whose storage the fast paths read through public pandas calls only."""
    pytest.importorskip("pyarrow")
    frame = _broken(4)  # every column as text
    frame[["sex", "death_date", "lung_mets", "os_months"]] = \
        frame[["sex", "death_date", "lung_mets", "os_months"]].astype(dtype)
    fast, slow = _both(monkeypatch, frame.copy)
    assert fast == slow


def test_floats_public_and_private_routes_agree():
    values = [1.0, None, 0.0, 2.5]
    expected = pd.Series(values, dtype="Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    for arr in (pd.array(values, dtype="Float64"), pd.arrays.SparseArray([1.0, np.nan, 0.0, 2.5]),
                np.array([1.0, np.nan, 0.0, 2.5])):
        got = read_module.floats(arr)
        np.testing.assert_array_equal(got, expected)
        got[0] = 9.0  # a new array: the column itself is unchanged
        assert pd.Series(arr).iloc[0] == 1.0
