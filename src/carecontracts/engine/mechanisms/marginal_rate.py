"""marginal_rate (MRET-style): activity valued at full price up to a monetary baseline,
at a marginal rate above it. Settled on the year to date with the baseline pro rata."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Sequence

import ibis
import ibis.expr.types as ir

from carecontracts.engine.mechanisms.shared import fraction_value, in_force, money_text, monthly_value, pro_rata, settle_year_to_date, valued
from carecontracts.engine.price import KindContext, Placed
from carecontracts.engine.registry import register
from carecontracts.language.model import MarginalRateTerms
from carecontracts.money import VALUE_TYPE


def marginal_value(value: ir.NumericValue, baseline: ir.NumericValue, rate: ir.NumericValue) -> ir.NumericValue:
    """Full value up to the baseline, `rate` × the value above it."""
    above = (baseline + ((value - baseline) * rate.cast("decimal(9, 6)")).cast(VALUE_TYPE)).cast(VALUE_TYPE)
    return ibis.cases((value > baseline, above), else_=value)


@register("marginal_rate", measures_activity=True, summary="activity above the baseline value is paid at the marginal rate")
def price_marginal_rate(context: KindContext) -> ir.Table:
    rows = monthly_value(valued(context))

    def parameters(placed: Placed, share: Decimal, upto: Sequence[dt.date], month: dt.date) -> dict[str, Any]:
        terms: MarginalRateTerms = placed.component  # type: ignore[assignment]
        marginal = in_force(placed, terms.marginal_percent, month)
        return {
            "baseline": pro_rata(placed, terms.baseline_value, share, upto),
            "marginal": fraction_value(marginal),
            "marginal_words": f" + {marginal.normalize():f}% × ",
        }

    def cumulative(table: ir.Table) -> ir.NumericValue:
        return marginal_value(table.ytd_value.cast(VALUE_TYPE), table.baseline.cast(VALUE_TYPE), table.marginal)

    def basis(table: ir.Table) -> ir.StringValue:
        value = table.ytd_value
        over = money_text(context, table.baseline) + table.marginal_words + money_text(context, value - table.baseline) + " above baseline"
        return (
            "year to date value " + money_text(context, value) + " against baseline " + money_text(context, table.baseline)
            + " (" + table.k.cast("string") + "/12 of the year): "
            + ibis.cases((value > table.baseline, over), else_="within baseline, paid in full")
            + " = " + money_text(context, table.due_to_date) + ", less " + money_text(context, table.paid_before) + " due before"
        )

    types = {"baseline": VALUE_TYPE, "marginal": "decimal(9, 6)", "marginal_words": "string"}
    lines = settle_year_to_date(context, rows, ["chargeable", "value"], parameters, types, cumulative, basis)
    return lines.mutate(quantity=lines.chargeable)
