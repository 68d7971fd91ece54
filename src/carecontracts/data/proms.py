"""Adapter for NHS Digital's Patient Reported Outcome Measures (PROMs), hip replacement:
the national record-level file → rows in the outcomes format, and the published aggregates
→ a tidy table to check outcome statistics against.

The record file has one row per patient who returned both questionnaires. Each becomes one
episode with a pre and a post row per instrument, so a missing score shows up as an unpaired
episode rather than vanishing. Missing values in the file: the Oxford Hip Score total, the
EQ-5D index and the predictions are blank when missing (9 is a valid Oxford Hip Score total;
it marks a missing answer only in the single-digit item columns, which are not used here);
EQ VAS uses 999 for missing; `*` suppresses age band and gender (not used).
"""

from __future__ import annotations

import datetime as dt
import functools
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from carecontracts.data.schemas import OUTCOMES, PREDICTED_SQL_TYPE

FOLDER = "examples/data/proms_2018_19"
RECORDS = "hip_replacement_records_2018_19.csv.gz"
AGGREGATES = "hip_replacement_published_aggregates_2018_19.csv"
FINANCIAL_YEAR_START = dt.date(2018, 4, 1)
FOLLOW_UP_DAYS = 182  # the post-operative questionnaire is sent six months after the operation

# instrument → (pre column, post column, predicted post column, missing marker or None)
HIP_INSTRUMENTS: dict[str, tuple[str, str, str, str | None]] = {
    "oxford_hip": ("Hip Replacement Pre-Op Q Score", "Hip Replacement Post-Op Q Score", "Hip Replacement OHS Post-Op Q Predicted", None),
    "eq5d_index": ("Pre-Op Q EQ5D Index", "Post-Op Q EQ5D Index", "Hip Replacement EQ5D Index Post-Op Q Predicted", None),
    "eq_vas": ("Pre-Op Q EQ VAS", "Post-Op Q EQ VAS", "Hip Replacement EQ VAS Post-Op Q Predicted", "999"),
}

OUTCOME_COLUMNS = ["patient_id", "episode_id", "instrument", "timepoint", "date", "score", "predicted", "provider"]


def shipped(name: str) -> Path:
    """A file shipped with the package in examples/data/proms_2018_19 (see its SOURCE.md)."""
    return Path(str(resources.files("carecontracts").joinpath(FOLDER, name)))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _score(column: str, missing: str | None, kind: str = "DECIMAL(18, 6)") -> str:
    """SQL for a score column as `kind` (a score's DECIMAL(18, 6), or a prediction's type,
    which keeps the up to 9 places the file publishes), null when blank or the missing marker."""
    text = f"NULLIF(trim({_quote(column)}), '')"
    if missing is not None:
        text = f"NULLIF({text}, {_literal(missing)})"
    return f"CAST(CAST({text} AS DECIMAL(38, 12)) AS {kind})"


def hip_outcomes_table(
    path: Path | None = None,
    start: dt.date = FINANCIAL_YEAR_START,
    instruments: tuple[str, ...] = ("oxford_hip", "eq5d_index"),
    primary_only: bool = False,
) -> pa.Table:
    """The PROMs hip replacement records as outcome rows (OUTCOMES columns plus `revision`).

    Episode and patient ids are `<provider>-<row>` (row: the record's data row in the file),
    stable across runs. The records carry no dates, so they are spread over the year from
    `start`: the pre score on start + (row − 1) mod 365 days, the post score 182 days later.
    The predicted post score goes on the post row. A score that is missing gives no row, so
    its episode is unpaired. `revision` is true for revision operations; `primary_only`
    keeps primary hip replacements only.
    """
    unknown = [name for name in instruments if name not in HIP_INSTRUMENTS]
    if unknown:
        raise KeyError(f"PROMs hip records carry no {', '.join(unknown)}: expected some of {', '.join(HIP_INSTRUMENTS)}")
    if path is None:
        return _shipped_hip_outcomes(start, tuple(instruments), primary_only)
    return _hip_outcomes(path, start, instruments, primary_only)


@functools.lru_cache(maxsize=8)
def _shipped_hip_outcomes(start: dt.date, instruments: tuple[str, ...], primary_only: bool) -> pa.Table:
    """The shipped records as outcome rows, read once per process: the file never changes,
    and reading it takes seconds (every example workspace written uses it)."""
    return _hip_outcomes(shipped(RECORDS), start, instruments, primary_only)


def _hip_outcomes(source: Path, start: dt.date, instruments: tuple[str, ...], primary_only: bool) -> pa.Table:
    """The records in `source` as outcome rows (see `hip_outcomes_table`)."""
    parts = []
    for name in instruments:
        pre, post, predicted, missing = HIP_INSTRUMENTS[name]
        for timepoint, column, day in (("pre", pre, "pre_day"), ("post", post, "post_day")):
            prediction = _score(predicted, missing, PREDICTED_SQL_TYPE) if timepoint == "post" else f"CAST(NULL AS {PREDICTED_SQL_TYPE})"
            parts.append(
                f"SELECT id, id AS episode_id, {_literal(name)} AS instrument, {_literal(timepoint)} AS timepoint, {day} AS date, "
                f"{_score(column, missing)} AS score, {prediction} AS predicted, provider, revision, row FROM records"
            )
    where = "score IS NOT NULL" + (" AND NOT revision" if primary_only else "")
    sql = f"""
        WITH numbered AS (
            SELECT *, row_number() OVER () AS row
            FROM read_csv({_literal(str(source))}, all_varchar = true, header = true)
        ),
        records AS (
            SELECT *, trim("Provider Code") || '-' || row AS id, trim("Provider Code") AS provider,
                   trim("Revision Flag") = '1' AS revision, row,
                   DATE {_literal(start.isoformat())} + CAST((row - 1) % 365 AS INTEGER) AS pre_day,
                   DATE {_literal(start.isoformat())} + CAST((row - 1) % 365 + {FOLLOW_UP_DAYS} AS INTEGER) AS post_day
            FROM numbered
        )
        SELECT id AS patient_id, episode_id, instrument, timepoint, date, score, predicted, provider, revision
        FROM ({' UNION ALL '.join(parts)})
        WHERE {where}
        ORDER BY row, instrument, timepoint DESC
    """
    con = duckdb.connect()
    try:
        table = con.execute(sql).to_arrow_table()
    finally:
        con.close()
    schema = OUTCOMES.arrow_schema(OUTCOME_COLUMNS)
    return table.cast(pa.schema([*schema, pa.field("revision", pa.bool_())]))


def write_hip_outcomes_csv(target: Path, path: Path | None = None, start: dt.date = FINANCIAL_YEAR_START,
                           instruments: tuple[str, ...] = ("oxford_hip", "eq5d_index"), primary_only: bool = False) -> int:
    """Write the PROMs hip outcomes as an outcomes CSV (for a workspace's data/outcomes);
    the number of rows written."""
    table = hip_outcomes_table(path, start, instruments, primary_only).select(OUTCOME_COLUMNS)  # no `revision`: not an outcomes column
    pacsv.write_csv(table, target)
    return table.num_rows


def published_hip_aggregates(path: Path | None = None) -> pa.Table:
    """The published PROMs hip replacement aggregates, tidied: snake_case columns, numbers
    typed, `*` (suppressed for disclosure control) as null."""
    source = path or shipped(AGGREGATES)

    def number(column: str, kind: str = "DOUBLE") -> str:
        return f"TRY_CAST(NULLIF(trim({_quote(column)}), '*') AS {kind})"

    sql = f"""
        SELECT "Procedure" AS procedure, "Organisation Type" AS organisation_type,
               "Organisation Code" AS organisation_code, "Organsation Name" AS organisation_name,
               "Measure" AS measure,
               {number("Modelled Records", "BIGINT")} AS modelled_records,
               {number("Average Pre-Op Q Score")} AS average_pre,
               {number("Average Post-Op Q Score")} AS average_post,
               {number("Health Gain")} AS health_gain,
               {number("Improved", "BIGINT")} AS improved,
               {number("Same", "BIGINT")} AS same,
               {number("Worse", "BIGINT")} AS worse,
               {number("Adjusted Post-Op Q Score")} AS adjusted_post,
               {number("Adjusted Average Health Gain")} AS adjusted_health_gain,
               {number("Standard Deviation")} AS standard_deviation
        FROM read_csv({_literal(str(source))}, all_varchar = true, header = true)
    """
    con = duckdb.connect()
    try:
        return con.execute(sql).to_arrow_table()
    finally:
        con.close()
