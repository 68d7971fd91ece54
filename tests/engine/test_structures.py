"""Prime contractors, sub-contractors and alliances: who pays whom, every party's position,
and money conserved across all of them in every scenario."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecontracts.engine.agreements import agreements_of
from carecontracts.engine.backend import Engine
from carecontracts.engine.positions import positions
from carecontracts.engine.run import RunTables, measure_and_price
from tests.helpers import YEAR, D, activity, contract, price_list, repeat, run

ALLIANCE = """
id: OPA-2025
commissioner: ICB
provider: ALLIANCE
term: {{start: 2025-04-01, end: 2026-03-31}}
members:
  - {{provider: ACUTE, share: {a}}}
  - {{provider: COMMUNITY, share: {b}}}
  - {{provider: COUNCIL, share: {c}}}
  - {{provider: CHARITY, share: {d}}}
components:
  - {{id: budget, kind: block, annual: {annual}}}
"""


def test_alliance_lines_are_split_by_member_share(engine: Engine) -> None:
    # £1,000.01 a year: £83.33 a month (March £83.38). Each month 40/30/20/10%: £33.33,
    # £25.00 (24.999), £16.67 (16.666), and the charity the rest, £8.33.
    lines = run(engine, [contract(ALLIANCE.format(a="0.4", b="0.3", c="0.2", d="0.1", annual="1000.01"))])
    april = {r["payee"]: r["amount"] for r in lines.to_pylist() if r["month"].month == 4}
    assert april == {"ACUTE": D("33.33"), "COMMUNITY": D("25.00"), "COUNCIL": D("16.67"), "CHARITY": D("8.33")}
    assert sum(r["amount"] for r in lines.to_pylist()) == D("1000.01")
    assert "CHARITY's share 0.1 (the rest) of the alliance's £83.33" in [r for r in lines.to_pylist() if r["payee"] == "CHARITY"][0]["basis"]


PRIME = """
id: MSK-2025
commissioners: [{{id: ICB-A, share: 0.7}}, {{id: ICB-B, share: 0.3}}]
provider: PRIME
term: {{start: 2025-04-01, end: 2026-03-31}}
services: {{msk: {{service: [msk]}}}}
components:
  - {{id: core, kind: block, annual: {core}}}
subcontracts:
  - id: MSK-ORTHO
    provider: ACUTE
    components: [{{id: ortho, kind: activity, prices: tariff}}]
  - id: MSK-GP
    provider: GP-LED
    components: [{{id: gp, kind: block, annual: {gp}}}]
  - id: MSK-CHARITY
    provider: CHARITY
    components: [{{id: support, kind: block, annual: {charity}}}]
"""


def test_prime_pays_its_sub_contractors_and_positions_show_the_margin(engine: Engine) -> None:
    # Commissioners pay the prime £1.2m (70/30); the prime pays the acute trust 10 cases ×
    # £500 = £5,000, the GP-led service £240,000 and the charity £60,000: margin £895,000.
    text = PRIME.format(core="1_200_000", gp="240_000", charity="60_000")
    rows = activity(repeat(10, provider="ACUTE", commissioner="ICB-A", service="msk", cost=400) )
    tables = RunTables(engine.put(rows), engine.put(price_list({"HRG1": "500"})))
    terms = [contract(text, {"tariff"})]
    priced = measure_and_price(engine, terms, YEAR, tables)
    table = engine.to_arrow(positions(priced.lines, priced.fine, agreements_of(terms), YEAR.months)).to_pylist()
    by_party = {r["party"]: r for r in table}
    assert by_party["PRIME"]["role"] == "prime" and by_party["ACUTE"]["role"] == "sub-contractor"
    assert (by_party["PRIME"]["income"], by_party["PRIME"]["payments"], by_party["PRIME"]["net"]) == (D("1200000.00"), D("305000.00"), D("895000.00"))
    assert (by_party["ICB-A"]["payments"], by_party["ICB-B"]["payments"]) == (D("840000.00"), D("360000.00"))
    # The acute trust's activity carries costs of £400 a case: margin £5,000 − £4,000.
    assert (by_party["ACUTE"]["costs"], by_party["ACUTE"]["margin"]) == (D("4000.00"), D("1000.00"))
    assert by_party["GP-LED"]["costs"] is None and by_party["GP-LED"]["margin"] is None
    assert sum(r["income"] for r in table) == sum(r["payments"] for r in table)


def test_no_margin_where_only_part_of_the_activity_carries_costs(engine: Engine) -> None:
    # The acute trust's 10 cases carry £400 each, an eleventh carries none: it is paid
    # 11 × £500 = £5,500, but its costs are not known, so neither is its margin (£4,000 would
    # make it £1,500, which no one can say). The prime's position has no activity costs at all.
    text = PRIME.format(core="1_200_000", gp="240_000", charity="60_000")
    rows = activity([*repeat(10, provider="ACUTE", commissioner="ICB-A", service="msk", cost=400),
                     *repeat(1, provider="ACUTE", commissioner="ICB-A", service="msk", cost=None, prefix="u")])
    tables = RunTables(engine.put(rows), engine.put(price_list({"HRG1": "500"})))
    terms = [contract(text, {"tariff"})]
    priced = measure_and_price(engine, terms, YEAR, tables)
    by_party = {r["party"]: r for r in engine.to_arrow(positions(priced.lines, priced.fine, agreements_of(terms), YEAR.months)).to_pylist()}
    assert (by_party["ACUTE"]["income"], by_party["ACUTE"]["net"]) == (D("5500.00"), D("5500.00"))
    assert by_party["ACUTE"]["costs"] is None and by_party["ACUTE"]["margin"] is None


SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
pounds = st.integers(0, 10**9).map(lambda p: Decimal(p).scaleb(-2))
NAMES = ("OPA-2025", "ALLIANCE", "ACUTE", "COMMUNITY", "COUNCIL", "CHARITY", "MSK-2025", "MSK-ORTHO", "MSK-GP", "MSK-CHARITY",
         "ICB-A", "ICB-B", "ICB", "PRIME", "GP-LED", "tariff")


def suffixed(text: str, k: int) -> str:
    """Contract text with every contract, party and price list in it named with the suffix -k."""
    return re.sub(r"(?<![\w-])(" + "|".join(map(re.escape, NAMES)) + r")(?![\w-])", lambda m: f"{m.group(1)}-{k}", text)


def test_money_is_conserved_across_commissioners_prime_subcontractors_and_alliance_members() -> None:
    """In every scenario Σ income = Σ payments over all parties, and each alliance line's
    member parts sum exactly to it, whatever the amounts and shares. Each example prices a
    batch of one to three independent copies of the network (parties suffixed -k) in one run,
    and checks each copy on its own."""
    engine = Engine.duckdb()
    network = st.fixed_dictionaries({
        "core": pounds, "gp": pounds, "charity": pounds, "annual": pounds, "cases": st.integers(0, 30),
        # Three members' shares of at least 1% leaving the lead some: cut points 1 to 99, apart.
        "shares": st.lists(st.integers(1, 99), min_size=3, max_size=3, unique=True).map(sorted).map(lambda c: [c[0], c[1] - c[0], c[2] - c[1]]),
    })

    @SETTINGS
    @given(copies=st.lists(network, min_size=1, max_size=3))
    def check(copies: list[dict]) -> None:
        terms, rows = [], []
        for k, copy in enumerate(copies):
            a, b, c = (Decimal(s) / 100 for s in copy["shares"])
            d = 1 - a - b - c
            terms += [
                contract(suffixed(PRIME.format(core=copy["core"], gp=copy["gp"], charity=copy["charity"]), k), {f"tariff-{k}"}),
                contract(suffixed(ALLIANCE.format(a=a, b=b, c=c, d=d, annual=copy["annual"]), k)),
            ]
            rows += repeat(copy["cases"], provider=f"ACUTE-{k}", commissioner=f"ICB-B-{k}", service="msk", cost=10, prefix=f"c{k}-")
        prices = pa.concat_tables([price_list({"HRG1": "123.45"}, f"tariff-{k}") for k in range(len(copies))])
        tables = RunTables(engine.put(activity(rows)), engine.put(prices))
        priced = measure_and_price(engine, terms, YEAR, tables, ("actual", "winter"))
        table = engine.to_arrow(positions(priced.lines, priced.fine, agreements_of(terms), YEAR.months)).to_pylist()
        lines = engine.to_arrow(priced.lines).to_pylist()
        for k, copy in enumerate(copies):
            parties = {f"{name}-{k}" for name in NAMES}
            income: dict[str, Decimal] = defaultdict(Decimal)
            paid: dict[str, Decimal] = defaultdict(Decimal)
            for row in table:
                if row["party"] in parties:
                    income[row["scenario"]] += row["income"]
                    paid[row["scenario"]] += row["payments"]
            assert set(income) == {"actual", "winter"}
            assert income == paid
            alliance = [r for r in lines if r["contract"] == f"OPA-2025-{k}" and r["scenario"] == "actual"]
            assert sum(r["amount"] for r in alliance) == copy["annual"]
            by_month: dict = defaultdict(Decimal)
            for r in alliance:
                by_month[r["month"]] += r["amount"]
            assert all(v >= 0 for v in by_month.values())

    check()
