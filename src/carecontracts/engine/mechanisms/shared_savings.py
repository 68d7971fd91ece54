"""shared_savings (accountable care, Medicare Shared Savings style): savings = benchmark −
expenditure for the year. Nothing is shared unless the savings rate reaches the minimum
savings rate; then savings × sharing rate (scaled by the quality score) from the first
pound, less any payment reduction, capped at a percent of benchmark. Two-sided terms
share losses past a minimum loss rate at a loss rate (fixed, or 1 − the final sharing
rate, bounded), capped. Settled once, in the year's last payable month, per payer.

A benchmark (or benchmark per head) or minimum savings rate varied from a date is weighted
by months: the value for the year is the mean of the values in force on the first day of
each of the term's months in the year (of the term, for its first month when it starts
later), so over a whole year each month counts a twelfth — £3m for six months and £3.1m for
six is a benchmark of £3.05m. A part-year term's months each count equally, as a single
benchmark is compared whole with a part-year's expenditure. The savings rate reaches a
dated minimum when savings × 100 × months ≥ benchmark × the sum of the monthly percents,
so no mean is rounded before it is compared; the basis gives the values and their months.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Callable

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import actual_cost, labelled, money_text, percent_text, runs_in_force, runs_text, share_value, times_share
from carecontracts.engine.price import KindContext, Placed
from carecontracts.engine.registry import register
from carecontracts.language.model import Dated, SharedSavingsTerms
from carecontracts.money import AMOUNT_TYPE, VALUE_TYPE, format_money

PLACES = Decimal("0.0000000001")
# Wide enough to compare savings × 100 × months with benchmark × percents exactly.
COMPARED_TYPE = "decimal(38, 14)"


def minimum_savings_percent(terms: SharedSavingsTerms, population: Decimal) -> Dated:
    """The minimum savings rate (dated, or one percent), by population size when the terms
    give bands."""
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


def _populations(context: KindContext) -> dict[tuple[str, str, str], Decimal]:
    """Persons covered per component and payer: the terms' population × payer share, or the
    payer's mean monthly population in the data over the component's payable months."""
    found: dict[tuple[str, str, str], Decimal] = {}
    from_data = [p for p in context.placed if p.component.population is None and p.months]  # type: ignore[union-attr]
    for placed in context.placed:
        population = placed.component.population  # type: ignore[union-attr]
        if population is not None:
            for payer in placed.agreement.payers:
                found[(placed.contract, placed.id, payer.id)] = Decimal(population) * payer.share
    if not from_data:
        return found
    table = context.inputs.population
    if table is None:
        raise context.fail([p.problem("no population is given and no population data is loaded", "population", "population: or files in data/population/") for p in from_data[:20]])
    payers = sorted({payer.id for p in from_data for payer in p.agreement.payers})
    rows = table.filter(table.commissioner.isin(payers))
    monthly = context.engine.to_arrow(rows.group_by(["commissioner", "month"]).aggregate(persons=rows.persons.sum())).to_pylist()
    persons = {(r["commissioner"], r["month"]): Decimal(r["persons"]) for r in monthly}
    problems = []
    for placed in from_data:
        missing = []
        for payer in placed.agreement.payers:
            counts = [persons[(payer.id, m)] for m in placed.months if (payer.id, m) in persons]
            if not counts:
                missing.append(payer.id)
            else:
                found[(placed.contract, placed.id, payer.id)] = sum(counts, Decimal(0)) / len(placed.months)
        if missing:
            problems.append(placed.problem(f"no population data for {', '.join(missing)}", "population", "population rows for every payer, or population:"))
    if problems:
        raise context.fail(problems)
    return found


@register("shared_savings", measures_activity=True, summary="shares savings (and, two-sided, losses) against a benchmark once a year")
def price_shared_savings(context: KindContext) -> ir.Table:
    populations = _populations(context)
    rows = []
    for placed in context.placed:
        terms: SharedSavingsTerms = placed.component  # type: ignore[assignment]
        if not placed.months:
            continue
        losses = terms.losses
        for payer in placed.agreement.payers:
            persons = populations[(placed.contract, placed.id, payer.id)]
            benchmark_note = ""
            if terms.benchmark is not None:
                if isinstance(terms.benchmark, Decimal):
                    benchmark = (terms.benchmark * payer.share).quantize(PLACES)
                else:
                    total, count, runs = _weighted(placed, terms.benchmark, format_money)
                    benchmark = (total * payer.share / count).quantize(PLACES)
                    share = f"; {payer.id}'s share {payer.share.normalize():f}" if len(placed.agreement.payers) > 1 else ""
                    benchmark_note = f" ({runs}{share})"
                benchmark_words = None
            else:
                assert terms.benchmark_per_capita is not None
                if isinstance(terms.benchmark_per_capita, Decimal):
                    benchmark = (terms.benchmark_per_capita * persons).quantize(PLACES)
                    benchmark_words = f"benchmark {format_money(terms.benchmark_per_capita)} per head × "
                else:
                    total, count, runs = _weighted(placed, terms.benchmark_per_capita, format_money)
                    benchmark = (total * persons / count).quantize(PLACES)
                    benchmark_words = f"benchmark {format_money(_rounded(total / count))} per head ({runs}) × "
            minimum = minimum_savings_percent(terms, Decimal(terms.population) if terms.population else persons)
            if isinstance(minimum, Decimal):
                minimum_total, minimum_months, minimum_note = minimum, 1, ""
            else:
                minimum_total, minimum_months, runs = _weighted(placed, minimum, percent_text)
                minimum = _rounded(minimum_total / minimum_months)
                minimum_note = f", weighted by months: {runs}"
            rows.append((
                placed.contract, placed.id, placed.agreement.payee, payer.id, placed.months[-1],
                benchmark, benchmark_note, minimum, minimum_total, minimum_months, minimum_note, persons.quantize(Decimal("0.01")),
                share_value(sharing_factor(terms)),
                share_value(terms.cap_percent / 100) if terms.cap_percent is not None else None,
                f" × {_factor_words(terms)}" + (f", capped at {terms.cap_percent.normalize():f}% of benchmark" if terms.cap_percent is not None else ""),
                benchmark_words,
                losses is not None,
                losses.minimum_loss_percent if losses is not None else None,
                share_value(loss_factor(terms)) if losses is not None else None,
                share_value(losses.cap_percent / 100) if losses is not None and losses.cap_percent is not None else None,
                (f" × loss rate {_percent(loss_factor(terms))}" + (f", capped at {losses.cap_percent.normalize():f}% of benchmark" if losses.cap_percent is not None else ""))
                if losses is not None else None,
            ))
    spine = context.table(
        {
            "contract": pa.string(), "component": pa.string(), "payee": pa.string(), "payer": pa.string(), "month": pa.date32(),
            "benchmark": pa.decimal128(28, 10), "benchmark_note": pa.string(),
            "minimum": pa.decimal128(9, 6), "minimum_total": pa.decimal128(8, 4), "minimum_months": pa.int64(), "minimum_note": pa.string(),
            "persons": pa.decimal128(18, 2),
            "sharing": pa.decimal128(11, 10), "cap": pa.decimal128(11, 10), "earned_words": pa.string(), "benchmark_words": pa.string(),
            "two_sided": pa.bool_(), "minimum_loss": pa.decimal128(9, 6), "loss_rate": pa.decimal128(11, 10), "loss_cap": pa.decimal128(11, 10), "loss_words": pa.string(),
        },
        rows,
    )
    cost = actual_cost(context)
    spent = cost.group_by(["scenario", "contract", "component", "payer"]).aggregate(spent=cost.cost.sum().cast(VALUE_TYPE))
    table = context.scenarios().cross_join(spine)
    table = table.left_join(spent, ["scenario", "contract", "component", "payer"]).drop("scenario_right", "contract_right", "component_right", "payer_right")
    table = table.mutate(spent=table.spent.fill_null(0).cast(VALUE_TYPE))
    table = table.mutate(savings=(table.benchmark - table.spent).cast(VALUE_TYPE))

    # Rates compare as savings × 100 ≥ percent × benchmark, so no division is needed; a dated
    # minimum, the mean of its months' percents, as savings × 100 × months ≥ benchmark × Σ percents.
    hundred = ibis.literal(Decimal(100), type="decimal(4, 0)")
    scaled = (times_share(table.savings, Decimal(1)) * hundred * table.minimum_months.cast("decimal(2, 0)")).cast(COMPARED_TYPE)
    reached = (table.savings > 0) & (scaled >= (table.benchmark * table.minimum_total).cast(COMPARED_TYPE))
    earned = times_share(table.savings, table.sharing)
    earned = ibis.cases((table.cap.notnull(), ibis.least(earned, times_share(table.benchmark, table.cap)).cast(VALUE_TYPE)), else_=earned)
    outcome = ibis.cases((reached, earned), else_=ibis.literal(0).cast(VALUE_TYPE))
    words = ibis.cases(
        (reached, ibis.literal("savings rate reaches the minimum savings rate: ") + money_text(context, table.savings) + table.earned_words),
        (table.savings > 0, ibis.literal("savings rate below the minimum savings rate: nothing shared")),
        else_=ibis.literal("no savings: nothing shared"),
    )
    lost = (-table.savings).cast(VALUE_TYPE)
    past = table.two_sided & (table.savings < 0) & (lost * hundred >= table.benchmark * table.minimum_loss.cast("decimal(9, 6)"))
    owed = times_share(lost, table.loss_rate.fill_null(Decimal(0)))
    owed = ibis.cases((table.loss_cap.notnull(), ibis.least(owed, times_share(table.benchmark, table.loss_cap)).cast(VALUE_TYPE)), else_=owed)
    outcome = ibis.cases((past, (-owed).cast(VALUE_TYPE)), else_=outcome)
    words = ibis.cases(
        (past, ibis.literal("loss past the minimum loss rate: ") + money_text(context, lost) + table.loss_words),
        (table.two_sided & (table.savings < 0), ibis.literal("loss within the minimum loss rate: nothing owed")),
        else_=words,
    )
    table = table.mutate(amount=outcome.round(2).cast(AMOUNT_TYPE))
    benchmark_words = ibis.cases(
        (table.benchmark_words.isnull(), ibis.literal("benchmark ") + money_text(context, table.benchmark) + table.benchmark_note),
        else_=table.benchmark_words + context.engine.number(table.persons, 0) + " people = " + money_text(context, table.benchmark),
    )
    rate = context.engine.number((table.savings * hundred / table.benchmark.nullif(0)).cast("decimal(18, 2)"), 2)
    return labelled(table.mutate(
        basis=benchmark_words + " − expenditure " + money_text(context, table.spent) + " = savings " + money_text(context, table.savings)
        + " (" + rate + "% of benchmark; minimum " + context.engine.number(table.minimum, 2) + "%" + table.minimum_note + "); " + words,
    ))


def _weighted(placed: Placed, term: Dated, shown: Callable[[Decimal], str]) -> tuple[Decimal, int, str]:
    """A dated term over the component's months: the sum of the values in force each month,
    the number of months, and the values in words ('£3,000,000.00 for 6 months, ...')."""
    runs = runs_in_force(placed, term, placed.months)
    total = sum((value * count for value, count in runs), Decimal(0))
    return total, len(placed.months), runs_text(runs, shown)


def _rounded(value: Decimal) -> Decimal:
    """A mean shown to 2 places, rounded half-up as money is."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _percent(factor: Decimal) -> str:
    return f"{(factor * 100).normalize():f}%"


def _factor_words(terms: SharedSavingsTerms) -> str:
    text = f"sharing rate {terms.sharing_percent.normalize():f}%"
    if terms.quality_score != 1:
        text += f" × quality score {terms.quality_score.normalize():f}"
    if terms.payment_reduction_percent:
        text += f" × (1 − {terms.payment_reduction_percent.normalize():f}% payment reduction)"
    return text
