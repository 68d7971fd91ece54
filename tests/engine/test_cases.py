"""Worked examples a contracts manager can read: every file in tests/cases/ is one case.

A case is a contract, the few activity rows (and prices, plans, population, outcomes) it
is paid on, and the statement lines it must produce, each amount worked by hand in the
case's `why`. Each case runs on DuckDB and (marked `spark`) on Spark through the public
entry point, `statement_lines`. The schema is read strictly: an unknown key, or a value
of the wrong form, fails the case naming its file, line and key. The schema is in
tests/cases/README.md.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from carecontracts.data.books import APC_COLUMNS, read_books
from carecontracts.data.schemas import OUTCOMES
from carecontracts.examples.prices_workbook import write_prices_workbook
from carecontracts.engine.backend import Engine
from carecontracts.engine.run import RunTables, statement_lines
from carecontracts.language.load import parse_contract
from carecontracts.language.model import ComponentTerms, Contract
from carecontracts.language.yaml_lines import LocatedDocument, format_path, load_yaml
from carecontracts.periods import FinancialYear, add_months, month_label
from carecontracts.problems import ProblemsError
from tests.helpers import activity as activity_table
from tests.helpers import population as population_table
from tests.helpers import prices as price_table

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"
CASE_FILES = sorted(CASES.glob("*.yaml"))

# The keys each part of a case may have (required ones listed first in the README).
CASE_KEYS = {"name", "why", "year", "contract", "contracts", "activity", "prices", "books", "plans", "population", "outcomes", "expect", "total", "xfail"}
ACTIVITY_KEYS = {
    "count", "month", "activity_id", "patient_id", "provider", "commissioner", "service", "currency", "pod",
    "start_date", "end_date", "quantity", "admission_method", "age", "cost", "compliant", "referral_date", "site",
    "critical_care_days", "rehabilitation_days", "palliative_days",
}
# An HRG's row of a prices workbook's APC & OPROC sheet: its columns but the code.
BOOK_KEYS = {field for field in APC_COLUMNS.values() if field != "currency"}
PRICE_KEYS = {"from", "to", "value"}
PLAN_KEYS = {"contract", "service", "month", "planned_value", "planned_quantity", "commissioner"}
POPULATION_KEYS = {"commissioner", "month", "band", "persons"}
OUTCOME_KEYS = {"count", "provider", "instrument", "pre", "post", "date", "predicted"}
EXPECT_KEYS = {"contract", "component", "payer", "payee", "month", "service", "currency", "amount", "quantity", "rate", "basis", "basis_contains"}
LINE_KEYS = ("contract", "component", "payer", "payee", "service", "currency")
MONEY = re.compile(r"^(-)?£?(-)?(\d{1,3}(?:,\d{3})*|\d+)(\.\d{1,2})?$")


class CaseError(Exception):
    """A case file that does not follow the schema: every problem, with file and line."""


@dataclass
class Expected:
    """One expected line (or, without a month, the sum of a year's lines)."""

    label: str
    where: dict[str, str]
    month: dt.date | None
    amount: Decimal
    quantity: Decimal | None = None
    rate: Decimal | None = None
    basis: str | None = None
    basis_contains: list[str] = field(default_factory=list)

    def selects(self, line: dict[str, Any]) -> bool:
        if self.month is not None and line["month"] != self.month:
            return False
        return all(line[key] == value for key, value in self.where.items())

    def describe(self) -> str:
        parts = [f"{key} {value}" for key, value in self.where.items()]
        parts.append(month_label(self.month) if self.month else "all months")
        return ", ".join(parts)


@dataclass
class Case:
    source: str
    name: str
    why: str
    year: FinancialYear
    contracts: list[Contract]
    activity: pa.Table | None
    prices: pa.Table | None
    books: pa.Table | None
    plans: pa.Table | None
    population: pa.Table | None
    outcomes: pa.Table | None
    expected: list[Expected]
    totals: dict[str, Decimal]
    xfail: str | None


class Reader:
    """Reads one case document, collecting every problem before raising them together."""

    def __init__(self, document: LocatedDocument):
        self.document = document
        self.problems: list[str] = []

    def problem(self, path: tuple, message: str) -> None:
        line = self.document.line_of(path)
        place = f"{self.document.source}:{line}" if line else self.document.source
        self.problems.append(f"{place} {format_path(path) or '(case)'}: {message}")

    def mapping(self, node: Any, path: tuple, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(node, dict):
            self.problem(path, f"expected a mapping of keys to values, not {node!r}")
            return {}
        for key in node:
            if key not in allowed:
                self.problem(path + (key,), f"unknown key '{key}' (known here: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in node:
                self.problem(path, f"'{key}' is required")
        return {k: v for k, v in node.items() if k in allowed}

    def named(self, node: Any, path: tuple) -> dict[str, Any]:
        """A mapping whose keys are names the case chooses (price lists, components)."""
        if not isinstance(node, dict):
            self.problem(path, f"expected a mapping of names to values, not {node!r}")
            return {}
        return node

    def items(self, node: Any, path: tuple) -> list[Any]:
        if not isinstance(node, list):
            self.problem(path, f"expected a list, not {node!r}")
            return []
        return node

    def text(self, node: Any, path: tuple) -> str | None:
        if not isinstance(node, str) or not node.strip():
            self.problem(path, f"expected some text, not {node!r}")
            return None
        return node.strip()

    def number(self, node: Any, path: tuple, places: int | None = None) -> Decimal | None:
        if isinstance(node, bool) or not isinstance(node, (int, Decimal)):
            self.problem(path, f"expected a number, not {node!r}")
            return None
        value = Decimal(node)
        if places is not None and value != value.quantize(Decimal(1).scaleb(-places)):
            self.problem(path, f"{value} has more than {places} decimal places")
            return None
        return value

    def whole(self, node: Any, path: tuple, minimum: int) -> int | None:
        if isinstance(node, bool) or not isinstance(node, int) or node < minimum:
            self.problem(path, f"expected a whole number, {minimum} or more, not {node!r}")
            return None
        return node

    def money(self, node: Any, path: tuple) -> Decimal | None:
        """An amount: a number with at most two places, or text such as -£1,500,000.00."""
        if isinstance(node, str):
            match = MONEY.match(node.strip())
            if not match or (match.group(1) and match.group(2)):
                self.problem(path, f"{node!r} is not an amount of money (e.g. 1_500_000.00 or -£1,500,000.00)")
                return None
            sign = "-" if match.group(1) or match.group(2) else ""
            return Decimal(sign + match.group(3).replace(",", "") + (match.group(4) or ""))
        if isinstance(node, Decimal) and abs(node) >= Decimal("1e13"):
            self.problem(path, "write amounts of £10 trillion or more as text, so no float rounds them")
            return None
        return self.number(node, path, places=2)

    def date(self, node: Any, path: tuple) -> dt.date | None:
        if not isinstance(node, dt.date):
            self.problem(path, f"expected a date (YYYY-MM-DD), not {node!r}")
            return None
        return node

    def months(self, node: Any, path: tuple) -> list[dt.date]:
        """`2025-04`, a range `2025-04..2026-02` (every month in it), or a list of these."""
        if isinstance(node, list):
            return [m for index, item in enumerate(node) for m in self.months(item, path + (index,))]
        parts = node.split("..") if isinstance(node, str) else []
        try:
            first, last = (_month(parts[0]), _month(parts[-1])) if len(parts) in (1, 2) else (None, None)
        except ValueError:
            first = last = None
        if first is None or last is None or last < first:
            self.problem(path, f"{node!r} is not a month (2025-04), a range of months (2025-04..2026-02) or a list of them")
            return []
        result = [first]
        while result[-1] < last:
            result.append(add_months(result[-1], 1))
        return result

    def raise_if_any(self) -> None:
        if self.problems:
            raise CaseError(f"{len(self.problems)} problem(s) in case {self.document.source}:\n  " + "\n  ".join(self.problems))


def _month(text: str) -> dt.date:
    match = re.match(r"^(\d{4})-(\d{2})$", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(text)
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def _sub_document(document: LocatedDocument, prefix: tuple) -> LocatedDocument:
    """The part of a case under `prefix` (a contract) as a document of its own, keeping the
    case file's line numbers, so a contract's problems point into the case file."""
    node: Any = document.data
    for part in prefix:
        node = node[part]
    lines = {path[len(prefix):]: line for path, line in document.lines.items() if path[: len(prefix)] == prefix and len(path) > len(prefix)}
    return LocatedDocument(document.source, node, lines)


def source_name(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Defaults:
    """What rows leave out: the first contract's parties, and the year's first month."""

    contract: str
    provider: str
    commissioner: str
    year: FinancialYear

    @classmethod
    def of(cls, contracts: list[Contract], year: FinancialYear) -> "Defaults":
        if not contracts:  # the contracts' problems are reported; carry on to find the rest
            return cls("", "PROV", "ICB", year)
        first = contracts[0]
        return cls(first.id, first.provider, first.commissioner_shares[0].id, year)


def load_case(path: Path) -> Case:
    """Read and check one case file; raise CaseError listing every problem in it."""
    document = load_yaml(path, source_name(path))
    read = Reader(document)
    top = read.mapping(document.data, (), CASE_KEYS, ("name", "why", "expect"))
    read.raise_if_any()
    name = read.text(top.get("name"), ("name",)) or ""
    why = read.text(top.get("why"), ("why",)) or ""
    xfail = read.text(top["xfail"], ("xfail",)) if "xfail" in top else None
    year = FinancialYear(dt.date(2025, 4, 1))
    if "year" in top:
        try:
            year = FinancialYear.parse(str(top["year"]))
        except ValueError as error:
            read.problem(("year",), str(error))
    price_lists = read_prices(read, top.get("prices", {}), year)
    books = read_books_of(read, top.get("books", {}))
    contracts = read_contracts(read, top, set(price_lists) | {f"{name}.xlsx" for name in books})
    defaults = Defaults.of(contracts, year)
    rows = read_activity(read, top.get("activity", []), defaults)
    plans = read_plans(read, top.get("plans", []), defaults)
    people = read_population(read, top.get("population", []), defaults)
    episodes = read_outcomes(read, top.get("outcomes", []), defaults)
    expected = read_expected(read, top.get("expect"), contracts, year)
    totals: dict[str, Decimal] = {}
    for component, value in read.named(top.get("total", {}), ("total",)).items():
        amount = read.money(value, ("total", component))
        if amount is not None:
            totals[str(component)] = amount
    read.raise_if_any()
    # Only a case with no problems is turned into tables.
    return Case(
        document.source, name, why, year, contracts,
        activity=activity_table(rows) if rows else None,
        prices=pa.concat_tables([price_table(entries, list_name, str(year.start), str(year.end)) for list_name, entries in price_lists.items()]) if price_lists else None,
        books=books_table(books, read) if books else None,
        plans=plans_table(plans) if plans else None,
        population=population_table(people) if people else None,
        outcomes=pa.Table.from_pylist(episodes, schema=OUTCOMES.arrow_schema()) if episodes else None,
        expected=expected,
        totals=totals,
        xfail=xfail,
    )


def read_prices(read: Reader, node: Any, year: FinancialYear) -> dict[str, list[tuple[str, str, str]]]:
    """Price lists: {list: {currency: unit price}}, a price valid all year, or a list of
    dated prices [{from:, to:, value:}] (whole months; `to` open means to the year's end)."""
    price_lists: dict[str, list[tuple[str, str, str]]] = {}
    for list_name, prices in read.named(node, ("prices",)).items():
        path = ("prices", list_name)
        if not isinstance(prices, dict) or not prices:
            read.problem(path, "expected currency: unit price pairs, e.g. {HRG1: 168}")
            continue
        price_lists[list_name] = []
        for currency, price in prices.items():
            dated = price if isinstance(price, list) else [{"value": price}]
            for index, item in enumerate(dated):
                where = path + (currency, index) if isinstance(price, list) else path + (currency,)
                entry = read.mapping(item, where, PRICE_KEYS, ("from", "value")) if isinstance(price, list) else item
                value = read.number(entry.get("value"), where + (("value",) if isinstance(price, list) else ()), places=4)
                start = read.date(entry["from"], where + ("from",)) if "from" in entry else year.start
                end = read.date(entry["to"], where + ("to",)) if "to" in entry else year.end
                if value is not None and start and end:
                    price_lists[list_name].append((str(currency), str(value), f"{start}..{end}"))
    return price_lists


def read_books_of(read: Reader, node: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Prices workbooks: {book: {HRG: {column: value}}}, each HRG a row of the APC & OPROC
    sheet in the published layout (the columns named as in data.books.APC_COLUMNS)."""
    books: dict[str, list[tuple[Any, ...]]] = {}
    fields = [field for field in APC_COLUMNS.values() if field != "currency"]
    for book, hrgs in read.named(node, ("books",)).items():
        path = ("books", book)
        if not isinstance(hrgs, dict) or not hrgs:
            read.problem(path, "expected HRG: {column: value} pairs, e.g. {HN12F: {elective: 6000, elective_trim: 5}}")
            continue
        books[str(book)] = []
        for hrg, row in hrgs.items():
            cells = read.mapping(row, path + (hrg,), BOOK_KEYS)
            # A percent cell holds its fraction, as a spreadsheet formatted in percent keeps it.
            percent = cells.get("short_stay_percent")
            if isinstance(percent, (int, Decimal)):
                cells["short_stay_percent"] = float(Decimal(percent) / 100)
            books[str(book)].append((str(hrg), *(_cell(cells.get(field)) for field in fields)))
    return books


def _cell(value: Any) -> Any:
    """A case's value as a workbook cell holds it (whole numbers as ints, others as text)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def books_table(books: dict[str, list[tuple[Any, ...]]], read: Reader) -> pa.Table:
    """The case's books written as workbooks in the published layout, then read back as `pay` reads them."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        paths = [write_prices_workbook(Path(folder) / f"{name}.xlsx", rows, None, None) for name, rows in books.items()]
        return read_books(paths, lambda p: f"books.{p.stem}")


def read_contracts(read: Reader, top: dict[str, Any], price_lists: set[str]) -> list[Contract]:
    """One contract under `contract:`, or several under `contracts:`, checked by the
    contract language itself; their problems point at the case file's lines."""
    if ("contract" in top) == ("contracts" in top):
        read.problem((), "give 'contract' (one) or 'contracts' (a list), not both or neither")
        return []
    prefixes: list[tuple] = [("contract",)] if "contract" in top else [("contracts", i) for i in range(len(read.items(top["contracts"], ("contracts",))))]
    contracts: list[Contract] = []
    for prefix in prefixes:
        parsed, problems = parse_contract(_sub_document(read.document, prefix), price_lists)
        read.problems += [f"{problem} (in {format_path(prefix)})" for problem in problems]
        if parsed is not None and not problems:
            contracts.append(parsed)
    return contracts


def read_activity(read: Reader, node: Any, defaults: Defaults) -> list[dict[str, Any]]:
    """Activity rows, each repeated `count` times in each of its months; every column not
    given takes a default (tests/cases/README.md)."""
    rows: list[dict[str, Any]] = []
    for index, item in enumerate(read.items(node, ("activity",))):
        path = ("activity", index)
        row = read.mapping(item, path, ACTIVITY_KEYS)
        count = read.whole(row.pop("count", 1), path + ("count",), minimum=1)
        if "month" in row and ("end_date" in row or "start_date" in row):
            read.problem(path + ("month",), "give 'month' or dates ('start_date', 'end_date'), not both")
        days = [m + dt.timedelta(days=14) for m in read.months(row.pop("month"), path + ("month",))] if "month" in row else [None]
        for key in ("start_date", "end_date", "referral_date"):
            if key in row:
                read.date(row[key], path + (key,))
        for key, places in (("quantity", 4), ("cost", 2)):
            if key in row:
                read.number(row[key], path + (key,), places=places)
        if "age" in row:
            read.whole(row["age"], path + ("age",), minimum=0)
        if "compliant" in row and row["compliant"] not in (0, 1):
            read.problem(path + ("compliant",), f"expected 0 or 1, not {row['compliant']!r}")
        for key in ("activity_id", "provider", "commissioner", "service", "currency", "pod", "admission_method", "site"):
            if key in row:
                row[key] = str(row[key])
        patient = row.pop("patient_id", None)
        for day_index, day in enumerate(days):
            for number in range(1, (count or 1) + 1):
                copy = {"provider": defaults.provider, "commissioner": defaults.commissioner} | row
                copy["activity_id"] = f"{row.get('activity_id', f'row{index}')}-{day_index}-{number}"
                # A named patient is the same person in every row naming it: P-1 … P-count.
                copy["patient_id"] = f"{patient}-{number}" if patient is not None else f"p{index}-{day_index}-{number}"
                if day is not None:
                    copy["start_date"] = copy["end_date"] = day
                copy.setdefault("end_date", copy.get("start_date", defaults.year.start + dt.timedelta(days=14)))
                rows.append(copy)
    return rows


def read_plans(read: Reader, node: Any, defaults: Defaults) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for index, item in enumerate(read.items(node, ("plans",))):
        path = ("plans", index)
        row = read.mapping(item, path, PLAN_KEYS, ("service", "month", "planned_value"))
        value = read.money(row.get("planned_value"), path + ("planned_value",)) if "planned_value" in row else None
        quantity = read.number(row.get("planned_quantity", 0), path + ("planned_quantity",), places=4)
        for month in read.months(row["month"], path + ("month",)) if "month" in row else []:
            rows.append({
                "contract": str(row.get("contract", defaults.contract)), "service": str(row.get("service")), "month": month,
                "planned_quantity": quantity, "planned_value": value,
                "commissioner": None if row.get("commissioner") is None else str(row["commissioner"]),
            })
    return rows


def plans_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Plan rows as data/plans holds them; `commissioner` only when a row names one."""
    columns = {
        "contract": pa.array([r["contract"] for r in rows], pa.string()),
        "service": pa.array([r["service"] for r in rows], pa.string()),
        "month": pa.array([r["month"] for r in rows], pa.date32()),
        "planned_quantity": pa.array([r["planned_quantity"] for r in rows], pa.decimal128(18, 4)),
        "planned_value": pa.array([r["planned_value"] for r in rows], pa.decimal128(18, 2)),
    }
    if any(r["commissioner"] is not None for r in rows):
        columns["commissioner"] = pa.array([r["commissioner"] for r in rows], pa.string())
    return pa.table(columns)


def read_population(read: Reader, node: Any, defaults: Defaults) -> list[tuple[str, dt.date, str, int]]:
    people: list[tuple[str, dt.date, str, int]] = []
    for index, item in enumerate(read.items(node, ("population",))):
        path = ("population", index)
        row = read.mapping(item, path, POPULATION_KEYS, ("month", "band", "persons"))
        persons = read.whole(row.get("persons"), path + ("persons",), minimum=0) if "persons" in row else None
        for month in read.months(row["month"], path + ("month",)) if "month" in row else []:
            people.append((str(row.get("commissioner", defaults.commissioner)), month, str(row.get("band")), persons or 0))
    return people


def read_outcomes(read: Reader, node: Any, defaults: Defaults) -> list[dict[str, Any]]:
    """Outcome records: `count` episodes each with a pre score 30 days before the post score
    (a score of null is left out, so the episode is unpaired)."""
    records: list[dict[str, Any]] = []
    for index, item in enumerate(read.items(node, ("outcomes",))):
        path = ("outcomes", index)
        row = read.mapping(item, path, OUTCOME_KEYS, ("instrument", "pre", "post"))
        count = read.whole(row.get("count", 1), path + ("count",), minimum=1) or 1
        post_day = (read.date(row["date"], path + ("date",)) if "date" in row else None) or dt.date(defaults.year.start.year, 6, 15)
        scores = {t: None if row.get(t) is None else read.number(row[t], path + (t,)) for t in ("pre", "post")}
        predicted = read.number(row["predicted"], path + ("predicted",)) if "predicted" in row else None
        for number in range(1, count + 1):
            for timepoint, when in (("pre", post_day - dt.timedelta(days=30)), ("post", post_day)):
                if scores[timepoint] is None:
                    continue
                records.append({
                    "patient_id": f"p{index}-{number}", "episode_id": f"e{index}-{number}", "instrument": str(row.get("instrument")),
                    "timepoint": timepoint, "date": when, "score": scores[timepoint], "provider": str(row.get("provider", defaults.provider)),
                    "predicted": predicted if timepoint == "post" else None,
                })
    return records


def read_expected(read: Reader, node: Any, contracts: list[Contract], year: FinancialYear) -> list[Expected]:
    """Expected lines, one per month of each entry's months. Contract, payer and payee
    default to the case's only contract, its only commissioner (the prime, for a
    sub-contract) and its provider (not for an alliance, whose lines go to its members)."""
    parties: dict[str, tuple[str | None, str | None]] = {}
    for c in contracts:
        shares = c.commissioner_shares
        parties[c.id] = (shares[0].id if len(shares) == 1 else None, None if c.members else c.provider)
        for sub in c.subcontracts:
            parties[sub.id] = (c.provider, sub.provider)
    expected: list[Expected] = []
    for index, item in enumerate(read.items(node, ("expect",))):
        path = ("expect", index)
        entry = read.mapping(item, path, EXPECT_KEYS, ("component", "amount"))
        amount = read.money(entry["amount"], path + ("amount",)) if "amount" in entry else None
        where = {key: str(entry[key]) for key in LINE_KEYS if key in entry}
        if "contract" not in where and len(contracts) == 1:
            where["contract"] = contracts[0].id
        payer, payee = parties.get(where.get("contract", ""), (None, None))
        if "payer" not in where and payer is not None:
            where["payer"] = payer
        if "payee" not in where and payee is not None:
            where["payee"] = payee
        quantity = read.number(entry["quantity"], path + ("quantity",)) if "quantity" in entry else None
        rate = read.number(entry["rate"], path + ("rate",)) if "rate" in entry else None
        basis = read.text(entry["basis"], path + ("basis",)) if "basis" in entry else None
        contains = entry.get("basis_contains", [])
        contains = [contains] if isinstance(contains, str) else contains
        if not isinstance(contains, list) or not all(isinstance(t, str) for t in contains):
            read.problem(path + ("basis_contains",), "expected a piece of text, or a list of them")
            contains = []
        months: list[dt.date | None] = list(read.months(entry["month"], path + ("month",))) if "month" in entry else [None]
        for month in months:
            if month is not None and month not in year.months:
                read.problem(path + ("month",), f"{month_label(month)} is not in the financial year starting {month_label(year.start)}")
        if amount is None:
            continue
        line = read.document.line_of(path)
        for month in months:
            label = f"expect[{index}] (line {line})" + (f" {month_label(month)}" if month is not None and len(months) > 1 else "")
            expected.append(Expected(label, where, month, amount, quantity, rate, basis, list(contains)))
    return expected


def money(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{'-' if value < 0 else ''}£{abs(value):,.2f}"


def compare(case: Case, lines: list[dict[str, Any]]) -> list[str]:
    """Every difference between the lines produced and the lines expected: each expected
    line must be there with its amount (and quantity, rate, basis where given), and each
    line produced must be expected by exactly one entry."""
    failures: list[str] = []
    matched: list[list[str]] = [[] for _ in lines]
    for entry in case.expected:
        chosen = [i for i, line in enumerate(lines) if entry.selects(line)]
        for i in chosen:
            matched[i].append(entry.label)
        if not chosen:
            failures.append(f"{entry.label}: no line for {entry.describe()} (expected {money(entry.amount)})")
            continue
        got = sum((lines[i]["amount"] for i in chosen), Decimal(0))
        if got != entry.amount:
            failures.append(f"{entry.label}: {entry.describe()}: expected {money(entry.amount)}, got {money(got)}")
        if entry.quantity is not None:
            quantities = [lines[i]["quantity"] for i in chosen]
            total = None if any(q is None for q in quantities) else sum(quantities, Decimal(0))
            if total != entry.quantity:
                failures.append(f"{entry.label}: {entry.describe()}: expected quantity {entry.quantity}, got {total}")
        single = len(chosen) == 1
        if (entry.rate is not None or entry.basis is not None) and not single:
            failures.append(f"{entry.label}: 'rate' and 'basis' need exactly one line, but {len(chosen)} lines match {entry.describe()}")
        elif entry.rate is not None and lines[chosen[0]]["rate"] != entry.rate:
            failures.append(f"{entry.label}: {entry.describe()}: expected rate {entry.rate}, got {lines[chosen[0]]['rate']}")
        if entry.basis is not None and single and lines[chosen[0]]["basis"] != entry.basis:
            failures.append(f"{entry.label}: {entry.describe()}: expected basis\n      {entry.basis!r}\n    got\n      {lines[chosen[0]]['basis']!r}")
        for i in chosen:
            for text in entry.basis_contains:
                if text not in (lines[i]["basis"] or ""):
                    failures.append(f"{entry.label}: {month_label(lines[i]['month'])} basis lacks {text!r}: {lines[i]['basis']!r}")
    for line, labels in zip(lines, matched):
        described = f"{line['contract']} {line['component']} {line['payer']}→{line['payee']} {month_label(line['month'])} {money(line['amount'])}"
        if not labels:
            failures.append(f"unexpected line: {described} ({line['basis']})")
        elif len(labels) > 1:
            failures.append(f"line {described} is expected by more than one entry: {', '.join(labels)}")
    for component, amount in case.totals.items():
        amounts = [line["amount"] for line in lines if line["component"] == component]
        got = Decimal(sum(amounts, Decimal(0)))
        if not amounts:
            failures.append(f"total {component}: no lines for component {component} (expected {money(amount)})")
        elif got != amount:
            failures.append(f"total {component}: expected {money(amount)}, got {money(got)}")
    return failures


def produced(lines: list[dict[str, Any]]) -> str:
    rows = [
        f"    {r['contract']:<14} {r['component']:<22} {r['payer']:>10} → {r['payee']:<12} {month_label(r['month'])} {money(r['amount']):>17}  {r['basis']}"
        for r in lines
    ]
    return "\n".join(rows)


def run_case(engine: Engine, case: Case) -> list[dict[str, Any]]:
    def put(table: pa.Table | None):
        return None if table is None else engine.put(table)

    tables = RunTables(put(case.activity), put(case.prices), put(case.plans), put(case.population), put(case.outcomes), books=put(case.books))
    return statement_lines(engine, case.contracts, case.year, tables).to_pylist()


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case(path: Path, engine: Engine) -> None:
    try:
        case = load_case(path)
    except (CaseError, ProblemsError) as error:
        pytest.fail(str(error), pytrace=False)
    try:
        lines = run_case(engine, case)
    except Exception as error:
        if case.xfail:
            pytest.xfail(f"{case.xfail} (raised {type(error).__name__}: {error})")
        raise
    failures = compare(case, lines)
    if failures and case.xfail:
        pytest.xfail(case.xfail)
    if failures:
        pytest.fail(
            f"{case.source}: {case.name}\n  " + "\n  ".join(failures) + f"\n  lines produced on {engine.name}:\n" + produced(lines),
            pytrace=False,
        )
    if case.xfail:
        pytest.fail(f"{case.source}: marked xfail ({case.xfail}) but every expectation holds: remove the xfail", pytrace=False)


def component_kinds() -> set[str]:
    """Every component kind the contract language knows."""
    members = typing.get_args(typing.get_args(ComponentTerms)[0])
    return {kind for member in members for kind in typing.get_args(member.model_fields["kind"].annotation)}


def test_every_kind_and_structure_has_a_case() -> None:
    """Each component kind, a sub-contract and an alliance appear in at least one case."""
    found: set[str] = set()
    structures: set[str] = set()
    for path in CASE_FILES:
        case = load_case(path)
        for c in case.contracts:
            found |= {component.kind for component in c.components}
            for sub in c.subcontracts:
                found |= {component.kind for component in sub.components}
                structures.add("sub-contract")
            if c.members:
                structures.add("alliance")
    assert component_kinds() - found == set(), "component kinds with no case in tests/cases"
    assert structures == {"sub-contract", "alliance"}


def test_unknown_keys_fail_naming_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(
        "name: A typo\n"
        "why: Unknown keys are errors, not ignored.\n"
        "contract: {id: C1, commissioner: ICB, provider: PROV, term: {start: 2025-04-01, end: 2026-03-31},\n"
        "           components: [{id: core, kind: block, anual: 1200}]}\n"
        "activty: []\n"
        "expect:\n"
        "  - {component: core, month: 2025-04, amout: 100.00}\n",
        encoding="utf-8",
    )
    with pytest.raises(CaseError) as error:
        load_case(path)
    text = str(error.value)
    assert f"{path}:5 activty: unknown key 'activty'" in text
    path.write_text(path.read_text(encoding="utf-8").replace("activty: []\n", ""), encoding="utf-8")
    with pytest.raises(CaseError) as error:
        load_case(path)
    text = str(error.value)
    assert f"{path}:4 components[0].anual" in text and "unknown key 'anual'" in text
    path.write_text(path.read_text(encoding="utf-8").replace("anual", "annual"), encoding="utf-8")
    with pytest.raises(CaseError) as error:
        load_case(path)
    text = str(error.value)
    assert f"{path}:6 expect[0].amout: unknown key 'amout'" in text and f"{path}:6 expect[0]: 'amount' is required" in text


def test_every_key_is_documented() -> None:
    """Each key a case may use is explained in tests/cases/README.md."""
    readme = (CASES / "README.md").read_text(encoding="utf-8")
    keys = CASE_KEYS | ACTIVITY_KEYS | PRICE_KEYS | BOOK_KEYS | PLAN_KEYS | POPULATION_KEYS | OUTCOME_KEYS | EXPECT_KEYS
    assert sorted(key for key in keys if f"`{key}`" not in readme) == []
