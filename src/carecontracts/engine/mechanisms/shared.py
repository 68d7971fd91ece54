"""Building blocks several mechanisms share: fixed schedules, valuing activity at prices,
and year-to-date settlement."""

from __future__ import annotations

from decimal import Decimal
from typing import Callable, Sequence, cast

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.price import PricingContext
from carecontracts.language.model import PricedTerms, value_on
from carecontracts.money import AMOUNT_TYPE, FACTOR_TYPE, OPERAND_TYPE, QUANTITY_TYPE, RATE_TYPE, SHARE_TYPE, SHARED_TYPE, VALUE_TYPE, format_money, split_exactly, to_pence
from carecontracts.periods import month_label

DECIMAL_ARROW = {
    AMOUNT_TYPE: pa.decimal128(18, 2),
    QUANTITY_TYPE: pa.decimal128(20, 8),
    VALUE_TYPE: pa.decimal128(28, 10),
    FACTOR_TYPE: pa.decimal128(10, 6),
}


def _arrow_decimal(kind: str) -> pa.DataType:
    return DECIMAL_ARROW[kind]


def fixed_schedule(
    context: PricingContext,
    annual: Decimal,
    profile: Sequence[Decimal] | None,
    describe: str,
    component: str | None = None,
) -> ir.Table:
    """Lines paying a fixed annual value by profile (equal twelfths by default).

    Each payer's share of the annual value is split first, then profiled by month; the
    last payable month absorbs rounding so every payer's year sums exactly.
    """
    year_months = context.inputs.year.months
    weights = dict(zip(year_months, profile or [Decimal(1)] * 12))
    months = context.months
    payable = [weights[m] for m in months]
    all_weight = sum(weights.values(), Decimal(0))
    total = to_pence(annual * sum(payable, Decimal(0)) / all_weight) if months else Decimal(0)
    payers = context.agreement.payers
    per_payer = split_exactly(total, [p.share for p in payers]) if months else []
    rows: dict[str, list] = {k: [] for k in ("payer", "month", "amount", "basis")}
    profile_words = "by profile" if profile else "in equal twelfths"
    for payer, payer_total in zip(payers, per_payer):
        parts = split_exactly(payer_total, payable) if sum(payable) > 0 else [Decimal(0)] * len(months)
        share_words = f", {payer.id}'s share {payer.share.normalize():f}" if len(payers) > 1 else ""
        for position, (month, amount) in enumerate(zip(months, parts), start=1):
            tail = " (absorbs rounding)" if position == len(months) and len(months) > 1 else ""
            rows["payer"].append(payer.id)
            rows["month"].append(month)
            rows["amount"].append(amount)
            rows["basis"].append(
                f"{describe}: {format_money(annual)} a year{share_words}, paid {profile_words}; "
                f"month {year_months.index(month) + 1} of 12{tail}"
            )
    table = pa.table(
        {
            "payer": pa.array(rows["payer"], pa.string()),
            "month": pa.array(rows["month"], pa.date32()),
            "amount": pa.array(rows["amount"], pa.decimal128(18, 2)),
            "basis": pa.array(rows["basis"], pa.string()),
        }
    )
    schedule = context.engine.put(table)
    lines = context.scenarios().cross_join(schedule)
    return lines.mutate(
        contract=ibis.literal(context.agreement.id),
        component=ibis.literal(component or context.component.id),
        payee=ibis.literal(context.agreement.payee),
    )


def monthly_factor(context: PricingContext, name: str) -> ir.Table:
    """A dated factor (like the MFF) as a table of its value in each payable month."""
    parameter = getattr(context.component, name)
    months, values = [], []
    for month in context.months:
        day = max(month, context.agreement.term.start)
        value = value_on(parameter, day)
        if value is None:
            raise context.problem(f"no value of '{name}' covers {month_label(month)}", name, "dated values covering the whole term")
        months.append(month)
        values.append(value)
    return context.engine.put(
        pa.table({"month": pa.array(months, pa.date32()), name: pa.array(values, pa.decimal128(10, 6))})
    )


def valued(context: PricingContext) -> ir.Table:
    """Tallies of the payable months with unit price, MFF, rate (= price × MFF), the line
    amount (chargeable × rate rounded half-up to pence from the exact product), and its
    value to 10 places in two parts that `value_sum` adds up.

    Tallies whose price list has no price are found beforehand by `price.check_prices`.
    """
    component = cast(PricedTerms, context.component)
    tallies = context.tallies()
    tallies = tallies.filter(tallies.month.isin(context.months))
    prices = context.inputs.prices
    if prices is None:
        raise context.problem("no prices are loaded", "prices", "run `carecontracts load` with files in prices/")
    prices = prices.filter(prices.price_list == component.prices)
    # Each currency's rate in each payable month, so tallies join it on equal keys.
    factor = monthly_factor(context, "mff")
    rates = factor.join(prices, [prices.valid_from <= factor.month, prices.valid_to >= factor.month])
    # A price has at most 4 places and an MFF 6, so the rate (10 places) is exact.
    rates = rates.select(
        "currency", "month", "unit_price", "mff", rate=(rates.unit_price.cast("decimal(18, 6)") * rates.mff.cast(FACTOR_TYPE)).cast(RATE_TYPE)
    )
    joined = tallies.left_join(with_rate_parts(rates, "rate"), ["currency", "month"]).drop("currency_right", "month_right")
    return with_rounded_product(joined, "chargeable")


RATE_PARTS = ("rate_negative", "rate_whole", "rate_fraction")


def with_rate_parts(table: ir.Table, rate: str) -> ir.Table:
    """`table` with the parts of a rate (RATE_TYPE) that `with_rounded_product` multiplies
    by: whether it is negative, and the whole and fractional parts of its size."""
    size = table[rate].cast(OPERAND_TYPE).abs()
    return table.mutate(
        rate_negative=table[rate] < 0,
        rate_whole=size.floor().cast("decimal(8, 0)"),
        rate_fraction=(size - size.floor()).cast("decimal(10, 10)"),
    )


def with_rounded_product(table: ir.Table, quantity: str) -> ir.Table:
    """`table` (with `with_rate_parts`) plus quantity × rate as `line_amount`, rounded half-up
    to pence, and as `value_whole` + `value_fraction`, rounded half-up to 10 places: exact,
    yet with no 128-bit rescaling per row, which is DuckDB's slowest step in pricing."""
    # Rounding the exact 36-digit product, or adding 28-digit values, is 128-bit work per row
    # (DuckDB divides by powers of ten in software); here each row's steps stay within 18
    # digits. A quantity has at most 8 places and a rate 10 (their types), both below 10^8
    # in size (OPERAND_TYPE), so with q = qw + qf and r = rw + rf (whole and fractional
    # parts of their sizes): q × r = qw·rw (16 digits, whole) + qw·rf (18 digits, 10 places)
    # + qf·rw (16, 8 places) + qf·rf (18, 18 places, below 1).
    # To 10 places only the last part needs rounding; the value is kept as its whole pounds
    # (18 digits) and the rest (below 3, 10 places), which `value_sum` adds up per group.
    # To pence, each of the last three parts is its pence (half-up) plus a remainder in
    # [−0.005, 0.005); with S the sum of the pence and E of the remainders (in
    # [−0.015, 0.015)), S + E ≥ 0 rounds half-up to S + floor(100E + ½)/100, which comparing
    # E with ±0.005 finds. Sizes are rounded and the sign applied last, as half-up rounding
    # is symmetric about zero on every backend (and in Python's ROUND_HALF_UP).
    q = table[quantity].cast("decimal(16, 8)")  # QUANTITY_TYPE's places, OPERAND_TYPE's size
    t = table.mutate(
        rp_negative=(q < 0) != table.rate_negative,
        rp_qw=q.abs().floor().cast("decimal(8, 0)"),
        rp_qf=(q.abs() - q.abs().floor()).cast("decimal(8, 8)"),
        rp_rw=table.rate_whole,
        rp_rf=table.rate_fraction,
    )
    t = t.mutate(
        rp_whole=(t.rp_qw * t.rp_rw).cast("decimal(16, 0)"),
        rp_part0=(t.rp_qw * t.rp_rf).cast("decimal(18, 10)"),
        rp_part1=(t.rp_qf * t.rp_rw).cast("decimal(16, 8)"),
        rp_part2=(t.rp_qf * t.rp_rf).cast("decimal(18, 18)"),
    )
    parts = [t.rp_part0, t.rp_part1, t.rp_part2]
    pence = [part.round(2).cast(f"decimal({part.type().precision}, 2)") for part in parts]
    # The remainders to 18 places, in 19 digits: the last part's pence may be 1.00.
    rest = (parts[0] - pence[0]).cast("decimal(19, 18)") + (parts[1] - pence[1]).cast("decimal(19, 18)")
    rest = rest + (parts[2].cast("decimal(19, 18)") - pence[2].cast("decimal(19, 18)"))
    pounds = [parts[0].floor().cast("decimal(8, 0)"), parts[1].floor().cast("decimal(8, 0)")]
    t = t.mutate(
        rp_pence=t.rp_whole.cast("decimal(19, 2)") + pence[0] + pence[1] + pence[2],
        rp_rest=rest,
        rp_pounds=(t.rp_whole.cast("decimal(18, 0)") + pounds[0] + pounds[1]).cast("decimal(18, 0)"),
        rp_places=(
            (parts[0] - pounds[0]).cast("decimal(11, 10)") + (parts[1] - pounds[1]).cast("decimal(11, 10)") + parts[2].round(10).cast("decimal(11, 10)")
        ).cast("decimal(11, 10)"),
    )
    step = ibis.cases((t.rp_rest >= Decimal("0.005"), Decimal("0.01")), (t.rp_rest >= Decimal("-0.005"), Decimal("0")), else_=Decimal("-0.01"))
    size = (t.rp_pence + step.cast("decimal(3, 2)")).cast(AMOUNT_TYPE)
    return t.select(
        *[name for name in table.columns if name not in RATE_PARTS],
        line_amount=ibis.cases((t.rp_negative, (-size).cast(AMOUNT_TYPE)), else_=size),
        value_whole=ibis.cases((t.rp_negative, (-t.rp_pounds).cast("decimal(18, 0)")), else_=t.rp_pounds),
        value_fraction=ibis.cases((t.rp_negative, (-t.rp_places).cast("decimal(11, 10)")), else_=t.rp_places),
    )


def value_sum(rows: ir.Table) -> ir.NumericValue:
    """Σ value of valued rows (VALUE_TYPE), as 64-bit sums of its two parts added once."""
    return (rows.value_whole.sum().cast(VALUE_TYPE) + rows.value_fraction.sum().cast(VALUE_TYPE)).cast(VALUE_TYPE)


def monthly_value(rows: ir.Table) -> ir.Table:
    """Valued rows summed per scenario, payer and month: `chargeable` and `value`."""
    grouped = rows.group_by(["scenario", "payer", "month"])
    return grouped.aggregate(chargeable=rows.chargeable.sum().cast("decimal(38, 8)"), value=value_sum(rows))


def settle_year_to_date(
    context: PricingContext,
    monthly: ir.Table,
    measures: Sequence[str],
    parameters: Callable[[Decimal, int], dict[str, Decimal]],
    parameter_types: dict[str, str],
    cumulative: Callable[[ir.Table], ir.NumericValue],
    basis: Callable[[ir.Table], ir.StringValue],
    component: str | None = None,
) -> ir.Table:
    """Settle a mechanism that is defined on the year's totals, month by month.

    For each payer and payable month k, `cumulative` gives the amount due for the year to
    date (with annual parameters pro rata k/12 × the payer's share, from `parameters`);
    the month's line is that, rounded to pence, less what the previous months' rounded
    cumulative amounts were. The year's lines therefore sum exactly to the annual rule.
    """
    spine_rows: dict[str, list] = {"payer": [], "month": [], "k": []}
    for name in parameter_types:
        spine_rows[name] = []
    for payer in context.agreement.payers:
        for k, month in enumerate(context.months, start=1):
            spine_rows["payer"].append(payer.id)
            spine_rows["month"].append(month)
            spine_rows["k"].append(k)
            for name, value in parameters(payer.share, k).items():
                spine_rows[name].append(value)
    columns = {
        "payer": pa.array(spine_rows["payer"], pa.string()),
        "month": pa.array(spine_rows["month"], pa.date32()),
        "k": pa.array(spine_rows["k"], pa.int64()),
    }
    for name, kind in parameter_types.items():
        columns[name] = pa.array(spine_rows[name], _arrow_decimal(kind))
    spine = context.scenarios().cross_join(context.engine.put(pa.table(columns)))
    totals = monthly.group_by(["scenario", "payer", "month"]).aggregate(**{m: monthly[m].sum() for m in measures})
    table = spine.left_join(totals, ["scenario", "payer", "month"]).drop("scenario_right", "payer_right", "month_right")
    table = table.mutate(**{m: table[m].fill_null(0) for m in measures})
    window = ibis.window(group_by=["scenario", "payer"], order_by="month", preceding=None, following=0)
    table = table.mutate(**{f"ytd_{m}": table[m].sum().over(window) for m in measures})
    table = table.mutate(cumulative=cumulative(table).cast(VALUE_TYPE))
    table = table.mutate(due_to_date=table.cumulative.round(2).cast(AMOUNT_TYPE))
    previous = ibis.window(group_by=["scenario", "payer"], order_by="month")
    table = table.mutate(paid_before=table.due_to_date.lag().over(previous).fill_null(0).cast(AMOUNT_TYPE))
    table = table.mutate(amount=(table.due_to_date - table.paid_before).cast(AMOUNT_TYPE))
    return table.mutate(
        contract=ibis.literal(context.agreement.id),
        component=ibis.literal(component or context.component.id),
        payee=ibis.literal(context.agreement.payee),
        basis=basis(table),
    )


def money_text(context: PricingContext, value: ir.NumericValue) -> ir.StringValue:
    """£1,234.56 (with a leading minus for negatives) as an engine expression; rounded
    half-up to pence first, as money is, since the engines' formatting rounds differently."""
    value = value.cast(VALUE_TYPE)
    formatted = context.engine.number(value.abs().round(2), 2)
    return ibis.cases((value < 0, "-£" + formatted), else_="£" + formatted)


def price_text(context: PricingContext, value: ir.NumericValue) -> ir.StringValue:
    """A unit price as used: £168.00, or £65.5602 when it has more than pence."""
    whole_pence = value == value.round(2)
    return ibis.cases((whole_pence, "£" + context.engine.number(value, 2)), else_="£" + context.engine.number(value, 4))


def number_text(context: PricingContext, value: ir.NumericValue, places: int = 2) -> ir.StringValue:
    """A quantity as text: whole numbers without decimals, others to `places`."""
    # A bounded type first: Spark compares a decimal(38, s) with its rounding at scale 0.
    value = value.cast("decimal(28, 8)")
    whole = context.engine.number(value, 0)
    precise = context.engine.number(value, places)
    return ibis.cases((value == value.round(0), whole), else_=precise)


def pro_rata(value: Decimal, share: Decimal, k: int, months: int = 12) -> Decimal:
    """value × share × k/12, to 8 places (only the year's final value needs to be exact)."""
    return (value * share * k / months).quantize(Decimal("0.00000001"))



def payments_of(context: PricingContext, components: Sequence[str]) -> ir.Table:
    """Monthly payments per scenario and payer of other components of this agreement (those
    this component's terms refer to), as `base`."""
    parts = [context.lines_of(name) for name in components]
    lines = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
    lines = lines.filter(lines.month.isin(context.months))
    return lines.group_by(["scenario", "payer", "month"]).aggregate(base=lines.amount.sum().cast(AMOUNT_TYPE))


def percent_of(amount: ir.NumericValue, percent: Decimal) -> ir.NumericValue:
    """amount × percent / 100 as an exact value (to be rounded once, to a line)."""
    return (amount.cast(VALUE_TYPE) * ibis.literal(percent / 100, type="decimal(9, 6)")).cast(VALUE_TYPE)


def percent_text(percent: Decimal) -> str:
    """1.25 → '1.25%'."""
    return f"{percent.normalize():f}%"


def actual_cost(context: PricingContext) -> ir.Table:
    """Cost of the component's activity per scenario, payer and month (`cost`): valued at its
    price list × MFF when the terms give `prices`, else from the activity's `cost` column."""
    if getattr(context.component, "prices", None) is not None:
        rows = monthly_value(valued(context))
        return rows.select("scenario", "payer", "month", cost=rows.value)
    tallies = context.tallies()
    tallies = tallies.filter(tallies.month.isin(context.months))
    if context.engine.to_arrow(tallies.filter(tallies.cost.isnull()).select("month").limit(1)).num_rows:
        raise context.problem(
            "the activity carries no cost", "prices", "a `cost` column in the activity, or `prices:` to value it at a price list"
        )
    return tallies.select("scenario", "payer", "month", cost=tallies.cost.cast(VALUE_TYPE))


def times_share(value: ir.NumericValue, share: Decimal) -> ir.NumericValue:
    """value × a share between 0 and 1, taken to 10 places (so a third is 0.3333333333:
    exact to the penny for values up to £50m a line), as an exact VALUE."""
    exact = share.quantize(Decimal("0.0000000001"))
    if not 0 <= exact <= 1:
        raise ValueError(f"a share must be between 0 and 1, not {share}")
    return (value.cast(SHARED_TYPE) * ibis.literal(exact, type=SHARE_TYPE)).cast(VALUE_TYPE)
