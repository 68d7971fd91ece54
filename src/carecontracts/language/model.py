"""The contract model: parties, term, services, components and sub-contracts.

Each payment mechanism's parameters are a pydantic model keyed by `kind`, so a contract is
checked field by field before anything is priced, and unknown keys are errors.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from carecontracts.periods import month_start

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=80)]
Money = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=0, le=100)]
Weight = Annotated[Decimal, Field(ge=0)]
StrList = Annotated[list[str], Field(min_length=1)]


class Strict(BaseModel):
    """Base for every contract model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DatedValue(Strict):
    """A value that holds from one date to another (inclusive); `to` open means onwards."""

    from_: dt.date = Field(alias="from")
    to: dt.date | None = None
    value: Decimal

    @model_validator(mode="after")
    def _ordered(self) -> "DatedValue":
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"'to' {self.to} is before 'from' {self.from_}")
        return self


Dated = Union[Decimal, Annotated[list[DatedValue], Field(min_length=1)]]


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
    extension_years: int = Field(default=0, ge=0, le=10)

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
    share: Annotated[Decimal, Field(gt=0, le=1)]
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
    annual: Money
    profile: Profile | None = None


class ReadmissionExclusions(Strict):
    service: list[str] = Field(default_factory=lambda: ["maternity", "cancer"])
    pod: list[str] = Field(default_factory=list)
    admission_method: list[str] = Field(default_factory=lambda: ["transfer"])
    age_under: int | None = Field(default=4, ge=0, le=130)


class ReadmissionRule(Strict):
    """Emergency readmissions within N days of a discharge from the same provider are not paid
    for, in the share judged avoidable by clinical review."""

    within_days: int = Field(default=30, ge=1, le=365)
    avoidable_percent: Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]
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
    mff: Dated = Decimal(1)
    readmission: ReadmissionRule | None = None
    unit: str = "units"


class ActivityTerms(PricedTerms):
    """Cost per case: chargeable units × unit price × MFF."""

    kind: Literal["activity"]


class CostAndVolumeTerms(ComponentBase):
    """Baseline volume at a price, a tolerance band, marginal rates outside it."""

    kind: Literal["cost_and_volume"]
    baseline_volume: Annotated[Decimal, Field(ge=0)]
    price: Money
    tolerance_percent: Percent = Decimal(0)
    above_band_percent: Percent = Field(description="Share of price paid per unit above the band.")
    below_band_percent: Percent = Field(
        default=Decimal(0), description="Share of price still paid per unit short of the band."
    )
    cap: Money | None = None
    floor: Money | None = None
    readmission: ReadmissionRule | None = None
    unit: str = "units"


class MarginalRateTerms(PricedTerms):
    """MRET-style: value at full price up to a monetary baseline, a marginal rate above."""

    kind: Literal["marginal_rate"]
    baseline_value: Money
    marginal_percent: Percent


class AlignedPaymentTerms(PricedTerms):
    """NHS aligned payment and incentive: a fixed element plus a variable element on the
    difference between actual and planned value of the component's services."""

    kind: Literal["aligned_payment"]
    fixed: Money
    profile: Profile | None = None
    variable_percent: Percent
    downside_percent: Percent | None = Field(
        default=None, description="Rate when below plan; the variable rate if omitted."
    )
    planned_value: Money | None = Field(
        default=None, description="Annual planned value; from the plans data if omitted."
    )
    variable_floor: Annotated[Decimal, Field(le=0)] | None = Field(
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
    rates: Annotated[dict[str, Money], Field(min_length=1)]
    risk_weights: dict[str, Weight] | None = None


ComponentTerms = Annotated[
    Union[
        BlockTerms,
        ActivityTerms,
        CostAndVolumeTerms,
        MarginalRateTerms,
        AlignedPaymentTerms,
        LowVolumeBlockTerms,
        CapitationTerms,
    ],
    Field(discriminator="kind"),
]


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
