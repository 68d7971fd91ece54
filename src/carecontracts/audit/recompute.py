"""Reported against recomputed: a published share (% within 18 weeks, % waiting no more
than 3 weeks) set beside the same share recomputed from patient-level records, with the
gaps beyond a tolerance flagged."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carecontracts.audit.findings import Finding, Severity
from carecontracts.problems import Problem, ProblemsError, raise_if_any

REPORTED_COLUMNS = ("provider", "month", "measure", "percent")
DEFAULT_TOLERANCE = 0.5  # percentage points: published figures are rounded to one place


@dataclass(frozen=True)
class WaitMeasure:
    """A share of completed waits within a limit, by provider and month of treatment."""

    id: str
    title: str
    limit_days: int


MEASURES: dict[str, WaitMeasure] = {
    m.id: m
    for m in (
        WaitMeasure("rtt_18_weeks", "% treated within 18 weeks of referral", 126),
        WaitMeasure("within_3_weeks", "% treated within 3 weeks of referral", 21),
    )
}


@dataclass(frozen=True)
class Share:
    """Waits within the limit out of all completed waits, for one provider and month."""

    provider: str
    month: dt.date
    within: int
    total: int

    @property
    def percent(self) -> float:
        return 100 * self.within / self.total if self.total else math.nan


@dataclass(frozen=True)
class Reported:
    """One published figure."""

    provider: str
    month: dt.date
    measure: str
    percent: float
    row: int


@dataclass(frozen=True)
class Comparison:
    """A reported figure beside its recomputed value."""

    reported: Reported
    recomputed: Share | None
    tolerance: float

    @property
    def gap(self) -> float:
        """Reported − recomputed, percentage points."""
        return self.reported.percent - self.recomputed.percent if self.recomputed else math.nan

    @property
    def within_tolerance(self) -> bool:
        return self.recomputed is not None and abs(self.gap) <= self.tolerance


def recompute_shares(con: Any, table: str, measure: WaitMeasure) -> list[Share]:
    """The measure by provider and month of treatment from records with referral and start dates."""
    rows = con.execute(
        f"""SELECT provider, CAST(date_trunc('month', start_date) AS DATE) AS month,
                   count(*) FILTER (WHERE datediff('day', referral_date, start_date) <= {int(measure.limit_days)}), count(*)
            FROM {table} WHERE referral_date IS NOT NULL AND start_date IS NOT NULL AND start_date >= referral_date
            GROUP BY ALL ORDER BY provider, month"""
    ).fetchall()
    return [Share(p, m, int(w), int(n)) for p, m, w, n in rows]


def read_reported(path: Path, con: Any, source: str | None = None) -> list[Reported]:
    """Published figures from a CSV of provider, month (2025-11), measure, percent; every bad row reported."""
    name = source or str(path)
    text = str(path).replace("'", "''")
    relation = con.execute(f"SELECT * FROM read_csv('{text}', all_varchar = true, header = true)")
    header = [d[0] for d in relation.description]
    missing = [c for c in REPORTED_COLUMNS if c not in header]
    if missing:
        raise ProblemsError([Problem(name, f"missing column {c}", field=c, expected="columns " + ", ".join(REPORTED_COLUMNS)) for c in missing])
    problems: list[Problem] = []
    figures: list[Reported] = []
    for number, row in enumerate(relation.fetchall(), start=1):
        record = dict(zip(header, row))
        provider, month, measure, percent = (record[c] for c in REPORTED_COLUMNS)
        if not provider:
            problems.append(Problem(name, "missing provider", row=number, field="provider", expected="a provider code"))
        try:
            when = dt.date.fromisoformat(f"{(month or '').strip()}-01") if len((month or "").strip()) == 7 else dt.date.fromisoformat((month or "").strip())
        except ValueError:
            problems.append(Problem(name, f"'{month}' is not a month", row=number, field="month", value=month, expected="a month like 2025-11"))
            continue
        if measure not in MEASURES:
            problems.append(Problem(name, f"unknown measure '{measure}'", row=number, field="measure", value=measure, expected="one of " + ", ".join(MEASURES)))
        try:
            value = float(percent or "")
        except ValueError:
            problems.append(Problem(name, f"'{percent}' is not a number", row=number, field="percent", value=percent, expected="a percentage between 0 and 100"))
            continue
        if not 0 <= value <= 100:
            problems.append(Problem(name, f"{value:g} is not a percentage", row=number, field="percent", value=value, expected="a percentage between 0 and 100"))
        figures.append(Reported(provider or "", when.replace(day=1), measure or "", value, number))
    raise_if_any(problems)
    return figures


def compare(reported: list[Reported], shares: dict[str, list[Share]], tolerance: float = DEFAULT_TOLERANCE) -> list[Comparison]:
    """Each reported figure beside the share recomputed for its measure, provider and month."""
    index = {(measure, s.provider, s.month): s for measure, rows in shares.items() for s in rows}
    return [Comparison(r, index.get((r.measure, r.provider, r.month)), tolerance) for r in reported]


def findings(comparisons: list[Comparison]) -> list[Finding]:
    """One finding per provider and measure: the months whose reported figure is off."""
    grouped: dict[tuple[str, str], list[Comparison]] = {}
    for c in comparisons:
        grouped.setdefault((c.reported.provider, c.reported.measure), []).append(c)
    out: list[Finding] = []
    for (provider, measure), items in sorted(grouped.items()):
        title = MEASURES[measure].title
        unmatched = [c for c in items if c.recomputed is None]
        off = [c for c in items if c.recomputed is not None and not c.within_tolerance]
        tolerance = items[0].tolerance
        numbers: dict[str, float | int | str] = {"months": len(items), "off": len(off), "unmatched": len(unmatched)}
        if off:
            worst = max(off, key=lambda c: abs(c.gap))
            months = ", ".join(c.reported.month.strftime("%b %Y") for c in sorted(off, key=lambda c: c.reported.month))
            sentence = (f"{len(off)} of {len(items)} months reported {title} more than {tolerance:g} points away from the records "
                        f"({months}); the largest gap is {worst.gap:+.1f} points in {worst.reported.month:%b %Y} "
                        f"({worst.reported.percent:.1f}% reported, {worst.recomputed.percent:.1f}% in the records)." if worst.recomputed else "")
            numbers["largest_gap"] = round(worst.gap, 2)
            out.append(Finding(Severity.WARNING, provider, "reported", f"reported {measure} differs from the records", sentence, numbers))
        if unmatched:
            months = ", ".join(c.reported.month.strftime("%b %Y") for c in unmatched)
            out.append(Finding(Severity.WARNING, provider, "reported", f"reported {measure} has no records behind it",
                               f"{len(unmatched)} reported months have no patient-level records to recompute them from ({months}).", numbers))
        if not off and not unmatched:
            gaps = [abs(c.gap) for c in items]
            out.append(Finding(Severity.INFO, provider, "reported", f"reported {measure} matches the records",
                               f"all {len(items)} reported months of {title} are within {tolerance:g} points of the records (largest gap {max(gaps):.2f}).", numbers))
    return out
