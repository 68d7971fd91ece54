"""A contract variation after a month has closed, shown on a copy of the example workspace:
pay and close October, vary ACUTE-2025's market forces factor from October, pay November.
Checks that October's export is byte-for-byte the one issued, and that November's
adjustment lines add up, per contract, to what re-pricing October under the new terms
gives less what was issued. Exits 1 if either does not hold.

    python scripts/variation_example.py WORKSPACE     # the workspace is copied, not changed
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

CLI = str(Path(sys.executable).with_name("carecontracts"))
CONTRACT_FILE = Path("contracts") / "acute-rfh.yaml"
OLD_MFF, NEW_MFF = "1.0461", "1.0475"


def run(workspace: Path, *args: str) -> None:
    print(f"$ carecontracts {' '.join(args)}", flush=True)
    done = subprocess.run([CLI, *args, "--workspace", str(workspace)], text=True, capture_output=True)
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
        raise SystemExit(done.returncode)


def by_contract(path: Path, adjustments: bool | None = None) -> dict[str, Decimal]:
    """Amounts per contract in an export: all lines, only adjustments, or none of them."""
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    with path.open(encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            if adjustments is None or bool(row["adjusts"]) == adjustments:
                totals[row["contract"]] += Decimal(row["amount"])
    return totals


def vary(contract: Path) -> None:
    """ACUTE-2025's MFF becomes a dated term: 1.0461 to September, 1.0475 from October."""
    text = contract.read_text(encoding="utf-8")
    varied, count = re.subn(rf"(\n(\s+)mff: ){re.escape(OLD_MFF)}\n",
                            rf"\1\n\2  - {{from: 2025-04-01, to: 2025-09-30, value: {OLD_MFF}}}\n\2  - {{from: 2025-10-01, value: {NEW_MFF}}}\n", text)
    if count != 1:
        raise SystemExit(f"{contract}: expected one `mff: {OLD_MFF}` term to vary")
    contract.write_text(varied, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path, help="A loaded example workspace (from `bash scripts/dev.sh example`).")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ws = Path(folder) / "workspace"
        shutil.copytree(options.workspace, ws, ignore=shutil.ignore_patterns("out", "parquet", "*.xlsx"))
        run(ws, "pay", "year")
        run(ws, "close", "2025-10")
        issued, again, november, repriced = (Path(folder) / name for name in ("issued.csv", "again.csv", "november.csv", "repriced.csv"))
        run(ws, "export", str(issued), "--period", "2025-10")
        vary(ws / CONTRACT_FILE)
        print(f"varied {CONTRACT_FILE}: mff {OLD_MFF} → {NEW_MFF} from 2025-10-01")
        run(ws, "pay", "2025-11")
        run(ws, "export", str(again), "--period", "2025-10")
        run(ws, "export", str(november), "--period", "2025-11")
        run(ws, "export", str(repriced), "--period", "2025-10", "--repriced")
        identical = issued.read_bytes() == again.read_bytes()
        print(f"October's export is {'byte-for-byte the one issued' if identical else 'NOT the one issued'}.")
        was, now, paid = by_contract(issued), by_contract(repriced), by_contract(november, adjustments=True)
        ok = identical
        print(f"{'contract':<16}{'October issued':>18}{'re-priced':>18}{'difference':>14}{'adjusted in Nov':>18}")
        for contract in sorted(set(was) | set(now) | set(paid)):
            difference = now[contract] - was[contract]
            ok &= difference == paid[contract]
            print(f"{contract:<16}{was[contract]:>18,}{now[contract]:>18,}{difference:>14,}{paid[contract]:>18,}"
                  f"{'' if difference == paid[contract] else '  ← differs'}")
        print("Every contract's adjustments equal re-pricing October less what was issued." if ok else "The check FAILED.")
        raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
