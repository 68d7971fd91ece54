"""A month of the cycle through the API, as the parties would run it: the provider sends its
November, a bad file is refused with its rows named and nothing changed, the ICB challenges a row,
the trust answers, the ICB upholds, prices the year in the background and closes the quarter.
Each step is checked against the warehouse and the records store read directly."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from carecontracts.service.app import create_app
from tests.conftest import RECORDS_BACKENDS, records_url_for
from tests.service.serving import cli

NOVEMBER = (dt.date(2025, 11, 1), dt.date(2025, 12, 1))


@pytest.fixture(scope="module", params=RECORDS_BACKENDS)
def cycle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The example, paid, with a trust's and an ICB's users, its records on SQLite or on PostgreSQL."""
    ws = tmp_path_factory.mktemp("cycle") / "example"
    cli("init", ws, "--rows", 5000)
    with records_url_for(request.param, ws.parent) as url:
        settings = ws / "carecontracts.toml"
        settings.write_text(f'records = "{url}"\n' + settings.read_text(encoding="utf-8"), encoding="utf-8")
        yield build(ws)


def build(ws: Path):
    cli("load", "-w", ws)
    cli("pay", "year", "-w", ws)
    tokens = {name: cli("users", "add", name, "-w", ws, "--party", party, "--role", role).strip().splitlines()[-1]
              for name, party, role in (("rfh", "ACUTE-RFH", "provider"), ("ncl", "ICB-NCL", "commissioner"))}
    return ws, TestClient(create_app(ws)), {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}


def events(ws: Path) -> list[tuple[str, str]]:
    """(kind, actor) of every event, oldest first, read from whichever store the workspace uses."""
    import sqlalchemy as sa

    from carecontracts.cycle.submissions import open_records
    from carecontracts.workspace import Workspace

    with open_records(Workspace.open(ws)).session() as session:
        return [tuple(r) for r in session.execute(sa.text("SELECT kind, actor FROM events ORDER BY sequence"))]


def warehouse(ws: Path, sql: str, parameters: list | None = None) -> list[tuple]:
    with duckdb.connect(str(ws / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, parameters or []).fetchall()


def november_rows(ws: Path) -> tuple[list[str], list[list[str]]]:
    """ACUTE-RFH's November activity as loaded, as CSV rows."""
    with duckdb.connect(str(ws / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("SELECT * EXCLUDE (source_file, source_row) FROM activity WHERE provider = 'ACUTE-RFH' "
                             "AND end_date >= ? AND end_date < ? ORDER BY activity_id", list(NOVEMBER))
        header = [d[0] for d in cursor.description]
        return header, [["" if v is None else str(v) for v in row] for row in cursor.fetchall()]


def as_csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def test_a_month_of_the_cycle_through_the_api(cycle) -> None:
    ws, client, who = cycle
    header, rows = november_rows(ws)
    assert len(rows) > 10
    kept = rows[:-1]  # the trust's resubmission drops its last row

    # A file naming another provider is refused, row and field named, and nothing changes.
    bad = [list(r) for r in kept]
    bad[2][header.index("provider")] = "MH-TRUST"
    refused = client.post("/api/submissions?month=2025-11", headers=who["rfh"], files={"file": ("november.csv", as_csv(header, bad), "text/csv")})
    assert refused.status_code == 422
    (problem,) = refused.json()["problems"]
    assert (problem["where"], problem["problem"], problem["expected"]) == (
        "november.csv:4 provider", "a row of MH-TRUST, which --provider does not name", "rows of ACUTE-RFH only")
    count = "SELECT count(*) FROM activity WHERE provider = 'ACUTE-RFH' AND end_date >= ? AND end_date < ?"
    assert warehouse(ws, count, list(NOVEMBER)) == [(len(rows),)]
    assert not list((ws / ".carecontracts" / "submissions").rglob("*.csv"))

    sent = client.post("/api/submissions?month=2025-11", headers=who["rfh"], files={"file": ("november.csv", as_csv(header, kept), "text/csv")})
    assert sent.status_code == 201, sent.text
    (submission,) = sent.json()["submissions"]
    quantity = sum(Decimal(r[header.index("quantity")]) for r in kept)
    assert (submission["provider"], submission["month"], submission["version"], submission["rows"], submission["submitted_by"]) == (
        "ACUTE-RFH", "2025-11", 2, len(kept), "rfh")
    assert Decimal(submission["quantity"]) == quantity
    assert warehouse(ws, count, list(NOVEMBER)) == [(len(kept),)]
    assert len(list((ws / ".carecontracts" / "submissions" / "ACUTE-RFH" / "2025-11").glob("*november.csv"))) == 1

    # The ICB challenges one of the rows as a duplicate; the trust agrees; the ICB upholds.
    challenged = kept[0][header.index("activity_id")]
    raised = client.post("/api/challenges", headers=who["ncl"], json={"contract": "ACUTE-2025", "month": "2025-11", "reason": "duplicate",
                                                                       "activity": [challenged], "note": "seen twice"})
    assert raised.status_code == 201, raised.text
    reference = raised.json()["reference"]
    assert client.post(f"/api/challenges/{reference}/answer", headers=who["rfh"], json={"response": "agreed"}).json()["state"] == "answered"
    upheld = client.post(f"/api/challenges/{reference}/decide", headers=who["ncl"], json={"decision": "uphold"}).json()
    assert (upheld["state"], upheld["settled_month"]) == ("upheld", "2025-04")  # nothing is closed yet

    # A contract performance notice on ACUTE-2025 through to 1.5% withheld from June.
    opened = client.post("/api/notices", headers=who["ncl"], json={"kind": "cpn", "contract": "ACUTE-2025", "about": "Diagnostics waits",
                                                                    "on": "2025-05-01"})
    assert opened.status_code == 201, opened.text
    notice = opened.json()["reference"]
    for user, step in (("rfh", {"step": "meet", "on": "2025-05-12"}),
                       ("ncl", {"step": "agree-plan", "on": "2025-05-13", "milestone": "Extra MRI sessions", "due": "2025-05-30"}),
                       ("ncl", {"step": "miss", "on": "2025-06-02"}),
                       ("ncl", {"step": "withhold", "on": "2025-06-03", "percent": "1.5", "month": "2025-06"})):
        taken = client.post(f"/api/notices/{notice}/steps", headers=who[user], json=step)
        assert taken.status_code == 200, taken.text
    assert (taken.json()["state"], taken.json()["withheld_from"], taken.json()["percent"]) == ("withholding", "2025-06", "1.5")

    # The ICB prices the year in the background, then closes April to June.
    job = client.post("/api/pay", headers=who["ncl"])
    assert job.status_code == 202 and job.json()["state"] == "running"
    deadline = time.monotonic() + 300
    while (state := client.get(f"/api/jobs/{job.json()['id']}", headers=who["ncl"]).json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert state["state"] == "done", state
    assert client.get(f"/api/jobs/{job.json()['id']}", headers=who["rfh"]).status_code == 404  # not the trust's job
    closed = client.post("/api/months/2025-06/close", headers=who["ncl"])
    assert closed.status_code == 200, closed.text
    totals = dict(warehouse(ws, "SELECT strftime(month, '%Y-%m'), sum(amount) FROM statements WHERE month < DATE '2025-07-01' GROUP BY 1"))
    assert [(c["month"], c["version"], Decimal(c["total"])) for c in closed.json()["closed"]] == [
        (m, 1, totals[m]) for m in ("2025-04", "2025-05", "2025-06")]
    # June's statement, as issued, withholds 1.5% of what each commissioner pays under ACUTE-2025 that month.
    june = warehouse(ws, "SELECT payer, sum(amount) FILTER (WHERE component <> ?), sum(amount) FILTER (WHERE component = ?) FROM statements "
                         "WHERE contract = 'ACUTE-2025' AND month = DATE '2025-06-01' GROUP BY payer ORDER BY payer", [notice, notice])
    assert [(payer, held) for payer, _, held in june] == [
        (payer, -(value * Decimal("0.015")).quantize(Decimal("0.01"), ROUND_HALF_UP)) for payer, value, _ in june]
    assert len(june) == 2
    again = client.post("/api/months/2025-06/close", headers=who["ncl"])
    assert again.status_code == 422 and "is closed already" in again.json()["problems"][0]["problem"]

    # Every step is in the log, by the user who took it, and the chain holds.
    steps = [e for e in events(ws) if not e[0].startswith("user.")]
    assert ("submission", "rfh") in steps
    assert [s for s in steps if s[0].startswith("challenge.")] == [("challenge.raised", "ncl"), ("challenge.answered", "rfh"), ("challenge.upheld", "ncl")]
    assert [s for s in steps if s[0] == "close"] == [("close", "ncl")] * 3
    assert [s for s in steps if s[0].startswith("notice.")] == [("notice.issue", "ncl"), ("notice.meet", "rfh"), ("notice.agree-plan", "ncl"),
                                                                  ("notice.miss", "ncl"), ("notice.withhold", "ncl")]
    assert "the chain of" in cli("log", "verify", "-w", ws)
