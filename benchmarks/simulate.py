"""Time a Monte Carlo simulation of the example workspace: the runs priced a chunk at a time
(each chunk's runs are scenario keys of one price stage) against the same runs priced one
scenario at a time in a loop, in the same invocation. Each stage runs in its own process so
its peak memory (max RSS) is its own.

    .venv/bin/python benchmarks/simulate.py --runs 10000 --chunks 250 1000 --loop-runs 50

The loop prices its runs one by one through the same code (a chunk of one), so its time per
run against the chunked time per run is the gain from pricing scenarios together; the loop's
runs are the chunked runs' first ones (each run draws from its own seeded generator), and the
script stops unless every one of them gives the same positions both ways.
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
sys.path.insert(0, str(HERE))

from bench import machine, wait_quiet  # noqa: E402  (the same machine description and quiet wait as bench.py)

SEED = 7


def stage(root: Path, runs: int, chunk: int, keep: int) -> dict:
    """Prepare (fit, price the stress tests), then time the runs alone; called in a child."""
    from carecontracts.payments import open_engine, workspace_contracts
    from carecontracts.scenarios.simulate import Results, prepare, run_chunks, summarise
    from carecontracts.workspace import Workspace

    workspace = Workspace.open(root)
    contracts = workspace_contracts(workspace)
    engine, tables = open_engine(workspace)
    started = time.perf_counter()
    prepared = prepare(engine, contracts, workspace.year, tables)
    prepare_s = time.perf_counter() - started
    started = time.perf_counter()
    results = run_chunks(prepared, runs, SEED, chunk)
    runs_s = time.perf_counter() - started
    started = time.perf_counter()
    collected = Results()
    collected.add(prepared.stressed)
    collected.add(results)
    simulation = summarise(prepared, collected, runs, SEED, workspace.settings.budgets)
    summarise_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first = {f"run:{n}" for n in range(1, keep + 1)}
    positions = sorted(
        (r["scenario"], r["party"], str(r["net"]), str(r["margin"])) for r in simulation.positions.to_pylist() if r["scenario"] in first
    )
    return {
        "runs": runs,
        "chunk": chunk,
        "prepare_s": round(prepare_s, 2),
        "runs_s": round(runs_s, 2),
        "summarise_s": round(summarise_s, 2),
        "seconds_per_run": runs_s / runs,
        "peak_mb": round(peak_mb, 1),
        "parties": len(simulation.parties),
        "first_runs_positions": positions,
    }


def run_stage(root: Path, runs: int, chunk: int, keep: int, quiet: float) -> dict:
    busy = wait_quiet(quiet)
    command = [sys.executable, __file__, "--stage", "--root", str(root), "--runs", str(runs), "--chunks", str(chunk), "--loop-runs", str(keep)]
    output = subprocess.run(command, check=True, capture_output=True, text=True)
    result = json.loads(output.stdout.strip().splitlines()[-1])
    result["busy_cores_before"] = busy
    shown = {k: v for k, v in result.items() if k != "first_runs_positions"}
    print(f"  runs {runs:,} chunk {chunk:,}: {shown}", file=sys.stderr)
    return result


def workspace(rows: int) -> Path:
    """The example workspace at this size, generated and loaded once (kept in benchmarks/out/)."""
    from carecontracts.data.load import load_workspace
    from carecontracts.examples.generate import write_example
    from carecontracts.workspace import Workspace

    root = OUT / f"ws-simulate-{rows}"
    if not (root / ".carecontracts" / "warehouse.duckdb").exists():
        write_example(root, rows=rows)
        load_workspace(Workspace.open(root))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="activity rows of the example workspace (its default: 1M)")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--chunks", type=int, nargs="+", default=[250, 1000], help="chunk sizes to time (memory grows with the chunk)")
    parser.add_argument("--loop-runs", type=int, default=50, help="runs priced one at a time (each as long as a chunk's fixed cost)")
    parser.add_argument("--quiet-wait", type=float, default=300.0, help="seconds to wait, before each stage, for other work to stop")
    parser.add_argument("--out", type=Path, default=OUT / "simulate.json")
    parser.add_argument("--stage", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.root, args.runs, args.chunks[0], args.loop_runs)))
        return
    OUT.mkdir(exist_ok=True)
    root = workspace(args.rows)
    chunked = [run_stage(root, args.runs, chunk, args.loop_runs, args.quiet_wait) for chunk in args.chunks]
    loop = run_stage(root, args.loop_runs, 1, args.loop_runs, args.quiet_wait)
    for result in chunked:
        if result["first_runs_positions"] != loop["first_runs_positions"]:
            raise SystemExit(f"the first {args.loop_runs} runs differ between chunks of {result['chunk']} and the loop")
    best = min(chunked, key=lambda r: r["runs_s"])
    summary = {
        "rows": args.rows,
        "runs": args.runs,
        "chunked": [{k: v for k, v in r.items() if k != "first_runs_positions"} for r in chunked],
        "loop": {k: v for k, v in loop.items() if k != "first_runs_positions"},
        "loop_seconds_for_all_runs_estimated": round(loop["seconds_per_run"] * args.runs, 1),
        "ratio_loop_to_chunked_per_run": round(loop["seconds_per_run"] / best["seconds_per_run"], 1),
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
