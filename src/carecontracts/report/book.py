"""A book's statements at a glance: totals by payer, by payee and the largest contracts,
summed by Arrow in exact decimals; and the choice of contracts to show (`--contract`)."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from decimal import Decimal
from typing import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from carecontracts.problems import Problem, ProblemsError

BIG_BOOK = 20  # more contracts than this and the summary shows totals and the largest, not every contract


@dataclasses.dataclass(frozen=True)
class Total:
    """What one party (or contract) is owed or owes: its contracts, lines and amount."""

    name: str
    contracts: int
    lines: int
    amount: Decimal
    payers: str = ""
    payees: str = ""


@dataclasses.dataclass(frozen=True)
class BookSummary:
    """Totals of a set of statement lines, each list largest amount first."""

    lines: int
    contracts: int
    by_payer: list[Total]
    by_payee: list[Total]
    largest: list[Total]
    total: Decimal


def contract_ids(lines: pa.Table) -> list[str]:
    """The contracts that have lines, each once."""
    return pc.unique(lines.column("contract")).to_pylist()


def contract_count(lines: pa.Table) -> int:
    """How many contracts have lines."""
    return int(pc.count_distinct(lines.column("contract")).as_py())


def _totals(lines: pa.Table, key: str) -> list[Total]:
    """Totals grouped by one column, largest amount first (then by name)."""
    if lines.num_rows == 0:
        return []
    grouped = lines.group_by(key).aggregate([
        ("amount", "sum"), ("amount", "count", pc.CountOptions(mode="all")), ("contract", "count_distinct"),
        ("payer", "distinct"), ("payee", "distinct"),
    ])
    totals = [
        Total(row[key], row["contract_count_distinct"], row["amount_count"], row["amount_sum"] or Decimal(0),
              ", ".join(sorted(row["payer_distinct"])), ", ".join(sorted(row["payee_distinct"])))
        for row in grouped.to_pylist()
    ]
    return sorted(totals, key=lambda t: (-t.amount, t.name))


def summarise(lines: pa.Table, largest: int = 10) -> BookSummary:
    """Totals by payer and by payee, the `largest` contracts by amount, and the grand total
    (the exact sum of every line's amount)."""
    total = pc.sum(lines.column("amount")).as_py() if lines.num_rows else None
    return BookSummary(
        lines=lines.num_rows,
        contracts=contract_count(lines),
        by_payer=_totals(lines, "payer"),
        by_payee=_totals(lines, "payee"),
        largest=_totals(lines, "contract")[:largest],
        total=total if total is not None else Decimal(0),
    )


def head_and_rest(totals: list[Total], shown: int) -> tuple[list[Total], Total | None]:
    """The first `shown` totals, and the rest added up in one (None if there is no rest)."""
    if len(totals) <= shown:
        return totals, None
    rest = totals[shown:]
    return totals[:shown], Total(f"{len(rest):,} more", sum(t.contracts for t in rest), sum(t.lines for t in rest),
                                 sum((t.amount for t in rest), Decimal(0)))


def near_matches(name: str, known: Iterable[str], count: int = 5) -> list[str]:
    """Known ids that look like `name`: close spellings, then ids it is a part of."""
    ids = sorted(set(known))
    close = difflib.get_close_matches(name, ids, n=count, cutoff=0.6)
    folded = name.rstrip("*").casefold()
    containing = [i for i in ids if folded and folded in i.casefold() and i not in close]
    return (close + containing)[:count]


def select_contracts(lines: pa.Table, patterns: Sequence[str], known: Iterable[str]) -> pa.Table:
    """The lines of the contracts named: each pattern an id, or a pattern with `*` (ACUTE-*).
    A pattern that names no known contract is a problem listing near matches (all at once)."""
    chosen = chosen_contracts(patterns, known)
    return lines.filter(pc.is_in(lines.column("contract"), pa.array(sorted(chosen), pa.string())))


def chosen_contracts(patterns: Sequence[str], known: Iterable[str]) -> set[str]:
    """The known contract ids the patterns name (an id, or a pattern with `*`); a pattern
    that names none is a problem listing near matches (all at once)."""
    ids = sorted(set(known))
    chosen: set[str] = set()
    problems = []
    for pattern in patterns:
        matched = [i for i in ids if fnmatch.fnmatchcase(i, pattern)] if "*" in pattern else [pattern] if pattern in ids else []
        if matched:
            chosen.update(matched)
            continue
        near = near_matches(pattern, ids)
        expected = f"did you mean {' or '.join(near)}?" if near else f"one of the {len(ids):,} contracts, e.g. {', '.join(ids[:3])}"
        problems.append(Problem("--contract", f"no contract {pattern!r} in this book", value=pattern, expected=expected))
    if problems:
        raise ProblemsError(problems)
    return chosen
