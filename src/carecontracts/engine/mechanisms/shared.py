"""Building blocks several mechanisms share: fixed schedules, valuing activity at prices,
and year-to-date settlement."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Callable, Sequence, cast

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.price import KindContext, Placed
from carecontracts.language.model import Dated, PricedTerms, value_on
from carecontracts.money import AMOUNT_TYPE, FACTOR_TYPE, OPERAND_TYPE, QUANTITY_TYPE, RATE_TYPE, SHARE_TYPE, SHARED_TYPE, VALUE_TYPE, currency_symbol, format_money, split_exactly, to_pence
from carecontracts.periods import month_label

DECIMAL_ARROW = {
    "decimal(9, 6)": pa.decimal128(9, 6),
    "decimal(18, 2)": pa.decimal128(18, 2),
    "decimal(18, 6)": pa.decimal128(18, 6),
    AMOUNT_TYPE: pa.decimal128(18, 2),
    QUANTITY_TYPE: pa.decimal128(20, 8),
    VALUE_TYPE: pa.decimal128(28, 10),
    FACTOR_TYPE: pa.decimal128(10, 6),
}


def _arrow_type(kind: str) -> pa.DataType:
    return pa.string() if kind == "string" else DECIMAL_ARROW[kind]


def labelled(lines: ir.Table, part: str | None = None) -> ir.Table:
    """Lines keyed by their component's id as `origin`, and named `<id>.<part>` for a part."""
    lines = lines.mutate(origin=lines.component)
    return lines.mutate(component=lines.component + f".{part}") if part else lines


def in_force(placed: Placed, term: Dated, month: dt.date) -> Decimal:
    """A term's value in force in a payable month (on the first day of the month, or of the
    agreement's term when it starts later); contracts are checked for gaps when loaded."""
    value = value_on(term, max(month, placed.agreement.term.start))
    assert value is not None, f"{placed.contract} {placed.id}: a dated term has a gap in {month}"
    return value


def runs_in_force(placed: Placed, term: Dated, months: Sequence[dt.date]) -> list[tuple[Decimal, int]]:
    """A term's values in force over `months`, in order, as (value, months in a row at it):
    a term varied from October over a year is [(old, 6), (new, 6)]."""
    runs: list[tuple[Decimal, int]] = []
    for month in months:
        value = in_force(placed, term, month)
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 1)
        else:
            runs.append((value, 1))
    return runs


def runs_text(runs: Sequence[tuple[Decimal, int]], shown: Callable[[Decimal], str]) -> str:
    """'£3,000,000.00 for 6 months, £3,100,000.00 for 6 months'."""
    return ", ".join(f"{shown(value)} for {count} month{'s' if count != 1 else ''}" for value, count in runs)


def fixed_schedule(
    context: KindContext,
    items: Sequence[tuple[Placed, Dated, Sequence[Decimal] | None, str]],
    part: str | None = None,
) -> ir.Table:
    """Lines paying fixed annual values by profile (equal twelfths by default), one item
    (component, annual value, profile, description) each, as one table of terms. An annual
    value varied from a date pays the value in force in each month.

    Each payer's share of the year's value is split first, then profiled by month; the
    last payable month absorbs rounding so every payer's year sums exactly.
    """
    year_months = context.year.months
    rows = []
    for placed, annual, profile, describe in items:
        weights = dict(zip(year_months, profile or [Decimal(1)] * 12))
        months = placed.months
        all_weight = sum(weights.values(), Decimal(0))
        if isinstance(annual, Decimal):
            values = [annual] * len(months)
            payable = [weights[m] for m in months]
            total = to_pence(annual * sum(payable, Decimal(0)) / all_weight) if months else Decimal(0)
        else:
            values = [in_force(placed, annual, m) for m in months]
            payable = [value * weights[m] for m, value in zip(months, values)]
            total = to_pence(sum(payable, Decimal(0)) / all_weight) if months else Decimal(0)
        payers = placed.agreement.payers
        per_payer = split_exactly(total, [p.share for p in payers]) if months else []
        profile_words = "by profile" if profile else "in equal twelfths"
        for payer, payer_total in zip(payers, per_payer):
            parts = split_exactly(payer_total, payable) if sum(payable) > 0 else [Decimal(0)] * len(months)
            share_words = f", {payer.id}'s share {payer.share.normalize():f}" if len(payers) > 1 else ""
            for position, (month, amount, value) in enumerate(zip(months, parts, values), start=1):
                tail = " (absorbs rounding)" if position == len(months) and len(months) > 1 else ""
                basis = (
                    f"{describe}: {format_money(value)} a year{share_words}, paid {profile_words}; "
                    f"month {year_months.index(month) + 1} of 12{tail}"
                )
                rows.append((placed.contract, placed.id, placed.agreement.payee, payer.id, month, amount, basis))
    types = {
        "contract": pa.string(), "component": pa.string(), "payee": pa.string(), "payer": pa.string(),
        "month": pa.date32(), "amount": pa.decimal128(18, 2), "basis": pa.string(),
    }
    return labelled(context.scenarios().cross_join(context.table(types, rows)), part)


def monthly_factor(context: KindContext, name: str) -> ir.Table:
    """A dated factor (like the MFF) as a table of its value in each payable month of
    every component of the kind."""
    rows = []
    problems = []
    for placed in context.placed:
        parameter = getattr(placed.component, name)
        for month in placed.months:
            day = max(month, placed.agreement.term.start)
            value = value_on(parameter, day)
            if value is None:
                problems.append(placed.problem(f"no value of '{name}' covers {month_label(month)}", name, "dated values covering the whole term"))
                break
            rows.append((placed.contract, placed.id, month, value))
    if problems:
        raise context.fail(problems)
    types = {"contract": pa.string(), "component": pa.string(), "month": pa.date32(), name: pa.decimal128(10, 6)}
    return context.table(types, rows)


def valued(context: KindContext) -> ir.Table:
    """Tallies of the payable months with unit price, MFF, rate (= price × MFF), the line
    amount (chargeable × rate rounded half-up to pence from the exact product), and its
    value to 10 places in two parts that `value_sum` adds up.

    Tallies whose price list has no price are found beforehand by `price.check_prices`.
    """
    prices = context.inputs.prices
    if prices is None:
        raise context.fail([p.problem("no prices are loaded", "prices", "run `carecontracts load` with files in prices/") for p in context.placed[:20]])
    lists = context.table(
        {"contract": pa.string(), "component": pa.string(), "price_list": pa.string()},
        ((p.contract, p.id, cast(PricedTerms, p.component).prices) for p in context.placed),
    )
    tallies = context.tallies()
    factor = monthly_factor(context, "mff")
    rows = tallies.join(factor, ["contract", "component", "month"]).join(lists, ["contract", "component"])
    # A price has at most 4 places and an MFF 6, so the rate (10 places) is exact.
    joined = rows.left_join(
        prices,
        [rows.price_list == prices.price_list, rows.currency == prices.currency, prices.valid_from <= rows.month, prices.valid_to >= rows.month],
    )
    joined = joined.select(
        *tallies.columns, "mff", "unit_price",
        rate=(joined.unit_price.cast("decimal(18, 6)") * joined.mff.cast(FACTOR_TYPE)).cast(RATE_TYPE),
    )
    return with_rounded_product(with_rate_parts(joined, "rate"), "chargeable")


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
    """Valued rows summed per scenario, component, payer and month: `chargeable` and `value`."""
    grouped = rows.group_by(["scenario", "contract", "component", "payer", "month"])
    return grouped.aggregate(chargeable=rows.chargeable.sum().cast("decimal(38, 8)"), value=value_sum(rows))


COMPONENT_KEYS = ["scenario", "contract", "component", "payer", "month"]


def settle_year_to_date(
    context: KindContext,
    monthly: ir.Table,
    measures: Sequence[str],
    parameters: Callable[[Placed, Decimal, Sequence[dt.date], dt.date], dict[str, Any]],
    parameter_types: dict[str, str],
    cumulative: Callable[[ir.Table], ir.NumericValue],
    basis: Callable[[ir.Table], ir.StringValue],
    part: str | None = None,
) -> ir.Table:
    """Settle a mechanism that is defined on the year's totals, month by month, for every
    component of the kind at once.

    For each component, payer and payable month, `cumulative` gives the amount due for the
    year to date under the terms in force that month: `parameters(placed, share, upto,
    month)` gives annual terms pro rata over the months `upto` (× the payer's share, see
    `pro_rata`), rates in force in `month`, and a component's fixed terms and words, as
    columns. The month's line is that, rounded to pence, less what the year to date before
    it was worth under the same terms, rounded. Under unchanging terms that is what was due
    before, so the year's lines sum exactly to the annual rule; a term varied from a month
    changes what the year to date is worth from that month on, never the months before.
    """
    rows = []
    for placed in context.placed:
        months = placed.months
        for payer in placed.agreement.payers:
            for k, month in enumerate(months, start=1):
                now = parameters(placed, payer.share, months[:k], month)
                before = parameters(placed, payer.share, months[: k - 1], month)
                rows.append((placed.contract, placed.id, placed.agreement.payee, payer.id, month, k,
                             *(now[name] for name in parameter_types), *(before[name] for name in parameter_types)))
    types = {"contract": pa.string(), "component": pa.string(), "payee": pa.string(), "payer": pa.string(), "month": pa.date32(), "k": pa.int64()}
    types |= {name: _arrow_type(kind) for name, kind in parameter_types.items()}
    types |= {f"before_{name}": _arrow_type(kind) for name, kind in parameter_types.items()}
    spine = context.scenarios().cross_join(context.table(types, rows))
    totals = monthly.group_by(COMPONENT_KEYS).aggregate(**{m: monthly[m].sum() for m in measures})
    table = spine.left_join(totals, COMPONENT_KEYS).drop(*(f"{key}_right" for key in COMPONENT_KEYS))
    table = table.mutate(**{m: table[m].fill_null(0) for m in measures})
    keys = ["scenario", "contract", "component", "payer"]
    window = ibis.window(group_by=keys, order_by="month", preceding=None, following=0)
    table = table.mutate(**{f"ytd_{m}": table[m].sum().over(window) for m in measures})
    table = table.mutate(cumulative=cumulative(table).cast(VALUE_TYPE))
    # The year to date before this month, under this month's terms: the same columns, swapped.
    swapped = [*parameter_types, *(f"ytd_{m}" for m in measures), "k"]
    table = table.mutate(**{f"kept_{name}": table[name] for name in swapped})
    table = table.mutate(
        **{name: table[f"before_{name}"] for name in parameter_types},
        **{f"ytd_{m}": (table[f"ytd_{m}"] - table[m]).cast(table[f"ytd_{m}"].type()) for m in measures},
        k=table.k - 1,
    )
    table = table.mutate(previous=cumulative(table).cast(VALUE_TYPE))
    table = table.mutate(**{name: table[f"kept_{name}"] for name in swapped}).drop(
        *(f"kept_{name}" for name in swapped), *(f"before_{name}" for name in parameter_types)
    )
    table = table.mutate(due_to_date=table.cumulative.round(2).cast(AMOUNT_TYPE), paid_before=table.previous.round(2).cast(AMOUNT_TYPE))
    table = table.mutate(amount=(table.due_to_date - table.paid_before).cast(AMOUNT_TYPE))
    return labelled(table.mutate(basis=basis(table)), part)


def money_text(context: KindContext, value: ir.NumericValue) -> ir.StringValue:
    """£1,234.56 (with a leading minus for negatives) as an engine expression; rounded
    half-up to pence first, as money is, since the engines' formatting rounds differently."""
    value = value.cast(VALUE_TYPE)
    formatted = context.engine.number(value.abs().round(2), 2)
    symbol = currency_symbol()
    return ibis.cases((value < 0, "-" + symbol + formatted), else_=symbol + formatted)


def price_text(context: KindContext, value: ir.NumericValue) -> ir.StringValue:
    """A unit price as used: £168.00, or £65.5602 when it has more than pence."""
    whole_pence = value == value.round(2)
    symbol = currency_symbol()
    return ibis.cases((whole_pence, symbol + context.engine.number(value, 2)), else_=symbol + context.engine.number(value, 4))


def number_text(context: KindContext, value: ir.NumericValue, places: int = 2) -> ir.StringValue:
    """A quantity as text: whole numbers without decimals, others to `places`."""
    # A bounded type first: Spark compares a decimal(38, s) with its rounding at scale 0.
    value = value.cast("decimal(28, 8)")
    whole = context.engine.number(value, 0)
    precise = context.engine.number(value, places)
    return ibis.cases((value == value.round(0), whole), else_=precise)


def pro_rata(placed: Placed, term: Dated | None, share: Decimal, upto: Sequence[dt.date]) -> Decimal | None:
    """An annual term × share over the months `upto`, a twelfth for each at the value in
    force that month, to 8 places (only the year's final value needs to be exact); None
    for a term not given."""
    if term is None:
        return None
    if isinstance(term, Decimal):
        return (term * share * len(upto) / 12).quantize(Decimal("0.00000001"))
    total = sum((in_force(placed, term, month) for month in upto), Decimal(0))
    return (total * share / 12).quantize(Decimal("0.00000001"))


def payments_of(context: KindContext, references: Sequence[tuple[Placed, str]]) -> ir.Table:
    """Monthly payments per scenario, component and payer of the other components that each
    component's terms refer to, as `base`."""
    lines = context.lines_of(references)
    return lines.group_by(COMPONENT_KEYS).aggregate(base=lines.amount.sum().cast(AMOUNT_TYPE))


def percent_of(amount: ir.NumericValue, fraction: ir.NumericValue) -> ir.NumericValue:
    """amount × a fraction (a column of `fraction_value`s) as an exact value, to be rounded
    once, to a line."""
    return (amount.cast(VALUE_TYPE) * fraction.cast(FRACTION_TYPE)).cast(VALUE_TYPE)


# A percent of money as a fraction to 6 places (1.25% → 0.0125).
FRACTION_TYPE = "decimal(9, 6)"


def fraction_value(percent: Decimal) -> Decimal:
    """25 → 0.25, to the 6 places `percent_of` multiplies by."""
    return (percent / 100).quantize(Decimal("0.000001"))


def percent_text(percent: Decimal) -> str:
    """1.25 → '1.25%'."""
    return f"{percent.normalize():f}%"


def actual_cost(context: KindContext) -> ir.Table:
    """Cost of each component's activity per scenario, payer and month (`cost`): valued at
    its price list × MFF when the terms give `prices`, else from the activity's `cost`."""
    parts = []
    priced = [p for p in context.placed if getattr(p.component, "prices", None) is not None]
    if priced:
        rows = monthly_value(valued(context.subset(priced)))
        parts.append(rows.select(*COMPONENT_KEYS, cost=rows.value))
    costed = [p for p in context.placed if getattr(p.component, "prices", None) is None]
    if costed:
        subset = context.subset(costed)
        tallies = subset.tallies()
        empty = context.engine.to_arrow(tallies.filter(tallies.cost.isnull()).select("contract", "component").distinct().limit(100)).to_pylist()
        if empty:
            where = {(p.contract, p.id): p for p in costed}
            raise context.fail([
                where[(r["contract"], r["component"])].problem(
                    "the activity (or some of it) carries no cost", "prices",
                    "a `cost` on every row of the activity, or `prices:` to value it at a price list"
                )
                for r in sorted(empty, key=lambda r: (r["contract"], r["component"]))
            ])
        parts.append(tallies.select(*COMPONENT_KEYS, cost=tallies.cost.cast(VALUE_TYPE)))
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


def times_share(value: ir.NumericValue, share: ir.NumericValue | Decimal) -> ir.NumericValue:
    """value × a share between 0 and 1, taken to 10 places (so a third is 0.3333333333:
    exact to the penny for values up to £50m a line), as an exact VALUE. A Decimal share
    is checked here; a column of shares is made with `share_value`."""
    if isinstance(share, Decimal):
        share = ibis.literal(share_value(share), type=SHARE_TYPE)
    return (value.cast(SHARED_TYPE) * share.cast(SHARE_TYPE)).cast(VALUE_TYPE)


def share_value(share: Decimal) -> Decimal:
    """A share between 0 and 1 to the 10 places `times_share` multiplies by."""
    exact = share.quantize(Decimal("0.0000000001"))
    if not 0 <= exact <= 1:
        raise ValueError(f"a share must be between 0 and 1, not {share}")
    return exact
