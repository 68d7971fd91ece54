"""Party positions: what each party receives, pays and (where activity carries costs)
spends, per scenario. Money is conserved: in every scenario Σ income = Σ payments."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement
from carecontracts.engine.measure import known_cost
from carecontracts.money import AMOUNT_TYPE

POSITION_COLUMNS = ["scenario", "party", "role", "income", "payments", "net", "costs", "margin"]
ROLES = ("commissioner", "prime", "provider", "sub-contractor", "alliance member", "other")


def roles(agreements: list[Agreement]) -> dict[str, str]:
    """Each party's part in the contracts: commissioner, prime, sub-contractor, alliance
    member or provider (the first that applies, in that order)."""
    found: dict[str, str] = {}
    for agreement in agreements:
        if agreement.path == ():
            for payer in agreement.payers:
                found.setdefault(payer.id, "commissioner")
    for agreement in agreements:
        if agreement.path == () and agreement.contract.subcontracts:
            found.setdefault(agreement.payee, "prime")
    for agreement in agreements:
        if agreement.path != ():
            found.setdefault(agreement.payee, "sub-contractor")
        for member in agreement.members:
            found.setdefault(member.provider, "alliance member")
        found.setdefault(agreement.payee, "provider")
    return found


EXPENDITURE_KINDS = frozenset({"shared_savings"})  # these read activity `cost` as the payer's spending, not a provider's


def deliverers(agreements: list[Agreement]) -> set[str]:
    """The parties whose activity `cost` is their own cost of delivering it: each payee (and
    alliance member) of an agreement that pays for care. Activity cost is never a commissioner's
    or payer's, and under a contract paid only on the payer's spending (shared savings, as
    for an accountable care organisation) it is that spending, not the payee's cost."""
    found: set[str] = set()
    for agreement in agreements:
        if agreement.components and all(c.kind in EXPENDITURE_KINDS for c in agreement.components):
            continue
        found.add(agreement.payee)
        found.update(m.provider for m in agreement.members)
    return found


def positions(lines: ir.Table, fine: ir.Table | None, agreements: list[Agreement], months: list[dt.date]) -> ir.Table:
    """Per scenario and party: income (lines it is paid), payments (lines it pays), net,
    costs of the activity it delivered in the months (null unless all of it carries costs,
    or where the party is not paid to deliver it: see `deliverers`), margin."""
    lines = lines.filter(lines.month.isin(months))
    zero = ibis.literal(0).cast(AMOUNT_TYPE)
    received = lines.select("scenario", party=lines.payee, income=lines.amount, payments=zero)
    paid = lines.select("scenario", party=lines.payer, income=zero, payments=lines.amount)
    flows = ibis.union(received, paid, distinct=False)
    table = flows.group_by(["scenario", "party"]).aggregate(
        income=flows.income.sum().cast(AMOUNT_TYPE), payments=flows.payments.sum().cast(AMOUNT_TYPE)
    )
    delivering = sorted(deliverers(agreements))
    if fine is not None and delivering:
        # Parties as a joined table, not a list of literals: a book has thousands of them.
        payees = ibis.memtable(pa.table({"provider": pa.array(delivering, pa.string())}))
        spent = fine.filter(fine.month.isin(months)).semi_join(payees, "provider")
        spent = spent.group_by(["scenario", spent.provider.name("party")]).aggregate(costs=known_cost(spent.cost).cast(AMOUNT_TYPE))
        table = table.left_join(spent, ["scenario", "party"]).drop("scenario_right", "party_right")
    else:
        table = table.mutate(costs=ibis.literal(None, type=AMOUNT_TYPE))
    parts = roles(agreements)
    known = ibis.memtable(pa.table({
        "party": pa.array(list(parts), pa.string()),
        "known_role": pa.array(list(parts.values()), pa.string()),
        "rank": pa.array([ROLES.index(part) for part in parts.values()], pa.int64()),
    }))
    table = table.left_join(known, "party").drop("party_right")
    net = (table.income - table.payments).cast(AMOUNT_TYPE)
    table = table.mutate(role=table.known_role.fill_null("other"), rank=table["rank"].fill_null(ROLES.index("other")), net=net,
                         margin=(net - table.costs).cast(AMOUNT_TYPE))
    return table.order_by(["scenario", "rank", "party"]).select(POSITION_COLUMNS)
