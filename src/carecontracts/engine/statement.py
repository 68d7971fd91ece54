"""Statement lines: what each payer owes each payee, per contract, component and month."""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from carecontracts.money import AMOUNT_TYPE, QUANTITY_TYPE, RATE_TYPE

STATEMENT_TYPES: dict[str, str] = {
    "scenario": "string",
    "contract": "string",
    "component": "string",
    "payer": "string",
    "payee": "string",
    "month": "date",
    "quantity": QUANTITY_TYPE,
    "rate": RATE_TYPE,
    "amount": AMOUNT_TYPE,
    "basis": "string",
    "service": "string",
    "currency": "string",
}
ORDER = ["scenario", "contract", "component", "payer", "payee", "month", "service", "currency"]


def conform(lines: ir.Table, keep_origin: bool = False) -> ir.Table:
    """Select statement columns in order with their exact types; absent detail columns are
    null. With `keep_origin`, also the component a line belongs to (`api` for the parts
    `api.fixed` and `api.variable`), which later pricing passes join on."""
    columns = {}
    for name, kind in STATEMENT_TYPES.items():
        if name in lines.columns:
            columns[name] = lines[name].cast(kind)
        else:
            columns[name] = ibis.literal(None, type=kind)
    if keep_origin:
        columns["origin"] = lines.origin if "origin" in lines.columns else lines.component.cast("string")
    return lines.select(**columns)


def total(lines: pa.Table) -> Decimal:
    """Sum of amounts as an exact Decimal."""
    return sum((v for v in lines.column("amount").to_pylist() if v is not None), Decimal(0))
