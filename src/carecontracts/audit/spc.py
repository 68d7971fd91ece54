"""Statistical process control: XmR charts with the NHS "Making Data Count" rules.

Process limits are mean ± 2.66 × the mean moving range (3σ, σ = mR̄/1.128); two-sigma
lines at mean ± (2/3)·2.66·mR̄. A chart may be split into phases (a new phase starts where
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

Each signal is an improvement or a concern by the measure's direction of improvement. The
variation icon reads the latest point (special cause high or low, improvement or concern, or
common cause) and the assurance icon compares the latest phase's limits with a target
(consistently met, consistently missed, or hit and miss).

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
SHIFT_RUN = 7
TREND_RUN = 6
MIN_POINTS = 3


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
    """One stretch of the chart with its own centre line and limits."""

    start: int
    stop: int  # exclusive
    baseline: int  # points the limits were computed from, counted from `start`
    mean: float
    moving_range: float
    bounds: tuple[float, float] | None  # the scale's own limits (0, 100 for a share)

    @property
    def sigma(self) -> float:
        return self.moving_range * LIMIT_FACTOR / 3

    def _clip(self, value: float) -> float:
        if self.bounds is None:
            return value
        return float(min(max(value, self.bounds[0]), self.bounds[1]))

    @property
    def upper(self) -> float:
        return self._clip(self.mean + LIMIT_FACTOR * self.moving_range)

    @property
    def lower(self) -> float:
        return self._clip(self.mean - LIMIT_FACTOR * self.moving_range)

    @property
    def two_sigma(self) -> tuple[float, float]:
        return self._clip(self.mean - 2 * self.sigma), self._clip(self.mean + 2 * self.sigma)


@dataclass(frozen=True)
class XmR:
    """An XmR chart: the values, its phases with centre lines and limits, and the signals found."""

    values: np.ndarray
    labels: list[str]
    phases: list[Phase]
    improvement: Improvement
    signals: list[Signal] = field(default_factory=list)
    target: float | None = None

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
    for i in np.flatnonzero(x > phase.upper).tolist():
        add(Rule.OUTSIDE_LIMITS, [i], True)
    for i in np.flatnonzero(x < phase.lower).tolist():
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
    low2, high2 = phase.two_sigma
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
) -> XmR:
    """The XmR chart of a series.

    `phases` are the indices where a new phase starts (0 is implied); `baseline` the number of
    points at the start of each phase that its limits are computed from (all by default);
    `bounds` clip the limits (0, 100 for a share); `target` gives the assurance icon."""
    x = np.asarray(values, dtype=np.float64)
    names = list(labels) if labels is not None else [str(i + 1) for i in range(len(x))]
    problems = []
    if len(x) < MIN_POINTS:
        problems.append(Problem(source, f"{len(x)} points", expected=f"at least {MIN_POINTS} points for an XmR chart"))
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
    built: list[Phase] = []
    for start, stop in zip(starts, stops):
        if stop - start < MIN_POINTS:
            raise ProblemsError([Problem(source, f"the phase from {names[start]} has {stop - start} points", field="phase",
                                         expected=f"at least {MIN_POINTS} points in each phase")])
        used = min(stop - start, baseline) if baseline else stop - start
        base = x[start:start + used]
        moving = float(np.abs(np.diff(base)).mean()) if len(base) > 1 else 0.0
        built.append(Phase(start, stop, used, float(base.mean()), moving, bounds))
    signals = [s for phase in built for s in _phase_signals(x[phase.start:phase.stop], phase, phase.start, improvement)]
    signals.sort(key=lambda s: (s.points[0], s.rule.value))
    return XmR(x, names, built, improvement, signals, target)
