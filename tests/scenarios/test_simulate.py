"""Monte Carlo risk checked against closed forms.

Tolerances are stated as multiples of the Monte Carlo standard error: 4 standard errors,
so an honest implementation fails about once in 16,000 runs of a test (the seeds are
fixed, so in practice never), while a wrong mean, variance or correlation fails surely.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from carecontracts.engine.backend import Engine
from carecontracts.engine.run import RunTables, statement_lines
from carecontracts.language.yaml_lines import parse_yaml
from carecontracts.problems import ProblemsError
from carecontracts.scenarios.simulate import (
    Distribution,
    OutcomeTarget,
    RiskModel,
    Simulation,
    _achievement_change,
    parse_risk_model,
    simulate,
)
from tests.helpers import YEAR, D, activity, contract, outcomes, price_list, repeat

HEAD = """
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
services: {elective: {service: [elective]}}
"""
PER_CASE = HEAD + "components: [{id: cases, kind: activity, prices: tariff}]"
QUIET = RiskModel.model_validate({"volume": {"distribution": "poisson", "demand_shock": 0}, "cost": {"sd": 0}})


def year_of(per_month: int, provider: str = "PROV", **row) -> list[dict]:
    """`per_month` cases in every month of 2025-26."""
    rows = []
    for index, month in enumerate(YEAR.months):
        day = dt.date(month.year, month.month, 10)
        rows += repeat(per_month, end_date=day, start_date=day, provider=provider, prefix=f"{provider}{index}-", **row)
    return rows


def tables(engine: Engine, rows: list[dict], **more) -> RunTables:
    put = {name: engine.put(table) for name, table in more.items()}
    return RunTables(engine.put(activity(rows)), put.get("prices"), None, None, put.get("outcomes"))


def run(engine: Engine, texts: list[str], rows: list[dict], runs: int, model: RiskModel = QUIET, seed: int = 7,
        budgets: dict[str, Decimal] | None = None, **more) -> Simulation:
    """A simulation of contracts over activity rows priced from a £1,000 tariff."""
    contracts = [contract(text, {"tariff"}) for text in texts]
    data = tables(engine, rows, prices=price_list({"HRG1": "1000"}), **more)
    return simulate(engine, contracts, YEAR, data, runs, seed, model, chunk=500, budgets=budgets)


def payments(result: Simulation, contract_id: str = "C1") -> list[float]:
    """Each run's total paid under a contract, in run order."""
    totals: dict[str, Decimal] = {}
    for row in result.flows.to_pylist():
        if row["contract"] == contract_id and row["scenario"].startswith("run:"):
            totals[row["scenario"]] = totals.get(row["scenario"], Decimal(0)) + row["amount"]
    assert len(totals) == result.runs
    return [float(totals[f"run:{n}"]) for n in range(1, result.runs + 1)]


def party(result: Simulation, name: str):
    return next(p for p in result.parties if p.party == name)


def test_cost_per_case_with_poisson_volume_matches_the_closed_form(duck: Engine) -> None:
    # 100 cases a month at £1,000: the year's payment is £1,000 × N, N ~ Poisson(1,200):
    # mean £1.2m, standard deviation £1,000 × √1,200 = £34,641.
    runs = 2000
    result = run(duck, [PER_CASE], year_of(100, service="elective"), runs)
    paid = payments(result)
    sd = 1000 * math.sqrt(1200)
    assert abs(statistics.fmean(paid) - 1_200_000) < 4 * sd / math.sqrt(runs)
    # The sample variance's standard error is var × √(2/(n−1)), 3.2% here: 4 of them on
    # the variance is ±13%, so ±6.5% on the standard deviation.
    assert abs(statistics.stdev(paid) / sd - 1) < 0.065
    # The empirical 95th percentile lies between the true quantiles at 0.95 ± 4 standard
    # errors of a proportion (√(0.95 × 0.05 / n)).
    band = 4 * math.sqrt(0.95 * 0.05 / runs)
    p95 = party(result, "PROV").income.p95
    assert stats.poisson.ppf(0.95 - band, 1200) * 1000 <= p95 <= stats.poisson.ppf(0.95 + band, 1200) * 1000
    # Every run's payment is a whole number of cases at £1,000: priced exactly.
    assert all(v % 1000 == 0 for v in paid)


def test_negative_binomial_volume_has_the_extra_variance(duck: Engine) -> None:
    # Size 50 each month: variance per month 100 + 100²/50 = 300, a year 3,600 cases².
    model = RiskModel.model_validate(
        {"volume": {"demand_shock": 0, "dispersion": [{"provider": "PROV", "service": "elective", "size": 50}]}, "cost": {"sd": 0}}
    )
    runs = 2000
    paid = payments(run(duck, [PER_CASE], year_of(100, service="elective"), runs, model))
    sd = 1000 * math.sqrt(3600)
    assert abs(statistics.fmean(paid) - 1_200_000) < 4 * sd / math.sqrt(runs)
    assert abs(statistics.stdev(paid) / sd - 1) < 0.065


def test_demand_shock_correlates_providers(duck: Engine) -> None:
    # Two providers, 100 cases a month each, Poisson given a lognormal shock S (mean 1, sd
    # of log 0.05) shared by both: Var N = 1,200 + 1,200² (e^σ² − 1) = 4,804.5 and
    # Cov(N₁, N₂) = 1,200² (e^σ² − 1) = 3,604.5, a correlation of 0.750.
    model = RiskModel.model_validate({"volume": {"distribution": "poisson", "demand_shock": 0.05}, "cost": {"sd": 0}})
    second = PER_CASE.replace("id: C1", "id: C2").replace("provider: PROV", "provider: OTHER")
    rows = year_of(100, service="elective") + year_of(100, provider="OTHER", service="elective")
    runs = 2000
    result = run(duck, [PER_CASE, second], rows, runs, model)
    first, other = np.array(payments(result, "C1")), np.array(payments(result, "C2"))
    shocked = 1200**2 * (math.exp(0.05**2) - 1)
    assert abs(np.var(first, ddof=1) / (1e6 * (1200 + shocked)) - 1) < 0.13
    correlation = float(np.corrcoef(first, other)[0, 1])
    expected = shocked / (1200 + shocked)
    # The standard error of a correlation is about (1 − ρ²)/√n = 0.0098.
    assert abs(correlation - expected) < 4 * (1 - expected**2) / math.sqrt(runs)


def test_block_has_no_variance(engine: Engine) -> None:
    block = HEAD + "components: [{id: core, kind: block, annual: 1_200_000}]"
    result = run(engine, [block], year_of(10, service="elective"), 25, RiskModel())
    income = party(result, "PROV").income
    assert income.p5 == income.p50 == income.p95 == income.mean == D("1200000.00")
    assert income.shortfall == D("1200000.00")


def test_same_seed_same_output_whatever_the_chunks(duck: Engine) -> None:
    contracts = [contract(PER_CASE, {"tariff"})]
    data = tables(duck, year_of(20, service="elective", cost="900"), prices=price_list({"HRG1": "1000"}))
    first = simulate(duck, contracts, YEAR, data, 30, 11, RiskModel(), chunk=7)
    again = simulate(duck, contracts, YEAR, data, 30, 11, RiskModel(), chunk=500)
    other = simulate(duck, contracts, YEAR, data, 30, 12, RiskModel(), chunk=500)
    order = ["scenario", "party"]
    assert first.positions.sort_by([(c, "ascending") for c in order]).equals(again.positions.sort_by([(c, "ascending") for c in order]))
    assert first.parties == again.parties
    assert first.parties != other.parties


def test_the_same_runs_on_spark(duck: Engine, engine: Engine) -> None:
    if engine.name != "spark":
        pytest.skip("compares Spark with DuckDB")
    contracts = [contract(PER_CASE, {"tariff"})]
    rows = year_of(20, service="elective", cost="900")
    on_duck = simulate(duck, contracts, YEAR, tables(duck, rows, prices=price_list({"HRG1": "1000"})), 12, 3, RiskModel(), chunk=5)
    on_spark = simulate(engine, contracts, YEAR, tables(engine, rows, prices=price_list({"HRG1": "1000"})), 12, 3, RiskModel(), chunk=5)
    assert on_duck.parties == on_spark.parties
    assert on_duck.contracts == on_spark.contracts


def test_expected_scenario_reproduces_the_payment_run(duck: Engine) -> None:
    # Fractional quantities, two currencies and costs: drawing nothing gives back exactly
    # the statement's amounts, and the provider's margin is what it is paid less its costs.
    text = HEAD + "components: [{id: cases, kind: activity, prices: tariff}]"
    rows = year_of(3, service="elective", quantity="1.25", cost="333.33") + year_of(2, service="elective", currency="HRG2", quantity="0.5", cost="50")
    prices = price_list({"HRG1": "1234.5678", "HRG2": "99.99"})
    data = tables(duck, rows, prices=prices)
    contracts = [contract(text, {"tariff"})]
    result = simulate(duck, contracts, YEAR, data, 2, 1, RiskModel())
    actual = statement_lines(duck, contracts, YEAR, data)
    by_month = {}
    for row in actual.to_pylist():
        by_month[row["month"]] = by_month.get(row["month"], Decimal(0)) + row["amount"]
    expected = {r["month"]: r["amount"] for r in result.flows.to_pylist() if r["scenario"] == "expected"}
    assert expected == by_month
    costs = party(result, "PROV")
    assert costs.measure == "margin" and costs.stressed["expected"] == sum(by_month.values()) - 12 * 3 * D("333.33") - 12 * 2 * D("50")
    # With the HRG2 cases carrying no cost, the provider's costs are not known: its net is shown, not a margin.
    uncosted = year_of(3, service="elective", quantity="1.25", cost="333.33") + year_of(2, service="elective", currency="HRG2", quantity="0.5")
    partly = party(simulate(duck, contracts, YEAR, tables(duck, uncosted, prices=prices), 2, 1, RiskModel()), "PROV")
    assert partly.measure == "net" and partly.stressed["expected"] == sum(by_month.values())


def test_stress_tests_by_hand(duck: Engine) -> None:
    # Winter +10%: December to February are 300 cases, so 30 more at £1,000.
    result = run(duck, [PER_CASE], year_of(100, service="elective"), 5)
    prov = party(result, "PROV")
    assert prov.stressed["expected"] == D("1200000.00")
    assert prov.stressed["stress:winter"] == D("1230000.00")
    commissioner = party(result, "ICB")
    assert commissioner.stressed["stress:winter"] == D("1230000.00")


def test_a_sub_contractor_leaving(duck: Engine) -> None:
    # The prime is paid a £1.2m block; its sub-contractor £40,000 a month. If the
    # sub-contractor leaves, the prime buys the same for 10% more: £528,000 a year, so its
    # net falls from £720,000 to £672,000 and the sub-contractor has nothing.
    text = HEAD + """components: [{id: core, kind: block, annual: 1_200_000}]
subcontracts:
  - id: C1-SUB
    provider: SUB
    services: {elective: {service: [elective]}}
    components: [{id: sub, kind: block, annual: 480_000}]
"""
    result = run(duck, [text], year_of(10, service="elective", provider="SUB"), 5)
    prime = party(result, "PROV")
    assert prime.stressed["expected"] == D("720000.00")
    assert prime.stressed["stress:leaves:C1-SUB"] == D("672000.00")
    assert party(result, "SUB").stressed["stress:leaves:C1-SUB"] == D("0")
    assert [s.name for s in result.stresses if s.scenario.startswith("stress:leaves")] == ["SUB leaves"]


def test_outcome_achievement_draws_are_beta_binomial() -> None:
    # 700 of 1,000 improved; ICC 0.01: variance p(1−p)/n × (1 + (n−1)ρ) = 0.00021 × 10.99.
    target = OutcomeTarget("C1", "m", "share_improved", D("0.7"), 1000, 700, 0.0145)
    rng = np.random.default_rng(5)
    draws = np.array([float(_achievement_change(rng, target, 0.01)) for _ in range(4000)])
    variance = 0.7 * 0.3 / 1000 * (1 + 999 * 0.01)
    assert abs(draws.mean()) < 4 * math.sqrt(variance / 4000)
    assert abs(draws.var(ddof=1) / variance - 1) < 4 * math.sqrt(2 / 3999)
    binomial = np.array([float(_achievement_change(rng, target, 0.0)) for _ in range(4000)])
    assert abs(binomial.var(ddof=1) / (0.7 * 0.3 / 1000) - 1) < 4 * math.sqrt(2 / 3999)


OUTCOME_POT = HEAD + """components:
  - id: outcomes
    kind: outcome_incentive
    pot: {amount: 100_000}
    metrics:
      - id: better
        weight: 1
        measure: {instrument: oxford_hip, statistic: share_improved, min_change: 8}
        schedule: {floor: 0.5, target: 0.9}
"""
SEVENTY_OF_100_IMPROVED = [("PROV", "oxford_hip", 20, 40 if i < 70 else 21) for i in range(100)]
BINOMIAL_OUTCOMES = RiskModel.model_validate({"volume": {"distribution": "poisson", "demand_shock": 0}, "cost": {"sd": 0}, "outcomes": {"overdispersion": 0}})


def test_outcome_pot_follows_the_drawn_achievement(duck: Engine) -> None:
    # A £100,000 pot, linear from 50% (nothing) to 90% (all); 70 of 100 episodes improved:
    # £50,000 expected. The drawn share has sd √(0.21/100) = 0.0458 (binomial), so the pot
    # has sd £100,000 × 0.0458 / 0.4 = £11,456 (the floor and cap are 4.4 sd away), and the
    # runs' mean is within 4 errors; a sample sd's standard error is about sd / √(2n).
    runs = 1500
    result = run(duck, [OUTCOME_POT], year_of(1, service="elective"), runs, BINOMIAL_OUTCOMES, outcomes=outcomes(SEVENTY_OF_100_IMPROVED))
    paid = payments(result)
    sd = 100_000 * math.sqrt(0.21 / 100) / 0.4
    assert abs(statistics.fmean(paid) - 50_000) < 4 * sd / math.sqrt(runs) + 500  # + the floor and cap's small pull
    assert abs(statistics.stdev(paid) / sd - 1) < 4 / math.sqrt(2 * runs)
    assert party(result, "PROV").stressed["stress:outcomes"] == D("25000.00")  # 60% → a quarter of the pot


def test_outcome_runs_the_same_whatever_the_chunks(duck: Engine) -> None:
    # Each chunk's drawn achievement is stored for the query compiled once: a run's outcome
    # payment must not depend on which chunk it fell in.
    contracts = [contract(OUTCOME_POT, set())]
    data = tables(duck, year_of(1, service="elective"), outcomes=outcomes(SEVENTY_OF_100_IMPROVED))
    small = simulate(duck, contracts, YEAR, data, 20, 5, BINOMIAL_OUTCOMES, chunk=3)
    whole = simulate(duck, contracts, YEAR, data, 20, 5, BINOMIAL_OUTCOMES, chunk=100)
    order = [("scenario", "ascending"), ("party", "ascending")]
    assert small.positions.sort_by(order).equals(whole.positions.sort_by(order))
    assert len(set(payments(whole))) > 3  # the runs differ from one another


def test_probability_over_budget(duck: Engine) -> None:
    # Budget £1.2m against £1,000 × Poisson(1,200): P(N > 1,200) = 0.4923.
    runs = 2000
    result = run(duck, [PER_CASE], year_of(100, service="elective"), runs, budgets={"ICB": D("1200000")})
    over = party(result, "ICB").over_budget
    truth = 1 - stats.poisson.cdf(1200, 1200)
    assert over is not None and abs(over - truth) < 4 * math.sqrt(truth * (1 - truth) / runs)


def test_as_of_keeps_the_actual_months(duck: Engine) -> None:
    rows = year_of(100, service="elective")
    contracts = [contract(PER_CASE, {"tariff"})]
    data = tables(duck, rows, prices=price_list({"HRG1": "1000"}))
    result = simulate(duck, contracts, YEAR, data, 40, 2, QUIET, as_of=dt.date(2025, 11, 1))
    months = {}
    for row in result.flows.to_pylist():
        months.setdefault(row["month"], set()).add(row["amount"])
    for month in YEAR.months[:8]:
        assert months[month] == {D("100000.00")}
    assert len(months[YEAR.months[-1]]) > 1
    assert result.months == YEAR.months[8:]


def test_distribution_by_hand() -> None:
    values = [D(v) for v in range(-4, 96)]  # -4 .. 95, 100 runs
    found = Distribution.of(values)
    assert found.p5 == D(0) and found.p50 == D(45) and found.p95 == D(90)
    assert found.mean == D("45.50")
    assert found.loss == 0.04
    assert found.shortfall == D("-2.00")  # mean of -4 .. 0
    worst_high = Distribution.of(values, "high")
    assert worst_high.shortfall == D("93.00")  # mean of 91 .. 95


def test_model_file_errors_are_located() -> None:
    document = parse_yaml("volume:\n  distribution: normal\ncost:\n  spread: 0.1\n", "risk.yaml")
    with pytest.raises(ProblemsError) as caught:
        parse_risk_model(document)
    text = str(caught.value)
    assert "risk.yaml:2 volume.distribution" in text and "risk.yaml:4 cost.spread" in text
    assert "spread" in text


def test_runs_must_be_positive(duck: Engine) -> None:
    with pytest.raises(ProblemsError, match="at least 1"):
        run(duck, [PER_CASE], year_of(1, service="elective"), 0)


def test_a_year_not_yet_complete_is_simulated_after_its_last_month(duck: Engine) -> None:
    rows = [r for r in year_of(100, service="elective") if r["end_date"] < dt.date(2025, 12, 1)]
    contracts = [contract(PER_CASE, {"tariff"})]
    result = simulate(duck, contracts, YEAR, tables(duck, rows, prices=price_list({"HRG1": "1000"})), 30, 2, QUIET)
    assert result.as_of == dt.date(2025, 11, 1)
    # Four months at the run rate of 100 cases: the mean is close to £400,000 more than the
    # £800,000 to date (Poisson sd of 400 cases is 20 cases, £20,000; 4 errors of a mean of 30).
    assert abs(statistics.fmean(payments(result)) - 1_200_000) < 4 * 20_000 / math.sqrt(30)


def test_a_big_book_prices_fewer_runs_at_once() -> None:
    """The default chunk holds about 1,000,000 run-rows: 250 runs of a small book, 9 of a
    book whose expected year is 104,051 rows (1,000,000 // 104,051), and never fewer than 1."""
    from types import SimpleNamespace

    from carecontracts.scenarios.simulate import chunk_for

    def book(rows: int) -> Any:
        return SimpleNamespace(rows=pa.table({"n": pa.array(range(rows), pa.int32())}))

    assert chunk_for(book(10)) == 250
    assert chunk_for(book(4_000)) == 250
    assert chunk_for(book(4_001)) == 249
    assert chunk_for(book(104_051)) == 9
    assert chunk_for(book(2_000_000)) == 1
