"""Statistical process control: XmR charts with the NHS "Making Data Count" rules.

Process limits are mean ± 2.66 × the mean moving range (3σ, σ = mR̄/1.128); two-sigma
lines at mean ± (2/3)·2.66·mR̄. Four rules mark special-cause variation:

- a point beyond the process limits;
- a shift: a run of 7 or more consecutive points on one side of the mean (a point on the
  mean ends a run);
- a trend: a run of 6 or more consecutive points each higher (or each lower) than the one
  before (an equal value ends a run);
- two of three consecutive points beyond the same two-sigma line.

Each signal is an improvement or a concern by the measure's direction of improvement.
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
class XmR:
    """An XmR chart: the values, centre line, limits and the signals found."""

    values: np.ndarray
    labels: list[str]
    mean: float
    moving_range: float
    improvement: Improvement
    signals: list[Signal] = field(default_factory=list)

    @property
    def sigma(self) -> float:
        return self.moving_range * LIMIT_FACTOR / 3

    @property
    def upper(self) -> float:
        return self.mean + LIMIT_FACTOR * self.moving_range

    @property
    def lower(self) -> float:
        return self.mean - LIMIT_FACTOR * self.moving_range

    def flagged(self, meaning: Meaning | None = None) -> set[int]:
        """Indices of points in any signal (of one meaning if given)."""
        return {p for s in self.signals if meaning is None or s.meaning is meaning for p in s.points}


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


def xmr(
    values: Sequence[float] | np.ndarray,
    labels: Sequence[str] | None = None,
    improvement: Improvement = Improvement.NEITHER,
    baseline: int | None = None,
    source: str = "series",
) -> XmR:
    """The XmR chart of a series, with limits from the first `baseline` points (all by default)."""
    x = np.asarray(values, dtype=np.float64)
    names = list(labels) if labels is not None else [str(i + 1) for i in range(len(x))]
    problems = []
    if len(x) < MIN_POINTS:
        problems.append(Problem(source, f"{len(x)} points", expected=f"at least {MIN_POINTS} points for an XmR chart"))
    elif not np.all(np.isfinite(x)):
        problems.append(Problem(source, "a value is missing or not a number", row=int(np.flatnonzero(~np.isfinite(x))[0]) + 1, expected="a number for every point"))
    if len(names) != len(x):
        problems.append(Problem(source, f"{len(names)} labels for {len(x)} values", expected="one label per value"))
    if problems:
        raise ProblemsError(problems)
    base = x[: baseline or len(x)]
    mean = float(base.mean())
    moving = float(np.abs(np.diff(base)).mean()) if len(base) > 1 else 0.0
    chart = XmR(x, names, mean, moving, improvement)
    signals: list[Signal] = []

    def add(rule: Rule, points: Sequence[int], upward: bool) -> None:
        signals.append(Signal(rule, tuple(int(p) for p in points), upward, _meaning(upward, improvement)))

    for i in np.flatnonzero(x > chart.upper).tolist():
        add(Rule.OUTSIDE_LIMITS, [i], True)
    for i in np.flatnonzero(x < chart.lower).tolist():
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
    two_sigma = 2 * chart.sigma
    for upward, beyond in ((True, x > mean + two_sigma), (False, x < mean - two_sigma)):
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
    signals.sort(key=lambda s: (s.points[0], s.rule.value))
    return XmR(x, names, mean, moving, improvement, signals)
