"""Outcome incentives: the DESIGN.md MSK example worked by hand, schedule edges, quarterly
settlement, case-mix adjustment and unpaired episodes. DuckDB and (marked) Spark."""

from __future__ import annotations

from decimal import Decimal

import pytest

from carecontracts.engine.backend import Engine
from carecontracts.engine.mechanisms.outcome_incentive import payable_fraction
from carecontracts.language.model import Schedule, Step
from carecontracts.problems import ProblemsError
from tests.helpers import D, amounts, contract, month, outcomes, run

MSK = """
id: MSK-2025
commissioner: ICB-BLMK
provider: PRIME-MSK
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: core, kind: block, annual: 24_000_000}
  - id: outcomes
    kind: outcome_incentive
    pot: {percent_of: core, percent: 5}
    settle: annual
    metrics:
      - id: hip-function
        measure: {instrument: oxford_hip, statistic: share_improved, min_change: 8}
        schedule: {floor: 0.70, target: 0.85}
        weight: 0.6
      - id: independence
        measure: {instrument: barthel, statistic: share_improved, min_change: 2}
        schedule: {floor: 0.50, target: 0.70}
        weight: 0.4
"""


def hips(improved: int, not_improved: int, provider: str = "PRIME-MSK") -> list[tuple]:
    return [(provider, "oxford_hip", 20, 30)] * improved + [(provider, "oxford_hip", 20, 25)] * not_improved


def barthels(improved: int, not_improved: int, provider: str = "PRIME-MSK") -> list[tuple]:
    return [(provider, "barthel", 10, 13)] * improved + [(provider, "barthel", 10, 11)] * not_improved


def test_msk_example_pays_by_achievement(engine: Engine) -> None:
    # Pot: 5% of the £24m core block = £1.2m, settled in March.
    # Hips: 16 of 20 improved by ≥ 8 = 80%: (80 − 70) / (85 − 70) = 2/3 of weight 0.6 =
    #   0.4 of the pot = £480,000.
    # Barthel: 6 of 10 improved by ≥ 2 = 60%: (60 − 50) / (70 − 50) = 1/2 of weight 0.4 =
    #   0.2 of the pot = £240,000.
    scores = outcomes(hips(16, 4) + barthels(6, 4))
    lines = run(engine, [contract(MSK)], outcomes=scores)
    assert amounts(lines, component="outcomes.hip-function") == [D("480000.00")]
    assert amounts(lines, component="outcomes.independence") == [D("240000.00")]
    hip = [r for r in lines.to_pylist() if r["component"] == "outcomes.hip-function"][0]
    assert hip["month"] == month("2026-03")
    assert hip["basis"].startswith("hip-function (weight 0.6): 80.0% improved by ≥ 8 points (95% CI ")
    assert "16 of 20 episodes; 0 unpaired) → 66.7% earned (linear: nothing at 70.0%, all at 85.0%)" in hip["basis"]
    assert "× pot £1,200,000.00 (5% of core £24,000,000.00)" in hip["basis"]


@pytest.mark.parametrize(
    ("improved", "expected"),
    [
        (14, "0.00"),  # 70%: exactly at the floor earns nothing
        (17, "720000.00"),  # 85%: exactly at target earns the whole weight, 0.6 × £1.2m
        (20, "720000.00"),  # 100%: above target earns no more
        (13, "0.00"),  # 65%: below the floor
    ],
)
def test_schedule_edges(engine: Engine, improved: int, expected: str) -> None:
    scores = outcomes(hips(improved, 20 - improved) + barthels(6, 4))
    lines = run(engine, [contract(MSK)], outcomes=scores)
    assert amounts(lines, component="outcomes.hip-function") == [D(expected)]


def test_unpaired_episodes_are_counted_and_only_other_providers_ignored(engine: Engine) -> None:
    # 8 of 10 paired hips improved (80% → £480,000 as above); 3 post scores with no pre score
    # are reported as unpaired, not dropped silently; another provider's hips do not count.
    episodes = hips(8, 2) + [("PRIME-MSK", "oxford_hip", None, 40)] * 3 + hips(0, 10, provider="ELSEWHERE") + barthels(6, 4)
    lines = run(engine, [contract(MSK)], outcomes=outcomes(episodes))
    (hip,) = [r for r in lines.to_pylist() if r["component"] == "outcomes.hip-function"]
    assert hip["amount"] == D("480000.00")
    assert "8 of 10 episodes; 3 unpaired" in hip["basis"]


def test_no_episodes_earns_nothing_and_says_so(engine: Engine) -> None:
    lines = run(engine, [contract(MSK)], outcomes=outcomes(barthels(6, 4)))
    (hip,) = [r for r in lines.to_pylist() if r["component"] == "outcomes.hip-function"]
    assert hip["amount"] == D("0.00") and "no paired episodes" in hip["basis"]


def test_quarterly_settlement_with_a_fixed_pot(engine: Engine) -> None:
    # £400,000 a year, quarterly: £100,000 a quarter, paid in June, September, December and
    # March. Episodes ending in June only: Q1 all improved (threshold 90% met) → £100,000;
    # the other quarters have no episodes → £0.
    text = MSK.replace("pot: {percent_of: core, percent: 5}", "pot: {amount: 400_000}").replace("settle: annual", "settle: quarterly")
    text = text[: text.index("      - id: independence")].replace("weight: 0.6", "weight: 1").replace(
        "schedule: {floor: 0.70, target: 0.85}", "schedule: {type: threshold, target: 0.9}"
    )
    lines = run(engine, [contract(text)], outcomes=outcomes(hips(10, 0), day="2025-05-20"))
    rows = [(r["month"], r["amount"]) for r in lines.to_pylist() if r["component"] == "outcomes.hip-function"]
    assert rows == [(month("2025-06"), D("100000.00")), (month("2025-09"), D("0.00")), (month("2025-12"), D("0.00")), (month("2026-03"), D("0.00"))]


def test_casemix_adjusted_mean_against_a_target(engine: Engine) -> None:
    # Provider A: post 40 and 44 (mean 42), predicted 38 and 40 (mean 39).
    # Provider B (not in the contract): post 30, predicted 36.
    # Reference mean predicted over everyone: (38 + 40 + 36) / 3 = 38.
    # Adjusted = 42 − 39 + 38 = 41; linear 39 → 43 gives (41 − 39) / 4 = 1/2 of £10,000.
    text = """
id: C1
commissioner: ICB
provider: A
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: hips
    kind: outcome_incentive
    pot: {amount: 10000}
    metrics:
      - id: adjusted
        measure: {instrument: oxford_hip, statistic: casemix_adjusted_mean}
        schedule: {floor: 39, target: 43}
"""
    scores = outcomes([("A", "oxford_hip", 20, 40), ("A", "oxford_hip", 22, 44), ("B", "oxford_hip", 15, 30)], predicted={"e0": 38, "e1": 40, "e2": 36})
    lines = run(engine, [contract(text)], outcomes=scores)
    assert amounts(lines) == [D("5000.00")]
    assert "41.00" in lines.to_pylist()[0]["basis"]


def test_outcome_incentive_needs_outcomes(engine: Engine) -> None:
    with pytest.raises(ProblemsError) as error:
        run(engine, [contract(MSK)])
    assert "no outcomes are loaded" in error.value.problems[0].message


def test_payable_fraction_by_schedule() -> None:
    linear = Schedule(floor=D("0.70"), target=D("0.85"))
    assert payable_fraction(linear, D("0.775")) == D("0.5")
    falling = Schedule(floor=D(30), target=D(20))  # lower is better: a rate per 1,000
    assert payable_fraction(falling, D(25)) == D("0.5") and payable_fraction(falling, D(18)) == 1 and payable_fraction(falling, D(31)) == 0
    stepped = Schedule(type="stepped", steps=[Step(at=D("0.6"), pay=D("0.25")), Step(at=D("0.8"), pay=D(1))])
    assert [payable_fraction(stepped, D(a)) for a in ("0.59", "0.6", "0.79", "0.8")] == [0, D("0.25"), D("0.25"), 1]


def test_rate_per_thousand_of_emergency_admissions_over_65(engine: Engine) -> None:
    # 2,000 people over 65 every month = 2,000 person-years; 50 emergency admissions of
    # people 65 or over (the 10 under 65, the 10 elective and the other ICB's 10 do not
    # count) = 25 per 1,000 a year. Lower is better: nothing at 30, all at 20 → half of £10,000.
    from tests.helpers import activity, population, repeat
    import datetime as dt

    text = """
id: C1
commissioner: ICB
provider: ALLIANCE
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: admissions
    kind: outcome_incentive
    pot: {amount: 10000}
    metrics:
      - id: fewer-admissions
        measure: {statistic: rate_per_thousand, events: {pod: [NEL], age_from: 65}, population_bands: [65+]}
        schedule: {floor: 30, target: 20}
"""
    day = dt.date(2025, 7, 1)
    rows = (
        repeat(50, pod="NEL", age=80, end_date=day, prefix="a") + repeat(10, pod="NEL", age=40, end_date=day, prefix="b")
        + repeat(10, pod="EL", age=80, end_date=day, prefix="c") + repeat(10, pod="NEL", age=80, end_date=day, commissioner="OTHER", prefix="d")
    )
    people = population([("ICB", month(f"{2025 + (i + 3) // 12}-{(i + 3) % 12 + 1:02d}"), band, persons) for i in range(12) for band, persons in (("65+", 2000), ("under-65", 9000))])
    lines = run(engine, [contract(text)], activity(rows), population=people)
    (line,) = lines.to_pylist()
    assert line["amount"] == D("5000.00")
    assert line["basis"].startswith("fewer-admissions (weight 1): 25.0 per 1,000 population (95% CI ")
