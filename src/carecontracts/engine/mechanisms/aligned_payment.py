"""aligned_payment (NHS aligned payment and incentive): a fixed element paid like a block,
plus a variable element = (actual value − planned value) × variable rate on the year to
date, with an optional downside rate and floor."""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import fixed_schedule, money_text, monthly_value, pro_rata, settle_year_to_date, valued
from carecontracts.engine.price import PricingContext, fraction
from carecontracts.engine.registry import register
from carecontracts.language.model import AlignedPaymentTerms
from carecontracts.money import QUANTITY_TYPE, VALUE_TYPE


def variable_amount(actual: ir.NumericValue, planned: ir.NumericValue, up: Decimal, down: Decimal) -> ir.NumericValue:
    """(actual − planned) × the rate for the side of plan it falls on."""
    difference = (actual - planned).cast(VALUE_TYPE)
    up_rate = ibis.literal(up, type="decimal(9, 6)")
    down_rate = ibis.literal(down, type="decimal(9, 6)")
    return ibis.cases(
        (difference >= 0, (difference * up_rate).cast(VALUE_TYPE)),
        else_=(difference * down_rate).cast(VALUE_TYPE),
    )


def _planned(context: PricingContext, terms: AlignedPaymentTerms) -> ir.Table:
    """Monthly planned value per payer from the plans data: a plan row naming a commissioner
    is that commissioner's; a row naming none is the contract's, split by payer share."""
    plans = context.inputs.plans
    if plans is None:
        raise context.problem("no plans are loaded and no planned_value is given", "planned_value", "planned_value: or files in data/plans/")
    if "commissioner" not in plans.columns:
        plans = plans.mutate(commissioner=ibis.literal(None, type="string"))
    services = context.agreement.component_services(terms)
    relevant = plans.filter(plans.contract == context.agreement.id, plans.service.isin(services), plans.month.isin(context.months))
    shares = context.engine.put(
        pa.table(
            {
                "payer": pa.array([p.id for p in context.agreement.payers], pa.string()),
                "share": pa.array([p.share for p in context.agreement.payers], pa.decimal128(10, 6)),
            }
        )
    )
    whole = relevant.filter(relevant.commissioner.isnull()).group_by("month").aggregate(plan=relevant.planned_value.sum())
    whole = whole.cross_join(shares)
    whole = whole.select("payer", "month", plan=(whole.plan.cast(VALUE_TYPE) * whole.share).cast(VALUE_TYPE))
    own = relevant.filter(relevant.commissioner.notnull())
    own = own.group_by(payer=own.commissioner, month=own.month).aggregate(plan=own.planned_value.sum().cast(VALUE_TYPE))
    planned = ibis.union(whole, own.select("payer", "month", "plan"), distinct=False)
    spread = context.scenarios().cross_join(planned)
    return spread.select("scenario", "payer", month=spread.month.cast("date"), plan=spread.plan)


@register(
    "aligned_payment",
    measures_activity=True,
    summary="the fixed element does not depend on activity; the variable element pays the variable rate on value above or below plan",
    parts={"fixed": "the fixed element does not depend on activity", "variable": "the variable element pays the variable rate on value above or below plan"},
)
def price_aligned_payment(context: PricingContext) -> ir.Table:
    terms: AlignedPaymentTerms = context.component  # type: ignore[assignment]
    up = fraction(terms.variable_percent)
    down = fraction(terms.downside_percent if terms.downside_percent is not None else terms.variable_percent)
    fixed = fixed_schedule(context, terms.fixed, terms.profile, "aligned payment fixed element", f"{terms.id}.fixed")

    rows = monthly_value(valued(context))
    measures = ["chargeable", "value"]
    zero_value = ibis.literal(0).cast(VALUE_TYPE)
    actual = rows.mutate(plan=zero_value)
    if terms.planned_value is None:
        planned = _planned(context, terms)
        planned = planned.select("scenario", "payer", "month", chargeable=ibis.literal(0).cast(actual.chargeable.type()), value=zero_value, plan=planned.plan)
        monthly = ibis.union(actual, planned, distinct=False)
        measures.append("plan")
    else:
        monthly = actual

    annual = {name: value for name, value in (("floor", terms.variable_floor), ("planned", terms.planned_value)) if value is not None}

    def parameters(share: Decimal, k: int) -> dict[str, Decimal]:
        return {name: pro_rata(value, share, k) for name, value in annual.items()}

    types = {name: VALUE_TYPE for name in annual}

    def planned_to_date(table: ir.Table) -> ir.NumericValue:
        return table.planned.cast(VALUE_TYPE) if terms.planned_value is not None else table.ytd_plan.cast(VALUE_TYPE)

    def cumulative(table: ir.Table) -> ir.NumericValue:
        amount = variable_amount(table.ytd_value.cast(VALUE_TYPE), planned_to_date(table), up, down)
        if terms.variable_floor is not None:
            amount = ibis.greatest(amount, table.floor.cast(VALUE_TYPE))
        return amount

    def basis(table: ir.Table) -> ir.StringValue:
        planned = planned_to_date(table)
        rate = ibis.cases((table.ytd_value >= planned, f"{terms.variable_percent.normalize():f}%"), else_=f"{(terms.downside_percent if terms.downside_percent is not None else terms.variable_percent).normalize():f}%")
        text = (
            "variable element, year to date: (actual " + money_text(context, table.ytd_value) + " − plan " + money_text(context, planned)
            + ") × " + rate
        )
        if terms.variable_floor is not None:
            text = text + " (floor " + money_text(context, table.floor) + ")"
        return text + " = " + money_text(context, table.due_to_date) + ", less " + money_text(context, table.paid_before) + " due before"

    variable = settle_year_to_date(context, monthly, measures, parameters, types, cumulative, basis, f"{terms.id}.variable")
    variable = variable.mutate(quantity=variable.chargeable.cast(QUANTITY_TYPE))
    return ibis.union(
        fixed.mutate(quantity=ibis.literal(None, type=QUANTITY_TYPE)).select("scenario", "contract", "component", "payer", "payee", "month", "amount", "basis", "quantity"),
        variable.select("scenario", "contract", "component", "payer", "payee", "month", "amount", "basis", "quantity"),
        distinct=False,
    )
