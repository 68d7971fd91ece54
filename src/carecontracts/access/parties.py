"""The parties to each contract and sub-contract, as a table: a user sees the contracts its
party is party to, so "lines this user may see" is a join on this table, never a test per page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from carecontracts.engine.agreements import agreements_of
from carecontracts.language.model import Contract
from carecontracts.workspace import Workspace

ROLES = ("commissioner", "provider", "alliance member", "auditor", "admin")
SEES_EVERYTHING = frozenset({"auditor", "admin"})
RELATIONS = ("commissioner", "provider", "prime", "sub-contractor", "alliance member")


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
        the lines of its contracts, joined to the table of parties (None before any payment run)."""
        path = self.workspace.warehouse_path
        if not path.exists():
            return None
        visible = self.visible(viewer)
        allowed = pa.table({"contract": pa.array(sorted(visible), pa.string())})
        where: list[str] = []
        parameters: list[object] = []
        if month is not None:
            where.append("s.month = ?")
            parameters.append(month)
        if contract is not None:
            where.append("s.contract = ?")
            parameters.append(contract)
        condition = ("WHERE " + " AND ".join(where)) if where else ""
        with duckdb.connect(str(path), read_only=True) as con:
            if not _holds(con, "statements"):
                return None
            con.register("allowed", allowed)
            return con.execute(
                f"SELECT s.* FROM statements s JOIN allowed a ON s.contract = a.contract {condition} "
                "ORDER BY s.month, s.contract, s.component, s.payer, s.payee", parameters
            ).to_arrow_table()

    def months(self) -> list[dt.date]:
        """The months the stored statements cover."""
        path = self.workspace.warehouse_path
        if not path.exists():
            return []
        with duckdb.connect(str(path), read_only=True) as con:
            if not _holds(con, "statements"):
                return []
            return [r[0] for r in con.execute("SELECT DISTINCT month FROM statements ORDER BY month").fetchall()]


def stored_positions(book: Book, viewer: Viewer) -> pa.Table | None:
    """The positions stored by the last payment run: the viewer's own party's rows (every
    party's for an auditor or admin). None before any payment run."""
    path = book.workspace.warehouse_path
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        if not _holds(con, "positions"):
            return None
        if viewer.sees_everything:
            return con.execute("SELECT * FROM positions ORDER BY scenario, party").to_arrow_table()
        return con.execute("SELECT * FROM positions WHERE party = ? ORDER BY scenario, party", [viewer.party]).to_arrow_table()


def _holds(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
    return found is not None and found[0] > 0
