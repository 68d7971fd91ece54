"""Write statement lines to CSV, Parquet or XLSX (with a month-by-month summary sheet)."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from carecontracts.periods import month_label

FORMATS = ("csv", "parquet", "xlsx")
MONEY_FORMAT = "#,##0.00;[Red]-#,##0.00"
BOLD = Font(bold=True)


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


def export_lines(lines: pa.Table, path: Path, positions: pa.Table | None = None) -> Path:
    """Write statement lines to `path` in the format its suffix names (an XLSX also gets
    the parties' positions, when given)."""
    kind = format_of(path)
    temporary = _atomic(path)
    try:
        if kind == "csv":
            pacsv.write_csv(lines, temporary)
        elif kind == "parquet":
            pq.write_table(lines, temporary)
        else:
            write_workbook(lines, temporary, positions)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def summary_by_month(lines: pa.Table) -> tuple[list[dt.date], list[tuple[tuple[str, str, str, str], dict[dt.date, Decimal]]]]:
    """Totals per (contract, component, payer, payee) and month, in statement order."""
    totals: dict[tuple[str, str, str, str], dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    months: set[dt.date] = set()
    columns = {name: lines.column(name).to_pylist() for name in ("contract", "component", "payer", "payee", "month", "amount")}
    for contract, component, payer, payee, month, amount in zip(*columns.values()):
        totals[(contract, component, payer, payee)][month] += amount
        months.add(month)
    return sorted(months), sorted(totals.items())


def write_workbook(lines: pa.Table, path: Path, positions: pa.Table | None = None) -> None:
    """An XLSX with a Summary sheet (months across, money formatted), every party's
    position (when given) and every line with its basis."""
    book = Workbook(write_only=True)
    months, rows = summary_by_month(lines)
    summary = book.create_sheet("Summary")
    for index in range(1, 6 + len(months)):
        summary.column_dimensions[get_column_letter(index)].width = 22 if index <= 4 else 16
    summary.freeze_panes = "E2"

    def cell(sheet, value, money: bool = False, bold: bool = False) -> WriteOnlyCell:
        written = WriteOnlyCell(sheet, value=value)
        if money:
            written.number_format = MONEY_FORMAT
        if bold:
            written.font = BOLD
        return written

    summary.append([cell(summary, h, bold=True) for h in ["contract", "component", "payer", "payee", *[month_label(m) for m in months], "total"]])
    for key, by_month in rows:
        values = [by_month.get(m, Decimal(0)) for m in months]
        summary.append([*key, *[cell(summary, v, money=True) for v in values], cell(summary, sum(values, Decimal(0)), money=True)])
    grand = [sum((r[1].get(m, Decimal(0)) for r in rows), Decimal(0)) for m in months]
    summary.append([cell(summary, "total", bold=True), "", "", "", *[cell(summary, v, True, True) for v in grand], cell(summary, sum(grand, Decimal(0)), True, True)])

    if positions is not None:
        sheet = book.create_sheet("Positions")
        names = positions.column_names
        for index, name in enumerate(names, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = 18 if name not in ("party", "role") else 22
        sheet.append([cell(sheet, n, bold=True) for n in names])
        for record in positions.to_pylist():
            sheet.append([cell(sheet, record[n], money=isinstance(record[n], Decimal)) for n in names])

    detail = book.create_sheet("Lines")
    names = lines.column_names
    detail.column_dimensions[get_column_letter(names.index("basis") + 1)].width = 90
    detail.freeze_panes = "A2"
    detail.append([cell(detail, n, bold=True) for n in names])
    amount_at, month_at = names.index("amount"), names.index("month")
    for record in lines.to_pylist():
        row: list = [record[n] for n in names]
        row[amount_at] = cell(detail, row[amount_at], money=True)
        row[month_at] = cell(detail, row[month_at])
        row[month_at].number_format = "yyyy-mm"
        detail.append(row)
    book.save(path)
