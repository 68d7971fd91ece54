"""price: tallies × contract terms → statement lines, for every scenario at once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement
from carecontracts.engine.backend import Engine
from carecontracts.engine.registry import MECHANISMS
from carecontracts.engine.statement import conform
from carecontracts.language.model import ComponentTerms, references
from carecontracts.money import AMOUNT_TYPE, SHARE_TYPE, SHARED_TYPE
from carecontracts.language.yaml_lines import format_path
from carecontracts.periods import FinancialYear, month_label
from carecontracts.problems import Problem, ProblemsError


class PricingError(ProblemsError):
    """Terms and data that cannot be priced (e.g. a currency with no price on a date)."""


@dataclass(frozen=True)
class PricingInputs:
    """Everything pricing reads besides the terms: tallies and reference data."""

    engine: Engine
    year: FinancialYear
    scenarios: tuple[str, ...]
    tallies: ir.Table | None
    prices: ir.Table | None = None
    plans: ir.Table | None = None
    population: ir.Table | None = None
    outcomes: ir.Table | None = None
    activity: ir.Table | None = None
    # Changes to outcome achievement in some scenarios (what-ifs, simulation runs, stress
    # tests): (scenario, contract, metric) → change in the statistic's units (0.05 is five
    # points on a share).
    achievement_changes: dict[tuple[str, str, str], Decimal] = field(default_factory=dict)
    repricing: "Repricing" = field(default_factory=lambda: Repricing())


@dataclass
class Repricing:
    """What pricing the same terms over and over (a simulation's chunks of runs) shares
    between one pricing and the next: measurements that are the same in every scenario
    (each outcome metric's achievement), whether the tallies' currencies and months were
    checked against the price lists already, and the fixed names under which outcome
    components store their earned fractions (Engine.store), so that a query compiled once
    can be run again after they are stored with other achievement changes."""

    measured: dict[tuple, Any] = field(default_factory=dict)
    prices_checked: bool = False
    earned_names: dict[tuple[str, str], str] = field(default_factory=dict)
    achieved: dict[tuple[str, str], Any] = field(default_factory=dict)  # what each named component's earned fractions are worked from


@dataclass(frozen=True)
class PricingContext:
    """One component of one agreement, with its inputs, handed to its mechanism."""

    inputs: PricingInputs
    agreement: Agreement
    component: ComponentTerms
    index: int
    priced: dict[str, ir.Table] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        return self.inputs.engine

    @property
    def months(self) -> list[dt.date]:
        """Months of the financial year that the agreement's term covers."""
        return [m for m in self.inputs.year.months if self.agreement.term.covers_month(m)]

    @property
    def path(self) -> tuple[str | int, ...]:
        return self.agreement.component_path(self.index)

    def scenarios(self) -> ir.Table:
        return self.engine.put(pa.table({"scenario": pa.array(self.inputs.scenarios, pa.string())}))

    def tallies(self) -> ir.Table:
        """This component's tallies; an error if no activity is loaded at all."""
        tallies = self.inputs.tallies
        if tallies is None:
            raise PricingError([Problem(self.agreement.contract.source, "no activity tallies to price", field=self.component.id)])
        return tallies.filter(tallies.contract == self.agreement.id, tallies.component == self.component.id)

    def lines_of(self, component: str) -> ir.Table:
        """Statement lines of another component of this agreement (priced before this one,
        as its references require), including its parts (`<id>.fixed`, `<id>.variable`)."""
        return self.priced[component]

    def problem(self, message: str, field: str | None = None, expected: str | None = None) -> PricingError:
        """A PricingError located at this component (or one of its fields) in its YAML file."""
        path = self.path + ((field,) if field else ())
        line = self.agreement.contract.line_of(path)
        return PricingError([Problem(self.agreement.contract.source, message, line=line, field=format_path(path), expected=expected)])


def check_prices(inputs: PricingInputs, agreements: list[Agreement]) -> None:
    """Raise one PricingError listing, for every component priced from a price list, the
    currencies and months it must price that its list has no price for."""
    wanted: list[ir.Table] = []
    where: dict[tuple[str, str], PricingContext] = {}
    for agreement in agreements:
        for index, component in enumerate(agreement.components):
            price_list = getattr(component, "prices", None)
            if price_list is None or inputs.tallies is None:
                continue
            context = PricingContext(inputs, agreement, component, index)
            where[(agreement.id, component.id)] = context
            tallies = context.tallies()
            tallies = tallies.filter(tallies.month.isin(context.months))
            wanted.append(tallies.select("contract", "component", "currency", "month", price_list=ibis.literal(price_list)).distinct())
    if not wanted:
        return
    needed = ibis.union(*wanted, distinct=False)
    prices = inputs.prices
    if prices is None:
        missing = needed
    else:
        missing = needed.anti_join(
            prices,
            [needed.price_list == prices.price_list, needed.currency == prices.currency, prices.valid_from <= needed.month, prices.valid_to >= needed.month],
        )
    rows = inputs.engine.to_arrow(missing.order_by(["contract", "component", "month", "currency"]).limit(50)).to_pylist()
    if not rows:
        return
    problems: list[Problem] = []
    for (contract, component), group in groupby(rows, key=lambda r: (r["contract"], r["component"])):
        gaps = list(group)
        context = where[(contract, component)]
        listed = "; ".join(f"{r['currency']} in {month_label(r['month'])}" for r in gaps[:10])
        price_list = gaps[0]["price_list"]
        problems += context.problem(
            f"price list '{price_list}' has no price for {listed}" + (" and more" if len(gaps) > 10 else ""),
            "prices",
            f"a price for every currency and month priced (prices/{price_list}.csv)",
        ).problems
    raise PricingError(problems)


def price(inputs: PricingInputs, agreements: list[Agreement]) -> ir.Table:
    """Statement lines for every component of every agreement, in every scenario."""
    if not inputs.repricing.prices_checked:
        check_prices(inputs, agreements)
    parts: list[ir.Table] = []
    for agreement in agreements:
        priced: dict[str, ir.Table] = {}
        for index in pricing_order(agreement):
            component = agreement.components[index]
            context = PricingContext(inputs, agreement, component, index, priced)
            priced[component.id] = conform(MECHANISMS[component.kind].price(context))
        for component in agreement.components:
            lines = priced[component.id]
            parts.append(split_among_members(inputs.engine, lines, agreement) if agreement.members else lines)
    if not parts:
        raise PricingError([Problem("contracts", "no components to price")])
    return ibis.union(*parts, distinct=False)


def pricing_order(agreement: Agreement) -> list[int]:
    """Component indexes in contract order, except that a component reading another's
    payments comes after it (contracts are checked for circles when loaded)."""
    done: set[str] = set()
    order: list[int] = []
    waiting = list(range(len(agreement.components)))
    while waiting:
        for index in waiting:
            if all(name in done for _, name in references(agreement.components[index])):
                break
        else:
            raise PricingError([Problem(agreement.contract.source, "components refer to each other in a circle", field=format_path(agreement.path + ("components",)))])
        waiting.remove(index)
        order.append(index)
        done.add(agreement.components[index].id)
    return order


def split_among_members(engine: Engine, lines: ir.Table, agreement: Agreement) -> ir.Table:
    """An alliance's lines, each split among its members by agreed share: every member but
    the last gets its share rounded half-up to pence, the last the rest, so each line's
    parts sum exactly to it."""
    members = agreement.members
    rounded = [(lines.amount.cast(SHARED_TYPE) * ibis.literal(m.share, type=SHARE_TYPE)).round(2).cast(AMOUNT_TYPE) for m in members[:-1]]
    rest = lines.amount.cast(AMOUNT_TYPE)
    for part in rounded:
        rest = (rest - part).cast(AMOUNT_TYPE)
    whole = engine.number(lines.amount.abs(), 2)
    whole = ibis.cases((lines.amount < 0, "-£" + whole), else_="£" + whole)
    parts = []
    for position, (member, amount) in enumerate(zip(members, rounded + [rest])):
        words = f"; {member.provider}'s share {member.share.normalize():f}"
        words += " (the rest)" if position == len(members) - 1 else ""
        parts.append(lines.mutate(payee=ibis.literal(member.provider), amount=amount, basis=lines.basis + words + " of the alliance's " + whole))
    return ibis.union(*parts, distinct=False)


def fraction(percent: Decimal) -> Decimal:
    """25 → 0.25, exactly."""
    return percent / Decimal(100)
