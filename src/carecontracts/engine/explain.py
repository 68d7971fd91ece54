"""explain: from a statement line to the contract terms (with file:line) and tallies behind it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from carecontracts.engine.agreements import Agreement, agreements_of
from carecontracts.engine.registry import MECHANISMS
from carecontracts.language.model import ComponentTerms, Contract
from carecontracts.problems import Problem, ProblemsError


@dataclass(frozen=True)
class Parameter:
    """One term of a component: its field path, value and where it is written."""

    field: str
    value: Any
    location: str


@dataclass(frozen=True)
class Explanation:
    agreement: Agreement
    component: ComponentTerms
    mechanism_summary: str
    parameters: list[Parameter]
    lines: list[dict[str, Any]]
    tallies: list[dict[str, Any]]
    tally_months: tuple[dt.date, dt.date] | None = None  # the months summed, for a yearly settlement


def _flatten(value: Any, path: tuple) -> list[tuple[tuple, Any]]:
    if isinstance(value, dict):
        return [item for key, inner in value.items() for item in _flatten(inner, path + (key,))]
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [item for index, inner in enumerate(value) for item in _flatten(inner, path + (index,))]
    return [(path, value)]


def parameters_of(agreement: Agreement, index: int) -> list[Parameter]:
    """Every term the component states or defaults, located in its YAML file."""
    component = agreement.components[index]
    base = agreement.component_path(index)
    stated = component.model_dump(by_alias=True, exclude_none=True)
    result = []
    if base not in agreement.contract._lines:
        # Not written in the file: a withholding of contract management, kept in the records.
        return [Parameter(".".join(str(p) for p in path), value, f"notice {component.id} on record (`carecontracts notice show {component.id}`)")
                for path, value in _flatten(stated, ())]
    for path, value in _flatten(stated, ()):
        written = agreement.contract.line_of(base + path)
        explicit = (base + path) in agreement.contract._lines
        where = f"{agreement.contract.source}:{written}" if explicit else f"{agreement.contract.source}:{written} (default)"
        dotted = ".".join(str(p) for p in path)
        result.append(Parameter(dotted, value, where))
    return result


def find_component(contracts: list[Contract], contract_id: str, component_id: str) -> tuple[Agreement, int]:
    """The agreement and index of a component; a clear error if either id is unknown.

    Aligned payment lines are labelled `<id>.fixed` and `<id>.variable`; both find `<id>`."""
    agreements = {a.id: a for a in agreements_of(contracts)}
    if contract_id not in agreements:
        raise ProblemsError([Problem("explain", f"no contract '{contract_id}'", expected=f"one of {', '.join(sorted(agreements))}")])
    agreement = agreements[contract_id]
    base_id = component_id.split(".")[0]
    for index, component in enumerate(agreement.components):
        if component.id in (component_id, base_id):
            return agreement, index
    known = ", ".join(c.id for c in agreement.components)
    raise ProblemsError([Problem("explain", f"contract '{contract_id}' has no component '{component_id}'", expected=f"one of {known}")])


def explain(
    contracts: list[Contract],
    lines: pa.Table,
    tallies: pa.Table | None,
    contract_id: str,
    component_id: str,
    month: dt.date,
    year_start: dt.date | None = None,
) -> Explanation:
    """The lines of one component in one month, with their terms and the tallies they price:
    the month's, or for a settlement on the year (shared savings) the year's to that month,
    from `year_start`, summed."""
    agreement, index = find_component(contracts, contract_id, component_id)
    component = agreement.components[index]
    mechanism = MECHANISMS[component.kind]

    def ours(row: dict[str, Any]) -> bool:
        return row["contract"] == contract_id and str(row["component"]).split(".")[0] == component.id and (
            component_id == component.id or row["component"] == component_id
        )

    chosen = [r for r in lines.to_pylist() if ours(r) and r["month"] == month]
    rows = [r for r in tallies.to_pylist() if ours(r)] if tallies is not None else []
    if mechanism.settles_yearly and year_start is not None:
        in_year = [r for r in rows if year_start <= r["month"] <= month]
        return Explanation(agreement, component, mechanism.summary, parameters_of(agreement, index), chosen, year_totals(in_year), (year_start, month))
    behind = [r for r in rows if r["month"] == month]
    return Explanation(agreement, component, mechanism.summary, parameters_of(agreement, index), chosen, behind)


SUMMED = ("events", "quantity", "readmitted", "chargeable", "cost")


def year_totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tallies summed over their months per payer, service and currency (a cost stays
    unknown only when no month has one)."""
    totals: dict[tuple, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["payer"], r["service"], r["currency"], r["month"])):
        key = (row["payer"], row["service"], row["currency"])
        total = totals.setdefault(key, {**row, **{name: None for name in SUMMED if name in row}})
        for name in SUMMED:
            if name in row and row[name] is not None:
                total[name] = row[name] if total[name] is None else total[name] + row[name]
    return list(totals.values())
