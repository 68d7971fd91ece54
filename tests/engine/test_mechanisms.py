"""Every worked example in DESIGN.md for the base mechanisms, plus hand-worked edge cases.

Each case runs on DuckDB and (marked `spark`) on Spark against the same hand-computed
numbers, so the two backends agree to the penny."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from carecontracts.engine.backend import Engine
from carecontracts.engine.price import PricingError
from tests.helpers import D, activity, amounts, contract, month, plans, population, price_list, repeat, run

HEAD = """
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
"""


def spread(total: int, **row) -> list[dict]:
    """`total` cases spread over the twelve months of 2025-26, as evenly as whole cases allow."""
    rows, made = [], 0
    for index in range(12):
        count = total * (index + 1) // 12 - made
        made += count
        day = dt.date(2025 + (index + 3) // 12, (index + 3) % 12 + 1, 10)
        rows += repeat(count, end_date=day, start_date=day, prefix=f"m{index}-", **row)
    return rows


def test_block_pays_twelfths_of_120m(engine: Engine) -> None:
    lines = run(engine, [contract(HEAD + "components: [{id: core, kind: block, annual: 120_000_000}]")])
    assert amounts(lines) == [D("10000000.00")] * 12
    assert {r["payer"] for r in lines.to_pylist()} == {"ICB"}
    assert {r["payee"] for r in lines.to_pylist()} == {"PROV"}


def test_block_last_month_absorbs_rounding(engine: Engine) -> None:
    lines = run(engine, [contract(HEAD + "components: [{id: core, kind: block, annual: 100}]")])
    # £100 / 12 = £8.333…: eleven months of £8.33 and £8.37 in March.
    assert amounts(lines) == [D("8.33")] * 11 + [D("8.37")]
    assert lines.to_pylist()[-1]["month"] == month("2026-03")
    assert "absorbs rounding" in lines.to_pylist()[-1]["basis"]


def test_activity_price_times_mff(engine: Engine) -> None:
    terms = contract(HEAD + "components: [{id: acute, kind: activity, prices: tariff, mff: 1.0461, unit: spells}]")
    lines = run(engine, [terms], activity([{"currency": "HRG1"}]), prices=price_list({"HRG1": "168"}))
    (line,) = lines.to_pylist()
    assert line["amount"] == D("175.74")  # 168 × 1.0461 = 175.7448
    assert line["rate"] == D("175.7448")
    assert line["basis"] == "1 spell × £168.00 × MFF 1.0461"


def test_activity_prices_with_four_places_and_mff_with_six(engine: Engine) -> None:
    """National unit costs carry four places and MFFs up to six: the rate keeps them all and
    the basis shows the numbers actually used."""
    terms = contract(HEAD + "components: [{id: acute, kind: activity, prices: tariff, mff: 1.046123}]")
    lines = run(engine, [terms], activity(repeat(3)), prices=price_list({"HRG1": "65.5602"}))
    (line,) = lines.to_pylist()
    # 65.5602 × 1.046123 = 65.5602 + 2.622408 + 0.3933612 + 0.0080639046 = 68.5840331046; × 3 = 205.7520993138 → £205.75
    assert line["rate"] == D("68.5840331046")
    assert line["amount"] == D("205.75")
    assert line["basis"] == "3 units × £65.5602 × MFF 1.046123"


def test_readmissions_not_paid_for_avoidable_share(engine: Engine) -> None:
    """800 eligible readmissions, 25% avoidable, £2,000 each → £400,000 not paid."""
    index_day, back_day = dt.date(2025, 4, 2), dt.date(2025, 4, 20)
    rows = []
    for i in range(800):
        rows.append({"activity_id": f"i{i}", "patient_id": f"p{i}", "pod": "EL", "start_date": index_day, "end_date": dt.date(2025, 4, 5)})
        rows.append({"activity_id": f"r{i}", "patient_id": f"p{i}", "pod": "NEL", "start_date": back_day, "end_date": back_day, "admission_method": "emergency"})
    rule = "readmission: {within_days: 30, avoidable_percent: 25}"
    with_rule = contract(HEAD + f"components: [{{id: acute, kind: activity, prices: tariff, {rule}}}]")
    without = contract(HEAD.replace("C1", "C2") + "components: [{id: acute, kind: activity, prices: tariff}]")
    lines = run(engine, [with_rule, without], activity(rows), prices=price_list({"HRG1": "2000"}))
    paid_with = sum(amounts(lines, contract="C1"))
    paid_without = sum(amounts(lines, contract="C2"))
    assert paid_without == D("3200000.00")
    assert paid_without - paid_with == D("400000.00")
    assert "800 emergency readmissions within 30 days × 25% avoidable" in lines.to_pylist()[0]["basis"]


def test_readmission_exclusions_and_window(engine: Engine) -> None:
    """Only the readmission within 30 days, same provider, not excluded, is counted."""
    discharge = dt.date(2025, 4, 5)
    cases = {
        "counted": {"start_date": dt.date(2025, 5, 5)},  # exactly 30 days after discharge
        "too-late": {"start_date": dt.date(2025, 5, 6)},  # 31 days
        "under-4": {"start_date": dt.date(2025, 4, 10), "age": 2},
        "transfer": {"start_date": dt.date(2025, 4, 10), "admission_method": "transfer"},
        "maternity": {"start_date": dt.date(2025, 4, 10), "service": "maternity"},
        "elsewhere": {"start_date": dt.date(2025, 4, 10), "provider": "OTHER"},
    }
    rows = []
    for name, change in cases.items():
        rows.append({"activity_id": f"{name}-index", "patient_id": name, "pod": "EL", "start_date": dt.date(2025, 4, 1), "end_date": discharge})
        back = {"activity_id": f"{name}-back", "patient_id": name, "pod": "NEL", "end_date": change["start_date"], "admission_method": "emergency"}
        rows.append({**back, **change})
    terms = contract(HEAD + "components: [{id: acute, kind: activity, prices: tariff, readmission: {avoidable_percent: 100}}]")
    lines = run(engine, [terms], activity(rows), prices=price_list({"HRG1": "1000"}))
    # PROV delivered 6 index spells + 5 readmissions; of those only "counted" is not paid.
    assert sum(amounts(lines)) == D("10000.00")


def test_cost_and_volume_above_band(engine: Engine) -> None:
    """Baseline 1,000 at £2,000, band ±5%, 50% above: 1,120 cases → £2,170,000."""
    terms = contract(HEAD + """
components:
  - {id: mh, kind: cost_and_volume, baseline_volume: 1000, price: 2000, tolerance_percent: 5, above_band_percent: 50}
""")
    lines = run(engine, [terms], activity(spread(1120)))
    assert len(lines) == 12
    assert sum(amounts(lines)) == D("2170000.00")
    march = lines.to_pylist()[-1]
    assert "1,050 × £2,000.00 + 70 × £1,000.00 above band" in march["basis"]


@pytest.mark.parametrize(
    ("cases", "expected"),
    [
        (1000, "2000000.00"),  # at baseline
        (1050, "2100000.00"),  # exactly at the top of the band: all at full price
        (950, "1900000.00"),  # exactly at the bottom of the band
        (900, "1800000.00"),  # below band, nothing paid for the shortfall by default
        (0, "0.00"),  # no activity at all
    ],
)
def test_cost_and_volume_band_edges(engine: Engine, cases: int, expected: str) -> None:
    terms = contract(HEAD + """
components:
  - {id: mh, kind: cost_and_volume, baseline_volume: 1000, price: 2000, tolerance_percent: 5, above_band_percent: 50}
""")
    lines = run(engine, [terms], activity(spread(cases)) if cases else activity([]))
    assert sum(amounts(lines)) == D(expected)


def test_cost_and_volume_below_band_rate_and_cap(engine: Engine) -> None:
    terms = contract(HEAD + """
components:
  - {id: mh, kind: cost_and_volume, baseline_volume: 1000, price: 2000, tolerance_percent: 5,
     above_band_percent: 50, below_band_percent: 40, cap: 2_150_000}
""")
    short = run(engine, [terms], activity(spread(900)))
    # 900 × £2,000 + (950 − 900) × 40% × £2,000 = £1,840,000
    assert sum(amounts(short)) == D("1840000.00")
    over = run(engine, [terms], activity(spread(1120)))
    assert sum(amounts(over)) == D("2150000.00")  # £2,170,000 capped


@pytest.mark.parametrize(("percent", "expected"), [(30, "51200000.00"), (70, "52800000.00")])
def test_marginal_rate_above_baseline(engine: Engine, percent: int, expected: str) -> None:
    """Baseline £50m, value £54m: at 30% → £51.2m; at 70% → £52.8m."""
    terms = contract(HEAD + f"components: [{{id: ae, kind: marginal_rate, prices: tariff, baseline_value: 50_000_000, marginal_percent: {percent}}}]")
    lines = run(engine, [terms], activity(spread(27000)), prices=price_list({"HRG1": "2000"}))
    assert sum(amounts(lines)) == D(expected)


def test_aligned_payment_variable_on_plan_parameter(engine: Engine) -> None:
    """Plan £40m, delivered £44m, variable rate 75% → +£3.0m on top of the fixed element."""
    terms = contract(HEAD + """
services: {elective: {pod: [EL]}}
components:
  - {id: api, kind: aligned_payment, services: [elective], prices: tariff, fixed: 120_000_000,
     variable_percent: 75, planned_value: 40_000_000}
""")
    lines = run(engine, [terms], activity(spread(22000)), prices=price_list({"HRG1": "2000"}))
    assert amounts(lines, component="api.fixed") == [D("10000000.00")] * 12
    assert sum(amounts(lines, component="api.variable")) == D("3000000.00")


def test_aligned_payment_plan_from_plans_data_and_floor(engine: Engine) -> None:
    terms = contract(HEAD + """
services: {elective: {pod: [EL]}}
components:
  - {id: api, kind: aligned_payment, services: [elective], prices: tariff, fixed: 0,
     variable_percent: 100, variable_floor: -1_000_000}
""")
    plan = plans([("C1", "elective", month(m), "4000000") for m in ["2025-04", "2025-05", "2025-06", "2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]])
    # £48m planned, £46m delivered: −£2m at 100%, floored at −£1m.
    lines = run(engine, [terms], activity(spread(23000)), prices=price_list({"HRG1": "2000"}), plans=plan)
    assert sum(amounts(lines, component="api.variable")) == D("-1000000.00")


def test_aligned_payment_plans_per_commissioner(engine: Engine) -> None:
    """A plan row naming a commissioner is that commissioner's own plan; others split by share."""
    terms = contract("""
id: C1
commissioners: [{id: ICB-A, share: 0.8}, {id: ICB-B, share: 0.2}]
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: api, kind: aligned_payment, services: [all], prices: tariff, fixed: 0, variable_percent: 100}
""")
    plan = plans([("C1", "all", month("2025-04"), "1000"), ("C1", "all", month("2025-04"), "300")])
    plan = plan.append_column("commissioner", pa.array(["ICB-A", None]))
    rows = activity(repeat(10, commissioner="ICB-A", prefix="a") + repeat(1, commissioner="ICB-B", prefix="b"))
    lines = run(engine, [terms], rows, prices=price_list({"HRG1": "100"}), plans=plan)
    # ICB-A: £1,000 delivered − (£1,000 own + 0.8 × £300) = −£240; ICB-B: £100 − 0.2 × £300 = +£40.
    assert sum(amounts(lines, component="api.variable", payer="ICB-A")) == D("-240.00")
    assert sum(amounts(lines, component="api.variable", payer="ICB-B")) == D("40.00")


def test_low_volume_block_rolling_average(engine: Engine) -> None:
    """£0.31m, £0.29m, £0.33m → £0.31m a year: 11 × £25,833.33 and £25,833.37."""
    terms = contract(HEAD + "components: [{id: ooa, kind: low_volume_block, history: [310000, 290000, 330000]}]")
    lines = run(engine, [terms])
    assert amounts(lines) == [D("25833.33")] * 11 + [D("25833.37")]
    assert sum(amounts(lines)) == D("310000.00")


def test_capitation_rates_and_risk_weights(engine: Engine) -> None:
    terms = contract(HEAD + """
components:
  - {id: gp, kind: capitation, rates: {under-65: 10, over-65: 20}, risk_weights: {over-65: 1.5}}
""")
    pop = population([("ICB", month("2025-04"), "under-65", 1000), ("ICB", month("2025-04"), "over-65", 500), ("OTHER", month("2025-04"), "under-65", 7)])
    lines = run(engine, [terms], population=pop)
    # 1,000 × £10 + 500 × £20 × 1.5 = £25,000; the other ICB's people are not covered.
    assert sorted(amounts(lines)) == [D("10000.00"), D("15000.00")]


def test_capitation_for_some_population_bands_only(engine: Engine) -> None:
    terms = contract(HEAD + """
components:
  - {id: budget, kind: capitation, rates: {over-65: 20}, population_bands: [over-65]}
""")
    pop = population([("ICB", month("2025-04"), "under-65", 1000), ("ICB", month("2025-04"), "over-65", 500)])
    # Only the 500 people over 65 are covered: 500 × £20 = £10,000.
    assert amounts(run(engine, [terms], population=pop)) == [D("10000.00")]


def test_activity_outside_term_is_not_paid(engine: Engine) -> None:
    head = HEAD.replace("start: 2025-04-01", "start: 2025-10-01")
    terms = contract(head + "components: [{id: acute, kind: activity, prices: tariff}]")
    rows = activity([{"end_date": dt.date(2025, 9, 30)}, {"end_date": dt.date(2025, 10, 1)}, {"end_date": dt.date(2026, 4, 1)}])
    lines = run(engine, [terms], rows, prices=price_list({"HRG1": "100"}))
    assert [(r["month"], r["amount"]) for r in lines.to_pylist()] == [(month("2025-10"), D("100.00"))]


def test_block_for_part_year_term(engine: Engine) -> None:
    head = HEAD.replace("start: 2025-04-01", "start: 2025-10-01")
    lines = run(engine, [contract(head + "components: [{id: core, kind: block, annual: 1200}]")])
    assert amounts(lines) == [D("100.00")] * 6


def test_missing_price_names_currency_and_month(engine: Engine) -> None:
    terms = contract(HEAD + "components: [{id: acute, kind: activity, prices: tariff}]")
    rows = activity([{"currency": "HRG1"}, {"currency": "HRG9", "end_date": dt.date(2025, 11, 3)}])
    with pytest.raises(PricingError) as error:
        run(engine, [terms], rows, prices=price_list({"HRG1": "100"}))
    text = str(error.value)
    assert "HRG9 in 2025-11" in text and "tariff" in text and "contracts/test.yaml" in text


def test_dated_mff_changes_mid_year(engine: Engine) -> None:
    terms = contract(HEAD + """
components:
  - id: acute
    kind: activity
    prices: tariff
    mff: [{from: 2025-04-01, to: 2025-09-30, value: 1.0}, {from: 2025-10-01, value: 1.5}]
""")
    rows = activity([{"end_date": dt.date(2025, 9, 30)}, {"end_date": dt.date(2025, 10, 1)}])
    lines = run(engine, [terms], rows, prices=price_list({"HRG1": "100"}))
    assert amounts(lines) == [D("100.00"), D("150.00")]


def test_multiple_commissioners_share_fixed_and_pay_own_activity(engine: Engine) -> None:
    terms = contract("""
id: C1
commissioners: [{id: ICB-A, share: 0.7, coordinating: true}, {id: ICB-B, share: 0.3}]
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: core, kind: block, annual: 1000}
  - {id: acute, kind: activity, prices: tariff}
""")
    rows = activity([{"commissioner": "ICB-A"}, {"commissioner": "ICB-B"}, {"commissioner": "ICB-B"}, {"commissioner": "ICB-C"}])
    lines = run(engine, [terms], rows, prices=price_list({"HRG1": "100"}))
    assert sum(amounts(lines, component="core", payer="ICB-A")) == D("700.00")
    assert sum(amounts(lines, component="core", payer="ICB-B")) == D("300.00")
    assert amounts(lines, component="acute", payer="ICB-A") == [D("100.00")]
    assert amounts(lines, component="acute", payer="ICB-B") == [D("200.00")]
    assert not amounts(lines, payer="ICB-C")


def test_subcontract_is_paid_by_the_prime(engine: Engine) -> None:
    terms = contract("""
id: PRIME
commissioner: ICB
provider: PRIME-MSK
term: {start: 2025-04-01, end: 2026-03-31}
components: [{id: core, kind: block, annual: 1200}]
subcontracts:
  - id: PRIME-ORTHO
    provider: ACUTE
    components: [{id: ortho, kind: activity, prices: tariff}]
""")
    rows = activity([{"provider": "ACUTE"}, {"provider": "ELSEWHERE"}])
    lines = run(engine, [terms], rows, prices=price_list({"HRG1": "100"}))
    sub = [r for r in lines.to_pylist() if r["contract"] == "PRIME-ORTHO"]
    assert [(r["payer"], r["payee"], r["amount"]) for r in sub] == [("PRIME-MSK", "ACUTE", D("100.00"))]
