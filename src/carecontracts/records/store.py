"""The records store: SQLite in .carecontracts/ by default (any SQLAlchemy URL in the
workspace's `records` setting), brought up to date by its migrations whenever it is opened."""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from carecontracts.problems import Problem, ProblemsError
from carecontracts.records.schema import Event

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_FILE = "records.sqlite"
GENESIS = "0" * 64
# PostgreSQL advisory lock keys (any 64-bit numbers other applications are unlikely to use).
MIGRATION_LOCK = 0x63617265_00000001
EVENTS_LOCK = 0x63617265_00000002
RECORDS_URL = ("a SQLAlchemy URL: sqlite:////path/to/records.sqlite, or postgresql+psycopg://user@host/database "
               "for a server")


def actor() -> str:
    """Who is acting: CARECONTRACTS_USER, else the operating system's user name."""
    return os.environ.get("CARECONTRACTS_USER") or getpass.getuser()


def now() -> dt.datetime:
    """The current moment, timezone-aware in UTC, as every record keeps it."""
    return dt.datetime.now(dt.timezone.utc)


def digest(*parts: str | bytes) -> str:
    """SHA-256 of the parts, each followed by a separator so that parts cannot run together."""
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        hashed.update(b"\x1f")
    return hashed.hexdigest()


def canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces, so the same content always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def _event_hash(event: Event) -> str:
    """The hash that chains an event: its content and the hash of the event before it."""
    return digest(event.previous_hash, event.at.isoformat(), event.actor, event.kind, event.subject, event.details, event.content_hash)


def _config(connection: sa.Connection) -> Config:
    """Alembic's configuration, running the migrations on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


class Records:
    """The store, opened and migrated; sessions are short transactions."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _engine(url)
        self._migrate()

    @classmethod
    def at(cls, state_dir: Path, url: str | None = None) -> "Records":
        """The workspace's store: `url` if set, else records.sqlite in the state folder."""
        if url is None:
            state_dir.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{state_dir / DEFAULT_FILE}"
        return cls(url)

    @staticmethod
    def kept(state_dir: Path, url: str | None = None) -> bool:
        """Whether the workspace has a store to read: one set by URL, or the default file made."""
        return url is not None or (state_dir / DEFAULT_FILE).is_file()

    def _migrate(self) -> None:
        """Bring the store to the latest migration, once however many commands open it at once."""
        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        with self.engine.begin() as connection:
            _serialise(connection, MIGRATION_LOCK)
            if MigrationContext.configure(connection).get_current_revision() != head:
                command.upgrade(_config(connection), "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on an error."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def close(self) -> None:
        """Close the store's pooled connections."""
        self.engine.dispose()


def _engine(url: str) -> sa.Engine:
    """An engine for the store's URL; one that cannot be parsed, or whose database driver is
    not installed, is a problem with the `records` setting."""
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        # A command opens the store for each short transaction and never closes it: on a
        # server, pooled connections would stay open (and count against its limit) until
        # the process ends, so each transaction connects and hangs up.
        return sa.create_engine(url, poolclass=sa.pool.NullPool)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
        why = "not a database URL" if isinstance(error, sa.exc.ArgumentError) else f"its database driver is not installed ({error})"
        raise ProblemsError([Problem("carecontracts.toml", f"cannot open the records store: {why}", field="records",
                                     value=_shown(url), expected=RECORDS_URL)]) from None


def _shown(url: str) -> str | None:
    """The URL as it may be shown: any password hidden, nothing if it cannot be parsed."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return None


def _serialise(connection: sa.Connection, key: int) -> None:
    """On PostgreSQL, wait for any other transaction holding `key` and hold it until this one
    ends; SQLite serialises writers itself."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Enforce foreign keys and wait for, rather than fail on, another command's write."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()


def record_event(session: Session, kind: str, subject: str, details: dict[str, Any], content: str | bytes = b"", who: str | None = None) -> Event:
    """Append an event, chained to the latest one by hash, in the caller's transaction."""
    return record_events(session, [(kind, subject, details, content)], who)[0]


def record_events(session: Session, items: list[tuple[str, str, dict[str, Any], str | bytes]], who: str | None = None) -> list[Event]:
    """Append events (kind, subject, details, content) in order, each chained by hash to the
    one before, in the caller's transaction: the latest hash is read once, however many.
    On a server two commands appending at once would both chain to the same event, so the
    second waits for the first's transaction to end."""
    _serialise(session.connection(), EVENTS_LOCK)
    last = session.execute(sa.select(Event.hash).order_by(Event.sequence.desc()).limit(1)).scalar() or GENESIS
    by = who or actor()
    events = []
    for kind, subject, details, content in items:
        text = canonical(details)
        event = Event(at=now(), actor=by, kind=kind, subject=subject, details=text,
                      content_hash=digest(content) if content else digest(text), previous_hash=last, hash="")
        event.hash = last = _event_hash(event)
        events.append(event)
    session.add_all(events)
    session.flush()
    return events


def broken_links(session: Session) -> list[tuple[int, str]]:
    """Events whose hash or link to the one before does not hold: (sequence, what is wrong)."""
    wrong: list[tuple[int, str]] = []
    previous = GENESIS
    for event in session.scalars(sa.select(Event).order_by(Event.sequence)):
        if event.previous_hash != previous:
            wrong.append((event.sequence, "does not follow the event before it"))
        if _event_hash(event) != event.hash:
            wrong.append((event.sequence, "was changed after it was written"))
        previous = event.hash
    return wrong
