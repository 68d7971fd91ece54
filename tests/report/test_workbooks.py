"""Every workbook the product writes, opened as a finance analyst would open it: money as
numbers in £ in columns wide enough to show them, percentages and months as numbers with
their formats, the heading row frozen and filtered, totals as formulas over exactly the
rows above them that come to what the rows add up to; and `export` writing the months asked.

The workbooks are those of a small example workspace: statements (`pay year`), the outlook
report with its what-if, comparison and risk sheets (`report --simulate`), and `export`."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet
from typer.testing import CliRunner

from carecontracts.cli import app
from carecontracts.money import format_money
from tests.report.workbook import evaluate

runner = CliRunner()
NOV = dt.datetime(2025, 11, 1)
WHATIF = "name: half the HB12C work\nchanges:\n  - scale: {currency: [HB12C], from: 2025-12-01}\n    percent: -50\n"
# Text that should have been a number: £1,234.56, 40%, 1,234, Nov 2025, 2025-11 or 2025-11-01.
TEXT_NUMBER = re.compile(r"-?£?[\d,]+(\.\d+)?%?|[A-Z][a-z]{2} \d{4}|\d{4}-\d{2}(-\d{2})?")
# The report's money columns, sheet by sheet (a month heading is a money column too).
MONEY = {
    "Outturn": {"YTD M1–M8", "projected M9–M12", "outturn", "lowest", "highest", "plan"},
    "Monthly": {"year"},
    "Positions": {"income", "payments", "net", "lowest net", "highest net"},
    "What-if": {"baseline", "what-if", "difference"},
    "Comparison": {"expected", "lowest", "highest", "on outcomes"},
    "Risk summary": {"mean", "P5", "P50", "P95", "expected shortfall", "budget"},
    "Risk contracts": {"expected year", "mean", "P5", "P50", "P95"},
}
VARIANCE = {"Outturn": {"variance to plan"}}  # signed money: green when favourable, red when adverse
PERCENT = {"Comparison": {"% cost per 1% activity", "range / expected", "monthly variation"}, "Risk summary": {"P(loss)", "P(over budget)"}}


def cli(*args: object) -> str:
    """Run a command as a user would; its output."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example workspace with 4,000 activity rows, loaded, the year paid and its
    statements workbook written beside it as statements.xlsx."""
    ws = tmp_path_factory.mktemp("workbooks") / "example"
    cli("init", ws, "--rows", 4000)
    cli("load", "-w", ws)
    cli("pay", "year", "-w", ws, "--xlsx", ws.parent / "statements.xlsx")
    return ws


@pytest.fixture(scope="module")
def report(example: Path) -> tuple[Workbook, str]:
    """The outlook workbook as of November with every optional sheet (what-if, comparison,
    risk), and what the report command printed."""
    root = example.parent
    (root / "half.yaml").write_text(WHATIF)
    said = cli("report", "-w", example, "--as-of", "2025-11", "--whatif", root / "half.yaml", "--compare-service", "elective",
               "--simulate", 20, "--xlsx", root / "report.xlsx", "--html", root / "report.html")
    return load_workbook(root / "report.xlsx"), said


def data_rows(sheet: Worksheet) -> range:
    """The rows the autofilter covers below the heading: the table's data."""
    ref = sheet.auto_filter.ref
    assert ref and ref.startswith("A1:"), (sheet.title, ref)
    return range(2, int(re.search(r"\d+$", ref).group()) + 1)


def total_row(sheet: Worksheet) -> int | None:
    """The row right under the data if it is a total."""
    row = data_rows(sheet).stop
    return row if sheet.cell(row, 1).value == "total" else None


def columns(sheet: Worksheet) -> dict[object, int]:
    """Each heading's column number."""
    return {cell.value: cell.column for cell in sheet[1] if cell.value is not None}


def check_table(book: Workbook, name: str) -> None:
    """The rules every report table keeps (see the module's docstring)."""
    sheet = book[name]
    assert sheet.freeze_panes in ("A2", "B2"), (name, sheet.freeze_panes)
    assert all(c.font.b for c in sheet[1] if c.value is not None), f"{name}: headings not bold"
    rows = data_rows(sheet)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                assert not TEXT_NUMBER.fullmatch(cell.value), f"{name}!{cell.coordinate} holds {cell.value!r} as text"
    headings = columns(sheet)
    money = [c for h, c in headings.items() if h in MONEY.get(name, ()) or isinstance(h, dt.datetime)]
    money += [c for h, c in headings.items() if name.endswith("stress tests") and c > 2]  # each stress test's values
    assert money or name.endswith(("parameters", "runs")), name
    if name.endswith("runs"):
        money = [c for c in headings.values() if c > 1]
    lines = [*rows, *([total_row(sheet)] if total_row(sheet) else [])]
    for column in money:
        shown = []
        for row in lines:
            cell = sheet.cell(row, column)
            if cell.value is None:
                continue
            assert isinstance(cell.value, (int, float)) or str(cell.value).startswith("="), f"{name}!{cell.coordinate}: {cell.value!r}"
            assert cell.number_format.startswith('"£"#,##0.00') and "[Red]" in cell.number_format, f"{name}!{cell.coordinate}"
            shown.append(format_money(evaluate(book, name, cell.value)))
        if shown:
            width = sheet.column_dimensions[get_column_letter(column)].width
            assert width >= max(len(s) for s in shown) + 1, (name, get_column_letter(column), width, max(shown, key=len))
    for heading in VARIANCE.get(name, ()):
        for row in lines:
            cell = sheet.cell(row, headings[heading])
            if cell.value is not None:
                assert str(cell.value).startswith("=") and cell.number_format.startswith('\\+"£"') and "[Red]" in cell.number_format, f"{name}!{cell.coordinate}"
        column = get_column_letter(headings[heading])
        assert any(str(r.sqref) == f"{column}2:{column}{lines[-1]}" and r.rules[0].dxf.font.color.rgb == "FF007F3B"
                   for r in sheet.conditional_formatting), f"{name}: favourable variances not green"
    for heading in PERCENT.get(name, ()):
        for row in rows:
            cell = sheet.cell(row, headings[heading])
            if cell.value is not None:
                assert isinstance(cell.value, (int, float)) and cell.number_format in ("0.0%", "0.00%"), f"{name}!{cell.coordinate}"
                assert -1 <= cell.value <= 1, f"{name}!{cell.coordinate}: a fraction, not a percentage figure"


def every_sheet_is_ready_to_use(book: Workbook) -> None:
    """Each sheet keeps the rules of a report table."""
    assert book.sheetnames == ["Outturn", "Monthly", "Positions", "What-if", "Comparison", "Risk summary", "Risk stress tests",
                               "Risk contracts", "Risk parameters", "Risk runs"]
    for name in book.sheetnames:
        check_table(book, name)


def months_head_the_monthly_sheet_as_dates(book: Workbook) -> None:
    """The Monthly sheet's months are dates shown as Apr 2025."""
    sheet = book["Monthly"]
    months = [c for c in sheet[1] if isinstance(c.value, dt.datetime)]
    assert [c.value for c in months] == [dt.datetime(y, m, 1) for y, m in [(2025, m) for m in range(4, 13)] + [(2026, m) for m in range(1, 4)]]
    assert all(c.number_format == "mmm yyyy" for c in months)


def each_row_sums_its_own_months(book: Workbook) -> None:
    """Each Monthly row's year is a SUM of its twelve months."""
    sheet = book["Monthly"]
    year = columns(sheet)["year"]
    for row in data_rows(sheet):
        formula = sheet.cell(row, year).value
        assert formula == f"=SUM(C{row}:N{row})", (row, formula)  # April (C) to March (N), this row only
        months = [sheet.cell(row, c).value for c in range(3, 15)]
        assert evaluate(book, "Monthly", formula) == sum((Decimal(repr(v)) for v in months if v is not None), Decimal(0))


def outturn_total_counts_what_the_commissioners_pay(book: Workbook, said: str) -> None:
    """The total adds the contracts with no prime (a prime pays its sub-contractors out of its
    own contract) and comes to the outturn and paid-to-date the report command prints."""
    sheet = book["Outturn"]
    headings = columns(sheet)
    rows, total = data_rows(sheet), total_row(sheet)
    assert total == rows.stop
    prime = get_column_letter(headings["sub-contract of"])
    subs = [r for r in rows if sheet.cell(r, headings["sub-contract of"]).value]
    assert subs and all(sheet.cell(r, headings["sub-contract of"]).value == "MSK-2025" for r in subs)
    for heading in ("YTD M1–M8", "projected M9–M12", "outturn", "plan"):
        letter = get_column_letter(headings[heading])
        formula = sheet.cell(total, headings[heading]).value
        assert formula == f'=SUMIF(${prime}$2:${prime}${rows[-1]},"",{letter}2:{letter}{rows[-1]})'
        top_level = sum((Decimal(repr(sheet.cell(r, headings[heading]).value)) for r in rows if r not in subs), Decimal(0))
        assert evaluate(book, "Outturn", formula) == top_level
    said = re.search(r"Outturn 2025-26 as of M8 2025-11 \(blend\): (£[\d,.]+); paid to date (£[\d,.]+)\.", said)
    assert said, said
    assert format_money(evaluate(book, "Outturn", sheet.cell(total, headings["outturn"]).value)) == said.group(1)
    assert format_money(evaluate(book, "Outturn", sheet.cell(total, headings["YTD M1–M8"]).value)) == said.group(2)
    # The example plans every contract the commissioners pay, so the total has a plan, and its
    # variance is plan − outturn, favourable when positive, each contract's a formula too.
    planned, outturn = (evaluate(book, "Outturn", sheet.cell(total, headings[h]).value) for h in ("plan", "outturn"))
    variance = evaluate(book, "Outturn", sheet.cell(total, headings["variance to plan"]).value)
    assert planned > 0 and variance == planned - outturn
    assert sheet.cell(total, headings["favourable / adverse"]).value == ("favourable" if variance > 0 else "adverse")
    for row in rows:
        plan_cell = sheet.cell(row, headings["plan"]).value
        if plan_cell is not None:
            assert evaluate(book, "Outturn", sheet.cell(row, headings["variance to plan"]).value) == Decimal(repr(plan_cell)) - Decimal(repr(sheet.cell(row, headings["outturn"]).value))


def whatif_totals_are_subtotals_of_the_lines(book: Workbook) -> None:
    """Each money column of the What-if sheet is totalled over the lines in view."""
    sheet = book["What-if"]
    rows, total = data_rows(sheet), total_row(sheet)
    assert total == rows.stop
    for heading in ("baseline", "what-if", "difference"):
        column = columns(sheet)[heading]
        letter = get_column_letter(column)
        formula = sheet.cell(total, column).value
        assert formula == f"=SUBTOTAL(109,{letter}2:{letter}{rows[-1]})"
        assert evaluate(book, "What-if", formula) == sum((Decimal(repr(sheet.cell(r, column).value)) for r in rows), Decimal(0))
    baseline, scenario, difference = (evaluate(book, "What-if", sheet.cell(total, columns(sheet)[h]).value) for h in ("baseline", "what-if", "difference"))
    assert difference == scenario - baseline


def test_the_report_workbook_is_ready_to_use(report: tuple[Workbook, str]) -> None:
    """Written once (half a minute), checked sheet by sheet."""
    book, said = report
    every_sheet_is_ready_to_use(book)
    months_head_the_monthly_sheet_as_dates(book)
    each_row_sums_its_own_months(book)
    outturn_total_counts_what_the_commissioners_pay(book, said)
    whatif_totals_are_subtotals_of_the_lines(book)


def test_statements_workbook_is_ready_to_use(example: Path) -> None:
    book = load_workbook(example.parent / "statements.xlsx")
    assert book.sheetnames == ["Summary", "Positions", "Lines"]
    summary, lines = book["Summary"], book["Lines"]
    assert summary.freeze_panes == "D3" and summary.auto_filter.ref and lines.freeze_panes == "A2" and lines.auto_filter.ref
    for sheet in (summary, book["Positions"], lines):
        for row in sheet.iter_rows(min_row=3):
            for cell in row:
                if isinstance(cell.value, str):
                    assert not TEXT_NUMBER.fullmatch(cell.value), f"{sheet.title}!{cell.coordinate} holds {cell.value!r} as text"
    names = [c.value for c in lines[1]]
    month, amount = names.index("month") + 1, names.index("amount") + 1
    amounts = []
    for row in range(2, lines.max_row + 1):
        assert lines.cell(row, month).is_date and lines.cell(row, month).number_format == "mmm yyyy"
        cell = lines.cell(row, amount)
        assert isinstance(cell.value, (int, float)) and "£" in cell.number_format
        amounts.append(format_money(Decimal(repr(cell.value))))
    assert lines.column_dimensions[get_column_letter(amount)].width >= max(map(len, amounts)) + 1
    # The Summary's last row sums every line; the year's lines exported as CSV come to the same.
    exported = example.parent / "year.csv"
    cli("export", exported, "-w", example, "--period", "year")
    with exported.open(encoding="utf-8") as stream:
        expected = sum((Decimal(r["amount"]) for r in csv.DictReader(stream)), Decimal(0))
    last = summary.max_row
    assert summary.cell(last, 1).value == "every line (sheet Lines)"
    check = next(c.value for c in summary[last] if isinstance(c.value, str) and c.value.startswith("="))
    assert evaluate(book, "Summary", check) == expected


def test_export_writes_the_months_asked(example: Path, tmp_path: Path) -> None:
    """After `pay 2025-11`, export writes November (its workbook with November's positions);
    --period chooses other months; a month outside the year is refused plainly."""
    root = tmp_path
    ws = root / "example"
    shutil.copytree(example, ws)
    cli("pay", "2025-11", "-w", ws)
    said = cli("export", root / "nov.xlsx", "-w", ws)
    assert "of M8 2025-11" in said
    book = load_workbook(root / "nov.xlsx")
    assert book.sheetnames == ["Summary", "Positions", "Lines"]
    months = [c for c in book["Summary"][2] if isinstance(c.value, dt.datetime)]
    assert [(c.value, c.number_format) for c in months] == [(NOV, '"M8 "mmm yyyy')]
    lines = book["Lines"]
    month = [c.value for c in lines[1]].index("month") + 1
    assert lines.max_row > 1 and {lines.cell(r, month).value for r in range(2, lines.max_row + 1)} == {NOV}

    for period, months in (("2025-10..2025-11", {"2025-10-01", "2025-11-01"}), ("year", None), (None, {"2025-11-01"})):
        target = root / f"export-{period}.csv"
        cli("export", target, "-w", ws, *(["--period", period] if period else []))
        with target.open(encoding="utf-8") as stream:
            found = {r["month"] for r in csv.DictReader(stream)}
        assert found == (months or {f"{y}-{m:02d}-01" for y, m in [(2025, m) for m in range(4, 13)] + [(2026, m) for m in range(1, 4)]}), period
    parquet = root / "nov.parquet"
    cli("export", parquet, "-w", ws)
    assert set(pq.read_table(parquet).column("month").to_pylist()) == {NOV.date()}
    refused = runner.invoke(app, ["export", str(root / "x.csv"), "-w", str(ws), "--period", "2026-07"])
    assert refused.exit_code == 2 and "2026-07 is outside the financial year 2025-26" in refused.output
    assert not (root / "x.csv").exists()


def test_the_report_page_has_a_total_plan_signed_variances_and_the_months_it_projects(report: tuple[Workbook, str], example: Path) -> None:
    """The page's headline sets the forecast outturn against the total plan, the variance is
    signed and coloured by whether it is favourable, the bridge from plan to outturn is drawn,
    and the what-if says which months are actual and which projected."""
    book, _ = report
    page = (example.parent / "report.html").read_text()
    sheet = book["Outturn"]
    headings, total = columns(sheet), total_row(sheet)
    planned, variance = (evaluate(book, "Outturn", sheet.cell(total, headings[h]).value) for h in ("plan", "variance to plan"))
    word = "favourable" if variance > 0 else "adverse"
    assert f"variance to plan of {format_money(planned)}: {word}" in page
    signed = ("+" if variance > 0 else "") + format_money(variance)
    assert f"<td class='num {'fav' if variance > 0 else 'neg'}'>{signed}</td><td>{word}</td>" in page
    assert "<h2>From plan to forecast outturn</h2><div><svg" in page.replace("\n", "")
    cells = re.findall(r"<td class='num (fav|neg)'>([+-])£", page)
    assert cells and all((kind == "fav") == (sign == "+") for kind, sign in cells)  # green is favourable and positive, red adverse
    assert "On the blend forecast as of Nov 2025: Apr 2025 to Nov 2025 (M1–M8) actual, Dec 2025 to Mar 2026 (M9–M12) projected" in page
