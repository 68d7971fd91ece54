"""Data files: precision, unknown columns, encodings, unreadable, corrupt and missing files,
folders named like files, months outside the year, sizes the engine cannot multiply, and a
first load that fails. Each is refused at its file (and row, line or column), exit 2, with
the warehouse, records and outputs as they were."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from carecontracts.data.load import file_problem
from tests.errors.catalogue import Case, invoke, refused, state

ACTIVITY = "data/activity/partnerships.parquet"
OTHER_ACTIVITY = "data/activity/activity-0001.parquet"
BARTHEL = "data/outcomes/barthel.csv"
DEEP_LINE = 15001  # a line of barthel.csv well past the rows DuckDB samples for its header


def set_values(name: str, column: str, values: dict[int, object], kind: pa.DataType | None = None):
    """Change: rows (1-based) of a Parquet column set to values, the column as `kind`."""

    def change(ws: Path) -> None:
        table = pq.read_table(ws / name)
        position = table.column_names.index(column)
        kind_used = kind or table.schema.field(column).type
        cells = table.column(column).to_pylist()
        for row, value in values.items():
            cells[row - 1] = value
        pq.write_table(table.set_column(position, column, pa.array(cells, kind_used)), ws / name)

    return change


def as_double(name: str, column: str, values: dict[int, float]):
    """Change: a Parquet decimal column written as DOUBLE (as pandas does), some rows changed."""

    def change(ws: Path) -> None:
        table = pq.read_table(ws / name)
        cells = [None if v is None else float(v) for v in table.column(column).to_pylist()]
        for row, value in values.items():
            cells[row - 1] = value
        pq.write_table(table.set_column(table.column_names.index(column), column, pa.array(cells, pa.float64())), ws / name)

    return change


def rename_parquet_column(name: str, old: str, new: str):
    def change(ws: Path) -> None:
        table = pq.read_table(ws / name)
        pq.write_table(table.rename_columns([new if c == old else c for c in table.column_names]), ws / name)

    return change


def rename_header(name: str, old: str, new: str):
    """Change: a column of a CSV file's header renamed."""

    def change(ws: Path) -> None:
        path = ws / name
        header, rest = path.read_text(encoding="utf-8").split("\n", 1)
        columns = [new if c.strip('"') == old else c for c in header.split(",")]
        assert columns != header.split(","), f"{old} not in {header}"
        path.write_text(",".join(columns) + "\n" + rest, encoding="utf-8")

    return change


def extra_column(name: str, column: str, value: str):
    """Change: a column the dataset does not have added to every line of a CSV file."""

    def change(ws: Path) -> None:
        path = ws / name
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join([lines[0] + f",{column}"] + [line + f",{value}" for line in lines[1:]]) + "\n", encoding="utf-8")

    return change


def activity_csv_with(column: str):
    """Change: a small activity CSV (three rows of the example's) with one more column."""

    def change(ws: Path) -> None:
        table = pq.read_table(ws / ACTIVITY).slice(0, 3)
        table = table.append_column(column, pa.array(["11", "21", "11"]))
        pacsv.write_csv(table, ws / "data/activity/extra.csv")

    return change


def replace_bytes(name: str, line: int, old: bytes, new: bytes):
    """Change: bytes of one line (1-based, the header is line 1) of a file replaced."""

    def change(ws: Path) -> None:
        path = ws / name
        lines = path.read_bytes().split(b"\n")
        assert len(lines) > line and old in lines[line - 1], f"{name} has no {old!r} on line {line}"
        lines[line - 1] = lines[line - 1].replace(old, new, 1)
        path.write_bytes(b"\n".join(lines))

    return change


def replace_line_field(name: str, line: int, field: int, value: str):
    """Change: one comma-separated field (0-based) of one line of a CSV file."""

    def change(ws: Path) -> None:
        path = ws / name
        lines = path.read_text(encoding="utf-8").split("\n")
        cells = lines[line - 1].split(",")
        cells[field] = value
        lines[line - 1] = ",".join(cells)
        path.write_text("\n".join(lines), encoding="utf-8")

    return change


def folder(name: str):
    def change(ws: Path) -> None:
        (ws / name).mkdir()

    return change


def truncated(name: str):
    def change(ws: Path) -> None:
        data = (ws / name).read_bytes()
        (ws / name).write_bytes(data[: len(data) // 2])

    return change


def overwritten(name: str, fill: bytes):
    """Change: 4 KiB in the middle of a Parquet file overwritten; its footer is intact."""

    def change(ws: Path) -> None:
        data = (ws / name).read_bytes()
        middle = len(data) // 2
        (ws / name).write_bytes(data[:middle] + fill * 4096 + data[middle + 4096:])

    return change


def unreadable(name: str):
    def change(ws: Path) -> None:
        os.chmod(ws / name, 0)

    return change


def first_load(*changes):
    """Change: the warehouse removed (nothing loaded yet), then the files spoiled."""

    def change(ws: Path) -> None:
        (ws / ".carecontracts/warehouse.duckdb").unlink()
        for spoil in changes:
            spoil(ws)

    return change


def nothing(ws: Path) -> None:
    """No change: the fault is in the command."""


ROOT = pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode; test_unreadable_file simulates it")
LOAD = ("load", "-w", "{ws}")
JUNE = ("load", "-w", "{ws}", "--month", "2025-06")

CASES = [
    Case("parquet-double-quantity-places", as_double(ACTIVITY, "quantity", {5: 2.123456789}), LOAD, (f"{ACTIVITY} row 5", "quantity", "'2.123456789'", "at most 4 decimal places")),
    Case("parquet-double-quantity-rounds-to-nothing", as_double(ACTIVITY, "quantity", {10: 0.00004}), LOAD, (f"{ACTIVITY} row 10", "quantity", "at most 4 decimal places")),
    Case("parquet-decimal-cost-places", set_values(OTHER_ACTIVITY, "cost", {3: Decimal("100.005")}, pa.decimal128(18, 3)), LOAD, (f"{OTHER_ACTIVITY} row 3", "cost", "'100.005'", "at most 2 decimal places")),
    Case("parquet-double-cost-places", as_double(OTHER_ACTIVITY, "cost", {7: 12.345}), LOAD, (f"{OTHER_ACTIVITY} row 7", "cost", "at most 2 decimal places")),
    Case("parquet-wide-decimal-age", set_values(ACTIVITY, "age", {2: Decimal("40.5")}, pa.decimal128(10, 1)), LOAD, (f"{ACTIVITY} row 2", "age", "a whole number")),
    Case("parquet-misspelt-optional-column", rename_parquet_column(ACTIVITY, "admission_method", "admision_method"), LOAD, (ACTIVITY, "admision_method", "did you mean", "admission_method?)", "referral_date, admission_method")),
    Case("parquet-misspelt-column-at-check", rename_parquet_column(ACTIVITY, "site", "sites"), ("check", "-w", "{ws}"), (ACTIVITY, "unknown column sites")),
    Case("csv-activity-unknown-column", activity_csv_with("admision_method"), LOAD, ("data/activity/extra.csv:1", "admision_method", "did you mean")),
    Case("csv-outcomes-misspelt-predicted", rename_header("data/outcomes/hip-proms.csv", "predicted", "predicted_score"), LOAD, ("data/outcomes/hip-proms.csv:1", "predicted_score", "did you mean", "predicted?)")),
    Case("csv-plans-misspelt-service", rename_header("data/plans/plans.csv", "service", "servise"), LOAD, ("data/plans/plans.csv:1", "servise", "did you mean service?")),
    Case("csv-population-extra-column", extra_column("data/population/population.csv", "source", "ons"), LOAD, ("data/population/population.csv:1", "unknown column source", "commissioner, month, band, persons")),
    Case("csv-prices-extra-column", extra_column("prices/national-2025.csv", "description", "x"), LOAD, ("prices/national-2025.csv:1", "unknown column description")),
    Case("month-after-the-year", nothing, ("load", "-w", "{ws}", "--month", "2027-01"), ("2027-01 is outside the financial year 2025-26", "2025-04", "2026-03")),
    Case("month-before-the-year", nothing, ("load", "-w", "{ws}", "--month", "2025-03"), ("2025-03 is outside the financial year 2025-26",)),
    Case("latin-1-byte-deep-in-csv", replace_bytes(BARTHEL, DEEP_LINE, b'"barthel"', b'"barth\xe9l"'), LOAD, (f"{BARTHEL}:{DEEP_LINE}", "not UTF-8", "saved as UTF-8")),
    Case("binary-bytes-deep-in-csv", replace_bytes(BARTHEL, DEEP_LINE + 100, b'"barthel"', b'"\x00\xff\xfe\x00"'), LOAD, (f"{BARTHEL}:{DEEP_LINE + 100}", "not UTF-8")),
    Case("binary-bytes-in-small-csv", replace_bytes("data/population/population.csv", 41, b"ICB-", b"\x00\xff\xfe"), LOAD, ("data/population/population.csv:41", "not UTF-8")),
    Case("latin-1-byte-at-check", replace_bytes(BARTHEL, DEEP_LINE, b'"barthel"', b'"barth\xe9l"'), ("check", "-w", "{ws}"), (f"{BARTHEL}:{DEEP_LINE}", "not UTF-8")),
    Case("folder-named-like-csv", folder("data/activity/x.csv"), LOAD, ("data/activity/x.csv", "is a folder, not a file")),
    Case("folder-named-like-parquet-at-check", folder("data/outcomes/y.parquet"), ("check", "-w", "{ws}"), ("data/outcomes/y.parquet", "is a folder")),
    Case("folder-given-to-month", folder("data/activity/2025-06.csv"), JUNE, ("data/activity/2025-06.csv", "is a folder")),
    Case("unreadable-file", unreadable("data/population/population.csv"), LOAD, ("data/population/population.csv", "cannot be read"), marks=(ROOT,)),
    Case("truncated-parquet", truncated(ACTIVITY), LOAD, (ACTIVITY, "cannot be read", "Parquet file")),
    Case("corrupt-parquet-ones", overwritten(ACTIVITY, b"\xff"), LOAD, (ACTIVITY, "cannot be read", "Parquet file")),
    Case("corrupt-parquet-zeros", overwritten(ACTIVITY, b"\x00"), LOAD, (ACTIVITY, "cannot be read", "Parquet file")),
    Case("corrupt-parquet-in-month", overwritten(ACTIVITY, b"\xff"), ("load", "-w", "{ws}", "--month", "2025-06", f"{{ws}}/{ACTIVITY}"), (ACTIVITY, "cannot be read")),
    Case("month-file-missing", nothing, ("load", "-w", "{ws}", "--month", "2025-06", "{ws}/data/activity/missing.csv"), ("data/activity/missing.csv", "no such file")),
    Case("quantity-too-large-parquet", set_values(OTHER_ACTIVITY, "quantity", {8: Decimal("9999999999999")}), LOAD, (f"{OTHER_ACTIVITY} row 8", "quantity", "below 100,000,000")),
    Case("unit-price-too-large", replace_line_field("prices/national-2025.csv", 5, 1, "9999999999999"), LOAD, ("prices/national-2025.csv:5", "unit_price", "below 10,000,000")),
    Case("planned-quantity-too-large", replace_line_field("data/plans/plans.csv", 3, 3, "9999999999999"), LOAD, ("data/plans/plans.csv:3", "planned_quantity", "below 100,000,000")),
    Case("first-load-fails", first_load(truncated(ACTIVITY)), LOAD, (ACTIVITY, "cannot be read")),
    Case("first-load-fails-on-a-row", first_load(as_double(ACTIVITY, "quantity", {5: 2.123456789})), LOAD, (f"{ACTIVITY} row 5", "quantity")),
    Case("first-month-load-fails", first_load(), ("load", "-w", "{ws}", "--month", "2025-06", "{ws}/data/activity/missing.csv"), ("no such file",)),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_refused(example: Path, case: Case) -> None:
    refused(example, case)


def test_unreadable_file(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the user may not read (as root, chmod 000 does not stop reading, so the
    refusal to open it is simulated) is refused naming it, and nothing changes."""
    target = (example / "data/population/population.csv").resolve()
    opened = Path.open

    def refuse(self: Path, *args, **kwargs):
        if self.resolve() == target:
            raise PermissionError(13, "Permission denied", str(self))
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    problem = file_problem(target, "data/population/population.csv")
    assert problem is not None and problem.message == "cannot be read: Permission denied"
    before = state(example)
    result = invoke(example, "load", "-w", "{ws}")
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "data/population/population.csv" in flat and "Permission denied" in flat
    assert state(example) == before


def test_first_load_that_fails_leaves_nothing_loaded(example: Path) -> None:
    """After a first load that fails there is no warehouse, so `pay` says nothing is loaded
    yet rather than blaming a contract."""
    first_load(truncated(ACTIVITY))(example)
    assert invoke(example, "load", "-w", "{ws}").exit_code == 2
    assert not (example / ".carecontracts/warehouse.duckdb").exists()
    result = invoke(example, "pay", "year", "-w", "{ws}")
    assert result.exit_code == 2
    assert "no data loaded yet" in " ".join(result.output.split())


def test_parquet_values_the_column_holds_load_exactly(example: Path) -> None:
    """A DOUBLE quantity with no more places than the column keeps (2.5, 0.0001) and a
    quantity in a decimal of fewer places (2.25 at two) are loaded exactly."""
    as_double(ACTIVITY, "quantity", {1: 2.5, 2: 0.0001})(example)
    set_values(OTHER_ACTIVITY, "quantity", {1: Decimal("2.25")}, pa.decimal128(10, 2))(example)
    result = invoke(example, "load", "-w", "{ws}")
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(example / ".carecontracts/warehouse.duckdb"), read_only=True)
    try:
        rows = dict(con.execute("SELECT source_row, quantity FROM activity WHERE source_file = ? AND source_row <= 2", [ACTIVITY]).fetchall())
        other = con.execute("SELECT quantity FROM activity WHERE source_file = ? AND source_row = 1", [OTHER_ACTIVITY]).fetchone()[0]
    finally:
        con.close()
    assert rows == {1: Decimal("2.5000"), 2: Decimal("0.0001")}
    assert other == Decimal("2.2500")
