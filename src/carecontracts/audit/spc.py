"""Statistical process control: XmR and p-charts with the NHS "Making Data Count" rules.

**XmR.** Process limits are mean ± 2.66 × the mean moving range (3σ, σ = mR̄/1.128); two-sigma
lines at mean ± (2/3)·2.66·mR̄.

**p-chart**, for a share whose denominator n_i (records, attendances) is known for each
period: the centre is p̄ = Σ numerators ÷ Σ denominators over the baseline, and each point has
its own σ_i = √(p̄(1 − p̄)/n_i), so a month with few patients gets wider limits than a busy one;
limits p̄ ± 3σ_i, two-sigma lines p̄ ± 2σ_i. With denominators in the thousands those limits
are too narrow: real months differ by more than binomial sampling (over-dispersion) and
almost every point falls outside. **Laney's p′-chart** corrects it: z_i = (p_i − p̄)/σ_i over
the baseline, σ_z = the mean moving range of the z_i ÷ 1.128, and limits p̄ ± 3·σ_i·σ_z. By
default (`laney=None`) each phase takes σ_z when it is over 1 (over-dispersion) and 1 otherwise
(the plain p-chart), so the correction only ever widens the limits.

A chart may be split into phases (a new phase starts where
the process is known to have changed: a new pathway, a new counting rule), each with its own
mean and limits; within a phase the limits come from its first `baseline` points (all of
them by default), so later points are judged against a fixed past rather than against
themselves. For a share the limits are clipped to 0–100: a process limit of −0.1% means
nothing. Four rules mark special-cause variation, each within its phase:

- a point beyond the process limits;
- a shift: a run of 7 or more consecutive points on one side of the mean (a point on the
  mean ends a run);
- a trend: a run of 6 or more consecutive points each higher (or each lower) than the one
  before (an equal value ends a run);
- two of three consecutive points beyond the same two-sigma line.

On a p-chart "beyond the limits" and "beyond two sigma" use each point's own σ_i. Each signal
is an improvement or a concern by the measure's direction of improvement. The variation icon
reads the latest point (special cause high or low, improvement or concern, or common cause)
and the assurance icon compares the latest phase's limits (for a p-chart, at the phase's mean
denominator) with a target (consistently met, consistently missed, or hit and miss).

Seasonal measures (A&E every winter) make runs below the mean each winter: a baseline of
whole years, or phases, keeps that from reading as a change of process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

import numpy as np

from carecontracts.problems import Problem, ProblemsError

LIMIT_FACTOR = 2.66  # 3 / d2, d2 = 1.128 for moving ranges of two
D2 = 1.128
SHIFT_RUN = 7
TREND_RUN = 6
MIN_POINTS = 3


class ChartKind(str, Enum):
    """Which control chart was drawn."""

    XMR = "XmR"
    P = "p"
    LANEY = "p′ (Laney)"


class Improvement(str, Enum):
    """Which way is better for the measure."""

    HIGHER = "higher"
    LOWER = "lower"
    NEITHER = "neither"


class Rule(str, Enum):
    OUTSIDE_LIMITS = "outside limits"
    SHIFT = "shift"
    TREND = "trend"
    TWO_OF_THREE = "two of three beyond two sigma"


class Meaning(str, Enum):
    IMPROVEMENT = "improvement"
    CONCERN = "concern"
    NEITHER = "neither"


class Variation(str, Enum):
    """Making Data Count's variation icons, read at the latest point."""

    COMMON = "common cause"
    IMPROVEMENT_HIGH = "special cause improvement (high)"
    IMPROVEMENT_LOW = "special cause improvement (low)"
    CONCERN_HIGH = "special cause concern (high)"
    CONCERN_LOW = "special cause concern (low)"
    NEITHER_HIGH = "special cause (high)"
    NEITHER_LOW = "special cause (low)"


class Assurance(str, Enum):
    """Making Data Count's assurance icons: can the target be relied on?"""

    PASS = "consistently meets the target"
    FAIL = "consistently misses the target"
    HIT_AND_MISS = "hit and miss: the target lies within the process limits"


@dataclass(frozen=True)
class Signal:
    """One special-cause pattern: which rule, which points, which way."""

    rule: Rule
    points: tuple[int, ...]
    upward: bool  # above the mean / increasing
    meaning: Meaning

    def describe(self, labels: Sequence[str]) -> str:
        first, last = labels[self.points[0]], labels[self.points[-1]]
        span = first if first == last else f"{first} to {last}"
        words = {
            Rule.OUTSIDE_LIMITS: f"{'above the upper' if self.upward else 'below the lower'} process limit",
            Rule.SHIFT: f"{len(self.points)} points in a row {'above' if self.upward else 'below'} the mean",
            Rule.TREND: f"{len(self.points)} points in a row {'rising' if self.upward else 'falling'}",
            Rule.TWO_OF_THREE: f"two of three points {'above' if self.upward else 'below'} the two-sigma line",
        }[self.rule]
        return f"{span}: {words} ({self.meaning.value})"


@dataclass(frozen=True)
class Phase:
    """One stretch of the chart with its own centre line and limits.

    An XmR phase has one σ for every point (from the moving range); a p-chart phase has each
    point's own σ_i (`point_sigma`, already multiplied by `sigma_z` on a p′-chart)."""

    start: int
    stop: int  # exclusive
    baseline: int  # points the limits were computed from, counted from `start`
    mean: float
    moving_range: float  # XmR: of the values; p-charts: of the z-scores
    bounds: tuple[float, float] | None  # the scale's own limits (0, 100 for a share)
    point_sigma: np.ndarray | None = field(default=None, compare=False)  # p-charts: σ of each point of the phase, in the values' units
    mean_sigma: float = 0.0  # p-charts: σ at the phase's mean denominator (for the summary and the assurance icon)
    sigma_z: float = 1.0  # p′: the z-scores' spread used (1 on a plain p-chart)
    measured_sigma_z: float = 1.0  # p-charts: the z-scores' spread as measured, whether used or not

    @property
    def sigma(self) -> float:
        if self.point_sigma is not None:
            return self.mean_sigma
        return self.moving_range * LIMIT_FACTOR / 3

    def _clip(self, value: float) -> float:
        if self.bounds is None:
            return value
        return float(min(max(value, self.bounds[0]), self.bounds[1]))

    def _clip_all(self, values: np.ndarray) -> np.ndarray:
        return values if self.bounds is None else np.clip(values, self.bounds[0], self.bounds[1])

    @property
    def upper(self) -> float:
        if self.point_sigma is not None:
            return self._clip(self.mean + 3 * self.mean_sigma)
        return self._clip(self.mean + LIMIT_FACTOR * self.moving_range)

    @property
    def lower(self) -> float:
        if self.point_sigma is not None:
            return self._clip(self.mean - 3 * self.mean_sigma)
        return self._clip(self.mean - LIMIT_FACTOR * self.moving_range)

    @property
    def two_sigma(self) -> tuple[float, float]:
        return self._clip(self.mean - 2 * self.sigma), self._clip(self.mean + 2 * self.sigma)

    def _sigmas(self) -> np.ndarray:
        if self.point_sigma is not None:
            return self.point_sigma
        return np.full(self.stop - self.start, self.sigma)

    @property
    def uppers(self) -> np.ndarray:
        """The upper process limit at each point of the phase."""
        if self.point_sigma is None:
            return np.full(self.stop - self.start, self.upper)
        return self._clip_all(self.mean + 3 * self.point_sigma)

    @property
    def lowers(self) -> np.ndarray:
        """The lower process limit at each point of the phase."""
        if self.point_sigma is None:
            return np.full(self.stop - self.start, self.lower)
        return self._clip_all(self.mean - 3 * self.point_sigma)

    @property
    def two_sigmas(self) -> tuple[np.ndarray, np.ndarray]:
        """The two-sigma lines (low, high) at each point of the phase."""
        if self.point_sigma is None:
            low, high = self.two_sigma
            return np.full(self.stop - self.start, low), np.full(self.stop - self.start, high)
        return self._clip_all(self.mean - 2 * self._sigmas()), self._clip_all(self.mean + 2 * self._sigmas())


@dataclass(frozen=True)
class ControlChart:
    """An XmR or p-chart: the values, its phases with centre lines and limits, the signals
    found, and which kind of chart it is and why."""

    values: np.ndarray
    labels: list[str]
    phases: list[Phase]
    improvement: Improvement
    signals: list[Signal] = field(default_factory=list)
    target: float | None = None
    kind: ChartKind = ChartKind.XMR
    sizes: np.ndarray | None = None  # p-charts: the denominator behind each point
    why: str = ""  # in words: why this kind of chart

    @property
    def uppers(self) -> np.ndarray:
        """The upper process limit at every point."""
        return np.concatenate([p.uppers for p in self.phases])

    @property
    def lowers(self) -> np.ndarray:
        """The lower process limit at every point."""
        return np.concatenate([p.lowers for p in self.phases])

    @property
    def last(self) -> Phase:
        return self.phases[-1]

    # The latest phase's figures, for a chart of one phase.
    @property
    def mean(self) -> float:
        return self.last.mean

    @property
    def moving_range(self) -> float:
        return self.last.moving_range

    @property
    def sigma(self) -> float:
        return self.last.sigma

    @property
    def upper(self) -> float:
        return self.last.upper

    @property
    def lower(self) -> float:
        return self.last.lower

    def flagged(self, meaning: Meaning | None = None) -> set[int]:
        """Indices of points in any signal (of one meaning if given)."""
        return {p for s in self.signals if meaning is None or s.meaning is meaning for p in s.points}

    @property
    def variation(self) -> Variation:
        """The icon for the latest point."""
        latest = len(self.values) - 1
        hits = [s for s in self.signals if latest in s.points]
        if not hits:
            return Variation.COMMON
        signal = hits[0]
        return {
            (Meaning.IMPROVEMENT, True): Variation.IMPROVEMENT_HIGH, (Meaning.IMPROVEMENT, False): Variation.IMPROVEMENT_LOW,
            (Meaning.CONCERN, True): Variation.CONCERN_HIGH, (Meaning.CONCERN, False): Variation.CONCERN_LOW,
            (Meaning.NEITHER, True): Variation.NEITHER_HIGH, (Meaning.NEITHER, False): Variation.NEITHER_LOW,
        }[(signal.meaning, signal.upward)]

    @property
    def assurance(self) -> Assurance | None:
        """Where the target sits against the latest phase's limits (None without a target)."""
        if self.target is None or self.improvement is Improvement.NEITHER:
            return None
        lower, upper = self.last.lower, self.last.upper
        if self.improvement is Improvement.HIGHER:
            if lower >= self.target:
                return Assurance.PASS
            if upper < self.target:
                return Assurance.FAIL
        else:
            if upper <= self.target:
                return Assurance.PASS
            if lower > self.target:
                return Assurance.FAIL
        return Assurance.HIT_AND_MISS


def _meaning(upward: bool, improvement: Improvement) -> Meaning:
    if improvement is Improvement.NEITHER:
        return Meaning.NEITHER
    good = upward if improvement is Improvement.HIGHER else not upward
    return Meaning.IMPROVEMENT if good else Meaning.CONCERN


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of true values."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _phase_signals(x: np.ndarray, phase: Phase, offset: int, improvement: Improvement) -> list[Signal]:
    signals: list[Signal] = []

    def add(rule: Rule, points: Sequence[int], upward: bool) -> None:
        signals.append(Signal(rule, tuple(int(p) + offset for p in points), upward, _meaning(upward, improvement)))

    mean = phase.mean
    # With limits clipped at a bound, a point on the bound is not beyond it.
    for i in np.flatnonzero(x > phase.uppers).tolist():
        add(Rule.OUTSIDE_LIMITS, [i], True)
    for i in np.flatnonzero(x < phase.lowers).tolist():
        add(Rule.OUTSIDE_LIMITS, [i], False)
    for upward, flags in ((True, x > mean), (False, x < mean)):
        for start, stop in _runs(flags):
            if stop - start >= SHIFT_RUN:
                add(Rule.SHIFT, range(start, stop), upward)
    steps = np.diff(x)
    for upward, flags in ((True, steps > 0), (False, steps < 0)):
        for start, stop in _runs(flags):
            if stop - start + 1 >= TREND_RUN:  # k steps join k + 1 points
                add(Rule.TREND, range(start, stop + 1), upward)
    low2, high2 = phase.two_sigmas
    for upward, beyond in ((True, x > high2), (False, x < low2)):
        marked: set[int] = set()
        for start in range(len(x) - 2):
            hits = [j for j in range(start, start + 3) if beyond[j]]
            if len(hits) >= 2:
                marked.update(hits)
        group: list[int] = []
        for j in sorted(marked):  # points at most one apart belong to one signal
            if group and j - group[-1] > 2:
                add(Rule.TWO_OF_THREE, group, upward)
                group = []
            group.append(j)
        if group:
            add(Rule.TWO_OF_THREE, group, upward)
    return signals


def xmr(
    values: Sequence[float] | np.ndarray,
    labels: Sequence[str] | None = None,
    improvement: Improvement = Improvement.NEITHER,
    baseline: int | None = None,
    source: str = "series",
    phases: Sequence[int] = (),
    bounds: tuple[float, float] | None = None,
    target: float | None = None,
) -> ControlChart:
    """The XmR chart of a series.

    `phases` are the indices where a new phase starts (0 is implied); `baseline` the number of
    points at the start of each phase that its limits are computed from (all by default);
    `bounds` clip the limits (0, 100 for a share); `target` gives the assurance icon."""
    x, names, spans = _series(values, labels, baseline, source, phases, "an XmR chart")
    built: list[Phase] = []
    for start, stop, used in spans:
        base = x[start:start + used]
        moving = float(np.abs(np.diff(base)).mean()) if len(base) > 1 else 0.0
        built.append(Phase(start, stop, used, float(base.mean()), moving, bounds))
    return ControlChart(x, names, built, improvement, _signals(x, built, improvement), target, ChartKind.XMR, None, "XmR chart")


def _series(values: Sequence[float] | np.ndarray, labels: Sequence[str] | None, baseline: int | None, source: str, phases: Sequence[int],
            what: str) -> tuple[np.ndarray, list[str], list[tuple[int, int, int]]]:
    """The values checked, their labels, and each phase's (start, stop, baseline points); every
    problem at once."""
    x = np.asarray(values, dtype=np.float64)
    names = list(labels) if labels is not None else [str(i + 1) for i in range(len(x))]
    problems = []
    if len(x) < MIN_POINTS:
        problems.append(Problem(source, f"{len(x)} points", expected=f"at least {MIN_POINTS} points for {what}"))
    elif not np.all(np.isfinite(x)):
        problems.append(Problem(source, "a value is missing or not a number", row=int(np.flatnonzero(~np.isfinite(x))[0]) + 1, expected="a number for every point"))
    if len(names) != len(x):
        problems.append(Problem(source, f"{len(names)} labels for {len(x)} values", expected="one label per value"))
    starts = sorted({0, *(int(p) for p in phases)})
    for start in starts:
        if not 0 <= start < len(x):
            problems.append(Problem(source, f"a phase starting at point {start + 1}", field="phase", value=start, expected=f"a point between 1 and {len(x)}"))
    if baseline is not None and baseline < 2:
        problems.append(Problem(source, f"a baseline of {baseline} points", field="baseline", value=baseline, expected="at least 2 points (one moving range)"))
    if problems:
        raise ProblemsError(problems)
    stops = starts[1:] + [len(x)]
    spans = []
    for start, stop in zip(starts, stops):
        if stop - start < MIN_POINTS:
            raise ProblemsError([Problem(source, f"the phase from {names[start]} has {stop - start} points", field="phase",
                                         expected=f"at least {MIN_POINTS} points in each phase")])
        spans.append((start, stop, min(stop - start, baseline) if baseline else stop - start))
    return x, names, spans


def _signals(x: np.ndarray, phases: list[Phase], improvement: Improvement) -> list[Signal]:
    signals = [s for phase in phases for s in _phase_signals(x[phase.start:phase.stop], phase, phase.start, improvement)]
    signals.sort(key=lambda s: (s.points[0], s.rule.value))
    return signals


def p_chart(
    values: Sequence[float] | np.ndarray,
    sizes: Sequence[float] | np.ndarray,
    labels: Sequence[str] | None = None,
    improvement: Improvement = Improvement.NEITHER,
    baseline: int | None = None,
    source: str = "series",
    phases: Sequence[int] = (),
    bounds: tuple[float, float] | None = (0.0, 100.0),
    target: float | None = None,
    laney: bool | None = None,
) -> ControlChart:
    """The p-chart (or Laney's p′-chart) of percentages `values` (0–100), each with the
    denominator `sizes` behind it.

    `laney` None: each phase uses σ_z where it is over 1 and the plain p-chart otherwise;
    True: always σ_z (Laney's p′ as published, which narrows the limits when σ_z < 1);
    False: the plain p-chart. `phases`, `baseline`, `bounds` and `target` as for `xmr`."""
    x, names, spans = _series(values, labels, baseline, source, phases, "a p-chart")
    n = np.asarray(sizes, dtype=np.float64)
    problems = []
    if len(n) != len(x):
        problems.append(Problem(source, f"{len(n)} denominators for {len(x)} values", field="denominator", expected="one denominator per value"))
    else:
        for i in np.flatnonzero(~(np.isfinite(n) & (n > 0)))[:5].tolist():
            problems.append(Problem(source, f"the denominator behind {names[i]} is {n[i]:g}", row=i + 1, field="denominator", value=float(n[i]),
                                    expected="a count above 0 (records or attendances behind the figure)"))
        for i in np.flatnonzero((x < 0) | (x > 100))[:5].tolist():
            problems.append(Problem(source, f"{names[i]} is {x[i]:g}%", row=i + 1, field="value", value=float(x[i]),
                                    expected="a percentage from 0 to 100 (a p-chart is for proportions)"))
    if problems:
        raise ProblemsError(problems)
    p = x / 100
    built: list[Phase] = []
    for start, stop, used in spans:
        base = slice(start, start + used)
        centre = float(np.sum(p[base] * n[base]) / np.sum(n[base]))  # Σ numerators ÷ Σ denominators
        spread = centre * (1 - centre)
        sigma = np.sqrt(spread / n[start:stop])
        mean_sigma = float(np.sqrt(spread / np.mean(n[start:stop])))
        moving, measured = 0.0, 1.0
        if spread > 0 and used > 1:
            z = (p[base] - centre) / sigma[:used]
            moving = float(np.abs(np.diff(z)).mean())
            measured = moving / D2
        used_z = measured if laney else (max(1.0, measured) if laney is None else 1.0)
        built.append(Phase(start, stop, used, 100 * centre, moving, bounds, 100 * sigma * used_z,
                           100 * mean_sigma * used_z, used_z, measured))
    corrected = any(phase.sigma_z != 1.0 for phase in built)
    kind = ChartKind.LANEY if (laney or corrected) else ChartKind.P
    spreads = ", ".join(f"{phase.measured_sigma_z:.2f}" for phase in built)
    several = "in a phase " if len(built) > 1 else ""
    if laney:
        why = f"p′-chart (Laney), as asked: each point's binomial σ times the spread of the z-scores (σ_z = {spreads})"
    elif laney is False:
        why = f"p-chart, as asked: limits from binomial sampling alone (σ_z = {spreads}, not used)"
    elif corrected:
        why = (f"p′-chart (Laney): the figures vary {several}by more than binomial sampling would give (σ_z = {spreads}, over 1), "
               "so each point's binomial σ is multiplied by σ_z; a plain p-chart's limits would be too narrow")
    else:
        why = f"p-chart: the figures vary no more than binomial sampling would give (σ_z = {spreads}, at most 1)"
    return ControlChart(x, names, built, improvement, _signals(x, built, improvement), target, kind, n, why)
