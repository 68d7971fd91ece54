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
) -> Explanation:
    """The lines of one component in one month, with their terms and tallies."""
    agreement, index = find_component(contracts, contract_id, component_id)
    component = agreement.components[index]

    def matches(row: dict[str, Any]) -> bool:
        return row["contract"] == contract_id and row["month"] == month and str(row["component"]).split(".")[0] == component.id and (
            component_id == component.id or row["component"] == component_id
        )

    chosen = [r for r in lines.to_pylist() if matches(r)]
    behind = [r for r in tallies.to_pylist() if matches(r)] if tallies is not None else []
    return Explanation(agreement, component, MECHANISMS[component.kind].summary, parameters_of(agreement, index), chosen, behind)
