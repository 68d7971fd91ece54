"""Contract management commands: open a notice (GC9, SC29), take its steps, list notices and
what is due. Thin: each parses, calls carecontracts.cycle.notices and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from carecontracts.cli import WorkspaceOption, app, check_contracts, month_option, open_workspace, out

notice_app = typer.Typer(
    help="Contract management: contract performance notices (GC9), activity query notices, indicative activity plans and "
         "early warnings (SC29), each step dated and logged; a withholding is priced into the statements.",
    no_args_is_help=True)
app.add_typer(notice_app, name="notice")

OnOption = Annotated[Optional[str], typer.Option("--on", help="The day the step happened, YYYY-MM-DD (default: today).")]
NoteOption = Annotated[Optional[str], typer.Option(help="What was said or agreed.")]


@notice_app.command("open")
def notice_open(
    kind: Annotated[str, typer.Argument(help="cpn (GC9 contract performance notice), aqn (SC29 activity query notice), iap-agreed, "
                                             "iap-set (the indicative activity plan, agreed or set by the commissioner) or early-warning.")],
    contract: Annotated[str, typer.Argument(help="Contract id.")],
    about: Annotated[str, typer.Option(help="What is failing, what the query is about, or the plan.")],
    on: OnOption = None,
    note: NoteOption = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Open a notice on a contract; `notice due` then shows what is due, by whom, when."""
    from carecontracts.cycle.notices import Doing, day_of, open_notice
    from carecontracts.payments import workspace_contracts

    space = open_workspace(workspace)
    notice = open_notice(space, workspace_contracts(space), kind, contract, about, Doing(on=day_of(on, "--on"), note=note))
    out.print(f"Opened {notice.reference} on {contract} ({notice.state} {notice.opened_on}).")


@notice_app.command("step")
def notice_step(
    reference: Annotated[str, typer.Argument(help="The notice, e.g. CPN-0001.")],
    step: Annotated[str, typer.Argument(help="The step: `notice show REFERENCE` lists those that may follow now.")],
    on: OnOption = None,
    note: NoteOption = None,
    milestone: Annotated[Optional[str], typer.Option(help="agree-plan, milestone-met: the plan's next milestone.")] = None,
    due: Annotated[Optional[str], typer.Option(help="With --milestone: the day it is due, YYYY-MM-DD.")] = None,
    percent: Annotated[Optional[str], typer.Option(help="withhold: the percent of the actual monthly value withheld (at most 2 by default).")] = None,
    month: Annotated[Optional[str], typer.Option(help="withhold: the first month withheld; remedy: the month repaid (default: the first open month).")] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Take the next step of a notice. A withholding (and its remedy) is priced by the next `pay`."""
    from carecontracts.cycle.notices import Doing, day_of, next_steps, take_step

    doing = Doing(on=day_of(on, "--on"), note=note, milestone=milestone, due=day_of(due, "--due"), percent=percent, month=month_option(month, "--month"))
    notice, taken = take_step(open_workspace(workspace), reference, step, doing)
    following = ", ".join(s.name for s in next_steps(notice)) or "nothing: it has ended"
    out.print(f"{notice.reference}: {taken.title.lower()} on {notice.last_on}. Next: {following}.")
    if step in ("withhold", "remedy"):
        out.print("Run `carecontracts pay` to price it into the statements.")


@notice_app.command("list")
def notice_list(
    workspace: WorkspaceOption = Path("."),
    contract: Annotated[Optional[str], typer.Option(help="Only this contract.")] = None,
) -> None:
    """Notices with their states, milestones and withholdings."""
    from carecontracts.cycle.notices import LEVERS, notices

    space = open_workspace(workspace)
    check_contracts(space, [contract] if contract else None)
    rows = notices(space, contract)
    table = Table(title=f"Notices ({len(rows)})", title_justify="left")
    for name in ("reference", "clause", "contract", "about", "state", "opened", "last step", "milestone", "withheld"):
        table.add_column(name)
    for n in rows:
        held = f"{n.percent}% from {n.withheld_from:%Y-%m}" + (f", remedied {n.remedied_in:%Y-%m}" if n.remedied_in else "") if n.withheld_from else ""
        table.add_row(n.reference, LEVERS[n.lever].clause, n.contract, escape(n.about), n.state, str(n.opened_on), str(n.last_on),
                      escape(f"{n.milestone} by {n.milestone_due}") if n.milestone else "", held)
    out.print(table)


@notice_app.command("show")
def notice_show(
    reference: Annotated[str, typer.Argument(help="The notice, e.g. CPN-0001.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """A notice's steps so far, and the steps that may follow now."""
    from carecontracts.cycle.notices import history, next_steps, notice as find_notice

    space = open_workspace(workspace)
    notice = find_notice(space, reference)
    taken = history(space, reference)
    table = Table(title=f"{reference}: {escape(notice.about)} ({notice.contract})", title_justify="left")
    for name in ("on", "step", "state", "by", "note"):
        table.add_column(name)
    for s in taken:
        table.add_row(str(s.on), s.step, s.state, s.recorded_by, escape(s.note or ""))
    out.print(table)
    following = next_steps(notice)
    out.print("Next: " + (", ".join(f"{s.name} ({s.title.lower()}, {s.by})" for s in following) if following else f"nothing ({notice.state})."))


@notice_app.command("due")
def notice_due(
    workspace: WorkspaceOption = Path("."),
    on: Annotated[Optional[str], typer.Option("--on", help="As of this day (default: today).")] = None,
) -> None:
    """What is due under each open notice, by whom and when (time limits in operational days,
    from the contract_management section of carecontracts.toml)."""
    from carecontracts.cycle.notices import day_of, due, notices

    space = open_workspace(workspace)
    owed = due(space.settings.contract_management, notices(space), day_of(on, "--on"))
    table = Table(title=f"Due ({len(owed)})", title_justify="left")
    for name in ("when", "reference", "contract", "what", "by"):
        table.add_column(name)
    for o in owed:
        when = "no time set" if o.when is None else (f"[red]{o.when} overdue[/red]" if o.overdue else str(o.when))
        table.add_row(when, o.reference, o.contract, escape(o.what), o.by)
    out.print(table)


__all__ = ["notice_app"]
