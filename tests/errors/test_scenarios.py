"""What-if, report, simulate and positions options: a provider no contract pays, months out of
order, sizes past any sense, runs past any machine, and costs shown for the wrong party."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.errors.catalogue import Case, invoke, nothing, refused

WHATIF = ("whatif", "-w", "{ws}")


def whatif_file(text: str):
    def change(ws: Path) -> None:
        (ws / "changes.yaml").write_text(text)
    return change


CASES = [
    Case("whatif --move-to a provider in no contract", nothing, (*WHATIF, "--provider", "ISP-HEALTHCARE", "--move-to", "NOWHERE"), ("--move-to", "NOWHERE", "ACUTE-RFH")),
    Case("whatif --from after --to", nothing, (*WHATIF, "--service", "elective", "--from", "2026-01", "--to", "2025-12", "--change", "-10%"), ("--from/--to", "2026-01", "after")),
    Case("whatif --change of 1e30 units", nothing, (*WHATIF, "--service", "elective", "--change", "1e30"), ("--change", "1000000000")),
    Case("whatif --change of 5000%", nothing, (*WHATIF, "--service", "elective", "--change", "5000%"), ("--change", "1000")),
    Case("whatif --change below -100%", nothing, (*WHATIF, "--service", "elective", "--change", "-150%"), ("--change", "-100")),
    Case("whatif --change that is not a number", nothing, (*WHATIF, "--service", "elective", "--change", "lots"), ("--change", "-10%")),
    Case("whatif --set mff=1e30", nothing, (*WHATIF, "--set", "ISP-2025.cases.mff=1e30"), ("--set", "range")),
    Case("whatif --set mff too large to price", nothing, (*WHATIF, "--set", "ISP-2025.cases.mff=1e11"), ("--set", "ISP-2025.cases.mff", "less than or equal to 10")),
    Case("whatif --set on an unknown contract", nothing, (*WHATIF, "--set", "NOPE-1.cases.mff=1.1"), ("--set", "NOPE-1")),
    Case("whatif --outcome of 1e30 points", nothing, (*WHATIF, "--outcome", "MSK-2025.hip-function=1e30"), ("--outcome",)),
    Case("whatif --price of 1e30", nothing, (*WHATIF, "--price", "national-2025/*=1e30"), ("--price", "range")),
    Case("whatif --from a month that does not exist", nothing, (*WHATIF, "--service", "elective", "--from", "2025-13", "--change", "-10%"), ("--from", "2025-13")),
    Case("whatif file with months out of order", whatif_file("name: x\nchanges:\n  - scale: {service: [elective], from: 2026-01-01, to: 2025-12-01}\n    percent: -10\n"),
         ("whatif", "{ws}/changes.yaml", "-w", "{ws}"), ("changes.yaml", "after")),
    Case("whatif file moving to nowhere", whatif_file("name: x\nchanges:\n  - move: {provider: [ISP-HEALTHCARE]}\n    to: NOWHERE\n"),
         ("whatif", "{ws}/changes.yaml", "-w", "{ws}"), ("NOWHERE", "ACUTE-RFH")),
    Case("simulate a billion runs", nothing, ("simulate", "-w", "{ws}", "--runs", "1000000000"), ("--runs", "100,000", "hours")),
    Case("simulate no runs", nothing, ("simulate", "-w", "{ws}", "--runs", "0"), ("--runs",)),
    Case("report --simulate a billion runs", nothing, ("report", "--as-of", "2025-11", "-w", "{ws}", "--simulate", "1000000000"), ("--runs", "100,000")),
    Case("report --as-of a month that does not exist", nothing, ("report", "--as-of", "2025-13", "-w", "{ws}"), ("--as-of", "2025-13")),
    Case("positions --party nobody", nothing, ("positions", "-w", "{ws}", "--party", "NOBODY"), ("--party", "NOBODY", "ACUTE-RFH")),
    Case("positions of a period outside the year", nothing, ("positions", "2027-01", "-w", "{ws}"), ("period", "outside")),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_scenarios(example: Path, case: Case) -> None:
    refused(example, case)


ACO = """id: ACO-2025
commissioner: MEDICARE
provider: ACO-NCL
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: mssp, kind: shared_savings, benchmark_per_capita: 12_000, population: 20_000,
     minimum_savings_percent: 2.5, sharing_percent: 40}
"""


def test_positions_never_show_the_payers_spending_as_a_providers_costs(tmp_path: Path) -> None:
    """An accountable care organisation's activity `cost` is what the payer spent on its
    population (shared savings measures it against the benchmark), not the organisation's
    cost: its position has no costs, not a margin of minus the payer's spending; and the
    payer, a commissioner, has none either."""
    ws = tmp_path / "aco"
    (ws / "contracts").mkdir(parents=True)
    (ws / "data" / "activity").mkdir(parents=True)
    (ws / "carecontracts.toml").write_text('name = "ACO"\nfinancial_year = "2025-26"\nfinancial_year_start_month = 4\n')
    (ws / "contracts" / "aco.yaml").write_text(ACO)
    rows = ["activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity,cost"]
    for index in range(12):
        year, month = (2025, index + 4) if index < 9 else (2026, index - 8)
        rows.append(f"A{index},P{index},ACO-NCL,MEDICARE,primary,X,OPFA,{year}-{month:02d}-01,{year}-{month:02d}-10,1,{'19333333.37' if index == 11 else '19333333.33'}")
    (ws / "data" / "activity" / "claims.csv").write_text("\n".join(rows) + "\n")
    assert invoke(ws, "load", "-w", "{ws}").exit_code == 0
    result = invoke(ws, "positions", "-w", "{ws}")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "£3,200,000.00" in flat and "£232,000,000.00" not in flat and "-£228,800,000.00" not in flat, result.output


def test_example_providers_keep_their_costs(example: Path) -> None:
    """Providers paid for care keep the cost of what they delivered (the example's positions)."""
    result = invoke(example, "positions", "-w", "{ws}")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    for fragment in ("ACUTE-RFH", "£13,350,853.50", "ACUTE-WHH", "£5,767,296.50", "LA-ADULT-CARE", "£4,737,325.17", "£516,073,353.06"):
        assert fragment in flat, fragment
