"""Every command with malformed arguments: a missing workspace folder, a month like 2025-13,
a nonsense option value, an unknown contract, an empty string, a folder where a file is
wanted. None may end in a traceback; each is refused with exit 2 (1 only where a command
documents it), and the workspace is left as it was.

The commands are found by walking the application (`registered_commands` and the sub-apps
in `registered_groups`), so a new command is fuzzed without being listed here."""

from __future__ import annotations

import shutil
import typing
from pathlib import Path

import pytest
import typer

from tests.errors.catalogue import Case, invoke, nothing, state
from carecontracts.cli import app

# Documented exit 1: a command that ran and found a difference (not bad input).
EXIT_ONE = {("invoice", "list"), ("monitoring", "reconcile")}
MONTHS = {"period", "month", "as_of", "from_month", "to_month"}
# A sound value for each required argument or option, by parameter name.
SOUND = {
    "period": "2025-11", "month": "2025-11", "as_of": "2025-11", "contract": "ACUTE-2025", "component": "api",
    "reference": "CH-0001", "response": "agreed", "reason": "duplicate", "amount": "1000", "acm": "{ws}/acm.csv",
    "path": "{ws}/outputs/fuzz.csv", "out_path": "{ws}/outputs/fuzz-acm.csv", "folder": "{ws}/new-workspace",
    "files": "{ws}/data/plans/plans.csv",
}
PATHS = {"path", "out_path", "files", "file", "acm", "model", "xlsx", "html", "csv", "parquet", "output", "plcm", "invoice", "codes", "activity_file"}


def commands() -> list[tuple[tuple[str, ...], typer.models.CommandInfo]]:
    """Every command of the application, with the names that reach it."""
    found: list[tuple[tuple[str, ...], typer.models.CommandInfo]] = []
    for info in app.registered_commands:
        found.append(((info.name or info.callback.__name__.replace("_", "-"),), info))
    for group in app.registered_groups:
        for info in group.typer_instance.registered_commands:
            found.append(((group.name, info.name or info.callback.__name__.replace("_", "-")), info))
    return sorted(found, key=lambda item: item[0])


def parameters(names: tuple[str, ...]):
    """The command's parameters as the command line sees them."""
    command = typer.main.get_command(app)
    for name in names:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command.params


def numeric(annotation) -> bool:
    return annotation in (int, float) or any(a in (int, float) for a in typing.get_args(annotation))


def base(params, values: dict[str, str] | None = None) -> list[str]:
    """The command's required arguments and options, sound unless `values` says otherwise."""
    values = values or {}
    args: list[str] = []
    for p in params:
        if p.param_type_name == "argument" and (p.required or p.name in values):
            args.append(values.get(p.name, SOUND.get(p.name, "x")))
        elif p.param_type_name == "option" and (p.required or p.name in values):
            args += [p.opts[0], values.get(p.name, SOUND.get(p.name, "x"))]
    return args


def variants(names: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """The malformed invocations of one command."""
    params = parameters(names)
    named = {p.name: p for p in params}
    found: list[tuple[str, list[str]]] = []
    if "workspace" in named:
        found.append(("no-workspace", [*base(params), "-w", "{ws}/no-such-folder"]))
    workspace = ["-w", "{ws}"] if "workspace" in named else []
    months = [n for n in named if n in MONTHS]
    if months:
        found.append(("bad-month", [*base(params, {m: "2025-13" for m in months}), *workspace]))
    numbers = [p for p in params if p.param_type_name == "option" and numeric(p.type_descriptor.annotation)]
    if numbers:
        found.append(("nonsense-number", [*base(params), *workspace, numbers[0].opts[0], "lots"]))
    if "backend" in named:
        found.append(("nonsense-backend", [*base(params), *workspace, "--backend", "nonsense"]))
    if "contract" in named and names != ("init",):
        found.append(("unknown-contract", [*base(params, {"contract": "NOPE-9999"}), *workspace]))
    required = {p.name: "" for p in params if p.required}
    if required:
        found.append(("empty", [*base(params, required), *workspace]))
    paths = [p.name for p in params if p.name in PATHS or p.name == "folder"]
    if paths:
        found.append(("directory", [*base(params, {paths[0]: "{ws}/data"}), *workspace]))
    return found


CASES = [
    Case(f"{' '.join(names)}: {label}", nothing, (*names, *args), code=2, marks=())
    for names, _ in commands() for label, args in variants(names)
]


@pytest.fixture(scope="module")
def shared(example_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the example for commands that do not write."""
    target = tmp_path_factory.mktemp("commands") / "example"
    shutil.copytree(example_template, target)
    return target


def test_every_command_is_fuzzed() -> None:
    """The walk finds every command, sub-apps included."""
    names = {" ".join(n) for n, _ in commands()}
    assert {"pay", "whatif", "invoice list", "challenge raise", "monitoring reconcile"} <= names
    assert all(any(c.name.startswith(f"{name}:") for c in CASES) for name in names - {"monitoring spec"})


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_malformed_arguments(shared: Path, case: Case) -> None:
    """No traceback, exit 2 (or a documented 1), the place named, nothing changed."""
    before = state(shared)
    result = invoke(shared, *case.command)
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{case.name}: raised {result.exception!r}\n{result.output}"
    assert "Traceback" not in result.output, f"{case.name}: a traceback\n{result.output}"
    allowed = {1, 2} if any(case.command[:len(n)] == n for n in EXIT_ONE) else {2}
    assert result.exit_code in allowed, f"{case.name}: exit {result.exit_code}, expected {sorted(allowed)}\n{result.output}"
    assert state(shared) == before, f"{case.name}: the warehouse, records or outputs changed"
