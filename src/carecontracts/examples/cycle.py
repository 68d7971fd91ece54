"""The example's monthly cycle: a provider's resubmission of a closed month and activity a
commissioner challenges, written beside the year's activity so the cycle can be shown."""

from __future__ import annotations

from pathlib import Path

import duckdb

RESUBMITTED = ("ISP-HEALTHCARE", "2025-05")
LATE_SPELLS = 12
CHALLENGED = ("ACUTE-RFH", "2025-06", "EL", 3)


def write_cycle_files(root: Path) -> list[Path]:
    """data/cycle/: ISP-HEALTHCARE's May sent again with 12 late-coded spells, and three
    elective June spells of ACUTE-RFH that the ICB challenges as duplicates."""
    folder = root / "data" / "cycle"
    folder.mkdir(parents=True, exist_ok=True)
    source = f"read_parquet('{root / 'data' / 'activity'}/*.parquet', union_by_name = true)"
    provider, month = RESUBMITTED
    resubmission = folder / f"isp-healthcare-{month}-resubmission.csv"
    acute, challenged_month, pod, count = CHALLENGED
    challenged = folder / f"acute-rfh-{challenged_month}-challenged.csv"
    with duckdb.connect() as con:
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        picked = ", ".join(columns)
        late = ", ".join("'LATE-' || lpad(CAST(n AS VARCHAR), 4, '0') AS activity_id" if c == "activity_id" else c for c in columns)
        con.execute(
            f"""COPY (
                  SELECT {picked} FROM {source} WHERE provider = '{provider}' AND strftime(end_date, '%Y-%m') = '{month}'
                  UNION ALL
                  SELECT {late} FROM (
                      SELECT *, row_number() OVER (ORDER BY activity_id) AS n FROM {source}
                      WHERE provider = '{provider}' AND strftime(end_date, '%Y-%m') = '{month}' AND pod IN ('EL', 'DC'))
                  WHERE n <= {LATE_SPELLS}
                  ORDER BY activity_id) TO '{resubmission}' (HEADER, DELIMITER ',')"""
        )
        con.execute(
            f"""COPY (SELECT activity_id FROM {source}
                      WHERE provider = '{acute}' AND strftime(end_date, '%Y-%m') = '{challenged_month}' AND pod = '{pod}'
                      ORDER BY activity_id LIMIT {count}) TO '{challenged}' (HEADER, DELIMITER ',')"""
        )
    return [resubmission, challenged]
