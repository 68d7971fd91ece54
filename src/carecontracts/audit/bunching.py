"""Threshold bunching: excess mass just on the target side of a threshold, measured against a
smooth counterfactual fitted to the counts around it, and set against the same estimate at
placebo thresholds where no target exists.

The estimator, stated so that it can be checked:

1. **Bins.** The closed bins (an open `52+` bin has no centre) within `span` bins of the
   threshold on each side. Bins of a known distortion are kept out of every fit: another
   target's spike and the hole beside it, a calendar effect (the Christmas referral trough),
   a heap at a boundary (shares of exactly 100%), any range the user names.
2. **Window.** The `window` bins next to the threshold on the side that meets the target
   (waits of 17–18 weeks for an 18-week standard; 95–95.5% for a 95% one): where the excess
   is measured.
3. **Model.** Counts are negative binomial (NB2): log E[count] = log(bin width) + a
   polynomial in the bin centre, Var = μ + αμ². Fitted on the other bins; the polynomial
   part is the counterfactual, always positive, and noisy bins weigh less. α is estimated
   (Pearson moments), so week-to-week wobbles that a Poisson model would call significant
   widen the interval instead.
4. **Degree.** 1 to `max_degree`, the one with the smallest AIC.
5. **Missing mass (integration rule).** The excess came from beyond the threshold (waits of
   18–24 weeks recorded as 17–18), so bins there are short. Beyond bins are left out of the
   fit one at a time, nearest first, until their shortfall against the counterfactual covers
   the excess (Kleven 2016's integration constraint); at most `max_missing` bins, never
   across a bin excluded for another reason. No exclusion when there is no excess.
6. **Interval.** A parametric bootstrap: counts are redrawn from the fitted model (the
   observed counts in the excluded bins), and for each replicate the degree and the missing
   range are chosen again by the same rules. The percentile interval therefore carries the
   uncertainty of the choice of degree and window as well as sampling noise. The spread of
   the estimate over the degrees the AIC supports (within 4 of the best) is reported too.
7. **Calibration.** The same estimator runs at every bin edge where no target is (placebo
   thresholds), with the target's own window and missing bins kept out of those fits. The
   target's z (excess over its standard error from the model's covariance) is set against
   theirs: measured from their mean (never under 0) in their standard deviations (never under
   1), placebo p = P(Z ≥ that). The placebos can only make the model's own z count for less:
   where a polynomial misses lumps of the data their z spread wider and the target needs more.
   The rank among them is reported too, but not used: with about 30 placebos only rank 1 gives
   p ≤ 0.05, so a real excess a little under the largest of 30 noisy ones would be missed.
   Bunching is reported only when the interval lies above zero **and** placebo p ≤ α. With
   fewer than 8 placebos the excess cannot be judged and says so.

Whatever cannot be estimated (too few bins, an empty window, a fit that fails) raises
`CannotTest` with the reason; nothing returns a negative expected count, an infinite ratio or
an interval of nan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from carecontracts.audit.glm import fit_counts
from carecontracts.audit.histogram import Histogram, Scale, Side

DEFAULT_MAX_DEGREE = 6
DEFAULT_SPAN = 15
DEFAULT_REPLICATES = 200
MAX_MISSING = 12
MIN_FIT_BINS = 3  # on each side of the threshold, after every exclusion
MIN_EXPECTED = 5.0  # counterfactual count over the window: fewer cannot be told from noise
AIC_SUPPORT = 4.0  # degrees within this of the best AIC are "supported" (Burnham and Anderson)
MIN_VALID_REPLICATES = 0.8
MIN_PLACEBOS = 8  # fewer: the target cannot be set against placebos at all


class CannotTest(Exception):
    """The estimate cannot be made on these data; `why` says why in plain words."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class Settings:
    """How the estimator is run (see the module's rules)."""

    window: int = 1
    max_degree: int = DEFAULT_MAX_DEGREE
    span: int = DEFAULT_SPAN
    max_missing: int = MAX_MISSING
    replicates: int = DEFAULT_REPLICATES
    alpha: float = 0.05
    seed: int = 0

    @property
    def level(self) -> float:
        return 1 - self.alpha

    @property
    def placebos_needed(self) -> int:
        """The fewest placebos with which the target can rank in the top α."""
        return max(1, math.ceil(1 / self.alpha - 1e-9) - 1)


@dataclass(frozen=True)
class Placebo:
    """The target's z among the same estimator's z at thresholds where no target exists.

    Ranked (`by_spread` false): with at least `needed` placebos the p-value is the rank's,
    (1 + placebos at least as large) ÷ (1 + placebos), exact when target and placebos are
    exchangeable. Set against the spread (`by_spread` true, or too few placebos to rank): the
    target's z is measured from the placebos' mean (never under 0) in units of their standard
    deviation (never under 1) and read against the normal, so the placebos can only make the
    model's own z count for less. With fewer than MIN_PLACEBOS nothing can be said."""

    thresholds: np.ndarray
    z: np.ndarray
    excess: np.ndarray
    target_z: float
    needed: int
    by_spread: bool = False

    @property
    def count(self) -> int:
        return len(self.thresholds)

    @property
    def as_large(self) -> int:
        """Placebos whose z is at least the target's."""
        return int(np.sum(self.z >= self.target_z))

    @property
    def rank(self) -> int:
        """1 = the largest z of all."""
        return self.as_large + 1

    @property
    def ranked(self) -> bool:
        """Enough placebos for the rank itself to reach α."""
        return self.count >= self.needed

    @property
    def centre(self) -> float:
        """The placebos' mean z, never under 0."""
        if self.count == 0:
            return math.nan
        return max(0.0, float(np.mean(self.z)))

    @property
    def spread(self) -> float:
        """The placebos' standard deviation of z, never under 1."""
        if self.count < 2:
            return math.nan
        return max(1.0, float(np.std(self.z, ddof=1)))

    @property
    def calibrated_z(self) -> float:
        """The target's z measured from the placebos' centre in units of their spread."""
        if self.count < 2:
            return math.nan
        return (self.target_z - self.centre) / self.spread

    @property
    def against_spread(self) -> bool:
        """The p-value comes from the placebos' spread rather than the rank."""
        return self.enough and (self.by_spread or not self.ranked)

    @property
    def p(self) -> float:
        if self.against_spread:
            return float(stats.norm.sf(self.calibrated_z))
        return (1 + self.as_large) / (1 + self.count)

    @property
    def enough(self) -> bool:
        return self.count >= MIN_PLACEBOS


@dataclass(frozen=True)
class Bunching:
    """The estimate, its interval, its rank among placebos, and what is needed to draw it."""

    histogram: Histogram  # the bins in the fit range
    threshold: float
    scale: Scale
    degree: int
    window: np.ndarray  # bool per bin
    missing: np.ndarray  # bool per bin: beyond the threshold, where the excess came from
    excluded: np.ndarray  # bool per bin: kept out for another reason (calendar, another target, …)
    counterfactual: np.ndarray  # per bin, > 0
    counterfactual_band: tuple[np.ndarray, np.ndarray]  # per bin, bootstrap percentiles
    dispersion: float  # NB2 α
    observed: float  # count in the window
    expected: float  # counterfactual over the window
    excess: float
    interval: tuple[float, float]
    se: float  # from the model's covariance, for the z
    ratio_interval: tuple[float, float]
    missing_mass: float
    degrees: dict[int, float]  # supported degree → excess
    replicates: int
    alpha: float
    placebo: Placebo | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def level(self) -> float:
        return 1 - self.alpha

    @property
    def ratio(self) -> float:
        return self.observed / self.expected

    @property
    def z(self) -> float:
        return self.excess / self.se

    @property
    def normalised(self) -> float:
        """The excess in bins' worth of the counterfactual in the window."""
        return self.excess / (self.expected / max(1, int(self.window.sum())))

    @property
    def above_zero(self) -> bool:
        return self.interval[0] > 0

    @property
    def stands_out(self) -> bool:
        """The target's z is beyond the placebos' at level α."""
        return self.placebo is not None and self.placebo.enough and self.placebo.p <= self.alpha

    @property
    def significant(self) -> bool:
        """Reported as bunching: above zero and above the placebos."""
        return self.above_zero and self.stands_out

    @property
    def specification_range(self) -> tuple[float, float]:
        values = list(self.degrees.values())
        return min(values), max(values)

    @property
    def nearest(self) -> tuple[int, int]:
        """Index of the bin just on the target side of the threshold and of the bin just beyond."""
        inside, beyond = _sides(self.histogram, self.threshold)
        return int(inside[0]), int(beyond[0])

    def neighbours(self) -> str:
        """The two bins beside the threshold compared, in words."""
        bins, scale = self.histogram, self.scale
        inside, outside = self.nearest
        near = scale.span(float(bins.lower[inside]), float(bins.upper[inside]))
        far = scale.span(float(bins.lower[outside]), float(bins.upper[outside]))
        here, there = bins.counts[inside], bins.counts[outside]
        if there <= 0:
            return f"{here:,.0f} {scale.counted} {scale.verb} {near} and none {far}"
        return f"{here / there:.1f} times as many {scale.counted} {scale.verb} {near} as {far}"

    def placebo_words(self) -> str:
        p = self.placebo
        if p is None or p.count == 0:
            return "no placebo thresholds to compare with"
        top = float(np.max(p.z))
        if p.as_large == 0:
            head = f"larger than at all {p.count} placebo thresholds (largest z there {top:.1f})"
        else:
            head = f"{p.as_large} of {p.count} placebo thresholds show as large an excess"
        text = f"z = {self.z:.1f}, {head}; rank {p.rank} of {p.count + 1}"
        if p.against_spread:
            chance = f"= {p.p:.3f}" if p.p >= 0.001 else "< 0.001"
            text += (f"; {p.calibrated_z:.1f} of the placebos' standard deviations ({p.spread:.1f}) above their mean z ({p.centre:.1f}), "
                     f"placebo p {chance}")
        elif p.enough:
            text += f", placebo p = {p.p:.3f}"
        else:
            text += f" (at least {MIN_PLACEBOS} placebos are needed to judge)"
        return text

    def sentence(self) -> str:
        """The effect in plain words and numbers."""
        bins, scale = self.histogram, self.scale
        window_lo = float(bins.lower[self.window].min())
        window_hi = float(bins.upper[self.window].max())
        lo, hi = self.interval
        rlo, rhi = self.ratio_interval
        where = scale.span(window_lo, window_hi)
        text = (f"{self.neighbours()}; {where} held {self.observed:,.0f} against {self.expected:,.0f} expected "
                f"({self.ratio:.2f} times, {self.level:.0%} interval {rlo:.2f} to {rhi:.2f}): "
                f"an excess of {self.excess:,.0f} (interval {lo:,.0f} to {hi:,.0f}) {scale.counted}; {self.placebo_words()}")
        side = "under" if bins.side is Side.BELOW else "over"
        if self.significant:
            text += f". Bunching just {side} {scale.amount(self.threshold)}"
        elif self.above_zero and not (self.placebo and self.placebo.enough):
            text += ". The excess cannot be told from the estimator's own error without enough placebos"
        elif self.above_zero:
            text += ". Thresholds with no target show excesses as large, so this one is not singular"
        else:
            text += ". No more than chance would give"
        return text + "."


# --- bins around a threshold ------------------------------------------------------------------


def _tolerance(threshold: float) -> float:
    return 1e-9 * max(1.0, abs(threshold))


def _sides(bins: Histogram, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of bins on the target side (nearest first) and beyond (nearest first)."""
    tol = _tolerance(threshold)
    below = np.flatnonzero(bins.upper <= threshold + tol)[::-1]
    above = np.flatnonzero(bins.lower >= threshold - tol)
    return (below, above) if bins.side is Side.BELOW else (above, below)


@dataclass(frozen=True)
class Layout:
    """The bins used at one threshold, as masks over the histogram's bins."""

    threshold: float
    in_range: np.ndarray
    window: np.ndarray
    beyond: np.ndarray  # indices beyond the threshold in range, nearest first
    fixed: np.ndarray  # excluded for another reason
    z: np.ndarray  # centres scaled to [-1, 1] over the range
    k_max: int

    def missing(self, k: int) -> np.ndarray:
        mask = np.zeros_like(self.window)
        mask[self.beyond[:k]] = True
        return mask

    def fit(self, k: int) -> np.ndarray:
        return self.in_range & ~self.window & ~self.fixed & ~self.missing(k)


def layout(bins: Histogram, threshold: float, settings: Settings, fixed: np.ndarray, scale: Scale = Scale(), why_fixed: str = "an excluded range") -> Layout:
    """Where the window, the missing range and the fit bins lie at `threshold`; CannotTest if
    there are too few bins to fit on either side."""
    inside, beyond = _sides(bins, threshold)
    where = scale.amount(threshold)
    if len(inside) < settings.window or len(beyond) < 1:
        raise CannotTest(f"{where} is at the edge of the data: bins are needed on both sides")
    inside, beyond = inside[: settings.span], beyond[: settings.span]
    in_range = np.zeros(len(bins.counts), dtype=bool)
    in_range[inside] = True
    in_range[beyond] = True
    window = np.zeros_like(in_range)
    window[inside[: settings.window]] = True
    if np.any(window & fixed):
        raise CannotTest(f"the bins next to {where} are {why_fixed}")
    free_inside = int(np.sum(~fixed[inside[settings.window:]]))
    free_beyond = int(np.sum(~fixed[beyond]))
    if free_inside < MIN_FIT_BINS or free_beyond < MIN_FIT_BINS:
        raise CannotTest(f"{free_inside} bins to fit on the target side of {where} and {free_beyond} beyond it "
                         f"(at least {MIN_FIT_BINS} each are needed; widen the range or narrow the bins)")
    blocked = np.flatnonzero(fixed[beyond])
    reach = int(blocked[0]) if len(blocked) else len(beyond)
    k_max = max(0, min(settings.max_missing, reach, free_beyond - MIN_FIT_BINS))
    centres = bins.centres
    spread = float(np.max(np.abs(centres[in_range] - threshold))) or 1.0
    z = np.where(in_range, (centres - threshold) / spread, 0.0)
    return Layout(threshold, in_range, window, beyond, fixed.copy(), z, k_max)


# --- the grid of fits -------------------------------------------------------------------------


@dataclass
class Grid:
    """For each problem row (a threshold × replicate), the chosen specification's numbers."""

    degree: np.ndarray
    k: np.ndarray
    mu: np.ndarray  # (rows, n)
    alpha: np.ndarray
    excess: np.ndarray
    expected: np.ndarray
    observed: np.ndarray
    shortfall: np.ndarray
    se: np.ndarray
    valid: np.ndarray
    by_degree: dict[int, np.ndarray]  # degree → excess at the chosen k (nan where not fitted)
    aic_by_degree: dict[int, np.ndarray]


def _design(z: np.ndarray, degree: int) -> np.ndarray:
    """(rows, n, degree + 1) polynomial in z."""
    return np.stack([z**power for power in range(degree + 1)], axis=-1)


def _fit_degrees(
    yy: np.ndarray, zz: np.ndarray, ww: np.ndarray, use: np.ndarray, observed: np.ndarray, offset: np.ndarray, max_degree: int,
    out_by_degree: dict[int, np.ndarray], out_aic: dict[int, np.ndarray], index: np.ndarray, warm: dict[int, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every degree for these rows; the best by AIC, with its counterfactual, α and the
    variance of the window's excess. Each degree's excess and AIC are recorded as well.

    A row's fit of a degree starts from its own converged fit of that degree with one bin
    fewer left out (`warm`: β then α, by row of the whole grid), else from the degree below."""
    rows, n = yy.shape
    free = use.sum(axis=1)
    best = np.full(rows, np.inf)
    mu_best = np.full((rows, n), np.nan)
    alpha_best = np.zeros(rows)
    degree_best = np.zeros(rows, dtype=int)
    var_best = np.full(rows, np.nan)
    previous: np.ndarray | None = None  # each degree starts from the one below it, with a zero for the new term
    for degree in range(1, max_degree + 1):
        here = free >= degree + 1 + MIN_FIT_BINS
        if not here.any():
            break
        X = _design(zz[here], degree)
        rows_here = np.flatnonzero(here)
        start = warm[degree][index[rows_here]]
        if previous is not None:
            below = np.hstack([previous[here][:, :-1], np.zeros((len(rows_here), 1)), previous[here][:, -1:]])
            start = np.where(np.isfinite(start).all(axis=1, keepdims=True), start, below)
        usable = bool(np.all(np.isfinite(start)))
        fit = fit_counts(X, yy[here], use[here], offset, start=start[:, :-1] if usable else None,
                         alpha_start=start[:, -1] if usable else None)
        previous = np.full((rows, degree + 2), np.nan)
        previous[here] = np.hstack([fit.beta, fit.alpha[:, None]])
        ok = fit.converged & np.all(np.isfinite(fit.mu), axis=1)
        warm[degree][index[rows_here[ok]]] = previous[here][ok]
        aic = np.full(rows, np.inf)
        aic[rows_here[ok]] = fit.aic[ok]
        mu = np.full((rows, n), np.nan)
        mu[here] = fit.mu
        # Variance of the window's excess: the window's own noise plus the counterfactual's.
        w = ww[here]
        gradient = np.matmul(np.where(w, fit.mu, 0.0)[:, None, :], X)[:, 0, :]
        var = (np.where(w, fit.mu * (1 + fit.alpha[:, None] * fit.mu), 0.0).sum(axis=1)
               + np.matmul(np.matmul(gradient[:, None, :], fit.cov), gradient[:, :, None])[:, 0, 0])
        excess = observed - np.where(ww, np.nan_to_num(mu), 0.0).sum(axis=1)
        out_by_degree[degree][index] = np.where(np.isfinite(aic), excess, np.nan)
        out_aic[degree][index] = aic
        better = aic < best
        best = np.where(better, aic, best)
        mu_best[better] = mu[better]
        degree_best[better] = degree
        alpha_best[rows_here[better[here]]] = fit.alpha[better[here]]
        var_best[rows_here[better[here]]] = var[better[here]]
    return best, mu_best, alpha_best, degree_best, var_best


def evaluate(layouts: list[Layout], y: np.ndarray, widths: np.ndarray, max_degree: int) -> Grid:
    """Fit every candidate degree for each row, missing range by missing range, and apply the
    selection rules. `layouts[i]` describes row i of `y` (rows × bins).

    The missing range grows one bin at a time; a row stops growing once its shortfall covers
    its excess (or at once when it has no excess), so most rows are fitted for a few ranges only."""
    rows = len(layouts)
    columns = np.flatnonzero(np.any(np.stack([lay.in_range for lay in layouts]), axis=0))
    y = np.asarray(y, dtype=np.float64)[:, columns]
    n = len(columns)
    offset = np.log(widths[columns])
    Z = np.stack([lay.z[columns] for lay in layouts])
    window = np.stack([lay.window[columns] for lay in layouts])
    k_max = np.array([lay.k_max for lay in layouts])
    observed = np.where(window, y, 0.0).sum(axis=1)

    out_degree = np.zeros(rows, dtype=int)
    out_k = np.zeros(rows, dtype=int)
    out_mu = np.full((rows, n), np.nan)
    out_alpha = np.zeros(rows)
    out_expected = np.full(rows, np.nan)
    out_shortfall = np.zeros(rows)
    out_var = np.full(rows, np.nan)
    out_valid = np.zeros(rows, dtype=bool)
    out_by_degree = {d: np.full(rows, np.nan) for d in range(1, max_degree + 1)}
    out_aic = {d: np.full(rows, np.inf) for d in range(1, max_degree + 1)}
    warm = {d: np.full((rows, d + 2), np.nan) for d in range(1, max_degree + 1)}  # β then α

    active = np.ones(rows, dtype=bool)
    for k in range(int(k_max.max()) + 1):
        active = active & (k_max >= k)
        if not active.any():
            break
        index = np.flatnonzero(active)
        use = np.stack([layouts[i].fit(k)[columns] for i in index])
        missing = np.stack([layouts[i].missing(k)[columns] for i in index])
        yy, ww = y[index], window[index]
        best, mu_best, alpha_best, degree_best, var_best = _fit_degrees(yy, Z[index], ww, use, observed[index], offset, max_degree,
                                                                        out_by_degree, out_aic, index, warm)
        valid = np.isfinite(best)
        expected = np.where(ww, mu_best, 0.0).sum(axis=1)
        excess = observed[index] - expected
        shortfall = np.where(missing, mu_best - yy, 0.0).sum(axis=1)
        # Keep this range for every row that fitted; rows still growing overwrite it next time.
        keep = valid
        kept = index[keep]
        out_degree[kept], out_k[kept], out_mu[kept] = degree_best[keep], k, mu_best[keep]
        out_alpha[kept], out_expected[kept], out_shortfall[kept] = alpha_best[keep], expected[keep], shortfall[keep]
        out_var[kept], out_valid[kept] = var_best[keep], True
        settled = ~valid | (excess <= 0) if k == 0 else (valid & (shortfall >= excess))
        active[index[settled]] = False
    full_mu = np.full((rows, len(widths)), np.nan)
    full_mu[:, columns] = out_mu
    return Grid(
        degree=out_degree, k=out_k, mu=full_mu, alpha=out_alpha, excess=observed - out_expected, expected=out_expected,
        observed=observed, shortfall=out_shortfall, se=np.sqrt(out_var), valid=out_valid & (out_expected > 0),
        by_degree=out_by_degree, aic_by_degree=out_aic,
    )


# --- the estimate -----------------------------------------------------------------------------


def _draw(means: np.ndarray, alpha: float, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Negative binomial counts (gamma–Poisson) with these means."""
    m = np.broadcast_to(np.maximum(means, 0.0), (replicates, len(means)))
    if alpha > 1e-10:
        m = m * rng.gamma(1 / alpha, alpha, size=m.shape)
    return rng.poisson(m).astype(np.float64)


def estimate_bunching(
    histogram: Histogram,
    threshold: float,
    scale: Scale = Scale(),
    settings: Settings = Settings(),
    excluded: np.ndarray | None = None,
    why_excluded: str = "an excluded range",
    other_targets: tuple[float, ...] = (),
    placebos: bool = True,
) -> Bunching:
    """The bunching estimate at `threshold` with its bootstrap interval and placebo rank.

    `excluded` marks bins (of `histogram`) kept out of every fit; `other_targets` are
    thresholds where a real target may have its own spike: their windows and missing ranges
    are kept out of this fit and of the placebos'."""
    closed = histogram.closed
    bins = histogram.take(closed)
    fixed = np.zeros(len(bins.counts), dtype=bool) if excluded is None else np.asarray(excluded, dtype=bool)[closed].copy()
    if bins.total <= 0:
        raise CannotTest("no counts")
    where = scale.amount(threshold)
    if not (bins.lower.min() < threshold < bins.upper.max()):
        raise CannotTest(f"{where} is outside the data's range {scale.amount(float(bins.lower.min()))} to {scale.amount(float(bins.upper.max()))}")
    edges = np.concatenate([bins.lower, bins.upper])
    if not np.any(np.abs(edges - threshold) <= _tolerance(threshold)):
        raise CannotTest(f"{where} falls inside a bin; the bins must have an edge on the threshold")
    # Other targets first: their own windows and missing ranges are kept out of this fit.
    for other in other_targets:
        if other == threshold:
            continue
        try:
            region = _region(bins, other, settings, fixed, scale, why_excluded)
        except CannotTest:
            continue
        fixed |= region
    lay = layout(bins, threshold, settings, fixed, scale, why_excluded)
    widths = bins.widths
    point = evaluate([lay], bins.counts[None, :], widths, settings.max_degree)
    if not point.valid[0]:
        raise CannotTest(f"no polynomial could be fitted to the bins around {where}")
    expected = float(point.expected[0])
    if expected < MIN_EXPECTED:
        raise CannotTest(f"only {expected:.1f} {scale.counted} expected next to {where} (at least {MIN_EXPECTED:g} are needed to judge an excess)")
    mu = point.mu[0]
    k = int(point.k[0])
    alpha = float(point.alpha[0])
    missing = lay.missing(k)
    excess = float(point.excess[0])
    se = float(point.se[0])
    if not (np.all(np.isfinite(mu[lay.in_range])) and np.all(mu[lay.in_range] > 0) and math.isfinite(se) and se > 0):
        raise CannotTest(f"the fit around {where} did not give a usable counterfactual")

    # Bootstrap: redraw from the fitted model, choose degree and missing range again.
    rng = np.random.default_rng([settings.seed, int(round(threshold * 1000)) & 0xFFFFFFFF])
    means = np.where(lay.fit(k), mu, bins.counts)
    means = np.where(lay.in_range, means, 0.0)
    draws = _draw(means, alpha, settings.replicates, rng)
    boot = evaluate([lay] * settings.replicates, draws, widths, settings.max_degree)
    good = boot.valid & np.isfinite(boot.excess)
    if good.sum() < MIN_VALID_REPLICATES * settings.replicates:
        raise CannotTest(f"the counterfactual could be refitted in only {int(good.sum())} of {settings.replicates} bootstrap replicates around {where}")
    tail = settings.alpha / 2
    boot_excess = boot.excess[good]
    boot_ratio = boot.observed[good] / boot.expected[good]
    interval = (float(np.quantile(boot_excess, tail)), float(np.quantile(boot_excess, 1 - tail)))
    ratio_interval = (float(np.quantile(boot_ratio, tail)), float(np.quantile(boot_ratio, 1 - tail)))
    band_lo = np.nanquantile(boot.mu[good][:, lay.in_range], tail, axis=0)
    band_hi = np.nanquantile(boot.mu[good][:, lay.in_range], 1 - tail, axis=0)
    best = min(point.aic_by_degree[d][0] for d in point.aic_by_degree)
    degrees = {d: float(point.by_degree[d][0]) for d in point.aic_by_degree
               if point.aic_by_degree[d][0] <= best + AIC_SUPPORT and math.isfinite(point.by_degree[d][0])}
    notes: list[str] = []
    if k == lay.k_max and excess > 0 and point.shortfall[0] < excess:
        notes.append(f"the shortfall beyond {where} covers only {max(0.0, float(point.shortfall[0])):,.0f} of the excess within {k} bins")

    placebo = None
    if placebos:
        target_region = lay.window | missing
        placebo = _placebos(bins, threshold, settings, fixed, target_region, scale, other_targets, float(excess / se))

    keep = lay.in_range
    shown = bins.take(keep)
    return Bunching(
        histogram=shown, threshold=threshold, scale=scale, degree=int(point.degree[0]),
        window=lay.window[keep], missing=missing[keep], excluded=fixed[keep],
        counterfactual=mu[keep], counterfactual_band=(band_lo, band_hi), dispersion=alpha,
        observed=float(point.observed[0]), expected=expected, excess=excess, interval=interval, se=se,
        ratio_interval=ratio_interval, missing_mass=float(point.shortfall[0]), degrees=degrees,
        replicates=int(good.sum()), alpha=settings.alpha, placebo=placebo, notes=tuple(notes),
    )


def _region(bins: Histogram, threshold: float, settings: Settings, fixed: np.ndarray, scale: Scale, why: str) -> np.ndarray:
    """The window and missing range the estimator takes at `threshold` (no bootstrap)."""
    tol = _tolerance(threshold)
    if not np.any(np.abs(np.concatenate([bins.lower, bins.upper]) - threshold) <= tol):
        raise CannotTest("not on a bin edge")
    lay = layout(bins, threshold, settings, fixed, scale, why)
    grid = evaluate([lay], bins.counts[None, :], bins.widths, settings.max_degree)
    if not grid.valid[0]:
        raise CannotTest("no fit")
    return lay.window | lay.missing(int(grid.k[0]))


def placebo_thresholds(bins: Histogram, threshold: float, other_targets: tuple[float, ...] = ()) -> np.ndarray:
    """Every inner bin edge of the closed bins except the target's and other targets'."""
    edges = np.unique(np.concatenate([bins.lower, bins.upper]))
    edges = edges[(edges > bins.lower.min()) & (edges < bins.upper.max())]
    taken = [threshold, *other_targets]
    keep = np.array([not any(abs(e - t) <= _tolerance(t) for t in taken) for e in edges], dtype=bool)
    return edges[keep]


def _placebos(bins: Histogram, threshold: float, settings: Settings, fixed: np.ndarray, target_region: np.ndarray,
              scale: Scale, other_targets: tuple[float, ...], target_z: float) -> Placebo:
    """The estimator's z at each placebo threshold, the target's region kept out of every fit."""
    blocked = fixed | target_region
    layouts = []
    for t in placebo_thresholds(bins, threshold, other_targets):
        try:
            lay = layout(bins, float(t), settings, blocked, scale)
        except CannotTest:
            continue
        layouts.append(lay)
    if not layouts:
        return Placebo(np.zeros(0), np.zeros(0), np.zeros(0), target_z, settings.placebos_needed, by_spread=True)
    grid = evaluate(layouts, np.tile(bins.counts, (len(layouts), 1)), bins.widths, settings.max_degree)
    ok = grid.valid & np.isfinite(grid.se) & (grid.se > 0) & (grid.expected >= MIN_EXPECTED)
    thresholds = np.array([lay.threshold for lay in layouts])[ok]
    return Placebo(thresholds, (grid.excess / grid.se)[ok], grid.excess[ok], target_z, settings.placebos_needed, by_spread=True)


def one_sided_p(z: float) -> float:
    """P(Z ≥ z) for a standard normal."""
    return float(stats.norm.sf(z))
