"""Exact amounts as whole pence for NumPy (the simulation's summary and the risk charts)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from carecontracts.money import pence


def test_pence_are_the_decimals_own_integers() -> None:
    # 2⁶³ − 1 pence is £92,233,720,368,547,758.07: exact, where a float would have rounded it.
    amounts = pa.array([Decimal("1.05"), None, Decimal("-0.01"), Decimal("92233720368547758.07")], pa.decimal128(38, 2))
    assert pence(amounts).tolist() == [105, 0, -1, 2**63 - 1]
    assert pence(amounts.slice(2, 2)).tolist() == [-1, 2**63 - 1]
    chunked = pa.chunked_array([pa.array([Decimal("1.5")], pa.decimal128(18, 1)), pa.array([Decimal("-2.2")], pa.decimal128(18, 1))])
    assert pence(chunked).dtype == np.int64 and pence(chunked).tolist() == [150, -220]


def test_pence_refuses_what_it_cannot_hold_exactly() -> None:
    with pytest.raises(OverflowError, match="too large"):
        pence(pa.array([Decimal("92233720368547758.08")], pa.decimal128(38, 2)))
    with pytest.raises(pa.ArrowInvalid):
        pence(pa.array([Decimal("1.005")], pa.decimal128(38, 3)))
