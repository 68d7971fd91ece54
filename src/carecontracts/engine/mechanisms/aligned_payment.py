"""aligned_payment (NHS aligned payment and incentive): a fixed element paid like a block,
plus a variable element = (actual value − planned value) × variable rate on the year to
date, with an optional downside rate and floor."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Sequence

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import COMPONENT_KEYS, fixed_schedule, fraction_value, in_force, money_text, monthly_value, pro_rata, settle_year_to_date, valued
from carecontracts.engine.price import KindContext, Placed
from carecontracts.engine.registry import register
from carecontracts.language.model import AlignedPaymentTerms
from carecontracts.money import QUANTITY_TYPE, VALUE_TYPE


def variable_amount(actual: ir.NumericValue, planned: ir.NumericValue, up: ir.NumericValue, down: ir.NumericValue) -> ir.NumericValue:
    """(actual − planned) × the rate for the side of plan it falls on."""
    difference = (actual - planned).cast(VALUE_TYPE)
    return ibis.cases(
        (difference >= 0, (difference * up.cast("decimal(9, 6)")).cast(VALUE_TYPE)),
        else_=(difference * down.cast("decimal(9, 6)")).cast(VALUE_TYPE),
    )


def _planned(context: KindContext, placed: list[Placed]) -> ir.Table:
    """Monthly planned value per component and payer from the plans data: a plan row naming
    a commissioner is that commissioner's; a row naming none is the contract's, split by
    payer share."""
    plans = context.inputs.plans
    if plans is None:
        raise context.fail([p.problem("no plans are loaded and no planned_value is given", "planned_value", "planned_value: or files in data/plans/") for p in placed[:20]])
    if "commissioner" not in plans.columns:
        plans = plans.mutate(commissioner=ibis.literal(None, type="string"))
    services = context.table(
        {"contract": pa.string(), "component": pa.string(), "service": pa.string()},
        ((p.contract, p.id, name) for p in placed for name in p.agreement.component_services(p.component)),
    )
    shares = context.table(
        {"contract": pa.string(), "component": pa.string(), "payer": pa.string(), "share": pa.decimal128(10, 6)},
        ((p.contract, p.id, payer.id, payer.share) for p in placed for payer in p.agreement.payers),
    )
    subset = context.subset(placed)
    relevant = plans.join(services, ["contract", "service"])
    relevant = relevant.mutate(month=relevant.month.cast("date")).semi_join(subset.months(), ["contract", "component", "month"])
    _refuse_components_without_plans(context, placed, relevant)
    whole = relevant.filter(relevant.commissioner.isnull())
    whole = whole.group_by(["contract", "component", "month"]).aggregate(plan=whole.planned_value.sum())
    whole = whole.join(shares, ["contract", "component"])
    whole = whole.select("contract", "component", "payer", "month", plan=(whole.plan.cast(VALUE_TYPE) * whole.share).cast(VALUE_TYPE))
    own = relevant.filter(relevant.commissioner.notnull())
    own = own.group_by(["contract", "component", own.commissioner.name("payer"), "month"]).aggregate(plan=own.planned_value.sum().cast(VALUE_TYPE))
    planned = ibis.union(whole, own.select("contract", "component", "payer", "month", "plan"), distinct=False)
    return context.scenarios().cross_join(planned)


def _refuse_components_without_plans(context: KindContext, placed: list[Placed], relevant: ir.Table) -> None:
    """A component planned from the data with no plan row in its term would be paid against a
    plan of nothing without a word: refused, naming the services it looked for."""
    have = {(r["contract"], r["component"]) for r in context.engine.to_arrow(relevant.select("contract", "component").distinct()).to_pylist()}
    missing = [p for p in placed if p.months and (p.contract, p.id) not in have]
    if missing:
        raise context.fail([
            p.problem(f"no plan rows for {p.contract}'s {', '.join(p.agreement.component_services(p.component))} in its term, and no planned_value is given",
                      "planned_value", "planned_value: or rows (contract, service, month, planned_value) in data/plans/")
            for p in missing[:20]
        ])


@register(
    "aligned_payment",
    measures_activity=True,
    summary="the fixed element does not depend on activity; the variable element pays the variable rate on value above or below plan",
    parts={"fixed": "the fixed element does not depend on activity", "variable": "the variable element pays the variable rate on value above or below plan"},
)
def price_aligned_payment(context: KindContext) -> ir.Table:
    items = []
    for placed in context.placed:
        terms: AlignedPaymentTerms = placed.component  # type: ignore[assignment]
        items.append((placed, terms.fixed, terms.profile, "aligned payment fixed element"))
    fixed = fixed_schedule(context, items, "fixed")

    rows = monthly_value(valued(context))
    zero_value = ibis.literal(0).cast(VALUE_TYPE)
    actual = rows.mutate(plan=zero_value)
    from_plans = [p for p in context.placed if p.component.planned_value is None]  # type: ignore[union-attr]
    if from_plans:
        planned = _planned(context, from_plans)
        planned = planned.select(*COMPONENT_KEYS, chargeable=ibis.literal(0).cast(actual.chargeable.type()), value=zero_value, plan=planned.plan)
        monthly = ibis.union(actual, planned.select(actual.columns), distinct=False)
    else:
        monthly = actual

    def parameters(placed: Placed, share: Decimal, upto: Sequence[dt.date], month: dt.date) -> dict[str, Any]:
        terms: AlignedPaymentTerms = placed.component  # type: ignore[assignment]
        up = in_force(placed, terms.variable_percent, month)
        down = in_force(placed, terms.downside_percent, month) if terms.downside_percent is not None else up
        return {
            "floor": pro_rata(placed, terms.variable_floor, share, upto),
            "planned": pro_rata(placed, terms.planned_value, share, upto),
            "up": fraction_value(up),
            "down": fraction_value(down),
            "up_words": f"{up.normalize():f}%",
            "down_words": f"{down.normalize():f}%",
        }

    types = {"floor": VALUE_TYPE, "planned": VALUE_TYPE, "up": "decimal(9, 6)", "down": "decimal(9, 6)", "up_words": "string", "down_words": "string"}

    def planned_to_date(table: ir.Table) -> ir.NumericValue:
        return ibis.cases((table.planned.notnull(), table.planned.cast(VALUE_TYPE)), else_=table.ytd_plan.cast(VALUE_TYPE))

    def cumulative(table: ir.Table) -> ir.NumericValue:
        amount = variable_amount(table.ytd_value.cast(VALUE_TYPE), planned_to_date(table), table.up, table.down)
        return ibis.cases((table.floor.notnull(), ibis.greatest(amount, table.floor.cast(VALUE_TYPE))), else_=amount)

    def basis(table: ir.Table) -> ir.StringValue:
        planned = planned_to_date(table)
        rate = ibis.cases((table.ytd_value >= planned, table.up_words), else_=table.down_words)
        text = "variable element, year to date: (actual " + money_text(context, table.ytd_value) + " − plan " + money_text(context, planned) + ") × " + rate
        text = ibis.cases((table.floor.notnull(), text + " (floor " + money_text(context, table.floor) + ")"), else_=text)
        return text + " = " + money_text(context, table.due_to_date) + ", less " + money_text(context, table.paid_before) + " due before"

    variable = settle_year_to_date(context, monthly, ["chargeable", "value", "plan"], parameters, types, cumulative, basis, "variable")
    variable = variable.mutate(quantity=variable.chargeable.cast(QUANTITY_TYPE))
    columns = ["scenario", "contract", "component", "payer", "payee", "month", "amount", "basis", "quantity", "origin"]
    return ibis.union(
        fixed.mutate(quantity=ibis.literal(None, type=QUANTITY_TYPE)).select(columns),
        variable.select(columns),
        distinct=False,
    )
