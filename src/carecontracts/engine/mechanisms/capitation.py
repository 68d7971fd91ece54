"""capitation: a rate per head per month by population band, optionally risk weighted."""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import in_force, labelled, number_text, price_text
from carecontracts.engine.price import KindContext
from carecontracts.engine.registry import register
from carecontracts.language.model import CapitationTerms
from carecontracts.money import AMOUNT_TYPE, RATE_TYPE, currency_symbol
from carecontracts.periods import month_label


@register("capitation", measures_activity=False, summary="payment follows the population covered, not activity")
def price_capitation(context: KindContext) -> ir.Table:
    population = context.inputs.population
    if population is None:
        raise context.fail([p.problem("no population data is loaded", "rates", "files in data/population/ and `carecontracts load`") for p in context.placed[:20]])
    rate_rows, covers = [], []
    for placed in context.placed:
        terms: CapitationTerms = placed.component  # type: ignore[assignment]
        weights = terms.risk_weights or {}
        payer = None if placed.agreement.payer_is_activity_commissioner else placed.agreement.payers[0].id
        for band in terms.rates:
            if terms.population_bands is None or band in terms.population_bands:
                for month in placed.months:
                    rate_rows.append((placed.contract, placed.id, band, month, in_force(placed, terms.rates[band], month), weights.get(band, Decimal(1))))
        for commissioner in placed.agreement.activity_commissioners:
            for month in placed.months:
                covers.append((placed.contract, placed.id, placed.agreement.payee, payer, commissioner, month, tuple(terms.population_bands or ())))
    rates = context.table(
        {"contract": pa.string(), "component": pa.string(), "band": pa.string(), "month": pa.date32(), "rate": pa.decimal128(18, 6), "weight": pa.decimal128(10, 6)},
        rate_rows,
    )
    cover = context.table(
        {"contract": pa.string(), "component": pa.string(), "payee": pa.string(), "fixed_payer": pa.string(), "commissioner": pa.string(), "month": pa.date32(),
         "bands": pa.list_(pa.string())},
        covers,
    )
    _refuse_months_without_population(context, cover, population)
    covered = cover.join(population, ["commissioner", "month"])
    covered = covered.filter((covered.bands.length() == 0) | covered.bands.contains(covered.band))
    unpriced = covered.anti_join(rates, ["contract", "component", "band", "month"])
    unknown = context.engine.to_arrow(unpriced.select("contract", "component", "band").distinct().order_by(["contract", "component", "band"]).limit(200)).to_pylist()
    if unknown:
        where = {(p.contract, p.id): p for p in context.placed}
        problems = []
        for key in sorted({(r["contract"], r["component"]) for r in unknown}):
            placed = where[key]
            bands = sorted(r["band"] for r in unknown if (r["contract"], r["component"]) == key)
            problems.append(placed.problem(
                f"population bands {', '.join(bands)} have no capitation rate", "rates",
                f"a rate for every band; rates are given for {', '.join(placed.component.rates)}",  # type: ignore[union-attr]
            ))
        raise context.fail(problems)
    rows = context.scenarios().cross_join(covered.join(rates, ["contract", "component", "band", "month"]))
    rate = (rows.rate.cast("decimal(18, 6)") * rows.weight).cast(RATE_TYPE)
    weighted = ibis.cases((rows.weight != 1, " × risk weight " + context.engine.number(rows.weight, 4)), else_="")
    return labelled(rows.mutate(
        payer=rows.fixed_payer.fill_null(rows.commissioner),
        service=rows.band,
        quantity=rows.persons,
        rate=rate,
        amount=(rows.persons * rate).round(2).cast(AMOUNT_TYPE),
        basis=number_text(context, rows.persons) + " people in band " + rows.band + " × "
        + ibis.cases((rows.rate == rows.rate.round(4), price_text(context, rows.rate)), else_=currency_symbol() + context.engine.number(rows.rate, 6))
        + " per head per month" + weighted,
    ))


def _refuse_months_without_population(context: KindContext, cover: ir.Table, population: ir.Table) -> None:
    """A commissioner with no population rows in the term, or a month missing before the last
    month it has, would be paid nothing for without a word: refused, naming the commissioner
    and the months. Months after the last one given are not yet reported, and pay nothing yet."""
    keys = ["contract", "component", "commissioner"]
    last = cover.semi_join(population, ["commissioner", "month"]).group_by(keys).aggregate(last=cover.month.max())
    missing = cover.anti_join(population, ["commissioner", "month"]).select(*keys, "month").distinct()
    missing = missing.left_join(last, keys).select(*keys, "month", "last")
    missing = missing.filter(missing["last"].isnull() | (missing.month < missing["last"]))
    found = context.engine.to_arrow(missing.order_by([*keys, "month"]).limit(2000)).to_pylist()
    if not found:
        return
    where = {(p.contract, p.id): p for p in context.placed}
    months: dict[tuple[str, str], dict[str, list[str]]] = {}
    for r in found:
        months.setdefault((r["contract"], r["component"]), {}).setdefault(r["commissioner"], []).append(month_label(r["month"]))
    raise context.fail([
        where[key].problem("no population data for " + "; ".join(f"{who} in {_months_text(said)}" for who, said in by_payer.items()), "rates",
                           "population rows (commissioner, month, band, persons) in data/population/ for every month of the term up to the last one reported")
        for key, by_payer in months.items()
    ])


def _months_text(months: list[str]) -> str:
    """`2025-04` or `2025-04 to 2026-03 (12 months)`."""
    return months[0] if len(months) == 1 else f"{months[0]} to {months[-1]} ({len(months)} months)"
