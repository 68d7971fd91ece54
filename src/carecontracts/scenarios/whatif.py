"""What-if: declarative changes to activity or to contract terms, priced as scenarios by the
same price stage as the payments, and compared with the baseline per contract and party.

Activity changes act on the fine tallies (so they can filter by provider, point of
delivery, currency, service and months); term changes price a copy of the contracts with
one parameter changed. Either way the result is another scenario key.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Annotated, Any, Callable, Mapping, Sequence

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import Field, ValidationError, model_validator

from carecontracts.engine.agreements import Agreement, agreements_of
from carecontracts.engine.backend import Engine, recast
from carecontracts.engine.measure import ACTUAL, summed, tallies
from carecontracts.engine.registry import MECHANISMS
from carecontracts.engine.run import RunTables, measure, price_tallies
from carecontracts.language.load import problems_from_validation
from carecontracts.language.model import Contract, Identifier, Strict
from carecontracts.language.yaml_lines import LocatedDocument
from carecontracts.machine import is_overflow
from carecontracts.money import QUANTITY_TYPE
from carecontracts.periods import FinancialYear, add_months, month_label, month_start
from carecontracts.problems import Problem, ProblemsError
from carecontracts.scenarios.forecast import KEY, METHODS, check_as_of, last_year_tallies, project, projected_routed

FACTOR = "decimal(12, 8)"
MEASURES_SCALED = ("quantity", "cost", "readmitted", "chargeable")  # the last two: of routed tallies
COUNTS_SCALED = ("events", "compliant")


MAX_PERCENT = Decimal(1000)  # an activity or price change of at most ten times over
MAX_UNITS = Decimal(1_000_000_000)
MAX_POINTS = Decimal(1_000_000)
MAX_VALUE = Decimal(1_000_000_000_000)  # a term or price set by a what-if: money stays within DECIMAL(18, 2)


class ActivityFilter(Strict):
    """Which activity a change applies to: every listed column must match one of its
    values; `from`/`to` bound the months (inclusive)."""

    service: list[str] | None = None
    provider: list[str] | None = None
    commissioner: list[str] | None = None
    currency: list[str] | None = None
    pod: list[str] | None = None
    from_: dt.date | None = Field(default=None, alias="from")
    to: dt.date | None = None

    @model_validator(mode="after")
    def _in_order(self) -> "ActivityFilter":
        if self.from_ is not None and self.to is not None and month_start(self.from_) > month_start(self.to):
            raise ValueError(f"'from' {self.from_:%Y-%m} is after 'to' {self.to:%Y-%m}: give the first month changed, then the last")
        return self

    def words(self) -> str:
        parts = [f"{name} {', '.join(values)}" for name, values in self.model_dump(exclude={"from_", "to"}).items() if values]
        if self.from_ or self.to:
            first = month_label(month_start(self.from_)) if self.from_ else "the start"
            last = month_label(month_start(self.to)) if self.to else "the end of the year"
            parts.append(f"{first} to {last}")
        return "; ".join(parts) or "all activity"


MAX_LAG_MONTHS = 24


class Change(Strict):
    """One change: scale matching activity by a percent or a number of units, change the
    referrals that lead to it (a share converting to activity some months later), move it to
    another provider, or set a contract parameter."""

    scale: ActivityFilter | None = None
    referrals: ActivityFilter | None = Field(default=None, description="The activity that the changed referrals lead to, from the month referrals change.")
    conversion_percent: Decimal | None = Field(default=None, gt=0, le=100, description="Of `units` more (or fewer) referrals, the percent that become activity.")
    lag_months: int = Field(default=0, ge=0, le=MAX_LAG_MONTHS, description="Months from referral to the activity it leads to.")
    percent: Decimal | None = Field(default=None, ge=-100, le=MAX_PERCENT, description="Change in matching activity, e.g. -10.")
    units: Decimal | None = Field(default=None, ge=-MAX_UNITS, le=MAX_UNITS, description="Units added (or, negative, removed), spread in proportion.")
    move: ActivityFilter | None = None
    to: Identifier | None = Field(default=None, description="The provider activity moves to.")
    parameter: str | None = Field(default=None, description="CONTRACT.COMPONENT.FIELD, e.g. ISP-2025.isp.mff.")
    value: Decimal | str | None = None
    price: str | None = Field(default=None, description="PRICE_LIST/CURRENCY whose unit price changes (* for every currency), e.g. national-2025/HN12F.")
    outcome: str | None = Field(default=None, description="CONTRACT.METRIC whose achievement changes, e.g. MSK-2025.hip-function.")
    points: Decimal | None = Field(default=None, ge=-MAX_POINTS, le=MAX_POINTS, description="Change in achievement: percentage points for a share, the statistic's units otherwise.")

    @model_validator(mode="after")
    def _one_kind(self) -> "Change":
        kinds = [k for k in ("scale", "referrals", "move", "parameter", "price", "outcome") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give one of 'scale', 'referrals', 'move', 'parameter', 'price' or 'outcome'")
        if self.referrals is None and (self.conversion_percent is not None or self.lag_months):
            raise ValueError("'conversion_percent' and 'lag_months' go with 'referrals'")
        if self.referrals is not None:
            return self._as_activity(self.referrals)
        if self.price is not None and ("/" not in self.price or (self.value is None) == (self.percent is None)):
            raise ValueError("'price' is PRICE_LIST/CURRENCY with a new 'value' or a 'percent' change, e.g. national-2025/HN12F, percent: 2")
        if self.outcome is not None and (self.points is None or len(self.outcome.split(".")) != 2):
            raise ValueError("'outcome' is CONTRACT.METRIC with 'points', e.g. MSK-2025.hip-function, points: -10")
        if self.scale is not None and (self.percent is None) == (self.units is None):
            raise ValueError("'scale' needs either 'percent' or 'units'")
        if self.move is not None and self.to is None:
            raise ValueError("'move' needs 'to': the provider it moves to")
        if isinstance(self.value, Decimal) and not (self.value.is_finite() and abs(self.value) <= MAX_VALUE):
            raise ValueError(f"'value' {self.value} is out of range: expected a number between -{MAX_VALUE:,} and {MAX_VALUE:,}")
        if self.parameter is not None:
            if self.value is None:
                raise ValueError("'parameter' needs a 'value'")
            if len(self.parameter.split(".")) < 3:
                raise ValueError("'parameter' is CONTRACT.COMPONENT.FIELD, e.g. ISP-2025.isp.mff")
        return self

    def _as_activity(self, referrals: ActivityFilter) -> "Change":
        """A referral change as the change in activity it leads to: `units` referrals × the
        conversion percent, or the same percent of the activity, from `lag_months` later."""
        if (self.percent is None) == (self.units is None):
            raise ValueError("'referrals' needs either 'percent' (of the activity they lead to) or 'units' (referrals more or fewer)")
        if self.percent is not None and self.conversion_percent is not None:
            raise ValueError("'conversion_percent' goes with 'units' of referrals: a percent change in referrals is the same percent of the activity they lead to")
        if self.lag_months and referrals.from_ is None:
            raise ValueError("'referrals' with 'lag_months' needs 'from': the first month referrals change")
        shifted = referrals.model_copy(update={
            "from_": None if referrals.from_ is None else add_months(month_start(referrals.from_), self.lag_months),
            "to": None if referrals.to is None else add_months(month_start(referrals.to), self.lag_months),
        })
        units = None if self.units is None else self.units * (self.conversion_percent if self.conversion_percent is not None else Decimal(100)) / 100
        return self.model_copy(update={"scale": shifted, "units": units})

    def describe(self) -> str:
        if self.referrals is not None and self.scale is not None:
            if self.percent is not None:
                size = f"{self.percent.normalize():+f}%"
            else:
                conversion = self.conversion_percent if self.conversion_percent is not None else Decimal(100)
                referred = (self.units or Decimal(0)) * 100 / conversion
                size = f"{referred.normalize():+,f} referrals, {conversion.normalize():f}% becoming activity: {(self.units or Decimal(0)).normalize():+,f} units"
            return f"referrals for {self.referrals.words()}: {size}, {self.lag_months} months later ({self.scale.words()})"
        if self.scale is not None:
            size = f"{self.percent.normalize():+f}%" if self.percent is not None else f"{self.units:+,} units"  # type: ignore[union-attr]
            return f"{self.scale.words()}: {size}"
        if self.move is not None:
            share = f"{(self.percent or Decimal(100)).normalize():f}% of " if self.percent is not None else ""
            return f"move {share}{self.move.words()} to {self.to}"
        if self.outcome is not None:
            return f"{self.outcome} achievement {self.points:+} points"
        if self.price is not None:
            return f"price {self.price} " + (f"{self.percent.normalize():+f}%" if self.percent is not None else f"= {self.value}")
        return f"{self.parameter} = {self.value}"


class WhatIf(Strict):
    """A named what-if: its changes, applied together to the baseline."""

    name: Annotated[str, Field(min_length=1, max_length=80)] = "what-if"
    changes: Annotated[list[Change], Field(min_length=1)]


def parse_whatif(document: LocatedDocument) -> WhatIf:
    """A what-if from YAML, every problem located by line and field."""
    try:
        return WhatIf.model_validate(document.data)
    except ValidationError as error:
        raise ProblemsError(problems_from_validation(document, error)) from None


# --------------------------------------------------------------------------- activity


FILTERED = ("service", "provider", "commissioner", "currency", "pod")
# Routed tallies carry the activity's own columns a filter reads as `unit_<column>`.
CARRIED = tuple(c for c in FILTERED if c != "currency")


def _matching(fine: ir.Table, where: ActivityFilter, carried: bool = False) -> ir.BooleanValue:
    """Rows of fine tallies (or of routed tallies carrying `CARRIED`) the filter matches."""
    condition = ibis.literal(True)
    for column in FILTERED:
        values = getattr(where, column)
        if values:
            name = f"unit_{column}" if carried and column in CARRIED else column
            condition &= fine[name].isin(values).fill_null(False)
    if where.from_ is not None:
        condition &= fine.month >= month_start(where.from_)
    if where.to is not None:
        condition &= fine.month <= month_start(where.to)
    return condition


def _scaled(fine: ir.Table, factor: ir.NumericValue) -> dict[str, ir.Value]:
    """Every measure of the fine tallies × factor (counts rounded to whole events)."""
    columns: dict[str, ir.Value] = {}
    for name in fine.columns:
        if name in MEASURES_SCALED or name.startswith("readmitted_"):
            kind = fine[name].type()
            columns[name] = recast(fine[name].cast(QUANTITY_TYPE) * factor, str(kind))
        elif name in COUNTS_SCALED:
            columns[name] = recast(fine[name].cast(QUANTITY_TYPE) * factor, "decimal(20, 0)").cast(fine[name].type())
    return columns


def _factor(value: Decimal) -> ir.NumericValue:
    return ibis.literal(value.quantize(Decimal("0.00000001")), type=FACTOR)


@dataclass(frozen=True)
class Applied:
    """What a change matched: the units it touched (zero means it matched nothing), and of
    the units a move takes elsewhere, those no contract of the other provider counts."""

    change: Change
    matched_units: Decimal
    unpaid_units: Decimal = Decimal(0)


def apply_activity(engine: Engine, fine: ir.Table, changes: list[Change], scenario: str, carried: bool = False,
                   reroute: Callable[[ir.Table], ir.Table | None] | None = None) -> tuple[ir.Table, list[Applied]]:
    """The baseline's fine tallies (or routed tallies carrying the filtered columns, `carried`)
    with the activity changes applied, as `scenario`. `reroute` turns the activity moved to
    another provider (fine tallies, or one route of each routed tally) into that provider's
    routed tallies carrying every fine column: routed tallies move only with it, and with it
    a move says how much of what it moved no contract of the other provider counts."""
    changed = fine.mutate(scenario=ibis.literal(scenario))
    applied: list[Applied] = []
    for change in changes:
        where = change.scale or change.move
        if where is None:
            continue
        hit = _matching(changed, where, carried)
        selected = _one_route(changed.filter(hit)) if carried else changed.filter(hit)
        matched = engine.to_arrow(selected.aggregate(units=selected.quantity.sum())).column("units")[0].as_py() or Decimal(0)
        if change.scale is not None:
            applied.append(Applied(change, Decimal(matched)))
            if change.percent is not None:
                factor = 1 + change.percent / 100
            else:
                factor = 1 + (change.units or Decimal(0)) / matched if matched else Decimal(1)
            scaled = _scaled(changed, _factor(factor))
            changed = changed.mutate(**{name: ibis.cases((hit, value), else_=changed[name]) for name, value in scaled.items()})
            continue
        share = (change.percent if change.percent is not None else Decimal(100)) / 100
        kept = changed.mutate(**{name: ibis.cases((hit, value), else_=changed[name]) for name, value in _scaled(changed, _factor(1 - share)).items()})
        if carried:
            if reroute is None:
                raise ValueError("routed tallies move to another provider only with a reroute")
            rerouted = reroute(selected.mutate(unit_provider=ibis.literal(change.to), **_scaled(selected, _factor(share))))
            if rerouted is None:
                raise ValueError("a reroute of routed tallies gives routed tallies")
            moved = counted = rerouted
        else:
            moved = selected.mutate(provider=ibis.literal(change.to), **_scaled(selected, _factor(share)))
            counted = reroute(moved) if reroute is not None else None  # None: nothing counts activity at all
        unpaid = Decimal(0)
        if carried or reroute is not None:
            paid_units = Decimal(0)
            if counted is not None:
                paid = _one_route(counted)
                paid_units = engine.to_arrow(paid.aggregate(units=paid.quantity.sum())).column("units")[0].as_py() or Decimal(0)
            unpaid = max(Decimal(matched) * share - Decimal(paid_units), Decimal(0)).quantize(Decimal("0.00000001"))
        applied.append(Applied(change, Decimal(matched), unpaid))
        changed = ibis.union(kept, moved.select(kept.columns), distinct=False)
    return changed, applied


def _one_route(routed: ir.Table) -> ir.Table:
    """Routed tallies carrying the activity's own columns, kept for only the first contract
    and component counting each piece of activity, so activity counted by several is counted once."""
    own = [c for c in routed.columns if c.startswith("unit_")]
    route = routed.contract.concat("/", routed.component)
    marked = routed.mutate(_route=route, _first=route.min().over(group_by=["scenario", "month", "currency", *own]))
    return marked.filter(marked._route == marked._first).drop("_route", "_first")


def rerouting(engine: Engine, agreements: list[Agreement], fine: ir.Table, carried: Sequence[str]) -> Callable[[ir.Table], ir.Table]:
    """How routed tallies carrying every column of the fine tallies (`carried`) go back to
    fine tallies and are routed again: so activity moved to another provider is counted by
    that provider's contracts, at their terms. Moved activity carries no readmissions (they
    were the first provider's)."""
    def reroute(rows: ir.Table) -> ir.Table:
        columns: dict[str, ir.Value] = {}
        for name in fine.columns:
            if name in carried:
                value = rows[f"unit_{name}"]
            elif name in ("scenario", "month", "currency", "quantity", "events", "cost", "compliant"):
                value = rows[name]
            else:
                value = ibis.literal(0)
            columns[name] = value.cast(fine[name].type())
        # Held once: routing reads the moved activity twice (its combinations, then the join).
        routed = tallies(engine, engine.cache(rows.select(**columns)), agreements, keep=carried)
        return routed if routed is not None else rows.filter(ibis.literal(False))
    return reroute


def fine_dimensions(fine: ir.Table) -> tuple[str, ...]:
    """The columns of fine tallies that say what the activity is (not when, nor how much)."""
    return tuple(c for c in fine.columns if c not in ("scenario", "month", "currency", "quantity", "events", "cost", "compliant")
                 and not c.startswith("readmitted_"))


# --------------------------------------------------------------------------- terms


def apply_parameters(contracts: list[Contract], changes: list[Change]) -> list[Contract]:
    """Copies of the contracts with the parameter changes made (validated as a contract
    would be; an unknown contract, component or field is a problem naming it)."""
    result = list(contracts)
    problems: list[Problem] = []
    for change in changes:
        if change.parameter is None:
            continue
        contract_id, component_id, *field = change.parameter.split(".")
        found = [(i, c) for i, c in enumerate(result) if c.id == contract_id]
        subs = [(i, c, s) for i, c in enumerate(result) for s in c.subcontracts if s.id == contract_id]
        if not found and not subs:
            problems.append(Problem("--set", f"no contract '{contract_id}'", value=change.parameter, expected=f"one of {', '.join(sorted(c.id for c in contracts))}"))
            continue
        index, contract = found[0] if found else subs[0][:2]
        data = contract.model_dump(by_alias=True, exclude_none=True)
        body = data if found else next(s for s in data["subcontracts"] if s["id"] == contract_id)
        components = [c for c in body["components"] if c["id"] == component_id]
        if not components:
            problems.append(Problem("--set", f"{contract_id} has no component '{component_id}'", value=change.parameter,
                                    expected=f"one of {', '.join(c['id'] for c in body['components'])}"))
            continue
        target: Any = components[0]
        for name in field[:-1]:
            target = target.setdefault(name, {})
        if field[-1] not in target and field[-1] not in _fields_of(components[0]["kind"]):
            problems.append(Problem("--set", f"a {components[0]['kind']} component has no '{'.'.join(field)}'", value=change.parameter,
                                    expected=", ".join(sorted(_fields_of(components[0]["kind"])))))
            continue
        target[field[-1]] = change.value
        try:
            updated = Contract.model_validate(data)
        except ValidationError as error:
            problems += [Problem("--set", f"{change.parameter} = {change.value}: {e['msg']}", value=change.value) for e in error.errors(include_url=False)]
            continue
        updated._source, updated._lines = contract._source, contract._lines
        result[index] = updated
    if problems:
        raise ProblemsError(problems)
    return result


def with_prices(engine: Engine, tables: RunTables, changes: list[Change]) -> RunTables:
    """The run's tables with unit prices changed (a new value, or a percent, to 4 places);
    a price list or currency with no prices is a problem naming it."""
    if not changes:
        return tables
    if tables.prices is None:
        raise ProblemsError([Problem("--price", "no prices are loaded", expected="price lists in prices/")])
    prices = tables.prices
    listed = {(r["price_list"], r["currency"]) for r in engine.to_arrow(prices.select("price_list", "currency").distinct()).to_pylist()}
    problems: list[Problem] = []
    for change in changes:
        assert change.price is not None
        price_list, currency = change.price.split("/", 1)
        hit = prices.price_list == price_list
        if currency != "*":
            hit &= prices.currency == currency
        if not any(p == price_list and (currency == "*" or c == currency) for p, c in listed):
            known = sorted({p for p, _ in listed})
            problems.append(Problem("--price", f"no price for {currency} in price list '{price_list}'", value=change.price, expected=f"a price list ({', '.join(known)}) and one of its currencies"))
            continue
        if change.value is not None:
            try:
                new = ibis.literal(Decimal(str(change.value)), type="decimal(18, 4)")
            except ArithmeticError:
                problems.append(Problem("--price", f"'{change.value}' is not a price", value=change.value, expected="e.g. 6000"))
                continue
        else:
            new = recast(prices.unit_price.cast(QUANTITY_TYPE) * _factor(1 + (change.percent or Decimal(0)) / 100), "decimal(18, 4)")
        prices = prices.mutate(unit_price=ibis.cases((hit, new), else_=prices.unit_price).cast("decimal(18, 4)"))
    if problems:
        raise ProblemsError(problems)
    return replace(tables, prices=prices)


def achievement_changes(contracts: list[Contract], changes: list[Change]) -> dict[tuple[str, str], Decimal]:
    """(contract, metric) → change in achievement, in the statistic's units (a share's
    points become a fraction); an unknown contract or metric is a problem naming it."""
    from carecontracts.language.model import OutcomeIncentiveTerms

    metrics = {
        (body.id, metric.id): metric
        for contract in contracts
        for body in (contract, *contract.subcontracts)
        for component in body.components
        if isinstance(component, OutcomeIncentiveTerms)
        for metric in component.metrics
    }
    result: dict[tuple[str, str], Decimal] = {}
    problems: list[Problem] = []
    for change in changes:
        assert change.outcome is not None and change.points is not None
        contract, metric_id = change.outcome.split(".")
        metric = metrics.get((contract, metric_id))
        if metric is None:
            known = ", ".join(f"{c}.{m}" for c, m in sorted(metrics)) or "none in these contracts"
            problems.append(Problem("--outcome", f"no outcome metric '{change.outcome}'", value=change.outcome, expected=f"one of {known}"))
            continue
        shares = metric.measure.statistic in ("share_improved", "share_reaching")
        result[(contract, metric_id)] = result.get((contract, metric_id), Decimal(0)) + (change.points / 100 if shares else change.points)
    if problems:
        raise ProblemsError(problems)
    return result


def _fields_of(kind: str) -> set[str]:
    from carecontracts.language.model import ComponentTerms

    for option in ComponentTerms.__origin__.__args__:  # type: ignore[attr-defined]
        if kind in option.model_fields["kind"].annotation.__args__:
            return set(option.model_fields)
    return set()


# --------------------------------------------------------------------------- run


@dataclass(frozen=True)
class Difference:
    """A contract component's money in the baseline and the what-if, and why it moves."""

    contract: str
    component: str
    kind: str
    payer: str
    payee: str
    baseline: Decimal
    scenario: Decimal
    reason: str

    @property
    def difference(self) -> Decimal:
        return self.scenario - self.baseline


@dataclass(frozen=True)
class WhatIfResult:
    whatif: WhatIf
    months: list[dt.date]
    differences: list[Difference]
    applied: list[Applied]
    lines: pa.Table

    @property
    def total(self) -> Decimal:
        return sum((d.difference for d in self.differences), Decimal(0))

    def unmatched(self) -> list[Change]:
        """Activity changes whose filter matched no activity (a warning, not a silent zero)."""
        return [a.change for a in self.applied if a.matched_units == 0]

    def warnings(self) -> list[str]:
        """What the reader must know before trusting the difference: changes matching no
        activity, and activity moved to a provider none of whose contracts pays for it."""
        said = [f"{c.describe()} matches no activity, so it changes nothing." for c in self.unmatched()]
        for a in self.applied:
            if a.unpaid_units > 0:
                moved = a.matched_units * ((a.change.percent if a.change.percent is not None else Decimal(100)) / 100)
                said.append(f"{a.change.describe()}: {a.unpaid_units.normalize():,f} of the {moved.normalize():,f} units moved are counted by "
                            f"none of {a.change.to}'s contracts, so no one is paid for them and the difference counts them as saved.")
        return said

    def by_party(self) -> dict[str, Decimal]:
        """Each party's change in net position (income − payments)."""
        net: dict[str, Decimal] = defaultdict(Decimal)
        for d in self.differences:
            net[d.payee] += d.difference
            net[d.payer] -= d.difference
        return dict(net)


def run_whatif(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    whatif: WhatIf,
    months: list[dt.date] | None = None,
    baseline: str = ACTUAL,
) -> WhatIfResult:
    """Price the baseline and the what-if together and compare them over `months` (the
    whole year by default)."""
    months = months or year.months
    check_providers(contracts, whatif)
    try:
        return _run_whatif(engine, contracts, year, tables, whatif, months, baseline)
    except Exception as error:
        if is_overflow(error) or isinstance(error, pa.ArrowInvalid):
            raise _too_large(whatif, error) from None
        raise


def _too_large(whatif: WhatIf, error: BaseException) -> ProblemsError:
    """A what-if whose amounts do not fit the money type: named, with what was expected."""
    return ProblemsError([Problem("whatif", f"'{'; '.join(c.describe() for c in whatif.changes)}' makes amounts too large to price",
                                  value=str(error)[:120], expected="a smaller change: amounts stay below £10,000,000,000,000,000")])


def check_providers(contracts: list[Contract], whatif: WhatIf) -> None:
    """Activity can only move to a provider some contract pays: else a problem naming the known ones."""
    known = sorted({body.provider for contract in contracts for body in (contract, *contract.subcontracts)}
                   | {m.provider for contract in contracts for body in (contract, *contract.subcontracts) for m in (getattr(body, "members", None) or [])})
    problems = [Problem("--move-to", f"no contract has provider '{c.to}', so no contract would pay for the activity moved", value=c.to,
                        expected=f"one of {', '.join(known)}") for c in whatif.changes if c.move is not None and c.to not in known]
    if problems:
        raise ProblemsError(problems)


def _run_whatif(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    whatif: WhatIf,
    months: list[dt.date],
    baseline: str,
) -> WhatIfResult:
    """run_whatif's pricing, once the what-if is known to be sound."""
    scenario = whatif.name
    agreements = agreements_of(contracts)
    fine, routed = measure(engine, agreements, tables.activity)
    activity_changes = [c for c in whatif.changes if c.scale is not None or c.move is not None]
    parameter_changes = [c for c in whatif.changes if c.parameter is not None]
    achieved = achievement_changes(contracts, [c for c in whatif.changes if c.outcome is not None])
    achievement = {(scenario, contract, metric): change for (contract, metric), change in achieved.items()}
    applied: list[Applied] = []
    if fine is not None and activity_changes:
        def counting(moved: ir.Table) -> ir.Table | None:
            return tallies(engine, moved, agreements, keep=fine_dimensions(fine))

        moves = any(c.move is not None for c in activity_changes)
        changed, applied = apply_activity(engine, fine, activity_changes, scenario, reroute=counting if moves else None)
        changed_routed = tallies(engine, changed, agreements)
    else:
        changed_routed = routed.mutate(scenario=ibis.literal(scenario)) if routed is not None else None
    base_lines = price_tallies(engine, agreements, year, tables, routed, (baseline,))
    changed_agreements = agreements_of(apply_parameters(contracts, parameter_changes)) if parameter_changes else agreements
    what_tables = with_prices(engine, tables, [c for c in whatif.changes if c.price is not None])
    what_lines = price_tallies(engine, changed_agreements, year, what_tables, changed_routed, (scenario,), achievement)
    lines = ibis.union(base_lines, what_lines, distinct=False)
    lines = engine.to_arrow(lines.filter(lines.month.isin(months)))
    kinds = {(a.id, c.id): c.kind for a in agreements for c in a.components}
    return WhatIfResult(whatif, months, _differences(lines, kinds, baseline, scenario), applied, lines)


# --------------------------------------------------------------------------- forward


@dataclass(frozen=True)
class ForwardResult:
    """A what-if on the forecast: for each method, the what-if against that method's forecast,
    actual to `as_of` and projected after it, priced in one run."""

    as_of: dt.date
    by_method: dict[str, WhatIfResult]
    unavailable: dict[str, str]

    @property
    def headline(self) -> str:
        """The method to show in detail: the blend where the data allows it, else the first."""
        return "blend" if "blend" in self.by_method else next(iter(self.by_method))


def run_forward(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    whatif: WhatIf,
    as_of: dt.date,
    months: list[dt.date] | None = None,
    methods: tuple[str, ...] | None = None,
) -> ForwardResult:
    """Apply the what-if to each forecast method's activity, actual to `as_of` and projected
    after it, and price baseline and what-if forecasts together. Activity moved to another
    provider is projected as the first provider's, then counted by the other's contracts."""
    methods = methods or METHODS
    months = months or year.months
    check_providers(contracts, whatif)
    try:
        return _run_forward(engine, contracts, year, tables, whatif, as_of, months, methods)
    except Exception as error:
        if is_overflow(error) or isinstance(error, pa.ArrowInvalid):
            raise _too_large(whatif, error) from None
        raise


def _run_forward(engine: Engine, contracts: list[Contract], year: FinancialYear, tables: RunTables, whatif: WhatIf, as_of: dt.date,
                 months: list[dt.date], methods: tuple[str, ...]) -> ForwardResult:
    """run_forward's pricing, once the what-if is known to be sound."""
    agreements = agreements_of(contracts)
    fine, _ = measure(engine, agreements, tables.activity)
    if fine is None:
        raise ProblemsError([Problem("--as-of", "no activity is loaded to forecast from", expected="run `carecontracts load` first")])
    moves = any(c.move is not None for c in whatif.changes)
    # Moving activity routes it again, and a change by units counts the activity it matches
    # once however many contracts count it: both need everything routing reads kept.
    whole = moves or any(c.scale is not None and c.units is not None for c in whatif.changes)
    carried = tuple(dict.fromkeys([*CARRIED, *fine_dimensions(fine)])) if whole else CARRIED
    routed = tallies(engine, fine, agreements, keep=carried)
    elapsed = check_as_of(routed, year, as_of, engine)
    last = last_year_tallies(engine, fine, agreements, year, carried) if "seasonal" in methods or "blend" in methods else None
    projection = project(engine, routed, last, tables.plans, year, as_of, methods, [*KEY, *(f"unit_{c}" for c in carried)])
    forecasts = projected_routed(routed, projection, elapsed, None)
    if not forecasts:
        raise ProblemsError([Problem("--as-of", "; ".join(f"{m}: {why}" for m, why in projection.unavailable.items()), expected="a month the data allows")])
    activity_changes = [c for c in whatif.changes if c.scale is not None or c.move is not None]
    reroute = rerouting(engine, agreements, fine, carried) if moves else None
    achieved = achievement_changes(contracts, [c for c in whatif.changes if c.outcome is not None])
    base_parts, what_parts, names, what_names = [], [], [], []
    applied_by: dict[str, list[Applied]] = {}
    for name, rows in forecasts:
        method = name.split(":")[1]
        what_name = f"{whatif.name} on {method}"
        changed, applied_by[method] = apply_activity(engine, rows, activity_changes, what_name, carried=True, reroute=reroute) if activity_changes else (
            rows.mutate(scenario=ibis.literal(what_name)), [])
        # Each method's tallies held once, so pricing them all is one plan of modest size (on Spark too).
        base_parts.append(engine.cache(summed(rows)))
        what_parts.append(engine.cache(summed(changed)))
        names.append(name)
        what_names.append(what_name)
    parameter_changes = [c for c in whatif.changes if c.parameter is not None]
    changed_agreements = agreements_of(apply_parameters(contracts, parameter_changes)) if parameter_changes else agreements
    what_tables = with_prices(engine, tables, [c for c in whatif.changes if c.price is not None])
    achievement = {(what, contract, metric): change for what in what_names for (contract, metric), change in achieved.items()}
    base_lines = price_tallies(engine, agreements, year, tables, ibis.union(*base_parts, distinct=False), tuple(names))
    what_lines = price_tallies(engine, changed_agreements, year, what_tables, ibis.union(*what_parts, distinct=False), tuple(what_names), achievement)
    lines = ibis.union(base_lines, what_lines, distinct=False)
    lines = engine.to_arrow(lines.filter(lines.month.isin(months)))
    kinds = {(a.id, c.id): c.kind for a in agreements for c in a.components}
    by_method = {}
    for name, what_name in zip(names, what_names):
        method = name.split(":")[1]
        mine = lines.filter(pa.compute.is_in(lines.column("scenario"), value_set=pa.array([name, what_name])))
        by_method[method] = WhatIfResult(whatif, months, _differences(mine, kinds, name, what_name), applied_by[method], mine)
    return ForwardResult(as_of, by_method, projection.unavailable)


def _differences(lines: pa.Table, kinds: Mapping[tuple[str, str], str], baseline: str, scenario: str) -> list[Difference]:
    """Each contract component's money in the baseline and the what-if, and why it moves."""
    totals: dict[tuple[str, str, str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in lines.to_pylist():
        totals[(row["contract"], row["component"], row["payer"], row["payee"])][row["scenario"]] += row["amount"]
    differences = []
    for (contract, component, payer, payee), amounts in sorted(totals.items()):
        kind = kinds.get((contract, component.split(".")[0]), "")
        reason = MECHANISMS[kind].why(component) if kind else ""
        differences.append(Difference(contract, component, kind, payer, payee, amounts.get(baseline, Decimal(0)), amounts.get(scenario, Decimal(0)), reason))
    return differences
