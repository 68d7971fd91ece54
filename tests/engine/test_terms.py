"""Terms as data: the price stage's size depends on the kinds in use, not the number of
contracts; and numbers in a basis are rounded half-up by one rule on every backend."""

from __future__ import annotations

from decimal import Decimal

import ibis
import pyarrow as pa
import pytest

from carecontracts.engine.agreements import agreements_of
from carecontracts.engine.backend import Engine
from carecontracts.engine.price import Repricing
from carecontracts.engine.run import RunTables, measure, measure_and_price, price_tallies
from tests.helpers import D, YEAR, activity, contract, month, price_list, repeat, run


def _book(count: int) -> list:
    """`count` contracts, each a block, a cost-per-case component and a quality incentive
    on its block, with its own provider."""
    return [
        contract(
            f"""
            id: C{n}
            commissioner: ICB
            provider: P{n}
            term: {{start: 2025-04-01, end: 2026-03-31}}
            components:
              - {{id: core, kind: block, annual: {120_000 + n}}}
              - {{id: cases, kind: activity, prices: tariff, mff: 1.05}}
              - {{id: cquin, kind: quality_incentive, percent_of: core, percent: 1.25, indicators: [{{id: a}}]}}
            """
        )
        for n in range(count)
    ]


def _sql(engine: Engine, count: int) -> str:
    contracts = _book(count)
    rows = [row for n in range(count) for row in repeat(2, provider=f"P{n}", commissioner="ICB", prefix=f"c{n}_")]
    tables = RunTables(activity=engine.put(activity(rows)), prices=engine.put(price_list({"HRG1": "100"})))
    agreements = agreements_of(contracts)
    _, routed = measure(engine, agreements, tables.activity)
    # As one query, the way a simulation compiles it once for all its runs.
    lines = price_tallies(engine, agreements, YEAR, tables, routed, repricing=Repricing(keep_passes=False))
    return ibis.to_sql(lines, dialect="duckdb")


def test_the_price_stage_is_the_same_size_for_3_contracts_as_for_40(duck: Engine) -> None:
    """One expression per kind: the compiled query for forty contracts has exactly as many
    SELECTs and joins as for three (it grew with every contract before)."""
    small, large = _sql(duck, 3), _sql(duck, 40)
    for word in ("SELECT", "JOIN", "UNION"):
        assert small.count(word) == large.count(word), word
    assert large.count("'C39'") == 0  # no contract is named in the query: terms are data


def test_forty_contracts_priced_at_once_match_the_rule(duck: Engine) -> None:
    """Every contract's block twelfths, its two cases at £105.00 and its advance 1.25% of
    its block month, worked by hand."""
    contracts = _book(40)
    rows = [row for n in range(40) for row in repeat(2, provider=f"P{n}", commissioner="ICB", prefix=f"c{n}_")]
    tables = RunTables(activity=duck.put(activity(rows)), prices=duck.put(price_list({"HRG1": "100"})))
    lines = duck.to_arrow(measure_and_price(duck, contracts, YEAR, tables).lines).to_pylist()
    for n in (0, 17, 39):
        mine = [r for r in lines if r["contract"] == f"C{n}"]
        block = sorted((r["month"], r["amount"]) for r in mine if r["component"] == "core")
        twelfth = (D(120_000 + n) / 12).quantize(D("0.01"))
        assert [a for _, a in block[:11]] == [twelfth] * 11
        assert sum(a for _, a in block) == D(120_000 + n)
        (cases,) = [r for r in mine if r["component"] == "cases"]
        assert cases["amount"] == D("210.00") and cases["quantity"] == 2
        advance = sorted((r["month"], r["amount"]) for r in mine if r["component"] == "cquin")
        assert advance[0][1] == (twelfth * D("0.0125")).quantize(D("0.01"))
    assert len(agreements_of(contracts)) == 40


@pytest.mark.parametrize(("value", "shown"), [("845.275", "845.28"), ("2.675", "2.68"), ("1049.995", "1,050.00"), ("0.125", "0.13")])
def test_numbers_in_a_basis_round_half_up_on_every_backend(engine: Engine, value: str, shown: str) -> None:
    """845.275 read 845.27 on DuckDB (through a binary float) and 845.28 on Spark; both
    now show the half-up rounding, as money is rounded."""
    table = engine.put(pa.table({"x": pa.array([Decimal(value)], pa.decimal128(18, 4))}))
    assert engine.to_arrow(table.select(text=engine.number(table.x, 2))).column("text").to_pylist() == [shown]


def test_a_basis_adds_up_when_a_band_edge_is_a_half_penny(engine: Engine) -> None:
    """A baseline of 1,200.06 units with no tolerance puts April's band edge at 100.005 units.
    110 units: 100.005 × £100 + 9.995 × £50 = £10,500.25. The basis shows the edge half-up,
    100.01, and the units above it as 110 − 100.01 = 9.99, so what it shows adds up to the 110
    delivered (9.995 shown half-up, 10.00, would make 110.01)."""
    terms = contract(
        """
        id: CV
        commissioner: ICB
        provider: PROV
        term: {start: 2025-04-01, end: 2026-03-31}
        components:
          - {id: cv, kind: cost_and_volume, baseline_volume: 1200.06, price: 100, above_band_percent: 50}
        """
    )
    lines = run(engine, [terms], activity(repeat(1, quantity=110)))
    (april,) = [r for r in lines.to_pylist() if r["month"] == month("2025-04")]
    assert april["amount"] == D("10500.25")
    assert "110 units, band 100.01–100.01" in april["basis"]
    assert "100.01 × £100.00 + 9.99 × £50.00 above band" in april["basis"]
