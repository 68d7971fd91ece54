"""Finding a contract or sub-contract by the id a user gives, with a located error."""

from __future__ import annotations

from carecontracts.language import Contract
from carecontracts.language.model import ContractBody
from carecontracts.problems import Problem, ProblemsError


def find(contracts: list[Contract], contract_id: str) -> tuple[Contract, ContractBody]:
    """The contract holding `contract_id` and the body with that id (the contract itself or
    one of its sub-contracts); an unknown id is an error naming the known ones."""
    for contract in contracts:
        for body in [contract, *contract.subcontracts]:
            if body.id == contract_id:
                return contract, body
    known = sorted(b.id for c in contracts for b in [c, *c.subcontracts])
    raise ProblemsError([Problem("contract", f"no contract {contract_id}", value=contract_id, expected="one of " + ", ".join(known[:20]))])
