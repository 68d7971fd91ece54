"""`init --blank`: an empty workspace to fill, whose templates are contracts once copied in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carecontracts.cli import app
from carecontracts.examples.blank import TEMPLATES

runner = CliRunner()
KINDS = {"block", "activity", "cost_and_volume", "marginal_rate", "aligned_payment", "low_volume_block", "capitation", "outcome_incentive",
         "quality_incentive", "best_practice_topup", "withhold", "risk_share", "gain_share", "shared_savings", "spell"}


def invoke(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def test_a_blank_workspace_has_settings_headers_and_a_template_of_every_kind(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    code, said = invoke("init", root, "--blank")
    assert code == 0 and "with 17 contract templates in templates/" in said
    assert (root / "contracts").is_dir() and not list((root / "contracts").iterdir())
    assert (root / "data" / "activity" / "activity.csv").read_text().startswith("activity_id,patient_id,provider,commissioner,")
    templates = sorted(p.name for p in (root / "templates").glob("*.yaml"))
    assert templates == sorted(p.name for p in TEMPLATES.glob("*.yaml"))
    written = {kind for p in (root / "templates").glob("*.yaml") for kind in re.findall(r"kind: ([a-z_]+)", p.read_text())}
    assert written == KINDS
    # Nothing to pay yet, and check says what is missing.
    code, said = invoke("check", "-w", root)
    assert code == 2 and "no contracts found" in said
    # A folder in use is refused, and the blank workspace takes no sizes.
    assert invoke("init", root, "--blank")[0] == 2
    assert invoke("init", tmp_path / "other", "--blank", "--rows", 10)[0] == 2


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.yaml")))
def test_each_template_copied_into_contracts_passes_check(tmp_path: Path, template: str) -> None:
    root = tmp_path / "mine"
    invoke("init", root, "--blank")
    text = (root / "templates" / template).read_text()
    (root / "contracts" / template).write_text(text)
    for price_list in set(re.findall(r"prices: ([A-Za-z0-9-]+)", text)):
        (root / "prices" / f"{price_list}.csv").write_text("currency,unit_price,valid_from,valid_to\nHRG1,100,2025-04-01,2026-03-31\n")
    code, said = invoke("check", "-w", root)
    if "kind: capitation" in text:  # a capitation pays by the population, which is data to add
        assert code == 2 and "data/population/" in said
    else:
        assert code == 0 and "OK: 1 contracts" in said, said
