"""Commands of the shared service: serve the workspace, manage its users, verify the log.
Thin: each parses, calls carecontracts.access or carecontracts.service and prints; located
problems raised below end, through the app's Guarded group, in a table and exit 2."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from carecontracts.cli import PROBLEM_EXIT, WorkspaceOption, app, err, fail, open_workspace, out
from carecontracts.problems import Problem, ProblemsError

users_app = typer.Typer(help="The service's users: each acts for one party in one role and has API tokens.", no_args_is_help=True)
log_app = typer.Typer(help="The append-only event log, each event chained to the one before by its hash.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(log_app, name="log")

ROLE_HELP = ("commissioner, provider (a prime or sub-contractor too), alliance member, auditor (reads everything) "
             "or admin (everything); write alliance-member for alliance member.")


def _book(space):
    from carecontracts.access.parties import Book
    from carecontracts.payments import workspace_contracts

    return Book(space, workspace_contracts(space))


def _records(space):
    from carecontracts.cycle.submissions import open_records

    return open_records(space)


def _password(from_stdin: bool) -> str | None:
    if not from_stdin:
        return None
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise fail(ProblemsError([Problem("--password-stdin", "no password on standard input", expected="the password on the first line")]))
    return line


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The user's sign-in name, e.g. jo.bloggs.")],
    party: Annotated[Optional[str], typer.Option(help="The party the user acts for, as the contracts name it, e.g. ICB-NCL or ACUTE-RFH.")] = None,
    role: Annotated[str, typer.Option(help=ROLE_HELP)] = "provider",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read a password for the pages from standard input (at least 12 characters).")] = False,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Add a user for a party in a role; prints its first API token as the last line (shown only once).

    A commissioner user sees the contracts its ICB commissions; a provider user those it is paid
    under and, for a prime, its sub-contracts; an alliance member the alliance's contracts."""
    from carecontracts.access.users import add_user

    space = open_workspace(workspace)
    book = _book(space)
    added = add_user(_records(space), book, name, party, role.replace("-", " "), _password(password_stdin))
    user = added.user
    err.print(f"Added {user.name}: {user.role}{' for ' + user.party if user.party else ''}, seeing {len(book.visible(_viewer(user)))} contract(s). "
              "Its API token follows; it is not shown again.")
    print(added.token)


def _viewer(user):
    from carecontracts.access.users import viewer_of

    return viewer_of(user)


@users_app.command("token")
def users_token(name: Annotated[str, typer.Argument(help="The user.")], workspace: WorkspaceOption = Path(".")) -> None:
    """Issue another API token for a user; prints it as the last line (shown only once)."""
    from carecontracts.access.users import issue_token

    space = open_workspace(workspace)
    token = issue_token(_records(space), name)
    err.print(f"A new API token for {name} follows; it is not shown again.")
    print(token)


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Argument(help="The user.")], workspace: WorkspaceOption = Path(".")) -> None:
    """Revoke every API token of a user at once."""
    from carecontracts.access.users import revoke

    space = open_workspace(workspace)
    count = revoke(_records(space), name)
    out.print(f"Revoked {count} token(s) of {name}.")


@users_app.command("password")
def users_password(
    name: Annotated[str, typer.Argument(help="The user.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Set a user's password for the pages from standard input (and lift a lockout)."""
    from carecontracts.access.users import set_password

    space = open_workspace(workspace)
    set_password(_records(space), name, _password(True) or "")
    out.print(f"Set the password of {name}.")


@users_app.command("list")
def users_list(workspace: WorkspaceOption = Path(".")) -> None:
    """Every user: party, role, live tokens, whether it can sign in to the pages."""
    from carecontracts.access.users import users

    space = open_workspace(workspace)
    table = Table(title="Users", title_justify="left")
    for column in ("user", "party", "role", "live tokens", "password", "locked until (UTC)"):
        table.add_column(column)
    for user, live in users(_records(space)):
        table.add_row(user.name, user.party or "", user.role, str(live), "set" if user.password_hash else "none",
                      f"{user.locked_until:%Y-%m-%d %H:%M}" if user.locked_until else "")
    out.print(table)


@log_app.command("verify")
def log_verify(workspace: WorkspaceOption = Path(".")) -> None:
    """Check the hash chain of every event: exit 2, naming each, if any was changed or removed."""
    import sqlalchemy as sa

    from carecontracts.records import broken_links
    from carecontracts.records.schema import Event

    space = open_workspace(workspace)
    with _records(space).session() as session:
        broken = broken_links(session)
        total = session.scalar(sa.select(sa.func.count(Event.sequence)))
    if broken:
        for sequence, what in broken:
            err.print(f"[red]event {sequence} {what}[/red]")
        raise typer.Exit(PROBLEM_EXIT)
    out.print(f"[green]OK[/green]: the chain of {total:,} events holds.")


@app.command()
def serve(
    workspace: WorkspaceOption = Path("."),
    host: Annotated[str, typer.Option(help="The address to listen on: loopback unless you mean to share it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the workspace to its parties: pages at http://HOST:PORT/ and a JSON API under /api
    (described at /api/docs). Add users first with `carecontracts users add`."""
    import uvicorn

    from carecontracts.service.app import create_app

    space = open_workspace(workspace)
    application = create_app(space.root)
    space.state_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(space.state_dir / "service.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger("carecontracts.service").addHandler(handler)
    logging.getLogger("carecontracts.service").setLevel(logging.INFO)
    err.print(f"Serving {space.root} at http://{host}:{port}/ (API at /api, its description at /api/docs); "
              f"each request is logged with its user in {space.relative(space.state_dir / 'service.log')}. Ctrl+C stops.")
    uvicorn.run(application, host=host, port=port, log_level="warning")
