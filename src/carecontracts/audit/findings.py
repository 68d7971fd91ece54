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


def grouped(findings: list[Finding]) -> list[tuple[Finding, list[str]]]:
    """Findings that say the same thing about several subjects, once with the subjects listed
    (120 providers each 'too few to test' read as one line, not 120)."""
    groups: dict[tuple[Severity, str, str, str], list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.severity, finding.check, finding.title, finding.sentence), []).append(finding)
    return [(items[0], [f.subject for f in items]) for items in groups.values()]


def subjects_text(subjects: list[str], shown: int = 12) -> str:
    """`Z01, Z02 and Z03`, or the first few and how many more."""
    if len(subjects) == 1:
        return subjects[0]
    if len(subjects) <= shown:
        return ", ".join(subjects[:-1]) + " and " + subjects[-1]
    return ", ".join(subjects[:shown]) + f" and {len(subjects) - shown} more ({len(subjects)} in all)"
