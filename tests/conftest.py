"""Shared fixtures: every mechanism case runs on DuckDB and, marked `spark`, on Spark."""

from __future__ import annotations

import os

import pytest

# Commands' tables are as wide as they need to be in tests, so a long temporary path never
# wraps the words a test looks for onto two lines.
os.environ.setdefault("COLUMNS", "400")

from carecontracts.engine.backend import Engine

_spark: Engine | None = None


def _spark_engine() -> Engine:
    global _spark
    if _spark is None:
        _spark = Engine.spark("local[2]")
    return _spark


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """A fresh DuckDB engine, or the process's shared local Spark engine."""
    if request.param == "spark":
        return _spark_engine()
    return Engine.duckdb()


@pytest.fixture
def duck() -> Engine:
    return Engine.duckdb()
