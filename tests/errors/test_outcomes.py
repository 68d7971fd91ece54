"""Outcome files and statistics: instruments the data does not hold, predictions and scores
that the outcomes columns cannot keep, and paired episodes a case-mix figure cannot use,
which are counted and shown rather than dropped."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from carecontracts.data.proms import HIP_INSTRUMENTS, RECORDS, shipped
from tests.errors.catalogue import Case, invoke, nothing, refused

HIP = "data/outcomes/hip-proms.csv"
FIELDS = ("patient_id", "episode_id", "instrument", "timepoint", "date", "score", "predicted", "provider")


def set_field(name: str, line: int, column: str, value: str):
    """Change: one column of one line (the header is line 1) of an outcomes CSV file."""

    def change(ws: Path) -> None:
        path = ws / name
        lines = path.read_text(encoding="utf-8").split("\n")
        cells = lines[line - 1].split(",")
        cells[FIELDS.index(column)] = value
        lines[line - 1] = ",".join(cells)
        path.write_text("\n".join(lines), encoding="utf-8")

    return change


def outcomes_parquet(predicted: float, extra: str | None = None):
    """Change: an outcomes Parquet file of one paired episode, the prediction a DOUBLE."""

    def change(ws: Path) -> None:
        columns = {
            "patient_id": ["P1", "P1"], "episode_id": ["E1", "E1"], "instrument": ["oxford_hip", "oxford_hip"],
            "timepoint": ["pre", "post"], "date": pa.array([19_000, 19_180], pa.date32()),
            "score": pa.array([Decimal(20), Decimal(40)], pa.decimal128(18, 6)), "predicted": pa.array([None, predicted], pa.float64()),
        }
        if extra:
            columns[extra] = ["x", "x"]
        pq.write_table(pa.table(columns), ws / "data/outcomes/extra.parquet")

    return change


LOAD = ("load", "-w", "{ws}")

CASES = [
    Case("proms-knee", nothing, ("outcomes", "--proms", "--instrument", "oxford_knee"), ("--instrument", "hold no oxford_knee scores", "oxford_hip, eq5d_index, eq_vas")),
    Case("proms-barthel", nothing, ("outcomes", "--proms", "--instrument", "barthel", "--statistic", "mean_post"), ("hold no barthel scores", "oxford_hip, eq5d_index, eq_vas")),
    Case("instrument-not-loaded", nothing, ("outcomes", "-w", "{ws}", "--instrument", "eq_vas"), ("data/outcomes", "no eq_vas scores are loaded", "barthel or eq5d_index or oxford_hip")),
    Case("knee-not-loaded-casemix", nothing, ("outcomes", "-w", "{ws}", "--instrument", "oxford_knee", "--statistic", "casemix_adjusted_mean"), ("no oxford_knee scores are loaded",)),
    Case("prediction-eleven-places", set_field(HIP, 3, "predicted", "0.92875100001"), LOAD, (f"{HIP}:3", "predicted", "at most 10 decimal places")),
    Case("prediction-double-too-precise", outcomes_parquet(38.123456789012), LOAD, ("data/outcomes/extra.parquet row 2", "predicted", "at most 10 decimal places")),
    Case("prediction-outside-range", set_field(HIP, 5, "predicted", "48.5"), LOAD, (f"{HIP}:5", "predicted", "between 0 and 48")),
    Case("score-outside-range", set_field(HIP, 3, "score", "1.5"), LOAD, (f"{HIP}:3", "score", "an eq5d_index score between")),
    Case("score-seven-places", set_field(HIP, 4, "score", "15.0000001"), LOAD, (f"{HIP}:4", "score", "at most 6 decimal places")),
    Case("unknown-instrument", set_field(HIP, 2, "instrument", '"eq5d"'), LOAD, (f"{HIP}:2", "instrument", "eq5d_index")),
    Case("timepoint-not-pre-or-post", set_field(HIP, 2, "timepoint", '"during"'), LOAD, (f"{HIP}:2", "timepoint", "one of pre, post")),
    Case("parquet-unknown-column", outcomes_parquet(38.5, extra="site"), LOAD, ("data/outcomes/extra.parquet", "unknown column site")),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_refused(example: Path, case: Case) -> None:
    refused(example, case)


def test_predictions_as_published_load_exactly(example: Path) -> None:
    """Predictions with 8 and 9 places, as NHS England publishes them, load as they are."""
    set_field(HIP, 3, "predicted", "0.92875123")(example)
    set_field(HIP, 5, "predicted", "42.322727489")(example)
    result = invoke(example, "load", "-w", "{ws}")
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(example / ".carecontracts/warehouse.duckdb"), read_only=True)
    try:
        stored = dict(con.execute("SELECT source_row, predicted FROM outcomes WHERE source_file = ? AND source_row IN (2, 4)", [HIP]).fetchall())
    finally:
        con.close()
    assert stored == {2: Decimal("0.9287512300"), 4: Decimal("42.3227274890")}


SMALL = """patient_id,episode_id,instrument,timepoint,date,score,predicted,provider
P1,E1,oxford_hip,pre,2025-05-01,20,,PA
P1,E1,oxford_hip,post,2025-11-01,40,38.12345678,PA
P2,E2,oxford_hip,pre,2025-05-02,25,,PA
P2,E2,oxford_hip,post,2025-11-02,35,36.87654322,PA
P3,E3,oxford_hip,pre,2025-05-03,30,,PA
P3,E3,oxford_hip,post,2025-11-03,44,,PA
P4,E4,oxford_hip,pre,2025-05-04,10,,PB
P4,E4,oxford_hip,post,2025-11-04,32,30.5,PB
P5,E5,oxford_hip,pre,2025-05-05,15,,PB
P5,E5,oxford_hip,post,2025-11-05,28,27.5,PB
P6,E6,oxford_hip,post,2025-11-06,30,29,PB
"""


def test_casemix_counts_paired_episodes_without_a_prediction(example: Path) -> None:
    """E3 is paired but has no prediction: the case-mix figure cannot use it, so it is
    counted and shown, not silently left out. By hand: everyone's mean prediction over the
    4 usable episodes is (38.12345678 + 36.87654322 + 30.5 + 27.5) / 4 = 33.25; PA observed
    (40 + 35) / 2 = 37.5 less predicted 75 / 2 = 37.5, + 33.25 = 33.25; PB observed
    (32 + 28) / 2 = 30 less predicted 29, + 33.25 = 34.25 (E6 has no pre score: unpaired);
    everyone 33.75 − 33.25 + 33.25 = 33.75."""
    for old in (example / "data/outcomes").glob("*.csv"):
        old.unlink()
    (example / "data/outcomes/small.csv").write_text(SMALL, encoding="utf-8")
    assert invoke(example, "load", "-w", "{ws}").exit_code == 0
    result = invoke(example, "outcomes", "-w", "{ws}", "--statistic", "casemix_adjusted_mean")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    # provider, value, interval, episodes, successes (none for a mean), unpaired, no prediction
    assert re.search(r"│ PA │ 33\.25 │ [^│]+ │ 2 │ │ 0 │ 1 │", flat), result.output
    assert re.search(r"│ PB │ 34\.25 │ [^│]+ │ 2 │ │ 1 │ 0 │", flat), result.output
    assert re.search(r"│ everyone │ 33\.75 │ [^│]+ │ 4 │ │ 1 │ 1 │", flat), result.output
    assert "4 episodes; 1 unpaired; 1 paired without a prediction, left out" in flat
    assert "1 paired episode has no predicted score" in flat


def test_casemix_with_no_predictions_counts_every_paired_episode(example: Path) -> None:
    """Barthel scores carry no predictions: every paired episode is counted as left out,
    per provider, and the counts add up to the paired episodes the load reports."""
    loaded = invoke(example, "load", "-w", "{ws}")
    paired = int(re.search(r"│ barthel │ [\d,]+ │ ([\d,]+) │", " ".join(loaded.output.split())).group(1).replace(",", ""))
    result = invoke(example, "outcomes", "-w", "{ws}", "--instrument", "barthel", "--statistic", "casemix_adjusted_mean")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    left_out = [int(n.replace(",", "")) for n in re.findall(r"no paired episodes with a prediction │ │ 0 │ │ [\d,]+ │ ([\d,]+) │", flat)]
    assert len(left_out) == 4 and sum(left_out) == paired
    assert f"{paired:,} paired episodes have no predicted score" in flat


def test_proms_eq_vas_is_measured() -> None:
    """The PROMs hip records hold EQ VAS (999 marks a missing score): `--proms --instrument
    eq_vas` measures it over the primary operations with both scores."""
    assert "eq_vas" in HIP_INSTRUMENTS
    con = duckdb.connect()
    try:
        both, one = con.execute(
            """SELECT count_if(pre IS NOT NULL AND post IS NOT NULL), count_if((pre IS NULL) <> (post IS NULL)) FROM (
                 SELECT NULLIF(NULLIF(trim("Pre-Op Q EQ VAS"), ''), '999') AS pre, NULLIF(NULLIF(trim("Post-Op Q EQ VAS"), ''), '999') AS post
                 FROM read_csv(?, all_varchar = true, header = true) WHERE trim("Revision Flag") <> '1')""",
            [str(shipped(RECORDS))],
        ).fetchone()
    finally:
        con.close()
    result = invoke(Path("."), "outcomes", "--proms", "--instrument", "eq_vas")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert f"of {both:,} episodes; {one:,} unpaired" in flat
