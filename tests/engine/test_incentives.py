"""Worked examples from DESIGN.md for incentives, sanctions and shared risk, plus
hand-worked cases at their edges. Each runs on DuckDB and (marked `spark`) on Spark."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from carecontracts.engine.backend import Engine
from carecontracts.engine.mechanisms.risk_share import split_variance
from carecontracts.language.model import Band
from carecontracts.problems import ProblemsError
from tests.helpers import D, activity, amounts, contract, month, population, repeat, run

HEAD = """
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
"""


def monthly_cost(total: str, **row) -> list[dict]:
    """One costed case a month whose costs sum to `total` (the last month takes the rest)."""
    whole = Decimal(total)
    each = (whole / 12).quantize(Decimal("0.01"))
    rows = []
    for index in range(12):
        day = dt.date(2025 + (index + 3) // 12, (index + 3) % 12 + 1, 10)
        cost = each if index < 11 else whole - each * 11
        rows.append(dict(row, activity_id=f"c{index}", patient_id=f"cp{index}", end_date=day, start_date=day, cost=cost))
    return rows


def lines_of(lines, component: str) -> list[dict]:
    return [r for r in lines.to_pylist() if r["component"] == component]


def total_of(lines, component: str) -> Decimal:
    return sum((r["amount"] for r in lines_of(lines, component)), Decimal(0))


# quality_incentive ---------------------------------------------------------------


def cquin(met: list[bool | None]) -> str:
    indicators = ", ".join(f"{{id: q{i}" + ("" if m is None else f", met: {str(m).lower()}") + "}" for i, m in enumerate(met))
    return HEAD + f"""
components:
  - {{id: fixed, kind: block, annual: 300_000_000}}
  - {{id: cquin, kind: quality_incentive, percent_of: fixed, percent: 1.25, indicators: [{indicators}]}}
"""


def test_quality_incentive_design_example(engine: Engine) -> None:
    # £300m fixed × 1.25% = £3.75m paid in advance (12 × £312,500); 5 indicators, 3 met:
    # 2/5 × £3.75m = £1.5m clawed back in March.
    lines = run(engine, [contract(cquin([True, True, True, False, False]))])
    assert amounts(lines, component="cquin") == [D("312500.00")] * 12
    (clawback,) = lines_of(lines, "cquin.clawback")
    assert clawback["amount"] == D("-1500000.00")
    assert clawback["month"] == month("2026-03")
    assert "3 of 5 indicators met; not met: q3, q4" in clawback["basis"]
    assert total_of(lines, "cquin") + clawback["amount"] == D("2250000.00")


def test_quality_incentive_all_met_claws_back_nothing_and_unassessed_has_no_clawback(engine: Engine) -> None:
    lines = run(engine, [contract(cquin([True] * 5))])
    assert amounts(lines, component="cquin.clawback") == [D("0.00")]
    lines = run(engine, [contract(cquin([True, None, True, False, True]))])
    assert lines_of(lines, "cquin.clawback") == []
    assert total_of(lines, "cquin") == D("3750000.00")


def test_quality_incentive_weights_split_the_clawback(engine: Engine) -> None:
    text = HEAD + """
components:
  - {id: fixed, kind: block, annual: 1_200_000}
  - id: cquin
    kind: quality_incentive
    percent_of: fixed
    percent: 2.5
    indicators: [{id: a, weight: 3, met: true}, {id: b, weight: 1, met: false}]
"""
    # £1.2m × 2.5% = £30,000 paid (12 × £2,500); b carries 1/4 of the weight → £7,500 back.
    lines = run(engine, [contract(text)])
    assert amounts(lines, component="cquin") == [D("2500.00")] * 12
    assert amounts(lines, component="cquin.clawback") == [D("-7500.00")]


# best_practice_topup -------------------------------------------------------------


def test_best_practice_topup_design_example(engine: Engine) -> None:
    # Hip fracture: £1,335 per compliant case; 240 compliant (of 300) → £320,400.
    text = HEAD + "components: [{id: bpt, kind: best_practice_topup, amount: 1335}]"
    rows = repeat(240, compliant=1, prefix="y") + repeat(60, compliant=0, prefix="n")
    (line,) = run(engine, [contract(text)], activity(rows)).to_pylist()
    assert line["amount"] == D("320400.00")
    assert line["quantity"] == D(240)
    assert line["basis"] == "240 of 300 cases met every criterion × £1,335.00"


# withhold ------------------------------------------------------------------------


def withhold(remedied: str | None, retain: int = 6) -> str:
    tail = f", remedied: {remedied}" if remedied else ""
    return HEAD + f"""
components:
  - {{id: core, kind: block, annual: 1_200_000}}
  - {{id: sanction, kind: withhold, of: [core], percent: 2, from: 2025-07-01, retain_after_months: {retain}{tail}}}
"""


def test_withhold_two_percent_until_remedied_then_repaid(engine: Engine) -> None:
    # 2% of £100,000 a month = £2,000 withheld in July, August and September; remedied in
    # October, within 6 months: £6,000 repaid in October.
    lines = run(engine, [contract(withhold("2025-10-01"))])
    held = lines_of(lines, "sanction")
    assert [(r["month"], r["amount"]) for r in held] == [(month(m), D("-2000.00")) for m in ("2025-07", "2025-08", "2025-09")]
    (settlement,) = lines_of(lines, "sanction.settlement")
    assert (settlement["month"], settlement["amount"]) == (month("2025-10"), D("6000.00"))
    assert total_of(lines, "sanction") + settlement["amount"] == 0


def test_withhold_retained_when_not_remedied_in_time(engine: Engine) -> None:
    # Not remedied: withheld July to March (9 × £2,000); the 3-month deadline is October,
    # when the line says the money is retained.
    lines = run(engine, [contract(withhold(None, retain=3))])
    assert total_of(lines, "sanction") == D("-18000.00")
    (settlement,) = lines_of(lines, "sanction.settlement")
    assert (settlement["month"], settlement["amount"]) == (month("2025-10"), D("0.00"))
    assert "retained" in settlement["basis"]
    # Remedied exactly at the deadline is too late: retained.
    lines = run(engine, [contract(withhold("2025-10-01", retain=3))])
    assert total_of(lines, "sanction") == D("-6000.00")
    assert amounts(lines, component="sanction.settlement") == [D("0.00")]


# risk_share / gain_share ---------------------------------------------------------


RISK = """
components:
  - id: risk
    kind: {kind}
    target: 10_000_000
    bands: [{{up_to_percent: 10, provider_percent: 50}}, {{provider_percent: {beyond}}}]
{cap}"""


def risk(kind: str = "risk_share", beyond: int = 50, cap: str = "") -> str:
    return HEAD + RISK.format(kind=kind, beyond=beyond, cap=f"    provider_cap: {cap}\n" if cap else "")


def test_risk_share_design_example(engine: Engine) -> None:
    # Target £10m, outturn £9.4m, first band 50:50: variance −£0.6m, providers gain £0.3m,
    # so the commissioner recovers £0.3m over the year.
    lines = run(engine, [contract(risk())], activity(monthly_cost("9400000")))
    assert total_of(lines, "risk") == D("-300000.00")
    assert "providers keep £300,000.00" in lines_of(lines, "risk")[-1]["basis"]


@pytest.mark.parametrize(
    ("outturn", "kind", "beyond", "cap", "commissioner"),
    [
        # At the band edge: overspend £1m = 10% of target → providers bear £0.5m.
        ("11000000", "risk_share", 25, "", "500000.00"),
        # Past it: £1.6m over; providers bear 50% of £1m + 25% of £0.6m = £650,000.
        ("11600000", "risk_share", 25, "", "950000.00"),
        # Capped at £600,000 for providers: the commissioner bears the rest of £1.6m.
        ("11600000", "risk_share", 25, "600000", "1000000.00"),
        # Gain share: an overspend stays with the providers.
        ("11600000", "gain_share", 25, "", "0.00"),
        # Gain share: underspend £2m; providers keep 50% of £1m + 25% of £1m = £750,000.
        ("8000000", "gain_share", 25, "", "-1250000.00"),
        # On target: nothing moves.
        ("10000000", "risk_share", 25, "", "0.00"),
    ],
)
def test_risk_share_bands_and_caps(engine: Engine, outturn: str, kind: str, beyond: int, cap: str, commissioner: str) -> None:
    lines = run(engine, [contract(risk(kind, beyond, cap))], activity(monthly_cost(outturn)))
    assert total_of(lines, "risk") == D(commissioner)


def test_risk_share_target_of_a_pooled_budget(engine: Engine) -> None:
    # The pooled budget (block £1.2m) is the target; cost £1.32m is 10% over; providers
    # bear half: the commissioner adds £60,000.
    text = HEAD + """
components:
  - {id: budget, kind: block, annual: 1_200_000}
  - {id: risk, kind: risk_share, target_of: budget, bands: [{provider_percent: 50}]}
"""
    lines = run(engine, [contract(text)], activity(monthly_cost("1320000")))
    assert total_of(lines, "risk") == D("60000.00")
    assert total_of(lines, "budget") == D("1200000.00")


def test_risk_share_without_cost_is_a_located_error(engine: Engine) -> None:
    with pytest.raises(ProblemsError) as error:
        run(engine, [contract(risk())], activity([{}]))
    (problem,) = error.value.problems
    assert problem.field == "components[0].prices" and "no cost" in problem.message


def test_risk_share_with_part_of_the_activity_uncosted_is_refused(engine: Engine) -> None:
    """£9.4m of costed cases and one case in May with no cost: the outturn is not known, so
    no share is priced on £9.4m as if it were (that would return £300,000 to the commissioner)."""
    day = dt.date(2025, 5, 20)
    with pytest.raises(ProblemsError) as error:
        run(engine, [contract(risk())], activity([*monthly_cost("9400000"), {"end_date": day, "start_date": day, "cost": None}]))
    (problem,) = error.value.problems
    assert problem.field == "components[0].prices" and "some of it) carries no cost" in problem.message


def test_split_variance_parts_sum_to_the_variance() -> None:
    bands = [Band(up_to_percent=D(10), provider_percent=D(50)), Band(provider_percent=D(25))]
    assert split_variance(D("-600000"), D("10000000"), bands) == (D("-300000"), D("-300000"))
    commissioner, providers = split_variance(D("1600000"), D("10000000"), bands, D("600000"))
    assert (commissioner, providers) == (D("1000000"), D("600000"))


# shared_savings ------------------------------------------------------------------


SAVINGS = """
components:
  - id: mssp
    kind: shared_savings
    benchmark_per_capita: 12000
    population: 20000
    minimum_savings_percent: 2.5
    sharing_percent: 40
{extra}"""


def test_shared_savings_design_example(engine: Engine) -> None:
    # 20,000 lives × 12,000 = 240m benchmark; actual 11,600 × 20,000 = 232m; savings 8m,
    # 3.33% ≥ 2.5%, × 40% = 3.2m, settled in March.
    lines = run(engine, [contract(HEAD + SAVINGS.format(extra=""))], activity(monthly_cost("232000000")))
    (line,) = lines.to_pylist()
    assert (line["month"], line["amount"]) == (month("2026-03"), D("3200000.00"))
    assert "(3.33% of benchmark); savings rate reaches the minimum savings rate 2.5%" in line["basis"]


@pytest.mark.parametrize(
    ("spent", "extra", "expected"),
    [
        # Exactly at the minimum savings rate: 2.5% of 240m = 6m saved → 40% = 2.4m.
        ("234000000", "", "2400000.00"),
        # A penny short of it: nothing.
        ("234000000.01", "", "0.00"),
        # Quality score 0.9 and a 2% payment reduction: 8m × 0.4 × 0.9 × 0.98 = 2,822,400.
        ("232000000", "    quality_score: 90\n    payment_reduction_percent: 2\n", "2822400.00"),
        # Cap at 1% of benchmark = 2.4m.
        ("232000000", "    cap_percent: 1\n", "2400000.00"),
        # Population bands: 20,000 people fall in the ≤ 20,000 band with a 3.9% minimum → 3.33% is short.
        ("232000000", "    minimum_savings_by_population: [{up_to_population: 20000, percent: 3.9}, {percent: 2}]\n", "0.00"),
        # Two-sided: 12m lost (5%), loss rate 1 − 40% = 60% → owes 7.2m, capped at 2% of 240m = 4.8m.
        ("252000000", "    losses: {minimum_loss_rate_percent: 2, cap_percent: 2}\n", "-4800000.00"),
        # Loss rate bounded above at 50%: 12m × 50% = 6m.
        ("252000000", "    losses: {loss_rate_ceiling_percent: 50}\n", "-6000000.00"),
        # One-sided terms: a loss owes nothing.
        ("252000000", "", "0.00"),
    ],
)
def test_shared_savings_edges(engine: Engine, spent: str, extra: str, expected: str) -> None:
    text = SAVINGS.format(extra=extra)
    if "minimum_savings_by_population" in extra:  # a table instead of the one percent
        text = text.replace("    minimum_savings_percent: 2.5\n", "")
    lines = run(engine, [contract(HEAD + text)], activity(monthly_cost(spent)))
    assert amounts(lines) == [D(expected)]


def test_shared_savings_population_from_data(engine: Engine) -> None:
    # Mean monthly population 1,000 × £1,200 = £1.2m benchmark; spent £1.1m; 8.33% ≥ 0;
    # 50% of £100,000 = £50,000.
    text = HEAD + """
components: [{id: mssp, kind: shared_savings, benchmark_per_capita: 1200, sharing_percent: 50}]
"""
    people = population([("ICB", month(f"{2025 + (i + 3) // 12}-{(i + 3) % 12 + 1:02d}"), "all", 900 if i < 6 else 1100) for i in range(12)])
    lines = run(engine, [contract(text)], activity(monthly_cost("1100000")), population=people)
    assert amounts(lines) == [D("50000.00")]


def test_split_variance_property() -> None:
    """For any variance, target, bands and cap: the commissioner's and providers' parts sum
    exactly to the variance, the providers' part has the variance's sign, is no larger than
    it, and is within the cap."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pounds = st.integers(-10**10, 10**10).map(lambda p: Decimal(p).scaleb(-2))
    # 0, or 1.00 to 100.00: a provider's share between 0 and 1 is refused as a pasted fraction.
    percent = st.just(Decimal(0)) | st.integers(100, 10_000).map(lambda p: Decimal(p).scaleb(-2))

    @settings(max_examples=300, deadline=None)
    @given(
        variance=pounds,
        target=st.integers(1, 10**10).map(lambda p: Decimal(p).scaleb(-2)),
        edges=st.lists(st.integers(1, 5_000), max_size=3, unique=True).map(sorted),
        shares=st.lists(percent, min_size=4, max_size=4),
        cap=st.none() | st.integers(0, 10**9).map(lambda p: Decimal(p).scaleb(-2)),
    )
    def check(variance: Decimal, target: Decimal, edges: list[int], shares: list[Decimal], cap: Decimal | None) -> None:
        bands = [Band(up_to_percent=Decimal(e).scaleb(-2), provider_percent=s) for e, s in zip(edges, shares)]
        bands.append(Band(provider_percent=shares[len(edges)]))
        commissioner, providers = split_variance(variance, target, bands, cap)
        assert commissioner + providers == variance
        assert abs(providers) <= abs(variance)
        assert providers == 0 or (providers > 0) == (variance > 0)
        if cap is not None:
            assert abs(providers) <= cap

    check()
