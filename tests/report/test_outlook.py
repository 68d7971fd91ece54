"""The outlook report on a tiny workspace whose numbers are worked by hand: the data it
gathers, the self-contained page and the workbook's sheets and totals."""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

os.environ["COLUMNS"] = "250"

from carecontracts.cli import app  # noqa: E402
from carecontracts.language.yaml_lines import parse_yaml  # noqa: E402
from carecontracts.payments import open_engine, workspace_contracts  # noqa: E402
from carecontracts.report.outlook import Outlook, gather, render, write_html, write_xlsx  # noqa: E402
from carecontracts.scenarios.whatif import parse_whatif  # noqa: E402
from carecontracts.workspace import Workspace  # noqa: E402
from tests.cli.test_cli import ACTIVITY, ACUTE, BLOCK, PRICES  # noqa: E402
from tests.report.workbook import evaluate  # noqa: E402

D = Decimal
NOV = dt.date(2025, 11, 1)
DEC = dt.date(2025, 12, 1)

PRIME = """\
id: MSK-2025
commissioner: ICB-A
provider: PRIME
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: core, kind: block, annual: 120_000}
subcontracts:
  - id: MSK-SUB
    provider: SUBCO
    components: [{id: support, kind: block, annual: 24_000}]
"""
# ACUTE-2025 plans one elective case a month, valued at £6,300.00.
PLANS = "contract,service,month,planned_quantity,planned_value\n" + "".join(
    f"ACUTE-2025,elective,{y}-{m:02d},1,6300.00\n" for y, m in [(2025, m) for m in range(4, 13)] + [(2026, m) for m in range(1, 4)]
)
WHATIF = "name: half the HB12C work\nchanges:\n  - scale: {currency: [HB12C], from: 2025-12-01}\n    percent: -50\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("outlook") / "ws"
    for folder in ("contracts", "data/activity", "data/plans", "prices"):
        (root / folder).mkdir(parents=True)
    (root / "carecontracts.toml").write_text('name = "Tiny ICB"\nfinancial_year = "2025-26"\n')
    (root / "contracts" / "community.yaml").write_text(BLOCK)
    (root / "contracts" / "acute.yaml").write_text(ACUTE)
    (root / "contracts" / "msk.yaml").write_text(PRIME)
    (root / "data" / "activity" / "nov.csv").write_text(ACTIVITY)
    (root / "data" / "plans" / "plans.csv").write_text(PLANS)
    (root / "prices" / "national.csv").write_text(PRICES)
    (root / "half.yaml").write_text(WHATIF)
    loaded = CliRunner().invoke(app, ["load", "-w", str(root)])
    assert loaded.exit_code == 0, loaded.output
    return root


@pytest.fixture(scope="module")
def outlook(workspace: Path) -> Outlook:
    space = Workspace.open(workspace)
    engine, tables = open_engine(space)
    try:
        whatif = parse_whatif(parse_yaml(WHATIF, "half.yaml"))
        return gather(engine, workspace_contracts(space), space.year, tables, NOV, "Tiny ICB", ("run_rate", "plan"), whatif)
    finally:
        engine.close()


def by_contract(outlook: Outlook, contract: str):
    return next(o for o in outlook.contracts if o.contract == contract)


def test_actual_forecast_and_plan_by_month(outlook: Outlook) -> None:
    # ACUTE-2025 as of November (see tests/cli): November £12,600.00 + £840.53 = £13,440.53,
    # nothing before. Run rate per month: HB12C 2/8 × £6,300 = £1,575.00 and FZ22Z 1/8 ×
    # £840.525 = £105.07 → £1,680.07 a month, four months → outturn £20,160.81.
    # Plan: one case a month split 2:1 as to date: 0.66666667 × £6,300 = £4,200.00 and
    # 0.33333333 × £840.525 = £280.17 → £4,480.17 a month → £13,440.53 + £17,920.68 = £31,361.21.
    acute = by_contract(outlook, "ACUTE-2025")
    assert outlook.headline == "run_rate" and outlook.methods == ("run_rate", "plan")
    assert acute.actual[NOV] == D("13440.53") and acute.actual[dt.date(2025, 10, 1)] == 0 and DEC not in acute.actual
    assert acute.forecasts["run_rate"][DEC] == D("1680.07") and acute.forecasts["plan"][DEC] == D("4480.17")
    assert acute.outturns == {"run_rate": D("20160.81"), "plan": D("31361.21")}
    assert outlook.range_of(acute) == (D("20160.81"), D("31361.21"))
    assert acute.plan is not None and acute.plan[DEC] == D("6300.00") and acute.planned == D("75600.00")
    # The block pays £100,000.00 a month whatever the method; it has no plan.
    community = by_contract(outlook, "COMM-2025")
    assert community.plan is None and community.outturns == {"run_rate": D("1200000.00"), "plan": D("1200000.00")}


def test_total_counts_what_commissioners_pay_once(outlook: Outlook) -> None:
    # The prime's £10,000 a month counts once: its £2,000 a month to SUBCO comes out of it.
    # To November: 8 × (£100,000 + £10,000) + £13,440.53 = £893,440.53; outturn by run rate
    # £1,200,000 + £120,000 + £20,160.81 = £1,340,160.81; by plan £1,351,361.21.
    total = outlook.total
    assert by_contract(outlook, "MSK-SUB").sub_contract_of == "MSK-2025"
    assert total.actual_to_date == D("893440.53")
    assert total.forecasts["run_rate"][DEC] == D("111680.07")
    assert total.outturns == {"run_rate": D("1340160.81"), "plan": D("1351361.21")}
    assert total.plan is None  # only one contract of three has a plan
    assert any("1 of 3 contracts have planned values" in note for note in outlook.notes)


def test_positions_at_outturn(outlook: Outlook) -> None:
    parties = {p.party: p for p in outlook.positions}
    assert [p.party for p in outlook.positions][0] == "ICB-A" and parties["ICB-A"].role == "commissioner"
    assert parties["ICB-A"].payments == D("1340160.81") and parties["ICB-A"].net_by_method["plan"] == D("-1351361.21")
    assert (parties["PRIME"].role, parties["PRIME"].income, parties["PRIME"].payments, parties["PRIME"].net) == ("prime", D("120000.00"), D("24000.00"), D("96000.00"))
    assert parties["SUBCO"].role == "sub-contractor" and parties["SUBCO"].net == D("24000.00")
    assert sum((p.net for p in outlook.positions), D(0)) == 0  # money is conserved


def test_whatif_in_the_report(outlook: Outlook) -> None:
    # On the run-rate forecast as of November: HB12C runs at 0.25 spells a month (two in
    # eight months), so December to March project 4 × 0.25 × £6,300.00 = £6,300.00; halved
    # from December: £3,150.00 less to ACUTE.
    result = outlook.whatif
    assert result is not None and result.total == D("-3150.00")
    assert result.by_party()["ICB-A"] == D("3150.00") and result.by_party()["ACUTE"] == D("-3150.00")


def test_html_is_self_contained_with_its_charts_and_tables(outlook: Outlook, tmp_path: Path) -> None:
    page = write_html(outlook, tmp_path / "out" / "report.html").read_text()
    assert "http" not in page and "<script" not in page and "@import" not in page
    assert not re.search(r"url\((?!#)|src=|href=\"(?!#)", page)  # only references within the page
    # One chart of the total, one per contract (four), and the waterfall.
    assert page.count("<svg") == 6
    for heading in ("Outturn by contract", "Party positions at outturn", "What if", "Contract forms compared"):
        assert f"<h2>{heading}" in page
    assert "£1,340,160.81" in page and "£20,160.81 – £31,361.21" not in page  # exact outturn; range shown as two columns
    assert "£893,440.53" in page and "-£3,150.00" in page and "each unit of activity is paid at its price" in page
    # The what-if is totalled as what the commissioners pay: ACUTE's £3,150.00 less, nothing passed on to a sub-contractor.
    assert "a saving of £3,150.00 to what the commissioners pay." in page and "what the commissioners pay</td>" in page
    assert "within that, to sub-contractors" not in page
    assert "outlook 2025-26 as of Nov 2025" in page
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / "report.html"]  # no temporary file left


def test_xlsx_has_the_same_tables(outlook: Outlook, tmp_path: Path) -> None:
    book = load_workbook(write_xlsx(outlook, tmp_path / "report.xlsx"))
    assert book.sheetnames == ["Outturn", "Monthly", "Positions", "What-if"]
    outturn = list(book["Outturn"].values)
    assert outturn[0][:4] == ("contract", "YTD M1–M8", "projected M9–M12", "outturn")
    assert outturn[0][6:9] == ("plan", "variance to plan", "favourable / adverse")
    # The total is a formula over the contracts without a prime (MSK-SUB's £24,000 is paid out of MSK-2025's).
    assert outturn[-1][0] == "total" and evaluate(book, "Outturn", outturn[-1][3]) == D("1340160.81")
    acute = next(r for r in outturn if r[0] == "ACUTE-2025")
    assert [D(str(v)) for v in acute[1:7]] == [D("13440.53"), D("6720.28"), D("20160.81"), D("20160.81"), D("31361.21"), D("75600")]
    # Plan £75,600.00 − outturn £20,160.81 = £55,439.19 paid less than planned: favourable, a formula in green.
    assert evaluate(book, "Outturn", acute[7]) == D("55439.19") and acute[8] == "favourable"
    variance_cell = book["Outturn"].cell(row=outturn.index(acute) + 1, column=8)
    assert variance_cell.number_format.startswith('\\+"£"') and "[Red]" in variance_cell.number_format  # signed, red when adverse
    # Green when favourable: a conditional format over the variance column, in the NHS green.
    green = [(str(r.sqref), rule) for r in book["Outturn"].conditional_formatting for rule in r.rules]
    assert [(where, rule.operator, rule.formula, rule.dxf.font.color.rgb) for where, rule in green] == [("H2:H6", "greaterThan", ["0"], "FF007F3B")]
    assert book["Outturn"]["D2"].number_format.startswith('"£"#,##0.00')  # money in pounds
    monthly = list(book["Monthly"].values)
    assert monthly[0][1:3] == ("series", dt.datetime(2025, 4, 1))  # a month is a date, shown as Apr 2025
    plan_row = next(r for r in monthly if r[:2] == ("ACUTE-2025", "plan"))
    assert evaluate(book, "Monthly", plan_row[-1]) == D("75600")
    whatif = list(book["What-if"].values)
    assert whatif[-1][0] == "total" and evaluate(book, "What-if", whatif[-1][7]) == D("-3150")


def test_report_command(workspace: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["report", "-w", str(workspace), "--as-of", "2025-11", "--whatif", str(workspace / "half.yaml"), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    # All methods, so the headline is the blend: ACUTE's monthly quantities the mean of run
    # rate and plan, HB12C (0.25 + 0.66666667) / 2 × £6,300 = £2,887.50 and FZ22Z
    # (0.125 + 0.33333333) / 2 × £840.525 = £192.62 → 4 × £3,080.12 = £12,320.48, ACUTE
    # £25,761.01, total £1,320,000 + £25,761.01.
    assert "Outturn 2025-26 as of M8 2025-11 (blend): £1,345,761.01; paid to date £893,440.53." in result.output
    assert (tmp_path / "r.html").exists() and (workspace / "outputs" / "report-2025-11.xlsx").exists()
    bad = runner.invoke(app, ["report", "-w", str(workspace), "--as-of", "2026-02"])
    assert bad.exit_code == 2 and "there is no activity in 2026-02 to forecast from" in bad.output
    assert re.search(r"not a month", runner.invoke(app, ["report", "-w", str(workspace), "--as-of", "Nov"]).output)


def test_render_without_whatif_says_so(outlook: Outlook) -> None:
    from dataclasses import replace

    page = render(replace(outlook, whatif=None))
    assert "No what-if given" in page and "<h2>What if</h2>" in page
