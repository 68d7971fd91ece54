"""A prices workbook re-issued after a month is closed (as the June re-issue of a year's book
applies back to 1 April): the closed month stays as issued, the difference is an adjustment
in the first open month, and each line names the issue of the book it was priced from."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from carecontracts.data.books import book_issue
from carecontracts.examples.prices_workbook import write_prices_workbook
from tests.cycle.test_cycle import adjustments, amounts, lines, run, write

SPELLS = """\
id: ACUTE-2025
provider: ACUTE
commissioner: ICB-A
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: spells, kind: spell, book: nps-2025-26, mff: 1.0}
"""
# HRG, name, OP procedure, combined, day case, elective, EL trim, non-elective, NEL trim,
# per day, short stay applies?, %, reduced tariff.
FIRST = [("HN12F", "Very Major Hip Procedures", None, None, None, 6000, 5, 7000, 10, 300, "No", None, None)]
REISSUED = [("HN12F", "Very Major Hip Procedures", None, None, None, 6100, 5, 7000, 10, 300, "No", None, None)]


def spell_workspace(tmp_path: Path) -> Path:
    """A workspace holding the spell contract, its folders ready for a workbook and activity."""
    root = tmp_path / "ws"
    (root / "contracts").mkdir(parents=True)
    (root / "data" / "activity").mkdir(parents=True)
    (root / "carecontracts.toml").write_text('name = "spells"\n', encoding="utf-8")
    (root / "contracts" / "acute.yaml").write_text(SPELLS, encoding="utf-8")
    return root


def test_a_reissued_book_changes_a_closed_month_only_by_adjustment(tmp_path: Path) -> None:
    root = spell_workspace(tmp_path)
    book = write_prices_workbook(root / "prices" / "nps-2025-26.xlsx", FIRST, None, None)
    first = book_issue(book)
    write(root / "data" / "activity" / "activity.csv", [
        "A1,P1,ACUTE,ICB-A,general,HN12F,EL,2025-04-10,2025-04-12,1",  # 2 days: within the trim point
        "A2,P2,ACUTE,ICB-A,general,HN12F,EL,2025-04-10,2025-04-12,1",
        "M1,P3,ACUTE,ICB-A,general,HN12F,EL,2025-05-01,2025-05-09,1",  # 8 days: 3 past the trim point of 5
    ])
    run("load", "-w", root)
    run("pay", "year", "-w", root)
    # April: 2 × £6,000 = £12,000.00. May: £6,000 + 3 × £300 = £6,900.00.
    assert amounts(lines(root, "2025-04"), component="spells") == [Decimal("12000.00")]
    run("close", "2025-04", "-w", root)
    issued = root / "april-issued.csv"
    run("export", issued, "-w", root, "--period", "2025-04")
    assert f"book nps-2025-26 issue {first}" in issued.read_text(encoding="utf-8")

    write_prices_workbook(book, REISSUED, None, None)
    second = book_issue(book)
    assert second != first
    run("pay", "2025-05", "-w", root)
    again = root / "april-again.csv"
    run("export", again, "-w", root, "--period", "2025-04")
    assert again.read_bytes() == issued.read_bytes()
    (made,) = adjustments(root, "2025-05")
    # April re-priced at the re-issued £6,100: 2 × £6,100 = £12,200, £200 more than issued.
    assert (made["component"], made["adjusts"], made["amount"]) == ("spells", "2025-04-01", "200.00")
    assert "re-issued prices/nps-2025-26.xlsx" in made["basis"]
    # May is open: priced from the re-issue, £6,100 + 3 × £300 = £7,000.00.
    may = [r for r in lines(root, "2025-05") if not r["adjusts"]]
    assert [(r["amount"], f"issue {second}" in r["basis"]) for r in may] == [("7000.00", True)]


def test_check_and_pay_refuse_a_bad_workbook_cell_naming_sheet_row_and_column(tmp_path: Path) -> None:
    root = spell_workspace(tmp_path)
    bad = [("HN12F", "Very Major Hip Procedures", None, None, None, "6,000.5p", 5, 7000, 10, 300, "No", None, None)]
    write_prices_workbook(root / "prices" / "nps-2025-26.xlsx", bad, None, None)
    write(root / "data" / "activity" / "activity.csv", ["A1,P1,ACUTE,ICB-A,general,HN12F,EL,2025-04-10,2025-04-12,1"])
    said = " ".join(run("check", "-w", root, code=2).output.split())
    # The header is row 4 of the sheet (under a title, a note and a blank row): HN12F is row 5.
    assert "prices/nps-2025-26.xlsx row 5" in said and "sheet '1 APC & OPROC' column F (Ordinary elective spell tariff)" in said
    assert "'6,000.5p' is not a number" in said
    assert "'6,000.5p' is not a number" in " ".join(run("load", "-w", root, code=2).output.split())
    good = [("HN12F", "Very Major Hip Procedures", None, None, None, 6000, 5, 7000, 10, 300, "No", None, None)]
    write_prices_workbook(root / "prices" / "nps-2025-26.xlsx", good, None, None)
    run("load", "-w", root)
    write_prices_workbook(root / "prices" / "nps-2025-26.xlsx", bad, None, None)
    assert "'6,000.5p' is not a number" in " ".join(run("pay", "year", "-w", root, code=2).output.split())
