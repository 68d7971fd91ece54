"""Distributions as histograms: patient-level values binned on the threshold, or counts
already binned (weeks 0–1 … 52+), checked so that the statistics never see bad bins."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Sequence

import numpy as np

from carecontracts.problems import Problem, ProblemsError, raise_if_any

MAX_BINS = 20_000


class Side(str, Enum):
    """Which side of the threshold meets the target.

    `below`: a wait meets its standard at or under the threshold (within 18 weeks means at
    most 18 weeks), so bins are closed on the right, (17, 18]. `above`: a share meets its
    target at or over the threshold (95% or more), so bins are closed on the left, [95, 95.5).
    Bunching is expected on the side that meets the target.
    """

    BELOW = "below"
    ABOVE = "above"


def number(value: float) -> str:
    """A bin edge for people: at most two decimal places (17.43, not 17.428571)."""
    return f"{round(value, 2):g}"


@dataclass(frozen=True)
class Scale:
    """How to speak of the values: the unit and who or what is counted."""

    unit: str = ""  # "weeks", "days", "minutes", "%"
    counted: str = "records"  # "patients", "provider-months"
    verb: str = "had"  # "waited", "reported"

    def amount(self, value: float) -> str:
        """A value with its unit: `18 weeks`, `95%`."""
        text = number(value)
        if not self.unit:
            return text
        return text + self.unit if self.unit == "%" else f"{text} {self.unit}"

    def span(self, lower: float, upper: float) -> str:
        """A bin in words: `17–18 weeks`, `95–95.5%`, `52+ weeks`."""
        if math.isinf(upper):
            return self.amount(lower).replace(number(lower), number(lower) + "+", 1)
        return f"{number(lower)}–" + self.amount(upper)


@dataclass(frozen=True)
class Histogram:
    """Counts in bins [lower, upper) or (lower, upper] by `side`; the last bin may be open."""

    lower: np.ndarray
    upper: np.ndarray
    counts: np.ndarray
    side: Side

    def __post_init__(self) -> None:
        if not (len(self.lower) == len(self.upper) == len(self.counts)):
            raise ValueError("lower, upper and counts must have the same length")

    @property
    def centres(self) -> np.ndarray:
        return (self.lower + self.upper) / 2

    @property
    def widths(self) -> np.ndarray:
        return self.upper - self.lower

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    @property
    def closed(self) -> np.ndarray:
        """Bins with two finite edges (an open-ended `52+` bin has no centre to fit)."""
        return np.isfinite(self.lower) & np.isfinite(self.upper)

    def take(self, keep: np.ndarray) -> "Histogram":
        """Only the bins where `keep` is true."""
        return Histogram(self.lower[keep], self.upper[keep], self.counts[keep], self.side)

    def with_counts(self, counts: np.ndarray) -> "Histogram":
        return Histogram(self.lower, self.upper, np.asarray(counts, dtype=np.float64), self.side)

    def check_threshold(self, threshold: float, source: str = "threshold") -> None:
        """The threshold must lie inside the data and on a bin edge, with bins on both sides."""
        low, high = float(self.lower.min()), float(self.upper.max())
        if not (low < threshold < high):
            raise ProblemsError([Problem(source, f"threshold {threshold:g} is outside the data's range {low:g} to {high:g}",
                                         field="threshold", value=threshold, expected=f"a value strictly between {low:g} and {high:g}")])
        edges = np.concatenate([self.lower, self.upper])
        if not np.any(np.isclose(edges, threshold, rtol=0, atol=1e-9 * max(1.0, abs(threshold)))):
            inside = int(np.flatnonzero((self.lower < threshold) & (self.upper > threshold))[0])
            raise ProblemsError([Problem(source, f"threshold {threshold:g} falls inside the bin {self.lower[inside]:g}–{self.upper[inside]:g}",
                                         field="threshold", value=threshold, expected="a bin edge, so that each bin is wholly on one side")])


def _grid_edges(low: float, high: float, threshold: float, width: float) -> np.ndarray:
    """Edges of width `width` with one edge on the threshold, covering [low, high]."""
    below = max(1, math.ceil((threshold - low) / width - 1e-9))
    above = max(1, math.ceil((high - threshold) / width - 1e-9))
    if below + above > MAX_BINS:
        raise ProblemsError([Problem("bin width", f"{below + above:,} bins of width {width:g} would be needed",
                                     field="bin_width", value=width, expected=f"a width giving at most {MAX_BINS:,} bins")])
    return threshold + width * np.arange(-below, above + 1, dtype=np.float64)


def bin_index(values: np.ndarray, edges: np.ndarray, side: Side) -> np.ndarray:
    """Bin of each value on the edges: closed on the right for `below`, on the left for `above`.
    Values on the outermost edges fall in the outermost bins."""
    width = edges[1] - edges[0]
    position = np.round((values - edges[0]) / width, 9)
    index = np.ceil(position) - 1 if side is Side.BELOW else np.floor(position)
    return np.clip(index, 0, len(edges) - 2).astype(np.int64)


def from_values(
    values: Sequence[float] | np.ndarray,
    threshold: float,
    width: float,
    side: Side,
    source: str = "values",
    weights: Sequence[float] | np.ndarray | None = None,
) -> Histogram:
    """Bin patient-level values (waits, percentages) in bins of `width` with an edge on the
    threshold; `weights` counts each value that many times (values already tallied)."""
    data = np.asarray(values, dtype=np.float64)
    mass = np.ones_like(data) if weights is None else np.asarray(weights, dtype=np.float64)
    finite = np.isfinite(data)
    data, mass = data[finite], mass[finite]
    problems: list[Problem] = []
    if data.size == 0:
        problems.append(Problem(source, "no numeric values", expected="at least one number"))
    if not (width > 0 and math.isfinite(width)):
        problems.append(Problem(source, f"bin width {width:g} is not positive", field="bin_width", value=width, expected="a positive number"))
    raise_if_any(problems)
    low, high = float(data.min()), float(data.max())
    if not (low < threshold < high) and not (side is Side.BELOW and threshold == low) and not (side is Side.ABOVE and threshold == high):
        raise ProblemsError([Problem(source, f"threshold {threshold:g} is outside the data's range {low:g} to {high:g}",
                                     field="threshold", value=threshold, expected=f"a value between {low:g} and {high:g}")])
    edges = _grid_edges(low, high, threshold, width)
    counts = np.bincount(bin_index(data, edges, side), weights=mass, minlength=len(edges) - 1).astype(np.float64)
    return Histogram(edges[:-1], edges[1:], counts, side)


def from_counts(
    lower: Sequence[float | None] | np.ndarray,
    upper: Sequence[float | None] | np.ndarray,
    counts: Sequence[float | None] | np.ndarray,
    side: Side,
    source: str = "counts",
    rows: Sequence[int] | None = None,
    fields: tuple[str, str, str] = ("lower", "upper", "count"),
) -> Histogram:
    """Counts already binned; every bad bin is reported at once: a missing or non-numeric
    edge or count, a negative count, an empty bin, bins out of order or overlapping.
    A missing upper edge on the last bin means an open-ended bin (`52+`)."""
    n = len(counts)
    if not (len(lower) == len(upper) == n):
        raise ProblemsError([Problem(source, f"{len(lower)} lower edges, {len(upper)} upper edges and {n} counts", expected="one of each per bin")])
    where = list(rows) if rows is not None else list(range(1, n + 1))
    low_name, high_name, count_name = fields
    problems: list[Problem] = []

    def number(value: float | None, row: int, name: str, allow_missing: bool = False) -> float:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if not allow_missing:
                problems.append(Problem(source, "missing value", row=row, field=name, expected="a number"))
            return math.inf if allow_missing else math.nan
        return float(value)

    lo = np.array([number(v, where[i], low_name) for i, v in enumerate(lower)], dtype=np.float64)
    hi = np.array([number(v, where[i], high_name, allow_missing=i == n - 1) for i, v in enumerate(upper)], dtype=np.float64)
    cs = np.array([number(v, where[i], count_name) for i, v in enumerate(counts)], dtype=np.float64)
    if n == 0:
        problems.append(Problem(source, "no bins", expected="rows of lower edge, upper edge and count"))
    for i in range(n):
        if cs[i] < 0:
            problems.append(Problem(source, f"negative count {cs[i]:g}", row=where[i], field=count_name, value=cs[i], expected="a count of 0 or more"))
        if lo[i] >= hi[i]:
            problems.append(Problem(source, f"bin {lo[i]:g}–{hi[i]:g} is empty or backwards", row=where[i], field=high_name, value=hi[i],
                                    expected=f"an upper edge above the lower edge {lo[i]:g}"))
        if i and lo[i] < lo[i - 1]:
            problems.append(Problem(source, f"bins out of order: {lo[i]:g} comes after {lo[i - 1]:g}", row=where[i], field=low_name, value=lo[i],
                                    expected="bins in increasing order"))
        elif i and lo[i] < hi[i - 1]:
            problems.append(Problem(source, f"bin {lo[i]:g}–{hi[i]:g} overlaps the previous bin {lo[i - 1]:g}–{hi[i - 1]:g}", row=where[i], field=low_name,
                                    value=lo[i], expected=f"a lower edge at or above {hi[i - 1]:g}"))
    raise_if_any(problems)
    if cs.sum() <= 0:
        raise ProblemsError([Problem(source, "every count is zero", field=count_name, expected="at least one bin with a count above zero")])
    return Histogram(lo, hi, cs, side)


def nice_width(raw: float, step: float = 0.0) -> float:
    """A bin width of 1, 2 or 5 × 10^k near `raw`, a whole number of grid steps if on a grid."""
    if not (raw > 0 and math.isfinite(raw)):
        return step or 1.0
    power = 10 ** math.floor(math.log10(raw))
    width = min((m * power for m in (1, 2, 5, 10)), key=lambda w: abs(math.log(w / raw)))
    if step > 0:
        width = step * max(1, round(width / step))
    return float(width)


def default_width(values: np.ndarray, weights: np.ndarray | None = None, step: float = 0.0) -> float:
    """The Freedman–Diaconis width 2·IQR·n^(−1/3), made nice."""
    mass = np.ones_like(values) if weights is None else weights
    order = np.argsort(values)
    cumulative = np.cumsum(mass[order]) / mass.sum()
    q1, q3 = (float(values[order][np.searchsorted(cumulative, q)]) for q in (0.25, 0.75))
    return nice_width(2 * (q3 - q1) * float(mass.sum()) ** (-1 / 3), step)
