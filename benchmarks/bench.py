"""Time load + measure + price against the floor: one hand-written DuckDB query computing the
same fine tallies from the same Parquet files. Each stage runs in its own process so its peak
memory (max RSS) is its own.

    .venv/bin/python benchmarks/bench.py --rows 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

FLOOR_SQL = """
WITH events AS (
    SELECT *, date_trunc('month', end_date)::DATE AS month,
        CASE WHEN pod IN ('EL', 'NEL') THEN end_date END AS index_end
    FROM read_parquet('{files}')
), flagged AS (
    SELECT *,
        max(index_end) OVER (PARTITION BY provider, patient_id ORDER BY start_date, end_date, activity_id
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_discharge
    FROM events
)
SELECT provider, commissioner, month, service, currency, pod,
    sum(quantity) AS quantity, count(*) AS events, sum(cost) AS cost,
    sum(CASE WHEN pod = 'NEL' AND previous_discharge IS NOT NULL
             AND date_diff('day', previous_discharge, start_date) BETWEEN 0 AND 30
             AND service NOT IN ('maternity', 'cancer') AND coalesce(admission_method, '') <> 'transfer'
             AND coalesce(age, 999) >= 4 THEN quantity ELSE 0 END) AS readmitted
FROM flagged
GROUP BY ALL
"""


def stage(name: str, root: Path) -> dict:
    """Run one stage in this process and return its timing (called in a child process)."""
    import duckdb

    from carecontracts.data.load import load_workspace
    from carecontracts.payments import run_payments
    from carecontracts.workspace import Workspace

    # Imports are done before the clock starts: each stage is timed on its work alone.
    workspace = Workspace.open(root)
    started = time.perf_counter()
    if name == "floor":
        files = str(root / "data" / "activity" / "*.parquet")
        rows = duckdb.connect().execute(f"SELECT count(*) FROM ({FLOOR_SQL.format(files=files)})").fetchone()[0]
        detail = {"tally_rows": rows}
    elif name == "load":
        report = load_workspace(workspace)
        detail = {"activity_rows": report.rows["activity"]}
    elif name == "measure_price":
        result = run_payments(workspace, workspace.year.months)
        detail = {"lines": len(result.year_lines)}
    else:
        raise SystemExit(f"unknown stage {name}")
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"stage": name, "seconds": round(seconds, 3), "peak_mb": round(peak_mb, 1), **detail}


def run_stage(name: str, root: Path) -> dict:
    output = subprocess.run([sys.executable, __file__, "--stage", name, "--root", str(root)], check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def bench(rows: int, keep: bool) -> dict:
    from carecontracts.examples.generate import write_example

    root = OUT / f"ws-{rows}"
    if not (root / "carecontracts.toml").exists():
        started = time.perf_counter()
        write_example(root, rows=rows)
        print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    floor = run_stage("floor", root)
    load = run_stage("load", root)
    priced = run_stage("measure_price", root)
    total = load["seconds"] + priced["seconds"]
    result = {
        "rows": rows,
        "floor_s": floor["seconds"],
        "load_s": load["seconds"],
        "measure_price_s": priced["seconds"],
        "ratio_measure_price_to_floor": round(priced["seconds"] / floor["seconds"], 2),
        "ratio_total_to_floor": round(total / floor["seconds"], 2),
        "peak_mb_floor": floor["peak_mb"],
        "peak_mb_load": load["peak_mb"],
        "peak_mb_measure_price": priced["peak_mb"],
        "statement_lines": priced["lines"],
    }
    if not keep:
        import shutil

        shutil.rmtree(root)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--keep", action="store_true", help="keep the generated workspaces in benchmarks/out/")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args.root)))
        return
    OUT.mkdir(exist_ok=True)
    results = [bench(rows, args.keep) for rows in args.rows]
    header = list(results[0])
    print(" | ".join(header))
    for result in results:
        print(" | ".join(str(result[h]) for h in header))
    (OUT / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
