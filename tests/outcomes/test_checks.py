"""Outcome files are checked against the instruments on load: an unknown instrument or a
score outside the instrument's range is a located problem, and nothing is written.

CSV problems are located by file line: the header is line 1, so data row n is line n + 1."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from carecontracts.data.load import load_workspace
from carecontracts.data.proms import write_hip_outcomes_csv
from carecontracts.engine.backend import Engine
from carecontracts.instruments import INSTRUMENTS, instrument
from carecontracts.outcomes import duplicate_problems, duplicate_scores, episodes, outcome_tallies
from carecontracts.problems import Problem, ProblemsError
from carecontracts.workspace import Workspace

HEADER = "patient_id,episode_id,instrument,timepoint,date,score"
GOOD = [
    "P1,E1,oxford_hip,pre,2025-03-01,20",
    "P1,E1,oxford_hip,post,2025-09-01,38",
    "P2,E2,eq5d_index,pre,2025-03-02,-0.594",
    "P2,E2,eq5d_index,post,2025-09-02,1",
    "P3,E3,barthel,pre,2025-03-03,0",
    "P3,E3,barthel,post,2025-04-03,20",
]


def workspace_with(root: Path, rows: list[str], header: str = HEADER) -> Workspace:
    """A workspace whose only data file is data/outcomes/scores.csv."""
    (root / "carecontracts.toml").write_text('name = "t"\n', encoding="utf-8")
    folder = root / "data" / "outcomes"
    folder.mkdir(parents=True)
    (folder / "scores.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return Workspace.open(root)


def problems_loading(root: Path, rows: list[str], header: str = HEADER) -> list[Problem]:
    """Load, expecting it to fail and write nothing (a first load: no warehouse at all);
    the problems found."""
    workspace = workspace_with(root, rows, header)
    with pytest.raises(ProblemsError) as error:
        load_workspace(workspace)
    assert not workspace.warehouse_path.exists()
    return error.value.problems


def test_scores_at_the_ends_of_each_range_load(tmp_path: Path) -> None:
    report = load_workspace(workspace_with(tmp_path, GOOD))
    assert report.rows["outcomes"] == 6


def test_score_above_the_instrument_maximum_is_located(tmp_path: Path) -> None:
    rows = [*GOOD, "P4,E4,oxford_hip,post,2025-09-04,49"]
    (problem,) = problems_loading(tmp_path, rows)
    assert problem.source == "data/outcomes/scores.csv"
    assert problem.line == 8  # header + 6 good rows, then this one
    assert problem.field == "score"
    assert problem.value == "49"
    assert problem.expected == "an oxford_hip score between 0 and 48"
    assert str(problem).startswith("data/outcomes/scores.csv:8 score: '49'")


def test_range_depends_on_the_instrument(tmp_path: Path) -> None:
    # 21 is a fine Oxford Hip Score but one above the Barthel maximum; -0.6 is just below the
    # EQ-5D index minimum of -0.594.
    rows = ["P1,E1,oxford_hip,pre,2025-03-01,21", "P2,E2,barthel,pre,2025-03-01,21", "P3,E3,eq5d_index,pre,2025-03-01,-0.6"]
    problems = problems_loading(tmp_path, rows)
    assert [(p.line, p.field, p.value, p.expected) for p in problems] == [
        (3, "score", "21", "a barthel score between 0 and 20"),
        (4, "score", "-0.6", "an eq5d_index score between -0.594 and 1"),
    ]


def test_unknown_instrument_is_located_with_the_known_names(tmp_path: Path) -> None:
    (problem,) = problems_loading(tmp_path, [*GOOD[:2], "P9,E9,oxford_hips,pre,2025-03-01,20"])
    assert (problem.source, problem.line, problem.field, problem.value) == ("data/outcomes/scores.csv", 4, "instrument", "oxford_hips")
    assert problem.expected is not None
    for name in ("oxford_hip", "oxford_knee", "eq5d_index", "barthel"):
        assert name in problem.expected


def test_predicted_score_outside_the_range_is_located(tmp_path: Path) -> None:
    rows = ["P1,E1,oxford_hip,pre,2025-03-01,20,", "P1,E1,oxford_hip,post,2025-09-01,40,48.5"]
    (problem,) = problems_loading(tmp_path, rows, HEADER + ",predicted")
    assert (problem.line, problem.field, problem.value) == (3, "predicted", "48.5")
    assert problem.expected == "an oxford_hip predicted score between 0 and 48"


def test_timepoint_other_than_pre_or_post_is_located(tmp_path: Path) -> None:
    (problem,) = problems_loading(tmp_path, ["P1,E1,oxford_hip,baseline,2025-03-01,20"])
    assert (problem.line, problem.field, problem.value) == (2, "timepoint", "baseline")


def test_instrument_lookup_names_the_known_instruments() -> None:
    assert instrument("oxford_knee").min_change == 7
    with pytest.raises(KeyError, match="oxford_hip"):
        instrument("oxford")


def test_instrument_defaults_are_those_the_contracts_name() -> None:
    # Minimal important differences and ranges as stated for outcome contracts.
    assert {k: (str(v.minimum), str(v.maximum), str(v.min_change)) for k, v in INSTRUMENTS.items() if k != "eq_vas"} == {
        "oxford_hip": ("0", "48", "8"),
        "oxford_knee": ("0", "48", "7"),
        "eq5d_index": ("-0.594", "1", "0.074"),
        "barthel": ("0", "20", "2"),
    }


def test_loaded_outcomes_count_unpaired_and_report_duplicates(tmp_path: Path) -> None:
    """Through the warehouse: a post score with no pre score loads (it is not a data error),
    is counted as unpaired, and a second post score for one episode is reported at its line."""
    rows = [
        "P1,E1,oxford_hip,pre,2025-03-01,20",
        "P1,E1,oxford_hip,post,2025-09-01,30",
        "P2,E2,oxford_hip,post,2025-09-02,41",  # no pre score
        "P1,E1,oxford_hip,post,2025-10-01,32",  # second post score for E1: line 5
    ]
    workspace = workspace_with(tmp_path, rows)
    load_workspace(workspace)
    engine = Engine.duckdb(workspace.warehouse_path, read_only=True)
    try:
        outcomes = engine.table("outcomes")
        (tally,) = engine.to_arrow(outcome_tallies(episodes(outcomes), [], "oxford_hip", "mean_change")).to_pylist()
        duplicates = engine.to_arrow(duplicate_scores(outcomes)).to_pylist()
    finally:
        engine.close()
    # E1: 20 → 32 (the later post score); E2 unpaired.
    assert (tally["episodes"], tally["total"], tally["unpaired"], tally["post_without_pre"]) == (1, Decimal(12), 1, 1)
    (problem,) = duplicate_problems(duplicates)
    assert (problem.source, problem.line, problem.field) == ("data/outcomes/scores.csv", 5, "timepoint")
    assert "E1" in problem.message and "2 oxford_hip post scores" in problem.message and "latest" in problem.message


def test_proms_outcomes_load_as_an_outcomes_file(tmp_path: Path) -> None:
    """The PROMs adapter writes a file the loader accepts: every score and prediction is in
    range and has no more places than the columns keep (6 for scores, 10 for predictions),
    and no column the outcomes do not have."""
    (tmp_path / "carecontracts.toml").write_text('name = "t"\n', encoding="utf-8")
    folder = tmp_path / "data" / "outcomes"
    folder.mkdir(parents=True)
    written = write_hip_outcomes_csv(folder / "proms.csv", instruments=("oxford_hip", "eq5d_index", "eq_vas"))
    report = load_workspace(Workspace.open(tmp_path))
    assert report.rows["outcomes"] == written
    # 41,280 records × 3 instruments × 2 timepoints, less the missing scores: Oxford Hip
    # Score pre 509 + post 405 blank, EQ-5D index 2,540 + 1,634 blank, EQ VAS 3,932 + 1,749
    # at 999 (counted from the file's columns).
    assert written == 41280 * 6 - (509 + 405) - (2540 + 1634) - (3932 + 1749)
