"""`carecontracts audit` end to end: the example's planted clock-stopping is found at its
provider and nowhere else; standalone files, binned or not; bad input gives located errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

os.environ["COLUMNS"] = "250"

from carecontracts.audit.run import audit_workspace  # noqa: E402
from carecontracts.cli import app  # noqa: E402
from carecontracts.examples.generate import CLOCK_STOPPER  # noqa: E402
from carecontracts.workspace import Workspace  # noqa: E402

runner = CliRunner()
EXAMPLE_ROWS = 200_000


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit") / "example"
    assert invoke("init", root, "--rows", EXAMPLE_ROWS).exit_code == 0
    loaded = invoke("load", "-w", root)
    assert loaded.exit_code == 0, loaded.output
    return root


def test_example_audit_finds_the_clock_stopper_and_nothing_elsewhere(example: Path, tmp_path: Path) -> None:
    audit = audit_workspace(Workspace.open(example))
    assert {f.subject for f in audit.doubtful} == {CLOCK_STOPPER}
    assert {f.check for f in audit.doubtful} >= {"bunching", "discontinuity"}
    stopper = next(s for s in audit.subjects if s.subject == CLOCK_STOPPER)
    assert stopper.bunching is not None and stopper.bunching.significant and stopper.bunching.ratio > 1.5
    others = [s for s in audit.subjects if s.subject != CLOCK_STOPPER and s.bunching is not None]
    assert others and not any(s.bunching.significant for s in others if s.bunching)
    assert all(c.within_tolerance for c in audit.comparisons)  # the figures published reconcile with the records

    page = tmp_path / "audit.html"
    result = invoke("audit", "-w", example, "--html", page)
    assert result.exit_code == 0, result.output
    assert "bunching just under 18 weeks" in result.output and f"({CLOCK_STOPPER})" in result.output
    text = page.read_text()
    assert text.count("<svg") >= 4 and "http" not in text.split("<svg", 1)[0].replace("http-equiv", "")


def waits_file(path: Path, seed: int, planted: bool) -> Path:
    rng = np.random.default_rng(seed)
    weeks = np.floor((7 + rng.gamma(2.0, 40.0, 4_000)) / 7) + 1  # completed weeks, 1 to …
    if planted:
        moved = (weeks > 18) & (weeks <= 22) & (rng.random(4_000) < 0.5)
        weeks[moved] = 18
    path.write_text("patient,waits_weeks\n" + "".join(f"P{i},{w:g}\n" for i, w in enumerate(weeks)))
    return path


def test_standalone_file_with_bunching(tmp_path: Path) -> None:
    result = invoke("audit", "--file", waits_file(tmp_path / "waits.csv", 1, True), "--value", "waits_weeks", "--threshold", 18, "--id", "patient")
    assert result.exit_code == 0, result.output
    assert "times as many patients waited 17–18 weeks as 18–19 weeks" in result.output
    assert "bunching just under 18 weeks" in result.output
    smooth = invoke("audit", "--file", waits_file(tmp_path / "smooth.csv", 2, False), "--value", "waits_weeks", "--threshold", 18)
    assert smooth.exit_code == 0 and "0 findings to explain" in smooth.output


def test_standalone_binned_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    counts = np.bincount(np.minimum(np.floor(rng.gamma(2.0, 6.0, 20_000)).astype(int), 52), minlength=53)
    counts[17] += 400  # waits of 17–18 weeks
    lines = [f"{w},{w + 1 if w < 52 else ''},{c}" for w, c in enumerate(counts)]
    path = tmp_path / "binned.csv"
    path.write_text("weeks_from,weeks_to,patients\n" + "\n".join(lines) + "\n")
    result = invoke("audit", "--file", path, "--value", "weeks_from", "--upper", "weeks_to", "--count", "patients", "--threshold", 18)
    assert result.exit_code == 0, result.output
    assert "bunching just under 18 weeks" in result.output


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("waits_weeks\nsoon\nlater\n", ("--value", "waits_weeks"), "'soon' is not a number"),
        ("waits_weeks\n\n\n", ("--value", "waits_weeks"), "no numeric values"),
        ("waits_weeks\n1\n2\n3\n", ("--value", "waits_weeks", "--threshold", 18), "outside the data's range"),
        ("waits\n1\n", ("--value", "wait_weeks"), "no column 'wait_weeks'"),
        ("lower,upper,n\n0,1,5\n2,3,5\n1,2,5\n", ("--value", "lower", "--upper", "upper", "--count", "n", "--threshold", 2), "bins out of order"),
        ("lower,upper,n\n0,1,5\n0.5,2,5\n2,3,5\n", ("--value", "lower", "--upper", "upper", "--count", "n", "--threshold", 2), "overlaps the previous bin"),
        ("lower,upper,n\n0,1,5\n1,2,-4\n2,3,5\n", ("--value", "lower", "--upper", "upper", "--count", "n", "--threshold", 2), "negative count"),
    ],
)
def test_bad_files_give_located_errors(tmp_path: Path, content: str, args: tuple[object, ...], message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = invoke("audit", "--file", path, *args)
    assert result.exit_code == 2
    assert message in result.output
