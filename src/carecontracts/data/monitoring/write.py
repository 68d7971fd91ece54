"""Write contract-monitoring files: any file's rows back out, and the commissioner's priced
view (the statement lines of a payment run) as an ACM.

A file is written with every data element of its type, in the specification's order and
spelling, so that reading it again gives the same rows. The priced view has a row per
statement line: the month as FINANCIAL YEAR and MONTH, the payee as provider and the payer as
commissioner (by ODS code), the contract and component in LOCAL CONTRACT CODE and LOCAL
CONTRACT MONITORING CODE, the service in LOCAL POINT OF DELIVERY CODE, the currency in TARIFF
CODE, the basis in CONTRACT MONITORING ADDITIONAL DESCRIPTION, and the amount as CONTRACT
MONITORING ACTUAL PRICE, so its total is the statements' total to the penny. Components that
pay for activity carry their units as actual activity at the point of delivery their service
names; the others carry money only, at a non-activity point of delivery (POD_OF_KIND).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

import pyarrow as pa

from carecontracts.data.monitoring.read import ORGANISATION, Record, financial_period
from carecontracts.data.monitoring.spec import (
    ACTUAL_ACTIVITY,
    ACTUAL_MFF,
    ACTUAL_PRICE,
    ADDITIONAL_DESCRIPTION,
    COMMISSIONER,
    CREATED,
    ELEMENTS,
    FINANCIAL_MONTH,
    FINANCIAL_YEAR,
    LOCAL_CONTRACT,
    LOCAL_CONTRACT_MONITORING,
    LOCAL_POD,
    POD,
    PROVIDER,
    TARIFF_CODE,
    Check,
    Element,
    FileKind,
)
from carecontracts.money import to_pence
from carecontracts.problems import Problem, ProblemsError
from carecontracts.machine import atomic_write

if TYPE_CHECKING:
    from carecontracts.language import Contract

# Payment mechanisms whose lines pay for units of activity, at the activity's point of delivery.
ACTIVITY_KINDS = ("activity", "cost_and_volume", "marginal_rate")
# The national non-activity point of delivery of every other mechanism's lines.
POD_OF_KIND = {
    "block": "BLOCK",
    "low_volume_block": "BLOCK",
    "capitation": "BLOCK",
    "quality_incentive": "CQUIN",
    "outcome_incentive": "CQUIN",
    "best_practice_topup": "ADJUSTMENT",
    "withhold": "ADJUSTMENT",
    "risk_share": "ADJUSTMENT",
    "gain_share": "ADJUSTMENT",
    "shared_savings": "ADJUSTMENT",
}
# Mechanisms paid in parts (`api.fixed`, `api.variable`): the point of delivery of each part.
POD_OF_PART = {("aligned_payment", "fixed"): "BLOCK", ("aligned_payment", "variable"): "ADJUSTMENT"}
# An activity line whose service does not name one point of delivery.
UNPLACED_ACTIVITY_POD = "OTHER"


def format_value(element: Element, value: object) -> str:
    """A value as the file carries it: money to the penny, numbers plainly, dates ISO."""
    if value is None:
        return ""
    if element.check is Check.MONEY and isinstance(value, Decimal):
        return format(to_pence(value), "f")
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def plain(value: Decimal) -> str:
    """A number without trailing zeros or an exponent: 29.00000000 → 29, 0.50 → 0.5."""
    return format(value.normalize(), "f")


def write_monitoring(path: Path, kind: FileKind, records: Iterable[Record]) -> int:
    """Write rows as a file of `kind`, every element in the specification's order; rows written."""
    elements = ELEMENTS[kind]
    count = 0
    with atomic_write(path) as temporary, temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([e.name for e in elements])
        for record in records:
            writer.writerow([format_value(e, record.get(e.name)) for e in elements])
            count += 1
    return count


@dataclass(frozen=True)
class Placement:
    """Where a contract component's lines go in an ACM: its payment mechanism, the point of
    delivery of each of its services that names exactly one, and its market forces factor
    when it has a single one."""

    kind: str
    pods: Mapping[str, str] = field(default_factory=dict)
    mff: Decimal | None = None


def placements(contracts: Iterable["Contract"]) -> dict[tuple[str, str], Placement]:
    """(contract, component) → placement, for every component of the contracts and their
    sub-contracts."""
    found: dict[tuple[str, str], Placement] = {}
    bodies = [body for contract in contracts for body in (contract, *contract.subcontracts)]
    for body in bodies:
        pods = {}
        for service, where in body.services.items():
            listed = where.pod or []
            if len(listed) == 1 and not listed[0].endswith("*"):
                pods[service] = listed[0]
        for component in body.components:
            mff = getattr(component, "mff", None)
            found[(body.id, component.id)] = Placement(component.kind, pods, mff if isinstance(mff, Decimal) else None)
    return found


def _placement(where: Mapping[tuple[str, str], Placement], contract: str, component: str) -> tuple[Placement | None, str | None]:
    """The placement of a line's component and the part (`fixed` of `api.fixed`), if any."""
    if (contract, component) in where:
        return where[(contract, component)], None
    origin, _, part = component.partition(".")
    return where.get((contract, origin)), part or None


def priced_view(
    lines: pa.Table,
    where: Mapping[tuple[str, str], Placement],
    codes: Mapping[str, str] | None = None,
    created: dt.datetime | None = None,
    months: Iterable[dt.date] | None = None,
) -> list[Record]:
    """The statement lines (scenario `actual`, the months asked for) as ACM rows. Parties are
    written by their ODS code from `codes` (or as they are, when that is one already).
    Raises with every party without a code and every component not in the contracts."""
    codes = codes or {}
    chosen = set(months) if months is not None else None
    stamp = created or dt.datetime.now().replace(microsecond=0)
    problems: dict[tuple, Problem] = {}
    records: list[Record] = []
    for line in lines.to_pylist():
        if line.get("scenario", "actual") != "actual" or (chosen is not None and line["month"] not in chosen):
            continue
        placement, part = _placement(where, line["contract"], line["component"])
        if placement is None:
            problems[("component", line["contract"], line["component"])] = Problem(
                "statements", f"component {line['component']} of contract {line['contract']} is not in the contracts",
                field="component", value=line["component"], expected="statements from a payment run of the contracts in contracts/ (run `carecontracts pay` again)")
            continue
        parties = {}
        for column, element in (("payee", PROVIDER), ("payer", COMMISSIONER)):
            party = line[column]
            code = codes.get(party, party)
            if not ORGANISATION.match(code):
                example = "RAL" if column == "payee" else "QMJ"
                problems[("party", party)] = Problem(
                    "statements", f"party {party} has no ODS code", field=column, value=party,
                    expected=f"its ODS code, e.g. --code {party}={example}")
            parties[element] = code
        year, month = financial_period(line["month"])
        # A prior-period adjustment is money for an earlier month, not this month's activity.
        activity_priced = placement.kind in ACTIVITY_KINDS and not line.get("adjusts")
        if line.get("adjusts"):
            pod = "ADJUSTMENT"
        elif activity_priced:
            pod = placement.pods.get(line.get("service") or "", UNPLACED_ACTIVITY_POD)
        else:
            pod = POD_OF_PART.get((placement.kind, part or ""), POD_OF_KIND.get(placement.kind, "ADJUSTMENT"))
        quantity = line.get("quantity")
        values: dict[str, object] = {
            FINANCIAL_MONTH: month,
            FINANCIAL_YEAR: year,
            CREATED: stamp,
            **parties,
            POD: pod,
            LOCAL_POD: line.get("service"),
            LOCAL_CONTRACT: line["contract"],
            LOCAL_CONTRACT_MONITORING: line["component"],
            ADDITIONAL_DESCRIPTION: line.get("basis"),
            TARIFF_CODE: line.get("currency"),
            ACTUAL_ACTIVITY: Decimal(plain(quantity)) if activity_priced and quantity is not None else Decimal(0),
            ACTUAL_PRICE: line["amount"],
            ACTUAL_MFF: placement.mff if activity_priced else None,
        }
        records.append(Record(len(records) + 2, {k: v for k, v in values.items() if v is not None and v != ""}))
    if problems:
        raise ProblemsError(list(problems.values()))
    return records
