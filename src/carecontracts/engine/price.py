"""price: tallies × contract terms → statement lines, for every scenario at once.

Terms are data: every mechanism prices all components of its kind at once, from tables of
their terms joined to the tallies, so the number of expressions depends on the kinds in
use, never on the number of contracts. Components that read other components' payments
(percent_of, of, target_of) are priced in later passes, each a join on the lines of the
passes before."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby
from typing import Any, Iterable, Sequence

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement
from carecontracts.engine.backend import Engine
from carecontracts.engine.registry import MECHANISMS
from carecontracts.engine.statement import conform
from carecontracts.language.model import ComponentTerms, references
from carecontracts.money import AMOUNT_TYPE, SHARE_TYPE, SHARED_TYPE, currency_symbol
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
    books: ir.Table | None = None  # prices workbooks (data.books.BOOK_SCHEMA)
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
    checked against the price lists already, and the fixed name under which outcome
    components store their earned fractions (Engine.store), so that a query compiled once
    can be run again after they are stored with other achievement changes."""

    measured: dict[tuple | str, Any] = field(default_factory=dict)
    prices_checked: bool = False
    earned_name: str | None = None
    achieved: list[Any] = field(default_factory=list)  # what the stored earned fractions are worked from
    # Whether each kind's lines may be computed once and kept for the passes after it, so
    # that their query is compiled once rather than within every kind that reads them. Off
    # where one query is compiled to be run again over new tallies (a simulation's chunks).
    keep_passes: bool = True


@dataclass(frozen=True)
class Placed:
    """One component of one agreement, with the months of the year its term covers: the
    unit that terms tables have a row (or a row per month, payer or period) for."""

    agreement: Agreement
    component: ComponentTerms
    index: int
    months: tuple[dt.date, ...]

    @property
    def contract(self) -> str:
        return self.agreement.id

    @property
    def id(self) -> str:
        return self.component.id

    @property
    def path(self) -> tuple[str | int, ...]:
        return self.agreement.component_path(self.index)

    def problem(self, message: str, field: str | None = None, expected: str | None = None) -> Problem:
        """A problem located at this component (or one of its fields) in its YAML file."""
        path = self.path + ((field,) if field else ())
        line = self.agreement.contract.line_of(path)
        return Problem(self.agreement.contract.source, message, line=line, field=format_path(path), expected=expected)

    def error(self, message: str, field: str | None = None, expected: str | None = None) -> PricingError:
        return PricingError([self.problem(message, field, expected)])


def placed_components(agreements: Sequence[Agreement], year: FinancialYear) -> list[Placed]:
    """Every component of every agreement, with its payable months."""
    found: list[Placed] = []
    for agreement in agreements:
        months = tuple(m for m in year.months if agreement.term.covers_month(m))
        for index, component in enumerate(agreement.components):
            found.append(Placed(agreement, component, index, months))
    return found


def table_of(engine: Engine, types: dict[str, pa.DataType], rows: Iterable[Sequence[Any]]) -> ir.Table:
    """An engine table from rows of Python values in the order of `types`."""
    columns: list[list[Any]] = [[] for _ in types]
    for row in rows:
        for column, value in zip(columns, row):
            column.append(value)
    return engine.put(pa.table({name: pa.array(values, kind) for (name, kind), values in zip(types.items(), columns)}))


@dataclass(frozen=True)
class KindContext:
    """Every component of one kind in one pass, with the inputs, handed to its mechanism."""

    inputs: PricingInputs
    kind: str
    placed: tuple[Placed, ...]
    earlier: dict[str, ir.Table] = field(default_factory=dict)  # lines of the passes before by kind, with `origin`

    @property
    def engine(self) -> Engine:
        return self.inputs.engine

    @property
    def year(self) -> FinancialYear:
        return self.inputs.year

    def subset(self, placed: Sequence[Placed]) -> "KindContext":
        """The same pass for some of its components."""
        return KindContext(self.inputs, self.kind, tuple(placed), self.earlier)

    def scenarios(self) -> ir.Table:
        return self.engine.put(pa.table({"scenario": pa.array(self.inputs.scenarios, pa.string())}))

    def table(self, types: dict[str, pa.DataType], rows: Iterable[Sequence[Any]]) -> ir.Table:
        """Terms as an engine table (rows in the order of `types`)."""
        return table_of(self.engine, types, rows)

    def keys(self) -> ir.Table:
        """(contract, component) of every component of this kind in this pass."""
        return self.table({"contract": pa.string(), "component": pa.string()}, ((p.contract, p.id) for p in self.placed))

    def months(self) -> ir.Table:
        """(contract, component, month) for every payable month of every component."""
        types = {"contract": pa.string(), "component": pa.string(), "month": pa.date32()}
        return self.table(types, ((p.contract, p.id, m) for p in self.placed for m in p.months))

    def tallies(self) -> ir.Table:
        """The tallies of these components in the year's months; an error if no activity is loaded."""
        tallies = self.inputs.tallies
        if tallies is None:
            raise PricingError([p.problem("no activity tallies to price", "id") for p in self.placed[:20]])
        tallies = tallies.filter(tallies.month.isin(self.year.months))
        return tallies.semi_join(self.keys(), ["contract", "component"])

    def lines_of(self, references: Iterable[tuple[Placed, str]]) -> ir.Table:
        """Lines of the passes before that the given components refer to (a component's
        parts, `<id>.fixed` and `<id>.variable`, included), in the referring component's
        payable months, keyed by the referring component as `contract`, `component`."""
        pairs = list(references)
        kinds = {p.agreement.component_kind(name) for p, name in pairs}
        assert kinds <= set(self.earlier), "a component that refers to others is priced in a later pass"
        refs = self.table(
            {"contract": pa.string(), "component": pa.string(), "ref": pa.string()},
            ((p.contract, p.id, name) for p, name in pairs),
        )
        # Only the kinds referred to: a query that reads every earlier line would repeat the
        # whole of the passes before within each kind that refers back.
        parts = [self.earlier[kind] for kind in sorted(kinds)]
        lines = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
        joined = lines.join(refs, [lines.contract == refs.contract, lines.origin == refs.ref])
        joined = joined.select(
            "scenario", "payer", "month", "amount", contract=refs.contract, component=refs.component,
        )
        return joined.semi_join(self.months(), ["contract", "component", "month"])

    def fail(self, problems: list[Problem]) -> PricingError:
        return PricingError(problems)


def check_prices(inputs: PricingInputs, placed: Sequence[Placed]) -> None:
    """Raise one PricingError listing, for every component priced from a price list, the
    currencies and months it must price that its list has no price for."""
    gaps = price_gaps(inputs, placed)
    if gaps:
        raise PricingError(list(gaps.values()))


def price_gaps(inputs: PricingInputs, placed: Sequence[Placed]) -> dict[tuple[str, str], Problem]:
    """For every component priced from a price list, by (contract, component), a problem
    naming the currencies and months it must price that its list has no price for."""
    priced = [p for p in placed if getattr(p.component, "prices", None) is not None and p.months]
    if not priced or inputs.tallies is None:
        return {}
    lists = table_of(
        inputs.engine,
        {"contract": pa.string(), "component": pa.string(), "price_list": pa.string()},
        ((p.contract, p.id, p.component.prices) for p in priced),  # type: ignore[union-attr]
    )
    tallies = inputs.tallies.filter(inputs.tallies.month.isin(inputs.year.months))
    needed = tallies.join(lists, ["contract", "component"]).select("contract", "component", "currency", "month", "price_list").distinct()
    prices = inputs.prices
    if prices is None:
        missing = needed
    else:
        missing = needed.anti_join(
            prices,
            [needed.price_list == prices.price_list, needed.currency == prices.currency, prices.valid_from <= needed.month, prices.valid_to >= needed.month],
        )
    rows = inputs.engine.to_arrow(missing.order_by(["contract", "component", "month", "currency"]).limit(500)).to_pylist()
    where = {(p.contract, p.id): p for p in priced}
    problems: dict[tuple[str, str], Problem] = {}
    for (contract, component), group in groupby(rows, key=lambda r: (r["contract"], r["component"])):
        gaps = list(group)
        listed = "; ".join(f"{r['currency']} in {month_label(r['month'])}" for r in gaps[:10])
        price_list = gaps[0]["price_list"]
        problems[(contract, component)] = where[(contract, component)].problem(
            f"price list '{price_list}' has no price for {listed}" + (" and more" if len(gaps) > 10 else ""),
            "prices",
            f"a price for every currency and month priced (prices/{price_list}.csv)",
        )
    return problems


def passes(placed: Sequence[Placed]) -> list[list[Placed]]:
    """Components grouped into pricing passes: a component that reads another's payments
    is priced in a pass after it (contracts are checked for circles when loaded)."""
    depth: dict[tuple[str, str], int] = {}
    by_key = {(p.contract, p.id): p for p in placed}
    waiting = list(placed)
    while waiting:
        still: list[Placed] = []
        for p in waiting:
            needed = [(p.contract, name) for _, name in references(p.component)]
            if all(n in depth or n not in by_key for n in needed):
                depth[(p.contract, p.id)] = 1 + max((depth.get(n, -1) for n in needed), default=-1)
            else:
                still.append(p)
        if len(still) == len(waiting):
            agreement = still[0].agreement
            raise PricingError([Problem(agreement.contract.source, "components refer to each other in a circle", field=format_path(agreement.path + ("components",)))])
        waiting = still
    grouped: dict[int, list[Placed]] = {}
    for p in placed:
        grouped.setdefault(depth[(p.contract, p.id)], []).append(p)
    return [grouped[d] for d in sorted(grouped)]


def price(inputs: PricingInputs, agreements: list[Agreement]) -> ir.Table:
    """Statement lines for every component of every agreement, in every scenario.

    Components whose term has no month in the year have nothing to price (the contracts
    outside the year are noted when loaded). Problems are collected across kinds and
    passes, as `check` collects them, so that every contract's problem is told at once:
    a kind that cannot be priced is left out, with the components that read its lines,
    and the rest are still priced, to find their problems too."""
    placed = [p for p in placed_components(agreements, inputs.year) if p.months]
    if not placed:
        raise PricingError([Problem("contracts", "no components to price")])
    problems: list[Problem] = []
    failed: set[tuple[str, str]] = set()
    if not inputs.repricing.prices_checked:
        gaps = price_gaps(inputs, placed)
        problems += gaps.values()
        failed |= set(gaps)
    earlier: dict[str, ir.Table] = {}
    for group in passes(placed):
        kinds: dict[str, list[Placed]] = {}
        for p in group:
            if (p.contract, p.id) in failed or any((p.contract, name) in failed for _, name in references(p.component)):
                failed.add((p.contract, p.id))
                continue
            kinds.setdefault(p.component.kind, []).append(p)
        priced = {}
        for kind, members in kinds.items():
            try:
                priced[kind] = conform(MECHANISMS[kind].price(KindContext(inputs, kind, tuple(members), dict(earlier))), keep_origin=True)
            except PricingError as error:
                problems += error.problems
                failed |= {(p.contract, p.id) for p in members}
        if inputs.repricing.keep_passes and not problems:
            # Compiling one query per kind costs less than compiling their union, and the
            # kinds that read these lines then read a table rather than recompile them.
            # (Conformed again: a column Spark computed wider than Ibis typed it is cast back.)
            priced = {kind: conform(inputs.engine.cache(lines), keep_origin=True) for kind, lines in priced.items()}
        for kind, lines in priced.items():
            earlier[kind] = ibis.union(earlier[kind], lines, distinct=False) if kind in earlier else lines
    if problems:
        raise PricingError(problems)
    parts = list(earlier.values())
    union = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
    alliances = [a for a in agreements if a.members]
    lines = conform(union)
    if not alliances:
        return lines
    names = [a.id for a in alliances]
    return ibis.union(lines.filter(~lines.contract.isin(names)), split_among_members(inputs.engine, lines.filter(lines.contract.isin(names)), alliances), distinct=False)


def split_among_members(engine: Engine, lines: ir.Table, alliances: Sequence[Agreement]) -> ir.Table:
    """Alliances' lines, each split among its members by agreed share: every member but
    the last gets its share rounded half-up to pence, the last the rest, so each line's
    parts sum exactly to it."""
    members = table_of(
        engine,
        {"contract": pa.string(), "member": pa.string(), "member_share": pa.decimal128(11, 10), "last": pa.bool_(), "words": pa.string()},
        (
            (a.id, m.provider, m.share, position == len(a.members) - 1,
             f"; {m.provider}'s share {m.share.normalize():f}" + (" (the rest)" if position == len(a.members) - 1 else "") + " of the alliance's ")
            for a in alliances
            for position, m in enumerate(a.members)
        ),
    )
    numbered = lines.mutate(line_number=ibis.row_number())
    split = numbered.join(members, "contract")
    rounded = (split.amount.cast(SHARED_TYPE) * split.member_share.cast(SHARE_TYPE)).round(2).cast(AMOUNT_TYPE)
    split = split.mutate(part=ibis.cases((split["last"], ibis.literal(0).cast(AMOUNT_TYPE)), else_=rounded))
    others = split.part.sum().over(ibis.window(group_by=[split.line_number]))
    whole = engine.number(split.amount.abs(), 2)
    whole = ibis.cases((split.amount < 0, "-" + currency_symbol() + whole), else_=currency_symbol() + whole)
    split = split.mutate(
        payee=split.member,
        amount=ibis.cases((split["last"], (split.amount - others).cast(AMOUNT_TYPE)), else_=split.part),
        basis=split.basis + split.words + whole,
    )
    return conform(split)


def fraction(percent: Decimal) -> Decimal:
    """25 → 0.25, exactly."""
    return percent / Decimal(100)
