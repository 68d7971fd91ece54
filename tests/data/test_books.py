"""Prices workbooks in the published layout: read exactly, or refused naming file, sheet,
row and column, never half-read."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from carecontracts.data.books import read_books
from carecontracts.examples.prices_workbook import APC_ROWS, ILLUSTRATIVE, write_prices_workbook
from carecontracts.problems import ProblemsError


def rows_by(table, currency: str, point: str) -> dict:
    found = [r for r in table.to_pylist() if r["currency"] == currency and r["point"] == point]
    assert len(found) == 1, found
    return found[0]


def test_the_illustrative_workbook_is_read_as_published(tmp_path: Path) -> None:
    books = read_books([write_prices_workbook(tmp_path / "nps.xlsx")])
    # FD05B: combined £520 is its day case and its elective price; its reduced short stay
    # tariff is 30% (a cell formatted as a percent holding 0.3) of £910 = £273.00.
    day_case = rows_by(books, "FD05B", "day_case")
    assert (day_case["price"], day_case["combined"], day_case["national"]) == (Decimal("520"), True, True)
    emergency = rows_by(books, "FD05B", "non_elective")
    assert (emergency["trim"], emergency["excess_day"], emergency["short_stay"]) == (4, Decimal("290"), True)
    assert (emergency["short_stay_percent"], emergency["short_stay_price"]) == ("30", Decimal("273.00"))
    # EB03E gives its reduced tariff, £620, which is used as given.
    assert rows_by(books, "EB03E", "non_elective")["short_stay_price"] == Decimal("620")
    # LB40F has its own day case and elective prices, not a combined one.
    assert rows_by(books, "LB40F", "day_case")["price"] == Decimal("1210") and not rows_by(books, "LB40F", "day_case")["combined"]
    unpriced = rows_by(books, "WH50B", "non_elective")
    assert (unpriced["national"], unpriced["price"]) == (False, None)
    assert rows_by(books, "110", "follow_up_multi")["price"] == Decimal("118")
    assert rows_by(books, "VB11Z", "ae_type_3")["price"] == Decimal("45")
    assert {r["book"] for r in books.to_pylist()} == {"nps"}
    sheet = load_workbook(tmp_path / "nps.xlsx")["1 APC & OPROC"]
    assert sheet.cell(row=2, column=1).value == ILLUSTRATIVE


def test_a_bad_cell_is_refused_naming_file_sheet_row_and_column(tmp_path: Path) -> None:
    rows = [list(r) for r in APC_ROWS]
    rows[1][5] = "six thousand"  # HN81D's ordinary elective spell tariff (column F)
    rows[2][6] = 3.5  # FD05B's elective trim point (column G)
    rows[3][7] = 1640.255  # EB03E's non-elective tariff, a fraction of a penny (column H)
    rows.append(("HN12F", "the same HRG again", None, None, None, 1, 1, 1, 1, 1, "No", None, None))
    path = write_prices_workbook(tmp_path / "bad.xlsx", rows)
    with pytest.raises(ProblemsError) as raised:
        read_books([path], lambda p: f"prices/{p.name}")
    said = [str(p) for p in raised.value.problems]
    # Four title rows above the first HRG (row 5): HN81D is row 6, FD05B 7, EB03E 8.
    assert any(s.startswith("prices/bad.xlsx row 6 sheet '1 APC & OPROC' column F (Ordinary elective spell tariff): 'six thousand' is not a number")
               for s in said), said
    assert any(s.startswith("prices/bad.xlsx row 7 sheet '1 APC & OPROC' column G (Ordinary elective long stay trim point (days))") for s in said), said
    assert any("row 8 sheet '1 APC & OPROC' column H (Non-elective spell tariff): 1640.255 is not a price" in s for s in said), said
    assert any("row 11 sheet '1 APC & OPROC' column A (HRG code): HN12F is also at row 5" in s for s in said), said
    assert all("expected" in s for s in said)


def test_a_missing_column_or_sheet_is_refused(tmp_path: Path) -> None:
    path = write_prices_workbook(tmp_path / "cut.xlsx")
    workbook = load_workbook(path)
    workbook["1 APC & OPROC"].delete_cols(13)  # Reduced short stay emergency tariff
    del workbook["2 OP attendances"]
    workbook.create_sheet("2 Outpatient attendances").append(["Treatment function code", "Treatment function name"])
    workbook.save(path)
    with pytest.raises(ProblemsError) as raised:
        read_books([path])
    said = " | ".join(str(p) for p in raised.value.problems)
    assert "sheet '1 APC & OPROC' has no column 'Reduced short stay emergency tariff'" in said
    assert "sheet '2 Outpatient attendances' has no column 'First attendance - single professional'" in said
    other = tmp_path / "other.xlsx"
    workbook = load_workbook(path)
    for name in list(workbook.sheetnames):
        if "APC" in name:
            del workbook[name]
    workbook.save(other)
    with pytest.raises(ProblemsError, match="has no 'APC & OPROC' sheet"):
        read_books([other])


def test_a_reduced_short_stay_tariff_needs_its_price_or_percent(tmp_path: Path) -> None:
    rows = [("FD05B", "Abdominal Pain", None, 520, None, None, 3, 910, 4, 290, "Yes", None, None)]
    with pytest.raises(ProblemsError, match="neither its % nor its price is given"):
        read_books([write_prices_workbook(tmp_path / "x.xlsx", rows, None, None)])
    rows = [("FD05B", "Abdominal Pain", None, 520, None, None, 3, 910, 4, 290, "Maybe", None, None)]
    with pytest.raises(ProblemsError, match="'Maybe' is not yes or no"):
        read_books([write_prices_workbook(tmp_path / "y.xlsx", rows, None, None)])


def test_a_file_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_text("not a workbook", encoding="utf-8")
    with pytest.raises(ProblemsError, match="cannot be read as a workbook"):
        read_books([path])
