"""Contract problems are reported all at once, each located by file, line and field path,
with the value found and what was expected.

Line numbers in these tests are counted by hand from the YAML texts below (each text
starts on line 1; the `# n` comments mark the line numbers)."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from carecontracts.language.load import load_contracts, parse_contract
from carecontracts.language.model import Contract
from carecontracts.language.yaml_lines import parse_yaml
from carecontracts.problems import Problem, ProblemsError

SOURCE = "contracts/test.yaml"


def problems_of(text: str, price_lists: set[str] | None = None) -> tuple[Contract | None, list[Problem]]:
    """Parse YAML text as the file `contracts/test.yaml` and return the contract and its problems."""
    document = parse_yaml(textwrap.dedent(text), SOURCE)
    return parse_contract(document, price_lists)


def only(problems: list[Problem], field: str) -> Problem:
    """The single problem reported against `field`."""
    found = [p for p in problems if p.field == field]
    assert len(found) == 1, f"expected one problem at {field}, got {problems}"
    return found[0]


VALID = """\
id: MSK-2025
title: Integrated MSK service
commissioner: ICB-BLMK
provider: PRIME-MSK
term: {start: 2025-04-01, end: 2026-03-31}
services:
  msk: {service: [msk-physio, msk-pain]}
components:
  - id: core
    kind: block
    annual: 24_000_000
  - id: acute
    kind: activity
    prices: tariff
    mff: 1.0461
"""


def test_valid_contract_loads_and_knows_the_line_of_each_field() -> None:
    """A valid contract has no problems, and `line_of` maps a field path to its YAML line."""
    contract, problems = problems_of(VALID, {"tariff"})
    assert problems == []
    assert contract is not None
    assert contract.id == "MSK-2025"
    assert contract.components[0].annual == Decimal("24000000")
    assert contract.components[1].mff == Decimal("1.0461")
    # `- id: core` is line 9, `kind: block` line 10, `annual:` line 11.
    assert contract.line_of(("components", 0, "annual")) == 11
    assert contract.line_of(("components", 0)) == 9
    assert contract.line_of(("components", 1, "mff")) == 15
    assert contract.line_of(("term",)) == 5
    # A path the file does not spell out falls back to its nearest ancestor's line.
    assert contract.line_of(("term", "extension_years")) == 5
    assert contract.source == SOURCE


TYPO = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: core          # 6
    kind: block       # 7
    anual: 1_000_000  # 8
"""


def test_typo_in_block_key_is_unknown_and_the_real_key_is_required() -> None:
    """A misspelt key is an error at its own line, and the key it should have been is missing."""
    contract, problems = problems_of(TYPO)
    assert contract is None
    unknown = only(problems, "components[0].anual")
    assert unknown.message == "unknown key 'anual'"
    assert unknown.line == 8
    assert unknown.source == SOURCE
    assert unknown.value == 1_000_000
    assert unknown.expected is not None
    required = only(problems, "components[0].annual")
    assert required.message == "'annual' is required"
    # The missing key belongs to the component that starts on line 6.
    assert required.line == 6
    assert str(unknown).startswith("contracts/test.yaml:8 components[0].anual: unknown key 'anual'")


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    """Several independent mistakes in one contract are all reported together, each at its line."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: core, kind: block, anual: 100}                                                       # 6
  - {id: cv, kind: cost_and_volume, baseline_volume: 10, price: 5, tolerance_percent: 150,
     above_band_percent: 50}                                                                  # 8
  - {id: neg, kind: block, annual: -1}                                                        # 9
"""
    contract, problems = problems_of(text)
    assert contract is None
    located = {(p.field, p.line) for p in problems}
    assert ("components[0].anual", 6) in located
    assert ("components[0].annual", 6) in located
    assert ("components[1].tolerance_percent", 7) in located
    assert ("components[2].annual", 9) in located
    assert all(p.source == SOURCE for p in problems)


def test_unknown_component_kind_names_the_kind_and_the_known_ones() -> None:
    """A `kind` that is no payment mechanism is reported against that component, naming the
    bad kind and the kinds that exist."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: core, kind: block, annual: 100}
  - id: extra          # 7
    kind: blok         # 8
    annual: 5
"""
    contract, problems = problems_of(text)
    assert contract is None
    (problem,) = [p for p in problems if p.field and p.field.startswith("components[1]")]
    assert problem.line in (7, 8)
    text_shown = str(problem)
    assert "blok" in text_shown
    for kind in ("block", "activity", "cost_and_volume", "aligned_payment"):
        assert kind in text_shown
    assert problem.expected is not None
    # The other, valid, component draws no problem.
    assert not [p for p in problems if p.field and p.field.startswith("components[0]")]


def test_unknown_component_kind_is_located_at_the_kind_key_with_its_value() -> None:
    """The unknown-kind problem points at the `kind:` line and carries the value written there."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: extra          # 6
    kind: blok         # 7
"""
    _, problems = problems_of(text)
    (problem,) = problems
    assert problem.field == "components[0].kind"
    assert problem.line == 7
    assert problem.value == "blok"


def test_percent_over_100_names_field_value_and_limit() -> None:
    """A percentage above 100 is located at its line with the value and the upper limit."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: mh                    # 6
    kind: cost_and_volume
    baseline_volume: 1000
    price: 2000
    tolerance_percent: 5
    above_band_percent: 150   # 11
"""
    _, problems = problems_of(text)
    problem = only(problems, "components[0].above_band_percent")
    assert problem.line == 11
    assert problem.value == 150
    shown = str(problem)
    assert "150" in shown and "100" in shown
    assert shown.startswith("contracts/test.yaml:11 components[0].above_band_percent")


def test_decimal_value_is_shown_as_written() -> None:
    """A decimal value in a message reads as the user wrote it, not as Python's repr."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: mh, kind: cost_and_volume, baseline_volume: 1000, price: 2000, above_band_percent: 150.5}
"""
    _, problems = problems_of(text)
    shown = str(only(problems, "components[0].above_band_percent"))
    assert "150.5" in shown
    assert "Decimal(" not in shown


def test_negative_money_is_an_error() -> None:
    """A negative money amount is reported with its value and the lower limit of 0."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: core             # 6
    kind: block
    annual: -250000.50   # 8
"""
    contract, problems = problems_of(text)
    assert contract is None
    problem = only(problems, "components[0].annual")
    assert problem.line == 8
    assert problem.value == Decimal("-250000.50")
    assert "0" in problem.message
    assert str(problem).startswith("contracts/test.yaml:8 components[0].annual")


def test_money_with_fractions_of_a_penny_is_an_error() -> None:
    """Money has at most two decimal places."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components: [{id: core, kind: block, annual: 100.005}]
"""
    contract, problems = problems_of(text)
    assert contract is None
    problem = only(problems, "components[0].annual")
    assert problem.line == 5
    assert "2 decimal places" in problem.message


def test_gap_in_dated_parameter_names_parameter_and_uncovered_period() -> None:
    """A dated MFF that leaves a period of the term uncovered is an error naming `mff` and the gap."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: acute                                          # 6
    kind: activity
    prices: tariff
    mff:                                               # 9
      - {from: 2025-04-01, to: 2025-06-30, value: 1.0}
      - {from: 2025-08-01, value: 1.1}
"""
    contract, problems = problems_of(text)
    assert contract is not None  # well-formed, but not usable as it stands
    (problem,) = problems
    assert problem.field == "components[0].mff"
    assert problem.line == 9
    assert "'mff'" in problem.message
    # July 2025 is covered by neither value.
    assert "2025-07-01" in problem.message and "2025-07-31" in problem.message
    assert problem.expected is not None


def test_dated_parameter_uncovered_at_both_ends_gives_two_gaps() -> None:
    """Values starting after the term starts and ending before it ends leave two gaps."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: acute
    kind: activity
    prices: tariff
    mff: [{from: 2025-05-01, to: 2025-12-31, value: 1.0}]
"""
    _, problems = problems_of(text)
    messages = sorted(p.message for p in problems)
    assert len(messages) == 2
    assert "2025-04-01 to 2025-04-30" in messages[0]
    assert "2026-01-01 to 2026-03-31" in messages[1]
    assert {p.line for p in problems} == {9}


def test_sub_contract_dated_parameter_is_checked_against_its_own_term() -> None:
    """A sub-contract with its own term needs dated values covering that term only."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components: [{id: core, kind: block, annual: 100}]
subcontracts:
  - id: SUB
    provider: OTHER
    term: {start: 2025-10-01, end: 2026-03-31}
    components:
      - id: s                                                      # 11
        kind: activity
        prices: tariff
        mff: [{from: 2025-10-01, value: 1.0}]                      # 14
  - id: SUB2
    provider: OTHER2
    components:
      - {id: s, kind: activity, prices: tariff, mff: [{from: 2025-10-01, value: 1.0}]}  # 18
"""
    _, problems = problems_of(text)
    (problem,) = problems
    assert problem.field == "subcontracts[1].components[0].mff"
    assert problem.line == 18
    assert "2025-04-01 to 2025-09-30" in problem.message


def test_overlapping_dated_values_are_an_error() -> None:
    """Two dated values covering the same day are an error naming the parameter and where the overlap starts."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: acute
    kind: activity
    prices: tariff
    mff:                                               # 9
      - {from: 2025-04-01, to: 2025-09-30, value: 1.0}
      - {from: 2025-09-01, value: 1.1}
"""
    _, problems = problems_of(text)
    (problem,) = problems
    assert problem.field == "components[0].mff"
    assert problem.line == 9
    assert "'mff'" in problem.message and "overlap" in problem.message
    assert "2025-09-01" in problem.message


def test_dated_value_ending_before_it_starts_is_an_error() -> None:
    """A dated value whose `to` is before its `from` is located at that entry."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: acute
    kind: activity
    prices: tariff
    mff:
      - {from: 2025-04-01, to: 2025-09-30, value: 1.0}
      - {from: 2025-10-01, to: 2025-09-01, value: 1.1}   # 11
"""
    contract, problems = problems_of(text)
    assert contract is None
    lines = {p.line for p in problems}
    assert 11 in lines
    assert any("2025-09-01" in p.message and "2025-10-01" in p.message for p in problems)


def test_typo_inside_dated_value_reports_only_the_typo() -> None:
    """A misspelt key inside one dated value is reported once, not also as 'mff should be a number'."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: acute
    kind: activity
    prices: tariff
    mff:
      - {from: 2025-04-01, to: 2025-09-30, value: 1.0}
      - {from: 2025-10-01, valu: 1.1}                  # 11
"""
    _, problems = problems_of(text)
    assert {p.field for p in problems} == {"components[0].mff[1].valu", "components[0].mff[1].value"}
    assert {p.line for p in problems} == {11}


def test_component_naming_an_unknown_service() -> None:
    """A component's service must be one the contract defines; the problem lists those that exist."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
services:
  elective: {pod: [EL]}
  emergency: {pod: [NEL]}
components:
  - id: core
    kind: block
    annual: 100
    services: [elective, emergncy]   # 12
"""
    contract, problems = problems_of(text)
    assert contract is not None
    (problem,) = problems
    assert problem.field == "components[0].services[1]"
    assert problem.line == 12
    assert problem.value == "emergncy"
    assert "emergncy" in problem.message
    assert problem.expected is not None
    assert "elective" in problem.expected and "emergency" in problem.expected


def test_commissioner_shares_must_sum_to_one() -> None:
    """Shares of a multi-commissioner contract that do not sum to 1 are an error showing the sum."""
    text = """\
id: C1
commissioners:                  # 2
  - {id: ICB-A, share: 0.6, coordinating: true}
  - {id: ICB-B, share: 0.3}
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components: [{id: core, kind: block, annual: 100}]
"""
    _, problems = problems_of(text)
    (problem,) = problems
    assert problem.field == "commissioners"
    assert problem.line == 2
    assert "0.9" in problem.message
    assert problem.expected is not None and "1" in problem.expected


def test_shares_summing_exactly_to_one_are_accepted() -> None:
    """Decimal shares are exact: 0.1 + 0.2 + 0.7 is 1 (no binary-float drift)."""
    text = """\
id: C1
commissioners: [{id: A, share: 0.1, coordinating: true}, {id: B, share: 0.2}, {id: C, share: 0.7}]
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components: [{id: core, kind: block, annual: 100}]
"""
    contract, problems = problems_of(text)
    assert problems == []
    assert contract is not None
    assert [c.share for c in contract.commissioner_shares] == [Decimal("0.1"), Decimal("0.2"), Decimal("0.7")]


BOTH = """\
id: C1
commissioner: ICB                         # 2
commissioners: [{id: ICB-A, share: 1}]    # 3
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components: [{id: core, kind: block, annual: 100}]
"""


def test_commissioner_and_commissioners_together_are_an_error() -> None:
    """A contract names its commissioners one way only."""
    contract, problems = problems_of(BOTH)
    assert contract is None
    (problem,) = problems
    assert problem.source == SOURCE
    assert "'commissioner'" in problem.message and "'commissioners'" in problem.message


def test_commissioner_and_commissioners_together_is_located_at_those_keys() -> None:
    """The problem points at one of the two keys, not at the top of the file."""
    _, problems = problems_of(BOTH)
    (problem,) = problems
    assert problem.field in ("commissioner", "commissioners")
    assert problem.line in (2, 3)


def test_neither_commissioner_nor_commissioners_is_an_error() -> None:
    """A contract must say who pays."""
    text = """\
id: C1
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components: [{id: core, kind: block, annual: 100}]
"""
    contract, problems = problems_of(text)
    assert contract is None
    assert any("'commissioner'" in p.message for p in problems)


def test_price_list_that_does_not_exist() -> None:
    """A component's price list must be one of the workspace's price lists."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - id: acute
    kind: activity
    prices: tarif-2025     # 8
"""
    contract, problems = problems_of(text, {"tariff-2025", "local"})
    assert contract is not None
    (problem,) = problems
    assert problem.field == "components[0].prices"
    assert problem.line == 8
    assert problem.value == "tarif-2025"
    assert "tarif-2025" in problem.message
    assert problem.expected is not None and "tariff-2025" in problem.expected
    # The same contract is fine when that price list exists.
    _, fine = problems_of(text.replace("tarif-2025", "tariff-2025"), {"tariff-2025"})
    assert fine == []


def test_yaml_syntax_error_is_located_by_line() -> None:
    """Broken YAML is a problem at the line where it breaks, not a traceback."""
    text = """\
id: C1
commissioner: ICB
provider: PROV
title: Hips: and knees
term: {start: 2025-04-01, end: 2026-03-31}
"""
    with pytest.raises(ProblemsError) as error:
        parse_yaml(text, SOURCE)
    (problem,) = error.value.problems
    assert problem.source == SOURCE
    assert problem.line == 4
    assert "YAML" in problem.message


def test_a_file_that_is_not_a_mapping() -> None:
    """A contract file holding a list rather than keys is one located problem."""
    _, problems = problems_of("- id: C1\n- id: C2\n")
    (problem,) = problems
    assert problem.source == SOURCE
    assert problem.line == 1


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")


CONTRACT_A = """\
id: C1
commissioner: ICB
provider: PROV-A
term: {start: 2025-04-01, end: 2026-03-31}
components: [{id: core, kind: block, annual: 100}]
"""


def test_duplicate_contract_id_across_files(tmp_path: Path) -> None:
    """Two files using the same contract id: the later file is told which file already has it."""
    folder = tmp_path / "contracts"
    write(folder, "a.yaml", CONTRACT_A)
    write(folder, "b.yaml", "# the same id again\n" + CONTRACT_A.replace("PROV-A", "PROV-B"))
    with pytest.raises(ProblemsError) as error:
        load_contracts(folder, root=tmp_path)
    (problem,) = error.value.problems
    assert problem.source == "contracts/b.yaml"
    assert problem.line == 2
    assert problem.field == "id"
    assert "C1" in problem.message and "contracts/a.yaml" in problem.message


def test_duplicate_sub_contract_id_is_located_at_the_sub_contract(tmp_path: Path) -> None:
    """A sub-contract id already used by another file's contract points at the sub-contract's id."""
    folder = tmp_path / "contracts"
    write(folder, "a.yaml", CONTRACT_A)
    write(
        folder,
        "b.yaml",
        """\
id: C2
commissioner: ICB
provider: PROV-B
term: {start: 2025-04-01, end: 2026-03-31}
components: [{id: core, kind: block, annual: 100}]
subcontracts:
  - id: C1                                              # 7
    provider: PROV-C
    components: [{id: s, kind: block, annual: 10}]
""",
    )
    with pytest.raises(ProblemsError) as error:
        load_contracts(folder, root=tmp_path)
    (problem,) = error.value.problems
    assert problem.source == "contracts/b.yaml"
    assert problem.field == "subcontracts[0].id"
    assert problem.line == 7


def test_problems_in_several_files_are_reported_together(tmp_path: Path) -> None:
    """load_contracts reports every file's problems in one error, YAML syntax errors included."""
    folder = tmp_path / "contracts"
    write(folder, "a.yaml", CONTRACT_A)
    write(folder, "b.yaml", CONTRACT_A.replace("C1", "C2").replace("annual: 100", "anual: 100"))
    write(folder, "c.yaml", "id: C3\nprovider: : PROV\n")
    write(folder, "d.yaml", CONTRACT_A.replace("C1", "C4").replace("kind: block, annual: 100", "kind: activity, prices: nowhere"))
    with pytest.raises(ProblemsError) as error:
        load_contracts(folder, price_lists={"tariff"}, root=tmp_path)
    where = {(p.source, p.line, p.field) for p in error.value.problems}
    assert ("contracts/b.yaml", 5, "components[0].anual") in where
    assert ("contracts/b.yaml", 5, "components[0].annual") in where
    assert ("contracts/c.yaml", 2, None) in where
    assert ("contracts/d.yaml", 5, "components[0].prices") in where
    assert not [p for p in error.value.problems if p.source == "contracts/a.yaml"]
    summary = str(error.value)
    assert summary.startswith(f"{len(error.value.problems)} problems found")
    assert "contracts/b.yaml:5 components[0].anual" in summary


def test_valid_folder_loads_every_contract_with_its_source(tmp_path: Path) -> None:
    """A folder of valid contracts loads them all, each knowing its file and lines."""
    folder = tmp_path / "contracts"
    write(folder, "a.yaml", CONTRACT_A)
    write(folder, "b.yml", "\n\n" + CONTRACT_A.replace("C1", "C2"))
    contracts = load_contracts(folder, root=tmp_path)
    assert [(c.id, c.source) for c in contracts] == [("C1", "contracts/a.yaml"), ("C2", "contracts/b.yml")]
    # Two blank lines push C2's components down to line 7.
    assert contracts[1].line_of(("components", 0, "annual")) == 7


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    """No contracts at all is reported, not silently an empty run."""
    (tmp_path / "contracts").mkdir()
    with pytest.raises(ProblemsError) as error:
        load_contracts(tmp_path / "contracts")
    assert "no contracts" in str(error.value)
