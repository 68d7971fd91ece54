"""Readers for the published layouts, on small files whose figures are worked by hand."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from carecontracts.audit.readers import Layout, RowFilter, band_columns, detect_layout, open_file, parse_month, read_ae, read_rtt
from carecontracts.examples.published import AE_COLUMNS, rtt_band_columns, rtt_columns
from carecontracts.problems import ProblemsError


def test_band_headings_in_every_published_spelling() -> None:
    found = band_columns(["Period", "Gt 00 To 01 Weeks SUM 1", "Gt 17 To 18 Weeks SUM 1", "Gt 52 Weeks SUM 1", ">17-18", "52 plus", "52+", "18-19 weeks", "Total"])
    assert [(c, lo, hi) for c, lo, hi in found] == [
        ("Gt 00 To 01 Weeks SUM 1", 0, 1), ("Gt 17 To 18 Weeks SUM 1", 17, 18), ("Gt 52 Weeks SUM 1", 52, math.inf),
        (">17-18", 17, 18), ("52 plus", 52, math.inf), ("52+", 52, math.inf), ("18-19 weeks", 18, 19),
    ]
    assert detect_layout(rtt_columns()) is Layout.RTT
    assert detect_layout(list(AE_COLUMNS)) is Layout.AE
    assert detect_layout(["provider", "month", "percent_4h"]) is Layout.LONG


@pytest.mark.parametrize(("text", "month"), [("RTT-MARCH-2026", dt.date(2026, 3, 1)), ("MSitAE-APRIL-2024", dt.date(2024, 4, 1)),
                                             ("2026-03", dt.date(2026, 3, 1)), ("2026-03-31", dt.date(2026, 3, 1)), ("Mar-26", dt.date(2026, 3, 1)),
                                             ("RTT-Sept-2025", None), ("soon", None)])
def test_periods_are_read_as_months(text: str, month: dt.date | None) -> None:
    assert parse_month(text) == month


def rtt_file(path: Path, rows: list[tuple[str, str, str, str, list[int]]]) -> Path:
    """A few rows of the full CSV: provider, commissioner, part, function, 53 band counts."""
    header = rtt_columns()
    lines = [",".join(header)]
    for provider, commissioner, part, function, bands in rows:
        ids = ["RTT-MARCH-2026", "Y56", "LONDON", provider, f"{provider} Trust", "QZ0", "ICB", commissioner, f"{commissioner} ICB",
               part, "Completed Pathways For Admitted Patients", function, "Total" if function == "C_999" else "Other"]
        lines.append(",".join(ids + [str(b) for b in bands] + [str(sum(bands)), "0", str(sum(bands))]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rtt_keeps_the_total_function_sums_by_group_and_places_the_christmas_trough(tmp_path: Path) -> None:
    a = [10] * 53
    b = [1] * 53
    path = rtt_file(tmp_path / "rtt.csv", [("P1", "C1", "Part_1A", "C_999", a), ("P1", "C1", "Part_1A", "C_110", b),
                                           ("P1", "C2", "Part_1A", "C_999", a), ("P2", "C1", "Part_1A", "C_999", b)])
    con, header, name = open_file(path)
    read = read_rtt(con, header, name, "provider", (), True)
    counts = read.data.counts
    assert set(counts) == {("P1", "2026-03"), ("P2", "2026-03")}
    assert counts[("P1", "2026-03")][0] == 20  # two commissioners' Total rows; the C_110 row is not counted again
    assert counts[("P2", "2026-03")].sum() == 53
    assert read.names == {"P1": "P1 Trust", "P2": "P2 Trust"}
    # Completed in March 2026: referrals of 22 Dec – 2 Jan waited 58 to 99 days.
    assert read.data.excluded["2026-03"][0] == pytest.approx((58 / 7, 100 / 7))
    assert any("Total treatment function" in n for n in read.notes)


def test_rtt_with_several_parts_says_how_to_choose_one(tmp_path: Path) -> None:
    path = rtt_file(tmp_path / "rtt.csv", [("P1", "C1", "Part_1A", "C_999", [1] * 53), ("P1", "C1", "Part_2", "C_999", [2] * 53)])
    con, header, name = open_file(path)
    with pytest.raises(ProblemsError) as raised:
        read_rtt(con, header, name, None, (), True)
    problem = raised.value.problems[0]
    assert problem.field == "RTT Part Type" and "2 RTT parts" in problem.message and "--where 'RTT Part Type=Part_1A'" in problem.expected
    con, header, name = open_file(path, [RowFilter.parse("RTT Part Type=Part_2")])
    read = read_rtt(con, header, name, None, (), True)
    assert read.data.counts[("all", "2026-03")][0] == 2
    assert read.data.excluded["2026-03"][0] == pytest.approx((88 / 7, 100 / 7))  # the list at 31 March


def test_rtt_bad_cells_are_located_and_bands_off_their_total_are_found(tmp_path: Path) -> None:
    bands = [5] * 53
    path = rtt_file(tmp_path / "rtt.csv", [("P1", "C1", "Part_1A", "C_999", bands)] * 2)
    text = path.read_text().splitlines()
    cells = text[2].split(",")
    cells[13 + 17] = "lots"  # the 17–18 week band of the second data row
    text[2] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    con, header, name = open_file(path)
    with pytest.raises(ProblemsError) as raised:
        read_rtt(con, header, name, None, (), True)
    problem = raised.value.problems[0]
    assert (problem.row, problem.field, problem.value) == (2, "Gt 17 To 18 Weeks SUM 1", "lots")
    cells[13 + 17] = "6"  # now a count, but the Total column still says 265
    text[2] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    con, header, name = open_file(path)
    read = read_rtt(con, header, name, None, (), True)
    assert [(p.row, p.value) for p in read.problems] == [(2, 265.0)]


def test_filters_name_a_missing_column_or_an_empty_result(tmp_path: Path) -> None:
    path = rtt_file(tmp_path / "rtt.csv", [("P1", "C1", "Part_1A", "C_999", [1] * 53)])
    with pytest.raises(ProblemsError, match="no column 'Part'"):
        open_file(path, [RowFilter.parse("Part=Part_1A")])
    with pytest.raises(ProblemsError) as raised:
        open_file(path, [RowFilter.parse("RTT Part Type=Part_9")])
    assert "no rows left" in raised.value.problems[0].message and "Part_1A" in raised.value.problems[0].expected
    with pytest.raises(ProblemsError, match="is not a filter"):
        RowFilter.parse("RTT Part Type")
    kept, header, _ = open_file(path, [RowFilter.parse("Provider Org Code!=P2"), RowFilter.parse("RTT Part Type=Part_1A,Part_1B")])
    assert kept.execute("SELECT count(*) FROM raw").fetchone()[0] == 1


def ae_file(path: Path, rows: list[list[str]]) -> Path:
    lines = [",".join(AE_COLUMNS)] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def ae_row(period: str, org: str, type1: str, over1: str, other: str = "0", over_other: str = "0") -> list[str]:
    values = [type1, "0", other, "0", "0", "0", over1, "-", over_other, "0", "0", "0", "0", "0", "0", "0", "0", "0"]
    return [period, org, "REGION", f"{org} Trust", *values]


def test_ae_share_within_four_hours_by_provider_month_worked_by_hand(tmp_path: Path) -> None:
    path = ae_file(tmp_path / "ae.csv", [
        ae_row("MSitAE-APRIL-2024", "P1", "1000", "80", "500", "5"),   # (1500 − 85) / 1500 = 94.333…%
        ae_row("MSitAE-APRIL-2024", "P2", "2000", "100"),               # 95%
        ae_row("MSitAE-APRIL-2024", "TOTAL", "3000", "180", "500", "5"),
        ae_row("MSitAE-MAY-2024", "P1", "", "", "400", "4"),            # blank type 1: (400 − 4) / 400 = 99%
    ])
    con, header, name = open_file(path)
    read = read_ae(con, header, name, "provider", ["1", "2", "other"])
    values = read.data
    got = {(s, p): v for s, p, v in zip(values.subject, values.period, values.value)}
    assert got == pytest.approx({("P1", "2024-04"): 100 * 1415 / 1500, ("P2", "2024-04"): 95.0, ("P1", "2024-05"): 99.0})
    assert list(values.denominator) == [1500, 400, 2000]
    assert any("TOTAL" in n for n in read.notes)
    con, header, name = open_file(path)
    type1 = read_ae(con, header, name, "provider", ["1"]).data  # type 1 only: P1 in May had none and is left out
    assert {(s, p) for s, p in zip(type1.subject, type1.period)} == {("P1", "2024-04"), ("P2", "2024-04")}


def test_ae_impossible_counts_are_located(tmp_path: Path) -> None:
    path = ae_file(tmp_path / "ae.csv", [ae_row("MSitAE-APRIL-2024", "P1", "100", "120"), ae_row("MSitAE-APRIL-2024", "P2", "100", "x")])
    con, header, name = open_file(path)
    with pytest.raises(ProblemsError) as raised:
        read_ae(con, header, name, "provider", ["1"])
    assert [(p.row, p.field, p.value) for p in raised.value.problems] == [(2, "Attendances over 4hrs Type 1", "x")]
    path = ae_file(tmp_path / "ae.csv", [ae_row("MSitAE-APRIL-2024", "P1", "100", "120")])
    con, header, name = open_file(path)
    with pytest.raises(ProblemsError, match="120 attendances over four hours but only 100"):
        read_ae(con, header, name, "provider", ["1"])
