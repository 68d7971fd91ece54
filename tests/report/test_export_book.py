"""The statements workbook at book size: totals that add up to the penny as formulas a
spreadsheet recomputes, £ formats, dates as dates, columns wide enough; the lines beside it
as Parquet or CSV exactly; the big book's summary grouped correctly."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import shutil
import subprocess
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from rich.console import Console

from carecontracts import cli
from carecontracts.engine.statement import STATEMENT_TYPES
from carecontracts.money import format_money
from carecontracts.periods import FinancialYear
from carecontracts.report import export
from carecontracts.report.book import summarise
from carecontracts.report.export import read_lines_csv, write_statements
from tests.report.workbook import evaluate, number

YEAR = FinancialYear(dt.date(2025, 4, 1))
SCHEMA = pa.schema([
    ("scenario", pa.string()), ("contract", pa.string()), ("component", pa.string()), ("payer", pa.string()), ("payee", pa.string()),
    ("month", pa.date32()), ("quantity", pa.decimal128(20, 8)), ("rate", pa.decimal128(18, 10)), ("amount", pa.decimal128(18, 2)),
    ("basis", pa.string()), ("service", pa.string()), ("currency", pa.string()),
])


def test_schema_is_the_engines() -> None:
    """The lines made here have the statement schema the engine produces."""
    assert SCHEMA.names == list(STATEMENT_TYPES)


def book_lines(contracts: int = 30, seed: int = 5) -> pa.Table:
    """Lines of a synthetic book: contracts paid by one or two of five commissioners, some
    sub-contracts paid by a provider, amounts in pence up to £90m (some negative), a few
    months missing, details only on activity lines."""
    rng = random.Random(seed)
    rows = []
    for c in range(contracts):
        payers = [f"ICB-{rng.randrange(5)}"] if c % 7 else ["ICB-0", "ICB-1"]
        if c % 11 == 10:
            payers = [f"PROV-{(c - 1) % 9}"]  # a sub-contract: the prime pays
        payee = f"PROV-{c % 9}"
        for component in ("core", "activity") if c % 3 else ("core",):
            for month in YEAR.months:
                if rng.random() < 0.1:
                    continue
                for payer in payers:
                    pence = rng.randrange(-5_000_000, 9_000_000_000)
                    rows.append({
                        "scenario": "actual", "contract": f"C{c:03d}-2025", "component": component, "payer": payer, "payee": payee,
                        "month": month, "quantity": Decimal(rng.randrange(0, 10**9)).scaleb(-4), "rate": Decimal(rng.randrange(1, 10**9)).scaleb(-6),
                        "amount": Decimal(pence).scaleb(-2), "basis": f"{component} & more <{c}>, month {month:%m}",
                        "service": "elective" if component == "activity" else None, "currency": "HB12C" if component == "activity" else None,
                    })
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def expected_totals(lines: pa.Table) -> dict[str, dict]:
    """Independent exact sums: by (payer, payee, contract) and month, by payer, by payee."""
    totals: dict[str, dict] = {"row": defaultdict(Decimal), "payer": defaultdict(Decimal), "payee": defaultdict(Decimal)}
    for line in lines.to_pylist():
        totals["row"][(line["payer"], line["payee"], line["contract"], line["month"])] += line["amount"]
        totals["payer"][(line["payer"], line["month"])] += line["amount"]
        totals["payee"][(line["payee"], line["month"])] += line["amount"]
    return totals


def blocks(sheet) -> dict[str, int]:
    """Rows of the Summary's landmarks, found by their labels: the blocks' titles, their
    total rows and the row that sums every line."""
    found, section = {}, ""
    for row_number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
        label = row[0] if row else None
        if label in ("By payer", "By payee", "By contract"):
            found[label], section = row_number, label.split()[1]
        elif label == "total":
            found[f"{section} total"] = row_number
        elif isinstance(label, str) and label.startswith("every line"):
            found["every line"] = row_number
    return found


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, Path]:
    """A book of 30 contracts written as a workbook with every line in it."""
    lines = book_lines()
    path = tmp_path_factory.mktemp("book") / "statements.xlsx"
    assert write_statements(lines, path, year=YEAR, title="Statements 2025-26") == [path]
    return lines, path


def month_columns(sheet) -> dict[dt.date, int]:
    """Summary columns of the months, read from their headings: each the month's date, shown
    as its month of the financial year (M1 Apr 2025 ...)."""
    columns = {}
    for cell in sheet[2]:
        if isinstance(cell.value, dt.datetime):
            month = cell.value.date()
            assert cell.number_format == f'"M{YEAR.months.index(month) + 1} "mmm yyyy'
            columns[month] = cell.column
    return columns


def test_summary_totals_equal_the_lines_to_the_penny(written: tuple[pa.Table, Path]) -> None:
    """Every contract row, party row and total of the Summary, formulas evaluated over the
    cells they name, equals an independent Decimal sum of the lines."""
    lines, path = written
    book = load_workbook(path)
    sheet = book["Summary"]
    expected = expected_totals(lines)
    grand = sum((line["amount"] for line in lines.to_pylist()), Decimal(0))
    months = month_columns(sheet)
    assert sorted(months) == YEAR.months
    total_column = max(months.values()) + 1
    assert sheet.cell(2, total_column).value == "total"
    marks = blocks(sheet)
    value = lambda row, column: evaluate(book, "Summary", sheet.cell(row, column).value)  # noqa: E731

    contract_rows = range(marks["By contract"] + 2, marks["contract total"])
    seen = set()
    for row in contract_rows:
        key = tuple(sheet.cell(row, c).value for c in (1, 2, 3))
        seen.add(key)
        for month, column in months.items():
            assert number(sheet.cell(row, column).value) == expected["row"].get((*key, month), Decimal(0))
        assert value(row, total_column) == sum((expected["row"].get((*key, m), Decimal(0)) for m in months), Decimal(0))
    assert seen == {k[:3] for k in expected["row"]}

    for side, label, column in (("payer", "By payer", 1), ("payee", "By payee", 2)):
        names = set()
        for row in range(marks[label] + 1, marks[f"{side} total"]):
            name = sheet.cell(row, column).value
            names.add(name)
            for month, month_column in months.items():
                assert value(row, month_column) == expected[side].get((name, month), Decimal(0)), (side, name, month)
        assert names == {k[0] for k in expected[side]}
        for month, month_column in months.items():
            assert value(marks[f"{side} total"], month_column) == sum((v for (_, m), v in expected[side].items() if m == month), Decimal(0))
        assert value(marks[f"{side} total"], total_column) == grand

    assert value(marks["contract total"], total_column) == grand
    assert value(marks["every line"], total_column) == grand


def test_summary_formulas_name_the_contract_rows(written: tuple[pa.Table, Path]) -> None:
    """Each party's SUMIF looks up its column of the contract rows and sums the same month's
    column over exactly those rows; each total SUMs the rows of its block."""
    lines, path = written
    sheet = load_workbook(path)["Summary"]
    marks = blocks(sheet)
    first, last = marks["By contract"] + 2, marks["contract total"] - 1
    assert sheet.cell(first - 1, 3).value == "contract" and sheet.cell(last, 3).value and sheet.cell(last + 1, 1).value == "total"
    months = month_columns(sheet)
    for side, label, name_column in (("payer", "By payer", "A"), ("payee", "By payee", "B")):
        top = marks[label] + 1
        for row in range(top, marks[f"{side} total"]):
            for column in months.values():
                letter = sheet.cell(row, column).column_letter
                assert sheet.cell(row, column).value == f"=SUMIF(${name_column}${first}:${name_column}${last},${name_column}{row},{letter}${first}:{letter}${last})"
        for column in months.values():
            letter = sheet.cell(1, column).column_letter
            assert sheet.cell(marks[f"{side} total"], column).value == f"=SUM({letter}{top}:{letter}{marks[f'{side} total'] - 1})"
    for column in months.values():
        letter = sheet.cell(1, column).column_letter
        assert sheet.cell(last + 1, column).value == f"=SUM({letter}{first}:{letter}{last})"
    amount = chr(ord("A") + SCHEMA.names.index("amount"))
    total_column = max(months.values()) + 1
    assert sheet.cell(marks["every line"], total_column).value == f"=SUM('Lines'!${amount}$2:${amount}${lines.num_rows + 1})"


def test_formats_dates_and_widths(written: tuple[pa.Table, Path]) -> None:
    """Money is in £, months are dates, quantities numbers; the frozen headings and the
    autofilter are set; every money column is wider than its widest amount in £."""
    lines, path = written
    book = load_workbook(path)
    summary, detail = book["Summary"], book["Lines"]
    months = month_columns(summary)
    marks = blocks(summary)
    assert summary.freeze_panes == "D3" and detail.freeze_panes == "A2"
    assert summary.auto_filter.ref == f"A{marks['By contract'] + 1}:{summary.cell(1, max(months.values()) + 1).column_letter}{marks['contract total'] - 1}"
    assert detail.auto_filter.ref == f"A1:L{lines.num_rows + 1}"
    for column in [*months.values(), max(months.values()) + 1]:
        letter = summary.cell(1, column).column_letter
        shown = []
        for row in range(marks["By payer"] + 1, marks["every line"] + 1):
            cell = summary.cell(row, column)
            if cell.value is not None and row != marks["By contract"] + 1:  # not the headings
                assert "£" in cell.number_format, (cell.coordinate, cell.number_format)
                shown.append(format_money(evaluate(book, "Summary", cell.value)))
        assert summary.column_dimensions[letter].width >= max(len(s) for s in shown) + 1, letter
    names = [c.value for c in detail[1]]
    assert names == SCHEMA.names
    amounts = []
    for row, line in zip(detail.iter_rows(min_row=2), lines.to_pylist()):
        cells = dict(zip(names, row))
        assert cells["month"].is_date and cells["month"].value.date() == line["month"]
        assert "£" in cells["amount"].number_format and number(cells["amount"].value) == line["amount"]
        assert isinstance(cells["quantity"].value, (int, float)) and number(cells["quantity"].value) == line["quantity"]
        assert number(cells["rate"].value) == line["rate"]
        assert cells["basis"].value == line["basis"] and cells["service"].value == line["service"]
        amounts.append(format_money(line["amount"]))
    letter = chr(ord("A") + names.index("amount"))
    assert detail.column_dimensions[letter].width >= max(len(a) for a in amounts) + 1


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_lines_beside_the_workbook_round_trip_exactly(kind: str, tmp_path: Path) -> None:
    """With the lines in Parquet or CSV the workbook holds the summary only, and the file
    reads back to exactly the lines: Decimal amounts, dates, missing details."""
    lines = book_lines(contracts=25, seed=9)
    path = tmp_path / "statements.xlsx"
    paths = write_statements(lines, path, lines_as=kind, year=YEAR)
    assert paths == [path, tmp_path / f"statements-lines.{kind}"]
    back = pq.read_table(paths[1]) if kind == "parquet" else read_lines_csv(paths[1], SCHEMA)
    assert back.schema == SCHEMA
    assert back.to_pylist() == lines.to_pylist()
    book = load_workbook(path)
    assert book.sheetnames == ["Summary"]
    sheet = book["Summary"]
    marks = blocks(sheet)
    total = next(c for c in sheet[marks["every line"]] if c.value is not None and c.column > 1)
    assert number(total.value) == sum((line["amount"] for line in lines.to_pylist()), Decimal(0))
    assert f"statements-lines.{kind}" in sheet.cell(marks["every line"], 1).value


def test_lines_past_the_row_limit_go_on_more_sheets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sheet holds 1,048,576 rows: the lines beyond go on Lines (2), ... and the Summary's
    check sums all of them (the limit made small here)."""
    monkeypatch.setattr(export, "MAX_ROWS", 101)
    lines = book_lines(contracts=6, seed=3)
    path = tmp_path / "statements.xlsx"
    write_statements(lines, path, year=YEAR)
    book = load_workbook(path)
    parts = [name for name in book.sheetnames if name.startswith("Lines")]
    assert parts == ["Lines", *[f"Lines ({n})" for n in range(2, len(parts) + 1)]] and len(parts) == -(-lines.num_rows // 100)
    assert sum(book[p].max_row - 1 for p in parts) == lines.num_rows
    sheet = book["Summary"]
    marks = blocks(sheet)
    cell = next(c for c in sheet[marks["every line"]] if c.value is not None and c.column > 1)
    assert evaluate(book, "Summary", cell.value) == sum((line["amount"] for line in lines.to_pylist()), Decimal(0))


def test_no_lines_still_write_a_workbook(tmp_path: Path) -> None:
    """A period with no lines gives a workbook with zero totals, not an error."""
    path = tmp_path / "empty.xlsx"
    write_statements(SCHEMA.empty_table(), path, year=YEAR)
    book = load_workbook(path)
    assert book.sheetnames == ["Summary", "Lines"]


def libreoffice_values(path: Path, folder: Path) -> list[list[str]]:
    """The Summary as LibreOffice computes and shows it (CSV of the first sheet)."""
    subprocess.run(["soffice", "--headless", "--convert-to", "csv", "--outdir", str(folder), str(path)], check=True, capture_output=True, timeout=120)
    return list(csv.reader((folder / f"{path.stem}.csv").open(encoding="utf-8", errors="replace")))


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_computes_the_same_totals(written: tuple[pa.Table, Path], tmp_path: Path) -> None:
    """Opened in LibreOffice, the formulas (written without stored values) compute every
    commissioner's total and the grand total equal to the lines' sums, to the penny."""
    lines, path = written
    rows = libreoffice_values(path, tmp_path)
    expected = expected_totals(lines)
    grand = sum((line["amount"] for line in lines.to_pylist()), Decimal(0))
    by_payer = defaultdict(Decimal)
    for (payer, _), amount in expected["payer"].items():
        by_payer[payer] += amount
    shown = {row[0]: Decimal(row[-1]) for row in rows if row and row[0].startswith("ICB-") and not row[1]}
    assert shown == {payer: amount for payer, amount in by_payer.items() if payer.startswith("ICB-")}
    totals = [Decimal(row[-1]) for row in rows if row and (row[0] == "total" or row[0].startswith("every line"))]
    assert totals == [grand] * 4


def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The CLI's printed output, captured wide."""
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=buffer, width=200))
    return buffer


def test_big_book_summary_groups_by_payer_and_payee(monkeypatch: pytest.MonkeyPatch) -> None:
    """More than 20 contracts: totals by payer and payee (the rest in one row), the largest
    contracts and the grand total, each equal to the lines' independent sums."""
    lines = book_lines(contracts=60, seed=11)
    monkeypatch.setattr(cli, "SHOWN_PARTIES", 4)  # so both tables end in a row for the rest
    buffer = captured(monkeypatch)
    grand = cli.print_summary(lines, YEAR.months, "Statements 2025-26 (Big)")
    text = buffer.getvalue()
    records = lines.to_pylist()
    assert grand == sum((r["amount"] for r in records), Decimal(0))
    assert f"Total {format_money(grand)}: the sum of all {len(records):,} lines" in text
    sections = {"payer": text.split("By payer")[1].split("By payee")[0], "payee": text.split("By payee")[1].split("largest contracts")[0]}
    for side in ("payer", "payee"):
        sums: dict[str, Decimal] = defaultdict(Decimal)
        counts: dict[str, int] = defaultdict(int)
        for r in records:
            sums[r[side]] += r["amount"]
            counts[r[side]] += 1
        ranked = sorted(sums, key=lambda name: (-sums[name], name))
        for name in ranked[: cli.SHOWN_PARTIES]:
            row = next(line for line in sections[side].splitlines() if line.startswith(f"│ {name} "))
            assert format_money(sums[name]) in row and f"{counts[name]:,}" in row
        assert len(ranked) > cli.SHOWN_PARTIES
        if len(ranked) > cli.SHOWN_PARTIES:
            rest = ranked[cli.SHOWN_PARTIES:]
            row = next(line for line in sections[side].splitlines() if f"{len(rest):,} more {side}s" in line)
            assert format_money(sum((sums[n] for n in rest), Decimal(0))) in row
    by_contract: dict[str, Decimal] = defaultdict(Decimal)
    for r in records:
        by_contract[r["contract"]] += r["amount"]
    largest = sorted(by_contract, key=lambda c: (-by_contract[c], c))[: cli.SHOWN_CONTRACTS]
    listed = [line.split("│")[1].strip() for line in text.split("largest contracts")[1].splitlines() if line.startswith("│ C")]
    assert listed == largest


def test_summarise_matches_independent_sums() -> None:
    """The book summary's groups are exact, and the payers' totals add up to the total."""
    lines = book_lines(contracts=40, seed=2)
    book = summarise(lines)
    records = lines.to_pylist()
    assert book.total == sum((r["amount"] for r in records), Decimal(0))
    assert sum((t.amount for t in book.by_payer), Decimal(0)) == book.total == sum((t.amount for t in book.by_payee), Decimal(0))
    assert book.contracts == len({r["contract"] for r in records})
    for total in book.by_payee:
        assert total.contracts == len({r["contract"] for r in records if r["payee"] == total.name})


def test_big_book_positions_list_the_largest_and_total_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big book's positions name the parties with the most money in or out, and the total
    row and the conservation check still cover every party."""
    rng = random.Random(4)
    payments = [Decimal(rng.randrange(1, 10**9)).scaleb(-2) for _ in range(30)]
    rows = [{"party": f"ICB-{i:02d}", "role": "commissioner", "income": Decimal("0.00"), "payments": p, "net": -p, "costs": None, "margin": None}
            for i, p in enumerate(payments)]
    rows.append({"party": "PROV", "role": "provider", "income": sum(payments, Decimal(0)), "payments": Decimal("0.00"),
                 "net": sum(payments, Decimal(0)), "costs": None, "margin": None})
    money = pa.decimal128(18, 2)
    table = pa.Table.from_pylist(rows, schema=pa.schema([("party", pa.string()), ("role", pa.string()), ("income", money), ("payments", money),
                                                          ("net", money), ("costs", money), ("margin", money)]))
    buffer = captured(monkeypatch)
    cli.print_positions(table, "Positions", shown=5)
    text = buffer.getvalue()
    listed = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│ ") and "total" not in line]
    ranked = sorted(payments, reverse=True)
    assert listed == ["PROV", *[f"ICB-{payments.index(p):02d}" for p in ranked[:4]]]
    assert "the 5 largest parties of 31" in text
    assert f"Money is conserved: every party's payments ({format_money(sum(payments, Decimal(0)))})" in text
