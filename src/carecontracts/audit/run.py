"""Run an audit over a workspace's warehouse or over one file.

Per subject (a provider, a commissioner, or every row together): threshold bunching set
against placebo thresholds, the density test likewise, and a control chart of the subject's own
share by period (a p-chart, or Laney's p′, when the count behind each period is known; XmR
otherwise); over all records the manifest of logical checks; for a workspace with
published figures in `data/reported/*.csv`, reported against recomputed. A subject whose data
cannot be tested is reported as `cannot test` with the reason and the others go on; only a
file that cannot be read, or bad values in it, stop the run (every problem located at once).
Nothing prints: everything comes back as an `Audit`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Sequence

import duckdb
import numpy as np

from carecontracts.audit import recompute
from carecontracts.audit.bunching import (
    DEFAULT_MAX_DEGREE,
    DEFAULT_REPLICATES,
    DEFAULT_SPAN,
    Bunching,
    MIN_PLACEBOS,
    CannotTest,
    Placebo,
    Settings,
    estimate_bunching,
    placebo_thresholds,
)
from carecontracts.audit.checks import CHECKS, CheckResult, check_findings, run_checks
from carecontracts.audit.discontinuity import Discontinuity, density_test, grid_step
from carecontracts.audit.findings import Finding, Severity, ordered
from carecontracts.audit.histogram import Histogram, Scale, Side, default_width, from_counts, from_values
from carecontracts.audit.readers import AE_TYPES, Binned, Layout, Read, RowFilter, Values, detect_layout, open_file, period_label, read_ae, read_rtt
from carecontracts.audit.spc import ChartKind, ControlChart, Improvement, Meaning, p_chart, xmr
from carecontracts.problems import Problem, ProblemsError, raise_if_any
from carecontracts.workspace import Workspace

MAX_REPORTED_PROBLEMS = 20
REPORTED_FOLDER = "data/reported"
POOLED = "all"
SHARE_BOUNDS = (0.0, 100.0)


class ChartChoice(str, Enum):
    """Which control chart to draw: `auto` is a p-chart (p′ where over-dispersed) when the
    count behind each period is known, XmR otherwise."""

    AUTO = "auto"
    XMR = "xmr"
    P = "p"
    LANEY = "laney"


@dataclass(frozen=True)
class AuditOptions:
    """What to test and how: the threshold, which side meets it, and the estimator's settings."""

    threshold: float = 18.0
    side: Side = Side.BELOW
    bin_width: float | None = None
    max_degree: int = DEFAULT_MAX_DEGREE
    window: int = 1
    span: int = DEFAULT_SPAN
    replicates: int = DEFAULT_REPLICATES
    seed: int = 20250401
    alpha: float = 0.05
    min_records: int = 500  # fewer values than this: too few to test for bunching
    min_per_period: int = 20  # fewer records (or attendances) behind a period: that period is left off the chart
    min_periods: int = 12  # fewer periods: no chart
    tolerance: float = recompute.DEFAULT_TOLERANCE
    other_targets: tuple[float, ...] = ()
    exclude: tuple[tuple[float, float], ...] = ()
    calendar: bool = True
    baseline: int | None = None
    phases: tuple[str, ...] = ()
    chart_target: float | None = None
    chart: ChartChoice = ChartChoice.AUTO
    seasonal: bool | None = None  # None: adjust when there are many groups and two years of periods
    pooled: bool = True
    layout: Layout = Layout.AUTO
    filters: tuple[RowFilter, ...] = ()
    ae_types: tuple[str, ...] = tuple(AE_TYPES)
    progress: Callable[[int, int, str], None] | None = field(default=None, compare=False)  # (done, of, subject) as each subject starts

    def settings(self) -> Settings:
        return Settings(window=self.window, max_degree=self.max_degree, span=self.span, replicates=self.replicates, alpha=self.alpha, seed=self.seed)


@dataclass
class Chart:
    """A subject's own share by period, charted."""

    control: ControlChart
    title: str
    unit: str
    seasonal: bool = False


@dataclass
class SubjectAudit:
    """The statistical results for one subject, and why any were not run."""

    subject: str
    records: int
    name: str = ""
    bunching: Bunching | None = None
    discontinuity: Discontinuity | None = None
    density_placebo: tuple[int, int, float] | None = None  # rank, placebos, placebo p
    chart: Chart | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def chart_title(self) -> str:
        return self.chart.title if self.chart else ""


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
    notes: list[str] = field(default_factory=list)
    layout: str = "long"

    @property
    def doubtful(self) -> list[Finding]:
        """Errors and warnings."""
        return [f for f in self.findings if f.doubtful]

    @property
    def untested(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.UNTESTED]


@dataclass
class SubjectData:
    """What one subject brings to the statistics."""

    subject: str
    records: int
    histogram: Histogram | None = None  # binned data
    values: np.ndarray | None = None  # or values to bin
    weights: np.ndarray | None = None
    excluded: list[tuple[float, float]] = field(default_factory=list)  # ranges of value kept out of the fits
    periods: list[tuple[str, float, float]] = field(default_factory=list)  # label, figure (%), records behind it
    denominators: bool = True  # the records behind each period are its share's denominator (False: figures with no counts)
    chart_title: str = ""
    name: str = ""


# --- findings ----------------------------------------------------------------------------------------


def _round(value: float, places: int = 1) -> float | str:
    return round(value, places) if math.isfinite(value) else ""


def bunching_numbers(b: Bunching, records: int) -> dict[str, float | int | str]:
    numbers: dict[str, float | int | str] = {
        "threshold": b.threshold, "observed": _round(b.observed), "expected": _round(b.expected), "excess": _round(b.excess),
        "excess_low": _round(b.interval[0]), "excess_high": _round(b.interval[1]), "ratio": _round(b.ratio, 3),
        "ratio_low": _round(b.ratio_interval[0], 3), "ratio_high": _round(b.ratio_interval[1], 3), "z": _round(b.z, 2),
        "degree": b.degree, "missing_bins": int(b.missing.sum()), "dispersion": _round(b.dispersion, 5),
        "specification_low": _round(b.specification_range[0]), "specification_high": _round(b.specification_range[1]),
        "records": records, "replicates": b.replicates,
    }
    if b.placebo is not None:
        numbers |= {"placebo_rank": b.placebo.rank, "placebo_count": b.placebo.count, "placebo_p": float(f"{b.placebo.p:.3g}")}
    return numbers


def _cannot(subject: str, check: str, why: str, numbers: dict[str, float | int | str] | None = None) -> Finding:
    return Finding(Severity.UNTESTED, subject, check, "cannot test", why[0].upper() + why[1:] + ".", numbers or {})


def _excluded_mask(histogram: Histogram, ranges: Sequence[tuple[float, float]]) -> np.ndarray:
    """Bins overlapping a range (a point range: the bin holding the point)."""
    mask = np.zeros(len(histogram.counts), dtype=bool)
    for lo, hi in ranges:
        if hi > lo:
            mask |= (histogram.upper > lo) & (histogram.lower < hi)
        else:
            mask |= (histogram.lower <= lo) & (histogram.upper >= lo)
    return mask


def _bin_width(values: np.ndarray, weights: np.ndarray, scale: Scale, options: AuditOptions) -> float:
    """Half-points for a share, a week for weeks, seven days for days; else Freedman–Diaconis."""
    if options.bin_width:
        return options.bin_width
    fixed = {"%": 0.5, "weeks": 1.0, "days": 7.0}.get(scale.unit)
    if fixed:
        return fixed
    return default_width(values, weights, grid_step(values, weights))


def _statistics(data: SubjectData, options: AuditOptions, scale: Scale, figures: bool) -> tuple[SubjectAudit, list[Finding]]:
    """Bunching, the density test and the control chart for one subject, with their findings. Anything
    that cannot be tested becomes a `cannot test` finding; nothing here stops the other subjects."""
    subject = data.subject
    result = SubjectAudit(subject, data.records, data.name)
    found: list[Finding] = []
    side_words = "under" if options.side is Side.BELOW else "over"
    if data.records < options.min_records:
        why = (f"{data.records:,} {scale.counted}, too few for bunching (at least {options.min_records:,}; --min-records)")
        found.append(_cannot(subject, "bunching", why, {"records": data.records}))
        result.notes.append(why)
    else:
        try:
            bins = data.histogram
            if bins is None:
                assert data.values is not None and data.weights is not None
                width = _bin_width(data.values, data.weights, scale, options)
                bins = from_values(data.values, options.threshold, width, options.side, subject, weights=data.weights)
            bins.check_threshold(options.threshold, subject)
            ranges = list(options.exclude) + list(data.excluded)
            if scale.unit == "%" and data.values is not None:
                # A heap of shares at exactly 0% or 100% (a small site that met every time) sits at the bound, not on a curve.
                ranges += [(b, b) for b in SHARE_BOUNDS if np.any(data.values == b)]
            excluded = _excluded_mask(bins, ranges)
            estimate = estimate_bunching(bins, options.threshold, scale, options.settings(), excluded,
                                         "kept out of the fit (an excluded range)", tuple(options.other_targets))
            result.bunching = estimate
            numbers = bunching_numbers(estimate, data.records)
            if estimate.significant:
                found.append(Finding(Severity.WARNING, subject, "bunching", f"bunching just {side_words} {scale.amount(options.threshold)}", estimate.sentence(), numbers))
            elif estimate.above_zero and estimate.placebo is not None and not estimate.placebo.enough:
                found.append(Finding(Severity.UNTESTED, subject, "bunching", f"cannot test: only {estimate.placebo.count} placebo thresholds",
                                     estimate.sentence(), numbers))
            else:
                found.append(Finding(Severity.INFO, subject, "bunching", "no bunching beyond what placebos show" if estimate.above_zero else "no bunching",
                                     estimate.sentence(), numbers))
            result.notes += list(estimate.notes)
            _density(result, found, data, bins, estimate, options, scale)
        except CannotTest as error:
            found.append(_cannot(subject, "bunching", error.why, {"records": data.records}))
            result.notes.append(f"bunching: cannot test: {error.why}")
        except ProblemsError as error:
            why = "; ".join(p.message for p in error.problems)
            found.append(_cannot(subject, "bunching", why, {"records": data.records}))
            result.notes.append(f"bunching: cannot test: {why}")
    if data.periods:
        _chart(result, found, data, options, scale, figures)
    return result, found


def _density(result: SubjectAudit, found: list[Finding], data: SubjectData, bins: Histogram, estimate: Bunching, options: AuditOptions, scale: Scale) -> None:
    """McCrary's test at the threshold, ranked among the same test at the placebo thresholds."""
    subject = result.subject
    source: Histogram | np.ndarray = bins if data.histogram is not None else data.values  # type: ignore[assignment]
    weights = None if data.histogram is not None else data.weights

    def run(threshold: float) -> Discontinuity:
        return density_test(source, threshold, options.side, scale, source=f"{subject} density test", weights=weights)

    try:
        test = run(options.threshold)
    except ProblemsError as error:
        found.append(_cannot(subject, "discontinuity", "; ".join(p.message for p in error.problems)))
        return
    result.discontinuity = test
    toward = -1.0 if options.side is Side.BELOW else 1.0  # z in the direction of the target side
    thresholds = estimate.placebo.thresholds if estimate.placebo is not None else placebo_thresholds(bins, options.threshold, tuple(options.other_targets))
    placebo_z, used = [], []
    for t in thresholds:
        try:
            placebo_z.append(toward * run(float(t)).z)
            used.append(float(t))
        except (ProblemsError, ValueError, FloatingPointError):
            continue
    thresholds = np.array(used)
    target_z = toward * test.z
    placebo = Placebo(np.array(thresholds[: len(placebo_z)]), np.array(placebo_z), np.zeros(len(placebo_z)), target_z, options.settings().placebos_needed)
    result.density_placebo = (placebo.rank, placebo.count, placebo.p)
    numbers: dict[str, float | int | str] = {"theta": round(test.theta, 4), "se": round(test.se, 4), "z": round(test.z, 2), "p_value": test.p_value, "bandwidth": round(test.bandwidth, 3),
               "placebo_rank": placebo.rank, "placebo_count": placebo.count, "placebo_p": round(placebo.p, 4)}
    how = "" if placebo.ranked else ", set against the placebos' spread as there are too few to rank"
    ranked = f"rank {placebo.rank} of {placebo.count + 1} among placebo thresholds (placebo p = {placebo.p:.3f}{how})"
    if test.significant(options.alpha) and placebo.enough and placebo.p <= options.alpha:
        found.append(Finding(Severity.WARNING, subject, "discontinuity", f"density jumps at {scale.amount(options.threshold)}", f"{test.sentence()}; {ranked}.", numbers))
    elif test.significant(options.alpha) and not placebo.enough:
        found.append(Finding(Severity.UNTESTED, subject, "discontinuity", f"cannot test: only {placebo.count} placebo thresholds",
                             f"{test.sentence()}; {ranked}: at least {MIN_PLACEBOS} placebos are needed.", numbers))
    else:
        words = "a jump no larger than at thresholds with no target" if test.significant(options.alpha) else "no jump in density"
        found.append(Finding(Severity.INFO, subject, "discontinuity", words, f"{test.sentence()}; {ranked}.", numbers))


def _chart(result: SubjectAudit, found: list[Finding], data: SubjectData, options: AuditOptions, scale: Scale, figures: bool) -> None:
    subject = result.subject
    kept = [(label, value, behind) for label, value, behind in data.periods if behind >= options.min_per_period]
    dropped = len(data.periods) - len(kept)
    if dropped:
        result.notes.append(f"{dropped} period(s) with fewer than {options.min_per_period:,} behind the figure are left off the chart (--min-per-period)")
    if len(kept) < options.min_periods:
        why = (f"{len(kept)} periods with at least {options.min_per_period:,} behind the figure, too few for a control chart "
               f"(at least {options.min_periods}; --min-periods, --min-per-period)")
        found.append(_cannot(subject, "spc", why, {"periods": len(kept)}))
        result.notes.append(why)
        return
    labels = [label for label, _, _ in kept]
    values = [value for _, value, _ in kept]
    sizes = [behind for _, _, behind in kept]
    missing = [p for p in options.phases if p not in labels]
    phases = [labels.index(p) for p in options.phases if p in labels]
    if missing:
        result.notes.append(f"phase start(s) {', '.join(missing)} are not periods of this chart")
    target = options.chart_target if options.chart_target is not None else (options.threshold if figures and scale.unit == "%" else None)
    improvement = Improvement.HIGHER
    source = f"{subject} {data.chart_title}"
    proportion = data.denominators and all(0 <= v <= 100 for v in values)
    try:
        if options.chart is ChartChoice.XMR:
            chart = xmr(values, labels, improvement, options.baseline, source, phases, SHARE_BOUNDS, target)
            chart = dataclasses.replace(chart, why="XmR chart, as asked (--chart xmr)")
        elif proportion:
            laney = {ChartChoice.AUTO: None, ChartChoice.P: False, ChartChoice.LANEY: True}[options.chart]
            chart = p_chart(values, sizes, labels, improvement, options.baseline, source, phases, SHARE_BOUNDS, target, laney)
        else:
            chart = xmr(values, labels, improvement, options.baseline, source, phases, SHARE_BOUNDS, target)
            reason = ("the figures have no counts behind them" if not data.denominators
                      else f"the charted figures ({data.chart_title}) are not all within 0–100%")
            chart = dataclasses.replace(chart, why=f"XmR chart: {reason}, so a p-chart cannot be drawn")
    except ProblemsError as error:
        why = "; ".join(p.message for p in error.problems)
        found.append(_cannot(subject, "spc", why))
        return
    title = data.chart_title
    result.chart = Chart(chart, title, "%", seasonal="seasonally adjusted" in title)
    at_mean = " at the mean denominator" if chart.kind is not ChartKind.XMR else ""
    phase_words = ", ".join(f"{chart.labels[p.start]}–{chart.labels[p.stop - 1]}: mean {p.mean:.1f}, limits{at_mean} {p.lower:.1f} to {p.upper:.1f}"
                            + (f" (from the first {p.baseline} points)" if p.baseline < p.stop - p.start else "") for p in chart.phases)
    phase_words = f"{chart.why}; {phase_words}"
    numbers: dict[str, float | int | str] = {"chart": chart.kind.value, "mean": round(chart.mean, 2), "lower": round(chart.lower, 2),
                                             "upper": round(chart.upper, 2), "variation": chart.variation.value, "periods": len(labels)}
    if chart.kind is not ChartKind.XMR:
        numbers["sigma_z"] = round(chart.last.measured_sigma_z, 3)
    if chart.assurance is not None:
        numbers["assurance"] = chart.assurance.value
    icons = f"latest point: {chart.variation.value}" + (f"; {chart.assurance.value}" if chart.assurance else "")
    # Signals are information, not findings against the figures: on monthly figures that wander
    # and follow the seasons, runs are common, and a change of performance is not a sign that
    # the figures are wrong. The icons and the periods say what changed and when.
    better = [s for s in chart.signals if s.meaning is Meaning.IMPROVEMENT]
    worse = [s for s in chart.signals if s.meaning is not Meaning.IMPROVEMENT]
    for signals, words in ((better, "special cause improvement"), (worse, "special cause concern")):
        if signals:
            described = "; ".join(s.describe(labels) for s in signals)
            found.append(Finding(Severity.INFO, subject, "spc", f"{title}: {words}", f"{title}: {described} ({phase_words}; {icons}).", numbers))
    if not chart.signals:
        found.append(Finding(Severity.INFO, subject, "spc", f"{title}: common cause variation only",
                             f"{title} over {len(labels)} periods stays within its process limits with no runs, trends or near-limit pairs ({phase_words}; {icons}).", numbers))


# --- a workspace -------------------------------------------------------------------------------

RECORDS_SQL = """(SELECT activity_id AS record_id, provider, pod, referral_date, start_date, end_date, age {extra}
                  FROM activity) AS records"""


def _month_label(month: dt.date) -> str:
    return month.strftime("%b %Y")


def audit_workspace(workspace: Workspace, options: AuditOptions = AuditOptions()) -> Audit:
    """Audit the loaded activity: waits from referral to treatment (in weeks) by provider."""
    path = workspace.warehouse_path
    if not path.exists():
        raise ProblemsError([Problem(workspace.relative(path), "no data loaded yet", expected="run `carecontracts load` first")])
    scale = Scale("weeks", "patients", "waited")
    audit = Audit(f"Waiting-time audit: {workspace.settings.name}", str(workspace.root), options, scale, layout="workspace")
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
    for done, (provider, rows) in enumerate(sorted(by_provider.items())):
        if options.progress:
            options.progress(done, len(by_provider), provider)
        waits = np.array([w for w, _, _ in rows], dtype=np.float64) / 7
        counts = np.array([c for _, _, c in rows], dtype=np.float64)
        months: dict[dt.date, list[int]] = {}
        for wait, month, count in rows:
            tally = months.setdefault(month, [0, 0])
            tally[0] += count if wait <= limit_days else 0
            tally[1] += count
        typical = float(np.median([n for _, n in months.values()]))
        # A month with far fewer records than usual is a part month (spells begun before the year): left off the chart.
        periods = [(_month_label(m), 100 * w / n, float(n)) for m, (w, n) in sorted(months.items()) if n >= typical / 4]
        data = SubjectData(provider, int(counts.sum()), values=waits, weights=counts, periods=periods,
                           chart_title=f"% treated within {options.threshold:g} weeks")
        subject, found = _statistics(data, options, scale, figures=False)
        audit.subjects.append(subject)
        findings += found
    audit.findings = ordered(findings)
    return audit


# --- a file ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSpec:
    """Which columns of a long file hold what (the published layouts need none of these but `group`)."""

    value: str | None = None  # values, or the lower edge of each bin when `count` is given
    count: str | None = None  # binned: the count in each bin
    upper: str | None = None  # binned: the upper edge (blank on an open last bin)
    group: str | None = None  # audit each provider (or other group) separately
    period: str | None = None  # chart the share by period
    identifier: str | None = None  # checked for duplicates
    unit: str | None = None
    value_range: tuple[float, float] | None = None


def _guess_unit(name: str) -> str:
    lowered = name.lower()
    for key, unit in (("week", "weeks"), ("day", "days"), ("minute", "minutes"), ("min", "minutes"), ("hour", "hours"), ("percent", "%"), ("pct", "%"), ("share", "%")):
        if key in lowered:
            return unit
    return ""


def _number(column: str) -> str:
    return f'TRY_CAST(trim(CAST("{column}" AS VARCHAR)) AS DOUBLE)'


def _scale(unit: str, options: AuditOptions, figures: bool) -> Scale:
    if figures:
        return Scale(unit, "provider-months" if unit == "%" else "figures", "reported")
    if unit in ("weeks", "days", "minutes", "hours"):
        return Scale(unit, "patients", "waited")
    return Scale(unit, "records", "had")


def audit_file(path: Path, spec: FileSpec, options: AuditOptions) -> Audit:
    """Audit one CSV or Parquet file: patient-level values, binned counts, figures, or a
    published NHS layout (RTT full CSV, monthly A&E)."""
    con, header, name = open_file(path, options.filters)
    try:
        layout = options.layout if options.layout is not Layout.AUTO else detect_layout(header)
        if layout is Layout.LONG and not spec.value:
            raise ProblemsError([Problem("--value", "missing", expected="the column of values to audit, e.g. --value waits_weeks "
                                         "(not needed for the NHS RTT full CSV or monthly A&E layouts, which are recognised by their columns)")])
        if layout is Layout.RTT:
            read = read_rtt(con, header, name, spec.group, options.filters, options.calendar)
            return _audit_binned(read, path, spec, options)
        if layout is Layout.AE:
            read = read_ae(con, header, name, spec.group, options.ae_types)
            return _audit_values(read, path, options, [])
        return _audit_long(con, header, name, path, spec, options)
    finally:
        con.close()


def _subjects_binned(read: Read, options: AuditOptions) -> list[tuple[str, dict[str, np.ndarray]]]:
    data = read.data
    assert isinstance(data, Binned)
    by_subject: dict[str, dict[str, np.ndarray]] = {}
    for (subject, period), counts in data.counts.items():
        by_subject.setdefault(subject, {})[period] = counts
    ordered_subjects = sorted(by_subject.items())
    if read.group and options.pooled and len(ordered_subjects) > 1:
        pooled: dict[str, np.ndarray] = {}
        for _, periods in ordered_subjects:
            for period, counts in periods.items():
                pooled[period] = pooled.get(period, 0) + counts
        ordered_subjects.insert(0, (POOLED, pooled))
    return ordered_subjects


def _audit_binned(read: Read, path: Path, spec: FileSpec, options: AuditOptions) -> Audit:
    data = read.data
    assert isinstance(data, Binned)
    scale = _scale(read.unit, options, False)
    part = read.columns.get("part", "")
    title = f"Audit of {path.name}" + (f" ({part})" if part else "")
    audit = Audit(title, read.source, options, scale, notes=list(read.notes), layout=read.layout.value)
    findings: list[Finding] = []
    if read.problems:
        findings.append(Finding(Severity.ERROR, path.name, "band-total", f"bands do not add up to Total in {len(read.problems):,} rows",
                                f"{len(read.problems):,} rows' weekly bands do not add up to their Total column (e.g. {read.problems[0]}).",
                                {"bad": len(read.problems)}))
    else:
        findings.append(Finding(Severity.INFO, path.name, "band-total", "bands add up to Total", "every row's weekly bands add up to its Total column.", {"bad": 0}))
    meets = data.upper <= options.threshold + 1e-9 if options.side is Side.BELOW else data.lower >= options.threshold - 1e-9
    subjects = _subjects_binned(read, options)
    for done, (subject, periods) in enumerate(subjects):
        if options.progress:
            options.progress(done, len(subjects), subject)
        total = sum(periods.values())
        histogram = Histogram(data.lower, data.upper, np.asarray(total, dtype=np.float64), options.side)
        excluded = sorted({r for period in periods for r in data.excluded.get(period, [])})
        chart_periods = [(label, 100 * float(c[meets].sum() / c.sum()), float(c.sum())) for label, c in sorted(periods.items()) if c.sum() > 0]
        within = f"within {scale.amount(options.threshold)}" if options.side is Side.BELOW else f"at or over {scale.amount(options.threshold)}"
        subject_data = SubjectData(subject, int(round(histogram.total)), histogram=histogram, excluded=excluded,
                                   periods=chart_periods if len(chart_periods) > 1 else [], chart_title=f"% {within}",
                                   name=read.names.get(subject, "every row together" if subject == POOLED else ""))
        result, found = _statistics(subject_data, options, scale, figures=False)
        audit.subjects.append(result)
        findings += found
    audit.findings = ordered(findings)
    return audit


def _seasonal_adjustment(values: Values, options: AuditOptions, groups: int) -> tuple[np.ndarray, bool]:
    """Each figure less the average group's difference from its own mean in that calendar
    month, when there are enough groups and two years of periods (or when asked)."""
    months = np.array([p[5:7] if len(p) >= 7 and p[4] == "-" else "" for p in values.period], dtype=object)
    periods = {p for p in values.period}
    wanted = options.seasonal if options.seasonal is not None else (groups >= 10 and len(periods) >= 24)
    if not wanted or np.any(months == ""):
        return values.value, False
    own_mean = {s: float(np.mean(values.value[values.subject == s])) for s in set(values.subject)}
    deviation = values.value - np.array([own_mean[s] for s in values.subject])
    pattern = {m: float(np.mean(deviation[months == m])) for m in set(months)}
    return values.value - np.array([pattern[m] for m in months]), True


def _audit_values(read: Read, path: Path, options: AuditOptions, checks: list[CheckResult]) -> Audit:
    values = read.data
    assert isinstance(values, Values)
    scale = _scale(read.unit, options, read.figures)
    audit = Audit(f"Audit of {path.name}", read.source, options, scale, checks=checks, notes=list(read.notes), layout=read.layout.value)
    findings: list[Finding] = check_findings(checks)
    subjects = sorted(set(values.subject))
    grouped = read.group is not None
    counted = not read.figures or values.denominator is not None  # the count behind each period's share is known
    if not counted and options.chart in (ChartChoice.P, ChartChoice.LANEY):
        raise ProblemsError([Problem("--chart", f"a p-chart needs the count behind each period's figure, and {path.name} gives figures only",
                                     value=options.chart.value, expected="--chart auto or xmr for figures with no counts behind them")])
    adjusted, seasonal = _seasonal_adjustment(values, options, len(subjects)) if read.figures and grouped else (values.value, False)
    if seasonal:
        audit.notes.append("Charts are seasonally adjusted: each month's figure less the average provider's difference from its own mean in that "
                           "calendar month (--no-seasonal to chart the figures as reported). Bunching uses the figures as reported.")
    order: list[tuple[str, np.ndarray]] = [(s, values.subject == s) for s in subjects]
    if grouped and options.pooled and len(subjects) > 1:
        order.insert(0, (POOLED, np.ones(len(values.value), dtype=bool)))
    meets_words = f"within {scale.amount(options.threshold)}" if options.side is Side.BELOW else f"at or over {scale.amount(options.threshold)}"
    for done, (subject, rows) in enumerate(order):
        if options.progress:
            options.progress(done, len(order), subject)
        value = values.value[rows]
        periods: list[tuple[str, float, float]] = []
        period = values.period[rows]
        if any(p for p in period):
            labels = sorted({p for p in period if p})
            for label in labels:
                at = period == label
                if read.figures:
                    # A figure per row: the subject's own share; several rows in a period are pooled by their counts.
                    if values.denominator is not None and values.numerator is not None:
                        den = float(values.denominator[rows][at].sum())
                        figure = 100 * float(values.numerator[rows][at].sum()) / den if den else math.nan
                        if seasonal and subject != POOLED:
                            figure = float(np.average(adjusted[rows][at], weights=values.denominator[rows][at]))
                        behind = den
                    else:
                        figure = float(np.mean((adjusted if seasonal and subject != POOLED else values.value)[rows][at]))
                        behind = float(options.min_per_period)
                else:
                    v = value[at]
                    meets = v <= options.threshold if options.side is Side.BELOW else v >= options.threshold
                    figure, behind = 100 * float(meets.mean()), float(len(v))
                if math.isfinite(figure):
                    periods.append((label, figure, behind))
        if read.figures:
            title = "% within 4 hours" if read.layout is Layout.AE else read.columns.get("measure", "the figure")
            if seasonal and subject != POOLED:
                title += " (seasonally adjusted)"
        else:
            title = f"% {meets_words}"
        data = SubjectData(subject, int(len(value)), values=value, weights=np.ones(len(value)), periods=periods if len(periods) > 1 else [],
                           denominators=counted, chart_title=title, name=read.names.get(subject, "every row together" if subject == POOLED else ""))
        result, found = _statistics(data, options, scale, read.figures)
        audit.subjects.append(result)
        findings += found
    audit.findings = ordered(findings)
    return audit


def _audit_long(con: Any, header: list[str], name: str, path: Path, spec: FileSpec, options: AuditOptions) -> Audit:
    assert spec.value is not None
    wanted = {"value": spec.value, "count": spec.count, "upper": spec.upper, "group": spec.group, "period": spec.period, "identifier": spec.identifier}
    missing = [Problem(name, f"no column '{column}'", field=column, expected="one of " + ", ".join(header))
               for option, column in wanted.items() if column and column not in header]
    raise_if_any(missing)
    unit = spec.unit if spec.unit is not None else _guess_unit(spec.value)
    binned = spec.count is not None
    numeric = [c for c in (spec.value, spec.count, spec.upper) if c]
    bad = con.execute(
        " UNION ALL ".join(
            f"""SELECT _row, '{c}', CAST("{c}" AS VARCHAR) FROM raw
                WHERE "{c}" IS NOT NULL AND trim(CAST("{c}" AS VARCHAR)) <> '' AND {_number(c)} IS NULL""" for c in numeric
        ) + " ORDER BY 1"
    ).fetchall()
    if bad:
        shown = [Problem(name, f"'{v}' is not a number", row=int(r), field=c, value=v, expected="a number") for r, c, v in bad[:MAX_REPORTED_PROBLEMS]]
        if len(bad) > MAX_REPORTED_PROBLEMS:
            shown.append(Problem(name, f"and {len(bad) - MAX_REPORTED_PROBLEMS:,} more values that are not numbers", field=spec.value))
        raise ProblemsError(shown)
    present = con.execute(f"SELECT count({_number(spec.value)}) FROM raw").fetchone()
    if not present or present[0] == 0:
        raise ProblemsError([Problem(name, "no numeric values", field=spec.value, expected=f"numbers in column {spec.value}")])
    group = f'CAST("{spec.group}" AS VARCHAR)' if spec.group else f"'{path.name}'"
    period = f'CAST("{spec.period}" AS VARCHAR)' if spec.period else "NULL"
    dates = ", ".join(f'TRY_CAST("{d}" AS DATE) AS {d}' for d in ("referral_date", "start_date", "end_date") if d in header)
    identifier = f', CAST("{spec.identifier}" AS VARCHAR) AS record_id' if spec.identifier else ""
    con.execute(f"""CREATE TABLE records AS SELECT _row, {group} AS provider, {period} AS period,
                    {_number(spec.value)} AS value {', ' + _number(spec.count) + ' AS count' if spec.count else ''}
                    {', ' + _number(spec.upper) + ' AS upper' if spec.upper else ''} {', ' + dates if dates else ''} {identifier} FROM raw""")
    columns = {"_row", "provider", "value"} | ({"record_id"} if spec.identifier else set()) | {d for d in ("referral_date", "start_date", "end_date") if d in header}
    value_range = spec.value_range or ((0.0, 100.0) if unit == "%" else None)
    selected = tuple(c for c in CHECKS if not (c.id == "negative-wait" and (binned or options.side is Side.ABOVE)))
    if binned:
        columns -= {"value"}
    checks = run_checks(con, "records", columns, path.name, {"low": value_range[0], "high": value_range[1]} if value_range else None, selected)
    if binned:
        subjects = [r[0] for r in con.execute("SELECT DISTINCT provider FROM records ORDER BY 1").fetchall()]
        counts: dict[tuple[str, str], np.ndarray] = {}
        lower = upper = None
        problems: list[Problem] = []
        for subject in subjects:
            rows = con.execute(f"SELECT _row, value, {'upper' if spec.upper else 'NULL'}, count FROM records WHERE provider IS NOT DISTINCT FROM ? ORDER BY _row", [subject]).fetchall()
            uppers = [r[2] for r in rows] if spec.upper else [rows[i + 1][1] if i + 1 < len(rows) else None for i in range(len(rows))]
            try:
                histogram = from_counts([r[1] for r in rows], uppers, [r[3] for r in rows], options.side, name, [int(r[0]) for r in rows],
                                        (spec.value, spec.upper or spec.value, spec.count or "count"))
            except ProblemsError as error:
                problems += error.problems
                continue
            if lower is not None and (len(lower) != len(histogram.lower) or not np.allclose(lower, histogram.lower)):
                problems.append(Problem(name, f"the bins of {spec.group} {subject} differ from the first group's", field=spec.value,
                                        expected="the same bins for every group"))
                continue
            lower, upper = histogram.lower, histogram.upper
            counts[(str(subject), "")] = histogram.counts
        raise_if_any(problems)
        assert lower is not None and upper is not None
        read = Read(name, Layout.LONG, Binned(lower, upper, counts), unit, spec.group, False, [], [], con)
        audit = _audit_binned(read, path, spec, options)
        audit.checks = checks
        audit.findings = ordered(check_findings(checks) + [f for f in audit.findings if f.check != "band-total"])
        return audit
    rows = con.execute("SELECT provider, period, value FROM records WHERE value IS NOT NULL ORDER BY _row").fetchall()
    figures = unit == "%" and spec.period is not None and _one_per_period(rows)
    values = Values(np.array([str(r[0]) for r in rows], dtype=object), np.array([period_label(r[1]) if r[1] is not None else "" for r in rows], dtype=object),
                    np.array([r[2] for r in rows], dtype=np.float64))
    read = Read(name, Layout.LONG, values, unit, spec.group, figures, [], [], con, {"measure": spec.value})
    return _audit_values(read, path, options, checks)


def _one_per_period(rows: list[tuple]) -> bool:
    """Each (group, period) has one row: the rows are figures, not patients."""
    keys = [(r[0], r[1]) for r in rows]
    return len(keys) == len(set(keys))
