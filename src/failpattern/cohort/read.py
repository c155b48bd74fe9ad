"""Reading a cohort file into raw cells, keeping the row numbers the user sees.

Why: pandas' readers drop blank lines, guess types and forget line numbers, so
their errors cannot point a clinician to "line 14 of my CSV". CSV is read with
the standard :mod:`csv` module (exact line numbers, even with quoted line
breaks), Excel with openpyxl (sheet row numbers), Parquet and DataFrames row
by row (header = row 1, first patient = row 2, like a spreadsheet). Nothing is
converted here; :mod:`failpattern.cohort.load` types the cells. The input file
is opened read-only and never written.
"""

from __future__ import annotations

import codecs
import csv
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from failpattern.cohort.problems import ProblemLog

__all__ = ["RawTable", "read_table", "CSV_SUFFIXES", "EXCEL_SUFFIXES", "PARQUET_SUFFIXES", "column_values",
           "floats", "is_number", "is_text", "text_cells"]

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
PARQUET_SUFFIXES = (".parquet", ".pq")
_MAGIC = ((b"PK\x03\x04", "a zip archive (an Excel .xlsx saved under another name?)"),
          (b"PAR1", "a Parquet file saved under another name"),
          (b"%PDF", "a PDF document"),
          (b"\xd0\xcf\x11\xe0", "an old Excel .xls / Word document; save it as .xlsx or CSV"))


@dataclass
class RawTable:
    """Cells as read: ``header`` names, ``rows`` (lists of str or native values), ``lines``.

    A DataFrame (or Parquet file) is kept as its columns (``frame``), so that
    typing can work column by column on native dtypes; ``rows`` is then built
    only if asked for. :meth:`column` gives the cells of one column either way.
    """

    header: list[str]
    _rows: list[list] | None
    lines: list[int]
    ragged: set[int]  # positions of rows whose field count differs from the header
    kind: str  # "csv", "excel", "parquet" or "frame"
    frame: pd.DataFrame | None = None
    _columns: list | None = None

    @property
    def n_rows(self) -> int:
        return len(self.lines)

    @property
    def rows(self) -> list[list]:
        """The cells row by row (``None`` for an empty native cell)."""
        if self._rows is None:
            self._rows = [[native(v) for v in row] for row in self.frame.itertuples(index=False, name=None)]
        return self._rows

    def column(self, j: int):
        """The cells of column ``j``: a list, or for a frame its Series (native dtype)."""
        if self._rows is None:
            return self.frame.iloc[:, j]
        return [r[j] for r in self._rows]

    def array(self, j: int):
        """The cells of column ``j``: a list, or for a frame its values as stored (numpy or
        extension array, native dtype), without building a Series (most of the cost for a
        small frame)."""
        if self._rows is not None:
            return [r[j] for r in self._rows]
        if self._columns is None:
            try:
                self._columns = list(self.frame._iter_column_arrays())  # pandas' own iterator (private)
            except AttributeError:  # a pandas without it: each column's Series' array
                self._columns = [s.array for _, s in self.frame.items()]
        return self._columns[j]


def _blank(row) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) or
               (isinstance(v, float) and v != v) for v in row)


def _decode(data: bytes, encoding: str | None, log: ProblemLog) -> str | None:
    if encoding is None:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        else:
            encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except LookupError:
        log.add("unreadable_encoding", f"unknown encoding {encoding!r}", value=encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = f"0x{data[exc.start]:02X}"
        name = "UTF-8" if encoding == "utf-8-sig" else encoding
        log.add("unreadable_encoding",
                f"byte {byte} on line {line} is not valid {name}; the file is probably Windows-1252 "
                "or Latin-1: re-save it as 'CSV UTF-8', or pass encoding='cp1252'",
                line=line, value=byte)
    return None


def _read_csv(path: Path, encoding: str | None, log: ProblemLog) -> RawTable | None:
    data = path.read_bytes()
    if not data.strip():
        log.add("empty_file", "the file is empty; it needs a header line and one line per patient")
        return None
    for magic, what in _MAGIC:
        if data.startswith(magic):
            log.add("not_a_table", f"the file is {what}, not a CSV text table")
            return None
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        log.add("not_a_table", "the file contains binary data (NUL bytes); it is not a CSV text table")
        return None
    text = _decode(data, encoding, log)
    if text is None:
        return None
    if text.lstrip()[:1] in ("{", "["):
        log.add("not_a_table", "the file looks like JSON; export the cohort as CSV, one row per patient")
        return None
    first = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    if path.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:  # the separator used most in the header line: Excel in many locales writes ';'
        delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header, rows, lines, ragged = None, [], [], set()
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if _blank(record):
                continue
            if header is None:
                header = [h.strip() for h in record]
                continue
            if len(record) != len(header):
                extra = record[len(header):]
                if len(record) > len(header) and _blank(extra):
                    record = record[: len(header)]
                else:
                    ragged.add(len(rows))
                    log.add("ragged_row", f"the row has {len(record)} fields but the header has "
                            f"{len(header)}; check for a missing or extra separator "
                            f"({delimiter!r}) or an unquoted {delimiter!r} inside a value",
                            line=line, value=delimiter.join(record))
                    record = (record + [""] * len(header))[: len(header)]
            rows.append(record)
            lines.append(line)
    except csv.Error as exc:
        log.add("not_a_table", f"the CSV cannot be parsed near line {reader.line_num}: {exc}",
                line=reader.line_num)
        return None
    return _finish(header, rows, lines, ragged, "csv", log)


def _finish(header, rows, lines, ragged, kind, log) -> RawTable | None:
    if header is None:
        log.add("empty_file", "the file has no header line")
        return None
    if not rows:
        log.add("empty_file", "the file has a header but no patient rows", line=1)
        return None
    return RawTable([str(h) for h in header], rows, lines, ragged, kind)


def _have(module: str, what: str, log: ProblemLog) -> bool:
    """Whether the optional reader ``module`` is installed; if not, say how to get it."""
    if importlib.util.find_spec(module) is not None:
        return True
    log.add("missing_reader", f"reading {what} files needs the optional package {module!r}; "
            "install it with: pip install 'failpattern[io]' (or save the cohort as CSV)",
            value=module)
    return False


def _read_excel(path: Path, log: ProblemLog) -> RawTable | None:
    if not _have("openpyxl", "Excel", log):
        return None
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        log.add("not_a_table", f"the file is not a readable Excel workbook ({type(exc).__name__}: {exc})")
        return None
    try:
        names = book.sheetnames
        sheet = book["cohort"] if "cohort" in names else book[names[0]]
        header, rows, lines = None, [], []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            values = list(values)
            if _blank(values):
                continue
            if header is None:
                while values and values[-1] is None:
                    values.pop()
                header = ["" if h is None else str(h).strip() for h in values]
                continue
            extra = values[len(header):]
            if not _blank(extra):
                log.add("ragged_row", "the row has values to the right of the last header cell",
                        line=number, value=extra)
            rows.append((values + [None] * len(header))[: len(header)])
            lines.append(number)
    finally:
        book.close()
    return _finish(header, rows, lines, set(), "excel", log)


def native(v):
    """A cell as the rows hold it: ``None`` for an empty native value (NaN, NA, NaT)."""
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v


_MASKED = (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)
_NUMPY_ARRAY = getattr(pd.arrays, "NumpyExtensionArray", None) or pd.arrays.PandasArray


def column_values(raw):
    """A Series' or column's values as stored, without a copy.

    Parameters
    ----------
    raw : Series, numpy.ndarray or ExtensionArray

    Returns
    -------
    numpy.ndarray or ExtensionArray
        A numpy-backed column as its ndarray, any other as its ExtensionArray.
    """
    arr = raw.array if isinstance(raw, pd.Series) else raw
    return arr.to_numpy() if type(arr) is _NUMPY_ARRAY else arr  # the wrapped ndarray, no copy


def is_number(arr) -> bool:
    """Whether ``arr`` holds bools, integers or floats (numpy or pandas' nullable dtypes).

    Parameters
    ----------
    arr : numpy.ndarray or ExtensionArray

    Returns
    -------
    bool
        As ``pd.api.types.is_bool_dtype``, ``is_float_dtype`` or ``is_integer_dtype`` say.
    """
    dtype = arr.dtype
    if isinstance(dtype, np.dtype):  # the same answers as below, without their dispatch
        return dtype.kind in "biuf"
    if type(arr) in _MASKED:
        return True
    return pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_float_dtype(dtype) \
        or pd.api.types.is_integer_dtype(dtype)


def floats(arr) -> np.ndarray:
    """A numeric array as a new float64 array, NaN where empty (``to_numpy(float64, na_value=nan)``).

    Parameters
    ----------
    arr : numpy.ndarray or ExtensionArray
        Bool, integer or float values.

    Returns
    -------
    numpy.ndarray
        A new, writable float64 array.
    """
    if type(arr) in _MASKED:
        # pandas' masked arrays keep values and mask apart (``_data``, ``_mask``: private);
        # reading them skips to_numpy's checks. A pandas without them takes the public path.
        data, mask = getattr(arr, "_data", None), getattr(arr, "_mask", None)
        if isinstance(data, np.ndarray) and isinstance(mask, np.ndarray):
            x = data.astype(np.float64)
            x[mask] = np.nan
            return x
    if isinstance(arr, np.ndarray):
        return np.array(arr, dtype=np.float64)
    return arr.to_numpy(dtype=np.float64, na_value=np.nan)


def is_text(arr) -> bool:
    """Whether ``arr`` is an object or string column.

    Parameters
    ----------
    arr : numpy.ndarray or ExtensionArray

    Returns
    -------
    bool
    """
    return arr.dtype == object or isinstance(arr.dtype, pd.StringDtype)


def text_cells(arr) -> np.ndarray:
    """An object or string column's cells as an object array, to read only.

    Parameters
    ----------
    arr : numpy.ndarray or ExtensionArray
        An object or string column (:func:`is_text`).

    Returns
    -------
    numpy.ndarray
        The cells as ``Series.to_numpy(dtype=object)`` gives them (text, None, NA
        or NaN); possibly the column's own storage.
    """
    if isinstance(arr, np.ndarray):
        return arr
    if type(arr) is pd.arrays.StringArray:
        # its own object array of str and NA (``_ndarray``: private), only read; else a copy
        cells = getattr(arr, "_ndarray", None)
        if isinstance(cells, np.ndarray) and cells.dtype == object:
            return cells
    return arr.to_numpy(dtype=object)


def _from_frame(frame: pd.DataFrame, kind: str, log: ProblemLog) -> RawTable | None:
    if frame.index.name == "patient_id" and "patient_id" not in frame.columns:
        frame = frame.reset_index()
    header = [str(c).strip() for c in frame.columns]
    if not len(header):
        return _finish(None, [], [], set(), kind, log)
    if not len(frame):
        return _finish(header, [], [], set(), kind, log)
    return RawTable(header, None, list(range(2, len(frame) + 2)), set(), kind, frame)


def read_table(source, encoding: str | None, log: ProblemLog) -> RawTable | None:
    """Read ``source`` (path or DataFrame); log whole-file problems and return ``None`` on failure."""
    if isinstance(source, pd.DataFrame):
        return _from_frame(source, "frame", log)
    path = Path(source)
    if not path.exists():
        log.add("file_not_found", f"no such file: {path}; check the folder and the spelling", value=str(path))
        return None
    if not path.is_file():
        log.add("not_a_table", f"{path} is a folder, not a file", value=str(path))
        return None
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _read_csv(path, encoding, log)
    if suffix in EXCEL_SUFFIXES:
        return _read_excel(path, log)
    if suffix in PARQUET_SUFFIXES:
        if not _have("pyarrow", "Parquet", log):
            return None
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for damaged files
            log.add("not_a_table", f"the file is not a readable Parquet file ({type(exc).__name__})")
            return None
        return _from_frame(frame, "parquet", log)
    hint = (" (old Excel format: save it as .xlsx)" if suffix == ".xls" else
            " (JSON is not a table: export the cohort as CSV)" if suffix == ".json" else "")
    log.add("unknown_extension", f"cannot read files ending in {suffix or '(no extension)'!r}{hint}; "
            f"use one of {', '.join(CSV_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES)}",
            value=path.name)
    return None
