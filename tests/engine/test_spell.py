"""Spell pricing beyond the worked case (tests/cases/spell.yaml): local prices for HRGs with
no national price, specialised top-ups, rehabilitation and palliative days, and the
problems a book or the terms can have. Every amount is worked by hand from the book below."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from carecontracts.data.books import read_books
from carecontracts.engine.backend import Engine
from carecontracts.examples.prices_workbook import NPP, write_prices_workbook
from carecontracts.problems import ProblemsError
from tests.helpers import activity, contract, price_list, run

D = Decimal
# HRG, name, OP procedure, combined, day case, elective, EL trim, non-elective, NEL trim,
# per day, short stay applies?, %, reduced tariff.
BOOK = [
    ("HN12F", "Very Major Hip Procedures", None, None, None, 6000, 5, 7000, 10, 300, "No", None, None),
    ("EB03E", "Heart Failure", None, 1600, None, None, 5, 2400, 8, 280, "Yes", None, 620),
    ("WH50B", "Not priced nationally", None, NPP, None, None, None, NPP, None, None, "No", None, None),
]
TERMS = """
id: ACUTE
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
services:
  ortho: {service: [ortho]}
  medicine: {service: [medicine]}
components:
  - id: spells
    kind: spell
    book: nps
"""


@pytest.fixture
def book(tmp_path: Path) -> pa.Table:
    return read_books([write_prices_workbook(tmp_path / "nps.xlsx", BOOK, None, None)])


def priced(duck: Engine, book: pa.Table, terms: str, rows: list[dict], **tables: pa.Table) -> list[dict]:
    return run(duck, [contract(TERMS + terms)], activity([{"service": "medicine", **row} for row in rows]), books=book, **tables).to_pylist()


def test_a_specialised_top_up_raises_its_services_spells(duck: Engine, book: pa.Table) -> None:
    lines = priced(duck, book, "    mff: 1.05\n    topups: {ortho: 10}\n", [
        {"service": "ortho", "currency": "HN12F", "pod": "EL"},
        {"service": "medicine", "currency": "HN12F", "pod": "EL"},
    ])
    by_service = {line["service"]: line for line in lines}
    # ortho: £6,000 × 1.10 × 1.05 = £6,930.00; medicine, no top-up: £6,000 × 1.05 = £6,300.00.
    assert by_service["ortho"]["amount"] == D("6930.00") and "+ specialised top-up 10%" in by_service["ortho"]["basis"]
    assert by_service["medicine"]["amount"] == D("6300.00")


def test_rehabilitation_and_palliative_days_do_not_count_towards_the_trim_point(duck: Engine, book: pa.Table) -> None:
    lines = priced(duck, book, "", [
        # 20 days, 3 in rehabilitation and 2 palliative: 15 count, 5 past the trim point of 10.
        {"currency": "HN12F", "pod": "NEL", "start_date": dt.date(2025, 4, 1), "end_date": dt.date(2025, 4, 21),
         "rehabilitation_days": 3, "palliative_days": 2},
    ])
    # £7,000 + 5 × £300 = £8,500.00
    assert [(line["amount"], line["quantity"]) for line in lines] == [(D("8500.00"), D(1))]
    assert "+ 5 excess bed days past the trim point of 10 days × £300.00" in lines[0]["basis"]


def test_the_reduced_short_stay_tariff_is_used_as_the_book_gives_it(duck: Engine, book: pa.Table) -> None:
    lines = priced(duck, book, "", [
        {"currency": "EB03E", "pod": "NEL", "start_date": dt.date(2025, 4, 1), "end_date": dt.date(2025, 4, 1), "age": 70},
        {"currency": "HN12F", "pod": "NEL", "start_date": dt.date(2025, 5, 1), "end_date": dt.date(2025, 5, 2), "age": 70},
    ])
    # EB03E gives its reduced tariff, £620; HN12F is not flagged, so a 1-day stay is paid in full, £7,000.
    assert [line["amount"] for line in lines] == [D("620.00"), D("7000.00")]


def test_no_national_price_is_not_priced_unless_the_terms_give_a_local_price(duck: Engine, book: pa.Table) -> None:
    rows = [{"currency": "WH50B", "pod": "DC"}, {"currency": "WH50B", "pod": "NEL"}]
    lines = priced(duck, book, "", rows)
    assert [line["amount"] for line in lines] == [D("0.00"), D("0.00")]
    assert all("no national price, not priced" in line["basis"] for line in lines)
    local = priced(duck, book, "    mff: 1.1\n    local_prices: local\n", rows, prices=price_list({"WH50B": "750"}, "local"))
    # £750 from the local price list × MFF 1.1 = £825.00 each.
    assert [line["amount"] for line in local] == [D("825.00"), D("825.00")]
    assert all("no national price, at local price list local × £750.00" in line["basis"] for line in local)


def test_an_hrg_or_pod_the_book_cannot_price_is_refused_naming_it(duck: Engine, book: pa.Table) -> None:
    with pytest.raises(ProblemsError) as raised:
        priced(duck, book, "", [{"currency": "ZZ99Z", "pod": "EL"}, {"currency": "HN12F", "pod": "DC"}, {"currency": "HN12F", "pod": "OPFA"}])
    said = " | ".join(str(p) for p in raised.value.problems)
    assert "contracts/test.yaml:12 components[0].book: prices workbook 'nps' has no price for HN12F day case spell; ZZ99Z ordinary elective spell" in said
    assert "components[0].pods: spells of pod OPFA have no price point" in said


def test_terms_are_checked_before_pricing() -> None:
    with pytest.raises(ProblemsError) as raised:
        contract(TERMS + "    trim: 5\n    topups: {surgery: 4, ortho: 4.125}\n    pods: {DC: daycase}\n", price_lists={"nps.xlsx"})
    said = " | ".join(str(p) for p in raised.value.problems)
    assert "components[0].trim: unknown key 'trim'" in said
    assert "components[0].topups.ortho" in said and "components[0].pods.DC" in said
    with pytest.raises(ProblemsError) as raised:
        contract(TERMS + "    topups: {surgery: 4}\n    local_prices: local\n", price_lists={"tariff", "other.xlsx"})
    said = " | ".join(str(p) for p in raised.value.problems)
    assert "components[0].book: prices workbook 'nps' not found (expected a file prices/nps.xlsx; known: other)" in said
    assert "components[0].local_prices: price list 'local' not found" in said
    assert "components[0].topups.surgery: top-up for service 'surgery', which this component does not measure" in said


def test_dated_books_price_each_month_from_the_book_in_force(duck: Engine, book: pa.Table, tmp_path: Path) -> None:
    later = [("HN12F", "Very Major Hip Procedures", None, None, None, 6500, 5, 7500, 10, 320, "No", None, None)]
    both = pa.concat_tables([book, read_books([write_prices_workbook(tmp_path / "nps-2026.xlsx", later, None, None)])])
    terms = "\n".join(TERMS.splitlines()[:-1]) + "\n    book:\n      - {from: 2025-04-01, to: 2025-09-30, book: nps}\n      - {from: 2025-10-01, book: nps-2026}\n"
    lines = run(duck, [contract(terms)], activity([
        {"service": "medicine", "currency": "HN12F", "pod": "EL", "end_date": dt.date(2025, 9, 30), "start_date": dt.date(2025, 9, 30)},
        {"service": "medicine", "currency": "HN12F", "pod": "EL", "end_date": dt.date(2025, 10, 1), "start_date": dt.date(2025, 10, 1)},
    ]), books=both).to_pylist()
    # September from nps at £6,000; October from nps-2026 at £6,500.
    assert [(line["month"], line["amount"]) for line in lines] == [(dt.date(2025, 9, 1), D("6000.00")), (dt.date(2025, 10, 1), D("6500.00"))]
    assert "book nps issue" in lines[0]["basis"] and "book nps-2026 issue" in lines[1]["basis"]
    with pytest.raises(ProblemsError) as raised:
        contract("\n".join(TERMS.splitlines()[:-1]) + "\n    book:\n      - {from: 2025-04-01, to: 2025-09-30, book: nps}\n"
                 "      - {from: 2025-11-01, book: nps-2027}\n", price_lists={"nps.xlsx"})
    said = " | ".join(str(p) for p in raised.value.problems)
    assert "components[0].book: no book covers 2025-10-01 to 2025-10-31" in said
    assert "components[0].book[1].book: prices workbook 'nps-2027' not found" in said


def test_attendances_are_priced_by_treatment_function_and_department_type(duck: Engine, tmp_path: Path) -> None:
    illustrative = read_books([write_prices_workbook(tmp_path / "nps.xlsx")])
    terms = "    pods: {OPFA: first_single, OPFUPMP: follow_up_multi, AE: ae, AE3: ae_type_3, OPPROC: outpatient_procedure}\n"
    lines = priced(duck, illustrative, terms, [
        {"currency": "110", "pod": "OPFA"}, {"currency": "110", "pod": "OPFA"}, {"currency": "300", "pod": "OPFUPMP"},
        {"currency": "VB11Z", "pod": "AE"}, {"currency": "VB11Z", "pod": "AE3"}, {"currency": "LB40F", "pod": "OPPROC"},
    ])
    found = {(line["currency"], line["amount"]) for line in lines}
    # The workbook's 2 OP attendances sheet: TFC 110 first single £165 (× 2 = £330), TFC 300
    # follow-up multi-professional £150; 3 A&E: VB11Z £95 at type 1 and 2 departments, £45 at
    # type 3; 1 APC & OPROC: LB40F's outpatient procedure tariff £240.
    assert found == {("110", D("330.00")), ("300", D("150.00")), ("VB11Z", D("95.00")), ("VB11Z", D("45.00")), ("LB40F", D("240.00"))}
    assert any(line["basis"].startswith("2 first attendances (single professional) of 110 × £165.00") for line in lines)
