"""The contract model: parties, term, services, components and sub-contracts.

Each payment mechanism's parameters are a pydantic model keyed by `kind`, so a contract is
checked field by field before anything is priced, and unknown keys are errors.

Every number is bounded, and has no more decimal places than the engine's column for it
holds (money.py, engine/mechanisms/shared.py), so that what `check` accepts `pay` can price:
money to the penny and at most £10bn a term; percents 0 to 100 to 4 places (a fraction to 6),
minimum savings and loss rates to 7 (as the Medicare Shared Savings files give them);
factors such as the MFF above 0 and at most 10, to 6 places. A number written as text (a
quoted "48000000") is refused, not read as a number. Percents of money shared or paid at a
rate (sharing, marginal, variable, band and loss percents) are refused between 0 and 1: 0.5
there is a fraction pasted as a percent, and 50% is written 50; so is a quality score from 0
to 1 (a quality score is a percent like every other rate).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from carecontracts.periods import month_start

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=80)]


def _not_text(value: object) -> object:
    """A number must be written as one: text (a quoted "48000000") and true/false are refused."""
    if isinstance(value, bool):
        raise PydanticCustomError("number_text", "a number is expected, not true or false")
    if isinstance(value, str):
        raise PydanticCustomError("number_text", "a number is expected, not text (remove the quotes)")
    return value


def _not_a_fraction(value: Decimal) -> Decimal:
    """A percent of money shared or paid at a rate between 0 and 1 is a fraction pasted as a
    percent (0.5 for 50%): refused, naming the percent meant."""
    if 0 < value < 1:
        meant = f"{(value * 100).normalize():f}"
        raise PydanticCustomError("percent_fraction", "looks like a fraction; write {meant} for {meant}%", {"meant": meant})
    return value


Number = Annotated[Decimal, BeforeValidator(_not_text)]
Whole = Annotated[int, BeforeValidator(_not_text)]
# The most any money term may be: no single contract term comes near it, and sums of many
# stay well within the engine's amounts (AMOUNT_TYPE, decimal(18, 2)).
MOST_MONEY = 10_000_000_000
Money = Annotated[Number, Field(ge=0, le=MOST_MONEY, decimal_places=2)]
# A price per unit of activity: multiplied by quantities, it stays within the engine's operands.
UnitPrice = Annotated[Number, Field(ge=0, le=10_000_000, decimal_places=2)]
PerHead = Annotated[Number, Field(ge=0, le=100_000, decimal_places=6, description="A rate per person per month, to 6 places.")]
# A percent becomes a fraction to 6 places in the engine (FRACTION_TYPE, decimal(9, 6)).
Percent = Annotated[Number, Field(ge=0, le=100, decimal_places=4)]
PositivePercent = Annotated[Percent, Field(gt=0)]
# A threshold rate compared with savings or losses as a percent of benchmark, to the 7 places
# the Medicare Shared Savings files give (3.0860861).
ThresholdPercent = Annotated[Number, Field(ge=0, le=100, decimal_places=7)]
RatePercent = Annotated[Percent, AfterValidator(_not_a_fraction)]
Weight = Annotated[Number, Field(ge=0, le=1_000_000, decimal_places=6)]
# A payment index such as the market forces factor (FACTOR_TYPE, decimal(10, 6)).
Factor = Annotated[Number, Field(gt=0, le=10, decimal_places=6)]
# An achievement, score or schedule point (scores are decimal(18, 6) in the engine).
Score = Annotated[Number, Field(ge=-1_000_000, le=1_000_000, decimal_places=6)]
Fraction = Annotated[Number, Field(ge=0, le=1, decimal_places=6)]


def _not_a_fraction_score(value: Decimal) -> Decimal:
    """A quality score is a percent: one from 0 to 1 (0.85, or 1 for full marks) is a fraction
    written as it once was, refused naming the percent meant."""
    if 0 < value <= 1:
        meant = f"{(value * 100).normalize():f}"
        raise PydanticCustomError("percent_fraction", "looks like a fraction; the quality score is a percent: write {meant} for {meant}%", {"meant": meant})
    return value


QualityPercent = Annotated[Number, Field(ge=0, le=100, decimal_places=4), AfterValidator(_not_a_fraction_score)]
Persons = Annotated[Whole, Field(gt=0, le=1_000_000_000)]
StrList = Annotated[list[str], Field(min_length=1)]


class Strict(BaseModel):
    """Base for every contract model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DatedValue(Strict):
    """A value that holds from one date to another (inclusive); `to` open means onwards."""

    from_: dt.date = Field(alias="from")
    to: dt.date | None = None
    value: Number

    @model_validator(mode="after")
    def _ordered(self) -> "DatedValue":
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"'to' {self.to} is before 'from' {self.from_}")
        return self


DatedList = Annotated[list[DatedValue], Field(min_length=1)]
Dated = Union[Number, DatedList]
# Terms that may change on a date (a contract variation): a single value, or dated values
# each checked as the single value would be (language.load).
DatedMoney = Union[Money, DatedList]
DatedPercent = Union[Percent, DatedList]
DatedPositivePercent = Union[PositivePercent, DatedList]
DatedRatePercent = Union[RatePercent, DatedList]
DatedPerHead = Union[PerHead, DatedList]
DatedUnitPrice = Union[UnitPrice, DatedList]
DatedFactor = Union[Factor, DatedList]
DatedThresholdPercent = Union[ThresholdPercent, DatedList]
DatedPersons = Union[Persons, DatedList]


def scalar_of(annotation: object) -> object | None:
    """The single-value type of a dated term's annotation (Money in `DatedMoney | None`),
    or None when the annotation is not a dated term."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if len(args) == 1 and get_origin(args[0]) is Union:
        args = [a for a in get_args(args[0]) if a is not type(None)]
    if len(args) == 2 and args[1] == DatedList:
        return args[0]
    return None


def value_on(parameter: Dated, day: dt.date) -> Decimal | None:
    """The dated parameter's value on `day`, or None if no entry covers it."""
    if isinstance(parameter, Decimal):
        return parameter
    for entry in parameter:
        if entry.from_ <= day and (entry.to is None or day <= entry.to):
            return entry.value
    return None


def uncovered(parameter: Dated, start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Periods between `start` and `end` that no entry of the parameter covers."""
    if isinstance(parameter, Decimal):
        return []
    gaps: list[tuple[dt.date, dt.date]] = []
    cursor = start
    for entry in sorted(parameter, key=lambda e: e.from_):
        if entry.from_ > cursor:
            gaps.append((cursor, min(end, entry.from_ - dt.timedelta(days=1))))
        if entry.to is None:
            return [g for g in gaps if g[0] <= end]
        cursor = max(cursor, entry.to + dt.timedelta(days=1))
        if cursor > end:
            break
    if cursor <= end:
        gaps.append((cursor, end))
    return [g for g in gaps if g[0] <= end]


class ServiceFilter(Strict):
    """Which activity a service covers: each listed column must match one of its values.

    A value ending in `*` matches by prefix (`HN1*`); an empty filter matches everything.
    """

    service: StrList | None = None
    currency: StrList | None = None
    pod: StrList | None = None
    admission_method: StrList | None = None
    site: StrList | None = None

    def conditions(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Term(Strict):
    start: dt.date
    end: dt.date
    extension_years: Whole = Field(default=0, ge=0, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> "Term":
        if self.end < self.start:
            raise ValueError(f"term ends {self.end} before it starts {self.start}")
        return self

    def covers_month(self, month: dt.date) -> bool:
        """True when any day of the month falls inside the term."""
        return month_start(self.start) <= month <= self.end


class CommissionerShare(Strict):
    """A commissioner of a multi-commissioner contract and its share of fixed elements."""

    id: Identifier
    share: Annotated[Number, Field(gt=0, le=1, decimal_places=6)]
    coordinating: bool = False


class ComponentBase(Strict):
    id: Identifier
    title: str | None = None
    services: StrList | None = Field(
        default=None, description="Services this component measures; all of the contract's if omitted."
    )


Profile = Annotated[list[Weight], Field(min_length=12, max_length=12)]


class BlockTerms(ComponentBase):
    """Fixed annual value paid monthly by a profile; independent of activity."""

    kind: Literal["block"]
    annual: DatedMoney
    profile: Profile | None = None


class ReadmissionExclusions(Strict):
    service: list[str] = Field(default_factory=lambda: ["maternity", "cancer"])
    pod: list[str] = Field(default_factory=list)
    admission_method: list[str] = Field(default_factory=lambda: ["transfer"])
    age_under: Whole | None = Field(default=4, ge=0, le=130)


class ReadmissionRule(Strict):
    """Emergency readmissions within N days of a discharge from the same provider are not paid
    for, in the share judged avoidable by clinical review."""

    within_days: Whole = Field(default=30, ge=1, le=365)
    avoidable_percent: Annotated[Percent, Field(decimal_places=2)]
    readmission_pods: StrList = Field(default_factory=lambda: ["NEL"])
    index_pods: StrList = Field(default_factory=lambda: ["EL", "NEL"])
    exclude: ReadmissionExclusions = Field(default_factory=ReadmissionExclusions)

    def signature(self) -> tuple:
        """What measure needs to flag readmissions; equal rules share one flag column."""
        return (
            self.within_days,
            tuple(self.readmission_pods),
            tuple(self.index_pods),
            tuple(self.exclude.service),
            tuple(self.exclude.pod),
            tuple(self.exclude.admission_method),
            self.exclude.age_under,
        )


class PricedTerms(ComponentBase):
    """Shared by mechanisms that value activity at a price list × MFF."""

    prices: Identifier = Field(description="A price list in prices/ (file name without .csv).")
    mff: DatedFactor = Decimal(1)
    readmission: ReadmissionRule | None = None
    unit: str = "units"


class ActivityTerms(PricedTerms):
    """Cost per case: chargeable units × unit price × MFF."""

    kind: Literal["activity"]


PricePoint = Literal[
    "day_case", "elective", "non_elective", "outpatient_procedure",
    "first_single", "first_multi", "follow_up_single", "follow_up_multi", "ae", "ae_type_3",
]
DEFAULT_SPELL_PODS: dict[str, PricePoint] = {"DC": "day_case", "EL": "elective", "NEL": "non_elective"}


class DatedBook(Strict):
    """A prices workbook in force from one date to another (inclusive); `to` open means onwards."""

    from_: dt.date = Field(alias="from")
    to: dt.date | None = None
    book: Identifier

    @model_validator(mode="after")
    def _ordered(self) -> "DatedBook":
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"'to' {self.to} is before 'from' {self.from_}")
        return self


class SpellTerms(ComponentBase):
    """NHS Payment Scheme spell pricing from a prices workbook: each spell at its HRG's price
    for its admission type (the point its pod maps to), excess bed days past the trim point,
    the reduced short-stay emergency tariff, best-practice differentials, specialised
    top-ups by service, × MFF."""

    kind: Literal["spell"]
    book: Identifier | Annotated[list[DatedBook], Field(min_length=1)] = Field(
        description="A prices workbook in prices/ (file name without .xlsx), or dated ones: [{from, to, book}] (a year's book each year)."
    )

    def books(self) -> list[str]:
        """Every workbook the terms name."""
        return [self.book] if isinstance(self.book, str) else [entry.book for entry in self.book]

    def book_on(self, day: dt.date) -> str | None:
        """The workbook in force on `day` (None if no dated book covers it)."""
        if isinstance(self.book, str):
            return self.book
        return next((e.book for e in self.book if e.from_ <= day and (e.to is None or day <= e.to)), None)
    mff: DatedFactor = Decimal(1)
    pods: Annotated[dict[str, PricePoint], Field(min_length=1)] = Field(
        default_factory=lambda: dict(DEFAULT_SPELL_PODS),
        description="Which price in the workbook each pod is paid at; DC day case, EL ordinary elective, NEL non-elective if omitted.",
    )
    best_practice: dict[str, UnitPrice] = Field(
        default_factory=dict, description="HRG → best-practice differential paid per spell that met every criterion (activity `compliant` = 1)."
    )
    topups: dict[Identifier, Annotated[PositivePercent, Field(decimal_places=2)]] = Field(
        default_factory=dict, description="Service → specialised top-up, a percent of the spell's price (to 2 places)."
    )
    local_prices: Identifier | None = Field(
        default=None, description="A price list in prices/ for HRGs the workbook says have no national price; unpriced if omitted."
    )


class CostAndVolumeTerms(ComponentBase):
    """Baseline volume at a price, a tolerance band, marginal rates outside it."""

    kind: Literal["cost_and_volume"]
    baseline_volume: Annotated[Number, Field(ge=0, le=100_000_000, decimal_places=4)]
    price: DatedUnitPrice
    tolerance_percent: Percent = Decimal(0)
    above_band_percent: RatePercent = Field(description="Share of price paid per unit above the band.")
    below_band_percent: RatePercent = Field(
        default=Decimal(0), description="Share of price still paid per unit short of the band."
    )
    cap: DatedMoney | None = None
    floor: DatedMoney | None = None
    readmission: ReadmissionRule | None = None
    unit: str = "units"


class MarginalRateTerms(PricedTerms):
    """MRET-style: value at full price up to a monetary baseline, a marginal rate above."""

    kind: Literal["marginal_rate"]
    baseline_value: DatedMoney
    marginal_percent: DatedRatePercent


class AlignedPaymentTerms(PricedTerms):
    """NHS aligned payment and incentive: a fixed element plus a variable element on the
    difference between actual and planned value of the component's services."""

    kind: Literal["aligned_payment"]
    fixed: DatedMoney
    profile: Profile | None = None
    variable_percent: DatedRatePercent
    downside_percent: DatedRatePercent | None = Field(
        default=None, description="Rate when below plan; the variable rate if omitted."
    )
    planned_value: DatedMoney | None = Field(
        default=None, description="Annual planned value; from the plans data if omitted."
    )
    variable_floor: Annotated[Number, Field(ge=-MOST_MONEY, le=0, decimal_places=2)] | None = Field(
        default=None, description="Most the variable element may reduce payment in a year."
    )


class LowVolumeBlockTerms(ComponentBase):
    """A block valued at the rolling average of past years' activity value."""

    kind: Literal["low_volume_block"]
    history: Annotated[list[Money], Field(min_length=1, max_length=10)]
    profile: Profile | None = None


class CapitationTerms(ComponentBase):
    """A rate per head per month by population band, optionally risk weighted."""

    kind: Literal["capitation"]
    rates: Annotated[dict[str, DatedPerHead], Field(min_length=1)]
    risk_weights: dict[str, Annotated[Weight, Field(le=100)]] | None = None
    population_bands: StrList | None = Field(
        default=None, description="The population bands the budget covers (e.g. people over 65); every band if omitted."
    )


class Pot(Strict):
    """Money at stake: a fixed annual amount, or a percent of another component's payments."""

    amount: DatedMoney | None = Field(
        default=None,
        description="A year's pot; a settlement period's pot is a twelfth of it for each of the period's months, "
        "at the amount in force that month when it is dated.",
    )
    percent_of: Identifier | None = None
    percent: Percent | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "Pot":
        if (self.amount is None) == (self.percent_of is None):
            raise ValueError("give either 'amount', or 'percent_of' and 'percent'")
        if self.percent_of is not None and self.percent is None:
            raise ValueError("'percent_of' needs 'percent'")
        if self.amount is not None and self.percent is not None:
            raise ValueError("'percent' goes with 'percent_of', not with 'amount'")
        return self


Statistic = Literal["share_improved", "mean_change", "share_reaching", "mean_post", "mean_pre", "casemix_adjusted_mean", "rate_per_thousand"]


class EventFilter(ServiceFilter):
    """Which activity counts as an event for a rate: service filters plus an age range."""

    age_from: Annotated[Whole, Field(ge=0, le=130)] | None = None
    age_to: Annotated[Whole, Field(ge=0, le=130)] | None = None

    def conditions(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.model_dump(exclude={"age_from", "age_to"}).items() if v is not None}


class OutcomeMeasure(Strict):
    """What is measured: a statistic over episodes' pre/post scores on an instrument, or
    (`rate_per_thousand`) events in the activity per 1,000 population a year."""

    instrument: str | None = None
    statistic: Statistic = "share_improved"
    min_change: Annotated[Score, Field(gt=0)] | None = Field(
        default=None, description="Smallest change that counts as improvement; the instrument's default if omitted."
    )
    threshold: Score | None = Field(default=None, description="Score to reach at the end (share_reaching).")
    events: EventFilter | None = Field(default=None, description="rate_per_thousand: the activity counted, e.g. {pod: [NEL], age_from: 65}.")
    population_bands: StrList | None = Field(default=None, description="rate_per_thousand: the population bands it is per; all if omitted.")

    @model_validator(mode="after")
    def _complete(self) -> "OutcomeMeasure":
        if self.statistic == "share_reaching" and self.threshold is None:
            raise ValueError("statistic share_reaching needs a 'threshold'")
        if self.statistic == "rate_per_thousand":
            if self.events is None:
                raise ValueError("statistic rate_per_thousand needs 'events': the activity to count")
            if self.instrument is not None:
                raise ValueError("a rate per 1,000 population counts activity; it has no 'instrument'")
        else:
            if self.instrument is None:
                raise ValueError(f"statistic {self.statistic} needs an 'instrument'")
            if self.events is not None or self.population_bands is not None:
                raise ValueError("'events' and 'population_bands' belong to statistic rate_per_thousand")
        return self


class Step(Strict):
    at: Score
    pay: Fraction


class Schedule(Strict):
    """Achievement → payable fraction. linear: 0 at/below floor, 1 at/above target, straight
    between; threshold: all or nothing at target; stepped: the pay of the highest step reached.
    A target below the floor (or falling steps) means lower achievement is better."""

    type: Literal["linear", "threshold", "stepped"] = "linear"
    floor: Score | None = None
    target: Score | None = None
    steps: Annotated[list[Step], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _complete(self) -> "Schedule":
        if self.type == "linear" and (self.floor is None or self.target is None or self.floor == self.target):
            raise ValueError("a linear schedule needs a 'floor' and a different 'target'")
        if self.type == "threshold" and self.target is None:
            raise ValueError("a threshold schedule needs a 'target'")
        if self.type == "stepped":
            if not self.steps:
                raise ValueError("a stepped schedule needs 'steps'")
            ats = [s.at for s in self.steps]
            if ats != sorted(ats) and ats != sorted(ats, reverse=True):
                raise ValueError("steps must be in order of 'at'")
        elif self.steps is not None:
            raise ValueError(f"'steps' belong to a stepped schedule, not {self.type}")
        return self


class Metric(Strict):
    id: Identifier
    title: str | None = None
    measure: OutcomeMeasure
    schedule: Schedule
    weight: Annotated[Fraction, Field(gt=0)] = Decimal(1)


class OutcomeIncentiveTerms(ComponentBase):
    """A pot paid by the achievement of weighted outcome metrics, settled annually or quarterly."""

    kind: Literal["outcome_incentive"]
    pot: Pot
    settle: Literal["annual", "quarterly"] = "annual"
    providers: StrList | None = Field(
        default=None, description="Providers whose outcomes count; the contract's (and its sub-contractors') if omitted."
    )
    metrics: Annotated[list[Metric], Field(min_length=1)]

    def references(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("pot", "percent_of"), self.pot.percent_of)] if self.pot.percent_of else []


class Indicator(Strict):
    id: Identifier
    title: str | None = None
    weight: Annotated[Weight, Field(gt=0)] = Decimal(1)
    met: bool | None = Field(default=None, description="The assessment; not yet assessed if omitted.")


class QualityIncentiveTerms(ComponentBase):
    """CQUIN-like: a percent of another component paid in advance each month, clawed back at
    assessment for the indicators not met (split equally or by weight)."""

    kind: Literal["quality_incentive"]
    percent_of: Identifier
    percent: DatedPercent
    indicators: Annotated[list[Indicator], Field(min_length=1)]
    assessed: dt.date | None = Field(default=None, description="Month of assessment; the last month of the year if omitted.")

    def references(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("percent_of",), self.percent_of)]


class BestPracticeTopupTerms(ComponentBase):
    """An amount per case that met every best-practice criterion (activity `compliant` = 1)."""

    kind: Literal["best_practice_topup"]
    amount: DatedUnitPrice


class WithholdTerms(ComponentBase):
    """A sanction: a percent of the actual monthly value of other components withheld from a
    month on, repaid in the month it is remedied, or retained after a set number of months."""

    kind: Literal["withhold"]
    of: StrList
    percent: DatedPositivePercent = Field(description="Withheld of each month's value; when dated, the percent in force that month.")
    from_: dt.date = Field(alias="from")
    remedied: dt.date | None = None
    retain_after_months: Whole = Field(default=6, ge=1, le=36)
    reason: str | None = None

    def references(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("of", i), name) for i, name in enumerate(self.of)]


class Band(Strict):
    """A slice of the variance (as a percent of target) and the providers' percent of it."""

    up_to_percent: Annotated[Number, Field(gt=0, le=1000, decimal_places=4)] | None = Field(default=None, description="Upper edge; open if omitted (last band).")
    provider_percent: RatePercent


class ActualCost(Strict):
    """Shared by risk/gain share and shared savings: actual cost of the component's services,
    from the activity's `cost` column, or valued at a price list × MFF when `prices` is given."""

    prices: Identifier | None = None
    mff: DatedFactor = Decimal(1)
    readmission: ReadmissionRule | None = None


class RiskShareTerms(ComponentBase, ActualCost):
    """Variance = actual cost − target, split in bands between commissioner and providers.
    The budget paid is the target; this component settles the commissioner's side of the
    variance, year to date. gain_share shares underspends only (providers bear overspends)."""

    kind: Literal["risk_share", "gain_share"]
    target: DatedMoney | None = None
    target_of: Identifier | None = Field(default=None, description="A component whose payments are the target (a pooled budget).")
    bands: Annotated[list[Band], Field(min_length=1)]
    provider_cap: DatedMoney | None = Field(default=None, description="Most the providers gain or lose in a year.")

    @model_validator(mode="after")
    def _target(self) -> "RiskShareTerms":
        if (self.target is None) == (self.target_of is None):
            raise ValueError("give either 'target' or 'target_of'")
        edges = [b.up_to_percent for b in self.bands]
        if any(e is None for e in edges[:-1]):
            raise ValueError("only the last band may be open (no 'up_to_percent')")
        closed = [e for e in edges if e is not None]
        if closed != sorted(set(closed)):
            raise ValueError("bands must rise in 'up_to_percent'")
        return self

    def references(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("target_of",), self.target_of)] if self.target_of else []


class SavingsBand(Strict):
    """A step of a minimum savings rate table: the percent for populations up to a size."""

    up_to_population: Persons | None = None
    percent: ThresholdPercent


class InterpolatedSavingsBand(Strict):
    """A band of an interpolated minimum savings rate table (the Medicare Shared Savings
    one-sided table): the rate falls in a straight line from `low_end_percent` at
    `from_population` to `high_end_percent` at `to_population`; the last band may be open
    (no `to_population`), its rate flat."""

    from_population: Persons
    to_population: Persons | None = None
    low_end_percent: ThresholdPercent
    high_end_percent: ThresholdPercent | None = None

    @model_validator(mode="after")
    def _ends(self) -> "InterpolatedSavingsBand":
        if self.to_population is not None and self.to_population <= self.from_population:
            raise ValueError(f"to_population {self.to_population} is not above from_population {self.from_population}")
        if (self.to_population is None) != (self.high_end_percent is None):
            raise ValueError("give 'to_population' and 'high_end_percent' together (an open last band has neither)")
        return self


class ExtremeCircumstances(Strict):
    """Extreme and uncontrollable circumstances (a disaster, a pandemic) in a performance
    year: shared losses × (1 − months affected ÷ 12 × percent of the population in affected
    areas), or waived whole. With `from`/`to`, only for the years it covers."""

    from_: dt.date | None = Field(default=None, alias="from")
    to: dt.date | None = None
    months_affected: Annotated[Whole, Field(ge=0, le=12)] | None = None
    population_affected_percent: Percent | None = None
    waived: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> "ExtremeCircumstances":
        share = self.months_affected is not None or self.population_affected_percent is not None
        if self.waived and share:
            raise ValueError("a waiver owes no losses at all: give 'waived: true', or 'months_affected' and 'population_affected_percent', not both")
        if not self.waived and (self.months_affected is None or self.population_affected_percent is None):
            raise ValueError("give 'months_affected' and 'population_affected_percent' (or 'waived: true')")
        if self.from_ is not None and self.to is not None and self.to < self.from_:
            raise ValueError(f"'to' {self.to} is before 'from' {self.from_}")
        return self

    def covers(self, day: dt.date) -> bool:
        """True when the circumstances apply to a settlement on `day`."""
        return (self.from_ is None or self.from_ <= day) and (self.to is None or day <= self.to)


# Keys renamed so each name says what it is; the old spelling is refused naming the new one.
RENAMED_KEYS = {
    "min_loss_percent": ("loss_rate_floor_percent", "the lowest rate losses are shared at"),
    "max_loss_percent": ("loss_rate_ceiling_percent", "the highest rate losses are shared at"),
    "minimum_loss_percent": ("minimum_loss_rate_percent", "the loss, as a percent of benchmark, below which nothing is owed"),
    "loss_percent": ("loss_rate_percent", "a fixed rate losses are shared at"),
}


class LossTerms(Strict):
    """Two-sided shared savings: a loss past the minimum loss rate (a percent of benchmark)
    is shared at the loss rate: fixed, or 1 − a percent × the quality score, or else 1 − the
    final sharing rate; bounded by a floor and a ceiling; capped at the lesser of a percent
    of benchmark and a percent of participant revenue; then reduced for extreme and
    uncontrollable circumstances."""

    loss_rate_percent: RatePercent | None = Field(default=None, description="A fixed rate losses are shared at.")
    loss_rate_quality_percent: RatePercent | None = Field(
        default=None, description="The loss rate is 1 − this percent × the quality score (75: 1 − 0.75 × quality)."
    )
    loss_rate_floor_percent: RatePercent | None = Field(default=None, description="The lowest rate losses are shared at.")
    loss_rate_ceiling_percent: RatePercent | None = Field(default=None, description="The highest rate losses are shared at.")
    minimum_loss_rate_percent: DatedThresholdPercent = Field(
        default=Decimal(0), description="The minimum loss rate: a loss below this percent of benchmark owes nothing; when dated, "
        "the mean of the percents in force in the term's months of the year (weighted by months)."
    )
    cap_percent: Percent | None = Field(default=None, description="Most owed, as a percent of benchmark.")
    revenue_cap_percent: Percent | None = Field(default=None, description="Most owed, as a percent of participant revenue.")
    participant_revenue: DatedMoney | None = Field(
        default=None, description="The participants' revenue for a year; when dated, weighted by months as `benchmark` is."
    )
    extreme_circumstances: ExtremeCircumstances | Annotated[list[ExtremeCircumstances], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _bounded(self) -> "LossTerms":
        low, high, fixed = self.loss_rate_floor_percent, self.loss_rate_ceiling_percent, self.loss_rate_percent
        if low is not None and high is not None and low > high:
            raise ValueError(f"loss_rate_floor_percent {low} is above loss_rate_ceiling_percent {high}: the bounds are reversed")
        if fixed is not None and ((low is not None and fixed < low) or (high is not None and fixed > high)):
            raise ValueError(f"loss_rate_percent {fixed} is outside its bounds, loss_rate_floor_percent {low} to loss_rate_ceiling_percent {high}")
        if fixed is not None and self.loss_rate_quality_percent is not None:
            raise ValueError("give 'loss_rate_percent' (fixed) or 'loss_rate_quality_percent' (1 − percent × quality), not both")
        if (self.revenue_cap_percent is None) != (self.participant_revenue is None):
            raise ValueError("'revenue_cap_percent' and 'participant_revenue' go together: the cap is that percent of that revenue")
        return self

    def circumstances_on(self, day: dt.date) -> ExtremeCircumstances | None:
        """The extreme and uncontrollable circumstances that apply to a settlement on `day`."""
        given = self.extreme_circumstances
        entries = [given] if isinstance(given, ExtremeCircumstances) else list(given or [])
        return next((e for e in entries if e.covers(day)), None)


class SharedSavingsTerms(ComponentBase, ActualCost):
    """Accountable care (Medicare Shared Savings style): savings = benchmark − expenditure,
    shared from the first pound once the savings rate reaches the minimum; settled once a year."""

    kind: Literal["shared_savings"]
    benchmark: DatedMoney | None = Field(
        default=None,
        description="The year's benchmark; when dated, weighted by months: the mean of the values in force in "
        "the term's months of the year (for a whole year, a twelfth of each month's value).",
    )
    benchmark_per_capita: DatedMoney | None = Field(
        default=None, description="A benchmark per assigned person a year; when dated, weighted by months as `benchmark` is."
    )
    expenditure_per_capita: DatedMoney | None = Field(
        default=None,
        description="Expenditure per assigned person a year, given instead of measured from activity; "
        "when dated, weighted by months as `benchmark` is.",
    )
    population: DatedPersons | None = Field(
        default=None,
        description="Assigned persons; when dated, weighted by months as `benchmark` is; the mean monthly "
        "population in the data if omitted. Needed only by a per-head term or a minimum by population.",
    )
    minimum_savings_percent: DatedThresholdPercent = Field(
        default=Decimal(0),
        description="The minimum savings rate; when dated, the mean of the percents in force in the term's months "
        "of the year (weighted by months).",
    )
    minimum_savings_by_population: Annotated[list[SavingsBand], Field(min_length=1)] | None = Field(
        default=None, description="The minimum savings rate by population in steps: the percent of the first band the population fits."
    )
    minimum_savings_interpolated: Annotated[list[InterpolatedSavingsBand], Field(min_length=1)] | None = Field(
        default=None,
        description="The minimum savings rate by population, straight between each band's ends, rounded half-up "
        "to 7 places of a percent (the Medicare Shared Savings one-sided table).",
    )
    sharing_percent: RatePercent
    quality_score: QualityPercent = Decimal(100)
    quality_scales_savings: bool = Field(
        default=True, description="Savings are shared at the sharing rate × the quality score; false: at the sharing rate flat."
    )
    payment_reduction_percent: Percent = Decimal(0)
    cap_percent: Percent | None = Field(default=None, description="Most earned, as a percent of benchmark.")
    losses: LossTerms | None = None

    @model_validator(mode="after")
    def _benchmark(self) -> "SharedSavingsTerms":
        if (self.benchmark is None) == (self.benchmark_per_capita is None):
            raise ValueError("give either 'benchmark' or 'benchmark_per_capita'")
        tables = [name for name in ("minimum_savings_by_population", "minimum_savings_interpolated") if getattr(self, name) is not None]
        if len(tables) > 1:
            raise ValueError("give one minimum savings table: 'minimum_savings_by_population' (steps) or 'minimum_savings_interpolated'")
        if tables and "minimum_savings_percent" in self.model_fields_set:
            raise ValueError(f"give 'minimum_savings_percent' or '{tables[0]}', not both")
        valuing = [name for name in ("prices", "mff", "readmission") if name in self.model_fields_set]
        if self.expenditure_per_capita is not None and valuing:
            raise ValueError(f"expenditure is given per head ('expenditure_per_capita'), so no activity is valued: "
                             f"leave out {', '.join(repr(n) for n in valuing)}")
        bands = self.minimum_savings_interpolated or []
        for before, after in zip(bands, bands[1:]):
            if before.to_population is None or after.from_population <= before.to_population:
                raise ValueError(f"minimum_savings_interpolated bands must rise and not overlap: {after.from_population} follows "
                                 f"a band up to {before.to_population if before.to_population is not None else 'any size'}")
        return self

    def needs_population(self) -> bool:
        """True when a term is per head or by population, so the assigned population is needed."""
        return (self.benchmark_per_capita is not None or self.expenditure_per_capita is not None
                or self.minimum_savings_by_population is not None or self.minimum_savings_interpolated is not None)


ComponentTerms = Annotated[
    Union[
        BlockTerms,
        ActivityTerms,
        SpellTerms,
        CostAndVolumeTerms,
        MarginalRateTerms,
        AlignedPaymentTerms,
        LowVolumeBlockTerms,
        CapitationTerms,
        OutcomeIncentiveTerms,
        QualityIncentiveTerms,
        BestPracticeTopupTerms,
        WithholdTerms,
        RiskShareTerms,
        SharedSavingsTerms,
    ],
    Field(discriminator="kind"),
]


def references(component: ComponentTerms) -> list[tuple[tuple[str | int, ...], str]]:
    """(field path, id) of each component whose payments this component reads; those are
    priced before it."""
    method = getattr(component, "references", None)
    return method() if method else []


class Member(Strict):
    """An alliance member and its agreed share of the alliance's payments, gains and losses."""

    provider: Identifier
    share: Annotated[Number, Field(gt=0, le=1, decimal_places=10)]


class ContractBody(Strict):
    """What a contract and a sub-contract have in common."""

    id: Identifier
    title: str | None = None
    provider: Identifier
    term: Term | None = None
    services: dict[Identifier, ServiceFilter] = Field(default_factory=lambda: {"all": ServiceFilter()})
    components: list[ComponentTerms] = Field(default_factory=list)


class SubContract(ContractBody):
    """A contract whose payer is the prime provider of the contract it sits in."""


class Contract(ContractBody):
    """A contract between one or more commissioners and a provider."""

    commissioner: Identifier | None = None
    commissioners: Annotated[list[CommissionerShare], Field(min_length=1)] | None = None
    subcontracts: list[SubContract] = Field(default_factory=list)
    members: Annotated[list[Member], Field(min_length=2)] | None = Field(
        default=None, description="Alliance members: the provider is the alliance, and its payments are split by share."
    )
    term: Term

    _source: str = PrivateAttr(default="")
    _lines: dict = PrivateAttr(default_factory=dict)

    @property
    def commissioner_shares(self) -> list[CommissionerShare]:
        """Every commissioner with its share of fixed elements (1 for a sole commissioner)."""
        if self.commissioners is not None:
            return list(self.commissioners)
        return [CommissionerShare(id=self.commissioner or "", share=Decimal(1), coordinating=True)]

    @property
    def source(self) -> str:
        return self._source

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        """Line in the source YAML of a field path, or of its nearest ancestor."""
        for cut in range(len(path), 0, -1):
            if path[:cut] in self._lines:
                return self._lines[path[:cut]]
        return None
