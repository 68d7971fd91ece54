"""The catalogue of bad inputs and faults: each case is one line in its class's module, and
every case must end in a clear refusal: exit 2, no traceback, a message naming the place
(file, line or row, field) and what was expected, and the warehouse and earlier outputs
exactly as they were.

A case is `Case(name, change, command, says)`:
- `change(ws)` spoils a copy of a small, loaded and paid example workspace (a file edited,
  a setting, a directory in a file's place, ...);
- `command` the CLI arguments run on it (`{ws}` is replaced by the workspace's path);
- `says` the fragments the output must contain (the place and what was expected).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

from carecontracts.cli import app

runner = CliRunner()
EXAMPLE_ROWS = 3000
Change = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One bad input or fault and what its refusal must say."""

    name: str
    change: Change
    command: tuple[str, ...]
    says: tuple[str, ...] = ()
    code: int = 2
    unchanged: bool = True  # the warehouse, records and outputs are as they were
    marks: tuple = field(default_factory=tuple)

    def param(self):
        return pytest.param(self, id=self.name, marks=self.marks)


def nothing(ws: Path) -> None:
    """No change: the fault is in the command itself."""


def invoke(ws: Path, *args: str):
    return runner.invoke(app, [a.replace("{ws}", str(ws)) for a in args])


@pytest.fixture(scope="session")
def example_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small example workspace, loaded and paid once per test session."""
    root = tmp_path_factory.mktemp("catalogue") / "example"
    for args in (("init", str(root), "--rows", str(EXAMPLE_ROWS)), ("load", "-w", str(root)), ("pay", "year", "-w", str(root))):
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def example(example_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the loaded and paid example for one case to spoil."""
    target = tmp_path / "example"
    shutil.copytree(example_template, target)
    return target


def state(ws: Path) -> dict[str, str]:
    """A digest of every file the product writes (warehouse, records, outputs), so a refused
    command can be shown to have changed nothing."""
    found = {}
    folder = ws / ".carecontracts"
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file() and "parquet" not in path.parts:
            found[str(path.relative_to(ws))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def refused(ws: Path, case: Case) -> None:
    """Apply the case and check its refusal: exit code, no traceback, the place and what
    was expected named, nothing the product keeps changed."""
    case.change(ws)
    before = state(ws)
    result = invoke(ws, *case.command)
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{case.name}: raised {result.exception!r}\n{output}"
    assert "Traceback" not in output, f"{case.name}: a traceback\n{output}"
    assert result.exit_code == case.code, f"{case.name}: exit {result.exit_code}, expected {case.code}\n{output}"
    flat = " ".join(output.split())
    for fragment in case.says:
        assert " ".join(fragment.split()) in flat, f"{case.name}: {fragment!r} not in\n{output}"
    if case.unchanged:
        assert state(ws) == before, f"{case.name}: the warehouse, records or outputs changed"
