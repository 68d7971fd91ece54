"""Read a contract-monitoring file and check it as a receiving office would.

Every value is checked against its data element; what would make the money wrong or the
row unplaceable is an error (the file is refused), what is merely doubtful is a warning (the
file is accepted and the warning reported). Each problem names the file, the line, the column
as the file spells it, the value and what was expected. Money is read as `Decimal`, never as
a binary float. Rows are read one at a time, so a large patient-level file can be summed
without holding it (`keep=False` with `on_record`).
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Iterator

from carecontracts.data.monitoring.spec import (
    ACTIVITY_END,
    ACTIVITY_START,
    AMOUNT,
    CREATED,
    ELEMENTS,
    MONEY_ONLY_PODS,
    NATIONAL_PODS,
    NON_ACTIVITY_PODS,
    POD,
    QUANTITY,
    Check,
    Element,
    FileKind,
    Status,
    guess_kind,
    header_key,
    lookup,
)
from carecontracts.money import format_money
from carecontracts.periods import FinancialYear
from carecontracts.problems import Problem

MAX_LISTED = 100  # errors (and, separately, warnings) listed per file; the rest are counted
MFF_RANGE = (Decimal("0.9"), Decimal("1.3"))
CACHED_VALUES = 100_000  # distinct values remembered per file, with the outcome of their check

NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
ORGANISATION = re.compile(r"^[A-Z0-9]{3,9}$")
TREATMENT_FUNCTION = re.compile(r"^[0-9A-Z]{3}$")
YEAR = re.compile(r"^20\d{4}$")
UK_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")

MEASURE_CHECKS = (Check.ACTIVITY, Check.MONEY, Check.UNIT_PRICE, Check.FACTOR)


def year_code(year: FinancialYear) -> str:
    """The FINANCIAL YEAR of a year: 2025-26 → `202526`."""
    return f"{year.start.year}{(year.start.year + 1) % 100:02d}"


def month_of(year: str, month: int) -> dt.date:
    """The calendar month of a FINANCIAL YEAR and FINANCIAL MONTH: (202526, 7) → 2025-10-01.
    Financial month 1 is April."""
    first = int(year[:4])
    index = first * 12 + 3 + (month - 1)
    return dt.date(index // 12, index % 12 + 1, 1)


def financial_period(month: dt.date) -> tuple[str, int]:
    """The FINANCIAL YEAR and FINANCIAL MONTH of a calendar month: 2025-10 → (`202526`, 7)."""
    first = month.year if month.month >= 4 else month.year - 1
    return f"{first}{(first + 1) % 100:02d}", (month.month - 4) % 12 + 1


@dataclass(frozen=True)
class Record:
    """One row: its line in the file and its values by element name (blank values absent)."""

    line: int
    values: dict[str, object]

    def get(self, name: str, default: object = None) -> object:
        return self.values.get(name, default)

    def text(self, name: str) -> str:
        """The value as text for matching rows ('' when blank)."""
        value = self.values.get(name)
        return "" if value is None else str(value)

    def number(self, name: str) -> Decimal:
        """A measure, 0 when blank."""
        value = self.values.get(name)
        return value if isinstance(value, Decimal) else Decimal(0)


@dataclass
class MonitoringFile:
    """A file read and checked: its rows (when kept), errors and warnings."""

    source: str
    kind: FileKind
    headers: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # element name → header as the file spells it
    records: list[Record] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    rows: int = 0
    total: Decimal = Decimal(0)  # the file's money: actual price (ACM), total cost (PLCM), planned price (IAP)
    more_errors: int = 0
    more_warnings: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def column(self, name: str) -> str:
        """The header the file uses for an element (its dictionary name when absent)."""
        return self.columns.get(name, name)


def _shown(raw: str) -> str:
    return "(blank)" if raw.strip() == "" else repr(raw)


def _places(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def nhs_number_valid(text: str) -> bool:
    """Ten digits whose last is the modulus 11 check digit of the first nine."""
    if not re.fullmatch(r"\d{10}", text):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(text[:9], range(10, 1, -1)))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(text[9])


class _Value:
    """The outcome of checking one value: the typed value, or why it is wrong or doubtful."""

    __slots__ = ("value", "error", "warning")

    def __init__(self, value: object = None, error: tuple[str, str] | None = None, warning: tuple[str, str] | None = None):
        self.value = value
        self.error = error  # (message, expected)
        self.warning = warning


def _number(raw: str, places: int, what: str) -> _Value:
    if not NUMBER.match(raw):
        if re.fullmatch(r"-?£?[\d,]+(?:\.\d+)?", raw.replace(" ", "")):
            return _Value(error=("is not a plain number", f"{what} written plainly, e.g. 1234.56 (no £ sign, thousands commas or spaces)"))
        return _Value(error=("is not a number", f"{what}, e.g. 1234.56"))
    try:
        number = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return _Value(error=("is not a number", what))
    if _places(number) > places:
        return _Value(error=(f"has {_places(number)} decimal places", f"{what} with at most {places} decimal places"))
    return _Value(number)


def check_value(element: Element, raw: str, year: str | None) -> _Value:
    """Type one non-blank value by its element's check."""
    text = raw.strip()
    kind = element.check
    if kind is Check.TEXT:
        result = _Value(text)
    elif kind is Check.ORGANISATION:
        result = _Value(text) if ORGANISATION.match(text) else _Value(
            error=("is not an organisation code", "an ODS code: 3 to 9 upper-case letters and digits, e.g. RAL or 93C00"))
    elif kind is Check.YEAR:
        if not YEAR.match(text) or int(text[4:]) != (int(text[2:4]) + 1) % 100:
            result = _Value(error=("is not a financial year", "six digits: the year it starts and the last two digits of the next, e.g. 202526"))
        elif year is not None and text != year:
            result = _Value(error=(f"is not the year being checked ({year})", f"{year}, the financial year of the workspace (or --year)"))
        else:
            result = _Value(text)
    elif kind is Check.MONTH:
        result = _Value(int(text)) if re.fullmatch(r"\d{1,2}", text) and 1 <= int(text) <= 12 else _Value(
            error=("is not a financial month", "a whole number from 1 (April) to 12 (March)"))
    elif kind is Check.CREATED:
        try:
            result = _Value(dt.datetime.fromisoformat(text))
        except ValueError:
            result = _Value(text, warning=("is not a date and time", "a date and time like 2025-11-05T09:30:00"))
    elif kind is Check.DATE:
        result = _date(text)
    elif kind is Check.POD:
        result = _Value(text) if text in NATIONAL_PODS else _Value(
            text, warning=("is not a national point of delivery this release knows", "a national POINT OF DELIVERY CODE, e.g. EL, NEL, OPFA, BLOCK, CQUIN"))
    elif kind is Check.TFC:
        result = _Value(text) if TREATMENT_FUNCTION.match(text) else _Value(
            error=("is not a treatment function code", "three characters, e.g. 110"))
    elif kind is Check.ACTIVITY:
        result = _number(text, 8, "a number of units of activity")
        if isinstance(result.value, Decimal) and result.value < 0:
            result.warning = ("is negative activity", "activity of 0 or more (a correction to an earlier month is usually made there)")
    elif kind is Check.MONEY:
        result = _number(text, 2, "an amount in pounds and pence")
    elif kind is Check.UNIT_PRICE:
        result = _number(text, 4, "a price per unit in pounds")
    elif kind is Check.FACTOR:
        result = _number(text, 6, "a market forces factor, e.g. 1.0461")
        factor = result.value
        if isinstance(factor, Decimal):
            if factor <= 0:
                result = _Value(error=("is not a market forces factor", "a factor above 0, e.g. 1.0461"))
            elif not MFF_RANGE[0] <= factor <= MFF_RANGE[1]:
                result.warning = ("is far from 1 for a market forces factor", f"a factor between {MFF_RANGE[0]} and {MFF_RANGE[1]}")
    elif kind is Check.NHS_NUMBER:
        result = _Value(text) if nhs_number_valid(text) else _Value(
            error=("is not a valid NHS number", "ten digits whose last is the modulus 11 check digit, no spaces"))
    elif kind is Check.WHOLE:
        result = _Value(int(text)) if re.fullmatch(r"\d{1,9}", text) else _Value(error=("is not a whole number", "a whole number of 0 or more"))
    else:  # pragma: no cover - every check is handled above
        raise ValueError(kind)
    if result.error is None and result.warning is None and element.choices and text not in element.choices:
        result.warning = ("is not one of the codes", "one of " + ", ".join(element.choices))
    return result


def _date(text: str) -> _Value:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return _Value(dt.date.fromisoformat(text))
        match = UK_DATE.match(text)
        if match:
            return _Value(dt.date(int(match.group(3)), int(match.group(2)), int(match.group(1))))
    except ValueError:
        pass
    return _Value(error=("is not a date", "a date like 2025-11-05 or 05/11/2025"))


class _Reader:
    """Checks one file, collecting problems; `records()` yields its good rows."""

    def __init__(self, result: MonitoringFile, year: str | None):
        self.result = result
        self.year = year
        self.elements = ELEMENTS[result.kind]
        self.positions: list[Element | None] = []
        self.seen: dict[tuple, int] = {}
        self.cache: dict[tuple[int, str], _Value] = {}

    def error(self, message: str, line: int | None = None, column: str | None = None, value: object = None, expected: str | None = None) -> None:
        if len(self.result.errors) < MAX_LISTED:
            self.result.errors.append(Problem(self.result.source, message, line=line, field=column, value=value, expected=expected))
        else:
            self.result.more_errors += 1

    def warn(self, message: str, line: int | None = None, column: str | None = None, value: object = None, expected: str | None = None) -> None:
        if len(self.result.warnings) < MAX_LISTED:
            self.result.warnings.append(Problem(self.result.source, message, line=line, field=column, value=value, expected=expected))
        else:
            self.result.more_warnings += 1

    def header(self, headers: list[str]) -> bool:
        """Match the header to the elements; False when rows cannot be read."""
        self.result.headers = headers
        known = lookup(self.result.kind)
        names = sorted({header_key(n) for e in self.elements for n in (e.name, *e.aliases)})
        for index, header in enumerate(headers):
            element = known.get(header_key(header))
            self.positions.append(element)
            if element is None:
                near = _nearest(header_key(header), names)
                hint = f"; did you mean {near}?" if near else ""
                self.error(f"unknown column {header!r}{hint}", line=1, column=header or f"column {index + 1}", value=header,
                           expected=f"only the data elements of the {self.result.kind.long_name} specification")
            elif element.name in self.result.columns:
                self.error(f"column {header!r} repeats {self.result.columns[element.name]!r}", line=1, column=header, value=header,
                           expected="each data element once")
                self.positions[-1] = None
            else:
                self.result.columns[element.name] = header
        missing = [e.name for e in self.elements if e.status is Status.MANDATORY and e.name not in self.result.columns]
        for name in missing:
            self.error(f"missing mandatory column {name}", line=1, column=name, expected=f"the mandatory data elements of the {self.result.kind.long_name}")
        return not missing

    def row(self, line: int, cells: list[str]) -> Record | None:
        """Check one row; the record when it has no errors."""
        if len(cells) != len(self.positions):
            self.error(f"has {len(cells)} fields, the header has {len(self.positions)}", line=line, expected=f"{len(self.positions)} fields, as in the header")
            return None
        values: dict[str, object] = {}
        bad = False
        for index, (element, raw) in enumerate(zip(self.positions, cells)):
            if element is None:
                continue
            if not raw or raw.isspace():
                if element.status is Status.MANDATORY:
                    self.error("is blank", line=line, column=self.result.columns[element.name], value=raw,
                               expected=f"a value: {element.name} is mandatory")
                    bad = True
                continue
            if element.check is Check.TEXT and not element.choices:
                values[element.name] = raw.strip()
                continue
            # Codes, periods, dates and prices repeat from row to row: each distinct value is checked once.
            checked = self.cache.get((index, raw))
            if checked is None:
                checked = check_value(element, raw, self.year)
                if element.check is not Check.NHS_NUMBER and len(self.cache) < CACHED_VALUES:
                    self.cache[(index, raw)] = checked
            column = self.result.columns[element.name]
            if checked.error is not None:
                message, expected = checked.error
                self.error(f"{_shown(raw)} {message}", line=line, column=column, value=raw, expected=expected)
                bad = True
                continue
            if checked.warning is not None:
                message, expected = checked.warning
                self.warn(f"{_shown(raw)} {message}", line=line, column=column, value=raw, expected=expected)
            values[element.name] = checked.value
        if bad:
            return None
        record = Record(line, values)
        self.row_checks(record)
        return record

    def row_checks(self, record: Record) -> None:
        """Checks across a row's values (only on rows whose values are all good)."""
        kind = self.result.kind
        pod = record.text(POD)
        quantity_name = QUANTITY[kind]
        quantity = record.get(quantity_name)
        amount = record.number(AMOUNT[kind])
        if pod in MONEY_ONLY_PODS and isinstance(quantity, Decimal) and quantity != 0:
            self.warn(f"{quantity} units of activity at point of delivery {pod}", line=record.line, column=self.result.column(quantity_name),
                      value=str(quantity), expected=f"0 or blank: {pod} rows carry money, not activity")
        if kind is not FileKind.PLCM and pod and pod not in NON_ACTIVITY_PODS and amount != 0 and not quantity:
            self.warn(f"{format_money(amount)} with no activity at point of delivery {pod}", line=record.line, column=self.result.column(quantity_name),
                      value=None if quantity is None else str(quantity), expected="the activity the money pays for, or a non-activity point of delivery (BLOCK, CQUIN, ADJUSTMENT)")
        start, end = record.get(ACTIVITY_START), record.get(ACTIVITY_END)
        if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
            self.error(f"ends {end} before it starts {start}", line=record.line, column=self.result.column(ACTIVITY_END), value=str(end),
                       expected=f"an end date on or after {self.result.column(ACTIVITY_START)}")
        if kind is not FileKind.PLCM:
            key = tuple((name, str(value)) for name, value in sorted(record.values.items())
                        if name != CREATED and _element_check(kind, name) not in MEASURE_CHECKS)
            if key in self.seen:
                self.warn(f"repeats the row on line {self.seen[key]}", line=record.line, value=None,
                          expected="one row per place: rows the same in every column but the measures are added together")
            else:
                self.seen[key] = record.line


def _nearest(key: str, names: list[str]) -> str | None:
    """The element a misspelt or shortened header most likely means: one whose name holds it
    (`ACTUAL PRICE`), else the closest spelling."""
    if len(key) >= 4:
        holding = [name for name in names if key in name]
        if len(holding) == 1:
            return holding[0]
    near = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    return near[0] if near else None


def _element_check(kind: FileKind, name: str) -> Check:
    for element in ELEMENTS[kind]:
        if element.name == name:
            return element.check
    return Check.TEXT


def _rows(handle) -> Iterator[tuple[int, list[str]]]:
    """Rows with the line each starts on (a quoted field may hold a line break)."""
    reader = csv.reader(handle)
    line = reader.line_num + 1
    for cells in reader:
        if cells and any(cell.strip() for cell in cells):
            yield line, cells
        line = reader.line_num + 1


def read_monitoring(
    path: Path,
    kind: FileKind | None = None,
    year: FinancialYear | None = None,
    source: str | None = None,
    keep: bool = True,
    on_record: Callable[[Record], None] | None = None,
) -> MonitoringFile:
    """Read and check one file (the type from its columns when not given). Good rows are
    kept (unless `keep` is False) and passed to `on_record`; a file with errors has
    `errors`, and its total covers its good rows only."""
    name = source or str(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        result = MonitoringFile(name, kind or FileKind.ACM)
        result.errors.append(Problem(name, f"cannot be read: {error.strerror}", expected="a CSV file with a header row"))
        return result
    with handle:
        try:
            rows = _rows(handle)
            first = next(rows, None)
            if first is None:
                result = MonitoringFile(name, kind or FileKind.ACM)
                result.errors.append(Problem(name, "is empty", line=1, expected="a header row of data element names, then the rows"))
                return result
            headers = first[1]
            chosen = kind or guess_kind(headers)
            if chosen is None:
                result = MonitoringFile(name, FileKind.ACM, headers=headers)
                result.errors.append(Problem(name, "is not a contract-monitoring file", line=1,
                                             expected="a header with CONTRACT MONITORING ACTUAL PRICE (ACM), TOTAL COST (PLCM) or CONTRACT MONITORING PLANNED PRICE (IAP)"))
                return result
            result = MonitoringFile(name, chosen)
            reader = _Reader(result, year_code(year) if year is not None else None)
            if not reader.header(headers):
                return result
            amount = AMOUNT[chosen]
            for line, cells in rows:
                result.rows += 1
                record = reader.row(line, cells)
                if record is None:
                    continue
                result.total += record.number(amount)
                if keep:
                    result.records.append(record)
                if on_record is not None:
                    on_record(record)
        except UnicodeDecodeError as error:
            result = MonitoringFile(name, kind or FileKind.ACM)
            result.errors.append(Problem(name, f"is not UTF-8 text (byte {error.start})", expected="a CSV file saved as UTF-8"))
        except csv.Error as error:
            result = MonitoringFile(name, kind or FileKind.ACM)
            result.errors.append(Problem(name, f"is not valid CSV: {error}", expected="a CSV file with a header row"))
    if result.more_errors:
        result.errors.append(Problem(name, f"and {result.more_errors:,} more errors not listed"))
    if result.more_warnings:
        result.warnings.append(Problem(name, f"and {result.more_warnings:,} more warnings not listed"))
    return result
