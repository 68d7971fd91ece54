"""block: a fixed annual value paid monthly by a profile, whatever the activity."""

from __future__ import annotations

import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import fixed_schedule
from carecontracts.engine.price import KindContext
from carecontracts.engine.registry import register
from carecontracts.language.model import BlockTerms


@register("block", measures_activity=False, summary="payment does not depend on activity")
def price_block(context: KindContext) -> ir.Table:
    items = []
    for placed in context.placed:
        terms: BlockTerms = placed.component  # type: ignore[assignment]
        items.append((placed, terms.annual, terms.profile, "block"))
    return fixed_schedule(context, items)
