"""Invoices: what each provider invoiced per contract and month, against the statement."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pyarrow as pa
import sqlalchemy as sa

from carecontracts.cycle.contracts import find
from carecontracts.cycle.submissions import open_records
from carecontracts.language import Contract
from carecontracts.periods import month_label
from carecontracts.problems import Problem, ProblemsError
from carecontracts.records import actor, record_event
from carecontracts.records.schema import Invoice
from carecontracts.records.store import now
from carecontracts.workspace import Workspace


def exact_amount(text: str | Decimal, field: str) -> Decimal:
    """An amount in pounds with at most two places (commas allowed), or a located error."""
    try:
        value = Decimal(str(text).replace(",", "").strip().lstrip("£$€").strip())
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ProblemsError([Problem(field, f"{text!r} is not an amount in pounds and pence", value=str(text), expected="an amount like 1234567.89")])
    return value


def record_invoice(workspace: Workspace, contracts: list[Contract], contract: str, month: dt.date, amount: Decimal,
                   reference: str | None = None, who: str | None = None) -> Invoice:
    """Record a provider's invoice for a contract and month (a later one replaces it)."""
    if month not in workspace.year:
        raise ProblemsError([Problem("month", f"{month_label(month)} is outside the financial year {workspace.year.label}", value=month_label(month))])
    provider = find(contracts, contract)[1].provider
    who = who or actor()
    with open_records(workspace).session() as session:
        invoice = Invoice(contract=contract, month=month, provider=provider, amount=amount, reference=reference, recorded_at=now(), recorded_by=who)
        session.add(invoice)
        session.flush()
        record_event(session, "invoice", f"{contract} {month_label(month)}", {
            "invoice": invoice.id, "contract": contract, "month": month_label(month), "provider": provider, "amount": str(amount),
            "reference": reference}, who=who)
    return invoice


@dataclass(frozen=True)
class InvoiceCheck:
    """An invoice beside what the statement pays the provider on that contract in that month."""

    contract: str
    month: dt.date
    provider: str
    reference: str | None
    invoiced: Decimal
    statement: Decimal

    @property
    def difference(self) -> Decimal:
        return self.invoiced - self.statement


def invoice_checks(workspace: Workspace, statements: pa.Table | None, contract: str | None = None, month: dt.date | None = None) -> list[InvoiceCheck]:
    """The latest invoice of each contract and month, with the statement's amount payable
    to the invoicing provider (every payer's lines, adjustments included)."""
    with open_records(workspace).session() as session:
        query = sa.select(Invoice).order_by(Invoice.id)
        if contract:
            query = query.where(Invoice.contract == contract)
        if month:
            query = query.where(Invoice.month == month)
        latest = {(i.contract, i.month): i for i in session.scalars(query)}
    owed: dict[tuple[str, str, dt.date], Decimal] = {}
    if statements is not None:
        summed = statements.group_by(["contract", "payee", "month"]).aggregate([("amount", "sum")])
        owed = {(c, p, m): a for c, p, m, a in zip(*(summed.column(n).to_pylist() for n in ("contract", "payee", "month", "amount_sum")))}
    return [InvoiceCheck(i.contract, i.month, i.provider, i.reference, i.amount, owed.get((i.contract, i.provider, i.month), Decimal(0)))
            for (_, _), i in sorted(latest.items(), key=lambda item: (item[0][1], item[0][0]))]
