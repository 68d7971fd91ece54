"""Reconcile the contract-monitoring files: PLCM to ACM, and ACM to the invoice.

The specification says the ACM is the monthly reconciliation statement: its total must equal
the invoice the provider raised, and the PLCM's total must equal the ACM's less drugs and
devices (those are detailed in their own patient-level files). A receiving office checks more
than the totals: the PLCM's rows are added up to the grain of the ACM's rows (provider,
commissioner, year, month, point of delivery, treatment function, tariff code, local contract
codes — those columns both files carry) and every place where the two disagree, by a penny or
by one unit of activity, is a difference, located by the ACM's lines and the PLCM's rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from carecontracts.data.monitoring.read import MonitoringFile, Record, financial_period, month_of
from carecontracts.data.monitoring.spec import (
    AMOUNT,
    COMMISSIONER,
    FINANCIAL_MONTH,
    FINANCIAL_YEAR,
    GRAIN,
    POD,
    PROVIDER,
    QUANTITY,
    SEPARATE_FLOW_PODS,
    FileKind,
)
from carecontracts.money import format_money
from carecontracts.periods import MONTH_PATTERN
from carecontracts.problems import Problem, ProblemsError

SHOWN_LINES = 5  # lines of the rows behind a total, listed in a difference (the rest are counted)
SHORT_NAMES = {
    PROVIDER: "provider", COMMISSIONER: "commissioner", FINANCIAL_YEAR: "year", FINANCIAL_MONTH: "month",
    POD: "POD", "LOCAL POINT OF DELIVERY CODE": "local POD", "ACTIVITY TREATMENT FUNCTION CODE": "TFC",
    "TARIFF CODE": "tariff", "LOCAL CONTRACT CODE": "contract", "LOCAL CONTRACT MONITORING CODE": "line",
    "COMMISSIONED SERVICE CATEGORY CODE": "service category", "SERVICE CODE": "service",
}


@dataclass
class Tally:
    """Rows added up: their money, activity, count and the first lines."""

    amount: Decimal = Decimal(0)
    activity: Decimal = Decimal(0)
    rows: int = 0
    lines: list[int] = field(default_factory=list)

    def add(self, amount: Decimal, activity: Decimal, lines: list[int], rows: int = 1) -> None:
        self.amount += amount
        self.activity += activity
        self.rows += rows
        self.lines.extend(lines[: max(0, SHOWN_LINES - len(self.lines))])


class Tallies:
    """A file's rows added up by every grain column (blank as ''), one row at a time, so a
    patient-level file of millions of rows need not be held: `read_monitoring(...,
    keep=False, on_record=tallies.add)`."""

    def __init__(self, kind: FileKind):
        self.kind = kind
        self.by_place: dict[tuple[str, ...], Tally] = {}

    def add(self, record: Record) -> None:
        key = tuple(record.text(name) for name in GRAIN)
        self.by_place.setdefault(key, Tally()).add(record.number(AMOUNT[self.kind]), record.number(QUANTITY[self.kind]), [record.line])

    @classmethod
    def of(cls, file: MonitoringFile) -> "Tallies":
        """The tallies of a file read with its rows kept."""
        tallies = cls(file.kind)
        for record in file.records:
            tallies.add(record)
        return tallies

    def collapse(self, grain: list[str]) -> dict[tuple[str, ...], Tally]:
        """Added up again to the columns of `grain` (a subset of GRAIN)."""
        keep = [GRAIN.index(name) for name in grain]
        result: dict[tuple[str, ...], Tally] = {}
        for key, tally in self.by_place.items():
            result.setdefault(tuple(key[i] for i in keep), Tally()).add(tally.amount, tally.activity, tally.lines, tally.rows)
        return result


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the file, the lines of the rows added (the first few), how
    many rows, their money and activity."""

    source: str
    lines: tuple[int, ...]
    rows: int
    amount: Decimal
    activity: Decimal | None = None

    def where(self) -> str:
        if self.rows == 0:
            return f"{self.source} (no rows)"
        if not self.lines:
            return self.source
        if self.rows == 1:
            return f"{self.source}:{self.lines[0]}"
        shown = ", ".join(str(n) for n in self.lines)
        more = f" and {self.rows - len(self.lines):,} more" if self.rows > len(self.lines) else ""
        return f"{self.source} ({self.rows:,} rows: lines {shown}{more})"


@dataclass(frozen=True)
class Difference:
    """A place where the ACM and the other file (PLCM or invoice) disagree."""

    check: str  # "PLCM to ACM" or "ACM to invoice"
    place: tuple[tuple[str, str], ...]  # (column, value) of the grain
    acm: Side
    other: Side

    @property
    def amount(self) -> Decimal:
        """ACM money less the other side's: positive when the ACM claims more."""
        return self.acm.amount - self.other.amount

    @property
    def activity(self) -> Decimal | None:
        if self.acm.activity is None or self.other.activity is None:
            return None
        return self.acm.activity - self.other.activity

    def place_text(self) -> str:
        return ", ".join(f"{SHORT_NAMES.get(name, name)} {value or '(blank)'}" for name, value in self.place)

    def __str__(self) -> str:
        other = "PLCM" if self.check == "PLCM to ACM" else "invoice"
        parts = []
        if self.amount != 0:
            more = "more" if self.amount > 0 else "less"
            parts.append(f"ACM {format_money(self.acm.amount)} against {other} {format_money(self.other.amount)}: "
                         f"the ACM claims {format_money(abs(self.amount))} {more}")
        if self.activity:
            parts.append(f"ACM activity {_plain(self.acm.activity)} against {other} {_plain(self.other.activity)}")
        return f"{self.acm.where()} and {self.other.where()} [{self.place_text()}]: " + "; ".join(parts)


def _plain(value: Decimal | None) -> str:
    return "-" if value is None else format(value.normalize(), "f")


@dataclass
class Reconciliation:
    """The outcome: every difference, with what was compared."""

    grain: list[str]
    differences: list[Difference] = field(default_factory=list)
    places: int = 0  # places compared
    acm_total: Decimal = Decimal(0)
    other_total: Decimal = Decimal(0)
    separate: dict[str, Decimal] = field(default_factory=dict)  # ACM money left to the drugs and devices files

    @property
    def agreed(self) -> int:
        return self.places - len(self.differences)


def _order(key: tuple[str, ...]) -> tuple:
    """Places in a natural order: month 7 before month 10."""
    return tuple((0, int(v), "") if v.isdigit() else (1, 0, v) for v in key)


def _separate_pod(key: tuple[str, ...], grain: list[str]) -> str | None:
    if POD not in grain:
        return None
    pod = key[grain.index(POD)]
    return pod if pod in SEPARATE_FLOW_PODS else None


def reconcile_plcm(acm: MonitoringFile, plcm: MonitoringFile, plcm_tallies: Tallies | None = None) -> Reconciliation:
    """PLCM rows added up to the ACM's grain against the ACM's rows: every place whose money
    or activity differs. Rows at DRUG and DEVICE points of delivery are left out of both
    sides (they reconcile to the drugs and devices files) and their ACM money reported."""
    grain = [name for name in GRAIN if name in acm.columns and name in plcm.columns]
    tallies = plcm_tallies if plcm_tallies is not None else Tallies.of(plcm)
    left = Tallies.of(acm).collapse(grain)
    right = tallies.collapse(grain)
    result = Reconciliation(grain)
    for key in sorted(set(left) | set(right), key=_order):
        pod = _separate_pod(key, grain)
        a = left.get(key, Tally())
        b = right.get(key, Tally())
        if pod is not None:
            result.separate[pod] = result.separate.get(pod, Decimal(0)) + a.amount
            continue
        result.places += 1
        result.acm_total += a.amount
        result.other_total += b.amount
        if a.amount != b.amount or a.activity != b.activity:
            result.differences.append(Difference(
                "PLCM to ACM", tuple(zip(grain, key)),
                Side(acm.source, tuple(a.lines), a.rows, a.amount, a.activity),
                Side(plcm.source, tuple(b.lines), b.rows, b.amount, b.activity),
            ))
    return result


@dataclass(frozen=True)
class Invoice:
    """What a provider invoiced a commissioner for a month (the sum of its lines)."""

    provider: str
    commissioner: str
    month: dt.date
    amount: Decimal
    source: str
    lines: tuple[int, ...] = ()


INVOICE_COLUMNS = ("provider", "commissioner", "month", "amount")
INVOICE_OPTIONAL = ("invoice_number",)
AMOUNT_PATTERN = re.compile(r"^-?\d+(?:\.\d{1,2})?$")


def read_invoices(path: Path, source: str | None = None) -> list[Invoice]:
    """An invoice file: `provider, commissioner, month, amount` (+ `invoice_number`), a row per
    invoice or credit note, month as 2025-10, amount in pounds and pence. Raises with every
    problem located."""
    name = source or str(path)
    problems: list[Problem] = []
    invoices: list[Invoice] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            headers = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in INVOICE_COLUMNS if c not in headers]
            unknown = [h for h in headers if h not in INVOICE_COLUMNS + INVOICE_OPTIONAL]
            if missing:
                problems.append(Problem(name, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}", line=1,
                                        expected="columns " + ", ".join(INVOICE_COLUMNS)))
            for header in unknown:
                problems.append(Problem(name, f"unknown column {header!r}", line=1, field=header, value=header,
                                        expected="columns " + ", ".join(INVOICE_COLUMNS + INVOICE_OPTIONAL)))
            if problems:
                raise ProblemsError(problems)
            for index, row in enumerate(reader):
                line = index + 2
                row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                bad = False
                for column in ("provider", "commissioner"):
                    if not row[column]:
                        problems.append(Problem(name, "is blank", line=line, field=column, value="", expected=f"the {column}'s code"))
                        bad = True
                if not MONTH_PATTERN.match(row["month"]) or not 1 <= int(row["month"][5:7]) <= 12:
                    problems.append(Problem(name, f"{row['month']!r} is not a month", line=line, field="month", value=row["month"], expected="a month like 2025-10"))
                    bad = True
                if not AMOUNT_PATTERN.match(row["amount"]):
                    problems.append(Problem(name, f"{row['amount']!r} is not an amount", line=line, field="amount", value=row["amount"],
                                            expected="pounds and pence written plainly, e.g. 1234.56"))
                    bad = True
                if not bad:
                    month = dt.date(int(row["month"][:4]), int(row["month"][5:7]), 1)
                    invoices.append(Invoice(row["provider"], row["commissioner"], month, Decimal(row["amount"]), name, (line,)))
    except OSError as error:
        problems.append(Problem(name, f"cannot be read: {error.strerror}", expected="a CSV file of invoices"))
    if problems:
        raise ProblemsError(problems)
    return invoices


def invoice_total(acm: MonitoringFile, amount: Decimal, source: str = "--invoice-total") -> list[Invoice]:
    """One invoiced total for an ACM of one provider, commissioner and month."""
    groups = sorted({(r.text(PROVIDER), r.text(COMMISSIONER), r.text(FINANCIAL_YEAR), r.text(FINANCIAL_MONTH)) for r in acm.records})
    if len(groups) != 1:
        raise ProblemsError([Problem(source, f"one total given for {len(groups)} provider, commissioner and month groups in {acm.source}",
                                     value=str(amount), expected="an invoice file (--invoice) with a row per provider, commissioner and month")])
    provider, commissioner, year, month = groups[0]
    return [Invoice(provider, commissioner, month_of(year, int(month)), amount, source)]


def reconcile_invoices(acm: MonitoringFile, invoices: list[Invoice]) -> Reconciliation:
    """The ACM's money per provider × commissioner × month against what was invoiced: every
    group where they differ, and every group on one side only."""
    grain = [PROVIDER, COMMISSIONER, FINANCIAL_YEAR, FINANCIAL_MONTH]
    left = Tallies.of(acm).collapse(grain)
    right: dict[tuple[str, ...], Tally] = {}
    sources: dict[tuple[str, ...], str] = {}
    for invoice in invoices:
        year, month = financial_period(invoice.month)
        key: tuple[str, ...] = (invoice.provider, invoice.commissioner, year, str(month))
        right.setdefault(key, Tally()).add(invoice.amount, Decimal(0), list(invoice.lines))
        sources[key] = invoice.source
    default_source = invoices[0].source if invoices else "invoices"
    result = Reconciliation(grain)
    for key in sorted(set(left) | set(right), key=_order):
        a = left.get(key, Tally())
        b = right.get(key, Tally())
        result.places += 1
        result.acm_total += a.amount
        result.other_total += b.amount
        if a.amount != b.amount:
            result.differences.append(Difference(
                "ACM to invoice", tuple(zip(grain, key)),
                Side(acm.source, tuple(a.lines), a.rows, a.amount),
                Side(sources.get(key, default_source), tuple(b.lines), b.rows, b.amount),
            ))
    return result
