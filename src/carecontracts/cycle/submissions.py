"""Submissions: each load of activity is recorded per provider and month (who, when, which
files, rows, totals, a hash of the content); the earlier version stays on record."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from carecontracts.data.load import LoadReport, Progress, ProviderMonth, load_month, load_workspace
from carecontracts.problems import Problem, ProblemsError
from carecontracts.records import Records, actor
from carecontracts.records.schema import Submission
from carecontracts.records.store import digest, now, record_events
from carecontracts.workspace import Workspace


def open_records(workspace: Workspace) -> Records:
    """The workspace's records store (created and migrated on first use)."""
    return Records.at(workspace.state_dir, workspace.settings.records)


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    hashed = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            hashed.update(block)
    return hashed.hexdigest()


@dataclass(frozen=True)
class Recorded:
    """A load and the submissions it recorded (a provider-month whose activity did not change
    records none)."""

    report: LoadReport
    submissions: list[Submission]


def submit_month(workspace: Workspace, month: dt.date, files: list[Path] | None = None, providers: list[str] | None = None,
                 progress: Progress | None = None, who: str | None = None) -> Recorded:
    """Load a month's files as the named providers' submission and record it."""
    report = load_month(workspace, month, files, progress, providers)
    return Recorded(report, _record(workspace, report.provider_months, "submission", who))


def submit_upload(workspace: Workspace, provider: str, month: dt.date, name: str, content: bytes, who: str | None = None) -> Recorded:
    """A provider's month sent through the service: the file is kept as sent, under
    .carecontracts/submissions/PROVIDER/MONTH/, and loaded as that provider's submission
    (a row of another provider is refused). Refused, it is not kept."""
    stem = Path(name).name or "submission.csv"
    if Path(stem).suffix.lower() not in (".csv", ".parquet"):
        raise ProblemsError([Problem(stem, "not an activity file", value=stem, expected="a .csv or .parquet file of the month's activity rows")])
    folder = workspace.state_dir / "submissions" / provider / f"{month:%Y-%m}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{now():%Y%m%dT%H%M%S%f}-{stem}"
    path.write_bytes(content)
    try:
        recorded = submit_month(workspace, month, [path], [provider], who=who)
    except ProblemsError as error:
        path.unlink(missing_ok=True)
        kept = workspace.relative(path)
        raise ProblemsError([replace(p, source=stem) if p.source == kept else p for p in error.problems]) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return recorded


def load_all(workspace: Workspace, progress: Progress | None = None) -> Recorded:
    """Load data/ whole; each provider-month whose activity changed is recorded as submitted,
    and one that no longer has any as a nil return."""
    report = load_workspace(workspace, progress)
    with open_records(workspace).session() as session:
        latest = _latest(session)
    now_held = {(pm.provider, pm.month): pm for pm in report.provider_months}
    gone = [ProviderMonth.nil(p, m) for (p, m), s in latest.items() if s.rows and (p, m) not in now_held]
    changed = [pm for pm in report.provider_months if (pm.provider, pm.month) not in latest or latest[(pm.provider, pm.month)].fingerprint != pm.fingerprint]
    return Recorded(report, _record(workspace, changed + gone, "load"))


def _latest(session) -> dict[tuple[str, dt.date], Submission]:
    """The latest submission of each provider-month."""
    newest = sa.select(Submission.provider, Submission.month, sa.func.max(Submission.version).label("version")).group_by(Submission.provider, Submission.month).subquery()
    rows = session.scalars(sa.select(Submission).join(newest, sa.and_(Submission.provider == newest.c.provider, Submission.month == newest.c.month,
                                                                     Submission.version == newest.c.version)))
    return {(s.provider, s.month): s for s in rows}


def _record(workspace: Workspace, months: list[ProviderMonth], how: str, who: str | None = None) -> list[Submission]:
    """One submission and one event per provider-month, in one transaction."""
    hashes: dict[str, str] = {}

    def hash_of(name: str) -> str:
        if name not in hashes:
            path = workspace.root / name
            hashes[name] = file_hash(path) if path.is_file() else digest(name)
        return hashes[name]

    who = who or actor()
    recorded = []
    with open_records(workspace).session() as session:
        latest = _latest(session)
        for pm in months:
            previous = latest.get((pm.provider, pm.month))
            content = digest(*(f"{name}:{hash_of(name)}" for name in pm.files)) if pm.files else digest("")
            recorded.append(Submission(
                provider=pm.provider, month=pm.month, version=(previous.version + 1) if previous else 1, files=", ".join(pm.files),
                rows=pm.rows, quantity=pm.quantity, cost=pm.cost, content_hash=content, fingerprint=pm.fingerprint,
                nil_return=pm.rows == 0, submitted_at=now(), submitted_by=who,
            ))
        session.add_all(recorded)
        session.flush()  # the submissions' ids, which their events name
        events: list[tuple[str, str, dict[str, Any], str | bytes]] = []
        for pm, submission in zip(months, recorded):
            previous = latest.get((pm.provider, pm.month))
            events.append(("submission", f"{pm.provider} {pm.month:%Y-%m}", {
                "submission": submission.id, "provider": pm.provider, "month": f"{pm.month:%Y-%m}", "version": submission.version, "how": how,
                "files": list(pm.files), "rows": pm.rows, "quantity": str(pm.quantity), "cost": None if pm.cost is None else str(pm.cost),
                "replaces": previous.id if previous else None, "nil_return": pm.rows == 0,
            }, submission.content_hash))
        record_events(session, events, who)
    return recorded


def submissions(workspace: Workspace, month: dt.date | None = None, provider: str | None = None) -> list[Submission]:
    """Every submission on record, newest version last, optionally for one month or provider."""
    query = sa.select(Submission).order_by(Submission.month, Submission.provider, Submission.version)
    if month is not None:
        query = query.where(Submission.month == month)
    if provider is not None:
        query = query.where(Submission.provider == provider)
    with open_records(workspace).session() as session:
        return list(session.scalars(query))
