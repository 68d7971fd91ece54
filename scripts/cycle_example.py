"""The example workspace's monthly cycle, run as a user would with the command line:
April to June closed, ISP-HEALTHCARE's May sent again, three of ACUTE-RFH's June spells
challenged as duplicates and upheld, and an ISP-2025 June invoice £1,180.00 above its
statement. Differences to the closed months are paid as adjustments in July.

    python scripts/cycle_example.py WORKSPACE [--xlsx FILE]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

CLI = str(Path(sys.executable).with_name("carecontracts"))
INVOICED_ABOVE = Decimal("1180.00")


def run(workspace: Path, *args: str) -> str:
    """One command on the workspace; its output is shown, and a failure stops the script."""
    print(f"$ carecontracts {' '.join(args)}", flush=True)
    done = subprocess.run([CLI, *args, "--workspace", str(workspace)], text=True, capture_output=True)
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr, end="")
        raise SystemExit(done.returncode)
    return done.stdout


def statement_total(workspace: Path, contract: str, month: str, payee: str) -> Decimal:
    """What the statement pays `payee` on `contract` in `month`, from an export."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lines.csv"
        run(workspace, "export", str(path), "--period", month)
        with path.open(encoding="utf-8") as stream:
            return sum((Decimal(r["amount"]) for r in csv.DictReader(stream) if r["contract"] == contract and r["payee"] == payee), Decimal(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--xlsx", type=Path, help="Write the year's statements here after the cycle.")
    options = parser.parse_args()
    ws = options.workspace
    run(ws, "close", "2025-06")
    run(ws, "load", "--month", "2025-05", str(ws / "data" / "cycle" / "isp-healthcare-2025-05-resubmission.csv"))
    run(ws, "challenge", "raise", "ACUTE-2025", "2025-06", "--reason", "duplicate",
        "--activity-file", str(ws / "data" / "cycle" / "acute-rfh-2025-06-challenged.csv"), "--note", "the same spells were sent twice under new ids")
    run(ws, "challenge", "answer", "CH-0001", "--response", "agreed: a coding system fault duplicated them")
    run(ws, "challenge", "uphold", "CH-0001")
    run(ws, "pay", "year", *(["--xlsx", str(options.xlsx)] if options.xlsx else []))
    invoiced = statement_total(ws, "ISP-2025", "2025-06", "ISP-HEALTHCARE") + INVOICED_ABOVE
    run(ws, "invoice", "record", "ISP-2025", "2025-06", str(invoiced), "--reference", "ISP-INV-0625")
    run(ws, "challenge", "list")
    run(ws, "submissions", "--month", "2025-05", "--provider", "ISP-HEALTHCARE")


if __name__ == "__main__":
    main()
