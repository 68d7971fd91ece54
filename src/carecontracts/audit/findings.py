"""Findings: what an audit found, for whom, in numbers and in plain words."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Severity(str, Enum):
    """How much a finding matters: `error` data are wrong; `warning` figures should not be
    believed without an explanation; `cannot test` a check could not be made on these data
    (the reason is given; it is not evidence either way); `info` a check ran and found
    nothing to doubt."""

    ERROR = "error"
    WARNING = "warning"
    UNTESTED = "cannot test"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "cannot test": 2, "info": 3}[self.value]


@dataclass(frozen=True)
class Finding:
    """One thing found (or checked and found sound) about one subject, usually a provider."""

    severity: Severity
    subject: str
    check: str  # bunching, discontinuity, spc, reported, or a manifest check id
    title: str
    sentence: str
    numbers: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def doubtful(self) -> bool:
        """An error or warning: the figures need explaining before they are believed."""
        return self.severity in (Severity.ERROR, Severity.WARNING)


def ordered(findings: list[Finding]) -> list[Finding]:
    """Most serious first, then by subject and check."""
    return sorted(findings, key=lambda f: (f.severity.rank, f.subject, f.check))
