"""Forecast outturn: actual tallies to a month, projected tallies for the rest of the
financial year, priced by the same price stage as the payments. Each method is a scenario
(`forecast:run_rate`, ...), so every method, and every month of a backtest, is priced in
one run; the method is named on every projected line.

Methods, per tally key (contract, component, payer, service, currency):
- run_rate: the mean month of the year to date;
- seasonal: the same month last year × growth (year to date over the same months last year);
- plan: the plan's quantity for the month × the key's share of its plan line to date;
- blend: the mean of the methods the data allows.
Measures other than quantity follow quantity in their year-to-date proportions.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement, agreements_of
from carecontracts.engine.backend import Engine, recast
from carecontracts.engine.measure import ACTUAL, SPELL_KEYS, tallies
from carecontracts.engine.run import RunTables, measure, price_tallies
from carecontracts.engine.statement import ORDER
from carecontracts.language.model import Contract
from carecontracts.money import QUANTITY_TYPE
from carecontracts.periods import FinancialYear, add_months, month_label
from carecontracts.problems import Problem, ProblemsError

METHODS = ("run_rate", "seasonal", "plan", "blend")
METHOD_WORDS = {
    "run_rate": "run rate of the year to date",
    "seasonal": "same month last year × growth",
    "plan": "plan × share of plan to date",
    "blend": "mean of the methods",
}
KEY = ["contract", "component", "payer", "service", "currency"]
QUANTITIES = ("quantity", "readmitted", "chargeable")
OTHERS = {"events": "int64", "cost": "decimal(18, 2)", "compliant": "int64"}
FACTOR = "decimal(16, 8)"  # × a quantity (20, 8) stays within 38 digits on every backend


def scenario_of(method: str, as_of: dt.date | None = None) -> str:
    """`forecast:run_rate`, or `backtest:run_rate:2025-11` for a backtest month."""
    return f"forecast:{method}" if as_of is None else f"backtest:{method}:{as_of:%Y-%m}"


def _factor(value: Decimal) -> ir.NumericValue:
    return ibis.literal(value.quantize(Decimal("0.00000001")), type=FACTOR)


def _with_measures(table: ir.Table, quantity: ir.NumericValue, ratios: ir.Table, key: Sequence[str] = KEY) -> ir.Table:
    """Projected rows: quantity as given, other measures in the key's year-to-date
    proportion to quantity."""
    joined = table.mutate(projected=quantity.cast(QUANTITY_TYPE)).join(ratios, list(key))
    columns: dict[str, ir.Value] = {name: joined[name] for name in [*key, "month"]}
    for name in (*QUANTITIES, *OTHERS):
        per_unit = joined[f"per_{name}"]
        value = recast(joined.projected.cast(QUANTITY_TYPE) * per_unit.cast(FACTOR), QUANTITY_TYPE)
        columns[name] = value if name in QUANTITIES else value.round(0 if OTHERS[name] == "int64" else 2).cast(OTHERS[name])
    return joined.select(**columns)


def _ratios(to_date: ir.Table, key: Sequence[str] = KEY) -> ir.Table:
    """Per key: each measure per unit of quantity over the year to date (1 for quantity)."""
    sums = to_date.group_by(list(key)).aggregate(**{name: to_date[name].sum() for name in (*QUANTITIES, *OTHERS)})
    units = sums.quantity.cast("double")
    safe = ibis.cases((units == 0, ibis.null()), else_=units)
    return sums.select(*key, **{f"per_{name}": (sums[name].cast("double") / safe).fill_null(0).cast(FACTOR) for name in (*QUANTITIES, *OTHERS)})


def _months_frame(engine: Engine, months: list[dt.date]) -> ir.Table:
    return engine.put(pa.table({"month": pa.array(months, pa.date32())}))


@dataclass(frozen=True)
class Projection:
    """Projected tallies for months after `as_of`, by each method the data allows."""

    by_method: dict[str, ir.Table]
    unavailable: dict[str, str]


def project(
    engine: Engine,
    routed: ir.Table,
    last_year: ir.Table | None,
    plans: ir.Table | None,
    year: FinancialYear,
    as_of: dt.date,
    methods: tuple[str, ...] = METHODS,
    key: Sequence[str] = KEY,
) -> Projection:
    """Project routed actual tallies beyond `as_of` to the end of the year, per `key` (the
    tally key, and any `unit_` columns carried along to be projected apart; spell
    components' spell keys too, when the tallies carry them)."""
    keys = [*key, *(c for c in SPELL_KEYS if c in routed.columns and c not in key)]
    elapsed = [m for m in year.months if m <= as_of]
    future = [m for m in year.months if m > as_of]
    actual = routed.filter(routed.scenario == ACTUAL)
    to_date = actual.filter(actual.month.isin(elapsed))
    ratios = _ratios(to_date, keys)
    months = _months_frame(engine, future)
    found: dict[str, ir.Table] = {}
    unavailable: dict[str, str] = {}

    if True:  # the run rate is also where the other methods fall back for keys they cannot project
        sums = to_date.group_by(keys).aggregate(total=to_date.quantity.sum())
        mean = recast(sums.total.cast(QUANTITY_TYPE) * _factor(Decimal(1) / len(elapsed)), QUANTITY_TYPE)
        rows = sums.mutate(mean=mean).cross_join(months)
        found["run_rate"] = _with_measures(rows, rows.mean, ratios, keys)

    if "seasonal" in methods or "blend" in methods:
        if last_year is None:
            unavailable["seasonal"] = f"no activity for the same months of last year ({month_label(add_months(year.months[0], -12))} on)"
        else:
            before = last_year.filter(last_year.month.isin(elapsed)).group_by(keys).aggregate(before=last_year.quantity.sum())
            now = to_date.group_by(keys).aggregate(now=to_date.quantity.sum())
            growth = now.join(before, keys)
            growth = growth.filter(growth.before > 0)
            growth = growth.select(*keys, growth=(growth.now.cast("double") / growth.before.cast("double")).cast(FACTOR))
            later = last_year.filter(last_year.month.isin(future)).group_by([*keys, "month"]).aggregate(last=last_year.quantity.sum())
            rows = later.join(growth, keys).select(*keys, "month", "last", "growth")
            found["seasonal"] = _or_run_rate(_with_measures(rows, recast(rows.last.cast(QUANTITY_TYPE) * rows.growth, QUANTITY_TYPE), ratios, keys), growth, found["run_rate"], keys)

    if "plan" in methods or "blend" in methods:
        if plans is None:
            unavailable["plan"] = "no plans are loaded (data/plans)"
        else:
            planned = plans.group_by(["contract", "service", "month"]).aggregate(planned=plans.planned_quantity.sum())
            line_to_date = to_date.group_by(["contract", "service"]).aggregate(line_total=to_date.quantity.sum())
            key_to_date = to_date.group_by(keys).aggregate(key_total=to_date.quantity.sum())
            shares = key_to_date.join(line_to_date, ["contract", "service"])
            shares = shares.filter(shares.line_total > 0)
            shares = shares.select(*keys, share=(shares.key_total.cast("double") / shares.line_total.cast("double")).cast(FACTOR))
            ahead = planned.filter(planned.month.cast("date").isin(future))
            rows = shares.join(ahead, ["contract", "service"])
            rows = rows.select(*keys, month=rows.month.cast("date"), planned=rows.planned, share=rows.share)
            planned_keys = rows.select(*keys).distinct()
            found["plan"] = _or_run_rate(_with_measures(rows, recast(rows.planned.cast(QUANTITY_TYPE) * rows.share, QUANTITY_TYPE), ratios, keys), planned_keys, found["run_rate"], keys)

    if "blend" in methods:
        parts = [found[m] for m in ("run_rate", "seasonal", "plan") if m in found]
        both = ibis.union(*parts, distinct=False)
        count = len(parts)
        grouped = both.group_by([*keys, "month"]).aggregate(total=both.quantity.sum())
        rows = grouped.mutate(mean=recast(grouped.total.cast(QUANTITY_TYPE) * _factor(Decimal(1) / count), QUANTITY_TYPE))
        found["blend"] = _with_measures(rows, rows.mean, ratios, keys)
    return Projection({m: found[m] for m in methods if m in found}, {m: why for m, why in unavailable.items() if m in methods})


def _or_run_rate(projected: ir.Table, covered: ir.Table, run_rate: ir.Table, key: Sequence[str] = KEY) -> ir.Table:
    """A method's projection, with the run rate for keys it cannot project (no plan line,
    no activity in the same months last year)."""
    rest = run_rate.anti_join(covered.select(*key), list(key))
    return ibis.union(projected, rest.select(projected.columns), distinct=False)


def projected_routed(routed: ir.Table, projection: Projection, elapsed: list[dt.date], as_of: dt.date | None) -> list[tuple[str, ir.Table]]:
    """(scenario, routed tallies) per method: the actual months to date, then the projection."""
    actual = routed.filter(routed.scenario == ACTUAL, routed.month.isin(elapsed))
    columns = routed.columns
    result = []
    for method, rows in projection.by_method.items():
        scenario = scenario_of(method, as_of)
        known = actual.mutate(scenario=ibis.literal(scenario)).select(columns)
        ahead = rows.mutate(scenario=ibis.literal(scenario)).select(columns)
        result.append((scenario, ibis.union(known, ahead, distinct=False)))
    return result


def last_year_tallies(engine: Engine, fine: ir.Table, agreements: list[Agreement], year: FinancialYear, keep: Sequence[str] = ()) -> ir.Table | None:
    """Last year's fine tallies moved forward twelve months and routed as this year's, so
    `month` is the month they stand for (None when there is no activity last year)."""
    previous = [add_months(m, -12) for m in year.months]
    last = fine.filter(fine.month.isin(previous))
    moved = last.mutate(month=ibis.date(last.month.year() + 1, last.month.month(), 1))
    routed = tallies(engine, moved.select(fine.columns), agreements, keep)
    if routed is None:
        return None
    return routed if engine.to_arrow(routed.select("month").limit(1)).num_rows else None


@dataclass(frozen=True)
class Forecast:
    """A forecast as of a month: lines for every method (and the actual year to date)."""

    as_of: dt.date
    methods: tuple[str, ...]
    unavailable: dict[str, str]
    lines: pa.Table


def _named(lines: ir.Table, scenario: str, method: str, as_of: dt.date) -> ir.Table:
    """Lines of one forecast scenario, the projected months' basis naming the method."""
    words = f"projected ({METHOD_WORDS[method]}, as of {month_label(as_of)}): "
    return lines.mutate(basis=ibis.cases((lines.month > as_of, words + lines.basis), else_=lines.basis))


def check_as_of(routed: ir.Table | None, year: FinancialYear, as_of: dt.date, engine: Engine) -> list[dt.date]:
    if as_of not in year.months:
        raise ProblemsError([Problem("--as-of", f"{month_label(as_of)} is outside the financial year {year.label}", expected="a month of the workspace's financial year")])
    elapsed = [m for m in year.months if m <= as_of]
    if routed is None or not engine.to_arrow(routed.filter(routed.month == as_of).select("month").limit(1)).num_rows:
        raise ProblemsError([Problem("--as-of", f"there is no activity in {month_label(as_of)} to forecast from",
                                     expected="a month with activity loaded (see `carecontracts load`)")])
    return elapsed


def forecast(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    as_of: dt.date,
    methods: tuple[str, ...] = METHODS,
) -> Forecast:
    """Price the actual year to date and each method's projection of the rest, together."""
    agreements = agreements_of(contracts)
    fine, routed = measure(engine, agreements, tables.activity)
    elapsed = check_as_of(routed, year, as_of, engine)
    assert fine is not None and routed is not None
    last = last_year_tallies(engine, fine, agreements, year) if "seasonal" in methods or "blend" in methods else None
    projection = project(engine, routed, last, tables.plans, year, as_of, methods)
    scenarios = projected_routed(routed, projection, elapsed, None)
    if not scenarios:
        raise ProblemsError([Problem("--method", "; ".join(f"{m}: {why}" for m, why in projection.unavailable.items()), expected="a method the data allows")])
    names = tuple(name for name, _ in scenarios)
    all_routed = ibis.union(*[rows for _, rows in scenarios], distinct=False)
    lines = price_tallies(engine, agreements, year, tables, all_routed, names)
    named = ibis.union(*[_named(lines.filter(lines.scenario == name), name, name.split(":")[1], as_of) for name in names], distinct=False)
    return Forecast(as_of, tuple(n.split(":")[1] for n in names), projection.unavailable, engine.to_arrow(named.order_by(ORDER)))


def outturn(forecast_lines: pa.Table) -> dict[str, dict[str, Decimal]]:
    """Full-year amount per contract for each forecast scenario."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in forecast_lines.select(["scenario", "contract", "amount"]).to_pylist():
        totals[row["contract"]][row["scenario"]] += row["amount"]
    return {contract: dict(by) for contract, by in totals.items()}


@dataclass(frozen=True)
class Backtest:
    """Mean absolute percentage error of contracts' monthly amounts, by method and horizon
    (months ahead of the month forecast from)."""

    errors: dict[str, dict[int, float]]
    counts: dict[str, dict[int, int]]


def backtest(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    methods: tuple[str, ...] = ("run_rate", "seasonal", "plan", "blend"),
) -> Backtest:
    """Forecast the year from each of its months (all priced in one run) and compare each
    contract's monthly amount with what was actually paid."""
    agreements = agreements_of(contracts)
    fine, routed = measure(engine, agreements, tables.activity)
    if fine is None or routed is None:
        raise ProblemsError([Problem("data/activity", "no activity to backtest on", expected="a year of activity loaded")])
    last = last_year_tallies(engine, fine, agreements, year) if "seasonal" in methods or "blend" in methods else None
    scenarios: list[tuple[str, ir.Table]] = []
    for as_of in year.months[:-1]:
        elapsed = [m for m in year.months if m <= as_of]
        projection = project(engine, routed, last, tables.plans, year, as_of, methods)
        scenarios += projected_routed(routed, projection, elapsed, as_of)
    names = (ACTUAL,) + tuple(name for name, _ in scenarios)
    all_routed = ibis.union(routed, *[rows for _, rows in scenarios], distinct=False)
    lines = price_tallies(engine, agreements, year, tables, all_routed, names)
    monthly = engine.to_arrow(lines.group_by(["scenario", "contract", "month"]).aggregate(amount=lines.amount.sum()))
    actual: dict[tuple[str, dt.date], Decimal] = {}
    forecasts: list[tuple[str, dt.date, str, dt.date, Decimal]] = []
    for row in monthly.to_pylist():
        if row["scenario"] == ACTUAL:
            actual[(row["contract"], row["month"])] = row["amount"]
        else:
            _, method, as_of = row["scenario"].split(":")
            forecasts.append((method, dt.date.fromisoformat(as_of + "-01"), row["contract"], row["month"], row["amount"]))
    sums: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for method, as_of, contract, month, amount in forecasts:
        if month <= as_of:
            continue
        truth = actual.get((contract, month), Decimal(0))
        if truth == 0:
            continue
        horizon = year.months.index(month) - year.months.index(as_of)
        sums[method][horizon] += abs(float((amount - truth) / truth))
        counts[method][horizon] += 1
    errors = {m: {h: sums[m][h] / counts[m][h] for h in sorted(counts[m])} for m in counts}
    return Backtest(errors, {m: dict(c) for m, c in counts.items()})
