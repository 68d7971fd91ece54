"""quality_incentive (CQUIN-like): a percent of another component's payments, paid in
advance each month, with the share of indicators not met clawed back when assessed."""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import fraction_value, in_force, labelled, money_text, payments_of, percent_of, percent_text, share_value, times_share
from carecontracts.engine.price import KindContext
from carecontracts.engine.registry import register
from carecontracts.language.model import QualityIncentiveTerms
from carecontracts.money import AMOUNT_TYPE
from carecontracts.periods import month_label, month_start

COLUMNS = ["scenario", "contract", "component", "payer", "payee", "month", "amount", "basis"]


@register("quality_incentive", measures_activity=False, summary="paid as a percent of another component, less what is clawed back for indicators not met")
def price_quality_incentive(context: KindContext) -> ir.Table:
    terms_rows, assessed_rows = [], []
    for placed in context.placed:
        terms: QualityIncentiveTerms = placed.component  # type: ignore[assignment]
        for month in placed.months:
            percent = in_force(placed, terms.percent, month)
            terms_rows.append((placed.contract, placed.id, month, placed.agreement.payee, fraction_value(percent), f"{percent_text(percent)} of {terms.percent_of} "))
        assessed = month_start(terms.assessed) if terms.assessed else (placed.months[-1] if placed.months else None)
        if any(i.met is None for i in terms.indicators) or assessed not in placed.months:
            continue
        weights = sum((i.weight for i in terms.indicators), Decimal(0))
        unmet = [i for i in terms.indicators if not i.met]
        unmet_weight = sum((i.weight for i in unmet), Decimal(0))
        met_count = len(terms.indicators) - len(unmet)
        if unmet:
            names = ", ".join(i.id for i in unmet)
            what = f"{met_count} of {len(terms.indicators)} indicators met; not met: {names} (weight {unmet_weight.normalize():f} of {weights.normalize():f})"
        else:
            what = f"all {len(terms.indicators)} indicators met"
        assessed_rows.append((placed.contract, placed.id, assessed, share_value(unmet_weight / weights), f"assessed in {month_label(assessed)}: {what}; clawed back from "))
    terms_table = context.table(
        {"contract": pa.string(), "component": pa.string(), "month": pa.date32(), "payee": pa.string(), "fraction": pa.decimal128(9, 6), "words": pa.string()},
        terms_rows,
    )
    base = payments_of(context, [(p, p.component.percent_of) for p in context.placed])  # type: ignore[union-attr]
    base = base.join(terms_table, ["contract", "component", "month"])
    advance = labelled(base.mutate(
        amount=percent_of(base.base, base.fraction).round(2).cast(AMOUNT_TYPE),
        basis="paid in advance: " + base.words + money_text(context, base.base),
    ))
    if not assessed_rows:
        return advance
    assessments = context.table(
        {"contract": pa.string(), "component": pa.string(), "assessed": pa.date32(), "unmet": pa.decimal128(11, 10), "assessed_words": pa.string()}, assessed_rows
    )
    paid = advance.group_by(["scenario", "contract", "component", "payer", "payee"]).aggregate(paid=advance.amount.sum())
    paid = paid.join(assessments, ["contract", "component"])
    clawback = labelled(paid.mutate(
        month=paid.assessed,
        amount=(-times_share(paid.paid, paid.unmet).round(2)).cast(AMOUNT_TYPE),
        basis=paid.assessed_words + money_text(context, paid.paid) + " paid in advance",
    ), "clawback")
    columns = [*COLUMNS, "origin"]
    return ibis.union(advance.select(columns), clawback.select(columns), distinct=False)
