"""Impossible or unpriceable contract terms: each refused by `check` with the file:line, the
field and the bound, as `pay` refuses them, so nothing reaches the engine that it cannot hold.

Numbers are bounded and held to the decimal places of the engine's column for them
(language/model.py says which); a number written as text is refused; a rate percent
between 0 and 1 is a pasted fraction, refused with the percent meant."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.errors.catalogue import Case, invoke, refused, state
from tests.errors.edits import append, both, drop_lines, edit, remove, rename, write

CHECK = ("check", "-w", "{ws}")
PAY = ("pay", "year", "-w", "{ws}")
ACUTE, COMMUNITY, MH, GP = "contracts/acute-rfh.yaml", "contracts/community-ct.yaml", "contracts/mh-trust.yaml", "contracts/gp-fed.yaml"
ISP, MSK, OOA, OPA = "contracts/isp-healthcare.yaml", "contracts/msk-prime.yaml", "contracts/ooa-trust.yaml", "contracts/older-people-alliance.yaml"


def savings(terms: str = "") -> str:
    """A shared savings component added to the alliance (its components[3], line 44)."""
    return f"  - {{id: savings, kind: shared_savings, benchmark: 3_000_000, population: 20000, sharing_percent: 50{terms}}}\n"


BOMB = "".join(f"{name}: &{name} [{', '.join([prior] * 9)}]\n" for name, prior in zip("abcdefg", ['"lol"', "*a", "*b", "*c", "*d", "*e", "*f"]))

CASES = [
    Case("mff-negative", edit(ACUTE, "mff: 1.0461", "mff: -1.0461"), CHECK, (f"{ACUTE}:36", "components[0].mff", "a number above 0")),
    Case("mff-1e30", edit(ACUTE, "mff: 1.0461", "mff: 1e30"), CHECK, (f"{ACUTE}:36", "components[0].mff", "a number at most 10")),
    Case("mff-7-places", edit(ACUTE, "mff: 1.0461", "mff: 1.0461001"), CHECK, (f"{ACUTE}:36", "components[0].mff", "at most 6 decimal places")),
    Case("mff-dated-negative", edit(ACUTE, "mff: 1.0461", "mff: [{from: 2025-04-01, value: -1}]"), CHECK, (f"{ACUTE}:36", "components[0].mff[0].value", "greater than 0")),
    Case("annual-too-large", edit(COMMUNITY, "annual: 48_000_000", "annual: 99_999_999_999_999"), CHECK, (f"{COMMUNITY}:19", "components[0].annual", "a number at most 10,000,000,000")),
    Case("annual-quoted", edit(COMMUNITY, "annual: 48_000_000", 'annual: "48000000"'), CHECK, (f"{COMMUNITY}:19", "components[0].annual", "a number is expected, not text")),
    Case("annual-true", edit(COMMUNITY, "annual: 48_000_000", "annual: true"), CHECK, (f"{COMMUNITY}:19", "components[0].annual", "a number is expected, not true or false")),
    Case("annual-part-pence", edit(COMMUNITY, "annual: 48_000_000", "annual: 48_000_000.001"), CHECK, (f"{COMMUNITY}:19", "components[0].annual", "at most 2 decimal places")),
    Case("fixed-negative", edit(ACUTE, "fixed: 412_500_000", "fixed: -412_500_000"), CHECK, (f"{ACUTE}:34", "components[0].fixed", "a number at least 0")),
    Case("variable-percent-fraction", edit(ACUTE, "variable_percent: 100", "variable_percent: 0.75"), CHECK, (f"{ACUTE}:37", "components[0].variable_percent", "write 75 for 75%")),
    Case("commissioner-share-7-places", edit(ACUTE, "share: 0.8,", "share: 0.8000001,"), CHECK, (f"{ACUTE}:17", "commissioners[0].share", "at most 6 decimal places")),
    Case("baseline-volume-1e30", edit(MH, "baseline_volume: 335", "baseline_volume: 1e30"), CHECK, (f"{MH}:20", "components[0].baseline_volume", "a number at most 100,000,000")),
    Case("unit-price-too-large", edit(MH, "price: 302.11", "price: 99_000_000"), CHECK, (f"{MH}:21", "components[0].price", "a number at most 10,000,000")),
    Case("above-band-percent-fraction", edit(MH, "above_band_percent: 50", "above_band_percent: 0.5"), CHECK, (f"{MH}:23", "components[0].above_band_percent", "write 50 for 50%")),
    Case("tolerance-over-100", edit(MH, "tolerance_percent: 5", "tolerance_percent: 500"), CHECK, (f"{MH}:22", "components[0].tolerance_percent", "a number at most 100")),
    Case("within-days-quoted", edit(ISP, "within_days: 30", 'within_days: "30"'), CHECK, (f"{ISP}:25", "components[0].readmission.within_days", "a number is expected, not text")),
    Case("capitation-rate-7-places", edit(GP, '"0-17": 0.16', '"0-17": 0.1600001'), CHECK, (f"{GP}:18", "components[0].rates.0-17", "at most 6 decimal places")),
    Case("risk-weight-too-large", edit(GP, '"85+": 1.25', '"85+": 1000'), CHECK, (f"{GP}:24", "components[0].risk_weights.85+", "a number at most 100")),
    Case("pot-percent-5-places", edit(MSK, "percent: 5}", "percent: 5.00001}"), CHECK, (f"{MSK}:23", "components[1].pot.percent", "at most 4 decimal places")),
    Case("metric-weight-quoted", edit(MSK, "weight: 0.6", 'weight: "0.6"'), CHECK, (f"{MSK}:29", "components[1].metrics[0].weight", "a number is expected, not text")),
    Case("history-1e30", edit(OOA, "history: [412_300,", "history: [1e30,"), CHECK, (f"{OOA}:17", "components[0].history[0]", "a number at most 10,000,000,000")),
    Case("provider-cap-too-large", edit(OPA, "provider_cap: 2_000_000", "provider_cap: 2e13"), CHECK, (f"{OPA}:35", "components[1].provider_cap", "a number at most 10,000,000,000")),
    Case("band-provider-percent-fraction", edit(OPA, "provider_percent: 50}", "provider_percent: 0.5}"), CHECK, (f"{OPA}:34", "components[1].bands[0].provider_percent", "write 50 for 50%")),
    Case("sharing-percent-fraction", append(OPA, savings().replace("sharing_percent: 50", "sharing_percent: 0.5")), CHECK, (f"{OPA}:44", "components[3].sharing_percent", "write 50 for 50%")),
    Case("loss-bounds-reversed", append(OPA, savings(", losses: {loss_rate_floor_percent: 75, loss_rate_ceiling_percent: 40}")), CHECK, (f"{OPA}:44", "components[3].losses", "loss_rate_floor_percent 75 is above loss_rate_ceiling_percent 40")),
    Case("loss-rate-outside-bounds", append(OPA, savings(", losses: {loss_rate_percent: 80, loss_rate_floor_percent: 40, loss_rate_ceiling_percent: 75}")), CHECK, (f"{OPA}:44", "components[3].losses", "loss_rate_percent 80 is outside its bounds")),
    Case("minimum-savings-8-places", append(OPA, savings(", minimum_savings_percent: 3.08608611")), CHECK, (f"{OPA}:44", "components[3].minimum_savings_percent", "at most 7 decimal places")),
    Case("minimum-loss-8-places", append(OPA, savings(", losses: {minimum_loss_rate_percent: 1.12345678}")), CHECK, (f"{OPA}:44", "components[3].losses.minimum_loss_rate_percent", "at most 7 decimal places")),
    Case("loss-floor-7-places", append(OPA, savings(", losses: {loss_rate_floor_percent: 40.1234567}")), CHECK, (f"{OPA}:44", "components[3].losses.loss_rate_floor_percent", "at most 4 decimal places")),
    Case("min-loss-renamed", append(OPA, savings(", losses: {min_loss_percent: 40}")), CHECK, (f"{OPA}:44", "components[3].losses.min_loss_percent", "unknown key 'min_loss_percent'", "'loss_rate_floor_percent', its new name (the lowest rate losses are shared at)")),
    Case("minimum-loss-dated-over-100", append(OPA, savings(", losses: {minimum_loss_rate_percent: [{from: 2025-04-01, value: 120}]}")), CHECK,
         (f"{OPA}:44", "components[3].losses.minimum_loss_rate_percent[0].value", "100")),
    Case("minimum-loss-renamed", append(OPA, savings(", losses: {minimum_loss_percent: 2}")), CHECK, (f"{OPA}:44", "components[3].losses.minimum_loss_percent", "'minimum_loss_rate_percent', its new name")),
    Case("sharing-misspelt", append(OPA, savings(", sharing_percnt: 40")), CHECK, (f"{OPA}:44", "components[3].sharing_percnt", "did you mean 'sharing_percent'?")),
    Case("quality-score-fraction", append(OPA, savings(", quality_score: 0.85")), CHECK, (f"{OPA}:44", "components[3].quality_score", "the quality score is a percent: write 85 for 85%")),
    Case("quality-score-one", append(OPA, savings(", quality_score: 1")), CHECK, (f"{OPA}:44", "components[3].quality_score", "write 100 for 100%")),
    Case("quality-score-over-100", append(OPA, savings(", quality_score: 101")), CHECK, (f"{OPA}:44", "components[3].quality_score", "a number at most 100")),
    Case("months-affected-13", append(OPA, savings(", losses: {extreme_circumstances: {months_affected: 13, population_affected_percent: 40}}")), CHECK, (f"{OPA}:44", "components[3].losses.extreme_circumstances.months_affected", "a number at most 12")),
    Case("revenue-cap-without-revenue", append(OPA, savings(", losses: {revenue_cap_percent: 8}")), CHECK, (f"{OPA}:44", "components[3].losses", "'revenue_cap_percent' and 'participant_revenue' go together")),
    Case("interpolated-band-reversed", append(OPA, savings(", minimum_savings_interpolated: [{from_population: 6000, to_population: 5000, low_end_percent: 3.9, high_end_percent: 3.6}]")), CHECK, (f"{OPA}:44", "components[3].minimum_savings_interpolated[0]", "to_population 5000 is not above from_population 6000")),
    Case("given-expenditure-and-prices", append(OPA, savings(", expenditure_per_capita: 100, prices: national")), CHECK, (f"{OPA}:44", "components[3]", "expenditure is given per head ('expenditure_per_capita'), so no activity is valued: leave out 'prices'")),
    Case("step-and-percent", append(OPA, savings(", minimum_savings_percent: 2, minimum_savings_by_population: [{percent: 3}]")), CHECK, (f"{OPA}:44", "components[3]", "give 'minimum_savings_percent' or 'minimum_savings_by_population', not both")),
    Case("population-1e30", append(OPA, savings().replace("population: 20000", "population: 1e30")), CHECK, (f"{OPA}:44", "components[3].population", "a number at most 1,000,000,000")),
    Case("term-day-does-not-exist", edit(COMMUNITY, "end: 2026-03-31", "end: 2026-02-31"), CHECK, (f"{COMMUNITY}:12", "term.end", "a date that exists")),
    Case("withhold-from-day-does-not-exist", append(COMMUNITY, "  - {id: sanction, kind: withhold, of: [core], percent: 2, from: 2025-13-01}\n"), CHECK, (f"{COMMUNITY}:20", "components[1].from", "a date that exists")),
    Case("latin-1-byte", append(GP, b"# caf\xe9\n"), CHECK, (f"{GP}:25", "byte 0xe9 is not UTF-8 text", "UTF-8")),
    Case("binary-bytes", append(MH, b"\x89PNG\r\n\x1a\n\x00\x00"), CHECK, (f"{MH}:26", "is not UTF-8 text")),
    Case("alias-bomb", write("contracts/laughs.yaml", BOMB), CHECK, ("contracts/laughs.yaml:6", "aliases expand this value to more than 100,000 values")),
    Case("upper-case-suffix-is-read", both(rename(COMMUNITY, "contracts/community-ct.YAML"), edit("contracts/community-ct.YAML", "annual: 48_000_000", "annual: -1")),
         CHECK, ("contracts/community-ct.YAML:19", "components[0].annual", "a number at least 0")),
    Case("folder-named-yaml", lambda ws: (ws / "contracts" / "drafts.yaml").mkdir(), CHECK, ("contracts/drafts.yaml", "is not a file")),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_refused(example: Path, case: Case) -> None:
    refused(example, case)


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_pay_refuses_as_check_does(example: Path, case: Case) -> None:
    """`check` catches at check time what `pay` would refuse for the same contracts: both
    refuse, saying the same, and pay changes nothing."""
    case.change(example)
    before = state(example)
    for command in (CHECK, PAY):
        result = invoke(example, *command)
        assert result.exit_code == 2, f"{case.name} {command[0]}: exit {result.exit_code}\n{result.output}"
        flat = " ".join(result.output.split())
        for fragment in case.says:
            assert fragment in flat, f"{case.name} {command[0]}: {fragment!r} not in\n{result.output}"
    assert state(example) == before


def test_several_contracts_refused_at_once(example: Path) -> None:
    """Problems in several contracts are all told in one run, by check and by pay."""
    both(edit(ACUTE, "mff: 1.0461", "mff: -1"), edit(COMMUNITY, "annual: 48_000_000", 'annual: "48m"'),
         append(OPA, savings(", losses: {loss_rate_floor_percent: 75, loss_rate_ceiling_percent: 40}")))(example)
    for command in (CHECK, PAY):
        result = invoke(example, *command)
        assert result.exit_code == 2
        for fragment in (f"{ACUTE}:36", f"{COMMUNITY}:19", f"{OPA}:44"):
            assert fragment in result.output, f"{command[0]}: {fragment} not in\n{result.output}"


def test_pricing_problems_of_every_contract_at_once(example: Path) -> None:
    """Problems found only when pricing (a population band with no capitation rate) are told
    for every contract at once, not only for the first, by check as by pay."""
    both(edit(GP, '"85+": 0.45', '"85-plus": 0.45'), edit(GP, '"85+": 1.25', '"85-plus": 1.25'),
         edit(OPA, "    population_bands: [65-84, 85+]\n", ""))(example)
    for command in (CHECK, PAY):
        result = invoke(example, *command)
        assert result.exit_code == 2, result.output
        flat = " ".join(result.output.split())
        assert f"{GP}:17" in flat and f"{OPA}:29" in flat and "no capitation rate" in flat, result.output


POPULATION, PRICES, PLANS = "data/population/population.csv", "prices/national-2025.csv", "data/plans/plans.csv"
HUGE = ("activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity,cost\n"
        + "".join(f"HUGE-{n},P{n},COMMUNITY-CT,ICB-NCL,older-people,INTERMEDIATE-CARE,IC-HOME,2025-07-01,2025-07-02,1,9000000000000000\n" for n in (1, 2)))

# Problems only the data shows: `check` prices the year from the files as `pay` would after a
# load, so each is refused by check before anything is loaded, and by pay after the load.
FROM_DATA = [
    Case("capitation-month-without-population", drop_lines(POPULATION, ",2025-07,"), CHECK,
         (f"{GP}:17", "components[0].rates", "no population data for ICB-NCL in 2025-07", f"{OPA}:29")),
    Case("capitation-without-population", remove(POPULATION), CHECK, (f"{GP}:17", "no population data for ICB-NCL in 2025-04 to 2026-03 (12 months)")),
    Case("price-missing-for-activity", drop_lines(PRICES, "WF01A,"), CHECK, ("components[0].prices", "price list 'national-2025' has no price for", "WF01A", PRICES)),
    Case("aligned-payment-without-plans", remove(PLANS), CHECK,
         (f"{ACUTE}:30", "components[0].planned_value", "no plan rows for ACUTE-2025's elective, outpatient-procedures", "data/plans/")),
    Case("costs-summing-past-the-money-type", write("data/activity/huge.csv", HUGE), CHECK,
         ("data/activity", "amounts too large to price", "below £10,000,000,000,000,000")),
]


@pytest.mark.parametrize("case", [c.param() for c in FROM_DATA])
def test_check_refuses_what_the_data_makes_unpriceable(example: Path, case: Case) -> None:
    refused(example, case)


@pytest.mark.parametrize("case", [c.param() for c in FROM_DATA[:1] + FROM_DATA[-1:]])
def test_pay_refuses_the_same_after_a_load(example: Path, case: Case) -> None:
    """What check refused from the files, pay refuses from the loaded warehouse, saying the
    same, and the statements stay as they were."""
    case.change(example)
    assert invoke(example, "load", "-w", "{ws}").exit_code == 0
    before = state(example)
    result = invoke(example, *PAY)
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    for fragment in case.says:
        assert " ".join(fragment.split()) in flat, f"{case.name}: {fragment!r} not in\n{result.output}"
    assert state(example) == before


def totals(output: str) -> str:
    """The statement total line of `pay`'s summary."""
    return next(line for line in output.splitlines() if line.startswith("│ total")).split("│")[-2].strip()


def test_good_edges_pass(example: Path) -> None:
    """Bounds are not over-tight: values at or near each bound are accepted by check and
    priced by pay (an MFF of 1.5, a percent to 4 places, a share to 6, a 1% rate)."""
    both(
        edit(ACUTE, "mff: 1.0461", "mff: 1.5"),
        edit(ACUTE, "share: 0.8,", "share: 0.799999,"), edit(ACUTE, "share: 0.2}", "share: 0.200001}"),
        edit(MSK, "percent: 5}", "percent: 5.0001}"),
        edit(MSK, "mff: 1.0493", "mff: 9.999999"),
        edit(MH, "above_band_percent: 50", "above_band_percent: 1"),
        edit(GP, '"0-17": 0.16', '"0-17": 0.160001'),
        edit(COMMUNITY, "annual: 48_000_000", "annual: 10_000_000_000"),
        edit(MH, "baseline_volume: 335", "baseline_volume: 100_000_000"),
        append(OPA, savings(", minimum_savings_percent: 3.0860861, losses: {loss_rate_floor_percent: 40.1234, loss_rate_ceiling_percent: 75, minimum_loss_rate_percent: 1.1234567}")),
    )(example)
    checked = invoke(example, *CHECK)
    assert checked.exit_code == 0, checked.output
    paid = invoke(example, *PAY)
    assert paid.exit_code == 0, paid.output
    assert Decimal(totals(paid.output).replace("£", "").replace(",", "")) > Decimal(10_000_000_000)


def test_zero_percent_is_not_a_fraction(example: Path) -> None:
    """A rate percent of 0 is a rate, not a pasted fraction."""
    edit(MH, "above_band_percent: 50", "above_band_percent: 0")(example)
    result = invoke(example, *CHECK)
    assert result.exit_code == 0, result.output


def test_term_outside_the_year_is_noted(example: Path) -> None:
    """A contract whose term lies wholly outside the financial year is on no statement:
    check and pay say so, at the term's line, and still pass."""
    edit(COMMUNITY, "term: {start: 2025-04-01, end: 2026-03-31}", "term: {start: 2026-04-01, end: 2027-03-31}")(example)
    for command in (CHECK, PAY):
        result = invoke(example, *command)
        assert result.exit_code == 0, result.output
        flat = " ".join(result.output.split())
        assert f"Note: {COMMUNITY}:12 term: COMMUNITY-2025's term, 2026-04-01 to 2027-03-31, lies wholly outside the financial year 2025-26" in flat, result.output
    assert not any(line.startswith("│ COMMUNITY-2025") for line in result.output.splitlines())
