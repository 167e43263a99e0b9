import csv
import io
import itertools
import tempfile
import tracemalloc
from datetime import date, datetime, timedelta, timezone
from urllib.parse import unquote

import openpyxl
import pytest

from quiz import exports
from quiz.exports import (
    ExportTooLarge,
    content_disposition,
    csv_bytes,
    csv_chunks,
    export_filename,
    neutralise,
    write_xlsx,
)

CET = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        (-1, "-1"),  # a real negative number stays a number
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),  # only the first character matters
        (None, ""),
        (True, "yes"),
        (False, "no"),
        (3.5, "3.5"),
        (0, "0"),
        (datetime(2026, 11, 27, 10, 30, 15, 999, tzinfo=CET), "2026-11-27T09:30:15Z"),
        (datetime(2026, 11, 27, 10, 30, 15), "2026-11-27T10:30:15Z"),
        (date(2026, 11, 27), "2026-11-27"),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csv_header_first_and_cells_neutralised():
    rows = [["=1+1", -2, "-2", None, True], ["@x", 3.5, "plain", "", False]]
    text = "".join(csv_chunks(["=name", "score", "note", "empty", "passed"], rows))
    assert read_csv(text) == [
        ["'=name", "score", "note", "empty", "passed"],
        ["'=1+1", "-2", "'-2", "", "yes"],
        ["'@x", "3.5", "plain", "", "no"],
    ]


@pytest.mark.parametrize(
    "cell",
    ["a,b", 'say "hi"', "line one\nline two", "cr\r\nlf", " padded ", "ümlaut ✓"],
)
def test_csv_quoting_round_trips(cell):
    text = "".join(csv_chunks(["cell", "after"], [[cell, "x"]]))
    assert read_csv(text)[1] == [cell, "x"]


def test_csv_lines_end_with_crlf():
    text = "".join(csv_chunks(["a", "b"], [[1, 2], [3, 4]]))
    assert text == "a,b\r\n1,2\r\n3,4\r\n"


@pytest.mark.parametrize(("bom", "start"), [(False, "a\r\n"), (True, "\ufeffa\r\n")])
def test_csv_bom_only_when_asked(bom, start):
    chunks = list(csv_chunks(["a"], [["x"]], bom=bom))
    assert chunks[0] == start
    assert "\ufeff" not in "".join(chunks[1:])


def test_csv_bytes_are_utf8():
    data = b"".join(csv_bytes(["name"], [["Zoë"]], bom=True))
    assert data == "\ufeffname\r\nZoë\r\n".encode()


def test_csv_with_no_rows_is_just_the_header():
    assert list(csv_chunks(["a", "b"], iter([]))) == ["a,b\r\n"]


def test_csv_streams_rows_lazily():
    pulled = 0

    def rows():
        nonlocal pulled
        for i in range(200_000):
            pulled += 1
            yield [i, f"user{i}", "=1+1"]

    chunks = csv_chunks(["id", "name", "formula"], rows(), batch=1000)
    header, first_batch = itertools.islice(chunks, 2)

    assert header == "id,name,formula\r\n"
    assert first_batch.count("\r\n") == 1000
    assert pulled == 1000  # the other 199,000 rows are still in the generator

    rest = sum(chunk.count("\r\n") for chunk in chunks)
    assert 1000 + rest == 200_000
    assert pulled == 200_000


def csv_module_text(header, rows) -> str:
    """What csv.writer writes for the neutralised cells: the reference format."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    for row in [header, *rows]:
        writer.writerow([neutralise(value) for value in row])
    return buffer.getvalue()


TRICKY_CELLS = [
    "plain",
    "a,b",
    'say "hi"',
    "line one\nline two",
    "cr\rcr",
    "=1+1",
    "-2",
    "\t@x",
    "",
    None,
    -3,
    0,
    2**70,
    3.5,
    -0.0,
    float("nan"),
    float("inf"),
    True,
    False,
    datetime(2026, 11, 27, 10, 30, 15, 999, tzinfo=CET),
    date(2026, 11, 27),
]


@pytest.mark.parametrize(
    "rows",
    [
        # Columns of one type (the common case), with and without cells to quote.
        [
            [i, f"user{i}", "Title, with a comma", 1.5 * i, i % 2 == 0]
            for i in range(50)
        ],
        [[i, None if i % 3 else "x", None if i % 2 else 2.5] for i in range(20)],
        [["=1+1", '"q"'], ["ok", "fine"], ["-1", "a\nb"]],
        # Mixed types in a column.
        [[cell, cell, "x"] for cell in TRICKY_CELLS],
        [list(TRICKY_CELLS), list(reversed(TRICKY_CELLS))],
        # Rows of unequal length, a single column, empty rows.
        [["a", 1], ["b"], ["c", 2, "=3"]],
        [[""], ["x"], [None]],
        [[], []],
    ],
)
def test_csv_is_what_the_csv_module_writes(rows):
    header = [f"col{i}" for i in range(max(map(len, rows)))]
    for batch in (1, 3, 1000):
        text = "".join(csv_chunks(header, rows, batch=batch))
        assert text == csv_module_text(header, rows)


def load_sheet(target):
    return openpyxl.load_workbook(target).worksheets[0]


PAYLOADS = ["=1+1", '=HYPERLINK("http://x")', "+1", "-1", "@x", "http://example.com"]


def test_xlsx_formulas_stay_text(tmp_path):
    target = tmp_path / "out.xlsx"
    write_xlsx(target, [f"col{i}" for i in range(len(PAYLOADS))], [PAYLOADS])

    cells = list(load_sheet(target)[2])
    assert [cell.data_type for cell in cells] == ["s"] * len(PAYLOADS)
    assert [cell.value for cell in cells] == PAYLOADS
    assert all(cell.hyperlink is None for cell in cells)


def test_xlsx_cell_types(tmp_path):
    target = tmp_path / "out.xlsx"
    when = datetime(2026, 11, 27, 10, 30, tzinfo=CET)
    count = write_xlsx(
        target,
        ["n", "x", "neg", "none", "empty", "bool", "when", "huge", "nan"],
        [[7, 3.5, -2, None, "", True, when, 2**60, float("nan")]],
    )

    row = load_sheet(target)[2]
    assert count == 1
    assert [(c.value, c.data_type) for c in row[:3]] == [
        (7, "n"),
        (3.5, "n"),
        (-2, "n"),
    ]
    assert row[3].value is None
    assert row[4].value is None
    assert row[5].value == "yes"
    assert row[6].value == "2026-11-27T09:30:00Z"  # no quote prefix in XLSX
    # Excel doubles would lose digits or have no NaN, so these go out as text.
    assert (row[7].value, row[7].data_type) == (str(2**60), "s")
    assert (row[8].value, row[8].data_type) == ("nan", "s")


def test_xlsx_header_is_bold_and_frozen(tmp_path):
    target = tmp_path / "out.xlsx"
    write_xlsx(target, ["player", "score"], [["ana", 3]])

    sheet = load_sheet(target)
    assert [cell.value for cell in sheet[1]] == ["player", "score"]
    assert all(cell.font.b for cell in sheet[1])
    assert not sheet["A2"].font.b
    assert sheet.freeze_panes == "A2"


@pytest.mark.parametrize(
    ("text", "expected_length"),
    [
        ("x" * 40_000, 32_767),
        ("x" * 32_767, 32_767),
        # Excel counts UTF-16 units: an emoji is two, and is never cut in half.
        ("😀" * 20_000, 16_383),
    ],
)
def test_xlsx_long_strings_fit_a_cell(tmp_path, text, expected_length):
    target = tmp_path / "out.xlsx"
    write_xlsx(target, ["long"], [[text]])

    value = load_sheet(target)["A2"].value
    assert len(value) == expected_length
    assert text.startswith(value)


@pytest.mark.parametrize(
    ("sheet", "expected"),
    [
        ("Attempts", "Attempts"),
        ("Phishing: basics?", "Phishing_ basics_"),
        ("a[b]c*d/e\\f", "a_b_c_d_e_f"),
        ("x" * 40, "x" * 31),
        ("'quoted'", "quoted"),
        ("", "Export"),
        ("history", "history_"),
    ],
)
def test_xlsx_sheet_name_is_sanitised(tmp_path, sheet, expected):
    target = tmp_path / "out.xlsx"
    write_xlsx(target, ["a"], [["b"]], sheet=sheet)

    assert openpyxl.load_workbook(target).sheetnames == [expected]


@pytest.mark.parametrize("count", [0, 1])
def test_xlsx_small_exports_are_valid(tmp_path, count):
    target = tmp_path / "out.xlsx"
    assert write_xlsx(target, ["id"], ([i] for i in range(count))) == count

    sheet = load_sheet(target)
    assert sheet.max_row == 1 + count
    assert sheet["A1"].value == "id"


def test_xlsx_to_a_file_object():
    buffer = io.BytesIO()
    assert write_xlsx(buffer, ["id"], [[1], [2]]) == 2

    buffer.seek(0)
    assert [cell.value for cell in load_sheet(buffer)["A"]] == ["id", 1, 2]


def test_xlsx_failing_rows_write_nothing(tmp_path, monkeypatch):
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    target = tmp_path / "out.xlsx"

    def rows():
        yield ["ok"]
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        write_xlsx(target, ["a"], rows())
    assert not target.exists()
    assert list(spool.iterdir()) == []  # no half-written row data left on disk


def test_xlsx_refuses_rows_excel_would_drop(tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "EXCEL_MAX_ROWS", 4)  # header + 3 data rows
    target = tmp_path / "out.xlsx"

    assert write_xlsx(target, ["id"], [[1], [2], [3]]) == 3
    with pytest.raises(ExportTooLarge):
        write_xlsx(target, ["id"], [[1], [2], [3], [4]])


def test_xlsx_memory_stays_flat(tmp_path):
    """constant_memory flushes each row to disk as soon as the next one starts.

    Without it xlsxwriter keeps every cell of the sheet in a dict until close():
    these 200,000 rows peak at about 120 MB that way, and a million rows would take
    a worker's whole memory. Streamed, the peak is well under 1 MB. This checks
    memory, not time.
    """

    def rows():
        for i in range(200_000):
            yield (i, f"user{i}@example.com")

    tracemalloc.start()
    try:
        count = write_xlsx(tmp_path / "big.xlsx", ["id", "email"], rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 200_000
    assert peak < 30 * 1024 * 1024


def utf8_filename(value: str) -> str:
    """The name a browser shows: RFC 6266 clients prefer filename* when present."""
    _, encoded = value.split("; filename*=UTF-8''")
    return unquote(encoded, errors="strict")


@pytest.mark.parametrize(
    ("filename", "fallback", "full_name"),
    [
        ("report.csv", "report.csv", "report.csv"),
        ('say "hi".csv', "say hi.csv", 'say "hi".csv'),
        (
            "evil\r\nSet-Cookie: x=1.csv",
            "evilSet-Cookie: x=1.csv",
            "evilSet-Cookie: x=1.csv",
        ),
        ("a;b\\c.csv", "abc.csv", "a;b\\c.csv"),
        ("Übung – Phishing.xlsx", "Ubung _ Phishing.xlsx", "Übung – Phishing.xlsx"),
        ("日本.csv", "__.csv", "日本.csv"),
        ('"";', "download", '"";'),
    ],
)
def test_content_disposition(filename, fallback, full_name):
    value = content_disposition(filename)

    assert value.isascii()
    assert "\r" not in value and "\n" not in value
    assert value.startswith(f"attachment; filename=\"{fallback}\"; filename*=UTF-8''")
    assert utf8_filename(value) == full_name


@pytest.mark.parametrize(
    ("kind", "scope", "extension", "expected"),
    [
        (
            "attempts",
            "Phishing basics",
            "csv",
            "attempts-phishing-basics-2026-11-27.csv",
        ),
        ("attempts", None, "csv", "attempts-all-2026-11-27.csv"),
        ("attempts", "", "xlsx", "attempts-all-2026-11-27.xlsx"),
        ("attempts", "   ", "csv", "attempts-all-2026-11-27.csv"),
        (
            "attempts",
            "Café / Wi-Fi: 2FA!",
            "csv",
            "attempts-cafe-wi-fi-2fa-2026-11-27.csv",
        ),
        ("attempts", "../../etc/passwd", "csv", "attempts-etc-passwd-2026-11-27.csv"),
        ("attempts", "日本語", "csv", "attempts-unnamed-2026-11-27.csv"),
        ("attempts", "x" * 100, ".csv", f"attempts-{'x' * 60}-2026-11-27.csv"),
        # Cut at 60 characters, never leaving a trailing hyphen.
        ("attempts", "a" * 59 + " b", "csv", f"attempts-{'a' * 59}-2026-11-27.csv"),
    ],
)
def test_export_filename(kind, scope, extension, expected):
    assert export_filename(kind, scope, date(2026, 11, 27), extension) == expected
