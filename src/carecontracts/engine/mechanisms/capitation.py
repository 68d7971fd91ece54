"""capitation: a rate per head per month by population band, optionally risk weighted."""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import number_text, price_text
from carecontracts.engine.price import PricingContext
from carecontracts.engine.registry import register
from carecontracts.language.model import CapitationTerms
from carecontracts.money import AMOUNT_TYPE, RATE_TYPE


@register("capitation", measures_activity=False, summary="payment follows the population covered, not activity")
def price_capitation(context: PricingContext) -> ir.Table:
    terms: CapitationTerms = context.component  # type: ignore[assignment]
    population = context.inputs.population
    if population is None:
        raise context.problem("no population data is loaded", "rates", "files in data/population/ and `carecontracts load`")
    bands = list(terms.rates)
    weights = terms.risk_weights or {}
    rates = context.engine.put(
        pa.table(
            {
                "band": pa.array(bands, pa.string()),
                "rate": pa.array([terms.rates[b] for b in bands], pa.decimal128(18, 6)),
                "weight": pa.array([weights.get(b, Decimal(1)) for b in bands], pa.decimal128(10, 6)),
            }
        )
    )
    covered = population.filter(
        population.commissioner.isin(context.agreement.activity_commissioners),
        population.month.isin(context.months),
    )
    if terms.population_bands:
        covered = covered.filter(covered.band.isin(terms.population_bands))
    unknown = context.engine.to_arrow(covered.anti_join(rates, "band").select("band").distinct().limit(10)).column("band").to_pylist()
    if unknown:
        raise context.problem(
            f"population bands {', '.join(sorted(unknown))} have no capitation rate", "rates", f"a rate for every band; rates are given for {', '.join(bands)}"
        )
    rows = context.scenarios().cross_join(covered.join(rates, "band"))
    rate = (rows.rate.cast("decimal(18, 6)") * rows.weight).cast(RATE_TYPE)
    payer = rows.commissioner if context.agreement.payer_is_activity_commissioner else ibis.literal(context.agreement.payers[0].id)
    weighted = ibis.cases((rows.weight != 1, " × risk weight " + context.engine.number(rows.weight, 4)), else_="")
    return rows.mutate(
        contract=ibis.literal(context.agreement.id),
        component=ibis.literal(terms.id),
        payer=payer,
        payee=ibis.literal(context.agreement.payee),
        service=rows.band,
        quantity=rows.persons,
        rate=rate,
        amount=(rows.persons * rate).round(2).cast(AMOUNT_TYPE),
        basis=number_text(context, rows.persons) + " people in band " + rows.band + " × " + ibis.cases((rows.rate == rows.rate.round(4), price_text(context, rows.rate)), else_="£" + context.engine.number(rows.rate, 6)) + " per head per month" + weighted,
    )
