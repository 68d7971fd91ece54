"""activity (cost per case): chargeable units × unit price × MFF, per currency and month.

Chargeable units exclude the avoidable share of emergency readmissions (see measure)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import number_text, price_text, valued
from carecontracts.engine.price import PricingContext
from carecontracts.engine.registry import register
from carecontracts.language.model import ActivityTerms


@register("activity", measures_activity=True, summary="each unit of activity is paid at its price")
def price_activity(context: PricingContext) -> ir.Table:
    terms: ActivityTerms = context.component  # type: ignore[assignment]
    rows = valued(context)
    singular = terms.unit[:-1] if terms.unit.endswith("s") else terms.unit
    mff_text = ibis.cases((rows.mff == rows.mff.round(4), context.engine.number(rows.mff, 4)), else_=context.engine.number(rows.mff, 6))
    unit = ibis.cases((rows.chargeable == 1, f" {singular}"), else_=f" {terms.unit}")
    basis = number_text(context, rows.chargeable, 2) + unit + " × " + price_text(context, rows.unit_price) + " × MFF " + mff_text
    if terms.readmission is not None:
        share = f"{terms.readmission.avoidable_percent.normalize():f}%"
        basis = ibis.cases(
            (
                rows.readmitted > 0,
                basis
                + " (" + number_text(context, rows.quantity, 2) + " less " + number_text(context, rows.readmitted, 2)
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
