"""Dated terms: a contract variation with an effective date is a dated value. Each case is
worked by hand in its docstring."""

from __future__ import annotations

import pytest

from carecontracts.engine.backend import Engine
from carecontracts.problems import ProblemsError
from tests.helpers import D, activity, amounts, contract, month, outcomes, population, price_list, repeat, run

YEAR_MONTHS = [month(f"{y}-{m:02d}") for y, m in [(2025, m) for m in range(4, 13)] + [(2026, m) for m in range(1, 4)]]


def test_a_block_varied_from_october_pays_the_new_value_from_then(engine: Engine) -> None:
    """£120,000 a year until September, £180,000 from October: April to September pay
    £10,000 a month, October to March £15,000; the year £150,000."""
    terms = contract(
        """
        id: B
        commissioner: ICB
        provider: PROV
        term: {start: 2025-04-01, end: 2026-03-31}
        components:
          - id: core
            kind: block
            annual:
              - {from: 2025-04-01, to: 2025-09-30, value: 120000}
              - {from: 2025-10-01, value: 180000}
        """
    )
    lines = run(engine, [terms])
    paid = amounts(lines, component="core")
    assert paid == [D("10000.00")] * 6 + [D("15000.00")] * 6
    assert "£180,000.00 a year" in [r["basis"] for r in lines.to_pylist() if r["month"] == month("2025-10")][0]


def test_a_capitation_rate_varied_from_october(engine: Engine) -> None:
    """1,000 people at £10.00 a head a month until September, £12.50 from October:
    £10,000 then £12,500 a month."""
    terms = contract(
        """
        id: CAP
        commissioner: ICB
        provider: GP
        term: {start: 2025-04-01, end: 2026-03-31}
        components:
          - id: heads
            kind: capitation
            rates:
              all:
                - {from: 2025-04-01, to: 2025-09-30, value: 10}
                - {from: 2025-10-01, value: 12.5}
        """
    )
    people = population([("ICB", m, "all", 1000) for m in YEAR_MONTHS])
    lines = run(engine, [terms], population=people)
    assert amounts(lines, component="heads") == [D("10000.00")] * 6 + [D("12500.00")] * 6


def test_a_variable_rate_varied_from_october_changes_only_the_months_from_then(engine: Engine) -> None:
    """Plan £1.2m a year (£100,000 a month); 1,100 units a month at £100 delivered, £10,000
    a month over plan. At 50% until September each month pays £5,000. From October at
    100%: the year to date in October is (£770,000 − £700,000) × 100% = £70,000, and
    before October under October's rate (£660,000 − £600,000) × 100% = £60,000, so
    October pays £10,000, as does each month after. The year: 6 × £5,000 + 6 × £10,000
    = £90,000; the months before October are never restated."""
    terms = contract(
        """
        id: API
        commissioner: ICB
        provider: PROV
        term: {start: 2025-04-01, end: 2026-03-31}
        services: {elective: {pod: [EL]}}
        components:
          - id: api
            kind: aligned_payment
            services: [elective]
            fixed: 0
            prices: tariff
            planned_value: 1200000
            variable_percent:
              - {from: 2025-04-01, to: 2025-09-30, value: 50}
              - {from: 2025-10-01, value: 100}
        """
    )
    rows = [row for m in YEAR_MONTHS for row in repeat(1, end_date=m.replace(day=15), quantity=1100, prefix=f"m{m.month}_")]
    lines = run(engine, [terms], activity(rows), prices=price_list({"HRG1": "100"}))
    variable = amounts(lines, component="api.variable")
    assert variable == [D("5000.00")] * 6 + [D("10000.00")] * 6
    assert sum(variable) == D("90000")


def test_a_dated_term_with_a_gap_or_a_bad_value_is_located(engine: Engine) -> None:
    """A period no value covers is an error naming it; a dated value is checked as the
    single value would be (an annual value is never negative)."""
    with pytest.raises(ProblemsError) as raised:
        contract(
            """
            id: B
            commissioner: ICB
            provider: PROV
            term: {start: 2025-04-01, end: 2026-03-31}
            components:
              - id: core
                kind: block
                annual:
                  - {from: 2025-04-01, to: 2025-08-31, value: 120000}
                  - {from: 2025-10-01, value: -5}
            """
        )
    text = str(raised.value)
    assert "no value of 'annual' covers 2025-09-01 to 2025-09-30" in text
    assert "components[0].annual[1].value" in text and "-5" in text


# Shared savings, outcome pots and withholds ----------------------------------------------


def only_line(lines, component: str) -> dict:
    (line,) = [r for r in lines.to_pylist() if r["component"] == component]
    return line


def test_a_withhold_percent_varied_from_october_withholds_each_months_percent(engine: Engine) -> None:
    """A £1,200,000 block pays £100,000 a month. From July 2% is withheld, 2.75% from
    October: July to September −£2,000 each, October and November −£2,750 each. Remedied in
    December, within 6 months of July: 3 × £2,000 + 2 × £2,750 = £11,500.00 repaid then."""
    terms = contract(
        """
        id: W
        commissioner: ICB
        provider: PROV
        term: {start: 2025-04-01, end: 2026-03-31}
        components:
          - {id: core, kind: block, annual: 1_200_000}
          - id: sanction
            kind: withhold
            of: [core]
            percent:
              - {from: 2025-04-01, to: 2025-09-30, value: 2}
              - {from: 2025-10-01, value: 2.75}
            from: 2025-07-01
            remedied: 2025-12-01
        """
    )
    lines = run(engine, [terms])
    assert amounts(lines, component="sanction") == [D("-2000.00")] * 3 + [D("-2750.00")] * 2
    assert amounts(lines, component="sanction.settlement") == [D("11500.00")]
    withheld = {r["month"]: r["basis"] for r in lines.to_pylist() if r["component"] == "sanction"}
    assert withheld[month("2025-09")] == "withheld since 2025-07: 2% of core £100,000.00"
    assert withheld[month("2025-10")] == "withheld since 2025-07: 2.75% of core £100,000.00"
    settlement = only_line(lines, "sanction.settlement")
    assert (settlement["month"], settlement["basis"]) == (month("2025-12"), "remedied in 2025-12, within 6 months: repaid £11,500.00 withheld")


OUTCOME_POT = """
id: MSK
commissioner: ICB
provider: PRIME
term: {{start: 2025-04-01, end: 2026-03-31}}
components:
  - id: outcomes
    kind: outcome_incentive
    pot:
      amount:
        - {{from: 2025-04-01, to: {to}, value: 1_200_000}}
        - {{from: {since}, value: 1_500_000}}
    settle: {settle}
    metrics:
      - id: hips
        measure: {{instrument: oxford_hip, statistic: share_improved, min_change: 8}}
        schedule: {{floor: 0.70, target: 0.85}}
"""


def hips(improved: int, not_improved: int) -> list[tuple]:
    return [("PRIME", "oxford_hip", 20, 30)] * improved + [("PRIME", "oxford_hip", 20, 25)] * not_improved


def test_an_outcome_pot_varied_from_october_counts_each_months_amount(engine: Engine) -> None:
    """A pot of £1,200,000 a year until September and £1,500,000 from October, settled
    annually: £1,200,000 × 6/12 + £1,500,000 × 6/12 = £600,000 + £750,000 = £1,350,000.
    16 of 20 hips improved, 80%: (80 − 70) / (85 − 70) = 2/3 earned, × £1,350,000 =
    £900,000.00 in March. (£1.2m alone would pay £800,000, £1.5m £1,000,000.)"""
    terms = contract(OUTCOME_POT.format(to="2025-09-30", since="2025-10-01", settle="annual"))
    lines = run(engine, [terms], outcomes=outcomes(hips(16, 4)))
    line = only_line(lines, "outcomes.hips")
    assert (line["month"], line["amount"]) == (month("2026-03"), D("900000.00"))
    assert line["basis"].endswith(
        "× pot £1,350,000.00 (£1,200,000.00 a year × 6/12 + £1,500,000.00 a year × 6/12, 2025-04 to 2026-03)"
    )


def test_a_quarterly_pot_varied_in_the_quarter_counts_each_months_amount(engine: Engine) -> None:
    """The same pot varied from November, settled quarterly: April to September's quarters
    are £1,200,000 × 3/12 = £300,000 each; October to December is £1,200,000 / 12 +
    2 × £1,500,000 / 12 = £100,000 + £250,000 = £350,000; January to March £375,000. The
    only episodes are 20 hips in November, all improved (100%, the whole pot): £350,000.00
    in December; the other quarters measure nothing and earn nothing."""
    terms = contract(OUTCOME_POT.format(to="2025-10-31", since="2025-11-01", settle="quarterly"))
    lines = run(engine, [terms], outcomes=outcomes(hips(20, 0), day="2025-11-15"))
    assert amounts(lines, component="outcomes.hips") == [D("0.00"), D("0.00"), D("350000.00"), D("0.00")]
    december = [r for r in lines.to_pylist() if r["month"] == month("2025-12")][0]
    assert december["basis"].endswith(
        "× pot £350,000.00 (£1,200,000.00 a year × 1/12 + £1,500,000.00 a year × 2/12, 2025-10 to 2025-12)"
    )
    march = [r for r in lines.to_pylist() if r["month"] == month("2026-03")][0]
    assert march["basis"].endswith("× pot £375,000.00 (£1,500,000.00 a year × 3/12, 2026-01 to 2026-03)")


def monthly_cost(total: str) -> list[dict]:
    """One costed case a month (on the 10th) whose costs sum to `total` (March takes the rest)."""
    whole = D(total)
    each = (whole / 12).quantize(D("0.01"))
    return [
        {"activity_id": f"c{i}", "patient_id": f"cp{i}", "start_date": m.replace(day=10), "end_date": m.replace(day=10),
         "cost": each if i < 11 else whole - each * 11}
        for i, m in enumerate(YEAR_MONTHS)
    ]


def test_a_shared_savings_benchmark_varied_from_october_is_weighted_by_months(engine: Engine) -> None:
    """Benchmark £3,000,000 until September, £3,100,000 from October: each month counts a
    twelfth of the value in force in it, so the year's benchmark is
    (6 × £3,000,000 + 6 × £3,100,000) / 12 = £36,600,000 / 12 = £3,050,000.00.
    Spent £2,900,000: savings £150,000.00 = 4.918…% of benchmark (shown 4.92%), past the 2%
    minimum, × 40% sharing = £60,000.00, settled in March. (The first value alone would
    give £40,000.00, the second £80,000.00.)"""
    terms = contract(
        """
        id: SS
        commissioner: ICB
        provider: PROV
        term: {start: 2025-04-01, end: 2026-03-31}
        components:
          - id: savings
            kind: shared_savings
            benchmark:
              - {from: 2025-04-01, to: 2025-09-30, value: 3_000_000}
              - {from: 2025-10-01, value: 3_100_000}
            population: 20000
            minimum_savings_percent: 2
            sharing_percent: 40
        """
    )
    lines = run(engine, [terms], activity(monthly_cost("2900000")))
    line = only_line(lines, "savings")
    assert (line["month"], line["amount"]) == (month("2026-03"), D("60000.00"))
    assert line["basis"].startswith(
        "benchmark £3,050,000.00 (£3,000,000.00 for 6 months, £3,100,000.00 for 6 months) − expenditure £2,900,000.00"
        " = savings £150,000.00 (4.92% of benchmark); savings rate reaches the minimum savings rate 2%: £150,000.00 × sharing rate 40%"
        " = £60,000.00"
    )


def test_a_benchmark_per_head_varied_from_october_is_weighted_by_months(engine: Engine) -> None:
    """£1,200 a head until September, £1,260 from October: (6 × 1,200 + 6 × 1,260) / 12 =
    £1,230 a head; × 1,000 people = £1,230,000.00. Spent £1,100,000: savings £130,000.00
    (10.57%), × 50% = £65,000.00."""
    terms = contract(
        """
        id: SS
        commissioner: ICB
        provider: PROV
        term: {start: 2025-04-01, end: 2026-03-31}
        components:
          - id: savings
            kind: shared_savings
            benchmark_per_capita:
              - {from: 2025-04-01, to: 2025-09-30, value: 1200}
              - {from: 2025-10-01, value: 1260}
            population: 1000
            sharing_percent: 50
        """
    )
    line = only_line(run(engine, [terms], activity(monthly_cost("1100000"))), "savings")
    assert line["amount"] == D("65000.00")
    assert line["basis"].startswith(
        "benchmark £1,230.00 per head (£1,200.00 for 6 months, £1,260.00 for 6 months) × 1,000 people = £1,230,000.00"
        " − expenditure £1,100,000.00 = savings £130,000.00 (10.57% of benchmark); savings rate reaches the minimum savings rate 0%"
    )


@pytest.mark.parametrize(
    ("spent", "expected", "words"),
    [
        # Savings £87,500.00: 87,500 × 100 × 12 = 105,000,000 = 3,000,000 × 35, exactly the
        # minimum: shared from the first pound, 50% = £43,750.00.
        ("2912500", "43750.00", "savings rate reaches the minimum savings rate 2.92% (weighted by months: 2.5% for 7 months, "
                                "3.5% for 5 months): £87,500.00 × sharing rate 50% = £43,750.00"),
        # A penny less saved, £87,499.99, is short of it: nothing.
        ("2912500.01", "0.00", "savings rate below the minimum savings rate 2.92% (weighted by months: 2.5% for 7 months, "
                                   "3.5% for 5 months): nothing shared"),
    ],
)
def test_a_minimum_savings_percent_varied_from_november_is_the_mean_of_its_months(engine: Engine, spent: str, expected: str, words: str) -> None:
    """Minimum 2.5% for April to October (7 months), 3.5% from November (5 months): the
    month-weighted mean is (7 × 2.5 + 5 × 3.5) / 12 = 35 / 12 = 2.91666…%, shown 2.92%.
    On a £3,000,000 benchmark the savings that reach it are 2.91666…% × £3m = £87,500.00
    exactly; a minimum rounded to 2.92% would need £87,600, to 6 places (2.916667%)
    £87,500.01, so both would refuse the first case. (2.5% alone would pay both cases,
    3.5% neither.)"""
    terms = contract(
        """
        id: SS
        commissioner: ICB
        provider: PROV
        term: {start: 2025-04-01, end: 2026-03-31}
        components:
          - id: savings
            kind: shared_savings
            benchmark: 3_000_000
            population: 20000
            minimum_savings_percent:
              - {from: 2025-04-01, to: 2025-10-31, value: 2.5}
              - {from: 2025-11-01, value: 3.5}
            sharing_percent: 50
        """
    )
    line = only_line(run(engine, [terms], activity(monthly_cost(spent))), "savings")
    assert line["amount"] == D(expected)
    assert "(2.92% of benchmark); " + words in line["basis"]


def test_a_dated_benchmark_pot_or_withhold_with_a_gap_or_a_bad_value_is_located() -> None:
    """Each new dated term is checked as `mff` is: a period of the term no value covers is an
    error naming the term, the period, and the file and line of the term; a dated value is
    checked as the single value would be (a withhold is more than 0%, a pot is in pence)."""
    text = """
        id: GAPS
        commissioner: ICB
        provider: PROV
        term: {start: 2025-04-01, end: 2026-03-31}
        components:
          - {id: core, kind: block, annual: 1_200_000}
          - id: savings
            kind: shared_savings
            benchmark:
              - {from: 2025-04-01, to: 2025-09-30, value: 3_000_000}
              - {from: 2025-11-01, value: 3_100_000}
            sharing_percent: 50
            population: 1000
          - id: sanction
            kind: withhold
            of: [core]
            percent:
              - {from: 2025-05-01, value: 0}
            from: 2025-07-01
          - id: outcomes
            kind: outcome_incentive
            pot:
              amount:
                - {from: 2025-04-01, to: 2026-01-31, value: 1_000_000.001}
            metrics:
              - id: hips
                measure: {instrument: oxford_hip}
                schedule: {floor: 0.70, target: 0.85}
        """
    with pytest.raises(ProblemsError) as raised:
        contract(text)
    text = str(raised.value)
    # Line 1 is the blank line after the opening quotes: `benchmark:` is line 10,
    # `percent:` 18 and its entry 19, `amount:` 24 and its entry 25.
    assert "contracts/test.yaml:10 components[1].benchmark: no value of 'benchmark' covers 2025-10-01 to 2025-10-31" in text
    assert "contracts/test.yaml:18 components[2].percent: no value of 'percent' covers 2025-04-01 to 2025-04-30" in text
    assert "contracts/test.yaml:19 components[2].percent[0].value: 0: should be greater than 0" in text
    assert "contracts/test.yaml:24 components[3].pot.amount: no value of 'pot.amount' covers 2026-02-01 to 2026-03-31" in text
    assert "contracts/test.yaml:25 components[3].pot.amount[0].value: 1000000.001: " in text
    assert "decimal places" in text.split("components[3].pot.amount[0].value")[1].splitlines()[0]
