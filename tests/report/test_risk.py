"""The risk report of a small simulation: the fan's percentiles against the runs' own
distributions, the self-contained page, the workbook, and both inside the outlook report."""

from __future__ import annotations

import math

import datetime as dt
import io
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from openpyxl import load_workbook

from carecontracts.engine.backend import Engine
from carecontracts.money import format_money, to_pence
from carecontracts.report.xlsx import MONEY_CODE
from carecontracts.report import risk
from carecontracts.report.outlook import ContractOutlook, Outlook, render, write_xlsx
from carecontracts.report.pages import svg
from carecontracts.report.risk import fan, fan_chart, histogram_chart, percentiles, run_table, run_values, shown, write_risk_html, write_risk_xlsx
from carecontracts.scenarios.simulate import RiskModel, Simulation, percentile, run_name
from tests.helpers import YEAR
from tests.scenarios.test_simulate import HEAD, party, run, year_of

D = Decimal
RUNS = 50
BUDGET = D("190000")
# ICB pays PROV £1,000 a case for its own and SUB's activity; PROV pays SUB £1,000 for each of
# SUB's; BLOCKCO has a block, the same in every run.
PRIME = HEAD + """components: [{id: cases, kind: activity, prices: tariff}]
subcontracts:
  - id: C1-SUB
    provider: SUB
    services: {elective: {service: [elective]}}
    components: [{id: sub, kind: activity, prices: tariff}]
"""
BLOCK = HEAD.replace("id: C1", "id: C2").replace("provider: PROV", "provider: BLOCKCO") + "components: [{id: core, kind: block, annual: 120_000}]"


@pytest.fixture(scope="module")
def simulation() -> Simulation:
    rows = year_of(10, service="elective", cost="800") + year_of(5, provider="SUB", service="elective", cost="900")
    return run(Engine.duckdb(), [PRIME, BLOCK], rows, RUNS, RiskModel(), budgets={"ICB": BUDGET})


def cells(page: str, heading: str, first: str) -> list[str]:
    """The text of the cells of the row starting `first` in the table after a heading."""
    table = page[page.index(heading):]
    table = table[: table.index("</table>")]
    row = re.search(rf"<tr><td>{re.escape(first)}</td>(.*?)</tr>", table)
    assert row is not None, f"no row {first} under {heading}"
    return [first, *re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))]


def test_percentiles_by_hand() -> None:
    # Four runs of two months. Sorted, month 1 is 1, 2, 3, 5 and month 2 is 10, 20, 30, 50;
    # the value at share s is the ⌈4s⌉-th: P5 the 1st, P50 the 2nd, P75 the 3rd, P95 the 4th.
    values = np.array([[5, 50], [1, 10], [3, 30], [2, 20]])
    assert percentiles(values, 0.05).tolist() == [1, 10]
    assert percentiles(values, 0.50).tolist() == [2, 20]
    assert percentiles(values, 0.75).tolist() == [3, 30]
    assert percentiles(values, 0.95).tolist() == [5, 50]
    # The same definition as the simulation's own distributions.
    for share in (0.05, 0.25, 0.5, 0.75, 0.95):
        assert percentiles(values, share)[0] == percentile(sorted(D(int(v)) for v in values[:, 0]), share)


def test_fan_ends_at_each_partys_distribution(simulation: Simulation) -> None:
    # The fan cumulates monthly margins per run, so its last month is each run's year:
    # its percentiles there are the party's distribution's, to the penny, and the expected
    # line ends at the expected year. A commissioner's fan is of payments (minus margin):
    # its median is the payments' median, not minus the median of its net.
    assert {p.party for p in simulation.parties} == {"ICB", "PROV", "SUB", "BLOCKCO"}
    for each in simulation.parties:
        _, distribution = shown(each)
        found = fan(simulation, each)
        assert len(found.months) == 12
        last = {share: D(int(band[-1])) / 100 for share, band in found.bands.items()}
        assert (last[0.05], last[0.5], last[0.95]) == (distribution.p5, distribution.p50, distribution.p95), each.party
        assert found.expected is not None and D(int(found.expected[-1])) / 100 == each.stressed["expected"]
    icb = party(simulation, "ICB")
    assert fan(simulation, icb).bands[0.5][-1] == int(icb.payments.p50 * 100) != -int(icb.position.p50 * 100)
    budget = fan(simulation, icb).budget
    assert budget is not None and budget[0] == int(BUDGET * 100 / 12) and budget[-1] == int(BUDGET * 100)
    assert fan(simulation, party(simulation, "PROV")).budget is None


def test_page_is_self_contained_with_every_partys_charts_and_tables(simulation: Simulation, tmp_path: Path) -> None:
    page = write_risk_html(simulation, tmp_path / "out" / "risk.html", "Tiny ICB: risk 2025-26").read_text()
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / "risk.html"]  # no temporary file left
    assert "http" not in page and "<script" not in page and "@import" not in page
    assert not re.search(r"url\((?!#)|src=|href=\"(?!#)", page)  # only references within the page
    # A histogram and a fan chart per party, side by side.
    assert page.count("<svg") == 2 * len(simulation.parties)
    assert page.count("<div class='small'><div><svg") == len(simulation.parties)
    assert "<h1>Tiny ICB: risk 2025-26</h1>" in page and f"{RUNS} simulated years" in page

    summary = "Every party over the runs"
    prime = party(simulation, "PROV")
    row = cells(page, summary, "PROV")
    assert row[1:3] == ["prime", "margin"]
    assert row[3:7] == [format_money(v) for v in (prime.position.mean, prime.position.p5, prime.position.p50, prime.position.p95)]
    assert row[8] == format_money(prime.position.shortfall) and row[7] == f"{prime.position.loss:.1%}"
    icb = party(simulation, "ICB")
    row = cells(page, summary, "ICB")
    assert row[2] == "payments" and row[6] == format_money(icb.payments.p95) and row[7] == ""  # no loss for a payer
    assert icb.over_budget is not None and row[9:] == [format_money(BUDGET), f"{icb.over_budget:.1%}"]

    # The stress tests: SUB leaving costs the prime the premium on SUB's £60,000 (£6,000)
    # and leaves SUB nothing.
    stresses = [s.name for s in simulation.stresses]
    assert stresses[-1] == "SUB leaves"
    assert cells(page, "Stress tests", "PROV")[2 + stresses.index("SUB leaves")] == format_money(prime.stressed["expected"] - D(6000))
    assert cells(page, "Stress tests", "SUB")[-1] == "£0.00"
    assert "C1-SUB ends; PROV buys its activity elsewhere for 10% more" in page
    sub = next(c for c in simulation.contracts if c.contract == "C1-SUB")
    assert cells(page, "payments over the runs</h2>", "C1-SUB")[3:] == [format_money(v) for v in (
        sub.stressed["expected"], sub.payments.mean, sub.payments.p5, sub.payments.p50, sub.payments.p95)]
    assert "system-wide demand shock (sd of log)" in page


def test_histogram_of_a_party_whose_runs_are_all_the_same(simulation: Simulation) -> None:
    block = party(simulation, "BLOCKCO")
    assert block.position.p5 == block.position.p95 == D("120000.00")
    assert histogram_chart(simulation, block).startswith("<svg")


NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
SVG_ID = re.compile(r"\b[mpi][0-9a-f]{10}\b")


def drawing(svg: str) -> tuple[str, list[float]]:
    """An SVG as its text with the numbers taken out (and the random ids renamed in order of
    appearance), and those numbers, to compare two drawings to a tolerance."""
    ids: dict[str, str] = {}
    named = SVG_ID.sub(lambda m: ids.setdefault(m.group(0), f"id{len(ids)}"), svg[svg.index("<svg"):])
    return NUMBER.sub("#", named), [float(n) for n in NUMBER.findall(named)]


def test_charts_are_cropped_and_drawn_as_a_tight_savefig(simulation: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    # The crop is measured without savefig's own measuring draw: it must be the same box and
    # the same drawing, every mark at the same place (to well under a thousandth of a point).
    figures: list = []
    monkeypatch.setattr(risk, "svg", lambda figure: figures.append(figure) or "")
    for each in (party(simulation, "ICB"), party(simulation, "BLOCKCO")):
        histogram_chart(simulation, each)
        fan_chart(simulation, each)
    assert len(figures) == 4
    for figure in figures:
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
        tight_text, tight_numbers = drawing(re.sub(r"\s+xmlns(:\w+)?=\"[^\"]*\"", "", buffer.getvalue()))
        text, numbers = drawing(svg(figure))
        assert text == tight_text and len(numbers) == len(tight_numbers)
        assert max(abs(a - b) for a, b in zip(numbers, tight_numbers)) < 1e-4


def test_run_table_is_each_partys_shown_value_per_run(simulation: Simulation) -> None:
    # The table picks each party's measure (a margin missing for want of costs: the net), as
    # run_values does for the charts: the two agree to the penny, run by run.
    headings, rows = run_table(simulation)
    assert len(rows) == RUNS and [row[0] for row in rows] == list(range(1, RUNS + 1))
    for column, each in enumerate(simulation.parties, start=1):
        assert headings[column] == f"{each.party} ({shown(each)[0]})"
        values = [row[column] for row in rows]
        assert all(isinstance(v, Decimal) for v in values), each.party
        assert [int(v * 100) for v in values] == np.round(run_values(simulation, each) * 100).astype(np.int64).tolist(), each.party
    icb = [row[1 + simulation.parties.index(party(simulation, "ICB"))] for row in rows]
    assert min(icb) > 0  # a commissioner's payments, not its (negative) net
    # A run whose margin is missing shows its net.
    positions = simulation.positions
    first = pc.and_(pc.equal(positions.column("party"), "PROV"), pc.equal(positions.column("scenario"), run_name(1)))
    margin = positions.schema.get_field_index("margin")
    without = positions.set_column(margin, "margin", pc.if_else(first, pa.scalar(None, positions.schema.field(margin).type), positions.column("margin")))
    net = positions.filter(first).column("net")[0].as_py()
    column = 1 + simulation.parties.index(party(simulation, "PROV"))
    assert net != rows[0][column] and run_table(replace(simulation, positions=without))[1][0][column] == net


def test_workbook_has_the_tables_and_every_run(simulation: Simulation, tmp_path: Path) -> None:
    book = load_workbook(write_risk_xlsx(simulation, tmp_path / "risk.xlsx"))
    assert book.sheetnames == ["Summary", "Stress tests", "Contracts", "Parameters", "Runs"]
    summary = {row[0]: row for row in book["Summary"].iter_rows(min_row=2, values_only=True)}
    prime = party(simulation, "PROV")
    assert D(str(summary["PROV"][6])) == prime.position.p95 and summary["PROV"][2] == "margin"
    assert book["Summary"]["G2"].number_format == MONEY_CODE and book["Summary"]["K2"].number_format == "0.0%"
    runs = list(book["Runs"].iter_rows(values_only=True))
    assert runs[0][0] == "run" and runs[0][1:] == tuple(f"{p.party} ({'payments' if p.role == 'commissioner' else p.measure})" for p in simulation.parties)
    assert len(runs) == 1 + RUNS and [r[0] for r in runs[1:]] == list(range(1, RUNS + 1))
    column = runs[0].index("PROV (margin)")
    margins = [D(str(r[column])) for r in runs[1:]]
    assert to_pence(sum(margins, D(0)) / RUNS) == prime.position.mean
    assert sorted(margins)[math.ceil(0.95 * RUNS) - 1] == prime.position.p95
    assert book["Runs"]["B2"].number_format == MONEY_CODE
    stress = list(book["Stress tests"].values)
    assert stress[0][:2] == ("party", "measure") and len(stress) == 1 + len(simulation.parties) + 2 + len(simulation.stresses)
    assert stress[-len(simulation.stresses) - 1][:3] == ("stress test", "scenario", "description")
    assert stress[-1][:2] == ("SUB leaves", "stress:leaves:C1-SUB")


def test_outlook_carries_the_risk_section_and_sheets(simulation: Simulation, tmp_path: Path) -> None:
    as_of = dt.date(2025, 9, 1)
    hundred = {m: D("100.00") for m in YEAR.months}
    total = ContractOutlook("total", "What the commissioners pay", {m: v for m, v in hundred.items() if m <= as_of}, {"run_rate": hundred}, None)
    report = Outlook("Tiny ICB", YEAR, as_of, ("run_rate",), "run_rate", {}, [], total, [])
    without = render(report)
    page = render(replace(report, risk=simulation))
    assert "Risk:" not in without and f"<h2>Risk: {RUNS} simulated runs</h2>" in page
    assert page.count("<svg") == without.count("<svg") + 2 * len(simulation.parties)
    assert "<h3>Every party over the runs</h3>" in page and "<h4>SUB (sub-contractor)</h4>" in page
    book = load_workbook(write_xlsx(replace(report, risk=simulation), tmp_path / "outlook.xlsx"))
    assert book.sheetnames == ["Outturn", "Monthly", "Positions", "Risk summary", "Risk stress tests", "Risk contracts", "Risk parameters", "Risk runs"]
    assert load_workbook(write_xlsx(report, tmp_path / "plain.xlsx")).sheetnames == ["Outturn", "Monthly", "Positions"]
