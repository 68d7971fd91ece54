"""low_volume_block: a block valued at the rolling average of past years' activity value,
with no in-year adjustment."""

from __future__ import annotations

from decimal import Decimal

import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import fixed_schedule
from carecontracts.engine.price import KindContext
from carecontracts.engine.registry import register
from carecontracts.language.model import LowVolumeBlockTerms
from carecontracts.money import format_money, to_pence


def rolling_average(history: list[Decimal]) -> Decimal:
    """The annual value: mean of past years' values, to the penny."""
    return to_pence(sum(history, Decimal(0)) / len(history))


@register("low_volume_block", measures_activity=False, summary="payment is fixed from past years' activity, not this year's")
def price_low_volume_block(context: KindContext) -> ir.Table:
    items = []
    for placed in context.placed:
        terms: LowVolumeBlockTerms = placed.component  # type: ignore[assignment]
        past = ", ".join(format_money(v) for v in terms.history)
        items.append((placed, rolling_average(terms.history), terms.profile, f"low-volume block: average of {len(terms.history)} past years ({past})"))
    return fixed_schedule(context, items)
