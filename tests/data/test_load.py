"""Loading data files into the warehouse: checked first, every problem located, and a load
with any problem writes nothing.

Each test builds a real workspace folder. CSV problems are located by file line: the
header is line 1, so data row n is line n + 1."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from carecontracts.data.load import check_files, load_workspace
from carecontracts.problems import Problem, ProblemsError
from carecontracts.workspace import Workspace

ACTIVITY_COLUMNS = "activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity"
PRICE_COLUMNS = "currency,unit_price,valid_from,valid_to"

ACTIVITY_A = [
    "A1,P1,PROV,ICB,general,HRG1,EL,2025-04-01,2025-04-03,1",
    "A2,P2,PROV,ICB,general,HRG2,NEL,2025-04-10,2025-04-10,2.5",
    "A3,P3,PROV,ICB,general,HRG1,EL,2025-05-01,2025-05-02,1",
]
ACTIVITY_B = [
    "B1,P4,PROV,ICB,general,HRG1,OP,2025-06-01,2025-06-01,3",
    "B2,P5,PROV,ICB,general,HRG2,OP,2025-06-02,2025-06-02,0.25",
]
TARIFF = [
    "HRG1,168.00,2025-04-01,2026-03-31",
    "HRG2,1234.5678,2025-04-01,2025-09-30",
    "HRG2,1300.00,2025-10-01,2026-03-31",
]


def write(root: Path, relative: str, header: str, rows: list[str]) -> Path:
    """Write a CSV file with a header row under the workspace root."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def new_workspace(root: Path) -> Workspace:
    """A workspace folder with good activity, prices, plans, population and outcomes files."""
    (root / "carecontracts.toml").write_text('name = "t"\n', encoding="utf-8")
    write(root, "data/activity/a.csv", ACTIVITY_COLUMNS, ACTIVITY_A)
    write(root, "data/activity/b.csv", ACTIVITY_COLUMNS, ACTIVITY_B)
    write(root, "prices/tariff.csv", PRICE_COLUMNS, TARIFF)
    write(root, "data/plans/plan.csv", "contract,service,month,planned_quantity,planned_value", ["C1,general,2025-04,100,16800.00", "C1,general,2025-05,90.5,15204"])
    write(root, "data/population/pop.csv", "commissioner,month,band,persons", ["ICB,2025-04,under-65,1000", "ICB,2025-04,over-65,250"])
    write(root, "data/outcomes/ohs.csv", "patient_id,episode_id,instrument,timepoint,date,score", ["P1,E1,oxford_hip,pre,2025-03-01,20", "P1,E1,oxford_hip,post,2025-09-01,38.5"])
    return Workspace.open(root)


def snapshot(workspace: Workspace) -> dict[str, tuple[list[Any], list[tuple[Any, ...]]]]:
    """Every warehouse table: its column types and all its rows, in a stable order."""
    con = duckdb.connect(str(workspace.warehouse_path), read_only=True)
    try:
        tables = sorted(r[0] for r in con.execute("SHOW TABLES").fetchall())
        result = {}
        for name in tables:
            described = [(r[0], r[1]) for r in con.execute(f'DESCRIBE "{name}"').fetchall()]
            rows = con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall()
            result[name] = (described, rows)
        return result
    finally:
        con.close()


def rows_of(workspace: Workspace, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(workspace.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[Workspace, dict]:
    """A workspace whose good data is already in the warehouse, with a snapshot of it."""
    workspace = new_workspace(tmp_path)
    load_workspace(workspace)
    return workspace, snapshot(workspace)


def rejected(workspace: Workspace, before: dict) -> list[Problem]:
    """Load, expecting problems; check the warehouse is exactly as before; return the problems."""
    with pytest.raises(ProblemsError) as error:
        load_workspace(workspace)
    assert snapshot(workspace) == before
    return error.value.problems


def test_good_load_writes_every_table_with_counts_and_types(tmp_path: Path) -> None:
    """A good load writes each dataset's rows, typed: quantities as exact decimals, dates as dates."""
    workspace = new_workspace(tmp_path)
    report = load_workspace(workspace)
    assert report.rows == {"activity": 5, "outcomes": 2, "population": 2, "plans": 2, "prices": 3}
    assert report.files["activity"] == ["data/activity/a.csv", "data/activity/b.csv"]
    assert report.files["prices"] == ["prices/tariff.csv"]
    counts = {name: rows_of(workspace, f"SELECT count(*) FROM {name}")[0][0] for name in report.rows}
    assert counts == report.rows

    a2 = rows_of(workspace, "SELECT quantity, start_date, end_date, pod, currency, age, referral_date FROM activity WHERE activity_id = 'A2'")
    assert a2 == [(Decimal("2.5"), dt.date(2025, 4, 10), dt.date(2025, 4, 10), "NEL", "HRG2", None, None)]
    quantity = a2[0][0]
    assert isinstance(quantity, Decimal) and not isinstance(quantity, float)
    assert rows_of(workspace, "SELECT sum(quantity) FROM activity") == [(Decimal("7.75"),)]

    prices = rows_of(workspace, "SELECT currency, unit_price, valid_from, valid_to, price_list FROM prices ORDER BY currency, valid_from")
    assert prices[1] == ("HRG2", Decimal("1234.5678"), dt.date(2025, 4, 1), dt.date(2025, 9, 30), "tariff")
    assert {p[4] for p in prices} == {"tariff"}

    # A month written 2025-05 is the first of that month.
    plans = rows_of(workspace, "SELECT month, planned_quantity, planned_value FROM plans ORDER BY month")
    assert plans == [(dt.date(2025, 4, 1), Decimal("100"), Decimal("16800.00")), (dt.date(2025, 5, 1), Decimal("90.5"), Decimal("15204.00"))]
    population = rows_of(workspace, "SELECT band, persons FROM population ORDER BY band")
    assert population == [("over-65", 250), ("under-65", 1000)]
    assert isinstance(population[0][1], int)
    outcomes = rows_of(workspace, "SELECT timepoint, date, score FROM outcomes ORDER BY date")
    assert outcomes == [("pre", dt.date(2025, 3, 1), Decimal("20")), ("post", dt.date(2025, 9, 1), Decimal("38.5"))]


def test_good_load_records_source_file_and_row(tmp_path: Path) -> None:
    """Each loaded row remembers its file (relative to the workspace) and its data-row number."""
    workspace = new_workspace(tmp_path)
    load_workspace(workspace)
    sources = rows_of(workspace, "SELECT activity_id, source_file, source_row FROM activity ORDER BY activity_id")
    assert sources == [
        ("A1", "data/activity/a.csv", 1),
        ("A2", "data/activity/a.csv", 2),
        ("A3", "data/activity/a.csv", 3),
        ("B1", "data/activity/b.csv", 1),
        ("B2", "data/activity/b.csv", 2),
    ]
    prices = rows_of(workspace, "SELECT source_file, source_row FROM prices WHERE unit_price = 1300")
    assert prices == [("prices/tariff.csv", 3)]


def test_reload_replaces_rather_than_appends(loaded: tuple[Workspace, dict]) -> None:
    """Loading again after a file changes gives the new contents, not old plus new."""
    workspace, _ = loaded
    write(workspace.root, "data/activity/b.csv", ACTIVITY_COLUMNS, ACTIVITY_B[:1])
    report = load_workspace(workspace)
    assert report.rows["activity"] == 4
    assert rows_of(workspace, "SELECT count(*) FROM activity") == [(4,)]
    assert rows_of(workspace, "SELECT count(*) FROM activity WHERE activity_id = 'B2'") == [(0,)]


def test_missing_column_names_file_and_column(loaded: tuple[Workspace, dict]) -> None:
    """An activity file without a required column is reported naming the file and the column."""
    workspace, before = loaded
    header = ACTIVITY_COLUMNS.replace(",pod", "")
    rows = [",".join(r.split(",")[:6] + r.split(",")[7:]) for r in ACTIVITY_B]
    write(workspace.root, "data/activity/b.csv", header, rows)
    (problem,) = rejected(workspace, before)
    assert problem.source == "data/activity/b.csv"
    assert "pod" in problem.message
    assert "missing" in problem.message
    assert problem.line == 1  # the header line
    assert problem.expected is not None and "pod" in problem.expected


def test_unparseable_date_is_located_by_line_column_and_value(loaded: tuple[Workspace, dict]) -> None:
    """A date that does not parse is reported with file, CSV line, column, value and the expected form."""
    workspace, before = loaded
    rows = list(ACTIVITY_A)
    rows[1] = "A2,P2,PROV,ICB,general,HRG2,NEL,04/31/2025,2025-04-10,2.5"  # data row 2 → line 3; month first is not a UK date
    write(workspace.root, "data/activity/a.csv", ACTIVITY_COLUMNS, rows)
    (problem,) = rejected(workspace, before)
    assert problem.source == "data/activity/a.csv"
    assert problem.line == 3
    assert problem.field == "start_date"
    assert problem.value == "04/31/2025"
    assert problem.expected == "a date like 2025-11-30 (or 30/11/2025, day first)"
    assert str(problem).startswith("data/activity/a.csv:3 start_date: '04/31/2025'")


def test_uk_dates_pound_signs_and_thousands_separators_are_read(loaded: tuple[Workspace, dict]) -> None:
    """As a spreadsheet saves them: 10/04/2025 is 10 April; £1,234.50 is 1234.50; but 1,2,3 is no number."""
    workspace, before = loaded
    rows = list(ACTIVITY_A)
    rows[1] = 'A2,P2,PROV,ICB,general,HRG2,NEL,10/04/2025,1/5/2025,"1,234.5"'
    write(workspace.root, "data/activity/a.csv", ACTIVITY_COLUMNS, rows)
    write(workspace.root, "prices/tariff.csv", PRICE_COLUMNS, ['HRG1,"£1,168.00",01/04/2025,31/03/2026', *TARIFF[1:]])
    load_workspace(workspace)
    assert rows_of(workspace, "SELECT start_date, end_date, quantity FROM activity WHERE activity_id = 'A2'") == [
        (dt.date(2025, 4, 10), dt.date(2025, 5, 1), Decimal("1234.5"))]
    assert rows_of(workspace, "SELECT unit_price, valid_from, valid_to FROM prices WHERE currency = 'HRG1'") == [
        (Decimal("1168.00"), dt.date(2025, 4, 1), dt.date(2026, 3, 31))]
    after = snapshot(workspace)
    rows[1] = 'A2,P2,PROV,ICB,general,HRG2,NEL,10/04/2025,1/5/2025,"1,2,3"'
    write(workspace.root, "data/activity/a.csv", ACTIVITY_COLUMNS, rows)
    (problem,) = rejected(workspace, after)
    assert (problem.line, problem.field, problem.value) == (3, "quantity", "1,2,3") and "£1,234.56" in problem.expected


def test_impossible_calendar_date_is_rejected(loaded: tuple[Workspace, dict]) -> None:
    """30 February has the right shape but is no date."""
    workspace, before = loaded
    rows = list(ACTIVITY_B)
    rows[1] = "B2,P5,PROV,ICB,general,HRG2,OP,2025-06-02,2025-02-30,0.25"
    write(workspace.root, "data/activity/b.csv", ACTIVITY_COLUMNS, rows)
    (problem,) = rejected(workspace, before)
    assert (problem.source, problem.line, problem.field, problem.value) == ("data/activity/b.csv", 3, "end_date", "2025-02-30")


def test_negative_price_is_located(loaded: tuple[Workspace, dict]) -> None:
    """A negative unit price in a price list names the file, the line and unit_price."""
    workspace, before = loaded
    write(workspace.root, "prices/x.csv", PRICE_COLUMNS, ["HRG1,100.00,2025-04-01,2026-03-31", "HRG9,100.00,2025-04-01,2026-03-31", "HRG2,-50.00,2025-04-01,2026-03-31"])
    (problem,) = rejected(workspace, before)
    assert problem.source == "prices/x.csv"
    assert problem.line == 4
    assert problem.field == "unit_price"
    assert problem.value == "-50.00"
    assert problem.expected is not None and "0" in problem.expected


def test_negative_quantity_is_rejected(loaded: tuple[Workspace, dict]) -> None:
    """Activity quantities are never negative."""
    workspace, before = loaded
    write(workspace.root, "data/activity/b.csv", ACTIVITY_COLUMNS, [ACTIVITY_B[0].replace(",3", ",-3"), ACTIVITY_B[1]])
    (problem,) = rejected(workspace, before)
    assert (problem.line, problem.field, problem.value) == (2, "quantity", "-3")


def test_end_date_before_start_date(loaded: tuple[Workspace, dict]) -> None:
    """A spell that ends before it starts is reported against end_date, saying what was expected."""
    workspace, before = loaded
    rows = list(ACTIVITY_A)
    rows[2] = "A3,P3,PROV,ICB,general,HRG1,EL,2025-05-01,2025-04-30,1"  # data row 3 → line 4
    write(workspace.root, "data/activity/a.csv", ACTIVITY_COLUMNS, rows)
    (problem,) = rejected(workspace, before)
    assert problem.source == "data/activity/a.csv"
    assert problem.line == 4
    assert problem.field == "end_date"
    assert problem.value == "2025-04-30"
    assert problem.expected is not None and "start_date" in problem.expected


def test_same_day_spell_is_fine(tmp_path: Path) -> None:
    """End date equal to start date (a day case, an attendance) is valid."""
    workspace = new_workspace(tmp_path)
    write(tmp_path, "data/activity/a.csv", ACTIVITY_COLUMNS, ["A1,P1,PROV,ICB,general,HRG1,EL,2025-04-01,2025-04-01,1"])
    assert load_workspace(workspace).rows["activity"] == 3


def test_price_valid_from_must_be_first_of_month(loaded: tuple[Workspace, dict]) -> None:
    """Prices apply to whole months: valid_from on the 15th is located and explained."""
    workspace, before = loaded
    rows = list(TARIFF)
    rows[2] = "HRG2,1300.00,2025-10-15,2026-03-31"
    write(workspace.root, "prices/tariff.csv", PRICE_COLUMNS, rows)
    (problem,) = rejected(workspace, before)
    assert problem.source == "prices/tariff.csv"
    assert problem.line == 4
    assert problem.field == "valid_from"
    assert problem.value == "2025-10-15"
    assert problem.expected is not None and "first day of a month" in problem.expected


def test_price_valid_to_must_be_last_of_month(loaded: tuple[Workspace, dict]) -> None:
    """valid_to on a day that is not a month's last is rejected (30 April is; 30 March is not)."""
    workspace, before = loaded
    write(workspace.root, "prices/tariff.csv", PRICE_COLUMNS, ["HRG1,1,2025-04-01,2025-04-30", "HRG1,1,2025-05-01,2026-03-30"])
    (problem,) = rejected(workspace, before)
    assert (problem.line, problem.field, problem.value) == (3, "valid_to", "2026-03-30")


def test_plan_month_must_be_a_month(loaded: tuple[Workspace, dict]) -> None:
    """A plan for a day rather than a month is rejected at its line."""
    workspace, before = loaded
    write(workspace.root, "data/plans/plan.csv", "contract,service,month,planned_quantity,planned_value", ["C1,general,2025-04,100,16800.00", "C1,general,2025-05-14,90.5,15204"])
    (problem,) = rejected(workspace, before)
    assert (problem.source, problem.line, problem.field, problem.value) == ("data/plans/plan.csv", 3, "month", "2025-05-14")
    assert problem.expected == "a month like 2025-11"


PLAN_COLUMNS = "contract,service,month,planned_quantity,planned_value,component"


def test_payment_plan_row_loads_without_service_or_quantity(tmp_path: Path) -> None:
    """A row naming a component is a payment plan: service and quantity may be blank, the
    value may be below nothing (a planned clawback), and a file of payment plans alone needs
    no service or quantity column. Both kinds land in one table, told apart by `component`."""
    workspace = new_workspace(tmp_path)
    write(tmp_path, "data/plans/plan.csv", PLAN_COLUMNS, ["C1,general,2025-04,100,16800.00,", "C1,,2025-04,,100000.00,core"])
    write(tmp_path, "data/plans/payments.csv", "contract,component,month,planned_value,commissioner", ["C1,cquin.clawback,2026-03,-250.50,ICB"])
    assert check_files(workspace) == []
    load_workspace(workspace)
    rows = rows_of(workspace, "SELECT contract, component, service, month, planned_quantity, planned_value, commissioner FROM plans ORDER BY source_file, source_row")
    assert rows == [
        ("C1", "cquin.clawback", None, dt.date(2026, 3, 1), None, Decimal("-250.50"), "ICB"),
        ("C1", None, "general", dt.date(2025, 4, 1), Decimal("100.0000"), Decimal("16800.00"), None),
        ("C1", "core", None, dt.date(2025, 4, 1), None, Decimal("100000.00"), None),
    ]


def test_activity_plan_without_service_or_quantity_is_located(loaded: tuple[Workspace, dict]) -> None:
    """A row naming no component is an activity plan: a blank service or quantity, or a value
    below nothing, is refused at its file, line and field, saying what was expected."""
    workspace, before = loaded
    write(workspace.root, "data/plans/plan.csv", PLAN_COLUMNS,
          ["C1,general,2025-04,100,16800.00,", "C1,,2025-05,90,15204.00,", "C1,general,2025-06,,15204.00,", "C1,general,2025-07,1,-5.00,"])
    problems = rejected(workspace, before)
    assert [(p.source, p.line, p.field, p.value) for p in problems] == [
        ("data/plans/plan.csv", 3, "service", None),
        ("data/plans/plan.csv", 4, "planned_quantity", None),
        ("data/plans/plan.csv", 5, "planned_value", "-5.00"),
    ]
    assert problems[0].expected == "a service for an activity plan (a row naming no component), or a component for a payment plan"
    assert problems[1].expected is not None and problems[1].expected.startswith("a planned quantity for an activity plan")
    assert str(problems[0]).startswith("data/plans/plan.csv:3 service: (blank) is not valid")


def test_plans_with_no_service_column_are_each_located(loaded: tuple[Workspace, dict]) -> None:
    """Without a component, a file lacking the service column is refused row by row."""
    workspace, before = loaded
    write(workspace.root, "data/plans/plan.csv", "contract,month,planned_quantity,planned_value", ["C1,2025-04,100,16800.00"])
    (problem,) = rejected(workspace, before)
    assert (problem.source, problem.line, problem.field) == ("data/plans/plan.csv", 2, "service")


def test_outcome_timepoint_must_be_pre_or_post(loaded: tuple[Workspace, dict]) -> None:
    """A value outside a column's choices is rejected, naming the choices."""
    workspace, before = loaded
    write(workspace.root, "data/outcomes/ohs.csv", "patient_id,episode_id,instrument,timepoint,date,score", ["P1,E1,oxford_hip,before,2025-03-01,20"])
    (problem,) = rejected(workspace, before)
    assert (problem.line, problem.field, problem.value) == (2, "timepoint", "before")
    assert problem.expected is not None and "pre" in problem.expected and "post" in problem.expected


def test_blank_required_value_is_rejected(loaded: tuple[Workspace, dict]) -> None:
    """An empty required text value is as bad as a missing one."""
    workspace, before = loaded
    write(workspace.root, "data/activity/b.csv", ACTIVITY_COLUMNS, [ACTIVITY_B[0], "B2,,PROV,ICB,general,HRG2,OP,2025-06-02,2025-06-02,0.25"])
    (problem,) = rejected(workspace, before)
    assert (problem.source, problem.line, problem.field) == ("data/activity/b.csv", 3, "patient_id")


def test_first_load_with_problems_creates_no_warehouse(tmp_path: Path) -> None:
    """When nothing was loaded before, a load with problems leaves no warehouse at all, so
    later commands say that nothing is loaded yet."""
    workspace = new_workspace(tmp_path)
    write(tmp_path, "prices/tariff.csv", PRICE_COLUMNS, ["HRG1,abc,2025-04-01,2026-03-31"])
    with pytest.raises(ProblemsError):
        load_workspace(workspace)
    assert not workspace.warehouse_path.exists()
    assert not workspace.warehouse_path.with_name(workspace.warehouse_path.name + ".wal").exists()


def test_several_problems_in_several_files_are_all_reported(loaded: tuple[Workspace, dict]) -> None:
    """Every problem in every file comes back in one error, and nothing is written."""
    workspace, before = loaded
    a = list(ACTIVITY_A)
    a[0] = "A1,P1,PROV,ICB,general,HRG1,EL,2025-04-31,2025-04-03,1"  # line 2: no 31 April
    a[2] = "A3,P3,PROV,ICB,general,HRG1,EL,2025-05-01,2025-05-02,lots"  # line 4
    write(workspace.root, "data/activity/a.csv", ACTIVITY_COLUMNS, a)
    write(workspace.root, "data/activity/c.csv", "activity_id,patient_id", ["C1,P9"])
    write(workspace.root, "prices/x.csv", PRICE_COLUMNS, ["HRG1,-1,2025-04-01,2026-03-31"])
    write(workspace.root, "data/population/pop.csv", "commissioner,month,band,persons", ["ICB,April 2025,under-65,1000"])
    problems = rejected(workspace, before)
    located = {(p.source, p.line, p.field) for p in problems}
    assert located == {
        ("data/activity/a.csv", 2, "start_date"),
        ("data/activity/a.csv", 4, "quantity"),
        ("data/activity/c.csv", 1, None),
        ("prices/x.csv", 2, "unit_price"),
        ("data/population/pop.csv", 2, "month"),
    }


def test_many_bad_rows_are_summarised(loaded: tuple[Workspace, dict]) -> None:
    """A file with many bad rows lists the first ones and counts the rest, rather than flooding."""
    workspace, before = loaded
    rows = [f"X{i},P{i},PROV,ICB,general,HRG1,EL,2025-04-01,2025-04-01,minus" for i in range(1, 31)]
    write(workspace.root, "data/activity/b.csv", ACTIVITY_COLUMNS, rows)
    problems = rejected(workspace, before)
    listed = [p for p in problems if p.field == "quantity"]
    assert len(listed) == 20
    assert [p.line for p in listed] == list(range(2, 22))
    (rest,) = [p for p in problems if p.field is None]
    assert "10 more" in rest.message


def test_bad_row_deep_in_a_large_file_is_located_exactly(tmp_path: Path) -> None:
    """Row numbers stay exact in a file large enough to be read in parallel chunks."""
    workspace = new_workspace(tmp_path)
    bad = {54_321, 149_999}
    path = tmp_path / "data/activity/a.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write(ACTIVITY_COLUMNS + "\n")
        for row in range(1, 150_001):
            day = "2025-02-29" if row in bad else "2025-04-01"
            out.write(f"A{row},P{row},PROV,ICB,general,HRG1,EL,{day},2025-04-02,{row}\n")
    with pytest.raises(ProblemsError) as error:
        load_workspace(workspace)
    assert [(p.line, p.value) for p in error.value.problems] == [(54_322, "2025-02-29"), (150_000, "2025-02-29")]
    # And once fixed, every row's recorded number matches its position in the file.
    text = path.read_text(encoding="utf-8").replace("2025-02-29", "2025-04-01")
    path.write_text(text, encoding="utf-8")
    load_workspace(workspace)
    assert rows_of(workspace, "SELECT count(*) FROM activity WHERE source_file = 'data/activity/a.csv'") == [(150_000,)]
    assert rows_of(workspace, "SELECT count(*) FROM activity WHERE source_file = 'data/activity/a.csv' AND (quantity <> source_row OR activity_id <> 'A' || source_row)") == [(0,)]


def parquet_activity(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table(
        {
            "activity_id": [r["id"] for r in rows],
            "patient_id": [r["id"].lower() for r in rows],
            "provider": ["PROV"] * len(rows),
            "commissioner": ["ICB"] * len(rows),
            "service": ["general"] * len(rows),
            "currency": ["HRG1"] * len(rows),
            "pod": ["EL"] * len(rows),
            "start_date": pa.array([r["start"] for r in rows], pa.date32()),
            "end_date": pa.array([r["end"] for r in rows], pa.date32()),
            "quantity": pa.array([r["quantity"] for r in rows], pa.decimal128(12, 2)),
            "age": pa.array([r.get("age") for r in rows], pa.int32()),
        }
    )


def test_parquet_activity_loads_with_types_and_sources(tmp_path: Path) -> None:
    """Parquet files load beside CSV ones, typed, with source file and row."""
    workspace = new_workspace(tmp_path)
    table = parquet_activity(
        [
            {"id": "Q1", "start": dt.date(2025, 7, 1), "end": dt.date(2025, 7, 4), "quantity": Decimal("1.25"), "age": 70},
            {"id": "Q2", "start": dt.date(2025, 7, 2), "end": dt.date(2025, 7, 2), "quantity": Decimal("4"), "age": None},
        ]
    )
    pq.write_table(table, tmp_path / "data/activity/c.parquet")
    report = load_workspace(workspace)
    assert report.rows["activity"] == 7
    assert "data/activity/c.parquet" in report.files["activity"]
    got = rows_of(workspace, "SELECT activity_id, start_date, end_date, quantity, age, source_file, source_row FROM activity WHERE source_file LIKE '%.parquet' ORDER BY activity_id")
    assert got == [
        ("Q1", dt.date(2025, 7, 1), dt.date(2025, 7, 4), Decimal("1.25"), 70, "data/activity/c.parquet", 1),
        ("Q2", dt.date(2025, 7, 2), dt.date(2025, 7, 2), Decimal("4"), None, "data/activity/c.parquet", 2),
    ]
    assert isinstance(got[0][3], Decimal)


def test_parquet_problem_is_located_by_row(loaded: tuple[Workspace, dict]) -> None:
    """A bad row in a Parquet file (which has no lines) is located by its row number."""
    workspace, before = loaded
    table = parquet_activity(
        [
            {"id": "Q1", "start": dt.date(2025, 7, 1), "end": dt.date(2025, 7, 4), "quantity": Decimal("1")},
            {"id": "Q2", "start": dt.date(2025, 7, 9), "end": dt.date(2025, 7, 2), "quantity": Decimal("1")},
        ]
    )
    pq.write_table(table, workspace.root / "data/activity/c.parquet")
    (problem,) = rejected(workspace, before)
    assert (problem.source, problem.row, problem.line, problem.field) == ("data/activity/c.parquet", 2, None, "end_date")
    assert "row 2" in str(problem)


def test_parquet_missing_column(loaded: tuple[Workspace, dict]) -> None:
    """A Parquet file without a required column is reported naming the file and the column."""
    workspace, before = loaded
    table = parquet_activity([{"id": "Q1", "start": dt.date(2025, 7, 1), "end": dt.date(2025, 7, 4), "quantity": Decimal("1")}]).drop_columns(["quantity"])
    pq.write_table(table, workspace.root / "data/activity/c.parquet")
    (problem,) = rejected(workspace, before)
    assert problem.source == "data/activity/c.parquet"
    assert "quantity" in problem.message


def test_empty_optional_columns_are_fine(tmp_path: Path) -> None:
    """Optional columns present but left blank load as nulls; filled ones are typed."""
    workspace = new_workspace(tmp_path)
    header = ACTIVITY_COLUMNS + ",referral_date,admission_method,age,cost,site"
    write(
        tmp_path,
        "data/activity/b.csv",
        header,
        [
            "B1,P4,PROV,ICB,general,HRG1,OP,2025-06-01,2025-06-01,3,,,,,",
            "B2,P5,PROV,ICB,general,HRG2,OP,2025-06-02,2025-06-02,0.25,2025-05-20,elective,67,812.40,MAIN",
        ],
    )
    report = load_workspace(workspace)
    assert report.rows["activity"] == 5
    got = rows_of(workspace, "SELECT activity_id, referral_date, admission_method, age, cost, site FROM activity WHERE activity_id LIKE 'B%' ORDER BY activity_id")
    assert got == [
        ("B1", None, None, None, None, None),
        ("B2", dt.date(2025, 5, 20), "elective", 67, Decimal("812.40"), "MAIN"),
    ]


def test_optional_column_with_a_bad_value_is_rejected(loaded: tuple[Workspace, dict]) -> None:
    """Optional does not mean unchecked: an age of 200 is out of range."""
    workspace, before = loaded
    header = ACTIVITY_COLUMNS + ",age"
    write(workspace.root, "data/activity/b.csv", header, [ACTIVITY_B[0] + ",45", ACTIVITY_B[1] + ",200"])
    (problem,) = rejected(workspace, before)
    assert (problem.line, problem.field, problem.value) == (3, "age", "200")
    assert problem.expected is not None and "130" in problem.expected


def test_fraction_in_a_whole_number_column_is_rejected(loaded: tuple[Workspace, dict]) -> None:
    """persons must be a whole number: 1000.5 people is reported, not rounded to 1001."""
    workspace, before = loaded
    write(workspace.root, "data/population/pop.csv", "commissioner,month,band,persons", ["ICB,2025-04,under-65,1000", "ICB,2025-04,over-65,1000.5"])
    (problem,) = rejected(workspace, before)
    assert (problem.source, problem.line, problem.field, problem.value) == ("data/population/pop.csv", 3, "persons", "1000.5")
    assert problem.expected is not None and "whole number" in problem.expected


def test_price_with_more_places_than_stored_is_not_silently_rounded(loaded: tuple[Workspace, dict]) -> None:
    """A price the warehouse cannot hold exactly is reported rather than changed."""
    workspace, before = loaded
    write(workspace.root, "prices/x.csv", PRICE_COLUMNS, ["HRG1,168.123456,2025-04-01,2026-03-31"])
    (problem,) = rejected(workspace, before)
    assert (problem.source, problem.line, problem.field) == ("prices/x.csv", 2, "unit_price")


def test_check_files_reports_the_same_problems_without_a_warehouse(tmp_path: Path) -> None:
    """check_files finds exactly what a load would, and creates no warehouse."""
    workspace = new_workspace(tmp_path)
    a = list(ACTIVITY_A)
    a[1] = "A2,P2,PROV,ICB,general,HRG2,NEL,10th April,2025-04-10,2.5"
    write(tmp_path, "data/activity/a.csv", ACTIVITY_COLUMNS, a)
    write(tmp_path, "prices/x.csv", PRICE_COLUMNS, ["HRG1,-1,2025-04-01,2026-03-31"])
    checked = check_files(workspace)
    assert not workspace.warehouse_path.exists()
    assert not workspace.state_dir.exists()
    assert {(p.source, p.line, p.field, p.value) for p in checked} == {
        ("data/activity/a.csv", 3, "start_date", "10th April"),
        ("prices/x.csv", 2, "unit_price", "-1"),
    }
    with pytest.raises(ProblemsError) as error:
        load_workspace(workspace)
    assert error.value.problems == checked


def test_check_files_on_good_data_finds_nothing(tmp_path: Path) -> None:
    """Good data has no problems to check."""
    workspace = new_workspace(tmp_path)
    assert check_files(workspace) == []
    assert not workspace.warehouse_path.exists()


def test_large_parquet_load_leaves_nothing_for_the_next_checkpoint_to_rewrite(tmp_path: Path) -> None:
    """A Parquet file read in batches larger than a row group (131,072 rows, as the example
    data is written) loads into whole row groups, each row still numbered by its place in
    the file: a later write to the warehouse (a payment run storing statements) then does
    not rewrite the activity table."""
    workspace = new_workspace(tmp_path)
    for csv in (tmp_path / "data/activity").glob("*.csv"):
        csv.unlink()
    rows = 4 * 131_072
    table = pa.table(
        {
            "activity_id": [f"Q{n}" for n in range(1, rows + 1)],
            "patient_id": [f"p{n % 5000}" for n in range(rows)],
            "provider": ["PROV"] * rows,
            "commissioner": ["ICB"] * rows,
            "service": ["general"] * rows,
            "currency": ["HRG1"] * rows,
            "pod": ["EL"] * rows,
            "start_date": pa.array([dt.date(2025, 7, 1)] * rows, pa.date32()),
            "end_date": pa.array([dt.date(2025, 7, 2)] * rows, pa.date32()),
            "quantity": pa.array(range(1, rows + 1), pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "data/activity/c.parquet", row_group_size=131_072)
    load_workspace(workspace)
    storage = "SELECT row_group_id, column_name, segment_id, block_id, block_offset FROM pragma_storage_info('activity') ORDER BY ALL"
    before = rows_of(workspace, storage)
    con = duckdb.connect(str(workspace.warehouse_path))
    try:
        con.execute("CREATE TABLE statements AS SELECT 1 AS line")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    assert rows_of(workspace, storage) == before
    numbered = "SELECT count(*), count_if(quantity <> source_row OR activity_id <> 'Q' || source_row) FROM activity WHERE source_file = 'data/activity/c.parquet'"
    assert rows_of(workspace, numbered) == [(rows, 0)]
