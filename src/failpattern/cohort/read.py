"""Reading a cohort file into raw cells, keeping the row numbers the user sees.

Why: pandas' readers drop blank lines, guess types and forget line numbers, so
their errors cannot point a clinician to "line 14 of my CSV". CSV is read with
the standard :mod:`csv` module (exact line numbers, even with quoted line
breaks), Excel with openpyxl (sheet row numbers), Parquet and DataFrames row
by row (header = row 1, first patient = row 2, like a spreadsheet). Nothing is
converted here; :mod:`failpattern.cohort.load` types the cells. The input file
is opened read-only and never written.

Memory: a CSV is streamed (never held whole, as bytes or text) and each
column is kept as codes into its distinct cells (:class:`Coded`), so a
million-row file costs less memory than its own size instead of a Python
string per cell (16 times the file). Typing then works once per distinct
cell. Only regular files are opened: a FIFO or a device would block or never
end.

Hostile files are refused with a message, never a traceback: UTF-16 without
its byte-order mark and UTF-32 (recognised by their NUL bytes), Parquet
columns of nested or binary types, Excel merged cells and formula cells
whose value was never saved. Every problem in an Excel file names the sheet.
"""

from __future__ import annotations

import codecs
import csv
import importlib.util
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from failpattern.cohort.problems import ProblemLog

__all__ = ["RawTable", "Coded", "read_table", "unsupported_type", "CSV_SUFFIXES", "EXCEL_SUFFIXES", "PARQUET_SUFFIXES", "column_values",
           "floats", "is_number", "is_text", "text_cells"]

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
PARQUET_SUFFIXES = (".parquet", ".pq")
_MAGIC = ((b"PK\x03\x04", "a zip archive (an Excel .xlsx saved under another name?)"),
          (b"PAR1", "a Parquet file saved under another name"),
          (b"%PDF", "a PDF document"),
          (b"\xd0\xcf\x11\xe0", "an old Excel .xls / Word document; save it as .xlsx or CSV"))


class Coded:
    """A text column as codes into its distinct cells: row ``i`` holds ``uniques[codes[i]]``.

    Why: a CSV column repeats few texts (0/1 flags, categories, dates), so
    small integer codes cost a byte or two per cell where a Python string
    costs fifty, and typing converts each distinct text once.

    Parameters
    ----------
    codes : numpy.ndarray of int
        One code per row.
    uniques : sequence of str
        The distinct cells, in order of first appearance (a column of mostly
        distinct texts keeps every cell, with ``codes`` counting up).
    """

    __slots__ = ("codes", "uniques")

    def __init__(self, codes: np.ndarray, uniques: list):
        self.codes = codes
        self.uniques = uniques

    def __len__(self) -> int:
        return len(self.codes)

    def cells(self) -> np.ndarray:
        """The cells as an object array (the distinct strings shared, not copied)."""
        table = np.empty(len(self.uniques), dtype=object)
        table[:] = self.uniques if isinstance(self.uniques, list) else list(self.uniques)
        return table[self.codes]


@dataclass
class RawTable:
    """Cells as read: ``header`` names, ``rows`` (lists of str or native values), ``lines``.

    A DataFrame (or Parquet file) is kept as its columns (``frame``), so that
    typing can work column by column on native dtypes; ``rows`` is then built
    only if asked for. A CSV file is kept as :class:`Coded` columns
    (``coded``). :meth:`column` gives the cells of one column either way.
    """

    header: list[str]
    _rows: list[list] | None
    lines: list[int]
    ragged: set[int]  # rows not to check: misaligned fields or unreadable cells (already reported)
    kind: str  # "csv", "excel", "parquet" or "frame"
    frame: pd.DataFrame | None = None
    _columns: list | None = None
    coded: list[Coded] | None = None
    # problems of single cells found while reading (Excel): (row position, rule, header, value, message),
    # reported by the loader once it knows each row's patient
    notes: list[tuple] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.lines)

    @property
    def rows(self) -> list[list]:
        """The cells row by row (``None`` for an empty native cell)."""
        if self._rows is None:
            if self.coded is not None:
                return [list(r) for r in zip(*(c.cells() for c in self.coded))]
            self._rows = [[native(v) for v in row] for row in self.frame.itertuples(index=False, name=None)]
        return self._rows

    def column(self, j: int):
        """The cells of column ``j``: a list or object array, or for a frame its Series (native dtype)."""
        if self.coded is not None:
            return self.coded[j].cells()
        if self._rows is None:
            return self.frame.iloc[:, j]
        return [r[j] for r in self._rows]

    def release(self, j: int) -> None:
        """Forget the cells of CSV column ``j`` once typed (the other kinds keep theirs)."""
        if self.coded is not None:
            self.coded[j] = None

    def array(self, j: int):
        """The cells of column ``j``: a list, a :class:`Coded` column (CSV), or for a frame its
        values as stored (numpy or extension array, native dtype), without building a Series
        (most of the cost for a small frame)."""
        if self.coded is not None:
            return self.coded[j]
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


_HEAD = 1 << 16  # bytes looked at for the file's kind (magic numbers, NUL bytes, encoding)
_BLOCK = 1 << 20  # bytes decoded at a time when checking the encoding
_CHUNK = 4096  # rows parsed before their columns are coded (their cells are Python strings)

# (byte-order mark, what it is, the encoding that reads it)
_UTF32_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32 (little-endian)", "utf-32"),
               (codecs.BOM_UTF32_BE, "UTF-32 (big-endian)", "utf-32"))


def _wide_text(head: bytes) -> tuple[str, str] | None:
    """``(what, encoding)`` when NUL bytes fall where UTF-16 or UTF-32 text without a BOM puts them.

    Text in these encodings stores ASCII letters with zero bytes beside them:
    UTF-32-LE as ``x 0 0 0``, UTF-16-LE as ``x 0``, big-endian mirrored. Random
    binary data does not follow the pattern, so it stays ``not_a_table``.
    """
    n = len(head) // 4 * 4
    if n < 8:
        return None
    b = np.frombuffer(head[:n], dtype=np.uint8).reshape(-1, 4)
    zero = (b == 0).mean(axis=0)  # share of NUL bytes at each position of 4

    def z(*pos):
        return all(zero[k] >= 0.9 for k in pos)

    def nz(*pos):
        return all(zero[k] <= 0.1 for k in pos)

    if z(1, 2, 3) and nz(0):
        return "UTF-32 (little-endian) without a byte-order mark", "utf-32-le"
    if z(0, 1, 2) and nz(3):
        return "UTF-32 (big-endian) without a byte-order mark", "utf-32-be"
    if z(1, 3) and nz(0, 2):
        return "UTF-16 (little-endian) without a byte-order mark", "utf-16-le"
    if z(0, 2) and nz(1, 3):
        return "UTF-16 (big-endian) without a byte-order mark", "utf-16-be"
    return None


def _is_wide(encoding: str) -> bool:
    """Whether ``encoding`` is UTF-16 or UTF-32 (text with NUL bytes)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name.startswith(("utf-16", "utf-32"))


def _encoding(path: Path, head: bytes, encoding: str | None, log: ProblemLog) -> str | None:
    """The encoding to read ``path`` with, or ``None`` (problem logged) when it is not text
    failpattern reads without being told (see the module docstring)."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            log.add("not_a_table", f"the file is {what}, not a CSV text table")
            return None
    if encoding is None:
        for bom, what, name in _UTF32_BOMS:
            if head.startswith(bom):
                log.add("unreadable_encoding", f"the file is {what} text; save it as 'CSV UTF-8', or pass "
                        f"encoding={name!r} (--encoding {name})", value=name)
                return None
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
    if b"\x00" in head[:4096] and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) \
            and not (encoding is not None and _is_wide(encoding)):
        wide = _wide_text(head[:4096])
        if wide is not None:
            what, name = wide
            log.add("unreadable_encoding", f"the file is {what}; save it as 'CSV UTF-8', or pass "
                    f"encoding={name!r} (--encoding {name})", value=name)
        else:
            log.add("not_a_table", "the file contains binary data (NUL bytes); it is not a CSV text table")
        return None
    encoding = "utf-8-sig" if encoding is None else encoding
    try:
        "a".encode(encoding)  # LookupError too for a codec that is not a text encoding ('hex', 'rot13')
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        log.add("unreadable_encoding", f"unknown encoding {encoding!r}: not a text encoding Python knows "
                "(e.g. 'utf-8', 'cp1252', 'utf-16-le')", value=encoding)
        return None
    try:  # the whole file decodes (checked block by block: the file is never held whole)
        with open(path, "rb") as f:
            while True:
                block = f.read(_BLOCK)
                decoder.decode(block, final=not block)
                if not block:
                    break
    except UnicodeDecodeError:  # where and which byte: the exact message needs the bytes at once
        _decode(path.read_bytes(), None if encoding == "utf-8-sig" else encoding, log)
        return None
    except UnicodeError as exc:  # e.g. 'utf-16' given for a file without its byte-order mark
        log.add("unreadable_encoding", f"the file cannot be read as {encoding!r} ({exc}); for UTF-16 without "
                "a byte-order mark pass 'utf-16-le' or 'utf-16-be', or save the file as 'CSV UTF-8'",
                value=encoding)
        return None
    return encoding


def _head_text(path: Path, encoding: str) -> str:
    """The start of the text: up to its first line break after some non-blank text (at most
    about a megabyte: a file without line breaks is not read whole here)."""
    parts: list[str] = []
    size = 0
    with open(path, encoding=encoding, newline="") as f:
        while size < _BLOCK:
            more = f.read(_HEAD)
            if not more:
                break
            parts.append(more)
            size += len(more)
            text = "".join(parts)
            if text.strip() and len(text.lstrip("\r\n").splitlines()) > 1:
                return text
    return "".join(parts)


def _all_blank(path: Path) -> bool:
    """Whether the file holds only whitespace bytes (read block by block)."""
    with open(path, "rb") as f:
        while True:
            block = f.read(_BLOCK)
            if not block:
                return True
            if block.strip():
                return False


_MAX_COLUMNS = 10_000  # header fields beyond which the file is not a cohort table


def _shorter(text: str, limit: int = 1000) -> str:
    """``text``, cut to ``limit`` characters (a runaway line is not copied into its problem)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _smallest(n: int) -> type:
    """The smallest integer type holding codes ``0 .. n - 1``."""
    return np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int32 if n < 2**31 else np.int64


class _Joined(Sequence):
    """Texts kept as one string per chunk and where each ends: about a byte per character.

    Why: a column of mostly distinct texts (patient ids, or garbage in a broken
    file) gains nothing from a dictionary, which would hold a Python string
    (about 50 bytes) per cell again.
    """

    def __init__(self, parts: list[tuple[str, np.ndarray]]):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(e) for _, e in parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __iter__(self):
        for text, ends in self.parts:
            start = 0
            for end in ends.tolist():
                yield text[start:end]
                start = end

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        part = int(np.searchsorted(self.starts, i, side="right")) - 1
        text, ends = self.parts[part]
        k = i - int(self.starts[part])
        return text[(int(ends[k - 1]) if k else 0):int(ends[k])]


_PLAIN_AFTER = 1 << 16  # distinct texts beyond which a mostly distinct column is kept joined


class _Coder:
    """Builds one :class:`Coded` column from chunks of cells (see :class:`_Joined` for a column of
    mostly distinct texts)."""

    def __init__(self):
        self.index: dict[str, int] | None = {}
        self.parts: list[np.ndarray] = []
        self.texts: list[tuple[str, np.ndarray]] | None = None
        self.n = 0

    def add(self, cells: np.ndarray) -> None:
        self.n += len(cells)
        if self.texts is not None:
            self._join(cells.tolist())
            return
        codes, uniques = pd.factorize(cells)
        index = self.index
        remap = np.fromiter((index.setdefault(u, len(index)) for u in uniques), dtype=np.int64,
                            count=len(uniques))
        self.parts.append(remap[codes].astype(_smallest(len(index))))
        if len(index) > _PLAIN_AFTER and 2 * len(index) > self.n:
            distinct, codes = list(index), np.concatenate(self.parts)
            self.index, self.parts, self.texts = None, [], []
            for k in range(0, len(codes), _CHUNK):
                self._join([distinct[c] for c in codes[k:k + _CHUNK].tolist()])

    def _join(self, cells: list) -> None:
        self.texts.append(("".join(cells), np.cumsum([len(c) for c in cells], dtype=np.int64)))

    def done(self) -> Coded:
        if self.texts is not None:
            return Coded(np.arange(self.n, dtype=_smallest(self.n)), _Joined(self.texts))
        codes = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int8)
        return Coded(codes, list(self.index))


def _read_csv(path: Path, encoding: str | None, log: ProblemLog) -> RawTable | None:
    with open(path, "rb") as f:
        head = f.read(_HEAD)
    if not head.strip() and (len(head) < _HEAD or _all_blank(path)):
        log.add("empty_file", "the file is empty; it needs a header line and one line per patient")
        return None
    encoding = _encoding(path, head, encoding, log)
    if encoding is None:
        return None
    start_text = _head_text(path, encoding)
    if start_text.lstrip()[:1] in ("{", "["):
        log.add("not_a_table", "the file looks like JSON; export the cohort as CSV, one row per patient")
        return None
    first = start_text.lstrip("\r\n").splitlines()[0] if start_text.strip() else ""
    if first == start_text.lstrip("\r\n") and len(start_text) >= _BLOCK:
        log.add("not_a_table", f"the first line is longer than {_BLOCK:,} characters; a CSV table has a "
                "header line naming its columns, then one line per patient")
        return None
    if path.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:  # the separator used most in the header line: Excel in many locales writes ';'
        delimiter = max((",", ";", "\t"), key=first.count)
    if first.count(delimiter) >= _MAX_COLUMNS:
        log.add("not_a_table", f"the header line has {first.count(delimiter) + 1:,} fields; a cohort has "
                "one column per variable (is the table transposed, or not a CSV?)")
        return None
    header, lines, ragged, coders, chunk = None, [], set(), [], []

    def flush():
        if chunk:
            cells = np.empty((len(chunk), len(header)), dtype=object)
            cells[:] = chunk
            for j, coder in enumerate(coders):
                coder.add(cells[:, j])
            chunk.clear()

    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        start = 1
        try:
            for record in reader:
                line, start = start, reader.line_num + 1
                if not "".join(record).strip():  # blank: every field empty or spaces
                    continue
                if header is None:
                    header = [h.strip() for h in record]
                    coders = [_Coder() for _ in header]
                    continue
                if len(record) != len(header):
                    extra = record[len(header):]
                    if len(record) > len(header) and not "".join(extra).strip():
                        record = record[: len(header)]
                    else:
                        ragged.add(len(lines))
                        log.add("ragged_row", f"the row has {len(record)} fields but the header has "
                                f"{len(header)}; check for a missing or extra separator "
                                f"({delimiter!r}) or an unquoted {delimiter!r} inside a value",
                                line=line, value=_shorter(delimiter.join(record)))
                        record = (record + [""] * len(header))[: len(header)]
                chunk.append(record)
                lines.append(line)
                if len(chunk) == _CHUNK:
                    flush()
        except csv.Error as exc:
            log.add("not_a_table", f"the CSV cannot be parsed near line {reader.line_num}: {exc}",
                    line=reader.line_num)
            return None
        flush()
    return _finish(header, None, lines, ragged, "csv", log, coded=coders)


def _finish(header, rows, lines, ragged, kind, log, coded=None, hint=None) -> RawTable | None:
    if header is None:
        log.add("empty_file", "the file has no header line" + (hint or ""))
        return None
    if not lines:
        log.add("empty_file", "the file has a header but no patient rows" + (hint or ""), line=1)
        return None
    return RawTable([str(h) for h in header], rows, lines, ragged, kind,
                    coded=None if coded is None else [c.done() for c in coded])


def _have(module: str, what: str, log: ProblemLog) -> bool:
    """Whether the optional reader ``module`` is installed; if not, say how to get it."""
    if importlib.util.find_spec(module) is not None:
        return True
    log.add("missing_reader", f"reading {what} files needs the optional package {module!r}; "
            f"install it with: pip install {module} (in a clone of "
            "the failpattern repository: pip install -e '.[io]'), or save the cohort as CSV",
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
        # the same sheet with formulas instead of their saved values: finds formulas never calculated
        formulas = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, TypeError) as exc:
        log.add("not_a_table", f"the file is not a readable Excel workbook ({type(exc).__name__}: {exc})")
        return None
    try:
        names = book.sheetnames
        name = "cohort" if "cohort" in names else names[0]
        log.sheet = name  # every problem from here on names the sheet
        header, rows, lines, first, unreadable, notes = None, [], [], None, set(), []
        pairs = zip(book[name].iter_rows(values_only=True), formulas[name].iter_rows(values_only=True))
        for number, (values, written) in enumerate(pairs, start=1):
            values = list(values)
            unsaved = [(j, f) for j, (v, f) in enumerate(zip(values, written))
                       if v is None and _formula(f) is not None]
            if _blank(values) and not unsaved:
                continue
            if header is None:
                while values and values[-1] is None and len(values) > 1 + max((j for j, _ in unsaved), default=-1):
                    values.pop()
                header = ["" if h is None else str(h).strip() for h in values]
                first = number
                for j, f in unsaved:
                    log.add("formula_not_saved", _unsaved(name, number, j, f), line=number, value=_formula(f))
                continue
            for j, f in unsaved:
                column = header[j] if j < len(header) else None
                notes.append((len(rows), "formula_not_saved", column, _formula(f),
                              _unsaved(name, number, j, f, column)))
                unreadable.add(len(rows))
            extra = values[len(header):]
            if not _blank(extra):
                log.add("ragged_row", "the row has values to the right of the last header cell",
                        line=number, value=extra)
            rows.append((values + [None] * len(header))[: len(header)])
            lines.append(number)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        log.add("not_a_table", f"the sheet {log.sheet!r} cannot be read ({type(exc).__name__}: {exc})")
        return None
    finally:
        book.close()
        formulas.close()
    if header is not None:
        by_line = {n: i for i, n in enumerate(lines)}
        try:
            merged = _merged(path, names.index(name))
        except (KeyError, IndexError, ValueError, zipfile.BadZipFile, SyntaxError) as exc:  # ParseError is one
            log.add("not_a_table", f"the merged cells of sheet {name!r} cannot be read ({type(exc).__name__})")
            return None
        for ref, (c0, r0, c1, r1) in merged:
            if r1 < first or c0 > len(header):
                continue  # outside the table (a merged title above the header, or notes to its right)
            column = header[c0 - 1] or None
            message = (f"cells {ref}{f' (column {column})' if column else ''} of sheet {name!r} are merged: Excel keeps the value in the first cell "
                       "only, so the others read as empty; unmerge them and fill every cell")
            if r0 in by_line:
                notes.append((by_line[r0], "merged_cells", column, ref, message))
            else:  # the header row
                log.add("merged_cells", message, line=r0, column=column, value=ref)
            unreadable.update(by_line[r] for r in range(r0, r1 + 1) if r in by_line)
    hint = None
    if len(names) > 1 and name != "cohort":
        hint = (f"; the sheet named 'cohort' is read if there is one, otherwise the first sheet ({name!r}): "
                "rename the patients' sheet 'cohort'")
    table = _finish(header, rows, lines, unreadable, "excel", log, hint=hint)
    if table is not None:
        table.notes = notes
    return table


def _formula(written) -> str | None:
    """The formula text of a cell read with formulas (``=...``), else ``None``."""
    text = getattr(written, "text", written)  # openpyxl's ArrayFormula keeps its text there
    return text if isinstance(text, str) and text.startswith("=") else None


def _unsaved(sheet: str, number: int, j: int, written, column: str | None = None) -> str:
    """The message for a formula cell without a saved value."""
    from openpyxl.utils import get_column_letter

    cell = f"{get_column_letter(j + 1)}{number}" + (f" (column {column})" if column else "")
    return (f"cell {cell} of sheet {sheet!r} holds the formula {_formula(written)} but no saved value (the "
            "file was written by a program that does not calculate formulas); open and save the file in "
            "Excel so its values are stored")


_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s[^>]*?ref="([A-Z]+[0-9]+(?::[A-Z]+[0-9]+)?)"')


def _merged(path: Path, position: int) -> list[tuple[str, tuple[int, int, int, int]]]:
    """The merged ranges of the ``position``-th sheet: ``(ref, (min_col, min_row, max_col, max_row))``.

    Why not openpyxl: its read-only mode (needed for large sheets) does not
    read merges, so the sheet's XML is scanned for its ``mergeCell`` elements
    (streamed, at the end of the sheet)."""
    import xml.etree.ElementTree as ET
    import zipfile

    from openpyxl.utils.cell import range_boundaries

    rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    with zipfile.ZipFile(path) as z:
        sheets = [e for e in ET.fromstring(z.read("xl/workbook.xml")).iter() if e.tag.endswith("}sheet")]
        targets = {e.get("Id"): e.get("Target") for e in ET.fromstring(z.read("xl/_rels/workbook.xml.rels")).iter()
                   if e.tag.endswith("}Relationship")}
        target = targets.get(sheets[position].get(rel), "") if position < len(sheets) else ""
        target = target.lstrip("/") if target.startswith("/") else "xl/" + target
        if target not in z.namelist():
            return []
        found, tail = {}, b""
        with z.open(target) as f:
            while True:
                block = f.read(_BLOCK)
                if not block:
                    break
                text = tail + block
                for m in _MERGE.finditer(text):
                    ref = m.group(1).decode("ascii")
                    found.setdefault(ref, range_boundaries(ref))
                tail = text[-512:]
    return sorted(found.items(), key=lambda kv: (kv[1][1], kv[1][0]))


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


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _regular_file(path: Path, log: ProblemLog) -> bool:
    """Whether ``path`` is a regular file, asked of the file system without opening it (opening a
    FIFO blocks until someone writes; a device such as ``/dev/zero`` never ends)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        log.add("file_not_found", f"no such file: {path}; check the folder and the spelling", value=str(path))
        return False
    except (OSError, ValueError) as exc:  # no permission on a folder, a name the system refuses
        log.add("unreadable_file", f"{path} cannot be read ({exc.__class__.__name__}: "
                f"{getattr(exc, 'strerror', None) or exc})", value=str(path))
        return False
    if stat.S_ISDIR(mode):
        log.add("not_a_table", f"{path} is a folder, not a file", value=str(path))
        return False
    if not stat.S_ISREG(mode):
        what = next((w for test, w in _KINDS if test(mode)), "not a regular file")
        log.add("unreadable_file", f"{path} is {what}, not a file; save the cohort to a file and give "
                "its path", value=str(path))
        return False
    if not os.access(path, os.R_OK):
        log.add("unreadable_file", f"{path} cannot be read: permission denied", value=str(path))
        return False
    return True


def _parquet_type_problems(path: Path, log: ProblemLog) -> bool:
    """Log every column of a type that holds no cohort value; ``True`` if there was one."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    bad = False
    for field_ in schema:
        what = unsupported_type(field_.type)
        if what is not None:
            bad = True
            log.add("unsupported_type", f"column {field_.name!r} holds {what} (Parquet type {field_.type}); "
                    "a cohort column holds one number, text or date per patient: convert it or drop it",
                    line=1, column=field_.name, value=str(field_.type))
    return bad


def unsupported_type(t) -> str | None:
    """What an Arrow type holds when it is not a cohort value (``None`` for a value type).

    Parameters
    ----------
    t : pyarrow.DataType

    Returns
    -------
    str or None
        E.g. ``"lists"``, ``"records (struct)"``, ``"bytes"``.
    """
    import pyarrow as pa
    import pyarrow.types as pat

    if pat.is_dictionary(t):
        return unsupported_type(t.value_type)
    if isinstance(t, pa.ExtensionType):
        return unsupported_type(t.storage_type)
    if pat.is_null(t) or pat.is_boolean(t) or pat.is_integer(t) or pat.is_floating(t) or pat.is_decimal(t) \
            or pat.is_string(t) or pat.is_large_string(t) or pat.is_date(t) or pat.is_timestamp(t) \
            or (hasattr(pat, "is_string_view") and pat.is_string_view(t)):
        return None
    for test, what in (("is_map", "maps"), ("is_struct", "records"), ("is_union", "unions"),
                       ("is_list", "lists"), ("is_large_list", "lists"), ("is_fixed_size_list", "lists"),
                       ("is_list_view", "lists"), ("is_large_list_view", "lists"), ("is_binary", "bytes"),
                       ("is_large_binary", "bytes"), ("is_fixed_size_binary", "bytes"),
                       ("is_binary_view", "bytes"), ("is_time", "times of day"),
                       ("is_duration", "durations"), ("is_interval", "intervals")):
        if hasattr(pat, test) and getattr(pat, test)(t):
            return what
    return "values of an unsupported type"


def read_table(source, encoding: str | None, log: ProblemLog) -> RawTable | None:
    """Read ``source`` (path or DataFrame); log whole-file problems and return ``None`` on failure."""
    if isinstance(source, pd.DataFrame):
        return _from_frame(source, "frame", log)
    path = Path(source)
    if not _regular_file(path, log):
        return None
    suffix = path.suffix.lower()
    try:
        if suffix in CSV_SUFFIXES:
            return _read_csv(path, encoding, log)
        if suffix in EXCEL_SUFFIXES:
            return _read_excel(path, log)
        if suffix in PARQUET_SUFFIXES:
            if not _have("pyarrow", "Parquet", log):
                return None
            try:
                if _parquet_type_problems(path, log):
                    return None
                frame = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises many types for damaged files
                log.add("not_a_table", f"the file is not a readable Parquet file ({type(exc).__name__})")
                return None
            return _from_frame(frame, "parquet", log)
    except PermissionError as exc:  # checked above, but the file may change in between
        log.add("unreadable_file", f"{path} cannot be read: {exc.strerror}", value=str(path))
        return None
    hint = (" (old Excel format: save it as .xlsx)" if suffix == ".xls" else
            " (JSON is not a table: export the cohort as CSV)" if suffix == ".json" else "")
    log.add("unknown_extension", f"cannot read files ending in {suffix or '(no extension)'!r}{hint}; "
            f"use one of {', '.join(CSV_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES)}",
            value=path.name)
    return None
