"""The headline total every command and the report show, defined once: what commissioners pay.
Payments between providers (a prime to its sub-contractors) are part of what the commissioners
pay the prime, so they are shown apart and never added in."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from carecontracts.language import Contract
from carecontracts.money import format_money


def commissioners(contracts: Iterable[Contract]) -> set[str]:
    """Every party that commissions a contract: the payers whose payments are the headline."""
    return {share.id for contract in contracts for share in contract.commissioner_shares}


@dataclass(frozen=True)
class Headline:
    """What commissioners pay, and what providers pay their sub-contractors within that."""

    commissioners_pay: Decimal
    between_providers: Decimal

    def words(self, verb: str = "pay") -> str:
        said = f"Commissioners {verb} {format_money(self.commissioners_pay)}"
        if self.between_providers:
            said += (f"; within that, providers {verb} their sub-contractors {format_money(self.between_providers)} "
                     "(shown apart, not added in)")
        return said + "."


def headline(lines: pa.Table, paying: set[str]) -> Headline:
    """The headline of statement lines (any table with `payer` and `amount`)."""
    by_commissioner = pc.is_in(lines["payer"], value_set=pa.array(sorted(paying), pa.string()))
    ours = pc.sum(lines.filter(by_commissioner)["amount"]).as_py() or Decimal(0)
    theirs = pc.sum(lines.filter(pc.invert(by_commissioner))["amount"]).as_py() or Decimal(0)
    return Headline(Decimal(ours), Decimal(theirs))


def changed(differences: Iterable, paying: set[str], side: str = "difference") -> Headline:
    """The headline of a what-if's differences (each with `payer` and the side asked for:
    `baseline`, `scenario` or `difference`)."""
    items = list(differences)
    return headline(pa.table({"payer": pa.array([d.payer for d in items], pa.string()),
                              "amount": pa.array([getattr(d, side) for d in items], pa.decimal128(38, 2))}), paying)
