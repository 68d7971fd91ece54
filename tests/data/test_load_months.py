"""Loading a month at a time: a new month leaves earlier months as they were, the same
month again replaces itself (no duplicates), a row from another month is refused, and a
load killed part-way leaves the warehouse as it was."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from carecontracts.data.load import load_month
from carecontracts.problems import ProblemsError
from carecontracts.workspace import Workspace

HEADER = "activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity"
OCTOBER = ["O1,P1,PROV,ICB,general,HRG1,EL,2025-10-01,2025-10-03,1", "O2,P2,PROV,ICB,general,HRG1,EL,2025-10-20,2025-10-31,2"]
NOVEMBER = ["N1,P3,PROV,ICB,general,HRG1,EL,2025-11-01,2025-11-02,1", "N2,P4,PROV,ICB,general,HRG2,NEL,2025-11-05,2025-11-05,1",
            "N3,P5,PROV,ICB,general,HRG2,NEL,2025-11-30,2025-11-30,1"]
DECEMBER = ["E1,P6,PROV,ICB,general,HRG1,EL,2025-12-01,2025-12-02,1", "E2,P7,PROV,ICB,general,HRG1,EL,2025-12-10,2025-12-10,1"]


def workspace(root: Path) -> Workspace:
    (root / "carecontracts.toml").write_text('name = "months"\n', encoding="utf-8")
    (root / "data" / "activity").mkdir(parents=True)
    return Workspace.open(root)


def put(space: Workspace, name: str, rows: list[str]) -> Path:
    path = space.root / "data" / "activity" / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def table(space: Workspace, sql: str = "SELECT activity_id, end_date, quantity, source_file FROM activity ORDER BY activity_id") -> list[tuple]:
    with duckdb.connect(str(space.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_months_load_one_at_a_time_and_a_month_again_replaces_itself(tmp_path: Path) -> None:
    space = workspace(tmp_path)
    put(space, "activity-2025-10.csv", OCTOBER)
    load_month(space, dt.date(2025, 10, 1))
    october = table(space)
    assert [r[0] for r in october] == ["O1", "O2"]

    put(space, "activity-2025-11.csv", NOVEMBER)
    report = load_month(space, dt.date(2025, 11, 1))
    assert report.rows["activity"] == 3 and report.files["activity"] == ["data/activity/activity-2025-11.csv"]
    after = table(space)
    assert [r for r in after if r[0].startswith("O")] == october  # October as it was
    assert [r[0] for r in after] == ["N1", "N2", "N3", "O1", "O2"]

    load_month(space, dt.date(2025, 11, 1))  # the same month again: the same table
    assert table(space) == after

    put(space, "activity-2025-11.csv", NOVEMBER[:2])  # a corrected November: one row fewer
    load_month(space, dt.date(2025, 11, 1))
    assert [r[0] for r in table(space)] == ["N1", "N2", "O1", "O2"]


def test_a_row_from_another_month_is_refused_and_nothing_written(tmp_path: Path) -> None:
    space = workspace(tmp_path)
    put(space, "activity-2025-10.csv", OCTOBER)
    load_month(space, dt.date(2025, 10, 1))
    before = table(space)
    put(space, "activity-2025-11.csv", NOVEMBER + ["X1,P9,PROV,ICB,general,HRG1,EL,2025-12-01,2025-12-01,1"])
    with pytest.raises(ProblemsError) as error:
        load_month(space, dt.date(2025, 11, 1))
    (problem,) = error.value.problems
    assert (problem.source, problem.line, problem.field, problem.value) == ("data/activity/activity-2025-11.csv", 5, "end_date", "2025-12-01")
    assert "outside 2025-11, the month being loaded" in problem.message
    assert table(space) == before


def test_a_month_with_no_files_is_an_error(tmp_path: Path) -> None:
    space = workspace(tmp_path)
    with pytest.raises(ProblemsError) as error:
        load_month(space, dt.date(2025, 12, 1))
    assert "no activity files for 2025-12" in error.value.problems[0].message


@pytest.mark.parametrize("whole", [False, True], ids=["month", "whole"])
def test_a_load_killed_part_way_leaves_the_warehouse_as_it_was(tmp_path: Path, whole: bool) -> None:
    """Kill `carecontracts load` while it is staging a large month; the warehouse reopens
    with exactly the rows it had, and a load then completes."""
    space = workspace(tmp_path)
    put(space, "activity-2025-10.csv", OCTOBER)
    load_month(space, dt.date(2025, 10, 1))
    before = table(space)
    big = space.root / "data" / "activity" / "activity-2025-12.csv"
    with duckdb.connect() as con:
        con.execute(
            f"""COPY (SELECT 'D' || i AS activity_id, 'Q' || i AS patient_id, 'PROV' AS provider, 'ICB' AS commissioner,
                       'general' AS service, 'HRG1' AS currency, 'EL' AS pod, DATE '2025-12-01' + CAST(i % 28 AS INTEGER) AS start_date,
                       DATE '2025-12-01' + CAST(i % 28 AS INTEGER) AS end_date, 1 AS quantity
                FROM range(3000000) t(i)) TO '{big}' (HEADER)"""
        )
    marker = tmp_path / "staging-started"
    script = (
        "import sys, datetime as dt\n"
        "from pathlib import Path\n"
        "from carecontracts.data.load import load_month, load_workspace\n"
        "from carecontracts.workspace import Workspace\n"
        "space = Workspace.open(Path(sys.argv[1]))\n"
        "def step(name, done, total):\n"
        "    if name.endswith('2025-12.csv'):\n"
        "        Path(sys.argv[2]).touch()\n"
        f"{'load_workspace(space, progress=step)' if whole else 'load_month(space, dt.date(2025, 12, 1), progress=step)'}\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(space.root), str(marker)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # well inside staging the 3,000,000 rows, which takes seconds
    assert process.poll() is None, "the load finished before it could be killed; make the file larger"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert table(space) == before
    if whole:
        big.unlink()
        (space.root / "data" / "activity" / "activity-2025-10.csv").unlink()
        put(space, "all.csv", OCTOBER + NOVEMBER)
        from carecontracts.data.load import load_workspace

        load_workspace(space)
        assert [r[0] for r in table(space)] == ["N1", "N2", "N3", "O1", "O2"]
    else:
        # Load December again, now a file of two rows (the three million took most of the
        # test's time, and loading them to the end shows nothing the two rows do not): none
        # of the rows staged before the kill is left behind.
        put(space, "activity-2025-12.csv", DECEMBER)
        load_month(space, dt.date(2025, 12, 1))
        assert [r[0] for r in table(space)] == ["E1", "E2", "O1", "O2"]


def test_spark_copies_activity_by_month_and_only_after_a_load(tmp_path: Path) -> None:
    from carecontracts.payments import spark_copy

    space = workspace(tmp_path)
    put(space, "activity-2025-10.csv", OCTOBER)
    load_month(space, dt.date(2025, 10, 1))
    folder = spark_copy(space)
    assert sorted(p.name for p in (folder / "activity").iterdir()) == ["end_month=2025-10"]
    made = (folder / "STAMP").stat().st_mtime_ns
    assert spark_copy(space) == folder and (folder / "STAMP").stat().st_mtime_ns == made  # nothing loaded since: kept
    put(space, "activity-2025-11.csv", NOVEMBER)
    load_month(space, dt.date(2025, 11, 1))
    assert sorted(p.name for p in (spark_copy(space) / "activity").iterdir()) == ["end_month=2025-10", "end_month=2025-11"]
