"""Spreadsheets and tables: Excel (.xlsx, .xlsm), OpenDocument (.ods), CSV and TSV.

Each is read by the library that maintains its format: openpyxl (read-only, formulas as
the values Excel cached), odfpy, and the standard library's ``csv`` (the delimiter sniffed
from the first lines: comma, semicolon, tab or bar). A sheet is a section (``# Sheet``) no
chunk crosses; each row is one line, every cell written with its column's header
(``Region: North | Sales: 1200``), so a row is found by a header's word as well as by its
values. The header is the sheet's first non-empty row when every cell of it is text and
rows follow; else the columns are named A, B, C... Huge sheets are bounded: at most
MAX_ROWS rows a sheet and MAX_CELLS cells a file, and a note says what was left out.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator

from .errors import Document, Skip
from .text import decode_text

__all__ = ["read_xlsx", "read_ods", "read_csv", "MAX_ROWS", "MAX_CELLS", "MAX_COLUMNS"]

MAX_ROWS = 20_000  # rows read from one sheet
MAX_CELLS = 500_000  # cells read from one file
MAX_COLUMNS = 200  # columns read from one row (a sheet's 16,384 empty columns are not)
_CELL_CHARS = 2_000  # characters kept of one cell


def _column_name(n: int) -> str:
    name = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(65 + rest) + name
    return name


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    return " ".join(str(value).split())[:_CELL_CHARS]


class _Book:
    """The text of a workbook as it is read: sections, rows, and what the caps left out."""

    def __init__(self, notes: list[str]):
        self.lines: list[str] = []
        self.notes = notes
        self.cells = 0
        self.sheets = 0

    def sheet(self, name: str | None, rows: Iterable[Iterable[object]]) -> None:
        self.sheets += 1
        if name is not None:
            self.lines.append(f"# {name}")
        header: list[str] | None = None
        kept = cut = 0
        for raw in rows:
            cells = [_cell(v) for v in _first(raw, MAX_COLUMNS)]
            while cells and not cells[-1]:
                cells.pop()
            if not cells:
                continue
            if header is None and kept == 0 and all(not c or not _numeric(c) for c in cells):
                header = cells
                self.lines.append(" | ".join(c for c in cells if c))
                kept += 1
                continue
            if kept >= MAX_ROWS or self.cells + len(cells) > MAX_CELLS:
                cut += 1
                continue
            names = header or []
            self.lines.append(
                " | ".join(
                    f"{names[i] if i < len(names) and names[i] else _column_name(i)}: {c}"
                    for i, c in enumerate(cells)
                    if c
                )
            )
            self.cells += len(cells)
            kept += 1
        if cut:
            where = f"sheet {name!r}" if name is not None else "the table"
            self.notes.append(f"{where}: {cut:,} rows left out past {kept:,} (a sheet is read up to {MAX_ROWS:,} rows)")

    def document(self, title: str | None = None) -> list[Document]:
        metadata = {"sheets": self.sheets} if self.sheets else {}
        return [Document("", "\n".join(self.lines), title=title, metadata=metadata)]


def _first(values: Iterable[object], n: int) -> Iterator[object]:
    for i, value in enumerate(values):
        if i >= n:
            return
        yield value


def _numeric(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def read_xlsx(data: bytes, notes: list[str]) -> list[Document]:
    import openpyxl

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise Skip("corrupt Excel workbook (not a zip container)")
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, InvalidFileException, lxml errors...
        raise Skip(f"corrupt Excel workbook ({type(exc).__name__})") from exc
    book = _Book(notes)
    try:
        for sheet in workbook.worksheets:
            book.sheet(sheet.title, sheet.iter_rows(values_only=True))
    except Exception as exc:  # a damaged sheet: what was read before it is kept
        notes.append(f"a damaged sheet: read up to there ({type(exc).__name__})")
    finally:
        workbook.close()
    title = workbook.properties.title if workbook.properties is not None else None
    return book.document(title or None)


def read_ods(data: bytes, notes: list[str]) -> list[Document]:
    from odf import teletype
    from odf.namespaces import TABLENS
    from odf.opendocument import load
    from odf.table import Table, TableCell, TableRow

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise Skip("corrupt OpenDocument spreadsheet (not a zip container)")
    try:
        document = load(io.BytesIO(data))
    except Exception as exc:
        raise Skip("corrupt OpenDocument spreadsheet") from exc

    def repeated(node, attribute: str, most: int) -> int:
        value = node.attributes.get((TABLENS, attribute))
        return min(int(value), most) if value and str(value).isdigit() else 1

    def rows(table) -> Iterator[list[str]]:
        for row in table.getElementsByType(TableRow):
            cells: list[str] = []
            for cell in row.getElementsByType(TableCell):
                cells += [teletype.extractText(cell)] * repeated(cell, "number-columns-repeated", MAX_COLUMNS)
                if len(cells) >= MAX_COLUMNS:
                    break
            for _ in range(repeated(row, "number-rows-repeated", 1 if not any(c.strip() for c in cells) else MAX_ROWS)):
                yield cells

    book = _Book(notes)
    for table in document.spreadsheet.getElementsByType(Table):
        book.sheet(table.getAttribute("name") or None, rows(table))
    return book.document()


def read_csv(data: bytes, notes: list[str]) -> list[Document]:
    text = decode_text(data, notes)
    delimiter = ","
    try:
        delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
    except csv.Error:
        pass  # one column, or a file the sniffer cannot tell: commas
    book = _Book(notes)
    try:
        book.sheet(None, csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        notes.append(f"read up to a malformed line ({exc})")
    book.sheets = 0
    return book.document()
