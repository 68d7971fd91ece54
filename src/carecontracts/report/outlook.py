"""The outlook report: monthly actual against plan and forecast (with the range over the
forecast methods), a waterfall from the actual to date to the outturn by contract, party
positions at outturn, a what-if and a comparison of contract forms, as one self-contained
HTML page (charts as inline SVG) and an XLSX workbook of the same tables; with a
simulation, its risk section and sheets as well."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np

from carecontracts.engine.agreements import agreements_of
from carecontracts.engine.backend import Engine
from carecontracts.engine.positions import roles
from carecontracts.engine.run import RunTables
from carecontracts.language.model import Contract
from carecontracts.money import currency_symbol, format_money, format_signed
from carecontracts.periods import FinancialYear
from carecontracts.report.audit_html import STYLE
from carecontracts.report.charts import BLUE, GREY, INK, ORANGE
from carecontracts.report.plans import VARIANCE_WORDS, commissioners_plan, direction, plans_by_contract, variance_to_plan
from carecontracts.report.pages import EXTRA_STYLE, GREEN, PLAN_COLOUR, esc, html_table, month_name, pounds_label, style_axis, svg, write_text
from carecontracts.report.risk import risk_section, risk_tables
from carecontracts.totals import changed, commissioners
from carecontracts.report.sheets import FIRST_ROW, Share, Table, Variance, row_sum, subtotal, sum_where_blank, write_book
from carecontracts.report.xlsx import Cell, Formula, Style, column_letter
from carecontracts.scenarios.forecast import METHOD_WORDS, METHODS, forecast
from carecontracts.scenarios.whatif import WhatIf, WhatIfResult, run_forward, run_whatif

if TYPE_CHECKING:
    from carecontracts.scenarios.simulate import Simulation

ZERO = Decimal(0)
TOTAL = "total"


@dataclass(frozen=True)
class ContractOutlook:
    """One contract's (or the commissioners' total) money by month: actual to the as-of
    month, each method's forecast of the whole year, and the plan where there is one."""

    contract: str
    title: str
    actual: dict[dt.date, Decimal]
    forecasts: dict[str, dict[dt.date, Decimal]]
    plan: dict[dt.date, Decimal] | None
    sub_contract_of: str | None = None

    @property
    def actual_to_date(self) -> Decimal:
        return sum(self.actual.values(), ZERO)

    def outturn(self, method: str) -> Decimal:
        """The year's amount by one method (actual to date plus its projection)."""
        return sum(self.forecasts.get(method, {}).values(), ZERO)

    @property
    def outturns(self) -> dict[str, Decimal]:
        return {method: self.outturn(method) for method in self.forecasts}

    @property
    def planned(self) -> Decimal | None:
        return None if self.plan is None else sum(self.plan.values(), ZERO)


@dataclass(frozen=True)
class PartyOutturn:
    """A party's position at outturn by the headline method, with its net over every method."""

    party: str
    role: str
    income: Decimal
    payments: Decimal
    net_by_method: dict[str, Decimal]

    @property
    def net(self) -> Decimal:
        return self.income - self.payments


@dataclass
class Outlook:
    """Everything the report shows, gathered once; money as Decimal."""

    name: str
    year: FinancialYear
    as_of: dt.date
    methods: tuple[str, ...]
    headline: str
    unavailable: dict[str, str]
    contracts: list[ContractOutlook]
    total: ContractOutlook
    positions: list[PartyOutturn]
    whatif: WhatIfResult | None = None
    comparison: Any = None
    notes: list[str] = field(default_factory=list)
    risk: Simulation | None = None
    paying: frozenset[str] = frozenset()  # the commissioners: whose payments are the headline (`totals`)
    whatif_on_forecast: bool = False  # the what-if is priced on the headline forecast (actual to as_of, projected after)

    @property
    def months(self) -> list[dt.date]:
        return self.year.months

    @property
    def projected_months(self) -> list[dt.date]:
        return [m for m in self.year.months if m > self.as_of]

    @property
    def variance(self) -> Decimal | None:
        """The commissioners' plan − forecast outturn (headline method): None when not every
        contract they pay has a plan."""
        planned = self.total.planned
        return None if planned is None else variance_to_plan(planned, self.total.outturn(self.headline))

    def range_of(self, outlook: ContractOutlook) -> tuple[Decimal, Decimal]:
        """Lowest and highest outturn over the methods."""
        values = list(outlook.outturns.values()) or [ZERO]
        return min(values), max(values)


def gather(
    engine: Engine,
    contracts: list[Contract],
    year: FinancialYear,
    tables: RunTables,
    as_of: dt.date,
    name: str = "",
    methods: tuple[str, ...] = METHODS,
    whatif: WhatIf | None = None,
    comparison: Any = None,
) -> Outlook:
    """Forecast the year as of a month, read the plans, price the what-if (if any), and
    arrange them by contract, month and party; a comparison of contract forms, priced by
    the caller (carecontracts.scenarios.compare), is carried as given."""
    result = forecast(engine, contracts, year, tables, as_of, methods)
    headline = "blend" if "blend" in result.methods else result.methods[0]
    agreements = agreements_of(contracts)
    titles = {a.id: (a.contract.title or "") if a.path == () else "" for a in agreements}
    prime_of = {a.id: a.contract.id for a in agreements if a.path != ()}
    top_level = {a.id for a in agreements if a.path == ()}
    plans = plans_by_contract(engine, tables)

    by_contract: dict[str, dict[str, dict[dt.date, Decimal]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(Decimal)))
    income: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    payments: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in result.lines.select(["scenario", "contract", "payer", "payee", "month", "amount"]).to_pylist():
        method = row["scenario"].split(":", 1)[1]
        by_contract[row["contract"]][method][row["month"]] += row["amount"]
        income[row["payee"]][method] += row["amount"]
        payments[row["payer"]][method] += row["amount"]

    def outlook_of(contract: str, forecasts: dict[str, dict[dt.date, Decimal]], plan: dict[dt.date, Decimal] | None, title: str = "") -> ContractOutlook:
        headline_months = forecasts.get(headline, {})
        actual = {m: headline_months.get(m, ZERO) for m in year.months if m <= as_of}
        whole = {method: {m: by.get(m, ZERO) for m in year.months} for method, by in forecasts.items()}
        return ContractOutlook(contract, title, actual, whole, plan, prime_of.get(contract))

    order = [a.id for a in agreements]
    contract_outlooks = [
        outlook_of(c, by_contract[c], {m: plans[c].get(m, ZERO) for m in year.months} if c in plans else None, titles.get(c, ""))
        for c in order if c in by_contract
    ]
    # The commissioners' total: top-level contracts only, so money a prime passes on to its
    # sub-contractors is not counted twice.
    total_forecasts: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for outlook in contract_outlooks:
        if outlook.contract not in top_level:
            continue
        for method, months in outlook.forecasts.items():
            for month, amount in months.items():
                total_forecasts[method][month] += amount
    planned_contracts = [o for o in contract_outlooks if o.plan is not None and o.contract in top_level]
    total_plan, unplanned = commissioners_plan({o.contract: o.plan for o in planned_contracts if o.plan is not None}, top_level)
    every_plan = not unplanned
    total = outlook_of(TOTAL, total_forecasts, total_plan, "What the commissioners pay")

    parts = roles(agreements)
    parties = sorted(set(income) | set(payments), key=lambda p: (_ROLE_ORDER.get(parts.get(p, "other"), 9), p))
    positions = [
        PartyOutturn(p, parts.get(p, "other"), income[p][headline], payments[p][headline],
                     {m: income[p][m] - payments[p][m] for m in result.methods})
        for p in parties
    ]
    notes = [f"No {m} forecast: {why}." for m, why in result.unavailable.items()]
    if planned_contracts and not every_plan:
        notes.append(f"Plans: {len(planned_contracts)} of {len(top_level)} contracts have planned values in data/plans "
                     f"({', '.join(o.contract for o in planned_contracts)}), so the total has no plan; each of theirs is drawn below.")
    report = Outlook(name, year, as_of, result.methods, headline, result.unavailable, contract_outlooks, total, positions, notes=notes,
                     paying=frozenset(commissioners(contracts)))
    if whatif is not None:
        if as_of >= year.months[-1]:
            report.whatif = run_whatif(engine, contracts, year, tables, whatif)
        else:
            report.whatif = run_forward(engine, contracts, year, tables, whatif, as_of, methods=(headline,)).by_method[headline]
            report.whatif_on_forecast = True
    report.comparison = comparison
    return report


_ROLE_ORDER = {"commissioner": 0, "prime": 1, "provider": 2, "sub-contractor": 3, "alliance member": 4, "other": 5}


# --------------------------------------------------------------------------- charts

def monthly_chart(report: Outlook, outlook: ContractOutlook, size: tuple[float, float] = (7.5, 3.2), legend: bool = True) -> str:
    """Actual to the as-of month, the headline forecast beyond it with the range over the
    methods shaded, and the plan where there is one."""
    months = report.months
    x = np.arange(len(months))
    done = len(outlook.actual)
    figure, axis = plt.subplots(figsize=size)
    methods = [m for m in report.methods if m in outlook.forecasts]
    if methods and done < len(months):
        values = np.array([[float(outlook.forecasts[m][month]) for month in months] for m in methods])
        low, high = values.min(axis=0), values.max(axis=0)
        span = slice(done - 1 if done else 0, len(months))
        axis.fill_between(x[span], low[span], high[span], color=BLUE, alpha=0.18, linewidth=0, label=f"range over {', '.join(methods)}")
        headline = [float(outlook.forecasts[report.headline][m]) for m in months] if report.headline in outlook.forecasts else list(values[0])
        axis.plot(x[span], np.array(headline)[span], color=BLUE, linestyle="--", linewidth=1.8, marker="o", markersize=3,
                  label=f"forecast ({report.headline})")
    if outlook.plan is not None:
        axis.plot(x, [float(outlook.plan[m]) for m in months], color=PLAN_COLOUR, linestyle=":", linewidth=1.6, label="plan (planned value)")
    if done:
        axis.plot(x[:done], [float(outlook.actual[m]) for m in months[:done]], color=INK, linewidth=2, marker="o", markersize=3.5, label="actual")
        axis.axvline(done - 1 + 0.5, color=GREY, linewidth=0.8, linestyle="-")
    axis.set_xticks(x, [month_name(m) for m in months], rotation=45, ha="right", fontsize=7)
    axis.tick_params(axis="y", labelsize=8)
    axis.set_ylim(bottom=0 if axis.get_ylim()[0] >= 0 else None)
    title = outlook.contract if outlook.contract != TOTAL else f"All contracts: {outlook.title.lower()}"
    style_axis(axis, title + (f" (sub-contract of {outlook.sub_contract_of})" if outlook.sub_contract_of else ""))
    if legend:
        axis.legend(fontsize=8, frameon=False, loc="lower left", ncol=2)
    return svg(figure)


def _waterfall(start: tuple[str, float], steps: list[tuple[str, float]], end: tuple[str, float], title: str, zoom: bool = False) -> str:
    """A bar for `start`, each step floating from the running total (orange when it adds to
    what is paid, green when it takes away), and a bar for `end`; `zoom` fits the axis to the
    steps rather than to the bars (for steps small beside the totals, as variances are)."""
    labels = [start[0], *[s[0] for s in steps], end[0]]
    figure, axis = plt.subplots(figsize=(9.5, 3.8))
    axis.bar(0, start[1], color=INK, width=0.6)
    running = start[1]
    for index, (_, step) in enumerate(steps, start=1):
        axis.bar(index, step, bottom=running, color=ORANGE if step >= 0 else GREEN, width=0.6)
        axis.plot([index - 1.3, index + 0.3], [running, running], color=GREY, linewidth=0.6)
        axis.text(index, running + max(step, 0), pounds_label(step) if step < 0 else "+" + pounds_label(step), ha="center", va="bottom", fontsize=7)
        running += step
    axis.bar(len(labels) - 1, end[1], color=BLUE, width=0.6)
    axis.plot([len(labels) - 2.3, len(labels) - 1 + 0.3], [running, running], color=GREY, linewidth=0.6)
    for index, value in ((0, start[1]), (len(labels) - 1, end[1])):
        axis.text(index, value, pounds_label(value), ha="center", va="bottom", fontsize=8, fontweight="bold")
    axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    axis.tick_params(axis="y", labelsize=8)
    running_totals = [start[1] + sum(s for _, s in steps[:i]) for i in range(len(steps) + 1)]
    low = min(start[1], end[1], *running_totals)
    if zoom:
        high = max(start[1], end[1], *running_totals)
        span = (high - low) or abs(high) * 0.01 or 1.0
        axis.set_ylim(max(0.0, low - span * 1.5), high + span * 0.5)
        title += f" (the axis does not start at {currency_symbol()}0)"
    else:
        axis.set_ylim(bottom=max(0.0, low * 0.9))
    style_axis(axis, title)
    return svg(figure)


def waterfall_chart(report: Outlook) -> str:
    """From the actual to date, each contract's projected remainder (headline method) as a
    floating bar, to the outturn."""
    top = [o for o in report.contracts if o.sub_contract_of is None]
    steps = [(o.contract, float(o.outturn(report.headline) - o.actual_to_date)) for o in top]
    return _waterfall((f"actual to {month_name(report.as_of)}", float(report.total.actual_to_date)), steps,
                      ("outturn", float(report.total.outturn(report.headline))),
                      f"From the actual to {month_name(report.as_of)} to the outturn ({report.headline}), by contract: the projected rest of the year")


def bridge_chart(report: Outlook) -> str:
    """The variance bridge: from the commissioners' plan, each contract's outturn − plan
    (orange where it pays more than planned, green where less), to the forecast outturn."""
    top = [o for o in report.contracts if o.sub_contract_of is None and o.planned is not None]
    steps = [(o.contract, float(o.outturn(report.headline) - (o.planned or ZERO))) for o in top]
    return _waterfall(("plan", float(report.total.planned or ZERO)), steps, ("forecast outturn", float(report.total.outturn(report.headline))),
                      f"From plan to forecast outturn ({report.headline}), by contract: orange pays more than planned (adverse), green less (favourable)",
                      zoom=True)


# --------------------------------------------------------------------------- tables


def _range_text(low: Decimal, high: Decimal) -> str:
    return f"{format_money(low)} – {format_money(high)}"


def outturn_rows(report: Outlook) -> list[list[Any]]:
    """contract, actual to date, projected, outturn, low, high, plan, variance to plan (plan −
    outturn) and whether it is favourable or adverse."""
    rows: list[list[Any]] = []
    for outlook in [*report.contracts, report.total]:
        low, high = report.range_of(outlook)
        outturn = outlook.outturn(report.headline)
        planned = outlook.planned
        variance = None if planned is None else Variance(variance_to_plan(planned, outturn))
        name = outlook.contract + (f" (sub-contract of {outlook.sub_contract_of})" if outlook.sub_contract_of else "")
        rows.append([name, outlook.actual_to_date, outturn - outlook.actual_to_date, outturn, low, high, planned, variance, direction(variance)])
    return rows


def outturn_headings(report: Outlook) -> list[str]:
    """The outturn table's headings, the months to date and ahead named M1–M12."""
    return ["contract", *report.year.outturn_spans(report.as_of), "outturn", "lowest", "highest", "plan", "variance to plan", "favourable / adverse"]


POSITION_HEADINGS = ["party", "role", "income", "payments", "net", "lowest net", "highest net"]


def position_rows(report: Outlook) -> list[list[Any]]:
    """party, role, income, payments, net (headline), and its lowest and highest over the methods."""
    return [[p.party, p.role, p.income, p.payments, p.net, min(p.net_by_method.values()), max(p.net_by_method.values())] for p in report.positions]


def whatif_rows(result: WhatIfResult) -> list[list[Any]]:
    """contract, component, kind, payer, payee, baseline, what-if, difference, why."""
    return [[d.contract, d.component, d.kind, d.payer, d.payee, d.baseline, d.scenario, d.difference, d.reason] for d in result.differences]


WHATIF_HEADINGS = ["contract", "component", "kind", "payer", "payee", "baseline", "what-if", "difference", "why"]


COMPARISON_HEADINGS = ["form", "terms", "expected", "lowest", "highest", "% cost per 1% activity", "range / expected", "monthly variation", "on outcomes"]


def comparison_table(comparison: Any) -> tuple[list[str], list[list[Any]]] | None:
    """A comparison of contract forms as rows: each form's expected cost, its range over the
    scenarios, the commissioner's control and the provider's stability (None without one)."""
    if comparison is None:
        return None
    rows = [[r.form, r.summary, r.expected, r.low, r.high, Share(float(r.control) / 100, places=2), Share(float(r.spread)),
             Share(float(r.monthly_variation)), r.at_stake] for r in comparison.results]
    return COMPARISON_HEADINGS, rows


def whatif_span(report: Outlook) -> str:
    """Which months the what-if is priced on: actual to the as-of month and projected after it
    (headline forecast), or the year's actual activity."""
    result = report.whatif
    assert result is not None
    months = result.months
    if not report.whatif_on_forecast:
        return f"Against the year's actual activity, {month_name(months[0])} to {month_name(months[-1])}"
    done = [m for m in months if m <= report.as_of]
    ahead = [m for m in months if m > report.as_of]
    number = report.year.number
    return (f"On the {report.headline} forecast as of {month_name(report.as_of)}: {month_name(done[0])} to {month_name(done[-1])} "
            f"(M{number(done[0])}–M{number(done[-1])}) actual, {month_name(ahead[0])} to {month_name(ahead[-1])} "
            f"(M{number(ahead[0])}–M{number(ahead[-1])}) projected")


def render(report: Outlook) -> str:
    """The page's HTML: headline figures, charts, then the tables."""
    as_of = month_name(report.as_of)
    headline_words = METHOD_WORDS[report.headline]
    total = report.total
    low, high = report.range_of(total)
    outturn = total.outturn(report.headline)
    title = f"{report.name + ': ' if report.name else ''}outlook {report.year.label} as of {as_of}"
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title><style>{STYLE}{EXTRA_STYLE}</style></head><body>"]
    parts.append(f"<h1>{esc(title)}</h1>")
    parts.append(f"<p class='note'>Actual payments to {as_of}; the rest of the year projected by each forecast method the data allows "
                 f"({esc(', '.join(report.methods))}), every method priced by the same contract terms as the payments. "
                 f"Headline: {esc(report.headline)} ({esc(headline_words)}); the range is the lowest to highest outturn over the methods.</p>")
    cards = [
        (format_money(total.actual_to_date), f"paid to {as_of}"),
        (format_money(outturn), f"outturn {report.year.label} ({report.headline})"),
        (_range_text(low, high), "range over the methods"),
    ]
    if report.variance is not None:
        cards.append((format_signed(report.variance),
                      f"variance to plan of {format_money(total.planned or ZERO)}: {direction(report.variance)}"))
    parts.append("<div class='headline'>" + "".join(f"<div><b>{esc(v)}</b><span>{esc(w)}</span></div>" for v, w in cards) + "</div>")
    for note in report.notes:
        parts.append(f"<p class='note'>{esc(note)}</p>")

    parts.append("<h2>Month by month: actual, plan and forecast</h2>")
    parts.append(f"<div>{monthly_chart(report, total, (10, 3.8))}</div>")
    parts.append(f"<p class='note'>Each contract below: black, actual; blue dashed, forecast ({esc(report.headline)}) with the range over the methods shaded; "
                 "grey dotted, plan. A vertical line marks the last month of actual data.</p>")
    parts.append("<div class='small'>" + "".join(f"<div>{monthly_chart(report, o, (5.6, 3.0), legend=False)}</div>" for o in report.contracts) + "</div>")
    parts.append("<p class='note'>Plan: for a contract with payment plans in data/plans (rows naming a component), the payments "
                 "planned, so plan against outturn means the same for a block or an aligned payment's fixed element as for activity. "
                 "For a contract with only activity plans, the planned value of its planned activity: for a block or the fixed "
                 "element of an aligned payment that is not the payment planned.</p>")

    parts.append("<h2>From the actual to date to the outturn</h2>")
    parts.append(f"<div>{waterfall_chart(report)}</div>")
    parts.append("<h2>From plan to forecast outturn</h2>")
    if report.variance is None:
        parts.append("<p class='note'>No variance bridge: not every contract the commissioners pay has a plan in data/plans.</p>")
    else:
        parts.append(f"<div>{bridge_chart(report)}</div>")
    parts.append(f"<h2>Outturn by contract</h2><p class='note'>Outturn by {esc(report.headline)}; lowest and highest over {esc(', '.join(report.methods))}. "
                 "The total is what the commissioners pay: sub-contracts are paid by their prime out of its contract, so are not added again. "
                 f"{esc(VARIANCE_WORDS)}</p>")
    parts.append(html_table(outturn_headings(report), outturn_rows(report), bold_last=True))

    parts.append(f"<h2>Party positions at outturn</h2><p class='note'>Income − payments over {report.year.label} by {esc(report.headline)}, "
                 "with the lowest and highest net over the methods.</p>")
    parts.append(html_table(POSITION_HEADINGS, position_rows(report)))

    parts.append("<h2>What if</h2>")
    if report.whatif is None:
        parts.append("<p class='note'>No what-if given (carecontracts report --whatif FILE.yaml).</p>")
    else:
        result = report.whatif
        changes = "; ".join(c.describe() for c in result.whatif.changes)
        moved = changed(result.differences, set(report.paying))
        sub = moved.commissioners_pay
        parts.append(f"<p><b>{esc(result.whatif.name)}</b>: {esc(changes)}. {esc(whatif_span(report))}: "
                     f"{'a saving of ' + format_money(-sub) if sub < 0 else 'an extra ' + format_money(sub) if sub > 0 else 'no change'}"
                     " to what the commissioners pay" + (f"; within that, what providers pay their sub-contractors changes by "
                                                         f"{format_money(moved.between_providers)}" if moved.between_providers else "") + ".</p>")
        for warning in result.warnings():
            parts.append(f"<p class='note'>Warning: {esc(warning)}</p>")
        rows = [row for row in whatif_rows(result) if row[7] != 0]
        unchanged = len(result.differences) - len(rows)
        before, after = (changed(result.differences, set(report.paying), side) for side in ("baseline", "scenario"))
        if moved.between_providers:
            rows.append(["within that, to sub-contractors", "", "", "", "", before.between_providers, after.between_providers,
                         moved.between_providers, "paid by a prime out of what the commissioners pay it: not added in"])
        rows.append(["what the commissioners pay", "", "", "", "", before.commissioners_pay, after.commissioners_pay, moved.commissioners_pay, ""])
        parts.append(html_table(WHATIF_HEADINGS, rows, bold_last=True))
        if unchanged:
            parts.append(f"<p class='note'>{unchanged} other component lines do not change (all are in the workbook's What-if sheet).</p>")
        parts.append("<h3>Change in each party's net position</h3>")
        parts.append(html_table(["party", "change"], [[p, c] for p, c in sorted(result.by_party().items()) if c]))

    parts.append("<h2>Contract forms compared</h2>")
    compared = comparison_table(report.comparison)
    if compared is None:
        parts.append("<p class='note'>No comparison of contract forms in this report.</p>")
    else:
        parts.append(f"<p>{esc(report.comparison.conclusion())}</p>")
        parts.append(html_table(*compared))
    if report.risk is not None:
        parts.append(f"<h2>Risk: {report.risk.runs:,} simulated runs</h2>")
        parts.append(risk_section(report.risk))
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- files


def write_html(report: Outlook, path: Path) -> Path:
    """Write the page (temporary file, then replace), so a failure leaves no half page."""
    return write_text(render(report), path)


def monthly_rows(report: Outlook) -> tuple[list[str | dt.date], list[list[Any]]]:
    """contract, series, then a column per month (headed by the month as a date) and the
    year (a SUM of the row's months): actual, plan and each method."""
    headings: list[str | dt.date] = ["contract", "series", *report.months, "year"]
    first, last = 3, 2 + len(report.months)
    rows: list[list[Any]] = []
    for outlook in [report.total, *report.contracts]:
        series: list[tuple[str, dict[dt.date, Decimal]]] = [("actual", outlook.actual)]
        if outlook.plan is not None:
            series.append(("plan", outlook.plan))
        series += [(f"forecast ({m})", outlook.forecasts[m]) for m in report.methods if m in outlook.forecasts]
        for name, values in series:
            cells = [values.get(m) for m in report.months]
            rows.append([outlook.contract, name, *cells, row_sum(FIRST_ROW + len(rows), first, last, cells)])
    return headings, rows


SUB_CONTRACT_OF = "sub-contract of"


def outturn_table(report: Outlook) -> Table:
    """The Outturn sheet: each contract (the prime of a sub-contract beside it), and a total
    of what the commissioners pay: SUMIF over the rows with no prime, so a prime's payments
    to its sub-contractors are not added twice. Each variance is a formula, plan − outturn,
    signed and coloured. The total's lowest and highest are its own range over the methods,
    not sums of the contracts'."""
    headings = [*outturn_headings(report), SUB_CONTRACT_OF]
    actual, projected, outturn, plan, variance = (headings.index(h) + 1 for h in (headings[1], headings[2], "outturn", "plan", "variance to plan"))

    def difference(row: int, expected: Decimal) -> Cell:
        return Cell(Formula(f"{column_letter(plan)}{row}-{column_letter(outturn)}{row}", expected), Style.VARIANCE)

    rows = []
    for index, (row, outlook) in enumerate(zip(outturn_rows(report)[:-1], report.contracts, strict=True)):
        cells = [outlook.contract, *row[1:], outlook.sub_contract_of]
        if row[variance - 1] is not None:
            cells[variance - 1] = difference(FIRST_ROW + index, row[variance - 1])
        rows.append(cells)
    table = Table("Outturn", headings, rows)
    prime = headings.index(SUB_CONTRACT_OF) + 1
    low, high = report.range_of(report.total)
    planned: Formula | Decimal | None = None
    total_variance: Cell | None = None
    if report.variance is not None:
        planned = sum_where_blank(table, plan, prime)
        total_variance = Cell(difference(table.total_row, report.variance).value, Style.VARIANCE_TOTAL)
    total = [TOTAL, *(sum_where_blank(table, c, prime) for c in (actual, projected, outturn)), low, high, planned, total_variance,
             direction(report.variance), None]
    return dataclasses.replace(table, total=total)


def whatif_table(result: WhatIfResult) -> Table:
    """The What-if sheet: every component line, and the total of each money column over
    the lines in view."""
    table = Table("What-if", WHATIF_HEADINGS, whatif_rows(result))
    money = [WHATIF_HEADINGS.index(h) + 1 for h in ("baseline", "what-if", "difference")]
    total: list[Any] = [TOTAL, *[None] * (money[0] - 2), *(subtotal(table, c) for c in money), None]
    return dataclasses.replace(table, total=total)


def write_xlsx(report: Outlook, path: Path) -> Path:
    """An XLSX of the same tables, one sheet each (written atomically)."""
    tables = [outturn_table(report), Table("Monthly", *monthly_rows(report)), Table("Positions", POSITION_HEADINGS, position_rows(report))]
    if report.whatif is not None:
        tables.append(whatif_table(report.whatif))
    compared = comparison_table(report.comparison)
    if compared is not None:
        tables.append(Table("Comparison", *compared))
    if report.risk is not None:
        tables += risk_tables(report.risk, prefix="Risk")
    return write_book(path, tables)


__all__ = ["ContractOutlook", "Outlook", "PartyOutturn", "gather", "render", "write_html", "write_xlsx"]
