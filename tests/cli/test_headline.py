"""One headline total for every command: what commissioners pay. A prime's payments to its
sub-contractors are part of that, so they are shown apart and never added in. Worked by hand:
ICB-A pays PRIME a £1,200,000 block (£100,000 a month); PRIME pays SUB £120,000 (£10,000)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from carecontracts.cli import app

runner = CliRunner()
CONTRACT = """\
id: PRIME-2025
commissioner: ICB-A
provider: PRIME
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: core, kind: block, annual: 1_200_000}
subcontracts:
  - id: PRIME-2025-SUB
    provider: SUB
    components:
      - {id: help, kind: block, annual: 120_000}
"""


@pytest.fixture(scope="module")
def prime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("headline") / "ws"
    (root / "contracts").mkdir(parents=True)
    (root / "carecontracts.toml").write_text('name = "prime"\n', encoding="utf-8")
    (root / "contracts" / "prime.yaml").write_text(CONTRACT, encoding="utf-8")
    assert runner.invoke(app, ["load", "-w", str(root)]).exit_code == 0
    return root


def said(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_pay_says_what_commissioners_pay_and_the_sub_contract_apart(prime: Path) -> None:
    text = said("pay", "2025-11", "-w", prime)
    assert "Commissioners pay £100,000.00; within that, providers pay their sub-contractors £10,000.00 (shown apart, not added in)." in text


def test_a_what_if_on_a_sub_contract_changes_nothing_commissioners_pay(prime: Path) -> None:
    text = said("whatif", "-w", prime, "--set", "PRIME-2025-SUB.help.annual=240000")
    assert "In all, 2025-26: no change to what commissioners pay." in text
    assert "Within that, what providers pay their sub-contractors changes by £120,000.00 (not added in)." in text
    text = said("whatif", "-w", prime, "--set", "PRIME-2025.core.annual=1260000")
    assert "In all, 2025-26: an extra £60,000.00 to what commissioners pay." in text and "Within that" not in text
