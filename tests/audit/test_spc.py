"""XmR rules on small series where the signal is worked by hand."""

from __future__ import annotations

import pytest

from carecontracts.audit.spc import Assurance, Improvement, Meaning, Rule, Variation, xmr
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
