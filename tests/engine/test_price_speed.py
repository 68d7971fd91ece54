"""The price stage's fast exact rounding: quantity × rate to pence and to 10 places, from
partial products within 18 digits, must equal rounding the exact product half-up, over
the whole range of the types (quantities to 8 places, rates to 10, both below 10^8)."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from itertools import product

import pyarrow as pa

from carecontracts.engine.backend import Engine
from carecontracts.engine.mechanisms.shared import with_rate_parts, with_rounded_product

QUANTITY_PLACES = 8
RATE_PLACES = 10

# Sizes at the edges of the types and of each partial product's rounding.
QUANTITIES = [
    "0", "0.00000001", "0.005", "0.5", "0.49999999", "0.50000001", "0.99999999", "1", "1.5", "2.5", "3",
    "12.34567891", "1234.5", "99999.99999999", "12345678.12345678", "99999999", "99999999.99999999",
]
RATES = [
    "0", "0.0000000001", "0.001", "0.0049999999", "0.005", "0.0050000001", "0.015", "0.3333333333", "0.5",
    "0.9999999999", "1", "1.005", "2.675", "65.5602", "168.0017525", "4999.9950000000", "12345678.9012345678",
    "99999999", "99999999.9999999999",
]


def _cases() -> list[tuple[Decimal, Decimal]]:
    """Every pair of edge sizes with every sign, then random ones of every number of places,
    and some whose exact product lies on a half-penny or a half in the 11th place."""
    cases = []
    for q, r in product(QUANTITIES, RATES):
        for qs, rs in product((1, -1), repeat=2):
            cases.append((Decimal(q) * qs, Decimal(r) * rs))
    rng = random.Random(20250401)
    for _ in range(4000):
        q_places, r_places = rng.randint(0, QUANTITY_PLACES), rng.randint(0, RATE_PLACES)
        q = Decimal(rng.randrange(-(10 ** rng.randint(1, 16)), 10 ** rng.randint(1, 16))).scaleb(-q_places)
        r = Decimal(rng.randrange(-(10 ** rng.randint(1, 18)), 10 ** rng.randint(1, 18))).scaleb(-r_places)
        if abs(q) < 10**8 and abs(r) < 10**8:
            cases.append((q, r))
    # Quantities whose reciprocals terminate, so a rate can put the product exactly on a tie
    # however the tie is spread over the partial products' remainders.
    divisors = [Decimal(d) for d in ("1", "2", "0.5", "2.5", "1.25", "12.5", "3.2", "6.25", "1.6", "0.8", "0.16", "40.96", "1953.125")]
    for _ in range(300):
        for places in (3, 11):  # a half-penny, or a half in the 11th place
            tie = Decimal(2 * rng.randrange(0, 10 ** rng.randint(1, 12)) + 1).scaleb(-places)
            for divisor in divisors:
                r = tie / divisor
                if r == r.quantize(Decimal(1).scaleb(-RATE_PLACES)) and abs(r) < 10**8:
                    cases.append((divisor * rng.choice((1, -1)), r * rng.choice((1, -1))))
    return cases


def test_rounded_product_equals_exact_rounding(engine: Engine) -> None:
    """Amounts and values (whole pounds plus the rest) agree with Decimal's half-up
    rounding of the exact product."""
    cases = _cases()
    table = pa.table(
        {
            "row": pa.array(range(len(cases)), pa.int64()),
            "quantity": pa.array([q for q, _ in cases], pa.decimal128(20, 8)),
            "rate": pa.array([r for _, r in cases], pa.decimal128(18, 10)),
        }
    )
    rounded = with_rounded_product(with_rate_parts(engine.put(table), "rate"), "quantity")
    rows = sorted(engine.to_arrow(rounded).to_pylist(), key=lambda row: row["row"])
    wrong = []
    for (q, r), row in zip(cases, rows):
        exact = q * r
        amount = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        value = exact.quantize(Decimal(1).scaleb(-10), rounding=ROUND_HALF_UP)
        whole, fraction = row["value_whole"], row["value_fraction"]
        if row["line_amount"] != amount or whole + fraction != value or whole != whole.to_integral_value() or abs(fraction) >= 3:
            wrong.append((q, r, row["line_amount"], amount, whole, fraction, value))
    assert len(rows) == len(cases)
    assert not wrong, wrong[:10]


def test_rounded_product_keeps_other_columns(duck: Engine) -> None:
    """The table's own columns pass through unchanged, in order, with only three added."""
    table = pa.table({"quantity": pa.array([Decimal("2.5")], pa.decimal128(20, 8)), "rate": pa.array([Decimal("0.333")], pa.decimal128(18, 10)), "note": ["x"]})
    rounded = duck.to_arrow(with_rounded_product(with_rate_parts(duck.put(table), "rate"), "quantity"))
    assert rounded.column_names == ["quantity", "rate", "note", "line_amount", "value_whole", "value_fraction"]
    row = rounded.to_pylist()[0]
    assert (row["line_amount"], row["value_whole"], row["value_fraction"]) == (Decimal("0.83"), Decimal(0), Decimal("0.8325"))
    assert rounded.schema.field("line_amount").type == pa.decimal128(18, 2)
