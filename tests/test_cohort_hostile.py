"""Hostile inputs: each is refused with a message a clinician can act on, never a traceback.

Why: a cohort loader sees whatever a researcher exports. Each case here is
loaded and must raise :class:`~failpattern.cohort.CohortError` whose problem
names the row (and the sheet, for Excel), column, value and rule; ``failpattern
analyze`` must exit with code 2 without a traceback; and the input file's bytes
and modification time must be unchanged. The binary cases come from
``tests/malformed/make_binary_cases.py``; the text cases are in
``tests/malformed/`` (their rules and lines are also in ``MANIFEST.csv``).

Also here: the console list of problems is capped and the full list goes to a
file (:func:`~failpattern.cohort.write_problems`); problems beyond the detail
limit are counted, not kept; and the streaming CSV reader gives what the
previous whole-file reader gave (a reference copy below) with far less memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
import threading
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from failpattern.cli.analyze import analyze
from failpattern.cohort import CohortError, load_cohort, write_problems
from failpattern.cohort import problems as problems_module
from failpattern.cohort.dates import parse_date
from failpattern.cohort.problems import ProblemLog, format_problems
from failpattern.cohort import read as read_module
from failpattern.cohort.read import read_table, unsupported_type
from failpattern.errors import InputError

from test_cohort_malformed import HERE, make_binary_cases

CANONICAL = Path(__file__).parents[1] / "data" / "synthetic" / "ni2019_exact.csv"


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    make_binary_cases.write_cases(folder)
    return folder


def _state(path: Path):
    """What must not change: the bytes (not read for a FIFO: that would block) and the mtime."""
    st = os.stat(path)
    data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
    return data, st.st_mtime_ns, st.st_size


def _load(path, **kw):
    """Load in a thread: a path that blocks (a FIFO opened for reading) fails the test instead of hanging."""
    out = {}

    def run():
        try:
            out["cohort"] = load_cohort(path, **kw)
        except BaseException as exc:  # noqa: BLE001 - checked below
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), f"loading {path} blocked"
    return out


def _refused(path, rule, **kw):
    """The problems of ``rule`` when loading ``path`` (which must raise CohortError)."""
    out = _load(path, **kw)
    assert "error" in out, f"{path} loaded"
    exc = out["error"]
    assert isinstance(exc, CohortError), repr(exc)
    found = [p for p in exc.problems if p.rule == rule]
    assert found, [str(p) for p in exc.problems]
    return exc, found


# (file, rule, line, column, value, words in the message, sheet)
BINARY = [
    ("utf16le_no_bom.csv", "unreadable_encoding", None, None, "utf-16-le",
     ("UTF-16 (little-endian) without a byte-order mark", "CSV UTF-8", "--encoding utf-16-le"), None),
    ("utf16be_no_bom.csv", "unreadable_encoding", None, None, "utf-16-be", ("UTF-16 (big-endian)",), None),
    ("utf32_bom.csv", "unreadable_encoding", None, None, "utf-32", ("UTF-32", "--encoding utf-32"), None),
    ("utf32le_no_bom.csv", "unreadable_encoding", None, None, "utf-32-le", ("UTF-32 (little-endian) without",), None),
    ("list_column.parquet", "unsupported_type", 1, "pfs1_months", "list<element: double>", ("holds lists",), None),
    ("struct_column.parquet", "unsupported_type", 1, "os_months", "struct<months: double>", ("holds records",), None),
    ("map_column.parquet", "unsupported_type", 1, "failure_pattern", "map<string, int64", ("holds maps",), None),
    ("binary_column.parquet", "unsupported_type", 1, "patient_id", "binary", ("holds bytes",), None),
    ("merged_cells.xlsx", "merged_cells", 3, "pfs1_months", "B3:B4",
     ("cells B3:B4", "sheet 'Patients'", "unmerge"), "Patients"),
    ("formula_not_saved.xlsx", "formula_not_saved", 4, "os_months", "=B4*2",
     ("cell G4", "open and save the file in Excel so its values are stored"), "cohort"),
]
TEXT = [
    ("underscore_in_number.csv", "not_a_number", 3, "pfs1_months", "1_5", ("'_' is not allowed",)),
    ("fullwidth_digits.csv", "non_ascii_digits", 4, "os_months", "３０.０", ("ASCII digits 0-9",)),
    ("fullwidth_digits.csv", "non_ascii_digits", 5, "ecog", "１", ("ASCII digits 0-9",)),
    ("arabic_indic_digits.csv", "non_ascii_digits", 2, "pfs1_event", "١", ("ASCII digits 0-9",)),
    ("arabic_indic_digits.csv", "non_ascii_digits", 6, "age_years", "٦٥", ("ASCII digits 0-9",)),
    ("non_ascii_digits_in_dates.csv", "non_ascii_digits", 2, "diagnosis_date", "２０１４-０３-０１", ("ASCII digits",)),
    ("non_ascii_digits_in_dates.csv", "non_ascii_digits", 3, "last_followup_date", "٢٠١٨-٠٥-٣١", ("ASCII digits",)),
]


def _check_cli(path, rule, sheet=None):
    result = CliRunner().invoke(analyze, [str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    assert rule in result.stderr
    if sheet is not None:
        assert f"sheet {sheet!r}" in result.stderr


@pytest.mark.parametrize("name, rule, line, column, value, words, sheet", BINARY, ids=[c[0] for c in BINARY])
def test_binary_case_is_refused_with_a_message(cases, name, rule, line, column, value, words, sheet):
    path = cases / name
    before = _state(path)
    exc, found = _refused(path, rule)
    p = found[0]
    assert (p.line, p.column, p.sheet) == (line, column, sheet)
    assert value in p.value
    for w in words:
        assert w in p.message
    if sheet is not None:  # every problem of an Excel file names the sheet it read
        assert all(q.sheet == sheet for q in exc.problems)
        assert str(p).startswith(f"sheet {sheet!r}, row {line}, patient ")
    _check_cli(path, rule, sheet)
    assert _state(path) == before


@pytest.mark.parametrize("name, rule, line, column, value, words", TEXT, ids=[f"{c[0]}:{c[3]}" for c in TEXT])
def test_numbers_and_dates_only_in_ascii_digits(name, rule, line, column, value, words):
    path = HERE / name
    before = _state(path)
    _, found = _refused(path, rule)
    (p,) = [q for q in found if q.column == column]
    assert (p.line, p.value) == (line, value) and p.patient_id
    assert all(w in p.message for w in words) and value in p.message
    _check_cli(path, rule)
    assert _state(path) == before


@pytest.mark.parametrize("text", ["２０１５-０１-０２", "٢٠١٥-٠١-٠٢", "2015-0１-02", "２０１５/０１/０２"])
def test_parse_date_reads_ascii_digits_only(text):
    assert parse_date(text)[0] is None


@pytest.mark.parametrize("dtype", [object, "string"])
def test_frames_refuse_the_same_digits(dtype):
    frame = pd.read_csv(HERE / "valid_months.csv", dtype=str, keep_default_na=False)
    frame.loc[1, "os_months"] = "1_5"
    frame.loc[2, "os_months"] = "１２"
    frame["os_months"] = frame["os_months"].astype(dtype)
    with pytest.raises(CohortError) as info:
        load_cohort(frame)
    got = {(p.line, p.rule, p.value) for p in info.value.problems if p.column == "os_months"}
    assert got == {(3, "not_a_number", "1_5"), (4, "non_ascii_digits", "１２")}


def test_a_pipe_and_devices_are_refused_without_reading(cases, tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this system")
    pipe = cases / "pipe.csv"
    before = _state(pipe)
    _, (p,) = _refused(pipe, "unreadable_file")
    assert "named pipe (FIFO)" in p.message and p.value == str(pipe)
    _check_cli(pipe, "unreadable_file")
    assert _state(pipe) == before
    for device in ("/dev/zero", "/dev/null"):
        if os.path.exists(device):
            _, (p,) = _refused(device, "unreadable_file")
            assert "character device" in p.message


def test_declared_encoding_reads_the_wide_files(cases):
    assert load_cohort(cases / "utf16le_no_bom.csv", encoding="utf-16-le").n_patients == 5
    assert load_cohort(cases / "utf32_bom.csv", encoding="utf-32").n_patients == 5


@pytest.mark.parametrize("encoding, words", [("hex", "not a text encoding"), ("no-such-codec", "unknown encoding"),
                                             ("utf-16", "byte-order mark")])
def test_a_wrong_encoding_argument_is_a_message(encoding, words):
    _, (p,) = _refused(HERE / "valid_months.csv", "unreadable_encoding", encoding=encoding)
    assert words in p.message and p.value == encoding


def test_random_nul_bytes_stay_binary_data(tmp_path):
    path = tmp_path / "noise.csv"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _, (p,) = _refused(path, "not_a_table")
    assert "binary data" in p.message


@pytest.mark.parametrize("text, words", [
    ("a," * 600_000, "the first line is longer than"),  # no line break: never parsed as one huge row
    ("a," * 20_000 + "\n" + "1," * 20_000 + "\n", "the header line has 20,001 fields"),
])
def test_runaway_lines_are_refused_before_parsing(tmp_path, text, words):
    path = tmp_path / "runaway.csv"
    path.write_text(text, encoding="utf-8")
    before = _state(path)
    _, (p,) = _refused(path, "not_a_table")
    assert words in p.message
    _check_cli(path, "not_a_table")
    assert _state(path) == before


def test_unsupported_arrow_types():
    pa = pytest.importorskip("pyarrow")
    assert unsupported_type(pa.dictionary(pa.int8(), pa.list_(pa.int64()))) == "lists"
    assert unsupported_type(pa.large_binary()) == "bytes"
    for ok in (pa.dictionary(pa.int8(), pa.string()), pa.int64(), pa.float32(), pa.string(), pa.date32(),
               pa.timestamp("ns", tz="UTC"), pa.bool_(), pa.null(), pa.decimal128(5, 2)):
        assert unsupported_type(ok) is None, ok


def test_list_cells_in_a_frame_are_problems_not_a_crash():
    frame = pd.read_csv(HERE / "valid_months.csv")
    frame["os_months"] = [np.array([1.0, 2.0])] + [[3.0]] * (len(frame) - 1)
    with pytest.raises(CohortError) as info:
        load_cohort(frame)
    assert {p.rule for p in info.value.problems if p.column == "os_months"} == {"not_a_number"}


def test_the_excel_sheet_read_is_named_and_explained(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active["A1"] = "read me first"
    book.create_sheet("Patients")["A1"] = "patient_id"
    path = tmp_path / "two_sheets.xlsx"
    book.save(path)
    _, (p,) = _refused(path, "empty_file")
    assert p.sheet == "Notes" and "rename the patients' sheet 'cohort'" in p.message
    assert str(p).startswith("sheet 'Notes', row 1")


def _bad_csv(path: Path, n: int, m: int = 0) -> None:
    """``n`` patients with text in pfs1_months, ``m`` of them also with 'yes' in os_event."""
    lines = ["patient_id,pfs1_months,pfs1_event,failure_pattern,os_months,os_event"]
    lines += [f"P{i:05d},x{i % 7},0,,{10 + i % 5},{'yes' if i < m else 0}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_console_list_is_capped_with_counts_and_a_pointer(tmp_path):
    path = tmp_path / "bad.csv"
    _bad_csv(path, 100, 20)
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    err = info.value
    assert len(err.problems) == err.problems.total == 120
    text = str(err)
    assert text.splitlines()[0] == "bad.csv: 120 error(s), 0 warning(s)"
    assert text.count("->") == problems_module.SHOWN
    rest = Counter((p.rule, p.column) for p in err.problems[problems_module.SHOWN:])
    assert "... and 70 more problem(s), by rule and column:" in text
    for (rule, column), n in rest.items():
        assert f"{n:>11,}  {rule} in {column}" in text
    assert "--problems-file PATH" in text
    result = CliRunner().invoke(analyze, [str(path)])
    assert result.exit_code == 2 and result.stderr.count("->") == problems_module.SHOWN


def test_full_list_written_atomically(tmp_path):
    path = tmp_path / "bad.csv"
    _bad_csv(path, 60, 3)
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    problems = info.value.problems
    out = tmp_path / "out" / "problems.csv"
    out.parent.mkdir()
    out.write_text("a user's own file\n")
    with pytest.raises(InputError, match="not a problems file failpattern wrote"):  # never overwritten
        write_problems(problems, out)
    assert out.read_text() == "a user's own file\n"
    out.unlink()
    assert write_problems(problems[:1], out) == out
    assert write_problems(problems, out) == out  # a problems file failpattern wrote is replaced
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["line"]), r["patient_id"], r["column"], r["value"], r["rule"], r["message"]) for r in rows] == \
        [(p.line, p.patient_id, p.column, p.value, p.rule, p.message) for p in problems]
    assert sorted(os.listdir(out.parent)) == ["problems.csv"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~umask  # the usual permissions, not a temp file's

    def broken():  # a failure while writing leaves the previous file as it was
        yield problems[0]
        raise RuntimeError("disk full")

    before = out.read_bytes()
    with pytest.raises(RuntimeError):
        write_problems(broken(), out)
    assert out.read_bytes() == before and sorted(os.listdir(out.parent)) == ["problems.csv"]
    cohort_bytes = path.read_bytes()
    with pytest.raises(InputError, match="the cohort file itself"):  # --problems-file FILE by mistake
        write_problems(problems, path)
    assert path.read_bytes() == cohort_bytes
    with pytest.raises(InputError, match="does not exist"):
        write_problems(problems, tmp_path / "nowhere" / "p.csv")
    with pytest.raises(InputError, match="is a folder"):
        write_problems(problems, out.parent)


@pytest.mark.parametrize("kind", ["csv", "frame"])
def test_problems_beyond_the_limit_are_counted_not_kept(monkeypatch, tmp_path, kind):
    monkeypatch.setattr(problems_module, "DETAIL_LIMIT", 5)
    path = tmp_path / "bad.csv"
    _bad_csv(path, 30, 8)
    source = path if kind == "csv" else pd.read_csv(path, dtype=str)
    with pytest.raises(CohortError) as info:
        load_cohort(source)
    problems = info.value.problems
    kept = Counter((p.rule, p.column) for p in problems)
    assert kept == {("not_a_number", "pfs1_months"): 5, ("not_binary", "os_event"): 5}
    assert problems.counts[("not_a_number", "pfs1_months", "error")] == 30
    assert problems.counts[("not_binary", "os_event", "error")] == 8
    assert [p.line for p in problems if p.rule == "not_a_number"] == [2, 3, 4, 5, 6]  # the first ones
    text = format_problems(problems, "bad.csv")
    assert text.startswith("bad.csv: 38 error(s)") and "28 more problem(s)" in text
    out = write_problems(problems, tmp_path / "p.csv")
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 + 2
    assert rows[-1]["message"].startswith("25 more problem(s) of this rule in this column") or \
        rows[-2]["message"].startswith("25 more problem(s) of this rule in this column")


def test_problem_log_counts_every_problem():
    log = ProblemLog("x", limit=2)
    for i in range(5):
        log.add("not_a_number", "m", line=i + 2, column="age_years", value=i)
    log.count("not_a_number", "age_years", 10)
    assert len(log.problems) == 2 and log.sorted().total == 15 and log.has_errors


# --- the streaming CSV reader gives what the whole-file reader gave -----------------------------

def _reference_csv(path: Path, encoding=None):
    """The previous CSV reader (whole text, every cell a str): header, rows, lines, ragged, problems."""
    log = ProblemLog(path.name)
    data = path.read_bytes()
    if not data.strip() or b"\x00" in data[:4096] or data.startswith(b"PK\x03\x04"):
        return None
    enc = encoding or ("utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig")
    try:
        text = data.decode(enc)
    except UnicodeDecodeError:
        return None
    if text.lstrip()[:1] in ("{", "["):
        return None
    first = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    delimiter = "\t" if path.suffix == ".tsv" else max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header, rows, lines, ragged, start = None, [], [], set(), 1
    for record in reader:
        line, start = start, reader.line_num + 1
        if all(not v.strip() for v in record):
            continue
        if header is None:
            header = [h.strip() for h in record]
            continue
        if len(record) != len(header):
            extra = record[len(header):]
            if len(record) > len(header) and all(not v.strip() for v in extra):
                record = record[: len(header)]
            else:
                ragged.add(len(rows))
                log.add("ragged_row", "x", line=line, value=delimiter.join(record))
                record = (record + [""] * len(header))[: len(header)]
        rows.append(record)
        lines.append(line)
    if header is None or not rows:
        return None
    return header, rows, lines, ragged, [(p.rule, p.line, p.value) for p in log.problems]


def _streamed(path: Path, encoding=None):
    log = ProblemLog(path.name)
    raw = read_table(path, encoding, log)
    if raw is None:
        return None
    rows = [list(r) for r in zip(*(raw.column(j).tolist() for j in range(len(raw.header))))]
    return raw.header, rows, raw.lines, raw.ragged, [(p.rule, p.line, p.value) for p in log.problems]


def _awkward(folder: Path) -> list[Path]:
    """CSV files with what trips line counting: quoted line breaks (CRLF too), blank lines of spaces,
    a BOM, trailing separators, ragged rows across the reader's chunk boundary, semicolons, tabs."""
    header = "patient_id,pfs1_months,pfs1_event,notes"
    body = [f'P{i},{i % 13}.5,{i % 2},"line one\r\nline two, ""quoted"""' if i % 997 == 0 else
            f"P{i},{i % 13}.5,{i % 2},   " for i in range(20_000)]
    body[4095] += ",extra"
    body[4096] = "P4096,1.5"
    body[5000] = "   ,  ,  "
    body[12000] = ""
    out = []
    for name, text, enc in (("awkward.csv", "\n".join([header] + body) + "\n", "utf-8"),
                            ("bom_crlf.csv", "\r\n".join([header] + body[:300]) + "\r\n", "utf-8-sig"),
                            ("semicolons.csv", "\n".join(line.replace(",", ";") for line in [header] + body[:50]),
                             "utf-8"),
                            ("tabs.tsv", "\n".join(line.replace(",", "\t") for line in [header] + body[:50]),
                             "utf-8"),
                            ("utf16.csv", "\n".join([header] + body[:100]), "utf-16"),
                            ("trailing.csv", "\n\n" + header + ",,\n" + "\n".join(b + ",," for b in body[:40]),
                             "utf-8")):
        path = folder / name
        path.write_bytes(text.encode(enc))
        out.append(path)
    return out


def test_streaming_reader_matches_the_whole_file_reader(tmp_path):
    paths = sorted(p for p in HERE.iterdir() if p.suffix in (".csv", ".tsv", ".txt")) + _awkward(tmp_path)
    compared = 0
    for path in paths:
        ref = _reference_csv(path)
        if ref is None:
            continue
        got = _streamed(path)
        assert got == ref, path.name
        compared += 1
    assert compared >= 60


def test_mostly_distinct_columns_kept_joined_read_the_same(monkeypatch, tmp_path):
    """A column of mostly distinct texts is kept as joined text, not a dictionary: same cells, same cohort."""
    monkeypatch.setattr(read_module, "_PLAIN_AFTER", 8)
    (awkward, *_) = _awkward(tmp_path)
    got = _streamed(awkward)
    assert got == _reference_csv(awkward)
    raw = read_table(awkward, None, ProblemLog("x"))
    assert not isinstance(raw.array(0).uniques, list)  # patient_id: joined
    assert isinstance(raw.array(2).uniques, list)  # pfs1_event: two distinct values
    joined = load_cohort(CANONICAL).data
    monkeypatch.setattr(read_module, "_PLAIN_AFTER", 1 << 16)
    pd.testing.assert_frame_equal(joined, load_cohort(CANONICAL).data)


def test_reading_a_csv_costs_a_small_multiple_of_the_file(tmp_path):
    """Reading a 50,000-patient file peaks below 3 times its size (a str per cell took 16 times);
    most of it is the rows being parsed, a fixed amount, so larger files cost relatively less."""
    lines = CANONICAL.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write(header + "\n")
        for k in range(50_000):
            f.write(f"Q{k:06d}," + body[k % len(body)].split(",", 1)[1] + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        raw = read_table(path, None, ProblemLog("big.csv"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raw.n_rows == 50_000
    assert peak < 3 * size, (peak, size)


@pytest.mark.parametrize("kind", ["csv", "frame"])
def test_problems_file_streams_every_problem_beyond_the_limits(monkeypatch, tmp_path, kind):
    monkeypatch.setattr(problems_module, "DETAIL_LIMIT", 5)
    path = tmp_path / "bad.csv"
    _bad_csv(path, 30, 8)
    source = path if kind == "csv" else pd.read_csv(path, dtype=str)
    out = tmp_path / "every.csv"
    with pytest.raises(CohortError) as info:
        load_cohort(source, problems_file=out)
    assert len(info.value.problems) == 10  # memory: the detail limit still holds
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert Counter((r["rule"], r["column"]) for r in rows) == {("not_a_number", "pfs1_months"): 30,
                                                                ("not_binary", "os_event"): 8}
    assert sorted(int(r["line"]) for r in rows if r["rule"] == "not_a_number") == list(range(2, 32))
    assert all(r["message"] and r["patient_id"].startswith("P") for r in rows)
    assert sorted(os.listdir(tmp_path)) == ["bad.csv", "every.csv"]  # no temporary left


def test_problems_file_of_a_valid_cohort_is_a_header_and_the_cli_writes_it(tmp_path):
    from failpattern._resources import synthetic_path

    out = tmp_path / "none.csv"
    load_cohort(synthetic_path("ni2019_exact.csv"), problems_file=out)
    assert out.read_text(encoding="utf-8-sig").splitlines() == [",".join(problems_module._FIELDS)]
    bad = tmp_path / "bad.csv"
    _bad_csv(bad, 80, 0)
    before = bad.read_bytes()
    listed = tmp_path / "listed.csv"
    r = CliRunner().invoke(analyze, [str(bad), "--problems-file", str(listed)])
    assert r.exit_code == 2 and f"every problem listed in {listed}" in r.stderr
    assert len(listed.read_text(encoding="utf-8-sig").splitlines()) == 1 + 80
    same = CliRunner().invoke(analyze, [str(bad), "--problems-file", str(bad)])
    assert same.exit_code == 2 and "is the cohort file itself" in same.stderr and "Traceback" not in same.output
    assert bad.read_bytes() == before
