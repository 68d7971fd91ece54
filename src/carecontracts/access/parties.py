"""The parties to each contract and sub-contract, as a table: a user sees the contracts its
party is party to, so "lines this user may see" is a join on this table, never a test per page."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from carecontracts.engine.agreements import agreements_of
from carecontracts.language.model import Contract
from carecontracts.workspace import Workspace

ROLES = ("commissioner", "provider", "alliance member", "auditor", "admin")
SEES_EVERYTHING = frozenset({"auditor", "admin"})
RELATIONS = ("commissioner", "provider", "prime", "sub-contractor", "alliance member")
STATEMENT_ORDER = "month, contract, component, payer, payee, adjusts NULLS FIRST, service, currency"


@dataclass(frozen=True)
class Relation:
    """One party's part in one contract or sub-contract."""

    party: str
    contract: str
    relation: str


def relations(contracts: list[Contract]) -> list[Relation]:
    """Every (party, contract, relation): a contract's commissioners and provider (and alliance
    members); a sub-contract's prime (its payer) and sub-contractor. A commissioner is not party
    to its provider's sub-contracts, nor a sub-contractor to the prime's contract."""
    found: dict[tuple[str, str], str] = {}
    for agreement in agreements_of(contracts):
        top = agreement.path == ()
        for payer in agreement.payers:
            found.setdefault((payer.id, agreement.id), "commissioner" if top else "prime")
        found.setdefault((agreement.payee, agreement.id), "provider" if top else "sub-contractor")
        for member in agreement.members:
            found.setdefault((member.provider, agreement.id), "alliance member")
    return [Relation(party, contract, relation) for (party, contract), relation in found.items()]


def parties(contracts: list[Contract]) -> set[str]:
    """Every party named in the contracts."""
    return {r.party for r in relations(contracts)}


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a user acting for a party in a role."""

    user: str
    party: str | None
    role: str

    @property
    def sees_everything(self) -> bool:
        return self.role in SEES_EVERYTHING


class Book:
    """The workspace's contracts and who is party to each, read once."""

    def __init__(self, workspace: Workspace, contracts: list[Contract]):
        self.workspace = workspace
        self.contracts = contracts
        self.relations = relations(contracts)
        self.ids = sorted({r.contract for r in self.relations})
        self._stored: Stored | None = None
        self._reading = threading.Lock()

    def visible(self, viewer: Viewer) -> dict[str, str]:
        """The contracts the viewer may see, each with the viewer's part in it ("all" for an
        auditor or admin, who see every contract)."""
        if viewer.sees_everything:
            return {contract: "all" for contract in self.ids}
        return {r.contract: r.relation for r in self.relations if r.party == viewer.party}

    def party_roles(self, party: str) -> set[str]:
        """The parts a party plays across the book."""
        return {r.relation for r in self.relations if r.party == party}

    def lines(self, viewer: Viewer, month: dt.date | None = None, contract: str | None = None) -> pa.Table | None:
        """The stored statement lines the viewer may see, for one month and contract if given:
        the lines of its contracts (a semi-join on the table of parties), in statement order.
        None before any payment run."""
        held = self.stored()
        if held.statements is None:
            return None
        lines = held.statements
        keep = pc.is_in(lines["contract"], value_set=pa.array(sorted(self.visible(viewer)), pa.string()))
        if month is not None:
            keep = pc.and_(keep, pc.equal(lines["month"], pa.scalar(month, pa.date32())))
        if contract is not None:
            keep = pc.and_(keep, pc.equal(lines["contract"], pa.scalar(contract, pa.string())))
        return lines.filter(keep)

    def months(self) -> list[dt.date]:
        """The months the stored statements cover."""
        return self.stored().months

    def stored(self) -> "Stored":
        """What the last payment run stored, read once and again only when the warehouse's files
        change: every request would otherwise open the warehouse (some 10 ms each)."""
        stamp = _stamp(self.workspace.warehouse_path)
        held = self._stored
        if held is not None and held.stamp == stamp:
            return held
        with self._reading:
            if self._stored is None or self._stored.stamp != stamp:
                self._stored = Stored.read(self.workspace.warehouse_path, stamp)
            return self._stored


@dataclass(frozen=True)
class Stored:
    """The statements (in statement order) and positions of the last payment run, and the
    parties' outlook last worked out, as read at `stamp`."""

    stamp: tuple
    statements: pa.Table | None
    positions: pa.Table | None
    months: list[dt.date]
    outlook: pa.Table | None = None

    @classmethod
    def read(cls, path: Path, stamp: tuple) -> "Stored":
        if not path.exists():
            return cls(stamp, None, None, [])
        with duckdb.connect(str(path), read_only=True) as con:
            statements = positions = outlook = None
            if _holds(con, "outlook"):
                outlook = con.execute("SELECT * FROM outlook ORDER BY role, party").to_arrow_table()
            if _holds(con, "statements"):
                statements = con.execute(f"SELECT * FROM statements ORDER BY {STATEMENT_ORDER}").to_arrow_table()
            if _holds(con, "positions"):
                positions = con.execute("SELECT * FROM positions ORDER BY scenario, party").to_arrow_table()
        months = [] if statements is None else sorted(set(statements.column("month").to_pylist()))
        return cls(stamp, statements, positions, months, outlook)


def _stamp(path: Path) -> tuple:
    """When and how big the warehouse and its write-ahead log are: any write changes one."""
    found: list[tuple[int, int] | None] = []
    for each in (path, path.with_name(path.name + ".wal")):
        try:
            info = each.stat()
            found.append((info.st_mtime_ns, info.st_size))
        except FileNotFoundError:
            found.append(None)
    return tuple(found)


def stored_positions(book: Book, viewer: Viewer) -> pa.Table | None:
    """The positions stored by the last payment run: the viewer's own party's rows (every
    party's for an auditor or admin). None before any payment run."""
    return _own(book.stored().positions, viewer)


def stored_outlook(book: Book, viewer: Viewer) -> pa.Table | None:
    """The outlook (forecast and risk) last worked out: the viewer's own party's row (every
    party's for an auditor or admin). None before it is first worked out."""
    return _own(book.stored().outlook, viewer)


def _own(table: pa.Table | None, viewer: Viewer) -> pa.Table | None:
    if table is None or viewer.sees_everything:
        return table
    return table.filter(pc.equal(table["party"], pa.scalar(viewer.party, pa.string())))


def _holds(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
    return found is not None and found[0] > 0
