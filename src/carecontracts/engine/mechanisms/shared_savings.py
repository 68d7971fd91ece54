"""shared_savings (accountable care, Medicare Shared Savings style): savings = benchmark −
expenditure for the year. Nothing is shared unless the savings rate reaches the minimum
savings rate; then savings × sharing rate (scaled by the quality score) from the first
pound, less any payment reduction, capped at a percent of benchmark. Two-sided terms
share losses past a minimum loss rate at a loss rate (fixed, or 1 − the final sharing
rate, bounded), capped. Settled once, in the year's last payable month, per payer."""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import actual_cost, money_text, times_share
from carecontracts.engine.price import PricingContext
from carecontracts.engine.registry import register
from carecontracts.language.model import SharedSavingsTerms
from carecontracts.money import AMOUNT_TYPE, VALUE_TYPE, format_money

PLACES = Decimal("0.0000000001")


def minimum_savings_percent(terms: SharedSavingsTerms, population: Decimal) -> Decimal:
    """The minimum savings rate, by population size when the terms give bands."""
    if terms.minimum_savings_by_population:
        for band in terms.minimum_savings_by_population:
            if band.up_to_population is None or population <= band.up_to_population:
                return band.percent
        return terms.minimum_savings_by_population[-1].percent
    return terms.minimum_savings_percent


def sharing_factor(terms: SharedSavingsTerms) -> Decimal:
    """Share of savings earned: sharing rate × quality score × (1 − payment reduction)."""
    return terms.sharing_percent / 100 * terms.quality_score * (1 - terms.payment_reduction_percent / 100)


def loss_factor(terms: SharedSavingsTerms) -> Decimal:
    """Share of losses owed: the fixed loss rate, or 1 − sharing rate × quality, bounded."""
    losses = terms.losses
    assert losses is not None
    if losses.loss_percent is not None:
        rate = losses.loss_percent / 100
    else:
        rate = 1 - terms.sharing_percent / 100 * terms.quality_score
    if losses.min_loss_percent is not None:
        rate = max(rate, losses.min_loss_percent / 100)
    if losses.max_loss_percent is not None:
        rate = min(rate, losses.max_loss_percent / 100)
    return rate


def _populations(context: PricingContext, terms: SharedSavingsTerms) -> dict[str, Decimal]:
    """Persons covered per payer: the terms' population × payer share, or the payer's mean
    monthly population in the data over the payable months."""
    payers = context.agreement.payers
    if terms.population is not None:
        return {p.id: Decimal(terms.population) * p.share for p in payers}
    population = context.inputs.population
    if population is None:
        raise context.problem("no population is given and no population data is loaded", "population", "population: or files in data/population/")
    rows = population.filter(population.commissioner.isin([p.id for p in payers]), population.month.isin(context.months))
    sums = context.engine.to_arrow(rows.group_by("commissioner").aggregate(persons=rows.persons.sum())).to_pylist()
    found = {r["commissioner"]: Decimal(r["persons"]) / len(context.months) for r in sums}
    missing = [p.id for p in payers if p.id not in found]
    if missing:
        raise context.problem(f"no population data for {', '.join(missing)}", "population", "population rows for every payer, or population:")
    return found


@register("shared_savings", measures_activity=True, summary="shares savings (and, two-sided, losses) against a benchmark once a year")
def price_shared_savings(context: PricingContext) -> ir.Table:
    terms: SharedSavingsTerms = context.component  # type: ignore[assignment]
    months = context.months
    if not months:
        return context.scenarios().mutate(amount=ibis.literal(0).cast(AMOUNT_TYPE)).limit(0)
    populations = _populations(context, terms)
    payers = context.agreement.payers
    benchmarks, minimums = [], []
    for payer in payers:
        persons = populations[payer.id]
        if terms.benchmark is not None:
            benchmarks.append((terms.benchmark * payer.share).quantize(PLACES))
        else:
            assert terms.benchmark_per_capita is not None
            benchmarks.append((terms.benchmark_per_capita * persons).quantize(PLACES))
        minimums.append(minimum_savings_percent(terms, Decimal(terms.population) if terms.population else persons))
    spine = context.engine.put(
        pa.table(
            {
                "payer": pa.array([p.id for p in payers], pa.string()),
                "benchmark": pa.array(benchmarks, pa.decimal128(28, 10)),
                "minimum": pa.array(minimums, pa.decimal128(9, 6)),
                "persons": pa.array([populations[p.id].quantize(Decimal("0.01")) for p in payers], pa.decimal128(18, 2)),
            }
        )
    )
    cost = actual_cost(context)
    spent = cost.group_by(["scenario", "payer"]).aggregate(spent=cost.cost.sum().cast(VALUE_TYPE))
    table = context.scenarios().cross_join(spine)
    table = table.left_join(spent, ["scenario", "payer"]).drop("scenario_right", "payer_right")
    table = table.mutate(spent=table.spent.fill_null(0).cast(VALUE_TYPE))
    table = table.mutate(savings=(table.benchmark - table.spent).cast(VALUE_TYPE))

    def scale(value: ir.NumericValue, factor: Decimal) -> ir.NumericValue:
        return times_share(value, factor)

    # Rates compare as savings × 100 ≥ percent × benchmark, so no division is needed.
    hundred = Decimal(100)
    reached = (table.savings > 0) & (scale(table.savings, Decimal(1)) * ibis.literal(hundred, type="decimal(4, 0)") >= table.benchmark * table.minimum)
    earned = scale(table.savings, sharing_factor(terms))
    if terms.cap_percent is not None:
        earned = ibis.least(earned, scale(table.benchmark, terms.cap_percent / 100)).cast(VALUE_TYPE)
    outcome = ibis.cases((reached, earned), else_=ibis.literal(0).cast(VALUE_TYPE))
    words = ibis.cases(
        (reached, ibis.literal("savings rate reaches the minimum savings rate: ") + money_text(context, table.savings) + f" × {_factor_words(terms)}"
         + (f", capped at {terms.cap_percent.normalize():f}% of benchmark" if terms.cap_percent is not None else "")),
        (table.savings > 0, ibis.literal("savings rate below the minimum savings rate: nothing shared")),
        else_=ibis.literal("no savings: nothing shared"),
    )
    if terms.losses is not None:
        losses = terms.losses
        lost = (-table.savings).cast(VALUE_TYPE)
        past = (table.savings < 0) & (lost * ibis.literal(hundred, type="decimal(4, 0)") >= table.benchmark * ibis.literal(losses.minimum_loss_percent, type="decimal(9, 6)"))
        owed = scale(lost, loss_factor(terms))
        if losses.cap_percent is not None:
            owed = ibis.least(owed, scale(table.benchmark, losses.cap_percent / 100)).cast(VALUE_TYPE)
        outcome = ibis.cases((past, (-owed).cast(VALUE_TYPE)), else_=outcome)
        words = ibis.cases(
            (past, ibis.literal("loss past the minimum loss rate: ") + money_text(context, lost) + f" × loss rate {_percent(loss_factor(terms))}"
             + (f", capped at {losses.cap_percent.normalize():f}% of benchmark" if losses.cap_percent is not None else "")),
            (table.savings < 0, ibis.literal("loss within the minimum loss rate: nothing owed")),
            else_=words,
        )
    table = table.mutate(amount=outcome.round(2).cast(AMOUNT_TYPE))
    per_head = terms.benchmark_per_capita
    benchmark_words = (
        ibis.literal("benchmark ") + money_text(context, table.benchmark)
        if per_head is None
        else ibis.literal(f"benchmark {format_money(per_head)} per head × ") + context.engine.number(table.persons, 0) + " people = " + money_text(context, table.benchmark)
    )
    rate = context.engine.number((table.savings * ibis.literal(hundred, type="decimal(4, 0)") / table.benchmark.nullif(0)).cast("decimal(18, 2)"), 2)
    return table.mutate(
        contract=ibis.literal(context.agreement.id),
        component=ibis.literal(terms.id),
        payee=ibis.literal(context.agreement.payee),
        month=ibis.literal(months[-1], type="date"),
        basis=benchmark_words + " − expenditure " + money_text(context, table.spent) + " = savings " + money_text(context, table.savings)
        + " (" + rate + "% of benchmark; minimum " + context.engine.number(table.minimum, 2) + "%); " + words,
    )


def _percent(factor: Decimal) -> str:
    return f"{(factor * 100).normalize():f}%"


def _factor_words(terms: SharedSavingsTerms) -> str:
    text = f"sharing rate {terms.sharing_percent.normalize():f}%"
    if terms.quality_score != 1:
        text += f" × quality score {terms.quality_score.normalize():f}"
    if terms.payment_reduction_percent:
        text += f" × (1 − {terms.payment_reduction_percent.normalize():f}% payment reduction)"
    return text
