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
from sqlalchemy.orm import Session

from carecontracts.records.schema import Event

MIGRATIONS = Path(__file__).parent / "migrations"
GENESIS = "0" * 64


def actor() -> str:
    """Who is acting: CARECONTRACTS_USER, else the operating system's user name."""
    return os.environ.get("CARECONTRACTS_USER") or getpass.getuser()


def now() -> dt.datetime:
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
    return digest(event.previous_hash, event.at.isoformat(), event.actor, event.kind, event.subject, event.details, event.content_hash)


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


class Records:
    """The store, opened and migrated; sessions are short transactions."""

    def __init__(self, url: str):
        self.url = url
        self.engine = sa.create_engine(url)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._migrate()

    @classmethod
    def at(cls, state_dir: Path, url: str | None = None) -> "Records":
        """The workspace's store: `url` if set, else records.sqlite in the state folder."""
        if url is None:
            state_dir.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{state_dir / 'records.sqlite'}"
        return cls(url)

    def _migrate(self) -> None:
        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        with self.engine.begin() as connection:
            if MigrationContext.configure(connection).get_current_revision() != head:
                command.upgrade(_config(connection), "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on an error."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()


def record_event(session: Session, kind: str, subject: str, details: dict[str, Any], content: str | bytes = b"", who: str | None = None) -> Event:
    """Append an event, chained to the latest one by hash, in the caller's transaction."""
    return record_events(session, [(kind, subject, details, content)], who)[0]


def record_events(session: Session, items: list[tuple[str, str, dict[str, Any], str | bytes]], who: str | None = None) -> list[Event]:
    """Append events (kind, subject, details, content) in order, each chained by hash to the
    one before, in the caller's transaction: the latest hash is read once, however many."""
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
