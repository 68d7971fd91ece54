"""best_practice_topup: an amount per case that met every best-practice criterion (the
activity's `compliant` flag), per service and month."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import money_text, number_text
from carecontracts.engine.price import PricingContext
from carecontracts.engine.registry import register
from carecontracts.language.model import BestPracticeTopupTerms
from carecontracts.money import AMOUNT_TYPE, OPERAND_TYPE


@register("best_practice_topup", measures_activity=True, summary="pays a top-up for each case meeting every best-practice criterion")
def price_best_practice_topup(context: PricingContext) -> ir.Table:
    terms: BestPracticeTopupTerms = context.component  # type: ignore[assignment]
    tallies = context.tallies()
    tallies = tallies.filter(tallies.month.isin(context.months))
    rows = tallies.group_by(["scenario", "payer", "service", "month"]).aggregate(
        compliant=tallies.compliant.sum(), events=tallies.events.sum()
    )
    rows = rows.filter(rows.compliant > 0)
    rate = ibis.literal(terms.amount, type=OPERAND_TYPE)
    return rows.mutate(
        contract=ibis.literal(context.agreement.id),
        component=ibis.literal(terms.id),
        payee=ibis.literal(context.agreement.payee),
        quantity=rows.compliant,
        rate=rate,
        amount=(rows.compliant.cast(OPERAND_TYPE) * rate).round(2).cast(AMOUNT_TYPE),
        basis=number_text(context, rows.compliant) + " of " + number_text(context, rows.events)
        + " cases met every criterion × " + money_text(context, rate),
    )
