"""The risk report of a simulation: every party's distribution over the runs (table,
histogram and month-by-month fan), the stress tests beside it, each contract's payments
and the model's parameters, as an HTML section (charts as inline SVG) and XLSX sheets.

A commissioner is shown by what it pays (it has no costs, so its position is only minus
that); every other party by its position, margin where it has costs and net otherwise."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.ticker import FuncFormatter, MaxNLocator

from carecontracts.money import format_money, pence, pounds
from carecontracts.report.audit_html import STYLE
from carecontracts.report.charts import BLUE, GREY, INK, ORANGE
from carecontracts.report.pages import EXTRA_STYLE, PLAN_COLOUR, RED, esc, html_table, month_name, pounds_label, style_axis, svg, write_text
from carecontracts.report.sheets import Share, Table, heading_row, write_book
from carecontracts.scenarios.simulate import EXPECTED, Distribution, PartyRisk, Simulation, run_name

COMMISSIONER = "commissioner"
RUN_PREFIX = run_name(1)[:-1]
FAN_SHARES = (0.05, 0.25, 0.5, 0.75, 0.95)
CHART_SIZE = (5.6, 4.2)


# --------------------------------------------------------------------------- what is shown


def shown(party: PartyRisk) -> tuple[str, Distribution]:
    """What a party's risk is measured by, and its distribution: a commissioner's payments,
    anyone else's position (margin or net)."""
    if party.role == COMMISSIONER:
        return "payments", party.payments
    return party.measure, party.position


def _run_rows(table: pa.Table, party: str) -> pa.Table:
    """A per-scenario table's rows of one party in the runs (not the stress tests)."""
    return table.filter(pc.and_(pc.equal(table.column("party"), party), pc.starts_with(table.column("scenario"), RUN_PREFIX)))


def _run_numbers(scenarios: pa.ChunkedArray) -> np.ndarray:
    """`run:N` → N − 1, for indexing an array of runs."""
    return pc.cast(pc.utf8_slice_codeunits(scenarios, len(RUN_PREFIX)), pa.int64()).to_numpy() - 1


def run_values(simulation: Simulation, party: PartyRisk) -> np.ndarray:
    """The shown value of every run in pounds (float, for drawing), in run order."""
    return shown_pence(simulation, party)[0] / 100


def shown_pence(simulation: Simulation, party: PartyRisk) -> tuple[np.ndarray, np.ndarray]:
    """The party's shown value in every run in whole pence (its measure, the net where that
    is missing: a margin without costs), in run order, and which runs have a value at all."""
    rows = _run_rows(simulation.positions, party.party)
    measure, _ = shown(party)
    column = pc.coalesce(rows.column(measure), rows.column("net"))
    at = _run_numbers(rows.column("scenario"))
    values = np.zeros(simulation.runs, dtype=np.int64)
    present = np.zeros(simulation.runs, dtype=bool)
    values[at], present[at] = pence(column), True
    return values, present


def percentiles(values: np.ndarray, share: float) -> np.ndarray:
    """Per column, the value of the run at that share of the runs (rows), by the definition
    the simulation's distributions use (carecontracts.scenarios.simulate.percentile): the
    smallest value with at least that share of runs at or below it."""
    return _ranked(np.sort(values, axis=0), share)


def _ranked(ordered: np.ndarray, share: float) -> np.ndarray:
    """`percentiles` of runs already sorted per column, so several shares sort only once."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class Fan:
    """A party's cumulative shown value by month over the runs, in whole pence: each band
    share's percentile per month, the expected year's, and a budget pro rata (commissioners)."""

    months: list[dt.date]
    bands: dict[float, np.ndarray]
    expected: np.ndarray | None
    budget: np.ndarray | None


def fan(simulation: Simulation, party: PartyRisk) -> Fan:
    """The fan of a party from the simulation's monthly margins: cumulated over months per
    run, then percentiles per month (a commissioner's as payments: minus its margin)."""
    monthly = simulation.monthly
    months = sorted(pc.unique(monthly.column("month")).to_pylist())
    month_values = pa.array(months, pa.date32())
    sign = -1 if party.role == COMMISSIONER else 1
    # The party's rows first: a fourteenth of the table, so the scenario tests below are cheap.
    mine = monthly.filter(pc.equal(monthly.column("party"), party.party))

    def cumulative(rows: pa.Table, runs: np.ndarray, count: int) -> np.ndarray:
        grid = np.zeros((count, len(months)), dtype=np.int64)
        np.add.at(grid, (runs, pc.index_in(rows.column("month"), value_set=month_values).to_numpy()), sign * pence(rows.column("margin")))
        return np.cumsum(grid, axis=1)

    runs = mine.filter(pc.starts_with(mine.column("scenario"), RUN_PREFIX))
    paths = cumulative(runs, _run_numbers(runs.column("scenario")), simulation.runs)
    expected_rows = mine.filter(pc.equal(mine.column("scenario"), EXPECTED))
    expected = cumulative(expected_rows, np.zeros(expected_rows.num_rows, dtype=np.int64), 1)[0] if expected_rows.num_rows else None
    budget = None
    if party.role == COMMISSIONER and party.budget is not None:
        budget = np.round(np.arange(1, len(months) + 1) * float(party.budget) * 100 / len(months)).astype(np.int64)
    ordered = np.sort(paths, axis=0)
    return Fan(months, {share: _ranked(ordered, share) for share in FAN_SHARES}, expected, budget)


# --------------------------------------------------------------------------- charts


def _money_axis(axis: Any) -> None:
    axis.xaxis.set_major_formatter(FuncFormatter(pounds_label))
    axis.xaxis.set_major_locator(MaxNLocator(5))


def histogram_chart(simulation: Simulation, party: PartyRisk) -> str:
    """The runs' shown values as a histogram with P5, P50, P95, the mean, zero and a
    commissioner's budget marked, and each stress test's value on a strip beneath (one
    beyond the runs' range at the edge, pointing out, with its value)."""
    measure, distribution = shown(party)
    values = run_values(simulation, party)
    stresses = [(s.name, float(party.stressed[s.scenario])) for s in simulation.stresses if s.scenario in party.stressed]
    budget = float(party.budget) if party.budget is not None and party.role == COMMISSIONER else None
    low, high = min(values.min(), budget if budget is not None else values.min()), max(values.max(), budget if budget is not None else values.max())
    pad = (high - low) * 0.04 or max(abs(high) * 0.002, 1.0)
    span = (low - pad, high + pad)

    figure, (axis, strip) = plt.subplots(2, 1, figsize=CHART_SIZE, sharex=True, gridspec_kw={"height_ratios": [3, 0.5 + 0.22 * len(stresses)], "hspace": 0.08})
    bins = int(min(40, max(8, 2 * math.sqrt(len(values)))))
    same = values.max() == values.min()
    edges = np.array([values.min() - pad / 4, values.min() + pad / 4]) if same else np.linspace(values.min(), values.max(), bins + 1)
    counts, _, _ = axis.hist(values, bins=edges, color=BLUE, alpha=0.55, edgecolor="white", linewidth=0.4)
    for mark, label, colour, style in (
        (distribution.p5, "P5", INK, ":"),
        (distribution.p50, "P50", INK, "-"),
        (distribution.p95, "P95", INK, "--"),
        (distribution.mean, "mean", ORANGE, "-"),
    ):
        axis.axvline(float(mark), color=colour, linestyle=style, linewidth=1.3, label=f"{label} {pounds_label(float(mark))}")
    if budget is not None:
        axis.axvline(budget, color=RED, linewidth=1.6, label=f"budget {pounds_label(budget)}")
    if span[0] < 0 < span[1]:
        for each in (axis, strip):
            each.axvline(0, color=GREY, linewidth=1, label="zero")
    style_axis(axis, f"{party.party}: {measure} over {simulation.runs:,} runs" + (f", every run {format_money(distribution.p50)}" if same else ""))
    axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0f}"))
    axis.yaxis.set_major_locator(MaxNLocator(4, integer=True))
    axis.set_ylabel("runs", fontsize=8)
    axis.set_ylim(0, max(counts.max(), 1) * 1.45)  # room above the bars for the legend
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=7, frameon=False, loc="upper left", ncol=3, handlelength=1.6, columnspacing=1.0)

    rows = np.arange(len(stresses))[::-1]
    for row, (_, value) in zip(rows, stresses):
        if span[0] <= value <= span[1]:
            strip.scatter([value], [row], marker="D", s=18, color=PLAN_COLOUR, zorder=3)
            continue
        left = value < span[0]
        edge = span[0] if left else span[1]
        strip.scatter([edge], [row], marker="<" if left else ">", s=30, color=RED, zorder=3, clip_on=False)
        strip.annotate(pounds_label(value), (edge, row), xytext=(6 if left else -6, 0), textcoords="offset points", fontsize=7, color=RED,
                       ha="left" if left else "right", va="center")
    strip.set_yticks(rows, [name for name, _ in stresses], fontsize=7)
    strip.set_ylim(-0.7, len(stresses) - 0.3)
    strip.grid(axis="y", color="#e8edee", linewidth=0.6)
    strip.set_axisbelow(True)
    strip.spines[["top", "right"]].set_visible(False)
    strip.tick_params(axis="x", labelsize=7)
    strip.set_xlim(*span)
    if same:
        strip.set_xticks([float(distribution.p50)], [format_money(distribution.p50)])
    else:
        _money_axis(strip)
    return svg(figure)


def _bands(axis: Any, x: np.ndarray, pounds: dict[float, np.ndarray], expected: np.ndarray | None) -> None:
    """The fan itself: P5–P95 and P25–P75 shaded, the median, the expected year dashed."""
    axis.fill_between(x, pounds[0.05], pounds[0.95], color=BLUE, alpha=0.15, linewidth=0, label="P5–P95")
    axis.fill_between(x, pounds[0.25], pounds[0.75], color=BLUE, alpha=0.35, linewidth=0, label="P25–P75")
    axis.plot(x, pounds[0.5], color=BLUE, linewidth=2, label="median")
    if expected is not None:
        axis.plot(x, expected, color=INK, linestyle="--", linewidth=1.2, label="expected year")
    low, high = axis.get_ylim()
    if low < 0 < high:
        axis.axhline(0, color=GREY, linewidth=1)
    axis.tick_params(labelsize=7)


def fan_chart(simulation: Simulation, party: PartyRisk) -> str:
    """The cumulative shown value month by month: median, P5–P95 and P25–P75 bands, the
    expected year dashed; for a commissioner with a budget, the budget pro rata and, beneath,
    the same fan less the budget pro rata, where a small overspend is visible."""
    measure, _ = shown(party)
    found = fan(simulation, party)
    x = np.arange(len(found.months))
    pounds = {share: band / 100 for share, band in found.bands.items()}
    expected = None if found.expected is None else found.expected / 100
    if found.budget is None:
        figure, axis = plt.subplots(figsize=(CHART_SIZE[0], CHART_SIZE[1] * 0.9))
        axes = [axis]
    else:
        figure, axes = plt.subplots(2, 1, figsize=CHART_SIZE, sharex=True, gridspec_kw={"height_ratios": [2, 1.3], "hspace": 0.3})
        axis = axes[0]
    _bands(axis, x, pounds, expected)
    if found.budget is not None:
        budget = found.budget / 100
        axis.plot(x, budget, color=RED, linestyle=":", linewidth=1.6, label="budget pro rata")
        below = axes[1]
        _bands(below, x, {share: band - budget for share, band in pounds.items()}, None if expected is None else expected - budget)
        below.axhline(0, color=RED, linestyle=":", linewidth=1.6)
        style_axis(below, "less the budget pro rata: over (+) or under (−)")
        below.title.set_fontsize(8)
    if simulation.as_of is not None and simulation.as_of in found.months:
        for each in axes:
            each.axvline(found.months.index(simulation.as_of) + 0.5, color=GREY, linewidth=0.8, label=f"actual to {month_name(simulation.as_of)}")
    axes[-1].set_xticks(x, [f"{m:%b}" for m in found.months], fontsize=7)
    style_axis(axis, f"{party.party}: cumulative {measure} by month")
    axis.legend(fontsize=7, frameon=False, loc="best")
    return svg(figure)


# --------------------------------------------------------------------------- tables


SUMMARY_HEADINGS = ["party", "role", "measure", "mean", "P5", "P50", "P95", "P(loss)", "expected shortfall", "budget", "P(over budget)"]


def summary_rows(simulation: Simulation) -> list[list[Any]]:
    """Per party: what is shown, its mean and percentiles, the chance of a loss (not for a
    commissioner), the mean of its worst 5% of runs, and a commissioner's budget risk."""
    rows: list[list[Any]] = []
    for party in simulation.parties:
        measure, d = shown(party)
        commissioner = party.role == COMMISSIONER
        rows.append([party.party, party.role, measure, d.mean, d.p5, d.p50, d.p95, None if commissioner else Share(d.loss), d.shortfall,
                     party.budget, None if party.over_budget is None else Share(party.over_budget)])
    return rows


def stress_table(simulation: Simulation) -> tuple[list[str], list[list[Any]]]:
    """Per party, its shown value in each stress test (a party a stress removes: nothing)."""
    headings = ["party", "measure", *[s.name for s in simulation.stresses]]
    rows = [[p.party, shown(p)[0], *[p.stressed.get(s.scenario) for s in simulation.stresses]] for p in simulation.parties]
    return headings, rows


STRESS_HEADINGS = ["stress test", "scenario", "description"]


def stress_rows(simulation: Simulation) -> list[list[Any]]:
    """Each stress test's name, scenario key and what it is."""
    return [[s.name, s.scenario, s.description] for s in simulation.stresses]


CONTRACT_HEADINGS = ["contract", "payer", "payee", "expected year", "mean", "P5", "P50", "P95"]


def contract_rows(simulation: Simulation) -> list[list[Any]]:
    """Each contract's payments in the expected year and over the runs."""
    return [[c.contract, c.payer, c.payee, c.stressed.get(EXPECTED), c.payments.mean, c.payments.p5, c.payments.p50, c.payments.p95]
            for c in simulation.contracts]


PARAMETER_HEADINGS = ["parameter", "value", "source"]


def parameter_rows(simulation: Simulation) -> list[list[Any]]:
    """Each model parameter, its value (None: not drawn) and where it came from."""
    return [[p.name, p.value, p.source] for p in simulation.parameters]


def run_table(simulation: Simulation) -> tuple[list[str], list[list[Any]]]:
    """One row per run, a column per party: its value in the run (a commissioner's
    payments, anyone else's margin or net), exact, in run order and the parties' order."""
    grid = np.empty((simulation.runs, 1 + len(simulation.parties)), dtype=object)
    grid[:, 0] = np.arange(1, simulation.runs + 1)
    for column, party in enumerate(simulation.parties, start=1):
        values, present = shown_pence(simulation, party)
        grid[:, column] = [pounds(value) if there else None for value, there in zip(values, present)]
    return ["run", *(f"{p.party} ({shown(p)[0]})" for p in simulation.parties)], grid.tolist()


def _number(value: float | None) -> str | None:
    return None if value is None else f"{value:.4g}"


# --------------------------------------------------------------------------- the section and files


def risk_section(simulation: Simulation, level: int = 3) -> str:
    """The risk section's HTML: summary, stress tests, each party's charts, contracts and
    the model, its headings at `level` (h3 under a page's h2)."""
    h, sub = f"h{level}", f"h{level + 1}"
    as_of = f" as of {month_name(simulation.as_of)} (the actual months to then, the rest drawn)" if simulation.as_of else ""
    parts = [f"<p class='note'>{simulation.runs:,} simulated years{esc(as_of)}, seed {simulation.seed}: volume, unit cost and outcome "
             "achievement drawn around the expected year, each run priced by the contracts' terms to the penny. "
             "A commissioner is shown by what it pays; every other party by its margin (income − payments − costs) where its activity "
             "carries costs, else its net (income − payments). Percentiles are values of runs; the expected shortfall is the mean of the "
             "worst 5% of runs (for a commissioner, its highest payments); P(loss) is the share of runs below zero, P(over budget) the share "
             "of runs in which a commissioner pays more than its budget.</p>"]
    parts.append(f"<{h}>Every party over the runs</{h}>")
    parts.append(html_table(SUMMARY_HEADINGS, summary_rows(simulation), css="compact"))
    parts.append(f"<{h}>Stress tests</{h}><p class='note'>Each party's value in each stress test, priced like a run "
                 "(a commissioner: its payments).</p>")
    parts.append(html_table(*stress_table(simulation), css="compact"))
    parts.append(html_table(STRESS_HEADINGS, stress_rows(simulation)))
    parts.append(f"<{h}>Each party's distribution and year</{h}><p class='note'>Left: the runs' values for the year, with P5, P50, P95, "
                 "the mean and each stress test. Right: cumulative by month, the median with the middle 50% and 90% of runs shaded and "
                 "the expected year dashed.</p>")
    for party in simulation.parties:
        parts.append(f"<{sub}>{esc(party.party)} ({esc(party.role)})</{sub}>")
        parts.append(f"<div class='small'><div>{histogram_chart(simulation, party)}</div><div>{fan_chart(simulation, party)}</div></div>")
    parts.append(f"<{h}>Contracts' payments over the runs</{h}>")
    parts.append(html_table(CONTRACT_HEADINGS, contract_rows(simulation)))
    parts.append(f"<{h}>The model</{h}><p class='note'>Every parameter the runs were drawn with and where it came from "
                 "(none: not drawn, e.g. Poisson volume or no costs).</p>")
    parts.append(html_table(PARAMETER_HEADINGS, [[name, _number(value), source] for name, value, source in parameter_rows(simulation)]))
    return "\n".join(parts)


def write_risk_html(simulation: Simulation, path: Path, title: str) -> Path:
    """A self-contained page of the risk section (temporary file, then replace)."""
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title><style>{STYLE}{EXTRA_STYLE}</style></head>"
            f"<body><h1>{esc(title)}</h1>\n{risk_section(simulation, level=2)}\n</body></html>")
    return write_text(page, path)


def risk_tables(simulation: Simulation, prefix: str = "") -> list[Table]:
    """The risk sheets' tables (named `<prefix> summary` etc. with a prefix): the summary,
    the stress tests with what each is beneath, the contracts, the model and every run."""

    def name(sheet: str) -> str:
        return f"{prefix} {sheet.lower()}" if prefix else sheet

    headings, rows = stress_table(simulation)
    described = [[], heading_row(STRESS_HEADINGS), *stress_rows(simulation)]
    return [
        Table(name("Summary"), SUMMARY_HEADINGS, summary_rows(simulation)),
        Table(name("Stress tests"), headings, rows, after=described),
        Table(name("Contracts"), CONTRACT_HEADINGS, contract_rows(simulation)),
        Table(name("Parameters"), PARAMETER_HEADINGS, parameter_rows(simulation)),
        Table(name("Runs"), *run_table(simulation)),
    ]


def write_risk_xlsx(simulation: Simulation, path: Path) -> Path:
    """A workbook of the risk tables and every run's position, money in £ (written atomically)."""
    return write_book(path, risk_tables(simulation))


__all__ = ["Fan", "fan", "fan_chart", "histogram_chart", "percentiles", "risk_section", "risk_tables", "run_table", "run_values", "shown", "summary_rows",
           "write_risk_html", "write_risk_xlsx"]
