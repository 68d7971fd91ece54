"""The package type-checks: every signature is annotated and the annotations agree."""

from __future__ import annotations

from pathlib import Path

from mypy import api


def test_package_type_checks() -> None:
    root = Path(__file__).parents[1]
    report, errors, status = api.run(["--config-file", str(root / "pyproject.toml"), str(root / "src" / "carecontracts")])
    assert status == 0, report + errors
