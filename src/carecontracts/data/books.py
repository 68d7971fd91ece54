"""Prices workbooks in the NHS Payment Scheme's published layout (prices/*.xlsx), read into
one long table of prices: a row per book, currency and price point.

Sheets are found by name: admitted patient care and outpatient procedures (`APC & OPROC`,
by HRG), outpatient attendances (by treatment function code) and A&E (by HRG, a price per
department type). Each sheet's header row is found by its first heading, and columns by
their published headings, so title rows above and notes beside the table are allowed.
Every cell that is not what its column holds is a problem naming the file, sheet, row and
column; a workbook with any problem is not read at all. A reduced short-stay emergency
tariff given only as a % is that % of the non-elective price, half-up to the penny, as the
published reduced tariffs are."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable

import pyarrow as pa
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from carecontracts.money import PRICE_LIMIT, to_pence
from carecontracts.problems import Problem, ProblemsError

UNGROUPED = "UZ01Z"
HEADER_SEARCH_ROWS = 30
NO_NATIONAL_PRICE = "no national price"
NOT_GIVEN = ("", "-", "–", "—", "n/a")

# The columns of each sheet as published (heading → field), the first being the key.
APC_COLUMNS = {
    "HRG code": "currency",
    "HRG name": "name",
    "Outpatient procedure tariff": "outpatient_procedure",
    "Combined day case / ordinary elective spell tariff": "combined",
    "Day case spell tariff": "day_case",
    "Ordinary elective spell tariff": "elective",
    "Ordinary elective long stay trim point (days)": "elective_trim",
    "Non-elective spell tariff": "non_elective",
    "Non-elective long stay trim point (days)": "non_elective_trim",
    "Per day long stay payment (for days exceeding trim point)": "excess_day",
    "Reduced short stay emergency tariff applicable?": "short_stay",
    "% applied in calculation of reduced short stay emergency tariff": "short_stay_percent",
    "Reduced short stay emergency tariff": "short_stay_price",
}
OUTPATIENT_COLUMNS = {
    "Treatment function code": "currency",
    "Treatment function name": "name",
    "First attendance - single professional": "first_single",
    "First attendance - multi-professional": "first_multi",
    "Follow-up attendance - single professional": "follow_up_single",
    "Follow-up attendance - multi-professional": "follow_up_multi",
}
AE_COLUMNS = {
    "HRG code": "currency",
    "HRG name": "name",
    "Type 1 and 2 departments": "ae",
    "Type 3 departments": "ae_type_3",
}

BOOK_SCHEMA = pa.schema([
    ("book", pa.string()),
    ("issue", pa.string()),
    ("currency", pa.string()),
    ("point", pa.string()),
    ("national", pa.bool_()),
    ("price", pa.decimal128(18, 4)),
    ("combined", pa.bool_()),
    ("trim", pa.int64()),
    ("excess_day", pa.decimal128(18, 4)),
    ("short_stay", pa.bool_()),
    ("short_stay_percent", pa.string()),  # as published, for the basis: 30, 12.5
    ("short_stay_price", pa.decimal128(18, 4)),
    ("sheet", pa.string()),
    ("row", pa.int64()),
])


class Unpriced:
    """A cell saying the currency has no national price."""


UNPRICED = Unpriced()
Cell = Decimal | Unpriced | None


def _heading(text: Any) -> str:
    """A heading compared as published, whatever its line breaks, spacing, case or footnote mark."""
    return re.sub(r"\s+", " ", str(text or "")).strip().rstrip("*").strip().lower()


def book_issue(path: Path) -> str:
    """The first eight hex digits of the workbook's SHA-256: which issue of a book priced a line."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


@dataclass
class _Sheet:
    """One sheet being read: where its columns are, and the problems met."""

    source: str
    title: str
    header_row: int
    columns: dict[str, int]  # field → 1-based column
    headings: dict[str, str]  # field → heading as published
    problems: list[Problem]

    def problem(self, row: int, field: str, value: Any, message: str, expected: str) -> None:
        """Note a bad cell, located by file, row, sheet, column letter and heading."""
        column = self.columns[field]
        self.problems.append(Problem(
            self.source, message, row=row, field=f"sheet '{self.title}' column {get_column_letter(column)} ({self.headings[field]})",
            value=value, expected=expected,
        ))

    def text(self, values: tuple, field: str) -> str | None:
        """A cell as trimmed text, None when blank."""
        value = values[self.columns[field] - 1] if self.columns[field] - 1 < len(values) else None
        return None if value is None or str(value).strip() == "" else str(value).strip()

    def raw(self, values: tuple, field: str) -> Any:
        """A cell's value as the workbook holds it (None past the row's last cell)."""
        index = self.columns[field] - 1
        return values[index] if index < len(values) else None

    def money(self, row: int, values: tuple, field: str, allow_unpriced: bool = True) -> Cell:
        """A price: a number of pounds to the penny, blank or '-' when not given, or text
        saying there is no national price."""
        value = self.raw(values, field)
        expected = "a price in pounds to the penny (such as 1234.56), blank or '-'" + (", or 'No national price'" if allow_unpriced else "")
        if isinstance(value, str) and value.strip().lower().startswith(NO_NATIONAL_PRICE) and allow_unpriced:
            return UNPRICED
        number = self._number(row, field, value, expected)
        if number is None:
            return None
        if number < 0 or number >= PRICE_LIMIT or number != number.quantize(Decimal("0.01")):
            self.problem(row, field, value, f"{_shown(value)} is not a price", expected)
            return None
        return number

    def whole(self, row: int, values: tuple, field: str, most: int) -> int | None:
        """A whole number of days (a trim point), None when not given."""
        value = self.raw(values, field)
        expected = f"a whole number of days from 0 to {most}, or blank"
        number = self._number(row, field, value, expected)
        if number is None:
            return None
        if number != number.to_integral_value() or not 0 <= number <= most:
            self.problem(row, field, value, f"{_shown(value)} is not a whole number of days", expected)
            return None
        return int(number)

    def percent(self, row: int, values: tuple, field: str, formats: tuple) -> Decimal | None:
        """A percent: a cell formatted as a percent holds its fraction (0.45 shows as 45%)."""
        value = self.raw(values, field)
        expected = "a percent from 0 to 100 (such as 45%), or blank"
        number = self._number(row, field, value, expected)
        if number is None:
            return None
        index = self.columns[field] - 1
        if index < len(formats) and "%" in (formats[index] or "") and not isinstance(value, str):
            number *= 100
        if not 0 <= number <= 100 or number != number.quantize(Decimal("0.0001")):
            self.problem(row, field, value, f"{_shown(value)} is not a percent", expected)
            return None
        return number.normalize() if number == number.to_integral_value() else number

    def yes_no(self, row: int, values: tuple, field: str) -> bool:
        """Yes or No (blank is No)."""
        value = self.text(values, field)
        if value is None or value.lower() in ("no", "n", "-"):
            return False
        if value.lower() in ("yes", "y"):
            return True
        self.problem(row, field, value, f"{_shown(value)} is not yes or no", "Yes, No or blank")
        return False

    def _number(self, row: int, field: str, value: Any, expected: str) -> Decimal | None:
        """A cell's number exactly, None when not given; anything else is a problem."""
        if value is None or isinstance(value, str) and value.strip().lower() in NOT_GIVEN:
            return None
        if isinstance(value, bool):
            self.problem(row, field, value, f"{_shown(value)} is not a number", expected)
            return None
        if isinstance(value, (int, float)):
            # A spreadsheet keeps numbers as binary floats; their shortest decimal text is
            # the number typed, so more places than a price has is refused, not rounded.
            return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        text = str(value).strip()
        if re.fullmatch(r"£?-?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?%?", text):
            try:
                number = Decimal(text.replace("£", "").replace(",", "").rstrip("%"))
            except InvalidOperation:
                number = None
            if number is not None:
                return number
        self.problem(row, field, value, f"{_shown(value)} is not a number", expected)
        return None


def _shown(value: Any) -> str:
    """A cell's value as a problem shows it."""
    return "(blank)" if value is None or str(value).strip() == "" else repr(value)


def _find_sheet(workbook: Any, marks: tuple[str, ...]) -> Any:
    """The first sheet whose name holds one of `marks` (published names carry a number: '1 APC & OPROC')."""
    for sheet in workbook.worksheets:
        name = sheet.title.lower()
        if any(mark in name for mark in marks):
            return sheet
    return None


def _open_sheet(source: str, sheet: Any, layout: dict[str, str], problems: list[Problem]) -> _Sheet | None:
    """Find the sheet's header row (the row holding its first heading) and its columns."""
    wanted = {_heading(h): field for h, field in layout.items()}
    first = _heading(next(iter(layout)))
    for number, row in enumerate(sheet.iter_rows(min_row=1, max_row=HEADER_SEARCH_ROWS, values_only=True), start=1):
        found = {_heading(v): index for index, v in enumerate(row, start=1) if v is not None}
        if first not in found:
            continue
        missing = [h for h in layout if _heading(h) not in found]
        if missing:
            problems.append(Problem(source, f"sheet '{sheet.title}' has no column {'; '.join(repr(m) for m in missing)}", row=number,
                                    field=f"sheet '{sheet.title}'", expected="the columns as published: " + "; ".join(layout)))
            return None
        columns = {field: found[h] for h, field in wanted.items()}
        return _Sheet(source, sheet.title, number, columns, {field: h for h, field in layout.items()}, problems)
    problems.append(Problem(source, f"sheet '{sheet.title}' has no header row with '{next(iter(layout))}'", field=f"sheet '{sheet.title}'",
                            expected=f"a header row within the first {HEADER_SEARCH_ROWS} rows: " + "; ".join(layout)))
    return None


def _rows(sheet: Any, read: _Sheet) -> Iterable[tuple[int, tuple, tuple]]:
    """(row number, values, number formats) of the rows below the header that have a key."""
    key = read.columns["currency"] - 1
    for cells in sheet.iter_rows(min_row=read.header_row + 1):
        values = tuple(c.value for c in cells)
        if key >= len(values) or values[key] is None or str(values[key]).strip() == "":
            continue
        yield cells[0].row, values, tuple(getattr(c, "number_format", None) for c in cells)


def _keyed(read: _Sheet, row: int, values: tuple, seen: dict[str, int]) -> str | None:
    """The row's currency code, once per sheet."""
    raw = read.raw(values, "currency")
    code = str(int(raw) if isinstance(raw, float) and raw.is_integer() else raw).strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{1,10}", code):
        read.problem(row, "currency", read.raw(values, "currency"), f"{_shown(read.raw(values, 'currency'))} is not a code", "a code of letters and digits such as HB12C or 110")
        return None
    if code in seen:
        read.problem(row, "currency", code, f"{code} is also at row {seen[code]}", "each code once in a sheet")
        return None
    seen[code] = row
    return code


Row = dict[str, Any]


def _point(book: str, issue: str, code: str, point: str, cell: Cell, sheet: str, row: int, **extra: Any) -> Row:
    """One price point of a currency as a row of BOOK_SCHEMA."""
    return {
        "book": book, "issue": issue, "currency": code, "point": point,
        "national": not isinstance(cell, Unpriced), "price": cell if isinstance(cell, Decimal) else None,
        "combined": extra.pop("combined", False), "trim": extra.pop("trim", None), "excess_day": extra.pop("excess_day", None),
        "short_stay": extra.pop("short_stay", False), "short_stay_percent": _percent_text(extra.pop("short_stay_percent", None)),
        "short_stay_price": extra.pop("short_stay_price", None), "sheet": sheet, "row": row,
    }


def _percent_text(percent: Decimal | None) -> str | None:
    """A percent as a line's basis shows it: 30, 12.5."""
    return None if percent is None else f"{percent.normalize():f}"


def _apc(book: str, issue: str, sheet: Any, read: _Sheet) -> list[Row]:
    """The APC & OPROC sheet's price points: day case and elective (at the combined price
    where only that is given), non-elective with its short-stay terms, and outpatient procedure."""
    found: list[Row] = []
    seen: dict[str, int] = {}
    for row, values, formats in _rows(sheet, read):
        code = _keyed(read, row, values, seen)
        cells = {f: read.money(row, values, f) for f in ("outpatient_procedure", "combined", "day_case", "elective", "non_elective")}
        excess = read.money(row, values, "excess_day", allow_unpriced=False)
        trims = {f: read.whole(row, values, f, 1000) for f in ("elective_trim", "non_elective_trim")}
        applies = read.yes_no(row, values, "short_stay")
        percent = read.percent(row, values, "short_stay_percent", formats)
        reduced = read.money(row, values, "short_stay_price", allow_unpriced=False)
        if applies and percent is None and reduced is None:
            read.problem(row, "short_stay", "Yes", "the reduced short stay emergency tariff applies but neither its % nor its price is given",
                         f"a {read.headings['short_stay_percent']} or a {read.headings['short_stay_price']}")
        if applies and not isinstance(cells["non_elective"], Decimal):
            read.problem(row, "short_stay", "Yes", "the reduced short stay emergency tariff applies but there is no non-elective spell tariff",
                         f"a {read.headings['non_elective']}, or No")
        if code is None:
            continue
        combined = cells["combined"]
        for point in ("day_case", "elective"):
            own = cells[point]
            cell: Cell = own if own is not None else combined
            trim = trims["elective_trim"] if point == "elective" else None
            if cell is not None:
                found.append(_point(book, issue, code, point, cell, read.title, row, combined=own is None, trim=trim,
                                    excess_day=excess if isinstance(excess, Decimal) else None))
        if applies and not isinstance(reduced, Decimal) and percent is not None and isinstance(cells["non_elective"], Decimal):
            reduced = to_pence(cells["non_elective"] * percent / 100)
        if cells["non_elective"] is not None:
            found.append(_point(book, issue, code, "non_elective", cells["non_elective"], read.title, row, trim=trims["non_elective_trim"],
                                excess_day=excess if isinstance(excess, Decimal) else None, short_stay=applies,
                                short_stay_percent=percent, short_stay_price=reduced if isinstance(reduced, Decimal) else None))
        if cells["outpatient_procedure"] is not None:
            found.append(_point(book, issue, code, "outpatient_procedure", cells["outpatient_procedure"], read.title, row))
    return found


def _by_column(book: str, issue: str, sheet: Any, read: _Sheet, points: tuple[str, ...]) -> list[Row]:
    """Rows of a sheet with a price per column (outpatient attendances, A&E)."""
    found: list[Row] = []
    seen: dict[str, int] = {}
    for row, values, _formats in _rows(sheet, read):
        code = _keyed(read, row, values, seen)
        cells = {f: read.money(row, values, f) for f in points}
        if code is None:
            continue
        for field in points:
            if cells[field] is not None:
                found.append(_point(book, issue, code, field, cells[field], read.title, row))
    return found


def read_book(path: Path, source: str) -> list[Row]:
    """One workbook's prices, or a ProblemsError naming every bad cell (nothing is half-read)."""
    problems: list[Problem] = []
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a file that is not a workbook
        raise ProblemsError([Problem(source, f"cannot be read as a workbook: {error}", expected="an Excel workbook (.xlsx) in the NHS Payment Scheme prices layout")]) from None
    book, issue = path.stem, book_issue(path)
    rows: list[Row] = []
    try:
        apc = _find_sheet(workbook, ("apc",))
        if apc is None:
            problems.append(Problem(source, "has no 'APC & OPROC' sheet", expected="a sheet named like '1 APC & OPROC' with prices by HRG; sheets found: "
                                    + ", ".join(repr(s.title) for s in workbook.worksheets)))
        else:
            read = _open_sheet(source, apc, APC_COLUMNS, problems)
            if read is not None:
                rows += _apc(book, issue, apc, read)
        outpatients = _find_sheet(workbook, ("op att", "outpatient att", "outpatient"))
        if outpatients is not None and outpatients is not apc:
            read = _open_sheet(source, outpatients, OUTPATIENT_COLUMNS, problems)
            if read is not None:
                rows += _by_column(book, issue, outpatients, read, ("first_single", "first_multi", "follow_up_single", "follow_up_multi"))
        emergency = _find_sheet(workbook, ("a&e", "a & e"))
        if emergency is not None:
            read = _open_sheet(source, emergency, AE_COLUMNS, problems)
            if read is not None:
                rows += _by_column(book, issue, emergency, read, ("ae", "ae_type_3"))
    finally:
        workbook.close()
    if problems:
        raise ProblemsError(problems)
    return rows


def book_files(prices: Path) -> list[Path]:
    """The prices workbooks in a prices folder (not the lock files a spreadsheet leaves open)."""
    return sorted(p for p in prices.glob("*.xlsx") if not p.name.startswith("~$")) if prices.is_dir() else []


def read_books(paths: Iterable[Path], relative: Callable[[Path], str] = str) -> pa.Table:
    """Every workbook's prices as one table (BOOK_SCHEMA); a ProblemsError naming every bad
    cell of every workbook when any has one."""
    rows: list[Row] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            rows += read_book(path, relative(path))
        except ProblemsError as error:
            problems += error.problems
    if problems:
        raise ProblemsError(problems)
    return pa.Table.from_pylist(rows, schema=BOOK_SCHEMA)
