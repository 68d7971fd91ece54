"""The manifest of logical checks and reported-against-recomputed, on rows worked by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from carecontracts.audit import recompute
from carecontracts.audit.checks import CHECKS, check_findings, run_checks
from carecontracts.audit.findings import Severity
from carecontracts.problems import ProblemsError

ROWS = """
SELECT * FROM (VALUES
  ('A1', 'P1', 'EL',   DATE '2025-01-10', DATE '2025-04-01', DATE '2025-04-03', 50),
  ('A2', 'P1', 'EL',   DATE '2025-05-10', DATE '2025-04-01', DATE '2025-04-01', 60),  -- treatment before referral
  ('A3', 'P1', 'DC',   DATE '2025-02-01', DATE '2025-04-09', DATE '2025-04-08', 70),  -- ends before it starts
  ('A3', 'P2', 'OPFA', NULL,              DATE '2025-04-09', DATE '2025-04-09', 140), -- duplicate id, no referral, age 140
  ('A5', 'P2', 'OPFU', NULL,              DATE '2025-04-20', DATE '2025-04-20', 30),
  ('A6', 'P2', 'EL',   DATE '2021-01-01', DATE '2025-04-20', DATE '2025-04-21', 30)   -- over three years
) AS t(record_id, provider, pod, referral_date, start_date, end_date, age)
"""


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE records AS " + ROWS)
    return connection


def test_every_check_counts_its_bad_rows_by_provider(con: duckdb.DuckDBPyConnection) -> None:
    columns = {"record_id", "provider", "pod", "referral_date", "start_date", "end_date", "age"}
    results = run_checks(con, "records", columns, "test")
    bad = {(r.check.id, r.subject): (r.bad, r.examples) for r in results if r.bad}
    assert bad == {
        ("treatment-before-referral", "P1"): (1, ["A2"]),
        ("end-before-start", "P1"): (1, ["A3"]),
        ("duplicate-identifier", "P1"): (1, ["A3"]),
        ("duplicate-identifier", "P2"): (1, ["A3"]),
        ("age-out-of-range", "P2"): (1, ["A3"]),
        ("elective-without-referral", "P2"): (1, ["A3"]),
        ("wait-over-three-years", "P2"): (1, ["A6"]),
    }
    assert {r.check.id for r in results} == {c.id for c in CHECKS} - {"negative-wait", "value-out-of-range"}  # no value column
    found = check_findings(results)
    assert {f.severity for f in found if f.check == "end-before-start"} == {Severity.ERROR}
    assert any(f.sentence.startswith("1 row with treatment starts before the referral (e.g. A2)") for f in found)


def test_value_checks_use_the_range_given(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE waits AS SELECT * FROM (VALUES (1, -2.0), (2, 5.0), (3, 120.0)) AS t(_row, value)")
    results = run_checks(con, "waits", {"_row", "value"}, "waits.csv", {"low": 0, "high": 104})
    assert {r.check.id: (r.bad, r.examples) for r in results} == {"negative-wait": (1, ["row 1"]), "value-out-of-range": (2, ["row 1", "row 3"])}


def test_reported_against_recomputed_flags_the_gap(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    con.execute("DELETE FROM records")
    con.execute("""INSERT INTO records SELECT 'R' || i, 'P1', 'EL', DATE '2025-04-15' - CAST(CASE WHEN i <= 8 THEN 100 ELSE 140 END AS INTEGER),
                   DATE '2025-04-15', DATE '2025-04-15', 40 FROM range(1, 11) t(i)""")  # 8 of 10 within 126 days
    con.execute("""INSERT INTO records SELECT 'S' || i, 'P1', 'EL', DATE '2025-05-15' - 126, DATE '2025-05-15', DATE '2025-05-15', 40 FROM range(4) t(i)""")  # 126 days is within
    shares = recompute.recompute_shares(con, "records", recompute.MEASURES["rtt_18_weeks"])
    assert [(s.month, s.within, s.total, s.percent) for s in shares] == [(dt.date(2025, 4, 1), 8, 10, 80.0), (dt.date(2025, 5, 1), 4, 4, 100.0)]
    path = tmp_path / "reported.csv"
    path.write_text("provider,month,measure,percent\nP1,2025-04,rtt_18_weeks,92.0\nP1,2025-05,rtt_18_weeks,100\nP1,2025-06,rtt_18_weeks,95\n")
    comparisons = recompute.compare(recompute.read_reported(path, con), {"rtt_18_weeks": shares})
    assert [(c.gap, c.within_tolerance) for c in comparisons[:2]] == [(pytest.approx(12.0), False), (0.0, True)]
    assert comparisons[2].recomputed is None
    found = recompute.findings(comparisons)
    assert [f.severity for f in found] == [Severity.WARNING, Severity.WARNING]
    assert "largest gap is +12.0 points in Apr 2025 (92.0% reported, 80.0% in the records)" in found[0].sentence


def test_bad_reported_rows_are_all_located(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "reported.csv"
    path.write_text("provider,month,measure,percent\nP1,April,rtt_18_weeks,92\nP1,2025-05,rtt_52_weeks,90\nP1,2025-06,rtt_18_weeks,120\n")
    with pytest.raises(ProblemsError) as raised:
        recompute.read_reported(path, con, "data/reported/waits.csv")
    assert [(p.row, p.field) for p in raised.value.problems] == [(1, "month"), (2, "measure"), (3, "percent")]
