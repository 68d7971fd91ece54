"""Payment plans (data/plans rows naming a component) on small workspaces worked by hand: kept
apart from activity plans, checked against the contracts, and set beside the statements by
`plan-vs-actual`."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

os.environ["COLUMNS"] = "250"

from carecontracts.cli import app  # noqa: E402
from carecontracts.data.load import load_workspace  # noqa: E402
from carecontracts.engine.backend import Engine  # noqa: E402
from carecontracts.engine.run import RunTables, statement_lines  # noqa: E402
from carecontracts.payments import check_workspace, open_engine, plan_versus_actual, workspace_contracts  # noqa: E402
from carecontracts.problems import ProblemsError  # noqa: E402
from carecontracts.report.plans import plans_by_contract  # noqa: E402
from carecontracts.report.plans import direction, payment_plan_problems  # noqa: E402
from carecontracts.workspace import Workspace  # noqa: E402
from tests.helpers import contract  # noqa: E402

D = Decimal
NOV = dt.date(2025, 11, 1)
DEC = dt.date(2025, 12, 1)
MONTHS = [f"{y}-{m:02d}" for y, m in [(2025, m) for m in range(4, 13)] + [(2026, m) for m in range(1, 4)]]

BLOCK = """\
id: COMM-2025
commissioner: ICB-A
provider: COMM
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: core, kind: block, annual: 1_200_000}
"""
CASES = """\
id: ISP-2025
commissioner: ICB-A
provider: ISP
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: cases, kind: activity, prices: national}
"""
ACTIVITY_COLUMNS = "activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity"
# Three cases in November at £400 each: £1,200.
NOVEMBER = [f"N{i},p{i},ISP,ICB-A,ortho,HX01,EL,2025-11-0{i},2025-11-0{i},1" for i in (1, 2, 3)]
PRICES = "currency,unit_price,valid_from,valid_to\nHX01,400.00,2025-04-01,2026-03-31\nHRG1,100.00,2025-04-01,2026-03-31\n"
# The block planned as it pays, £100,000.00 a month; the cases planned at £1,000 in November.
PAYMENTS = "contract,component,month,planned_value\n" + "".join(f"COMM-2025,core,{m},100000.00\n" for m in MONTHS) + "ISP-2025,cases,2025-11,1000.00\n"

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def build(root: Path) -> Path:
    """The block and cost-per-case workspace with its payment plans, loaded but not paid."""
    for folder in ("contracts", "data/activity", "data/plans", "prices"):
        (root / folder).mkdir(parents=True)
    (root / "carecontracts.toml").write_text('name = "Tiny ICB"\nfinancial_year = "2025-26"\n')
    (root / "contracts" / "community.yaml").write_text(BLOCK)
    (root / "contracts" / "isp.yaml").write_text(CASES)
    (root / "data" / "activity" / "activity-2025-11.csv").write_text("\n".join([ACTIVITY_COLUMNS, *NOVEMBER]) + "\n")
    (root / "data" / "plans" / "payments.csv").write_text(PAYMENTS)
    (root / "prices" / "national.csv").write_text(PRICES)
    loaded = invoke("load", "-w", root)
    assert loaded.exit_code == 0, loaded.output
    return root


@pytest.fixture(scope="module")
def paid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build(tmp_path_factory.mktemp("plans") / "ws")
    result = invoke("pay", "year", "-w", root)
    assert result.exit_code == 0, result.output
    return root


def test_plan_versus_actual_for_a_block_and_cost_per_case(paid: Path) -> None:
    """November: the block planned £100,000.00 and paid £100,000.00, no variance; the cases
    planned £1,000.00 and paid 3 × £400.00 = £1,200.00, £200.00 (20.0%) over plan: a variance
    (plan − actual) of −£200.00, adverse to the commissioner."""
    result = plan_versus_actual(Workspace.open(paid), [NOV])
    lines = {(line.contract, line.component): line for line in result.lines}
    assert set(lines) == {("COMM-2025", "core"), ("ISP-2025", "cases")}
    block, cases = lines[("COMM-2025", "core")], lines[("ISP-2025", "cases")]
    assert (block.planned, block.actual, block.variance, block.variance_percent) == (D("100000.00"), D("100000.00"), D("0.00"), D("0.0"))
    assert (cases.planned, cases.actual, cases.variance, cases.variance_percent) == (D("1000.00"), D("1200.00"), D("-200.00"), D("-20.0"))
    assert (result.total.planned, result.total.actual, result.total.variance) == (D("101000.00"), D("101200.00"), D("-200.00"))
    assert [direction(x.variance) for x in (block, cases, result.total)] == ["on plan", "adverse", "adverse"]


def test_plan_versus_actual_over_the_year(paid: Path) -> None:
    """Over the year the block's twelve plans add up to what it pays, £1,200,000.00; the
    cases have one plan, £1,000.00, against £1,200.00."""
    space = Workspace.open(paid)
    result = plan_versus_actual(space, space.year.months)
    lines = {(line.contract, line.component): (line.planned, line.actual, line.variance) for line in result.lines}
    assert lines == {("COMM-2025", "core"): (D("1200000.00"), D("1200000.00"), D("0.00")),
                     ("ISP-2025", "cases"): (D("1000.00"), D("1200.00"), D("-200.00"))}


def test_plan_vs_actual_command_prints_the_table(paid: Path) -> None:
    result = invoke("plan-vs-actual", "2025-11", "-w", paid)
    assert result.exit_code == 0, result.output
    rows = [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]
    assert "COMM-2025 core £100,000.00 £100,000.00 £0.00 0.0% on plan" in rows
    assert "ISP-2025 cases £1,000.00 £1,200.00 -£200.00 -20.0% adverse" in rows
    assert "total £101,000.00 £101,200.00 -£200.00 -0.2% adverse" in rows
    assert "Plan versus actual payments, M8 2025-11" in result.output
    one = invoke("plan-vs-actual", "2025-11", "-w", paid, "--contract", "ISP-2025")
    assert one.exit_code == 0, one.output
    assert "COMM-2025" not in one.output and "-20.0%" in one.output
    unknown = invoke("plan-vs-actual", "2025-11", "-w", paid, "--contract", "ISP-2026")
    assert unknown.exit_code == 2 and "ISP-2025" in unknown.output


def test_plan_vs_actual_before_anything_is_priced(tmp_path: Path) -> None:
    """Nothing priced yet: exit 2, saying to pay first."""
    root = build(tmp_path / "ws")
    result = invoke("plan-vs-actual", "2025-11", "-w", root)
    assert result.exit_code == 2
    assert "nothing is priced yet" in result.output and "carecontracts pay" in result.output


def test_an_adjustment_counts_in_the_month_it_is_paid(tmp_path: Path) -> None:
    """November closed at 3 cases, then ISP's November sent again with a fourth: the £400.00
    is a prior-period adjustment paid in December. November's actual stays £1,200.00 as
    issued; December's is £400.00, all of it adjustment, against no plan for December."""
    root = build(tmp_path / "ws")
    for args in (("pay", "year"), ("close", "2025-11")):
        assert invoke(*args, "-w", root).exit_code == 0
    again = root / "isp-2025-11.csv"
    again.write_text("\n".join([ACTIVITY_COLUMNS, *NOVEMBER, "N4,p4,ISP,ICB-A,ortho,HX01,EL,2025-11-04,2025-11-04,1"]) + "\n")
    assert invoke("load", "-w", root, "--month", "2025-11", again).exit_code == 0
    assert invoke("pay", "year", "-w", root).exit_code == 0
    space = Workspace.open(root)
    november = {(line.contract, line.component): line for line in plan_versus_actual(space, [NOV]).lines}
    december = {(line.contract, line.component): line for line in plan_versus_actual(space, [DEC]).lines}
    assert (november[("ISP-2025", "cases")].actual, november[("ISP-2025", "cases")].adjustments) == (D("1200.00"), D("0"))
    cases = december[("ISP-2025", "cases")]
    assert (cases.planned, cases.actual, cases.adjustments, cases.variance, cases.variance_percent) == (D("0"), D("400.00"), D("400.00"), D("-400.00"), None)
    printed = invoke("plan-vs-actual", "2025-12", "-w", root)
    assert printed.exit_code == 0 and "of which adjustments" in printed.output


def test_check_locates_a_payment_plan_for_what_no_contract_has(tmp_path: Path) -> None:
    """A payment plan naming an unknown contract, component or payer is found by `check`, at
    the first row of each, with what was expected."""
    root = build(tmp_path / "ws")
    (root / "data" / "plans" / "payments.csv").write_text(
        "contract,component,month,planned_value,commissioner\n"
        "COMM-2025,core,2025-04,100000.00,\n"
        "COMM-2025,cor,2025-04,100000.00,\n"
        "COMM-2025,cor,2025-05,100000.00,\n"
        "COMM-2026,core,2025-04,100000.00,\n"
        "ISP-2025,cases,2025-04,1000.00,ICB-B\n"
    )
    problems = check_workspace(Workspace.open(root)).problems
    assert [(p.source, p.line, p.field, p.value) for p in problems] == [
        ("data/plans/payments.csv", 3, "component", "cor"),
        ("data/plans/payments.csv", 5, "contract", "COMM-2026"),
        ("data/plans/payments.csv", 6, "commissioner", "ICB-B"),
    ]
    assert "did you mean core?" in (problems[0].expected or "") and "2 rows" in problems[0].message
    assert "did you mean COMM-2025?" in (problems[1].expected or "")
    assert "ICB-A" in (problems[2].expected or "")
    result = invoke("check", "-w", root)
    assert result.exit_code == 2 and "payments.csv:3" in result.output


def test_a_component_and_its_part_cannot_both_be_planned() -> None:
    """A plan for `api` covers api.fixed and api.variable: one for api.fixed as well would plan
    the fixed element twice."""
    terms = contract(API)
    plans = pa.table({"contract": ["API-2025", "API-2025", "API-2025"], "component": ["api", "api.fixed", "api.variable"],
                      "commissioner": pa.array([None, None, None], pa.string()), "source_file": ["data/plans/p.csv"] * 3, "source_row": [1, 2, 3]})
    problems = payment_plan_problems(plans, [terms])
    assert [(p.line, p.value) for p in problems] == [(3, "api.fixed"), (4, "api.variable")]
    assert payment_plan_problems(plans.slice(1), [terms]) == []


API = """\
id: API-2025
commissioner: ICB-A
provider: ACUTE
term: {start: 2025-04-01, end: 2026-03-31}
services: {elective: {pod: [EL]}}
components:
  - {id: api, kind: aligned_payment, services: [elective], prices: national, fixed: 120_000, variable_percent: 100}
"""


def test_payment_plans_are_not_planned_activity_for_the_variable_element(tmp_path: Path) -> None:
    """April's elective activity is planned at £200 and 3 cases at £100 are delivered: the
    variable element pays (£300 − £200) × 100% = £100.00 over the year. A payment plan of
    £10,000 for the fixed element in the same file, even naming the elective service, is not
    planned activity: counted as such, the plan would be £10,200 and the variable −£9,900.00."""
    root = tmp_path / "ws"
    for folder in ("contracts", "data/activity", "data/plans", "prices"):
        (root / folder).mkdir(parents=True)
    (root / "carecontracts.toml").write_text('name = "t"\nfinancial_year = "2025-26"\n')
    (root / "contracts" / "api.yaml").write_text(API)
    (root / "prices" / "national.csv").write_text(PRICES)
    (root / "data" / "activity" / "april.csv").write_text("\n".join(
        [ACTIVITY_COLUMNS] + [f"A{i},q{i},ACUTE,ICB-A,surgery,HRG1,EL,2025-04-1{i},2025-04-1{i},1" for i in (1, 2, 3)]) + "\n")
    (root / "data" / "plans" / "plans.csv").write_text(
        "contract,service,month,planned_quantity,planned_value,component\n"
        "API-2025,elective,2025-04,2,200.00,\n"
        "API-2025,elective,2025-04,,10000.00,api.fixed\n")
    space = Workspace.open(root)
    load_workspace(space)
    engine, tables = open_engine(space)
    try:
        assert engine.to_arrow(tables.plans).num_rows == 1 and "component" not in tables.plans.columns
        assert tables.payment_plans is not None and engine.to_arrow(tables.payment_plans).column("component").to_pylist() == ["api.fixed"]
        lines = statement_lines(engine, workspace_contracts(space), space.year, tables).to_pylist()
    finally:
        engine.close()
    variable = [r["amount"] for r in lines if r["component"] == "api.variable"]
    assert sum(variable, D(0)) == D("100.00")
    assert sum((r["amount"] for r in lines if r["component"] == "api.fixed"), D(0)) == D("120000.00")


def test_plans_loaded_before_payment_plans_are_all_activity_plans() -> None:
    """A warehouse whose plans have no `component` column (loaded before payment plans
    existed) is read as activity plans, every row."""
    engine = Engine.duckdb()
    try:
        old = engine.put(pa.table({"contract": ["C1"], "service": ["elective"], "month": pa.array([dt.date(2025, 4, 1)]),
                                   "planned_quantity": pa.array([D("2")], pa.decimal128(18, 4)), "planned_value": pa.array([D("200")], pa.decimal128(18, 2))}))
        tables = RunTables.of(None, None, old, None, None)
        assert tables.payment_plans is None and engine.to_arrow(tables.plans).num_rows == 1
    finally:
        engine.close()


def test_the_report_plans_the_money_where_there_are_payment_plans() -> None:
    """The report's plan for a contract with payment plans is their sum (the money planned),
    not its activity plans' value; a contract with activity plans only keeps their value."""
    engine = Engine.duckdb()
    try:
        april, may = dt.date(2025, 4, 1), dt.date(2025, 5, 1)
        plans = engine.put(pa.table({
            "contract": ["ACUTE-2025", "COMM-2025", "COMM-2025", "COMM-2025"],
            "service": ["elective", "community", None, None],
            "month": pa.array([april, april, april, may]),
            "planned_quantity": pa.array([D("1"), D("50"), None, None], pa.decimal128(18, 4)),
            "planned_value": pa.array([D("6300"), D("500"), D("100000"), D("100000")], pa.decimal128(18, 2)),
            "component": [None, None, "core", "core"],
        }))
        planned = plans_by_contract(engine, RunTables.of(None, None, plans, None, None))
    finally:
        engine.close()
    assert planned == {"ACUTE-2025": {april: D("6300.00")}, "COMM-2025": {april: D("100000.00"), may: D("100000.00")}}


def test_no_payment_plans_is_a_clear_problem(paid: Path, tmp_path: Path) -> None:
    """With activity plans only, plan-vs-actual says how to add a payment plan (exit 2)."""
    root = tmp_path / "copy"
    shutil.copytree(paid, root)
    (root / "data" / "plans" / "payments.csv").write_text("contract,service,month,planned_quantity,planned_value\nISP-2025,ortho,2025-11,3,1200.00\n")
    load_workspace(Workspace.open(root))
    with pytest.raises(ProblemsError) as error:
        plan_versus_actual(Workspace.open(root), [NOV])
    assert "no payment plans are loaded" in str(error.value) and "naming a component" in str(error.value)
    result = invoke("plan-vs-actual", "2025-11", "-w", root)
    assert result.exit_code == 2 and "no payment plans are loaded" in result.output


def test_forecast_sets_each_outturn_against_its_plan(paid: Path) -> None:
    """Run rate as of November: three cases in the eight months April to November, 3/8 a month,
    so December to March add 4 × 0.375 × £400 = £600 to November's £1,200: ISP's outturn
    £1,800.00 against its £1,000.00 plan, £800.00 more than planned (adverse); the block on
    plan; the commissioners' total plan £1,201,000.00 against £1,201,800.00."""
    result = invoke("forecast", "--as-of", "2025-11", "--method", "run_rate", "-w", paid)
    assert result.exit_code == 0, result.output
    rows = [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]
    assert "COMM-2025 £1,200,000.00 £1,200,000.00 £0.00 on plan" in rows
    assert "ISP-2025 £1,000.00 £1,800.00 -£800.00 adverse" in rows
    assert "commissioners pay £1,201,000.00 £1,201,800.00 -£800.00 adverse" in rows
    assert "Outturn 2025-26 as of M8 2025-11" in result.output and "YTD M1–M8" in result.output
