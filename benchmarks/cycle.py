"""Time the monthly cycle on a contract book: what closing months, and paying a year of which
some months are closed (issued lines read back, adjustments worked, reasons found), add to a
payment run of the same book with nothing closed, measured in the same run. The check that
each contract's adjustments equal re-pricing less what was issued runs on the book too.

    .venv/bin/python benchmarks/cycle.py                                  # 1,000 contracts, 1M rows
    .venv/bin/python benchmarks/cycle.py --contracts 100 --rows 100000 --vary 20
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CLI = str(Path(sys.executable).with_name("carecontracts"))


def timed(*args: str) -> float:
    """Seconds one command takes; a failure stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run([CLI, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"carecontracts {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start


def by_contract(path: Path, adjustments: bool | None = None) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    with path.open(encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            if adjustments is None or bool(row["adjusts"]) == adjustments:
                totals[row["contract"]] += Decimal(row["amount"])
    return totals


def vary(folder: Path, count: int) -> int:
    """Raise the first `annual:` of `count` contract files by £1,200 from July, back-dated into
    the closed months (a dated term)."""
    varied = 0
    for path in sorted((folder / "contracts").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        match = re.search(r"\n(\s+)annual: ([0-9_.]+)\n", text)
        if match is None:
            continue
        indent, value = match.group(1), Decimal(match.group(2).replace("_", ""))
        dated = (f"\n{indent}annual:\n{indent}  - {{from: 2025-04-01, to: 2025-06-30, value: {value}}}\n"
                 f"{indent}  - {{from: 2025-07-01, value: {value + 1200}}}\n")
        path.write_text(text[: match.start()] + dated + text[match.end():], encoding="utf-8")
        varied += 1
        if varied == count:
            break
    return varied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--close", default="2025-09", help="Close April to this month.")
    parser.add_argument("--vary", type=int, default=100, help="Contracts whose block is varied from July after the close.")
    options = parser.parse_args()
    folder = OUT / f"cycle-{options.contracts}-{options.rows}"
    shutil.rmtree(folder, ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    subprocess.run([CLI, "init", str(folder), "--contracts", str(options.contracts), "--rows", str(options.rows)], check=True, capture_output=True)
    ws = ["-w", str(folder)]
    load = timed("load", *ws)
    open_pay = timed("pay", "year", *ws, "--lines", "parquet")
    close = timed("close", options.close, *ws)
    closed_pay = timed("pay", "year", *ws, "--lines", "parquet")
    issued = folder / "september-issued.csv"
    timed("export", str(issued), "--period", "2025-09", *ws)
    varied = vary(folder, options.vary)
    varied_pay = timed("pay", "year", *ws, "--lines", "parquet")
    again, october, repriced = folder / "again.csv", folder / "october.csv", folder / "repriced.csv"
    timed("export", str(again), "--period", "2025-09", *ws)
    timed("export", str(october), "--period", "2025-10", *ws)
    timed("export", str(repriced), "--period", "2025-04..2025-09", "--repriced", *ws)
    whole = folder / "issued-all.csv"
    timed("export", str(whole), "--period", "2025-04..2025-09", *ws)
    was, now, paid = by_contract(whole), by_contract(repriced), by_contract(october, adjustments=True)
    wrong = [c for c in set(was) | set(now) | set(paid) if now[c] - was[c] != paid[c]]
    print(f"{options.contracts:,} contracts, {options.rows:,} rows; April to {options.close} closed; {varied} blocks varied from July")
    print(f"load {load:.1f} s; pay year, nothing closed {open_pay:.1f} s; close {close:.1f} s")
    print(f"pay year, months closed {closed_pay:.1f} s ({closed_pay / open_pay:.2f}×); after the variation {varied_pay:.1f} s ({varied_pay / open_pay:.2f}×)")
    print(f"September's export is {'identical to' if again.read_bytes() == issued.read_bytes() else 'NOT'} the one issued; "
          f"{sum(1 for c in paid if paid[c])} contracts have adjustments in October; "
          f"{'every contract' if not wrong else f'{len(wrong)} contracts NOT'} adjusted by re-pricing less what was issued")


if __name__ == "__main__":
    main()
