"""Property tests: for random terms and activity, statement lines match the payment rules
computed independently here in Python with Decimal, to the penny.

Each test creates one DuckDB engine and runs every generated example on it. An example is
a batch of one to a few independent cases, each its own contract between its own parties,
priced together in one run and checked case by case: a run costs much the same for one
contract as for several, so batching checks more cases in the same time, and shows that
contracts priced together do not disturb each other. Inputs are kept to the decimal places
the rules are defined on (money in pence, MFF to 4 places, percentages to 2), so every exact
value is representable and the only rounding is the half-up rounding to pence of each line."""

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
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def batch(case: st.SearchStrategy[Any], least: int = 1, most: int = 4) -> st.SearchStrategy[list[Any]]:
    """`least` to `most` independent cases, priced together in one run."""
    return st.lists(case, min_size=least, max_size=most)


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

    def check_block(lines: list[dict[str, Any]], provider: str, annual: Decimal, profile: list[Decimal] | None) -> None:
        """One case's twelve lines against its annual amount and profile."""
        weights = profile or [Decimal(1)] * 12
        weight_sum = sum(weights, Decimal(0))
        assert [r["month"] for r in lines] == MONTHS
        assert {(r["payer"], r["payee"]) for r in lines} == {("ICB", provider)}
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

    @SETTINGS
    @given(cases=batch(st.tuples(money(10**10), st.none() | profiles)))
    def check(cases: list[tuple[Decimal, list[Decimal] | None]]) -> None:
        terms = []
        for k, (annual, profile) in enumerate(cases):
            profile_yaml = f", profile: [{', '.join(text(w) for w in profile)}]" if profile else ""
            terms.append(contract(
                f"""
                id: C{k}
                commissioner: ICB
                provider: PROV{k}
                term: {{start: 2025-04-01, end: 2026-03-31}}
                components: [{{id: core, kind: block, annual: {text(annual)}{profile_yaml}}}]
                """
            ))
        lines = run(engine, terms).to_pylist()
        assert len(lines) == 12 * len(cases)
        for k, (annual, profile) in enumerate(cases):
            check_block([r for r in lines if r["contract"] == f"C{k}"], f"PROV{k}", annual, profile)

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
    @given(cases=batch(activity_cases(), least=2, most=3))  # at most three: each case is up to 400 rows
    def check(cases: list[dict[str, Any]]) -> None:
        # Case k: contract Ck with provider PROV-k, priced from its own list tariff-k; its
        # rows come from PROV-k and OTHER-PROV-k (whose activity no contract covers).
        terms = [
            contract(
                f"""
                id: C{k}
                commissioners: [{{id: ICB-A, share: 0.5, coordinating: true}}, {{id: ICB-B, share: 0.5}}]
                provider: PROV-{k}
                term: {{start: 2025-04-01, end: 2026-03-31}}
                components: [{{id: acute, kind: activity, prices: tariff-{k}, mff: {mff_yaml(case['mff'], case['change'])}}}]
                """
            )
            for k, case in enumerate(cases)
        ]
        table = activity(
            [
                {"commissioner": c, "provider": f"{p}-{k}", "currency": cur, "end_date": day_in(m, d), "start_date": day_in(m, d), "quantity": q}
                for k, case in enumerate(cases)
                for c, p, cur, m, d, q in case["rows"]
            ]
        )
        statement = run(engine, terms, table, prices=prices_table({f"tariff-{k}": case["prices"] for k, case in enumerate(cases)}))
        lines = statement.to_pylist()
        assert {r["contract"] for r in lines} <= {f"C{k}" for k in range(len(cases))}
        grand_total = Decimal(0)
        for k, case in enumerate(cases):
            mine = [r for r in lines if r["contract"] == f"C{k}"]
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
            got = {(r["payer"], r["currency"], r["month"]): r["amount"] for r in mine}
            assert len(got) == len(mine)  # one line per commissioner, currency and month
            assert got == expected
            assert {(r["payer"], r["currency"], r["month"]): r["rate"] for r in mine} == rates
            assert {(r["payer"], r["currency"], r["month"]): r["quantity"] for r in mine} == {
                (c, cur, MONTHS[m]): q for (c, cur, m), q in quantities.items()
            }
            assert {r["payee"] for r in mine} <= {f"PROV-{k}"}
            grand_total += sum(expected.values(), Decimal(0))
        assert total(statement) == grand_total

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

    def network(k: int, case: dict[str, Any]) -> list[Any]:
        """Case k's contracts; every party and price list named with the suffix -k."""
        return [
            contract(
                f"""
                id: PRIME-C-{k}
                commissioner: ICB-{k}
                provider: PRIME-{k}
                term: {{start: 2025-04-01, end: 2026-03-31}}
                components:
                  - {{id: core, kind: block, annual: {text(case['block'])}}}
                  - {{id: acute, kind: activity, prices: tariff-{k}, mff: {text(case['mff'])}}}
                subcontracts:
                  - id: SUB-C-{k}
                    provider: SUB-{k}
                    components: [{{id: sub, kind: activity, prices: subprices-{k}}}]
                """
            ),
            contract(
                f"""
                id: OTHER-C-{k}
                commissioner: ICB-{k}
                provider: OTHER-{k}
                term: {{start: 2025-04-01, end: 2026-03-31}}
                components: [{{id: acute, kind: activity, prices: tariff-{k}}}]
                """
            ),
            contract(
                f"""
                id: OTHER-X-{k}
                commissioner: ICB-X-{k}
                provider: OTHER-{k}
                term: {{start: 2025-04-01, end: 2026-03-31}}
                components: [{{id: core, kind: block, annual: {text(case['other_block'])}}}]
                """
            ),
        ]

    def check_network(k: int, case: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        """Case k's lines: the right parties, and each party's net position by hand."""
        parties = {
            f"PRIME-C-{k}": (f"ICB-{k}", f"PRIME-{k}"), f"SUB-C-{k}": (f"PRIME-{k}", f"SUB-{k}"),
            f"OTHER-C-{k}": (f"ICB-{k}", f"OTHER-{k}"), f"OTHER-X-{k}": (f"ICB-X-{k}", f"OTHER-{k}"),
        }
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
        assert net[f"PRIME-{k}"] == icb_to_prime - prime_to_sub
        assert net[f"SUB-{k}"] == prime_to_sub
        assert net[f"OTHER-{k}"] == icb_to_other + case["other_block"]
        assert net[f"ICB-{k}"] == -(icb_to_prime + icb_to_other)
        assert net[f"ICB-X-{k}"] == -case["other_block"]
        assert set(net) == {f"ICB-{k}", f"ICB-X-{k}", f"PRIME-{k}", f"SUB-{k}", f"OTHER-{k}"}

    @SETTINGS
    @given(cases=batch(network_cases()))
    def check(cases: list[dict[str, Any]]) -> None:
        table = activity(
            [
                {"commissioner": f"{c}-{k}", "provider": f"{p}-{k}", "currency": cur, "end_date": day_in(m, 15), "quantity": q}
                for k, case in enumerate(cases)
                for c, p, cur, m, q in case["rows"]
            ]
        )
        prices = prices_table(
            {f"{name}-{k}": case[key] for k, case in enumerate(cases) for name, key in (("tariff", "tariff"), ("subprices", "sub_prices"))}
        )
        lines = run(engine, [c for k, case in enumerate(cases) for c in network(k, case)], table, prices=prices).to_pylist()
        ids = [{f"{name}-{k}" for name in ("PRIME-C", "SUB-C", "OTHER-C", "OTHER-X")} for k in range(len(cases))]
        assert {r["contract"] for r in lines} <= set().union(*ids)
        for k, case in enumerate(cases):
            check_network(k, case, [r for r in lines if r["contract"] in ids[k]])

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

    def terms(k: int, case: dict[str, Any]) -> Any:
        limits = "".join(f", {name}: {text(case[name])}" for name in ("cap", "floor") if case[name] is not None)
        return contract(
            f"""
            id: C{k}
            commissioner: ICB
            provider: PROV-{k}
            term: {{start: 2025-04-01, end: 2026-03-31}}
            components:
              - {{id: mh, kind: cost_and_volume, baseline_volume: {case['baseline']}, price: {text(case['price'])},
                 tolerance_percent: {text(case['tolerance'])}, above_band_percent: {text(case['above'])},
                 below_band_percent: {text(case['below'])}{limits}}}
            """
        )

    @SETTINGS
    @given(cases=batch(cost_and_volume_cases(), most=6))
    def check(cases: list[dict[str, Any]]) -> None:
        rows = [
            {"activity_id": f"c{k}-m{m}-{i}", "provider": f"PROV-{k}", "end_date": day_in(m, 10 + i), "quantity": q}
            for k, case in enumerate(cases)
            for m, month in enumerate(case["months"])
            for i, q in enumerate(month)
        ]
        lines = run(engine, [terms(k, case) for k, case in enumerate(cases)], activity(rows)).to_pylist()
        assert len(lines) == 12 * len(cases)
        for k, case in enumerate(cases):
            mine = [r for r in lines if r["contract"] == f"C{k}"]
            assert [r["month"] for r in mine] == MONTHS
            assert {(r["payer"], r["payee"]) for r in mine} == {("ICB", f"PROV-{k}")}
            assert sum((r["amount"] for r in mine), Decimal(0)) == cost_and_volume_year(case)

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


def rows_of(cases: list[dict[str, Any]]) -> pa.Table:
    """The rows of a batch of cases, case k's from provider PROV-k."""
    return activity([
        {"provider": f"PROV-{k}", "currency": cur, "pod": pod, "end_date": day_in(m, 12), "quantity": q}
        for k, case in enumerate(cases)
        for cur, pod, m, q in case["rows"]
    ])


def test_marginal_rate_year_matches_the_annual_formula() -> None:
    """marginal_rate: the year's lines sum to value V if V ≤ baseline B, else B + (V − B) × rate,
    with V the unrounded Σ quantity × price × MFF, rounded once to pence."""
    engine = Engine.duckdb()

    @SETTINGS
    @given(cases=batch(st.fixed_dictionaries({"case": valued_activity(), "baseline": money(2_000_000), "marginal": rate_percent})))
    def check(cases: list[dict[str, Any]]) -> None:
        terms = [
            contract(
                f"""
                id: C{k}
                commissioner: ICB
                provider: PROV-{k}
                term: {{start: 2025-04-01, end: 2026-03-31}}
                components:
                  - {{id: ae, kind: marginal_rate, prices: tariff-{k}, mff: {text(c['case']['mff'])},
                     baseline_value: {text(c['baseline'])}, marginal_percent: {text(c['marginal'])}}}
                """
            )
            for k, c in enumerate(cases)
        ]
        prices = prices_table({f"tariff-{k}": c["case"]["prices"] for k, c in enumerate(cases)})
        lines = run(engine, terms, rows_of([c["case"] for c in cases]), prices=prices).to_pylist()
        assert {r["contract"] for r in lines} == {f"C{k}" for k in range(len(cases))}
        for k, c in enumerate(cases):
            baseline, marginal = c["baseline"], c["marginal"]
            value = value_of(c["case"], {"EL"})
            with localcontext() as exact:
                exact.prec = 60
                event("above baseline" if value > baseline else "within baseline")
                expected = pence(value if value <= baseline else baseline + (value - baseline) * marginal / 100)
            mine = [r for r in lines if r["contract"] == f"C{k}"]
            assert [r["month"] for r in mine] == MONTHS
            assert sum((r["amount"] for r in mine), Decimal(0)) == expected

    check()


def test_aligned_payment_year_matches_the_annual_formula() -> None:
    """aligned_payment: the fixed lines sum to the fixed element; the variable lines sum to
    (actual − plan) × the upside or downside rate, floored if a floor is given, rounded to
    pence — with the plan either a parameter or the sum of the contract's monthly plans."""
    engine = Engine.duckdb()
    aligned = st.fixed_dictionaries({
        "case": valued_activity(("EL", "NEL")),
        "fixed": money(10**8),
        "up": rate_percent,
        "down": st.none() | rate_percent,
        "floor": st.none() | money(100_000).map(lambda v: -v),
        "planned": st.one_of(money(2_000_000), st.lists(money(200_000), min_size=12, max_size=12)),
    })

    def terms(k: int, c: dict[str, Any]) -> Any:
        options = "".join(
            f", {name}: {text(value)}"
            for name, value in (
                ("downside_percent", c["down"]),
                ("variable_floor", c["floor"]),
                ("planned_value", c["planned"] if isinstance(c["planned"], Decimal) else None),
            )
            if value is not None
        )
        return contract(
            f"""
            id: C{k}
            commissioner: ICB
            provider: PROV-{k}
            term: {{start: 2025-04-01, end: 2026-03-31}}
            services: {{elective: {{pod: [EL]}}, emergency: {{pod: [NEL]}}}}
            components:
              - {{id: api, kind: aligned_payment, services: [elective], prices: tariff-{k}, mff: {text(c['case']['mff'])},
                 fixed: {text(c['fixed'])}, variable_percent: {text(c['up'])}{options}}}
            """
        )

    def expected_variable(c: dict[str, Any]) -> Decimal:
        plan = c["planned"] if isinstance(c["planned"], Decimal) else sum(c["planned"], Decimal(0))
        with localcontext() as exact:
            exact.prec = 60
            difference = value_of(c["case"], {"EL"}) - plan
            rate = c["up"] if difference >= 0 or c["down"] is None else c["down"]
            variable = difference * rate / 100
            event("above plan" if difference >= 0 else "below plan")
            if c["floor"] is not None and variable < c["floor"]:
                event("floored")
                variable = c["floor"]
            return pence(variable)

    @SETTINGS
    @given(cases=batch(aligned))
    def check(cases: list[dict[str, Any]]) -> None:
        plan_rows = []
        for k, c in enumerate(cases):
            if isinstance(c["planned"], list):
                plan_rows += [(f"C{k}", "elective", month, text(v)) for month, v in zip(MONTHS, c["planned"])]
                plan_rows.append((f"C{k}", "emergency", MONTHS[0], "999999.00"))  # another service's plan: ignored
        if plan_rows:
            plan_rows.append(("C9", "elective", MONTHS[0], "888888.00"))  # another contract's plan: ignored
        prices = prices_table({f"tariff-{k}": c["case"]["prices"] for k, c in enumerate(cases)})
        lines = run(
            engine, [terms(k, c) for k, c in enumerate(cases)], rows_of([c["case"] for c in cases]), prices=prices, plans=plans(plan_rows) if plan_rows else None
        ).to_pylist()
        assert len(lines) == 24 * len(cases)
        for k, c in enumerate(cases):
            fixed_lines = [r for r in lines if r["contract"] == f"C{k}" and r["component"] == "api.fixed"]
            variable_lines = [r for r in lines if r["contract"] == f"C{k}" and r["component"] == "api.variable"]
            assert len(fixed_lines) == 12 and len(variable_lines) == 12
            assert sum((r["amount"] for r in fixed_lines), Decimal(0)) == c["fixed"]
            assert sum((r["amount"] for r in variable_lines), Decimal(0)) == expected_variable(c)

    check()
