"""Shared savings terms worked by hand: the interpolated minimum savings rate at band edges
and within bands, the loss rate from quality within its bounds, the year's tallies behind a
yearly settlement, and a population asked for only where a term needs it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from carecontracts.engine.backend import Engine
from carecontracts.engine.explain import explain
from carecontracts.engine.mechanisms.shared_savings import interpolated_minimum, loss_factor
from carecontracts.language.model import InterpolatedSavingsBand, SharedSavingsTerms
from carecontracts.problems import ProblemsError
from tests.helpers import D, activity, contract, month, run

# The programme's one-sided table: (from, to, rate at from, rate at to); the last band open.
ONE_SIDED = [
    (5_000, 5_999, "3.9", "3.6"), (6_000, 6_999, "3.6", "3.4"), (7_000, 7_999, "3.4", "3.2"), (8_000, 8_999, "3.2", "3.1"),
    (9_000, 9_999, "3.1", "3.0"), (10_000, 14_999, "3.0", "2.7"), (15_000, 19_999, "2.7", "2.5"), (20_000, 49_999, "2.5", "2.2"),
    (50_000, 59_999, "2.2", "2.0"),
]
BANDS = [InterpolatedSavingsBand(from_population=a, to_population=b, low_end_percent=D(lo), high_end_percent=D(hi)) for a, b, lo, hi in ONE_SIDED]
BANDS.append(InterpolatedSavingsBand(from_population=60_000, low_end_percent=D("2.0")))


@pytest.mark.parametrize(
    ("population", "expected"),
    [
        (5_000, "3.9"),  # a band's low edge: its low-end rate
        (5_999, "3.6"),  # its high edge: its high-end rate
        (6_000, "3.6"),  # the next band's low edge
        # Mid-band: 3.9 − 500/999 × 0.3 = 3.9 − 0.1501501… = 3.7498498498…, to 7 places 3.7498498.
        (5_500, "3.7498498"),
        # 3.1 − 139/999 × 0.1 = 3.1 − 0.0139139… = 3.0860860860…, half-up to 7 places 3.0860861.
        (9_139, "3.0860861"),
        # 3.0 − 2,500/4,999 × 0.3 = 3.0 − 0.1500300060… = 2.8499699939…, to 7 places 2.8499700.
        (12_500, "2.8499700"),
        (59_999, "2.0"),  # the 50,000–59,999 band's high edge
        (60_000, "2.0"),  # the open last band: flat
        (250_000, "2.0"),
        (4_000, "3.9"),  # below the table: its first rate
    ],
)
def test_interpolated_minimum_savings_rate(population: int, expected: str) -> None:
    percent, _ = interpolated_minimum(BANDS, Decimal(population))
    assert percent == Decimal(expected)


def two_sided(quality: str, floor: str | None = "40", ceiling: str | None = "75") -> SharedSavingsTerms:
    """Terms with a loss rate of 1 − 75% × quality, within the bounds given."""
    bounds = (f", loss_rate_floor_percent: {floor}" if floor else "") + (f", loss_rate_ceiling_percent: {ceiling}" if ceiling else "")
    text = f"""
id: C1
commissioner: ICB
provider: PROV
term: {{start: 2025-04-01, end: 2026-03-31}}
components:
  - {{id: mssp, kind: shared_savings, benchmark: 1_000_000, sharing_percent: 75, quality_score: {quality},
     losses: {{loss_rate_quality_percent: 75{bounds}}}}}
"""
    component = contract(text).components[0]
    assert isinstance(component, SharedSavingsTerms)
    return component


@pytest.mark.parametrize(
    ("quality", "floor", "ceiling", "expected"),
    [
        ("92", "40", "75", "0.40"),  # 1 − 0.75 × 0.92 = 0.31, raised to the floor
        ("20", "40", "75", "0.75"),  # 1 − 0.75 × 0.20 = 0.85, lowered to the ceiling
        ("60", "40", "75", "0.55"),  # 1 − 0.45 = 0.55, within
        ("92", None, None, "0.31"),  # unbounded
        ("100", None, None, "0.25"),
    ],
)
def test_loss_rate_from_quality_within_its_bounds(quality: str, floor: str | None, ceiling: str | None, expected: str) -> None:
    assert loss_factor(two_sided(quality, floor, ceiling)) == Decimal(expected)


HEAD = """
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
"""


def yearly_cost(total: str) -> list[dict]:
    """One costed case a month, the last month taking the rest of `total`."""
    whole = Decimal(total)
    each = (whole / 12).quantize(Decimal("0.01"))
    rows = []
    for index in range(12):
        day = dt.date(2025 + (index + 3) // 12, (index + 3) % 12 + 1, 10)
        rows.append({"activity_id": f"c{index}", "patient_id": f"p{index}", "start_date": day, "end_date": day,
                     "cost": each if index < 11 else whole - each * 11})
    return rows


def test_a_per_head_benchmark_without_a_population_is_refused_naming_it(engine: Engine) -> None:
    """A per-head benchmark with no population given or loaded: refused, naming the term."""
    text = HEAD + "components: [{id: mssp, kind: shared_savings, benchmark_per_capita: 1200, sharing_percent: 50}]\n"
    with pytest.raises(ProblemsError) as raised:
        run(engine, [contract(text)], activity(yearly_cost("1100000")))
    assert "components[0].population" in str(raised.value)
    assert "a per-head term or a minimum by population needs the assigned population" in str(raised.value)


def test_a_whole_benchmark_needs_no_population(engine: Engine) -> None:
    """£1.2m benchmark, £1.1m spent: £100,000 saved (8.33%) × 50% = £50,000, no population asked for."""
    text = HEAD + "components: [{id: mssp, kind: shared_savings, benchmark: 1_200_000, sharing_percent: 50}]\n"
    (line,) = run(engine, [contract(text)], activity(yearly_cost("1100000"))).to_pylist()
    assert line["amount"] == D("50000.00")


def tallies_of_a_year(contract_id: str, component: str) -> pa.Table:
    """Twelve months' tallies of one component: a case a month, costing £1,000 × the month's number (April = 1)."""
    months = [dt.date(2025 + (i + 3) // 12, (i + 3) % 12 + 1, 1) for i in range(12)]
    return pa.table({
        "scenario": ["actual"] * 12, "contract": [contract_id] * 12, "component": [component] * 12, "payer": ["ICB"] * 12,
        "service": ["general"] * 12, "currency": ["HRG1"] * 12, "month": pa.array(months, pa.date32()),
        "events": pa.array([1] * 12, pa.int64()),
        "quantity": pa.array([Decimal(1)] * 12, pa.decimal128(20, 8)), "readmitted": pa.array([Decimal(0)] * 12, pa.decimal128(20, 8)),
        "chargeable": pa.array([Decimal(1)] * 12, pa.decimal128(20, 8)),
        "cost": pa.array([Decimal(1000 * (i + 1)) for i in range(12)], pa.decimal128(18, 2)),
    })


def test_explain_shows_the_years_tallies_behind_a_yearly_settlement() -> None:
    """A shared savings line in March prices the whole year's expenditure: explain sums the
    year's tallies to March (12 cases, £1,000 × (1 + 2 + … + 12) = £78,000), not March's
    alone (1 case, £12,000); a block's line in March shows March's."""
    text = HEAD + """
components:
  - {id: core, kind: block, annual: 120_000}
  - {id: mssp, kind: shared_savings, benchmark: 100_000, sharing_percent: 50}
"""
    terms = contract(text)
    lines = pa.table({"contract": ["C1"], "component": ["mssp"], "month": pa.array([month("2026-03")], pa.date32()), "amount": [D("11000.00")]})
    tallies = pa.concat_tables([tallies_of_a_year("C1", "mssp"), tallies_of_a_year("C1", "core")])
    result = explain([terms], lines, tallies, "C1", "mssp", month("2026-03"), month("2025-04"))
    (row,) = result.tallies
    assert (row["events"], row["cost"], row["chargeable"]) == (12, D("78000.00"), D(12))
    assert result.tally_months == (month("2025-04"), month("2026-03"))
    # Explained in December, the year to December: 9 cases, £1,000 × (1 + … + 9) = £45,000.
    (row,) = explain([terms], lines, tallies, "C1", "mssp", month("2025-12"), month("2025-04")).tallies
    assert (row["events"], row["cost"]) == (9, D("45000.00"))
    block = explain([terms], lines, tallies, "C1", "core", month("2026-03"), month("2025-04"))
    (row,) = block.tallies
    assert (row["events"], row["cost"], block.tally_months) == (1, D("12000.00"), None)


def test_a_dated_participant_revenue_is_weighted_by_months_and_circumstances_apply_to_their_years(engine: Engine) -> None:
    """Benchmark £1.2m, spent £1.32m: a £120,000 loss (10%), shared at 50%: £60,000. Revenue
    £400,000 to September and £800,000 from October is £600,000 for the year
    ((6 × 400,000 + 6 × 800,000) / 12); 5% of it, £30,000, caps the loss: owes £30,000.
    Circumstances given for 2024-25 only do not touch 2025-26."""
    text = HEAD + """
components:
  - id: mssp
    kind: shared_savings
    benchmark: 1_200_000
    sharing_percent: 50
    losses:
      loss_rate_percent: 50
      revenue_cap_percent: 5
      participant_revenue:
        - {from: 2025-04-01, to: 2025-09-30, value: 400_000}
        - {from: 2025-10-01, value: 800_000}
      extreme_circumstances: [{from: 2024-04-01, to: 2025-03-31, waived: true}]
"""
    (line,) = run(engine, [contract(text)], activity(yearly_cost("1320000"))).to_pylist()
    assert line["amount"] == D("-30000.00")
    assert line["basis"].endswith(
        "£120,000.00 × loss rate 50% = £60,000.00, capped at 5% of participant revenue £600,000.00 (£400,000.00 for 6 months, "
        "£800,000.00 for 6 months): £30,000.00 (£60,000.00 before the cap)"
    )


def test_a_dated_population_with_a_gap_is_refused_at_check() -> None:
    """A population dated by performance year that leaves a year uncovered is located, as any dated term is."""
    text = HEAD.replace("end: 2026-03-31", "end: 2027-03-31") + """
components:
  - id: mssp
    kind: shared_savings
    benchmark_per_capita: 1_200
    population: [{from: 2025-04-01, to: 2026-03-31, value: 20_000}]
    sharing_percent: 50
"""
    with pytest.raises(ProblemsError) as raised:
        contract(text)
    assert "no value of 'population' covers 2026-04-01 to 2027-03-31" in str(raised.value)
