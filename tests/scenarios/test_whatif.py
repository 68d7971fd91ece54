"""What-if worked by hand: "if we send 10% less elective work from December to March, do we
pay less?" depends on the contract form. Each case runs on DuckDB and (marked) Spark."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from carecontracts.engine.backend import Engine
from carecontracts.engine.run import RunTables
from carecontracts.problems import ProblemsError
from carecontracts.scenarios.whatif import Change, WhatIf, run_whatif
from tests.helpers import YEAR, D, activity, contract, plans, price_list, repeat

HEAD = """
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
services: {elective: {service: [elective]}, other: {service: [other]}}
"""

LESS_ELECTIVE = WhatIf(
    name="less elective",
    changes=[Change.model_validate({"scale": {"service": ["elective"], "from": "2025-12-01", "to": "2026-03-01"}, "percent": -10})],
)


def year_of(per_month: int, **row) -> list[dict]:
    """`per_month` cases in every month of 2025-26."""
    rows = []
    for index, month in enumerate(YEAR.months):
        day = dt.date(month.year, month.month, 10)
        rows += repeat(per_month, end_date=day, start_date=day, prefix=f"{row.get('service', 'x')}{index}-", **row)
    return rows


def saving(engine: Engine, text: str, rows: list[dict], **tables) -> tuple[Decimal, list]:
    put = {name: engine.put(table) for name, table in tables.items()}
    run = RunTables(engine.put(activity(rows)), put.get("prices"), put.get("plans"))
    result = run_whatif(engine, [contract(text, {"tariff"})], YEAR, run, LESS_ELECTIVE)
    return result.total, result.differences


def test_block_saves_nothing(engine: Engine) -> None:
    total, differences = saving(engine, HEAD + "components: [{id: core, kind: block, annual: 1_200_000}]", year_of(10, service="elective"))
    assert total == 0
    assert differences[0].reason == "payment does not depend on activity"


def test_activity_saves_units_times_price(engine: Engine) -> None:
    # 10 elective cases a month at £1,000 × MFF 1; December–March: 40 cases, 10% = 4 cases
    # = £4,000 less. Other work is untouched.
    text = HEAD + "components: [{id: acute, kind: activity, prices: tariff}]"
    rows = year_of(10, service="elective") + year_of(5, service="other")
    total, differences = saving(engine, text, rows, prices=price_list({"HRG1": "1000"}))
    assert total == D("-4000.00")
    assert differences[0].reason == "each unit of activity is paid at its price"


def test_cost_and_volume_saves_the_marginal_amount(engine: Engine) -> None:
    # Baseline 1,000 at £2,000, band ±5% (950–1,050), 50% above it. 1,200 cases (100 a
    # month) → 1,160 after removing 10% of December–March (40): still above the band, so
    # the 40 cases are saved at the marginal £1,000 each: £40,000.
    text = HEAD + """
components:
  - {id: mh, kind: cost_and_volume, services: [elective], baseline_volume: 1000, price: 2000, tolerance_percent: 5, above_band_percent: 50}
"""
    total, _ = saving(engine, text, year_of(100, service="elective"))
    assert total == D("-40000.00")


def test_aligned_payment_saves_the_variable_rate_times_value(engine: Engine) -> None:
    # Fixed £1.2m; variable 75% of (actual − planned value) on elective. 20 cases a month
    # at £500 = £10,000 a month; 10% of December–March value (£40,000) = £4,000 less value
    # → £3,000 less paid. The fixed element does not move.
    text = HEAD + """
components:
  - {id: api, kind: aligned_payment, services: [elective], fixed: 1_200_000, prices: tariff, variable_percent: 75, planned_value: 100_000}
"""
    total, differences = saving(engine, text, year_of(20, service="elective"), prices=price_list({"HRG1": "500"}))
    assert total == D("-3000.00")
    fixed = next(d for d in differences if d.component == "api.fixed")
    assert fixed.difference == 0


def test_filter_matching_no_activity_is_reported(engine: Engine) -> None:
    text = HEAD + "components: [{id: acute, kind: activity, prices: tariff}]"
    put = RunTables(engine.put(activity(year_of(2, service="elective"))), engine.put(price_list({"HRG1": "10"})))
    whatif = WhatIf(changes=[Change.model_validate({"scale": {"service": ["orthopaedics"]}, "percent": -10})])
    result = run_whatif(engine, [contract(text, {"tariff"})], YEAR, put, whatif)
    assert result.total == 0
    assert [c.scale.service for c in result.unmatched() if c.scale] == [["orthopaedics"]]


def test_moving_activity_to_another_provider(engine: Engine) -> None:
    # Half of ISP's 10 cases a month in February and March move to the acute trust, paid at
    # its price list: ISP loses 10 × £1,000, the trust gains 10 × £1,200; the ICB pays £2,000 more.
    isp = "id: ISP\ncommissioner: ICB\nprovider: ISP\nterm: {start: 2025-04-01, end: 2026-03-31}\ncomponents: [{id: isp, kind: activity, prices: tariff}]\n"
    trust = "id: TRUST\ncommissioner: ICB\nprovider: TRUST\nterm: {start: 2025-04-01, end: 2026-03-31}\ncomponents: [{id: acute, kind: activity, prices: trust}]\n"
    prices = price_list({"HRG1": "1000"})
    import pyarrow as pa
    both = pa.concat_tables([prices, price_list({"HRG1": "1200"}, "trust")])
    put = RunTables(engine.put(activity(year_of(10, provider="ISP"))), engine.put(both))
    whatif = WhatIf(changes=[Change.model_validate({"move": {"provider": ["ISP"], "from": "2026-02-01"}, "to": "TRUST", "percent": 50})])
    result = run_whatif(engine, [contract(isp, {"tariff", "trust"}), contract(trust, {"tariff", "trust"})], YEAR, put, whatif)
    parties = result.by_party()
    assert (parties["ISP"], parties["TRUST"], parties["ICB"]) == (D("-10000.00"), D("12000.00"), D("-2000.00"))


def test_changing_a_parameter(engine: Engine) -> None:
    # MFF 1 → 1.1 on 12 × 2 cases at £100: £2,400 → £2,640.
    text = HEAD + "components: [{id: acute, kind: activity, prices: tariff}]"
    put = RunTables(engine.put(activity(year_of(2, service="elective"))), engine.put(price_list({"HRG1": "100"})))
    whatif = WhatIf(changes=[Change(parameter="C1.acute.mff", value=D("1.1"))])
    result = run_whatif(engine, [contract(text, {"tariff"})], YEAR, put, whatif)
    assert result.total == D("240.00")
    with pytest.raises(ProblemsError) as error:
        run_whatif(engine, [contract(text, {"tariff"})], YEAR, put, WhatIf(changes=[Change(parameter="C1.acute.mfff", value=D("1.1"))]))
    assert "has no 'mfff'" in error.value.problems[0].message


def test_outcome_achievement_ten_points_lower(engine: Engine) -> None:
    # The DESIGN.md MSK pot (5% of £24m = £1.2m): hips 16 of 20 improved = 80% earns 2/3 of
    # weight 0.6 = £480,000. Ten points lower is 70%, the floor: nothing. Barthel untouched.
    from tests.engine.test_outcome_incentive import MSK, barthels, hips
    from tests.helpers import outcomes

    put = RunTables(None, outcomes=engine.put(outcomes(hips(16, 4) + barthels(6, 4))))
    whatif = WhatIf(changes=[Change.model_validate({"outcome": "MSK-2025.hip-function", "points": -10})])
    result = run_whatif(engine, [contract(MSK)], YEAR, put, whatif)
    hip = next(d for d in result.differences if d.component == "outcomes.hip-function")
    assert (hip.baseline, hip.scenario) == (D("480000.00"), D("0.00"))
    assert result.total == D("-480000.00")
    line = next(r for r in result.lines.to_pylist() if r["scenario"] == "what-if" and r["component"] == "outcomes.hip-function")
    assert "what-if -10.0 points → 70.0%" in line["basis"]
    with pytest.raises(ProblemsError) as error:
        run_whatif(engine, [contract(MSK)], YEAR, put, WhatIf(changes=[Change.model_validate({"outcome": "MSK-2025.hips", "points": -10})]))
    assert "no outcome metric 'MSK-2025.hips'" in error.value.problems[0].message


def test_changing_a_price_in_a_price_list(engine: Engine) -> None:
    # 24 cases a year at £100: +10% → £110 each, £240 more; a new price of £150 → £1,200 more.
    text = HEAD + "components: [{id: acute, kind: activity, prices: tariff}]"
    put = RunTables(engine.put(activity(year_of(2, service="elective"))), engine.put(price_list({"HRG1": "100"})))
    up = run_whatif(engine, [contract(text, {"tariff"})], YEAR, put, WhatIf(changes=[Change(price="tariff/HRG1", percent=D(10))]))
    assert up.total == D("240.00")
    new = run_whatif(engine, [contract(text, {"tariff"})], YEAR, put, WhatIf(changes=[Change(price="tariff/*", value=D(150))]))
    assert new.total == D("1200.00")
    with pytest.raises(ProblemsError) as error:
        run_whatif(engine, [contract(text, {"tariff"})], YEAR, put, WhatIf(changes=[Change(price="tariff/HRG9", value=D(1))]))
    assert "no price for HRG9 in price list 'tariff'" in error.value.problems[0].message
