"""Forecasts worked by hand, and a backtest on synthetic data with known seasonality."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from carecontracts.engine.backend import Engine
from carecontracts.engine.run import RunTables
from carecontracts.periods import add_months
from carecontracts.problems import ProblemsError
from carecontracts.scenarios.forecast import backtest, forecast, outturn
from tests.helpers import YEAR, D, activity, contract, plans, price_list, repeat

TERMS = """
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
services: {elective: {service: [elective]}}
components: [{id: acute, kind: activity, prices: tariff}]
"""
# Winter-peaked seasonality; last year's cases are 100 × s, this year's 110 × s (10% growth).
SEASON = [D("1.0"), D("1.0"), D("0.9"), D("0.9"), D("0.8"), D("1.0"), D("1.1"), D("1.2"), D("1.4"), D("1.3"), D("1.2"), D("1.0")]


def cases(counts: list[int], first: dt.date) -> list[dict]:
    rows = []
    for index, count in enumerate(counts):
        month = add_months(first, index)
        day = dt.date(month.year, month.month, 12)
        rows += repeat(count, end_date=day, start_date=day, prefix=f"{month:%Y%m}-", service="elective")
    return rows


def tables(engine: Engine, rows: list[dict], plan=None) -> RunTables:
    return RunTables(engine.put(activity(rows)), engine.put(price_list({"HRG1": "100"})), engine.put(plan) if plan is not None else None)


THIS_YEAR = [int(110 * s) for s in SEASON]
LAST_YEAR = [int(100 * s) for s in SEASON]


def test_run_rate_and_seasonal_by_hand(engine: Engine) -> None:
    # As of September (6 months): this year's cases 110, 110, 99, 99, 88, 110 = 616, a
    # run rate of 102.67 a month → 6 more months at £100: £61,600 + 6 × £10,266.67 = £123,200.
    # Seasonal: growth 616 / 560 = 1.1 × last year's October–March (110 + 120 + 140 + 130 +
    # 120 + 100 = 720) = 792 cases → £61,600 + £79,200 = £140,800, the true outturn.
    rows = cases(LAST_YEAR, dt.date(2024, 4, 1)) + cases(THIS_YEAR, dt.date(2025, 4, 1))
    result = forecast(engine, [contract(TERMS, {"tariff"})], YEAR, tables(engine, rows), dt.date(2025, 9, 1), ("run_rate", "seasonal"))
    totals = outturn(result.lines)["C1"]
    assert totals["forecast:seasonal"] == D("140800.00")
    assert abs(totals["forecast:run_rate"] - D("123200.00")) <= D("0.06")  # 6 months × the rate rounded to 8 places
    projected = [r for r in result.lines.to_pylist() if r["scenario"] == "forecast:seasonal" and r["month"] == dt.date(2026, 1, 1)]
    assert projected[0]["basis"].startswith("projected (same month last year × growth, as of 2025-09): 143 units × £100.00")


def test_plan_based_forecast_uses_the_plan(engine: Engine) -> None:
    # Plan 50 cases a month; as of June, every later month is planned at 50 → 9 × 50 × £100.
    rows = cases([40, 40, 40], dt.date(2025, 4, 1))
    plan = plans([("C1", "elective", m, "0") for m in YEAR.months])
    plan = plan.set_column(plan.schema.get_field_index("planned_quantity"), "planned_quantity", pa.array([Decimal(50)] * 12, pa.decimal128(18, 4)))
    result = forecast(engine, [contract(TERMS, {"tariff"})], YEAR, tables(engine, rows, plan), dt.date(2025, 6, 1), ("plan",))
    assert outturn(result.lines)["C1"]["forecast:plan"] == D("12000.00") + D("45000.00")


def test_forecast_as_of_a_month_without_data_is_an_error(engine: Engine) -> None:
    rows = cases([10, 10], dt.date(2025, 4, 1))
    with pytest.raises(ProblemsError) as error:
        forecast(engine, [contract(TERMS, {"tariff"})], YEAR, tables(engine, rows), dt.date(2025, 10, 1))
    assert "there is no activity in 2025-10 to forecast from" in error.value.problems[0].message


def test_seasonal_without_last_year_says_why(engine: Engine) -> None:
    result = forecast(engine, [contract(TERMS, {"tariff"})], YEAR, tables(engine, cases(THIS_YEAR, dt.date(2025, 4, 1))), dt.date(2025, 9, 1))
    assert "seasonal" not in result.methods and "no activity for the same months of last year" in result.unavailable["seasonal"]


def test_backtest_recovers_known_seasonality() -> None:
    """Forecast 2025-26 from each of its months: with last year's shape and a constant 10%
    growth, the seasonal method is exact but for rounding (tolerance 0.1% at every horizon);
    the run rate, blind to the winter peak, misses by more than 5% somewhere."""
    engine = Engine.duckdb()
    rows = cases(LAST_YEAR, dt.date(2024, 4, 1)) + cases(THIS_YEAR, dt.date(2025, 4, 1))
    result = backtest(engine, [contract(TERMS, {"tariff"})], YEAR, tables(engine, rows), ("run_rate", "seasonal"))
    assert max(result.errors["seasonal"].values()) < 0.001
    assert max(result.errors["run_rate"].values()) > 0.05
    assert sorted(result.errors["seasonal"]) == list(range(1, 12))
