"""A workspace in another currency and on a calendar year: every screen, workbook and line
says its currency and its year as the users write them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from openpyxl import load_workbook
from typer.testing import CliRunner

from carecontracts.cli import app
from carecontracts.money import format_money, use_currency
from carecontracts.periods import FinancialYear
from carecontracts.report.pages import pounds_label
from carecontracts.workspace import Workspace

runner = CliRunner()
CONTRACTS = """\
id: ACO-2018
commissioner: PAYER
provider: ACO
term: {start: 2018-01-01, end: 2018-12-31}
components:
  - {id: core, kind: block, annual: 1_200_000}
  - {id: visits, kind: activity, prices: fees}
"""
ACTIVITY = """\
activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity
1,p1,ACO,PAYER,primary,VISIT,OP,2018-01-10,2018-01-10,1
2,p2,ACO,PAYER,primary,VISIT,OP,2018-03-05,2018-03-05,2
"""


def workspace(root: Path, currency: str = "USD") -> Path:
    (root / "contracts").mkdir(parents=True)
    (root / "data" / "activity").mkdir(parents=True)
    (root / "prices").mkdir()
    (root / "carecontracts.toml").write_text(
        f'name = "Calendar ACO"\nfinancial_year = "2018"\nfinancial_year_start_month = 1\ncurrency = "{currency}"\n', encoding="utf-8")
    (root / "contracts" / "aco.yaml").write_text(CONTRACTS, encoding="utf-8")
    (root / "data" / "activity" / "visits.csv").write_text(ACTIVITY, encoding="utf-8")
    (root / "prices" / "fees.csv").write_text("currency,unit_price,valid_from,valid_to\nVISIT,\"$1,250.50\",2018-01-01,2018-12-31\n", encoding="utf-8")
    return root


def test_a_dollar_workspace_on_the_calendar_year_says_so_everywhere(tmp_path: Path) -> None:
    """A block of $1,200,000 a year is $100,000.00 a month; a visit at $1,250.50 (written with
    its sign and a thousands comma) is $1,250.50 in January and 2 × = $2,501.00 in March.
    The year starts in January, so it is called 2018, and January is M1."""
    root = workspace(tmp_path / "aco")
    assert runner.invoke(app, ["load", "-w", str(root)]).exit_code == 0
    result = runner.invoke(app, ["pay", "year", "-w", str(root), "--xlsx", str(tmp_path / "statements.xlsx")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "Statements 2018 (Calendar ACO)" in said and "2018-19" not in said
    assert "$1,203,751.50" in said and "£" not in said  # $1,200,000.00 + $1,250.50 + $2,501.00
    march = runner.invoke(app, ["pay", "2018-03", "-w", str(root)])
    assert march.exit_code == 0 and "Statements M3 2018-03" in march.output and "$102,501.00" in " ".join(march.output.split())
    book = load_workbook(tmp_path / "statements.xlsx")
    lines = book["Lines"]
    headings = [c.value for c in lines[1]]
    amount, basis, currency = (headings.index(h) + 1 for h in ("amount", "basis", "currency"))
    visits = [row for row in lines.iter_rows(min_row=2) if row[currency - 1].value == "VISIT"]
    assert len(visits) == 2 and all("$1,250.50" in str(row[basis - 1].value) and "£" not in str(row[basis - 1].value) for row in visits)
    assert all("$1,200,000.00 a year" in str(row[basis - 1].value) for row in lines.iter_rows(min_row=2) if row[2].value == "core")
    assert lines.cell(2, amount).number_format.startswith('"$"#,##0.00')


def test_the_currency_shows_in_pages_and_a_gbp_workspace_stays_in_pounds(tmp_path: Path) -> None:
    Workspace.open(workspace(tmp_path / "eur", "EUR"))
    assert format_money(Decimal("-1234.5")) == "-€1,234.50" and pounds_label(1_200_000) == "€1.2m"
    use_currency("GBP")
    assert format_money(Decimal("1234.5")) == "£1,234.50" and pounds_label(350_000) == "£350k"
    assert FinancialYear.parse("2018", 1).label == "2018" and FinancialYear.parse("2025", 4).label == "2025-26"


def test_an_unknown_currency_is_refused_at_its_line(tmp_path: Path) -> None:
    root = workspace(tmp_path / "yen", "JPY")
    result = runner.invoke(app, ["check", "-w", str(root)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "carecontracts.toml:4" in said and "GBP (£), USD ($) or EUR (€)" in said
