"""Each party's outlook: where its year will end (the forecast's net position at outturn, with
the range over the forecast methods) and how bad it can get (the simulated distribution of its
position, or of a commissioner's payments against its budget), worked together as of the same
month of actual data and stored in the warehouse, so that the service shows each party its row."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Callable

import duckdb
import pyarrow as pa

from carecontracts.periods import month_label
from carecontracts.problems import Problem, ProblemsError
from carecontracts.workspace import Workspace

MONEY = pa.decimal128(18, 2)
SHARE = pa.decimal128(6, 4)
SCHEMA = pa.schema([
    ("party", pa.string()), ("role", pa.string()), ("as_of", pa.date32()), ("method", pa.string()),
    ("forecast_net", MONEY), ("forecast_low", MONEY), ("forecast_high", MONEY),
    ("measure", pa.string()), ("mean", MONEY), ("p5", MONEY), ("p50", MONEY), ("p95", MONEY), ("worst_5_percent", MONEY),
    ("chance_of_loss", SHARE), ("budget", MONEY), ("chance_over_budget", SHARE), ("runs", pa.int32()), ("seed", pa.int32()),
])


def actual_to(workspace: Workspace) -> dt.date:
    """The month the outlook starts from: the latest closed month, or before any close the
    latest month of the year with activity."""
    from carecontracts.cycle.close import current_closes
    from carecontracts.cycle.submissions import open_records

    with open_records(workspace).session() as session:
        closed = sorted(current_closes(session))
    if closed:
        return closed[-1]
    year = workspace.year
    found = None
    if workspace.warehouse_path.exists():
        with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
            if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'activity'").fetchone() != (0,):
                found = con.execute("SELECT max(date_trunc('month', end_date))::DATE FROM activity WHERE end_date BETWEEN ? AND ?",
                                    [year.months[0], year.end]).fetchone()
    if not found or found[0] is None:
        raise ProblemsError([Problem("activity", f"no activity of {year.label} is loaded to forecast from", expected="run `carecontracts load` first")])
    return found[0]


def work_out(workspace: Workspace, runs: int = 200, seed: int = 1, progress: Callable[[int], None] | None = None) -> pa.Table:
    """Forecast and simulate the year as of `actual_to`, then store and return every party's outlook."""
    from carecontracts.payments import contracts_as_priced, open_engine
    from carecontracts.scenarios.forecast import forecast
    from carecontracts.scenarios.simulate import RiskModel, simulate

    as_of = actual_to(workspace)
    contracts = contracts_as_priced(workspace)
    engine, tables = open_engine(workspace)
    try:
        outlook = forecast(engine, contracts, workspace.year, tables, as_of)
        # With the whole year actual, the risk is of the year drawn afresh around what was fitted.
        drawn_after = as_of if as_of < workspace.year.months[-1] else None
        risk = simulate(engine, contracts, workspace.year, tables, runs, seed, RiskModel(), drawn_after, None, workspace.settings.budgets, progress)
    finally:
        engine.close()
    headline = "blend" if "blend" in outlook.methods else outlook.methods[0]
    nets: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in outlook.lines.select(["scenario", "payer", "payee", "amount"]).to_pylist():
        method = row["scenario"].split(":")[1]
        nets[row["payer"]][method] -= row["amount"]
        nets[row["payee"]][method] += row["amount"]
    rows = []
    for party in risk.parties:
        spending = party.role == "commissioner"
        d = party.payments if spending else party.position
        by = nets.get(party.party, {})
        values = [by.get(m, Decimal(0)) for m in outlook.methods]
        rows.append({
            "party": party.party, "role": party.role, "as_of": as_of, "method": headline,
            "forecast_net": by.get(headline, Decimal(0)), "forecast_low": min(values), "forecast_high": max(values),
            "measure": "payments" if spending else party.measure, "mean": d.mean, "p5": d.p5, "p50": d.p50, "p95": d.p95,
            "worst_5_percent": d.shortfall, "chance_of_loss": None if spending else _share(d.loss), "budget": party.budget,
            "chance_over_budget": None if party.over_budget is None else _share(party.over_budget), "runs": runs, "seed": seed})
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    with duckdb.connect(str(workspace.warehouse_path)) as con:
        con.register("new_outlook", table)
        con.execute("CREATE OR REPLACE TABLE outlook AS SELECT * FROM new_outlook")
    return table


def _share(value: float) -> Decimal:
    """A probability to 4 places, as the outlook keeps it."""
    return Decimal(str(round(value, 4)))


def summary(table: pa.Table) -> str:
    """One line saying what was worked out."""
    if not table.num_rows:
        return "no party has an outlook"
    first = table.slice(0, 1).to_pylist()[0]
    return f"{table.num_rows} parties' outlook as of {month_label(first['as_of'])}: forecast ({first['method']}) and {first['runs']:,} simulated years"
