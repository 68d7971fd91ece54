"""Check input files against their schemas and load them into the warehouse atomically.

Every file is staged inside one transaction; if any file has a problem the transaction is
rolled back, so a load with errors writes nothing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator

import duckdb

from carecontracts.data.books import book_files, read_books
from carecontracts.data.schemas import ACTIVITY, DATASETS, PRICES, SPELL_DAY_COLUMNS, Column, Dataset, Kind
from carecontracts.periods import add_months
from carecontracts.problems import Problem, ProblemsError
from carecontracts.workspace import Workspace

MAX_REPORTED_ROWS = 20
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ProviderMonth:
    """A provider's activity for one month as the warehouse now holds it: what a submission
    records. The fingerprint changes when any row does, whatever their order."""

    provider: str
    month: dt.date
    rows: int
    quantity: Decimal
    cost: Decimal | None
    fingerprint: str
    files: tuple[str, ...]

    @classmethod
    def nil(cls, provider: str, month: dt.date) -> "ProviderMonth":
        """A provider's month with no activity (a nil return)."""
        return cls(provider, month, 0, Decimal(0), None, "0" * 16, ())


@dataclass
class LoadReport:
    """What a load wrote: rows per table, the files they came from, and each provider-month
    of activity it put in place (with `replaced` rows moved to `activity_replaced`)."""

    rows: dict[str, int] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)
    provider_months: list[ProviderMonth] = field(default_factory=list)
    replaced: int = 0


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_sql(path: Path) -> str:
    """A DuckDB table function reading the file, CSV as text so nothing is guessed."""
    if path.suffix.lower() == ".parquet":
        return f"read_parquet({_literal(str(path))})"
    return f"read_csv({_literal(str(path))}, all_varchar = true, header = true, auto_detect = true)"


def numbered_source_sql(path: Path) -> str:
    """The file's rows with `_row`, their 1-based position in the file."""
    if path.suffix.lower() == ".parquet":
        return f"(SELECT *, file_row_number + 1 AS _row FROM read_parquet({_literal(str(path))}, file_row_number = true))"
    return f"(SELECT *, row_number() OVER () AS _row FROM {source_sql(path)})"


# Whole digits each integer type can hold: a column is read natively only when every value
# of the source type fits the stored type (else a value too large would become NULL unseen).
INTEGER_DIGITS = {"TINYINT": 3, "UTINYINT": 3, "SMALLINT": 5, "USMALLINT": 5, "INTEGER": 10, "UINTEGER": 10, "BIGINT": 19}
SOURCE_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def _native(column: Column, source_type: str | None) -> bool:
    """True when the file holds the column as text, or in a type every value of which the
    stored type holds exactly: a date, an integer, or a decimal with no more places and
    whole digits than the column keeps. Anything else (a DOUBLE, a decimal with more places)
    is read through its text, so a value that would be rounded or lost is refused."""
    if column.kind is Kind.TEXT:
        return True
    if source_type is None:
        return False
    kind = source_type.upper()
    if column.kind is Kind.DATE:
        return kind.startswith("DATE")
    if column.kind is Kind.INTEGER:
        return kind in INTEGER_DIGITS
    if column.kind is Kind.DECIMAL:
        if kind in INTEGER_DIGITS:
            return INTEGER_DIGITS[kind] <= column.whole_digits
        found = SOURCE_DECIMAL.fullmatch(kind)
        if found:
            precision, scale = int(found.group(1)), int(found.group(2))
            return scale <= column.places and precision - scale <= column.whole_digits
    return False


def data_files(workspace: Workspace, dataset: Dataset) -> list[Path]:
    folder = workspace.root / dataset.folder
    return sorted([*folder.glob("*.csv"), *folder.glob("*.parquet")]) if folder.is_dir() else []


def _typed(column: Column, present: bool, source_type: str | None) -> str:
    """SQL turning the raw column into its target type, NULL when it does not parse."""
    if not present:
        return f"CAST(NULL AS {column.target_type})"
    raw = _quote(column.name)
    if column.kind is Kind.TEXT:
        return f"NULLIF(trim(CAST({raw} AS VARCHAR)), '')"
    if column.kind is Kind.MONTH:
        text = f"trim(CAST({raw} AS VARCHAR))"
        return f"TRY_CAST(CASE WHEN length({text}) = 7 THEN {text} || '-01' ELSE {text} END AS DATE)"
    if _native(column, source_type):
        return f"TRY_CAST({raw} AS {column.target_type})"
    text = f"NULLIF(trim(CAST({raw} AS VARCHAR)), '')"
    if column.kind is Kind.DATE:
        return f"coalesce(TRY_CAST({text} AS DATE), {uk_date(text)})"
    if column.kind in (Kind.DECIMAL, Kind.INTEGER):
        return f"TRY_CAST({plain_number(text)} AS {column.target_type})"
    return f"TRY_CAST({text} AS {column.target_type})"


# A number as a spreadsheet writes it: a currency sign, thousands separators in their places.
WRITTEN_NUMBER = r"-?[£$€]?-?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?"


def plain_number(text: str) -> str:
    """SQL: the number in `text` without a currency sign or thousands separators where it is
    written with them in their places (£1,234.56 → 1234.56); any other text as it is."""
    return f"CASE WHEN regexp_full_match({text}, '{WRITTEN_NUMBER}') THEN regexp_replace({text}, '[£$€,]', '', 'g') ELSE {text} END"


def uk_date(text: str) -> str:
    """SQL: a day written the UK way, 30/11/2025 (day first), as a date; NULL otherwise."""
    return f"CASE WHEN regexp_full_match({text}, '[0-9]{{1,2}}/[0-9]{{1,2}}/[0-9]{{4}}') THEN try_strptime({text}, '%d/%m/%Y')::DATE END"


def _bad(column: Column, present: bool, native: bool = False) -> list[tuple[str, str]]:
    """Conditions (on typed `t_` and raw `r_` values) that make a value bad, with what was
    expected. A native optional column cannot fail to parse, so needs no raw text."""
    typed = f"t_{column.name}"
    raw = f"r_{column.name}"
    checks: list[tuple[str, str]] = []
    if not present:
        return checks
    blank = f"({raw} IS NULL OR trim({raw}) = '')"
    if column.required:
        checks.append((f"{typed} IS NULL", column.expected()))
    elif not native:
        checks.append((f"(NOT {blank} AND {typed} IS NULL)", column.expected()))
    if column.kind is Kind.MONTH:
        checks.append((f"day({typed}) <> 1", "a month like 2025-11"))
    if column.kind in (Kind.DECIMAL, Kind.INTEGER) and not native:
        # Parsing rounds to the stored places; a value that loses digits is refused, not rounded.
        checks.append((f"TRY_CAST({plain_number(f'trim({raw})')} AS DECIMAL(38, 12)) <> {typed}", column.precision_expected()))
    if column.minimum is not None:
        checks.append((f"{typed} < {column.minimum}", column.expected()))
    if column.maximum is not None:
        checks.append((f"{typed} > {column.maximum}", column.expected()))
    if column.below is not None:
        checks.append((f"{typed} >= {column.below}", column.expected()))
    if column.choices:
        options = ", ".join(_literal(c) for c in column.choices)
        checks.append((f"{typed} NOT IN ({options})", column.expected()))
    return checks


@contextmanager
def _unordered_insert(con: duckdb.DuckDBPyConnection, path: Path) -> Iterator[None]:
    """Let an insert from a Parquet file store its rows in any order, so that it fills whole
    row groups. Each row keeps its place in the file (`file_row_number`). An ordered insert
    leaves part-filled row groups between the file's batches, which the next checkpoint of
    the warehouse (a payment run storing its statements) then spends many seconds merging.
    A CSV file's rows are numbered as they are read, so stay in order (and fill their row
    groups as they are)."""
    if path.suffix.lower() != ".parquet":
        yield
        return
    con.execute("SET preserve_insertion_order = false")
    try:
        yield
    except BaseException:
        with suppress(duckdb.Error):  # the transaction may be aborted: the error raised is the one to report
            con.execute("RESET preserve_insertion_order")
        raise
    con.execute("RESET preserve_insertion_order")


def file_problem(path: Path, name: str) -> Problem | None:
    """Why a data file cannot be opened (it is gone, a folder, or not readable), or None."""
    if path.is_dir():
        return Problem(name, "is a folder, not a file", expected="a CSV or Parquet file (move the folder out of the data folder)")
    if not path.exists():
        return Problem(name, "no such file", expected="an existing CSV or Parquet file")
    try:
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as error:
        return Problem(name, f"cannot be read: {error.strerror or error}", expected="a file the user running carecontracts may read (check its permissions)")
    return None


def _reason(text: str) -> str:
    """The first line of a DuckDB error that says what is wrong, without its error class."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or "unsuccessful or closed pending query" in line or line.startswith(("Original Line", "LINE ", "^", "Possible Solution")):
            continue
        while re.match(r"^(?:[A-Za-z]+ )*Error: ", line):
            line = re.sub(r"^(?:[A-Za-z]+ )*Error: ", "", line, count=1)
        if line and not line.startswith("CSV Error on Line"):
            return line
    return text.strip().splitlines()[0] if text.strip() else "unknown error"


def read_problem(path: Path, name: str, error: duckdb.Error) -> Problem:
    """A DuckDB error met reading a data file as a located problem: the file, the line of a
    CSV when DuckDB names it, what is wrong in words and what was expected."""
    text = str(error).replace(str(path), name)
    is_csv = path.suffix.lower() != ".parquet"
    found = re.search(r"CSV Error on Line: (\d+)", text)
    line = int(found.group(1)) if found and is_csv else None
    if "unicode" in text.lower() or "utf-8" in text.lower():
        return Problem(name, "holds bytes that are not UTF-8 text (a Latin-1 or binary file?)", line=line,
                       expected="a CSV file saved as UTF-8 (in Excel: CSV UTF-8)")
    expected = "a CSV file with a header row" if is_csv else "a whole Parquet file: this one may be cut short or corrupt"
    return Problem(name, f"cannot be read: {_reason(text)}", line=line, expected=expected)


def unknown_columns(dataset: Dataset, names: list[str], name: str, is_csv: bool) -> list[Problem]:
    """A column the dataset does not have (a misspelt optional column, say) is an error,
    never ignored: each named, with the nearest known column and every column expected."""
    known = [c.name for c in dataset.columns]
    optional = [c.name for c in dataset.columns if not c.required]
    expected = f"only {dataset.name} columns: {', '.join(dataset.required)}" + (f"; optional {', '.join(optional)}" if optional else "")
    problems = []
    for column in names:
        if column in known:
            continue
        near = difflib.get_close_matches(column, known, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        problems.append(Problem(name, f"unknown column {column}{hint}", line=1 if is_csv else None, field=column, value=column, expected=expected))
    return problems


class _Stager:
    """Stages one dataset's files into a table of typed values and finds bad rows."""

    def __init__(self, con: duckdb.DuckDBPyConnection, workspace: Workspace, dataset: Dataset):
        self.con = con
        self.workspace = workspace
        self.dataset = dataset
        self.table = f"_stage_{dataset.name}"
        self.problems: list[Problem] = []
        self.failed = False  # a file could not be read: inside a transaction, nothing more can run
        extra = ", price_list VARCHAR" if dataset is PRICES else ""
        columns = ", ".join(f"{_quote(c.name)} {c.target_type}" for c in dataset.columns)
        con.execute(f"CREATE OR REPLACE TABLE {self.table} ({columns}{extra}, source_file VARCHAR, source_row BIGINT, _bad BOOLEAN)")

    def stage(self, path: Path) -> int:
        """Stage one file: check its columns, type every value, flag bad rows; rows staged.
        A file that cannot be read is a problem naming it (and its line, when known), and
        sets `failed`: DuckDB aborts the transaction it was read in."""
        name = self.workspace.relative(path)
        unreadable = file_problem(path, name)
        if unreadable is not None:
            self.problems.append(unreadable)
            return 0
        try:
            return self._stage(path, name)
        except duckdb.Error as error:
            self.problems.append(read_problem(path, name, error))
            self.failed = True
            return 0

    def _stage(self, path: Path, name: str) -> int:
        src = source_sql(path)
        described = self.con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
        types = {row[0]: row[1] for row in described}
        is_csv = path.suffix.lower() != ".parquet"
        missing = [c for c in self.dataset.required if c not in types]
        if missing:
            self.problems.append(
                Problem(name, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}", line=1 if is_csv else None,
                        expected=f"columns {', '.join(self.dataset.required)}")
            )
        unknown = unknown_columns(self.dataset, list(types), name, is_csv)
        self.problems += unknown
        if missing or unknown:
            return 0
        present = {c.name: c.name in types for c in self.dataset.columns}
        native = {c.name: present[c.name] and _native(c, types.get(c.name)) for c in self.dataset.columns}
        selected = self._raw_and_typed(present, types, raw_for={c.name for c in self.dataset.columns if not native[c.name]})
        bad_terms = [cond for c in self.dataset.columns for cond, _ in _bad(c, present[c.name], native[c.name])]
        bad_terms += [cond for cond, _, _ in self.dataset.row_checks]
        bad = " OR ".join(f"coalesce({t}, false)" for t in bad_terms) or "false"
        price_list = f", {_literal(path.stem)}" if self.dataset is PRICES else ""
        names = ", ".join(f"t_{c.name}" for c in self.dataset.columns)
        with _unordered_insert(self.con, path):
            self.con.execute(
                f"""INSERT INTO {self.table}
                    SELECT {names}{price_list}, {_literal(name)}, _row, {bad}
                    FROM (SELECT _row, {selected} FROM {numbered_source_sql(path)})"""
            )
        counted = self.con.execute(f"SELECT count(*), count_if(_bad) FROM {self.table} WHERE source_file = ?", [name]).fetchone()
        rows, bad_rows = counted if counted else (0, 0)
        if bad_rows:
            self._describe_bad_rows(path, name, src, present, types, bad_rows)
        return rows

    def _raw_and_typed(self, present: dict[str, bool], types: dict[str, str], raw_for: set[str] | None = None) -> str:
        """Select each column as its target type (t_) and, for those in `raw_for` (all if
        None), as raw text (r_); absent columns as NULL."""
        parts = []
        for c in self.dataset.columns:
            typed = _typed(c, present[c.name], types.get(c.name))
            keep_raw = present[c.name] and (raw_for is None or c.name in raw_for)
            raw = f"CAST({_quote(c.name)} AS VARCHAR)" if keep_raw else "CAST(NULL AS VARCHAR)"
            parts.append(f"{raw} AS r_{c.name}, {typed} AS t_{c.name}")
        return ", ".join(parts)

    def _describe_bad_rows(self, path: Path, name: str, src: str, present: dict, types: dict, count: int) -> None:
        """Re-read the first bad rows to say which column and value is wrong."""
        rows = [r[0] for r in self.con.execute(
            f"SELECT source_row FROM {self.table} WHERE _bad AND source_file = ? ORDER BY source_row LIMIT {MAX_REPORTED_ROWS}", [name]
        ).fetchall()]
        raw_cols = self._raw_and_typed(present, types)
        checks: list[tuple[str, str, str]] = []
        for column in self.dataset.columns:
            for cond, expected in _bad(column, present[column.name], present[column.name] and _native(column, types.get(column.name))):
                checks.append((column.name, cond, expected))
        for cond, field_name, expected in self.dataset.row_checks:
            checks.append((field_name, cond, expected))
        selects = ", ".join(f"coalesce({cond}, false)" for _, cond, _ in checks)
        values = ", ".join(f"r_{c.name}" for c in self.dataset.columns)
        found = self.con.execute(
            f"SELECT _row, {selects}, {values} FROM (SELECT _row, {raw_cols} FROM {numbered_source_sql(path)}) "
            f"WHERE _row IN ({', '.join(map(str, rows))}) ORDER BY _row"
        ).fetchall()
        offset = 1 + len(checks)
        column_index = {c.name: i for i, c in enumerate(self.dataset.columns)}
        is_csv = path.suffix.lower() != ".parquet"
        for record in found:
            row = record[0]
            for index, (column_name, _, expected) in enumerate(checks):
                if record[1 + index]:
                    value = record[offset + column_index[column_name]]
                    shown = "(blank)" if value is None or str(value).strip() == "" else repr(value)
                    self.problems.append(
                        Problem(name, f"{shown} is not valid", line=row + 1 if is_csv else None, row=None if is_csv else row,
                                field=column_name, value=value, expected=expected)
                    )
                    break
        if count > len(rows):
            self.problems.append(Problem(name, f"and {count - len(rows)} more bad rows not listed"))

    def check_overlaps(self) -> None:
        """Two prices for one currency on the same date would pay twice: report each pair."""
        if self.dataset is not PRICES:
            return
        pairs = self.con.execute(
            f"""SELECT a.source_file, a.source_row, b.source_row, a.currency, greatest(a.valid_from, b.valid_from)
                FROM {self.table} a JOIN {self.table} b
                  ON a.price_list = b.price_list AND a.currency = b.currency AND a.source_row < b.source_row
                 AND a.source_file = b.source_file
                 AND a.valid_from <= b.valid_to AND b.valid_from <= a.valid_to
                WHERE NOT a._bad AND NOT b._bad
                ORDER BY 1, 2 LIMIT {MAX_REPORTED_ROWS}"""
        ).fetchall()
        for source, first, second, currency, day in pairs:
            self.problems.append(
                Problem(source, f"{currency} has two prices on {day} (lines {first + 1} and {second + 1})", line=second + 1,
                        field="valid_from", value=currency, expected="one price per currency on any date")
            )

    def finish(self) -> None:
        """Replace the warehouse table with the staged one (inside the open transaction)."""
        self.con.execute(f"ALTER TABLE {self.table} DROP COLUMN _bad")
        self.con.execute(f"DROP TABLE IF EXISTS {self.dataset.name}")
        self.con.execute(f"ALTER TABLE {self.table} RENAME TO {self.dataset.name}")


DUPLICATE_EXPECTED = "an activity_id that is not loaded already: a corrected row is sent in its provider's whole month again, which replaces that month"


def place(source: str, row: int) -> tuple[int | None, int | None, str]:
    """Line (CSV, counting the header) or row (Parquet) of a staged row, and how to say it."""
    if source.lower().endswith(".parquet"):
        return None, row, f"{source} row {row}"
    return row + 1, None, f"{source}:{row + 1}"


def duplicate_ids(con: duckdb.DuckDBPyConnection, staged: str, kept: str | None, kept_where: str = "true", parameters: list | None = None) -> list[Problem]:
    """An activity_id twice among the staged rows, or already in `kept` rows (those a load
    leaves in place), would be paid twice: each is refused naming both places."""
    found: list[Problem] = []
    twice = con.execute(
        f"""SELECT activity_id, source_file, source_row, first_file, first_row FROM (
              SELECT activity_id, source_file, source_row,
                     first_value(source_file) OVER w AS first_file, first_value(source_row) OVER w AS first_row,
                     row_number() OVER w AS n
              FROM {staged} WHERE NOT _bad AND activity_id IN (
                  SELECT activity_id FROM {staged} WHERE NOT _bad GROUP BY activity_id HAVING count(*) > 1)
              WINDOW w AS (PARTITION BY activity_id ORDER BY source_file, source_row))
            WHERE n > 1 ORDER BY source_file, source_row LIMIT {MAX_REPORTED_ROWS}"""
    ).fetchall()
    for activity_id, source, row, first_file, first_row in twice:
        line, numbered, _ = place(source, row)
        found.append(Problem(source, f"activity_id {activity_id} is also at {place(first_file, first_row)[2]}", line=line, row=numbered,
                             field="activity_id", value=activity_id, expected=DUPLICATE_EXPECTED))
    if kept is not None:
        already = con.execute(
            f"""SELECT s.activity_id, s.source_file, s.source_row, k.source_file, k.source_row, k.provider, strftime(k.end_date, '%Y-%m')
                FROM {staged} s JOIN (SELECT * FROM {kept} WHERE {kept_where}) k USING (activity_id)
                WHERE NOT s._bad ORDER BY s.source_file, s.source_row LIMIT {MAX_REPORTED_ROWS}""",
            parameters or [],
        ).fetchall()
        for activity_id, source, row, kept_file, kept_row, provider, month in already:
            line, numbered, _ = place(source, row)
            found.append(Problem(source, f"activity_id {activity_id} is already loaded from {place(kept_file or '?', kept_row or 0)[2]} ({provider}, {month})",
                                 line=line, row=numbered, field="activity_id", value=activity_id, expected=DUPLICATE_EXPECTED))
    return found


def provider_months(con: duckdb.DuckDBPyConnection, where: str = "true", parameters: list | None = None) -> list[ProviderMonth]:
    """Each provider-month of the warehouse's activity (within `where`): rows, totals, files
    and a fingerprint of every value of every row."""
    values = ", ".join(_quote(c.name) for c in ACTIVITY.columns if c.name not in SPELL_DAY_COLUMNS)
    days = ", ".join(_quote(c) for c in SPELL_DAY_COLUMNS)
    # A row's spell days change its fingerprint only when it has some, so a month loaded
    # before they were read keeps the fingerprint its submission recorded.
    row_hash = f"xor(hash({values}), CASE WHEN coalesce({days}) IS NULL THEN 0 ELSE hash({days}) END)"
    rows = con.execute(
        f"""SELECT provider, date_trunc('month', end_date)::DATE AS month, count(*), sum(quantity), sum(cost),
                   printf('%016x', bit_xor({row_hash})), list(DISTINCT source_file ORDER BY source_file)
            FROM activity WHERE {where} GROUP BY ALL ORDER BY provider, month""",
        parameters or [],
    ).fetchall()
    return [ProviderMonth(p, m, n, Decimal(q or 0), c, f, tuple(files)) for p, m, n, q, c, f, files in rows]


def _stage_all(
    con: duckdb.DuckDBPyConnection, workspace: Workspace, plan: list[tuple[Dataset, list[Path]]], report: LoadReport, progress: Progress | None
) -> list[_Stager]:
    """Stage each dataset's files in order (reporting progress and rows), one stager each."""
    total = sum(len(files) for _, files in plan)
    done = 0
    stagers = []
    for dataset, files in plan:
        stager = _Stager(con, workspace, dataset)
        stagers.append(stager)
        report.files[dataset.name] = [workspace.relative(f) for f in files]
        rows = 0
        for path in files:
            if progress:
                progress(workspace.relative(path), done, total)
            rows += stager.stage(path)
            done += 1
            if stager.failed:  # the transaction is aborted: report what is known, check nothing more
                raise ProblemsError([p for s in stagers for p in s.problems])
        report.rows[dataset.name] = rows
        stager.check_overlaps()
    if progress:
        progress("", done, total)
    return stagers


@contextmanager
def _transaction(workspace: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    """A transaction on the warehouse, which the caller commits. On any error it is rolled
    back, and a warehouse that did not exist before is removed: a first load that fails
    leaves no warehouse, so later commands say that nothing is loaded yet."""
    workspace.state_dir.mkdir(exist_ok=True)
    path = workspace.warehouse_path
    existed = path.exists()
    con = duckdb.connect(str(path))
    done = False
    try:
        con.execute("BEGIN TRANSACTION")
        yield con
        done = True
    finally:
        if not done:
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
        con.close()
        if not done and not existed:
            for leftover in (path, path.with_name(path.name + ".wal")):
                leftover.unlink(missing_ok=True)


def load_workspace(workspace: Workspace, progress: Progress | None = None, datasets: tuple[Dataset, ...] = DATASETS) -> LoadReport:
    """Check and load every data file of the workspace; raise with all problems, writing nothing."""
    report = LoadReport()
    with _transaction(workspace) as con:
        stagers = _stage_all(con, workspace, [(d, data_files(workspace, d)) for d in datasets], report, progress)
        problems = [p for stager in stagers for p in stager.problems]
        problems += [p for stager in stagers if stager.dataset is ACTIVITY for p in duplicate_ids(con, stager.table, None)]
        problems += workbook_problems(workspace)
        if problems:
            raise ProblemsError(problems)
        for stager in stagers:
            stager.finish()
        if ACTIVITY in datasets:
            report.provider_months = provider_months(con)
        con.execute("COMMIT")
    mark_loaded(workspace)
    return report


def workbook_problems(workspace: Workspace) -> list[Problem]:
    """Every bad cell of the prices workbooks in prices/: a load refuses them as it refuses a
    bad price list, though `pay` reads the workbooks themselves."""
    try:
        read_books(book_files(workspace.prices_dir), workspace.relative)
    except ProblemsError as error:
        return error.problems
    return []


def mark_loaded(workspace: Workspace) -> None:
    """Note that the warehouse's data changed (copies made for Spark are then made again)."""
    (workspace.state_dir / "LOADED").write_text(str(time.time_ns()), encoding="utf-8")


def month_files(workspace: Workspace, month: dt.date) -> list[Path]:
    """The activity files named for a month: 2025-11 or 202511 in the file name."""
    marks = (f"{month:%Y-%m}", f"{month:%Y%m}")
    return [f for f in data_files(workspace, ACTIVITY) if any(mark in f.name for mark in marks)]


def load_month(
    workspace: Workspace,
    month: dt.date,
    files: list[Path] | None = None,
    progress: Progress | None = None,
    providers: list[str] | None = None,
) -> LoadReport:
    """Load one month's activity as the submission of the providers it names (or of
    `providers`): their rows for that month are replaced, and no other provider's or month's.
    The rows replaced are kept in `activity_replaced`. A file with no rows is refused unless
    `providers` says whose nil return it is; an activity_id loaded already is refused. The
    small reference data (prices, plans, population, outcomes) is reloaded whole. One
    transaction: a problem, or a load killed part-way, leaves the warehouse as it was."""
    year = workspace.year
    if month not in year.months:
        raise ProblemsError([Problem("month", f"{month:%Y-%m} is outside the financial year {year.label}", value=f"{month:%Y-%m}",
                                     expected=f"a month of {year.label}: {', '.join(f'{m:%Y-%m}' for m in year.months)}")])
    chosen = files if files is not None else month_files(workspace, month)
    if not chosen:
        raise ProblemsError([Problem(ACTIVITY.folder, f"no activity files for {month:%Y-%m}",
                                     expected=f"files named with {month:%Y-%m} in {ACTIVITY.folder}, or the files given on the command line")])
    report = LoadReport()
    following = add_months(month, 1)
    with _transaction(workspace) as con:
        plan = [(ACTIVITY, chosen)] + [(d, data_files(workspace, d)) for d in DATASETS if d is not ACTIVITY]
        activity, *stagers = _stage_all(con, workspace, plan, report, progress)
        problems = [p for stager in (activity, *stagers) for p in stager.problems]
        problems += _outside_month(con, activity.table, month, following)
        named = [r[0] for r in con.execute(f"SELECT DISTINCT provider FROM {activity.table} WHERE NOT _bad ORDER BY 1").fetchall()]
        if not problems and report.rows.get(ACTIVITY.name, 0) == 0 and not providers:
            names = ", ".join(workspace.relative(f) for f in chosen)
            problems.append(Problem(names, f"has no activity rows for {month:%Y-%m}",
                                    expected=f"the month's rows, or --provider X to record that provider X had no activity in {month:%Y-%m}"))
        if providers:
            problems += _other_providers(con, activity.table, providers)
        problems += workbook_problems(workspace)
        scope = sorted(providers or named)
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        in_scope = "end_date >= ? AND end_date < ? AND list_contains(?, provider)"
        arguments = [month, following, scope]
        if ACTIVITY.name in present:
            problems += duplicate_ids(con, activity.table, ACTIVITY.name, f"NOT ({in_scope})", arguments)
        else:
            problems += duplicate_ids(con, activity.table, None)
        if problems:
            raise ProblemsError(problems)
        if ACTIVITY.name in present:
            _add_new_columns(con)
            columns = ", ".join(_quote(c.name) for c in ACTIVITY.columns)
            con.execute(f"CREATE TABLE IF NOT EXISTS activity_replaced AS SELECT *, CAST(NULL AS TIMESTAMPTZ) AS replaced_at FROM {ACTIVITY.name} LIMIT 0")
            inserted = con.execute(f"INSERT INTO activity_replaced SELECT *, now() FROM {ACTIVITY.name} WHERE {in_scope}", arguments).fetchone()
            report.replaced = inserted[0] if inserted else 0
            con.execute(f"DELETE FROM {ACTIVITY.name} WHERE {in_scope}", arguments)
            con.execute(f"INSERT INTO {ACTIVITY.name} ({columns}, source_file, source_row) SELECT {columns}, source_file, source_row FROM {activity.table}")
            con.execute(f"DROP TABLE {activity.table}")
        else:
            activity.finish()
        for stager in stagers:
            stager.finish()
        found = {pm.provider: pm for pm in provider_months(con, in_scope, arguments)}
        report.provider_months = [found.get(p) or ProviderMonth.nil(p, month) for p in scope]
        con.execute("COMMIT")
    mark_loaded(workspace)
    return report


def _add_new_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Give a warehouse's activity (and its replaced rows) loaded before a column was read
    that column, empty, so a month loaded now goes in beside them."""
    for table in (ACTIVITY.name, "activity_replaced"):
        for column in ACTIVITY.columns:
            con.execute(f"ALTER TABLE IF EXISTS {table} ADD COLUMN IF NOT EXISTS {_quote(column.name)} {column.target_type}")


def _outside_month(con: duckdb.DuckDBPyConnection, staged: str, month: dt.date, following: dt.date) -> list[Problem]:
    """Rows that end outside the month being loaded."""
    outside = con.execute(
        f"""SELECT source_file, source_row, end_date FROM {staged}
            WHERE NOT _bad AND (end_date < ? OR end_date >= ?) ORDER BY source_file, source_row LIMIT {MAX_REPORTED_ROWS}""",
        [month, following],
    ).fetchall()
    problems = []
    for source, row, ended in outside:
        line, numbered, _ = place(source, row)
        problems.append(Problem(source, f"ends {ended}, outside {month:%Y-%m}, the month being loaded", line=line, row=numbered,
                                field="end_date", value=str(ended), expected=f"an end_date in {month:%Y-%m}"))
    return problems


def _other_providers(con: duckdb.DuckDBPyConnection, staged: str, providers: list[str]) -> list[Problem]:
    """Rows of a provider not named by --provider: a load states whose month it replaces."""
    rows = con.execute(
        f"SELECT source_file, source_row, provider FROM {staged} WHERE NOT _bad AND NOT list_contains(?, provider) "
        f"ORDER BY source_file, source_row LIMIT {MAX_REPORTED_ROWS}", [providers]).fetchall()
    problems = []
    for source, row, provider in rows:
        line, numbered, _ = place(source, row)
        problems.append(Problem(source, f"a row of {provider}, which --provider does not name", line=line, row=numbered, field="provider",
                                value=provider, expected=f"rows of {', '.join(providers)} only"))
    return problems


@contextmanager
def staged_files(workspace: Workspace) -> Iterator[tuple[duckdb.DuckDBPyConnection, dict[str, list[Problem]]]]:
    """Every data file checked and staged into an in-memory database, kept open for checks
    that read the data as a load would write it (`_stage_activity`, ... with `source_file`,
    `source_row` and `_bad`), with the problems found in each dataset by name."""
    con = duckdb.connect()
    problems: dict[str, list[Problem]] = {}
    try:
        for dataset in DATASETS:
            stager = _Stager(con, workspace, dataset)
            for path in data_files(workspace, dataset):
                stager.stage(path)
            stager.check_overlaps()
            problems[dataset.name] = stager.problems
        yield con, problems
    finally:
        con.close()


def check_files(workspace: Workspace) -> list[Problem]:
    """Check every data file without writing anything (for `carecontracts check`)."""
    with staged_files(workspace) as (_, problems):
        return [p for found in problems.values() for p in found]
