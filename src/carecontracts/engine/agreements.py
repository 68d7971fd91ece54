"""Contracts and sub-contracts flattened into agreements: who pays whom for which activity."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from carecontracts.language.model import (
    CommissionerShare,
    ComponentTerms,
    Contract,
    Member,
    ReadmissionRule,
    ServiceFilter,
    Term,
)


@dataclass(frozen=True)
class Agreement:
    """One contract or sub-contract as the engine prices it."""

    id: str
    payee: str
    payers: tuple[CommissionerShare, ...]
    payer_is_activity_commissioner: bool
    activity_providers: tuple[str, ...]
    activity_commissioners: tuple[str, ...]
    term: Term
    services: dict[str, ServiceFilter]
    components: tuple[ComponentTerms, ...]
    contract: Contract
    path: tuple[str | int, ...]
    members: tuple[Member, ...] = ()

    def component_services(self, component: ComponentTerms) -> list[str]:
        """The services a component measures, in the contract's order."""
        return list(component.services) if component.services else list(self.services)

    def component_kind(self, component: str) -> str:
        """The kind of one of this agreement's components, by id."""
        return next(c.kind for c in self.components if c.id == component)

    def component_path(self, index: int) -> tuple[str | int, ...]:
        return self.path + ("components", index)


def agreements_of(contracts: list[Contract]) -> list[Agreement]:
    """Every contract, then its sub-contracts, whose payer is the prime provider."""
    result: list[Agreement] = []
    for contract in contracts:
        commissioners = tuple(c.id for c in contract.commissioner_shares)
        members = tuple(contract.members or ())
        prime_providers = (contract.provider,) + tuple(m.provider for m in members) + tuple(s.provider for s in contract.subcontracts)
        result.append(
            Agreement(
                id=contract.id,
                payee=contract.provider,
                payers=tuple(contract.commissioner_shares),
                payer_is_activity_commissioner=True,
                activity_providers=prime_providers,
                activity_commissioners=commissioners,
                term=contract.term,
                services=dict(contract.services),
                components=tuple(contract.components),
                contract=contract,
                path=(),
                members=members,
            )
        )
        for index, sub in enumerate(contract.subcontracts):
            result.append(
                Agreement(
                    id=sub.id,
                    payee=sub.provider,
                    payers=(CommissionerShare(id=contract.provider, share=Decimal(1), coordinating=True),),
                    payer_is_activity_commissioner=False,
                    activity_providers=(sub.provider,),
                    activity_commissioners=commissioners,
                    term=sub.term or contract.term,
                    services=dict(sub.services),
                    components=tuple(sub.components),
                    contract=contract,
                    path=("subcontracts", index),
                )
            )
    return result


def readmission_rules(agreements: list[Agreement]) -> list[ReadmissionRule]:
    """Distinct readmission rules (by what measure must flag), in a stable order."""
    rules: dict[tuple, ReadmissionRule] = {}
    for agreement in agreements:
        for component in agreement.components:
            rule = getattr(component, "readmission", None)
            if rule is not None:
                rules.setdefault(rule.signature(), rule)
    return list(rules.values())
