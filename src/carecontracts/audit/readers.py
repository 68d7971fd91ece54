"""Readers for the files an audit is run on, each turned into the same few shapes.

- **long**: one value per row (patient-level waits, or one figure per provider and month), or
  binned counts with `--count` (a lower edge, an optional upper edge, a count per row).
- **rtt**: NHS England's referral-to-treatment "full CSV" layout: one row per provider ×
  commissioner × treatment function × part, the waits in wide weekly band columns
  (`Gt 17 To 18 Weeks SUM 1`, `Gt 52 Weeks SUM 1`; the spellings `>17-18`, `17-18`,
  `52 plus`, `52+` are read too). Only the `Total` treatment function rows (C_999) are kept
  unless a filter names treatment functions, so patients are not counted twice; one RTT part
  (admitted, non-admitted, incomplete) is audited at a time.
- **ae**: NHS England's monthly A&E attendances and emergency admissions layout: per
  provider and month, attendances and attendances over four hours by department type. The
  share within four hours is 100 × (1 − over 4 hours ÷ attendances) over the types chosen;
  the national `TOTAL` rows are left out. Blank and `-` counts are read as 0, as published.

Every problem with the file is reported with its row and column and what was expected, all
at once, before anything is computed; `--where COLUMN=VALUE` filters rows first.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

import duckdb
import numpy as np

from carecontracts.audit.calendar import christmas_waits, month_range
from carecontracts.problems import Problem, ProblemsError, raise_if_any

MAX_REPORTED_PROBLEMS = 20


class Layout(str, Enum):
    AUTO = "auto"
    LONG = "long"
    RTT = "rtt"
    AE = "ae"


# --- filters -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowFilter:
    """`COLUMN=VALUE[,VALUE…]` keeps rows whose column is one of the values; `COLUMN!=…` drops them."""

    column: str
    values: tuple[str, ...]
    negate: bool = False
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> "RowFilter":
        match = re.fullmatch(r"\s*(.+?)\s*(!=|=)\s*(.*?)\s*", text)
        if not match or not match.group(1):
            raise ProblemsError([Problem("--where", f"'{text}' is not a filter", value=text,
                                         expected="COLUMN=VALUE (or COLUMN!=VALUE; several values separated by commas), e.g. --where 'RTT Part Type=Part_1A'")])
        column, operator, values = match.groups()
        return cls(column.strip().strip("'\""), tuple(v.strip() for v in values.split(",")), operator == "!=", text)

    def sql(self) -> str:
        listed = ", ".join("'" + v.replace("'", "''") + "'" for v in self.values)
        test = f'trim(CAST("{_ident(self.column)}" AS VARCHAR)) IN ({listed})'
        return f"NOT coalesce({test}, false)" if self.negate else f"coalesce({test}, false)"


def _ident(name: str) -> str:
    return name.replace('"', '""')


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- what the readers return ----------------------------------------------------------------------


@dataclass
class Binned:
    """Counts in bands for each (subject, period); band edges shared by all."""

    lower: np.ndarray
    upper: np.ndarray  # inf on an open last band
    counts: dict[tuple[str, str], np.ndarray]
    excluded: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # period → ranges of value kept out of fits


@dataclass
class Values:
    """One value per row: patient-level waits, or figures (a share per provider-month)."""

    subject: np.ndarray  # str
    period: np.ndarray  # str or None
    value: np.ndarray
    numerator: np.ndarray | None = None  # met the target (for a share with counts behind it)
    denominator: np.ndarray | None = None


@dataclass
class Read:
    """A file read and checked."""

    source: str
    layout: Layout
    data: Binned | Values
    unit: str
    group: str | None  # the column grouped by, as the user named it
    figures: bool  # rows are figures (a share per provider-month), not patients
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # found in the data, reported as findings (not fatal)
    con: Any = None  # the DuckDB connection holding `raw` (for checks)
    columns: dict[str, str] = field(default_factory=dict)  # canonical name → file column
    names: dict[str, str] = field(default_factory=dict)  # subject → display name


# --- periods ---------------------------------------------------------------------------------------

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name} | {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}


def parse_month(text: str | None) -> dt.date | None:
    """`RTT-MARCH-2026`, `MSitAE-APRIL-2024`, `2026-03`, `2026-03-31`, `Mar-26`, `March 2026` → the month's first day."""
    if text is None:
        return None
    value = str(text).strip()
    match = re.fullmatch(r"(\d{4})-(\d{1,2})(?:-(\d{1,2}))?", value)
    if match:
        year, number = int(match.group(1)), int(match.group(2))
        return dt.date(year, number, 1) if 1 <= number <= 12 else None
    words = re.findall(r"[A-Za-z]+|\d+", value)
    named = next((_MONTHS[w.lower()] for w in words if w.lower() in _MONTHS), None)
    years = [int(w) for w in words if w.isdigit()]
    if named is None or not years:
        return None
    year = years[-1]
    year = year + 2000 if year < 100 else year
    return dt.date(year, named, 1)


def period_label(text: str | None) -> str:
    """A period as people write it: `2026-03` when it can be read as a month, else as given."""
    month = parse_month(text)
    return month.strftime("%Y-%m") if month else ("" if text is None else str(text).strip())


# --- reading -----------------------------------------------------------------------------------------


def _source_sql(path: Path) -> str:
    text = _literal(str(path))
    if path.suffix.lower() == ".parquet":
        return f"read_parquet({text})"
    return f"read_csv({text}, all_varchar = true, header = true, auto_detect = true, null_padding = true)"


def open_file(path: Path, filters: Sequence[RowFilter] = ()) -> tuple[Any, list[str], str]:
    """The file as a DuckDB table `raw` (every value as text, `_row` its data row), filtered."""
    name = str(path)
    if not path.is_file():
        raise ProblemsError([Problem(name, "no such file", expected="a .csv or .parquet file")])
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise ProblemsError([Problem(name, f"cannot read '{path.suffix}' files", expected="a .csv or .parquet file")])
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TABLE everything AS SELECT *, row_number() OVER () AS _row FROM {_source_sql(path)}")
    except duckdb.Error as error:
        con.close()
        raise ProblemsError([Problem(name, f"cannot be read: {str(error).splitlines()[0]}", expected="a CSV file with a header row, or Parquet")]) from None
    header = [r[0] for r in con.execute("DESCRIBE everything").fetchall() if r[0] != "_row"]
    problems = [Problem(name, f"no column '{f.column}'", field="--where", value=f.text, expected="one of " + ", ".join(header))
                for f in filters if f.column not in header]
    if problems:
        con.close()
        raise ProblemsError(problems)
    where = " AND ".join(f.sql() for f in filters) or "true"
    con.execute(f"CREATE TABLE raw AS SELECT * FROM everything WHERE {where}")
    kept = (con.execute("SELECT count(*) FROM raw").fetchone() or (0,))[0]
    if kept == 0 and filters:
        shown = []
        for f in filters:
            present = [r[0] for r in con.execute(f'SELECT DISTINCT trim(CAST("{_ident(f.column)}" AS VARCHAR)) FROM everything ORDER BY 1 LIMIT 12').fetchall()]
            shown.append(Problem(name, f"no rows left after the filters", field="--where", value=f.text,
                                 expected=f"values of '{f.column}' such as " + ", ".join(str(v) for v in present)))
        con.close()
        raise ProblemsError(shown)
    return con, header, name


# --- RTT wide bands ------------------------------------------------------------------------------------

_BAND_PATTERNS = (
    (re.compile(r"gt\s*(\d+)\s*to\s*(\d+)\s*weeks?(?:\s*sum\s*1)?", re.I), False),
    (re.compile(r">\s*(\d+)\s*-\s*(\d+)(?:\s*weeks?)?", re.I), False),
    (re.compile(r"(\d+)\s*-\s*(\d+)\s*weeks?", re.I), False),
    (re.compile(r"(\d+)\s*-\s*(\d+)", re.I), False),
    (re.compile(r"gt\s*(\d+)\s*weeks?(?:\s*sum\s*1)?", re.I), True),
    (re.compile(r"(\d+)\s*(?:plus|\+)(?:\s*weeks?)?", re.I), True),
    (re.compile(r">\s*(\d+)(?:\s*weeks?)?", re.I), True),
)
RTT_PART_COLUMN = "RTT Part Type"
RTT_FUNCTION_COLUMN = "Treatment Function Code"
RTT_TOTAL_FUNCTION = "C_999"
RTT_GROUPS = {
    "provider": ("Provider Org Code", "Provider Org Name"),
    "commissioner": ("Commissioner Org Code", "Commissioner Org Name"),
    "provider parent": ("Provider Parent Org Code", "Provider Parent Name"),
    "commissioner parent": ("Commissioner Parent Org Code", "Commissioner Parent Name"),
    "function": ("Treatment Function Code", "Treatment Function Name"),
}
SNAPSHOT_PARTS = ("Part_2", "Part_2A")  # the waiting list at the month end


def band_columns(header: Sequence[str]) -> list[tuple[str, float, float]]:
    """Columns that are weekly bands, with their edges in weeks (inf for an open last band)."""
    found = []
    for column in header:
        for pattern, open_ended in _BAND_PATTERNS:
            match = pattern.fullmatch(column.strip())
            if match:
                lo = float(match.group(1))
                hi = math.inf if open_ended else float(match.group(2))
                found.append((column, lo, hi))
                break
    return found


def detect_layout(header: Sequence[str]) -> Layout:
    if len(band_columns(header)) >= 5:
        return Layout.RTT
    if "Org Code" in header and any(h.startswith("A&E attendances") for h in header) and any(h.startswith("Attendances over 4hrs") for h in header):
        return Layout.AE
    return Layout.LONG


def _count_problems(con: Any, name: str, columns: Sequence[str], blank_is_zero: bool = True) -> list[Problem]:
    """Every cell in these columns that is not a whole number of 0 or more (blank and '-' are 0)."""
    if not columns:
        return []
    checks = " UNION ALL ".join(
        f"""SELECT _row, {_literal(c)} AS col, CAST("{_ident(c)}" AS VARCHAR) AS v FROM raw
            WHERE NOT (coalesce(trim(CAST("{_ident(c)}" AS VARCHAR)), '') IN ('', '-')
                       OR coalesce(TRY_CAST(replace(trim(CAST("{_ident(c)}" AS VARCHAR)), ',', '') AS DOUBLE) >= 0
                           AND TRY_CAST(replace(trim(CAST("{_ident(c)}" AS VARCHAR)), ',', '') AS DOUBLE)
                               = floor(TRY_CAST(replace(trim(CAST("{_ident(c)}" AS VARCHAR)), ',', '') AS DOUBLE)), false))"""
        for c in columns
    )
    bad = con.execute(f"SELECT * FROM ({checks}) ORDER BY _row, col LIMIT {MAX_REPORTED_PROBLEMS + 1}").fetchall()
    problems = [Problem(name, f"'{v}' is not a count", row=int(r), field=c, value=v, expected="a whole number of 0 or more (blank or - for none)")
                for r, c, v in bad[:MAX_REPORTED_PROBLEMS]]
    if len(bad) > MAX_REPORTED_PROBLEMS:
        total = con.execute(f"SELECT count(*) FROM ({checks})").fetchone()[0]
        problems.append(Problem(name, f"and {total - MAX_REPORTED_PROBLEMS:,} more cells that are not counts"))
    return problems


def _count(column: str) -> str:
    return f"""coalesce(TRY_CAST(replace(nullif(nullif(trim(CAST("{_ident(column)}" AS VARCHAR)), ''), '-'), ',', '') AS DOUBLE), 0)"""


def _group_columns(group: str | None, header: Sequence[str], aliases: dict[str, tuple[str, str]], name: str) -> tuple[str | None, str | None]:
    if group is None:
        return None, None
    if group in header:
        names = next((n for c, n in aliases.values() if c == group and n in header), None)
        return group, names
    alias = aliases.get(group.lower())
    if alias and alias[0] in header:
        return alias[0], alias[1] if alias[1] in header else None
    raise ProblemsError([Problem(name, f"no column '{group}'", field="--group",
                                 expected="one of " + ", ".join(list(aliases) + list(header)))])


def read_rtt(con: Any, header: list[str], name: str, group: str | None, filters: Sequence[RowFilter], calendar_rule: bool) -> Read:
    """The RTT full CSV (or any file of weekly band columns)."""
    bands = band_columns(header)
    bands.sort(key=lambda b: b[1])
    problems: list[Problem] = []
    for (c1, lo1, hi1), (c2, lo2, hi2) in zip(bands, bands[1:]):
        if lo2 != hi1:
            problems.append(Problem(name, f"band '{c2}' does not follow '{c1}'", field=c2, expected=f"bands that meet: the next should start at {hi1:g} weeks"))
    raise_if_any(problems)
    notes: list[str] = []
    filtered = {f.column for f in filters}
    if RTT_FUNCTION_COLUMN in header and RTT_FUNCTION_COLUMN not in filtered and "Treatment Function Name" not in filtered:
        has_total = con.execute(f'SELECT count(*) FROM raw WHERE trim("{RTT_FUNCTION_COLUMN}") = {_literal(RTT_TOTAL_FUNCTION)}').fetchone()[0]
        if has_total:
            con.execute(f'DELETE FROM raw WHERE coalesce(trim("{RTT_FUNCTION_COLUMN}"), \'\') <> {_literal(RTT_TOTAL_FUNCTION)}')
            notes.append(f"Only the Total treatment function rows ({RTT_TOTAL_FUNCTION}) are used, so no patient is counted twice; "
                         f"filter with --where '{RTT_FUNCTION_COLUMN}=C_110' for one function.")
    part = None
    if RTT_PART_COLUMN in header:
        parts = con.execute(f'SELECT trim("{RTT_PART_COLUMN}") AS p, count(*) FROM raw GROUP BY 1 ORDER BY 1').fetchall()
        if len(parts) > 1:
            listed = "; ".join(f"{p} ({n:,} rows)" for p, n in parts)
            raise ProblemsError([Problem(name, f"the rows hold {len(parts)} RTT parts: {listed}", field=RTT_PART_COLUMN,
                                         expected=f"one part at a time, e.g. --where '{RTT_PART_COLUMN}={parts[0][0]}' "
                                                  "(Part_1A admitted, Part_1B non-admitted, Part_2 incomplete pathways)")])
        part = parts[0][0] if parts else None
    raise_if_any(_count_problems(con, name, [c for c, _, _ in bands]))
    group_column, name_column = _group_columns(group, header, RTT_GROUPS, name)
    period_column = "Period" if "Period" in header else None
    subject = f'trim(CAST("{_ident(group_column)}" AS VARCHAR))' if group_column else _literal("all")
    period = f'trim(CAST("{period_column}" AS VARCHAR))' if period_column else "''"
    sums = ", ".join(f'sum({_count(c)})' for c, _, _ in bands)
    rows = con.execute(f"SELECT {subject}, {period}, {sums} FROM raw GROUP BY ALL ORDER BY 1, 2").fetchall()
    lower = np.array([lo for _, lo, _ in bands], dtype=np.float64)
    upper = np.array([hi for _, _, hi in bands], dtype=np.float64)
    counts = {(str(r[0]), period_label(r[1])): np.array(r[2:], dtype=np.float64) for r in rows}
    names: dict[str, str] = {}
    if name_column and group_column:
        names = {str(c): str(n) for c, n in con.execute(f'SELECT DISTINCT trim("{_ident(group_column)}"), trim("{_ident(name_column)}") FROM raw').fetchall()}
    data = Binned(lower, upper, counts)
    # Rows whose bands do not add up to their Total: found, not fatal.
    found: list[Problem] = []
    if "Total" in header:
        band_sum = " + ".join(_count(c) for c, _, _ in bands)
        bad = con.execute(f'SELECT _row, {band_sum}, {_count("Total")} FROM raw WHERE abs(({band_sum}) - {_count("Total")}) > 0.5 ORDER BY _row').fetchall()
        found += [Problem(name, f"the bands add up to {s:,.0f} but Total says {t:,.0f}", row=int(r), field="Total", value=t, expected="the sum of the bands")
                  for r, s, t in bad]
    if calendar_rule:
        periods = sorted({p for _, p in counts})
        unreadable = [p for p in periods if parse_month(p) is None]
        if unreadable:
            raise ProblemsError([Problem(name, f"cannot tell the month of the period '{unreadable[0]}', so the Christmas referral trough cannot be placed",
                                         field=period_column or "Period", value=unreadable[0],
                                         expected="periods like RTT-MARCH-2026 or 2026-03, or --no-calendar to audit without keeping the trough out")])
        for label in periods:
            first, last = month_range(parse_month(label))  # type: ignore[arg-type]
            if part in SNAPSHOT_PARTS:
                first = last
            data.excluded[label] = christmas_waits(first, last)
        if periods:
            snapshot = "the waiting list at the month end" if part in SNAPSHOT_PARTS else "pathways completed in the month"
            shown = "; ".join(f"{label}: " + ", ".join(f"{lo:.1f}–{hi:.1f} weeks" for lo, hi in data.excluded[label] if lo < upper[np.isfinite(upper)].max())
                              for label in periods)
            notes.append(f"Waits of patients referred over Christmas (22 December – 2 January) are kept out of the fits ({snapshot}): {shown}. "
                         "Give --no-calendar to keep them in.")
    read = Read(name, Layout.RTT, data, "weeks", group, False, notes, found, con, {"part": part or ""}, names)
    return read


# --- A&E monthly figures ----------------------------------------------------------------------------

AE_TYPES = {
    "1": ("A&E attendances Type 1", "Attendances over 4hrs Type 1"),
    "2": ("A&E attendances Type 2", "Attendances over 4hrs Type 2"),
    "other": ("A&E attendances Other A&E Department", "Attendances over 4hrs Other Department"),
    "booked1": ("A&E attendances Booked Appointments Type 1", "Attendances over 4hrs Booked Appointments Type 1"),
    "booked2": ("A&E attendances Booked Appointments Type 2", "Attendances over 4hrs Booked Appointments Type 2"),
    "bookedother": ("A&E attendances Booked Appointments Other Department", "Attendances over 4hrs Booked Appointments Other Department"),
}
AE_GROUPS = {"provider": ("Org Code", "Org name"), "org": ("Org Code", "Org name"), "region": ("Parent Org", "Parent Org")}


def read_ae(con: Any, header: list[str], name: str, group: str | None, types: Sequence[str]) -> Read:
    """Monthly A&E figures: the share within four hours for each provider-month."""
    unknown = [t for t in types if t not in AE_TYPES]
    if unknown:
        raise ProblemsError([Problem("--ae-types", f"unknown department type '{unknown[0]}'", value=unknown[0], expected="some of " + ", ".join(AE_TYPES))])
    chosen = [(a, o) for t in types for a, o in [AE_TYPES[t]] if a in header and o in header]
    if not chosen:
        raise ProblemsError([Problem(name, "none of the department types chosen has both an attendance and an over-4-hours column",
                                     expected="columns such as 'A&E attendances Type 1' and 'Attendances over 4hrs Type 1'")])
    for column in ("Period", "Org Code"):
        if column not in header:
            raise ProblemsError([Problem(name, f"no column '{column}'", field=column, expected="the monthly A&E layout (Period, Org Code, Parent Org, Org name, …)")])
    notes = []
    total_rows = con.execute("SELECT count(*) FROM raw WHERE upper(trim(\"Org Code\")) = 'TOTAL' OR upper(trim(\"Period\")) = 'TOTAL'").fetchone()[0]
    if total_rows:
        con.execute("DELETE FROM raw WHERE upper(trim(\"Org Code\")) = 'TOTAL' OR upper(trim(\"Period\")) = 'TOTAL'")
        notes.append(f"{total_rows:,} national TOTAL rows are left out.")
    raise_if_any(_count_problems(con, name, [c for pair in chosen for c in pair]))
    attendances = " + ".join(_count(a) for a, _ in chosen)
    over = " + ".join(_count(o) for _, o in chosen)
    bad = con.execute(f"SELECT _row, {attendances}, {over} FROM raw WHERE ({over}) > ({attendances}) ORDER BY _row LIMIT {MAX_REPORTED_PROBLEMS}").fetchall()
    if bad:
        raise ProblemsError([Problem(name, f"{o:,.0f} attendances over four hours but only {a:,.0f} attendances", row=int(r), field=chosen[0][1], value=o,
                                     expected="no more over four hours than attended") for r, a, o in bad])
    unreadable = con.execute("SELECT _row, \"Period\" FROM raw ORDER BY _row").fetchall()
    problems = [Problem(name, f"'{p}' is not a month", row=int(r), field="Period", value=p, expected="a period like MSitAE-APRIL-2024 or 2024-04")
                for r, p in unreadable if parse_month(p) is None][:MAX_REPORTED_PROBLEMS]
    raise_if_any(problems)
    group_column, name_column = _group_columns(group, header, AE_GROUPS, name)
    subject = f'trim(CAST("{_ident(group_column)}" AS VARCHAR))' if group_column else _literal("all")
    rows = con.execute(f"""SELECT {subject}, trim("Period"), sum({attendances}) AS n, sum({over}) AS o FROM raw
                           GROUP BY ALL ORDER BY 1, 2""").fetchall()
    empty = [r for r in rows if r[2] <= 0]
    if empty:
        notes.append(f"{len(empty):,} provider-months with no attendances of the types chosen are left out.")
    rows = [r for r in rows if r[2] > 0]
    if not rows:
        raise ProblemsError([Problem(name, "no attendances of the types chosen", expected="attendances above zero")])
    denominator = np.array([r[2] for r in rows], dtype=np.float64)
    numerator = denominator - np.array([r[3] for r in rows], dtype=np.float64)
    values = Values(np.array([str(r[0]) for r in rows], dtype=object), np.array([period_label(r[1]) for r in rows], dtype=object),
                    100 * numerator / denominator, numerator, denominator)
    names: dict[str, str] = {}
    if name_column and group_column:
        names = {str(c): str(n) for c, n in con.execute(f'SELECT DISTINCT trim("{_ident(group_column)}"), trim("{_ident(name_column)}") FROM raw').fetchall()}
    types_used = ", ".join(a.replace("A&E attendances ", "") for a, _ in chosen)
    notes.append(f"% within 4 hours = 100 × (1 − attendances over 4 hours ÷ attendances) over {types_used}.")
    return Read(name, Layout.AE, values, "%", group, True, notes, [], con, {}, names)
