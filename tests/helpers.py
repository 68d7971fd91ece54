"""Builders for small, hand-checkable cases: contracts from YAML text, tables from rows."""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from typing import Any

import pyarrow as pa

from carecontracts.data.schemas import ACTIVITY, OUTCOMES
from carecontracts.engine.backend import Engine
from carecontracts.engine.run import RunTables, statement_lines
from carecontracts.language.load import parse_contract
from carecontracts.language.model import Contract
from carecontracts.language.yaml_lines import parse_yaml
from carecontracts.periods import FinancialYear
from carecontracts.problems import ProblemsError

YEAR = FinancialYear(dt.date(2025, 4, 1))
D = Decimal


def contract(text: str, price_lists: set[str] | None = None) -> Contract:
    """A validated contract from YAML text (raises ProblemsError like a file would)."""
    document = parse_yaml(textwrap.dedent(text), "contracts/test.yaml")
    parsed, problems = parse_contract(document, price_lists)
    if problems or parsed is None:
        raise ProblemsError(problems)
    return parsed


ACTIVITY_SCHEMA = ACTIVITY.arrow_schema(
    ["activity_id", "patient_id", "provider", "commissioner", "service", "currency", "pod", "start_date", "end_date", "quantity", "admission_method", "age"]
)


OPTIONAL_COLUMNS = ("cost", "compliant", "referral_date", "site", "critical_care_days", "rehabilitation_days", "palliative_days")


def activity(rows: list[dict[str, Any]]) -> pa.Table:
    """Activity rows with defaults for every column not given; optional columns (cost,
    compliant, ...) are included when any row gives them."""
    optional = [c for c in OPTIONAL_COLUMNS if any(c in row for row in rows)]
    filled = []
    for index, row in enumerate(rows):
        day = row.get("end_date", dt.date(2025, 4, 15))
        filled.append(
            {
                "activity_id": row.get("activity_id", f"A{index}"),
                "patient_id": row.get("patient_id", f"P{index}"),
                "provider": row.get("provider", "PROV"),
                "commissioner": row.get("commissioner", "ICB"),
                "service": row.get("service", "general"),
                "currency": row.get("currency", "HRG1"),
                "pod": row.get("pod", "EL"),
                "start_date": row.get("start_date", day),
                "end_date": day,
                "quantity": Decimal(row.get("quantity", 1)),
                "admission_method": row.get("admission_method", "elective"),
                "age": row.get("age", 50),
                **{c: (Decimal(row[c]) if c == "cost" else row[c]) if row.get(c) is not None else None for c in optional},
            }
        )
    schema = ACTIVITY.arrow_schema(ACTIVITY_SCHEMA.names + optional) if optional else ACTIVITY_SCHEMA
    return pa.Table.from_pylist(filled, schema=schema)


def repeat(count: int, **row: Any) -> list[dict[str, Any]]:
    """`count` copies of a row, with distinct ids and patients."""
    prefix = row.pop("prefix", "r")
    return [dict(row, activity_id=f"{prefix}{i}", patient_id=f"{prefix}p{i}") for i in range(count)]


def prices(rows: list[tuple[str, str, str]], price_list: str = "tariff", start: str = "2025-04-01", end: str = "2026-03-31") -> pa.Table:
    return pa.table(
        {
            "currency": [c for c, _, _ in rows] if rows and len(rows[0]) == 3 else [],
            "unit_price": pa.array([Decimal(p) for _, p, _ in rows], pa.decimal128(18, 4)),
            "valid_from": pa.array([dt.date.fromisoformat(v.split("..")[0]) if v else dt.date.fromisoformat(start) for _, _, v in rows], pa.date32()),
            "valid_to": pa.array([dt.date.fromisoformat(v.split("..")[1]) if v else dt.date.fromisoformat(end) for _, _, v in rows], pa.date32()),
            "price_list": [price_list] * len(rows),
        }
    )


def price_list(mapping: dict[str, str], name: str = "tariff") -> pa.Table:
    """A price list valid all year: currency → price."""
    return prices([(c, p, "") for c, p in mapping.items()], name)


def plans(rows: list[tuple[str, str, dt.date, str]]) -> pa.Table:
    return pa.table(
        {
            "contract": [r[0] for r in rows],
            "service": [r[1] for r in rows],
            "month": pa.array([r[2] for r in rows], pa.date32()),
            "planned_quantity": pa.array([Decimal(0)] * len(rows), pa.decimal128(18, 4)),
            "planned_value": pa.array([Decimal(r[3]) for r in rows], pa.decimal128(18, 2)),
        }
    )


def population(rows: list[tuple[str, dt.date, str, int]]) -> pa.Table:
    return pa.table(
        {
            "commissioner": [r[0] for r in rows],
            "month": pa.array([r[1] for r in rows], pa.date32()),
            "band": [r[2] for r in rows],
            "persons": pa.array([r[3] for r in rows], pa.int64()),
        }
    )


def run(engine: Engine, contracts: list[Contract], activity_rows: pa.Table | None = None, **tables: pa.Table) -> pa.Table:
    """Statement lines for the 2025-26 year on `engine` from in-memory tables."""
    def put(name: str, data: pa.Table | None):
        return None if data is None else engine.put(data)

    run_tables = RunTables(
        activity=put("activity", activity_rows),
        prices=put("prices", tables.get("prices")),
        plans=put("plans", tables.get("plans")),
        population=put("population", tables.get("population")),
        outcomes=put("outcomes", tables.get("outcomes")),
        books=put("books", tables.get("books")),
    )
    return statement_lines(engine, contracts, YEAR, run_tables)


def amounts(lines: pa.Table, **where: str) -> list[Decimal]:
    """Amounts of lines matching the given column values, in statement order."""
    return [r["amount"] for r in lines.to_pylist() if all(r[k] == v for k, v in where.items())]


def month(text: str) -> dt.date:
    return dt.date.fromisoformat(text + "-01")


def outcomes(episodes: list[tuple[str, str, Any, Any]], day: str = "2025-06-15", predicted: dict[str, Any] | None = None) -> pa.Table:
    """Outcome rows from (provider, instrument, pre, post) per episode; None leaves a score
    out. The pre score is dated a month before `day`, the post score on it."""
    post_day = dt.date.fromisoformat(day)
    rows: list[dict[str, Any]] = []
    for index, (provider, instrument, pre, post) in enumerate(episodes):
        for timepoint, score, when in (("pre", pre, post_day - dt.timedelta(days=30)), ("post", post, post_day)):
            if score is None:
                continue
            rows.append({
                "patient_id": f"p{index}", "episode_id": f"e{index}", "instrument": instrument, "timepoint": timepoint,
                "date": when, "score": Decimal(str(score)), "provider": provider,
                "predicted": Decimal(str(predicted[f"e{index}"])) if predicted and timepoint == "post" and f"e{index}" in predicted else None,
            })
    return pa.Table.from_pylist(rows, schema=OUTCOMES.arrow_schema())
