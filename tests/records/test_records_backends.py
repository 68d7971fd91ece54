"""The records store on SQLite and on PostgreSQL: the migrations, exact amounts and moments,
the event chain and the example's monthly cycle come out the same on both.

The PostgreSQL cases need a server: `bash scripts/dev.sh test` starts one and names it in
CARECONTRACTS_TEST_POSTGRES; each test gets a database of its own on it."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import shutil
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from typer.testing import CliRunner

from carecontracts import cli as cli_module
from carecontracts.cli import app
from carecontracts.records.schema import Base, Challenge, Close, Event, Invoice, IssuedLine, Submission
from carecontracts.records.store import GENESIS, Records, broken_links, record_events
from tests.conftest import RECORDS_BACKENDS, postgres_database, records_url_for

runner = CliRunner()
UTC = dt.timezone.utc
D = Decimal


@pytest.fixture
def store(records_url: str) -> Iterator[Records]:
    """A new records store, migrated, on each backend."""
    records = Records(records_url)
    yield records
    records.close()


def statements_run(url: str) -> list[str]:
    """Open the store at `url` again and return the SQL it ran on the way."""
    seen: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", note)
    try:
        Records(url).close()
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", note)
    return seen


# (a) The migrations.

def test_the_migrations_build_every_table_of_the_schema_and_a_second_open_changes_nothing(store: Records) -> None:
    with store.engine.connect() as connection:
        assert set(sa.inspect(connection).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
        assert set(Base.metadata.tables) == {"events", "submissions", "closes", "issued_lines", "source_texts", "invoices", "challenges",
                                             "users", "tokens", "notices", "notice_steps"}
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert MigrationContext.configure(connection).get_current_revision() == "0003"
    with store.session() as session:
        session.add(Invoice(contract="ACUTE-2025", month=dt.date(2025, 10, 1), provider="ACUTE", amount=D("1.00"),
                            recorded_at=dt.datetime(2025, 11, 3, tzinfo=UTC), recorded_by="tester"))
    again = statements_run(store.url)
    assert again, "opening the store should at least read its revision"
    assert not [s for s in again if s.lstrip().split()[0].upper() in ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")]
    with store.session() as session:
        assert session.scalars(sa.select(Invoice.amount)).all() == [D("1.00")]


# (b) Exact amounts and moments.

@pytest.mark.parametrize("amount", ["0.01", "12345678901234.56", "-0.10", "0", "-999999999999999999.99999999"])
def test_money_comes_back_exactly_as_it_went_in(store: Records, amount: str) -> None:
    with store.session() as session:
        session.add(Invoice(contract="ACUTE-2025", month=dt.date(2025, 10, 1), provider="ACUTE", amount=D(amount),
                            recorded_at=dt.datetime(2025, 11, 3, tzinfo=UTC), recorded_by="tester"))
    with store.session() as session:
        (back,) = session.scalars(sa.select(Invoice.amount)).all()
        (kept,) = session.execute(sa.text("SELECT amount FROM invoices")).scalars().all()
    assert type(back) is Decimal and str(back) == amount and back == D(amount)
    assert kept == amount  # kept as its decimal text, never a binary float


def test_nullable_money_and_dates_come_back_as_they_went_in(store: Records) -> None:
    with store.session() as session:
        close = Close(month=dt.date(2025, 6, 1), version=1, closed_at=dt.datetime(2025, 7, 4, 9, tzinfo=UTC), closed_by="tester",
                      lines=2, total=D("1400.01"), content_hash="c" * 64, sources="{}")
        session.add(close)
        session.flush()
        session.add_all([
            IssuedLine(close_id=close.id, scenario="plan", contract="ACUTE-2025", component="cases", payer="ICB-A", payee="ACUTE",
                       month=dt.date(2025, 6, 1), quantity=D("10.00000000"), rate=D("100.00"), amount=D("1000.00")),
            IssuedLine(close_id=close.id, scenario="plan", contract="ACUTE-2025", component="cases", payer="ICB-B", payee="ACUTE",
                       month=dt.date(2025, 6, 1), quantity=None, rate=None, amount=D("400.01"), adjusts=dt.date(2025, 5, 1))])
    with store.session() as session:
        got = session.execute(sa.select(IssuedLine.quantity, IssuedLine.rate, IssuedLine.amount, IssuedLine.adjusts).order_by(IssuedLine.id)).all()
        total = session.scalar(sa.select(Close.total))
    assert [tuple(r) for r in got] == [(D("10.00000000"), D("100.00"), D("1000.00"), None), (None, None, D("400.01"), dt.date(2025, 5, 1))]
    assert str(got[0][0]) == "10.00000000" and total == sum(r[2] for r in got)


def test_a_moment_comes_back_in_utc_whatever_zone_it_was_given_in_or_the_server_keeps(store: Records) -> None:
    if store.engine.dialect.name == "postgresql":
        # The server's own zone must not matter: have it answer in New York time.
        with store.engine.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{store.engine.url.database}" SET timezone TO \'America/New_York\''))
            connection.commit()
    # 23:30:15.123456 on 31 October at UTC-5 is 04:30:15.123456 on 1 November in UTC.
    given = dt.datetime(2025, 10, 31, 23, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    with store.session() as session:
        session.add(Invoice(contract="ACUTE-2025", month=dt.date(2025, 10, 1), provider="ACUTE", amount=D("1"), recorded_at=given, recorded_by="tester"))
    with store.session() as session:
        back = session.scalar(sa.select(Invoice.recorded_at))
    assert back == dt.datetime(2025, 11, 1, 4, 30, 15, 123456, tzinfo=UTC)
    assert back.utcoffset() == dt.timedelta(0) and back.isoformat() == "2025-11-01T04:30:15.123456+00:00"


# (c) The event chain.

def chain(store: Records, count: int = 3) -> list[Event]:
    """`count` events appended in one transaction, read back."""
    with store.session() as session:
        record_events(session, [("invoice", f"ACUTE-2025 2025-{m:02d}", {"amount": f"{m}00.00", "month": m}, b"") for m in range(4, 4 + count)], who="tester")
    with store.session() as session:
        return list(session.scalars(sa.select(Event).order_by(Event.sequence)))


def test_events_are_chained_by_their_hashes(store: Records) -> None:
    events = chain(store)
    assert [e.sequence for e in events] == [1, 2, 3]
    assert [e.previous_hash for e in events] == [GENESIS, events[0].hash, events[1].hash]
    first = events[0]
    # The first event's hash worked from its fields as read back (so the moment survived the trip to the
    # microsecond and in UTC): SHA-256 of the parts, each followed by the unit separator.
    assert first.details == '{"amount":"400.00","month":4}'
    assert first.content_hash == hashlib.sha256(first.details.encode() + b"\x1f").hexdigest()
    parts = [GENESIS, first.at.isoformat(), "tester", "invoice", "ACUTE-2025 2025-04", first.details, first.content_hash]
    assert first.hash == hashlib.sha256(b"".join(p.encode() + b"\x1f" for p in parts)).hexdigest()
    with store.session() as session:
        assert broken_links(session) == []


def test_an_event_changed_with_sql_is_found(store: Records) -> None:
    chain(store)
    with store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE events SET details = :d WHERE sequence = 2"), {"d": '{"amount":"999.00","month":5}'})
    with store.session() as session:
        assert broken_links(session) == [(2, "was changed after it was written")]


def test_an_event_deleted_from_the_middle_is_found(store: Records) -> None:
    chain(store)
    with store.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM events WHERE sequence = 2"))
    with store.session() as session:
        assert broken_links(session) == [(3, "does not follow the event before it")]


def test_two_commands_appending_at_once_on_a_server_still_make_one_chain(tmp_path: Path) -> None:
    """The first command's transaction stays open after its event is written; the second
    must chain to it, not to the event before: it waits for the first to end. (SQLite lets
    one writer in at a time, so the race is a server's.)"""
    with records_url_for("postgresql", tmp_path) as url:
        store = Records(url)
        try:
            appended_at_once(store)
        finally:
            store.close()


def appended_at_once(store: Records) -> None:
    """One event, then two commands appending while the first's transaction is still open."""
    chain(store, 1)
    written = threading.Event()

    def first() -> None:
        with store.session() as session:
            record_events(session, [("invoice", "first", {}, b"")], who="tester")
            written.set()
            time.sleep(0.5)

    thread = threading.Thread(target=first)
    thread.start()
    assert written.wait(10)
    with store.session() as session:
        record_events(session, [("invoice", "second", {}, b"")], who="tester")
    thread.join()
    with store.session() as session:
        assert [e.subject for e in session.scalars(sa.select(Event).order_by(Event.sequence))] == ["ACUTE-2025 2025-04", "first", "second"]
        assert broken_links(session) == []


# (d) The example's monthly cycle, with its records on each backend.

def cli(*args: object) -> str:
    """One command, in this process; it must succeed."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def export(ws: Path, month: str) -> list[dict[str, str]]:
    """The month's statement lines as exported."""
    path = ws / f"lines-{month}.csv"
    cli("export", path, "-w", ws, "--period", month)
    with path.open(encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def run_cycle(ws: Path) -> None:
    """The README's cycle (scripts/cycle_example.py): close April to June, ISP-HEALTHCARE sends May
    again, three of ACUTE-RFH's June spells are challenged and upheld, an invoice £1,180 above;
    the year is paid before the close and after."""
    cli("load", "-w", ws)
    cli("pay", "year", "-w", ws)
    cli("close", "2025-06", "-w", ws)
    cli("load", "--month", "2025-05", ws / "data" / "cycle" / "isp-healthcare-2025-05-resubmission.csv", "-w", ws)
    # A workspace this small has none of the elective spells the example challenges: three day cases instead.
    with duckdb.connect() as con:
        spells = [i for (i,) in con.execute(
            f"""SELECT activity_id FROM read_parquet('{ws / "data" / "activity"}/*.parquet', union_by_name = true)
                WHERE provider = 'ACUTE-RFH' AND pod = 'DC' AND strftime(end_date, '%Y-%m') = '2025-06'
                ORDER BY activity_id LIMIT 3""").fetchall()]
    assert len(spells) == 3
    cli("challenge", "raise", "ACUTE-2025", "2025-06", "--reason", "duplicate", *[a for i in spells for a in ("--activity", i)],
        "--note", "sent twice", "-w", ws)
    cli("challenge", "answer", "CH-0001", "--response", "agreed", "-w", ws)
    cli("challenge", "uphold", "CH-0001", "-w", ws)
    cli("pay", "year", "-w", ws)
    june = sum(D(r["amount"]) for r in export(ws, "2025-06") if r["contract"] == "ISP-2025" and r["payee"] == "ISP-HEALTHCARE")
    cli("invoice", "record", "ISP-2025", "2025-06", june + D("1180.00"), "--reference", "ISP-INV-0625", "-w", ws)
    assert "chain of" in cli("history", "-w", ws, "--verify")


def kept(url: str, ws: Path) -> dict[str, Any]:
    """What the cycle left in the store (all but who and when), and July's adjustments."""
    records = Records(url)
    try:
        with records.session() as session:
            def rows(*columns: Any, order: Any) -> list[tuple]:
                return [tuple(r) for r in session.execute(sa.select(*columns).order_by(*order))]
            found = {
                "closes": rows(Close.month, Close.version, Close.lines, Close.total, Close.content_hash, Close.reopened_at, order=[Close.month, Close.version]),
                # Per close: its month, how many lines it issued and their total, summed here in Decimal.
                "issued": sorted((c.month, len(lines), sum((line.amount for line in lines), D(0)))
                                 for c in session.scalars(sa.select(Close))
                                 for lines in [list(session.scalars(sa.select(IssuedLine).where(IssuedLine.close_id == c.id)))]),
                "submissions": rows(Submission.provider, Submission.month, Submission.version, Submission.rows, Submission.quantity,
                                    Submission.cost, Submission.content_hash, Submission.nil_return,
                                    order=[Submission.provider, Submission.month, Submission.version]),
                "challenges": rows(Challenge.reference, Challenge.contract, Challenge.month, Challenge.state, Challenge.amount,
                                   Challenge.settled_month, Challenge.activity_ids, order=[Challenge.reference]),
                "invoices": rows(Invoice.contract, Invoice.month, Invoice.provider, Invoice.amount, Invoice.reference, order=[Invoice.id]),
                "events": rows(Event.sequence, Event.kind, Event.subject, order=[Event.sequence]),
                "broken": broken_links(session),
            }
    finally:
        records.close()
    found["july adjustments"] = sorted((r["contract"], r["payer"], r["component"], r["adjusts"], r["amount"])
                                       for r in export(ws, "2025-07") if r["adjusts"])
    found["june isp statement"] = sum(D(r["amount"]) for r in export(ws, "2025-06")
                                      if r["contract"] == "ISP-2025" and r["payee"] == "ISP-HEALTHCARE")
    return found


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small example workspace, made once and copied for each backend."""
    ws = tmp_path_factory.mktemp("example") / "ws"
    cli("init", ws, "--rows", 2000)
    return ws


def cycled(example: Path, folder: Path, backend: str) -> Iterator[dict[str, Any]]:
    """The example's cycle run with its records on `backend`, and what it kept."""
    ws = folder / "ws"
    shutil.copytree(example, ws)
    with records_url_for(backend, folder) as url:
        settings = ws / "carecontracts.toml"
        # A top-level key: before the settings file's first [table].
        settings.write_text(f'records = "{url}"\n' + settings.read_text(encoding="utf-8"), encoding="utf-8")
        run_cycle(ws)
        assert not (ws / ".carecontracts" / "records.sqlite").exists()  # the setting was followed
        yield kept(url, ws)


@pytest.fixture(scope="module")
def on_sqlite(example: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The cycle's records on SQLite."""
    yield from cycled(example, tmp_path_factory.mktemp("sqlite"), "sqlite")


@pytest.fixture(scope="module")
def on_postgresql(example: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The cycle's records on PostgreSQL."""
    yield from cycled(example, tmp_path_factory.mktemp("postgresql"), "postgresql")


@pytest.fixture(scope="module", params=RECORDS_BACKENDS)
def cycle(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The cycle's records on each backend."""
    return request.getfixturevalue(f"on_{request.param}")


def test_the_cycle_keeps_what_was_done(cycle: dict[str, Any]) -> None:
    assert [(c[0], c[1]) for c in cycle["closes"]] == [(dt.date(2025, m, 1), 1) for m in (4, 5, 6)]
    assert all(c[5] is None for c in cycle["closes"])  # none reopened
    assert [(month, lines) for month, lines, _ in cycle["issued"]] == [(c[0], c[2]) for c in cycle["closes"]]
    assert [total for _, _, total in cycle["issued"]] == [c[3] for c in cycle["closes"]]
    isp_may = [s for s in cycle["submissions"] if s[:2] == ("ISP-HEALTHCARE", dt.date(2025, 5, 1))]
    assert [s[2] for s in isp_may] == [1, 2]
    ((reference, contract, month, state, _, settled, _),) = cycle["challenges"]
    assert (reference, contract, month, state, settled) == ("CH-0001", "ACUTE-2025", dt.date(2025, 6, 1), "upheld", dt.date(2025, 7, 1))
    ((_, _, provider, amount, invoice),) = cycle["invoices"]
    assert (provider, invoice) == ("ISP-HEALTHCARE", "ISP-INV-0625")
    assert amount - cycle["june isp statement"] == D("1180.00")
    kinds = [kind for _, kind, _ in cycle["events"]]
    # One event per submission; three closes (April to June), one invoice, and the challenge raised, answered, upheld.
    assert kinds.count("submission") + kinds.count("load") == len(cycle["submissions"])
    assert kinds.count("close") == 3 and kinds.count("invoice") == 1
    assert len(kinds) == len(cycle["submissions"]) + 3 + 1 + 3
    assert [seq for seq, _, _ in cycle["events"]] == list(range(1, len(kinds) + 1))
    assert cycle["broken"] == []
    assert {a[0] for a in cycle["july adjustments"]} >= {"ACUTE-2025", "ISP-2025"}


def test_postgresql_keeps_exactly_what_sqlite_keeps(on_sqlite: dict[str, Any], on_postgresql: dict[str, Any]) -> None:
    assert on_postgresql.keys() == on_sqlite.keys()
    for key in on_sqlite:
        assert on_postgresql[key] == on_sqlite[key], key


# A records setting that cannot be used is a plain problem, never a traceback.

def settings_naming(tmp_path: Path, url: str) -> Path:
    """A workspace whose records are at `url`."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "carecontracts.toml").write_text(f'name = "records"\nrecords = "{url}"\n', encoding="utf-8")
    return ws


def refused(ws: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A command that opens the store, which must end in problems (exit 2), not a traceback.
    The problems console is made wide enough that no cell wraps, whatever COLUMNS other test
    modules set before it was made."""
    monkeypatch.setattr(cli_module.err, "width", 1000)
    result = runner.invoke(app, ["history", "-w", str(ws)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and "Nothing was changed." in result.output
    return " ".join(result.output.split())


def test_a_server_that_is_not_there_is_said_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = refused(settings_naming(tmp_path, f"postgresql+psycopg://clerk:secret@/records?host={tmp_path}/no-server"), monkeypatch)
    assert f"cannot connect to the records store's server at {tmp_path}/no-server/.s.PGSQL.5432: No such file or directory" in shown
    assert "secret" not in shown


def test_a_database_the_server_does_not_have_is_said_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with postgres_database() as url:
        missing = sa.make_url(url).set(database="no_such_records").render_as_string(hide_password=False)
        shown = refused(settings_naming(tmp_path, missing), monkeypatch)
    assert 'cannot connect to the records store\'s server at' in shown and 'database "no_such_records" does not exist' in shown


def test_a_url_without_its_driver_is_a_problem_with_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = refused(settings_naming(tmp_path, "mysql://clerk:secret@db.example/records"), monkeypatch)
    assert "carecontracts.toml" in shown and "cannot open the records store: its database driver is not installed" in shown
    assert "secret" not in shown
