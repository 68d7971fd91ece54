"""Load every contract in a workspace, reporting all problems at once with file:line."""

from __future__ import annotations

import datetime as dt
import difflib
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Iterable, Mapping, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from carecontracts.language.model import (
    AlignedPaymentTerms,
    CapitationTerms,
    Contract,
    ContractBody,
    DatedValue,
    OutcomeIncentiveTerms,
    PerHead,
    QualityIncentiveTerms,
    RENAMED_KEYS,
    SpellTerms,
    references,
    scalar_of,
    uncovered,
)
from carecontracts.language.yaml_lines import LocatedDocument, format_path, load_yaml
from carecontracts.periods import FinancialYear, month_label
from carecontracts.problems import Problem, ProblemsError, raise_if_any


def _data_path(data: Any, loc: tuple, key_error: bool) -> tuple:
    """Keep the parts of a pydantic error location that exist in the data.

    Union tags ('block', 'list[DatedValue]') are dropped; for a missing or unknown key
    (`key_error`) the last part is the key itself and is kept.
    """
    path: list[str | int] = []
    node: Any = data
    for index, part in enumerate(loc):
        if part == "from_":
            part = "from"
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif key_error and index == len(loc) - 1:
            path.append(part)
    return tuple(path)


def _expected(error: Mapping[str, Any]) -> str | None:
    kind = error["type"]
    if kind == "extra_forbidden":
        hint = (error.get("ctx") or {}).get("hint")
        return hint or "no such key here; check its spelling"
    if kind == "missing":
        return "this key to be given"
    if kind == "union_tag_invalid":
        return "a known kind"
    context = error.get("ctx") or {}
    bounds = {"greater_than": "above {gt}", "greater_than_equal": "at least {ge}", "less_than": "below {lt}", "less_than_equal": "at most {le}"}
    if kind in bounds:
        return "a number " + bounds[kind].format(**{k: _number_words(v) for k, v in context.items()})
    if kind == "decimal_max_places":
        return f"at most {context['decimal_places']} decimal places"
    if kind.startswith("date_"):
        return "a date that exists, YYYY-MM-DD"
    if kind == "percent_fraction":
        return "a percent from 0 to 100"
    if kind == "number_text":
        return "a number, e.g. 48_000_000"
    return None


@cache
def _known_keys() -> frozenset[str]:
    """Every key the contract language has, by its written name."""
    seen: set[type] = set()
    keys: set[str] = set()

    def visit(model: object) -> None:
        if not isinstance(model, type) or not issubclass(model, BaseModel) or model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            keys.add(field.alias or name)
            for inner in _types_in(field.annotation):
                visit(inner)

    visit(Contract)
    return frozenset(keys)


def _types_in(annotation: object) -> Iterable[object]:
    """The classes named anywhere in a type annotation."""
    yield annotation
    for argument in get_args(annotation):
        yield from _types_in(argument)


def _renamed_or_near(key: str) -> str | None:
    """What to write instead of an unknown key: its new name when renamed, else a known key
    spelled nearly the same."""
    if key in RENAMED_KEYS:
        new, meaning = RENAMED_KEYS[key]
        return f"'{new}', its new name ({meaning})"
    near = difflib.get_close_matches(key, sorted(_known_keys()), n=1, cutoff=0.8)
    return f"a known key; did you mean '{near[0]}'?" if near else None


def _number_words(value: object) -> str:
    """A bound as people write it: 10,000,000,000; 0.5."""
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return f"{Decimal(str(value)).normalize():f}" if isinstance(value, (int, float, Decimal)) else str(value)


def _message(text: str) -> str:
    """pydantic's message in the project's words: `should be ...`, without its prefixes."""
    for prefix, plain in (("Value error, ", ""), ("Input should be", "should be"), ("Decimal input should", "should")):
        text = text.replace(prefix, plain)
    return text


def problems_from_validation(document: LocatedDocument, error: ValidationError) -> list[Problem]:
    """Turn pydantic's errors into located problems, one per distinct field."""
    problems: list[Problem] = []
    kinds: list[tuple[tuple, str]] = []
    seen: set[tuple] = set()
    for item in error.errors(include_url=False):
        path = _data_path(document.data, item["loc"], item["type"] in ("missing", "extra_forbidden"))
        message = _message(item["msg"])
        if item["type"] == "extra_forbidden":
            message = f"unknown key '{path[-1]}'"
            hint = _renamed_or_near(str(path[-1]))
            if hint:
                item = {**item, "ctx": {"hint": hint}}
        elif item["type"] == "missing":
            message = f"'{path[-1]}' is required"
        key = (path, message)
        if key in seen:
            continue
        seen.add(key)
        value = item.get("input") if item["type"] not in ("missing",) else None
        if item["type"] == "union_tag_invalid" and isinstance(value, dict):
            value = value.get("kind")
            path = path + ("kind",)
        if isinstance(value, (dict, list)):
            value = None
        if value is not None and item["type"] != "extra_forbidden":
            message = f"{shown(value)}: {message}"
        problems.append(
            Problem(
                document.source,
                message,
                line=document.line_of(path),
                field=format_path(path) or None,
                value=value,
                expected=_expected(item),
            )
        )
        kinds.append((path, item["type"]))
    # A value that is neither a number nor a list of dated values is reported against both
    # members of `Dated`. When one member's problems go deeper (a typo inside an entry),
    # the other member's "wrong type" at the parent says nothing useful: drop it.
    # A value fitting neither member is said once: "should be a number or a list of dated values".
    # A single value breaking a limit (a negative annual value) is said as that, not also
    # as "should be a valid list" against the dated form.
    deeper = {path[:cut] for path, _ in kinds for cut in range(len(path))}
    limited = {path for path, kind in kinds if not (kind.endswith("_type") or kind.endswith("_parsing"))}
    kept: list[Problem] = []
    mistyped: dict[tuple, Problem] = {}
    for problem, (path, kind) in zip(problems, kinds):
        wrong_type = kind.endswith("_type") or kind.endswith("_parsing")
        if wrong_type and (path in deeper or path in limited):
            continue
        if wrong_type and path in mistyped:
            first = mistyped[path]
            kept[kept.index(first)] = Problem(first.source, f"{shown(first.value)} is neither a number nor a list of dated values",
                                              line=first.line, field=first.field, value=first.value,
                                              expected="a number, or a list of {from:, to:, value:}")
            continue
        if wrong_type:
            mistyped[path] = problem
        kept.append(problem)
    return kept


def dated_terms(component: object, within: tuple = ()) -> Iterable[tuple[tuple, str, list[DatedValue], object]]:
    """(path within the component, name, entries, single-value type) of every term the
    component gives as dated values, in the terms nested in it (`losses`, `pot`) too."""
    for name, field in type(component).model_fields.items():  # type: ignore[attr-defined]
        scalar = scalar_of(field.annotation)
        value = getattr(component, name)
        path = (*within, name)
        if scalar is not None and isinstance(value, list):
            yield path, ".".join(path), value, scalar
        elif isinstance(value, BaseModel):
            yield from dated_terms(value, path)
    if isinstance(component, CapitationTerms):
        for band, value in component.rates.items():
            if isinstance(value, list):
                yield ("rates", band), f"rates.{band}", value, PerHead


def shown(value: object) -> str:
    """A value as the user wrote it: 150.5, 2025-04-01, 'blok'."""
    if isinstance(value, (Decimal, int, float, dt.date)):
        return str(value)
    return repr(value)


def _check_body(
    document: LocatedDocument,
    body: ContractBody,
    prefix: tuple,
    term_start,
    term_end,
    price_lists: set[str] | None,
) -> Iterable[Problem]:
    """Cross-field checks pydantic cannot see: references, coverage of dated values."""

    def problem(path: tuple, message: str, expected: str | None = None, value: object = None) -> Problem:
        full = prefix + path
        return Problem(document.source, message, line=document.line_of(full), field=format_path(full), value=value, expected=expected)

    seen: set[str] = set()
    for index, component in enumerate(body.components):
        if component.id in seen:
            yield problem(("components", index, "id"), f"component id '{component.id}' is used twice in {body.id}", "unique component ids")
        seen.add(component.id)
        for s_index, service in enumerate(component.services or []):
            if service not in body.services:
                yield problem(
                    ("components", index, "services", s_index),
                    f"unknown service '{service}'",
                    f"one of {', '.join(sorted(body.services))}",
                    service,
                )
        for path, name, entries, scalar in dated_terms(component):
            for position, entry in enumerate(entries):
                try:
                    TypeAdapter(scalar).validate_python(entry.value)  # type: ignore[arg-type]
                except ValidationError as error:
                    reason = error.errors()[0]["msg"].replace("Input should be", "should be")
                    yield problem(("components", index, *path, position, "value"), f"{shown(entry.value)}: {reason}", value=entry.value,
                                  expected=f"each dated value of '{name}' as a single value would be")
            for gap_start, gap_end in uncovered(entries, term_start, term_end):
                yield problem(
                    ("components", index, *path),
                    f"no value of '{name}' covers {gap_start} to {gap_end}",
                    "dated values covering the whole term",
                )
            ordered = sorted(entries, key=lambda e: e.from_)
            for before, after in zip(ordered, ordered[1:]):
                if before.to is None or before.to >= after.from_:
                    yield problem(
                        ("components", index, *path),
                        f"dated values of '{name}' overlap from {after.from_}",
                        "each date covered by one value",
                    )
        prices = getattr(component, "prices", None)
        if prices is not None and price_lists is not None and prices not in price_lists:
            yield problem(
                ("components", index, "prices"),
                f"price list '{prices}' not found",
                "a file prices/" + prices + ".csv" + (f"; known: {', '.join(known)}" if (known := sorted(n for n in price_lists if not n.endswith(".xlsx"))) else ""),
                prices,
            )
        if isinstance(component, SpellTerms):
            yield from _check_spell(body, component, ("components", index), (term_start, term_end), price_lists, problem)
        profile = getattr(component, "profile", None)
        if profile is not None and sum(profile) == 0:
            yield problem(("components", index, "profile"), "profile weights are all zero", "weights with a positive sum")
        if isinstance(component, CapitationTerms) and component.population_bands:
            for b_index, band in enumerate(component.population_bands):
                if band not in component.rates:
                    yield problem(("components", index, "population_bands", b_index), f"band '{band}' has no rate", f"one of {', '.join(component.rates)}", band)
        if isinstance(component, CapitationTerms) and component.risk_weights:
            for band in component.risk_weights:
                if band not in component.rates:
                    yield problem(("components", index, "risk_weights", band), f"risk weight for band '{band}' which has no rate", f"one of {', '.join(component.rates)}")
        if isinstance(component, AlignedPaymentTerms) and not component.services:
            yield problem(("components", index), "aligned_payment needs 'services': the services its variable element measures", "a list of service names")
        yield from _check_references(body, index, problem)
        if isinstance(component, OutcomeIncentiveTerms):
            yield from _check_metrics(component, ("components", index), problem)
        if isinstance(component, QualityIncentiveTerms):
            ids = [i.id for i in component.indicators]
            if len(set(ids)) != len(ids):
                yield problem(("components", index, "indicators"), "an indicator id is used twice", "unique indicator ids")
    yield from _check_cycles(body, problem)


def _check_spell(body: ContractBody, component: SpellTerms, path: tuple, term: tuple[dt.date, dt.date], price_lists: set[str] | None,
                 problem) -> Iterable[Problem]:
    """A spell component's workbooks and local price list exist, dated books cover its term
    once, and its top-ups name its services."""
    term_start, term_end = term
    dated = [] if isinstance(component.book, str) else component.book
    for gap_start, gap_end in uncovered(dated, term_start, term_end) if dated else []:  # type: ignore[arg-type]
        yield problem(path + ("book",), f"no book covers {gap_start} to {gap_end}", "dated books covering the whole term")
    ordered = sorted(dated, key=lambda e: e.from_)
    for before, after in zip(ordered, ordered[1:]):
        if before.to is None or before.to >= after.from_:
            yield problem(path + ("book",), f"dated books overlap from {after.from_}", "each date covered by one book")
    if price_lists is not None:
        books = sorted(name[:-5] for name in price_lists if name.endswith(".xlsx"))
        for position, name in enumerate(component.books()):
            where = path + ("book",) + (() if isinstance(component.book, str) else (position, "book"))
            if f"{name}.xlsx" not in price_lists:
                yield problem(where, f"prices workbook '{name}' not found",
                              f"a file prices/{name}.xlsx" + (f"; known: {', '.join(books)}" if books else ""), name)
        lists = sorted(name for name in price_lists if not name.endswith(".xlsx"))
        if component.local_prices is not None and component.local_prices not in price_lists:
            yield problem(path + ("local_prices",), f"price list '{component.local_prices}' not found",
                          f"a file prices/{component.local_prices}.csv" + (f"; known: {', '.join(lists)}" if lists else ""), component.local_prices)
    services = component.services or list(body.services)
    for service in component.topups:
        if service not in services:
            yield problem(path + ("topups", service), f"top-up for service '{service}', which this component does not measure",
                          f"one of {', '.join(services)}", service)


def _check_references(body: ContractBody, index: int, problem) -> Iterable[Problem]:
    """A component may read the payments of another component of the same (sub-)contract."""
    component = body.components[index]
    known = [c.id for c in body.components]
    for path, name in references(component):
        where = ("components", index) + path
        if name == component.id:
            yield problem(where, f"component '{name}' refers to itself", "another component's id", name)
        elif name not in known:
            yield problem(where, f"unknown component '{name}'", f"one of {', '.join(k for k in known if k != component.id)}", name)


def _check_cycles(body: ContractBody, problem) -> Iterable[Problem]:
    """Components that read each other's payments in a circle cannot be priced."""
    import graphlib

    graph = {c.id: [r for _, r in references(c) if r != c.id] for c in body.components}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        circle = " → ".join(error.args[1])
        yield problem(("components",), f"components refer to each other in a circle: {circle}", "references that end at a component reading no other")


def _check_metrics(component: OutcomeIncentiveTerms, path: tuple, problem) -> Iterable[Problem]:
    """Metric ids unique, weights summing to exactly 1, instruments known."""
    from carecontracts.instruments import INSTRUMENTS

    ids = [m.id for m in component.metrics]
    if len(set(ids)) != len(ids):
        yield problem(path + ("metrics",), "a metric id is used twice", "unique metric ids")
    total = sum((m.weight for m in component.metrics), Decimal(0))
    if total != 1:
        yield problem(path + ("metrics",), f"metric weights sum to {total.normalize():f}", "weights summing to exactly 1")
    for m_index, metric in enumerate(component.metrics):
        if metric.measure.instrument is not None and metric.measure.instrument not in INSTRUMENTS:
            yield problem(
                path + ("metrics", m_index, "measure", "instrument"),
                f"unknown instrument '{metric.measure.instrument}'",
                f"one of {', '.join(sorted(INSTRUMENTS))}",
                metric.measure.instrument,
            )


def check_contract(document: LocatedDocument, contract: Contract, price_lists: set[str] | None) -> list[Problem]:
    """All semantic problems of one validated contract."""
    problems: list[Problem] = []
    if contract.commissioners is not None:
        total = sum(c.share for c in contract.commissioners)
        if total != 1:
            problems.append(
                Problem(document.source, f"commissioner shares sum to {total}", line=document.line_of(("commissioners",)), field="commissioners", expected="shares summing to exactly 1")
            )
        ids = [c.id for c in contract.commissioners]
        if len(set(ids)) != len(ids):
            problems.append(Problem(document.source, "a commissioner is listed twice", line=document.line_of(("commissioners",)), field="commissioners", expected="each commissioner once"))
        if sum(c.coordinating for c in contract.commissioners) > 1:
            problems.append(Problem(document.source, "more than one co-ordinating commissioner", line=document.line_of(("commissioners",)), field="commissioners", expected="at most one with coordinating: true"))
    if contract.members is not None:
        total = sum(m.share for m in contract.members)
        if total != 1:
            problems.append(Problem(document.source, f"member shares sum to {total}", line=document.line_of(("members",)), field="members", expected="shares summing to exactly 1"))
        ids = [m.provider for m in contract.members]
        if len(set(ids)) != len(ids) or contract.provider in ids:
            problems.append(Problem(document.source, "a member is listed twice, or is the alliance itself", line=document.line_of(("members",)), field="members", expected="each member once, other than the contract's provider (the alliance)"))
    if not contract.components and not contract.subcontracts:
        problems.append(Problem(document.source, "contract has no components", line=1, field="components", expected="at least one component"))
    problems += _check_body(document, contract, (), contract.term.start, contract.term.end, price_lists)
    for index, sub in enumerate(contract.subcontracts):
        term = sub.term or contract.term
        problems += _check_body(document, sub, ("subcontracts", index), term.start, term.end, price_lists)
        if sub.provider == contract.provider:
            problems.append(Problem(document.source, "a sub-contract's provider is the prime itself", line=document.line_of(("subcontracts", index, "provider")), field=f"subcontracts[{index}].provider", expected="another provider"))
    return problems


def parse_contract(document: LocatedDocument, price_lists: set[str] | None = None) -> tuple[Contract | None, list[Problem]]:
    """Validate one loaded YAML document into a Contract, collecting every problem."""
    if not isinstance(document.data, dict):
        return None, [Problem(document.source, "a contract file must be a mapping of keys to values", line=1, expected="id:, provider:, components: ...")]
    payers = _who_pays(document)
    try:
        contract = Contract.model_validate(document.data)
    except ValidationError as error:
        return None, payers + problems_from_validation(document, error)
    if payers:
        return None, payers
    contract._source = document.source
    contract._lines = dict(document.lines)
    return contract, check_contract(document, contract, price_lists)


def _who_pays(document: LocatedDocument) -> list[Problem]:
    """A contract names its payer once: `commissioner` or `commissioners`, not both or neither."""
    given = [key for key in ("commissioner", "commissioners") if key in document.data]
    if len(given) == 1:
        return []
    if not given:
        return [Problem(document.source, "'commissioner' is required (or 'commissioners' for several)", line=1, field="commissioner", expected="commissioner: ICB-ID")]
    return [
        Problem(document.source, "give 'commissioner' or 'commissioners', not both", line=document.line_of(("commissioners",)),
                field="commissioners", expected="one commissioner, or a list of commissioners with shares")
    ]


def terms_outside_year(contracts: Iterable[Contract], year: FinancialYear) -> list[Problem]:
    """Notes, located at the term, for each contract or sub-contract whose term lies wholly
    outside the financial year: it is on no statement of the year, which an analyst should be
    told rather than find out (a contract for next year written early is no error)."""
    notes: list[Problem] = []
    span = f"{month_label(year.months[0])} to {month_label(year.months[-1])}"
    for contract in contracts:
        bodies: list[tuple[ContractBody, tuple]] = [(contract, ())]
        bodies += [(sub, ("subcontracts", index)) for index, sub in enumerate(contract.subcontracts) if sub.term is not None]
        for body, prefix in bodies:
            term = body.term
            assert term is not None
            if not any(term.covers_month(month) for month in year.months):
                path = prefix + ("term",)
                notes.append(Problem(contract.source, f"{body.id}'s term, {term.start} to {term.end}, lies wholly outside the financial year "
                                     f"{year.label} ({span}): it is on no statement of the year", line=contract.line_of(path), field=format_path(path),
                                     expected=f"a term covering part of {year.label}, or financial_year set to the year it covers"))
    return notes


CONTRACT_SUFFIXES = (".yaml", ".yml")


def contract_files(folder: Path) -> list[Path]:
    """The contract files in `folder`: names ending .yaml or .yml in any case, sorted."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in CONTRACT_SUFFIXES)


def load_contracts(folder: Path, price_lists: set[str] | None = None, root: Path | None = None) -> list[Contract]:
    """Load every contract in `folder` (`*.yaml` or `*.yml`, in any case: `.YAML` too);
    raise with all problems if any are found."""
    problems: list[Problem] = []
    contracts: list[Contract] = []
    files = contract_files(folder)
    if not files:
        raise ProblemsError([Problem(str(folder), "no contracts found", expected="one or more *.yaml files")])
    owners: dict[str, str] = {}
    for path in files:
        name = str(path.relative_to(root)) if root else str(path)
        if not path.is_file():
            problems.append(Problem(name, "is not a file", expected="a contract file (a folder or other entry named *.yaml is not read)"))
            continue
        try:
            document = load_yaml(path, name)
        except ProblemsError as error:
            problems += error.problems
            continue
        contract, found = parse_contract(document, price_lists)
        problems += found
        if contract is None:
            continue
        ids: list[tuple[str, tuple[str | int, ...]]] = [(contract.id, ("id",))]
        ids += [(s.id, ("subcontracts", i, "id")) for i, s in enumerate(contract.subcontracts)]
        for contract_id, id_path in ids:
            if contract_id in owners:
                problems.append(
                    Problem(name, f"contract id '{contract_id}' is also used in {owners[contract_id]}", line=document.line_of(id_path),
                            field=format_path(id_path), value=contract_id, expected="unique contract ids")
                )
            owners[contract_id] = name
        contracts.append(contract)
    raise_if_any(problems)
    return contracts


__all__ = ["DatedValue", "load_contracts", "parse_contract", "problems_from_validation", "terms_outside_year"]
