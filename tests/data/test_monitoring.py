"""The national contract-monitoring files: files made from the specification load, are
checked as a receiving office would, reconcile (a deliberate £0.01 difference is found and
located), round-trip, and a payment run's statements are written as an ACM to the penny.
Expected values are worked by hand in tests/data/monitoring/README.md and below."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

os.environ["COLUMNS"] = "250"  # wide enough that rich does not wrap the lines looked for

from carecontracts.cli import app  # noqa: E402
from carecontracts.data.monitoring import (  # noqa: E402
    SPECIFICATION,
    FileKind,
    Placement,
    Tallies,
    financial_period,
    invoice_total,
    month_of,
    placements,
    priced_view,
    read_invoices,
    read_monitoring,
    reconcile_invoices,
    reconcile_plcm,
    write_monitoring,
)
from carecontracts.data.monitoring.read import nhs_number_valid  # noqa: E402
from carecontracts.language import load_contracts  # noqa: E402
from carecontracts.periods import FinancialYear  # noqa: E402
from carecontracts.problems import ProblemsError  # noqa: E402

FILES = Path(__file__).parent / "monitoring"
YEAR = FinancialYear.parse("2025-26")
PRICE = "CONTRACT MONITORING ACTUAL PRICE"
runner = CliRunner()


def read(name: str, **options):
    return read_monitoring(FILES / name, source=name, **options)


def located(problems) -> set[tuple[int | None, str | None]]:
    return {(p.line, p.field) for p in problems}


def test_the_specification_version_is_named() -> None:
    assert "DCB2050" in SPECIFICATION and "v2.0" in SPECIFICATION and "DCB3003" in SPECIFICATION
    assert "2025/26" in SPECIFICATION


def test_clean_acm_loads_with_exact_money() -> None:
    acm = read("acm-clean.csv", year=YEAR)
    assert acm.kind is FileKind.ACM and acm.ok and not acm.warnings
    assert acm.rows == len(acm.records) == 7
    # 17,280.20 + 3,138.30 + 682.04 + 2,000,000.00 + 25,000.00 + 4,512.37 + 8,640.10
    assert acm.total == Decimal("2059253.01")
    first = acm.records[0]
    assert first.line == 2
    assert first.get("FINANCIAL MONTH") == 7 and first.get("FINANCIAL YEAR") == "202526"
    assert first.get(PRICE) == Decimal("17280.20") and isinstance(first.get(PRICE), Decimal)
    assert first.get("CONTRACT MONITORING ACTUAL MARKET FORCES FACTOR") == Decimal("1.0461")
    assert first.get("DATE AND TIME DATA SET CREATED") == dt.datetime(2025, 11, 5, 9, 30)
    assert acm.records[3].get("ACTIVITY TREATMENT FUNCTION CODE") is None  # the BLOCK row leaves it blank


def test_clean_plcm_with_underscored_headers_loads() -> None:
    plcm = read("plcm-clean.csv", year=YEAR)
    assert plcm.kind is FileKind.PLCM and plcm.ok and not plcm.warnings
    assert plcm.rows == 12
    # 3 × 8,640.10 + 3 × 1,046.10 + 4 × 170.51 + 2,000,000.00 + 25,000.00
    assert plcm.total == Decimal("2054740.64")
    assert plcm.column("ORGANISATION IDENTIFIER (CODE OF PROVIDER)") == "ORGANISATION_IDENTIFIER_(CODE_OF_PROVIDER)"
    assert plcm.records[0].get("ACTIVITY START DATE (CONTRACT MONITORING)") == dt.date(2025, 10, 2)


def test_iap_loads() -> None:
    iap = read("iap-clean.csv", year=YEAR)
    assert iap.kind is FileKind.IAP and iap.ok and not iap.warnings
    assert iap.total == Decimal("17280.20") + Decimal("25920.30") + Decimal("2000000.00")


def test_bad_fields_are_refused_or_warned_each_located() -> None:
    acm = read("acm-bad-fields.csv", year=YEAR)
    assert not acm.ok
    assert located(acm.errors) == {
        (1, "COMMENTS"),
        (2, "FINANCIAL YEAR"),
        (3, "FINANCIAL MONTH"),
        (4, "ORGANISATION IDENTIFIER (CODE OF PROVIDER)"),
        (5, PRICE),
        (6, PRICE),
        (7, "ORGANISATION IDENTIFIER (CODE OF COMMISSIONER)"),
        (8, "ACTIVITY TREATMENT FUNCTION CODE"),
    }
    assert located(acm.warnings) == {
        (9, "POINT OF DELIVERY CODE"),
        (9, "CONTRACT MONITORING ACTUAL MARKET FORCES FACTOR"),
        (10, "CONTRACT MONITORING ACTUAL ACTIVITY"),
    }
    by_line = {p.line: p for p in acm.errors}
    assert by_line[2].value == "2025/26" and "202526" in (by_line[2].expected or "")
    assert by_line[5].value == "17,280.20" and "commas" in (by_line[5].expected or "")
    assert "2 decimal places" in (by_line[6].expected or "")
    assert "unknown column 'COMMENTS'" in str(by_line[1])
    # The good rows are kept: the two warned rows on lines 9 and 10.
    assert [r.line for r in acm.records] == [9, 10]


def test_a_missing_mandatory_column_stops_the_file(tmp_path: Path) -> None:
    text = (FILES / "acm-clean.csv").read_text().replace("CONTRACT MONITORING ACTUAL PRICE", "ACTUAL PRICE")
    path = tmp_path / "acm.csv"
    path.write_text(text)
    acm = read_monitoring(path, FileKind.ACM, source="acm.csv")
    assert acm.records == []
    messages = [str(p) for p in acm.errors]
    assert any("unknown column 'ACTUAL PRICE'" in m and "did you mean CONTRACT MONITORING ACTUAL PRICE" in m for m in messages)
    assert any("missing mandatory column CONTRACT MONITORING ACTUAL PRICE" in m for m in messages)


def test_doubtful_rows_are_accepted_with_warnings(tmp_path: Path) -> None:
    lines = (FILES / "acm-clean.csv").read_text().splitlines()
    lines[3] = lines[3].replace(",5,852.55,1.0461,4,682.04,", ",5,852.55,1.0461,,682.04,")  # OPFA money, no activity
    lines[1] = lines[1].replace("2025-11-05T09:30:00", "05/11/2025 09:30")  # not ISO
    lines.append(lines[2].replace(",3,3138.30,1.0461,3,3138.30,", ",0,0.00,1.0461,-1,-1046.10,"))  # line 9: a day case taken back
    lines.append(lines[7])  # line 10 repeats line 8, QRV's spell
    path = tmp_path / "acm.csv"
    path.write_text("\n".join(lines) + "\n")
    acm = read_monitoring(path, year=YEAR, source="acm.csv")
    assert acm.ok and len(acm.records) == 9
    assert located(acm.warnings) == {
        (2, "DATE AND TIME DATA SET CREATED"),
        (4, "CONTRACT MONITORING ACTUAL ACTIVITY"),
        (9, "CONTRACT MONITORING ACTUAL ACTIVITY"),
        (9, None),  # and it is at the same place as line 3
        (10, None),
    }
    assert "£682.04 with no activity at point of delivery OPFA" in {(p.line, p.field): p for p in acm.warnings}[(4, "CONTRACT MONITORING ACTUAL ACTIVITY")].message
    repeats = sorted((p.line, p.message) for p in acm.warnings if p.field is None)
    assert repeats == [(9, "repeats the row on line 3"), (10, "repeats the row on line 8")]
    assert acm.total == Decimal("2059253.01") - Decimal("1046.10") + Decimal("8640.10")


def test_rows_of_another_year_are_refused() -> None:
    acm = read("acm-clean.csv", year=FinancialYear.parse("2024-25"))
    assert len(acm.errors) == 7
    assert all(p.field == "FINANCIAL YEAR" and p.value == "202526" and "202425" in p.message for p in acm.errors)


def test_nhs_numbers_are_checked(tmp_path: Path) -> None:
    assert nhs_number_valid("9434765919")
    assert not nhs_number_valid("9434765918")  # wrong check digit
    assert not nhs_number_valid("943 476 5919")
    text = (FILES / "plcm-clean.csv").read_text().replace("9434765838", "9434765839", 1)
    path = tmp_path / "plcm.csv"
    path.write_text(text)
    plcm = read_monitoring(path, source="plcm.csv")
    assert located(plcm.errors) == {(4, "NHS_NUMBER")}
    assert plcm.errors[0].value == "9434765839"


def test_financial_months_and_years() -> None:
    assert financial_period(dt.date(2025, 4, 1)) == ("202526", 1)
    assert financial_period(dt.date(2025, 10, 1)) == ("202526", 7)
    assert financial_period(dt.date(2026, 3, 1)) == ("202526", 12)
    assert month_of("202526", 10) == dt.date(2026, 1, 1)


def test_plcm_reconciles_to_the_acm_exactly() -> None:
    result = reconcile_plcm(read("acm-clean.csv"), read("plcm-clean.csv"))
    assert result.differences == []
    assert result.places == 6  # EL QMJ, DC, OPFA, BLOCK, CQUIN, EL QRV
    assert result.acm_total == result.other_total == Decimal("2054740.64")
    assert result.separate == {"DRUG": Decimal("4512.37")}


def test_a_penny_difference_is_found_and_located() -> None:
    result = reconcile_plcm(read("acm-clean.csv"), read("plcm-penny.csv"))
    assert len(result.differences) == 1
    difference = result.differences[0]
    assert difference.acm.lines == (3,) and difference.acm.amount == Decimal("3138.30")
    assert difference.other.rows == 3 and difference.other.lines == (3, 6, 9)
    assert difference.other.amount == Decimal("3138.29")  # 1,046.10 + 1,046.10 + 1,046.09
    assert difference.amount == Decimal("0.01") and difference.activity == 0
    assert dict(difference.place)["POINT OF DELIVERY CODE"] == "DC"
    text = str(difference)
    assert "acm-clean.csv:3" in text and "plcm-penny.csv (3 rows: lines 3, 6, 9)" in text
    assert "the ACM claims £0.01 more" in text


def test_tallies_of_a_streamed_file_match() -> None:
    streamed = Tallies(FileKind.PLCM)
    plcm = read("plcm-penny.csv", keep=False, on_record=streamed.add)
    assert plcm.records == []
    kept = Tallies.of(read("plcm-penny.csv"))
    assert streamed.by_place == kept.by_place
    result = reconcile_plcm(read("acm-clean.csv"), plcm, streamed)
    assert [d.amount for d in result.differences] == [Decimal("0.01")]


def test_activity_differences_and_rows_on_one_side(tmp_path: Path) -> None:
    lines = (FILES / "plcm-clean.csv").read_text().splitlines()
    # Line 3 (a day case) counted twice, money unchanged; a row for a place the ACM lacks.
    lines[2] = lines[2].replace(",1,1046.1000,", ",2,1046.1000,")
    lines.append(lines[1].replace(",EL,ELECTIVE,", ",NEL,EMERGENCY,"))
    path = tmp_path / "plcm.csv"
    path.write_text("\n".join(lines) + "\n")
    result = reconcile_plcm(read("acm-clean.csv"), read_monitoring(path, source="plcm.csv"))
    by_pod = {dict(d.place)["POINT OF DELIVERY CODE"]: d for d in result.differences}
    assert set(by_pod) == {"DC", "NEL"}
    assert by_pod["DC"].amount == 0 and by_pod["DC"].activity == -1  # ACM 3, PLCM 4
    assert by_pod["NEL"].acm.rows == 0 and by_pod["NEL"].other.lines == (14,)
    assert by_pod["NEL"].amount == Decimal("-8640.10")
    assert "acm-clean.csv (no rows)" in str(by_pod["NEL"])


def test_acm_to_invoices() -> None:
    acm = read("acm-clean.csv")
    result = reconcile_invoices(acm, read_invoices(FILES / "invoices.csv", "invoices.csv"))
    assert result.places == 2
    assert len(result.differences) == 1
    difference = result.differences[0]
    assert dict(difference.place)["ORGANISATION IDENTIFIER (CODE OF COMMISSIONER)"] == "QRV"
    assert difference.acm.lines == (8,) and difference.other.lines == (3,)
    assert difference.amount == Decimal("-0.01")
    assert "acm-clean.csv:8 and invoices.csv:3" in str(difference) and "£0.01 less" in str(difference)


def test_one_invoiced_total(tmp_path: Path) -> None:
    lines = (FILES / "acm-clean.csv").read_text().splitlines()
    path = tmp_path / "acm.csv"
    path.write_text("\n".join(lines[:-1]) + "\n")  # QMJ only
    acm = read_monitoring(path, source="acm.csv")
    assert reconcile_invoices(acm, invoice_total(acm, Decimal("2050612.91"))).differences == []
    off = reconcile_invoices(acm, invoice_total(acm, Decimal("2050612.90"))).differences
    assert [d.amount for d in off] == [Decimal("0.01")]
    assert off[0].acm.rows == 6 and off[0].other.where() == "--invoice-total"
    with pytest.raises(ProblemsError, match="one total given for 2 provider, commissioner and month groups"):
        invoice_total(read("acm-clean.csv"), Decimal("1"))


def test_bad_invoice_rows_are_located(tmp_path: Path) -> None:
    path = tmp_path / "invoices.csv"
    path.write_text("provider,commissioner,month,amount\nRAL,QMJ,2025-13,10.00\nRAL,QMJ,2025-10,10.001\n")
    with pytest.raises(ProblemsError) as raised:
        read_invoices(path, "invoices.csv")
    assert located(raised.value.problems) == {(2, "month"), (3, "amount")}


@pytest.mark.parametrize("name", ["acm-clean.csv", "plcm-clean.csv", "iap-clean.csv"])
def test_files_round_trip(name: str, tmp_path: Path) -> None:
    first = read(name, year=YEAR)
    written = tmp_path / "once.csv"
    assert write_monitoring(written, first.kind, first.records) == len(first.records)
    second = read_monitoring(written, year=YEAR)
    assert second.kind is first.kind and second.ok and not second.warnings
    assert [r.values for r in second.records] == [r.values for r in first.records]
    assert second.total == first.total
    again = tmp_path / "twice.csv"
    write_monitoring(again, second.kind, second.records)
    assert again.read_bytes() == written.read_bytes()


def statement(contract: str, component: str, payer: str, payee: str, month: dt.date, amount: str,
              quantity: str | None = None, service: str | None = None, currency: str | None = None) -> dict:
    return {
        "scenario": "actual", "contract": contract, "component": component, "payer": payer, "payee": payee, "month": month,
        "quantity": None if quantity is None else Decimal(quantity), "rate": None, "amount": Decimal(amount),
        "basis": f"{component} basis", "service": service, "currency": currency,
    }


NOV, JAN = dt.date(2025, 11, 1), dt.date(2026, 1, 1)
LINES = pa.Table.from_pylist([
    statement("ACUTE-2025", "api.fixed", "ICB-A", "ACUTE-FT", NOV, "1000000.00"),
    statement("ACUTE-2025", "api.variable", "ICB-A", "ACUTE-FT", NOV, "-1234.56", "3"),
    statement("ACUTE-2025", "cquin", "ICB-A", "ACUTE-FT", NOV, "12500.00"),
    statement("ISP-2025", "cases", "ICB-A", "ISP", NOV, "17280.20", "2", "elective", "HN12F"),
    statement("ISP-2025", "cases", "ICB-A", "ISP", NOV, "341.03", "2", "outpatients", "WF01B"),
    statement("ISP-2025", "cases", "ICB-A", "ISP", JAN, "0.01", "1", "elective", "HN12F"),
    {**statement("ISP-2025", "cases", "ICB-A", "ISP", NOV, "999.99", "1", "elective", "HN12F"), "scenario": "whatif"},
])
WHERE = {
    ("ACUTE-2025", "api"): Placement("aligned_payment"),
    ("ACUTE-2025", "cquin"): Placement("quality_incentive"),
    ("ISP-2025", "cases"): Placement("activity", {"elective": "EL"}, Decimal("1.0461")),
}
CODES = {"ICB-A": "QMJ", "ACUTE-FT": "RAL", "ISP": "NT4"}


def test_the_priced_view_is_an_acm_to_the_penny(tmp_path: Path) -> None:
    records = priced_view(LINES, WHERE, CODES, dt.datetime(2026, 2, 5, 9, 0))
    path = tmp_path / "view.csv"
    write_monitoring(path, FileKind.ACM, records)
    acm = read_monitoring(path, year=YEAR)
    assert acm.ok and not acm.warnings
    # The actual lines: 1,000,000.00 − 1,234.56 + 12,500.00 + 17,280.20 + 341.03 + 0.01 (the what-if line left out)
    assert acm.total == Decimal("1028886.68")
    rows = [(r.get("POINT OF DELIVERY CODE"), r.get("FINANCIAL MONTH"), r.get("CONTRACT MONITORING ACTUAL ACTIVITY"), r.get(PRICE)) for r in acm.records]
    assert rows == [
        ("BLOCK", 8, Decimal(0), Decimal("1000000.00")),
        ("ADJUSTMENT", 8, Decimal(0), Decimal("-1234.56")),
        ("CQUIN", 8, Decimal(0), Decimal("12500.00")),
        ("EL", 8, Decimal(2), Decimal("17280.20")),
        ("OTHER", 8, Decimal(2), Decimal("341.03")),  # outpatients names no single point of delivery
        ("EL", 10, Decimal(1), Decimal("0.01")),  # January is month 10
    ]
    isp = acm.records[3]
    assert isp.get("ORGANISATION IDENTIFIER (CODE OF PROVIDER)") == "NT4" and isp.get("ORGANISATION IDENTIFIER (CODE OF COMMISSIONER)") == "QMJ"
    assert isp.get("LOCAL CONTRACT CODE") == "ISP-2025" and isp.get("LOCAL CONTRACT MONITORING CODE") == "cases"
    assert isp.get("TARIFF CODE") == "HN12F" and isp.get("LOCAL POINT OF DELIVERY CODE") == "elective"
    assert isp.get("CONTRACT MONITORING ACTUAL MARKET FORCES FACTOR") == Decimal("1.0461")
    assert acm.records[0].get("CONTRACT MONITORING ACTUAL MARKET FORCES FACTOR") is None
    only_january = priced_view(LINES, WHERE, CODES, months=[JAN])
    assert [r.get(PRICE) for r in only_january] == [Decimal("0.01")]


def test_the_priced_view_needs_codes_and_known_components() -> None:
    with pytest.raises(ProblemsError) as raised:
        priced_view(LINES, {k: v for k, v in WHERE.items() if k[0] == "ISP-2025"}, {"ICB-A": "QMJ"})
    messages = [str(p) for p in raised.value.problems]
    assert any("component api.fixed of contract ACUTE-2025 is not in the contracts" in m for m in messages)
    assert not any("party ISP " in m for m in messages)  # ISP is written as it is: it is an ODS-like code already
    with pytest.raises(ProblemsError, match="party ISP has no ODS code"):
        priced_view(LINES.filter(pa.compute.equal(LINES["contract"], "ISP-2025")), WHERE, {"ICB-A": "QMJ"} | {"ISP": "ISP-LTD"})


def test_placements_come_from_the_contracts(tmp_path: Path) -> None:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "acute.yaml").write_text(
        "id: ACUTE-2025\ncommissioner: ICB-A\nprovider: ACUTE\nterm: {start: 2025-04-01, end: 2026-03-31}\n"
        "services:\n  elective: {pod: [EL]}\n  outpatients: {pod: [OPFA, OPFUP]}\n"
        "components:\n  - {id: tariff, kind: activity, prices: national, mff: 1.05}\n  - {id: core, kind: block, annual: 1_200_000}\n"
    )
    found = placements(load_contracts(tmp_path / "contracts", {"national"}, tmp_path))
    assert found[("ACUTE-2025", "tariff")] == Placement("activity", {"elective": "EL"}, Decimal("1.05"))
    assert found[("ACUTE-2025", "core")].kind == "block"


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_check_and_reconcile_exit_codes(tmp_path: Path) -> None:
    clean = invoke("monitoring", "check", FILES / "acm-clean.csv", FILES / "plcm-clean.csv", "--year", "2025-26", "-w", tmp_path)
    assert clean.exit_code == 0, clean.output
    assert "£2,059,253.01" in clean.output and "accepted" in clean.output
    bad = invoke("monitoring", "check", FILES / "acm-bad-fields.csv", "--year", "2025-26", "-w", tmp_path)
    assert bad.exit_code == 2
    assert "acm-bad-fields.csv:6" in bad.output and "'17280.205' has 3 decimal places" in bad.output

    agreed = invoke("monitoring", "reconcile", "--acm", FILES / "acm-clean.csv", "--plcm", FILES / "plcm-clean.csv", "-w", tmp_path)
    assert agreed.exit_code == 0, agreed.output
    assert "6 places compared, 6 agree" in agreed.output

    penny = invoke("monitoring", "reconcile", "--acm", FILES / "acm-clean.csv", "--plcm", FILES / "plcm-penny.csv",
                   "--invoice", FILES / "invoices.csv", "-w", tmp_path)
    assert penny.exit_code == 1, penny.output
    assert "acm-clean.csv:3" in penny.output and "(3 rows: lines 3, 6, 9)" in penny.output and "£0.01" in penny.output
    assert "invoices.csv:3" in penny.output and "the ACM claims £0.01 less" in penny.output

    refused = invoke("monitoring", "reconcile", "--acm", FILES / "acm-bad-fields.csv", "--plcm", FILES / "plcm-clean.csv", "-w", tmp_path)
    assert refused.exit_code == 2 and "not reconciled" in refused.output


def test_cli_write_acm_from_a_payment_run(tmp_path: Path) -> None:
    from tests.cli.test_cli import ACTIVITY, ACUTE, BLOCK, PRICES

    root = tmp_path / "ws"
    for folder in ("contracts", "data/activity", "prices"):
        (root / folder).mkdir(parents=True)
    (root / "carecontracts.toml").write_text('name = "Tiny ICB"\nfinancial_year = "2025-26"\n')
    (root / "contracts" / "community.yaml").write_text(BLOCK.replace("provider: COMM", "provider: COMM-CT"))
    (root / "contracts" / "acute.yaml").write_text(ACUTE)
    (root / "data" / "activity" / "nov.csv").write_text(ACTIVITY)
    (root / "prices" / "national.csv").write_text(PRICES)
    assert invoke("load", "-w", root).exit_code == 0
    assert invoke("pay", "2025-11", "-w", root, "--xlsx", tmp_path / "nov.xlsx").exit_code == 0

    out = tmp_path / "acm-view.csv"
    missing = invoke("monitoring", "write-acm", out, "--period", "2025-11", "-w", root, "--code", "ICB-A=QMJ")
    assert missing.exit_code == 2 and "party COMM-CT has no ODS code" in missing.output

    (tmp_path / "codes.csv").write_text("party,ods_code\nICB-A,QMJ\nCOMM-CT,RYX\n")
    written = invoke("monitoring", "write-acm", out, "--period", "2025-11", "-w", root, "--codes", tmp_path / "codes.csv",
                     "--code", "ACUTE=RAL", "--created", "2025-12-05T10:00:00")
    assert written.exit_code == 0, written.output
    # November: block £100,000.00; activity 2 × £6,000 × 1.05 = £12,600.00 and £800.50 × 1.05 = £840.525 → £840.53
    assert "£113,440.53, the statements' total of £113,440.53" in written.output
    acm = read_monitoring(out, year=YEAR)
    assert acm.ok and acm.total == Decimal("113440.53")
    assert sorted((r.get("POINT OF DELIVERY CODE"), r.get("ORGANISATION IDENTIFIER (CODE OF PROVIDER)")) for r in acm.records) == [
        ("BLOCK", "RYX"), ("EL", "RAL"), ("EL", "RAL")]
    copy = tmp_path / "copy.csv"
    shutil.copy(out, copy)
    checked = invoke("monitoring", "check", copy, "-w", root)
    assert checked.exit_code == 0, checked.output


def test_a_prior_period_adjustment_is_written_at_adjustment_without_activity() -> None:
    adjusted = pa.Table.from_pylist([
        {**statement("ISP-2025", "cases", "ICB-A", "ISP", JAN, "200.00", "2", "elective", "HN12F"), "adjusts": dt.date(2025, 10, 1)},
    ])
    (record,) = priced_view(adjusted, WHERE, CODES)
    assert record.get("POINT OF DELIVERY CODE") == "ADJUSTMENT" and record.get("FINANCIAL MONTH") == 10
    assert record.get("CONTRACT MONITORING ACTUAL ACTIVITY") == Decimal(0) and record.get(PRICE) == Decimal("200.00")
    assert record.get("CONTRACT MONITORING ACTUAL MARKET FORCES FACTOR") is None
