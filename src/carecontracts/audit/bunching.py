"""Threshold bunching: excess mass just on the target side of a threshold, measured
against a smooth counterfactual (the polynomial bunching estimator of Chetty et al. 2011).

Bin counts are fitted by a polynomial in the bin centre plus one dummy for every excluded
bin: the `window` bins next to the threshold on the side that meets the target, where the
excess sits, and `missing` bins beyond it, where it came from (waits pulled back from
18–24 weeks to just under 18). The polynomial part is the counterfactual; the excess is
observed − counterfactual over the window. The interval is a percentile bootstrap over
multinomial resamples of the counts (resampling patients), all replicates fitted at once
by one least-squares solve. Bunching is reported when the interval lies wholly above 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from carecontracts.audit.histogram import Histogram, Scale, Side
from carecontracts.problems import Problem, ProblemsError

DEFAULT_DEGREE = 7
DEFAULT_REPLICATES = 400
MAX_AUTO_MISSING = 12
MIN_SPAN_BINS = 12


@dataclass(frozen=True)
class Bunching:
    """The estimate, its interval, and what is needed to draw it."""

    histogram: Histogram  # the bins fitted (closed bins inside the fit range)
    threshold: float
    scale: Scale
    degree: int
    window: np.ndarray  # bool per bin: the excess window next to the threshold
    missing: np.ndarray  # bool per bin: where the excess is taken to have come from
    counterfactual: np.ndarray  # per bin
    excess: float  # B: observed − counterfactual over the window
    interval: tuple[float, float]
    ratio: float  # observed ÷ counterfactual over the window
    ratio_interval: tuple[float, float]
    normalised: float  # b: excess in bins' worth of the counterfactual at the threshold
    missing_mass: float  # counterfactual − observed over the missing bins
    p_value: float  # bootstrap, two-sided, for excess = 0
    replicates: int
    level: float

    @property
    def significant(self) -> bool:
        """Excess mass on the target side: the whole interval lies above zero."""
        return self.interval[0] > 0

    @property
    def nearest(self) -> tuple[int, int]:
        """Index of the bin just on the target side of the threshold and of the bin just beyond."""
        bins = self.histogram
        if bins.side is Side.BELOW:
            inside = int(np.flatnonzero(bins.upper <= self.threshold + 1e-9)[-1])
            outside = int(np.flatnonzero(bins.lower >= self.threshold - 1e-9)[0])
        else:
            inside = int(np.flatnonzero(bins.lower >= self.threshold - 1e-9)[0])
            outside = int(np.flatnonzero(bins.upper <= self.threshold + 1e-9)[-1])
        return inside, outside

    @property
    def neighbour_ratio(self) -> float:
        """Observed count just on the target side ÷ observed count just beyond."""
        inside, outside = self.nearest
        beyond = self.histogram.counts[outside]
        return float(self.histogram.counts[inside] / beyond) if beyond > 0 else float("inf")

    def sentence(self) -> str:
        """The effect in plain words and numbers."""
        bins, scale = self.histogram, self.scale
        inside, outside = self.nearest
        window_lo = float(bins.lower[self.window].min())
        window_hi = float(bins.upper[self.window].max())
        near = scale.span(float(bins.lower[inside]), float(bins.upper[inside]))
        far = scale.span(float(bins.lower[outside]), float(bins.upper[outside]))
        ratio = self.neighbour_ratio
        times = "infinitely many" if not np.isfinite(ratio) else f"{ratio:.1f} times as many"
        lo, hi = self.ratio_interval
        text = (f"{times} {scale.counted} {scale.verb} {near} as {far}; "
                f"{scale.span(window_lo, window_hi)} held about {self.ratio:.1f} times the expected number "
                f"({bins.counts[self.window].sum():,.0f} against {self.counterfactual[self.window].sum():,.0f} expected; "
                f"{self.level:.0%} interval {lo:.2f} to {hi:.2f} times)")
        if self.significant:
            text += f": an excess of about {self.excess:,.0f} {scale.counted} just {'under' if bins.side is Side.BELOW else 'over'} {scale.amount(self.threshold)}"
        else:
            text += ": no more than chance would give"
        return text + "."


def _design(centres: np.ndarray, threshold: float, degree: int, excluded: np.ndarray) -> np.ndarray:
    """Polynomial in the centred, scaled bin centre plus a dummy per excluded bin."""
    spread = float(np.max(np.abs(centres - threshold))) or 1.0
    z = (centres - threshold) / spread
    poly = np.vander(z, degree + 1, increasing=True)
    dummies = np.zeros((len(centres), int(excluded.sum())))
    dummies[np.flatnonzero(excluded), np.arange(int(excluded.sum()))] = 1.0
    return np.hstack([poly, dummies])


def _counterfactual(counts: np.ndarray, centres: np.ndarray, threshold: float, degree: int, excluded: np.ndarray) -> np.ndarray:
    """Polynomial part of the fit for each column of `counts` (bins × replicates)."""
    design = _design(centres, threshold, degree, excluded)
    coefficients = np.linalg.pinv(design) @ counts
    return design[:, : degree + 1] @ coefficients[: degree + 1]


def _sides(bins: Histogram, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of bins on the target side (nearest first) and beyond (nearest first)."""
    tol = 1e-9 * max(1.0, abs(threshold))
    below = np.flatnonzero(bins.upper <= threshold + tol)[::-1]
    above = np.flatnonzero(bins.lower >= threshold - tol)
    return (below, above) if bins.side is Side.BELOW else (above, below)


def default_fit_range(histogram: Histogram, threshold: float) -> tuple[float, float]:
    """As far beyond the threshold as the data reach on its shorter side, and at least
    MIN_SPAN_BINS bins each way: a low-degree polynomial fits a span near the threshold
    well, where far tails (waits of a year) would bend it."""
    closed = histogram.take(histogram.closed)
    low, high = float(closed.lower.min()), float(closed.upper.max())
    width = float(np.median(closed.widths))
    span = max(min(threshold - low, high - threshold), MIN_SPAN_BINS * width)
    return threshold - span, threshold + span


def estimate_bunching(
    histogram: Histogram,
    threshold: float,
    scale: Scale = Scale(),
    degree: int = DEFAULT_DEGREE,
    window: int = 1,
    missing: int | Literal["auto"] = "auto",
    fit_range: tuple[float, float] | None = None,
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
    level: float = 0.95,
    source: str = "bunching",
) -> Bunching:
    """Estimate the excess mass in the `window` bins on the target side of `threshold`.

    `fit_range` limits the bins fitted (default: `default_fit_range`).
    `missing="auto"` excludes the fewest bins beyond the threshold whose shortfall against
    the counterfactual covers the excess (the excess has to come from somewhere), at most
    MAX_AUTO_MISSING; the choice is then held fixed in the bootstrap.
    """
    histogram.check_threshold(threshold, source)
    keep = histogram.closed
    low, high = fit_range if fit_range is not None else default_fit_range(histogram, threshold)
    keep &= (histogram.lower >= low - 1e-9) & (histogram.upper <= high + 1e-9)
    bins = histogram.take(keep)
    inside, beyond = _sides(bins, threshold)
    problems: list[Problem] = []
    if window < 1:
        problems.append(Problem(source, f"window of {window} bins", field="window", value=window, expected="1 or more bins"))
    if len(inside) < window:
        problems.append(Problem(source, f"only {len(inside)} bins on the target side of {scale.amount(threshold)}", field="window", value=window,
                                expected=f"at least {window} bins there"))
    if len(beyond) < 1:
        problems.append(Problem(source, f"no bins beyond {scale.amount(threshold)}", field="threshold", value=threshold, expected="bins on both sides"))
    if problems:
        raise ProblemsError(problems)
    if bins.total <= 0:
        raise ProblemsError([Problem(source, "no counts in the bins fitted", expected="counts near the threshold")])
    counts, centres = bins.counts, bins.centres
    in_window = np.zeros(len(counts), dtype=bool)
    in_window[inside[:window]] = True

    def fitted(k: int) -> tuple[np.ndarray, np.ndarray, int]:
        excluded = in_window.copy()
        excluded[beyond[:k]] = True
        free = len(counts) - int(excluded.sum())
        usable = min(degree, free - 2)
        if usable < 1:
            raise ProblemsError([Problem(source, f"{len(counts)} bins are too few to fit a counterfactual with {int(excluded.sum())} excluded",
                                         expected="more bins (a smaller bin width or a wider fit range)")])
        return _counterfactual(counts[:, None], centres, threshold, usable, excluded)[:, 0], excluded, usable

    if missing == "auto":
        limit = min(MAX_AUTO_MISSING, max(0, len(beyond) - 3))
        chosen = 0  # no shortfall anywhere covers the excess: nothing to exclude beyond
        for k in range(0, limit + 1):
            expected, excluded, _ = fitted(k)
            excess = float((counts - expected)[in_window].sum())
            shortfall = float((expected - counts)[excluded & ~in_window].sum())
            if shortfall >= excess:
                chosen = k
                break
    else:
        chosen = int(missing)
    expected, excluded, used = fitted(chosen)
    in_missing = excluded & ~in_window

    rng = np.random.default_rng(seed)
    total = int(round(bins.total))
    draws = rng.multinomial(total, counts / counts.sum(), size=replicates).T.astype(np.float64)  # bins × replicates
    boot = _counterfactual(draws, centres, threshold, used, excluded)
    boot_excess = (draws - boot)[in_window].sum(axis=0)
    boot_expected = boot[in_window].sum(axis=0)
    boot_ratio = np.divide(draws[in_window].sum(axis=0), boot_expected, out=np.full(replicates, np.nan), where=boot_expected > 0)
    tail = (1 - level) / 2
    observed_window = float(counts[in_window].sum())
    expected_window = float(expected[in_window].sum())
    excess = observed_window - expected_window
    per_bin = expected_window / window
    p_value = 2 * min(float(np.mean(boot_excess <= 0)), float(np.mean(boot_excess >= 0)))
    return Bunching(
        histogram=bins,
        threshold=threshold,
        scale=scale,
        degree=used,
        window=in_window,
        missing=in_missing,
        counterfactual=expected,
        excess=excess,
        interval=(float(np.quantile(boot_excess, tail)), float(np.quantile(boot_excess, 1 - tail))),
        ratio=observed_window / expected_window if expected_window > 0 else float("inf"),
        ratio_interval=(float(np.nanquantile(boot_ratio, tail)), float(np.nanquantile(boot_ratio, 1 - tail))),
        normalised=excess / per_bin if per_bin > 0 else float("inf"),
        missing_mass=float((expected - counts)[in_missing].sum()),
        p_value=max(p_value, 1 / replicates),
        replicates=replicates,
        level=level,
    )
