"""Exact money: Decimal in Python, DECIMAL in the engine, half-up to pence once per line."""

from __future__ import annotations

from contextvars import ContextVar
from decimal import ROUND_HALF_UP, Decimal
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
# The operands of quantity × rate: below 10^8 in size, to 10 places. The engine multiplies
# their whole and fractional parts (mechanisms.shared.with_rounded_product), so that each
# partial product fits 18 digits, a 64-bit decimal that every backend rescales quickly.
OPERAND_TYPE = "decimal(18, 10)"
# So input quantities (one row's, or planned) are refused at load from this size on, and
# unit prices from a tenth of it, leaving room for a market forces factor below 10 in the
# rate (price × MFF), which must itself be an operand.
OPERAND_LIMIT = 10**8
PRICE_LIMIT = OPERAND_LIMIT // 10
# Money before it is rounded to a line: values of activity and cumulative settlements.
VALUE_TYPE = "decimal(28, 10)"
# A share of money (0 to 1) to 10 places, and the money it multiplies: 26 + 11 + 1 digits
# keep the product exact on every backend.
SHARE_TYPE = "decimal(11, 10)"
SHARED_TYPE = "decimal(26, 10)"


def to_pence(value: Decimal) -> Decimal:
    """Round half-up to the penny: the only rounding money ever gets."""
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


def pence(amounts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Exact money (decimals of at most two places) as whole pence, int64, nulls as 0: the
    decimals' own integers, read without passing through a float."""
    exact = pc.cast(amounts, pa.decimal128(38, 2))  # a safe cast: refuses to drop places
    array = exact.combine_chunks() if isinstance(exact, pa.ChunkedArray) else exact
    words = np.frombuffer(array.buffers()[1], dtype=np.int64)[2 * array.offset : 2 * (array.offset + len(array))]
    low, high = words[0::2], words[1::2]  # little-endian 128-bit integers
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    if np.any(valid & (high != (low >> 63))):
        raise OverflowError("an amount too large for whole pence in 64 bits")
    return np.where(valid, low, 0)


def pounds(whole_pence: int | np.integer) -> Decimal:
    """Whole pence as an exact amount with two places: 150 → 1.50."""
    return Decimal(int(whole_pence)).scaleb(-2)


def split_exactly(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` by weights into pence, the last part with a positive weight absorbing
    rounding (a zero weight always gets exactly nothing).

    The parts always sum exactly to `total` rounded to pence.
    """
    if not weights:
        return []
    whole = to_pence(total)
    weight_sum = sum(weights, Decimal(0))
    if weight_sum == 0:
        raise ValueError("weights sum to zero")
    absorber = max(i for i, w in enumerate(weights) if w > 0)
    parts = [to_pence(whole * w / weight_sum) for w in weights]
    parts[absorber] = whole - sum(parts[:absorber] + parts[absorber + 1 :], Decimal(0))
    if (parts[absorber] < 0) != (whole < 0) and parts[absorber] != 0:
        # Pennies spread too thin (6p over 11 months) would leave the last part negative:
        # round the running total instead, so every part keeps the sign of the whole.
        running, parts = Decimal(0), []
        for weight in weights:
            before = to_pence(whole * running / weight_sum)
            running += weight
            parts.append(to_pence(whole * running / weight_sum) - before)
    return parts


CURRENCY_SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€"}
_symbol: ContextVar[str] = ContextVar("currency_symbol", default="£")


def use_currency(code: str) -> None:
    """Show money in this currency (a key of CURRENCY_SYMBOLS) from now on: the open
    workspace's, so every screen, workbook, page and line's basis says $ where it prices in dollars."""
    _symbol.set(CURRENCY_SYMBOLS[code])


def currency_symbol() -> str:
    """The symbol money is shown with: the open workspace's currency (£ by default)."""
    return _symbol.get()


def format_money(value: Decimal, symbol: str | None = None) -> str:
    """£1,234.56 (in the workspace's currency), with a leading minus for negatives."""
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol if symbol is not None else currency_symbol()}{abs(value):,.2f}"


def format_signed(value: Decimal) -> str:
    """+£200.00, -£200.00 or £0.00: a variance or a difference, its sign always shown."""
    return ("+" if value > 0 else "") + format_money(value)
