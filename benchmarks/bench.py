"""Time load + measure + price against the floor: one hand-written DuckDB query computing the
same fine tallies from the same Parquet files; against a straightforward pandas script doing
the same computation; and the same run on Spark local. Each stage runs in its own process so
its peak memory (max RSS) is its own.

    .venv/bin/python benchmarks/bench.py --rows 1000000 10000000 --backends duckdb spark
    .venv/bin/python benchmarks/bench.py --rows 100000000 --no-pandas
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

KEYS = ["provider", "commissioner", "month", "service", "currency", "pod"]


def pandas_tallies(folder: Path):
    """The same fine tallies as FLOOR_SQL, the way an analyst would write them in pandas:
    read the files, sort each patient's events, carry the latest admission's discharge date
    forward one row, flag readmissions, group by. Not tuned: default dtypes (decimals stay
    Python Decimals, dates become datetimes)."""
    from decimal import Decimal

    import pandas as pd

    df = pd.read_parquet(folder)
    df["start_date"] = pd.to_datetime(df["start_date"])
    df["end_date"] = pd.to_datetime(df["end_date"])
    df["month"] = df["end_date"].dt.to_period("M").dt.to_timestamp()

    # Readmissions: the latest discharge of an earlier elective or emergency admission at the
    # same provider, per patient, in order of the events.
    df = df.sort_values(["provider", "patient_id", "start_date", "end_date", "activity_id"])
    df["index_end"] = df["end_date"].where(df["pod"].isin(["EL", "NEL"]))
    df["latest_discharge"] = df.groupby(["provider", "patient_id"])["index_end"].cummax()
    df["latest_discharge"] = df.groupby(["provider", "patient_id"])["latest_discharge"].ffill()
    df["previous_discharge"] = df.groupby(["provider", "patient_id"])["latest_discharge"].shift()
    gap = (df["start_date"] - df["previous_discharge"]).dt.days
    readmission = (
        (df["pod"] == "NEL")
        & gap.between(0, 30)
        & ~df["service"].isin(["maternity", "cancer"])
        & (df["admission_method"].fillna("") != "transfer")
        & (df["age"].fillna(999) >= 4)
    )
    df["readmitted"] = df["quantity"].where(readmission, Decimal(0))

    return (
        df.groupby(KEYS, dropna=False)
        .agg(quantity=("quantity", "sum"), events=("activity_id", "size"), cost=("cost", "sum"), readmitted=("readmitted", "sum"))
        .reset_index()
    )


def checksums(rows: int, quantity, events, cost, readmitted) -> dict:
    """What the floor and the pandas script must agree on: tally rows and column sums, exact."""
    return {"tally_rows": int(rows), "quantity": str(quantity), "events": int(events), "cost": str(cost), "readmitted": str(readmitted)}


def descendants_peak_mb() -> float:
    """Peak RSS (VmHWM) of this process's live descendants: Spark's JVM runs as one."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    family, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - family
        family |= frontier
    peak_kb = 0
    for pid in family:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb += int(line.split()[1])
        except OSError:
            continue
    return peak_kb / 1024


def stage(name: str, root: Path) -> dict:
    """Run one stage in this process and return its timing (called in a child process)."""
    import duckdb
    import pandas  # noqa: F401  (imported before the clock starts, like the rest)

    import carecontracts.engine.mechanisms  # noqa: F401  (the registry imports them on first use)
    from scipy import stats  # noqa: F401  (outcome intervals import it on first use)

    from carecontracts.data.load import load_workspace
    from carecontracts.engine.backend import Engine
    from carecontracts.payments import run_payments
    from carecontracts.workspace import Workspace

    # Imports are done before the clock starts: each stage is timed on its work alone.
    workspace = Workspace.open(root)
    folder = root / "data" / "activity"
    detail: dict = {}
    marks: dict[str, float] = {}
    if name == "spark":
        # Mark when the Parquet copy of the warehouse is done and the Spark session is up, so
        # the copy (Spark's load), the session's start and measure + price are timed apart.
        spark = Engine.spark.__func__  # type: ignore[attr-defined]

        def timed_spark(cls, *args, **kwargs):
            marks["copied"] = time.perf_counter()
            engine = spark(cls, *args, **kwargs)
            marks["started"] = time.perf_counter()
            return engine

        Engine.spark = classmethod(timed_spark)  # type: ignore[method-assign, assignment]
    started = time.perf_counter()
    if name == "floor":
        tallies = duckdb.connect().execute(FLOOR_SQL.format(files=str(folder / "*.parquet"))).to_arrow_table()
        seconds = time.perf_counter() - started
        sums = duckdb.connect().execute("SELECT count(*), sum(quantity), sum(events), sum(cost), sum(readmitted) FROM tallies").fetchone()
        detail = checksums(*sums)
    elif name == "pandas":
        tallies = pandas_tallies(folder)
        seconds = time.perf_counter() - started
        detail = checksums(len(tallies), tallies["quantity"].sum(), tallies["events"].sum(), tallies["cost"].sum(), tallies["readmitted"].sum())
    elif name == "load":
        report = load_workspace(workspace)
        seconds = time.perf_counter() - started
        detail = {"activity_rows": report.rows["activity"]}
    elif name == "measure_price":
        result = run_payments(workspace, workspace.year.months)
        seconds = time.perf_counter() - started
        detail = {"lines": len(result.year_lines)}
    elif name == "spark":
        result = run_payments(workspace, workspace.year.months, backend="spark")
        seconds = time.perf_counter() - marks["started"]
        detail = {
            "lines": len(result.year_lines),
            "copy_s": round(marks["copied"] - started, 3),
            "session_s": round(marks["started"] - marks["copied"], 3),
            "jvm_peak_mb": round(descendants_peak_mb(), 1),
        }
    else:
        raise SystemExit(f"unknown stage {name}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"stage": name, "seconds": round(seconds, 3), "peak_mb": round(peak_mb, 1), **detail}


def busy_cores(seconds: float = 2.0) -> float:
    """How many cores' worth of work the whole machine did over the last `seconds`."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return round((os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(total1 - total0, 1)), 2)


def wait_quiet(limit_s: float) -> float:
    """Wait (up to `limit_s`) until no other work keeps the machine busy: the machine is
    shared, and a stage timed beside someone's test run is timed on half the cores."""
    deadline = time.monotonic() + limit_s
    busy = busy_cores()
    while busy > 0.15 and time.monotonic() < deadline:
        busy = busy_cores(5.0)
    return busy


QUIET_LIMIT_S = 300.0


def run_stage(name: str, root: Path) -> dict:
    busy = wait_quiet(QUIET_LIMIT_S)
    output = subprocess.run([sys.executable, __file__, "--stage", name, "--root", str(root)], check=True, capture_output=True, text=True)
    result = json.loads(output.stdout.strip().splitlines()[-1])
    result["busy_cores_before"] = busy
    print(f"  {name}: {result}", file=sys.stderr)
    return result


def bench(rows: int, backends: list[str], with_pandas: bool, keep: bool) -> dict:
    from carecontracts.examples.generate import write_example

    root = OUT / f"ws-{rows}"
    if not (root / "carecontracts.toml").exists():
        started = time.perf_counter()
        write_example(root, rows=rows)
        print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    floor = run_stage("floor", root)
    result: dict = {"rows": rows, "busy_cores_before_stages": {"floor": floor["busy_cores_before"]}, "floor_s": floor["seconds"], "peak_mb_floor": floor["peak_mb"], "tally_rows": floor["tally_rows"]}
    if with_pandas:
        script = run_stage("pandas", root)
        result["busy_cores_before_stages"]["pandas"] = script["busy_cores_before"]
        mismatched = {k: (floor[k], script[k]) for k in ("tally_rows", "quantity", "events", "cost", "readmitted") if floor[k] != script[k]}
        if mismatched:
            raise SystemExit(f"pandas tallies differ from the floor's at {rows:,} rows (floor, pandas): {mismatched}")
        result |= {"pandas_s": script["seconds"], "peak_mb_pandas": script["peak_mb"]}
    load = run_stage("load", root)
    result["busy_cores_before_stages"]["load"] = load["busy_cores_before"]
    result |= {"load_s": load["seconds"], "peak_mb_load": load["peak_mb"]}
    if "duckdb" in backends:
        priced = run_stage("measure_price", root)
        result["busy_cores_before_stages"]["measure_price"] = priced["busy_cores_before"]
        result |= {
            "measure_price_s": priced["seconds"],
            "ratio_measure_price_to_floor": round(priced["seconds"] / floor["seconds"], 2),
            "ratio_total_to_floor": round((load["seconds"] + priced["seconds"]) / floor["seconds"], 2),
            "peak_mb_measure_price": priced["peak_mb"],
            "statement_lines": priced["lines"],
        }
        if with_pandas:
            result["ratio_pandas_to_measure_price"] = round(script["seconds"] / priced["seconds"], 2)
    if "spark" in backends:
        spark = run_stage("spark", root)
        result["busy_cores_before_stages"]["spark"] = spark["busy_cores_before"]
        if "statement_lines" in result and spark["lines"] != result["statement_lines"]:
            raise SystemExit(f"Spark priced {spark['lines']} statement lines, DuckDB {result['statement_lines']}, at {rows:,} rows")
        result |= {
            "spark_load_s": spark["copy_s"],
            "spark_session_s": spark["session_s"],
            "spark_measure_price_s": spark["seconds"],
            "ratio_spark_to_floor": round(spark["seconds"] / floor["seconds"], 2),
            "peak_mb_spark_python": spark["peak_mb"],
            "peak_mb_spark_jvm": spark["jvm_peak_mb"],
        }
    if not keep:
        import shutil

        shutil.rmtree(root)
    return result


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    import duckdb
    import ibis
    import pandas

    try:
        import pyspark

        spark_version = pyspark.__version__
    except ImportError:  # the spark extra is optional: a DuckDB-only run still describes its machine
        spark_version = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024**2, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "ibis": ibis.__version__,
        "pandas": pandas.__version__,
        "pyspark": spark_version,
    }


def main() -> None:
    global QUIET_LIMIT_S
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--backends", nargs="+", choices=["duckdb", "spark"], default=["duckdb"], help="which engines run measure + price")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas script (it holds every row in memory: not at 100M)")
    parser.add_argument("--keep", action="store_true", help="keep the generated workspaces in benchmarks/out/")
    parser.add_argument("--quiet-wait", type=float, default=QUIET_LIMIT_S, help="seconds to wait, before each stage, for other work on the machine to stop")
    parser.add_argument("--out", type=Path, default=OUT / "results.json", help="where to write the results (JSON)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args.root)))
        return
    QUIET_LIMIT_S = args.quiet_wait
    OUT.mkdir(exist_ok=True)
    results = []
    for rows in args.rows:
        results.append(bench(rows, args.backends, not args.no_pandas, args.keep))
        # Written after every size, so a long run's finished sizes survive a later failure.
        args.out.write_text(json.dumps({"machine": machine(), "command": sys.argv, "results": results}, indent=2))
    header = list(dict.fromkeys(key for result in results for key in result))
    print(" | ".join(header))
    for result in results:
        print(" | ".join(str(result.get(h, "")) for h in header))


if __name__ == "__main__":
    main()
