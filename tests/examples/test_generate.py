"""The example workspace: deterministic, the right size, loadable, priceable, and telling
the stories its contracts are there to show (winter pressure, a shared contract, a cost
and volume contract over its band, readmissions not paid)."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv  # noqa: F401  (pa.csv)
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from carecontracts.data.load import check_files, load_workspace
from carecontracts.engine.backend import Engine
from carecontracts.engine.run import RunTables, statement_lines
from carecontracts.examples import generate
from carecontracts.examples.generate import ExampleSummary, write_example
from carecontracts.language import load_contracts
from carecontracts.workspace import Workspace

ROWS = 20_000


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file the generator wrote, by path inside the workspace."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".carecontracts" not in p.parts
    }


def activity(root: Path) -> pa.Table:
    """The main activity rows the generator wrote (the partnerships' are in their own file)."""
    return pa.concat_tables(pq.read_table(path) for path in sorted((root / "data" / "activity").glob("activity-*.parquet")))


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> ExampleSummary:
    """One small example workspace shared by the module's tests."""
    return write_example(tmp_path_factory.mktemp("ws") / "example", rows=ROWS)


@pytest.fixture(scope="module")
def lines(example: ExampleSummary) -> list[dict]:
    """The year's statement lines of the loaded example."""
    workspace = Workspace.open(example.root)
    load_workspace(workspace)
    contracts = load_contracts(workspace.contracts_dir, workspace.price_lists(), workspace.root)
    engine = Engine.duckdb(workspace.warehouse_path)
    return statement_lines(engine, contracts, workspace.year, RunTables.from_engine(engine)).to_pylist()


def total(lines: list[dict], **match: str) -> Decimal:
    """Sum of the amounts of the lines matching every given column value."""
    return sum((r["amount"] for r in lines if all(r[k] == v for k, v in match.items())), Decimal(0))


def test_same_seed_gives_identical_files(example: ExampleSummary, tmp_path: Path) -> None:
    again = write_example(tmp_path / "again", rows=ROWS)
    assert digests(again.root) == digests(example.root)
    assert again.files == example.files


def test_another_seed_gives_other_activity(example: ExampleSummary, tmp_path: Path) -> None:
    other = write_example(tmp_path / "other", rows=ROWS, seed=7)
    mine, theirs = digests(example.root), digests(other.root)
    assert mine["data/activity/activity-0001.parquet"] != theirs["data/activity/activity-0001.parquet"]
    assert mine["prices/national-2025.csv"] == theirs["prices/national-2025.csv"]


def test_row_count_and_columns(example: ExampleSummary) -> None:
    table = activity(example.root)
    assert example.activity_rows == table.num_rows == ROWS
    assert len(set(table.column("activity_id").to_pylist())) == ROWS
    assert set(table.column_names) == {
        "activity_id", "patient_id", "provider", "commissioner", "service", "currency", "pod", "start_date",
        "end_date", "quantity", "referral_date", "admission_method", "age", "cost", "site",
    }
    con = duckdb.connect()
    con.register("activity", table)
    first, last, backwards = con.execute(
        "SELECT min(end_date), max(end_date), count(*) FILTER (WHERE end_date < start_date OR referral_date > start_date) FROM activity"
    ).fetchone()
    assert (str(first), str(last), backwards) == ("2025-04-01", "2026-03-31", 0)
    methods = {m for (m,) in con.execute("SELECT DISTINCT admission_method FROM activity WHERE admission_method IS NOT NULL").fetchall()}
    assert methods == {"elective", "emergency", "transfer", "maternity"}


def test_chunks_add_up_to_the_rows_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate, "CHUNK_ROWS", 3_000)
    summary = write_example(tmp_path / "chunked", rows=10_001)
    files = sorted((summary.root / "data" / "activity").glob("activity-*.parquet"))
    assert len(files) == math.ceil(10_001 / 3_000)
    ids = activity(summary.root).column("activity_id").to_pylist()
    assert sorted(ids) == [f"A{n:010d}" for n in range(1, 10_002)]


def test_workspace_and_contracts_load_without_problems(example: ExampleSummary) -> None:
    workspace = Workspace.open(example.root)
    assert workspace.settings.financial_year == "2025-26" and workspace.settings.backend == "duckdb"
    assert (example.root / ".gitignore").read_text() == ".carecontracts/\n"
    contracts = load_contracts(workspace.contracts_dir, workspace.price_lists(), workspace.root)
    kinds = {c.id: c.components[0].kind for c in contracts}
    assert kinds == {
        "ACUTE-2025": "aligned_payment", "ISP-2025": "activity", "COMMUNITY-2025": "block",
        "MH-2025": "cost_and_volume", "OOA-2025": "low_volume_block", "GP-2025": "capitation",
        "MSK-2025": "block", "OPA-2025": "capitation",
    }
    assert sorted(example.contracts) == sorted(kinds)
    assert check_files(workspace) == []
    for path in workspace.contracts_dir.glob("*.yaml"):
        assert path.read_text().startswith("# "), f"{path.name} has no plain-words header"


def test_every_currency_in_the_activity_has_a_price(example: ExampleSummary) -> None:
    listed = {line.split(",")[0] for line in (example.root / "prices" / "national-2025.csv").read_text().splitlines()[1:]}
    used = set(activity(example.root).column("currency").unique().to_pylist())
    assert used <= listed


def test_year_runs_and_totals_follow_the_contracts(lines: list[dict]) -> None:
    assert total(lines, contract="COMMUNITY-2025") == Decimal("48000000.00")
    assert total(lines, contract="OOA-2025") == Decimal("412983.33")  # (412,300 + 389,750 + 436,900) / 3
    assert total(lines, contract="ACUTE-2025", component="api.fixed") == Decimal("412500000.00")
    # The elective plan sits below what was delivered, so the variable element pays out.
    assert total(lines, contract="ACUTE-2025", component="api.variable") > 0
    assert total(lines, contract="ISP-2025") > 0
    assert Decimal("3000000") < total(lines, contract="GP-2025") < Decimal("4000000")
    assert {r["payer"] for r in lines if r["contract"] == "GP-2025"} == {"ICB-NCL"}


def test_mental_health_lands_above_its_band(lines: list[dict]) -> None:
    march = [r for r in lines if r["contract"] == "MH-2025" and r["month"].isoformat() == "2026-03-01"]
    assert len(march) == 1 and "above band" in march[0]["basis"]


def test_independent_sector_readmissions_are_not_all_paid(example: ExampleSummary, lines: list[dict]) -> None:
    assert any("emergency readmission" in r["basis"] for r in lines if r["contract"] == "ISP-2025")
    table = activity(example.root)
    isp = table.filter(pc.equal(table.column("provider"), "ISP-HEALTHCARE"))
    spells = sum(1 for pod in isp.column("pod").to_pylist() if pod in ("EL", "DC"))
    returns = sum(1 for pod in isp.column("pod").to_pylist() if pod == "NEL")
    assert 0.01 <= returns / spells <= 0.02


def test_winter_emergency_peak(example: ExampleSummary) -> None:
    con = duckdb.connect()
    con.register("activity", activity(example.root))
    per_day = dict(
        con.execute(
            """SELECT CASE WHEN month(end_date) IN (12, 1, 2) THEN 'winter' ELSE 'summer' END,
                      count(*) / count(DISTINCT end_date)
               FROM activity WHERE pod = 'NEL' AND month(end_date) IN (12, 1, 2, 6, 7, 8) GROUP BY 1"""
        ).fetchall()
    )
    assert per_day["winter"] > 1.10 * per_day["summer"]


def test_shared_contract_carries_both_commissioners(example: ExampleSummary, lines: list[dict]) -> None:
    table = activity(example.root)
    counts: dict[str, int] = defaultdict(int)
    for provider, commissioner in zip(table.column("provider").to_pylist(), table.column("commissioner").to_pylist()):
        if provider == "ACUTE-RFH":
            counts[commissioner] += 1
    assert set(counts) == {"ICB-NCL", "ICB-NEL"}
    assert 0.18 < counts["ICB-NEL"] / sum(counts.values()) < 0.22
    fixed = {payer: total(lines, contract="ACUTE-2025", component="api.fixed", payer=payer) for payer in counts}
    assert fixed == {"ICB-NCL": Decimal("330000000.00"), "ICB-NEL": Decimal("82500000.00")}
    assert {r["payer"] for r in lines if r["component"] == "api.variable"} == {"ICB-NCL", "ICB-NEL"}


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        write_example(tmp_path, rows=1_000)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_example(empty, rows=1_000).activity_rows == 1_000


def test_shipped_national_costs_are_small_and_cited() -> None:
    data = Path(generate.__file__).parent / "data"
    assert (data / "national_costs_2023_24.csv").stat().st_size < 300_000
    source = (data / "SOURCE.md").read_text()
    assert "National Cost Collection 2023/24" in source and "open-government-licence/version/3" in source


# The partnerships: an MSK prime contractor paid on hip outcomes, an older people's alliance.


def test_hip_outcomes_are_real_proms_episodes(example: ExampleSummary) -> None:
    """Every (pre, post) Oxford Hip Score pair in the example is a real patient's pair from
    the shipped PROMs records; about 3% of episodes lack the pre-operative score."""
    from carecontracts.data.proms import hip_outcomes_table

    real = hip_outcomes_table(primary_only=True).to_pylist()
    pairs: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for row in real:
        if row["instrument"] == "oxford_hip":
            pairs[row["episode_id"]][row["timepoint"]] = row["score"]
    known = {(p["pre"], p["post"]) for p in pairs.values() if len(p) == 2}
    ours: dict[str, dict[str, Decimal]] = defaultdict(dict)
    table = pa.csv.read_csv(example.root / "data" / "outcomes" / "hip-proms.csv").to_pylist()
    for row in table:
        if row["instrument"] == "oxford_hip":
            ours[row["episode_id"]][row["timepoint"]] = Decimal(str(row["score"]))
    paired = [(p["pre"], p["post"]) for p in ours.values() if len(p) == 2]
    assert paired and all(pair in known for pair in paired)
    assert 0.01 < 1 - len(paired) / len(ours) < 0.06


def test_msk_prime_earns_outcome_money_and_pays_its_sub_contractors(lines: list[dict]) -> None:
    pot = Decimal("520000.00")  # 5% of the £10.4m core block
    hip = total(lines, contract="MSK-2025", component="outcomes.hip-function")
    life = total(lines, contract="MSK-2025", component="outcomes.quality-of-life")
    assert 0 < hip <= pot * Decimal("0.6") and 0 < life <= pot * Decimal("0.4")
    (line,) = [r for r in lines if r["component"] == "outcomes.hip-function"]
    assert "improved by ≥ 8 points (95% CI" in line["basis"] and "unpaired" in line["basis"]
    assert {r["payer"] for r in lines if r["contract"].startswith("MSK-2025-")} == {"PRIME-MSK"}
    assert total(lines, contract="MSK-2025-PHYSIO") == Decimal("2400000.00")
    assert total(lines, contract="MSK-2025-ORTHO") > 0


def test_alliance_shares_budget_risk_and_independence_money_among_members(lines: list[dict]) -> None:
    alliance = [r for r in lines if r["contract"] == "OPA-2025"]
    assert {r["payee"] for r in alliance} == {"ACUTE-RFH", "COMMUNITY-CT", "LA-ADULT-CARE", "AGE-UK-NCL"}
    budget = total(lines, contract="OPA-2025", component="budget")
    risk = total(lines, contract="OPA-2025", component="risk")
    # Costs run 4% over the budget; within the first 5% band the commissioner bears half.
    assert abs(risk / budget - Decimal("0.02")) < Decimal("0.002")
    independence = [r for r in alliance if r["component"] == "independence.more-independent"]
    assert {r["month"].month for r in independence} == {6, 9, 12, 3}
    assert 0 < total(lines, contract="OPA-2025", component="independence.more-independent") < Decimal("1200000")


@pytest.mark.spark
def test_example_statements_are_identical_on_spark(example: ExampleSummary, lines: list[dict]) -> None:
    """Every line of the example's year, outcome, alliance and sub-contract lines included,
    is the same on Spark as on DuckDB: to the penny and word for word."""
    from carecontracts.payments import open_engine

    workspace = Workspace.open(example.root)
    contracts = load_contracts(workspace.contracts_dir, workspace.price_lists(), workspace.root)
    engine, tables = open_engine(workspace, "spark")
    try:
        spark = statement_lines(engine, contracts, workspace.year, tables).to_pylist()
    finally:
        engine.close()
    assert len(spark) == len(lines) > 500
    assert spark == lines
