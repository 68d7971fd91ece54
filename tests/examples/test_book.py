"""The contract book generator: deterministic, every component kind, realistic proportions,
valid, and priced to the penny — block and cost-per-case lines recomputed here, independently
of the engine, from the generated YAML (read as plain text scalars) and activity files."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from carecontracts.cli import app
from carecontracts.data.load import check_files, load_workspace
from carecontracts.engine.backend import Engine
from carecontracts.engine.run import RunTables, statement_lines
from carecontracts.examples.book import BookSummary, write_book
from carecontracts.language import load_contracts
from carecontracts.payments import check_workspace
from carecontracts.workspace import Workspace

SMALL = 20  # contracts: enough for every kind (the first 14 of a book cover them all)
SMALL_ROWS = 3_000

# The book priced in test_block_and_cost_per_case_lines_to_the_penny (another size with
# CARECONTRACTS_BOOK_CONTRACTS=N): 60 contracts hold every kind, a prime with sub-contractors,
# alliances and shared contracts (the test checks), at a fifth of the cost of 300.
BOOK_CONTRACTS = int(os.environ.get("CARECONTRACTS_BOOK_CONTRACTS", "60"))
BOOK_ROWS_PER_CONTRACT = 200

KINDS = {
    "block", "activity", "cost_and_volume", "marginal_rate", "aligned_payment", "low_volume_block", "capitation", "outcome_incentive",
    "quality_incentive", "best_practice_topup", "withhold", "risk_share", "gain_share", "shared_savings",
}
MONTHS = [dt.date(2025 + (m > 12), (m - 1) % 12 + 1, 1) for m in range(4, 16)]  # April 2025 – March 2026
PENNY = Decimal("0.01")


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file the generator wrote, by path inside the workspace."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file() and ".carecontracts" not in p.parts}


def contract_texts(root: Path) -> list[dict[str, Any]]:
    """Every contract file as nested dicts and lists of strings: no number is ever a float."""
    return [yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) for path in sorted((root / "contracts").glob("*.yaml"))]


def number(text: str) -> Decimal:
    """A YAML number as written (`412_500_000`, `1.0461`) as an exact Decimal."""
    return Decimal(text.replace("_", ""))


def day(text: str) -> dt.date:
    """An ISO date."""
    return dt.date.fromisoformat(text)


def pence(value: Decimal) -> Decimal:
    """Half-up to the penny."""
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


def split(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`total` (in pence) split by weights, each part half-up to pence, the last part with a
    positive weight taking what is left so the parts add up exactly."""
    parts = [pence(total * w / sum(weights)) for w in weights]
    last = max(i for i, w in enumerate(weights) if w > 0)
    parts[last] = total - sum(parts[:last] + parts[last + 1 :], Decimal(0))
    assert all(p >= 0 for p in parts), "a part would be negative"
    return parts


def agreements(contract: dict[str, Any]) -> list[dict[str, Any]]:
    """The contract and each sub-contract as what is priced: id, payers with shares, the
    activity it reads (providers, commissioners), term, services and components."""
    commissioners = [(c["id"], number(c["share"])) for c in contract["commissioners"]] if "commissioners" in contract else [(contract["commissioner"], Decimal(1))]
    icbs = [c for c, _ in commissioners]
    term = (day(contract["term"]["start"]), day(contract["term"]["end"]))
    subs = contract.get("subcontracts", [])
    providers = [contract["provider"]] + [m["provider"] for m in contract.get("members", [])] + [s["provider"] for s in subs]
    everything = {"all": {}}
    result = [{"id": contract["id"], "payers": commissioners, "payer_is_commissioner": True, "providers": providers, "commissioners": icbs,
               "term": term, "services": contract.get("services", everything), "components": contract.get("components", [])}]
    for sub in subs:
        result.append({"id": sub["id"], "payers": [(contract["provider"], Decimal(1))], "payer_is_commissioner": False, "providers": [sub["provider"]],
                       "commissioners": icbs, "term": term, "services": sub.get("services", everything), "components": sub["components"]})
    return result


def payable(term: tuple[dt.date, dt.date]) -> list[dt.date]:
    """Months of the year the term touches."""
    return [m for m in MONTHS if term[0].replace(day=1) <= m <= term[1]]


def expected_blocks(contracts: list[dict[str, Any]]) -> dict[tuple[str, str, str, dt.date], Decimal]:
    """Block lines by (contract, component, payer, month): the annual value for the payable
    months (by profile weight, else twelfths) to the penny, split among payers by share,
    then over the months by weight, the last payer and the last month absorbing rounding."""
    lines: dict[tuple[str, str, str, dt.date], Decimal] = {}
    for contract in contracts:
        for agreement in agreements(contract):
            months = payable(agreement["term"])
            for component in agreement["components"]:
                if component["kind"] != "block":
                    continue
                weights = dict(zip(MONTHS, [number(w) for w in component.get("profile", ["1"] * 12)]))
                annual = number(component["annual"])
                total = pence(annual * sum(weights[m] for m in months) / sum(weights.values()))
                for (payer, _), payer_total in zip(agreement["payers"], split(total, [s for _, s in agreement["payers"]])):
                    for month, amount in zip(months, split(payer_total, [weights[m] for m in months])):
                        lines[(agreement["id"], component["id"], payer, month)] = amount
    return lines


def matches(row: dict[str, Any], rule: dict[str, list[str]]) -> bool:
    """A service filter: every column it names holds one of its values (`HN*` a prefix)."""
    for column, values in rule.items():
        value = row[column] or ""
        if not any(value.startswith(v[:-1]) if v.endswith("*") else value == v for v in values):
            return False
    return True


def dated(value: Any, on: dt.date) -> Decimal:
    """A parameter's value on a day: a number, or dated entries {from, to, value}."""
    if isinstance(value, str):
        return number(value)
    for entry in value:
        if day(entry["from"]) <= on and ("to" not in entry or on <= day(entry["to"])):
            return number(entry["value"])
    raise AssertionError(f"no value covers {on}")


def price_lists(root: Path) -> dict[str, list[tuple[str, Decimal, dt.date, dt.date]]]:
    """Every price list's rows: currency, unit price, valid from and to."""
    lists: dict[str, list[tuple[str, Decimal, dt.date, dt.date]]] = {}
    for path in sorted((root / "prices").glob("*.csv")):
        rows = [line.split(",") for line in path.read_text(encoding="utf-8").splitlines()[1:]]
        lists[path.stem] = [(c, Decimal(p), day(f), day(t)) for c, p, f, t in rows]
    return lists


def activity_cells(root: Path) -> list[dict[str, Any]]:
    """Activity summed by provider, commissioner, service, currency, pod, admission method
    and month its row ended, quantity exact (DuckDB's decimal sum of the Parquet files)."""
    files = root / "data" / "activity" / "*.parquet"
    with duckdb.connect() as con:
        cells = con.execute(
            f"""SELECT provider, commissioner, service, currency, pod, admission_method, date_trunc('month', end_date)::DATE AS month,
                       sum(quantity)::DECIMAL(38, 4) AS quantity
                FROM read_parquet('{files}') GROUP BY ALL"""
        ).fetchall()
    names = ("provider", "commissioner", "service", "currency", "pod", "admission_method", "month", "quantity")
    return [dict(zip(names, cell)) for cell in cells]


def expected_cost_per_case(root: Path, contracts: list[dict[str, Any]]) -> dict[tuple[str, str, str, str, str, dt.date], Decimal]:
    """Cost-per-case (`activity` kind) lines by (contract, component, payer, service,
    currency, month): the units of the agreement's providers and commissioners in the term,
    each counted for the first of the component's services it matches, × the list's unit
    price that month × the MFF, half-up to the penny per line."""
    prices = price_lists(root)
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for cell in activity_cells(root):
        cells[(cell["provider"], cell["commissioner"])].append(cell)
    lines: dict[tuple[str, str, str, str, str, dt.date], Decimal] = {}
    for contract in contracts:
        for agreement in agreements(contract):
            months = set(payable(agreement["term"]))
            pairs = [(p, c) for p in agreement["providers"] for c in agreement["commissioners"]]
            mine = [cell for pair in pairs for cell in cells.get(pair, []) if cell["month"] in months]
            for component in agreement["components"]:
                if component["kind"] != "activity":
                    continue
                names = component.get("services") or list(agreement["services"])
                units: dict[tuple[str, str, str, dt.date], Decimal] = defaultdict(Decimal)
                for cell in mine:
                    service = next((n for n in names if matches(cell, agreement["services"][n])), None)
                    if service is None:
                        continue
                    # The generated readmission rules never bite: their providers have no emergency spells.
                    assert not ("readmission" in component and cell["pod"] == "NEL"), f"{agreement['id']} has emergency spells under a readmission rule"
                    payer = cell["commissioner"] if agreement["payer_is_commissioner"] else agreement["payers"][0][0]
                    units[(payer, service, cell["currency"], cell["month"])] += cell["quantity"]
                for (payer, service, currency, month), quantity in units.items():
                    unit_price = next(p for c, p, f, t in prices[component["prices"]] if c == currency and f <= month <= t)
                    mff = dated(component.get("mff", "1"), max(month, agreement["term"][0]))
                    lines[(agreement["id"], component["id"], payer, service, currency, month)] = pence(quantity * unit_price * mff)
    return lines


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> BookSummary:
    """A small book shared by the module's quick tests."""
    return write_book(tmp_path_factory.mktemp("book") / "book", SMALL, rows=SMALL_ROWS)


def test_same_seed_gives_identical_files_and_another_seed_another_book(book: BookSummary, tmp_path: Path) -> None:
    """A book is reproducible from its seed and sizes, byte for byte."""
    again = write_book(tmp_path / "again", SMALL, rows=SMALL_ROWS)
    assert digests(again.root) == digests(book.root)
    assert again.files == book.files
    other = write_book(tmp_path / "other", SMALL, rows=SMALL_ROWS, seed=7)
    mine, theirs = digests(book.root), digests(other.root)
    assert mine["data/activity/activity-0001.parquet"] != theirs["data/activity/activity-0001.parquet"]
    assert mine["prices/national-2025.csv"] == theirs["prices/national-2025.csv"]


def test_every_component_kind_appears(book: BookSummary) -> None:
    """Every kind of the contract language, primes, alliances and shared contracts appear in a book of 20."""
    contracts = contract_texts(book.root)
    kinds = Counter(c["kind"] for contract in contracts for a in agreements(contract) for c in a["components"])
    assert set(kinds) == KINDS
    assert kinds == Counter(book.kinds)
    assert len(contracts) == SMALL == len(book.contracts)
    assert any(contract.get("subcontracts") for contract in contracts), "no prime with sub-contractors"
    assert any(len(contract.get("members", [])) >= 2 for contract in contracts), "no alliance with members"
    assert any(len(contract.get("commissioners", [])) == 2 for contract in contracts), "no contract shared by two ICBs"
    assert book.icbs == ["ICB-01", "ICB-02"]


def test_activity_rows_belong_to_one_contract_each(book: BookSummary) -> None:
    """The rows asked for, each provider–commissioner pair in one contract only, so nothing is priced twice."""
    owners: dict[tuple[str, str], str] = {}
    for contract in contract_texts(book.root):
        for agreement in agreements(contract)[:1]:
            for provider in agreement["providers"]:
                for icb in agreement["commissioners"]:
                    assert (provider, icb) not in owners, f"{provider} for {icb} is in {owners.get((provider, icb))} and {contract['id']}"
                    owners[(provider, icb)] = contract["id"]
    cells = activity_cells(book.root)
    files = book.root / "data" / "activity" / "*.parquet"
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT count(*), count(DISTINCT activity_id) FROM read_parquet('{files}')").fetchone()
    assert rows == (SMALL_ROWS, SMALL_ROWS)
    assert {(c["provider"], c["commissioner"]) for c in cells} <= set(owners)


def test_check_passes_and_the_files_load(book: BookSummary) -> None:
    """`carecontracts check` accepts the book, with no activity row paid twice, and every
    contract has a plain-words header."""
    result = CliRunner().invoke(app, ["check", "-w", str(book.root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"No activity row in 2025-26 is paid twice by one payer ({SMALL_ROWS:,} rows checked)" in result.output
    workspace = Workspace.open(book.root)
    assert check_files(workspace) == []
    assert len(load_contracts(workspace.contracts_dir, workspace.price_lists(), workspace.root)) == SMALL
    for path in workspace.contracts_dir.glob("*.yaml"):
        assert path.read_text().startswith("# "), f"{path.name} has no plain-words header"


def test_most_contracts_are_block_cost_per_case_and_quality(tmp_path: Path) -> None:
    """Realistic proportions at 300 contracts, every sort of provider, one ICB per ~200 contracts."""
    summary = write_book(tmp_path / "proportions", 300, rows=0)
    contracts = contract_texts(summary.root)
    assert len(contracts) == 300 and len(summary.icbs) == 2
    typical = sum({"block", "activity", "quality_incentive"} <= {c["kind"] for c in contract.get("components", [])} for contract in contracts)
    assert typical > 150
    assert 5 <= sum(bool(c.get("subcontracts")) for c in contracts) <= 30
    assert 3 <= sum(bool(c.get("members")) for c in contracts) <= 20
    assert 5 <= sum(len(c.get("commissioners", [])) == 2 for c in contracts) <= 40
    providers = {c["provider"].rsplit("-", 1)[0] for c in contracts}
    assert {"ACUTE", "ISH", "COMM", "MHT", "HOSPICE", "CHARITY", "GPLED", "PRIME", "ALLIANCE", "ICP"} <= providers
    assert write_book(tmp_path / "national", 1_000, rows=0).icbs[-1] == "ICB-05"


def test_bad_sizes_exit_2_and_write_nothing(tmp_path: Path) -> None:
    """Fewer than one contract or negative rows: a clear error, exit 2, no folder; the help teaches."""
    runner = CliRunner()
    for arguments, words in ((["--contracts", "0"], "at least 1 contract"), (["--contracts", "5", "--rows", "-1"], "cannot be negative")):
        target = tmp_path / "never"
        result = runner.invoke(app, ["init", str(target), *arguments])
        assert result.exit_code == 2 and words in result.output, result.output
        assert not target.exists()
    help_text = runner.invoke(app, ["init", "--help"], env={"COLUMNS": "200"}).output
    assert "contract book" in help_text and "activity rows in the whole book" in help_text


def test_init_writes_a_book_with_the_rows_asked_for(tmp_path: Path) -> None:
    """The CLI writes a book, even with no activity at all."""
    result = CliRunner().invoke(app, ["init", str(tmp_path / "cli"), "--contracts", "3", "--rows", "0", "--seed", "5"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "3 contracts across 2 ICBs, 0 activity rows" in result.output


def test_block_and_cost_per_case_lines_to_the_penny(tmp_path: Path) -> None:
    """The engine's block and cost-per-case lines equal the ones worked out here from the files."""
    summary = write_book(tmp_path / "priced", BOOK_CONTRACTS, rows=BOOK_CONTRACTS * BOOK_ROWS_PER_CONTRACT)
    workspace = Workspace.open(summary.root)
    checked = check_workspace(workspace)
    assert checked.problems == [] and checked.activity_rows  # no activity row paid twice
    load_workspace(workspace)
    engine = Engine.duckdb(workspace.warehouse_path)
    try:
        contracts = load_contracts(workspace.contracts_dir, workspace.price_lists(), workspace.root)
        lines = statement_lines(engine, contracts, workspace.year, RunTables.from_engine(engine)).to_pylist()
    finally:
        engine.close()
    texts = contract_texts(summary.root)
    if BOOK_CONTRACTS >= 60:  # what makes the book worth pricing to the penny
        assert {k["kind"] for contract in texts for c in agreements(contract) for k in c["components"]} == KINDS
        assert any(c.get("subcontracts") for c in texts) and any(len(c.get("members", [])) >= 2 for c in texts)
        assert any(len(c.get("commissioners", [])) == 2 for c in texts)

    blocks = {(c["id"], k["id"]) for contract in texts for c in agreements(contract) for k in c["components"] if k["kind"] == "block"}
    got_blocks: dict[tuple[str, str, str, dt.date], Decimal] = defaultdict(Decimal)
    for line in lines:
        if (line["contract"], line["component"]) in blocks:
            got_blocks[(line["contract"], line["component"], line["payer"], line["month"])] += line["amount"]
    want_blocks = expected_blocks(texts)
    assert {k: v for k, v in got_blocks.items() if v} == {k: v for k, v in want_blocks.items() if v}
    by_contract: dict[str, Decimal] = defaultdict(Decimal)
    for (contract, _, _, _), amount in want_blocks.items():
        by_contract[contract] += amount
    full_year = {c["id"]: sum(number(k["annual"]) for k in c["components"] if k["kind"] == "block")
                 for contract in texts for c in agreements(contract) if payable(c["term"]) == MONTHS}
    assert all(by_contract[c] == annual for c, annual in full_year.items() if annual)

    priced = {(c["id"], k["id"]) for contract in texts for c in agreements(contract) for k in c["components"] if k["kind"] == "activity"}
    got: dict[tuple[str, str, str, str, str, dt.date], Decimal] = defaultdict(Decimal)
    for line in lines:
        if (line["contract"], line["component"]) in priced:
            got[(line["contract"], line["component"], line["payer"], line["service"], line["currency"], line["month"])] += line["amount"]
    want = expected_cost_per_case(summary.root, texts)
    assert len(want) > BOOK_CONTRACTS  # many lines, not a handful
    assert dict(got) == want
    totals_got: dict[str, Decimal] = defaultdict(Decimal)
    totals_want: dict[str, Decimal] = defaultdict(Decimal)
    for key, amount in got.items():
        totals_got[key[0]] += amount
    for key, amount in want.items():
        totals_want[key[0]] += amount
    assert totals_got == totals_want
