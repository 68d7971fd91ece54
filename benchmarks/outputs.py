"""Time writing a book's statements: the XLSX workbook (summary and every line) and the
lines as Parquet or CSV, on synthetic statement lines with the engine's exact schema.

    .venv/bin/python benchmarks/outputs.py --lines 100000 250000

Each (size, output) is timed in its own process, so its peak memory (max RSS) is its own:
making the synthetic lines, then writing them. Prints one row per stage and writes
benchmarks/out/outputs.json. Amounts are decimal128(18, 2), never floats.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

OUTPUTS = ("xlsx", "xlsx+parquet", "xlsx+csv", "parquet", "csv")
LINES_PER_CONTRACT = 60  # five components (or services) × twelve months


def decimals(units: np.ndarray, precision: int, scale: int) -> pa.Array:
    """Whole units of 10^-scale (int64) as an exact decimal128 array: the 128-bit integers
    are written directly, so no value passes through a float."""
    words = np.empty(2 * len(units), dtype=np.int64)
    words[0::2] = units
    words[1::2] = np.where(units < 0, -1, 0)  # sign extension of the high word
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(units), [None, pa.py_buffer(words.tobytes())])


def synthetic_lines(count: int, seed: int = 13) -> pa.Table:
    """`count` statement lines for a book of count / 60 contracts (at least 25), 42
    commissioners and 400 providers, twelve months from April 2025, in statement order."""
    rng = np.random.default_rng(seed)
    index = np.arange(count)
    contract = index // LINES_PER_CONTRACT
    contracts = int(contract[-1]) + 1 if count else 0
    within = index % LINES_PER_CONTRACT
    component = within // 12
    month_index = within % 12
    payer = contract % 42
    payee = (contract * 7) % 400
    months = np.array([np.datetime64(f"{2025 + (3 + m) // 12}-{(3 + m) % 12 + 1:02d}-01") for m in range(12)], dtype="datetime64[D]")
    quantity_units = rng.integers(0, 5_000, count) * 100_000_000  # whole units, 8 places
    rate_units = rng.integers(5_000, 900_000, count) * 10_000_000  # pounds to 3 places, 10 places
    pence = rng.integers(-2_000_000, 500_000_000, count)  # up to £5m a line, some negative
    amount = decimals(pence, 18, 2)
    names = pa.array([f"C{c:05d}-2025" for c in range(max(contracts, 1))])
    kinds = pa.array(["core", "activity", "cquin", "outcomes", "risk"])
    contract_ids = names.take(pa.array(contract))
    component_ids = kinds.take(pa.array(component))
    quantity = decimals(quantity_units, 20, 8)
    rate = decimals(rate_units, 18, 10)
    basis = pc.binary_join_element_wise(
        pc.cast(pc.cast(quantity, pa.int64()), pa.string()), " units × £", pc.cast(pc.cast(rate, pa.decimal128(18, 3)), pa.string()),
        " (", component_ids, " of ", contract_ids, ", year to date)", "")
    has_detail = component == 1
    service = pa.array(np.where(has_detail, "elective", None).tolist(), pa.string())
    currency = pa.array(np.where(has_detail, "HRG-HB12C", None).tolist(), pa.string())
    return pa.table({
        "scenario": pa.array(["actual"] * count),
        "contract": contract_ids,
        "component": component_ids,
        "payer": pa.array([f"ICB-Q{p:02d}" for p in payer]),
        "payee": pa.array([f"PROV-{p:03d}" for p in payee]),
        "month": pa.array(months[month_index], pa.date32()),
        "quantity": quantity,
        "rate": rate,
        "amount": amount,
        "basis": basis,
        "service": service,
        "currency": currency,
    })


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage(count: int, output: str, folder: Path) -> dict:
    """Make `count` lines and write them as `output`, in this process; times and memory."""
    from carecontracts.periods import FinancialYear
    from carecontracts.report.export import write_statements

    started = time.perf_counter()
    lines = synthetic_lines(count)
    made = time.perf_counter() - started
    before = peak_mb()
    target = folder / f"statements-{count}.{'xlsx' if output.startswith('xlsx') else output}"
    started = time.perf_counter()
    if output.startswith("xlsx"):
        written = write_statements(lines, target, lines_as=output.partition("+")[2] or "xlsx", year=FinancialYear(dt.date(2025, 4, 1)))
    else:
        from carecontracts.report.export import export_lines

        written = [export_lines(lines, target)]
    seconds = time.perf_counter() - started
    return {
        "lines": count, "output": output, "contracts": len(pc.unique(lines.column("contract"))),
        "make_s": round(made, 2), "write_s": round(seconds, 2),
        "peak_mb": round(peak_mb()), "peak_before_write_mb": round(before),
        "files_mb": {Path(p).name: round(Path(p).stat().st_size / 1e6, 1) for p in written},
    }


def main() -> None:
    """Run each (size, output) in its own process and print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 250_000])
    parser.add_argument("--outputs", nargs="+", choices=OUTPUTS, default=list(OUTPUTS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "outputs.json")
    parser.add_argument("--stage", nargs=2, metavar=("LINES", "OUTPUT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.stage:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(stage(int(arguments.stage[0]), arguments.stage[1], Path(folder))))
        return
    results = []
    for count in arguments.lines:
        for output in arguments.outputs:
            load = os.getloadavg()[0]
            done = subprocess.run([sys.executable, __file__, "--stage", str(count), output], check=True, capture_output=True, text=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["load_before"] = round(load, 2)  # the machine is shared: the 1-minute load average
            results.append(result)
            print(f"{count:>9,} lines  {output:<13} write {result['write_s']:>6.2f} s  peak {result['peak_mb']:>6,} MB "
                  f"(before writing {result['peak_before_write_mb']:,})  load {load:.1f}  {result['files_mb']}", flush=True)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "cores": os.cpu_count(), "platform": platform.platform()}
    arguments.out.write_text(json.dumps({"command": " ".join(sys.argv), "machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
