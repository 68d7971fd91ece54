"""A streaming XLSX writer for tables of a book's size: every cell's XML built from Arrow
columns by vectorised string kernels, never one Python object per cell.

The package is SpreadsheetML as ECMA-376 Part 1 defines it (§18: workbook, worksheet,
styles, shared strings; the cells of a row as `<c r=".." t=".." s=".."><v>..</v></c>`, a
formula as `<f>` with its cached value in `<v>`). openpyxl in write-only mode takes about
20 s for 100,000 statement lines of 12 typed cells (it makes a Python cell per value);
this writer takes about a second, so workbooks of a national book stay quick to write.

Numbers are written as the exact decimal text of the amount (`12345.67`), so no binary
float is made here: Excel and LibreOffice read that text into their own doubles.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import zipfile
from decimal import Decimal
from enum import IntEnum
from pathlib import Path
from typing import Iterable, Iterator, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carecontracts.money import currency_symbol

MAX_ROWS = 1_048_576  # rows in one Excel worksheet, the heading included
EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 0 in the 1900 date system (dates after Feb 1900)
LARGE_SHEET = 500_000  # rows (or strings) past which a part is written with ZIP64 sizes
CHUNK = 50_000  # rows whose XML is built at once: memory grows with it, not with the table

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE = "http://schemas.openxmlformats.org/package/2006/relationships"
HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Characters XML 1.0 does not allow in text, dropped from strings.
CONTROL = r"[\x{0}-\x{8}\x{B}\x{C}\x{E}-\x{1F}\x{FFFE}\x{FFFF}]"


class Style(IntEnum):
    """The cell formats of a workbook: the index of each in styles.xml's cellXfs."""

    TEXT = 0
    HEADING = 1
    MONEY = 2
    MONEY_TOTAL = 3
    MONTH = 4
    QUANTITY = 5
    RATE = 6
    BOLD = 7
    COUNT = 8
    HEADING_NUMBER = 9
    PERCENT = 10
    PERCENT_2 = 11
    DATE = 12
    HEADING_MONTH = 13
    VARIANCE = 14
    VARIANCE_TOTAL = 15
    # A month's heading as a date that shows its month of the financial year: M1 Apr 2025.
    HEADING_M1 = 16
    HEADING_M2 = 17
    HEADING_M3 = 18
    HEADING_M4 = 19
    HEADING_M5 = 20
    HEADING_M6 = 21
    HEADING_M7 = 22
    HEADING_M8 = 23
    HEADING_M9 = 24
    HEADING_M10 = 25
    HEADING_M11 = 26
    HEADING_M12 = 27


def financial_month_heading(number: int) -> Style:
    """The heading style of month `number` (1 to 12) of the financial year."""
    return Style(Style.HEADING_M1 + number - 1)


# Money with thousands separators, negatives in red with a minus: what finance teams use; in
# the workspace's currency (£ unless it says otherwise).
def money_code(symbol: str = "£") -> str:
    """The number format of money in `symbol`."""
    return f'"{symbol}"#,##0.00;[Red]\\-"{symbol}"#,##0.00'


def variance_code(symbol: str = "£") -> str:
    """A variance to plan: signed, red when adverse; green when favourable comes from the
    sheet's conditional format (FAVOURABLE), as palette colours differ between Excel and LibreOffice."""
    return f'\\+"{symbol}"#,##0.00;[Red]\\-"{symbol}"#,##0.00;"{symbol}"0.00'


MONEY_CODE = money_code()
FAVOURABLE = "FF007F3B"  # NHS green: a favourable variance's font, by conditional format (dxf 0)
MONTH_CODE = "mmm yyyy"
PERCENT_CODES = {1: "0.0%", 2: "0.00%"}  # by decimals shown
DATE_CODE = "yyyy-mm-dd"


def styles_xml(symbol: str) -> str:
    """styles.xml with money in `symbol`."""
    formats = {164: money_code(symbol), 165: MONTH_CODE, 166: "#,##0.00######", 167: "#,##0.00########", 168: PERCENT_CODES[1],
               169: PERCENT_CODES[2], 170: DATE_CODE, 171: variance_code(symbol),
               **{172 + n: f'"M{n + 1} "{MONTH_CODE}' for n in range(12)}}
    return (
        HEAD + f'<styleSheet xmlns="{MAIN}">'
        f'<numFmts count="{len(formats)}">' + "".join(f"<numFmt numFmtId={quoteattr(str(i))} formatCode={quoteattr(code)}/>" for i, code in formats.items()) + "</numFmts>"
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
        '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
        '<fill><patternFill patternType="solid"><fgColor rgb="FFDDE6F0"/><bgColor indexed="64"/></patternFill></fill></fills>'
        '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
        '<border><left/><right/><top style="thin"><color auto="1"/></top><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(Style)}">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="164" fontId="1" fillId="0" borderId="1" xfId="0" applyNumberFormat="1" applyFont="1" applyBorder="1"/>'
        '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="167" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
        '<xf numFmtId="3" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1" applyAlignment="1"><alignment horizontal="right"/></xf>'
        '<xf numFmtId="168" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="169" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="170" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="165" fontId="1" fillId="2" borderId="0" xfId="0" applyNumberFormat="1" applyFont="1" applyFill="1" applyAlignment="1">'
        '<alignment horizontal="right"/></xf>'
        '<xf numFmtId="171" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="171" fontId="1" fillId="0" borderId="1" xfId="0" applyNumberFormat="1" applyFont="1" applyBorder="1"/>'
        + "".join(f'<xf numFmtId="{172 + n}" fontId="1" fillId="2" borderId="0" xfId="0" applyNumberFormat="1" applyFont="1" applyFill="1" '
                  'applyAlignment="1"><alignment horizontal="right"/></xf>' for n in range(12)) +
        "</cellXfs>"
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        f'<dxfs count="1"><dxf><font><color rgb="{FAVOURABLE}"/></font></dxf></dxfs>'
        "</styleSheet>"
    )


@functools.lru_cache(maxsize=1024)
def column_letter(index: int) -> str:
    """1 → A, 27 → AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_ref(column: int, row: int, absolute: bool = False) -> str:
    """(4, 2) → D2, or $D$2."""
    return f"${column_letter(column)}${row}" if absolute else f"{column_letter(column)}{row}"


def sheet_ref(sheet: str, reference: str) -> str:
    """A reference on a named sheet, quoted as formulas need: 'Lines (2)'!$A$1."""
    return "'" + sheet.replace("'", "''") + "'!" + reference


@dataclasses.dataclass(frozen=True)
class Formula:
    """A formula cell. No value is stored with it, so Excel and LibreOffice compute it when
    the workbook opens (LibreOffice would otherwise show a stored value as it is);
    `expected` is what it comes to, for sizing its column."""

    text: str
    expected: Decimal | None = None


Value = str | Decimal | int | dt.date | Formula | None


@dataclasses.dataclass(frozen=True)
class Cell:
    """A value with its format, for the small sheets built a row at a time."""

    value: Value
    style: Style = Style.TEXT


class SharedStrings:
    """The workbook's table of strings: each distinct string stored once, cells refer to it."""

    def __init__(self) -> None:
        """An empty table."""
        self.index: dict[str, int] = {}
        self.count = 0

    def add(self, text: str) -> int:
        """The index of `text`, added if new."""
        self.count += 1
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.index)
        return found

    def add_column(self, values: pa.Array) -> pa.Array:
        """Indices (int64, nulls kept) of a string column's values: the distinct values are
        added once each, and every row takes its index from them."""
        encoded = pc.dictionary_encode(values).combine_chunks() if isinstance(values, pa.ChunkedArray) else pc.dictionary_encode(values)
        self.count += len(values) - values.null_count
        mapping = np.empty(len(encoded.dictionary), dtype=np.int64)
        for position, text in enumerate(encoded.dictionary.to_pylist()):
            found = self.index.get(text)
            if found is None:
                found = self.index[text] = len(self.index)
            mapping[position] = found
        return pa.array(mapping).take(encoded.indices)

    def xml(self) -> Iterator[bytes]:
        """sharedStrings.xml, in pieces."""
        yield (HEAD + f'<sst xmlns="{MAIN}" count="{self.count}" uniqueCount="{len(self.index)}">').encode()
        texts = pa.array(list(self.index), pa.string())
        for start in range(0, len(texts), CHUNK):
            chunk = escaped(texts.slice(start, CHUNK))
            yield joined(pc.binary_join_element_wise('<si><t xml:space="preserve">', chunk, "</t></si>", ""))
        yield b"</sst>"


def escaped(texts: pa.Array) -> pa.Array:
    """Strings made safe as XML text: &, < and > escaped, characters XML forbids dropped
    (one scan when there are none, the usual case)."""
    if not pc.any(pc.match_substring_regex(texts, "[&<>]|" + CONTROL)).as_py():
        return texts
    texts = pc.replace_substring(texts, "&", "&amp;")
    texts = pc.replace_substring(texts, "<", "&lt;")
    texts = pc.replace_substring(texts, ">", "&gt;")
    return pc.replace_substring_regex(texts, CONTROL, "")


def joined(pieces: pa.Array) -> bytes:
    """The strings of an array (nulls as nothing) concatenated, read from its buffer."""
    pieces = pieces.fill_null("")
    if isinstance(pieces, pa.ChunkedArray):
        pieces = pieces.combine_chunks()
    if len(pieces) == 0:
        return b""
    offsets = np.frombuffer(pieces.buffers()[1], dtype=np.int32)
    start, end = int(offsets[pieces.offset]), int(offsets[pieces.offset + len(pieces)])
    return pieces.buffers()[2].to_pybytes()[start:end]


def number_text(values: pa.Array) -> pa.Array:
    """The exact decimal text of numbers (decimal or integer columns), nulls kept."""
    return pc.cast(values, pa.string())


def serial_text(dates: pa.Array) -> pa.Array:
    """Dates as Excel serial day numbers (1 January 1970 is 25569), as text."""
    days = pc.cast(pc.cast(dates, pa.date32()), pa.int32())
    return pc.cast(pc.add(pc.cast(days, pa.int64()), (dt.date(1970, 1, 1) - EXCEL_EPOCH).days), pa.string())


@dataclasses.dataclass(frozen=True)
class Column:
    """A column of a table sheet: its heading, its format and its width in characters."""

    name: str
    style: Style
    width: float
    formula: bool = False  # the values are formulas' text (SUM(D5:O5)), computed where opened


def cells_of(values: pa.Array, letter: str, rows: pa.Array, style: Style, strings: SharedStrings, formula: bool = False) -> pa.Array:
    """The `<c>` elements of one column for a chunk of rows (empty where a value is null)."""
    reference = pc.binary_join_element_wise(f'<c r="{letter}', rows, "")
    if formula:
        return pc.binary_join_element_wise(reference, f'" s="{int(style)}"><f>', escaped(pc.cast(values, pa.string())), "</f></c>", "")
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or pa.types.is_dictionary(values.type):
        texts = pc.cast(values, pa.string())
        if len(pc.unique(texts)) * 2 > len(texts) > 1:
            # Mostly distinct (a line's basis): a table of strings would save nothing, so
            # the text goes in the cell itself.
            return pc.binary_join_element_wise(reference, '" t="inlineStr"><is><t xml:space="preserve">', escaped(texts), "</t></is></c>", "")
        kind, text = '" t="s"', number_text(strings.add_column(texts))
    elif pa.types.is_date(values.type) or pa.types.is_timestamp(values.type):
        kind, text = f'" s="{int(style)}"', serial_text(values)
    else:
        kind, text = (f'" s="{int(style)}"' if style else '"'), number_text(values)
    return pc.binary_join_element_wise(reference, kind + "><v>", text, "</v></c>", "")


def table_rows(table: pa.Table, columns: Sequence[Column], first_row: int, strings: SharedStrings) -> Iterator[bytes]:
    """`<row>` elements of every row of `table`, numbered from `first_row`, a chunk at a time."""
    letters = [column_letter(i + 1) for i in range(len(columns))]
    for start in range(0, table.num_rows, CHUNK):
        chunk = table.slice(start, CHUNK)
        numbers = pc.cast(pa.array(np.arange(first_row + start, first_row + start + chunk.num_rows, dtype=np.int64)), pa.string())
        cells = [cells_of(chunk.column(i).combine_chunks(), letters[i], numbers, column.style, strings, column.formula).fill_null("")
                 for i, column in enumerate(columns)]
        yield joined(pc.binary_join_element_wise('<row r="', numbers, '">', *cells, "</row>", ""))


def small_cell(value: Value, style: Style, reference: str, strings: SharedStrings) -> str:
    """One `<c>` element from a Python value (for small sheets); empty for None."""
    styled = f' s="{int(style)}"' if style else ""
    if value is None:
        return f'<c r="{reference}"{styled}/>' if style else ""
    if isinstance(value, Formula):
        return f'<c r="{reference}"{styled}><f>{escape(value.text)}</f></c>'
    if isinstance(value, str):
        return f'<c r="{reference}"{styled} t="s"><v>{strings.add(value)}</v></c>'
    if isinstance(value, dt.date):
        return f'<c r="{reference}"{styled}><v>{(value - EXCEL_EPOCH).days}</v></c>'
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"cannot write {value!r} to a cell")
    return f'<c r="{reference}"{styled}><v>{value}</v></c>'


def small_rows(rows: Iterable[Sequence[Cell | Value]], first_row: int, strings: SharedStrings) -> Iterator[bytes]:
    """`<row>` elements from rows of Python values or Cells, numbered from `first_row`."""
    for number, row in enumerate(rows, start=first_row):
        cells = []
        for index, item in enumerate(row, start=1):
            cell = item if isinstance(item, Cell) else Cell(item)
            cells.append(small_cell(cell.value, cell.style, cell_ref(index, number), strings))
        yield f'<row r="{number}">{"".join(cells)}</row>'.encode()


@dataclasses.dataclass
class Sheet:
    """A worksheet to write: its rows' XML (produced while the package is written), column
    widths, the frozen top-left cell and the autofilter's range."""

    name: str
    rows: Iterable[bytes]
    widths: Sequence[float]
    last_row: int
    freeze: str | None = None
    autofilter: str | None = None
    fit_width: bool = False  # printed landscape, scaled to one page wide
    favourable: Sequence[str] = ()  # ranges of variances to plan, shown green when above zero


    def xml(self, selected: bool) -> Iterator[bytes]:
        """The worksheet part, in pieces, its elements in the order the schema fixes."""
        last = f"{column_letter(max(len(self.widths), 1))}{max(self.last_row, 1)}"
        tab = ' tabSelected="1"' if selected else ""
        view = f'<sheetView workbookViewId="0"{tab}>{self.pane()}</sheetView>'
        cols = "".join(f'<col min="{i}" max="{i}" width="{w:.2f}" customWidth="1"/>' for i, w in enumerate(self.widths, start=1))
        fit = '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>' if self.fit_width else ""
        yield (HEAD + f'<worksheet xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}">{fit}<dimension ref="A1:{last}"/>'
               f'<sheetViews>{view}</sheetViews><sheetFormatPr defaultRowHeight="15"/>'
               + (f"<cols>{cols}</cols>" if cols else "") + "<sheetData>").encode()
        yield from self.rows
        green = "".join(f'<conditionalFormatting sqref="{where}"><cfRule type="cellIs" dxfId="0" priority="{number}" operator="greaterThan">'
                        f"<formula>0</formula></cfRule></conditionalFormatting>" for number, where in enumerate(self.favourable, start=1))
        yield ("</sheetData>" + (f'<autoFilter ref="{self.autofilter}"/>' if self.autofilter else "") + green
               + '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
               + '<pageSetup orientation="landscape"' + (' fitToWidth="1" fitToHeight="0"' if self.fit_width else "") + "/></worksheet>").encode()

    def pane(self) -> str:
        """The frozen pane's XML: rows above and columns left of `freeze` stay in view."""
        if not self.freeze or self.freeze == "A1":
            return ""
        letters = self.freeze.rstrip("0123456789")
        column = sum((ord(c) - 64) * 26**i for i, c in enumerate(reversed(letters))) - 1
        row = int(self.freeze[len(letters):]) - 1
        split = (f' xSplit="{column}"' if column else "") + (f' ySplit="{row}"' if row else "")
        active = "bottomRight" if column and row else ("bottomLeft" if row else "topRight")
        selections = (['<selection pane="topRight"/>', '<selection pane="bottomLeft"/>'] if column and row else []) + [
            f'<selection pane="{active}" activeCell="{self.freeze}" sqref="{self.freeze}"/>']
        return f'<pane{split} topLeftCell="{self.freeze}" activePane="{active}" state="frozen"/>' + "".join(selections)


def write_xlsx(path: Path, sheets: Sequence[Sheet], strings: SharedStrings, application: str = "carecontracts") -> None:
    """Write the package: the sheets' rows are produced as they are written, the shared
    strings last (every sheet has added its strings by then)."""
    names = [s.name for s in sheets]
    if len(set(n.lower() for n in names)) != len(names) or any(len(n) > 31 or any(c in n for c in "[]:*?/\\") for n in names):
        raise ValueError(f"sheet names must be distinct, at most 31 characters and without []:*?/\\: {names}")
    content_types = (
        HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                  for i in range(1, len(sheets) + 1))
        + '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
        "</Types>"
    )
    package_rels = (
        HEAD + f'<Relationships xmlns="{PACKAGE}">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>'
        "</Relationships>"
    )
    app = (HEAD + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
           f"<Application>{escape(application)}</Application></Properties>")
    filters = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">{escape(sheet_ref(s.name, absolute(s.autofilter)))}</definedName>'
        for i, s in enumerate(sheets) if s.autofilter)
    workbook = (
        HEAD + f'<workbook xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}"><workbookPr/>'
        '<bookViews><workbookView activeTab="0"/></bookViews><sheets>'
        + "".join(f'<sheet name={quoteattr(s.name)} sheetId="{i}" r:id="rId{i}"/>' for i, s in enumerate(sheets, start=1))
        + "</sheets>" + (f"<definedNames>{filters}</definedNames>" if filters else "")
        + '<calcPr calcId="191029" fullCalcOnLoad="1"/></workbook>'
    )
    workbook_rels = (
        HEAD + f'<Relationships xmlns="{PACKAGE}">'
        + "".join(f'<Relationship Id="rId{i}" Type="{RELATIONSHIPS}/worksheet" Target="worksheets/sheet{i}.xml"/>' for i in range(1, len(sheets) + 1))
        + f'<Relationship Id="rId{len(sheets) + 1}" Type="{RELATIONSHIPS}/styles" Target="styles.xml"/>'
        + f'<Relationship Id="rId{len(sheets) + 2}" Type="{RELATIONSHIPS}/sharedStrings" Target="sharedStrings.xml"/>'
        "</Relationships>"
    )
    # Level 1 deflate: a third of level 6's time for a file a few per cent larger.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as package:
        package.writestr("[Content_Types].xml", content_types)
        package.writestr("_rels/.rels", package_rels)
        package.writestr("docProps/app.xml", app)
        package.writestr("xl/workbook.xml", workbook)
        package.writestr("xl/_rels/workbook.xml.rels", workbook_rels)
        package.writestr("xl/styles.xml", styles_xml(currency_symbol()))
        for number, sheet in enumerate(sheets, start=1):
            # ZIP64 sizes only where a part may pass 2 GiB; smaller parts keep the plain headers every reader knows.
            with package.open(f"xl/worksheets/sheet{number}.xml", "w", force_zip64=sheet.last_row > LARGE_SHEET) as part:
                for piece in sheet.xml(selected=number == 1):
                    part.write(piece)
        with package.open("xl/sharedStrings.xml", "w", force_zip64=len(strings.index) > LARGE_SHEET) as part:
            for piece in strings.xml():
                part.write(piece)


def absolute(reference: str) -> str:
    """A1:P20 → $A$1:$P$20."""
    parts = []
    for corner in reference.split(":"):
        letters = corner.rstrip("0123456789")
        parts.append(f"${letters}${corner[len(letters):]}")
    return ":".join(parts)
