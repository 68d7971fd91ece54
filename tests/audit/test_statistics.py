"""The bunching estimator and the density test on data whose answer is known.

Waits are drawn as weekly bands shaped like a month of completed RTT pathways: a gamma-shaped
wait, week-to-week noise on top of Poisson counts, and the Christmas referral trough 8–14
weeks back (a March file), kept out of the fits by the calendar rule. Clock-stopping moves a
share of the waits of 18–24 weeks to 17–18 weeks, so the truth is the number moved."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats

from carecontracts.audit.bunching import CannotTest, Placebo, Settings, estimate_bunching
from carecontracts.audit.calendar import christmas_waits
from carecontracts.audit.discontinuity import density_test
from carecontracts.audit.histogram import Histogram, Scale, Side, from_counts, from_values
from carecontracts.examples.published import ae_rows
from carecontracts.problems import ProblemsError

WEEKS = Scale("weeks", "patients", "waited")
SHARES = Scale("%", "provider-months", "reported")
TROUGH = slice(8, 15)  # weeks 8–14: referrals over Christmas, completed in March


def bands(seed: int, patients: int = 4_000, stop_share: float = 0.0) -> tuple[Histogram, np.ndarray, int]:
    """Weekly bands 0–1 … 51–52 and 52+, the trough mask, and how many waits were moved."""
    rng = np.random.default_rng([seed, 18])
    weeks = np.arange(53)
    shape, mean = 2.4, 15.0
    expected = np.diff(stats.gamma.cdf(np.append(weeks, 1e9), shape, scale=mean / shape)) * patients
    expected[TROUGH] *= [0.9, 0.75, 0.6, 0.55, 0.6, 0.75, 0.9]
    counts = rng.poisson(expected * np.exp(rng.normal(0, 0.03, 53))).astype(float)
    moved = 0
    if stop_share:
        taken = rng.binomial(counts[18:24].astype(int), stop_share)
        counts[18:24] -= taken
        counts[17] += taken.sum()
        moved = int(taken.sum())
    trough = np.zeros(53, dtype=bool)
    trough[TROUGH] = True
    upper = np.append(weeks[1:].astype(float), np.inf)  # the last band is 52+
    return Histogram(weeks.astype(float), upper, counts, Side.BELOW), trough, moved


def test_christmas_trough_in_a_march_file_is_8_to_14_weeks_for_completed_and_12_to_14_for_the_list() -> None:
    # Completed in March 2026, referred 22 Dec 2025 – 2 Jan 2026: shortest 1 Mar − 2 Jan = 58 days,
    # longest 31 Mar − 22 Dec = 99 days (up to the end of the 99th day: 100/7 weeks).
    completed = christmas_waits(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert completed[0] == pytest.approx((58 / 7, 100 / 7))
    waiting = christmas_waits(dt.date(2026, 3, 31), dt.date(2026, 3, 31))
    assert waiting[0] == pytest.approx((88 / 7, 100 / 7))
    assert all(lo > 52 for lo, _ in completed[1:])  # earlier Christmases are beyond a year


def test_exact_log_linear_counts_give_the_moved_mass_and_the_missing_range() -> None:
    # 2000·e^(−0.1·centre) is a straight line in logs: the degree-1 fit is exact. 240 waits appear
    # at 17–18 weeks; 18–19, 19–20 and 20–21 lose 100, 80 and 70 (10 more than arrived).
    centres = np.arange(40) + 0.5
    counts = 2000 * np.exp(-0.1 * centres)
    counts[17] += 240
    counts[18:21] -= [100, 80, 70]
    histogram = from_counts(list(range(40)), list(range(1, 41)), list(counts), Side.BELOW)
    estimate = estimate_bunching(histogram, 18, WEEKS, Settings(replicates=100, seed=1))
    assert estimate.excess == pytest.approx(240, abs=1e-4)
    assert estimate.expected == pytest.approx(2000 * np.exp(-1.75), rel=1e-6)
    # The integration rule: 100 and 180 do not cover 240; three bins (250) do.
    assert list(np.flatnonzero(estimate.missing) + estimate.histogram.lower[0]) == [18, 19, 20]
    assert estimate.missing_mass == pytest.approx(250, abs=1e-4)
    assert estimate.ratio == pytest.approx(1 + 240 / (2000 * np.exp(-1.75)), rel=1e-6)
    assert estimate.interval[0] < 240 < estimate.interval[1] and estimate.significant


def test_smooth_waits_with_a_christmas_dip_and_no_target_give_no_finding() -> None:
    flagged = []
    for seed in range(6):
        histogram, trough, _ = bands(seed)
        if estimate_bunching(histogram, 18, WEEKS, Settings(replicates=100, seed=seed), trough).significant:
            flagged.append(seed)
    assert flagged == []


def test_bunching_of_known_size_is_found_and_its_interval_covers_the_truth() -> None:
    covered = found = 0
    trials = 20
    for seed in range(trials):
        histogram, trough, moved = bands(seed, stop_share=0.3)
        estimate = estimate_bunching(histogram, 18, WEEKS, Settings(replicates=100, seed=seed), trough)
        covered += estimate.interval[0] <= moved <= estimate.interval[1]
        found += estimate.significant
    assert covered >= 0.9 * trials, f"the interval covered the number moved in {covered} of {trials}"
    assert found >= 0.9 * trials, f"found in {found} of {trials}"


def test_at_thresholds_with_no_target_the_false_alarm_rate_is_at_most_nominal() -> None:
    """Null data (no clock-stopping), many thresholds and seeds: the full rule (interval above
    zero and top 5% of placebos) and the interval alone each flag at most 5%."""
    full = alone = tested = 0
    for seed in range(6):
        histogram, trough, _ = bands(100 + seed)
        for threshold in (5, 17, 22, 27, 33, 40):
            try:
                estimate = estimate_bunching(histogram, threshold, WEEKS, Settings(replicates=100, seed=seed), trough)
            except CannotTest:
                continue
            tested += 1
            full += estimate.significant
            alone += estimate.above_zero
    assert tested >= 30
    assert full <= 0.05 * tested, f"{full} of {tested}"
    assert alone <= 0.05 * tested, f"{alone} of {tested}"


def test_placebo_thresholds_on_bunched_data_are_not_flagged() -> None:
    """Clock-stopping at 18 weeks, the audit run at thresholds where there is no target, 18
    named as another target: found in at most 5%."""
    flagged = tested = 0
    for seed in range(6):
        histogram, trough, _ = bands(200 + seed, stop_share=0.4)
        for threshold in (5, 6, 27, 33, 37, 40):
            try:
                estimate = estimate_bunching(histogram, threshold, WEEKS, Settings(replicates=100, seed=seed), trough, other_targets=(18.0,))
            except CannotTest:
                continue
            tested += 1
            flagged += estimate.significant
    assert tested >= 20 and flagged <= 0.05 * tested, f"{flagged} of {tested}"


def _ae_shares(seed: int, nudgers: int) -> tuple[np.ndarray, int]:
    rows, truth = ae_rows(seed=seed, nudgers=nudgers, months=24, providers=120)
    header, body = rows[0], [r for r in rows[1:] if r[1] != "TOTAL"]
    attend = [header.index(c) for c in header if c.startswith("A&E attendances")]
    over = [header.index(c) for c in header if c.startswith("Attendances over 4hrs")]
    shares = np.array([100 * (1 - sum(int(r[i]) for i in over) / sum(int(r[i]) for i in attend)) for r in body])
    return shares, len(truth.nudged)


def test_shares_bunching_just_over_95_percent_among_provider_months_is_found() -> None:
    shares, nudged = _ae_shares(95, nudgers=12)
    histogram = from_values(shares, 95, 0.5, Side.ABOVE)
    estimate = estimate_bunching(histogram, 95, SHARES, Settings(replicates=150, seed=1))
    assert estimate.significant
    assert estimate.interval[0] <= nudged <= estimate.interval[1]
    assert estimate.sentence().startswith(f"{estimate.histogram.counts[estimate.nearest[0]] / estimate.histogram.counts[estimate.nearest[1]]:.1f} times as many provider-months reported 95–95.5% as 94.5–95%")
    # The same shares at thresholds with no target (95 named as one): not found. A threshold whose
    # window falls in 95's own hole (92–95) cannot be tested, and says so.
    with pytest.raises(CannotTest, match="92%"):
        estimate_bunching(histogram_at(shares, 92.0), 92.0, SHARES, Settings(replicates=100, seed=2), other_targets=(95.0,))
    for placebo in (87.5, 89.0, 90.0, 98.0):
        assert not estimate_bunching(histogram_at(shares, placebo), placebo, SHARES, Settings(replicates=100, seed=2), other_targets=(95.0,)).significant


def histogram_at(shares: np.ndarray, threshold: float) -> Histogram:
    return from_values(shares, threshold, 0.5, Side.ABOVE)


def test_no_nudging_no_finding_at_95() -> None:
    shares, nudged = _ae_shares(96, nudgers=0)
    assert nudged == 0
    assert not estimate_bunching(from_values(shares, 95, 0.5, Side.ABOVE), 95, SHARES, Settings(replicates=100, seed=3)).significant


def test_detection_and_false_alarm_rates_over_seeded_a_and_e_years() -> None:
    """The example's A&E shape (120 trusts, 24 months, 12 trusts moving 70% of their 93–95%
    months to 95–95.45%), the default settings, 20 seeds with the nudge and 20 without, and each
    nudged year audited at one threshold with no target (95 named as one).

    Measured: found in 13 of 20 with the nudge, 1 of 20 without, 1 of 20 at the placebo
    thresholds (1 of 80 when every nudged year is audited at all four); over 60 seeds 38 of 60
    and 4 of 60. When the target had to rank first among its ~30 placebos: 6 of 20, 1 of 20 and
    1 of 20 (25 and 2 of 60). Set against the placebos' spread instead, one placebo against the
    other ~30 of its year is flagged in 71 of 1,231 (5.8%; the interval rule then clears most).
    What limits detection now is the interval: 21 to 55 provider-months moved into a bin that
    holds about 150 anyway leave z near 2, and the interval clears zero only from about there.
    The years with no nudge are not quite flat at 95: the example's other departments meet the
    standard at type 1's rate plus 6 points but never over 99.5%, so the density of
    all-department shares steps up by about a third at 95.06%, which the window just above 95
    reads as a little excess. The bounds hold today's rates so that a change that lowers
    detection or raises false alarms is seen."""
    found = alarms = placebo_alarms = 0
    for seed in range(20):
        shares, _ = _ae_shares(seed, nudgers=12)
        found += estimate_bunching(from_values(shares, 95, 0.5, Side.ABOVE), 95, SHARES, Settings(seed=20250401)).significant
        placebo = (87.5, 89.0, 90.0, 98.0)[seed % 4]
        placebo_alarms += estimate_bunching(histogram_at(shares, placebo), placebo, SHARES, Settings(seed=20250401), other_targets=(95.0,)).significant
        null, _ = _ae_shares(1_000 + seed, nudgers=0)
        try:
            alarms += estimate_bunching(from_values(null, 95, 0.5, Side.ABOVE), 95, SHARES, Settings(seed=20250401)).significant
        except CannotTest:
            pass
    assert found >= 13, f"found in {found} of 20"
    assert alarms <= 1, f"{alarms} false alarms in 20"
    assert placebo_alarms <= 1, f"found at {placebo_alarms} of 20 placebo thresholds"


def test_placebo_p_sets_the_target_against_the_placebos_mean_and_spread_which_only_count_against_it() -> None:
    # Eight placebos at ±1: mean 0, standard deviation √(8/7) = 1.0690; a target z of 2·1.0690
    # is 2 of their standard deviations above, one-sided normal p = 0.02275 (rank 1 of 9 alone
    # would be p = 1/9).
    wide = np.array([-1.0, 1.0] * 4)
    target = 2 * np.sqrt(8 / 7)
    placebo = Placebo(np.arange(8.0), wide, wide, target, needed=19, by_spread=True)
    assert placebo.spread == pytest.approx(np.sqrt(8 / 7)) and placebo.centre == 0
    assert placebo.p == pytest.approx(0.02275, abs=1e-5) and placebo.rank == 1
    # Placebos tighter than the model's own error (sd 0.1) or centred below zero (mean −0.5)
    # never make the target count for more than its own z: spread 1 and centre 0, p = P(Z ≥ 2).
    for quiet in (np.array([-0.1, 0.1] * 4), np.array([-0.6, -0.4] * 4)):
        assert Placebo(np.arange(8.0), quiet, quiet, 2.0, needed=19, by_spread=True).p == pytest.approx(0.02275, abs=1e-5)
    # Placebos at −1 and 3: mean 1, standard deviation √(32/7) = 2.138. A target z of 2.069 is half
    # of that above their mean, p = P(Z ≥ 0.5) = 0.3085 (its own z alone would give 0.019).
    loud = np.array([-1.0, 3.0] * 4)
    assert Placebo(np.arange(8.0), loud, loud, 1 + np.sqrt(4 * 8 / 7) / 2, needed=19, by_spread=True).p == pytest.approx(0.3085, abs=1e-4)
    # Ranked (the density test's rule): (1 + placebos at least as large) ÷ (1 + placebos).
    ranked = Placebo(np.arange(20.0), np.linspace(-2, 2, 20), np.zeros(20), 1.9, needed=19)
    assert ranked.p == pytest.approx(2 / 21) and not ranked.against_spread
    # Too few placebos to judge at all.
    assert not Placebo(np.arange(7.0), wide[:7], wide[:7], 5.0, needed=19, by_spread=True).enough


def chetty(counts: np.ndarray, centres: np.ndarray, threshold: float, excluded: np.ndarray, degree: int = 7) -> np.ndarray:
    """Chetty, Friedman, Olsen and Pistaferri (2011), eq. (1): counts regressed by OLS on a
    polynomial of order q in the bin plus a dummy for each excluded bin; the counterfactual is
    the polynomial part (eq. 2 then sums count − counterfactual over the bunching bins)."""
    z = (centres - threshold) / np.max(np.abs(centres - threshold))
    design = np.hstack([np.vander(z, degree + 1, increasing=True), np.eye(len(z))[:, excluded]])
    coefficients, *_ = np.linalg.lstsq(design, counts, rcond=None)
    return design[:, : degree + 1] @ coefficients[: degree + 1]


def test_agrees_with_the_chetty_et_al_estimator_where_counts_are_large_and_stays_positive_where_they_are_not() -> None:
    """The worked setting of Kleven (2016, Annu. Rev. Econ., section 2): a smooth density with
    bunchers at the threshold drawn from just beyond it. With large counts the published OLS
    estimator and this one recover the same excess; with sparse bins OLS gives a negative
    expected count, which this one cannot."""
    rng = np.random.default_rng(2011)
    centres = np.arange(36) + 0.5
    expected = 30_000 * stats.lognorm.pdf(centres, 0.6, scale=14)
    counts = rng.poisson(expected).astype(float)
    counts[17] += 600
    counts[18:21] -= rng.multinomial(600, [0.5, 0.3, 0.2])
    excluded = np.zeros(36, dtype=bool)
    excluded[17:21] = True  # the bunching bin and the three it drew from, left out by dummies
    ols_excess = float(counts[17] - chetty(counts, centres, 18, excluded)[17])
    histogram = from_counts(list(range(36)), list(range(1, 37)), list(counts), Side.BELOW)
    estimate = estimate_bunching(histogram, 18, WEEKS, Settings(replicates=100, seed=4))
    # Both near the 600 moved (OLS in levels bends more over a skewed peak), and near each other.
    assert abs(estimate.excess - 600) < 0.1 * 600 and estimate.interval[0] <= 600 <= estimate.interval[1]
    assert abs(ols_excess - 600) < 0.2 * 600
    assert estimate.excess == pytest.approx(ols_excess, rel=0.2)
    # Sparse: a small provider's tail. OLS dips below zero; the negative binomial cannot.
    sparse = rng.poisson(expected / 400).astype(float)
    ols_curve = chetty(sparse, centres, 18, excluded)
    assert ols_curve.min() < 0
    small = from_counts(list(range(36)), list(range(1, 37)), list(sparse), Side.BELOW)
    try:
        result = estimate_bunching(small, 18, WEEKS, Settings(replicates=100, seed=5))
    except CannotTest as error:
        assert "expected" in error.why or "bins" in error.why
    else:
        assert np.all(result.counterfactual > 0) and np.all(np.isfinite(result.interval)) and np.isfinite(result.ratio)


def test_impossible_findings_are_never_numbers_but_reasons() -> None:
    few = from_counts(list(range(30)), list(range(1, 31)), [1.0 if i % 7 == 0 else 0.0 for i in range(30)], Side.BELOW)
    with pytest.raises(CannotTest, match="expected"):
        estimate_bunching(few, 18, WEEKS, Settings(replicates=60))
    edge = from_counts(list(range(20)), list(range(1, 21)), [100.0] * 20, Side.BELOW)
    with pytest.raises(CannotTest, match="bins to fit"):
        estimate_bunching(edge, 18, WEEKS, Settings(replicates=60))
    # Nobody just beyond the threshold: said in words, never "inf times".
    counts = [400.0 * np.exp(-0.05 * i) for i in range(40)]
    counts[18] = 0.0
    estimate = estimate_bunching(from_counts(list(range(40)), list(range(1, 41)), counts, Side.BELOW), 18, WEEKS, Settings(replicates=60))
    text = estimate.sentence()
    assert "none 18–19 weeks" in text
    assert "inf" not in text and "nan" not in text
    assert all(np.isfinite(v) for v in (*estimate.interval, *estimate.ratio_interval, estimate.ratio, estimate.z))


def test_threshold_outside_the_data_or_inside_a_bin_cannot_be_tested() -> None:
    histogram = from_counts([0, 1, 2, 3], [1, 2, 3, 4], [5, 5, 5, 5], Side.BELOW)
    with pytest.raises(CannotTest, match="outside the data's range"):
        estimate_bunching(histogram, 18)
    with pytest.raises(CannotTest, match="inside a bin"):
        estimate_bunching(histogram, 1.5)
    with pytest.raises(ProblemsError, match="outside the data's range"):
        from_values([1.0, 2.0, 3.0], 18, 1, Side.BELOW)
    with pytest.raises(ProblemsError, match="no numeric values"):
        from_values([float("nan")], 18, 1, Side.BELOW)


@pytest.mark.parametrize(
    ("lower", "upper", "counts", "message"),
    [
        ([0, 2, 1], [1, 3, 2], [5, 5, 5], "bins out of order"),
        ([0, 1, 1.5], [1, 2, 3], [5, 5, 5], "overlaps the previous bin"),
        ([0, 1, 2], [1, 2, 3], [5, -1, 5], "negative count"),
        ([0, 1, 2], [1, 1, 3], [5, 5, 5], "empty or backwards"),
    ],
)
def test_bad_bins_are_refused_with_their_row(lower: list[float], upper: list[float], counts: list[float], message: str) -> None:
    with pytest.raises(ProblemsError) as raised:
        from_counts(lower, upper, counts, Side.BELOW, source="waits.csv", rows=[2, 3, 4])
    problem = raised.value.problems[0]
    assert message in problem.message and problem.source == "waits.csv" and problem.row in (3, 4)


def smooth_waits(seed: int, size: int = 5_000) -> np.ndarray:
    rng = np.random.default_rng([seed, 1])
    return (7 + np.round(rng.gamma(2.0, 40.0, size))) / 7


def test_density_test_has_its_nominal_size_on_smooth_data() -> None:
    """Two-sided 5% test over 200 seeded trials: at most 18 rejections (5% + 4 points of slack,
    about 2.6 binomial standard errors)."""
    rejected = sum(density_test(smooth_waits(seed), 18, Side.BELOW).p_value < 0.05 for seed in range(200))
    assert rejected <= 18, f"{rejected} of 200"


def test_density_test_finds_clock_stopping() -> None:
    rng = np.random.default_rng([3, 2])
    days = 7 + np.round(rng.gamma(2.0, 40.0, 5_000))
    moved = (days > 126) & (days <= 168) & (rng.random(5_000) < 0.3)
    days[moved] = rng.integers(120, 126, int(moved.sum()))
    test = density_test(days / 7, 18, Side.BELOW, WEEKS)
    assert test.significant() and test.theta < -0.5
    assert "just under 18 weeks" in test.sentence()
