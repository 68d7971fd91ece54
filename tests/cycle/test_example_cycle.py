"""The README's cycle scripts run on a small example workspace as a user would run them."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from carecontracts.cli import app

ROOT = Path(__file__).parents[2]
runner = CliRunner()


def cli(*args: object) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def script(name: str, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)], capture_output=True, text=True)


def export(ws: Path, month: str, *options: str) -> list[dict]:
    path = ws / f"{month}{''.join(options)}.csv"
    cli("export", path, "-w", ws, "--period", month, *options)
    with path.open(encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_the_example_cycle_and_the_variation_script(tmp_path: Path) -> None:
    ws = tmp_path / "example"
    cli("init", ws, "--rows", 8000)
    cli("load", "-w", ws)
    cli("pay", "year", "-w", ws)
    done = script("cycle_example.py", ws)
    assert done.returncode == 0, done.stdout + done.stderr

    records = sqlite3.connect(ws / ".carecontracts" / "records.sqlite")
    assert records.execute("SELECT strftime('%m', month) FROM closes ORDER BY month").fetchall() == [("04",), ("05",), ("06",)]
    assert records.execute("SELECT max(version) FROM submissions WHERE provider = 'ISP-HEALTHCARE' AND month = '2025-05-01'").fetchone() == (2,)
    assert records.execute("SELECT state, strftime('%m', settled_month) FROM challenges").fetchall() == [("upheld", "07")]
    july = [r for r in export(ws, "2025-07") if r["adjusts"]]
    june_issued = export(ws, "2025-06")
    june_repriced = export(ws, "2025-06", "--repriced")
    for contract, month in (("ACUTE-2025", "2025-06-01"), ("ISP-2025", "2025-05-01")):
        paid = sum(Decimal(r["amount"]) for r in july if r["contract"] == contract and r["adjusts"] == month)
        assert paid != 0
        if month == "2025-06-01":
            due = sum(Decimal(r["amount"]) for r in june_repriced if r["contract"] == contract)
            assert paid == due - sum(Decimal(r["amount"]) for r in june_issued if r["contract"] == contract)
    assert all("challenge CH-0001 upheld" in r["basis"] for r in july if r["contract"] == "ACUTE-2025")
    assert all("resubmission 2 by ISP-HEALTHCARE" in r["basis"] for r in july if r["contract"] == "ISP-2025")
    (invoiced,) = records.execute("SELECT amount FROM invoices WHERE contract = 'ISP-2025'").fetchone()
    statement = sum(Decimal(r["amount"]) for r in june_issued if r["contract"] == "ISP-2025" and r["payee"] == "ISP-HEALTHCARE")
    assert Decimal(invoiced) - statement == Decimal("1180.00")

    varied = script("variation_example.py", ws)
    assert varied.returncode == 0, varied.stdout + varied.stderr
    assert "October's export is byte-for-byte the one issued." in varied.stdout
    assert "Every contract's adjustments equal re-pricing October less what was issued." in varied.stdout
    assert "mff: 1.0461" in (ws / "contracts" / "acute-rfh.yaml").read_text()  # the workspace itself is not changed
