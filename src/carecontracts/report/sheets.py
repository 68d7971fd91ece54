"""Tables as worksheets a finance analyst can use at once: a bold heading row frozen with the
first column, an autofilter over the data, columns as wide as their widest value, money as
numbers in £, shares as percentages, dates as dates, and totals as formulas over the rows
above, so they still add up when a figure is changed or rows are filtered out.

Every workbook of the project is written by carecontracts.report.xlsx; the width rules here
serve the statements workbook too."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

from carecontracts.machine import atomic_write
from carecontracts.money import format_money
from carecontracts.report.xlsx import Cell, Formula, SharedStrings, Sheet, Style, column_letter, small_rows, write_xlsx

TEXT_CAP = 60  # characters: a longer text wraps out of view rather than widening its column
FIRST_ROW = 2  # a table's data start under its heading row
PERCENT_STYLES = {1: Style.PERCENT, 2: Style.PERCENT_2}


class Share(float):
    """A fraction (a probability, a share of the expected cost): a number formatted as a
    percentage in a workbook, `12.5%` on the page; `places` decimals in both."""

    places: int

    def __new__(cls, value: float, places: int = 1) -> Share:
        """The fraction `value`, shown to `places` decimals of a per cent."""
        share = super().__new__(cls, value)
        share.places = places
        return share

    def __str__(self) -> str:
        """The percentage as the page shows it: 0.125 → 12.5%."""
        return f"{self:.{self.places}%}"


class Variance(Decimal):
    """A variance to plan (plan − paid): money shown signed, green when favourable and red
    when adverse, in a workbook and on the page."""

    __slots__ = ()


def money_width(values: Sequence[Decimal], heading: str = "") -> float:
    """A column width (in characters) that shows every amount in £ format and the heading:
    the widest text is the largest amount's or the most negative one's."""
    longest = max(len(format_money(max(values))), len(format_money(min(values)))) if values else 0
    return max(longest * 1.1 + 2, len(heading) + 2, 10)


def text_width(values: Sequence[str | None], heading: str = "", cap: int = TEXT_CAP) -> float:
    """A column width for texts: the longest (up to `cap` characters) and the heading."""
    longest = max([len(v) for v in values if v] + [0])
    return min(max(longest, len(heading)) + 2, cap + 2)


@dataclasses.dataclass(frozen=True)
class Table:
    """One sheet's table: headings (a month as a date), rows of values (Decimal is money, a
    Share a percentage, a Formula a sum of money), a total row under the filtered range, and
    rows after that (a second small table), each a value or a Cell of a chosen format."""

    name: str
    headings: Sequence[str | dt.date]
    rows: Sequence[Sequence[Any]]
    total: Sequence[Any] | None = None
    after: Sequence[Sequence[Any]] = ()
    freeze: str = "B2"

    @property
    def last_row(self) -> int:
        """The sheet row of the last data row (the heading's when there are none)."""
        return FIRST_ROW + len(self.rows) - 1

    @property
    def total_row(self) -> int:
        """The sheet row the total goes in: right under the data."""
        return self.last_row + 1

    def column(self, index: int) -> str:
        """The data rows of a column (1 is A) as a reference: D2:D9."""
        letter = column_letter(index)
        return f"{letter}{FIRST_ROW}:{letter}{self.last_row}"

    def values(self, index: int) -> list[Any]:
        """The values of a column (1 is A) in the data rows."""
        return [row[index - 1] if index <= len(row) else None for row in self.rows]


def amount(value: Any) -> Decimal | None:
    """The money a value stands for: a Decimal itself, a formula what it comes to."""
    if isinstance(value, Cell):
        value = value.value
    if isinstance(value, Formula):
        return value.expected
    return value if isinstance(value, Decimal) else None


def subtotal(table: Table, index: int) -> Formula | Decimal:
    """A total of a money column that counts only the rows a filter leaves in view
    (SUBTOTAL 109 is SUM over visible rows); zero when there are no rows."""
    total = sum((a for a in map(amount, table.values(index)) if a is not None), Decimal(0))
    return Formula(f"SUBTOTAL(109,{table.column(index)})", total) if table.rows else total


def sum_where_blank(table: Table, index: int, blank: int) -> Formula | Decimal:
    """A total of a money column over the rows whose column `blank` is empty (SUMIF)."""
    total = sum((a for a, key in zip(map(amount, table.values(index)), table.values(blank)) if a is not None and key in (None, "")), Decimal(0))
    if not table.rows:
        return total
    letter = column_letter(blank)
    return Formula(f'SUMIF(${letter}${FIRST_ROW}:${letter}${table.last_row},"",{table.column(index)})', total)


def row_sum(row: int, first: int, last: int, values: Sequence[Decimal | None]) -> Formula:
    """The sum of one row's cells from column `first` to `last`: SUM(C5:N5); `values` are
    those cells, for what it comes to."""
    return Formula(f"SUM({column_letter(first)}{row}:{column_letter(last)}{row})", sum((v for v in values if v is not None), Decimal(0)))


def cell(value: Any, total: bool = False) -> Cell:
    """A value with the format its type calls for; in a total row, bold with a rule above."""
    if isinstance(value, Cell):
        return value
    if isinstance(value, Variance):
        return Cell(Decimal(value), Style.VARIANCE_TOTAL if total else Style.VARIANCE)
    if isinstance(value, (Decimal, Formula)):
        return Cell(value, Style.MONEY_TOTAL if total else Style.MONEY)
    if isinstance(value, Share):
        return Cell(Decimal(repr(float(value))), PERCENT_STYLES.get(value.places, Style.PERCENT))
    if isinstance(value, float):
        # Not money (money is Decimal): a model parameter's value, written as its shortest text.
        return Cell(Decimal(repr(value)) if math.isfinite(value) else str(value))
    if isinstance(value, dt.datetime):
        raise TypeError(f"cannot write {value!r} to a cell: a table holds dates, not times")
    if isinstance(value, dt.date):
        return Cell(value, Style.DATE)
    if isinstance(value, str):
        return Cell(value, Style.BOLD if total else Style.TEXT)
    return Cell(value)


def shown(item: Cell) -> str | Decimal:
    """What a cell shows, for its column's width: its amount if it is money, else its text."""
    value = item.value
    if isinstance(value, Formula):
        return Decimal(0) if value.expected is None else value.expected
    if item.style in (Style.MONEY, Style.MONEY_TOTAL, Style.VARIANCE, Style.VARIANCE_TOTAL) and isinstance(value, Decimal):
        return value if item.style in (Style.MONEY, Style.MONEY_TOTAL) else -abs(value)  # a variance always shows a sign
    if item.style in PERCENT_STYLES.values() and isinstance(value, Decimal):
        return f"{value:.{2 if item.style is Style.PERCENT_2 else 1}%}"
    if item.style in (Style.MONTH, Style.HEADING_MONTH):
        return "Mmm yyyy"
    if isinstance(value, dt.date):
        return "yyyy-mm-dd"
    return "" if value is None else str(value)


def heading_row(headings: Sequence[str | dt.date], numeric: Sequence[bool] = ()) -> list[Cell]:
    """Bold headings on a tinted row, a month as a date (Nov 2025), right-aligned over numbers."""
    cells = []
    for index, heading in enumerate(headings):
        if isinstance(heading, dt.date):
            cells.append(Cell(heading, Style.HEADING_MONTH))
        else:
            cells.append(Cell(heading, Style.HEADING_NUMBER if index < len(numeric) and numeric[index] else Style.HEADING))
    return cells


def widths(grid: Sequence[Sequence[Cell]], headings: Sequence[str | dt.date]) -> list[float]:
    """Each column's width: the widest of its money (in £), its other texts (capped) and its heading."""
    found = []
    for index in range(max([len(headings), *(len(row) for row in grid)])):
        values = [shown(row[index]) for row in grid if index < len(row)]
        heading = headings[index] if index < len(headings) else ""
        label = "Mmm yyyy" if isinstance(heading, dt.date) else heading
        money = [v for v in values if isinstance(v, Decimal)]
        texts = [v for v in values if isinstance(v, str)]
        found.append(max(text_width(texts, label), money_width(money, label) if money else 0))
    return found


def table_sheet(table: Table, strings: SharedStrings) -> Sheet:
    """The worksheet of a table: headings frozen with the first column, an autofilter over
    the heading and data rows, the total and the rows after it below the filter; printed
    landscape, one page wide."""
    body = [[cell(v) for v in row] for row in table.rows]
    numeric = [any(isinstance(row[i].value, (Decimal, Formula, int)) for row in body if i < len(row)) for i in range(len(table.headings))]
    grid: list[list[Cell]] = [heading_row(table.headings, numeric), *body]
    if table.total is not None:
        grid.append([cell(v, total=True) for v in table.total])
    grid += [[cell(v) for v in row] for row in table.after]
    corner = f"{column_letter(max(len(table.headings), 1))}{max(table.last_row, 1)}"
    favourable = [f"{column_letter(c)}2:{column_letter(c)}{len(grid)}" for c in range(1, len(table.headings) + 1)
                  if any(c <= len(row) and row[c - 1].style in (Style.VARIANCE, Style.VARIANCE_TOTAL) for row in grid)]
    return Sheet(table.name, small_rows(grid, 1, strings), widths(grid, table.headings), len(grid), freeze=table.freeze, autofilter=f"A1:{corner}",
                 fit_width=True, favourable=favourable)


def write_book(path: Path, tables: Sequence[Table]) -> Path:
    """Write the tables as a workbook, one sheet each in order (temporary file, then
    replace, so a failure leaves no half file)."""
    strings = SharedStrings()
    sheets = [table_sheet(t, strings) for t in tables]
    with atomic_write(path) as temporary:
        write_xlsx(temporary, sheets, strings)
    return path
