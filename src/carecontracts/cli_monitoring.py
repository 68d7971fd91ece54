"""`carecontracts monitoring`: the national contract-monitoring files (ACM, PLCM, IAP) — check
them, reconcile them, and write the commissioner's priced view as an ACM. Thin: it parses,
calls carecontracts.data.monitoring and prints."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from carecontracts.problems import Problem, ProblemsError

if TYPE_CHECKING:
    from carecontracts.data.monitoring import MonitoringFile, Reconciliation
    from carecontracts.periods import FinancialYear

DIFFERENCES_EXIT = 1
PROBLEM_EXIT = 2

monitoring_app = typer.Typer(
    name="monitoring",
    short_help="The national contract-monitoring files (ACM, PLCM, IAP): check them, reconcile them to each other and to the "
    "invoice, write a payment run as an ACM.",
    help="\n\n".join([
        "The national contract-monitoring files providers submit each month: Aggregate Contract Monitoring (ACM), Patient "
        "Level Contract Monitoring (PLCM) and the Indicative Activity Plan (IAP), with the columns the specification names "
        "(FINANCIAL YEAR 202526, FINANCIAL MONTH 1-12, POINT OF DELIVERY CODE, CONTRACT MONITORING ACTUAL PRICE, ...). "
        "Run `carecontracts monitoring spec` to see which version, and every column.",
        "[bold]check[/bold] reads files as a receiving office would: errors refuse a file, warnings accept it and say why "
        "it is doubtful. [bold]reconcile[/bold] adds the PLCM up to the ACM's rows and the ACM up to the invoice, and lists "
        "every difference to the penny with the lines behind it. [bold]write-acm[/bold] writes a payment run's statements as "
        "an ACM, the commissioner's view of what is owed, to compare with the provider's.",
    ]),
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class KindChoice(str, Enum):
    """A file type on the command line."""

    acm = "acm"
    plcm = "plcm"
    iap = "iap"


def _cli():
    """The main command line's helpers (imported when a command runs, so either module can be
    imported first)."""
    from carecontracts import cli

    return cli


def _year(year: str | None, workspace: Path) -> "FinancialYear | None":
    """The year files must be for: --year, else the workspace's, else none (not checked)."""
    from carecontracts.periods import FinancialYear
    from carecontracts.workspace import CONFIG_FILE

    if year is not None:
        try:
            return FinancialYear.parse(year)
        except ValueError as error:
            raise _cli().fail(ProblemsError([Problem("--year", str(error), value=year, expected="a financial year, e.g. 2025-26")])) from None
    if (workspace / CONFIG_FILE).is_file():
        return _cli().open_workspace(workspace).year
    return None


def _summary(file: "MonitoringFile") -> str:
    cli = _cli()
    state = "[red]refused[/red]" if file.errors else "[green]accepted[/green]"
    counts = f"{len(file.errors)} error{'s' if len(file.errors) != 1 else ''}, {len(file.warnings)} warning{'s' if len(file.warnings) != 1 else ''}"
    return f"{file.source}: {file.kind.value.upper()}, {file.rows:,} rows, {cli.money(file.total)} — {state} ({counts})"


def _show(files: list["MonitoringFile"]) -> bool:
    """Print each file's warnings and errors, and a line per file; True when any has errors."""
    cli = _cli()
    warnings = [w for f in files for w in f.warnings]
    errors = [e for f in files for e in f.errors]
    if warnings:
        cli.show_problems(warnings, "Warnings (accepted)")
    if errors:
        cli.show_problems(errors, "Errors (refused)")
    for file in files:
        cli.out.print(_summary(file))
    return bool(errors)


YearOption = Annotated[Optional[str], typer.Option(
    help="The financial year every row must be for (2025-26, i.e. FINANCIAL YEAR 202526). Default: the workspace's "
    "financial_year when -w (or the current folder) holds a carecontracts.toml; otherwise the year is not checked.")]
WorkspaceOption = Annotated[Path, typer.Option("--workspace", "-w", help="The workspace folder (holds carecontracts.toml).")]


@monitoring_app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="ACM, PLCM or IAP files (CSV with a header row); the type is seen from the columns.")],
    kind: Annotated[Optional[KindChoice], typer.Option("--kind", help="Read every file as this type instead of guessing it from its columns.")] = None,
    year: YearOption = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Check files as a receiving office would: exit 2 when any file has errors.

    [bold]Errors[/bold] refuse the file: an unknown or missing mandatory column, FINANCIAL YEAR not like 202526 or not
    the year checked, FINANCIAL MONTH outside 1-12, an organisation code that is not an ODS code, money that is not
    plain pounds and pence (no £, no commas, at most 2 places), activity or a market forces factor that is not a
    number, a treatment function code that is not 3 characters, an invalid NHS number.

    [bold]Warnings[/bold] accept it: a point of delivery this release does not know, activity at BLOCK, CQUIN or
    ADJUSTMENT, money at an activity point of delivery with no activity, negative activity, a market forces factor
    outside 0.9-1.3, a date and time created that is not ISO, a row repeating another.

    Every problem names the file, line, column (as the file spells it), value and what was expected.

    [bold]Example[/bold]: carecontracts monitoring check acm-2025-10.csv plcm-2025-10.csv --year 2025-26
    """
    from carecontracts.data.monitoring import FileKind, read_monitoring

    chosen = _year(year, workspace)
    read = [read_monitoring(path, FileKind(kind.value) if kind else None, chosen, str(path), keep=False) for path in files]
    if chosen is None:
        _cli().err.print("[yellow]Note:[/yellow] no --year and no workspace here, so FINANCIAL YEAR was checked for its form only.")
    if _show(read):
        raise typer.Exit(PROBLEM_EXIT)


def _differences(result: "Reconciliation", title: str) -> None:
    """Each difference on a line of its own: where in both files, the place, the amounts."""
    cli = _cli()
    count = len(result.differences)
    cli.out.print(f"[bold]{title}: {count} difference{'s' if count != 1 else ''}[/bold]")
    for difference in result.differences:
        cli.out.print(f"  {difference}", soft_wrap=True, markup=False, highlight=False)


@monitoring_app.command("reconcile")
def reconcile(
    acm: Annotated[Path, typer.Option("--acm", help="The provider's ACM file for the month(s).")],
    plcm: Annotated[Optional[Path], typer.Option("--plcm", help="The PLCM file to add up to the ACM's rows.")] = None,
    invoice: Annotated[Optional[Path], typer.Option("--invoice", help="Invoices: a CSV of provider, commissioner, month (2025-10), amount [, invoice_number], "
                                                    "a row per invoice or credit note.")] = None,
    invoice_total: Annotated[Optional[str], typer.Option("--invoice-total", metavar="AMOUNT", help="The invoiced total, when the ACM is for one provider, commissioner "
                                                         "and month (e.g. 2050612.91).")] = None,
    year: YearOption = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Reconcile PLCM to ACM and ACM to the invoice; list every difference, located.

    [bold]PLCM to ACM[/bold]: the PLCM's TOTAL COST and ACTIVITY COUNT are added up to the ACM's grain — the columns both
    files carry of provider, commissioner, FINANCIAL YEAR and MONTH, POINT OF DELIVERY CODE, LOCAL POINT OF DELIVERY CODE,
    ACTIVITY TREATMENT FUNCTION CODE, TARIFF CODE, LOCAL CONTRACT CODE, LOCAL CONTRACT MONITORING CODE, COMMISSIONED
    SERVICE CATEGORY CODE and SERVICE CODE — and compared with the ACM's actual price and activity. DRUG and DEVICE rows
    are left out (they reconcile to the drugs and devices PLCMs).

    [bold]ACM to invoice[/bold]: the ACM's money per provider, commissioner and month against what was invoiced.

    Each difference shows the ACM's lines, the other file's rows (how many, and their first lines), the place and
    the amounts: a penny is a difference.

    [bold]Exit status[/bold]: 0 when everything agrees, 1 when there are differences (listed), 2 when a file has errors
    (they are listed, and nothing is reconciled).

    [bold]Example[/bold]: carecontracts monitoring reconcile --acm acm-2025-10.csv --plcm plcm-2025-10.csv --invoice invoices.csv
    """
    from carecontracts.data.monitoring import (
        FileKind,
        Tallies,
        invoice_total as one_total,
        read_invoices,
        read_monitoring,
        reconcile_invoices,
        reconcile_plcm,
    )

    cli = _cli()
    if plcm is None and invoice is None and invoice_total is None:
        raise cli.fail(ProblemsError([Problem("reconcile", "nothing to reconcile the ACM with", expected="--plcm FILE, --invoice FILE or --invoice-total AMOUNT")]))
    if invoice is not None and invoice_total is not None:
        raise cli.fail(ProblemsError([Problem("--invoice-total", "given with --invoice", expected="one of --invoice FILE or --invoice-total AMOUNT")]))
    chosen = _year(year, workspace)
    files = [read_monitoring(acm, FileKind.ACM, chosen, str(acm))]
    tallies = None
    if plcm is not None:
        tallies = Tallies(FileKind.PLCM)
        files.append(read_monitoring(plcm, FileKind.PLCM, chosen, str(plcm), keep=False, on_record=tallies.add))
    if _show(files):
        cli.err.print("[red]Files with errors are not reconciled.[/red]")
        raise typer.Exit(PROBLEM_EXIT)
    results = []
    try:
        if plcm is not None:
            results.append(("PLCM to ACM", "PLCM", reconcile_plcm(files[0], files[1], tallies)))
        if invoice is not None or invoice_total is not None:
            if invoice is not None:
                invoices = read_invoices(invoice, str(invoice))
            else:
                try:
                    amount = Decimal(str(invoice_total).replace(",", "").lstrip("£"))
                except InvalidOperation:
                    raise ProblemsError([Problem("--invoice-total", f"{invoice_total!r} is not an amount", value=invoice_total,
                                                 expected="pounds and pence, e.g. 2050612.91")]) from None
                invoices = one_total(files[0], amount)
            results.append(("ACM to invoice", "invoiced", reconcile_invoices(files[0], invoices)))
    except ProblemsError as error:
        raise cli.fail(error) from None
    found = 0
    for title, other, result in results:
        if result.differences:
            _differences(result, title)
        found += len(result.differences)
        left = "".join(f"; {pod} {cli.money(amount)} left to its own file" for pod, amount in sorted(result.separate.items()))
        cli.out.print(f"{title}: {result.places:,} places compared, {result.agreed:,} agree, {len(result.differences):,} differ{'s' if len(result.differences) == 1 else ''}; "
                      f"ACM {cli.money(result.acm_total)}, {other} {cli.money(result.other_total)}{left}.")
    if found:
        raise typer.Exit(DIFFERENCES_EXIT)


def _codes(pairs: list[str], table: Path | None) -> dict[str, str]:
    """PARTY=CODE options, and a CSV of party, ods_code."""
    problems, codes = [], {}
    if table is not None:
        try:
            with table.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                if not {"party", "ods_code"} <= set(reader.fieldnames or []):
                    problems.append(Problem(str(table), "missing columns", line=1, expected="columns party, ods_code"))
                else:
                    for row in reader:
                        codes[row["party"].strip()] = row["ods_code"].strip()
        except OSError as error:
            problems.append(Problem(str(table), f"cannot be read: {error.strerror}", expected="a CSV of party, ods_code"))
    for pair in pairs:
        party, sign, code = pair.partition("=")
        if not sign or not party.strip() or not code.strip():
            problems.append(Problem("--code", f"{pair!r} is not PARTY=CODE", value=pair, expected="e.g. --code ICB-NCL=QMJ"))
        else:
            codes[party.strip()] = code.strip()
    if problems:
        raise ProblemsError(problems)
    return codes


@monitoring_app.command("write-acm")
def write_acm(
    out_path: Annotated[Path, typer.Argument(metavar="OUT.csv", help="The ACM file to write.")],
    period: Annotated[str, typer.Option(help="A month (2025-10), a range (2025-04..2025-10) or 'year'.")],
    workspace: WorkspaceOption = Path("."),
    code: Annotated[Optional[list[str]], typer.Option("--code", metavar="PARTY=ODS", help="The ODS code of a party of the contracts, e.g. "
                                                      "--code ICB-NCL=QMJ --code ACUTE-RFH=RAL. Repeatable.")] = None,
    codes: Annotated[Optional[Path], typer.Option(help="A CSV of party, ods_code: the ODS code of each party.")] = None,
    created: Annotated[Optional[str], typer.Option(help="DATE AND TIME DATA SET CREATED, e.g. 2025-11-05T09:30:00 (default: now).")] = None,
) -> None:
    """Write the commissioner's priced view of a period as an ACM, from the last payment run's statements.

    A row per statement line: the payee as provider and the payer as commissioner (by ODS code: --code or --codes; a
    party without one is an error naming it), the contract as LOCAL CONTRACT CODE, the component as LOCAL CONTRACT
    MONITORING CODE, the service as LOCAL POINT OF DELIVERY CODE, the currency as TARIFF CODE, the basis as CONTRACT
    MONITORING ADDITIONAL DESCRIPTION, the amount as CONTRACT MONITORING ACTUAL PRICE.

    Components paid for activity (activity, cost and volume, marginal rate) carry their units as actual activity, at
    the point of delivery their service names (OTHER when it names none or several). The rest carry money only: block,
    low-volume block, capitation and an aligned payment's fixed element at BLOCK; quality and outcome incentives at
    CQUIN; an aligned payment's variable element, best-practice top-ups, withholds, risk and gain shares and shared
    savings at ADJUSTMENT.

    The file is read back and checked before the command ends: its total is the statements' total to the penny.

    [bold]Example[/bold]: carecontracts monitoring write-acm acm-view-2025-10.csv --period 2025-10 --codes ods-codes.csv
    """
    from carecontracts.data.monitoring import FileKind, placements, priced_view, read_monitoring, write_monitoring
    from carecontracts.payments import parse_period, stored, workspace_contracts

    cli = _cli()
    space = cli.open_workspace(workspace)
    cli.check_outputs({"OUT.csv": (out_path, ("csv",))})
    try:
        months = parse_period(period, space.year)
        parties = _codes(code or [], codes)
        try:
            stamp = dt.datetime.fromisoformat(created) if created else dt.datetime.now().replace(microsecond=0)
        except ValueError:
            raise ProblemsError([Problem("--created", f"{created!r} is not a date and time", value=created, expected="e.g. 2025-11-05T09:30:00")]) from None
        lines = stored(space, "statements", "WHERE month BETWEEN ? AND ? ORDER BY contract, component, payer, payee, month, service, currency",
                       [months[0], months[-1]])
        if lines is None:
            raise ProblemsError([Problem(space.relative(space.warehouse_path), "no statements yet", expected="run `carecontracts pay` first")])
        records = priced_view(lines, placements(workspace_contracts(space)), parties, stamp, months)
    except ProblemsError as error:
        raise cli.fail(error) from None
    written = write_monitoring(out_path, FileKind.ACM, records)
    again = read_monitoring(out_path, FileKind.ACM, space.year, str(out_path), keep=False)
    if _show([again]):
        raise typer.Exit(PROBLEM_EXIT)
    statements = sum((r.number("CONTRACT MONITORING ACTUAL PRICE") for r in records), Decimal(0))
    cli.out.print(f"Wrote {written:,} rows to {out_path}: {cli.money(again.total)}, the statements' total of {cli.money(statements)}.")


@monitoring_app.command("spec")
def spec(kind: Annotated[Optional[KindChoice], typer.Argument(help="acm, plcm or iap (default: all three).")] = None) -> None:
    """Show the specification version followed and every column: its status (M mandatory, R required where it
    applies, O optional) and what its values must be."""
    from carecontracts.data.monitoring import ELEMENTS, SPECIFICATION, FileKind

    cli = _cli()
    cli.out.print(SPECIFICATION)
    for chosen in [FileKind(kind.value)] if kind else list(FileKind):
        table = Table(title=chosen.long_name, title_justify="left")
        for name in ("column", "status", "check", "also read as"):
            table.add_column(name)
        for element in ELEMENTS[chosen]:
            table.add_row(element.name, element.status.value, element.check.value, ", ".join(element.aliases))
        cli.out.print(table)
