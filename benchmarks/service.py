"""A bounded load test of the shared service on loopback: many users at once reading their
statements and positions for 60 s, against the example workspace. Reports requests per second, latency
percentiles and errors for each kind of request, and `/api/health` (no database, no
statements) measured in the same run as the baseline the others are compared with.

    .venv/bin/python benchmarks/service.py                      # 50 users for 60 s, example of 1M rows, 1 s between a user's requests
    .venv/bin/python benchmarks/service.py --think 0            # the same users asking again at once: the service's capacity
    .venv/bin/python benchmarks/service.py --users 10 --seconds 10 --rows 20000

Only loopback is ever a target; every loop is bounded by time and stops by itself."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CLI = str(Path(sys.executable).with_name("carecontracts"))
PARTIES = [("ICB-NCL", "commissioner"), ("ICB-NEL", "commissioner"), ("ACUTE-RFH", "provider"), ("PRIME-MSK", "provider"),
           ("MOVE-CHARITY", "provider"), ("AGE-UK-NCL", "alliance-member"), ("MH-TRUST", "provider"), ("ISP-HEALTHCARE", "provider")]
MONTHS = [f"{y}-{m:02d}" for y, m in [(2025, m) for m in range(4, 13)] + [(2026, m) for m in range(1, 4)]]


def run(*args: str, input: str | None = None) -> str:
    done = subprocess.run([CLI, *args], capture_output=True, text=True, input=input)
    if done.returncode != 0:
        raise SystemExit(f"carecontracts {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def workspace(rows: int, keep: bool) -> Path:
    """The example, loaded and paid, with one API user per seat (reused if kept)."""
    folder = OUT / f"service-{rows}"
    if keep and (folder / ".carecontracts" / "warehouse.duckdb").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    run("init", str(folder), "--rows", str(rows))
    run("load", "-w", str(folder))
    run("pay", "year", "-w", str(folder))
    return folder


def users(folder: Path, count: int) -> list[tuple[str, str]]:
    """`count` users spread over the parties, each with its token."""
    made = []
    for seat in range(count):
        party, role = PARTIES[seat % len(PARTIES)]
        name = f"load-{seat}-{time.time_ns()}"
        token = run("users", "add", name, "-w", str(folder), "--party", party, "--role", role).strip().splitlines()[-1]
        made.append((party, token))
    return made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def seat(client: httpx.AsyncClient, token: str, contracts: list[str], until: float, kinds: list[str],
               timings: dict[str, list[float]], errors: dict[str, int], think: float) -> None:
    """One user reading, a request then a pause to read it (`think` seconds on average, 0 for
    none: then every user asks again the moment it is answered), until the time is up."""
    headers = {"Authorization": f"Bearer {token}"}
    while time.perf_counter() < until:
        kind = random.choice(kinds)
        month = random.choice(MONTHS)
        url = {"health": "/api/health", "statements": f"/api/statements?month={month}",
               "contract": f"/api/contracts/{random.choice(contracts)}/statements?month={month}", "positions": "/api/positions"}[kind]
        started = time.perf_counter()
        why = None
        try:
            response = await client.get(url, headers=headers)
            why = None if response.status_code == 200 else f"HTTP {response.status_code}"
        except httpx.HTTPError as error:
            why = type(error).__name__
        timings[kind].append(time.perf_counter() - started)
        if why:
            errors[kind] += 1
            errors["why: " + why] += 1
        if think:
            await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))


async def phase(base: str, seats: list[tuple[str, list[str]]], seconds: float, kinds: list[str], think: float) -> tuple[dict, dict, float]:
    timings: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    limits = httpx.Limits(max_connections=len(seats) + 5)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        until = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(seat(client, token, contracts, until, kinds, timings, errors, think) for token, contracts in seats))
        elapsed = time.perf_counter() - started
    return timings, errors, elapsed


def summary(times: list[float], errors: int, elapsed: float) -> dict:
    ordered = sorted(times)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)  # noqa: E731
    return {"requests": len(times), "per_second": round(len(times) / elapsed, 1), "p50_ms": pick(0.50), "p95_ms": pick(0.95),
            "p99_ms": pick(0.99), "mean_ms": round(statistics.fmean(times) * 1000, 1), "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50, help="users reading at once")
    parser.add_argument("--seconds", type=float, default=60, help="how long the statements phase runs (the baseline runs a quarter of it)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="activity rows of the example workspace")
    parser.add_argument("--think", type=float, default=1.0, help="seconds a user reads between requests, on average (0: none, a flood)")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the workspace in benchmarks/out/")
    parser.add_argument("--out", type=Path, default=OUT / "service.json")
    options = parser.parse_args()

    folder = workspace(options.rows, options.keep)
    made = users(folder, options.users)
    port = free_port()
    server = subprocess.Popen([CLI, "serve", "-w", str(folder), "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/api/health", timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the service did not start")
                time.sleep(0.2)
        seats = []
        for party, token in made:
            contracts = [c["contract"] for c in httpx.get(base + "/api/contracts", headers={"Authorization": f"Bearer {token}"}).json()]
            seats.append((token, contracts))
        baseline, base_errors, base_elapsed = asyncio.run(phase(base, seats, options.seconds / 4, ["health"], options.think))
        timings, errors, elapsed = asyncio.run(phase(base, seats, options.seconds, ["statements", "contract", "positions"], options.think))
    finally:
        server.terminate()
        server.wait(timeout=30)
    results = {"users": options.users, "seconds": options.seconds, "rows": options.rows, "think": options.think,
               "health (baseline)": summary(baseline["health"], base_errors["health"], base_elapsed),
               "all reads": summary(timings["statements"] + timings["contract"] + timings["positions"],
                                    errors["statements"] + errors["contract"] + errors["positions"], elapsed)}
    for kind in ("statements", "contract", "positions"):
        results[kind] = summary(timings[kind], errors[kind], elapsed)
    base_p95 = results["health (baseline)"]["p95_ms"]
    for kind in ("all reads", "statements", "contract", "positions"):
        results[kind]["p95_vs_health"] = round(results[kind]["p95_ms"] / base_p95, 2) if base_p95 else None
    results["errors by kind"] = {k[5:]: v for k, v in errors.items() if k.startswith("why: ")}
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print("| requests | per second | p50 ms | p95 ms | p99 ms | errors | p95 ÷ health p95 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in ("health (baseline)", "all reads", "statements", "contract", "positions"):
        r = results[kind]
        print(f"| {kind} | {r['per_second']:,} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} | {r.get('p95_vs_health', 1.0)} |")
    if results["errors by kind"]:
        print("errors:", ", ".join(f"{why} × {count}" for why, count in results["errors by kind"].items()))


if __name__ == "__main__":
    main()
