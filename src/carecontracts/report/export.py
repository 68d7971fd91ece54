"""Write statement lines to CSV, Parquet or XLSX: a workbook with a Summary sheet (totals by
payer, by payee and by contract, month by month, as formulas), the parties' positions and
every line; or the summary workbook with the lines beside it as Parquet or CSV."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from carecontracts.machine import atomic_write
from carecontracts.periods import FinancialYear
from carecontracts.report.sheets import money_width, text_width
from carecontracts.report.xlsx import (
    MAX_ROWS, Cell, Column, Formula, SharedStrings, Sheet, Style, Value, cell_ref, column_letter, financial_month_heading, sheet_ref, small_rows,
    table_rows, write_xlsx,
)

FORMATS = ("csv", "parquet", "xlsx")
LINE_FORMATS = ("xlsx", "parquet", "csv")  # where a workbook's lines go: in it, or beside it
LINE_STYLES = {"month": Style.MONTH, "adjusts": Style.MONTH, "quantity": Style.QUANTITY, "rate": Style.RATE, "amount": Style.MONEY}
NAME_COLUMNS = 3  # payer, payee, contract: the Summary's columns before the months


def format_of(path: Path) -> str:
    """The export format named by a file's suffix."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(f"{path}: cannot export to '.{suffix}'; expected a file ending .csv, .parquet or .xlsx")
    return suffix




def lines_path(workbook: Path, kind: str) -> Path:
    """Where a workbook's lines go when they are written beside it: statements-2025-26-lines.parquet."""
    return workbook.with_name(f"{workbook.stem}-lines.{kind}")


def export_lines(lines: pa.Table, path: Path, positions: pa.Table | None = None, year: FinancialYear | None = None, title: str | None = None) -> Path:
    """Write statement lines to `path` in the format its suffix names (an XLSX also gets the
    summary and, when given, the parties' positions)."""
    kind = format_of(path)
    if kind == "xlsx":
        return write_statements(lines, path, positions, "xlsx", year, title)[0]
    with atomic_write(path) as temporary:
        if kind == "csv":
            pacsv.write_csv(lines, temporary)
        else:
            pq.write_table(lines, temporary)
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
    with atomic_write(path) as temporary:
        write_workbook(lines, temporary, positions, year, title, beside)
    return written


KEYS = ["payer", "payee", "contract"]  # a Summary contract row: who pays whom under which contract


def monthly_totals(lines: pa.Table) -> tuple[list[dt.date], pa.Table]:
    """The months present, and one row per (payer, payee, contract) with its amount in each
    of them (m0, m1, ...; zero where it has none) and its total, summed by Arrow in exact
    decimals, rows sorted by contract, then payer and payee."""
    grouped = lines.group_by([*KEYS, "month"]).aggregate([("amount", "sum")])
    months = sorted(pc.unique(grouped.column("month")).to_pylist())
    table = grouped.group_by(KEYS).aggregate([("amount_sum", "sum")]).rename_columns([*KEYS, "total"])
    zero = pa.scalar(Decimal(0), grouped.schema.field("amount_sum").type)
    for index, month in enumerate(months):
        part = grouped.filter(pc.equal(grouped.column("month"), pa.scalar(month, grouped.schema.field("month").type)))
        table = table.join(part.select([*KEYS, "amount_sum"]).rename_columns([*KEYS, f"m{index}"]), KEYS, join_type="left outer")
    table = table.select([*KEYS, *[f"m{i}" for i in range(len(months))], "total"])
    table = pa.table({n: table.column(n).fill_null(zero) if n.startswith("m") else table.column(n) for n in table.column_names})
    return months, table.sort_by([("contract", "ascending"), ("payer", "ascending"), ("payee", "ascending")])


def month_heading(month: dt.date, year: FinancialYear | None) -> str:
    """M8 Nov 2025 (the month of the financial year, then the month), or Nov 2025."""
    name = month.strftime("%b %Y")
    if year is not None and month in year:
        return f"M{year.number(month)} {name}"
    return name


def month_heading_cell(month: dt.date, year: FinancialYear | None) -> Cell:
    """A month's column heading as the month's date, shown as M8 Nov 2025 (or Nov 2025)."""
    if year is not None and month in year:
        return Cell(month, financial_month_heading(year.number(month)))
    return Cell(month, Style.HEADING_MONTH)


def extremes(values: pa.ChunkedArray | pa.Array) -> list[Decimal]:
    """The smallest and largest of a column of amounts (nothing if it is empty)."""
    low, high = pc.min_max(values).values()
    return [v.as_py() for v in (low, high) if v.is_valid]


def party_totals(lines: pa.Table, side: str, months: list[dt.date]) -> dict[str, list[Decimal]]:
    """Each payer's (or payee's) exact total in each month, for the Summary's column widths."""
    grouped = lines.group_by([side, "month"]).aggregate([("amount", "sum")])
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(months))
    position = {m: i for i, m in enumerate(months)}
    for name, month, amount in zip(*(grouped.column(c).to_pylist() for c in (side, "month", "amount_sum"))):
        totals[name][position[month]] = amount
    return dict(sorted(totals.items()))


def summary_sheet(lines: pa.Table, strings: SharedStrings, year: FinancialYear | None, title: str,
                  lines_sum: tuple[str, Formula | Decimal]) -> Sheet:
    """The Summary sheet: by payer and by payee (SUMIF over the contract rows), then by
    contract (amounts, with SUM totals); a row that sums every line beside the total."""
    months, contracts = monthly_totals(lines)
    width = NAME_COLUMNS + len(months) + 1
    month_columns = range(NAME_COLUMNS + 1, NAME_COLUMNS + len(months) + 1)
    total_column = width
    headings = [*KEYS, *[month_heading(m, year) for m in months], "total"]
    by_payer, by_payee = party_totals(lines, "payer", months), party_totals(lines, "payee", months)
    # Rows: 1 title, 2 headings, 3 "By payer", payers, total, blank, "By payee", payees, total,
    # blank, "By contract", headings, contracts, total, every line.
    payer_first = 4
    payer_total = payer_first + len(by_payer)
    payee_first = payer_total + 3
    payee_total = payee_first + len(by_payee)
    contract_heading = payee_total + 3
    first, last = contract_heading + 1, contract_heading + contracts.num_rows
    column_sums = [pc.sum(contracts.column(f"m{i}")).as_py() or Decimal(0) for i in range(len(months))]
    grand = sum(column_sums, Decimal(0))

    def sumif(name_column: int, row: int, column: int) -> Cell:
        """A party's month: SUMIF over the contract rows' party column."""
        names, amounts = (f"{cell_ref(name_column, first, True)}:{cell_ref(name_column, last, True)}",
                          f"{column_letter(column)}${first}:{column_letter(column)}${last}")
        return Cell(Formula(f"SUMIF({names},${column_letter(name_column)}{row},{amounts})"), Style.MONEY)

    def row_sum(row: int) -> str:
        """The formula adding up a row's months."""
        return f"SUM({cell_ref(month_columns[0], row)}:{cell_ref(month_columns[-1], row)})" if months else "0"

    def column_totals(top: int, bottom: int) -> list[Cell | Value]:
        """A block's total row: SUM of each month and of the total column above it."""
        if bottom < top:  # an empty block: nothing to add up
            return [Cell(Decimal(0), Style.MONEY_TOTAL) for _ in range(len(months) + 1)]
        return [Cell(Formula(f"SUM({cell_ref(c, top)}:{cell_ref(c, bottom)})"), Style.MONEY_TOTAL) for c in [*month_columns, total_column]]

    heading_cells: list[Cell | Value] = [*(Cell(k, Style.HEADING) for k in KEYS), *(month_heading_cell(m, year) for m in months),
                                         Cell("total", Style.HEADING_NUMBER)]
    above: list[list[Cell | Value]] = [[Cell(title, Style.BOLD)], heading_cells, [Cell("By payer", Style.BOLD)]]
    for side, parties, top in ((0, by_payer, payer_first), (1, by_payee, payee_first)):
        for offset, name in enumerate(parties):
            row = top + offset
            label: list[Cell | Value] = [name, None, None] if side == 0 else [None, name, None]
            above.append([*label, *[sumif(side + 1, row, c) for c in month_columns], Cell(Formula(row_sum(row)), Style.MONEY)])
        above.append([Cell("total", Style.BOLD), None, None, *column_totals(top, top + len(parties) - 1)])
        above.append([])
        above.append([Cell("By payee" if side == 0 else "By contract", Style.BOLD)])
    above.append(heading_cells)

    # The contract rows, built from Arrow columns: names, amounts, and each row's SUM.
    numbers = pc.cast(pa.array(range(first, last + 1), pa.int64()), pa.string())
    left, right = column_letter(month_columns[0]) if months else "", column_letter(month_columns[-1]) if months else ""
    sums = pc.binary_join_element_wise(f"SUM({left}", numbers, f":{right}", numbers, ")", "") if months else pa.array(["0"] * contracts.num_rows, pa.string())
    block = contracts.drop_columns(["total"]).append_column("total", sums)
    columns = [*[Column(k, Style.TEXT, 0) for k in KEYS], *[Column(f"m{i}", Style.MONEY, 0) for i in range(len(months))],
               Column("total", Style.MONEY, 0, formula=True)]
    below: list[list[Cell | Value]] = [[Cell("total", Style.BOLD), None, None, *column_totals(first, last)]]
    check_label, check_value = lines_sum
    below.append([Cell(check_label, Style.BOLD), None, None, *[None] * len(months), Cell(check_value, Style.MONEY_TOTAL)])
    rows = _chain(small_rows(above, 1, strings), table_rows(block, columns, first, strings), small_rows(below, last + 1, strings))

    names = {k: pc.unique(contracts.column(k)).to_pylist() for k in KEYS}
    widths = [text_width(names[k], k) for k in KEYS]
    widths[0] = max(widths[0], len("By contract") + 2)
    for index in range(len(months)):
        of_parties = [p[index] for p in (*by_payer.values(), *by_payee.values())]
        values = [*extremes(contracts.column(f"m{index}")), *of_parties, column_sums[index]]
        widths.append(money_width(values, headings[NAME_COLUMNS + index]))
    totals = [*extremes(contracts.column("total")), *[sum(p, Decimal(0)) for p in (*by_payer.values(), *by_payee.values())], grand]
    widths.append(money_width(totals, "total"))
    return Sheet("Summary", rows, widths, last + 2, freeze=cell_ref(NAME_COLUMNS + 1, 3),
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
