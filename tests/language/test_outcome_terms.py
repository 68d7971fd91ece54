"""Problems in outcome, incentive, shared-risk and alliance terms: each located by line
(counted by hand from the texts; `# n` marks line n) and field, with what was expected."""

from __future__ import annotations

import textwrap

from carecontracts.language.load import parse_contract
from carecontracts.language.yaml_lines import parse_yaml
from carecontracts.problems import Problem

HEAD = """\
id: MSK-2025
commissioner: ICB
provider: PRIME
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: core, kind: block, annual: 1000}
"""


def problems_of(text: str) -> list[Problem]:
    contract, problems = parse_contract(parse_yaml(textwrap.dedent(text), "contracts/test.yaml"))
    return problems


def test_metric_naming_an_unknown_instrument_and_weights_not_summing_to_one() -> None:
    text = HEAD + """\
  - id: outcomes                                    # 7
    kind: outcome_incentive
    pot: {percent_of: core, percent: 5}
    metrics:                                        # 10
      - id: hip
        measure: {instrument: oxford_hips}          # 12
        schedule: {floor: 0.7, target: 0.85}
        weight: 0.6
      - id: independence
        measure: {instrument: barthel}
        schedule: {floor: 0.5, target: 0.7}
        weight: 0.3
"""
    problems = problems_of(text)
    instrument = [p for p in problems if p.field == "components[1].metrics[0].measure.instrument"]
    assert len(instrument) == 1
    assert instrument[0].line == 12 and instrument[0].value == "oxford_hips"
    assert "unknown instrument 'oxford_hips'" in instrument[0].message
    assert "oxford_hip" in (instrument[0].expected or "") and "barthel" in (instrument[0].expected or "")
    (weights,) = [p for p in problems if p.field == "components[1].metrics"]
    assert weights.line == 10 and weights.message == "metric weights sum to 0.9" and weights.expected == "weights summing to exactly 1"


def test_pot_referring_to_an_unknown_component_is_located_at_percent_of() -> None:
    text = HEAD + """\
  - id: outcomes
    kind: outcome_incentive
    pot: {percent_of: cor, percent: 5}              # 9
    metrics: [{id: hip, measure: {instrument: oxford_hip}, schedule: {type: threshold, target: 0.8}}]
"""
    (problem,) = problems_of(text)
    assert (problem.field, problem.line, problem.value) == ("components[1].pot.percent_of", 9, "cor")
    assert problem.expected == "one of core"


def test_components_reading_each_other_in_a_circle() -> None:
    text = HEAD + """\
  - {id: a, kind: withhold, of: [b], percent: 2, from: 2025-07-01}
  - {id: b, kind: quality_incentive, percent_of: a, percent: 1, indicators: [{id: x}]}
"""
    (problem,) = problems_of(text)
    assert problem.field == "components" and "in a circle" in problem.message


def test_schedule_and_pot_shapes_are_checked() -> None:
    text = HEAD + """\
  - id: outcomes
    kind: outcome_incentive
    pot: {amount: 100, percent: 5}                  # 9
    metrics:
      - id: hip
        measure: {instrument: oxford_hip, statistic: share_reaching}   # 12
        schedule: {floor: 0.7}                      # 13
"""
    problems = problems_of(text)
    by_line = {p.line: p.message for p in problems}
    assert "'percent' goes with 'percent_of', not with 'amount'" in by_line[9]
    assert "share_reaching needs a 'threshold'" in by_line[12]
    assert "a linear schedule needs a 'floor' and a different 'target'" in by_line[13]


def test_alliance_member_shares_must_sum_to_one() -> None:
    text = """\
id: OPA-2025
commissioner: ICB
provider: ALLIANCE
term: {start: 2025-04-01, end: 2026-03-31}
members:                                            # 5
  - {provider: ACUTE, share: 0.5}
  - {provider: COMMUNITY, share: 0.3}
components: [{id: budget, kind: block, annual: 1000}]
"""
    (problem,) = problems_of(text)
    assert (problem.field, problem.line, problem.message) == ("members", 5, "member shares sum to 0.8")


def test_risk_share_bands_must_rise_and_only_the_last_may_be_open() -> None:
    text = HEAD + """\
  - id: risk                                        # 7
    kind: risk_share
    target_of: core
    bands: [{provider_percent: 50}, {up_to_percent: 10, provider_percent: 25}]
"""
    (problem,) = problems_of(text)
    assert problem.line == 7 and "only the last band may be open" in problem.message
