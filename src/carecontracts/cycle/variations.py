"""Contract variations: a contract file that differs from the one in force when the latest
month closed is recorded once as a variation event, with the lines that changed."""

from __future__ import annotations

import difflib
import json

import sqlalchemy as sa
from sqlalchemy.orm import Session

from carecontracts.cycle.close import current_closes
from carecontracts.language import Contract
from carecontracts.records import record_event
from carecontracts.records.schema import Event, SourceText
from carecontracts.workspace import Workspace


def changed_lines(old: str, new: str) -> str:
    """The new file's lines that differ from the old, as `36-38, 52` (empty if none)."""
    spans = []
    matcher = difflib.SequenceMatcher(a=old.splitlines(), b=new.splitlines(), autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            spans.append(f"{j1 + 1}" if j2 - j1 == 1 else f"{j1 + 1}-{j2}")
        elif tag == "delete":
            spans.append(f"{j1 + 1} (removed)" if j1 < len(new.splitlines()) else "end (removed)")
    return ", ".join(spans)


def record_variations(session: Session, workspace: Workspace, contracts: list[Contract], current: dict[str, str]) -> list[Event]:
    """A variation event for each contract file changed since the latest close (once per
    version of the file), keeping the new text so later adjustments can point into it.
    `current` is every source file's hash now (`close.sources`)."""
    closes = current_closes(session)
    if not closes:
        return []
    then = json.loads(closes[max(closes)].sources)
    recorded = {(e["file"], e["to"]) for e in (json.loads(d) for d in session.scalars(sa.select(Event.details).where(Event.kind == "variation")))}
    ids: dict[str, list[str]] = {}
    for contract in contracts:
        ids.setdefault(contract.source, []).extend([contract.id, *(s.id for s in contract.subcontracts)])
    made = []
    for path, sha in sorted(current.items()):
        if not path.startswith("contracts/") or then.get(path) in (None, sha) or (path, sha) in recorded:
            continue
        text = (workspace.root / path).read_text(encoding="utf-8")
        if session.get(SourceText, sha) is None:
            session.add(SourceText(content_hash=sha, text=text))
        kept = session.get(SourceText, then[path])
        lines = changed_lines(kept.text, text) if kept else ""
        made.append(record_event(session, "variation", path, {
            "file": path, "contracts": ids.get(path, []), "from": then[path], "to": sha, "lines": lines,
            "since_close": f"{max(closes):%Y-%m}"}, text))
    return made
