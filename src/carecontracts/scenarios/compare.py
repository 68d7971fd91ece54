"""Compare contract forms: price the same activity under block, activity, cost and volume,
aligned payment, capitation and outcome-based terms, as scenarios of the one price stage.

For a service (an activity filter), each candidate form is an ordinary contract between
each provider and commissioner of the selected activity, its terms derived from the
activity's year at a price list (so each form would have cost the same on that year):

- activity (cost per case): every unit at its price (MFF 1); the value V it gives is what
  the other forms are calibrated to;
- block: V a year in twelfths;
- cost_and_volume: baseline the year's volume at the average price (V ÷ volume, to the
  penny), a ±5% tolerance band, 50% of price per unit above the band and still paid per
  unit short of it;
- aligned_payment: a fixed element of V, planned value V, variable element 75% either side;
- capitation: V spread over the commissioner's population (every band) per head per month:
  a rate to the penny and one uniform weight correcting its rounding;
- outcome_based: a block of 95% of V and a pot of the other 5% paid on the share of
  patients improving on the provider's outcome instrument, all of it at the share achieved
  in the year, nothing 10 points below (offered only where the provider has outcome records).

Every form is then priced in one run over the scenarios: the actual year, the activity 1%
and 10% lower and higher, and (as of a month) each forecast method. From those: expected
cost, the commissioner's control (% change in cost per 1% change in activity), the
provider's revenue stability (variation of monthly payments, range across scenarios) and
the money that depends on outcomes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.engine.agreements import Agreement, agreements_of
from carecontracts.engine.backend import Engine
from carecontracts.engine.measure import ACTUAL, tallies
from carecontracts.engine.registry import MECHANISMS
from carecontracts.engine.run import RunTables, measure, price_tallies
from carecontracts.language.model import Contract, OutcomeIncentiveTerms
from carecontracts.money import to_pence
from carecontracts.outcomes.statistics import NoEpisodesError, Statistic, episodes, estimate, outcome_tallies
from carecontracts.periods import FinancialYear, month_label
from carecontracts.problems import Problem, ProblemsError
from carecontracts.scenarios.forecast import last_year_tallies, project, scenario_of
from carecontracts.scenarios.whatif import ActivityFilter, Change, _matching, apply_activity

FORMS = ("block", "activity", "cost_and_volume", "aligned_payment", "capitation", "outcome_based")
FORM_WORDS = {
    "block": "block",
    "activity": "cost per case",
    "cost_and_volume": "cost and volume",
    "aligned_payment": "aligned payment",
    "capitation": "capitation",
    "outcome_based": "outcome-based",
}
# Activity changes priced as scenarios: ±1% measures control, ±10% stress the forms.
CHANGES = {"activity-1%": Decimal(-1), "activity+1%": Decimal(1), "activity-10%": Decimal(-10), "activity+10%": Decimal(10)}
FORECAST_METHODS = ("run_rate", "seasonal")
TOLERANCE_PERCENT = Decimal(5)
MARGINAL_PERCENT = Decimal(50)
VARIABLE_PERCENT = Decimal(75)
OUTCOME_POT_PERCENT = Decimal(5)
OUTCOME_FLOOR_BELOW = Decimal("0.10")
SERVICE = "selected"


@dataclass(frozen=True)
class Pair:
    """A provider and commissioner of the selected activity, with its year at prices."""

    provider: str
    commissioner: str
    volume: Decimal = Decimal(0)
    value: Decimal = Decimal(0)


@dataclass(frozen=True)
class FormResult:
    """One form's money in every scenario and the measures drawn from it."""

    form: str
    summary: str
    costs: dict[str, Decimal]
    monthly: list[Decimal]
    expected: Decimal
    at_stake: Decimal
    earned: Decimal

    @property
    def control_per_percent(self) -> Decimal:
        """Money the cost moves per 1% change in activity (the mean of the −1% and +1% moves)."""
        return (self.costs["activity+1%"] - self.costs["activity-1%"]) / 2

    @property
    def control(self) -> Decimal:
        """% change in cost per 1% change in activity: 0 for a block, 1 for cost per case."""
        base = self.costs[ACTUAL]
        return self.control_per_percent / base * 100 if base else Decimal(0)

    @property
    def monthly_variation(self) -> Decimal:
        """Coefficient of variation of the actual year's monthly payments (population standard
        deviation ÷ mean): how unevenly the provider is paid through the year."""
        if not self.monthly:
            return Decimal(0)
        mean = sum(self.monthly, Decimal(0)) / len(self.monthly)
        if mean == 0:
            return Decimal(0)
        variance = sum(((m - mean) ** 2 for m in self.monthly), Decimal(0)) / len(self.monthly)
        return variance.sqrt() / abs(mean)

    @property
    def low(self) -> Decimal:
        return min(self.costs.values())

    @property
    def high(self) -> Decimal:
        return max(self.costs.values())

    @property
    def spread(self) -> Decimal:
        """The range of the year's income across scenarios, as a share of expected cost."""
        return (self.high - self.low) / self.expected if self.expected else Decimal(0)


@dataclass(frozen=True)
class Comparison:
    """Every offered form's result, the forms not offered and why, and the scenarios priced."""

    where: ActivityFilter
    price_list: str
    pairs: list[Pair]
    scenarios: tuple[str, ...]
    results: list[FormResult]
    unavailable: dict[str, str]
    notes: list[str] = field(default_factory=list)
    lines: pa.Table | None = None

    @property
    def value(self) -> Decimal:
        return sum((p.value for p in self.pairs), Decimal(0))

    def result(self, form: str) -> FormResult:
        return next(r for r in self.results if r.form == form)

    def conclusion(self) -> str:
        """The comparison in plain words: who gets control, who gets stability."""
        if not self.results:
            return "No form could be priced."
        # Ties go to the form that moves more over ±10% (control) or less (stability).
        control = max(self.results, key=lambda r: (round(r.control, 2), r.spread, -FORMS.index(r.form)))
        steady = min(self.results, key=lambda r: (r.spread, r.monthly_variation, FORMS.index(r.form)))
        led = (f"{FORM_WORDS[control.form]} gives the commissioner most control (cost moves {control.control:.2f}% per 1% of activity)"
               if control.control > 0 else "no form moves cost with activity")
        words = (
            f"{self.where.words()}: {led}, {FORM_WORDS[steady.form]} gives the provider the steadiest income "
            f"(range across scenarios {steady.spread * 100:.1f}% of expected, monthly variation {steady.monthly_variation * 100:.1f}%)"
        )
        outcome = [r for r in self.results if r.at_stake]
        if outcome:
            words += f"; {FORM_WORDS[outcome[0].form]} puts {outcome[0].at_stake / outcome[0].expected * 100:.1f}% of the money on outcomes" if outcome[0].expected else ""
        return words + "."


# --------------------------------------------------------------------------- terms


def _services(where: ActivityFilter) -> dict[str, Any]:
    conditions = {name: getattr(where, name) for name in ("service", "currency", "pod") if getattr(where, name)}
    return {SERVICE: conditions}


def contract_id(form: str, pair: Pair) -> str:
    """The candidate contract's id: form.provider.commissioner."""
    return f"{form}.{pair.provider}.{pair.commissioner}"


def _contract(form: str, pair: Pair, year: FinancialYear, where: ActivityFilter, components: list[dict[str, Any]]) -> Contract:
    """A candidate contract, validated as a user's contract would be."""
    return Contract.model_validate(
        {
            "id": contract_id(form, pair),
            "title": f"{FORM_WORDS[form]} for {where.words()} (comparison)",
            "commissioner": pair.commissioner,
            "provider": pair.provider,
            "term": {"start": year.months[0], "end": year.end},
            "services": _services(where),
            "components": components,
        }
    )


def activity_terms(price_list: str) -> list[dict[str, Any]]:
    return [{"id": "cases", "kind": "activity", "prices": price_list}]


def candidate(form: str, pair: Pair, price_list: str, population: Decimal | None = None, outcome: tuple[str, Decimal] | None = None) -> list[dict[str, Any]] | str:
    """The components of `form` for a pair calibrated to its year's value and volume, or why
    the form cannot be offered to it."""
    value, volume = pair.value, pair.volume
    if form == "activity":
        return activity_terms(price_list)
    if form == "block":
        return [{"id": "core", "kind": "block", "annual": value}]
    if form == "cost_and_volume":
        if volume <= 0:
            return f"{pair.provider} has no volume to set a baseline from"
        return [{"id": "volume", "kind": "cost_and_volume", "baseline_volume": volume, "price": to_pence(value / volume),
                 "tolerance_percent": TOLERANCE_PERCENT, "above_band_percent": MARGINAL_PERCENT, "below_band_percent": MARGINAL_PERCENT}]
    if form == "aligned_payment":
        return [{"id": "api", "kind": "aligned_payment", "fixed": value, "prices": price_list,
                 "variable_percent": VARIABLE_PERCENT, "planned_value": value}]
    if form == "capitation":
        if not population:
            return f"no population is loaded for {pair.commissioner}"
        rate = (value / population).quantize(Decimal("0.000001"))
        return [{"id": "capitation", "kind": "capitation", "rates": {"*": rate}}]
    if form == "outcome_based":
        if outcome is None:
            return f"{pair.provider} has no outcome records in the year"
        instrument, achieved = outcome
        core = to_pence(value * (100 - OUTCOME_POT_PERCENT) / 100)
        target = achieved.quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
        return [
            {"id": "core", "kind": "block", "annual": core},
            {"id": "outcomes", "kind": "outcome_incentive", "pot": {"amount": value - core}, "settle": "annual",
             "metrics": [{"id": instrument, "measure": {"instrument": instrument, "statistic": "share_improved"},
                          "schedule": {"floor": target - OUTCOME_FLOOR_BELOW, "target": target}}]},
        ]
    raise ValueError(f"unknown form {form}")


def _with_bands(components: list[dict[str, Any]], bands: list[str]) -> list[dict[str, Any]]:
    """Capitation terms with the one rate per head per month for every population band."""
    for component in components:
        if component["kind"] == "capitation":
            rate = component["rates"]["*"]
            component["rates"] = {band: rate for band in bands}
    return components


# --------------------------------------------------------------------------- data


def _problem(message: str, expected: str | None = None, field: str = "compare") -> ProblemsError:
    return ProblemsError([Problem(field, message, expected=expected)])


def _price_lists(engine: Engine, tables: RunTables) -> list[str]:
    assert tables.prices is not None
    return sorted(engine.to_arrow(tables.prices.select("price_list").distinct()).column("price_list").to_pylist())


def _population(engine: Engine, tables: RunTables, year: FinancialYear) -> tuple[dict[str, Decimal], list[str]]:
    """Person-months of the year per commissioner, and every population band."""
    if tables.population is None:
        return {}, []
    people = tables.population.filter(tables.population.month.isin(year.months))
    rows = engine.to_arrow(people.group_by(["commissioner", "band"]).aggregate(persons=people.persons.sum())).to_pylist()
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[row["commissioner"]] += Decimal(row["persons"])
    return dict(totals), sorted({r["band"] for r in rows})


def _outcomes(engine: Engine, tables: RunTables, year: FinancialYear, providers: list[str], instrument: str | None) -> dict[str, tuple[str, Decimal]]:
    """Per provider: the instrument its outcome incentive would pay on (the one given, or
    the one it records most episodes on) and the share of its patients improving on it by
    the instrument's minimal important difference in the year."""
    outcomes = tables.outcomes
    if outcomes is None or "provider" not in outcomes.columns:
        return {}
    every = episodes(outcomes)
    every = every.filter(every.provider.isin(providers), every.post_date >= year.months[0], every.post_date <= year.end)
    counts = engine.to_arrow(every.group_by(["provider", "instrument"]).aggregate(n=every.count())).to_pylist()
    chosen: dict[str, str] = {}
    for row in sorted(counts, key=lambda r: (-r["n"], r["instrument"])):
        if instrument is None or row["instrument"] == instrument:
            chosen.setdefault(row["provider"], row["instrument"])
    found: dict[str, tuple[str, Decimal]] = {}
    for provider, name in sorted(chosen.items()):
        mine = every.filter(every.provider == provider).mutate(group=ibis.literal(0))
        rows = engine.to_arrow(outcome_tallies(mine, ["group"], name, Statistic.SHARE_IMPROVED)).to_pylist()
        try:
            if not rows:
                raise NoEpisodesError("no episodes")
            found[provider] = (name, estimate(rows[0], Statistic.SHARE_IMPROVED).value)
        except NoEpisodesError:
            continue
    return found


# --------------------------------------------------------------------------- run


def _forecast_routed(engine: Engine, fine: ir.Table, routed: ir.Table, agreements: list[Agreement], year: FinancialYear, as_of: dt.date) -> tuple[list[tuple[str, ir.Table]], dict[str, str]]:
    """(scenario, routed tallies) for each forecast method: actual to `as_of`, then projected."""
    elapsed = [m for m in year.months if m <= as_of]
    last = last_year_tallies(engine, fine, agreements, year)
    projection = project(engine, routed, last, None, year, as_of, FORECAST_METHODS)
    actual = routed.filter(routed.scenario == ACTUAL, routed.month.isin(elapsed))
    parts = []
    for method, rows in projection.by_method.items():
        name = scenario_of(method)
        known = actual.mutate(scenario=ibis.literal(name)).select(routed.columns)
        ahead = rows.mutate(scenario=ibis.literal(name)).select(routed.columns)
        parts.append((name, ibis.union(known, ahead, distinct=False)))
    return parts, projection.unavailable


def compare_forms(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    where: ActivityFilter,
    forms: list[str],
    prices: str | None = None,
    as_of: dt.date | None = None,
    instrument: str | None = None,
) -> Comparison:
    """Price the selected activity under each form (terms derived from its year), in every
    scenario, with one measure and two price runs (one values the activity, one prices all
    forms in all scenarios); `contracts` are the workspace's, only to name who is covered."""
    unknown = [f for f in forms if f not in FORMS]
    if unknown or not forms:
        raise _problem(f"unknown form {', '.join(unknown)}" if unknown else "no forms given", f"some of {', '.join(FORMS)}", "--forms")
    if as_of is not None and as_of not in year.months:
        raise _problem(f"{month_label(as_of)} is outside the financial year {year.label}", "a month of the workspace's financial year", "--as-of")
    if where.from_ is not None or where.to is not None:
        raise _problem("a comparison prices the whole year; months cannot be chosen", "a filter by service, provider, commissioner, pod or currency", "--from/--to")
    if tables.activity is None:
        raise _problem("no activity is loaded", "files in data/activity/ and `carecontracts load`", "data/activity")
    if tables.prices is None:
        raise _problem("no prices are loaded to value the activity at", "files in prices/ and `carecontracts load`", "--prices")
    lists = _price_lists(engine, tables)
    if prices is None and len(lists) != 1:
        raise _problem(f"{len(lists)} price lists are loaded; which one values the activity?", f"--prices, one of {', '.join(lists) or 'none'}", "--prices")
    price_list = prices or lists[0]
    if price_list not in lists:
        raise _problem(f"no price list '{price_list}' is loaded", f"one of {', '.join(lists) or 'none'}", "--prices")

    selected = tables.activity.filter(_matching(tables.activity, where))
    probe = [_contract("activity", Pair("PROBE", "PROBE"), year, where, activity_terms(price_list))]
    fine, _ = measure(engine, agreements_of(probe), selected)
    assert fine is not None
    in_year = fine.filter(fine.month.isin(year.months))
    found = engine.to_arrow(in_year.group_by(["provider", "commissioner"]).aggregate(units=in_year.quantity.sum())).to_pylist()
    pairs = [Pair(r["provider"], r["commissioner"]) for r in sorted(found, key=lambda r: (r["provider"], r["commissioner"])) if r["units"]]
    if not pairs:
        raise _problem(f"{where.words()} matches no activity in {year.label}", "a filter that selects some activity (see `carecontracts pay`)", "--service/--provider/--pod")

    # Run 1: value the year's activity at prices, per pair (the calibration of every form).
    valuing = [_contract("activity", p, year, where, activity_terms(price_list)) for p in pairs]
    valuing_agreements = agreements_of(valuing)
    routed = tallies(engine, fine, valuing_agreements)
    lines = price_tallies(engine, valuing_agreements, year, tables, routed, (ACTUAL,))
    lines = lines.filter(lines.month.isin(year.months))
    sums = {r["contract"]: r for r in engine.to_arrow(lines.group_by("contract").aggregate(value=lines.amount.sum(), volume=lines.quantity.sum())).to_pylist()}
    pairs = [Pair(p.provider, p.commissioner, Decimal(sums[contract_id("activity", p)]["volume"] or 0), Decimal(sums[contract_id("activity", p)]["value"] or 0))
             for p in pairs]

    persons, bands = _population(engine, tables, year) if "capitation" in forms else ({}, [])
    outcomes = _outcomes(engine, tables, year, sorted({p.provider for p in pairs}), instrument) if "outcome_based" in forms else {}
    unavailable: dict[str, str] = {}
    notes: list[str] = []
    candidates: list[Contract] = []
    for form in forms:
        built: list[Contract] = []
        why: list[str] = []
        for pair in pairs:
            terms = candidate(form, pair, price_list, persons.get(pair.commissioner), outcomes.get(pair.provider))
            if isinstance(terms, str):
                why.append(terms)
            else:
                built.append(_contract(form, pair, year, where, _with_bands(terms, bands)))
        if why:
            unavailable[form] = "; ".join(why)
        else:
            candidates += built
    if "outcome_based" in forms and "outcome_based" not in unavailable:
        notes += [f"outcome-based: {provider} paid on the share improving on {name} ({achieved * 100:.1f}% in {year.label})"
                  for provider, (name, achieved) in sorted(outcomes.items()) if any(p.provider == provider for p in pairs)]

    # Run 2: every offered form in every scenario.
    agreements = agreements_of(candidates)
    scenarios: list[str] = [ACTUAL]
    changed = [fine]
    for name, percent in CHANGES.items():
        rows, _ = apply_activity(engine, fine, [Change(scale=where, percent=percent)], name)
        changed.append(rows.select(fine.columns))
        scenarios.append(name)
    # Forms that measure no activity (block, capitation) price without tallies.
    routed = tallies(engine, ibis.union(*changed, distinct=False), agreements)
    actual_routed = tallies(engine, fine, agreements)
    if as_of is not None and routed is not None and actual_routed is not None:
        projected, missing = _forecast_routed(engine, fine, engine.cache(actual_routed), agreements, year, as_of)
        notes += [f"no {method} forecast: {why}" for method, why in missing.items()]
        routed = ibis.union(routed, *[rows for _, rows in projected], distinct=False)
        scenarios += [name for name, _ in projected]
    elif as_of is not None:
        notes.append("no forecast: none of these forms depends on activity")
    routed = engine.cache(routed) if routed is not None else None
    priced = price_tallies(engine, agreements, year, tables, routed, tuple(scenarios))
    priced = priced.filter(priced.month.isin(year.months))
    table = engine.to_arrow(priced.group_by(["scenario", "contract", "component", "month"]).aggregate(amount=priced.amount.sum()))
    return Comparison(where, price_list, pairs, tuple(scenarios), _results(table, forms, unavailable, candidates, year, as_of), unavailable, notes, table)


def _results(table: pa.Table, forms: list[str], unavailable: dict[str, str], candidates: list[Contract], year: FinancialYear, as_of: dt.date | None) -> list[FormResult]:
    """Per offered form: costs by scenario, the actual monthly payments, outcome money."""
    costs: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    monthly: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: {m: Decimal(0) for m in year.months})
    earned: dict[str, Decimal] = defaultdict(Decimal)
    outcome_parts = {(c.id, k.id) for c in candidates for k in c.components if k.kind == "outcome_incentive"}
    for row in table.to_pylist():
        form = row["contract"].split(".", 1)[0]
        costs[form][row["scenario"]] += row["amount"]
        if row["scenario"] == ACTUAL:
            monthly[form][row["month"]] += row["amount"]
            if (row["contract"], row["component"].split(".", 1)[0]) in outcome_parts:
                earned[form] += row["amount"]
    at_stake: dict[str, Decimal] = defaultdict(Decimal)
    for contract in candidates:
        for component in contract.components:
            # The forms compared are built by `candidate` with one pot amount for the year.
            if isinstance(component, OutcomeIncentiveTerms) and isinstance(component.pot.amount, Decimal):
                at_stake[contract.id.split(".", 1)[0]] += component.pot.amount
    results = []
    for form in forms:
        if form in unavailable:
            continue
        by = dict(costs[form])
        forecasts = [v for k, v in by.items() if k.startswith("forecast:")]
        expected = to_pence(sum(forecasts, Decimal(0)) / len(forecasts)) if as_of is not None and forecasts else by.get(ACTUAL, Decimal(0))
        kinds = sorted({k.kind for c in candidates if c.id.startswith(form + ".") for k in c.components})
        summary = "; ".join(MECHANISMS[k].summary for k in kinds)
        results.append(FormResult(form, summary, by, list(monthly[form].values()), expected, at_stake[form], earned[form]))
    return results


__all__ = ["FORMS", "Comparison", "FormResult", "Pair", "compare_forms", "candidate", "contract_id"]
