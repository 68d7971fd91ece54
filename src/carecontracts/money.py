"""Exact money: Decimal in Python, DECIMAL in the engine, half-up to pence once per line."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Sequence

PENNY = Decimal("0.01")

# Engine column types. Widths are chosen so quantity × rate stays within 38 digits on
# every backend (20 + 18), which keeps products exact: a price (4 places) × an MFF
# (6 places) fits a rate exactly, and avoidable shares (4 places) × units (4 places)
# fit a chargeable quantity exactly.
AMOUNT_TYPE = "decimal(18, 2)"
PRICE_TYPE = "decimal(18, 4)"
FACTOR_TYPE = "decimal(10, 6)"
RATE_TYPE = "decimal(18, 10)"
QUANTITY_TYPE = "decimal(20, 8)"
INPUT_QUANTITY_TYPE = "decimal(18, 4)"
# Ibis multiplies two decimals only when one type contains the other, and Spark keeps
# full scale only while the digits of a product fit 38: both operands of quantity × rate
# are cast to this type (a product of 37 digits, 20 places).
OPERAND_TYPE = "decimal(18, 10)"
# Money before it is rounded to a line: values of activity and cumulative settlements.
VALUE_TYPE = "decimal(28, 10)"


def to_pence(value: Decimal) -> Decimal:
    """Round half-up to the penny: the only rounding money ever gets."""
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


def split_exactly(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` by weights into pence, the last part absorbing rounding.

    The parts always sum exactly to `total` rounded to pence.
    """
    if not weights:
        return []
    whole = to_pence(total)
    weight_sum = sum(weights, Decimal(0))
    if weight_sum == 0:
        raise ValueError("weights sum to zero")
    parts = [to_pence(whole * w / weight_sum) for w in weights[:-1]]
    parts.append(whole - sum(parts, Decimal(0)))
    return parts


def format_money(value: Decimal, symbol: str = "£") -> str:
    """£1,234.56, with a leading minus for negatives."""
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.2f}"
