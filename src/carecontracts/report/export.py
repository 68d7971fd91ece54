"""Write statement lines to CSV, Parquet or XLSX: a workbook with a Summary sheet (totals by
payer, by payee and by contract, month by month, as formulas), the parties' positions and
every line; or the summary workbook with the lines beside it as Parquet or CSV."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from openpyxl.styles import Font

from carecontracts.money import format_money
from carecontracts.periods import FinancialYear
from carecontracts.report.xlsx import (
    MAX_ROWS, MONEY_CODE, Cell, Column, Formula, SharedStrings, Sheet, Style, Value, cell_ref, column_letter, sheet_ref, small_rows,
    table_rows, write_xlsx,
)

FORMATS = ("csv", "parquet", "xlsx")
LINE_FORMATS = ("xlsx", "parquet", "csv")  # where a workbook's lines go: in it, or beside it
MONEY_FORMAT = MONEY_CODE  # the £ format of every workbook the project writes
BOLD = Font(bold=True)
LINE_STYLES = {"month": Style.MONTH, "quantity": Style.QUANTITY, "rate": Style.RATE, "amount": Style.MONEY}
NAME_COLUMNS = 3  # payer, payee, contract: the Summary's columns before the months


def format_of(path: Path) -> str:
    """The export format named by a file's suffix."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(f"{path}: cannot export to '.{suffix}'; expected a file ending .csv, .parquet or .xlsx")
    return suffix


def _atomic(path: Path) -> Path:
    """A temporary path beside `path`, so a failed export leaves no half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    return Path(name)


def lines_path(workbook: Path, kind: str) -> Path:
    """Where a workbook's lines go when they are written beside it: statements-2025-26-lines.parquet."""
    return workbook.with_name(f"{workbook.stem}-lines.{kind}")


def export_lines(lines: pa.Table, path: Path, positions: pa.Table | None = None, year: FinancialYear | None = None, title: str | None = None) -> Path:
    """Write statement lines to `path` in the format its suffix names (an XLSX also gets the
    summary and, when given, the parties' positions)."""
    kind = format_of(path)
    if kind == "xlsx":
        return write_statements(lines, path, positions, "xlsx", year, title)[0]
    temporary = _atomic(path)
    try:
        if kind == "csv":
            pacsv.write_csv(lines, temporary)
        else:
            pq.write_table(lines, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_lines_csv(path: Path, schema: pa.Schema) -> pa.Table:
    """Statement lines from a CSV written by `export_lines`, with their exact types (an
    empty field is a missing value; a quoted empty one an empty string)."""
    options = pacsv.ConvertOptions(column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False)
    return pacsv.read_csv(path, convert_options=options).select(schema.names).cast(schema)


def write_statements(lines: pa.Table, path: Path, positions: pa.Table | None = None, lines_as: str = "xlsx",
                     year: FinancialYear | None = None, title: str | None = None) -> list[Path]:
    """The statements workbook at `path`, and the lines file beside it when `lines_as` is
    parquet or csv (then the workbook holds the summary and positions only). Returns the
    paths written, the workbook first."""
    if lines_as not in LINE_FORMATS:
        raise ValueError(f"lines as '{lines_as}': expected one of {', '.join(LINE_FORMATS)}")
    written = [path]
    beside = None
    if lines_as != "xlsx":
        beside = export_lines(lines, lines_path(path, lines_as))
        written.append(beside)
    temporary = _atomic(path)
    try:
        write_workbook(lines, temporary, positions, year, title, beside)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return written


@dataclasses.dataclass(frozen=True)
class MonthlyTotals:
    """Exact totals per (payer, payee, contract) and month: the Summary's contract rows."""

    months: list[dt.date]
    rows: list[tuple[tuple[str, str, str], dict[dt.date, Decimal]]]

    def column(self, month: dt.date) -> list[Decimal]:
        """Each row's amount in a month (zero where it has none)."""
        return [by_month.get(month, Decimal(0)) for _, by_month in self.rows]


def monthly_totals(lines: pa.Table) -> MonthlyTotals:
    """Totals per (payer, payee, contract) and month, summed by Arrow in exact decimals,
    rows sorted by contract, then payer and payee."""
    grouped = lines.group_by(["contract", "payer", "payee", "month"]).aggregate([("amount", "sum")])
    totals: dict[tuple[str, str, str], dict[dt.date, Decimal]] = defaultdict(dict)
    columns = [grouped.column(c).to_pylist() for c in ("payer", "payee", "contract", "month", "amount_sum")]
    for payer, payee, contract, month, amount in zip(*columns):
        totals[(payer, payee, contract)][month] = amount
    months = sorted(set(columns[3]))
    return MonthlyTotals(months, sorted(totals.items(), key=lambda item: (item[0][2], item[0][0], item[0][1])))


def month_heading(month: dt.date, year: FinancialYear | None) -> str:
    """M8 Nov 2025 (the month of the financial year, then the month), or Nov 2025."""
    name = month.strftime("%b %Y")
    if year is not None and month in year:
        return f"M{year.months.index(month) + 1} {name}"
    return name


def money_width(values: Sequence[Decimal], heading: str = "") -> float:
    """A column width (in characters) that shows every amount in £ format and the heading:
    the widest text is the largest amount's or the most negative one's."""
    longest = max(len(format_money(max(values))), len(format_money(min(values)))) if values else 0
    return max(longest * 1.1 + 2, len(heading) + 2, 10)


def text_width(values: Sequence[str | None], heading: str = "", cap: int = 60) -> float:
    """A column width for texts: the longest (up to `cap` characters) and the heading."""
    longest = max([len(v) for v in values if v] + [0])
    return min(max(longest, len(heading)) + 2, cap + 2)


def summary_sheet(lines: pa.Table, strings: SharedStrings, year: FinancialYear | None, title: str,
                  lines_sum: tuple[str, Formula | Decimal]) -> Sheet:
    """The Summary sheet: by payer and by payee (SUMIF over the contract rows), then by
    contract (amounts, with SUM totals); a row that sums every line beside the total."""
    totals = monthly_totals(lines)
    months = totals.months
    width = NAME_COLUMNS + len(months) + 1
    month_columns = range(NAME_COLUMNS + 1, NAME_COLUMNS + len(months) + 1)
    total_column = width
    headings = ["payer", "payee", "contract", *[month_heading(m, year) for m in months], "total"]
    payers = sorted({key[0] for key, _ in totals.rows})
    payees = sorted({key[1] for key, _ in totals.rows})
    # Rows: 1 title, 2 headings, 3 "by payer", payers, total, blank, "by payee", payees, total,
    # blank, "by contract", headings, contracts, total, every line.
    payer_first = 4
    payer_total = payer_first + len(payers)
    payee_first = payer_total + 3
    payee_total = payee_first + len(payees)
    contract_heading = payee_total + 3
    first, last = contract_heading + 1, contract_heading + len(totals.rows)
    contract_total = last + 1
    column_sums = [sum(totals.column(m), Decimal(0)) for m in months]
    grand = sum(column_sums, Decimal(0))

    def sumif(name_column: int, row: int, column: int, value: Decimal) -> Cell:
        """A party's month: SUMIF over the contract rows' party column."""
        names, amounts = (f"{cell_ref(name_column, first, True)}:{cell_ref(name_column, max(last, first), True)}",
                          f"{column_letter(column)}${first}:{column_letter(column)}${max(last, first)}")
        return Cell(Formula(f"SUMIF({names},${column_letter(name_column)}{row},{amounts})", value), Style.MONEY)

    def row_total(row: int, value: Decimal, style: Style = Style.MONEY) -> Cell:
        """The row's months added up."""
        return Cell(Formula(f"SUM({cell_ref(month_columns[0], row)}:{cell_ref(month_columns[-1], row)})", value) if months else value, style)

    def column_totals(top: int, bottom: int) -> list[Cell]:
        """A block's total row: SUM of each month and of the total column above it."""
        if bottom < top:  # an empty block: nothing to add up
            return [Cell(Decimal(0), Style.MONEY_TOTAL) for _ in range(len(months) + 1)]
        cells = [Cell(Formula(f"SUM({cell_ref(c, top)}:{cell_ref(c, bottom)})", v), Style.MONEY_TOTAL)
                 for c, v in zip(month_columns, column_sums)]
        return [*cells, Cell(Formula(f"SUM({cell_ref(total_column, top)}:{cell_ref(total_column, bottom)})", grand), Style.MONEY_TOTAL)]

    by_party: dict[int, dict[str, list[Decimal]]] = {0: defaultdict(lambda: [Decimal(0)] * len(months)), 1: defaultdict(lambda: [Decimal(0)] * len(months))}
    for key, by_month in totals.rows:
        for side in (0, 1):
            sums = by_party[side][key[side]]
            for index, month in enumerate(months):
                sums[index] += by_month.get(month, Decimal(0))

    heading_cells: list[Cell | Value] = [Cell(h, Style.HEADING if i < NAME_COLUMNS else Style.HEADING_NUMBER) for i, h in enumerate(headings)]
    rows: list[list[Cell | Value]] = [[Cell(title, Style.BOLD)], heading_cells, [Cell("By payer", Style.BOLD)]]
    for side, names, top in ((0, payers, payer_first), (1, payees, payee_first)):
        for offset, name in enumerate(names):
            row, sums = top + offset, by_party[side][name]
            label = [name, None, None] if side == 0 else [None, name, None]
            rows.append([*label, *[sumif(side + 1, row, c, v) for c, v in zip(month_columns, sums)], row_total(row, sum(sums, Decimal(0)))])
        rows.append([Cell("total", Style.BOLD), None, None, *column_totals(top, top + len(names) - 1)])
        rows.append([])
        rows.append([Cell("By payee" if side == 0 else "By contract", Style.BOLD)])
    rows.append(heading_cells)
    for offset, (key, by_month) in enumerate(totals.rows):
        values = [by_month.get(m, Decimal(0)) for m in months]
        rows.append([*key, *[Cell(v, Style.MONEY) for v in values], row_total(first + offset, sum(values, Decimal(0)))])
    rows.append([Cell("total", Style.BOLD), None, None, *column_totals(first, last)])
    check_label, check_value = lines_sum
    rows.append([Cell(check_label, Style.BOLD), None, None, *[None] * len(months), Cell(check_value, Style.MONEY_TOTAL)])

    widths = [text_width(payers, headings[0]), text_width(payees, headings[1]), text_width([k[2] for k, _ in totals.rows], headings[2])]
    widths[0] = max(widths[0], len("By contract") + 2)
    everything = [*[v for _, by_month in totals.rows for v in by_month.values()], *column_sums, grand]
    for index, month in enumerate(months):
        widths.append(money_width([*totals.column(month), column_sums[index], *[s[index] for p in by_party.values() for s in p.values()]], headings[NAME_COLUMNS + index]))
    widths.append(money_width(everything, "total"))
    return Sheet("Summary", small_rows(rows, 1, strings), widths, len(rows), freeze=cell_ref(NAME_COLUMNS + 1, 3),
                 autofilter=f"A{contract_heading}:{column_letter(width)}{max(last, contract_heading)}", fit_width=True)


def lines_sheets(lines: pa.Table, strings: SharedStrings) -> list[Sheet]:
    """Every line with typed cells (months as dates, money in £, quantities as numbers),
    over as many sheets as Excel's row limit needs: Lines, Lines (2), ..."""
    names = lines.column_names
    styles = [LINE_STYLES.get(n, Style.TEXT) for n in names]
    widths = [column_width(lines.column(n), n, s) for n, s in zip(names, styles)]
    columns = [Column(n, s, w) for n, s, w in zip(names, styles, widths)]
    per_sheet = MAX_ROWS - 1
    sheets = []
    for number, start in enumerate(range(0, max(lines.num_rows, 1), per_sheet), start=1):
        part = lines.slice(start, per_sheet)
        heading = small_rows([[Cell(n, Style.HEADING if s is Style.TEXT else Style.HEADING_NUMBER) for n, s in zip(names, styles)]], 1, strings)
        rows = _chain(heading, table_rows(part, columns, 2, strings))
        corner = f"{column_letter(len(names))}{part.num_rows + 1}"
        sheets.append(Sheet("Lines" if number == 1 else f"Lines ({number})", rows, widths, part.num_rows + 1, freeze="A2", autofilter=f"A1:{corner}"))
    return sheets


def _chain(*parts: Iterable[bytes]) -> Iterator[bytes]:
    """The pieces of several iterables in turn (rows produced lazily, as the sheet is written)."""
    for part in parts:
        yield from part


def column_width(values: pa.ChunkedArray, heading: str, style: Style) -> float:
    """A Lines column's width from its widest value (text up to 100 characters)."""
    if style is Style.MONEY:
        low, high = pc.min_max(values).values()
        return money_width([v.as_py() for v in (low, high) if v.is_valid], heading)
    if style is Style.MONTH:
        return max(len(heading) + 2, 10)
    if style in (Style.QUANTITY, Style.RATE):
        low, high = pc.min_max(values).values()
        longest = max([len(f"{v.as_py().normalize():,f}") for v in (low, high) if v.is_valid] + [4])
        return max(min(longest + 4, 24), len(heading) + 2)
    longest = pc.max(pc.utf8_length(values)).as_py() or 0
    return min(max(longest, len(heading)) + 2, 100 if heading == "basis" else 60)


def positions_sheet(positions: pa.Table, strings: SharedStrings) -> Sheet:
    """Every party's income, payments, net, costs and margin, money in £."""
    names = positions.column_names
    records = positions.to_pylist()
    money_columns = [pa.types.is_decimal(positions.schema.field(n).type) for n in names]
    rows = [[Cell(n, Style.HEADING_NUMBER if is_money else Style.HEADING) for n, is_money in zip(names, money_columns)]]
    for record in records:
        rows.append([Cell(record[n], Style.MONEY if is_money else Style.TEXT) for n, is_money in zip(names, money_columns)])
    widths = [money_width([r[n] for r in records if r[n] is not None], n) if is_money else text_width([r[n] for r in records], n)
              for n, is_money in zip(names, money_columns)]
    return Sheet("Positions", small_rows(rows, 1, strings), widths, len(rows), freeze="B2",
                 autofilter=f"A1:{column_letter(len(names))}{len(rows)}", fit_width=True)


def write_workbook(lines: pa.Table, path: Path, positions: pa.Table | None = None, year: FinancialYear | None = None,
                   title: str | None = None, lines_file: Path | None = None) -> None:
    """The statements workbook: Summary, Positions (when given) and Lines (unless the lines
    are in `lines_file`, beside the workbook)."""
    strings = SharedStrings()
    count = lines.num_rows
    contracts = len(pc.unique(lines.column("contract")))
    where = f"lines in {lines_file.name}" if lines_file is not None else "every line in the sheet Lines"
    heading = f"{title or 'Statements'}: {count:,} lines, {contracts:,} contracts; {where}"
    details = [] if lines_file is not None else lines_sheets(lines, strings)
    amount = lines.column_names.index("amount") + 1
    total: Decimal = pc.sum(lines.column("amount")).as_py() or Decimal(0)  # exact: decimal128(38, 2)
    if details:
        ranges = ",".join(sheet_ref(s.name, f"${column_letter(amount)}$2:${column_letter(amount)}${max(s.last_row, 2)}") for s in details)
        lines_sum: tuple[str, Formula | Decimal] = ("every line (sheet Lines)", Formula(f"SUM({ranges})", total))
    else:
        lines_sum = (f"every line ({lines_file.name})" if lines_file is not None else "every line", total)
    sheets = [summary_sheet(lines, strings, year, heading, lines_sum)]
    if positions is not None:
        sheets.append(positions_sheet(positions, strings))
    write_xlsx(path, [*sheets, *details], strings)
