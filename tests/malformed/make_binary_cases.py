"""Write the binary cohort cases (Excel, Parquet, damaged files) into a folder.

Why a script: binary files do not diff or review well, so the tests write
them into a temporary folder instead of committing them. Each malformed case
proves one rule, with the same manifest fields as ``MANIFEST.csv``; the valid
cases must load cleanly.

Run ``python tests/malformed/make_binary_cases.py DIR`` to look at the files.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import sys
import zipfile
from pathlib import Path

import pandas as pd

BASE = pd.DataFrame({
    "patient_id": ["P01", "P02", "P03", "P04", "P05"],
    "pfs1_months": [11.5, 13.0, 24.1, 6.2, 4.0],
    "pfs1_event": [1, 1, 0, 1, 1],
    "failure_pattern": ["OF", "DF", None, "ODF", "death"],
    "pfs2_months": [7.0, 5.4, None, 3.1, None],
    "pfs2_event": [1, 0, None, 1, None],
    "os_months": [30.2, 22.0, 40.0, 12.5, 9.8],
    "os_event": [1, 0, 0, 1, 1],
})

DATES = pd.DataFrame({
    "patient_id": [101, 102, 103],  # numbers: Excel stores them as 101.0
    "diagnosis_date": [dt.datetime(2014, 3, 1), dt.datetime(2015, 1, 10), dt.datetime(2015, 6, 1)],
    "crizotinib_start_date": [dt.datetime(2014, 4, 1), dt.datetime(2015, 2, 1), dt.datetime(2015, 6, 15)],
    "first_progression_date": [dt.datetime(2015, 4, 1), None, dt.datetime(2016, 1, 15)],
    "second_progression_date": [dt.datetime(2015, 10, 1), None, None],
    "death_date": [None, None, dt.datetime(2016, 9, 1)],
    "last_followup_date": [dt.datetime(2016, 6, 30), dt.datetime(2018, 5, 31), None],
    "failure_pattern": ["OF", None, "DF"],
})


def _excel(frame: pd.DataFrame, path: Path, first_row: int = 1, title: str = "cohort", change=None) -> None:
    """Write ``frame`` with openpyxl, header on sheet row ``first_row``, dates as Excel dates;
    ``change(sheet)`` edits the sheet before saving."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for j, name in enumerate(frame.columns, start=1):
        sheet.cell(row=first_row, column=j, value=name)
    for i, row in enumerate(frame.itertuples(index=False), start=first_row + 1):
        for j, value in enumerate(row, start=1):
            if value is not None and not (isinstance(value, float) and value != value) and value is not pd.NaT:
                sheet.cell(row=i, column=j, value=value.to_pydatetime() if isinstance(value, pd.Timestamp)
                           else value)
    if change is not None:
        change(sheet)
    book.save(path)


def _save_formula_values(path: Path, values: dict[str, str]) -> None:
    """Store a calculated value beside formulas (cell -> value), as Excel does when it saves;
    openpyxl writes formulas without one."""
    with zipfile.ZipFile(path) as z:
        files = {name: z.read(name) for name in z.namelist()}
    xml = files["xl/worksheets/sheet1.xml"].decode("utf-8")
    for cell, value in values.items():
        xml, n = re.subn(rf'(<c r="{cell}"[^>]*>)(<f>[^<]*</f>)(<v\s*/>|<v></v>)?', rf"\1\2<v>{value}</v>", xml)
        assert n == 1, cell
    files["xl/worksheets/sheet1.xml"] = xml.encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def write_cases(folder) -> tuple[list[dict], list[str]]:
    """Write every binary case into ``folder``.

    Returns
    -------
    manifest : list of dict
        ``file, rule, line, column, note`` for each expected problem.
    valid : list of str
        Files that must load without errors.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []

    def expect(file, rule, line, column, note):
        manifest.append({"file": file, "rule": rule, "line": "" if line is None else str(line),
                         "column": column or "", "note": note})

    bad = BASE.copy()
    bad.loc[2, "failure_pattern"] = "relapse"
    _excel(bad, folder / "unknown_pattern.xlsx", first_row=2)  # blank first row: P03 is on sheet row 5
    expect("unknown_pattern.xlsx", "unknown_category", 5, "failure_pattern",
           "Excel row numbers, header on row 2")

    neg = BASE.copy()
    neg.loc[1, "pfs1_months"] = -1.0
    neg.to_parquet(folder / "negative_time.parquet", index=False)
    expect("negative_time.parquet", "negative_time", 3, "pfs1_months", "Parquet rows numbered like a sheet")

    _excel(BASE, folder / "renamed.xlsx")
    (folder / "renamed_xlsx.csv").write_bytes((folder / "renamed.xlsx").read_bytes())
    (folder / "renamed.xlsx").unlink()
    expect("renamed_xlsx.csv", "not_a_table", None, None, "an Excel workbook saved with a .csv name")

    (folder / "damaged.xlsx").write_bytes(b"patient_id,pfs1_months\nP01,3\n")
    expect("damaged.xlsx", "not_a_table", None, None, "text with an .xlsx name")
    (folder / "damaged.parquet").write_bytes(b"PAR1" + bytes(range(200)))
    expect("damaged.parquet", "not_a_table", None, None, "truncated Parquet")

    # text in UTF-16 without its byte-order mark, or UTF-32: NUL bytes, refused with the encoding to pass
    text = BASE.to_csv(index=False)
    for name, codec in (("utf16le_no_bom.csv", "utf-16-le"), ("utf16be_no_bom.csv", "utf-16-be"),
                        ("utf32_bom.csv", "utf-32"), ("utf32le_no_bom.csv", "utf-32-le")):
        (folder / name).write_bytes(text.encode(codec))
        expect(name, "unreadable_encoding", None, None, f"{codec} text")

    # Parquet columns that hold no single value per patient
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(BASE)
    table = pa.Table.from_pandas(BASE, preserve_index=False)
    for name, column, values in (
            ("list_column.parquet", "pfs1_months", pa.array([[1.0, 2.0]] * n)),
            ("struct_column.parquet", "os_months", pa.array([{"months": 3.0}] * n)),
            ("map_column.parquet", "failure_pattern", pa.array([[("a", 1)]] * n, type=pa.map_(pa.string(), pa.int64()))),
            ("binary_column.parquet", "patient_id", pa.array([b"P01"] * n))):
        pq.write_table(table.set_column(table.schema.get_field_index(column), column, values), folder / name)
        expect(name, "unsupported_type", 1, column, "a nested or binary Parquet column")

    # Excel: merged cells and formulas without a saved value, on a sheet named in every problem
    _excel(BASE, folder / "merged_cells.xlsx", title="Patients", change=lambda s: s.merge_cells("B3:B4"))
    expect("merged_cells.xlsx", "merged_cells", 3, "pfs1_months", "B3:B4 merged: P03's value lost")
    _excel(BASE, folder / "formula_not_saved.xlsx", change=lambda s: s.__setitem__("G4", "=B4*2"))
    expect("formula_not_saved.xlsx", "formula_not_saved", 4, "os_months", "a formula openpyxl wrote, never calculated")
    _excel(BASE, folder / "formula_saved.xlsx", change=lambda s: s.__setitem__("G4", "=B4*2"))
    _save_formula_values(folder / "formula_saved.xlsx", {"G4": "48.2"})

    # a named pipe given as the cohort: refused without opening it (opening would wait for a writer)
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe.csv")
        expect("pipe.csv", "unreadable_file", None, None, "a FIFO, not a file")

    _excel(BASE, folder / "valid_months.xlsx")
    _excel(DATES, folder / "valid_dates.xlsx")
    BASE.to_parquet(folder / "valid_months.parquet", index=False)
    DATES.to_parquet(folder / "valid_dates.parquet", index=False)
    return manifest, ["valid_months.xlsx", "valid_dates.xlsx", "valid_months.parquet", "valid_dates.parquet",
                      "formula_saved.xlsx"]


if __name__ == "__main__":  # pragma: no cover
    rows, valid = write_cases(sys.argv[1] if len(sys.argv) > 1 else "binary_cases")
    for r in rows:
        print(r)
    print("valid:", ", ".join(valid))
