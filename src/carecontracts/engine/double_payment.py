"""Double payment: activity rows that two contracts would both pay for, the same payer paying
twice for one row.

Within one contract several components may measure the same row (cost per case and a
best-practice top-up on the same cases). Across two contracts — two top-level contracts, or a
sub-contract and any other contract — the same payer paying for the same row is an error. A
prime paid by its commissioner and its sub-contractor paid by the prime for the same row have
different payers: that is money flowing between parties, not double payment.

The check is a query over the routing table (`measure.routes`), which holds the distinct
provider × commissioner × filtered-column keys, not the rows: pairs of agreements that route
one key to the same payer in overlapping months are found there, the rows they share are
counted from the fine tallies, and only then are a few rows of each pair sampled from the
activity, so the whole check costs one small self-join and a scan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import ibis
import ibis.expr.types as ir

from carecontracts.data.load import place
from carecontracts.engine.agreements import Agreement
from carecontracts.engine.backend import Engine, month_of
from carecontracts.engine.measure import ACTUAL, grain_columns, route_dimensions, routes, with_scenario
from carecontracts.language.yaml_lines import format_path
from carecontracts.problems import Problem

SAMPLE_ROWS = 5
EXPECTED = "each activity row paid by one contract per payer: narrow one contract's services, or end one term before the other starts"


@dataclass(frozen=True)
class SampleRow:
    """One activity row paid twice, located in the file it was loaded from (when known)."""

    activity_id: str
    source_file: str | None = None
    source_row: int | None = None

    def __str__(self) -> str:
        if self.source_file is None or self.source_row is None:
            return self.activity_id
        line, row, _ = place(self.source_file, self.source_row)
        return f"{self.activity_id} ({self.source_file} {f'line {line}' if line is not None else f'row {row}'})"


@dataclass(frozen=True)
class DoublePayment:
    """Two agreements through which one payer would pay for the same activity rows."""

    first: Agreement
    second: Agreement
    payer: str
    rows: int
    sample: tuple[SampleRow, ...] = ()


def activity_keys(events: ir.Table, agreements: Sequence[Agreement]) -> ir.Table:
    """Activity counted by the columns it is routed on and the month it ended (`events` rows
    each): the part of the fine tallies the check reads, without the readmission pass, for
    when no fine tallies have been measured (checking files before a load)."""
    events = with_scenario(events)
    events = events.mutate(month=month_of(events.end_date))
    grain = grain_columns(list(agreements))
    events = _with_columns(events, grain)
    return events.group_by(grain).aggregate(events=events.count())


def _with_columns(events: ir.Table, columns: Sequence[str]) -> ir.Table:
    """The events with every routing column, an absent optional one as null text."""
    missing = [c for c in columns if c not in events.columns]
    return events.mutate(**{c: ibis.literal(None, type="string") for c in missing}) if missing else events


def _same_key(left: ir.Table, right: ir.Table, dimensions: list[str], prefix: str = "") -> list[ir.BooleanValue]:
    """Join predicates matching routing keys (a missing value matches a missing value, as in
    `measure.tallies`)."""
    return [left[c].fill_null("") == right[prefix + c].fill_null("") for c in dimensions]


def _overlaps(table: ir.Table, dimensions: list[str]) -> ir.Table:
    """Pairs of agreements (`first` < `second`) that route one key to the same payer, with the
    months both of their terms cover."""
    paying = table.select(*dimensions, "contract", "payer", "month_from", "month_to").distinct()
    other = paying.view()
    other = other.select(**{f"o_{c}": other[c] for c in other.columns})
    pairs = paying.join(other, [*_same_key(paying, other, dimensions, "o_"), paying.payer == other.o_payer, paying.contract < other.o_contract])
    pairs = pairs.select(
        *dimensions,
        "payer",
        first=pairs.contract,
        second=pairs.o_contract,
        month_from=ibis.greatest(pairs.month_from, pairs.o_month_from),
        month_to=ibis.least(pairs.month_to, pairs.o_month_to),
    )
    return pairs.filter(pairs.month_from <= pairs.month_to)


def _in_both(rows: ir.Table, overlaps: ir.Table, dimensions: list[str]) -> ir.Table:
    """Rows (fine tallies or events, with `month`) joined to each pair that would pay both."""
    return rows.join(overlaps, [*_same_key(rows, overlaps, dimensions), rows.month >= overlaps.month_from, rows.month <= overlaps.month_to])


def double_payments(
    engine: Engine,
    fine: ir.Table,
    agreements: Sequence[Agreement],
    months: Sequence[dt.date],
    activity: ir.Table | None = None,
    sample: int = SAMPLE_ROWS,
    table: ir.Table | None = None,
) -> list[DoublePayment]:
    """Every pair of agreements through which one payer would pay for the same activity rows
    in `months`, with the number of rows and (given the activity) up to `sample` of them.

    `fine` is the fine tallies (`measure.fine_tallies`) or `activity_keys`: anything with the
    routing columns, `month` and `events`; `table` its routing table if already built (a
    payment run has). Only the actual scenario is read."""
    table = table if table is not None else routes(engine, fine, agreements)
    if table is None:
        return []
    dimensions = route_dimensions(fine)
    overlaps = _overlaps(table, dimensions)
    wanted = list(months)
    actual = fine.filter(fine.scenario == ACTUAL, fine.month.isin(wanted)) if "scenario" in fine.columns else fine.filter(fine.month.isin(wanted))
    shared = _in_both(actual, overlaps, dimensions)
    counted = shared.group_by(["first", "second", "payer"]).aggregate(rows=shared.events.sum())
    found = engine.to_arrow(counted.filter(counted.rows > 0).order_by(["first", "second", "payer"])).to_pylist()
    if not found:
        return []
    samples = _samples(engine, activity, overlaps, dimensions, wanted, sample) if activity is not None and sample > 0 else {}
    by_id = {a.id: a for a in agreements}
    return [
        DoublePayment(by_id[r["first"]], by_id[r["second"]], r["payer"], int(r["rows"]), tuple(samples.get((r["first"], r["second"], r["payer"]), ())))
        for r in found
    ]


def _samples(
    engine: Engine, activity: ir.Table, overlaps: ir.Table, dimensions: list[str], months: list[dt.date], sample: int
) -> dict[tuple[str, str, str], list[SampleRow]]:
    """Up to `sample` activity rows of each pair, first by file and row: one scan of the
    activity joined to the (small) table of overlapping keys."""
    events = _with_columns(activity.mutate(month=month_of(activity.end_date)), dimensions)
    located = "source_file" in events.columns and "source_row" in events.columns
    if not located:
        events = events.mutate(source_file=ibis.literal(None, type="string"), source_row=ibis.literal(None, type="int64"))
    events = events.filter(events.month.isin(months))
    shared = _in_both(events, overlaps, dimensions)
    order = [shared.source_file, shared.source_row, shared.activity_id]
    shared = shared.mutate(rank=ibis.row_number().over(group_by=[shared.first, shared.second, shared.payer], order_by=order))
    picked = shared.filter(shared.rank < sample).select("first", "second", "payer", "activity_id", "source_file", "source_row", "rank")
    result: dict[tuple[str, str, str], list[SampleRow]] = {}
    for row in engine.to_arrow(picked.order_by(["first", "second", "payer", "rank"])).to_pylist():
        result.setdefault((row["first"], row["second"], row["payer"]), []).append(SampleRow(str(row["activity_id"]), row["source_file"], row["source_row"]))
    return result


def _services_line(agreement: Agreement) -> int | None:
    """The line of the agreement's services (or of its id, when it has none of its own)."""
    contract = agreement.contract
    return contract.line_of(agreement.path + ("services",)) or contract.line_of(agreement.path + ("id",))


def _named(agreement: Agreement) -> str:
    """`contract ACUTE-2025 (contracts/acute.yaml:7)`, or a sub-contract with its prime."""
    contract = agreement.contract
    line = _services_line(agreement)
    place = contract.source + (f":{line}" if line else "") if contract.source else ""
    what = f"sub-contract {agreement.id} of {contract.id}" if agreement.path else f"contract {agreement.id}"
    return what + (f" ({place})" if place else "")


def double_payment_problems(found: Sequence[DoublePayment], period: str) -> list[Problem]:
    """Each double payment as a located problem naming both contracts, the payer, the rows
    and a sample of them; placed on the first contract's services."""
    problems = []
    for item in found:
        contract = item.first.contract
        example = ""
        if item.sample:
            more = item.rows - len(item.sample)
            example = "; for example activity " + ", ".join(str(s) for s in item.sample) + (f" and {more:,} more" if more > 0 else "")
        problems.append(
            Problem(
                contract.source or item.first.id,
                f"{item.payer} would pay twice for {item.rows:,} activity row{'s' if item.rows != 1 else ''} in {period}: "
                f"both {_named(item.first)} and {_named(item.second)} pay for them{example}",
                line=_services_line(item.first),
                field=format_path(item.first.path + ("services",)),
                value=item.second.id,
                expected=EXPECTED,
            )
        )
    return problems
