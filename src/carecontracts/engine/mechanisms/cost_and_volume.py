"""cost_and_volume: baseline volume at a price, a tolerance band, marginal rates outside it.

Settled on the year to date with the band pro rata, so each month's line is the change
in what the year to date is worth."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Sequence

import ibis
import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import in_force, money_text, number_text, price_text, pro_rata, settle_year_to_date
from carecontracts.engine.price import KindContext, Placed, fraction
from carecontracts.engine.registry import register
from carecontracts.language.model import CostAndVolumeTerms
from carecontracts.money import QUANTITY_TYPE, VALUE_TYPE


def band_value(volume: ir.NumericValue, lower: ir.NumericValue, upper: ir.NumericValue, price: ir.NumericValue, above: ir.NumericValue, below: ir.NumericValue) -> ir.NumericValue:
    """What `volume` is worth: full price within the band, `above` per unit over it, and
    `below` per unit it falls short of the band on top of the units delivered."""
    full = price.cast("decimal(12, 2)")
    above_rate = above.cast("decimal(12, 6)")
    below_rate = below.cast("decimal(12, 6)")
    return ibis.cases(
        (volume > upper, (upper * full).cast(VALUE_TYPE) + ((volume - upper) * above_rate).cast(VALUE_TYPE)),
        (volume < lower, (volume * full).cast(VALUE_TYPE) + ((lower - volume) * below_rate).cast(VALUE_TYPE)),
        else_=(volume * full).cast(VALUE_TYPE),
    )





@register("cost_and_volume", measures_activity=True, summary="activity within the tolerance band is paid in full, outside it at marginal rates")
def price_cost_and_volume(context: KindContext) -> ir.Table:
    monthly = context.tallies()

    def parameters(placed: Placed, share: Decimal, upto: Sequence[dt.date], month: dt.date) -> dict[str, Any]:
        terms: CostAndVolumeTerms = placed.component  # type: ignore[assignment]
        tolerance = fraction(terms.tolerance_percent)
        price = in_force(placed, terms.price, month)
        return {
            "lower": pro_rata(placed, terms.baseline_volume * (1 - tolerance), share, upto),
            "upper": pro_rata(placed, terms.baseline_volume * (1 + tolerance), share, upto),
            "cap": pro_rata(placed, terms.cap, share, upto),
            "floor": pro_rata(placed, terms.floor, share, upto),
            "price": price,
            "above": (price * fraction(terms.above_band_percent)).quantize(Decimal("0.000001")),
            "below": (price * fraction(terms.below_band_percent)).quantize(Decimal("0.000001")),
            "unit": f" {terms.unit}",
        }

    def cumulative(table: ir.Table) -> ir.NumericValue:
        volume = table.ytd_chargeable.cast(QUANTITY_TYPE)
        value = band_value(volume, table.lower, table.upper, table.price, table.above, table.below)
        value = ibis.cases((table.cap.notnull(), ibis.least(value, table.cap.cast(VALUE_TYPE))), else_=value)
        return ibis.cases((table.floor.notnull(), ibis.greatest(value, table.floor.cast(VALUE_TYPE))), else_=value)

    def basis(table: ir.Table) -> ir.StringValue:
        volume = table.ytd_chargeable
        full = price_text(context, table.price.cast("decimal(18, 2)"))
        # The band's edges as shown (to 2 places), and the units beyond them worked from the
        # edges shown, so that what the basis shows adds up to the volume.
        upper, lower = table.upper.round(2), table.lower.round(2)
        regime = ibis.cases(
            (volume > table.upper, number_text(context, upper, 2) + " × " + full + " + " + number_text(context, volume - upper, 2) + " × " + price_text(context, table.above.cast("decimal(18, 6)")) + " above band"),
            (volume < table.lower, number_text(context, volume, 2) + " × " + full + " + " + number_text(context, lower - volume, 2) + " short of band × " + price_text(context, table.below.cast("decimal(18, 6)"))),
            else_=number_text(context, volume, 2) + " × " + full + " within band",
        )
        return (
            "year to date " + number_text(context, volume, 2) + table.unit + ", band " + number_text(context, lower, 2) + "–" + number_text(context, upper, 2)
            + " (" + table.k.cast("string") + "/12 of the year): " + regime + " = " + money_text(context, table.due_to_date)
            + ", less " + money_text(context, table.paid_before) + " due before"
        )

    lines = settle_year_to_date(
        context,
        monthly,
        ["chargeable"],
        parameters,
        {"lower": QUANTITY_TYPE, "upper": QUANTITY_TYPE, "cap": VALUE_TYPE, "floor": VALUE_TYPE, "price": "decimal(18, 2)", "above": "decimal(18, 6)", "below": "decimal(18, 6)", "unit": "string"},
        cumulative,
        basis,
    )
    return lines.mutate(quantity=lines.chargeable, rate=lines.price)
