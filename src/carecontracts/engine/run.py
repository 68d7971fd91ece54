"""A payment run: load terms and tables, measure, price, and return statement lines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from dataclasses import dataclass

import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement, agreements_of
from carecontracts.engine.backend import Engine
from carecontracts.engine.measure import ACTUAL, fine_tallies, routes, tallies
from carecontracts.engine.price import PricingInputs, Repricing, price
from carecontracts.engine.statement import ORDER
from carecontracts.language.model import Contract
from carecontracts.periods import FinancialYear


def split_plans(plans: ir.Table | None) -> tuple[ir.Table | None, ir.Table | None]:
    """The warehouse's plans as (activity plans, payment plans). A row naming a component is
    a payment plan: money planned, never activity, so pricing and forecasting must not read
    it. Plans loaded before the `component` column existed are all activity plans."""
    if plans is None or "component" not in plans.columns:
        return plans, None
    return plans.filter(plans.component.isnull()).drop("component"), plans.filter(plans.component.notnull())


@dataclass
class RunTables:
    """The warehouse tables a run reads (any may be absent). `plans` holds activity plans
    only; `payment_plans` the planned payments per component, which only plan-versus-actual
    reads."""

    activity: ir.Table | None
    prices: ir.Table | None = None
    plans: ir.Table | None = None
    population: ir.Table | None = None
    outcomes: ir.Table | None = None
    payment_plans: ir.Table | None = None
    books: ir.Table | None = None

    @classmethod
    def from_engine(cls, engine: Engine) -> "RunTables":
        def get(name: str) -> ir.Table | None:
            return engine.table(name) if engine.has_table(name) else None

        return cls.of(get("activity"), get("prices"), get("plans"), get("population"), get("outcomes"))

    @classmethod
    def of(cls, activity: ir.Table | None, prices: ir.Table | None, plans: ir.Table | None,
           population: ir.Table | None, outcomes: ir.Table | None) -> "RunTables":
        """The tables as the warehouse holds them, with its plans split into activity plans
        and payment plans (`split_plans`)."""
        activity_plans, payment_plans = split_plans(plans)
        return cls(activity, prices, activity_plans, population, outcomes, payment_plans)


@dataclass
class Priced:
    """Statement lines (an expression), the tallies they price, and the fine tallies those
    were routed from, for every scenario."""

    lines: ir.Table
    tallies: ir.Table | None
    fine: ir.Table | None
    agreements: list[Agreement]
    routes: ir.Table | None = None  # the routing table the tallies were routed by


@dataclass
class Measured:
    """Fine tallies of the events, the routing table, and the tallies routed by it to each
    activity-measuring component (each None without activity or such components)."""

    fine: ir.Table | None = None
    routes: ir.Table | None = None
    routed: ir.Table | None = None


def measured(engine: Engine, agreements: list[Agreement], activity: ir.Table | None) -> Measured:
    """The one heavy scan, keeping the routing table for checks over it (double payment)."""
    if activity is None:
        return Measured()
    fine = engine.cache(fine_tallies(activity, agreements))
    table = routes(engine, fine, agreements)
    routed = tallies(engine, fine, agreements, table=table) if table is not None else None
    return Measured(fine, table, engine.cache(routed) if routed is not None else None)


def measure(engine: Engine, agreements: list[Agreement], activity: ir.Table | None) -> tuple[ir.Table | None, ir.Table | None]:
    """The one heavy scan: fine tallies of the events, and the tallies routed from them to
    each activity-measuring component (both cached; None without activity)."""
    result = measured(engine, agreements, activity)
    return result.fine, result.routed


def price_tallies(
    engine: Engine,
    agreements: list[Agreement],
    year: FinancialYear,
    tables: RunTables,
    routed: ir.Table | None,
    scenarios: tuple[str, ...] = (ACTUAL,),
    achievement_changes: dict[tuple[str, str, str], Decimal] | None = None,
    repricing: Repricing | None = None,
) -> ir.Table:
    """Statement lines of every agreement in every scenario from routed tallies (which
    carry a `scenario` column): the one price stage that payments, forecasts, what-ifs and
    comparisons all go through."""
    inputs = PricingInputs(
        engine, year, scenarios, routed, tables.prices, tables.plans, tables.population, tables.outcomes, tables.activity, tables.books,
        achievement_changes or {}, repricing or Repricing(),
    )
    return price(inputs, agreements)


def measure_and_price(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    scenarios: tuple[str, ...] = (ACTUAL,),
) -> Priced:
    """Measure the events once, then price every component of every agreement."""
    agreements = agreements_of(contracts)
    result = measured(engine, agreements, tables.activity)
    return Priced(price_tallies(engine, agreements, year, tables, result.routed, scenarios), result.routed, result.fine, agreements, result.routes)


def uncovered_activity(engine: Engine, priced: Priced, year: FinancialYear) -> list[tuple[str, str, int]]:
    """Events in the year from a provider and commissioner that no agreement covers, as
    (provider, commissioner, events): activity a statement cannot include."""
    if priced.fine is None:
        return []
    fine = priced.fine
    pairs = engine.to_arrow(
        fine.filter(fine.month.isin(year.months)).group_by(["provider", "commissioner"]).aggregate(events=fine.events.sum())
    ).to_pylist()
    covered = {(p, c) for a in priced.agreements for p in a.activity_providers for c in a.activity_commissioners}
    return sorted((r["provider"], r["commissioner"], r["events"]) for r in pairs if (r["provider"], r["commissioner"]) not in covered)


def statement_lines(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    months: list[dt.date] | None = None,
    scenarios: tuple[str, ...] = (ACTUAL,),
) -> pa.Table:
    """Statement lines for the requested months (all of the year if None), ordered."""
    lines = measure_and_price(engine, contracts, year, tables, scenarios).lines
    if months is not None:
        lines = lines.filter(lines.month.isin(months))
    return engine.to_arrow(lines.order_by(ORDER))
