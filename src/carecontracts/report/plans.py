"""Plan versus actual payments. A plan row naming a component (data/plans, `component`) is a
payment plan: the payment planned for that component, or a part of it (`api.fixed`), in a
month. Set beside what the statements paid, it gives a variance that means something for
fixed elements too, which an activity plan (planned activity valued at its price) cannot.

Which names a plan may use, and the problems with a plan that names something the
contracts do not have, are here too, so that `check` and plan-versus-actual agree."""

from __future__ import annotations

import datetime as dt
import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement, agreements_of
from carecontracts.engine.backend import Engine
from carecontracts.engine.measure import ACTUAL
from carecontracts.engine.registry import MECHANISMS
from carecontracts.engine.run import RunTables
from carecontracts.language.model import ComponentTerms, Contract
from carecontracts.problems import Problem

ZERO = Decimal(0)
PAYMENT_PLAN_COLUMNS = "contract, component, month, planned_value, and optionally commissioner"


def line_names(component: ComponentTerms) -> list[str]:
    """The component names its statement lines carry: its id, or `id.part` for the parts
    it is paid in (an aligned payment's fixed and variable elements, an outcome incentive's
    metrics, a quality incentive's clawback, a withhold's settlement)."""
    parts: list[str] = []
    if component.kind == "aligned_payment":
        return [f"{component.id}.{part}" for part in MECHANISMS[component.kind].parts or {}]
    if component.kind == "outcome_incentive":
        return [f"{component.id}.{metric.id}" for metric in component.metrics]  # type: ignore[union-attr]
    if component.kind == "quality_incentive":
        parts = ["clawback"]
    elif component.kind == "withhold":
        parts = ["settlement"]
    return [component.id] + [f"{component.id}.{part}" for part in parts]


def plannable(agreement: Agreement) -> list[str]:
    """What a payment plan for this contract may name: each component (all its lines), or
    one of the parts its lines are named by."""
    names: list[str] = []
    for component in agreement.components:
        names += [component.id] + [n for n in line_names(component) if n != component.id]
    return names


def covers(plan: str, component: str) -> bool:
    """Whether a plan for `plan` (a component or a part) plans a line named `component`."""
    return component == plan or component.startswith(plan + ".")


@dataclass(frozen=True)
class PlanKey:
    """The payment plan rows for one contract, component and commissioner, placed at the
    first of them."""

    contract: str
    component: str
    commissioner: str | None
    source: str
    row: int
    rows: int

    def problem(self, message: str, field_name: str, value: object, expected: str) -> Problem:
        """A problem at the first of these rows (a CSV's line counts its header)."""
        csv = not self.source.lower().endswith(".parquet")
        more = f" ({self.rows} rows; the first is here)" if self.rows > 1 else ""
        return Problem(self.source, message + more, line=self.row + 1 if csv else None, row=None if csv else self.row,
                       field=field_name, value=value, expected=expected)


def plan_keys(plans: pa.Table) -> list[PlanKey]:
    """Payment plan rows (with `source_file` and `source_row`, as loaded) grouped by
    contract, component and commissioner."""
    first: dict[tuple[str, str, str | None], tuple[str, int]] = {}
    counts: dict[tuple[str, str, str | None], int] = defaultdict(int)
    names = ["contract", "component", "commissioner", "source_file", "source_row"]
    present = [n for n in names if n in plans.column_names]
    columns = {n: plans.column(n).to_pylist() if n in present else [None] * plans.num_rows for n in names}
    for contract, component, commissioner, source, row in zip(*(columns[n] for n in names)):
        key = (contract, component, commissioner)
        counts[key] += 1
        place = (source or "data/plans", row or 0)
        if key not in first or place < first[key]:
            first[key] = place
    return [PlanKey(c, n, p, *first[(c, n, p)], counts[(c, n, p)]) for c, n, p in sorted(first, key=lambda k: (k[0], k[1], k[2] or ""))]


def _near(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(close)}? " if close else ""


def payment_plan_problems(plans: pa.Table, contracts: list[Contract]) -> list[Problem]:
    """Payment plans that name a contract, component or commissioner the contracts do not
    have, or plan a component and one of its parts both (planning those lines twice): each
    at the first row that does so."""
    agreements = {a.id: a for a in agreements_of(contracts)}
    problems: list[Problem] = []
    planned: dict[str, list[PlanKey]] = defaultdict(list)
    for key in plan_keys(plans):
        agreement = agreements.get(key.contract)
        if agreement is None:
            problems.append(key.problem(f"no contract {key.contract!r} in contracts/", "contract", key.contract,
                                        _near(key.contract, agreements) + "the id of a contract or sub-contract"))
            continue
        names = plannable(agreement)
        if key.component not in names:
            problems.append(key.problem(f"{key.contract} has no component {key.component!r}", "component", key.component,
                                        _near(key.component, names) + "one of " + ", ".join(names)))
            continue
        payers = [p.id for p in agreement.payers]
        if key.commissioner is not None and key.commissioner not in payers:
            problems.append(key.problem(f"{key.commissioner} does not pay {key.contract}", "commissioner", key.commissioner,
                                        "one of its payers, " + ", ".join(payers) + ", or blank for the whole contract"))
            continue
        planned[key.contract].append(key)
    for contract, keys in planned.items():
        for key in keys:
            whole = next((k for k in keys if k.component != key.component and covers(k.component, key.component)), None)
            if whole is not None:
                problems.append(key.problem(f"{contract} plans {whole.component} and its part {key.component}: that part's payments "
                                            "would be planned twice", "component", key.component,
                                            f"a plan for {whole.component} or for its parts, not both"))
    return problems


def _percent(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


FAVOURABLE, ADVERSE, ON_PLAN = "favourable", "adverse", "on plan"
VARIANCE_WORDS = ("Variance = plan − paid (or forecast outturn), from the commissioners' side as finance reports it: positive and favourable "
                  "when less was paid than planned, negative and adverse when more.")


def variance_to_plan(planned: Decimal, paid: Decimal) -> Decimal:
    """Planned − paid: positive (favourable to the commissioners who pay) when less was paid
    than planned, negative (adverse) when more. Every command and page signs a variance so."""
    return planned - paid


def direction(variance: Decimal | None) -> str:
    """`favourable`, `adverse` or `on plan` for a variance to plan (blank without a plan)."""
    if variance is None:
        return ""
    return FAVOURABLE if variance > 0 else ADVERSE if variance < 0 else ON_PLAN


@dataclass(frozen=True)
class PlanLine:
    """One contract's component (or part): the payments planned for the period (None where
    it has no payment plan), those made, and how much of them were prior-period adjustments."""

    contract: str
    component: str
    planned: Decimal | None
    actual: Decimal
    adjustments: Decimal = ZERO

    @property
    def variance(self) -> Decimal | None:
        """Plan − actual (`variance_to_plan`): positive and favourable when less was paid than planned."""
        return None if self.planned is None else variance_to_plan(self.planned, self.actual)

    @property
    def variance_percent(self) -> Decimal | None:
        """The variance as a percent of the plan, to one place (None without a plan, or for
        a plan of nothing)."""
        if self.planned is None or self.planned == 0 or self.variance is None:
            return None
        return _percent(self.variance * 100 / self.planned)


@dataclass
class PlanVersusActual:
    """Plan versus actual payments per contract and component over some months, with what
    contracts without a payment plan were paid."""

    months: list[dt.date]
    lines: list[PlanLine]
    unplanned: dict[str, Decimal] = field(default_factory=dict)  # contract with no payment plan → paid in the months

    @property
    def planned_lines(self) -> list[PlanLine]:
        return [line for line in self.lines if line.planned is not None]

    @property
    def total(self) -> PlanLine:
        """The lines that have a plan, added up."""
        chosen = self.planned_lines
        return PlanLine("total", "", sum((line.planned or ZERO for line in chosen), ZERO), sum((line.actual for line in chosen), ZERO),
                        sum((line.adjustments for line in chosen), ZERO))

    @property
    def adjustments(self) -> Decimal:
        return sum((line.adjustments for line in self.lines), ZERO)


def _paid(statements: pa.Table, months: list[dt.date]) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """(contract, component) → (paid in the months, of which prior-period adjustments).
    An adjustment counts in the month it is paid (its `month`), not the month it adjusts."""
    wanted = set(months)
    names = statements.column_names
    scenario = statements.column("scenario").to_pylist() if "scenario" in names else [ACTUAL] * statements.num_rows
    adjusts = statements.column("adjusts").to_pylist() if "adjusts" in names else [None] * statements.num_rows
    paid: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    columns = (statements.column(n).to_pylist() for n in ("contract", "component", "month", "amount"))
    for kind, adjusted, (contract, component, month, amount) in zip(scenario, adjusts, zip(*columns)):
        if kind != ACTUAL or month not in wanted or amount is None:
            continue
        totals = paid[(contract, component)]
        totals[0] += amount
        if adjusted is not None:
            totals[1] += amount
    return {key: (total, adjusted) for key, (total, adjusted) in paid.items()}


def plan_versus_actual(
    statements: pa.Table,
    plans: pa.Table | None,
    months: list[dt.date],
    chosen: set[str] | None = None,
) -> PlanVersusActual:
    """Each planned contract's payment plans for the months against what its statement lines
    paid in them. A line is counted against the plan naming its component or the component it
    is a part of; a line no plan names is shown with no plan. Contracts without a payment plan
    are shown only when `chosen` names them; the others' payments are in `unplanned`."""
    paid = _paid(statements, months)
    wanted = set(months)
    names: dict[str, set[str]] = defaultdict(set)
    planned: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    if plans is not None:
        for contract, component, month, value in zip(*(plans.column(n).to_pylist() for n in ("contract", "component", "month", "planned_value"))):
            names[contract].add(component)
            when = month if isinstance(month, dt.date) else dt.date.fromisoformat(str(month)[:10])
            if when.replace(day=1) in wanted:
                planned[(contract, component)] += value
    shown = set(names) if chosen is None else set(chosen)
    lines: list[PlanLine] = []
    actual: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    unplanned_lines: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    unplanned: dict[str, Decimal] = defaultdict(Decimal)
    for (contract, component), (amount, adjusted) in paid.items():
        if contract not in shown:
            unplanned[contract] += amount
            continue
        plan = next((n for n in names.get(contract, ()) if covers(n, component)), None)
        if plan is None:
            unplanned_lines[(contract, component)] = (amount, adjusted)
        else:
            actual[(contract, plan)][0] += amount
            actual[(contract, plan)][1] += adjusted
    for contract in shown:
        for component in names.get(contract, ()):
            amount, adjusted = actual.get((contract, component), (ZERO, ZERO))
            lines.append(PlanLine(contract, component, planned.get((contract, component), ZERO), amount, adjusted))
    lines += [PlanLine(contract, component, None, amount, adjusted) for (contract, component), (amount, adjusted) in unplanned_lines.items()]
    lines.sort(key=lambda line: (line.contract, line.component))
    return PlanVersusActual(months, lines, {c: a for c, a in sorted(unplanned.items()) if c not in names})


def _planned_by_month(engine: Engine, plans: ir.Table | None) -> dict[str, dict[dt.date, Decimal]]:
    """Planned value per contract and month of some plan rows (empty without them)."""
    if plans is None:
        return {}
    grouped = plans.group_by(["contract", "month"]).aggregate(value=plans.planned_value.sum())
    found: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    for row in engine.to_arrow(grouped).to_pylist():
        month = row["month"] if isinstance(row["month"], dt.date) else dt.date.fromisoformat(str(row["month"])[:10])
        found[row["contract"]][month.replace(day=1)] = Decimal(row["value"])
    return dict(found)


def commissioners_plan(plans: dict[str, dict[dt.date, Decimal]], paid: Iterable[str]) -> tuple[dict[dt.date, Decimal] | None, list[str]]:
    """The plan for what the commissioners pay, month by month: the sum of the plans of the
    contracts they pay, none when any of them has no plan; and those that have none."""
    missing = sorted(c for c in set(paid) if c not in plans)
    if missing:
        return None, missing
    total: dict[dt.date, Decimal] = defaultdict(Decimal)
    for contract in set(paid):
        for month, amount in plans[contract].items():
            total[month] += amount
    return dict(total), []


def plans_by_contract(engine: Engine, tables: RunTables) -> dict[str, dict[dt.date, Decimal]]:
    """The plan per contract and month: for a contract with payment plans, the payments
    planned (the money planned, fixed elements included); else its activity plans' planned
    value (activity valued at its price)."""
    activity = _planned_by_month(engine, tables.plans)
    payments = _planned_by_month(engine, tables.payment_plans)
    return {**{c: months for c, months in activity.items() if c not in payments}, **payments}
