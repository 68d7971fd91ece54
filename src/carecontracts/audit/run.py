"""Run an audit over a workspace's warehouse or over one standalone file.

Per provider (or per group of a file): threshold bunching, the density test, and an XmR
chart of the monthly share meeting the target; over all records: the manifest of logical
checks; for a workspace with published figures in `data/reported/*.csv`: reported against
recomputed. Everything comes back as an `Audit` of results and findings; nothing prints.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np

from carecontracts.audit import recompute
from carecontracts.audit.bunching import DEFAULT_DEGREE, DEFAULT_REPLICATES, Bunching, estimate_bunching
from carecontracts.audit.checks import CHECKS, CheckResult, check_findings, run_checks
from carecontracts.audit.discontinuity import Discontinuity, density_test, grid_step
from carecontracts.audit.findings import Finding, Severity, ordered
from carecontracts.audit.histogram import Histogram, Scale, Side, default_width, from_counts, from_values
from carecontracts.audit.spc import Improvement, Meaning, XmR, xmr
from carecontracts.problems import Problem, ProblemsError, raise_if_any
from carecontracts.workspace import Workspace

MAX_REPORTED_PROBLEMS = 20
REPORTED_FOLDER = "data/reported"


@dataclass(frozen=True)
class AuditOptions:
    """What to test and how: the threshold, which side meets it, and the estimator's settings."""

    threshold: float = 18.0
    side: Side = Side.BELOW
    bin_width: float | None = None
    degree: int = DEFAULT_DEGREE
    window: int = 1
    missing: int | Literal["auto"] = "auto"
    replicates: int = DEFAULT_REPLICATES
    seed: int = 20250401
    alpha: float = 0.05
    min_records: int = 500  # fewer values than this: too few to test for bunching
    min_per_month: int = 20  # fewer in a month: that month is left off the chart
    tolerance: float = recompute.DEFAULT_TOLERANCE


@dataclass
class SubjectAudit:
    """The statistical results for one provider (or group), and why any were not run."""

    subject: str
    records: int
    bunching: Bunching | None = None
    discontinuity: Discontinuity | None = None
    chart: XmR | None = None
    chart_title: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Audit:
    """Everything an audit found."""

    title: str
    source: str
    options: AuditOptions
    scale: Scale
    subjects: list[SubjectAudit] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    comparisons: list[recompute.Comparison] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def doubtful(self) -> list[Finding]:
        """Errors and warnings."""
        return [f for f in self.findings if f.doubtful]


def _month_label(month: dt.date) -> str:
    return month.strftime("%b %Y")


def _statistics(
    subject: str,
    values: np.ndarray,
    weights: np.ndarray,
    histogram: Histogram | None,
    options: AuditOptions,
    scale: Scale,
    periods: list[tuple[str, float]] | None,
    chart_title: str,
) -> tuple[SubjectAudit, list[Finding]]:
    """Bunching, density test and XmR chart for one subject, with their findings."""
    records = int(round(histogram.total if histogram is not None else float(weights.sum())))
    result = SubjectAudit(subject, records, chart_title=chart_title)
    found: list[Finding] = []
    where = f"{subject} bunching"
    if records < options.min_records:
        result.notes.append(f"{records:,} {scale.counted}: too few to test for bunching (at least {options.min_records:,} needed)")
        found.append(Finding(Severity.INFO, subject, "bunching", "too few to test", result.notes[-1] + ".", {"records": records}))
    else:
        try:
            bins = histogram
            if bins is None:
                width = options.bin_width or default_width(values, weights, grid_step(values, weights))
                bins = from_values(values, options.threshold, width, options.side, where, weights=weights)
            estimate = estimate_bunching(bins, options.threshold, scale, options.degree, options.window, options.missing,
                                         replicates=options.replicates, seed=options.seed, level=1 - options.alpha, source=where)
            result.bunching = estimate
            numbers: dict[str, float | int | str] = {
                "excess": round(estimate.excess, 1), "excess_low": round(estimate.interval[0], 1), "excess_high": round(estimate.interval[1], 1),
                "ratio": round(estimate.ratio, 3), "neighbour_ratio": round(estimate.neighbour_ratio, 3), "bins_worth": round(estimate.normalised, 2),
                "p_value": estimate.p_value, "records": records,
            }
            if estimate.significant:
                found.append(Finding(Severity.WARNING, subject, "bunching", f"bunching just {'under' if options.side is Side.BELOW else 'over'} {scale.amount(options.threshold)}",
                                     estimate.sentence(), numbers))
            else:
                found.append(Finding(Severity.INFO, subject, "bunching", "no bunching", estimate.sentence(), numbers))
        except ProblemsError as error:
            result.notes += [str(p) for p in error.problems]
        try:
            test = density_test(histogram if histogram is not None else values, options.threshold, options.side, scale,
                                bin_width=None, source=f"{subject} density test", weights=None if histogram is not None else weights)
            result.discontinuity = test
            numbers = {"theta": round(test.theta, 4), "se": round(test.se, 4), "z": round(test.z, 2), "p_value": test.p_value, "bandwidth": round(test.bandwidth, 3)}
            if test.significant(options.alpha):
                found.append(Finding(Severity.WARNING, subject, "discontinuity", f"density jumps at {scale.amount(options.threshold)}", test.sentence() + ".", numbers))
            else:
                found.append(Finding(Severity.INFO, subject, "discontinuity", "no jump in density", test.sentence() + ".", numbers))
        except ProblemsError as error:
            result.notes += [str(p) for p in error.problems]
    if periods:
        try:
            chart = xmr([v for _, v in periods], [label for label, _ in periods], Improvement.HIGHER, source=f"{subject} {chart_title}")
            result.chart = chart
            labels = chart.labels
            for signal in chart.signals:
                kind = "a sudden improvement needs explaining" if signal.meaning is Meaning.IMPROVEMENT else "performance has changed"
                found.append(Finding(Severity.WARNING, subject, "spc", f"{chart_title}: {signal.rule.value}",
                                     f"{chart_title} {signal.describe(labels)}: special-cause variation, {kind} "
                                     f"(mean {chart.mean:.1f}, process limits {chart.lower:.1f} to {chart.upper:.1f}).",
                                     {"rule": signal.rule.value, "first": labels[signal.points[0]], "last": labels[signal.points[-1]]}))
            if not chart.signals:
                found.append(Finding(Severity.INFO, subject, "spc", f"{chart_title}: common-cause variation only",
                                     f"{chart_title} over {len(labels)} periods stays within its process limits ({chart.lower:.1f} to {chart.upper:.1f}) with no runs, trends or near-limit pairs.",
                                     {"mean": round(chart.mean, 2)}))
        except ProblemsError as error:
            result.notes += [str(p) for p in error.problems]
    return result, found


# --- a workspace -------------------------------------------------------------------------------

RECORDS_SQL = """(SELECT activity_id AS record_id, provider, pod, referral_date, start_date, end_date, age {extra}
                  FROM activity) AS records"""


def audit_workspace(workspace: Workspace, options: AuditOptions = AuditOptions()) -> Audit:
    """Audit the loaded activity: waits from referral to treatment (in weeks) by provider."""
    path = workspace.warehouse_path
    if not path.exists():
        raise ProblemsError([Problem(workspace.relative(path), "no data loaded yet", expected="run `carecontracts load` first")])
    scale = Scale("weeks", "patients", "waited")
    audit = Audit(f"Waiting-time audit: {workspace.settings.name}", str(workspace.root), options, scale)
    with duckdb.connect(str(path), read_only=True) as con:
        columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'activity'").fetchall()}
        if not columns:
            raise ProblemsError([Problem(workspace.relative(path), "no activity loaded", expected="activity files in data/activity, then `carecontracts load`")])
        records = RECORDS_SQL.format(extra="")
        audit.checks = run_checks(con, records, {"record_id", "provider", "pod", "referral_date", "start_date", "end_date", "age"}, workspace.settings.name)
        limit_days = options.threshold * 7
        tallies = con.execute(
            f"""SELECT provider, datediff('day', referral_date, start_date) AS wait, CAST(date_trunc('month', start_date) AS DATE) AS month, count(*)
                FROM {records} WHERE referral_date IS NOT NULL AND start_date >= referral_date
                GROUP BY ALL ORDER BY provider, month, wait"""
        ).fetchall()
        reported_files = sorted((workspace.root / REPORTED_FOLDER).glob("*.csv"))
        reported: list[recompute.Reported] = []
        problems: list[Problem] = []
        for file in reported_files:
            try:
                reported += recompute.read_reported(file, con, workspace.relative(file))
            except ProblemsError as error:
                problems += error.problems
        raise_if_any(problems)
        shares = {m: recompute.recompute_shares(con, records, recompute.MEASURES[m]) for m in sorted({r.measure for r in reported})}
    audit.comparisons = recompute.compare(reported, shares, options.tolerance)
    findings = check_findings(audit.checks) + recompute.findings(audit.comparisons)
    by_provider: dict[str, list[tuple[int, dt.date, int]]] = {}
    for provider, wait, month, count in tallies:
        by_provider.setdefault(provider, []).append((int(wait), month, int(count)))
    for provider, rows in sorted(by_provider.items()):
        waits = np.array([w for w, _, _ in rows], dtype=np.float64) / 7
        counts = np.array([c for _, _, c in rows], dtype=np.float64)
        months: dict[dt.date, list[int]] = {}
        for wait, month, count in rows:
            tally = months.setdefault(month, [0, 0])
            tally[0] += count if wait <= limit_days else 0
            tally[1] += count
        typical = float(np.median([n for _, n in months.values()]))
        # A month with far fewer records than usual is a part month (spells begun before the year): left off the chart.
        periods = [(_month_label(m), 100 * w / n) for m, (w, n) in sorted(months.items()) if n >= max(options.min_per_month, typical / 4)]
        weekly = options if options.bin_width else replace(options, bin_width=1.0)
        subject, found = _statistics(provider, waits, counts, None, weekly, scale, periods if len(periods) >= 3 else None,
                                     f"% treated within {options.threshold:g} weeks")
        audit.subjects.append(subject)
        findings += found
    audit.findings = ordered(findings)
    return audit


# --- a standalone file ------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSpec:
    """Which columns of a file hold what."""

    value: str  # patient-level values, or the lower edge of each bin when `count` is given
    count: str | None = None  # binned: the count in each bin
    upper: str | None = None  # binned: the upper edge (blank on an open last bin)
    group: str | None = None  # audit each provider (or other group) separately
    period: str | None = None  # chart the share meeting the target by period
    identifier: str | None = None  # checked for duplicates
    unit: str | None = None
    value_range: tuple[float, float] | None = None


def _guess_unit(name: str) -> str:
    lowered = name.lower()
    for key, unit in (("week", "weeks"), ("day", "days"), ("minute", "minutes"), ("min", "minutes"), ("hour", "hours"), ("percent", "%"), ("pct", "%"), ("share", "%")):
        if key in lowered:
            return unit
    return ""


def _source(path: Path) -> str:
    text = str(path).replace("'", "''")
    if path.suffix.lower() == ".parquet":
        return f"read_parquet('{text}')"
    return f"read_csv('{text}', all_varchar = true, header = true, auto_detect = true)"


def _number(con: Any, column: str) -> str:
    return f'TRY_CAST(trim(CAST("{column}" AS VARCHAR)) AS DOUBLE)'


def audit_file(path: Path, spec: FileSpec, options: AuditOptions) -> Audit:
    """Audit one CSV or Parquet file of patient-level values or of binned counts."""
    name = str(path)
    if not path.is_file():
        raise ProblemsError([Problem(name, "no such file", expected="a .csv or .parquet file")])
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise ProblemsError([Problem(name, f"cannot read '{path.suffix}' files", expected="a .csv or .parquet file")])
    unit = spec.unit if spec.unit is not None else _guess_unit(spec.value)
    binned = spec.count is not None
    if options.side is Side.ABOVE:
        scale = Scale(unit, "figures", "reported")
    else:
        scale = Scale(unit, "patients" if unit in ("weeks", "days", "minutes", "hours") else "records", "waited" if unit in ("weeks", "days", "minutes", "hours") else "had")
    audit = Audit(f"Audit of {path.name}", name, options, scale)
    with duckdb.connect() as con:
        try:
            con.execute(f"CREATE TABLE raw AS SELECT *, row_number() OVER () AS _row FROM {_source(path)}")
        except duckdb.Error as error:
            raise ProblemsError([Problem(name, f"cannot be read: {str(error).splitlines()[0]}", expected="a CSV file with a header row, or Parquet")]) from None
        header = [r[0] for r in con.execute("DESCRIBE raw").fetchall()]
        wanted = {"value": spec.value, "count": spec.count, "upper": spec.upper, "group": spec.group, "period": spec.period, "identifier": spec.identifier}
        missing = [Problem(name, f"no column '{column}'", field=column, expected="one of " + ", ".join(h for h in header if h != "_row"))
                   for option, column in wanted.items() if column and column not in header]
        raise_if_any(missing)
        numeric = [c for c in (spec.value, spec.count, spec.upper) if c]
        bad = con.execute(
            " UNION ALL ".join(
                f"""SELECT _row, '{c}', CAST("{c}" AS VARCHAR) FROM raw
                    WHERE "{c}" IS NOT NULL AND trim(CAST("{c}" AS VARCHAR)) <> '' AND {_number(con, c)} IS NULL""" for c in numeric
            ) + " ORDER BY 1"
        ).fetchall()
        if bad:
            shown = [Problem(name, f"'{v}' is not a number", row=int(r), field=c, value=v, expected="a number") for r, c, v in bad[:MAX_REPORTED_PROBLEMS]]
            if len(bad) > MAX_REPORTED_PROBLEMS:
                shown.append(Problem(name, f"and {len(bad) - MAX_REPORTED_PROBLEMS:,} more values that are not numbers", field=spec.value))
            raise ProblemsError(shown)
        present = con.execute(f"SELECT count({_number(con, spec.value)}) FROM raw").fetchone()
        if not present or present[0] == 0:
            raise ProblemsError([Problem(name, "no numeric values", field=spec.value, expected=f"numbers in column {spec.value}")])
        group = f'CAST("{spec.group}" AS VARCHAR)' if spec.group else f"'{path.name}'"
        period = f'CAST("{spec.period}" AS VARCHAR)' if spec.period else "NULL"
        dates = ", ".join(f'TRY_CAST("{d}" AS DATE) AS {d}' for d in ("referral_date", "start_date", "end_date") if d in header)
        identifier = f', CAST("{spec.identifier}" AS VARCHAR) AS record_id' if spec.identifier else ""
        con.execute(f"""CREATE TABLE records AS SELECT _row, {group} AS provider, {period} AS period,
                        {_number(con, spec.value)} AS value {', ' + _number(con, spec.count) + ' AS count' if spec.count else ''}
                        {', ' + _number(con, spec.upper) + ' AS upper' if spec.upper else ''} {', ' + dates if dates else ''} {identifier} FROM raw""")
        columns = {"_row", "provider", "value"} | ({"record_id"} if spec.identifier else set()) | {d for d in ("referral_date", "start_date", "end_date") if d in header}
        value_range = spec.value_range or ((0.0, 100.0) if unit == "%" else None)
        selected = tuple(c for c in CHECKS if not (c.id == "negative-wait" and (binned or options.side is Side.ABOVE)))
        if binned:
            columns -= {"value"}
        audit.checks = run_checks(con, "records", columns, path.name, {"low": value_range[0], "high": value_range[1]} if value_range else None, selected)
        findings = check_findings(audit.checks)
        subjects = [r[0] for r in con.execute("SELECT DISTINCT provider FROM records ORDER BY 1").fetchall()]
        for subject in subjects:
            where = f"{name}" + (f" {spec.group} = {subject}" if spec.group else "")
            histogram: Histogram | None = None
            values = weights = np.zeros(0)
            if binned:
                rows = con.execute(f"SELECT _row, value, {'upper' if spec.upper else 'NULL'}, count FROM records WHERE provider IS NOT DISTINCT FROM ? ORDER BY _row", [subject]).fetchall()
                uppers = [r[2] for r in rows] if spec.upper else [rows[i + 1][1] if i + 1 < len(rows) else None for i in range(len(rows))]
                histogram = from_counts([r[1] for r in rows], uppers, [r[3] for r in rows], options.side, where, [int(r[0]) for r in rows],
                                        (spec.value, spec.upper or spec.value, spec.count or "count"))
                histogram.check_threshold(options.threshold, where)
            else:
                got = con.execute("SELECT value FROM records WHERE provider IS NOT DISTINCT FROM ? AND value IS NOT NULL", [subject]).fetchnumpy()
                values = np.asarray(got["value"], dtype=np.float64)
                weights = np.ones_like(values)
                low, high = float(values.min()), float(values.max())
                if not (low <= options.threshold <= high):
                    raise ProblemsError([Problem(where, f"threshold {options.threshold:g} is outside the data's range {low:g} to {high:g}", field="threshold",
                                                 value=options.threshold, expected=f"a value between {low:g} and {high:g}")])
            periods = None
            if spec.period and not binned:
                meets = "value <= ?" if options.side is Side.BELOW else "value >= ?"
                rows = con.execute(f"""SELECT period, count(*) FILTER (WHERE {meets}), count(*) FROM records
                                       WHERE provider IS NOT DISTINCT FROM ? AND value IS NOT NULL GROUP BY period ORDER BY period""",
                                   [options.threshold, subject]).fetchall()
                periods = [(str(p), 100 * w / n) for p, w, n in rows if n >= options.min_per_month] or None
                if periods is not None and len(periods) < 3:
                    periods = None
            meets_words = f"within {scale.amount(options.threshold)}" if options.side is Side.BELOW else f"at or over {scale.amount(options.threshold)}"
            result, found = _statistics(subject, values, weights, histogram, options, scale, periods, f"% {meets_words}")
            audit.subjects.append(result)
            findings += found
    audit.findings = ordered(findings)
    return audit
