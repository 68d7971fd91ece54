"""The carecontracts command line: a thin layer that parses, calls the library and prints."""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from carecontracts import __version__
from carecontracts.problems import Problem, ProblemsError

app = typer.Typer(
    name="carecontracts",
    help="Health and care contracts as code: check contracts and data, run the monthly payments, explain every line.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
def _console(stderr: bool = False) -> Console:
    """A console; when output goes to a file or a log, wide enough that money is never cut."""
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, width=160)
    return console


out = _console()
err = _console(stderr=True)

WorkspaceOption = Annotated[Path, typer.Option("--workspace", "-w", help="The workspace folder (holds carecontracts.toml).", show_default=True)]
PROBLEM_EXIT = 2


def show_problems(problems: list[Problem], title: str = "Problems") -> None:
    """Print located problems as a table on stderr."""
    table = Table(title=f"{title}: {len(problems)}", title_justify="left", show_lines=False)
    table.add_column("where", style="cyan", no_wrap=True)
    table.add_column("field", style="magenta")
    table.add_column("problem")
    table.add_column("expected", style="green")
    for problem in problems:
        place = problem.source + (f":{problem.line}" if problem.line else "") + (f" row {problem.row}" if problem.row else "")
        table.add_row(place, problem.field or "", problem.message, problem.expected or "")
    err.print(table)


def fail(error: ProblemsError) -> typer.Exit:
    show_problems(error.problems)
    return typer.Exit(PROBLEM_EXIT)


def open_workspace(root: Path):
    from carecontracts.workspace import Workspace

    try:
        return Workspace.open(root)
    except ProblemsError as error:
        raise fail(error) from None


def money(value: Decimal) -> str:
    from carecontracts.money import format_money

    return format_money(value)


def version_callback(value: bool) -> None:
    if value:
        out.print(f"carecontracts {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    """carecontracts: what each party owes, per contract, component and month, to the penny, and why."""


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to create the example workspace in (must be empty or new).")],
    rows: Annotated[int, typer.Option(help="Activity rows to generate (1M by default; 10M or 100M for benchmarks).", min=1000)] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same workspace.")] = 20250401,
) -> None:
    """Write the example workspace: one ICB, six providers, a year of patient-level activity."""
    from carecontracts.examples.generate import write_example

    try:
        with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as progress:
            task = progress.add_task("generating", total=None)
            summary = write_example(folder, rows=rows, seed=seed, progress=lambda text: progress.update(task, description=text))
    except FileExistsError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(PROBLEM_EXIT) from None
    out.print(f"Wrote the example workspace to [bold]{folder}[/bold]: {len(summary.contracts)} contracts, {summary.activity_rows:,} activity rows.")
    out.print(f"Next: carecontracts load -w {folder} && carecontracts pay 2025-11 -w {folder}")


@app.command()
def check(workspace: WorkspaceOption = Path(".")) -> None:
    """Check contracts and data files without loading anything; exit 2 if there are problems."""
    from carecontracts.data.load import DATASETS, check_files, data_files
    from carecontracts.payments import workspace_contracts

    space = open_workspace(workspace)
    problems: list[Problem] = []
    contracts = []
    try:
        contracts = workspace_contracts(space)
    except ProblemsError as error:
        problems += error.problems
    problems += check_files(space)
    if problems:
        show_problems(problems)
        raise typer.Exit(PROBLEM_EXIT)
    files = sum(len(data_files(space, d)) for d in DATASETS)
    out.print(f"[green]OK[/green]: {len(contracts)} contracts and {files} data files have no problems.")


@app.command()
def load(workspace: WorkspaceOption = Path(".")) -> None:
    """Check and load data/ and prices/ into the warehouse; on any problem nothing is written."""
    from carecontracts.data.load import load_workspace

    space = open_workspace(workspace)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("loading", total=None)

            def step(name: str, done: int, total: int) -> None:
                progress.update(task, description=f"loading {name}" if name else "committing", completed=done, total=total)

            report = load_workspace(space, progress=step)
    except ProblemsError as error:
        err.print("[red]Nothing was loaded.[/red]")
        raise fail(error) from None
    table = Table(title="Loaded", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("files", justify="right")
    for name, count in report.rows.items():
        table.add_row(name, f"{count:,}", str(len(report.files[name])))
    out.print(table)
    out.print(f"Warehouse: {space.warehouse_path}")


def print_summary(lines, months: list[dt.date], title: str) -> Decimal:
    """Totals by contract and component for the months, with a grand total."""
    totals: dict[tuple[str, str, str, str], Decimal] = defaultdict(Decimal)
    counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
    columns = [lines.column(c).to_pylist() for c in ("contract", "component", "payer", "payee", "amount")]
    for contract, component, payer, payee, amount in zip(*columns):
        key = (contract, component, payer, payee)
        totals[key] += amount
        counts[key] += 1
    table = Table(title=title, title_justify="left")
    for name in ("contract", "component", "payer", "payee"):
        table.add_column(name)
    table.add_column("lines", justify="right")
    table.add_column("amount", justify="right", no_wrap=True, min_width=16)
    for key in sorted(totals):
        table.add_row(*key, f"{counts[key]:,}", money(totals[key]))
    grand = sum(totals.values(), Decimal(0))
    table.add_section()
    table.add_row("total", "", "", "", f"{len(lines):,}", money(grand), style="bold")
    out.print(table)
    return grand


@app.command()
def pay(
    period: Annotated[str, typer.Argument(help="A month (2025-11), a range (2025-04..2025-11), or 'year' for the whole financial year.")],
    workspace: WorkspaceOption = Path("."),
    backend: Annotated[Optional[str], typer.Option(help="duckdb (embedded, default) or spark (local[*]).")] = None,
    xlsx: Annotated[Optional[Path], typer.Option(help="Write the statements here as XLSX (default: .carecontracts/out/statements-PERIOD.xlsx).")] = None,
    csv: Annotated[Optional[Path], typer.Option(help="Also write the statement lines as CSV.")] = None,
    parquet: Annotated[Optional[Path], typer.Option(help="Also write the statement lines as Parquet.")] = None,
) -> None:
    """Run the payments: statements of what each commissioner owes each provider, with the basis of every line."""
    from carecontracts.payments import parse_period, run_payments
    from carecontracts.periods import month_label
    from carecontracts.report.export import export_lines

    space = open_workspace(workspace)
    if backend not in (None, "duckdb", "spark"):
        err.print(f"[red]--backend {backend}: expected duckdb or spark[/red]")
        raise typer.Exit(PROBLEM_EXIT)
    try:
        months = parse_period(period, space.year)
        with err.status(f"measuring and pricing {space.year.label}..."):
            result = run_payments(space, months, backend)
    except ProblemsError as error:
        raise fail(error) from None
    label = month_label(months[0]) if len(months) == 1 else (space.year.label if months == space.year.months else f"{month_label(months[0])}..{month_label(months[-1])}")
    print_summary(result.lines, months, f"Statements {label} ({space.settings.name})")
    for provider, commissioner, events in result.uncovered:
        err.print(f"[yellow]Note:[/yellow] {events:,} activity rows in {space.year.label} from provider {provider} for commissioner {commissioner} are in no contract, so on no statement.")
    target = xlsx or space.state_dir / "out" / f"statements-{label.replace('..', '_to_')}.xlsx"
    written = [export_lines(result.lines, target)]
    for path in (csv, parquet):
        if path is not None:
            written.append(export_lines(result.lines, path))
    for path in written:
        out.print(f"Wrote {path}")


@app.command()
def explain(
    contract: Annotated[str, typer.Argument(help="Contract id, e.g. MH-2025.")],
    component: Annotated[str, typer.Argument(help="Component id as on the statement, e.g. core or api.variable.")],
    month: Annotated[str, typer.Argument(help="Month of the line, e.g. 2025-11.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Explain statement lines: the contract terms behind them (file:line) and the tallies they price."""
    from carecontracts.engine.explain import explain as explain_lines
    from carecontracts.payments import stored, workspace_contracts
    from carecontracts.periods import parse_month

    space = open_workspace(workspace)
    try:
        when = parse_month(month)
    except ValueError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(PROBLEM_EXIT) from None
    lines = stored(space, "statements", "WHERE contract = ? AND month = ?", [contract, when])
    if lines is None:
        err.print("[red]No statements yet: run `carecontracts pay` first.[/red]")
        raise typer.Exit(PROBLEM_EXIT)
    tallies = stored(space, "tallies", "WHERE contract = ? AND month = ?", [contract, when])
    try:
        result = explain_lines(workspace_contracts(space), lines, tallies, contract, component, when)
    except ProblemsError as error:
        raise fail(error) from None
    agreement = result.agreement
    out.print(f"[bold]{agreement.id}[/bold] {result.component.id} ({result.component.kind}): {result.mechanism_summary}.")
    out.print(f"{', '.join(p.id for p in agreement.payers)} pay {agreement.payee}.")
    terms = Table(title="Terms", title_justify="left")
    terms.add_column("term")
    terms.add_column("value")
    terms.add_column("written at", style="cyan")
    for parameter in result.parameters:
        terms.add_row(parameter.field, str(parameter.value), parameter.location)
    out.print(terms)
    if not result.lines:
        out.print(f"No statement lines for {contract} {component} in {month}.")
    statement = Table(title=f"Statement lines {month}", title_justify="left", show_lines=True)
    for name in ("component", "payer", "service", "currency", "amount", "basis"):
        statement.add_column(name, justify="right" if name == "amount" else "left")
    for line in result.lines:
        statement.add_row(line["component"], line["payer"], line["service"] or "", line["currency"] or "", money(line["amount"]), line["basis"])
    out.print(statement)
    if result.tallies:
        measured = Table(title="Tallies behind them", title_justify="left")
        for name in ("payer", "service", "currency", "events", "quantity", "readmitted", "chargeable"):
            measured.add_column(name, justify="right" if name in ("events", "quantity", "readmitted", "chargeable") else "left")
        for row in result.tallies:
            measured.add_row(row["payer"], row["service"], row["currency"], f"{row['events']:,}", f"{row['quantity']:,.2f}", f"{row['readmitted']:,.2f}", f"{row['chargeable']:,.2f}")
        out.print(measured)


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="File to write: .csv, .parquet or .xlsx.")],
    workspace: WorkspaceOption = Path("."),
    period: Annotated[Optional[str], typer.Option(help="Only these months (2025-11, 2025-04..2025-11); all stored months if omitted.")] = None,
) -> None:
    """Export the statements of the last payment run."""
    from carecontracts.payments import parse_period, stored
    from carecontracts.report.export import export_lines, format_of

    space = open_workspace(workspace)
    try:
        format_of(path)
    except ValueError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(PROBLEM_EXIT) from None
    where, parameters = "", []
    if period:
        try:
            months = parse_period(period, space.year)
        except ProblemsError as error:
            raise fail(error) from None
        where, parameters = "WHERE month BETWEEN ? AND ?", [months[0], months[-1]]
    lines = stored(space, "statements", where + " ORDER BY scenario, contract, component, payer, month, service, currency", parameters)
    if lines is None:
        err.print("[red]No statements yet: run `carecontracts pay` first.[/red]")
        raise typer.Exit(PROBLEM_EXIT)
    export_lines(lines, path)
    out.print(f"Wrote {len(lines):,} lines to {path}")


if __name__ == "__main__":
    app()
