"""The outlook report: monthly actual against plan and forecast (with the range over the
forecast methods), a waterfall from the actual to date to the outturn by contract, party
positions at outturn, a what-if and a comparison of contract forms, as one self-contained
HTML page (charts as inline SVG) and an XLSX workbook of the same tables; with a
simulation, its risk section and sheets as well."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis.expr.types as ir
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_svg import RendererSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import Bbox
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from carecontracts.engine.agreements import agreements_of
from carecontracts.engine.backend import Engine
from carecontracts.engine.positions import roles
from carecontracts.engine.run import RunTables
from carecontracts.language.model import Contract
from carecontracts.money import format_money
from carecontracts.periods import FinancialYear
from carecontracts.report.audit_html import STYLE
from carecontracts.report.charts import BLUE, GREY, INK, ORANGE
from carecontracts.machine import atomic_write
from carecontracts.report.export import BOLD, MONEY_FORMAT
from carecontracts.scenarios.forecast import METHOD_WORDS, METHODS, forecast
from carecontracts.scenarios.whatif import WhatIf, WhatIfResult, run_whatif

if TYPE_CHECKING:
    from carecontracts.scenarios.simulate import Simulation

ZERO = Decimal(0)
TOTAL = "total"
PLAN_COLOUR, GREEN, RED = "#768692", "#007f3b", "#d5281b"


def month_name(month: dt.date) -> str:
    """2025-04-01 → `Apr 2025`, as finance teams write months."""
    return f"{month:%b %Y}"


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

    @property
    def months(self) -> list[dt.date]:
        return self.year.months

    @property
    def projected_months(self) -> list[dt.date]:
        return [m for m in self.year.months if m > self.as_of]

    def range_of(self, outlook: ContractOutlook) -> tuple[Decimal, Decimal]:
        """Lowest and highest outturn over the methods."""
        values = list(outlook.outturns.values()) or [ZERO]
        return min(values), max(values)


def _planned_by_month(engine: Engine, plans: ir.Table | None) -> dict[str, dict[dt.date, Decimal]]:
    """Planned value per contract and month of some plan rows (empty without them)."""
    if plans is None:
        return {}
    grouped = plans.group_by(["contract", "month"]).aggregate(value=plans.planned_value.sum())
    found: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    for row in engine.to_arrow(grouped).to_pylist():
        month = row["month"] if isinstance(row["month"], dt.date) else dt.date.fromisoformat(str(row["month"])[:10])
        found[row["contract"]][month.replace(day=1)] = Decimal(row["value"])
    return dict(found)


def _plans_by_contract(engine: Engine, tables: RunTables) -> dict[str, dict[dt.date, Decimal]]:
    """The plan per contract and month: for a contract with payment plans, the payments
    planned (the money planned, fixed elements included); else its activity plans' planned
    value (activity valued at its price)."""
    activity = _planned_by_month(engine, tables.plans)
    payments = _planned_by_month(engine, tables.payment_plans)
    return {**{c: months for c, months in activity.items() if c not in payments}, **payments}


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
    plans = _plans_by_contract(engine, tables)

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
    total_plan: dict[dt.date, Decimal] = defaultdict(Decimal)
    for outlook in contract_outlooks:
        if outlook.contract not in top_level:
            continue
        for method, months in outlook.forecasts.items():
            for month, amount in months.items():
                total_forecasts[method][month] += amount
        for month, amount in (outlook.plan or {}).items():
            total_plan[month] += amount
    planned_contracts = [o for o in contract_outlooks if o.plan is not None and o.contract in top_level]
    every_plan = len(planned_contracts) == len(top_level)
    total = outlook_of(TOTAL, total_forecasts, dict(total_plan) if every_plan else None, "What the commissioners pay")

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
    report = Outlook(name, year, as_of, result.methods, headline, result.unavailable, contract_outlooks, total, positions, notes=notes)
    if whatif is not None:
        report.whatif = run_whatif(engine, contracts, year, tables, whatif)
    report.comparison = comparison
    return report


_ROLE_ORDER = {"commissioner": 0, "prime": 1, "provider": 2, "sub-contractor": 3, "alliance member": 4, "other": 5}


# --------------------------------------------------------------------------- charts

NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')


SVG_DPI = 72  # the SVG backend draws in points


def _tight_bbox(figure: Figure) -> Bbox:
    """What `bbox_inches="tight"` crops the figure to (its drawn extent plus savefig's
    padding), measured at the SVG backend's resolution without drawing the figure, which
    savefig would otherwise do once just to measure before drawing it again to save it."""
    dpi = figure.dpi
    figure.dpi = SVG_DPI
    try:
        width, height = figure.get_size_inches() * SVG_DPI
        extent = figure.get_tightbbox(RendererSVG(width, height, io.StringIO(), image_dpi=SVG_DPI))
    finally:
        figure.dpi = dpi
    return extent.padded(mpl.rcParams["savefig.pad_inches"])


def _svg(figure: Figure) -> str:
    """The figure as inline SVG cropped to what is drawn, with no metadata and no namespace
    declarations (the HTML parser supplies them), so the page names no address at all."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches=_tight_bbox(figure), metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)
    return NAMESPACES.sub("", text)



def _pounds(value: float, _position: object = None) -> str:
    """An axis label in pounds: £1.2m, £350k, £900."""
    size = abs(value)
    sign = "-" if value < 0 else ""
    if size >= 1e9:
        return f"{sign}£{size / 1e9:.1f}bn"
    if size >= 1e6:
        return f"{sign}£{size / 1e6:.1f}m"
    if size >= 1e3:
        return f"{sign}£{size / 1e3:.0f}k"
    return f"{sign}£{size:.0f}"


def _style(axis: Any, title: str) -> None:
    axis.set_title(title, fontsize=10, loc="left")
    axis.yaxis.set_major_formatter(FuncFormatter(_pounds))
    axis.spines[["top", "right"]].set_visible(False)
    axis.grid(axis="y", color="#e8edee", linewidth=0.6)
    axis.set_axisbelow(True)


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
    _style(axis, title + (f" (sub-contract of {outlook.sub_contract_of})" if outlook.sub_contract_of else ""))
    if legend:
        axis.legend(fontsize=8, frameon=False, loc="lower left", ncol=2)
    return _svg(figure)


def waterfall_chart(report: Outlook) -> str:
    """From the actual to date, each contract's projected remainder (headline method) as a
    floating bar, to the outturn."""
    top = [o for o in report.contracts if o.sub_contract_of is None]
    steps = [(o.contract, float(o.outturn(report.headline) - o.actual_to_date)) for o in top]
    start = float(report.total.actual_to_date)
    end = float(report.total.outturn(report.headline))
    labels = [f"actual to {month_name(report.as_of)}", *[s[0] for s in steps], "outturn"]
    figure, axis = plt.subplots(figsize=(9.5, 3.8))
    axis.bar(0, start, color=INK, width=0.6)
    running = start
    for index, (_, step) in enumerate(steps, start=1):
        colour = ORANGE if step >= 0 else GREEN
        axis.bar(index, step, bottom=running, color=colour, width=0.6)
        axis.plot([index - 1.3, index + 0.3], [running, running], color=GREY, linewidth=0.6)
        axis.text(index, running + max(step, 0), _pounds(step) if step < 0 else "+" + _pounds(step), ha="center", va="bottom", fontsize=7)
        running += step
    axis.bar(len(labels) - 1, end, color=BLUE, width=0.6)
    axis.plot([len(labels) - 2.3, len(labels) - 1 + 0.3], [running, running], color=GREY, linewidth=0.6)
    for index, value in ((0, start), (len(labels) - 1, end)):
        axis.text(index, value, _pounds(value), ha="center", va="bottom", fontsize=8, fontweight="bold")
    axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    axis.tick_params(axis="y", labelsize=8)
    low = min(start, min((start + sum(s for _, s in steps[:i]) for i in range(len(steps) + 1)), default=start))
    axis.set_ylim(bottom=max(0.0, low * 0.9))
    _style(axis, f"From the actual to {month_name(report.as_of)} to the outturn ({report.headline}), by contract: the projected rest of the year")
    return _svg(figure)


# --------------------------------------------------------------------------- tables


def _range_text(low: Decimal, high: Decimal) -> str:
    return f"{format_money(low)} – {format_money(high)}"


def outturn_rows(report: Outlook) -> list[list[Any]]:
    """contract, actual to date, projected, outturn, low, high, plan, outturn − plan."""
    rows: list[list[Any]] = []
    for outlook in [*report.contracts, report.total]:
        low, high = report.range_of(outlook)
        outturn = outlook.outturn(report.headline)
        planned = outlook.planned
        name = outlook.contract + (f" (sub-contract of {outlook.sub_contract_of})" if outlook.sub_contract_of else "")
        rows.append([name, outlook.actual_to_date, outturn - outlook.actual_to_date, outturn, low, high,
                     planned, None if planned is None else outturn - planned])
    return rows


OUTTURN_HEADINGS = ["contract", "actual to date", "projected", "outturn", "lowest", "highest", "plan", "outturn − plan"]


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
    rows = [[r.form, r.summary, r.expected, r.low, r.high, f"{r.control:.2f}%", f"{r.spread * 100:.1f}%",
             f"{r.monthly_variation * 100:.1f}%", r.at_stake] for r in comparison.results]
    return COMPARISON_HEADINGS, rows


class Share(float):
    """A probability: a number in a workbook (formatted as a percentage), a percentage on the page."""

    def __str__(self) -> str:
        return f"{self:.1%}"


def _e(text: object) -> str:
    return html.escape(str(text))


def _cell(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"<td class='num{' neg' if value < 0 else ''}'>{_e(format_money(value))}</td>"
    if value is None or isinstance(value, Share):
        return f"<td class='num'>{'' if value is None else _e(value)}</td>"
    return f"<td>{_e(value)}</td>"


def _table(headings: list[str], rows: list[list[Any]], bold_last: bool = False, css: str = "") -> str:
    money_columns = {i for i in range(len(headings)) if any(isinstance(r[i], (Decimal, Share)) for r in rows)}
    head = "".join(f"<th class='num'>{_e(h)}</th>" if i in money_columns else f"<th>{_e(h)}</th>" for i, h in enumerate(headings))
    body = []
    for index, row in enumerate(rows):
        mark = " class='total'" if bold_last and index == len(rows) - 1 else ""
        body.append(f"<tr{mark}>" + "".join(_cell(v) for v in row) + "</tr>")
    return f"<table class='{css}'><tr>{head}</tr>{''.join(body)}</table>"


EXTRA_STYLE = """
tr.total td { font-weight: bold; border-top: 2px solid #425563; } td.neg { color: #d5281b; } td.num, th.num { white-space: nowrap; text-align: right; }
.small { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
.headline { display: flex; gap: 12px; margin: 12px 0; } .headline div { flex: 1; background: #f0f4f5; padding: 10px 12px; border-left: 4px solid #005eb8; }
.headline b { display: block; font-size: 20px; } .headline span { font-size: 12px; color: #425563; }
table.compact { font-size: 12px; } table.compact th, table.compact td { padding: 4px 5px; }
"""


def render(report: Outlook) -> str:
    """The page's HTML: headline figures, charts, then the tables."""
    as_of = month_name(report.as_of)
    headline_words = METHOD_WORDS[report.headline]
    total = report.total
    low, high = report.range_of(total)
    outturn = total.outturn(report.headline)
    title = f"{report.name + ': ' if report.name else ''}outlook {report.year.label} as of {as_of}"
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title><style>{STYLE}{EXTRA_STYLE}</style></head><body>"]
    parts.append(f"<h1>{_e(title)}</h1>")
    parts.append(f"<p class='note'>Actual payments to {as_of}; the rest of the year projected by each forecast method the data allows "
                 f"({_e(', '.join(report.methods))}), every method priced by the same contract terms as the payments. "
                 f"Headline: {_e(report.headline)} ({_e(headline_words)}); the range is the lowest to highest outturn over the methods.</p>")
    cards = [
        (format_money(total.actual_to_date), f"paid to {as_of}"),
        (format_money(outturn), f"outturn {report.year.label} ({report.headline})"),
        (_range_text(low, high), "range over the methods"),
    ]
    if total.planned is not None:
        cards.append((format_money(outturn - total.planned), "outturn − plan"))
    parts.append("<div class='headline'>" + "".join(f"<div><b>{_e(v)}</b><span>{_e(w)}</span></div>" for v, w in cards) + "</div>")
    for note in report.notes:
        parts.append(f"<p class='note'>{_e(note)}</p>")

    parts.append("<h2>Month by month: actual, plan and forecast</h2>")
    parts.append(f"<div>{monthly_chart(report, total, (10, 3.8))}</div>")
    parts.append(f"<p class='note'>Each contract below: black, actual; blue dashed, forecast ({_e(report.headline)}) with the range over the methods shaded; "
                 "grey dotted, plan. A vertical line marks the last month of actual data.</p>")
    parts.append("<div class='small'>" + "".join(f"<div>{monthly_chart(report, o, (5.6, 3.0), legend=False)}</div>" for o in report.contracts) + "</div>")
    parts.append("<p class='note'>Plan: for a contract with payment plans in data/plans (rows naming a component), the payments "
                 "planned, so plan against actual means the same for a block or an aligned payment's fixed element as for activity. "
                 "For a contract with only activity plans, the planned value of its planned activity: for a block or the fixed "
                 "element of an aligned payment that is not the payment planned.</p>")

    parts.append("<h2>From the actual to date to the outturn</h2>")
    parts.append(f"<div>{waterfall_chart(report)}</div>")
    parts.append(f"<h2>Outturn by contract</h2><p class='note'>Outturn by {_e(report.headline)}; lowest and highest over {_e(', '.join(report.methods))}. "
                 "The total is what the commissioners pay: sub-contracts are paid by their prime out of its contract, so are not added again.</p>")
    parts.append(_table(OUTTURN_HEADINGS, outturn_rows(report), bold_last=True))

    parts.append(f"<h2>Party positions at outturn</h2><p class='note'>Income − payments over {report.year.label} by {_e(report.headline)}, "
                 "with the lowest and highest net over the methods.</p>")
    parts.append(_table(POSITION_HEADINGS, position_rows(report)))

    parts.append("<h2>What if</h2>")
    if report.whatif is None:
        parts.append("<p class='note'>No what-if given (carecontracts report --whatif FILE.yaml).</p>")
    else:
        result = report.whatif
        changes = "; ".join(c.describe() for c in result.whatif.changes)
        parts.append(f"<p><b>{_e(result.whatif.name)}</b>: {_e(changes)}. Against the year's actual activity, {month_name(result.months[0])} to "
                     f"{month_name(result.months[-1])}: {'a saving of ' + format_money(-result.total) if result.total < 0 else 'an extra ' + format_money(result.total) if result.total > 0 else 'no change'}.</p>")
        for change in result.unmatched():
            parts.append(f"<p class='note'>Warning: {_e(change.describe())} matches no activity, so it changes nothing.</p>")
        rows = [row for row in whatif_rows(result) if row[7] != 0]
        unchanged = len(result.differences) - len(rows)
        baseline = sum((d.baseline for d in result.differences), ZERO)
        scenario = sum((d.scenario for d in result.differences), ZERO)
        rows.append([TOTAL, "", "", "", "", baseline, scenario, result.total, ""])
        parts.append(_table(WHATIF_HEADINGS, rows, bold_last=True))
        if unchanged:
            parts.append(f"<p class='note'>{unchanged} other component lines do not change (all are in the workbook's What-if sheet); the total is over every line.</p>")
        parts.append("<h3>Change in each party's net position</h3>")
        parts.append(_table(["party", "change"], [[p, c] for p, c in sorted(result.by_party().items()) if c]))

    parts.append("<h2>Contract forms compared</h2>")
    compared = comparison_table(report.comparison)
    if compared is None:
        parts.append("<p class='note'>No comparison of contract forms in this report.</p>")
    else:
        parts.append(f"<p>{_e(report.comparison.conclusion())}</p>")
        parts.append(_table(*compared))
    if report.risk is not None:
        from carecontracts.report.risk import risk_section  # risk.py imports this module's helpers

        parts.append(f"<h2>Risk: {report.risk.runs:,} simulated runs</h2>")
        parts.append(risk_section(report.risk))
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- files


def _write_text_atomically(text: str, path: Path) -> Path:
    with atomic_write(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


def write_html(report: Outlook, path: Path) -> Path:
    """Write the page (temporary file, then replace), so a failure leaves no half page."""
    return _write_text_atomically(render(report), path)


def monthly_rows(report: Outlook) -> tuple[list[str], list[list[Any]]]:
    """contract, series, then a column per month and the year: actual, plan and each method."""
    headings = ["contract", "series", *[month_name(m) for m in report.months], "year"]
    rows: list[list[Any]] = []
    for outlook in [report.total, *report.contracts]:
        series: list[tuple[str, dict[dt.date, Decimal]]] = [("actual", outlook.actual)]
        if outlook.plan is not None:
            series.append(("plan", outlook.plan))
        series += [(f"forecast ({m})", outlook.forecasts[m]) for m in report.methods if m in outlook.forecasts]
        for name, values in series:
            cells = [values.get(m) for m in report.months]
            rows.append([outlook.contract, name, *cells, sum((c for c in cells if c is not None), ZERO)])
    return headings, rows


WIDE = ("why", "description", "parameter")


def _sheet(book: Workbook, name: str, headings: list[str], rows: list[list[Any]], total_last: bool = False) -> None:
    """One sheet of a write-only workbook: bold headings, frozen, then the rows (the last bold if a total)."""
    written = book.create_sheet(name)
    for index, heading in enumerate(headings, start=1):
        written.column_dimensions[get_column_letter(index)].width = 60 if heading in WIDE else 26 if index == 1 else 16
    written.freeze_panes = "B2"
    written.append([_xl(written, h, BOLD) for h in headings])
    for number, row in enumerate(rows):
        strong = BOLD if total_last and number == len(rows) - 1 else None
        written.append([_xl(written, v, strong) for v in row])


def _save_atomically(book: Workbook, path: Path) -> Path:
    """Save a workbook (temporary file, then replace), so a failure leaves no half file."""
    with atomic_write(path) as temporary:
        book.save(temporary)
    return path


def write_xlsx(report: Outlook, path: Path) -> Path:
    """An XLSX of the same tables, one sheet each, money formatted (written atomically)."""
    book = Workbook(write_only=True)
    heads, monthly = monthly_rows(report)
    _sheet(book, "Outturn", OUTTURN_HEADINGS, outturn_rows(report), total_last=True)
    _sheet(book, "Monthly", heads, monthly)
    _sheet(book, "Positions", POSITION_HEADINGS, position_rows(report))
    if report.whatif is not None:
        result = report.whatif
        rows = whatif_rows(result)
        rows.append([TOTAL, "", "", "", "", sum((d.baseline for d in result.differences), ZERO),
                     sum((d.scenario for d in result.differences), ZERO), result.total, ""])
        _sheet(book, "What-if", WHATIF_HEADINGS, rows, total_last=True)
    compared = comparison_table(report.comparison)
    if compared is not None:
        _sheet(book, "Comparison", *compared)
    if report.risk is not None:
        from carecontracts.report.risk import risk_sheets  # risk.py imports this module's helpers

        risk_sheets(book, report.risk, prefix="Risk")
    return _save_atomically(book, path)


def _xl(sheet: Any, value: Any, font: Font | None = None) -> Any:
    """A cell; money formatted as money, a probability as a percentage; a value needing no
    format or font as itself, which openpyxl writes the same without a cell object of ours."""
    if font is None and not isinstance(value, (Decimal, Share)):
        return value
    written = WriteOnlyCell(sheet, value=value)
    if isinstance(value, Decimal):
        written.number_format = MONEY_FORMAT
    elif isinstance(value, Share):
        written.number_format = "0.0%"
    if font is not None:
        written.font = font
    return written


__all__ = ["ContractOutlook", "Outlook", "PartyOutturn", "gather", "render", "write_html", "write_xlsx"]
