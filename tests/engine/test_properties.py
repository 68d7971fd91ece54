"""Property tests: for random terms and activity, statement lines match the payment rules
computed independently here in Python with Decimal, to the penny.

Each test creates one DuckDB engine and runs every generated example on it. Inputs are
kept to the decimal places the rules are defined on (money in pence, MFF to 4 places,
percentages to 2), so every exact value is representable and the only rounding is the
half-up rounding to pence of each line."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Callable

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from carecontracts.engine.backend import Engine
from carecontracts.engine.statement import total
from tests.helpers import YEAR, activity, contract, plans, price_list, run

MONTHS: list[dt.date] = YEAR.months
PENNY = Decimal("0.01")
HALF_PENNY = Decimal("0.005")
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def pence(value: Decimal) -> Decimal:
    """Half-up to the penny, done here independently of the package."""
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


def scaled(places: int) -> Callable[[int], Decimal]:
    """Integer → Decimal with `places` decimal places (1234, 2 → 12.34)."""
    return lambda whole: Decimal(whole).scaleb(-places)


def text(value: Decimal) -> str:
    """A Decimal as plain YAML number text, never in exponent form."""
    return f"{value:f}"


def day_in(month_index: int, day: int) -> dt.date:
    month = MONTHS[month_index]
    return dt.date(month.year, month.month, day)


def prices_table(lists: dict[str, dict[str, Decimal]]) -> pa.Table:
    """Several whole-year price lists as one prices table."""
    return pa.concat_tables([price_list({c: text(p) for c, p in mapping.items()}, name) for name, mapping in lists.items()])


def money(maximum_pounds: int) -> st.SearchStrategy[Decimal]:
    return st.integers(0, maximum_pounds * 100).map(scaled(2))


percent = st.integers(0, 10_000).map(scaled(2))  # 0.00 to 100.00
# A rate a share of money is paid at: 0, or 1.00 to 100.00 (between 0 and 1 is refused as a pasted fraction).
rate_percent = st.just(Decimal(0)) | st.integers(100, 10_000).map(scaled(2))
mff = st.integers(5_000, 20_000).map(scaled(4))  # 0.5000 to 2.0000


# ---------------------------------------------------------------- block


profiles = st.lists(st.decimals(min_value=0, max_value=1000, places=2), min_size=12, max_size=12).filter(lambda w: sum(w) > 0)


def test_block_months_sum_to_annual_and_follow_the_profile() -> None:
    """block: twelve lines summing exactly to the annual amount; each month but the last is
    within half a penny of its exact pro-rata share annual × weight / Σ weights."""
    engine = Engine.duckdb()

    @SETTINGS
    @given(annual=money(10**10), profile=st.none() | profiles)
    def check(annual: Decimal, profile: list[Decimal] | None) -> None:
        profile_yaml = f", profile: [{', '.join(text(w) for w in profile)}]" if profile else ""
        terms = contract(
            f"""
            id: C1
            commissioner: ICB
            provider: PROV
            term: {{start: 2025-04-01, end: 2026-03-31}}
            components: [{{id: core, kind: block, annual: {text(annual)}{profile_yaml}}}]
            """
        )
        lines = run(engine, [terms]).to_pylist()
        weights = profile or [Decimal(1)] * 12
        weight_sum = sum(weights, Decimal(0))
        assert [r["month"] for r in lines] == MONTHS
        assert {(r["payer"], r["payee"]) for r in lines} == {("ICB", "PROV")}
        amounts = [r["amount"] for r in lines]
        assert sum(amounts, Decimal(0)) == annual
        assert all(a == a.quantize(PENNY) for a in amounts)
        absorber = max(i for i, w in enumerate(weights) if w > 0)
        with localcontext() as exact:
            exact.prec = 60
            shares = [annual * w / weight_sum for w in weights]
            rounded = [s.quantize(PENNY, rounding=ROUND_HALF_UP) for s in shares]
            remainder = annual - sum(rounded[:absorber] + rounded[absorber + 1 :], Decimal(0))
            assert all(a >= 0 for a in amounts)
            assert all(a == 0 for a, w in zip(amounts, weights) if w == 0)
            if remainder >= 0:
                # The usual rule: every month its share rounded half-up, the last paid month
                # absorbing the rounding (at most the eleven half-pennies of the others).
                assert [a for i, a in enumerate(amounts) if i != absorber] == [r for i, r in enumerate(rounded) if i != absorber]
                assert amounts[absorber] == remainder
                assert abs(amounts[absorber] - shares[absorber]) <= 11 * HALF_PENNY
            else:
                # Pennies spread too thin to round each month: the running total is rounded,
                # so every month is within a penny of its share.
                assert all(abs(a - s) < 2 * HALF_PENNY for a, s in zip(amounts, shares))

    check()


def test_block_month_with_zero_weight_is_paid_nothing() -> None:
    """A month whose profile weight is 0 is paid nothing, and no month of a block is negative."""
    engine = Engine.duckdb()
    terms = contract(
        """
        id: C1
        commissioner: ICB
        provider: PROV
        term: {start: 2025-04-01, end: 2026-03-31}
        components: [{id: core, kind: block, annual: 0.06, profile: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]}]
        """
    )
    amounts = [r["amount"] for r in run(engine, [terms]).to_pylist()]
    assert sum(amounts) == Decimal("0.06")
    assert amounts[11] == Decimal("0.00")
    assert min(amounts) >= 0


# ---------------------------------------------------------------- activity


COMMISSIONERS = ["ICB-A", "ICB-B", "ICB-ELSEWHERE"]
PROVIDERS = ["PROV", "OTHER-PROV"]


@st.composite
def activity_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Random activity for two commissioners (and some for neither), priced from a random
    price list with an MFF that may change at the start of a month."""
    currency_count = draw(st.integers(1, 5))
    currencies = [f"HRG{i}" for i in range(currency_count)]
    prices = {c: draw(st.integers(1, 10_000_000).map(scaled(2))) for c in currencies}
    first_mff = draw(mff)
    change = draw(st.none() | st.tuples(st.integers(1, 11), mff))
    row = st.tuples(
        st.sampled_from(COMMISSIONERS),
        st.sampled_from(PROVIDERS),
        st.sampled_from(currencies),
        st.integers(0, 11),
        st.integers(1, 28),
        st.integers(0, 10_000_000).map(scaled(4)),  # up to 1,000 units, 4 places
    )
    rows = draw(st.lists(row, min_size=100, max_size=400))
    return {"prices": prices, "mff": first_mff, "change": change, "rows": rows}


def mff_yaml(first: Decimal, change: tuple[int, Decimal] | None) -> str:
    if change is None:
        return text(first)
    month = MONTHS[change[0]]
    before = month - dt.timedelta(days=1)
    return f"[{{from: 2025-04-01, to: {before.isoformat()}, value: {text(first)}}}, {{from: {month.isoformat()}, value: {text(change[1])}}}]"


def mff_in(month_index: int, first: Decimal, change: tuple[int, Decimal] | None) -> Decimal:
    return first if change is None or month_index < change[0] else change[1]


def test_activity_lines_are_quantity_times_price_times_mff() -> None:
    """activity: one line per commissioner, currency and month, each the exact product
    Σ quantity × price × MFF rounded half-up to pence; the total is the sum of the lines."""
    engine = Engine.duckdb()

    @SETTINGS
    @given(case=activity_cases())
    def check(case: dict[str, Any]) -> None:
        terms = contract(
            f"""
            id: C1
            commissioners: [{{id: ICB-A, share: 0.5, coordinating: true}}, {{id: ICB-B, share: 0.5}}]
            provider: PROV
            term: {{start: 2025-04-01, end: 2026-03-31}}
            components: [{{id: acute, kind: activity, prices: tariff, mff: {mff_yaml(case['mff'], case['change'])}}}]
            """
        )
        table = activity(
            [
                {"commissioner": c, "provider": p, "currency": cur, "end_date": day_in(m, d), "start_date": day_in(m, d), "quantity": q}
                for c, p, cur, m, d, q in case["rows"]
            ]
        )
        statement = run(engine, [terms], table, prices=prices_table({"tariff": case["prices"]}))
        lines = statement.to_pylist()

        quantities: dict[tuple[str, str, int], Decimal] = defaultdict(Decimal)
        for c, p, cur, m, _, q in case["rows"]:
            if c in ("ICB-A", "ICB-B") and p == "PROV":
                quantities[(c, cur, m)] += q
        with localcontext() as exact:
            exact.prec = 60
            expected = {
                (c, cur, MONTHS[m]): pence(q * case["prices"][cur] * mff_in(m, case["mff"], case["change"]))
                for (c, cur, m), q in quantities.items()
            }
            rates = {(c, cur, MONTHS[m]): case["prices"][cur] * mff_in(m, case["mff"], case["change"]) for (c, cur, m) in quantities}
        got = {(r["payer"], r["currency"], r["month"]): r["amount"] for r in lines}
        assert len(got) == len(lines)  # one line per commissioner, currency and month
        assert got == expected
        assert {(r["payer"], r["currency"], r["month"]): r["rate"] for r in lines} == rates
        assert {(r["payer"], r["currency"], r["month"]): r["quantity"] for r in lines} == {
            (c, cur, MONTHS[m]): q for (c, cur, m), q in quantities.items()
        }
        assert {r["payee"] for r in lines} <= {"PROV"}
        assert total(statement) == sum(expected.values(), Decimal(0))

    check()


# ---------------------------------------------------------------- money is conserved


@st.composite
def network_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Random activity across a prime, its sub-contractor, another provider and one that
    holds no contract, commissioned by two ICBs."""
    currencies = ["HRG1", "HRG2", "HRG3"]
    row = st.tuples(
        st.sampled_from(["ICB", "ICB-X"]),
        st.sampled_from(["PRIME", "SUB", "OTHER", "NOBODY"]),
        st.sampled_from(currencies),
        st.integers(0, 11),
        st.integers(0, 5_000).map(scaled(2)),
    )
    return {
        "block": draw(money(10**7)),
        "other_block": draw(money(10**6)),
        "mff": draw(mff),
        "tariff": {c: draw(st.integers(1, 1_000_000).map(scaled(2))) for c in currencies},
        "sub_prices": {c: draw(st.integers(1, 1_000_000).map(scaled(2))) for c in currencies},
        "rows": draw(st.lists(row, min_size=50, max_size=300)),
    }


def test_money_is_conserved_and_flows_between_the_right_parties() -> None:
    """Across contracts with a sub-contract, every line runs from the expected payer to the
    expected payee, Σ(received − paid) over all parties is 0, and each party's net position
    is what the terms give: the prime receives block + its activity (its sub-contractor's
    included) from the ICB and pays its sub-contractor for the sub-contractor's activity."""
    engine = Engine.duckdb()

    @SETTINGS
    @given(case=network_cases())
    def check(case: dict[str, Any]) -> None:
        prime = contract(
            f"""
            id: PRIME-C
            commissioner: ICB
            provider: PRIME
            term: {{start: 2025-04-01, end: 2026-03-31}}
            components:
              - {{id: core, kind: block, annual: {text(case['block'])}}}
              - {{id: acute, kind: activity, prices: tariff, mff: {text(case['mff'])}}}
            subcontracts:
              - id: SUB-C
                provider: SUB
                components: [{{id: sub, kind: activity, prices: subprices}}]
            """
        )
        other = contract(
            """
            id: OTHER-C
            commissioner: ICB
            provider: OTHER
            term: {start: 2025-04-01, end: 2026-03-31}
            components: [{id: acute, kind: activity, prices: tariff}]
            """
        )
        other_x = contract(
            f"""
            id: OTHER-X
            commissioner: ICB-X
            provider: OTHER
            term: {{start: 2025-04-01, end: 2026-03-31}}
            components: [{{id: core, kind: block, annual: {text(case['other_block'])}}}]
            """
        )
        table = activity(
            [{"commissioner": c, "provider": p, "currency": cur, "end_date": day_in(m, 15), "quantity": q} for c, p, cur, m, q in case["rows"]]
        )
        prices = prices_table({"tariff": case["tariff"], "subprices": case["sub_prices"]})
        lines = run(engine, [prime, other, other_x], table, prices=prices).to_pylist()

        parties = {"PRIME-C": ("ICB", "PRIME"), "SUB-C": ("PRIME", "SUB"), "OTHER-C": ("ICB", "OTHER"), "OTHER-X": ("ICB-X", "OTHER")}
        for line in lines:
            assert (line["payer"], line["payee"]) == parties[line["contract"]]

        net: dict[str, Decimal] = defaultdict(Decimal)
        for line in lines:
            net[line["payee"]] += line["amount"]
            net[line["payer"]] -= line["amount"]
        assert sum(net.values(), Decimal(0)) == 0

        def priced(providers: set[str], mapping: dict[str, Decimal], factor: Decimal) -> Decimal:
            """Σ over (currency, month) of ICB activity by `providers`, each line rounded."""
            grouped: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
            for c, p, cur, m, q in case["rows"]:
                if c == "ICB" and p in providers:
                    grouped[(cur, m)] += q
            return sum((pence(q * mapping[cur] * factor) for (cur, _), q in grouped.items()), Decimal(0))

        icb_to_prime = case["block"] + priced({"PRIME", "SUB"}, case["tariff"], case["mff"])
        prime_to_sub = priced({"SUB"}, case["sub_prices"], Decimal(1))
        icb_to_other = priced({"OTHER"}, case["tariff"], Decimal(1))
        assert net["PRIME"] == icb_to_prime - prime_to_sub
        assert net["SUB"] == prime_to_sub
        assert net["OTHER"] == icb_to_other + case["other_block"]
        assert net["ICB"] == -(icb_to_prime + icb_to_other)
        assert net["ICB-X"] == -case["other_block"]
        assert set(net) == {"ICB", "ICB-X", "PRIME", "SUB", "OTHER"}

    check()


# ---------------------------------------------------------------- cost and volume


@st.composite
def cost_and_volume_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Random cost-and-volume terms, with the baseline drawn around the year's volume (50% to
    150% of it, with exact hits) so that examples fall below, within and above the band."""
    # up to three rows a month of 0 to 200 units, 2 places
    months = draw(st.lists(st.lists(st.integers(0, 20_000).map(scaled(2)), max_size=3), min_size=12, max_size=12))
    volume = sum((q for month in months for q in month), Decimal(0))
    baseline = int(volume * draw(st.sampled_from([50, 80, 95, 100, 105, 120, 150])) / 100)
    price = draw(st.integers(1, 1_000_000).map(scaled(2)))
    full_pence = int(baseline * price * 100)
    limit = st.integers(full_pence // 2, 2 * full_pence + 100).map(scaled(2))
    cap, floor = draw(st.none() | limit), draw(st.none() | limit)
    if cap is not None and floor is not None and floor > cap:
        cap, floor = floor, cap
    return {
        "baseline": Decimal(baseline),
        "price": price,
        "tolerance": draw(st.integers(0, 2_500).map(scaled(2))),
        "above": draw(rate_percent),
        "below": draw(rate_percent),
        "cap": cap,
        "floor": floor,
        "months": months,
    }


def cost_and_volume_year(case: dict[str, Any]) -> Decimal:
    """The annual rule by hand: within band V×p; above U×p + (V−U)×p×a; below V×p + (L−V)×p×b;
    then cap and floor; rounded to pence."""
    with localcontext() as exact:
        exact.prec = 60
        volume = sum((q for month in case["months"] for q in month), Decimal(0))
        p, t = case["price"], case["tolerance"] / 100
        lower, upper = case["baseline"] * (1 - t), case["baseline"] * (1 + t)
        if volume > upper:
            event("above band")
            value = upper * p + (volume - upper) * p * case["above"] / 100
        elif volume < lower:
            event("below band")
            value = volume * p + (lower - volume) * p * case["below"] / 100
        else:
            event("within band")
            value = volume * p
        if case["cap"] is not None and value > case["cap"]:
            event("capped")
            value = case["cap"]
        if case["floor"] is not None and value < case["floor"]:
            event("floored")
            value = case["floor"]
        return pence(value)


def test_cost_and_volume_year_matches_the_annual_formula() -> None:
    """cost_and_volume: the twelve monthly lines sum exactly to the annual band formula."""
    engine = Engine.duckdb()

    @SETTINGS
    @given(case=cost_and_volume_cases())
    def check(case: dict[str, Any]) -> None:
        limits = "".join(f", {name}: {text(case[name])}" for name in ("cap", "floor") if case[name] is not None)
        terms = contract(
            f"""
            id: C1
            commissioner: ICB
            provider: PROV
            term: {{start: 2025-04-01, end: 2026-03-31}}
            components:
              - {{id: mh, kind: cost_and_volume, baseline_volume: {case['baseline']}, price: {text(case['price'])},
                 tolerance_percent: {text(case['tolerance'])}, above_band_percent: {text(case['above'])},
                 below_band_percent: {text(case['below'])}{limits}}}
            """
        )
        rows = [
            {"activity_id": f"m{m}-{i}", "end_date": day_in(m, 10 + i), "quantity": q}
            for m, month in enumerate(case["months"])
            for i, q in enumerate(month)
        ]
        lines = run(engine, [terms], activity(rows)).to_pylist()
        assert [r["month"] for r in lines] == MONTHS
        assert {(r["payer"], r["payee"]) for r in lines} == {("ICB", "PROV")}
        assert sum((r["amount"] for r in lines), Decimal(0)) == cost_and_volume_year(case)

    check()


# ---------------------------------------------------------------- marginal rate, aligned payment


@st.composite
def valued_activity(draw: st.DrawFn, pods: tuple[str, ...] = ("EL",)) -> dict[str, Any]:
    """Whole-unit activity over a year at random prices (pence) and MFF (4 places)."""
    currencies = ["HRG1", "HRG2", "HRG3"]
    row = st.tuples(st.sampled_from(currencies), st.sampled_from(pods), st.integers(0, 11), st.integers(0, 5))
    return {
        "prices": {c: draw(st.integers(1, 500_000).map(scaled(2))) for c in currencies},
        "mff": draw(mff),
        "rows": draw(st.lists(row, min_size=20, max_size=200)),
    }


def value_of(case: dict[str, Any], pods: set[str]) -> Decimal:
    """Σ quantity × price × MFF over the rows of the given points of delivery, unrounded."""
    with localcontext() as exact:
        exact.prec = 60
        return sum((q * case["prices"][cur] * case["mff"] for cur, pod, _, q in case["rows"] if pod in pods), Decimal(0))


def rows_of(case: dict[str, Any]) -> pa.Table:
    return activity([{"currency": cur, "pod": pod, "end_date": day_in(m, 12), "quantity": q} for cur, pod, m, q in case["rows"]])


def test_marginal_rate_year_matches_the_annual_formula() -> None:
    """marginal_rate: the year's lines sum to value V if V ≤ baseline B, else B + (V − B) × rate,
    with V the unrounded Σ quantity × price × MFF, rounded once to pence."""
    engine = Engine.duckdb()

    @SETTINGS
    @given(case=valued_activity(), baseline=money(2_000_000), marginal=rate_percent)
    def check(case: dict[str, Any], baseline: Decimal, marginal: Decimal) -> None:
        terms = contract(
            f"""
            id: C1
            commissioner: ICB
            provider: PROV
            term: {{start: 2025-04-01, end: 2026-03-31}}
            components:
              - {{id: ae, kind: marginal_rate, prices: tariff, mff: {text(case['mff'])},
                 baseline_value: {text(baseline)}, marginal_percent: {text(marginal)}}}
            """
        )
        lines = run(engine, [terms], rows_of(case), prices=prices_table({"tariff": case["prices"]})).to_pylist()
        value = value_of(case, {"EL"})
        with localcontext() as exact:
            exact.prec = 60
            event("above baseline" if value > baseline else "within baseline")
            expected = pence(value if value <= baseline else baseline + (value - baseline) * marginal / 100)
        assert [r["month"] for r in lines] == MONTHS
        assert sum((r["amount"] for r in lines), Decimal(0)) == expected

    check()


def test_aligned_payment_year_matches_the_annual_formula() -> None:
    """aligned_payment: the fixed lines sum to the fixed element; the variable lines sum to
    (actual − plan) × the upside or downside rate, floored if a floor is given, rounded to
    pence — with the plan either a parameter or the sum of the contract's monthly plans."""
    engine = Engine.duckdb()

    @SETTINGS
    @given(
        case=valued_activity(("EL", "NEL")),
        fixed=money(10**8),
        up=rate_percent,
        down=st.none() | rate_percent,
        floor=st.none() | money(100_000).map(lambda v: -v),
        planned=st.one_of(money(2_000_000), st.lists(money(200_000), min_size=12, max_size=12)),
    )
    def check(case: dict[str, Any], fixed: Decimal, up: Decimal, down: Decimal | None, floor: Decimal | None, planned: Decimal | list[Decimal]) -> None:
        options = "".join(
            f", {name}: {text(value)}"
            for name, value in (
                ("downside_percent", down),
                ("variable_floor", floor),
                ("planned_value", planned if isinstance(planned, Decimal) else None),
            )
            if value is not None
        )
        terms = contract(
            f"""
            id: C1
            commissioner: ICB
            provider: PROV
            term: {{start: 2025-04-01, end: 2026-03-31}}
            services: {{elective: {{pod: [EL]}}, emergency: {{pod: [NEL]}}}}
            components:
              - {{id: api, kind: aligned_payment, services: [elective], prices: tariff, mff: {text(case['mff'])},
                 fixed: {text(fixed)}, variable_percent: {text(up)}{options}}}
            """
        )
        plan_table = None
        if isinstance(planned, list):
            plan_rows = [("C1", "elective", month, text(v)) for month, v in zip(MONTHS, planned)]
            # Plans for another service and another contract must be ignored.
            plan_rows += [("C1", "emergency", MONTHS[0], "999999.00"), ("C9", "elective", MONTHS[0], "888888.00")]
            plan_table = plans(plan_rows)
        lines = run(engine, [terms], rows_of(case), prices=prices_table({"tariff": case["prices"]}), plans=plan_table).to_pylist()

        plan = planned if isinstance(planned, Decimal) else sum(planned, Decimal(0))
        with localcontext() as exact:
            exact.prec = 60
            difference = value_of(case, {"EL"}) - plan
            rate = up if difference >= 0 or down is None else down
            variable = difference * rate / 100
            event("above plan" if difference >= 0 else "below plan")
            if floor is not None and variable < floor:
                event("floored")
                variable = floor
            expected_variable = pence(variable)
        fixed_lines = [r for r in lines if r["component"] == "api.fixed"]
        variable_lines = [r for r in lines if r["component"] == "api.variable"]
        assert len(fixed_lines) == 12 and len(variable_lines) == 12
        assert len(lines) == 24
        assert sum((r["amount"] for r in fixed_lines), Decimal(0)) == fixed
        assert sum((r["amount"] for r in variable_lines), Decimal(0)) == expected_variable

    check()
