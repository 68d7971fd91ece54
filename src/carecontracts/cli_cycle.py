"""Commands of the monthly cycle: close and reopen months, submissions, invoices, challenges
and the event log. Thin: each parses, calls carecontracts.cycle and prints."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from carecontracts.cli import PROBLEM_EXIT, WorkspaceOption, app, check_contracts, err, fail, money, open_workspace, out
from carecontracts.problems import Problem, ProblemsError

invoice_app = typer.Typer(help="Record providers' invoices and see each beside the statement.", no_args_is_help=True)
challenge_app = typer.Typer(help="Challenge activity rows or statement lines, answer, uphold or reject.", no_args_is_help=True)
app.add_typer(invoice_app, name="invoice")
app.add_typer(challenge_app, name="challenge")


def _month(text: str, option: str = "month") -> dt.date:
    from carecontracts.periods import parse_month

    try:
        return parse_month(text)
    except ValueError as error:
        raise fail(ProblemsError([Problem(option, str(error), value=text, expected="a month, e.g. 2025-10")])) from None


@app.command()
def close(
    month: Annotated[str, typer.Argument(help="The month to close, e.g. 2025-10; every open month before it closes too.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Close a month: its statement lines are kept exactly as issued (version, time, hash).

    A closed month is never re-priced in place. When a resubmission, a contract variation,
    re-issued prices or an upheld challenge would change it, `pay` pays the difference as
    prior-period adjustment lines in the first open month, each naming the month adjusted,
    the component and why. The statements must be priced from the current contracts and data
    (run `carecontracts pay` first).
    """
    from carecontracts.cycle.close import close_through

    space = open_workspace(workspace)
    when = _month(month)
    try:
        closes = close_through(space, when)
    except ProblemsError as error:
        raise fail(error) from None
    table = Table(title="Closed", title_justify="left")
    for name in ("month", "version", "lines", "total", "hash"):
        table.add_column(name, justify="right" if name in ("version", "lines", "total") else "left")
    for c in closes:
        table.add_row(f"{c.month:%Y-%m}", str(c.version), f"{c.lines:,}", money(c.total), c.content_hash[:16])
    out.print(table)


@app.command()
def reopen(
    month: Annotated[str, typer.Argument(help="The closed month to reopen; every closed month after it reopens too.")],
    reason: Annotated[str, typer.Option(help="Why: recorded in the event log with who and when.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Reopen a closed month, with a reason that is recorded. The next `pay` re-prices it in place."""
    from carecontracts.cycle.close import reopen as reopen_months

    space = open_workspace(workspace)
    try:
        opened = reopen_months(space, _month(month), reason)
    except ProblemsError as error:
        raise fail(error) from None
    out.print(f"Reopened {', '.join(f'{c.month:%Y-%m}' for c in opened)}: run `carecontracts pay` to price them again.")


@app.command()
def submissions(
    workspace: WorkspaceOption = Path("."),
    month: Annotated[Optional[str], typer.Option(help="Only this month, e.g. 2025-10.")] = None,
    provider: Annotated[Optional[str], typer.Option(help="Only this provider.")] = None,
) -> None:
    """Every submission on record: provider, month, version, files, rows, totals, who and when."""
    from carecontracts.cycle.submissions import submissions as listed

    space = open_workspace(workspace)
    rows = listed(space, _month(month, "--month") if month else None, provider)
    table = Table(title=f"Submissions ({len(rows):,})", title_justify="left")
    for name in ("provider", "month", "version", "rows", "quantity", "files", "submitted", "by", "hash"):
        table.add_column(name, justify="right" if name in ("version", "rows", "quantity") else "left")
    for s in rows:
        table.add_row(s.provider, f"{s.month:%Y-%m}", str(s.version), "nil return" if s.nil_return else f"{s.rows:,}", f"{s.quantity:,}",
                      s.files, f"{s.submitted_at:%Y-%m-%d %H:%M}", s.submitted_by, s.content_hash[:12])
    out.print(table)


@app.command()
def history(
    workspace: WorkspaceOption = Path("."),
    kind: Annotated[Optional[str], typer.Option(help="Only events of this kind: submission, close, reopen, variation, invoice, challenge (any state).")] = None,
    last: Annotated[int, typer.Option(help="Show the latest N events (0 for all).")] = 50,
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain: exit 2 if any event was changed or removed.")] = False,
) -> None:
    """The event log: every submission, close, reopening, variation, invoice and challenge, with who,
    when and a hash of the content, each chained to the one before."""
    import sqlalchemy as sa

    from carecontracts.cycle.submissions import open_records
    from carecontracts.records import broken_links
    from carecontracts.records.schema import Event

    space = open_workspace(workspace)
    with open_records(space).session() as session:
        if verify:
            broken = broken_links(session)
            if broken:
                for sequence, what in broken:
                    err.print(f"[red]event {sequence} {what}[/red]")
                raise typer.Exit(PROBLEM_EXIT)
            total = session.scalar(sa.select(sa.func.count(Event.sequence)))
            out.print(f"[green]OK[/green]: the chain of {total:,} events holds.")
            return
        query = sa.select(Event).order_by(Event.sequence.desc())
        if kind:
            query = query.where(Event.kind.startswith(kind))
        if last:
            query = query.limit(last)
        events = list(reversed(list(session.scalars(query))))
    table = Table(title="History", title_justify="left")
    for name in ("#", "when (UTC)", "who", "what", "subject", "details", "hash"):
        table.add_column(name, justify="right" if name == "#" else "left")
    for e in events:
        details = json.loads(e.details)
        shown = ", ".join(f"{k}={v}" for k, v in details.items() if v not in (None, [], "") and k not in ("files",))
        table.add_row(str(e.sequence), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.kind, e.subject, shown[:120], e.hash[:12])
    out.print(table)


@invoice_app.command("record")
def invoice_record(
    contract: Annotated[str, typer.Argument(help="Contract id, e.g. ACUTE-2025.")],
    month: Annotated[str, typer.Argument(help="Month invoiced, e.g. 2025-10.")],
    amount: Annotated[str, typer.Argument(help="Amount invoiced in pounds, e.g. 27083333.33.")],
    reference: Annotated[Optional[str], typer.Option(help="The provider's invoice number.")] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Record a provider's invoice for a contract and month; a later one replaces it."""
    from carecontracts.cycle.invoices import exact_amount, record_invoice
    from carecontracts.payments import workspace_contracts

    space = open_workspace(workspace)
    try:
        invoice = record_invoice(space, workspace_contracts(space), contract, _month(month), exact_amount(amount, "amount"), reference)
    except ProblemsError as error:
        raise fail(error) from None
    out.print(f"Recorded {invoice.provider}'s invoice for {contract} {month}: {money(invoice.amount)}.")
    _print_checks(space, contract, invoice.month)


@invoice_app.command("list")
def invoice_list(
    workspace: WorkspaceOption = Path("."),
    contract: Annotated[Optional[str], typer.Option(help="Only this contract.")] = None,
    month: Annotated[Optional[str], typer.Option(help="Only this month.")] = None,
) -> None:
    """Each invoice beside what the statement pays that provider; exit 1 if any differs."""
    space = open_workspace(workspace)
    check_contracts(space, [contract] if contract else None)
    if _print_checks(space, contract, _month(month, "--month") if month else None):
        raise typer.Exit(1)


def _print_checks(space, contract: str | None, month: dt.date | None) -> bool:
    """Print invoices against the statement; True if any differs."""
    from carecontracts.cycle.invoices import invoice_checks
    from carecontracts.payments import stored

    checks = invoice_checks(space, stored(space, "statements"), contract, month)
    table = Table(title="Invoices against the statement", title_justify="left")
    for name in ("contract", "month", "provider", "reference", "invoiced", "statement", "difference"):
        table.add_column(name, justify="right" if name in ("invoiced", "statement", "difference") else "left")
    for c in checks:
        style = "red" if c.difference else None
        table.add_row(c.contract, f"{c.month:%Y-%m}", c.provider, c.reference or "", money(c.invoiced), money(c.statement), money(c.difference), style=style)
    out.print(table)
    differing = [c for c in checks if c.difference]
    if differing:
        out.print(f"{len(differing)} of {len(checks)} invoices differ from the statement.")
    return bool(differing)


@challenge_app.command("raise")
def challenge_raise(
    contract: Annotated[str, typer.Argument(help="Contract id.")],
    month: Annotated[str, typer.Argument(help="Month of the activity or line, e.g. 2025-10.")],
    reason: Annotated[str, typer.Option(help="duplicate, not-contracted, out-of-area, coding, not-commissioned or other.")],
    activity: Annotated[Optional[list[str]], typer.Option("--activity", metavar="ID", help="An activity_id challenged (repeat for more).")] = None,
    activity_file: Annotated[Optional[Path], typer.Option(help="A file of activity_ids challenged, one a line (a header `activity_id` is allowed).")] = None,
    component: Annotated[Optional[str], typer.Option(help="Instead of activity: the component whose line is challenged.")] = None,
    payer: Annotated[Optional[str], typer.Option(help="With --component: the commissioner whose line it is, when several pay.")] = None,
    note: Annotated[Optional[str], typer.Option(help="What the commissioner says.")] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Raise a challenge against activity rows or a statement line."""
    from carecontracts.cycle.challenges import raise_challenge
    from carecontracts.payments import workspace_contracts

    space = open_workspace(workspace)
    ids = list(activity or [])
    if activity_file is not None:
        if not activity_file.is_file():
            raise fail(ProblemsError([Problem(str(activity_file), "no such file", expected="a file of activity_ids, one a line")]))
        ids += [t.strip() for t in activity_file.read_text(encoding="utf-8").splitlines() if t.strip() and t.strip() != "activity_id"]
    try:
        challenge = raise_challenge(space, workspace_contracts(space), contract, _month(month), reason, ids or None, component, payer, note)
    except ProblemsError as error:
        raise fail(error) from None
    what = f"{len(ids):,} activity rows" if ids else f"the {component} line"
    out.print(f"Raised {challenge.reference} against {what} of {contract} {month} ({challenge.reason}).")


@challenge_app.command("answer")
def challenge_answer(
    reference: Annotated[str, typer.Argument(help="The challenge, e.g. CH-0001.")],
    response: Annotated[str, typer.Option(help="The provider's answer.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """The provider answers a challenge."""
    from carecontracts.cycle.challenges import answer

    try:
        challenge = answer(open_workspace(workspace), reference, response)
    except ProblemsError as error:
        raise fail(error) from None
    out.print(f"{challenge.reference} answered.")


@challenge_app.command("uphold")
def challenge_uphold(
    reference: Annotated[str, typer.Argument(help="The challenge, e.g. CH-0001.")],
    amount: Annotated[Optional[str], typer.Option(help="For a line challenge: the amount agreed to take off (default: the whole line).")] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Uphold a challenge: its activity is not paid (or its line is reduced), from the next `pay`.
    Where the month is closed, the change is an adjustment in the first open month."""
    from carecontracts.cycle.challenges import decide
    from carecontracts.cycle.invoices import exact_amount

    try:
        challenge = decide(open_workspace(workspace), reference, True, exact_amount(amount, "--amount") if amount is not None else None)
    except ProblemsError as error:
        raise fail(error) from None
    settled = f"{challenge.settled_month:%Y-%m}" if challenge.settled_month else "no open month"
    out.print(f"{challenge.reference} upheld; settled in {settled}. Run `carecontracts pay` to price it.")


@challenge_app.command("reject")
def challenge_reject(
    reference: Annotated[str, typer.Argument(help="The challenge, e.g. CH-0001.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Reject a challenge: the activity or line stands."""
    from carecontracts.cycle.challenges import decide

    try:
        challenge = decide(open_workspace(workspace), reference, False)
    except ProblemsError as error:
        raise fail(error) from None
    out.print(f"{challenge.reference} rejected.")


@challenge_app.command("withdraw")
def challenge_withdraw(
    reference: Annotated[str, typer.Argument(help="The challenge, e.g. CH-0001.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Withdraw a challenge not yet decided."""
    from carecontracts.cycle.challenges import withdraw

    try:
        challenge = withdraw(open_workspace(workspace), reference)
    except ProblemsError as error:
        raise fail(error) from None
    out.print(f"{challenge.reference} withdrawn.")


@challenge_app.command("list")
def challenge_list(
    workspace: WorkspaceOption = Path("."),
    contract: Annotated[Optional[str], typer.Option(help="Only this contract.")] = None,
) -> None:
    """Challenges with their states and dates, per contract."""
    from carecontracts.cycle.challenges import challenges

    space = open_workspace(workspace)
    check_contracts(space, [contract] if contract else None)
    rows = challenges(space, contract)
    table = Table(title=f"Challenges ({len(rows)})", title_justify="left")
    for name in ("reference", "contract", "month", "what", "reason", "state", "raised", "answered", "decided", "settled in", "amount"):
        table.add_column(name, justify="right" if name == "amount" else "left")
    for c in rows:
        ids = json.loads(c.activity_ids)
        what = f"{len(ids)} activity rows" if ids else f"line {c.component}" + (f" ({c.payer})" if c.payer else "")
        table.add_row(c.reference, c.contract, f"{c.month:%Y-%m}", what, c.reason, c.state, f"{c.raised_at:%Y-%m-%d}",
                      f"{c.answered_at:%Y-%m-%d}" if c.answered_at else "", f"{c.decided_at:%Y-%m-%d}" if c.decided_at else "",
                      f"{c.settled_month:%Y-%m}" if c.settled_month else "", money(c.amount) if c.amount is not None else "")
    out.print(table)


__all__ = ["challenge_app", "invoice_app"]
