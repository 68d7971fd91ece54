"""carecontracts.toml and the financial year: each bad setting refused by `check` and by
`pay`, naming carecontracts.toml, the line, the setting and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.errors.catalogue import Case, invoke, refused
from tests.errors.edits import append, edit

CHECK = ("check", "-w", "{ws}")
PAY = ("pay", "year", "-w", "{ws}")
TOML = "carecontracts.toml"
YEAR = 'financial_year = "2025-26"'


def year(text: str):
    return edit(TOML, YEAR, f"financial_year = {text}")


CASES = [
    Case("year-in-words-check", year('"twenty"'), CHECK, (f"{TOML}:3", "financial_year", "'twenty' is not a financial year", "such as 2025-26")),
    Case("year-in-words-pay", year('"twenty"'), PAY, (f"{TOML}:3", "financial_year", "'twenty' is not a financial year", "such as 2025-26")),
    Case("year-not-consecutive", year('"2025-27"'), CHECK, (f"{TOML}:3", "financial_year", "27 does not follow 2025")),
    Case("year-out-of-range", year('"9999-00"'), PAY, (f"{TOML}:3", "financial_year", "is not a financial year")),
    Case("year-as-number", year("2025"), CHECK, (f"{TOML}:3", "financial_year", "should be a valid string")),
    Case("year-no-contract-covers-check", year('"2030-31"'), CHECK, (f"{TOML}:3", "financial_year", "no contract's term covers any month")),
    Case("year-no-contract-covers-pay", year('"2030-31"'), PAY, (f"{TOML}:3", "financial_year", "no contract's term covers any month")),
    Case("start-month-quoted", edit(TOML, "financial_year_start_month = 4", 'financial_year_start_month = "4"'), CHECK, (f"{TOML}:4", "financial_year_start_month", "a month number, 1 to 12")),
    Case("start-month-13", edit(TOML, "financial_year_start_month = 4", "financial_year_start_month = 13"), PAY, (f"{TOML}:4", "financial_year_start_month", "1 to 12")),
    Case("backend-unknown", edit(TOML, 'backend = "duckdb"', 'backend = "oracle"'), CHECK, (f"{TOML}:6", "backend", "duckdb or spark")),
    Case("setting-misspelt", edit(TOML, "financial_year_start_month", "financial_year_start_mnth"), CHECK, (f"{TOML}:4", "financial_year_start_mnth", "unknown setting")),
    Case("budget-quoted", edit(TOML, "ICB-NEL = 84_000_000", 'ICB-NEL = "84000000"'), CHECK, (f"{TOML}:11", "budgets.ICB-NEL", "not text")),
    Case("budget-part-pence", edit(TOML, "ICB-NEL = 84_000_000", "ICB-NEL = 84_000_000.001"), PAY, (f"{TOML}:11", "budgets.ICB-NEL", "no more than 2 decimal places")),
    Case("budget-negative", edit(TOML, "ICB-NEL = 84_000_000", "ICB-NEL = -1"), CHECK, (f"{TOML}:11", "budgets.ICB-NEL", "greater than or equal to 0")),
    Case("latin-1-byte-check", append(TOML, b"# caf\xe9\n"), CHECK, (f"{TOML}:12", "byte 0xe9 is not UTF-8 text", "UTF-8")),
    Case("latin-1-byte-pay", append(TOML, b'# "caf\xe9"\n'), PAY, (f"{TOML}:12", "not UTF-8 text")),
    Case("binary-bytes", append(TOML, b"\x00\xff\x00"), CHECK, (f"{TOML}:12", "not UTF-8 text")),
    Case("currency-unknown", edit(TOML, 'currency = "GBP"', 'currency = "JPY"'), CHECK, (f"{TOML}:5", "currency", "GBP (£), USD ($) or EUR (€)")),
    Case("toml-syntax", edit(TOML, 'currency = "GBP"', "currency = GBP"), CHECK, (f"{TOML}:5", "TOML syntax error")),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_refused(example: Path, case: Case) -> None:
    refused(example, case)


def test_year_written_other_ways_passes(example: Path) -> None:
    """The year may be written 2025, 2025/26 or 2025-2026, as the README says."""
    for text in ('"2025"', '"2025/26"', '"2025-2026"'):
        edit(TOML, YEAR if text == '"2025"' else 'financial_year = "2025"', f"financial_year = {text}")(example)
        result = invoke(example, *CHECK)
        assert result.exit_code == 0, f"{text}: {result.output}"
        edit(TOML, f"financial_year = {text}", 'financial_year = "2025"')(example)
