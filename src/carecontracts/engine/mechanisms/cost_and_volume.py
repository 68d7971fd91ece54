"""cost_and_volume: baseline volume at a price, a tolerance band, marginal rates outside it.

Settled on the year to date with the band pro rata, so each month's line is the change
in what the year to date is worth."""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import money_text, number_text, price_text, pro_rata, settle_year_to_date
from carecontracts.engine.price import PricingContext, fraction
from carecontracts.engine.registry import register
from carecontracts.language.model import CostAndVolumeTerms
from carecontracts.money import QUANTITY_TYPE, VALUE_TYPE


def band_value(volume: ir.NumericValue, lower: ir.NumericValue, upper: ir.NumericValue, price: Decimal, above: Decimal, below: Decimal) -> ir.NumericValue:
    """What `volume` is worth: full price within the band, `above` per unit over it, and
    `below` per unit it falls short of the band on top of the units delivered."""
    full = ibis.literal(price, type="decimal(12, 2)")
    above_rate = ibis.literal(above, type="decimal(12, 6)")
    below_rate = ibis.literal(below, type="decimal(12, 6)")
    return ibis.cases(
        (volume > upper, (upper * full).cast(VALUE_TYPE) + ((volume - upper) * above_rate).cast(VALUE_TYPE)),
        (volume < lower, (volume * full).cast(VALUE_TYPE) + ((lower - volume) * below_rate).cast(VALUE_TYPE)),
        else_=(volume * full).cast(VALUE_TYPE),
    )


@register("cost_and_volume", measures_activity=True, summary="activity within the tolerance band is paid in full, outside it at marginal rates")
def price_cost_and_volume(context: PricingContext) -> ir.Table:
    terms: CostAndVolumeTerms = context.component  # type: ignore[assignment]
    tolerance = fraction(terms.tolerance_percent)
    above = terms.price * fraction(terms.above_band_percent)
    below = terms.price * fraction(terms.below_band_percent)
    tallies = context.tallies()
    monthly = tallies.filter(tallies.month.isin(context.months))

    limits = {name: getattr(terms, name) for name in ("cap", "floor") if getattr(terms, name) is not None}

    def parameters(share: Decimal, k: int) -> dict[str, Decimal]:
        values = {
            "lower": pro_rata(terms.baseline_volume * (1 - tolerance), share, k),
            "upper": pro_rata(terms.baseline_volume * (1 + tolerance), share, k),
        }
        return values | {name: pro_rata(limit, share, k) for name, limit in limits.items()}

    def cumulative(table: ir.Table) -> ir.NumericValue:
        volume = table.ytd_chargeable.cast(QUANTITY_TYPE)
        value = band_value(volume, table.lower, table.upper, terms.price, above, below)
        if terms.cap is not None:
            value = ibis.least(value, table.cap.cast(VALUE_TYPE))
        if terms.floor is not None:
            value = ibis.greatest(value, table.floor.cast(VALUE_TYPE))
        return value

    def basis(table: ir.Table) -> ir.StringValue:
        volume = table.ytd_chargeable
        unit = f" {terms.unit}"
        full = price_text(context, ibis.literal(terms.price, type="decimal(18, 2)"))
        regime = ibis.cases(
            (volume > table.upper, number_text(context, table.upper, 2) + " × " + full + " + " + number_text(context, volume - table.upper, 2) + " × " + price_text(context, ibis.literal(above, type="decimal(18, 6)")) + " above band"),
            (volume < table.lower, number_text(context, volume, 2) + " × " + full + " + " + number_text(context, table.lower - volume, 2) + " short of band × " + price_text(context, ibis.literal(below, type="decimal(18, 6)"))),
            else_=number_text(context, volume, 2) + " × " + full + " within band",
        )
        return (
            "year to date " + number_text(context, volume, 2) + unit + ", band " + number_text(context, table.lower, 2) + "–" + number_text(context, table.upper, 2)
            + " (" + table.k.cast("string") + "/12 of the year): " + regime + " = " + money_text(context, table.due_to_date)
            + ", less " + money_text(context, table.paid_before) + " due before"
        )

    lines = settle_year_to_date(
        context,
        monthly,
        ["chargeable"],
        parameters,
        {"lower": QUANTITY_TYPE, "upper": QUANTITY_TYPE} | {name: VALUE_TYPE for name in limits},
        cumulative,
        basis,
    )
    return lines.mutate(quantity=lines.chargeable, rate=ibis.literal(terms.price, type="decimal(18, 2)"))
