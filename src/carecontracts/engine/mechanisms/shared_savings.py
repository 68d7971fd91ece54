"""shared_savings (accountable care, Medicare Shared Savings style): savings = benchmark −
expenditure for the year, the expenditure measured from activity or given per assigned
person. Nothing is shared unless the savings rate reaches the minimum savings rate (one
percent, steps by population, or interpolated by population within bands); then savings ×
sharing rate (× the quality score, a percent, unless flat) from the first pound, less any
payment reduction, capped at a percent of benchmark. Two-sided terms owe a loss that
reaches the minimum loss rate at the loss rate (fixed, 1 − a percent × the quality score,
or 1 − the final sharing rate; within a floor and a ceiling), capped at the lesser of a
percent of benchmark and a percent of participant revenue, then reduced for extreme and
uncontrollable circumstances (× (1 − months affected ÷ 12 × share of the population in
affected areas)) or waived. Settled once, in the year's last payable month, per payer;
the basis names the threshold, rate and cap that applied, and the amount before the cap
only when it applied.

A benchmark (or benchmark, expenditure or population per head, or participant revenue) or
minimum savings rate varied from a date is weighted
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
from typing import Callable, Sequence, cast

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.mechanisms.shared import actual_cost, in_force, labelled, money_text, percent_text, runs_in_force, runs_text, share_value, times_share
from carecontracts.engine.price import KindContext, Placed
from carecontracts.engine.registry import register
from carecontracts.language.model import CommissionerShare, Dated, InterpolatedSavingsBand, SharedSavingsTerms
from carecontracts.money import AMOUNT_TYPE, VALUE_TYPE, format_money, to_pence

PLACES = Decimal("0.0000000001")
# The places of a percent a minimum savings or loss rate is held to (the programme's files
# give 7: 3.0860861), and an interpolated minimum is rounded to, half-up.
RATE_PLACES = Decimal("0.0000001")
# A minimum rate (0 to 100) and the sum of one a month over a year (up to 1,200), to 7 places.
MINIMUM_TOTAL_TYPE = "decimal(11, 7)"
# Wide enough to compare savings × 100 × months with benchmark × percents exactly.
COMPARED_TYPE = "decimal(38, 17)"
# The benchmark in the comparison: at most £10bn a term × a few payers' shares, to 10 places.
BENCHMARK_OPERAND = "decimal(24, 10)"


def interpolated_minimum(bands: Sequence[InterpolatedSavingsBand], population: Decimal) -> tuple[Decimal, str]:
    """The minimum savings rate for a population from an interpolated table, rounded half-up
    to 7 places of a percent, and how it was found: within a band, low end + (population −
    band start) ÷ (band end − band start) × (high end − low end); below the first band its
    low end; in an open last band, or past the last, its last percent."""
    people = f"{_people(population)} people"
    if population <= bands[0].from_population:
        return bands[0].low_end_percent, f"{people}: the table's first rate"
    for band in bands:
        if band.to_population is None:
            if population >= band.from_population:
                return band.low_end_percent, f"{people}: {band.from_population:,} or more"
            continue
        assert band.high_end_percent is not None
        if band.from_population <= population <= band.to_population:
            span = Decimal(band.to_population - band.from_population)
            exact = band.low_end_percent + (population - band.from_population) / span * (band.high_end_percent - band.low_end_percent)
            percent = exact.quantize(RATE_PLACES, rounding=ROUND_HALF_UP)
            return percent, (f"{people}, between {percent_text(band.low_end_percent)} at {band.from_population:,} "
                             f"and {percent_text(band.high_end_percent)} at {band.to_population:,}, interpolated")
        if population < band.from_population:
            # Between two bands (a gap in the table): the rate at the end of the band below.
            return _band_end(bands, band), f"{people}: between bands, the rate of the band below"
    last = bands[-1]
    return (last.high_end_percent if last.high_end_percent is not None else last.low_end_percent), f"{people}: past the table's last band"


def _band_end(bands: Sequence[InterpolatedSavingsBand], following: InterpolatedSavingsBand) -> Decimal:
    """The high end of the band before `following`."""
    before = bands[bands.index(following) - 1]
    return before.high_end_percent if before.high_end_percent is not None else before.low_end_percent


def minimum_savings(terms: SharedSavingsTerms, population: Decimal | None) -> tuple[Dated, str]:
    """The minimum savings rate (dated, or one percent) and, for a table by population, how
    it was found."""
    if terms.minimum_savings_interpolated:
        assert population is not None
        return interpolated_minimum(terms.minimum_savings_interpolated, population)
    if terms.minimum_savings_by_population:
        assert population is not None
        for band in terms.minimum_savings_by_population:
            if band.up_to_population is None or population <= band.up_to_population:
                limit = f"up to {band.up_to_population:,}" if band.up_to_population is not None else "the last step"
                return band.percent, f"{_people(population)} people: {limit}"
        return terms.minimum_savings_by_population[-1].percent, f"{_people(population)} people: past the last step"
    return terms.minimum_savings_percent, ""


def sharing_factor(terms: SharedSavingsTerms) -> Decimal:
    """Share of savings earned: sharing rate (× quality score, unless flat) × (1 − payment reduction)."""
    return final_sharing_rate(terms) * (1 - terms.payment_reduction_percent / 100)


def final_sharing_rate(terms: SharedSavingsTerms) -> Decimal:
    """The sharing rate, scaled by the quality score unless the terms keep it flat."""
    rate = terms.sharing_percent / 100
    return rate * terms.quality_score / 100 if terms.quality_scales_savings else rate


def loss_factor(terms: SharedSavingsTerms) -> Decimal:
    """Share of losses owed: fixed, or 1 − a percent × the quality score, or 1 − the final
    sharing rate; raised to the floor and lowered to the ceiling."""
    return _loss_rate(terms)[0]


def _loss_rate(terms: SharedSavingsTerms) -> tuple[Decimal, str]:
    """The loss rate and its working in words."""
    losses = terms.losses
    assert losses is not None
    if losses.loss_rate_percent is not None:
        rate = losses.loss_rate_percent / 100
        words = f"loss rate {_percent(rate)}"
    elif losses.loss_rate_quality_percent is not None:
        rate = 1 - losses.loss_rate_quality_percent / 100 * terms.quality_score / 100
        words = (f"loss rate 1 − {percent_text(losses.loss_rate_quality_percent)} × quality score "
                 f"{percent_text(terms.quality_score)} = {_percent(rate)}")
    else:
        rate = 1 - final_sharing_rate(terms)
        words = f"loss rate 1 − final sharing rate {_percent(final_sharing_rate(terms))} = {_percent(rate)}"
    if losses.loss_rate_floor_percent is not None and rate < losses.loss_rate_floor_percent / 100:
        rate = losses.loss_rate_floor_percent / 100
        words += f", raised to its floor {_percent(rate)}"
    if losses.loss_rate_ceiling_percent is not None and rate > losses.loss_rate_ceiling_percent / 100:
        rate = losses.loss_rate_ceiling_percent / 100
        words += f", lowered to its ceiling {_percent(rate)}"
    return rate, words


def _populations(context: KindContext) -> dict[tuple[str, str, str], Decimal]:
    """Persons covered per component and payer, for components whose terms need them: the
    terms' population (weighted by months when dated) × payer share, or the payer's mean
    monthly population in the data over the component's payable months."""
    found: dict[tuple[str, str, str], Decimal] = {}
    needing = [p for p in context.placed if p.months and cast(SharedSavingsTerms, p.component).needs_population()]
    from_data = [p for p in needing if cast(SharedSavingsTerms, p.component).population is None]
    for placed in needing:
        population = cast(SharedSavingsTerms, placed.component).population
        if population is not None:
            whole = _mean(placed, population)
            for payer in placed.agreement.payers:
                found[(placed.contract, placed.id, payer.id)] = whole * payer.share
    if not from_data:
        return found
    table = context.inputs.population
    if table is None:
        raise context.fail([p.problem("a per-head term or a minimum by population needs the assigned population, and none is given "
                                      "or loaded", "population", "population: or files in data/population/") for p in from_data[:20]])
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


SPINE_TYPES = {
    "contract": pa.string(), "component": pa.string(), "payee": pa.string(), "payer": pa.string(), "month": pa.date32(),
    "benchmark": pa.decimal128(28, 10), "benchmark_words": pa.string(),
    "given_spent": pa.decimal128(28, 10), "spent_words": pa.string(),
    "minimum_total": pa.decimal128(11, 7), "minimum_months": pa.int64(), "minimum_words": pa.string(),
    "sharing": pa.decimal128(11, 10), "sharing_words": pa.string(), "cap_amount": pa.decimal128(28, 10), "cap_words": pa.string(),
    "two_sided": pa.bool_(), "minimum_loss_total": pa.decimal128(11, 7), "minimum_loss_months": pa.int64(), "minimum_loss_words": pa.string(),
    "loss_rate": pa.decimal128(11, 10), "loss_words": pa.string(), "loss_cap_amount": pa.decimal128(28, 10), "loss_cap_words": pa.string(),
    "relief": pa.decimal128(11, 10), "relief_words": pa.string(),
    "precise": pa.bool_(),
}


def _spine_row(placed: Placed, payer: CommissionerShare, persons: Decimal | None) -> tuple:
    """The terms of one component for one payer, worked out ahead of the expenditure."""
    terms = cast(SharedSavingsTerms, placed.component)
    share_note = f"; {payer.id}'s share {payer.share.normalize():f}" if len(placed.agreement.payers) > 1 else ""
    if terms.benchmark is not None:
        total, note = _mean_and_words(placed, terms.benchmark, format_money)
        benchmark = (total * payer.share).quantize(PLACES, rounding=ROUND_HALF_UP)
        benchmark_words = f"benchmark {format_money(to_pence(benchmark))}" + _noted(note, share_note)
    else:
        assert terms.benchmark_per_capita is not None and persons is not None
        per_head, note = _mean_and_words(placed, terms.benchmark_per_capita, format_money)
        benchmark = (per_head * persons).quantize(PLACES, rounding=ROUND_HALF_UP)
        benchmark_words = (f"benchmark {format_money(to_pence(per_head))} per head" + (f" ({note})" if note else "")
                           + f" × {_people(persons)} people = {format_money(to_pence(benchmark))}")
    given_spent, spent_words = None, None
    if terms.expenditure_per_capita is not None:
        assert persons is not None
        per_head, note = _mean_and_words(placed, terms.expenditure_per_capita, format_money)
        given_spent = (per_head * persons).quantize(PLACES, rounding=ROUND_HALF_UP)
        spent_words = (f"expenditure {format_money(to_pence(per_head))} per head" + (f" ({note})" if note else "")
                       + f" × {_people(persons)} people = {format_money(to_pence(given_spent))}")
    assigned = _mean(placed, terms.population) if terms.population is not None else persons
    minimum, found = minimum_savings(terms, assigned)
    minimum_total, minimum_months, minimum_words = _threshold(placed, minimum, "minimum savings rate", found)
    cap_amount, cap_words = None, None
    if terms.cap_percent is not None:
        cap_amount = _percent_of(benchmark, terms.cap_percent)
        cap_words = f"{percent_text(terms.cap_percent)} of benchmark"
    losses = terms.losses
    loss_row: tuple = (False, None, None, None, None, None, None, None, None, None)
    if losses is not None:
        rate, loss_words = _loss_rate(terms)
        caps = []
        if losses.cap_percent is not None:
            caps.append((_percent_of(benchmark, losses.cap_percent), f"{percent_text(losses.cap_percent)} of benchmark"))
        if losses.revenue_cap_percent is not None:
            assert losses.participant_revenue is not None
            revenue_total, note = _mean_and_words(placed, losses.participant_revenue, format_money)
            revenue = (revenue_total * payer.share).quantize(PLACES, rounding=ROUND_HALF_UP)
            caps.append((_percent_of(revenue, losses.revenue_cap_percent),
                         f"{percent_text(losses.revenue_cap_percent)} of participant revenue {format_money(to_pence(revenue))}"
                         + _noted(note, share_note)))
        loss_cap, loss_cap_words = None, None
        if caps:
            loss_cap = min(amount for amount, _ in caps)
            if len(caps) == 1:
                loss_cap_words = caps[0][1]
            else:
                loss_cap_words = "the lesser of " + " and ".join(f"{words} ({format_money(to_pence(amount))})" for amount, words in caps)
        relief, relief_words = None, None
        circumstances = losses.circumstances_on(placed.months[-1])
        if circumstances is not None:
            if circumstances.waived:
                relief, relief_words = Decimal(0), "losses waived for extreme and uncontrollable circumstances"
            else:
                assert circumstances.months_affected is not None and circumstances.population_affected_percent is not None
                relief = 1 - Decimal(circumstances.months_affected) / 12 * circumstances.population_affected_percent / 100
                relief_words = (f"reduced for extreme and uncontrollable circumstances × (1 − {circumstances.months_affected}/12 months "
                                f"× {percent_text(circumstances.population_affected_percent)} of the population affected)")
        loss_row = (True, *_threshold(placed, losses.minimum_loss_rate_percent, "minimum loss rate"),
                    share_value(rate), loss_words, loss_cap, loss_cap_words,
                    share_value(relief) if relief is not None else None, relief_words)
    return (
        placed.contract, placed.id, placed.agreement.payee, payer.id, placed.months[-1],
        benchmark, benchmark_words, given_spent, spent_words,
        minimum_total, minimum_months, minimum_words,
        share_value(sharing_factor(terms)), _factor_words(terms), cap_amount, cap_words,
        *loss_row,
        # A minimum with more than 2 places is compared with the savings rate shown to 7.
        _places_of(minimum) > 2 or (losses is not None and _places_of(losses.minimum_loss_rate_percent) > 2),
    )


def _noted(note: str, share_note: str) -> str:
    """A dated term's values and the payer's share, in brackets after an amount (nothing when
    there are neither): ' (£3m for 6 months, ...; ICB-A's share 0.7)'."""
    words = f"{note}{share_note}" if note else share_note[2:]
    return f" ({words})" if words else ""


def _threshold(placed: Placed, percent: Dated, name: str, found: str = "") -> tuple[Decimal, int, str]:
    """A minimum rate as compared: the sum of its percents over the months it is weighted by
    (one, unless dated), those months, and its words ('minimum loss rate 2%')."""
    if isinstance(percent, Decimal):
        return percent, 1, f"{name} {percent_text(percent)}" + (f" ({found})" if found else "")
    total, months, runs = _weighted(placed, percent, percent_text)
    return total, months, f"{name} {_rounded(total / months)}% (weighted by months: {runs})"


def _places_of(percent: Dated) -> int:
    """The most decimal places a minimum rate (or any of its dated values) is written to."""
    return max(_places(v.value) for v in percent) if isinstance(percent, list) else _places(percent)


@register("shared_savings", measures_activity=True, summary="shares savings (and, two-sided, losses) against a benchmark once a year",
          settles_yearly=True)
def price_shared_savings(context: KindContext) -> ir.Table:
    populations = _populations(context)
    rows = [
        _spine_row(placed, payer, populations.get((placed.contract, placed.id, payer.id)))
        for placed in context.placed if placed.months
        for payer in placed.agreement.payers
    ]
    spine = context.table(SPINE_TYPES, rows)
    table = context.scenarios().cross_join(spine)
    measured = [p for p in context.placed if p.months and cast(SharedSavingsTerms, p.component).expenditure_per_capita is None]
    if measured:
        cost = actual_cost(context.subset(measured))
        spent = cost.group_by(["scenario", "contract", "component", "payer"]).aggregate(measured_spent=cost.cost.sum().cast(VALUE_TYPE))
        table = table.left_join(spent, ["scenario", "contract", "component", "payer"]).drop("scenario_right", "contract_right", "component_right", "payer_right")
    else:
        table = table.mutate(measured_spent=ibis.literal(None, type=VALUE_TYPE))
    table = table.mutate(spent=ibis.coalesce(table.given_spent, table.measured_spent, ibis.literal(Decimal(0), type=VALUE_TYPE)).cast(VALUE_TYPE))
    table = table.mutate(savings=(table.benchmark - table.spent).cast(VALUE_TYPE))
    amount, worked = _outcome(table)
    return labelled(table.mutate(amount=amount, basis=_basis(context, table, worked)))


def _outcome(table: ir.Table) -> tuple[ir.NumericValue, dict[str, ir.Value]]:
    """The year's settlement to pence (earned savings, capped; or losses owed, capped, then
    relieved), and the tests and values the basis words are chosen by."""
    hundred = ibis.literal(Decimal(100), type="decimal(4, 0)")
    benchmark = table.benchmark.cast(BENCHMARK_OPERAND)
    # Rates compare as savings × 100 ≥ percent × benchmark, so no division is needed; a dated
    # minimum, the mean of its months' percents, as savings × 100 × months ≥ benchmark × Σ percents.
    scaled = (times_share(table.savings, Decimal(1)) * hundred * table.minimum_months.cast("decimal(2, 0)")).cast(COMPARED_TYPE)
    reached = (table.savings > 0) & (scaled >= (benchmark * table.minimum_total.cast(MINIMUM_TOTAL_TYPE)).cast(COMPARED_TYPE))
    earned_before = times_share(table.savings, table.sharing)
    capped = table.cap_amount.notnull() & (earned_before > table.cap_amount)
    earned = ibis.cases((capped, table.cap_amount.cast(VALUE_TYPE)), else_=earned_before)
    lost = (-table.savings).cast(VALUE_TYPE)
    losing = table.two_sided & (table.savings < 0)
    lost_scaled = (times_share(lost, Decimal(1)) * hundred * table.minimum_loss_months.cast("decimal(2, 0)")).cast(COMPARED_TYPE)
    past = losing & (lost_scaled >= (benchmark * table.minimum_loss_total.cast(MINIMUM_TOTAL_TYPE)).cast(COMPARED_TYPE))
    owed_before = times_share(lost, table.loss_rate.fill_null(Decimal(0)))
    loss_capped = table.loss_cap_amount.notnull() & (owed_before > table.loss_cap_amount)
    owed_capped = ibis.cases((loss_capped, table.loss_cap_amount.cast(VALUE_TYPE)), else_=owed_before)
    owed = ibis.cases((table.relief.notnull(), times_share(owed_capped, table.relief)), else_=owed_capped)
    zero = ibis.literal(Decimal(0), type=VALUE_TYPE)
    outcome = ibis.cases((reached, earned), (past, (-owed).cast(VALUE_TYPE)), else_=zero)
    return outcome.round(2).cast(AMOUNT_TYPE), {
        "reached": reached, "capped": capped, "earned_before": earned_before, "earned": earned, "lost": lost, "losing": losing,
        "past": past, "owed_before": owed_before, "loss_capped": loss_capped, "owed_capped": owed_capped, "owed": owed,
    }


def _basis(context: KindContext, table: ir.Table, v: dict[str, ir.Value]) -> ir.StringValue:
    """The line in words: the benchmark, expenditure and savings, which threshold, rate and
    cap applied (`v`, from `_outcome`), and the amount before the cap when it did."""

    def m(value: ir.Value) -> ir.StringValue:
        return money_text(context, value)  # type: ignore[arg-type]

    hundred = ibis.literal(Decimal(100), type="decimal(4, 0)")
    # Words only: the rates compared are compared exactly (`_outcome`).
    ratio = table.savings * hundred / table.benchmark.nullif(0)
    # To 7 places as the rate × 10^7 rounded to a whole number: each backend divides to at
    # least 6 places of that, where Spark would keep only 6 of the rate itself.
    tenths = (table.savings.cast("decimal(24, 4)") * ibis.literal(Decimal(10**9), type="decimal(10, 0)")) / table.benchmark.cast("decimal(24, 4)").nullif(0)
    seven = (tenths.round(0).cast("decimal(18, 0)").cast("decimal(25, 7)") * ibis.literal(Decimal("0.0000001"), type="decimal(8, 7)")).cast("decimal(26, 7)")
    rate = ibis.cases((table.precise, context.engine.number(seven, 7)), else_=context.engine.number(ratio.cast("decimal(18, 2)"), 2))
    spent = ibis.cases((table.spent_words.notnull(), table.spent_words), else_="expenditure " + m(table.spent))
    head = table.benchmark_words + " − " + spent + " = savings " + m(table.savings) + " (" + rate + "% of benchmark); "
    earned = (
        "savings rate reaches the " + table.minimum_words + ": " + m(table.savings) + " × " + table.sharing_words + " = " + m(v["earned_before"])
        + ibis.cases((v["capped"], ", capped at " + table.cap_words.fill_null("") + ": " + m(v["earned"]) + " (" + m(v["earned_before"]) + " before the cap)"),
                     else_="")
    )
    capped_words = ibis.cases(
        (v["loss_capped"], ", capped at " + table.loss_cap_words.fill_null("") + ": " + m(v["owed_capped"]) + " (" + m(v["owed_before"]) + " before the cap)"),
        else_="",
    )
    relief = ibis.cases(
        (table.relief.notnull() & (table.relief == 0), "; " + table.relief_words.fill_null("") + ": nothing owed"),
        (table.relief.notnull(), "; " + table.relief_words.fill_null("") + " = " + m(v["owed"])),
        else_="",
    )
    owed = (
        "loss past the " + table.minimum_loss_words.fill_null("") + ": " + m(v["lost"]) + " × " + table.loss_words.fill_null("") + " = "
        + m(v["owed_before"]) + capped_words + relief
    )
    words = ibis.cases(
        (v["reached"], earned),
        (table.savings > 0, "savings rate below the " + table.minimum_words + ": nothing shared"),
        (v["past"], owed),
        (v["losing"], "loss within the " + table.minimum_loss_words.fill_null("") + ": nothing owed"),
        else_=ibis.literal("no savings: nothing shared"),
    )
    return head + words


def _percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    """A percent of an amount, to the 10 places money is held to before it is rounded to a line."""
    return (amount * percent / 100).quantize(PLACES, rounding=ROUND_HALF_UP)


def _mean(placed: Placed, term: Dated | int) -> Decimal:
    """A term's value for the year: itself, or when dated, the mean of its months' values."""
    if not isinstance(term, list):
        return Decimal(term)
    total, count, _ = _weighted(placed, term, str)
    return total / count


def _mean_and_words(placed: Placed, term: Dated, shown: Callable[[Decimal], str]) -> tuple[Decimal, str]:
    """A term's value for the year, and when dated and varied within the year its values
    with their months in words."""
    if isinstance(term, Decimal):
        return term, ""
    if len(runs_in_force(placed, term, placed.months)) == 1:
        return in_force(placed, term, placed.months[0]), ""
    total, count, runs = _weighted(placed, term, shown)
    return total / count, runs


def _places(percent: Decimal) -> int:
    """Decimal places a percent is written to: 3.0860861 → 7, 2.50 → 1."""
    exponent = percent.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _people(persons: Decimal) -> str:
    """20,000; a mean of persons over months to 2 places when it is not whole."""
    value = Decimal(persons)
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{_rounded(value):,}"


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
    """0.6 → '60%'."""
    return f"{(factor * 100).normalize():f}%"


def _factor_words(terms: SharedSavingsTerms) -> str:
    """The sharing rate as applied: 'sharing rate 50% × quality score 90%'."""
    text = f"sharing rate {percent_text(terms.sharing_percent)}"
    if terms.quality_scales_savings and terms.quality_score != 100:
        text += f" × quality score {percent_text(terms.quality_score)}"
    if terms.payment_reduction_percent:
        text += f" × (1 − {percent_text(terms.payment_reduction_percent)} payment reduction)"
    return text
