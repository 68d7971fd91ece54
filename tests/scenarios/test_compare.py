"""Contract forms compared by hand: the same elective year priced as block, cost per case,
cost and volume, aligned payment, capitation and outcome-based contracts, each calibrated
to the year's value, in the actual, ±1%, ±10% and forecast scenarios. The comparison runs
on DuckDB and (marked) Spark."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from carecontracts.engine.backend import Engine
from carecontracts.engine.run import RunTables
from carecontracts.problems import ProblemsError
from carecontracts.scenarios.compare import FORMS, Comparison, compare_forms
from carecontracts.scenarios.whatif import ActivityFilter
from tests.helpers import YEAR, D, activity, outcomes, population, price_list, repeat

ELECTIVE = ActivityFilter(service=["elective"])


def year_of(per_month: int, **row) -> list[dict]:
    """`per_month` cases in every month of 2025-26."""
    rows = []
    for index, month in enumerate(YEAR.months):
        day = dt.date(month.year, month.month, 10)
        rows += repeat(per_month, end_date=day, start_date=day, prefix=f"{row.get('service', 'x')}{row.get('provider', '')}{index}-", **row)
    return rows


def tables(engine: Engine, rows: list[dict], with_outcomes: bool = True) -> RunTables:
    """10 elective cases a month at £1,000 (HRG1) and 5 other cases at £300 (HRG2) that no
    comparison of elective work may count; 1,000 people in the ICB every month; ten hip
    episodes of PROV, eight improving by ≥ 8 points (20 → 30) and two not (20 → 22)."""
    prices = price_list({"HRG1": "1000", "HRG2": "300"})
    people = population([("ICB", m, "all", 1000) for m in YEAR.months])
    hips = outcomes([("PROV", "oxford_hip", 20, 30)] * 8 + [("PROV", "oxford_hip", 20, 22)] * 2)
    return RunTables(engine.put(activity(rows)), engine.put(prices), None, engine.put(people), engine.put(hips) if with_outcomes else None)


def elective_year() -> list[dict]:
    return year_of(10, service="elective") + year_of(5, service="other", currency="HRG2")


def test_every_form_on_one_year(engine: Engine) -> None:
    # The year: 120 elective cases × £1,000 = V = £120,000 (the other service's £18,000 is
    # not selected). Each form is calibrated to cost V on it:
    #   block £120,000; cost and volume baseline 120 at £120,000 / 120 = £1,000, band
    #   114–126; aligned payment fixed £120,000, plan £120,000; capitation £120,000 /
    #   (1,000 people × 12 months) = £10.000000 a head a month; outcome-based block
    #   95% = £114,000 and a pot of £6,000, achievement 8/10 = 0.8 = target (floor 0.7).
    run = tables(engine, elective_year())
    result = compare_forms(engine, [], YEAR, run, ELECTIVE, list(FORMS))
    assert [(p.provider, p.commissioner, p.volume, p.value) for p in result.pairs] == [("PROV", "ICB", D(120), D("120000.00"))]
    assert result.unavailable == {}
    by = {r.form: r for r in result.results}

    # Equal by construction on the actual year.
    assert {form: r.costs["actual"] for form, r in by.items()} == {form: D("120000.00") for form in FORMS}

    # Block: the same £120,000 in every scenario; control exactly 0, £10,000 every month.
    assert set(by["block"].costs.values()) == {D("120000.00")}
    assert by["block"].control == 0 and by["block"].monthly_variation == 0

    # Cost per case: +1% = 121.2 cases × £1,000 = £121,200, −1% = £118,800: £1,200 per 1%
    # of activity, 1,200 / 120,000 × 100 = exactly 1.0% per 1%. ±10%: £132,000 / £108,000.
    activity_form = by["activity"]
    assert (activity_form.costs["activity+1%"], activity_form.costs["activity-1%"]) == (D("121200.00"), D("118800.00"))
    assert activity_form.control_per_percent == D("1200.00") and activity_form.control == 1
    assert (activity_form.low, activity_form.high) == (D("108000.00"), D("132000.00"))

    # Cost and volume inside its band: 121.2 and 118.8 cases lie within 114–126, paid at the
    # full £1,000, so control is 1.0 too. Outside it: +10% = 132 cases → 126 × £1,000 + 6 ×
    # £500 = £129,000; −10% = 108 cases → 108 × £1,000 + 6 short × £500 = £111,000.
    volume = by["cost_and_volume"]
    assert volume.control == 1
    assert (volume.costs["activity+10%"], volume.costs["activity-10%"]) == (D("129000.00"), D("111000.00"))

    # Aligned payment: 75% of the value above or below plan; the value is all of the cost
    # (value share 1), so control = 0.75 × 1: +1% → £120,000 + 0.75 × £1,200 = £120,900.
    # ±10%: £120,000 ± 0.75 × £12,000 = £129,000 / £111,000.
    aligned = by["aligned_payment"]
    assert (aligned.costs["activity+1%"], aligned.costs["activity-1%"]) == (D("120900.00"), D("119100.00"))
    assert aligned.control == D("0.75")
    assert (aligned.low, aligned.high) == (D("111000.00"), D("129000.00"))

    # Capitation follows the population: 1,000 × £10.00 each month whatever the activity.
    assert by["capitation"].control == 0 and set(by["capitation"].costs.values()) == {D("120000.00")}

    # Outcome-based: £9,500 a month, and the £6,000 pot earned in full in March (0.8 ≥ target
    # 0.8). Monthly: 11 × £9,500 and £15,500; mean £10,000; variance (11 × 500² + 5,500²) / 12
    # = 2,750,000; sd £1,658.31; CV 0.165831.
    outcome = by["outcome_based"]
    assert (outcome.at_stake, outcome.earned, outcome.control) == (D("6000.00"), D("6000.00"), 0)
    assert outcome.monthly[-1] == D("15500.00") and set(outcome.monthly[:-1]) == {D("9500.00")}
    assert outcome.monthly_variation.quantize(D("0.000001")) == D("0.165831")

    assert "cost per case gives the commissioner most control" in result.conclusion()
    assert "block gives the provider the steadiest income" in result.conclusion()


def test_a_forecast_is_the_expected_cost(duck: Engine) -> None:
    # As of November at the run rate of a flat year, the forecast is the year again:
    # £120,000 under both forms; no seasonal method without last year's activity.
    result = compare_forms(duck, [], YEAR, tables(duck, elective_year()), ELECTIVE, ["block", "activity"], as_of=dt.date(2025, 11, 1))
    assert "forecast:run_rate" in result.scenarios and "forecast:seasonal" not in result.scenarios
    assert {r.form: r.expected for r in result.results} == {"block": D("120000.00"), "activity": D("120000.00")}
    assert any("seasonal" in note for note in result.notes)
    # Half the cases from December: the run rate still projects 10 a month, but cost per
    # case pays what happened to November (8 × 10 × £1,000) plus 4 × 10 projected = £120,000,
    # while the actual year pays 80 + 4 × 5 = 100 cases = £100,000.
    rows = [r for r in elective_year() if r["end_date"] < dt.date(2025, 12, 1) or r["service"] != "elective" or int(r["activity_id"].rsplit("-", 1)[1]) < 5]
    halved = compare_forms(duck, [], YEAR, tables(duck, rows), ELECTIVE, ["activity"], as_of=dt.date(2025, 11, 1))
    activity_form = halved.result("activity")
    assert (activity_form.costs["actual"], activity_form.expected) == (D("100000.00"), D("120000.00"))


def test_each_provider_and_commissioner_is_a_pair(duck: Engine) -> None:
    # PROV: 10 cases a month at £1,000; OTHER: 2 a month at £1,000. Filtered to OTHER only,
    # the block is 24 × £1,000 = £24,000; unfiltered, two pairs and £144,000 in all.
    rows = elective_year() + year_of(2, service="elective", provider="OTHER")
    run = tables(duck, rows)
    both = compare_forms(duck, [], YEAR, run, ELECTIVE, ["block", "activity"])
    assert [(p.provider, p.value) for p in both.pairs] == [("OTHER", D("24000.00")), ("PROV", D("120000.00"))]
    assert both.result("block").costs["actual"] == D("144000.00")
    other = compare_forms(duck, [], YEAR, run, ActivityFilter(service=["elective"], provider=["OTHER"]), ["block"])
    assert other.result("block").costs["actual"] == D("24000.00")


def test_outcome_based_is_not_offered_without_outcomes(duck: Engine) -> None:
    result = compare_forms(duck, [], YEAR, tables(duck, elective_year(), with_outcomes=False), ELECTIVE, ["block", "outcome_based"])
    assert result.unavailable == {"outcome_based": "PROV has no outcome records in the year"}
    assert [r.form for r in result.results] == ["block"]


@pytest.mark.parametrize(
    ("where", "forms", "message"),
    [
        (ELECTIVE, ["block", "tariff"], "unknown form tariff"),
        (ActivityFilter(service=["orthopaedics"]), ["block"], "service orthopaedics matches no activity in 2025-26"),
        (ActivityFilter.model_validate({"service": ["elective"], "from": "2025-12-01"}), ["block"], "prices the whole year"),
    ],
)
def test_bad_input_is_a_problem(duck: Engine, where: ActivityFilter, forms: list[str], message: str) -> None:
    with pytest.raises(ProblemsError) as error:
        compare_forms(duck, [], YEAR, tables(duck, elective_year()), where, forms)
    assert message in error.value.problems[0].message


def test_several_price_lists_need_choosing(duck: Engine) -> None:
    run = tables(duck, elective_year())
    two = pa.concat_tables([price_list({"HRG1": "1000"}), price_list({"HRG1": "1200"}, "dearer")])
    run = RunTables(run.activity, duck.put(two), None, run.population, run.outcomes)
    with pytest.raises(ProblemsError) as error:
        compare_forms(duck, [], YEAR, run, ELECTIVE, ["block"])
    assert "2 price lists" in error.value.problems[0].message
    # At the dearer list: 120 × £1,200 = £144,000.
    dearer: Comparison = compare_forms(duck, [], YEAR, run, ELECTIVE, ["block"], prices="dearer")
    assert dearer.result("block").costs["actual"] == D("144000.00")
