"""The monthly cycle end to end through the command line, on a workspace small enough to
work by hand: one acute contract shared by two ICBs at £100 a case, one community contract.

October: ACUTE has 10 cases for ICB-A and 4 for ICB-B, COMM 5 for ICB-A; November: ACUTE
has 3 cases for ICB-A. At MFF 1.0 October pays ACUTE £1,000 (ICB-A) and £400 (ICB-B)."""

from __future__ import annotations

import csv
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import datetime as dt

import duckdb
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from typer.testing import CliRunner

from carecontracts.cli import app
from carecontracts.cycle.submissions import submit_month
from carecontracts.problems import ProblemsError
from carecontracts.workspace import Workspace
from carecontracts.records.schema import Base
from carecontracts.records.store import Records

runner = CliRunner()
HEADER = "activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity"
ACUTE = """\
id: ACUTE-2025
provider: ACUTE
commissioners:
  - {id: ICB-A, share: 0.5, coordinating: true}
  - {id: ICB-B, share: 0.5}
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: cases
    kind: activity
    prices: tariff
    unit: cases
    mff: 1.0
"""
VARIED = ACUTE.replace("    mff: 1.0\n", "    mff:\n      - {from: 2025-04-01, to: 2025-09-30, value: 1.0}\n      - {from: 2025-10-01, value: 1.05}\n")
COMMUNITY = """\
id: COMM-2025
provider: COMM
commissioner: ICB-A
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: visits, kind: activity, prices: tariff, unit: visits}
"""


def rows(prefix: str, provider: str, commissioner: str, day: str, count: int) -> list[str]:
    return [f"{prefix}{i},P{prefix}{i},{provider},{commissioner},general,HRG1,EL,{day},{day},1" for i in range(1, count + 1)]


OCTOBER = rows("AA", "ACUTE", "ICB-A", "2025-10-15", 10) + rows("AB", "ACUTE", "ICB-B", "2025-10-16", 4) + rows("CA", "COMM", "ICB-A", "2025-10-17", 5)
NOVEMBER = rows("NA", "ACUTE", "ICB-A", "2025-11-10", 3)


def workspace(root: Path) -> Path:
    (root / "contracts").mkdir(parents=True)
    (root / "prices").mkdir()
    (root / "data" / "activity").mkdir(parents=True)
    (root / "carecontracts.toml").write_text('name = "cycle"\n', encoding="utf-8")
    (root / "contracts" / "acute.yaml").write_text(ACUTE, encoding="utf-8")
    (root / "contracts" / "community.yaml").write_text(COMMUNITY, encoding="utf-8")
    (root / "prices" / "tariff.csv").write_text("currency,unit_price,valid_from,valid_to\nHRG1,100,2025-04-01,2026-03-31\n", encoding="utf-8")
    write(root / "data" / "activity" / "activity.csv", OCTOBER + NOVEMBER)
    return root


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def run(*args: object, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result


def started(tmp_path: Path) -> Path:
    """Loaded and priced."""
    root = workspace(tmp_path / "ws")
    run("load", "-w", root)
    run("pay", "year", "-w", root)
    return root


def lines(root: Path, month: str, repriced: bool = False) -> list[dict]:
    out = root / f"lines-{month}-{repriced}.csv"
    run("export", out, "-w", root, "--period", month, *(["--repriced"] if repriced else []))
    with out.open(encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def amounts(found: list[dict], **match: str) -> list[Decimal]:
    return [Decimal(r["amount"]) for r in found if all(r[k] == v for k, v in match.items())]


def adjustments(root: Path, month: str) -> list[dict]:
    return [r for r in lines(root, month) if r["adjusts"]]


def activity(root: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_variation_after_close_is_paid_as_adjustments_and_the_closed_month_stays_as_issued(tmp_path: Path) -> None:
    root = started(tmp_path)
    assert amounts(lines(root, "2025-10"), contract="ACUTE-2025", payer="ICB-A") == [Decimal("1000.00")]
    run("close", "2025-10", "-w", root)
    issued = root / "october-issued.csv"
    run("export", issued, "-w", root, "--period", "2025-10")

    (root / "contracts" / "acute.yaml").write_text(VARIED, encoding="utf-8")
    run("pay", "2025-11", "-w", root)
    again = root / "october-again.csv"
    run("export", again, "-w", root, "--period", "2025-10")
    assert again.read_bytes() == issued.read_bytes()

    made = adjustments(root, "2025-11")
    # October re-priced at MFF 1.05: 10 × £105 = £1,050 (ICB-A) and 4 × £105 = £420 (ICB-B).
    assert {(r["payer"], r["component"], r["adjusts"], r["amount"]) for r in made} == {
        ("ICB-A", "cases", "2025-10-01", "50.00"), ("ICB-B", "cases", "2025-10-01", "20.00")}
    assert sum(Decimal(r["amount"]) for r in made) == Decimal("1470.00") - Decimal("1400.00")
    repriced = sum(amounts(lines(root, "2025-10", repriced=True), contract="ACUTE-2025"))
    assert sum(Decimal(r["amount"]) for r in made) == repriced - Decimal("1400.00")
    # The mff term's lines in the varied file are 12 to 14.
    assert all("Adjusts 2025-10" in r["basis"] and "contracts/acute.yaml:12-14" in r["basis"] for r in made)
    # November's own activity is priced under the new terms: 3 × £105.
    assert amounts(lines(root, "2025-11"), contract="ACUTE-2025", component="cases", adjusts="") == [Decimal("315.00")]
    assert not [r for r in lines(root, "2025-11") if r["contract"] == "COMM-2025" and r["adjusts"]]
    with sqlite3.connect(root / ".carecontracts" / "records.sqlite") as con:
        (variation,) = [json.loads(d) for (d,) in con.execute("SELECT details FROM events WHERE kind = 'variation'")]
    assert (variation["file"], variation["contracts"], variation["lines"], variation["since_close"]) == ("contracts/acute.yaml", ["ACUTE-2025"], "12-14", "2025-10")
    run("pay", "2025-11", "-w", root)  # the same variation is recorded once
    with sqlite3.connect(root / ".carecontracts" / "records.sqlite") as con:
        assert con.execute("SELECT count(*) FROM events WHERE kind = 'variation'").fetchone() == (1,)


def test_an_adjustment_issued_in_a_closed_month_counts_towards_the_next(tmp_path: Path) -> None:
    root = started(tmp_path)
    run("close", "2025-10", "-w", root)
    (root / "contracts" / "acute.yaml").write_text(VARIED, encoding="utf-8")
    run("pay", "year", "-w", root)
    run("close", "2025-11", "-w", root)
    (root / "contracts" / "acute.yaml").write_text(VARIED.replace("value: 1.05", "value: 1.10"), encoding="utf-8")
    run("pay", "year", "-w", root)
    made = {(r["payer"], r["adjusts"]): r["amount"] for r in adjustments(root, "2025-12")}
    # October: due 10 × £110 = £1,100, paid £1,000 issued + £50 adjusted in November → £50.
    # November: due 3 × £110 = £330, issued 3 × £105 = £315 → £15.
    assert made == {("ICB-A", "2025-10-01"): "50.00", ("ICB-B", "2025-10-01"): "20.00", ("ICB-A", "2025-11-01"): "15.00"}


def test_a_month_file_replaces_only_its_providers_month_and_keeps_the_old_rows(tmp_path: Path) -> None:
    root = started(tmp_path)
    corrected = write(tmp_path / "acute-2025-10.csv", rows("AA", "ACUTE", "ICB-A", "2025-10-15", 9))
    result = run("load", "-w", root, "--month", "2025-10", corrected)
    assert "14 rows replaced" in result.output
    held = activity(root, "SELECT provider, commissioner, month(end_date), count(*) FROM activity GROUP BY ALL ORDER BY ALL")
    assert held == [("ACUTE", "ICB-A", 10, 9), ("ACUTE", "ICB-A", 11, 3), ("COMM", "ICB-A", 10, 5)]
    assert activity(root, "SELECT count(*) FROM activity_replaced WHERE provider = 'ACUTE'") == [(14,)]
    listed = run("submissions", "-w", root, "--provider", "ACUTE", "--month", "2025-10").output
    assert "│ ACUTE    │ 2025-10 │       1 │   14 │" in listed and "│ ACUTE    │ 2025-10 │       2 │    9 │" in listed


def test_a_file_without_rows_is_refused_unless_it_is_a_providers_nil_return(tmp_path: Path) -> None:
    root = started(tmp_path)
    before = activity(root, "SELECT * FROM activity ORDER BY activity_id")
    empty = write(tmp_path / "acute-2025-10.csv", [])
    refused = run("load", "-w", root, "--month", "2025-10", empty, code=2)
    assert "has no activity rows for 2025-10" in refused.output and "--provider" in refused.output
    assert activity(root, "SELECT * FROM activity ORDER BY activity_id") == before
    run("load", "-w", root, "--month", "2025-10", "--provider", "ACUTE", empty)
    held = activity(root, "SELECT provider, month(end_date), count(*) FROM activity GROUP BY ALL ORDER BY ALL")
    assert held == [("ACUTE", 11, 3), ("COMM", 10, 5)]
    assert "nil return" in run("submissions", "-w", root, "--month", "2025-10").output


def test_an_activity_id_already_loaded_or_twice_in_a_file_is_refused_naming_both_places(tmp_path: Path) -> None:
    root = started(tmp_path)
    before = activity(root, "SELECT * FROM activity ORDER BY activity_id")
    # NA1 follows the 19 October rows in activity.csv: row 20, line 21. Loading it again in October would pay it twice.
    clash = write(tmp_path / "acute-2025-10.csv", rows("AA", "ACUTE", "ICB-A", "2025-10-15", 2) + ["NA1,X,ACUTE,ICB-A,general,HRG1,EL,2025-10-02,2025-10-02,1"])
    run("load", "-w", root, "--month", "2025-10", clash, code=2)
    with pytest.raises(ProblemsError) as error:
        submit_month(Workspace.open(root), dt.date(2025, 10, 1), [clash])
    (problem,) = error.value.problems
    assert (problem.source, problem.line, problem.field, problem.value) == (str(clash), 4, "activity_id", "NA1")
    assert "already loaded from data/activity/activity.csv:21 (ACUTE, 2025-11)" in problem.message
    twice = write(tmp_path / "acute-2025-10.csv", rows("AA", "ACUTE", "ICB-A", "2025-10-15", 2) + rows("AA", "ACUTE", "ICB-A", "2025-10-15", 1))
    run("load", "-w", root, "--month", "2025-10", twice, code=2)
    with pytest.raises(ProblemsError) as error:
        submit_month(Workspace.open(root), dt.date(2025, 10, 1), [twice])
    (problem,) = error.value.problems
    assert (problem.line, problem.value) == (4, "AA1") and f"is also at {twice}:2" in problem.message
    assert activity(root, "SELECT * FROM activity ORDER BY activity_id") == before


def test_an_upheld_challenge_after_close_is_an_adjustment_in_the_next_open_month(tmp_path: Path) -> None:
    root = started(tmp_path)
    run("close", "2025-10", "-w", root)
    run("challenge", "raise", "ACUTE-2025", "2025-10", "--reason", "duplicate", "--activity", "AA1", "--activity", "AA2", "-w", root)
    run("challenge", "answer", "CH-0001", "--response", "agreed, coded twice", "-w", root)
    run("challenge", "uphold", "CH-0001", "-w", root)
    run("challenge", "uphold", "CH-0001", "-w", root, code=2)  # decided already
    run("pay", "year", "-w", root)
    made = adjustments(root, "2025-11")
    assert [(r["payer"], r["quantity"], r["amount"]) for r in made] == [("ICB-A", "-2.00000000", "-200.00")]
    assert "challenge CH-0001 upheld (duplicate)" in made[0]["basis"]
    listed = run("challenge", "list", "-w", root, "--contract", "ACUTE-2025").output
    assert "CH-0001" in listed and "upheld" in listed and "2025-11" in listed


def test_a_line_challenge_in_an_open_month_reduces_that_month(tmp_path: Path) -> None:
    root = started(tmp_path)
    run("challenge", "raise", "COMM-2025", "2025-10", "--reason", "not-contracted", "--component", "visits", "-w", root)
    run("challenge", "uphold", "CH-0001", "--amount", "120.50", "-w", root)
    run("pay", "year", "-w", root)
    # COMM's 5 visits at £100 less the £120.50 agreed.
    assert sorted(amounts(lines(root, "2025-10"), contract="COMM-2025")) == [Decimal("-120.50"), Decimal("500.00")]
    run("challenge", "raise", "ACUTE-2025", "2025-10", "--reason", "coding", "--component", "cases", "-w", root, code=2)  # two payers


def test_a_resubmission_after_close_is_named_in_the_adjustment(tmp_path: Path) -> None:
    root = started(tmp_path)
    run("close", "2025-10", "-w", root)
    resent = write(tmp_path / "acute-2025-10.csv", rows("AA", "ACUTE", "ICB-A", "2025-10-15", 12) + rows("AB", "ACUTE", "ICB-B", "2025-10-16", 4))
    run("load", "-w", root, "--month", "2025-10", resent)
    run("pay", "2025-11", "-w", root)
    made = adjustments(root, "2025-11")
    assert [(r["payer"], r["amount"]) for r in made] == [("ICB-A", "200.00")]
    assert "resubmission 2 by ACUTE (16 rows" in made[0]["basis"]


def test_close_refuses_stale_statements_and_closed_months_and_reopen_needs_a_reason(tmp_path: Path) -> None:
    root = started(tmp_path)
    (root / "contracts" / "acute.yaml").write_text(VARIED, encoding="utf-8")
    stale = run("close", "2025-10", "-w", root, code=2)
    assert "out of date" in stale.output and "contracts/acute.yaml" in stale.output
    run("pay", "year", "-w", root)
    run("close", "2025-10", "-w", root)
    assert "closed already" in run("close", "2025-09", "-w", root, code=2).output
    run("reopen", "2025-10", "--reason", " ", "-w", root, code=2)
    run("reopen", "2025-10", "--reason", "October's data was late", "-w", root)
    (root / "contracts" / "acute.yaml").write_text(ACUTE, encoding="utf-8")
    run("pay", "year", "-w", root)
    october = lines(root, "2025-10")
    assert amounts(october, contract="ACUTE-2025", payer="ICB-A") == [Decimal("1000.00")]  # re-priced in place
    assert not adjustments(root, "2025-10") and not adjustments(root, "2025-11")
    shown = run("history", "-w", root, "--kind", "reopen").output
    assert "October's data was late" in shown


def test_an_invoice_is_shown_beside_the_statement(tmp_path: Path) -> None:
    root = started(tmp_path)
    run("invoice", "record", "ACUTE-2025", "2025-10", "1400.01", "--reference", "INV-77", "-w", root)
    listed = run("invoice", "list", "-w", root, code=1).output  # £1,000 + £400 on the statement
    assert "£1,400.01" in listed and "£1,400.00" in listed and "£0.01" in listed and "INV-77" in listed
    run("invoice", "record", "ACUTE-2025", "2025-10", "1400.001", "-w", root, code=2)
    run("invoice", "record", "NO-SUCH", "2025-10", "1", "-w", root, code=2)


def test_the_event_log_is_a_chain_that_shows_tampering(tmp_path: Path) -> None:
    root = started(tmp_path)
    run("close", "2025-10", "-w", root)
    assert "chain of" in run("history", "-w", root, "--verify").output
    kinds = [k for (k,) in sqlite3.connect(root / ".carecontracts" / "records.sqlite").execute("SELECT kind FROM events ORDER BY sequence")]
    # The load recorded ACUTE's October and November and COMM's October; the close, April to October.
    assert kinds == ["submission"] * 3 + ["close"] * 7
    with sqlite3.connect(root / ".carecontracts" / "records.sqlite") as con:
        details = json.loads(con.execute("SELECT details FROM events WHERE sequence = 2").fetchone()[0])
        details["rows"] = 1
        con.execute("UPDATE events SET details = ? WHERE sequence = 2", [json.dumps(details, sort_keys=True, separators=(",", ":"))])
    broken = run("history", "-w", root, "--verify", code=2)
    assert "event 2 was changed after it was written" in broken.output


def test_the_migrations_build_exactly_the_records_tables(tmp_path: Path) -> None:
    records = Records.at(tmp_path)
    with records.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert set(sa.inspect(connection).get_table_names()) >= {t for t in Base.metadata.tables}


def test_check_and_load_refuse_an_activity_id_in_two_files(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    write(root / "data" / "activity" / "more.csv", ["NA2,P9,ACUTE,ICB-A,general,HRG1,EL,2025-12-01,2025-12-01,1"])
    for command in ("check", "load"):
        shown = run(command, "-w", root, code=2).output
        assert "NA2" in shown and "data/activity/more.csv:2" in shown
    assert not (root / ".carecontracts" / "warehouse.duckdb").exists() or not activity(root, "SELECT * FROM information_schema.tables WHERE table_name = 'activity'")
