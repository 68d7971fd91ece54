"""Exact money: Decimal in Python, DECIMAL in the engine, half-up to pence once per line."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Sequence

PENNY = Decimal("0.01")

# Engine column types: amounts in pence, rates and quantities with enough places for
# price × MFF (e.g. 168 × 1.0461 = 175.7448) and for fractional chargeable units.
AMOUNT_TYPE = "decimal(18, 2)"
RATE_TYPE = "decimal(24, 8)"
QUANTITY_TYPE = "decimal(24, 6)"


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
