"""activity (cost per case): chargeable units × unit price × MFF, per currency and month.

Chargeable units exclude the avoidable share of emergency readmissions (see measure)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import labelled, number_text, price_text, valued
from carecontracts.engine.price import KindContext
from carecontracts.engine.registry import register
from carecontracts.language.model import ActivityTerms


@register("activity", measures_activity=True, summary="each unit of activity is paid at its price")
def price_activity(context: KindContext) -> ir.Table:
    rows = []
    for placed in context.placed:
        terms: ActivityTerms = placed.component  # type: ignore[assignment]
        singular = terms.unit[:-1] if terms.unit.endswith("s") else terms.unit
        rule = terms.readmission
        readmission = (
            f" emergency readmissions within {rule.within_days} days × {rule.avoidable_percent.normalize():f}% avoidable)" if rule else None
        )
        rows.append((placed.contract, placed.id, placed.agreement.payee, f" {singular}", f" {terms.unit}", readmission))
    words = context.table(
        {"contract": pa.string(), "component": pa.string(), "payee": pa.string(), "singular": pa.string(), "plural": pa.string(), "readmission_words": pa.string()},
        rows,
    )
    rows = valued(context).join(words, ["contract", "component"])
    mff_text = ibis.cases((rows.mff == rows.mff.round(4), context.engine.number(rows.mff, 4)), else_=context.engine.number(rows.mff, 6))
    unit = ibis.cases((rows.chargeable == 1, rows.singular), else_=rows.plural)
    basis = number_text(context, rows.chargeable, 2) + unit + " × " + price_text(context, rows.unit_price) + " × MFF " + mff_text
    basis = ibis.cases(
        (
            rows.readmission_words.notnull() & (rows.readmitted > 0),
            basis + " (" + number_text(context, rows.quantity, 2) + " less " + number_text(context, rows.readmitted, 2) + rows.readmission_words,
        ),
        else_=basis,
    )
    return labelled(rows.mutate(quantity=rows.chargeable, amount=rows.line_amount, basis=basis))
