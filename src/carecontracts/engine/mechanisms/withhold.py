"""withhold: a contract-management sanction. A percent of the actual monthly value of other
components is withheld from a month on; all of it is repaid in the month the breach is
remedied, if that is within the set period, and retained otherwise."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import money_text, payments_of, percent_of, percent_text
from carecontracts.engine.price import PricingContext
from carecontracts.engine.registry import register
from carecontracts.language.model import WithholdTerms
from carecontracts.money import AMOUNT_TYPE
from carecontracts.periods import add_months, month_label, month_start

COLUMNS = ["scenario", "contract", "component", "payer", "payee", "month", "amount", "basis"]


@register("withhold", measures_activity=False, summary="withholds a percent of other components' payments until a breach is remedied")
def price_withhold(context: PricingContext) -> ir.Table:
    terms: WithholdTerms = context.component  # type: ignore[assignment]
    start = month_start(terms.from_)
    deadline = add_months(start, terms.retain_after_months)
    remedied = month_start(terms.remedied) if terms.remedied else None
    # Withheld in every month from the breach until it is remedied (or the year ends).
    stop = remedied if remedied is not None else dt.date.max
    withheld_months = [m for m in context.months if start <= m < stop]
    base = payments_of(context, list(terms.of))
    reason = f" ({terms.reason})" if terms.reason else ""
    of = " + ".join(terms.of)
    withheld = base.filter(base.month.isin(withheld_months) if withheld_months else ibis.literal(False))
    withheld = withheld.mutate(
        contract=ibis.literal(context.agreement.id),
        component=ibis.literal(terms.id),
        payee=ibis.literal(context.agreement.payee),
        amount=(-percent_of(withheld.base, terms.percent).round(2)).cast(AMOUNT_TYPE),
        basis=f"withheld since {month_label(start)}{reason}: {percent_text(terms.percent)} of {of} " + money_text(context, withheld.base),
    )
    parts = [withheld.select(COLUMNS)]
    settled_in = remedied if remedied is not None and remedied < deadline else deadline
    if settled_in in context.months:
        total = withheld.group_by(["scenario", "payer"]).aggregate(held=(-withheld.amount).sum().cast(AMOUNT_TYPE))
        if remedied is not None and remedied < deadline:
            amount, words = total.held, f"remedied in {month_label(remedied)}, within {terms.retain_after_months} months: repaid "
        else:
            amount, words = ibis.literal(0).cast(AMOUNT_TYPE), f"not remedied within {terms.retain_after_months} months of {month_label(start)}: retained "
        parts.append(
            total.mutate(
                month=ibis.literal(settled_in, type="date"),
                contract=ibis.literal(context.agreement.id),
                component=ibis.literal(f"{terms.id}.settlement"),
                payee=ibis.literal(context.agreement.payee),
                amount=amount.cast(AMOUNT_TYPE),
                basis=ibis.literal(words) + money_text(context, total.held) + " withheld",
            ).select(COLUMNS)
        )
    return ibis.union(*parts, distinct=False)
