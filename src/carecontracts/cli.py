"""The carecontracts command line: a thin layer that parses, calls the library and prints."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from importlib import import_module
from collections import defaultdict
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from typer.core import TyperGroup
from typer.exceptions import Abort, Exit, TyperException
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from carecontracts import __version__
from carecontracts.problems import Problem, ProblemsError

if TYPE_CHECKING:
    import pyarrow as pa

    from carecontracts.periods import FinancialYear

class Guarded(TyperGroup):
    """The command group: a fault of the machine (a busy warehouse, a full disk, a folder
    that cannot be written) or located problems raised anywhere below a command end in a
    clear message and exit 2, never a traceback."""

    def invoke(self, ctx):
        from carecontracts.machine import translated

        try:
            return super().invoke(ctx)
        except (Exit, Abort, TyperException):
            raise
        except Exception as error:  # noqa: BLE001 - translated when it is a known fault, else raised as it is
            problems = translated(error)
            if problems is None:
                raise
            show_problems(problems.problems)
            err.print("[red]Nothing was changed.[/red]")
            raise typer.Exit(PROBLEM_EXIT) from None


app = typer.Typer(
    cls=Guarded,
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


def show_notes(notes: list[Problem]) -> None:
    """Print located notes (nothing wrong, but worth knowing) on stderr, one a line."""
    from rich.markup import escape

    for note in notes:
        err.print(f"[yellow]Note:[/yellow] {escape(str(note))}", highlight=False, soft_wrap=True)


def fail(error: ProblemsError) -> typer.Exit:
    show_problems(error.problems)
    return typer.Exit(PROBLEM_EXIT)


def check_outputs(outputs: dict[str, tuple[Optional[Path], tuple[str, ...]]]) -> None:
    """Refuse bad output paths (wrong suffix, a folder, two outputs on one path) before any work."""
    from carecontracts.machine import check_outputs as check

    try:
        check(outputs)
    except ProblemsError as error:
        raise fail(error) from None


def check_contracts(space, patterns: Optional[list[str]]) -> None:
    """Refuse, before any work, a --contract naming no contract of the workspace (naming the near ones)."""
    from carecontracts.payments import workspace_contracts
    from carecontracts.report.book import chosen_contracts

    if not patterns:
        return
    try:
        known = {body.id for contract in workspace_contracts(space) for body in (contract, *contract.subcontracts)}
        chosen_contracts(patterns, known)
    except ProblemsError as error:
        raise fail(error) from None


def check_party(space, party: str) -> None:
    """Refuse, before any work, a party no contract names (listing those it does)."""
    from carecontracts.access.parties import parties as parties_of
    from carecontracts.payments import workspace_contracts

    try:
        parties = parties_of(workspace_contracts(space))
    except ProblemsError as error:
        raise fail(error) from None
    if party not in parties:
        raise fail(ProblemsError([Problem("--party", f"--party {party}: no such party in the contracts", value=party, expected=f"one of {', '.join(sorted(parties))}")]))


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


EXAMPLE_ROWS = 1_000_000
EXAMPLE_MIN_ROWS = 1000


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to create the workspace in (must be empty or new).")],
    contracts: Annotated[
        Optional[int],
        typer.Option(
            "--contracts",
            help="Write a contract book of this many contracts (at least 1) instead of the example: spread over one ICB per "
            "~200 contracts (at least 2) and providers of every sort, using every component kind.",
        ),
    ] = None,
    rows: Annotated[
        Optional[int],
        typer.Option(
            help="Activity rows to generate in all. The example: 1M by default (at least 1,000; 10M or 100M for benchmarks). "
            "A book: 500 per contract by default (0 or more), shared among the contracts by their size.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed (and sizes) gives byte-identical files.")] = 20250401,
    blank: Annotated[bool, typer.Option("--blank", help="An empty workspace to fill: settings explained, data files with their "
                                                       "columns, and a worked template of every contract kind in templates/.")] = False,
) -> None:
    """Write a workspace to start from: the example, with --contracts N a whole contract book, or with --blank your own.

    [bold]carecontracts init DIR --blank[/bold] writes an empty workspace: carecontracts.toml with every setting explained, contracts/ and prices/ to fill, data files holding just their column headers, and templates/ with a worked, commented example of each contract kind (block, activity, spells from a prices workbook, cost and volume, aligned payment, capitation, incentives, withhold, risk and gain share, shared savings, a prime with sub-contracts, an alliance) to copy into contracts/ and edit.

    [bold]carecontracts init DIR[/bold] writes the example: one ICB, six providers, an MSK prime contractor and an older people's alliance, eight contracts and a year of patient-level activity.

    [bold]carecontracts init DIR --contracts N [--rows R][/bold] writes a [italic]contract book[/italic]: every contract a set of commissioners holds, as an ICB's contracting team sees it (100–400 contracts) or nationally (over 10,000). [bold]N[/bold] is the number of contracts (a prime's sub-contracts sit in its file and are not counted). They are spread over one ICB per ~200 contracts (at least two) and held by acute, community and mental health trusts, independent-sector hospitals, hospices, charities, GP-led services, prime contractors with sub-contractors, alliances with members and integrated care providers. Most are a block with cost per case and a quality incentive; a few are shared by two ICBs; every component kind appears once N is 14 or more.

    [bold]R[/bold] is the number of activity rows in the whole book, not per contract (500 per contract by default): they are drawn for the contracts' providers, commissioners and services in proportion to each contract's size, and every money term is set from the activity drawn, so the book is consistent at any R. Prices, plans, population and outcomes are written as the contracts need them.
    """
    if blank:
        if contracts is not None or rows is not None:
            raise typer.BadParameter("a blank workspace has no contracts or activity: leave out --contracts and --rows.", param_hint="'--blank'")
        _init_blank(folder)
    elif contracts is None:
        _init_example(folder, EXAMPLE_ROWS if rows is None else rows, seed)
    else:
        _init_book(folder, contracts, rows, seed)


def _init_blank(folder: Path) -> None:
    """Write a blank workspace (exit 2 on a folder in use)."""
    from carecontracts.examples.blank import write_blank

    try:
        written = write_blank(folder)
    except FileExistsError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(PROBLEM_EXIT) from None
    templates = sum(1 for w in written if w.startswith("templates/"))
    out.print(f"Wrote a blank workspace to [bold]{folder}[/bold], with {templates} contract templates in templates/.")
    out.print(f"Next: read '{folder / 'START HERE.md'}', copy a template into contracts/, then carecontracts check -w {folder}")


def _init_example(folder: Path, rows: int, seed: int) -> None:
    """Write the example workspace (exit 2 on a bad size or a folder in use)."""
    from carecontracts.examples.generate import write_example

    if rows < EXAMPLE_MIN_ROWS:
        raise typer.BadParameter(f"{rows:,} is too few for the example workspace: give at least {EXAMPLE_MIN_ROWS:,}.", param_hint="'--rows'")
    try:
        with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as progress:
            task = progress.add_task("generating", total=None)
            summary = write_example(folder, rows=rows, seed=seed, progress=lambda text: progress.update(task, description=text))
    except FileExistsError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(PROBLEM_EXIT) from None
    out.print(f"Wrote the example workspace to [bold]{folder}[/bold]: {len(summary.contracts)} contracts, {summary.activity_rows:,} activity rows.")
    out.print(f"Next: carecontracts load -w {folder} && carecontracts pay 2025-11 -w {folder}")


def _init_book(folder: Path, contracts: int, rows: int | None, seed: int) -> None:
    """Write a contract book (exit 2 on a bad size or a folder in use, writing nothing)."""
    from carecontracts.examples.book import write_book

    if contracts < 1:
        raise typer.BadParameter(f"a book needs at least 1 contract, not {contracts:,}.", param_hint="'--contracts'")
    if rows is not None and rows < 0:
        raise typer.BadParameter(f"the number of activity rows cannot be negative ({rows:,}); give 0 or more.", param_hint="'--rows'")
    try:
        with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as progress:
            task = progress.add_task("generating", total=None)
            summary = write_book(folder, contracts, rows=rows, seed=seed, progress=lambda text: progress.update(task, description=text))
    except FileExistsError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(PROBLEM_EXIT) from None
    kinds = ", ".join(f"{name} {count:,}" for name, count in summary.kinds.items())
    out.print(
        f"Wrote a contract book to [bold]{folder}[/bold]: {len(summary.contracts):,} contracts across {len(summary.icbs)} ICBs, "
        f"{summary.activity_rows:,} activity rows."
    )
    out.print(f"Components by kind: {kinds}.")
    out.print(f"Next: carecontracts load -w {folder} && carecontracts pay year -w {folder}")


@app.command()
def check(workspace: WorkspaceOption = Path(".")) -> None:
    """Check contracts and data files without loading anything; exit 2 if there are problems.

    Besides each contract and file on its own, the activity in the files is checked against the contracts for rows that one payer would pay for twice, through two contracts (a prime's sub-contract paying for the same rows is a flow between parties and is allowed). `pay` refuses such activity in what has been loaded, too.
    """
    from carecontracts.payments import check_workspace

    space = open_workspace(workspace)
    with err.status("checking contracts and data files..."):
        checked = check_workspace(space)
    show_notes(checked.notes)
    if checked.problems:
        show_problems(checked.problems)
        raise typer.Exit(PROBLEM_EXIT)
    out.print(f"[green]OK[/green]: {len(checked.contracts)} contracts and {checked.files} data files have no problems.")
    if checked.activity_rows is not None:
        out.print(f"No activity row in {space.year.label} is paid twice by one payer ({checked.activity_rows:,} rows checked).")


@app.command()
def load(
    workspace: WorkspaceOption = Path("."),
    month: Annotated[Optional[str], typer.Option(help="Load one month's activity (e.g. 2025-11) as the submission of the providers in its files: "
                                                      "their rows for that month are replaced, and no other provider's or month's.")] = None,
    provider: Annotated[Optional[list[str]], typer.Option(
        "--provider", metavar="ID", help="With --month: the provider whose month this is (repeat for more). Required for a nil return, "
        "a file with no rows, which records that the provider had no activity that month.")] = None,
    files: Annotated[Optional[list[Path]], typer.Argument(help="With --month: the month's activity files (default: files in data/activity named with the month).")] = None,
) -> None:
    """Check and load data/ and prices/ into the warehouse; on any problem nothing is written.

    Each provider-month of activity that a load changes is recorded as a submission (who,
    when, which files, rows, totals and a hash of the content): see `carecontracts submissions`.
    An activity_id loaded already, in any file or month, is refused.
    """
    from carecontracts.cycle.submissions import load_all, submit_month
    from carecontracts.periods import parse_month

    space = open_workspace(workspace)
    if files and month is None:
        raise fail(ProblemsError([Problem("load", "files are given without --month", expected="--month 2025-11 with that month's files, or no files to load data/ whole")]))
    if provider and month is None:
        raise fail(ProblemsError([Problem("--provider", "is given without --month", expected="--month 2025-11 --provider ID")]))
    try:
        when = parse_month(month) if month is not None else None
    except ValueError as error:
        raise fail(ProblemsError([Problem("--month", str(error), value=month, expected="a month, e.g. 2025-11")])) from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("loading", total=None)

            def step(name: str, done: int, total: int) -> None:
                progress.update(task, description=f"loading {name}" if name else "committing", completed=done, total=total)

            recorded = load_all(space, progress=step) if when is None else submit_month(space, when, files or None, provider or None, progress=step)
    except ProblemsError as error:
        err.print("[red]Nothing was loaded.[/red]")
        raise fail(error) from None
    report = recorded.report
    table = Table(title="Loaded", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("files", justify="right")
    for name, count in report.rows.items():
        table.add_row(name, f"{count:,}", str(len(report.files[name])))
    out.print(table)
    if report.replaced:
        out.print(f"{report.replaced:,} rows replaced are kept in the warehouse's activity_replaced table.")
    print_submissions(recorded.submissions)
    if report.rows.get("outcomes"):
        print_pairing(space)
    out.print(f"Warehouse: {space.warehouse_path}")


def print_submissions(submissions: list, shown: int = 24) -> None:
    """The submissions a load recorded: a line each, or a count past `shown`."""
    if not submissions:
        out.print("No provider's activity changed: no submission recorded.")
        return
    table = Table(title=f"Submissions recorded ({len(submissions):,})", title_justify="left")
    for name in ("provider", "month", "version", "rows", "quantity"):
        table.add_column(name, justify="right" if name in ("version", "rows", "quantity") else "left")
    for s in submissions[:shown]:
        table.add_row(s.provider, f"{s.month:%Y-%m}", str(s.version), "nil return" if s.nil_return else f"{s.rows:,}", f"{s.quantity:,}")
    if len(submissions) > shown:
        table.add_row(f"and {len(submissions) - shown:,} more", "", "", "", "")
    out.print(table)


def print_pairing(space) -> None:
    """Outcome episodes per instrument, with those missing a pre or post score."""
    from carecontracts.engine.backend import Engine
    from carecontracts.outcomes.statistics import episodes, pairing

    engine = Engine.duckdb(space.warehouse_path)
    try:
        rows = engine.to_arrow(pairing(episodes(engine.table("outcomes")))).to_pylist()
    finally:
        engine.close()
    table = Table(title="Outcome episodes", title_justify="left")
    for name in ("instrument", "episodes", "paired", "post without pre", "pre without post"):
        table.add_column(name, justify="left" if name == "instrument" else "right")
    for row in rows:
        table.add_row(row["instrument"], f"{row['episodes']:,}", f"{row['paired']:,}", f"{row['post_without_pre']:,}", f"{row['pre_without_post']:,}")
    out.print(table)
    unpaired = sum(r["post_without_pre"] + r["pre_without_post"] for r in rows)
    if unpaired:
        out.print(f"{unpaired:,} episodes lack a pre or post score: they are counted as unpaired on every outcome line, not dropped.")


BackendOption = Annotated[Optional[str], typer.Option(help="duckdb (embedded, default) or spark (spark_master in carecontracts.toml).")]


def priced_run(space, period: str, backend: str | None):
    """Parse the period and backend, then measure and price the year (exit 2 on problems)."""
    from carecontracts.payments import parse_period, run_payments

    if backend not in (None, "duckdb", "spark"):
        err.print(f"[red]--backend {backend}: expected duckdb or spark[/red]")
        raise typer.Exit(PROBLEM_EXIT)
    try:
        months = parse_period(period, space.year)
        with err.status(f"measuring and pricing {space.year.label}..."):
            return months, run_payments(space, months, backend)
    except ProblemsError as error:
        raise fail(error) from None


def period_label(months: list[dt.date], year: FinancialYear) -> str:
    """`M8 2025-11`, `2025-26`, or `M1–M8 2025-04..2025-11 (year to date)`: financial months beside calendar ones."""
    return year.period(months)


def print_summary(lines, months: list[dt.date], title: str) -> Decimal:
    """Totals by contract and component with a grand total; for a book of more than
    BIG_BOOK contracts, totals by payer and payee and the largest contracts instead."""
    from carecontracts.report.book import BIG_BOOK, contract_count

    if contract_count(lines) > BIG_BOOK:
        return print_book_summary(lines, title)
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


SHOWN_PARTIES = 15  # payers or payees listed by name in a big book's summary; the rest in one row
SHOWN_CONTRACTS = 10


def print_book_summary(lines: "pa.Table", title: str) -> Decimal:
    """A big book: totals by payer and by payee (the largest named, the rest in one row, so
    each table adds up to the total), the largest contracts and the grand total."""
    from carecontracts.report.book import head_and_rest, summarise

    book = summarise(lines, SHOWN_CONTRACTS)
    out.print(f"[bold]{title}[/bold]: {book.lines:,} lines, {book.contracts:,} contracts, "
              f"{len(book.by_payer):,} payers, {len(book.by_payee):,} payees.")
    for side, totals in (("payer", book.by_payer), ("payee", book.by_payee)):
        shown, rest = head_and_rest(totals, SHOWN_PARTIES)
        table = Table(title=f"By {side}" + (f" (the {len(shown)} largest of {len(totals):,})" if rest else ""), title_justify="left")
        table.add_column(side)
        for name in ("contracts", "lines", "amount"):
            table.add_column(name, justify="right", no_wrap=True, min_width=16 if name == "amount" else None)
        for item in shown:
            table.add_row(item.name, f"{item.contracts:,}", f"{item.lines:,}", money(item.amount))
        if rest is not None:
            table.add_row(f"{rest.name} {side}s", f"{rest.contracts:,}", f"{rest.lines:,}", money(rest.amount), style="dim")
        table.add_section()
        table.add_row("total", f"{book.contracts:,}", f"{book.lines:,}", money(book.total), style="bold")
        out.print(table)
    table = Table(title=f"The {len(book.largest)} largest contracts of {book.contracts:,}", title_justify="left")
    for name in ("contract", "payer", "payee", "lines", "amount"):
        table.add_column(name, justify="right" if name in ("lines", "amount") else "left", no_wrap=name == "amount")
    for item in book.largest:
        table.add_row(item.name, item.payers, item.payees, f"{item.lines:,}", money(item.amount))
    out.print(table)
    out.print(f"[bold]Total {money(book.total)}[/bold]: the sum of all {book.lines:,} lines. "
              "--contract ID (or a pattern such as 'ACUTE-*') shows only those contracts.")
    return book.total


class LinesFormat(str, Enum):
    """Where the statement lines of `pay` go."""

    xlsx = "xlsx"
    parquet = "parquet"
    csv = "csv"


@app.command()
def pay(
    period: Annotated[str, typer.Argument(help="A month (2025-11), a range (2025-04..2025-11), or 'year' for the whole financial year.")],
    workspace: WorkspaceOption = Path("."),
    backend: BackendOption = None,
    xlsx: Annotated[Optional[Path], typer.Option(help="Write the statements here as XLSX (default: WORKSPACE/outputs/statements-PERIOD.xlsx).")] = None,
    lines: Annotated[LinesFormat, typer.Option(
        "--lines", help="Where every statement line goes: xlsx (a Lines sheet in the workbook), or parquet or csv "
        "(a file beside the workbook, e.g. statements-2025-26-lines.parquet, and the workbook holds the summary and "
        "positions only: quicker to write and open for a book of 100,000+ lines).")] = LinesFormat.xlsx,
    contract: Annotated[Optional[list[str]], typer.Option(
        "--contract", metavar="ID", help="Only this contract in the summary and outputs; repeat it for more, or end it with * for every "
        "contract starting so ('ACUTE-*'). An unknown id is an error that names the near matches.")] = None,
    csv: Annotated[Optional[Path], typer.Option(help="Also write the statement lines as CSV.")] = None,
    parquet: Annotated[Optional[Path], typer.Option(help="Also write the statement lines as Parquet.")] = None,
) -> None:
    """Run the payments: statements of what each commissioner owes each provider, with the basis of every line."""
    from carecontracts.report.book import BIG_BOOK, contract_count, contract_ids, select_contracts
    from carecontracts.report.export import export_lines, lines_path, write_statements
    from carecontracts.totals import commissioners, headline

    space = open_workspace(workspace)
    beside = lines_path(xlsx, lines.value) if xlsx is not None and lines is not LinesFormat.xlsx else None
    check_outputs({"--xlsx": (xlsx, ("xlsx",)), "--lines": (beside, ()), "--csv": (csv, ("csv",)), "--parquet": (parquet, ("parquet",))})
    check_contracts(space, contract)
    months, result = priced_run(space, period, backend)
    label = period_label(months, space.year)
    chosen = result.lines
    if contract:
        known = set(contract_ids(result.year_lines)) | {c.id for c in result.contracts}
        try:
            chosen = select_contracts(result.lines, contract, known)
        except ProblemsError as error:
            raise fail(error) from None
    title = f"Statements {label} ({space.settings.name})" + (f", {contract_count(chosen):,} contracts chosen" if contract else "")
    print_summary(chosen, months, title)
    out.print(f"[bold]{headline(chosen, commissioners(result.contracts)).words()}[/bold]")
    print_cycle(result, space.year)
    show_notes(result.notes)
    for provider, commissioner, events in result.uncovered:
        err.print(f"[yellow]Note:[/yellow] {events:,} activity rows in {space.year.label} from provider {provider} for commissioner {commissioner} are in no contract, so on no statement.")
    if contract:
        out.print("Positions are of the whole book, not of the contracts chosen: see `carecontracts positions`.")
    else:
        big = contract_count(result.lines) > BIG_BOOK
        print_positions(result.positions, f"Positions {label}", SHOWN_PARTIES if big else None)
    target = xlsx or space.outputs_dir / f"statements-{label.replace('..', '_to_')}.xlsx"
    written: list[Path] = []
    try:
        with err.status(f"writing {len(chosen):,} lines..."):
            written += write_statements(chosen, target, None if contract else result.positions, lines.value, space.year, title)
            for path in (csv, parquet):
                if path is not None:
                    written.append(export_lines(chosen, path))
    except ProblemsError as error:
        show_problems(error.problems)
        err.print("The statements were priced and stored in the warehouse" + (f" and {', '.join(map(str, written))} written" if written else "")
                  + "; the file named above was not written. `carecontracts export PATH` writes the stored lines again.")
        raise typer.Exit(PROBLEM_EXIT) from None
    for path in written:
        out.print(f"Wrote {path}")


def print_cycle(result, year) -> None:
    """Which months are closed (shown as issued) and where their adjustments are paid."""
    import pyarrow.compute as pc

    from carecontracts.cycle.close import first_open
    from carecontracts.periods import month_label

    if not result.closed:
        return
    closed = f"{month_label(result.closed[0])}..{month_label(result.closed[-1])}" if len(result.closed) > 1 else month_label(result.closed[0])
    opening = first_open(year.months, result.closed)
    shown = result.lines.filter(pc.is_valid(result.lines.column("adjusts")))
    total = sum(shown.column("amount").to_pylist(), Decimal(0))
    out.print(f"Closed {closed}: shown as issued. {result.adjustments:,} prior-period adjustment lines"
              + (f" in {month_label(opening)}" if opening else "")
              + (f"; {len(shown):,} of them in the months shown, totalling {money(total)}." if len(shown) else "."))
    if result.waiting:
        err.print(f"[yellow]Note:[/yellow] {result.waiting:,} differences to closed months wait for an open month: every month of {year.label} is closed.")


def print_positions(positions: "pa.Table", title: str, shown: int | None = None) -> None:
    """Each party's income, payments, costs and margin, and the check that money is conserved;
    with `shown`, only the parties with the largest income or payments are listed."""
    rows = positions.to_pylist()
    listed = rows if shown is None or len(rows) <= shown else sorted(rows, key=lambda r: -max(r["income"], r["payments"]))[:shown]
    table = Table(title=title if len(listed) == len(rows) else f"{title}: the {len(listed)} largest parties of {len(rows):,}", title_justify="left",
                  caption="costs and margin only for a provider all of whose activity carries its costs", caption_justify="left")
    for name in ("party", "role", "income", "payments", "net", "costs", "margin"):
        table.add_column(name, justify="left" if name in ("party", "role") else "right", no_wrap=True)
    income = sum((r["income"] for r in rows), Decimal(0))
    payments = sum((r["payments"] for r in rows), Decimal(0))
    for row in listed:
        table.add_row(
            row["party"], row["role"], money(row["income"]), money(row["payments"]), money(row["net"]),
            "" if row["costs"] is None else money(row["costs"]), "" if row["margin"] is None else money(row["margin"]),
        )
    table.add_section()
    table.add_row("total", "", money(income), money(payments), money(income - payments), "", "", style="bold")
    out.print(table)
    if income == payments:
        out.print(f"Money is conserved: every party's payments ({money(payments)}) are another's income.")
    else:
        err.print(f"[red]Income {money(income)} and payments {money(payments)} differ by {money(income - payments)}.[/red]")


@app.command()
def positions(
    period: Annotated[str, typer.Argument(help="A month (2025-11), a range (2025-04..2025-11), or 'year'.")] = "year",
    workspace: WorkspaceOption = Path("."),
    party: Annotated[Optional[str], typer.Option(help="Show the lines behind this party's position, with their basis.")] = None,
    backend: BackendOption = None,
    xlsx: Annotated[Optional[Path], typer.Option(help="Also write the positions and statements as XLSX.")] = None,
) -> None:
    """Every party's position: income, payments, costs (where activity carries them) and margin."""
    from carecontracts.report.export import FORMATS, export_lines

    space = open_workspace(workspace)
    check_outputs({"--xlsx": (xlsx, FORMATS)})
    if party is not None:
        check_party(space, party)
    months, result = priced_run(space, period, backend)
    label = period_label(months, space.year)
    if party is None:
        print_positions(result.positions, f"Positions {label} ({space.settings.name})")
    else:
        parties = set(result.positions.column("party").to_pylist())
        if party not in parties:
            err.print(f"[red]--party {party}: no such party in {label}; expected one of {', '.join(sorted(parties))}[/red]")
            raise typer.Exit(PROBLEM_EXIT)
        print_party(result.lines, party, f"{party}: money in and out, {label}")
    if xlsx is not None:
        out.print(f"Wrote {export_lines(result.lines, xlsx, result.positions)}")


def print_party(lines, party: str, title: str) -> None:
    """A party's money by contract, component and counterparty, with the latest line's basis."""
    groups: dict[tuple[str, str, str, str], list[dict]] = defaultdict(list)
    for row in lines.to_pylist():
        if row["payee"] == party:
            groups[("in", row["contract"], row["component"], row["payer"])].append(row)
        if row["payer"] == party:
            groups[("out", row["contract"], row["component"], row["payee"])].append(row)
    table = Table(title=title, title_justify="left", show_lines=True)
    for name in ("", "contract", "component", "from / to", "lines", "amount", "basis of the latest line"):
        table.add_column(name, justify="right" if name in ("lines", "amount") else "left", no_wrap=name != "basis of the latest line")
    net = Decimal(0)
    for key in sorted(groups):
        rows = groups[key]
        amount = sum((r["amount"] for r in rows), Decimal(0))
        net += amount if key[0] == "in" else -amount
        latest = max(rows, key=lambda r: r["month"])
        table.add_row(*key, f"{len(rows):,}", money(amount), latest["basis"])
    table.add_section()
    table.add_row("net", "", "", "", "", money(net), "", style="bold")
    out.print(table)


def coloured_variance(variance: Decimal) -> str:
    """A variance to plan, signed, green when favourable and red when adverse."""
    from carecontracts.money import format_signed

    colour = "green" if variance > 0 else "red" if variance < 0 else None
    return f"[{colour}]{format_signed(variance)}[/{colour}]" if colour else format_signed(variance)


def print_against_plan(plans: dict[str, dict[dt.date, Decimal]], outturns: dict[str, Decimal], between: set[str], title: str) -> None:
    """Each contract's forecast outturn against its plan for the year, the variance signed and
    coloured, and the commissioners' total where every contract they pay has a plan."""
    from carecontracts.report.plans import VARIANCE_WORDS, commissioners_plan, direction, variance_to_plan

    planned = {contract: sum(by_month.values(), Decimal(0)) for contract, by_month in plans.items()}
    table = Table(title=title, title_justify="left")
    for column in ("contract", "plan", "outturn", "variance", ""):
        table.add_column(column, justify="left" if column in ("contract", "") else "right", no_wrap=True)

    def row(name: str, plan: Decimal | None, outturn: Decimal, style: str | None = None) -> None:
        variance = None if plan is None else variance_to_plan(plan, outturn)
        table.add_row(name, "—" if plan is None else money(plan), money(outturn), "—" if variance is None else coloured_variance(variance),
                      direction(variance), style=style)

    paid = sorted(c for c in outturns if c not in between)
    for contract in paid:
        row(contract, planned.get(contract), outturns[contract])
    by_month, missing = commissioners_plan(plans, paid)
    table.add_section()
    row("commissioners pay", None if by_month is None else sum(by_month.values(), Decimal(0)), sum((outturns[c] for c in paid), Decimal(0)), "bold")
    out.print(table)
    out.print("Plan: each contract's payment plans in data/plans, else its planned activity valued at its price. " + VARIANCE_WORDS
              + (f" The total has no plan: {', '.join(missing)} {'has' if len(missing) == 1 else 'have'} none." if missing else ""))


@app.command("plan-vs-actual")
def plan_vs_actual(
    period: Annotated[str, typer.Argument(help="A month (2025-11), a range (2025-04..2025-11), or 'year'.")],
    workspace: WorkspaceOption = Path("."),
    contract: Annotated[Optional[list[str]], typer.Option(
        "--contract", metavar="ID", help="Only this contract (repeat it for more, or end it with * for every contract starting so); "
        "a contract with no payment plan is then shown with its payments and no plan.")] = None,
) -> None:
    """Plan versus actual payments per contract and component: the payment plans in data/plans (rows naming a component, such as core or api.fixed) against the stored statements of the last payment run, with the variance.

    Actual counts every line paid in the period, prior-period adjustments in the month they are paid. Exit 2 when nothing is priced yet (`carecontracts pay` first), when no payment plan is loaded, or when a plan names a contract or component the contracts do not have.
    """
    from carecontracts.payments import parse_period, plan_versus_actual, workspace_contracts
    from carecontracts.report.plans import VARIANCE_WORDS, direction

    space = open_workspace(workspace)
    try:
        months = parse_period(period, space.year)
        result = plan_versus_actual(space, months, contract)
    except ProblemsError as error:
        raise fail(error) from None
    label = period_label(months, space.year)
    adjusted = any(line.adjustments for line in result.lines)
    table = Table(title=f"Plan versus actual payments, {label} ({space.settings.name})", title_justify="left")
    headings = ["contract", "component", "planned", "actual", "variance", "variance %", ""] + (["of which adjustments"] if adjusted else [])
    for name in headings:
        table.add_column(name, justify="left" if name in ("contract", "component", "") else "right", no_wrap=True)

    def row(line, style: str | None = None) -> None:
        percent = line.variance_percent
        cells = [line.contract, line.component, "—" if line.planned is None else money(line.planned), money(line.actual),
                 "—" if line.variance is None else coloured_variance(line.variance),
                 "—" if percent is None else f"{'+' if percent > 0 else ''}{percent}%", direction(line.variance)]
        table.add_row(*cells, *([money(line.adjustments)] if adjusted else []), style=style)

    for line in result.lines:
        row(line)
    table.add_section()
    row(result.total, "bold")
    out.print(table)
    out.print(VARIANCE_WORDS + " Actual is the statements of the last payment run "
              "(`carecontracts pay`), prior-period adjustments counted in the month they are paid; the total is of the lines with a plan.")
    unplanned = [line for line in result.lines if line.planned is None]
    if unplanned:
        out.print(f"No payment plan for {', '.join(f'{line.contract} {line.component}' for line in unplanned)} "
                  f"({money(sum((line.actual for line in unplanned), Decimal(0)))} paid): shown without a plan, and not in the total.")
    if result.unplanned and not contract:
        sub_contracts = {s.id for c in workspace_contracts(space) for s in c.subcontracts}
        for names, words in ((sorted(set(result.unplanned) - sub_contracts), "Contracts"),
                             (sorted(set(result.unplanned) & sub_contracts), "Sub-contracts (paid by their prime out of its contract)")):
            if names:
                listed = ", ".join(f"{name} ({money(result.unplanned[name])})" for name in names)
                out.print(f"{words} with no payment plan, and what each was paid in {label}: {listed}. "
                          "A row of data/plans naming a component plans its payments.")


@app.command()
def outcomes(
    instrument: Annotated[str, typer.Option(help="oxford_hip, oxford_knee, eq5d_index, eq_vas or barthel.")] = "oxford_hip",
    statistic: Annotated[str, typer.Option(help="share_improved, share_reaching, mean_change, mean_pre, mean_post or casemix_adjusted_mean.")] = "share_improved",
    workspace: WorkspaceOption = Path("."),
    min_change: Annotated[Optional[str], typer.Option(help="Improvement that counts (share_improved); the instrument's default if omitted.")] = None,
    threshold: Annotated[Optional[str], typer.Option(help="Score to reach (share_reaching).")] = None,
    proms: Annotated[bool, typer.Option("--proms", help="Use the national PROMs hip replacement records 2018-19 shipped with carecontracts instead of the workspace.")] = False,
) -> None:
    """Outcome statistics per provider with 95% intervals and the counts behind them."""
    from carecontracts.engine.backend import Engine
    from carecontracts.instruments import INSTRUMENTS
    from carecontracts.outcomes.providers import estimates_by, instruments_held
    from carecontracts.outcomes.statistics import Statistic, statistic_named

    problems = []
    if instrument not in INSTRUMENTS:
        problems.append(Problem("--instrument", f"unknown instrument '{instrument}'", value=instrument, expected=f"one of {', '.join(sorted(INSTRUMENTS))}"))
    try:
        chosen = statistic_named(statistic)
    except KeyError:
        problems.append(Problem("--statistic", f"unknown statistic '{statistic}'", value=statistic, expected=", ".join(s.value for s in Statistic)))
    numbers: dict[str, Decimal | None] = {}
    for name, text in (("--min-change", min_change), ("--threshold", threshold)):
        try:
            numbers[name] = Decimal(text) if text is not None else None
        except ArithmeticError:
            problems.append(Problem(name, f"'{text}' is not a number", value=text, expected="a number, e.g. 8"))
    if problems:
        raise fail(ProblemsError(problems))
    if chosen is Statistic.SHARE_REACHING and numbers["--threshold"] is None:
        raise fail(ProblemsError([Problem("--threshold", "share_reaching needs a threshold", expected="--threshold 40")]))
    if proms:
        from carecontracts.data.proms import HIP_INSTRUMENTS, hip_outcomes_table

        if instrument not in HIP_INSTRUMENTS:
            raise fail(ProblemsError([Problem("--instrument", f"the PROMs hip replacement records hold no {instrument} scores", value=instrument,
                                              expected=f"one of {', '.join(HIP_INSTRUMENTS)} with --proms")]))
        engine = Engine.duckdb()
        table = engine.put(hip_outcomes_table(instruments=(instrument,), primary_only=True))
        source = "PROMs hip replacement records 2018-19 (primary), NHS Digital"
    else:
        space = open_workspace(workspace)
        if not space.warehouse_path.exists():
            raise fail(ProblemsError([Problem(space.relative(space.warehouse_path), "no data loaded yet", expected="run `carecontracts load` first")]))
        engine = Engine.duckdb(space.warehouse_path, read_only=True)
        if not engine.has_table("outcomes"):
            engine.close()
            raise fail(ProblemsError([Problem("data/outcomes", "no outcomes are loaded", expected="outcome files in data/outcomes/ and `carecontracts load`")]))
        table = engine.table("outcomes")
        source = space.settings.name
        held = instruments_held(engine, table)
        if instrument not in held:
            engine.close()
            raise fail(ProblemsError([Problem("data/outcomes", f"no {instrument} scores are loaded", value=instrument,
                                              expected=f"--instrument {' or '.join(held) or '(none loaded)'}: the instruments the loaded outcomes hold")]))
    try:
        groups, everyone = estimates_by(engine, table, instrument, chosen, "provider", numbers["--min-change"], numbers["--threshold"])
    finally:
        engine.close()
    shown = Table(title=f"{instrument} {chosen.value} by provider ({source})", title_justify="left")
    predicted = chosen.info.needs_predicted
    for name in ("provider", "value", "95% interval", "episodes", "successes", "unpaired") + (("no prediction",) if predicted else ()):
        shown.add_column(name, justify="left" if name == "provider" else "right", no_wrap=True)

    def cells(result) -> tuple[str, str]:
        if result.percent:
            return f"{result.value * 100:.1f}%", f"{result.lower * 100:.1f}%–{result.upper * 100:.1f}%"
        return f"{result.value:.2f}", f"{result.lower:.2f}–{result.upper:.2f}"

    for group in groups:
        left_out = (f"{group.excluded:,}",) if predicted else ()
        if group.estimate is None:
            shown.add_row(group.group or "(none)", "no paired episodes" + (" with a prediction" if group.excluded else ""), "", "0", "",
                          f"{group.unpaired:,}", *left_out)
            continue
        value, interval = cells(group.estimate)
        successes = "" if group.estimate.successes is None else f"{group.estimate.successes:,}"
        shown.add_row(group.group or "(none)", value, interval, f"{group.estimate.episodes:,}", successes, f"{group.unpaired:,}", *left_out)
    if everyone is not None:
        shown.add_section()
        value, interval = cells(everyone)
        successes = "" if everyone.successes is None else f"{everyone.successes:,}"
        shown.add_row("everyone", value, interval, f"{everyone.episodes:,}", successes, f"{everyone.unpaired:,}",
                      *((f"{everyone.excluded:,}",) if predicted else ()), style="bold")
    out.print(shown)
    if everyone is not None:
        out.print(f"Everyone: {everyone.describe()}.")
    left_out_all = sum(group.excluded for group in groups)
    if predicted and left_out_all:
        some = "paired episode has" if left_out_all == 1 else "paired episodes have"
        out.print(f"{left_out_all:,} {some} no predicted score: a case-mix adjusted mean cannot use them, so they are left out and counted here.")


@app.command()
def forecast(
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="The last month of actual data, e.g. 2025-11.")] = None,
    workspace: WorkspaceOption = Path("."),
    method: Annotated[Optional[list[str]], typer.Option(help="run_rate, seasonal, plan or blend (repeat for several); all the data allows if omitted.")] = None,
    backtest_: Annotated[bool, typer.Option("--backtest", help="Forecast the year from each of its months and print the error by horizon.")] = False,
) -> None:
    """Where will the year end? Actual to date plus each method's projection of the rest, per contract and party."""
    from carecontracts.payments import contracts_as_priced, open_engine
    from carecontracts.periods import month_label, parse_month
    from carecontracts.report.plans import plans_by_contract
    from carecontracts.scenarios.forecast import METHOD_WORDS, METHODS, backtest, forecast as run_forecast
    from carecontracts.totals import commissioners

    space = open_workspace(workspace)
    chosen = tuple(_listed(method) or METHODS)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise fail(ProblemsError([Problem("--method", f"unknown method {', '.join(unknown)}", expected=", ".join(METHODS))]))
    if not backtest_ and as_of is None:
        raise fail(ProblemsError([Problem("--as-of", "which month is the last of actual data?", expected="--as-of 2025-11 (or --backtest)")]))
    try:
        contracts = contracts_as_priced(space)
        engine, tables = open_engine(space)
        try:
            if backtest_:
                with err.status(f"forecasting {space.year.label} from each of its months..."):
                    result = backtest(engine, contracts, space.year, tables, chosen)
            else:
                when = parse_month(as_of or "")
                with err.status(f"forecasting {space.year.label} as of {month_label(when)}..."):
                    outlook = run_forecast(engine, contracts, space.year, tables, when, chosen)
                    plans = plans_by_contract(engine, tables)
        finally:
            engine.close()
    except ValueError as error:
        raise fail(ProblemsError([Problem("--as-of", str(error), value=as_of, expected="a month, e.g. 2025-11")])) from None
    except ProblemsError as error:
        raise fail(error) from None
    if backtest_:
        table = Table(title=f"Backtest {space.year.label}: mean absolute % error of contracts' monthly payments, by months ahead", title_justify="left")
        table.add_column("method")
        horizons = sorted({h for errors in result.errors.values() for h in errors})
        for h in horizons:
            table.add_column(f"{h}", justify="right")
        for name, errors in sorted(result.errors.items()):
            table.add_row(name, *[f"{errors[h] * 100:.1f}%" if h in errors else "" for h in horizons])
        out.print(table)
        return
    for name, why in outlook.unavailable.items():
        err.print(f"[yellow]Note:[/yellow] no {name} forecast: {why}.")
    headline = "forecast:blend" if "blend" in outlook.methods else f"forecast:{outlook.methods[0]}"
    actual: dict[str, Decimal] = defaultdict(Decimal)
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    by_party: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    paying = commissioners(contracts)
    between: set[str] = set()  # sub-contracts: a provider pays them, out of what commissioners pay it
    for row in outlook.lines.to_pylist():
        totals[row["contract"]][row["scenario"]] += row["amount"]
        by_party[row["payer"]][row["scenario"]] -= row["amount"]
        by_party[row["payee"]][row["scenario"]] += row["amount"]
        if row["payer"] not in paying:
            between.add(row["contract"])
        if row["scenario"] == headline and row["month"] <= outlook.as_of:
            actual[row["contract"]] += row["amount"]
    year = space.year
    to_date, ahead = year.outturn_spans(outlook.as_of)
    table = Table(title=f"Outturn {year.label} as of {year.financial_month(outlook.as_of)} ({METHOD_WORDS[headline.split(':')[1]]}; "
                        f"range over {', '.join(outlook.methods)})", title_justify="left")
    for column in ("contract", to_date, ahead, "outturn", "range"):
        table.add_column(column, justify="left" if column == "contract" else "right", no_wrap=True)
    grand: dict[str, Decimal] = defaultdict(Decimal)
    apart: dict[str, Decimal] = defaultdict(Decimal)
    for contract, by in sorted(totals.items()):
        values = [by[f"forecast:{m}"] for m in outlook.methods]
        shown = f"{contract} (sub-contract)" if contract in between else contract
        table.add_row(shown, money(actual[contract]), money(by[headline] - actual[contract]), money(by[headline]), f"{money(min(values))} – {money(max(values))}")
        for name, value in by.items():
            (apart if contract in between else grand)[name] += value
    table.add_section()
    values = [grand[f"forecast:{m}"] for m in outlook.methods]
    done = sum((v for c, v in actual.items() if c not in between), Decimal(0))
    table.add_row("commissioners pay", money(done), money(grand[headline] - done), money(grand[headline]), f"{money(min(values))} – {money(max(values))}", style="bold")
    if between:
        paid_apart = sum((v for c, v in actual.items() if c in between), Decimal(0))
        table.add_row("within that, to sub-contractors", money(paid_apart), money(apart[headline] - paid_apart), money(apart[headline]), "", style="dim")
    out.print(table)
    print_against_plan(plans, {c: by[headline] for c, by in totals.items()}, between, f"Forecast outturn against plan, {year.label}")
    parties = Table(title="Each party's net position at outturn", title_justify="left")
    parties.add_column("party")
    for name in outlook.methods:
        parties.add_column(name, justify="right")
    for party, by in sorted(by_party.items()):
        parties.add_row(party, *[money(by[f"forecast:{m}"]) for m in outlook.methods])
    out.print(parties)
    for commissioner, budget in sorted(space.settings.budgets.items()):
        spent = -by_party.get(commissioner, {}).get(headline, Decimal(0))
        gap = budget - spent
        words = f"{money(gap)} under" if gap >= 0 else f"{money(-gap)} over"
        out.print(f"{commissioner}: outturn {money(spent)} against a budget of {money(budget)}: {words} ({headline.split(':')[1]}).")


# Activity filters shared by the commands that choose activity (whatif, compare).
ServiceOption = Annotated[Optional[list[str]], typer.Option(help="Activity of these services (repeat or comma-separate).")]
ProviderOption = Annotated[Optional[list[str]], typer.Option(help="Activity of these providers.")]
CommissionerOption = Annotated[Optional[list[str]], typer.Option(help="Activity of these commissioners.")]
PodOption = Annotated[Optional[list[str]], typer.Option(help="Activity at these points of delivery (EL, DC, NEL, OPFA...).")]
CurrencyOption = Annotated[Optional[list[str]], typer.Option(help="Activity in these currencies (HRG codes...).")]


def _listed(values: list[str] | None) -> list[str] | None:
    """Repeated or comma-separated option values as one list."""
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@app.command()
def whatif(
    file: Annotated[Optional[Path], typer.Argument(help="A what-if YAML file (name: and changes:); or give one change with the options below.")] = None,
    workspace: WorkspaceOption = Path("."),
    service: ServiceOption = None,
    provider: ProviderOption = None,
    commissioner: CommissionerOption = None,
    pod: PodOption = None,
    currency: CurrencyOption = None,
    from_month: Annotated[Optional[str], typer.Option("--from", help="First month changed, e.g. 2025-12.")] = None,
    to_month: Annotated[Optional[str], typer.Option("--to", help="Last month changed (the year's end if omitted).")] = None,
    change: Annotated[Optional[str], typer.Option(help="-10% (a percent) or -250 (units) of the matching activity.")] = None,
    move_to: Annotated[Optional[str], typer.Option(help="Move the matching activity (all, or --change 50%) to this provider, paid at its "
                                                   "contracts' terms (with --as-of, projected activity too).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Change a term: CONTRACT.COMPONENT.FIELD=VALUE, e.g. ISP-2025.isp.mff=1.10.")] = None,
    outcome: Annotated[Optional[list[str]], typer.Option(help="Change outcome achievement: CONTRACT.METRIC=POINTS, e.g. MSK-2025.hip-function=-10.")] = None,
    price: Annotated[Optional[list[str]], typer.Option(help="Change a unit price: PRICE_LIST/CURRENCY=VALUE or =+2% (CURRENCY * for all), e.g. national-2025/HN12F=6000.")] = None,
    name: Annotated[str, typer.Option(help="Name of the what-if scenario.")] = "what-if",
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="On the forecast: the last month of actual data, e.g. 2025-11. Months after it "
                                                  "are each forecast method's projection, and the change applies to them too.")] = None,
) -> None:
    """What if activity or terms change? The difference it makes to each contract and party, and why.

    With --as-of, asked mid-year about the rest of it: the change applies to actual months up to
    --as-of and to each forecast method's projected activity after it (run rate, same month last
    year × growth, plan, and their blend), baseline and what-if priced in one run.
    """
    from carecontracts.language.yaml_lines import load_yaml
    from carecontracts.payments import contracts_as_priced, open_engine
    from carecontracts.scenarios.whatif import parse_whatif, run_forward, run_whatif

    space = open_workspace(workspace)
    try:
        actual_to = month_option(as_of, "--as-of")
        if file is not None:
            scenario = parse_whatif(load_yaml(file, str(file)))
        else:
            scenario = _whatif_from_options(name, service, provider, commissioner, pod, currency, from_month, to_month, change, move_to, set_, outcome, price)
        first = min((c.scale or c.move).from_ or space.year.months[0] for c in scenario.changes if (c.scale or c.move)) if any(c.scale or c.move for c in scenario.changes) else space.year.months[0]  # type: ignore[union-attr]
        months = [m for m in space.year.months if m >= month_start_of(first)]
        contracts = contracts_as_priced(space)
        engine, tables = open_engine(space)
        try:
            if actual_to is not None:
                with err.status(f"forecasting {space.year.label} as of {actual_to:%Y-%m}, with and without '{scenario.name}'..."):
                    forward = run_forward(engine, contracts, space.year, tables, scenario, actual_to, months)
            else:
                with err.status(f"pricing the baseline and '{scenario.name}'..."):
                    result = run_whatif(engine, contracts, space.year, tables, scenario, months)
        finally:
            engine.close()
    except ProblemsError as error:
        raise fail(error) from None
    from carecontracts.totals import commissioners

    paying = commissioners(contracts)
    if actual_to is not None:
        _print_forward(forward, months, space.year, paying)
        return
    _print_whatif(result, scenario, period_label(months, space.year), paying)


def month_option(text: str | None, option: str) -> dt.date | None:
    """A month given to an option (none if not given), or a problem naming the option."""
    from carecontracts.periods import parse_month

    if text is None:
        return None
    try:
        return parse_month(text)
    except ValueError as error:
        raise ProblemsError([Problem(option, str(error), value=text, expected="a month, e.g. 2025-11")]) from None


def _print_forward(forward, months: list[dt.date], year, paying: set[str]) -> None:
    """A what-if on the forecast: the difference by method, then the headline method in detail."""
    from carecontracts.periods import month_label
    from carecontracts.scenarios.forecast import METHOD_WORDS
    from carecontracts.totals import changed

    actual = [m for m in months if m <= forward.as_of]
    ahead = [m for m in months if m > forward.as_of]
    spans = ([f"{month_label(actual[0])} to {month_label(actual[-1])} actual"] if actual else []) + (
        [f"{month_label(ahead[0])} to {month_label(ahead[-1])} projected"] if ahead else [])
    for method, why in forward.unavailable.items():
        err.print(f"[yellow]Note:[/yellow] no {method} forecast: {why}.")
    table = Table(title=f"What commissioners pay on the forecast as of {year.financial_month(forward.as_of)}, by method ({'; '.join(spans)})",
                  title_justify="left")
    for column in ("method", "forecast", "with the what-if", "difference"):
        table.add_column(column, justify="left" if column == "method" else "right", no_wrap=True)
    for method, result in forward.by_method.items():
        before, after = (changed(result.differences, paying, side).commissioners_pay for side in ("baseline", "scenario"))
        table.add_row(f"{method} ({METHOD_WORDS[method]})", money(before), money(after), money(after - before))
    out.print(table)
    headline = forward.by_method[forward.headline]
    _print_whatif(headline, headline.whatif, f"{period_label(months, year)}, on the {forward.headline} forecast ({'; '.join(spans)})", paying)


def _print_whatif(result, scenario, label: str, paying: set[str]) -> None:
    """A what-if's differences by contract and component, by party, and in all."""
    from carecontracts.totals import changed

    for warning in result.warnings():
        err.print(f"[yellow]Warning:[/yellow] {warning}")
    table = Table(title=f"What if {'; '.join(c.describe() for c in scenario.changes)} — {label}", title_justify="left")
    for column in ("contract", "component", "baseline", "what-if", "difference", "why"):
        table.add_column(column, justify="right" if column in ("baseline", "what-if", "difference") else "left", no_wrap=column != "why")
    rows: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    reasons: dict[tuple[str, str], str] = {}
    by_contract: dict[str, Decimal] = defaultdict(Decimal)
    for d in result.differences:
        rows[(d.contract, d.component)][0] += d.baseline
        rows[(d.contract, d.component)][1] += d.scenario
        reasons[(d.contract, d.component)] = d.reason
        by_contract[d.contract] += d.difference
    for (contract, component), (before, after) in sorted(rows.items()):
        table.add_row(contract, component, money(before), money(after), money(after - before), reasons[(contract, component)])
    table.add_section()
    table.add_row("total", "", money(sum((d.baseline for d in result.differences), Decimal(0))),
                  money(sum((d.scenario for d in result.differences), Decimal(0))), money(result.total), "", style="bold")
    out.print(table)
    parties = Table(title="Change in each party's net position", title_justify="left")
    parties.add_column("party")
    parties.add_column("change", justify="right")
    for party, change_in in sorted(result.by_party().items()):
        if change_in:
            parties.add_row(party, money(change_in))
    out.print(parties)
    for contract, moved in sorted(by_contract.items()):
        if moved:
            out.print(f"{contract}: {'saves' if moved < 0 else 'costs'} {money(abs(moved))}")
    change = changed(result.differences, paying)
    moved = change.commissioners_pay
    out.print(f"[bold]In all, {label}: {'a saving of ' + money(-moved) if moved < 0 else 'an extra ' + money(moved) if moved > 0 else 'no change'}"
              " to what commissioners pay.[/bold]")
    if change.between_providers:
        out.print(f"Within that, what providers pay their sub-contractors changes by {money(change.between_providers)} (not added in).")


def month_start_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _whatif_from_options(name, service, provider, commissioner, pod, currency, from_month, to_month, change, move_to, set_, outcome=None, price=None):
    """One what-if from command-line options, checked like a file would be."""
    from carecontracts.periods import parse_month
    from carecontracts.scenarios.whatif import Change, WhatIf

    problems: list[Problem] = []
    months = {}
    for option, text in (("--from", from_month), ("--to", to_month)):
        if text:
            try:
                months[option] = parse_month(text)
            except ValueError as error:
                problems.append(Problem(option, str(error), value=text, expected="a month, e.g. 2025-12"))
    where = {"service": _listed(service), "provider": _listed(provider), "commissioner": _listed(commissioner), "pod": _listed(pod),
             "currency": _listed(currency), "from": months.get("--from"), "to": months.get("--to")}
    where = {k: v for k, v in where.items() if v is not None}
    changes: list[dict] = []
    size: dict = {}
    if change:
        text = change.strip()
        try:
            size = {"percent": Decimal(text[:-1])} if text.endswith("%") else {"units": Decimal(text)}
        except ArithmeticError:
            problems.append(Problem("--change", f"'{change}' is not a percent or a number of units", value=change, expected="-10% or -250"))
    if move_to:
        changes.append({"move": where, "to": move_to, **({"percent": size["percent"]} if "percent" in size else {})})
    elif size:
        changes.append({"scale": where, **size})
    elif where:
        problems.append(Problem("--change", "activity is chosen but no change is given", expected="--change -10% (or --move-to PROVIDER)"))
    for item in set_ or []:
        if "=" not in item:
            problems.append(Problem("--set", f"'{item}' is not CONTRACT.COMPONENT.FIELD=VALUE", value=item, expected="e.g. ISP-2025.isp.mff=1.10"))
            continue
        key, value = item.split("=", 1)
        try:
            changes.append({"parameter": key.strip(), "value": Decimal(value)})
        except ArithmeticError:
            changes.append({"parameter": key.strip(), "value": value.strip()})
    for item in outcome or []:
        key, _, points = item.partition("=")
        try:
            changes.append({"outcome": key.strip(), "points": Decimal(points)})
        except ArithmeticError:
            problems.append(Problem("--outcome", f"'{item}' is not CONTRACT.METRIC=POINTS", value=item, expected="e.g. MSK-2025.hip-function=-10"))
    for item in price or []:
        key, _, amount = item.partition("=")
        amount = amount.strip()
        try:
            changes.append({"price": key.strip(), **({"percent": Decimal(amount[:-1])} if amount.endswith("%") else {"value": Decimal(amount)})})
        except ArithmeticError:
            problems.append(Problem("--price", f"'{item}' is not PRICE_LIST/CURRENCY=VALUE or =PERCENT%", value=item, expected="e.g. national-2025/HN12F=6000 or national-2025/*=+2%"))
    if not changes and not problems:
        problems.append(Problem("whatif", "no change given", expected="a what-if file, --change with a filter, --move-to, --set, --price or --outcome"))
    if problems:
        raise ProblemsError(problems)
    from pydantic import ValidationError

    options = {"percent": "--change", "units": "--change", "points": "--outcome", "to": "--move-to", "scale": "--from/--to", "move": "--from/--to"}
    kinds = {"parameter": "--set", "price": "--price", "outcome": "--outcome", "move": "--move-to", "scale": "--change"}
    validated = []
    for change in changes:
        try:
            validated.append(Change.model_validate(change))
        except ValidationError as error:
            kind = next((kinds[k] for k in kinds if k in change), "whatif")
            problems += [Problem(next((options[str(p)] for p in e["loc"] if str(p) in options), kind), e["msg"].removeprefix("Value error, "),
                                 field=".".join(str(p) for p in e["loc"]) or None, value=e.get("input") if not isinstance(e.get("input"), dict) else None)
                         for e in error.errors(include_url=False)]
    if problems:
        raise ProblemsError(problems)
    try:
        return WhatIf.model_validate({"name": name, "changes": validated})
    except ValidationError as error:
        raise ProblemsError([Problem("whatif", e["msg"], expected=None) for e in error.errors(include_url=False)]) from None


@app.command()
def compare(
    workspace: WorkspaceOption = Path("."),
    service: ServiceOption = None,
    provider: ProviderOption = None,
    commissioner: CommissionerOption = None,
    pod: PodOption = None,
    currency: CurrencyOption = None,
    forms: Annotated[Optional[str], typer.Option(help="Forms to compare: block,activity,cost_and_volume,aligned_payment,capitation,outcome_based (all if omitted).")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Also price a forecast of the year from this month, e.g. 2025-11; expected cost is then the forecast.")] = None,
    prices: Annotated[Optional[str], typer.Option(help="The price list to value the activity at (the only one loaded if omitted).")] = None,
    instrument: Annotated[Optional[str], typer.Option(help="Outcome instrument an outcome-based contract pays on (the provider's most recorded if omitted).")] = None,
) -> None:
    """Which contract form suits a service? Each form's expected cost, the commissioner's control and the provider's stability."""
    from pydantic import ValidationError

    from carecontracts.payments import open_engine, workspace_contracts
    from carecontracts.periods import parse_month
    from carecontracts.scenarios.compare import FORM_WORDS, FORMS, compare_forms
    from carecontracts.scenarios.whatif import ActivityFilter

    space = open_workspace(workspace)
    chosen = _listed([forms]) if forms else list(FORMS)
    try:
        where = ActivityFilter.model_validate({k: v for k, v in {"service": _listed(service), "provider": _listed(provider), "commissioner": _listed(commissioner),
                                                                 "pod": _listed(pod), "currency": _listed(currency)}.items() if v})
        when = parse_month(as_of) if as_of else None
        contracts = workspace_contracts(space)
        engine, tables = open_engine(space)
        try:
            with err.status(f"pricing {where.words()} under {len(chosen or [])} forms..."):
                result = compare_forms(engine, contracts, space.year, tables, where, chosen or [], prices, when, instrument)
        finally:
            engine.close()
    except ValueError as error:
        problem = Problem("--as-of", str(error), value=as_of, expected="a month, e.g. 2025-11") if not isinstance(error, ValidationError) else Problem("compare", str(error))
        raise fail(ProblemsError([problem])) from None
    except ProblemsError as error:
        raise fail(error) from None
    for form, why in result.unavailable.items():
        err.print(f"[yellow]Warning:[/yellow] {FORM_WORDS[form]} is not offered: {why}.")
    for note in result.notes:
        err.print(f"[dim]Note:[/dim] {note}.")
    pairs = ", ".join(f"{p.provider}→{p.commissioner}" for p in result.pairs)
    out.print(f"{where.words()}: {len(result.pairs)} provider–commissioner pair{'s' if len(result.pairs) != 1 else ''} ({pairs}); the year's activity at {result.price_list} prices: {money(result.value)}.")
    expected = "expected (forecast)" if when else "expected"
    table = Table(title=f"Contract forms for {where.words()}, {space.year.label} (scenarios: {', '.join(result.scenarios)})", title_justify="left")
    from carecontracts.money import currency_symbol

    per_percent = f"{currency_symbol()} per 1%"
    for column in ("form", expected, "control %/1%", per_percent, "monthly CV", "range over scenarios", "on outcomes"):
        table.add_column(column, justify="left" if column == "form" else "right", no_wrap=True)
    for r in result.results:
        table.add_row(FORM_WORDS[r.form], money(r.expected), f"{r.control:.2f}", money(r.control_per_percent.quantize(Decimal("0.01"))),
                      f"{r.monthly_variation * 100:.1f}%", f"{money(r.high - r.low)} ({r.spread * 100:.1f}%)", money(r.at_stake) if r.at_stake else "—")
    out.print(table)
    out.print("[dim]control %/1%: the percent by which the year's payment moves when activity moves 1% (1.00 follows activity in "
              f"full, as cost per case; 0.00 not at all, as a block); {per_percent}: the same in money; monthly CV: how unevenly the provider "
              "is paid through the year (the monthly payments' standard deviation over their mean); range over scenarios: the highest "
              "less the lowest year over the activity scenarios; on outcomes: the money that depends on outcome achievement.[/dim]")
    out.print(f"[bold]{result.conclusion()}[/bold]")


@app.command()
def report(
    as_of: Annotated[str, typer.Option("--as-of", help="The last month of actual data, e.g. 2025-11.")],
    workspace: WorkspaceOption = Path("."),
    whatif_file: Annotated[Optional[Path], typer.Option("--whatif", help="A what-if YAML file (name: and changes:) to include.")] = None,
    html: Annotated[Optional[Path], typer.Option(help="Where to write the HTML report (default: WORKSPACE/outputs/report-AS_OF.html).")] = None,
    xlsx: Annotated[Optional[Path], typer.Option(help="Where to write the XLSX workbook (default: WORKSPACE/outputs/report-AS_OF.xlsx).")] = None,
    compare_service: Annotated[Optional[list[str]], typer.Option("--compare-service", help="Also compare every contract form for the activity of these services.")] = None,
    simulate_runs: Annotated[Optional[int], typer.Option("--simulate", help="Also simulate this many years after the as-of month (see `simulate`) and show each party's risk.", min=1)] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the simulation.")] = 1,
) -> None:
    """The outlook as a self-contained HTML report and an XLSX workbook: actual against plan and forecast, outturn, positions, what-if, comparison of forms, risk."""
    from carecontracts.language.yaml_lines import load_yaml
    from carecontracts.payments import contracts_as_priced, open_engine
    from carecontracts.periods import month_label, parse_month
    from carecontracts.report.outlook import gather, write_html, write_xlsx
    from carecontracts.scenarios.whatif import parse_whatif

    from carecontracts.scenarios.simulate import check_runs

    space = open_workspace(workspace)
    check_outputs({"--html": (html, ("html", "htm")), "--xlsx": (xlsx, ("xlsx",))})
    try:
        when = parse_month(as_of)
        if simulate_runs is not None:
            check_runs(simulate_runs)
    except ValueError as error:
        raise fail(ProblemsError([Problem("--as-of", str(error), value=as_of, expected="a month, e.g. 2025-11")])) from None
    except ProblemsError as error:
        raise fail(error) from None
    try:
        scenario = parse_whatif(load_yaml(whatif_file, str(whatif_file))) if whatif_file is not None else None
        contracts = contracts_as_priced(space)
        engine, tables = open_engine(space)
        try:
            comparison = None
            if compare_service:
                from carecontracts.scenarios.compare import FORMS, compare_forms
                from carecontracts.scenarios.whatif import ActivityFilter

                with err.status("comparing contract forms..."):
                    comparison = compare_forms(engine, contracts, space.year, tables, ActivityFilter(service=_listed(compare_service)), list(FORMS), as_of=when)
            with err.status(f"forecasting {space.year.label} as of {month_label(when)}{' and pricing the what-if' if scenario else ''}..."):
                outlook = gather(engine, contracts, space.year, tables, when, space.settings.name, whatif=scenario, comparison=comparison)
            if simulate_runs is not None:
                from carecontracts.scenarios.simulate import simulate as run_simulation

                final = when if when != space.year.months[-1] else None
                with err.status(f"simulating {simulate_runs:,} runs..."):
                    risk = run_simulation(engine, contracts, space.year, tables, simulate_runs, seed, as_of=final, budgets=space.settings.budgets)
                outlook = dataclasses.replace(outlook, risk=risk)
        finally:
            engine.close()
    except ProblemsError as error:
        raise fail(error) from None
    except OSError as error:
        raise fail(ProblemsError([Problem("--whatif", str(error), value=str(whatif_file), expected="a readable what-if YAML file")])) from None
    for note in outlook.notes:
        err.print(f"[yellow]Note:[/yellow] {note}")
    folder = space.outputs_dir
    with err.status("drawing the report..."):
        written = [write_html(outlook, html or folder / f"report-{month_label(when)}.html"),
                   write_xlsx(outlook, xlsx or folder / f"report-{month_label(when)}.xlsx")]
    total = outlook.total
    out.print(f"Outturn {space.year.label} as of {space.year.financial_month(when)} ({outlook.headline}): {money(total.outturn(outlook.headline))}; "
              f"paid to date {money(total.actual_to_date)}.")
    for path in written:
        out.print(f"Wrote {path}")


@app.command()
def simulate(
    workspace: WorkspaceOption = Path("."),
    runs: Annotated[int, typer.Option(help="Simulated years (each a scenario priced by the same rules as the payments).", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same output.")] = 1,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Keep actual months to this one (e.g. 2025-11) and simulate the rest around the run rate; if omitted, the whole year (or after the last month with activity).")] = None,
    model: Annotated[Optional[Path], typer.Option(help="A YAML risk model overriding what is fitted from history (volume, cost, outcomes, stress).")] = None,
    chunk: Annotated[Optional[int], typer.Option(help="Runs priced at once: memory grows with it and with the book (default: 250, fewer on a big "
                                                  "book, about 1,000,000 run-rows at once).", min=1)] = None,
    html: Annotated[Optional[Path], typer.Option(help="Where to write the HTML risk report (default: WORKSPACE/outputs/risk.html).")] = None,
    xlsx: Annotated[Optional[Path], typer.Option(help="Where to write the XLSX workbook of the distributions and every run (default: WORKSPACE/outputs/risk.xlsx).")] = None,
) -> None:
    """How bad can it get? A Monte Carlo of every party's position (volume, unit cost and outcomes drawn), with stress tests."""
    from carecontracts.language.yaml_lines import load_yaml
    from carecontracts.payments import contracts_as_priced, open_engine
    from carecontracts.periods import month_label, parse_month
    from carecontracts.report.risk import write_risk_html, write_risk_xlsx
    from carecontracts.scenarios.simulate import RiskModel, check_runs, parse_risk_model, simulate as run_simulation

    space = open_workspace(workspace)
    check_outputs({"--html": (html, ("html", "htm")), "--xlsx": (xlsx, ("xlsx",))})
    try:
        when = parse_month(as_of) if as_of is not None else None
        check_runs(runs)
    except ValueError as error:
        raise fail(ProblemsError([Problem("--as-of", str(error), value=as_of, expected="a month, e.g. 2025-11")])) from None
    except ProblemsError as error:
        raise fail(error) from None
    try:
        risk_model = parse_risk_model(load_yaml(model, str(model))) if model is not None else RiskModel()
        contracts = contracts_as_priced(space)
        engine, tables = open_engine(space)
        try:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=err, transient=True) as progress:
                task = progress.add_task("fitting, stress tests, then runs", total=runs)
                result = run_simulation(engine, contracts, space.year, tables, runs, seed, risk_model, when, chunk, space.settings.budgets,
                                        progress=lambda done: progress.advance(task, done))
        finally:
            engine.close()
    except OSError as error:
        raise fail(ProblemsError([Problem("--model", str(error), value=str(model), expected="a readable risk model YAML file")])) from None
    except ProblemsError as error:
        raise fail(error) from None
    span = "the whole year" if result.as_of is None else f"{month_label(result.months[0])} to {month_label(result.months[-1])} (actual to {month_label(result.as_of)})"
    fitted = sum(1 for p in result.parameters if p.source.startswith("fitted"))
    out.print(f"{runs:,} runs of {space.year.label}, seed {seed}, simulating {span}; {fitted} of {len(result.parameters)} parameters fitted from history.")
    parties = Table(title="Each party's position over the runs (margin where its activity carries costs, else net)", title_justify="left")
    for column in ("party", "role", "measure", "mean", "P5", "P50", "P95", "P(loss)", "worst 5% (mean)"):
        parties.add_column(column, justify="left" if column in ("party", "role", "measure") else "right", no_wrap=True)
    for risk in result.parties:
        if risk.role == "commissioner":
            continue
        d = risk.position
        parties.add_row(risk.party, risk.role, risk.measure, money(d.mean), money(d.p5), money(d.p50), money(d.p95), f"{d.loss:.1%}", money(d.shortfall))
    out.print(parties)
    out.print("[dim]P5, P50, P95: 5, 50 and 95 in every 100 simulated years come out at or below this; P(loss): the share of years in "
              "which the party loses money; worst 5% (mean): the average of the worst 5 in every 100 years (the expected shortfall). "
              "Margin is income less payments and the costs of its own activity, where the activity carries costs; else net.[/dim]")
    spend = Table(title="Each commissioner's payments over the runs", title_justify="left")
    for column in ("commissioner", "mean", "P5", "P50", "P95", "worst 5% (mean)", "budget", "P(over budget)"):
        spend.add_column(column, justify="left" if column == "commissioner" else "right", no_wrap=True)
    for risk in result.parties:
        if risk.role == "commissioner":
            d = risk.payments
            over = f"{risk.over_budget:.1%}" if risk.over_budget is not None else "no budget"
            spend.add_row(risk.party, money(d.mean), money(d.p5), money(d.p50), money(d.p95), money(d.shortfall), money(risk.budget) if risk.budget is not None else "", over)
    out.print(spend)
    stress = Table(title="Stress tests (a commissioner's payments; others' position)", title_justify="left")
    stress.add_column("party")
    for item in result.stresses:
        stress.add_column(item.name, justify="right")
    for risk in result.parties:
        stress.add_row(risk.party, *[money(risk.stressed.get(item.scenario, Decimal(0))) for item in result.stresses])
    out.print(stress)
    for item in result.stresses[1:]:
        out.print(f"  {item.name}: {item.description}")
    folder = space.outputs_dir
    with err.status("drawing the risk report..."):
        written = [write_risk_html(result, html or folder / "risk.html", f"{space.settings.name}: risk {space.year.label}"),
                   write_risk_xlsx(result, xlsx or folder / "risk.xlsx")]
    for path in written:
        out.print(f"Wrote {path}")


@app.command()
def explain(
    contract: Annotated[str, typer.Argument(help="Contract id, e.g. MH-2025.")],
    component: Annotated[str, typer.Argument(help="Component id as on the statement, e.g. core or api.variable.")],
    month: Annotated[str, typer.Argument(help="Month of the line, e.g. 2025-11.")],
    workspace: WorkspaceOption = Path("."),
    repriced: Annotated[bool, typer.Option("--repriced", help="Explain what re-pricing gives today instead of the line as issued.")] = False,
) -> None:
    """Explain statement lines: the contract terms behind them (file:line) and the tallies they price."""
    from carecontracts.engine.explain import explain as explain_lines
    from carecontracts.payments import contracts_as_priced, stored
    from carecontracts.periods import month_label, parse_month

    space = open_workspace(workspace)
    try:
        when = parse_month(month)
    except ValueError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(PROBLEM_EXIT) from None
    lines = stored(space, "repriced" if repriced else "statements", "WHERE contract = ? AND month = ?", [contract, when])
    if lines is None:
        err.print("[red]No statements yet: run `carecontracts pay` first.[/red]")
        raise typer.Exit(PROBLEM_EXIT)
    # The year's tallies to the month: a settlement on the year prices them all.
    tallies = stored(space, "tallies", "WHERE contract = ? AND month >= ? AND month <= ?", [contract, space.year.start, when])
    try:
        result = explain_lines(contracts_as_priced(space), lines, tallies, contract, component, when, space.year.start)
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
        span = result.tally_months
        title = f"Tallies behind them: the year to date, {month_label(span[0])} to {month_label(span[1])}" if span else "Tallies behind them"
        costed = any(row.get("cost") is not None for row in result.tallies)
        measured = Table(title=title, title_justify="left")
        numbers = ("events", "quantity", "readmitted", "chargeable") + (("cost",) if costed else ())
        for name in ("payer", "service", "currency", *numbers):
            measured.add_column(name, justify="right" if name in numbers else "left")
        for row in result.tallies:
            cells = [f"{row['events']:,}", f"{row['quantity']:,.2f}", f"{row['readmitted']:,.2f}", f"{row['chargeable']:,.2f}"]
            if costed:
                cells.append(money(row["cost"]) if row.get("cost") is not None else "")
            measured.add_row(row["payer"], row["service"], row["currency"], *cells)
        out.print(measured)


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="File to write: .csv, .parquet or .xlsx.")],
    workspace: WorkspaceOption = Path("."),
    period: Annotated[Optional[str], typer.Option(help="Only these months (2025-11, 2025-04..2025-11, or 'year'); the months the last "
                                                  "payment run was asked for (`pay 2025-11`: November) if omitted.")] = None,
    repriced: Annotated[bool, typer.Option("--repriced", help="What re-pricing gives today, closed months included, instead of the statement "
                                           "(which shows a closed month as issued).")] = False,
) -> None:
    """Export the statements of the last payment run: closed months as issued, with the
    prior-period adjustments paid in the first open month (column `adjusts`)."""
    from carecontracts.payments import last_run, parse_period, stored
    from carecontracts.report.export import FORMATS, export_lines

    space = open_workspace(workspace)
    check_outputs({"PATH": (path, FORMATS)})
    run = last_run(space)
    months, positions = (run[0], None if repriced else run[1]) if run is not None else (None, None)
    if period:
        try:
            months = parse_period(period, space.year)
        except ProblemsError as error:
            raise fail(error) from None
        if run is None or months != run[0]:
            positions = None  # the stored positions are of the run's months only
    where, parameters = "", []
    if months:
        where, parameters = "WHERE month BETWEEN ? AND ?", [months[0], months[-1]]
    lines = stored(space, "repriced" if repriced else "statements", where + " ORDER BY scenario, contract, component, payer, payee, month, service, currency, adjusts", parameters)
    if lines is None:
        err.print("[red]No statements yet: run `carecontracts pay` first.[/red]")
        raise typer.Exit(PROBLEM_EXIT)
    export_lines(lines, path, positions, year=space.year)
    shown = f" of {period_label(months, space.year)}" if months else ""
    out.print(f"Wrote {len(lines):,} lines{shown} to {path}")


def _ranges(texts: list[str], option: str) -> tuple[tuple[float, float], ...]:
    """`12-14`, `12:14`, `12 to 14` or a single value `100`."""
    import re

    found, problems = [], []
    for text in texts:
        match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:(?:-|:|to)\s*(-?\d+(?:\.\d+)?))?\s*", text)
        if not match:
            problems.append(Problem(option, f"'{text}' is not a range", value=text, expected="LOW-HIGH (e.g. 12-14) or one value"))
            continue
        low = float(match.group(1))
        high = float(match.group(2)) if match.group(2) is not None else low
        if high < low:
            problems.append(Problem(option, f"'{text}' runs backwards", value=text, expected=f"the lower value first ({high:g}-{low:g})"))
            continue
        found.append((low, high))
    if problems:
        raise ProblemsError(problems)
    return tuple(found)


AUDIT_HELP = "\n\n".join([
    "Can the reported figures be believed? Looks for figures bunched just inside a target (clocks stopped so waits sit just under 18 "
    "weeks, months nudged just over 95%), charts each group's own share over time, and runs logical checks.",
    "[bold]What to audit[/bold]: the workspace's activity (by provider, waits from referral to treatment), or --file: patient-level "
    "values (--value), counts already binned (--value lower edge, --upper, --count), figures (a share per provider and month), or "
    "NHS England's published layouts, recognised by their columns: the RTT full CSV (wide weekly bands 'Gt 17 To 18 Weeks SUM 1' … "
    "'Gt 52 Weeks SUM 1'; Total treatment function rows; one RTT part at a time, chosen with --where) and monthly A&E attendances "
    "(the share within 4 hours is worked out from attendances and attendances over 4 hours).",
    "[bold]Bunching[/bold]: counts in bins of a sensible width (a week, half a percentage point) are fitted by a negative binomial "
    "regression on a polynomial, leaving out the window next to the threshold (--window bins), the bins beyond it that the excess "
    "came from (as many as its shortfall needs), other targets' spikes (--other-target), the Christmas referral trough (RTT files; "
    "--no-calendar) and any --exclude range. The degree is the one with the smallest AIC, up to --max-degree. The interval is a "
    "parametric bootstrap that chooses degree and missing range again in every replicate.",
    "[bold]Placebos[/bold]: the same estimator runs at every bin edge where no target is. Bunching is reported only when the interval "
    "is above zero AND the threshold's z stands out from theirs at --alpha: measured from their mean z (never under 0) in their "
    "standard deviations (never under 1), read against the normal (at least 8 placebos). Every finding says how it ranks too.",
    "[bold]Groups[/bold] (--group provider / commissioner / any column): each group on its own, and all together. A group that cannot "
    "be tested (too few records: --min-records; a range that does not reach the threshold; too few bins) is listed as 'cannot test' "
    "with the reason, and the others go on. Each group's own share by period is charted (Making Data Count rules and icons; "
    "--min-periods, --min-per-period, --baseline, --phase; limits clipped to 0-100); chart signals are information, not findings.",
    "[bold]Charts[/bold] (--chart): with the count behind each period known (RTT, A&E, patient-level values, the workspace), a p-chart: "
    "centre = all met / all counted over the baseline, limits p ± 3·sqrt(p(1-p)/n) for each period's own n. Where the periods vary more "
    "than binomial sampling gives (sigma_z, the moving range of the points' z-scores / 1.128, over 1; usual with thousands of attendances) "
    "Laney's p' multiplies each sigma by sigma_z, else every busy month would be 'special cause'. Figures with no counts get an XmR chart. "
    "The output says which chart was drawn and why.",
    "[bold]Examples[/bold]",
    "  carecontracts audit -w example --html audit.html",
    "  carecontracts audit --file rtt.csv --where \"RTT Part Type=Part_1A\" --group provider --threshold 18",
    "  carecontracts audit --file ae.csv --threshold 95 --above --group provider --format csv --output findings.csv",
    "Exit status: 0 when the audit ran (whatever it found), 2 when the input cannot be read (each problem with its file, row, "
    "column and what was expected; nothing is written).",
])


@app.command(help=AUDIT_HELP)
def audit(
    workspace: WorkspaceOption = Path("."),
    file: Annotated[Optional[Path], typer.Option("--file", help="Audit this CSV or Parquet file instead of the workspace's activity.", rich_help_panel="Input")] = None,
    layout: Annotated[str, typer.Option(help="The file's layout: auto (recognise RTT and A&E by their columns), long, rtt or ae.", rich_help_panel="Input")] = "auto",
    value: Annotated[Optional[str], typer.Option(help="Long files: the column of values (waits, percentages), or of lower bin edges with --count.", rich_help_panel="Input")] = None,
    count: Annotated[Optional[str], typer.Option(help="Long files: the file is binned; this column holds each bin's count.", rich_help_panel="Input")] = None,
    upper: Annotated[Optional[str], typer.Option(help="With --count: the column of upper bin edges (default: the next bin's lower edge; blank on an open last bin).", rich_help_panel="Input")] = None,
    group: Annotated[Optional[str], typer.Option(help="Audit each value of this column separately, and all together (RTT: provider, commissioner; A&E: provider, region; or a column name).", rich_help_panel="Input")] = None,
    period: Annotated[Optional[str], typer.Option(help="Long files: chart the share by this column (e.g. month). RTT and A&E files use their Period column.", rich_help_panel="Input")] = None,
    id_column: Annotated[Optional[str], typer.Option("--id", help="Long files: a column of identifiers to check for duplicates.", rich_help_panel="Input")] = None,
    unit: Annotated[Optional[str], typer.Option(help="Long files: the unit of the values (weeks, days, minutes, %); guessed from the column name.", rich_help_panel="Input")] = None,
    where: Annotated[Optional[list[str]], typer.Option("--where", help="Keep rows where COLUMN=VALUE (several values: A,B; drop them: COLUMN!=VALUE). Repeatable.", rich_help_panel="Input")] = None,
    ae_types: Annotated[str, typer.Option(help="A&E: department types counted: 1, 2, other, booked1, booked2, bookedother (comma-separated).", rich_help_panel="Input")] = ",".join(["1", "2", "other", "booked1", "booked2", "bookedother"]),
    threshold: Annotated[float, typer.Option(help="The target threshold: 18 (weeks), 95 (%).", rich_help_panel="Target")] = 18.0,
    below: Annotated[bool, typer.Option("--below/--above", help="The target is met at or below the threshold (waits) or at or above it (% within 4 hours).", rich_help_panel="Target")] = True,
    other_target: Annotated[Optional[list[float]], typer.Option("--other-target", help="Another threshold with a target of its own (e.g. 52 weeks): its spike is kept out of the fits and it is not a placebo. Repeatable.", rich_help_panel="Target")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="A range of values kept out of the fits, LOW-HIGH (e.g. 12-14 for a known dip). Repeatable.", rich_help_panel="Bunching")] = None,
    calendar: Annotated[bool, typer.Option("--calendar/--no-calendar", help="RTT files: keep the waits of patients referred over Christmas out of the fits.", rich_help_panel="Bunching")] = True,
    bin_width: Annotated[Optional[float], typer.Option(help="Bin width for values (default: 1 week, 7 days, 0.5 percentage points; otherwise Freedman-Diaconis).", rich_help_panel="Bunching")] = None,
    max_degree: Annotated[int, typer.Option(help="Highest degree of the counterfactual polynomial; the AIC chooses up to it.", min=1, max=10, rich_help_panel="Bunching")] = 6,
    window: Annotated[int, typer.Option(help="Bins next to the threshold where the excess is measured.", min=1, rich_help_panel="Bunching")] = 1,
    span: Annotated[int, typer.Option(help="Bins each side of the threshold that are fitted.", min=5, rich_help_panel="Bunching")] = 15,
    replicates: Annotated[int, typer.Option(help="Bootstrap replicates for the interval.", min=50, rich_help_panel="Bunching")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap: the same seed gives the same intervals.", rich_help_panel="Bunching")] = 20250401,
    alpha: Annotated[float, typer.Option(help="False-alarm rate: intervals at 1 - alpha, and the placebo rank needed.", min=0.001, max=0.5, rich_help_panel="Bunching")] = 0.05,
    min_records: Annotated[int, typer.Option(help="Fewer values (patients, provider-months) than this: bunching is not tested for that group.", min=1, rich_help_panel="Groups and charts")] = 500,
    min_per_period: Annotated[int, typer.Option(help="Fewer records (or attendances) behind a period's figure: the period is left off the chart.", min=0, rich_help_panel="Groups and charts")] = 20,
    min_periods: Annotated[int, typer.Option(help="Fewer periods than this: no chart.", min=3, rich_help_panel="Groups and charts")] = 12,
    baseline: Annotated[Optional[int], typer.Option(help="Chart limits from the first N points of each phase (default: all of them).", min=2, rich_help_panel="Groups and charts")] = None,
    phase: Annotated[Optional[list[str]], typer.Option("--phase", help="A period where a new phase of the chart starts (e.g. 2025-04), with limits of its own. Repeatable.", rich_help_panel="Groups and charts")] = None,
    chart_target: Annotated[Optional[float], typer.Option(help="The target line for the charts' assurance icon (default: the threshold, for shares).", rich_help_panel="Groups and charts")] = None,
    chart: Annotated[str, typer.Option("--chart", help="The control chart of each group's share: auto (a p-chart when the records or attendances behind each period are known, "
                                       "widened by Laney's p' correction when the periods vary more than binomial sampling gives, sigma_z over 1; XmR otherwise), "
                                       "xmr, p (binomial limits only) or laney (p' always).", rich_help_panel="Groups and charts")] = "auto",
    seasonal: Annotated[Optional[bool], typer.Option("--seasonal/--no-seasonal", help="Chart figures less the average group's seasonal pattern (default: with 10 or more groups and 24 or more months).", rich_help_panel="Groups and charts", show_default=False)] = None,
    pooled: Annotated[bool, typer.Option("--pooled/--no-pooled", help="With --group, also audit all groups together.", rich_help_panel="Groups and charts")] = True,
    output_format: Annotated[str, typer.Option("--format", help="What is printed (or written to --output): text, json or csv.", rich_help_panel="Output")] = "text",
    output: Annotated[Optional[Path], typer.Option(help="Write the findings here (in --format; .json or .csv guess it) instead of printing them.", rich_help_panel="Output")] = None,
    html: Annotated[Optional[Path], typer.Option(help="Write the findings and charts to this self-contained HTML file.", rich_help_panel="Output")] = None,
) -> None:
    from carecontracts.audit.export import to_csv, to_json, write_whole
    from carecontracts.audit.findings import grouped, subjects_text
    from carecontracts.audit.histogram import Side
    from carecontracts.audit.readers import Layout, RowFilter
    from carecontracts.audit.run import AuditOptions, ChartChoice, FileSpec, audit_file, audit_workspace
    from carecontracts.report.audit_html import render

    check_outputs({"--output": (output, ()), "--html": (html, ("html", "htm"))})
    try:
        problems: list[Problem] = []
        fmt = output_format.lower()
        if output is not None and fmt == "text" and output.suffix.lower() in (".json", ".csv"):
            fmt = output.suffix.lower()[1:]
        if fmt not in ("text", "json", "csv"):
            problems.append(Problem("--format", f"'{output_format}' is not a format", value=output_format, expected="text, json or csv"))
        if chart.lower() not in {m.value for m in ChartChoice}:
            problems.append(Problem("--chart", f"'{chart}' is not a chart", value=chart, expected="auto, xmr, p or laney"))
        if layout not in {m.value for m in Layout}:
            problems.append(Problem("--layout", f"'{layout}' is not a layout", value=layout, expected="auto, long, rtt or ae"))
        if file is None and (where or layout != "auto" or period):
            problems.append(Problem("--where" if where else "--layout" if layout != "auto" else "--period", "only applies to --file", expected="--file PATH"))
        if problems:
            raise ProblemsError(problems)
        filters = tuple(RowFilter.parse(w) for w in (where or []))
        options = AuditOptions(
            threshold=threshold, side=Side.BELOW if below else Side.ABOVE, bin_width=bin_width, max_degree=max_degree, window=window, span=span,
            replicates=replicates, seed=seed, alpha=alpha, min_records=min_records, min_per_period=min_per_period, min_periods=min_periods,
            other_targets=tuple(other_target or ()), exclude=_ranges(exclude or [], "--exclude"), calendar=calendar, baseline=baseline,
            phases=tuple(phase or ()), chart_target=chart_target, chart=ChartChoice(chart.lower()), seasonal=seasonal, pooled=pooled, layout=Layout(layout), filters=filters,
            ae_types=tuple(t.strip() for t in ae_types.split(",") if t.strip()),
        )
        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("auditing", total=None)

            def progress(done: int, of: int, subject: str) -> None:
                bar.update(task, completed=done, total=of, description=f"auditing {subject}")

            options = dataclasses.replace(options, progress=progress)
            if file is not None:
                result = audit_file(file, FileSpec(value, count, upper, group, period, id_column, unit), options)
            else:
                result = audit_workspace(open_workspace(workspace), options)
    except ProblemsError as error:
        raise fail(error) from None
    # The audit ran: now write, each file whole.
    page = render(result) if html is not None else None
    text = to_json(result) if fmt == "json" else to_csv(result) if fmt == "csv" else None
    if output is not None and text is not None:
        write_whole(output, text)
    if page is not None and html is not None:
        write_whole(html, page)
    if text is not None and output is None:
        typer.echo(text, nl=False)
        return
    styles = {"error": "bold red", "warning": "yellow", "cannot test": "magenta", "info": "green"}
    table = Table(title=result.title, title_justify="left", show_lines=True)
    table.add_column("severity")
    table.add_column("subject")
    table.add_column("check")
    table.add_column("finding")
    from rich.markup import escape

    for finding, subjects in grouped(result.findings):
        table.add_row(f"[{styles[finding.severity.value]}]{finding.severity.value}[/]", escape(subjects_text(subjects)), finding.check,
                      f"[bold]{escape(finding.title)}[/bold]\n{escape(finding.sentence)}")
    if output is None:
        for note in result.notes:
            out.print(escape(note))
        out.print(table)
    doubtful = result.doubtful
    untested = len(result.untested)
    summary = f"{len(doubtful)} finding{'s' if len(doubtful) != 1 else ''} to explain" + (f" ({', '.join(sorted({f.subject for f in doubtful}))})" if doubtful else "")
    summary += f"; {untested} could not be tested (reasons above)." if untested else "."
    out.print(escape(summary))
    if output is not None:
        out.print(f"Wrote {output}")
    if html is not None:
        out.print(f"Wrote {html}")


import_module("carecontracts.cli_cycle")  # registers the cycle's commands on `app`
import_module("carecontracts.cli_notices")  # registers `notice` (contract management) on `app`
# The national contract-monitoring files (ACM, PLCM, IAP): check, reconcile, write-acm.
app.add_typer(import_module("carecontracts.cli_monitoring").monitoring_app, name="monitoring")
import_module("carecontracts.cli_service")  # registers serve, users and log on `app`

if __name__ == "__main__":
    app()
