"""Write the binary cohort cases (Excel, Parquet, damaged files) into a folder.

Why a script: binary files do not diff or review well, so the tests write
them into a temporary folder instead of committing them. Each malformed case
proves one rule, with the same manifest fields as ``MANIFEST.csv``; the valid
cases must load cleanly.

Run ``python tests/malformed/make_binary_cases.py DIR`` to look at the files.
"""

from __future__ import annotations

import datetime as dt
import sys
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


def _excel(frame: pd.DataFrame, path: Path, first_row: int = 1) -> None:
    """Write ``frame`` with openpyxl, header on sheet row ``first_row``, dates as Excel dates."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "cohort"
    for j, name in enumerate(frame.columns, start=1):
        sheet.cell(row=first_row, column=j, value=name)
    for i, row in enumerate(frame.itertuples(index=False), start=first_row + 1):
        for j, value in enumerate(row, start=1):
            if value is not None and not (isinstance(value, float) and value != value) and value is not pd.NaT:
                sheet.cell(row=i, column=j, value=value.to_pydatetime() if isinstance(value, pd.Timestamp)
                           else value)
    book.save(path)


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

    _excel(BASE, folder / "valid_months.xlsx")
    _excel(DATES, folder / "valid_dates.xlsx")
    BASE.to_parquet(folder / "valid_months.parquet", index=False)
    DATES.to_parquet(folder / "valid_dates.parquet", index=False)
    return manifest, ["valid_months.xlsx", "valid_dates.xlsx", "valid_months.parquet", "valid_dates.parquet"]


if __name__ == "__main__":  # pragma: no cover
    rows, valid = write_cases(sys.argv[1] if len(sys.argv) > 1 else "binary_cases")
    for r in rows:
        print(r)
    print("valid:", ", ".join(valid))
