"""quality_incentive (CQUIN-like): a percent of another component's payments, paid in
advance each month, with the share of indicators not met clawed back when assessed."""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import money_text, payments_of, percent_of, percent_text, times_share
from carecontracts.engine.price import PricingContext
from carecontracts.engine.registry import register
from carecontracts.language.model import QualityIncentiveTerms
from carecontracts.money import AMOUNT_TYPE
from carecontracts.periods import month_label, month_start


@register("quality_incentive", measures_activity=False, summary="paid as a percent of another component, less what is clawed back for indicators not met")
def price_quality_incentive(context: PricingContext) -> ir.Table:
    terms: QualityIncentiveTerms = context.component  # type: ignore[assignment]
    base = payments_of(context, [terms.percent_of])
    words = f"{percent_text(terms.percent)} of {terms.percent_of} "
    advance = base.mutate(
        contract=ibis.literal(context.agreement.id),
        component=ibis.literal(terms.id),
        payee=ibis.literal(context.agreement.payee),
        amount=percent_of(base.base, terms.percent).round(2).cast(AMOUNT_TYPE),
        basis="paid in advance: " + ibis.literal(words) + money_text(context, base.base),
    )
    assessed = month_start(terms.assessed) if terms.assessed else context.months[-1]
    if any(i.met is None for i in terms.indicators) or assessed not in context.months:
        return advance
    weights = sum((i.weight for i in terms.indicators), Decimal(0))
    unmet = [i for i in terms.indicators if not i.met]
    unmet_weight = sum((i.weight for i in unmet), Decimal(0))
    paid = advance.group_by(["scenario", "payer"]).aggregate(paid=advance.amount.sum())
    clawed = times_share(paid.paid, unmet_weight / weights)
    met_count = len(terms.indicators) - len(unmet)
    if unmet:
        names = ", ".join(i.id for i in unmet)
        what = f"{met_count} of {len(terms.indicators)} indicators met; not met: {names} (weight {unmet_weight.normalize():f} of {weights.normalize():f})"
    else:
        what = f"all {len(terms.indicators)} indicators met"
    clawback = paid.mutate(
        month=ibis.literal(assessed, type="date"),
        contract=ibis.literal(context.agreement.id),
        component=ibis.literal(f"{terms.id}.clawback"),
        payee=ibis.literal(context.agreement.payee),
        amount=(-clawed.round(2)).cast(AMOUNT_TYPE),
        basis=f"assessed in {month_label(assessed)}: {what}; clawed back from " + money_text(context, paid.paid) + " paid in advance",
    )
    columns = ["scenario", "contract", "component", "payer", "payee", "month", "amount", "basis"]
    return ibis.union(advance.select(columns), clawback.select(columns), distinct=False)

