"""The command line end to end on a tiny workspace whose numbers are worked by hand."""

from __future__ import annotations

import csv
import hashlib
import os
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

os.environ["COLUMNS"] = "250"  # wide enough that rich does not wrap the lines we look for

from carecontracts.cli import app  # noqa: E402
from tests.report.workbook import evaluate  # noqa: E402

runner = CliRunner()


def money(value: Decimal) -> str:
    """£1,234.56: how the CLI prints an amount."""
    return f"{'-' if value < 0 else ''}£{abs(value):,.2f}"

BLOCK = """\
id: COMM-2025
title: Community services block
commissioner: ICB-A
provider: COMM
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: core
    kind: block
    annual: 1_200_000
"""

ACUTE = """\
id: ACUTE-2025
commissioner: ICB-A
provider: ACUTE
term: {start: 2025-04-01, end: 2026-03-31}
services:
  elective: {pod: [EL]}
components:
  - id: tariff
    kind: activity
    prices: national
    mff: 1.05
"""

ACTIVITY = """\
activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity
1,p1,ACUTE,ICB-A,ortho,HB12C,EL,2025-11-02,2025-11-04,1
2,p2,ACUTE,ICB-A,ortho,HB12C,EL,2025-11-10,2025-11-12,1
3,p3,ACUTE,ICB-A,ortho,FZ22Z,EL,2025-11-20,2025-11-20,1
4,p4,ACUTE,ICB-A,ortho,HB12C,EL,2025-12-01,2025-12-03,1
"""

PRICES = """\
currency,unit_price,valid_from,valid_to
HB12C,6000.00,2025-04-01,2026-03-31
FZ22Z,800.50,2025-04-01,2026-03-31
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "contracts").mkdir(parents=True)
    (root / "data" / "activity").mkdir(parents=True)
    (root / "prices").mkdir()
    (root / "carecontracts.toml").write_text('name = "Tiny ICB"\nfinancial_year = "2025-26"\n')
    (root / "contracts" / "community.yaml").write_text(BLOCK)
    (root / "contracts" / "acute.yaml").write_text(ACUTE)
    (root / "data" / "activity" / "nov.csv").write_text(ACTIVITY)
    (root / "prices" / "national.csv").write_text(PRICES)
    return root


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def warehouse_digest(root: Path) -> dict[str, int]:
    with duckdb.connect(str(root / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_check_load_pay_explain_export(workspace: Path, tmp_path: Path) -> None:
    assert invoke("check", "-w", workspace).exit_code == 0
    loaded = invoke("load", "-w", workspace)
    assert loaded.exit_code == 0, loaded.output
    assert warehouse_digest(workspace)["activity"] == 4

    paid = invoke("pay", "2025-11", "-w", workspace, "--xlsx", tmp_path / "nov.xlsx")
    assert paid.exit_code == 0, paid.output
    # November: block £100,000.00; activity 2 × £6,000 × 1.05 + £800.50 × 1.05 = £12,600.00 + £840.53
    assert "£100,000.00" in paid.output
    assert "£113,440.53" in paid.output  # 100,000 + 12,600 + 840.525 → 840.53
    book = load_workbook(tmp_path / "nov.xlsx")
    summary = list(book["Summary"].values)
    # The last rows: the contracts' total, then the sum of every line of the Lines sheet.
    assert summary[-2][0] == "total" and summary[-1][0] == "every line (sheet Lines)"
    assert evaluate(book, "Summary", summary[-2][-1]) == evaluate(book, "Summary", summary[-1][-1]) == Decimal("113440.53")
    assert "nov.xlsx" in paid.output

    explained = invoke("explain", "COMM-2025", "core", "2025-11", "-w", workspace)
    assert explained.exit_code == 0, explained.output
    assert "contracts/community.yaml:9" in explained.output  # the `annual:` line
    assert "payment does not depend on activity" in explained.output

    explained = invoke("explain", "ACUTE-2025", "tariff", "2025-11", "-w", workspace)
    assert "2 units × £6,000.00 × MFF 1.0500" in explained.output
    assert "HB12C" in explained.output

    target = tmp_path / "all.csv"
    exported = invoke("export", target, "-w", workspace, "--period", "2025-11..2025-12")
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(target.open()))
    # Two block months, two acute currencies in November and one in December.
    assert len(rows) == 5
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal("100000") * 2 + Decimal("13440.53") + Decimal("6300.00")


def test_pay_month_outside_financial_year(workspace: Path) -> None:
    assert invoke("load", "-w", workspace).exit_code == 0
    result = invoke("pay", "2026-05", "-w", workspace)
    assert result.exit_code == 2
    assert "2026-05 is outside the financial year 2025-26" in result.output


def test_typo_in_contract_is_located_and_exit_2(workspace: Path) -> None:
    (workspace / "contracts" / "community.yaml").write_text(BLOCK.replace("annual:", "anual:"))
    result = invoke("check", "-w", workspace)
    assert result.exit_code == 2
    assert "contracts/community.yaml:9" in result.output
    assert "unknown key 'anual'" in result.output


def test_bad_data_writes_nothing(workspace: Path) -> None:
    assert invoke("load", "-w", workspace).exit_code == 0
    before = warehouse_digest(workspace)
    digest = hashlib.sha256((workspace / ".carecontracts" / "warehouse.duckdb").read_bytes()).hexdigest()
    (workspace / "data" / "activity" / "dec.csv").write_text(ACTIVITY.replace("2025-12-03", "2025-13-03").replace("\n1,", "\n11,"))
    (workspace / "prices" / "national.csv").write_text(PRICES.replace("800.50", "-800.50"))
    result = invoke("load", "-w", workspace)
    assert result.exit_code == 2
    assert "Nothing was loaded" in result.output
    assert "data/activity/dec.csv:5" in result.output and "end_date" in result.output
    assert "prices/national.csv:3" in result.output and "unit_price" in result.output
    assert warehouse_digest(workspace) == before
    assert hashlib.sha256((workspace / ".carecontracts" / "warehouse.duckdb").read_bytes()).hexdigest() == digest


def test_missing_column_is_reported(workspace: Path) -> None:
    text = ACTIVITY.replace("currency,", "").replace("HB12C,", "").replace("FZ22Z,", "")
    (workspace / "data" / "activity" / "nov.csv").write_text(text)
    result = invoke("load", "-w", workspace)
    assert result.exit_code == 2
    assert "data/activity/nov.csv" in result.output and "missing column currency" in result.output


def test_every_command_is_in_the_readme() -> None:
    """Each CLI command is documented in README.md (a new command must be explained)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    commands = [c.name or c.callback.__name__ for c in app.registered_commands]
    commands += [f"{group.name} {c.name or c.callback.__name__}" for group in app.registered_groups for c in group.typer_instance.registered_commands]
    assert commands, "no commands registered"
    missing = [c for c in commands if f"carecontracts {c}" not in readme]
    assert not missing, f"commands missing from README.md: {missing}"


def test_overlapping_prices_are_refused(workspace: Path) -> None:
    (workspace / "prices" / "national.csv").write_text(PRICES + "HB12C,6100.00,2025-10-01,2026-03-31\n")
    result = invoke("load", "-w", workspace)
    assert result.exit_code == 2
    assert "prices/national.csv:4" in result.output and "HB12C has two prices on 2025-10-01" in result.output


@pytest.mark.spark
def test_spark_backend_gives_identical_statements(workspace: Path, tmp_path: Path) -> None:
    """`pay --backend spark` prices the same lines, to the penny and word for word."""
    import pyarrow.parquet as pq

    assert invoke("load", "-w", workspace).exit_code == 0
    assert invoke("pay", "year", "-w", workspace, "--parquet", tmp_path / "duck.parquet").exit_code == 0
    spark = invoke("pay", "year", "-w", workspace, "--backend", "spark", "--parquet", tmp_path / "spark.parquet")
    assert spark.exit_code == 0, spark.output
    duck_lines = pq.read_table(tmp_path / "duck.parquet").to_pylist()
    spark_lines = pq.read_table(tmp_path / "spark.parquet").to_pylist()
    assert len(duck_lines) == 12 + 3
    assert spark_lines == duck_lines


def test_activity_in_no_contract_is_reported(workspace: Path) -> None:
    """Activity from a provider no contract covers is named, not silently left off."""
    extra = "\n".join(f"9{i},q{i},ELSEWHERE,ICB-A,ortho,HB12C,EL,2025-11-02,2025-11-04,1" for i in range(3))
    (workspace / "data" / "activity" / "other.csv").write_text(ACTIVITY.splitlines()[0] + "\n" + extra + "\n")
    assert invoke("load", "-w", workspace).exit_code == 0
    result = invoke("pay", "2025-11", "-w", workspace)
    assert result.exit_code == 0, result.output
    assert "3 activity rows in 2025-26 from provider ELSEWHERE for commissioner ICB-A are in no contract" in result.output
    assert "£113,440.53" in result.output  # the statement itself is unchanged


PRIME = """\
id: MSK-2025
commissioner: ICB-A
provider: PRIME
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: core, kind: block, annual: 120_000}
  - id: outcomes
    kind: outcome_incentive
    pot: {percent_of: core, percent: 10}
    metrics:
      - id: hips
        measure: {instrument: oxford_hip, min_change: 8}
        schedule: {floor: 0.5, target: 1}
subcontracts:
  - id: MSK-SUB
    provider: ACUTE
    components: [{id: support, kind: block, annual: 24_000}]
"""

OUTCOMES = """\
patient_id,episode_id,instrument,timepoint,date,score,provider
p1,e1,oxford_hip,pre,2025-05-01,20,ACUTE
p1,e1,oxford_hip,post,2025-11-01,35,ACUTE
p2,e2,oxford_hip,pre,2025-05-01,20,ACUTE
p2,e2,oxford_hip,post,2025-11-01,30,ACUTE
p3,e3,oxford_hip,pre,2025-05-01,20,ACUTE
p3,e3,oxford_hip,post,2025-11-01,22,ACUTE
p4,e4,oxford_hip,pre,2025-05-01,20,ACUTE
p4,e4,oxford_hip,post,2025-11-01,21,ACUTE
p5,e5,oxford_hip,post,2025-11-01,40,ACUTE
"""


def test_outcomes_prime_and_positions(workspace: Path) -> None:
    """A prime paid on hip outcomes pays its sub-contractor; `load` reports the unpaired
    episode and `positions` every party's position, money conserved."""
    (workspace / "contracts" / "msk.yaml").write_text(PRIME)
    (workspace / "data" / "outcomes").mkdir()
    (workspace / "data" / "outcomes" / "hips.csv").write_text(OUTCOMES)
    loaded = invoke("load", "-w", workspace)
    assert loaded.exit_code == 0, loaded.output
    assert "1 episodes lack a pre or post score" in loaded.output

    paid = invoke("pay", "year", "-w", workspace)
    assert paid.exit_code == 0, paid.output
    # 2 of 4 paired hips improved by ≥ 8: 50% is the floor, so nothing is earned; the
    # post-only episode is reported as unpaired.
    explained = invoke("explain", "MSK-2025", "outcomes.hips", "2026-03", "-w", workspace)
    assert "50.0% improved by ≥ 8 points" in explained.output and "2 of 4 episodes; 1 unpaired" in explained.output

    positions = invoke("positions", "-w", workspace)
    assert positions.exit_code == 0, positions.output
    # PRIME: £120,000 in, £24,000 out to ACUTE; ACUTE also gets its own contract's £20,160.53
    # (November and December activity: £13,440.53 + £6,300.00 ... see the first test) + £24,000.
    prime = next(line for line in positions.output.splitlines() if line.startswith("│ PRIME"))
    assert "£120,000.00" in prime and "£24,000.00" in prime and "£96,000.00" in prime
    assert "Money is conserved" in positions.output

    party = invoke("positions", "-w", workspace, "--party", "PRIME")
    assert party.exit_code == 0, party.output
    assert "MSK-SUB" in party.output and "out" in party.output
    unknown = invoke("positions", "-w", workspace, "--party", "NOBODY")
    assert unknown.exit_code == 2 and "no such party" in unknown.output


def test_outcomes_by_provider_from_the_national_proms_records() -> None:
    """The shipped PROMs records give each provider's case-mix adjusted Oxford Hip Score as
    published: KIMS Hospital (ADP02) 41.3098 from 245 modelled records, England 40.1136."""
    result = invoke("outcomes", "--proms", "--statistic", "casemix_adjusted_mean")
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if line.startswith("│ ADP02")]
    assert "41.31" in row and "245" in row
    (everyone,) = [line for line in result.output.splitlines() if line.startswith("│ everyone")]
    assert "40.11" in everyone
    bad = invoke("outcomes", "--proms", "--instrument", "bartel")
    assert bad.exit_code == 2 and "unknown instrument 'bartel'" in bad.output


def test_whatif_send_less_in_december(workspace: Path) -> None:
    """The seed's question on the tiny workspace: 50% less HB12C work from December saves
    half of December's HB12C case, £3,150.00, under activity, and nothing under the block."""
    assert invoke("load", "-w", workspace).exit_code == 0
    result = invoke("whatif", "-w", workspace, "--currency", "HB12C", "--from", "2025-12", "--change", "-50%")
    assert result.exit_code == 0, result.output
    # December: one HB12C spell at £6,000 × 1.05 = £6,300.00; half of it is £3,150.00.
    assert "ACUTE-2025: saves £3,150.00" in result.output
    assert "payment does not depend on activity" in result.output
    assert "a saving of £3,150.00" in result.output
    nothing = invoke("whatif", "-w", workspace, "--service", "cardiology", "--change", "-10%")
    assert nothing.exit_code == 0 and "matches no activity" in nothing.output
    # HB12C at £7,000 instead of £6,000: 3 spells × £1,000 × 1.05 = £3,150.00 more.
    dearer = invoke("whatif", "-w", workspace, "--price", "national/HB12C=7000")
    assert dearer.exit_code == 0 and "an extra £3,150.00" in dearer.output
    bad = invoke("whatif", "-w", workspace, "--service", "ortho", "--change", "ten percent")
    assert bad.exit_code == 2 and "is not a percent or a number of units" in bad.output


def test_forecast_as_of_and_backtest(workspace: Path) -> None:
    """As of November (the first month with activity) the run rate repeats November each
    month: the tiny ICB's activity contract, £13,440.53 a month, for four more months."""
    (workspace / "carecontracts.toml").write_text('name = "Tiny ICB"\nfinancial_year = "2025-26"\n[budgets]\nICB-A = 1_200_000\n')
    assert invoke("load", "-w", workspace).exit_code == 0
    result = invoke("forecast", "-w", workspace, "--as-of", "2025-11", "--method", "run_rate")
    assert result.exit_code == 0, result.output
    # Run rate over the 8 months April–November, per currency: HB12C 2/8 = 0.25 a month ×
    # £6,000 × 1.05 = £1,575.00; FZ22Z 1/8 × £800.50 × 1.05 = £105.065625 → £105.07 a line.
    # Four more months: 4 × (£1,575.00 + £105.07) = £6,720.28; outturn £20,160.81. The
    # block pays its twelfths whatever happens.
    acute = next(line for line in result.output.splitlines() if line.startswith("│ ACUTE-2025"))
    assert "£13,440.53" in acute and "£6,720.28" in acute and "£20,160.81" in acute
    assert "£1,200,000.00" in next(line for line in result.output.splitlines() if line.startswith("│ COMM-2025"))
    # ICB-A pays £1,200,000 + £20,160.81 against a budget of £1,200,000.
    assert "ICB-A: outturn £1,220,160.81 against a budget of £1,200,000.00: £20,160.81 over" in result.output
    missing = invoke("forecast", "-w", workspace, "--as-of", "2026-02")
    assert missing.exit_code == 2 and "there is no activity in 2026-02 to forecast from" in missing.output
    back = invoke("forecast", "-w", workspace, "--backtest", "--method", "run_rate")
    assert back.exit_code == 0, back.output
    assert "mean absolute % error" in back.output


def test_whatif_outcome_and_report_with_comparison(workspace: Path, tmp_path: Path) -> None:
    """20 points more hip improvement: 50% → 70% on a 50%–100% line earns 0.4 of the £12,000
    pot (10% of the £120,000 core) = £4,800. The report carries a comparison of forms."""
    (workspace / "contracts" / "msk.yaml").write_text(PRIME)
    (workspace / "data" / "outcomes").mkdir()
    (workspace / "data" / "outcomes" / "hips.csv").write_text(OUTCOMES)
    assert invoke("load", "-w", workspace).exit_code == 0
    result = invoke("whatif", "-w", workspace, "--outcome", "MSK-2025.hips=20")
    assert result.exit_code == 0, result.output
    assert "MSK-2025: costs £4,800.00" in result.output
    report = invoke("report", "-w", workspace, "--as-of", "2025-11", "--compare-service", "ortho",
                    "--html", tmp_path / "r.html", "--xlsx", tmp_path / "r.xlsx")
    assert report.exit_code == 0, report.output
    assert "Contract forms compared" in (tmp_path / "r.html").read_text()
    assert "Comparison" in load_workbook(tmp_path / "r.xlsx").sheetnames


def test_load_one_month(workspace: Path) -> None:
    """nov.csv holds a December spell too: loading it as November is refused at its line;
    a November-only file loads and leaves the warehouse with just those rows."""
    refused = invoke("load", "-w", workspace, "--month", "2025-11", workspace / "data" / "activity" / "nov.csv")
    assert refused.exit_code == 2
    assert "ends 2025-12-03, outside 2025-11, the month being loaded" in refused.output
    november = workspace / "data" / "activity" / "2025-11.csv"
    november.write_text("\n".join(ACTIVITY.splitlines()[:4]) + "\n")
    (workspace / "data" / "activity" / "nov.csv").unlink()
    loaded = invoke("load", "-w", workspace, "--month", "2025-11")
    assert loaded.exit_code == 0, loaded.output
    assert warehouse_digest(workspace)["activity"] == 3


def test_simulate_runs_stress_tests_and_reports(workspace: Path, tmp_path: Path) -> None:
    """The block's provider has the same £1.2m in every run; the acute trust's income moves
    with its drawn cases; the same seed prints the same; a bad model file is located."""
    assert invoke("load", "-w", workspace).exit_code == 0
    args = ["simulate", "-w", workspace, "--runs", "60", "--seed", "3", "--chunk", "25", "--html", tmp_path / "risk.html", "--xlsx", tmp_path / "risk.xlsx"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "60 runs of 2025-26, seed 3" in first.output
    block = next(line for line in first.output.splitlines() if line.startswith("│ COMM "))
    assert block.count("£1,200,000.00") == 5  # mean, P5, P50, P95 and the worst 5%: all the block
    assert "winter demand +10%" in first.output
    assert (tmp_path / "risk.html").read_text().count("<svg") >= 2
    assert "Runs" in load_workbook(tmp_path / "risk.xlsx", read_only=True).sheetnames
    again = invoke(*args)
    assert again.output.split("Wrote")[0] == first.output.split("Wrote")[0]
    model = tmp_path / "model.yaml"
    model.write_text("volume:\n  shock: 0.1\n")
    bad = invoke("simulate", "-w", workspace, "--runs", "5", "--model", model)
    assert bad.exit_code == 2 and "model.yaml:2" in bad.output and "unknown key 'shock'" in bad.output
    late = invoke("simulate", "-w", workspace, "--runs", "5", "--as-of", "2026-03")
    assert late.exit_code == 2 and "nothing is left to simulate" in late.output
    page = tmp_path / "report.html"
    with_risk = invoke("report", "-w", workspace, "--as-of", "2025-11", "--simulate", "20", "--html", page, "--xlsx", tmp_path / "report.xlsx")
    assert with_risk.exit_code == 0, with_risk.output
    assert "Risk: 20 simulated runs" in page.read_text()


def big_book(root: Path, contracts: int = 24) -> dict[str, Decimal]:
    """`contracts` block contracts (BLK-00 ...), paid by ICB-A or ICB-B to their own
    providers: annual £12,000 × (n + 1), a twelfth a month. Returns each one's annual."""
    for path in (root / "contracts").glob("*.yaml"):
        path.unlink()
    annual = {}
    for n in range(contracts):
        ident = f"BLK-{n:02d}"
        annual[ident] = Decimal(12_000 * (n + 1))
        (root / "contracts" / f"blk{n:02d}.yaml").write_text(
            f"id: {ident}\ncommissioner: ICB-{'AB'[n % 2]}\nprovider: PROV-{n:02d}\nterm: {{start: 2025-04-01, end: 2026-03-31}}\n"
            f"components:\n  - {{id: core, kind: block, annual: {12_000 * (n + 1)}}}\n")
    (root / "data" / "activity" / "nov.csv").write_text(ACTIVITY.replace("ACUTE", "PROV-00"))
    return annual


def test_big_book_summary_contract_filter_and_lines_beside(workspace: Path, tmp_path: Path) -> None:
    """Over 20 contracts the summary gives totals by payer and payee, the largest contracts
    and a grand total to the penny; --contract narrows the summary and the workbook;
    --lines parquet writes the lines beside the workbook; an unknown contract is exit 2."""
    import pyarrow.parquet as pq

    annual = big_book(workspace)
    assert invoke("load", "-w", workspace).exit_code == 0
    paid = invoke("pay", "year", "-w", workspace, "--xlsx", tmp_path / "year.xlsx", "--lines", "parquet")
    assert paid.exit_code == 0, paid.output
    grand = sum(annual.values(), Decimal(0))
    assert f"Total {money(grand)}: the sum of all {12 * len(annual)} lines" in paid.output
    icb_a = sum((v for k, v in annual.items() if int(k[-2:]) % 2 == 0), Decimal(0))
    assert money(icb_a) in next(line for line in paid.output.splitlines() if line.startswith("│ ICB-A "))
    largest = [line.split("│")[1].strip() for line in paid.output.split("largest contracts")[1].splitlines() if line.startswith("│ BLK-")]
    assert largest == [f"BLK-{n:02d}" for n in range(23, 13, -1)]
    assert "│ BLK-00 " not in paid.output  # not every contract
    lines = pq.read_table(tmp_path / "year-lines.parquet")
    assert lines.num_rows == 12 * len(annual) and sum(lines.column("amount").to_pylist(), Decimal(0)) == grand
    assert load_workbook(tmp_path / "year.xlsx").sheetnames == ["Summary", "Positions"]

    chosen = invoke("pay", "year", "-w", workspace, "--xlsx", tmp_path / "some.xlsx", "--contract", "BLK-1*", "--contract", "BLK-03")
    assert chosen.exit_code == 0, chosen.output
    wanted = ["BLK-03", *[f"BLK-{n}" for n in range(10, 20)]]
    shown = [line.split("│")[1].strip() for line in chosen.output.splitlines() if line.startswith("│ BLK-")]
    assert sorted(set(shown)) == wanted
    assert money(sum((annual[c] for c in wanted), Decimal(0))) in chosen.output
    book = load_workbook(tmp_path / "some.xlsx")
    assert book.sheetnames == ["Summary", "Lines"]
    assert sorted({row[1] for row in book["Lines"].iter_rows(min_row=2, values_only=True)}) == wanted

    unknown = invoke("pay", "year", "-w", workspace, "--contract", "BLK-3", "--contract", "BLK-0*")
    assert unknown.exit_code == 2
    assert "no contract 'BLK-3'" in unknown.output and "did you mean" in unknown.output and "BLK-03" in unknown.output
    assert not (workspace / "outputs" / "statements-2025-26.xlsx").exists()


def test_pay_help_teaches_the_outputs() -> None:
    """`pay --help` says where the lines go and how to choose contracts."""
    shown = invoke("pay", "--help")
    assert shown.exit_code == 0
    assert "--lines" in shown.output and "parquet" in shown.output and "--contract" in shown.output


ACO = """\
id: ACO-2025
commissioner: ICB-A
provider: ACO
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: mssp, kind: shared_savings, benchmark: 100_000, minimum_savings_percent: 2, sharing_percent: 50}
"""


def test_explain_shows_the_year_behind_a_shared_savings_line(workspace: Path) -> None:
    """A shared savings line, settled in March, prices the year's expenditure: explain shows
    the year's tallies to March, 12 cases costing £1,000 × (1 + 2 + … + 12) = £78,000.00
    (March alone would be 1 case and £12,000.00). Saved £22,000 (22% ≥ 2%) × 50% = £11,000.00."""
    (workspace / "contracts" / "aco.yaml").write_text(ACO)
    rows = [f"a{i},q{i},ACO,ICB-A,community,HRG1,EL,{d},{d},1,{1000 * (i + 1)}.00"
            for i, d in enumerate(f"{2025 + (m + 3) // 12}-{(m + 3) % 12 + 1:02d}-10" for m in range(12))]
    header = "activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity,cost\n"
    (workspace / "data" / "activity" / "aco.csv").write_text(header + "\n".join(rows) + "\n")
    for args in (("load", "-w", workspace), ("pay", "year", "-w", workspace)):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
    explained = invoke("explain", "ACO-2025", "mssp", "2026-03", "-w", workspace)
    assert explained.exit_code == 0, explained.output
    flat = " ".join(explained.output.split())
    assert "Tallies behind them: the year to date, 2025-04 to 2026-03" in flat
    assert "£78,000.00" in flat and "£11,000.00" in flat
    assert "£12,000.00" not in flat


def test_pay_prices_a_minimum_savings_rate_given_to_7_places(workspace: Path) -> None:
    """The programme's files give minimum savings rates to 7 places. Benchmark £91,390,000 and
    a minimum of 3.0860861%; spent £88,569,613.21 (11 months at £7,380,801.10, March
    £7,380,801.11): saved £2,820,386.79, 3.0861000…% of benchmark, which reaches the minimum
    (282,038,679 ≥ 91,390,000 × 3.0860861 = 282,037,408.66): 50% = £1,410,193.395, £1,410,193.40."""
    (workspace / "contracts" / "aco.yaml").write_text(ACO.replace("benchmark: 100_000, minimum_savings_percent: 2",
                                                                  "benchmark: 91_390_000, minimum_savings_percent: 3.0860861"))
    days = [f"{2025 + (m + 3) // 12}-{(m + 3) % 12 + 1:02d}-10" for m in range(12)]
    rows = [f"a{i},q{i},ACO,ICB-A,community,HRG1,EL,{d},{d},1,{'7380801.11' if i == 11 else '7380801.10'}" for i, d in enumerate(days)]
    header = "activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity,cost\n"
    (workspace / "data" / "activity" / "aco.csv").write_text(header + "\n".join(rows) + "\n")
    for args in (("check", "-w", workspace), ("load", "-w", workspace), ("pay", "year", "-w", workspace)):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
    explained = invoke("explain", "ACO-2025", "mssp", "2026-03", "-w", workspace)
    flat = " ".join(explained.output.split())
    assert "£1,410,193.40" in flat, explained.output
    assert "savings £2,820,386.79 (3.0861000% of benchmark); savings rate reaches the minimum savings rate 3.0860861%" in flat, explained.output
