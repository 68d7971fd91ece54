"""The records store's tables: what was submitted, closed, issued, invoiced and challenged,
and the append-only event log. Small transactional data, apart from the analytical warehouse."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Money(TypeDecorator):
    """An exact amount kept as its decimal text: SQLite has no exact decimal type and would
    round-trip NUMERIC through a binary float."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect) -> str | None:  # type: ignore[override]
        return None if value is None else format(Decimal(value), "f")

    def process_result_value(self, value: str | None, dialect) -> Decimal | None:  # type: ignore[override]
        return None if value is None else Decimal(value)


class UtcTime(TypeDecorator):
    """A moment in UTC, timezone-aware in Python whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:  # type: ignore[override]
        return None if value is None else value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:  # type: ignore[override]
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class Event(Base):
    """One thing that happened, chained to the one before by its hash so that a change to
    any earlier event is detected."""

    __tablename__ = "events"
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcTime)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(String(400))
    details: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Submission(Base):
    """A provider's activity for one month, as loaded: the latest of a provider-month is the
    one paid, earlier ones are kept as they were."""

    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(100))
    month: Mapped[dt.date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    files: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[Decimal] = mapped_column(Money)
    cost: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(40))
    nil_return: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_at: Mapped[dt.datetime] = mapped_column(UtcTime)
    submitted_by: Mapped[str] = mapped_column(String(200))
    __table_args__ = (UniqueConstraint("provider", "month", "version"), Index("ix_submissions_provider_month", "provider", "month"))


class Close(Base):
    """One month closed: its lines as issued, until a recorded reopening."""

    __tablename__ = "closes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    month: Mapped[dt.date] = mapped_column(Date, index=True)
    version: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[dt.datetime] = mapped_column(UtcTime)
    closed_by: Mapped[str] = mapped_column(String(200))
    lines: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal] = mapped_column(Money)
    content_hash: Mapped[str] = mapped_column(String(64))
    sources: Mapped[str] = mapped_column(Text)
    reopened_at: Mapped[dt.datetime | None] = mapped_column(UtcTime, nullable=True)
    reopened_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reopen_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (UniqueConstraint("month", "version"),)


class IssuedLine(Base):
    """A statement line exactly as issued when its month closed."""

    __tablename__ = "issued_lines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    close_id: Mapped[int] = mapped_column(ForeignKey("closes.id"), index=True)
    scenario: Mapped[str] = mapped_column(String(40))
    contract: Mapped[str] = mapped_column(String(100))
    component: Mapped[str] = mapped_column(String(200))
    payer: Mapped[str] = mapped_column(String(100))
    payee: Mapped[str] = mapped_column(String(100))
    month: Mapped[dt.date] = mapped_column(Date)
    quantity: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    rate: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    basis: Mapped[str | None] = mapped_column(Text, nullable=True)
    service: Mapped[str | None] = mapped_column(String(100), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    adjusts: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class SourceText(Base):
    """A contract file's text as it was when a month closed, kept once per content hash, so
    that a later variation can be located by line."""

    __tablename__ = "source_texts"
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class Invoice(Base):
    """What a provider invoiced for one contract and month; a later invoice replaces it."""

    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contract: Mapped[str] = mapped_column(String(100), index=True)
    month: Mapped[dt.date] = mapped_column(Date)
    provider: Mapped[str] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Money)
    reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcTime)
    recorded_by: Mapped[str] = mapped_column(String(200))


class Challenge(Base):
    """A commissioner's challenge to activity rows or a statement line, and its answer."""

    __tablename__ = "challenges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    contract: Mapped[str] = mapped_column(String(100), index=True)
    month: Mapped[dt.date] = mapped_column(Date)
    component: Mapped[str | None] = mapped_column(String(200), nullable=True)
    payer: Mapped[str | None] = mapped_column(String(100), nullable=True)
    payee: Mapped[str | None] = mapped_column(String(100), nullable=True)
    activity_ids: Mapped[str] = mapped_column(Text, default="[]")
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    reason: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[str] = mapped_column(String(20))
    raised_at: Mapped[dt.datetime] = mapped_column(UtcTime)
    raised_by: Mapped[str] = mapped_column(String(200))
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UtcTime, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    settled_month: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class User(Base):
    """Someone who uses the service, acting for one party in one role."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    party: Mapped[str | None] = mapped_column(String(100), nullable=True)
    role: Mapped[str] = mapped_column(String(40))
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcTime, nullable=True)
    sessions_from: Mapped[dt.datetime | None] = mapped_column(UtcTime, nullable=True)  # page sessions begun earlier are ended
    created_at: Mapped[dt.datetime] = mapped_column(UtcTime)
    created_by: Mapped[str] = mapped_column(String(200))


class Token(Base):
    """An API token, kept only as its SHA-256: the token itself is shown once, when issued."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UtcTime)
    issued_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Notice(Base):
    """A contract-management lever in motion on one contract: a contract performance notice
    (GC9), an activity query notice, an indicative activity plan or an early warning (SC29).
    Its state is where its steps have brought it; a withholding is priced from it."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    lever: Mapped[str] = mapped_column(String(20))
    contract: Mapped[str] = mapped_column(String(100), index=True)
    about: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20))
    opened_on: Mapped[dt.date] = mapped_column(Date)
    last_on: Mapped[dt.date] = mapped_column(Date)  # the day of the latest step: time limits run from it
    milestone: Mapped[str | None] = mapped_column(Text, nullable=True)
    milestone_due: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    percent: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    withheld_from: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    retain_after_months: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remedied_in: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class NoticeStep(Base):
    """One step of a notice, on the day it happened, by whom."""

    __tablename__ = "notice_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    step: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20))
    on: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcTime)
    recorded_by: Mapped[str] = mapped_column(String(200))
