"""A density discontinuity test at the threshold (McCrary 2008).

A fine histogram is smoothed by local linear regression on each side of the threshold
with a triangular kernel; θ = ln f̂(right) − ln f̂(left) is the jump in log density at the
threshold, with standard error √((24/5)·(1/f̂₊ + 1/f̂₋)/(n·h)). If nobody moves their value
across the threshold the density is continuous there and θ/se is close to standard normal.
The first-step bin width and the bandwidth follow McCrary's rules of thumb; on values
recorded on a grid (whole days) the bin width is a whole number of grid steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from carecontracts.audit.histogram import Histogram, Scale, Side, from_values
from carecontracts.problems import Problem, ProblemsError

KERNEL_CONSTANT = 24 / 5  # ∫K² terms of the triangular kernel at a boundary, McCrary (2008) eq. 5
MIN_BINS_EACH_SIDE = 3


@dataclass(frozen=True)
class Discontinuity:
    """The jump in log density at the threshold and its z-test."""

    threshold: float
    scale: Scale
    side: Side
    theta: float  # ln f(right of threshold) − ln f(left)
    se: float
    density_left: float
    density_right: float
    bin_width: float
    bandwidth: float
    n: int
    histogram: Histogram

    @property
    def z(self) -> float:
        return self.theta / self.se

    @property
    def p_value(self) -> float:
        """Two-sided."""
        return float(2 * stats.norm.sf(abs(self.z)))

    @property
    def towards_target(self) -> bool:
        """The density is higher on the side that meets the target."""
        return self.theta < 0 if self.side is Side.BELOW else self.theta > 0

    def significant(self, alpha: float = 0.05) -> bool:
        """A jump towards the target side, two-sided test at `alpha`."""
        return self.p_value < alpha and self.towards_target

    def sentence(self) -> str:
        """The jump in plain words."""
        ratio = math.exp(-self.theta) if self.side is Side.BELOW else math.exp(self.theta)
        near, far = ("just under", "just over") if self.side is Side.BELOW else ("just over", "just under")
        return (f"the density of {self.scale.counted} {near} {self.scale.amount(self.threshold)} is {ratio:.2f} times that {far} "
                f"(log difference {self.theta:+.3f}, standard error {self.se:.3f}, z = {self.z:+.2f}, p = {self.p_value:.3g}; "
                f"bandwidth {self.bandwidth:.3g})")


def grid_step(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The step of the grid the values are recorded on (1/7 for whole days in weeks), or 0
    when they are continuous (most values distinct)."""
    n = len(values) if weights is None else float(weights.sum())
    distinct = np.unique(values)
    if len(distinct) < 2 or len(distinct) > n / 2:
        return 0.0
    steps = np.diff(distinct)
    return float(steps.min())


def first_step_width(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """McCrary's first-step bin width 2σ̂n^(−1/2), a whole number of grid steps when on a grid."""
    mass = np.ones_like(values) if weights is None else weights
    n = float(mass.sum())
    mean = float(np.sum(values * mass) / n)
    sd = math.sqrt(float(np.sum(mass * (values - mean) ** 2)) / max(n - 1, 1))
    width = 2 * sd / math.sqrt(n)
    step = grid_step(values, weights)
    if step > 0:
        width = step * max(1, round(width / step))
    return width


def _side_fit(x: np.ndarray, y: np.ndarray, at: float, bandwidth: float) -> float:
    """Local linear estimate at `at` from one side, triangular kernel."""
    weights = np.maximum(0.0, 1 - np.abs(x - at) / bandwidth)
    use = weights > 0
    if use.sum() < 2:
        return math.nan
    sw = np.sqrt(weights[use])
    design = np.column_stack([np.ones(use.sum()), x[use] - at]) * sw[:, None]
    coefficients, *_ = np.linalg.lstsq(design, y[use] * sw, rcond=None)
    return float(coefficients[0])


def _rule_of_thumb(x: np.ndarray, y: np.ndarray) -> float:
    """McCrary's bandwidth for one side: 3.348·(σ̃²·(range)/Σ f̃''²)^(1/5) from a quartic fit."""
    degree = min(4, len(x) - 1)
    coefficients = np.polyfit(x, y, degree)
    residual = y - np.polyval(coefficients, x)
    sigma2 = float(np.mean(residual**2))
    second = np.polyval(np.polyder(coefficients, 2), x) if degree >= 2 else np.zeros_like(x)
    curvature = float(np.sum(second**2))
    span = float(x.max() - x.min())
    if curvature <= 0 or sigma2 <= 0:
        return span
    return 3.348 * (sigma2 * span / curvature) ** 0.2


def density_test(
    data: Histogram | Sequence[float] | np.ndarray,
    threshold: float,
    side: Side,
    scale: Scale = Scale(),
    bin_width: float | None = None,
    bandwidth: float | None = None,
    source: str = "discontinuity",
    weights: Sequence[float] | np.ndarray | None = None,
) -> Discontinuity:
    """McCrary's test on patient-level values (binned here; `weights` counts each value that
    many times) or on a histogram of closed bins."""
    if isinstance(data, Histogram):
        bins = data.take(data.closed)
        bins.check_threshold(threshold, source)
    else:
        values = np.asarray(data, dtype=np.float64)
        mass = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
        finite = np.isfinite(values)
        values, mass = values[finite], mass[finite]
        if values.size < 2:
            raise ProblemsError([Problem(source, f"{values.size} numeric values", expected="at least two numbers")])
        width = bin_width or first_step_width(values, mass)
        bins = from_values(values, threshold, width, side, source, weights=mass)
    n = bins.total
    x = bins.centres
    y = bins.counts / (n * bins.widths)
    left = bins.upper <= threshold + 1e-9 * max(1.0, abs(threshold))
    right = ~left
    if left.sum() < MIN_BINS_EACH_SIDE or right.sum() < MIN_BINS_EACH_SIDE:
        raise ProblemsError([Problem(source, f"{int(left.sum())} bins below and {int(right.sum())} above {scale.amount(threshold)}",
                                     expected=f"at least {MIN_BINS_EACH_SIDE} bins on each side of the threshold")])
    width = float(np.median(bins.widths))
    if bandwidth is None:
        bandwidth = (_rule_of_thumb(x[left], y[left]) + _rule_of_thumb(x[right], y[right])) / 2
    bandwidth = max(bandwidth, (MIN_BINS_EACH_SIDE + 0.5) * width)
    f_left = _side_fit(x[left], y[left], threshold, bandwidth)
    f_right = _side_fit(x[right], y[right], threshold, bandwidth)
    if not (f_left > 0 and f_right > 0):
        raise ProblemsError([Problem(source, f"too few {scale.counted} near {scale.amount(threshold)} to estimate the density on both sides",
                                     expected="values on both sides of the threshold")])
    theta = math.log(f_right) - math.log(f_left)
    se = math.sqrt(KERNEL_CONSTANT / (n * bandwidth) * (1 / f_right + 1 / f_left))
    return Discontinuity(threshold, scale, side, theta, se, f_left, f_right, width, bandwidth, int(round(n)), bins)
