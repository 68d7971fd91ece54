"""Bunching, the density test and the histogram checks on synthetic data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from carecontracts.audit.bunching import estimate_bunching
from carecontracts.audit.discontinuity import density_test
from carecontracts.audit.histogram import Scale, Side, from_counts, from_values
from carecontracts.problems import ProblemsError

WEEKS = Scale("weeks", "patients", "waited")
TRIALS = 200
PATIENTS = 5_000


def smooth_waits(seed: int, size: int = PATIENTS) -> np.ndarray:
    """Whole-day waits from referral to treatment, smooth through 18 weeks, in weeks."""
    rng = np.random.default_rng([seed, 1])
    return (7 + np.round(rng.gamma(2.0, 40.0, size))) / 7


def clock_stopped(seed: int, share: float = 0.3) -> tuple[np.ndarray, int]:
    """Smooth waits with `share` of those at 18–24 weeks recorded as 17–18 weeks; the number moved."""
    rng = np.random.default_rng([seed, 2])
    days = 7 + np.round(rng.gamma(2.0, 40.0, PATIENTS))
    moved = (days > 126) & (days <= 168) & (rng.random(PATIENTS) < share)
    days[moved] = rng.integers(120, 126, int(moved.sum()))
    return days / 7, int(moved.sum())


def test_planted_bunching_is_recovered_within_its_interval() -> None:
    waits, moved = clock_stopped(11)
    estimate = estimate_bunching(from_values(waits, 18, 1, Side.BELOW), 18, WEEKS, replicates=300, seed=1)
    assert estimate.significant
    assert estimate.interval[0] <= moved <= estimate.interval[1]
    assert abs(estimate.excess - moved) < 0.25 * moved
    assert estimate.missing.sum() >= 3  # the shortfall 18–24 weeks was found and left out of the fit


def test_planted_bunching_interval_covers_the_truth_in_most_trials() -> None:
    covered = 0
    for seed in range(40):
        waits, moved = clock_stopped(seed)
        estimate = estimate_bunching(from_values(waits, 18, 1, Side.BELOW), 18, WEEKS, replicates=200, seed=seed)
        covered += estimate.interval[0] <= moved <= estimate.interval[1]
    assert covered >= 34  # 95% intervals: 38 expected; 34 leaves room for Monte Carlo error (P(<34) ≈ 1%)


def test_added_mass_of_known_size_is_recovered() -> None:
    rng = np.random.default_rng(5)
    waits = np.concatenate([smooth_waits(5), rng.integers(120, 127, 250) / 7])  # 250 extra waits of 17–18 weeks
    estimate = estimate_bunching(from_values(waits, 18, 1, Side.BELOW), 18, WEEKS, missing=0, replicates=300, seed=2)
    assert estimate.interval[0] <= 250 <= estimate.interval[1]


def test_smooth_data_reports_no_bunching_in_at_least_95_percent_of_trials() -> None:
    flagged = sum(
        estimate_bunching(from_values(smooth_waits(seed), 18, 1, Side.BELOW), 18, WEEKS, replicates=200, seed=seed).significant
        for seed in range(TRIALS)
    )
    assert flagged <= 0.05 * TRIALS, f"{flagged} of {TRIALS} smooth samples flagged"


def test_density_test_has_its_nominal_size_on_smooth_data() -> None:
    """Two-sided 5% test over 200 seeded trials: at most 18 rejections (5% + 4 points of slack,
    about 2.6 binomial standard errors)."""
    rejected = sum(density_test(smooth_waits(seed), 18, Side.BELOW).p_value < 0.05 for seed in range(TRIALS))
    assert rejected <= 18, f"{rejected} of {TRIALS}"


def test_density_test_finds_clock_stopping() -> None:
    waits, _ = clock_stopped(3)
    test = density_test(waits, 18, Side.BELOW, WEEKS)
    assert test.significant() and test.theta < -0.5
    assert "just under 18 weeks" in test.sentence()


def test_binned_counts_give_the_same_estimate_as_the_values() -> None:
    waits, _ = clock_stopped(4)
    from_patients = from_values(waits, 18, 1, Side.BELOW)
    counts = from_counts(from_patients.lower, from_patients.upper, from_patients.counts, Side.BELOW)
    a = estimate_bunching(from_patients, 18, WEEKS, replicates=100, seed=3)
    b = estimate_bunching(counts, 18, WEEKS, replicates=100, seed=3)
    assert a.excess == pytest.approx(b.excess) and a.interval == pytest.approx(b.interval)


def test_open_ended_last_bin_is_left_out_of_the_fit() -> None:
    waits = smooth_waits(8)
    bins = from_values(np.minimum(waits, 52), 18, 1, Side.BELOW)
    assert bins.upper[-1] == 52
    histogram = from_counts(list(bins.lower), list(bins.upper[:-1]) + [None], list(bins.counts), Side.BELOW)  # the last bin is 51+
    assert np.isinf(histogram.upper[-1])
    estimate = estimate_bunching(histogram, 18, WEEKS, replicates=100)
    assert np.all(np.isfinite(estimate.histogram.upper)) and not estimate.significant


def test_shares_bunching_just_over_a_percentage_target() -> None:
    """Providers' monthly % seen within 4 hours, with some just under 95% nudged over it."""
    rng = np.random.default_rng(21)
    shares = rng.normal(92, 3.5, 6_000)
    shares = shares[shares <= 100]
    nudged = (shares >= 93.5) & (shares < 95) & (rng.random(len(shares)) < 0.5)
    shares[nudged] = rng.uniform(95, 95.5, int(nudged.sum()))
    scale = Scale("%", "provider-months", "reported")
    estimate = estimate_bunching(from_values(shares, 95, 0.5, Side.ABOVE), 95, scale, replicates=300)
    assert estimate.significant and estimate.interval[0] <= nudged.sum() <= estimate.interval[1]
    sentence = estimate.sentence()
    assert sentence.startswith(f"{estimate.neighbour_ratio:.1f} times as many provider-months reported 95–95.5% as 94.5–95%")
    assert density_test(shares, 95, Side.ABOVE, scale).significant()
    smooth = rng.normal(92, 3.5, 6_000)
    smooth = smooth[smooth <= 100]
    assert not estimate_bunching(from_values(smooth, 95, 0.5, Side.ABOVE), 95, scale, replicates=200).significant


def test_finding_states_the_effect_in_numbers_and_words() -> None:
    counts = [400.0 - 10 * k for k in range(36)]
    counts[16] += 300  # 16–17 weeks... the bin just under 18 is index 17
    counts[17] += 800
    histogram = from_counts(list(range(36)), list(range(1, 37)), counts, Side.BELOW)
    estimate = estimate_bunching(histogram, 18, WEEKS, degree=1, missing=0, replicates=100)
    ratio = counts[17] / counts[18]
    assert estimate.sentence().startswith(f"{ratio:.1f} times as many patients waited 17–18 weeks as 18–19 weeks; 17–18 weeks held about")
    assert estimate.counterfactual[17] == pytest.approx(400 - 170, rel=0.05)  # the straight line through the rest
    assert estimate.ratio == pytest.approx(counts[17] / estimate.counterfactual[17])


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


def test_threshold_outside_the_data_or_inside_a_bin_is_refused() -> None:
    histogram = from_counts([0, 1, 2, 3], [1, 2, 3, 4], [5, 5, 5, 5], Side.BELOW)
    with pytest.raises(ProblemsError, match="outside the data's range 0 to 4"):
        estimate_bunching(histogram, 18)
    with pytest.raises(ProblemsError, match="falls inside the bin 1–2"):
        estimate_bunching(histogram, 1.5)
    with pytest.raises(ProblemsError, match="outside the data's range"):
        from_values([1.0, 2.0, 3.0], 18, 1, Side.BELOW)
    with pytest.raises(ProblemsError, match="no numeric values"):
        from_values([float("nan")], 18, 1, Side.BELOW)
