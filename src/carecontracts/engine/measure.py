"""measure: patient-level events → tallies per scenario, contract, component, payer, service,
currency and month. This is the one heavy scan; everything after it is small."""

from __future__ import annotations

from decimal import Decimal
from typing import Sequence

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement, readmission_rules
from carecontracts.engine.backend import Engine, month_of
from carecontracts.engine.price import table_of
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


SPELL_COLUMNS = ("spell_days", "short_stay")
SPELL_KEYS = ("pod", *SPELL_COLUMNS)  # what spell components' tallies carry besides the tally keys
NOT_A_SPELL = {"pod": "", "spell_days": 0, "short_stay": False}
ADULT_AGE = 19


def prices_spells(agreements: Sequence[Agreement]) -> bool:
    """Whether any component prices spells, so tallies keep their length of stay."""
    return any(c.kind == "spell" for a in agreements for c in a.components)


def known_cost(cost: ir.NumericColumn) -> ir.NumericScalar:
    """The sum of costs, known only when every one is: a cost missing from any event (or
    tally) makes the sum unknown (null), never the cost of the rest."""
    return ibis.cases((cost.isnull().any(), ibis.null("decimal(18, 2)")), else_=cost.sum().cast("decimal(18, 2)"))


def with_spell_columns(events: ir.Table) -> ir.Table:
    """Events with what spell pricing reads of each spell: `spell_days`, the length of stay
    net of critical care, rehabilitation and palliative days (the days that count towards
    the trim point, never below 0), and `short_stay`, a patient aged 19 or over who stayed
    0 or 1 days (an unknown age is not taken as adult)."""
    stay = events.end_date.delta(events.start_date, unit="day")
    net = stay
    for column in ("critical_care_days", "rehabilitation_days", "palliative_days"):
        if column in events.columns:
            net = net - events[column].fill_null(0)
    adult = (events.age >= ADULT_AGE).fill_null(False) if "age" in events.columns else ibis.literal(False)
    return events.mutate(spell_days=ibis.greatest(net, 0).cast("int64"), short_stay=(stay <= 1) & adult)


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
    if prices_spells(agreements):
        events = with_spell_columns(events)
        grain += list(SPELL_COLUMNS)
    rules = readmission_rules(agreements)
    flags = [readmission_column(r, rules) for r in rules]
    zero = ibis.literal(0).cast(QUANTITY_TYPE)
    metrics = {
        "quantity": events.quantity.sum().cast(QUANTITY_TYPE),
        "events": events.count(),
        "cost": known_cost(events.cost) if "cost" in events.columns else ibis.literal(None, type="decimal(18, 2)"),
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


def selects(service: ServiceFilter, key: dict[str, str | None]) -> bool:
    """Whether the service filter selects activity with these column values (as `matches`
    does in the engine: a missing value matches nothing)."""
    for column, values in service.conditions().items():
        value = key.get(column)
        if value is None or not any(value == v or (v.endswith("*") and value.startswith(v[:-1])) for v in values):
            return False
    return True


def route_dimensions(fine: ir.Table) -> list[str]:
    """The columns activity is routed on: provider, commissioner and those a filter reads."""
    return [c for c in ("provider", "commissioner", *FILTER_COLUMNS) if c in fine.columns]


def routes(engine: Engine, fine: ir.Table, agreements: Sequence[Agreement]) -> ir.Table | None:  # None: nothing measures activity
    """The routing of activity to components as a table: for each distinct combination of
    provider, commissioner and filtered columns in the fine tallies, every activity-measuring
    component it counts for, with the service it counts as (the first of the component's
    services that selects it), the payer, the months of the term and the readmission rule.

    Routing is worked out once over the distinct combinations (a few thousand, however many
    rows), so routing the tallies is one join whatever the number of contracts."""
    if not any(MECHANISMS[c.kind].measures_activity for a in agreements for c in a.components):
        return None
    dimensions = route_dimensions(fine)
    keys = engine.to_arrow(fine.select(*dimensions).distinct()).to_pylist()
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for key in keys:
        by_pair.setdefault((key["provider"], key["commissioner"]), []).append(key)
    rules = readmission_rules(list(agreements))
    rows: list[tuple] = []
    for agreement in agreements:
        measuring = [c for c in agreement.components if MECHANISMS[c.kind].measures_activity]
        if not measuring:
            continue
        pair_keys = [k for p in agreement.activity_providers for c in agreement.activity_commissioners for k in by_pair.get((p, c), [])]
        fixed_payer = None if agreement.payer_is_activity_commissioner else agreement.payers[0].id
        labels: dict[tuple[str, ...], list[str | None]] = {}
        for component in measuring:
            names = tuple(agreement.component_services(component))
            if names not in labels:
                labels[names] = [next((n for n in names if selects(agreement.services[n], key)), None) for key in pair_keys]
            rule = getattr(component, "readmission", None)
            flag = rules.index(rule) if rule is not None else -1
            share = rule.avoidable_percent / 100 if rule is not None else Decimal(0)
            for key, label in zip(pair_keys, labels[names]):
                if label is not None:
                    rows.append((*(key[c] for c in dimensions), agreement.id, component.id, fixed_payer or key["commissioner"], label,
                                 agreement.term.start.replace(day=1), agreement.term.end, flag, share, component.kind == "spell"))
    types = {c: pa.string() for c in dimensions} | {
        "contract": pa.string(), "component": pa.string(), "payer": pa.string(), "service_name": pa.string(),
        "month_from": pa.date32(), "month_to": pa.date32(), "rule": pa.int64(), "avoidable": pa.decimal128(9, 6), "spell": pa.bool_(),
    }
    return table_of(engine, types, rows)


def tallies(
    engine: Engine, fine: ir.Table, agreements: Sequence[Agreement], keep: Sequence[str] = (), table: ir.Table | None = None
) -> ir.Table | None:
    """Route fine tallies to each activity-measuring component, labelled with its service.

    A row matching several of a component's services counts once, for the first listed.
    `keep` names fine columns to carry along as `unit_<column>` (a simulation draws volume
    per provider and activity service, then sums them away). `table` is the routing table
    (`routes`) when the caller has built it already.
    """
    table = table if table is not None else routes(engine, fine, agreements)
    if table is None:
        return None
    rules = readmission_rules(list(agreements))
    dimensions = route_dimensions(fine)
    rows = fine.join(table, [fine[c].fill_null("") == table[c].fill_null("") for c in dimensions])
    rows = rows.filter(rows.month >= rows.month_from, rows.month <= rows.month_to)
    zero = ibis.literal(0).cast(QUANTITY_TYPE)
    readmitted = ibis.cases(*[(rows.rule == index, rows[readmission_column(rule, rules)]) for index, rule in enumerate(rules)], else_=zero) if rules else zero
    chargeable = (rows.quantity - (readmitted * rows.avoidable)).cast(QUANTITY_TYPE)
    # Spell components' tallies keep each spell's pod, days and short stay; others' one value
    # of each (not null, so that scenarios projecting tallies join on them as keys).
    spelled = list(SPELL_KEYS) if SPELL_COLUMNS[0] in fine.columns else []
    routed = rows.select(
        scenario=rows.scenario,
        contract=rows.contract,
        component=rows.component,
        payer=rows.payer,
        service=rows.service_name,
        currency=rows.currency,
        month=rows.month,
        quantity=rows.quantity.cast(QUANTITY_TYPE),
        readmitted=readmitted.cast(QUANTITY_TYPE),
        chargeable=chargeable,
        events=rows.events,
        cost=rows.cost,
        compliant=rows.compliant,
        **{column: ibis.cases((rows.spell, rows[column]), else_=ibis.literal(NOT_A_SPELL[column], rows[column].type())) for column in spelled},
        **{f"unit_{column}": rows[column] for column in keep},
    )
    return summed(routed, [*TALLY_KEYS, *spelled, *(f"unit_{column}" for column in keep)])


def summed(routed: ir.Table, keys: Sequence[str] | None = None) -> ir.Table:
    """Routed tallies' measures summed over `keys` (by default the tally keys and any spell
    keys, summing away any `unit_` columns carried along)."""
    keys = keys if keys is not None else [*TALLY_KEYS, *(c for c in SPELL_KEYS if c in routed.columns)]
    return routed.group_by(list(keys)).aggregate(
        quantity=routed.quantity.sum().cast(QUANTITY_TYPE),
        readmitted=routed.readmitted.sum().cast(QUANTITY_TYPE),
        chargeable=routed.chargeable.sum().cast(QUANTITY_TYPE),
        events=routed.events.sum(),
        cost=known_cost(routed.cost),
        compliant=routed.compliant.sum().cast("int64"),
    )
