"""Month-end close: a closed month's lines are kept as issued and never re-priced in place;
whatever would change them is paid as prior-period adjustment lines in the first open month,
each naming the month adjusted, the component and why."""

from __future__ import annotations

import datetime as dt
import difflib
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Callable, Iterable

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from carecontracts.cycle.submissions import file_hash, open_records
from carecontracts.engine.statement import ORDER
from carecontracts.language import Contract
from carecontracts.language.model import SpellTerms
from carecontracts.money import format_money
from carecontracts.periods import month_label
from carecontracts.problems import Problem, ProblemsError
from carecontracts.records import actor, record_event
from carecontracts.records.schema import Challenge, Close, IssuedLine, SourceText, Submission
from carecontracts.records.store import canonical, digest, now
from carecontracts.workspace import Workspace

SOURCE_FOLDERS = ("contracts", "prices", "data/plans", "data/population", "data/outcomes")
LINE_ORDER = [*ORDER, "adjusts"]
ADJUSTS = pa.field("adjusts", pa.date32())


def sources(workspace: Workspace) -> dict[str, str]:
    """Every file that terms or reference data come from, with the SHA-256 of its content.
    (Activity is recorded by submissions.)"""
    found = {}
    for folder in SOURCE_FOLDERS:
        root = workspace.root / folder
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and path.suffix.lower() in (".yaml", ".yml", ".csv", ".parquet", ".xlsx"):
                    found[workspace.relative(path)] = file_hash(path)
    return found


def with_adjusts(lines: pa.Table) -> pa.Table:
    """Statement lines with the `adjusts` column (the month a prior-period adjustment is for;
    empty on every other line)."""
    if "adjusts" in lines.column_names:
        return lines
    return lines.append_column(ADJUSTS, pa.nulls(len(lines), pa.date32()))


def current_closes(session: Session) -> dict[dt.date, Close]:
    """The close in force for each closed month (a reopened close no longer counts)."""
    return {c.month: c for c in session.scalars(sa.select(Close).where(Close.reopened_at.is_(None)).order_by(Close.month))}


def issued_lines(session: Session, closes: Iterable[Close], schema: pa.Schema) -> pa.Table:
    """The lines issued by these closes, typed like the statements."""
    ids = [c.id for c in closes]
    names = [f.name for f in schema]
    table = IssuedLine.__table__
    rows = session.execute(sa.select(*(table.c[n] for n in names)).where(table.c.close_id.in_(ids)).order_by(table.c.id)).all() if ids else []
    columns = list(zip(*rows)) if rows else [() for _ in names]
    return pa.table({name: pa.array(list(values), type=schema.field(name).type) for name, values in zip(names, columns)}, schema=schema)


def first_open(months: list[dt.date], closed: Iterable[dt.date]) -> dt.date | None:
    """The earliest month of the year not closed: where adjustments are paid."""
    shut = set(closed)
    return next((m for m in months if m not in shut), None)


@dataclass(frozen=True)
class Settled:
    """The statement: issued lines for closed months, re-priced lines for open ones, and the
    adjustments; `waiting` counts adjustments with no open month to be paid in."""

    lines: pa.Table
    adjustments: int
    waiting: int


Why = Callable[[str, dt.date, str], str]


def settle(repriced: pa.Table, issued: pa.Table, closed: set[dt.date], months: list[dt.date], why: Why) -> Settled:
    """Closed months as issued; for each closed month, what re-pricing gives less what was
    issued for it (its own lines and earlier adjustments to it) is paid in the first open month."""
    repriced = with_adjusts(repriced)
    schema = repriced.schema
    opening = first_open(months, closed)
    keys = ["scenario", "contract", "component", "payer", "payee", "service", "currency"]
    same = " AND ".join(f"d.{k} IS NOT DISTINCT FROM p.{k}" for k in keys)
    picked = ", ".join(f"coalesce(d.{k}, p.{k}) AS {k}" for k in keys)
    with duckdb.connect() as con:
        con.register("repriced", repriced)
        con.register("issued", issued)
        con.register("shut", pa.table({"month": pa.array(sorted(closed), pa.date32())}))
        differences = con.execute(
            f"""WITH due AS (
                    SELECT {', '.join(keys)}, month AS adjusts, sum(amount) AS amount, sum(quantity) AS quantity
                    FROM repriced WHERE month IN (SELECT month FROM shut) GROUP BY ALL),
                paid AS (
                    SELECT {', '.join(keys)}, coalesce(adjusts, month) AS adjusts, sum(amount) AS amount, sum(quantity) AS quantity
                    FROM issued GROUP BY ALL)
                SELECT {picked}, coalesce(d.adjusts, p.adjusts) AS adjusts,
                       coalesce(d.amount, 0) - coalesce(p.amount, 0) AS difference, d.amount AS due, p.amount AS paid,
                       nullif(coalesce(d.quantity, 0) - coalesce(p.quantity, 0), 0) AS quantity
                FROM due d FULL JOIN paid p ON {same} AND d.adjusts = p.adjusts
                WHERE coalesce(d.amount, 0) <> coalesce(p.amount, 0)
                ORDER BY {', '.join(keys)}, adjusts"""
        ).fetchall()
    columns = [f.name for f in schema]
    made: dict[str, list] = {name: [] for name in columns}
    if opening is not None:
        for scenario, contract, component, payer, payee, service, currency, adjusts, difference, due, paid, moved in differences:
            basis = (f"Adjusts {month_label(adjusts)}: re-priced {_pounds(due)} less {_pounds(paid)} issued ({_signed(difference)}); "
                     f"{why(contract, adjusts, payer)}")
            row = {"scenario": scenario, "contract": contract, "component": component, "payer": payer, "payee": payee, "month": opening,
                   "quantity": moved, "rate": None, "amount": difference, "basis": basis, "service": service, "currency": currency,
                   "adjusts": adjusts}
            for name in columns:
                made[name].append(row.get(name))
    adjustments = pa.table({n: pa.array(made[n], type=schema.field(n).type) for n in columns}, schema=schema)
    shut = pa.array(sorted(closed), pa.date32())
    kept = repriced.filter(pa.compute.invert(pa.compute.is_in(repriced.column("month"), value_set=shut))) if closed else repriced
    lines = pa.concat_tables([issued.cast(schema), kept, adjustments]).sort_by([(n, "ascending") for n in LINE_ORDER])
    return Settled(lines, len(adjustments), 0 if opening is not None else len(differences))


def _pounds(value: Decimal | None) -> str:
    return format_money(value or Decimal(0))


def _signed(value: Decimal) -> str:
    return ("+" if value >= 0 else "−") + format_money(abs(value))


class Reasons:
    """Why re-pricing a closed month differs from what was issued, per contract: later
    submissions from its providers, a variation of its file (located by line), re-issued
    prices or reference data, and challenges upheld since the close."""

    def __init__(self, session: Session, workspace: Workspace, contracts: list[Contract], closes: dict[dt.date, Close],
                 current: dict[str, str]):
        self.session = session
        self.workspace = workspace
        self.closes = closes
        self.current = current
        self.providers: dict[str, set[str]] = {}
        self.files: dict[str, str] = {}
        self.prices: dict[str, set[str]] = {}
        for contract in contracts:
            parties = {contract.provider, *(m.provider for m in contract.members or [])}
            for body in [contract, *contract.subcontracts]:
                parties.add(body.provider)
            for body in [contract, *contract.subcontracts]:
                self.providers[body.id] = parties
                self.files[body.id] = contract.source
                self.prices[body.id] = {str(name) for c in body.components for name in (getattr(c, "prices", None), getattr(c, "local_prices", None),
                                                                                           *(c.books() if isinstance(c, SpellTerms) else ())) if name}
        self._said: dict[tuple[str, dt.date, str], str] = {}

    def __call__(self, contract: str, month: dt.date, payer: str) -> str:
        if (contract, month, payer) not in self._said:
            self._said[(contract, month, payer)] = self._why(contract, month, payer)
        return self._said[(contract, month, payer)]

    def _why(self, contract: str, month: dt.date, payer: str) -> str:
        close = self.closes[month]
        then = json.loads(close.sources)
        reasons = []
        later = self.session.scalars(sa.select(Submission).where(
            Submission.month == month, Submission.submitted_at > close.closed_at,
            Submission.provider.in_(sorted(self.providers.get(contract, set())))).order_by(Submission.id))
        for submission in later:
            what = "a nil return" if submission.nil_return else f"{submission.rows:,} rows from {submission.files}"
            reasons.append(f"resubmission {submission.version} by {submission.provider} ({what}, {submission.submitted_at:%Y-%m-%d})")
        file = self.files.get(contract)
        if file and then.get(file) != self.current.get(file):
            reasons.append(f"variation at {self._changed_line(file, then.get(file))}")
        for path in sorted(set(then) | set(self.current)):
            if path.startswith("contracts/") or then.get(path) == self.current.get(path):
                continue
            if path.startswith("prices/") and PurePosixPath(path).stem not in self.prices.get(contract, set()):
                continue
            reasons.append(f"{'re-issued' if path.startswith('prices/') else 'changed'} {path}")
        upheld = self.session.scalars(sa.select(Challenge).where(
            Challenge.contract == contract, Challenge.month == month, Challenge.state == "upheld",
            Challenge.decided_at > close.closed_at, sa.or_(Challenge.payer.is_(None), Challenge.payer == payer)).order_by(Challenge.id))
        reasons += [f"challenge {c.reference} upheld ({c.reason})" for c in upheld]
        return "because of " + "; ".join(reasons) if reasons else "re-pricing differs from the lines issued"

    def _changed_line(self, file: str, old_hash: str | None) -> str:
        """file:line of the first line that differs from the text in force at the close."""
        path = self.workspace.root / file
        new = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        kept = self.session.get(SourceText, old_hash) if old_hash else None
        old = kept.text.splitlines() if kept else []
        for tag, _i1, _i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
            if tag == "delete" or j1 >= len(new):
                return f"{file}:{min(j1 + 1, len(new))} (lines removed)"
            if tag != "equal":
                lines = f"{j1 + 1}" if j2 - j1 <= 1 else f"{j1 + 1}-{j2}"
                return f'{file}:{lines} "{_clip(" ".join(t.strip() for t in new[j1:j2]))}"'
        return file



def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


PRICED_FROM = "priced_from"


def priced_stamp(current: dict[str, str], closes: dict[dt.date, Close], excluded: Iterable[str], loaded: str, withheld: str) -> dict[str, str]:
    """What a payment run priced from: the source files' hashes, the warehouse's load, the
    challenges upheld, the withholdings of contract management (`notices.withholding_stamp`)
    and the closes in force. A close refuses statements priced otherwise."""
    stamp = {f"file:{path}": sha for path, sha in current.items()}
    stamp["loaded"] = loaded
    stamp["challenges"] = digest(*sorted(excluded))
    stamp["withholdings"] = withheld
    stamp["closes"] = ",".join(str(c.id) for c in sorted(closes.values(), key=lambda c: c.id))
    return stamp


def stale(then: dict[str, str], current: dict[str, str]) -> list[str]:
    """How the inputs differ from what the stored statements were priced from."""
    changed = []
    files = sorted({k for k in then | current if k.startswith("file:")})
    changed += [k[5:] for k in files if then.get(k) != current.get(k)]
    if then.get("loaded") != current.get("loaded"):
        changed.append("activity or reference data loaded since")
    if then.get("challenges") != current.get("challenges"):
        changed.append("challenges decided since")
    if then.get("withholdings") != current.get("withholdings"):
        changed.append("a withholding begun or remedied since")
    if not set(filter(None, then.get("closes", "").split(","))) <= set(filter(None, current.get("closes", "").split(","))):
        changed.append("a month reopened since")
    return changed


def close_months(workspace: Workspace, through: dt.date, statements: pa.Table, priced_from: dict[str, str], loaded: str, who: str | None = None) -> list[Close]:
    """Close `through` and every open month before it: their lines are kept as issued, with a
    version, time and hash, and the files they were priced from."""
    year = workspace.year
    if through not in year:
        raise ProblemsError([Problem("month", f"{month_label(through)} is outside the financial year {year.label}", value=month_label(through),
                                     expected=f"a month from {month_label(year.months[0])} to {month_label(year.months[-1])}")])
    from carecontracts.cycle.notices import withholding_stamp, withholdings

    who = who or actor()
    records = open_records(workspace)
    with records.session() as session:
        closes = current_closes(session)
        if through in closes:
            done = closes[through]
            raise ProblemsError([Problem("month", f"{month_label(through)} is closed already (version {done.version}, by {done.closed_by} at "
                                                  f"{done.closed_at:%Y-%m-%d %H:%M} UTC)", value=month_label(through),
                                         expected="an open month; `carecontracts reopen MONTH --reason ...` reopens a closed one")])
        excluded = [i for c in upheld(session) for i in json.loads(c.activity_ids)]
        current = sources(workspace)
        changed = stale(priced_from, priced_stamp(current, closes, excluded, loaded, withholding_stamp(withholdings(session))))
        if changed:
            raise ProblemsError([Problem("statements", "the stored statements are out of date: " + "; ".join(changed[:5]) +
                                         (f" and {len(changed) - 5} more" if len(changed) > 5 else ""),
                                         expected="statements priced from the current contracts and data: run `carecontracts pay` first")])
        months = [m for m in year.months if m <= through and m not in closes]
        kept = {}
        for path, sha in current.items():
            if path.startswith("contracts/") and session.get(SourceText, sha) is None and sha not in kept:
                kept[sha] = (workspace.root / path).read_text(encoding="utf-8")
        session.add_all(SourceText(content_hash=sha, text=text) for sha, text in kept.items())
        made = []
        for month in months:
            part = statements.filter(pa.compute.equal(statements.column("month"), pa.scalar(month, pa.date32())))
            rows = with_adjusts(part).sort_by([(n, "ascending") for n in LINE_ORDER]).to_pylist()
            content = canonical(rows)
            version = (session.scalar(sa.select(sa.func.max(Close.version)).where(Close.month == month)) or 0) + 1
            close = Close(month=month, version=version, closed_at=now(), closed_by=who, lines=len(rows),
                          total=sum((r["amount"] for r in rows), Decimal(0)), content_hash=digest(content),
                          sources=canonical({k[5:]: v for k, v in priced_from.items() if k.startswith("file:")}))
            session.add(close)
            session.flush()
            fields = [c.name for c in IssuedLine.__table__.columns if c.name not in ("id", "close_id")]
            if rows:
                session.execute(sa.insert(IssuedLine), [{"close_id": close.id, **{f: r.get(f) for f in fields}} for r in rows])
            record_event(session, "close", month_label(month), {
                "month": month_label(month), "version": version, "lines": len(rows), "total": str(close.total), "close": close.id,
            }, content, who)
            made.append(close)
    return made


def close_through(workspace: Workspace, month: dt.date, who: str | None = None) -> list[Close]:
    """Close the month (and every open month before it) from the stored statements, which
    must be priced from the current contracts and data."""
    from carecontracts.payments import loaded_stamp, priced_from, stored

    lines = stored(workspace, "statements")
    if lines is None:
        raise ProblemsError([Problem("statements", "nothing is priced yet", expected="run `carecontracts pay year` first")])
    return close_months(workspace, month, lines, priced_from(workspace), loaded_stamp(workspace), who)


def reopen(workspace: Workspace, month: dt.date, reason: str, who: str | None = None) -> list[Close]:
    """Reopen a closed month and every closed month after it (their adjustments are worked
    again), recording who, when and why."""
    if not reason.strip():
        raise ProblemsError([Problem("--reason", "a reopening needs a reason", expected="--reason \"why the month is reopened\"")])
    who = who or actor()
    with open_records(workspace).session() as session:
        closes = current_closes(session)
        if month not in closes:
            raise ProblemsError([Problem("month", f"{month_label(month)} is not closed", value=month_label(month),
                                         expected="a closed month: " + (", ".join(month_label(m) for m in closes) or "none is closed"))])
        opened = [c for m, c in closes.items() if m >= month]
        for close in opened:
            close.reopened_at, close.reopened_by, close.reopen_reason = now(), who, reason
            record_event(session, "reopen", month_label(close.month), {
                "month": month_label(close.month), "version": close.version, "reason": reason, "close": close.id}, who=who)
    return opened


def upheld(session: Session) -> list[Challenge]:
    """Challenges upheld: their activity is not paid."""
    return list(session.scalars(sa.select(Challenge).where(Challenge.state == "upheld").order_by(Challenge.id)))
