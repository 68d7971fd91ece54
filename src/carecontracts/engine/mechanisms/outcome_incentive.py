"""outcome_incentive: a pot (an amount, or a percent of another component) paid by the
achievement of weighted outcome metrics, settled annually or quarterly in the period's
last month. Each metric's achievement comes from the outcome tallies of the providers'
episodes ending (post score dated) in the period, and maps to a payable fraction by its
schedule; each line shows the achievement, its 95% interval, the schedule point and money.

A fixed pot is a yearly amount: a settlement period's pot is a twelfth of it for each of the
period's months (a quarter's is × 3/12). An amount varied from a date counts the amount in
force in each month: £1.2m a year to September and £1.5m from October is, over the year,
£1.2m × 6/12 + £1.5m × 6/12 = £1.35m."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement
from carecontracts.engine.backend import Engine, month_of
from carecontracts.engine.measure import matches
from carecontracts.engine.mechanisms.shared import money_text, payments_of, percent_text, runs_in_force, share_value, times_share
from carecontracts.engine.price import KindContext, Placed, PricingError, PricingInputs, Repricing, table_of
from carecontracts.engine.registry import register
from carecontracts.language.model import Metric, OutcomeIncentiveTerms, Schedule
from carecontracts.money import AMOUNT_TYPE, SHARE_TYPE, SHARED_TYPE, VALUE_TYPE, format_money
from carecontracts.outcomes.statistics import Estimate, NoEpisodesError, Statistic, episodes, estimate, mean_predicted, outcome_tallies, rate_per_thousand
from carecontracts.periods import month_label

PLACES = Decimal("0.0000000001")


def payable_fraction(schedule: Schedule, achieved: Decimal) -> Decimal:
    """The share of a metric's weight earned at an achievement: linear between floor and
    target (either way round), all at a threshold, or the pay of the highest step reached."""
    if schedule.type == "linear":
        assert schedule.floor is not None and schedule.target is not None
        share = (achieved - schedule.floor) / (schedule.target - schedule.floor)
        return min(Decimal(1), max(Decimal(0), share)).quantize(PLACES)
    if schedule.type == "threshold":
        assert schedule.target is not None
        return Decimal(1) if achieved >= schedule.target else Decimal(0)
    assert schedule.steps is not None
    rising = schedule.steps[0].at <= schedule.steps[-1].at
    reached = [s.pay for s in schedule.steps if (achieved >= s.at if rising else achieved <= s.at)]
    return max(reached, default=Decimal(0))


def schedule_words(schedule: Schedule, shares: bool) -> str:
    """The schedule in words for a statement line (shares shown as percentages)."""

    def shown(value: Decimal) -> str:
        return f"{value * 100:.1f}%" if shares else f"{value.normalize():f}"

    if schedule.type == "linear":
        assert schedule.floor is not None and schedule.target is not None
        return f"linear: nothing at {shown(schedule.floor)}, all at {shown(schedule.target)}"
    if schedule.type == "threshold":
        assert schedule.target is not None
        return f"threshold: all at {shown(schedule.target)} or better"
    assert schedule.steps is not None
    return "stepped: " + ", ".join(f"{s.pay * 100:.0f}% at {shown(s.at)}" for s in schedule.steps)


@dataclass(frozen=True)
class Measuring:
    """One outcome component with the inputs its achievement is measured from."""

    inputs: PricingInputs
    placed: Placed

    @property
    def agreement(self) -> Agreement:
        return self.placed.agreement

    @property
    def months(self) -> list[dt.date]:
        return list(self.placed.months)

    @property
    def engine(self) -> Engine:
        return self.inputs.engine

    def problem(self, message: str, field: str | None = None, expected: str | None = None) -> PricingError:
        return self.placed.error(message, field, expected)


def settlement_periods(context: Measuring, settle: str) -> list[list[dt.date]]:
    """The payable months grouped into settlement periods (the year, or its quarters)."""
    months = context.months
    if settle == "annual":
        return [months] if months else []
    year = context.inputs.year.months
    quarters: dict[int, list[dt.date]] = {}
    for month in months:
        quarters.setdefault(year.index(month) // 3, []).append(month)
    return [quarters[q] for q in sorted(quarters)]


@dataclass(frozen=True)
class Achieved:
    """A metric's achievement in one settlement period: its estimate, or why there is none."""

    metric: Metric
    period: int
    months: list[dt.date]
    estimate: Estimate | str
    shares: bool


def achievements(context: Measuring, terms: OutcomeIncentiveTerms, periods: list[list[dt.date]]) -> list[Achieved]:
    """Per metric and settlement period: the achievement of one outcome component."""
    return achievements_of(context.inputs, [(context.placed, periods)])[0]


def achievements_of(inputs: PricingInputs, items: Sequence[tuple[Placed, list[list[dt.date]]]]) -> list[list[Achieved]]:
    """Per component, metric and settlement period: the achievement measured from the
    outcome data (the same in every scenario; scenarios differ only by
    `achievement_changes`), measured once per set of inputs, and for every component at
    once: one query per kind of score measured, however many components."""
    measured = inputs.repricing.measured
    keys = [("achievements", p.contract, p.id, tuple(tuple(months) for months in periods)) for p, periods in items]
    todo = [(key, p, periods) for key, (p, periods) in zip(keys, items) if key not in measured]
    if todo:
        every = [(p, periods, metric) for _, p, periods in todo for metric in p.component.metrics]  # type: ignore[union-attr]
        wanted = [item for item in every if item[2].measure.statistic != "rate_per_thousand"]
        rated = [item for item in every if item[2].measure.statistic == "rate_per_thousand"]
        scores = _scores(inputs, wanted) if wanted else {}
        scores.update(_rates(inputs, rated) if rated else {})
        for key, p, periods in todo:
            found: list[Achieved] = []
            for metric in p.component.metrics:  # type: ignore[union-attr]
                estimates = scores[(p.contract, p.id, metric.id)]
                shares = metric.measure.statistic in ("share_improved", "share_reaching")
                for index, months in enumerate(periods):
                    found.append(Achieved(metric, index, months, estimates[index], shares))
            measured[key] = found
    return [measured[key] for key in keys]


def _earned(achieved: Achieved, change: Decimal | None) -> dict:
    """The payable fraction of one achievement (moved by a scenario's change, if any) and
    the words saying why."""
    metric, estimate = achieved.metric, achieved.estimate
    if isinstance(estimate, str):
        return _row(metric, achieved.period, achieved.months, Decimal(0), 0, estimate)
    value, adjusted = estimate.value, ""
    if change is not None:
        value = estimate.value + change
        shown = f"{change * 100:+.1f} points" if achieved.shares else f"{change.normalize():+f}"
        adjusted = f"; what-if {shown} → {value * 100:.1f}%" if achieved.shares else f"; what-if {shown} → {value:.2f}"
    fraction = payable_fraction(metric.schedule, value)
    words = f"{estimate.describe()}{adjusted} → {fraction * 100:.1f}% earned ({schedule_words(metric.schedule, achieved.shares)})"
    return _row(metric, achieved.period, achieved.months, fraction, estimate.episodes, words)


def _earned_table(context: KindContext, achieved: list[tuple[Placed, list[Achieved]]]) -> ir.Table:
    """Earned fractions per scenario, component, metric and period. Without achievement
    changes they are the same in every scenario; with them, each scenario's are worked out.
    Where the repricing names a table, they are stored under that name."""
    changes = context.inputs.achievement_changes
    repricing = context.inputs.repricing
    keyed = [(p.contract, p.id, found) for p, found in achieved]
    if repricing.earned_name is not None:
        repricing.achieved = keyed
        return context.engine.store(repricing.earned_name, earned_rows(keyed, context.inputs.scenarios, changes))
    if changes:
        return context.engine.put(earned_rows(keyed, context.inputs.scenarios, changes))
    return context.scenarios().cross_join(context.engine.put(earned_rows(keyed, (None,), {})).drop("scenario"))


def store_earned(engine: Engine, repricing: Repricing, scenarios: tuple[str, ...], changes: dict[tuple[str, str, str], Decimal]) -> None:
    """Store the earned fractions of every outcome component again, under the name the
    repricing gives, for other achievement changes: a query compiled with them then pays
    by the new ones."""
    if repricing.earned_name is not None:
        engine.store(repricing.earned_name, earned_rows(repricing.achieved, scenarios, changes))


EARNED_SCHEMA = pa.schema([
    ("scenario", pa.string()), ("contract", pa.string()), ("component", pa.string()), ("metric", pa.string()), ("period", pa.int64()),
    ("month", pa.date32()), ("earned", pa.decimal128(11, 10)), ("episodes", pa.int64()), ("words", pa.string()),
])


def earned_rows(achieved: list[tuple[str, str, list[Achieved]]], scenarios: tuple[str | None, ...], changes: dict[tuple[str, str, str], Decimal]) -> pa.Table:
    """Each scenario's earned fraction, episodes and words per component, metric and
    period, with the scenario's change to the contract's achievement (if any)."""
    columns: dict[str, list] = {name: [] for name in EARNED_SCHEMA.names}
    for contract, component, found in achieved:
        ours = {(s, m): v for (s, c, m), v in changes.items() if c == contract}
        base = [_earned(a, None) for a in found]
        for scenario in scenarios:
            for position, item in enumerate(found):
                change = ours.get((scenario, item.metric.id)) if scenario is not None else None
                row = base[position] if change is None else _earned(item, change)
                columns["scenario"].append(scenario)
                columns["contract"].append(contract)
                columns["component"].append(component)
                for name in ("metric", "period", "month", "earned", "episodes"):
                    columns[name].append(row[name])
                columns["words"].append(f"{row['metric']} (weight {row['weight'].normalize():f}): {row['words']}")
    return pa.table({name: pa.array(values, EARNED_SCHEMA.field(name).type) for name, values in columns.items()})


def _scores(inputs: PricingInputs, wanted: Sequence[tuple[Placed, list[list[dt.date]], Metric]]) -> dict[tuple[str, str, str], dict[int, Estimate | str]]:
    """A score statistic per component, metric and period from the episodes ending (post
    score dated) in it: one query for every metric measured the same way."""
    outcomes = inputs.outcomes
    if outcomes is None:
        raise PricingError([p.problem("no outcomes are loaded", "metrics", "files in data/outcomes/ and `carecontracts load`") for p, _, _ in wanted[:20]])
    engine = inputs.engine
    measured = inputs.repricing.measured
    if "episodes" not in measured:
        # Pairing pre and post scores is the heavy part of measuring; every metric of every
        # outcome component reads the same pairs.
        measured["episodes"] = engine.cache(episodes(outcomes))
    every = measured["episodes"]
    every = every.mutate(month=month_of(every.post_date))
    by_provider = "provider" in outcomes.columns
    ways: dict[tuple, list[tuple[Placed, list[list[dt.date]], Metric]]] = {}
    for item in wanted:
        measure = item[2].measure
        ways.setdefault((measure.instrument, measure.statistic, measure.min_change, measure.threshold), []).append(item)
    keys = ["contract", "component", "metric", "period"]
    result: dict[tuple[str, str, str], dict[int, Estimate | str]] = {}
    for (instrument, statistic_name, min_change, threshold), items in ways.items():
        statistic = Statistic(statistic_name)
        rows = []
        for placed, periods, metric in items:
            terms: OutcomeIncentiveTerms = placed.component  # type: ignore[assignment]
            providers = sorted(set(terms.providers or placed.agreement.activity_providers)) if by_provider else [None]
            rows += [(placed.contract, placed.id, metric.id, index, month, provider)
                     for index, months in enumerate(periods) for month in months for provider in providers]
        table = table_of(engine, {"contract": pa.string(), "component": pa.string(), "metric": pa.string(), "period": pa.int64(),
                                  "month": pa.date32(), "provider": pa.string()}, rows)
        on = [every.month == table.month] + ([every.provider == table.provider] if by_provider else [])
        ours = every.join(table, on).select(*every.columns, *keys)
        tallies = outcome_tallies(ours, keys, instrument, statistic, min_change, threshold)
        found = {tuple(r[k] for k in keys): r for r in engine.to_arrow(tallies).to_pylist()}
        references: dict[tuple, Decimal] = {}
        if statistic is Statistic.CASEMIX_ADJUSTED_MEAN:
            periods_table = table.select(*keys, "month").distinct()
            everyone = every.join(periods_table, every.month == periods_table.month).select(*every.columns, *keys)
            for row in engine.to_arrow(outcome_tallies(everyone, keys, instrument, statistic)).to_pylist():
                if row["episodes"]:
                    references[tuple(row[k] for k in keys)] = mean_predicted(row)
        for placed, periods, metric in items:
            mine: dict[int, Estimate | str] = {}
            for index in range(len(periods)):
                key = (placed.contract, placed.id, metric.id, index)
                row = found.get(key)
                try:
                    if row is None:
                        raise NoEpisodesError("no episodes")
                    mine[index] = estimate(row, statistic, references.get(key))
                except NoEpisodesError:
                    unpaired = int(row["unpaired"]) if row else 0
                    mine[index] = f"no paired episodes ({unpaired:,} unpaired): nothing earned"
            result[(placed.contract, placed.id, metric.id)] = mine
    return result


def _rates(inputs: PricingInputs, wanted: Sequence[tuple[Placed, list[list[dt.date]], Metric]]) -> dict[tuple[str, str, str], dict[int, Estimate | str]]:
    """Per component, metric and period: events in the activity of the contract's
    commissioners' population per 1,000 person-years (the population's monthly persons
    summed over the period ÷ 12). One query for the events and one for the people of every
    metric counting the same events in the same population bands, however many components."""
    activity, population = inputs.activity, inputs.population
    if activity is None or population is None:
        raise PricingError([p.problem("a rate per 1,000 population needs activity and population data", "metrics", "data/activity and data/population loaded")
                            for p, _, _ in wanted[:20]])
    engine = inputs.engine
    ways: dict[tuple[str, tuple[str, ...]], list[tuple[Placed, list[list[dt.date]], Metric]]] = {}
    for item in wanted:
        measure = item[2].measure
        assert measure.events is not None
        if (measure.events.age_from is not None or measure.events.age_to is not None) and "age" not in activity.columns:
            raise PricingError([item[0].problem("the activity has no age column to count events by age", "metrics", "an `age` column in the activity")])
        ways.setdefault((measure.events.model_dump_json(), tuple(measure.population_bands or ())), []).append(item)
    keys = ["contract", "component", "metric", "period"]
    result: dict[tuple[str, str, str], dict[int, Estimate | str]] = {}
    for (_, bands), items in ways.items():
        spec = items[0][2].measure.events
        assert spec is not None
        rows = [(placed.contract, placed.id, metric.id, index, month, commissioner)
                for placed, periods, metric in items for index, months in enumerate(periods) for month in months
                for commissioner in sorted(set(placed.agreement.activity_commissioners))]
        table = table_of(engine, {"contract": pa.string(), "component": pa.string(), "metric": pa.string(), "period": pa.int64(),
                                  "month": pa.date32(), "commissioner": pa.string()}, rows)
        events = activity.filter(matches(activity, spec))
        if spec.age_from is not None:
            events = events.filter(events.age >= spec.age_from)
        if spec.age_to is not None:
            events = events.filter(events.age <= spec.age_to)
        events = events.select("commissioner", month=month_of(events.end_date))
        events = events.join(table, [events.commissioner == table.commissioner, events.month == table.month]).select(*keys)
        counted = {tuple(r[k] for k in keys): r["events"] for r in engine.to_arrow(events.group_by(keys).aggregate(events=events.count())).to_pylist()}
        people = population.filter(population.band.isin(list(bands))) if bands else population
        people = people.select("commissioner", "persons", month=month_of(people.month))
        people = people.join(table, [people.commissioner == table.commissioner, people.month == table.month]).select(*keys, "persons")
        persons = {tuple(r[k] for k in keys): r["persons"] for r in engine.to_arrow(people.group_by(keys).aggregate(persons=people.persons.sum())).to_pylist()}
        for placed, periods, metric in items:
            mine: dict[int, Estimate | str] = {}
            for index in range(len(periods)):
                key = (placed.contract, placed.id, metric.id, index)
                person_years = round(Decimal(persons.get(key) or 0) / 12)
                if person_years <= 0:
                    mine[index] = "no population in the period: nothing earned"
                    continue
                mine[index] = rate_per_thousand(int(counted.get(key) or 0), int(person_years))
            result[(placed.contract, placed.id, metric.id)] = mine
    return result


def _row(metric: Metric, period: int, months: list[dt.date], fraction: Decimal, count: int, words: str) -> dict:
    return {"metric": metric.id, "period": period, "month": months[-1], "weight": metric.weight,
            "earned": (metric.weight * fraction).quantize(PLACES), "episodes": count, "words": words}


@register("outcome_incentive", measures_activity=False, summary="pays a pot by the achievement of outcome metrics against their schedules")
def price_outcome_incentive(context: KindContext) -> ir.Table:
    periods = {(p.contract, p.id): settlement_periods(Measuring(context.inputs, p), p.component.settle) for p in context.placed}  # type: ignore[union-attr]
    found = achievements_of(context.inputs, [(p, periods[(p.contract, p.id)]) for p in context.placed])
    achieved = list(zip(context.placed, found))
    earned = _earned_table(context, achieved)
    pot = _pot(context, periods)
    table = pot.join(earned, ["scenario", "contract", "component", "period"])
    amount = (table.pot.cast(SHARED_TYPE) * table.earned.cast(SHARE_TYPE)).cast(VALUE_TYPE)
    return table.mutate(
        origin=table.component,
        component=table.component + "." + table.metric,
        quantity=table.episodes,
        rate=table.earned,
        amount=amount.round(2).cast(AMOUNT_TYPE),
        basis=table.words + "; × pot " + money_text(context, table.pot) + table.pot_words,
    )


def _pot(context: KindContext, periods: dict[tuple[str, str], list[list[dt.date]]]) -> ir.Table:
    """The pot per scenario, component, payer and period, with words saying where it comes from."""
    fixed_rows, period_rows, references, percents = [], [], [], []
    for placed in context.placed:
        terms: OutcomeIncentiveTerms = placed.component  # type: ignore[assignment]
        mine = periods[(placed.contract, placed.id)]
        if terms.pot.amount is not None:
            payers = placed.agreement.payers
            for payer in payers:
                for number, months in enumerate(mine):
                    share = f", {payer.id}'s share {payer.share.normalize():f}" if len(payers) > 1 else ""
                    if isinstance(terms.pot.amount, Decimal):
                        pot = (terms.pot.amount * payer.share * len(months) / 12).quantize(PLACES)
                        part = "" if len(months) == 12 else f" × {len(months)}/12"
                        amount_words = f"{format_money(terms.pot.amount)} a year{part}"
                    else:
                        # A twelfth a month of the amount in force in it.
                        runs = runs_in_force(placed, terms.pot.amount, months)
                        pot = (sum((value * count for value, count in runs), Decimal(0)) * payer.share / 12).quantize(PLACES)
                        amount_words = " + ".join(f"{format_money(value)} a year" + ("" if count == 12 else f" × {count}/12") for value, count in runs)
                    fixed_rows.append((placed.contract, placed.id, placed.agreement.payee, payer.id, number, pot,
                                       f" ({amount_words}{share}, {month_label(months[0])} to {month_label(months[-1])})"))
        else:
            assert terms.pot.percent_of is not None and terms.pot.percent is not None
            references.append((placed, terms.pot.percent_of))
            percents.append((placed.contract, placed.id, placed.agreement.payee, share_value(terms.pot.percent / 100),
                             f" ({percent_text(terms.pot.percent)} of {terms.pot.percent_of} "))
            period_rows += [(placed.contract, placed.id, month, number) for number, months in enumerate(mine) for month in months]
    types = {"contract": pa.string(), "component": pa.string(), "payee": pa.string(), "payer": pa.string(), "period": pa.int64(), "pot": pa.decimal128(28, 10), "pot_words": pa.string()}
    parts = []
    if fixed_rows:
        parts.append(context.scenarios().cross_join(context.table(types, fixed_rows)))
    if references:
        base = payments_of(context, references)
        numbered = context.table({"contract": pa.string(), "component": pa.string(), "month": pa.date32(), "period": pa.int64()}, period_rows)
        base = base.join(numbered, ["contract", "component", "month"])
        base = base.group_by(["scenario", "contract", "component", "payer", "period"]).aggregate(base=base.base.sum().cast(AMOUNT_TYPE))
        terms_table = context.table({"contract": pa.string(), "component": pa.string(), "payee": pa.string(), "share": pa.decimal128(11, 10), "words": pa.string()}, percents)
        base = base.join(terms_table, ["contract", "component"])
        parts.append(base.select(
            "scenario", "contract", "component", "payee", "payer", "period",
            pot=times_share(base.base, base.share),
            pot_words=base.words + money_text(context, base.base) + ")",
        ))
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
