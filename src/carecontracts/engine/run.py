"""A payment run: load terms and tables, measure, price, and return statement lines."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement, agreements_of
from carecontracts.engine.backend import Engine
from carecontracts.engine.measure import ACTUAL, fine_tallies, tallies
from carecontracts.engine.price import PricingInputs, price
from carecontracts.engine.statement import ORDER
from carecontracts.language.model import Contract
from carecontracts.periods import FinancialYear


@dataclass
class RunTables:
    """The warehouse tables a run reads (any may be absent)."""

    activity: ir.Table | None
    prices: ir.Table | None = None
    plans: ir.Table | None = None
    population: ir.Table | None = None

    @classmethod
    def from_engine(cls, engine: Engine) -> "RunTables":
        def get(name: str) -> ir.Table | None:
            return engine.table(name) if engine.has_table(name) else None

        return cls(get("activity"), get("prices"), get("plans"), get("population"))


def measure_and_price(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    scenarios: tuple[str, ...] = (ACTUAL,),
) -> tuple[ir.Table, ir.Table | None, list[Agreement]]:
    """Statement lines (an expression) and the tallies behind them, for every scenario."""
    agreements = agreements_of(contracts)
    routed = None
    if tables.activity is not None:
        routed = tallies(engine.cache(fine_tallies(tables.activity, agreements)), agreements)
        if routed is not None:
            routed = engine.cache(routed)
    inputs = PricingInputs(engine, year, scenarios, routed, tables.prices, tables.plans, tables.population)
    return price(inputs, agreements), routed, agreements


def statement_lines(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    months: list[dt.date] | None = None,
    scenarios: tuple[str, ...] = (ACTUAL,),
) -> pa.Table:
    """Statement lines for the requested months (all of the year if None), ordered."""
    lines, _, _ = measure_and_price(engine, contracts, year, tables, scenarios)
    if months is not None:
        lines = lines.filter(lines.month.isin(months))
    return engine.to_arrow(lines.order_by(ORDER))
