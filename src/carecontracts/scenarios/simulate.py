"""Risk foresight: a Monte Carlo simulation of every party's position.

Each run is a scenario key (`run:1`, `run:2`, ...) whose tallies are drawn around the
expected year and priced by the one price stage, a chunk of runs at a time so memory stays
bounded. What is drawn, per run:

- volume, per provider, activity service and month: Poisson or negative binomial (a
  gamma-Poisson mixture) around the expected events, all scaled by one system-wide demand
  shock (lognormal, mean 1) that correlates every provider and service in the run;
- unit cost, per provider and month: lognormal with mean 1;
- outcome achievement, per outcome metric: beta-binomial around the measured share (normal
  around a mean with its standard error, Poisson around a rate's events).

Each run draws from its own generator, derived from the seed and the run's number, so a run
is reproducible on its own and the output does not depend on the chunk size. Drawn volumes
scale the expected tallies' measures, which are then rounded to the tallies' decimal places:
the inputs are random, the pricing of them is exact.

The expected year is the loaded year's activity, or with `as_of` the actual months to then
and the run rate of the year to date after it. Named stress tests (winter demand, outcome
achievement down, each sub-contractor leaving) are priced beside the distribution.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Callable, Literal, Sequence, TypeVar

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, ValidationError

from carecontracts.engine.agreements import Agreement, agreements_of
from carecontracts.engine.backend import Engine
from carecontracts.engine.measure import ACTUAL, SPELL_KEYS, TALLY_KEYS, known_cost, tallies
from carecontracts.engine.mechanisms.outcome_incentive import Achieved, Measuring, achievements, store_earned
from carecontracts.engine.positions import POSITION_COLUMNS, positions, roles
from carecontracts.engine.price import PricingInputs, Repricing, placed_components
from carecontracts.engine.run import RunTables, measure, price_tallies
from carecontracts.language.load import problems_from_validation
from carecontracts.language.model import Contract, OutcomeIncentiveTerms, Strict
from carecontracts.language.yaml_lines import LocatedDocument
from carecontracts.money import AMOUNT_TYPE, QUANTITY_TYPE, pence, pounds, to_pence
from carecontracts.periods import FinancialYear, month_label
from carecontracts.problems import Problem, ProblemsError

UNIT = ("provider", "service")
SCALED = {"quantity": 8, "readmitted": 8, "chargeable": 8}
COUNTED = ("events", "compliant")
EXPECTED = "expected"
EXPECTED_ROWS = pa.schema(
    [*((name, pa.string()) for name in ("contract", "component", "payer", "service", "currency")), ("month", pa.date32()),
     *((name, pa.decimal128(20, 8)) for name in SCALED), ("events", pa.int64()), ("cost", pa.decimal128(18, 2)), ("compliant", pa.int64()),
     *((f"unit_{name}", pa.string()) for name in UNIT)]
)
DEFAULT_DEMAND_SHOCK = 0.03
DEFAULT_COST_SD = 0.05
MIN_HISTORY = 3
T = TypeVar("T")


# --------------------------------------------------------------------------- the model


class Dispersion(Strict):
    """A negative binomial size for one provider's activity service (none: Poisson)."""

    provider: str
    service: str
    size: Annotated[float, Field(gt=0)] | None = None


class VolumeModel(Strict):
    """How activity volume varies from run to run."""

    distribution: Literal["poisson", "negative_binomial"] = Field(
        default="negative_binomial", description="negative_binomial fits extra-Poisson variation from history; poisson never does."
    )
    demand_shock: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None, description=f"Standard deviation of the run's system-wide log demand shock (default {DEFAULT_DEMAND_SHOCK})."
    )
    dispersion: list[Dispersion] = Field(default_factory=list, description="Sizes that override those fitted from history.")


class CostModel(Strict):
    """How unit cost varies: lognormal per provider and month."""

    sd: Annotated[float, Field(ge=0, le=2)] | None = Field(default=None, description="Standard deviation of log unit cost for every provider.")
    providers: dict[str, Annotated[float, Field(ge=0, le=2)]] = Field(default_factory=dict, description="The same for named providers.")


class OutcomeModel(Strict):
    """How outcome achievement varies: beta-binomial around the measured share."""

    overdispersion: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.01, description="Intra-class correlation of the beta-binomial (0: binomial)."
    )


class StressModel(Strict):
    """The named deterministic shocks reported beside the distribution."""

    winter_demand_percent: Decimal = Field(default=Decimal(10), description="Extra demand in the winter months.")
    winter_months: list[Annotated[int, Field(ge=1, le=12)]] = Field(default_factory=lambda: [12, 1, 2])
    outcome_points: Decimal = Field(default=Decimal(-10), description="Change in every share metric's achievement, in points.")
    replacement_premium_percent: Decimal = Field(
        default=Decimal(10), description="What a prime pays over a departing sub-contractor's price to buy its activity elsewhere."
    )


class RiskModel(Strict):
    """A simulation's model: each part overrides what is fitted from the workspace's history."""

    volume: VolumeModel = Field(default_factory=VolumeModel)
    cost: CostModel = Field(default_factory=CostModel)
    outcomes: OutcomeModel = Field(default_factory=OutcomeModel)
    stress: StressModel = Field(default_factory=StressModel)


def parse_risk_model(document: LocatedDocument) -> RiskModel:
    """A risk model from YAML, every problem located by line and field."""
    try:
        return RiskModel.model_validate(document.data or {})
    except ValidationError as error:
        raise ProblemsError(problems_from_validation(document, error)) from None


# --------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class Parameter:
    """A model parameter and where it came from (fitted, a default, the model file)."""

    name: str
    value: float | None
    source: str


def noise_variance(series: np.ndarray) -> float:
    """Variance of month-to-month noise by successive differences (von Neumann), which a
    slow trend or a season barely inflates, unlike the plain variance."""
    return float(np.sum(np.diff(series) ** 2) / (2 * (len(series) - 1)))


def fit_size(monthly_events: np.ndarray) -> float | None:
    """Negative binomial size from monthly counts (variance = mean + mean²/size); None where
    the noise is no more than Poisson or there are fewer than three months."""
    if len(monthly_events) < MIN_HISTORY:
        return None
    mean = float(np.mean(monthly_events))
    variance = noise_variance(monthly_events.astype(float))
    if mean <= 0 or variance <= mean:
        return None
    return mean * mean / (variance - mean)


def fit_cost_sd(monthly_cost: np.ndarray, monthly_events: np.ndarray) -> float | None:
    """Standard deviation of log unit cost from months with both cost and events."""
    usable = (monthly_events > 0) & (monthly_cost > 0)
    if usable.sum() < MIN_HISTORY:
        return None
    return math.sqrt(noise_variance(np.log(monthly_cost[usable] / monthly_events[usable])))


# --------------------------------------------------------------------------- the expected year


@dataclass
class Expected:
    """The expected year at the grain runs are drawn at.

    `rows` are routed tallies with their unit (provider, activity service); `events` and
    `cost` are each unit's expected events and cost per month; months before `first`
    (the first month simulated) are actual and not drawn."""

    rows: pa.Table
    units: list[tuple[str, str]]
    months: list[dt.date]
    first: int
    events: np.ndarray
    cost: np.ndarray
    has_cost: np.ndarray
    history_events: np.ndarray
    history_cost: np.ndarray


def _float(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A decimal column as floats for drawing (nulls as 0): the draws are rounded back to
    exact decimals before anything is priced."""
    return pc.cast(column, pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)


def expected_year(engine: Engine, agreements: list[Agreement], year: FinancialYear, tables: RunTables, as_of: dt.date | None) -> Expected:
    """Routed tallies with units for the year: actual, or with `as_of` actual to then and
    each key's mean month of the year to date after it. A year whose activity stops before
    its end is taken as of its last month with activity."""
    fine, _ = measure(engine, agreements, tables.activity)
    if fine is None:
        raise ProblemsError([Problem("data/activity", "no activity to simulate from", expected="activity loaded (see `carecontracts load`)")])
    fine = fine.filter(fine.scenario == ACTUAL, fine.month.isin(year.months))
    routed = tallies(engine, fine, agreements, keep=UNIT)
    rows = engine.to_arrow(routed) if routed is not None else EXPECTED_ROWS.empty_table()
    unit_months = engine.to_arrow(
        fine.group_by([*UNIT, "month"]).aggregate(events=fine.events.sum(), cost=known_cost(fine.cost))
    )
    months = year.months
    seen = set(unit_months.column("month").to_pylist())
    if as_of is None and seen and max(seen) < months[-1]:
        as_of = max(seen)
    if as_of is not None:
        if as_of not in months:
            raise ProblemsError([Problem("--as-of", f"{month_label(as_of)} is outside the financial year {year.label}", expected="a month of the year")])
        if as_of == months[-1]:
            raise ProblemsError([Problem("--as-of", f"{month_label(as_of)} is the year's last month: nothing is left to simulate", expected="an earlier month")])
        if as_of not in seen:
            raise ProblemsError([Problem("--as-of", f"there is no activity in {month_label(as_of)} to simulate from", expected="a month with activity loaded")])
        first = months.index(as_of) + 1
    else:
        first = 0
    units = sorted({(p, s) for p, s in zip(unit_months.column("provider").to_pylist(), unit_months.column("service").to_pylist())})
    index = {unit: i for i, unit in enumerate(units)}
    history_events = np.zeros((len(units), len(months)))
    history_cost = np.zeros((len(units), len(months)))
    has_cost = np.zeros(len(units), dtype=bool)
    uncosted: set[str] = set()
    for row in unit_months.to_pylist():
        u, m = index[(row["provider"], row["service"])], months.index(row["month"])
        history_events[u, m] = row["events"]
        if row["cost"] is not None:
            history_cost[u, m] = float(row["cost"])
            has_cost[u] = True
        else:
            uncosted.add(row["provider"])
    # A provider's costs are known only when all of its activity carries them.
    has_cost &= np.array([unit[0] not in uncosted for unit in units], dtype=bool)
    events, cost = history_events.copy(), history_cost.copy()
    if first:
        known = months[:first]
        events[:, first:] = history_events[:, :first].mean(axis=1, keepdims=True)
        cost[:, first:] = history_cost[:, :first].mean(axis=1, keepdims=True)
        rows = _run_rate_rows(rows, known, months[first:])
        history_events, history_cost = history_events[:, :first], history_cost[:, :first]
    return Expected(rows, units, months, first, events, cost, has_cost, history_events, history_cost)


def _run_rate_rows(rows: pa.Table, known: list[dt.date], future: list[dt.date]) -> pa.Table:
    """Actual rows of the known months, then each key's mean known month in every future month."""
    months = rows.column("month")
    actual = rows.filter(pc.is_in(months, pa.array(known, pa.date32())))
    key = [c for c in actual.column_names if c not in ("month", *SCALED, *COUNTED, "cost")]
    sums = actual.group_by(key).aggregate([(c, "sum") for c in (*SCALED, *COUNTED, "cost")])
    count = len(known)
    columns: dict[str, pa.Array] = {c: sums.column(c) for c in key}
    for name, places in SCALED.items():
        columns[name] = _decimal(np.round(_float(sums.column(f"{name}_sum")) / count * 10**places), 20, places)
    for name in COUNTED:
        columns[name] = pa.array(np.round(_float(sums.column(f"{name}_sum")) / count).astype(np.int64))
    cost = sums.column("cost_sum")
    columns["cost"] = pc.if_else(pc.is_null(cost), pa.scalar(None, pa.decimal128(18, 2)), _decimal(np.round(_float(cost) / count * 100), 18, 2))
    mean = pa.table(columns)
    ahead = [mean.append_column("month", pa.array([month] * mean.num_rows, pa.date32())) for month in future]
    return pa.concat_tables([actual, *[t.select(actual.column_names) for t in ahead]])


def _decimal(scaled: np.ndarray, precision: int, places: int, null: np.ndarray | None = None) -> pa.Array:
    """Whole numbers of the smallest unit (pence, 10⁻⁸ units) as an exact decimal array
    (null where `null` is true)."""
    values = scaled.astype(np.int64, copy=False)
    words = np.empty((len(values), 2), dtype=np.int64)  # little-endian 128-bit: low word, then the sign
    words[:, 0] = values
    np.right_shift(values, 63, out=words[:, 1])
    validity = None
    if null is not None and null.any():
        validity = pa.py_buffer(np.packbits(~null, bitorder="little"))
    return pa.Array.from_buffers(pa.decimal128(precision, places), len(values), [validity, pa.py_buffer(words)])


# --------------------------------------------------------------------------- the fitted model


@dataclass(frozen=True)
class OutcomeTarget:
    """An outcome metric whose achievement is drawn: its measured estimate."""

    contract: str
    metric: str
    statistic: str
    value: Decimal
    episodes: int
    successes: int | None
    standard_error: float


@dataclass
class Fitted:
    """Every parameter the runs draw with, and where each came from."""

    expected: Expected
    sizes: np.ndarray
    demand_shock: Parameter
    cost_sd: dict[str, Parameter]
    overdispersion: float
    outcomes: list[OutcomeTarget]
    parameters: list[Parameter] = field(default_factory=list)


def fit(expected: Expected, model: RiskModel, outcomes: list[OutcomeTarget]) -> Fitted:
    """Parameters from the workspace's history, overridden by the model."""
    volume = model.volume
    overrides = {(d.provider, d.service): d.size for d in volume.dispersion}
    sizes = np.full(len(expected.units), np.nan)
    parameters: list[Parameter] = []
    history = expected.history_events.shape[1]
    for u, unit in enumerate(expected.units):
        if unit in overrides:
            size, source = overrides[unit], "model file"
        elif volume.distribution == "poisson":
            size, source = None, "model file: poisson"
        elif history < MIN_HISTORY:
            size, source = None, f"poisson: {history} months are too few to fit"
        else:
            size = fit_size(expected.history_events[u])
            source = f"fitted from {history} months" if size is not None else f"poisson: no extra-Poisson noise in {history} months"
        if size is not None:
            sizes[u] = size
        parameters.append(Parameter(f"volume {unit[0]} {unit[1]}: month-to-month spread (negative binomial size: the smaller, the more it varies)", size, source))
    shock = Parameter("system-wide demand shock (sd of log)", volume.demand_shock if volume.demand_shock is not None else DEFAULT_DEMAND_SHOCK,
                      "model file" if volume.demand_shock is not None else "default")
    providers = sorted({p for p, _ in expected.units})
    cost_sd: dict[str, Parameter] = {}
    for provider in providers:
        name = f"unit cost {provider} (sd of log)"
        mine = [u for u, unit in enumerate(expected.units) if unit[0] == provider]
        if provider in model.cost.providers:
            cost_sd[provider] = Parameter(name, model.cost.providers[provider], "model file")
        elif model.cost.sd is not None:
            cost_sd[provider] = Parameter(name, model.cost.sd, "model file")
        elif not expected.has_cost[mine].any():
            cost_sd[provider] = Parameter(name, None, "no costs in the activity")
        else:
            fitted = fit_cost_sd(expected.history_cost[mine].sum(axis=0), expected.history_events[mine].sum(axis=0))
            cost_sd[provider] = Parameter(name, fitted if fitted is not None else DEFAULT_COST_SD, f"fitted from {history} months" if fitted is not None else "default")
    parameters = [shock, *parameters, *cost_sd.values()]
    parameters.append(Parameter("outcome overdispersion (beta-binomial ICC)", model.outcomes.overdispersion, "model file or default"))
    return Fitted(expected, sizes, shock, cost_sd, model.outcomes.overdispersion, outcomes, parameters)


def outcome_targets(engine: Engine, agreements: list[Agreement], year: FinancialYear, tables: RunTables, repricing: Repricing | None = None) -> list[OutcomeTarget]:
    """The measured achievement of every outcome metric over its agreement's year."""
    inputs = PricingInputs(engine, year, (ACTUAL,), None, tables.prices, tables.plans, tables.population, tables.outcomes, tables.activity,
                           repricing=repricing or Repricing())
    found: list[OutcomeTarget] = []
    for placed in placed_components(agreements, year):
        if not isinstance(placed.component, OutcomeIncentiveTerms) or not placed.months:
            continue
        for achieved in achievements(Measuring(inputs, placed), placed.component, [list(placed.months)]):
            target = _target(placed.contract, achieved)
            if target is not None:
                found.append(target)
    return found


def _target(contract: str, achieved: Achieved) -> OutcomeTarget | None:
    """What a run's achievement is drawn around (None where nothing was measured)."""
    estimate = achieved.estimate
    if isinstance(estimate, str):
        return None
    spread = (estimate.upper - estimate.lower) / (2 * 1.959963984540054) if math.isfinite(estimate.upper - estimate.lower) else 0.0
    return OutcomeTarget(contract, achieved.metric.id, estimate.statistic, estimate.value, estimate.episodes, estimate.successes, spread)


# --------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class Draws:
    """What one chunk of runs drew: volume and cost factors per unit-month (the last column
    1, for rows not drawn) and outcome achievement changes."""

    names: tuple[str, ...]
    volume: np.ndarray
    cost: np.ndarray
    achievement: dict[tuple[str, str, str], Decimal]

    @classmethod
    def none(cls, width: int) -> "Draws":
        """No runs at all: what gives a stored table its columns before any chunk is drawn."""
        return cls((), np.ones((0, width)), np.ones((0, width)), {})


def run_name(number: int) -> str:
    """The scenario key of a run: `run:1` is the first."""
    return f"run:{number}"


def draw(fitted: Fitted, seed: int, first_run: int, count: int) -> Draws:
    """Draws for runs first_run .. first_run + count - 1 (numbered from 1), each from its own
    generator derived from the seed and the run's number."""
    expected = fitted.expected
    units, months = len(expected.units), len(expected.months)
    drawn = slice(expected.first, months)
    providers = sorted({p for p, _ in expected.units})
    provider_of = np.array([providers.index(p) for p, _ in expected.units])
    cost_sd = np.array([fitted.cost_sd[p].value or 0.0 for p in providers])
    mean = expected.events[:, drawn]
    sizes = fitted.sizes[:, None] * np.ones_like(mean)
    negative_binomial = ~np.isnan(sizes)
    shock_sd = fitted.demand_shock.value or 0.0
    volume = np.ones((count, units * months + 1))
    cost = np.ones((count, units * months + 1))
    achievement: dict[tuple[str, str, str], Decimal] = {}
    names = tuple(run_name(n) for n in range(first_run, first_run + count))
    for position, number in enumerate(range(first_run, first_run + count)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(number,)))
        shock = math.exp(shock_sd * rng.standard_normal() - shock_sd * shock_sd / 2)
        mixing = np.ones_like(mean)
        if negative_binomial.any():
            shape = sizes[negative_binomial]
            mixing[negative_binomial] = rng.gamma(shape, 1 / shape)
        counts = rng.poisson(mean * shock * mixing)
        factors = np.ones((units, months))
        factors[:, drawn] = np.divide(counts, mean, out=np.ones_like(mean), where=mean > 0)
        volume[position, :-1] = factors.ravel()
        log_cost = rng.standard_normal((len(providers), months - expected.first)) * cost_sd[:, None] - (cost_sd[:, None] ** 2) / 2
        unit_cost = np.ones((units, months))
        unit_cost[:, drawn] = np.exp(log_cost)[provider_of]
        cost[position, :-1] = unit_cost.ravel()
        for target in fitted.outcomes:
            achievement[(names[position], target.contract, target.metric)] = _achievement_change(rng, target, fitted.overdispersion)
    return Draws(names, volume, cost, achievement)


def _achievement_change(rng: np.random.Generator, target: OutcomeTarget, overdispersion: float) -> Decimal:
    """A run's achievement less the measured one: beta-binomial for a share, Poisson events
    for a rate, normal with the standard error for a mean."""
    if target.statistic in ("share_improved", "share_reaching") and target.episodes > 0:
        rate = float(target.value)
        if overdispersion > 0 and 0 < rate < 1:
            total = (1 - overdispersion) / overdispersion
            rate = rng.beta(rate * total, (1 - rate) * total)
        drawn = Decimal(int(rng.binomial(target.episodes, rate))) / target.episodes
    elif target.statistic == "rate_per_thousand" and target.successes:
        events = int(rng.poisson(target.successes))
        drawn = target.value * events / target.successes
    else:
        drawn = target.value + Decimal(repr(float(rng.normal(0, target.standard_error))))
    return (drawn - target.value).quantize(Decimal("0.0000000001"))


@dataclass(frozen=True)
class Layout:
    """The expected rows arranged for drawing: sorted by tally key, each row's column in
    the draw arrays (the last column: not drawn), where each key's rows start, the keys
    themselves, and the rows' measures as floats."""

    where: np.ndarray
    starts: np.ndarray
    keys: pa.Table
    measures: dict[str, np.ndarray]
    no_cost: np.ndarray
    width: int


def layout(expected: Expected) -> Layout:
    """Sort the expected rows by tally key once, for every chunk to scale and sum."""
    key_columns = [*TALLY_KEYS[1:], *(c for c in SPELL_KEYS if c in expected.rows.column_names)]
    rows = expected.rows.sort_by([(c, "ascending") for c in key_columns])
    units = {unit: i for i, unit in enumerate(expected.units)}
    months = {m: i for i, m in enumerate(expected.months)}
    width, last = len(expected.months), len(expected.units) * len(expected.months)
    where = np.array(
        [units[(p, s)] * width + months[m] if months[m] >= expected.first else last
         for p, s, m in zip(rows.column("unit_provider").to_pylist(), rows.column("unit_service").to_pylist(), rows.column("month").to_pylist())],
        dtype=np.int64,
    )
    keys = rows.select(key_columns)
    key_values = list(zip(*(keys.column(name).to_pylist() for name in key_columns)))
    starts = np.array([i for i, key in enumerate(key_values) if i == 0 or key != key_values[i - 1]], dtype=np.int64)
    measures = {name: _float(rows.column(name)) for name in (*SCALED, *COUNTED, "cost")}
    cost_null = pc.is_null(rows.column("cost")).to_numpy(zero_copy_only=False)
    no_cost = np.logical_and.reduceat(cost_null, starts) if len(starts) else np.zeros(0, dtype=bool)
    distinct = keys.take(pa.array(starts))
    distinct = pa.table({name: pc.dictionary_encode(column) if pa.types.is_string(column.type) else column
                         for name, column in zip(distinct.column_names, distinct.columns)})
    return Layout(where, starts, distinct, measures, no_cost, last + 1)


def chunk_measures(arranged: Layout, draws: Draws) -> pa.Table:
    """The measures of a chunk of runs' routed tallies, per key and slot (the run's place in
    the chunk): each expected row's measures scaled by its run's volume (and cost) factors,
    rounded to their places and summed to tally keys. Rows come key by key (so by contract
    and component), every run of a key together."""
    count, keys = len(draws.names), len(arranged.starts)
    volume = draws.volume.T[arranged.where]
    cost = draws.cost.T[arranged.where]
    scratch = np.empty_like(volume)
    # Most keys have one expected row; the rows after a key's first are added to it.
    key_of_row = np.repeat(np.arange(keys), np.diff(np.append(arranged.starts, len(arranged.where))))
    later = np.setdiff1d(np.arange(len(arranged.where)), arranged.starts)

    def summed(name: str, scale: int, with_cost: bool = False) -> np.ndarray:
        measure = arranged.measures[name]
        if not measure.any():
            return np.zeros(keys * count, dtype=np.int64)
        np.multiply(measure[:, None], volume, out=scratch)
        if with_cost:
            np.multiply(scratch, cost, out=scratch)
        np.multiply(scratch, scale, out=scratch)
        np.rint(scratch, out=scratch)
        total = scratch[arranged.starts]
        if later.size:
            np.add.at(total, key_of_row[later], scratch[later])
        return total.ravel().astype(np.int64)

    table: dict[str, pa.Array] = {
        "key": pa.array(np.repeat(np.arange(keys, dtype=np.int32), count)),
        "slot": pa.array(np.tile(np.arange(count, dtype=np.int32), keys)),
    }
    for name, places in SCALED.items():
        table[name] = _decimal(summed(name, 10**places), 20, places)
    for name in COUNTED:
        table[name] = pa.array(summed(name, 1))
    table["cost"] = _decimal(summed("cost", 100, with_cost=True), 18, 2, null=np.repeat(arranged.no_cost, count))
    return pa.table(table)


class StoredTallies:
    """Routed tallies of a chunk of scenarios as engine tables under fixed names, replaced
    chunk by chunk, so a query built on `routed` once reads whichever chunk is stored. The
    tally keys and each slot's scenario are stored once; a chunk's measures come per key and
    slot (the run's place in the chunk) and are joined to their keys' text as they are
    read, rather than the text being copied in for every run."""

    def __init__(self, engine: Engine, arranged: Layout, prefix: str, slots: tuple[str, ...]) -> None:
        self.engine, self.arranged, self.slots = engine, arranged, slots
        self.names = [f"{prefix}_{part}" for part in ("keys", "slots", "measures")]
        keys = engine.store(self.names[0], arranged.keys.append_column("key", pa.array(np.arange(len(arranged.starts), dtype=np.int32))))
        numbered = engine.store(self.names[1], pa.table({"slot": pa.array(np.arange(len(slots), dtype=np.int32)), "scenario": pa.array(slots, pa.string())}))
        measures = engine.store(self.names[2], chunk_measures(arranged, Draws.none(arranged.width)))
        routed = measures.join(keys, "key").join(numbered, "slot")
        spelled = [c for c in SPELL_KEYS if c in arranged.keys.column_names]
        self.routed = routed.select("scenario", *TALLY_KEYS[1:], *spelled, *SCALED, "events", "cost", "compliant")

    def fill(self, measures: pa.Table) -> None:
        """Store a chunk's measures (`chunk_measures`: its runs in the first slots)."""
        self.engine.store(self.names[2], measures)

    def drop(self) -> None:
        """Free the stored tables."""
        for name in self.names:
            self.engine.drop(name)


def run_costs(expected: Expected, draws: Draws) -> pa.Table:
    """Each provider's cost per run and month (providers whose activity carries costs)."""
    units, months = len(expected.units), len(expected.months)
    factor = (draws.volume[:, :-1] * draws.cost[:, :-1]).reshape(len(draws.names), units, months)
    spent = factor * expected.cost[None, :, :]
    providers = sorted({p for p, u in zip([p for p, _ in expected.units], expected.has_cost) if u})
    scenario, party, month, pence = [], [], [], []
    for provider in providers:
        mine = [u for u, unit in enumerate(expected.units) if unit[0] == provider and expected.has_cost[u]]
        total = np.round(spent[:, mine, :].sum(axis=1) * 100)
        for r, name in enumerate(draws.names):
            scenario += [name] * months
            party += [provider] * months
            month += expected.months
            pence.append(total[r])
    return pa.table({"scenario": pa.array(scenario, pa.string()), "provider": pa.array(party, pa.string()), "month": pa.array(month, pa.date32()),
                     "cost": _decimal(np.concatenate(pence) if pence else np.zeros(0), 18, 2)})


# --------------------------------------------------------------------------- pricing and collecting


FLOW_KEYS = ["scenario", "contract", "payer", "payee", "month"]


@dataclass
class Results:
    """Per scenario: each party's position, each contract's flows by month, and each
    party's monthly margin (net less costs)."""

    positions: list[pa.Table] = field(default_factory=list)
    flows: list[pa.Table] = field(default_factory=list)
    monthly: list[pa.Table] = field(default_factory=list)

    def add(self, other: "Results") -> None:
        self.positions += other.positions
        self.flows += other.flows
        self.monthly += other.monthly


def settle(engine: Engine, agreements: list[Agreement], year: FinancialYear, flows: pa.Table, costs: pa.Table) -> Results:
    """Positions and monthly margins of priced flows (amount per contract, payer, payee, month)."""
    return settled(engine.to_arrow(positions(engine.put(flows), engine.put(costs), agreements, year.months)), flows, costs)


def settled(placed: pa.Table, flows: pa.Table, costs: pa.Table) -> Results:
    """Flows with their positions, and each party's monthly margin (net less costs)."""
    received = flows.group_by(["scenario", "payee", "month"]).aggregate([("amount", "sum")]).rename_columns(["scenario", "party", "month", "amount"])
    paid = flows.group_by(["scenario", "payer", "month"]).aggregate([("amount", "sum")]).rename_columns(["scenario", "party", "month", "amount"])
    paid = paid.set_column(3, "amount", pc.negate(paid.column("amount")))
    spent = costs.rename_columns(["scenario", "party", "month", "amount"])
    spent = spent.set_column(3, "amount", pc.negate(pc.cast(spent.column("amount"), pa.decimal128(38, 2))))
    every = pa.concat_tables([t.cast(pa.schema([("scenario", pa.string()), ("party", pa.string()), ("month", pa.date32()), ("amount", pa.decimal128(38, 2))]))
                              for t in (received, paid, spent)])
    monthly = every.group_by(["scenario", "party", "month"]).aggregate([("amount", "sum")]).rename_columns(["scenario", "party", "month", "margin"])
    return Results([placed], [flows], [monthly])


def price_runs(engine: Engine, agreements: list[Agreement], year: FinancialYear, tables: RunTables, routed: ir.Table, names: tuple[str, ...],
               achievement: dict[tuple[str, str, str], Decimal], repricing: Repricing | None = None) -> pa.Table:
    """Each scenario's flows: amount per contract, payer, payee and month, from the one price stage."""
    return engine.to_arrow(flows_of(price_tallies(engine, agreements, year, tables, routed, names, achievement, repricing)))


def flows_of(lines: ir.Table) -> ir.Table:
    """Statement lines summed to flows: amount per scenario, contract, payer, payee and month."""
    return lines.group_by(FLOW_KEYS).aggregate(amount=lines.amount.sum().cast(AMOUNT_TYPE))


class RunPricing:
    """Prices chunks of runs with one query, built and compiled once. The runs of a chunk
    fill numbered slots (`run:1` to `run:<size>`), so the query is the same for every chunk;
    only the tables it reads are stored again: the chunk's tallies, and each outcome
    component's earned fractions under the chunk's drawn achievement. The slots' flows are
    then named by their runs."""

    def __init__(self, prepared: Prepared, size: int) -> None:
        engine = prepared.engine
        self.engine = engine
        self.slots = tuple(run_name(n) for n in range(1, size + 1))
        self.stored = StoredTallies(engine, prepared.arranged, "cc_simulation_runs", self.slots)
        # The runs' tally keys are the expected year's, checked against the price lists when it was priced.
        self.repricing = Repricing(prepared.measured, prices_checked=True, earned_name="cc_simulation_earned", keep_passes=False)
        lines = price_tallies(engine, prepared.agreements, prepared.year, prepared.tables, self.stored.routed, self.slots, None, self.repricing)
        flows = flows_of(lines)
        self.query = engine.compiled(flows)
        self.settling = ["cc_simulation_flows", "cc_simulation_costs"]
        priced = engine.store(self.settling[0], flows.schema().to_pyarrow().empty_table())
        spent = engine.store(self.settling[1], run_costs(prepared.expected, Draws.none(prepared.arranged.width)))
        self.placing = engine.compiled(positions(priced, spent, prepared.agreements, prepared.year.months))

    def flows(self, draws: Draws, measures: pa.Table) -> pa.Table:
        """The flows of a chunk of runs (at most `size`), given its draws and their measures."""
        self.stored.fill(measures)
        slot_of = dict(zip(draws.names, self.slots))
        changes = {(slot_of[name], contract, metric): change for (name, contract, metric), change in draws.achievement.items()}
        store_earned(self.engine, self.repricing, self.slots, changes)
        flows = self.query()
        slot = pc.index_in(flows.column("scenario"), value_set=pa.array(self.slots, pa.string()))
        filled = pc.less(slot, len(draws.names))
        flows = flows.filter(filled)
        return flows.set_column(0, "scenario", pc.take(pa.array(draws.names, pa.string()), slot.filter(filled)))

    def settle(self, flows: pa.Table, costs: pa.Table) -> Results:
        """A chunk's flows with their positions and monthly margins."""
        self.engine.store(self.settling[0], flows)
        self.engine.store(self.settling[1], costs)
        return settled(self.placing(), flows, costs)

    def close(self) -> None:
        """Free the stored tables."""
        self.stored.drop()
        for name in [*([self.repricing.earned_name] if self.repricing.earned_name else []), *self.settling]:
            self.engine.drop(name)


# --------------------------------------------------------------------------- stress tests


@dataclass(frozen=True)
class Stress:
    """A named deterministic shock and what it is."""

    scenario: str
    name: str
    description: str


def _stress_draws(fitted: Fitted, model: StressModel) -> tuple[list[Stress], Draws]:
    """The expected year and the shocks that change only volume or outcomes, as draws."""
    expected = fitted.expected
    units, months = len(expected.units), len(expected.months)
    ones = np.ones(units * months + 1)
    winter = np.ones((units, months))
    for m, month in enumerate(expected.months):
        if m >= expected.first and month.month in model.winter_months:
            winter[:, m] = float(1 + model.winter_demand_percent / 100)
    winter_row = np.concatenate([winter.ravel(), [1.0]])
    points = model.outcome_points
    stresses = [
        Stress(EXPECTED, "expected", "the expected year, nothing drawn"),
        Stress("stress:winter", f"winter demand {points_text(model.winter_demand_percent)}%",
               f"{points_text(model.winter_demand_percent)}% activity in {', '.join(dt.date(2000, m, 1).strftime('%B') for m in model.winter_months)}"),
        Stress("stress:outcomes", f"outcome achievement {points_text(points)} points", f"every share metric's achievement {points_text(points)} percentage points"),
    ]
    achievement = {("stress:outcomes", t.contract, t.metric): points / 100 for t in fitted.outcomes if t.statistic in ("share_improved", "share_reaching")}
    names = tuple(s.scenario for s in stresses)
    return stresses, Draws(names, np.stack([ones, winter_row, ones]), np.stack([ones, ones, ones]), achievement)


def points_text(value: Decimal) -> str:
    """+10, -10: a change with its sign."""
    return f"{value.normalize():+f}"


def leaving(agreements: list[Agreement]) -> list[tuple[Agreement, Agreement]]:
    """(sub-contract, its prime's agreement) for every sub-contract."""
    primes = {a.contract.id: a for a in agreements if a.path == ()}
    return [(a, primes[a.contract.id]) for a in agreements if a.path != ()]


def _leaves(agreements: list[Agreement], expected_flows: pa.Table, costs: pa.Table, premium: Decimal) -> tuple[list[Stress], pa.Table, pa.Table]:
    """For each sub-contract: it ends, and the prime buys the activity elsewhere for the
    premium over what it paid the sub-contractor, month by month. Each agreement is priced
    on its own, so the others' flows are the expected year's. Returns the stresses and
    their flows and costs."""
    stresses: list[Stress] = []
    flows, spent = [], []
    for sub, prime in leaving(agreements):
        scenario = f"stress:leaves:{sub.id}"
        staying = expected_flows.filter(pc.not_equal(expected_flows.column("contract"), sub.id))
        paid = expected_flows.filter(pc.equal(expected_flows.column("contract"), sub.id)).to_pylist()
        elsewhere = f"elsewhere (for {sub.payee})"
        extra = [{"scenario": scenario, "contract": f"{sub.id} replaced", "payer": prime.payee, "payee": elsewhere, "month": r["month"],
                  "amount": to_pence(r["amount"] * (1 + premium / 100))} for r in paid]
        flows += [_renamed(staying, scenario), pa.Table.from_pylist(extra, schema=expected_flows.schema)]
        spent.append(_renamed(costs.filter(pc.not_equal(costs.column("provider"), sub.payee)), scenario))
        stresses.append(Stress(scenario, f"{sub.payee} leaves", f"{sub.id} ends; {prime.payee} buys its activity elsewhere for {premium.normalize():f}% more"))
    return stresses, pa.concat_tables([expected_flows.slice(0, 0), *flows]), pa.concat_tables([costs.slice(0, 0), *spent])


def _renamed(table: pa.Table, scenario: str) -> pa.Table:
    """A table's rows as another scenario's (its first column is the scenario)."""
    return table.set_column(0, "scenario", pa.array([scenario] * table.num_rows, pa.string()))


# --------------------------------------------------------------------------- the simulation


@dataclass(frozen=True)
class Distribution:
    """A money distribution over runs, exact to the penny: mean, percentiles (values of
    runs), the probability of a loss (below zero) and the expected shortfall (the mean of
    the worst 5% of runs)."""

    mean: Decimal
    p5: Decimal
    p50: Decimal
    p95: Decimal
    loss: float
    shortfall: Decimal
    runs: int

    @classmethod
    def of(cls, values: list[Decimal], worst: Literal["low", "high"] = "low") -> "Distribution":
        return cls.of_pence(pence(pa.array(values, pa.decimal128(38, 2))), worst)

    @classmethod
    def of_pence(cls, values: np.ndarray, worst: Literal["low", "high"] = "low") -> "Distribution":
        """The distribution of whole pence (int64), worked in integers so it stays exact."""
        ordered = np.sort(values)
        n = len(ordered)
        tail = max(1, math.ceil(0.05 * n))
        worst_values = ordered[:tail] if worst == "low" else ordered[-tail:]
        return cls(
            mean=to_pence(pounds(int(ordered.sum())) / n),
            p5=pounds(percentile(ordered, 0.05)),
            p50=pounds(percentile(ordered, 0.50)),
            p95=pounds(percentile(ordered, 0.95)),
            loss=int((ordered < 0).sum()) / n,
            shortfall=to_pence(pounds(int(worst_values.sum())) / tail),
            runs=n,
        )


def percentile(ordered: Sequence[T] | np.ndarray, share: float) -> T:
    """The value of the run at that share of the ordered runs (the inverse of the empirical
    distribution: the smallest value with at least that share of runs at or below it)."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class PartyRisk:
    """One party's distribution over runs, and its value in each stress test."""

    party: str
    role: str
    measure: str
    income: Distribution
    payments: Distribution
    position: Distribution
    budget: Decimal | None
    over_budget: float | None
    stressed: dict[str, Decimal]


@dataclass(frozen=True)
class ContractRisk:
    """One contract's (or sub-contract's) payments over runs, and in each stress test."""

    contract: str
    payer: str
    payee: str
    payments: Distribution
    stressed: dict[str, Decimal]


@dataclass(frozen=True)
class Simulation:
    """A simulation's model, its distributions, stress tests, and every run's results."""

    runs: int
    seed: int
    as_of: dt.date | None
    months: list[dt.date]
    parameters: list[Parameter]
    outcomes: list[OutcomeTarget]
    parties: list[PartyRisk]
    contracts: list[ContractRisk]
    stresses: list[Stress]
    positions: pa.Table
    flows: pa.Table
    monthly: pa.Table


CHUNK = 250  # as fast as larger chunks on the example, in half the memory of 1,000 (benchmarks/results.md)
# Runs × expected rows priced at once: a chunk's memory grows with both (about 120 MB a run
# of a 1,000-contract book's 104,000 rows), so a big book prices fewer runs at a time.
CHUNK_ROWS = 1_000_000


def chunk_for(expected: "Expected") -> int:
    """Runs to price at once: CHUNK, or fewer when the book's expected rows are many, so a
    chunk holds about CHUNK_ROWS run-rows whatever the book's size."""
    return max(1, min(CHUNK, CHUNK_ROWS // max(1, expected.rows.num_rows)))


@dataclass
class Prepared:
    """Everything the runs share: the expected year, the fitted model, its layout, and the
    stress tests already priced."""

    engine: Engine
    agreements: list[Agreement]
    year: FinancialYear
    tables: RunTables
    expected: Expected
    fitted: Fitted
    arranged: Layout
    stresses: list[Stress]
    stressed: Results
    measured: dict[tuple | str, Any]  # outcome achievement, measured once (see Repricing)


def prepare(engine: Engine, contracts: list[Contract], year: FinancialYear, tables: RunTables, model: RiskModel | None = None,
            as_of: dt.date | None = None) -> Prepared:
    """Fit the model to the workspace's history and price the stress tests."""
    model = model or RiskModel()
    agreements = agreements_of(contracts)
    expected = expected_year(engine, agreements, year, tables, as_of)
    repricing = Repricing()
    fitted = fit(expected, model, outcome_targets(engine, agreements, year, tables, repricing))
    arranged = layout(expected)
    stresses, fixed = _stress_draws(fitted, model.stress)
    stored = StoredTallies(engine, arranged, "cc_simulation_stress", fixed.names)
    stored.fill(chunk_measures(arranged, fixed))
    flows = price_runs(engine, agreements, year, tables, stored.routed, fixed.names, fixed.achievement, repricing)
    stored.drop()
    costs = run_costs(expected, fixed)
    more, left_flows, left_costs = _leaves(agreements, flows.filter(pc.equal(flows.column("scenario"), EXPECTED)),
                                           costs.filter(pc.equal(costs.column("scenario"), EXPECTED)), model.stress.replacement_premium_percent)
    stressed = settle(engine, agreements, year, pa.concat_tables([flows, left_flows]), pa.concat_tables([costs, left_costs]))
    return Prepared(engine, agreements, year, tables, expected, fitted, arranged, stresses + more, stressed, repricing.measured)


def run_chunks(prepared: Prepared, runs: int, seed: int, chunk: int | None = None, progress: Callable[[int], None] | None = None) -> Results:
    """Draw runs 1..`runs` and price them `chunk` at a time (by default as many as the book's
    size allows: `chunk_for`): each chunk's runs are scenario keys of one price stage, so
    memory grows with the chunk, not the runs."""
    chunk = chunk_for(prepared.expected) if chunk is None else chunk
    if runs < 1:
        raise ProblemsError([Problem("--runs", f"{runs} runs", expected="at least 1")])
    if chunk < 1:
        raise ProblemsError([Problem("--chunk", f"{chunk} runs a chunk", expected="at least 1")])
    found = Results()
    engine = prepared.engine
    firsts = list(range(1, runs + 1, chunk))

    def drawn(first: int) -> tuple[Draws, pa.Table, pa.Table]:
        draws = draw(prepared.fitted, seed, first, min(chunk, runs + 1 - first))
        return draws, chunk_measures(prepared.arranged, draws), run_costs(prepared.expected, draws)

    # The next chunk is drawn while the engine prices this one (NumPy and the engine both
    # release Python's lock while they work), so drawing costs little time of its own.
    with engine.transient(), ThreadPoolExecutor(max_workers=1) as ahead:
        pricing = RunPricing(prepared, min(chunk, runs))
        try:
            coming = ahead.submit(drawn, firsts[0])
            for position in range(len(firsts)):
                draws, measures, costs = coming.result()
                if position + 1 < len(firsts):
                    coming = ahead.submit(drawn, firsts[position + 1])
                with engine.transient():
                    found.add(pricing.settle(pricing.flows(draws, measures), costs))
                if progress is not None:
                    progress(len(draws.names))
        finally:
            pricing.close()
    return found


MAX_RUNS = 100_000  # ten times the README's 10,000-run use
SECONDS_PER_RUN = 0.003  # the example on two cores: 10,000 runs in about 30 s
BYTES_PER_RUN = 60_000  # every run's positions, flows and monthly totals are kept for the summary and workbook


def check_runs(runs: int) -> None:
    """Refuse a number of runs below 1 or above MAX_RUNS, with what the runs asked would
    take (time and memory, as measured on the example)."""
    if runs < 1:
        raise ProblemsError([Problem("--runs", f"{runs} runs", value=runs, expected="at least 1")])
    if runs > MAX_RUNS:
        hours = runs * SECONDS_PER_RUN / 3600
        memory = runs * BYTES_PER_RUN / 1e9
        raise ProblemsError([Problem(
            "--runs", f"{runs:,} runs would take about {hours:,.1f} hours and {memory:,.0f} GB of memory on the example (more on a bigger workspace)",
            value=runs, expected=f"at most {MAX_RUNS:,} runs (10,000 give percentiles to well under a percent)")])


def simulate(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    runs: int,
    seed: int,
    model: RiskModel | None = None,
    as_of: dt.date | None = None,
    chunk: int | None = None,
    budgets: dict[str, Decimal] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Simulation:
    """Draw `runs` years, price them a chunk at a time with the stress tests, and summarise
    every party's and contract's distribution."""
    check_runs(runs)
    prepared = prepare(engine, contracts, year, tables, model, as_of)
    collected = Results()
    collected.add(prepared.stressed)
    collected.add(run_chunks(prepared, runs, seed, chunk, progress))
    return summarise(prepared, collected, runs, seed, budgets or {})


def summarise(prepared: Prepared, collected: Results, runs: int, seed: int, budgets: dict[str, Decimal]) -> Simulation:
    """Every party's and contract's distribution over the runs, beside the stress tests."""
    placed = pa.concat_tables(collected.positions)
    all_flows = pa.concat_tables(collected.flows)
    monthly = pa.concat_tables(collected.monthly)
    names = {s.scenario for s in prepared.stresses}
    parties = _party_risks(placed, names, budgets)
    contract_risks = _contract_risks(all_flows, names)
    expected, fitted = prepared.expected, prepared.fitted
    as_of = expected.months[expected.first - 1] if expected.first else None
    return Simulation(runs, seed, as_of, expected.months[expected.first:], fitted.parameters, fitted.outcomes, parties, contract_risks,
                      prepared.stresses, placed, all_flows, monthly)


def _party_risks(placed: pa.Table, stress_names: set[str], budgets: dict[str, Decimal]) -> list[PartyRisk]:
    """Each party's distributions over the runs and its value in each stress test (a
    commissioner's payments; anyone else's margin where its activity carries costs, else net)."""
    parties = placed.column("party").to_numpy(zero_copy_only=False)
    roles = dict(zip(placed.column("party").to_pylist(), placed.column("role").to_pylist()))
    stress = pc.is_in(placed.column("scenario"), value_set=pa.array(sorted(stress_names), pa.string())).to_numpy(zero_copy_only=False)
    income, payments, net = (pence(placed.column(name)) for name in ("income", "payments", "net"))
    costs_known = pc.is_valid(placed.column("costs")).to_numpy(zero_copy_only=False)
    margin_known = pc.is_valid(placed.column("margin")).to_numpy(zero_copy_only=False)
    margin = pence(placed.column("margin"))
    scenarios = placed.column("scenario").to_pylist()
    order = {name: i for i, name in enumerate(("commissioner", "prime", "provider", "sub-contractor", "alliance member", "other"))}
    result: list[PartyRisk] = []
    for party in sorted(roles, key=lambda p: (order.get(roles[p], 9), p)):
        mine = parties == party
        runs = mine & ~stress
        if not runs.any():
            continue  # a party only a stress test has (buying elsewhere)
        has_costs = bool(costs_known[mine].any())
        position = np.where(margin_known, margin, net) if has_costs else net
        shown = payments if roles[party] == "commissioner" else position
        stressed = {scenarios[row]: pounds(shown[row]) for row in np.flatnonzero(mine & stress)}
        stressed |= {name: Decimal("0.00") for name in stress_names if name not in stressed}  # e.g. a sub-contractor that left
        budget = budgets.get(party)
        over = float((payments[runs] > math.floor(budget * 100)).mean()) if budget is not None else None
        result.append(PartyRisk(party, roles[party], "margin" if has_costs else "net", Distribution.of_pence(income[runs]),
                                Distribution.of_pence(payments[runs], "high"), Distribution.of_pence(position[runs]), budget, over, stressed))
    return result


def _contract_risks(flows: pa.Table, stress_names: set[str]) -> list[ContractRisk]:
    """Each contract's (payer to payee) payments over the runs, and in each stress test."""
    totals = flows.group_by(["contract", "payer", "payee", "scenario"]).aggregate([("amount", "sum")])
    totals = totals.sort_by([(name, "ascending") for name in ("contract", "payer", "payee")])
    keys = list(zip(*(totals.column(name).to_pylist() for name in ("contract", "payer", "payee"))))
    scenarios = totals.column("scenario").to_pylist()
    amounts = pence(totals.column("amount_sum"))
    stress = pc.is_in(totals.column("scenario"), value_set=pa.array(sorted(stress_names), pa.string())).to_numpy(zero_copy_only=False)
    found: list[ContractRisk] = []
    start = 0
    while start < len(keys):
        end = start
        while end < len(keys) and keys[end] == keys[start]:
            end += 1
        rows = np.arange(start, end)
        runs = rows[~stress[rows]]
        if len(runs):
            stressed = {scenarios[row]: pounds(amounts[row]) for row in rows[stress[rows]]}
            contract, payer, payee = keys[start]
            found.append(ContractRisk(contract, payer, payee, Distribution.of_pence(amounts[runs], "high"), stressed))
        start = end
    return found
