"""Shared fixtures: every mechanism case runs on DuckDB and, marked `spark`, on Spark; the
records store's tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

# Commands' tables are as wide as they need to be in tests, so a long temporary path never
# wraps the words a test looks for onto two lines.
os.environ.setdefault("COLUMNS", "400")

from hypothesis import settings

from carecontracts.engine.backend import Engine

# The same examples on every run, so a run's result says something about the change made.
settings.register_profile("carecontracts", derandomize=True)
settings.load_profile("carecontracts")

_spark: Engine | None = None


@pytest.fixture(autouse=True)
def _pounds() -> Iterator[None]:
    """Money is shown in pounds unless the test opens a workspace that says otherwise, and a
    test that does leaves pounds behind it."""
    from carecontracts.money import use_currency

    use_currency("GBP")
    yield
    use_currency("GBP")


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


# The records store runs on SQLite and on a PostgreSQL server. `bash scripts/dev.sh test`
# starts a throwaway server and names it here; each test gets a database of its own on it.
POSTGRES_SERVER = "CARECONTRACTS_TEST_POSTGRES"
RECORDS_BACKENDS = ["sqlite", "postgresql"]


def postgres_server() -> str:
    """The test server's URL, or a skip saying how to get one (a failure under CI, which must not skip)."""
    url = os.environ.get(POSTGRES_SERVER)
    if url:
        return url
    why = (f"{POSTGRES_SERVER} is not set: run `bash scripts/dev.sh test`, which starts a PostgreSQL server, "
           f"or set it to a server's SQLAlchemy URL, e.g. postgresql+psycopg://postgres@/postgres?host=/tmp/pg")
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"the PostgreSQL records tests cannot run under CI: {why}")
    pytest.skip(why)


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards: xdist workers never share one."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    server = sa.create_engine(postgres_server(), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"carecontracts_test_{uuid.uuid4().hex}"
    with server.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_server()).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def records_url_for(backend: str, folder: Path) -> contextlib.AbstractContextManager[str]:
    """A fresh records store's URL: a SQLite file in `folder`, or a new PostgreSQL database."""
    if backend == "postgresql":
        return postgres_database()
    return contextlib.nullcontext(f"sqlite:///{folder / 'records.sqlite'}")


@pytest.fixture(params=RECORDS_BACKENDS)
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty records store's URL, on SQLite and on PostgreSQL."""
    with records_url_for(request.param, tmp_path) as url:
        yield url
