"""XmR and p-chart rules on small series where the limits and signals are worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carecontracts.audit.spc import Assurance, ChartKind, Improvement, Meaning, Rule, Variation, p_chart, xmr
from carecontracts.problems import ProblemsError


def test_point_beyond_the_limits() -> None:
    # baseline 10, 12, … : mean 11, mean moving range 2, limits 11 ± 5.32 = 5.68 to 16.32
    chart = xmr([10, 12, 10, 12, 10, 12, 10, 12, 30], improvement=Improvement.LOWER, baseline=8)
    assert (chart.mean, chart.moving_range, round(chart.upper, 2), round(chart.lower, 2)) == (11, 2, 16.32, 5.68)
    assert [(s.rule, s.points, s.upward, s.meaning) for s in chart.signals] == [(Rule.OUTSIDE_LIMITS, (8,), True, Meaning.CONCERN)]


def test_run_of_seven_on_one_side_is_a_shift() -> None:
    # baseline mean 5.5; 6 at index 7 and the seven values after it sit above it, inside two sigma (7.27)
    values = [5, 6, 5, 6, 5, 6, 5, 6, 6.4, 6.6, 6.4, 6.6, 6.4, 6.6, 6.4]
    chart = xmr(values, improvement=Improvement.HIGHER, baseline=8)
    assert [(s.rule, s.points, s.meaning) for s in chart.signals] == [(Rule.SHIFT, tuple(range(7, 15)), Meaning.IMPROVEMENT)]
    assert xmr(values[:-2], baseline=8).signals == []  # six above: no shift


def test_six_rising_points_are_a_trend_and_five_are_not() -> None:
    chart = xmr([1, 2, 3, 4, 5, 6], improvement=Improvement.HIGHER)
    assert [(s.rule, s.points, s.upward) for s in chart.signals] == [(Rule.TREND, (0, 1, 2, 3, 4, 5), True)]
    assert Rule.TREND not in {s.rule for s in xmr([1, 2, 3, 4, 5, 5]).signals}  # an equal value ends the run: 5 rising points


def test_two_of_three_beyond_two_sigma() -> None:
    # baseline mean 10.5, mR 1: two sigma at 12.27, limit at 13.16
    chart = xmr([10, 11] * 5 + [12.5, 10, 12.6], improvement=Improvement.LOWER, baseline=10)
    assert [(s.rule, s.points, s.meaning) for s in chart.signals] == [(Rule.TWO_OF_THREE, (10, 12), Meaning.CONCERN)]
    assert "two of three points above the two-sigma line (concern)" in chart.signals[0].describe([str(i) for i in range(13)])


def test_common_cause_variation_gives_no_signal() -> None:
    assert xmr([80.1, 79.6, 80.4, 79.9, 80.2, 79.8, 80.3, 79.7, 80.0, 80.5, 79.5, 80.1]).signals == []


def test_too_few_points_or_a_gap_is_refused() -> None:
    with pytest.raises(ProblemsError, match="at least 3 points"):
        xmr([1.0, 2.0])
    with pytest.raises(ProblemsError, match="not a number"):
        xmr([1.0, float("nan"), 2.0])


def test_limits_of_a_share_are_clipped_to_100() -> None:
    # mean 99.5, mean moving range 1: limits 99.5 ± 2.66 = 96.84 to 102.16, the upper clipped to 100.
    chart = xmr([99, 100, 99, 100, 99, 100], improvement=Improvement.HIGHER, bounds=(0, 100), target=95)
    assert (round(chart.lower, 2), chart.upper) == (96.84, 100.0)
    assert chart.signals == []  # a point at 100 is on the clipped limit, not beyond it
    assert chart.assurance is Assurance.PASS  # the lower limit 96.84 is over the target 95
    assert xmr([99, 100, 99, 100, 99, 100], improvement=Improvement.HIGHER, bounds=(0, 100), target=99.6).assurance is Assurance.HIT_AND_MISS
    assert xmr([80, 81, 80, 81, 80, 81], improvement=Improvement.HIGHER, bounds=(0, 100), target=95).assurance is Assurance.FAIL


def test_phases_have_their_own_limits_so_a_known_change_is_not_a_signal() -> None:
    values = [49, 51] * 4 + [59, 61] * 4
    together = xmr(values, improvement=Improvement.HIGHER)
    assert {s.rule for s in together.signals} >= {Rule.SHIFT}  # one phase: the second half reads as a shift up
    split = xmr(values, improvement=Improvement.HIGHER, phases=[8])
    assert split.signals == []
    first, second = split.phases
    # Phase 1: mean 50, moving range 2, limits 50 ± 5.32; phase 2: mean 60, limits 60 ± 5.32.
    assert (first.mean, round(first.lower, 2), round(first.upper, 2)) == (50, 44.68, 55.32)
    assert (second.mean, round(second.lower, 2), round(second.upper, 2)) == (60, 54.68, 65.32)


def test_baseline_is_counted_within_each_phase_and_the_icon_reads_the_latest_point() -> None:
    values = [10, 12, 10, 12, 11, 11, 20, 30, 32, 30, 32, 31]
    chart = xmr(values, improvement=Improvement.HIGHER, baseline=4, phases=[7])
    first, second = chart.phases
    assert (first.baseline, first.mean, first.moving_range) == (4, 11, 2)  # 10, 12, 10, 12
    assert (second.baseline, second.mean, second.moving_range) == (4, 31, 2)  # 30, 32, 30, 32
    assert [(s.rule, s.points) for s in chart.signals] == [(Rule.OUTSIDE_LIMITS, (6,))]  # 20 > 11 + 5.32
    assert chart.variation is Variation.COMMON  # the latest point, 31, is in no signal
    rising = xmr([1, 2, 3, 4, 5, 6], improvement=Improvement.HIGHER)
    assert rising.variation is Variation.IMPROVEMENT_HIGH
    assert xmr([6, 5, 4, 3, 2, 1], improvement=Improvement.HIGHER).variation is Variation.CONCERN_LOW


def test_phases_and_baselines_that_cannot_be_charted_are_refused() -> None:
    with pytest.raises(ProblemsError, match="at least 3 points in each phase"):
        xmr([1, 2, 3, 4, 5], phases=[4])
    with pytest.raises(ProblemsError, match="at least 2 points"):
        xmr([1, 2, 3, 4, 5], baseline=1)


# --- p-charts: the limits worked from p̄ = Σ met ÷ Σ counted and σ_i = √(p̄(1 − p̄)/n_i) -------------


def test_p_chart_centre_is_all_met_over_all_counted_and_each_point_has_its_own_limits() -> None:
    met, counted = [80, 320, 90, 300], [100, 400, 100, 400]
    values = [100 * m / n for m, n in zip(met, counted)]  # 80, 80, 90, 75 %
    chart = p_chart(values, counted, laney=False)
    centre = 790 / 1000  # not the mean of the four percentages (81.25)
    assert chart.kind is ChartKind.P and chart.mean == pytest.approx(79.0)
    for i, n in enumerate(counted):
        sigma = math.sqrt(centre * (1 - centre) / n)
        assert chart.uppers[i] == pytest.approx(100 * (centre + 3 * sigma))
        assert chart.lowers[i] == pytest.approx(100 * (centre - 3 * sigma))
    # n = 100: 79 ± 12.22; n = 400: 79 ± 6.11 (quarter the patients, twice the width).
    assert (round(chart.lowers[0], 2), round(chart.uppers[0], 2), round(chart.lowers[1], 2), round(chart.uppers[1], 2)) == (66.78, 91.22, 72.89, 85.11)
    # The summary limits are at the mean denominator, 250.
    assert chart.upper == pytest.approx(100 * (centre + 3 * math.sqrt(centre * (1 - centre) / 250)))
    assert chart.signals == []  # 75% at n = 400 is 1.96 σ below: inside even the two-sigma line (74.93)


def test_p_chart_judges_each_point_against_its_own_limits() -> None:
    # Baseline: eight months of exactly 50% with 100 patients, so p̄ = 0.5 and σ = 5 points at n = 100
    # and 0.5 points at n = 10,000. Then 58% of 100 (1.6 σ), 53% of 10,000 (6 σ), 50%, and two of
    # three busy months at 51.2% and 51.3% (2.4 and 2.6 σ: beyond two sigma, inside three).
    values = [50.0] * 8 + [58.0, 53.0, 50.0, 51.2, 50.0, 51.3]
    sizes = [100] * 8 + [100, 10_000, 100, 10_000, 100, 10_000]
    chart = p_chart(values, sizes, improvement=Improvement.HIGHER, baseline=8, laney=False)
    assert chart.uppers[8] == pytest.approx(65.0) and chart.uppers[9] == pytest.approx(51.5)
    assert [(s.rule, s.points, s.meaning) for s in chart.signals] == [
        (Rule.OUTSIDE_LIMITS, (9,), Meaning.IMPROVEMENT),
        (Rule.TWO_OF_THREE, (9, 11, 13), Meaning.IMPROVEMENT),
    ]
    # At the mean denominator (31,100 ÷ 14 = 2,221) σ would be 1.06 points: 51.3 would not be beyond two sigma.
    mean_sigma = 100 * math.sqrt(0.25 / np.mean(sizes))
    assert 50 + 2 * mean_sigma > 51.3


def test_p_chart_shift_and_trend_rules_as_for_xmr() -> None:
    sizes = [400] * 14
    shifted = p_chart([50, 52, 48, 50, 52, 48, 50, 51, 51, 51, 51, 51, 51, 51], sizes, baseline=7, laney=False)
    assert [(s.rule, s.points) for s in shifted.signals] == [(Rule.SHIFT, tuple(range(7, 14)))]
    rising = p_chart([40, 41, 42, 43, 44, 45], [10_000] * 6, laney=False)
    assert (Rule.TREND, (0, 1, 2, 3, 4, 5)) in [(s.rule, s.points) for s in rising.signals]


def test_laney_p_prime_limits_from_the_moving_range_of_the_z_scores() -> None:
    values, sizes = [50, 52, 48, 52, 48, 50], [1_000] * 6
    sigma = math.sqrt(0.25 / 1_000)
    z = (np.array(values) / 100 - 0.5) / sigma
    sigma_z = np.mean(np.abs(np.diff(z))) / 1.128  # 2.0239 / 1.128 = 1.794
    chart = p_chart(values, sizes)
    assert chart.kind is ChartKind.LANEY and chart.phases[0].sigma_z == pytest.approx(sigma_z) and sigma_z == pytest.approx(1.7942, abs=1e-4)
    assert chart.uppers[0] == pytest.approx(100 * (0.5 + 3 * sigma * sigma_z))
    assert "σ_z = 1.79, over 1" in chart.why
    # With equal denominators p′ is the XmR chart: 3 × mR̄ / 1.128 against 2.66 × mR̄ (mR̄ = 3.2 points).
    assert chart.uppers[0] - 50 == pytest.approx(3 * 3.2 / 1.128)
    assert xmr(values).upper - 50 == pytest.approx(2.66 * 3.2)
    # The plain p-chart's limits (50 ± 4.74) are narrower than the points' own spread.
    assert p_chart(values, sizes, laney=False).uppers[0] == pytest.approx(50 + 300 * sigma)


def test_laney_correction_only_widens_by_default_but_not_when_asked() -> None:
    # Every baseline point on p̄: σ_z = 0. By default that is a plain p-chart (σ_z taken as 1);
    # asked for p′ as published, the limits close to the centre line.
    values, sizes = [50.0] * 8 + [58.0, 53.0], [100] * 9 + [10_000]
    auto = p_chart(values, sizes, baseline=8)
    assert auto.kind is ChartKind.P and auto.phases[0].measured_sigma_z == 0 and auto.uppers[8] == pytest.approx(65.0)
    assert "at most 1" in auto.why
    forced = p_chart(values, sizes, baseline=8, laney=True)
    assert forced.kind is ChartKind.LANEY and forced.uppers[8] == pytest.approx(50.0)


def test_p_chart_limits_are_clipped_to_0_and_100() -> None:
    # p̄ = 0.995 over 50 a month: σ = 0.998 points, limits 96.51 to 102.99, the upper clipped to 100.
    chart = p_chart([99, 100, 99, 100, 99, 100], [50] * 6, improvement=Improvement.HIGHER, target=95)
    sigma = 100 * math.sqrt(0.995 * 0.005 / 50)
    assert chart.kind is ChartKind.P  # z-scores of ±0.50, σ_z = 1.00 / 1.128 = 0.89: no over-dispersion
    assert chart.phases[0].measured_sigma_z == pytest.approx(2 * 0.5 / sigma / 1.128)
    assert set(chart.uppers) == {100.0} and chart.lowers[0] == pytest.approx(99.5 - 3 * sigma)
    assert chart.signals == [] and chart.assurance is Assurance.PASS
    low = p_chart([1, 0, 1, 0, 1, 0], [50] * 6, laney=False)
    assert set(low.lowers) == {0.0}


def test_p_chart_phases_and_baseline_each_from_their_own_counts() -> None:
    met = [100, 110, 200, 180, 90, 300, 310, 150, 160, 300]
    counted = [200, 200, 400, 400, 100, 400, 400, 200, 200, 400]
    values = [100 * m / n for m, n in zip(met, counted)]
    chart = p_chart(values, counted, baseline=4, phases=[5], laney=False)
    first, second = chart.phases
    assert (first.baseline, second.baseline) == (4, 4)
    assert first.mean == pytest.approx(100 * 590 / 1_200)  # the first four of the first phase
    assert second.mean == pytest.approx(100 * 920 / 1_200)  # the first four of the second
    p2 = 920 / 1_200
    assert chart.uppers[9] == pytest.approx(100 * (p2 + 3 * math.sqrt(p2 * (1 - p2) / 400)))
    assert [(s.rule, s.points) for s in chart.signals] == [(Rule.OUTSIDE_LIMITS, (4,))]  # 90 of 100 against 49.2 ± 15.0


def test_p_chart_refuses_what_is_not_a_proportion_with_the_point_named() -> None:
    with pytest.raises(ProblemsError, match="the denominator behind 2 is 0"):
        p_chart([50, 50, 50], [10, 0, 10])
    with pytest.raises(ProblemsError, match="101%"):
        p_chart([50, 101, 50], [10, 10, 10])
    with pytest.raises(ProblemsError, match="2 denominators for 3 values"):
        p_chart([50, 50, 50], [10, 10])
