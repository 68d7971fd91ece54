"""Every backend difference lives here: connecting, moving tables in, and formatting text."""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import sqlglot.expressions as sge


@ibis.udf.scalar.builtin(name="format")
def _duckdb_format(pattern: str, value: dt.Decimal(38, 8)) -> str:  # type: ignore[valid-type, empty-body]
    """DuckDB's fmt-style format: format('{:,.2f}', x)."""


@ibis.udf.scalar.builtin(name="format_number")
def _spark_format_number(value: dt.Decimal(38, 8), places: int) -> str:  # type: ignore[valid-type, empty-body]
    """Spark's format_number(x, d)."""


def month_of(day: ir.DateValue) -> ir.DateValue:
    """First day of the month of a date, as a date on every backend (Spark's date_trunc
    returns a timestamp, so build the date from its parts instead)."""
    return ibis.date(day.year(), day.month(), 1)


@dataclass
class Engine:
    """An Ibis connection plus the few things that differ between DuckDB and Spark."""

    con: Any
    name: str
    _cached: list[ir.Table] = field(default_factory=list)

    @classmethod
    def duckdb(cls, path: Path | None = None, read_only: bool = False) -> "Engine":
        if path is None:
            return cls(ibis.duckdb.connect(), "duckdb")
        return cls(ibis.duckdb.connect(str(path), read_only=read_only), "duckdb")

    @classmethod
    def over_duckdb(cls, con: Any) -> "Engine":
        """An engine over an open DuckDB connection (the files staged by a check); closing
        the engine closes the connection."""
        return cls(ibis.duckdb.from_connection(con), "duckdb")

    @classmethod
    def spark(cls, master: str = "local[2]") -> "Engine":
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        from pyspark.sql import SparkSession

        session = (
            SparkSession.builder.master(master)
            .appName("carecontracts")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.memory", "2g")
            .config("spark.sql.shuffle.partitions", "4")
            # A forecast priced with and without a what-if is one large plan: its text, written for
            # every adaptive re-plan, is cut short rather than filling the driver's memory.
            .config("spark.sql.maxPlanStringLength", "200000")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="carecontracts-spark-"))
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        return cls(ibis.pyspark.connect(session), "spark")

    def table(self, name: str) -> ir.Table:
        return self.con.table(name)

    def has_table(self, name: str) -> bool:
        return name in self.con.list_tables()

    def put(self, data: pa.Table) -> ir.Table:
        """An in-memory Arrow table (terms, months, parameters, test data) as an Ibis table.

        Spark is handed the Arrow table directly: going through pandas, as Ibis memtables
        do, turns a null string into the text 'NaN'. DuckDB reads dictionary-encoded text
        as it is; Spark is given it decoded."""
        if self.name != "spark":
            return ibis.memtable(data)
        name = f"cc_put_{uuid.uuid4().hex}"
        self.con._session.createDataFrame(_decoded(data)).createOrReplaceTempView(name)
        return self.con.table(name)

    def store(self, name: str, data: pa.Table) -> ir.Table:
        """An Arrow table materialised under a fixed name, replacing what was stored there
        before: a query compiled once (`compiled`) reads the new contents when run again."""
        if self.name == "spark":
            self.drop(name)
            self.con._session.createDataFrame(_decoded(data)).cache().createOrReplaceTempView(name)
            return self.con.table(name)
        source = f"cc_source_{uuid.uuid4().hex}"
        self.con.con.register(source, data)
        try:
            self.con.con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS SELECT * FROM "{source}"')
        finally:
            self.con.con.unregister(source)
        return self.con.table(name)

    def drop(self, name: str) -> None:
        """Drop a stored table, if there is one, and free its memory."""
        if self.name == "spark":
            catalog = self.con._session.catalog
            if catalog.tableExists(name):
                catalog.uncacheTable(name)
                catalog.dropTempView(name)
            return
        self.con.con.execute(f'DROP TABLE IF EXISTS temp.main."{name}"')

    def compiled(self, expr: ir.Table) -> Callable[[], pa.Table]:
        """An expression compiled once and run as often as needed: each run reads the current
        contents of the tables it names. Compiling a large pricing expression takes longer
        than running it on one chunk of simulated runs; Spark plans each run anyway."""
        if self.name == "spark":
            return lambda: self.to_arrow(expr)
        self.con._run_pre_execute_hooks(expr)  # registers its in-memory tables
        query = self.con.compiler.to_sqlglot(expr)
        for shared in query.find_all(sge.CTE):
            # DuckDB materialises a subquery used more than once; a pricing query uses the
            # stored tallies once per component, each reading its own part, so reading
            # them in place (filters pushed down) is faster than materialising them all.
            shared.set("materialized", False)
        sql = query.sql(dialect=self.con.dialect)
        schema = expr.schema().to_pyarrow()
        return lambda: self.con.con.execute(sql).to_arrow_table().cast(schema)

    def number(self, value: ir.NumericValue, places: int) -> ir.StringValue:
        """A decimal as text with thousands separators, rounded half-up to `places` first
        (1,050.00): each backend's own formatting rounds its own way (DuckDB through a
        binary float shows 845.275 as 845.27, Spark as 845.28)."""
        exact = value.cast(dt.Decimal(38, 8)).round(places).cast(dt.Decimal(38, 8))
        if self.name == "spark":
            return _spark_format_number(exact, places)
        return _duckdb_format("{:,.%df}" % places, exact)

    def to_arrow(self, expr: ir.Table) -> pa.Table:
        """Run an expression on this engine (in-memory tables carry no backend of their own)."""
        return self.con.to_pyarrow(expr)

    def cache(self, expr: ir.Table) -> ir.Table:
        """Materialise an expression that later steps read many times (the tallies)."""
        self.con._run_pre_execute_hooks(expr)  # registers in-memory tables on Spark too
        cached = self.con._cached_table(expr)
        self._cached.append(cached)
        return cached

    def release(self, cached: ir.Table) -> None:
        """Free one cached table before the engine closes (a simulation's chunk of tallies)."""
        self._cached.remove(cached)
        cached.release()

    def _in_memory_names(self) -> set[str]:
        """Names of the in-memory tables registered with the engine (Ibis memtables on
        DuckDB, `put` views on Spark)."""
        if self.name == "spark":
            return {t.name for t in self.con._session.catalog.listTables() if t.isTemporary and t.name.startswith("cc_put_")}
        views = self.con.con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal AND view_name LIKE 'ibis_%memtable_%'").fetchall()
        return {name for (name,) in views}

    @contextmanager
    def transient(self) -> Iterator[None]:
        """Drop the in-memory tables registered within the block at its end. Ibis keeps every
        memtable registered until the process exits, so a long run of chunks (a simulation)
        would otherwise keep every chunk's tallies in memory."""
        before = self._in_memory_names()
        try:
            yield
        finally:
            gone = self._in_memory_names() - before
            for name in gone:
                if self.name == "spark":
                    self.con._session.catalog.dropTempView(name)
                else:
                    self.con.con.unregister(name)
            for op in [op for op in self.con._memtables if op.name in gone]:
                self.con._memtables.discard(op)  # registered again if it is ever used again

    def close(self) -> None:
        """Release cached tallies, then disconnect (Spark's session stays for reuse)."""
        for cached in self._cached:
            cached.release()
        self._cached.clear()
        if self.name != "spark":
            self.con.disconnect()


def _decoded(data: pa.Table) -> pa.Table:
    """Dictionary-encoded text as plain text (Spark takes no dictionaries)."""
    if not any(pa.types.is_dictionary(column.type) for column in data.columns):
        return data
    return pa.table({name: column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
                     for name, column in zip(data.column_names, data.columns)})


def recast(value: ir.NumericValue, kind: str) -> ir.NumericValue:
    """Cast a decimal product to `kind` for certain. Ibis types a product of decimals as its
    wider operand and drops a cast to that type as a no-op, while the engine's product has
    more places; casting through another type makes the engine round it."""
    return value.cast("decimal(38, 12)").cast(kind)
