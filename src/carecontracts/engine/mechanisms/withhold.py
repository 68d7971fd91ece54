"""withhold: a contract-management sanction. A percent of the actual monthly value of other
components is withheld from a month on; all of it is repaid in the month the breach is
remedied, if that is within the set period, and retained otherwise. A percent varied from a
date is applied month by month: each month withholds the percent in force in it."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import fraction_value, in_force, labelled, money_text, payments_of, percent_of, percent_text
from carecontracts.engine.price import KindContext
from carecontracts.engine.registry import register
from carecontracts.language.model import WithholdTerms
from carecontracts.money import AMOUNT_TYPE
from carecontracts.periods import add_months, month_label, month_start

COLUMNS = ["scenario", "contract", "component", "payer", "payee", "month", "amount", "basis", "origin"]


@register("withhold", measures_activity=False, summary="withholds a percent of other components' payments until a breach is remedied")
def price_withhold(context: KindContext) -> ir.Table:
    withheld_rows, settled_rows, references = [], [], []
    for placed in context.placed:
        terms: WithholdTerms = placed.component  # type: ignore[assignment]
        start = month_start(terms.from_)
        deadline = add_months(start, terms.retain_after_months)
        remedied = month_start(terms.remedied) if terms.remedied else None
        # Withheld in every month from the breach until it is remedied (or the year ends).
        stop = remedied if remedied is not None else dt.date.max
        reason = f" ({terms.reason})" if terms.reason else ""
        for month in placed.months:
            if start <= month < stop:
                percent = in_force(placed, terms.percent, month)
                words = f"withheld since {month_label(start)}{reason}: {percent_text(percent)} of {' + '.join(terms.of)} "
                withheld_rows.append((placed.contract, placed.id, placed.agreement.payee, month, fraction_value(percent), words))
        references += [(placed, name) for name in terms.of]
        settled_in = remedied if remedied is not None and remedied < deadline else deadline
        if settled_in in placed.months:
            repaid = remedied is not None and remedied < deadline
            settled_words = (
                f"remedied in {month_label(remedied)}, within {terms.retain_after_months} months: repaid " if repaid and remedied
                else f"not remedied within {terms.retain_after_months} months of {month_label(start)}: retained "
            )
            settled_rows.append((placed.contract, placed.id, settled_in, repaid, settled_words))
    months = context.table(
        {"contract": pa.string(), "component": pa.string(), "payee": pa.string(), "month": pa.date32(), "fraction": pa.decimal128(9, 6), "words": pa.string()},
        withheld_rows,
    )
    base = payments_of(context, references)
    withheld = base.join(months, ["contract", "component", "month"])
    withheld = labelled(withheld.mutate(
        amount=(-percent_of(withheld.base, withheld.fraction).round(2)).cast(AMOUNT_TYPE),
        basis=withheld.words + money_text(context, withheld.base),
    ))
    if not settled_rows:
        return withheld.select(COLUMNS)
    settlements = context.table(
        {"contract": pa.string(), "component": pa.string(), "settled_in": pa.date32(), "repaid": pa.bool_(), "settled_words": pa.string()}, settled_rows
    )
    total = withheld.group_by(["scenario", "contract", "origin", "payer", "payee"]).aggregate(held=(-withheld.amount).sum().cast(AMOUNT_TYPE))
    total = total.join(settlements, [total.contract == settlements.contract, total.origin == settlements.component])
    settlement = total.select(
        "scenario", "payer", "payee",
        contract=total.contract,
        component=total.origin,
        month=total.settled_in,
        amount=ibis.cases((total.repaid, total.held), else_=ibis.literal(0).cast(AMOUNT_TYPE)).cast(AMOUNT_TYPE),
        basis=total.settled_words + money_text(context, total.held) + " withheld",
    )
    return ibis.union(withheld.select(COLUMNS), labelled(settlement, "settlement").select(COLUMNS), distinct=False)
