"""Spreadsheet-safe streaming exports: CSV and XLSX from an iterator of rows.

"Safe in a spreadsheet" means that no exported cell can run as a formula when someone
opens the file in Excel, LibreOffice or Google Sheets:

- CSV follows the OWASP CSV-injection rule: text that starts with ``= + - @``, a tab or
  a carriage return gets a leading ``'``, so the spreadsheet shows it as text.
  Numbers are left alone, so ``-3`` stays a number.
- XLSX writes every non-number as a string cell, never as a formula, so ``=1+1``
  is shown as the text ``=1+1``; URLs do not become hyperlinks either.

Everything streams: CSV pulls ``batch`` rows at a time from the caller's iterator and
sends each batch out as one chunk before pulling the next, and XLSX is written with
xlsxwriter's ``constant_memory`` mode, which flushes each row to a temporary file.
Memory stays flat whether the export has ten rows or a million.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import BinaryIO
from urllib.parse import quote

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_PREFIXES)

# Excel's hard limits; xlsxwriter silently drops cells beyond them.
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384
EXCEL_MAX_CELL_TEXT = 32_767  # in UTF-16 code units, as Excel counts
EXCEL_MAX_SHEET_NAME = 31

# Integers beyond this lose digits as Excel doubles, so they are written as text.
_EXACT_INT_LIMIT = 2**53

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f\x7f]")
_FALLBACK_FORBIDDEN = frozenset('"\\;')


class ExportTooLarge(ValueError):
    """The rows do not fit in one Excel worksheet."""


def neutralise(value: object) -> str:
    """Return the CSV text for one cell, with formula-like text prefixed by ``'``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    text = _as_text(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_chunks(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    bom: bool = False,
    batch: int = 1000,
) -> Iterator[str]:
    """Yield CSV text: the header alone first, then ``batch`` rows per chunk."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")

    # The header goes out on its own so a streaming response starts at once.
    writer.writerow(map(neutralise, header))
    yield ("\ufeff" if bom else "") + _drain(buffer)

    rows = iter(rows)
    while block := list(itertools.islice(rows, batch)):
        text = _csv_block(block)
        if text is None:
            writer.writerows(map(neutralise, row) for row in block)
            text = _drain(buffer)
        yield text


# A block of rows is written a column at a time: a column's cells share a type, so
# most columns take a few C-level passes (repr of every number, a search of the
# column's joined text) instead of Python work per cell. Quoting follows
# csv.QUOTE_MINIMAL exactly: a cell with a comma, quote, CR or LF is quoted, with
# its quotes doubled.
_NONE = type(None)
_NUMBERS_OR_NONE = frozenset({int, float, _NONE})
_TEXT_OR_NONE = frozenset({str, _NONE})
_YES_NO = {True: "yes", False: "no"}


def _csv_block(block: list[Sequence[object]]) -> str | None:
    """The rows as CSV text, or None to leave them to the csv module.

    That is for rows of unequal length, and for a single column (where csv quotes
    an empty cell so the line is not blank).
    """
    widths = set(map(len, block))
    if len(widths) != 1 or widths.pop() < 2:
        return None
    columns = [_csv_column(values) for values in zip(*block)]
    return "\r\n".join(map(",".join, zip(*columns))) + "\r\n"


def _csv_column(values: tuple) -> Sequence[str]:
    """One column's cells as :func:`neutralise` gives them, quoted where csv would."""
    kinds = set(map(type, values))
    if kinds <= _NUMBERS_OR_NONE:
        # Never quoted: repr of an int or float has no comma, quote or line break.
        if _NONE in kinds:
            return ["" if value is None else repr(value) for value in values]
        return list(map(repr, values))
    if kinds == {bool}:
        return [_YES_NO[value] for value in values]
    if kinds <= _TEXT_OR_NONE:
        if _NONE in kinds:
            values = ["" if value is None else value for value in values]
        if not _FORMULA_FIRST.isdisjoint({value[:1] for value in values}):
            values = [
                "'" + value if value[:1] in _FORMULA_FIRST else value
                for value in values
            ]
    else:
        values = [_csv_cell(value) for value in values]
    text = "\n".join(values)
    if (
        "," in text
        or '"' in text
        or "\r" in text
        or text.count("\n") != len(values) - 1
    ):
        # Quote each distinct text once: such columns (titles) repeat a few values.
        quoted = {value: _quoted(value) for value in set(values)}
        return list(map(quoted.__getitem__, values))
    return values


def _csv_cell(value: object) -> str:
    """:func:`neutralise` for one cell, with the common types inline."""
    kind = type(value)
    if kind is str:
        return "'" + value if value[:1] in _FORMULA_FIRST else value
    if kind is float or kind is int:
        return repr(value)
    if value is None:
        return ""
    return neutralise(value)


def _quoted(text: str) -> str:
    if "," in text or '"' in text or "\r" in text or "\n" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_bytes(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    bom: bool = False,
) -> Iterator[bytes]:
    """Yield the chunks of :func:`csv_chunks` encoded as UTF-8."""
    for chunk in csv_chunks(header, rows, bom=bom):
        yield chunk.encode("utf-8")


def write_xlsx(
    target: str | os.PathLike[str] | BinaryIO,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    sheet: str = "Export",
) -> int:
    """Write one worksheet with a bold, frozen header; return the number of data rows.

    If ``rows`` raises, or there are more rows or columns than Excel allows
    (:class:`ExportTooLarge`), nothing is written to ``target``.
    """
    # A directory of our own, inside the default temp location, so the row data
    # xlsxwriter spools to disk is removed even when the export fails half-way.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmpdir:
        workbook = xlsxwriter.Workbook(
            target,
            {
                "constant_memory": True,
                "in_memory": False,
                "tmpdir": tmpdir,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        worksheet = workbook.add_worksheet(_sheet_name(sheet))
        written = 0
        try:
            worksheet.freeze_panes(1, 0)
            _write_row(worksheet, 0, header, workbook.add_format({"bold": True}))
            for written, row in enumerate(rows, start=1):
                if written >= EXCEL_MAX_ROWS:
                    raise ExportTooLarge(
                        f"more than {EXCEL_MAX_ROWS - 1:,} rows do not fit in a sheet"
                    )
                _write_row(worksheet, written, row)
        except BaseException:
            # close() would write a truncated file to target; only release the
            # spool file (xlsxwriter has no public call for that) so it can go.
            worksheet._opt_close()
            raise
        workbook.close()
    return written


def content_disposition(filename: str) -> str:
    """Return an ``attachment`` header value with ASCII and RFC 5987 UTF-8 names."""
    cleaned = _CONTROL_CHARS.sub("", filename).strip()
    fallback = "".join(_ascii_char(ch) for ch in unicodedata.normalize("NFKD", cleaned))
    fallback = fallback.strip() or "download"
    encoded = quote(cleaned or fallback, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def export_filename(kind: str, scope: str | None, day: date, extension: str) -> str:
    """Return e.g. ``attempts-phishing-basics-2026-11-27.csv``; no scope means "all"."""
    if scope is None or not scope.strip():
        part = "all"
    else:
        # A scope with no ASCII letters or digits must not pass itself off as "all".
        part = _slug(scope) or "unnamed"
    return f"{kind}-{part}-{day.isoformat()}.{extension.lstrip('.')}"


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    return str(value)


def _sheet_name(name: str) -> str:
    """Return ``name`` made acceptable to Excel as a worksheet name."""
    cleaned = _SHEET_NAME_FORBIDDEN.sub("_", name).strip().strip("'")
    cleaned = _fit_utf16(cleaned, EXCEL_MAX_SHEET_NAME).strip().strip("'")
    if not cleaned:
        return "Export"
    # Excel reserves "History" for its change-tracking sheet.
    return cleaned + "_" if cleaned.lower() == "history" else cleaned


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _write_row(
    worksheet: Worksheet,
    row: int,
    values: Sequence[object],
    cell_format: Format | None = None,
) -> None:
    if len(values) > EXCEL_MAX_COLUMNS:
        raise ExportTooLarge(
            f"more than {EXCEL_MAX_COLUMNS:,} columns do not fit in a worksheet"
        )
    for col, value in enumerate(values):
        if _is_exact_number(value):
            worksheet.write_number(row, col, value, cell_format)
            continue
        text = _as_text(value)
        if text:
            # write_string, never write(): the text is stored as a string cell and
            # can never become a formula, whatever it starts with.
            worksheet.write_string(
                row, col, _fit_utf16(text, EXCEL_MAX_CELL_TEXT), cell_format
            )


def _is_exact_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -_EXACT_INT_LIMIT <= value <= _EXACT_INT_LIMIT
    # Excel has no NaN or infinity; those go out as text.
    return isinstance(value, float) and math.isfinite(value)


def _fit_utf16(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` UTF-16 code units without splitting a character."""
    if len(text) * 2 <= limit:
        return text
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


def _ascii_char(char: str) -> str:
    if unicodedata.combining(char) or char in _FALLBACK_FORBIDDEN:
        return ""
    return char if char.isascii() else "_"


def _slug(text: str, limit: int = 60) -> str:
    ascii_text = (
        unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    )
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:limit].rstrip("-")
