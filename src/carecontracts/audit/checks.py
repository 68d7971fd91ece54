"""Logical checks on patient-level records, kept as a manifest with severities.

Each check is data: an id, a severity, the columns it needs, a SQL condition that is true
for a bad row (window functions allowed, so duplicates are one line), and a message. The
runner applies every check whose columns are present to a table of records with the
canonical columns `record_id, provider, referral_date, start_date, end_date, value, age,
pod` (any may be missing) plus `_row` (row in the file) when the records come from a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carecontracts.audit.findings import Finding, Severity

EXAMPLES = 5
ELECTIVE_PODS = ("EL", "DC", "OPFA", "OPPROC")


@dataclass(frozen=True)
class Check:
    """One logical check: true `bad_when` marks a bad row."""

    id: str
    severity: Severity
    needs: tuple[str, ...]
    bad_when: str
    field: str
    message: str  # what is wrong with each bad row, in words
    expected: str


CHECKS: tuple[Check, ...] = (
    Check("end-before-start", Severity.ERROR, ("start_date", "end_date"), "end_date < start_date", "end_date",
          "end before start", "an end date on or after the start date"),
    Check("treatment-before-referral", Severity.ERROR, ("referral_date", "start_date"), "start_date < referral_date", "referral_date",
          "treatment starts before the referral", "a referral date on or before the start date"),
    Check("negative-wait", Severity.ERROR, ("value",), "value < 0", "value",
          "negative wait", "a wait of zero or more"),
    Check("duplicate-identifier", Severity.ERROR, ("record_id",), "count(*) OVER (PARTITION BY record_id) > 1", "record_id",
          "identifier used by more than one row", "each identifier once"),
    Check("value-out-of-range", Severity.WARNING, ("value",), "value < {low} OR value > {high}", "value",
          "value out of the plausible range", "a value between {low:g} and {high:g}"),
    Check("wait-over-three-years", Severity.WARNING, ("referral_date", "start_date"), "datediff('day', referral_date, start_date) > 1096", "referral_date",
          "referral more than three years before treatment", "a referral within three years of treatment (check the date)"),
    Check("age-out-of-range", Severity.ERROR, ("age",), "age < 0 OR age > 130", "age",
          "age out of range", "an age between 0 and 130"),
    Check("elective-without-referral", Severity.WARNING, ("referral_date", "pod"),
          "referral_date IS NULL AND pod IN (" + ", ".join(f"'{p}'" for p in ELECTIVE_PODS) + ")", "referral_date",
          "planned activity with no referral date, so its wait cannot be measured", "a referral date on elective and first outpatient activity"),
)


@dataclass(frozen=True)
class CheckResult:
    """How many rows a check found bad, for one subject, with a few examples."""

    check: Check
    subject: str
    bad: int
    examples: list[str]
    parameters: dict[str, float]

    def finding(self) -> Finding:
        """The result as a finding (an `info` one when no row is bad)."""
        expected = self.check.expected.format(**self.parameters)
        rows = "row" if self.bad == 1 else "rows"
        if self.bad == 0:
            return Finding(Severity.INFO, self.subject, self.check.id, f"{self.check.id}: none", f"no {self.check.message}.", {"bad": 0})
        sentence = f"{self.bad:,} {rows} with {self.check.message} (e.g. {', '.join(self.examples)}); expected {expected}."
        return Finding(self.check.severity, self.subject, self.check.id, f"{self.check.id}: {self.bad:,} {rows}", sentence, {"bad": self.bad})


def run_checks(
    con: Any,
    table: str,
    columns: set[str],
    subject: str,
    parameters: dict[str, float] | None = None,
    checks: tuple[Check, ...] = CHECKS,
) -> list[CheckResult]:
    """Apply every check whose columns are present; counts by provider when there is one.

    `con` is a DuckDB connection (or anything with DuckDB's `execute`); `table` a table or
    view holding the canonical columns.
    """
    values = {"low": float("-inf"), "high": float("inf"), **(parameters or {})}
    by_provider = "provider" in columns
    example = "'row ' || _row" if "_row" in columns else ("record_id" if "record_id" in columns else "'?'")
    order = "_row" if "_row" in columns else example
    results: list[CheckResult] = []
    for check in checks:
        if not set(check.needs) <= columns:
            continue
        if check.id == "value-out-of-range" and not ({"low", "high"} <= set(parameters or {})):
            continue
        condition = check.bad_when.format(**values)
        group = "provider" if by_provider else f"'{subject}'"
        rows = con.execute(
            f"""SELECT subject, count(*) FILTER (WHERE bad), list(example ORDER BY ord) FILTER (WHERE bad)[1:{EXAMPLES}]
                FROM (SELECT coalesce(CAST({group} AS VARCHAR), '(none)') AS subject, coalesce({condition}, false) AS bad,
                             CAST({example} AS VARCHAR) AS example, {order} AS ord FROM {table})
                GROUP BY subject ORDER BY subject"""
        ).fetchall()
        for name, bad, examples in rows:
            results.append(CheckResult(check, name, int(bad), list(examples or []), values))
    return results


def check_findings(results: list[CheckResult]) -> list[Finding]:
    """One finding per failed check and subject; one `info` finding per subject whose rows pass every check."""
    found: list[Finding] = []
    passed: dict[str, list[str]] = {}
    for result in results:
        if result.bad:
            found.append(result.finding())
        else:
            passed.setdefault(result.subject, []).append(result.check.id)
    for subject, ids in sorted(passed.items()):
        if not any(r.bad for r in results if r.subject == subject):
            found.append(Finding(Severity.INFO, subject, "checks", "logical checks: none failed",
                                 f"no row fails any of the {len(ids)} logical checks ({', '.join(ids)}).", {"checks": len(ids)}))
    return found
