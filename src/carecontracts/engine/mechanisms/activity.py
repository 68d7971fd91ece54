"""activity (cost per case): chargeable units × unit price × MFF, per currency and month.

Chargeable units exclude the avoidable share of emergency readmissions (see measure)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import money_text, number_text, valued
from carecontracts.engine.price import PricingContext
from carecontracts.engine.registry import register
from carecontracts.language.model import ActivityTerms


@register("activity", measures_activity=True, summary="each unit of activity is paid at its price")
def price_activity(context: PricingContext) -> ir.Table:
    terms: ActivityTerms = context.component  # type: ignore[assignment]
    rows = valued(context)
    singular = terms.unit[:-1] if terms.unit.endswith("s") else terms.unit
    unit = ibis.cases((rows.chargeable == 1, f" {singular}"), else_=f" {terms.unit}")
    basis = number_text(context, rows.chargeable, 4) + unit + " × " + money_text(context, rows.unit_price) + " × MFF " + context.engine.number(rows.mff, 4)
    if terms.readmission is not None:
        share = f"{terms.readmission.avoidable_percent.normalize():f}%"
        basis = ibis.cases(
            (
                rows.readmitted > 0,
                basis
                + " (" + number_text(context, rows.quantity, 4) + " less " + number_text(context, rows.readmitted, 4)
                + f" emergency readmissions within {terms.readmission.within_days} days × {share} avoidable)",
            ),
            else_=basis,
        )
    return rows.mutate(
        payee=ibis.literal(context.agreement.payee),
        quantity=rows.chargeable,
        amount=rows.line_amount,
        basis=basis,
    )
