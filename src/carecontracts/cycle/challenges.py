"""Challenges: a commissioner disputes activity rows or a statement line, the provider
answers, and the commissioner upholds or rejects it. Upheld activity is not paid; an upheld
line is reversed by the amount agreed. Either reaches a closed month as an adjustment in the
first open month, with the challenge's reference in its basis."""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
import json
from decimal import Decimal

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from carecontracts.cycle.close import current_closes, first_open
from carecontracts.money import format_money
from carecontracts.cycle.contracts import find
from carecontracts.cycle.invoices import exact_amount
from carecontracts.cycle.submissions import open_records
from carecontracts.language import Contract
from carecontracts.periods import month_label
from carecontracts.problems import Problem, ProblemsError
from carecontracts.records import actor, record_event
from carecontracts.records.schema import Challenge
from carecontracts.records.store import now
from carecontracts.workspace import Workspace


class Reason(str, enum.Enum):
    """Why activity or a line is disputed (the usual contract-challenge codes)."""

    DUPLICATE = "duplicate"
    NOT_CONTRACTED = "not-contracted"
    OUT_OF_AREA = "out-of-area"
    CODING = "coding"
    NOT_COMMISSIONED = "not-commissioned"
    OTHER = "other"


class State(str, enum.Enum):
    RAISED = "raised"
    ANSWERED = "answered"
    UPHELD = "upheld"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


OPEN_STATES = (State.RAISED.value, State.ANSWERED.value)


def raise_challenge(workspace: Workspace, contracts: list[Contract], contract_id: str, month: dt.date, reason: str,
                    activity_ids: list[str] | None = None, component: str | None = None, payer: str | None = None,
                    note: str | None = None, who: str | None = None) -> Challenge:
    """Record a challenge to activity rows (checked against the loaded activity of the
    contract's providers in that month) or to a component's line."""
    try:
        why = Reason(reason)
    except ValueError:
        raise ProblemsError([Problem("--reason", f"{reason!r} is not a challenge reason", value=reason,
                                     expected="one of " + ", ".join(r.value for r in Reason))]) from None
    if bool(activity_ids) == bool(component):
        raise ProblemsError([Problem("challenge", "name either activity rows (--activity) or a statement line (--component), not both or neither",
                                     expected="--activity ID ... or --component ID")])
    contract, body = find(contracts, contract_id)
    providers = {body.provider, *(m.provider for m in contract.members or [])}
    payee = None
    if activity_ids:
        payers = _check_activity(workspace, activity_ids, providers, month)
        payer = payers[0] if len(payers) == 1 else None
    else:
        lines = _lines(workspace, contract_id, component or "", month, payer)
        if not lines:
            raise ProblemsError([Problem("--component", f"{contract_id} has no statement line for {component} in {month_label(month)}"
                                         + (f" paid by {payer}" if payer else ""), value=component,
                                         expected="a component on the month's statement (see `carecontracts export --period`)")])
        payers = sorted({line["payer"] for line in lines})
        if len(payers) > 1:
            raise ProblemsError([Problem("--payer", f"{component} in {month_label(month)} is paid by {', '.join(payers)}",
                                         expected="--payer naming the commissioner whose line is challenged")])
        payer, payee = payers[0], lines[0]["payee"]
    who = who or actor()
    with open_records(workspace).session() as session:
        count = session.scalar(sa.select(sa.func.count(Challenge.id))) or 0
        challenge = Challenge(reference=f"CH-{count + 1:04d}", contract=contract_id, month=month, component=component, payer=payer, payee=payee,
                              activity_ids=json.dumps(sorted(activity_ids or [])), reason=why.value, note=note, state=State.RAISED.value,
                              raised_at=now(), raised_by=who)
        session.add(challenge)
        session.flush()
        record_event(session, "challenge.raised", challenge.reference, _details(challenge), who=who)
    return challenge


def _details(challenge: Challenge) -> dict:
    return {"reference": challenge.reference, "contract": challenge.contract, "month": month_label(challenge.month), "reason": challenge.reason,
            "state": challenge.state, "activity_ids": json.loads(challenge.activity_ids), "component": challenge.component,
            "payer": challenge.payer, "amount": None if challenge.amount is None else str(challenge.amount), "note": challenge.note,
            "answer": challenge.answer, "settled_month": month_label(challenge.settled_month) if challenge.settled_month else None}


def _check_activity(workspace: Workspace, ids: list[str], providers: set[str], month: dt.date) -> list[str]:
    """Each id must be loaded activity of the contract's providers ending in the month; the
    commissioners whose activity it is."""
    doubled = sorted(i for i, n in Counter(ids).items() if n > 1)
    if doubled:
        raise ProblemsError([Problem("--activity", f"{i} is named twice", value=i, expected="each activity_id once") for i in doubled])
    if not workspace.warehouse_path.exists():
        raise ProblemsError([Problem("--activity", "no activity is loaded", expected="run `carecontracts load` first")])
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        con.register("wanted", pa.table({"activity_id": ids}))
        found = {r[0]: r[1:] for r in con.execute(
            "SELECT activity_id, provider, date_trunc('month', end_date)::DATE, commissioner FROM activity JOIN wanted USING (activity_id)").fetchall()}
    problems = []
    for i in ids:
        if i not in found:
            problems.append(Problem("--activity", f"activity_id {i} is not loaded", value=i, expected="an activity_id of the loaded activity"))
        elif found[i][0] not in providers or found[i][1] != month:
            problems.append(Problem("--activity", f"activity_id {i} is {found[i][0]}'s activity of {month_label(found[i][1])}", value=i,
                                    expected=f"activity of {', '.join(sorted(providers))} in {month_label(month)}"))
    if problems:
        raise ProblemsError(problems)
    return sorted({found[i][2] for i in ids})


def _lines(workspace: Workspace, contract: str, component: str, month: dt.date, payer: str | None) -> list[dict]:
    """The stored statement lines of a component (or its parts) in a month, as issued or re-priced."""
    if not workspace.warehouse_path.exists():
        return []
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        if not (con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'statements'").fetchone() or (0,))[0]:
            return []
        table = con.execute(
            "SELECT payer, payee, amount FROM statements WHERE contract = ? AND month = ? AND (component = ? OR starts_with(component, ? || '.')) "
            "AND adjusts IS NULL AND (? IS NULL OR payer = ?)", [contract, month, component, component, payer, payer]).to_arrow_table()
    return table.to_pylist()


def _find(session: Session, reference: str, states: tuple[str, ...], doing: str) -> Challenge:
    challenge = session.scalar(sa.select(Challenge).where(Challenge.reference == reference))
    if challenge is None:
        raise ProblemsError([Problem("challenge", f"no challenge {reference}", value=reference, expected="a reference from `carecontracts challenge list`")])
    if challenge.state not in states:
        raise ProblemsError([Problem("challenge", f"{reference} is {challenge.state}: it cannot be {doing}", value=reference,
                                     expected="a challenge that is " + " or ".join(states))])
    return challenge


def answer(workspace: Workspace, reference: str, response: str, who: str | None = None) -> Challenge:
    """The provider's answer to a raised challenge."""
    who = who or actor()
    with open_records(workspace).session() as session:
        challenge = _find(session, reference, (State.RAISED.value,), "answered")
        challenge.state, challenge.answer, challenge.answered_at, challenge.answered_by = State.ANSWERED.value, response, now(), who
        record_event(session, "challenge.answered", reference, _details(challenge), who=who)
    return challenge


def decide(workspace: Workspace, reference: str, uphold: bool, amount: Decimal | None = None, who: str | None = None) -> Challenge:
    """Uphold or reject a challenge. Upholding settles it in the first open month; a line
    challenge reverses `amount` (by default the whole of the line as stored now)."""
    who = who or actor()
    with open_records(workspace).session() as session:
        challenge = _find(session, reference, OPEN_STATES, "decided")
        if amount is not None and not challenge.component:
            raise ProblemsError([Problem("--amount", "an activity challenge removes its rows: it takes no amount", value=str(amount),
                                         expected="--amount only for a challenge to a statement line")])
        if uphold:
            if amount is not None:
                amount = exact_amount(amount, "--amount")
            if challenge.component and amount is None:
                amount = sum((Decimal(line["amount"]) for line in _lines(workspace, challenge.contract, challenge.component, challenge.month,
                                                                          challenge.payer)), Decimal(0))
            challenge.amount = amount
            challenge.settled_month = first_open(workspace.year.months, current_closes(session))
        challenge.state = State.UPHELD.value if uphold else State.REJECTED.value
        challenge.decided_at, challenge.decided_by = now(), who
        record_event(session, f"challenge.{challenge.state}", reference, _details(challenge), who=who)
    return challenge


def withdraw(workspace: Workspace, reference: str, who: str | None = None) -> Challenge:
    """The commissioner withdraws a challenge not yet decided."""
    who = who or actor()
    with open_records(workspace).session() as session:
        challenge = _find(session, reference, OPEN_STATES, "withdrawn")
        challenge.state, challenge.decided_at, challenge.decided_by = State.WITHDRAWN.value, now(), who
        record_event(session, "challenge.withdrawn", reference, _details(challenge), who=who)
    return challenge


def challenges(workspace: Workspace, contract: str | None = None) -> list[Challenge]:
    """Every challenge, oldest first, optionally of one contract."""
    query = sa.select(Challenge).order_by(Challenge.id)
    if contract:
        query = query.where(Challenge.contract == contract)
    with open_records(workspace).session() as session:
        return list(session.scalars(query))


def excluded_activity(session: Session) -> set[str]:
    """Activity ids that upheld challenges remove from payment."""
    upheld = session.scalars(sa.select(Challenge.activity_ids).where(Challenge.state == State.UPHELD.value))
    return {i for ids in upheld for i in json.loads(ids)}


def challenged_lines(session: Session, schema: pa.Schema) -> pa.Table:
    """For each upheld line challenge, a line reversing the amount agreed in the month challenged."""
    upheld = list(session.scalars(sa.select(Challenge).where(Challenge.state == State.UPHELD.value, Challenge.component.is_not(None),
                                                             Challenge.amount.is_not(None)).order_by(Challenge.id)))
    rows = [{"scenario": "actual", "contract": c.contract, "component": c.component, "payer": c.payer, "payee": c.payee, "month": c.month,
             "amount": -(c.amount or Decimal(0)), "basis": f"Challenge {c.reference} upheld ({c.reason}): {c.component} reduced by {format_money(c.amount or Decimal(0))}"}
            for c in upheld]
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema)
