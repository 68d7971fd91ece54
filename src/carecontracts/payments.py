"""The monthly payment run for a workspace: terms + warehouse → stored statement lines."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import duckdb
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.data.books import book_files, read_books
from carecontracts.data.load import DATASETS, LoadReport, data_files, duplicate_ids, staged_files
from carecontracts.data.schemas import ACTIVITY, PLANS
from carecontracts.engine.agreements import agreements_of
from carecontracts.engine.backend import Engine
from carecontracts.engine.double_payment import activity_keys, double_payment_problems, double_payments
from carecontracts.engine.measure import ACTUAL
from carecontracts.engine.positions import positions
from carecontracts.engine.run import Priced, RunTables, measure_and_price, uncovered_activity
from carecontracts.engine.statement import ORDER
from carecontracts.language import Contract, load_contracts
from carecontracts.language.load import terms_outside_year
from carecontracts.machine import is_overflow
from carecontracts.periods import FinancialYear, month_label, parse_month
from carecontracts.problems import Problem, ProblemsError
from carecontracts.report.plans import PAYMENT_PLAN_COLUMNS, PlanVersusActual, payment_plan_problems
from carecontracts.workspace import Workspace

WAREHOUSE_TABLES = ("activity", "prices", "plans", "population", "outcomes")


def parse_period(text: str, year: FinancialYear) -> list[dt.date]:
    """`2025-11`, `2025-04..2025-11`, `year` or `2025-26` → the months, all inside `year`."""
    text = text.strip()
    if text in ("year", "all", year.label):
        return year.months
    try:
        if ".." in text:
            first, last = (parse_month(p) for p in text.split("..", 1))
        else:
            first = last = parse_month(text)
    except ValueError as error:
        raise ProblemsError([Problem("period", str(error).replace("expected YYYY-MM", "expected a month (2025-11), a range (2025-04..2025-11) or 'year'"))]) from None
    problems = [
        Problem("period", f"{month_label(m)} is outside the financial year {year.label} ({month_label(year.months[0])} to {month_label(year.months[-1])})",
                expected="months of the workspace's financial_year (see carecontracts.toml)")
        for m in (first, last) if m not in year
    ]
    if first > last:
        problems.append(Problem("period", f"range {text} ends before it starts", expected="first..last with first ≤ last"))
    if problems:
        raise ProblemsError(problems)
    return [m for m in year.months if first <= m <= last]


def workspace_contracts(workspace: Workspace) -> list[Contract]:
    return load_contracts(workspace.contracts_dir, workspace.price_lists(), workspace.root)


def contracts_as_priced(workspace: Workspace) -> list[Contract]:
    """The contracts with the withholdings of contract management on record, as `pay` prices
    them (a workspace without a records store has none)."""
    from carecontracts.cycle.notices import with_withholdings, withholdings
    from carecontracts.cycle.submissions import open_records
    from carecontracts.records.store import Records

    contracts = workspace_contracts(workspace)
    if not Records.kept(workspace.state_dir, workspace.settings.records):
        return contracts
    with open_records(workspace).session() as session:
        return with_withholdings(contracts, withholdings(session))


def year_notes(workspace: Workspace, contracts: list[Contract]) -> tuple[list[Problem], list[Problem]]:
    """(problems, notes) of the contracts against the financial year: a note for each contract
    whose term lies wholly outside it, and a problem when none of them has a month in it
    (the year is mistyped, or the contracts are for another year): there is nothing to pay."""
    notes = terms_outside_year(contracts, workspace.year)
    outside = {(n.source, n.field) for n in notes}
    if contracts and all((c.source, "term") in outside and all(s.term is None or (c.source, f"subcontracts[{i}].term") in outside
                                                                for i, s in enumerate(c.subcontracts)) for c in contracts):
        year = workspace.year
        return [Problem("carecontracts.toml", f"no contract's term covers any month of the financial year {year.label} "
                        f"({month_label(year.months[0])} to {month_label(year.months[-1])})", line=workspace.setting_line("financial_year"),
                        field="financial_year", value=workspace.settings.financial_year,
                        expected="the financial year the contracts in contracts/ cover")], []
    return [], notes


def workspace_books(workspace: Workspace) -> pa.Table | None:
    """The prices workbooks in prices/ (*.xlsx) as one table, read afresh for every run so a
    re-issued workbook prices the open months at once; None when there are none. Raises
    naming every bad cell of every workbook."""
    files = book_files(workspace.prices_dir)
    return read_books(files, workspace.relative) if files else None


def with_books(engine: Engine, tables: RunTables, books: pa.Table | None) -> RunTables:
    """The run's tables with the prices workbooks put on its engine."""
    return replace(tables, books=engine.put(books)) if books is not None else tables


def open_engine(workspace: Workspace, backend: str | None = None) -> tuple[Engine, RunTables]:
    """The engine and warehouse tables for a run; Spark reads Parquet copies of the warehouse."""
    if not workspace.warehouse_path.exists():
        raise ProblemsError([Problem(workspace.relative(workspace.warehouse_path), "no data loaded yet", expected="run `carecontracts load` first")])
    books = workspace_books(workspace)
    kind = backend or workspace.settings.backend
    if kind == "duckdb":
        engine = Engine.duckdb(workspace.warehouse_path)
        return engine, with_books(engine, RunTables.from_engine(engine), books)
    folder = spark_copy(workspace)
    engine = Engine.spark(workspace.settings.spark_master)

    def read(name: str):
        if name == "activity" and (folder / "activity").is_dir():
            return engine.con.read_parquet(str(folder / "activity"), table_name="cc_activity").drop("end_month")
        path = folder / f"{name}.parquet"
        return engine.con.read_parquet(str(path), table_name=f"cc_{name}") if path.exists() else None

    return engine, with_books(engine, RunTables.of(read("activity"), read("prices"), read("plans"), read("population"), read("outcomes")), books)


def spark_copy(workspace: Workspace) -> Path:
    """Parquet copies of the warehouse's tables for Spark, activity partitioned by the month
    its rows end (`end_month=2025-11/`), so Spark reads each month's files directly. Made
    again only after a load has changed the data (`.carecontracts/LOADED`); swapped in whole."""
    folder = workspace.state_dir / "parquet"
    loaded = workspace.state_dir / "LOADED"
    stamp = loaded.read_text() if loaded.is_file() else f"{workspace.warehouse_path.stat().st_mtime_ns}"
    if (folder / "STAMP").is_file() and (folder / "STAMP").read_text() == stamp:
        return folder
    building = workspace.state_dir / "parquet.new"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        for name in WAREHOUSE_TABLES:
            if name not in present:
                continue
            if name == "activity":
                con.execute(f"COPY (SELECT *, strftime(end_date, '%Y-%m') AS end_month FROM activity) TO '{building / 'activity'}' "
                            "(FORMAT parquet, PARTITION_BY (end_month))")
            else:
                con.execute(f"COPY {name} TO '{building / (name + '.parquet')}' (FORMAT parquet)")
    (building / "STAMP").write_text(stamp)
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    return folder


@dataclass
class Checked:
    """What `check` found: every problem, what was read, and how many activity rows of the
    financial year the double-payment check read (None when it could not run: no contracts
    or activity files, or the activity files have problems of their own)."""

    problems: list[Problem]
    contracts: list[Contract]
    files: int
    activity_rows: int | None
    notes: list[Problem] = field(default_factory=list)


def check_workspace(workspace: Workspace) -> Checked:
    """Check contracts and data files without loading anything, then check the activity in
    the files for rows two contracts would both pay for (as `pay` would after a load)."""
    problems: list[Problem] = []
    contracts: list[Contract] = []
    try:
        contracts = workspace_contracts(workspace)
    except ProblemsError as error:
        problems += error.problems
    outside, notes = year_notes(workspace, contracts)
    problems += outside
    books = None
    try:
        books = workspace_books(workspace)
    except ProblemsError as error:
        problems += error.problems
    rows = None
    with staged_files(workspace) as (con, found):
        problems += [p for dataset in found.values() for p in dataset]
        if contracts:
            problems += payment_plan_problems(
                con.execute(f"SELECT * FROM _stage_{PLANS.name} WHERE NOT _bad AND component IS NOT NULL").to_arrow_table(), contracts)
        has_activity = bool(data_files(workspace, ACTIVITY))
        if has_activity:
            problems += duplicate_ids(con, f"_stage_{ACTIVITY.name}", None)
        engine = Engine.over_duckdb(con)
        try:
            if contracts and has_activity and not found[ACTIVITY.name]:
                activity = engine.table(f"_stage_{ACTIVITY.name}").drop("_bad")
                agreements = agreements_of(contracts)
                keys = engine.cache(activity_keys(activity, agreements))
                problems += double_payment_problems(double_payments(engine, keys, agreements, workspace.year.months, activity), workspace.year.label)
                in_year = keys.filter(keys.month.isin(workspace.year.months))
                rows = int(engine.to_arrow(in_year.aggregate(rows=in_year.events.sum())).column("rows")[0].as_py() or 0)
            if contracts and not problems:
                # Price the year from the files as `pay` would after a load: every problem
                # pricing meets (a rate, plan or population missing for the data) is found now.
                staged = with_books(engine, RunTables.of(*(engine.table(f"_stage_{name}").drop("_bad") for name in WAREHOUSE_TABLES)), books)
                try:
                    price_year(engine, contracts, workspace.year, staged)
                except ProblemsError as error:
                    problems += error.problems
        finally:
            engine.close()
    files = sum(len(data_files(workspace, d)) for d in DATASETS) + len(book_files(workspace.prices_dir))
    return Checked(problems, contracts, files, rows, notes)


def price_year(engine: Engine, contracts: list[Contract], year: FinancialYear, tables: RunTables,
               before: Callable[[Engine, Priced, ir.Table | None, FinancialYear], None] | None = None) -> tuple[Priced, pa.Table, pa.Table | None]:
    """Price the year and compute its statement lines and tallies as `pay` stores them (after
    `before`, a check of what was priced). Sums too large for the engine's exact types are a
    problem naming the data, not a crash."""
    try:
        priced = measure_and_price(engine, contracts, year, tables, (ACTUAL,))
        if before is not None:
            before(engine, priced, tables.activity, year)
        lines = engine.to_arrow(priced.lines.order_by(ORDER))
        tallies = engine.to_arrow(priced.tallies.order_by(["contract", "component", "month", "payer", "service", "currency"])) if priced.tallies is not None else None
    except ProblemsError:
        raise
    except Exception as error:
        if is_overflow(error):
            raise ProblemsError([Problem("data/activity", "amounts too large to price: a sum of the data's quantities or costs does not fit the engine's exact types",
                                         value=str(error)[:160], expected="quantities and costs whose totals per contract and month stay below "
                                         "£10,000,000,000,000,000")]) from None
        raise
    return priced, lines, tallies


def refuse_double_payment(engine: Engine, priced: Priced, activity: ir.Table | None, year: FinancialYear) -> None:
    """Raise, naming both contracts, if one payer would pay twice for any activity row in
    the year: paying it silently twice is what the check exists to stop."""
    if priced.fine is None:
        return
    found = double_payments(engine, priced.fine, priced.agreements, year.months, activity, table=priced.routes)
    if found:
        raise ProblemsError(double_payment_problems(found, year.label))


@dataclass
class PaymentRun:
    """Statement lines of the whole year (stored) and of the months asked for: closed months
    as issued, open months re-priced, and prior-period adjustments in the first open month."""

    year_lines: pa.Table
    lines: pa.Table
    tallies: pa.Table | None
    months: list[dt.date]
    contracts: list[Contract]
    uncovered: list[tuple[str, str, int]]
    positions: pa.Table
    closed: list[dt.date] = field(default_factory=list)
    adjustments: int = 0
    waiting: int = 0
    notes: list[Problem] = field(default_factory=list)


def loaded_stamp(workspace: Workspace) -> str:
    """Changes whenever a load changes the warehouse's data."""
    marker = workspace.state_dir / "LOADED"
    return marker.read_text(encoding="utf-8") if marker.is_file() else ""


def run_payments(workspace: Workspace, months: list[dt.date], backend: str | None = None) -> PaymentRun:
    """Price the year, settle it against the months closed, store statements, re-priced lines
    and tallies in the warehouse, and return the months asked for."""
    from carecontracts.cycle.challenges import challenged_lines, excluded_activity
    from carecontracts.cycle.close import Reasons, current_closes, issued_lines, priced_stamp, settle, sources, with_adjusts
    from carecontracts.cycle.notices import with_withholdings, withholding_stamp, withholdings
    from carecontracts.cycle.submissions import open_records
    from carecontracts.cycle.variations import record_variations

    contracts = workspace_contracts(workspace)
    outside, notes = year_notes(workspace, contracts)
    if outside:
        raise ProblemsError(outside)
    current = sources(workspace)  # what is priced from, hashed before pricing
    records = open_records(workspace)
    with records.session() as session:
        closes = current_closes(session)
        excluded = excluded_activity(session)
        held = withholdings(session)
    contracts = with_withholdings(contracts, held)
    engine, tables = open_engine(workspace, backend)
    try:
        if excluded and tables.activity is not None:
            removed = engine.put(pa.table({"activity_id": pa.array(sorted(excluded), pa.string())}))
            tables = replace(tables, activity=tables.activity.anti_join(removed, "activity_id"))
        priced, repriced, tallies = price_year(engine, contracts, workspace.year, tables, refuse_double_payment)
        uncovered = uncovered_activity(engine, priced, workspace.year)
        with records.session() as session:
            repriced = pa.concat_tables([with_adjusts(repriced), challenged_lines(session, with_adjusts(repriced).schema)])
            issued = issued_lines(session, closes.values(), repriced.schema)
            settled = settle(repriced, issued, set(closes), workspace.year.months, Reasons(session, workspace, contracts, closes, current))
            record_variations(session, workspace, contracts, current)
        year_lines = settled.lines
        # From the lines just settled: positions over the priced expression would compile
        # and run the whole price stage again.
        party_positions = engine.to_arrow(positions(engine.put(year_lines.drop_columns(["adjusts"])), priced.fine, priced.agreements, months))
    finally:
        engine.close()
    store(workspace.warehouse_path, year_lines, tallies, repriced, priced_stamp(current, closes, excluded, loaded_stamp(workspace), withholding_stamp(held)),
          party_positions.append_column("from_month", pa.array([months[0]] * party_positions.num_rows, pa.date32()))
                         .append_column("to_month", pa.array([months[-1]] * party_positions.num_rows, pa.date32())))
    wanted = set(months)
    mask = pa.array([m in wanted for m in year_lines.column("month").to_pylist()])
    return PaymentRun(year_lines, year_lines.filter(mask), tallies, months, contracts, uncovered, party_positions, sorted(closes),
                      settled.adjustments, settled.waiting, notes)


def store(warehouse: Path, lines: pa.Table, tallies: pa.Table | None, repriced: pa.Table | None = None, priced_from: dict[str, str] | None = None,
          party_positions: pa.Table | None = None) -> None:
    """Replace the stored statements, re-priced lines, tallies, what they were priced from
    and the parties' positions over the months priced, in one transaction."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("BEGIN TRANSACTION")
        con.register("new_lines", lines)
        con.execute("CREATE OR REPLACE TABLE statements AS SELECT * FROM new_lines")
        if tallies is not None:
            con.register("new_tallies", tallies)
            con.execute("CREATE OR REPLACE TABLE tallies AS SELECT * FROM new_tallies")
        else:
            con.execute("DROP TABLE IF EXISTS tallies")
        if repriced is not None:
            con.register("new_repriced", repriced)
            con.execute("CREATE OR REPLACE TABLE repriced AS SELECT * FROM new_repriced")
        if priced_from is not None:
            con.register("new_stamp", pa.table({"name": list(priced_from), "value": list(priced_from.values())}))
            con.execute("CREATE OR REPLACE TABLE priced_from AS SELECT * FROM new_stamp")
        if party_positions is not None:
            con.register("new_positions", party_positions)
            con.execute("CREATE OR REPLACE TABLE positions AS SELECT * FROM new_positions")
        con.execute("COMMIT")


def priced_from(workspace: Workspace) -> dict[str, str]:
    """What the stored statements were priced from (empty before the first payment run)."""
    table = stored(workspace, "priced_from")
    return {} if table is None else dict(zip(table.column("name").to_pylist(), table.column("value").to_pylist()))


def stored(workspace: Workspace, table: str = "statements", where: str = "", parameters: list | None = None) -> pa.Table | None:
    """Statements (or tallies) from the last payment run, optionally filtered."""
    if not workspace.warehouse_path.exists():
        return None
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if table not in present:
            return None
        return con.execute(f"SELECT * FROM {table} {where}", parameters or []).to_arrow_table()


def last_run(workspace: Workspace) -> tuple[list[dt.date], pa.Table] | None:
    """The months the last payment run was asked for (`pay 2025-11`: November) and the
    parties' positions over them; None before a run, or when the run stored no positions."""
    held = stored(workspace, "positions")
    if held is None or held.num_rows == 0 or "from_month" not in held.column_names:
        return None
    first, last = held.column("from_month")[0].as_py(), held.column("to_month")[0].as_py()
    return [m for m in workspace.year.months if first <= m <= last], held.drop_columns(["from_month", "to_month"])


def stored_payment_plans(workspace: Workspace) -> pa.Table | None:
    """The payment plans loaded (plan rows naming a component), with the file and row each
    came from; None when there are none, or the plans were loaded before payment plans
    existed."""
    if not workspace.warehouse_path.exists():
        return None
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'plans'").fetchall()}
        if "component" not in columns:
            return None
        plans = con.execute("SELECT * FROM plans WHERE component IS NOT NULL ORDER BY source_file, source_row").to_arrow_table()
    return plans if plans.num_rows else None


def plan_versus_actual(workspace: Workspace, months: list[dt.date], contracts: list[str] | None = None) -> PlanVersusActual:
    """The payment plans against the stored statements (the last payment run: closed months as
    issued, adjustments in the month they are paid), per contract and component over the
    months; `contracts` (ids or patterns such as 'ACUTE-*') narrows it to those. Raises when
    nothing is priced yet, no payment plan is loaded, or a plan names what no contract has."""
    from carecontracts.report.book import chosen_contracts, contract_ids
    from carecontracts.report.plans import plan_versus_actual as compare

    statements = stored(workspace, "statements")
    if statements is None:
        raise ProblemsError([Problem("statements", "nothing is priced yet", expected="run `carecontracts pay` first")])
    plans = stored_payment_plans(workspace)
    if plans is None:
        raise ProblemsError([Problem(PLANS.folder, "no payment plans are loaded",
                                     expected=f"rows in {PLANS.folder} naming a component ({PAYMENT_PLAN_COLUMNS}), then `carecontracts load`")])
    terms = workspace_contracts(workspace)
    problems = payment_plan_problems(plans, terms)
    if problems:
        raise ProblemsError(problems)
    chosen = None
    if contracts:
        chosen = chosen_contracts(contracts, set(contract_ids(statements)) | {c.id for c in terms} | {s.id for c in terms for s in c.subcontracts})
    return compare(statements, plans, months, chosen)


__all__ = ["Checked", "LoadReport", "PaymentRun", "check_workspace", "parse_period", "plan_versus_actual", "run_payments", "stored", "workspace_contracts"]
