"""Time the payment run on whole contract books: how the cost grows with the number of
contracts over the same activity rows, how much of it is compiling the pricing query, and
forecast, what-if and a simulation on a large book. Each stage runs in its own process so its
peak memory (max RSS) is its own; ratios are against a baseline book measured in the same run.

    .venv/bin/python benchmarks/book.py                                    # 10, 100, 1,000, 10,000 contracts at 1M and 10M rows
    .venv/bin/python benchmarks/book.py --contracts 10 20 --rows 100000 --baseline 10 --scenarios-book 20 --simulate-runs 50

For each activity size, every book (and the baseline book, 50 contracts by default) is
generated with `carecontracts init --contracts N --rows R`'s generator (seeded), then timed:
load, pay (measure + price + store, what `pay year` runs), the pay's parts (building the
pricing expression, compiling it to SQL, running it), and on the scenarios book forecast,
what-if and simulation.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from bench import machine, wait_quiet  # noqa: E402  (the same machine description and quiet wait as bench.py)

SEED = 20250401
AS_OF = "2025-11"
WHATIF = {"name": "elective -10% from December", "changes": [{"scale": {"service": ["elective"], "from": "2025-12-01"}, "percent": -10}]}


class QueryClock:
    """Time spent running queries through an engine while a pricing expression is built
    (measure's scan, small look-ups some mechanisms make): the methods that run queries are
    wrapped on the engine object, whichever of them it still has."""

    RUNS_QUERIES = ("to_arrow", "cache", "store")

    def __init__(self, engine: Any) -> None:
        """Wrap the engine's query-running methods."""
        self.seconds = 0.0
        self.calls = 0
        for name in self.RUNS_QUERIES:
            method = getattr(engine, name, None)
            if callable(method):
                setattr(engine, name, self._timed(method))

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """The method, adding the time of each call to the clock."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            """Run and time one call."""
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        return timed


def _split(root: Path) -> dict[str, Any]:
    """The pay's parts: build the pricing expression (measure_and_price), compile it to SQL
    (ibis.to_sql), run it. If the engine no longer has these entry points, the whole run is
    timed through statement_lines and the parts are left out."""
    import ibis

    from carecontracts.engine import run
    from carecontracts.payments import open_engine, workspace_contracts
    from carecontracts.workspace import Workspace

    workspace = Workspace.open(root)
    contracts = workspace_contracts(workspace)
    engine, tables = open_engine(workspace)
    detail: dict[str, Any] = {}
    try:
        build = getattr(run, "measure_and_price", None)
        if build is None:
            started = time.perf_counter()
            lines = run.statement_lines(engine, contracts, workspace.year, tables)
            return {"seconds": round(time.perf_counter() - started, 3), "lines": lines.num_rows, "split": "measure_and_price is gone: total only"}
        clock = QueryClock(engine)
        started = time.perf_counter()
        priced = build(engine, contracts, workspace.year, tables)
        built = time.perf_counter()
        queries_s, queries = clock.seconds, clock.calls
        expr = priced.lines
        try:
            sql = ibis.to_sql(expr)
            to_sql_s = time.perf_counter() - built
            detail["sql_chars"] = len(sql)
        except Exception as error:  # an engine whose lines cannot be shown as SQL: say so, keep timing
            to_sql_s = float("nan")
            detail["to_sql_error"] = f"{type(error).__name__}: {error}"[:300]
        compile_once = getattr(engine, "compiled", None)
        mark = time.perf_counter()
        if callable(compile_once):
            runner = compile_once(expr)  # compiled once, then run without compiling again
            compiled_s = time.perf_counter() - mark
            mark = time.perf_counter()
            lines = runner()
        else:
            compiled_s = float("nan")
            lines = engine.to_arrow(expr)  # compiles inside: execute_s includes a compile
        execute_s = time.perf_counter() - mark
        # Compiling = building the expression in Python (queries it ran meanwhile left out)
        # + turning it into SQL; the rest is running queries: measure's scan, look-ups, pricing.
        build_s = built - started - queries_s
        to_sql = to_sql_s if to_sql_s == to_sql_s else compiled_s  # NaN when to_sql failed
        total = build_s + to_sql + queries_s + execute_s
        detail |= {
            "build_s": round(build_s, 3),
            "queries_during_build_s": round(queries_s, 3),
            "queries_during_build": queries,
            "to_sql_s": round(to_sql_s, 3),
            "compiled_s": round(compiled_s, 3),
            "execute_s": round(execute_s, 3),
            "compile_share": round((build_s + to_sql) / total, 3) if total else None,
            "seconds": round(time.perf_counter() - started, 3),
            "lines": lines.num_rows,
        }
    finally:
        engine.close()
    return detail


def _scenario(name: str, root: Path, runs: int) -> dict[str, Any]:
    """Forecast, what-if or simulation as the CLI calls them (without printing or writing
    reports), on a loaded book."""
    import datetime as dt

    from carecontracts.language.yaml_lines import parse_yaml
    from carecontracts.payments import open_engine, workspace_contracts
    from carecontracts.workspace import Workspace

    workspace = Workspace.open(root)
    contracts = workspace_contracts(workspace)
    engine, tables = open_engine(workspace)
    try:
        started = time.perf_counter()
        if name == "forecast":
            from carecontracts.periods import parse_month
            from carecontracts.scenarios.forecast import METHODS, forecast

            result = forecast(engine, contracts, workspace.year, tables, parse_month(AS_OF), tuple(METHODS))
            detail = {"methods": list(result.methods), "lines": result.lines.num_rows}
        elif name == "whatif":
            from carecontracts.scenarios.whatif import parse_whatif, run_whatif

            scenario = parse_whatif(parse_yaml(json.dumps(WHATIF), "whatif.yaml"))
            months = [m for m in workspace.year.months if m >= dt.date(2025, 12, 1)]
            outcome = run_whatif(engine, contracts, workspace.year, tables, scenario, months)
            detail = {"difference": str(sum((d.difference for d in outcome.differences), Decimal(0)))}
        elif name == "simulate":
            from carecontracts.scenarios.simulate import RiskModel, simulate

            simulation = simulate(engine, contracts, workspace.year, tables, runs, 7, RiskModel(), None, None, workspace.settings.budgets)
            detail = {"runs": runs, "parties": len(simulation.parties)}
        else:
            raise SystemExit(f"unknown scenario stage {name}")
        return {"seconds": round(time.perf_counter() - started, 3), **detail}
    finally:
        engine.close()


def stage(name: str, root: Path, contracts: int, rows: int, runs: int) -> dict[str, Any]:
    """Run one stage in this process and return its timing (called in a child process)."""
    import carecontracts.engine.mechanisms  # noqa: F401  (the registry imports them on first use)
    from scipy import stats  # noqa: F401  (outcome intervals import it on first use)

    from carecontracts.data.load import load_workspace
    from carecontracts.examples.book import write_book
    from carecontracts.payments import run_payments
    from carecontracts.workspace import Workspace

    # Imports are done before the clock starts: each stage is timed on its work alone.
    started = time.perf_counter()
    detail: dict[str, Any] = {}
    if name == "generate":
        summary = write_book(root, contracts, rows=rows, seed=SEED)
        detail = {"seconds": round(time.perf_counter() - started, 3), "components": summary.kinds}
    elif name == "load":
        report = load_workspace(Workspace.open(root))
        detail = {"seconds": round(time.perf_counter() - started, 3), "activity_rows": report.rows["activity"]}
    elif name == "pay":
        workspace = Workspace.open(root)
        result = run_payments(workspace, workspace.year.months)
        detail = {"seconds": round(time.perf_counter() - started, 3), "lines": len(result.year_lines)}
    elif name == "split":
        detail = _split(root)
    else:
        detail = _scenario(name, root, runs)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"stage": name, "peak_mb": round(peak_mb, 1), **detail}


def run_stage(name: str, root: Path, contracts: int, rows: int, runs: int, quiet: float) -> dict[str, Any]:
    """One stage in a child process, after waiting for idle cores; a failure is recorded, not fatal."""
    busy = wait_quiet(quiet)
    command = [sys.executable, __file__, "--stage", name, "--root", str(root), "--contracts", str(contracts), "--rows", str(rows), "--simulate-runs", str(runs)]
    output = subprocess.run(command, capture_output=True, text=True)
    if output.returncode != 0:
        result: dict[str, Any] = {"stage": name, "error": (output.stderr.strip().splitlines() or ["exit " + str(output.returncode)])[-1][:500]}
    else:
        result = json.loads(output.stdout.strip().splitlines()[-1])
    result["busy_cores_before"] = busy
    print(f"  {contracts:,} contracts, {rows:,} rows, {name}: {result}", file=sys.stderr)
    return result


def measure_book(contracts: int, rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """Generate, load and pay one book (and, on the scenarios book, the scenarios)."""
    root = OUT / f"book-{contracts}-{rows}"
    if root.exists() and not (root / ".complete").exists():
        shutil.rmtree(root)  # a book left half-written by an interrupted run
    result: dict[str, Any] = {"contracts": contracts, "rows": rows, "busy_cores_before_stages": {}}

    def timed(name: str) -> dict[str, Any]:
        """Run a stage and file its result under its name."""
        outcome = run_stage(name, root, contracts, rows, args.simulate_runs, args.quiet_wait)
        result["busy_cores_before_stages"][name] = outcome.pop("busy_cores_before")
        if "error" in outcome:
            result[f"{name}_error"] = outcome["error"]
        else:
            result[f"{name}_s"] = outcome.get("seconds")
            result[f"peak_mb_{name}"] = outcome.get("peak_mb")
        return outcome

    if not root.exists():
        generated = timed("generate")
        if "error" in generated:
            return result
        (root / ".complete").write_text("")
        result["components"] = generated.get("components")
    if "error" in timed("load"):
        return result
    paid = timed("pay")
    if "seconds" in paid:
        result["statement_lines"] = paid.get("lines")
        result["pay_ms_per_contract"] = round(1000 * paid["seconds"] / contracts, 2)
    if not args.no_split:
        split = timed("split")
        for key in ("build_s", "queries_during_build_s", "to_sql_s", "compiled_s", "execute_s", "compile_share", "sql_chars", "to_sql_error", "split"):
            if key in split:
                result[key] = split[key]
    if contracts == args.scenarios_book:
        for name in ("forecast", "whatif", "simulate"):
            timed(name)
    if not args.keep:
        shutil.rmtree(root)
    return result


def with_ratios(results: list[dict[str, Any]], baseline: int) -> None:
    """Each book's pay time against the baseline book's over the same rows."""
    base = {r["rows"]: r.get("pay_s") for r in results if r["contracts"] == baseline}
    for result in results:
        reference = base.get(result["rows"])
        if reference and result.get("pay_s") is not None:
            result[f"ratio_pay_to_{baseline}"] = round(result["pay_s"] / reference, 2)


def main() -> None:
    """Parse the sizes, measure every book at every activity size, write and print the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", type=int, nargs="+", default=[10, 100, 1_000, 10_000], help="book sizes (contracts)")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000], help="activity rows of every book, in all")
    parser.add_argument("--baseline", type=int, default=50, help="the book every other is compared with, measured in the same run (default 50)")
    parser.add_argument("--scenarios-book", type=int, default=1_000, help="the book forecast, what-if and simulation are timed on (0: none)")
    parser.add_argument("--simulate-runs", type=int, default=1_000, help="simulated years on the scenarios book")
    parser.add_argument("--no-split", action="store_true", help="skip timing the pay's parts (build, compile, run) in a separate process")
    parser.add_argument("--keep", action="store_true", help="keep the generated books in benchmarks/out/ (a kept book is reused, not generated again)")
    parser.add_argument("--quiet-wait", type=float, default=300.0, help="seconds to wait, before each stage, for other work on the machine to stop")
    parser.add_argument("--out", type=Path, default=OUT / "book.json", help="where to write the results (JSON)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args.root, args.contracts[0], args.rows[0], args.simulate_runs), default=str))
        return
    if min(args.contracts + [args.baseline]) < 1 or min(args.rows) < 0:
        parser.error("books need at least 1 contract and rows cannot be negative")
    OUT.mkdir(exist_ok=True)
    sizes = sorted(set(args.contracts) | {args.baseline})
    results: list[dict[str, Any]] = []
    for rows in args.rows:
        for contracts in sizes:
            results.append(measure_book(contracts, rows, args))
            with_ratios(results, args.baseline)
            # Written after every book, so a long run's finished books survive a later failure.
            summary = {"machine": machine(), "command": " ".join([Path(sys.executable).name, *sys.argv]), "baseline": args.baseline, "results": results}
            args.out.write_text(json.dumps(summary, indent=2, default=str))
    columns = ["rows", "contracts", "load_s", "pay_s", "pay_ms_per_contract", f"ratio_pay_to_{args.baseline}", "compile_share", "build_s", "to_sql_s",
               "execute_s", "peak_mb_pay", "forecast_s", "whatif_s", "simulate_s"]
    print(" | ".join(columns))
    for result in results:
        print(" | ".join(str(result.get(c, "")) for c in columns))
    for result in results:
        errors = {k: v for k, v in result.items() if k.endswith("_error")}
        if errors:
            print(f"{result['contracts']:,} contracts, {result['rows']:,} rows: {errors}")


if __name__ == "__main__":
    main()
