"""best_practice_topup: an amount per case that met every best-practice criterion (the
activity's `compliant` flag), per service and month."""

from __future__ import annotations

import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import in_force, labelled, money_text, number_text
from carecontracts.engine.price import KindContext
from carecontracts.engine.registry import register
from carecontracts.language.model import BestPracticeTopupTerms
from carecontracts.money import AMOUNT_TYPE, OPERAND_TYPE


@register("best_practice_topup", measures_activity=True, summary="pays a top-up for each case meeting every best-practice criterion")
def price_best_practice_topup(context: KindContext) -> ir.Table:
    amounts = context.table(
        {"contract": pa.string(), "component": pa.string(), "month": pa.date32(), "payee": pa.string(), "rate": pa.decimal128(18, 10)},
        (
            (p.contract, p.id, month, p.agreement.payee, in_force(p, p.component.amount, month))
            for p in context.placed if isinstance(p.component, BestPracticeTopupTerms)
            for month in p.months
        ),
    )
    tallies = context.tallies()
    rows = tallies.group_by(["scenario", "contract", "component", "payer", "service", "month"]).aggregate(
        compliant=tallies.compliant.sum(), events=tallies.events.sum()
    )
    rows = rows.filter(rows.compliant > 0).join(amounts, ["contract", "component", "month"])
    rate = rows.rate.cast(OPERAND_TYPE)
    return labelled(rows.mutate(
        quantity=rows.compliant,
        rate=rate,
        amount=(rows.compliant.cast(OPERAND_TYPE) * rate).round(2).cast(AMOUNT_TYPE),
        basis=number_text(context, rows.compliant) + " of " + number_text(context, rows.events)
        + " cases met every criterion × " + money_text(context, rate),
    ))
