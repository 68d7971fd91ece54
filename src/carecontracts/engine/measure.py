"""measure: patient-level events → tallies per scenario, contract, component, payer, service,
currency and month. This is the one heavy scan; everything after it is small."""

from __future__ import annotations

from typing import Sequence

import ibis
import ibis.expr.types as ir

from carecontracts.engine.agreements import Agreement, readmission_rules
from carecontracts.engine.backend import month_of
from carecontracts.engine.registry import MECHANISMS
from carecontracts.language.model import ReadmissionRule, ServiceFilter
from carecontracts.money import QUANTITY_TYPE

ACTUAL = "actual"
TALLY_KEYS = ["scenario", "contract", "component", "payer", "service", "currency", "month"]
FILTER_COLUMNS = ("service", "currency", "pod", "admission_method", "site")


def with_scenario(events: ir.Table, scenario: str = ACTUAL) -> ir.Table:
    """Give events a `scenario` column if they have none: real data is the `actual` scenario."""
    if "scenario" in events.columns:
        return events
    return events.mutate(scenario=ibis.literal(scenario))


def _previous_discharge(events: ir.Table, rule: ReadmissionRule) -> ir.DateValue:
    """The latest earlier discharge of the same patient from the same provider from a spell
    that can be an index admission under the rule (null if none)."""
    index_end = ibis.cases((events.pod.isin(rule.index_pods), events.end_date), else_=None)
    window = ibis.window(
        group_by=[events.scenario, events.provider, events.patient_id],
        order_by=[events.start_date, events.end_date, events.activity_id],
        rows=(None, -1),
    )
    return index_end.max().over(window)


def _readmitted(events: ir.Table, previous_discharge: ir.DateValue, rule: ReadmissionRule) -> ir.BooleanValue:
    """True for an emergency readmission within the rule's days of the previous discharge,
    unless excluded (by default maternity, cancer, transfers and children under 4)."""
    gap = events.start_date.delta(previous_discharge, unit="day")
    excluded = ibis.literal(False)
    if rule.exclude.service:
        excluded |= events.service.isin(rule.exclude.service)
    if rule.exclude.pod:
        excluded |= events.pod.isin(rule.exclude.pod)
    if rule.exclude.admission_method and "admission_method" in events.columns:
        excluded |= events.admission_method.fill_null("").isin(rule.exclude.admission_method)
    if rule.exclude.age_under is not None and "age" in events.columns:
        excluded |= events.age.fill_null(999) < rule.exclude.age_under
    return (
        events.pod.isin(rule.readmission_pods)
        & previous_discharge.notnull()
        & (gap >= 0)
        & (gap <= rule.within_days)
        & ~excluded
    ).fill_null(False)


def readmission_column(rule: ReadmissionRule, rules: list[ReadmissionRule]) -> str:
    return f"readmitted_{rules.index(rule)}"


def grain_columns(agreements: list[Agreement]) -> list[str]:
    """Columns fine tallies keep: those some service filter reads, plus service and currency."""
    used = {"service", "currency", "pod"}
    for agreement in agreements:
        for service in agreement.services.values():
            used |= set(service.conditions())
    return ["scenario", "provider", "commissioner", "month"] + [c for c in FILTER_COLUMNS if c in used]


def fine_tallies(events: ir.Table, agreements: list[Agreement]) -> ir.Table:
    """Quantities by month at the finest grain any contract needs, with the quantity of
    readmissions under each readmission rule.

    One pass aggregates every event; readmissions are found by a second, windowed pass over
    admitted spells only (the pods a rule reads), which is all the window needs to see.
    Activity counts in the month its spell, attendance or contact ended.
    """
    events = with_scenario(events)
    events = events.mutate(month=month_of(events.end_date))
    grain = grain_columns(agreements)
    missing = [c for c in grain if c not in events.columns]
    if missing:
        events = events.mutate(**{c: ibis.literal(None, type="string") for c in missing})
    rules = readmission_rules(agreements)
    flags = [readmission_column(r, rules) for r in rules]
    zero = ibis.literal(0).cast(QUANTITY_TYPE)
    metrics = {
        "quantity": events.quantity.sum().cast(QUANTITY_TYPE),
        "events": events.count(),
        "cost": events.cost.sum().cast("decimal(18, 2)") if "cost" in events.columns else ibis.literal(None, type="decimal(18, 2)"),
        "compliant": events.compliant.sum().cast("int64") if "compliant" in events.columns else ibis.literal(0).cast("int64"),
    }
    totals = events.group_by(grain).aggregate(**metrics, **{flag: zero for flag in flags})
    if not rules:
        return totals
    pods = sorted({pod for rule in rules for pod in (*rule.index_pods, *rule.readmission_pods)})
    admitted = events.filter(events.pod.isin(pods))
    admitted = admitted.mutate(**{f"previous_{flag}": _previous_discharge(admitted, rule) for flag, rule in zip(flags, rules)})
    admitted = admitted.mutate(**{flag: _readmitted(admitted, admitted[f"previous_{flag}"], rule) for flag, rule in zip(flags, rules)})
    readmissions = admitted.filter(ibis.or_(*[admitted[flag] for flag in flags]))
    readmitted = readmissions.group_by(grain).aggregate(
        **{flag: ibis.cases((readmissions[flag], readmissions.quantity), else_=0).sum().cast(QUANTITY_TYPE) for flag in flags},
    ).mutate(quantity=zero, events=ibis.literal(0).cast("int64"), cost=ibis.literal(None, type="decimal(18, 2)"), compliant=ibis.literal(0).cast("int64"))
    both = ibis.union(totals, readmitted.select(totals.columns), distinct=False)
    return both.group_by(grain).aggregate(
        quantity=both.quantity.sum().cast(QUANTITY_TYPE),
        events=both.events.sum(),
        cost=both.cost.sum().cast("decimal(18, 2)"),
        compliant=both.compliant.sum().cast("int64"),
        **{flag: both[flag].sum().cast(QUANTITY_TYPE) for flag in flags},
    )


def matches(fine: ir.Table, service: ServiceFilter) -> ir.BooleanValue:
    """Rows of `fine` (fine tallies or events) that the service filter selects."""
    condition = ibis.literal(True)
    for column, values in service.conditions().items():
        exact = [v for v in values if not v.endswith("*")]
        prefixes = [v[:-1] for v in values if v.endswith("*")]
        clause = fine[column].isin(exact) if exact else ibis.literal(False)
        for prefix in prefixes:
            clause |= fine[column].startswith(prefix)
        condition &= clause.fill_null(False)
    return condition


def tallies(fine: ir.Table, agreements: list[Agreement], keep: Sequence[str] = ()) -> ir.Table | None:
    """Route fine tallies to each activity-measuring component, labelled with its service.

    A row matching several of a component's services counts once, for the first listed.
    `keep` names fine columns to carry along as `unit_<column>` (a simulation draws volume
    per provider and activity service, then sums them away).
    """
    rules = readmission_rules(agreements)
    parts: list[ir.Table] = []
    for agreement in agreements:
        for component in agreement.components:
            if not MECHANISMS[component.kind].measures_activity:
                continue
            names = agreement.component_services(component)
            label = ibis.cases(*[(matches(fine, agreement.services[n]), n) for n in names], else_=None)
            rows = fine.filter(
                fine.provider.isin(agreement.activity_providers),
                fine.commissioner.isin(agreement.activity_commissioners),
                fine.month >= agreement.term.start.replace(day=1),
                fine.month <= agreement.term.end,
            ).mutate(service_name=label)
            rows = rows.filter(rows.service_name.notnull())
            rule = getattr(component, "readmission", None)
            if rule is not None:
                column = readmission_column(rule, rules)
                share = ibis.literal(rule.avoidable_percent / 100, type="decimal(9, 6)")
                readmitted = rows[column]
                chargeable = (rows.quantity - (readmitted * share)).cast(QUANTITY_TYPE)
            else:
                readmitted = ibis.literal(0).cast(QUANTITY_TYPE)
                chargeable = rows.quantity
            payer = rows.commissioner if agreement.payer_is_activity_commissioner else ibis.literal(agreement.payers[0].id)
            parts.append(
                rows.select(
                    scenario=rows.scenario,
                    contract=ibis.literal(agreement.id),
                    component=ibis.literal(component.id),
                    payer=payer,
                    service=rows.service_name,
                    currency=rows.currency,
                    month=rows.month,
                    quantity=rows.quantity.cast(QUANTITY_TYPE),
                    readmitted=readmitted.cast(QUANTITY_TYPE),
                    chargeable=chargeable.cast(QUANTITY_TYPE),
                    events=rows.events,
                    cost=rows.cost,
                    compliant=rows.compliant,
                    **{f"unit_{column}": rows[column] for column in keep},
                )
            )
    if not parts:
        return None
    routed = ibis.union(*parts, distinct=False)
    return routed.group_by([*TALLY_KEYS, *(f"unit_{column}" for column in keep)]).aggregate(
        quantity=routed.quantity.sum().cast(QUANTITY_TYPE),
        readmitted=routed.readmitted.sum().cast(QUANTITY_TYPE),
        chargeable=routed.chargeable.sum().cast(QUANTITY_TYPE),
        events=routed.events.sum(),
        cost=routed.cost.sum().cast("decimal(18, 2)"),
        compliant=routed.compliant.sum().cast("int64"),
    )
